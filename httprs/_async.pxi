# The async driver: AsyncHTTPTransport on asyncio or trio; one driver per
# transport runs the engine's loop and wakes the tasks whose transfers are
# ready (included into _core.pyx).

import weakref

cdef object _asyncio = None
cdef object _sniffio = None
# sniffio.thread_local: its name is "trio" while a trio task runs a step, also in a
# guest run (trio.lowlevel.start_guest_run) whose steps run inside a running asyncio
# loop, where asyncio._get_running_loop() answers the host's loop.
cdef object _trio_local = None


cdef int _load_asyncio() except -1:
    global _asyncio, _trio_local
    import asyncio
    import sniffio

    _trio_local = sniffio.thread_local
    _asyncio = asyncio
    return 0


cdef inline bint _trio_step() except -1:
    """A trio task is running here (asyncio's running loop, if any, is a guest run's host)."""
    return _trio_local is not None and _trio_local.name == "trio"


cdef bint _guest_host(object loop) except -1:
    """In a trio task, `loop` (asyncio's running one) is the host of its guest run
    (trio.lowlevel.start_guest_run), whose driver the task waits through (_wait_guest).
    Not trio-asyncio's loop: trio tasks outside its open_loop() drive the engine
    themselves (_wait_trio), and two waits on the engine's descriptor in one trio run
    fail (BusyResourceError). Not under a trio before 0.23, which tells sniffio through
    a context variable (_trio_step() is False): there its tasks drive, as before."""
    return _trio_step() and not type(loop).__module__.startswith("trio_asyncio")


cdef object _current_library():
    global _sniffio
    if _sniffio is None:
        import sniffio

        _sniffio = sniffio
    try:
        return _sniffio.current_async_library()
    except _sniffio.AsyncLibraryNotFoundError:
        return "asyncio"


def _driver_run(ref):
    cdef _AsyncDriver driver = ref()
    if driver is not None:
        driver.run()


def _driver_timer(ref):
    """The driver's timer fell due: a pass of the loop, as _driver_run."""
    cdef _AsyncDriver driver = ref()
    if driver is not None:
        driver.timer_fired()


def _let_go(ref, loop, int fd, timer):
    """In `loop`'s own thread: stop watching the engine's fd there, unless the driver
    has come back to this loop meanwhile."""
    cdef _AsyncDriver driver = ref()
    if timer is not None:
        timer.cancel()
    if driver is None or driver.loop is not loop:
        loop.remove_reader(fd)


# Why a request of a second event loop is refused while the first is running.
_OTHER_LOOP = (
    "this AsyncClient has requests open in an event loop running in another thread; "
    "an AsyncClient serves one event loop at a time: make one client per event loop "
    "(or per thread), or let the other loop's requests finish (responses read or "
    "closed) first"
)


# Engine::mark_chunk_wait's answers, and how long a marked chunk's wait lasts at
# most (Engine::kLowatChunkMs, as a sync chunk's poll).
DEF _CHUNK_UNMARKED = 0
DEF _CHUNK_MARKED = 2
DEF _CHUNK_MARK_MS = 1
DEF _CHUNK_MARK_S = _CHUNK_MARK_MS / 1000.0
DEF _BODY_MARK_MIN = 64 * 1024  # Engine::kLowatMin: a smaller body is never marked
DEF _BODY_MARK_MS = 50  # how long a whole body's mark waits for its bytes (sync: SLICE_MS)
DEF _BODY_MARK_S = _BODY_MARK_MS / 1000.0
cdef unsigned long long _chunk_marks = 0  # marked waits (chunk or whole body), for tests


cdef inline void _count_chunk_mark() noexcept:
    global _chunk_marks
    _chunk_marks += 1


def _chunk_marks_for_testing():
    return _chunk_marks


cdef inline int _mark_ms(_Body stream, int what):
    """For how long (ms) a wait for `what` keeps the stream's socket marked before what
    came under the mark is read; 0: not marked. A chunk after the first (the first's
    latency stays that of its first bytes): _CHUNK_MARK_MS. The whole body's sink, for
    a body of known length of at least _BODY_MARK_MIN: _BODY_MARK_MS."""
    if what == <int>WaitFor.kBodyData:
        return _CHUNK_MARK_MS if stream.streamed > 0 else 0
    if (
        what == <int>WaitFor.kSinkFull
        and stream.expected != UNKNOWN_LENGTH
        and stream.expected >= _BODY_MARK_MIN
    ):
        return _BODY_MARK_MS
    return 0


def _body_mark_expired(ref, _Body stream, fut):
    """A whole body's marked wait reached _BODY_MARK_S: clear the mark, read what came
    under it, run the loop, and resume the waiter (which waits on unmarked)."""
    cdef _AsyncDriver driver = ref()
    if driver is None or driver.closed:
        return
    with nogil:
        driver.engine.eng.expire_chunk_wait(stream.t.get()[0])
    driver.advance()
    if not fut.done():
        fut.set_result(None)


def _chunk_mark_expired(ref, _Body stream):
    """A marked chunk's wait ran out of time: clear the mark, read what came (the
    engine reads it: a kernel before 4.18 does not wake the loop for it), and hand it
    to the waiter."""
    cdef _AsyncDriver driver = ref()
    if driver is None or driver.closed:
        return
    with nogil:
        driver.engine.eng.expire_chunk_wait(stream.t.get()[0])
    driver.advance()


