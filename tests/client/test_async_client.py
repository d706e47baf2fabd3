import logging

import pytest

pytestmark = pytest.mark.anyio


def echo(hx):
    async def handler(request):
        return hx.Response(
            200,
            json={
                "method": request.method,
                "url": str(request.url),
                "body": request.content.decode(),
                "headers": {k.decode().lower(): v.decode() for k, v in request.headers.raw},
                "timeout": request.extensions["timeout"],
            },
        )

    return handler


async def test_get_and_context_manager(hx):
    async with hx.AsyncClient(transport=hx.MockTransport(echo(hx))) as client:
        response = await client.get("http://example.org/a?b=c")
    data = response.json()
    assert data["method"] == "GET"
    assert data["url"] == "http://example.org/a?b=c"
    assert data["headers"]["accept"] == "*/*"
    assert data["timeout"]["read"] == 5.0
    assert client.is_closed


async def test_client_timeout_is_asked_as_httpx_asks_it(hx):
    # As the sync twin (test_client.py): build_request asks `self.timeout.as_dict()`,
    # _set_timeout `Timeout(self.timeout).as_dict()`.
    class Custom(hx.Timeout):
        def as_dict(self):
            return dict.fromkeys(("connect", "read", "write", "pool"), 7.0)

    url = "http://example.org/"
    sub = type("Sub", (hx.AsyncClient,), {"timeout": property(lambda self: 3.0)})
    async with sub(transport=hx.MockTransport(echo(hx))) as client:
        with pytest.raises(AttributeError, match="'float' object has no attribute 'as_dict'"):
            await client.get(url)
        response = await client.send(hx.Request("GET", url))
        assert response.json()["timeout"]["read"] == 3.0
    async with hx.AsyncClient(transport=hx.MockTransport(echo(hx))) as client:
        client._timeout = Custom(2.0)
        assert (await client.get(url)).json()["timeout"]["read"] == 7.0
        assert (await client.send(hx.Request("GET", url))).json()["timeout"]["read"] == 2.0


async def test_sync_handler_in_async_client(hx):
    client = hx.AsyncClient(transport=hx.MockTransport(lambda r: hx.Response(201, text="s")))
    response = await client.post("http://example.org/", content=b"x")
    assert response.status_code == 201
    assert response.text == "s"
    await client.aclose()


@pytest.mark.parametrize("method", ["get", "options", "head", "delete"])
async def test_bodyless_verbs(hx, method):
    async with hx.AsyncClient(transport=hx.MockTransport(echo(hx))) as client:
        response = await getattr(client, method)("http://example.org/")
    assert response.request.method == method.upper()


@pytest.mark.parametrize("method", ["post", "put", "patch"])
async def test_body_verbs(hx, method):
    async with hx.AsyncClient(transport=hx.MockTransport(echo(hx))) as client:
        response = await getattr(client, method)("http://example.org/", json={"k": "v"})
        request = await client.request(method.upper(), "http://example.org/", content="raw")
    assert response.json()["body"] == '{"k":"v"}'
    assert request.json()["body"] == "raw"


async def test_async_iterator_body(hx):
    async def body():
        yield b"hello "
        yield b"world"

    async with hx.AsyncClient(transport=hx.MockTransport(echo(hx))) as client:
        response = await client.post("http://example.org/", content=body())
    assert response.json()["body"] == "hello world"
    assert response.json()["headers"]["transfer-encoding"] == "chunked"


async def test_sync_iterator_body_rejected(hx):
    client = hx.AsyncClient(transport=hx.MockTransport(echo(hx)))
    with pytest.raises(RuntimeError, match="Attempted to send an? sync request"):
        await client.post("http://example.org/", content=iter([b"x"]))


async def _sync_body_message(mod):
    client = mod.AsyncClient(transport=mod.MockTransport(echo(mod)))
    with pytest.raises(RuntimeError) as info:
        await client.post("http://example.org/", content=iter([b"x"]))
    return str(info.value)


@pytest.mark.httprs_only
async def test_sync_iterator_body_rejected_in_the_presented_words(presented_as_httpx_029):
    """httpx 0.29.0 and httpx2 say "a sync request" (0.28.1: "an sync request", which the
    test above checks against the installed httpx)."""
    import httprs

    httpx2 = pytest.importorskip("httpx2")
    ours = await _sync_body_message(httprs)
    assert ours == "Attempted to send a sync request with an AsyncClient instance."
    assert ours == await _sync_body_message(httpx2)


