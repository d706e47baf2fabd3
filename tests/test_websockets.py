"""The `network_stream` response extension (a requested 101 Switching Protocols hands
the connection to the response) and WebSockets over it: httprs.websockets (httpx2's
API), client.websocket(), and httpx-ws through the switch."""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time
import types
from unittest import mock

import httpcore
import pytest
from servers.app import UvicornThread
from servers.wsapp import app as ws_app

import httprs
from httprs.websockets import (
    ASGIWebSocketTransport,
    WebSocketDisconnect,
    WebSocketInvalidTypeReceived,
    WebSocketNetworkError,
    WebSocketUpgradeError,
)
from httprs.websockets._session import _ACCEPT_GUID

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
    """A read that timed out took nothing: the stream goes on, as httpcore's does (a
    TLS session over it, start_tls, needs that: its records stay whole)."""

    def after(conn):
        conn.send(SWITCH)
        time.sleep(0.6)
        conn.send(b"later")
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
            assert read_exact(stream, 5) == b"later"
            stream.write(b"still open")


@pytest.mark.anyio
async def test_network_stream_read_timeout_async(scripted):
    def after(conn):
        conn.send(SWITCH)
        time.sleep(0.6)
        conn.send(b"later")
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
            assert await aread_exact(stream, 5) == b"later"


def test_network_stream_write_timeout(scripted):
    """A peer that stops reading: a write bigger than the socket buffers times out."""

    def after(conn):
        conn.send(SWITCH)
        conn.hold_no_read(10)

    srv = scripted(switch_then(after))
    with httprs.Client(timeout=5) as client:
        with client.stream("GET", srv.url + "/up", headers=UPGRADE) as r:
            stream = r.extensions["network_stream"]
            start = time.monotonic()
            with pytest.raises(httprs.WriteTimeout) as info:
                stream.write(b"w" * (64 << 20), timeout=0.3)
            assert time.monotonic() - start < 5
            assert isinstance(info.value, httpcore.WriteTimeout)
    srv.close()


@pytest.mark.anyio
async def test_network_stream_write_timeout_async(scripted):
    def after(conn):
        conn.send(SWITCH)
        conn.hold_no_read(10)

    srv = scripted(switch_then(after))
    async with httprs.AsyncClient(timeout=5) as client:
        async with client.stream("GET", srv.url + "/up", headers=UPGRADE) as r:
            stream = r.extensions["network_stream"]
            start = time.monotonic()
            with pytest.raises(httprs.WriteTimeout):
                await stream.write(b"w" * (64 << 20), timeout=0.3)
            assert time.monotonic() - start < 5
    srv.close()


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
            # getpeercert() as ssl.SSLObject's: DER, and the verified certificate's fields
            server_pem = certs.server.cert_chain_pems[0].bytes().decode("ascii")
            assert tls.getpeercert(binary_form=True) == ssl.PEM_cert_to_DER_cert(server_pem)
            assert ("DNS", "localhost") in tls.getpeercert()["subjectAltName"]
            stream.write(b"secret")
            assert read_exact(stream, 6) == b"SECRET"


@pytest.mark.httprs_only
def test_only_101_responses_give_raw_io_on_network_stream(scripted):
    # Other responses name their connection (tests/test_netstream_info.py), whose
    # bytes belong to the pool: no raw reads or writes there.
    def handler(conn):
        while conn.read_request() is not None:
            conn.respond(b"ok")

    srv = scripted(handler)
    with httprs.Client(timeout=5) as client:
        r = client.get(srv.url + "/")
        stream = r.extensions["network_stream"]
        with pytest.raises(NotImplementedError, match="switched protocols"):
            stream.read(10)
        with pytest.raises(NotImplementedError, match="switched protocols"):
            stream.write(b"x")
        assert client.get(srv.url + "/").text == "ok"


# ------------------------------------------------------------------ WebSocket sessions


@pytest.fixture(scope="module")
def ws_server():
    srv = UvicornThread(ws_app, ws="wsproto").start()
    srv.ws_url = srv.url.replace("http://", "ws://")
    yield srv
    srv.stop()


def test_websocket_echo_text_bytes_json(ws_server):
    with httprs.Client(timeout=5) as client:
        with client.websocket(ws_server.ws_url + "/echo") as ws:
            ws.send_text("hello")
            assert ws.receive_text(timeout=5) == "hello"
            ws.send_bytes(b"\x00\x01binary")
            assert ws.receive_bytes(timeout=5) == b"\x00\x01binary"
            ws.send_json({"a": [1, 2]})
            assert ws.receive_json(timeout=5) == {"a": [1, 2]}
            ws.send_json({"b": 3}, mode="binary")
            assert ws.receive_json(timeout=5, mode="binary") == {"b": 3}
            big = "x" * 60_000
            ws.send_text(big)
            assert ws.receive_text(timeout=5) == big
            ws.send_text("text, not bytes")
            with pytest.raises(WebSocketInvalidTypeReceived):
                ws.receive_bytes(timeout=5)
            assert ws.response.status_code == 101
            assert ws.subprotocol is None


