# cython: language_level=3, annotation_typing=False
"""Bridge between the httpx-shaped API and the C++ core (src/).

`HTTPTransport` / `AsyncHTTPTransport` turn a Request into a RequestSpec for
the engine, wait for the response head with the GIL released, and hand back a
Response whose stream pulls the body from the engine. C++ errors come back as
(kind, message) and become httpx exception classes here, in one table.
"""

import base64
import logging
import os
import ssl
import sys
import warnings

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_CheckSignals
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF
from libc.string cimport memcpy
from libcpp cimport bool as cbool
from libcpp.memory cimport make_shared, shared_ptr
from libcpp.pair cimport pair
from libcpp.string cimport string
from libcpp.utility cimport move
from libcpp.vector cimport vector

from httprs._transports import AsyncBaseTransport, BaseTransport
from httprs.includes.engine cimport (
    Engine,
    kMinLibuvVersion,
    libuv_runtime_version,
    libuv_supported,
    PoolLimits,
    RawState,
    RequestSpec,
    SocketOption,
    SocketOptionKind,
    SocketOptions,
    TraceStep,
    Transfer,
    WaitFor,
)
from httprs.includes.errors cimport Error, ErrorKind
from httprs.includes.http1 cimport (
    BodyFraming,
    BodyKind,
    HeaderList,
    llhttp_is_strict,
    serialize_request,
)
from httprs.includes.tls cimport (
    ForeignTlsOps,
    OpenSSL_version_num,
    SSL_CTX,
    SSL_CTX_get_options,
    SSL_CTX_get_verify_mode,
    SSL_CTX_new,
    TlsConfig,
    TlsContext,
)

from httprs import _exceptions as exc
from httprs._config import DEFAULT_LIMITS, Proxy
from httprs._content import AsyncByteStream, SyncByteStream, _LazyAsyncIterator
from httprs._models import Response
from httprs._urls import URL

# How often a blocked wait comes back to check for signals (Ctrl-C).
DEF SLICE_MS = 50


def _check_runtime(unsigned uv_version, bint llhttp_strict):
    """Refuse to run on a libuv or llhttp the core cannot be correct with.

    libuv: at least 1.44 (src/engine.cc says why); the shared library loaded
    at run time may be older than the headers the module was built with.
    llhttp: it must reject what only a lenient parser accepts (bare LF line
    endings, Content-Length with Transfer-Encoding, ...); an llhttp 8 built
    without LLHTTP_STRICT_MODE is lenient whatever its runtime flags say.
    """
    if not libuv_supported(uv_version):
        raise ImportError(
            "httprs needs libuv >= %d.%d (found %d.%d.%d): its event loop driving relies on "
            "uv_backend_timeout() returning 0 while watchers are queued (libuv 1.44)"
            % (
                kMinLibuvVersion >> 16, (kMinLibuvVersion >> 8) & 0xFF,
                uv_version >> 16, (uv_version >> 8) & 0xFF, uv_version & 0xFF,
            )
        )  # fmt: skip
    if not llhttp_strict:
        raise ImportError(
            "httprs was built against a lenient llhttp (an llhttp 8 without "
            "LLHTTP_STRICT_MODE): responses it must reject would be accepted; rebuild "
            "with llhttp >= 9 or with the bundled sources (meson option llhttp_src)"
        )


_check_runtime(libuv_runtime_version(), llhttp_is_strict())

cdef dict _ERROR_CLASSES = {
    <int>ErrorKind.kConnectError: exc.ConnectError,
    <int>ErrorKind.kConnectTimeout: exc.ConnectTimeout,
    <int>ErrorKind.kReadError: exc.ReadError,
    <int>ErrorKind.kReadTimeout: exc.ReadTimeout,
    <int>ErrorKind.kWriteError: exc.WriteError,
    <int>ErrorKind.kWriteTimeout: exc.WriteTimeout,
    <int>ErrorKind.kPoolTimeout: exc.PoolTimeout,
    <int>ErrorKind.kRemoteProtocolError: exc.RemoteProtocolError,
    <int>ErrorKind.kLocalProtocolError: exc.LocalProtocolError,
    <int>ErrorKind.kProxyError: exc.ProxyError,
    <int>ErrorKind.kUnsupportedProtocol: exc.UnsupportedProtocol,
    <int>ErrorKind.kDecodingError: exc.DecodingError,
    <int>ErrorKind.kClosed: exc.ReadError,
}


cdef object _error_to_exception(const Error& err, object request):
    cls = _ERROR_CLASSES.get(<int>err.kind, exc.TransportError)
    message = err.message.decode("utf-8", "replace")
    return cls(message, request=request)


# ---------------------------------------------------------------------- engine


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
            with nogil:
                self.eng.close()

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


cdef int _wait(Engine* eng, Transfer* t, WaitFor what) except -1:
    """Block until `what` holds for the transfer, letting signals through."""
    cdef cbool done = False
    while True:
        with nogil:
            done = eng.wait(t[0], what, SLICE_MS)
        if done:
            return 0
        PyErr_CheckSignals()


# ---------------------------------------------------------------------- TLS


include "_tls.pxi"


# ---------------------------------------------------------------------- requests


cdef inline double _timeout_value(object value):
    return -1.0 if value is None else <double>value


cdef bytes _basic_auth(object raw_auth):
    user, password = raw_auth
    return b"Basic " + base64.b64encode(user + b":" + password)


cdef class _Route:
    """Where a transport sends its requests: direct, or through a proxy."""

    cdef str mode  # "direct", "proxy" (http/https proxy) or "socks"
    cdef bytes proxy_host
    cdef int proxy_port
    cdef list proxy_headers  # [(bytes, bytes)]
    cdef object socks_auth  # (username, password) bytes for a SOCKS5 proxy, or None
    cdef bint proxy_tls  # https:// proxy: TLS to the proxy itself
    cdef object proxy_ssl_context  # Proxy(ssl_context=...), or None for the default
    cdef _TlsContext proxy_tls_ctx
    cdef bytes key  # "scheme://host:port" of the proxy, for pool and TLS session keys


cdef _Route _make_route(object proxy):
    cdef _Route route = _Route()
    route.mode = "direct"
    if proxy is None:
        return route
    if isinstance(proxy, (str, URL)):
        proxy = Proxy(url=proxy)
    scheme = proxy.url.scheme
    if scheme in ("socks5", "socks5h"):
        # Both pass the host name to the proxy, which resolves it, as httpcore does.
        route.mode = "socks"
        route.proxy_host = proxy.url.raw_host
        route.proxy_port = proxy.url.port or 1080
        route.proxy_headers = []
        route.socks_auth = proxy.raw_auth
        return route
    if scheme not in ("http", "https"):
        raise ValueError(f"Unknown scheme for proxy URL {proxy.url!r}")
    route.mode = "proxy"
    route.proxy_tls = scheme == "https"
    route.proxy_ssl_context = proxy.ssl_context
    route.proxy_host = proxy.url.raw_host
    route.proxy_port = proxy.url.port or (443 if route.proxy_tls else 80)
    route.key = (
        scheme.encode() + b"://" + route.proxy_host + b":" + str(route.proxy_port).encode()
    )
    headers = [(k, v) for k, v in proxy.headers.raw]
    if proxy.raw_auth is not None:
        headers.insert(0, (b"Proxy-Authorization", _basic_auth(proxy.raw_auth)))
    route.proxy_headers = headers
    return route


cdef object _absolute_target(object url, object custom=None):
    port = url.port
    authority = url.raw_host
    if b":" in authority:
        authority = b"[" + authority + b"]"
    if port is not None:
        authority += b":" + str(port).encode("ascii")
    path = url.raw_path if custom is None else bytes(custom)
    return url.raw_scheme + b"://" + authority + path


