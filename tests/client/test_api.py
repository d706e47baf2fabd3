import importlib
import inspect

import httpx
import pytest

import httprs


class AnsweringTransport:
    """Replaces the network transport: answers every request from the handler."""

    module = None
    seen = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        AnsweringTransport.seen.append(kwargs)

    def handle_request(self, request):
        hx = AnsweringTransport.module
        request.read()
        return hx.Response(
            200,
            json={
                "method": request.method,
                "url": str(request.url),
                "body": request.content.decode(),
                "cookie": request.headers.get("cookie"),
                "auth": request.headers.get("authorization"),
                "timeout": request.extensions["timeout"],
            },
        )

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *args):
        pass


@pytest.fixture
def fake_network(hx, monkeypatch):
    # Both build a client's transports from the names in their `_client` module.
    target = importlib.import_module(hx.__name__ + "._client")
    monkeypatch.setattr(target, "HTTPTransport", AnsweringTransport)
    AnsweringTransport.module = hx
    AnsweringTransport.seen = []


@pytest.mark.parametrize("verb", ["get", "options", "head", "delete"])
def test_bodyless_functions(hx, fake_network, verb):
    response = getattr(hx, verb)("http://example.org/x", params={"a": "1"})
    assert response.status_code == 200
    assert response.request.method == verb.upper()
    if verb != "head":
        assert response.json()["url"] == "http://example.org/x?a=1"


@pytest.mark.parametrize("verb", ["post", "put", "patch"])
def test_body_functions(hx, fake_network, verb):
    response = getattr(hx, verb)(
        "http://example.org/", json={"x": 1}, auth=("u", "p"), timeout=2.0
    )
    data = response.json()
    assert data["method"] == verb.upper()
    assert data["body"] == '{"x":1}'
    assert data["auth"] == "Basic dTpw"
    assert data["timeout"]["read"] == 2.0


def test_request_function(hx, fake_network):
    response = hx.request(
        "PUT", "http://example.org/", content=b"raw", cookies={"c": "1"}, verify=False
    )
    assert response.json()["body"] == "raw"
    assert response.json()["cookie"] == "c=1"
    assert AnsweringTransport.seen[-1]["verify"] is False


def test_stream_function(hx, fake_network):
    with hx.stream("GET", "http://example.org/s") as response:
        body = response.read()
    assert b"/s" in body
    assert response.is_closed


def test_follow_redirects_default_off(hx, monkeypatch, fake_network):
    def redirect(self, request):
        return AnsweringTransport.module.Response(302, headers={"Location": "/next"})

    monkeypatch.setattr(AnsweringTransport, "handle_request", redirect)
    response = hx.get("http://example.org/")
    assert response.status_code == 302
    assert response.next_request.url == "http://example.org/next"


# -- signatures and the export list -------------------------------------------------------


def describe(func):
    params = []
    for p in inspect.signature(func).parameters.values():
        default = p.default
        if isinstance(default, (type(None), bool, int, str, float)):
            shown = repr(default)
        else:
            shown = type(default).__name__
        params.append((p.name, p.kind, shown))
    return params


API_FUNCTIONS = ["request", "stream", "get", "options", "head", "post", "put", "patch", "delete"]
CLIENT_METHODS = [
    "__init__",
    "request",
    "stream",
    "send",
    "build_request",
    "get",
    "options",
    "head",
    "post",
    "put",
    "patch",
    "delete",
]


@pytest.mark.parametrize("name", API_FUNCTIONS)
def test_api_signatures(name):
    assert describe(getattr(httprs, name)) == describe(getattr(httpx, name))


@pytest.mark.parametrize("cls", ["Client", "AsyncClient"])
@pytest.mark.parametrize("method", CLIENT_METHODS)
def test_client_signatures(cls, method):
    ours = getattr(getattr(httprs, cls), method)
    theirs = getattr(getattr(httpx, cls), method)
    assert describe(ours) == describe(theirs)
    if method not in ("__init__", "build_request", "stream"):
        is_async = cls == "AsyncClient"
        assert inspect.iscoroutinefunction(ours) == is_async


@pytest.mark.parametrize(
    ("cls", "method"),
    [
        ("WSGITransport", "__init__"),
        ("ASGITransport", "__init__"),
        ("MockTransport", "__init__"),
        ("BasicAuth", "__init__"),
        ("DigestAuth", "__init__"),
        ("NetRCAuth", "__init__"),
    ],
)
def test_other_signatures(cls, method):
    ours = getattr(getattr(httprs, cls), method)
    theirs = getattr(getattr(httpx, cls), method)
    assert describe(ours) == describe(theirs)


def test_export_list_matches_httpx():
    assert len(httprs.__all__) == len(set(httprs.__all__))  # no duplicates
    assert set(httprs.__all__) >= set(httpx.__all__)
    # Beyond httpx's names: httpx2 2.17.0's additions and the switch, nothing else.
    assert set(httprs.__all__) - set(httpx.__all__) <= {
        "alias_httpx",
        "EventSource",
        "FunctionAuth",
        "HTTPXDeprecationWarning",
        "install",
        "Origin",
        "query",
        "ServerSentEvent",
        "SSEError",
        "websocket",
    }
    for name in httprs.__all__:
        assert getattr(httprs, name) is not None


def test_main_is_the_command_line(capsys):
    # As httpx.main with httpx's [cli] extra: the click command of the command-line
    # client (tests/test_cli.py covers it; without the extra it explains and exits 1).
    with pytest.raises(SystemExit) as info:
        httprs.main(["--help"])
    assert info.value.code == 0
    assert "A next generation HTTP client." in capsys.readouterr().out


def test_proxy_and_trust_env_arguments(hx, fake_network, monkeypatch):
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD"]:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://env-proxy:1")
    hx.get("http://example.org/", proxy="http://explicit:2")
    proxies = [str(kw["proxy"].url) for kw in AnsweringTransport.seen if "proxy" in kw]
    assert proxies == ["http://explicit:2"]
    AnsweringTransport.seen = []
    hx.get("http://example.org/")
    proxies = [str(kw["proxy"].url) for kw in AnsweringTransport.seen if "proxy" in kw]
    assert proxies == ["http://env-proxy:1"]
    AnsweringTransport.seen = []
    hx.get("http://example.org/", trust_env=False)
    assert all("proxy" not in kw for kw in AnsweringTransport.seen)
    assert AnsweringTransport.seen[0]["trust_env"] is False
