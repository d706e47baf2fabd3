import logging

import pytest


def echo(hx):
    """A MockTransport handler that describes the request it got."""

    def handler(request):
        return hx.Response(
            200,
            json={
                "method": request.method,
                "url": str(request.url),
                "headers": [[k.decode(), v.decode()] for k, v in request.headers.raw],
                "body": request.content.decode("latin-1"),
                "timeout": request.extensions.get("timeout"),
            },
        )

    return handler


def make_client(hx, handler=None, **kwargs):
    return hx.Client(transport=hx.MockTransport(handler or echo(hx)), **kwargs)


def test_get_default_headers(hx):
    with make_client(hx) as client:
        response = client.get("http://example.org/path?a=1")
    data = response.json()
    assert response.status_code == 200
    assert data["method"] == "GET"
    assert data["url"] == "http://example.org/path?a=1"
    names = [k for k, _ in data["headers"]]
    assert names == ["Host", "Accept", "Accept-Encoding", "Connection", "User-Agent"]
    headers = dict(data["headers"])
    assert headers["Host"] == "example.org"
    assert headers["Accept"] == "*/*"
    assert headers["Connection"] == "keep-alive"
    assert "gzip" in headers["Accept-Encoding"]
    assert "deflate" in headers["Accept-Encoding"]
    assert data["timeout"] == {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}
    assert data["body"] == ""


def test_client_header_defaults_and_user_agent(hx):
    client = make_client(hx)
    assert client.headers["accept"] == "*/*"
    assert client.headers["user-agent"].startswith("python-")
    client = make_client(hx, headers={"User-Agent": "custom", "X-A": "1"})
    assert client.headers["user-agent"] == "custom"
    data = client.get("http://example.org").json()
    headers = dict(data["headers"])
    assert headers["User-Agent"] == "custom"
    assert headers["X-A"] == "1"


@pytest.mark.parametrize("method", ["get", "options", "head", "delete"])
def test_bodyless_verbs(hx, method):
    with make_client(hx) as client:
        response = getattr(client, method)("http://example.org/")
    assert response.request.method == method.upper()
    if method != "head":
        assert response.json()["method"] == method.upper()


@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_body_verbs(hx, method):
    with make_client(hx) as client:
        response = getattr(client, method)("http://example.org/", content=b"hello")
        as_json = getattr(client, method)("http://example.org/", json={"a": 1})
        as_form = getattr(client, method)("http://example.org/", data={"a": "1"})
    assert response.json()["body"] == "hello"
    assert dict(response.json()["headers"])["Content-Length"] == "5"
    assert as_json.json()["body"] == '{"a":1}'
    assert as_form.json()["body"] == "a=1"
    assert dict(as_form.json()["headers"])["Content-Type"] == ("application/x-www-form-urlencoded")


def test_request_method(hx):
    with make_client(hx) as client:
        response = client.request("PURGE", "http://example.org/x", content=b"z")
    assert response.json()["method"] == "PURGE"
    assert response.json()["body"] == "z"


@pytest.mark.parametrize(
    ("base", "url", "expected"),
    [
        ("https://example.org/api", "/users", "https://example.org/api/users"),
        ("https://example.org/api/", "users", "https://example.org/api/users"),
        ("https://example.org", "/users", "https://example.org/users"),
        ("https://example.org/api", "", "https://example.org/api/"),
        ("https://example.org/api", "http://other.org/x", "http://other.org/x"),
        ("https://example.org/api", "/a?b=c", "https://example.org/api/a?b=c"),
    ],
)
def test_base_url_merge(hx, base, url, expected):
    client = make_client(hx, base_url=base)
    assert str(client.build_request("GET", url).url) == expected


def test_base_url_property(hx):
    client = make_client(hx, base_url="https://example.org/api")
    assert client.base_url == hx.URL("https://example.org/api/")
    client.base_url = "http://x.org"
    assert client.base_url.raw_path == b"/"
    client.base_url = "http://x.org/a/b"
    assert str(client.base_url) == "http://x.org/a/b/"


def test_params_merge(hx):
    client = make_client(hx, params={"a": "1", "b": "2"})
    request = client.build_request("GET", "http://example.org/?c=3", params={"b": "x"})
    # httpx 0.28: params= replaces the URL's own query string.
    assert request.url.params == hx.QueryParams("a=1&b=x")
    request = client.build_request("GET", "http://example.org/?c=3")
    assert request.url.params == hx.QueryParams("a=1&b=2")
    assert client.params == hx.QueryParams({"a": "1", "b": "2"})
    client.params = {"z": "9"}
    assert str(client.build_request("GET", "http://e.org/").url) == "http://e.org/?z=9"


