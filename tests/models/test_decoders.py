import asyncio
import gzip
import zlib

import httpx
import pytest

import httprs
from httprs._decoders import _Chain
from httprs._exceptions import DecodingError

BODY = b"The quick brown fox jumps over the lazy dog. " * 200


def _run(encodings, data, split):
    dec = _Chain(encodings)
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
    assert _Chain(["identity"]).empty
    assert not _Chain(["gzip"]).empty


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
    dec = _Chain([b"gzip"])
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


# -- httpx's private decoder API (`httpx._decoders`), which libraries import ------------

from httpx import _decoders as hx_decoders  # noqa: E402

from httprs import _decoders as rs_decoders  # noqa: E402


def _feed(decoder, data, split):
    out = b""
    for i in range(0, len(data), split):
        out += decoder.decode(data[i : i + split])
    return out + decoder.flush()


def test_supported_decoders_match_httpx():
    assert list(rs_decoders.SUPPORTED_DECODERS) == list(hx_decoders.SUPPORTED_DECODERS)
    for name, cls in rs_decoders.SUPPORTED_DECODERS.items():
        assert cls.__name__ == hx_decoders.SUPPORTED_DECODERS[name].__name__
        assert issubclass(cls, rs_decoders.ContentDecoder)


@pytest.mark.parametrize("split", [1, 13, 10**6])
def test_single_decoders_match_httpx(split):
    brotli = pytest.importorskip("brotli")
    zstandard = pytest.importorskip("zstandard")
    cases = {
        "identity": BODY,
        "gzip": gzip.compress(BODY),
        "deflate": zlib.compress(BODY),
        "br": brotli.compress(BODY),
        "zstd": zstandard.ZstdCompressor().compress(BODY),
    }
    for name, data in cases.items():
        ours = _feed(rs_decoders.SUPPORTED_DECODERS[name](), data, split)
        theirs = _feed(hx_decoders.SUPPORTED_DECODERS[name](), data, split)
        assert ours == theirs == BODY, name
    with pytest.raises(DecodingError):
        _feed(rs_decoders.GZipDecoder(), b"not gzip", 4)


def test_multi_decoder_takes_instances_or_names_and_caps_at_five():
    data = gzip.compress(zlib.compress(BODY))
    # httpx 0.28.1: decoder instances, in the order the codings were applied.
    multi = rs_decoders.MultiDecoder([rs_decoders.DeflateDecoder(), rs_decoders.GZipDecoder()])
    theirs = hx_decoders.MultiDecoder([hx_decoders.DeflateDecoder(), hx_decoders.GZipDecoder()])
    assert _feed(multi, data, 17) == _feed(theirs, data, 17) == BODY
    # httpx2: coding names; unknown ones are skipped.
    assert _feed(rs_decoders.MultiDecoder(["deflate", "x-unknown", "GZIP"]), data, 17) == BODY
    assert len(rs_decoders.MultiDecoder(["gzip"] * 5).children) == 5
    with pytest.raises(DecodingError, match="more than 5"):
        rs_decoders.MultiDecoder(["gzip"] * 6)


@pytest.mark.parametrize("chunk_size", [None, 1, 3, 8])
def test_chunkers_match_httpx(chunk_size):
    pieces = [b"ab", b"", b"cdefg", b"h", b"ijklmnopq", b"r"]
    for ours, theirs, items in (
        (rs_decoders.ByteChunker, hx_decoders.ByteChunker, pieces),
        (rs_decoders.TextChunker, hx_decoders.TextChunker, [p.decode() for p in pieces]),
    ):
        a, b = ours(chunk_size=chunk_size), theirs(chunk_size=chunk_size)
        assert [a.decode(x) for x in items] + [a.flush()] == [b.decode(x) for x in items] + [
            b.flush()
        ]


