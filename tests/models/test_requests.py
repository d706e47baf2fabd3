"""Request construction and body encoding: differential against httpx."""

import asyncio
import io
import pickle
import warnings

import httpx
import pytest


def _outcome(fn):
    try:
        return ("ok", fn())
    except Exception as exc:
        return (type(exc).__name__, str(exc))


def _req_state(r):
    body = r.read() if hasattr(r.stream, "__iter__") else None
    return {
        "method": r.method,
        "url": str(r.url),
        "raw": r.headers.raw,
        "repr": repr(r),
        "body": body,
    }


async def _agen():
    yield b"a"
    yield b"b"


def _gen():
    yield b"x"
    yield b"yz"


CASES = [
    dict(method="get", url="http://example.com"),
    dict(method="GET", url="https://example.com:443/p?q=1", params={"a": "b"}),
    dict(method="POST", url="http://example.com"),
    dict(method="PUT", url="http://example.com", content=b""),
    dict(method="PATCH", url="http://example.com", content="héllo"),
    dict(method="POST", url="http://example.com", content=b"bytes"),
    dict(method="POST", url="http://example.com", data={"a": "1", "b": ["2", 3], "c": None}),
    dict(method="POST", url="http://example.com", data={}),
    dict(method="POST", url="http://example.com", json={"a": "é", "b": [1, 2.5, None]}),
    dict(method="POST", url="http://example.com", json=[]),
    dict(method="POST", url="http://example.com", json=None),
    dict(method="POST", url="http://example.com", json={"x": 1}, content=b"wins"),
    dict(method="POST", url="http://example.com", content=b"x", headers={"Content-Type": "a/b"}),
    dict(method="POST", url="http://example.com", content=b"x", headers={"content-length": "9"}),
    dict(method="GET", url="http://example.com", headers={"Host": "other"}),
    dict(method="GET", url="http://中国.icom.museum:8000/"),
    dict(method="GET", url="http://[::1]:8000/"),
    dict(method="GET", url="/relative"),
    dict(method="GET", url="http://example.com", cookies={"a": "1", "b": "2"}),
    dict(method="POST", url="http://example.com", content=io.BytesIO(b"filelike")),
    dict(method="POST", url="http://example.com", json={"nan": float("nan")}),
    dict(method="POST", url="http://example.com", content=123),
    dict(method="GET", url="http://example.com", extensions={"timeout": {"read": 1}}),
    # The encoders' Content-Length / Content-Type next to the caller's own headers.
    dict(method="POST", url="http://example.com", json={"a": 1}, headers={"content-type": "x/y"}),
    dict(method="POST", url="http://example.com", json=[1], headers={"CONTENT-LENGTH": "3"}),
    dict(
        method="PUT",
        url="http://example.com",
        data={"a": "1"},
        headers={"Transfer-Encoding": "chunked"},
    ),
    dict(method="POST", url="http://example.com", content=b"", headers={"Content-Type": "a/b"}),
]


@pytest.mark.parametrize(
    "headers", [None, {"Content-Length": "3"}, {"transfer-encoding": "chunked"}, {"X": "1"}]
)
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_streamed_body_framing_headers_match_httpx(rs, method, headers):
    # A generator body's default Transfer-Encoding: chunked, unless the caller set a
    # Content-Length (or the coding) already.
    ours = rs.Request(method, "http://example.com", content=_gen(), headers=headers)
    ref = httpx.Request(method, "http://example.com", content=_gen(), headers=headers)
    assert ours.headers.raw == ref.headers.raw


@pytest.mark.parametrize("case", range(len(CASES)))
def test_request_matches_httpx(rs, case):
    kwargs = dict(CASES[case])
    method, url = kwargs.pop("method"), kwargs.pop("url")
    ours = _outcome(lambda: _req_state(rs.Request(method, url, **kwargs)))
    if "content" in kwargs and isinstance(kwargs["content"], io.BytesIO):
        kwargs["content"] = io.BytesIO(b"filelike")
    ref = _outcome(lambda: _req_state(httpx.Request(method, url, **kwargs)))
    assert ours == ref


def test_data_bytes_is_deprecated(hx):
    with pytest.warns(DeprecationWarning, match="Use 'content=<...>'"):
        r = hx.Request("POST", "http://example.com", data=b"raw")
    assert r.content == b"raw"
    assert r.headers["Content-Length"] == "3"


def test_generator_content(hx):
    r = hx.Request("POST", "http://example.com", content=_gen())
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in r.headers
    with pytest.raises(hx.RequestNotRead):
        r.content  # noqa: B018
    assert r.read() == b"xyz"
    assert r.content == b"xyz"
    assert isinstance(r.stream, hx.ByteStream)


