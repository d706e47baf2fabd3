"""The exceptions of httprs.websockets (httpx2.websockets' names and attributes)."""

from __future__ import annotations

import wsproto.events

from httprs._models import Response

__all__ = [
    "HTTPXWSException",
    "WebSocketDisconnect",
    "WebSocketInvalidTypeReceived",
    "WebSocketNetworkError",
    "WebSocketUpgradeError",
]


class HTTPXWSException(Exception):
    """Base class of every WebSocket error."""


class WebSocketUpgradeError(HTTPXWSException):
    """The server did not switch to the WebSocket protocol; `response` is its answer."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"WebSocket upgrade failed: {response.status_code}")
        self.response = response


class WebSocketDisconnect(HTTPXWSException):
    """The WebSocket session is closed: `code` and `reason` of the close frame."""

    def __init__(self, code: int = 1000, reason: str | None = None) -> None:
        super().__init__(code, reason or "")
        self.code = code
        self.reason = reason or ""


class WebSocketInvalidTypeReceived(HTTPXWSException):
    """A message of another kind than asked for arrived (text for bytes, or the reverse)."""

    def __init__(self, event: wsproto.events.Event) -> None:
        super().__init__(event)
        self.event = event


class WebSocketNetworkError(HTTPXWSException):
    """The connection under the session failed, ended or timed out."""
