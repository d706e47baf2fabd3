"""connect / read / write / pool timeouts and their per-request overrides."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from decimal import Decimal

import httpx
import pytest
import twin
from servers.scripted import FullBacklog

import httprs


@pytest.fixture
def full_backlog():
    fb = FullBacklog()
    if not fb.works:
        fb.close()
        pytest.skip("the kernel completed a connect to a full backlog: no local ConnectTimeout")
    yield fb
    fb.close()


def test_connect_timeout(full_backlog, server):
    with httprs.Client(timeout=httprs.Timeout(5.0, connect=0.3)) as c:
        t0 = time.monotonic()
        with pytest.raises(httprs.ConnectTimeout) as info:
            c.get(full_backlog.url)
        elapsed = time.monotonic() - t0
        assert 0.25 < elapsed < 2.0
        assert isinstance(info.value, httprs.TimeoutException)
        assert isinstance(info.value, httprs.TransportError)
        assert c.get(server.url + "/").status_code == 200


def test_connect_timeout_top_level(full_backlog):
    with pytest.raises(httprs.ConnectTimeout):
        httprs.get(full_backlog.url, timeout=0.3)


def test_read_timeout_before_head(server):
    with httprs.Client(timeout=httprs.Timeout(5.0, read=0.2)) as c:
        t0 = time.monotonic()
        with pytest.raises(httprs.ReadTimeout) as info:
            c.get(server.url + "/slow?delay=2")
        assert 0.15 < time.monotonic() - t0 < 1.5
        assert isinstance(info.value, httprs.TimeoutException)
        assert info.value.request.url.path == "/slow"
        assert c.get(server.url + "/").text == "Hello, world!"


def _timeout_errors_in_chain(exc):
    found = []
    while exc is not None:
        found.append(exc)
        exc = exc.__cause__ or exc.__context__  # (httpcore's link is the context)
    return [e for e in found if type(e) is TimeoutError]


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
def test_timeouts_are_caused_by_the_sockets_timeout_error(full_backlog, server, lib):
    """As in httpx, the chain under a connect or read timeout reaches the socket's
    TimeoutError (through httpcore's exception there); a pool timeout's has none.
    httprs's timeouts had no cause."""
    with lib.Client(timeout=lib.Timeout(5.0, connect=0.2, read=0.2, pool=0.2)) as c:
        with pytest.raises(lib.ConnectTimeout) as connect:
            c.get(full_backlog.url)
        with pytest.raises(lib.ReadTimeout) as read:
            c.get(server.url + "/slow?delay=2")
    assert [str(e) for e in _timeout_errors_in_chain(connect.value)] == ["timed out"]
    assert [str(e) for e in _timeout_errors_in_chain(read.value)] == ["timed out"]
    limits = lib.Limits(max_connections=1)
    with lib.Client(timeout=lib.Timeout(5.0, pool=0.2), limits=limits) as c:
        with c.stream("GET", server.url + "/"), pytest.raises(lib.PoolTimeout) as pool:
            c.get(server.url + "/")
    assert _timeout_errors_in_chain(pool.value) == []


@pytest.mark.anyio
async def test_read_timeout_is_caused_by_the_sockets_timeout_error_async(server, anyio_backend):
    """On trio too (httpx's chain there ends at trio's TooSlowError)."""
    async with httprs.AsyncClient(timeout=httprs.Timeout(5.0, read=0.2)) as c:
        with pytest.raises(httprs.ReadTimeout) as info:
            await c.get(server.url + "/slow?delay=2")
    if anyio_backend == "asyncio" or os.environ.get("HTTPRS_TEST_TARGET", "") != "httpx":
        assert len(_timeout_errors_in_chain(info.value)) == 1


def test_read_timeout_mid_body(server):
    with httprs.Client(timeout=httprs.Timeout(5.0, read=0.2)) as c:
        with c.stream("GET", server.url + "/slow_body?delay=2") as r:
            assert r.status_code == 200
            with pytest.raises(httprs.ReadTimeout):
                r.read()
        assert c.get(server.url + "/").text == "Hello, world!"


def test_read_timeout_is_per_read(server):
    # the body pauses 0.3 s, below the 1 s read timeout: no error even if the total is longer
    with httprs.Client(timeout=httprs.Timeout(5.0, read=1.0)) as c:
        r = c.get(server.url + "/slow_body?delay=0.3")
        assert r.text == "slow body"


def test_write_timeout(scripted, server):
    srv = scripted(lambda conn: conn.hold_no_read(), rcvbuf=4096)

    def body():
        chunk = b"x" * 65536
        for _ in range(4000):  # 256 MB: far more than any socket buffer
            yield chunk

    with httprs.Client(timeout=httprs.Timeout(5.0, write=0.3)) as c:
        t0 = time.monotonic()
        with pytest.raises(httprs.WriteTimeout):
            c.post(srv.url, content=body())
        assert time.monotonic() - t0 < 4
        assert c.get(server.url + "/").status_code == 200


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("how", ["bytes", "generator"])
def test_write_timeout_fires_a_timeout_after_the_peer_stops_reading(
    scripted, server, how, flavour
):
    # The deadline bounds a wait in which nothing of the request leaves. Checked once
    # per period, the bytes the kernel took early in the first one started a whole
    # second period: WriteTimeout after up to twice the timeout (httpx, whose timeout
    # bounds each send, fires after one).
    srv = scripted(lambda conn: conn.hold_no_read(), rcvbuf=4096)
    payload = b"z" * (64 * 1024 * 1024)

    def chunks():
        for i in range(0, len(payload), 65536):
            yield payload[i : i + 65536]

    async def achunks():
        for chunk in chunks():
            yield chunk

    timeout = httprs.Timeout(5.0, write=1.0)
    if flavour == "sync":
        with httprs.Client(timeout=timeout) as c:
            t0 = time.monotonic()
            with pytest.raises(httprs.WriteTimeout):
                c.post(srv.url, content=payload if how == "bytes" else chunks())
            assert 0.9 < time.monotonic() - t0 < 1.6
            assert c.get(server.url + "/").status_code == 200
        return

    async def main():
        async with httprs.AsyncClient(timeout=timeout) as c:
            t0 = time.monotonic()
            with pytest.raises(httprs.WriteTimeout):
                await c.post(srv.url, content=payload if how == "bytes" else achunks())
            assert 0.9 < time.monotonic() - t0 < 1.6
            assert (await c.get(server.url + "/")).status_code == 200

    asyncio.run(main())


def test_write_timeout_bytes_body(scripted, server):
    srv = scripted(lambda conn: conn.hold_no_read(), rcvbuf=4096)
    payload = b"y" * (64 * 1024 * 1024)
    with httprs.Client(timeout=httprs.Timeout(5.0, write=0.3)) as c:
        with pytest.raises(httprs.WriteTimeout):
            c.put(srv.url, content=payload)
        assert c.get(server.url + "/").status_code == 200


def test_pool_timeout(server):
    limits = httprs.Limits(max_connections=1)
    with httprs.Client(limits=limits, timeout=httprs.Timeout(5.0, pool=0.2)) as c:
        with c.stream("GET", server.url + "/bytes/100") as held:
            assert held.status_code == 200
            t0 = time.monotonic()
            with pytest.raises(httprs.PoolTimeout):
                c.get(server.url + "/")
            assert 0.15 < time.monotonic() - t0 < 2
        assert c.get(server.url + "/").status_code == 200


def test_pool_wait_until_released(server):
    limits = httprs.Limits(max_connections=1)
    with httprs.Client(limits=limits, timeout=httprs.Timeout(5.0, pool=None)) as c:
        held = c.send(c.build_request("GET", server.url + "/bytes/100"), stream=True)
        threading.Timer(0.4, held.close).start()
        t0 = time.monotonic()
        r = c.get(server.url + "/")
        assert r.status_code == 200
        assert time.monotonic() - t0 >= 0.3


def _slow_answers(delay):
    """Keep-alive: each request answered after `delay`."""

    def handler(conn):
        while conn.read_request() is not None:
            time.sleep(delay)
            if not conn.respond(b"ok"):
                return

    return handler


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
def test_pool_timeout_bounds_a_wait_without_progress(scripted, lib):
    """As httpcore: a connection that comes free wakes every request queued for it, and
    the ones that lose wait again with a whole pool timeout. Ten requests over one
    connection, each answered in 50 ms, all succeed with pool=0.2 although the last one
    queues for ~0.45 s (httprs failed six of them with PoolTimeout: one deadline from
    the first wait)."""
    from concurrent.futures import ThreadPoolExecutor

    srv = scripted(_slow_answers(0.05))
    limits, timeout = lib.Limits(max_connections=1), lib.Timeout(5.0, pool=0.2)
    with lib.Client(limits=limits, timeout=timeout) as c, ThreadPoolExecutor(10) as pool:
        texts = list(pool.map(lambda i: c.get(srv.url + f"/{i}").text, range(10)))
    assert texts == ["ok"] * 10


@pytest.mark.anyio
@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
async def test_pool_timeout_bounds_a_wait_without_progress_async(scripted, lib):
    import anyio

    srv = scripted(_slow_answers(0.05))
    limits, timeout = lib.Limits(max_connections=1), lib.Timeout(5.0, pool=0.2)
    texts = []
    async with lib.AsyncClient(limits=limits, timeout=timeout) as c:

        async def one(i):
            texts.append((await c.get(srv.url + f"/{i}")).text)

        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(one, i)
    assert texts == ["ok"] * 10


def _steady_reader(chunk, pause, received):
    """Reads `chunk` bytes every `pause` seconds until the request body is in, then answers."""

    def handler(conn):
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        head = conn.read_until(b"\r\n\r\n")
        if head is None:
            return
        while not conn.buffer.endswith(b"0\r\n\r\n"):
            time.sleep(pause)
            data = conn.sock.recv(chunk)
            if not data:
                return
            conn.buffer += data
        received.append(len(conn.buffer))  # the chunked body, framing included
        conn.respond(b"done")

    return handler


BODY_CHUNKS = 96  # 6 MiB in 64 KiB chunks: more than the send buffer takes (4 MiB here)


def _chunks():
    for _ in range(BODY_CHUNKS):  # ~2.4 s at the server's pace
        yield b"x" * 65536


def test_write_timeout_bounds_a_wait_without_progress(scripted):
    """As httpx's sync writes (a timeout per send): a server that reads slowly but never
    stops keeps the upload going, however long it takes; the write timeout is for a wait
    in which nothing leaves (test_write_timeout). httprs timed out once the send buffer
    had been full for `write` seconds, although the server kept reading."""
    received = []
    srv = scripted(_steady_reader(65536, 0.025, received))
    with httprs.Client(timeout=httprs.Timeout(10.0, write=0.25)) as c:
        assert c.post(srv.url, content=_chunks()).text == "done"
    assert received and received[0] > BODY_CHUNKS * 65536


@pytest.mark.anyio
async def test_write_timeout_bounds_a_wait_without_progress_async(scripted):
    received = []
    srv = scripted(_steady_reader(65536, 0.025, received))

    async def chunks():
        for chunk in _chunks():
            yield chunk

    async with httprs.AsyncClient(timeout=httprs.Timeout(10.0, write=0.25)) as c:
        assert (await c.post(srv.url, content=chunks())).text == "done"
    assert received and received[0] > BODY_CHUNKS * 65536


def test_timeout_none_waits(server):
    with httprs.Client(timeout=None) as c:
        assert c.timeout == httprs.Timeout(None)
        assert c.get(server.url + "/slow?delay=0.6").text == "slow"


def test_per_request_timeout_overrides_client(server):
    with httprs.Client(timeout=0.2) as c:
        with pytest.raises(httprs.ReadTimeout):
            c.get(server.url + "/slow?delay=1")
        assert c.get(server.url + "/slow?delay=0.5", timeout=3).text == "slow"
        assert c.get(server.url + "/slow?delay=0.5", timeout=None).text == "slow"
    with httprs.Client(timeout=10) as c:
        with pytest.raises(httprs.ReadTimeout):
            c.get(server.url + "/slow?delay=1", timeout=httprs.Timeout(10, read=0.2))
        with pytest.raises(httprs.ReadTimeout):
            c.get(server.url + "/slow?delay=1", timeout=0.2)


def test_timeout_in_request_extensions(server):
    with httprs.Client(timeout=httprs.Timeout(3.0, read=1.5)) as c:
        r = c.get(server.url + "/")
        assert r.request.extensions["timeout"] == {
            "connect": 3.0,
            "read": 1.5,
            "write": 3.0,
            "pool": 3.0,
        }


@pytest.mark.parametrize(
    "order", [("connect", "read", "write", "pool"), ("read", "connect", "write", "pool")]
)
def test_timeout_extension_is_read_by_key(server, order):
    # A client's timeout dict is read in one pass while its keys come in as_dict()'s
    # order; a request's own dict in any order is read by key alike.
    values = {"connect": 5.0, "read": 0.2, "write": 5.0, "pool": 5.0}
    with httprs.Client() as c:
        request = c.build_request("GET", server.url + "/slow?delay=2")
        request.extensions = {"timeout": {name: values[name] for name in order}}
        with pytest.raises(httprs.ReadTimeout):
            c.send(request)


# Values httpx's backends refuse, with their errors: sync, socket.settimeout()'s; async,
# anyio's deadline arithmetic's. Huge values and inf mean no timeout.
_SYNC_BAD_TIMEOUTS = [
    ("x", TypeError, "^'str' object cannot be interpreted as an integer$"),
    (Decimal("1.5"), TypeError, "^'decimal.Decimal' object cannot be interpreted as an"),
    (-1, ValueError, "^Timeout value out of range$"),
    (float("nan"), ValueError, "^Invalid value NaN"),
]
_ASYNC_BAD_TIMEOUTS = [
    ("x", TypeError, r"^unsupported operand type\(s\) for \+: 'float' and 'str'$"),
    (Decimal("1.5"), TypeError, "'float' and 'decimal.Decimal'$"),
    (float("nan"), ValueError, "^deadline must not be NaN$"),
]


@pytest.mark.parametrize(("value", "error", "message"), _SYNC_BAD_TIMEOUTS)
def test_bad_timeout_values_raise_as_httpx(server, value, error, message):
    with httprs.Client() as c:
        with pytest.raises(error, match=message):
            c.get(server.url + "/", timeout=value)
        with pytest.raises(error, match=message):
            c.get(server.url + "/", timeout=httprs.Timeout(5.0, read=value))
        assert c.get(server.url + "/").status_code == 200


@pytest.mark.anyio
@pytest.mark.parametrize(("value", "error", "message"), _ASYNC_BAD_TIMEOUTS)
async def test_bad_timeout_values_raise_as_httpx_async(server, value, error, message):
    async with httprs.AsyncClient() as c:
        with pytest.raises(error, match=message):
            await c.get(server.url + "/", timeout=value)
        assert (await c.get(server.url + "/")).status_code == 200


def test_negative_pool_timeout_without_a_wait_is_no_error(server):
    # httpx uses the pool timeout only while a request waits for a connection; a free
    # pool never looks at it, and a request that must wait has expired at once.
    with httprs.Client(limits=httprs.Limits(max_connections=1)) as c:
        timeout = httprs.Timeout(5.0, pool=-1)
        assert c.get(server.url + "/", timeout=timeout).status_code == 200
        with c.stream("GET", server.url + "/") as held:
            with pytest.raises(httprs.PoolTimeout):
                c.get(server.url + "/", timeout=timeout)
            held.read()
        assert c.get(server.url + "/", timeout=timeout).status_code == 200


@pytest.mark.anyio
async def test_negative_pool_timeout_without_a_wait_is_no_error_async(server):
    async with httprs.AsyncClient(limits=httprs.Limits(max_connections=1)) as c:
        timeout = httprs.Timeout(5.0, pool=-1)
        assert (await c.get(server.url + "/", timeout=timeout)).status_code == 200
        async with c.stream("GET", server.url + "/") as held:
            with pytest.raises(httprs.PoolTimeout):
                await c.get(server.url + "/", timeout=timeout)
            await held.aread()
        assert (await c.get(server.url + "/", timeout=timeout)).status_code == 200


@pytest.mark.parametrize("value", [float("inf"), 2**70, 1e300])
def test_huge_timeouts_mean_none(server, value):
    with httprs.Client(timeout=value) as c:
        assert c.get(server.url + "/slow?delay=0.2").text == "slow"


@pytest.mark.anyio
@pytest.mark.parametrize("value", [float("inf"), 2**70, 1e300])
async def test_huge_timeouts_mean_none_async(server, value):
    # inf once became a timer of 0 ms: an immediate ReadTimeout.
    async with httprs.AsyncClient(timeout=value) as c:
        assert (await c.get(server.url + "/slow?delay=0.2")).text == "slow"


def test_default_timeout_is_5s():
    with httprs.Client() as c:
        assert c.timeout == httprs.Timeout(5.0)


def test_stream_timeout_top_level(server):
    with pytest.raises(httprs.ReadTimeout):
        with httprs.stream("GET", server.url + "/slow?delay=1", timeout=0.2) as r:
            r.read()


def test_tls_handshake_stall_is_connect_timeout(scripted, server):
    """TCP is accepted but no ServerHello ever comes: the handshake is under ``connect``."""
    srv = scripted(lambda conn: conn.hold())
    url = srv.url.replace("http://", "https://")
    with httprs.Client(timeout=httprs.Timeout(5.0, connect=0.3), verify=False) as c:
        t0 = time.monotonic()
        with pytest.raises(httprs.ConnectTimeout):
            c.get(url)
        assert time.monotonic() - t0 < 2
        assert c.get(server.url + "/").status_code == 200


def _late_chunk_handler(conn) -> None:
    # The head and a first chunk, then (while the client is not driving its loop) the
    # rest: the bytes wait in the client's socket when its read deadline is found past.
    if conn.read_request() is None:
        return
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    conn.send(head + b"5\r\nfirst\r\n")
    time.sleep(0.1)
    conn.send(b"6\r\nsecond\r\n0\r\n\r\n")
    conn.hold(2.0)


def test_read_deadline_takes_bytes_already_waiting(scripted):
    # libuv runs due timers before polling: a consumer that pauses longer than the read
    # timeout between chunks must still get the bytes that arrived during the pause (a
    # recv() would return them at once, as httpx's does), not a ReadTimeout.
    srv = scripted(_late_chunk_handler)
    with httprs.Client(timeout=httprs.Timeout(5.0, read=0.3)) as c:
        with c.stream("GET", srv.url + "/") as r:
            chunks = r.iter_raw()
            assert next(chunks) == b"first"
            time.sleep(1.0)  # the loop is not driven; the second chunk arrives meanwhile
            assert b"".join(chunks) == b"second"


@pytest.mark.anyio
async def test_read_deadline_takes_bytes_already_waiting_async(scripted):
    # The same with the event loop itself stalled (a blocking call in a task): when it
    # runs again, the read timer and the socket are both ready.
    srv = scripted(_late_chunk_handler)
    async with httprs.AsyncClient(timeout=httprs.Timeout(5.0, read=0.3)) as c:
        async with c.stream("GET", srv.url + "/") as r:
            chunks = r.aiter_raw()
            assert await chunks.__anext__() == b"first"
            time.sleep(1.0)  # noqa: ASYNC251 - stalls the event loop on purpose
            assert b"".join([chunk async for chunk in chunks]) == b"second"


def test_read_deadline_without_bytes_still_times_out(scripted):
    # Nothing waiting when the deadline is found past: ReadTimeout as before.
    def handler(conn) -> None:
        if conn.read_request() is None:
            return
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        conn.hold(3.0)

    srv = scripted(handler)
    with httprs.Client(timeout=httprs.Timeout(5.0, read=0.3)) as c:
        with c.stream("GET", srv.url + "/") as r:
            chunks = r.iter_raw()
            assert next(chunks) == b"first"
            time.sleep(0.6)
            t0 = time.monotonic()
            with pytest.raises(httprs.ReadTimeout):
                b"".join(chunks)
            assert time.monotonic() - t0 < 2.0


def test_read_deadline_takes_bytes_already_waiting_tls(scripted, certs):
    # Over TLS the waiting bytes are records: they go through the TLS layer first.
    import ssl

    from servers.tls import server_context

    srv = scripted(_late_chunk_handler, ssl_context=server_context(certs.server))
    url = srv.url.replace("http://", "https://")
    verify = ssl.create_default_context(cafile=certs.ca_file)
    with httprs.Client(timeout=httprs.Timeout(5.0, read=0.3), verify=verify) as c:
        with c.stream("GET", url + "/") as r:
            chunks = r.iter_raw()
            assert next(chunks) == b"first"
            time.sleep(1.0)
            assert b"".join(chunks) == b"second"


def test_read_deadline_takes_bytes_already_waiting_http2(hypercorn_h2c):
    # HTTP/2: the stream's deadline; the DATA frame waiting in the socket advances it.
    with httprs.Client(http1=False, http2=True, timeout=httprs.Timeout(5.0, read=0.3)) as c:
        with c.stream("GET", hypercorn_h2c.url + "/slow_body?delay=0.1") as r:
            assert r.http_version == "HTTP/2"
            chunks = r.iter_raw()
            assert next(chunks) == b"slow"
            time.sleep(1.0)
            assert b"".join(chunks) == b" body"


@pytest.mark.parametrize("how", ["changed", "replaced"])
def test_a_timeout_dict_changed_in_place_is_read_again(server, how):
    # The transport remembers the timeouts of the last timeout dict it read while that
    # dict is unchanged (a client's requests share one): a dict changed in place, or
    # another one, gets its own timeouts.
    timeout = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}
    url = server.url + "/slow?delay=0.5"
    with httprs.HTTPTransport() as transport:
        response = transport.handle_request(_with_timeout(url, timeout))
        response.read()
        assert response.status_code == 200
        if how == "changed":
            timeout["read"] = 0.1
        else:
            timeout = dict(timeout, read=0.1)
        with pytest.raises(httprs.ReadTimeout):
            transport.handle_request(_with_timeout(url, timeout))


