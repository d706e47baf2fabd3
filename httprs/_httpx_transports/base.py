"""httpx's `httpx._transports.base`: the transport base classes (httprs's own)."""

from httprs._transports import AsyncBaseTransport, BaseTransport

__all__ = ["AsyncBaseTransport", "BaseTransport"]