async def test_stream(hx):
    async def chunks():
        yield b"stream"
        yield b"ed"

    async def handler(request):
        return hx.Response(200, content=chunks())

    async with hx.AsyncClient(transport=hx.MockTransport(handler)) as client:
        async with client.stream("GET", "http://example.org/") as response:
            assert not response.is_closed
            chunks = [chunk async for chunk in response.aiter_bytes()]
        assert b"".join(chunks) == b"streamed"
        assert response.is_closed
        assert response.elapsed.total_seconds() >= 0


async def test_redirects_and_history(hx):
    async def handler(request):
        if request.url.path == "/start":
            return hx.Response(303, headers={"Location": "/end"})
        return hx.Response(200, text=request.method)

    async with hx.AsyncClient(transport=hx.MockTransport(handler)) as client:
        response = await client.post("http://example.org/start", follow_redirects=True)
        assert response.text == "GET"
        assert [r.status_code for r in response.history] == [303]
        unfollowed = await client.post("http://example.org/start")
        assert unfollowed.next_request.url == "http://example.org/end"
    client = hx.AsyncClient(transport=hx.MockTransport(handler), max_redirects=0)
    with pytest.raises(hx.TooManyRedirects):
        await client.get("http://example.org/start", follow_redirects=True)


async def test_async_custom_auth_flow(hx):
    class AsyncAuth(hx.Auth):
        async def async_auth_flow(self, request):
            request.headers["Authorization"] = "first"
            response = yield request
            if response.status_code == 401:
                request.headers["Authorization"] = "second"
                yield request

    async def handler(request):
        if request.headers["authorization"] == "second":
            return hx.Response(200)
        return hx.Response(401)

    client = hx.AsyncClient(transport=hx.MockTransport(handler), auth=AsyncAuth())
    response = await client.get("http://example.org/")
    assert response.status_code == 200
    assert len(response.history) == 1


async def test_async_digest_and_basic(hx):
    from .test_auth import DigestServer

    client = hx.AsyncClient(transport=hx.MockTransport(DigestServer(hx)))
    response = await client.get("http://example.org/", auth=hx.DigestAuth("bob", "pw"))
    assert response.status_code == 200
    response = await client.get("http://u:p@example.org/")
    assert response.request.headers["authorization"] == "Basic dTpw"


async def test_closed_client_errors(hx):
    client = hx.AsyncClient(transport=hx.MockTransport(echo(hx)))
    async with client:
        with pytest.raises(RuntimeError, match="more than once"):
            async with client:
                pass
    with pytest.raises(RuntimeError, match="has been closed"):
        await client.get("http://example.org/")
    with pytest.raises(RuntimeError, match="Cannot reopen"):
        async with client:
            pass


async def test_async_transport_lifecycle(hx):
    events = []

    class Transport(hx.AsyncBaseTransport):
        async def handle_async_request(self, request):
            return hx.Response(200, content=b"t")

        async def __aenter__(self):
            events.append("enter")
            return self

        async def __aexit__(self, *args):
            events.append("exit")

        async def aclose(self):
            events.append("aclose")

    async with hx.AsyncClient(transport=Transport()) as client:
        assert (await client.get("http://e.org/")).content == b"t"
    client = hx.AsyncClient(transport=Transport())
    await client.aclose()
    assert events == ["enter", "exit", "aclose"]


async def test_base_transport_not_implemented(hx):
    client = hx.AsyncClient(transport=hx.AsyncBaseTransport())
    with pytest.raises(NotImplementedError):
        await client.get("http://e.org/")


async def test_cookies_and_logging(hx, caplog):
    caplog.set_level(logging.INFO, logger="httpx")

    async def handler(request):
        return hx.Response(200, headers={"Set-Cookie": "k=v"}, json=request.headers.get("cookie"))

    async with hx.AsyncClient(transport=hx.MockTransport(handler)) as client:
        await client.get("http://example.org/")
        second = await client.get("http://example.org/")
    assert second.json() == "k=v"
    messages = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert messages[-1] == 'HTTP Request: GET http://example.org/ "HTTP/1.1 200 OK"'


@pytest.mark.httprs_only
async def test_elapsed_of_a_response_that_arrives_closed():
    """(As the sync test_elapsed_of_a_response_that_arrives_closed, httpx2 2.17.)"""
    import datetime

    import httprs

    async def handler(request):
        return httprs.Response(200, content=b"whole")

    async with httprs.AsyncClient(transport=httprs.MockTransport(handler)) as client:
        response = await client.get("http://example.org/")
        assert response.is_closed
        assert datetime.timedelta(0) <= response.elapsed < datetime.timedelta(seconds=60)
