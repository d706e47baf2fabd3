"""Guards on Python's sockets decide where connections may go, as they do for httpx.

Test suites block the network by guarding `socket.socket.connect` (pytest-socket's
--allow-hosts, pytest-recording's block_network) or by replacing `socket.socket` with a
class that refuses to be made (pytest-socket's --disable-socket, which also guards
`socket.getaddrinfo`: that part httprs honours, tests/test_resolver.py). httpx connects
through those objects, so the guard raises or lets the connection through. httprs's core
opens its sockets in C++; while such a guard is installed, each new connection a request
needs stops at its connect gate and is opened in Python, through the guarded objects, by
the waiting consumer (sync, asyncio, trio), and the core takes the connected socket over.
Each case is also run on httpx where it can be, so that the behaviour stays the same.
"""

import _socket
import asyncio
import os
import socket
import ssl
import sys
import time
from unittest import mock

import anyio
import httpx
import pytest

import httprs

LIBS = [httpx, httprs]


class Blocked(RuntimeError):
    """What the guards raise (pytest-socket's SocketConnectBlockedError is a RuntimeError)."""


def _holds(error, cls):
    """Whether `error` is a `cls`, or an exception group holding one."""
    return isinstance(error, cls) or any(_holds(e, cls) for e in getattr(error, "exceptions", ()))


def _port(server):
    return int(server.url.rsplit(":", 1)[1])


class _ConnectGuard:
    """socket.socket.connect for the duration: lets `allowed_port` through, records
    every call, and refuses anything else as pytest-socket's guard does (closing the
    socket first)."""

    def __init__(self, allowed_port):
        self.allowed_port = allowed_port
        self.calls = []
        self.real = socket.socket.connect

    def __call__(self, sock, address):
        self.calls.append(address)
        if address[1] != self.allowed_port:
            sock.close()
            raise Blocked(f"A test tried to connect to {address[0]}:{address[1]}.")
        return self.real(sock, address)

    def installed(self):
        def connect(sock, address):  # a function: bound as a method, as the guards' are
            return self(sock, address)

        return mock.patch.object(socket.socket, "connect", connect)


@pytest.mark.parametrize("lib", LIBS, ids=["httpx", "httprs"])
def test_a_connect_guard_decides_each_new_connection(lib, server, server2):
    guard = _ConnectGuard(_port(server))
    with lib.Client() as client:
        with guard.installed():
            for _ in range(3):
                assert client.get(f"{server.url}/echo").status_code == 200
            # One connection, made through the guard, served all three.
            assert guard.calls == [("127.0.0.1", _port(server))]
            with pytest.raises(Blocked, match=str(_port(server2))):
                client.get(f"{server2.url}/echo")
            with pytest.raises(Blocked):  # refused again, not cached as a failure
                client.get(f"{server2.url}/echo")
        # Guard gone: the blocked origin is reached, without the guard asked.
        calls = len(guard.calls)
        assert client.get(f"{server2.url}/echo").status_code == 200
        assert len(guard.calls) == calls


@pytest.mark.parametrize("lib", LIBS, ids=["httpx", "httprs"])
def test_a_connect_guard_sees_a_name_as_its_addresses(lib, server):
    """A host name reaches the guard as the addresses it resolves to."""
    guard = _ConnectGuard(_port(server))
    with lib.Client() as client, guard.installed():
        assert client.get(f"http://localhost:{_port(server)}/echo").status_code in (200,)
    assert guard.calls and all(call[1] == _port(server) for call in guard.calls)
    assert guard.calls[-1][0] in ("127.0.0.1", "::1")


@pytest.mark.parametrize("lib", LIBS, ids=["httpx", "httprs"])
def test_a_socket_class_that_refuses_to_be_made_blocks_connections(lib, server):
    """pytest-socket's --disable-socket: `socket.socket` replaced by a class whose
    __new__ raises (here without its getaddrinfo guard, which tests/test_resolver.py
    covers)."""

    class GuardedSocket(socket.socket):
        def __new__(cls, *args, **kwargs):
            raise Blocked("A test tried to use socket.socket.")

    with lib.Client() as client:
        with mock.patch.object(socket, "socket", GuardedSocket):
            with pytest.raises(Blocked, match="socket.socket"):
                client.get(f"{server.url}/echo")
        assert client.get(f"{server.url}/echo").status_code == 200


