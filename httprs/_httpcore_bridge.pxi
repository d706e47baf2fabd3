# Mocking libraries (respx, pytest-httpx, respx2): a patch on httpcore's or
# httpcore2's pool is detected and the request routed through it (included
# into _core.pyx).

cdef object _socket_module = None
cdef object _socket_dict = None  # its __dict__ (a module's, fixed for its life)
cdef object _genuine_getaddrinfo = None
# The PEP 509 version of the socket module's dict when its getaddrinfo was last found
# genuine: while the dict keeps it, nothing in the module changed (0: not known).
cdef unsigned long long _socket_dict_genuine = 0


cdef object _patched_getaddrinfo():
    """socket.getaddrinfo when something has replaced it (mock.patch, DNS overrides), else None.

    httpx resolves through Python's socket module, so such a replacement steers
    its connections; httprs resolves in C++, and honours it by resolving through
    it instead (_resolve_in_python, _resolve_at_gate). Unpatched, this costs a compare of the module
    dict's version (PEP 509; where it cannot be read, a lookup and an identity test).
    """
    global _socket_module, _socket_dict, _genuine_getaddrinfo, _socket_dict_genuine
    if _socket_module is None:
        import socket

        _socket_dict = socket.__dict__
        _socket_module = socket
    # Read before the module is looked at: a change after this read renews it.
    cdef unsigned long long version = _dict_version(_socket_dict)
    if version != 0 and version == _socket_dict_genuine:
        return None
    current = _socket_module.getaddrinfo
    if current is _genuine_getaddrinfo:
        _socket_dict_genuine = version
        return None
    if getattr(current, "__globals__", None) is _socket_dict:  # (socket.py's own)
        _genuine_getaddrinfo = current
        _socket_dict_genuine = version
        return None
    return current


cdef object _literal_addresses(str host, int port):
    """getaddrinfo's answer for an IP literal without a zone id (IPv6 unbracketed), made
    without asking getaddrinfo; None for anything else."""
    if "%" in host:
        return None  # (asyncio resolves a zone through getaddrinfo)
    import ipaddress

    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.version == 4:
        return [(_socket_module.AF_INET, _socket_module.SOCK_STREAM, 0, "", (host, port))]
    return [(_socket_module.AF_INET6, _socket_module.SOCK_STREAM, 0, "", (host, port, 0, 0))]


cdef bint _asks_resolver(str host, int port, bint is_async) except -1:
    """Whether httpcore's connect asks socket.getaddrinfo about `host` (unbracketed): its
    sync backend (socket.create_connection) and its trio backend (trio.open_tcp_stream)
    always do; on asyncio, anyio.connect_tcp takes an IP literal as it is, so a patched
    or guarded getaddrinfo never sees one there."""
    if not is_async or _current_library() == "trio":
        return True
    return _literal_addresses(host, port) is None


cdef str _unbracketed(bytes raw):
    host = raw.decode("ascii")
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


cdef int _resolve_in_python(RequestSpec* spec, bint is_async) except -1:
    """A patched socket.getaddrinfo resolves the connect host, where httpcore would ask
    it (_asks_resolver: not an IP literal on asyncio), and when it would: as a new
    connection opens (ConsumerGate::kResolves: its kConnect gate waits for
    _resolve_at_gate), never for a pooled connection reused. The core races the
    answers (Happy Eyeballs); the name stays the pool key, the TLS server name and
    the Host header."""
    if _asks_resolver(_unbracketed(spec.connect_host), spec.connect_port, is_async):
        spec.consumer_gate = ConsumerGate.kResolves
    return 0


cdef list _answered_addresses(object infos):
    """The IPv4 / IPv6 addresses of getaddrinfo's answers, in order, each once."""
    cdef list addresses = []
    for info in infos:
        if info[0] in (_socket_module.AF_INET, _socket_module.AF_INET6):
            address = str(info[4][0]).encode("ascii")
            if address not in addresses:
                addresses.append(address)
    return addresses


cdef int _resume_resolved(Engine* eng, Transfer* t, object infos, object error) except -1:
    """Hand getaddrinfo's answers (or its OSError) to the connection at the gate."""
    cdef Error err
    cdef vector[string] addresses
    if error is not None:
        kind = ErrorKind.kConnectTimeout if _is_timeout(error) else ErrorKind.kConnectError
        err.set(kind, (str(error) or type(error).__name__).encode("utf-8", "replace"))
    else:
        for address in _answered_addresses(infos):
            addresses.push_back(address)
    with nogil:
        eng.resolve_resume(t[0], move(addresses), err)
    return 0


