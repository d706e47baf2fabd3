# cython: language_level=3, annotation_typing=False
"""Request/response body encoding and the byte-stream classes (as httpx 0.28).

`encode_request()` / `encode_response()` return (default headers, stream).
Fixed bodies become a ByteStream whose `_httprs_body` attribute holds the
bytes, so the transport can send them without iterating.
"""

import inspect
import io
import mimetypes
import os
import re
from collections.abc import AsyncIterable, Iterable, Mapping
from json import JSONEncoder
from json import dumps as json_dumps
from pathlib import Path
from urllib.parse import urlencode

from httprs._exceptions import StreamClosed, StreamConsumed
from httprs._methods import warn_inside

__all__ = [
    "AsyncByteStream",
    "AsyncIteratorByteStream",
    "ByteStream",
    "IteratorByteStream",
    "MultipartStream",
    "SyncByteStream",
    "UnattachedStream",
    "encode_request",
    "encode_response",
    "get_multipart_boundary_from_content_type",
]


cdef class _LazyAsyncIterator:
    """An async generator created on its first use.

    Cython's async generators, unlike Python's, warn "coroutine ... was never
    awaited" when collected without having been started, as when a transport
    takes a body's `__aiter__()` but the request fails before the first chunk.
    Methods that hand out an async generator return this instead: it creates
    `factory(*args)` only on the first `__anext__` / `asend` / `athrow` /
    `aclose` and delegates to it, so an unused one leaves nothing behind, and a
    started one is finalised through the event loop's asyncgen hooks as usual.
    `aclose()` / `athrow()` before any `__anext__` / `asend` do not call the
    factory (it may look at its arguments, as aiter_bytes()'s does): they act on
    an empty generator never started, as on an unstarted async generator
    (nothing / raise what is thrown), and the iterator is then finished.
    """

    cdef object _factory
    cdef tuple _args
    cdef object _gen

    def __cinit__(self, factory, *args):
        self._factory = factory
        self._args = args

    cdef object _started(self):
        if self._gen is None:
            self._gen = self._factory(*self._args)
            self._factory = None
            self._args = None
        return self._gen

    def __aiter__(self):
        return self

    def __anext__(self):
        return self._started().__anext__()

    def asend(self, value):
        return self._started().asend(value)

    cdef object _unstarted(self):
        if self._gen is None:
            self._gen = _aiter_nothing()
            self._factory = None
            self._args = None
        return self._gen

    def athrow(self, *args):
        return self._unstarted().athrow(*args)

    def aclose(self):
        return self._unstarted().aclose()


async def _aiter_nothing():
    return
    yield b""


class SyncByteStream:
    """Base class for synchronous byte streams (request or response bodies)."""

    def __iter__(self):
        raise NotImplementedError("The '__iter__' method must be implemented.")
        yield b""

    def close(self):
        """Release any network resources once the request/response cycle is over."""


class AsyncByteStream:
    """Base class for asynchronous byte streams."""

    def __aiter__(self):
        return _LazyAsyncIterator(_aiter_unimplemented)

    async def aclose(self):
        pass


# httpx defines these two classes where annotations are not strings: its `-> None` is the
# object None (a Cython annotation is always its source text).
SyncByteStream.close.__annotations__["return"] = None
AsyncByteStream.aclose.__annotations__["return"] = None


async def _aiter_unimplemented():
    raise NotImplementedError("The '__aiter__' method must be implemented.")
    yield b""


async def _aiter_one(chunk):
    yield chunk


class ByteStream(AsyncByteStream, SyncByteStream):
    """A fixed body: iterable both synchronously and asynchronously, once per pass."""

    def __init__(self, stream: bytes) -> None:
        self._stream = stream
        self._httprs_body = stream

    def __iter__(self):
        yield self._stream

    def __aiter__(self):
        return _LazyAsyncIterator(_aiter_one, self._stream)


class IteratorByteStream(SyncByteStream):
    CHUNK_SIZE = 65_536

    def __init__(self, stream):
        self._stream = stream
        self._is_stream_consumed = False
        self._is_generator = inspect.isgenerator(stream)

    def __iter__(self):
        if self._is_stream_consumed and self._is_generator:
            raise StreamConsumed()
        self._is_stream_consumed = True
        if hasattr(self._stream, "read"):
            chunk = self._stream.read(self.CHUNK_SIZE)
            while chunk:
                yield chunk
                chunk = self._stream.read(self.CHUNK_SIZE)
        else:
            for part in self._stream:
                yield part


