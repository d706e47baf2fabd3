"""Response bodies on the engine's read path: whole reads into one buffer (the length
known, or not: chunked, close-delimited) at and around the buffers' boundaries, bodies
larger than the first buffer, streamed chunks, and a read that ends half-way (a read
timeout with the buffer half filled, a response dropped mid-body). Sync and async twins.
"""

from __future__ import annotations

import gc
import gzip
import socket
import ssl
import threading
import time
import tracemalloc

import anyio
import httpx
import pytest
import twin
from servers.scripted import chunked
from servers.tls import server_context

import httprs

KIB = 1024
MIB = 1024 * KIB
FIRST_UNKNOWN = 256 * KIB  # _body.pxi UNKNOWN_SINK: first buffer of an unknown-length body
FIRST_KNOWN = 16 * MIB  # _body.pxi FIRST_SINK: the most allocated before bytes arrive
STREAM_CHUNK = 2 * MIB  # _body.pxi STREAM_SINK: the most one streamed chunk holds
STREAM_SMALL = MIB  # _body.pxi STREAM_SINK_SMALL: a stream's first chunks' buffer
POOL_SLOTS = 2  # _body.pxi SINK_POOL: a buffer of each size


def pattern(n: int, seed: int = 0) -> bytes:
    """n bytes that differ from any shifted copy (catches a lost or doubled piece)."""
    block = bytes((i * 7 + seed) % 251 for i in range(251 * 4))
    return (block * (n // len(block) + 1))[:n]


def send(conn, data: bytes) -> None:
    """sendall with time enough for megabytes (the server's socket timeout, 50 ms, bounds a
    whole sendall call, and a loaded machine may take longer to read that much)."""
    conn.sock.settimeout(30)
    try:
        conn.send(data)
    finally:
        conn.sock.settimeout(0.05)


def _sized_handler(framing: str):
    """Serves GET /<n>[/<seed>]: n bytes, framed as asked, 16 KiB at a time."""

    def handler(conn):
        while (req := conn.read_request()) is not None:
            parts = req.target.strip("/").split("/")
            body = pattern(int(parts[0]), int(parts[1]) if len(parts) > 1 else 0)
            if framing == "chunked":
                pieces = [body[i : i + 16 * KIB] for i in range(0, len(body), 16 * KIB)]
                send(conn, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                send(conn, chunked(*pieces))
            elif framing == "close":
                send(conn, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)
                conn.close()
                return
            else:
                send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    return handler


BOUNDARY_SIZES = [
    0,
    1,
    FIRST_UNKNOWN - 1,
    FIRST_UNKNOWN,
    FIRST_UNKNOWN + 1,
    2 * FIRST_UNKNOWN,
    3 * MIB + 5,
]


@pytest.mark.parametrize("framing", ["chunked", "close", "length"])
def test_whole_body_at_buffer_boundaries(scripted, framing):
    srv = scripted(_sized_handler(framing))
    with httprs.Client() as c:
        for n in BOUNDARY_SIZES:
            assert c.get(f"{srv.url}/{n}").content == pattern(n), n


@pytest.mark.anyio
@pytest.mark.parametrize("framing", ["chunked", "close", "length"])
async def test_whole_body_at_buffer_boundaries_async(scripted, anyio_backend, framing):
    srv = scripted(_sized_handler(framing))
    async with httprs.AsyncClient() as c:
        for n in BOUNDARY_SIZES:
            assert (await c.get(f"{srv.url}/{n}")).content == pattern(n), n


# One client, bodies of unknown length in an order that takes every path of the size
# the first buffer gets from the last body: the same size again, one byte more (the
# buffer fills and grows), much smaller (it shrinks), much larger (it doubles), empty.
HINT_SEQUENCE = [300 * KIB, 300 * KIB, 300 * KIB + 1, 5 * KIB, 2 * MIB + 3, 2 * MIB + 3, 0, 7]


def test_unknown_length_bodies_of_changing_size(scripted):
    srv = scripted(_sized_handler("chunked"))
    with httprs.Client() as c:
        for i, n in enumerate(HINT_SEQUENCE):
            assert c.get(f"{srv.url}/{n}/{i}").content == pattern(n, i), (i, n)
    assert srv.connections == 1


@pytest.mark.anyio
async def test_unknown_length_bodies_of_changing_size_async(scripted, anyio_backend):
    srv = scripted(_sized_handler("chunked"))
    async with httprs.AsyncClient() as c:
        for i, n in enumerate(HINT_SEQUENCE):
            assert (await c.get(f"{srv.url}/{n}/{i}")).content == pattern(n, i), (i, n)
    assert srv.connections == 1


@pytest.mark.parametrize("n", [FIRST_KNOWN, FIRST_KNOWN + 3])
def test_known_length_body_larger_than_first_buffer(scripted, n):
    srv = scripted(_sized_handler("length"))
    with httprs.Client() as c:
        assert c.get(f"{srv.url}/{n}").content == pattern(n)
        assert c.get(f"{srv.url}/5").content == pattern(5)  # the connection is reused
    assert srv.connections == 1


@pytest.mark.anyio
async def test_known_length_body_larger_than_first_buffer_async(scripted, anyio_backend):
    n = FIRST_KNOWN + 3
    srv = scripted(_sized_handler("length"))
    async with httprs.AsyncClient() as c:
        assert (await c.get(f"{srv.url}/{n}")).content == pattern(n)
        assert (await c.get(f"{srv.url}/5")).content == pattern(5)
    assert srv.connections == 1


STREAM_SIZES = [0, 1, STREAM_CHUNK, STREAM_CHUNK + 1, 3 * MIB + 7]


@pytest.mark.parametrize("framing", ["chunked", "close", "length"])
def test_streamed_chunks_are_bounded_and_complete(scripted, framing):
    """iter_raw yields the body exactly, each chunk one buffer of at most 2 MiB
    (the engine pauses reading while the consumer holds a full one)."""
    srv = scripted(_sized_handler(framing))
    with httprs.Client() as c:
        for n in STREAM_SIZES:
            with c.stream("GET", f"{srv.url}/{n}") as r:
                chunks = list(r.iter_raw())
            assert all(0 < len(ch) <= STREAM_CHUNK for ch in chunks), [len(x) for x in chunks]
            assert b"".join(chunks) == pattern(n), n


@pytest.mark.anyio
@pytest.mark.parametrize("framing", ["chunked", "length"])
async def test_streamed_chunks_are_bounded_and_complete_async(scripted, anyio_backend, framing):
    srv = scripted(_sized_handler(framing))
    async with httprs.AsyncClient() as c:
        for n in STREAM_SIZES:
            async with c.stream("GET", f"{srv.url}/{n}") as r:
                chunks = [ch async for ch in r.aiter_raw()]
            assert all(0 < len(ch) <= STREAM_CHUNK for ch in chunks), [len(x) for x in chunks]
            assert b"".join(chunks) == pattern(n), n


@pytest.mark.parametrize("framing", ["chunked", "close", "length"])
def test_streamed_chunks_stay_intact(scripted, framing):
    """Chunks are read into a buffer kept from chunk to chunk and from response to
    response (partly filled: copied out; full: handed out, a new one next): every
    chunk the consumer holds stays as it was while the engine reads on, through later
    chunks and later responses on the same client."""
    srv = scripted(_sized_handler(framing))
    n = 2 * MIB + 5
    with httprs.Client() as c:
        kept = {}
        for seed in (1, 2, 3):
            with c.stream("GET", f"{srv.url}/{n}/{seed}") as r:
                kept[seed] = list(r.iter_raw())
        kept[4] = [c.get(f"{srv.url}/{n}/4").content]
    for seed, chunks in kept.items():
        assert b"".join(chunks) == pattern(n, seed), seed


@pytest.mark.anyio
@pytest.mark.parametrize("framing", ["chunked", "close", "length"])
async def test_streamed_chunks_stay_intact_async(scripted, anyio_backend, framing):
    srv = scripted(_sized_handler(framing))
    n = 2 * MIB + 5
    async with httprs.AsyncClient() as c:
        kept = {}
        for seed in (1, 2, 3):
            async with c.stream("GET", f"{srv.url}/{n}/{seed}") as r:
                kept[seed] = [ch async for ch in r.aiter_raw()]
        kept[4] = [(await c.get(f"{srv.url}/{n}/4")).content]
    for seed, chunks in kept.items():
        assert b"".join(chunks) == pattern(n, seed), seed


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_reading_on_after_close_ends_a_complete_body(scripted, flavour, framing):
    """A loop that closes its response and reads on (an SDK's `stream.close()` called
    inside its loop): once the whole body is in, the iteration ends as httpx's does, after
    the rest of the body, and the client goes on."""
    srv = scripted(_sized_handler(framing))

    async def body(tw):
        async with tw.client() as c:
            got = []
            async with c.stream("GET", f"{srv.url}/1000/3") as r:
                async for chunk in r.aiter_bytes(chunk_size=100):
                    got.append(chunk)
                    if len(got) == 1:
                        await tw.sleep(0.05)  # the rest of the body is in by now
                        await r.aclose()
            assert b"".join(got) == pattern(1000, 3)
            again = await c.get(f"{srv.url}/10/4")
            assert again.content == pattern(10, 4)

    twin.run(flavour, body)


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
def test_reading_on_after_close_of_an_unfinished_body_raises(scripted, flavour):
    """The body was not all in when the response was closed: reading on raises
    ReadError, as httpx does, never a quietly shortened body. Also once the loop
    (another request here) has drained the rest of it from the connection for the pool."""

    def handler(conn):
        while (req := conn.read_request()) is not None:
            if req.target == "/other":
                conn.respond(b"ok")
                continue
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
            time.sleep(0.1)
            conn.send(b"world")

    srv = scripted(handler)

    async def body(tw):
        async with tw.client() as c:
            async with c.stream("GET", srv.url + "/body") as r:
                chunks = r.aiter_raw()
                assert await chunks.__anext__() == b"hello"
                await r.aclose()
                await tw.sleep(0.3)
                assert (await c.get(srv.url + "/other")).text == "ok"
                with pytest.raises(httprs.ReadError):
                    await chunks.__anext__()

    twin.run(flavour, body)


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_paused_stream_survives_the_loop_running_meanwhile(scripted, flavour, framing):
    """A response whose head came with more body than is held before the consumer asks
    pauses reading without telling libuv (SocketStream::pause_reading); when the loop runs
    meanwhile (other requests on the same client open connections and read responses)
    and finds that socket readable, libuv's read is stopped then, with no byte taken and
    no error. The body then arrives whole, and the connection is reused after it."""
    srv = scripted(_sized_handler(framing))
    n = 2 * MIB + 5

    async def body(tw):
        async with tw.client() as c:
            async with c.stream("GET", f"{srv.url}/{n}/5") as r:
                # The head is in, the body waits in the kernel while these run the loop.
                for i in range(3):
                    other = await c.get(f"{srv.url}/{200 * KIB}/{i}")
                    assert other.content == pattern(200 * KIB, i)
                await tw.sleep(0.05)
                assert await r.aread() == pattern(n, 5)
            again = await c.get(f"{srv.url}/{n}/6")
            assert again.content == pattern(n, 6)
        assert srv.connections == 2  # none closed for it: no third connection

    twin.run(flavour, body)


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("framing", ["chunked", "close", "length"])
def test_streamed_chunk_buffers_are_written_again_only_once_dropped(scripted, flavour, framing):
    """A full chunk's buffer (or, in a chunked body, one at least half full, handed out
    at the chunk's length) stays in a pool and is read into again once the consumer
    has dropped that chunk: chunks the consumer keeps never change, a chunk read into
    a reused buffer has its own bytes, length and hash (hashed before: not the old
    one), and the buffers come back at their full size for later responses."""
    from httprs import _core

    srv = scripted(_sized_handler(framing))
    n = 4 * MIB + 5

    async def body(tw):
        kept = []  # (chunk, offset, hash, seed)
        async with tw.client() as c:
            for seed in (1, 2, 3):
                expected = pattern(n, seed)
                offset = 0
                async with c.stream("GET", f"{srv.url}/{n}/{seed}") as r:
                    async for chunk in r.aiter_raw():
                        assert 0 < len(chunk) <= STREAM_CHUNK
                        assert chunk == expected[offset : offset + len(chunk)], (seed, offset)
                        assert hash(chunk) == hash(bytes(bytearray(chunk)))
                        if len(kept) < 6 and offset % 3 == 0:
                            kept.append((chunk, offset, hash(chunk), seed))
                        offset += len(chunk)
                        del chunk  # only the pool refers to it now: reused
                assert offset == n
            # Pooled buffers the consumer dropped are free again, at their full size: a
            # pooled buffer still referenced is one of the chunks kept (which ones are
            # kept follows where the chunks ended, so it may be any of them).
            kept_ids = {id(chunk) for chunk, *_ in kept}
            state, ids = _core._sink_pool_state(), _core._sink_pool_ids()
            assert state
            for (slot, refs), ident in zip(state, ids):
                assert refs == 1 or ident in kept_ids, (slot, refs)
            after = (await c.get(f"{srv.url}/{STREAM_CHUNK}/9")).content
            assert after == pattern(STREAM_CHUNK, 9)
        for chunk, offset, h, seed in kept:
            assert chunk == pattern(n, seed)[offset : offset + len(chunk)]
            assert hash(chunk) == h

    twin.run(flavour, body)


@pytest.mark.anyio
async def test_streamed_chunks_need_no_driver_wake_ups_async(scripted, anyio_backend):
    """asyncio: an async consumer runs the loop itself for each chunk it asks for (in its
    wait, at once), so handing the engine the next chunk's buffer does not wake the loop's
    driver: no eventfd write, and no extra event loop pass, per chunk. Every chunk still
    yields to the event loop once: another task runs between chunks. trio: the wait wakes
    whichever task drives (it may be another one)."""
    srv = scripted(_sized_handler("length"))
    n = 16 * MIB + 3
    ticks = 0
    streaming = True

    async def ticker():
        nonlocal ticks
        while streaming:
            ticks += 1
            await anyio.sleep(0)

    async with httprs.AsyncClient() as c, anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        async with c.stream("GET", f"{srv.url}/{n}") as r:
            wakes = c._transport._driver_wakes()
            chunks = [ch async for ch in r.aiter_raw()]
            wakes = c._transport._driver_wakes() - wakes
        streaming = False
    assert b"".join(chunks) == pattern(n)
    assert len(chunks) >= n // STREAM_CHUNK
    assert ticks >= len(chunks) // 2, (ticks, len(chunks))
    if anyio_backend == "asyncio":
        # Each chunk's set_sink woke the driver (at least len(chunks)) before.
        assert wakes < len(chunks) // 2, (wakes, len(chunks))


def _stall_mid_body(framing: str, sent: int, declared: int):
    """Sends the head and `sent` body bytes, then nothing until the client leaves.
    (The body is made before the test traces allocations: the server runs in-process.)"""
    body = pattern(sent)

    def handler(conn):
        req = conn.read_request()
        if req is None:
            return
        if req.target == "/good":
            conn.respond(b"good")
            conn.hold(5)
            return
        if framing == "chunked":
            send(conn, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(body))
        else:
            send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % declared)
        send(conn, body)
        conn.hold(5)

    return handler


def _traced_now() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_read_timeout_with_the_buffer_half_filled(scripted, framing):
    """The body stops half-way: ReadTimeout, the buffer the engine wrote into is freed
    (detached first), and the client goes on with a new connection."""
    srv = scripted(_stall_mid_body(framing, 3 * MIB, 6 * MIB))
    with httprs.Client(timeout=httprs.Timeout(5.0, read=0.5)) as c:
        tracemalloc.start()
        try:
            before = _traced_now()
            with pytest.raises(httprs.ReadTimeout):
                c.get(srv.url + "/big")
            after = _traced_now()
        finally:
            tracemalloc.stop()
        assert after - before < 1 * MIB
        assert c.get(srv.url + "/good").text == "good"


@pytest.mark.anyio
@pytest.mark.parametrize("framing", ["chunked", "length"])
async def test_read_timeout_with_the_buffer_half_filled_async(scripted, anyio_backend, framing):
    srv = scripted(_stall_mid_body(framing, 3 * MIB, 6 * MIB))
    async with httprs.AsyncClient(timeout=httprs.Timeout(5.0, read=0.5)) as c:
        tracemalloc.start()
        try:
            before = _traced_now()
            with pytest.raises(httprs.ReadTimeout):
                await c.get(srv.url + "/big")
            after = _traced_now()
        finally:
            tracemalloc.stop()
        assert after - before < 1 * MIB
        assert (await c.get(srv.url + "/good")).text == "good"


def _chunk_edges(sizes) -> set[int]:
    """The body offsets at which chunks of these sizes end."""
    edges, at = set(), 0
    for n in sizes:
        at += n
        edges.add(at)
    return edges


def _item_edges(items) -> set[int]:
    edges, at = set(), 0
    for item in items:
        assert item, "an empty item"
        at += len(item)
        edges.add(at)
    return edges


def _chunked_script(conn, *sends: bytes) -> None:
    """Answer one request with a chunked head, then `sends`, each its own send() 50 ms
    after the last (long enough for the client to take what came before)."""
    conn.read_request()
    conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + sends[0])
    for data in sends[1:]:
        time.sleep(0.05)
        send(conn, data)


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("method", ["aiter_raw", "aiter_bytes"])
def test_streamed_chunked_body_never_joins_two_chunks(scripted, flavour, method):
    """As httpx (h11) yields them: each chunk of a chunked body on its own, whether the
    server wrote several at once (with the head, or later into a streamed chunk's
    buffer) or one across several writes (then in the pieces that arrived)."""

    def handler(conn):
        _chunked_script(
            conn,
            b"3\r\nabc\r\n2;ext=1\r\nde\r\n",  # with the head: buffered before a sink
            b"4\r\nfghi\r\n1\r\nj\r\n5\r\nhel",  # into a streamed chunk's buffer
            b"lo\r\n2\r\nxy\r\n0\r\nTrailer: t\r\n\r\n",
        )

    srv = scripted(handler)

    async def body(tw):
        async with tw.client() as c:
            async with c.stream("GET", srv.url) as r:
                items = [item async for item in getattr(r, method)()]
        assert items == [b"abc", b"de", b"fghi", b"j", b"hel", b"lo", b"xy"]

    twin.run(flavour, body)


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
def test_streamed_tiny_chunks_come_one_by_one(scripted, flavour):
    """A hundred thousand 1-byte chunks in one write: as many items (the cut costs no
    pass over what is left per item; reading pauses while 64 Ki chunk ends wait,
    Http1Session::kMaxChunkEnds), and the same body read whole is one piece."""
    chunks = [bytes([65 + i % 26]) for i in range(100_000)]

    def handler(conn):
        while conn.read_request() is not None:
            send(conn, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(*chunks))

    srv = scripted(handler)

    async def body(tw):
        async with tw.client() as c:
            async with c.stream("GET", srv.url) as r:
                items = [item async for item in r.aiter_raw()]
            assert items == chunks
            assert (await c.get(srv.url)).content == b"".join(chunks)

    twin.run(flavour, body)


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
def test_streamed_chunk_larger_than_a_buffer_keeps_its_neighbours_apart(scripted, flavour):
    """A chunk larger than a streamed chunk's buffer comes in pieces; the small chunks
    around it, written with it, stay items of their own, and none is lost or doubled."""
    big = pattern(STREAM_CHUNK + 300 * KIB, 7)
    sizes = [3, len(big), 5, 1, len(big), 2]
    data = [b"abc", big, b"hello", b"x", big, b"yz"]

    def handler(conn):
        conn.read_request()
        send(conn, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(*data))

    srv = scripted(handler)

    async def body(tw):
        async with tw.client() as c:
            async with c.stream("GET", srv.url) as r:
                items = [item async for item in r.aiter_raw()]
        assert b"".join(items) == b"".join(data)
        assert _chunk_edges(sizes) <= _item_edges(items)

    twin.run(flavour, body)


@pytest.mark.httprs_only
@pytest.mark.parametrize("flavour", twin.FLAVOURS)
def test_chunks_read_on_after_close_stay_apart(scripted, flavour):
    """The rest of a body that was all in when the response was closed (the iteration
    reads on and ends with it; httpx, which had not read it from the socket yet, raises
    ReadError) keeps its chunks apart too."""

    def handler(conn):
        while (req := conn.read_request()) is not None:
            if req.target == "/other":
                conn.respond(b"ok")
                continue
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
            time.sleep(0.05)
            conn.send(b"2\r\nde\r\n1\r\nf\r\n0\r\n\r\n")

    srv = scripted(handler)

    async def body(tw):
        async with tw.client() as c:
            async with c.stream("GET", srv.url + "/body") as r:
                items = []
                async for item in r.aiter_raw():
                    items.append(item)
                    if len(items) == 1:
                        await tw.sleep(0.15)
                        # (Runs the loop of a sync client, which reads the rest.)
                        assert (await c.get(srv.url + "/other")).text == "ok"
                        await r.aclose()
        assert items == [b"abc", b"de", b"f"]

    twin.run(flavour, body)


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("target", ["httprs", "httpx"])
@pytest.mark.parametrize("framing", ["length", "chunked"], ids=["cut-short", "bad-chunk-size"])
def test_read_that_fails_part_way_counts_what_came(scripted, flavour, target, framing):
    """httpx's read() counts each raw chunk as it arrives: after a read that failed
    part-way, num_bytes_downloaded is what came before the error (not 0)."""

    def handler(conn):
        conn.read_request()
        if framing == "length":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
        else:
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            time.sleep(0.05)
            conn.send(b"5\r\nhello\r\nzz\r\n")
        time.sleep(0.05)
        conn.close()

    srv = scripted(handler)

    async def body(tw):
        async with tw.client() as c:
            r = await c.send(c.build_request("GET", srv.url), stream=True)
            with pytest.raises(
                httpx.RemoteProtocolError if target == "httpx" else httprs.RemoteProtocolError
            ):
                await r.aread()
            assert r.num_bytes_downloaded == 5
            await r.aclose()

    if target == "httpx":
        twin.run(flavour, body, sync_cls=httpx.Client, async_cls=httpx.AsyncClient)
    else:
        twin.run(flavour, body)


def test_streamed_read_timeout_mid_body(scripted):
    srv = scripted(_stall_mid_body("length", 1 * MIB, 4 * MIB))
    with httprs.Client(timeout=httprs.Timeout(5.0, read=0.5)) as c:
        with c.stream("GET", srv.url + "/big") as r:
            got = 0
            with pytest.raises(httprs.ReadTimeout):
                for chunk in r.iter_raw():
                    got += len(chunk)
        assert got == 1 * MIB
        assert c.get(srv.url + "/good").text == "good"


def _paced(n: int, piece: int, patience: float, lag: float = 0.0):
    """Serves a body of n bytes (Content-Length) `piece` bytes at a time, each only once
    the client holds every byte before it (`got`, kept by the test), `lag` seconds after
    that. Waiting longer than `patience` for the client, it gives up: the connection
    closes mid-body."""
    body = pattern(n, 3)
    got = [0]
    moved = threading.Condition()

    def handler(conn):
        req = conn.read_request()
        if req is None:
            return
        send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
        for start in range(0, n, piece):
            with moved:
                if not moved.wait_for(lambda start=start: got[0] >= start, timeout=patience):
                    return  # the client held a chunk back: give up
            time.sleep(lag)
            send(conn, body[start : start + piece])
        conn.hold(5)

    def held(n):
        with moved:
            got[0] = n
            moved.notify_all()

    def consume(r):
        received = bytearray()
        for chunk in r.iter_raw():
            received += chunk
            held(len(received))
        return bytes(received)

    consume.moved = held
    return handler, consume, body


@pytest.fixture(params=["tcp", "tls"])
def marked(request, scripted, certs):
    """Factory: ``marked(handler)`` starts a scripted server, over TLS for the "tls"
    case, and gives it with the client's ``verify``. A body's low-water mark through
    TLS is the rest less what the TLS layer may hold of it (a record and what it was
    fed): never more than the server sends."""

    def make(handler):
        if request.param == "tcp":
            return scripted(handler), True
        srv = scripted(handler, ssl_context=server_context(certs.server))
        return srv, ssl.create_default_context(cafile=certs.ca_file)

    return make


def test_streamed_chunks_of_a_known_length_come_as_they_arrive(marked):
    """A waiter for the next chunk of a body of known length may sleep until the
    whole chunk is in the kernel (Engine::direct_once: a low-water mark), but only
    briefly (Engine::kLowatChunkMs): what came is handed out. The server sends each
    piece of a 4 MiB body only once the client holds every byte before it, and gives
    up after a wait far longer than that bound. The chunk wait's slice (which alone
    would let a held-back chunk go every 50 ms) is made longer than the server's
    patience: only the engine's bound hands the chunk out in time."""
    from httprs import _core

    handler, consume, body = _paced(4 * MIB, 300 * KIB, patience=5.0)
    srv, verify = marked(handler)
    old = _core._set_chunk_wait_slice(60_000)
    try:
        with httprs.Client(verify=verify, timeout=httprs.Timeout(60.0)) as c:
            with c.stream("GET", srv.url + "/paced") as r:
                assert consume(r) == body
    finally:
        _core._set_chunk_wait_slice(old)


@pytest.mark.anyio
async def test_streamed_chunks_of_a_known_length_come_as_they_arrive_async(marked, anyio_backend):
    """The async twin: a chunk's wait (asyncio's and trio's) marks the socket so that
    it reads readable only once the chunk's worth is in (Engine::mark_chunk_wait), and
    clears the mark after at most a millisecond: what came is handed out. The wait has
    no slice of its own (the read timeout is far longer than the server's patience):
    without that bound the server, waiting for the client, gives up. The pieces are
    smaller than a chunk's buffer, and each comes a little after the client asked for
    it (a wait finds nothing in yet), so the waits after the first are marked."""
    from httprs import _core

    handler, consume, body = _paced(4 * MIB, 300 * KIB, patience=5.0, lag=0.005)
    srv, verify = marked(handler)
    marks = _core._chunk_marks_for_testing()
    async with httprs.AsyncClient(verify=verify, timeout=httprs.Timeout(60.0)) as c:
        async with c.stream("GET", srv.url + "/paced") as r:
            received = bytearray()
            async for chunk in r.aiter_raw():
                received += chunk
                consume.moved(len(received))
    assert bytes(received) == body
    assert _core._chunk_marks_for_testing() > marks


def _cut_short(sent: int, declared: int):
    """Sends the head (Content-Length: declared) and `sent` body bytes, then closes."""
    body = pattern(sent)

    def handler(conn):
        if conn.read_request() is None:
            return
        send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % declared)
        send(conn, body)
        conn.close()

    return handler


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("sent", [100 * KIB, 1 * MIB + 5])
def test_content_of_a_body_cut_short_is_a_protocol_error(marked, flavour, sent):
    """`.content` of a body whose server closes before its Content-Length: httpx's
    RemoteProtocolError, from the EOF itself (not a ReadTimeout: the read timeout is
    far away), also while the wait is marked for bytes that never come."""
    srv, verify = marked(_cut_short(sent, 2 * MIB))

    async def body(tw):
        async with tw.client(verify=verify, timeout=httprs.Timeout(60.0)) as c:
            with pytest.raises(httprs.RemoteProtocolError):
                await c.get(srv.url + "/short")

    twin.run(flavour, body)


