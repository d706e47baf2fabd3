"""Multipart request bodies: byte-identical to httpx with a fixed boundary."""

import io
import os

import httpx
import pytest

BOUNDARY_HEADERS = {"Content-Type": "multipart/form-data; boundary=+++boundary+++"}


def _outcome(fn):
    try:
        return ("ok", fn())
    except Exception as exc:
        return (type(exc).__name__, str(exc))


def _render(mod, data, files, headers=BOUNDARY_HEADERS):
    r = mod.Request("POST", "http://example.com", data=data, files=files, headers=headers)
    return r.headers.raw, r.read()


def _files():
    return [
        {"file": ("a.txt", b"hello")},
        {"file": ("a.png", io.BytesIO(b"\x89PNG"), "image/png")},
        {"file": ("a.bin", b"x", None, {"X-Custom": "1"})},
        {"file": ("a.bin", b"x", "text/plain", {"content-type": "override/me"})},
        {"file": (None, b"no filename")},
        {"file": ("", b"empty filename")},
        {"file": ('we"ird\\name\n.txt', b"q")},
        {"file": ("unknown.zzzz", "text content")},
        [("f", ("1.txt", b"1")), ("f", ("2.txt", b"2"))],
        {"file": io.BytesIO(b"anonymous")},
        {"file": ("s.txt", io.StringIO("text"))},
    ]


@pytest.mark.parametrize("idx", range(11))
@pytest.mark.parametrize("data", [None, {"a": "1", "b": ["x", "y"], "n": 5, "t": True, "z": None}])
def test_multipart_matches_httpx(rs, idx, data):
    ours = _outcome(lambda: _render(rs, data, _files()[idx]))
    ref = _outcome(lambda: _render(httpx, data, _files()[idx]))
    assert ours == ref


def test_multipart_real_file(rs, tmp_path):
    path = tmp_path / "upload.json"
    path.write_bytes(b'{"a": 1}' * 1000)
    with open(path, "rb") as f1, open(path, "rb") as f2:
        ours = _render(rs, {"k": "v"}, {"upload": f1})
        ref = _render(httpx, {"k": "v"}, {"upload": f2})
    assert ours == ref
    assert (b"Content-Length", str(len(ours[1])).encode()) in ours[0]


def test_unknown_length_is_chunked(hx):
    class Unsized:
        def __init__(self):
            self.parts = [b"ab", b"cd"]

        def read(self, n=-1):
            return self.parts.pop(0) if self.parts else b""

    r = hx.Request("POST", "http://x", files={"f": ("u.bin", Unsized())}, headers=BOUNDARY_HEADERS)
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in r.headers
    assert b"abcd" in r.read()


def test_random_boundary(rs):
    r = rs.Request("POST", "http://x", files={"f": ("a.txt", b"1")})
    ctype = r.headers["Content-Type"]
    assert ctype.startswith("multipart/form-data; boundary=")
    boundary = ctype.split("=", 1)[1].encode()
    assert len(boundary) == 32
    assert r.read().startswith(b"--" + boundary + b"\r\n")
    assert r.content.endswith(b"--" + boundary + b"--\r\n")


@pytest.mark.parametrize(
    "data",
    [{1: "x"}, {"a": object()}, {"a": b"bytes-ok"}, {"a": 1.5}],
)
def test_data_field_types(rs, data):
    ours = _outcome(lambda: _render(rs, data, {"f": ("a", b"1")}))
    ref = _outcome(lambda: _render(httpx, data, {"f": ("a", b"1")}))
    assert ours[0] == ref[0]
    if ours[0] == "TypeError":
        assert ours[1].split(" at 0x")[0] == ref[1].split(" at 0x")[0]
    else:
        assert ours == ref


def test_multipart_is_streamed_per_file(rs):
    data = os.urandom(200_000)
    r = rs.Request("POST", "http://x", files={"f": ("big.bin", io.BytesIO(data))})
    chunks = list(r.stream)
    assert max(len(c) for c in chunks) <= 64 * 1024
    assert data in b"".join(chunks)


def test_multipart_async_iteration_matches_sync(hx):
    import asyncio

    r = hx.Request(
        "POST",
        "http://x",
        data={"a": "1"},
        files={"f": ("a.txt", b"abc")},
        headers=BOUNDARY_HEADERS,
    )

    async def collect():
        return b"".join([c async for c in r.stream])

    assert asyncio.run(collect()) == b"".join(r.stream)
    assert asyncio.run(r.aread()) == r.read()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("X-A", "1\r\nX-Injected: 2", "Invalid control character"),
        ("X-A", "a\nb", "Invalid control character"),
        ("X-A", "nul\x00", "Invalid control character"),
        ("X-A", "del\x7f", "Invalid control character"),
        ("X A", "1", "Invalid multipart header name"),
        ("X-A:", "1", "Invalid multipart header name"),
        ("", "1", "Invalid multipart header name"),
    ],
)
def test_part_headers_that_would_inject_are_refused(rs, name, value, message):
    # As httpx2 (httpx 0.28.1 sends them, giving the server a line of the caller's making).
    files = {"file": ("a.bin", b"x", "text/plain", {name: value})}
    with pytest.raises(ValueError, match=message):
        _render(rs, None, files)


def test_part_header_value_with_tab_and_text_is_sent(rs):
    files = {"file": ("a.bin", b"x", "text/plain", {"X-Note": "tab\there, caf\u00e9"})}
    assert b"\r\nX-Note: tab\there, caf\xc3\xa9\r\n" in _render(rs, None, files)[1]