@pytest.mark.anyio
async def test_websocket_echo_text_bytes_json_async(ws_server):
    async with httprs.AsyncClient(timeout=5) as client:
        async with client.websocket(ws_server.ws_url + "/echo") as ws:
            await ws.send_text("hello")
            assert await ws.receive_text(timeout=5) == "hello"
            await ws.send_bytes(b"\x00\x01binary")
            assert await ws.receive_bytes(timeout=5) == b"\x00\x01binary"
            await ws.send_json({"a": [1, 2]})
            assert await ws.receive_json(timeout=5) == {"a": [1, 2]}
            big = "x" * 60_000
            await ws.send_text(big)
            assert await ws.receive_text(timeout=5) == big
            await ws.send_bytes(b"bytes, not text")
            with pytest.raises(WebSocketInvalidTypeReceived):
                await ws.receive_text(timeout=5)


def test_websocket_ping_pong(ws_server):
    with httprs.Client(timeout=5) as client:
        with client.websocket(ws_server.ws_url + "/echo") as ws:
            assert ws.ping().wait(5)
            assert ws.ping(b"my-payload").wait(5)


@pytest.mark.anyio
async def test_websocket_ping_pong_async(ws_server):
    import anyio

    async with httprs.AsyncClient(timeout=5) as client:
        async with client.websocket(ws_server.ws_url + "/echo") as ws:
            waiter = await ws.ping()
            with anyio.fail_after(5):
                await waiter.wait()


def test_websocket_close_code_from_server(ws_server):
    with httprs.Client(timeout=5) as client:
        with client.websocket(ws_server.ws_url + "/echo") as ws:
            ws.send_text("close:4002")
            with pytest.raises(WebSocketDisconnect) as info:
                ws.receive_text(timeout=5)
            assert (info.value.code, info.value.reason) == (4002, "bye")
            # The session stays ended.
            with pytest.raises(WebSocketDisconnect):
                ws.receive(timeout=5)


@pytest.mark.anyio
async def test_websocket_close_code_from_server_async(ws_server):
    async with httprs.AsyncClient(timeout=5) as client:
        async with client.websocket(ws_server.ws_url + "/echo") as ws:
            await ws.send_text("close:4003")
            with pytest.raises(WebSocketDisconnect) as info:
                await ws.receive_text(timeout=5)
            assert (info.value.code, info.value.reason) == (4003, "bye")


def test_websocket_server_closes_after_message(ws_server):
    with httprs.Client(timeout=5) as client:
        with client.websocket(ws_server.ws_url + "/server-close") as ws:
            assert ws.receive_text(timeout=5) == "bye"
            with pytest.raises(WebSocketDisconnect) as info:
                ws.receive_text(timeout=5)
            assert (info.value.code, info.value.reason) == (4001, "done")


def test_sync_session_threads_live_as_long_as_the_session(ws_server):
    """The reader thread stays until the session closes, also after the server ended
    it (as httpx2's session threads do: its suite counts them inside the block), and
    none is left after the block."""
    before = set(threading.enumerate())
    with httprs.Client(timeout=5) as client:
        with client.websocket(
            ws_server.ws_url + "/server-close", keepalive_ping_interval_seconds=None
        ) as ws:
            assert ws.receive_text(timeout=5) == "bye"
            with pytest.raises(WebSocketDisconnect):
                ws.receive_text(timeout=5)
            time.sleep(0.1)  # the server's close frame was read: the session has ended
            threads = set(threading.enumerate()) - before
            assert threads and all(t.is_alive() for t in threads)
        assert not any(t.is_alive() for t in threads)


@pytest.mark.anyio
async def test_websocket_server_closes_after_message_async(ws_server):
    async with httprs.AsyncClient(timeout=5) as client:
        async with client.websocket(ws_server.ws_url + "/server-close") as ws:
            assert await ws.receive_text(timeout=5) == "bye"
            with pytest.raises(WebSocketDisconnect) as info:
                await ws.receive_text(timeout=5)
            assert (info.value.code, info.value.reason) == (4001, "done")


