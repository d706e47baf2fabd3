"""No Python object is leaked per request (catalog row M01, refcount leaks).

A debug CPython's `sys.gettotalrefcount()` is not needed to see a reference leak: an
object whose count never drops to zero is never freed, so the interpreter's allocated
blocks (`sys.getallocatedblocks()`, every live pymalloc block) grow with each request that
leaks it. Each case warms up (caches, the pool, interned strings), then runs many more
requests and asserts the blocks grew by less than one per 20 requests: a leak of a single
object per request (a response, a header tuple, an exception, a bytes chunk) grows them
by at least one per request. The server is the benchmark's C server in its own process,
so nothing it allocates is counted here.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import soak  # noqa: E402

import httprs  # noqa: E402

pytestmark = pytest.mark.httprs_only

WARMUP = 300
RUNS = 1000
# Blocks per request. A leak of one object per request is >= 1; what stays below comes and
# goes with timing (request bodies parked until the engine has released their transfer are
# let go by a later request), measured up to 0.08 under load 15-30, 0.00-0.03 unloaded.
LIMIT = 0.2


@pytest.fixture(scope="module")
def c_server():
    srv = soak.Server()
    yield srv
    srv.stop()


def _growth_per_request(run) -> float:
    """Blocks left allocated per call of `run` (a callable doing `n` requests)."""
    run(WARMUP)
    gc.collect()
    before = sys.getallocatedblocks()
    run(RUNS)
    gc.collect()
    return (sys.getallocatedblocks() - before) / RUNS


def _check(run) -> None:
    # A single measurement can catch a cache filling up; a leak grows in every one.
    growth = [_growth_per_request(run) for _ in range(2)]
    assert min(growth) < LIMIT, f"blocks per request: {growth}"


POST_BODY = b"refleak-" * 40


def _sync_case(client, url: str, kind: str):
    if kind == "get":
        assert len(client.get(url + "/chunked?size=2000&chunk=300").content) == 2000
    elif kind == "post":
        assert client.post(url + "/echo", content=POST_BODY).content == POST_BODY
    elif kind == "stream_read":
        with client.stream("GET", url + "/chunked?size=5000&chunk=512") as r:
            assert sum(len(b) for b in r.iter_bytes()) == 5000
    elif kind == "stream_abandoned":
        with client.stream("GET", url + "/chunked?size=200000&chunk=4096") as r:
            for _ in r.iter_raw():
                break
    elif kind == "error":
        with pytest.raises(httprs.ConnectError):
            client.get(url)
    elif kind == "network_stream":
        # The connection's stream, made and dropped with each response.
        stream = client.get(url + "/chunked?size=64&chunk=32").extensions["network_stream"]
        assert stream.get_extra_info("server_addr")[0] == "127.0.0.1"
        assert stream.get_extra_info("socket") is not None


@pytest.mark.parametrize(
    "kind", ["get", "post", "stream_read", "stream_abandoned", "error", "network_stream"]
)
def test_sync_requests_leak_nothing(c_server, closed_port, kind):
    url = f"http://127.0.0.1:{closed_port}/" if kind == "error" else c_server.url
    with httprs.Client(timeout=5.0) as client:

        def run(n: int) -> None:
            for _ in range(n):
                _sync_case(client, url, kind)

        _check(run)


def test_client_cycles_leak_nothing(c_server):
    def run(n: int) -> None:
        for _ in range(n // 10):
            with httprs.Client() as client:
                client.get(c_server.url + "/chunked?size=64&chunk=32")

    # Ten requests per client: compare per client, not per request.
    run(WARMUP)
    gc.collect()
    before = sys.getallocatedblocks()
    run(RUNS)
    gc.collect()
    per_client = (sys.getallocatedblocks() - before) / (RUNS // 10)
    assert per_client < 0.5, per_client  # one object leaked per Client() cycle is >= 1


@pytest.mark.parametrize("lib", ["asyncio", "trio"])
def test_async_requests_leak_nothing(c_server, lib):
    url = c_server.url

    async def batch(client, n: int) -> None:
        async def one(i: int) -> None:
            if i & 1:
                r = await client.get(url + "/chunked?size=2000&chunk=300")
                assert len(r.content) == 2000
            else:
                r = await client.post(url + "/echo", content=POST_BODY)
                assert r.content == POST_BODY

        for start in range(0, n, 10):
            if lib == "trio":
                import trio

                async with trio.open_nursery() as nursery:
                    for i in range(start, start + 10):
                        nursery.start_soon(one, i)
            else:
                await asyncio.gather(*(one(i) for i in range(start, start + 10)))

    async def main() -> list[float]:
        async with httprs.AsyncClient(timeout=5.0) as client:
            out = []
            await batch(client, WARMUP)
            for _ in range(2):
                gc.collect()
                before = sys.getallocatedblocks()
                await batch(client, RUNS)
                gc.collect()
                out.append((sys.getallocatedblocks() - before) / RUNS)
            return out

    if lib == "trio":
        import trio

        growth = trio.run(main)
    else:
        growth = asyncio.run(main())
    assert min(growth) < LIMIT, f"blocks per request: {growth}"