class AsyncIteratorByteStream(AsyncByteStream):
    CHUNK_SIZE = 65_536

    def __init__(self, stream):
        self._stream = stream
        self._is_stream_consumed = False
        self._is_generator = inspect.isasyncgen(stream)

    def __aiter__(self):
        return _LazyAsyncIterator(self._aiter)

    async def _aiter(self):
        if self._is_stream_consumed and self._is_generator:
            raise StreamConsumed()
        self._is_stream_consumed = True
        if hasattr(self._stream, "aread"):
            chunk = await self._stream.aread(self.CHUNK_SIZE)
            while chunk:
                yield chunk
                chunk = await self._stream.aread(self.CHUNK_SIZE)
        else:
            async for part in self._stream:
                yield part


async def _aiter_closed():
    raise StreamClosed()
    yield b""


class UnattachedStream(AsyncByteStream, SyncByteStream):
    """The stream of an unpickled request/response: any I/O raises StreamClosed."""

    def __iter__(self):
        raise StreamClosed()

    def __aiter__(self):
        return _LazyAsyncIterator(_aiter_closed)


def primitive_value_to_str(value):
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)


def peek_filelike_length(stream):
    """The length of a file-like object without reading it, or None."""
    try:
        fd = stream.fileno()
        return os.fstat(fd).st_size
    except (AttributeError, OSError):
        pass
    try:
        offset = stream.tell()
        length = stream.seek(0, os.SEEK_END)
        stream.seek(offset)
    except (AttributeError, OSError):
        return None
    return length


def peek_filelike_remaining_length(stream):
    """The bytes left to read from a seekable file-like object (from its current
    position, which is kept), or None when it cannot tell (pipes, sockets, iterators)."""
    try:
        offset = stream.tell()
        length = stream.seek(0, os.SEEK_END)
        stream.seek(offset)
    except (AttributeError, OSError, ValueError):
        return None
    if not isinstance(offset, int) or not isinstance(length, int):
        return None
    return max(0, length - offset)


cdef inline bytes _to_bytes(value):
    return value.encode("utf-8") if isinstance(value, str) else value


# --------------------------------------------------------------------------
# Encoders


def encode_content(content):
    if isinstance(content, (bytes, str)):
        body = content.encode("utf-8") if isinstance(content, str) else content
        headers = {"Content-Length": str(len(body))} if body else {}
        return headers, ByteStream(body)
    if isinstance(content, Iterable) and not isinstance(content, dict):
        # A file is sent from its current position (httpx2; httpx 0.28.1 announced the
        # whole file's size, and the request then never completed).
        length = peek_filelike_remaining_length(content)
        if length is None:
            headers = {"Transfer-Encoding": "chunked"}
        else:
            headers = {"Content-Length": str(length)}
        return headers, IteratorByteStream(content)
    if isinstance(content, AsyncIterable):
        return {"Transfer-Encoding": "chunked"}, AsyncIteratorByteStream(content)
    raise TypeError(f"Unexpected type for 'content', {type(content)!r}")


def encode_urlencoded_data(data):
    plain = []
    for key, value in data.items():
        if isinstance(value, (list, tuple)):
            plain.extend([(key, primitive_value_to_str(item)) for item in value])
        else:
            plain.append((key, primitive_value_to_str(value)))
    body = urlencode(plain, doseq=True).encode("utf-8")
    headers = {
        "Content-Length": str(len(body)),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return headers, ByteStream(body)


def encode_multipart_data(data, files, boundary):
    multipart = MultipartStream(data=data, files=files, boundary=boundary)
    return multipart.get_headers(), multipart


cdef tuple _encode_fixed(object text, str content_type):
    # As httpx: whatever `.encode("utf-8")` gives (anything else: its AttributeError).
    body = text.encode("utf-8")
    return {"Content-Length": str(len(body)), "Content-Type": content_type}, ByteStream(body)


# httpx's JSON body settings, in one encoder for every request (json.dumps with keyword
# arguments builds a JSONEncoder per call). Only while json_dumps is the standard one:
# code that replaces httprs._content.json_dumps (as some do httpx's) is still called.
cdef object _stdlib_json_dumps = json_dumps
cdef object _json_encoder = JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False
)
cdef object _json_encode = _json_encoder.encode
# What that encoder's encode() runs for a container, called directly: the C encoder
# json.encoder builds for a one-shot encode (a new one per call: its `markers` dict,
# for cycle detection, must start empty), without encode() and iterencode()'s Python
# frames. Used only once a probe encodes to the same text as the encoder (below).
cdef object _c_make_encoder = None


cdef str _json_text(object obj):
    if _c_make_encoder is None or type(obj) is str:
        return _json_encode(obj)
    chunks = _c_make_encoder(
        {}, _json_encoder.default, _encode_basestring, None, ":", ",", False, False, False
    )(obj, 0)
    return "".join(chunks)


