"""HTTP/2: the test servers (hypercorn over TLS + ALPN and h2c, the scripted h2-package
server), checked with httpx + h2 (the reference client) and a raw h2 client, so the
HTTP/2 tests of httprs stand on servers known to behave.

httprs's own HTTP/2 (Client(http2=True)) is not wired yet: until it is, http2=True raises
(tests/client/test_client.py::test_http2_unsupported) and never falls back to HTTP/1.1.
"""

from __future__ import annotations

import socket
import ssl

import h2.config
import h2.connection
import h2.errors
import h2.events
import httpx
import pytest
from servers.h2server import goaway_every, refuse_first, serve_path


def test_hypercorn_tls_speaks_h2_by_alpn(hypercorn_tls, certs):
    with httpx.Client(
        http2=True, verify=ssl.create_default_context(cafile=certs.ca_file)
    ) as client:
        r = client.get(hypercorn_tls.url + "/")
        assert r.http_version == "HTTP/2"
        assert r.status_code == 200
        assert r.text == "Hello, world!"
        echo = client.post(hypercorn_tls.url + "/echo", content=b"abc").json()
        assert echo["http_version"] == "2"
        assert echo["body"] == "abc"
    # The same server still answers HTTP/1.1 clients.
    with httpx.Client(verify=ssl.create_default_context(cafile=certs.ca_file)) as client:
        assert client.get(hypercorn_tls.url + "/").http_version == "HTTP/1.1"


def test_hypercorn_h2c_prior_knowledge(hypercorn_h2c):
    with httpx.Client(http1=False, http2=True) as client:
        r = client.get(hypercorn_h2c.url + "/bytes/100000")
        assert r.http_version == "HTTP/2"
        assert len(r.content) == 100000
    with httpx.Client() as client:
        assert client.get(hypercorn_h2c.url + "/").http_version == "HTTP/1.1"


class RawH2Client:
    """A blocking h2-package client over one socket, to check the scripted server."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="latin-1")
        )
        self.h2.initiate_connection()
        self.sock.sendall(self.h2.data_to_send())
        self.events: list = []

    def request(self, path: str) -> int:
        sid = self.h2.get_next_available_stream_id()
        headers = [(":method", "GET"), (":path", path), (":scheme", "http")]
        self.h2.send_headers(sid, [*headers, (":authority", "x")], end_stream=True)
        self.sock.sendall(self.h2.data_to_send())
        return sid

    def read_until(self, predicate) -> list:
        while not any(predicate(e) for e in self.events):
            data = self.sock.recv(65536)
            if not data:
                break
            self.events += self.h2.receive_data(data)
            if out := self.h2.data_to_send():
                self.sock.sendall(out)
        return self.events

    def close(self) -> None:
        self.sock.close()


def test_scripted_h2_server_goaways_after_n_requests(h2_scripted):
    srv = h2_scripted(goaway_every(3))
    client = RawH2Client(srv.port)
    try:
        for i in range(3):
            sid = client.request(f"/{i}")
            events = client.read_until(
                lambda e, sid=sid: isinstance(e, h2.events.StreamEnded) and e.stream_id == sid
            )
        data = [e.data for e in events if isinstance(e, h2.events.DataReceived) and e.data]
        assert data == [b"/0", b"/1", b"/2"]
        events = client.read_until(lambda e: isinstance(e, h2.events.ConnectionTerminated))
        goaway = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
        assert goaway[0].last_stream_id == 5
        assert goaway[0].error_code == 0
    finally:
        client.close()


def test_scripted_h2_server_refused_stream_and_settings(h2_scripted):
    srv = h2_scripted(refuse_first, max_concurrent_streams=7, initial_window_size=100)
    client = RawH2Client(srv.port)
    try:
        first = client.request("/a")
        events = client.read_until(lambda e: isinstance(e, h2.events.StreamReset))
        reset = [e for e in events if isinstance(e, h2.events.StreamReset)][0]
        assert reset.stream_id == first
        assert reset.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
        assert client.h2.remote_settings.max_concurrent_streams == 7
        assert client.h2.remote_settings.initial_window_size == 100
        second = client.request("/b")
        events = client.read_until(
            lambda e: isinstance(e, h2.events.StreamEnded) and e.stream_id == second
        )
        assert [e.data for e in events if isinstance(e, h2.events.DataReceived) and e.data] == [
            b"/b"
        ]
    finally:
        client.close()


def test_httpx_fails_on_refused_stream_reference(h2_scripted):
    """The reference: httpx + h2 raises RemoteProtocolError for a REFUSED_STREAM (it does
    not retry); the connection serves the next request."""
    srv = h2_scripted(refuse_first)
    with httpx.Client(http1=False, http2=True) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(srv.url + "/x")
        r = client.get(srv.url + "/y")
        assert (r.http_version, r.text) == ("HTTP/2", "/y")


def test_scripted_h2_server_answers_httpx(h2_scripted):
    srv = h2_scripted(serve_path)
    with httpx.Client(http1=False, http2=True) as client:
        for path in ("/one", "/two"):
            r = client.get(srv.url + path)
            assert (r.status_code, r.http_version, r.text) == (200, "HTTP/2", path)
    assert srv.connections == 1