cdef bytes _sni_hostname(object request, bytes host):
    """The TLS server name for a request: its `sni_hostname` extension (as httpcore
    honours it, for SNI and the certificate check), else the URL's host."""
    sni = request.extensions.get("sni_hostname")
    if not sni:
        return host
    if isinstance(sni, str):
        try:
            return sni.encode("ascii")
        except UnicodeEncodeError:
            return sni.encode("idna")
    return bytes(sni)


# The first buffer `read()` allocates for a body of known length; it grows
# (doubling, up to the declared length) as bytes arrive, so one header cannot
# make the client allocate gigabytes up front.
DEF FIRST_SINK = 4 * 1024 * 1024

cdef extern from "Python.h":
    PyObject* _new_bytes "PyBytes_FromStringAndSize"(const char* data, Py_ssize_t size) except NULL
    int _PyBytes_Resize(PyObject** obj, Py_ssize_t size) except -1
    char* _bytes_data "PyBytes_AS_STRING"(PyObject* obj)
    void _Py_XDECREF "Py_XDECREF"(PyObject* obj)
    const Py_ssize_t PY_SSIZE_T_MAX


@cython.no_gc_clear
cdef class _Body:
    """The body of a response coming from the C++ core.

    Iterating yields raw (undecoded) chunks as they arrive; `_httprs_read_all`
    returns the whole body at once, written straight into one bytes object
    when the length is known. Closing before the end closes the connection.

    The sync and async twins share every step below; they differ only in how
    they wait (`_wait` with the GIL released, or the async driver). Whatever
    ends a read (the body, an error, a signal handler raising, a task being
    cancelled), `_read_all_cleanup` detaches the engine from the buffer
    before the buffer is freed.

    no_gc_clear: a cycle through the request must not clear `engine` before
    `__dealloc__` has released the transfer (pool slot, request body).
    """

    cdef _Engine engine
    cdef shared_ptr[Transfer] t
    cdef object request
    cdef object body_ref  # the request body bytes, pinned while C++ may read them
    cdef bint closed
    cdef bint released
    cdef long long declared  # streamed body: bytes the head declares; -1 when chunked
    cdef PyObject* sink  # read_all: the bytes object the engine writes into (owned)
    cdef size_t sink_cap
    cdef unsigned long long expected  # read_all: the response's Content-Length

    # -- shared steps ---------------------------------------------------------------

    cdef object _closed_error(self):
        return exc.ReadError("The response was closed while it was being read.", request=self.request)

    cdef object _next_chunk(self):
        """After a wait for kBodyData: a chunk (b"" to wait again), or None at the end."""
        cdef string chunk
        cdef Transfer* t = self.t.get()
        if self.released:
            # Closed by another thread or task while this one was iterating.
            raise self._closed_error()
        with nogil:
            self.engine.eng.take_body(t[0], chunk)
        if chunk.size() > 0:
            return <bytes>chunk
        if t.failed():
            raise _error_to_exception(t.error, self.request)
        if t.complete:
            return None
        return b""

    cdef int _read_all_start(self) except -1:
        """Begin reading the whole body; returns the first WaitFor."""
        cdef Transfer* t = self.t.get()
        cdef Engine* eng = self.engine.eng
        cdef char* buf
        cdef size_t cap
        if self.closed:
            raise exc.StreamClosed()
        if t.head.has_content_length and not t.complete:
            self.expected = t.head.content_length
            cap = <size_t>min(self.expected, <unsigned long long>FIRST_SINK)
            self.sink = _new_bytes(NULL, <Py_ssize_t>cap)
            self.sink_cap = cap
            buf = _bytes_data(self.sink)
            with nogil:
                eng.set_sink(t[0], buf, cap, 0)
            return <int>WaitFor.kSinkFull
        with nogil:
            eng.want_all(t[0])
        return <int>WaitFor.kComplete

    cdef int _read_all_step(self) except -2:
        """After a wait: the next WaitFor, or -1 once the body is complete."""
        cdef Transfer* t = self.t.get()
        cdef Engine* eng = self.engine.eng
        cdef size_t fill
        cdef size_t cap
        cdef char* buf
        cdef cbool complete
        if self.released:
            raise self._closed_error()
        if t.failed():
            raise _error_to_exception(t.error, self.request)
        complete = t.complete
        if self.sink == NULL or self.sink_cap >= self.expected:
            # Full size already: anything beyond is an error found at the end.
            return -1 if complete else <int>WaitFor.kComplete
        # The buffer is full (or the body ended while the engine kept the rest
        # aside): grow it; the engine copies what it kept into the new buffer.
        with nogil:
            fill = eng.detach_sink(t[0], NULL)
        if self.sink_cap >= <size_t>PY_SSIZE_T_MAX:
            raise exc.RemoteProtocolError(
                f"Content-Length {self.expected} is too large", request=self.request
            )
        if complete:
            cap = <size_t>self.expected
        else:
            cap = <size_t>min(<unsigned long long>self.sink_cap * 2, self.expected)
        cap = min(cap, <size_t>PY_SSIZE_T_MAX)
        _PyBytes_Resize(&self.sink, <Py_ssize_t>cap)
        self.sink_cap = cap
        buf = _bytes_data(self.sink)
        with nogil:
            eng.set_sink(t[0], buf, cap, fill)
        return -1 if complete else <int>WaitFor.kSinkFull

    cdef object _read_all_result(self):
        """The body, once _read_all_step said it is complete."""
        cdef Transfer* t = self.t.get()
        cdef string rest
        cdef size_t fill
        cdef size_t extra = 0
        if self.sink == NULL:
            with nogil:
                self.engine.eng.take_body(t[0], rest)
            return <bytes>rest
        with nogil:
            fill = self.engine.eng.detach_sink(t[0], &extra)
        if fill != self.expected or extra != 0:
            raise exc.RemoteProtocolError(
                f"received {fill + extra} body bytes, expected {self.expected}",
                request=self.request,
            )
        return <object>self.sink

    cdef void _read_all_cleanup(self) noexcept:
        """Always run after a read_all: detach and free the buffer, release."""
        self._release()  # under the engine mutex: nothing writes into the sink after this
        if self.sink != NULL:
            _Py_XDECREF(self.sink)
            self.sink = NULL

    # -- sync -----------------------------------------------------------------------

    def __iter__(self):
        cdef Transfer* t = self.t.get()
        if self.closed:
            raise exc.StreamClosed()
        try:
            while True:
                _wait(self.engine.eng, t, WaitFor.kBodyData)
                chunk = self._next_chunk()
                if chunk is None:
                    break
                if chunk:
                    yield chunk
        finally:
            self._release()

    def _httprs_read_all(self):
        cdef int what
        try:
            what = self._read_all_start()
            while what >= 0:
                _wait(self.engine.eng, self.t.get(), <WaitFor>what)
                what = self._read_all_step()
            return self._read_all_result()
        finally:
            self._read_all_cleanup()

    cdef void _release(self) noexcept:
        cdef Engine* eng
        cdef Transfer* t
        if not self.released:
            self.released = True
            eng = self.engine.eng
            t = self.t.get()
            if t != NULL:
                if httprs_in_tls_callback():
                    # A finaliser (say a suspended iterator's `finally`) run by
                    # Python code inside a TLS callback: this thread holds the
                    # engine mutex.
                    eng.release_deferred(self.t)
                else:
                    with nogil:
                        eng.release(t[0])
            self.body_ref = None

    def close(self):
        self.closed = True
        self._release()

    def __dealloc__(self):
        # A finaliser can run on a thread that holds the engine mutex (a GC
        # pass inside a Python TLS callback): never take it here. The engine
        # releases the transfer the next time its loop runs.
        if not self.released and self.t.get() != NULL and self.engine is not None:
            if self.engine.eng != NULL:
                self.engine.eng.release_deferred(self.t)
        if self.sink != NULL:
            _Py_XDECREF(self.sink)
            self.sink = NULL


