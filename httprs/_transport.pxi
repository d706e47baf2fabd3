# The state behind a transport (engine, TLS context, route) and what the sync
# and async transports share: construction, socket options, pool statistics
# (included into _core.pyx).

# The last head any transport made (a _HeadCache, or None): read by a transport that
# has none yet. Immutable once made, so every transport may read it (under the GIL).
# Only a public head (`_HeadCache.public`: no query, only allow-listed headers) goes
# here, so it outlives the transport that made it (a new Client per request reuses the
# last one's), with whatever its path holds (a token in a webhook URL's path, say):
# docs/compatibility.md, "What the module keeps after a client closes".
cdef object _last_head = None
# The header names a head shared between transports may carry (lower-case): what a
# client sends by default, Host and a body's framing and type. A head with any other
# header (Authorization, Cookie, an API key of some name) or a query in its target
# stays its transport's, and goes when that transport is closed.
cdef frozenset _PUBLIC_HEADER_NAMES = frozenset({
    b"host", b"accept", b"accept-encoding", b"accept-language", b"connection",
    b"user-agent", b"content-length", b"content-type", b"transfer-encoding",
})


cdef class _TransportCore:
    """The state behind one HTTPTransport: engine, TLS context, route."""

    cdef _Engine engine
    cdef _TlsContext tls
    cdef object tls_args
    cdef object ssl_class  # the class ssl.SSLContext named then: httpx's context's
    cdef _Route route
    cdef bint closed
    cdef shared_ptr[SocketOptions] socket_options
    cdef bytes uds  # Unix domain socket path, or None
    cdef bytes local_address  # source address to bind, or None
    cdef int retries  # connect retries
    cdef object socket_options_arg  # socket_options= as given, for trace events
    cdef HttpVersions versions  # http1= / http2=
    # The last HTTP/1.1 head serialised, and what it was made from (_HeadCache).
    cdef _HeadCache head_cache
    # (scheme, host, port, pool key prefix) of the last request: the key made once.
    cdef tuple last_origin
    # A stock URL's parts as _start reads them, while it is unchanged (_url_memo_of).
    cdef tuple url_memo
    cdef object url_seen  # the last request's stock URL, until its next request or close

    cdef shared_ptr[TlsContext] tls_context(self) except *:
        """The context, built now if it was left for the first HTTPS request (the
        default one)."""
        if self.tls is None:
            self.build_tls(True)
        return self.tls.current()

    cdef int build_tls(self, bint at_request) except -1:
        """Build the context: at construction its errors are the ssl module's, as httpx's
        create_ssl_context raises them in Client(); at a request, its ConnectError."""
        if self.tls is None:
            verify, cert, trust_env = self.tls_args
            self.tls = (_request_tls if at_request else _build_tls)(verify, cert, trust_env)
            self.tls.made_class = self.ssl_class  # httpx builds its context in Client()
            # ALPN of a context run through Python (the core's own sessions offer
            # the same): httpcore's list, h2 alone when HTTP/1.1 is not allowed.
            if self.versions == HttpVersions.kHttp1Or2:
                self.tls.alpn = ["h2", "http/1.1"]
            elif self.versions == HttpVersions.kHttp2:
                self.tls.alpn = ["h2"]
            self.tls.foreign.reset()  # an adopted context's Python path: offer the list
        return 0

    cdef _Body start_async(self, object request, _Engine engine):
        """Async: submitted on `engine`, its driver's (never a newer one of a transport
        closed and reopened meanwhile, which that driver does not run)."""
        cdef _Body stream = _AsyncBody.__new__(_AsyncBody)
        stream.engine = engine
        return self._start(request, stream, True)

    cdef _Body start(self, object request):
        return self._start(request, _Body.__new__(_Body), False)

    cdef _Body _start(self, object request, _Body stream, bint is_async):
        global _main_sync_waiting
        cdef RequestSpec spec
        cdef HeaderList headers
        cdef string method
        cdef string target
        cdef BodyKind kind
        cdef size_t fixed_len
        cdef bint may_http2
        cdef bint wait_head
        cdef bint https
        cdef tuple memo
        url = request.url
        # An httprs URL's parsed parts are read as they are (its properties derive from
        # them: scheme, raw_host = host.encode("ascii"), port); anything else is asked.
        # The same unchanged URL as before (a client's shared one): from the memo.
        exact_url = type(url) is URL
        memo = _url_memo_of(self, url) if exact_url else None
        if memo is not None:
            scheme = memo[3]
        else:
            scheme = url._scheme if exact_url else url.scheme
        # http and https first: one comparison for the common case.
        if scheme == "http":
            https = False
        elif scheme == "https":
            https = True
        elif scheme == "ws" or scheme == "wss":
            # WebSocket URLs, as httpcore: the handshake is HTTP/1.1 (wss over TLS).
            https = scheme == "wss"
            scheme = "https" if https else "http"
        elif not scheme:
            raise exc.UnsupportedProtocol(
                "Request URL is missing an 'http://' or 'https://' protocol.",
                request=request,
            )
        else:
            raise exc.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{scheme}://'.", request=request
            )
        if memo is not None:
            host = memo[4]
            port = memo[5]
        else:
            host = (<str>url._host).encode("ascii") if exact_url else url.raw_host
            if not host:
                raise exc.UnsupportedProtocol("Request URL is missing a host.", request=request)
            port = url._port if exact_url else url.port
            if exact_url and _dict_versions:  # (3.12+: no memo, the URL left as it is)
                _remember_url(self, url)
        if port is None:
            port = 443 if https else 80
        # A client's request has its timeout and nothing else: no target, trace or
        # sni_hostname to ask. Its extensions dict is read only once made (else its
        # timeout snapshot is).
        timeout = _lazy_request_timeout(request, _STOCK_REQUEST, &_request_tag, _REQUEST_STOCK)
        if timeout is not None:
            extensions = None
            only_timeout = True
        else:
            extensions = request.extensions
            timeout = _mapping_get(extensions, "timeout")
            only_timeout = (
                timeout is not None and type(extensions) is dict and len(<dict>extensions) == 1
            )
        if timeout:
            _set_timeouts(&spec, timeout, is_async)
        # httpcore's "target" extension replaces the path and query on the wire; it is
        # validated with the head (an illegal one is LocalProtocolError, as with h11).
        custom = None if only_timeout else _mapping_get(extensions, "target")
        self._set_target(target, url, memo, exact_url, custom, https)
        method_bytes = _method_bytes(request.method)
        # The body: bytes known up front (fixed) or an iterable (streamed).
        body = request.stream
        fixed = _fixed_body(body)
        kind = BodyKind.kFixed
        fixed_len = 0
        if fixed is not None:
            fixed_len = len(fixed)
        elif body is not None:
            kind = BodyKind.kStreamed
        # A forwarded request's head carries the proxy's headers (Proxy-Authorization):
        # never cached, so a tunnelled request with an equal custom target cannot send
        # them to the origin, nor a forwarded one go without them.
        forwarded = not https and self.route.mode == "proxy"
        self._plan_head(
            spec, request, method_bytes, target, kind, fixed_len, forwarded, method, headers
        )
        # HTTP/2 possible (not for a forwarding proxy's absolute-form requests).
        # An Upgrade or a CONNECT stays HTTP/1.1 (the engine never puts it on
        # an HTTP/2 connection) unless HTTP/1.1 is not allowed: then it goes as
        # HTTP/2 (an Upgrade's Upgrade and Connection headers dropped), as httpx
        # does.
        may_http2 = (
            self.versions != HttpVersions.kHttp1
            and target.size() > 0
            and target[0] == 47
            and (
                not (spec.plan.upgrade or spec.plan.tunnel)
                or self.versions == HttpVersions.kHttp2
            )
        )
        if self.versions != HttpVersions.kHttp1 and not may_http2:
            write_planned_head(spec.head, method, target, headers)
        spec.head_request = method_bytes == b"HEAD"
        self._set_connection(spec, request, scheme, host, port, https, only_timeout, is_async)
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
        if stream.engine is None:  # (start_async has set its driver's)
            stream.engine = self.engine
        stream.request = request
        # The trace machinery also feeds httpcore's DEBUG log lines (_log_event).
        spec.trace = (
            (not only_timeout and _mapping_get(extensions, "trace") is not None)
            or _debug_logging(self.route.mode)
        )
        if may_http2:
            _set_http2_request(
                spec, self.versions, method_bytes, target, headers, host, port, https
            )
        # Sync, when nothing is to be done between the submission and the head (no
        # streamed body to push, no trace step to report): the first slice of the wait
        # for the head in the same GIL release (a thread waiting for the GIL takes it
        # at each release: one hand-off per request, not two). _send_sync waits on.
        # (Under gevent, waits yield to its hub instead: _green.pxi.)
        wait_head = not (
            is_async or spec.body_streamed or spec.trace
            or spec.consumer_gate != ConsumerGate.kNone or stream.engine.green
        )
        # The stream's engine, never `self.engine` again: a closed transport used again
        # gets a new engine (_reopen), perhaps in another thread meanwhile.
        if wait_head:
            _sync_wait_begins()  # (a kept exception: raised by _send_sync's _wait)
        with nogil:
            stream.t = stream.engine.eng.submit(move(spec))
            if wait_head:
                stream.engine.eng.wait(stream.t.get()[0], WaitFor.kHead, SLICE_MS)
        _main_sync_waiting = False
        if _parked:
            _free_parked()  # submit released what finalisers let go of
        return stream

    cdef int _set_target(
        self, string& target, object url, tuple memo, bint exact_url, object custom, bint https
    ) except -1:
        """The request target on the wire: the "target" extension's, the URL's path and
        query, or (a forwarding proxy's) the absolute URL."""
        if https or self.route.mode != "proxy":
            if custom is not None:
                _set_string(&target, bytes(custom))
            else:
                # An httprs URL's made raw_path, as its parts (else the property).
                if memo is not None:
                    raw_target = memo[6]
                else:
                    raw_target = url._raw_path if exact_url else None
                _set_string(&target, url.raw_path if raw_target is None else raw_target)
        else:
            _set_string(&target, _absolute_target(url, custom))
        return 0

    cdef int _plan_head(
        self,
        RequestSpec& spec,
        object request,
        bytes method_bytes,
        const string& target,
        BodyKind kind,
        size_t fixed_len,
        bint forwarded,
        string& method,
        HeaderList& headers,
    ) except -1:
        """Decide the framing, with the head: serialize_request (spec.head, spec.plan);
        a request that may go as HTTP/2 is only checked (plan_request, `method` and
        `headers` kept for it): its HTTP/1.1 head is written if it goes as HTTP/1.1
        after all. The same head as the last request's comes from the head cache."""
        global _last_head
        cdef Error err
        cdef string head
        cdef _HeadCache cache = None
        request_headers = request.headers
        # Headers' own list, read without the copy `.raw` makes (nothing runs meanwhile).
        raw_headers = (
            request_headers._raw if type(request_headers) is Headers else request_headers.raw
        )
        if not forwarded:
            cache = self.head_cache
            if cache is None and self.versions == HttpVersions.kHttp1:
                # A transport's first request looks at the last head any HTTP/1.1-only
                # transport made (a new Client per request sends the same head each
                # time); a transport that may speak HTTP/2 keeps its own only.
                cache = <_HeadCache>_last_head
        if cache is not None and cache.matches(method_bytes, target, raw_headers, kind, fixed_len):
            # The same head as the last request's (a client's defaults, the same URL):
            # its bytes and plan again, checked when they were made; a request that may
            # go as HTTP/2, its plan and converted headers (no head bytes yet).
            spec.plan = cache.plan
            self.head_cache = cache
            if self.versions == HttpVersions.kHttp1:
                spec.head = cache.head
            else:
                method = method_bytes
                headers = cache.headers
            return 0
        method = method_bytes
        headers.reserve(len(raw_headers))
        if forwarded:
            # httpcore's order: the proxy's headers (those the request does not set
            # itself) before the request's; Host still goes first on the wire.
            own = {name.lower() for name, _ in raw_headers}
            for name, value in self.route.proxy_headers:
                if name.lower() not in own:
                    headers.push_back(pair[string, string](name, value))
        for name, value in raw_headers:
            headers.push_back(pair[string, string](name, value))
        if self.versions == HttpVersions.kHttp1:
            if not serialize_request(
                head, method, target, headers, kind, fixed_len, &spec.plan, err
            ):
                raise _error_to_exception(err, request)
            if not forwarded:
                cache = _HeadCache.make(
                    method_bytes, target, raw_headers, kind, fixed_len, head, spec.plan
                )
                self.head_cache = cache
                if cache is not None and cache.public():
                    _last_head = cache
            spec.head = move(head)
        elif not plan_request(method, target, headers, kind, fixed_len, &spec.plan, err):
            raise _error_to_exception(err, request)
        elif not forwarded:
            made = _HeadCache.make(
                method_bytes, target, raw_headers, kind, fixed_len, head, spec.plan
            )
            if made is not None:
                made.headers = headers
            self.head_cache = made
        return 0

    cdef int _set_connection(
        self,
        RequestSpec& spec,
        object request,
        object scheme,
        object host,
        object port,
        bint https,
        bint only_timeout,
        bint is_async,
    ) except -1:
        """What the connection needs: socket options and source, TLS, the pool key, where
        to connect (directly, through a SOCKS or HTTP proxy) and how to resolve."""
        route = self.route
        spec.socket_options = self.socket_options
        if route.proxy_tls:
            if route.proxy_tls_ctx is None:
                route.proxy_tls_ctx = _request_tls(
                    route.proxy_ssl_context
                    if route.proxy_ssl_context is not None
                    else _httpcore_default_context(),
                    None,
                    False,
                )
            spec.proxy_tls = route.proxy_tls_ctx.current()
            spec.proxy_tls_host = route.proxy_host
        if self.uds is not None:
            spec.uds = True
            spec.uds_path = self.uds
        if self.local_address is not None:
            if self.uds is None and b"\0" in self.local_address:
                # (the core's C string would end there; a Unix socket binds nothing)
                raise TypeError("host name must not contain null character")
            spec.local_address = self.local_address
        spec.connect_retries = self.retries
        origin_key = self._origin_key(scheme, host, port)
        if https:
            spec.tls = self.tls_context()
            if not is_async and self.tls.py_ctx is None:
                _refuse_socket_only_hooks(self.tls.made_class)
            # (No sni_hostname extension where the timeout is the only one.)
            tls_host = host if only_timeout else _sni_hostname(request, host)
            _set_string(&spec.tls_host, tls_host)
            if tls_host != host:
                origin_key += b"|sni:" + tls_host
        if route.mode == "direct":
            _set_string(&spec.connect_host, host)
            spec.connect_port = port
            key = origin_key
            if self.uds is not None:
                key += b"|uds:" + self.uds
            _set_string(&spec.pool_key, key)
        else:
            _set_proxy_route(spec, route, host, port, https, origin_key)
        if self.uds is None:
            if _connect_guarded(is_async):
                # Opened in Python, which resolves too (getaddrinfo asked once).
                spec.consumer_gate = ConsumerGate.kConnects
            else:
                if _patched_getaddrinfo() is not None:
                    _resolve_in_python(&spec, is_async)
        return 0

    cdef bytes _origin_key(self, object scheme, object host, object port):
        """The pool key's prefix: it names everything that identifies the peer; TLS
        sessions are resumed under it too (a resumption skips certificate checks), so
        _set_connection adds the proxy and the name the certificate was checked for.
        Made once for a run of requests to one origin."""
        last = self.last_origin
        if (
            last is not None
            and last[2] == port
            and <bytes>last[1] == host
            and <str>last[0] == scheme
        ):
            return last[3]
        origin_key = scheme.encode() + b"://" + host + b":" + str(port).encode()
        self.last_origin = (scheme, host, port, origin_key)
        return origin_key


