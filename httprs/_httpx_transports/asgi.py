"""httpx's `httpx._transports.asgi`: ASGITransport (httprs's own)."""

from httprs._transports import ASGIResponseStream, ASGITransport

__all__ = ["ASGIResponseStream", "ASGITransport"]