def _trickle(n: int, piece: int, gap: float):
    body = pattern(n, 5)

    def handler(conn):
        if conn.read_request() is None:
            return
        send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
        for start in range(0, n, piece):
            time.sleep(gap)
            send(conn, body[start : start + piece])
        conn.hold(5)

    return handler, body


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
def test_content_of_a_trickled_body_times_out_only_on_a_gap(marked, flavour):
    """A body that trickles in (16 KiB every 40 ms, 640 KiB in all) takes longer than
    the read timeout, but no gap does: `.content` gets all of it, no ReadTimeout. The
    wait for it is marked for the whole rest (only the last byte reaches the mark),
    and a read timeout due while bytes sit under the mark reads them first."""
    handler, expected = _trickle(640 * KIB, 16 * KIB, 0.04)
    srv, verify = marked(handler)

    async def body(tw):
        async with tw.client(verify=verify, timeout=httprs.Timeout(60.0, read=0.5)) as c:
            r = await c.get(srv.url + "/trickle")
            assert r.content == expected

    twin.run(flavour, body)


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("piece", [1000, 16 * KIB, 256 * KIB])
def test_content_whose_last_bytes_come_with_the_connection_open(marked, flavour, piece):
    """The server sends a body of known length (in records of `piece` bytes through
    TLS: many small ones carry more overhead, fewer big ones less) and keeps the
    connection open: `.content` ends with its last byte, not at the read timeout. A
    low-water mark above what the server sends would hold the wait until then."""
    n = 3 * MIB + 7
    expected = pattern(n, 11)

    def handler(conn):
        while conn.read_request() is not None:
            send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
            for start in range(0, n, piece):
                send(conn, expected[start : start + piece])

    srv, verify = marked(handler)

    async def body(tw):
        async with tw.client(verify=verify, timeout=httprs.Timeout(60.0, read=20.0)) as c:
            for _ in range(2):  # a kept-alive connection's second body too
                start = time.monotonic()
                r = await c.get(srv.url + "/open")
                assert r.content == expected
                assert time.monotonic() - start < 10.0, "waited for the read timeout"

    twin.run(flavour, body)


