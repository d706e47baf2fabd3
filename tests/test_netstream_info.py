"""The `network_stream` extension of ordinary responses: the connection's own stream, as
httpcore gives it on every HTTP/1.1 and HTTP/2 response, the same object for each
response on one connection. Code reads what the connection is from it: the peer's
address (SSRF guards), the certificate (pinning), the socket (options). Raw reads and
writes belong to a 101's stream only (tests/test_websockets.py)."""

from __future__ import annotations

import fcntl
import gc
import os
import pickle
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import warnings

import pytest

import httprs


def keepalive(conn):
    while conn.read_request() is not None:
        conn.respond(b"ok")


def stream_of(response):
    return response.extensions["network_stream"]


@pytest.fixture
def ca_context(certs):
    return ssl.create_default_context(cafile=certs.ca_file)


def server_der(certs) -> bytes:
    return ssl.PEM_cert_to_DER_cert(certs.server.cert_chain_pems[0].bytes().decode())


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


# ------------------------------------------------------------------ HTTP/1.1


def test_every_response_names_its_connection(scripted):
    srv = scripted(keepalive)
    with httprs.Client(timeout=5) as client:
        r1 = client.get(srv.url + "/")
        r2 = client.get(srv.url + "/")
        stream = stream_of(r1)
        assert stream_of(r2) is stream  # one connection, kept alive: one object
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", srv.port)
        sock = stream.get_extra_info("socket")
        assert sock.family == socket.AF_INET
        assert sock.getpeername() == ("127.0.0.1", srv.port)
        assert stream.get_extra_info("client_addr") == sock.getsockname()
        assert stream.get_extra_info("ssl_object") is None
        assert stream.get_extra_info("is_readable") is False
        assert stream.get_extra_info("no such key") is None
    assert srv.connections == 1


def test_other_connections_have_other_streams(scripted):
    srv = scripted(keepalive)
    with httprs.Client(timeout=5) as one, httprs.Client(timeout=5) as two:
        a, b = stream_of(one.get(srv.url + "/")), stream_of(two.get(srv.url + "/"))
        assert a is not b
        assert a.get_extra_info("client_addr") != b.get_extra_info("client_addr")


def test_a_stream_no_response_holds_is_made_again(scripted):
    # The connection's slot for its object is cleared when the object goes.
    srv = scripted(keepalive)
    with httprs.Client(timeout=5) as client:
        for _ in range(3):
            r = client.get(srv.url + "/")
            assert stream_of(r).get_extra_info("server_addr") == ("127.0.0.1", srv.port)
            del r
            gc.collect()
    assert srv.connections == 1


def test_the_stream_is_there_while_the_body_streams(scripted):
    srv = scripted(keepalive)
    with httprs.Client(timeout=5) as client:
        with client.stream("GET", srv.url + "/") as r:
            sock = stream_of(r).get_extra_info("socket")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
            assert r.read() == b"ok"


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_addresses_are_four_tuples_in_sync_code(scripted):
    srv = scripted(keepalive, host="::1")
    with httprs.Client(timeout=5) as client:
        stream = stream_of(client.get(srv.url + "/"))
        assert stream.get_extra_info("server_addr") == ("::1", srv.port, 0, 0)
        host, _, flowinfo, scope_id = stream.get_extra_info("client_addr")
        assert (host, flowinfo, scope_id) == ("::1", 0, 0)


def test_unix_socket_addresses(unix_server):
    path, state = unix_server
    with httprs.Client(transport=httprs.HTTPTransport(uds=path)) as client:
        r1 = client.get("http://example.org/a")
        r2 = client.get("http://example.org/b")
        stream = stream_of(r1)
        assert stream_of(r2) is stream
        assert stream.get_extra_info("server_addr") == path
        assert stream.get_extra_info("client_addr") == ""
        assert stream.get_extra_info("socket").family == socket.AF_UNIX
    assert state["connections"] == 1


def test_closing_the_client_ends_the_connection_despite_the_socket_lent(scripted):
    # get_extra_info("socket") hands out the socket; the client's close still ends the
    # connection for the server.
    ended = threading.Event()

    def handler(conn):
        keepalive(conn)
        ended.set()

    srv = scripted(handler)
    client = httprs.Client(timeout=5)
    sock = stream_of(client.get(srv.url + "/")).get_extra_info("socket")
    client.close()
    assert ended.wait(5)
    sock.close()


