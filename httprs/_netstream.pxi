# The `network_stream` response extension (included into _core.pyx).
#
# A requested upgrade answered `101 Switching Protocols` leaves its connection
# to the response for good (C++ state kSwitched). The response then carries
# `extensions["network_stream"]`: the raw byte stream over that connection,
# with httpcore's NetworkStream interface (sync) or AsyncNetworkStream
# interface (async), which is what httpx-ws and httpx2's websockets use.
# Bytes the server sent right behind the 101 head come first. Reads and writes
# go through the engine (Engine::raw_take / raw_write) with the GIL released
# and the engine mutex only ever taken inside `with nogil`; timeouts are
# counted here, by waiting in slices.

import select as _ns_select
import _socket as _ns_raw_socket
import socket as _ns_socket
from time import monotonic as _monotonic

DEF _NS_CLOSED = "The network stream has been closed."

# (name, httpcore classes present) -> exception class; see _ns_error.
cdef dict _NS_ERROR_CLASSES = {}


cdef object _ns_error_class(str name):
    """httprs's exception class `name`, combined with httpcore's and httpcore2's
    class of the same name when those modules are loaded: code written for
    httpcore's streams catches `httpcore.ReadError` (httpx-ws) or
    `httpcore2.WriteError` (httpx2's websockets), httpx users catch httpx's."""
    bases = [getattr(exc, name)]
    for modname in ("httpcore", "httpcore2"):
        mod = sys.modules.get(modname)
        if mod is None:
            continue
        other = getattr(mod, name, None)
        # (After alias_httpx() both names are one package: its class once.)
        if isinstance(other, type) and issubclass(other, BaseException) and other not in bases:
            bases.append(other)
    key = tuple(bases)
    cls = _NS_ERROR_CLASSES.get(key)
    if cls is None:
        if len(bases) == 1:
            cls = bases[0]
        else:
            cls = type(name, key, {"__module__": exc.__name__})
        _NS_ERROR_CLASSES[key] = cls
    return cls


cdef object _ns_error(str name, str message, object request):
    return _ns_error_class(name)(message, request=request)


cdef class _TlsInfo:
    """What `get_extra_info("ssl_object")` gives for a TLS connection: the C++ core
    owns the session, so this answers the informational part of `ssl.SSLObject`."""

    cdef str _version
    cdef str _cipher
    cdef object _cipher_version  # the cipher's protocol; None: the session's version
    cdef object _bits  # secret bits; None when unknown
    cdef object _alpn
    cdef object _der  # the peer's certificate (DER bytes), None when it sent none
    cdef bint _verified  # the chain was checked
    cdef bint _reused  # the handshake resumed a session
    cdef object _hostname  # the name the certificate was checked for (SNI)

    @property
    def server_hostname(self):
        return self._hostname

    @property
    def server_side(self):
        return False

    def version(self):
        return self._version

    def cipher(self):
        # ssl.SSLObject.cipher(): (name, protocol, secret bits).
        return (self._cipher, self._cipher_version or self._version, self._bits)

    @property
    def session_reused(self):
        return self._reused

    def compression(self):
        return None

    def selected_alpn_protocol(self):
        return self._alpn

    def getpeercert(self, binary_form=False):
        """As `ssl.SSLObject.getpeercert()`: the certificate's fields as a dict when it
        was verified ({} when it was not), its DER bytes with `binary_form`, None when
        the peer sent none."""
        if self._der is None:
            return None
        if binary_form:
            return self._der
        if not self._verified:
            return {}
        return _decode_certificate(self._der)

    def __repr__(self):
        return f"<TLS {self._version} {self._cipher}>"


def _decode_certificate(bytes der):
    """getpeercert()'s dict for a DER certificate, decoded by Python's own ssl module
    (through its certificate-file decoder, hence the temporary PEM file); {} on a Python
    without that decoder."""
    import os
    import ssl
    import tempfile

    decode = getattr(ssl._ssl, "_test_decode_cert", None)
    if decode is None:
        return {}
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(ssl.DER_cert_to_PEM_cert(der))
        return decode(path)
    finally:
        os.unlink(path)


