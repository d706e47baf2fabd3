"""httpx2 2.17.0's additions beyond the rename: FunctionAuth, query()/QUERY, Origin,
HTTPXDeprecationWarning. (SSE: tests/test_sse.py; the switch: tests/test_switch.py.)"""

from __future__ import annotations

import copy
import pickle
import warnings

import pytest

import httprs

pytestmark = pytest.mark.httprs_only  # httpx 0.28.1 has none of these


def test_function_auth_is_public_and_applies():
    def add_token(request):
        request.headers["Authorization"] = "Token abc"
        return request

    seen = []

    def handler(request):
        seen.append(request.headers.get("authorization"))
        return httprs.Response(200)

    auth = httprs.FunctionAuth(add_token)
    assert isinstance(auth, httprs.Auth)
    with httprs.Client(transport=httprs.MockTransport(handler), auth=auth) as client:
        client.get("http://example.invalid/")
    with httprs.Client(transport=httprs.MockTransport(handler)) as client:
        client.get("http://example.invalid/", auth=add_token)  # a plain callable too
    assert seen == ["Token abc", "Token abc"]


def test_query_sync(server):
    response = httprs.query(server.url + "/echo", json={"q": "x"})
    doc = response.json()
    assert doc["method"] == "QUERY" and doc["body"] == '{"q":"x"}'
    with httprs.Client() as client:
        doc = client.query(server.url + "/echo", content=b"abc", params={"p": 1}).json()
    assert (doc["method"], doc["body"], doc["query"]) == ("QUERY", "abc", "p=1")


def test_query_without_a_body_is_framed_as_httpx2_frames_it(server):
    # httpx2 2.11 treats QUERY as POST, PUT and PATCH: an empty body is `Content-Length: 0`.
    for method in ("QUERY", "query"):
        assert httprs.Request(method, "http://example.org/").headers["Content-Length"] == "0"
    with httprs.Client() as client:
        doc = client.query(server.url + "/echo").json()
    assert doc["method"] == "QUERY" and ["content-length", "0"] in doc["headers"]


@pytest.mark.anyio
async def test_query_async(server):
    async with httprs.AsyncClient() as client:
        response = await client.query(server.url + "/echo", data={"a": "1"})
    doc = response.json()
    assert doc["method"] == "QUERY" and doc["body"] == "a=1"


@pytest.mark.parametrize(
    ("method", "status", "expected"),
    [
        ("QUERY", 302, "QUERY"),  # RFC 10008 section 2.5 (httpx2)
        ("POST", 302, "GET"),
        ("QUERY", 303, "GET"),
        ("QUERY", 301, "QUERY"),
        ("HEAD", 302, "HEAD"),
    ],
)
def test_redirect_method_for_query(method, status, expected):
    def handler(request):
        if request.url.path == "/start":
            return httprs.Response(status, headers={"Location": "/end"})
        return httprs.Response(
            200, json={"method": request.method, "body": request.content.decode()}
        )

    with httprs.Client(transport=httprs.MockTransport(handler), follow_redirects=True) as client:
        response = client.request(method, "http://example.invalid/start", content=b"body")
    assert response.json()["method"] == expected


def test_origin_normalises_and_hashes():
    a = httprs.Origin("HTTPS://Example.com/path?q#f")
    assert (a.scheme, a.host, a.port) == ("https", "example.com", 443)
    assert a == httprs.Origin(httprs.URL("https://user:pw@example.com:443/other"))
    assert a != httprs.Origin("https://example.com:8443/")
    assert a != httprs.Origin("http://example.com/")
    assert len({a, httprs.Origin("https://example.com")}) == 1
    v6 = httprs.Origin("http://[0:0:0:0:0:0:0:1]:8080/")
    assert v6 == httprs.Origin("http://[::1]:8080") and v6.host == "::1"
    assert httprs.Origin("foo://host/").port is None
    assert repr(a) == "Origin(scheme='https', host='example.com', port=443)"
    with pytest.raises(AttributeError):
        a.host = "other"
    with pytest.raises(ValueError, match="absolute"):
        httprs.Origin("/relative")
    assert pickle.loads(pickle.dumps(a)) == a and copy.deepcopy(a) == a


