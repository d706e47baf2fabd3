"""Behaviour where httprs deliberately differs from httpx (each difference explained)."""

import pytest

import httprs


class DuckStream:
    """An iterable, closable body stream that is no SyncByteStream."""

    def __init__(self, chunks):
        self.chunks = chunks
        self.closed = False

    def __iter__(self):
        yield from self.chunks

    def close(self):
        self.closed = True


def _chunks():
    yield b"ab"


@pytest.mark.parametrize(
    "make", [lambda: DuckStream([b"ab"]), _chunks, lambda: iter([b"ab"]), lambda: [b"ab"]]
)
def test_stream_that_is_no_byte_stream_rejected(make):
    """httpx asserts a transport's response stream is a SyncByteStream (a bare
    AssertionError); httprs's error is one too, and names what the stream was."""

    class Transport(httprs.BaseTransport):
        def handle_request(self, request):
            return httprs.Response(200, stream=make())

    with httprs.Client(transport=Transport()) as client:
        with pytest.raises(AssertionError, match="not a SyncByteStream"):
            client.get("http://example.org/")
        with pytest.raises(TypeError):
            client.get("http://example.org/")


def test_async_only_stream_rejected_by_sync_client():
    class AsyncOnly(httprs.AsyncByteStream):
        async def __aiter__(self):
            yield b"x"

    class Transport(httprs.BaseTransport):
        def handle_request(self, request):
            return httprs.Response(200, stream=AsyncOnly())

    with pytest.raises(TypeError, match="async byte stream"):
        httprs.Client(transport=Transport()).get("http://example.org/")
    # httpx asserts the kind: a test written for it expects an AssertionError
    with pytest.raises(AssertionError):
        httprs.Client(transport=Transport()).get("http://example.org/")


@pytest.mark.anyio
async def test_sync_only_stream_rejected_by_async_client():
    class Transport(httprs.AsyncBaseTransport):
        async def handle_async_request(self, request):
            return httprs.Response(200, stream=httprs.SyncByteStream())

    with pytest.raises(TypeError, match="sync byte stream"):
        await httprs.AsyncClient(transport=Transport()).get("http://example.org/")
    with pytest.raises(AssertionError):
        await httprs.AsyncClient(transport=Transport()).get("http://example.org/")


def test_user_agent_names_httprs():
    client = httprs.Client(transport=httprs.MockTransport(lambda r: httprs.Response(200)))
    assert client.headers["user-agent"] == f"python-httprs/{httprs.__version__}"
    assert client.headers["accept-encoding"] == "gzip, deflate, br, zstd"


def test_http2_builds_proxy_transports_too():
    # Proxy transports are built by the client too (http2=True used to raise there).
    client = httprs.Client(http2=True, proxy="http://127.0.0.1:1")
    assert client._transport_for_url(httprs.URL("https://example.org/")) is not None
    client.close()


def test_mock_async_handler_in_sync_client_leaves_no_coroutine(recwarn):
    async def handler(request):
        return httprs.Response(200)

    client = httprs.Client(transport=httprs.MockTransport(handler))
    with pytest.raises(TypeError):
        client.get("http://example.org/")
    import gc

    gc.collect()
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


def test_wsgi_legacy_write_callable():
    # httpx discards data given to start_response()'s write(); httprs sends it, in order.
    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written-1 ")
        write(b"written-2 ")
        return [b"returned"]

    def generator_app(environ, start_response):
        write = start_response("200 OK", [])
        write(b"a")
        yield b"b"
        write(b"c")
        yield b""
        yield b"d"
        write(b"e")

    client = httprs.Client(transport=httprs.WSGITransport(app=app))
    assert client.get("http://example.org/").content == b"written-1 written-2 returned"
    client = httprs.Client(transport=httprs.WSGITransport(app=generator_app))
    assert client.get("http://example.org/").content == b"abcde"


def test_closed_response_freed_without_cyclic_gc():
    # httpx's bound stream keeps a response <-> stream cycle alive until the cyclic GC
    # runs; httprs drops the back-reference on close so big bodies are freed at once.
    import gc
    import weakref

    client = httprs.Client(
        transport=httprs.MockTransport(lambda r: httprs.Response(200, content=iter([b"x"])))
    )
    gc.disable()
    try:
        response = client.get("http://example.org/")
        assert response.elapsed.total_seconds() >= 0
        ref = weakref.ref(response)
        del response
        assert ref() is None
    finally:
        gc.enable()
