# cython: language_level=3
"""Content-Encoding decoding (gzip, deflate, br, zstd) over the C++ DecoderChain.

`_Chain` is what responses use (bounded inflation, the 5-coding cap). The rest is
httpx's private `httpx._decoders` API, which libraries import (proxies and recorders
check `SUPPORTED_DECODERS`, spy on `GZipDecoder.decode`, reuse `LineDecoder` /
`TextDecoder` / the chunkers): plain classes over the same C++ decoders. Their
`decode()` / `flush()` follow the presented library: bytes, as httpx 0.28.1's; presented
as httpx2, generators of pieces of at most 1 MiB, as httpx2's (2.12, bounded
decompression). `MultiDecoder` also takes httpx2's coding names and applies httpx2's cap
of 5 codings. A response reads a decoder from elsewhere with either protocol.
"""

import codecs
import itertools

from cpython.ref cimport PyObject
from libc.string cimport memcpy
from libcpp.memory cimport unique_ptr
from libcpp.string cimport string
from libcpp.vector cimport vector

from httprs.includes.decode cimport DecoderChain
from httprs.includes.errors cimport Error

from httprs._exceptions import DecodingError

cdef extern from "Python.h":
    PyObject* _new_bytes "PyBytes_FromStringAndSize"(const char* data, Py_ssize_t size) except NULL
    int _PyBytes_Resize(PyObject** obj, Py_ssize_t size) except -1
    char* _bytes_data "PyBytes_AS_STRING"(PyObject* obj)
    void _Py_XDECREF "Py_XDECREF"(PyObject* obj)
    const Py_ssize_t PY_SSIZE_T_MAX

# decode_whole's first buffer for a body that does not record its decoded size:
# compressed input usually grows several times.
DEF GUESS_RATIO = 4
DEF MIN_GUESS = 64 * 1024

__all__ = [
    "SUPPORTED_DECODERS",
    "BrotliDecoder",
    "ByteChunker",
    "ContentDecoder",
    "DeflateDecoder",
    "GZipDecoder",
    "IdentityDecoder",
    "LineDecoder",
    "MultiDecoder",
    "TextChunker",
    "TextDecoder",
    "ZStandardDecoder",
]

cdef object _alias_primary = None
cdef object _alias_installed = None

# What the decoders' decode() / flush() give (`_protocol()`).
cdef enum Protocol:
    kBytes  # httpx 0.28.1's: bytes
    kPieces  # httpx2's (2.12): a generator of pieces of at most 1 MiB
    kEither  # both names routed: bytes that iterate as one piece (see _BytesOrPieces)


cdef Protocol _protocol() except *:
    """The protocol of the presented library: httpx's, httpx2's, or either when both
    names are routed to httprs and httpx2 is presented (code written for httpx and for
    httpx2 then shares these classes, and neither can be told from the other)."""
    global _alias_primary, _alias_installed
    if _alias_primary is None:
        from httprs._alias import installed, primary  # (late: _alias imports the package)

        _alias_primary, _alias_installed = primary, installed
    if _alias_primary() != "httpx2":
        return kBytes
    return kEither if "httpx" in _alias_installed() else kPieces


class _BytesOrPieces(bytes):
    """A decoder's output while httprs answers to both names as httpx2: the bytes httpx's
    protocol gives (`decode(a) + flush()`, written to a file, ...), iterating as the one
    piece httpx2's protocol gives (`b"".join(decoder.decode(a))`, `for piece in ...`)
    rather than as ints."""

    __slots__ = ()

    def __iter__(self):
        if self:
            yield bytes(self)


cdef object _as_protocol(bytes out, Protocol protocol):
    return _BytesOrPieces(out) if protocol == kEither else out


def _yield_as_is(data):
    yield data


