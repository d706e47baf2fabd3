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

The sync session runs one reader thread (and a keepalive thread when pings are on); the
async session runs the same two as tasks of an anyio task group, so, as in httpx2, an
exception that leaves its `async with` block arrives wrapped in an `ExceptionGroup`
(catch it with `except*`, or inside the block).
"""

from __future__ import annotations

import base64
import contextlib
import enum
import hashlib
import json
import math
import os
import queue
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar

import anyio
import wsproto.events
import wsproto.utilities
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason

from httprs._client import USE_CLIENT_DEFAULT, AsyncClient, Client, UseClientDefault
from httprs._config import (
    DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS,
    DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS,
    DEFAULT_MAX_MESSAGE_SIZE_BYTES,
    DEFAULT_QUEUE_SIZE,
)
from httprs._core import AsyncNetworkStream as _CoreAsyncStream
from httprs._core import NetworkStream as _CoreStream
from httprs._exceptions import TransportError
from httprs._models import Headers, Response
from httprs._types import (
    AuthTypes,
    CookieTypes,
    HeaderTypes,
    QueryParamTypes,
    RequestExtensions,
    TimeoutTypes,
)

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


_READ_SIZE = 65_536
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


class NetworkStream(Protocol):
    """What a sync session needs of its stream (httpcore's `NetworkStream` shape: the
    `network_stream` of a 101 response from `Client`)."""

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes: ...
    def write(self, buffer: bytes, timeout: float | None = None) -> None: ...
    def close(self) -> None: ...


class AsyncNetworkStream(Protocol):
    """What an async session needs of its stream (httpcore's `AsyncNetworkStream`)."""

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes: ...
    async def write(self, buffer: bytes, timeout: float | None = None) -> None: ...
    async def aclose(self) -> None: ...


def _in_process(stream: object) -> bool:
    """True for the stream of an in-process ASGI endpoint (ASGIWebSocketTransport)."""
    from ._asgi import ASGIWebSocketAsyncNetworkStream

    return isinstance(stream, ASGIWebSocketAsyncNetworkStream)


_HTTPCORE_PACKAGES = frozenset({"httpcore", "httpcore2"})
_HTTPCORE_STREAM_ERRORS = frozenset({"NetworkError", "TimeoutException"})


def _is_stream_error(exc: BaseException) -> bool:
    """Whether `exc` is what a network stream raises when the connection fails: httprs's
    transport errors, OSError, and httpcore's / httpcore2's `NetworkError` and
    `TimeoutException`. Those are told by package and name, not by identity with what
    `sys.modules` holds now: a stream written against an httpcore2 that has since been
    removed from `sys.modules` or imported again raises the classes of the module it was
    written against (httpx2's session keeps the httpcore2 it imported, so it matches them)."""
    if isinstance(exc, (TransportError, OSError)):
        return True
    return any(
        cls.__module__ in _HTTPCORE_PACKAGES and cls.__name__ in _HTTPCORE_STREAM_ERRORS
        for cls in type(exc).__mro__
    )


def _network_error(cause: BaseException) -> WebSocketNetworkError:
    error = WebSocketNetworkError(str(cause))
    error.__cause__ = cause
    return error


@dataclass
class _Step:
    """What one read from the server asks of a session, in this order: frames to write
    back (pong and close replies), pongs to acknowledge, complete messages to queue, and
    the exception that ends the session, if it ended."""

    replies: list[bytes] = field(default_factory=list)
    pongs: list[bytes] = field(default_factory=list)
    messages: list[Message[Any]] = field(default_factory=list)
    end: HTTPXWSException | None = None


class _Inbound:
    """Bytes from the server -> a `_Step` for the session (sync and async share it)."""

    def __init__(self, connection: Connection, limit: int) -> None:
        self.connection = connection
        self.limit = limit
        self.parts: list[Any] = []  # the fragments of one message: all str or all bytes
        self.size = 0

    def feed(self, data: bytes) -> _Step:
        self.connection.receive_data(data)
        step = _Step()
        for event in self.connection.events():
            if isinstance(event, Ping):
                step.replies.append(self.connection.send(event.response()))
            elif isinstance(event, Pong):
                step.pongs.append(bytes(event.payload))
            elif isinstance(event, CloseConnection):
                if self.connection.state is ConnectionState.REMOTE_CLOSING:
                    step.replies.append(self.connection.send(event.response()))
                step.end = WebSocketDisconnect(event.code, event.reason)
                return step
            elif isinstance(event, Message):
                data_part = event.data
                is_text = isinstance(data_part, str)
                self.size += len(data_part.encode("utf-8")) if is_text else len(data_part)
                if self.size > self.limit:
                    reason = "Message too big"
                    if self.connection.state is ConnectionState.OPEN:
                        close = CloseConnection(CloseReason.MESSAGE_TOO_BIG, reason)
                        step.replies.append(self.connection.send(close))
                    step.end = WebSocketDisconnect(CloseReason.MESSAGE_TOO_BIG, reason)
                    return step
                self.parts.append(data_part)
                if event.message_finished:
                    parts, self.parts, self.size = self.parts, [], 0
                    whole = (
                        TextMessage("".join(parts)) if is_text else BytesMessage(b"".join(parts))
                    )
                    step.messages.append(whole)
        return step


class _Signal(enum.Enum):
    WAKE = "wake"  # queued to wake a blocked receive() once the session has ended


def _text(event: Event) -> str:
    if not isinstance(event, TextMessage):
        raise WebSocketInvalidTypeReceived(event)
    return event.data


def _bytes(event: Event) -> bytes:
    if not isinstance(event, BytesMessage):
        raise WebSocketInvalidTypeReceived(event)
    return bytes(event.data)


def _check_mode(mode: str) -> None:
    if mode not in ("text", "binary"):
        raise ValueError("mode must be 'text' or 'binary'")


def _load_json(event: Event, mode: JSONMode) -> Any:
    _check_mode(mode)
    return json.loads(_text(event) if mode == "text" else _bytes(event))


def _dump_json(data: Any, mode: JSONMode) -> TextMessage | BytesMessage:
    _check_mode(mode)
    text = json.dumps(data)
    return TextMessage(data=text) if mode == "text" else BytesMessage(data=text.encode("utf-8"))


_Waiter = TypeVar("_Waiter", threading.Event, anyio.Event)


class _SessionBase:
    """What the sync and async sessions share: the constructor (httpx2's signature), the
    wsproto connection, the accepted subprotocol, the settings, and the pings waiting for
    their pong. `_open()` makes the flavour's own queue and locks."""

    subprotocol: str | None
    response: Response | None

    def __init__(
        self,
        stream: Any,
        *,
        max_message_size_bytes: int = DEFAULT_MAX_MESSAGE_SIZE_BYTES,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        keepalive_ping_interval_seconds: float | None = DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS,
        keepalive_ping_timeout_seconds: float | None = DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS,
        response: Response | None = None,
    ) -> None:
        self.stream = stream
        self.connection = Connection(ConnectionType.CLIENT)
        self.response = response
        self.subprotocol = (
            response.headers.get("sec-websocket-protocol") if response is not None else None
        )
        self._max_message_size_bytes = max_message_size_bytes
        self._queue_size = queue_size
        if _in_process(stream):  # nothing to keep alive (as httpx2)
            keepalive_ping_interval_seconds = keepalive_ping_timeout_seconds = None
        self._keepalive_ping_interval_seconds = keepalive_ping_interval_seconds
        self._keepalive_ping_timeout_seconds = keepalive_ping_timeout_seconds
        self._ended: HTTPXWSException | None = None
        self._open(queue_size)

    def _open(self, queue_size: int) -> None:
        raise NotImplementedError

    @staticmethod
    def _ping_payload(pings: dict[bytes, _Waiter], payload: bytes, waiter: _Waiter) -> bytes:
        payload = payload or secrets.token_bytes(16)
        pings[payload] = waiter
        return payload

    @staticmethod
    def _ack(pings: dict[bytes, _Waiter], payloads: list[bytes]) -> None:
        for payload in payloads:
            waiter = pings.pop(payload, None)
            if waiter is not None:
                waiter.set()


class WebSocketSession(_SessionBase):
    """A WebSocket session over a sync network stream (`with` closes it).

    `subprotocol` is the one the server accepted (or None), `response` the 101."""

    stream: NetworkStream

    def _open(self, queue_size: int) -> None:
        self._events: queue.Queue[Event | _Signal] = queue.Queue(queue_size)
        self._lock = threading.Lock()  # the wsproto connection and writes to the stream
        self._stopping = threading.Event()
        # Set by close(): the reader thread lives until then (as httpx2's threads do),
        # also after the peer ended the session, so the session's threads are the
        # session's lifetime (`with`), never the peer's.
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pings: dict[bytes, threading.Event] = {}

    # -- lifetime ---------------------------------------------------------------------

    def __enter__(self) -> WebSocketSession:
        self._spawn(self._background_receive, self._max_message_size_bytes)
        interval = self._keepalive_ping_interval_seconds
        if interval is not None:
            self._spawn(
                self._background_keepalive_ping, interval, self._keepalive_ping_timeout_seconds
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name="httprs-websocket", daemon=True)
        self._threads.append(thread)
        thread.start()

    def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Send a close frame (unless the session is closed already) and close the stream."""
        try:
            with self._lock:
                already = self._stopping.is_set()
                self._stopping.set()
                if self.connection.state in (
                    ConnectionState.OPEN,
                    ConnectionState.REMOTE_CLOSING,
                ):
                    data = self.connection.send(CloseConnection(code, reason))
                    try:
                        self.stream.write(data)
                    except Exception as e:
                        if not _is_stream_error(e):
                            raise
            if not already:
                self._end(WebSocketDisconnect(code, reason))
                self.stream.close()
        finally:
            self._closed.set()

    # -- sending ----------------------------------------------------------------------

    def send(self, event: wsproto.events.Event) -> None:
        """Send a wsproto event."""
        try:
            with self._lock:
                self.stream.write(self.connection.send(event))
        except Exception as e:
            if not _is_stream_error(e):
                raise
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
        waiter = threading.Event()
        self.send(Ping(payload=self._ping_payload(self._pings, payload, waiter)))
        return waiter

    # -- receiving --------------------------------------------------------------------

    def receive(self, timeout: float | None = None) -> wsproto.events.Event:
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
        if isinstance(item, _Signal):
            assert self._ended is not None
            raise self._ended
        return item

    def receive_text(self, timeout: float | None = None) -> str:
        return _text(self.receive(timeout))

    def receive_bytes(self, timeout: float | None = None) -> bytes:
        return _bytes(self.receive(timeout))

    def receive_json(self, timeout: float | None = None, mode: JSONMode = "text") -> Any:
        return _load_json(self.receive(timeout), mode)

    # -- background -------------------------------------------------------------------

    def _end(self, error: HTTPXWSException) -> None:
        if self._ended is None:
            self._ended = error
            with contextlib.suppress(queue.Full):
                self._events.put_nowait(_Signal.WAKE)

    def _queue(self, item: Event) -> bool:
        while not self._stopping.is_set():
            try:
                self._events.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _background_receive(self, max_bytes: int) -> None:
        """The reader thread: frames in, replies out, messages queued (at most
        `max_bytes` per message). Whatever the stream raises ends the session with
        WebSocketNetworkError, never the thread: after close() it is only the stream
        being torn down, and is dropped."""
        try:
            self._receive_until_the_end(max_bytes)
        finally:
            self._closed.wait()

    def _receive_until_the_end(self, max_bytes: int) -> None:
        inbound = _Inbound(self.connection, max_bytes)
        try:
            while not self._stopping.is_set():
                data = self.stream.read(_READ_SIZE)
                if not data:  # EOF without a close frame
                    raise WebSocketNetworkError("the connection ended")
                with self._lock:
                    step = inbound.feed(data)
                    for reply in step.replies:
                        self.stream.write(reply)
                if not self._deliver(step):
                    return
        except WebSocketNetworkError as e:
            self._fail(e)
        except Exception as e:  # noqa: BLE001 - the stream's own errors, of any kind
            if not self._stopping.is_set():
                self._fail(_network_error(e))

    def _deliver(self, step: _Step) -> bool:
        """Act on what `feed` found; False once the session has ended."""
        self._ack(self._pings, step.pongs)
        for message in step.messages:
            if not self._queue(message):
                return False
        if step.end is not None:
            self._stopping.set()
            self._end(step.end)
            return False
        return True

    def _fail(self, error: WebSocketNetworkError) -> None:
        self._end(error)
        self._stopping.set()
        self.stream.close()

    def _background_keepalive_ping(
        self, interval_seconds: float, timeout_seconds: float | None = None
    ) -> None:
        """The keepalive thread: a ping every `interval_seconds`; no pong within
        `timeout_seconds` ends the session with WebSocketNetworkError."""
        while not self._stopping.wait(interval_seconds):
            try:
                waiter = self.ping()
            except (HTTPXWSException, wsproto.utilities.LocalProtocolError):
                return  # closing, or closed
            if timeout_seconds is None:
                continue
            if not waiter.wait(timeout_seconds) and not self._stopping.is_set():
                self._end(WebSocketNetworkError("keepalive ping timeout"))
                self.close(CloseReason.INTERNAL_ERROR, "Keepalive ping timeout")
                return


class AsyncWebSocketSession(_SessionBase):
    """A WebSocket session over an async network stream (`async with` closes it).
    Runs on asyncio and trio (through anyio).

    Its background reader and keepalive pings are tasks of a task group that the
    `async with` block runs inside, as in httpx2: an exception that leaves the block
    arrives wrapped in an `ExceptionGroup` (`except* WebSocketDisconnect:`), one caught
    inside the block is the plain exception."""

    stream: AsyncNetworkStream

    def _open(self, queue_size: int) -> None:
        # The message queue is made when the session is entered (so that a session never
        # entered leaves no unclosed stream behind), and closed when it is left.
        self._send_events: MemoryObjectSendStream[Event] | None = None
        self._receive_events: MemoryObjectReceiveStream[Event] | None = None
        self._lock = anyio.Lock()
        self._stopping = False
        self._task_group: anyio.abc.TaskGroup | None = None
        self._pings: dict[bytes, anyio.Event] = {}

    async def __aenter__(self) -> AsyncWebSocketSession:
        size = self._queue_size if self._queue_size > 0 else math.inf
        self._send_events, self._receive_events = anyio.create_memory_object_stream(size)
        group = anyio.create_task_group()
        await group.__aenter__()
        self._task_group = group
        group.start_soon(self._background_receive, self._max_message_size_bytes)
        interval = self._keepalive_ping_interval_seconds
        if interval is not None:
            group.start_soon(
                self._background_keepalive_ping, interval, self._keepalive_ping_timeout_seconds
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        group, self._task_group = self._task_group, None
        assert group is not None, "the session was not entered"
        group.cancel_scope.cancel()
        try:
            with anyio.CancelScope(shield=True):
                await self.close()
        finally:
            assert self._send_events is not None and self._receive_events is not None
            self._send_events.close()
            self._receive_events.close()
            # The block's own exception goes through the task group, which wraps it in
            # an ExceptionGroup (with any of the background tasks'), as httpx2's does.
            suppress = await group.__aexit__(exc_type, exc, tb)
        return suppress

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Send a close frame (unless the session is closed already) and close the stream."""
        async with self._lock:
            already = self._stopping
            self._stopping = True
            if self.connection.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
                data = self.connection.send(CloseConnection(code, reason))
                try:
                    await self.stream.write(data)
                except Exception as e:
                    if not _is_stream_error(e):
                        raise
        if not already:
            self._end(WebSocketDisconnect(code, reason))
            await self.stream.aclose()

    async def send(self, event: wsproto.events.Event) -> None:
        """Send a wsproto event."""
        try:
            async with self._lock:
                await self.stream.write(self.connection.send(event))
        except Exception as e:
            if not _is_stream_error(e):
                raise
            await self.close(CloseReason.INTERNAL_ERROR, "Stream write error")
            raise WebSocketNetworkError() from e

    async def send_text(self, data: str) -> None:
        await self.send(TextMessage(data=data))

    async def send_bytes(self, data: bytes) -> None:
        await self.send(BytesMessage(data=data))

    async def send_json(self, data: Any, mode: JSONMode = "text") -> None:
        await self.send(_dump_json(data, mode))

    async def ping(self, payload: bytes = b"") -> anyio.Event:
        """Send a ping; the returned anyio.Event is set when its pong arrives."""
        waiter = anyio.Event()
        await self.send(Ping(payload=self._ping_payload(self._pings, payload, waiter)))
        return waiter

    async def receive(self, timeout: float | None = None) -> wsproto.events.Event:
        """The next message event; TimeoutError if none came within `timeout`."""
        if self._receive_events is None:
            raise RuntimeError("receive() needs the session entered (`async with`)")
        try:
            with anyio.fail_after(timeout):
                return await self._receive_events.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise self._ended or WebSocketNetworkError() from None

    async def receive_text(self, timeout: float | None = None) -> str:
        return _text(await self.receive(timeout))

    async def receive_bytes(self, timeout: float | None = None) -> bytes:
        return _bytes(await self.receive(timeout))

    async def receive_json(self, timeout: float | None = None, mode: JSONMode = "text") -> Any:
        return _load_json(await self.receive(timeout), mode)

    def _end(self, error: HTTPXWSException) -> None:
        if self._ended is None:
            self._ended = error
            # Queued messages stay readable; then receive() raises `error`.
            if self._send_events is not None:
                self._send_events.close()

    async def _background_receive(self, max_bytes: int) -> None:
        """The reader task (see WebSocketSession._background_receive)."""
        inbound = _Inbound(self.connection, max_bytes)
        assert self._send_events is not None, "started by __aenter__"
        try:
            while not self._stopping:
                data = await self.stream.read(_READ_SIZE)
                if not data:  # EOF without a close frame
                    raise WebSocketNetworkError("the connection ended")
                async with self._lock:
                    step = inbound.feed(data)
                    for reply in step.replies:
                        await self.stream.write(reply)
                self._ack(self._pings, step.pongs)
                for message in step.messages:
                    await self._send_events.send(message)
                if step.end is not None:
                    self._stopping = True
                    self._end(step.end)
                    return
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return  # the session's own queue, closed as it ended
        except WebSocketNetworkError as e:
            await self._fail(e)
        except Exception as e:  # noqa: BLE001 - the stream's own errors, of any kind
            if not self._stopping:
                await self._fail(_network_error(e))

    async def _fail(self, error: WebSocketNetworkError) -> None:
        self._end(error)
        self._stopping = True
        await self.stream.aclose()

    async def _background_keepalive_ping(
        self, interval_seconds: float, timeout_seconds: float | None = None
    ) -> None:
        """The keepalive task (see WebSocketSession._background_keepalive_ping)."""
        while not self._stopping:
            await anyio.sleep(interval_seconds)
            if self._stopping:
                return
            try:
                waiter = await self.ping()
            except (HTTPXWSException, wsproto.utilities.LocalProtocolError):
                return  # closing, or closed
            if timeout_seconds is None:
                continue
            with anyio.move_on_after(timeout_seconds):
                await waiter.wait()
            if not waiter.is_set() and not self._stopping:
                self._end(WebSocketNetworkError("keepalive ping timeout"))
                await self.close(CloseReason.INTERNAL_ERROR, "Keepalive ping timeout")
                return


# ---------------------------------------------------------------------- connecting


def _connect_args(
    subprotocols: list[str] | None,
    params: QueryParamTypes | None,
    headers: HeaderTypes | None,
    cookies: CookieTypes | None,
    auth: AuthTypes | UseClientDefault | None,
    follow_redirects: bool | UseClientDefault,
    timeout: TimeoutTypes | UseClientDefault,
    extensions: RequestExtensions | None,
) -> dict[str, Any]:
    """The keyword arguments of `connect()` (and of the handshake's request, but for
    `subprotocols`)."""
    return {
        "subprotocols": subprotocols,
        "params": params,
        "headers": headers,
        "cookies": cookies,
        "auth": auth,
        "follow_redirects": follow_redirects,
        "timeout": timeout,
        "extensions": extensions,
    }


def _upgrade_request(
    subprotocols: list[str] | None,
    params: QueryParamTypes | None,
    headers: HeaderTypes | None,
    cookies: CookieTypes | None,
    auth: AuthTypes | UseClientDefault | None,
    follow_redirects: bool | UseClientDefault,
    timeout: TimeoutTypes | UseClientDefault,
    extensions: RequestExtensions | None,
) -> tuple[str, dict[str, Any]]:
    """The handshake's key and the keyword arguments of its `client.stream("GET", url)`."""
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    merged = Headers(headers)
    # Written as httpx2 writes them (lower case, as wsproto's handshake does).
    merged["connection"] = "upgrade"
    merged["upgrade"] = "websocket"
    merged["sec-websocket-key"] = key
    merged["sec-websocket-version"] = "13"
    if subprotocols:
        merged["sec-websocket-protocol"] = ", ".join(subprotocols)
    kwargs = _connect_args(
        None, params, merged, cookies, auth, follow_redirects, timeout, extensions
    )
    del kwargs["subprotocols"]
    return key, kwargs


def _check_upgrade(response: Response, key: str) -> None:
    """The server switched to the WebSocket protocol, answering our key (RFC 6455 4.1).

    A 101 that came over one of httprs's connections must carry the answer. One a
    transport of the program's made (`MockTransport`, a respx route, a stream of its
    own) may leave the header out, as tests that mock the handshake do and as httpx2,
    which never checks, accepts; a value given is checked wherever it came from."""
    if response.status_code != 101:
        raise WebSocketUpgradeError(response)
    stream = response.extensions.get("network_stream")
    if stream is None:
        raise _upgrade_error(
            response, "the transport gave no connection to speak on (no network_stream)"
        )
    accept = response.headers.get("sec-websocket-accept")
    if accept is None and type(stream) not in (_CoreStream, _CoreAsyncStream):
        return
    expected = base64.b64encode(hashlib.sha1(key.encode("ascii") + _ACCEPT_GUID).digest())
    if (accept or "").strip().encode("ascii", "replace") != expected:
        raise _upgrade_error(
            response,
            "its Sec-WebSocket-Accept header does not answer the request's"
            f" Sec-WebSocket-Key (RFC 6455 4.1: {expected.decode()!r} expected,"
            f" {accept or ''!r} given)",
        )


def _upgrade_error(response: Response, why: str) -> WebSocketUpgradeError:
    """A WebSocketUpgradeError for a 101 response the session cannot take, saying why."""
    error = WebSocketUpgradeError(response)
    error.args = (f"WebSocket upgrade failed: 101 Switching Protocols, but {why}",)
    return error


_S = TypeVar("_S", bound=_SessionBase)


class _ClientOptions:
    """The session settings a WebSocket client passes to each session it opens."""

    def __init__(
        self,
        max_message_size_bytes: int,
        queue_size: int,
        keepalive_ping_interval_seconds: float | None,
        keepalive_ping_timeout_seconds: float | None,
    ) -> None:
        # Public names as in httpx2 (`ws_client.queue_size`, ...).
        self.max_message_size_bytes = max_message_size_bytes
        self.queue_size = queue_size
        self.keepalive_ping_interval_seconds = keepalive_ping_interval_seconds
        self.keepalive_ping_timeout_seconds = keepalive_ping_timeout_seconds

    def _session(self, session_class: type[_S], response: Response) -> _S:
        return session_class(
            response.extensions["network_stream"], response=response, **_settings(self)
        )


def _settings(options: _ClientOptions) -> dict[str, Any]:
    """The session settings as keyword arguments (of a session, or of a client)."""
    return {
        "max_message_size_bytes": options.max_message_size_bytes,
        "queue_size": options.queue_size,
        "keepalive_ping_interval_seconds": options.keepalive_ping_interval_seconds,
        "keepalive_ping_timeout_seconds": options.keepalive_ping_timeout_seconds,
    }


class WebSocketClient(_ClientOptions):
    """Opens WebSocket sessions with a `Client`: `with ws_client.connect(url) as ws:`."""

    def __init__(
        self,
        client: Client,
        *,
        max_message_size_bytes: int = DEFAULT_MAX_MESSAGE_SIZE_BYTES,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        keepalive_ping_interval_seconds: float | None = DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS,
        keepalive_ping_timeout_seconds: float | None = DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS,
        session_class: type[WebSocketSession] = WebSocketSession,
    ) -> None:
        super().__init__(
            max_message_size_bytes,
            queue_size,
            keepalive_ping_interval_seconds,
            keepalive_ping_timeout_seconds,
        )
        self.client = client
        self.session_class = session_class

    @contextlib.contextmanager
    def connect(
        self,
        url: str,
        *,
        subprotocols: list[str] | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Iterator[WebSocketSession]:
        key, kwargs = _upgrade_request(
            subprotocols, params, headers, cookies, auth, follow_redirects, timeout, extensions
        )
        with self.client.stream("GET", url, **kwargs) as response:
            _check_upgrade(response, key)
            with self._session(self.session_class, response) as session:
                yield session


class AsyncWebSocketClient(_ClientOptions):
    """Opens WebSocket sessions with an `AsyncClient`: `async with ws_client.connect(url)`."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        max_message_size_bytes: int = DEFAULT_MAX_MESSAGE_SIZE_BYTES,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        keepalive_ping_interval_seconds: float | None = DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS,
        keepalive_ping_timeout_seconds: float | None = DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS,
        session_class: type[AsyncWebSocketSession] = AsyncWebSocketSession,
    ) -> None:
        super().__init__(
            max_message_size_bytes,
            queue_size,
            keepalive_ping_interval_seconds,
            keepalive_ping_timeout_seconds,
        )
        self.client = client
        self.session_class = session_class

    @contextlib.asynccontextmanager
    async def connect(
        self,
        url: str,
        *,
        subprotocols: list[str] | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> AsyncIterator[AsyncWebSocketSession]:
        key, kwargs = _upgrade_request(
            subprotocols, params, headers, cookies, auth, follow_redirects, timeout, extensions
        )
        async with self.client.stream("GET", url, **kwargs) as response:
            _check_upgrade(response, key)
            async with self._session(self.session_class, response) as session:
                yield session


@contextlib.contextmanager
def connect_ws(
    url: str,
    client: Client | None = None,
    *,
    max_message_size_bytes: int = DEFAULT_MAX_MESSAGE_SIZE_BYTES,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    keepalive_ping_interval_seconds: float | None = DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS,
    keepalive_ping_timeout_seconds: float | None = DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS,
    subprotocols: list[str] | None = None,
    params: QueryParamTypes | None = None,
    headers: HeaderTypes | None = None,
    cookies: CookieTypes | None = None,
    auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
    follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
    timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
    extensions: RequestExtensions | None = None,
) -> Iterator[WebSocketSession]:
    """A WebSocket session (`with connect_ws(url) as ws:`), on `client` or a new Client."""
    from httprs._client import Client

    settings = _ClientOptions(
        max_message_size_bytes,
        queue_size,
        keepalive_ping_interval_seconds,
        keepalive_ping_timeout_seconds,
    )
    request = _connect_args(
        subprotocols, params, headers, cookies, auth, follow_redirects, timeout, extensions
    )
    owned: contextlib.AbstractContextManager[Client]
    owned = Client() if client is None else contextlib.nullcontext(client)
    with owned as active:
        # Looked up in this module at each call (httpx2's tests patch `_api.WebSocketClient`
        # and read the client from its keyword arguments).
        ws_client = WebSocketClient(client=active, **_settings(settings))
        with ws_client.connect(url, **request) as session:
            yield session


@contextlib.asynccontextmanager
async def _borrowed(client: AsyncClient) -> AsyncIterator[AsyncClient]:
    yield client  # contextlib.nullcontext is an async context manager from Python 3.10 on


@contextlib.asynccontextmanager
async def aconnect_ws(
    url: str,
    client: AsyncClient | None = None,
    *,
    max_message_size_bytes: int = DEFAULT_MAX_MESSAGE_SIZE_BYTES,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    keepalive_ping_interval_seconds: float | None = DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS,
    keepalive_ping_timeout_seconds: float | None = DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS,
    subprotocols: list[str] | None = None,
    params: QueryParamTypes | None = None,
    headers: HeaderTypes | None = None,
    cookies: CookieTypes | None = None,
    auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
    follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
    timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
    extensions: RequestExtensions | None = None,
) -> AsyncIterator[AsyncWebSocketSession]:
    """A WebSocket session (`async with aconnect_ws(url) as ws:`), on `client` or a new
    AsyncClient."""
    from httprs._client import AsyncClient

    settings = _ClientOptions(
        max_message_size_bytes,
        queue_size,
        keepalive_ping_interval_seconds,
        keepalive_ping_timeout_seconds,
    )
    request = _connect_args(
        subprotocols, params, headers, cookies, auth, follow_redirects, timeout, extensions
    )
    owned: contextlib.AbstractAsyncContextManager[AsyncClient]
    owned = AsyncClient() if client is None else _borrowed(client)
    async with owned as active:
        ws_client = AsyncWebSocketClient(client=active, **_settings(settings))
        async with ws_client.connect(url, **request) as session:
            yield session
