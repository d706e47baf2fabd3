"""The AsyncClient mirror of the sync basic, fault and timeout tests, on asyncio and trio,
plus concurrency and cancellation stress."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import time

import anyio
import pytest
from servers.app import CHUNKS, DECODED_TEXT, JSON_DOC, LATIN1_TEXT, expected_bytes, stream_lines
from servers.faults import FAULTS, fault_server, reset_mid_body, truncated_body
from servers.scripted import FullBacklog, echo_request_count

import httprs

pytestmark = pytest.mark.anyio


def echo(response):
    doc = response.json()
    doc["headers_dict"] = {k: v for k, v in reversed(doc["headers"])}
    return doc


async def assert_usable(client, srv):
    r = await client.get(srv.url + "/good")
    assert r.status_code == 200
    assert r.text == "good"


# -- basics --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_methods(server, method):
    async with httprs.AsyncClient() as c:
        r = await c.request(method, server.url + "/echo?x=1")
    assert r.status_code == 200
    assert echo(r)["method"] == method
    assert echo(r)["query"] == "x=1"


async def test_helpers_and_attributes(server):
    async with httprs.AsyncClient() as c:
        r = await c.get(server.url + "/")
        assert r.status_code == 200
        assert r.reason_phrase == "OK"
        assert r.http_version == "HTTP/1.1"
        assert r.text == "Hello, world!"
        assert r.url == httprs.URL(server.url + "/")
        assert r.elapsed.total_seconds() >= 0
        assert r.is_success and r.is_closed
        assert (await c.head(server.url + "/head")).content == b""
        assert echo(await c.delete(server.url + "/echo"))["method"] == "DELETE"
        assert echo(await c.options(server.url + "/echo"))["method"] == "OPTIONS"
        assert echo(await c.patch(server.url + "/echo", content=b"p"))["body"] == "p"
        assert echo(await c.put(server.url + "/echo", content="s"))["body"] == "s"


async def test_request_bodies(server):
    async def agen():
        yield b"a1-"
        yield b"a2"

    async with httprs.AsyncClient() as c:
        doc = echo(await c.post(server.url + "/echo", content=agen()))
        assert doc["body"] == "a1-a2"
        assert doc["headers_dict"]["transfer-encoding"] == "chunked"
        doc = echo(await c.post(server.url + "/echo", data={"a": "1"}))
        assert doc["body"] == "a=1"
        doc = echo(await c.post(server.url + "/echo", json={"k": 1}))
        assert json.loads(doc["body"]) == {"k": 1}
        doc = echo(await c.post(server.url + "/echo", files={"f": ("a.txt", b"file!")}))
        assert 'filename="a.txt"' in doc["body"] and "file!" in doc["body"]


async def test_response_variants(server):
    async with httprs.AsyncClient() as c:
        assert (await c.get(server.url + "/json")).json() == JSON_DOC
        r = await c.get(server.url + "/text_latin1")
        assert r.encoding == "latin-1" and r.text == LATIN1_TEXT
        r = await c.get(server.url + "/headers")
        assert r.headers.get_list("set-cookie") == [
            "a=1; Path=/",
            "b=2; Path=/",
            "c=3; Path=/; HttpOnly",
        ]
        assert r.headers["x-dup"] == "one, two"
        assert (await c.get(server.url + "/chunked")).content == b"".join(CHUNKS)
        assert (await c.get(server.url + "/no_content")).status_code == 204
        r = await c.get(server.url + "/not_modified")
        assert r.status_code == 304 and r.content == b""
        r = await c.get(server.url + "/status/404")
        with pytest.raises(httprs.HTTPStatusError):
            r.raise_for_status()


@pytest.mark.parametrize("route", ["gzip", "deflate", "br", "zstd", "gzip_br", "gzip_chunked"])
async def test_content_decoding(server, route):
    async with httprs.AsyncClient() as c:
        assert (await c.get(server.url + "/" + route)).content == DECODED_TEXT
        async with c.stream("GET", server.url + "/" + route) as r:
            out = b"".join([chunk async for chunk in r.aiter_bytes(chunk_size=333)])
        assert out == DECODED_TEXT


async def test_streaming(server):
    async with httprs.AsyncClient() as c:
        async with c.stream("GET", server.url + "/bytes/200000") as r:
            assert not r.is_closed
            parts = [chunk async for chunk in r.aiter_bytes()]
        assert r.is_closed
        assert b"".join(parts) == expected_bytes(200000)
        async with c.stream("GET", server.url + "/stream/30") as r:
            lines = [line async for line in r.aiter_lines()]
        assert lines == [x.decode().rstrip("\n") for x in stream_lines(30)]
        async with c.stream("GET", server.url + "/stream/3") as r:
            text = "".join([t async for t in r.aiter_text()])
        assert text == "line 0\nline 1\nline 2\n"
        async with c.stream("GET", server.url + "/gzip") as r:
            raw = b"".join([b async for b in r.aiter_raw()])
        assert raw != DECODED_TEXT and len(raw) < len(DECODED_TEXT)
        async with c.stream("GET", server.url + "/json") as r:
            await r.aread()
            assert r.json() == JSON_DOC
        async with c.stream("GET", server.url + "/bytes/10") as r:
            pass
        with pytest.raises(httprs.StreamClosed):
            [b async for b in r.aiter_bytes()]


async def test_sync_iteration_of_async_response_fails(server):
    async with httprs.AsyncClient() as c:
        async with c.stream("GET", server.url + "/bytes/10") as r:
            with pytest.raises(RuntimeError):
                list(r.iter_bytes())


async def test_keepalive_reuse(scripted):
    srv = scripted(echo_request_count)
    async with httprs.AsyncClient() as c:
        bodies = [(await c.get(srv.url + f"/{i}")).text for i in range(5)]
    assert bodies == ["0:1", "0:2", "0:3", "0:4", "0:5"]
    assert srv.connections == 1


async def test_large_download_and_upload(server):
    n = 10 * 1024 * 1024
    async with httprs.AsyncClient() as c:
        r = await c.get(server.url + f"/bytes/{n}")
        assert hashlib.sha256(r.content).digest() == hashlib.sha256(expected_bytes(n)).digest()
        data = expected_bytes(n)

        async def gen():
            for i in range(0, n, 1 << 20):
                yield data[i : i + (1 << 20)]

        r = await c.post(server.url + "/upload_size", content=gen())
        assert r.json() == {"size": n, "sha256": hashlib.sha256(data).hexdigest()}
        r = await c.post(server.url + "/upload_size", content=data)
        assert r.json()["size"] == n


async def test_http10_and_interim(scripted):
    def handler(conn):
        while (req := conn.read_request()) is not None:
            if req.target == "/10":
                conn.send(b"HTTP/1.0 200 OK\r\n\r\nold style")
                return
            conn.send(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n")
            conn.respond(b"final")

    srv = scripted(handler)
    async with httprs.AsyncClient() as c:
        r = await c.get(srv.url + "/10")
        assert r.http_version == "HTTP/1.0" and r.text == "old style"
        r = await c.get(srv.url + "/1xx")
        assert r.status_code == 200 and r.text == "final"
    assert srv.connections == 2


async def test_redirects_and_cookies(server, server2):
    async with httprs.AsyncClient(follow_redirects=True) as c:
        r = await c.post(server.url + "/redirect/307", content=b"x")
        assert echo(r)["method"] == "POST" and echo(r)["body"] == "x"
        assert [h.status_code for h in r.history] == [307]
        r = await c.get(server.url + "/redirect/cross/302", headers={"Authorization": "secret"})
        assert r.url == httprs.URL(server2.url + "/echo")
        assert "authorization" not in echo(r)["headers_dict"]
        await c.get(server.url + "/cookies/set?k=v")
        assert (await c.get(server.url + "/cookies")).json() == {"k": "v"}
        with pytest.raises(httprs.TooManyRedirects):
            await c.get(server.url + "/redirect/loop")


# -- faults ----------------------------------------------------------------------------


@pytest.mark.parametrize("fault,exc,message", FAULTS, ids=[f[0].__name__ for f in FAULTS])
async def test_fault_raises_and_client_recovers(scripted, fault, exc, message):
    srv = fault_server(scripted, fault)
    async with httprs.AsyncClient(timeout=5) as c:
        await assert_usable(c, srv)
        with pytest.raises(getattr(httprs, exc)) as info:
            await c.get(srv.url + "/fault")
        if message is not None:
            assert message in str(info.value)
        await assert_usable(c, srv)


@pytest.mark.parametrize(
    "fault,exc",
    [(truncated_body, "RemoteProtocolError"), (reset_mid_body, "ReadError")],
    ids=["truncated_body", "reset_mid_body"],
)
async def test_fault_while_streaming(scripted, fault, exc):
    exc = getattr(httprs, exc)
    srv = fault_server(scripted, fault)
    async with httprs.AsyncClient(timeout=5) as c:
        async with c.stream("GET", srv.url + "/fault") as r:
            with pytest.raises(exc):
                async for _ in r.aiter_bytes():
                    pass
        await assert_usable(c, srv)


async def test_connect_refused(closed_port, server):
    async with httprs.AsyncClient() as c:
        with pytest.raises(httprs.ConnectError):
            await c.get(f"http://127.0.0.1:{closed_port}/")
        assert (await c.get(server.url + "/")).status_code == 200


async def test_stale_connection_reconnects(scripted):
    def handler(conn):
        if conn.read_request() is not None:
            conn.respond(b"good")

    srv = scripted(handler)
    async with httprs.AsyncClient() as c:
        for _ in range(3):
            await assert_usable(c, srv)
            await anyio.sleep(0.15)
    assert srv.connections == 3


async def test_bad_input(scripted):
    srv = scripted(echo_request_count)
    async with httprs.AsyncClient() as c:
        with pytest.raises(httprs.UnsupportedProtocol):
            await c.get("ftp://127.0.0.1/")
        with pytest.raises(httprs.InvalidURL):
            await c.get("http://127.0.0.1:abc/")
        with pytest.raises(httprs.LocalProtocolError):
            await c.get(srv.url, headers={"X-A": "a\r\nb"})

        class Boom(Exception):
            pass

        async def gen():
            yield b"x"
            raise Boom()

        with pytest.raises(Boom):
            await c.post(srv.url, content=gen())
        assert (await c.get(srv.url)).status_code == 200


# -- timeouts ---------------------------------------------------------------------------


async def test_read_timeout(server):
    async with httprs.AsyncClient(timeout=httprs.Timeout(5, read=0.2)) as c:
        t0 = time.monotonic()
        with pytest.raises(httprs.ReadTimeout):
            await c.get(server.url + "/slow?delay=2")
        assert time.monotonic() - t0 < 1.5
        async with c.stream("GET", server.url + "/slow_body?delay=2") as r:
            with pytest.raises(httprs.ReadTimeout):
                await r.aread()
        assert (await c.get(server.url + "/")).status_code == 200
        assert (await c.get(server.url + "/slow?delay=0.4", timeout=3)).text == "slow"


async def test_connect_timeout(server):
    fb = FullBacklog()
    try:
        if not fb.works:
            pytest.skip("the kernel completed a connect to a full backlog")
        async with httprs.AsyncClient(timeout=httprs.Timeout(5, connect=0.3)) as c:
            t0 = time.monotonic()
            with pytest.raises(httprs.ConnectTimeout):
                await c.get(fb.url)
            assert time.monotonic() - t0 < 2
            assert (await c.get(server.url + "/")).status_code == 200
    finally:
        fb.close()


async def test_write_timeout(scripted, server):
    srv = scripted(lambda conn: conn.hold_no_read(), rcvbuf=4096)

    async def body():
        for _ in range(4000):
            yield b"w" * 65536

    async with httprs.AsyncClient(timeout=httprs.Timeout(5, write=0.3)) as c:
        with pytest.raises(httprs.WriteTimeout):
            await c.post(srv.url, content=body())
        assert (await c.get(server.url + "/")).status_code == 200


async def test_pool_timeout(server):
    limits = httprs.Limits(max_connections=1)
    async with httprs.AsyncClient(limits=limits, timeout=httprs.Timeout(5, pool=0.2)) as c:
        async with c.stream("GET", server.url + "/bytes/10") as held:
            assert held.status_code == 200
            with pytest.raises(httprs.PoolTimeout):
                await c.get(server.url + "/")
        assert (await c.get(server.url + "/")).status_code == 200


async def test_timeout_none(server):
    async with httprs.AsyncClient(timeout=None) as c:
        assert (await c.get(server.url + "/slow?delay=0.5")).text == "slow"


# -- concurrency and cancellation -----------------------------------------------------------


async def _concurrent(srv, n, max_connections):
    results = {}
    async with httprs.AsyncClient(limits=httprs.Limits(max_connections=max_connections)) as c:

        async def one(i):
            r = await c.get(srv.url + f"/req{i}")
            results[i] = r.text

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
    assert results == {i: f"/req{i}" for i in range(n)}
    stats = srv.stats()
    assert stats["max_open"] <= max_connections
    assert stats["requests"] == n


async def test_concurrency_200_requests_20_connections(process_server):
    await _concurrent(process_server, 200, 20)


@pytest.mark.httprs_only
async def test_concurrency_1000_requests_100_connections(process_server):
    """httpx 0.28.1 fails this with PoolTimeout: httpcore's pool assignment is quadratic
    in queued requests x connections (~25 s of CPU for 1000 requests here)."""
    t0 = time.monotonic()
    await _concurrent(process_server, 1000, 100)
    assert time.monotonic() - t0 < 20


async def test_cancel_then_recover(scripted):
    def handler(conn):
        while (req := conn.read_request()) is not None:
            if req.target == "/hang":
                conn.hold()
                return
            conn.respond(b"good")

    srv = scripted(handler)
    limits = httprs.Limits(max_connections=1)
    async with httprs.AsyncClient(limits=limits, timeout=httprs.Timeout(5, pool=1)) as c:
        for _ in range(3):
            with anyio.move_on_after(0.2) as scope:
                await c.get(srv.url + "/hang")
            assert scope.cancelled_caught
            await assert_usable(c, srv)


async def test_cancel_while_streaming_body(server):
    limits = httprs.Limits(max_connections=1)
    async with httprs.AsyncClient(limits=limits, timeout=httprs.Timeout(5, pool=1)) as c:
        with anyio.move_on_after(0.2) as scope:
            async with c.stream("GET", server.url + "/slow_body?delay=2") as r:
                await r.aread()
        assert scope.cancelled_caught
        assert (await c.get(server.url + "/")).status_code == 200


@pytest.mark.httprs_only
async def test_cancellation_storm(process_server):
    """10,000 requests cancelled at random points against a pool of 10, then 100 normal
    requests must succeed. httpx 0.28.1 leaks pool slots here on asyncio (httpcore #1093)
    and the follow-up requests end in PoolTimeout."""
    rng = random.Random(12345)
    limits = httprs.Limits(max_connections=10)
    stats = {"cancelled": 0, "done": 0}
    t0 = time.monotonic()
    async with httprs.AsyncClient(limits=limits, timeout=httprs.Timeout(10, pool=5)) as c:

        async def one(deadline, delay):
            with anyio.move_on_after(deadline) as scope:
                async with c.stream("GET", process_server.url + f"/x?delay={delay}") as r:
                    await r.aread()
                stats["done"] += 1
            if scope.cancelled_caught:
                stats["cancelled"] += 1

        for _ in range(100):
            async with anyio.create_task_group() as tg:
                for _ in range(100):
                    tg.start_soon(one, rng.uniform(0, 0.03), round(rng.uniform(0, 0.01), 4))
        assert stats["cancelled"] + stats["done"] == 10_000
        assert stats["cancelled"] >= 1000

        ok = []

        async def good(i):
            r = await c.get(process_server.url + f"/after{i}")
            ok.append(r.text == f"/after{i}")

        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(good, i)
        assert ok == [True] * 100
        # no leaked sockets: once the server has caught up with the closes, at most the
        # pool's 10 connections are still open (the server's running maximum lags behind
        # the client's closes during the storm, so it is not asserted)
        deadline = time.monotonic() + 3
        while process_server.stats()["open"] > 10 and time.monotonic() < deadline:
            await anyio.sleep(0.05)
        assert process_server.stats()["open"] <= 10
    assert time.monotonic() - t0 < 60


# -- event loops ---------------------------------------------------------------------------


@pytest.mark.httprs_only
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
def test_async_client_across_event_loops(server, anyio_backend):
    """httpx ties pooled connections to the first event loop; httprs keeps working."""
    client = httprs.AsyncClient()

    async def use():
        r = await client.get(server.url + "/client_port")
        return r.text

    first = asyncio.run(use())
    second = asyncio.run(use())
    assert first and second

    async def close():
        await client.aclose()

    asyncio.run(close())


def _run_in(library, fn):
    if library == "asyncio":
        return asyncio.run(fn())
    import trio

    return trio.run(fn)


@pytest.mark.httprs_only
@pytest.mark.parametrize(
    ("first", "second"),
    [("asyncio", "asyncio"), ("trio", "trio"), ("asyncio", "trio"), ("trio", "asyncio")],
)
def test_a_second_running_event_loop_is_served_on_its_own_connection(scripted, first, second):
    """One AsyncClient used from two event loops running at once (threads), as httpx's
    serves them: the second loop's request goes out (on a connection of its own: a
    socket is watched by one loop) while the first's is open, and both answer. (httprs
    until session 41: the second loop's request was a RuntimeError. httpx 0.28 serves it
    too, but ties each pooled connection to its first loop: a later loop reusing one
    fails, "Event loop is closed", which test_async_client_across_event_loops covers.)"""
    import threading

    release = threading.Event()

    def handler(conn):
        while (req := conn.read_request()) is not None:
            if req.target == "/slow":
                release.wait(10)
            conn.respond(req.target.encode())

    srv = scripted(handler)
    client = httprs.AsyncClient(timeout=10)
    results = {}

    async def slow():
        results["first"] = (await client.get(srv.url + "/slow")).text

    thread = threading.Thread(target=_run_in, args=(first, slow))
    thread.start()
    deadline = time.monotonic() + 5
    while not srv.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(srv.requests) == 1

    async def other():
        return (await client.get(srv.url + "/other")).text

    try:
        assert _run_in(second, other) == "/other"
        assert "first" not in results  # (served while the first loop's was open)
        assert srv.connections == 2
    finally:
        release.set()
        thread.join(10)
    assert results["first"] == "/slow"
    assert _run_in(second, other) == "/other"
    _run_in(second, client.aclose)


@pytest.mark.httprs_only
def test_running_event_loops_in_many_threads_share_one_client(scripted):
    """Threads each running their own loop (asyncio.run) at once, every request held by
    the server until all have come: each is served; the client goes on serving them one
    after another, and its limits hold per loop's pool (max_connections=1: one
    connection per thread; httpx and httpx2 share one pool between the loops: with one
    connection, the others' requests end in PoolTimeout)."""
    import threading

    threads_n = 4
    arrived = threading.Barrier(threads_n, timeout=10)

    def handler(conn):
        while (req := conn.read_request()) is not None:
            if req.target.startswith("/together"):
                arrived.wait()
            conn.respond(req.target.encode())

    srv = scripted(handler)
    client = httprs.AsyncClient(timeout=10, limits=httprs.Limits(max_connections=1))
    results = {}

    def run(i):
        async def go():
            first = (await client.get(f"{srv.url}/together/{i}")).text
            return first, (await client.get(f"{srv.url}/after/{i}")).text

        try:
            results[i] = asyncio.run(go())
        except BaseException as error:  # (reported below)
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert results == {i: (f"/together/{i}", f"/after/{i}") for i in range(threads_n)}
    assert srv.connections == threads_n
    assert asyncio.run(client.get(srv.url + "/last")).text == "/last"
    asyncio.run(client.aclose())