cdef object _fixed_body(object body):
    """A request body known up front, as bytes (None: streamed, or none)."""
    fixed = getattr(body, "_httprs_body", None)
    if fixed is None and isinstance(body, bytes):
        fixed = body
    if fixed is not None and not isinstance(fixed, bytes):
        fixed = bytes(fixed)
    return fixed


cdef int _set_proxy_route(
    RequestSpec& spec, _Route route, object host, object port, bint https, bytes origin_key
) except -1:
    """Through a proxy: SOCKS, a tunnel (CONNECT) for HTTPS, else forwarding."""
    spec.connect_host = route.proxy_host
    spec.connect_port = route.proxy_port
    if route.mode == "socks":
        spec.socks_host = host
        spec.socks_port = port
        if route.socks_auth is not None:
            spec.socks_username = route.socks_auth[0]
            spec.socks_password = route.socks_auth[1]
        spec.pool_key = (
            b"socks://" + route.proxy_host + b":" + str(route.proxy_port).encode()
            + b"|" + origin_key
        )
    elif https:
        authority = _ipv6_authority_host(host) if _has_colon(host) else host
        authority += b":" + str(port).encode()
        spec.tunnel_authority = authority
        for name, value in route.proxy_headers:
            spec.tunnel_headers.push_back(pair[string, string](name, value))
        spec.pool_key = b"tunnel://" + origin_key + b"|via:" + route.key
    else:
        spec.pool_key = b"proxy://" + route.key
    return 0