def test_websocket_client_close_code_reaches_server():
    """The client's close(code, reason) goes out as a close frame (checked with a
    wsproto server on a raw socket)."""
    import wsproto
    from wsproto.events import AcceptConnection, CloseConnection, Request

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    seen = []

    def serve():
        sock, _ = listener.accept()
        server = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        with sock:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                server.receive_data(data)
                for event in server.events():
                    if isinstance(event, Request):
                        sock.sendall(server.send(AcceptConnection()))
                    elif isinstance(event, CloseConnection):
                        seen.append((event.code, event.reason))
                        sock.sendall(server.send(event.response()))
                        return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"ws://127.0.0.1:{listener.getsockname()[1]}/"
    with httprs.Client(timeout=5) as client:
        with client.websocket(url) as ws:
            ws.close(4100, "client done")
    thread.join(5)
    listener.close()
    assert seen == [(4100, "client done")]


def test_websocket_subprotocols(ws_server):
    with httprs.Client(timeout=5) as client:
        url = ws_server.ws_url + "/headers"
        with client.websocket(url, subprotocols=["unknown", "chat"]) as ws:
            assert ws.subprotocol == "chat"
            headers = ws.receive_json(timeout=5)
            assert headers["subprotocols offered"] == ["unknown", "chat"]
            assert headers["sec-websocket-version"] == "13"
            assert headers["upgrade"].lower() == "websocket"


@pytest.mark.anyio
async def test_websocket_subprotocols_async(ws_server):
    async with httprs.AsyncClient(timeout=5) as client:
        async with client.websocket(ws_server.ws_url + "/echo", subprotocols=["superchat"]) as ws:
            assert ws.subprotocol == "superchat"


def test_websocket_receive_timeout(ws_server):
    with httprs.Client(timeout=5) as client:
        with client.websocket(ws_server.ws_url + "/echo") as ws:
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                ws.receive(timeout=0.2)
            assert time.monotonic() - start < 3
            # The session is still usable.
            ws.send_text("after")
            assert ws.receive_text(timeout=5) == "after"


@pytest.mark.anyio
async def test_websocket_receive_timeout_async(ws_server):
    async with httprs.AsyncClient(timeout=5) as client:
        async with client.websocket(ws_server.ws_url + "/echo") as ws:
            with pytest.raises(TimeoutError):
                await ws.receive(timeout=0.2)
            await ws.send_text("after")
            assert await ws.receive_text(timeout=5) == "after"


def test_websocket_upgrade_refused(ws_server):
    with httprs.Client(timeout=5) as client:
        with pytest.raises(WebSocketUpgradeError) as info:
            with client.websocket(ws_server.ws_url + "/deny"):
                pass
        assert info.value.response.status_code == 403


@pytest.mark.anyio
async def test_websocket_upgrade_refused_async(ws_server):
    async with httprs.AsyncClient(timeout=5) as client:
        with pytest.raises(WebSocketUpgradeError) as info:
            async with client.websocket(ws_server.ws_url + "/deny"):
                pass
        assert info.value.response.status_code == 403


def test_websocket_wrong_accept_key_is_refused(scripted):
    """A 101 that does not answer our Sec-WebSocket-Key is not a WebSocket (RFC 6455 4.1)."""

    def after(conn):
        conn.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: d3Jvbmc=\r\n\r\n"
        )
        conn.wait_eof(5)

    srv = scripted(switch_then(after))
    with httprs.Client(timeout=5) as client:
        with pytest.raises(WebSocketUpgradeError) as info:
            with client.websocket(srv.url.replace("http://", "ws://")):
                pass
    # The message says why a 101 was refused.
    assert "Sec-WebSocket-Accept header does not answer" in str(info.value)
    assert "'d3Jvbmc='" in str(info.value) and info.value.response.status_code == 101


def test_a_101_over_the_network_without_an_accept_key_is_refused(scripted):
    """A server's 101 must answer the key (RFC 6455 4.1): a missing header is refused
    as a wrong one is, and the error names the missing answer."""

    def after(conn):
        conn.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\n\r\n"
        )
        conn.wait_eof(5)

    srv = scripted(switch_then(after))
    with httprs.Client(timeout=5) as client:
        with pytest.raises(WebSocketUpgradeError, match="Sec-WebSocket-Accept") as info:
            with client.websocket(srv.url.replace("http://", "ws://")):
                pass
    assert str(info.value).startswith("WebSocket upgrade failed: 101 Switching Protocols, but")
    assert "'' given" in str(info.value)


def _mocked_101(stream_class, **headers):
    """A MockTransport handler answering 101 over a MagicMock stream, as httpx2's own
    tests (and users' tests of WebSocket code) mock the handshake."""

    def handler(request):
        stream = mock.MagicMock(spec=stream_class)
        return httprs.Response(101, headers=headers, extensions={"network_stream": stream})

    return handler


