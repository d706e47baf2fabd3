"""The `trace` request extension: httpcore's event names, info and moments, next to httpx."""

from __future__ import annotations

import os
import socket
import ssl
import threading

import httpx
import pytest
from servers.scripted import keepalive

import httprs

pytestmark = pytest.mark.skipif(
    os.environ.get("HTTPRS_TEST_TARGET") == "httpx",
    reason="differential test: both sides would be httpx in validation mode",
)


def recorder():
    events: list = []

    def trace(name, info):
        events.append((name, sorted(info)))

    return events, trace


def arecorder():
    events: list = []

    async def trace(name, info):
        events.append((name, sorted(info)))

    return events, trace


def run_sync(module, url, verify, requests):
    events, trace = recorder()
    with module.Client(verify=verify) as c:
        for method, path, kwargs in requests:
            r = c.request(method, url + path, extensions={"trace": trace}, **kwargs)
            assert r.status_code == 200
            events.append(("-- response", []))
    return events


async def run_async(module, url, verify, requests):
    events, trace = arecorder()
    async with module.AsyncClient(verify=verify) as c:
        for method, path, kwargs in requests:
            r = await c.request(method, url + path, extensions={"trace": trace}, **kwargs)
            assert r.status_code == 200
            events.append(("-- response", []))
    return events


def chunks():
    yield b"abc"
    yield b"def"


async def achunks():
    yield b"abc"
    yield b"def"


REQUESTS = [
    ("GET", "/a", {}),
    ("GET", "/b", {}),  # a reused connection: no connect events
    ("POST", "/c", {"content": b"x" * 1000}),
]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_trace_events_match_httpx(scripted, https_server, certs, scheme):
    if scheme == "http":
        url, verify = scripted(keepalive(b"hello")).url, True
    else:
        url, verify = https_server.url, ssl.create_default_context(cafile=certs.ca_file)
    ours = run_sync(httprs, url, verify, [*REQUESTS, ("PUT", "/d", {"content": chunks()})])
    theirs = run_sync(httpx, url, verify, [*REQUESTS, ("PUT", "/d", {"content": chunks()})])
    assert ours == theirs
    assert (
        "connection.connect_tcp.started",
        ["host", "local_address", "port", "socket_options", "timeout"],
    ) in ours
    assert ("http11.response_closed.complete", ["return_value"]) in ours


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_trace_events_match_httpx_async(scripted, https_server, certs, scheme):
    if scheme == "http":
        url, verify = scripted(keepalive(b"hello")).url, True
    else:
        url, verify = https_server.url, ssl.create_default_context(cafile=certs.ca_file)
    ours = await run_async(httprs, url, verify, [*REQUESTS, ("PUT", "/d", {"content": achunks()})])
    theirs = await run_async(
        httpx, url, verify, [*REQUESTS, ("PUT", "/d", {"content": achunks()})]
    )
    assert ours == theirs
    assert ours[0][0] == "connection.connect_tcp.started"


def test_trace_streamed_response_and_close(scripted):
    url = scripted(keepalive(b"y" * 5000)).url

    def run(module):
        events, trace = recorder()
        with module.Client() as c:
            with c.stream("GET", url, extensions={"trace": trace}) as r:
                events.append(("-- head", []))
                b"".join(r.iter_bytes())
                events.append(("-- read", []))
            with c.stream("GET", url, extensions={"trace": trace}) as r:
                events.append(("-- head, closing unread", []))
        return [name for name, _ in events]

    assert run(httprs) == run(httpx)


class _CallbackFailed(Exception):
    pass


def _raising_at_close(name, info):
    if name == "http11.response_closed.started":
        raise _CallbackFailed(name)


async def _araising_at_close(name, info):
    _raising_at_close(name, info)