cdef object _tls_info(Engine* eng, Transfer* t):
    """The TLS session under `t` as an ssl_object (_TlsInfo), None when it has none."""
    cdef string version
    cdef string cipher
    cdef string alpn
    cdef string der
    cdef cbool ok = False
    cdef cbool has_cert = False
    cdef cbool verified = False
    cdef _TlsInfo info
    with nogil:
        ok = eng.raw_tls_info(t[0], version, cipher, alpn)
        if ok:
            has_cert = eng.tls_peer_certificate(t[0], der, verified)
    if not ok:
        return None
    info = _TlsInfo()
    info._version = version.decode("ascii", "replace")
    info._cipher = cipher.decode("ascii", "replace")
    info._alpn = alpn.decode("ascii", "replace") if alpn.size() else None
    info._der = None
    if has_cert:
        info._der = der  # std::string -> bytes
    info._verified = verified
    return info


@cython.no_gc_clear
cdef class _NetworkStreamCore:
    """What the sync and async network streams share: taking bytes, queueing
    writes, the error mapping and get_extra_info. `body` owns the transfer:
    closing the stream closes the connection (as does closing the response)."""

    cdef _Body body
    cdef object sock  # a socket.socket over a duplicate descriptor, made on demand

    cdef object _take(self, Py_ssize_t max_bytes):
        """Buffered bytes, b"" at the end of the stream, or None (wait and retry)."""
        cdef string out
        cdef Transfer* t = self.body.t.get()
        cdef Engine* eng = self.body.engine.eng
        cdef size_t n = <size_t>max_bytes
        if self.body.released:
            raise _ns_error("ReadError", _NS_CLOSED, self.body.request)
        with nogil:
            eng.raw_take(t[0], out, n)
        if out.size() > 0:
            return <bytes>out
        if t.raw_state == RawState.kEof:
            return b""
        if t.raw_state == RawState.kFailed:
            raise self._failure("ReadError")
        if self.body.released:
            raise _ns_error("ReadError", _NS_CLOSED, self.body.request)
        return None

    cdef object _failure(self, str name):
        cdef Transfer* t = self.body.t.get()
        message = t.raw_error.message.decode("utf-8", "replace") or "connection closed"
        return _ns_error(name, message, self.body.request)

    cdef bytes _start_write(self, object buffer):
        """Queue `buffer`; b"" when there was nothing to send."""
        cdef Transfer* t = self.body.t.get()
        cdef Engine* eng = self.body.engine.eng
        cdef const char* data
        cdef size_t n
        if not isinstance(buffer, bytes):
            buffer = bytes(buffer)
        if not buffer:
            return b""
        if self.body.released:
            raise _ns_error("WriteError", _NS_CLOSED, self.body.request)
        if t.raw_state == RawState.kFailed:
            raise self._failure("WriteError")
        data = PyBytes_AS_STRING(buffer)
        n = len(buffer)
        with nogil:
            eng.raw_write(t[0], data, n)
        return buffer

    cdef int _end_write(self) except -1:
        cdef Transfer* t = self.body.t.get()
        if t.raw_state == RawState.kFailed:
            raise self._failure("WriteError")
        if self.body.released:
            raise _ns_error("WriteError", _NS_CLOSED, self.body.request)
        return 0

    cdef object _timed_out(self, str name):
        # A write cut short leaves the stream in an unknown state (part of it may be
        # on its way): close it. A read takes nothing until bytes are there, so the
        # stream goes on after a ReadTimeout, as httpcore's socket does.
        if name != "ReadTimeout":
            self._close()
        return _ns_error(name, "timed out", self.body.request)

    cdef void _close(self) noexcept:
        self.body.closed = True
        self.body._release()
        if self.sock is not None:
            try:
                self.sock.close()
            except BaseException:
                pass
            self.sock = None

    cdef object _socket(self):
        cdef int fd
        cdef Transfer* t = self.body.t.get()
        cdef Engine* eng = self.body.engine.eng
        if self.sock is None and not self.body.released:
            with nogil:
                fd = eng.raw_fd(t[0])
            if fd >= 0:
                self.sock = _owned_socket(fd)
        return self.sock

    cdef object _ssl_object(self):
        cdef ConnectionInfo* ci = self.body.t.get().conn_info.get()
        if ci == NULL or ci.tls.kind == TlsKind.kNone:
            return None
        return _tls_facts(ci.tls)

    cdef bint _is_readable(self):
        """httpcore's meaning: reading would not block (bytes, EOF or an error)."""
        cdef Transfer* t = self.body.t.get()
        cdef Engine* eng = self.body.engine.eng
        cdef cbool ready
        if self.body.released:
            return True
        with nogil:
            ready = eng.check(t[0], WaitFor.kRawData)
        if ready:
            return True
        sock = self._socket()
        if sock is None:
            return True
        readable, _, _ = _ns_select.select([sock], [], [], 0)
        return bool(readable)

    def get_extra_info(self, info):
        cdef ConnectionInfo* ci
        if info == "ssl_object":
            return self._ssl_object()
        if info in ("client_addr", "server_addr"):
            # As the connection was established (also once it closed), as every
            # other response's stream answers.
            ci = self.body.t.get().conn_info.get()
            if ci == NULL:
                return None
            ipv6_pair = isinstance(self, AsyncNetworkStream) and _current_library() != "trio"
            return _socket_address(ci.local() if info == "client_addr" else ci.peer(), ipv6_pair)
        if info == "socket":
            return self._socket()
        if info == "is_readable":
            return self._is_readable()
        return None

    def __repr__(self):
        return f"<{type(self).__name__} {'closed' if self.body.released else 'open'}>"

    def __init__(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} is made by the transport, for a response")

    def __dealloc__(self):
        # The duplicate descriptor behind get_extra_info("socket") lives as long as
        # the stream (closing the response alone does not reach it), unless the
        # caller holds it.
        sock = self.sock
        self.sock = None
        _close_unshared(sock)