cdef class _TransportCore:
    """The state behind one HTTPTransport: engine, TLS context, route."""

    cdef _Engine engine
    cdef _TlsContext tls
    cdef object tls_args
    cdef _Route route
    cdef bint closed
    cdef shared_ptr[SocketOptions] socket_options
    cdef bytes uds  # Unix domain socket path, or None
    cdef bytes local_address  # source address to bind, or None
    cdef int retries  # connect retries
    cdef object socket_options_arg  # socket_options= as given, for trace events

    cdef shared_ptr[TlsContext] tls_context(self) except *:
        if self.tls is None:
            verify, cert, trust_env = self.tls_args
            self.tls = _build_tls(verify, cert, trust_env)
        return self.tls.current()

    cdef _Body start_async(self, object request):
        return self._start(request, _AsyncBody.__new__(_AsyncBody))

    cdef _Body start(self, object request):
        return self._start(request, _Body.__new__(_Body))

    cdef _Body _start(self, object request, _Body stream):
        cdef RequestSpec spec
        cdef HeaderList headers
        cdef Error err
        cdef string head
        cdef string method
        cdef string target
        cdef BodyKind kind
        cdef size_t fixed_len
        url = request.url
        scheme = url.scheme
        if scheme == "ws" or scheme == "wss":
            # WebSocket URLs, as httpcore: the handshake is HTTP/1.1 (wss over TLS).
            scheme = "https" if scheme == "wss" else "http"
        if scheme not in ("http", "https"):
            if not scheme:
                raise exc.UnsupportedProtocol(
                    "Request URL is missing an 'http://' or 'https://' protocol.",
                    request=request,
                )
            raise exc.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{scheme}://'.", request=request
            )
        host = url.raw_host
        if not host:
            raise exc.UnsupportedProtocol("Request URL is missing a host.", request=request)
        port = url.port
        if port is None:
            port = 443 if scheme == "https" else 80
        timeout = request.extensions.get("timeout")
        if timeout:
            spec.connect_timeout = _timeout_value(timeout.get("connect"))
            spec.read_timeout = _timeout_value(timeout.get("read"))
            spec.write_timeout = _timeout_value(timeout.get("write"))
            spec.pool_timeout = _timeout_value(timeout.get("pool"))
        raw_headers = request.headers.raw
        route = self.route
        # httpcore's "target" extension replaces the path and query on the wire; it is
        # validated with the head (an illegal one is LocalProtocolError, as with h11).
        custom = request.extensions.get("target")
        if route.mode != "proxy" or scheme == "https":
            target = url.raw_path if custom is None else bytes(custom)
        else:
            target = _absolute_target(url, custom)
        for name, value in raw_headers:
            headers.push_back(pair[string, string](name, value))
        if route.mode == "proxy" and scheme == "http":
            for name, value in route.proxy_headers:
                headers.push_back(pair[string, string](name, value))
        try:
            method = request.method.encode("ascii")
        except UnicodeEncodeError:
            raise TypeError("method strings may not include unicode characters.") from None
        # The body: bytes known up front (fixed) or an iterable (streamed).
        body = request.stream
        fixed = getattr(body, "_httprs_body", None)
        if fixed is None and isinstance(body, bytes):
            fixed = body
        if fixed is not None and not isinstance(fixed, bytes):
            fixed = bytes(fixed)
        # Framing is decided in one place, with the head: serialize_request.
        kind = BodyKind.kFixed
        fixed_len = 0
        if fixed is not None:
            fixed_len = len(fixed)
        elif body is not None:
            kind = BodyKind.kStreamed
        if not serialize_request(head, method, target, headers, kind, fixed_len, &spec.plan, err):
            raise _error_to_exception(err, request)
        spec.head = move(head)
        spec.head_request = method == b"HEAD"
        spec.socket_options = self.socket_options
        if route.proxy_tls:
            if route.proxy_tls_ctx is None:
                route.proxy_tls_ctx = _build_tls(
                    route.proxy_ssl_context if route.proxy_ssl_context is not None else True,
                    None,
                    False,
                )
            spec.proxy_tls = route.proxy_tls_ctx.current()
            spec.proxy_tls_host = route.proxy_host
        if self.uds is not None:
            spec.uds_path = self.uds
        if self.local_address is not None:
            spec.local_address = self.local_address
        spec.connect_retries = self.retries
        # The pool key names everything that identifies the peer; TLS sessions
        # are resumed under it too (a resumption skips certificate checks), so
        # it includes the proxy and the name the certificate was checked for.
        origin_key = scheme.encode() + b"://" + host + b":" + str(port).encode()
        if scheme == "https":
            spec.tls = self.tls_context()
            tls_host = _sni_hostname(request, host)
            spec.tls_host = tls_host
            if tls_host != host:
                origin_key += b"|sni:" + tls_host
        if route.mode == "direct":
            spec.connect_host = host
            spec.connect_port = port
            key = origin_key
            if self.uds is not None:
                key += b"|uds:" + self.uds
            spec.pool_key = key
        elif route.mode == "socks":
            spec.connect_host = route.proxy_host
            spec.connect_port = route.proxy_port
            spec.socks_host = host
            spec.socks_port = port
            if route.socks_auth is not None:
                spec.socks_username = route.socks_auth[0]
                spec.socks_password = route.socks_auth[1]
            spec.pool_key = (
                b"socks://" + route.proxy_host + b":" + str(route.proxy_port).encode()
                + b"|" + origin_key
            )
        else:
            spec.connect_host = route.proxy_host
            spec.connect_port = route.proxy_port
            if scheme == "https":
                authority = host if b":" not in host else b"[" + host + b"]"
                authority += b":" + str(port).encode()
                spec.tunnel_authority = authority
                for name, value in route.proxy_headers:
                    spec.tunnel_headers.push_back(pair[string, string](name, value))
                spec.pool_key = b"tunnel://" + origin_key + b"|via:" + route.key
            else:
                spec.pool_key = b"proxy://" + route.key
        if self.uds is None:
            resolve = _patched_getaddrinfo()
            if resolve is not None:
                _resolve_in_python(&spec, resolve, request)
        # A streamed body is held to its declared length as it is sent
        # (_check_sent; the connection enforces it again).
        stream.declared = -1
        if spec.plan.framing == BodyFraming.kContentLength:
            stream.declared = <long long>spec.plan.content_length
        if fixed is not None:
            stream.body_ref = fixed
            spec.body = PyBytes_AS_STRING(fixed)
            spec.body_len = fixed_len
        elif kind == BodyKind.kStreamed:
            spec.body_streamed = True
        stream.engine = self.engine
        stream.request = request
        # The trace machinery also feeds httpcore's DEBUG log lines (_log_event).
        spec.trace = (
            request.extensions.get("trace") is not None or _debug_logging(self.route.mode)
        )
        with nogil:
            stream.t = self.engine.eng.submit(move(spec))
        return stream


cdef object _send_sync(_TransportCore core, object request):
    cdef _Body stream = core.start(request)
    cdef Transfer* t = stream.t.get()
    cdef _Tracer tracer = _Tracer.create(core, stream) if t.spec.trace else None
    try:
        if tracer is not None:
            _trace_until(tracer, WaitFor.kBodyWanted if t.spec.body_streamed else WaitFor.kHead)
        if t.spec.body_streamed and not t.failed():
            _upload_sync(stream, request.stream)
        if tracer is not None:
            _trace_until(tracer, WaitFor.kHead)
        _wait(core.engine.eng, t, WaitFor.kHead)
    except BaseException as error:
        if tracer is not None:
            tracer.failed(error)
        stream._release()
        raise
    if t.failed() and not t.head_ready:
        err = _error_to_exception(t.error, request)
        if tracer is not None:
            tracer.failed(err)
        stream._release()
        raise err
    if tracer is not None:
        tracer.head_received()
    return _make_response(stream, request, tracer)


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


