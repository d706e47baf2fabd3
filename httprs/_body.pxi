# A response body coming from the C++ core, the Response built around it, and
# the upload length check both drivers share (included into _core.pyx).

# The buffers the engine writes a response body into (each becomes the `bytes`
# object the caller gets, so the body is copied once, or not at all when read
# straight from the socket). Allocating untouched memory costs address space,
# not pages, so a body of known length gets its whole length at once up to
# FIRST_SINK (16 MiB: tests/test_faults.py bounds what a bare header may make
# the client allocate); beyond that, and for bodies of unknown length (first
# sized from the last one, see _Engine.unknown_hint), the buffer grows
# (eightfold up to the declared length, else doubling) as it fills while the
# engine pauses reading: one header cannot make the client allocate gigabytes up
# front.
DEF FIRST_SINK = 16 * 1024 * 1024
DEF UNKNOWN_SINK = 256 * 1024  # first buffer for a body of unknown length
# Streaming: each stream's chunks go into STREAM_SINK_SMALL buffers until one read has
# filled one (the socket had that much queued: the server is quicker than the
# consumer), then into STREAM_SINK ones (see _Body._chunk_buffer_size). A chunk that
# can take at most STREAM_SINK_SMALL (a known length's rest: a 1 MB body's after the
# head) always gets a small one, so that it, handed out in place, is at least half
# its buffer.
DEF STREAM_SINK = 2 * 1024 * 1024  # the most one chunk holds
DEF STREAM_SINK_SMALL = 1024 * 1024
# At most this many streams of the process read into STREAM_SINK buffers at once
# (the others stay at STREAM_SINK_SMALL): each one's reads fill its room when the
# consumer is slower than the server, so 30 streams at once that all grew held
# ~4 MiB each (the sink, and the chunk the consumer holds), twice 1 MiB ones.
DEF STREAMS_GROWN_MAX = 2
# A streamed chunk's sink counts as full once less than a read's worth of room is left
# (Http1Session::kMinRead, sink_full: a chunked body's chunks stop short of the end).
DEF CHUNK_SLACK = 16 * 1024
# `_Body.expected` of a body of unknown length (chunked or close-delimited).
DEF UNKNOWN_LENGTH = 0xFFFFFFFFFFFFFFFF

# A whole-body buffer of HUGE_SINK or more is a mapping of its own (glibc maps
# every block above 32 MiB by itself, and grows it with mremap), fresh each time,
# so filling it faulted in every 4 KiB page: 25,600 faults per 100 MB. Such a
# buffer asks for transparent huge pages on the whole 2 MiB ranges inside it
# (a hint: nothing changes where THP is off). Huge pages that a regrowth then
# moves cost more than they save, so a body of known length grows eightfold,
# not twofold: a 100 MB one is 16 MiB of small pages, then one regrowth to its
# length filled through huge pages (~4,650 faults instead of 25,600). Smaller
# buffers come from glibc's heap once its threshold has risen, and fault only
# the first time.
DEF HUGE_SINK = 32 * 1024 * 1024

cdef extern from *:
    """
    #include <stdint.h>
    #include <sys/mman.h>
    static void httprs_advise_huge_pages(char* buf, size_t len) {
    #ifdef MADV_HUGEPAGE
      const uintptr_t huge = (uintptr_t)2 << 20;
      uintptr_t start = ((uintptr_t)buf + huge - 1) & ~(huge - 1);
      uintptr_t end = ((uintptr_t)buf + len) & ~(huge - 1);
      if (end > start) (void)madvise((void*)start, end - start, MADV_HUGEPAGE);
    #else
      (void)buf;
      (void)len;
    #endif
    }
    """
    void httprs_advise_huge_pages(char* buf, size_t len) nogil

cdef extern from "Python.h":
    PyObject* _new_bytes "PyBytes_FromStringAndSize"(const char* data, Py_ssize_t size) except NULL
    int _PyBytes_Resize(PyObject** obj, Py_ssize_t size) except -1
    char* _bytes_data "PyBytes_AS_STRING"(PyObject* obj)
    void _Py_XDECREF "Py_XDECREF"(PyObject* obj)
    const Py_ssize_t PY_SSIZE_T_MAX


@cython.final
cdef class _Parked:
    """What the engine may still touch after its response was let go of: the release
    was only queued (Engine::release_deferred, from a finaliser, or from Python code
    run inside a TLS callback, where this thread holds the engine mutex). Until the
    transfer shows released, the engine may read the fixed request body (`pin`: an
    HTTP/2 stream reads it as the server's window opens, HTTP/1.1 from the socket's
    write queue) and write into the body buffer (`sink`, owned). The engine has reset
    the stream or closed the connection, and cleared the sink, before it sets
    released; then the record goes."""

    cdef shared_ptr[Transfer] t
    cdef object pin
    cdef PyObject* sink

    def __dealloc__(self):
        _Py_XDECREF(self.sink)


cdef list _parked = []


cdef void _park(shared_ptr[Transfer] t, object pin, PyObject* sink) noexcept:
    """Keep `pin` and `sink` (its reference is taken over) until `t` shows released."""
    cdef _Parked parked
    try:
        parked = _Parked.__new__(_Parked)
        parked.t = t
        parked.pin = pin
        _parked.append(parked)
    except BaseException:  # no memory for the record: leak both rather than free them early
        Py_INCREF(pin)
        return
    parked.sink = sink  # only once listed: an unlisted record would free it now


