"""Mocking libraries that patch httpcore (respx's default mocker) intercept httprs too.

openai's and anthropic's test suites mock every request with respx, which replaces
httpcore.ConnectionPool.handle_request; httprs's transports route through the patched
method while it is in place and go straight to the C++ core otherwise.
"""

from __future__ import annotations

import httpx
import pytest
import respx

import httprs


def test_respx_intercepts_sync_client():
    with respx.mock(base_url="http://api.mocked.invalid") as router:
        route = router.post("/v1/things").mock(
            return_value=httpx.Response(201, json={"id": 7}, headers={"X-Mock": "yes"})
        )
        with httprs.Client() as client:
            r = client.post("http://api.mocked.invalid/v1/things", json={"name": "a"})
    assert route.called
    assert r.status_code == 201
    assert r.json() == {"id": 7}
    assert r.headers["x-mock"] == "yes"
    assert r.http_version == "HTTP/1.1"
    assert route.calls.last.request.content == b'{"name":"a"}'


def test_respx_side_effect_exception_and_recovery(server):
    with respx.mock(base_url="http://api.mocked.invalid") as router:
        router.get("/slow").mock(side_effect=httprs.ConnectTimeout("mocked timeout"))
        with httprs.Client() as client:
            with pytest.raises(httprs.ConnectTimeout):
                client.get("http://api.mocked.invalid/slow")
    # Unpatched again: the same kind of client reaches the real server through the core.
    with httprs.Client() as client:
        assert client.get(server.url + "/").status_code == 200


def test_respx_pass_through_reaches_the_server(server):
    with respx.mock(assert_all_called=False) as router:
        router.get(server.url + "/json").pass_through()
        with httprs.Client() as client:
            r = client.get(server.url + "/json")
    assert r.status_code == 200
    assert r.json()


@pytest.mark.anyio
async def test_respx_intercepts_async_client():
    with respx.mock(base_url="http://api.mocked.invalid") as router:
        route = router.get("/v1/items").mock(return_value=httpx.Response(200, text="hello"))
        async with httprs.AsyncClient() as client:
            r = await client.get("http://api.mocked.invalid/v1/items")
            async with client.stream("GET", "http://api.mocked.invalid/v1/items") as s:
                body = await s.aread()
    assert route.call_count == 2
    assert r.text == "hello"
    assert body == b"hello"
