"""HTTP/2: the test servers (hypercorn over TLS + ALPN and h2c, the scripted h2-package
server), checked with httpx + h2 (the reference client) and a raw h2 client, so the
HTTP/2 tests of httprs stand on servers known to behave.

Then httprs's own HTTP/2 (Client(http2=True)), sync and async: TLS + ALPN, h2c,
multiplexing, GOAWAY / REFUSED_STREAM / RST_STREAM, cancellation, per-stream timeouts,
differential against httpx + h2, and through a CONNECT proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import ssl
import struct
import threading
import time

import anyio
import h2.config
import h2.connection
import h2.errors
import h2.events
import httpx
import hyperframe.frame
import pytest
import twin
from servers.app import expected_bytes
from servers.h2server import (
    goaway_every,
    goaway_midflight,
    h2_context,
    refuse_first,
    reset_with,
    serve_path,
    stop_reading,
)

import httprs


def test_hypercorn_tls_speaks_h2_by_alpn(hypercorn_tls, certs):
    with httpx.Client(
        http2=True, verify=ssl.create_default_context(cafile=certs.ca_file)
    ) as client:
        r = client.get(hypercorn_tls.url + "/")
        assert r.http_version == "HTTP/2"
        assert r.status_code == 200
        assert r.text == "Hello, world!"
        echo = client.post(hypercorn_tls.url + "/echo", content=b"abc").json()
        assert echo["http_version"] == "2"
        assert echo["body"] == "abc"
    # The same server still answers HTTP/1.1 clients.
    with httpx.Client(verify=ssl.create_default_context(cafile=certs.ca_file)) as client:
        assert client.get(hypercorn_tls.url + "/").http_version == "HTTP/1.1"


def test_hypercorn_h2c_prior_knowledge(hypercorn_h2c):
    with httpx.Client(http1=False, http2=True) as client:
        r = client.get(hypercorn_h2c.url + "/bytes/100000")
        assert r.http_version == "HTTP/2"
        assert len(r.content) == 100000
    with httpx.Client() as client:
        assert client.get(hypercorn_h2c.url + "/").http_version == "HTTP/1.1"


class RawH2Client:
    """A blocking h2-package client over one socket, to check the scripted server."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="latin-1")
        )
        self.h2.initiate_connection()
        self.sock.sendall(self.h2.data_to_send())
        self.events: list = []

    def request(self, path: str) -> int:
        sid = self.h2.get_next_available_stream_id()
        headers = [(":method", "GET"), (":path", path), (":scheme", "http")]
        self.h2.send_headers(sid, [*headers, (":authority", "x")], end_stream=True)
        self.sock.sendall(self.h2.data_to_send())
        return sid

    def read_until(self, predicate) -> list:
        while not any(predicate(e) for e in self.events):
            data = self.sock.recv(65536)
            if not data:
                break
            self.events += self.h2.receive_data(data)
            if out := self.h2.data_to_send():
                self.sock.sendall(out)
        return self.events

    def close(self) -> None:
        self.sock.close()


def test_scripted_h2_server_goaways_after_n_requests(h2_scripted):
    srv = h2_scripted(goaway_every(3))
    client = RawH2Client(srv.port)
    try:
        for i in range(3):
            sid = client.request(f"/{i}")
            events = client.read_until(
                lambda e, sid=sid: isinstance(e, h2.events.StreamEnded) and e.stream_id == sid
            )
        data = [e.data for e in events if isinstance(e, h2.events.DataReceived) and e.data]
        assert data == [b"/0", b"/1", b"/2"]
        events = client.read_until(lambda e: isinstance(e, h2.events.ConnectionTerminated))
        goaway = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
        assert goaway[0].last_stream_id == 5
        assert goaway[0].error_code == 0
    finally:
        client.close()


def test_scripted_h2_server_refused_stream_and_settings(h2_scripted):
    srv = h2_scripted(refuse_first, max_concurrent_streams=7, initial_window_size=100)
    client = RawH2Client(srv.port)
    try:
        first = client.request("/a")
        events = client.read_until(lambda e: isinstance(e, h2.events.StreamReset))
        reset = [e for e in events if isinstance(e, h2.events.StreamReset)][0]
        assert reset.stream_id == first
        assert reset.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
        assert client.h2.remote_settings.max_concurrent_streams == 7
        assert client.h2.remote_settings.initial_window_size == 100
        second = client.request("/b")
        events = client.read_until(
            lambda e: isinstance(e, h2.events.StreamEnded) and e.stream_id == second
        )
        assert [e.data for e in events if isinstance(e, h2.events.DataReceived) and e.data] == [
            b"/b"
        ]
    finally:
        client.close()


def test_httpx_fails_on_refused_stream_reference(h2_scripted):
    """The reference: httpx + h2 raises RemoteProtocolError for a REFUSED_STREAM (it does
    not retry); the connection serves the next request."""
    srv = h2_scripted(refuse_first)
    with httpx.Client(http1=False, http2=True) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(srv.url + "/x")
        r = client.get(srv.url + "/y")
        assert (r.http_version, r.text) == ("HTTP/2", "/y")


def test_scripted_h2_server_answers_httpx(h2_scripted):
    srv = h2_scripted(serve_path)
    with httpx.Client(http1=False, http2=True) as client:
        for path in ("/one", "/two"):
            r = client.get(srv.url + path)
            assert (r.status_code, r.http_version, r.text) == (200, "HTTP/2", path)
    assert srv.connections == 1


def test_scripted_goaway_midflight(h2_scripted):
    """GOAWAY naming the first of two streams, then the first stream's response (the h2
    package cannot read frames after a GOAWAY, so the frames are parsed raw)."""
    srv = h2_scripted(goaway_midflight)
    client = RawH2Client(srv.port)
    try:
        first = client.request("/first")
        second = client.request("/second")
        raw = b""
        client.sock.settimeout(1.0)
        while True:
            try:
                data = client.sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            raw += data
        frames = []
        while len(raw) >= 9:
            frame, length = hyperframe.frame.Frame.parse_frame_header(memoryview(raw[:9]))
            frame.parse_body(memoryview(raw[9 : 9 + length]))
            frames.append(frame)
            raw = raw[9 + length :]
        kinds = [(type(f).__name__, f.stream_id) for f in frames]
        goaway = [f for f in frames if isinstance(f, hyperframe.frame.GoAwayFrame)]
        assert goaway and goaway[0].last_stream_id == first < second
        after = kinds[kinds.index(("GoAwayFrame", 0)) :]
        assert ("HeadersFrame", first) in after
        assert ("DataFrame", first) in after
        assert all(sid != second for _, sid in kinds)
    finally:
        client.close()


def test_httpx_reference_on_stream_reset(h2_scripted):
    """httpx + h2 turns RST_STREAM into RemoteProtocolError; its message gives the code
    as a number (httprs's names it)."""
    srv = h2_scripted(reset_with(h2.errors.ErrorCodes.INTERNAL_ERROR))
    with httpx.Client(http1=False, http2=True) as client:
        with pytest.raises(
            httpx.RemoteProtocolError, match="StreamReset stream_id:1, error_code:2"
        ):
            client.get(srv.url + "/")


def test_scripted_server_that_stops_reading_stalls_an_upload(h2_scripted):
    """A server that stops reading: the upload fills the 64 KiB windows, then httpx
    times out."""
    srv = h2_scripted(stop_reading)
    timeout = httpx.Timeout(1.0)
    with httpx.Client(http1=False, http2=True, timeout=timeout) as client:
        with pytest.raises(httpx.TimeoutException):
            client.post(srv.url + "/", content=b"x" * 1_000_000)


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("streamed", [False, True], ids=["bytes", "iterator"])
def test_upload_to_a_server_that_stops_reading_times_out(h2_scripted, flavour, streamed):
    """Backpressure on an upload: once the server stops reading, its windows stay
    shut, the body waits (nothing buffered without bound) and the stream fails with
    WriteTimeout, as httpx (above) times out."""
    srv = h2_scripted(stop_reading)
    chunk = b"x" * 65536

    def chunks():
        for _ in range(16):  # 1 MiB, far more than the 64 KiB windows
            yield chunk

    async def achunks():
        for c in chunks():
            yield c

    async def body(tw):
        content = (chunks() if not tw.is_async else achunks()) if streamed else chunk * 16
        timeout = httprs.Timeout(5.0, write=0.5)
        async with tw.client(http1=False, http2=True, timeout=timeout) as client:
            started = time.monotonic()
            with pytest.raises(httprs.WriteTimeout):
                await client.post(srv.url + "/", content=content)
            assert time.monotonic() - started < 4

    twin.run(flavour, body)


# ---------------------------------------------------------------------------
# httprs's own HTTP/2 (Client(http2=True))
# ---------------------------------------------------------------------------


def _ca(certs):
    return ssl.create_default_context(cafile=certs.ca_file)


def _serve_after(n: int):
    """Answer nothing until n requests are open on the connection, then all of them:
    only a client that multiplexes them on one connection gets its answers."""

    def handler(h2c) -> None:
        held = []
        while len(held) < n:
            req = h2c.next_request()
            if req is None:
                return
            held.append(req)
        for req in held:
            h2c.respond(req.stream_id, 200, req.path.encode())
        serve_path(h2c)

    return handler


def _first_connection(first, then=serve_path):
    """``first`` on the server's first connection, ``then`` on every later one."""
    lock = threading.Lock()
    seen = []

    def handler(h2c) -> None:
        with lock:
            index = len(seen)
            seen.append(index)
        (first if index == 0 else then)(h2c)

    return handler


def test_tls_alpn_h2_get_post_stream(hypercorn_tls, certs):
    with httprs.Client(http2=True, verify=_ca(certs)) as client:
        r = client.get(hypercorn_tls.url + "/")
        assert (r.status_code, r.http_version, r.text) == (200, "HTTP/2", "Hello, world!")
        assert r.reason_phrase == "OK"
        assert "reason_phrase" not in r.extensions
        echo = client.post(hypercorn_tls.url + "/echo", content=b"abc").json()
        assert (echo["http_version"], echo["body"], echo["method"]) == ("2", "abc", "POST")
        names = [k for k, _ in echo["headers"]]
        assert "connection" not in names and "transfer-encoding" not in names
        # A streamed upload (iterator: DATA frames as it is read).
        r = client.post(hypercorn_tls.url + "/echo_body", content=iter([b"ab", b"cd", b"e"]))
        assert r.content == b"abcde"
        with client.stream("GET", hypercorn_tls.url + "/bytes/3000000") as r:
            assert r.http_version == "HTTP/2"
            got = b"".join(r.iter_bytes())
        assert got == expected_bytes(3000000)
        h = client.get(hypercorn_tls.url + "/headers").headers
        assert h.get_list("x-dup") == ["one", "two"]
        assert all(k == k.lower() for k in h.keys())