def test_streamed_chunk_over_half_a_buffer_with_the_pool_used_up(scripted):
    """With every pooled buffer held by the consumer, a chunk that may take more than
    half a small buffer gets a fresh one (STREAM_SMALL): its bytes are intact, kept it
    holds at most that one buffer, and the buffer joins the pool afterwards."""
    from httprs import _core

    rest = 600 * KIB
    bodies = {f"/{seed}": pattern(4 * MIB, seed) for seed in range(1, 6)}
    bodies["/rest"] = pattern(rest, 9)  # made before tracing: the server runs in-process

    def handler(conn):
        while (req := conn.read_request()) is not None:
            body = bodies[req.target]
            send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    srv = scripted(handler)
    kept = []
    with httprs.Client() as c:
        for seed in range(1, 6):  # until the consumer holds every pooled buffer
            with c.stream("GET", f"{srv.url}/{seed}") as r:
                chunks = list(r.iter_raw())
            assert b"".join(chunks) == bodies[f"/{seed}"]
            kept.extend(chunks)
            state = _core._sink_pool_state()
            if len(state) == POOL_SLOTS and all(refs > 1 for _, refs in state):
                break
        else:
            pytest.fail(f"the pool never ran out: {_core._sink_pool_state()}")
        before = set(_core._sink_pool_ids())
        tracemalloc.start()
        try:
            base = _traced_now()
            with c.stream("GET", f"{srv.url}/rest") as r:
                chunks = list(r.iter_raw())
            held = _traced_now() - base
        finally:
            tracemalloc.stop()
        assert b"".join(chunks) == bodies["/rest"]
        # The rest after the bytes read with the head is over half a small buffer:
        # one fresh small buffer, which the chunks (kept) hold at most.
        assert held < STREAM_SMALL + 256 * KIB, held
        pooled = set(_core._sink_pool_ids()) - before
        assert len(pooled) == 1, _core._sink_pool_state()
        in_place = [ch for ch in chunks if id(ch) in pooled]
        assert all(len(ch) >= STREAM_SMALL // 2 for ch in in_place)
        del chunks, in_place, kept
        assert any(refs == 1 for _, refs in _core._sink_pool_state())
        assert c.get(f"{srv.url}/1").content == bodies["/1"]


@pytest.mark.parametrize("size", [MIB, MIB + 300 * KIB, 5 * MIB // 2])
def test_kept_streamed_chunks_hold_little_more_than_the_body(scripted, size):
    """Chunks a consumer keeps hold at most twice their bytes: a chunk handed out in
    its pooled buffer is at least half of it, and a 1 MB body's rest comes in a 1 MiB
    buffer, not a 2 MiB one (the memory each kept chunk's buffer holds, whether it was
    made now or earlier: the pool's sizes for the pooled ones)."""
    from httprs import _core

    body = pattern(size, 5)

    def handler(conn):
        while conn.read_request() is not None:
            send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + body)

    srv = scripted(handler)
    with httprs.Client() as c:
        for _ in range(3):
            with c.stream("GET", srv.url) as r:
                chunks = list(r.iter_raw())
            assert b"".join(chunks) == body
            sizes = _core._sink_pool_sizes()
            held = [sizes.get(id(ch), len(ch)) for ch in chunks]
            lens = [len(ch) for ch in chunks]
            assert all(h <= 2 * n for h, n in zip(held, lens)), (held, lens)
            if size == MIB:  # the head's bytes, then the rest in a 1 MiB buffer
                assert sum(held) < 1.3 * size, (held, lens)
            del chunks


FAST = pattern(12 * MIB, 3)  # made once: the server runs in-process


def _fast_handler(conn):
    """Serves FAST, all of it written at once: the socket fills while the consumer works
    (/chunked: in chunked framing, 64 KiB pieces)."""
    while (req := conn.read_request()) is not None:
        if req.target == "/chunked":
            pieces = [FAST[i : i + 64 * KIB] for i in range(0, len(FAST), 64 * KIB)]
            send(conn, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(*pieces))
        else:
            send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(FAST) + FAST)


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_stream_whose_reads_fill_a_small_buffer_grows(scripted, flavour, framing):
    """A stream's chunks go into 1 MiB buffers until a read fills one (the socket had
    that much queued), then into 2 MiB ones, whose reads drain more of the queue: a
    known-length body written at once, with a consumer slower than the server, yields
    chunks of more than 1 MiB read from the socket (a chunked one too: its chunks stop
    short of their buffer's end, and the buffer is cut into its 64 KiB chunks). The
    stream gives its larger room back when it ends (another one may grow)."""
    from httprs import _core

    srv = scripted(_fast_handler)

    async def body(tw):
        async with tw.client() as c:
            sizes = []
            grew = False
            for _ in range(3):  # (a loaded machine's server may not fill the socket once)
                async with c.stream("GET", f"{srv.url}/{framing}") as r:
                    got = []
                    async for chunk in r.aiter_raw():
                        assert chunk == FAST[sum(got) : sum(got) + len(chunk)]
                        got.append(len(chunk))
                        grew = grew or _core._streams_grown_count() == 1
                        if framing == "length" or len(got) % 16 == 0:  # (about 1 MiB)
                            await tw.sleep(0.02)  # the server fills the socket meanwhile
                assert sum(got) == len(FAST)
                assert _core._streams_grown_count() == 0
                sizes.append(got)
                if grew:
                    break
            assert grew, sizes
            if framing == "length":
                assert any(max(got) > STREAM_SMALL for got in sizes), sizes
                assert all(max(got) <= STREAM_CHUNK for got in sizes), sizes
            else:  # the buffers grow all the same, but each chunk comes on its own
                assert all(max(got) <= 64 * KIB for got in sizes), sizes

    twin.run(flavour, body)


def test_at_most_two_streams_read_into_large_buffers_at_once(scripted):
    """Many streams at once each keep 1 MiB buffers, but two: three fast streams read
    in turn grow at most two at a time (30 such streams held twice the memory when
    all grew); one ending, closed early or dropped unclosed, lets another grow."""
    from httprs import _core

    srv = scripted(_fast_handler)
    with httprs.Client(limits=httprs.Limits(max_connections=4)) as c:
        streams = []
        for _ in range(3):
            r = c.send(c.build_request("GET", srv.url), stream=True)
            streams.append((r, r.iter_raw()))
        filled = [False] * 3  # a read filled a small buffer: it grew, or could not
        for _ in range(60):
            for i, (_, it) in enumerate(streams):
                if not filled[i]:  # (then left unread: it keeps what it has)
                    chunk = next(it, b"")
                    assert len(chunk) <= STREAM_SMALL
                    filled[i] = len(chunk) == STREAM_SMALL
            if all(filled):
                break
            time.sleep(0.01)  # the server fills the sockets meanwhile
        assert all(filled), filled
        assert _core._streams_grown_count() == 2
        grown = _core._streams_grown_count()
        streams[0][0].close()  # closed early
        assert _core._streams_grown_count() <= grown
        del streams[1:2]  # dropped unclosed: its iterator and response freed
        gc.collect()
        left = streams[-1]
        for _chunk in left[1]:
            pass
        left[0].close()
        assert _core._streams_grown_count() == 0, _core._streams_grown_count()


def _grow_streams(c, url, n):
    """n streams of `url` (FAST), each read until it holds a lease (a read filled a
    1 MiB buffer), then left unread: [(response, iterator)]."""
    from httprs import _core

    start = _core._streams_grown_count()
    streams = []
    for _ in range(n):
        for _ in range(3):  # (a loaded machine's server may not fill the socket once)
            r = c.send(c.build_request("GET", url), stream=True)
            it = r.iter_raw()
            while _core._streams_grown_count() == start and next(it, None) is not None:
                time.sleep(0.005)  # the server fills the socket meanwhile
            if _core._streams_grown_count() > start:
                break
            r.close()
        streams.append((r, it))
        start += 1
        assert _core._streams_grown_count() == start, (start, _core._streams_grown_count())
    return streams


def test_fork_child_does_not_inherit_the_leases_of_other_threads_streams(scripted):
    """A child of os.fork() counts only its own grown streams: a stream another thread
    held at fork() is never released there (that thread did not come along), and one
    this thread held and closes there does not take the count below zero. (The count
    was the parent's: streams in the child never grew again.)"""
    import json
    import os
    import signal
    import warnings

    from httprs import _core

    srv = scripted(_fast_handler)
    with httprs.Client(limits=httprs.Limits(max_connections=4)) as c:
        held = threading.Event()
        done = threading.Event()
        errors = []

        def holder():
            try:
                streams = _grow_streams(c, srv.url, 1)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
                held.set()
                return
            held.set()
            done.wait(30)
            for r, _ in streams:
                r.close()

        t = threading.Thread(target=holder)
        t.start()
        try:
            assert held.wait(30) and not errors, errors
            mine = _grow_streams(c, srv.url, 1)
            assert _core._streams_grown_count() == 2
            r, w = os.pipe()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
                pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    signal.alarm(30)
                    counts = [_core._streams_grown_count()]
                    mine[0][0].close()  # inherited, this thread's: released here
                    counts.append(_core._streams_grown_count())
                    os.write(w, json.dumps(counts).encode())
                    code = 0
                finally:
                    os._exit(code)
            os.close(w)
            _, status = os.waitpid(pid, 0)
            with os.fdopen(r, "rb") as f:
                counts = json.loads(f.read() or b"null")
            assert os.waitstatus_to_exitcode(status) == 0
            assert counts == [0, 0], counts
            assert _core._streams_grown_count() == 2  # the parent's are still its own
            mine[0][0].close()
        finally:
            done.set()
            t.join(30)
        assert _core._streams_grown_count() == 0


def _grown_after_two_chunks(c, url: str, expected: bytes) -> tuple[int, int]:
    """Streams `url`: the grown-stream count once two chunks arrived, and the largest
    chunk (the body checked whole)."""
    from httprs import _core

    with c.stream("GET", url) as r:
        it = r.iter_raw()
        got = [next(it), next(it)]
        grown = _core._streams_grown_count()
        got.extend(it)
    assert b"".join(got) == expected
    return grown, max(len(chunk) for chunk in got)


def test_next_stream_starts_grown_only_after_one_that_filled_its_buffers(scripted):
    """A client's stream starts with 2 MiB buffers when its last stream's reads filled
    theirs (no 1 MiB chunk to prove it again), and with 1 MiB ones after a stream whose
    buffers never filled (a slow sender: 100 KB pieces 10 ms apart)."""

    slow = pattern(4 * MIB, 6)

    def handler(conn):
        while (req := conn.read_request()) is not None:
            if req.target == "/slow":
                send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(slow))
                for i in range(0, len(slow), 100_000):
                    send(conn, slow[i : i + 100_000])
                    time.sleep(0.01)
            else:
                send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(FAST) + FAST)

    srv = scripted(handler)

    with httprs.Client() as c:
        for _ in range(3):  # (a loaded machine's server may not fill the socket once)
            _, most = _grown_after_two_chunks(c, srv.url + "/fast", FAST)
            if most > STREAM_SMALL:
                break
        assert most > STREAM_SMALL
        grown, most = _grown_after_two_chunks(c, srv.url + "/slow", slow)  # fast one's filled
        assert grown == 1 and most < STREAM_SMALL, (grown, most)
        grown, most = _grown_after_two_chunks(c, srv.url + "/slow", slow)  # slow one's did not
        assert grown == 0 and most < STREAM_SMALL, (grown, most)