cdef bint _wait_until(_Engine engine, Transfer* t, WaitFor what, double deadline) except -1:
    """_wait, bounded: False when `deadline` (time.monotonic(); < 0: none) passed first."""
    global _main_sync_waiting
    cdef cbool done = False
    cdef int slice_ms
    cdef Engine* eng = engine.eng
    if engine.green:
        return _green_wait(engine, t, what, deadline)
    while True:
        slice_ms = SLICE_MS
        if deadline >= 0:
            remaining = deadline - _monotonic()
            if remaining <= 0:
                with nogil:
                    done = eng.wait(t[0], what, 0)
                return done
            if remaining * 1000 < slice_ms:
                slice_ms = <int>(remaining * 1000) + 1
        _sync_wait_begins()
        with nogil:
            done = eng.wait(t[0], what, slice_ms)
        _main_sync_waiting = False
        if _tls_interrupt is not None:
            _raise_tls_interrupt()
        if done:
            return True
        PyErr_CheckSignals()


cdef double _deadline(object timeout):
    return -1.0 if timeout is None else _monotonic() + max(<double>timeout, 0.0)


cdef class NetworkStream(_NetworkStreamCore):
    """httpcore's NetworkStream over a switched httprs connection (sync)."""

    def read(self, max_bytes, timeout=None):
        cdef Transfer* t = self.body.t.get()
        cdef _Engine engine = self.body.engine
        cdef double deadline = _deadline(timeout)
        if max_bytes <= 0:
            return b""
        while True:
            data = self._take(max_bytes)
            if data is not None:
                return data
            if not _wait_until(engine, t, WaitFor.kRawData, deadline):
                raise self._timed_out("ReadTimeout")

    def write(self, buffer, timeout=None):
        cdef Transfer* t = self.body.t.get()
        cdef _Engine engine = self.body.engine
        cdef double deadline = _deadline(timeout)
        pinned = self._start_write(buffer)
        if not pinned:
            return
        if not _wait_until(engine, t, WaitFor.kRawSent, deadline):
            raise self._timed_out("WriteTimeout")
        self._end_write()

    def close(self):
        self._close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        """TLS over this stream (a tunnel made with CONNECT): a new stream."""
        return TlsNetworkStream._open(
            self, ssl_context, server_hostname, timeout, self.body.request
        )