# A document with every kind of value and escape the fast paths write.
_JSON_PROBE = {
    "a": [1, 2.5, -0.0, 1e300, 1e-7, True, False, None, -9223372036854775808, 10, 0],
    "\u00e9\u20ac\U0001f600": {"k": "v\n\"\\\t\r\b\f\x01\x1f\x7f/", "": ()},
    "l": [[], {}, (1, "x")],
}
cdef object _encode_basestring = None
try:
    from json.encoder import c_make_encoder as _found_c_make_encoder
    from json.encoder import encode_basestring as _found_encode_basestring

    _encode_basestring = _found_encode_basestring
    _c_make_encoder = _found_c_make_encoder
    if _json_text(_JSON_PROBE) != _json_encode(_JSON_PROBE):
        _c_make_encoder = None
except Exception:  # another json module, or another C encoder signature
    _c_make_encoder = None


include "_json_body.pxi"

# _json_body is used only while it writes what the standard encoder does for a probe.
cdef bint _json_body_ok = False
try:
    _json_body_ok = _json_body(_JSON_PROBE) == _json_encode(_JSON_PROBE).encode("utf-8")
except Exception:
    _json_body_ok = False
_JSON_BODY_DIRECT = _json_body_ok  # for the tests: whether the direct writer is in use


def encode_json(json):
    cdef bytes body = None
    if json_dumps is _stdlib_json_dumps:
        if _json_body_ok:
            body = _json_body(json)
        if body is None:
            body = _json_text(json).encode("utf-8")
    else:
        text = json_dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        body = text.encode("utf-8")
    headers = {"Content-Length": str(len(body)), "Content-Type": "application/json"}
    return headers, ByteStream(body)


def encode_request(content=None, data=None, files=None, json=None, boundary=None):
    """Encode a request body; returns (default headers, stream)."""
    if data is not None and not isinstance(data, Mapping):
        # Inside httprs, as httpx's (at its Request.__init__, in `_models`).
        warn_inside(
            "Use 'content=<...>' to upload raw bytes/text content.", DeprecationWarning, "_models"
        )
        return encode_content(data)
    if content is not None:
        return encode_content(content)
    if files:
        return encode_multipart_data(data or {}, files, boundary)
    if data:
        return encode_urlencoded_data(data)
    if json is not None:
        return encode_json(json)
    return {}, ByteStream(b"")


def encode_text(text):
    """httpx's helper: a text/plain body (default headers, stream)."""
    return _encode_fixed(text, "text/plain; charset=utf-8")


def encode_html(html):
    """httpx's helper: a text/html body (default headers, stream)."""
    return _encode_fixed(html, "text/html; charset=utf-8")


def encode_response(content=None, text=None, html=None, json=None):
    """Encode a response body given to Response(); returns (default headers, stream)."""
    if content is not None:
        return encode_content(content)
    if text is not None:
        return _encode_fixed(text, "text/plain; charset=utf-8")
    if html is not None:
        return _encode_fixed(html, "text/html; charset=utf-8")
    if json is not None:
        return encode_json(json)
    return {}, ByteStream(b"")


# --------------------------------------------------------------------------
# Multipart


_FORM_REPLACEMENTS = {'"': "%22", "\\": "\\\\"}
_FORM_REPLACEMENTS.update({chr(c): "%{:02X}".format(c) for c in range(0x20) if c != 0x1B})
_FORM_RE = re.compile("|".join([re.escape(c) for c in _FORM_REPLACEMENTS]))
# A part header's name must be an RFC 9110 token, and its value carry no control
# character but TAB: a CR or LF would start another header line (or the part's body).
_PART_HEADER_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PART_HEADER_VALUE_BAD_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _format_form_param(name, value):
    """name="value" with HTML5 form escaping of quotes, backslashes and controls."""
    value = _FORM_RE.sub(lambda m: _FORM_REPLACEMENTS[m.group(0)], value)
    return f'{name}="{value}"'.encode()


def _guess_content_type(filename):
    if filename:
        return mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return None


def get_multipart_boundary_from_content_type(content_type):
    if not content_type or not content_type.startswith(b"multipart/form-data"):
        return None
    if b";" in content_type:
        for section in content_type.split(b";"):
            if section.strip().lower().startswith(b"boundary="):
                return section.strip()[len(b"boundary="):].strip(b'"')
    return None


class DataField:
    """A plain form field within a multipart body."""

    def __init__(self, name, value):
        if not isinstance(name, str):
            raise TypeError(f"Invalid type for name. Expected str, got {type(name)}: {name!r}")
        if value is not None and not isinstance(value, (str, bytes, int, float)):
            raise TypeError(
                "Invalid type for value. Expected primitive type,"
                f" got {type(value)}: {value!r}"
            )
        self.name = name
        self.value = value if isinstance(value, bytes) else primitive_value_to_str(value)
        self._headers = None

    def render_headers(self):
        if self._headers is None:
            self._headers = b"".join([
                b"Content-Disposition: form-data; ",
                _format_form_param("name", self.name),
                b"\r\n\r\n",
            ])
        return self._headers

    def render_data(self):
        return _to_bytes(self.value)

    def get_length(self):
        return len(self.render_headers()) + len(self.render_data())

    def render(self):
        yield self.render_headers()
        yield self.render_data()


