"""httpx's `httpx._transports.wsgi`: WSGITransport (httprs's own)."""

from httprs._transports import WSGIByteStream, WSGITransport

__all__ = ["WSGIByteStream", "WSGITransport"]