cdef int _set_http2_request(
    RequestSpec& spec,
    HttpVersions versions,
    bytes method_bytes,
    const string& target,
    HeaderList& headers,
    object host,
    object port,
    bint https,
) except -1:
    """A request that may go as HTTP/2: its parts, not head bytes (`spec.head` stays
    empty: see RequestSpec::head)."""
    spec.versions = versions
    spec.method = method_bytes
    spec.target = target
    authority = _ipv6_authority_host(host) if _has_colon(host) else host
    if port != (443 if https else 80):
        authority += b":" + str(port).encode()
    spec.authority = authority
    spec.headers = move(headers)  # plan_request is done with them
    return 0


cdef inline bint _next_key_is(object d, Py_ssize_t* pos, str name, PyObject** value):
    """Whether the dict's next entry (PyDict_Next) has `name` itself as its key."""
    cdef PyObject* key
    return PyDict_Next(d, pos, &key, value) and <object>key is name


# _set_timeouts' memo: the four timeouts made of the last exact dict read (for the
# flavour `_timeouts_async`), while that dict is unchanged: its PEP 509 version (globally
# unique, renewed by any change to it) is the one recorded. A client's requests share
# one timeout snapshot, so each reads the same dict. Only for values that convert
# without Python code (None, float, int); where the version is unreadable (3.12+), none.
cdef PyObject* _timeouts_of = NULL  # compared, never dereferenced
cdef unsigned long long _timeouts_version = 0
cdef bint _timeouts_async = False
cdef double _timeouts[4]


