"""A socket.getaddrinfo replaced by the user steers connections, as it does in httpx.

httpx resolves names through Python's socket module, so tests and DNS-override tools
that patch socket.getaddrinfo decide where its connections go. httprs resolves in
C++; when socket.getaddrinfo is not the socket module's own, it resolves through it.
"""

import asyncio
import socket
from unittest import mock

import pytest

import httprs

_real_getaddrinfo = socket.getaddrinfo


def _override(name, calls):
    """A getaddrinfo that maps `name` to 127.0.0.1 and leaves other names alone."""

    def fake(host, port, family=0, type=0, proto=0, flags=0):
        if isinstance(host, bytes):  # httpcore's async backends pass the IDNA bytes
            host = host.decode("ascii")
        calls.append((host, port, family, type))
        if host == name:
            return _real_getaddrinfo("127.0.0.1", port, family, type, proto, flags)
        return _real_getaddrinfo(host, port, family, type, proto, flags)

    return fake


def _port(server):
    return int(server.url.rsplit(":", 1)[1])


def test_patched_getaddrinfo_is_honoured(server):
    calls = []
    url = f"http://service.test.invalid:{_port(server)}/echo"
    with mock.patch("socket.getaddrinfo", _override("service.test.invalid", calls)):
        with httprs.Client() as client:
            response = client.get(url)
    assert response.status_code == 200
    headers = dict(response.json()["headers"])
    assert headers["host"] == f"service.test.invalid:{_port(server)}"
    assert ("service.test.invalid", _port(server)) in [c[:2] for c in calls]
    assert all(c[3] == socket.SOCK_STREAM for c in calls)


def test_patched_getaddrinfo_is_honoured_async(server):
    calls = []
    url = f"http://service.test.invalid:{_port(server)}/echo"

    async def main():
        async with httprs.AsyncClient() as client:
            return await client.get(url)

    with mock.patch("socket.getaddrinfo", _override("service.test.invalid", calls)):
        response = asyncio.run(main())
    assert response.status_code == 200
    headers = dict(response.json()["headers"])
    assert headers["host"] == f"service.test.invalid:{_port(server)}"
    assert ("service.test.invalid", _port(server)) in [c[:2] for c in calls]


def test_patched_getaddrinfo_failure_is_a_connect_error(server):
    def failing(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with mock.patch("socket.getaddrinfo", failing):
        with httprs.Client() as client:
            with pytest.raises(httprs.ConnectError, match="Name or service not known"):
                # A resolvable name: only the patch can make this fail.
                client.get(f"http://localhost:{_port(server)}/")


def test_unpatching_restores_the_normal_resolver(server):
    calls = []
    url = f"http://service.test.invalid:{_port(server)}/"
    with mock.patch("socket.getaddrinfo", _override("service.test.invalid", calls)):
        with httprs.Client() as client:
            assert client.get(url).status_code == 200
    with httprs.Client() as client:
        with pytest.raises(httprs.ConnectError):
            client.get(url)
        assert client.get(f"http://127.0.0.1:{_port(server)}/").status_code == 200