def test_a_timeout_dict_read_by_each_flavour_gets_its_own_timeouts(server):
    # A negative read timeout has expired at once for an async transport (anyio's) and
    # is refused by a sync one (socket.settimeout's): the remembered timeouts of a dict
    # are the flavour's that read it.
    import asyncio

    timeout = {"connect": 5.0, "read": -1.0, "write": 5.0, "pool": 5.0}
    url = server.url + "/slow?delay=0.5"

    async def main():
        async with httprs.AsyncHTTPTransport() as transport:
            await transport.handle_async_request(_with_timeout(url, timeout))

    for _ in range(2):
        with pytest.raises(httprs.ReadTimeout):
            asyncio.run(main())
        with httprs.HTTPTransport() as transport:
            with pytest.raises(ValueError, match="out of range"):
                transport.handle_request(_with_timeout(url, timeout))


def _with_timeout(url, timeout):
    return httprs.Request("GET", url, extensions={"timeout": timeout})


def _paced_body(pieces: int, piece: int, gap: float, then: str = "end"):
    """A scripted handler: a Content-Length body of `pieces` x `piece` bytes, each piece
    sent `gap` seconds after the last; `then`: "end" (all of it), "stall" (the last
    piece never comes: the connection is held) or "close" (closed instead)."""

    def handler(conn) -> None:
        while conn.read_request() is not None:
            total = pieces * piece
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
            for i in range(pieces):
                if i == pieces - 1 and then != "end":
                    if then == "stall":
                        conn.hold(3.0)
                    conn.close()
                    return
                time.sleep(gap)
                conn.send(bytes([65 + i % 26]) * piece)

    return handler


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_a_large_body_sent_slower_than_its_mark_is_read_within_the_read_timeout(
    scripted, anyio_backend
):
    # An async read of a large body (asyncio or trio) waits with the socket marked
    # (woken once up to 2 MiB is in): a sender whose pieces come faster than the read
    # timeout, but whose whole body takes longer, has each piece read before that
    # timeout falls due.
    from httprs import _core

    srv = scripted(_paced_body(8, 64 * 1024, 0.1))
    marks = _core._chunk_marks_for_testing()
    async with httprs.AsyncClient(timeout=httprs.Timeout(5.0, read=0.35)) as c:
        for _ in range(2):
            r = await c.get(srv.url + "/")
            assert r.content == b"".join(bytes([65 + i]) * 65536 for i in range(8))
    assert srv.connections == 1
    assert _core._chunk_marks_for_testing() > marks


