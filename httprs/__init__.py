"""httprs: a drop-in replacement for httpx on a C++ HTTP/1.1 core."""

__version__ = "0.1.0"
__title__ = "httprs"
__description__ = "A drop-in replacement for httpx on a C++ HTTP/1.1 core (libuv, llhttp, OpenSSL)"

from httprs._config import Limits, Proxy, Timeout, create_ssl_context
from httprs._exceptions import (
    CloseError,
    ConnectError,
    ConnectTimeout,
    CookieConflict,
    DecodingError,
    HTTPError,
    HTTPStatusError,
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
from httprs._status_codes import codes
