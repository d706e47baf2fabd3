# The `trace` extension and httpcore-style DEBUG logging (included into
# _core.pyx).

import inspect


@cython.no_gc_clear
cdef class _TraceStream(_ConnStreamCore):
    """What httpcore's connect_tcp / start_tls events return: a network stream. The
    C++ core owns the socket, so it answers get_extra_info from what it recorded:
    "server_addr" and "client_addr" (the socket's addresses as it connected, in the
    shapes httpcore's streams give), "socket" (a socket.socket over a duplicate of
    the connection's descriptor while it is open, as a response's network_stream
    gives: setsockopt() reaches the connection) and "is_readable" and, on a
    start_tls.complete (an https:// proxy's, the origin's), "ssl_object" (version,
    cipher, ALPN, getpeercert()), as httpx's CLI prints with -v; anything else is
    None."""

    cdef object _event_ssl  # the ssl_object of the start_tls event, else None

    def get_extra_info(self, info):
        if info == "ssl_object":
            return self._event_ssl
        return _ConnStreamCore.get_extra_info(self, info)

    def __repr__(self):
        # As httpcore's streams print in its DEBUG log: "<... object at 0x...>".
        return object.__repr__(self)

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        raise NotImplementedError(
            "httprs: a trace event's stream answers get_extra_info() only; the "
            "connection's TLS and bytes are the pool's"
        )


cdef _TraceStream _trace_stream(
    shared_ptr[ConnectionInfo] info, _Engine engine, bint ipv6_pair, object ssl_object
):
    cdef _TraceStream stream = _TraceStream.__new__(_TraceStream)
    stream.info = info
    stream.engine = engine
    stream.ipv6_pair = ipv6_pair
    stream._event_ssl = ssl_object
    return stream


cdef object _TRACE_STREAM = _trace_stream(shared_ptr[ConnectionInfo](), None, False, None)

# httpcore's loggers, by trace-event prefix: DEBUG logging shows what httpcore's would
# (`httpcore2.*` when the switch presents httprs as httpx2; _alias._set_logger).
cdef int _LOG_DEBUG = logging.DEBUG
cdef object _LOG_CONNECTION
cdef object _LOG_HTTP11
cdef object _LOG_HTTP2
cdef object _LOG_PROXY
cdef object _LOG_SOCKS
cdef dict _LOGGERS = {}


# Each logger's `_cache` dict (logging's own memo of isEnabledFor by level), or None for a
# logger of another class. logging fills it in isEnabledFor and empties every logger's on any
# setLevel() or logging.disable(), so a cached False stays true until the configuration
# changes (a `disabled` logger is never cached, and can only make the answer more False).
cdef object _CACHE_CONNECTION
cdef object _CACHE_HTTP11
cdef object _CACHE_HTTP2
cdef object _CACHE_PROXY
cdef object _CACHE_SOCKS
cdef object _DEBUG_KEY = logging.DEBUG

# _debug_off's memo: the PEP 509 versions the http11, http2 and connection loggers'
# `_cache` dicts had when all three said DEBUG is off. logging changes a logger's answer
# only by emptying its `_cache` (setLevel, logging.disable: every logger's), and any
# change to a dict renews its version (globally unique, a new dict's too), so while the
# three versions are the remembered ones the three answers still hold. 0: nothing
# remembered (a version is never 0; unreadable from 3.12: no memo, the lookups answer).
cdef unsigned long long _off_http11 = 0
cdef unsigned long long _off_http2 = 0
cdef unsigned long long _off_connection = 0


cdef object _level_cache(object logger):
    if type(logger) is not logging.Logger:
        return None  # another class may answer isEnabledFor its own way
    cache = getattr(logger, "_cache", None)
    return cache if type(cache) is dict else None