def test_closing_the_stream_keeps_the_connection_from_the_pool(scripted):
    srv = scripted(keepalive)
    with httprs.Client(timeout=5) as client:
        stream_of(client.get(srv.url + "/")).close()
        assert client.get(srv.url + "/").text == "ok"
    assert srv.connections == 2


@pytest.mark.httprs_only
def test_closing_the_stream_of_a_response_being_read_spends_it_after(scripted):
    # httpcore closes the socket under the response; httprs lets the exchange end,
    # then closes the connection instead of pooling it.
    srv = scripted(keepalive)
    with httprs.Client(timeout=5) as client:
        with client.stream("GET", srv.url + "/") as r:
            stream_of(r).close()
            assert r.read() == b"ok"
        assert client.get(srv.url + "/").text == "ok"
    assert srv.connections == 2


@pytest.mark.httprs_only
def test_the_facts_outlive_the_connection(scripted):
    # httpcore raises (sync, trio) or answers None (asyncio) once the socket is closed;
    # httprs keeps what the connection was. Its socket is gone.
    srv = scripted(keepalive)
    client = httprs.Client(timeout=5)
    stream = stream_of(client.get(srv.url + "/"))
    client_addr = stream.get_extra_info("client_addr")
    client.close()
    assert stream.get_extra_info("server_addr") == ("127.0.0.1", srv.port)
    assert stream.get_extra_info("client_addr") == client_addr
    assert stream.get_extra_info("socket") is None
    assert stream.get_extra_info("is_readable") is True


@pytest.mark.httprs_only
def test_a_connection_closed_by_the_server_still_names_it(scripted):
    def handler(conn):
        conn.read_request()
        conn.respond(b"bye", headers=[("Connection", "close")])
        conn.close()

    srv = scripted(handler)
    with httprs.Client(timeout=5) as client:
        r = client.get(srv.url + "/")
        assert r.text == "bye"
        assert stream_of(r).get_extra_info("server_addr") == ("127.0.0.1", srv.port)


@pytest.mark.httprs_only
def test_no_raw_io_on_a_pooled_connection(scripted):
    srv = scripted(keepalive)
    with httprs.Client(timeout=5) as client:
        stream = stream_of(client.get(srv.url + "/"))
        for call in (lambda: stream.read(1), lambda: stream.write(b"x")):
            with pytest.raises(NotImplementedError, match="switched protocols"):
                call()
        with pytest.raises(NotImplementedError):
            stream.start_tls(ssl.create_default_context())
        assert client.get(srv.url + "/").text == "ok"


def test_pickled_and_mocked_responses_have_no_stream(scripted):
    srv = scripted(keepalive)
    with httprs.Client(timeout=5) as client:
        r = client.get(srv.url + "/")
        assert "network_stream" in r.extensions
        assert pickle.loads(pickle.dumps(r)).extensions == {}
    mocked = httprs.Client(transport=httprs.MockTransport(lambda request: httprs.Response(200)))
    assert "network_stream" not in mocked.get("http://example.org/").extensions


def test_a_patched_response_class_gets_the_stream(scripted, monkeypatch):
    seen = []
    genuine = httprs.Response.__init__

    def init(self, *args, **kwargs):
        seen.append(kwargs.get("extensions"))
        genuine(self, *args, **kwargs)

    monkeypatch.setattr(httprs.Response, "__init__", init)
    srv = scripted(keepalive)
    with httprs.Client(timeout=5) as client:
        r = client.get(srv.url + "/")
        assert stream_of(r).get_extra_info("server_addr") == ("127.0.0.1", srv.port)
    assert any(ext and "network_stream" in ext for ext in seen)


# ------------------------------------------------------------------ TLS


def test_the_certificate_can_be_pinned(https_server, ca_context, certs):
    with httprs.Client(verify=ca_context, timeout=5) as client:
        r = client.get(https_server.url + "/")
        tls = stream_of(r).get_extra_info("ssl_object")
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert tls.getpeercert(True) == server_der(certs)  # positional: sync httpcore's
        assert ("DNS", "localhost") in tls.getpeercert()["subjectAltName"]
        name, protocol, bits = tls.cipher()
        assert name and protocol and bits > 0
        assert stream_of(r).get_extra_info("server_addr")[1] == https_server.port


def test_an_unverified_certificate_reads_as_an_empty_dict(https_server, certs):
    with httprs.Client(verify=False, timeout=5) as client:
        tls = stream_of(client.get(https_server.url + "/")).get_extra_info("ssl_object")
        assert tls.getpeercert() == {}
        assert tls.getpeercert(True) == server_der(certs)