@pytest.mark.parametrize("then", ["stall", "close"])
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_a_large_body_cut_short_under_its_mark_fails_as_httpx(scripted, anyio_backend, then):
    # The marked wait still ends when the sender stalls (ReadTimeout, once the read
    # timeout passes with nothing new) or closes early (RemoteProtocolError, as httpx:
    # the end of the stream wakes the loop whatever the mark); the client goes on.
    srv = scripted(_paced_body(4, 128 * 1024, 0.05, then))
    expected = httprs.ReadTimeout if then == "stall" else httprs.RemoteProtocolError
    async with httprs.AsyncClient(timeout=httprs.Timeout(5.0, read=0.4)) as c:
        t0 = time.monotonic()
        with pytest.raises(expected):
            await c.get(srv.url + "/")
        assert time.monotonic() - t0 < 2.5
        srv2 = scripted(_paced_body(2, 64 * 1024, 0.0))
        r = await c.get(srv2.url + "/")
        assert len(r.content) == 2 * 65536


@pytest.mark.parametrize("how", ["read", "stream"])
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_a_marked_wait_that_runs_out_of_time_is_not_marked_again(
    scripted, anyio_backend, how
):
    # As the sync wait's: once a marked wait runs out of time (50 ms for a whole body,
    # 1 ms for a chunk), the rest of that wait reads bytes as they come. Marked again
    # and again, a pause of the sender cost a wake-up per bound (trio: ~1,000 a second
    # for a stream), and a sender's small segments, held back by its Nagle until the
    # client's delayed ACK, could outlast a short read timeout.
    from httprs import _core

    srv = scripted(_paced_body(2, 512 * 1024, 0.4))
    marks = _core._chunk_marks_for_testing()
    async with httprs.AsyncClient(timeout=httprs.Timeout(5.0)) as c:
        if how == "read":
            assert len((await c.get(srv.url + "/")).content) == 1024 * 1024
        else:
            async with c.stream("GET", srv.url + "/") as r:
                assert sum([len(chunk) async for chunk in r.aiter_bytes()]) == 1024 * 1024
    assert 0 < _core._chunk_marks_for_testing() - marks <= 10


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_a_body_larger_than_its_mark_ends_without_a_read_timeout(scripted, anyio_backend):
    # Without a read timeout nothing but the socket wakes the wait: the mark (2 MiB at
    # most) comes down to the body's last bytes after each read, so a 3 MiB body whose
    # last 0.5 MiB comes later (less than the first mark) still ends.
    import anyio

    srv = scripted(_paced_body(6, 512 * 1024, 0.05))
    async with httprs.AsyncClient(timeout=None) as c:
        with anyio.fail_after(10):
            for _ in range(2):
                r = await c.get(srv.url + "/")
                assert len(r.content) == 6 * 512 * 1024