def _set_core_loggers(str prefix):
    """Log connection events on `<prefix>.connection`, `<prefix>.http11`, ...: httpcore's
    logger names for `prefix="httpcore"`, httpcore2's for `"httpcore2"`."""
    global _LOG_CONNECTION, _LOG_HTTP11, _LOG_HTTP2, _LOG_PROXY, _LOG_SOCKS
    global _CACHE_CONNECTION, _CACHE_HTTP11, _CACHE_HTTP2, _CACHE_PROXY, _CACHE_SOCKS
    global _off_http11, _off_http2, _off_connection
    _LOG_CONNECTION = logging.getLogger(prefix + ".connection")
    _LOG_HTTP11 = logging.getLogger(prefix + ".http11")
    _LOG_HTTP2 = logging.getLogger(prefix + ".http2")
    _LOG_PROXY = logging.getLogger(prefix + ".proxy")
    _LOG_SOCKS = logging.getLogger(prefix + ".socks")
    _CACHE_CONNECTION = _level_cache(_LOG_CONNECTION)
    _CACHE_HTTP11 = _level_cache(_LOG_HTTP11)
    _CACHE_HTTP2 = _level_cache(_LOG_HTTP2)
    _CACHE_PROXY = _level_cache(_LOG_PROXY)
    _CACHE_SOCKS = _level_cache(_LOG_SOCKS)
    # (New dicts have new versions anyway: the memo is emptied for clarity only.)
    _off_http11 = _off_http2 = _off_connection = 0
    _LOGGERS.update(
        connection=_LOG_CONNECTION,
        http11=_LOG_HTTP11,
        http2=_LOG_HTTP2,
        proxy=_LOG_PROXY,
        socks=_LOG_SOCKS,
    )


_set_core_loggers("httpcore")


cdef inline bint _debug_cached_off(object cache):
    """True when logging's memo already says the logger is not enabled for DEBUG."""
    return cache is not None and (<dict>cache).get(_DEBUG_KEY) is False


cdef inline bint _debug_off() except -1:
    """Whether logging's memo says none of the http11, http2 and connection loggers is
    enabled for DEBUG: three version compares while the memo holds, else a lookup each."""
    global _off_http11, _off_http2, _off_connection
    if _CACHE_HTTP11 is None or _CACHE_HTTP2 is None or _CACHE_CONNECTION is None:
        return False  # a logger of another class: asked each time
    # Read before the lookups: a change after these reads renews a version, so versions
    # are never remembered for contents the lookups did not see.
    cdef unsigned long long http11 = _dict_version(_CACHE_HTTP11)
    cdef unsigned long long http2 = _dict_version(_CACHE_HTTP2)
    cdef unsigned long long connection = _dict_version(_CACHE_CONNECTION)
    if (
        http11 != 0
        and http11 == _off_http11
        and http2 == _off_http2
        and connection == _off_connection
    ):
        return True
    if not (
        _debug_cached_off(_CACHE_HTTP11)
        and _debug_cached_off(_CACHE_HTTP2)
        and _debug_cached_off(_CACHE_CONNECTION)
    ):
        return False
    _off_http11 = http11
    _off_http2 = http2
    _off_connection = connection
    return True


cdef bint _debug_logging(str mode) except -1:
    """Whether a request on a route of `mode` has a logger enabled for DEBUG (its http11,
    http2 and connection loggers, and proxy or socks), checked once per request. While
    DEBUG is off, logging's own per-logger memo answers (_debug_off: unchanged since it
    last said so, or a dict lookup each); otherwise each logger is asked (which fills
    the memo for the next request)."""
    proxy_cache = None
    proxy = None
    if mode != "direct":
        proxy, proxy_cache = (
            (_LOG_SOCKS, _CACHE_SOCKS) if mode == "socks" else (_LOG_PROXY, _CACHE_PROXY)
        )
    if _debug_off() and (proxy is None or _debug_cached_off(proxy_cache)):
        return False
    if (
        _LOG_HTTP11.isEnabledFor(_LOG_DEBUG)
        or _LOG_HTTP2.isEnabledFor(_LOG_DEBUG)
        or _LOG_CONNECTION.isEnabledFor(_LOG_DEBUG)
    ):
        return True
    return proxy is not None and proxy.isEnabledFor(_LOG_DEBUG)


cdef int _open_connections_to_log(_TransportCore core) except -1:
    """The connections a closing transport will close, when their close is to be logged."""
    if core.closed or not _LOG_CONNECTION.isEnabledFor(_LOG_DEBUG):
        return 0
    # Held while it is asked (without the GIL): a close and a reopen in other threads
    # meanwhile would otherwise free it (_reopen replaces the transport's engine).
    cdef _Engine engine = core.engine
    return engine.connection_count


cdef int _log_closed(int connections) except -1:
    """httpcore's `close` events, one pair per connection the pool closed."""
    for _ in range(connections):
        _log_event("connection.close.started", {})
        _log_event("connection.close.complete", {"return_value": None})
    return 0


cdef str _log_value(str key, object value):
    if key == "request":
        # httpcore's Request repr: the log reads as httpx's does.
        return f"<Request [{_method_bytes(value.method)!r}]>"
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