def test_headers_merge_and_override(hx):
    client = make_client(hx, headers={"X-Client": "c", "X-Both": "client"})
    request = client.build_request(
        "GET", "http://example.org/", headers={"X-Both": "request", "X-Req": "r"}
    )
    assert request.headers["x-client"] == "c"
    assert request.headers["x-both"] == "request"
    assert request.headers["x-req"] == "r"
    # Mutating the request must not touch the client, and vice versa.
    request.headers["X-New"] = "1"
    assert "x-new" not in client.headers
    plain = client.build_request("GET", "http://example.org/")
    plain.headers["X-Other"] = "1"
    assert "x-other" not in client.headers
    client.headers["X-Later"] = "yes"
    assert client.build_request("GET", "http://example.org/").headers["x-later"] == "yes"


def test_cookies_from_client_and_response(hx):
    def handler(request):
        if request.url.path == "/set":
            return hx.Response(200, headers={"Set-Cookie": "session=abc; Path=/"})
        return hx.Response(200, json={"cookie": request.headers.get("cookie")})

    client = make_client(hx, handler, cookies={"static": "1"})
    assert client.get("http://example.org/").json()["cookie"] == "static=1"
    client.get("http://example.org/set")
    assert client.cookies["session"] == "abc"
    assert client.get("http://example.org/").json()["cookie"] == "static=1; session=abc"


def test_per_request_cookies_deprecated(hx):
    client = make_client(hx, lambda request: hx.Response(200, text=request.headers["cookie"]))
    with pytest.warns(DeprecationWarning):
        response = client.get("http://example.org/", cookies={"a": "b"})
    assert response.text == "a=b"
    assert "a" not in client.cookies


def _timeout_subclass(hx):
    class Custom(hx.Timeout):
        def as_dict(self):
            return dict.fromkeys(("connect", "read", "write", "pool"), 7.0)

    return Custom


def _all(value):
    return dict.fromkeys(("connect", "read", "write", "pool"), value)


def test_client_timeout_is_asked_as_httpx_asks_it(hx):
    # build_request asks the client's timeout itself (`self.timeout.as_dict()`), while
    # _set_timeout (send() of a request made elsewhere) asks a Timeout made of it
    # (`Timeout(self.timeout).as_dict()`): a Timeout subclass's as_dict is called only by
    # the first, and a property giving a number works only in the second.
    custom = _timeout_subclass(hx)
    url = "http://example.org/"
    client = make_client(hx)
    client._timeout = custom(2.0)
    assert client.get(url).json()["timeout"] == _all(7.0)
    assert client.send(hx.Request("GET", url)).json()["timeout"] == _all(2.0)
    for value, via_get in ((custom(3.0), _all(7.0)), (3.0, None)):
        timeout = property(lambda self, value=value: value)
        sub = type("Sub", (hx.Client,), {"timeout": timeout})
        client = sub(transport=hx.MockTransport(echo(hx)))
        if via_get is None:
            with pytest.raises(AttributeError, match="'float' object has no attribute 'as_dict'"):
                client.get(url)
        else:
            assert client.get(url).json()["timeout"] == via_get
        assert client.send(hx.Request("GET", url)).json()["timeout"] == _all(3.0)


def test_timeout_extension(hx):
    client = make_client(hx, timeout=hx.Timeout(3.0, connect=1.0))
    data = client.get("http://example.org/").json()
    assert data["timeout"] == {"connect": 1.0, "read": 3.0, "write": 3.0, "pool": 3.0}
    data = client.get("http://example.org/", timeout=None).json()
    assert data["timeout"] == {"connect": None, "read": None, "write": None, "pool": None}
    data = client.get("http://example.org/", timeout=hx.USE_CLIENT_DEFAULT).json()
    assert data["timeout"]["connect"] == 1.0
    client.timeout = 7
    assert client.timeout == hx.Timeout(7)
    assert client.get("http://example.org/").json()["timeout"]["read"] == 7
    request = client.build_request("GET", "http://e.org/", extensions={"timeout": {"x": 1}})
    assert request.extensions == {"timeout": {"x": 1}}
    request = client.build_request("GET", "http://e.org/", extensions={"other": 1})
    assert request.extensions["other"] == 1
    assert request.extensions["timeout"]["read"] == 7


def test_send_sets_timeout_on_bare_request(hx):
    client = make_client(hx, timeout=2.0)
    response = client.send(hx.Request("GET", "http://example.org/"))
    assert response.json()["timeout"]["pool"] == 2.0