# Streaming reads each chunk into one buffer (a STREAM_SINK bytes object),
# kept from chunk to chunk: a chunk that fills it is handed out as it is (and
# the next chunk gets another buffer), a partly filled one is copied out at its
# size. Shrinking a partly filled buffer in place instead (realloc) made glibc
# map and unmap each chunk's pages. 1 MiB rather than 256 KiB: every read the
# consumer makes room for costs the kernel window updates and a wake-up of the
# sender (a 10 MB stream cost ~40% more CPU than `.content` at 256 KiB). 2 MiB
# once a 1 MiB read came full: read 1 MiB at a time while ~1.5 MB stayed queued, a
# share of connections kept the kernel's receive buffer at its first ~2 MB
# (autotuning never saw a read take more than what stayed queued), the sender
# window-limited, and each read then ran the sender's transmit in this process:
# streaming 10 MB cost ~40% more CPU on such a connection. Reads of up to 2 MiB
# drain the queue, and the buffer grows (docs/ARCHITECTURE.md). A stream whose
# reads never fill 1 MiB (a slower sender) keeps 1 MiB buffers, and a 1 MiB read
# mark (the mark is the sink's room): half the memory per stream.
#
# Buffers come from a small process-wide pool (GIL held), which also keeps a
# reference to each buffer it hands out as a chunk: once the consumer has let
# go of that chunk (the pool's is the only reference left), the buffer is
# written again for a later chunk, of this response or the next. Without it
# every chunk was a fresh block, and glibc, trimming the top of its heap as each
# response's chunks were freed, faulted their pages in again on the next
# response (1 MB streamed in 256 KiB chunks: ~125 page faults and 3 brk calls).
# A chunk the consumer still holds is never touched: with nothing free, a new
# buffer is made. A slot of each size, so the pool keeps at most 3 MiB: a stream
# alternates two buffers (the one a for loop's variable still holds, and the one
# before it, free again), and the second comes from glibc's heap each time (its
# mmap threshold has risen past 2 MiB by then: no fresh pages, ~0-2 faults per
# 10 MB streamed, as with two slots of each size).
DEF SINK_POOL_LARGE = 1  # STREAM_SINK slots: 0 .. SINK_POOL_LARGE - 1
DEF SINK_POOL_SMALL = 1  # STREAM_SINK_SMALL slots: the rest
DEF SINK_POOL = SINK_POOL_LARGE + SINK_POOL_SMALL
cdef PyObject* _sink_pool[SINK_POOL]  # owned references, or NULL
cdef int _streams_grown = 0  # _Body objects with sink_grown set (GIL held)
# The Engine::fork_generation() that _streams_grown counts the leases of: a child of
# os.fork() starts at 0 (_grown_count_now), since the streams other threads held
# at fork() are never released there (those threads did not come along).
cdef unsigned long long _streams_grown_forks = 0
cdef int _sink_pool_next[2]  # [0] small, [1] large: the slot (within its size's) a buffer goes to when none is free


cdef extern from *:
    """
    #include <Python.h>
    /* A bytes object about to be written again (this module made it, and
       holds the only reference): forget a hash computed from its old bytes.
       ob_shash is deprecated since 3.11, but still what hash() caches. */
    static void httprs_bytes_forget_hash(PyObject* o) {
    #if defined(__GNUC__)
    #pragma GCC diagnostic push
    #pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    #endif
      ((PyBytesObject*)o)->ob_shash = -1;
    #if defined(__GNUC__)
    #pragma GCC diagnostic pop
    #endif
    }
    /* The length of a bytes object this module holds the only reference to,
       within the length it was made with (no realloc: the block keeps its size). */
    static void httprs_bytes_set_length(PyObject* o, Py_ssize_t n) {
      Py_SET_SIZE(o, n);
      PyBytes_AS_STRING(o)[n] = 0;
    }
    """
    void httprs_bytes_forget_hash(PyObject* o)
    void httprs_bytes_set_length(PyObject* o, Py_ssize_t n)
    Py_ssize_t _refcnt "Py_REFCNT"(PyObject* o)


cdef inline unsigned long long _grown_count_now() noexcept:
    """The fork generation, after setting _streams_grown to 0 if it is the
    parent's (the first call in a child of os.fork())."""
    global _streams_grown, _streams_grown_forks
    cdef unsigned long long forks = Engine.fork_generation()
    if forks != _streams_grown_forks:
        _streams_grown_forks = forks
        _streams_grown = 0
    return forks


cdef inline bint _pooled_size(size_t cap) noexcept:
    return cap == STREAM_SINK or cap == STREAM_SINK_SMALL


cdef inline size_t _pool_slot_size(int i) noexcept:
    return STREAM_SINK if i < SINK_POOL_LARGE else STREAM_SINK_SMALL


cdef PyObject* _take_pooled_sink(size_t size) noexcept:
    """A pooled bytes object of `size` (STREAM_SINK or STREAM_SINK_SMALL) nobody
    else refers to (the reference is the caller's), or NULL."""
    cdef PyObject* sink
    cdef int i
    cdef int first = 0 if size == STREAM_SINK else SINK_POOL_LARGE
    cdef int last = SINK_POOL_LARGE if size == STREAM_SINK else SINK_POOL
    for i in range(first, last):
        sink = _sink_pool[i]
        if sink != NULL and _refcnt(sink) == 1:
            _sink_pool[i] = NULL
            httprs_bytes_forget_hash(sink)
            httprs_bytes_set_length(sink, <Py_ssize_t>size)  # handed out shorter, maybe
            return sink
    return NULL


cdef void _pool_sink(PyObject* sink, size_t size) noexcept:
    """Take over a reference to `sink` (a bytes object of `size`, STREAM_SINK or
    STREAM_SINK_SMALL, no engine writes into any more, maybe handed out as a
    chunk), in a slot of its size: an empty one, else one whose buffer is in use
    elsewhere (dropping the pool's reference frees nothing), else the next in turn. A
    free buffer of the other size is never let go of for it."""
    cdef int large = size == STREAM_SINK
    cdef int first = 0 if large else SINK_POOL_LARGE
    cdef int count = SINK_POOL_LARGE if large else SINK_POOL_SMALL
    cdef int i
    cdef int slot = -1
    for i in range(first, first + count):
        if _sink_pool[i] == NULL:
            slot = i
            break
    if slot < 0:
        for i in range(first, first + count):
            if _refcnt(_sink_pool[i]) > 1:
                slot = i
                break
    if slot < 0:
        slot = first + _sink_pool_next[large]
        _sink_pool_next[large] = (_sink_pool_next[large] + 1) % count
    _Py_XDECREF(_sink_pool[slot])
    _sink_pool[slot] = sink