@pytest.mark.parametrize("lib", LIBS, ids=["httpx", "httprs"])
def test_a_guarded_connect_that_fails_is_a_connect_error(lib, closed_port):
    def timing_out(sock, address):
        raise socket.timeout("timed out")

    guard = _ConnectGuard(closed_port)  # lets the refused connect through to the kernel
    with lib.Client() as client:
        with guard.installed():
            with pytest.raises(lib.ConnectError):
                client.get(f"http://127.0.0.1:{closed_port}/")
        with mock.patch.object(socket.socket, "connect", timing_out):
            with pytest.raises(lib.ConnectTimeout):
                client.get(f"http://127.0.0.1:{closed_port}/")


def test_a_guarded_connection_gets_the_transports_socket_options(server):
    seen = []
    real = socket.socket.connect

    def guard(sock, address):
        seen.append(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
        seen.append(sock.getsockname()[0])
        return real(sock, address)

    transport = httprs.HTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)], local_address="127.0.0.1"
    )
    with httprs.Client(transport=transport) as client:
        with mock.patch.object(socket.socket, "connect", guard):
            assert client.get(f"{server.url}/echo").status_code == 200
    assert seen == [1, "127.0.0.1"]


@pytest.mark.anyio
async def test_a_connect_guard_decides_each_new_connection_async(server, server2, anyio_backend):
    guard = _ConnectGuard(_port(server))
    async with httprs.AsyncClient() as client:
        with guard.installed():
            for _ in range(3):
                assert (await client.get(f"{server.url}/echo")).status_code == 200
            assert guard.calls == [("127.0.0.1", _port(server))]
            with pytest.raises(Blocked, match=str(_port(server2))):
                await client.get(f"{server2.url}/echo")
        calls = len(guard.calls)
        assert (await client.get(f"{server2.url}/echo")).status_code == 200
        assert len(guard.calls) == calls


def test_a_connect_guard_decides_for_httpx_async_too(server, server2):
    """The asyncio case of the first test, on httpx: what the async twin above pins.
    httpx's anyio connect raises the guard's exception inside an ExceptionGroup (its
    task group); httprs raises it as it is, as httpx's sync client does."""

    async def main():
        guard = _ConnectGuard(_port(server))
        async with httpx.AsyncClient() as client:
            with guard.installed():
                for _ in range(3):
                    assert (await client.get(f"{server.url}/echo")).status_code == 200
                with pytest.raises(Exception) as caught:
                    await client.get(f"{server2.url}/echo")
                assert _holds(caught.value, Blocked), repr(caught.value)
        return guard.calls

    assert asyncio.run(main()) == [("127.0.0.1", _port(server)), ("127.0.0.1", _port(server2))]


@pytest.mark.parametrize("lib", [httpx, httprs], ids=["httpx", "httprs"])
def test_a_mocked_socket_class_fails_the_request_as_with_httpx(lib, process_server):
    """`mock.patch("socket.socket")` (the server runs in a child process: an in-process
    one would accept through the mock): the connection goes through the mock, as httpx's
    does, and fails (httpx: on the mock's recv; httprs: a ConnectError saying the mock
    gave no TCP socket, not taking a MagicMock's "descriptor", 1, for one). It never
    reaches the server behind the mock's back (httprs did until session 33)."""
    with mock.patch("socket.socket") as mocked:
        with lib.Client() as client:
            expected = TypeError if lib is httpx else httprs.ConnectError
            with pytest.raises(expected) as info:
                client.get(f"{process_server.url}/")
    assert mocked.called
    if lib is httprs:
        assert "no TCP socket" in str(info.value)
    assert process_server.stats()["requests"] == 0