cdef inline bint _is_proxy_step(int step) noexcept:
    """A TraceStep on the way through a proxy (_Tracer.proxy_step)."""
    return (
        step == <int>TraceStep.kProxyTls
        or step == <int>TraceStep.kProxyTlsDone
        or step == <int>TraceStep.kTunnel
        or step == <int>TraceStep.kTunnelDone
        or step == <int>TraceStep.kSocks
        or step == <int>TraceStep.kSocksDone
    )


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
    cdef str prefix  # "http11." or, on an HTTP/2 stream, "http2." (httpcore's names)
    cdef str open_phase  # the phase whose "started" went out without an end, or None
    cdef list queue  # [(name, info)] waiting to be delivered
    cdef bint is_async
    cdef bint log  # also write each event to httpcore's DEBUG loggers
    # A socket guard decides (ConsumerGate::kConnects): each kConnect gate is passed
    # by opening the connection in Python (_connect_at_gate); or a patched getaddrinfo
    # (kResolves) by resolving there (_resolve_at_gate).
    cdef ConsumerGate gate
    cdef bint must_connect  # stopped at such a gate

    @staticmethod
    cdef _Tracer create(_TransportCore core, _Body stream):
        cdef _Tracer self = _Tracer.__new__(_Tracer)
        self.core = core
        self.stream = stream
        self.request = stream.request
        self.callback = stream.request.extensions.get("trace")
        cdef Transfer* t = stream.t.get()
        self.gate = t.spec.consumer_gate
        # Traced without a callback: only because a logger was enabled (start()).
        self.log = (self.callback is None and t.spec.trace) or _debug_logging(core.route.mode)
        self.queue = []
        self.is_async = isinstance(stream, _AsyncBody)
        self.prefix = "http11."
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
            if self.prefix != "http11.":
                name = self.prefix + name[7:]
            if name.endswith(".started") and self.prefix == "http2.":
                # httpcore's HTTP/2 events name the stream.
                t = self.stream.t.get()
                info = {"stream_id": t.stream_id}
                if self.http11 != H_CLOSED - 1:
                    info = {"request": self.request, "stream_id": t.stream_id}
            elif name.endswith(".started"):
                info = {} if self.http11 == H_CLOSED - 1 else {"request": self.request}
            elif self.http11 == H_HEAD_COMPLETE:
                t = self.stream.t.get()
                headers = _head_fields(t.head.headers)
                if t.http2:
                    info = {"return_value": (t.head.status, headers)}
                else:
                    version = _h1_version(t.head.http_major, t.head.http_minor)
                    info = {
                        "return_value": (version, t.head.status, <bytes>t.head.reason, headers)
                    }
            else:
                info = {"return_value": None}
            self.http11 += 1
            self.add(name, info)

    cdef object socket_stream(self, object ssl_object):
        """The stream an event returns: the socket's addresses as it connected and
        the connection while it is open (none recorded: a stream answering None), and
        `ssl_object`."""
        cdef shared_ptr[ConnectionInfo] addresses
        cdef Transfer* t = self.stream.t.get()
        with nogil:
            addresses = self.stream.engine.eng.trace_addresses(t[0])
        if addresses.get() == NULL:
            if ssl_object is None:
                return _TRACE_STREAM
            return _trace_stream(addresses, self.stream.engine, False, ssl_object)
        # IPv6 as httpcore's streams give it: a 4-tuple in sync code and trio, a pair
        # under asyncio (anyio).
        pair = self.is_async and _current_library() != "trio"
        return _trace_stream(addresses, self.stream.engine, pair, ssl_object)

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
            self.connect_started(timeout)
            self.must_connect = self.gate != ConsumerGate.kNone
            return True
        if step == <int>TraceStep.kConnected:
            kind = "connect_unix_socket" if core.uds is not None else "connect_tcp"
            prefix = "socks" if route.mode == "socks" else "connection"
            self.add(f"{prefix}.{kind}.complete", {"return_value": self.socket_stream(None)})
        elif _is_proxy_step(step):
            return self.proxy_step(step, timeout)
        elif step == <int>TraceStep.kTls:
            verify = core.tls_args[0]
            self.add(
                f"{via}.start_tls.started",
                {
                    "ssl_context": verify if _is_ssl_context(verify) else None,
                    "server_hostname": self.stream.t.get().spec.tls_host.decode("ascii"),
                    "timeout": timeout,
                },
            )
            return True
        elif step == <int>TraceStep.kTlsDone:
            stream = self.socket_stream(_tls_info(self.stream.engine.eng, self.stream.t.get()))
            self.add(f"{via}.start_tls.complete", {"return_value": stream})
        elif step == <int>TraceStep.kH2Init:
            self.add("http2.send_connection_init.started", {"request": request})
            self.add("http2.send_connection_init.complete", {"return_value": None})
        elif step == <int>TraceStep.kSend:
            self.prefix = "http2." if self.stream.t.get().http2 else "http11."
            self.http11 = 0
            self.http11_to(H_HEADERS_STARTED)
            return True
        elif step == <int>TraceStep.kSent:
            self.http11_to(H_RECEIVE_STARTED)
            return True
        return False

    cdef int connect_started(self, object timeout) except -1:
        """The connect step's event: a Unix socket's, a SOCKS proxy's, or a TCP connect
        (to the origin or the HTTP proxy)."""
        core = self.core
        route = core.route
        url = self.request.url
        if core.uds is not None:
            self.add(
                "connection.connect_unix_socket.started",
                {
                    "path": os.fsdecode(core.uds),
                    "timeout": timeout,
                    "socket_options": core.socket_options_arg,
                },
            )
            return 0
        if route.mode == "socks":
            self.add(
                "socks.connect_tcp.started",
                {
                    "host": route.proxy_host.decode("ascii"),
                    "port": route.proxy_port,
                    "timeout": timeout,
                },
            )
            return 0
        if route.mode == "direct":
            host = url.raw_host.decode("ascii")
            port = url.port or (443 if url.scheme == "https" else 80)
        else:
            host = route.proxy_host.decode("ascii")
            port = route.proxy_port
        local = (
            core.local_address.decode("utf-8", "surrogateescape")
            if core.local_address is not None else None
        )
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
        return 0

    cdef bint proxy_step(self, int step, object timeout) except -1:
        """The events of a step on the way through a proxy (its TLS, an HTTP proxy's
        tunnel, the SOCKS handshake); True when it is a gate."""
        route = self.core.route
        request = self.request
        url = request.url
        if step == <int>TraceStep.kProxyTls:
            self.add(
                "connection.start_tls.started",
                {
                    "ssl_context": route.proxy_ssl_context,
                    "server_hostname": route.proxy_host.decode("ascii"),
                    "timeout": timeout,
                },
            )
            return True
        if step == <int>TraceStep.kProxyTlsDone:
            stream = self.socket_stream(_tls_info(self.stream.engine.eng, self.stream.t.get()))
            self.add("connection.start_tls.complete", {"return_value": stream})
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
                    "stream": self.socket_stream(None),
                    "host": url.raw_host.decode("ascii"),
                    "port": url.port or (443 if url.scheme == "https" else 80),
                    "auth": route.socks_auth,
                },
            )
            return True
        elif step == <int>TraceStep.kSocksDone:
            self.add(
                "socks.setup_socks5_connection.complete",
                {"return_value": self.socket_stream(None)},
            )
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
        if phase.startswith(self.prefix):
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
        if phase.startswith(self.prefix):
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
        if gate and tracer.must_connect:
            tracer.must_connect = False
            if t.failed():  # (closed meanwhile: no connection to open)
                pass
            elif tracer.gate == ConsumerGate.kResolves:
                _resolve_at_gate(tracer.stream.engine.eng, t)
            else:
                _connect_at_gate(tracer.core, tracer.stream.engine.eng, t)
            continue
        if gate:
            tracer.resume()
            continue
        if t.failed() or Engine.satisfied(t[0], what):
            return 0
        _wait(tracer.stream.engine, t, WaitFor.kTraceStep)


async def _atrace_until(_Tracer tracer, WaitFor what):
    cdef Transfer* t = tracer.stream.t.get()
    cdef bint gate
    cdef _AsyncBody stream = <_AsyncBody>tracer.stream
    while True:
        gate = False
        tracer.take(&gate)
        await tracer.aflush()
        if gate and tracer.must_connect:
            tracer.must_connect = False
            if t.failed():  # (closed meanwhile: no connection to open)
                pass
            elif tracer.gate == ConsumerGate.kResolves:
                await _aresolve_at_gate(stream)
                stream.driver.schedule()
            else:
                await _aconnect_at_gate(tracer.core, stream)
                stream.driver.schedule()
            continue
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
            try:
                tracer._flush()  # a callback's or a signal handler's exception here
            finally:
                self._body.close()  # still lets the connection go (httpcore keeps it)
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
            try:
                await tracer._aflush()  # as close(): the connection goes whatever it raises
            finally:
                await self._body.aclose()
            tracer.closed()
            await tracer._aflush()
        else:
            await self._body.aclose()