cdef int _resolve_at_gate(Engine* eng, Transfer* t) except -1:
    """Sync: resolve through socket.getaddrinfo (as it is now) at the kConnect gate, as
    httpcore's socket.create_connection calls it. Its exceptions other than OSError
    leave the request as they do from httpx."""
    try:
        infos = _socket_module.getaddrinfo(
            _unbracketed(t.spec.connect_host), t.spec.connect_port, 0, _socket_module.SOCK_STREAM
        )
    except OSError as error:
        return _resume_resolved(eng, t, None, error)
    return _resume_resolved(eng, t, infos, None)


cdef dict _TRIO_ABANDON = None


cdef dict _trio_abandon(object trio):
    """to_thread.run_sync's keyword that lets a cancelled wait leave the thread to finish
    on its own: abandon_on_cancel (trio 0.23+), cancellable before."""
    global _TRIO_ABANDON
    if _TRIO_ABANDON is None:
        import inspect

        params = inspect.signature(trio.to_thread.run_sync).parameters
        name = "abandon_on_cancel" if "abandon_on_cancel" in params else "cancellable"
        _TRIO_ABANDON = {name: True}
    return _TRIO_ABANDON


async def _aresolve_at_gate(_Body stream):
    """Async: the same in a worker thread (asyncio's executor, trio's to_thread), as
    httpcore's async connects ask it: the event loop is never blocked by a slow one, and
    the connect timeout bounds it (ConnectTimeout), as it bounds theirs (anyio's and
    trio's connects run the lookup under it; a sync connect's is unbounded, as there)."""
    cdef Transfer* t = stream.t.get()
    args = (_unbracketed(t.spec.connect_host), t.spec.connect_port, 0, _socket_module.SOCK_STREAM)
    cdef double limit = t.spec.connect_timeout
    timeout = limit if 0 <= limit < 1e9 else None  # (else none: timeouts.h)
    resolve = _socket_module.getaddrinfo
    try:
        if _current_library() == "trio":
            import trio

            infos = None
            with trio.move_on_after(timeout if timeout is not None else float("inf")):
                infos = await trio.to_thread.run_sync(resolve, *args, **_trio_abandon(trio))
            if infos is None:
                raise TimeoutError("timed out")
        else:
            import asyncio

            lookup = asyncio.get_running_loop().run_in_executor(None, resolve, *args)
            try:
                infos = await asyncio.wait_for(lookup, timeout)
            except asyncio.TimeoutError:
                raise TimeoutError("timed out") from None
    except OSError as error:
        _resume_resolved(stream.engine.eng, stream.t.get(), None, error)
        return
    _resume_resolved(stream.engine.eng, stream.t.get(), infos, None)



cdef class _HttpcoreHook:
    """Notices when a mocking library has replaced httpcore's (or httpcore2's) pool entry
    point, or an instrumentation has wrapped its connections' (`through_pool`).

    respx (the mocker openai's and anthropic's suites use) patches
    httpcore.ConnectionPool.handle_request, below httpx's transport; respx2 (vendored by
    openai 3.x's tests) and pytest-httpx2 patch httpcore2's, below httpx2's. httprs has no
    httpcore underneath, so its transports look on each request whether that method is
    still the package's own; when it is not, the request goes through the patched
    function, converted to that package's types and back. Unpatched, this costs, for a
    package not imported, a compare of the module table's PEP 509 version (a dict lookup
    where it cannot be read, or after any import), or, once the class was found unpatched,
    a compare of its type version tag (which CPython changes when anything sets an
    attribute on it).

    A function of the package's own module counts as the original unless it wraps
    another (`__wrapped__`: wrapt's wrappers, which APM agents install at start-up,
    report the wrapped function's `__module__`). elastic-apm adds its `traceparent`
    header in a wrapper of `HTTPConnection.handle_request`: a patch there
    (`through_pool`) sends the request through a real pool of that package, whose
    connections run it, as httpx's transport would.
    """

    cdef readonly str package
    cdef str module
    cdef str cls_name
    cdef str attr
    cdef object cls
    cdef str own  # "<package>." of the class's own module: httpcore2's after alias_httpx()
    cdef object original
    cdef unsigned int clean_tag  # cls's version tag when `attr` was last its own, or 0
    # The module table's PEP 509 version when `package` was last found not in it, or 0:
    # while the table keeps that version nothing was imported, so it still is not.
    cdef unsigned long long absent_version
    cdef readonly bint through_pool

    def __cinit__(self, str package, str module, str cls_name, str attr, bint through_pool=False):
        self.through_pool = through_pool
        self.package = package
        self.module = package + "." + module
        self.cls_name = cls_name
        self.attr = attr

    cdef object patched(self):
        cdef unsigned long long version
        cls = self.cls
        if cls is None:
            # The interpreter's module table (what `sys.modules` names).
            modules = <dict><object>PyImport_GetModuleDict()
            # Read before the lookup: an import after this read renews the version.
            version = _dict_version(modules)
            if version != 0 and version == self.absent_version:
                return None
            if self.package not in modules:
                self.absent_version = version
                return None
            mod = modules.get(self.module)
            if mod is None:
                return None
            cls = getattr(mod, self.cls_name, None)
            if not isinstance(cls, type):
                # Not a class (a mock patched over the name, a module being torn down):
                # nothing whose method could be patched; looked up again next time.
                return None
            self.own = (<type>cls).__module__.partition(".")[0] + "."
            self.cls = cls
        # The tag is read before the class dict: a change after this read gives the
        # class a new tag, so a tag is never remembered for a state it did not see.
        cdef unsigned int tag = _type_tag(cls)
        if tag != 0 and tag == self.clean_tag:
            return None  # the class has not changed since it was last found unpatched
        if tag == 0:
            getattr(cls, self.attr, None)  # a lookup through the class gives it a tag
            tag = _type_tag(cls)
        current = (<type>cls).__dict__.get(self.attr)
        if current is not self.original:
            if not getattr(current, "__module__", "").startswith(self.own) or hasattr(
                current, "__wrapped__"
            ):
                return current
            self.original = current
        self.clean_tag = tag
        return None