class _EarlyTimersLoop(asyncio.SelectorEventLoop):
    """An asyncio loop that runs every timer 20 ms before it is due, as a loop whose clock
    is coarse does (asyncio runs timers up to its clock's resolution early; uvloop's clock
    counts whole milliseconds)."""

    def call_at(self, when, callback, *args, context=None):
        return super().call_at(when - 0.02, callback, *args, context=context)


def test_async_read_timeout_on_a_loop_that_runs_timers_early(scripted):
    # The driver's timer for libuv's next deadline fired a little early; the pass it ran
    # found the deadline still some milliseconds off, took the timer that had just fired
    # for one still due, and set none: the read timeout went unnoticed until the next
    # I/O (on uvloop, about one request in ten of test_on_uvloop under load).
    srv = scripted(lambda conn: conn.hold())

    async def main():
        async with httprs.AsyncClient(timeout=httprs.Timeout(5.0, read=0.1)) as c:
            for _ in range(10):
                t0 = time.monotonic()
                with pytest.raises(httprs.ReadTimeout):
                    await asyncio.wait_for(c.get(srv.url + "/"), 3)
                assert time.monotonic() - t0 < 1.5

    loop = _EarlyTimersLoop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_cancelled_connect_frees_its_pool_slot(full_backlog, server, anyio_backend):
    # A request cancelled while connecting lets its connect go on for the pool; with the
    # pool full, a request to another origin waited for that connect's timeout (10 s
    # here; with connect=None, the kernel's SYN retries) and failed with PoolTimeout.
    # httpcore stops the connect, so the slot is free at once.
    import anyio

    limits = httprs.Limits(max_connections=1)
    async with httprs.AsyncClient(timeout=httprs.Timeout(10.0, pool=2.0), limits=limits) as c:
        with anyio.move_on_after(0.3) as scope:
            await c.get(full_backlog.url + "/")
        assert scope.cancelled_caught
        t0 = time.monotonic()
        assert (await c.get(server.url + "/")).status_code == 200
        assert time.monotonic() - t0 < 1.5