cdef inline bint _plain_timeout(object value) noexcept:
    return value is None or type(value) is float or type(value) is int


cdef int _set_timeouts(RequestSpec* spec, object timeout, bint is_async) except -1:
    """The spec's four timeouts from a request's `timeout` extension. A client's is a
    dict of exactly those four keys in that order (a Timeout's as_dict()): read in one
    pass over its entries (or from the memo above); any other mapping is asked for each
    key."""
    global _timeouts_of, _timeouts_version, _timeouts_async
    cdef Py_ssize_t pos = 0
    cdef PyObject* v0
    cdef PyObject* v1
    cdef PyObject* v2
    cdef PyObject* v3
    cdef unsigned long long version = _dict_version(timeout)  # (0: not an exact dict)
    if (
        version != 0
        and <PyObject*>timeout == _timeouts_of
        and version == _timeouts_version
        and is_async == _timeouts_async
    ):
        spec.connect_timeout = _timeouts[0]
        spec.read_timeout = _timeouts[1]
        spec.write_timeout = _timeouts[2]
        spec.pool_timeout = _timeouts[3]
        return 0
    if (
        type(timeout) is dict
        and len(<dict>timeout) == 4
        and _next_key_is(timeout, &pos, "connect", &v0)
        and _next_key_is(timeout, &pos, "read", &v1)
        and _next_key_is(timeout, &pos, "write", &v2)
        and _next_key_is(timeout, &pos, "pool", &v3)
    ):
        # Each held before any is converted (a conversion may run Python code).
        connect, read, write, pool = <object>v0, <object>v1, <object>v2, <object>v3
    else:
        connect = _mapping_get(timeout, "connect")
        read = _mapping_get(timeout, "read")
        write = _mapping_get(timeout, "write")
        pool = _mapping_get(timeout, "pool")
    spec.connect_timeout = _timeout_value(connect, is_async)
    spec.read_timeout = _timeout_value(read, is_async)
    spec.write_timeout = _timeout_value(write, is_async)
    spec.pool_timeout = _pool_timeout_value(pool, is_async)
    if (
        version != 0
        and _plain_timeout(connect)
        and _plain_timeout(read)
        and _plain_timeout(write)
        and _plain_timeout(pool)
        and _dict_version(timeout) == version  # (read as it was)
    ):
        # Published whole: nothing between here and the last store runs Python code.
        _timeouts[0] = spec.connect_timeout
        _timeouts[1] = spec.read_timeout
        _timeouts[2] = spec.write_timeout
        _timeouts[3] = spec.pool_timeout
        _timeouts_of = <PyObject*>timeout
        _timeouts_version = version
        _timeouts_async = is_async
    return 0