@pytest.mark.parametrize("flavour", ["sync", "asyncio"])
def test_an_autospec_socket_mock_is_no_socket(flavour, process_server):
    """`mock.patch("socket.socket", autospec=True)`: its objects pass isinstance checks
    for a socket, and `detach()` gives a mock (1 as a C int): the request fails with the
    ConnectError, and the process's stdout (descriptor 1) stays open."""
    url = f"{process_server.url}/"

    async def fetch():
        with mock.patch("socket.socket", autospec=True):
            async with httprs.AsyncClient() as client:
                await client.get(url)

    with pytest.raises(httprs.ConnectError, match="no TCP socket"):
        if flavour == "sync":
            with mock.patch("socket.socket", autospec=True), httprs.Client() as client:
                client.get(url)
        else:
            asyncio.run(fetch())
    os.fstat(1)  # raises OSError if descriptor 1 was closed
    assert process_server.stats()["requests"] == 0


class _FakeSocket:
    """A Python-level socket (mocket's and httpretty's are of this kind): no subclass of
    the standard class; answers every request with a canned response."""

    made = []

    def __init__(self, family=socket.AF_INET, type=socket.SOCK_STREAM, proto=0, fileno=None):
        self._out = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nMOCKED"
        self._pair = _socket.socketpair()  # a real descriptor, as mocket hands out
        _FakeSocket.made.append(self)

    def fileno(self):
        return self._pair[0].fileno()

    def connect(self, address):
        pass

    def settimeout(self, timeout):
        pass

    def setblocking(self, flag):
        pass

    def setsockopt(self, *args):
        pass

    def sendall(self, data, *args):
        pass

    def recv(self, n, *args):
        out, self._out = self._out[:n], self._out[n:]
        return out

    def close(self):
        for end in self._pair:
            end.close()


@pytest.mark.parametrize("flavour", ["sync", "asyncio", "trio"])
def test_a_fake_socket_class_is_never_bypassed(flavour, process_server):
    """A Python-level socket class in `socket.socket`'s place (mocket, httpretty): httpx
    sends through it; httprs's core cannot, so the request fails with a ConnectError that
    says so, and never opens a connection of its own to the real server (until session
    33 it did: a suite that believed itself hermetic reached the network)."""
    url = f"{process_server.url}/"
    _FakeSocket.made.clear()

    async def fetch():
        # Patched once the loop runs: trio makes its own socketpair through socket.socket.
        with mock.patch("socket.socket", _FakeSocket):
            async with httprs.AsyncClient() as client:
                await client.get(url)

    with pytest.raises(httprs.ConnectError, match="no TCP socket httprs can send through"):
        if flavour == "sync":
            with mock.patch("socket.socket", _FakeSocket), httprs.Client() as client:
                client.get(url)
        else:
            anyio.run(fetch, backend=flavour)
    assert _FakeSocket.made
    for fake in _FakeSocket.made:
        fake.close()
    assert process_server.stats()["requests"] == 0


def _closing_after_each_response(conn):
    """A server that answers keep-alive and then closes: every request needs a new
    connection (found closed in the pool, or failing when reused)."""
    if conn.read_request() is not None:
        conn.respond(b"ok")
        conn.close()


def _open_fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("lib", LIBS, ids=["httpx", "httprs"])
def test_every_new_connection_goes_through_the_guard(lib, scripted):
    """Not only a request's first: a pooled connection found closed, and one that
    expired at once (keepalive_expiry=0), are each replaced through the guard."""
    srv = scripted(_closing_after_each_response)
    guard = _ConnectGuard(srv.port)
    with lib.Client() as client, guard.installed():
        for _ in range(3):
            assert client.get(srv.url).text == "ok"
            time.sleep(0.05)  # the server's close arrives before the next request
    assert guard.calls == [("127.0.0.1", srv.port)] * 3
    assert srv.connections == 3


@pytest.mark.parametrize("lib", LIBS, ids=["httpx", "httprs"])
def test_expired_connections_are_replaced_through_the_guard(lib, server):
    guard = _ConnectGuard(_port(server))
    limits = lib.Limits(keepalive_expiry=0)
    with lib.Client(limits=limits) as client, guard.installed():
        for _ in range(3):
            assert client.get(f"{server.url}/echo").status_code == 200
    assert guard.calls == [("127.0.0.1", _port(server))] * 3


