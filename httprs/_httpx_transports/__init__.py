"""httpx's private `httpx._transports` package layout, mapped onto httprs's transports.

httpx splits its transports over `httpx._transports.{base,default,mock,wsgi,asgi}`; code
imports from there (pytest-httpx and many test suites use
`httpx._transports.default.HTTPTransport`, FastAPI tests `httpx._transports.asgi`). Under
`httprs.install()` those names resolve to these modules, whose names are httprs's own
objects.
"""

from httprs._core import AsyncHTTPTransport, HTTPTransport

# httpx's package imports its transport modules, so `httpx._transports.default.X` works
# as an attribute path (monkeypatch.setattr(httpx._transports.default.HTTPTransport, ...)).
from httprs._httpx_transports import asgi, base, default, mock, wsgi  # noqa: F401
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
