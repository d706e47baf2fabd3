"""Private httpx names that real libraries import, after `httprs.install()`.

Each name is imported under both `httpx` and `httpx2` in a fresh interpreter (the switch
lasts for the process) and checked to be httprs's object or a faithful equivalent. The
table in docs/compatibility.md names the library that needs each. pytest-httpx, which
patches `HTTPTransport.handle_request` and imports `httpx._content`, is run for real
against httprs through `python -m httprs.run -m pytest`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.httprs_only

# (module under httpx, name, the httprs object it must be; None: checked by the code).
PRIVATE_NAMES = [
    ("_config", "DEFAULT_TIMEOUT_CONFIG", "httprs._config.DEFAULT_TIMEOUT_CONFIG"),
    ("_config", "DEFAULT_LIMITS", "httprs._config.DEFAULT_LIMITS"),
    ("_config", "DEFAULT_MAX_REDIRECTS", "httprs._config.DEFAULT_MAX_REDIRECTS"),
    ("_config", "create_ssl_context", "httprs.create_ssl_context"),
    ("_client", "USE_CLIENT_DEFAULT", "httprs.USE_CLIENT_DEFAULT"),
    ("_client", "UseClientDefault", "httprs._client.UseClientDefault"),
    ("_client", "BaseClient", "httprs._client.BaseClient"),
    ("_client", "EventHook", "httprs._client.EventHook"),
    ("_client", "AuthTypes", "httprs._types.AuthTypes"),
    ("_client", "TimeoutTypes", "httprs._types.TimeoutTypes"),
    ("_client", "Limits", "httprs.Limits"),
    ("_client", "AsyncBaseTransport", "httprs.AsyncBaseTransport"),
    ("_client", "HTTPTransport", "httprs.HTTPTransport"),
    ("_client", "AsyncHTTPTransport", "httprs.AsyncHTTPTransport"),
    ("_content", "IteratorByteStream", "httprs._content.IteratorByteStream"),
    ("_content", "AsyncIteratorByteStream", "httprs._content.AsyncIteratorByteStream"),
    ("_content", "ByteStream", "httprs.ByteStream"),
    ("_content", "encode_text", "httprs._content.encode_text"),
    ("_content", "encode_html", "httprs._content.encode_html"),
    ("_models", "SENSITIVE_HEADERS", "httprs._models.SENSITIVE_HEADERS"),
    ("_models", "_parse_content_type_charset", "httprs._models._parse_content_type_charset"),
    ("_models", "_is_known_encoding", "httprs._models._is_known_encoding"),
    ("_client", "_same_origin", "httprs._client._same_origin"),
    ("_client", "_is_https_redirect", "httprs._client._is_https_redirect"),
    ("_client", "_port_or_default", "httprs._client._port_or_default"),
    ("_multipart", "_format_form_param", "httprs._content._format_form_param"),
    ("_multipart", "_guess_content_type", "httprs._content._guess_content_type"),
    ("_multipart", "MultipartStream", "httprs._content.MultipartStream"),
    ("_utils", "URLPattern", "httprs._utils.URLPattern"),
    ("_utils", "get_environment_proxies", "httprs._utils.get_environment_proxies"),
    ("_urlparse", "urlparse", "httprs._urlparse.urlparse"),
    ("_transports.default", "HTTPTransport", "httprs.HTTPTransport"),
    ("_transports.default", "AsyncHTTPTransport", "httprs.AsyncHTTPTransport"),
    (
        "_transports.default",
        "map_httpcore_exceptions",
        "httprs._httpx_transports.default.map_httpcore_exceptions",
    ),
    ("_transports.default", "ResponseStream", "httprs._httpx_transports.default.ResponseStream"),
    (
        "_transports.default",
        "HTTPCORE_EXC_MAP",
        "httprs._httpx_transports.default.HTTPCORE_EXC_MAP",
    ),
    ("_utils", "primitive_value_to_str", "httprs._content.primitive_value_to_str"),
    ("_utils", "to_bytes", "httprs._utils.to_bytes"),
    ("_client", "USER_AGENT", "httprs._client.USER_AGENT"),
    ("_transports.asgi", "ASGITransport", "httprs.ASGITransport"),
    ("_transports.wsgi", "WSGITransport", "httprs.WSGITransport"),
    ("_transports.mock", "MockTransport", "httprs.MockTransport"),
    ("_transports.base", "BaseTransport", "httprs.BaseTransport"),
    ("_transports", "HTTPTransport", "httprs.HTTPTransport"),
    ("_models", "Response", "httprs.Response"),
    ("_models", "_obfuscate_sensitive_headers", "httprs._models._obfuscate_sensitive_headers"),
    ("_auth", "_DigestAuthChallenge", "httprs._auth._DigestAuthChallenge"),
    ("_models", "Headers", "httprs.Headers"),
    ("_urls", "URL", "httprs.URL"),
    ("_exceptions", "HTTPStatusError", "httprs.HTTPStatusError"),
    ("_exceptions", "request_context", "httprs._exceptions.request_context"),
    ("_status_codes", "codes", "httprs.codes"),
    ("_auth", "FunctionAuth", "httprs.FunctionAuth"),
    ("_api", "request", "httprs.request"),
    ("_main", "main", "httprs.main"),
    ("_sse", "EventSource", "httprs.EventSource"),
    # Imported by proxies, recorders and scrapers (see docs/compatibility.md).
    ("_decoders", "SUPPORTED_DECODERS", "httprs._decoders.SUPPORTED_DECODERS"),
    ("_decoders", "ContentDecoder", "httprs._decoders.ContentDecoder"),
    ("_decoders", "MultiDecoder", "httprs._decoders.MultiDecoder"),
    ("_decoders", "GZipDecoder", "httprs._decoders.GZipDecoder"),
    ("_decoders", "IdentityDecoder", "httprs._decoders.IdentityDecoder"),
    ("_decoders", "LineDecoder", "httprs._decoders.LineDecoder"),
    ("_decoders", "TextDecoder", "httprs._decoders.TextDecoder"),
    ("_decoders", "ByteChunker", "httprs._decoders.ByteChunker"),
    ("_decoders", "TextChunker", "httprs._decoders.TextChunker"),
    ("_models", "LineDecoder", "httprs._decoders.LineDecoder"),
    ("_models", "_normalize_header_value", "httprs._models._normalize_header_value"),
    ("_client", "ClientState", "httprs._client.ClientState"),
    ("_urlparse", "quote", "httprs._urlparse.quote"),
    ("_urlparse", "encode_host", "httprs._urlparse.encode_host"),
    ("_urlparse", "normalize_path", "httprs._urlparse.normalize_path"),
    ("_urlparse", "PATH_SAFE", "httprs._urlparse.PATH_SAFE"),
]
TYPE_NAMES = [
    "AsyncByteStream",
    "AuthTypes",
    "CertTypes",
    "CookieTypes",
    "FileContent",
    "FileTypes",
    "HeaderTypes",
    "PrimitiveData",
    "ProxiesTypes",
    "ProxyTypes",
    "QueryParamTypes",
    "RequestContent",
    "RequestData",
    "RequestExtensions",
    "RequestFiles",
    "ResponseContent",
    "ResponseExtensions",
    "SyncByteStream",
    "TimeoutTypes",
    "URLTypes",
    "VerifyTypes",
]


# Where a name differs between the two libraries: (top, module, name) -> httprs object.
OWN_TARGETS = {
    ("httpx2", "_status_codes", "codes"): "httprs._status_codes.httpx2_codes",
}


def run_py(code: str, *args: str, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "HTTPRS_INSTALL"}
    proc = subprocess.run(
        [sys.executable, *args] if args else [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("top", ["httpx", "httpx2"])
def test_private_names_are_httprs_objects(top):
    code = f"""
        import importlib, operator, httprs
        httprs.install(["{top}"])
        def resolve(dotted):
            module, _, rest = dotted.partition(".")
            obj = importlib.import_module(module)
            for part in rest.split("."):
                obj = getattr(obj, part)
            return obj
        for module, name, target in {PRIVATE_NAMES!r}:
            target = {OWN_TARGETS!r}.get(("{top}", module, name), target)
            mod = importlib.import_module("{top}." + module)
            got = getattr(mod, name)
            assert got is resolve(target), (module, name, got)
        types = importlib.import_module("{top}._types")
        for name in {TYPE_NAMES!r}:
            assert getattr(types, name) is not None, name
        from typing import get_args
        assert httprs.Headers in get_args(types.HeaderTypes)
        print("ok")
    """
    assert run_py(code).split() == ["ok"]


def test_obfuscate_sensitive_headers_matches_httpx():
    import httpx._models as real

    from httprs._models import _obfuscate_sensitive_headers as ours

    items = [
        ("Authorization", "Basic abc"),
        (b"proxy-authorization", b"secret"),
        ("X-Other", "visible"),
        (b"AUTHORIZATION", b"x"),
    ]
    assert list(ours(items)) == list(real._obfuscate_sensitive_headers(items))
    assert list(ours(items)) == [
        ("Authorization", "[secure]"),
        (b"proxy-authorization", b"[secure]"),
        ("X-Other", "visible"),
        (b"AUTHORIZATION", b"[secure]"),
    ]


def test_digest_auth_challenge_matches_httpx():
    """pyprusalink subclasses DigestAuth, builds `_DigestAuthChallenge(...)` itself and passes
    it to `_build_auth_header`: the same fields, by keyword and position, give the same
    Authorization header as httpx's."""
    import httpx
    import httpx._auth as real

    import httprs
    from httprs._auth import _DigestAuthChallenge

    fields = dict(realm=b"r", nonce=b"n", algorithm="SHA-256", opaque=b"o", qop=b"auth")
    ours, theirs = _DigestAuthChallenge(**fields), real._DigestAuthChallenge(**fields)
    assert tuple(ours) == tuple(theirs) and ours._fields == theirs._fields
    assert ours == _DigestAuthChallenge(*theirs) and ours.qop == b"auth"
    cnonce = b"0123456789abcdef"
    mine, ref = httprs.DigestAuth("u", "p"), httpx.DigestAuth("u", "p")
    mine._get_client_nonce = ref._get_client_nonce = lambda nonce_count, nonce: cnonce
    header = mine._build_auth_header(httprs.Request("GET", "http://h/p?q"), ours)
    assert header == ref._build_auth_header(httpx.Request("GET", "http://h/p?q"), theirs)