def test_h2c_prior_knowledge(hypercorn_h2c):
    with httprs.Client(http1=False, http2=True) as client:
        r = client.get(hypercorn_h2c.url + "/bytes/100000")
        assert r.http_version == "HTTP/2"
        assert r.content == expected_bytes(100000)
    # http2=True with HTTP/1.1 allowed: clear text stays HTTP/1.1 (as httpx).
    with httprs.Client(http2=True) as client:
        assert client.get(hypercorn_h2c.url + "/").http_version == "HTTP/1.1"


def _own_headers_in_turn(client, url, version, extra=None):
    """Equal, changed, client-level and invalid headers and bodies in turn: each
    request's own reach the server (its /echo answer), a bad one fails before a byte
    is written. `extra` headers go with every request."""
    extra = extra or {}

    def seen(method="GET", headers=None, **kwargs):
        r = client.request(method, url, headers={**extra, **(headers or {})}, **kwargs)
        assert (r.status_code, r.http_version) == (200, version)
        return {k.lower(): v for k, v in r.json()["headers"]}

    assert seen(headers={"X-V": "a"})["x-v"] == "a"
    assert seen(headers={"X-V": "a"})["x-v"] == "a"
    assert seen(headers={"X-V": "b"})["x-v"] == "b"
    assert "x-v" not in seen()
    client.headers["X-C"] = "1"
    assert seen()["x-c"] == "1"
    client.headers["X-C"] = "2"
    assert seen()["x-c"] == "2"
    with pytest.raises(httprs.LocalProtocolError):
        client.get(url, headers={**extra, "X-V": "a\n"})
    assert seen(headers={"X-V": "a"})["x-v"] == "a"
    assert seen("POST", content=b"abc")["content-length"] == "3"
    assert seen("POST", content=b"abcd")["content-length"] == "4"
    with pytest.raises(httprs.LocalProtocolError):
        client.post(url, content=b"abc", headers={**extra, "Content-Length": "4"})
    assert seen("POST", content=b"abcd")["content-length"] == "4"


def test_http2_requests_send_their_own_headers(hypercorn_h2c):
    """A request that may go as HTTP/2 reuses the previous one's checked headers only
    when they are equal: every change reaches the server, a bad value still fails."""
    with httprs.Client(http1=False, http2=True) as client:
        _own_headers_in_turn(client, hypercorn_h2c.url + "/echo", "HTTP/2")


@pytest.mark.parametrize("route", ["cleartext", "alpn_http11", "upgrade"])
def test_http2_client_writes_each_http11_head_from_its_own_headers(
    route, server, https_server, hypercorn_tls, certs
):
    """Where a request of an http2=True client goes out as HTTP/1.1 after all (clear
    text, ALPN picking http/1.1, an Upgrade request), its head is written from the
    transport's cached plan and converted headers (write_planned_head): equal,
    changed, client-level and invalid headers and bodies in turn each reach the server
    as sent, and a bad one still fails before a byte is written. Fails with a cache
    that hands out the last request's headers (a stale head)."""
    kw, extra = {}, {}
    if route == "cleartext":
        url = server.url + "/echo"
    elif route == "alpn_http11":
        url, kw = https_server.url + "/", {"verify": _ca(certs)}
    else:
        url, kw, extra = hypercorn_tls.url + "/echo", {"verify": _ca(certs)}, _UPGRADE
    with httprs.Client(http2=True, **kw) as client:
        _own_headers_in_turn(client, url, "HTTP/1.1", extra)


def test_alpn_falls_back_to_http11(https_server, certs):
    """A TLS server without h2 in its ALPN: HTTP/1.1 on the same connection attempt."""
    with httprs.Client(http2=True, verify=_ca(certs)) as client:
        r = client.get(https_server.url + "/")
        assert r.http_version == "HTTP/1.1"
        assert r.status_code == 200


def test_http1_false_never_speaks_http11(https_server, certs):
    """http1=False forbids HTTP/1.1: against an HTTP/1.1-only TLS server the client
    speaks HTTP/2 (as httpcore does) and fails; it never falls back."""
    with httprs.Client(http1=False, http2=True, verify=_ca(certs), timeout=5) as client:
        with pytest.raises(httprs.TransportError):
            client.get(https_server.url + "/")