def test_a_stream_whose_rest_fits_a_small_buffer_takes_no_lease(scripted):
    """After a fast stream, the client's next stream starts grown, but not one whose
    rest can never need more than a 1 MiB buffer (a 900 KB body): held open, it would
    keep one of the two leases for nothing. It leaves the hint alone (its chunks were
    bounded by the body, not their buffers): a larger stream after it starts grown."""
    from httprs import _core

    small = pattern(900_000, 8)
    large = pattern(4 * MIB, 9)

    def handler(conn):
        while (req := conn.read_request()) is not None:
            if req.target == "/fast":
                send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(FAST) + FAST)
                continue
            body = small if req.target == "/small" else large
            send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
            for i in range(0, len(body), 100_000):
                send(conn, body[i : i + 100_000])
                time.sleep(0.01)

    srv = scripted(handler)

    with httprs.Client() as c:
        for _ in range(3):  # (a loaded machine's server may not fill the socket once)
            with c.stream("GET", f"{srv.url}/fast") as r:
                most = max(len(chunk) for chunk in r.iter_raw())
            if most > STREAM_SMALL:
                break
        assert most > STREAM_SMALL
        assert _grown_after_two_chunks(c, f"{srv.url}/small", small)[0] == 0
        assert _grown_after_two_chunks(c, f"{srv.url}/large", large)[0] == 1
    assert _core._streams_grown_count() == 0


