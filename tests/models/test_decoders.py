import asyncio
import gzip
import zlib

import httpx
import pytest
from httprs._decoders import ContentDecoder
from httprs._exceptions import DecodingError

import httprs

BODY = b"The quick brown fox jumps over the lazy dog. " * 200


def _run(encodings, data, split):
    dec = ContentDecoder(encodings)
    out = b""
    for i in range(0, len(data), split):
        out += dec.decode(data[i : i + split])
    return out + dec.flush()


@pytest.mark.parametrize("split", [1, 7, 4096, 10**6])
def test_gzip_any_split(split):
    assert _run(["gzip"], gzip.compress(BODY), split) == BODY


@pytest.mark.parametrize("data", [zlib.compress(BODY), zlib.compress(BODY)[2:-4]])
def test_deflate_zlib_and_raw(data):
    assert _run(["deflate"], data, 100) == BODY


def test_brotli_and_zstd():
    brotli = pytest.importorskip("brotli")
    zstandard = pytest.importorskip("zstandard")
    assert _run(["br"], brotli.compress(BODY), 50) == BODY
    assert _run(["zstd"], zstandard.ZstdCompressor().compress(BODY), 50) == BODY


def test_stacked_and_identity():
    data = gzip.compress(zlib.compress(BODY))
    assert _run(["deflate", "gzip"], data, 33) == BODY
    assert _run(["deflate, gzip"], data, 33) == BODY
    assert _run(["identity"], BODY, 33) == BODY
    assert _run(["unknown-coding"], BODY, 33) == BODY
    assert ContentDecoder(["identity"]).empty
    assert not ContentDecoder(["gzip"]).empty


def test_corrupt_raises_decoding_error():
    with pytest.raises(DecodingError):
        _run(["gzip"], b"not gzip at all", 100)


def test_message_matches_httpx_on_corrupt_gzip():
    with pytest.raises(httpx.DecodingError) as info:
        httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=b"xxxxxxxx")
    with pytest.raises(DecodingError) as ours:
        _run(["gzip"], b"xxxxxxxx", 100)
    assert str(ours.value) == str(info.value)


def test_accepts_bytes_like():
    data = gzip.compress(BODY)
    dec = ContentDecoder([b"gzip"])
    assert dec.decode(bytearray(data)) + dec.decode(memoryview(b"")) + dec.flush() == BODY


# -- after a DecodingError the response is closed (as httpx2 does since 2.12) -----------


class _RecordingStream(httprs.SyncByteStream, httprs.AsyncByteStream):
    """A body that is not gzip at all, recording whether it was closed."""

    def __init__(self):
        self.closed = False

    def __iter__(self):
        yield b"this is not gzip data"
        yield b"never read"

    async def __aiter__(self):
        yield b"this is not gzip data"
        yield b"never read"

    def close(self):
        self.closed = True

    async def aclose(self):
        self.closed = True


def _gzip_labelled(stream):
    return httprs.Response(200, headers={"content-encoding": "gzip"}, stream=stream)


@pytest.mark.httprs_only
@pytest.mark.parametrize("consume", ["read", "iter_bytes", "iter_text", "iter_lines"])
def test_decoding_error_closes_the_stream(consume):
    stream = _RecordingStream()
    response = _gzip_labelled(stream)
    with pytest.raises(httprs.DecodingError):
        result = getattr(response, consume)()
        if consume != "read":
            list(result)
    assert stream.closed
    assert response.is_closed


@pytest.mark.httprs_only
@pytest.mark.parametrize("consume", ["aread", "aiter_bytes", "aiter_text", "aiter_lines"])
def test_decoding_error_closes_the_stream_async(consume):
    stream = _RecordingStream()
    response = _gzip_labelled(stream)

    async def main():
        with pytest.raises(httprs.DecodingError):
            if consume == "aread":
                await response.aread()
            else:
                async for _ in getattr(response, consume)():
                    pass

    asyncio.run(main())
    assert stream.closed
    assert response.is_closed


def _garbage_gzip_server(scripted):
    """/bad: 4 MB labelled gzip that is not; anything else: "ok". Keep-alive."""

    def handler(conn):
        while True:
            request = conn.read_request()
            if request is None:
                return
            if request.target == "/bad":
                body = b"not gzip " * (4 * 1024 * 1024 // 9)
                if not conn.respond(body, headers=[("Content-Encoding", "gzip")]):
                    return
            elif not conn.respond(b"ok"):
                return

    return scripted(handler)


# One connection at most, and a short pool timeout: while the failed response holds
# its connection, the next request cannot get one.
_ONE_CONNECTION = {
    "limits": httprs.Limits(max_connections=1),
    "timeout": httprs.Timeout(10.0, pool=2.0),
}


@pytest.mark.httprs_only
def test_decoding_error_releases_the_connection(scripted):
    server = _garbage_gzip_server(scripted)
    with httprs.Client(**_ONE_CONNECTION) as client:
        with client.stream("GET", server.url + "/bad") as response:
            with pytest.raises(httprs.DecodingError):
                for _ in response.iter_bytes():
                    pass
            assert response.is_closed
            # Released at the error, not when the `with` block ends.
            assert client.get(server.url + "/ok").content == b"ok"


@pytest.mark.httprs_only
def test_decoding_error_releases_the_connection_async(scripted):
    server = _garbage_gzip_server(scripted)

    async def main():
        async with httprs.AsyncClient(**_ONE_CONNECTION) as client:
            async with client.stream("GET", server.url + "/bad") as response:
                with pytest.raises(httprs.DecodingError):
                    async for _ in response.aiter_bytes():
                        pass
                assert response.is_closed
                assert (await client.get(server.url + "/ok")).content == b"ok"

    asyncio.run(main())
