"""WebSockets for httprs: httpx2.websockets' API (derived from httpx-ws), on the
`network_stream` of a 101 response, with wsproto as the protocol engine.

Needs the optional `wsproto` dependency (`pip install httprs[ws]`); the async session also
uses anyio. Reachable as `httpx2.websockets` through the switch (httprs.install())."""

# httpx2's module names for these (`from httpx2.websockets import _api`, then
# `mock.patch.object(_api, "WebSocketClient")`): the very modules, so patches reach the code.
from . import _asgi as _transport  # noqa: F401
from . import _session as _api  # noqa: F401
from ._asgi import ASGIWebSocketTransport
from ._exceptions import (
    HTTPXWSException,
    WebSocketDisconnect,
    WebSocketInvalidTypeReceived,
    WebSocketNetworkError,
    WebSocketUpgradeError,
)
from ._session import (
    AsyncWebSocketClient,
    AsyncWebSocketSession,
    JSONMode,
    WebSocketClient,
    WebSocketSession,
    aconnect_ws,
    connect_ws,
)

__all__ = [
    "ASGIWebSocketTransport",
    "AsyncWebSocketClient",
    "AsyncWebSocketSession",
    "HTTPXWSException",
    "JSONMode",
    "WebSocketClient",
    "WebSocketDisconnect",
    "WebSocketInvalidTypeReceived",
    "WebSocketNetworkError",
    "WebSocketSession",
    "WebSocketUpgradeError",
    "aconnect_ws",
    "connect_ws",
]

# The names of the annotations of httpx2's `websocket()` / `Client.websocket()` (see
# httprs/_hints.py): bound in those modules' globals once this optional package is imported.
from httprs._hints import bind_names as _bind_names  # noqa: E402

for _module in ("httprs._api", "httprs._client"):
    _bind_names(
        _module,
        {"WebSocketSession": WebSocketSession, "AsyncWebSocketSession": AsyncWebSocketSession},
        replace=True,  # (this package imported again: its classes are new objects)
    )
del _bind_names, _module
