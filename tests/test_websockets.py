"""The `network_stream` response extension (a requested 101 Switching Protocols hands
the connection to the response) and WebSockets over it: httprs.websockets (httpx2's
API), client.websocket(), and httpx-ws through the switch."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import httpcore
import pytest

import httprs

UPGRADE = {"Upgrade": "testproto", "Connection": "Upgrade"}
SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: testproto\r\nConnection: Upgrade\r\n\r\n"


# ------------------------------------------------------------------ raw network_stream


def switch_then(after):
    """A server answering the upgrade with SWITCH, then running `after(conn)`."""

    def handler(conn):
        if conn.read_request() is None:
            return
        after(conn)

    return handler


def echo(early: bytes = b""):
    """After the 101 (and `early`, sent in the same segment): echo until EOF."""

    def after(conn):
        conn.send(SWITCH + early)
        while True:
            try:
                data = conn.sock.recv(65536)
            except OSError:
                return
            if not data:
                conn.close()
                return
            conn.send(data)

    return switch_then(after)


def read_exact(stream, n, timeout=5):
    out = b""
    while len(out) < n:
        chunk = stream.read(n - len(out), timeout=timeout)
        assert chunk, "unexpected end of stream"
        out += chunk
    return out


async def aread_exact(stream, n, timeout=5):
    out = b""
    while len(out) < n:
        chunk = await stream.read(n - len(out), timeout=timeout)
        assert chunk, "unexpected end of stream"
        out += chunk
    return out


def test_network_stream_echo_after_101(scripted):
    srv = scripted(echo(b"early-bytes"))
    with httprs.Client(timeout=5) as client:
        with client.stream("GET", srv.url + "/up", headers=UPGRADE) as r:
            assert r.status_code == 101
            stream = r.extensions["network_stream"]
            # The bytes that came with the 101 head come first, before anything is sent.
            assert read_exact(stream, 11) == b"early-bytes"
            stream.write(b"ping")
            assert read_exact(stream, 4) == b"ping"
            stream.write(bytearray(b"x" * 100_000))
            assert read_exact(stream, 100_000) == b"x" * 100_000
            stream.close()
        # The switched connection never went back to the pool.
        assert client._transport._pool_stats()["connections"] == 0


@pytest.mark.anyio
async def test_network_stream_echo_after_101_async(scripted):
    srv = scripted(echo(b"early-bytes"))
    async with httprs.AsyncClient(timeout=5) as client:
        async with client.stream("GET", srv.url + "/up", headers=UPGRADE) as r:
            assert r.status_code == 101
            stream = r.extensions["network_stream"]
            assert await aread_exact(stream, 11) == b"early-bytes"
            await stream.write(b"ping")
            assert await aread_exact(stream, 4) == b"ping"
            await stream.write(b"y" * 100_000)
            assert await aread_exact(stream, 100_000) == b"y" * 100_000
            await stream.aclose()
        assert client._transport._pool_stats()["connections"] == 0


def test_network_stream_large_burst_resumes_reading(scripted):
    """More than the 1 MiB read-ahead arrives at once: reading pauses and resumes."""
    payload = bytes(range(256)) * (3 * 4096 + 7)

    def after(conn):
        conn.send(SWITCH + payload)
        conn.wait_eof(10)

    srv = scripted(switch_then(after))
    with httprs.Client(timeout=5) as client:
        with client.stream("GET", srv.url + "/up", headers=UPGRADE) as r:
            stream = r.extensions["network_stream"]
            time.sleep(0.2)
            assert read_exact(stream, len(payload)) == payload


def test_network_stream_read_timeout(scripted):
    def after(conn):
        conn.send(SWITCH)
        conn.hold(5)

    srv = scripted(switch_then(after))
    with httprs.Client(timeout=5) as client:
        with client.stream("GET", srv.url + "/up", headers=UPGRADE) as r:
            stream = r.extensions["network_stream"]
            start = time.monotonic()
            with pytest.raises(httprs.ReadTimeout) as info:
                stream.read(10, timeout=0.2)
            assert time.monotonic() - start < 3
            # Code written for httpcore's streams catches httpcore's class.
            assert isinstance(info.value, httpcore.ReadTimeout)
            # A timed-out stream is closed.
            with pytest.raises(httprs.ReadError):
                stream.read(10)


@pytest.mark.anyio
async def test_network_stream_read_timeout_async(scripted):
    def after(conn):
        conn.send(SWITCH)
        conn.hold(5)

    srv = scripted(switch_then(after))
    async with httprs.AsyncClient(timeout=5) as client:
        async with client.stream("GET", srv.url + "/up", headers=UPGRADE) as r:
            stream = r.extensions["network_stream"]
            start = time.monotonic()
            with pytest.raises(httprs.ReadTimeout) as info:
                await stream.read(10, timeout=0.2)
            assert time.monotonic() - start < 3
            assert isinstance(info.value, httpcore.ReadTimeout)


def test_network_stream_server_eof_reads_empty(scripted):
    def after(conn):
        conn.send(SWITCH + b"last")
        conn.close()

    srv = scripted(switch_then(after))
    with httprs.Client(timeout=5) as client:
        with client.stream("GET", srv.url + "/up", headers=UPGRADE) as r:
            stream = r.extensions["network_stream"]
            assert read_exact(stream, 4) == b"last"
            assert stream.read(10, timeout=5) == b""
            assert stream.read(10, timeout=5) == b""


@pytest.mark.anyio
async def test_network_stream_server_eof_reads_empty_async(scripted):
    def after(conn):
        conn.send(SWITCH + b"last")
        conn.close()

    srv = scripted(switch_then(after))
    async with httprs.AsyncClient(timeout=5) as client:
        async with client.stream("GET", srv.url + "/up", headers=UPGRADE) as r:
            stream = r.extensions["network_stream"]
            assert await aread_exact(stream, 4) == b"last"
            assert await stream.read(10, timeout=5) == b""


def test_network_stream_close_reaches_server(scripted):
    eof = []

    def after(conn):
        conn.send(SWITCH)
        eof.append(conn.wait_eof(5))

    srv = scripted(switch_then(after))
    with httprs.Client(timeout=5) as client:
        with client.stream("GET", srv.url + "/up", headers=UPGRADE) as r:
            stream = r.extensions["network_stream"]
            stream.close()
            with pytest.raises(httprs.ReadError):
                stream.read(10)
            with pytest.raises(httprs.WriteError) as info:
                stream.write(b"more")
            assert isinstance(info.value, httpcore.WriteError)
            stream.close()  # idempotent
    srv.close()
    assert eof == [True]


def test_network_stream_close_wakes_blocked_reader(scripted):
    """Another thread closing the stream ends a read blocked in it (the sync
    WebSocket session reads in a background thread)."""

    def after(conn):
        conn.send(SWITCH)
        conn.hold(5)

    srv = scripted(switch_then(after))
    errors = []
    with httprs.Client(timeout=5) as client:
        with client.stream("GET", srv.url + "/up", headers=UPGRADE) as r:
            stream = r.extensions["network_stream"]

            def reader():
                try:
                    stream.read(10)
                except Exception as e:  # noqa: BLE001
                    errors.append(e)

            thread = threading.Thread(target=reader)
            thread.start()
            time.sleep(0.2)
            stream.close()
            thread.join(5)
            assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], httprs.ReadError)


def test_network_stream_extra_info(scripted):
    def after(conn):
        conn.send(SWITCH)
        conn.hold(2)

    srv = scripted(switch_then(after))
    with httprs.Client(timeout=5) as client:
        with client.stream("GET", srv.url + "/up", headers=UPGRADE) as r:
            stream = r.extensions["network_stream"]
            server_addr = stream.get_extra_info("server_addr")
            assert server_addr == ("127.0.0.1", srv.port)
            client_addr = stream.get_extra_info("client_addr")
            assert client_addr[0] == "127.0.0.1" and client_addr[1] != srv.port
            sock = stream.get_extra_info("socket")
            assert isinstance(sock, socket.socket)
            assert sock.getpeername() == server_addr
            assert stream.get_extra_info("ssl_object") is None
            assert stream.get_extra_info("is_readable") is False
            assert stream.get_extra_info("something else") is None
            with pytest.raises(NotImplementedError):
                stream.start_tls(None)


def test_network_stream_over_tls(scripted, certs):
    """wss-like: the raw stream runs through the TLS session; ssl_object reports it;
    bytes waiting make is_readable True."""
    from servers.tls import server_context

    def after(conn):
        conn.send(SWITCH + b"tls-early")
        data = conn.sock.recv(100)
        conn.send(data.upper())
        conn.wait_eof(5)

    srv = scripted(switch_then(after), ssl_context=server_context(certs.server))
    with httprs.Client(
        verify=ssl.create_default_context(cafile=certs.ca_file), timeout=5
    ) as client:
        url = srv.url.replace("https://", "wss://") + "/up"
        with client.stream("GET", url, headers=UPGRADE) as r:
            stream = r.extensions["network_stream"]
            deadline = time.monotonic() + 5
            while not stream.get_extra_info("is_readable") and time.monotonic() < deadline:
                time.sleep(0.01)
            assert stream.get_extra_info("is_readable") is True
            assert read_exact(stream, 9) == b"tls-early"
            tls = stream.get_extra_info("ssl_object")
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            stream.write(b"secret")
            assert read_exact(stream, 6) == b"SECRET"


def test_only_101_responses_carry_network_stream(scripted):
    def handler(conn):
        while conn.read_request() is not None:
            conn.respond(b"ok")

    srv = scripted(handler)
    with httprs.Client(timeout=5) as client:
        r = client.get(srv.url + "/")
        assert "network_stream" not in r.extensions