def test_response_attributes(hx):
    client = make_client(hx, default_encoding="latin-1")
    response = client.get("http://example.org/")
    assert response.request.url == "http://example.org/"
    assert response.default_encoding == "latin-1"
    assert response.history == []
    assert response.next_request is None
    assert response.is_closed
    assert response.http_version == "HTTP/1.1"


def test_elapsed_after_stream_read(hx):
    def handler(request):
        return hx.Response(200, content=iter([b"a", b"b"]))

    client = make_client(hx, handler)
    with client.stream("GET", "http://example.org/") as response:
        assert not response.is_closed
        with pytest.raises(RuntimeError):
            response.elapsed  # noqa: B018
        assert response.read() == b"ab"
    assert response.is_closed
    assert response.elapsed.total_seconds() >= 0
    response = client.get("http://example.org/")
    assert response.content == b"ab"
    assert response.elapsed.total_seconds() >= 0


def test_stream_closes_response(hx):
    chunks = iter([b"x" * 10, b"y" * 10])
    client = make_client(hx, lambda request: hx.Response(200, content=chunks))
    with client.stream("GET", "http://example.org/") as response:
        first = next(response.iter_bytes())
        assert first
    assert response.is_closed
    with pytest.raises(hx.StreamConsumed):
        response.read()


def test_send_stream_true(hx):
    client = make_client(hx, lambda request: hx.Response(200, content=iter([b"abc"])))
    response = client.send(client.build_request("GET", "http://e.org/"), stream=True)
    assert not response.is_closed
    assert response.read() == b"abc"
    response.close()


def test_closed_and_reopen_errors(hx):
    client = make_client(hx)
    assert not client.is_closed
    client.get("http://example.org/")
    with pytest.raises(RuntimeError, match="Cannot open a client instance more than once."):
        with client:
            pass
    client.close()
    assert client.is_closed
    with pytest.raises(
        RuntimeError, match="Cannot send a request, as the client has been closed."
    ):
        client.get("http://example.org/")
    with pytest.raises(
        RuntimeError, match="Cannot reopen a client instance, once it has been closed."
    ):
        with client:
            pass
    client.close()  # idempotent


def test_context_manager_closes_transport(hx):
    events = []

    class Transport(hx.BaseTransport):
        def handle_request(self, request):
            return hx.Response(204)

        def __enter__(self):
            events.append("enter")
            return self

        def __exit__(self, *args):
            events.append("exit")

        def close(self):
            events.append("close")

    client = hx.Client(transport=Transport())
    with client:
        assert client.get("http://e.org/").status_code == 204
    assert events == ["enter", "exit"]
    assert client.is_closed
    client2 = hx.Client(transport=Transport())
    client2.close()
    client2.close()
    assert events == ["enter", "exit", "close"]


def test_async_stream_in_sync_client(hx):
    async def body():
        yield b"x"

    client = make_client(hx)
    with pytest.raises(RuntimeError, match="Attempted to send an async request"):
        client.post("http://example.org/", content=body())


def test_invalid_auth_argument(hx):
    with pytest.raises(TypeError, match='Invalid "auth" argument'):
        hx.Client(auth=123)
    client = make_client(hx)
    with pytest.raises(TypeError, match='Invalid "auth" argument'):
        client.get("http://example.org/", auth=object())


def test_transport_error_gets_request(hx):
    def handler(request):
        raise hx.ConnectError("boom")

    client = make_client(hx, handler)
    with pytest.raises(hx.ConnectError) as info:
        client.get("http://example.org/fail")
    assert info.value.request.url == "http://example.org/fail"


def test_logging_info_line(hx, caplog):
    caplog.set_level(logging.INFO, logger="httpx")
    client = make_client(hx, lambda request: hx.Response(404))
    client.get("http://example.org/log?q=1")
    records = [r for r in caplog.records if r.name == "httpx"]
    assert [r.getMessage() for r in records] == [
        'HTTP Request: GET http://example.org/log?q=1 "HTTP/1.1 404 Not Found"'
    ]
    assert records[0].levelno == logging.INFO


def test_client_properties(hx):
    hooks = {"request": [print]}
    client = make_client(hx, event_hooks=hooks, follow_redirects=True, max_redirects=3)
    assert client.event_hooks == {"request": [print], "response": []}
    assert client.event_hooks["request"] is not hooks["request"]
    client.event_hooks = {"response": [print]}
    assert client.event_hooks == {"request": [], "response": [print]}
    assert client.follow_redirects is True
    assert client.max_redirects == 3
    assert client.trust_env is True
    assert client.auth is None
    client.auth = ("u", "p")
    assert isinstance(client.auth, hx.BasicAuth)
    assert isinstance(client.cookies, hx.Cookies)
    client.cookies = {"a": "b"}
    assert client.cookies["a"] == "b"
    assert isinstance(client.headers, hx.Headers)
    client.headers = {"X": "1"}
    assert client.headers["x"] == "1"
    assert client.headers["accept"] == "*/*"