@cython.final
cdef class _HeadCache:
    """A serialised HTTP/1.1 head with what it was made from: method, target, the
    request's raw header pairs (a snapshot; kept only when each is a tuple of two exact
    bytes objects, so nothing in it can change), body kind and fixed length. The same
    inputs give the same bytes and plan, so a request that matches skips converting and
    checking its headers (serialize_request) again. One per transport (its last head), and
    the last one made by any HTTP/1.1-only transport (`_last_head`), for such a transport's
    first request. A transport that may speak HTTP/2 keeps no head bytes (each request's
    head is made for the protocol its connection speaks) but the plan and the converted
    headers (plan_request's checks), which a matching request of its own reuses the same
    way."""

    cdef bytes method
    cdef string target
    cdef list raw
    cdef BodyKind kind
    cdef size_t fixed_len
    cdef string head
    cdef RequestPlan plan
    cdef HeaderList headers  # a transport that may speak HTTP/2: the converted headers

    @staticmethod
    cdef _HeadCache make(bytes method, const string& target, object raw, BodyKind kind,
                         size_t fixed_len, const string& head, const RequestPlan& plan):
        if type(raw) is not list:
            return None
        for item in <list>raw:
            if not (
                type(item) is tuple
                and len(<tuple>item) == 2
                and type((<tuple>item)[0]) is bytes
                and type((<tuple>item)[1]) is bytes
            ):
                return None
        cdef _HeadCache cache = _HeadCache.__new__(_HeadCache)
        cache.method = method
        cache.target = target
        cache.raw = list(<list>raw)
        cache.kind = kind
        cache.fixed_len = fixed_len
        cache.head = head
        cache.plan = plan
        return cache

    cdef bint public(self) except -1:
        """Whether this head may be shared beyond its transport (`_last_head`): no query in
        its target, and only headers named in _PUBLIC_HEADER_NAMES."""
        if memchr(self.target.data(), 63, self.target.size()) != NULL:  # "?"
            return False
        for item in self.raw:
            if (<bytes>(<tuple>item)[0]).lower() not in _PUBLIC_HEADER_NAMES:
                return False
        return True

    cdef bint matches(self, bytes method, const string& target, object raw, BodyKind kind,
                      size_t fixed_len) except -1:
        if kind != self.kind or fixed_len != self.fixed_len or type(raw) is not list:
            return False
        if method != self.method or target != self.target:
            return False
        cdef list mine = self.raw
        cdef list theirs = <list>raw
        cdef Py_ssize_t i
        if len(theirs) != len(mine):
            return False
        for i in range(len(mine)):
            a = <tuple>mine[i]
            b = theirs[i]
            if b is a:
                continue
            if not (type(b) is tuple and len(<tuple>b) == 2):
                return False
            for j in range(2):
                x = (<tuple>b)[j]
                if type(x) is not bytes or <bytes>x != <bytes>(<tuple>a)[j]:
                    return False
        return True


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


