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


@pytest.mark.httprs_only
def test_copy_keeps_the_jars_policy(rs):
    """Cookies(other) keeps the other jar's policy (httpx2 2.17; httpx 0.28.1 gives the
    copy a default policy), so a copy refuses what the original refuses."""
    import httpx2

    for mod in (httpx2, rs):
        original = mod.Cookies()
        policy = http.cookiejar.DefaultCookiePolicy(blocked_domains=["blocked.example"])
        original.jar.set_policy(policy)
        original.set("a", "1", domain="example.org")
        copy = mod.Cookies(original)
        assert copy.jar._policy is policy and dict(copy) == {"a": "1"}
        response = mod.Response(
            200,
            headers={"Set-Cookie": "b=2"},
            request=mod.Request("GET", "http://blocked.example/"),
        )
        copy.extract_cookies(response)
        assert dict(copy) == {"a": "1"}


COOKIE_PATH_URLS = [
    "http://example.org/" + "x/" * 600 + "y",  # last "/" far beyond 1024 bytes
    "http://example.org/" + "x" * 1023 + "/y",  # last "/" at byte 1024: kept
    "http://example.org/" + "x" * 1024 + "/y",  # at byte 1025: no cookies
    "http://example.org/" + "x" * 3000,  # long, but no "/" after the first
    "http://example.org/" + "a/" * 400 + "b" * 500 + "/c",  # cut at the last "/" <= 1024
    "http://example.org/p/q?" + "x/" * 3000,  # the query does not count
    "http://user:secret@example.org/p/q",  # no userinfo in the cookie's domain
    "http://user:secret@example.org:8080/p/q",
]


@pytest.mark.httprs_only
@pytest.mark.parametrize("url", COOKIE_PATH_URLS)
@pytest.mark.parametrize("set_cookie", ["a=1", "a=1; Path=/", "a=1; Domain=example.org"])
def test_cookie_extraction_bounds_the_request_path_as_httpx2(rs, url, set_cookie):
    """A request whose path has its last "/" beyond 1024 bytes sets no cookies; the jar
    is given the URL without userinfo and with its path cut to 1024 bytes at a "/"
    (httpx2 2.17; httpx 0.28.1 gave it the whole URL: a cookie domain "user:secret@host"
    and default paths as long as the request's). Under every name."""
    import httpx2

    def extracted(mod):
        response = mod.Response(
            200, headers={"Set-Cookie": set_cookie}, request=mod.Request("GET", url)
        )
        cookies = mod.Cookies()
        cookies.extract_cookies(response)
        found = [(c.name, c.domain, c.path) for c in cookies.jar]
        assert [(c.name, c.domain, c.path) for c in response.cookies.jar] == found
        return found

    assert extracted(rs) == extracted(httpx2)


@pytest.mark.httprs_only
def test_cookie_header_for_a_long_path_as_httpx2(rs):
    import httpx2

    url = "http://u:p@example.org/" + "a/" * 400 + "b" * 500 + "/c"
    for mod in (httpx2, rs):
        cookies = mod.Cookies()
        cookies.set("root", "1", domain="example.org", path="/")
        cookies.set("deep", "2", domain="example.org", path="/" + "a/" * 400 + "b" * 500)
        request = mod.Request("GET", url)
        cookies.set_cookie_header(request)
        assert request.headers["Cookie"] == "root=1"


JAR_COOKIES = [
    ("a", "1", "example.com", "/"),
    ("b", "2", "www.example.com", "/"),
    ("c", "3", ".example.com", "/"),
    ("d", "4", "sub.www.example.com", "/"),
    ("e", "5", "other.org", "/"),
    ("f", "6", "www.example.com", "/deep/path"),
    ("g", "7", "", "/"),
    ("h", "8", "localhost.local", "/"),
    ("i", "9", "127.0.0.1", "/"),
    ("j", "10", ".com", "/"),
]
JAR_URLS = [
    "http://sub.www.example.com/deep/path/x",
    "http://www.example.com/",
    "http://example.com/deep/path",
    "http://EXAMPLE.com/",
    "http://localhost/",
    "http://127.0.0.1:8000/",
    "http://other.org/",
    "http://nomatch.net/",
    "http://" + "x" * 250 + ".example.com/",  # longer than DNS allows: every domain
]