def test_a_mocked_101_without_an_accept_key_opens_the_session():
    """The program's own transport may leave Sec-WebSocket-Accept out, as httpx2 accepts."""
    handler = _mocked_101(httpcore.NetworkStream, **{"sec-websocket-protocol": "chat"})
    with httprs.Client(transport=httprs.MockTransport(handler)) as client:
        with client.websocket("ws://example.invalid/", subprotocols=["chat", "x"]) as ws:
            assert ws.response.status_code == 101
            assert ws.subprotocol == "chat"


@pytest.mark.anyio
async def test_a_mocked_101_without_an_accept_key_opens_the_session_async():
    handler = _mocked_101(httpcore.AsyncNetworkStream)
    async with httprs.AsyncClient(transport=httprs.MockTransport(handler)) as client:
        async with client.websocket("ws://example.invalid/") as ws:
            assert ws.response.status_code == 101


def test_a_mocked_101_with_a_wrong_accept_key_is_refused():
    """A value given is checked wherever the 101 came from."""
    handler = _mocked_101(httpcore.NetworkStream, **{"sec-websocket-accept": "d3Jvbmc="})
    with httprs.Client(transport=httprs.MockTransport(handler)) as client:
        with pytest.raises(WebSocketUpgradeError, match="'d3Jvbmc=' given"):
            with client.websocket("ws://example.invalid/"):
                pass


def test_a_mocked_101_without_a_stream_says_so():
    def handler(request):
        return httprs.Response(101)

    with httprs.Client(transport=httprs.MockTransport(handler)) as client:
        with pytest.raises(WebSocketUpgradeError, match="no network_stream"):
            with client.websocket("ws://example.invalid/"):
                pass


def test_websocket_message_too_big(ws_server):
    with httprs.Client(timeout=5) as client:
        url = ws_server.ws_url + "/big?size=5000"
        with client.websocket(url, max_message_size_bytes=1000) as ws:
            with pytest.raises(WebSocketDisconnect) as info:
                ws.receive(timeout=5)
            assert info.value.code == 1009


def test_websocket_top_level_function(ws_server):
    with httprs.websocket(ws_server.ws_url + "/echo", timeout=5) as ws:
        ws.send_text("top")
        assert ws.receive_text(timeout=5) == "top"


def test_websocket_server_gone_is_network_error(scripted):
    """The connection ends without a close frame: WebSocketNetworkError."""
    import base64
    import hashlib

    def after(conn):
        key = conn.requests[0].header("sec-websocket-key").encode()
        accept = base64.b64encode(hashlib.sha1(key + _ACCEPT_GUID).digest())
        conn.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        time.sleep(0.2)
        conn.close()

    srv = scripted(switch_then(after))
    with httprs.Client(timeout=5) as client:
        with client.websocket(srv.url.replace("http://", "ws://")) as ws:
            with pytest.raises(WebSocketNetworkError):
                ws.receive(timeout=5)


def test_upgrade_request_headers_are_written_as_httpx2_writes_them():
    """Lower-case names and `connection: upgrade`, as httpx2's handshake (wsproto's)
    writes them: an ASGI app or a test comparing request heads sees the same pairs."""
    seen = []

    def handler(request):
        seen.append(request.headers.raw)
        return httprs.Response(403)

    with httprs.Client(transport=httprs.MockTransport(handler)) as client:
        with pytest.raises(WebSocketUpgradeError):
            with client.websocket(
                "ws://example.org/", subprotocols=["chat"], headers={"X-A": "1"}
            ):
                pass
    pairs = [(k, v) for k, v in seen[0] if k.startswith((b"connection", b"upgrade", b"sec-"))]
    assert [k for k, _ in pairs] == [
        b"connection",
        b"upgrade",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-protocol",
    ]
    assert dict(pairs)[b"connection"] == b"upgrade"
    assert dict(pairs)[b"sec-websocket-protocol"] == b"chat"
    assert (b"X-A", b"1") in seen[0]