cdef _Engine _new_engine(object limits):
    """An engine (a uv loop and its connection pool) for the transport's `limits=`."""
    if limits is None:
        limits = DEFAULT_LIMITS
    max_conn = limits.max_connections
    expiry = limits.keepalive_expiry
    # As httpcore: at most min(max_connections, max_keepalive_connections) stay idle.
    cdef int keep = _pool_bound(limits.max_keepalive_connections, -1, False)
    cdef int keep_cap = _pool_bound(max_conn, -1, False)
    if keep_cap >= 0 and (keep < 0 or keep_cap < keep):
        keep = keep_cap
    return _Engine(
        _pool_bound(max_conn, 0, True),
        keep,
        # None never expires (as infinity); zero or less expires at once, as in httpcore.
        float("inf") if expiry is None else expiry,
    )


cdef inline int _int_bound(object value) except? -2:
    """An int as a count the core takes: at most INT_MAX (past it: -1, no bound), 0 for
    zero or less."""
    cdef int overflow = 0
    cdef long long n = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow > 0 or n > INT_MAX:
        return -1
    return 0 if overflow < 0 or n <= 0 else <int>n


cdef int _pool_bound(object value, int if_nan, bint admits) except? -2:
    """A Limits count as the engine takes it (-1: no bound), as httpcore compares its
    counts with the value: None or one past any int (inf, 10**100) bounds nothing, zero
    or less allows none. A fraction: a bound that `admits` (connections: opened while
    fewer) allows the next whole count, one that closes what is past it (idle ones:
    closed while more) the whole count below. NaN fails every comparison: `if_nan`."""
    if value is None:
        return -1
    if type(value) is int:  # (the usual case, without Python comparisons)
        return _int_bound(value)
    if value > INT_MAX:
        return -1
    if value != value:
        return if_nan
    if value <= 0:
        return 0
    return <int>(math.ceil(value) if admits else math.floor(value))


cdef int _retry_count(object retries) except -1:
    """retries= as the core counts it. httpcore counts down after each failed connect
    and stops once at zero or below: a negative count retries nothing, a fraction the
    next whole count, inf for ever (INT_MAX). None and NaN retry nothing here (httpcore
    raises TypeError on None's comparison, and never stops on NaN's)."""
    if retries is None:
        return 0
    if type(retries) is not int:
        if isinstance(retries, (str, bytes, bytearray)):
            raise TypeError(f"retries must be a number, not {type(retries).__name__}")
        try:
            retries = operator.index(retries)
        except TypeError:
            real = float(retries)  # (a float, Decimal, numpy's; else TypeError)
            if real != real or real <= 0:
                return 0
            return INT_MAX if real > INT_MAX else <int>math.ceil(real)
    cdef int count = _int_bound(retries)  # (-1: past INT_MAX)
    return INT_MAX if count < 0 else count