def _sink_pool_state():
    """Tests: the pooled stream buffers, as (slot, reference count) pairs."""
    return [(i, _refcnt(_sink_pool[i])) for i in range(SINK_POOL) if _sink_pool[i] != NULL]


def _sink_pool_ids():
    """Tests: the id() of each pooled stream buffer."""
    return [<size_t>_sink_pool[i] for i in range(SINK_POOL) if _sink_pool[i] != NULL]


def _streams_grown_count():
    """Tests: how many streams read into STREAM_SINK buffers now."""
    _grown_count_now()
    return _streams_grown


def _sink_pool_sizes():
    """Tests: {id(): size} of each pooled stream buffer."""
    return {<size_t>_sink_pool[i]: _pool_slot_size(i) for i in range(SINK_POOL) if _sink_pool[i] != NULL}


# How often a streamed chunk's sync wait comes back to check for signals. Tests
# lengthen it (_set_chunk_wait_slice): then only the engine's own bound on a wait
# for the rest of a chunk (Engine::kLowatChunkMs) ends it early.
cdef int _chunk_slice_ms = SLICE_MS


def _set_chunk_wait_slice(int ms):
    """Tests: a streamed chunk's sync wait slice in ms; returns the one it replaces."""
    global _chunk_slice_ms
    old = _chunk_slice_ms
    _chunk_slice_ms = ms if ms > 0 else SLICE_MS
    return old


cdef void _free_parked() noexcept:
    cdef _Parked p
    cdef list keep = []
    for p in _parked:
        if not p.t.get().released:
            keep.append(p)
    _parked[:] = keep


def _parked_count():
    """Tests: request bodies and body buffers kept for transfers whose release is
    still queued."""
    return len(_parked)