@pytest.mark.anyio
async def test_asgi_websocket_transport():
    transport = ASGIWebSocketTransport(ws_app)
    async with httprs.AsyncClient(transport=transport) as client:
        async with client.websocket("ws://testserver/echo", subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
            await ws.send_text("in-process")
            assert await ws.receive_text(timeout=5) == "in-process"
            await ws.send_bytes(b"raw")
            assert await ws.receive_bytes(timeout=5) == b"raw"
            await ws.send_text("close:4004")
            with pytest.raises(WebSocketDisconnect) as info:
                await ws.receive(timeout=5)
            assert info.value.code == 4004
        with pytest.raises(WebSocketUpgradeError) as refused:
            async with client.websocket("ws://testserver/deny"):
                pass
        assert refused.value.response.status_code == 403


def test_httpx2_module_names_are_the_modules_a_patch_reaches():
    """`from httpx2.websockets import _api` gives the module whose code `connect_ws` runs,
    so `patch.object(_api, "WebSocketClient")` reaches it, and the client is passed by
    keyword (`call_args[1]["client"]`) and closed on exit, as in httpx2."""
    from unittest import mock

    from httprs.websockets import _api, _transport, connect_ws

    assert _transport.ASGIWebSocketTransport is ASGIWebSocketTransport
    with mock.patch.object(_api, "WebSocketClient") as patched:
        with connect_ws("http://testserver/ws"):
            pass
    patched.return_value.connect.assert_called_once()
    client = patched.call_args[1]["client"]
    assert isinstance(client, httprs.Client) and client.is_closed


@pytest.mark.anyio
async def test_httpx2_module_names_are_the_modules_a_patch_reaches_async():
    from unittest import mock

    from httprs.websockets import _api, aconnect_ws

    with mock.patch.object(_api, "AsyncWebSocketClient") as patched:
        async with aconnect_ws("http://testserver/ws"):
            pass
    patched.return_value.connect.assert_called_once()
    client = patched.call_args[1]["client"]
    assert isinstance(client, httprs.AsyncClient) and client.is_closed


def test_keepalive_ping_started_before_close_is_never_sent(monkeypatch):
    """A keepalive ping whose payload (from `secrets.token_bytes`, as httpx2) is being made
    while close() runs is dropped: the close frame is the only thing written."""
    import secrets

    from httprs.websockets import WebSocketSession

    making_payload, resume, closed = threading.Event(), threading.Event(), threading.Event()
    writes = []

    def slow_token_bytes(n=None):
        making_payload.set()
        assert resume.wait(5)
        return b"p" * (n or 16)

    class Stream:
        def read(self, max_bytes, timeout=None):
            assert closed.wait(5)
            return b""

        def write(self, buffer, timeout=None):
            writes.append(bytes(buffer))

        def close(self):
            closed.set()

    monkeypatch.setattr(secrets, "token_bytes", slow_token_bytes)
    with WebSocketSession(Stream(), keepalive_ping_interval_seconds=0) as session:
        try:
            assert making_payload.wait(5)
            session.close()
        finally:
            resume.set()
    assert closed.is_set()
    assert len(writes) == 1 and writes[0][0] == 0x88  # one frame: a close frame


class _ScriptedStream:
    """A sync network stream over a server-side wsproto connection: `read` gives the
    frames of `script` one by one, then blocks until close() and raises `after_close`
    (what a torn-down stream may raise); writes are decoded into `received`."""

    def __init__(self, script=(), after_close=None):
        import wsproto

        self.server = wsproto.Connection(wsproto.ConnectionType.SERVER)
        self.script = list(script)
        self.after_close = after_close
        self.closed = threading.Event()
        self.received = []

    def read(self, max_bytes, timeout=None):
        if self.script:
            item = self.script.pop(0)
            if isinstance(item, BaseException):
                raise item
            return self.server.send(item)
        assert self.closed.wait(5)
        if self.after_close is not None:
            raise self.after_close
        return b""

    def write(self, buffer, timeout=None):
        self.server.receive_data(buffer)
        self.received.extend(self.server.events())

    def close(self):
        self.closed.set()


class _AsyncScriptedStream(_ScriptedStream):
    async def read(self, max_bytes, timeout=None):
        import anyio

        if self.script:
            return super().read(max_bytes)
        await anyio.sleep(30)
        return b""

    async def write(self, buffer, timeout=None):
        super().write(buffer)

    async def aclose(self):
        self.close()


@pytest.mark.anyio
async def test_async_session_wraps_what_leaves_its_block_in_an_exception_group():
    """As in httpx2 (its session's tasks run in a task group around the block): an
    exception caught inside the `async with` is the plain one; one that leaves the block
    arrives in an ExceptionGroup (for `except*`)."""
    import wsproto.events as ev

    from httprs.websockets import AsyncWebSocketSession

    stream = _AsyncScriptedStream([ev.TextMessage("one"), ev.CloseConnection(4001, "bye")])
    async with AsyncWebSocketSession(stream, keepalive_ping_interval_seconds=None) as ws:
        assert await ws.receive_text(timeout=5) == "one"
        with pytest.raises(WebSocketDisconnect) as plain:
            await ws.receive(timeout=5)
        assert plain.value.code == 4001

    stream = _AsyncScriptedStream([httpcore.ReadError("reset")])
    with pytest.RaisesGroup(WebSocketNetworkError):
        async with AsyncWebSocketSession(stream, keepalive_ping_interval_seconds=None) as ws:
            await ws.receive(timeout=5)
    assert stream.closed.is_set()

    closed = pytest.RaisesExc(WebSocketDisconnect, check=lambda e: e.code == 1000)
    with pytest.RaisesGroup(closed):
        stream = _AsyncScriptedStream([ev.CloseConnection(1000)])
        async with AsyncWebSocketSession(stream, keepalive_ping_interval_seconds=None) as ws:
            await ws.receive(timeout=5)


@pytest.mark.anyio
async def test_async_keepalive_ping_on_a_closing_session_exits_without_writing():
    """httpx2's `_background_keepalive_ping(interval, timeout)`: on a session whose
    connection is closing it stops at its first ping, writing nothing; a session never
    entered leaves no unclosed queue behind (no ResourceWarning)."""
    import gc

    import anyio
    import wsproto.events as ev

    from httprs.websockets import AsyncWebSocketSession

    stream = _AsyncScriptedStream()
    session = AsyncWebSocketSession(stream, keepalive_ping_interval_seconds=0.1)
    session.connection.send(ev.CloseConnection(1000))
    with anyio.fail_after(2):
        await session._background_keepalive_ping(0.01)
    assert stream.received == []
    del session
    gc.collect()  # an unclosed anyio stream would warn here (an error in this suite)


def test_keepalive_ping_on_a_closing_session_exits_without_writing():
    import wsproto.events as ev

    from httprs.websockets import WebSocketSession

    stream = _ScriptedStream()
    session = WebSocketSession(stream, keepalive_ping_interval_seconds=0.1)
    session.connection.send(ev.CloseConnection(1000))
    started = time.monotonic()
    session._background_keepalive_ping(0.01, 0.01)
    assert time.monotonic() - started < 2 and stream.received == []


def test_sync_session_stream_errors_never_escape_its_threads(monkeypatch):
    """Whatever the stream raises in the reader thread ends the session with
    WebSocketNetworkError (the original as its cause) before close(), and is dropped
    after close() (a stream being torn down): never an unhandled thread exception."""
    import wsproto.events as ev
    from wsproto.utilities import LocalProtocolError

    from httprs.websockets import WebSocketSession

    escaped = []
    monkeypatch.setattr(threading, "excepthook", escaped.append)

    stream = _ScriptedStream([ev.TextMessage("hi"), ValueError("odd stream")])
    with WebSocketSession(stream, keepalive_ping_interval_seconds=None) as ws:
        assert ws.receive_text(timeout=5) == "hi"
        with pytest.raises(WebSocketNetworkError) as info:
            ws.receive(timeout=5)
        assert isinstance(info.value.__cause__, ValueError)

    stream = _ScriptedStream(after_close=LocalProtocolError("closed under the reader"))
    with WebSocketSession(stream, keepalive_ping_interval_seconds=None) as ws:
        ws.send_text("x")
    assert [e.data for e in stream.received if isinstance(e, ev.TextMessage)] == ["x"]
    assert escaped == []


class _WriteFailsStream(_ScriptedStream):
    """A stream whose writes raise `error` (the reads block until close)."""

    def __init__(self, error):
        super().__init__()
        self.error = error

    def write(self, buffer, timeout=None):
        raise self.error


class _AsyncWriteFailsStream(_AsyncScriptedStream):
    def __init__(self, error):
        super().__init__()
        self.error = error

    async def write(self, buffer, timeout=None):
        raise self.error


def _httpcore_gone(monkeypatch, package, how):
    """The httpcore (or httpcore2) a stream was written against is no longer the one in
    sys.modules: removed (httpx2's test_httpcore_lazy_loading does that) or replaced by
    another import of the package. Returns the old module's WriteError."""
    write_error = pytest.importorskip(package).WriteError
    if how == "removed":
        monkeypatch.delitem(sys.modules, package)
    else:
        monkeypatch.setitem(sys.modules, package, types.ModuleType(package))
    return write_error


@pytest.mark.parametrize("how", ["removed", "reimported"])
@pytest.mark.parametrize("package", ["httpcore", "httpcore2"])
def test_sync_send_error_of_an_earlier_httpcore_is_a_network_error(monkeypatch, package, how):
    """httpx2's TestSend::test_send_error, run after a test that removed httpcore2 from
    sys.modules: the stream's httpcore2.WriteError still ends in WebSocketNetworkError
    (it escaped as a bare WriteError from close() before)."""
    from httprs.websockets import WebSocketSession

    write_error = _httpcore_gone(monkeypatch, package, how)
    stream = _WriteFailsStream(write_error())
    with WebSocketSession(stream, keepalive_ping_interval_seconds=None) as ws:
        with pytest.raises(WebSocketNetworkError) as info:
            ws.send_text("x")
        assert isinstance(info.value.__cause__, write_error)
    assert stream.closed.is_set()

    stream = _WriteFailsStream(ValueError("not a stream error"))
    with pytest.raises(ValueError, match="not a stream error"):
        with WebSocketSession(stream, keepalive_ping_interval_seconds=None) as ws:
            ws.send_text("x")


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["removed", "reimported"])
@pytest.mark.parametrize("package", ["httpcore", "httpcore2"])
async def test_async_send_error_of_an_earlier_httpcore_is_a_network_error(
    monkeypatch, package, how
):
    """The async twin (httpx2's TestSend::test_async_send_error)."""
    from httprs.websockets import AsyncWebSocketSession

    write_error = _httpcore_gone(monkeypatch, package, how)
    stream = _AsyncWriteFailsStream(write_error())
    async with AsyncWebSocketSession(stream, keepalive_ping_interval_seconds=None) as ws:
        with pytest.raises(WebSocketNetworkError) as info:
            await ws.send_text("x")
        assert isinstance(info.value.__cause__, write_error)
    assert stream.closed.is_set()

    stream = _AsyncWriteFailsStream(ValueError("not a stream error"))
    with pytest.RaisesGroup(pytest.RaisesExc(ValueError, match="not a stream error")):
        async with AsyncWebSocketSession(stream, keepalive_ping_interval_seconds=None) as ws:
            await ws.send_text("x")


