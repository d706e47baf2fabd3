"""httpx's private `httpx._transports` package layout, mapped onto httprs's transports.

httpx splits its transports over `httpx._transports.{base,default,mock,wsgi,asgi}`; code
imports from there (pytest-httpx and many test suites use
`httpx._transports.default.HTTPTransport`, FastAPI tests `httpx._transports.asgi`). Under
`httprs.install()` those names resolve to these modules, whose names are httprs's own
objects.
"""

from httprs._core import AsyncHTTPTransport, HTTPTransport
from httprs._transports import (
    ASGITransport,
    AsyncBaseTransport,
    BaseTransport,
    MockTransport,
    WSGITransport,
)

__all__ = [
    "ASGITransport",
    "AsyncBaseTransport",
    "AsyncHTTPTransport",
    "BaseTransport",
    "HTTPTransport",
    "MockTransport",
    "WSGITransport",
]