@cython.no_gc_clear
cdef class _Body:
    """The body of a response coming from the C++ core.

    Iterating yields raw (undecoded) chunks as they arrive, each a `bytes`
    object the engine wrote into (`STREAM_SINK` at most); `_httprs_read_all`
    returns the whole body at once, written by the engine into one bytes
    object, grown as needed when the length is unknown. Closing before the
    end closes the connection.

    The sync and async twins share every step below; they differ only in how
    they wait (`_wait` with the GIL released, or the async driver). Whatever
    ends a read (the body, an error, a signal handler raising, a task being
    cancelled), `_sink_cleanup` detaches the engine from the buffer before
    the buffer is freed.

    no_gc_clear: a cycle through the request must not clear `engine` before
    `__dealloc__` has released the transfer (pool slot, request body).
    """

    cdef _Engine engine
    cdef shared_ptr[Transfer] t
    cdef object request
    cdef object body_ref  # the request body bytes, pinned while C++ may read them
    cdef bint closed
    cdef bint released
    cdef bint ended_before_release  # the body was all in when it was released
    cdef long long declared  # streamed body: bytes the head declares; -1 when chunked
    cdef PyObject* sink  # the bytes object the engine writes into (owned), or NULL
    cdef size_t sink_cap
    cdef bint sink_grown  # streaming: reads into STREAM_SINK buffers (one of _streams_grown)
    cdef unsigned long long grown_forks  # the fork generation sink_grown was counted in
    cdef size_t sink_room  # streaming: the attached chunk's room
    cdef bint sink_bounded  # streaming: a chunk's room was its buffer's size
    cdef bint sink_filled  # streaming: such a chunk came (within CHUNK_SLACK) full
    cdef unsigned long long expected  # read_all: Content-Length, or UNKNOWN_LENGTH
    cdef unsigned long long streamed  # iteration: body bytes yielded so far
    # HTTP/2: the arrived part of a DATA frame still coming (h2 gives httpx whole
    # frames), yielded with the rest of its frame, or at the body's end; else None.
    cdef bytes held
    # The chunk being cut into pieces (_first_piece, _next_piece): its body offset,
    # the next of ends_taken to look at, and where its next piece starts.
    cdef bytes cut_chunk
    cdef unsigned long long cut_start, cut_at
    cdef size_t cut_end

    # -- shared steps ---------------------------------------------------------------

    cdef object _closed_error(self):
        return exc.ReadError("The response was closed while it was being read.", request=self.request)

    cdef object _closed_rest(self):
        """Iterating on after close(): what a complete body still holds (the engine is
        done with it once released), b"" at its end; a body cut short by the close
        raises. So a loop that closes its response and reads on ends as httpx's does,
        after the body's rest, rather than failing."""
        cdef Transfer* t = self.t.get()
        cdef string rest
        if not self.ended_before_release or t == NULL or not t.released:
            raise self._closed_error()
        rest.swap(t.body_buf)
        # (The engine is done with both.)
        t.ends_taken.insert(t.ends_taken.end(), t.chunk_ends.begin(), t.chunk_ends.end())
        t.chunk_ends.clear()
        self.streamed += rest.size()
        return <bytes>rest

    cdef object _first_piece(self, bytes chunk):
        """What a streamed chunk (the last bytes taken) yields first: the chunk itself
        where nothing cuts it, else its first piece (None: it all waits in `held`);
        _next_piece gives the rest. A chunk of an HTTP/1.1 chunked body or an HTTP/2
        DATA frame that ends inside it (ends_taken) is cut there, as httpx yields them
        (h11 and h2 hand each apart). Of an HTTP/2 body, a tail that ends no frame is
        the arrived part of a frame still coming, or the last frame (whose end is the
        body's, not recorded): kept (`held`) to go out with the rest of its frame, as
        h2 hands httpx whole frames, or at the body's end (_last_piece). (Not decided
        by `t.complete`, read after the take let the engine go: another thread may
        have ended the stream since, with more of the frame.) An empty chunk (a take
        that brought no bytes) yields the held part if its frame has ended."""
        cdef Transfer* t = self.t.get()
        if PyBytes_GET_SIZE(chunk) == 0:
            return self._held_if_ended()
        if t.ends_taken.empty() and self.held is None and not t.http2:
            return chunk
        self.cut_chunk = chunk
        self.cut_start = self.streamed - <unsigned long long>PyBytes_GET_SIZE(chunk)
        self.cut_end = 0
        self.cut_at = 0
        return self._next_piece()

    cdef object _next_piece(self):
        """The next piece of the chunk _first_piece began to cut (from cut_at, ends from
        cut_end on); None after the last. One piece at a time: a take of a million tiny
        chunks never holds a million bytes objects. A held part goes out at the front
        of the next piece."""
        cdef bytes chunk = self.cut_chunk
        if chunk is None:
            return None
        cdef vector[uint64_t]* ends = &self.t.get().ends_taken
        cdef unsigned long long n = <unsigned long long>PyBytes_GET_SIZE(chunk)
        cdef unsigned long long start = self.cut_start
        cdef unsigned long long at = self.cut_at
        cdef unsigned long long cut = n
        cdef unsigned long long e
        cdef bint tail_ends = False
        while self.cut_end < ends.size():
            e = ends[0][self.cut_end]
            if e <= start + at:
                self.cut_end += 1
                if e == start and self.held is not None:
                    # The held part's frame ended where this chunk starts (its
                    # padding came after its data): it goes out alone, first.
                    piece, self.held = self.held, None
                    return piece
                continue
            if e - start < n:
                cut = e - start
                self.cut_end += 1
            else:
                tail_ends = e - start == n
            break
        if at == 0 and cut == n:
            piece = chunk
        else:
            piece = PyBytes_FromStringAndSize(PyBytes_AS_STRING(chunk) + at, <Py_ssize_t>(cut - at))
        self.cut_at = cut
        if self.held is not None:
            piece = self.held + piece
            self.held = None
        if cut == n:
            self.cut_chunk = None
            ends.clear()  # all used: every end handed over lies within the bytes taken
            if self.t.get().http2 and not tail_ends:
                self.held = piece
                return None
        return piece

    cdef object _held_if_ended(self):
        """After a take that brought no bytes: the held part, if the ends it handed
        over say its frame ended where the bytes taken end (an HTTP/2 frame whose
        padding came after its data: Transfer::frame_end_waits); else None."""
        cdef vector[uint64_t]* ends = &self.t.get().ends_taken
        piece = None
        if self.held is not None and not ends.empty() and ends.back() == self.streamed:
            piece, self.held = self.held, None
        ends.clear()
        return piece

    cdef object _last_piece(self):
        """At the body's end: the part of its last frame still held, or None."""
        piece, self.held = self.held, None
        return piece

    cdef int _attach_sink(self, size_t cap, size_t fill) except -1:
        """Hand the engine `self.sink` (new or regrown to `cap`) from `fill` on."""
        cdef Transfer* t = self.t.get()
        cdef char* buf
        if self.sink == NULL:
            self.sink = _new_bytes(NULL, <Py_ssize_t>cap)
        else:
            _PyBytes_Resize(&self.sink, <Py_ssize_t>cap)
        self.sink_cap = cap
        buf = _bytes_data(self.sink)
        with nogil:
            if cap >= HUGE_SINK:
                httprs_advise_huge_pages(buf, cap)
            self.engine.eng.set_sink(t[0], buf, cap, fill, SinkUse.kWhole, Wake.kDriver)
        return 0

    cdef size_t _chunk_buffer_size(self, size_t cap) noexcept:
        """Streaming: the buffer for a chunk of at most `cap` bytes (its room is the
        smaller of the two, and so is its read mark). One that may take more than
        half a pooled buffer gets one (handed out at its length, in place, and pooled
        after, as is one that stops short of its room: a 1 MB body's 1 MB - 16 KiB
        rest, or what came before the server paused, is not copied out), so a kept
        chunk holds at most twice its size: STREAM_SINK_SMALL until a read has
        filled one, or when the chunk can take no more; else STREAM_SINK. A smaller
        chunk gets a buffer of its size (`cap`), or a free pooled one."""
        if cap <= STREAM_SINK_SMALL // 2:
            return cap
        if cap <= STREAM_SINK_SMALL or not self.sink_grown:
            return STREAM_SINK_SMALL
        return STREAM_SINK

    cdef void _grow(self) noexcept:
        """Streaming: a read filled a small buffer (to within CHUNK_SLACK: the socket
        had that much queued, or the sender is that quick): the next chunks get a
        larger room, which drains it (see STREAM_SINK), while fewer than
        STREAMS_GROWN_MAX streams have one. Never once released: _end_growth has
        run then (another thread's close() can run it while this one's last read is
        detached without the GIL), and nothing but freeing the response would give
        the lease back."""
        global _streams_grown
        cdef unsigned long long forks
        if self.sink_grown or self.released:
            return
        forks = _grown_count_now()
        if _streams_grown < STREAMS_GROWN_MAX:
            self.sink_grown = True
            self.grown_forks = forks
            _streams_grown += 1

    cdef void _bounded_chunk(self, size_t fill) noexcept:
        """Streaming: a chunk whose room was its pooled buffer's size came with `fill`
        bytes: a small buffer filled makes the stream grow."""
        self.sink_bounded = True
        if fill + CHUNK_SLACK > self.sink_cap:
            self.sink_filled = True
            if self.sink_cap == STREAM_SINK_SMALL:
                self._grow()

    cdef void _end_growth(self) noexcept:
        """The stream reads no more (released): another may grow; the next stream of
        this client starts grown if this one's reads filled their buffers."""
        global _streams_grown
        if self.sink_bounded and self.engine is not None:
            self.engine.stream_hint = self.sink_filled
            self.sink_bounded = False
        if self.sink_grown:
            self.sink_grown = False
            if self.grown_forks == _grown_count_now():  # (a parent's lease is not counted here)
                _streams_grown -= 1

    cdef int _attach_chunk_sink(self, size_t cap, Wake wake) except -1:
        """Streaming: hand the engine room for one chunk of at most `cap` bytes, in
        the buffer kept from the last chunk, a pooled one, or a new one."""
        cdef Transfer* t = self.t.get()
        cdef char* buf
        cdef size_t size = self._chunk_buffer_size(cap)
        cdef bint small = not _pooled_size(size)  # any buffer of `cap` bytes or more will do
        if self.sink != NULL and self.sink_cap != size and (not small or self.sink_cap < cap):
            # Detached (the last chunk was copied out of it): pooled again, or freed.
            if _pooled_size(self.sink_cap):
                _pool_sink(self.sink, self.sink_cap)
            else:
                _Py_XDECREF(self.sink)
            self.sink = NULL
        if self.sink == NULL:
            self.sink_cap = size
            if small:  # a free pooled buffer, else one of its own
                self.sink_cap = STREAM_SINK_SMALL
                self.sink = _take_pooled_sink(self.sink_cap)
                if self.sink == NULL:
                    self.sink_cap = STREAM_SINK
                    self.sink = _take_pooled_sink(self.sink_cap)
                if self.sink == NULL:
                    self.sink_cap = cap
            else:
                self.sink = _take_pooled_sink(self.sink_cap)
            if self.sink == NULL:
                self.sink = _new_bytes(NULL, <Py_ssize_t>self.sink_cap)
        buf = _bytes_data(self.sink)
        if cap > self.sink_cap:
            cap = self.sink_cap
        self.sink_room = cap
        with nogil:
            self.engine.eng.set_sink(t[0], buf, cap, 0, SinkUse.kChunk, wake)
        return 0

    cdef object _take_chunk(self, size_t fill):
        """Streaming: the chunk the detached sink holds (`fill` bytes): the buffer
        itself when full, or when it is a pooled one at least half full (a chunked
        body's chunks stop short of the end, see Http1Session::sink_full); its
        length is then cut in place, no realloc, so it keeps its block for the
        next time. Else a copy, so a small chunk never holds a large block."""
        if fill == self.sink_cap:
            chunk = self._take_sink(fill)  # full: it is the chunk, no copy
        elif _pooled_size(self.sink_cap) and fill >= self.sink_cap // 2:
            httprs_bytes_set_length(self.sink, <Py_ssize_t>fill)
            chunk = <object>self.sink
            _Py_XDECREF(self.sink)
            self.sink = NULL
        else:
            return PyBytes_FromStringAndSize(_bytes_data(self.sink), <Py_ssize_t>fill)
        if _pooled_size(self.sink_cap):
            Py_INCREF(chunk)
            _pool_sink(<PyObject*>chunk, self.sink_cap)  # written again once dropped
        return chunk

    cdef object _take_sink(self, size_t fill):
        """The detached sink as a bytes object of `fill` bytes (ours no more)."""
        if fill < self.sink_cap:
            _PyBytes_Resize(&self.sink, <Py_ssize_t>fill)
        out = <object>self.sink
        _Py_XDECREF(self.sink)
        self.sink = NULL
        return out

    cdef void _sink_cleanup(self) noexcept:
        """After a read or a chunk, whatever ended it: detach, then free the sink."""
        if self.sink == NULL:
            return
        if httprs_in_tls_callback():
            # A finaliser run inside a TLS callback (this thread holds the
            # engine mutex): the release is deferred, so the engine may still
            # write here until it runs; keep the buffer until then.
            self._release()
            _park(self.t, None, self.sink)
            self.sink = NULL
            return
        with nogil:
            self.engine.eng.detach_sink(self.t.get()[0], NULL)
        if _pooled_size(self.sink_cap):
            _pool_sink(self.sink, self.sink_cap)
        else:
            _Py_XDECREF(self.sink)
        self.sink = NULL

    cdef int _chunk_start(self, Wake wake=Wake.kDriver) except -1:
        """Streaming: give the engine a fresh buffer for the next chunk (it copies
        what is buffered first). The caller waits for kBodyData next (with
        Wake.kCaller: a wait that runs the loop, or wakes its driver, itself)."""
        cdef Transfer* t = self.t.get()
        cdef size_t cap = STREAM_SINK
        cdef unsigned long long left
        if self.released:
            raise self._closed_error()
        if _parked:
            _free_parked()
        if t.head.has_content_length:
            # Never more than the rest of the body; nothing once it is all here.
            left = 0
            if t.head.content_length > self.streamed:
                left = t.head.content_length - self.streamed
            if left < cap:
                cap = <size_t>left
        elif t.complete:
            # All here, buffered: the engine touches the buffer no more.
            cap = min(cap, t.body_buf.size())
        if cap > 0:
            if self.engine.stream_hint and not self.sink_grown and cap > STREAM_SINK_SMALL:
                # This client's last stream filled its buffers. (Not a rest that fits
                # a small buffer: it never reads into a large one, and held open it
                # would keep one of the leases for nothing.)
                self._grow()
            self._attach_chunk_sink(cap, wake)
        return 0

    cdef object _chunk_buffered(self, Wake wake=Wake.kDriver):
        """Streaming: the body bytes buffered with no sink attached (those read with
        the head), as a chunk of their own: one copy, where going through the chunk's
        sink made two. None when nothing is buffered (then _chunk_start)."""
        cdef string chunk
        cdef cbool took
        if self.released:
            raise self._closed_error()
        with nogil:
            took = self.engine.eng.take_buffered(self.t.get()[0], chunk, STREAM_SINK, wake)
        if not took:
            return None
        self.streamed += chunk.size()
        return <bytes>chunk

    cdef object _chunk_take(self):
        """After the wait: a chunk, b"" to wait again, or None at the end."""
        cdef string chunk
        cdef size_t fill = 0
        cdef Transfer* t = self.t.get()
        if self.released:
            # Closed by another thread or task while this one was iterating.
            self._sink_cleanup()
            raise self._closed_error()
        if self.sink != NULL:
            with nogil:
                fill = self.engine.eng.detach_sink(t[0], NULL)
            if fill > 0:
                self.streamed += fill
                if self.sink_room == self.sink_cap and _pooled_size(self.sink_cap):
                    self._bounded_chunk(fill)
                return self._take_chunk(fill)
        with nogil:
            self.engine.eng.take_body(t[0], chunk)
        if chunk.size() > 0:
            self.streamed += chunk.size()
            return <bytes>chunk
        if t.failed():
            raise _error_to_exception(t.error, self.request)
        if t.complete:
            return None
        return b""

    cdef int _read_all_start(self) except -1:
        """Begin reading the whole body; returns the first WaitFor."""
        cdef Transfer* t = self.t.get()
        cdef size_t cap
        if self.closed:
            raise exc.StreamClosed()
        if _parked:
            _free_parked()
        if t.complete:
            # Already buffered in full: _read_all_result takes it.
            return <int>WaitFor.kComplete
        if t.head.has_content_length:
            self.expected = t.head.content_length
            cap = <size_t>min(self.expected, <unsigned long long>FIRST_SINK)
        else:
            self.expected = UNKNOWN_LENGTH
            cap = max(<size_t>UNKNOWN_SINK, min(self.engine.unknown_hint, <size_t>FIRST_SINK))
        self._attach_sink(cap, 0)
        return <int>WaitFor.kSinkFull

    cdef int _read_all_step(self) except -2:
        """After a wait: the next WaitFor, or -1 once the body is complete."""
        cdef Transfer* t = self.t.get()
        cdef Engine* eng = self.engine.eng
        cdef size_t fill
        cdef size_t extra = 0
        cdef size_t cap
        cdef cbool complete
        cdef bint known = self.expected != UNKNOWN_LENGTH
        if self.released:
            raise self._closed_error()
        if t.failed():
            raise _error_to_exception(t.error, self.request)
        complete = t.complete
        if self.sink == NULL or (known and self.sink_cap >= self.expected):
            # Full size already: anything beyond is an error found at the end.
            return -1 if complete else <int>WaitFor.kComplete
        # The buffer is full (or the body ended, maybe with bytes kept aside
        # when the buffer was full): resize it; the engine copies what it kept.
        with nogil:
            fill = eng.detach_sink(t[0], &extra)
        if complete:
            cap = <size_t>self.expected if known else fill + extra
        elif self.sink_cap >= <size_t>PY_SSIZE_T_MAX:
            raise exc.RemoteProtocolError(
                f"Content-Length {self.expected} is too large"
                if known
                else "Response body is too large",
                request=self.request,
            )
        elif known:
            # Eightfold: few regrowths (each may move the mapping; a body that has sent
            # FIRST_SINK bytes gets its declared length, up to 128 MiB, in one step).
            cap = <size_t>min(<unsigned long long>self.sink_cap * 8, self.expected)
        else:
            cap = self.sink_cap * 2
        cap = min(cap, <size_t>PY_SSIZE_T_MAX)
        self._attach_sink(cap, fill)
        return -1 if complete else <int>WaitFor.kSinkFull

    cdef object _read_all_result(self):
        """The body, once _read_all_step said it is complete."""
        cdef Transfer* t = self.t.get()
        cdef string rest
        cdef size_t fill
        cdef size_t extra = 0
        if self.sink == NULL:
            if t.complete:
                # The engine is done with the buffer of a complete body: no lock
                # (and no GIL release) to take it, nor the ends of its chunks
                # recorded before the read began (kept, they would hold memory).
                rest.swap(t.body_buf)
                t.chunk_ends.clear()
                t.chunk_ends.shrink_to_fit()
            else:
                with nogil:
                    self.engine.eng.take_body(t[0], rest)
            return <bytes>rest
        with nogil:
            fill = self.engine.eng.detach_sink(t[0], &extra)
        if self.expected != UNKNOWN_LENGTH and (fill != self.expected or extra != 0):
            raise exc.RemoteProtocolError(
                f"received {fill + extra} body bytes, expected {self.expected}",
                request=self.request,
            )
        if extra != 0:  # cannot happen: the last step made room for all of it
            raise exc.RemoteProtocolError(
                "response body overflowed its buffer", request=self.request
            )
        if self.expected == UNKNOWN_LENGTH:
            # One byte more: the same body again never fills the buffer (which
            # would make the engine pause and the buffer grow for nothing), and
            # the allocator can hand back the block this one leaves.
            self.engine.unknown_hint = fill + 1
        return self._take_sink(fill)

    cdef void _read_all_cleanup(self) noexcept:
        """Always run after a read_all: detach and free the buffer, release."""
        self._sink_cleanup()
        self._release()
        self._free_ends()

    cdef void _free_ends(self) noexcept:
        """Done reading: the chunk ends handed over keep no room (a kept response of a
        body of tiny chunks would hold megabytes), nor a piece or a frame's part that
        was never yielded (an error, or the consumer stopped)."""
        cdef Transfer* t = self.t.get()
        self.held = None
        self.cut_chunk = None
        if t != NULL:
            t.ends_taken.clear()
            t.ends_taken.shrink_to_fit()

    # -- sync -----------------------------------------------------------------------

    def __iter__(self):
        cdef Transfer* t = self.t.get()
        if self.closed:
            raise exc.StreamClosed()
        try:
            while True:
                if self.released:
                    chunk = self._closed_rest()
                    if not chunk:
                        break
                else:
                    chunk = self._chunk_buffered()
                    if chunk is None:
                        self._chunk_start()
                        _wait(self.engine, t, WaitFor.kBodyData, _chunk_slice_ms)
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

    def _httprs_read_all(self):
        cdef int what
        try:
            what = self._read_all_start()
            while what >= 0:
                _wait(self.engine, self.t.get(), <WaitFor>what)
                what = self._read_all_step()
            return self._read_all_result()
        finally:
            self._read_all_cleanup()

    cdef void _release(self) noexcept:
        cdef Engine* eng
        cdef Transfer* t
        if not self.released:
            self.released = True
            self._end_growth()
            eng = self.engine.eng
            t = self.t.get()
            if t != NULL:
                # Read before the release: releasing a body not all in lets the
                # connection read its rest into the void and mark it complete.
                self.ended_before_release = t.complete and not t.failed()
                if httprs_in_tls_callback():
                    # A finaliser (say a suspended iterator's `finally`) run by
                    # Python code inside a TLS callback: this thread holds the
                    # engine mutex. The engine may read the request body until
                    # the release has run.
                    eng.release_deferred(self.t)
                    if self.body_ref is not None and not t.released:
                        _park(self.t, self.body_ref, NULL)
                elif not eng.try_release(t[0]):
                    # Another thread holds the engine mutex: wait for it without
                    # the GIL. (try_release never waits: the GIL is kept when the
                    # mutex is free, so a waiting thread does not take it over.)
                    with nogil:
                        eng.release(t[0])
            self.body_ref = None

    def close(self):
        self.closed = True
        self._release()

    def _httprs_received(self):
        """Body bytes received so far, as framed (Response's num_bytes_downloaded
        after a whole read failed part-way, as httpx's read counts each chunk as it
        comes)."""
        cdef Transfer* t = self.t.get()
        cdef uint64_t n
        if t == NULL or self.engine is None or self.engine.eng == NULL:
            return 0
        with nogil:
            n = self.engine.eng.body_received(t[0])
        return n

    def __dealloc__(self):
        # A finaliser can run on a thread that holds the engine mutex (a GC
        # pass inside a Python TLS callback): never take it here. The engine
        # releases the transfer the next time its loop runs.
        cdef object pin = None
        cdef PyObject* sink = self.sink
        self.sink = NULL
        self._end_growth()
        if not self.released and self.t.get() != NULL and self.engine is not None:
            if self.engine.eng != NULL:
                self.engine.eng.release_deferred(self.t)
                if not self.t.get().released:  # (an ended HTTP/2 stream is at once)
                    pin = self.body_ref  # read until the release has run
        if sink != NULL and (self.t.get() == NULL or self.t.get().released):
            _Py_XDECREF(sink)  # the engine writes into it no more
            sink = NULL
        if pin is not None or sink != NULL:
            _park(self.t, pin, sink)  # the engine may use them until the release runs


