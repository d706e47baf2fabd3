# start_tls() on a switched network stream (included into _core.pyx).
#
# httpcore's pattern for a tunnel made by hand: `client.stream("CONNECT", proxy)`,
# then `network_stream.start_tls(ssl_context, server_hostname=...)` to speak TLS to
# the host behind it; and start_tls on such a TLS stream again (TLS in TLS). The
# session is Python's `ssl` with the caller's context over memory BIOs, so every
# check the context asks for (certificates, host name, versions) is the context's
# own; its records travel through the stream below's read() and write(). Like
# httpcore: a failed handshake closes the stream below and raises ConnectError
# (ConnectTimeout for a timeout); later failures are ReadError / WriteError; an
# EOF from the peer, with or without close_notify, reads as b"" (an ssl socket's
# suppress_ragged_eofs). Not a hot path: each call is a few Python steps.

import threading as _tls_threading

DEF _TLS_READ_SIZE = 65536


cdef object _tls_deadline(object timeout):
    return None if timeout is None else _monotonic() + max(float(timeout), 0.0)


cdef object _tls_left(object deadline):
    return None if deadline is None else max(deadline - _monotonic(), 0.0)


class _TlsOverStream:
    """What the sync and async TLS streams share: the TLS session over memory BIOs,
    one step of an operation at a time, and get_extra_info."""

    __slots__ = ("_below", "_incoming", "_outgoing", "_ssl", "_request", "_closed", "_lock")

    def __init__(self, below, ssl_context, server_hostname, request):
        if not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError(
                "start_tls() needs an ssl.SSLContext, got " + type(ssl_context).__name__
            )
        self._below = below
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = ssl_context.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname
        )
        self._request = request
        self._closed = False
        # The sync stream's: a reader and a writer in two threads (a WebSocket
        # session's) share the session and its outgoing BIO, whose records must
        # leave in the order they were made.
        self._lock = _tls_threading.Lock()

    def _step(self, str stage, fn, args):
        """Try `fn(*args)` on the TLS session: (True, result), or (False, None) when
        it needs more bytes from the peer. An EOF read is (True, b"")."""
        if self._closed:
            raise _ns_error(
                "ConnectError" if stage == "Connect" else stage + "Error",
                _NS_CLOSED,
                self._request,
            )
        try:
            return True, fn(*args)
        except ssl.SSLWantReadError:
            return False, None
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError) as e:
            if stage == "Read":
                return True, b""
            raise self._error(stage, e) from e
        except ssl.SSLError as e:
            raise self._error(stage, e) from e

    def _error(self, str stage, object cause):
        """`cause` (an ssl error, or the stream below's) in the words of `stage`."""
        if stage == "Connect":
            timeout = isinstance(cause, exc.TimeoutException)
            return _ns_error("ConnectTimeout" if timeout else "ConnectError", str(cause),
                             self._request)
        if isinstance(cause, exc.TransportError):
            return cause
        return _ns_error(stage + "Error", str(cause), self._request)

    def _take_outgoing(self):
        return self._outgoing.read()

    def _feed(self, data):
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()

    def get_extra_info(self, info):
        if info == "ssl_object":
            return self._ssl
        if info == "is_readable":
            return (
                self._ssl.pending() > 0
                or self._incoming.pending > 0
                or bool(self._below.get_extra_info("is_readable"))
            )
        return self._below.get_extra_info(info)

    def __repr__(self):
        return f"<{type(self).__name__} {'closed' if self._closed else 'open'}>"


class TlsNetworkStream(_TlsOverStream):
    """httpcore's NetworkStream speaking TLS over another (sync) network stream."""

    __slots__ = ()

    def _run(self, str stage, object deadline, fn, *args):
        while True:
            try:
                with self._lock:  # a step, and its records out, in one piece
                    done, result = self._step(stage, fn, args)
                    pending = self._take_outgoing()
                    if pending:
                        self._below.write(pending, timeout=_tls_left(deadline))
                if done:
                    return result
                data = self._below.read(_TLS_READ_SIZE, timeout=_tls_left(deadline))
            except exc.TransportError as e:
                if stage != "Connect":
                    raise
                raise self._error(stage, e) from e
            with self._lock:
                self._feed(data)

    @classmethod
    def _open(cls, below, ssl_context, server_hostname, timeout, request):
        """The TLS stream over `below`, its handshake done; `below` closed if not."""
        try:
            stream = cls(below, ssl_context, server_hostname, request)
            stream._run("Connect", _tls_deadline(timeout), stream._ssl.do_handshake)
        except BaseException:
            below.close()
            raise
        return stream

    def read(self, max_bytes, timeout=None):
        if max_bytes <= 0:
            return b""
        return self._run("Read", _tls_deadline(timeout), self._ssl.read, max_bytes)

    def write(self, buffer, timeout=None):
        cdef object deadline = _tls_deadline(timeout)
        view = memoryview(buffer).cast("B")
        while len(view):
            view = view[self._run("Write", deadline, self._ssl.write, view):]

    def close(self):
        self._closed = True
        self._below.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        return TlsNetworkStream._open(self, ssl_context, server_hostname, timeout, self._request)


class AsyncTlsNetworkStream(_TlsOverStream):
    """httpcore's AsyncNetworkStream speaking TLS over another async network stream."""

    __slots__ = ()

    async def _run(self, str stage, object deadline, fn, *args):
        while True:
            done, result = self._step(stage, fn, args)
            pending = self._take_outgoing()
            try:
                if pending:
                    await self._below.write(pending, timeout=_tls_left(deadline))
                if done:
                    return result
                data = await self._below.read(_TLS_READ_SIZE, timeout=_tls_left(deadline))
                self._feed(data)
            except exc.TransportError as e:
                if stage != "Connect":
                    raise
                raise self._error(stage, e) from e

    @classmethod
    async def _open(cls, below, ssl_context, server_hostname, timeout, request):
        """The TLS stream over `below`, its handshake done; `below` closed if not."""
        try:
            stream = cls(below, ssl_context, server_hostname, request)
            await stream._run("Connect", _tls_deadline(timeout), stream._ssl.do_handshake)
        except BaseException:
            await below.aclose()
            raise
        return stream

    async def read(self, max_bytes, timeout=None):
        if max_bytes <= 0:
            return b""
        return await self._run("Read", _tls_deadline(timeout), self._ssl.read, max_bytes)

    async def write(self, buffer, timeout=None):
        cdef object deadline = _tls_deadline(timeout)
        view = memoryview(buffer).cast("B")
        while len(view):
            view = view[await self._run("Write", deadline, self._ssl.write, view):]

    async def aclose(self):
        self._closed = True
        await self._below.aclose()

    async def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        return await AsyncTlsNetworkStream._open(
            self, ssl_context, server_hostname, timeout, self._request
        )
