"""httpx's `httpx._transports.mock`: MockTransport (httprs's own)."""

from httprs._transports import MockTransport

__all__ = ["MockTransport"]