def test_text_and_line_decoders_match_httpx():
    data = "héllo\r\nwörld\rlast\n\u2028tail".encode()
    for split in (1, 2, 5):
        ours_t, theirs_t = rs_decoders.TextDecoder("utf-8"), hx_decoders.TextDecoder("utf-8")
        ours_l, theirs_l = rs_decoders.LineDecoder(), hx_decoders.LineDecoder()
        got, want = [], []
        for i in range(0, len(data), split):
            got += ours_l.decode(ours_t.decode(data[i : i + split]))
            want += theirs_l.decode(theirs_t.decode(data[i : i + split]))
        got += ours_l.decode(ours_t.flush()) + ours_l.flush()
        want += theirs_l.decode(theirs_t.flush()) + theirs_l.flush()
        assert got == want


def test_decoder_classes_are_patchable_and_used_by_responses():
    """Plain classes, as httpx's: `mock.patch.object` works, and patching LineDecoder
    reaches `Response.iter_lines` (httprs's responses use these classes too)."""
    from unittest import mock

    with mock.patch.object(rs_decoders.GZipDecoder, "decode", return_value=b"x") as spy:
        assert rs_decoders.GZipDecoder().decode(b"abc") == b"x"
    spy.assert_called_once()
    calls = []
    real = rs_decoders.LineDecoder.decode

    def spy_decode(self, text):
        calls.append(text)
        return real(self, text)

    with mock.patch.object(rs_decoders.LineDecoder, "decode", spy_decode):
        lines = list(httprs.Response(200, content=b"a\nb\n").iter_lines())
    assert lines == ["a", "b"] and calls == ["a\nb\n"]


# -- whole-body decoding (`.content`, `read()`, `aread()`): inflated straight into the
# bytes object, sized from what the body records (gzip ISIZE, zstd frame sizes) ----------


def _isize(data, value):
    """`data` with gzip's trailing ISIZE field replaced by `value`."""
    return data[:-4] + value.to_bytes(4, "little")