def test_origin_is_a_frozen_dataclass_as_in_httpx2():
    import dataclasses
    import sys

    a = httprs.Origin("http://example.com:8080/")
    assert dataclasses.is_dataclass(a)
    assert [f.name for f in dataclasses.fields(a)] == ["scheme", "host", "port"]
    assert dataclasses.astuple(a) == ("http", "example.com", 8080)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.port = 80
    if sys.version_info >= (3, 10):
        assert httprs.Origin.__match_args__ == ("scheme", "host", "port")
        assert not hasattr(a, "__dict__")


def test_deprecation_warning_is_visible_by_default():
    assert issubclass(httprs.HTTPXDeprecationWarning, UserWarning)
    assert not issubclass(httprs.HTTPXDeprecationWarning, DeprecationWarning)
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.warn("old", httprs.HTTPXDeprecationWarning, stacklevel=1)
    assert len(caught) == 1


def test_codes_have_every_httpx2_name():
    """httpx2 2.10 added RFC 9110's names for 413, 414, 416 and 422; every name of
    httpx2's `codes` (upper and lower case) exists on httprs's with the same value."""
    import httpx2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # httpx2's old-name warnings
        theirs = {name: int(code) for name, code in httpx2.codes.__members__.items()}
        lower = {
            name: getattr(httpx2.codes, name)
            for name in dir(httpx2.codes)
            if name.islower() and isinstance(getattr(httpx2.codes, name), int)
        }
    assert {"CONTENT_TOO_LARGE", "UNPROCESSABLE_CONTENT"} <= set(theirs)
    for name, value in theirs.items():
        assert getattr(httprs.codes, name) == value, name
    for name, value in lower.items():
        assert getattr(httprs.codes, name) == value, name
    assert httprs.codes.UNPROCESSABLE_CONTENT is httprs.codes.UNPROCESSABLE_ENTITY
    assert httprs.codes.content_too_large == 413


def test_codes_keep_httpx_names_and_phrases_without_warning():
    """httpx 0.28.1's names stay canonical and silent (docs/compatibility.md)."""
    import httpx

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, code in httpx.codes.__members__.items():
            ours = getattr(httprs.codes, name)
            assert (ours.name, ours.phrase, int(ours)) == (code.name, code.phrase, int(code))
        assert httprs.codes(413).name == "REQUEST_ENTITY_TOO_LARGE"
        assert httprs.codes.get_reason_phrase(422) == "Unprocessable Entity"


def test_httpx2s_codes_are_httpx2s():
    """The `codes` the switch gives as `httpx2.codes`: httpx2 2.10+'s names, phrases and
    deprecated old names, member for member (httprs's own `codes` stays httpx's)."""
    import httpx2

    from httprs._status_codes import httpx2_codes

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = [(c.name, int(c), c.phrase) for c in httpx2_codes]
        assert ours == [(c.name, int(c), c.phrase) for c in httpx2.codes]
        assert list(httpx2_codes.__members__) == list(httpx2.codes.__members__)
        assert repr(httpx2_codes(413)) == "<codes.CONTENT_TOO_LARGE: 413>"
        assert httpx2_codes.get_reason_phrase(422) == "Unprocessable Content"
        assert httpx2_codes.get_reason_phrase(499) == ""
        assert str(httpx2_codes.NOT_FOUND) == "404" and httpx2_codes["NOT_FOUND"] == 404
        lower = {n for n in dir(httpx2.codes) if n.islower() and not n.startswith("_")}
        assert {n for n in lower if isinstance(getattr(httpx2.codes, n), int)} <= set(
            dir(httpx2_codes)
        )
        assert httpx2_codes.request_entity_too_large == httpx2_codes.content_too_large == 413
    for old, new in (
        ("REQUEST_ENTITY_TOO_LARGE", "CONTENT_TOO_LARGE"),
        ("REQUEST_URI_TOO_LONG", "URI_TOO_LONG"),
        ("REQUESTED_RANGE_NOT_SATISFIABLE", "RANGE_NOT_SATISFIABLE"),
        ("UNPROCESSABLE_ENTITY", "UNPROCESSABLE_CONTENT"),
    ):
        with pytest.warns(
            DeprecationWarning, match=f"'{old}' is deprecated. Use '{new}' instead."
        ) as got:
            assert getattr(httpx2_codes, old) is httpx2_codes[new]
        assert got[0].filename == __file__  # the line that read it, as httpx2's
    with pytest.raises(AttributeError):
        _ = httpx2_codes.NOT_A_REAL_CODE