def test_pool_keeps_free_buffers_of_the_other_size(scripted):
    """A buffer being pooled takes a slot of its own size: kept small chunks never make
    the pool let go of a free large buffer (the next fast stream would fault a fresh
    one in)."""
    from httprs import _core

    small = pattern(900 * KIB, 4)

    def handler(conn):
        while (req := conn.read_request()) is not None:
            body = FAST if req.target == "/fast" else small
            send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    srv = scripted(handler)
    with httprs.Client() as c:
        large = set()
        for _ in range(3):
            with c.stream("GET", f"{srv.url}/fast") as r:
                for _chunk in r.iter_raw():
                    time.sleep(0.01)
            large = {i for i, size in _core._sink_pool_sizes().items() if size == STREAM_CHUNK}
            if large:
                break
        assert large, _core._sink_pool_sizes()
        kept = []
        for _ in range(4):
            with c.stream("GET", f"{srv.url}/small") as r:
                kept.extend(r.iter_raw())
        assert b"".join(kept) == small * 4
        assert large <= set(_core._sink_pool_ids()), (large, _core._sink_pool_sizes())


@pytest.mark.parametrize("flavour", ["sync", "asyncio"])
def test_exact_chunk_size_pieces_are_made_as_they_are_taken(flavour):
    """iter_bytes(chunk_size=N) slices a raw chunk one piece at a time, as it is asked
    for: the first 16 bytes of a 2 MiB raw chunk make no list of all 131,072 pieces."""
    raw = pattern(STREAM_CHUNK, 1)

    async def body(tw):
        if flavour == "sync":
            r = httprs.Response(200, content=iter([raw]))
            it = r.iter_bytes(chunk_size=16)
            take = it.__next__
        else:

            async def chunks():
                yield raw

            r = httprs.Response(200, content=chunks())
            ait = r.aiter_bytes(chunk_size=16)
            take = ait.__anext__
        tracemalloc.start()
        try:
            first = take() if flavour == "sync" else await take()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert first == raw[:16]
        assert peak < 256 * KIB, peak

    twin.run(flavour, body)


