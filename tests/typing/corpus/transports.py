"""Transports: the mock transport in tests, custom transports, mounts, WSGI/ASGI apps."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import httprs


def handler(request: httprs.Request) -> httprs.Response:
    if request.url.path == "/json":
        return httprs.Response(200, json={"method": request.method})
    return httprs.Response(404, text="not found")


async def async_handler(request: httprs.Request) -> httprs.Response:
    await request.aread()
    return httprs.Response(204)


class RecordingTransport(httprs.BaseTransport):
    def __init__(self, wrapped: httprs.BaseTransport) -> None:
        self.wrapped = wrapped
        self.seen: list[httprs.URL] = []

    def handle_request(self, request: httprs.Request) -> httprs.Response:
        self.seen.append(request.url)
        return self.wrapped.handle_request(request)

    def close(self) -> None:
        self.wrapped.close()


class AsyncRecordingTransport(httprs.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httprs.AsyncHTTPTransport(retries=2)

    async def handle_async_request(self, request: httprs.Request) -> httprs.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"path": environ["PATH_INFO"]}).encode()]


async def asgi_app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def build() -> list[httprs.Client | httprs.AsyncClient]:
    transport = httprs.HTTPTransport(
        verify=True,
        retries=1,
        limits=httprs.Limits(max_connections=4),
        local_address="0.0.0.0",
        socket_options=[(6, 1, 1)],
    )
    mounts: dict[str, httprs.BaseTransport | None] = {
        "http://": transport,
        "all://internal.example": httprs.MockTransport(handler),
        "https://blocked.example": None,
    }
    with RecordingTransport(httprs.MockTransport(handler)) as recording:
        recording.close()
    return [
        httprs.Client(transport=httprs.MockTransport(handler)),
        httprs.Client(transport=RecordingTransport(transport)),
        httprs.Client(mounts=mounts),
        httprs.Client(transport=httprs.WSGITransport(app=wsgi_app)),
        httprs.AsyncClient(transport=httprs.MockTransport(async_handler)),
        httprs.AsyncClient(transport=httprs.ASGITransport(app=asgi_app)),
        httprs.AsyncClient(transport=AsyncRecordingTransport()),
        httprs.Client(proxy="http://proxy.example:3128"),
        httprs.Client(proxy=httprs.Proxy("http://proxy.example:3128", auth=("u", "p"))),
    ]