# A patched pool first (a mock answers before any connection would be made).
cdef tuple _SYNC_HOOKS = (
    _HttpcoreHook("httpcore", "_sync.connection_pool", "ConnectionPool", "handle_request"),
    _HttpcoreHook("httpcore2", "_sync.connection_pool", "ConnectionPool", "handle_request"),
    _HttpcoreHook("httpcore", "_sync.connection", "HTTPConnection", "handle_request", True),
    _HttpcoreHook("httpcore2", "_sync.connection", "HTTPConnection", "handle_request", True),
)
cdef tuple _ASYNC_HOOKS = (
    _HttpcoreHook(
        "httpcore", "_async.connection_pool", "AsyncConnectionPool", "handle_async_request"
    ),
    _HttpcoreHook(
        "httpcore2", "_async.connection_pool", "AsyncConnectionPool", "handle_async_request"
    ),
    _HttpcoreHook(
        "httpcore", "_async.connection", "AsyncHTTPConnection", "handle_async_request", True
    ),
    _HttpcoreHook(
        "httpcore2", "_async.connection", "AsyncHTTPConnection", "handle_async_request", True
    ),
)


cdef tuple _find_patch(tuple hooks):
    """(package, patched function) of the first hook whose method was replaced, or None;
    the function is None for a patched connection method (the pool's own sends)."""
    cdef _HttpcoreHook hook
    # The module table's version, read once for all hooks: a hook whose package was found
    # absent at this version is skipped without a call (its own memo, as in patched()).
    cdef unsigned long long version = _dict_version(<object>PyImport_GetModuleDict())
    for hook in hooks:
        if hook.cls is None and version != 0 and version == hook.absent_version:
            continue
        patched = hook.patched()
        if patched is not None:
            return (hook.package, None if hook.through_pool else patched)
    return None


cdef object _httpcore_request(str package, object request):
    httpcore = sys.modules[package]  # imported: its patched method is why we are here
    url = request.url
    return httpcore.Request(
        method=request.method,  # as httpx passes it (httpcore checks and encodes it)
        url=httpcore.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
        ),
        headers=request.headers.raw,
        content=request.stream,
        extensions=request.extensions,
    )


