"""Tunnels made by hand: `client.stream("CONNECT", ...)` answered 2xx gives the
connection as the response's `network_stream` (httpcore's raw stream, as for a 101),
and `start_tls()` on such a stream speaks TLS to the host behind it, also TLS in TLS.
Each test holds for httpx too (HTTPRS_TEST_TARGET=httpx) unless marked httprs_only."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import httpcore
import pytest

import httprs

ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"


def tunnel_then(after, early: bytes = b""):
    """A proxy-like server: answers the CONNECT with 200 (and `early` in the same
    segment), then runs `after(sock)` on the connection."""

    def handler(conn):
        req = conn.read_request()
        if req is None:
            return
        conn.server.connect_lines.append(req.head.split(b"\r\n")[0])
        conn.send(ESTABLISHED + early)
        conn.sock.settimeout(5)
        try:
            after(conn.sock)
        except (OSError, ssl.SSLError):
            pass

    return handler


def upper_echo(sock):
    """Echo what arrives, upper-cased, until EOF."""
    while True:
        data = sock.recv(65536)
        if not data:
            return
        sock.sendall(data.upper())


def tls_upper_echo(context):
    """TLS server side on the tunnel, then upper_echo inside it."""

    def after(sock):
        with context.wrap_socket(sock, server_side=True) as tls:
            upper_echo(tls)

    return after


def tls_in_tls_upper_echo(outer, inner):
    """TLS (`outer`), and inside it a second TLS session (`inner`, memory BIOs
    over the first), then upper_echo inside that."""

    def after(sock):
        tls = outer.wrap_socket(sock, server_side=True)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = inner.wrap_bio(incoming, outgoing, server_side=True)

        def pump(fn, *args):
            while True:
                try:
                    result = fn(*args)
                except ssl.SSLWantReadError:
                    tls.sendall(outgoing.read())
                    data = tls.recv(65536)
                    if not data:
                        raise ConnectionError("eof") from None
                    incoming.write(data)
                    continue
                tls.sendall(outgoing.read())
                return result

        pump(obj.do_handshake)
        while True:
            data = pump(obj.read, 65536)
            if not data:
                return
            pump(obj.write, data.upper())

    return after


@pytest.fixture
def tunnel_server(scripted):
    def make(after, early=b"", **kwargs):
        srv = scripted(tunnel_then(after, early), **kwargs)
        srv.connect_lines = []
        return srv

    return make


def read_exact(stream, n):
    out = b""
    while len(out) < n:
        chunk = stream.read(n - len(out), timeout=5)
        assert chunk, "unexpected end of stream"
        out += chunk
    return out


async def aread_exact(stream, n):
    out = b""
    while len(out) < n:
        chunk = await stream.read(n - len(out), timeout=5)
        assert chunk, "unexpected end of stream"
        out += chunk
    return out


def client_context(certs):
    return ssl.create_default_context(cafile=certs.ca_file)


def test_connect_2xx_gives_the_tunnel_as_the_network_stream(tunnel_server):
    srv = tunnel_server(upper_echo, early=b"early")
    with httprs.Client(timeout=5) as client:
        with client.stream("CONNECT", srv.url + "/") as r:
            assert r.status_code == 200
            stream = r.extensions["network_stream"]
            assert read_exact(stream, 5) == b"early"
            stream.write(b"hello")
            assert read_exact(stream, 5) == b"HELLO"
            assert stream.get_extra_info("server_addr") == ("127.0.0.1", srv.port)
    assert srv.connect_lines == [b"CONNECT / HTTP/1.1"]


@pytest.mark.anyio
async def test_connect_2xx_gives_the_tunnel_as_the_network_stream_async(
    tunnel_server, anyio_backend
):
    srv = tunnel_server(upper_echo)
    async with httprs.AsyncClient(timeout=5) as client:
        async with client.stream("CONNECT", srv.url + "/") as r:
            stream = r.extensions["network_stream"]
            await stream.write(b"hello")
            assert await aread_exact(stream, 5) == b"HELLO"


def test_a_refused_connect_is_an_ordinary_response(scripted):
    """A non-2xx answer keeps HTTP framing: its body is read, the connection reused."""

    def handler(conn):
        while (req := conn.read_request()) is not None:
            refused = req.head.startswith(b"CONNECT ")
            status = "407 Proxy Authentication Required" if refused else "200 OK"
            if not conn.respond(b"no" if refused else b"ok", status=status):
                return

    srv = scripted(handler)
    with httprs.Client(timeout=5) as client:
        r = client.request("CONNECT", srv.url + "/")
        assert r.status_code == 407 and r.content == b"no"
        assert client.get(srv.url + "/").text == "ok"
    assert srv.connections == 1


def test_start_tls_over_a_tunnel(tunnel_server, certs):
    from servers.tls import server_context

    srv = tunnel_server(tls_upper_echo(server_context(certs.server)))
    with httprs.Client(timeout=5) as client:
        with client.stream("CONNECT", srv.url + "/") as r:
            raw = r.extensions["network_stream"]
            tls = raw.start_tls(client_context(certs), server_hostname="localhost", timeout=5)
            tls.write(b"secret")
            assert read_exact(tls, 6) == b"SECRET"
            obj = tls.get_extra_info("ssl_object")
            assert obj.version() in ("TLSv1.2", "TLSv1.3")
            assert ("DNS", "localhost") in obj.getpeercert()["subjectAltName"]
            assert tls.get_extra_info("server_addr") == ("127.0.0.1", srv.port)
            tls.close()


@pytest.mark.anyio
async def test_start_tls_over_a_tunnel_async(tunnel_server, certs, anyio_backend):
    from servers.tls import server_context

    srv = tunnel_server(tls_upper_echo(server_context(certs.server)))
    async with httprs.AsyncClient(timeout=5) as client:
        async with client.stream("CONNECT", srv.url + "/") as r:
            raw = r.extensions["network_stream"]
            tls = await raw.start_tls(
                client_context(certs), server_hostname="localhost", timeout=5
            )
            await tls.write(b"secret")
            assert await aread_exact(tls, 6) == b"SECRET"
            assert tls.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
            await tls.aclose()


def test_start_tls_checks_the_certificate_as_the_context_says(tunnel_server, certs):
    """A certificate the context does not trust fails the handshake with httpcore's
    ConnectError (the stream is httpcore's interface), and closes the stream below."""
    from servers.tls import server_context

    srv = tunnel_server(tls_upper_echo(server_context(certs.server)))
    untrusting = ssl.create_default_context(cafile=certs.other_ca_file)
    with httprs.Client(timeout=5) as client:
        with client.stream("CONNECT", srv.url + "/") as r:
            raw = r.extensions["network_stream"]
            with pytest.raises(httpcore.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                raw.start_tls(untrusting, server_hostname="localhost", timeout=5)
            with pytest.raises(httpcore.WriteError):
                raw.write(b"after", timeout=1)


def test_start_tls_checks_the_host_name(tunnel_server, certs):
    from servers.tls import server_context

    srv = tunnel_server(tls_upper_echo(server_context(certs.server)))
    with httprs.Client(timeout=5) as client:
        with client.stream("CONNECT", srv.url + "/") as r:
            raw = r.extensions["network_stream"]
            with pytest.raises(httpcore.ConnectError, match="match|mismatch"):
                raw.start_tls(client_context(certs), server_hostname="example.org", timeout=5)


def test_start_tls_times_out_as_a_connect_timeout(tunnel_server, certs):
    """A server that never answers the ClientHello: ConnectTimeout, as httpcore's."""

    def silent(sock):
        while sock.recv(65536):
            pass

    srv = tunnel_server(silent)
    with httprs.Client(timeout=5) as client:
        with client.stream("CONNECT", srv.url + "/") as r:
            raw = r.extensions["network_stream"]
            with pytest.raises(httpcore.ConnectTimeout):
                raw.start_tls(client_context(certs), server_hostname="localhost", timeout=0.3)


def test_tls_read_times_out_as_a_read_timeout(tunnel_server, certs):
    """ReadTimeout, and the stream goes on (a read that timed out took nothing), as
    httpcore's does."""
    from servers.tls import server_context

    ctx = server_context(certs.server)

    def after(sock):
        with ctx.wrap_socket(sock, server_side=True) as tls:
            tls.recv(100)  # "go"
            tls.sendall(b"bye")
            tls.unwrap()  # close_notify, then the TCP close

    srv = tunnel_server(after)
    with httprs.Client(timeout=5) as client:
        with client.stream("CONNECT", srv.url + "/") as r:
            tls = r.extensions["network_stream"].start_tls(
                client_context(certs), server_hostname="localhost", timeout=5
            )
            with pytest.raises(httpcore.ReadTimeout):
                tls.read(10, timeout=0.2)
            tls.write(b"go")
            assert read_exact(tls, 3) == b"bye"


def test_tls_stream_reads_the_peers_close_as_empty(tunnel_server, certs):
    from servers.tls import server_context

    ctx = server_context(certs.server)

    def after(sock):
        with ctx.wrap_socket(sock, server_side=True) as tls:
            tls.recv(100)
            tls.sendall(b"bye")
            tls.unwrap()

    srv = tunnel_server(after)
    with httprs.Client(timeout=5) as client:
        with client.stream("CONNECT", srv.url + "/") as r:
            tls = r.extensions["network_stream"].start_tls(
                client_context(certs), server_hostname="localhost", timeout=5
            )
            tls.write(b"go")
            assert read_exact(tls, 3) == b"bye"
            assert tls.read(10, timeout=5) == b""


def test_start_tls_twice_is_tls_in_tls(tunnel_server, certs):
    from servers.tls import server_context

    outer = server_context(certs.server)
    inner = server_context(certs.server)
    srv = tunnel_server(tls_in_tls_upper_echo(outer, inner))
    with httprs.Client(timeout=5) as client:
        with client.stream("CONNECT", srv.url + "/") as r:
            raw = r.extensions["network_stream"]
            first = raw.start_tls(client_context(certs), server_hostname="localhost", timeout=5)
            second = first.start_tls(client_context(certs), server_hostname="localhost", timeout=5)
            second.write(b"nested")
            assert read_exact(second, 6) == b"NESTED"
            assert second.get_extra_info("ssl_object") is not first.get_extra_info("ssl_object")
            second.close()


@pytest.mark.httprs_only
def test_start_tls_without_a_context_says_what_it_needs(tunnel_server):
    """httpcore fails on None.wrap_socket (AttributeError); httprs says what it needs.
    The stream below is closed either way, as httpcore closes it."""
    srv = tunnel_server(upper_echo)
    with httprs.Client(timeout=5) as client:
        with client.stream("CONNECT", srv.url + "/") as r:
            raw = r.extensions["network_stream"]
            with pytest.raises(TypeError, match=r"needs an ssl\.SSLContext"):
                raw.start_tls(None)
            with pytest.raises(httpcore.WriteError):
                raw.write(b"after")


def test_tunnel_socket_is_the_connection(tunnel_server):
    srv = tunnel_server(upper_echo)
    with httprs.Client(timeout=5) as client:
        with client.stream("CONNECT", srv.url + "/") as r:
            sock = r.extensions["network_stream"].get_extra_info("socket")
            assert isinstance(sock, socket.socket)
            assert sock.getpeername() == ("127.0.0.1", srv.port)


def test_tls_stream_is_readable_with_records_waiting(tunnel_server, certs):
    """Records read from below but not yet decrypted count as readable, as records
    still in the kernel do for httpcore's ssl socket."""
    from servers.tls import server_context

    ctx = server_context(certs.server)

    def after(sock):
        with ctx.wrap_socket(sock, server_side=True) as tls:
            tls.sendall(b"AAA")
            tls.sendall(b"BBB")  # a second record
            while tls.recv(100):
                pass

    srv = tunnel_server(after)
    with httprs.Client(timeout=5) as client:
        with client.stream("CONNECT", srv.url + "/") as r:
            tls = r.extensions["network_stream"].start_tls(
                client_context(certs), server_hostname="localhost", timeout=5
            )
            time.sleep(0.3)  # both records have arrived
            assert read_exact(tls, 3) == b"AAA"
            assert tls.get_extra_info("is_readable") is True
            assert read_exact(tls, 3) == b"BBB"


@pytest.mark.httprs_only
def test_tls_stream_keeps_record_order_with_a_reader_and_a_writer_thread(
    tunnel_server, certs, monkeypatch
):
    """A reader thread (a WebSocket session's) and a writer share the TLS session: the
    records a step makes leave before another step runs. Forced by slowing the hand-
    over of records where a thread switch would let one thread overtake the other's:
    the reader, woken by the server's ticks, takes what is waiting to go out; the
    writer's next record must not pass it."""
    from servers.tls import server_context

    ctx = server_context(certs.server)
    seen = []

    def after(sock):
        tls = ctx.wrap_socket(sock, server_side=True)
        tls.settimeout(0.01)
        end = time.monotonic() + 3
        while time.monotonic() < end:
            try:
                data = tls.recv(100)
            except socket.timeout:
                data = None
            except ssl.SSLError as e:
                seen.append(repr(e))
                return
            if data == b"":
                return
            if data:
                seen.append(data)
            tls.sendall(b".")  # a tick: the client's reader wakes and steps

    srv = tunnel_server(after)
    cls = httprs._core.TlsNetworkStream
    take = cls._take_outgoing
    armed = threading.Event()

    def slow_take(self):
        if armed.is_set() and threading.current_thread().name == "writer":
            time.sleep(0.05)
        pending = take(self)
        if armed.is_set() and threading.current_thread().name == "reader" and pending:
            time.sleep(0.2)
        return pending

    with httprs.Client(timeout=5) as client:
        with client.stream("CONNECT", srv.url + "/") as r:
            tls = r.extensions["network_stream"].start_tls(
                client_context(certs), server_hostname="localhost", timeout=5
            )
            monkeypatch.setattr(cls, "_take_outgoing", slow_take)
            stop = threading.Event()

            def read():
                while not stop.is_set() and tls.read(100, timeout=1):
                    pass

            def write():
                tls.write(b"first", timeout=2)
                tls.write(b"second", timeout=2)

            reader = threading.Thread(target=read, name="reader")
            reader.start()
            time.sleep(0.1)
            armed.set()
            writer = threading.Thread(target=write, name="writer")
            writer.start()
            writer.join(5)
            time.sleep(0.5)
            stop.set()
            reader.join(5)
    assert b"".join(x for x in seen if isinstance(x, bytes)) == b"firstsecond", seen
