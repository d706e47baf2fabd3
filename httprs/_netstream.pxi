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
        if isinstance(other, type) and issubclass(other, BaseException):
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
    cdef object _alpn
    cdef object _der  # the peer's certificate (DER bytes), None when it sent none
    cdef bint _verified  # the chain was checked

    def version(self):
        return self._version

    def cipher(self):
        # ssl.SSLObject.cipher(): (name, protocol, secret bits); bits unknown here.
        return (self._cipher, self._version, None)

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
        # A write or read cut short leaves the stream in an unknown state: close it.
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
                self.sock = _ns_socket.socket(fileno=os.dup(fd))
        return self.sock

    cdef object _ssl_object(self):
        if self.body.released:
            return None
        return _tls_info(self.body.engine.eng, self.body.t.get())

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
        if info == "ssl_object":
            return self._ssl_object()
        if info in ("client_addr", "server_addr", "socket"):
            sock = self._socket()
            if sock is None or info == "socket":
                return sock
            return sock.getsockname() if info == "client_addr" else sock.getpeername()
        if info == "is_readable":
            return self._is_readable()
        return None

    def __repr__(self):
        return f"<{type(self).__name__} {'closed' if self.body.released else 'open'}>"

    def __dealloc__(self):
        # The duplicate descriptor behind get_extra_info("socket") lives as long as
        # the stream (closing the response alone does not reach it).
        if self.sock is not None:
            try:
                self.sock.close()
            except BaseException:
                pass


cdef bint _wait_until(Engine* eng, Transfer* t, WaitFor what, double deadline) except -1:
    """_wait, bounded: False when `deadline` (time.monotonic(); < 0: none) passed first."""
    cdef cbool done = False
    cdef int slice_ms
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
        with nogil:
            done = eng.wait(t[0], what, slice_ms)
        if done:
            return True
        PyErr_CheckSignals()


cdef double _deadline(object timeout):
    return -1.0 if timeout is None else _monotonic() + max(<double>timeout, 0.0)


cdef class NetworkStream(_NetworkStreamCore):
    """httpcore's NetworkStream over a switched httprs connection (sync)."""

    def read(self, max_bytes, timeout=None):
        cdef Transfer* t = self.body.t.get()
        cdef Engine* eng = self.body.engine.eng
        cdef double deadline = _deadline(timeout)
        if max_bytes <= 0:
            return b""
        while True:
            data = self._take(max_bytes)
            if data is not None:
                return data
            if not _wait_until(eng, t, WaitFor.kRawData, deadline):
                raise self._timed_out("ReadTimeout")

    def write(self, buffer, timeout=None):
        cdef Transfer* t = self.body.t.get()
        cdef Engine* eng = self.body.engine.eng
        cdef double deadline = _deadline(timeout)
        pinned = self._start_write(buffer)
        if not pinned:
            return
        if not _wait_until(eng, t, WaitFor.kRawSent, deadline):
            raise self._timed_out("WriteTimeout")
        self._end_write()

    def close(self):
        self._close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        raise NotImplementedError(
            "httprs: start_tls() on a network_stream is not supported "
            "(TLS to the origin is set up by the transport)"
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
        raise NotImplementedError(
            "httprs: start_tls() on a network_stream is not supported "
            "(TLS to the origin is set up by the transport)"
        )


cdef object _network_stream(_Body body):
    cdef _NetworkStreamCore stream
    if isinstance(body, _AsyncBody):
        stream = AsyncNetworkStream.__new__(AsyncNetworkStream)
    else:
        stream = NetworkStream.__new__(NetworkStream)
    stream.body = body
    return stream
