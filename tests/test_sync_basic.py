"""End-to-end behaviour of the sync Client against the uvicorn app and scripted servers."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json

import pytest
from servers.app import (
    CHUNKS,
    DECODED_TEXT,
    JSON_DOC,
    LATIN1_TEXT,
    expected_bytes,
    stream_lines,
)
from servers.scripted import chunked, echo_request_count, keepalive, response_bytes

import httprs


@pytest.fixture
def client():
    with httprs.Client() as c:
        yield c


def echo(response):
    doc = response.json()
    doc["headers_dict"] = {}
    for k, v in doc["headers"]:
        doc["headers_dict"].setdefault(k, v)
    return doc


# -- methods ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_methods(client, server, method):
    r = client.request(method, server.url + "/echo?a=1&b=two")
    assert r.status_code == 200
    doc = echo(r)
    assert doc["method"] == method
    assert doc["path"] == "/echo"
    assert doc["query"] == "a=1&b=two"
    assert r.request.method == method


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete", "options", "head"])
def test_method_helpers(client, server, method):
    r = getattr(client, method)(server.url + "/echo")
    assert r.status_code == 200
    if method == "head":
        assert r.content == b""
        assert int(r.headers["content-length"]) > 0
    else:
        assert echo(r)["method"] == method.upper()


def test_default_request_headers(client, server):
    doc = echo(client.get(server.url + "/echo"))
    names = [k for k, _ in doc["headers"]]
    assert names[0] == "host"
    h = doc["headers_dict"]
    assert h["host"] == server.url.split("//")[1]
    assert h["accept"] == "*/*"
    assert h["accept-encoding"] == "gzip, deflate, br, zstd"
    assert h["connection"] == "keep-alive"
    assert h["user-agent"] == f"python-httpx/{httprs.__version__}" or h["user-agent"].startswith(
        "python-"
    )
    assert "content-length" not in h


def test_custom_headers_and_params(client, server):
    r = client.get(
        server.url + "/echo",
        params={"q": "a b", "x": ["1", "2"]},
        headers={"X-Token": "abc", "accept": "text/plain"},
    )
    doc = echo(r)
    assert doc["query"] == "q=a+b&x=1&x=2"
    assert doc["headers_dict"]["x-token"] == "abc"
    assert doc["headers_dict"]["accept"] == "text/plain"
    assert str(r.url) == server.url + "/echo?q=a+b&x=1&x=2"


# -- request bodies -------------------------------------------------------------


def test_body_bytes(client, server):
    doc = echo(client.post(server.url + "/echo", content=b"hello bytes"))
    assert doc["body"] == "hello bytes"
    assert doc["headers_dict"]["content-length"] == "11"
    assert "transfer-encoding" not in doc["headers_dict"]


def test_body_str(client, server):
    doc = echo(client.put(server.url + "/echo", content="héllo"))
    assert doc["body"].encode("latin-1") == "héllo".encode()
    assert doc["headers_dict"]["content-length"] == str(len("héllo".encode()))


def test_body_generator_is_chunked(client, server):
    def gen():
        yield b"part1-"
        yield b"part2-"
        yield b"part3"

    doc = echo(client.post(server.url + "/echo", content=gen()))
    assert doc["body"] == "part1-part2-part3"
    assert doc["headers_dict"]["transfer-encoding"] == "chunked"
    assert "content-length" not in doc["headers_dict"]


def test_body_empty_post_sends_content_length_zero(client, server):
    doc = echo(client.post(server.url + "/echo"))
    assert doc["body"] == ""
    assert doc["headers_dict"]["content-length"] == "0"


def test_data_form(client, server):
    doc = echo(client.post(server.url + "/echo", data={"a": "1", "b": ["x", "y z"]}))
    assert doc["body"] == "a=1&b=x&b=y+z"
    assert doc["headers_dict"]["content-type"] == "application/x-www-form-urlencoded"


def test_json_body(client, server):
    doc = echo(client.post(server.url + "/echo", json={"k": [1, 2], "é": None}))
    assert doc["headers_dict"]["content-type"] == "application/json"
    assert json.loads(doc["body"].encode("latin-1")) == {"k": [1, 2], "é": None}
    # httpx 0.28 serialises compactly
    assert doc["body"].encode("latin-1") == json.dumps(
        {"k": [1, 2], "é": None}, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")


def test_files_multipart(client, server):
    r = client.post(
        server.url + "/echo",
        data={"field": "value"},
        files={"upload": ("hello.txt", b"file contents", "text/plain")},
    )
    doc = echo(r)
    ctype = doc["headers_dict"]["content-type"]
    assert ctype.startswith("multipart/form-data; boundary=")
    boundary = ctype.split("boundary=")[1]
    body = doc["body"]
    assert f"--{boundary}\r\n" in body
    assert 'Content-Disposition: form-data; name="field"\r\n\r\nvalue\r\n' in body
    assert 'Content-Disposition: form-data; name="upload"; filename="hello.txt"' in body
    assert "Content-Type: text/plain\r\n\r\nfile contents\r\n" in body
    assert body.endswith(f"--{boundary}--\r\n")
    assert doc["headers_dict"]["content-length"] == str(len(body.encode("latin-1")))


def test_files_from_file_object(client, server, tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"\x00\x01binary\xff")
    with open(path, "rb") as f:
        doc = echo(client.post(server.url + "/echo", files={"f": f}))
    assert 'filename="data.bin"' in doc["body"]
    assert "\x00\x01binary\xff" in doc["body"]


# -- response attributes -------------------------------------------------------


def test_response_attributes(client, server):
    r = client.get(server.url + "/")
    assert r.status_code == 200
    assert r.reason_phrase == "OK"
    assert r.http_version == "HTTP/1.1"
    assert r.content == b"Hello, world!"
    assert r.text == "Hello, world!"
    assert r.encoding == "utf-8"
    assert r.headers["content-type"] == "text/plain"
    assert r.headers["content-length"] == "13"
    assert r.headers["server"] == "uvicorn"
    assert r.url == httprs.URL(server.url + "/")
    assert isinstance(r.url, httprs.URL)
    assert isinstance(r.elapsed, datetime.timedelta)
    assert r.elapsed.total_seconds() >= 0
    assert r.is_success and not r.is_error and not r.is_redirect
    assert not r.is_client_error and not r.is_server_error and not r.is_informational
    assert r.is_closed and r.is_stream_consumed
    assert r.num_bytes_downloaded == 13
    assert r.has_redirect_location is False
    assert r.history == []
    assert r.next_request is None
    assert r.request.url == r.url
    assert r.raise_for_status() is r
    assert repr(r) == "<Response [200 OK]>"


@pytest.mark.parametrize(
    "code,reason",
    [(201, "Created"), (404, "Not Found"), (418, "I'm a Teapot"), (503, "Service Unavailable")],
)
def test_status_codes(client, server, code, reason):
    r = client.get(server.url + f"/status/{code}")
    assert r.status_code == code
    assert r.reason_phrase == reason
    assert r.is_success == (200 <= code < 300)
    assert r.is_client_error == (400 <= code < 500)
    assert r.is_server_error == (500 <= code < 600)
    if code >= 400:
        with pytest.raises(httprs.HTTPStatusError) as info:
            r.raise_for_status()
        assert info.value.response is r
        assert info.value.request is r.request


def test_reason_phrase_from_server(client, scripted):
    srv = scripted(keepalive_status("299 Custom Thing"))
    r = client.get(srv.url)
    assert r.status_code == 299
    assert r.reason_phrase == "Custom Thing"


def keepalive_status(status):
    def handler(conn):
        while conn.read_request() is not None:
            conn.respond(b"x", status=status)

    return handler


def test_response_headers_multi(client, server):
    r = client.get(server.url + "/headers")
    h = r.headers
    assert h["x-custom"] == "custom value"
    assert h["X-CUSTOM"] == "custom value"
    assert h["x-dup"] == "one, two"
    assert h.get_list("x-dup") == ["one", "two"]
    assert h.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/", "c=3; Path=/; HttpOnly"]
    assert h["x-empty"] == ""
    assert h["x-latin1"] == "café"
    assert h["x-many-39"] == "value-39"
    assert dict(r.cookies) == {"a": "1", "b": "2", "c": "3"}
    raw_names = [k for k, _ in h.raw]
    assert raw_names.count(b"set-cookie") == 3
    assert h.multi_items()[:2] == [("date", h["date"]), ("server", "uvicorn")]


def test_json_response(client, server):
    r = client.get(server.url + "/json")
    assert r.json() == JSON_DOC
    assert r.headers["content-type"] == "application/json"
    assert r.encoding == "utf-8"


def test_charset_latin1(client, server):
    r = client.get(server.url + "/text_latin1")
    assert r.charset_encoding == "latin-1"
    assert r.encoding == "latin-1"
    assert r.text == LATIN1_TEXT
    assert r.content == LATIN1_TEXT.encode("latin-1")


def test_encoding_override(client, server):
    r = client.get(server.url + "/text_latin1")
    r.encoding = "utf-8"
    assert r.text == LATIN1_TEXT.encode("latin-1").decode("utf-8", errors="replace")


def test_default_encoding_client(server):
    with httprs.Client(default_encoding="latin-1") as c:
        r = c.get(server.url + "/bytes/4")
        assert r.encoding == "latin-1"
        assert r.text == expected_bytes(4).decode("latin-1")


# -- streaming -------------------------------------------------------------------


def test_stream_iter_bytes(client, server):
    with client.stream("GET", server.url + "/bytes/300000") as r:
        assert r.status_code == 200
        assert not r.is_closed
        assert not r.is_stream_consumed
        with pytest.raises(httprs.ResponseNotRead):
            r.content  # noqa: B018
        parts = list(r.iter_bytes())
        assert r.is_stream_consumed
    assert r.is_closed
    assert b"".join(parts) == expected_bytes(300000)
    assert r.num_bytes_downloaded == 300000


def test_stream_iter_bytes_chunk_size(client, server):
    with client.stream("GET", server.url + "/bytes/100000") as r:
        sizes = [len(c) for c in r.iter_bytes(chunk_size=4096)]
    assert all(s == 4096 for s in sizes[:-1])
    assert sum(sizes) == 100000
    assert 0 < sizes[-1] <= 4096


def test_stream_iter_text_and_lines(client, server):
    with client.stream("GET", server.url + "/stream/50") as r:
        lines = list(r.iter_lines())
    assert lines == [line.decode().rstrip("\n") for line in stream_lines(50)]
    with client.stream("GET", server.url + "/stream/5") as r:
        text = "".join(r.iter_text())
    assert text == b"".join(stream_lines(5)).decode()


def test_stream_iter_raw_not_decoded(client, server):
    with client.stream("GET", server.url + "/gzip") as r:
        raw = b"".join(r.iter_raw())
    assert gzip.decompress(raw) == DECODED_TEXT
    assert r.num_bytes_downloaded == len(raw)


def test_stream_read_then_content(client, server):
    with client.stream("GET", server.url + "/json") as r:
        r.read()
        assert r.json() == JSON_DOC
        assert r.is_stream_consumed


def test_stream_consumed_twice(client, server):
    with client.stream("GET", server.url + "/bytes/10") as r:
        list(r.iter_bytes())
        with pytest.raises(httprs.StreamConsumed):
            list(r.iter_bytes())


def test_stream_closed_before_read(client, server):
    with client.stream("GET", server.url + "/bytes/10") as r:
        pass
    with pytest.raises(httprs.StreamClosed):
        list(r.iter_bytes())


def test_send_stream_true(client, server):
    req = client.build_request("GET", server.url + "/bytes/1000")
    r = client.send(req, stream=True)
    try:
        assert not r.is_closed
        assert r.read() == expected_bytes(1000)
    finally:
        r.close()
    assert r.is_closed


# -- keep-alive --------------------------------------------------------------------


def test_keepalive_single_connection(client, scripted):
    srv = scripted(echo_request_count)
    bodies = [client.get(srv.url + f"/{i}").text for i in range(5)]
    assert bodies == ["0:1", "0:2", "0:3", "0:4", "0:5"]
    assert srv.connections == 1


def test_keepalive_uvicorn_same_client_port(client, server):
    ports = {client.get(server.url + "/client_port").text for _ in range(4)}
    assert len(ports) == 1


def test_keepalive_after_post_bodies(client, scripted):
    srv = scripted(echo_request_count)
    client.post(srv.url, content=b"a" * 1000)
    client.post(srv.url, content=iter([b"b" * 10, b"c" * 10]))
    client.get(srv.url)
    assert srv.connections == 1
    assert [r.method for r in srv.requests] == ["POST", "POST", "GET"]
    assert srv.requests[0].body == b"a" * 1000
    assert srv.requests[1].body == b"b" * 10 + b"c" * 10


def test_separate_clients_separate_connections(scripted):
    srv = scripted(echo_request_count)
    with httprs.Client() as a, httprs.Client() as b:
        a.get(srv.url)
        b.get(srv.url)
    assert srv.connections == 2


def test_client_close_closes_connections(scripted):
    closed = []

    def handler(conn):
        while conn.read_request() is not None:
            conn.respond(b"x")
        closed.append(conn.index)

    srv = scripted(handler)
    c = httprs.Client()
    c.get(srv.url)
    c.close()
    assert c.is_closed
    import time

    deadline = time.monotonic() + 3
    while not closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert closed == [0]
    with pytest.raises(RuntimeError):
        c.get(srv.url)


# -- large bodies ----------------------------------------------------------------------


def test_download_10mb(client, server):
    n = 10 * 1024 * 1024
    r = client.get(server.url + f"/bytes/{n}")
    assert len(r.content) == n
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(expected_bytes(n)).digest()


def test_upload_10mb_bytes(client, server):
    data = expected_bytes(10 * 1024 * 1024)
    r = client.post(server.url + "/upload_size", content=data)
    assert r.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_upload_10mb_generator(client, server):
    data = expected_bytes(10 * 1024 * 1024)

    def gen():
        for i in range(0, len(data), 1 << 20):
            yield data[i : i + (1 << 20)]

    r = client.post(server.url + "/upload_size", content=gen())
    assert r.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


# -- framing / decoding -------------------------------------------------------------------


def test_chunked_response(client, server):
    r = client.get(server.url + "/chunked")
    assert r.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in r.headers
    assert r.content == b"".join(CHUNKS)


@pytest.mark.parametrize(
    "route,encoding",
    [
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip_br", "gzip, br"),
        ("gzip_chunked", "gzip"),
    ],
)
def test_content_decoding(client, server, route, encoding):
    r = client.get(server.url + "/" + route)
    assert r.headers["content-encoding"] == encoding
    assert r.content == DECODED_TEXT
    assert r.text == DECODED_TEXT.decode()
    assert r.num_bytes_downloaded < len(DECODED_TEXT)


@pytest.mark.parametrize("route", ["gzip", "br", "zstd", "gzip_br"])
def test_content_decoding_streamed(client, server, route):
    with client.stream("GET", server.url + "/" + route) as r:
        out = b"".join(r.iter_bytes(chunk_size=100))
    assert out == DECODED_TEXT


def test_decoding_error(client, scripted):
    srv = scripted(keepalive(b"this is not gzip", headers=[("Content-Encoding", "gzip")]))
    with pytest.raises(httprs.DecodingError):
        client.get(srv.url)
    with client.stream("GET", srv.url) as r:
        assert b"".join(r.iter_raw()) == b"this is not gzip"


def test_unknown_content_encoding_passthrough(client, scripted):
    srv = scripted(keepalive(b"raw-bytes", headers=[("Content-Encoding", "foo")]))
    assert client.get(srv.url).content == b"raw-bytes"


def test_no_content_204(client, server):
    r = client.get(server.url + "/no_content")
    assert r.status_code == 204
    assert r.content == b""
    assert r.reason_phrase == "No Content"


def test_not_modified_304(client, server):
    r = client.get(server.url + "/not_modified")
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == '"abc"'


def test_head_has_no_body(client, server):
    r = client.head(server.url + "/head")
    assert r.status_code == 200
    assert r.headers["content-length"] == "1000"
    assert r.headers["x-head"] == "yes"
    assert r.content == b""
    # and the connection stays usable
    assert client.get(server.url + "/head").content == b"x" * 1000


def test_head_204_304_scripted_reuse(client, scripted):
    """HEAD/204/304 with framing headers have no body; the connection is reused."""

    def handler(conn):
        while (req := conn.read_request()) is not None:
            if req.target == "/head":
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 256\r\n\r\n")
            elif req.target == "/head_chunked":
                conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            elif req.target == "/304":
                conn.send(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n")
            else:
                conn.respond(b"final")

    srv = scripted(handler)
    assert client.head(srv.url + "/head").headers["content-length"] == "256"
    assert client.head(srv.url + "/head_chunked").content == b""
    assert client.get(srv.url + "/304").status_code == 304
    assert client.get(srv.url + "/end").text == "final"
    assert srv.connections == 1


def test_http10_response(client, scripted):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nclose-delimited body")

    srv = scripted(handler)
    r = client.get(srv.url)
    assert r.http_version == "HTTP/1.0"
    assert r.text == "close-delimited body"
    r2 = client.get(srv.url)
    assert r2.text == "close-delimited body"
    assert srv.connections == 2


def test_http10_with_content_length_not_reused(client, scripted):
    def handler(conn):
        while conn.read_request() is not None:
            conn.send(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")

    srv = scripted(handler)
    assert client.get(srv.url).text == "ok"
    assert client.get(srv.url).text == "ok"
    assert srv.connections == 2


def test_connection_close_response_not_reused(client, server, scripted):
    srv = scripted(keepalive(b"bye", headers=[("Connection", "close")]))
    assert client.get(srv.url).text == "bye"
    assert client.get(srv.url).text == "bye"
    assert srv.connections == 2
    r = client.get(server.url + "/close")
    assert r.headers["connection"] == "close"
    assert r.text == "closing"
    p1 = client.get(server.url + "/client_port").text
    assert client.get(server.url + "/client_port").text == p1


def test_interim_responses_skipped(client, scripted):
    def handler(conn):
        while conn.read_request() is not None:
            conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
            conn.respond(b"final body", headers=[("X-Final", "1")])

    srv = scripted(handler)
    r = client.get(srv.url)
    assert r.status_code == 200
    assert r.headers["x-final"] == "1"
    assert "link" not in r.headers
    assert r.text == "final body"
    assert client.get(srv.url).text == "final body"
    assert srv.connections == 1


def test_chunked_with_trailers(client, scripted):
    def handler(conn):
        while conn.read_request() is not None:
            conn.send(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
                + chunked(b"hello ", b"world", trailers=b"X-Sum: 42\r\n")
            )

    srv = scripted(handler)
    r = client.get(srv.url)
    assert r.text == "hello world"
    assert "x-sum" not in r.headers
    assert client.get(srv.url).text == "hello world"
    assert srv.connections == 1


def test_response_without_reason(client, scripted):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok")

    srv = scripted(handler)
    r = client.get(srv.url)
    assert r.status_code == 200
    assert r.reason_phrase == ""
    assert r.text == "ok"


# -- redirects and cookies (client layer over the transport) --------------------------------


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirect_not_followed_by_default(client, server, code):
    r = client.post(server.url + f"/redirect/{code}", content=b"body")
    assert r.status_code == code
    assert r.is_redirect
    assert r.has_redirect_location
    assert r.next_request is not None
    assert r.next_request.url == httprs.URL(server.url + "/echo")


@pytest.mark.parametrize(
    "code,method,body",
    [
        (301, "GET", ""),
        (302, "GET", ""),
        (303, "GET", ""),
        (307, "POST", "data"),
        (308, "POST", "data"),
    ],
)
def test_redirect_followed(client, server, code, method, body):
    r = client.post(server.url + f"/redirect/{code}", content=b"data", follow_redirects=True)
    doc = echo(r)
    assert doc["method"] == method
    assert doc["body"] == body
    assert [h.status_code for h in r.history] == [code]
    assert r.url == httprs.URL(server.url + "/echo")


def test_redirect_absolute_and_chain(client, server):
    r = client.get(server.url + "/redirect/absolute/302", follow_redirects=True)
    assert r.url.path == "/echo"
    r = client.get(server.url + "/redirect/chain/3", follow_redirects=True)
    assert len(r.history) == 3
    assert r.url.path == "/echo"


def test_redirect_cross_origin_strips_authorization(client, server, server2):
    r = client.get(
        server.url + "/redirect/cross/302",
        headers={"Authorization": "Bearer secret"},
        follow_redirects=True,
    )
    assert r.url == httprs.URL(server2.url + "/echo")
    assert "authorization" not in echo(r)["headers_dict"]
    r = client.get(
        server.url + "/redirect/302",
        headers={"Authorization": "Bearer secret"},
        follow_redirects=True,
    )
    assert echo(r)["headers_dict"]["authorization"] == "Bearer secret"


def test_redirect_loop(client, server):
    with pytest.raises(httprs.TooManyRedirects):
        client.get(server.url + "/redirect/loop", follow_redirects=True)
    with httprs.Client(max_redirects=2) as c:
        with pytest.raises(httprs.TooManyRedirects):
            c.get(server.url + "/redirect/chain/3", follow_redirects=True)


def test_redirect_unsupported_scheme(client, server):
    with pytest.raises(httprs.UnsupportedProtocol):
        client.get(
            server.url + "/redirect/to",
            params={"url": "ftp://example.org/x"},
            follow_redirects=True,
        )


def test_cookies_roundtrip(client, server):
    r = client.get(server.url + "/cookies/set?session=abc&theme=dark")
    assert dict(r.cookies) == {"session": "abc", "theme": "dark"}
    assert client.get(server.url + "/cookies").json() == {"session": "abc", "theme": "dark"}
    client.get(server.url + "/cookies/delete?theme=")
    assert client.get(server.url + "/cookies").json() == {"session": "abc"}


def test_event_hooks_and_logging(server, caplog):
    seen = []
    with httprs.Client(
        event_hooks={
            "request": [lambda req: seen.append(("req", req.method))],
            "response": [lambda resp: seen.append(("resp", resp.status_code))],
        }
    ) as c:
        with caplog.at_level("INFO"):
            c.get(server.url + "/status/404")
    assert seen == [("req", "GET"), ("resp", 404)]
    assert f'HTTP Request: GET {server.url}/status/404 "HTTP/1.1 404 Not Found"' in caplog.messages


def test_base_url(server):
    with httprs.Client(base_url=server.url + "/") as c:
        assert echo(c.get("echo"))["path"] == "/echo"
        assert c.get("/json").json() == JSON_DOC


# -- top level API ---------------------------------------------------------------------


def test_top_level_get(server):
    r = httprs.get(server.url + "/json")
    assert r.status_code == 200
    assert r.json() == JSON_DOC


@pytest.mark.parametrize("fn", ["post", "put", "patch"])
def test_top_level_with_body(server, fn):
    r = getattr(httprs, fn)(server.url + "/echo", content=b"x")
    assert echo(r)["method"] == fn.upper()
    assert echo(r)["body"] == "x"


def test_top_level_delete_options_head_request(server):
    assert echo(httprs.delete(server.url + "/echo"))["method"] == "DELETE"
    assert echo(httprs.options(server.url + "/echo"))["method"] == "OPTIONS"
    assert httprs.head(server.url + "/head").content == b""
    assert echo(httprs.request("PUT", server.url + "/echo"))["method"] == "PUT"


def test_top_level_stream(server):
    with httprs.stream("GET", server.url + "/stream/3") as r:
        assert list(r.iter_lines()) == ["line 0", "line 1", "line 2"]


def test_top_level_follow_redirects(server):
    assert httprs.get(server.url + "/redirect/302").status_code == 302
    r = httprs.get(server.url + "/redirect/302", follow_redirects=True)
    assert r.status_code == 200


def test_response_bytes_helper():
    # sanity of the scripted helper itself (so fault tests rely on correct framing)
    assert response_bytes(b"ab") == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab"


def _ipv6_available():
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_available(), reason="no IPv6 loopback")
def test_ipv6_literal(client, scripted):
    srv = scripted(keepalive(b"v6"), host="::1")
    assert srv.url.startswith("http://[::1]:")
    r = client.get(srv.url + "/six")
    assert r.text == "v6"
    assert r.url.host == "::1"
    assert srv.requests[-1].header("host") == f"[::1]:{srv.port}"


def test_expect_100_continue(client, scripted):
    def handler(conn):
        while (req := conn.read_request(body=False)) is not None:
            if req.header("expect") == "100-continue":
                conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = conn.read_body(req)
            conn.respond(b"got " + body)

    srv = scripted(handler)
    r = client.post(srv.url, content=b"payload", headers={"Expect": "100-continue"})
    assert r.status_code == 200
    assert r.text == "got payload"
    assert client.post(srv.url, content=b"again").text == "got again"
    assert srv.connections == 1


@pytest.mark.parametrize("code", [307, 308])
def test_redirect_with_consumed_generator_body_raises(client, server, code):
    """A body that was already streamed can't be replayed on 307/308: never send it empty."""

    def gen():
        yield b"once"

    with pytest.raises(httprs.StreamConsumed):
        client.post(server.url + f"/redirect/{code}", content=gen(), follow_redirects=True)
    assert client.get(server.url + "/").status_code == 200