class FileField:
    """A file field within a multipart body; file objects are streamed in chunks."""

    CHUNK_SIZE = 64 * 1024

    def __init__(self, name, value):
        self.name = name
        headers = {}
        content_type = None
        if isinstance(value, tuple):
            if len(value) == 2:
                filename, fileobj = value
            elif len(value) == 3:
                filename, fileobj, content_type = value
            else:
                filename, fileobj, content_type, headers = value
        else:
            filename = Path(str(getattr(value, "name", "upload"))).name
            fileobj = value
        if content_type is None:
            content_type = _guess_content_type(filename)
        has_content_type = any("content-type" in key.lower() for key in headers)
        if content_type is not None and not has_content_type:
            headers["Content-Type"] = content_type
        if isinstance(fileobj, io.StringIO):
            raise TypeError("Multipart file uploads require 'io.BytesIO', not 'io.StringIO'.")
        if isinstance(fileobj, io.TextIOBase):
            raise TypeError("Multipart file uploads must be opened in binary mode, not text mode.")
        self.filename = filename
        self.file = fileobj
        self.headers = headers
        self._headers = None

    def get_length(self):
        headers = self.render_headers()
        if isinstance(self.file, (str, bytes)):
            return len(headers) + len(_to_bytes(self.file))
        length = peek_filelike_length(self.file)
        if length is None:
            return None
        return len(headers) + length

    def render_headers(self):
        if self._headers is None:
            parts = [b"Content-Disposition: form-data; ", _format_form_param("name", self.name)]
            if self.filename:
                parts.extend([b"; ", _format_form_param("filename", self.filename)])
            for key, value in self.headers.items():
                if _PART_HEADER_NAME_RE.fullmatch(key) is None:
                    raise ValueError("Invalid multipart header name.")
                if _PART_HEADER_VALUE_BAD_RE.search(value) is not None:
                    raise ValueError("Invalid control character in multipart header value.")
                parts.extend([f"\r\n{key}: ".encode(), value.encode()])
            parts.append(b"\r\n\r\n")
            self._headers = b"".join(parts)
        return self._headers

    def render_data(self):
        if isinstance(self.file, (str, bytes)):
            yield _to_bytes(self.file)
            return
        if hasattr(self.file, "seek"):
            try:
                self.file.seek(0)
            except io.UnsupportedOperation:
                pass
        chunk = self.file.read(self.CHUNK_SIZE)
        while chunk:
            yield _to_bytes(chunk)
            chunk = self.file.read(self.CHUNK_SIZE)

    def render(self):
        yield self.render_headers()
        yield from self.render_data()


class MultipartStream(SyncByteStream, AsyncByteStream):
    """A multipart/form-data request body, streamed field by field."""

    def __init__(self, data, files, boundary=None):
        if boundary is None:
            boundary = os.urandom(16).hex().encode("ascii")
        self.boundary = boundary
        self.content_type = "multipart/form-data; boundary=%s" % boundary.decode("ascii")
        self.fields = list(self._iter_fields(data, files))

    def _iter_fields(self, data, files):
        for name, value in data.items():
            if isinstance(value, (tuple, list)):
                for item in value:
                    yield DataField(name=name, value=item)
            else:
                yield DataField(name=name, value=value)
        items = files.items() if isinstance(files, Mapping) else files
        for name, value in items:
            yield FileField(name=name, value=value)

    def iter_chunks(self):
        for field in self.fields:
            yield b"--%s\r\n" % self.boundary
            yield from field.render()
            yield b"\r\n"
        yield b"--%s--\r\n" % self.boundary

    def get_content_length(self):
        """Total length, or None when some file's size is unknown upfront."""
        n = len(self.boundary)
        total = 0
        for field in self.fields:
            length = field.get_length()
            if length is None:
                return None
            total += 2 + n + 2 + length + 2
        return total + 2 + n + 4

    def get_headers(self):
        length = self.get_content_length()
        if length is None:
            return {"Transfer-Encoding": "chunked", "Content-Type": self.content_type}
        return {"Content-Length": str(length), "Content-Type": self.content_type}

    def __iter__(self):
        for chunk in self.iter_chunks():
            yield chunk

    def __aiter__(self):
        return _LazyAsyncIterator(self._aiter)

    async def _aiter(self):
        for chunk in self.iter_chunks():
            yield chunk
