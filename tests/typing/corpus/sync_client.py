"""Typical synchronous use: a Client with configuration, requests, responses, errors."""

from __future__ import annotations

import datetime
from typing import Any, assert_type, cast

import httprs


def fetch_json(base_url: str) -> dict[str, Any]:
    timeout = httprs.Timeout(10.0, connect=5.0)
    limits = httprs.Limits(max_connections=10, max_keepalive_connections=5)
    with httprs.Client(
        base_url=base_url,
        headers={"User-Agent": "corpus/1.0"},
        params={"page": 1},
        timeout=timeout,
        limits=limits,
        follow_redirects=True,
    ) as client:
        assert_type(client, httprs.Client)
        response = client.get("/items", params={"q": "x", "n": [1, 2]})
        assert_type(response, httprs.Response)
        response.raise_for_status()
        assert_type(response.status_code, int)
        assert_type(response.headers, httprs.Headers)
        assert_type(response.headers.get("content-type"), Any)
        assert_type(response.text, str)
        assert_type(response.content, bytes)
        assert_type(response.url, httprs.URL)
        assert_type(response.elapsed, datetime.timedelta)
        assert_type(response.encoding, "str | None")
        assert_type(response.http_version, str)
        assert_type(response.history, "list[httprs.Response]")
        data = response.json()
        assert_type(data, Any)
        if not isinstance(data, dict):
            raise TypeError("expected an object")
        return cast("dict[str, Any]", data)


def post_things(client: httprs.Client) -> int:
    r1 = client.post("/form", data={"a": "1"}, files={"f": ("f.txt", b"x", "text/plain")})
    r2 = client.post("/json", json={"a": [1, 2, 3]}, headers=[("X-A", "1")])
    r3 = client.put("/raw", content=b"bytes", cookies={"session": "abc"})
    r4 = client.patch("/raw", content=iter([b"a", b"b"]))
    r5 = client.delete("/thing", timeout=None)
    r6 = client.request("OPTIONS", httprs.URL("https://example.org/x"), auth=("u", "p"))
    request = client.build_request("GET", "/built", extensions={"timeout": {"read": 1.0}})
    assert_type(request, httprs.Request)
    r7 = client.send(request, stream=False)
    return sum(r.status_code for r in (r1, r2, r3, r4, r5, r6, r7))


def headers_and_urls() -> str:
    headers = httprs.Headers({"a": "1"})
    headers["b"] = "2"
    headers.update({"c": "3"})
    raw: list[tuple[bytes, bytes]] = headers.raw
    assert_type(headers.get_list("a"), "list[str]")
    assert_type(headers.multi_items(), "list[tuple[str, str]]")
    url = httprs.URL("https://user:pw@example.org:8443/a/b?x=1#frag")
    assert_type(url.host, str)
    assert_type(url.port, "int | None")
    assert_type(url.params, httprs.QueryParams)
    assert_type(url.raw_path, bytes)
    joined = url.join("../c").copy_with(scheme="http").copy_add_param("y", 2)
    assert_type(joined, httprs.URL)
    params = httprs.QueryParams("a=1&b=2").set("c", "3").merge({"d": "4"})
    assert_type(params.get_list("a"), "list[str]")
    cookies = httprs.Cookies({"a": "b"})
    cookies.set("c", "d", domain="example.org")
    assert_type(cookies.get("a"), "str | None")
    return f"{joined}{params}{len(raw)}{dict(cookies)}"


def errors(client: httprs.Client) -> str:
    try:
        client.get("https://example.org/")
    except httprs.HTTPStatusError as exc:
        assert_type(exc.response, httprs.Response)
        return str(exc.request.url)
    except httprs.TimeoutException as exc:
        assert_type(exc.request, httprs.Request)
        return "timeout"
    except (httprs.ConnectError, httprs.RemoteProtocolError) as exc:
        return type(exc).__name__
    except httprs.RequestError as exc:
        return str(exc)
    except httprs.InvalidURL:
        return "bad url"
    return "ok"


def status_codes(response: httprs.Response) -> bool:
    if response.status_code == httprs.codes.NOT_FOUND:
        return False
    assert_type(httprs.codes.get_reason_phrase(404), str)
    return response.is_success and httprs.codes.is_success(response.status_code)


def top_level_api() -> None:
    response = httprs.get("https://example.org/", params={"a": "b"}, timeout=5.0)
    assert_type(response, httprs.Response)
    httprs.post("https://example.org/", json={"k": "v"}, verify=False)
    httprs.request("HEAD", "https://example.org/", follow_redirects=True)
