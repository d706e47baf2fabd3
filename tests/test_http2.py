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
import hyperframe.frame
import pytest
from servers.h2server import (
    goaway_every,
    goaway_midflight,
    refuse_first,
    reset_with,
    serve_path,
    stop_reading,
)


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


def test_scripted_goaway_midflight(h2_scripted):
    """GOAWAY naming the first of two streams, then the first stream's response (the h2
    package cannot read frames after a GOAWAY, so the frames are parsed raw)."""
    srv = h2_scripted(goaway_midflight)
    client = RawH2Client(srv.port)
    try:
        first = client.request("/first")
        second = client.request("/second")
        raw = b""
        client.sock.settimeout(1.0)
        while True:
            try:
                data = client.sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            raw += data
        frames = []
        while len(raw) >= 9:
            frame, length = hyperframe.frame.Frame.parse_frame_header(memoryview(raw[:9]))
            frame.parse_body(memoryview(raw[9 : 9 + length]))
            frames.append(frame)
            raw = raw[9 + length :]
        kinds = [(type(f).__name__, f.stream_id) for f in frames]
        goaway = [f for f in frames if isinstance(f, hyperframe.frame.GoAwayFrame)]
        assert goaway and goaway[0].last_stream_id == first < second
        after = kinds[kinds.index(("GoAwayFrame", 0)) :]
        assert ("HeadersFrame", first) in after
        assert ("DataFrame", first) in after
        assert all(sid != second for _, sid in kinds)
    finally:
        client.close()


def test_httpx_reference_on_stream_reset(h2_scripted):
    """httpx + h2 turns RST_STREAM into RemoteProtocolError; its message gives the code
    as a number (httprs's names it)."""
    srv = h2_scripted(reset_with(h2.errors.ErrorCodes.INTERNAL_ERROR))
    with httpx.Client(http1=False, http2=True) as client:
        with pytest.raises(
            httpx.RemoteProtocolError, match="StreamReset stream_id:1, error_code:2"
        ):
            client.get(srv.url + "/")


def test_scripted_server_that_stops_reading_stalls_an_upload(h2_scripted):
    """A server that stops reading: the upload fills the 64 KiB windows, then httpx
    times out."""
    srv = h2_scripted(stop_reading)
    timeout = httpx.Timeout(1.0)
    with httpx.Client(http1=False, http2=True, timeout=timeout) as client:
        with pytest.raises(httpx.TimeoutException):
            client.post(srv.url + "/", content=b"x" * 1_000_000)