def test_a_response_without_a_phrase_reads_the_presented_librarys(monkeypatch):
    from httprs import _alias

    assert httprs.Response(413).reason_phrase == "Request Entity Too Large"
    monkeypatch.setitem(_alias._state, "primary", "httpx2")
    assert httprs.Response(413).reason_phrase == "Content Too Large"
    assert httprs.Response(404).reason_phrase == "Not Found"


def test_still_missing_from_httpx2():
    """What httpx2 has that httprs does not yet: update this list as pieces land."""
    missing = []
    if not hasattr(httprs.URL, "origin"):
        missing.append("URL.origin")
    try:
        httprs.Headers({"a": "1"}) | {"b": "2"}
    except TypeError:
        missing.append("Headers.__or__")
    headers = httprs.Headers()
    try:
        headers |= {"b": "2"}
    except TypeError:
        missing.append("Headers.__ior__")
    for name in ("websocket",):
        if not hasattr(httprs, name):
            missing.append(name)
    assert missing == []


def test_file_content_length_counts_from_the_current_position(server, tmp_path):
    path = tmp_path / "body.bin"
    path.write_bytes(b"0123456789")
    with httprs.Client(timeout=3) as client, path.open("rb") as f:
        f.seek(4)
        doc = client.post(server.url + "/echo", content=f).json()
    headers = dict(doc["headers"])
    assert headers["content-length"] == "6" and doc["body"] == "456789"
    # Unseekable (a pipe): no length can be known, so the body is chunked.
    import os

    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"piped")
    os.close(write_fd)
    with httprs.Client(timeout=3) as client, os.fdopen(read_fd, "rb") as pipe:
        doc = client.post(server.url + "/echo", content=pipe).json()
    headers = dict(doc["headers"])
    assert headers.get("transfer-encoding") == "chunked" and "content-length" not in headers
    assert doc["body"] == "piped"


BAD_LOCATION = "http://example.com:notaport/"


def _bad_redirect(request):
    return httprs.Response(302, headers={"Location": BAD_LOCATION})


def test_unfollowed_redirect_with_an_invalid_location_returns_the_response():
    """Presented as httpx2, an invalid Location that is not followed leaves next_request
    None and returns the response (httpx 0.28.1 fails the send:
    tests/client/test_redirects.py::test_invalid_location_not_followed_fails_the_send)."""
    import os
    import subprocess
    import sys
    import textwrap

    code = f"""
        import asyncio, trio, httprs
        httprs.install(["httpx2"])
        import httpx2

        def bad(request):
            return httpx2.Response(302, headers={{"Location": {BAD_LOCATION!r}}})

        def check(response):
            assert response.status_code == 302 and response.next_request is None

        with httpx2.Client(transport=httpx2.MockTransport(bad)) as client:
            check(client.get("http://example.invalid/"))
            try:
                client.get("http://example.invalid/", follow_redirects=True)
            except httpx2.RemoteProtocolError as exc:
                assert "Invalid URL in location" in str(exc)
            else:
                raise AssertionError("following an invalid Location must raise")

        async def main():
            async def abad(request):
                return bad(request)

            async with httpx2.AsyncClient(transport=httpx2.MockTransport(abad)) as client:
                check(await client.get("http://example.invalid/"))
                try:
                    await client.get("http://example.invalid/", follow_redirects=True)
                except httpx2.RemoteProtocolError as exc:
                    assert "Invalid URL in location" in str(exc)
                else:
                    raise AssertionError("following an invalid Location must raise")

        asyncio.run(main())
        trio.run(main)
        print("ok")
        """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "HTTPRS_INSTALL"},
    )
    assert proc.stdout.split() == ["ok"], proc.stderr


