import threading

import anyio
import pytest


def counting_handler(hx):
    lock = threading.Lock()
    seen = []

    def handler(request):
        with lock:
            seen.append(request.url.params["i"])
        return hx.Response(200, headers={"Set-Cookie": "visited=1"}, text=request.url.params["i"])

    return handler, seen


def test_client_shared_between_threads(hx):
    handler, seen = counting_handler(hx)
    client = hx.Client(transport=hx.MockTransport(handler), follow_redirects=True)
    errors = []

    def worker(t):
        try:
            for n in range(100):
                i = f"{t}-{n}"
                assert client.get("http://example.org/", params={"i": i}).text == i
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(seen) == 800
    assert client.cookies["visited"] == "1"
    client.close()


@pytest.mark.anyio
async def test_async_client_concurrent_tasks(hx):
    handler, seen = counting_handler(hx)

    async def async_handler(request):
        await anyio.sleep(0)
        return handler(request)

    results = {}
    async with hx.AsyncClient(transport=hx.MockTransport(async_handler)) as client:

        async def one(i):
            response = await client.get("http://example.org/", params={"i": str(i)})
            results[i] = response.text

        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(one, i)
    assert results == {i: str(i) for i in range(200)}
    assert len(seen) == 200