def _get_in_threads(client, base_url, names):
    """GET base_url/<name> for each name, each on a thread of its own, all at once:
    {name: response}."""
    results = {}

    def fetch(name):
        results[name] = client.get(f"{base_url}/{name}")

    threads = [threading.Thread(target=fetch, args=(name,)) for name in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _frames_at_once(h2c) -> None:
    """Answers each request with three DATA frames in one write, then (50 ms later) a
    fourth with the stream's end."""
    while (req := h2c.next_request()) is not None:
        h2c.send_headers(req.stream_id)
        for data in (b"alpha", b"bravo", b"!charlie"):
            h2c.h2.send_data(req.stream_id, data)
        h2c.flush()
        time.sleep(0.05)
        h2c.h2.send_data(req.stream_id, b"delta", end_stream=True)
        h2c.flush()


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("target", ["httprs", "httpx"])
def test_streamed_data_frames_come_one_by_one(h2_scripted, flavour, target):
    """As h2 hands httpx each DATA frame apart: a stream never yields bytes of two
    frames in one item, even of frames that came in one write."""
    srv = h2_scripted(_frames_at_once)

    async def body(tw):
        async with tw.client(http1=False, http2=True) as c:
            async with c.stream("GET", srv.url) as r:
                items = [item async for item in r.aiter_raw()]
            assert items == [b"alpha", b"bravo", b"!charlie", b"delta"]
            assert (await c.get(srv.url)).content == b"alphabravo!charliedelta"

    if target == "httpx":
        twin.run(flavour, body, sync_cls=httpx.Client, async_cls=httpx.AsyncClient)
    else:
        twin.run(flavour, body)


def _frames_split_across_writes(h2c) -> None:
    """Answers each request with two DATA frames, each written in two parts 50 ms
    apart (the frame's header and first bytes, then the rest), the last ending the
    stream."""
    while (req := h2c.next_request()) is not None:
        h2c.send_headers(req.stream_id)
        for data, last in ((b"alphabravo", False), (b"charliedelta", True)):
            h2c.h2.send_data(req.stream_id, data, end_stream=last)
            wire = h2c.h2.data_to_send()
            h2c.conn.send(wire[:14])
            time.sleep(0.05)
            h2c.conn.send(wire[14:])
            time.sleep(0.05)


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("target", ["httprs", "httpx"])
def test_streamed_data_frame_split_across_writes_comes_whole(h2_scripted, flavour, target):
    """h2 hands httpx each DATA frame whole: the part of a frame that came first is
    held back until the rest of it is in (or the stream ends), not yielded apart."""
    srv = h2_scripted(_frames_split_across_writes)

    async def body(tw):
        async with tw.client(http1=False, http2=True) as c:
            async with c.stream("GET", srv.url) as r:
                items = [item async for item in r.aiter_raw()]
                assert r.num_bytes_downloaded == len(b"alphabravocharliedelta")
            assert items == [b"alphabravo", b"charliedelta"]

    if target == "httpx":
        twin.run(flavour, body, sync_cls=httpx.Client, async_cls=httpx.AsyncClient)
    else:
        twin.run(flavour, body)


def _padding_after_the_data(got_first: threading.Event, waited: list):
    """Answers with three DATA frames, the first two padded and each written in two
    parts 50 ms apart: the frame's header and data, then its padding (which ends it).
    After the first frame it waits (5 s at most) for the client to have its data."""

    def handler(h2c) -> None:
        while (req := h2c.next_request()) is not None:
            h2c.send_headers(req.stream_id)
            for data, last in ((b"alpha", False), (b"bravo", False), (b"charlie", True)):
                pad = None if last else 20
                h2c.h2.send_data(req.stream_id, data, end_stream=last, pad_length=pad)
                wire = h2c.h2.data_to_send()
                if last:
                    h2c.conn.send(wire)
                    continue
                cut = 9 + 1 + len(data)  # the frame header, the pad length, the data
                h2c.conn.send(wire[:cut])
                time.sleep(0.05)
                h2c.conn.send(wire[cut:])
                if data == b"alpha":
                    waited.append(got_first.wait(5))

    return handler


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("target", ["httprs", "httpx"])
def test_padded_frame_ends_with_its_padding(h2_scripted, flavour, target):
    """A padded DATA frame ends when its padding is in, which may come after its data:
    the frame is yielded then, alone (it was held back with its data and joined to the
    next frames' bytes), before the server sends the next frame, as h2 gives it to
    httpx."""
    got_first, waited = threading.Event(), []
    srv = h2_scripted(_padding_after_the_data(got_first, waited))

    async def body(tw):
        async with tw.client(http1=False, http2=True) as c:
            async with c.stream("GET", srv.url) as r:
                items = []
                async for item in r.aiter_raw():
                    items.append(item)
                    got_first.set()
            assert items == [b"alpha", b"bravo", b"charlie"]
            assert waited == [True]

    if target == "httpx":
        twin.run(flavour, body, sync_cls=httpx.Client, async_cls=httpx.AsyncClient)
    else:
        twin.run(flavour, body)


def _second_frame_after(gap: float):
    def handler(h2c) -> None:
        while (req := h2c.next_request()) is not None:
            h2c.send_headers(req.stream_id)
            h2c.h2.send_data(req.stream_id, b"first")
            h2c.conn.send(h2c.h2.data_to_send())
            time.sleep(gap)
            h2c.h2.send_data(req.stream_id, b"second", end_stream=True)
            h2c.conn.send(h2c.h2.data_to_send())

    return handler


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("target", ["httprs", "httpx"])
def test_stream_read_timeout_does_not_run_while_the_consumer_works(h2_scripted, target, flavour):
    """As over HTTP/1.1 (tests/test_timeouts.py): the stream's read deadline runs while
    its consumer waits for bytes, not while it works on a frame it took."""
    srv = h2_scripted(_second_frame_after(1.2))
    timeout = (httpx if target == "httpx" else httprs).Timeout(5.0, read=0.5)

    async def body(tw):
        async with tw.client(http1=False, http2=True, timeout=timeout) as c:
            async with c.stream("GET", srv.url) as r:
                items = []
                async for item in r.aiter_raw():
                    items.append(item)
                    if len(items) == 1:
                        await tw.sleep(1.0)
            assert items == [b"first", b"second"]

    if target == "httpx":
        twin.run(flavour, body, sync_cls=httpx.Client, async_cls=httpx.AsyncClient)
    else:
        twin.run(flavour, body)


def _declared_body_without_its_end(h2c) -> None:
    """Answers with content-length 10 and those 10 bytes, never the stream's end."""
    while (req := h2c.next_request()) is not None:
        h2c.send_headers(req.stream_id, headers=[("content-length", "10")])
        h2c.h2.send_data(req.stream_id, b"0123456789")
        h2c.conn.send(h2c.h2.data_to_send())


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("how", ["iter_raw", "iter_bytes", "read"])
def test_read_timeout_waiting_for_the_end_after_every_declared_byte(h2_scripted, how, flavour):
    """Every declared byte is in, END_STREAM never comes: the consumer's wait for it,
    with no room left to give, still runs the read timeout (it hung when the deadline
    ran only while the consumer had a buffer attached)."""
    srv = h2_scripted(_declared_body_without_its_end)

    async def body(tw):
        async with tw.client(http1=False, http2=True, timeout=httprs.Timeout(5, read=0.5)) as c:
            async with c.stream("GET", srv.url) as r:
                t0 = time.monotonic()
                with pytest.raises(httprs.ReadTimeout):
                    if how == "read":
                        await r.aread()
                    else:
                        async for _ in getattr(r, "a" + how)():
                            pass
                assert time.monotonic() - t0 < 3

    twin.run(flavour, body)


def test_multiplexing_threads_share_one_connection(h2_scripted):
    n = 8
    srv = h2_scripted(_serve_after(n))
    with httprs.Client(http1=False, http2=True, timeout=10) as client:
        got = _get_in_threads(client, srv.url, range(n))
        assert client._transport._pool_stats()["connections"] == 1
    assert {i: (r.http_version, r.text) for i, r in got.items()} == {
        i: ("HTTP/2", f"/{i}") for i in range(n)
    }
    assert srv.connections == 1


@pytest.mark.anyio
async def test_multiplexing_tasks_share_one_connection(h2_scripted):
    n = 20
    srv = h2_scripted(_serve_after(n))
    results = {}
    async with httprs.AsyncClient(http1=False, http2=True, timeout=10) as client:

        async def fetch(i):
            r = await client.get(f"{srv.url}/{i}")
            results[i] = (r.http_version, r.text)

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(fetch, i)
    assert results == {i: ("HTTP/2", f"/{i}") for i in range(n)}
    assert srv.connections == 1


@pytest.mark.anyio
async def test_async_tls_alpn(hypercorn_tls, certs):
    async with httprs.AsyncClient(http2=True, verify=_ca(certs)) as client:
        r = await client.get(hypercorn_tls.url + "/")
        assert (r.http_version, r.text) == ("HTTP/2", "Hello, world!")
        r = await client.post(hypercorn_tls.url + "/echo_body", content=b"x" * 200000)
        assert r.content == b"x" * 200000

        async def chunks():
            for part in (b"ab", b"cd", b"e" * 100000):
                yield part

        r = await client.post(hypercorn_tls.url + "/echo_body", content=chunks())
        assert r.content == b"abcd" + b"e" * 100000
        async with client.stream("GET", hypercorn_tls.url + "/bytes/2000000") as r:
            got = b"".join([c async for c in r.aiter_bytes()])
        assert got == expected_bytes(2000000)


def test_max_concurrent_streams_opens_another_connection(h2_scripted):
    """The server allows 2 streams per connection: with 2 held open on the first
    connection, 2 more requests go to a second one (within Limits), and the first
    connection answers only once the second has both of them."""
    second_full = threading.Event()

    def first(h2c) -> None:
        warm = h2c.next_request()
        h2c.respond(warm.stream_id, 200, warm.path.encode())
        held = [h2c.next_request(), h2c.next_request()]
        second_full.wait(10)
        for req in held:
            h2c.respond(req.stream_id, 200, req.path.encode())
        serve_path(h2c)

    def then(h2c) -> None:
        held = [h2c.next_request(), h2c.next_request()]
        second_full.set()
        for req in held:
            h2c.respond(req.stream_id, 200, req.path.encode())
        serve_path(h2c)

    srv = h2_scripted(_first_connection(first, then), max_concurrent_streams=2)
    with httprs.Client(http1=False, http2=True, timeout=10) as client:
        assert client.get(srv.url + "/warm").text == "/warm"  # SETTINGS known now
        got = _get_in_threads(client, srv.url, range(4))
    assert {i: r.text for i, r in got.items()} == {i: f"/{i}" for i in range(4)}
    assert srv.connections == 2


@pytest.mark.parametrize("limit", [1, 3])
def test_cold_connection_keeps_to_one_stream_until_settings(h2_scripted, limit):
    """Concurrent first requests on a fresh connection: one stream on the wire until the
    server's SETTINGS came (as httpcore), never nghttp2's default of 100 at once, which a
    server allowing fewer (h2, hypercorn) ends the connection for: every request succeeds."""
    srv = h2_scripted(serve_path, max_concurrent_streams=limit)
    with httprs.Client(http1=False, http2=True, timeout=10) as client:
        got = _get_in_threads(client, srv.url, range(10))
    assert {i: r.text for i, r in got.items()} == {i: f"/{i}" for i in range(10)}


@pytest.mark.anyio
@pytest.mark.parametrize("limit", [1, 3])
async def test_cold_connection_keeps_to_one_stream_until_settings_async(h2_scripted, limit):
    srv = h2_scripted(serve_path, max_concurrent_streams=limit)
    results = {}
    async with httprs.AsyncClient(http1=False, http2=True, timeout=10) as client:

        async def fetch(i):
            results[i] = (await client.get(f"{srv.url}/{i}")).text

        async with anyio.create_task_group() as tg:
            for i in range(30):
                tg.start_soon(fetch, i)
    assert results == {i: f"/{i}" for i in range(30)}


@pytest.mark.httprs_only  # (httpx's message is h2's ConnectionTerminated repr)
def test_connection_lost_after_an_error_goaway_names_it(h2_scripted):
    """The server sends GOAWAY with an error code naming the open stream, then closes:
    the stream's RemoteProtocolError names the GOAWAY (httpx reports its
    ConnectionTerminated), and the client goes on with a new connection."""

    def first(h2c) -> None:
        req = h2c.next_request()
        h2c.goaway(last_stream_id=req.stream_id, code=h2.errors.ErrorCodes.INTERNAL_ERROR)
        h2c.conn.close()

    srv = h2_scripted(_first_connection(first))
    with httprs.Client(http1=False, http2=True, timeout=10) as client:
        with pytest.raises(httprs.RemoteProtocolError, match=r"GOAWAY \(INTERNAL_ERROR"):
            client.get(srv.url + "/first")
        assert client.get(srv.url + "/second").text == "/second"


def test_goaway_retries_unprocessed_stream(h2_scripted):
    """GOAWAY names the first of two streams: the first finishes, the second (never
    processed) goes out again on a new connection."""
    srv2 = h2_scripted(_first_connection(goaway_midflight))
    with httprs.Client(http1=False, http2=True, timeout=10) as client:
        got = _get_in_threads(client, srv2.url, ("a", "b"))
    assert {name: r.text for name, r in got.items()} == {"a": "/a", "b": "/b"}
    assert srv2.connections == 2


def test_ten_thousand_requests_across_goaways(h2_scripted):
    """nginx closes an HTTP/2 connection after 1,000 requests (GOAWAY): 10,000
    sequential requests pass with no error, on 10 connections."""
    srv = h2_scripted(goaway_every(1000))
    with httprs.Client(http1=False, http2=True, timeout=10) as client:
        for i in range(10000):
            r = client.get(f"{srv.url}/{i}")
            assert r.text == f"/{i}"
    assert srv.connections == 10


@pytest.mark.parametrize("flavour", ["sync", "asyncio"])
@pytest.mark.timeout(600)
def test_ten_thousand_requests_to_nginx(nginx_h2, certs, flavour):
    """10,000 sequential requests to nginx's own HTTP/2 listener, which closes each
    connection with GOAWAY after 1,000 requests (its keepalive_requests default):
    every one succeeds, over HTTP/2, on fresh connections as nginx ends them. httpx's
    h2 users get ``ConnectionTerminated last_stream_id:1999`` here."""
    from servers.nginx import BODY

    ctx = _ca(certs)
    before = nginx_h2.accepted(ctx)

    async def body(tw):
        async with tw.client(http2=True, verify=ctx) as client:
            versions = set()
            for _ in range(10_000):
                r = await client.get(nginx_h2.url + "/small")
                assert (r.status_code, r.text) == (200, BODY)
                versions.add(r.http_version)
            assert versions == {"HTTP/2"}

    twin.run(flavour, body)
    # nginx really ended them: 1,000 requests a connection, so at least 10 of ours
    # (the second status request adds one).
    assert nginx_h2.accepted(ctx) - before >= 10 + 1


def test_refused_stream_is_retried(h2_scripted):
    """REFUSED_STREAM: the server did not process the request; httprs sends it again
    (httpx raises RemoteProtocolError here: test_httpx_fails_on_refused_stream_reference)."""
    srv = h2_scripted(refuse_first)
    with httprs.Client(http1=False, http2=True) as client:
        r = client.get(srv.url + "/x")
        assert (r.http_version, r.text) == ("HTTP/2", "/x")


def _h2_goaway_then_http11(certs):
    """TLS; the first connection picks h2 by ALPN and answers the first request with
    GOAWAY(last_stream_id=0): not processed. Later connections pick http/1.1 and
    answer each request with its target."""
    from servers.h2server import H2Conn
    from servers.scripted import ScriptedServer

    h2_ctx = h2_context(certs.server)
    h1_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certs.server.configure_cert(h1_ctx)
    h1_ctx.set_alpn_protocols(["http/1.1"])

    def handler(conn) -> None:
        conn.sock.settimeout(5)
        conn.sock = (h2_ctx if conn.index == 0 else h1_ctx).wrap_socket(
            conn.sock, server_side=True
        )
        conn.sock.settimeout(0.05)
        if conn.index == 0:
            h2c = H2Conn(conn)
            if h2c.next_request() is not None:
                h2c.goaway(last_stream_id=0)
                h2c.drain(2.0)
            return
        while (req := conn.read_request()) is not None:
            conn.respond(req.target.encode())

    return ScriptedServer(handler)


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.timeout(30)
def test_retry_after_goaway_on_a_connection_that_speaks_http11(certs, flavour):
    """A stream the server did not process goes out again on a new connection, which
    ALPN makes HTTP/1.1: the response is an HTTP/1.1 one in every respect (reason
    phrase, no `stream_id`), and a streamed body is not held open as an HTTP/2 stream
    would be. The retry used to keep the first attempt's HTTP/2 marks."""
    srv = _h2_goaway_then_http11(certs)
    url = f"https://127.0.0.1:{srv.port}"

    async def body(tw):
        async with tw.client(http2=True, verify=_ca(certs), timeout=5) as client:
            r = await client.get(url + "/x")
            assert (r.status_code, r.http_version, r.text) == (200, "HTTP/1.1", "/x")
            assert r.reason_phrase == "OK"
            assert "stream_id" not in r.extensions

    try:
        twin.run(flavour, body)
    finally:
        srv.close()
    assert srv.connections == 2
    assert not srv.errors


def _answer_then_goaway_below(h2c) -> None:
    """Answer the request's head and part of its body, then GOAWAY naming a lower
    last stream id (as if it had not been processed), then close."""
    req = h2c.next_request()
    if req is None:
        return
    h2c.send_headers(req.stream_id, 200, [("content-length", "10")])
    h2c.send_data(req.stream_id, b"part", end=False)
    time.sleep(0.2)
    h2c.goaway(last_stream_id=0)
    time.sleep(0.2)


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.timeout(30)
def test_answered_stream_is_never_retried_whatever_goaway_says(h2_scripted, flavour):
    """A GOAWAY whose last_stream_id is below a stream the server already answered
    contradicts itself: the answered request was processed, so it fails
    (RemoteProtocolError) and is never sent again. It used to be retried on a new
    connection under the response its consumer already had: a POST went out twice."""
    srv = h2_scripted(_first_connection(_answer_then_goaway_below))

    async def body(tw):
        async with tw.client(http1=False, http2=True, timeout=5) as client:
            with pytest.raises(httprs.RemoteProtocolError, match="GOAWAY"):
                await client.post(srv.url + "/once", content=b"pay")

    twin.run(flavour, body)
    assert srv.connections == 1


# /big: 111 DATA frames of 10,000 bytes, frame i all byte i. A stream's window is
# 64 KiB until its reader first reads: the first 6 frames go at once, the other 105
# only after that read. Left unread, the 105th of those takes the body past the 1 MiB
# high-water mark, so its bytes are not given back until the reader resumes.
_FRAME, _FIRST, _FRAMES = 10_000, 6, 111


def _big_body(end: bool):
    """/big: the head and the frames its initial window lets go, then (once /drive,
    the second request, is open: the client sends it after its first read) the other
    frames, with `end` the end of the stream; /drive is answered after them, so a
    client that has read /drive has taken them in. Then the server stays silent."""

    def handler(h2c) -> None:
        big = h2c.next_request()
        if big is None:
            return
        length = [("content-length", str(_FRAME * _FRAMES))] if end else []
        h2c.send_headers(big.stream_id, 200, length)

        def send(i: int) -> bool:
            while h2c.h2.local_flow_control_window(big.stream_id) < _FRAME:
                if not h2c.pump():
                    return False
            last = end and i == _FRAMES - 1
            h2c.h2.send_data(big.stream_id, bytes([i]) * _FRAME, end_stream=last)
            h2c.flush()
            return True

        for i in range(_FIRST):
            send(i)
        drive = h2c.next_request()
        if drive is None:
            return
        for i in range(_FIRST, _FRAMES):
            if not send(i):
                return
        h2c.respond(drive.stream_id, 200, b"driven")
        h2c.drain(10.0)

    return handler


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.timeout(30)
def test_read_timeout_after_a_stopped_reader_resumes(h2_scripted, flavour):
    """A reader that stopped (its buffer past the high-water mark: no read timeout
    runs, the server waits for window) and then reads again gets its read timeout
    back: the connection's timer is armed again when it resumes. It was not, so once
    the server went silent the read waited for ever."""
    srv = h2_scripted(_big_body(end=False))

    async def body(tw):
        async with tw.client(http1=False, http2=True, timeout=1.0) as client:
            async with client.stream("GET", srv.url + "/big") as r:
                chunks = r.aiter_bytes()
                got = len(await chunks.__anext__())  # the first read opens the window
                # Another request drives the connection meanwhile (a sync client
                # reads only while someone waits): /big's bytes arrive unread.
                assert (await client.get(srv.url + "/drive")).text == "driven"
                started = time.monotonic()
                with pytest.raises(httprs.ReadTimeout):
                    async for chunk in chunks:
                        got += len(chunk)
                assert got == _FRAME * _FRAMES
                assert time.monotonic() - started < 10

    twin.run(flavour, body)
    assert srv.connections == 1


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.timeout(30)
def test_buffered_body_past_a_mebibyte_comes_frame_by_frame(h2_scripted, flavour):
    """An HTTP/2 stream's body buffered while the consumer does not read can pass
    1 MiB once it has read (the window is given back until 1 MiB waits unread: here
    at least 1,050,000 bytes). What is moved out of that buffer
    (Engine::take_buffered: all of it, up to 2 MiB) comes frame by frame, as h2 gives
    httpx the frames, in order, none lost."""
    srv = h2_scripted(_big_body(end=True))
    expected = b"".join(bytes([i]) * _FRAME for i in range(_FRAMES))

    async def body(tw):
        async with tw.client(http1=False, http2=True) as client:
            async with client.stream("GET", srv.url + "/big") as r:
                raw = r.aiter_raw()
                first = await raw.__anext__()  # the first read opens the window
                # Another request drives the connection meanwhile (a sync client
                # reads only while someone waits): the rest of /big arrives unread.
                assert (await client.get(srv.url + "/drive")).text == "driven"
                chunks = [chunk async for chunk in raw]
        assert len(first) == _FRAME
        assert first + b"".join(chunks) == expected
        # (A frame still arriving when an item is taken may come in two.)
        ends = set(itertools.accumulate(len(c) for c in [first, *chunks]))
        assert ends >= set(range(_FRAME, len(expected) + 1, _FRAME))

    twin.run(flavour, body)
    assert srv.connections == 1


def _window_watch(opened: threading.Event):
    """/big: the head and the frames its initial window lets go; /drive, answered
    after them; then `opened` is set once /big's window lets another frame go, and
    the rest of /big follows."""

    def handler(h2c) -> None:
        big = h2c.next_request()
        if big is None:
            return
        h2c.send_headers(big.stream_id, 200, [("content-length", str(_FRAME * 10))])
        for i in range(_FIRST):
            h2c.h2.send_data(big.stream_id, bytes([i]) * _FRAME)
        h2c.flush()
        drive = h2c.next_request()
        if drive is None:
            return
        h2c.respond(drive.stream_id, 200, b"driven")
        while h2c.h2.local_flow_control_window(big.stream_id) < _FRAME:
            if not h2c.pump():
                return
        opened.set()
        h2c.send_data(big.stream_id, b"".join(bytes([i]) * _FRAME for i in range(_FIRST, 10)))
        h2c.drain(10.0)

    return handler


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.timeout(30)
def test_first_read_opens_the_window_at_once(h2_scripted, flavour):
    """A stream's window is small until its reader first reads; that read opens it,
    and the WINDOW_UPDATE goes out with it, not with the reader's next wait: a first
    chunk taken from what was buffered does not wait, and the reader may do other
    things before it asks for more (here: wait for the server to see the window)."""
    opened = threading.Event()
    srv = h2_scripted(_window_watch(opened))

    async def body(tw):
        async with tw.client(http1=False, http2=True, timeout=5.0) as client:
            async with client.stream("GET", srv.url + "/big") as r:
                # /drive's answer comes after /big's first frames: they are buffered
                assert (await client.get(srv.url + "/drive")).text == "driven"
                raw = r.aiter_raw()
                first = await raw.__anext__()  # (each frame apart: the first of them)
                assert first == bytes([0]) * _FRAME
                if tw.is_async:
                    seen = await anyio.to_thread.run_sync(opened.wait, 10.0)
                else:
                    seen = opened.wait(10.0)
                assert seen, "the first read's WINDOW_UPDATE did not go out"
                rest = b"".join([chunk async for chunk in raw])
        assert rest == b"".join(bytes([i]) * _FRAME for i in range(1, 10))

    twin.run(flavour, body)
    assert srv.connections == 1


def _reset_path(bad: str, code: int):
    def handler(h2c) -> None:
        while (req := h2c.next_request()) is not None:
            if req.path == bad:
                h2c.reset(req.stream_id, code)
            else:
                h2c.respond(req.stream_id, 200, req.path.encode())

    return handler


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
def test_rst_stream_fails_only_that_request(h2_scripted, flavour):
    srv = h2_scripted(_reset_path("/bad", h2.errors.ErrorCodes.INTERNAL_ERROR))

    async def body(tw):
        async with tw.client(http1=False, http2=True) as client:
            assert (await client.get(srv.url + "/good")).text == "/good"
            with pytest.raises(httprs.RemoteProtocolError, match="INTERNAL_ERROR"):
                await client.get(srv.url + "/bad")
            assert (await client.get(srv.url + "/again")).text == "/again"

    twin.run(flavour, body)
    assert srv.connections == 1


def _malformed_head_on(path: str, header: tuple[str, str]):
    """`path`: a response head carrying `header` (h2's own checks off); others: path."""

    def handler(h2c) -> None:
        while (req := h2c.next_request()) is not None:
            if req.path == path:
                h2c.h2.config.validate_outbound_headers = False
                h2c.h2.config.normalize_outbound_headers = False
                h2c.send_headers(req.stream_id, 200, [header], end=True)
                h2c.h2.config.validate_outbound_headers = True
                h2c.h2.config.normalize_outbound_headers = True
            else:
                h2c.respond(req.stream_id, 200, req.path.encode())

    return handler


@pytest.mark.parametrize(
    "header", [("X-Upper", "v"), ("connection", "keep-alive")], ids=["upper-case", "connection"]
)
@pytest.mark.parametrize("flavour", twin.FLAVOURS)
def test_malformed_response_head_is_refused_by_the_client(h2_scripted, flavour, header):
    """nghttp2 refuses a response head RFC 9113 8.2 calls malformed (httpx's h2 takes
    these): the error says the client reset the stream for it, not the server (which sent
    no RST_STREAM), and the connection's other requests go on."""
    srv = h2_scripted(_malformed_head_on("/bad", header))

    async def body(tw):
        async with tw.client(http1=False, http2=True) as client:
            assert (await client.get(srv.url + "/good")).text == "/good"
            with pytest.raises(httprs.RemoteProtocolError, match="reset by the client.*malformed"):
                await client.get(srv.url + "/bad")
            assert (await client.get(srv.url + "/again")).text == "/again"

    twin.run(flavour, body)


def _endless_then_serve(seen_resets: list):
    """/big: headers and 64 KiB of data, never the end (until reset); others: path."""

    def handler(h2c) -> None:
        while (req := h2c.next_request()) is not None:
            if req.path == "/big":
                h2c.send_headers(req.stream_id, 200)
                h2c.send_data(req.stream_id, b"x" * 65536, end=False)
            else:
                seen_resets.append(dict(h2c.resets))
                h2c.respond(req.stream_id, 200, req.path.encode())

    return handler


def test_closing_a_response_early_resets_only_its_stream(h2_scripted):
    resets: list = []
    srv = h2_scripted(_endless_then_serve(resets))
    with httprs.Client(http1=False, http2=True, timeout=5) as client:
        with client.stream("GET", srv.url + "/big") as r:
            assert r.http_version == "HTTP/2"
            next(r.iter_raw())
        assert client.get(srv.url + "/next").text == "/next"
    assert resets == [{1: h2.errors.ErrorCodes.CANCEL}]
    assert srv.connections == 1


@pytest.mark.anyio
async def test_cancelled_task_resets_only_its_stream(h2_scripted):
    resets: list = []
    srv = h2_scripted(_endless_then_serve(resets))
    async with httprs.AsyncClient(http1=False, http2=True, timeout=5) as client:
        with anyio.move_on_after(0.3):
            async with client.stream("GET", srv.url + "/big") as r:
                async for _ in r.aiter_raw():
                    pass
        assert (await client.get(srv.url + "/next")).text == "/next"
    assert resets == [{1: h2.errors.ErrorCodes.CANCEL}]
    assert srv.connections == 1


def test_ctrl_c_resets_only_its_stream(h2_scripted):
    """Ctrl-C (SIGINT) while a sync request waits for its response: KeyboardInterrupt,
    RST_STREAM(CANCEL) for that stream only, and the connection carries the next one."""
    import signal

    resets: list = []

    def handler(h2c) -> None:
        while (req := h2c.next_request()) is not None:
            if req.path != "/never":
                resets.append(dict(h2c.resets))
                h2c.respond(req.stream_id, 200, req.path.encode())

    srv = h2_scripted(handler)
    main = threading.main_thread().ident
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with httprs.Client(http1=False, http2=True, timeout=None) as client:
            assert client.get(srv.url + "/first").text == "/first"
            timer = threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT))
            timer.start()
            started = time.monotonic()
            try:
                with pytest.raises(KeyboardInterrupt):
                    client.get(srv.url + "/never")
            finally:
                timer.cancel()
                timer.join()
            assert time.monotonic() - started < 2
            assert client.get(srv.url + "/next").text == "/next"
    finally:
        signal.signal(signal.SIGINT, previous)
    assert resets == [{}, {3: h2.errors.ErrorCodes.CANCEL}]
    assert srv.connections == 1