def test_urlparse_matches_httpx():
    import httpx._urlparse as real

    from httprs._urlparse import urlparse

    for url in [
        "https://user:pw@Example.COM:8443/a/../b/%7e?q=1 2#frag",
        "http://[::1]:80/",
        "http://a.b/?",
        "mailto:x@y.z",
        "/relative/path?x",
        "https://xn--bcher-kva.example/",
        "https://bücher.example/p",
    ]:
        ours, theirs = urlparse(url), real.urlparse(url)
        assert tuple(ours) == tuple(theirs), url
        assert ours.authority == theirs.authority and ours.netloc == theirs.netloc
        assert str(ours) == str(theirs)
    import httprs

    for bad in ["http://a\x00b/", "http://[::1/"]:
        with pytest.raises(httprs.InvalidURL):
            urlparse(bad)


def test_urlparse_helpers_match_httpx():
    import httpx._urlparse as real

    import httprs
    from httprs import _urlparse as ours

    for name in [
        "MAX_URL_LENGTH", "UNRESERVED_CHARACTERS", "SUB_DELIMS", "FRAG_SAFE", "QUERY_SAFE",
        "PATH_SAFE", "USERNAME_SAFE", "PASSWORD_SAFE", "USERINFO_SAFE",
    ]:  # fmt: skip
        assert getattr(ours, name) == getattr(real, name), name
    for pattern in ["PERCENT_ENCODED_REGEX", "IPv4_STYLE_HOSTNAME", "IPv6_STYLE_HOSTNAME"]:
        assert getattr(ours, pattern).pattern == getattr(real, pattern).pattern
    assert set(ours.COMPONENT_REGEX) == set(real.COMPONENT_REGEX)
    for url in ["https://u:p@h.example:81/p?q#f", "//h/p", "/p?q", "s:", "?q#f"]:
        assert ours.URL_REGEX.match(url).groupdict() == real.URL_REGEX.match(url).groupdict()
    for auth in ["u:p@h:81", "h", "[::1]:8", "h:", "a@b@c:1", "u@[::1]"]:
        assert (
            ours.AUTHORITY_REGEX.match(auth).groupdict()
            == real.AUTHORITY_REGEX.match(auth).groupdict()
        )
    for text, safe in [
        ("a b%20c%zz/é", ""),
        ("a b%20c%zz/é", "/%"),
        ("100%", ours.PATH_SAFE),
        ("q=a&b=c d", ours.QUERY_SAFE),
        ("", ""),
    ]:
        assert ours.quote(text, safe) == real.quote(text, safe), (text, safe)
        assert ours.percent_encoded(text, safe) == real.percent_encoded(text, safe)
    assert ours.PERCENT("é/") == real.PERCENT("é/")
    for host in ["Example.COM", "127.0.0.1", "[::1]", "bücher.example", "a b", ""]:
        assert ours.encode_host(host) == real.encode_host(host), host
    for bad in ["999.1.1.1", "[::zz]"]:
        with pytest.raises(httprs.InvalidURL):
            ours.encode_host(bad)
    for port, scheme in [(None, "http"), ("", "http"), ("80", "http"), (443, "https"),
                         ("8080", "http"), (21, "ftp")]:  # fmt: skip
        assert ours.normalize_port(port, scheme) == real.normalize_port(port, scheme)
    with pytest.raises(httprs.InvalidURL):
        ours.normalize_port("x", "http")
    for path in ["/a/./b/../c", "a/..", "/..", "/a/b/", "", "/%2e/x", "./a"]:
        assert ours.normalize_path(path) == real.normalize_path(path), path
    for path, has_scheme, has_authority in [("a", True, True), ("//a", False, False),
                                            (":a", False, False)]:  # fmt: skip
        with pytest.raises(httprs.InvalidURL):
            ours.validate_path(path, has_scheme, has_authority)
    ours.validate_path("/ok", True, True)


