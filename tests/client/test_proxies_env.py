"""Environment proxies (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY) and proxy= mounts.

The network transports are replaced by a recorder, so nothing connects anywhere.
"""

import importlib
import os

import pytest

PROXY_VARS = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "REQUEST_METHOD",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


class Recorder:
    """Stands in for HTTPTransport / AsyncHTTPTransport: remembers its arguments."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def handle_request(self, request):
        raise AssertionError("no network in these tests")

    def close(self):
        pass


@pytest.fixture
def fake_transports(hx, monkeypatch):
    # Both build a client's transports from the names in their `_client` module.
    target = importlib.import_module(hx.__name__ + "._client")
    monkeypatch.setattr(target, "HTTPTransport", Recorder)
    monkeypatch.setattr(target, "AsyncHTTPTransport", Recorder)


def proxy_for(client, url, hx):
    transport = client._transport_for_url(hx.URL(url))
    if transport is client._transport:
        return None
    return str(transport.kwargs["proxy"].url)


@pytest.mark.parametrize(
    ("env", "url", "expected"),
    [
        ({}, "http://example.com", None),
        ({"HTTP_PROXY": "http://127.0.0.1:1"}, "http://example.com", "http://127.0.0.1:1"),
        ({"HTTP_PROXY": "http://127.0.0.1:1"}, "https://example.com", None),
        ({"https_proxy": "http://127.0.0.1:2"}, "https://example.com", "http://127.0.0.1:2"),
        ({"ALL_PROXY": "http://127.0.0.1:3"}, "https://example.com", "http://127.0.0.1:3"),
        ({"ALL_PROXY": "127.0.0.1:3"}, "http://example.com", "http://127.0.0.1:3"),
        (
            {"ALL_PROXY": "http://127.0.0.1:3", "HTTP_PROXY": "http://127.0.0.1:1"},
            "http://example.com",
            "http://127.0.0.1:1",
        ),
        ({"ALL_PROXY": "http://p:3", "NO_PROXY": "example.com"}, "http://example.com", None),
        (
            {"ALL_PROXY": "http://p:3", "NO_PROXY": "example.com"},
            "http://www.example.com",
            None,
        ),
        (
            {"ALL_PROXY": "http://p:3", "NO_PROXY": "example.com"},
            "http://wwwexample.com",
            "http://p:3",
        ),
        (
            {"ALL_PROXY": "http://p:3", "NO_PROXY": ".example.com"},
            "http://example.com",
            "http://p:3",
        ),
        (
            {"ALL_PROXY": "http://p:3", "NO_PROXY": ".example.com"},
            "http://www.example.com",
            None,
        ),
        ({"ALL_PROXY": "http://p:3", "NO_PROXY": "*"}, "http://anything.org", None),
        ({"ALL_PROXY": "http://p:3", "NO_PROXY": "a.org, *"}, "http://b.org", None),
        ({"ALL_PROXY": "http://p:3", "NO_PROXY": "127.0.0.1"}, "http://127.0.0.1", None),
        ({"ALL_PROXY": "http://p:3", "NO_PROXY": "::1"}, "http://[::1]:8000", None),
        ({"ALL_PROXY": "http://p:3", "NO_PROXY": "localhost"}, "http://localhost/", None),
        (
            {"ALL_PROXY": "http://p:3", "NO_PROXY": "http://internal.org"},
            "http://internal.org",
            None,
        ),
        (
            {"ALL_PROXY": "http://p:3", "NO_PROXY": "http://internal.org"},
            "https://internal.org",
            "http://p:3",
        ),
    ],
)
def test_env_proxies(hx, fake_transports, monkeypatch, env, url, expected):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    client = hx.Client()
    assert proxy_for(client, url, hx) == expected


def test_trust_env_false_ignores_env(hx, fake_transports, monkeypatch):
    monkeypatch.setenv("ALL_PROXY", "http://p:3")
    client = hx.Client(trust_env=False)
    assert proxy_for(client, "http://example.com", hx) is None
    assert client._transport.kwargs["trust_env"] is False


def test_explicit_transport_ignores_env(hx, monkeypatch):
    monkeypatch.setenv("ALL_PROXY", "http://p:3")
    transport = hx.MockTransport(lambda r: hx.Response(200))
    client = hx.Client(transport=transport)
    assert client._transport_for_url(hx.URL("http://example.com")) is transport


def test_proxy_argument(hx, fake_transports, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://env:1")
    client = hx.Client(proxy="http://explicit:8080", verify=False, http1=True)
    assert proxy_for(client, "http://example.com", hx) == "http://explicit:8080"
    assert proxy_for(client, "https://example.com", hx) == "http://explicit:8080"
    proxy_transport = client._transport_for_url(hx.URL("http://example.com"))
    assert proxy_transport.kwargs["verify"] is False
    assert isinstance(proxy_transport.kwargs["proxy"], hx.Proxy)
    client = hx.Client(proxy=hx.Proxy("http://p:1", auth=("u", "p")))
    assert client._transport_for_url(hx.URL("http://x")).kwargs["proxy"].auth == ("u", "p")


def test_default_transport_arguments(hx, fake_transports):
    limits = hx.Limits(max_connections=5)
    client = hx.Client(verify=False, cert="/tmp/cert.pem", limits=limits, trust_env=False)
    kwargs = client._transport.kwargs
    assert kwargs["verify"] is False
    assert kwargs["cert"] == "/tmp/cert.pem"
    assert kwargs["limits"] == limits
    assert kwargs["trust_env"] is False
    assert kwargs["http1"] is True
    client = hx.AsyncClient(trust_env=False)
    assert client._transport.kwargs["limits"] == hx.Limits(
        max_connections=100, max_keepalive_connections=20
    )


def test_env_proxies_helper_matches_httpx(monkeypatch):
    from httpx._utils import get_environment_proxies as httpx_env

    from httprs._utils import get_environment_proxies as httprs_env

    cases = [
        {"HTTP_PROXY": "http://a:1", "HTTPS_PROXY": "b:2", "ALL_PROXY": "socks5://c:3"},
        {"NO_PROXY": "example.com,.internal, 10.0.0.0/8 ,::1,localhost,http://x.org"},
        {"ALL_PROXY": "http://p", "NO_PROXY": "a, *"},
        {"FTP_PROXY": "http://ftp:1"},
    ]
    for env in cases:
        for name in PROXY_VARS:
            monkeypatch.delenv(name, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        assert httprs_env() == httpx_env()


@pytest.mark.httprs_only
def test_no_proxy_ipv6_zone_entries_as_httpx2(monkeypatch):
    """NO_PROXY's IPv6 entries with a zone id are written as httpx2 2.17 writes them (the
    zone after "%25"), so they match the URLs they name (httpx 0.28.1's
    `all://[fe80::1%en0]` is no valid URL for the zone)."""
    from httpx2._utils import get_environment_proxies as httpx2_env

    import httprs
    from httprs._utils import get_environment_proxies as httprs_env

    monkeypatch.setenv("ALL_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "fe80::1%en0, fe80::3%25en1, ::1, fd00::/8")
    assert httprs_env() == httpx2_env()
    assert httprs_env()["all://[fe80::1%25en0]"] is None
    with httprs.Client() as client:
        for url, direct in [
            ("http://[fe80::1%25en0]:8080/", True),
            ("http://[fe80::1%25en1]/", False),
            ("http://[fe80::3%2525en1]/", True),
            ("http://[fe80::3]/", False),
        ]:
            transport = client._transport_for_url(httprs.URL(url))
            assert (transport is client._transport) == direct, url


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:2"},
        {"HTTPS_PROXY": "http://upper:1", "https_proxy": ""},
        {"Http_Proxy": "http://mixed:1", "FTP_PROXY": "http://ftp:2", "NO_PROXY": "a,b"},
        {"HTTP_proxy": "http://suffix:1", "ALL_PROXY": ""},
        {"HTTP_PROXY": "http://cgi:1", "HTTPS_PROXY": "http://s:2", "REQUEST_METHOD": "GET"},
        {"http_proxy": "http://cgi-lower:1", "REQUEST_METHOD": "POST"},
        {"no_proxy": "caf\u00e9.example", "PROXY": "http://not-a-scheme:1", "_PROXY": "x"},
        {"HTTP_PROXI": "http://near:1", "http_pr0xy": "http://near:2", "Q_PROXY": "http://q:3"},
        {"caf\u00e9_proxy": "http://accent:1", "HTTPS_PROXY\u00e9": "http://after:2"},
    ],
)
def test_proxy_variables_match_urllib(monkeypatch, env):
    """httprs reads *_proxy variables without decoding the whole environment; the result
    is what urllib's getproxies() gives for the same environment."""
    import urllib.request

    from httprs._utils import _proxy_variables

    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name == "REQUEST_METHOD":
            monkeypatch.delenv(name)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert _proxy_variables() == urllib.request.getproxies_environment()


