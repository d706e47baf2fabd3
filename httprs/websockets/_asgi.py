"""In-process WebSocket endpoints of an ASGI app, for tests: `ASGIWebSocketTransport`
(an ASGITransport that also serves WebSocket handshakes) and the network stream it hands
out, `ASGIWebSocketAsyncNetworkStream` (httpx2.websockets._transport's names).

The stream runs the app with a "websocket" scope in a task group and is the app's peer:
the WebSocket frames the client writes are decoded by a server-side wsproto connection
into `websocket.receive` / `websocket.disconnect` messages, and each message the app sends
is framed back to the client. Entering the stream (`async with`) waits for the app's
answer to `websocket.connect`: it gives `(stream, the 101 head as bytes)` once the app
accepts, and raises `WebSocketDisconnect` if it closes first, `WebSocketUpgradeError` with
the app's response if it denies the upgrade (the ASGI WebSocket Denial Response), and
RuntimeError if it says nothing in time. The transport turns the first two into the
response a real server would give (403, or the denial response) and re-raises an app's
exception when `raise_app_exceptions` is set, as ASGITransport does for HTTP.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

import anyio
import wsproto
from anyio.streams.memory import MemoryObjectSendStream
from anyio.streams.stapled import StapledObjectStream
from wsproto import events as ws
from wsproto.frame_protocol import CloseReason

from httprs._exceptions import ReadError
from httprs._models import Request, Response
from httprs._transports import ASGITransport, _ASGIApp

from ._exceptions import WebSocketDisconnect, WebSocketUpgradeError

__all__ = [
    "ASGIWebSocketAsyncNetworkStream",
    "ASGIWebSocketTransport",
    "ASGIWebSocketTransportError",
    "UnhandledASGIMessageType",
    "UnhandledWebSocketEvent",
]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Coroutine[None, None, None]]
ASGIApp = Callable[[Scope, Receive, Send], Coroutine[None, None, None]]

_CLOSED = (anyio.ClosedResourceError, anyio.BrokenResourceError)


class ASGIWebSocketTransportError(Exception):
    """The app and the client stream disagree on what may be exchanged."""


class UnhandledASGIMessageType(ASGIWebSocketTransportError):
    """The app sent a message a WebSocket endpoint may not send."""

    def __init__(self, message: Message) -> None:
        super().__init__(f"unexpected ASGI message from the app: {message.get('type')!r}")
        self.message = message


class UnhandledWebSocketEvent(ASGIWebSocketTransportError):
    """The client wrote a WebSocket event the stream cannot pass to the app."""

    def __init__(self, event: wsproto.events.Event) -> None:
        super().__init__(f"unexpected WebSocket event from the client: {event!r}")
        self.event = event


def _queue() -> StapledObjectStream[Any]:
    """An unbounded queue of ASGI messages (and, app -> client, the stream's own frames)."""
    return StapledObjectStream(*anyio.create_memory_object_stream(math.inf))


class ASGIWebSocketAsyncNetworkStream:
    """One running WebSocket endpoint, seen from the client as an httpcore-style
    `AsyncNetworkStream` (`read`, `write`, `aclose`, `get_extra_info`)."""

    def __init__(
        self,
        app: ASGIApp,
        scope: Scope,
        task_group: anyio.abc.TaskGroup,
        initial_receive_timeout: float = 1.0,
    ) -> None:
        self.app = app
        self.scope = scope
        self._task_group = task_group
        self._initial_receive_timeout = initial_receive_timeout
        self._receive_queue = _queue()  # client -> app: what the app's `receive()` gets
        self._send_queue = _queue()  # app -> client: what the app's `send()` put
        self.connection = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        self.connection.initiate_upgrade_connection(scope["headers"], scope["path"])
        self.app_error: Exception | None = None
        self._entered = False
        self._disconnected = False
        self._parts: list[Any] = []  # one message's fragments: all str or all bytes
        self._pending = b""

    # -- the handshake ----------------------------------------------------------------

    async def __aenter__(self) -> tuple[ASGIWebSocketAsyncNetworkStream, bytes]:
        if self._entered:
            raise RuntimeError("an ASGIWebSocketAsyncNetworkStream is a context manager twice")
        self._entered = True
        self._task_group.start_soon(self._run)
        try:
            await self.send({"type": "websocket.connect"})
            return self, await self._handshake()
        except BaseException:
            await self.aclose()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _handshake(self) -> bytes:
        try:
            message = await self.receive(self._initial_receive_timeout)
        except (TimeoutError, anyio.EndOfStream) as e:
            raise RuntimeError(
                "the WebSocket app neither accepted nor closed the connection in time "
                "(does it call accept()?)"
            ) from e
        kind = message.get("type")
        if kind == "websocket.accept":
            event = ws.AcceptConnection(
                subprotocol=message.get("subprotocol"), extra_headers=message.get("headers") or []
            )
            return self.connection.send(event)
        if kind == "websocket.close":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
        if kind == "websocket.http.response.start":
            raise WebSocketUpgradeError(await self._denial(message))
        raise UnhandledASGIMessageType(message)

    async def _denial(self, start: Message) -> Response:
        body = []
        while True:
            message = await self.receive(self._initial_receive_timeout)
            if message.get("type") != "websocket.http.response.body":
                raise UnhandledASGIMessageType(message)
            body.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        return Response(
            start["status"], headers=start.get("headers") or [], content=b"".join(body)
        )

    async def _run(self) -> None:
        try:
            await self.app(self.scope, self._receive_queue.receive, self._send_queue.send)
        except Exception as e:  # the app failed: the client sees an internal-error close
            self.app_error = e
            close = {
                "type": "websocket.close",
                "code": CloseReason.INTERNAL_ERROR,
                "reason": str(e),
            }
            with contextlib.suppress(*_CLOSED):
                await self._send_queue.send(close)
        finally:
            # The app has returned: whatever the client reads next is the end of the stream.
            with contextlib.suppress(*_CLOSED):
                await self._send_queue.send_stream.aclose()

    # -- the app's side, for callers that play the client by hand ---------------------

    async def send(self, message: Message) -> None:
        """Give `message` to the app (what its `receive()` returns next)."""
        await self._receive_queue.send(message)

    async def receive(self, timeout: float | None = None) -> Message:
        """The next message the app sent; TimeoutError after `timeout` seconds."""
        with anyio.fail_after(math.inf if timeout is None else timeout):
            message: Message = await self._send_queue.receive()
            return message

    # -- the client's side (httpcore's AsyncNetworkStream) ----------------------------

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if not self._pending:
            try:
                message = await self.receive(timeout)
            except anyio.EndOfStream:
                return b""
            except anyio.ClosedResourceError as e:
                raise ReadError("the ASGI WebSocket stream is closed") from e
            if isinstance(message, bytes):  # a frame of the stream's own (a pong)
                self._pending = message
            else:
                self._pending = self.connection.send(self._event_for(message))
        data, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        return data

    @staticmethod
    def _event_for(message: Message) -> wsproto.events.Event:
        kind = message.get("type")
        if kind == "websocket.send":
            if message.get("text") is not None:
                return ws.TextMessage(data=message["text"])
            return ws.BytesMessage(data=message.get("bytes") or b"")
        if kind == "websocket.close":
            return ws.CloseConnection(message.get("code", 1000), message.get("reason") or "")
        raise UnhandledASGIMessageType(message)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.connection.receive_data(bytes(buffer))
        for event in self.connection.events():
            await self._deliver(event)

    async def _deliver(self, event: wsproto.events.Event) -> None:
        if isinstance(event, (ws.Request, ws.Pong)):
            return  # the handshake request (already answered); an unsolicited pong
        if isinstance(event, ws.Ping):
            # Answered as a real server does (RFC 6455 5.5.2; ASGI apps never see pings),
            # queued with the app's messages so a waiting reader wakes up for it.
            with contextlib.suppress(anyio.WouldBlock, *_CLOSED):
                pong = self.connection.send(event.response())
                cast("MemoryObjectSendStream[Any]", self._send_queue.send_stream).send_nowait(pong)
        elif isinstance(event, ws.CloseConnection):
            await self._disconnect(event.code, event.reason)
        elif isinstance(event, ws.Message):
            self._parts.append(event.data)
            if event.message_finished:
                parts, self._parts = self._parts, []
                if isinstance(event.data, str):
                    await self.send({"type": "websocket.receive", "text": "".join(parts)})
                else:
                    await self.send({"type": "websocket.receive", "bytes": b"".join(parts)})
        else:
            raise UnhandledWebSocketEvent(event)

    async def _disconnect(self, code: int, reason: str | None) -> None:
        if not self._disconnected:
            self._disconnected = True
            with contextlib.suppress(*_CLOSED):
                await self.send({
                    "type": "websocket.disconnect",
                    "code": code,
                    "reason": reason or "",
                })

    async def aclose(self) -> None:
        await self._disconnect(CloseReason.ABNORMAL_CLOSURE, None)
        await self._receive_queue.aclose()
        await self._send_queue.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: Any = None, timeout: Any = None
    ) -> Any:
        raise NotImplementedError("an ASGI WebSocket stream has no TLS")

    def get_extra_info(self, info: str) -> Any:
        return None


