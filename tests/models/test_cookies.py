"""Cookies: differential against httpx."""

import http.cookiejar

import httpx
import pytest


def _outcome(fn):
    try:
        return ("ok", fn())
    except Exception as exc:
        return (type(exc).__name__, str(exc))


def _state(c):
    return repr(c), sorted(c), len(c), bool(c)


OPS = [
    lambda c: c["a"],
    lambda c: c["zz"],
    lambda c: c.get("a"),
    lambda c: c.get("dup"),
    lambda c: c.get("dup", domain="one.org"),
    lambda c: c.get("dup", domain="two.org", path="/"),
    lambda c: c.get("zz", "dflt"),
    lambda c: c.delete("a"),
    lambda c: c.delete("dup", domain="one.org"),
    lambda c: c.delete("dup", domain="two.org", path="/"),
    lambda c: c.__delitem__("dup"),
    lambda c: c.clear(),
    lambda c: c.clear("one.org"),
    lambda c: c.clear("one.org", "/"),
    lambda c: c.update({"n": "1"}),
    lambda c: c.__setitem__("a", "new"),
]


def _make(mod):
    c = mod.Cookies({"a": "1"})
    c.set("dup", "x", domain="one.org")
    c.set("dup", "y", domain="two.org")
    return c


@pytest.mark.parametrize("op", range(len(OPS)))
def test_ops_match_httpx(rs, op):
    ours_c, ref_c = _make(rs), _make(httpx)
    assert _outcome(lambda: OPS[op](ours_c)) == _outcome(lambda: OPS[op](ref_c))
    assert _state(ours_c) == _state(ref_c)


@pytest.mark.parametrize("value", [None, {}, {"a": "1", "b": "2"}, [("a", "1"), ("a", "2")]])
def test_construct(rs, value):
    assert _state(rs.Cookies(value)) == _state(httpx.Cookies(value))


def test_copy_and_jar(hx):
    jar = http.cookiejar.CookieJar()
    c = hx.Cookies(jar)
    assert c.jar is jar
    c["k"] = "v"
    copy = hx.Cookies(c)
    assert copy.jar is not jar
    assert copy["k"] == "v"


def test_cookie_conflict(hx):
    c = _make(hx)
    with pytest.raises(hx.CookieConflict, match="Multiple cookies exist with name=dup"):
        c.get("dup")


def test_request_cookie_header(rs):
    for mod in (rs, httpx):
        req = mod.Request("GET", "https://example.org/", cookies={"a": "1", "b": "2"})
        assert req.headers["Cookie"] == "a=1; b=2"


def test_extract_and_send_roundtrip(hx):
    req = hx.Request("GET", "https://example.org/path")
    resp = hx.Response(
        200,
        headers=[("Set-Cookie", "sid=abc; Path=/; HttpOnly"), ("Set-Cookie", "x=1; Path=/other")],
        request=req,
    )
    jar = hx.Cookies()
    jar.extract_cookies(resp)
    assert jar["sid"] == "abc"
    nxt = hx.Request("GET", "https://example.org/path")
    jar.set_cookie_header(nxt)
    assert nxt.headers["Cookie"] == "sid=abc"