def _whole_body_cases():
    brotli = pytest.importorskip("brotli")
    zstandard = pytest.importorskip("zstandard")
    big = BODY * 40  # 360 KB: far past every first guess
    zeros = bytes(3 << 20)  # expands ~1000-fold: grows many times
    sized = zstandard.ZstdCompressor().compress(big)
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(big)
    return {
        "gzip": ("gzip", gzip.compress(big)),
        "gzip empty": ("gzip", gzip.compress(b"")),
        "gzip zeros": ("gzip", gzip.compress(zeros, 9)),
        # ISIZE as the last member says: only the first member is decoded.
        "gzip small then big member": ("gzip", gzip.compress(b"small") + gzip.compress(big)),
        "gzip big then small member": ("gzip", gzip.compress(big) + gzip.compress(b"x")),
        "gzip garbage claiming 4 GB": ("gzip", gzip.compress(b"tiny") + b"\xff" * 4),
        "gzip wrong ISIZE": ("gzip", _isize(gzip.compress(big), len(big) + 1)),
        "gzip truncated": ("gzip", gzip.compress(big)[:-100]),
        "deflate": ("deflate", zlib.compress(big)),
        "raw deflate": ("deflate", zlib.compress(big)[2:-4]),
        "br": ("br", brotli.compress(big)),
        "zstd sized": ("zstd", sized),
        "zstd unsized": ("zstd", unsized),
        "zstd frames": ("zstd", zstandard.ZstdCompressor().compress(b"a") + sized),
        "zstd truncated": ("zstd", sized[:-3]),
        "deflate, gzip": ("deflate, gzip", gzip.compress(zlib.compress(big))),
        "identity": ("identity", big),
        "not gzip": ("gzip", b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
    }


def _httpx_outcome(coding, data):
    try:
        return httpx.Response(200, headers={"Content-Encoding": coding}, content=data).content
    except httpx.DecodingError as exc:
        return ("DecodingError", str(exc))


def _httprs_outcome(coding, data):
    try:
        return httprs.Response(200, headers={"Content-Encoding": coding}, content=data).content
    except httprs.DecodingError as exc:
        return ("DecodingError", str(exc))


def test_whole_body_cases_include_errors():
    outcomes = [_httpx_outcome(*case) for case in _whole_body_cases().values()]
    assert sum(isinstance(o, tuple) for o in outcomes) == 3  # wrong ISIZE, zstd cut, not gzip


def test_whole_body_decoding_matches_httpx():
    for name, (coding, data) in _whole_body_cases().items():
        assert _httprs_outcome(coding, data) == _httpx_outcome(coding, data), name


@pytest.mark.anyio
async def test_whole_body_decoding_matches_httpx_async(anyio_backend):
    for name, (coding, data) in _whole_body_cases().items():
        want = _httpx_outcome(coding, data)
        response = httprs.Response(
            200, headers={"Content-Encoding": coding}, stream=httprs.ByteStream(data)
        )
        try:
            got = await response.aread()
        except httprs.DecodingError as exc:
            got = ("DecodingError", str(exc))
        assert got == want, name


def test_decode_whole_after_streamed_pieces():
    """Input held back by bounded decoding comes first, then the rest; afterwards the
    chain is finished (flush() has nothing more)."""
    data = gzip.compress(BODY * 40)
    chain = _Chain(["gzip"])
    pieces = chain.decode_iter(data[:1000], 100)
    head = next(pieces)
    assert len(head) == 100
    pieces.close()
    assert head + chain.decode_whole(data[1000:]) == BODY * 40
    assert chain.flush() == b""
    assert _Chain(["gzip"]).decode_whole(b"") == b""


def test_decode_whole_after_the_end_is_an_error():
    chain = _Chain(["gzip"])
    assert chain.decode_whole(gzip.compress(b"once")) == b"once"
    with pytest.raises(DecodingError, match="after the end of the body"):
        chain.decode_whole(gzip.compress(b"twice"))
    assert chain.decode_whole(b"") == b""


# -- a decoder from elsewhere: set on `response._decoder` by a transport (httpx-curl-cffi
# sets an IdentityDecoder on every response, its body already decoded), or given by an
# overridden / patched `_get_content_decoder()`: used through decode() / flush() ----------

ZIPPED = gzip.compress(BODY)


class _Shout:
    """A decoder with httpx's protocol only: upper-cases, and ends with b"!"."""

    def __init__(self):
        self.calls = []

    def decode(self, data):
        self.calls.append(("decode", len(data)))
        return data.upper()

    def flush(self):
        self.calls.append(("flush",))
        return b"!"


def _libs():
    return [(httpx, hx_decoders), (httprs, rs_decoders)]


@pytest.mark.parametrize("lib, decoders", _libs(), ids=["httpx", "httprs"])
def test_a_decoder_set_on_the_response_is_what_reads_the_body(lib, decoders):
    def made(decoder):
        response = lib.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=lib.ByteStream(ZIPPED)
        )
        response._decoder = decoder
        return response

    assert made(decoders.IdentityDecoder()).read() == ZIPPED
    assert b"".join(made(decoders.IdentityDecoder()).iter_bytes()) == ZIPPED
    shout = _Shout()
    assert made(shout).read() == ZIPPED.upper() + b"!"
    assert shout.calls[-1] == ("flush",) and shout.calls.count(("flush",)) == 1
    chunks = list(made(_Shout()).iter_bytes(chunk_size=10))
    assert b"".join(chunks) == ZIPPED.upper() + b"!"
    assert len(chunks) > 2 and {len(c) for c in chunks[:-1]} == {10}


