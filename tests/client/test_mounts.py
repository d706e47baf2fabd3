import pytest


def answering(hx, name):
    return hx.MockTransport(lambda request: hx.Response(200, text=name))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.com", "http-example"),
        ("http://example.com:8080", "port"),
        ("https://example.com", "all-example"),
        ("https://www.example.com", "wildcard-sub"),
        ("https://example.org", "https"),
        ("http://example.org", "default"),
        ("http://sub.domain.net", "star-domain"),
        ("http://domain.net", "star-domain"),
        ("http://xdomain.net", "default"),
    ],
)
def test_mount_priority(hx, url, expected):
    mounts = {
        "all://": None,
        "https://": answering(hx, "https"),
        "all://example.com": answering(hx, "all-example"),
        "http://example.com": answering(hx, "http-example"),
        "all://*.example.com": answering(hx, "wildcard-sub"),
        "all://example.com:8080": answering(hx, "port"),
        "all://*domain.net": answering(hx, "star-domain"),
    }
    client = hx.Client(transport=answering(hx, "default"), mounts=mounts)
    assert client.get(url).text == expected


def test_mount_none_disables(hx):
    client = hx.Client(
        transport=answering(hx, "default"),
        mounts={"https://": answering(hx, "secure"), "https://plain.org": None},
    )
    assert client.get("https://a.org").text == "secure"
    assert client.get("https://plain.org").text == "default"


def test_mount_closed_with_client(hx):
    closed = []

    class T(hx.BaseTransport):
        def __init__(self, name):
            self.name = name

        def handle_request(self, request):
            return hx.Response(200)

        def close(self):
            closed.append(self.name)

    client = hx.Client(transport=T("main"), mounts={"http://": T("mounted"), "https://": None})
    client.close()
    assert closed == ["main", "mounted"]


def test_invalid_mount_key(hx):
    with pytest.raises(ValueError, match="Proxy keys should use proper URL forms"):
        hx.Client(transport=answering(hx, "x"), mounts={"http": answering(hx, "y")})


@pytest.mark.anyio
async def test_async_mounts(hx):
    async def named(request):
        return hx.Response(200, text="async-mounted")

    client = hx.AsyncClient(
        transport=hx.MockTransport(lambda r: hx.Response(200, text="default")),
        mounts={"http://mounted.org": hx.MockTransport(named)},
    )
    async with client:
        assert (await client.get("http://mounted.org/")).text == "async-mounted"
        assert (await client.get("http://other.org/")).text == "default"


def test_url_pattern_matches_httpx():
    import httpx
    from httpx._utils import URLPattern as HttpxPattern

    import httprs
    from httprs._utils import URLPattern

    patterns = [
        "all://",
        "http://",
        "https://",
        "all://example.com",
        "http://example.com",
        "all://*.example.com",
        "all://*example.com",
        "https://example.com:443",
        "all://example.com:8080",
        "all://[::1]",
        "all://127.0.0.1",
        "",
    ]
    urls = [
        "http://example.com",
        "https://example.com",
        "https://www.example.com",
        "http://wwwexample.com",
        "http://example.com:8080",
        "https://example.com:443",
        "http://[::1]:80/",
        "http://127.0.0.1:9/",
    ]
    for pattern in patterns:
        ours, theirs = URLPattern(pattern), HttpxPattern(pattern)
        # The priority tuple has httpx2's shape (room for networks); the order is httpx's.
        for url in urls:
            assert ours.matches(httprs.URL(url)) == theirs.matches(httpx.URL(url)), (pattern, url)
    order = [p.pattern for p in sorted(URLPattern(p) for p in patterns)]
    assert order == [p.pattern for p in sorted(HttpxPattern(p) for p in patterns)]
