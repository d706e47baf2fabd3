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


def test_wsgi_streamed_body_has_a_content_length():
    """A body streamed without Content-Length (sent chunked) reaches a WSGI app with
    CONTENT_LENGTH, as httpx2 2.11 gives it; httpx 0.28.1 leaves it out, so an app that
    reads `wsgi.input` up to CONTENT_LENGTH (PEP 3333) reads nothing."""
    seen = {}

    def app(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        seen["body"] = environ["wsgi.input"].read(length)
        seen["te"] = environ.get("HTTP_TRANSFER_ENCODING")
        start_response("200 OK", [])
        return [b""]

    with httprs.Client(transport=httprs.WSGITransport(app=app)) as client:
        client.post("http://example.org/", content=iter([b"ab", b"cd"]))
        assert seen == {"body": b"abcd", "te": "chunked"}
        client.post("http://example.org/", content=b"xyz", headers={"Content-Length": "3"})
        assert seen["body"] == b"xyz"


@pytest.mark.parametrize("presented", ["httpx", "httpx2"])
def test_callers_transfer_encoding_and_the_bodys_length(monkeypatch, presented):
    """With the caller's `Transfer-Encoding` and a body of known length, httpx 0.28.1's
    Request headers carry both framing headers and httpx2's (2.11) only the caller's;
    httprs follows the library it presents as, and its wire has only the
    Transfer-Encoding either way."""
    from httprs import _alias

    monkeypatch.setitem(_alias._state, "primary", presented)
    both = presented == "httpx"
    te = {"Transfer-Encoding": "chunked"}
    request = httprs.Request("POST", "http://x/", content=b"abc", headers=te)
    assert ("content-length" in request.headers) is both
    sent = []

    def handler(request):
        sent.append(request.headers)
        return httprs.Response(200)

    with httprs.Client(transport=httprs.MockTransport(handler)) as client:
        client.post("http://x/", content=b"abc", headers=te)
        client.post("http://x/", data={"a": "1"}, headers=te)
    for headers in sent:
        assert headers["transfer-encoding"] == "chunked"
        assert ("content-length" in headers) is both