@cython.no_gc_clear
cdef class AsyncNetworkStream(_NetworkStreamCore):
    """httpcore's AsyncNetworkStream over a switched httprs connection: the same
    transfer, awaited through the transport's driver (asyncio or trio)."""

    async def _await(self, int what, object timeout):
        """Wait for `what`; False when `timeout` passed first."""
        cdef _AsyncBody body = <_AsyncBody>self.body
        if timeout is None:
            await body.driver.wait(body, what)
            return True
        if _current_library() == "trio":
            import trio

            with trio.move_on_after(max(timeout, 0)) as scope:
                await body.driver.wait(body, what)
            return not scope.cancelled_caught
        import asyncio

        try:
            await asyncio.wait_for(body.driver.wait(body, what), max(timeout, 0))
        except asyncio.TimeoutError:
            return False
        return True

    async def read(self, max_bytes, timeout=None):
        cdef double deadline = _deadline(timeout)
        if max_bytes <= 0:
            return b""
        while True:
            data = self._take(max_bytes)
            if data is not None:
                return data
            left = None if deadline < 0 else deadline - _monotonic()
            if not await self._await(<int>WaitFor.kRawData, left):
                raise self._timed_out("ReadTimeout")

    async def write(self, buffer, timeout=None):
        pinned = self._start_write(buffer)
        if not pinned:
            return
        if not await self._await(<int>WaitFor.kRawSent, timeout):
            raise self._timed_out("WriteTimeout")
        self._end_write()

    async def aclose(self):
        self._close()
        (<_AsyncBody>self.body).driver.schedule()

    async def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        """TLS over this stream (a tunnel made with CONNECT): a new stream."""
        return await AsyncTlsNetworkStream._open(
            self, ssl_context, server_hostname, timeout, self.body.request
        )


cdef object _network_stream(_Body body):
    cdef _NetworkStreamCore stream
    if isinstance(body, _AsyncBody):
        stream = AsyncNetworkStream.__new__(AsyncNetworkStream)
    else:
        stream = NetworkStream.__new__(NetworkStream)
    stream.body = body
    return stream


# The `network_stream` of every other response: the connection's own stream, as
# httpcore gives it (the same object for each response on one connection, while
# any of them holds it). It answers get_extra_info from the facts the C++ core
# took when the connection was established (ConnectionInfo), also after the
# connection closed; the socket itself is lent only while it is open. Reading or
# writing on it would take bytes from under the pool's parser: those raise.

DEF _CS_NO_IO = (
    "httprs: network_stream.{}() is only for a response that switched protocols "
    "(a requested 101, or a 2xx to CONNECT); this connection belongs to the pool and "
    "its bytes to the responses on it"
)


cdef object _socket_address(const SocketAddress& a, bint ipv6_pair):
    """`a` as Python's socket module gives it: (host, port) for IPv4; for IPv6 the
    4-tuple, or asyncio's (host[%scope], port) pair; a Unix socket's path (str, or
    bytes for an abstract name)."""
    if a.family == AddressFamily.kIpv4:
        return (a.host.decode("ascii"), a.port)
    if a.family == AddressFamily.kIpv6:
        host = a.host.decode("ascii")
        if not ipv6_pair:
            return (host, a.port, a.flowinfo, a.scope_id)
        if a.scope_id:
            host = f"{host}%{a.scope_id}"
        return (host, a.port)
    if a.family == AddressFamily.kUnix:
        path = <bytes>a.host
        if path.startswith(b"\0"):
            return path
        return os.fsdecode(path)
    return None


cdef _TlsInfo _tls_facts(const TlsFacts& f):
    cdef _TlsInfo info = _TlsInfo()
    info._version = f.version.decode("ascii", "replace")
    info._cipher = f.cipher.decode("ascii", "replace")
    info._cipher_version = f.cipher_version.decode("ascii", "replace") or info._version
    info._bits = f.cipher_bits if f.cipher_bits > 0 else None
    info._alpn = f.alpn.decode("ascii", "replace") if f.alpn.size() else None
    info._der = <bytes>f.peer_der if f.peer_der.size() else None
    info._verified = f.verified
    info._reused = f.session_reused
    info._hostname = f.server_hostname.decode("utf-8", "replace") or None
    return info