def test_pinning_in_a_transport_subclass(https_server, ca_context, certs):
    pinned = server_der(certs)

    class Pinning(httprs.HTTPTransport):
        def handle_request(self, request):
            response = super().handle_request(request)
            tls = response.extensions["network_stream"].get_extra_info("ssl_object")
            if tls.getpeercert(True) != pinned:
                response.close()
                raise httprs.ConnectError("certificate not pinned", request=request)
            return response

    with httprs.Client(transport=Pinning(verify=ca_context), timeout=5) as client:
        assert client.get(https_server.url + "/").status_code == 200


def test_http2_streams_share_their_connection(hypercorn_tls, ca_context):
    with httprs.Client(http2=True, verify=ca_context, timeout=5) as client:
        r1 = client.get(hypercorn_tls.url + "/")
        r2 = client.get(hypercorn_tls.url + "/")
        assert r1.http_version == "HTTP/2"
        assert stream_of(r2) is stream_of(r1)
        assert r1.extensions["stream_id"] != r2.extensions["stream_id"]
        tls = stream_of(r1).get_extra_info("ssl_object")
        assert tls.selected_alpn_protocol() == "h2"
        assert stream_of(r1).get_extra_info("server_addr")[1] == hypercorn_tls.port


def test_concurrent_http2_streams_get_one_object(hypercorn_tls, ca_context):
    responses = []
    lock = threading.Lock()
    with httprs.Client(http2=True, verify=ca_context, timeout=10) as client:
        client.get(hypercorn_tls.url + "/")  # the connection, before the threads

        def fetch():
            r = client.get(hypercorn_tls.url + "/")
            with lock:
                responses.append(r)

        threads = [threading.Thread(target=fetch) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({id(stream_of(r)) for r in responses}) == 1


# ------------------------------------------------------------------ proxies


@pytest.mark.httprs_only  # the test proxy closes the connection: httpcore raises EBADF
def test_through_a_forward_proxy_the_peer_is_the_proxy(proxy_factory, server, clean_env):
    proxy = proxy_factory()
    with httprs.Client(proxy=proxy.url, timeout=5) as client:
        stream = stream_of(client.get(server.url + "/"))
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", proxy.port)


def test_through_a_tunnel_the_certificate_is_the_origins(
    proxy_factory, https_server, ca_context, certs, clean_env
):
    proxy = proxy_factory()
    with httprs.Client(proxy=proxy.url, verify=ca_context, timeout=5) as client:
        stream = stream_of(client.get(https_server.url + "/"))
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", proxy.port)
        assert stream.get_extra_info("ssl_object").getpeercert(True) == server_der(certs)


def test_through_socks_the_peer_is_the_proxy(socks_factory, server, clean_env):
    proxy = socks_factory()
    with httprs.Client(proxy=proxy.url, timeout=5) as client:
        stream = stream_of(client.get(server.url + "/"))
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", proxy.port)


# ------------------------------------------------------------------ async


@pytest.mark.anyio
async def test_async_responses_name_their_connection(scripted):
    srv = scripted(keepalive)
    async with httprs.AsyncClient(timeout=5) as client:
        r1 = await client.get(srv.url + "/")
        r2 = await client.get(srv.url + "/")
        stream = stream_of(r1)
        assert stream_of(r2) is stream
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", srv.port)
        client_addr = stream.get_extra_info("client_addr")
        assert client_addr[0] == "127.0.0.1" and client_addr[1] > 0
        assert stream.get_extra_info("ssl_object") is None
        assert stream.get_extra_info("is_readable") is False
    assert srv.connections == 1


@pytest.mark.anyio
@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
async def test_async_ipv6_addresses_follow_the_library(scripted, anyio_backend):
    # anyio gives asyncio's IPv6 addresses as (host, port); trio's are 4-tuples.
    srv = scripted(keepalive, host="::1")
    async with httprs.AsyncClient(timeout=5) as client:
        stream = stream_of(await client.get(srv.url + "/"))
        expected = ("::1", srv.port) if anyio_backend == "asyncio" else ("::1", srv.port, 0, 0)
        assert stream.get_extra_info("server_addr") == expected


@pytest.mark.anyio
async def test_async_certificate_can_be_pinned(https_server, ca_context, certs):
    async with httprs.AsyncClient(verify=ca_context, timeout=5) as client:
        r = await client.get(https_server.url + "/")
        tls = stream_of(r).get_extra_info("ssl_object")
        assert tls.getpeercert(binary_form=True) == server_der(certs)


@pytest.mark.anyio
async def test_async_http2_streams_share_their_connection(hypercorn_tls, ca_context):
    async with httprs.AsyncClient(http2=True, verify=ca_context, timeout=5) as client:
        r1 = await client.get(hypercorn_tls.url + "/")
        r2 = await client.get(hypercorn_tls.url + "/")
        assert stream_of(r2) is stream_of(r1)
        assert r1.extensions["stream_id"] != r2.extensions["stream_id"]


@pytest.mark.anyio
@pytest.mark.httprs_only  # httpcore on trio fails the next request (ValueError, fd -1)
async def test_async_closing_the_stream_keeps_the_connection_from_the_pool(scripted):
    srv = scripted(keepalive)
    async with httprs.AsyncClient(timeout=5) as client:
        await stream_of(await client.get(srv.url + "/")).aclose()
        assert (await client.get(srv.url + "/")).text == "ok"
    assert srv.connections == 2


@pytest.mark.anyio
@pytest.mark.httprs_only
async def test_async_no_raw_io_on_a_pooled_connection(scripted):
    srv = scripted(keepalive)
    async with httprs.AsyncClient(timeout=5) as client:
        stream = stream_of(await client.get(srv.url + "/"))
        with pytest.raises(NotImplementedError, match="switched protocols"):
            await stream.read(1)
        with pytest.raises(NotImplementedError, match="switched protocols"):
            await stream.write(b"x")
        assert (await client.get(srv.url + "/")).text == "ok"


# ------------------------------------------------------------------ fork


@pytest.mark.httprs_only
def test_a_fork_child_reads_the_facts_but_never_the_parents_socket(scripted):
    from test_fork import run_in_child

    srv = scripted(keepalive)
    with httprs.Client(timeout=5) as client:
        stream = stream_of(client.get(srv.url + "/"))

        def child():
            return [list(stream.get_extra_info("server_addr")), stream.get_extra_info("socket")]

        assert run_in_child(child) == [["127.0.0.1", srv.port], None]  # (through JSON)
        assert client.get(srv.url + "/").text == "ok"
    assert srv.connections == 1


class _WrapBioContext(ssl.SSLContext):
    """A context whose wrap_bio is Python code: the TLS session runs through it (httpx's
    async transport calls it too)."""

    wrapped = 0

    def wrap_bio(self, *args, **kwargs):
        type(self).wrapped += 1
        return super().wrap_bio(*args, **kwargs)


@pytest.mark.anyio
async def test_a_session_python_runs_is_described_too(https_server, certs):
    ctx = _WrapBioContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs.ca_file)
    before = _WrapBioContext.wrapped
    async with httprs.AsyncClient(verify=ctx, timeout=5) as client:
        tls = stream_of(await client.get(https_server.url + "/")).get_extra_info("ssl_object")
    assert _WrapBioContext.wrapped == before + 1
    assert tls.getpeercert(True) == server_der(certs)
    assert ("DNS", "localhost") in tls.getpeercert()["subjectAltName"]
    assert tls.version() in ("TLSv1.2", "TLSv1.3")
    assert tls.cipher()[2] > 0