def _is_websocket(request: Request) -> bool:
    if request.url.scheme in ("ws", "wss"):
        return True
    upgrade: str = request.headers.get("upgrade", "")
    return upgrade.strip().lower() == "websocket"


def _head_headers(head: bytes) -> list[tuple[bytes, bytes]]:
    """The header fields of an HTTP/1.1 response head."""
    lines = head.split(b"\r\n")[1:]
    return [
        (name.strip(), value.strip())
        for name, _, value in (ln.partition(b":") for ln in lines if ln)
    ]


class ASGIWebSocketTransport(ASGITransport):
    """ASGITransport plus in-process WebSocket endpoints (enter it before use: the
    endpoints run in its task group, and leaving it closes them)."""

    def __init__(
        self,
        app: _ASGIApp,
        raise_app_exceptions: bool = True,
        root_path: str = "",
        client: tuple[str, int] = ("127.0.0.1", 123),
        initial_receive_timeout: float = 1.0,
    ) -> None:
        super().__init__(app, raise_app_exceptions, root_path, client)
        self.initial_receive_timeout = initial_receive_timeout
        self._task_group: anyio.abc.TaskGroup | None = None
        self._streams: list[ASGIWebSocketAsyncNetworkStream] = []

    async def __aenter__(self) -> ASGIWebSocketTransport:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        group, self._task_group = self._task_group, None
        streams, self._streams = self._streams, []
        for stream in streams:
            await stream.aclose()
        if group is not None:
            group.cancel_scope.cancel()
            await group.__aexit__(None, None, None)

    def _websocket_scope(self, request: Request) -> Scope:
        # Not `_scope`: ASGITransport's own `_scope` builds the scope of plain HTTP requests.
        url = request.url
        offered = request.headers.get("sec-websocket-protocol")
        return {
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

    async def handle_async_request(self, request: Request) -> Response:
        if not _is_websocket(request):
            return await super().handle_async_request(request)
        if self._task_group is None:
            raise RuntimeError(
                "ASGIWebSocketTransport runs WebSocket endpoints in a task group: enter it "
                "first (`async with AsyncClient(transport=...)` or `async with transport`)."
            )
        stream = ASGIWebSocketAsyncNetworkStream(
            cast("ASGIApp", self.app),
            self._websocket_scope(request),
            self._task_group,
            self.initial_receive_timeout,
        )
        try:
            _, head = await stream.__aenter__()
        except (WebSocketDisconnect, WebSocketUpgradeError) as refused:
            if stream.app_error is not None and self.raise_app_exceptions:
                raise stream.app_error from None
            if isinstance(refused, WebSocketUpgradeError):
                return refused.response  # the app's denial response
            return Response(403)  # closed before accepting: what an ASGI server answers
        self._streams.append(stream)
        return Response(101, headers=_head_headers(head), extensions={"network_stream": stream})
