"""httprs: a drop-in replacement for httpx on a C++ HTTP/1.1 and HTTP/2 core."""

from httprs._version import __version__  # generated from meson.build's project() version

__title__ = "httprs"
__description__ = "A drop-in replacement for httpx on a C++ HTTP/1.1 and HTTP/2 core (libuv, llhttp, nghttp2, OpenSSL)"

from httprs._alias import alias_httpx, install
from httprs._api import (
    delete,
    get,
    head,
    options,
    patch,
    post,
    put,
    query,
    request,
    stream,
    websocket,
)
from httprs._auth import Auth, BasicAuth, DigestAuth, FunctionAuth, NetRCAuth
from httprs._client import USE_CLIENT_DEFAULT, AsyncClient, Client
from httprs._config import Limits, Proxy, Timeout, create_ssl_context
from httprs._content import AsyncByteStream, ByteStream, SyncByteStream
from httprs._core import AsyncHTTPTransport, HTTPTransport
from httprs._exceptions import (
    CloseError,
    ConnectError,
    ConnectTimeout,
    CookieConflict,
    DecodingError,
    HTTPError,
    HTTPStatusError,
    HTTPXDeprecationWarning,
    InvalidURL,
    LocalProtocolError,
    NetworkError,
    PoolTimeout,
    ProtocolError,
    ProxyError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    RequestError,
    RequestNotRead,
    ResponseNotRead,
    StreamClosed,
    StreamConsumed,
    StreamError,
    TimeoutException,
    TooManyRedirects,
    TransportError,
    UnsupportedProtocol,
    WriteError,
    WriteTimeout,
)
from httprs._models import Cookies, Headers, Request, Response
from httprs._origin import Origin
from httprs._sse import EventSource, ServerSentEvent, SSEError
from httprs._status_codes import codes
from httprs._transports import (
    ASGITransport,
    AsyncBaseTransport,
    BaseTransport,
    MockTransport,
    WSGITransport,
)
from httprs._urls import URL, QueryParams

__all__ = [
    "__description__",
    "__title__",
    "__version__",
    "ASGITransport",
    "AsyncBaseTransport",
    "AsyncByteStream",
    "AsyncClient",
    "AsyncHTTPTransport",
    "Auth",
    "BaseTransport",
    "BasicAuth",
    "ByteStream",
    "Client",
    "CloseError",
    "codes",
    "ConnectError",
    "ConnectTimeout",
    "CookieConflict",
    "Cookies",
    "create_ssl_context",
    "DecodingError",
    "delete",
    "DigestAuth",
    "get",
    "head",
    "Headers",
    "HTTPError",
    "HTTPStatusError",
    "HTTPTransport",
    "InvalidURL",
    "Limits",
    "LocalProtocolError",
    "main",
    "MockTransport",
    "NetRCAuth",
    "NetworkError",
    "options",
    "patch",
    "PoolTimeout",
    "post",
    "ProtocolError",
    "Proxy",
    "ProxyError",
    "put",
    "QueryParams",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "request",
    "Request",
    "RequestError",
    "RequestNotRead",
    "Response",
    "ResponseNotRead",
    "stream",
    "StreamClosed",
    "StreamConsumed",
    "StreamError",
    "SyncByteStream",
    "Timeout",
    "TimeoutException",
    "TooManyRedirects",
    "TransportError",
    "UnsupportedProtocol",
    "URL",
    "USE_CLIENT_DEFAULT",
    "WriteError",
    "WriteTimeout",
    "WSGITransport",
    # httpx2 2.17.0 additions
    "alias_httpx",
    "EventSource",
    "FunctionAuth",
    "HTTPXDeprecationWarning",
    "Origin",
    "query",
    "ServerSentEvent",
    "SSEError",
    "websocket",
    # httprs's switch (httprs/_alias.py)
    "install",
]


def __getattr__(name: str):
    # `main` (httpx's CLI entry point) imports click, rich and pygments: only when used.
    if name == "main":
        from httprs._main import main

        globals()["main"] = main
        return main
    raise AttributeError(f"module 'httprs' has no attribute {name!r}")


def __dir__():
    # Lazy names (`main`) are listed before their first use, as in httpx.
    return sorted(set(globals()) | set(__all__))


# The names the public callables' annotation strings use, in their modules' globals
# (typing.get_type_hints): once, now that every module is imported.
from httprs import _hints  # noqa: E402

_hints.bind()
del _hints