@cython.final
cdef class _YieldOnce:
    """Awaited in an asyncio task: gives up control for one pass of the event loop
    (a bare yield: the task is rescheduled at once), as `asyncio.sleep(0)` does."""

    cdef bint yielded

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        if self.yielded:
            raise StopIteration
        self.yielded = True
        return None


@cython.no_gc_clear
cdef class _AsyncDriver:
    """Drives an engine's uv loop from inside the running event loop.

    asyncio: the uv backend fd is watched with add_reader and libuv's next
    timer is scheduled with call_later; each wake-up runs uv_run(NOWAIT)
    without the GIL and resolves the futures of the transfers it advanced.
    trio: one task at a time drives (wait_readable on the backend fd), the
    others wait for it to finish a round. Nothing here is tied to the loop the
    client was created in: a new running loop simply takes over the fd.

    The engine is told it is driven from outside (drive_externally), so every
    engine operation, from any task or thread, makes the backend fd readable:
    a driver blocked in wait_readable or a selector always wakes up.
    """

    cdef _Engine engine
    cdef int fd
    cdef object loop
    cdef object ref
    cdef dict waiters  # transfer address -> list of [what, future]
    cdef bint scheduled
    cdef object timer
    cdef double timer_when
    cdef bint trio_driving
    cdef object trio_event
    cdef unsigned long long forks  # Engine::fork_generation() when attached
    cdef bint closed
    cdef int trio_fd  # the fd the driving trio task waits on
    cdef object trio_token  # that task's trio run (close() from another thread wakes it there)
    cdef Py_ssize_t open_streams  # its _AsyncBody streams not released yet
    cdef unsigned long owner_thread  # the thread whose event loop opened them
    cdef unsigned long long owner_forks  # Engine::fork_generation() then
    cdef object __weakref__

    def __cinit__(self, _Engine engine):
        self.engine = engine
        self.fd = engine.eng.backend_fd()
        self.waiters = {}
        self.ref = weakref.ref(self)
        with nogil:
            engine.eng.drive_externally()

    cdef void attach(self, object loop) except *:
        self.detach()
        self.loop = loop
        # After os.fork() the child's engine has a new loop: a new backend fd.
        self.fd = self.engine.eng.backend_fd()
        self.forks = Engine.fork_generation()
        # A selector entry left for this fd number by a client that was never
        # closed would make add_reader only swap callbacks and never register
        # this epoll fd: clear it first (harmless when there is none).
        loop.remove_reader(self.fd)
        loop.add_reader(self.fd, _driver_run, self.ref)

    cdef void detach(self) noexcept:
        if self.loop is not None and self.forks != Engine.fork_generation():
            # Attached in the parent process: its event loop's selector (an epoll
            # set shared with the parent) and our old fd are the parent's. Touch
            # neither, just forget them.
            self.loop = None
            self.timer = None
            self.scheduled = False
        if self.loop is not None:
            loop, timer = self.loop, self.timer
            self.loop = None
            self.timer = None
            self.scheduled = False
            try:
                if loop.is_closed():
                    pass
                elif loop.is_running() and (
                    _asyncio is None or _asyncio._get_running_loop() is not loop
                ):
                    # Running in another thread: its selector and timers are that
                    # thread's to change.
                    loop.call_soon_threadsafe(_let_go, self.ref, loop, self.fd, timer)
                else:
                    if timer is not None:
                        timer.cancel()
                    loop.remove_reader(self.fd)
            except BaseException:
                pass

    cdef unsigned long holder(self) noexcept:
        """The thread whose event loop (asyncio, or a trio run) holds this driver: its
        streams are open (0: none are, or they are a parent process's). The engine's
        wake-ups reach one loop, so another thread's loop cannot wait on it meanwhile
        (_claim_driver gives that thread a driver of its own)."""
        if self.open_streams > 0 and self.owner_forks == Engine.fork_generation():
            return self.owner_thread
        return 0

    cdef bint busy_elsewhere(self) noexcept:
        cdef unsigned long holder = self.holder()
        return holder != 0 and holder != PyThread_get_thread_ident()

    cdef bint held_here(self) noexcept:
        return self.holder() == PyThread_get_thread_ident()

    cdef int check_caller(self) except -1:
        """Refuse a wait on a stream of this driver from a loop of another thread while
        that thread's streams are open (a response handed to another thread's loop):
        its wake-ups reach the owner's loop only, and the wait would last for ever,
        past its timeouts. Once those streams are released (read, closed), a loop of
        another thread takes the driver over (claim)."""
        if self.busy_elsewhere():
            raise RuntimeError(_OTHER_LOOP)
        return 0

    cdef int claim(self) except -1:
        """Before a request of the caller's loop is sent: check_caller, then count its
        stream in at once (no GIL release in between, so two threads never both find the
        driver free); the caller's thread owns the driver until its streams are released
        (_AsyncBody._uncount; unclaim if no stream is made). An asyncio loop of another
        thread still watching the engine's fd lets it go: its passes would take this
        loop's wake-ups (an asyncio caller attaches its own loop at its first wait)."""
        cdef unsigned long long forks = Engine.fork_generation()
        if self.owner_forks != forks:  # (after os.fork(): the parent's streams are not ours)
            self.owner_forks = forks
            self.open_streams = 0
        self.check_caller()
        self.owner_thread = PyThread_get_thread_ident()
        self.open_streams += 1
        if self.loop is not None and (
            _asyncio is None or _asyncio._get_running_loop() is not self.loop
        ):
            self.detach()
        return 0

    cdef void unclaim(self) noexcept:
        if self.open_streams > 0:
            self.open_streams -= 1

    cdef void schedule(self) except *:
        """A loop pass soon, on the loop we are attached to, when it is the one
        running here. Called from another (the attached one closed since, or trio),
        nothing: that task's next wait attaches its own loop, or drives, and runs it."""
        if self.scheduled or self.loop is None:
            return
        if _asyncio is None or _asyncio._get_running_loop() is not self.loop:
            return
        self.scheduled = True
        self.loop.call_soon(_driver_run, self.ref)

    cdef void run(self) except *:
        """The scheduled pass (a call_soon, the timer, or the fd turning readable), on
        the loop this driver watches (one scheduled on a loop it has left since, which
        runs in another thread, does nothing: _let_go takes it away there)."""
        if _asyncio is None or _asyncio._get_running_loop() is not self.loop:
            return
        self.scheduled = False
        self.advance()

    cdef void timer_fired(self) except *:
        """The timer rearm set fell due. It is forgotten before the pass, whose rearm
        must set another if libuv still has a timer: an event loop may run a timer
        before its time (asyncio by up to its clock's resolution; uvloop's clock counts
        whole milliseconds), and found still "due in time" by rearm the fired timer was
        kept, so no pass came at libuv's deadline (a read timeout went unnoticed until
        the next I/O). A timer of a loop this driver has left was cancelled there
        (detach, _let_go) and does not run."""
        if _asyncio is None or _asyncio._get_running_loop() is not self.loop:
            return
        self.timer = None
        self.run()

    cdef void advance(self) except *:
        """Run the uv loop once without blocking and resolve the futures of the
        transfers it advanced."""
        cdef vector[shared_ptr[Transfer]] signaled
        cdef Transfer* t
        cdef Engine* eng = self.engine.eng
        cdef cbool ok
        cdef WaitFor what
        if self.closed:
            return
        with nogil:
            eng.run_nowait(signaled)
        for i in range(signaled.size()):
            t = signaled[i].get()
            entries = self.waiters.get(<size_t>t)
            if entries is None:
                continue
            for entry in list(entries):
                what = <WaitFor><int>entry[0]
                with nogil:
                    ok = eng.check(t[0], what)
                if ok:
                    entries.remove(entry)
                    # (In its own loop's thread: a pass that ran without the GIL
                    # may find another thread's waiters here, and a task of a loop
                    # closed meanwhile, whose future cannot be resolved, must not
                    # stop this pass before the others and the timer.)
                    _resume(entry[1])
            # (The dict may have been swapped meanwhile: resume_waiters, in another
            # thread while this one was without the GIL.)
            if not entries and self.waiters.get(<size_t>t) is entries:
                del self.waiters[<size_t>t]
        self.rearm()

    cdef void rearm(self) except *:
        loop = self.loop
        if loop is None or _asyncio is None or _asyncio._get_running_loop() is not loop:
            # Not attached, or attached meanwhile to another thread's loop (its claim
            # while this pass ran without the GIL): that loop's passes set its timers.
            return
        cdef int timeout
        cdef double now, when
        cdef Engine* eng = self.engine.eng
        with nogil:
            timeout = eng.backend_timeout()
        if self.loop is not loop:
            # Another thread's claim or attach moved the driver meanwhile (the GIL
            # was let go): its timers are that loop's to set, in its own thread.
            return
        if timeout == 0:
            self.schedule()
            return
        if timeout < 0:
            return
        now = self.loop.time()
        when = now + timeout / 1000.0
        # The timer set before still falls due in time: keep it. (Only detach and
        # this method cancel it, and both drop it then: it has not been cancelled;
        # one that fired was dropped before its pass, timer_fired.)
        if self.timer is not None and now < self.timer_when <= when:
            return
        if self.timer is not None:
            self.timer.cancel()
        self.timer_when = when
        self.timer = self.loop.call_at(when, _driver_timer, self.ref)

    cdef cbool done(self, Transfer* t, int what) noexcept:
        """`what` holds for the transfer (read under the engine mutex), or closed."""
        cdef cbool ok
        cdef Engine* eng = self.engine.eng
        if self.closed:
            return True
        with nogil:
            ok = eng.check(t[0], <WaitFor>what)
        return ok

    async def wait(self, _Body stream, int what):
        cdef Transfer* t = stream.t.get()
        cdef int mark = _CHUNK_UNMARKED
        cdef int timeout
        if self.done(t, what):
            return
        if _asyncio is None:
            _load_asyncio()
        # Inside the loop we are attached to, outside a trio task, this is asyncio: skip
        # asking sniffio (C-level lookups instead of a Python call on every wait).
        loop = _asyncio._get_running_loop()
        if loop is None or loop is not self.loop or _trio_step():
            self.check_caller()  # (trio too: another thread's loop holds its streams)
            if _current_library() == "trio":
                if loop is not None and _guest_host(loop):
                    await self._wait_guest(stream, what, loop)
                    return
                if what == <int>WaitFor.kBodyData and self.trio_driving:
                    # The chunk's sink was set without waking the driver
                    # (Wake.kCaller): another task is the one driving. (Else
                    # _wait_trio runs the loop first.)
                    with nogil:
                        self.engine.eng.wake()
                await self._wait_trio(stream, what)
                return
            loop = _asyncio.get_running_loop()
            if loop is not self.loop:
                self.attach(loop)
        if what == <int>WaitFor.kBodyData:
            # After the first chunk (its latency stays that of the first bytes),
            # when the chunk's sink takes its next read straight from the socket:
            # the socket turns readable only once that much is in (or the mark is
            # cleared, after at most _CHUNK_MARK_S), so the loop is not woken, nor
            # a chunk handed out, for every segment.
            if _mark_ms(stream, what):
                with nogil:
                    mark = self.engine.eng.mark_chunk_wait(t[0])
            try:
                # The consumer has just handed the engine room for the next
                # chunk (without waking the driver, Wake.kCaller): run the loop
                # here, at once, rather than in a callback scheduled for the
                # next pass with this task woken in the pass after. With the
                # bytes in the socket already (a fast server, a big body) the
                # chunk is read now, and one pass of the event loop (the yield
                # below, so other tasks still run between chunks) is all a
                # chunk costs.
                self.advance()
                if self.done(t, what):
                    await _YieldOnce()
                    return
                if mark == _CHUNK_MARKED:
                    with nogil:
                        timeout = self.engine.eng.backend_timeout()
                    if timeout < 0 or timeout > _CHUNK_MARK_MS + 1:
                        _count_chunk_mark()
                        await self._wait_marked(stream, loop)
                        return
                    # A timer (a read timeout) falls due within the mark's bound:
                    # take what came now, before it fires over those bytes.
                    with nogil:
                        self.engine.eng.expire_chunk_wait(t[0])
                    # As on expiry: the read may have ended the exchange, and the
                    # pool's next request wants a loop pass.
                    self.advance()
            finally:
                if mark == _CHUNK_MARKED:
                    with nogil:
                        self.engine.eng.end_chunk_wait(t[0])
            # The loop has just run (advance, which schedules a pass itself when
            # libuv has work due at once): no pass is scheduled for the future.
            await self._wait_future(stream, what, loop, False)
            return
        await self._wait_future(stream, what, loop, True)

    async def _wait_marked(self, _Body stream, loop):
        """A chunk's wait with the socket marked: the backend fd wakes the driver once
        the chunk's worth is in; past _CHUNK_MARK_S the mark goes and what came is
        read (a slow sender's chunk is late by that much at most). The loop ran
        just now (advance): no pass is scheduled for it."""
        expiry = loop.call_later(_CHUNK_MARK_S, _chunk_mark_expired, self.ref, stream)
        try:
            await self._wait_future(stream, <int>WaitFor.kBodyData, loop, False)
        finally:
            expiry.cancel()

    async def _wait_future(self, _Body stream, int what, loop, bint run_loop):
        cdef Transfer* t = stream.t.get()
        while not self.done(t, what):
            fut = self._register(stream, what, loop, run_loop)
            run_loop = True
            try:
                await fut
            finally:
                self._unwait(stream, fut)

    cdef object _register(self, _Body stream, int what, loop, bint run_loop):
        """A future of `loop`'s that advance() resolves once `what` holds for the
        stream's transfer (or resume_waiters, once the engine closed); `run_loop`: with
        a pass of the driver scheduled (work was just queued)."""
        return self._enlist(stream, what, loop.create_future(), run_loop)

    cdef object _enlist(self, _Body stream, int what, object fut, bint run_loop):
        """_register for a waiter already made: an asyncio future or a _TrioWaker."""
        key = <size_t>stream.t.get()
        entry = [what, fut]
        entries = self.waiters.get(key)
        if entries is None:
            self.waiters[key] = [entry]
        else:
            entries.append(entry)
        if run_loop:
            self.schedule()
        return fut

    cdef int _unwait(self, _Body stream, object waited) except -1:
        """After awaiting what _register or _waiter gave (resolved, or not: cancelled):
        forget its entry, if it is still there."""
        key = <size_t>stream.t.get()
        entries = self.waiters.get(key)
        if entries is None:
            return 0
        for entry in entries:
            if entry[1] is waited:
                entries.remove(entry)
                break
        if not entries:
            del self.waiters[key]
        return 0

    cdef object _own_loop(self):
        """The running event loop when it is the asyncio loop this driver watches and no
        trio task runs; else None (trio, a trio guest run's task on that loop, another
        loop, or asyncio not imported by a wait yet)."""
        if _asyncio is None:
            return None
        loop = _asyncio._get_running_loop()
        if loop is None or loop is not self.loop or _trio_step():
            return None
        return loop

    cdef object _waiter(self, _Body stream, int what):
        """What `await self.wait(stream, what)` awaits, without that coroutine where it
        can: None once `what` holds; on asyncio, in the loop this driver watches, for
        anything but a chunk (whose wait runs the loop first), the future _register
        makes; else the wait() coroutine. The caller awaits it, calls _unwait, and asks
        again (a future may be resolved by the engine closing, or a pass that advanced
        the transfer short of `what`)."""
        if self.done(stream.t.get(), what):
            return None
        if what != <int>WaitFor.kBodyData:
            loop = self._own_loop()
            if loop is not None:
                return self._register(stream, what, loop, True)
        return self.wait(stream, what)

    cdef object _chunk_waiter(self, _Body stream, bint first):
        """What `await self.wait(stream, kBodyData)` awaits, without that coroutine and
        _wait_future's where it can: None once a chunk is ready; on asyncio, in the loop
        this driver watches, for a body that never marks its socket (no Content-Length,
        or the first chunk; HTTP/2 and TLS bodies with one take wait(), which finds they
        are never marked), the loop run now (as wait() does) and then a _YieldOnce
        (the chunk came) or the future _register makes; else the wait() coroutine.
        `first`: the chunk's first ask; a later one (the future resolved short of a
        chunk, or by the engine closing) registers again with a pass scheduled, as
        _wait_future does. The caller awaits it, calls _unwait and asks again."""
        cdef Transfer* t = stream.t.get()
        if self.done(t, <int>WaitFor.kBodyData):
            return None
        loop = self._own_loop()
        if loop is None or (first and stream.streamed > 0 and t.head.has_content_length):
            return self.wait(stream, <int>WaitFor.kBodyData)
        if not first:
            return self._register(stream, <int>WaitFor.kBodyData, loop, True)
        self.advance()  # (see wait(): the consumer has just handed the engine room)
        if self.done(t, <int>WaitFor.kBodyData):
            return _YieldOnce()
        return self._register(stream, <int>WaitFor.kBodyData, loop, False)

    cdef object _body_waiter(self, _Body stream, int what):
        """_waiter() for a whole-body read's wait: on asyncio, in the loop this driver
        watches, the wait for the sink to fill (kSinkFull) of a body of known length of
        at least _BODY_MARK_MIN is _wait_body_marked's."""
        if (
            what == <int>WaitFor.kSinkFull
            and _mark_ms(stream, what)
            and not self.done(stream.t.get(), what)
        ):
            loop = self._own_loop()
            if loop is not None:
                return self._wait_body_marked(stream, loop)
        return self._waiter(stream, what)

    async def _wait_body_marked(self, _Body stream, loop):
        """The wait for a whole body's sink to fill with its socket marked, as the sync
        wait's poll: the backend fd turns readable once what the sink takes next is in
        (up to 2 MiB), not on each segment, and the mark comes down with the reads to
        the body's last bytes (Connection::follow_body_mark), whose arrival, or the
        stream's end, wakes the loop. As the sync wait's poll slice does, after
        _BODY_MARK_S without that the mark is cleared and what came under it read
        (_body_mark_expired), and the rest of this wait is not marked: a kernel that
        does not wake the loop at the mark (before 4.18: no receive buffer grown for
        it, nor a wake-up when it is lowered) costs that much latency once, and a slow
        sender's bytes (small segments held back by its Nagle until the client's
        delayed ACK) are read, and its read timeout restarted, as they come. Not
        marked (less than that due, or not plain HTTP/1.1): the plain wait."""
        cdef Transfer* t = stream.t.get()
        cdef Engine* eng = self.engine.eng
        cdef int mark
        with nogil:
            mark = eng.mark_chunk_wait(t[0])
        if mark == _CHUNK_MARKED:
            _count_chunk_mark()
            try:
                fut = self._register(stream, <int>WaitFor.kSinkFull, loop, True)
                expiry = loop.call_later(_BODY_MARK_S, _body_mark_expired, self.ref, stream, fut)
                try:
                    await fut
                finally:
                    expiry.cancel()
                    self._unwait(stream, fut)
            finally:
                with nogil:
                    eng.end_chunk_wait(t[0])
        await self._wait_future(stream, <int>WaitFor.kSinkFull, loop, True)

    async def _wait_guest(self, _Body stream, int what, loop):
        """The wait of a trio task of a guest run (trio.lowlevel.start_guest_run) whose
        host is the asyncio loop running in this thread: that loop's driver waits, as for
        its own tasks (attached to it if it was not), and advance() wakes this task
        through its trio run's token. A task driving the engine itself (_wait_trio) would
        race the host loop's reader for the backend fd's wake-ups when asyncio tasks use
        the client too. Not marked (no _mark_ms): a chunk is handed out as it comes."""
        import trio

        cdef Transfer* t = stream.t.get()
        cdef _TrioWaker waker
        if loop is not self.loop:
            self.attach(loop)
        if what == <int>WaitFor.kBodyData:
            self.advance()  # (see wait(): the consumer has just handed the engine room)
        token = trio.lowlevel.current_trio_token()
        while not self.done(t, what):
            waker = _TrioWaker(token, trio.Event())
            self._enlist(stream, what, waker, True)
            try:
                await waker.event.wait()
            finally:
                self._unwait(stream, waker)

    async def _wait_trio(self, _Body stream, int what):
        """trio's wait: the task that finds nobody driving waits for the backend fd
        (or libuv's next timer) and runs the loop; the others wait for its round. A
        chunk's wait runs the loop first (its sink was set without waking anyone,
        Wake.kCaller, as asyncio's wait() does). The driving task marks its own socket
        as asyncio's waits do (_mark_ms): a whole body of known length, or a chunk
        after the first, wakes it once that much is in, or after the mark's bound (or
        libuv's next timer, if sooner), when what came under the mark is read
        (Engine::expire_chunk_wait, which restarts the read timer) before the loop runs
        its timers. As in the sync wait, once a marked round runs out of time the rest
        of this wait is not marked: a slow sender's bytes are read as they come."""
        import trio

        cdef Transfer* t = stream.t.get()
        cdef vector[shared_ptr[Transfer]] signaled
        cdef int timeout
        cdef int mark_ms = _mark_ms(stream, what)
        cdef bint marked
        cdef bint run_first = what == <int>WaitFor.kBodyData
        cdef Engine* eng = self.engine.eng
        while not self.done(t, what):
            if self.trio_driving:
                if self.trio_event is None:
                    self.trio_event = trio.Event()
                await self.trio_event.wait()
                continue
            self.trio_driving = True
            self.trio_token = trio.lowlevel.current_trio_token()
            marked = False
            try:
                if run_first and not self.closed:
                    run_first = False
                    with nogil:
                        eng.run_nowait(signaled)
                    signaled.clear()
                    if self.done(t, what):
                        await trio.lowlevel.checkpoint()
                        continue
                if mark_ms > 0:
                    with nogil:
                        marked = eng.mark_chunk_wait(t[0]) == _CHUNK_MARKED
                    if marked:
                        _count_chunk_mark()
                with nogil:
                    timeout = eng.backend_timeout()
                if marked and (timeout < 0 or timeout > mark_ms):
                    timeout = mark_ms
                if timeout == 0:
                    await trio.lowlevel.checkpoint()
                else:
                    with trio.move_on_after(
                        timeout / 1000.0 if timeout > 0 else 3600.0
                    ) as scope:
                        self.trio_fd = eng.backend_fd()
                        try:
                            if self.trio_fd < 0:
                                # Closed meanwhile (aclose() in another thread):
                                # no fd to wait on; the loop is checked below.
                                await trio.lowlevel.checkpoint()
                            else:
                                await trio.lowlevel.wait_readable(self.trio_fd)
                        except trio.ClosedResourceError:
                            # aclose() in another task: the engine has failed
                            # every transfer, the loop is checked below.
                            pass
                    if marked and scope.cancelled_caught:
                        mark_ms = 0
                if not self.closed:
                    with nogil:
                        if marked:
                            eng.expire_chunk_wait(t[0])
                        eng.run_nowait(signaled)
                    signaled.clear()
            finally:
                if marked:
                    with nogil:
                        eng.end_chunk_wait(t[0])
                self.trio_driving = False
                event = self.trio_event
                self.trio_event = None
                if event is not None:
                    event.set()

    def __dealloc__(self):
        # An unclosed client: take the fd out of the event loop's selector
        # before the engine (and the fd) go away.
        self.detach()

    def close(self):
        """Before the engine closes: stop watching its fd (trio: wake the task
        waiting on it, which then sees its transfer failed)."""
        self.closed = True
        self.detach()
        if self.trio_driving:
            import trio

            token = self.trio_token
            try:
                here = trio.lowlevel.current_trio_token() is token
            except RuntimeError:  # not inside trio
                here = False
            if here:
                trio.lowlevel.notify_closing(self.trio_fd)
            elif token is not None:
                # The driving task runs in another thread's trio run: told there
                # (notify_closing acts on its own run's waiters only).
                try:
                    token.run_sync_soon(_trio_closing, self.trio_fd)
                except trio.RunFinishedError:
                    pass

    def resume_waiters(self):
        """After the engine closed: every waiting task resumes and finds its
        transfer failed (ReadError, as httpx), rather than being cancelled."""
        # Taken whole first: resuming another thread's waiter lets that thread run,
        # and its loop's driver calls change the dict.
        waiters, self.waiters = self.waiters, {}
        for entries in waiters.values():
            for entry in list(entries):
                _resume(entry[1])