cdef int _upload_sync(_Body stream, object body) except -1:
    cdef Transfer* t = stream.t.get()
    cdef Engine* eng = stream.engine.eng
    cdef const char* data
    cdef size_t n
    cdef long long sent = 0
    iterator = iter(body)
    while True:
        _wait(eng, t, WaitFor.kBodyWanted)
        if t.failed() or t.head_ready or t.complete or not t.want_body:
            return 0
        chunk = next(iterator, None)
        if chunk is None:
            _check_sent(stream, sent, True)
            with nogil:
                eng.push_body(t[0], NULL, 0, True)
            return 0
        if not isinstance(chunk, bytes):
            chunk = bytes(chunk)
        data = PyBytes_AS_STRING(chunk)
        n = len(chunk)
        if n == 0:
            continue
        sent += n
        _check_sent(stream, sent, False)
        with nogil:
            eng.push_body(t[0], data, n, False)


cdef object _make_response(_Body stream, object request, object tracer=None):
    cdef Transfer* t = stream.t.get()
    cdef list raw = []
    for i in range(t.head.headers.size()):
        raw.append((<bytes>t.head.headers[i].first, <bytes>t.head.headers[i].second))
    version = b"HTTP/1.1" if t.head.http_minor == 1 else (
        b"HTTP/1.0" if t.head.http_major == 1 else
        f"HTTP/{t.head.http_major}.{t.head.http_minor}".encode()
    )
    if tracer is not None:
        public = (
            _TracedAsyncResponseStream.__new__(_TracedAsyncResponseStream)
            if isinstance(stream, _AsyncBody)
            else _TracedResponseStream.__new__(_TracedResponseStream)
        )
        public._tracer = tracer
    elif isinstance(stream, _AsyncBody):
        public = AsyncResponseStream.__new__(AsyncResponseStream)
    else:
        public = ResponseStream.__new__(ResponseStream)
    public._body = stream
    response = Response._from_transport(t.head.status, raw, public, version, <bytes>t.head.reason)
    if t.head.status == 101:
        # A requested upgrade: the connection is this response's for good.
        response.extensions["network_stream"] = _network_stream(stream)
    return response


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


cdef shared_ptr[SocketOptions] _socket_options(object options) except *:
    """httpx's socket_options: (level, name, int | bytes) or (level, name, None, length)."""
    cdef shared_ptr[SocketOptions] out = make_shared[SocketOptions]()
    cdef SocketOption opt
    for item in options:
        item = tuple(item)
        if len(item) not in (3, 4):
            raise TypeError(f"Invalid socket option {item!r}")
        opt.level = item[0]
        opt.name = item[1]
        value = item[2]
        if len(item) == 4:
            if value is not None:
                raise TypeError(f"Invalid socket option {item!r}: value must be None with a length")
            opt.kind = SocketOptionKind.kNull
            opt.null_length = item[3]
        elif isinstance(value, (bytes, bytearray)):
            opt.kind = SocketOptionKind.kBytes
            opt.bytes_value = bytes(value)
        elif isinstance(value, int):
            opt.kind = SocketOptionKind.kInt
            opt.int_value = value
        else:
            raise TypeError(f"Invalid socket option {item!r}")
        out.get().push_back(opt)
    return out


cdef _TransportCore _new_core(object verify, object cert, bint trust_env, object limits,
                              object proxy, bint http2, object uds, object local_address,
                              int retries, object socket_options):
    if uds is not None and (socket_options is not None or local_address is not None):
        raise NotImplementedError(
            "socket_options= or local_address= together with uds= is not supported by httprs yet"
        )
    if retries < 0:
        raise ValueError("retries must be >= 0")
    if isinstance(verify, str):
        warnings.warn(
            "`verify=<str>` is deprecated. Use `verify=ssl.create_default_context(cafile=...)` "
            "or `verify=ssl.create_default_context(capath=...)` instead.",
            DeprecationWarning,
            stacklevel=3,
        )
    if cert:
        warnings.warn(
            "`cert=...` is deprecated. Use `verify=<ssl_context>` instead,"
            "with `.load_cert_chain()` to configure the certificate chain.",
            DeprecationWarning,
            stacklevel=3,
        )
    if http2:
        raise NotImplementedError("HTTP/2 is not supported by httprs yet: use http2=False")
    if limits is None:
        limits = DEFAULT_LIMITS
    cdef _TransportCore core = _TransportCore()
    max_conn = limits.max_connections
    max_keep = limits.max_keepalive_connections
    expiry = limits.keepalive_expiry
    core.engine = _Engine(
        -1 if max_conn is None else max_conn,
        -1 if max_keep is None else max_keep,
        -1.0 if expiry is None else expiry,
    )
    core.tls_args = (verify, cert, trust_env)
    core.route = _make_route(proxy)
    if socket_options is not None:
        core.socket_options = _socket_options(socket_options)
    core.socket_options_arg = socket_options
    if uds is not None:
        core.uds = os.fsencode(uds)
    if local_address is not None:
        core.local_address = local_address.encode("ascii")
    core.retries = retries
    if not isinstance(verify, bool) or cert is not None:
        # Build non-default contexts eagerly so bad paths fail at construction.
        core.tls_context()
    return core


from httprs._poolview import PoolAttribute


class _CoreTransport:
    """What the sync and async transports share: construction (httpx's signature) and
    pool statistics. `_core` holds the engine, TLS context and route."""

    def __init__(
        self,
        verify=True,
        cert=None,
        trust_env=True,
        http1=True,
        http2=False,
        limits=DEFAULT_LIMITS,
        proxy=None,
        uds=None,
        local_address=None,
        retries=0,
        socket_options=None,
    ):
        self._core = _new_core(
            verify, cert, trust_env, limits, proxy, http2, uds, local_address, retries,
            socket_options,
        )
        # What `_pool` (httpx's httpcore pool, see httprs/_poolview.py) describes.
        self._settings = {
            "limits": limits, "proxy": proxy, "http1": http1, "http2": http2,
            "retries": retries, "uds": uds, "local_address": local_address,
            "socket_options": socket_options,
        }
        self._init_driving()

    # httpx's transports keep their httpcore pool here; code reads it (pytest-httpx).
    _pool = PoolAttribute()

    def _init_driving(self):
        pass

    def _pool_stats(self):
        cdef _TransportCore core = self._core
        return {
            "connections": core.engine.connection_count,
            "idle": core.engine.idle_count,
        }

    def _hold_engine_mutex(self, int ms):
        """Tests: keep the engine mutex locked for `ms` (GIL released)."""
        cdef _TransportCore core = self._core
        core.engine._hold_mutex_for_testing(ms)


class HTTPTransport(_CoreTransport, BaseTransport):
    """The default transport: HTTP/1.1 over the C++ core."""

    def _init_driving(self):
        cdef _TransportCore core = self._core
        _check_sync_context(core.tls_args[0])
        _check_sync_context(core.route.proxy_ssl_context)

    def handle_request(self, request):
        cdef _TransportCore core = self._core
        if core.closed:
            raise RuntimeError("Cannot send a request, as the transport has been closed.")
        patch = _find_patch(_SYNC_HOOKS)
        if patch is not None:
            return _send_via_httpcore(self, patch, request)
        return _send_sync(core, request)

    def close(self):
        cdef _TransportCore core = self._core
        cdef int open_connections = _open_connections_to_log(core)
        core.closed = True
        core.engine.close()
        _log_closed(open_connections)


# ---------------------------------------------------------------------- async


import weakref

