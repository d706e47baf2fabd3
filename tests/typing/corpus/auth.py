"""Authentication: built-in schemes, tuples, callables and a custom Auth flow."""

from __future__ import annotations

from collections.abc import Generator
from typing import assert_type

import httprs


class TokenAuth(httprs.Auth):
    requires_response_body = True

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(
        self, request: httprs.Request
    ) -> Generator[httprs.Request, httprs.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        response = yield request
        assert_type(response, httprs.Response)
        if response.status_code == 401:
            self.token = response.json()["token"]
            request.headers["Authorization"] = f"Bearer {self.token}"
            yield request


def sign(request: httprs.Request) -> httprs.Request:
    request.headers["X-Signature"] = "sig"
    return request


def clients() -> list[httprs.Client]:
    return [
        httprs.Client(auth=("user", "pass")),
        httprs.Client(auth=(b"user", b"pass")),
        httprs.Client(auth=httprs.BasicAuth("user", "pass")),
        httprs.Client(auth=httprs.DigestAuth("user", "pass")),
        httprs.Client(auth=httprs.NetRCAuth()),
        httprs.Client(auth=TokenAuth("t")),
        httprs.Client(auth=sign),
        httprs.Client(auth=httprs.FunctionAuth(sign)),
    ]


def per_request(client: httprs.Client) -> httprs.Response:
    client.auth = TokenAuth("other")
    assert_type(client.auth, "httprs.Auth | None")
    return client.get("https://example.org/", auth=httprs.USE_CLIENT_DEFAULT)