def _cookie_headers(mod, policy=None):
    cookies = mod.Cookies()
    if policy is not None:
        cookies.jar.set_policy(policy)
    for name, value, domain, path in JAR_COOKIES:
        cookies.set(name, value, domain=domain, path=path)
    headers = []
    for url in JAR_URLS:
        request = mod.Request("GET", url)
        cookies.set_cookie_header(request)
        headers.append(request.headers.get("Cookie"))
    return type(cookies.jar).__name__, headers


class _OwnMatching(http.cookiejar.DefaultCookiePolicy):
    def domain_return_ok(self, domain, request):
        return domain != "example.com" and super().domain_return_ok(domain, request)


@pytest.mark.httprs_only
@pytest.mark.parametrize("policy", [None, _OwnMatching, http.cookiejar.DefaultCookiePolicy])
def test_cookie_order_and_jar_follow_the_presented_library(rs, monkeypatch, policy):
    """httpx2 (2.16) keeps cookies in an IndexedCookieJar, which sends those of several
    domains least specific domain first; httpx 0.28.1's plain CookieJar in the order
    they were stored. httprs follows the library it presents as."""
    import httpx2

    from httprs import _alias

    make = (lambda: policy()) if policy is not None else (lambda: None)
    assert _cookie_headers(rs, make()) == _cookie_headers(httpx, make())
    monkeypatch.setitem(_alias._state, "primary", "httpx2")
    assert _cookie_headers(rs, make()) == _cookie_headers(httpx2, make())
    assert isinstance(rs.Cookies().jar, http.cookiejar.CookieJar)


@pytest.mark.httprs_only
def test_indexed_jar_sweeps_expired_cookies(rs, monkeypatch):
    import time

    from httprs import _alias
    from httprs._cookies import IndexedCookieJar

    monkeypatch.setitem(_alias._state, "primary", "httpx2")
    cookies = rs.Cookies()
    assert type(cookies.jar) is IndexedCookieJar
    soon = time.time() + 1000
    cookie = http.cookiejar.Cookie(
        0,
        "t",
        "1",
        None,
        False,
        "example.com",
        True,
        False,
        "/",
        True,
        False,
        int(soon) + 1,
        False,
        None,
        None,
        {},
    )
    cookies.jar.set_cookie(cookie)
    cookies.set("keep", "1", domain="example.com")
    request = rs.Request("GET", "http://example.com/")
    cookies.set_cookie_header(request)
    assert request.headers["Cookie"] == "t=1; keep=1"
    monkeypatch.setattr(time, "time", lambda: soon + 1000)
    request = rs.Request("GET", "http://example.com/")
    cookies.set_cookie_header(request)
    assert request.headers["Cookie"] == "keep=1" and dict(cookies) == {"keep": "1"}


def test_extracting_from_a_response_without_set_cookie_asks_no_jar(rs):
    """As httpx2 2.17: the jar is not asked when there is nothing to load, so a custom jar
    sees only responses that set cookies, and a response made without a request has
    (empty) cookies instead of raising (httpx 0.28.1 raised: no request)."""
    asked = []

    class Recording(http.cookiejar.CookieJar):
        def extract_cookies(self, response, request):
            asked.append(request.get_full_url())
            super().extract_cookies(response, request)

    cookies = rs.Cookies(Recording())
    request = rs.Request("GET", "https://example.org/")
    cookies.extract_cookies(rs.Response(200, request=request))
    assert asked == [] and len(cookies) == 0
    assert dict(rs.Response(200).cookies) == {}
    cookies.extract_cookies(rs.Response(200, headers={"Set-Cookie": "a=1"}, request=request))
    assert asked == ["https://example.org/"] and dict(cookies) == {"a": "1"}
