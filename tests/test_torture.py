"""Torture runs (catalog row M08, after curl's torture tests): the k-th connect, write or
read of a scenario fails as the kernel's call would (a refused connect, a write or read
ending in a reset), for k = 1, 2, ... until the scenario makes fewer than k such calls.

Every run must end in the exact expected body or a transport error that fits the fault
(never a wrong body, a timeout or a crash); a POST must never reach the server twice; no
connection may be left in use; and the same client must then work. Under
`dev.sh test-asan` the same runs check that no failure path leaks or touches freed
memory. The fault hook is `httprs._core._fault_arm` (src/socket_stream.h).

The per-thread read and decoding buffers (src/scratch.h) are allocated on a thread's
first use; `httprs._core._scratch_fail` makes that allocation fail as on an exhausted
heap: the read fails with a clear error, never a crash, and the client works on. (The
decoding buffers live in `httprs._decoders`, a module of its own with its own copy of
the hook: tests/cpp/test_decode.cc covers them.)
"""

from __future__ import annotations

import hashlib
import itertools
import ssl
import threading
from collections.abc import Callable

import pytest
import twin
from servers.scripted import ScriptedServer, chunked, response_bytes
from servers.tls import server_context

import httprs
from httprs import _core

SITES = ("connect", "write", "read")
BIG = 300_000  # several reads
# Well above any scenario's call count: a loop that reaches it never stopped.
MAX_K = 200