@pytest.mark.parametrize("lib", LIBS, ids=["httpx", "httprs"])
def test_connect_retries_go_through_the_guard(lib, closed_port):
    guard = _ConnectGuard(closed_port)  # lets each attempt reach the kernel: refused
    transport = lib.HTTPTransport(retries=1)
    with lib.Client(transport=transport) as client, guard.installed():
        with pytest.raises(lib.ConnectError, match="refused"):
            client.get(f"http://127.0.0.1:{closed_port}/")
    assert guard.calls == [("127.0.0.1", closed_port)] * 2


@pytest.mark.parametrize("lib", LIBS, ids=["httpx", "httprs"])
def test_a_patched_getaddrinfo_is_asked_once_per_guarded_connection(lib, server):
    asked = []
    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        asked.append(host)
        return real("127.0.0.1" if host == "guarded.test" else host, port, *args, **kwargs)

    guard = _ConnectGuard(_port(server))
    with lib.Client() as client, guard.installed():
        with mock.patch.object(socket, "getaddrinfo", resolve):
            response = client.get(f"http://guarded.test:{_port(server)}/echo")
    assert dict(response.json()["headers"])["host"] == f"guarded.test:{_port(server)}"
    assert asked == ["guarded.test"]
    assert guard.calls == [("127.0.0.1", _port(server))]


@pytest.mark.parametrize("lib", LIBS, ids=["httpx", "httprs"])
def test_a_guarded_request_reports_the_trace_events_httpx_does(lib, server):
    events = []
    guard = _ConnectGuard(_port(server))
    with lib.Client() as client, guard.installed():
        client.get(
            f"{server.url}/echo", extensions={"trace": lambda name, info: events.append(name)}
        )
    assert events[:2] == ["connection.connect_tcp.started", "connection.connect_tcp.complete"]
    assert events[-2:] == ["http11.response_closed.started", "http11.response_closed.complete"]
    assert len(guard.calls) == 1