@pytest.mark.parametrize("lib, decoders", _libs(), ids=["httpx", "httprs"])
def test_a_transport_may_set_the_decoder_of_its_responses(lib, decoders):
    """What httpx-curl-cffi's transports do: the body they hand over is decoded
    already, and an IdentityDecoder keeps the client from decoding it again."""

    class Transport(lib.BaseTransport):
        def handle_request(self, request):
            response = lib.Response(
                200, headers={"Content-Encoding": "gzip"}, stream=lib.ByteStream(BODY)
            )
            response._decoder = decoders.IdentityDecoder()
            return response

    with lib.Client(transport=Transport()) as client:
        assert client.get("http://example.invalid/").content == BODY
        with client.stream("GET", "http://example.invalid/") as response:
            assert b"".join(response.iter_bytes()) == BODY
        assert client.get("http://example.invalid/").text == BODY.decode()


@pytest.mark.anyio
@pytest.mark.parametrize("lib, decoders", _libs(), ids=["httpx", "httprs"])
async def test_a_decoder_set_on_the_response_is_what_reads_the_body_async(
    lib, decoders, anyio_backend
):
    class Stream(lib.AsyncByteStream):
        async def __aiter__(self):
            yield ZIPPED[:100]
            yield ZIPPED[100:]

    def made(decoder):
        response = lib.Response(200, headers={"Content-Encoding": "gzip"}, stream=Stream())
        response._decoder = decoder
        return response

    assert await made(decoders.IdentityDecoder()).aread() == ZIPPED
    shout = _Shout()
    assert await made(shout).aread() == ZIPPED.upper() + b"!"
    assert shout.calls == [("decode", 100), ("decode", len(ZIPPED) - 100), ("flush",)]
    got = [chunk async for chunk in made(_Shout()).aiter_bytes()]
    assert b"".join(got) == ZIPPED.upper() + b"!"


@pytest.mark.parametrize("lib, decoders", _libs(), ids=["httpx", "httprs"])
def test_get_content_decoder_gives_what_httpx_gives(lib, decoders):
    plain = lib.Response(200, content=b"abc")
    assert isinstance(plain._get_content_decoder(), decoders.IdentityDecoder)
    assert plain.read() == b"abc"
    # (A `content=` response is read as it is made: its decoder has ended.)
    zipped = lib.Response(200, headers={"Content-Encoding": "gzip"}, stream=lib.ByteStream(ZIPPED))
    decoder = zipped._get_content_decoder()
    assert decoder is zipped._get_content_decoder()  # made once
    assert decoder.decode(ZIPPED) + decoder.flush() == BODY
    mine = _Shout()
    zipped._decoder = mine
    assert zipped._get_content_decoder() is mine


@pytest.mark.anyio
@pytest.mark.parametrize("lib, decoders", _libs(), ids=["httpx", "httprs"])
async def test_an_overridden_get_content_decoder_is_asked_once_per_read_async(
    lib, decoders, anyio_backend
):
    asked = []

    class Sub(lib.Response):
        def _get_content_decoder(self):
            asked.append(1)
            return _Shout()

    for read in ("aread", "aiter_bytes"):
        asked.clear()
        response = Sub(200, headers={"Content-Encoding": "gzip"}, stream=lib.ByteStream(ZIPPED))
        if read == "aread":
            got = await response.aread()
        else:
            got = b"".join([chunk async for chunk in response.aiter_bytes()])
        assert got == ZIPPED.upper() + b"!" and asked == [1], read


@pytest.mark.parametrize("lib, decoders", _libs(), ids=["httpx", "httprs"])
@pytest.mark.parametrize("where", ["class", "subclass", "instance"])
def test_an_overridden_get_content_decoder_reads_the_body(lib, decoders, where):
    from unittest import mock

    def shout(self):
        return _Shout()

    cls = lib.Response
    if where == "subclass":
        cls = type("Sub", (lib.Response,), {"_get_content_decoder": shout})
    patch = (
        mock.patch.object(lib.Response, "_get_content_decoder", shout)
        if where == "class"
        else mock.patch.object(mock.sentinel, "unused", None, create=True)
    )
    with patch:
        for read in ("read", "iter_bytes"):
            response = cls(
                200, headers={"Content-Encoding": "gzip"}, stream=lib.ByteStream(ZIPPED)
            )
            if where == "instance":
                response._get_content_decoder = lambda: _Shout()
            got = response.read() if read == "read" else b"".join(response.iter_bytes())
            assert got == ZIPPED.upper() + b"!", read
    # Unpatched again: the gzip decoder.
    response = lib.Response(200, headers={"Content-Encoding": "gzip"}, content=ZIPPED)
    assert response.read() == BODY


