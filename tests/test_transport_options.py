"""HTTPTransport(socket_options=...) applies every option to each new socket."""

from __future__ import annotations

import os
import socket

import pytest

import httprs


def _client_socket_for_port(local_port: int) -> socket.socket:
    """Our own process's socket whose local port is `local_port` (a dup of it)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
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