@pytest.mark.parametrize("lib", LIBS, ids=["httpx", "httprs"])
def test_a_guarded_https_connection_verifies_as_usual(lib, https_server, certs):
    guard = _ConnectGuard(https_server.port)
    verified = ssl.create_default_context(cafile=certs.ca_file)
    with guard.installed():
        with lib.Client(verify=verified) as client:
            for _ in range(2):
                assert client.get(https_server.url).status_code == 200
        with lib.Client(verify=ssl.create_default_context(cafile=certs.other_ca_file)) as client:
            with pytest.raises(lib.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                client.get(https_server.url)
    assert guard.calls == [("127.0.0.1", https_server.port)] * 2


def test_refused_guarded_connects_leave_no_descriptor_open(server, server2):
    guard = _ConnectGuard(_port(server))
    with httprs.Client() as client, guard.installed():
        client.get(f"{server.url}/echo")  # (the pool's own descriptors exist from here)
        before = _open_fds()
        for _ in range(20):
            with pytest.raises(Blocked):
                client.get(f"{server2.url}/echo")
        assert _open_fds() == before
        assert client.get(f"{server.url}/echo").status_code == 200


@pytest.mark.anyio
async def test_guarded_connects_async(server, https_server, certs, closed_port, anyio_backend):
    """asyncio's sock_connect and trio's socket connect go through the guard: each
    new connection, TLS over it, a refused connect's retry, a timeout."""
    guard = _ConnectGuard(_port(server))
    with guard.installed():
        async with httprs.AsyncClient(limits=httprs.Limits(keepalive_expiry=0)) as client:
            for _ in range(2):
                assert (await client.get(f"{server.url}/echo")).status_code == 200
        assert guard.calls == [("127.0.0.1", _port(server))] * 2
        guard.allowed_port = https_server.port
        verified = ssl.create_default_context(cafile=certs.ca_file)
        async with httprs.AsyncClient(verify=verified) as client:
            assert (await client.get(https_server.url)).status_code == 200
        guard.allowed_port = closed_port
        transport = httprs.AsyncHTTPTransport(retries=1)
        async with httprs.AsyncClient(transport=transport) as client:
            with pytest.raises(httprs.ConnectError):
                await client.get(f"http://127.0.0.1:{closed_port}/")
    assert guard.calls[3:] == [("127.0.0.1", closed_port)] * 2

    def timing_out(sock, address):
        raise socket.timeout("timed out")

    async with httprs.AsyncClient() as client:
        with mock.patch.object(socket.socket, "connect", timing_out):
            with pytest.raises(httprs.ConnectTimeout):
                await client.get(f"{server.url}/echo")
        assert (await client.get(f"{server.url}/echo")).status_code == 200


@pytest.mark.anyio
async def test_a_cancelled_guarded_connect_leaves_the_pool_usable(server, anyio_backend):
    """Cancelled while the guarded connection is being opened (here in a slow
    getaddrinfo): the connection waiting for it is dropped, its pool slot freed."""
    real = socket.getaddrinfo

    def slow(host, port, *args, **kwargs):
        time.sleep(0.3)
        return real("127.0.0.1" if host == "guarded.test" else host, port, *args, **kwargs)

    guard = _ConnectGuard(_port(server))
    limits = httprs.Limits(max_connections=1)
    timeout = httprs.Timeout(5, pool=2)
    # A name: on asyncio an IP literal is connected to without getaddrinfo (as anyio).
    url = f"http://guarded.test:{_port(server)}/echo"
    async with httprs.AsyncClient(limits=limits, timeout=timeout) as client:
        with guard.installed():
            with mock.patch.object(socket, "getaddrinfo", slow):
                with anyio.move_on_after(0.05) as scope:
                    await client.get(url)
                assert scope.cancelled_caught
                assert (await client.get(url)).status_code == 200


@pytest.mark.anyio
async def test_a_socket_class_that_refuses_to_be_made_blocks_async_connections(
    server, anyio_backend
):
    class GuardedSocket(socket.socket):
        def __new__(cls, *args, **kwargs):
            raise Blocked("A test tried to use socket.socket.")

    async with httprs.AsyncClient() as client:
        with mock.patch.object(socket, "socket", GuardedSocket):
            with pytest.raises(Blocked, match="socket.socket"):
                await client.get(f"{server.url}/echo")
        assert (await client.get(f"{server.url}/echo")).status_code == 200


@pytest.mark.parametrize("lib", LIBS, ids=["httpx", "httprs"])
@pytest.mark.parametrize("library", ["asyncio", "trio"])
def test_a_guarded_async_connect_asks_getaddrinfo_where_httpx_does(lib, server, library):
    """Guarded (socket.socket and socket.getaddrinfo both refusing, as pytest-socket's
    --disable-socket): on asyncio httpx's anyio connect makes the socket for an IP
    literal without asking getaddrinfo, so the socket guard is what stops it; on trio
    getaddrinfo is asked first. A name asks getaddrinfo on both."""

    class GuardedSocket(socket.socket):
        def __new__(cls, *args, **kwargs):
            raise Blocked("A test tried to use socket.socket.")

    def refuse(*args, **kwargs):
        raise Blocked("A test tried to use socket.getaddrinfo.")

    async def attempt(host):
        async with lib.AsyncClient() as client:
            with mock.patch.object(socket, "socket", GuardedSocket):
                with mock.patch.object(socket, "getaddrinfo", refuse):
                    try:
                        await client.get(f"http://{host}:{_port(server)}/")
                    except BaseException as error:  # (httpx: an ExceptionGroup on asyncio)
                        return error
        raise AssertionError("not blocked")

    def blocked_by(host):
        error = anyio.run(attempt, host, backend=library)
        return [part for part in ("socket.socket", "socket.getaddrinfo") if part in repr(error)]

    assert blocked_by("127.0.0.1") == [
        "socket.socket" if library == "asyncio" else "socket.getaddrinfo"
    ]
    assert blocked_by("localhost") == ["socket.getaddrinfo"]


@pytest.mark.parametrize("lib", LIBS, ids=["httpx", "httprs"])
def test_a_guarded_http2_connection_serves_its_requests(lib, hypercorn_tls, certs):
    guard = _ConnectGuard(_port(hypercorn_tls))
    verified = ssl.create_default_context(cafile=certs.ca_file)
    with lib.Client(http2=True, verify=verified) as client, guard.installed():
        versions = [client.get(f"{hypercorn_tls.url}/echo").http_version for _ in range(3)]
    assert versions == ["HTTP/2"] * 3
    assert guard.calls == [("127.0.0.1", _port(hypercorn_tls))]


def _late_tunnel(conn):
    """A proxy that answers CONNECT after 0.2 s, then stays silent (no TLS behind)."""
    if conn.read_request(body=False) is not None:
        time.sleep(0.2)
        conn.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
        conn.hold()  # until the client closes, or the test ends


@pytest.mark.parametrize("mode", ["guard", "trace"])
@pytest.mark.anyio
async def test_a_request_cancelled_in_its_tunnel_leaves_no_connection_behind(
    mode, scripted, anyio_backend
):
    """Cancelled while its CONNECT is under way, the request leaves the connection to
    finish for the pool; its later gates (the TLS one here) are passed without it, so
    the handshake's connect timeout ends it, instead of a gate nobody passes holding
    the pool's only slot for ever (the next request: PoolTimeout)."""
    proxy = scripted(_late_tunnel)
    trace = {"trace": lambda name, info: anyio.sleep(0)} if mode == "trace" else None
    guard = _ConnectGuard(proxy.port)
    limits = httprs.Limits(max_connections=1)
    timeout = httprs.Timeout(5, connect=0.4, pool=2)
    async with httprs.AsyncClient(proxy=proxy.url, limits=limits, timeout=timeout) as client:
        with guard.installed() if mode == "guard" else mock.patch.object(guard, "calls", []):
            with anyio.move_on_after(0.1):
                await client.get("https://127.0.0.1:9/", extensions=trace)
            await anyio.sleep(0.3)  # the tunnel is answered meanwhile
            with pytest.raises(httprs.ConnectTimeout):
                await client.get("https://127.0.0.1:9/", extensions=trace)
    assert proxy.connections == 2


def test_the_socket_class_given_its_own_connect_back_is_no_guard(server):
    """pytest-socket, after every test, stores the inherited connect on socket.socket
    (`socket.socket.connect = _true_connect`): no guard, so the core connects (no
    Python connect: no "socket.connect" audit event); a real guard is still seen."""
    connects = []
    listening = []

    def hook(event, args):
        if listening and event == "socket.connect":
            connects.append(args[1])

    sys.addaudithook(hook)  # (stays for the session: it records only while listening)
    with mock.patch.object(socket.socket, "connect", _socket.socket.connect):
        with mock.patch.object(socket.socket, "connect_ex", _socket.socket.connect_ex):
            listening.append(True)
            with httprs.Client() as client:
                assert client.get(f"{server.url}/echo").status_code == 200
            listening.clear()
    assert connects == []
    with _ConnectGuard(_port(server)).installed():
        listening.append(True)
        with httprs.Client() as client:
            assert client.get(f"{server.url}/echo").status_code == 200
        listening.clear()
    assert connects == [("127.0.0.1", _port(server))]


@pytest.mark.parametrize("lib", LIBS, ids=["httpx", "httprs"])
def test_a_socket_that_cannot_be_made_for_an_address_moves_on_to_the_next(lib, server):
    """As socket.create_connection: an OSError making the socket for one address (no
    IPv6 in the kernel, too many open files) tries the next address."""
    real = socket.getaddrinfo

    def both_families(host, port, *args, **kwargs):
        v4 = real("127.0.0.1", port, socket.AF_INET, socket.SOCK_STREAM)
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)), *v4]

    class NoIPv6(socket.socket):
        def __init__(self, family=-1, *args, **kwargs):
            if family == socket.AF_INET6:
                raise OSError(97, "Address family not supported by protocol")
            super().__init__(family, *args, **kwargs)

    with lib.Client() as client:
        with mock.patch.object(socket, "getaddrinfo", both_families):
            with mock.patch.object(socket, "socket", NoIPv6):
                response = client.get(f"http://guarded.test:{_port(server)}/echo")
    assert response.status_code == 200


