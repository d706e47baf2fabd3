"""Response.json(): httprs's direct decoder against json.loads, the specification.

For a body in UTF-8, `.json()` without arguments decodes the bytes itself (httprs/
_json_decode.pxi) and leaves every error, and every document it does not handle, to
json.loads. Each test here compares the two: the same value, type for type (dict key
order, int vs float vs bool, -0.0, NaN, lone surrogates), or the same exception class,
message and position.
"""

from __future__ import annotations

import gzip
import json
import random
import sys
from pathlib import Path

import pytest
from json_outcome import CONSTANTS, canon, outcome

import httprs
from httprs import _models

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from bench.servers import make_json_document  # noqa: E402 - scripts/ is on the path now

pytestmark = pytest.mark.skipif(
    not _models._JSON_DECODE_DIRECT, reason="the direct decoder is off on this interpreter"
)


def _httprs_json(body):
    return httprs.Response(200, content=body).json()


def _assert_same(body):
    """.json() gives what json.loads gives; returns whether the direct decoder built the
    value itself (False: it left the document to json.loads)."""
    want = outcome(json.loads, body)
    assert outcome(_httprs_json, body) == want, body
    direct = _models._json_decode_direct(body)
    if direct is _models._JSON_GAVE_UP:
        return False
    assert want == ("ok", canon(direct)), body  # never a value where json.loads fails
    return True


# -- a generator of JSON texts, built as bytes --------------------------------------

_WHITESPACE = [b"", b"", b" ", b"\t", b"\n", b"\r\n", b" \t\r\n "]
_KEYS = [b"id", b"name", b"a", b"", b"key00", b"key01", b"key10", b"\\u0041", b"caf\xc3\xa9"]
_ESCAPES = [b'\\"', b"\\\\", b"\\/", b"\\b", b"\\f", b"\\n", b"\\r", b"\\t"]
_RAW_TEXT = [
    b"plain",
    b"abcdefghijklmnopqrstuvwxyz0123456789",
    b" ",
    b"\x7f",
    "é".encode(),
    "€".encode(),
    "日本".encode(),
    "😀".encode(),
    b"\xed\xa0\x80",  # an encoded lone surrogate: "surrogatepass" lets it through
    b"\xed\xb0\x80",
    b"\xed\xa0\xbd\xed\xb8\x80",  # two encoded halves: two lone surrogates, not joined
]
_NUMBERS = [
    b"0",
    b"-0",
    b"7",
    b"-12",
    b"123456789012345678",
    b"-999999999999999999",
    b"1234567890123456789",
    b"-9223372036854775809",
    b"18446744073709551616",
    b"1" + b"0" * 300,
    b"0.0",
    b"-0.0",
    b"0.5",
    b"1.25",
    b"-3.75",
    b"1096.5",
    b"0.1",
    b"0.000123",
    b"123.456e7",
    b"1e5",
    b"1E5",
    b"1e+5",
    b"1e-5",
    b"-1E-05",
    b"2.5e22",
    b"2.5e23",
    b"1e-22",
    b"1e-23",
    b"9007199254740992.0",
    b"9007199254740993.0",
    b"9007199254740993e0",
    b"3.141592653589793238462643383279",
    b"0.1000000000000000055511151231257827",
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"4.9e-324",
    b"2.2250738585072014e-308",
    b"1.7976931348623157e308",
    b"0e0",
    b"0E-999",
    b"1e0000000000000000001",
    b"12345678901234567890.5e-10",
    b"NaN",
    b"Infinity",
    b"-Infinity",
]


def _ws(rnd):
    return rnd.choice(_WHITESPACE)


def _u_escape(rnd):
    kind = rnd.randrange(6)
    if kind == 0:
        code = rnd.randrange(0x10000)
    elif kind == 1:  # a pair
        return b"\\u%04x\\u%04X" % (rnd.randrange(0xD800, 0xDC00), rnd.randrange(0xDC00, 0xE000))
    elif kind == 2:  # a lone high surrogate, sometimes before another escape
        tail = rnd.choice([b"", b"x", b"\\u0041", b"\\ud800", b"\\n"])
        return b"\\u%04x" % rnd.randrange(0xD800, 0xDC00) + tail
    elif kind == 3:
        code = rnd.randrange(0xDC00, 0xE000)
    elif kind == 4:
        code = rnd.randrange(0x20)
    else:
        code = rnd.randrange(0x80, 0x800)
    fmt = rnd.choice([b"\\u%04x", b"\\u%04X"])
    return fmt % code