def test_generator_body_dropped_on_302(client, server):
    def gen():
        yield b"once"

    r = client.post(server.url + "/redirect/302", content=gen(), follow_redirects=True)
    assert echo(r)["method"] == "GET"
    assert echo(r)["body"] == ""
    assert "transfer-encoding" not in echo(r)["headers_dict"]


def test_many_sequential_requests_one_connection(scripted):
    srv = scripted(echo_request_count)
    with httprs.Client() as c:
        for i in range(1, 501):
            assert c.get(srv.url + "/n").text == f"0:{i}"
    assert srv.connections == 1


def _big_chunked_handler(conn):
    # 3 MB in 16 KB chunks, no Content-Length: more than the core's 1 MB pause mark.
    while conn.read_request() is not None:
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.send(chunked(*[bytes([i % 251]) * 16384 for i in range(192)]))


def test_large_chunked_body_read_whole(client, scripted):
    srv = scripted(_big_chunked_handler)
    r = client.get(srv.url + "/big")
    assert len(r.content) == 192 * 16384
    assert r.content[:16384] == b"\x00" * 16384
    assert r.content[-1:] == bytes([191 % 251])
    assert client.get(srv.url + "/again").status_code == 200
    assert srv.connections == 1


def test_large_chunked_body_streamed(client, scripted):
    srv = scripted(_big_chunked_handler)
    with client.stream("GET", srv.url + "/big") as r:
        total = sum(len(b) for b in r.iter_raw())
    assert total == 192 * 16384