def _resolve(fut):
    if not fut.done():
        fut.set_result(None)


def _trio_closing(int fd):
    """In the trio run whose task drives a driver closed by another thread: wake it."""
    import trio

    trio.lowlevel.notify_closing(fd)


@cython.final
cdef class _TrioWaker:
    """A waiter of a trio guest run's task (_AsyncDriver._wait_guest), in the driver's
    list beside asyncio futures: advance() and _resume call done() and set_result(),
    which sets the task's trio.Event in its run (through the run's token: callable from
    any thread, inside or outside the run's steps)."""

    cdef object token
    cdef readonly object event
    cdef bint woken

    def __cinit__(self, token, event):
        self.token = token
        self.event = event

    def done(self):
        return self.woken

    def set_result(self, result):
        if self.woken:
            return
        self.woken = True
        try:
            self.token.run_sync_soon(self.event.set)
        except Exception:  # trio.RunFinishedError: nothing waits in that run any more
            pass


cdef int _resume(object fut) except -1:
    """Resolve a waiter's future, in its own loop's thread: a driver of another thread's
    loop closed by this one (aclose) has its waiters there."""
    if fut.done():
        return 0
    if type(fut) is _TrioWaker:
        fut.set_result(None)
        return 0
    loop = fut.get_loop()
    if _asyncio is not None and _asyncio._get_running_loop() is loop:
        fut.set_result(None)
    elif not loop.is_closed():
        try:
            loop.call_soon_threadsafe(_resolve, fut)
        except RuntimeError:  # closed since: nothing waits in it any more
            pass
    return 0