@pytest.mark.httprs_only
def test_a_loop_keeps_the_pool_it_holds_and_pools_are_reused(scripted):
    """A loop that holds streams on another pool (it came while the transport's own was
    held elsewhere) sends its next requests there, not on the transport's own pool once
    that is free; a later loop takes a free pool: no more pools than loops at once."""
    import threading

    def handler(conn):
        while (req := conn.read_request()) is not None:
            conn.respond(req.target.encode() * 1000)

    srv = scripted(handler)
    client = httprs.AsyncClient(timeout=10)
    transport = client._transport
    a_open, b_open, a_done, b_go = (threading.Event() for _ in range(4))
    results = {}

    async def a():
        async with client.stream("GET", srv.url + "/a"):
            a_open.set()
            b_open.wait(10)
        a_done.set()

    async def b():
        a_open.wait(10)
        async with client.stream("GET", srv.url + "/b1") as r1:
            b_open.set()
            a_done.wait(10)
            async with client.stream("GET", srv.url + "/b2") as r2:
                results["b"] = (await r1.aread())[:3], (await r2.aread())[:3]

    threads = [threading.Thread(target=asyncio.run, args=(f(),)) for f in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results["b"] == (b"/b1", b"/b2")
    assert len(transport._other_drivers) == 1
    # /a on the transport's pool, /b1 and /b2 on the other (two connections: both open).
    assert srv.connections == 3
    assert asyncio.run(client.get(srv.url + "/c")).status_code == 200
    assert len(transport._other_drivers) == 1
    asyncio.run(client.aclose())


@pytest.mark.httprs_only
@pytest.mark.parametrize("reader", ["asyncio", "trio"])
def test_a_response_awaited_in_another_threads_loop_is_refused(scripted, reader):
    """A streamed response opened by one running loop and read from a loop of another
    thread while the first still has it open: the wake-ups of its connection reach the
    first loop only, so the read would wait for ever; it is a RuntimeError (the read
    began: the stream counts as consumed, as in httpx), and the owner's loop goes on
    using the client."""
    import threading

    opened, proceed = threading.Event(), threading.Event()

    def handler(conn):
        while conn.read_request() is not None:
            conn.respond(b"x" * 100_000)

    srv = scripted(handler)
    client = httprs.AsyncClient(timeout=10)
    box = {}

    async def owner():
        async with client.stream("GET", srv.url + "/") as r:
            box["response"] = r
            opened.set()
            proceed.wait(10)  # (blocks this loop while the other thread tries)
        box["next"] = (await client.get(srv.url + "/")).status_code

    thread = threading.Thread(target=asyncio.run, args=(owner(),))
    thread.start()
    try:
        assert opened.wait(10)

        async def read_elsewhere():
            return await box["response"].aread()

        with pytest.raises(RuntimeError, match="event loop running in another thread"):
            _run_in(reader, read_elsewhere)
    finally:
        proceed.set()
        thread.join(10)
    assert box["next"] == 200
    asyncio.run(client.aclose())


@pytest.mark.httprs_only
@pytest.mark.parametrize("library", ["asyncio", "trio"])
def test_aclose_fails_requests_waiting_in_other_threads_loops(scripted, library):
    """aclose() in one loop while loops of two other threads wait for responses (one on
    the transport's own pool, one on its thread's): both fail at once (ReadError, as a
    request in flight at aclose does), none waits for its timeout. A trio task waiting
    on a driver's fd is woken in its own trio run (it waited until its timeout)."""
    import threading

    release = threading.Event()
    both = threading.Barrier(2, timeout=10)

    def handler(conn):
        while conn.read_request() is not None:
            both.wait()
            release.wait(10)
            conn.respond(b"late")

    srv = scripted(handler)
    client = httprs.AsyncClient(timeout=30)
    results = {}

    def run(i):
        async def go():
            return (await client.get(f"{srv.url}/{i}")).text

        started = time.monotonic()
        try:
            results[i] = _run_in(library, go)
        except Exception as error:
            results[i] = error
        results[f"{i}-took"] = time.monotonic() - started

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 5
        while len(srv.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(srv.requests) == 2
        asyncio.run(client.aclose())
        for thread in threads:
            thread.join(10)
    finally:
        release.set()
    for i in range(2):
        assert isinstance(results[i], httprs.ReadError), results[i]
        assert results[f"{i}-took"] < 10


def test_an_idle_event_loop_of_another_thread_leaves_the_client_to_the_next(server):
    """A loop that keeps running in another thread (an anyio portal's, a GUI's) with none
    of its requests open does not keep the client: another thread's loop is served, and
    the first again after it (the driver's fd moves between the loops' selectors, each
    changed in its own thread)."""
    import threading

    client = httprs.AsyncClient(timeout=10)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()

    async def get(path):
        return (await client.get(server.url + path)).status_code

    def in_portal(path):
        return asyncio.run_coroutine_threadsafe(get(path), loop).result(10)

    try:
        assert in_portal("/echo?i=a") == 200
        assert asyncio.run(get("/echo?i=b")) == 200
        assert in_portal("/echo?i=c") == 200
        assert asyncio.run(get("/echo?i=d")) == 200
    finally:
        asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.mark.httprs_only
@pytest.mark.parametrize("first", ["asyncio", "trio"])
def test_an_open_streamed_response_of_another_loop_does_not_hold_the_client(scripted, first):
    """A response of the first loop streamed and not yet read to its end (no task waiting
    on the client at that moment): another thread's loop is served meanwhile (on its own
    connection), and the first loop's stream reads on."""
    import threading

    opened, proceed = threading.Event(), threading.Event()

    def handler(conn):
        while (req := conn.read_request()) is not None:
            conn.respond(req.target.encode() * 1000)

    srv = scripted(handler)
    client = httprs.AsyncClient(timeout=10)
    results = {}

    async def streamed():
        async with client.stream("GET", srv.url + "/stream") as r:
            opened.set()
            proceed.wait(10)  # (blocks this loop: nothing of it runs meanwhile)
            results["first"] = len(await r.aread())

    thread = threading.Thread(target=_run_in, args=(first, streamed))
    thread.start()

    async def other():
        return (await client.get(srv.url + "/other")).status_code

    try:
        assert opened.wait(10)
        assert asyncio.run(other()) == 200
        assert [r.target for r in srv.requests] == ["/stream", "/other"]
    finally:
        proceed.set()
        thread.join(10)
    assert results["first"] == len(b"/stream") * 1000
    assert asyncio.run(other()) == 200
    asyncio.run(client.aclose())


# -- TLS and proxies through the async driver ------------------------------------------------


async def test_tls_verify(https_server, certs, anyio_backend):
    import ssl

    ctx = ssl.create_default_context(cafile=certs.ca_file)
    async with httprs.AsyncClient(verify=ctx) as c:
        docs = [(await c.get(https_server.url + f"/{i}")).json() for i in range(3)]
    assert [d["target"] for d in docs] == ["/0", "/1", "/2"]
    assert https_server.connections == 1
    async with httprs.AsyncClient() as c:
        with pytest.raises(httprs.ConnectError) as info:
            await c.get(https_server.url)
    if anyio_backend == "asyncio":  # httpx on trio loses the message (ConnectError(''))
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    async with httprs.AsyncClient(verify=False) as c:
        assert (await c.get(https_server.url)).status_code == 200


async def test_proxy_forward_and_tunnel(proxy_factory, server, https_server, certs, clean_env):
    import ssl

    proxy = proxy_factory(auth=("u", "p"))
    ctx = ssl.create_default_context(cafile=certs.ca_file)
    proxy_url = proxy.url.replace("http://", "http://u:p@")
    async with httprs.AsyncClient(proxy=proxy_url, verify=ctx) as c:
        r = await c.get(server.url + "/echo")
        assert r.status_code == 200
        r = await c.get(https_server.url + "/tunnelled")
        assert r.json()["target"] == "/tunnelled"
        assert "proxy-authorization" not in {k.lower() for k, _ in r.json()["headers"]}
    assert [s.method for s in proxy.seen] == ["GET", "CONNECT"]
    assert all(s.header("proxy-authorization") for s in proxy.seen)
    refused = proxy_factory(connect_status="403 Permission Denied")
    async with httprs.AsyncClient(proxy=refused.url, verify=ctx) as c:
        with pytest.raises(httprs.ProxyError):
            await c.get(https_server.url)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_aclose_releases_fds(process_server):
    import gc

    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    async with httprs.AsyncClient() as warm:
        await warm.get(process_server.url + "/warm")
    del warm
    gc.collect()
    baseline = open_fds()
    c = httprs.AsyncClient(limits=httprs.Limits(max_connections=4))
    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(c.get, process_server.url + f"/{i}")
    await c.aclose()
    assert c.is_closed
    assert open_fds() == baseline


async def test_large_chunked_body_read_whole(scripted):
    from servers.scripted import chunked

    def handler(conn):
        while conn.read_request() is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            conn.send(chunked(*[b"x" * 16384 for _ in range(192)]))

    srv = scripted(handler)
    async with httprs.AsyncClient(timeout=10) as c:
        r = await c.get(srv.url + "/big")
        assert len(r.content) == 192 * 16384
        async with c.stream("GET", srv.url + "/big") as s:
            total = 0
            async for b in s.aiter_raw():
                total += len(b)
        assert total == 192 * 16384


def test_unclosed_clients_are_quiet_under_w_error(server, tmp_path):
    """GC of clients that were never closed (sync and async, with pooled connections and
    an unread streamed response) prints nothing and raises nothing under -W error -X dev:
    suites with filterwarnings=error (openai's) keep passing. (-X dev puts asyncio in
    debug mode, which logs any callback slower than 0.1 s: a loaded machine's, not the
    client's; the script raises that threshold so only real warnings reach stderr.)"""
    import subprocess
    import sys

    script = tmp_path / "unclosed.py"
    script.write_text(
        "import asyncio, gc, httprs\n"
        f"URL = {server.url!r}\n"
        "async def main():\n"
        "    asyncio.get_running_loop().slow_callback_duration = 3600\n"
        "    c = httprs.AsyncClient()\n"
        "    await c.get(URL + '/')\n"
        "    s = await c.send(c.build_request('GET', URL + '/bytes/100000'), stream=True)\n"
        "    del c, s\n"
        "    gc.collect()\n"
        "    c2 = httprs.AsyncClient()\n"
        "    await c2.get(URL + '/')\n"
        "    return c2\n"
        "left = asyncio.run(main())\n"
        "del left\n"
        "gc.collect()\n"
        "c3 = httprs.Client()\n"
        "c3.get(URL + '/')\n"
        "del c3\n"
        "gc.collect()\n"
        "print('done')\n"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-X", "dev", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "done"
    assert out.stderr == ""


@pytest.mark.httprs_only  # httpx inflates each network chunk in full
async def test_async_streamed_decompression_is_bounded(scripted):
    import gzip as _gzip

    body = _gzip.compress(b"\0" * (32 << 20), 9)

    def handler(conn):
        while conn.read_request() is not None:
            conn.send(
                b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
                % len(body)
                + body
            )

    srv = scripted(handler)
    async with httprs.AsyncClient(timeout=10) as c:
        async with c.stream("GET", srv.url + "/bomb") as r:
            total = 0
            async for chunk in r.aiter_bytes():
                assert len(chunk) <= 1 << 20
                total += len(chunk)
    assert total == 32 << 20


def test_plain_trio_run(server):
    """Under trio.run itself (no anyio), concurrently, with a streamed body."""
    import trio

    async def main():
        async with httprs.AsyncClient() as c:
            results = []

            async def one(i):
                r = await c.get(server.url + f"/echo?i={i}")
                results.append(r.json()["query"])

            async with trio.open_nursery() as nursery:
                for i in range(20):
                    nursery.start_soon(one, i)
            async with c.stream("GET", server.url + "/stream/5") as s:
                lines = [line async for line in s.aiter_lines()]
            return sorted(results), len(lines)

    results, n_lines = trio.run(main)
    assert results == sorted(f"i={i}" for i in range(20))
    assert n_lines == 5


# -- aclose() with requests in flight; waking the driver ------------------------------


async def test_aclose_fails_requests_in_flight_with_read_error(scripted):
    def hold(conn):
        conn.read_request()
        conn.hold()

    srv = scripted(hold)
    client = httprs.AsyncClient(timeout=None)
    outcomes = []

    async def call():
        try:
            await client.get(srv.url + "/hang")
            outcomes.append("response")
        except httprs.ReadError:
            outcomes.append("ReadError")
        except BaseException as e:  # a cancellation here is the bug
            outcomes.append(type(e).__name__)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            tg.start_soon(call)
            await anyio.sleep(0.3)
            await client.aclose()
    assert outcomes == ["ReadError", "ReadError"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_aclose_in_flight_task_is_not_cancelled(scripted, anyio_backend):
    def hold(conn):
        conn.read_request()
        conn.hold()

    srv = scripted(hold)
    client = httprs.AsyncClient(timeout=None)
    task = asyncio.ensure_future(client.get(srv.url + "/hang"))
    await asyncio.sleep(0.3)
    await client.aclose()
    await asyncio.wait([task], timeout=5)
    assert task.done() and not task.cancelled()
    assert isinstance(task.exception(), httprs.ReadError)


async def test_new_request_is_not_stuck_behind_a_long_poll(scripted):
    """Another task's request on a new connection must wake the task driving the loop
    (which is waiting for the long-poll's socket)."""

    def long_poll(conn):
        while (req := conn.read_request()) is not None:
            if req.target == "/poll":
                conn.hold(8)
                return
            conn.respond(b"good")

    poll_srv = scripted(long_poll)
    other = scripted(long_poll)
    async with httprs.AsyncClient(timeout=None) as c:
        async with anyio.create_task_group() as tg:

            async def poll():
                with pytest.raises(httprs.RemoteProtocolError):
                    await c.get(poll_srv.url + "/poll")

            tg.start_soon(poll)
            await anyio.sleep(0.3)  # the poll is now waiting for its response
            t0 = time.monotonic()
            with anyio.fail_after(5):
                r = await c.get(other.url + "/good")
            elapsed = time.monotonic() - t0
            assert r.text == "good"
            tg.cancel_scope.cancel()
    # Generous: without a wake-up this waits for the 8 s long-poll.
    assert elapsed < 2.0


async def test_sequential_clients_take_over_one_engine_loop(server):
    """AsyncClients made one after another take over the previous one's engine loop
    (the same backend fd, see test_pool.py::test_new_client_takes_a_closed_clients_loop):
    each registers it with the event loop anew and works, also after a client that was
    dropped without aclose()."""
    import gc

    async def get(client, results):
        r = await client.get(server.url + "/echo?x=1")
        results.append((r.status_code, echo(r)["method"]))

    for _ in range(3):
        async with httprs.AsyncClient(timeout=5) as c:
            results = []
            async with anyio.create_task_group() as tg:
                for _k in range(3):
                    tg.start_soon(get, c, results)
            assert results == [(200, "GET")] * 3
        dropped = httprs.AsyncClient(timeout=5)
        assert (await dropped.get(server.url + "/echo")).status_code == 200
        del dropped
        gc.collect()


async def _stream_time_out_and_cancel_on_asyncio(client, server):
    """A 3 MB stream, a read timeout (the client's read= is under 2 s) and a request
    cancelled while it waits, on an asyncio loop."""
    async with client.stream("GET", server.url + "/bytes/3000000") as r:
        assert b"".join([c async for c in r.aiter_bytes()]) == expected_bytes(3_000_000)
    with pytest.raises(httprs.ReadTimeout):
        await client.get(server.url + "/slow?delay=2")
    task = asyncio.ensure_future(client.get(server.url + "/slow?delay=2", timeout=5))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# -- trio guest mode ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "first",
    [
        "trio_only",
        pytest.param("asyncio", marks=pytest.mark.httprs_only),
        pytest.param("trio", marks=pytest.mark.httprs_only),
        pytest.param("together", marks=pytest.mark.httprs_only),
    ],
)
def test_trio_guest_run_on_an_asyncio_loop(server, first):
    """A trio run as a guest of a running asyncio loop (trio.lowlevel.start_guest_run: its
    tasks' steps run inside asyncio's callbacks, where asyncio's running loop is the
    host's): its tasks' requests, streaming, a read timeout and a cancelled request, on a
    client of their own (trio_only) or on one asyncio tasks use too, before, after, or at
    the same time as trio's. (httprs until session 46, once an asyncio task had used the
    client: trio raised TypeError, "trio.run received unrecognized yield message <Future
    pending>". httpx shares no client between the two: the lock its pool made under one
    library fails under the other, a TypeError from anyio's asyncio backend in a trio
    task.)"""
    import trio

    async def trio_side(client):
        if client is None:
            async with httprs.AsyncClient(timeout=httprs.Timeout(5, read=0.5)) as own:
                return await trio_side(own)
        got = []

        async def one(i):
            got.append((await client.get(server.url + f"/echo?t={i}")).json()["query"])

        async with trio.open_nursery() as nursery:
            for i in range(5):
                nursery.start_soon(one, i)
        assert sorted(got) == [f"t={i}" for i in range(5)]
        async with client.stream("GET", server.url + "/bytes/3000000") as r:
            assert b"".join([c async for c in r.aiter_bytes()]) == expected_bytes(3_000_000)
        with pytest.raises(httprs.ReadTimeout):
            await client.get(server.url + "/slow?delay=2")
        with trio.move_on_after(0.1) as scope:
            await client.get(server.url + "/slow?delay=2", timeout=5)
        assert scope.cancelled_caught
        assert (await client.get(server.url + "/echo?t=last")).status_code == 200

    async def asyncio_side(client):
        rs = await asyncio.gather(*[client.get(server.url + f"/echo?a={i}") for i in range(5)])
        assert [r.json()["query"] for r in rs] == [f"a={i}" for i in range(5)]
        await _stream_time_out_and_cancel_on_asyncio(client, server)

    async def main():
        client = httprs.AsyncClient(timeout=httprs.Timeout(5, read=0.5))
        if first == "asyncio":
            await asyncio_side(client)
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        trio.lowlevel.start_guest_run(
            trio_side,
            None if first == "trio_only" else client,  # (None: trio's own client)
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=done.set_result,
        )
        if first in ("together", "trio_only"):
            await asyncio_side(client)
        (await done).unwrap()
        await asyncio_side(client)
        await client.aclose()

    asyncio.run(main())


# -- uvloop ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "anyio_backend", [pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop")]
)
async def test_on_uvloop(server, anyio_backend):
    """uvicorn runs apps on uvloop where it is installed: the driver's add_reader on the
    engine's epoll fd and its call_at timers work on that loop too."""
    assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
    async with httprs.AsyncClient(timeout=httprs.Timeout(5, read=0.3)) as c:
        rs = await asyncio.gather(*[c.get(server.url + f"/echo?i={i}") for i in range(20)])
        assert [r.json()["query"] for r in rs] == [f"i={i}" for i in range(20)]
        await _stream_time_out_and_cancel_on_asyncio(c, server)
        assert (await c.get(server.url + "/")).status_code == 200


def test_a_closed_loops_waiting_stream_leaves_the_next_loop_alone(scripted):
    """A task of a first event loop, closed without cancelling it, still waits on a
    stream of the client; the next loop's request gets its head in the same driver
    pass that brings that stream more bytes. Resolving the closed loop's future raised
    in that pass (logged by the loop, the pass's other waiters and its timer skipped)."""
    import threading

    go = threading.Event()

    def streaming(conn):
        if conn.read_request() is None:
            return
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
        go.wait(5)
        conn.send(b"1\r\nb\r\n")
        conn.hold(5)

    def late_body(conn):
        if conn.read_request() is None:
            return
        go.set()  # the other server's chunk and this head come in one pass
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        conn.hold(5)

    first, second = scripted(streaming), scripted(late_body)
    client = httprs.AsyncClient(timeout=httprs.Timeout(5.0, read=0.5))

    async def read_on():
        async with client.stream("GET", first.url + "/") as r:
            async for _ in r.aiter_raw():
                pass

    async def start():
        for _ in range(4):
            asyncio.ensure_future(read_on())
        await asyncio.sleep(0.3)  # each has its first chunk and waits for more

    loop = asyncio.new_event_loop()
    loop.run_until_complete(start())
    loop.close()
    errors = []
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda loop, context: errors.append(context))

    async def read_timeout():
        t0 = time.monotonic()
        with pytest.raises(httprs.ReadTimeout):
            await asyncio.wait_for(client.get(second.url + "/"), 4)
        return time.monotonic() - t0

    try:
        assert loop.run_until_complete(read_timeout()) < 2
    finally:
        loop.close()
    assert errors == []
