"""Server-sent events: httpx2's `client.sse()`, `EventSource`, `ServerSentEvent`, `SSEError`.

The parser is checked on its own (line endings, fields, ids, size bound) and end to end
against the local uvicorn app's /sse endpoints, sync and async.
"""

from __future__ import annotations

import json

import anyio
import pytest
from servers.app import SSE_EVENTS

import httprs
from httprs._sse import _Parser

pytestmark = pytest.mark.httprs_only  # httpx 0.28.1 has no SSE


def _events(chunks, max_event_size=None):
    parser = _Parser(max_event_size)
    out = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    out.extend(parser.close())
    return [(e.event, e.data, e.id, e.retry) for e in out]


def test_line_endings_fields_and_ids():
    assert _events([b"data: a\r\n\r\ndata: b\n\ndata: c\r\r"]) == [
        ("message", "a", "", None),
        ("message", "b", "", None),
        ("message", "c", "", None),
    ]
    # One leading space is removed from a value, no more; a field without colon is empty.
    assert _events([b"data:  two\ndata\nevent:x\n\n"]) == [("x", " two\n", "", None)]
    # Unknown fields and comments do not make an event; an id with NUL is ignored.
    assert _events([b": hi\nfoo: bar\n\nid: a\x00b\n\n"]) == []
    # The last event id carries over; retry must be digits.
    assert _events([b"id: 7\ndata: a\n\nretry: x1\ndata: b\n\nretry: 20\n\n"]) == [
        ("message", "a", "7", None),
        ("message", "b", "7", None),
        ("message", "", "7", 20),
    ]


def test_retry_takes_what_httpx2_takes():
    # httpx2 reads the value with int(): a sign, spaces around it and underscores pass.
    stream = b"retry: +5\n\nretry:  6 \n\nretry: 1_000\n\nretry: -7\n\nretry: 8s\ndata: x\n\n"
    assert [e[3] for e in _events([stream])] == [5, 6, 1000, -7, None]


def test_chunk_boundaries_byte_by_byte():
    stream = b"\xef\xbb\xbfevent: e\r\ndata: caf\xc3\xa9\r\n\r\ndata: 2\r\rdata: tail"
    whole = _events([stream])
    assert whole == [("e", "caf\u00e9", "", None), ("message", "2", "", None)]
    assert _events([stream[i : i + 1] for i in range(len(stream))]) == whole


def test_max_event_size_bounds_buffering():
    with pytest.raises(httprs.SSEError, match="100 byte limit"):
        _events([b"data: " + b"x" * 200], 100)  # never terminated
    with pytest.raises(httprs.SSEError):
        _events([b"data: " + b"x" * 60 + b"\n", b"data: " + b"y" * 60 + b"\n"], 100)
    # Each event is counted on its own; comments are not buffered.
    many = b"".join(b"data: " + b"z" * 50 + b"\n\n" for _ in range(10))
    assert len(_events([many, b": keep-alive\n" * 50], 100)) == 10


def test_max_event_size_counts_lines_without_their_ends():
    # As httpx2: the bytes of each field line, not its line break.
    assert _events([b"data: 1234\n\n"], 10) == [("message", "1234", "", None)]
    assert _events([b"data: 1\ndata: 2\n\n"], 14) == [("message", "1\n2", "", None)]
    with pytest.raises(httprs.SSEError, match="13 byte limit"):
        _events([b"data: 1\ndata: 2\n\n"], 13)
    with pytest.raises(httprs.SSEError, match="9 byte limit"):
        _events([b"data: 1234\n\n"], 9)


def test_events_before_an_oversized_one_come_first():
    chunk = b"data: a\n\nid: 2\ndata: b\n\ndata: " + b"x" * 50 + b"\n\n"
    got = []
    parser = _Parser(20)
    with pytest.raises(httprs.SSEError, match="20 byte limit"):
        for sse in parser.feed(chunk):
            got.append((sse.data, sse.id))
    assert got == [("a", ""), ("b", "2")]