@cython.no_gc_clear
cdef class _ConnStreamCore:
    """What the sync and async connection streams share: get_extra_info."""

    cdef shared_ptr[ConnectionInfo] info
    cdef _Engine engine
    cdef bint ipv6_pair  # asyncio's IPv6 addresses: (host, port)
    cdef object _ssl  # the ssl_object, made on first ask
    cdef object sock  # a socket.socket over a duplicate descriptor, made on demand

    def __init__(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} is made by the transport, for a response")

    def get_extra_info(self, info):
        cdef ConnectionInfo* ci = self.info.get()
        if ci == NULL:  # made without a connection (through __new__)
            return None
        if info == "server_addr":
            return _socket_address(ci.peer(), self.ipv6_pair)
        if info == "client_addr":
            return _socket_address(ci.local(), self.ipv6_pair)
        if info == "ssl_object":
            if ci.tls.kind == TlsKind.kNone:
                return None
            if self._ssl is None:
                self._ssl = _tls_facts(ci.tls)
            return self._ssl
        if info == "socket":
            return self._socket()
        if info == "is_readable":
            return self._is_readable()
        return None

    cdef object _socket(self):
        """The connection's socket (a duplicate descriptor), made on first ask while
        the connection is open; None once it closed (the duplicate is then closed
        here, unless the caller still holds it)."""
        cdef int fd
        cdef cbool open_
        if self.sock is not None:
            with nogil:
                open_ = self.engine.eng.info_open(self.info.get()[0])
            if open_:
                return self.sock
            self._drop_socket()
            return None
        with nogil:
            fd = self.engine.eng.info_fd(self.info.get()[0])
        if fd >= 0:
            self.sock = _owned_socket(fd)
        return self.sock

    cdef void _drop_socket(self) noexcept:
        sock, self.sock = self.sock, None
        _close_unshared(sock)

    cdef bint _is_readable(self):
        cdef cbool readable
        if self.info.get() == NULL:
            return True
        with nogil:
            readable = self.engine.eng.info_readable(self.info.get()[0])
        return readable

    cdef void _spend(self) noexcept:
        if self.info.get() == NULL:
            return
        with nogil:
            self.engine.eng.info_spend(self.info.get()[0])
        self._drop_socket()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        raise NotImplementedError(_CS_NO_IO.format("start_tls"))

    def __repr__(self):
        cdef ConnectionInfo* ci = self.info.get()
        peer = None if ci == NULL else _socket_address(ci.peer(), self.ipv6_pair)
        return f"<{type(self).__name__} {peer!r}>"

    def __dealloc__(self):
        cdef ConnectionInfo* ci = self.info.get()
        if ci != NULL and ci.owner_object == <void*>self:
            ci.owner_object = NULL
        self._drop_socket()


cdef class ConnectionStream(_ConnStreamCore):
    """httpcore's NetworkStream as an ordinary (sync) response gives it: what the
    connection is. `close()` keeps the pool from reusing the connection (closed at
    once when idle, else once its exchange ends)."""

    def read(self, max_bytes, timeout=None):
        raise NotImplementedError(_CS_NO_IO.format("read"))

    def write(self, buffer, timeout=None):
        raise NotImplementedError(_CS_NO_IO.format("write"))

    def close(self):
        self._spend()


cdef class AsyncConnectionStream(_ConnStreamCore):
    """httpcore's AsyncNetworkStream as an ordinary async response gives it."""

    async def read(self, max_bytes, timeout=None):
        raise NotImplementedError(_CS_NO_IO.format("read"))

    async def write(self, buffer, timeout=None):
        raise NotImplementedError(_CS_NO_IO.format("write"))

    async def aclose(self):
        self._spend()

    async def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        raise NotImplementedError(_CS_NO_IO.format("start_tls"))


