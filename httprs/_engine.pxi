# The engine handle and the blocking wait (included into _core.pyx).
#
# `_Engine` owns one C++ Engine (its uv loop and pool); `_wait` blocks on a
# transfer with the GIL released, in slices so signals (Ctrl-C) are seen;
# the fork hooks keep an engine usable across os.fork().

def _fork_before():
    # os.fork(): take every engine's locks without the GIL, so a thread inside
    # the loop that waits for the GIL (a Python TLS callback, engine mutex held)
    # can finish and leave first. pthread_atfork's handlers do the rest.
    with nogil:
        Engine.fork_prepare_all()


def _fork_after_in_parent():
    # Only does something when no fork() followed (its parent handler unlocks).
    Engine.fork_abandon_all()


os.register_at_fork(before=_fork_before, after_in_parent=_fork_after_in_parent)


cdef class _Engine:
    """Owns one C++ Engine: a uv loop and its connection pool."""

    cdef Engine* eng
    # The size of the last body of unknown length read whole here: the first
    # buffer for the next one (responses from one client tend to repeat), so
    # it is usually allocated once, at about its size, and not regrown.
    cdef size_t unknown_hint
    # Streaming: the last stream read here whose buffers bounded its reads filled
    # them (the server outran the consumer): the next starts with STREAM_SINK
    # buffers, when a stream may (_body.pxi STREAMS_GROWN_MAX), not 1 MiB ones.
    cdef bint stream_hint
    # A sync client's engine under gevent's monkey-patching: driven from its waits
    # without blocking the thread (_green.pxi). One greenlet drives at a time; the
    # others wait for the end of its round on an event of their hub's (green_event:
    # {hub: gevent Event}, a gevent Event being bound to one hub, and so to one thread).
    cdef bint green
    cdef bint green_driving
    cdef object green_event
    cdef bint green_closing
    # What interrupted close()'s wait for the driver's round (a greenlet killed, a
    # gevent.Timeout): re-raised by the transport's close() once the engine closed.
    cdef object green_interrupt

    def __cinit__(self, int max_connections, int max_keepalive, double keepalive_expiry):
        cdef PoolLimits limits
        cdef Engine* eng
        limits.max_connections = max_connections
        limits.max_keepalive_connections = max_keepalive
        limits.keepalive_expiry = keepalive_expiry
        # The constructor takes the fork registry lock, which a fork in another
        # thread holds while it waits for the GIL (_fork_before): not with the GIL.
        with nogil:
            eng = new Engine(limits)
        self.eng = eng

    def __dealloc__(self):
        if self.eng != NULL:
            with nogil:
                del self.eng
            self.eng = NULL

    cdef void close(self) noexcept:
        if self.eng != NULL:
            if self.green:
                _green_settle(self)
            with nogil:
                self.eng.close()
            if self.green:
                _green_release(self)

    @property
    def connection_count(self):
        cdef int n
        with nogil:
            n = self.eng.connection_count()
        return n

    @property
    def idle_count(self):
        cdef int n
        with nogil:
            n = self.eng.idle_count()
        return n

    def _hold_mutex_for_testing(self, int ms):
        with nogil:
            self.eng.hold_mutex_for_testing(ms)


cdef int _wait(_Engine engine, Transfer* t, WaitFor what, int slice_ms=SLICE_MS) except -1:
    """Block until `what` holds for the transfer, letting signals through (every
    `slice_ms`); under gevent, wait cooperatively instead (_green_wait)."""
    cdef cbool done = False
    cdef Engine* eng = engine.eng
    if _tls_interrupt is not None:
        _raise_tls_interrupt()
    if Engine.ready_now(t[0], what):
        return 0  # over already: no GIL release (another thread would take the GIL)
    if engine.green:
        _green_wait(engine, t, what, -1.0)  # (keeps no interrupt: not a sync wait's)
        return 0
    global _main_sync_waiting
    while True:
        _sync_wait_begins()
        with nogil:
            done = eng.wait(t[0], what, slice_ms)
        _main_sync_waiting = False
        if _tls_interrupt is not None:
            _raise_tls_interrupt()
        if done:
            return 0
        PyErr_CheckSignals()