def test_a_callback_raising_at_close_still_lets_the_connection_go(scripted):
    """httpcore runs the response_closed.started callback before it lets the connection
    of an unread response go, and a callback that raises there (or a signal handler's
    exception while it runs) kept the connection in use while the response lived: with
    max_connections=1 the next request was a PoolTimeout. httprs lets it go whatever the
    callback raises, and the exception still comes out of close()."""
    url = scripted(keepalive(b"hello")).url
    limits = httprs.Limits(max_connections=1)
    with httprs.Client(limits=limits, timeout=httprs.Timeout(5, pool=1)) as c:
        for _ in range(2):
            response = c.build_request("GET", url, extensions={"trace": _raising_at_close})
            response = c.send(response, stream=True)
            with pytest.raises(_CallbackFailed):
                response.close()  # unread: closing it is what lets the connection go
            assert c.get(url).text == "hello"  # (the response is still referenced)


@pytest.mark.anyio
async def test_a_callback_raising_at_aclose_still_lets_the_connection_go(scripted):
    url = scripted(keepalive(b"hello")).url
    limits = httprs.Limits(max_connections=1)
    async with httprs.AsyncClient(limits=limits, timeout=httprs.Timeout(5, pool=1)) as c:
        for _ in range(2):
            response = c.build_request("GET", url, extensions={"trace": _araising_at_close})
            response = await c.send(response, stream=True)
            with pytest.raises(_CallbackFailed):
                await response.aclose()
            assert (await c.get(url)).text == "hello"


def test_trace_connect_failure(closed_port):
    def run(module):
        events, trace = recorder()
        with module.Client() as c:
            with pytest.raises(module.ConnectError):
                c.get(f"http://127.0.0.1:{closed_port}/", extensions={"trace": trace})
        return [name for name, _ in events]

    ours = run(httprs)
    assert ours == run(httpx)
    assert ours == ["connection.connect_tcp.started", "connection.connect_tcp.failed"]


def test_trace_tls_failure(https_server):
    def run(module):
        events, trace = recorder()
        with module.Client() as c:  # the test CA is unknown
            with pytest.raises(module.ConnectError):
                c.get(https_server.url, extensions={"trace": trace})
        return [name for name, _ in events]

    ours = run(httprs)
    assert ours == run(httpx)
    assert ours[-1] == "connection.start_tls.failed"


def test_trace_callbacks_run_before_each_phase(https_server, certs):
    """Each "...started" callback runs before its phase begins (the connection waits for
    it), so timings taken by a tracing library are the phases' own: were the phase under
    way, the server would see it within the pause the callback makes."""
    import time

    seen = []

    def trace(name, info):
        if name in ("connection.connect_tcp.started", "http11.send_request_headers.started"):
            time.sleep(0.2)
            seen.append((name, https_server.connections, len(https_server.received)))
        elif name == "http11.receive_response_headers.complete":
            seen.append((name, https_server.connections, len(https_server.received) > 0))
            assert info["return_value"][1] == 200

    verify = ssl.create_default_context(cafile=certs.ca_file)
    with httprs.Client(verify=verify) as c:
        assert c.get(https_server.url, extensions={"trace": trace}).status_code == 200
    assert seen == [
        ("connection.connect_tcp.started", 0, 0),
        ("http11.send_request_headers.started", 1, 0),
        ("http11.receive_response_headers.complete", 1, True),
    ]


def test_trace_slow_callback_does_not_count_against_timeouts(scripted):
    import time

    url = scripted(keepalive(b"ok")).url

    def trace(name, info):
        if name.endswith(".started"):
            time.sleep(0.3)

    with httprs.Client(timeout=0.2) as c:
        assert c.get(url, extensions={"trace": trace}).status_code == 200


def test_trace_sync_callback_must_not_be_async(scripted):
    url = scripted(keepalive(b"ok")).url

    async def trace(name, info):
        pass

    with httprs.Client() as c:
        with pytest.raises(TypeError, match="normal function"):
            c.get(url, extensions={"trace": trace})
        # the client stays usable
        assert c.get(url).status_code == 200


@pytest.fixture
def socks_proxy():
    from servers.socks import Socks5Server

    srv = Socks5Server()
    yield srv
    srv.close()


