"""`HTTPTransport._pool` / `AsyncHTTPTransport._pool`: what httpx keeps there, described.

httpx's transports hold an httpcore pool in `_pool` (a `ConnectionPool`, or an
`HTTPProxy` / `SOCKSProxy` when a proxy is configured), and code reads it: pytest-httpx
reads `_pool._proxy_url` and `_pool._proxy_headers` to match requests by proxy,
httpx's own tests and SDK test suites check proxy and limit settings there.

httprs's pool is C++, so `_pool` is built on first read from the transport's settings:

* with httpcore importable, it is the httpcore object httpx would have built (same class,
  httpcore2's when httprs presents as httpx2, see `pool_package()`;
  same `_proxy_url`, `_proxy_headers`, limits), so `isinstance` checks and comparisons
  with `httpcore.URL` hold. With both httpcore and httpcore2 importable, its class
  derives from both packages' class of that name (built by the presented one's
  `__init__`): one process can hold httpx-era code (pytest-httpx: `isinstance(pool,
  httpcore.HTTPProxy)`) and httpx2-era code (openai 3.x's tests: `httpcore2.ConnectionPool`)
  reading the same transport, and the classes are shared, so a transport cannot tell
  which name its reader imported. It is a description: httprs never sends through it, except
  when a mocking library has patched httpcore's `handle_request` (see
  `_core._mocked_pool`), which is exactly when httpx would have used it too;
* without httpcore, a `PoolView` with the same attribute names, `_proxy_url` being a
  `ProxyURL(scheme, host, port, target)` of bytes like `httpcore.URL`'s.

Reading `_pool` costs nothing until it happens; the value is then cached on the instance.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections import namedtuple
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from httprs._config import Proxy

ProxyURL = namedtuple("ProxyURL", ["scheme", "host", "port", "target"])


class PoolView:
    """httpcore's pool attributes, for when httpcore is not installed."""

    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)

    @property
    def connections(self) -> list[Any]:
        return []

    def __repr__(self) -> str:
        proxy = self.__dict__.get("_proxy_url")
        return f"<httprs PoolView proxy={proxy!r}>" if proxy else "<httprs PoolView>"


def _basic_auth(raw_auth: tuple[bytes, bytes]) -> bytes:
    from base64 import b64encode

    username, password = raw_auth
    return b"Basic " + b64encode(username + b":" + password)


def pool_package() -> str:
    """The httpcore the library httprs presents as would use: httpcore2 for httpx2 (the
    switch's primary name), httpcore otherwise."""
    from httprs import _alias

    return "httpcore2" if _alias.primary() == "httpx2" else "httpcore"


def build_pool(settings: dict[str, Any], is_async: bool, package: str | None = None) -> Any:
    """The pool description for a transport created with `settings` (its keywords), as
    an object of `package` (httpcore or httpcore2; default: `pool_package()`)."""
    from httprs._config import DEFAULT_LIMITS, Proxy
    from httprs._urls import URL

    limits = settings.get("limits") or DEFAULT_LIMITS
    proxy = settings.get("proxy")
    if isinstance(proxy, (str, URL)):
        proxy = Proxy(url=proxy)
    common = {
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
        "http1": settings.get("http1", True),
        "http2": settings.get("http2", False),
        "retries": settings.get("retries", 0),
    }
    # The context httpx builds for its pool (code reads `_pool._ssl_context`; a mocking
    # library's pass-through route connects with it): made when the pool is built.
    describe = package is None  # `_pool` read, not a pool to send through
    common["ssl_context"] = _ssl_context(settings, strict=not describe)
    try:
        return _httpcore_pool(
            package or pool_package(), proxy, common, settings, is_async, describe
        )
    except ImportError:  # no httpcore (or no socksio for a SOCKS proxy)
        pass
    attrs = {"_" + key: value for key, value in common.items()}
    if proxy is None:
        attrs.update(
            _local_address=settings.get("local_address"),
            _uds=settings.get("uds"),
            _socket_options=settings.get("socket_options"),
        )
    else:
        url = proxy.url
        attrs["_proxy_url"] = ProxyURL(url.raw_scheme, url.raw_host, url.port, url.raw_path)
        if not url.scheme.startswith("socks"):
            attrs["_socket_options"] = settings.get("socket_options")
        headers = list(proxy.headers.raw)
        if proxy.raw_auth is not None:
            if url.scheme.startswith("socks"):
                attrs["_proxy_auth"] = proxy.raw_auth
            else:
                headers.insert(0, (b"Proxy-Authorization", _basic_auth(proxy.raw_auth)))
        attrs["_proxy_headers"] = headers
    return PoolView(**attrs)


_BOTH_PACKAGES: dict[tuple[str, str], type] = {}


def _ssl_context(settings: dict[str, Any], strict: bool) -> Any:
    """What httpx's transport gives its pool: create_ssl_context(verify, cert, trust_env)
    (the very context for verify=<ssl.SSLContext>), without its deprecation warnings (the
    transport gave them). A pool to send through (`strict`) raises when the files are
    gone: with no context, httpcore would check against certifi's bundle instead."""
    from httprs._config import _create_ssl_context

    verify = settings.get("verify", True)
    if isinstance(verify, (bytes, os.PathLike)):  # a path httprs takes as httpx takes str
        verify = os.fsdecode(verify)
    try:
        return _create_ssl_context(
            verify, settings.get("cert"), settings.get("trust_env", True), False
        )
    except (OSError, ValueError):
        if strict:
            raise
        # (files gone since the transport was made): reading `_pool` never fails
        return None


