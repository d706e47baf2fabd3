"""HTTPTransport(socket_options=...) applies every option to each new socket."""

from __future__ import annotations

import decimal
import os
import socket

import pytest

import httprs


def _socket_of(fd: int) -> socket.socket | None:
    """A socket object over a duplicate of `fd`, or None (the duplicate closed) when `fd`
    is gone or no socket: a leaked duplicate per call would push later tests' descriptors
    past select()'s limit (the proxy test servers select)."""
    try:
        dup = os.dup(fd)
    except OSError:
        return None
    try:
        return socket.socket(fileno=dup)
    except OSError:
        os.close(dup)
        return None


def _client_socket_for_port(local_port: int) -> socket.socket:
    """Our own process's socket whose local port is `local_port` (a dup of it)."""
    for name in os.listdir("/proc/self/fd"):
        sock = _socket_of(int(name))
        if sock is None:
            continue
        try:
            if (
                sock.family in (socket.AF_INET, socket.AF_INET6)
                and sock.getsockname()[1] == local_port
            ):
                return sock
        except OSError:
            pass
        sock.close()
    raise AssertionError(f"no socket with local port {local_port}")


def _peer_port_handler(conn):
    while conn.read_request() is not None:
        port = str(conn.sock.getpeername()[1]).encode()
        conn.respond(port)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_socket_options_are_applied(scripted):
    srv = scripted(_peer_port_handler)
    options = [
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
        (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 77),
        (socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 17),
    ]
    with httprs.Client(transport=httprs.HTTPTransport(socket_options=options)) as client:
        port = int(client.get(srv.url + "/").text)
        sock = _client_socket_for_port(port)
        try:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 77
            # Linux doubles SO_RCVBUF; set before connect() it is at least what we asked
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 1 << 17
        finally:
            sock.close()


def test_socket_option_error_is_connect_error_and_client_recovers(scripted):
    srv = scripted(_peer_port_handler)
    bad = httprs.HTTPTransport(socket_options=[(socket.SOL_SOCKET, 99999, 1)])
    with httprs.Client(transport=bad) as client:
        with pytest.raises(httprs.ConnectError, match="Errno"):
            client.get(srv.url + "/")
    with httprs.Client() as client:
        assert client.get(srv.url + "/").status_code == 200


@pytest.mark.parametrize("option", [(1,), (1, 2, "x"), (1, 2, 3, 4)])
def test_invalid_socket_option_shapes(option):
    with pytest.raises(TypeError):
        httprs.HTTPTransport(socket_options=[option])


@pytest.mark.anyio
async def test_async_transport_socket_options(scripted):
    srv = scripted(_peer_port_handler)
    transport = httprs.AsyncHTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    )
    async with httprs.AsyncClient(transport=transport) as client:
        port = int((await client.get(srv.url + "/")).text)
        sock = _client_socket_for_port(port)
        try:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        finally:
            sock.close()


def test_uds_sync(unix_server):
    path, state = unix_server
    with httprs.Client(transport=httprs.HTTPTransport(uds=path)) as client:
        assert client.get("http://example.org/a").text == "example.org"
        assert client.get("http://example.org/b").text == "example.org"
    assert state["connections"] == 1  # kept alive over the socket


def test_uds_missing_path_is_connect_error(tmp_path):
    transport = httprs.HTTPTransport(uds=str(tmp_path / "missing.sock"))
    with httprs.Client(transport=transport) as client:
        with pytest.raises(httprs.ConnectError, match="No such file"):
            client.get("http://localhost/")


def _abstract_name() -> str:
    return f"\0httprs-test-{os.getpid()}-{os.urandom(4).hex()}"