def test_generator_consumed_twice(rs):
    r = rs.Request("POST", "http://example.com", content=_gen())
    assert b"".join(r.stream) == b"xyz"
    with pytest.raises(rs.StreamConsumed):
        b"".join(r.stream)


def test_async_content(hx):
    r = hx.Request("POST", "http://example.com", content=_agen())
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert asyncio.run(r.aread()) == b"ab"
    assert r.content == b"ab"


def test_bytestream_fast_attribute(rs):
    r = rs.Request("POST", "http://example.com", content=b"body")
    assert r.stream._httprs_body == b"body"
    assert list(r.stream) == [b"body"]

    async def collect():
        return [c async for c in r.stream]

    assert asyncio.run(collect()) == [b"body"]
    assert isinstance(r.stream, rs.SyncByteStream)
    assert isinstance(r.stream, rs.AsyncByteStream)


def test_explicit_stream(hx):
    stream = hx.ByteStream(b"abc")
    r = hx.Request("POST", "http://example.com", stream=stream)
    assert r.stream is stream
    assert "Content-Length" not in r.headers
    assert "Host" not in r.headers


def test_request_pickle(hx):
    r = hx.Request("POST", "http://example.com", content=b"abc", extensions={"x": 1})
    r2 = pickle.loads(pickle.dumps(r))
    assert r2.method == "POST"
    assert r2.url == r.url
    assert r2.headers.raw == r.headers.raw
    assert r2.content == b"abc"
    assert r2.extensions == {}
    with pytest.raises(hx.StreamClosed):
        list(r2.stream)


def test_request_attributes_settable(rs):
    r = rs.Request("GET", "http://example.com")
    r.url = rs.URL("http://other.org")
    r.headers["X"] = "1"
    r.custom = 5
    assert r.custom == 5
    assert str(r.url) == "http://other.org"


def test_json_compact_non_ascii(hx):
    r = hx.Request("POST", "http://x", json={"k": "ü", "n": [1, 2]})
    assert r.content == '{"k":"ü","n":[1,2]}'.encode()


class _Str(str):
    pass


class _Dict(dict):
    pass


def _json_documents():
    """Documents for json=: what the direct UTF-8 writer handles (every escape, every
    UTF-8 length, int edges, float reprs) and what it leaves to the standard encoder (a
    subclass, a non-str key, NaN, a huge int, a lone surrogate, deep nesting, a cycle)."""
    import enum

    class Color(enum.IntEnum):
        RED = 1

    deep = []
    inner = deep
    for _ in range(100):
        inner.append([])
        inner = inner[0]
    cycle = {}
    cycle["self"] = cycle
    return [
        {"a": [1, -1, 0, 9, 10, -10, 2**63 - 1, -(2**63), True, False, None]},
        {"f": [1.0, -0.0, 2.5, 0.1, 1e16, 1e22, 1e-7, 5e-324, 1e300, 3.141592653589793]},
        'q"b\\s\n\r\t\b\f\x00\x01\x1f\x7f/\x80\u00ff\u07ff\u0800\uffff\U0010ffff',
        {"\u00e9\u20ac\U0001f600": ("t", [], {}, ())},
        [],
        {},
        "",
        "x" * 5000 + "é",
        {"big": 2**64},
        {"nan": float("nan")},
        [float("inf")],
        {1: "int key"},
        {None: 1, True: 2, 1.5: 3},
        {(1, 2): "tuple key"},
        {"s": _Str("sub")},
        _Dict(a=1),
        {"e": Color.RED},
        {"bad": "\ud800"},
        ["\udfff"],
        {"o": object()},
        {"b": b"bytes"},
        deep,
        cycle,
    ]


def test_json_bodies_match_httpx():
    """Every document gives httpx's bytes and Content-Length, or httpx's error."""
    import httprs
    from httprs import _content

    assert _content._JSON_BODY_DIRECT  # its probe passed: the writer is what is tested

    for doc in _json_documents():
        expected = _outcome(lambda doc=doc: httpx.Request("POST", "http://x", json=doc))
        got = _outcome(lambda doc=doc: httprs.Request("POST", "http://x", json=doc))
        if expected[0] == "ok":
            assert got[0] == "ok", (doc, got)
            assert got[1].content == expected[1].content, doc
            assert got[1].headers["content-length"] == expected[1].headers["content-length"]
        else:
            assert got == expected, doc


def test_no_warning_for_mapping_data(hx):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hx.Request("POST", "http://x", data={"a": "b"})