def _bomb(coding: str) -> bytes:
    """64 MiB of zeros, compressed to a few tens of KB."""
    import brotli
    import zstandard

    zeros = b"\0" * (64 << 20)
    if coding == "gzip":
        return gzip.compress(zeros, 9)
    if coding == "br":
        return brotli.compress(zeros, quality=5)
    return zstandard.ZstdCompressor(level=3).compress(zeros)


@pytest.mark.httprs_only  # httpx inflates each network chunk in full
@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_streamed_decompression_is_bounded_per_chunk(client, scripted, coding):
    """A decompression bomb read with iter_bytes inflates at most 1 MiB at a time, on
    every read (reliability catalogue D01/D05), and the whole body still decodes."""
    body = _bomb(coding)

    def handler(conn):
        while conn.read_request() is not None:
            conn.send(
                b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n"
                % (coding.encode(), len(body))
                + body
            )

    srv = scripted(handler)
    with client.stream("GET", srv.url + "/bomb") as r:
        it = r.iter_bytes()
        sizes = [len(next(it)) for _ in range(3)]
    assert all(0 < n <= 1 << 20 for n in sizes), sizes
    with client.stream("GET", srv.url + "/bomb") as r:
        total = 0
        for chunk in r.iter_bytes():
            assert len(chunk) <= 1 << 20
            total += len(chunk)
    assert total == 64 << 20


