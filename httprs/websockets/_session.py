"""WebSocket sessions over a response's `network_stream`, with wsproto as the protocol
engine: the API of httpx2.websockets (itself derived from httpx-ws), written for httprs.

A session owns the stream of a `101 Switching Protocols` response. A background reader
(a thread, or a task in the session's task group) turns frames into events: it answers
pings, acknowledges pongs, reassembles fragmented messages (bounded by
`max_message_size_bytes`, past which the session closes with 1009) and queues complete
messages (at most `queue_size`; reading pauses while the queue is full). A close frame
from the server is answered and ends the session: `receive*()` then raises
`WebSocketDisconnect(code, reason)` once the queued messages are consumed. A failed,
ended or silent connection (keepalive pings unanswered) raises `WebSocketNetworkError`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import queue
import secrets
import sys
import threading
from typing import Any, Literal

import wsproto
from wsproto.connection import ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason

from httprs._client import USE_CLIENT_DEFAULT
from httprs._exceptions import TransportError
from httprs._models import Headers

from ._exceptions import (
    HTTPXWSException,
    WebSocketDisconnect,
    WebSocketInvalidTypeReceived,
    WebSocketNetworkError,
    WebSocketUpgradeError,
)

__all__ = [
    "AsyncWebSocketClient",
    "AsyncWebSocketSession",
    "JSONMode",
    "WebSocketClient",
    "WebSocketSession",
    "aconnect_ws",
    "connect_ws",
]

JSONMode = Literal["text", "binary"]

DEFAULT_MAX_MESSAGE_SIZE_BYTES = 65_536
DEFAULT_QUEUE_SIZE = 512
DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS = 20.0
DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS = 20.0

_READ_SIZE = 65_536
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


def _in_process(stream) -> bool:
    """True for the stream of an in-process ASGI endpoint (ASGIWebSocketTransport)."""
    from ._asgi import ASGIWebSocketAsyncNetworkStream

    return isinstance(stream, ASGIWebSocketAsyncNetworkStream)


def _stream_errors() -> tuple[type[BaseException], ...]:
    """What a network stream raises when the connection fails: httprs's transport
    errors, and httpcore's / httpcore2's when a stream of theirs is in use."""
    errors: list[type[BaseException]] = [TransportError, OSError]
    for name in ("httpcore", "httpcore2"):
        mod = sys.modules.get(name)
        if mod is not None:
            errors.extend((mod.NetworkError, mod.TimeoutException))
    return tuple(errors)


class _Inbound:
    """Bytes from the server -> actions for a session (sync and async share it).

    `feed(data)` returns a list of (kind, value): ("reply", bytes to send),
    ("pong", payload acknowledged), ("message", a complete Message event),
    ("end", the exception that ends the session)."""

    def __init__(self, connection: wsproto.Connection, limit: int) -> None:
        self.connection = connection
        self.limit = limit
        self.parts: list[str | bytes] = []
        self.size = 0

    def feed(self, data: bytes) -> list[tuple[str, Any]]:
        self.connection.receive_data(data)
        actions: list[tuple[str, Any]] = []
        for event in self.connection.events():
            if isinstance(event, Ping):
                actions.append(("reply", self.connection.send(event.response())))
            elif isinstance(event, Pong):
                actions.append(("pong", bytes(event.payload)))
            elif isinstance(event, CloseConnection):
                if self.connection.state is ConnectionState.REMOTE_CLOSING:
                    actions.append(("reply", self.connection.send(event.response())))
                actions.append(("end", WebSocketDisconnect(event.code, event.reason)))
                return actions
            elif isinstance(event, Message):
                message = self._assemble(event)
                if message is _TOO_BIG:
                    reason = "Message too big"
                    if self.connection.state is ConnectionState.OPEN:
                        close = CloseConnection(CloseReason.MESSAGE_TOO_BIG, reason)
                        actions.append(("reply", self.connection.send(close)))
                    actions.append((
                        "end",
                        WebSocketDisconnect(CloseReason.MESSAGE_TOO_BIG, reason),
                    ))
                    return actions
                if message is not None:
                    actions.append(("message", message))
        return actions

    def _assemble(self, event: Message):
        data = event.data
        self.size += len(data.encode("utf-8")) if isinstance(data, str) else len(data)
        if self.size > self.limit:
            return _TOO_BIG
        if not event.message_finished:
            self.parts.append(data)
            return None
        if self.parts:
            self.parts.append(data)
            joined = ("" if isinstance(data, str) else b"").join(self.parts)
            event = type(event)(data=joined)
        self.parts = []
        self.size = 0
        return event


_TOO_BIG = object()
_WAKE = object()  # queued to wake a blocked receive() once the session has ended


def _expect_type(event, kind):
    if not isinstance(event, kind):
        raise WebSocketInvalidTypeReceived(event)
    return event.data


def _load_json(event, mode: JSONMode):
    if mode not in ("text", "binary"):
        raise ValueError("mode must be 'text' or 'binary'")
    data = _expect_type(event, TextMessage if mode == "text" else BytesMessage)
    return json.loads(data)


def _dump_json(data: Any, mode: JSONMode) -> TextMessage | BytesMessage:
    if mode not in ("text", "binary"):
        raise ValueError("mode must be 'text' or 'binary'")
    text = json.dumps(data)
    return TextMessage(data=text) if mode == "text" else BytesMessage(data=text.encode("utf-8"))


class _SessionBase:
    """What the sync and async sessions share: the stream, the wsproto connection, the
    accepted subprotocol, the settings, and the pings waiting for their pong."""

    _pings: dict[bytes, Any]

    def _setup(
        self,
        stream,
        response,
        max_message_size_bytes: int,
        queue_size: int,
        keepalive_ping_interval_seconds: float | None,
        keepalive_ping_timeout_seconds: float | None,
    ) -> None:
        self.stream = stream
        self.connection = wsproto.Connection(ConnectionType.CLIENT)
        self.response = response
        self.subprotocol = (
            response.headers.get("sec-websocket-protocol") if response is not None else None
        )
        self._max_message_size_bytes = max_message_size_bytes
        self._queue_size = queue_size
        if _in_process(stream):
            keepalive_ping_interval_seconds = None  # nothing to keep alive (as httpx2)
        self._keepalive_ping_interval_seconds = keepalive_ping_interval_seconds
        self._keepalive_ping_timeout_seconds = keepalive_ping_timeout_seconds
        self._pings = {}

    def _pong(self, payload: bytes) -> None:
        waiter = self._pings.pop(payload, None)
        if waiter is not None:
            waiter.set()


class WebSocketSession(_SessionBase):
    """A WebSocket session over a sync network stream (`with` closes it).

    `subprotocol` is the one the server accepted (or None), `response` the 101."""

    def __init__(
        self,
        stream,
        *,
        max_message_size_bytes: int = DEFAULT_MAX_MESSAGE_SIZE_BYTES,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        keepalive_ping_interval_seconds: float | None = DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS,
        keepalive_ping_timeout_seconds: float | None = DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS,
        response=None,
    ) -> None:
        self._setup(
            stream,
            response,
            max_message_size_bytes,
            queue_size,
            keepalive_ping_interval_seconds,
            keepalive_ping_timeout_seconds,
        )
        self._events: queue.Queue = queue.Queue(queue_size)
        self._lock = threading.Lock()  # the wsproto connection and writes to the stream
        self._stopping = threading.Event()
        self._ended: HTTPXWSException | None = None
        self._threads: list[threading.Thread] = []

    # -- lifetime ---------------------------------------------------------------------

    def __enter__(self) -> WebSocketSession:
        self._spawn(self._read_loop)
        if self._keepalive_ping_interval_seconds is not None:
            self._spawn(self._keepalive_loop)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()

    def _spawn(self, target) -> None:
        thread = threading.Thread(target=target, name="httprs-websocket", daemon=True)
        self._threads.append(thread)
        thread.start()

    def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Send a close frame (unless the session is closed already) and close the stream."""
        with self._lock:
            already = self._stopping.is_set()
            self._stopping.set()
            if self.connection.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
                data = self.connection.send(CloseConnection(code, reason))
                with contextlib.suppress(*_stream_errors()):
                    self.stream.write(data)
        if not already:
            self._end(WebSocketDisconnect(code, reason))
            self.stream.close()

    # -- sending ----------------------------------------------------------------------

    def send(self, event) -> None:
        """Send a wsproto event."""
        try:
            with self._lock:
                self.stream.write(self.connection.send(event))
        except _stream_errors() as e:
            self.close(CloseReason.INTERNAL_ERROR, "Stream write error")
            raise WebSocketNetworkError() from e

    def send_text(self, data: str) -> None:
        self.send(TextMessage(data=data))

    def send_bytes(self, data: bytes) -> None:
        self.send(BytesMessage(data=data))

    def send_json(self, data: Any, mode: JSONMode = "text") -> None:
        self.send(_dump_json(data, mode))

    def ping(self, payload: bytes = b"") -> threading.Event:
        """Send a ping; the returned event is set when its pong arrives."""
        payload = payload or secrets.token_bytes(16)
        waiter = threading.Event()
        self._pings[payload] = waiter
        self.send(Ping(payload=payload))
        return waiter

    # -- receiving --------------------------------------------------------------------

    def receive(self, timeout: float | None = None):
        """The next message event; TimeoutError if none came within `timeout`."""
        if self._ended is not None:
            try:
                item = self._events.get_nowait()
            except queue.Empty:
                raise self._ended from None
        else:
            try:
                item = self._events.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError from None
        if item is _WAKE:
            raise self._ended
        return item

    def receive_text(self, timeout: float | None = None) -> str:
        return _expect_type(self.receive(timeout), TextMessage)

    def receive_bytes(self, timeout: float | None = None) -> bytes:
        return _expect_type(self.receive(timeout), BytesMessage)

    def receive_json(self, timeout: float | None = None, mode: JSONMode = "text") -> Any:
        return _load_json(self.receive(timeout), mode)

    # -- background -------------------------------------------------------------------

    def _end(self, error: HTTPXWSException) -> None:
        if self._ended is None:
            self._ended = error
            with contextlib.suppress(queue.Full):
                self._events.put_nowait(_WAKE)

    def _queue(self, item) -> bool:
        while not self._stopping.is_set():
            try:
                self._events.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read_loop(self) -> None:
        inbound = _Inbound(self.connection, self._max_message_size_bytes)
        errors = _stream_errors()
        try:
            while not self._stopping.is_set():
                data = self.stream.read(_READ_SIZE)
                if not data:  # EOF without a close frame
                    raise WebSocketNetworkError("the connection ended")
                with self._lock:
                    actions = inbound.feed(data)
                    for kind, value in actions:
                        if kind == "reply":
                            self.stream.write(value)
                if not self._act(actions):
                    return
        except errors as e:
            if not self._stopping.is_set():
                self._fail(WebSocketNetworkError(str(e)), e)
        except WebSocketNetworkError as e:
            self._fail(e, None)

    def _act(self, actions) -> bool:
        """Deliver what `feed` found; False once the session has ended."""
        for kind, value in actions:
            if kind == "pong":
                self._pong(value)
            elif kind == "message":
                if not self._queue(value):
                    return False
            elif kind == "end":
                self._stopping.set()
                self._end(value)
                return False
        return True

    def _fail(self, error: WebSocketNetworkError, cause) -> None:
        error.__cause__ = cause
        self._end(error)
        self._stopping.set()
        self.stream.close()

    def _keepalive_loop(self) -> None:
        interval = self._keepalive_ping_interval_seconds
        timeout = self._keepalive_ping_timeout_seconds
        while not self._stopping.wait(interval):
            try:
                waiter = self.ping()
            except (HTTPXWSException, wsproto.utilities.LocalProtocolError):
                return
            if timeout is None:
                continue
            deadline_hit = not waiter.wait(timeout)
            if deadline_hit and not self._stopping.is_set():
                self._end(WebSocketNetworkError("keepalive ping timeout"))
                self.close(CloseReason.INTERNAL_ERROR, "Keepalive ping timeout")
                return


