"""Body encoding functions: differential against httpx._content."""

import asyncio
import importlib
import io

import pytest

from httprs import _content as ours

ref = importlib.import_module("httpx._content")


def _drain(stream):
    if hasattr(stream, "__iter__"):
        return b"".join(stream)

    async def collect():
        return b"".join([c async for c in stream])

    return asyncio.run(collect())


def _outcome(fn):
    try:
        headers, stream = fn()
        return ("ok", headers, _drain(stream), type(stream).__name__)
    except Exception as exc:
        return (type(exc).__name__, str(exc))


def _gen():
    yield b"a"
    yield b"bc"


async def _agen():
    yield b"x"


REQUESTS = [
    lambda: {},
    lambda: {"content": b"abc"},
    lambda: {"content": ""},
    lambda: {"content": "é"},
    lambda: {"content": _gen()},
    lambda: {"content": [b"1", b"2"]},
    lambda: {"content": io.BytesIO(b"file body")},
    lambda: {"content": _agen()},
    lambda: {"content": {"a": 1}},
    lambda: {"content": 5},
    lambda: {"data": {"a": "1", "b": [1, True, None]}},
    lambda: {"data": {"a": "x y&z=é"}},
    lambda: {"json": {"a": [1, 2], "é": None}},
    lambda: {"json": 0},
    lambda: {"json": "s"},
    lambda: {"json": {"x": float("inf")}},
    lambda: {"files": {"f": ("a.txt", b"1")}, "boundary": b"bnd"},
    lambda: {"files": {"f": ("a.txt", b"1")}, "data": {"k": "v"}, "boundary": b"bnd"},
    lambda: {"files": {}, "data": {"k": "v"}},
]


@pytest.mark.parametrize("idx", range(len(REQUESTS)))
def test_encode_request(idx):
    assert _outcome(lambda: ours.encode_request(**REQUESTS[idx]())) == _outcome(
        lambda: ref.encode_request(**REQUESTS[idx]())
    )


RESPONSES = [
    lambda: {},
    lambda: {"content": b"abc"},
    lambda: {"content": _gen()},
    lambda: {"text": "tëxt"},
    lambda: {"html": "<b>é</b>"},
    lambda: {"json": {"a": "é"}},
    lambda: {"text": ""},
]


@pytest.mark.parametrize("idx", range(len(RESPONSES)))
def test_encode_response(idx):
    assert _outcome(lambda: ours.encode_response(**RESPONSES[idx]())) == _outcome(
        lambda: ref.encode_response(**RESPONSES[idx]())
    )


def test_data_bytes_warns():
    with pytest.warns(DeprecationWarning):
        headers, stream = ours.encode_request(data=b"raw")
    assert headers == {"Content-Length": "3"}
    assert stream._httprs_body == b"raw"


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"text/plain",
        b"multipart/form-data",
        b"multipart/form-data; boundary=abc",
        b'multipart/form-data; charset=utf-8; BOUNDARY="quoted"',
    ],
)
def test_boundary_from_content_type(value):
    assert ours.get_multipart_boundary_from_content_type(value) == importlib.import_module(
        "httpx._multipart"
    ).get_multipart_boundary_from_content_type(value)


def test_iterator_stream_reads_filelike_in_chunks():
    data = b"x" * 200_000
    headers, stream = ours.encode_request(content=io.BytesIO(data))
    assert headers == {"Content-Length": "200000"}
    chunks = list(stream)
    assert [len(c) for c in chunks] == [65536, 65536, 65536, 3392]


def test_unattached_stream():
    s = ours.UnattachedStream()
    with pytest.raises(ours.StreamClosed):
        list(s)


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1.5, None, True]},
        "plain",
        'snowman ☃ \x00\n"q"',
        [],
        {"k": {"n": [{}]}},
        {1: 2, 2.5: "x", None: 1, False: 2, "é€": [-0.0, 1e300, 10**30]},
        (1, "two"),
        type("D", (dict,), {})(a=type("S", (str,), {})("s")),
    ],
)
def test_json_body_bytes_match_httpx(value):
    """Equal bytes and headers to httpx for JSON bodies (httprs keeps one encoder)."""
    assert _outcome(lambda: ours.encode_json(value)) == _outcome(lambda: ref.encode_json(value))


def _self_containing():
    loop = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    "value", [{"x": float("nan")}, {"x": object()}, {(1, 2): 1}, _self_containing()]
)
def test_json_body_errors_match_httpx(value):
    assert _outcome(lambda: ours.encode_json(value)) == _outcome(lambda: ref.encode_json(value))
    # An encode that failed half-way leaves nothing behind for the next one (the cycle
    # check's memo of objects being encoded starts empty each time).
    shared = [1]
    assert b"".join(ours.encode_json([shared, shared])[1]) == b"[[1],[1]]"


@pytest.mark.parametrize("module", [ours, ref], ids=["httprs", "httpx"])
def test_json_dumps_replaced_on_the_module_is_used(module, monkeypatch):
    """Code that swaps the module's json_dumps (for orjson, say) gets it called with
    httpx's arguments, as in httpx."""
    calls = []

    def fake(obj, **kwargs):
        calls.append(kwargs)
        return "[42]"

    monkeypatch.setattr(module, "json_dumps", fake)
    headers, stream = module.encode_json({"ignored": True})
    assert _drain(stream) == b"[42]"
    assert headers["Content-Length"] == "4"
    assert calls == [{"ensure_ascii": False, "separators": (",", ":"), "allow_nan": False}]
