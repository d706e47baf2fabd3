# cython: language_level=3, annotation_typing=False
"""Timeout, Limits and Proxy configuration, and SSL context creation (as httpx)."""

import os

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_EVENT_SIZE_BYTES",
    "DEFAULT_MAX_REDIRECTS",
    "DEFAULT_TIMEOUT_CONFIG",
    "Limits",
    "Proxy",
    "Timeout",
    "create_ssl_context",
]


class UnsetType:
    pass


UNSET = UnsetType()


def create_ssl_context(
    verify: ssl.SSLContext | str | bool = True,
    cert: CertTypes | None = None,
    trust_env: bool = True,
) -> ssl.SSLContext:
    """Build an ssl.SSLContext the way httpx does for `verify=` / `cert=`."""
    return _create_ssl_context(verify, cert, trust_env, True)


def _create_ssl_context(verify, cert, trust_env, bint warn):
    """create_ssl_context, its deprecation warnings given only with `warn` (a pool built
    for a transport that warned already; warnings.catch_warnings() is not thread-safe)."""
    import certifi

    from httprs._methods import warn_inside

    if isinstance(verify, str):
        _check_verify_path_without_cert(verify, cert)
        if warn:
            warn_inside(
                "`verify=<str>` is deprecated. "
                "Use `verify=ssl.create_default_context(cafile=...)` "
                "or `verify=ssl.create_default_context(capath=...)` instead.",
                DeprecationWarning,
                "_config",
            )
        return _fresh_context(verify, trust_env, None)
    if verify is True or verify is False:
        ctx = _fresh_context(verify, trust_env, certifi.where())
    else:
        ctx = verify

    if cert:
        if warn:
            warn_inside(
                "`cert=...` is deprecated. Use `verify=<ssl_context>` instead,"
                "with `.load_cert_chain()` to configure the certificate chain.",
                DeprecationWarning,
                "_config",
            )
        if isinstance(cert, str):
            ctx.load_cert_chain(cert)
        else:
            ctx.load_cert_chain(*cert)
    return ctx


def _fresh_context(verify, trust_env, default_cafile):
    """The context create_ssl_context starts from for verify=True (the variables' store
    when trust_env, else `default_cafile`), False, or a CA file or directory (a str,
    bytes or path-like); shared with the contexts httprs builds as httpx would
    (_httpx_context in _tls.pxi), which load no certificate here either."""
    import ssl

    if verify is True:
        if trust_env and os.environ.get("SSL_CERT_FILE"):
            return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
        if trust_env and os.environ.get("SSL_CERT_DIR"):
            return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
        return ssl.create_default_context(cafile=default_cafile)
    if verify is False:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    path = os.fsdecode(verify)
    if os.path.isdir(path):
        return ssl.create_default_context(capath=path)
    return ssl.create_default_context(cafile=path)


def _check_verify_path_without_cert(verify, cert):
    """Presented as httpx2 (2.17), `verify=<path>` with `cert=` is refused; httpx 0.28.1
    drops the certificate without a word, and httprs presents it (the user asked for
    it) under the other names (docs/compatibility.md, "TLS")."""
    from httprs._alias import primary

    if cert and isinstance(verify, str) and primary() == "httpx2":
        raise TypeError(
            "`verify=<str>` cannot be combined with `cert=...`. "
            "Build an `ssl.SSLContext` and pass it as `verify=<ctx>`, "
            "using `.load_cert_chain()` to configure the certificate chain."
        )


def _check_timeout_type(timeout):
    """Presented as httpx2 (2.17), a default timeout that is no number, None, tuple or
    Timeout is refused at once; httpx 0.28.1 keeps it and fails where it is used (see
    docs/compatibility.md, "Timeout values"), which httprs does under the other names."""
    from httprs._alias import primary

    if primary() == "httpx2":
        raise TypeError(
            "Invalid timeout: expected a number, `None`, a tuple or `httpx2.Timeout`, "
            f"got {type(timeout)!r}."
        )