@pytest.mark.parametrize("flavour", ["sync", "asyncio"])
def test_exact_chunk_size_pieces_across_raw_chunks(flavour):
    """iter_bytes / iter_raw / iter_text(chunk_size=N): every piece but the last is
    exactly N long, whatever the raw chunks' sizes (empty ones too), and they add up
    to the body; bytes pieces are bytes even from bytearray chunks."""
    import random

    rng = random.Random(7)
    data = pattern(70_001, 2)
    cases = []
    for _ in range(60):
        cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randrange(6)))
        raw = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
        if rng.random() < 0.3:
            raw = [bytearray(x) for x in raw]
        cases.append((raw, rng.choice([1, 3, 16, 4096, 65536, 70_001, 100_000])))

    def check(pieces, size, whole):
        assert pieces[:0] == [] and whole[:0].join(pieces) == whole
        assert all(len(p) == size for p in pieces[:-1]), (size, [len(p) for p in pieces])
        assert not pieces or 0 < len(pieces[-1]) <= size

    async def body(tw):
        for raw, size in cases:
            for how in ("bytes", "raw", "text"):
                if flavour == "sync":
                    r = httprs.Response(
                        200,
                        content=iter(raw),
                        headers={"content-type": "text/plain; charset=latin-1"},
                    )
                    it = {"bytes": r.iter_bytes, "raw": r.iter_raw, "text": r.iter_text}[how]
                    pieces = list(it(chunk_size=size))
                else:

                    async def chunks(raw=raw):
                        for x in raw:
                            yield x

                    r = httprs.Response(
                        200,
                        content=chunks(),
                        headers={"content-type": "text/plain; charset=latin-1"},
                    )
                    it = {"bytes": r.aiter_bytes, "raw": r.aiter_raw, "text": r.aiter_text}[how]
                    pieces = [p async for p in it(chunk_size=size)]
                if how == "text":
                    check(pieces, size, data.decode("latin-1"))
                else:
                    assert all(type(p) is bytes for p in pieces)
                    check(pieces, size, data)

    twin.run(flavour, body)


@pytest.mark.parametrize("flavour", ["sync", "asyncio"])
def test_exact_chunk_size_text_across_split_characters(flavour):
    """iter_text(chunk_size=N) counts characters: a UTF-8 body cut inside multi-byte
    characters (and empty raw chunks) comes out as the text in pieces of exactly N
    characters, the last shorter; an iterator closed part-way has yielded a prefix of
    them."""
    import random

    rng = random.Random(11)
    text = "".join(
        rng.choice(["a", "\u00e9", "\u20ac", "\U0001f600", "\r\n"]) for _ in range(3000)
    )
    data = text.encode("utf-8")
    cases = []
    for _ in range(30):
        cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randrange(1, 12)))
        raw = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
        cases.append((raw, rng.choice([1, 2, 3, 5, 64, 1000, 5000]), rng.randrange(4)))

    def response(raw):
        headers = {"content-type": "text/plain; charset=utf-8"}
        if flavour == "sync":
            return httprs.Response(200, content=iter(raw), headers=headers)

        async def chunks():
            for x in raw:
                yield x

        return httprs.Response(200, content=chunks(), headers=headers)

    async def body(tw):
        for raw, size, stop in cases:
            want = [text[i : i + size] for i in range(0, len(text), size)]
            stop = min(stop, len(want))
            r = response(raw)
            if flavour == "sync":
                assert list(r.iter_text(chunk_size=size)) == want
                it = response(raw).iter_text(chunk_size=size)
                assert [next(it) for _ in range(stop)] == want[:stop]
                it.close()
            else:
                assert [p async for p in r.aiter_text(chunk_size=size)] == want
                r = response(raw)
                it = r.aiter_text(chunk_size=size)
                assert [await it.__anext__() for _ in range(stop)] == want[:stop]
                await it.aclose()

    twin.run(flavour, body)


BIG = pattern(8 * MIB)  # made once, before any test traces allocations


def _big_then_good(conn):
    while (req := conn.read_request()) is not None:
        if req.target == "/good":
            conn.respond(b"good")
            continue
        send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BIG))
        send(conn, BIG)


def test_response_dropped_mid_body_releases_its_memory(scripted):
    srv = scripted(_big_then_good)
    with httprs.Client() as c:
        tracemalloc.start()
        try:
            before = _traced_now()
            with c.stream("GET", srv.url + "/big") as r:
                it = r.iter_raw()
                assert len(next(it)) > 0
            del it, r
            after = _traced_now()
        finally:
            tracemalloc.stop()
        assert after - before < 1 * MIB
        assert c.get(srv.url + "/good").text == "good"


@pytest.mark.anyio
async def test_response_dropped_mid_body_releases_its_memory_async(scripted, anyio_backend):
    srv = scripted(_big_then_good)
    async with httprs.AsyncClient() as c:
        tracemalloc.start()
        try:
            before = _traced_now()
            async with c.stream("GET", srv.url + "/big") as r:
                it = r.aiter_raw()
                assert len(await it.__anext__()) > 0
                await it.aclose()
            del it, r
            after = _traced_now()
        finally:
            tracemalloc.stop()
        assert after - before < 1 * MIB
        assert (await c.get(srv.url + "/good")).text == "good"


# HTTP/2 delivers DATA frames into the same sinks: one bytes object for a whole read
# (grown while the stream's window is withheld), one per streamed chunk.