def test_client_init_stores_base_url_and_timeout_without_their_setters(server):
    """As httpx's BaseClient.__init__: base_url and timeout are stored as given (a
    subclass's property setters run only when code assigns them), headers goes through
    its setter; each client gets its own Timeout."""
    calls = []

    def recording(name):
        def get(self):
            return getattr(self, "_" + name)

        def set(self, value):
            calls.append(name)
            getattr(httprs.Client, name).fset(self, value)

        return property(get, set)

    class Sub(httprs.Client):
        timeout = recording("timeout")
        base_url = recording("base_url")
        headers = recording("headers")

    with Sub(base_url=server.url + "/echo", timeout=3.0) as c, Sub() as d:
        assert calls == ["headers", "headers"]
        assert c.timeout == httprs.Timeout(3.0)
        assert d.timeout == httprs.Timeout(5.0)
        assert c.timeout is not d.timeout
        assert d.timeout is not httprs.Client().timeout
        assert c.base_url == server.url + "/echo/"
        assert d.base_url == ""
        assert c.get("").status_code == 200
        c.timeout = 7.0
        c.base_url = server.url
        assert calls == ["headers", "headers", "timeout", "base_url"]
        assert c.timeout == httprs.Timeout(7.0)
        r = c.get("/echo")
        assert r.request.extensions["timeout"] == httprs.Timeout(7.0).as_dict()