def _string(rnd):
    parts = []
    for _ in range(rnd.randrange(5)):
        pick = rnd.randrange(10)
        if pick < 4:
            parts.append(rnd.choice(_RAW_TEXT))
        elif pick < 6:
            parts.append(rnd.choice(_ESCAPES))
        elif pick < 8:
            parts.append(_u_escape(rnd))
        else:
            size = rnd.choice([1, 7, 8, 9, 15, 16, 17, 64, 300])
            parts.append(bytes(rnd.choice(b"abcxyz019 -_./:") for _ in range(size)))
    return b'"' + b"".join(parts) + b'"'


def _value(rnd, depth):
    pick = rnd.randrange(12 if depth < 6 else 8)
    if pick < 3:
        return _string(rnd)
    if pick < 6:
        return rnd.choice(_NUMBERS)
    if pick < 8:
        return rnd.choice([b"true", b"false", b"null"])
    if pick < 10:
        items = [_ws(rnd) + _value(rnd, depth + 1) + _ws(rnd) for _ in range(rnd.randrange(5))]
        return b"[" + b",".join(items) + (b"" if items else _ws(rnd)) + b"]"
    members = []
    for _ in range(rnd.randrange(6)):
        pick = rnd.random()
        if pick < 0.4:
            key = b'"' + rnd.choice(_KEYS) + b'"'
        elif pick < 0.7:
            key = b'"k%d"' % rnd.randrange(100)  # same-length keys share memo slots
        else:
            key = _string(rnd)
        members.append(
            _ws(rnd) + key + _ws(rnd) + b":" + _ws(rnd) + _value(rnd, depth + 1) + _ws(rnd)
        )
    return b"{" + b",".join(members) + (b"" if members else _ws(rnd)) + b"}"


def _document(rnd):
    return _ws(rnd) + _value(rnd, 0) + _ws(rnd)


def _from_objects(rnd):
    """A document json.dumps writes for random objects, in its various layouts."""

    def obj(depth):
        pick = rnd.randrange(9 if depth < 5 else 6)
        if pick == 0:
            return rnd.choice([True, False, None])
        if pick == 1:
            return rnd.randrange(-(10**30), 10**30) >> rnd.randrange(100)
        if pick == 2:
            return rnd.choice([rnd.random(), -rnd.random() * 1e300, rnd.uniform(-1, 1) * 1e-300])
        if pick < 6:
            return "".join(
                chr(rnd.choice([rnd.randrange(32, 127), rnd.randrange(0x10FFFF)]))
                for _ in range(rnd.randrange(12))
            )
        if pick < 8:
            return [obj(depth + 1) for _ in range(rnd.randrange(6))]
        return {str(rnd.randrange(20)): obj(depth + 1) for _ in range(rnd.randrange(6))}

    text = json.dumps(
        obj(0),
        ensure_ascii=rnd.random() < 0.5,
        indent=rnd.choice([None, 0, 2, "\t"]),
        sort_keys=rnd.random() < 0.3,
    )
    return text.encode("utf-8", "surrogatepass")


def _corrupt(rnd, body):
    """The body truncated, or with a byte changed, added, removed or a slice repeated."""
    if not body:
        return bytes([rnd.randrange(256)])
    at = rnd.randrange(len(body))
    kind = rnd.randrange(5)
    byte = bytes([rnd.choice([rnd.randrange(256), *b'"\\{}[],:0-.eE \x00\x1f\x80\xc3\xed\xff'])])
    if kind == 0:
        return body[:at]
    if kind == 1:
        return body[:at] + byte + body[at + 1 :]
    if kind == 2:
        return body[:at] + byte + body[at:]
    if kind == 3:
        return body[:at] + body[at + 1 :]
    return body[:at] + body[at : at + rnd.randrange(1, 9)] + body[at:]


