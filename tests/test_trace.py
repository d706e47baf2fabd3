"""The `trace` request extension: httpcore's event names, info and moments, next to httpx."""

from __future__ import annotations

import os
import ssl

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