def _h2_sized(h2c):
    """Serves GET /<n>/<framing>: n bytes in DATA frames, with a content-length header
    ("length") or without one ("unknown")."""
    while (req := h2c.next_request()) is not None:
        n, framing = req.path.strip("/").split("/")
        body = pattern(int(n))
        headers = [("content-length", str(len(body)))] if framing == "length" else []
        h2c.send_headers(req.stream_id, 200, headers, end=not body)
        if body and not h2c.send_data(req.stream_id, body):
            return


H2_SIZES = [0, 1, FIRST_UNKNOWN - 1, FIRST_UNKNOWN, FIRST_UNKNOWN + 1, 3 * MIB + 5]


@pytest.mark.parametrize("framing", ["unknown", "length"])
def test_http2_whole_body_at_buffer_boundaries(h2_scripted, framing):
    srv = h2_scripted(_h2_sized)
    with httprs.Client(http1=False, http2=True, timeout=30) as c:
        for n in [*H2_SIZES, 300 * KIB, 300 * KIB + 1, 5]:  # the unknown-length size hint
            r = c.get(f"{srv.url}/{n}/{framing}")
            assert r.http_version == "HTTP/2"
            assert r.content == pattern(n), n
    assert srv.connections == 1


@pytest.mark.anyio
@pytest.mark.parametrize("framing", ["unknown", "length"])
async def test_http2_whole_body_at_buffer_boundaries_async(h2_scripted, anyio_backend, framing):
    srv = h2_scripted(_h2_sized)
    async with httprs.AsyncClient(http1=False, http2=True, timeout=30) as c:
        for n in [*H2_SIZES, 300 * KIB, 300 * KIB + 1, 5]:
            assert (await c.get(f"{srv.url}/{n}/{framing}")).content == pattern(n), n
    assert srv.connections == 1


@pytest.mark.parametrize("framing", ["unknown", "length"])
def test_http2_streamed_chunks_are_bounded_and_complete(h2_scripted, framing):
    srv = h2_scripted(_h2_sized)
    with httprs.Client(http1=False, http2=True, timeout=30) as c:
        for n in STREAM_SIZES:
            with c.stream("GET", f"{srv.url}/{n}/{framing}") as r:
                chunks = list(r.iter_raw())
            assert all(0 < len(ch) <= STREAM_CHUNK for ch in chunks), [len(x) for x in chunks]
            assert b"".join(chunks) == pattern(n), n


@pytest.mark.anyio
@pytest.mark.parametrize("framing", ["unknown", "length"])
async def test_http2_streamed_chunks_are_bounded_and_complete_async(
    h2_scripted, anyio_backend, framing
):
    srv = h2_scripted(_h2_sized)
    async with httprs.AsyncClient(http1=False, http2=True, timeout=30) as c:
        for n in STREAM_SIZES:
            async with c.stream("GET", f"{srv.url}/{n}/{framing}") as r:
                chunks = [ch async for ch in r.aiter_raw()]
            assert all(0 < len(ch) <= STREAM_CHUNK for ch in chunks), [len(x) for x in chunks]
            assert b"".join(chunks) == pattern(n), n


# Through TLS a body of known length is decrypted straight into the sink; the others go
# through the TLS layer's buffer. Every read is bounded by the room the consumer has.


@pytest.fixture
def tls_sized(scripted, certs):
    def make(framing):
        srv = scripted(_sized_handler(framing), ssl_context=server_context(certs.server))
        return srv, ssl.create_default_context(cafile=certs.ca_file)

    return make


@pytest.mark.parametrize("framing", ["chunked", "close", "length"])
def test_tls_whole_body_at_buffer_boundaries(tls_sized, framing):
    srv, ctx = tls_sized(framing)
    with httprs.Client(verify=ctx, timeout=30) as c:
        for n in [*BOUNDARY_SIZES, 16 * KIB - 1, 16 * KIB + 1, 64 * KIB + 3]:
            assert c.get(f"{srv.url}/{n}").content == pattern(n), n


@pytest.mark.anyio
@pytest.mark.parametrize("framing", ["chunked", "length"])
async def test_tls_whole_body_at_buffer_boundaries_async(tls_sized, anyio_backend, framing):
    srv, ctx = tls_sized(framing)
    async with httprs.AsyncClient(verify=ctx, timeout=30) as c:
        for n in [*BOUNDARY_SIZES, 16 * KIB - 1, 16 * KIB + 1, 64 * KIB + 3]:
            assert (await c.get(f"{srv.url}/{n}")).content == pattern(n), n


@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_tls_streamed_chunks_are_bounded_and_complete(tls_sized, framing):
    srv, ctx = tls_sized(framing)
    with httprs.Client(verify=ctx, timeout=30) as c:
        for n in STREAM_SIZES:
            with c.stream("GET", f"{srv.url}/{n}") as r:
                chunks = list(r.iter_raw())
            assert all(0 < len(ch) <= STREAM_CHUNK for ch in chunks), [len(x) for x in chunks]
            assert b"".join(chunks) == pattern(n), n


@pytest.mark.anyio
@pytest.mark.parametrize("framing", ["chunked", "length"])
async def test_tls_streamed_chunks_are_bounded_and_complete_async(
    tls_sized, anyio_backend, framing
):
    srv, ctx = tls_sized(framing)
    async with httprs.AsyncClient(verify=ctx, timeout=30) as c:
        for n in STREAM_SIZES:
            async with c.stream("GET", f"{srv.url}/{n}") as r:
                chunks = [ch async for ch in r.aiter_raw()]
            assert all(0 < len(ch) <= STREAM_CHUNK for ch in chunks), [len(x) for x in chunks]
            assert b"".join(chunks) == pattern(n), n


# A body of known length is read exactly to its end (each read bounded by what is still
# due), and the read libuv (or a direct wait) would make next, which finds the socket
# empty, is not made. What the server sends behind the body in the same segment (a
# forged response) or its close is then still in the socket: the pool's read before
# reuse must find it, so the next request (a POST, never retried) goes out on a new
# connection and gets its own response.
FORGED = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!"


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("read", ["content", "stream"])
@pytest.mark.parametrize("behind", ["forged", "close"])
def test_what_follows_a_body_read_to_its_end_is_seen_before_reuse(scripted, flavour, read, behind):
    body = pattern(300 * KIB, 3)

    def handler(conn):
        while (req := conn.read_request()) is not None:
            if req.method == "POST":
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nposted")
                continue
            head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
            if conn.index > 0:
                send(conn, head + body)
                continue
            # Corked: the last bytes of the body leave with what follows them (the
            # forged response, or the FIN), so the client never reads the body's end
            # before those are in its socket.
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            send(conn, head + body + (FORGED if behind == "forged" else b""))
            if behind == "close":
                conn.sock.shutdown(socket.SHUT_WR)
                conn.wait_eof()
                return
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)

    srv = scripted(handler)

    async def run(tw):
        async with tw.client(timeout=10.0) as c:
            for _ in range(2):
                if read == "content":
                    assert (await c.get(srv.url + "/")).content == body
                else:
                    async with c.stream("GET", srv.url + "/") as r:
                        assert b"".join([chunk async for chunk in r.aiter_bytes()]) == body
                r = await c.post(srv.url + "/post", content=b"x")
                assert r.content == b"posted"
        assert srv.connections == 2

    twin.run(flavour, run)


