"""httpx's `httpx._transports.default`: the network transports (httprs's C++ core)."""

from httprs._config import DEFAULT_LIMITS, Limits, Proxy, create_ssl_context
from httprs._core import AsyncHTTPTransport, HTTPTransport

__all__ = [
    "DEFAULT_LIMITS",
    "AsyncHTTPTransport",
    "HTTPTransport",
    "Limits",
    "Proxy",
    "create_ssl_context",
]
