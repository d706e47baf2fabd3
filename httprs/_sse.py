"""Server-sent events (httpx2's `client.sse(...)`, `EventSource`, `ServerSentEvent`).

The parser follows the WHATWG "event stream interpretation" rules: the body is UTF-8
(a leading BOM is dropped, invalid bytes are replaced), lines end with CRLF, LF or CR,
`:` starts a comment, a field's value loses one leading space, a blank line dispatches
the event being built. An event that the stream ends before its blank line is dropped.

As in httpx2, an event is dispatched when any field (event, data, id, retry) was set
since the last one, and the last event id carries over to later events.

`max_event_size` bounds the bytes buffered for one event (its field lines without their
line breaks, as httpx2 counts them, plus an unterminated line still arriving): a server
that never sends a line break or a blank line cannot make the client buffer without
limit. Exceeding it raises `SSEError`, after the events completed before it. A `retry:`
value is what `int()` reads (httpx2's rule; the WHATWG text allows ASCII digits only).
"""

from __future__ import annotations

import codecs
import json as jsonlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from httprs._config import DEFAULT_MAX_EVENT_SIZE_BYTES
from httprs._exceptions import TransportError

if TYPE_CHECKING:  # pragma: no cover
    from httprs._client import AsyncClient, Client
    from httprs._models import Headers, Response
    from httprs._types import HeaderTypes
    from httprs._urls import URL

__all__ = ["EventSource", "SSEError", "ServerSentEvent"]


class SSEError(TransportError):
    """The response is not an event stream, or an event exceeded `max_event_size`."""


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event: its type, data (lines joined by "\\n"), last id and retry."""

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None

    def json(self) -> object:
        return jsonlib.loads(self.data)


class _EventBuilder:
    """Applies field lines to the event being built; dispatches on a blank line."""

    def __init__(self, max_event_size: int | None) -> None:
        self.max_event_size = max_event_size
        self.size = 0  # bytes of the lines of the event being built
        self.last_id = ""
        self._reset()

    def _reset(self) -> None:
        self.event = ""
        self.data: list[str] = []
        self.retry: int | None = None
        self.pending = False
        self.size = 0

    def check(self, unterminated: int = 0) -> None:
        limit = self.max_event_size
        if limit is not None and self.size + unterminated > limit:
            raise SSEError(f"Server-sent event exceeded the {limit} byte limit.")

    def line(self, line: str) -> ServerSentEvent | None:
        if not line:
            if not self.pending:
                self.size = 0
                return None
            sse = ServerSentEvent(
                event=self.event or "message",
                data="\n".join(self.data),
                id=self.last_id,
                retry=self.retry,
            )
            self._reset()
            return sse
        if line[0] == ":":
            return None  # a comment (often a keep-alive): nothing is buffered
        self.size += len(line.encode("utf-8"))  # the line without its terminator
        self.check()
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        elif name == "id":
            if "\0" in value:
                return None
            self.last_id = value
        elif name == "retry":
            # httpx2 takes what int() takes (WHATWG: ASCII digits only), and ignores the
            # field otherwise.
            try:
                self.retry = int(value)
            except ValueError:
                return None
        else:
            return None
        self.pending = True
        return None


class _Parser:
    """Bytes in, events out: incremental UTF-8 decoding, line splitting, event building."""

    def __init__(self, max_event_size: int | None) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._builder = _EventBuilder(max_event_size)
        self._tail = ""  # the unterminated last line
        self._cr = False  # the previous chunk ended with CR: a following LF is its pair
        self._started = False

    def feed(self, chunk: bytes, final: bool = False) -> Iterator[ServerSentEvent]:
        """Yields each event as its blank line is reached, so the events before one that
        exceeds `max_event_size` are given before the SSEError (as httpx2 gives them)."""
        text = self._decoder.decode(chunk, final)
        if not self._started and text:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
        if self._cr and text:
            self._cr = False
            if text[0] == "\n":
                text = text[1:]  # the LF of a CRLF split across chunks
        if text:
            self._cr = text[-1] == "\r"
        lines = (self._tail + text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._tail = lines.pop()
        for line in lines:
            sse = self._builder.line(line)
            if sse is not None:
                yield sse
        self._builder.check(len(self._tail.encode("utf-8")))

    def close(self) -> Iterator[ServerSentEvent]:
        # Whatever is left has no blank line after it: an incomplete event, dropped.
        return self.feed(b"", final=True)


class EventSource:
    """Iterate (sync or async) the events of a `text/event-stream` response."""

    def __init__(
        self, response: Response, max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE_BYTES
    ) -> None:
        self._response = response
        self._max_event_size = max_event_size

    @property
    def response(self) -> Response:
        return self._response

    def _check_content_type(self) -> None:
        value = self._response.headers.get("content-type", "")
        media_type = value.partition(";")[0].strip()
        if media_type.lower() != "text/event-stream":
            raise SSEError(
                f"Expected response with content type 'text/event-stream', got {media_type!r}.",
                request=self._response.request,
            )

    def _with_request(self, exc: SSEError) -> SSEError:
        if getattr(exc, "_request", None) is None:
            exc.request = self._response.request
        return exc

    def __iter__(self) -> Iterator[ServerSentEvent]:
        self._check_content_type()
        parser = _Parser(self._max_event_size)
        try:
            for chunk in self._response.iter_bytes():
                yield from parser.feed(chunk)
            yield from parser.close()
        except SSEError as exc:
            raise self._with_request(exc) from None

    async def __aiter__(self) -> AsyncIterator[ServerSentEvent]:
        self._check_content_type()
        parser = _Parser(self._max_event_size)
        try:
            async for chunk in self._response.aiter_bytes():
                for sse in parser.feed(chunk):
                    yield sse
            for sse in parser.close():
                yield sse
        except SSEError as exc:
            raise self._with_request(exc) from None


def _sse_headers(headers: HeaderTypes | None) -> Headers:
    from httprs._models import Headers

    merged = Headers({"Accept": "text/event-stream", "Cache-Control": "no-store"})
    if headers is not None:
        merged.update(Headers(headers))
    return merged


@contextmanager
def connect_sse(
    client: Client,
    method: str,
    url: URL | str,
    *,
    max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE_BYTES,
    **kw: Any,
) -> Iterator[EventSource]:
    """`Client.sse()`: stream the request, yield an EventSource over the response."""
    kw["headers"] = _sse_headers(kw.get("headers"))
    with client.stream(method, url, **kw) as response:
        yield EventSource(response, max_event_size=max_event_size)


@asynccontextmanager
async def aconnect_sse(
    client: AsyncClient,
    method: str,
    url: URL | str,
    *,
    max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE_BYTES,
    **kw: Any,
) -> AsyncIterator[EventSource]:
    """`AsyncClient.sse()`: stream the request, yield an EventSource over the response."""
    kw["headers"] = _sse_headers(kw.get("headers"))
    async with client.stream(method, url, **kw) as response:
        yield EventSource(response, max_event_size=max_event_size)