def test_client_state_and_header_helpers():
    import httpx._models as real_models

    import httprs
    from httprs._client import ClientState
    from httprs._models import _normalize_header_key, _normalize_header_value

    assert [m.name for m in ClientState] == ["UNOPENED", "OPENED", "CLOSED"]
    client = httprs.Client()
    assert client._state is ClientState.UNOPENED and not client.is_closed
    # Code marks a client closed by setting the state (seen in the wild).
    client._state = ClientState.CLOSED
    assert client.is_closed
    with pytest.raises(RuntimeError, match="client has been closed"):
        client.get("http://127.0.0.1:9/")
    client.close()
    with httprs.Client() as opened:
        assert opened._state is ClientState.OPENED
    assert opened._state is ClientState.CLOSED
    for value, encoding in [("v", None), (b"\xff", None), ("é", "utf-8")]:
        assert _normalize_header_value(value, encoding) == real_models._normalize_header_value(
            value, encoding
        )
    with pytest.raises(TypeError, match="Header value must be str or bytes"):
        _normalize_header_value(3)
    assert _normalize_header_key("K") == b"K"


def test_version_submodule_under_the_switch():
    code = """
        import httprs
        httprs.install()
        import httpx, httpx2
        from httpx.__version__ import __version__ as v1, __title__
        from httpx2.__version__ import __version__ as v2
        import httpx.__version__
        assert (v1, __title__, v2) == ("0.28.1", "httpx", "2.17.0"), (v1, v2)
        assert httpx.__version__ == "0.28.1" and httpx2.__version__ == "2.17.0"
        print("ok")
    """
    assert run_py(code).split() == ["ok"]