def test_a_socket_the_caller_keeps_stays_open(scripted):
    # The response and its stream go at once; the socket asked for is the caller's.
    srv = scripted(keepalive)
    with httprs.Client(timeout=5) as client:
        sock = client.get(srv.url + "/").extensions["network_stream"].get_extra_info("socket")
        gc.collect()
        assert sock.getpeername() == ("127.0.0.1", srv.port)
        sock.close()


@pytest.mark.httprs_only
def test_the_socket_is_let_go_once_the_connection_closed(scripted):
    # The stream's duplicate descriptor is closed once the connection is: a kept
    # response does not pin one per closed connection.
    srv = scripted(keepalive)
    client = httprs.Client(timeout=5)
    stream = stream_of(client.get(srv.url + "/"))
    assert stream.get_extra_info("socket") is not None
    client.close()
    assert stream.get_extra_info("socket") is None


@pytest.mark.httprs_only
def test_streams_come_only_from_responses():
    from httprs._core import AsyncConnectionStream, ConnectionStream

    for cls in (ConnectionStream, AsyncConnectionStream):
        with pytest.raises(TypeError, match="made by the transport"):
            cls()
        bare = cls.__new__(cls)  # no connection behind it: answers nothing, never crashes
        assert bare.get_extra_info("server_addr") is None
        assert "None" in repr(bare)