def _silent_on(path: str):
    def handler(h2c) -> None:
        while (req := h2c.next_request()) is not None:
            if req.path != path:
                h2c.respond(req.stream_id, 200, req.path.encode())

    return handler


def test_read_timeout_is_per_stream(h2_scripted):
    """A stream's read timeout fails that stream only: the requests in flight beside it
    on its connection are answered there. The connection takes no new stream after it
    (the next request opens another, as httpx's would: httpcore gives the connection up
    at its first timeout, failing the streams beside it too)."""
    srv = h2_scripted(_silent_on("/never"))
    with httprs.Client(http1=False, http2=True, timeout=0.5) as client:
        errors = []

        def never():
            try:
                client.get(srv.url + "/never")
            except httprs.ReadTimeout as e:
                errors.append(e)

        t = threading.Thread(target=never)
        t.start()
        for i in range(5):
            assert client.get(f"{srv.url}/{i}").text == f"/{i}"
        t.join()
        assert len(errors) == 1
        assert client.get(srv.url + "/after").text == "/after"
    assert srv.connections == 2


def _priority_flood(seconds: float):
    """Answers each request after `seconds` of PRIORITY frames on its stream: valid
    frames that move no stream on, written as fast as the socket takes them."""

    def handler(h2c) -> None:
        while (req := h2c.next_request()) is not None:
            sid = req.stream_id.to_bytes(4, "big")
            frame = b"\x00\x00\x05\x02\x00" + sid + b"\x00\x00\x00\x00\x10"
            batch = frame * 500
            end = time.monotonic() + seconds
            while time.monotonic() < end and h2c.conn.send(batch):
                pass
            h2c.respond(req.stream_id, 200, b"done")

    return handler