def test_transport_pool_describes_settings_like_httpx():
    import httpcore
    import httpx

    import httprs

    for kwargs in [
        {},
        {"proxy": "http://user:pa%20ss@proxy.local:3128"},
        {"proxy": httprs.Proxy("https://proxy.local", headers={"X-P": "1"})},
        {"limits": httprs.Limits(max_connections=7, max_keepalive_connections=3)},
        # Socket options reach the proxy pool too (anthropic 2.x's tests read them there).
        {"proxy": "http://proxy.local:3128", "socket_options": [(1, 9, True)]},
    ]:
        real_kwargs = dict(kwargs)
        if isinstance(real_kwargs.get("proxy"), httprs.Proxy):
            p = real_kwargs["proxy"]
            real_kwargs["proxy"] = httpx.Proxy(str(p.url), headers=p.headers.raw)
        if "limits" in real_kwargs:
            real_kwargs["limits"] = httpx.Limits(max_connections=7, max_keepalive_connections=3)
        for ours_cls, real_cls in [
            (httprs.HTTPTransport, httpx.HTTPTransport),
            (httprs.AsyncHTTPTransport, httpx.AsyncHTTPTransport),
        ]:
            ours_t = ours_cls(**kwargs)
            ours, real = ours_t._pool, real_cls(**real_kwargs)._pool
            assert isinstance(ours, type(real))
            assert ours_t._pool is ours  # cached
            for attr in (
                "_max_connections",
                "_max_keepalive_connections",
                "_retries",
                "_socket_options",
            ):
                assert getattr(ours, attr) == getattr(real, attr), attr
            if "proxy" in kwargs:
                assert ours._proxy_url == real._proxy_url
                assert ours._proxy_headers == real._proxy_headers
                assert isinstance(ours, (httpcore.HTTPProxy, httpcore.AsyncHTTPProxy))
            if isinstance(ours_t, httprs.HTTPTransport):
                ours_t.close()
            else:
                asyncio.run(ours_t.aclose())


@pytest.mark.parametrize("top", ["httpx", "httpx2"])
def test_pool_is_both_httpcores_pool(top):
    """Under either presented name, `_pool` passes httpcore's and httpcore2's isinstance
    checks (pytest-httpx and openai 3.x's tests in one process), built as the presented
    library's httpcore would build it; its `_proxy_url` equals either package's URL."""
    code = f"""
        import asyncio, httprs
        httprs.install(["{top}"])
        import httpcore, httpcore2
        package = {{"httpx": httpcore, "httpx2": httpcore2}}["{top}"]
        for transport, name in [
            (httprs.HTTPTransport(), "ConnectionPool"),
            (httprs.AsyncHTTPTransport(), "AsyncConnectionPool"),
            (httprs.HTTPTransport(proxy="http://u:p@proxy.local:3128"), "HTTPProxy"),
            (httprs.AsyncHTTPTransport(proxy="http://proxy.local:3128"), "AsyncHTTPProxy"),
        ]:
            pool = transport._pool
            assert isinstance(pool, getattr(httpcore, name)), (name, type(pool).__mro__)
            assert isinstance(pool, getattr(httpcore2, name)), (name, type(pool).__mro__)
            assert type(pool).__mro__[1] is getattr(package, name)
            assert pool._requests == []
            if "Proxy" in name:
                assert isinstance(pool._proxy_url, package.URL)
                assert pool._proxy_url.host == b"proxy.local"
                # Equal to either package's URL of the same parts, both ways (prefect's
                # tests compare it with httpcore.URL while httprs presents as httpx2).
                for URL in (httpcore.URL, httpcore2.URL):
                    same = URL("http://proxy.local:3128")
                    assert pool._proxy_url == same and same == pool._proxy_url
                    assert pool._proxy_url != URL("http://proxy.local:3129")
        print("ok")
    """
    assert run_py(code).split() == ["ok"]