cdef class _Chain:
    """Streaming decoder for a response's Content-Encoding values.

    `encodings` are the header values in header order (each may hold several
    comma-separated codings). Unknown codings and "identity" pass through, as
    in httpx. Errors raise DecodingError with the core's message.
    """

    cdef unique_ptr[DecoderChain] _chain
    cdef bint _finished

    def __init__(self, encodings):
        cdef vector[string] values
        cdef Error err
        for value in encodings:
            if isinstance(value, str):
                value = (<str>value).encode("latin-1")
            values.push_back(<string>value)
        self._chain = DecoderChain.create(values, err)
        if not self._chain:
            raise DecodingError(err.message.decode("utf-8", "replace"))
        self._finished = False

    @property
    def empty(self):
        """True when nothing needs decoding (identity / unknown codings only)."""
        return self._chain.get().empty()

    def decode(self, data):
        """httpx's `decode()`: the decoded bytes; presented as httpx2, a generator of
        pieces (`decode_iter`); see `_protocol`."""
        cdef Protocol protocol = _protocol()
        if protocol == kPieces:
            return self.decode_iter(data)
        return _as_protocol(self.decode_bytes(data), protocol)

    def decode_bytes(self, data):
        """`data` decoded, as far as it goes, in one bytes object."""
        cdef const unsigned char[:] view = data
        cdef string out
        cdef Error err
        cdef bint ok
        if view.shape[0] == 0:
            return b""
        with nogil:
            ok = self._chain.get().feed(<const char*>&view[0], view.shape[0], out, err)
        if not ok:
            raise DecodingError(err.message.decode("utf-8", "replace"))
        return <bytes>out

    def decode_whole(self, bytes data not None):
        """The whole body `data` decoded and its end checked: httpx's `decode(data) +
        flush()`, inflated straight into the bytes object returned. Its first size is
        what the body records (gzip's ISIZE, zstd's frame sizes; bounded in C++), else a
        guess; it doubles as it fills, and is cut to the output at the end."""
        cdef const char* ptr = data
        cdef size_t n = len(data)
        cdef DecoderChain* chain = self._chain.get()
        cdef size_t size = 0
        cdef size_t got = 0
        cdef size_t cap
        cdef PyObject* out = NULL
        cdef char* buf
        cdef string tail
        cdef Error err
        cdef bint ok = True
        cdef bint ended = False
        if n == 0:
            return self.flush_bytes()
        self._finished = True
        cap = chain.size_hint(ptr, n) + 1  # + 1: output of exactly the hint ends in one pass
        if cap == 1:
            cap = max(n * GUESS_RATIO if n < <size_t>PY_SSIZE_T_MAX // GUESS_RATIO else n, MIN_GUESS)
        try:
            out = _new_bytes(NULL, <Py_ssize_t>cap)
            while not ended:
                buf = _bytes_data(out)
                with nogil:
                    ok = chain.decode_into(&ptr, &n, buf + size, cap - size, &got, err)
                    size += got
                    ended = ok and size < cap
                    if ended:
                        ok = chain.finish(tail, err)
                if not ok:
                    raise DecodingError(err.message.decode("utf-8", "replace"))
                if not ended:
                    if cap > <size_t>PY_SSIZE_T_MAX // 2:
                        raise MemoryError()
                    cap *= 2
                    _PyBytes_Resize(&out, <Py_ssize_t>cap)
            if size + tail.size() != cap:
                _PyBytes_Resize(&out, <Py_ssize_t>(size + tail.size()))
            if tail.size() > 0:  # finish() found output still held (none is, in practice)
                memcpy(_bytes_data(out) + size, tail.data(), tail.size())
            result = <object>out
        finally:
            _Py_XDECREF(out)
        return result

    def decode_iter(self, data, size_t max_out=1 << 20):
        """Decode `data` in pieces of at most `max_out` bytes, as a generator.

        The chain keeps what it has not inflated yet, so a consumer that stops
        early (a decompression bomb read partway) never inflates the rest.
        """
        cdef const unsigned char[:] view = data
        cdef string out
        cdef Error err
        cdef bint ok
        cdef const char* ptr = NULL
        cdef size_t n = view.shape[0]
        if n == 0:
            return
        ptr = <const char*>&view[0]
        with nogil:
            ok = self._chain.get().feed(ptr, n, out, max_out, err)
        if not ok:
            raise DecodingError(err.message.decode("utf-8", "replace"))
        while True:
            if out.size() > 0:
                yield <bytes>out
            out.clear()
            with nogil:
                ok = self._chain.get().drain(out, max_out, err)
            if not ok:
                raise DecodingError(err.message.decode("utf-8", "replace"))
            if out.size() == 0:
                return

    def flush_iter(self, size_t max_out=1 << 20):
        """The end of the body, in pieces of at most `max_out` bytes (then the tail)."""
        cdef string out
        cdef Error err
        cdef bint ok
        if self._finished:
            return
        while True:
            out.clear()
            with nogil:
                ok = self._chain.get().drain(out, max_out, err)
            if not ok:
                raise DecodingError(err.message.decode("utf-8", "replace"))
            if out.size() == 0:
                break
            yield <bytes>out
        tail = self.flush_bytes()
        if tail:
            yield tail

    def flush(self):
        """httpx's `flush()`: the end of the body as bytes; presented as httpx2, a
        generator of pieces (`flush_iter`); see `_protocol`."""
        cdef Protocol protocol = _protocol()
        if protocol == kPieces:
            return self.flush_iter()
        return _as_protocol(self.flush_bytes(), protocol)

    def flush_bytes(self):
        """The end of the body in one bytes object, its completeness checked."""
        cdef string out
        cdef Error err
        cdef bint ok
        if self._finished:
            return b""
        self._finished = True
        with nogil:
            ok = self._chain.get().finish(out, err)
        if not ok:
            raise DecodingError(err.message.decode("utf-8", "replace"))
        return <bytes>out


class _Foreign:
    """A decoder a response got from elsewhere (a transport or a library that set
    `response._decoder`, a patched or overridden `_get_content_decoder()`), with
    httpx's protocol only: `decode(data)` and `flush()`, each returning bytes (httpx
    0.28.1) or an iterable of bytes (httpx2). Responses read it through the steps
    `_Chain` offers, each made of those two calls as httpx's iter_bytes makes them: one
    `decode()` per piece read, one `flush()` at the end."""

    def __init__(self, decoder):
        self.decoder = decoder

    def decode_whole(self, data):
        # (decode()'s pieces are all taken before flush() is called.)
        head = _joined(self.decoder.decode(data))
        return head + _joined(self.decoder.flush())

    def decode_iter(self, data):
        for piece in _pieces(self.decoder.decode(data)):
            if piece:
                yield piece

    def flush_iter(self):
        for piece in _pieces(self.decoder.flush()):
            if piece:
                yield piece


cdef object _pieces(object out):
    """What a decoder's decode() / flush() gave, as an iterable of bytes pieces: bytes
    (httpx 0.28.1's protocol) as one piece, an iterable (httpx2's) as it is."""
    if type(out) is _BytesOrPieces:  # (one of ours, set as a response's decoder)
        return (bytes(out),)
    if isinstance(out, (bytes, bytearray, memoryview)):
        return (out,)
    if out is None:  # (httpx's iter_bytes skips a falsy result)
        return ()
    return out


cdef bytes _joined(object out):
    """What a decoder's decode() / flush() gave, as one bytes object."""
    if type(out) is bytes:
        return <bytes>out
    if isinstance(out, (bytes, bytearray, memoryview)):
        return bytes(out)
    if out is None:
        return b""
    return b"".join(out)


cpdef object _as_response_decoder(object decoder):
    """What a response reads its body through, given a decoder with httpx's protocol:
    None or a `_Chain` as it is, anything else behind a `_Foreign` (an IdentityDecoder
    too: its methods may be patched, and httpx calls them)."""
    if decoder is None or type(decoder) is _Chain:
        return decoder
    return _Foreign(decoder)


# ---------------------------------------------------------------------------
# httpx's decoder classes


class ContentDecoder:
    """Base of the content decoders: `decode(data)` and `flush()` return bytes
    (presented as httpx2: generators of bytes pieces)."""

    def decode(self, data):
        raise NotImplementedError()

    def flush(self):
        raise NotImplementedError()


class IdentityDecoder(ContentDecoder):
    """No content coding: bytes pass through."""

    def decode(self, data):
        cdef Protocol protocol = _protocol()
        if protocol == kPieces:
            return _yield_as_is(data)
        return _BytesOrPieces(data) if protocol == kEither else data

    def flush(self):
        cdef Protocol protocol = _protocol()
        if protocol == kPieces:
            return iter(())
        return _as_protocol(b"", protocol)


class _OneCoding(ContentDecoder):
    """One content coding, decoded by the C++ decoder for `coding`."""

    coding = ""

    def __init__(self):
        self._chain = _Chain([self.coding])

    def decode(self, data):
        return self._chain.decode(data)  # (bytes, or pieces presented as httpx2)

    def flush(self):
        return self._chain.flush()


class DeflateDecoder(_OneCoding):
    """'deflate': zlib-wrapped or raw deflate data, as servers send either."""

    coding = "deflate"


class GZipDecoder(_OneCoding):
    """'gzip' (and 'x-gzip')."""

    coding = "gzip"


class BrotliDecoder(_OneCoding):
    """'br'."""

    coding = "br"


class ZStandardDecoder(_OneCoding):
    """'zstd'."""

    coding = "zstd"


SUPPORTED_DECODERS = {
    "identity": IdentityDecoder,
    "gzip": GZipDecoder,
    "deflate": DeflateDecoder,
    "br": BrotliDecoder,
    "zstd": ZStandardDecoder,
}

# What SUPPORTED_DECODERS holds as shipped. Responses decode these codings in the C++
# chain; a registry changed by the caller (a coding added, or one replaced or removed)
# is followed for the codings it changes, as httpx looks each coding up there.
_STOCK_DECODERS = dict(SUPPORTED_DECODERS)


cpdef object _response_decoder(list values):
    """The decoder for a response's Content-Encoding header `values`, or None when there
    is nothing to undo: the C++ chain, unless SUPPORTED_DECODERS was changed for a coding
    the values name; then httpx's: an instance of each named coding's registered class
    (unknown ones skipped), a MultiDecoder of them when there are several."""
    registry = SUPPORTED_DECODERS
    if registry != _STOCK_DECODERS:
        codings = _codings(values)
        if _changed_for(registry, codings):
            children = []
            for coding in codings:
                cls = registry.get(coding)
                if cls is not None and cls is not IdentityDecoder:
                    children.append(cls())
            if not children:
                return None
            return children[0] if len(children) == 1 else MultiDecoder(children)
    chain = _Chain(values)
    return None if chain.empty else chain


cdef bint _changed_for(dict registry, list codings) except -1:
    for coding in codings:
        if registry.get(coding) is not _STOCK_DECODERS.get(coding):
            return True
    return False


cdef list _codings(list values):
    """The coding names of Content-Encoding header values, in order, as httpx reads them."""
    return [
        coding.strip().lower()
        for value in values
        for coding in (value.decode("latin-1") if isinstance(value, bytes) else value).split(",")
    ]


class MultiDecoder(ContentDecoder):
    """Several codings, given in the order they were applied: decoder instances
    (httpx 0.28.1) or coding names (httpx2; unknown names are skipped). More than
    `max_decode_links` codings raise DecodingError, as httpx2 does (httpx 0.28.1 has no
    cap; responses are capped the same way in the C++ chain)."""

    max_decode_links = 5

    def __init__(self, children):
        decoders = []
        for child in children:
            if isinstance(child, bytes):
                child = child.decode("latin-1")
            if isinstance(child, str):
                cls = SUPPORTED_DECODERS.get(child.strip().lower())
                if cls is None:
                    continue
                child = cls()
            decoders.append(child)
        if len(decoders) > self.max_decode_links:
            raise DecodingError(
                f"Cannot apply more than {self.max_decode_links} content encodings."
            )
        self.children = decoders[::-1]  # decoding undoes the last coding first

    def decode(self, data):
        cdef Protocol protocol = _protocol()
        if protocol == kPieces:
            return _multi_decode(self.children, data)
        for child in self.children:
            data = _joined(child.decode(data))
        return _as_protocol(bytes(data), protocol)

    def flush(self):
        cdef Protocol protocol = _protocol()
        if protocol == kPieces:
            return _multi_flush(self.children)
        data = b""
        for child in self.children:
            data = _joined(child.decode(data))
            data += _joined(child.flush())
        return _as_protocol(data, protocol)


def _piped(child, upstream):
    """`child.decode` applied to each piece of `upstream`, its pieces in order."""
    for piece in upstream:
        yield from _pieces(child.decode(piece))


def _multi_decode(children, data):
    stream = (data,)
    for child in children:
        stream = _piped(child, stream)
    yield from stream


def _multi_flush(children):
    # Each coding's end goes through the codings decoded after it (httpx2's order).
    stream = ()
    for child in children:
        stream = itertools.chain(_piped(child, stream), _pieces_of_flush(child))
    yield from stream


def _pieces_of_flush(child):
    yield from _pieces(child.flush())


# ---------------------------------------------------------------------------
# Text and re-chunking helpers (httpx's; responses use them too)


class TextDecoder:
    """Incremental bytes -> str decoding, replacing undecodable input."""

    def __init__(self, encoding="utf-8"):
        self.decoder = codecs.getincrementaldecoder(encoding)(errors="replace")

    def decode(self, data):
        return self.decoder.decode(data)

    def flush(self):
        return self.decoder.decode(b"", True)


_NEWLINES = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


class LineDecoder:
    """Incremental str.splitlines(): a trailing '\\r' waits for the next chunk."""

    def __init__(self):
        self.buffer = []
        self.trailing_cr = False

    def decode(self, str text):
        if self.trailing_cr:
            text = "\r" + text
            self.trailing_cr = False
        if text.endswith("\r"):
            self.trailing_cr = True
            text = text[:-1]
        if not text:
            return []
        cdef bint ends_with_newline = text[len(text) - 1] in _NEWLINES
        cdef list lines = text.splitlines()
        if len(lines) == 1 and not ends_with_newline:
            self.buffer.append(lines[0])
            return []
        if self.buffer:
            lines[0] = "".join(self.buffer) + lines[0]
            self.buffer = []
        if not ends_with_newline:
            self.buffer = [lines.pop()]
        return lines

    def flush(self):
        if not self.buffer and not self.trailing_cr:
            return []
        lines = ["".join(self.buffer)]
        self.buffer = []
        self.trailing_cr = False
        return lines


class _Rechunker:
    """Pieces of exactly `chunk_size` (the last may be shorter); None: as they come."""

    _empty = b""

    def __init__(self, chunk_size=None):
        self._chunk_size = chunk_size
        self._parts = []
        self._len = 0

    def decode(self, content):
        if self._chunk_size is None:
            return [content] if content else []
        size = self._chunk_size
        self._parts.append(content)
        self._len += len(content)
        if self._len < size:
            return []
        value = self._empty.join(self._parts)
        chunks = [value[i:i + size] for i in range(0, len(value), size)]
        rest = chunks.pop() if len(chunks[-1]) < size else self._empty
        self._parts = [rest] if rest else []
        self._len = len(rest)
        return chunks

    def flush(self):
        value = self._empty.join(self._parts)
        self._parts = []
        self._len = 0
        return [value] if value else []


class ByteChunker(_Rechunker):
    """Re-chunk bytes."""

    _empty = b""


class TextChunker(_Rechunker):
    """Re-chunk str."""

    _empty = ""