# -- the differential tests ------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_generated_documents_match_json_loads(seed):
    rnd = random.Random(seed)
    decoded = sum(_assert_same(_document(rnd)) for _ in range(1500))
    assert decoded > 1400  # the direct decoder's own work, not json.loads's


@pytest.mark.parametrize("seed", range(2))
def test_dumped_documents_match_json_loads(seed):
    rnd = random.Random(100 + seed)
    assert all(_assert_same(_from_objects(rnd)) for _ in range(1500))


@pytest.mark.parametrize("seed", range(4))
def test_corrupted_documents_fail_or_succeed_as_json_loads(seed):
    """Truncations and byte edits: the same value, or the same error (class, message,
    position), whichever json.loads gives."""
    rnd = random.Random(1000 + seed)
    for _ in range(1500):
        body = _document(rnd) if rnd.random() < 0.8 else _from_objects(rnd)
        for _ in range(3):
            body = _corrupt(rnd, body)
            _assert_same(body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b" \r\n\t",
        b"\x0b1",  # a vertical tab is not JSON whitespace
        b"1\x0c",
        b"\xc2\xa01",  # nor is a no-break space
        b"\xef\xbb\xbf[1]",
        "[1]".encode("utf-16"),
        "[1]".encode("utf-16-le"),
        "[1]".encode("utf-32-be"),
        b"\x00",
        b"1\x00",
        b"[1,]",
        b'{"a":1,}',
        b"[01]",
        b"[-]",
        b"[1.]",
        b"[.5]",
        b"[1e]",
        b"[1e+]",
        b"1.5e",
        b"-Infinit",
        b"nan",
        b"[tru]",
        b"[true false]",
        b'{"a" 1}',
        b"{1: 2}",
        b'"\\x41"',
        b'"\\u12G4"',
        b'"\\ud800\\u12G4"',
        b'"\\ud800\\udc0"',
        b'"\\ud800\\',
        b'"abc',
        b'"a\tb"',
        b'"a\nb"',
        b'"\x1f"',
        b'"\xc3"',
        b'"\xc3("',
        b'"\xe0\x80\x80"',
        b'"\xf4\x90\x80\x80"',
        b'"\xf8\x88\x80\x80\x80"',
        b'"\xed\xa0\x80\\n"',
        b'"\\n\xc3\xa9\xff"',
        b'"\\"\xc3\xa9\\u00e9"',
        b'{"a": 1, "b": 2, "a": 3}',
        b'{"": 1, "": [], "\\u0000": null}',
        b"[1] x",
        b"[1]\n\n ]",
        # a long fraction cannot bring a huge exponent back into range
        b"0." + b"0" * 99999 + b"1e1000000",
        b"0." + b"0" * 99999 + b"5e1000005",
        b"[0." + b"0" * 100004 + b"3e1000000]",
        b"0." + b"0" * 99999 + b"1e-1000000",
        b"1e0000000000000000000000005",
    ],
)
def test_edge_documents_match_json_loads(body):
    _assert_same(body)


def test_repeated_keys_keep_first_place_and_last_value():
    body = b'{"b": 1, "a": 2, "b": 3, "c": {"b": 4, "b": 5}}'
    value = _httprs_json(body)
    assert list(value) == ["b", "a", "c"]
    assert value == {"b": 3, "a": 2, "c": {"b": 5}}
    _assert_same(body)


def test_keys_are_memoised_within_a_document():
    """As json does, a key repeated in one document is one str object."""
    value = _httprs_json(b'[{"name": 1}, {"name": 2}, {"name": 3}]')
    first, second, third = (next(iter(d)) for d in value)
    assert first is second is third
    assert json.loads(b'[{"name": 1}, {"name": 2}]')[0].keys() == value[0].keys()


