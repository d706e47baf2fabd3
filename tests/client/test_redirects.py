import pytest


def redirect_app(hx):
    """Routes: /redirect/<status>?to=<location> answers <status> with Location <to>."""

    def handler(request):
        path = request.url.path
        params = request.url.params
        if "/redirect/" in path:
            status = int(path.rsplit("/", 1)[1])
            return hx.Response(status, headers={"Location": params["to"]})
        if path == "/loop":
            return hx.Response(302, headers={"Location": "/loop"})
        if path == "/chain":
            n = int(params.get("n", "0"))
            if n > 0:
                return hx.Response(302, headers={"Location": f"/chain?n={n - 1}"})
        if path == "/set-cookie-redirect":
            return hx.Response(
                302, headers={"Location": "/echo", "Set-Cookie": "from_redirect=1; Path=/"}
            )
        return hx.Response(
            200,
            json={
                "method": request.method,
                "url": str(request.url),
                "body": request.content.decode(),
                "headers": {k.decode().lower(): v.decode() for k, v in request.headers.raw},
            },
        )

    return handler


def make_client(hx, **kwargs):
    return hx.Client(transport=hx.MockTransport(redirect_app(hx)), **kwargs)


@pytest.mark.parametrize(
    ("status", "method", "expected_method", "body_kept"),
    [
        (301, "POST", "GET", False),
        (301, "PUT", "PUT", True),
        (302, "POST", "GET", False),
        (302, "PUT", "GET", False),
        (302, "HEAD", "HEAD", True),
        (303, "POST", "GET", False),
        (303, "DELETE", "GET", False),
        (303, "HEAD", "HEAD", True),
        (307, "POST", "POST", True),
        (308, "POST", "POST", True),
        (308, "PATCH", "PATCH", True),
    ],
)
def test_method_and_body_on_redirect(hx, status, method, expected_method, body_kept):
    client = make_client(hx, follow_redirects=True)
    content = b"payload" if method not in ("HEAD", "DELETE") else None
    response = client.request(
        method, f"http://example.org/redirect/{status}?to=/echo", content=content
    )
    assert response.status_code == 200
    assert response.request.method == expected_method
    assert len(response.history) == 1
    assert response.history[0].status_code == status
    if expected_method != "HEAD":
        data = response.json()
        if content is not None and body_kept:
            assert data["body"] == "payload"
            assert data["headers"]["content-length"] == "7"
        else:
            assert data["body"] == ""
            assert "content-length" not in data["headers"]
            assert "transfer-encoding" not in data["headers"]


def test_no_follow_sets_next_request(hx):
    client = make_client(hx)
    response = client.get("http://example.org/redirect/302?to=/echo")
    assert response.status_code == 302
    assert response.is_redirect
    assert response.has_redirect_location
    assert response.next_request.url == "http://example.org/echo"
    assert response.next_request.method == "GET"
    followed = client.send(response.next_request)
    assert followed.status_code == 200


def test_follow_per_request_overrides_client(hx):
    client = make_client(hx, follow_redirects=True)
    assert (
        client.get("http://example.org/redirect/301?to=/echo", follow_redirects=False).status_code
        == 301
    )
    client = make_client(hx)
    assert (
        client.get("http://example.org/redirect/301?to=/echo", follow_redirects=True).status_code
        == 200
    )


def test_history_chain(hx):
    client = make_client(hx, follow_redirects=True)
    response = client.get("http://example.org/chain?n=3")
    assert response.status_code == 200
    assert [str(r.url) for r in response.history] == [
        "http://example.org/chain?n=3",
        "http://example.org/chain?n=2",
        "http://example.org/chain?n=1",
    ]
    assert response.history[1].history == [response.history[0]]
    assert str(response.url) == "http://example.org/chain?n=0"


def test_too_many_redirects(hx):
    client = make_client(hx, follow_redirects=True)
    with pytest.raises(hx.TooManyRedirects, match="Exceeded maximum allowed redirects."):
        client.get("http://example.org/loop")
    client = make_client(hx, follow_redirects=True, max_redirects=2)
    with pytest.raises(hx.TooManyRedirects) as info:
        client.get("http://example.org/chain?n=3")
    assert info.value.request.url == "http://example.org/chain?n=0"
    assert client.get("http://example.org/chain?n=2").status_code == 200


def test_relative_and_absolute_locations(hx):
    client = make_client(hx, follow_redirects=True)
    response = client.get("http://example.org/a/b/redirect/302?to=../echo")
    assert response.url.path == "/a/b/echo"
    response = client.get("http://example.org/redirect/302?to=https://other.org:8443/echo")
    assert response.url == "https://other.org:8443/echo"
    response = client.get("http://example.org/redirect/302?to=//third.org/echo")
    assert response.url == "http://third.org/echo"