@pytest.mark.anyio
async def test_asgi_websocket_transport_serves_plain_http_too():
    """A request without an upgrade goes to the app as an `http` scope (ASGITransport's
    own), not as a WebSocket one."""

    async def app(scope, receive, send):
        assert scope["type"] == "http" and scope["method"] == "GET"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain " + scope["path"].encode()})

    async with ASGIWebSocketTransport(app) as transport:
        response = await transport.handle_async_request(
            httprs.Request("GET", "http://testserver/http")
        )
        assert response.status_code == 200
        assert await response.aread() == b"plain /http"


# ------------------------------------------------------------------ the in-process stream


def _ws_scope(path="/echo"):
    import base64
    import os

    key = base64.b64encode(os.urandom(16))
    headers = [
        (b"host", b"testserver"),
        (b"connection", b"upgrade"),
        (b"upgrade", b"websocket"),
        (b"sec-websocket-key", key),
        (b"sec-websocket-version", b"13"),
    ]
    return {"type": "websocket", "path": path, "headers": headers, "subprotocols": []}


async def _stream_outcome(app):
    """Enter an ASGIWebSocketAsyncNetworkStream on `app`: its (stream, head) or the
    exception its handshake raised, and the stream."""
    import anyio

    from httprs.websockets._asgi import ASGIWebSocketAsyncNetworkStream

    async with anyio.create_task_group() as group:
        stream = ASGIWebSocketAsyncNetworkStream(app, _ws_scope(), group, 1.0)
        try:
            async with stream as (entered, head):
                assert entered is stream
                return head, stream
        except Exception as e:  # noqa: BLE001 - the outcome under test
            return e, stream