cdef bint _upload_over(_Body stream, Transfer* t) noexcept:
    """Pull no more of a streamed request body: the transfer failed, the response came
    early (HTTP/1.1; the connection is not reused; an HTTP/2 stream stays open until its
    body ends, as httpcore sends it), or the engine wants no more. A head that declares
    no body (neither Content-Length nor Transfer-Encoding: length 0) ended the request
    itself, so the answer is no early response: the body is still read up to its first
    byte, which raises "Too much data" as h11 does however soon the server answered
    (it used to depend on whether the answer came before the body was asked for)."""
    if t.failed():
        return True
    if stream.declared == 0:
        return False
    return (t.head_ready and not t.http2) or t.complete or not t.want_body


cdef int _check_sent(_Body stream, long long sent, bint done) except -1:
    if stream.declared < 0:
        return 0
    if sent > stream.declared:
        raise exc.LocalProtocolError(
            "Too much data for declared Content-Length", request=stream.request
        )
    if done and sent < stream.declared:
        raise exc.LocalProtocolError(
            "Too little data for declared Content-Length", request=stream.request
        )
    return 0


cdef bytes _chunk_bytes(object chunk):
    """A body chunk that is not `bytes`, as bytes: any bytes-like object (bytearray,
    memoryview, ...). Anything else is a TypeError, as in httpx (whose writers take the
    chunk's len()): never bytes(chunk), which makes an int N into N zero bytes."""
    if PyObject_CheckBuffer(chunk):
        return bytes(chunk)
    len(chunk)  # httpx's error for an object without one: "object of type 'int' has no len()"
    raise TypeError(
        f"a request body chunk must be bytes-like, not {type(chunk).__name__}: {chunk!r:.40}"
    )