class Timeout:
    """Timeout configuration: Timeout(None), Timeout(5.0), Timeout(5.0, connect=10.0),
    Timeout((connect, read[, write[, pool]])), Timeout(other_timeout), or all four
    keywords explicitly."""

    def __init__(
        self,
        timeout: TimeoutTypes | UnsetType = UNSET,
        *,
        connect: None | float | UnsetType = UNSET,
        read: None | float | UnsetType = UNSET,
        write: None | float | UnsetType = UNSET,
        pool: None | float | UnsetType = UNSET,
    ) -> None:
        if isinstance(timeout, Timeout):
            assert connect is UNSET
            assert read is UNSET
            assert write is UNSET
            assert pool is UNSET
            self.connect = timeout.connect
            self.read = timeout.read
            self.write = timeout.write
            self.pool = timeout.pool
        elif isinstance(timeout, tuple):
            self.connect = timeout[0]
            self.read = timeout[1]
            self.write = None if len(timeout) < 3 else timeout[2]
            self.pool = None if len(timeout) < 4 else timeout[3]
        elif not (
            connect is UNSET or read is UNSET or write is UNSET or pool is UNSET
        ):
            self.connect = connect
            self.read = read
            self.write = write
            self.pool = pool
        else:
            if timeout is UNSET:
                from httprs._alias import presented_name

                raise ValueError(
                    f"{presented_name()}.Timeout must either include a default, or set all "
                    "four parameters explicitly."
                )
            if not (
                timeout is None
                or type(timeout) is float
                or type(timeout) is int
                or hasattr(type(timeout), "__float__")  # typing.SupportsFloat's test
            ):
                _check_timeout_type(timeout)
            self.connect = timeout if connect is UNSET else connect
            self.read = timeout if read is UNSET else read
            self.write = timeout if write is UNSET else write
            self.pool = timeout if pool is UNSET else pool

    def as_dict(self) -> dict[str, float | None]:
        return {
            "connect": self.connect,
            "read": self.read,
            "write": self.write,
            "pool": self.pool,
        }

    def __eq__(self, other):
        return (
            isinstance(other, self.__class__)
            and self.connect == other.connect
            and self.read == other.read
            and self.write == other.write
            and self.pool == other.pool
        )

    __hash__ = None

    def __repr__(self):
        name = self.__class__.__name__
        if len({self.connect, self.read, self.write, self.pool}) == 1:
            return f"{name}(timeout={self.connect})"
        return (
            f"{name}(connect={self.connect}, read={self.read}, "
            f"write={self.write}, pool={self.pool})"
        )


class Limits:
    """Connection pool limits."""

    def __init__(
        self,
        *,
        max_connections: int | None = None,
        max_keepalive_connections: int | None = None,
        keepalive_expiry: float | None = 5.0,
    ) -> None:
        self.max_connections = max_connections
        self.max_keepalive_connections = max_keepalive_connections
        self.keepalive_expiry = keepalive_expiry

    def __eq__(self, other):
        return (
            isinstance(other, self.__class__)
            and self.max_connections == other.max_connections
            and self.max_keepalive_connections == other.max_keepalive_connections
            and self.keepalive_expiry == other.keepalive_expiry
        )

    __hash__ = None

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(max_connections={self.max_connections}, "
            f"max_keepalive_connections={self.max_keepalive_connections}, "
            f"keepalive_expiry={self.keepalive_expiry})"
        )


class Proxy:
    """A proxy URL with optional credentials, headers and an SSL context."""

    def __init__(
        self,
        url: URL | str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        auth: tuple[str, str] | None = None,
        headers: HeaderTypes | None = None,
    ) -> None:
        from httprs._models import Headers
        from httprs._urls import URL

        url = URL(url)
        headers = Headers(headers)
        if url.scheme not in ("http", "https", "socks5", "socks5h"):
            raise ValueError(f"Unknown scheme for proxy URL {url!r}")
        if url.username or url.password:
            auth = (url.username, url.password)
            url = url.copy_with(username=None, password=None)
        self.url = url
        self.auth = auth
        self.headers = headers
        self.ssl_context = ssl_context

    @property
    def raw_auth(self) -> tuple[bytes, bytes] | None:
        if self.auth is None:
            return None
        return (self.auth[0].encode("utf-8"), self.auth[1].encode("utf-8"))

    def __repr__(self):
        auth = (self.auth[0], "********") if self.auth else None
        url_str = f"{str(self.url)!r}"
        auth_str = f", auth={auth!r}" if auth else ""
        headers_str = f", headers={dict(self.headers)!r}" if self.headers else ""
        return f"Proxy({url_str}{auth_str}{headers_str})"


DEFAULT_TIMEOUT_CONFIG = Timeout(timeout=5.0)
DEFAULT_LIMITS = Limits(max_connections=100, max_keepalive_connections=20)
DEFAULT_MAX_REDIRECTS = 20
# httpx2's bound on the bytes buffered for one server-sent event (httprs._sse).
DEFAULT_MAX_EVENT_SIZE_BYTES = 1024 * 1024
# httpx2's WebSocket session defaults (httprs.websockets), under httpx2's names here.
DEFAULT_MAX_MESSAGE_SIZE_BYTES = 65_536
DEFAULT_QUEUE_SIZE = 512
DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS = 20.0
DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS = 20.0