cdef object _asyncio = None
cdef object _sniffio = None


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
            try:
                if self.timer is not None:
                    self.timer.cancel()
                if not self.loop.is_closed():
                    self.loop.remove_reader(self.fd)
            except BaseException:
                pass
            self.loop = None
            self.timer = None
            self.scheduled = False

    cdef void schedule(self) except *:
        if not self.scheduled and self.loop is not None:
            self.scheduled = True
            self.loop.call_soon(_driver_run, self.ref)

    cdef void run(self) except *:
        cdef vector[shared_ptr[Transfer]] signaled
        cdef Transfer* t
        cdef Engine* eng = self.engine.eng
        cdef cbool ok
        cdef WaitFor what
        self.scheduled = False
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
                    fut = entry[1]
                    if not fut.done():
                        fut.set_result(None)
            if not entries:
                del self.waiters[<size_t>t]
        self.rearm()

    cdef void rearm(self) except *:
        if self.loop is None:
            return
        cdef int timeout
        cdef Engine* eng = self.engine.eng
        with nogil:
            timeout = eng.backend_timeout()
        if timeout == 0:
            self.schedule()
            return
        if timeout < 0:
            return
        when = self.loop.time() + timeout / 1000.0
        if self.timer is not None and not self.timer.cancelled() and self.timer_when <= when:
            if self.timer_when > self.loop.time():
                return
        if self.timer is not None:
            self.timer.cancel()
        self.timer_when = when
        self.timer = self.loop.call_at(when, _driver_run, self.ref)

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
        if self.done(t, what):
            return
        global _asyncio
        if _asyncio is None:
            import asyncio

            _asyncio = asyncio
        # Inside the loop we are attached to, this is asyncio: skip asking sniffio
        # (a C-level lookup instead of a Python call on every wait).
        loop = _asyncio._get_running_loop()
        if loop is None or loop is not self.loop:
            if _current_library() == "trio":
                await self._wait_trio(stream, what)
                return
            loop = _asyncio.get_running_loop()
            if loop is not self.loop:
                self.attach(loop)
        key = <size_t>t
        while not self.done(t, what):
            fut = loop.create_future()
            entry = [what, fut]
            entries = self.waiters.get(key)
            if entries is None:
                self.waiters[key] = [entry]
            else:
                entries.append(entry)
            self.schedule()
            try:
                await fut
            finally:
                entries = self.waiters.get(key)
                if entries is not None and entry in entries:
                    entries.remove(entry)
                    if not entries:
                        del self.waiters[key]

    async def _wait_trio(self, _Body stream, int what):
        import trio

        cdef Transfer* t = stream.t.get()
        cdef vector[shared_ptr[Transfer]] signaled
        cdef int timeout
        cdef Engine* eng = self.engine.eng
        while not self.done(t, what):
            if self.trio_driving:
                if self.trio_event is None:
                    self.trio_event = trio.Event()
                await self.trio_event.wait()
                continue
            self.trio_driving = True
            try:
                with nogil:
                    timeout = eng.backend_timeout()
                if timeout == 0:
                    await trio.lowlevel.checkpoint()
                else:
                    with trio.move_on_after(timeout / 1000.0 if timeout > 0 else 3600.0):
                        self.trio_fd = eng.backend_fd()
                        try:
                            await trio.lowlevel.wait_readable(self.trio_fd)
                        except trio.ClosedResourceError:
                            # aclose() in another task: the engine has failed
                            # every transfer, the loop is checked below.
                            pass
                if not self.closed:
                    with nogil:
                        eng.run_nowait(signaled)
                    signaled.clear()
            finally:
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

            try:
                trio.lowlevel.notify_closing(self.trio_fd)
            except RuntimeError:  # not inside trio
                pass

    def resume_waiters(self):
        """After the engine closed: every waiting task resumes and finds its
        transfer failed (ReadError, as httpx), rather than being cancelled."""
        for entries in self.waiters.values():
            for entry in entries:
                if not entry[1].done():
                    entry[1].set_result(None)
        self.waiters.clear()


@cython.no_gc_clear
cdef class _AsyncBody(_Body):
    """_Body for async use: the same transfer and steps, awaited through the driver."""

    cdef _AsyncDriver driver

    def __aiter__(self):
        return _LazyAsyncIterator(self._aiter)

    async def _aiter(self):
        if self.closed:
            raise exc.StreamClosed()
        try:
            while True:
                await self.driver.wait(self, <int>WaitFor.kBodyData)
                chunk = self._next_chunk()
                if chunk is None:
                    break
                if chunk:
                    yield chunk
        finally:
            self._release()

    async def _httprs_aread_all(self):
        cdef int what
        try:
            what = self._read_all_start()
            while what >= 0:
                await self.driver.wait(self, what)
                what = self._read_all_step()
            return self._read_all_result()
        finally:
            self._read_all_cleanup()

    def __iter__(self):
        raise RuntimeError("Attempted to call a sync iterator on an async stream.")

    def _httprs_read_all(self):
        raise RuntimeError("Attempted to call a sync iterator on an async stream.")

    async def aclose(self):
        self.close()
        self.driver.schedule()


async def _send_async(_TransportCore core, _AsyncDriver driver, object request):
    cdef _Body base = core.start_async(request)
    cdef _AsyncBody stream = <_AsyncBody>base
    cdef Transfer* t = stream.t.get()
    cdef Engine* eng = core.engine.eng
    stream.driver = driver
    with nogil:
        eng.watch(t[0])
    cdef _Tracer tracer = _Tracer.create(core, stream) if t.spec.trace else None
    try:
        if tracer is not None:
            await _atrace_until(
                tracer, WaitFor.kBodyWanted if t.spec.body_streamed else WaitFor.kHead
            )
        if t.spec.body_streamed and not t.failed():
            await _upload_async(stream, request.stream)
        if tracer is not None:
            await _atrace_until(tracer, WaitFor.kHead)
        await driver.wait(stream, <int>WaitFor.kHead)
    except BaseException as error:
        if tracer is not None:
            await tracer.afailed(error)
        stream._release()
        driver.schedule()
        raise
    if t.failed() and not t.head_ready:
        err = _error_to_exception(t.error, request)
        if tracer is not None:
            await tracer.afailed(err)
        stream._release()
        raise err
    if tracer is not None:
        await tracer.ahead_received()
    return _make_response(stream, request, tracer)


async def _upload_async(_AsyncBody stream, object body):
    cdef Transfer* t = stream.t.get()
    cdef Engine* eng = stream.engine.eng
    cdef long long sent = 0
    cdef const char* data
    cdef size_t n
    if hasattr(body, "__aiter__"):
        iterator = body.__aiter__()
        is_async = True
    else:
        iterator = iter(body)
        is_async = False
    while True:
        await stream.driver.wait(stream, <int>WaitFor.kBodyWanted)
        if t.failed() or t.head_ready or t.complete or not t.want_body:
            return
        if is_async:
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                chunk = None
        else:
            chunk = next(iterator, None)
        if chunk is None:
            _check_sent(stream, sent, True)
            with nogil:
                eng.push_body(t[0], NULL, 0, True)
            return
        if not isinstance(chunk, bytes):
            chunk = bytes(chunk)
        n = len(chunk)
        if n == 0:
            continue
        sent += n
        _check_sent(stream, sent, False)
        data = PyBytes_AS_STRING(chunk)
        with nogil:
            eng.push_body(t[0], data, n, False)


class AsyncHTTPTransport(_CoreTransport, AsyncBaseTransport):
    """The default async transport: the C++ core driven from the event loop."""

    def _init_driving(self):
        self._driver = _AsyncDriver((<_TransportCore>self._core).engine)

    async def handle_async_request(self, request):
        cdef _TransportCore core = self._core
        if core.closed:
            raise RuntimeError("Cannot send a request, as the transport has been closed.")
        patch = _find_patch(_ASYNC_HOOKS)
        if patch is not None:
            return await _send_via_httpcore_async(self, patch, request)
        return await _send_async(core, self._driver, request)

    async def aclose(self):
        cdef _TransportCore core = self._core
        cdef int open_connections = _open_connections_to_log(core)
        core.closed = True
        self._driver.close()
        core.engine.close()  # in-flight transfers fail with kClosed (ReadError)
        self._driver.resume_waiters()
        _log_closed(open_connections)


# ---------------------------------------------------------------------- network_stream


include "_netstream.pxi"


# ---------------------------------------------------------------------- trace extension


import inspect


class _TraceStream:
    """What httpcore's connect_tcp / start_tls events return: a network stream. The
    C++ core owns the socket, so it answers get_extra_info with None."""

    __slots__ = ()

    def get_extra_info(self, info):
        return None