cdef long long _push_upload_chunk(_Body stream, object chunk, long long sent) except -1:
    """Hand the engine one chunk of a streamed request body (either driver); returns
    the bytes sent so far. An empty chunk is skipped; None ends the body."""
    cdef Transfer* t = stream.t.get()
    cdef Engine* eng = stream.engine.eng
    cdef const char* data
    cdef size_t n
    if chunk is None:
        _check_sent(stream, sent, True)
        with nogil:
            eng.push_body(t[0], NULL, 0, True)
        return sent
    if not isinstance(chunk, bytes):
        chunk = _chunk_bytes(chunk)
    n = len(chunk)
    if n == 0:
        return sent
    sent += <long long>n
    _check_sent(stream, sent, False)
    data = PyBytes_AS_STRING(chunk)
    # HTTP/1.1 writes the chunk from these bytes: pinned until the next chunk is
    # wanted (its write is done) or the transfer is released (_Body._release).
    stream.body_ref = chunk
    with nogil:
        eng.push_body(t[0], data, n, False)
    return sent


# The last response head's (name, value) pairs and reason phrase, as made for it: a pair
# (or a name) equal to the one at its position there is that same immutable object
# again, so a server's repeated head costs a compare per field, not new objects. Only
# touched with the GIL held; a list of its own, never handed out (each response gets a
# new list of the same tuples), so edits to a response's headers never reach it. It is
# updated in place where a pair differs: a repeated head makes no new object at all.
# A value is kept only for a name on an allow-list (_VALUE_KEPT_NAMES): any other pair
# (Set-Cookie, Location, WWW-Authenticate, an API token of any name) leaves only its name
# (with _NO_VALUE, which equals no value), so no secret outlives the client that got it.
cdef list _last_pairs = []
cdef bytes _NO_VALUE = b"(not kept)"  # (compared by identity)
cdef bytes _last_reason = b""
# Lower-case names whose values a server repeats and which say nothing secret: what
# servers and proxies send with every response (framing, type, caching, server and
# security policy headers).
cdef frozenset _VALUE_KEPT_NAMES = frozenset({
    b"date", b"server", b"content-type", b"content-length", b"content-encoding",
    b"content-language", b"transfer-encoding", b"connection", b"keep-alive", b"vary",
    b"cache-control", b"pragma", b"expires", b"age", b"accept-ranges", b"via",
    b"x-content-type-options", b"x-frame-options", b"x-xss-protection",
    b"strict-transport-security", b"referrer-policy", b"access-control-allow-origin",
})