@pytest.fixture
def short_dir():
    """A directory with a short path, so Unix socket paths near sun_path's 108 bytes fit."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="u", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _longest_address(short_dir: str, abstract: bool) -> str:
    if abstract:
        name = _abstract_name()
        return name + "n" * (108 - len(name))
    path = os.path.join(short_dir, "p" * (107 - len(short_dir) - 1))
    assert len(os.fsencode(path)) == 107
    return path


def test_uds_abstract_name_connects(unix_server_factory):
    """An abstract socket name (Linux; a leading NUL) is connected to as Python's socket
    connects to it, httpcore's way: the name's bytes, NUL included."""
    name = _abstract_name()
    state = unix_server_factory(name)
    with httprs.Client(transport=httprs.HTTPTransport(uds=name)) as client:
        assert client.get("http://example.org/a").text == "example.org"
        assert client.get("http://example.org/b").text == "example.org"
    assert state["connections"] == 1


@pytest.mark.anyio
async def test_uds_abstract_name_connects_async(unix_server_factory):
    name = _abstract_name()
    state = unix_server_factory(name)
    async with httprs.AsyncClient(transport=httprs.AsyncHTTPTransport(uds=name)) as client:
        assert (await client.get("http://example.org/a")).text == "example.org"
    assert state["connections"] == 1


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_uds_address_filling_sun_path_connects(unix_server_factory, short_dir, abstract):
    """The longest addresses Python's socket takes: a path of 107 bytes (sun_path's 108
    less its NUL), an abstract name of 108."""
    path = _longest_address(short_dir, abstract)
    state = unix_server_factory(path)
    with httprs.Client(transport=httprs.HTTPTransport(uds=path)) as client:
        assert client.get("http://localhost/").text == "localhost"
    assert state["connections"] == 1


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_uds_address_too_long_is_refused_not_cut(unix_server_factory, short_dir, abstract):
    """A Unix address longer than sun_path is a ConnectError (Python's "AF_UNIX path too
    long"), never cut down to the socket named by what fits (libuv's uv_pipe_connect
    cut it): that socket listens here and must see no connection. The client stays usable."""
    prefix = _longest_address(short_dir, abstract)
    state = unix_server_factory(prefix)
    with httprs.Client(transport=httprs.HTTPTransport(uds=prefix + "zz")) as client:
        for _ in range(2):
            with pytest.raises(httprs.ConnectError, match="AF_UNIX path too long"):
                client.get("http://localhost/")
    assert state["connections"] == 0
    with httprs.Client(transport=httprs.HTTPTransport(uds=prefix)) as client:
        assert client.get("http://localhost/").text == "localhost"
    assert state["connections"] == 1


@pytest.mark.anyio
async def test_uds_address_too_long_is_refused_not_cut_async(unix_server_factory, short_dir):
    prefix = _longest_address(short_dir, False)
    state = unix_server_factory(prefix)
    transport = httprs.AsyncHTTPTransport(uds=prefix + "zz")
    async with httprs.AsyncClient(transport=transport) as client:
        with pytest.raises(httprs.ConnectError, match="AF_UNIX path too long"):
            await client.get("http://localhost/")
    assert state["connections"] == 0


def _listener_on_loopback() -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    return listener


def _assert_nothing_connected(listener: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        listener.accept()


def test_uds_empty_address_is_connect_error_not_tcp():
    """uds="" is a Unix socket with an empty address, as httpcore connects it (the kernel
    refuses it: EINVAL), never a TCP connection to the URL's host."""
    with _listener_on_loopback() as listener:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        with httprs.Client(transport=httprs.HTTPTransport(uds="")) as client:
            with pytest.raises(httprs.ConnectError, match="Invalid argument"):
                client.get(url)
        _assert_nothing_connected(listener)


@pytest.mark.anyio
async def test_uds_empty_address_is_connect_error_not_tcp_async():
    with _listener_on_loopback() as listener:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        async with httprs.AsyncClient(transport=httprs.AsyncHTTPTransport(uds="")) as client:
            with pytest.raises(httprs.ConnectError, match="Invalid argument"):
                await client.get(url)
        _assert_nothing_connected(listener)


@pytest.mark.anyio
async def test_uds_async(unix_server):
    path, state = unix_server
    async with httprs.AsyncClient(transport=httprs.AsyncHTTPTransport(uds=path)) as client:
        assert (await client.get("http://localhost/a")).text == "localhost"
        assert (await client.get("http://localhost/b")).text == "localhost"
    assert state["connections"] == 1


def _client_socket_to_path(path: str) -> socket.socket:
    """Our own process's Unix socket connected to `path` (a dup of it)."""
    for name in os.listdir("/proc/self/fd"):
        sock = _socket_of(int(name))
        if sock is None:
            continue
        try:
            if sock.family == socket.AF_UNIX and sock.getpeername() == path:
                return sock
        except OSError:
            pass
        sock.close()
    raise AssertionError(f"no socket connected to {path}")


# Smaller than the defaults (~208 KiB), so only the options can account for them.
_UDS_OPTIONS = [
    (socket.SOL_SOCKET, socket.SO_SNDBUF, 8192),
    (socket.SOL_SOCKET, socket.SO_RCVBUF, 8192),
]


def _assert_uds_options_applied(path: str) -> None:
    sock = _client_socket_to_path(path)
    try:
        # Linux reports twice what was set (its bookkeeping overhead)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * 8192
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * 8192
    finally:
        sock.close()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_uds_with_socket_options_applies_them(unix_server):
    """As httpcore's connect_unix_socket: the options go on the Unix socket; local_address
    has no meaning there and is ignored, as httpx ignores it."""
    path, state = unix_server
    transport = httprs.HTTPTransport(
        uds=path, socket_options=_UDS_OPTIONS, local_address="127.0.0.1"
    )
    with httprs.Client(transport=transport) as client:
        assert client.get("http://localhost/a").text == "localhost"
        _assert_uds_options_applied(path)
        assert client.get("http://localhost/b").text == "localhost"
    assert state["connections"] == 1