def test_pool_after_alias_httpx_is_httpcore2s_pool():
    """After `alias_httpx()`, `httpcore` is `httpcore2`: `_pool` is that one package's
    class (anthropic's suite reads proxied transports' `_pool` so)."""
    code = """
        import asyncio, httprs
        httprs.alias_httpx()
        import httpcore, httpcore2
        assert httpcore is httpcore2
        for transport, name in [
            (httprs.HTTPTransport(), "ConnectionPool"),
            (httprs.AsyncHTTPTransport(), "AsyncConnectionPool"),
            (httprs.HTTPTransport(proxy="http://proxy.local:3128"), "HTTPProxy"),
            (httprs.AsyncHTTPTransport(proxy="http://proxy.local:3128"), "AsyncHTTPProxy"),
        ]:
            pool = transport._pool
            assert type(pool) is getattr(httpcore2, name), type(pool).__mro__
            if "Proxy" in name:
                assert pool._proxy_url.host == b"proxy.local"
        print("ok")
    """
    assert run_py(code).split() == ["ok"]


@pytest.mark.parametrize("proxy", ["http://proxy.local:1", "socks5://proxy.local:2"])
def test_proxy_pool_carries_the_transports_connect_options_as_httpx2(proxy, presented_as_httpx2):
    """Presented as httpx2, a proxied transport's `_pool` holds its uds=, local_address=
    (HTTP proxies) and retries= (SOCKS ones too), as httpx2 2.17's (httprs's connections
    to the proxy honour them: tests/test_transport_options.py::test_proxied_*)."""
    import httpx2

    import httprs

    names = ("_uds", "_local_address", "_retries")
    # (uds= and local_address= together: not supported by httprs's transports)
    for kwargs in ({"uds": "/tmp/x.sock", "retries": 2}, {"local_address": "127.0.0.2"}):
        theirs = httpx2.HTTPTransport(proxy=proxy, **kwargs)._pool
        ours = httprs.HTTPTransport(proxy=proxy, **kwargs)._pool
        assert type(ours).__module__ == "httpcore2"
        assert [getattr(ours, n) for n in names] == [getattr(theirs, n) for n in names]


def test_httpx2_private_constants_and_cookie_module_are_importable():
    """Names httpx2 2.17's private modules hold that httprs's lacked (found by a
    differential sweep, session 33): each has httpx2's value."""
    code = """
        import httprs
        httprs.install(["httpx2"])
        from httpx2._config import (
            DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS, DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS,
            DEFAULT_MAX_MESSAGE_SIZE_BYTES, DEFAULT_QUEUE_SIZE,
        )
        from httpx2._cookies import MAX_HOST_LENGTH, MAX_PATH_LENGTH, IndexedCookieJar
        from httpx2._models import MAX_PATH_LENGTH as models_max_path
        from httpx2._urls import _ORIGIN_DEFAULT_PORTS
        from httpx2._utils import format_host
        import httpx2, http.cookiejar
        assert (DEFAULT_MAX_MESSAGE_SIZE_BYTES, DEFAULT_QUEUE_SIZE) == (65536, 512)
        assert DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS == DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS == 20.0
        assert (MAX_HOST_LENGTH, MAX_PATH_LENGTH, models_max_path) == (255, 1024, 1024)
        assert _ORIGIN_DEFAULT_PORTS == {"ftp": 21, "http": 80, "https": 443, "ws": 80, "wss": 443}
        assert format_host("fe80::1%en0") == "[fe80::1%25en0]" and format_host("a.b") == "a.b"
        assert issubclass(IndexedCookieJar, http.cookiejar.CookieJar)
        assert type(httpx2.Cookies().jar) is IndexedCookieJar
        print("ok")
    """
    assert run_py(code).split() == ["ok"]