cdef object _from_httpcore_response(object response, object stream):
    """The client's Response for what the patched pool returned, made as httpx's
    transports make it: by keyword, with the httpcore response's extensions (a copy).
    A mocked response without `reason_phrase` (respx's) keeps the status code's phrase,
    whatever else the mock or a pass-through pool put there is kept, and a patched
    `Response.__init__` sees them all. (Mocked requests only: no fast path needed.)"""
    return Response(
        status_code=response.status,
        headers=[(bytes(k), bytes(v)) for k, v in response.headers],
        stream=stream,
        extensions=response.extensions,
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


_mocked_pool_lock = threading.Lock()


cdef object _mocked_pool(object transport, str package, bint is_async, object request):
    """A real pool of the patched package (httpcore or httpcore2) for pass-through routes
    and wrapped connections, with the transport's settings; creating one opens no
    sockets. One per transport (threads racing to make it share the first), closed with
    the transport (_close_mocked_pools). A TLS context that cannot be made (its files
    gone since the client was made) is a ConnectError: never a pool checking against
    another store."""
    from httprs._poolview import build_pool

    with _mocked_pool_lock:
        pool = transport.__dict__.get("_pool")
        # httpcore presents its public classes as `httpcore.ConnectionPool` (`__module__`
        # is the package itself), httpcore2 likewise; a pool of the other package is
        # replaced (and closed with the transport too), unless the program put it there
        # or changed it (_rewired_pool): that one stays, for the mock's requests too, so
        # that once the mock is gone its guard still decides.
        module = type(pool).__module__ if pool is not None else ""
        if (
            module != package
            and not module.startswith(package + ".")
            and _rewired_pool(transport) is None
        ):
            settings = transport.__dict__.get("_settings", {})
            try:
                pool = build_pool(settings, is_async, package)
            except (OSError, ValueError) as error:
                message = f"Could not make the TLS context of {package}'s pool: {error}"
                raise exc.ConnectError(message, request=request) from error
            record_pool(transport, pool)
            transport.__dict__.setdefault("_sending_pools", []).append(pool)
    return pool


cdef object _rewired_pool(object transport):
    """`transport._pool` when code has changed it since httprs built it (or put one of its
    own there): its network backend replaced (prefect's SSRF guard, which refuses private
    addresses; DNS pinning; a Unix-socket egress; a test's fake), its TLS context, or the
    pool itself. httpx sends through its pool, so such a change decides where its
    requests go, and what they may reach: the transport then sends through that pool
    (an httpcore one; httpcore's speed and limits), never around it. None otherwise:
    `_pool` never read (one failed dict lookup), or read and left alone."""
    d = transport.__dict__
    pool = d.get("_pool")
    if pool is None:
        return None
    state = d.get("_pool_state")
    if (
        state is not None
        and state[0] is pool
        and getattr(pool, "_network_backend", None) is state[1]
        and getattr(pool, "_ssl_context", None) is state[2]
    ):
        return None
    return pool


cdef tuple _rewired_route(object transport, object pool, bint is_async):
    """(package, send) for a rewired `_pool`: its own handle_request, the request made
    for its package (httpcore's or httpcore2's); closed with the transport. A pool that
    cannot send (no httpcore: httprs's PoolView) is refused rather than bypassed."""
    module = type(pool).__module__
    package = "httpcore2" if module.split(".")[0] == "httpcore2" else "httpcore"
    send = getattr(pool, "handle_async_request" if is_async else "handle_request", None)
    if send is None or package not in sys.modules:
        raise RuntimeError(
            f"transport._pool was changed (now {pool!r}), but it cannot send requests "
            "(httpcore is not installed): httprs will not send around it"
        )
    with _mocked_pool_lock:
        pools = transport.__dict__.setdefault("_sending_pools", [])
        if not any(p is pool for p in pools):
            pools.append(pool)
    return package, send


def _close_mocked_pools(transport):
    """Close the real pools a transport sent through (sync)."""
    for pool in transport.__dict__.pop("_sending_pools", ()):
        pool.close()


async def _aclose_mocked_pools(transport):
    for pool in transport.__dict__.pop("_sending_pools", ()):
        await pool.aclose()


cdef object _pool_entry(object patched, object pool, bint is_async):
    """What `pool.handle_request` (or `handle_async_request`) gives httpx: the pool's own
    method for a patched connection (patched None), else the patch bound through the
    descriptor protocol (a function, an autospec, wrapt's FunctionWrapper, which called
    unbound would take the pool for its request), or, for no descriptor, the object
    given the pool first (a mock's side effect takes `(self, request)`)."""
    if patched is None:
        return pool.handle_async_request if is_async else pool.handle_request
    get = getattr(type(patched), "__get__", None)
    if get is None:
        return functools.partial(patched, pool)
    return get(patched, pool, type(pool))


def _send_via_httpcore(transport, tuple patch, request):
    package, patched = patch
    return _send_through(
        package, _pool_entry(patched, _mocked_pool(transport, package, False, request), False),
        request,
    )


def _send_via_rewired_pool(transport, pool, request):
    package, send = _rewired_route(transport, pool, False)
    return _send_through(package, send, request)


def _send_through(str package, send, request):
    try:
        response = send(_httpcore_request(package, request))
    except Exception as error:
        mapped = _httpcore_error(error, request)
        if mapped is None:
            raise
        raise mapped from error
    return _from_httpcore_response(response, _HttpcoreStream(response.stream))


async def _send_via_httpcore_async(transport, tuple patch, request):
    package, patched = patch
    send = _pool_entry(patched, _mocked_pool(transport, package, True, request), True)
    return await _send_through_async(package, send, request)


async def _send_via_rewired_pool_async(transport, pool, request):
    package, send = _rewired_route(transport, pool, True)
    return await _send_through_async(package, send, request)


async def _send_through_async(str package, send, request):
    try:
        response = await send(_httpcore_request(package, request))
    except Exception as error:
        mapped = _httpcore_error(error, request)
        if mapped is None:
            raise
        raise mapped from error
    return _from_httpcore_response(response, _AsyncHttpcoreStream(response.stream))