class AsyncWebSocketSession(_SessionBase):
    """A WebSocket session over an async network stream (`async with` closes it).
    Runs on asyncio and trio (through anyio)."""

    def __init__(
        self,
        stream,
        *,
        max_message_size_bytes: int = DEFAULT_MAX_MESSAGE_SIZE_BYTES,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        keepalive_ping_interval_seconds: float | None = DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS,
        keepalive_ping_timeout_seconds: float | None = DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS,
        response=None,
    ) -> None:
        import anyio

        self._setup(
            stream,
            response,
            max_message_size_bytes,
            queue_size,
            keepalive_ping_interval_seconds,
            keepalive_ping_timeout_seconds,
        )
        self._send_events, self._receive_events = anyio.create_memory_object_stream(
            queue_size if queue_size > 0 else math.inf
        )
        self._lock = anyio.Lock()
        self._stopping = False
        self._ended: HTTPXWSException | None = None
        self._task_group = None

    async def __aenter__(self) -> AsyncWebSocketSession:
        import anyio

        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._read_loop)
        if self._keepalive_ping_interval_seconds is not None:
            self._task_group.start_soon(self._keepalive_loop)
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        try:
            await self.close()
        finally:
            self._task_group.cancel_scope.cancel()
            try:
                await self._task_group.__aexit__(None, None, None)
            finally:
                self._send_events.close()
                self._receive_events.close()

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Send a close frame (unless the session is closed already) and close the stream."""
        async with self._lock:
            already = self._stopping
            self._stopping = True
            if self.connection.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
                data = self.connection.send(CloseConnection(code, reason))
                with contextlib.suppress(*_stream_errors()):
                    await self.stream.write(data)
        if not already:
            self._end(WebSocketDisconnect(code, reason))
            await self.stream.aclose()

    async def send(self, event) -> None:
        try:
            async with self._lock:
                await self.stream.write(self.connection.send(event))
        except _stream_errors() as e:
            await self.close(CloseReason.INTERNAL_ERROR, "Stream write error")
            raise WebSocketNetworkError() from e

    async def send_text(self, data: str) -> None:
        await self.send(TextMessage(data=data))

    async def send_bytes(self, data: bytes) -> None:
        await self.send(BytesMessage(data=data))

    async def send_json(self, data: Any, mode: JSONMode = "text") -> None:
        await self.send(_dump_json(data, mode))

    async def ping(self, payload: bytes = b""):
        """Send a ping; the returned anyio.Event is set when its pong arrives."""
        import anyio

        payload = payload or secrets.token_bytes(16)
        waiter = anyio.Event()
        self._pings[payload] = waiter
        await self.send(Ping(payload=payload))
        return waiter

    async def receive(self, timeout: float | None = None):
        import anyio

        try:
            with anyio.fail_after(timeout):
                return await self._receive_events.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise self._ended or WebSocketNetworkError() from None

    async def receive_text(self, timeout: float | None = None) -> str:
        return _expect_type(await self.receive(timeout), TextMessage)

    async def receive_bytes(self, timeout: float | None = None) -> bytes:
        return _expect_type(await self.receive(timeout), BytesMessage)

    async def receive_json(self, timeout: float | None = None, mode: JSONMode = "text") -> Any:
        return _load_json(await self.receive(timeout), mode)

    def _end(self, error: HTTPXWSException) -> None:
        if self._ended is None:
            self._ended = error
            # Queued messages stay readable; then receive() raises `error`.
            self._send_events.close()

    async def _read_loop(self) -> None:
        import anyio

        inbound = _Inbound(self.connection, self._max_message_size_bytes)
        errors = _stream_errors()
        try:
            while not self._stopping:
                data = await self.stream.read(_READ_SIZE)
                if not data:  # EOF without a close frame
                    raise WebSocketNetworkError("the connection ended")
                async with self._lock:
                    actions = inbound.feed(data)
                    for kind, value in actions:
                        if kind == "reply":
                            await self.stream.write(value)
                for kind, value in actions:
                    if kind == "pong":
                        self._pong(value)
                    elif kind == "message":
                        await self._send_events.send(value)
                    elif kind == "end":
                        self._stopping = True
                        self._end(value)
                        return
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return
        except errors as e:
            if not self._stopping:
                error = WebSocketNetworkError(str(e))
                error.__cause__ = e
                await self._fail(error)
        except WebSocketNetworkError as e:
            await self._fail(e)

    async def _fail(self, error: WebSocketNetworkError) -> None:
        self._end(error)
        self._stopping = True
        await self.stream.aclose()

    async def _keepalive_loop(self) -> None:
        import anyio

        while not self._stopping:
            await anyio.sleep(self._keepalive_ping_interval_seconds)
            if self._stopping:
                return
            try:
                waiter = await self.ping()
            except (HTTPXWSException, wsproto.utilities.LocalProtocolError):
                return
            if self._keepalive_ping_timeout_seconds is None:
                continue
            with anyio.move_on_after(self._keepalive_ping_timeout_seconds):
                await waiter.wait()
            if not waiter.is_set() and not self._stopping:
                self._end(WebSocketNetworkError("keepalive ping timeout"))
                await self.close(CloseReason.INTERNAL_ERROR, "Keepalive ping timeout")
                return


# ---------------------------------------------------------------------- connecting


def _handshake_headers(headers, subprotocols: list[str] | None) -> tuple[Headers, str]:
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    merged = Headers(headers)
    merged["Connection"] = "Upgrade"
    merged["Upgrade"] = "websocket"
    merged["Sec-WebSocket-Key"] = key
    merged["Sec-WebSocket-Version"] = "13"
    if subprotocols:
        merged["Sec-WebSocket-Protocol"] = ", ".join(subprotocols)
    return merged, key


def _check_upgrade(response, key: str) -> None:
    """The server switched to the WebSocket protocol, answering our key (RFC 6455 4.1)."""
    if response.status_code != 101:
        raise WebSocketUpgradeError(response)
    expected = base64.b64encode(hashlib.sha1(key.encode("ascii") + _ACCEPT_GUID).digest())
    accept = response.headers.get("sec-websocket-accept", "")
    if accept.strip().encode("ascii", "replace") != expected:
        raise WebSocketUpgradeError(response)
    if "network_stream" not in response.extensions:
        raise WebSocketUpgradeError(response)


class _ClientOptions:
    def __init__(
        self,
        client,
        *,
        max_message_size_bytes: int = DEFAULT_MAX_MESSAGE_SIZE_BYTES,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        keepalive_ping_interval_seconds: float | None = DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS,
        keepalive_ping_timeout_seconds: float | None = DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS,
        session_class=None,
    ) -> None:
        self.client = client
        self.max_message_size_bytes = max_message_size_bytes
        self.queue_size = queue_size
        self.keepalive_ping_interval_seconds = keepalive_ping_interval_seconds
        self.keepalive_ping_timeout_seconds = keepalive_ping_timeout_seconds
        self.session_class = session_class or self._default_session

    def _session(self, response):
        return self.session_class(
            response.extensions["network_stream"],
            max_message_size_bytes=self.max_message_size_bytes,
            queue_size=self.queue_size,
            keepalive_ping_interval_seconds=self.keepalive_ping_interval_seconds,
            keepalive_ping_timeout_seconds=self.keepalive_ping_timeout_seconds,
            response=response,
        )


class WebSocketClient(_ClientOptions):
    """Opens WebSocket sessions with a `Client`: `with ws_client.connect(url) as ws:`."""

    _default_session = WebSocketSession

    def __init__(
        self,
        client,
        *,
        max_message_size_bytes: int = DEFAULT_MAX_MESSAGE_SIZE_BYTES,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        keepalive_ping_interval_seconds: float | None = DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS,
        keepalive_ping_timeout_seconds: float | None = DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS,
        session_class=WebSocketSession,
    ) -> None:
        # httpx2's signature: the session class is the default (not None).
        super().__init__(
            client,
            max_message_size_bytes=max_message_size_bytes,
            queue_size=queue_size,
            keepalive_ping_interval_seconds=keepalive_ping_interval_seconds,
            keepalive_ping_timeout_seconds=keepalive_ping_timeout_seconds,
            session_class=session_class,
        )

    @contextlib.contextmanager
    def connect(
        self,
        url,
        *,
        subprotocols: list[str] | None = None,
        params=None,
        headers=None,
        cookies=None,
        auth=USE_CLIENT_DEFAULT,
        follow_redirects=USE_CLIENT_DEFAULT,
        timeout=USE_CLIENT_DEFAULT,
        extensions=None,
    ):
        merged, key = _handshake_headers(headers, subprotocols)
        with self.client.stream(
            "GET",
            url,
            params=params,
            headers=merged,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            extensions=extensions,
        ) as response:
            _check_upgrade(response, key)
            with self._session(response) as session:
                yield session


class AsyncWebSocketClient(_ClientOptions):
    """Opens WebSocket sessions with an `AsyncClient`: `async with ws_client.connect(url)`."""

    _default_session = AsyncWebSocketSession

    def __init__(
        self,
        client,
        *,
        max_message_size_bytes: int = DEFAULT_MAX_MESSAGE_SIZE_BYTES,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        keepalive_ping_interval_seconds: float | None = DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS,
        keepalive_ping_timeout_seconds: float | None = DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS,
        session_class=AsyncWebSocketSession,
    ) -> None:
        # httpx2's signature: the session class is the default (not None).
        super().__init__(
            client,
            max_message_size_bytes=max_message_size_bytes,
            queue_size=queue_size,
            keepalive_ping_interval_seconds=keepalive_ping_interval_seconds,
            keepalive_ping_timeout_seconds=keepalive_ping_timeout_seconds,
            session_class=session_class,
        )

    @contextlib.asynccontextmanager
    async def connect(
        self,
        url,
        *,
        subprotocols: list[str] | None = None,
        params=None,
        headers=None,
        cookies=None,
        auth=USE_CLIENT_DEFAULT,
        follow_redirects=USE_CLIENT_DEFAULT,
        timeout=USE_CLIENT_DEFAULT,
        extensions=None,
    ):
        merged, key = _handshake_headers(headers, subprotocols)
        async with self.client.stream(
            "GET",
            url,
            params=params,
            headers=merged,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            extensions=extensions,
        ) as response:
            _check_upgrade(response, key)
            async with self._session(response) as session:
                yield session


@contextlib.contextmanager
def connect_ws(
    url,
    client=None,
    *,
    max_message_size_bytes: int = DEFAULT_MAX_MESSAGE_SIZE_BYTES,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    keepalive_ping_interval_seconds: float | None = DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS,
    keepalive_ping_timeout_seconds: float | None = DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS,
    subprotocols: list[str] | None = None,
    params=None,
    headers=None,
    cookies=None,
    auth=USE_CLIENT_DEFAULT,
    follow_redirects=USE_CLIENT_DEFAULT,
    timeout=USE_CLIENT_DEFAULT,
    extensions=None,
):
    """A WebSocket session (`with connect_ws(url) as ws:`), on `client` or a new Client."""
    from httprs._client import Client

    owned = Client() if client is None else contextlib.nullcontext(client)
    with owned as active:
        ws_client = WebSocketClient(
            client=active,
            max_message_size_bytes=max_message_size_bytes,
            queue_size=queue_size,
            keepalive_ping_interval_seconds=keepalive_ping_interval_seconds,
            keepalive_ping_timeout_seconds=keepalive_ping_timeout_seconds,
        )
        with ws_client.connect(
            url,
            subprotocols=subprotocols,
            params=params,
            headers=headers,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            extensions=extensions,
        ) as session:
            yield session


@contextlib.asynccontextmanager
async def _borrowed(client):
    yield client


@contextlib.asynccontextmanager
async def aconnect_ws(
    url,
    client=None,
    *,
    max_message_size_bytes: int = DEFAULT_MAX_MESSAGE_SIZE_BYTES,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    keepalive_ping_interval_seconds: float | None = DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS,
    keepalive_ping_timeout_seconds: float | None = DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS,
    subprotocols: list[str] | None = None,
    params=None,
    headers=None,
    cookies=None,
    auth=USE_CLIENT_DEFAULT,
    follow_redirects=USE_CLIENT_DEFAULT,
    timeout=USE_CLIENT_DEFAULT,
    extensions=None,
):
    """A WebSocket session (`async with aconnect_ws(url) as ws:`), on `client` or a new
    AsyncClient."""
    from httprs._client import AsyncClient

    owned = AsyncClient() if client is None else _borrowed(client)
    async with owned as active:
        ws_client = AsyncWebSocketClient(
            client=active,
            max_message_size_bytes=max_message_size_bytes,
            queue_size=queue_size,
            keepalive_ping_interval_seconds=keepalive_ping_interval_seconds,
            keepalive_ping_timeout_seconds=keepalive_ping_timeout_seconds,
        )
        async with ws_client.connect(
            url,
            subprotocols=subprotocols,
            params=params,
            headers=headers,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            extensions=extensions,
        ) as session:
            yield session