# The longest wait a lent socket's "blocking" mode makes: CPython's socket waits in
# poll() with a timeout in milliseconds that must fit an int (~24.8 days).
cdef double _LENT_FOREVER = 2_000_000.0


class _LentSocket(_ns_socket.socket):
    """The socket get_extra_info("socket") gives: a duplicate of the connection's
    descriptor, which shares its file status flags with the engine's. Those must stay
    non-blocking (a blocking descriptor would stall the engine's loop, and every
    client on it, in a read or write that never returns), so the blocking modes are
    Python's own: setblocking(True) and settimeout(None) wait in poll() as a timeout
    does (up to ~23 days) and gettimeout() still answers None. httpcore gives its own
    socket, and sets the timeout back before each read or write."""

    __slots__ = ("_lent_blocking", "_lent_quiet")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lent_blocking = False
        self._lent_quiet = False  # set for the socket lent, not for its dup()s
        self.settimeout(None)  # Python's default for a new socket, kept non-blocking

    def settimeout(self, value):
        if value is None:
            super().settimeout(_LENT_FOREVER)
            self._lent_blocking = True
        else:
            super().settimeout(value)
            self._lent_blocking = False

    def setblocking(self, flag):
        self.settimeout(None if flag else 0.0)

    def gettimeout(self):
        return None if self._lent_blocking else super().gettimeout()

    def __del__(self):
        # The lent socket closes without the ResourceWarning an unclosed socket gives:
        # httpcore's socket is the connection's, which nobody who reads it is asked to
        # close, and a suite under `-W error` fails on that warning. A dup() the
        # program made is its own, and warns as any socket does.
        if getattr(self, "_lent_quiet", False) and self.fileno() != -1:
            _ns_raw_socket.socket.close(self)
        else:
            _ns_raw_socket.socket.__del__(self)


cdef object _owned_socket(int fd):
    """A _LentSocket taking over descriptor `fd` (closed here if that fails)."""
    try:
        sock = _LentSocket(fileno=fd)
    except BaseException:
        os.close(fd)
        raise
    sock._lent_quiet = True
    return sock


cdef void _close_unshared(object sock) noexcept:
    """Close a stream's cached socket as the stream goes, unless the user still holds
    it (then it is theirs, as httpcore's socket would be)."""
    if sock is None or Py_REFCNT(sock) > 1:
        return
    try:
        sock.close()
    except BaseException:
        pass


cdef object _connection_stream(_Body body):
    """The stream of the connection that carried `body`'s response: the one object
    while one is alive (the GIL guards the connection's slot), None when the
    transfer never reached an established connection."""
    cdef shared_ptr[ConnectionInfo] info = body.t.get().conn_info
    cdef ConnectionInfo* ci = info.get()
    cdef _ConnStreamCore stream
    if ci == NULL:
        return None
    if ci.owner_object != NULL:
        return <object>ci.owner_object
    if isinstance(body, _AsyncBody):
        stream = AsyncConnectionStream.__new__(AsyncConnectionStream)
        stream.ipv6_pair = _current_library() != "trio"
    else:
        stream = ConnectionStream.__new__(ConnectionStream)
    stream.info = info
    stream.engine = body.engine
    if ci.owner_object != NULL:  # made meanwhile (allocation may run other threads)
        return <object>ci.owner_object
    ci.owner_object = <void*>stream
    return stream


cdef int _connection_extensions(object body, dict ext) except -1:
    """Add what a transport response's connection gives to its extensions dict (lent
    to httprs._models, which makes that dict lazily): `network_stream`, and HTTP/2's
    `stream_id`."""
    cdef _Body b
    cdef Transfer* t
    if not isinstance(body, _Body):  # a `_conn` set by hand
        return 0
    b = <_Body>body
    t = b.t.get()
    stream = _connection_stream(b)
    if stream is not None:
        ext["network_stream"] = stream
    if t.http2:
        ext["stream_id"] = t.stream_id
    return 0


_CONNECTION_EXTENSIONS = PyCapsule_New(<void*>_connection_extensions, NULL, NULL)  # for _models