cdef object _TRACE_STREAM = _TraceStream()

# httpcore's loggers, by trace-event prefix: DEBUG logging shows what httpcore's would
# (`httpcore2.*` when the switch presents httprs as httpx2; _alias._set_logger).
cdef int _LOG_DEBUG = logging.DEBUG
cdef object _LOG_CONNECTION
cdef object _LOG_HTTP11
cdef object _LOG_PROXY
cdef object _LOG_SOCKS
cdef dict _LOGGERS = {}


def _set_core_loggers(str prefix):
    """Log connection events on `<prefix>.connection`, `<prefix>.http11`, ...: httpcore's
    logger names for `prefix="httpcore"`, httpcore2's for `"httpcore2"`."""
    global _LOG_CONNECTION, _LOG_HTTP11, _LOG_PROXY, _LOG_SOCKS
    _LOG_CONNECTION = logging.getLogger(prefix + ".connection")
    _LOG_HTTP11 = logging.getLogger(prefix + ".http11")
    _LOG_PROXY = logging.getLogger(prefix + ".proxy")
    _LOG_SOCKS = logging.getLogger(prefix + ".socks")
    _LOGGERS.update(
        connection=_LOG_CONNECTION, http11=_LOG_HTTP11, proxy=_LOG_PROXY, socks=_LOG_SOCKS
    )


_set_core_loggers("httpcore")


cdef bint _debug_logging(str mode) except -1:
    """Whether a request on a route of `mode` has a logger enabled for DEBUG. Checked once
    per request (logging's own per-logger cache makes each check a dict lookup)."""
    if _LOG_HTTP11.isEnabledFor(_LOG_DEBUG) or _LOG_CONNECTION.isEnabledFor(_LOG_DEBUG):
        return True
    if mode == "direct":
        return False
    return (_LOG_SOCKS if mode == "socks" else _LOG_PROXY).isEnabledFor(_LOG_DEBUG)


cdef int _open_connections_to_log(_TransportCore core) except -1:
    """The connections a closing transport will close, when their close is to be logged."""
    if core.closed or not _LOG_CONNECTION.isEnabledFor(_LOG_DEBUG):
        return 0
    return core.engine.connection_count


cdef int _log_closed(int connections) except -1:
    """httpcore's `close` events, one pair per connection the pool closed."""
    for _ in range(connections):
        _log_event("connection.close.started", {})
        _log_event("connection.close.complete", {"return_value": None})
    return 0


cdef str _log_value(str key, object value):
    if key == "request":
        # httpcore's Request repr: the log reads as httpx's does.
        return f"<Request [{value.method.encode('ascii')!r}]>"
    return repr(value)


cdef int _log_event(str name, dict info) except -1:
    """Write one trace event as httpcore's Trace does: `<event> key=repr ...` on the
    logger of its prefix, only the name when there is nothing (or None) to report."""
    prefix, _, event = name.partition(".")
    logger = _LOGGERS.get(prefix)
    if logger is None or not logger.isEnabledFor(_LOG_DEBUG):
        return 0
    if not info or ("return_value" in info and info["return_value"] is None):
        logger.debug(event)
    else:
        logger.debug(
            event + " " + " ".join([f"{key}={_log_value(key, v)}" for key, v in info.items()])
        )
    return 0

# httpcore's HTTP/1.1 events, in order (the trace extension's names).
cdef tuple _HTTP11 = (
    "http11.send_request_headers.started",
    "http11.send_request_headers.complete",
    "http11.send_request_body.started",
    "http11.send_request_body.complete",
    "http11.receive_response_headers.started",
    "http11.receive_response_headers.complete",
    "http11.receive_response_body.started",
    "http11.receive_response_body.complete",
    "http11.response_closed.started",
    "http11.response_closed.complete",
)
DEF H_HEADERS_STARTED = 0
DEF H_BODY_STARTED = 2
DEF H_RECEIVE_STARTED = 4
DEF H_HEAD_COMPLETE = 5
DEF H_BODY_READ_STARTED = 6
DEF H_BODY_READ_COMPLETE = 7
DEF H_CLOSED = 9


