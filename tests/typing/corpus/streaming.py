"""Streaming responses with the sync API, and the request/response models directly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import assert_type

import httprs


def download(url: str, path: str) -> int:
    written = 0
    with httprs.stream("GET", url, follow_redirects=True) as response:
        assert_type(response, httprs.Response)
        response.raise_for_status()
        length = int(response.headers.get("content-length", "0"))
        with open(path, "wb") as f:
            for chunk in response.iter_bytes(chunk_size=8192):
                written += f.write(chunk)
        assert_type(response.num_bytes_downloaded, int)
    return max(written, length)


def lines(client: httprs.Client, url: str) -> list[str]:
    out: list[str] = []
    with client.stream("GET", url) as response:
        for line in response.iter_lines():
            out.append(line)
    with client.stream("POST", url, content=b"x") as response:
        for text in response.iter_text():
            assert_type(text, str)
        for raw in response.iter_raw():
            assert_type(raw, bytes)
    return out


def models() -> bytes:
    def gen() -> Iterator[bytes]:
        yield b"chunk"

    request = httprs.Request("POST", "https://example.org/", content=gen())
    assert_type(request.method, str)
    assert_type(request.url, httprs.URL)
    assert_type(request.headers, httprs.Headers)
    response = httprs.Response(200, json={"a": 1}, request=request)
    assert_type(response.request, httprs.Request)
    response2 = httprs.Response(201, content=b"body", headers={"X-A": "b"})
    response3 = httprs.Response(202, text="hi", stream=httprs.ByteStream(b"hi"))
    return response.read() + response2.content + response3.read()


class CountingStream(httprs.SyncByteStream):
    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        self.count = 0

    def __iter__(self) -> Iterator[bytes]:
        for part in self.parts:
            self.count += 1
            yield part

    def close(self) -> None:
        self.parts = []