def test_unfollowed_redirect_with_an_invalid_location_fails_as_httpx():
    with httprs.Client(transport=httprs.MockTransport(_bad_redirect)) as client:
        with pytest.raises(httprs.RemoteProtocolError, match="Invalid URL in location"):
            client.get("http://example.invalid/")


@pytest.mark.anyio
async def test_unfollowed_redirect_with_an_invalid_location_fails_as_httpx_async():
    async with httprs.AsyncClient(transport=httprs.MockTransport(_bad_redirect)) as client:
        with pytest.raises(httprs.RemoteProtocolError, match="Invalid URL in location"):
            await client.get("http://example.invalid/")


@pytest.mark.parametrize(
    ("url", "as_httpx", "as_httpx2"),
    [
        ("http://xn--bcher-kva.example/", "b\u00fccher.example", "b\u00fccher.example"),
        # httpx 0.28.1 decodes a host that starts with an A-label; httpx2 every A-label.
        ("http://a.xn--bcher-kva.example/", "a.xn--bcher-kva.example", "a.b\u00fccher.example"),
        # Not valid IDNA: kept as written (httpx 0.28.1 raised idna's own error).
        ("http://xn--a.com/", "xn--a.com", "xn--a.com"),
        ("http://xn--ls8h.xn--a.la/", "xn--ls8h.xn--a.la", "xn--ls8h.xn--a.la"),
        ("http://xn--bcher-kva.xn--a.com/", "b\u00fccher.xn--a.com", "b\u00fccher.xn--a.com"),
    ],
)
def test_idna_hosts_are_shown_as_each_library_shows_them(monkeypatch, url, as_httpx, as_httpx2):
    from httprs import _alias

    assert httprs.URL(url).host == as_httpx
    monkeypatch.setitem(_alias._state, "primary", "httpx2")
    assert httprs.URL(url).host == as_httpx2
    assert httprs.URL(url).origin.host == as_httpx2


@pytest.mark.parametrize("presented", ["httpx", "httpx2"])
def test_unfollowed_redirect_to_an_invalid_idna_host_returns_the_response(monkeypatch, presented):
    from httprs import _alias

    monkeypatch.setitem(_alias._state, "primary", presented)

    def redirect(request):
        return httprs.Response(302, headers={"Location": "http://xn--a.com/"})

    with httprs.Client(transport=httprs.MockTransport(redirect)) as client:
        response = client.get("http://example.invalid/")
    assert response.status_code == 302
    assert response.next_request.url.host == "xn--a.com"


@pytest.mark.parametrize(
    ("no_proxy", "url", "proxied"),
    [
        ("10.0.0.0/8", "http://10.1.2.3/", False),
        ("10.0.0.0/8", "http://11.1.2.3/", True),
        ("10.0.0.0/8", "http://example.com/", True),
        ("192.168.1.7/16", "http://192.168.200.1:8080/", False),  # host bits ignored
        ("fd00::/8", "http://[fd12::1]/", False),
        ("fd00::/8", "http://[fe80::1]/", True),
        ("[fd00::]/8", "http://[fd12::1]/", False),
        ("[::1]", "http://[::1]:8000/", False),
        ("[::1]", "http://[::2]/", True),
        ("*.example.com", "http://a.example.com/", False),
        ("*.example.com", "http://example.com/", True),
        ("example.com", "http://example.com/", False),
        ("10.0.0.1/abc, foo/bar, 10.0.0.0/99", "http://10.0.0.1/", True),  # all ignored
    ],
)
def test_no_proxy_networks_wildcards_and_ipv6(monkeypatch, no_proxy, url, proxied):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    with httprs.Client() as client:
        transport = client._transport_for_url(httprs.URL(url))
        assert (transport is not client._transport) == proxied