@cython.final
cdef class _Tracer:
    """Calls a request's `trace` extension with httpcore's event names and info dicts,
    at the moments httpcore would: the C++ connection stops at each phase's start
    (TraceStep gates) until the "...started" callback has returned.

    Sync clients call the callback; async ones await what it returns. Events are
    queued by the step handlers and delivered by `_flush` / `_aflush`."""

    cdef object callback
    cdef _Body stream
    cdef _TransportCore core
    cdef object request
    cdef int http11  # index in _HTTP11 of the next event to send
    cdef str open_phase  # the phase whose "started" went out without an end, or None
    cdef list queue  # [(name, info)] waiting to be delivered
    cdef bint is_async
    cdef bint log  # also write each event to httpcore's DEBUG loggers

    @staticmethod
    cdef _Tracer create(_TransportCore core, _Body stream):
        cdef _Tracer self = _Tracer.__new__(_Tracer)
        self.core = core
        self.stream = stream
        self.request = stream.request
        self.callback = stream.request.extensions.get("trace")
        # Traced without a callback: only because a logger was enabled (start()).
        self.log = self.callback is None or _debug_logging(core.route.mode)
        self.queue = []
        self.is_async = isinstance(stream, _AsyncBody)
        return self

    cdef void add(self, str name, dict info) except *:
        self.queue.append((name, info))
        if name.endswith(".started"):
            self.open_phase = name[: -len(".started")]
        elif self.open_phase is not None and name.startswith(self.open_phase):
            self.open_phase = None

    cdef void http11_to(self, int last) except *:
        """Queue the HTTP/1.1 events up to index `last` not sent yet."""
        cdef Transfer* t
        while self.http11 <= last:
            name = _HTTP11[self.http11]
            if name.endswith(".started"):
                info = {} if self.http11 == H_CLOSED - 1 else {"request": self.request}
            elif self.http11 == H_HEAD_COMPLETE:
                t = self.stream.t.get()
                headers = [
                    (<bytes>t.head.headers[i].first, <bytes>t.head.headers[i].second)
                    for i in range(t.head.headers.size())
                ]
                version = b"HTTP/1.0" if t.head.http_minor == 0 else b"HTTP/1.1"
                info = {"return_value": (version, t.head.status, <bytes>t.head.reason, headers)}
            else:
                info = {"return_value": None}
            self.http11 += 1
            self.add(name, info)

    cdef bint step(self, int step) except -1:
        """Queue the events of one TraceStep; True when it is a gate."""
        core = self.core
        route = core.route
        request = self.request
        url = request.url
        timeout = (request.extensions.get("timeout") or {}).get("connect")
        # httpcore's logger (event prefix) for the origin's TLS: the pool's
        # connection, the tunnel of an HTTP proxy, or a SOCKS connection.
        via = "socks" if route.mode == "socks" else (
            "proxy" if route.mode == "proxy" and url.scheme == "https" else "connection"
        )
        if step == <int>TraceStep.kConnect:
            if core.uds is not None:
                self.add(
                    "connection.connect_unix_socket.started",
                    {
                        "path": os.fsdecode(core.uds),
                        "timeout": timeout,
                        "socket_options": core.socket_options_arg,
                    },
                )
            elif route.mode == "socks":
                self.add(
                    "socks.connect_tcp.started",
                    {
                        "host": route.proxy_host.decode("ascii"),
                        "port": route.proxy_port,
                        "timeout": timeout,
                    },
                )
            else:
                if route.mode == "direct":
                    host = url.raw_host.decode("ascii")
                    port = url.port or (443 if url.scheme == "https" else 80)
                else:
                    host = route.proxy_host.decode("ascii")
                    port = route.proxy_port
                local = core.local_address.decode() if core.local_address is not None else None
                self.add(
                    "connection.connect_tcp.started",
                    {
                        "host": host,
                        "port": port,
                        "local_address": local,
                        "timeout": timeout,
                        "socket_options": core.socket_options_arg,
                    },
                )
            return True
        if step == <int>TraceStep.kConnected:
            kind = "connect_unix_socket" if core.uds is not None else "connect_tcp"
            prefix = "socks" if route.mode == "socks" else "connection"
            self.add(f"{prefix}.{kind}.complete", {"return_value": _TRACE_STREAM})
        elif step == <int>TraceStep.kProxyTls:
            self.add(
                "connection.start_tls.started",
                {
                    "ssl_context": route.proxy_ssl_context,
                    "server_hostname": route.proxy_host.decode("ascii"),
                    "timeout": timeout,
                },
            )
            return True
        elif step == <int>TraceStep.kProxyTlsDone:
            self.add("connection.start_tls.complete", {"return_value": _TRACE_STREAM})
        elif step == <int>TraceStep.kTunnel:
            # The CONNECT request's own HTTP/1.1 events (its head only).
            self.add("http11.send_request_headers.started", {"request": request})
            return True
        elif step == <int>TraceStep.kTunnelDone:
            self.add("http11.send_request_headers.complete", {"return_value": None})
            self.add("http11.send_request_body.started", {"request": request})
            self.add("http11.send_request_body.complete", {"return_value": None})
            self.add("http11.receive_response_headers.started", {"request": request})
            # Only a 2xx gets here; the proxy's reason and headers are not kept.
            self.add(
                "http11.receive_response_headers.complete",
                {"return_value": (b"HTTP/1.1", 200, b"", [])},
            )
        elif step == <int>TraceStep.kSocks:
            self.add(
                "socks.setup_socks5_connection.started",
                {
                    "stream": _TRACE_STREAM,
                    "host": url.raw_host.decode("ascii"),
                    "port": url.port or (443 if url.scheme == "https" else 80),
                    "auth": route.socks_auth,
                },
            )
            return True
        elif step == <int>TraceStep.kSocksDone:
            self.add(
                "socks.setup_socks5_connection.complete", {"return_value": _TRACE_STREAM}
            )
        elif step == <int>TraceStep.kTls:
            verify = core.tls_args[0]
            self.add(
                f"{via}.start_tls.started",
                {
                    "ssl_context": verify if isinstance(verify, ssl.SSLContext) else None,
                    "server_hostname": self.stream.t.get().spec.tls_host.decode("ascii"),
                    "timeout": timeout,
                },
            )
            return True
        elif step == <int>TraceStep.kTlsDone:
            self.add(f"{via}.start_tls.complete", {"return_value": _TRACE_STREAM})
        elif step == <int>TraceStep.kSend:
            self.http11 = 0
            self.http11_to(H_HEADERS_STARTED)
            return True
        elif step == <int>TraceStep.kSent:
            self.http11_to(H_RECEIVE_STARTED)
            return True
        return False

    cdef int take(self, bint* gate) except -1:
        """Queue the events of every TraceStep recorded so far."""
        cdef vector[int] steps
        cdef Transfer* t = self.stream.t.get()
        with nogil:
            self.stream.engine.eng.take_trace(t[0], steps)
        for i in range(steps.size()):
            if self.step(steps[i]):
                gate[0] = True
        if t.want_body and not t.head_ready and self.http11 > H_HEADERS_STARTED:
            self.http11_to(H_BODY_STARTED)  # a streamed upload: the head went out
        return 0

    cdef void resume(self) noexcept:
        cdef Transfer* t = self.stream.t.get()
        with nogil:
            self.stream.engine.eng.trace_resume(t[0])

    # -- sync delivery

    cdef int flush(self) except -1:
        while self.queue:
            name, info = self.queue.pop(0)
            if self.callback is not None:
                ret = self.callback(name, info)
                if inspect.iscoroutine(ret):
                    ret.close()
                    raise TypeError(
                        "If you are using a synchronous interface, the callback of the `trace` "
                        "extension should be a normal function instead of an asynchronous "
                        "function."
                    )
            if self.log:
                _log_event(name, info)
        return 0

    cdef int failed(self, object error) except -1:
        """The request failed: end the open phase as httpcore does."""
        self.queue.clear()
        phase = self.open_phase
        if phase is None:
            return 0
        self.open_phase = None
        self.add(f"{phase}.failed", {"exception": error})
        if phase.startswith("http11."):
            self.http11 = H_CLOSED - 1
            self.http11_to(H_CLOSED)
        try:
            self.flush()
        except Exception:
            pass  # the request's own error is the one that propagates
        return 0

    cdef int head_received(self) except -1:
        self.http11_to(H_HEAD_COMPLETE)
        return self.flush()

    # -- async delivery

    async def aflush(self):
        while self.queue:
            name, info = self.queue.pop(0)
            if self.callback is not None:
                ret = self.callback(name, info)
                if not inspect.iscoroutine(ret):
                    raise TypeError(
                        "If you're using an asynchronous interface, the callback of the `trace` "
                        "extension should be an asynchronous function rather than a normal "
                        "function."
                    )
                await ret
            if self.log:
                _log_event(name, info)

    async def afailed(self, error):
        self.queue.clear()
        phase = self.open_phase
        if phase is None:
            return
        self.open_phase = None
        self.add(f"{phase}.failed", {"exception": error})
        if phase.startswith("http11."):
            self.http11 = H_CLOSED - 1
            self.http11_to(H_CLOSED)
        try:
            await self.aflush()
        except Exception:
            pass

    async def ahead_received(self):
        self.http11_to(H_HEAD_COMPLETE)
        await self.aflush()

    # -- the response body (called by the traced response streams)

    def body_started(self):
        if self.http11 <= H_BODY_READ_STARTED:
            self.http11_to(H_BODY_READ_STARTED)
            return True
        return False

    def body_complete(self):
        if self.http11 == H_BODY_READ_STARTED + 1:
            self.http11_to(H_BODY_READ_COMPLETE)

    def closing(self):
        if self.http11 < H_CLOSED:
            self.http11 = H_CLOSED - 1
            self.http11_to(H_CLOSED - 1)
            return True
        return False

    def closed(self):
        if self.http11 == H_CLOSED:
            self.http11_to(H_CLOSED)

    def _flush(self):
        self.flush()

    async def _aflush(self):
        await self.aflush()


cdef int _trace_until(_Tracer tracer, WaitFor what) except -1:
    """Sync: deliver trace events (passing each gate once its callback returned) until
    `what` holds for the transfer or it failed."""
    cdef Transfer* t = tracer.stream.t.get()
    cdef bint gate
    while True:
        gate = False
        tracer.take(&gate)
        tracer.flush()
        if gate:
            tracer.resume()
            continue
        if t.failed() or Engine.satisfied(t[0], what):
            return 0
        _wait(tracer.stream.engine.eng, t, WaitFor.kTraceStep)


async def _atrace_until(_Tracer tracer, WaitFor what):
    cdef Transfer* t = tracer.stream.t.get()
    cdef bint gate
    cdef _AsyncBody stream = <_AsyncBody>tracer.stream
    while True:
        gate = False
        tracer.take(&gate)
        await tracer.aflush()
        if gate:
            tracer.resume()
            stream.driver.schedule()
            continue
        if t.failed() or Engine.satisfied(t[0], what):
            return
        await stream.driver.wait(stream, <int>WaitFor.kTraceStep)


class _TracedResponseStream(ResponseStream):
    """ResponseStream for a traced request: the receive_response_body and
    response_closed events around reading and closing."""

    __slots__ = ("_tracer",)

    def __iter__(self):
        tracer = self._tracer
        if tracer.body_started():
            tracer._flush()
        yield from self._body
        tracer.body_complete()
        tracer._flush()

    def _httprs_read_all(self):
        tracer = self._tracer
        if tracer.body_started():
            tracer._flush()
        data = self._body._httprs_read_all()
        tracer.body_complete()
        tracer._flush()
        return data

    def close(self):
        tracer = self._tracer
        if tracer.closing():
            tracer._flush()
            self._body.close()
            tracer.closed()
            tracer._flush()
        else:
            self._body.close()