def test_request_shares_an_immutable_url(rs):
    """httprs keeps the URL object it is given (httpx copies it): harmless only because a
    URL cannot be changed in place; this pins both halves of that."""
    url = rs.URL("http://example.com/a?b=1")
    request = rs.Request("GET", url)
    assert request.url is url
    for name in ("scheme", "host", "port", "path", "query", "params", "raw_path"):
        with pytest.raises(AttributeError):
            setattr(url, name, getattr(url, name))
    changed = request.url.copy_with(path="/other")
    assert str(url) == "http://example.com/a?b=1"
    assert str(changed) == "http://example.com/other?b=1"
    with_params = rs.Request("GET", url, params={"c": "2"})
    assert with_params.url is not url
    assert str(url) == "http://example.com/a?b=1"


@pytest.mark.parametrize(
    "method, url, headers",
    [
        ("POST", "http://a.b/x", None),
        ("PUT", "http://a.b/x", {"Host": "z"}),
        ("PATCH", "/x", None),
        ("GET", "http://a.b:81/x", None),
        ("POST", "http://a.b/x", {"content-length": "0"}),
    ],
)
def test_prepended_host_and_content_length_in_httpx_order(hx, method, url, headers):
    request = hx.Request(method, url, headers=headers)
    assert request.headers.raw == httpx.Request(method, url, headers=headers).headers.raw
    request.headers["X-After"] = "1"  # the lists stay in step
    assert list(request.headers.keys())[-1] == "x-after"
    assert "host" in request.headers or not url.startswith("http")


@pytest.mark.parametrize(
    "method, url, headers, content",
    [
        ("GET", "http://a.b/x", {"X-A": "1"}, None),
        ("GET", "http://a.b/x", None, None),
        ("POST", "http://a.b/x", {"X-A": "1"}, b"abc"),
        ("POST", "http://a.b/x", {"Content-Length": "3"}, b"abc"),
        ("POST", "http://a.b/x", {"X-A": "1"}, b""),
        ("PUT", "http://a.b/x", {"Transfer-Encoding": "chunked"}, None),
        ("PATCH", "/x", {"Host": "z"}, None),
        ("post", "http://a.b:81/x", {"X": "1"}, b"x"),
        ("DELETE", "http://u:p@a.b/x", {"X": "1"}, b"body"),
    ],
)
def test_headers_given_as_headers_in_httpx_order(hx, method, url, headers, content):
    # Headers given as a Headers object (as a client passes its own) and a bytes body or
    # none: Host, Content-Length: 0, the given pairs, the body's Content-Length, in
    # httpx's order; the lower-cased keys stay in step with the pairs afterwards.
    given = None if headers is None else hx.Headers(headers)
    request = hx.Request(method, url, headers=given, content=content)
    expected = httpx.Request(method, url, headers=headers, content=content)
    assert request.headers.raw == expected.headers.raw
    assert request.content == expected.content
    assert request.read() == expected.read()
    if given is not None:
        assert given.raw == hx.Headers(headers).raw  # the given Headers is not changed
    request.headers["X-After"] = "1"
    assert list(request.headers.keys())[-1] == "x-after"
    del request.headers["x-after"]
    assert request.headers.raw == expected.headers.raw
    assert request.headers.get("content-length") == expected.headers.get("content-length")

    # (`extensions` is a property of httprs's Request: docs/compatibility.md.)
    def public(r):
        return [name for name in vars(r) if not name.startswith("_") and name != "extensions"]

    assert public(request) == public(expected)
    assert request.extensions == expected.extensions


@pytest.mark.httprs_only
@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://[fe80::1%25en0]:8080/", "[fe80::1]:8080"),
        ("http://[fe80::1%25en0]/", "[fe80::1]"),
        ("https://u:p@[fe80::1%2525x]:8443/a?b", "[fe80::1]:8443"),
        ("http://[::1]:8080/", "[::1]:8080"),
        ("http://ho%25st:81/", "ho%25st:81"),  # a "%" outside an IPv6 literal stays
    ],
)
def test_host_header_leaves_out_an_ipv6_zone_id_as_httpx2(rs, url, host):
    """An IPv6 zone id only has meaning on the client: httpx2 2.17 sends
    `Host: [fe80::1]:8080` for `http://[fe80::1%25en0]:8080/` (httpx 0.28.1 sends the
    zone too). httprs does so under every name."""
    import httpx2

    assert httpx2.Request("GET", url).headers["Host"] == host
    assert rs.Request("GET", url).headers["Host"] == host
    assert rs.Request("GET", rs.URL(url)).headers["Host"] == host