# -- httpx2's protocol (2.12, bounded decompression): presented as httpx2, the decoder
# classes' decode() / flush() are generators of pieces of at most 1 MiB ---------------

from httpx2 import _decoders as h2_decoders  # noqa: E402


def _feed_pieces(decoder, data, split):
    """The decoded body and the largest piece, decode() / flush() giving iterables."""
    pieces = []
    for i in range(0, len(data), split):
        out = decoder.decode(data[i : i + split])
        assert not isinstance(out, (bytes, bytearray)), "a bytes object, not pieces"
        pieces += list(out)
    pieces += list(decoder.flush())
    assert all(type(piece) is bytes for piece in pieces)
    return b"".join(pieces), max((len(p) for p in pieces), default=0)


@pytest.mark.parametrize("split", [1, 13, 10**6])
def test_presented_as_httpx2_decoders_yield_pieces_as_httpx2s(split, presented_as_httpx2):
    brotli = pytest.importorskip("brotli")
    zstandard = pytest.importorskip("zstandard")
    cases = {
        "identity": BODY,
        "gzip": gzip.compress(BODY),
        "deflate": zlib.compress(BODY),
        "br": brotli.compress(BODY),
        "zstd": zstandard.ZstdCompressor().compress(BODY),
    }
    for name, data in cases.items():
        ours = _feed_pieces(rs_decoders.SUPPORTED_DECODERS[name](), data, split)[0]
        assert ours == BODY, name
        if name in h2_decoders.SUPPORTED_DECODERS:  # (zstd: with backports.zstd only)
            assert _feed_pieces(h2_decoders.SUPPORTED_DECODERS[name](), data, split)[0] == BODY
    with pytest.raises(DecodingError):
        _feed_pieces(rs_decoders.GZipDecoder(), b"not gzip", 4)


@pytest.mark.parametrize("names", [["gzip"], ["deflate", "gzip"], ["gzip", "br", "zstd"]])
def test_presented_as_httpx2_a_bomb_comes_in_pieces_of_at_most_1_mib(names, presented_as_httpx2):
    brotli = pytest.importorskip("brotli")
    zstandard = pytest.importorskip("zstandard")
    compress = {
        "gzip": gzip.compress,
        "deflate": zlib.compress,
        "br": brotli.compress,
        "zstd": zstandard.ZstdCompressor().compress,
    }
    body = bytes(5 << 20)  # 5 MiB of zeros
    data = body
    for name in names:
        data = compress[name](data)
    for lib in (rs_decoders, h2_decoders):
        if not set(names) <= set(lib.SUPPORTED_DECODERS):
            continue  # (httpx2 decodes zstd with backports.zstd only)
        decoder = lib.MultiDecoder(names)
        got, largest = _feed_pieces(decoder, data, 4096)
        assert got == body and largest <= 1 << 20, lib.__name__


def test_presented_as_httpx2_multi_decoder_pipes_like_httpx2s(presented_as_httpx2):
    data = gzip.compress(zlib.compress(BODY))
    for split in (1, 17, len(data)):
        ours = _feed_pieces(
            rs_decoders.MultiDecoder(["deflate", "x-unknown", "gzip"]), data, split
        )
        theirs = _feed_pieces(
            h2_decoders.MultiDecoder(["deflate", "x-unknown", "gzip"]), data, split
        )
        assert ours[0] == theirs[0] == BODY
    assert list(rs_decoders.IdentityDecoder().decode(b"")) == [b""]  # as httpx2's: as it is
    assert list(rs_decoders.IdentityDecoder().flush()) == []