@cython.no_gc_clear
cdef class _AsyncBody(_Body):
    """_Body for async use: the same transfer and steps, awaited through the driver."""

    cdef _AsyncDriver driver
    cdef bint counted  # in its driver's open_streams

    cdef void _release(self) noexcept:
        _Body._release(self)
        self._uncount()

    cdef void _uncount(self) noexcept:
        cdef _AsyncDriver driver = self.driver
        if self.counted:
            self.counted = False
            if driver is not None and driver.open_streams > 0:
                driver.open_streams -= 1

    def __dealloc__(self):
        self._uncount()

    def __aiter__(self):
        return _LazyAsyncIterator(self._aiter)

    async def _aiter(self):
        cdef _AsyncDriver driver = self.driver
        if self.closed:
            raise exc.StreamClosed()
        try:
            while True:
                if self.released:
                    chunk = self._closed_rest()
                    if not chunk:
                        break
                else:
                    # No wake-up for the driver: the next wait runs the loop itself.
                    chunk = self._chunk_buffered(Wake.kCaller)
                    if chunk is None:
                        self._chunk_start(Wake.kCaller)
                        # driver.wait(self, kBodyData), what it awaits awaited here.
                        waited = driver._chunk_waiter(self, True)
                        while waited is not None:
                            try:
                                await waited
                            finally:
                                driver._unwait(self, waited)
                            waited = driver._chunk_waiter(self, False)
                        chunk = self._chunk_take()
                        if chunk is None:
                            break
                piece = self._first_piece(chunk)
                chunk = None
                while piece is not None:
                    yield piece
                    piece = self._next_piece()
            piece = self._last_piece()
            if piece is not None:
                yield piece
        finally:
            self._sink_cleanup()
            self._release()
            self._free_ends()

    async def _httprs_aread_all(self):
        cdef int what
        cdef _AsyncDriver driver = self.driver
        try:
            what = self._read_all_start()
            while what >= 0:
                # driver.wait(self, what), its future awaited here (as _send_async's);
                # a large body's sink, with its socket marked (_wait_body_marked).
                waited = driver._body_waiter(self, what)
                while waited is not None:
                    try:
                        await waited
                    finally:
                        driver._unwait(self, waited)
                    waited = driver._waiter(self, what)
                what = self._read_all_step()
            return self._read_all_result()
        finally:
            self._read_all_cleanup()

    def _httprs_complete(self):
        """Whether the whole body is in already (read with the head, say): then
        `_httprs_aread_all()` would not wait, and `_httprs_read_all_now()` returns what
        it would (the client reads a small body so without awaiting a coroutine)."""
        return not self.closed and self.t.get().complete

    def _httprs_read_all_now(self):
        """`await _httprs_aread_all()` once `_httprs_complete()` said it needs no wait:
        the same steps, none of which waits for a complete transfer."""
        try:
            self._read_all_start()
            if self._read_all_step() >= 0:
                raise RuntimeError("httprs: a read without a wait found the body incomplete")
            return self._read_all_result()
        finally:
            self._read_all_cleanup()

    def __iter__(self):
        raise RuntimeError("Attempted to call a sync iterator on an async stream.")

    def _httprs_read_all(self):
        raise RuntimeError("Attempted to call a sync iterator on an async stream.")

    async def aclose(self):
        self._httprs_close_now()

    def _httprs_close_now(self):
        """What `await aclose()` does (nothing in it waits): close, then let the driver
        run a pass (the connection may take a queued request)."""
        self.close()
        self.driver.schedule()