def test_a_flooding_connection_does_not_hold_back_other_timeouts(h2_scripted):
    """A server writing frames that move nothing on (PRIORITY, unknown types, empty
    DATA) without pause: the read deadline's look at the socket read until it was empty,
    holding the engine as long as the flood lasted, so no other request of the client
    timed out (a silent server's ReadTimeout came after the flood: 8 s for a 2 s
    timeout in the probe that found it, never for an endless one). It now reads a
    bounded amount per look, and the silent request times out on time."""
    flood = h2_scripted(_priority_flood(4.0))
    silent = h2_scripted(_silent_on("/never"))
    with httprs.Client(http1=False, http2=True, timeout=0.5) as client:
        flooded = threading.Thread(
            target=lambda: contextlib.suppress(httprs.ReadTimeout)(client.get)(flood.url + "/")
        )
        flooded.start()
        time.sleep(0.2)  # the flood under way
        t0 = time.monotonic()
        with pytest.raises(httprs.ReadTimeout):
            client.get(silent.url + "/never")
        took = time.monotonic() - t0
        flooded.join()
    assert took < 2.5  # the flood lasts 4 s


@pytest.mark.anyio
async def test_a_flooding_connection_does_not_hold_back_other_timeouts_async(h2_scripted):
    flood = h2_scripted(_priority_flood(4.0))
    silent = h2_scripted(_silent_on("/never"))
    async with httprs.AsyncClient(http1=False, http2=True, timeout=0.5) as client:

        async def flooded() -> None:
            with contextlib.suppress(httprs.ReadTimeout):
                await client.get(flood.url + "/")

        async with anyio.create_task_group() as tg:
            tg.start_soon(flooded)
            await anyio.sleep(0.2)
            t0 = time.monotonic()
            with pytest.raises(httprs.ReadTimeout):
                await client.get(silent.url + "/never")
            took = time.monotonic() - t0
    assert took < 2.5


def _trailers_of(size: int):
    def handler(h2c) -> None:
        while (req := h2c.next_request()) is not None:
            h2c.send_headers(req.stream_id, 200)
            h2c.send_data(req.stream_id, b"ok", end=False)
            if req.path == "/big":
                h2c.h2.send_headers(req.stream_id, [("x-t", "t" * size)], end_stream=True)
            else:
                h2c.h2.end_stream(req.stream_id)
            h2c.flush()

    return handler


def test_oversized_trailers_are_refused(h2_scripted):
    """Trailers count against the header-list bound the client advertises (64 KiB), as
    the head does and as httpx's h2 counts them: a trailer block past it fails the
    response with RemoteProtocolError (an HPACK bomb in trailers decoded hundreds of
    megabytes per response, session 50's probe; httpx lets h2's DenialOfServiceError
    out, no httpx exception), and the client goes on."""
    srv = h2_scripted(_trailers_of(70_000))
    with httprs.Client(http1=False, http2=True, timeout=5) as client:
        with pytest.raises(httprs.RemoteProtocolError, match="larger than 65536"):
            client.get(srv.url + "/big")
        assert client.get(srv.url + "/small").text == "ok"


def _hints_every(seconds: float, count: int):
    """Answers after `count` informational heads (103 Early Hints), one every `seconds`."""

    def handler(h2c) -> None:
        while (req := h2c.next_request()) is not None:
            for _ in range(count):
                time.sleep(seconds)
                h2c.h2.send_headers(req.stream_id, [(":status", "103"), ("link", "</a.css>")])
                h2c.flush()
            time.sleep(seconds)
            h2c.respond(req.stream_id, 200, b"done")

    return handler


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
def test_informational_heads_start_the_read_timeout_anew(h2_scripted, flavour):
    """Each 1xx head is a sign of life, as over HTTP/1.1 and as for httpx's reads: a
    server sending 103s every 0.3 s for 1.5 s answers within a 0.6 s read timeout (over
    HTTP/2 the timeout ran from the request until session 50: ReadTimeout)."""
    srv = h2_scripted(_hints_every(0.3, 4))

    async def body(tw):
        async with tw.client(http1=False, http2=True, timeout=0.6) as client:
            assert (await client.get(srv.url + "/")).text == "done"

    twin.run(flavour, body)


def _silent_after_first_on_first_connection(h2c) -> None:
    """The first connection answers one request, then stays open and answers nothing
    more (a hung worker, a black-holed path); later connections answer every request."""
    answered = 0
    while (req := h2c.next_request()) is not None:
        if h2c.conn.index == 0 and answered >= 1:
            continue
        answered += 1
        h2c.respond(req.stream_id, 200, req.path.encode())


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("impl", ["httprs", "httpx"])
def test_a_connection_whose_stream_timed_out_takes_no_new_streams(h2_scripted, flavour, impl):
    """After a read timeout the next requests go to a new connection, as with httpx:
    the one that timed out was handed out again, and every later request to the origin
    waited out its whole timeout on it."""
    srv = h2_scripted(_silent_after_first_on_first_connection)
    mod = httprs if impl == "httprs" else httpx

    async def body(tw):
        async with tw.client(http1=False, http2=True, timeout=0.5) as c:
            assert (await c.get(srv.url + "/1")).text == "/1"
            with pytest.raises(mod.ReadTimeout):
                await c.get(srv.url + "/2")
            for i in range(3, 6):
                assert (await c.get(f"{srv.url}/{i}")).text == f"/{i}"

    twin.run(flavour, body, sync_cls=mod.Client, async_cls=mod.AsyncClient)
    assert srv.connections == 2