def test_use_client_default_repr(hx):
    assert type(hx.USE_CLIENT_DEFAULT).__name__ == "UseClientDefault"


def test_relative_url_without_base_fails(hx):
    client = make_client(hx)
    request = client.build_request("GET", "/relative")
    assert request.url.is_relative_url


def test_default_encoding_callable(hx):
    client = make_client(
        hx,
        lambda request: hx.Response(200, content="é".encode("latin-1")),
        default_encoding=lambda content: "latin-1",
    )
    assert client.get("http://example.org/").text == "é"


def test_subclass_send_override(hx):
    seen = []

    class MyClient(hx.Client):
        def send(self, request, **kwargs):
            seen.append(request.url.path)
            return super().send(request, **kwargs)

    client = MyClient(transport=hx.MockTransport(echo(hx)))
    client.get("http://example.org/sub")
    assert seen == ["/sub"]


def test_http2_accepted():
    """http2=True builds clients and transports (HTTP/2 itself: tests/test_http2.py);
    unlike httpx it needs no 'h2' package."""
    import httprs

    httprs.Client(http2=True).close()
    httprs.Client(http1=False, http2=True).close()
    httprs.HTTPTransport(http2=True).close()
    # A custom transport is not affected.
    client = httprs.Client(http2=True, transport=httprs.MockTransport(lambda r: None))
    client.close()


def test_header_merge_multi_values(hx):
    client = make_client(hx, headers=[("X-Multi", "1"), ("X-Multi", "2"), ("X-Keep", "k")])
    request = client.build_request("GET", "http://e.org/", headers={"x-multi": "3"})
    assert request.headers.get_list("x-multi") == ["3"]
    assert request.headers["x-keep"] == "k"
    request = client.build_request(
        "GET", "http://e.org/", headers=[("X-New", "a"), ("X-New", "b")]
    )
    assert request.headers.get_list("x-multi") == ["1", "2"]
    assert request.headers.get_list("x-new") == ["a", "b"]


def test_params_forms(hx):
    client = make_client(hx, params=[("a", "1"), ("a", "2")])
    assert str(client.build_request("GET", "http://e.org/").url) == "http://e.org/?a=1&a=2"
    url = client.build_request("GET", "http://e.org/", params="b=3&c=").url
    assert str(url) == "http://e.org/?a=1&a=2&b=3&c="
    url = client.build_request("GET", "http://e.org/", params={"a": "x", "n": None}).url
    assert str(url) == "http://e.org/?a=x&n="


def test_cookie_domains_across_redirect(hx):
    def handler(request):
        if request.url.host == "first.org" and request.url.path == "/":
            return hx.Response(
                302,
                headers=[
                    ("Set-Cookie", "first=1; Path=/"),
                    ("Location", "http://second.org/landing"),
                ],
            )
        return hx.Response(200, json={"cookie": request.headers.get("cookie")})

    client = make_client(hx, handler, follow_redirects=True)
    response = client.get("http://first.org/")
    assert response.json()["cookie"] is None
    assert client.cookies.get("first", domain="first.org") == "1"
    assert client.get("http://first.org/other").json()["cookie"] == "first=1"


def test_send_with_options(hx):
    def handler(request):
        if request.url.path == "/start":
            return hx.Response(301, headers={"Location": "/end"})
        return hx.Response(200, text=request.headers.get("authorization", ""))

    client = make_client(hx, handler)
    request = client.build_request("GET", "http://e.org/start")
    response = client.send(request, follow_redirects=True, auth=("a", "b"))
    assert response.text == "Basic YTpi"
    assert response.history[0].status_code == 301
    assert client.send(request).status_code == 301


def test_build_request_does_not_touch_client_state(hx):
    client = make_client(hx)
    client.build_request("GET", "http://e.org/")
    # Building is not sending: the client can still be opened as a context manager.
    with client:
        pass
    assert client.is_closed


@pytest.mark.parametrize("name", ["Set-Cookie", "SET-COOKIE", "set-cookie"])
def test_set_cookie_header_name_case(hx, name):
    def handler(request):
        return hx.Response(200, headers=[(name, "k=v; Path=/"), ("X-Set-Cookies", "no")])

    client = make_client(hx, handler)
    client.get("http://example.org/")
    assert dict(client.cookies) == {"k": "v"}