def test_location_without_host_keeps_host(hx):
    client = make_client(hx, follow_redirects=True)
    response = client.get("http://example.org/redirect/302?to=https:///echo")
    assert response.url.host == "example.org"
    assert response.url.scheme == "https"


def test_fragment_is_kept(hx):
    client = make_client(hx, follow_redirects=True)
    response = client.get("http://example.org/redirect/302?to=/echo#frag")
    assert response.url.fragment == "frag"
    client.get("http://example.org/redirect/302?to=/echo")
    response = client.get(hx.URL("http://example.org/redirect/302?to=/echo#orig"))
    assert response.url.fragment == "orig"


def test_invalid_location(hx):
    client = make_client(hx, follow_redirects=True)
    with pytest.raises(hx.RemoteProtocolError, match="Invalid URL in location header"):
        client.get("http://example.org/redirect/302", params={"to": "http://[::1/"})


INVALID_LOCATIONS = ["http://[::1/", "http://example.org:notaport/", "/a\x00b"]


@pytest.mark.parametrize("location", INVALID_LOCATIONS)
def test_invalid_location_not_followed_fails_the_send(hx, location):
    """httpx 0.28.1 builds next_request while sending, followed or not: an invalid Location
    fails the send (httpx2 returns the response instead: tests/test_httpx2_api.py)."""
    closed = []
    client = make_client(hx, event_hooks={"response": [lambda response: closed.append(response)]})
    with pytest.raises(hx.RemoteProtocolError, match="Invalid URL in location header"):
        client.get("http://example.org/redirect/302", params={"to": location})
    assert closed[0].is_closed
    assert client.get("http://example.org/echo").status_code == 200  # still usable


@pytest.mark.httprs_only
@pytest.mark.anyio
@pytest.mark.parametrize("location", INVALID_LOCATIONS)
async def test_invalid_location_not_followed_fails_the_send_async(anyio_backend, location):
    import httprs

    app = redirect_app(httprs)

    async def handler(request):
        return app(request)

    async with httprs.AsyncClient(transport=httprs.MockTransport(handler)) as client:
        with pytest.raises(httprs.RemoteProtocolError, match="Invalid URL in location header"):
            await client.get("http://example.org/redirect/302", params={"to": location})
        assert (await client.get("http://example.org/echo")).status_code == 200


def test_authorization_stripped_cross_origin(hx):
    client = make_client(hx, follow_redirects=True)
    headers = {"Authorization": "secret"}
    same = client.get("http://example.org/redirect/302?to=/echo", headers=headers)
    assert same.json()["headers"]["authorization"] == "secret"
    other = client.get("http://example.org/redirect/302?to=http://other.org/echo", headers=headers)
    assert "authorization" not in other.json()["headers"]
    assert other.json()["headers"]["host"] == "other.org"
    port = client.get(
        "http://example.org/redirect/302?to=http://example.org:81/echo", headers=headers
    )
    assert "authorization" not in port.json()["headers"]
    assert port.json()["headers"]["host"] == "example.org:81"
    upgrade = client.get(
        "http://example.org/redirect/302?to=https://example.org/echo", headers=headers
    )
    assert upgrade.json()["headers"]["authorization"] == "secret"
    downgrade = client.get(
        "https://example.org/redirect/302?to=http://example.org/echo", headers=headers
    )
    assert "authorization" not in downgrade.json()["headers"]


def test_basic_auth_stripped_cross_origin(hx):
    client = make_client(hx, follow_redirects=True, auth=("user", "pass"))
    response = client.get("http://example.org/redirect/302?to=http://other.org/echo")
    assert "authorization" not in response.json()["headers"]
    assert "authorization" in response.history[0].request.headers


def test_cookies_on_redirect(hx):
    client = make_client(hx, follow_redirects=True, cookies={"jar": "1"})
    response = client.get("http://example.org/set-cookie-redirect")
    assert response.json()["headers"]["cookie"] == "jar=1; from_redirect=1"
    assert client.cookies["from_redirect"] == "1"


def test_redirect_request_keeps_extensions(hx):
    client = make_client(hx, follow_redirects=True, timeout=3.0)
    response = client.get("http://example.org/redirect/307?to=/echo")
    assert response.request.extensions["timeout"]["read"] == 3.0


def test_streaming_body_replayed_after_mock_read(hx):
    # MockTransport reads (and so caches) the request body: a 307 can resend it.
    client = make_client(hx, follow_redirects=True)

    def body():
        yield b"da"
        yield b"ta"

    response = client.post("http://example.org/redirect/307?to=/echo", content=body())
    assert response.json()["body"] == "data"
    assert response.json()["headers"]["transfer-encoding"] == "chunked"