class _TracedAsyncResponseStream(AsyncResponseStream):
    __slots__ = ("_tracer",)

    def __aiter__(self):
        return _LazyAsyncIterator(self._aiter)

    async def _aiter(self):
        tracer = self._tracer
        if tracer.body_started():
            await tracer._aflush()
        async for chunk in self._body:
            yield chunk
        tracer.body_complete()
        await tracer._aflush()

    async def _httprs_aread_all(self):
        tracer = self._tracer
        if tracer.body_started():
            await tracer._aflush()
        data = await self._body._httprs_aread_all()
        tracer.body_complete()
        await tracer._aflush()
        return data

    async def aclose(self):
        tracer = self._tracer
        if tracer.closing():
            await tracer._aflush()
            await self._body.aclose()
            tracer.closed()
            await tracer._aflush()
        else:
            await self._body.aclose()


# ---------------------------------------------------------------------- mocking libraries


cdef object _socket_module = None
cdef object _genuine_getaddrinfo = None


cdef object _patched_getaddrinfo():
    """socket.getaddrinfo when something has replaced it (mock.patch, DNS overrides), else None.

    httpx resolves through Python's socket module, so such a replacement steers
    its connections; httprs resolves in C++, and honours it by resolving through
    it instead (_resolve_in_python). Unpatched, this costs a lookup and an
    identity test.
    """
    global _socket_module, _genuine_getaddrinfo
    if _socket_module is None:
        import socket

        _socket_module = socket
    current = _socket_module.getaddrinfo
    if current is _genuine_getaddrinfo:
        return None
    code = getattr(current, "__code__", None)
    if (
        code is not None
        and getattr(current, "__module__", None) == "socket"
        and code.co_filename == _socket_module.__file__
    ):
        _genuine_getaddrinfo = current
        return None
    return current


cdef int _resolve_in_python(RequestSpec* spec, object resolve, object request) except -1:
    """Resolve the connect host through `resolve` (a patched socket.getaddrinfo).

    Called as httpcore's socket.create_connection calls it; the first IPv4 /
    IPv6 address becomes the connect host (the C++ core takes a literal as is)
    and part of the pool key, so connections follow the patched answers. The
    original name stays the TLS server name and the Host header.
    """
    cdef bytes raw = spec.connect_host
    host = raw.decode("ascii")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        infos = resolve(host, spec.connect_port, 0, _socket_module.SOCK_STREAM)
    except OSError as err:
        raise exc.ConnectError(str(err), request=request) from err
    address = None
    for info in infos:
        if info[0] in (_socket_module.AF_INET, _socket_module.AF_INET6):
            address = str(info[4][0])
            break
    if address is None:
        raise exc.ConnectError(f"No address found for {host!r}", request=request)
    cdef bytes literal = address.encode("ascii")
    cdef bytes key = spec.pool_key
    spec.connect_host = literal
    spec.pool_key = key + b"|addr:" + literal
    return 0


cdef class _HttpcoreHook:
    """Notices when a mocking library has replaced httpcore's (or httpcore2's) pool entry
    point.

    respx (the mocker openai's and anthropic's suites use) patches
    httpcore.ConnectionPool.handle_request, below httpx's transport; respx2 (vendored by
    openai 3.x's tests) and pytest-httpx2 patch httpcore2's, below httpx2's. httprs has no
    httpcore underneath, so its transports look on each request whether that method is
    still the package's own; when it is not, the request goes through the patched
    function, converted to that package's types and back. Unpatched (or the package not
    imported at all), this costs a dict lookup per package.
    """

    cdef readonly str package
    cdef str module
    cdef str cls_name
    cdef str attr
    cdef object cls
    cdef object original

    def __cinit__(self, str package, str module, str cls_name, str attr):
        self.package = package
        self.module = package + "." + module
        self.cls_name = cls_name
        self.attr = attr

    cdef object patched(self):
        if self.cls is None:
            if self.package not in sys.modules:
                return None
            mod = sys.modules.get(self.module)
            if mod is None:
                return None
            self.cls = getattr(mod, self.cls_name)
        current = self.cls.__dict__.get(self.attr)
        if current is self.original:
            return None
        if getattr(current, "__module__", "").startswith(self.package + "."):
            self.original = current
            return None
        return current


cdef tuple _SYNC_HOOKS = (
    _HttpcoreHook("httpcore", "_sync.connection_pool", "ConnectionPool", "handle_request"),
    _HttpcoreHook("httpcore2", "_sync.connection_pool", "ConnectionPool", "handle_request"),
)
cdef tuple _ASYNC_HOOKS = (
    _HttpcoreHook(
        "httpcore", "_async.connection_pool", "AsyncConnectionPool", "handle_async_request"
    ),
    _HttpcoreHook(
        "httpcore2", "_async.connection_pool", "AsyncConnectionPool", "handle_async_request"
    ),
)


cdef tuple _find_patch(tuple hooks):
    """(package, patched function) of the first hook whose method was replaced, or None."""
    cdef _HttpcoreHook hook
    for hook in hooks:
        patched = hook.patched()
        if patched is not None:
            return (hook.package, patched)
    return None


cdef object _httpcore_request(str package, object request):
    httpcore = sys.modules[package]  # imported: its patched method is why we are here
    url = request.url
    return httpcore.Request(
        method=request.method.encode("ascii"),
        url=httpcore.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
        ),
        headers=request.headers.raw,
        content=request.stream,
        extensions=request.extensions,
    )


cdef object _from_httpcore_response(object response, object stream):
    ext = response.extensions
    return Response._from_transport(
        response.status,
        [(bytes(k), bytes(v)) for k, v in response.headers],
        stream,
        ext.get("http_version", b"HTTP/1.1"),
        ext.get("reason_phrase", b""),
    )


cdef object _httpcore_error(BaseException error, object request):
    """The httprs exception for an httpcore one (same class names as httpx maps)."""
    for cls in type(error).__mro__:
        mapped = getattr(exc, cls.__name__, None)
        if mapped is not None and cls.__module__.startswith("httpcore"):
            return mapped(str(error), request=request)
    return None


class _HttpcoreStream(SyncByteStream):
    def __init__(self, stream):
        self._stream = stream

    def __iter__(self):
        yield from self._stream

    def close(self):
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class _AsyncHttpcoreStream(AsyncByteStream):
    def __init__(self, stream):
        self._stream = stream

    def __aiter__(self):
        return _LazyAsyncIterator(self._aiter)

    async def _aiter(self):
        async for chunk in self._stream:
            yield chunk

    async def aclose(self):
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()


def _mocked_pool(transport, str package, bint is_async):
    """A real pool of the patched package (httpcore or httpcore2) for pass-through routes,
    with the transport's settings; creating one opens no sockets."""
    from httprs._poolview import build_pool

    pool = transport.__dict__.get("_pool")
    if pool is None or not type(pool).__module__.startswith(package + "."):
        pool = build_pool(transport.__dict__.get("_settings", {}), is_async, package)
        transport._pool = pool
    return pool


def _send_via_httpcore(transport, tuple patch, request):
    package, patched = patch
    try:
        response = patched(
            _mocked_pool(transport, package, False), _httpcore_request(package, request)
        )
    except Exception as error:
        mapped = _httpcore_error(error, request)
        if mapped is None:
            raise
        raise mapped from error
    return _from_httpcore_response(response, _HttpcoreStream(response.stream))


async def _send_via_httpcore_async(transport, tuple patch, request):
    package, patched = patch
    try:
        response = await patched(
            _mocked_pool(transport, package, True), _httpcore_request(package, request)
        )
    except Exception as error:
        mapped = _httpcore_error(error, request)
        if mapped is None:
            raise
        raise mapped from error
    return _from_httpcore_response(response, _AsyncHttpcoreStream(response.stream))