def test_no_cookie_headers_leave_jar_alone(hx):
    client = make_client(
        hx, lambda request: hx.Response(200, headers={"Set-Cookie3": "a=b", "Cookie": "c=d"})
    )
    client.get("http://example.org/")
    assert dict(client.cookies) == {}


def test_elapsed_is_recorded_at_close(hx):
    """`elapsed` (and httpx's `_elapsed`) is a timedelta once the response is closed, the
    same one each time; set before close, it is replaced by the measured one (httpx's
    bound stream sets it when it closes); set after, it stays; pickling keeps it."""
    import datetime
    import pickle

    def handler(request):
        return hx.Response(200, content=iter([b"a", b"b"]))

    client = make_client(hx, handler)
    with client.stream("GET", "http://example.org/") as response:
        assert not hasattr(response, "_elapsed")
        response.elapsed = datetime.timedelta(days=1)
        assert response.elapsed == datetime.timedelta(days=1)
        response.read()
    elapsed = response.elapsed
    assert type(elapsed) is datetime.timedelta
    assert datetime.timedelta(0) <= elapsed < datetime.timedelta(seconds=60)
    assert response.elapsed is elapsed
    assert response._elapsed is elapsed
    copy = pickle.loads(pickle.dumps(response))
    assert copy.elapsed == elapsed
    response.elapsed = datetime.timedelta(seconds=3)
    assert response.elapsed == response._elapsed == datetime.timedelta(seconds=3)
    plain = client.get("http://example.org/")
    assert type(plain.elapsed) is datetime.timedelta
    assert plain.elapsed >= datetime.timedelta(0)


@pytest.mark.httprs_only
def test_host_header_leaves_out_an_ipv6_zone_id():
    """Each request to a URL with an IPv6 zone id (the first, and those sharing the
    client's parsed URL) sends `Host` without the zone, as httpx2 2.17 does."""
    import httprs

    seen = []

    def handler(request):
        seen.append(request.headers["Host"])
        return httprs.Response(200)

    with make_client(httprs, handler) as client:
        for _ in range(3):
            client.get("http://[fe80::1%25en0]:8080/a")
        client.get(httprs.URL("http://[fe80::1%25en0]/b"))
        client.get("http://[::1]/c")
    assert seen == ["[fe80::1]:8080"] * 3 + ["[fe80::1]", "[::1]"]


@pytest.mark.httprs_only
def test_elapsed_of_a_response_that_arrives_closed():
    """A transport's response made with its content arrives closed: its stream is never
    closed, so the client records `elapsed` when it gets it (httpx2 2.17; httpx 0.28.1
    raises RuntimeError on `elapsed`)."""
    import datetime

    import httprs

    def handler(request):
        return httprs.Response(200, content=b"whole")

    with make_client(httprs, handler) as client:
        response = client.get("http://example.org/")
        assert response.is_closed
        assert datetime.timedelta(0) <= response.elapsed < datetime.timedelta(seconds=60)
        with client.stream("GET", "http://example.org/") as streamed:
            assert streamed.elapsed >= datetime.timedelta(0)


def test_merge_headers_without_headers_is_a_copy_as_httpx(hx):
    client = hx.Client(headers={"X-A": "1"})
    merged = client._merge_headers(None)
    assert merged == client.headers and merged is not client.headers


@pytest.mark.httprs_only
def test_merge_headers_without_headers_is_the_clients_as_httpx2(presented_as_httpx2):
    """httpx2 2.17's `_merge_headers(None)` returns the client's own Headers (a request
    copies them); presented as httpx2, httprs's does too."""
    import httpx2

    import httprs

    theirs = httpx2.Client(headers={"X-A": "1"})
    assert theirs._merge_headers(None) is theirs.headers
    client = httprs.Client(headers={"X-A": "1"})
    assert client._merge_headers(None) is client.headers
    assert client._merge_headers({"X-B": "2"}) is not client.headers

    class Sub(httprs.Client):  # through the overridable steps, requests still copy them
        def _merge_headers(self, headers=None):
            return super()._merge_headers(headers)

    seen = []
    with Sub(
        headers={"X-A": "1"},
        transport=httprs.MockTransport(lambda r: seen.append(r) or httprs.Response(200)),
    ) as sub:
        sub.get("http://example.org/")
        seen[0].headers["X-A"] = "changed"
        assert sub.headers["X-A"] == "1"