cdef inline bint _same_bytes(bytes b, const string& s) noexcept:
    return <size_t>PyBytes_GET_SIZE(b) == s.size() and memcmp(
        PyBytes_AS_STRING(b), s.data(), s.size()
    ) == 0


cdef inline bint _same_view(bytes b, string_view s) noexcept:
    return <size_t>PyBytes_GET_SIZE(b) == s.size() and memcmp(
        PyBytes_AS_STRING(b), s.data(), s.size()
    ) == 0


cdef inline bytes _view_bytes(string_view s):
    return PyBytes_FromStringAndSize(s.data(), s.size())


cdef list _head_fields(HeaderBlock& headers):
    """A head's [(name, value)] pairs, each made anew."""
    return [
        (_view_bytes(headers.name(i)), _view_bytes(headers.value(i)))
        for i in range(headers.size())
    ]


cdef list _head_pairs(HeaderBlock& headers):
    """The raw [(name, value)] list of a response head (a new list each time)."""
    cdef Py_ssize_t n = headers.size()
    cdef Py_ssize_t i
    cdef list last = _last_pairs
    # Each slot is filled below (a failure leaves NULLs, which the list's dealloc skips).
    cdef list raw = PyList_New(n)
    cdef tuple prev
    cdef tuple item
    cdef bytes name
    cdef string_view value
    for i in range(n):
        value = headers.value(i)
        # (len(last) read each time: an allocation's finaliser could make a response too)
        if i < len(last):
            prev = <tuple>last[i]
            if _same_view(<bytes>prev[0], headers.name(i)):
                if prev[1] is not _NO_VALUE and _same_view(<bytes>prev[1], value):
                    item = prev
                else:
                    item = (prev[0], _view_bytes(value))
                    # (A name kept without its value stays so; length checked after the
                    # allocation, which may run finalisers.)
                    if prev[1] is not _NO_VALUE and i < len(last):
                        last[i] = item
                Py_INCREF(item)
                PyList_SET_ITEM(raw, i, item)  # steals the reference
                continue
        name = _view_bytes(headers.name(i))
        item = (name, _view_bytes(value))
        kept = item if name.lower() in _VALUE_KEPT_NAMES else (name, _NO_VALUE)
        if i < len(last):
            last[i] = kept
        else:
            last.append(kept)
        Py_INCREF(item)
        PyList_SET_ITEM(raw, i, item)
    if len(last) > n:
        del last[n:]
    return raw