cdef _TransportCore _new_core(object verify, object cert, bint trust_env, object limits,
                              object proxy, bint http1, bint http2, object uds,
                              object local_address, object retries, object socket_options):
    if isinstance(verify, str):
        _check_verify_path_without_cert(verify, cert)
        warn_inside(
            "`verify=<str>` is deprecated. Use `verify=ssl.create_default_context(cafile=...)` "
            "or `verify=ssl.create_default_context(capath=...)` instead.",
            DeprecationWarning,
            "_config",
        )
    if cert:
        warn_inside(
            "`cert=...` is deprecated. Use `verify=<ssl_context>` instead,"
            "with `.load_cert_chain()` to configure the certificate chain.",
            DeprecationWarning,
            "_config",
        )
    cdef _TransportCore core = _TransportCore()
    # As httpcore: HTTP/2 when asked for (ALPN over TLS; prior knowledge in clear text
    # only without HTTP/1.1); http1=False alone still speaks HTTP/1.1.
    core.versions = (
        HttpVersions.kHttp1 if not http2 else
        HttpVersions.kHttp1Or2 if http1 else HttpVersions.kHttp2
    )
    hooked = _context_of_a_hooked_class(verify, cert, trust_env)
    if hooked is not None:
        verify, cert = hooked, None
    core.engine = _new_engine(limits)
    core.tls_args = (verify, cert, trust_env)
    core.ssl_class = ssl.SSLContext
    core.route = _make_route(proxy)
    if socket_options is not None:
        core.socket_options = _socket_options(socket_options)
    core.socket_options_arg = socket_options
    if uds is not None:
        core.uds = os.fsencode(uds)
    if local_address is not None:
        if isinstance(local_address, (bytes, bytearray)):  # (as socket.bind takes them)
            core.local_address = bytes(local_address)
        elif isinstance(local_address, str):
            # (not an address: the core's bind fails, a ConnectError at the request)
            core.local_address = local_address.encode("utf-8", "surrogateescape")
        else:
            raise TypeError(
                f"str, bytes or bytearray expected, not {type(local_address).__name__}"
            )
    core.retries = _retry_count(retries)
    if (
        not isinstance(verify, bool)
        or cert is not None
        or (verify and trust_env and _ca_environment())
    ):
        # Build non-default contexts eagerly so bad paths fail at construction, as in
        # httpx (whose create_ssl_context reads SSL_CERT_FILE / SSL_CERT_DIR there too);
        # the default one waits for the first HTTPS request.
        try:
            core.build_tls(False)
        except exc.ConnectError:
            # The interpreter's TLS defaults could not be read (ssl.create_default_context
            # or ssl.SSLContext replaced by something that gives no real context, as mocket
            # does while it is active): the client is made, and its first HTTPS request
            # raises this, nothing cached (docs/compatibility.md, TLS).
            pass
    return core


cdef bint _ca_environment():
    """Whether SSL_CERT_FILE or SSL_CERT_DIR names the CA certificates."""
    return bool(
        _cert_variable(b"SSL_CERT_FILE", "SSL_CERT_FILE")
        or _cert_variable(b"SSL_CERT_DIR", "SSL_CERT_DIR")
    )


from httprs._poolview import PoolAttribute, pool_state, record_pool


class _CoreTransport:
    """What the sync and async transports share: construction (httpx's signature) and
    pool statistics. `_core` holds the engine, TLS context and route."""

    def __init__(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: CertTypes | None = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: Limits = DEFAULT_LIMITS,
        proxy: ProxyTypes | None = None,
        uds: str | None = None,
        local_address: str | None = None,
        retries: int = 0,
        socket_options: typing.Iterable[SOCKET_OPTION] | None = None,
    ) -> None:
        self._core = _new_core(
            verify, cert, trust_env, limits, proxy, http1, http2, uds, local_address, retries,
            socket_options,
        )
        # What `_pool` (httpx's httpcore pool, see httprs/_poolview.py) describes.
        self._settings = {
            "limits": limits, "proxy": proxy, "http1": http1, "http2": http2,
            "retries": retries, "uds": uds, "local_address": local_address,
            "socket_options": socket_options, "verify": verify, "cert": cert,
            "trust_env": trust_env,
        }
        self._init_driving()

    # httpx's transports keep their httpcore pool here; code reads it (pytest-httpx).
    _pool = PoolAttribute()

    def _init_driving(self):
        pass

    # These hold the engine they ask (`engine`, not `core.engine` borrowed): a closed
    # transport used again gets a new engine (_reopen), and the old one may be freed by
    # another thread while this one is in it without the GIL.

    def _pool_stats(self):
        cdef _TransportCore core = self._core
        cdef _Engine engine = core.engine
        return {
            "connections": engine.connection_count,
            "idle": engine.idle_count,
        }

    def _driver_wakes(self):
        """Tests: how many times a consumer operation woke the loop's driver."""
        cdef _TransportCore core = self._core
        cdef _Engine engine = core.engine
        cdef unsigned long long n
        with nogil:
            n = engine.eng.driver_wakes()
        return n

    def _direct_waits(self):
        """Tests: how many rounds sync waiters spent polling their own sockets."""
        cdef _TransportCore core = self._core
        cdef _Engine engine = core.engine
        cdef unsigned long long n
        with nogil:
            n = engine.eng.direct_waits()
        return n

    def _direct_reads(self):
        """Tests: how many of those rounds read the socket without running the loop."""
        cdef _TransportCore core = self._core
        cdef _Engine engine = core.engine
        cdef unsigned long long n
        with nogil:
            n = engine.eng.direct_reads()
        return n

    def _marked_waits(self):
        """Tests: how many driver polls waited for an HTTP/2 body with its socket marked."""
        cdef _TransportCore core = self._core
        cdef _Engine engine = core.engine
        cdef unsigned long long n
        with nogil:
            n = engine.eng.marked_waits()
        return n

    def _hold_engine_mutex(self, int ms):
        """Tests: keep the engine mutex locked for `ms` (GIL released)."""
        cdef _TransportCore core = self._core
        cdef _Engine engine = core.engine
        engine._hold_mutex_for_testing(ms)