@pytest.mark.parametrize("lib", LIBS, ids=["httpx", "httprs"])
def test_a_function_in_place_of_the_socket_class_guards_it(lib, server):
    def refuse(*args, **kwargs):
        raise Blocked("A test tried to use socket.socket.")

    with lib.Client() as client:
        with mock.patch.object(socket, "socket", refuse):
            with pytest.raises(Blocked):
                client.get(f"{server.url}/echo")
        assert client.get(f"{server.url}/echo").status_code == 200


@pytest.mark.parametrize("lib", LIBS, ids=["httpx", "httprs"])
def test_a_replaced_create_connection_decides_sync_connections(lib, server, server2):
    """httpcore's sync connect calls socket.create_connection: a replacement decides."""
    calls = []
    real = socket.create_connection

    def create_connection(address, *args, **kwargs):
        calls.append(address)
        if address[1] != _port(server):
            raise Blocked(f"A test tried to connect to {address}")
        return real(address, *args, **kwargs)

    with lib.Client() as client:
        with mock.patch.object(socket, "create_connection", create_connection):
            assert client.get(f"{server.url}/echo").status_code == 200
            with pytest.raises(Blocked):
                client.get(f"{server2.url}/echo")
    assert calls == [("127.0.0.1", _port(server)), ("127.0.0.1", _port(server2))]