@pytest.mark.parametrize(
    "route",
    ["forward", "tunnel", "https-proxy-tunnel", "https-proxy-forward", "socks", "socks-tls"],
)
def test_trace_events_through_proxies_match_httpx(
    route, proxy_factory, socks_proxy, server, https_server, certs
):
    """httpcore's events through proxies: the proxy's own TLS (connection.start_tls),
    the CONNECT request's http11 events, the origin's TLS as proxy.start_tls, and the
    socks.* events of a SOCKS5 connection."""
    from servers.tls import server_context

    ctx = ssl.create_default_context(cafile=certs.ca_file)
    if route.startswith("https-proxy"):
        proxy_url = proxy_factory(ssl_context=server_context(certs.server)).url
    elif route.startswith("socks"):
        proxy_url = f"socks5://127.0.0.1:{socks_proxy.port}"
    else:
        proxy_url = proxy_factory().url
    origin = (
        https_server.url if route in ("tunnel", "https-proxy-tunnel", "socks-tls") else server.url
    )

    def run(module):
        events, trace = recorder()
        if proxy_url.startswith("https"):
            proxy = module.Proxy(proxy_url, ssl_context=ctx)
        else:
            proxy = proxy_url
        with module.Client(verify=ctx, proxy=proxy) as c:
            assert c.get(origin + "/", extensions={"trace": trace}).status_code == 200
        return events

    assert run(httprs) == run(httpx)


def address_shape(addr):
    """An address with the ephemeral client port left out: (host, tuple length)."""
    return None if addr is None else (addr[0], len(addr))


def stream_recorder():
    """Records, for every event that carries a network stream, what it answers."""
    seen: list = []

    def trace(name, info):
        stream = info.get("return_value", info.get("stream"))
        if hasattr(stream, "get_extra_info"):
            seen.append((
                name,
                stream.get_extra_info("server_addr"),
                address_shape(stream.get_extra_info("client_addr")),
                stream.get_extra_info("ssl_object") is not None,
            ))

    return seen, trace


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_trace_streams_answer_addresses_as_httpx(scripted, https_server, certs, scheme):
    """connect_tcp.complete's stream gives the peer's and the local address, as httpx's
    CLI prints with -v ("Connected to 127.0.0.1 on port ..."); start_tls's too."""
    if scheme == "http":
        url, verify = scripted(keepalive(b"hello")).url, True
    else:
        url, verify = https_server.url, ssl.create_default_context(cafile=certs.ca_file)

    def run(module):
        seen, trace = stream_recorder()
        with module.Client(verify=verify) as c:
            assert c.get(url, extensions={"trace": trace}).status_code == 200
        return seen

    ours = run(httprs)
    assert ours == run(httpx)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    assert ours[0] == (
        "connection.connect_tcp.complete",
        ("127.0.0.1", port),
        ("127.0.0.1", 2),
        False,
    )


@pytest.mark.anyio
async def test_trace_streams_answer_addresses_as_httpx_async(https_server, certs):
    verify = ssl.create_default_context(cafile=certs.ca_file)

    async def run(module):
        seen, trace = stream_recorder()

        async def atrace(name, info):
            trace(name, info)

        async with module.AsyncClient(verify=verify) as c:
            r = await c.get(https_server.url, extensions={"trace": atrace})
            assert r.status_code == 200
        return seen

    ours = await run(httprs)
    assert ours == await run(httpx)
    assert [name for name, *_ in ours] == [
        "connection.connect_tcp.complete",
        "connection.start_tls.complete",
    ]
    assert ours[0][1][0] == "127.0.0.1"


def socket_recorder():
    """On connect_tcp.complete, sets SO_KEEPALIVE through the stream's socket (the
    recipe for TCP keep-alive before socket_options existed) and records its peer
    and is_readable."""
    seen: list = []

    def trace(name, info):
        if name == "connection.connect_tcp.complete":
            stream = info["return_value"]
            sock = stream.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            seen.append((tuple(sock.getpeername()[:2]), stream.get_extra_info("is_readable")))

    return seen, trace


def keepalive_set(response) -> int:
    sock = response.extensions["network_stream"].get_extra_info("socket")
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)