cdef object _handle_async(object transport, object request):
    """AsyncHTTPTransport.handle_async_request(request)'s steps up to the exchange, whose
    coroutine it returns: the method awaits it, and so does the client itself while the
    transport's method is the stock one (lent as _HANDLE_ASYNC: one coroutine fewer)."""
    cdef _TransportCore core = transport._core
    if _engine_wanted(core):
        engine = _new_engine(transport._settings["limits"])
        driver = _AsyncDriver(engine)
        if _engine_wanted(core):  # (the GIL was released while they were made)
            old = transport._driver  # let go after both stores (see _reopen)
            transport._driver = driver
            _reopen(core, engine)
            old = None
    patch = _find_patch(_ASYNC_HOOKS)
    if patch is not None:
        return _send_via_httpcore_async(transport, patch, request)
    pool = _rewired_pool(transport)
    if pool is not None:
        return _send_via_rewired_pool_async(transport, pool, request)
    return _send_async(core, transport, request)


_HANDLE_ASYNC = PyCapsule_New(<void*>_handle_async, NULL, NULL)  # for _client


cdef _AsyncDriver _claim_driver(object transport):
    """The driver a request of the caller's event loop goes through, claimed for it (see
    _AsyncDriver.claim): one this thread's loop holds already (open streams), else the
    transport's own unless an event loop running in another thread holds it, else the
    first of its other drivers that no other thread's loop holds, else a new one, on an
    engine (a connection pool) of its own. So an AsyncClient serves event loops running
    at once in several threads, as httpx's does, each loop through its own connections
    (a connection's socket is watched by one loop); the limits hold for each of those
    pools. There are never more drivers than threads whose loops ran at once, and each
    keeps its connections for the next loop that takes it. Checked and claimed with the
    GIL held throughout (making an engine releases it: the new driver is then claimed by
    this thread alone)."""
    cdef _AsyncDriver driver = transport._driver
    cdef _AsyncDriver other
    others = transport._other_drivers
    if not driver.held_here():
        for other in others:
            if other.held_here():
                other.claim()
                return other
        if driver.busy_elsewhere():
            driver = None
    if driver is not None:  # (held here, or free: the usual case, one loop)
        driver.claim()
        return driver
    for other in others:
        if (
            not other.closed
            and not other.busy_elsewhere()
            and other.engine.eng.start_error() == 0  # (see _engine_wanted)
        ):
            other.claim()
            return other
    other = _AsyncDriver(_new_engine(transport._settings["limits"]))
    other.claim()
    if (<_TransportCore>transport._core).closed:
        # aclose() ran while the engine was made (the GIL let go): it is not one of the
        # transport's; the request fails as one in flight at aclose does (ReadError).
        other.close()
        other.engine.close()
        return other
    if other.engine.eng.start_error() == 0:  # (one without a loop fails its request)
        others.append(other)
    return other


