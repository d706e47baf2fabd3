# Sync clients under gevent or eventlet (included into _core.pyx).
#
# gevent's and eventlet's monkey-patching make the standard library's blocking calls
# yield to their hub, so green threads run while one waits for the network, and httpx
# (on patched sockets) waits that way too. The core's own wait blocks the thread in
# poll(): every other green thread, the hub's timers too, would stop for each request's
# whole wait. A sync client made once the socket module is patched gets an engine
# driven from outside, as an event loop drives an async client's: its waits run the
# uv loop without blocking and wait for the loop's descriptor through the hub. One
# green thread drives at a time; the others wait for the end of its round.


cdef object _GEVENT_MONKEY = "gevent.monkey"
cdef object _EVENTLET_PATCHER = "eventlet.patcher"
# What the green waits call, taken from the library once (_load_green), when an engine
# first turns green: not imported again at every wait. _GreenEvent() makes an event
# bound to the calling thread's hub, with wait(timeout) and set().
cdef object _green_sleep = None
cdef object _green_select = None
cdef object _green_get_hub = None
cdef object _GreenEvent = None


cdef bint _patched(object name, object check):
    """The module `name` is imported and its `check("socket")` holds (one dict lookup
    while it was never imported)."""
    cdef PyObject* module = PyDict_GetItem(<object>PyImport_GetModuleDict(), name)
    if module == NULL:
        return False
    try:
        return bool(getattr(<object>module, check)("socket"))
    except Exception:
        return False


cdef bint _green_wanted():
    """gevent (gevent.monkey.patch_all()) or eventlet (eventlet.monkey_patch()) has
    patched the socket module: every sync request asks."""
    return _patched(_GEVENT_MONKEY, "is_module_patched") or _patched(
        _EVENTLET_PATCHER, "is_monkey_patched"
    )


cdef int _load_green() except -1:
    global _green_sleep, _green_select, _green_get_hub, _GreenEvent
    if _green_select is not None:
        return 0
    if _patched(_GEVENT_MONKEY, "is_module_patched"):
        from gevent import get_hub, sleep
        from gevent.event import Event
        from gevent.select import select

        _green_sleep, _green_get_hub, _GreenEvent = sleep, get_hub, Event
        _green_select = select
    else:
        from eventlet import sleep
        from eventlet.green.select import select
        from eventlet.hubs import get_hub

        _green_sleep, _green_get_hub, _GreenEvent = sleep, get_hub, _EventletEvent
        _green_select = select
    return 0


@cython.final
cdef class _EventletEvent:
    """eventlet's one-shot Event as the green waits use gevent's: `set()` sends once,
    and only from its own hub's thread (eventlet's send is not thread-safe; a waiter of
    another thread's hub looks again within its wait's bound, _GREEN_WAIT_MAX_S)."""

    cdef object event
    cdef object hub

    def __cinit__(self):
        from eventlet.event import Event

        self.event = Event()
        self.hub = _green_get_hub()

    def wait(self, timeout):
        self.event.wait(timeout)

    def set(self):
        if not self.event.ready() and _green_get_hub() is self.hub:
            self.event.send(None)


cdef inline bint _turned_green(_Engine engine):
    """A sync engine made before gevent or eventlet patched the socket module (an app
    preloaded by gunicorn's master, a module-level client): True once the patch is in."""
    return not engine.green and _green_wanted()


cdef _Engine _for_sync(_Engine engine):
    """A sync transport's engine: driven from its waits under gevent or eventlet."""
    if not engine.green and _green_wanted():
        _load_green()
        with nogil:
            engine.eng.drive_externally()
        engine.green = True
    return engine


cdef int _go_green(_TransportCore core, _Engine engine) except -1:
    """A transport whose engine was made before the patch takes `engine`, a green
    one, for its next requests. The old engine is not closed: responses in flight on it
    (which hold it) end as they would have; its idle connections close when it is freed
    (making `engine` let go of the GIL: another greenlet or thread may have swapped first,
    and then this one is dropped)."""
    if not core.closed and not core.engine.green:
        core.engine = engine
    return 0


