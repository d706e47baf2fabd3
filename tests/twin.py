"""One test body for both clients: the sync Client and the AsyncClient (under asyncio
and trio), where the sync and async twins of a test would be the same code.

The body is an ``async def body(tw)``; it opens its client with ``tw.client(...)``
and awaits the async API (``get``, ``send``, ``stream``, ``aread``, ``aiter_bytes``,
``aclose``). In the sync flavour the client is a ``Client`` behind thin wrappers
whose coroutines never suspend, and the body's coroutine is stepped by hand: no
event loop runs, exactly as a sync caller uses the client. Anything that would
suspend there (an ``anyio`` sleep, say) fails the test: use ``tw.sleep``.

    @pytest.mark.parametrize("flavour", twin.FLAVOURS)
    def test_x(flavour):
        async def body(tw):
            async with tw.client(http2=True) as client:
                assert (await client.get(url)).status_code == 200

        twin.run(flavour, body)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable

import anyio

import httprs

FLAVOURS = ["sync", "asyncio", "trio"]


class Twin:
    def __init__(self, flavour: str, sync_cls=None, async_cls=None) -> None:
        self.flavour = flavour
        self.is_async = flavour != "sync"
        self._sync_cls = sync_cls or httprs.Client
        self._async_cls = async_cls or httprs.AsyncClient

    def client(self, **kwargs):
        if self.is_async:
            return self._async_cls(**kwargs)
        return _SyncClient(self._sync_cls(**kwargs))

    async def sleep(self, seconds: float) -> None:
        if self.is_async:
            await anyio.sleep(seconds)
        else:
            time.sleep(seconds)


def run(flavour: str, body: Callable[[Twin], Awaitable[None]], *, sync_cls=None, async_cls=None):
    """Run ``body`` in one flavour; ``sync_cls`` / ``async_cls`` replace httprs's
    clients (httpx's, for a reference run)."""
    tw = Twin(flavour, sync_cls, async_cls)
    if tw.is_async:
        anyio.run(body, tw, backend=flavour)
        return
    coro = body(tw)
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise AssertionError("the sync flavour of a twin test awaited something that suspends")


class _SyncResponse:
    """A sync Response with the async reading methods of an AsyncClient's."""

    def __init__(self, response) -> None:
        self._r = response

    def __getattr__(self, name):
        return getattr(self._r, name)

    async def aread(self) -> bytes:
        return self._r.read()

    async def aclose(self) -> None:
        self._r.close()

    async def aiter_bytes(self, chunk_size=None):
        for chunk in self._r.iter_bytes(chunk_size):
            yield chunk

    async def aiter_raw(self, chunk_size=None):
        for chunk in self._r.iter_raw(chunk_size):
            yield chunk


class _SyncClient:
    """A sync Client with the coroutine API of an AsyncClient."""

    def __init__(self, client) -> None:
        self._c = client

    def __getattr__(self, name):
        return getattr(self._c, name)

    async def __aenter__(self) -> _SyncClient:
        self._c.__enter__()
        return self

    async def __aexit__(self, *exc) -> None:
        self._c.__exit__(*exc)

    async def request(self, *args, **kwargs):
        return _SyncResponse(self._c.request(*args, **kwargs))

    async def get(self, *args, **kwargs):
        return _SyncResponse(self._c.get(*args, **kwargs))

    async def post(self, *args, **kwargs):
        return _SyncResponse(self._c.post(*args, **kwargs))

    async def send(self, *args, **kwargs):
        return _SyncResponse(self._c.send(*args, **kwargs))

    @contextlib.asynccontextmanager
    async def stream(self, *args, **kwargs):
        with self._c.stream(*args, **kwargs) as r:
            yield _SyncResponse(r)