@pytest.mark.anyio
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_uds_with_socket_options_applies_them_async(unix_server):
    path, state = unix_server
    transport = httprs.AsyncHTTPTransport(
        uds=path, socket_options=_UDS_OPTIONS, local_address="127.0.0.1"
    )
    async with httprs.AsyncClient(transport=transport) as client:
        assert (await client.get("http://localhost/a")).text == "localhost"
        _assert_uds_options_applied(path)
    assert state["connections"] == 1


def test_uds_socket_option_error_is_connect_error_and_client_recovers(unix_server):
    """An option the kernel refuses fails the connect as httpx's does (ConnectError);
    nothing is left behind and the next transport connects."""
    path, state = unix_server
    bad = [(socket.SOL_SOCKET, 0x7FFF, 1)]
    with httprs.Client(transport=httprs.HTTPTransport(uds=path, socket_options=bad)) as client:
        for _ in range(2):
            with pytest.raises(httprs.ConnectError):
                client.get("http://localhost/")
    assert state["connections"] == 0
    with httprs.Client(transport=httprs.HTTPTransport(uds=path)) as client:
        assert client.get("http://localhost/").text == "localhost"


def _late_listener(delay: float):
    """A port that refuses connections for `delay` seconds, then serves one response."""
    import threading
    import time

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    def serve():
        time.sleep(delay)
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        conn, _ = listener.accept()
        with conn, listener:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nlate")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread


def test_retries_reconnect_until_the_server_listens():
    # httpcore's schedule: retry at once, then after 0.5 s, 1 s: the third retry lands.
    port, thread = _late_listener(0.3)
    with httprs.Client(transport=httprs.HTTPTransport(retries=3)) as client:
        assert client.get(f"http://127.0.0.1:{port}/").text == "late"
    thread.join(5)


def test_without_retries_a_refused_connect_fails():
    port, thread = _late_listener(0.3)
    with httprs.Client() as client:
        with pytest.raises(httprs.ConnectError, match="refused"):
            client.get(f"http://127.0.0.1:{port}/")
    # let the listener come up and serve, so the thread ends
    with httprs.Client(transport=httprs.HTTPTransport(retries=3)) as client:
        client.get(f"http://127.0.0.1:{port}/")
    thread.join(5)


@pytest.mark.anyio
async def test_async_retries():
    port, thread = _late_listener(0.3)
    async with httprs.AsyncClient(transport=httprs.AsyncHTTPTransport(retries=3)) as client:
        assert (await client.get(f"http://127.0.0.1:{port}/")).text == "late"
    thread.join(5)


def _peer_host_handler(conn):
    while conn.read_request() is not None:
        conn.respond(conn.sock.getpeername()[0].encode())


def test_local_address_binds_the_source(scripted):
    srv = scripted(_peer_host_handler)
    transport = httprs.HTTPTransport(local_address="127.0.0.2")
    with httprs.Client(transport=transport) as client:
        assert client.get(srv.url + "/").text == "127.0.0.2"


def test_local_address_family_mismatch_is_connect_error(scripted):
    srv = scripted(_peer_host_handler)
    with httprs.Client(transport=httprs.HTTPTransport(local_address="::")) as client:
        with pytest.raises(httprs.ConnectError, match="local_address"):
            client.get(srv.url + "/")


def test_local_address_with_a_nul_is_refused_not_cut(scripted):
    """As httpx's connect refuses it (TypeError): the core would bind what precedes the
    NUL. Nothing is sent and the client stays usable."""
    srv = scripted(_peer_host_handler)
    bad = httprs.HTTPTransport(local_address="127.0.0.2\x00junk")
    with httprs.Client(transport=bad) as client:
        with pytest.raises(TypeError, match="null character"):
            client.get(srv.url + "/")
    assert srv.connections == 0
    transport = httprs.HTTPTransport(local_address="127.0.0.2")
    with httprs.Client(transport=transport) as client:
        assert client.get(srv.url + "/").text == "127.0.0.2"


@pytest.mark.parametrize("retries", [-1, -5, 0.0, -0.5, float("-inf")])
def test_retries_below_one_retry_nothing(closed_port, retries):
    """httpcore counts retries down and stops at zero or below: one connect, then the
    ConnectError (httprs refused a negative count at construction)."""
    for transport in (
        httprs.HTTPTransport(retries=retries),
        httprs.AsyncHTTPTransport(retries=retries),
    ):
        assert transport is not None
    with httprs.Client(transport=httprs.HTTPTransport(retries=retries)) as client:
        with pytest.raises(httprs.ConnectError):
            client.get(f"http://127.0.0.1:{closed_port}/")