def test_redirect_response_hooks_see_each_hop(hx):
    seen = []
    client = make_client(
        hx,
        follow_redirects=True,
        event_hooks={"response": [lambda r: seen.append(r.status_code)]},
    )
    client.get("http://example.org/chain?n=2")
    assert seen == [302, 302, 200]


@pytest.mark.httprs_only
@pytest.mark.parametrize("api", ["get", "request", "send", "stream"])
def test_proxy_authorization_stripped_cross_origin(api):
    """[harden] (urllib3 CVE-2024-37891) a user-set Proxy-Authorization header never
    follows a redirect to another origin; httpx forwards it. Same-origin hops keep it.
    Every API path goes through the one redirect builder."""
    import httprs

    client = make_client(httprs, follow_redirects=True)
    headers = [("Proxy-Authorization", "Basic c2VjcmV0"), ("proxy-authorization", "x")]

    def fetch(url):
        if api == "get":
            return client.get(url, headers=headers)
        if api == "request":
            return client.request("GET", url, headers=headers)
        if api == "send":
            return client.send(client.build_request("GET", url, headers=headers))
        with client.stream("GET", url, headers=headers) as r:
            r.read()
            return r

    other = fetch("http://example.org/redirect/302?to=http://other.org/echo")
    assert "proxy-authorization" not in other.json()["headers"]
    port = fetch("http://example.org/redirect/302?to=http://example.org:81/echo")
    assert "proxy-authorization" not in port.json()["headers"]
    same = fetch("http://example.org/redirect/302?to=/echo")
    assert "proxy-authorization" in same.json()["headers"]


@pytest.mark.httprs_only
@pytest.mark.anyio
async def test_proxy_authorization_stripped_cross_origin_async(anyio_backend):
    import httprs

    app = redirect_app(httprs)

    async def handler(request):
        return app(request)

    async with httprs.AsyncClient(
        transport=httprs.MockTransport(handler), follow_redirects=True
    ) as client:
        headers = {"Proxy-Authorization": "Basic c2VjcmV0"}
        other = await client.get(
            "http://example.org/redirect/302?to=http://other.org/echo", headers=headers
        )
        assert "proxy-authorization" not in other.json()["headers"]
        same = await client.get("http://example.org/redirect/302?to=/echo", headers=headers)
        assert same.json()["headers"]["proxy-authorization"] == "Basic c2VjcmV0"


@pytest.mark.parametrize("api", ["get", "request", "send", "stream"])
def test_max_redirects_through_every_api(hx, api):
    """S10 (urllib3 CVE-2025-50181): the client's max_redirects holds on every path."""
    client = make_client(hx, follow_redirects=True, max_redirects=2)
    url = "http://example.org/chain?n=3"
    with pytest.raises(hx.TooManyRedirects):
        if api == "get":
            client.get(url)
        elif api == "request":
            client.request("GET", url)
        elif api == "send":
            client.send(client.build_request("GET", url))
        else:
            with client.stream("GET", url):
                pass


@pytest.mark.parametrize("status", ["int", "codes", "float", "int-200"])
def test_redirect_status_of_any_number_type(hx, status):
    # has_redirect_location compares the status with the redirect codes: an IntEnum
    # or a float equal to one is followed as an int is.
    code = {"int": 302, "codes": hx.codes.FOUND, "float": 302.0, "int-200": 200}[status]

    def handler(request):
        if request.url.path == "/start":
            return hx.Response(code, headers={"Location": "/end"})
        return hx.Response(200, text=request.url.path)

    with hx.Client(transport=hx.MockTransport(handler), follow_redirects=True) as client:
        response = client.get("http://example.org/start")
    assert response.url.path == ("/start" if status == "int-200" else "/end")
    assert len(response.history) == (0 if status == "int-200" else 1)


@pytest.mark.httprs_only
def test_redirect_host_header_leaves_out_an_ipv6_zone_id():
    """The Host a redirect to another origin rebuilds has no IPv6 zone id, as the first
    request's has none (httpx2 2.17; httpx 0.28.1 sends `[fe80::2%25en1]:81`)."""
    import httprs

    client = make_client(httprs, follow_redirects=True)
    for start in ("http://example.org/", "http://[fe80::1%25en0]:8080/"):
        response = client.get(
            start + "redirect/302", params={"to": "http://[fe80::2%25en1]:81/echo"}
        )
        assert response.json()["headers"]["host"] == "[fe80::2]:81"
        assert response.url.host == "fe80::2%en1"
        assert response.history[0].request.headers["Host"] in ("example.org", "[fe80::1]:8080")