# What only connect() fails with (a TLS handshake's reset or EOF is reported as it is).
cdef frozenset _CONNECT_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.ENETDOWN,
        errno.EHOSTDOWN,
        errno.EADDRNOTAVAIL,
    }
)


cdef int _as_the_async_backend_reports(object error, Transfer* t) except -1:
    """httpcore's async TCP connects go through anyio (asyncio) or trio, which wrap the
    socket's failure: httpx's ConnectError then says "All connection attempts failed"
    (anyio) or "all attempts to connect to HOST:PORT failed" (trio), caused by an
    OSError with those words and, below it, the socket's (code tells "server not
    running" by those words). A sync client's says the socket's message, as here."""
    below = error.__cause__
    if not isinstance(below, OSError) or below.errno not in _CONNECT_ERRNOS:
        return 0
    if _current_library() == "trio":
        host = t.spec.connect_host.decode("ascii", "replace")
        if ":" in host:
            host = f"[{host}]"
        message = f"all attempts to connect to {host}:{t.spec.connect_port} failed"
    else:
        message = "All connection attempts failed"
    error.args = (message,)
    wrapped = OSError(message)
    wrapped.__cause__ = below
    error.__cause__ = wrapped
    return 0


async def _send_async(_TransportCore core, object transport, object request):
    cdef _Body base
    cdef _AsyncDriver driver = _claim_driver(transport)
    try:
        # The driver's engine: a close and reopen in another thread meanwhile cannot
        # pair this transfer with an engine the driver does not run.
        base = core.start_async(request, driver.engine)
    except BaseException:
        driver.unclaim()
        raise
    cdef _AsyncBody stream = <_AsyncBody>base
    stream.driver = driver
    stream.counted = True  # (the claim is the stream's now)
    cdef Transfer* t = stream.t.get()
    cdef Engine* eng = stream.engine.eng
    with nogil:
        eng.watch(t[0])
    # (Also for a guarded request's connect gates, _GuardedConnect in _socket_guard.pxi,
    # and a patched getaddrinfo's, _resolve_at_gate in _httpcore_bridge.pxi.)
    cdef _Tracer tracer = (
        _Tracer.create(core, stream)
        if t.spec.trace or t.spec.consumer_gate != ConsumerGate.kNone
        else None
    )
    try:
        if tracer is not None:
            await _atrace_until(
                tracer, WaitFor.kBodyWanted if t.spec.body_streamed else WaitFor.kHead
            )
        if t.spec.body_streamed and not t.failed():
            await _upload_async(stream, request.stream)
        if tracer is not None:
            await _atrace_until(tracer, WaitFor.kHead)
        # driver.wait(stream, kHead), its future awaited here (two coroutines fewer).
        waited = driver._waiter(stream, <int>WaitFor.kHead)
        while waited is not None:
            try:
                await waited
            finally:
                driver._unwait(stream, waited)
            waited = driver._waiter(stream, <int>WaitFor.kHead)
    except BaseException as error:
        if tracer is not None:
            await tracer.afailed(error)
        stream._release()
        driver.schedule()
        raise
    if t.failed() and not t.head_ready:
        err = _error_to_exception(t.reported_error(), request)
        if type(err) is exc.ConnectError and not t.spec.uds:
            _as_the_async_backend_reports(err, t)
        if tracer is not None:
            await tracer.afailed(err)
        stream._release()
        raise err
    if tracer is not None:
        await tracer.ahead_received()
    return _make_response(stream, request, tracer if t.spec.trace else None)