def test_presented_as_httpx2_the_response_decoder_yields_pieces(presented_as_httpx2):
    for lib in (httprs, __import__("httpx2")):
        zipped = lib.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=lib.ByteStream(ZIPPED)
        )
        decoder = zipped._get_content_decoder()
        assert _feed_pieces(decoder, ZIPPED, 100)[0] == BODY, lib.__name__
        plain = lib.Response(200, stream=lib.ByteStream(b"abc"))
        assert _feed_pieces(plain._get_content_decoder(), b"abc", 2)[0] == b"abc"


def test_presented_as_httpx_the_decoders_give_bytes():
    """(The default: no switch names httpx2 the primary.)"""
    assert rs_decoders.GZipDecoder().decode(ZIPPED) == BODY
    assert rs_decoders.IdentityDecoder().flush() == b""
    zipped = httprs.Response(
        200, headers={"Content-Encoding": "gzip"}, stream=httprs.ByteStream(ZIPPED)
    )
    decoder = zipped._get_content_decoder()
    assert decoder.decode(ZIPPED) + decoder.flush() == BODY


class _ShoutPieces:
    """A decoder with httpx2's protocol: upper-cases in two pieces, ends with b"!"."""

    def decode(self, data):
        half = len(data) // 2
        yield data[:half].upper()
        yield data[half:].upper()

    def flush(self):
        yield b"!"


@pytest.mark.parametrize("presented", ["httpx", "httpx2"])
def test_a_set_decoder_with_httpx2s_protocol_reads_the_body(presented, monkeypatch):
    """A transport or library written for httpx2 sets a decoder whose decode() / flush()
    are generators: responses read it, whichever name httprs presents as."""
    from httprs import _alias

    if presented == "httpx2":
        monkeypatch.setitem(_alias._state, "primary", "httpx2")

    def made():
        response = httprs.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=httprs.ByteStream(ZIPPED)
        )
        response._decoder = _ShoutPieces()
        return response

    assert made().read() == ZIPPED.upper() + b"!"
    assert b"".join(made().iter_bytes()) == ZIPPED.upper() + b"!"
    chunks = list(made().iter_bytes(chunk_size=10))
    assert b"".join(chunks) == ZIPPED.upper() + b"!" and {len(c) for c in chunks[:-1]} == {10}
    # The real httpx2 reads it the same way.
    import httpx2

    theirs = httpx2.Response(
        200, headers={"Content-Encoding": "gzip"}, stream=httpx2.ByteStream(ZIPPED)
    )
    theirs._decoder = _ShoutPieces()
    assert theirs.read() == ZIPPED.upper() + b"!"


@pytest.mark.anyio
async def test_a_set_decoder_with_httpx2s_protocol_reads_the_body_async(anyio_backend):
    class Stream(httprs.AsyncByteStream):
        async def __aiter__(self):
            yield ZIPPED[:100]
            yield ZIPPED[100:]

    def made():
        response = httprs.Response(200, headers={"Content-Encoding": "gzip"}, stream=Stream())
        response._decoder = _ShoutPieces()
        return response

    assert await made().aread() == ZIPPED.upper() + b"!"
    assert b"".join([c async for c in made().aiter_bytes()]) == ZIPPED.upper() + b"!"


# -- SUPPORTED_DECODERS changed by the caller: followed for the codings it changes, as
# httpx looks each coding up there (a library registering its own coding) --------------


class _Reverse:
    """A coding of this test's own ('x-reverse'): the body's bytes reversed."""

    def __init__(self):
        self.parts = []

    def decode(self, data):
        self.parts.append(data)
        return b""

    def flush(self):
        return b"".join(self.parts)[::-1]


