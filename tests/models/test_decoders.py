import gzip
import zlib

import httpx
import pytest
from httprs._decoders import ContentDecoder
from httprs._exceptions import DecodingError

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