def _junk_after_answer(closed: dict):
    """Answers the first request, then sends frames of an unknown type (which a client
    must ignore) every 10 ms until the client closes the connection; records when."""

    def handler(h2c) -> None:
        req = h2c.next_request()
        if req is None:
            return
        h2c.respond(req.stream_id, 200, b"ok")
        junk = b"\x00\x00\x04\xfa\x00\x00\x00\x00\x00" + b"junk"
        start = time.monotonic()
        while time.monotonic() - start < 10.0:
            if not h2c.conn.send(junk):
                closed["after"] = time.monotonic() - start
                return
            time.sleep(0.01)

    return handler


def test_an_idle_connection_the_server_keeps_writing_to_closes_after_its_expiry(h2_scripted):
    """An event loop watches the engine for a client's whole life, so an idle HTTP/2
    connection is read whenever the server writes: one that goes on writing (frames the
    client ignores) cost CPU for as long as it did. Once the connection is past its
    keep-alive expiry the next bytes close it (httpx does not read idle connections;
    the pool would not hand this one out again)."""
    closed: dict[str, float] = {}
    srv = h2_scripted(_junk_after_answer(closed))
    limits = httprs.Limits(keepalive_expiry=0.5)

    async def main() -> None:  # asyncio's driver reads the engine's sockets while idle
        async with httprs.AsyncClient(http1=False, http2=True, limits=limits) as c:
            assert (await c.get(srv.url + "/")).text == "ok"
            for _ in range(60):
                await asyncio.sleep(0.05)
                if "after" in closed:
                    break

    asyncio.run(main())
    assert 0.4 < closed.get("after", 99.0) < 2.5, closed


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
def test_ping_is_answered_while_a_request_waits(h2_scripted, flavour):
    """A PING from the server is acknowledged with its data, while the client waits
    for a response on that connection; the server answers only once it has the ACK."""
    acks: list = []

    def handler(h2c) -> None:
        while (req := h2c.next_request()) is not None:
            data = req.path[-8:].encode()
            acked = h2c.ping(data)
            acks.append(acked)
            h2c.respond(req.stream_id, 200, b"acked" if acked else b"no ack")

    srv = h2_scripted(handler)

    async def body(tw):
        async with tw.client(http1=False, http2=True, timeout=5) as client:
            for path in ("/pingdata", "/otherone"):
                r = await client.get(srv.url + path)
                assert (r.http_version, r.text) == ("HTTP/2", "acked")

    twin.run(flavour, body)
    assert acks == [True, True]
    assert srv.connections == 1


def test_connection_loss_fails_open_streams(h2_scripted):
    def handler(h2c) -> None:
        h2c.next_request()
        h2c.conn.sock.shutdown(socket.SHUT_WR)  # EOF, whatever the client still sends
        h2c.drain(5.0)

    srv = h2_scripted(handler)
    with httprs.Client(http1=False, http2=True, timeout=5) as client:
        with pytest.raises(httprs.RemoteProtocolError, match="Server disconnected"):
            client.get(srv.url + "/")


def _http11_reply(reply: bytes):
    """A server without HTTP/2: reads the client's first bytes, sends `reply`, closes."""

    def handler(conn) -> None:
        conn.read_some(1)
        conn.send(reply)
        conn.close()

    return handler


@pytest.mark.parametrize(
    ("reply", "said", "line"),
    [
        (
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "HTTP/2 connection error: PROTOCOL_ERROR",
            "HTTP/1.1 400 Bad Request",
        ),
        (b"HTTP/1.0", "Server disconnected", "HTTP/1.0"),
    ],
    ids=["status-line", "cut-short"],
)
@pytest.mark.parametrize("flavour", twin.FLAVOURS)
def test_prior_knowledge_to_a_server_without_http2_says_it_answered_in_http11(
    scripted, flavour, reply, said, line
):
    """http1=False to a server that speaks only HTTP/1.1: the error quotes the status line
    it answered the connection preface with (httpx: "Server disconnected"), each time."""
    srv = scripted(_http11_reply(reply))
    expected = f'{said} .the server answered in HTTP/1.x, not HTTP/2: "{line}".'

    async def body(tw):
        async with tw.client(http1=False, http2=True, timeout=5) as client:
            for _ in range(2):
                with pytest.raises(httprs.RemoteProtocolError, match=expected):
                    await client.get(srv.url + "/")

    twin.run(flavour, body)
    assert srv.connections == 2


def _ping_before_settings(conn) -> None:
    """An HTTP/2 server that opens with a PING, not the SETTINGS frame RFC 9113 requires."""
    conn.read_some(24)
    conn.send(b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"12345678")
    conn.read_some(1)
    conn.close()


def test_a_connection_error_says_why(scripted):
    """The client's own GOAWAY carries nghttp2's reason for a connection error: the
    message names it after the code (it said only "PROTOCOL_ERROR")."""
    srv = scripted(_ping_before_settings)
    with httprs.Client(http1=False, http2=True, timeout=5) as client:
        with pytest.raises(httprs.RemoteProtocolError, match=r"PROTOCOL_ERROR \(.*SETTINGS"):
            client.get(srv.url + "/")


def _window_overflow_on(stream: bool):
    """Answers the request's head, then a WINDOW_UPDATE that takes the client's send
    window past 2^31-1 (RFC 9113 6.9.1): on the request's stream, or on the connection."""

    def handler(h2c) -> None:
        req = h2c.next_request()
        if req is None:
            return
        h2c.send_headers(req.stream_id, 200)
        target = req.stream_id if stream else 0
        update = struct.pack(">I", 2**31 - 1)
        h2c.conn.send(
            struct.pack(">I", 4)[1:] + bytes([0x8, 0]) + struct.pack(">I", target) + update
        )
        h2c.drain(2.0)

    return handler


@pytest.mark.parametrize(
    ("stream", "said"),
    [
        (
            True,
            "HTTP/2 stream 1 was reset by the client, the server having broken its flow control",
        ),
        (
            False,
            "HTTP/2 connection error: FLOW_CONTROL_ERROR .the server broke the connection's flow",
        ),
    ],
    ids=["stream", "connection"],
)
@pytest.mark.parametrize("flavour", twin.FLAVOURS)
def test_a_flow_control_error_is_worded_as_one(h2_scripted, flavour, stream, said):
    """A window the server overflows is reported as broken flow control, not as a
    malformed response (the head was fine)."""
    srv = h2_scripted(_window_overflow_on(stream))

    async def body(tw):
        async with tw.client(http1=False, http2=True, timeout=5) as client:
            with pytest.raises(httprs.RemoteProtocolError, match=said) as info:
                await client.get(srv.url + "/")
            assert "malformed" not in str(info.value)

    twin.run(flavour, body)


def test_trace_names_http2_events(hypercorn_tls, certs):
    events = []
    with httprs.Client(http2=True, verify=_ca(certs)) as client:
        client.get(
            hypercorn_tls.url + "/",
            extensions={"trace": lambda name, info: events.append(name)},
        )
    assert "connection.start_tls.complete" in events
    assert "http2.send_request_headers.started" in events
    assert "http2.receive_response_headers.complete" in events
    assert "http2.response_closed.complete" in events
    assert not [e for e in events if e.startswith("http11.")]


@pytest.mark.parametrize(
    "method,path,content",
    [
        ("GET", "/", None),
        ("GET", "/headers", None),
        ("POST", "/echo_body", b"body" * 1000),
        ("GET", "/status/404", None),
        ("GET", "/gzip", None),
    ],
)
def test_differential_vs_httpx(hypercorn_tls, certs, method, path, content):
    def shape(r):
        headers = [(k, v) for k, v in r.headers.multi_items() if k != "date"]
        return (r.status_code, r.http_version, r.reason_phrase, headers, r.content)

    with httpx.Client(http2=True, verify=_ca(certs)) as ref:
        expected = shape(ref.request(method, hypercorn_tls.url + path, content=content))
    with httprs.Client(http2=True, verify=_ca(certs)) as client:
        got = shape(client.request(method, hypercorn_tls.url + path, content=content))
    assert got == expected


async def _two_requests_over_http2(client, url: str) -> None:
    r = await client.get(url + "/")
    assert (r.http_version, r.text) == ("HTTP/2", "Hello, world!")
    r = await client.post(url + "/echo", content=b"x" * 100_000)
    assert (r.json()["http_version"], r.json()["body"]) == ("2", "x" * 100_000)


@pytest.mark.parametrize("proxy_tls", [False, True], ids=["http-proxy", "https-proxy"])
@pytest.mark.parametrize("flavour", twin.FLAVOURS)
def test_through_connect_tunnel(hypercorn_tls, certs, proxy_factory, flavour, proxy_tls):
    """HTTP/2 to the origin inside a CONNECT tunnel (ALPN h2 in the origin's TLS), the
    proxy spoken to in clear text or over TLS of its own: one tunnel for both."""
    from servers.tls import server_context

    proxy = proxy_factory(ssl_context=server_context(certs.server) if proxy_tls else None)

    async def body(tw):
        p = httprs.Proxy(proxy.url, ssl_context=_ca(certs)) if proxy_tls else proxy.url
        async with tw.client(http2=True, verify=_ca(certs), proxy=p, timeout=10) as client:
            await _two_requests_over_http2(client, hypercorn_tls.url)

    twin.run(flavour, body)
    assert proxy.connections == 1
    assert [r.method for r in proxy.seen] == ["CONNECT"]


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
def test_through_socks5_alpn(hypercorn_tls, certs, socks_factory, flavour):
    proxy = socks_factory()

    async def body(tw):
        async with tw.client(http2=True, verify=_ca(certs), proxy=proxy.url, timeout=10) as c:
            await _two_requests_over_http2(c, hypercorn_tls.url)

    twin.run(flavour, body)
    assert proxy.connections == 1
    assert proxy.seen[0].port == hypercorn_tls.port


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
def test_through_socks5_prior_knowledge(hypercorn_h2c, socks_factory, flavour):
    """h2c (http1=False) inside a SOCKS5 tunnel: origin-form requests, so HTTP/2 applies
    (a forwarding HTTP proxy's absolute-form requests stay HTTP/1.1, as in httpx)."""
    proxy = socks_factory()

    async def body(tw):
        async with tw.client(http1=False, http2=True, proxy=proxy.url, timeout=10) as c:
            await _two_requests_over_http2(c, hypercorn_h2c.url)

    twin.run(flavour, body)
    assert proxy.connections == 1