def test_interrupted_connect_frees_its_pool_slot(full_backlog, server):
    # The sync client's twin: a signal handler's exception ends the connect's wait.
    import signal

    class Interrupted(Exception):
        pass

    def interrupt(signum, frame):
        raise Interrupted

    old = signal.signal(signal.SIGALRM, interrupt)
    limits = httprs.Limits(max_connections=1)
    try:
        with httprs.Client(timeout=httprs.Timeout(10.0, pool=2.0), limits=limits) as c:
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            with pytest.raises(Interrupted):
                c.get(full_backlog.url + "/")
            t0 = time.monotonic()
            assert c.get(server.url + "/").status_code == 200
            assert time.monotonic() - t0 < 1.5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _second_chunk_after(gap: float):
    def handler(conn) -> None:
        if conn.read_request() is None:
            return
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        time.sleep(gap)
        conn.send(b"6\r\nsecond\r\n0\r\n\r\n")
        conn.hold(2.0)

    return handler


@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize("target", ["httprs", "httpx"])
@pytest.mark.parametrize(("pause", "gap"), [(0.4, 0.8), (1.0, 1.2), (1.0, 0.8)])
def test_read_timeout_does_not_run_while_the_consumer_works(scripted, pause, gap, target, flavour):
    # httpx's read timeout bounds each read call: a consumer that works on a chunk
    # (pause) for longer than the server's silence minus the timeout still gets the next
    # one. The deadline ran from the last bytes received, whatever the consumer did:
    # ReadTimeout 0.5 s after the first chunk (on asyncio even when the second had come
    # during the pause: the driver ran the timer while the consumer slept).
    srv = scripted(_second_chunk_after(gap))
    timeout = (httpx if target == "httpx" else httprs).Timeout(5.0, read=0.5)

    async def body(tw):
        async with tw.client(timeout=timeout) as c:
            async with c.stream("GET", srv.url + "/") as r:
                items = []
                async for item in r.aiter_raw():
                    items.append(item)
                    if len(items) == 1:
                        await tw.sleep(pause)
            assert b"".join(items) == b"firstsecond"

    if target == "httpx":
        twin.run(flavour, body, sync_cls=httpx.Client, async_cls=httpx.AsyncClient)
    else:
        twin.run(flavour, body)