def test_many_keys_of_one_length_match_json_loads():
    """More distinct keys than the memo has slots, all of one length: a slot's key is
    reused only when its bytes are equal."""
    rnd = random.Random(3)
    keys = [f"k{i:04d}" for i in range(3000)]
    body = json.dumps({k: i for i, k in enumerate(keys)}).encode()
    assert _httprs_json(body) == {k: i for i, k in enumerate(keys)}
    _assert_same(body)
    records = [{rnd.choice(keys): i, rnd.choice(keys): -i} for i in range(2000)]
    _assert_same(json.dumps(records).encode())
    # Long keys alike in their first eight bytes and their length, few enough to be kept.
    long_keys = [f"property_{i:04d}_of_a_record" for i in range(20)]
    records = [{k: i for k in rnd.sample(long_keys, 5)} for i in range(500)]
    assert _httprs_json(json.dumps(records).encode()) == records
    _assert_same(json.dumps(records).encode())


def test_nan_and_infinities_are_jsons_own_objects():
    value = _httprs_json(b"[NaN, Infinity, -Infinity]")
    assert all(got is want for got, want in zip(value, CONSTANTS))


def test_bench_gzip_document_matches_json_loads():
    """The benchmark's ~220 KB document (gzip_json), decoded the same way."""
    body = make_json_document()
    _assert_same(body)
    response = httprs.Response(
        200, content=gzip.compress(body), headers={"Content-Encoding": "gzip"}
    )
    assert response.json() == json.loads(body)


def test_long_strings_and_numbers_match_json_loads():
    rnd = random.Random(7)
    text = "".join(
        chr(rnd.choice([rnd.randrange(32, 127), rnd.randrange(0x80, 0x10FFFF)]))
        for _ in range(20000)
    )
    for body in (
        json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass"),
        json.dumps(text).encode(),
        b'"' + b"x" * 100000 + b'"',
        b"[" + b"9" * 4000 + b"]",
        b"[" + b"1" * 200 + b"." + b"2" * 200 + b"e-5]",
    ):
        _assert_same(body)


def test_float_literals_round_as_float_does():
    """Random literals around the fast path's edges (2**53 digits, 10**±22): each is the
    correctly rounded float of its text."""
    rnd = random.Random(11)
    literals = []
    for _ in range(20000):
        digits = "".join(rnd.choice("0123456789") for _ in range(rnd.randrange(1, 24)))
        digits = digits.lstrip("0") or "0"
        cut = rnd.randrange(len(digits) + 1)
        text = digits[:cut] or "0"
        if cut < len(digits):
            text += "." + digits[cut:]
        if rnd.random() < 0.7:
            text += rnd.choice("eE") + rnd.choice(["", "+", "-"]) + str(rnd.randrange(40))
        literals.append(rnd.choice(["", "-"]) + text)
    literals += [repr(rnd.uniform(-1e6, 1e6)) for _ in range(5000)]
    literals += [f"{rnd.random():.17g}" for _ in range(5000)]
    body = ("[" + ",".join(literals) + "]").encode()
    assert _assert_same(body)


@pytest.mark.parametrize("digits", [4300, 4301, 20000])
def test_int_digit_limit_is_the_interpreters(digits):
    """Beyond sys.get_int_max_str_digits() json.loads raises ValueError; so does .json()."""
    body = b"[" + b"7" * digits + b"]"
    _assert_same(body)


@pytest.mark.skipif(not hasattr(sys, "set_int_max_str_digits"), reason="no int digit limit")
def test_int_digit_limit_follows_set_int_max_str_digits():
    body = b'{"n": -' + b"3" * 6000 + b"}"
    old = sys.get_int_max_str_digits()
    try:
        sys.set_int_max_str_digits(0)
        assert _httprs_json(body) == {"n": -int("3" * 6000)}
        _assert_same(body)
        sys.set_int_max_str_digits(5000)
        with pytest.raises(ValueError):
            _httprs_json(body)
        _assert_same(body)
    finally:
        sys.set_int_max_str_digits(old)


@pytest.mark.parametrize("depth", [1, 100, 511, 512, 513, 2000, 100000])
def test_deep_nesting_matches_json_loads(depth):
    """Up to the decoder's limit it decodes; beyond it json.loads decides (a value, or
    RecursionError)."""
    for body in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
        _assert_same(body)