def test_patched_getproxies_is_honoured(monkeypatch):
    import urllib.request

    from httprs._utils import get_environment_proxies

    monkeypatch.setattr(urllib.request, "getproxies", lambda: {"https": "http://patched:3128"})
    assert get_environment_proxies() == {"https://": "http://patched:3128"}


def test_get_proxy_map(hx, monkeypatch):
    # httpx's private BaseClient._get_proxy_map (some libraries call it): the proxy given
    # as {"all://": Proxy}, else the environment's when allowed; __init__ asks it, so a
    # subclass's override decides the proxy mounts.
    monkeypatch.setenv("HTTP_PROXY", "http://env:8080")
    monkeypatch.setenv("NO_PROXY", "example.com")
    for cls in (hx.Client, hx.AsyncClient):
        client = cls()
        found = client._get_proxy_map(None, True)
        assert sorted(found) == ["all://*example.com", "http://"]
        assert found["all://*example.com"] is None
        assert isinstance(found["http://"], hx.Proxy)
        assert str(found["http://"].url) == "http://env:8080"
        assert client._get_proxy_map(None, False) == {}
        # Called unbound with self=None, as ansys-simai-core does.
        unbound = cls._get_proxy_map(None, None, True)
        assert {key: None if p is None else str(p.url) for key, p in unbound.items()} == {
            "all://*example.com": None,
            "http://": "http://env:8080",
        }
        for given in ("http://u:p@given:1", hx.URL("http://u:p@given:1")):
            ((key, proxy),) = client._get_proxy_map(given, True).items()
            assert (key, str(proxy.url), proxy.auth) == ("all://", "http://given:1", ("u", "p"))
        proxy = hx.Proxy("http://given:2")
        assert client._get_proxy_map(proxy, False) == {"all://": proxy}

        asked = []

        def override(self, proxy, allow_env_proxies, asked=asked):
            asked.append((proxy, allow_env_proxies))
            return {}

        sub = type("Sub", (cls,), {"_get_proxy_map": override})
        assert sub()._mounts == {}
        assert sub(proxy="http://p:3", trust_env=False)._mounts == {}
        sub(transport=hx.MockTransport(lambda request: hx.Response(200)))
        assert asked == [(None, True), ("http://p:3", False), (None, False)]


