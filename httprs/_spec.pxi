# From an httpx Request to the C++ RequestSpec's parts (included into _core.pyx):
# timeouts, proxy routes, the request target, SNI.

# A client's request keeps its timeout snapshot until its extensions dict is asked for
# (_lazy_request_timeout): read past Request's own `extensions` only.
cdef object _STOCK_REQUEST = Request
cdef tuple _REQUEST_STOCK = (("extensions", Request.extensions),)
cdef unsigned int _request_tag = 0  # (class_unchanged's memo)


cdef inline object _mapping_get(object mapping, str key):
    """mapping.get(key): a C lookup for a plain dict (extensions, timeouts), else the call."""
    if type(mapping) is dict:
        return (<dict>mapping).get(key)
    return mapping.get(key)


cdef inline bint _has_colon(object host) except -1:
    """b":" in host (an IPv6 literal), by memchr for exact bytes: bytes' `in` first tries
    its operand as an int, and raises and clears a TypeError for a bytes one (about 1.8k
    instructions, once per HTTP/2 request for its authority)."""
    if type(host) is bytes:
        return memchr(PyBytes_AS_STRING(host), 58, <size_t>PyBytes_GET_SIZE(host)) != NULL
    return b":" in host


cdef inline int _set_string(string* dst, object value) except -1:
    """*dst = value for a bytes value: exact bytes are copied straight in (Cython's own
    conversion makes a temporary string and copies it again); anything else goes
    through that conversion, with its errors."""
    if type(value) is bytes:
        dst.assign(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value))
    else:
        dst[0] = <string>value
    return 0


# Timeouts from this many seconds up (~31 years) mean none: the core's timers count
# milliseconds in 64 bits, and httpx's async backends accept inf.
cdef double _TIMEOUT_NONE_FROM = 1e9


cdef inline double _timeout_value(object value, bint is_async) except? -2.0:
    """A timeout in seconds for the core, -1 for none."""
    cdef double seconds
    if value is None:
        return -1.0
    if type(value) is float or type(value) is int:
        seconds = value
        if 0.0 <= seconds < _TIMEOUT_NONE_FROM:
            return seconds
    return _odd_timeout_value(value, is_async)


cdef inline double _pool_timeout_value(object value, bint is_async) except? -2.0:
    """The pool timeout for the core: as _timeout_value, except that a negative value is
    a timeout of 0 in both flavours (httpx only uses it when a request has to wait for a
    connection, and then a negative wait has expired at once)."""
    if type(value) is float or type(value) is int:
        if value < 0:
            return 0.0
    return _timeout_value(value, is_async)


cdef str _tp_name(object value):
    """The name Python's own error messages give `value`'s type (`decimal.Decimal`)."""
    cls = type(value)
    return (<PyTypeObject*>cls).tp_name.decode("utf-8")


cdef double _odd_timeout_value(object value, bint is_async) except? -2.0:
    """_timeout_value for anything but a float or int in range: what httpx's backends
    take, with their errors. Sync, socket.settimeout()'s (a float or an integer,
    neither negative nor NaN); async, anyio's deadline arithmetic's (a float or an
    integer; NaN refused; a negative timeout has expired already)."""
    cdef double seconds
    if isinstance(value, float):
        seconds = value
    elif hasattr(type(value), "__index__"):
        seconds = operator.index(value)
    elif is_async:
        raise TypeError(f"unsupported operand type(s) for +: 'float' and '{_tp_name(value)}'")
    else:
        raise TypeError(f"'{_tp_name(value)}' object cannot be interpreted as an integer")
    if seconds != seconds:
        if is_async:
            raise ValueError("deadline must not be NaN")
        raise ValueError("Invalid value NaN (not a number)")
    if seconds < 0:
        if not is_async:
            raise ValueError("Timeout value out of range")
        return 0.0
    if seconds >= _TIMEOUT_NONE_FROM:
        return -1.0
    return seconds


cdef dict _METHOD_BYTES = {
    m: m.encode("ascii")
    for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "QUERY")
}


cdef bytes _method_bytes(object method):
    """The method as sent: a str in ASCII or bytes, as httpcore's enforce_bytes takes it
    (httpx keeps `Request(b"GET", ...).method` as bytes)."""
    if type(method) is str:
        known = _METHOD_BYTES.get(method)
        if known is not None:
            return <bytes>known
    if isinstance(method, str):
        try:
            return method.encode("ascii")
        except UnicodeEncodeError:
            raise TypeError("method strings may not include unicode characters.") from None
    if isinstance(method, bytes):
        return bytes(method)
    raise TypeError(f"method must be bytes or str, but got {type(method).__name__}.")


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


cdef bytes _ipv6_authority_host(bytes host):
    """An IPv6 host as sent (an HTTP/2 authority, a CONNECT or absolute-form target): in
    brackets, without its zone id, which only has meaning on the client (as the Host
    header, httpx2 2.17)."""
    cdef Py_ssize_t zone = host.find(b"%")
    return b"[" + (host if zone < 0 else host[:zone]) + b"]"


cdef object _absolute_target(object url, object custom=None):
    port = url.port
    authority = url.raw_host
    if _has_colon(authority):
        authority = _ipv6_authority_host(authority)
    if port is not None:
        authority += b":" + str(port).encode("ascii")
    path = url.raw_path if custom is None else bytes(custom)
    return url.raw_scheme + b"://" + authority + path


cdef bytes _sni_hostname(object request, bytes host):
    """The TLS server name for a request: its `sni_hostname` extension (as httpcore
    honours it, for SNI and the certificate check), else the URL's host."""
    sni = _mapping_get(request.extensions, "sni_hostname")
    if not sni:
        return host
    cdef bytes name
    if isinstance(sni, str):
        try:
            name = sni.encode("ascii")
        except UnicodeEncodeError:
            name = sni.encode("idna")
    elif isinstance(sni, (bytes, bytearray, memoryview)):
        name = bytes(sni)
    else:
        raise TypeError(f"sni_hostname must be str or bytes, not {type(sni).__name__}")
    if b"\0" in name:
        # The ssl module's refusal in httpx; the core's C string would end there, and
        # the certificate be checked for what precedes the NUL.
        raise TypeError(f"sni_hostname must not contain null bytes: {sni!r}")
    return name