def test_pool_view_without_httpcore(monkeypatch):
    import httprs
    from httprs._poolview import PoolView, ProxyURL

    monkeypatch.setitem(sys.modules, "httpcore", None)  # import httpcore -> ImportError
    transport = httprs.HTTPTransport(proxy="http://u:p@proxy.local:3128")
    pool = transport._pool
    assert isinstance(pool, PoolView)
    assert pool._proxy_url == ProxyURL(b"http", b"proxy.local", 3128, b"/")
    assert pool._proxy_headers == [(b"Proxy-Authorization", b"Basic dTpw")]
    assert pool.connections == [] and pool._max_connections == 100
    plain = httprs.AsyncHTTPTransport(uds="/tmp/x.sock")._pool
    assert plain._uds == "/tmp/x.sock" and not hasattr(plain, "_proxy_url")


def test_client_transport_for_url():
    import httprs

    mounted = httprs.MockTransport(lambda request: httprs.Response(204))
    with httprs.Client(mounts={"http://mounted.example": mounted}) as client:
        assert client._transport_for_url(httprs.URL("http://mounted.example/x")) is mounted
        assert client._transport_for_url(httprs.URL("http://other.example/")) is (
            client._transport
        )


PYTEST_HTTPX_TESTS = """
import httpx
import pytest

import httprs


def test_response_and_types(httpx_mock):
    httpx_mock.add_response(url="http://api.example/items?page=2", json={"items": [1]})
    with httpx.Client() as client:
        response = client.get("http://api.example/items", params={"page": 2})
    assert response.json() == {"items": [1]}
    assert type(response) is httprs.Response
    assert httpx_mock.get_request().url == "http://api.example/items?page=2"


def test_match_method_headers_and_body(httpx_mock):
    httpx_mock.add_response(
        method="POST",
        url="http://api.example/create",
        match_headers={"X-Key": "k"},
        match_content=b'{"a":1}',
        status_code=201,
    )
    response = httpx.post(
        "http://api.example/create", headers={"X-Key": "k"}, content=b'{"a":1}'
    )
    assert response.status_code == 201


def test_match_json_and_files(httpx_mock):
    httpx_mock.add_response(match_json={"a": [1, 2]})
    assert httpx.put("http://api.example/j", json={"a": [1, 2]}).status_code == 200
    httpx_mock.add_response(match_files={"f": ("name.txt", b"data")})
    assert httpx.post("http://api.example/f", files={"f": ("name.txt", b"data")}).is_success


def test_exception_and_callback(httpx_mock):
    httpx_mock.add_exception(httpx.ReadTimeout("too slow"), url="http://api.example/slow")
    httpx_mock.add_callback(
        lambda request: httpx.Response(200, text=request.headers["x-echo"]),
        url="http://api.example/cb",
    )
    with httpx.Client() as client:
        with pytest.raises(httpx.ReadTimeout, match="too slow"):
            client.get("http://api.example/slow")
        assert client.get("http://api.example/cb", headers={"X-Echo": "hi"}).text == "hi"


@pytest.mark.httpx_mock(assert_all_requests_were_expected=False)
def test_unmatched_request_is_reported(httpx_mock):
    httpx_mock.add_response(url="http://api.example/known", is_optional=True)
    with pytest.raises(httpx.TimeoutException, match="No response can be found for GET"):
        httpx.get("http://api.example/unknown", headers={"X-Trace": "1"})


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_client(httpx_mock, anyio_backend):
    httpx_mock.add_response(url="http://api.example/a", text="async ok")
    async with httpx.AsyncClient() as client:
        response = await client.get("http://api.example/a")
    assert response.text == "async ok"


# Proxy matching reads `_pool` as an httpcore proxy, while httprs presents as httpx2.
def test_match_proxy_url(httpx_mock):
    httpx_mock.add_response(proxy_url="http://user:pw@proxy.example:3128/", text="proxied")
    httpx_mock.add_response(url="http://api.example/direct", text="direct")
    with httpx.Client(proxy="http://user:pw@proxy.example:3128") as client:
        assert client.get("http://api.example/p").text == "proxied"
    assert httpx.get("http://api.example/direct").text == "direct"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_match_proxy_url_async(httpx_mock, anyio_backend):
    httpx_mock.add_response(proxy_url="http://proxy.example:3128/", text="proxied")
    async with httpx.AsyncClient(proxy="http://proxy.example:3128") as client:
        assert (await client.get("http://api.example/p")).text == "proxied"
"""