def test_python_ssl_context_offers_h2(hypercorn_tls, certs):
    """A context run through Python's wrap_bio (a subclass) offers h2 too."""

    class Pinned(ssl.SSLContext):
        pass

    ctx = Pinned(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs.ca_file)
    assert httprs._core._uses_python_tls(ctx)
    with httprs.Client(http2=True, verify=ctx) as client:
        r = client.get(hypercorn_tls.url + "/")
        assert (r.http_version, r.text) == ("HTTP/2", "Hello, world!")


def _headers_first_echo(h2c) -> None:
    """Answer each stream's HEADERS at once, before reading its body, then send the
    number of body bytes received once the body has ended (legal in HTTP/2: a
    streaming echo, or an ASGI app that starts its response before reading)."""
    answered = set()
    while h2c.pump():
        for stream_id in list(h2c.streams):
            if stream_id not in answered:
                answered.add(stream_id)
                h2c.send_headers(stream_id, 200, [("content-type", "text/plain")])
        while h2c.ready:
            req = h2c.ready.pop(0)
            h2c.send_data(req.stream_id, str(len(req.body)).encode(), end=True)


def _slow_chunks():
    for _ in range(5):
        time.sleep(0.05)
        yield b"x" * 40_000


async def _aslow_chunks():
    for chunk in _slow_chunks():
        yield chunk


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.timeout(30)
def test_streamed_upload_goes_on_after_an_early_head(h2_scripted, flavour):
    """The response head arrives while the body is still going out (and past the
    peer's 64 KiB window): the whole body is still sent, as httpcore sends it. It
    used to stop at the head and leave the stream open, waiting with no timeout."""
    srv = h2_scripted(_headers_first_echo)

    async def body(tw):
        chunks = _aslow_chunks() if tw.is_async else _slow_chunks()
        async with tw.client(http1=False, http2=True, timeout=5) as client:
            r = await client.post(srv.url + "/echo", content=chunks)
            assert (r.status_code, r.http_version, r.text) == (200, "HTTP/2", "200000")
            assert (await client.get(srv.url + "/again")).status_code == 200

    twin.run(flavour, body)


def _answer_on_headers(h2c) -> None:
    """Complete every response as soon as its request HEADERS arrive, without reading
    the body and without resetting the stream (RFC 9113 8.1 allows both)."""
    answered = set()
    while h2c.pump():
        for stream_id in list(h2c.streams):
            if stream_id not in answered:
                answered.add(stream_id)
                h2c.respond(stream_id, 200, b"early")


@pytest.mark.timeout(30)
def test_response_before_the_body_was_sent_frees_its_stream(h2_scripted):
    """A complete response while the fixed body still waits for window: releasing it
    resets the stream, so the server's one stream slot is free for the next request
    (it used to stay half-open and the next request waited for PoolTimeout)."""
    srv = h2_scripted(_answer_on_headers, max_concurrent_streams=1)
    limits = httprs.Limits(max_connections=1)
    timeout = httprs.Timeout(5, pool=2)
    with httprs.Client(http1=False, http2=True, limits=limits, timeout=timeout) as client:
        assert client.get(srv.url + "/warm").text == "early"
        r = client.post(srv.url + "/up", content=b"x" * 300_000)
        assert (r.status_code, r.text) == (200, "early")
        assert client.get(srv.url + "/next").text == "early"
        assert client.get(srv.url + "/again").text == "early"


# A child process: an HTTP/2 upload of a fixed 4 MiB body whose response head came
# early, then dropped (collected) inside a TLS callback while the engine still sends
# the body as WINDOW_UPDATEs arrive. glibc maps a block that large on its own
# (MALLOC_MMAP_THRESHOLD_ pins the threshold), so reading it once freed faults.
_DROPPED_UPLOAD_CHILD = r"""
import asyncio, gc, ssl, sys

import httprs

url, cafile, mode = sys.argv[1], sys.argv[2], sys.argv[3]
hooks = []
held = []


class Hooked(ssl.SSLObject):
    def read(self, *args):
        while hooks:
            hooks.pop()()
        return super().read(*args)


parked = []


def drop():
    held.clear()
    gc.collect()
    parked.append(httprs._core._parked_count())


ctx = ssl.create_default_context(cafile=cafile)
ctx.sslobject_class = Hooked
size = 4 << 20


def run_sync():
    with httprs.Client(http2=True, verify=ctx, timeout=10) as client:
        request = client.build_request("POST", url + "/up", content=b"x" * size)
        r = client.send(request, stream=True)
        del request
        assert (r.status_code, r.http_version) == (200, "HTTP/2"), r
        held.append(r)
        del r
        hooks.append(drop)  # the next TLS read drops the response, then the
        assert client.get(url + "/go").text == "/go"  # WINDOW_UPDATEs are read
        assert client.get(url + "/after").text == "/after"
        assert parked == [1]  # collected in the callback: the body was kept
        assert httprs._core._parked_count() == 0  # released, then let go


async def run_async():
    async with httprs.AsyncClient(http2=True, verify=ctx, timeout=10) as client:
        request = client.build_request("POST", url + "/up", content=b"x" * size)
        r = await client.send(request, stream=True)
        del request
        assert (r.status_code, r.http_version) == (200, "HTTP/2"), r
        held.append(r)
        del r
        hooks.append(drop)
        assert (await client.get(url + "/go")).text == "/go"
        assert (await client.get(url + "/after")).text == "/after"
        assert parked == [1]
        assert httprs._core._parked_count() == 0


run_sync() if mode == "sync" else asyncio.run(run_async())
print("ok")
"""


def test_dropped_response_of_an_ended_stream_is_released_on_the_spot(hypercorn_h2c):
    """A streamed HTTP/2 response whose stream ended, dropped unread (its finaliser):
    nothing of the engine's refers to it any more, so it is released at once, and its
    request body is not kept for a later round. It used to be queued for the loop
    (a wake-up) with the body parked until the next request started."""
    import gc

    url = hypercorn_h2c.url
    with httprs.Client(http1=False, http2=True) as client:
        r = client.send(
            client.build_request("POST", url + "/echo_body", content=b"x" * 500), stream=True
        )
        assert r.http_version == "HTTP/2"
        # Another exchange on the connection reads the rest of the first stream: it
        # has ended (its answer came before this one's).
        assert client.get(url + "/echo").status_code == 200
        gc.collect()
        assert httprs._core._parked_count() == 0
        del r
        gc.collect()  # (the response and its stream form a cycle) -> _Body.__dealloc__
        assert httprs._core._parked_count() == 0
        assert client.get(url + "/echo").status_code == 200


def _head_then_hold_upload(seen: dict):
    """Answer the upload's head at once and stop reading (its body waits for window),
    until the /go request: then read everything (WINDOW_UPDATEs go out), recording
    what the upload's stream carried, and answer the other requests with their path."""

    def handler(h2c) -> None:
        while not h2c.streams:
            if not h2c.pump():
                return
        up = min(h2c.streams)
        h2c.send_headers(up, 200, [("content-type", "text/plain")])
        seen["up"] = h2c.streams[up].request
        while (req := h2c.next_request()) is not None:
            if req.stream_id != up:
                h2c.respond(req.stream_id, 200, req.path.encode())

    return handler


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.timeout(60)
def test_fixed_body_outlives_a_response_dropped_mid_upload(h2_scripted, certs, mode):
    """A response dropped (garbage collected inside a TLS callback) while the engine
    still sends its fixed request body: the engine reads the body as the server's
    window opens, so the bytes must stay alive until the transfer is released. They
    used to be freed at once: the child read unmapped memory and crashed."""
    import subprocess
    import sys

    seen: dict = {}
    srv = h2_scripted(_head_then_hold_upload(seen), ssl_context=h2_context(certs.server))
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    proc = subprocess.run(
        [sys.executable, "-c", _DROPPED_UPLOAD_CHILD, srv.url, certs.ca_file, mode],
        capture_output=True,
        text=True,
        timeout=50,
        env=env,
    )
    assert (proc.returncode, proc.stdout.strip()) == (0, "ok"), proc.stderr[-3000:]
    body = seen["up"].body
    assert 0 < len(body) < 4 << 20  # reset once released, part way
    assert body == b"x" * len(body)


_UPGRADE = {"Upgrade": "foo", "Connection": "Upgrade"}


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
def test_upgrade_request_never_takes_an_http2_connection(hypercorn_tls, certs, flavour):
    """An Upgrade request stays HTTP/1.1 (its ALPN offers http/1.1 alone), so it must
    not be handed the origin's idle HTTP/2 connection: it used to get it and fail
    with "HTTP/2 request needs a method and a path"."""

    async def body(tw):
        async with tw.client(http2=True, verify=_ca(certs)) as client:
            assert (await client.get(hypercorn_tls.url + "/")).http_version == "HTTP/2"
            r = await client.get(hypercorn_tls.url + "/", headers=_UPGRADE)
            assert (r.status_code, r.http_version) == (200, "HTTP/1.1")
            assert (await client.get(hypercorn_tls.url + "/")).status_code == 200

    twin.run(flavour, body)


def _header_names(h2c) -> None:
    """Answer each request with the names of its regular header fields."""
    while (req := h2c.next_request()) is not None:
        names = ",".join(sorted(k for k, _ in req.headers if not k.startswith(":")))
        h2c.respond(req.stream_id, 200, names.encode())


@pytest.mark.parametrize("flavour", [*twin.FLAVOURS, "httpx"])
def test_http1_false_sends_an_upgrade_request_as_http2(h2_scripted, flavour):
    """http1=False: an Upgrade request goes as HTTP/2, its connection-specific headers
    dropped, as httpx does (an HTTP/2-only server; httpx is the reference flavour); it
    used to be written as HTTP/1.1."""
    srv = h2_scripted(_header_names)

    async def body(tw):
        async with tw.client(http1=False, http2=True, timeout=5) as client:
            r = await client.get(srv.url + "/", headers=_UPGRADE)
            assert (r.status_code, r.http_version) == (200, "HTTP/2")
            assert "upgrade" not in r.text and "connection" not in r.text

    if flavour == "httpx":
        twin.run("sync", body, sync_cls=httpx.Client)
    else:
        twin.run(flavour, body)