cdef inline bint _engine_wanted(_TransportCore core):
    """The transport needs a new engine before a request: it was closed, or its engine
    never got an event loop (out of descriptors when it was made: Engine::start_error;
    its requests fail with a ConnectError saying so, until one is made)."""
    return core.closed or core.engine.eng.start_error() != 0


cdef int _reopen(_TransportCore core, _Engine engine) except -1:
    """A closed transport used again, as httpx's are (httpcore's pool opens new
    connections after close(); a transport shared by clients outlives the first one's
    `with`): `engine`, made for it, becomes its engine. Making one releases the GIL, so
    another thread may have reopened the transport meanwhile: then `engine` is dropped.
    Requests hold their stream's engine, never read this one again.

    The old engine is let go only after both stores: freeing it deletes the C++ engine
    without the GIL, and a close() run then would see the new engine with `closed`
    still set, close it, and be undone by the store of `closed` after it (a transport
    open on a closed engine, failing every request)."""
    cdef _Engine old = core.engine
    if _engine_wanted(core):
        core.engine = engine
        core.closed = False
    old = None
    return 0


cdef int _forget_head(_TransportCore core) except -1:
    """On close: the transport's head goes, so a closed client's Authorization or Cookie
    values are not kept alive (`_last_head` holds only a head with none: it stays, for
    the next new client's first request); its last URL too (userinfo, query)."""
    core.head_cache = None
    core.url_memo = None
    core.url_seen = None
    return 0


# What _start reads of a stock URL: instance attributes the URL class leaves unset (or
# None, the defaults of the lazily made ones), else a memo would hide the class's own.
cdef tuple _URL_PARTS = ("_scheme", "_host", "_port", "_raw_path")


cdef bint _class_defines(type cls, str name) except -1:
    """Whether `cls` or a base defines `name` as anything but None, found as Python's
    attribute lookup finds it (the first class of the MRO whose own dict has it), its
    value taken as stored: a descriptor is not asked (its `__get__` on the class could
    answer None and still give instances a computed value)."""
    for klass in cls.__mro__:
        own = klass.__dict__
        if name in own:
            return own[name] is not None
    return False


cdef tuple _url_memo_of(_TransportCore core, object url):
    """The memo of a stock URL: (url, its attribute dict's PEP 509 version, the URL
    class's version tag, scheme, host as ASCII bytes, port, raw_path), what _start reads
    of it, while `url` is the memo's own object, its dict has the recorded version (any
    write to the URL renews it) and the class its recorded tag (any change to the class,
    such as an attribute _start reads set on it, renews it); else None."""
    memo = core.url_memo
    if (
        memo is None
        or (<tuple>memo)[0] is not url
        or _type_tag(URL) != <unsigned int>(<tuple>memo)[2]
        or _dict_version(PyObject_GenericGetDict(url, NULL))
        != <unsigned long long>(<tuple>memo)[1]
    ):
        return None
    return memo


cdef int _remember_url(_TransportCore core, object url) except -1:
    """Make the memo of a stock URL (_url_memo_of) at its second request in a row: a URL
    used once (a new one per request) is not given an attribute dict (which reading its
    version makes) for nothing. Only a URL whose parts are all made (a client's shared
    URL is: a lazily made raw_path would change its dict at once), and only while the
    class defines none of them itself (_URL_PARTS)."""
    if core.url_seen is not url:
        core.url_seen = url
        return 0
    cdef unsigned int tag = _type_tag(URL)
    # Read before the parts: a change after these reads renews them, so a memo is never
    # made for a state its reads did not see.
    cdef unsigned long long version = _dict_version(PyObject_GenericGetDict(url, NULL))
    if version == 0 or tag == 0:
        return 0  # (unreadable: no memo)
    for name in _URL_PARTS:
        if _class_defines(URL, name):
            return 0  # the class's own (a descriptor, a default): read each time
    scheme = url._scheme
    host = url._host
    port = url._port
    raw_path = url._raw_path
    if (
        type(scheme) is not str
        or type(host) is not str
        or not host
        or not (<str>host).isascii()
        or not (port is None or type(port) is int)
        or type(raw_path) is not bytes
    ):
        return 0  # (_start's own reads handle anything else, each time)
    memo = (url, version, tag, scheme, (<str>host).encode("ascii"), port, raw_path)
    if _dict_version(PyObject_GenericGetDict(url, NULL)) != version or _type_tag(URL) != tag:
        return 0
    core.url_memo = memo  # one store: another thread sees the old memo or this one
    return 0
