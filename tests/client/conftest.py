"""Fixtures for the client-layer tests: every test runs once against real httpx 0.28.1 and
once against httprs (the `hx` fixture), so a passing pair proves httprs matches httpx.
Nothing here opens a socket: transports are MockTransport / WSGITransport / ASGITransport.
"""

import importlib

import pytest


@pytest.fixture(params=["httpx", "httprs"])
def hx(request):
    return importlib.import_module(request.param)


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request):
    return request.param
