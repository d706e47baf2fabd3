"""Typical asynchronous use: AsyncClient, concurrency, async streaming."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, assert_type

import httprs


async def fetch_all(urls: list[str]) -> list[int]:
    async with httprs.AsyncClient(http2=False, timeout=httprs.Timeout(5.0)) as client:
        assert_type(client, httprs.AsyncClient)
        responses = await asyncio.gather(*(client.get(url) for url in urls))
        for response in responses:
            assert_type(response, httprs.Response)
        posted = await client.post("https://example.org/", json={"a": 1})
        assert_type(posted.json(), Any)
        return [r.status_code for r in responses]


async def stream_download(client: httprs.AsyncClient, url: str) -> int:
    total = 0
    async with client.stream("GET", url) as response:
        assert_type(response, httprs.Response)
        async for chunk in response.aiter_bytes(chunk_size=65536):
            assert_type(chunk, bytes)
            total += len(chunk)
    async with client.stream("GET", url) as response:
        async for line in response.aiter_lines():
            assert_type(line, str)
        async for text in response.aiter_text():
            assert_type(text, str)
    async with client.stream("GET", url) as response:
        body = await response.aread()
        assert_type(body, bytes)
        await response.aclose()
    return total


async def upload(client: httprs.AsyncClient) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"part"

    await client.put("https://example.org/", content=body())
    request = client.build_request("POST", "https://example.org/", content=b"x")
    response = await client.send(request, stream=True)
    await response.aclose()


def main() -> None:
    print(asyncio.run(fetch_all(["https://example.org/"])))