@pytest.mark.httprs_only
def test_retries_none_retries_nothing(closed_port):
    """retries=None (a config value left unset): no retries. httpcore's countdown
    compares None with 0 after the first failed connect and raises TypeError there."""
    with httprs.Client(transport=httprs.HTTPTransport(retries=None)) as client:
        with pytest.raises(httprs.ConnectError):
            client.get(f"http://127.0.0.1:{closed_port}/")


@pytest.mark.parametrize("retries", [decimal.Decimal("2.5"), float("inf"), 10**100, True])
def test_retries_of_any_real_number_are_taken(retries):
    """As httpcore's countdown takes them (inf: retry for ever); only checked here."""
    assert httprs.HTTPTransport(retries=retries) is not None
    assert httprs.AsyncHTTPTransport(retries=retries) is not None


def test_retries_that_are_no_number_are_type_error():
    with pytest.raises(TypeError):
        httprs.Client(transport=httprs.HTTPTransport(retries="1")).get("http://127.0.0.1:9/")


def test_local_address_with_a_nul_is_ignored_over_a_unix_socket(unix_server):
    """httpcore binds no local address for a Unix socket, whatever it holds."""
    path, state = unix_server
    transport = httprs.HTTPTransport(uds=path, local_address="127.0.0.2\x00junk")
    with httprs.Client(transport=transport) as client:
        assert client.get("http://localhost/").text == "localhost"


@pytest.mark.parametrize("value", [5, 1.5, object()])
def test_local_address_of_another_type_is_type_error(value):
    with pytest.raises(TypeError):
        httprs.Client(transport=httprs.HTTPTransport(local_address=value)).get(
            "http://127.0.0.1:9/"
        )


@pytest.mark.parametrize("guarded", [False, True], ids=["core", "socket_guard"])
def test_local_address_bytes_naming_no_address_is_connect_error(monkeypatch, guarded):
    """As httpcore binds them: a ConnectError at the request, also when a replaced
    socket class (a network guard) makes the caller connect."""
    if guarded:

        class Guard(socket.socket):
            pass

        monkeypatch.setattr(socket, "socket", Guard)
    transport = httprs.HTTPTransport(local_address=b"\xff")
    with httprs.Client(transport=transport) as client:
        with pytest.raises(httprs.ConnectError):
            client.get("http://127.0.0.1:9/")


def test_local_address_as_bytes_binds(scripted):
    srv = scripted(_peer_host_handler)
    transport = httprs.HTTPTransport(local_address=b"127.0.0.2")
    with httprs.Client(transport=transport) as client:
        assert client.get(srv.url + "/").text == "127.0.0.2"


# A proxied transport connects to its proxy with the transport's uds=, local_address=
# and retries=, as httpx2 2.17's proxied transports pass them to httpcore2's HTTPProxy
# (httpx 0.28.1 and httpx2 2.16.2 dropped them silently).


def test_proxied_transport_reaches_the_proxy_over_uds(unix_server):
    path, state = unix_server
    transport = httprs.HTTPTransport(proxy="http://proxy.invalid:3128", uds=path)
    with httprs.Client(transport=transport) as client:
        # unix_server answers with the Host it got: the forwarded request's.
        assert client.get("http://example.org/a").text == "example.org"
    assert state["connections"] == 1


@pytest.mark.anyio
async def test_async_proxied_transport_reaches_the_proxy_over_uds(unix_server):
    path, state = unix_server
    transport = httprs.AsyncHTTPTransport(proxy="http://proxy.invalid:3128", uds=path)
    async with httprs.AsyncClient(transport=transport) as client:
        assert (await client.get("http://example.org/a")).text == "example.org"
    assert state["connections"] == 1


def test_proxied_transport_binds_local_address(scripted):
    proxy = scripted(_peer_host_handler)  # answers every request with the peer's address
    transport = httprs.HTTPTransport(proxy=proxy.url, local_address="127.0.0.2")
    with httprs.Client(transport=transport) as client:
        assert client.get("http://example.org/").text == "127.0.0.2"


def test_proxied_transport_retries_the_proxy_connect():
    port, thread = _late_listener(0.3)  # the proxy: refuses for 0.3 s, then answers once
    transport = httprs.HTTPTransport(proxy=f"http://127.0.0.1:{port}", retries=3)
    with httprs.Client(transport=transport) as client:
        assert client.get("http://example.org/").text == "late"
    thread.join(5)


@pytest.mark.anyio
async def test_async_proxied_transport_retries_the_proxy_connect():
    port, thread = _late_listener(0.3)
    transport = httprs.AsyncHTTPTransport(proxy=f"http://127.0.0.1:{port}", retries=3)
    async with httprs.AsyncClient(transport=transport) as client:
        assert (await client.get("http://example.org/")).text == "late"
    thread.join(5)