@pytest.mark.parametrize("lib, decoders", _libs(), ids=["httpx", "httprs"])
def test_a_registered_coding_is_decoded(lib, decoders, monkeypatch):
    monkeypatch.setitem(decoders.SUPPORTED_DECODERS, "x-reverse", _Reverse)
    body = BODY[::-1]
    response = lib.Response(200, headers={"Content-Encoding": "x-reverse"}, content=body)
    assert response.content == BODY
    # With a stock coding in the same chain, each undone in turn.
    stacked = gzip.compress(body)
    headers = {"Content-Encoding": "X-Reverse, gzip"}
    response = lib.Response(200, headers=headers, stream=lib.ByteStream(stacked))
    assert b"".join(response.iter_bytes(chunk_size=100)) == BODY
    assert isinstance(response._get_content_decoder(), decoders.MultiDecoder)
    # The stock codings alone are still the C++ chain's (and decode as ever).
    assert lib.Response(200, headers={"Content-Encoding": "gzip"}, content=ZIPPED).content == BODY


@pytest.mark.parametrize("lib, decoders", _libs(), ids=["httpx", "httprs"])
def test_a_replaced_or_removed_coding_is_followed(lib, decoders, monkeypatch):
    class Upper(decoders.IdentityDecoder):
        def decode(self, data):
            return data.upper()

    monkeypatch.setitem(decoders.SUPPORTED_DECODERS, "gzip", Upper)
    response = lib.Response(200, headers={"Content-Encoding": "gzip"}, content=b"abc")
    assert response.content == b"ABC"
    monkeypatch.delitem(decoders.SUPPORTED_DECODERS, "gzip")
    response = lib.Response(200, headers={"Content-Encoding": "gzip"}, content=ZIPPED)
    assert response.content == ZIPPED  # no decoder for it any more: as it came


class _Quiet:
    """A decoder whose decode() / flush() give None for nothing (as some do)."""

    def decode(self, data):
        return data.upper() if data else None

    def flush(self):
        return None


@pytest.mark.parametrize("lib, decoders", _libs(), ids=["httpx", "httprs"])
def test_a_set_decoder_giving_none_reads_as_nothing(lib, decoders):
    def made():
        response = lib.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=lib.ByteStream(ZIPPED)
        )
        response._decoder = _Quiet()
        return response

    assert b"".join(made().iter_bytes()) == ZIPPED.upper()
    assert list(made().iter_text())


@pytest.fixture
def both_names_as_httpx2(monkeypatch):
    """Both names routed to httprs, httpx2 presented (HTTPRS_INSTALL=1 once httpx2 is
    imported): httpx's and httpx2's code share the decoder classes."""
    from httprs import _alias

    monkeypatch.setitem(_alias._state, "primary", "httpx2")
    monkeypatch.setitem(_alias._state, "names", ("httpx", "httpx2"))


def test_with_both_names_routed_decoders_serve_both_protocols(both_names_as_httpx2):
    """Code written for httpx (bytes) and for httpx2 (pieces) both read the output."""
    zipped = gzip.compress(BODY)
    for make in (
        rs_decoders.GZipDecoder,
        lambda: rs_decoders.MultiDecoder(["gzip"]),
        lambda: httprs.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=httprs.ByteStream(zipped)
        )._get_content_decoder(),
    ):
        decoder = make()
        assert decoder.decode(zipped[:50]) + decoder.decode(zipped[50:]) + decoder.flush() == BODY
        decoder = make()
        pieces = [*decoder.decode(zipped[:50]), *decoder.decode(zipped[50:]), *decoder.flush()]
        assert b"".join(pieces) == BODY and all(type(p) is bytes for p in pieces)
    # One of these set as a response's decoder (httpx-curl-cffi's way): plain bytes out.
    response = httprs.Response(
        200, headers={"Content-Encoding": "gzip"}, stream=httprs.ByteStream(BODY)
    )
    response._decoder = rs_decoders.IdentityDecoder()
    assert {type(chunk) for chunk in response.iter_bytes()} == {bytes}
    identity = rs_decoders.IdentityDecoder()
    assert identity.decode(b"ab") + identity.flush() == b"ab"
    assert list(identity.decode(b"ab")) == [b"ab"] and list(identity.flush()) == []