@pytest.mark.anyio
async def test_asgi_stream_handshake_outcomes():
    """Accept gives the 101 head; closing first, a denial response, an exception and an
    app that returns without answering each end the handshake with httpx2's exception."""

    async def accepts(scope, receive, send):
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept", "subprotocol": None})
        await receive()

    async def closes(scope, receive, send):
        await send({"type": "websocket.close", "code": 4003, "reason": "no"})

    async def denies(scope, receive, send):
        await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"who", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b" are you"})

    async def fails(scope, receive, send):
        raise ValueError("broken app")

    async def silent(scope, receive, send):
        return

    head, _ = await _stream_outcome(accepts)
    assert head.startswith(b"HTTP/1.1 101 ") and b"Sec-WebSocket-Accept" in head
    closed, _ = await _stream_outcome(closes)
    assert isinstance(closed, WebSocketDisconnect) and (closed.code, closed.reason) == (4003, "no")
    denied, _ = await _stream_outcome(denies)
    assert isinstance(denied, WebSocketUpgradeError)
    assert (denied.response.status_code, denied.response.content) == (401, b"who are you")
    failed, stream = await _stream_outcome(fails)
    assert isinstance(failed, WebSocketDisconnect) and failed.code == 1011
    assert failed.reason == "broken app" and isinstance(stream.app_error, ValueError)
    never, _ = await _stream_outcome(silent)
    assert isinstance(never, RuntimeError) and "accept" in str(never)


