"""httprs and real httpx, side by side, must return the same thing for the same request."""

from __future__ import annotations

import os

import httpx
import pytest

import httprs

pytestmark = pytest.mark.skipif(
    os.environ.get("HTTPRS_TEST_TARGET") == "httpx",
    reason="differential test: both sides would be httpx in validation mode",
)

IGNORED_HEADERS = {"date"}

CASES = [
    ("GET", "/", {}),
    ("GET", "/echo?a=1&b=%20x", {}),
    ("POST", "/echo", {"content": b"raw body"}),
    ("POST", "/echo", {"json": {"k": ["v", 1, None]}}),
    ("POST", "/echo", {"data": {"a": "1", "b": "2 3"}}),
    ("PUT", "/echo", {"content": "unicode é body"}),
    ("GET", "/echo", {"params": {"q": "x y", "list": ["1", "2"]}, "headers": {"X-A": "b"}}),
    ("DELETE", "/echo", {}),
    ("HEAD", "/head", {}),
    ("GET", "/headers", {}),
    ("GET", "/json", {}),
    ("GET", "/text_latin1", {}),
    ("GET", "/chunked", {}),
    ("GET", "/gzip", {}),
    ("GET", "/deflate", {}),
    ("GET", "/br", {}),
    ("GET", "/zstd", {}),
    ("GET", "/gzip_br", {}),
    ("GET", "/no_content", {}),
    ("GET", "/not_modified", {}),
    ("GET", "/status/404", {}),
    ("GET", "/status/500", {}),
    ("GET", "/redirect/302", {"follow_redirects": True}),
    ("POST", "/redirect/307", {"content": b"keep", "follow_redirects": True}),
    ("POST", "/redirect/303", {"content": b"drop", "follow_redirects": True}),
    ("GET", "/redirect/chain/3", {"follow_redirects": True}),
    ("GET", "/redirect/301", {}),
    ("GET", "/cookies/set?a=1&b=2", {}),
    ("GET", "/stream/20", {}),
    ("GET", "/bytes/100000", {}),
    ("GET", "/close", {}),
]


def normalise_echo(content: bytes, other_port_ok=True):
    import json

    try:
        doc = json.loads(content)
    except ValueError:
        return content
    if isinstance(doc, dict) and "client_port" in doc:
        doc["client_port"] = None
    return doc


def summary(response):
    return {
        "status": response.status_code,
        "reason": response.reason_phrase,
        "http_version": response.http_version,
        "headers": [(k, v) for k, v in response.headers.multi_items() if k not in IGNORED_HEADERS],
        "raw_header_names": [k for k, _ in response.headers.raw if k.lower() != b"date"],
        "content": normalise_echo(response.content),
        "text_prefix": response.text[:200],
        "encoding": response.encoding,
        "url": str(response.url),
        "history": [(r.status_code, str(r.url)) for r in response.history],
        "is_redirect": response.is_redirect,
        "cookies": sorted(response.cookies.items()),
        "request_headers": [
            (k, v)
            for k, v in response.request.headers.multi_items()
            if k not in ("content-type",) or "boundary" not in v
        ],
        "request_method": response.request.method,
    }


@pytest.mark.parametrize("method,path,kwargs", CASES, ids=[f"{m} {p}" for m, p, _ in CASES])
def test_same_as_httpx(server, method, path, kwargs):
    with httpx.Client() as hx, httprs.Client() as rs:
        expected = summary(hx.request(method, server.url + path, **kwargs))
        actual = summary(rs.request(method, server.url + path, **kwargs))
    # the User-Agent may legitimately name httprs
    for doc in (expected, actual):
        doc["request_headers"] = [(k, v) for k, v in doc["request_headers"] if k != "user-agent"]
        if isinstance(doc["content"], dict) and "headers" in doc["content"]:
            doc["content"]["headers"] = [
                h for h in doc["content"]["headers"] if h[0] != "user-agent"
            ]
    assert actual == expected


def test_same_exceptions_as_httpx(server, closed_port):
    for url in [
        f"http://127.0.0.1:{closed_port}/",
        "ftp://127.0.0.1/",
        "http://127.0.0.1:abc/",
        "/relative",
    ]:
        with pytest.raises(Exception) as hx_info:
            httpx.get(url)
        with pytest.raises(Exception) as rs_info:
            httprs.get(url)
        assert type(rs_info.value).__name__ == type(hx_info.value).__name__
        assert getattr(httprs, type(hx_info.value).__name__) is type(rs_info.value)


def test_same_public_api():
    missing = sorted(set(httpx.__all__) - set(dir(httprs)))
    assert missing == []