PRIVATE_ATTRIBUTE_PATHS = """
    import {top}, sys
    from unittest import mock
    # httpx's package imports its private modules: attribute paths work without an import.
    assert {top}._transports.default.HTTPTransport is {top}.HTTPTransport
    assert {top}._transports.asgi.ASGITransport is {top}.ASGITransport
    assert {top}._multipart.MultipartStream.__name__ == "MultipartStream"
    assert {top}._urlparse.urlparse("http://a/b").path == "/b"
    assert callable({top}._utils.get_environment_proxies)
    # Suites fix the multipart boundary by patching os.urandom through _multipart.
    with mock.patch("{top}._multipart.os.urandom", return_value=b"\\x11" * 16):
        request = {top}.Request("POST", "http://example.org/", files={{"f": b"data"}})
    assert request.headers["Content-Type"].endswith("boundary=" + "11" * 16), request.headers
    print("ok")
"""


@pytest.mark.parametrize("top", ["httpx", "httpx2"])
def test_private_modules_are_attributes_of_the_package(top):
    code = PRIVATE_ATTRIBUTE_PATHS.format(top=top)
    switched = f"import httprs\nhttprs.install(['{top}'])\n" + textwrap.dedent(code)
    assert run_py(switched).split() == ["ok"]
    if top == "httpx":  # the same expectations hold for the real httpx 0.28.1
        assert run_py(code).split() == ["ok"]


def test_pytest_httpx_runs_against_httprs(tmp_path):
    pytest.importorskip("pytest_httpx")
    (tmp_path / "test_inner.py").write_text(PYTEST_HTTPX_TESTS)
    out = run_py(
        "",
        "-m",
        "httprs.run",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-W",
        "error::pytest.PytestUnraisableExceptionWarning",
        str(tmp_path / "test_inner.py"),
        cwd=tmp_path,
    )
    assert "8 passed" in out, out


def test_more_private_helpers():
    import io

    import httpcore

    import httprs
    from httprs import _utils
    from httprs._httpx_transports import default

    assert _utils.primitive_value_to_str(True) == "true"
    assert _utils.primitive_value_to_str(None) == "" and _utils.primitive_value_to_str(3) == "3"
    assert _utils.to_bytes_or_str("a", b"") == b"a" and _utils.to_bytes_or_str("a", "") == "a"
    assert _utils.peek_filelike_length(io.BytesIO(b"abcd")) == 4
    with pytest.raises(httprs.ConnectTimeout, match="slow") as info:
        with default.map_httpcore_exceptions():
            raise httpcore.ConnectTimeout("slow")
    assert isinstance(info.value.__cause__, httpcore.ConnectTimeout)
    with pytest.raises(httprs.RemoteProtocolError):
        with default.map_httpcore_exceptions():
            raise httpcore.RemoteProtocolError("bad")
    with pytest.raises(KeyError):  # not httpcore's: untouched
        with default.map_httpcore_exceptions():
            raise KeyError("k")

    class Failing:
        def __iter__(self):
            yield b"a"
            raise httpcore.ReadError("reset")

    stream = default.ResponseStream(Failing())
    chunks = []
    with pytest.raises(httprs.ReadError, match="reset"):
        for chunk in stream:
            chunks.append(chunk)
    assert chunks == [b"a"]


def test_private_helpers_code_imports_from_httpx_modules():
    """Names found missing by differential testing (session 30), each used by public code:
    an SDK extends `_models.SENSITIVE_HEADERS` to hide its API key in reprs, test files
    derived from httpx's import `HTTPCORE_EXC_MAP`, ..."""
    import httprs as lib
    from httprs import _client as client
    from httprs import _content as content
    from httprs import _models as models
    from httprs import _multipart as multipart
    from httprs._httpx_transports import default

    assert models._parse_content_type_charset("text/plain; charset=latin-1") == "latin-1"
    assert models._parse_content_type_charset("text/plain") is None
    assert models._is_known_encoding("utf-8") and not models._is_known_encoding("nope")
    http, https = lib.URL("http://a.example/"), lib.URL("https://a.example/")
    assert client._same_origin(http, lib.URL("http://a.example:80/x"))
    assert not client._same_origin(http, https)
    assert client._is_https_redirect(http, https)
    assert client._port_or_default(https) == 443 and client._port_or_default(http) == 80
    headers, stream = content.encode_text("hé")
    assert headers == {"Content-Length": "3", "Content-Type": "text/plain; charset=utf-8"}
    assert b"".join(stream) == "hé".encode()
    assert content.encode_html("<p>")[0]["Content-Type"] == "text/html; charset=utf-8"
    assert multipart._format_form_param("name", 'a"b') == b'name="a%22b"'
    assert multipart._guess_content_type("x.png") == "image/png"
    assert isinstance(default.HTTPCORE_EXC_MAP, dict)
    response = lib.Response(200)
    response._prepare({"Content-Length": "0"})
    assert response.headers["content-length"] == "0"

    models.SENSITIVE_HEADERS.add("x-api-key")
    try:
        assert "[secure]" in repr(lib.Headers({"X-API-Key": "s3cret"}))
    finally:
        models.SENSITIVE_HEADERS.discard("x-api-key")
    assert "s3cret" in repr(lib.Headers({"X-API-Key": "s3cret"}))