def _finish_goaway_and_reset(go: threading.Event):
    """First connection: head of the first request, then (once told) the rest of its
    body, GOAWAY naming it as the last stream, and an RST, without reading what the
    client sent meanwhile. Later connections: serve_path."""

    def first(h2c) -> None:
        req = h2c.next_request()
        if req is None:
            return
        h2c.send_headers(req.stream_id, 200, [("content-length", "5")])
        go.wait(10)
        h2c.h2.send_data(req.stream_id, b"hello", end_stream=True)
        h2c.flush()
        h2c.goaway(last_stream_id=req.stream_id)
        time.sleep(0.1)
        h2c.conn.reset()

    return _first_connection(first)


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.timeout(30)
def test_write_error_reads_what_the_server_sent_first(h2_scripted, flavour):
    """A write fails (the server reset the connection) while the end of a response
    and a GOAWAY wait unread in the socket: they are read before the streams fail,
    so the response completes and the stream above last_stream_id is retried on a
    new connection. Every stream used to fail at once with WriteError."""
    go = threading.Event()
    srv = h2_scripted(_finish_goaway_and_reset(go))

    async def body(tw):
        async with tw.client(http1=False, http2=True, timeout=5) as client:
            request = client.build_request("GET", srv.url + "/first")
            first = await client.send(request, stream=True)
            go.set()
            # Blocking: nobody drives the loop (no thread waits, the event loop does
            # not run), so the bytes and the RST wait unread.
            time.sleep(0.5)
            assert (await client.get(srv.url + "/second")).text == "/second"
            assert await first.aread() == b"hello"

    twin.run(flavour, body)
    assert srv.connections == 2


def _held_body(go: threading.Event):
    """Answer the head of the one request at once, its body once ``go`` is set."""

    def handler(h2c) -> None:
        req = h2c.next_request()
        if req is None:
            return
        h2c.send_headers(req.stream_id, 200, [("content-length", "2")])
        go.wait(10)
        h2c.send_data(req.stream_id, b"ok")
        h2c.drain(2.0)

    return handler


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.timeout(30)
def test_busy_http2_connection_is_not_idle(h2_scripted, flavour):
    """An HTTP/2 connection carrying a stream is listed for more streams, but it is not
    idle: it does not count in max_keepalive_connections (which used to close the
    truly idle connection of another origin) nor in the pool statistics."""
    go = threading.Event()
    busy, other = h2_scripted(_held_body(go)), h2_scripted(serve_path)
    limits = httprs.Limits(max_keepalive_connections=1)

    async def body(tw):
        async with tw.client(http1=False, http2=True, limits=limits, timeout=5) as client:
            request = client.build_request("GET", busy.url + "/held")
            held = await client.send(request, stream=True)
            assert (await client.get(other.url + "/x")).text == "/x"
            assert client._transport._pool_stats() == {"connections": 2, "idle": 1}
            assert (await client.get(other.url + "/y")).text == "/y"
            go.set()
            assert await held.aread() == b"ok"

    twin.run(flavour, body)
    assert other.connections == 1


def _trace_events(events: list):
    def record(name, info):
        events.append((name, dict(info)))

    return record


def _async_trace_events(events: list):
    async def record(name, info):
        events.append((name, dict(info)))

    return record


def _check_http2_trace(events, request_urls) -> None:
    names = [name for name, _ in events]
    assert not [n for n in names if n.startswith("http11.")]
    # The first request on a connection sends its preface, as httpcore reports.
    assert names.count("http2.send_connection_init.started") == 1
    assert names.index("http2.send_connection_init.complete") < names.index(
        "http2.send_request_headers.started"
    )
    started = {n: i for n, i in events if n.startswith("http2.") and n.endswith(".started")}
    for name in (
        "http2.send_request_headers.started",
        "http2.send_request_body.started",
        "http2.receive_response_headers.started",
        "http2.receive_response_body.started",
    ):
        assert set(started[name]) == {"request", "stream_id"}, name
        assert started[name]["stream_id"] in (1, 3)
    assert set(started["http2.response_closed.started"]) == {"stream_id"}


async def _traced_pair(client, url: str, record) -> None:
    r1 = await client.get(url + "/a", extensions={"trace": record})
    r2 = await client.get(url + "/b", extensions={"trace": record})
    assert (r1.extensions["stream_id"], r2.extensions["stream_id"]) == (1, 3)
    assert r1.extensions["http_version"] == b"HTTP/2"


@pytest.mark.parametrize("flavour", [*twin.FLAVOURS, "httpx"])
@pytest.mark.timeout(30)
def test_http2_trace_and_stream_id_as_httpcore(h2_scripted, flavour):
    """HTTP/2 trace events carry the stream id, the connection's first request reports
    http2.send_connection_init, and responses have the `stream_id` extension, as
    httpcore gives them (httpx is the reference flavour)."""
    srv = h2_scripted(serve_path)
    events: list = []

    async def body(tw):
        record = _async_trace_events(events) if tw.is_async else _trace_events(events)
        async with tw.client(http1=False, http2=True, timeout=5) as client:
            await _traced_pair(client, srv.url, record)

    if flavour == "httpx":
        twin.run("sync", body, sync_cls=httpx.Client)
    else:
        twin.run(flavour, body)
    _check_http2_trace(events, [srv.url + "/a", srv.url + "/b"])


def test_http2_debug_log_lines_on_the_http2_logger(h2_scripted, caplog):
    srv = h2_scripted(serve_path)
    with caplog.at_level("DEBUG", logger="httpcore"):
        with httprs.Client(http1=False, http2=True, timeout=5) as client:
            client.get(srv.url + "/a")
    lines = [(r.name, r.getMessage()) for r in caplog.records if r.name == "httpcore.http2"]
    assert ("httpcore.http2", "send_connection_init.started request=<Request [b'GET']>") in lines
    assert any(
        m.startswith("send_request_headers.started request=") and "stream_id=1" in m
        for _, m in lines
    )


# A sync `.content` of a large HTTP/2 body, the only stream on its connection, waits
# with its socket's receive low-water mark (SO_RCVLOWAT) at half of what the windows
# let the server send, less what the TLS layer may hold (Engine::drive_once,
# Connection::mark_h2_wait): woken every few hundred KiB, not on every frame.

_MARKED_BODY = bytes(range(256)) * (5 * 4096) + b"end"  # 5 MiB + 3


def _serve_marked(h2c) -> None:
    while (req := h2c.next_request()) is not None:
        if req.path == "/short":
            # Content-Length promises more than the stream carries before it ends.
            h2c.send_headers(req.stream_id, 200, [("content-length", str(4 << 20))])
            h2c.send_data(req.stream_id, _MARKED_BODY[: 3 << 20], end=True)
        elif req.path == "/small":
            h2c.respond(req.stream_id, 200, b"small")
        else:
            h2c.respond(req.stream_id, 200, _MARKED_BODY)


def _marked_client(srv, certs, tls: bool, read: float = 20.0):
    timeout = httprs.Timeout(60.0, read=read)
    if tls:
        ctx = ssl.create_default_context(cafile=certs.ca_file)
        return httprs.Client(http2=True, verify=ctx, timeout=timeout)
    return httprs.Client(http1=False, http2=True, timeout=timeout)


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
def test_large_body_waits_marked_and_ends_with_its_last_byte(h2_scripted, certs, tls):
    """The body is intact, its waits were marked, and each `.content` ends with the
    body's last frame while the server keeps the connection open: a mark above what
    the server may send would hold the wait until the read timeout."""
    srv = h2_scripted(_serve_marked, ssl_context=h2_context(certs.server) if tls else None)
    with _marked_client(srv, certs, tls) as c:
        before = c._transport._marked_waits()
        for _ in range(3):  # the connection's later streams too
            start = time.monotonic()
            assert c.get(srv.url + "/big").content == _MARKED_BODY
            assert time.monotonic() - start < 10.0, "waited for the read timeout"
        assert c._transport._marked_waits() > before
        assert c.get(srv.url + "/small").text == "small"
    assert srv.connections == 1


def test_stream_ended_short_under_a_mark_fails_without_waiting_for_the_timeout(h2_scripted, certs):
    """A stream that ends before its Content-Length while the connection stays open
    sends fewer bytes than a mark may wait for: the wait's slice ends the mark, and
    the error is httpx's, long before the read timeout. The connection serves on."""
    srv = h2_scripted(_serve_marked)
    with _marked_client(srv, certs, tls=False) as c:
        start = time.monotonic()
        with pytest.raises(httprs.RemoteProtocolError):
            c.get(srv.url + "/short")
        assert time.monotonic() - start < 10.0, "waited for the read timeout"
        assert c.get(srv.url + "/big").content == _MARKED_BODY


def test_another_threads_stream_is_answered_while_a_body_waits_marked(h2_scripted, certs):
    """A second stream opened on the connection while a large body's wait is marked
    (by another thread) ends the mark: both responses come, intact."""
    srv = h2_scripted(_serve_marked)
    with _marked_client(srv, certs, tls=False) as c:
        assert c.get(srv.url + "/small").text == "small"  # one connection, settled
        got: dict[str, object] = {}

        def big() -> None:
            got["big"] = c.get(srv.url + "/big").content

        t = threading.Thread(target=big)
        t.start()
        smalls = [c.get(srv.url + "/small").text for _ in range(20)]
        t.join(30)
        assert not t.is_alive()
        assert got["big"] == _MARKED_BODY
        assert smalls == ["small"] * 20
    assert srv.connections == 1


def _ping_every(piece: int, acks: list):
    """Sends the body `piece` bytes at a time, each followed by a PING, and sends no
    more until that PING is acknowledged; records how long each acknowledgement took."""

    def handler(h2c) -> None:
        while (req := h2c.next_request()) is not None:
            size = len(_MARKED_BODY)
            h2c.send_headers(req.stream_id, 200, [("content-length", str(size))])
            for start in range(0, size, piece):
                h2c.send_data(req.stream_id, _MARKED_BODY[start : start + piece], end=False)
                began = time.monotonic()
                if not h2c.ping(b"%08d" % start):
                    return
                acks.append(time.monotonic() - began)
            h2c.h2.end_stream(req.stream_id)
            h2c.flush()

    return handler


def test_a_server_that_waits_for_its_ping_to_be_answered_holds_a_marked_body_once(h2_scripted):
    """A PING the server waits to have answered before it sends more comes under the
    mark and wakes no one: the marked poll ends after 10 ms (Engine::kLowatLayeredMs),
    reads it, and, having run out of time with bytes under the mark, the response's
    later polls are not marked. So one acknowledgement is late, not each of them (20
    here: each used to wait out the poll)."""
    acks: list[float] = []
    srv = h2_scripted(_ping_every(256 * 1024, acks))
    with _marked_client(srv, None, tls=False) as c:
        assert c.get(srv.url + "/pings").content == _MARKED_BODY
    assert len(acks) == 21  # 5 MiB and 3 bytes
    late = [round(a * 1000, 1) for a in acks if a >= 0.009]
    assert len(late) <= 3, [round(a * 1000, 1) for a in acks]
