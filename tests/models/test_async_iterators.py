"""Async iterators handed out by the package behave like Python's async generators.

An async generator that is created but never started must be collected silently
(Cython's own async generators warn "coroutine ... was never awaited", which
``-W error`` suites turn into failures), and a started one must still be
finalised through the event loop's asyncgen hooks.
"""

import asyncio
import gc
import socket
import subprocess
import sys
import warnings

import pytest

import httprs


def _runtime_warnings(action):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


def _run(coro_fn):
    return lambda: asyncio.run(coro_fn())


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


FILES = {"upload": ("a.txt", b"x" * 1000, "text/plain")}


def test_unstarted_multipart_aiter_is_silent():
    async def main():
        request = httprs.Request("POST", "http://example.com/", files=FILES, data={"a": "b"})
        iterator = request.stream.__aiter__()
        del iterator

    assert _runtime_warnings(_run(main)) == []


@pytest.mark.parametrize(
    "make_stream",
    [
        lambda: httprs.ByteStream(b"abc"),
        lambda: httprs.Request("POST", "http://example.com/", files=FILES).stream,
        lambda: httprs.Request("POST", "http://example.com/", content=_agen()).stream,
    ],
    ids=["bytes", "multipart", "async-iterator"],
)
def test_unstarted_stream_aiter_is_silent(make_stream):
    async def main():
        stream = make_stream()
        iterator = stream.__aiter__()
        del iterator

    assert _runtime_warnings(_run(main)) == []


async def _agen():
    yield b"chunk"


@pytest.mark.parametrize("method", ["aiter_bytes", "aiter_text", "aiter_lines", "aiter_raw"])
def test_unstarted_response_aiter_is_silent(method):
    async def main():
        response = httprs.Response(200, content=b"line\n" * 10)
        iterator = getattr(response, method)()
        del iterator
        streamed = httprs.Response(200, stream=httprs.ByteStream(b"abc"))
        iterator = getattr(streamed, method)()
        del iterator

    assert _runtime_warnings(_run(main)) == []


@pytest.mark.parametrize("method", ["aiter_bytes", "aiter_text", "aiter_lines", "aiter_raw"])
def test_response_aiter_still_iterates_and_closes(method):
    async def main():
        response = httprs.Response(200, stream=httprs.ByteStream(b"ab\ncd\n"))
        iterator = getattr(response, method)()
        assert iterator.__aiter__() is iterator
        items = [item async for item in iterator]
        return response, items

    def action():
        response, items = asyncio.run(main())
        assert response.is_closed
        assert items in ([b"ab\ncd\n"], ["ab\ncd\n"], ["ab", "cd"])

    assert _runtime_warnings(action) == []


def test_started_then_abandoned_response_aiter_is_finalised_by_the_loop():
    finalised = []

    class Tracked(httprs.AsyncByteStream):
        async def __aiter__(self):
            try:
                for part in (b"a", b"b", b"c"):
                    yield part
            finally:
                finalised.append(True)

    held = []

    async def main():
        response = httprs.Response(200, stream=Tracked())
        iterator = response.aiter_bytes()
        assert await iterator.__anext__() == b"a"
        held.append(iterator)  # still referenced when the loop shuts down

    assert _runtime_warnings(_run(main)) == []
    # asyncio.run() closes the loop's live async generators (asyncgen hooks).
    assert finalised == [True]
    held.clear()


def test_aclose_before_start_then_iteration_stops():
    async def main():
        response = httprs.Response(200, stream=httprs.ByteStream(b"abc"))
        iterator = response.aiter_bytes()
        await iterator.aclose()
        with pytest.raises(StopAsyncIteration):
            await iterator.__anext__()

    assert _runtime_warnings(_run(main)) == []


def test_failed_async_multipart_upload_leaves_no_warning():
    url = f"http://127.0.0.1:{_closed_port()}/"

    async def main():
        async with httprs.AsyncClient() as client:
            with pytest.raises(httprs.ConnectError):
                await client.post(url, files=FILES, data={"a": "b"})

    assert _runtime_warnings(_run(main)) == []


def test_transport_answering_without_reading_the_upload_leaves_no_warning():
    class Answering(httprs.AsyncBaseTransport):
        async def handle_async_request(self, request):
            request.stream.__aiter__()  # takes the iterator, never reads it
            return httprs.Response(204)

    async def main():
        async with httprs.AsyncClient(transport=Answering()) as client:
            response = await client.post("http://example.com/", files=FILES)
        assert response.status_code == 204

    assert _runtime_warnings(_run(main)) == []


@pytest.mark.parametrize(
    "auth",
    [httprs.BasicAuth("user", "pass"), httprs.DigestAuth("user", "pass"), httprs.Auth()],
    ids=["basic", "digest", "base"],
)
def test_unstarted_async_auth_flow_is_silent(auth):
    async def main():
        request = httprs.Request("GET", "http://example.com/")
        flow = auth.async_auth_flow(request)
        del flow

    assert _runtime_warnings(_run(main)) == []


def test_unstarted_async_auth_flow_under_w_error(tmp_path):
    # The -W error suites this protects: an unraisable "never awaited" warning
    # turns into a non-zero exit under -X dev -W error.
    script = tmp_path / "flow.py"
    script.write_text(
        "import gc, httprs\n"
        "flow = httprs.BasicAuth('a', 'b').async_auth_flow(httprs.Request('GET', 'http://x/'))\n"
        "del flow\n"
        "gc.collect()\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert "never awaited" not in result.stderr


def test_async_auth_flow_still_drives_the_flow():
    async def main():
        auth = httprs.BasicAuth("user", "pass")
        flow = auth.async_auth_flow(httprs.Request("GET", "http://example.com/"))
        request = await flow.__anext__()
        assert request.headers["Authorization"].startswith("Basic ")
        with pytest.raises(StopAsyncIteration):
            await flow.asend(httprs.Response(200))

    asyncio.run(main())