def body_of(size: int) -> bytes:
    return (hashlib.sha256(str(size).encode()).hexdigest().encode() * (size // 64 + 1))[:size]


def torture_handler(conn) -> None:
    """Keep-alive. GET /n/SIZE: SIZE bytes (Content-Length); /c/SIZE: chunked;
    /redirect: 302 to /n/100. POST echoes its body. Each POST is recorded by id."""
    while (req := conn.read_request()) is not None:
        if req.method == "POST":
            conn.server.post_ids.append(req.header("x-id"))
        parts = req.target.strip("/").split("/")
        if req.method == "POST":
            ok = conn.respond(req.body)
        elif parts[0] == "redirect":
            ok = conn.respond(b"", status="302 Found", headers=[("Location", "/n/100")])
        elif parts[0] == "c":
            data = body_of(int(parts[1]))
            pieces = [data[i : i + 7000] for i in range(0, len(data), 7000)]
            ok = conn.send(
                response_bytes(b"", headers=[("Transfer-Encoding", "chunked")]) + chunked(*pieces)
            )
        else:
            ok = conn.respond(body_of(int(parts[1])))
        if not ok:
            return


def make_server(ssl_context: ssl.SSLContext | None = None) -> ScriptedServer:
    srv = ScriptedServer(torture_handler, ssl_context=ssl_context)
    srv.post_ids = []
    return srv


@pytest.fixture
def torture_server():
    srv = make_server()
    yield srv
    srv.close()


@pytest.fixture
def torture_tls(certs):
    srv = make_server(server_context(certs.server))
    srv.url = srv.url.replace("http://", "https://")
    yield srv
    srv.close()


def _get(path: str, size: int):
    def run(c, url):
        return c.get(url + path, follow_redirects=True), body_of(size)

    return run


POST_IDS = itertools.count()  # unique over the whole run


def _post(size: int, streamed: bool = False):
    def run(c, url):
        data = body_of(size)
        content = iter([data[: size // 2], data[size // 2 :]]) if streamed else data
        return c.post(url + "/p", content=content, headers={"x-id": str(next(POST_IDS))}), data

    return run


def _second_on_kept_alive(c, url):
    # The fault lands on the second request (its connection is a kept-alive one).
    _core._fault_arm("read", 0)
    return c.get(url + "/n/100"), body_of(100)


def _stream_iter(c, url):
    with c.stream("GET", url + "/c/" + str(BIG)) as r:
        got = b"".join(r.iter_bytes())

    class Done:
        status_code = r.status_code
        content = got

    return Done, body_of(BIG)


SCENARIOS: dict[str, Callable] = {
    "get_small": _get("/n/100", 100),
    "get_big": _get(f"/n/{BIG}", BIG),
    "get_chunked": _get(f"/c/{BIG}", BIG),
    "stream_chunked": _stream_iter,
    "redirect": _get("/redirect", 100),
    "post": _post(5000),
    "post_big": _post(BIG),
    "post_streamed": _post(50_000, streamed=True),
}


def _clean_pool(client) -> None:
    stats = client._transport._pool_stats()
    assert stats["connections"] == stats["idle"], stats  # nothing left in use


def torture(client, srv, site: str, scenario: Callable, prepare=None) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    for k in range(1, MAX_K + 1):
        if prepare is not None:
            _core._fault_arm(site, 0)
            prepare(client, srv.url)
        _core._fault_arm(site, k, "ECONNREFUSED" if site == "connect" else "ECONNRESET")
        try:
            try:
                r, expected = scenario(client, srv.url)
            finally:
                calls = _core._fault_calls(site)
                _core._fault_arm(site, 0)
        except httprs.TimeoutException as exc:  # a TransportError, but never right here
            pytest.fail(f"k={k}: {exc!r}")
        except httprs.TransportError as exc:
            assert calls >= k, f"k={k}: {exc!r} without the fault"
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
        else:
            assert r.status_code == 200, k
            assert r.content == expected, f"k={k}: a wrong body"
            outcomes["ok"] = outcomes.get("ok", 0) + 1
        _clean_pool(client)
        assert len(srv.post_ids) == len(set(srv.post_ids)), f"k={k}: a POST sent twice"
        if calls < k:
            break  # the scenario made fewer than k calls: every one has failed once
    else:
        pytest.fail("the fault never stopped firing")
    # The same client works afterwards.
    r = client.get(srv.url + "/n/10")
    assert r.content == body_of(10)
    _clean_pool(client)
    return outcomes


@pytest.fixture(autouse=True)
def _disarm():
    yield
    for site in SITES:
        _core._fault_arm(site, 0)


@pytest.mark.httprs_only
@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_torture(torture_server, site, name):
    with httprs.Client(timeout=10.0) as c:
        outcomes = torture(c, torture_server, site, SCENARIOS[name])
    # Every call site was made to fail at least once: not every outcome is a success.
    assert sum(v for key, v in outcomes.items() if key != "ok") >= 1, outcomes


@pytest.mark.httprs_only
@pytest.mark.parametrize("site", ("write", "read"))
def test_torture_kept_alive_connection(torture_server, site):
    # A kept-alive connection failing at the k-th call: a GET may be sent again (the
    # stale keep-alive race), and still ends right or in a transport error.
    with httprs.Client(timeout=10.0) as c:
        outcomes = torture(
            c, torture_server, site, _second_on_kept_alive, prepare=_get("/n/100", 100)
        )
    assert outcomes


@pytest.mark.httprs_only
@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("name", ["get_big", "post"])
def test_torture_tls(torture_tls, certs, site, name):
    verify = ssl.create_default_context(cafile=certs.ca_file)
    with httprs.Client(timeout=10.0, verify=verify) as c:
        outcomes = torture(c, torture_tls, site, SCENARIOS[name])
    assert sum(v for key, v in outcomes.items() if key != "ok") >= 1, outcomes


async def _atorture(client, srv, site: str, path: str, size: int, post: bool) -> dict:
    outcomes: dict[str, int] = {}
    for k in range(1, MAX_K + 1):
        _core._fault_arm(site, k, "ECONNREFUSED" if site == "connect" else "ECONNRESET")
        expected = body_of(size)
        try:
            try:
                if post:
                    r = await client.post(
                        srv.url + path, content=expected, headers={"x-id": str(next(POST_IDS))}
                    )
                else:
                    r = await client.get(srv.url + path)
            finally:
                calls = _core._fault_calls(site)
                _core._fault_arm(site, 0)
        except httprs.TimeoutException as exc:
            pytest.fail(f"k={k}: {exc!r}")
        except httprs.TransportError as exc:
            assert calls >= k, f"k={k}: {exc!r} without the fault"
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
        else:
            assert r.content == expected, f"k={k}: a wrong body"
            outcomes["ok"] = outcomes.get("ok", 0) + 1
        _clean_pool(client)
        assert len(srv.post_ids) == len(set(srv.post_ids)), f"k={k}: a POST sent twice"
        if calls < k:
            break
    else:
        pytest.fail("the fault never stopped firing")
    assert (await client.get(srv.url + "/n/10")).content == body_of(10)
    _clean_pool(client)
    return outcomes


@pytest.mark.httprs_only
@pytest.mark.anyio
@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize(
    "path,size,post", [("/n/100", 100, False), (f"/c/{BIG}", BIG, False), ("/p", 5000, True)]
)
async def test_torture_async(torture_server, anyio_backend, site, path, size, post):
    async with httprs.AsyncClient(timeout=10.0) as c:
        outcomes = await _atorture(c, torture_server, site, path, size, post)
    assert sum(v for key, v in outcomes.items() if key != "ok") >= 1, outcomes


# --------------------------------------------------------------- no memory for a buffer

NO_MEMORY = "Out of memory: could not allocate a 64 KiB buffer."


def _on_fresh_thread(fn: Callable[[], None]) -> None:
    """Run `fn` on a new thread, whose per-thread buffers are not allocated yet."""
    errors: list[BaseException] = []

    def main() -> None:
        try:
            fn()
        except BaseException as exc:  # re-raised on the test's thread
            errors.append(exc)
        finally:
            _core._scratch_fail(0)

    thread = threading.Thread(target=main)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@pytest.mark.httprs_only
@pytest.mark.parametrize("flavour", twin.FLAVOURS)
def test_no_memory_for_a_read_buffer(torture_tls, torture_server, certs, flavour):
    # Through TLS the decrypted bytes go through a per-thread buffer: without one the
    # read fails, the connection is closed, and the next request gets a new one.
    url = torture_tls.url + f"/n/{BIG}"

    async def body(tw):
        verify = ssl.create_default_context(cafile=certs.ca_file)
        async with tw.client(verify=verify, timeout=10.0) as c:
            # The client's own read buffer is made on its first read (a plain one
            # makes none per thread): the TLS layer's is then the next allocation.
            assert (await c.get(torture_server.url + "/n/100")).content == body_of(100)
            _core._scratch_fail(1)
            with pytest.raises(httprs.ReadError) as info:
                await c.get(url)
            assert _core._scratch_fail(0) == 0  # it fired
            assert str(info.value) == NO_MEMORY
            assert (await c.get(url)).content == body_of(BIG)
            assert torture_tls.connections == 2

    _on_fresh_thread(lambda: twin.run(flavour, body))


@pytest.mark.httprs_only
@pytest.mark.parametrize("flavour", twin.FLAVOURS)
def test_no_memory_to_check_an_idle_connection(torture_server, flavour):
    # Before reusing an idle connection the pool reads what arrived on it (an EOF,
    # stray bytes) into a per-thread buffer: without one it is not reused but closed,
    # and the request goes out on a new connection.
    url = torture_server.url + "/n/100"

    async def body(tw):
        async with tw.client(timeout=10.0) as c:
            assert (await c.get(url)).content == body_of(100)
            _core._scratch_fail(1)
            assert (await c.get(url)).content == body_of(100)
            assert _core._scratch_fail(0) == 0
            assert torture_server.connections == 2
            assert (await c.get(url)).content == body_of(100)
            assert torture_server.connections == 2

    _on_fresh_thread(lambda: twin.run(flavour, body))


@pytest.mark.httprs_only
@pytest.mark.parametrize("flavour", twin.FLAVOURS)
@pytest.mark.parametrize(
    ("scheme", "failure"), [("http", httprs.ReadError), ("https", httprs.ConnectError)]
)
def test_no_memory_for_the_clients_read_buffer(request, certs, scheme, failure, flavour):
    # A client's read buffer (1 MiB, shared by its connections) is allocated on its
    # first read, not in Client(): without memory for it that read fails with a clear
    # error (no exception through libuv's frames), and the next read allocates it. Over
    # https that first read is the TLS handshake's: the connect fails (ConnectError, as
    # any failed read while connecting).
    srv = request.getfixturevalue("torture_tls" if scheme == "https" else "torture_server")
    url = srv.url + "/n/100"
    verify = ssl.create_default_context(cafile=certs.ca_file)

    async def body(tw):
        # A first client makes this thread's own buffers: the engine's is then the
        # next allocation.
        async with tw.client(verify=verify, timeout=10.0) as warm:
            assert (await warm.get(url)).content == body_of(100)
            assert (await warm.get(url)).content == body_of(100)
        async with tw.client(verify=verify, timeout=10.0) as c:
            _core._scratch_fail(1)
            with pytest.raises(failure) as info:
                await c.get(url)
            assert _core._scratch_fail(0) == 0  # it fired
            assert str(info.value) == "Out of memory: could not allocate a 1024 KiB buffer."
            assert (await c.get(url)).content == body_of(100)
            assert (await c.get(url)).content == body_of(100)
            assert srv.connections == 3  # the warm one, the failed one, one more

    _on_fresh_thread(lambda: twin.run(flavour, body))