def test_trace_stream_socket_reaches_the_connection_as_httpx(scripted):
    """connect_tcp.complete's stream gives the connection's socket: an option set on
    it is the connection's (a duplicate descriptor here, the socket itself in httpx)."""
    srv = scripted(keepalive(b"hello"))

    def run(module):
        seen, trace = socket_recorder()
        with module.Client() as c:
            r = c.get(srv.url, extensions={"trace": trace})
            assert r.status_code == 200
            seen.append(keepalive_set(r))
        return seen

    ours = run(httprs)
    assert ours == run(httpx)
    assert ours == [(("127.0.0.1", srv.port), False), 1]


@pytest.mark.anyio
async def test_trace_stream_socket_reaches_the_connection_as_httpx_async(scripted):
    srv = scripted(keepalive(b"hello"))

    async def run(module):
        seen, trace = socket_recorder()

        async def atrace(name, info):
            trace(name, info)

        async with module.AsyncClient() as c:
            r = await c.get(srv.url, extensions={"trace": atrace})
            assert r.status_code == 200
            seen.append(keepalive_set(r))
        return seen

    ours = await run(httprs)
    assert ours == await run(httpx)
    assert ours == [(("127.0.0.1", srv.port), False), 1]


def test_a_kept_trace_stream_socket_lets_the_connection_end(scripted):
    """The socket a trace callback keeps does not hold the connection open: closing
    the client still ends it for the server, and the stream answers None after."""
    ended = threading.Event()

    def handler(conn):
        keepalive(b"hello")(conn)
        ended.set()

    srv = scripted(handler)
    kept: list = []

    def trace(name, info):
        if name == "connection.connect_tcp.complete":
            stream = info["return_value"]
            kept.append((stream, stream.get_extra_info("socket")))

    client = httprs.Client(timeout=5)
    assert client.get(srv.url, extensions={"trace": trace}).status_code == 200
    client.close()
    assert ended.wait(5)
    stream, sock = kept[0]
    assert stream.get_extra_info("socket") is None
    assert stream.get_extra_info("server_addr") == ("127.0.0.1", srv.port)
    with pytest.raises(NotImplementedError, match="trace event's stream"):
        stream.start_tls(None)
    sock.close()


@pytest.mark.anyio
async def test_trace_stream_ipv6_address_shape_follows_the_library(scripted, anyio_backend):
    """IPv6 as httpcore's streams give it: a pair under asyncio, a 4-tuple under trio."""
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    srv = scripted(keepalive(b"hello"), host="::1")
    seen, trace = stream_recorder()

    async def atrace(name, info):
        trace(name, info)

    async with httprs.AsyncClient() as c:
        r = await c.get(f"http://[::1]:{srv.port}/", extensions={"trace": atrace})
        assert r.status_code == 200
    expected = ("::1", srv.port) if anyio_backend == "asyncio" else ("::1", srv.port, 0, 0)
    assert seen == [("connection.connect_tcp.complete", expected, ("::1", len(expected)), False)]


def test_trace_streams_through_proxies_answer_the_proxy_address(
    proxy_factory, socks_proxy, https_server, certs
):
    """Through a proxy the TCP connection is the proxy's: its address, as httpcore's
    stream says, on connect_tcp, the proxy's TLS, SOCKS and the origin's TLS."""
    from servers.tls import server_context

    ctx = ssl.create_default_context(cafile=certs.ca_file)
    https_proxy = proxy_factory(ssl_context=server_context(certs.server)).url
    proxies = {
        "https-proxy": lambda m: m.Proxy(https_proxy, ssl_context=ctx),
        "socks": lambda m: f"socks5://127.0.0.1:{socks_proxy.port}",
    }
    for route, make in proxies.items():

        def run(module, make=make):
            seen, trace = stream_recorder()
            with module.Client(verify=ctx, proxy=make(module)) as c:
                r = c.get(https_server.url + "/", extensions={"trace": trace})
                assert r.status_code == 200
            return seen

        ours = run(httprs)
        assert ours == run(httpx), route
        assert len(ours) >= 3 and all(event[1][0] == "127.0.0.1" for event in ours), route