def _pool_class(package: str, name: str, describe: bool) -> Any:
    """`package.name`, or for a description (`describe`), a subclass of it and of the
    other httpcore's class of that name when that one is importable too."""
    cls = getattr(importlib.import_module(package), name)
    if not describe:
        return cls
    key = (package, name)
    both = _BOTH_PACKAGES.get(key)
    if both is None:
        other = "httpcore" if package == "httpcore2" else "httpcore2"
        try:
            other_cls = getattr(importlib.import_module(other), name)
        except (ImportError, AttributeError):
            return cls
        if other_cls is cls:  # one package under both names (httpx2's alias_httpx())
            return cls
        # __module__ stays the presented package's: `_core._mocked_pool` reuses the
        # object for that package's pass-through routes, whose methods it runs.
        namespace: dict[str, Any] = {"__module__": cls.__module__}
        if name == "URL":
            # Each package's URL equals only its own: `_proxy_url == httpcore.URL(...)`
            # (prefect's tests) must hold while httprs presents as httpx2 too.
            namespace["__eq__"] = _url_eq((cls, other_cls))
            namespace["__hash__"] = None  # (as httpcore's URL: __eq__ without a hash)
        both = type(name, (cls, other_cls), namespace)
        _BOTH_PACKAGES[key] = both
    return both


def _url_eq(classes: tuple[type, type]) -> Any:
    def __eq__(self: Any, other: Any) -> bool:
        parts = ("scheme", "host", "port", "target")
        return isinstance(other, classes) and all(
            getattr(self, part) == getattr(other, part) for part in parts
        )

    return __eq__


def _httpcore_pool(
    package: str,
    proxy: Proxy | None,
    common: dict[str, Any],
    settings: dict[str, Any],
    is_async: bool,
    describe: bool = False,
) -> Any:
    def pool_class(name: str) -> Any:
        return _pool_class(package, ("Async" if is_async else "") + name, describe)

    cls: Any
    if proxy is None:
        cls = pool_class("ConnectionPool")
        return cls(
            local_address=settings.get("local_address"),
            uds=settings.get("uds"),
            socket_options=settings.get("socket_options"),
            **common,
        )
    url = proxy.url
    proxy_url = _pool_class(package, "URL", describe)(
        scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
    )
    # httpx2 2.17 gives a proxy pool the transport's uds=, local_address= (HTTP) and
    # retries= (SOCKS too), which httprs's own connections to a proxy honour under every
    # name; httpx 0.28.1 gives none of them to a SOCKS proxy and only retries to an HTTP one.
    as_httpx2 = package == "httpcore2"
    if url.scheme in ("http", "https"):
        cls = pool_class("HTTPProxy")
        if as_httpx2:
            common["uds"] = settings.get("uds")
            common["local_address"] = settings.get("local_address")
        return cls(
            proxy_url=proxy_url,
            proxy_auth=proxy.raw_auth,
            proxy_headers=proxy.headers.raw,
            proxy_ssl_context=proxy.ssl_context,
            socket_options=settings.get("socket_options"),  # as httpx passes them
            **common,
        )
    cls = pool_class("SOCKSProxy")
    if not as_httpx2:
        common.pop("retries")
    return cls(proxy_url=proxy_url, proxy_auth=proxy.raw_auth, **common)


# Taken by record_pool and a first read's store: two threads reading `_pool` first at
# once cannot leave one's pool with the other's state (seen as changed for good).
POOL_LOCK = threading.RLock()


def record_pool(transport: Any, pool: Any) -> None:
    """Make `pool` the transport's `_pool`, as httprs built it: what it is and holds now
    is kept (`_pool_state`), so that a change made to it later is seen (`_core`'s
    `_rewired_pool`: the transport then sends through it, as httpx's would). The state
    is stored first: a request reading them without the lock never finds a pool httprs
    built without its state."""
    with POOL_LOCK:
        transport.__dict__["_pool_state"] = pool_state(pool)
        transport.__dict__["_pool"] = pool


def pool_state(pool: Any) -> tuple[Any, Any, Any]:
    """What a change to `_pool` that httpx would honour replaces: the pool itself, its
    network backend (an SSRF guard's, a DNS pin's, a test's fake), its TLS context."""
    return (pool, getattr(pool, "_network_backend", None), getattr(pool, "_ssl_context", None))


class PoolAttribute:
    """A non-data descriptor: `transport._pool`, built on first read, then an ordinary
    instance attribute (which code may also assign, as `_core._mocked_pool` does)."""

    def __get__(self, transport: Any, owner: type | None = None) -> Any:
        if transport is None:
            return self
        from httprs._transports import AsyncBaseTransport

        settings = transport.__dict__.get("_settings", {})
        pool = build_pool(settings, isinstance(transport, AsyncBaseTransport))
        with POOL_LOCK:
            existing = transport.__dict__.get("_pool")
            if existing is not None:
                return existing  # (another thread's first read stored one meanwhile)
            record_pool(transport, pool)
        return pool