DEF _GREEN_WAIT_MAX_S = 1.0


cdef double _green_wait_s(int timeout_ms, double deadline):
    """How long to wait for the loop's descriptor: until libuv's next timer, within
    `deadline`, and at most _GREEN_WAIT_MAX_S (every operation wakes the wait; the
    bound is a floor under a wake that did not come)."""
    cdef double wait_s = _GREEN_WAIT_MAX_S
    cdef double left
    if 0 <= timeout_ms < _GREEN_WAIT_MAX_S * 1000:
        wait_s = timeout_ms / 1000.0
    if deadline >= 0:
        left = deadline - _monotonic()
        if left < wait_s:
            wait_s = left if left > 0 else 0.0
    return wait_s


cdef bint _green_wait(_Engine engine, Transfer* t, WaitFor what, double deadline) except -1:
    """_wait under gevent or eventlet: False when `deadline` (time.monotonic(); < 0:
    none) passed first. The driving greenlet runs the loop, then waits (yielding to the
    hub) until the loop's descriptor is readable or its next timer is due, and runs it
    again."""
    cdef Engine* eng = engine.eng
    cdef vector[shared_ptr[Transfer]] signaled
    cdef cbool ok
    cdef int timeout
    cdef int fd
    cdef bint woke = False
    while True:
        with nogil:
            ok = eng.check(t[0], what)
        if ok:
            return True
        if deadline >= 0 and _monotonic() >= deadline:
            return False
        if engine.green_driving or engine.green_closing:
            # What this greenlet did last (a sink handed over without a wake, a
            # body chunk pushed) may be the driver's to act on: wake its wait,
            # once (a wake per round would end every round at once: a busy loop).
            if not woke:
                woke = True
                with nogil:
                    eng.wake()
            _green_event(engine).wait(_green_wait_s(-1, deadline))
            continue
        engine.green_driving = True
        try:
            with nogil:
                eng.run_nowait(signaled)
                ok = eng.check(t[0], what)
                timeout = eng.backend_timeout()
                fd = eng.backend_fd()
            signaled.clear()
            if not ok and fd < 0:
                return True  # the loop is closed: all in flight has failed (as Engine::wait)
            if not ok:
                if timeout == 0:
                    _green_sleep(0)  # due again at once: let the other greenlets run first
                else:
                    _green_select([fd], [], [], _green_wait_s(timeout, deadline))
                with nogil:
                    eng.run_nowait(signaled)
                signaled.clear()
        finally:
            engine.green_driving = False
            _green_set_all(engine)


cdef object _green_event(_Engine engine):
    """The event this thread's greenlets wait on for the end of the round: one per
    thread (an event is bound to one hub; another thread may set gevent's, not
    eventlet's)."""
    events = engine.green_event
    if events is None:
        events = engine.green_event = {}
    hub = _green_get_hub()
    event = events.get(hub)
    if event is None:
        event = events[hub] = _GreenEvent()
    return event


cdef int _green_set_all(_Engine engine) except -1:
    events = engine.green_event
    engine.green_event = None
    if events is not None:
        for event in events.values():
            event.set()
    return 0


cdef void _green_settle(_Engine engine) noexcept:
    """Before a green engine closes: no greenlet may be left waiting on its loop's
    descriptor, which the close frees (and the system may give to another file).
    The driver is woken and its round awaited; no new round starts."""
    engine.green_closing = True
    if not engine.green_driving:
        return
    try:
        with nogil:
            engine.eng.wake()
        _green_event(engine).wait(_GREEN_WAIT_MAX_S)
    except Exception:
        pass  # (closed anyway: the driver's wait ends within its bound)
    except BaseException as interrupt:
        # GreenletExit, gevent.Timeout, eventlet.Timeout, KeyboardInterrupt: not
        # swallowed by this noexcept function; the close goes on, the transport's
        # close() re-raises it.
        engine.green_interrupt = interrupt


cdef void _green_release(_Engine engine) noexcept:
    """After the close: the greenlets waiting for a round see their transfers failed."""
    try:
        _green_set_all(engine)
    except Exception:
        pass  # (they look again within their wait's bound)