cdef bytes _reason_bytes(string& reason):
    global _last_reason
    cdef bytes made
    if not _same_bytes(_last_reason, reason):
        made = reason
        _last_reason = made
    return _last_reason


# Response._from_transport's body, called as a C function (no method lookup nor
# Python-level call per response).
from httprs._models import _TRANSPORT_RESPONSE
cdef TransportResponse _transport_response = <TransportResponse>PyCapsule_GetPointer(
    _TRANSPORT_RESPONSE, NULL
)


cdef inline bytes _h1_version(int major, int minor):
    """An HTTP/1 response's version as its status line gave it (h11 takes any
    `HTTP/<digit>.<digit>`)."""
    if major == 1:
        if minor == 1:
            return b"HTTP/1.1"
        if minor == 0:
            return b"HTTP/1.0"
    return f"HTTP/{major}.{minor}".encode()


cdef object _make_response(_Body stream, object request, object tracer=None):
    cdef Transfer* t = stream.t.get()
    cdef list raw = _head_pairs(t.head.headers)
    version = b"HTTP/2" if t.http2 else _h1_version(t.head.http_major, t.head.http_minor)
    if tracer is not None:
        public = (
            _TracedAsyncResponseStream.__new__(_TracedAsyncResponseStream)
            if isinstance(stream, _AsyncBody)
            else _TracedResponseStream.__new__(_TracedResponseStream)
        )
        public._tracer = tracer
    elif isinstance(stream, _AsyncBody):
        public = _object_new(AsyncResponseStream)
    else:
        public = _object_new(ResponseStream)
    public._body = stream
    if not t.http2 and switches_protocols(t.spec.plan, t.head.status):
        # A requested upgrade, or a CONNECT's tunnel: the connection is this
        # response's for good.
        response = _transport_response(
            t.head.status, raw, public, version, _reason_bytes(t.head.reason), None
        )
        response.extensions["network_stream"] = _network_stream(stream)
        return response
    # The connection's extensions (network_stream, HTTP/2's stream_id) are added
    # when the extensions dict is made (_connection_extensions).
    return _transport_response(
        t.head.status, raw, public, version,
        None if t.http2 else _reason_bytes(t.head.reason), stream,
    )


class ResponseStream(SyncByteStream):
    """The sync byte stream of a response from HTTPTransport."""

    __slots__ = ("_body",)

    def __iter__(self):
        return iter(self._body)

    def close(self):
        self._body.close()

    def _httprs_read_all(self):
        return self._body._httprs_read_all()


class AsyncResponseStream(AsyncByteStream):
    """The async byte stream of a response from AsyncHTTPTransport."""

    __slots__ = ("_body",)

    def __aiter__(self):
        return self._body.__aiter__()

    async def aclose(self):
        await self._body.aclose()

    async def _httprs_aread_all(self):
        return await self._body._httprs_aread_all()
