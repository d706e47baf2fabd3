"""ASGIWebSocketTransport: an ASGITransport that also runs an ASGI app's WebSocket
endpoints in-process, for tests (httpx2.websockets' class of that name).

A WebSocket handshake request (a ws:// or wss:// URL, or `Upgrade: websocket`) starts the
app with a "websocket" scope in the transport's task group (so the transport must be
entered: `async with AsyncClient(transport=...)`). Once the app accepts, the request gets
a 101 whose `network_stream` carries real WebSocket frames: what the client writes is
decoded by a server-side wsproto connection into `websocket.receive` messages, and what
the app sends is framed back to it. An app that closes before accepting gets a 403.
"""

from __future__ import annotations

import base64
import hashlib
import math
import weakref

import wsproto
from wsproto.connection import ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage

from httprs._models import Response
from httprs._transports import ASGITransport

__all__ = ["ASGIWebSocketTransport"]

_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _is_websocket(request) -> bool:
    if request.url.scheme in ("ws", "wss"):
        return True
    return request.headers.get("upgrade", "").strip().lower() == "websocket"


class _AppStream:
    """The client's network stream to one running WebSocket endpoint."""

    def __init__(self, app, scope) -> None:
        import anyio

        self.app = app
        self.scope = scope
        self.protocol = wsproto.Connection(ConnectionType.SERVER)
        self._to_app, self._app_inbox = anyio.create_memory_object_stream(math.inf)
        self._to_client, self._client_inbox = anyio.create_memory_object_stream(math.inf)
        self._to_app.send_nowait({"type": "websocket.connect"})
        self.handshake = anyio.Event()
        self.accepted: dict | None = None
        self.denial: dict | None = None
        self.error: BaseException | None = None
        self._parts: list = []
        self._pending = b""
        self._disconnected = False

    # -- the app's side ---------------------------------------------------------------

    async def run(self) -> None:
        import anyio

        try:
            await self.app(self.scope, self._receive, self._send)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as e:  # reported to the client by the transport
            self.error = e
        finally:
            self.handshake.set()
            self._to_client.close()
            self._to_app.close()
            self._app_inbox.close()

    async def _receive(self) -> dict:
        import anyio

        try:
            return await self._app_inbox.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return {"type": "websocket.disconnect", "code": 1006}

    async def _send(self, message: dict) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            self.accepted = message
            self.handshake.set()
        elif kind == "websocket.http.response.start" and self.accepted is None:
            self.denial = {"status": message["status"], "headers": message.get("headers", [])}
            self.denial["body"] = b""
        elif kind == "websocket.http.response.body" and self.denial is not None:
            self.denial["body"] += message.get("body", b"")
            if not message.get("more_body", False):
                self.handshake.set()
        elif kind == "websocket.send":
            if message.get("text") is not None:
                event = TextMessage(data=message["text"])
            else:
                event = BytesMessage(data=message.get("bytes") or b"")
            self._frame(event)
        elif kind == "websocket.close":
            if self.accepted is None:
                self.handshake.set()  # denied: 403
            elif self.protocol.state is ConnectionState.OPEN:
                self._frame(CloseConnection(message.get("code", 1000), message.get("reason")))

    def _frame(self, event) -> None:
        if self.protocol.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            self._to_client.send_nowait(self.protocol.send(event))
        if self.protocol.state is ConnectionState.CLOSED:
            self._to_client.close()

    def _to_app_nowait(self, message: dict) -> None:
        import anyio

        try:
            self._to_app.send_nowait(message)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    # -- the client's side (httpcore's AsyncNetworkStream) ----------------------------

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        import anyio

        if not self._pending:
            try:
                with anyio.fail_after(timeout):
                    self._pending = await self._client_inbox.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                return b""
        data, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.protocol.receive_data(bytes(buffer))
        for event in self.protocol.events():
            if isinstance(event, Ping):
                self._frame(event.response())
            elif isinstance(event, CloseConnection):
                if self.protocol.state is ConnectionState.REMOTE_CLOSING:
                    self._frame(event.response())
                self._disconnect(event.code, event.reason)
            elif isinstance(event, Message):
                self._parts.append(event.data)
                if event.message_finished:
                    joined = ("" if isinstance(event.data, str) else b"").join(self._parts)
                    self._parts = []
                    key = "text" if isinstance(joined, str) else "bytes"
                    self._to_app_nowait({"type": "websocket.receive", key: joined})

    def _disconnect(self, code: int, reason: str | None = None) -> None:
        if not self._disconnected:
            self._disconnected = True
            self._to_app_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
            self._to_app.close()

    async def aclose(self) -> None:
        self._disconnect(1006)
        self._to_client.close()
        self._client_inbox.close()
        self._to_app.close()
        self._app_inbox.close()

    async def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        raise NotImplementedError("an ASGI WebSocket stream has no TLS")

    def get_extra_info(self, info: str):
        return None


class ASGIWebSocketTransport(ASGITransport):
    """ASGITransport plus in-process WebSocket endpoints (enter it before use)."""

    def __init__(
        self,
        app,
        raise_app_exceptions: bool = True,
        root_path: str = "",
        client: tuple[str, int] = ("127.0.0.1", 123),
        initial_receive_timeout: float = 1.0,
    ) -> None:
        super().__init__(app, raise_app_exceptions, root_path, client)
        self.initial_receive_timeout = initial_receive_timeout
        self._task_group = None
        self._streams: weakref.WeakSet[_AppStream] = weakref.WeakSet()  # closed on exit

    async def __aenter__(self):
        import anyio

        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        return self

    async def __aexit__(self, exc_type=None, exc_value=None, traceback=None) -> None:
        group, self._task_group = self._task_group, None
        streams, self._streams = list(self._streams), weakref.WeakSet()
        for stream in streams:
            await stream.aclose()
        if group is not None:
            group.cancel_scope.cancel()
            await group.__aexit__(None, None, None)

    async def handle_async_request(self, request):
        if not _is_websocket(request):
            return await super().handle_async_request(request)
        if self._task_group is None:
            raise RuntimeError(
                "ASGIWebSocketTransport runs WebSocket endpoints in a task group: enter it "
                "first (`async with AsyncClient(transport=...)` or `async with transport`)."
            )
        import anyio

        url = request.url
        offered = request.headers.get("sec-websocket-protocol")
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "root_path": self.root_path,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": self.client,
            "server": (url.host, url.port),
            "subprotocols": [p.strip() for p in offered.split(",")] if offered else [],
        }
        stream = _AppStream(self.app, scope)
        self._streams.add(stream)
        self._task_group.start_soon(stream.run)
        with anyio.fail_after(self.initial_receive_timeout):
            await stream.handshake.wait()
        if stream.accepted is None or stream.error is not None:
            await stream.aclose()
        if stream.error is not None and self.raise_app_exceptions:
            raise stream.error
        if stream.accepted is None:
            if stream.denial is not None:
                return Response(
                    stream.denial["status"],
                    headers=stream.denial["headers"],
                    content=stream.denial["body"],
                )
            return Response(403)
        key = request.headers.get("sec-websocket-key", "").encode("ascii")
        accept = base64.b64encode(hashlib.sha1(key + _ACCEPT_GUID).digest())
        headers = [
            (b"upgrade", b"websocket"),
            (b"connection", b"upgrade"),
            (b"sec-websocket-accept", accept),
        ]
        if stream.accepted.get("subprotocol"):
            headers.append((b"sec-websocket-protocol", stream.accepted["subprotocol"].encode()))
        headers.extend(stream.accepted.get("headers") or [])
        return Response(101, headers=headers, extensions={"network_stream": stream})