# How much a head read takes follows the connection's last response (64 KiB, or 16 KiB
# after a body larger than 64 KiB, so that more of a large body is read straight into
# the consumer's buffer): bodies of every size, in any order, on one connection.
SEQUENCE = [300 * KIB, 100, 70 * KIB, 20 * KIB, MIB + 3, 5, 64 * KIB, 64 * KIB + 1, 0, 40 * KIB]


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_bodies_of_every_size_in_turn_on_one_connection(scripted, flavour, framing):
    srv = scripted(_sized_handler(framing))

    async def run(tw):
        async with tw.client(timeout=10.0) as c:
            for i, size in enumerate(SEQUENCE * 2):
                url = f"{srv.url}/{size}/{i % 7}"
                if i % 2:
                    assert (await c.get(url)).content == pattern(size, i % 7), (i, size)
                else:
                    async with c.stream("GET", url) as r:
                        got = b"".join([chunk async for chunk in r.aiter_raw()])
                    assert got == pattern(size, i % 7), (i, size)
        assert srv.connections == 1

    twin.run(flavour, run)


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_byte_iterator_decides_what_it_yields_on_first_use(scripted, flavour, encoding):
    """`iter_bytes()` / `aiter_bytes()` look at the response when first iterated, as
    httpx's generators do: an iterator made before the body was read yields the body
    read (not StreamConsumed), one made on an unread body yields its chunks, decoded
    when the body is encoded. (With nothing to decode they hand out the raw chunks
    themselves.)"""
    data = pattern(3 * MIB + 7, 4)
    wire = data if encoding is None else gzip.compress(data, 1)
    extra = b"" if encoding is None else b"Content-Encoding: gzip\r\n"

    def handler(conn):
        while conn.read_request() is not None:
            send(conn, b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n" % (extra, len(wire)))
            send(conn, wire)

    srv = scripted(handler)

    async def body(tw):
        async with tw.client() as c:
            async with c.stream("GET", srv.url) as r:
                early = r.aiter_bytes()
                assert await r.aread() == data
                assert b"".join([chunk async for chunk in early]) == data
            async with c.stream("GET", srv.url) as r:
                chunks = [chunk async for chunk in r.aiter_bytes()]
                assert b"".join(chunks) == data
                assert all(chunks)
                assert r.num_bytes_downloaded == len(wire)

    twin.run(flavour, body)


@pytest.mark.anyio
async def test_byte_iterator_goes_through_an_overridden_raw_iterator(scripted, anyio_backend):
    """A Response subclass's aiter_raw() still feeds aiter_bytes() (empty chunks dropped,
    as httpx's chunker does). aclose() on aiter_bytes()'s iterator ends that iterator
    only: as with httpx's generator, the response stays open until the stream() block
    closes it (the subclass's generator is left to the asyncgen finaliser)."""
    srv = scripted(_sized_handler("length"))
    seen = []

    class Tagged(httprs.Response):
        async def aiter_raw(self, chunk_size=None):
            async for chunk in super().aiter_raw(chunk_size):
                seen.append(len(chunk))
                yield chunk
                yield b""

    async with httprs.AsyncClient() as c:
        async with c.stream("GET", f"{srv.url}/{2 * MIB + 1}") as r:
            r.__class__ = Tagged
            chunks = [chunk async for chunk in r.aiter_bytes()]
        assert b"".join(chunks) == pattern(2 * MIB + 1)
        assert all(chunks) and sum(seen) == 2 * MIB + 1
        async with c.stream("GET", f"{srv.url}/{2 * MIB + 1}") as r:
            r.__class__ = Tagged
            it = r.aiter_bytes()
            assert len(await it.__anext__()) > 0
            await it.aclose()
            with pytest.raises(StopAsyncIteration):
                await it.__anext__()
            assert not r.is_closed
        assert r.is_closed


# More than five codings: building the decoder raises DecodingError (D03's cap).
_SIX_CODINGS = [("content-encoding", ", ".join(["gzip"] * 6))]


class _OneChunk(httprs.SyncByteStream):
    def __init__(self):
        self.closed = False

    def __iter__(self):
        yield b"abc"
        yield b"def"

    def close(self):
        self.closed = True


class _AsyncOneChunk(httprs.AsyncByteStream):
    def __init__(self, data=b"abc"):
        self.data = data
        self.closed = False

    async def __aiter__(self):
        yield self.data

    async def aclose(self):
        self.closed = True


def test_iter_bytes_closes_the_response_when_the_decoder_cannot_be_built():
    """iter_bytes() of a body with too many codings raises DecodingError when iterated
    and closes the response (its stream), as httpx's does for an undecodable body."""
    stream = _OneChunk()
    r = httprs.Response(200, headers=_SIX_CODINGS, stream=stream)
    it = r.iter_bytes()
    with pytest.raises(httprs.DecodingError):
        next(it)
    assert r.is_closed and stream.closed
    with pytest.raises(StopIteration):
        next(it)


@pytest.mark.anyio
async def test_aiter_bytes_closes_the_response_when_the_decoder_cannot_be_built(
    anyio_backend,
):
    """The async twin: the DecodingError comes when the __anext__() awaitable is
    awaited (not from the call), the response and its stream are closed, and the
    iterator is then finished, as an async generator that raised is."""
    stream = _AsyncOneChunk()
    r = httprs.Response(200, headers=_SIX_CODINGS, stream=stream)
    it = r.aiter_bytes()
    step = it.__anext__()
    assert not r.is_closed
    with pytest.raises(httprs.DecodingError):
        await step
    assert r.is_closed and stream.closed
    with pytest.raises(StopAsyncIteration):
        await it.__anext__()


@pytest.mark.anyio
async def test_unstarted_aiter_bytes_closes_without_looking_at_the_response(
    anyio_backend,
):
    """aclose() / athrow() on an aiter_bytes() iterator never iterated do what they do
    on httpx's unstarted async generator: nothing / raise what is thrown. No decoder is
    looked up (no DecodingError in place of the caller's exception, nothing recorded:
    a Content-Encoding set afterwards still applies), and the iterator is finished."""
    r = httprs.Response(200, headers=_SIX_CODINGS, stream=_AsyncOneChunk())
    it = r.aiter_bytes()
    await it.aclose()
    with pytest.raises(StopAsyncIteration):
        await it.__anext__()
    assert not r.is_closed and not r.is_stream_consumed

    it = r.aiter_bytes()
    with pytest.raises(ValueError, match="mine"):
        try:  # contextlib.aclosing (3.10+) by hand: the package supports 3.9
            raise ValueError("mine")
        finally:
            await it.aclose()
    it = r.aiter_bytes()
    with pytest.raises(ValueError, match="mine"):
        await it.athrow(ValueError("mine"))
    with pytest.raises(StopAsyncIteration):
        await it.__anext__()

    data = gzip.compress(b"hello")
    r = httprs.Response(200, stream=_AsyncOneChunk(data))
    await r.aiter_bytes().aclose()
    r.headers["Content-Encoding"] = "gzip"
    assert await r.aread() == b"hello"


class _EmptyAfterEach(httprs.Response):
    def iter_raw(self, chunk_size=None):
        for chunk in super().iter_raw(chunk_size):
            yield chunk
            yield b""


class _Recovering(httprs.Response):
    def iter_raw(self, chunk_size=None):
        try:
            yield b"a"
        except ValueError:
            yield b"recovered"


def test_iter_bytes_goes_through_an_overridden_raw_iterator():
    """A Response subclass's iter_raw() feeds iter_bytes() as httpx's does: its empty
    chunks are dropped, and an exception thrown into iter_bytes() is raised there, not
    passed into the subclass's iterator."""
    assert list(_EmptyAfterEach(200, stream=_OneChunk()).iter_bytes()) == [b"abc", b"def"]
    it = _Recovering(200, stream=_OneChunk()).iter_bytes()
    assert next(it) == b"a"
    with pytest.raises(ValueError, match="thrown"):
        it.throw(ValueError("thrown"))


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.parametrize("size", [11, 100_000], ids=["small", "large"])
def test_each_upload_chunk_is_sent_before_the_next_is_asked_for(
    scripted, certs, flavour, tls, size
):
    """A streamed upload's chunk is on the wire, whole with its closing CRLF, before
    the body is asked for the next one, as httpx sends it: a body that waits for the
    server to have read its last chunk (a live feed, a protocol answered mid-upload) is
    never held up behind itself. Here the second chunk is made only once the server
    has read the first to its end. A small chunk and a large one (written from the
    caller's bytes), in clear text and through TLS."""
    first = b"f" * size
    first_read = threading.Event()

    def handler(conn):
        req = conn.read_request(body=False)
        if req is None:
            return
        if conn.read_until(b"%x\r\n" % size + first + b"\r\n") is None:
            return
        first_read.set()
        conn.read_until(b"0\r\n\r\n")
        conn.respond(b"ok")

    kwargs = {"ssl_context": server_context(certs.server)} if tls else {}
    url = scripted(handler, **kwargs).url
    verify = ssl.create_default_context(cafile=certs.ca_file) if tls else True

    def body():
        yield first
        assert first_read.wait(5), "the first chunk was held back"
        yield b"second"

    async def abody():
        yield first
        assert await anyio.to_thread.run_sync(first_read.wait, 5), "the first chunk was held back"
        yield b"second"

    async def run(tw):
        async with tw.client(verify=verify) as client:
            content = abody() if tw.is_async else body()
            r = await client.post(url, content=content)
            assert r.status_code == 200
        assert first_read.is_set()

    twin.run(flavour, run)