def _sse_client_events(flavour, body, max_event_size, got):
    """Appends the data of each event `client.sse()` gives to `got` as it arrives."""
    headers = {"content-type": "text/event-stream"}

    def handler(request):
        return httprs.Response(200, headers=headers, content=body)

    async def run_async():
        transport = httprs.MockTransport(handler)
        async with httprs.AsyncClient(transport=transport) as client:
            async with client.sse("http://sse.test/", max_event_size=max_event_size) as src:
                async for sse in src:
                    got.append(sse.data)

    if flavour == "sync":
        with httprs.Client(transport=httprs.MockTransport(handler)) as client:
            with client.sse("http://sse.test/", max_event_size=max_event_size) as src:
                got.extend(sse.data for sse in src)
    else:
        anyio.run(run_async, backend=flavour)


@pytest.mark.parametrize("flavour", ["sync", "asyncio", "trio"])
def test_client_sse_gives_the_events_before_a_size_error(flavour):
    body = b"data: a\n\ndata: b\n\ndata: " + b"x" * 50 + b"\n\n"
    got = []
    with pytest.raises(httprs.SSEError, match="20 byte limit"):
        _sse_client_events(flavour, body, 20, got)
    assert got == ["a", "b"]


def test_server_sent_event_value():
    sse = httprs.ServerSentEvent(data='{"a": 1}')
    assert sse.event == "message" and sse.id == "" and sse.retry is None
    assert sse.json() == {"a": 1}
    assert sse == httprs.ServerSentEvent("message", '{"a": 1}')
    with pytest.raises(AttributeError):
        sse.data = "x"
    assert issubclass(httprs.SSEError, httprs.TransportError)


def test_sync_sse(server):
    with httprs.Client() as client:
        with client.sse(server.url + "/sse") as source:
            assert isinstance(source, httprs.EventSource)
            assert source.response.status_code == 200
            got = [(e.event, e.data, e.id, e.retry) for e in source]
    assert got == SSE_EVENTS


def test_sync_sse_request_headers_and_method(server):
    with httprs.Client() as client:
        with client.sse(
            server.url + "/sse/echo", method="POST", json={"q": 1}, headers={"X-A": "b"}
        ) as source:
            (event,) = list(source)
    doc = event.json()
    assert doc["method"] == "POST"
    assert json.loads(doc["body"]) == {"q": 1}
    assert doc["headers"]["accept"] == "text/event-stream"
    assert doc["headers"]["cache-control"] == "no-store"
    assert doc["headers"]["x-a"] == "b"
    with httprs.Client() as client:
        with client.sse(server.url + "/sse/echo", headers={"Accept": "*/*"}) as source:
            (event,) = list(source)
    assert event.json()["headers"]["accept"] == "*/*"


def test_sync_sse_wrong_content_type(server):
    with httprs.Client() as client:
        with client.sse(server.url + "/sse/text") as source:
            with pytest.raises(httprs.SSEError, match="text/plain") as info:
                list(source)
    assert info.value.request.url == server.url + "/sse/text"


def test_sync_sse_size_limit(server):
    with httprs.Client() as client:
        with client.sse(server.url + "/sse/unterminated/65536", max_event_size=10_000) as src:
            with pytest.raises(httprs.SSEError, match="10000 byte limit") as info:
                list(src)
    assert info.value.request.method == "GET"
    with httprs.Client() as client:
        with client.sse(server.url + "/sse/unterminated/65536", max_event_size=None) as src:
            assert list(src) == []  # unbounded: the unterminated event is dropped at EOF


@pytest.mark.anyio
async def test_async_sse(server):
    async with httprs.AsyncClient() as client:
        async with client.sse(server.url + "/sse") as source:
            got = [(e.event, e.data, e.id, e.retry) async for e in source]
        async with client.sse(server.url + "/sse/echo", method="QUERY", content=b"q") as src:
            events = [e async for e in src]
        async with client.sse(server.url + "/sse/text") as source:
            with pytest.raises(httprs.SSEError):
                async for _ in source:
                    pass
        async with client.sse(server.url + "/sse/unterminated/65536", max_event_size=5000) as s:
            with pytest.raises(httprs.SSEError, match="5000 byte limit"):
                async for _ in s:
                    pass
    assert got == SSE_EVENTS
    assert events[0].json()["method"] == "QUERY" and events[0].json()["body"] == "q"
    await anyio.sleep(0)