def test_headers_and_query_params_are_not_reversible():
    import httprs

    for obj in (httprs.Headers({"a": "b"}), httprs.QueryParams("a=b")):
        with pytest.raises(TypeError, match="not reversible"):
            reversed(obj)


def test_patched_user_agent_constant(server):
    """Code changes httpx's default User-Agent by patching `httpx._client.USER_AGENT`."""
    code = f"""
        import httprs
        httprs.install(["httpx"])
        import httpx, httpx._client
        httpx._client.USER_AGENT = "Mozilla/5.0 (test)"
        with httpx.Client() as client:
            print(client.get("{server.url}/echo").json()["headers"])
        httpx._client.USER_AGENT = "Mozilla/5.0 (again)"
        with httpx.Client() as client:
            print(client.get("{server.url}/echo").json()["headers"])
    """
    out = run_py(code)
    first, second = out.strip().splitlines()
    assert "['user-agent', 'Mozilla/5.0 (test)']" in first
    assert "['user-agent', 'Mozilla/5.0 (again)']" in second


@pytest.mark.parametrize("top", ["httpx", "httpx2"])
def test_patched_transport_classes_of_the_client_module(top, server):
    """Tests of real libraries make every new client send through a mock by patching the
    transport classes in `httpx._client` (`monkeypatch.setattr("httpx._client.HTTPTransport",
    lambda **kw: httpx.MockTransport(handler))`, `mocker.patch(...AsyncHTTPTransport)`), as
    httpx builds a client's transports, proxy mounts included, from those names."""
    code = f"""
        import asyncio, os, httprs
        httprs.install(["{top}"])
        import {top} as httpx, {top}._client as client_module, trio
        from unittest import mock

        made = []
        def factory(**kwargs):
            made.append(kwargs)
            return httpx.MockTransport(lambda request: httpx.Response(200, text="mocked"))

        real, areal = client_module.HTTPTransport, client_module.AsyncHTTPTransport
        assert real is httpx.HTTPTransport and areal is httpx.AsyncHTTPTransport
        with mock.patch.object(client_module, "HTTPTransport", side_effect=factory):
            with httpx.Client() as c:
                assert c.get("{server.url}").text == "mocked"
            with httpx.Client(proxy="http://127.0.0.1:9") as c:
                assert c.get("http://example.invalid/").text == "mocked"
            with mock.patch.dict(os.environ, {{"HTTP_PROXY": "http://127.0.0.1:9"}}):
                with httpx.Client() as c:
                    assert c.get("http://example.invalid/").text == "mocked"
        assert len(made) == 5, made
        assert made[0]["http2"] is False and "proxy" not in made[0]
        assert [str(kw["proxy"].url) for kw in made[1:] if "proxy" in kw] == [
            "http://127.0.0.1:9", "http://127.0.0.1:9"
        ]

        async def use_async_clients():
            async with httpx.AsyncClient() as c:
                assert (await c.get("{server.url}")).text == "mocked"
            async with httpx.AsyncClient(proxy="http://127.0.0.1:9") as c:
                assert (await c.get("http://example.invalid/")).text == "mocked"
        for run in (lambda main: asyncio.run(main()), trio.run):
            made.clear()
            with mock.patch(f"{top}._client.AsyncHTTPTransport", side_effect=factory):
                run(use_async_clients)
            assert len(made) == 3 and str(made[-1]["proxy"].url) == "http://127.0.0.1:9"

        # Unpatched again: the real transports, which reach the server.
        with httpx.Client() as c:
            assert type(c._transport) is real
            assert c.get("{server.url}").text == "Hello, world!"
        async def real_async():
            async with httpx.AsyncClient() as c:
                assert type(c._transport) is areal
                return (await c.get("{server.url}")).text
        assert asyncio.run(real_async()) == trio.run(real_async) == "Hello, world!"
        print("ok")
    """
    assert run_py(code).split() == ["ok"]


def test_respx_httpx_mocker_after_the_switch():
    """respx's `using="httpx"` mocker patches `httpx._client.Client._transport_for_url`."""
    code = """
        import asyncio, httprs
        httprs.install(["httpx"])
        import httpx, respx
        with respx.mock(using="httpx") as router:
            route = router.get("http://api.example/x").respond(json={"a": 1})
            assert httpx.get("http://api.example/x").json() == {"a": 1}
            async def main():
                async with httpx.AsyncClient() as client:
                    return (await client.get("http://api.example/x")).json()
            assert asyncio.run(main()) == {"a": 1}
            assert route.call_count == 2
        print("ok")
    """
    assert run_py(code).split() == ["ok"]