def test_environment_changes_between_clients_are_seen(hx, fake_transports, monkeypatch):
    # Each Client() reads the environment as it is then (httprs skips the scan of an
    # unchanged one): set, changed, emptied, removed.
    assert proxy_for(hx.Client(), "http://example.com", hx) is None
    monkeypatch.setenv("HTTP_PROXY", "http://first:1")
    assert proxy_for(hx.Client(), "http://example.com", hx) == "http://first:1"
    assert proxy_for(hx.Client(), "http://example.com", hx) == "http://first:1"
    monkeypatch.setenv("HTTP_PROXY", "http://second:2")
    assert proxy_for(hx.AsyncClient(), "http://example.com", hx) == "http://second:2"
    monkeypatch.setenv("http_proxy", "")
    assert proxy_for(hx.Client(), "http://example.com", hx) is None
    monkeypatch.delenv("http_proxy")
    monkeypatch.delenv("HTTP_PROXY")
    assert proxy_for(hx.Client(), "http://example.com", hx) is None


def test_overridden_construction_steps_are_called(hx, fake_transports):
    # A subclass's _init_transport, and a class between the client's and BaseClient in
    # its MRO, run as httpx's __init__ calls them.
    base = importlib.import_module(hx.__name__ + "._client").BaseClient
    calls = []
    for cls in (hx.Client, hx.AsyncClient):

        class Sub(cls):
            def _init_transport(self, **kwargs):
                calls.append(("transport", kwargs["verify"], kwargs["transport"]))
                return super()._init_transport(**kwargs)

        client = Sub(verify=False, http2=True, proxy="http://p:1")
        assert calls == [("transport", False, None)]
        assert proxy_for(client, "http://example.com", hx) == "http://p:1"
        calls.clear()

        class Between(base):
            def __init__(self, **kwargs):
                calls.append(("between", kwargs["headers"]))
                super().__init__(**kwargs)

        class WithBetween(cls, Between):
            pass

        client = WithBetween(headers={"X-A": "1"})
        assert calls == [("between", {"X-A": "1"})]
        assert client.headers["X-A"] == "1"
        calls.clear()

        class HeadersSetter(cls):
            @cls.headers.setter
            def headers(self, headers):
                calls.append(("headers", headers))
                type(self).__mro__[1].headers.fset(self, headers)

        assert HeadersSetter(headers={"X-B": "2"}).headers["X-B"] == "2"
        assert calls == [("headers", {"X-B": "2"})]
        calls.clear()