class _Wrapped:
    """What some guards return: an object around the real socket, not a socket."""

    def __init__(self, sock):
        self._sock = sock

    def __getattr__(self, name):
        return getattr(self._sock, name)


@pytest.mark.parametrize("lib", LIBS, ids=["httpx", "httprs"])
def test_a_wrapped_socket_from_a_replaced_create_connection_is_used(lib, server):
    real = socket.create_connection
    made = []

    def create_connection(*args, **kwargs):
        made.append(_Wrapped(real(*args, **kwargs)))
        return made[-1]

    with lib.Client() as client:
        with mock.patch.object(socket, "create_connection", create_connection):
            assert client.get(f"{server.url}/echo").status_code == 200
            assert client.get(f"{server.url}/echo").status_code == 200
    assert len(made) == 1
    assert made[0]._sock.fileno() == -1  # closed (httprs: its duplicate descriptor is used)


@pytest.mark.parametrize("lib", LIBS, ids=["httpx", "httprs"])
def test_a_replaced_create_connection_is_not_met_by_async_clients(lib, server):
    """httpcore's async backends never call socket.create_connection."""
    calls = []
    real = socket.create_connection

    def create_connection(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    async def main():
        async with lib.AsyncClient() as client:
            return (await client.get(f"{server.url}/echo")).status_code

    with mock.patch.object(socket, "create_connection", create_connection):
        assert asyncio.run(main()) == 200
    assert calls == []


@pytest.mark.parametrize("mode", ["guard", "trace"])
def test_a_traced_async_client_moves_to_a_new_event_loop(mode, scripted):
    """Each run needs a new connection (the server closes after each response): its
    trace gates are passed in a loop other than the one the client's driver was last
    attached to (closed since), or under trio, without touching that old loop."""
    import trio

    srv = scripted(_closing_after_each_response)
    guard = _ConnectGuard(srv.port)
    trace = {"trace": lambda name, info: anyio.sleep(0)} if mode == "trace" else None
    client = httprs.AsyncClient()

    async def use():
        return (await client.get(srv.url, extensions=trace)).text

    with guard.installed() if mode == "guard" else mock.patch.object(guard, "calls", []):
        assert [asyncio.run(use()), asyncio.run(use()), trio.run(use)] == ["ok"] * 3
        asyncio.run(client.aclose())
    assert srv.connections == 3