@pytest.mark.anyio
async def test_asgi_stream_carries_frames_both_ways():
    """Client frames become ASGI messages (a fragmented message joined, a close a
    disconnect with its code); the app's messages come back framed, one per read; a ping
    is answered without the app; an unknown app message is an error."""
    import anyio
    import wsproto
    from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

    from httprs.websockets._asgi import (
        ASGIWebSocketAsyncNetworkStream,
        UnhandledASGIMessageType,
    )

    seen = []

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] == "websocket.disconnect":
                break
            await send({"type": "websocket.send", "text": f"got {message.get('text')}"})
        await send({"type": "websocket.nonsense"})

    client = wsproto.Connection(wsproto.ConnectionType.CLIENT)
    async with anyio.create_task_group() as group:
        async with ASGIWebSocketAsyncNetworkStream(app, _ws_scope(), group) as (stream, _):
            await stream.write(client.send(TextMessage("par", message_finished=False)))
            await stream.write(client.send(TextMessage("ts", message_finished=True)))
            client.receive_data(await stream.read(65536, timeout=5))
            assert list(client.events()) == [TextMessage("got parts")]
            await stream.write(client.send(Ping(b"p1")))
            client.receive_data(await stream.read(65536, timeout=5))
            assert list(client.events()) == [Pong(b"p1")]
            await stream.write(client.send(BytesMessage(b"\x00raw")))
            client.receive_data(await stream.read(65536, timeout=5))
            await stream.write(client.send(CloseConnection(4000, "bye")))
            with pytest.raises(UnhandledASGIMessageType):
                await stream.read(65536, timeout=5)
    assert seen == [
        {"type": "websocket.receive", "text": "parts"},
        {"type": "websocket.receive", "bytes": b"\x00raw"},
        {"type": "websocket.disconnect", "code": 4000, "reason": "bye"},
    ]


@pytest.mark.anyio
async def test_asgi_transport_exit_closes_its_streams_and_sessions_skip_keepalive():
    import anyio

    transport = ASGIWebSocketTransport(ws_app)
    async with httprs.AsyncClient(transport=transport) as client:
        async with client.websocket("ws://testserver/echo") as ws:
            # no background pings over an in-process stream (as httpx2)
            assert ws._keepalive_ping_interval_seconds is None
            stream = ws.stream
    with pytest.raises(anyio.ClosedResourceError):
        await stream.send({"type": "websocket.receive", "text": "late"})
    with pytest.raises(httprs.ReadError):  # a closed stream: an error, not a hang
        await stream.read(10)


# ------------------------------------------------------------------ through the switch


def run_switched(code: str):
    import os
    import subprocess
    import sys
    import textwrap

    env = {k: v for k, v in os.environ.items() if k != "HTTPRS_INSTALL"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_httpx_ws_runs_on_httprs_through_the_switch(ws_server):
    """httpx-ws (the PyPI package) imports httpx and httpcore; after httprs.install() its
    sessions run on httprs's transports and network_stream, sync and async."""
    out = run_switched(
        f"""
        import httprs
        httprs.install()
        import anyio, httpx, httpx_ws
        assert httpx.Client is httprs.Client

        with httpx.Client(timeout=5) as client:
            assert type(client._transport) is httprs.HTTPTransport
            with httpx_ws.connect_ws("{ws_server.url}/echo", client) as ws:
                ws.send_text("sync hello")
                assert ws.receive_text(timeout=5) == "sync hello"
                ws.send_bytes(b"sync bytes")
                assert ws.receive_bytes(timeout=5) == b"sync bytes"

        async def main():
            async with httpx.AsyncClient(timeout=5) as client:
                async with httpx_ws.aconnect_ws("{ws_server.url}/echo", client) as ws:
                    await ws.send_text("async hello")
                    assert await ws.receive_text(timeout=5) == "async hello"
                    await ws.send_text("close:4005")
                    try:
                        await ws.receive_text(timeout=5)
                    except httpx_ws.WebSocketDisconnect as e:
                        assert e.code == 4005, e.code
                    else:
                        raise AssertionError("no disconnect")

        anyio.run(main)
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_httpx2_websockets_through_the_switch(ws_server):
    out = run_switched(
        f"""
        import httprs
        httprs.install(["httpx2"])
        import httpx2
        import httpx2.websockets as hws
        import httprs.websockets
        assert hws is httprs.websockets
        assert hws.WebSocketSession is httprs.websockets.WebSocketSession
        with httpx2.websocket("{ws_server.ws_url}/echo") as ws:
            ws.send_text("via httpx2")
            assert ws.receive_text(timeout=5) == "via httpx2"
        print("ok")
        """
    )
    assert out.strip() == "ok"