WIRE_CASES = [
    ("GET", "/plain", {}),
    ("GET", "/q", {"params": {"a": "1 2", "b": "é"}}),
    ("GET", "/h", {"headers": {"X-MiXeD": "v", "accept": "text/html"}}),
    ("POST", "/bytes", {"content": b"abc"}),
    ("POST", "/json", {"json": {"a": [1, 2]}}),
    ("POST", "/form", {"data": {"a": "1"}}),
    ("POST", "/gen", {"content": iter([b"ab", b"", b"cd"])}),
    ("PUT", "/empty", {}),
    ("DELETE", "/d", {}),
    ("HEAD", "/h", {}),
    ("GET", "/c", {"cookies": {"k": "v"}}),
    ("GET", "/auth", {"auth": ("user", "pass")}),
]


@pytest.mark.parametrize(
    "method,path,kwargs", WIRE_CASES, ids=[f"{m} {p}" for m, p, _ in WIRE_CASES]
)
def test_same_bytes_on_the_wire(scripted, method, path, kwargs):
    """The request head and body httprs writes equal httpx's, byte for byte (except the
    User-Agent line)."""
    from servers.scripted import keepalive

    srv = scripted(keepalive(b"ok"))

    def wire(module):
        srv.requests.clear()
        args = dict(kwargs)
        if "content" in args and not isinstance(args["content"], bytes):
            args["content"] = iter([b"ab", b"", b"cd"])
        cookies = args.pop("cookies", None)  # per-request cookies= is deprecated
        with module.Client(cookies=cookies) as c:
            c.request(method, srv.url + path, **args)
        (req,) = srv.requests
        lines = [
            line for line in req.head.split(b"\r\n") if not line.lower().startswith(b"user-agent:")
        ]
        return lines, req.body

    assert wire(httprs) == wire(httpx)


# Request lines llhttp treats apart (fuzz_request_head's allowances): methods it knows
# only from RTSP, which it refuses with an HTTP version, PRI (the HTTP/2 preface), and a
# target that is none of RFC 9112's four forms. Any token is a method and h11 takes any
# visible characters as the target (the `target` extension), so httpx sends them as
# given; httprs sends the same bytes, and exactly one request.
REQUEST_LINES = [("SETUP", b"*="), ("DESCRIBE", b"rtsp://x/"), ("PRI", b"*"), ("GET", b"*=")]


@pytest.mark.parametrize(
    "method,target", REQUEST_LINES, ids=[f"{m} {t.decode()}" for m, t in REQUEST_LINES]
)
def test_request_line_llhttp_treats_apart_sent_as_httpx(scripted, method, target):
    from servers.scripted import keepalive

    srv = scripted(keepalive(b"ok"))

    def wire(module):
        srv.requests.clear()
        with module.Client() as c:
            assert c.request(method, srv.url + "/", extensions={"target": target}).text == "ok"
        (req,) = srv.requests
        return req.head.split(b"\r\n")[0], req.body

    line = (method.encode() + b" " + target + b" HTTP/1.1", b"")
    assert wire(httprs) == wire(httpx) == line


def _two_chunks():
    yield b"abc"
    yield b"de"


FRAMING_SMUGGLE = b"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
FRAMING_CASES = {
    "fixed-te-chunked": ({"Transfer-Encoding": "chunked"}, b"abcde"),
    "fixed-te-Chunked": ({"Transfer-Encoding": "Chunked"}, b"abcde"),
    "smuggle-te-and-cl": (
        {"Transfer-Encoding": "chunked", "Content-Length": str(len(FRAMING_SMUGGLE))},
        FRAMING_SMUGGLE,
    ),
    "empty-te-chunked": ({"Transfer-Encoding": "chunked"}, b""),
    "stream-cl": ({"Content-Length": "5"}, _two_chunks),
    "stream-cl-and-te": ({"Content-Length": "5", "Transfer-Encoding": "chunked"}, _two_chunks),
    "duplicate-cl": ([("Content-Length", "5"), ("Content-Length", "5")], b"abcde"),
}


@pytest.mark.parametrize("case", list(FRAMING_CASES))
def test_same_request_framing_on_the_wire(scripted, case):
    """The raw bytes of requests with framing headers set by the caller equal httpx's,
    but for one documented difference: with Transfer-Encoding: chunked httpx (h11) also
    sends the caller's Content-Length, httprs never sends both (RFC 9112 6.2). Both
    chunk-frame the body."""
    from servers.scripted import keepalive

    srv = scripted(keepalive(b"ok"))
    headers, content = FRAMING_CASES[case]

    def wire(module):
        with module.Client() as c:
            body = content() if callable(content) else content
            assert c.post(srv.url + "/f", content=body, headers=headers).text == "ok"
        with srv._lock:
            raw = bytes(srv.received)
            srv.received.clear()
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = [x for x in head.split(b"\r\n") if not x.lower().startswith(b"user-agent:")]
        return lines, body

    ours_lines, ours_body = wire(httprs)
    theirs_lines, theirs_body = wire(httpx)
    assert ours_body == theirs_body
    if any(x.lower().startswith(b"transfer-encoding:") for x in theirs_lines):
        theirs_lines = [x for x in theirs_lines if not x.lower().startswith(b"content-length:")]
    assert ours_lines == theirs_lines
