"""Code written for httpx, run on httprs with `import httprs as httpx`."""

from __future__ import annotations

from typing import Any

import httprs as httpx


class GitHub:
    def __init__(self, token: str | None = None) -> None:
        headers = {"Accept": "application/vnd.github+json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url="https://api.github.com",
            headers=headers,
            timeout=httpx.Timeout(10.0, read=30.0),
            transport=httpx.HTTPTransport(retries=3),
        )

    def repo(self, owner: str, name: str) -> dict[str, Any]:
        response = self._client.get(f"/repos/{owner}/{name}")
        if response.status_code == httpx.codes.NOT_FOUND:
            raise KeyError(f"{owner}/{name}")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> GitHub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def retrying_get(url: str, attempts: int = 3) -> httpx.Response:
    last: Exception | None = None
    for _ in range(attempts):
        try:
            return httpx.get(url, follow_redirects=True)
        except (httpx.ConnectError, httpx.ReadTimeout) as exc:
            last = exc
    assert last is not None
    raise last


def describe(response: httpx.Response) -> str:
    request: httpx.Request = response.request
    headers: httpx.Headers = response.headers
    url: httpx.URL = request.url
    return f"{request.method} {url} -> {response.status_code} ({headers.get('server')})"
