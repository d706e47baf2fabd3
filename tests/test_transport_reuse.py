"""A closed transport can be used again, as httpx's can.

httpx's transports close their httpcore pool, which opens new connections for the next
request; only the client refuses requests once closed. Code that shares one transport
between clients relies on it: each `with httpx.Client(transport=shared)` closes the
transport on exit, and the next client sends through it (OpenTelemetry's httpx
instrumentation's own tests do so: `test_basic_multiple`,
`test_client_mounts_with_instrumented_transport`).
"""

from __future__ import annotations

import asyncio
import threading

import pytest

import httprs


def test_transport_shared_by_clients_outlives_each_client(server):
    transport = httprs.HTTPTransport()
    for _ in range(3):
        with httprs.Client(transport=transport) as client:
            assert client.get(server.url + "/").status_code == 200
    transport.close()
    request = httprs.Request("GET", server.url + "/")
    response = transport.handle_request(request)
    response.read()
    assert response.status_code == 200
    transport.close()


def test_closed_client_still_refuses_requests(server):
    transport = httprs.HTTPTransport()
    client = httprs.Client(transport=transport)
    client.close()
    with pytest.raises(RuntimeError, match="client has been closed"):
        client.get(server.url + "/")


@pytest.mark.anyio
async def test_async_transport_shared_by_clients_outlives_each_client(server):
    transport = httprs.AsyncHTTPTransport()
    for _ in range(3):
        async with httprs.AsyncClient(transport=transport) as client:
            assert (await client.get(server.url + "/")).status_code == 200
    await transport.aclose()


def test_async_transport_reused_in_a_new_event_loop_after_close(server):
    # OpenTelemetry's tests: one transport, a new client and asyncio.run() per request.
    transport = httprs.AsyncHTTPTransport()

    async def one():
        async with httprs.AsyncClient(transport=transport) as client:
            return (await client.get(server.url + "/")).status_code

    assert [asyncio.run(one()) for _ in range(3)] == [200, 200, 200]


def test_threads_closing_and_reusing_one_transport(server):
    # Sync clients are shared by threads: closes racing with requests (and with other
    # threads reopening the transport) fail those requests at most, with a transport
    # error, and leave the transport usable.
    transport = httprs.HTTPTransport()
    unexpected = []

    def work():
        for _ in range(30):
            try:
                with httprs.Client(transport=transport) as client:
                    client.get(server.url + "/").read()
            except httprs.TransportError:
                pass
            except BaseException as error:  # noqa: BLE001 - reported below
                unexpected.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert unexpected == []
    with httprs.Client(transport=transport) as client:
        assert client.get(server.url + "/").status_code == 200
