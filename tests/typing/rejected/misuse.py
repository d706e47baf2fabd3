"""Code that must NOT type-check: each line marked `# rejected` is an error for both mypy
and pyright. tests/test_typing.py checks that exactly these lines are reported, so the
checkers are really reading httprs's annotations (with no stubs, every name is Any and
none of these would be caught)."""

from __future__ import annotations

import httprs


def misuse(client: httprs.Client, response: httprs.Response) -> None:
    httprs.get(123)  # rejected
    client.get("/", timeout="soon")  # rejected
    response.status_code.upper()  # rejected
    body: str = response.content  # rejected
    httprs.Client(verfiy=False)  # rejected
    headers: httprs.Headers = {"a": "b"}  # rejected
    client.stream("GET", "/").iter_bytes()  # rejected
    httprs.Timeout(connect="5")  # rejected
    print(body, headers)


async def amisuse(client: httprs.AsyncClient) -> None:
    response = client.get("/")
    response.raise_for_status()  # rejected
    with httprs.AsyncClient():  # rejected
        pass
    await client.close()  # rejected


def wsmisuse(client: httprs.Client) -> None:
    from httprs.websockets import connect_ws

    with client.websocket("ws://example.org/") as ws:
        ws.send_text(b"bytes")  # rejected
        count: int = ws.receive_text()  # rejected
        ws.receive_json(mode="yaml")  # rejected
        print(count)
    with connect_ws("ws://example.org/", client, queue_size="8"):  # rejected
        pass