@pytest.mark.anyio
async def test_a_response_read_while_a_trace_callback_waits_names_its_connection(scripted):
    # The server answers first; the response is in while the async trace callback
    # still holds the request back at its gate.
    import anyio

    def handler(conn):
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
        conn.read_request()
        conn.hold(1)

    async def trace(name, info):
        if name == "http11.send_request_headers.started":
            await anyio.sleep(0.3)

    srv = scripted(handler)
    async with httprs.AsyncClient(timeout=5) as client:
        r = await client.get(srv.url + "/", extensions={"trace": trace})
        assert r.text == "hi"
        assert stream_of(r).get_extra_info("server_addr") == ("127.0.0.1", srv.port)


def test_a_lent_socket_set_blocking_keeps_the_descriptor_non_blocking(scripted):
    """The socket shares its descriptor's flags with the connection's, which must stay
    non-blocking: setblocking(True) / settimeout(None) block in Python (poll), as
    gettimeout() and getblocking() say, and the connection goes on working."""
    srv = scripted(keepalive)
    with httprs.Client(timeout=5) as client:
        sock = stream_of(client.get(srv.url + "/")).get_extra_info("socket")
        for set_mode in (lambda: sock.setblocking(True), lambda: sock.settimeout(None)):
            set_mode()
            assert sock.gettimeout() is None and sock.getblocking()
            assert fcntl.fcntl(sock.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK
        sock.settimeout(2.5)
        assert sock.gettimeout() == 2.5
        sock.setblocking(False)
        assert sock.gettimeout() == 0.0 and not sock.getblocking()
        copy = sock.dup()
        assert copy.gettimeout() == 0.0
        copy.setblocking(True)
        assert fcntl.fcntl(copy.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK
        copy.close()
        assert client.get(srv.url + "/").text == "ok"
    assert srv.connections == 1


def test_a_lent_socket_left_open_closes_without_a_resource_warning(scripted):
    """httpcore's socket is the connection's and nobody closes it by hand: a lent one
    dropped open closes quietly (a suite under `-W error` fails on the warning), while
    a dup() the program made warns as any socket it leaves open does."""
    srv = scripted(keepalive)
    with httprs.Client(timeout=5) as client:
        sock = stream_of(client.get(srv.url + "/")).get_extra_info("socket")
        copy = sock.dup()
        fds = (sock.fileno(), copy.fileno())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del sock, copy
            gc.collect()
        unclosed = [str(w.message) for w in caught if w.category is ResourceWarning]
        assert len(unclosed) == 1 and f"fd={fds[1]}" in unclosed[0]
        for fd in fds:
            with pytest.raises(OSError):
                os.fstat(fd)
        assert client.get(srv.url + "/").text == "ok"
    assert srv.connections == 1


# A server that never reads: an upload fills both socket buffers, and only the write
# timeout ends it. In a child process: a hang must fail the test, not stop the suite.
_UNREAD_UPLOAD = textwrap.dedent(
    """
    import socket, sys, threading, time
    import httprs

    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    held = []

    def serve():
        conn, _ = lst.accept()
        held.append(conn)
        if conn.recv(65536).startswith(b"GET"):  # network_stream's first request
            conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
        time.sleep(30)  # then nothing more is read

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{lst.getsockname()[1]}/"
    where = sys.argv[1]

    def trace(name, info):
        if name == "connection.connect_tcp.complete":
            info["return_value"].get_extra_info("socket").setblocking(True)

    with httprs.Client(timeout=httprs.Timeout(5, write=1)) as client:
        if where == "trace":
            ext = {"trace": trace}
        else:
            r = client.get(url)
            r.extensions["network_stream"].get_extra_info("socket").setblocking(True)
            ext = {}
        try:
            client.post(url, content=b"x" * (64 << 20), extensions=ext)
        except httprs.WriteTimeout:
            print("WriteTimeout")
    """
)


@pytest.mark.parametrize("where", ["trace", "network_stream"])
def test_a_socket_set_blocking_by_the_caller_never_stalls_the_connection(where):
    """setblocking(True) on the lent socket (a trace callback's at connect_tcp.complete,
    or a response's network_stream) used to clear O_NONBLOCK on the connection's
    descriptor, and the next upload to a server that stopped reading blocked in the
    engine's write, past the write timeout, with the engine's lock held."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", _UNREAD_UPLOAD, where],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the upload hung past its write timeout")
    assert out.stdout.strip() == "WriteTimeout", out.stderr[-2000:]