def test_construction_steps_set_on_the_instance_are_called(hx, fake_transports):
    # A subclass's __init__ that sets a step on the instance before calling the client's
    # __init__: httpx looks the step up on the instance, so it runs. A subclass's own
    # __setattr__ sees the assignments httpx makes (`headers`, whose setter then assigns
    # `_headers`).
    calls = []
    for cls in (hx.Client, hx.AsyncClient):
        cls()  # the class is known stock by now
        calls.clear()

        class Sub(cls):
            def __init__(self, **kwargs):
                def proxy_map(proxy, allow_env_proxies):
                    calls.append("proxy map")
                    return {"all://": None}

                self._get_proxy_map = proxy_map
                super().__init__(**kwargs)

        client = Sub()
        assert calls == ["proxy map"]
        assert [pattern.pattern for pattern in client._mounts] == ["all://"]
        calls.clear()

        class Recording(cls):
            def __setattr__(self, name, value):
                calls.append(name)
                super().__setattr__(name, value)

        assert Recording(headers={"X-A": "1"}).headers["X-A"] == "1"
        assert calls.index("headers") < calls.index("_headers")


def test_construction_steps_patched_after_use_are_called(hx, fake_transports):
    # A class patched after clients were made (httprs remembers a stock class until it
    # changes): the next client calls the patch, and the original once restored.
    calls = []
    base = importlib.import_module(hx.__name__ + "._client").BaseClient
    original_init = base.__init__

    def init(self, **kwargs):
        calls.append("base")
        original_init(self, **kwargs)

    for cls in (hx.Client, hx.AsyncClient):
        cls()
        original = cls.__dict__["_init_transport"]

        def patched(self, *args, original=original, **kwargs):
            calls.append("transport")
            return original(self, *args, **kwargs)

        try:
            cls._init_transport = patched
            cls()
        finally:
            cls._init_transport = original
        cls()
        try:
            base.__init__ = init
            cls()
        finally:
            base.__init__ = original_init
        cls()
        assert calls == ["transport", "base"]
        calls.clear()