def test_url_pattern_networks_and_priority():
    from httprs._utils import URLPattern, sorted_mounts

    net = URLPattern("all://10.0.0.0/8")
    assert net.matches(httprs.URL("https://10.9.9.9:444/x"))
    assert not net.matches(httprs.URL("https://[::1]/")) and not net.matches(
        httprs.URL("http://a/")
    )
    for bad in ("all://10.0.0.0/x", "all://10.0.0.0/33", "all://u@10.0.0.0/8"):
        with pytest.raises(httprs.InvalidURL):
            URLPattern(bad)
    keys = [
        "all://",
        "all://10.0.0.0/8",
        "all://10.1.0.0/16",
        "all://10.1.2.3",
        "all://10.1.2.3:80",
    ]
    ordered = list(sorted_mounts({URLPattern(k): k for k in reversed(keys)}).values())
    assert ordered == [
        "all://10.1.2.3:80",
        "all://10.1.2.3",
        "all://10.1.0.0/16",
        "all://10.0.0.0/8",
        "all://",
    ]


def _digest_server(challenge):
    seen = []

    def handler(request):
        seen.append(request.headers.get("authorization"))
        if "authorization" not in request.headers:
            return httprs.Response(401, headers={"WWW-Authenticate": challenge})
        return httprs.Response(200)

    return httprs.MockTransport(handler), seen


def test_digest_challenge_parameters_are_case_insensitive():
    transport, seen = _digest_server(
        'Digest Realm="api", NONCE="abc", QOP="auth", Algorithm=SHA-256, Opaque = "o"'
    )
    with httprs.Client(transport=transport, auth=httprs.DigestAuth("u", "p")) as client:
        assert client.get("http://example.invalid/").status_code == 200
    authorization = seen[1]
    for part in ('realm="api"', 'nonce="abc"', 'opaque="o"', "algorithm=SHA-256", "qop=auth"):
        assert part in authorization, authorization


def test_digest_unsupported_algorithm_is_a_protocol_error():
    transport, _ = _digest_server('Digest realm="api", nonce="abc", algorithm=FOO-1')
    with httprs.Client(transport=transport, auth=httprs.DigestAuth("u", "p")) as client:
        with pytest.raises(httprs.ProtocolError, match="Unsupported digest auth algorithm"):
            client.get("http://example.invalid/")


def test_url_origin_and_headers_union():
    url = httprs.URL("https://u:p@Example.com/a?b#c")
    assert url.origin == httprs.Origin("https://example.com:443/") and hash(url.origin)
    from httprs._urls import Origin

    assert Origin is httprs.Origin
    base = httprs.Headers([("Accept", "a"), ("X-A", "1")])
    merged = base | {"accept": "b", "X-B": "2"}
    assert merged.multi_items() == [("x-a", "1"), ("accept", "b"), ("x-b", "2")]
    assert base["accept"] == "a"  # unchanged
    assert isinstance(merged, httprs.Headers)
    assert ({"Accept": "x", "Y": "1"} | base).multi_items() == [
        ("y", "1"),
        ("accept", "a"),
        ("x-a", "1"),
    ]
    same = base
    base |= [("X-A", "9")]
    assert base is same and base["x-a"] == "9"
    with pytest.raises(TypeError):
        base | 3
    assert httprs.Headers({"X-Key": "v"})._list == [(b"X-Key", b"x-key", b"v")]


def test_default_trust_store_is_certifi_as_in_httpx(https_server, certs, clean_env):
    """httpx 0.28.1 verifies against certifi's bundle by default; httpx2 (2.3+) against
    the system's store. httprs keeps certifi (docs/compatibility.md): with certifi's
    bundle swapped for the test CA, a default client trusts the test server, sync and
    async, with and without the switch presenting httprs as httpx2."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import asyncio, certifi, sys
        certifi.where = lambda: {certs.ca_file!r}
        import httprs
        if sys.argv[1] == "switched":
            httprs.install()
        print(httprs.get({https_server.url!r}).status_code)
        async def main():
            async with httprs.AsyncClient() as client:
                return (await client.get({https_server.url!r})).status_code
        print(asyncio.run(main()))
    """)
    for mode in ("plain", "switched"):
        proc = subprocess.run(
            [sys.executable, "-c", code, mode], capture_output=True, text=True, timeout=120
        )
        assert proc.stdout.split() == ["200", "200"], proc.stderr