async def _upload_async(_AsyncBody stream, object body):
    cdef Transfer* t = stream.t.get()
    cdef long long sent = 0
    if hasattr(body, "__aiter__"):
        iterator = body.__aiter__()
        is_async = True
    else:
        iterator = iter(body)
        is_async = False
    while True:
        await stream.driver.wait(stream, <int>WaitFor.kBodyWanted)
        if _upload_over(stream, t):
            return
        if is_async:
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                chunk = None
        else:
            chunk = next(iterator, None)
        sent = _push_upload_chunk(stream, chunk, sent)
        if chunk is None:
            return


class AsyncHTTPTransport(_CoreTransport, AsyncBaseTransport):
    """The default async transport: the C++ core driven from the event loop."""

    def _init_driving(self):
        self._driver = _AsyncDriver((<_TransportCore>self._core).engine)
        # Drivers (each on an engine of its own) of loops that ran while another
        # thread's loop had streams open on the transport's own (_claim_driver).
        self._other_drivers = []

    async def handle_async_request(self, request: Request) -> Response:
        return await _handle_async(self, request)

    async def aclose(self) -> None:
        cdef _TransportCore core = self._core
        cdef int open_connections = _open_connections_to_log(core)
        cdef _Engine engine = core.engine  # what is closed, whoever reopens the transport
        cdef _AsyncDriver driver = self._driver
        core.closed = True
        _forget_head(core)
        cdef _AsyncDriver other
        others = list(self._other_drivers)
        self._other_drivers.clear()
        driver.close()
        engine.close()  # in-flight transfers fail with kClosed (ReadError)
        driver.resume_waiters()
        for other in others:  # (their engines' connections are not logged)
            other.close()
            other.engine.close()
            other.resume_waiters()
        await _aclose_mocked_pools(self)
        _log_closed(open_connections)