def test_recursion_limit_is_honoured():
    """Near the interpreter's recursion limit json.loads raises RecursionError for a
    nested document; .json() does too, rather than decoding it."""
    body = b"[" * 300 + b"]" * 300

    def at_depth(n, decode):
        if n:
            return at_depth(n - 1, decode)
        return outcome(decode, body)

    old = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(200)
        got, want = at_depth(50, _httprs_json), at_depth(50, json.loads)
    finally:
        sys.setrecursionlimit(old)
    assert got == want
    if sys.version_info < (3, 12):
        # From 3.12 on, the recursion count of C code (Py_EnterRecursiveCall: json's
        # scanner and .json()) is not sys.setrecursionlimit's: neither raises here.
        assert got[:2] == ("raise", RecursionError)


def test_recursion_limit_boundary_is_jsons():
    """At every depth around the point where json.loads starts raising RecursionError,
    .json() gives what json.loads gives: the decoder keeps json's own frames in reserve."""

    def at_depth(n, decode, body):
        if n:
            return at_depth(n - 1, decode, body)
        return outcome(decode, body)

    old = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(300)
        for nesting in range(240, 300):
            body = b"[" * nesting + b"]" * nesting
            assert at_depth(20, _httprs_json, body) == at_depth(20, json.loads, body), nesting
    finally:
        sys.setrecursionlimit(old)


# -- json's hooks stay json's ------------------------------------------------------------


def test_a_replaced_scan_once_is_used(monkeypatch):
    decoder = json._default_decoder
    monkeypatch.setattr(decoder, "scan_once", lambda text, idx: ("scanned", len(text)))
    assert json.loads(b"[1]") == "scanned"
    assert _httprs_json(b"[1]") == "scanned"


def test_a_replaced_decode_method_is_used(monkeypatch):
    monkeypatch.setattr(json.JSONDecoder, "decode", lambda self, text: ("decoded", text))
    assert _httprs_json(b"[1]") == ("decoded", "[1]")


def test_decode_methods_replaced_on_the_instance_are_used(monkeypatch):
    decoder = json._default_decoder
    monkeypatch.setattr(decoder, "decode", lambda text: ("patched", text), raising=False)
    assert _httprs_json(b"[1]") == json.loads(b"[1]") == ("patched", "[1]")
    monkeypatch.undo()
    monkeypatch.setattr(
        decoder, "raw_decode", lambda text, idx=0: (("raw", text), len(text)), raising=False
    )
    assert _httprs_json(b"[1]") == json.loads(b"[1]") == ("raw", "[1]")


def test_replaced_constants_and_encoding_detection_are_used(monkeypatch):
    monkeypatch.setitem(json.decoder._CONSTANTS, "NaN", None)
    assert _httprs_json(b"[NaN]") == json.loads(b"[NaN]") == [None]
    monkeypatch.undo()
    monkeypatch.setattr(json, "detect_encoding", lambda b: "latin-1")
    assert _httprs_json(b'["\xc3\xa9"]') == json.loads(b'["\xc3\xa9"]') == ["\xc3\xa9"]


def test_arguments_go_to_json_loads():
    body = b'{"a": 1.5, "b": 2}'
    assert httprs.Response(200, content=body).json(parse_float=str) == {"a": "1.5", "b": 2}


# -- through a real server, sync and async ---------------------------------------------

_SERVED = (
    b'{"caf\xc3\xa9": ["\\ud83d\\ude00", "\xf0\x9f\x98\x80", -0.0, 1e-7, 12345678901234567890,'
    b' NaN, {"k": "v\\n", "k": "w"}], "n": null, "t": true}'
)


def test_json_from_a_server(server):
    with httprs.Client() as client:
        response = client.post(server.url + "/echo_body", content=_SERVED)
    assert outcome(lambda body: response.json(), _SERVED) == outcome(json.loads, _SERVED)


@pytest.mark.anyio
async def test_json_from_a_server_async(server):
    async with httprs.AsyncClient() as client:
        response = await client.post(server.url + "/echo_body", content=_SERVED)
    assert outcome(lambda body: response.json(), _SERVED) == outcome(json.loads, _SERVED)
