# cython: language_level=3, annotation_typing=False
"""Headers, Cookies, Request and Response: httpx 0.28's data model.

Headers keep the raw (bytes, bytes) pairs exactly as given (the transport's
list is adopted without copying); lower-cased keys and the str encoding are
computed on first use. Response bodies are read in one call when the stream
offers `_httprs_read_all()` and decoded only when Content-Encoding says so.
"""

import codecs
import datetime
import email.message
import json as jsonlib
import re
import urllib.request
from collections.abc import AsyncGenerator, Mapping, MutableMapping
from http.cookiejar import Cookie, CookieJar

from httprs._content import (
    AsyncByteStream,
    ByteStream,
    SyncByteStream,
    UnattachedStream,
    _LazyAsyncIterator,
    encode_request,
    encode_response,
    get_multipart_boundary_from_content_type,
)
from httprs._decoders import IdentityDecoder, LineDecoder, TextDecoder
from httprs._methods import python_methods
from httprs._decoders import _as_response_decoder
from httprs._decoders import _Chain as ContentDecoder
from httprs._decoders import _response_decoder
from httprs._exceptions import (
    CookieConflict,
    DecodingError,
    HTTPStatusError,
    RequestError,
    RequestNotRead,
    ResponseNotRead,
    StreamClosed,
    StreamConsumed,
)
from httprs._status_codes import HTTPX2_PHRASES, HTTPX_PHRASES, codes
from httprs._urls import URL, _zone_free

from httprs._content import AsyncIteratorByteStream, IteratorByteStream  # noqa: F401

__all__ = [
    "AsyncByteStream",
    "ByteStream",
    "Cookies",
    "Headers",
    "LineDecoder",
    "Request",
    "Response",
    "SyncByteStream",
    "TextDecoder",
]

cdef object _MISSING = object()
# A Response's `extensions` / `history` not made yet (its class defaults): made on first
# access from what _from_transport stored (_head) / as a new empty list, for a
# response _from_transport made (its _head is set); any other has none (AttributeError).
cdef object _LAZY = object()
# _class_unchanged's memos (the stock tuples are at the end of the module).
cdef unsigned int _request_tag = 0
cdef unsigned int _response_tag = 0
cdef unsigned int _headers_tag = 0
cdef unsigned int _bytestream_tag = 0
_RESPONSE_LAZY = _LAZY  # for _client's _next_request
_RESPONSE_MISSING = _MISSING  # ... (a Response's _head: not made by _from_transport)


from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Copy
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_New
from cpython.pyport cimport PY_SSIZE_T_MAX
from cpython.ref cimport Py_INCREF
from cpython.type cimport PyType_Check
from libc.string cimport memcmp

from httprs.includes.bound_stream cimport BoundStreamOps, ConnectionExtensions

from httprs.includes.pyobject cimport class_unchanged as _class_unchanged
from httprs.includes.pyobject cimport object_new as _object_new
from httprs.includes.pyobject cimport share_memo as _share_memo
from httprs.includes.pyobject cimport shared_or_none as _shared_or_none
from httprs.includes.pyobject cimport stock_method as _stock_method


cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object text)
    void* PyUnicode_DATA(object text)


# The header names whose values repr() hides, a module-level set as in httpx: code adds
# its own (`httpx._models.SENSITIVE_HEADERS.add("x-api-key")`), read at every repr.
SENSITIVE_HEADERS = {"authorization", "proxy-authorization"}


# ---------------------------------------------------------------------------
# Headers


cdef inline bytes _header_key(key, encoding):
    return key if isinstance(key, bytes) else key.encode(encoding or "ascii")


cdef inline bytes _header_value(value, encoding):
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise TypeError(f"Header value must be str or bytes, not {type(value)}")
    return value.encode(encoding or "ascii")


cdef str _stream_kind_message(str httpx_028, str current):
    """A stream-of-the-wrong-kind message: httpx 0.28.1's wording ("an sync") where httprs
    presents as that release, httpx 0.29.0's and httpx2's otherwise (an error path only)."""
    from httprs._alias import worded

    return worded(httpx_028, current)


cdef bytes _named_header_value(value, encoding, key):
    """_header_value(); presented as httpx2, a value that cannot be encoded names its
    header in the UnicodeEncodeError's reason, "... (header 'X-Name')" (httpx2 2.17);
    under the other names the error is httpx 0.28.1's, word for word."""
    try:
        return _header_value(value, encoding)
    except UnicodeEncodeError as exc:
        if _presented_as_httpx2():
            exc.reason += f" (header {key!r})"
        raise


def _normalize_header_key(key, encoding=None):
    """A header name as bytes (httpx's private helper, which code imports)."""
    return _header_key(key, encoding)


def _normalize_header_value(value, encoding=None):
    """A header value as bytes; TypeError for anything but str or bytes (httpx's
    private helper, which code imports)."""
    return _header_value(value, encoding)


# Unpacking of non-2-tuples goes through real CPython bytecode, so the errors
# (ValueError / TypeError and their messages) are exactly Python's.
_ns = {}
exec("def _unpack2(item):\n    a, b = item\n    return a, b\n", _ns)
cdef object _unpack2 = _ns["_unpack2"]
del _ns


cdef inline tuple _pair(item):
    if type(item) is tuple and len(<tuple>item) == 2:
        return <tuple>item
    return _unpack2(item)


cdef inline list _hkeys(h):
    """Lower-cased raw keys of Headers `h`, parallel to its `_raw` (built on first use)."""
    lower = h._lower
    if lower is None:
        lower = [k.lower() for k, _ in <list?>h._raw]
        h._lower = lower
    return <list?>lower


cdef bint _bytes_in(list keys, bytes key) except -1:
    """`key in keys` for a list of header names: exact bytes compared by length and
    memcmp (no rich comparison per element); anything else compared as `in` does."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(key)
    cdef const char* data = PyBytes_AS_STRING(key)
    for item in keys:
        if type(item) is bytes:
            if PyBytes_GET_SIZE(item) == n and memcmp(PyBytes_AS_STRING(item), data, n) == 0:
                return True
        elif item is key or item == key:
            return True
    return False


cdef inline bint _hhas(h, bytes lower_key) except -1:
    """Membership test for an ASCII lower-case key (encoding-independent)."""
    return _bytes_in(_hkeys(h), lower_key)


cdef bint _raw_has(list raw, bytes lower_key) except -1:
    """Whether raw header pairs hold `lower_key` (ASCII lower-case), without lower-casing
    every name: for one question asked of headers nobody has looked up yet."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(lower_key)
    cdef const char* want = PyBytes_AS_STRING(lower_key)
    cdef bytes name
    for item in raw:
        name = <bytes?>(<tuple?>item)[0]
        if PyBytes_GET_SIZE(name) == n and _lower_equals(PyBytes_AS_STRING(name), want, n):
            return True
    return False


cdef inline bint _lower_equals(const char* name, const char* lower, Py_ssize_t n):
    """name.lower() == lower for `n` bytes (bytes.lower() folds ASCII A-Z only), without
    making the lower-cased copy."""
    cdef Py_ssize_t i
    cdef unsigned char c
    for i in range(n):
        c = <unsigned char>name[i]
        if 0x41 <= c <= 0x5A:
            c += 0x20
        if c != <unsigned char>lower[i]:
            return False
    return True


cdef object _hlookup(h, key):
    """The comma-joined str value for `key`, or None when absent."""
    enc = h.encoding
    lookup = key.lower().encode(enc)
    cdef list keys = _hkeys(h)
    cdef list raw = h._raw
    cdef Py_ssize_t i
    cdef object found = None
    for i in range(len(keys)):
        if keys[i] == lookup:
            v = (<bytes?>(<tuple?>raw[i])[1]).decode(enc)
            if found is None:
                found = v
            else:
                found = found + ", " + v
    return found


cdef dict _hjoined(h):
    cdef dict out = {}
    if not h._raw:
        return out  # (no encoding read: see Headers.keys)
    enc = h.encoding
    cdef list keys = _hkeys(h)
    cdef list raw = h._raw
    cdef Py_ssize_t i
    for i in range(len(keys)):
        k = (<bytes?>keys[i]).decode(enc)
        v = (<bytes?>(<tuple?>raw[i])[1]).decode(enc)
        if k in out:
            out[k] = out[k] + ", " + v
        else:
            out[k] = v
    return out


class Headers:
    """HTTP headers: a case-insensitive multi-dict over raw byte pairs.

    A plain class (as httpx's is): subclassable, patchable, combinable with
    other bases. `_raw` is the [(raw key, value)] list in order, `_lower` the
    lower-cased keys parallel to it (None until needed).
    """

    # Defaults for the Headers the library makes without __init__ (only `_raw` set).
    _lower = None
    _encoding = None
    # A mapping is not reversible (collections.abc.Mapping says so, which httpx's
    # Headers derives from): without this, reversed() tried integer keys.
    __reversed__ = None

    def __init__(self, headers: HeaderTypes | None = None, encoding: str | None = None) -> None:
        lower = None
        if headers is None:
            raw = []
        elif isinstance(headers, Headers):
            raw, lower = _copied_lists(headers)
        elif type(headers) is dict or isinstance(headers, Mapping):
            raw = [
                (_header_key(k, encoding), _named_header_value(v, encoding, k))
                for k, v in headers.items()
            ]
        else:
            raw = []
            for item in headers:
                k, v = _pair(item)
                raw.append((_header_key(k, encoding), _named_header_value(v, encoding, k)))
        self._raw = raw
        self._lower = lower
        self._encoding = encoding

    @staticmethod
    def _from_raw(list raw):
        """Adopt a list of (bytes, bytes) pairs without copying or decoding."""
        return _headers_from_raw(raw)

    @property
    def encoding(self) -> str:
        """ascii if every header decodes as ascii, else utf-8, else iso-8859-1."""
        if self._encoding is None:
            self._encoding = _detect_encoding(self._raw)
        return self._encoding

    @encoding.setter
    def encoding(self, value: str) -> None:
        self._encoding = value

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """The raw header items, as a new list of (bytes, bytes) pairs."""
        return list(self._raw)

    def keys(self) -> typing.KeysView[str]:
        # Empty headers read no encoding, as httpx's, whose first read fixes it (to ascii
        # when empty): a later `headers[k] = v` then still encodes v as UTF-8. dict(),
        # list() and the cookie jar's view of a request without headers go through here.
        if not self._raw:
            return {}.keys()
        enc = self.encoding
        return {key.decode(enc): None for key in _hkeys(self)}.keys()

    def values(self) -> typing.ValuesView[str]:
        return _hjoined(self).values()

    def items(self) -> typing.ItemsView[str, str]:
        """(key, value) pairs; repeated keys are joined with ", "."""
        return _hjoined(self).items()

    def multi_items(self) -> list[tuple[str, str]]:
        if not self._raw:
            return []  # (no encoding read: see keys)
        enc = self.encoding
        cdef list keys = _hkeys(self)
        cdef list raw = self._raw
        return [
            ((<bytes?>keys[i]).decode(enc), (<bytes?>(<tuple?>raw[i])[1]).decode(enc))
            for i in range(len(keys))
        ]

    def get(self, key: str, default: typing.Any = None) -> typing.Any:
        found = _hlookup(self, key)
        return default if found is None else found

    def get_list(self, key: str, split_commas: bool = False) -> list[str]:
        enc = self.encoding
        lookup = key.lower().encode(enc)
        cdef list keys = _hkeys(self)
        cdef list raw = self._raw
        values = [
            (<bytes?>(<tuple?>raw[i])[1]).decode(enc)
            for i in range(len(keys))
            if keys[i] == lookup
        ]
        if not split_commas:
            return values
        out = []
        for value in values:
            out.extend([item.strip() for item in value.split(",")])
        return out

    def update(self, headers: HeaderTypes | None = None) -> None:
        if type(self) is Headers and _update_in_place(self, headers):
            return
        other = Headers(headers)
        for key in other.keys():
            if key in self:
                self.pop(key)
        _hkeys(self).extend(_hkeys(other))
        self._raw.extend(other._raw)

    def copy(self) -> Headers:
        return Headers(self, encoding=self.encoding)

    # httpx2: `headers | other` is a merged copy (other's values win), `|=` updates.
    def __or__(self, other):
        if not isinstance(other, Mapping):
            return NotImplemented
        merged = self.copy()
        merged.update(other)
        return merged

    def __ror__(self, other):
        if not isinstance(other, Mapping):
            return NotImplemented
        merged = Headers(other)
        merged.update(self)
        return merged

    def __ior__(self, other):
        self.update(other)
        return self

    @property
    def _list(self):
        """httpx's private [(raw key, lower-case key, value)] triples, as a snapshot
        (pytest-httpx's pretty printer reads it)."""
        return [(key, key.lower(), value) for key, value in self._raw]

    def __getitem__(self, key):
        found = _hlookup(self, key)
        if found is None:
            raise KeyError(key)
        return found

    def __setitem__(self, key, value):
        """Set `key`, replacing every existing entry in place of the first one."""
        enc = self._encoding or "utf-8"
        set_key = key.encode(enc)
        set_value = value.encode(enc)
        lookup = set_key.lower()
        cdef list keys = _hkeys(self)
        cdef list raw = self._raw
        found = [i for i in range(len(keys)) if keys[i] == lookup]
        for i in reversed(found[1:]):
            del raw[i]
            del keys[i]
        if found:
            raw[found[0]] = (set_key, set_value)
            keys[found[0]] = lookup
        else:
            raw.append((set_key, set_value))
            keys.append(lookup)

    def __delitem__(self, key):
        lookup = key.lower().encode(self.encoding)
        cdef list keys = _hkeys(self)
        cdef list raw = self._raw
        found = [i for i in range(len(keys)) if keys[i] == lookup]
        if not found:
            raise KeyError(key)
        for i in reversed(found):
            del raw[i]
            del keys[i]

    def __contains__(self, key):
        return key.lower().encode(self.encoding) in _hkeys(self)

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self._raw)

    def __eq__(self, other):
        try:
            o = Headers(other)
        except ValueError:
            return False
        mine = sorted(zip(_hkeys(self), [v for _, v in self._raw]))
        theirs = sorted(zip(_hkeys(o), [v for _, v in o._raw]))
        return mine == theirs

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = None

    # MutableMapping mixin methods, with the same semantics.
    def pop(self, key, default=_MISSING):
        try:
            value = self[key]
        except KeyError:
            if default is _MISSING:
                raise
            return default
        del self[key]
        return value

    def popitem(self):
        try:
            key = next(iter(self))
        except StopIteration:
            raise KeyError from None
        value = self[key]
        del self[key]
        return key, value

    def clear(self):
        # In place, as httpx's (MutableMapping's) clear: a copy.copy() shares the lists.
        del _hkeys(self)[:]
        del (<list?>self._raw)[:]

    def __getstate__(self):
        # copy.copy() shares the attributes, as httpx's: the lower-cased keys are made
        # first, so the copy and the original edit the same two parallel lists.
        _hkeys(self)
        return self.__dict__

    def setdefault(self, key, default=None):
        found = _hlookup(self, key)
        if found is not None:
            return found
        self[key] = default
        return default

    def __repr__(self):
        name = self.__class__.__name__
        enc = self.encoding
        encoding_str = "" if enc == "ascii" else f", encoding={enc!r}"
        items = [
            (k, "[secure]" if k.lower() in SENSITIVE_HEADERS else v)
            for k, v in self.multi_items()
        ]
        as_dict = dict(items)
        if len(as_dict) == len(items):
            return f"{name}({as_dict!r}{encoding_str})"
        return f"{name}({items!r}{encoding_str})"


MutableMapping.register(Headers)


cdef unsigned int _update_tag = 0  # _class_unchanged's memo for _UPDATE_STOCK


cdef bint _update_in_place(self, headers) except -1:
    """Headers.update(headers) on the lists, for an exact Headers with the stock methods
    httpx's update steps through and no encoding set yet, given a dict of ASCII str or
    bytes names and values (the client's per-request headers): the same result as
    Headers(headers), each of its names popped here (all pairs of it), then its pairs
    appended, and the encoding the first `name in self` detects kept (later writes
    encode with it, as httpx's do). False, with nothing done, for anything else (the
    steps then run as they are)."""
    if (
        type(headers) is not dict
        or self._encoding is not None
        or not _class_unchanged(Headers, &_update_tag, _UPDATE_STOCK)
    ):
        return False
    cdef list pairs = []
    cdef list names = []
    for name, value in (<dict>headers).items():
        name = _ascii_bytes(name)
        value = _ascii_bytes(value)
        if name is None or value is None:
            return False  # (non-ASCII, or not str nor bytes: the steps' own errors)
        pairs.append((name, value))
        names.append(_ascii_lower(<bytes>name))
    if not pairs:
        return True
    cdef list keys = _hkeys(self)
    cdef list raw = self._raw
    self._encoding = _detect_encoding(raw)  # what the first `name in self` does
    _drop_names(raw, keys, set(names))
    raw.extend(pairs)
    keys.extend(names)
    return True


cdef int _drop_names(list raw, list keys, set names) except -1:
    """Remove every pair whose lower-cased key is in `names` from the parallel lists, in
    place (a copy.copy() shares them) and in one pass: the kept pairs move up in order,
    then the tail goes."""
    cdef Py_ssize_t n = len(keys)
    cdef Py_ssize_t i
    cdef Py_ssize_t kept = 0
    for i in range(n):
        key = keys[i]
        if key in names:
            continue
        if kept != i:
            raw[kept] = raw[i]
            keys[kept] = key
        kept += 1
    if kept != n:
        del raw[kept:n]
        del keys[kept:n]
    return 0


cdef object _ascii_bytes(object text):
    """An ASCII str as bytes, ASCII bytes as they are; None for anything else."""
    if type(text) is str:
        if not PyUnicode_IS_ASCII(text):
            return None
        return PyBytes_FromStringAndSize(<const char*>PyUnicode_DATA(text), len(<str>text))
    if type(text) is bytes:
        return text if _bytes_ascii(<bytes>text) else None
    return None


cdef inline bint _bytes_ascii(bytes data):
    """data.isascii() for bytes (a subclass too: its own buffer is what isascii reads),
    without the method call: one test of every byte's high bit, eight bytes at a time."""
    return _ascii_only(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* Whether none of `n` bytes at `p` has its high bit set (bytes.isascii()). */
    static int httprs_ascii_only(const char *p, Py_ssize_t n) {
        uint64_t any = 0;
        Py_ssize_t i = 0;
        for (; i + 8 <= n; i += 8) {
            uint64_t word;
            memcpy(&word, p + i, 8);
            any |= word;
        }
        for (; i < n; i++) {
            any |= (unsigned char)p[i];
        }
        return (any & UINT64_C(0x8080808080808080)) == 0;
    }
    """
    bint _ascii_only "httprs_ascii_only"(const char* p, Py_ssize_t n) nogil


cdef bytes _ascii_lower(bytes name):
    """name.lower() for ASCII bytes: the same object when it has no upper case letter,
    else bytes.lower()'s new one (never written into here: PyBytes_FromStringAndSize
    hands out shared objects, such as the one-byte singletons)."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(name)
    cdef const char* data = PyBytes_AS_STRING(name)
    cdef Py_ssize_t i
    for i in range(n):
        if 65 <= data[i] <= 90:
            return name.lower()
    return name


cdef object _headers_from_raw(list raw):
    if PyType_Check(Headers) and not _class_unchanged(Headers, &_headers_tag, _HEADERS_STOCK):
        return Headers(raw)  # a patched Headers.__init__ is called, as httpx calls it
    h = _object_new(Headers)
    h._raw = raw
    return h


cdef str _detect_encoding(list raw):
    cdef bint ascii = True
    for item in raw:
        if type(item) is tuple and len(<tuple>item) == 2:  # (an exact pair, not unpacked)
            key = (<tuple>item)[0]
            value = (<tuple>item)[1]
        else:
            key, value = item
        if not (_bytes_ascii(<bytes?>key) and _bytes_ascii(<bytes?>value)):
            ascii = False
            break
    if ascii:
        return "ascii"
    try:
        for key, value in raw:
            key.decode("utf-8")
            value.decode("utf-8")
    except UnicodeDecodeError:
        return "iso-8859-1"
    return "utf-8"


# ---------------------------------------------------------------------------
# Text decoding helpers


cdef class _Chunker:
    """Re-chunk a stream of bytes or str into pieces of exactly chunk_size, each made
    only when it is asked for (_ChunkSlices): a 2 MiB raw chunk with chunk_size=1 is
    not two million objects before the first one is yielded."""

    cdef object _size
    cdef list _parts
    cdef Py_ssize_t _len
    cdef object _empty

    def __init__(self, chunk_size, empty):
        # A size past what any piece can hold is "all of it", as httpx takes it (its
        # comparisons never overflow).
        if isinstance(chunk_size, int) and chunk_size > PY_SSIZE_T_MAX:
            chunk_size = PY_SSIZE_T_MAX
        self._size = chunk_size
        self._parts = []
        self._len = 0
        self._empty = empty

    cdef object decode(self, content):
        """The pieces `content` completes, as an iterable; what is left over is kept
        for the next call (before any piece is taken)."""
        if self._size is None:
            return (content,) if content else ()
        cdef Py_ssize_t size = self._size
        if size <= 0:
            return self._decode_all(content)  # (range()'s errors, as before)
        if type(content) is not type(self._empty):
            content = self._empty.join((content,))  # bytearray, str subclass: the joined type
        cdef Py_ssize_t n = len(content)
        if self._len + n < size:
            if n:
                self._parts.append(content)
                self._len += n
            return ()
        cdef Py_ssize_t start = 0
        first = None
        if self._len:
            # The piece the kept bytes begin: only it is joined, not all of `content`.
            start = size - self._len
            self._parts.append(content[:start])
            first = self._empty.join(self._parts)
        cdef Py_ssize_t end = start + (n - start) // size * size
        self._parts = [content[end:]] if end < n else []
        self._len = n - end
        return _ChunkSlices(first, content, start, end, size)

    cdef list _decode_all(self, content):
        self._parts.append(content)
        self._len += len(content)
        if self._len < self._size:
            return []
        value = self._empty.join(self._parts)
        chunks = [value[i:i + self._size] for i in range(0, len(value), self._size)]
        if len(chunks[-1]) == self._size:
            self._parts = []
            self._len = 0
            return chunks
        last = chunks.pop()
        self._parts = [last]
        self._len = len(last)
        return chunks

    cdef list flush(self):
        value = self._empty.join(self._parts)
        self._parts = []
        self._len = 0
        return [value] if value else []


cdef class _ChunkSlices:
    """_Chunker.decode's pieces: `first` (unless None), then content[start:end] in
    slices of `size`, each made as the iteration gets to it."""

    cdef object first
    cdef object content
    cdef Py_ssize_t pos
    cdef Py_ssize_t end
    cdef Py_ssize_t size

    def __cinit__(self, first, content, Py_ssize_t start, Py_ssize_t end, Py_ssize_t size):
        self.first = first
        self.content = content
        self.pos = start
        self.end = end
        self.size = size

    def __iter__(self):
        return self

    def __next__(self):
        if self.first is not None:
            first = self.first
            self.first = None
            return first
        if self.pos >= self.end:
            self.content = None
            raise StopIteration
        pos = self.pos
        self.pos += self.size
        return self.content[pos:pos + self.size]


# ---------------------------------------------------------------------------
# Request


# Methods that are their own upper case (Request skips the `.upper()` copy for them).
cdef frozenset _UPPER_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "QUERY"}
)


cdef object _copy_headers(object src):
    """Headers(src) for a Headers `src`: its lists copied, nothing converted."""
    if PyType_Check(Headers) and not _class_unchanged(Headers, &_headers_tag, _HEADERS_STOCK):
        return Headers(src)
    raw, lower = _copied_lists(src)
    h = _object_new(Headers)
    h._raw = raw
    h._lower = lower
    return h


cdef tuple _copied_lists(src):
    """Copies of Headers `src`'s pairs and lower-cased keys (made once on the source: a
    client's defaults, copied into every request), the keys None (made on first use)
    unless they are the pairs' names lower-cased: each copy allocates, which may run
    Python code (a collection's finalisers, another thread) that edits `src` between
    the two."""
    keys = _hkeys(src)
    raw = list(src._raw)
    lower = list(keys)
    return raw, (lower if _lower_keys_of(raw, lower) else None)


cdef bint _lower_keys_of(list raw, list keys) except -1:
    """Whether `keys` are the names of the pairs `raw` lower-cased (exact bytes only)."""
    cdef Py_ssize_t i
    cdef Py_ssize_t n = len(raw)
    if len(keys) != n:
        return False
    for i in range(n):
        item = raw[i]
        key = keys[i]
        if not (type(item) is tuple and len(<tuple>item) == 2 and type(key) is bytes):
            return False
        name = (<tuple>item)[0]
        if not (
            type(name) is bytes
            and PyBytes_GET_SIZE(name) == PyBytes_GET_SIZE(key)
            and _lower_equals(PyBytes_AS_STRING(name), PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key))
        ):
            return False
    return True


cdef object _byte_stream(bytes body):
    """ByteStream(body) when ByteStream is the stock class (no __init__ call)."""
    if not _class_unchanged(ByteStream, &_bytestream_tag, _BYTESTREAM_STOCK):
        return ByteStream(body)
    return _stock_byte_stream(body)


cdef inline object _stock_byte_stream(bytes body):
    """ByteStream(body) for the stock class, whose __init__ sets these two."""
    stream = _object_new(ByteStream)
    stream._stream = body
    stream._httprs_body = body
    return stream


# The ByteStream of b"" that requests without a body share (_empty_stream): a memo of
# shared_or_none / share_memo, or None.
cdef tuple _empty_stream_memo = None


cdef object _empty_stream():
    """_byte_stream(b""), shared: a ByteStream has no setters and reading it changes
    nothing, so every request without a body may have the same one, handed out while
    its attribute dict is unchanged (shared_or_none). Code that writes to it all the
    same keeps it: the next request makes and shares a new one. Where the version is
    unreadable (3.12+), or ByteStream's __init__ is patched, one per request."""
    global _empty_stream_memo
    if not _class_unchanged(ByteStream, &_bytestream_tag, _BYTESTREAM_STOCK):
        return ByteStream(b"")
    stream = _shared_or_none(_empty_stream_memo, ByteStream)
    if stream is None:
        stream = _stock_byte_stream(b"")
        _empty_stream_memo = _share_memo(stream, ByteStream)
    return stream


cdef int _init_request(
    object self, object method, object url, object params, object headers, object cookies,
    object content, object data, object files, object json, object stream, dict extensions,
    dict timeout,
) except -1:
    """Request.__init__'s work; `extensions` is the request's own dict already, or None
    for a client's request whose extensions is {"timeout": a copy of `timeout`}, a
    snapshot shared by the client's requests (never written)."""
    if type(method) is str and method in _UPPER_METHODS:
        self_method = method
    else:
        self_method = method.upper()
    self.method = self_method
    if params is not None:
        self_url = URL(url, params=params)
    elif type(url) is URL:
        self_url = url  # URLs are immutable: shared, not copied
    else:
        self_url = URL(url)
    self.url = self_url
    if (
        cookies is None
        and stream is None
        and data is None
        and files is None
        and json is None
        and (content is None or type(content) is bytes)
        and (headers is None or type(headers) is Headers)
        and PyType_Check(Headers)
        and _class_unchanged(Headers, &_headers_tag, _HEADERS_STOCK)
        and type(self) is Request
        and _class_unchanged(Request, &_request_tag, _REQUEST_STOCK)
    ):
        _init_stock_request(self, headers, extensions, timeout, content, self_url, self_method)
        return 0
    if type(headers) is Headers:
        h = _copy_headers(headers)
    else:
        h = Headers(headers)
    self.headers = h
    if extensions is None:
        extensions = {"timeout": PyDict_Copy(timeout)}
    if type(self) is Request and _class_unchanged(Request, &_request_tag, _REQUEST_STOCK):
        self._ext = extensions  # what the stock `extensions` setter does on a new request
    else:
        self.extensions = extensions
    if cookies:
        Cookies(cookies).set_cookie_header(self)
    if stream is not None:
        self.stream = stream
        return 0
    if data is None and files is None and json is None and content is None:
        default_headers = None
        stream = _empty_stream()
    elif data is None and files is None and json is None and type(content) is bytes:
        # What encode_request(content=content) gives for exact bytes, without its calls.
        default_headers = {"Content-Length": str(len(<bytes>content))} if content else {}
        stream = _byte_stream(<bytes>content)
    else:
        boundary = None
        if files:
            content_type = h.get("content-type")
            if content_type:
                boundary = get_multipart_boundary_from_content_type(
                    content_type.encode(h.encoding)
                )
        default_headers, stream = encode_request(
            content=content, data=data, files=files, json=json, boundary=boundary
        )
    if type(self) is Request and _class_unchanged(Request, &_request_tag, _REQUEST_STOCK):
        _prepare_request(self, h, default_headers, self_url, self_method)
    else:
        self._prepare(default_headers)
    self.stream = stream
    if type(stream) is ByteStream:
        self._body = stream._stream
    elif isinstance(stream, ByteStream):
        self.read()
    return 0


cdef bytes _CONTENT_LENGTH = b"content-length"
cdef bytes _TRANSFER_ENCODING = b"transfer-encoding"
# The names the body encoders give -> (lower-cased, as sent) bytes: ASCII, so the same
# under the encodings Headers detects.
cdef dict _ENCODER_NAMES = {
    "Content-Length": (_CONTENT_LENGTH, b"Content-Length"),
    "Transfer-Encoding": (_TRANSFER_ENCODING, b"Transfer-Encoding"),
    "Content-Type": (b"content-type", b"Content-Type"),
}


cdef int _set_default_header(object h, object key, object value) except -1:
    """h.setdefault(key, value), done on the lists for an exact Headers and the str names
    and values the body encoders give (an ASCII name encodes and lower-cases alike under
    every encoding Headers uses); anything else through setdefault itself."""
    cdef list keys
    cdef tuple known
    if type(h) is Headers and type(key) is str and type(value) is str and h._encoding is None:
        known = <tuple?>_ENCODER_NAMES.get(key)
        if known is not None:  # the encoders' own names: nothing to encode or lower-case
            keys = _hkeys(h)
            if _bytes_in(keys, <bytes>known[0]):
                return 0
            (<list?>h._raw).append((known[1], (<str>value).encode("utf-8")))
            keys.append(known[0])
            return 0
    if not (
        type(h) is Headers and type(key) is str and type(value) is str and (<str>key).isascii()
    ):
        h.setdefault(key, value)
        return 0
    keys = _hkeys(h)
    lookup = (<str>key).lower().encode("ascii")
    if _bytes_in(keys, lookup):
        return 0
    enc = h._encoding or "utf-8"  # what __setitem__ encodes with
    (<list?>h._raw).append(((<str>key).encode(enc), (<str>value).encode(enc)))
    keys.append(lookup)
    return 0


cdef bytes _HOST = b"Host"
cdef tuple _ZERO_LENGTH = (b"Content-Length", b"0")  # (a tuple: shared by the requests)
# Methods whose empty body is still framed (`Content-Length: 0`); QUERY as httpx2 2.11.
cdef frozenset _EMPTY_BODY_LENGTH_METHODS = frozenset(("POST", "PUT", "PATCH", "QUERY"))


cdef inline object _host_value(object netloc):
    """The Host value for a netloc: an IPv6 host's zone id left out (httpx2 2.17)."""
    if (
        type(netloc) is bytes
        and PyBytes_GET_SIZE(netloc) != 0
        and PyBytes_AS_STRING(netloc)[0] == 91  # "["
    ):
        return _zone_free(netloc)
    return netloc


cdef object _host_pair(object url):
    """(b"Host", url.netloc without an IPv6 zone id) for a URL with a host, else None."""
    if type(url) is URL:
        pair = url._host_pair  # made for a URL the client's requests share
        if pair is not None:
            return pair
        # An httprs URL's `host` is its `_host` (IDNA-decoded, so empty alike), its
        # `netloc` the made `_netloc` (else the property makes it).
        if url._host:
            netloc = url._netloc
            return (_HOST, _host_value(url.netloc if netloc is None else netloc))
    elif url.host:
        return (_HOST, _host_value(url.netloc))
    return None


cdef object _alias_primary = None  # httprs._alias.primary, looked up once


cdef bint _presented_as_httpx2() except -1:
    """Whether httprs presents as httpx2 (the switch's primary name), for the behaviours
    this module follows per library."""
    global _alias_primary
    if _alias_primary is None:
        from httprs._alias import primary  # (imported late: _alias imports this module)

        _alias_primary = primary
    return _alias_primary() == "httpx2"


cdef str _default_reason_phrase(object status_code):
    """The reason phrase of a response without one of its own: httpx's, or httpx2's
    (RFC 9110's for 413, 414, 416, 422) presented as httpx2."""
    phrases = HTTPX2_PHRASES if _presented_as_httpx2() else HTTPX_PHRASES
    return phrases.get(status_code, "")


cdef bint _chunked_by_caller(object h) except -1:
    """Whether the caller's Transfer-Encoding keeps the body's Content-Length out of the
    request's headers: presented as httpx2 (2.11). httpx 0.28.1 keeps both there; either
    way only the Transfer-Encoding goes on httprs's wire."""
    return _hhas(h, _TRANSFER_ENCODING) and _presented_as_httpx2()


cdef int _prepare_request(
    object self, object h, object default_headers, object url, object method
) except -1:
    """Request._prepare: body headers, then Host / Content-Length prepended as httpx does.
    `url` and `method` are the request's (its `url` and `method` attributes)."""
    if not isinstance(h, Headers):
        h = self.headers = Headers(h)
    # Whether Content-Length or Transfer-Encoding is known to be set (by the defaults).
    cdef bint framed = False
    cdef tuple known
    if default_headers:
        for key, value in default_headers.items():
            known = <tuple?>_ENCODER_NAMES.get(key) if type(key) is str else None
            # A framing header the caller set keeps the body's other one out (httpx: an
            # explicit Content-Length drops Transfer-Encoding; httpx2 2.11 also the reverse).
            if known is not None:
                framed = framed or known[0] is _CONTENT_LENGTH or known[0] is _TRANSFER_ENCODING
                if known[0] is _TRANSFER_ENCODING and _hhas(h, _CONTENT_LENGTH):
                    continue
                if known[0] is _CONTENT_LENGTH and _chunked_by_caller(h):
                    continue
            elif key.lower() == "transfer-encoding" and _hhas(h, _CONTENT_LENGTH):
                continue
            elif key.lower() == "content-length" and _chunked_by_caller(h):
                continue
            _set_default_header(h, key, value)
        framed = framed and type(h) is Headers  # (a subclass's setdefault may differ)
    cdef list keys = _hkeys(h)
    # The Host pair to prepend.
    host = None if _bytes_in(keys, b"host") else _host_pair(url)
    # Prepended as httpx does: Host first, then Content-Length (inserted first here).
    if (
        (method in _EMPTY_BODY_LENGTH_METHODS if type(method) is str else (
            method == "POST" or method == "PUT" or method == "PATCH" or method == "QUERY"
        ))
        and not framed
        and not _bytes_in(keys, _CONTENT_LENGTH)
        and not _bytes_in(keys, _TRANSFER_ENCODING)
    ):
        (<list?>h._raw).insert(0, _ZERO_LENGTH)
        keys.insert(0, _CONTENT_LENGTH)
    if host is not None:
        (<list?>h._raw).insert(0, host)
        keys.insert(0, b"host")
    # httpx rebuilds the Headers here, which forgets any detected encoding.
    if h._encoding is not None:
        h._encoding = None
    return 0


cdef int _init_stock_request(
    object self, object src, dict extensions, dict timeout, object content, object url,
    object method,
) except -1:
    """_init_request's rest for a stock Request with exact Headers `src` (or None), no
    cookies, and no body or an exact bytes one, all classes stock: the same attributes
    in the same order, the headers built whole (_stock_request_headers) rather than
    copied, defaulted and prepended to, and the body known without reading it back. A
    client's request keeps its timeout snapshot, its extensions dict is made on first
    access (`extensions` None, see Request)."""
    self.headers = _stock_request_headers(src, content, url, method)
    if extensions is None:
        self._ext_timeout = timeout
    else:
        self._ext = extensions  # what the stock `extensions` setter does on a new request
    if content is None:
        body = b""
        stream = _empty_stream()
    else:
        body = content
        stream = _byte_stream(<bytes>content)
    self.stream = stream
    if type(stream) is ByteStream:
        # A stock ByteStream's `_stream` is the body it was made of (the shared empty one
        # is handed out only while its attributes are unchanged); else read it.
        self._body = (
            body if _class_unchanged(ByteStream, &_bytestream_tag, _BYTESTREAM_STOCK)
            else stream._stream
        )
    elif isinstance(stream, ByteStream):
        self.read()
    return 0


cdef list _NO_KEYS = []  # (only read)


cdef object _stock_request_headers(object src, object content, object url, object method):
    """What copying Headers `src` (or None) into a stock Request, then its body's default
    headers (Content-Length for non-empty bytes `content`) and _prepare_request give:
    [Host, Content-Length: 0, *src, Content-Length], each where httpx puts it, in one new
    list. The lower-cased keys are left to be made on first use (_hkeys): the request
    path reads only the pairs."""
    cdef list src_raw = [] if src is None else <list?>src._raw
    cdef list keys = _NO_KEYS if src is None else _hkeys(src)
    host = None if _bytes_in(keys, b"host") else _host_pair(url)
    length = None  # the body's Content-Length, appended when not given
    if content:
        if not _bytes_in(keys, _CONTENT_LENGTH) and not (
            _bytes_in(keys, _TRANSFER_ENCODING) and _presented_as_httpx2()
        ):
            length = (b"Content-Length", str(len(<bytes>content)).encode("ascii"))
    elif (
        (method in _EMPTY_BODY_LENGTH_METHODS if type(method) is str else (
            method == "POST" or method == "PUT" or method == "PATCH" or method == "QUERY"
        ))
        and not _bytes_in(keys, _CONTENT_LENGTH)
        and not _bytes_in(keys, _TRANSFER_ENCODING)
    ):
        length = _ZERO_LENGTH  # prepended (after Host)
    cdef Py_ssize_t n = len(src_raw)
    cdef Py_ssize_t size = n + (host is not None) + (length is not None)
    cdef list raw = PyList_New(size)
    if len(src_raw) != n:
        # Another thread changed `src` (a client's own headers) during the allocation (a
        # collection may run Python code): start again from its pairs as they are now.
        return _stock_request_headers(src, content, url, method)
    cdef Py_ssize_t at = 0
    cdef Py_ssize_t i
    if host is not None:
        _put(raw, 0, host)
        at = 1
    if length is _ZERO_LENGTH:
        _put(raw, at, length)
        at += 1
    for i in range(n):
        _put(raw, at + i, src_raw[i])
    if length is not None and length is not _ZERO_LENGTH:
        _put(raw, size - 1, length)
    h = _object_new(Headers)
    h._raw = raw
    return h


cdef inline void _put(list items, Py_ssize_t i, object item):
    """items[i] = item in a list made by PyList_New (its slot still empty)."""
    Py_INCREF(item)
    PyList_SET_ITEM(items, i, item)



class Request:
    """An HTTP request (httpx.Request): a plain class, as httpx's is."""

    _body = None  # the body once read (httpx's `_content`)
    # `extensions` (a property): the dict once made or set, _MISSING once deleted. A
    # client's request starts with none made (`_ext` is the class default _LAZY) and its
    # timeout snapshot in `_ext_timeout` (shared by the client's requests and never
    # written: _request_extensions copies it into the dict it makes on first access);
    # `_ext_timeout` is None once the dict is made or set, so a stock request's timeout
    # is `_ext_timeout` while that is not None, else in `extensions`.
    _ext = _LAZY
    _ext_timeout = None

    def __init__(
        self,
        method: str,
        url: URL | str,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        stream: SyncByteStream | AsyncByteStream | None = None,
        extensions: RequestExtensions | None = None,
    ) -> None:
        _init_request(
            self, method, url, params, headers, cookies, content, data, files, json, stream,
            {} if extensions is None else dict(extensions), None,
        )

    @staticmethod
    def _for_client(method, url, params, headers, cookies, content, data, files, json,
                    dict extensions, dict timeout=None):
        """Request(...) as a client's build_request makes it, with `extensions` adopted
        (the client made that dict for this request), or None: then {"timeout": a copy
        of `timeout`}, made on first access (`timeout` is the client's snapshot, shared
        and never written). Callers check that `Request` is this class; a patched
        `Request.__init__` is called as usual."""
        if not _class_unchanged(Request, &_request_tag, _REQUEST_STOCK):
            if extensions is None:
                extensions = {"timeout": PyDict_Copy(timeout)}
            return Request(
                method, url, params=params, headers=headers, cookies=cookies,
                content=content, data=data, files=files, json=json, extensions=extensions,
            )
        r = _object_new(Request)
        _init_request(
            r, method, url, params, headers, cookies, content, data, files, json, None,
            extensions, timeout,
        )
        return r

    def _prepare(self, default_headers):
        """Apply body headers, then prepend Host / Content-Length as httpx does."""
        _prepare_request(self, self.headers, default_headers, self.url, self.method)

    @property
    def extensions(self):
        ext = self._ext
        if ext is _LAZY or ext is _MISSING:
            return _request_extensions(self)
        return ext

    @extensions.setter
    def extensions(self, value):
        self._ext = value
        if self._ext_timeout is not None:
            self._ext_timeout = None

    @extensions.deleter
    def extensions(self):
        ext = self._ext
        if ext is _MISSING or (ext is _LAZY and self._ext_timeout is None):
            raise AttributeError(_no_attribute(self, "extensions"))
        self._ext = _MISSING
        if self._ext_timeout is not None:
            self._ext_timeout = None

    @property
    def content(self) -> bytes:
        if self._body is None:
            raise RequestNotRead()
        return self._body

    def read(self) -> bytes:
        """Read and return the request body."""
        if self._body is None:
            assert hasattr(self.stream, "__iter__")
            self._body = b"".join(self.stream)
            if not isinstance(self.stream, ByteStream):
                self.stream = ByteStream(self._body)
        return self._body

    async def aread(self) -> bytes:
        """Read and return the request body."""
        if self._body is None:
            assert hasattr(self.stream, "__aiter__")
            self._body = b"".join([part async for part in self.stream])
            if not isinstance(self.stream, ByteStream):
                self.stream = ByteStream(self._body)
        return self._body

    def __repr__(self):
        return f"<{self.__class__.__name__}({self.method!r}, {str(self.url)!r})>"

    @property
    def _content(self):
        if self._body is None:
            raise AttributeError("_content")
        return self._body

    @_content.setter
    def _content(self, value):
        self._body = value

    @_content.deleter
    def _content(self):
        self._body = None

    # -- pickling and copy (stream and extensions are not carried over) --

    def __getstate__(self):
        state = dict(vars(self))
        for name in _UNPICKLED_REQUEST_ATTRS:
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        for name, value in state.items():
            setattr(self, name, value)
        self.extensions = {}
        self.stream = UnattachedStream()


# Not carried over by pickle / copy (as httpx's): the extensions and the stream.
cdef tuple _UNPICKLED_REQUEST_ATTRS = ("extensions", "_ext", "_ext_timeout", "stream")


cdef object _request_extensions(self):
    """A Request's `extensions` when `_ext` holds none (_LAZY or _MISSING): a client's
    request's dict, made from its timeout snapshot on first access and kept (no Python
    code runs between the check and the stores: two threads asking at once get the same
    dict); else AttributeError, as for an httpx attribute never set or deleted."""
    timeout = self._ext_timeout
    if self._ext is _MISSING or timeout is None:
        raise AttributeError(_no_attribute(self, "extensions"))
    ext = {"timeout": PyDict_Copy(timeout)}
    current = self._ext
    if current is _MISSING:  # deleted by another thread meanwhile (rev-request LOW 3)
        raise AttributeError(_no_attribute(self, "extensions"))
    if current is not _LAZY:  # set (or made by another thread) meanwhile
        return current
    self._ext = ext
    self._ext_timeout = None
    return ext


# ---------------------------------------------------------------------------
# Response


cdef object _parse_charset(str content_type):
    if "charset" not in content_type.lower():
        return None
    msg = email.message.Message()
    msg["content-type"] = content_type
    return msg.get_content_charset(failobj=None)


cdef bint _encoding_known(encoding):
    try:
        codecs.lookup(encoding)
    except LookupError:
        return False
    return True


# httpx's private helpers of these names (code imports them from httpx._models).
def _parse_content_type_charset(content_type):
    return _parse_charset(content_type)


def _is_known_encoding(encoding):
    return _encoding_known(encoding)


def _parse_header_links(value):
    links = []
    strip_chars = " '\""
    value = value.strip(strip_chars)
    if not value:
        return links
    for val in re.split(", *<", value):
        try:
            url, params = val.split(";", 1)
        except ValueError:
            url, params = val, ""
        link = {"url": url.strip("<> '\"")}
        for param in params.split(";"):
            try:
                key, param_value = param.split("=")
            except ValueError:
                break
            link[key.strip(strip_chars)] = param_value.strip(strip_chars)
        links.append(link)
    return links


_REDIRECT_CODES = (301, 302, 303, 307, 308)
# Not carried over by pickle / copy: live I/O state, and the cookie jar (its lock).
_UNPICKLED_RESPONSE_ATTRS = frozenset(
    {"extensions", "_ext", "_head", "_conn", "stream", "is_closed", "_decoder", "_cookie_jar"}
)
_ERROR_TYPES = {
    1: "Informational response",
    3: "Redirect response",
    4: "Client error",
    5: "Server error",
}


class Response:
    """An HTTP response (httpx.Response): a plain class, as httpx's is.

    State that httpx creates lazily starts as a class-level default here.
    """

    _req = None  # httpx's `_request`
    _body = None  # httpx's `_content`
    _txt = None  # httpx's `_text`
    _enc = _MISSING  # httpx's `_encoding`
    _decoder = _MISSING
    _elap = _MISSING  # httpx's `_elapsed`
    # Elapsed seconds the client recorded (one store), newer than `_elap` while not None:
    # made into `_elap` when first asked for; setting `elapsed` clears it.
    _elap_s = None
    _cookie_jar = None
    _nbytes = 0  # httpx's `_num_bytes_downloaded`
    # `extensions`: the dict once made or set, _MISSING once deleted; _LAZY: made from
    # _head, (http_version, reason_phrase or None for none), the http_version and
    # reason_phrase extensions; _MISSING: not made by _from_transport, so none.
    _ext = _LAZY
    _head = _MISSING
    # A transport response's body in the C++ core: its connection's extensions
    # (network_stream, stream_id) join the dict _made_extensions makes.
    _conn = None
    # `history`: the list once made or set, _MISSING once deleted; _LAZY: a new empty list
    # for a response _from_transport made, none for any other.
    _hist = _LAZY
    next_request = None
    is_closed = False
    is_stream_consumed = False
    default_encoding = "utf-8"

    def __init__(
        self,
        status_code: int,
        *,
        headers: HeaderTypes | None = None,
        content: ResponseContent | None = None,
        text: str | None = None,
        html: str | None = None,
        json: typing.Any = None,
        stream: SyncByteStream | AsyncByteStream | None = None,
        request: Request | None = None,
        extensions: ResponseExtensions | None = None,
        history: list[Response] | None = None,
        default_encoding: str | typing.Callable[[bytes], str] = "utf-8",
    ) -> None:
        self.status_code = status_code
        self.headers = Headers(headers)
        if request is not None:
            self._req = request
        self.extensions = {} if extensions is None else dict(extensions)
        self.history = [] if history is None else list(history)
        self.default_encoding = default_encoding
        if stream is None:
            default_headers, stream = encode_response(content, text, html, json)
            self._prepare(default_headers)  # (as httpx: an override or a patch is called)
            self.stream = stream
            if isinstance(stream, ByteStream):
                self.read()
        else:
            self.stream = stream
        self._nbytes = 0  # as httpx: reading a fixed body does not count as downloading

    @staticmethod
    def _from_transport(status_code, list raw_headers, stream, bytes http_version,
                        bytes reason_phrase):
        """The transports' factory: adopts raw headers as-is, decodes nothing. HTTP/2
        responses have no reason phrase (None): httpcore's extensions then lack it.
        A patched `Response.__init__` is called, as httpx's transports call it.
        (httprs._core calls _transport_response, its body, directly.)"""
        return _transport_response(
            status_code, raw_headers, stream, http_version, reason_phrase, None
        )

    @property
    def extensions(self):
        ext = self._ext
        return _made_extensions(self) if ext is _LAZY else _lazy_value(self, ext, "extensions")

    @extensions.setter
    def extensions(self, value):
        self._ext = value

    @extensions.deleter
    def extensions(self):
        _lazy_value(self, self._ext, "extensions")
        self._ext = _MISSING

    @property
    def history(self):
        hist = self._hist
        return _made_history(self) if hist is _LAZY else _lazy_value(self, hist, "history")

    @history.setter
    def history(self, value):
        self._hist = value

    @history.deleter
    def history(self):
        _lazy_value(self, self._hist, "history")
        self._hist = _MISSING

    @property
    def elapsed(self) -> datetime.timedelta:
        """Time taken for the complete request/response cycle."""
        elapsed = _elapsed_of(self)
        if elapsed is _MISSING:
            raise RuntimeError(
                "'.elapsed' may only be accessed after the response has been read or closed."
            )
        return elapsed

    @elapsed.setter
    def elapsed(self, value: datetime.timedelta) -> None:
        _set_elapsed(self, value)

    @property
    def request(self) -> Request:
        if self._req is None:
            raise RuntimeError("The request instance has not been set on this response.")
        return self._req

    @request.setter
    def request(self, value: Request) -> None:
        self._req = value

    @property
    def http_version(self) -> str:
        if _lazy_extensions(self):
            return (<bytes>(<tuple>self._head)[0]).decode("ascii", errors="ignore")
        try:
            version = self.extensions["http_version"]
        except KeyError:
            return "HTTP/1.1"
        return version.decode("ascii", errors="ignore")

    @property
    def reason_phrase(self) -> str:
        if _lazy_extensions(self):
            phrase = (<tuple>self._head)[1]
            if phrase is None:
                return _default_reason_phrase(self.status_code)
            return (<bytes?>phrase).decode("ascii", errors="ignore")
        try:
            phrase = self.extensions["reason_phrase"]
        except KeyError:
            return _default_reason_phrase(self.status_code)
        return phrase.decode("ascii", errors="ignore")

    @property
    def url(self) -> URL:
        return self.request.url

    @property
    def content(self) -> bytes:
        if self._body is None:
            raise ResponseNotRead()
        return self._body

    @property
    def text(self) -> str:
        if self._txt is None:
            content = self.content
            if not content:
                self._txt = ""
            else:
                decoder = TextDecoder(self.encoding or "utf-8")
                self._txt = decoder.decode(content) + decoder.flush()
        return self._txt

    @property
    def encoding(self) -> str | None:
        """Explicit .encoding, else the Content-Type charset, else default_encoding."""
        if self._enc is _MISSING:
            encoding = self.charset_encoding
            if encoding is None or not _encoding_known(encoding):
                if isinstance(self.default_encoding, str):
                    encoding = self.default_encoding
                elif self._body is not None:
                    encoding = self.default_encoding(self._body)
            self._enc = encoding or "utf-8"
        return self._enc

    @encoding.setter
    def encoding(self, value: str) -> None:
        if self._txt is not None:
            raise ValueError("Setting encoding after `text` has been accessed is not allowed.")
        self._enc = value

    @property
    def charset_encoding(self) -> str | None:
        content_type = self.headers.get("Content-Type")
        if content_type is None:
            return None
        return _parse_charset(content_type)

    @property
    def is_informational(self) -> bool:
        return 100 <= self.status_code <= 199

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code <= 299

    @property
    def is_redirect(self) -> bool:
        return 300 <= self.status_code <= 399

    @property
    def is_client_error(self) -> bool:
        return 400 <= self.status_code <= 499

    @property
    def is_server_error(self) -> bool:
        return 500 <= self.status_code <= 599

    @property
    def is_error(self) -> bool:
        return 400 <= self.status_code <= 599

    @property
    def has_redirect_location(self) -> bool:
        return self.status_code in _REDIRECT_CODES and "Location" in self.headers

    def raise_for_status(self) -> Response:
        """Raise HTTPStatusError for non-2xx responses; return self otherwise."""
        request = self._req
        if request is None:
            raise RuntimeError(
                "Cannot call `raise_for_status` as the request "
                "instance has not been set on this response."
            )
        if self.is_success:
            return self
        if self.has_redirect_location:
            message = (
                "{error_type} '{0.status_code} {0.reason_phrase}' for url '{0.url}'\n"
                "Redirect location: '{0.headers[location]}'\n"
                "For more information check: "
                "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/{0.status_code}"
            )
        else:
            message = (
                "{error_type} '{0.status_code} {0.reason_phrase}' for url '{0.url}'\n"
                "For more information check: "
                "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/{0.status_code}"
            )
        error_type = _ERROR_TYPES.get(self.status_code // 100, "Invalid status code")
        message = message.format(self, error_type=error_type)
        raise HTTPStatusError(message, request=request, response=self)

    def json(self, **kwargs: typing.Any) -> typing.Any:
        content = self.content
        if not kwargs and jsonlib.loads is _stdlib_json_loads:
            return _json_loads_default(content)
        return jsonlib.loads(content, **kwargs)

    @property
    def cookies(self) -> Cookies:
        if self._cookie_jar is None:
            self._cookie_jar = Cookies()
            self._cookie_jar.extract_cookies(self)
        return self._cookie_jar

    @property
    def links(self) -> dict[str | None, dict[str, str]]:
        header = self.headers.get("link")
        if header is None:
            return {}
        return {
            (link.get("rel") or link.get("url")): link for link in _parse_header_links(header)
        }

    @property
    def num_bytes_downloaded(self) -> int:
        return self._nbytes

    def __repr__(self):
        return f"<Response [{self.status_code} {self.reason_phrase}]>"

    # -- httpx's private attribute names, for code that pokes at them --

    @property
    def _content(self):
        if self._body is None:
            raise AttributeError("_content")
        return self._body

    @_content.setter
    def _content(self, value):
        self._body = value

    @_content.deleter
    def _content(self):
        self._body = None

    @property
    def _text(self):
        if self._txt is None:
            raise AttributeError("_text")
        return self._txt

    @_text.setter
    def _text(self, value):
        self._txt = value

    @_text.deleter
    def _text(self):
        self._txt = None

    @property
    def _encoding(self):
        if self._enc is _MISSING:
            raise AttributeError("_encoding")
        return self._enc

    @_encoding.setter
    def _encoding(self, value):
        self._enc = value

    @_encoding.deleter
    def _encoding(self):
        self._enc = _MISSING

    @property
    def _elapsed(self):
        elapsed = _elapsed_of(self)
        if elapsed is _MISSING:
            raise AttributeError("_elapsed")
        return elapsed

    @_elapsed.setter
    def _elapsed(self, value):
        _set_elapsed(self, value)

    @property
    def _request(self):
        return self._req

    @_request.setter
    def _request(self, value):
        self._req = value

    @property
    def _cookies(self):
        # httpx's cache of `cookies`: absent until read, and what `cookies` gives once
        # set (a test may preset it, as gradio_client's does).
        if self._cookie_jar is None:
            raise AttributeError("_cookies")
        return self._cookie_jar

    @_cookies.setter
    def _cookies(self, value):
        self._cookie_jar = value

    @_cookies.deleter
    def _cookies(self):
        self._cookie_jar = None

    @property
    def _num_bytes_downloaded(self):
        return self._nbytes

    @_num_bytes_downloaded.setter
    def _num_bytes_downloaded(self, value):
        self._nbytes = value

    # -- pickling (stream, extensions and decoder are not carried over) --

    def __getstate__(self):
        state = {
            name: value
            for name, value in vars(self).items()
            if value is not _MISSING and name not in _UNPICKLED_RESPONSE_ATTRS
        }
        if self._hist is _LAZY and self._head is not _MISSING:
            # Made now, so a shallow copy shares it, as httpx's copies share theirs.
            state["_hist"] = _made_history(self)
        return state

    def __setstate__(self, state):
        for name, value in state.items():
            setattr(self, name, value)
        self.is_closed = True
        self.extensions = {}
        self.stream = UnattachedStream()

    def _prepare(self, default_headers):
        """httpx's step: the default headers of the body, where the response has none
        of its own (not Transfer-Encoding beside an explicit Content-Length)."""
        for key, value in default_headers.items():
            if key.lower() == "transfer-encoding" and "Content-Length" in self.headers:
                continue
            self.headers.setdefault(key, value)

    def _get_content_decoder(self):
        """httpx's: the decoder (`decode()` / `flush()`) of the body's Content-Encoding,
        made once and kept in `_decoder`; an IdentityDecoder when there is nothing to
        undo. A decoder set on `_decoder` is returned as it is. Reading the body asks an
        overridden or patched one, as httpx's iter_bytes does."""
        if self._decoder is _MISSING:
            _own_decoder(self, True)
        decoder = self._decoder
        return IdentityDecoder() if decoder is None else decoder

    # -- sync body access --

    def read(self) -> bytes:
        """Read and return the (decoded) response body."""
        return _response_read(self)

    def iter_bytes(self, chunk_size: int | None = None) -> typing.Iterator[bytes]:
        """Iterate over the decoded body."""
        if self._body is not None:
            content = self._body
            size = len(content) if chunk_size is None else chunk_size
            for i in range(0, len(content), max(size, 1)):
                yield content[i:i + size]
            return
        cdef _Chunker chunker = _Chunker(chunk_size, b"")
        with _attach_request(self._req):
            try:
                decoder = _get_decoder(self)
                if (
                    decoder is None
                    and chunk_size is None
                    and getattr(self.iter_raw, "__func__", None) is _STOCK_ITER_RAW
                ):
                    # Nothing to decode or re-chunk: the stock iter_raw's chunks (never
                    # empty), delegated: each next() goes straight to iter_raw. A
                    # subclass's or patched iter_raw goes through the chunker (which
                    # drops empty chunks), and gets no throw() / close() from ours.
                    yield from self.iter_raw()
                elif decoder is None:
                    for raw in self.iter_raw():
                        for chunk in chunker.decode(raw):
                            yield chunk
                else:
                    for raw in self.iter_raw():
                        # Bounded inflation: at most 1 MiB decoded at a time.
                        for decoded in decoder.decode_iter(raw):
                            for chunk in chunker.decode(decoded):
                                yield chunk
                    for decoded in decoder.flush_iter():
                        for chunk in chunker.decode(decoded):
                            yield chunk
            except DecodingError:
                # Undecodable: the rest of the body is of no use, release the connection.
                self.close()
                raise
            for chunk in chunker.flush():
                yield chunk

    def iter_text(self, chunk_size: int | None = None) -> typing.Iterator[str]:
        """Iterate over the body decoded to str with the response's encoding."""
        decoder = TextDecoder(self.encoding or "utf-8")
        cdef _Chunker chunker = _Chunker(chunk_size, "")
        with _attach_request(self._req):
            for data in self.iter_bytes():
                for chunk in chunker.decode(decoder.decode(data)):
                    yield chunk
            for chunk in chunker.decode(decoder.flush()):
                yield chunk
            for chunk in chunker.flush():
                yield chunk

    def iter_lines(self) -> typing.Iterator[str]:
        decoder = LineDecoder()
        with _attach_request(self._req):
            for text in self.iter_text():
                for line in decoder.decode(text):
                    yield line
            for line in decoder.flush():
                yield line

    def iter_raw(self, chunk_size: int | None = None) -> typing.Iterator[bytes]:
        """Iterate over the raw (still encoded) body."""
        if self.is_stream_consumed:
            raise StreamConsumed()
        if self.is_closed:
            raise StreamClosed()
        if not isinstance(self.stream, SyncByteStream):
            raise RuntimeError("Attempted to call a sync iterator on an async stream.")
        self.is_stream_consumed = True
        self._nbytes = 0
        cdef _Chunker chunker = None if chunk_size is None else _Chunker(chunk_size, b"")
        with _attach_request(self._req):
            for raw in self.stream:
                self._nbytes += len(raw)
                if chunker is None:
                    if raw:
                        yield raw
                else:
                    for chunk in chunker.decode(raw):
                        yield chunk
        if chunker is not None:
            for chunk in chunker.flush():
                yield chunk
        self.close()

    def close(self) -> None:
        """Close the response and release the connection."""
        _close_response(self, self.stream)

    # -- async body access --

    async def aread(self) -> bytes:
        """Read and return the (decoded) response body."""
        if self._body is None and not _aread_ready(self):
            if not _areads_whole(self):
                # httpx's aread(): a patched or overridden aiter_bytes / aiter_raw is used.
                self._body = b"".join([part async for part in self.aiter_bytes()])
                return self._body
            stream = self.stream
            if type(stream) is ByteStream and _class_unchanged(
                ByteStream, &_bytestream_iter_tag, _BYTESTREAM_ITER_STOCK
            ):
                self._body = await self._aread_whole(stream._stream)
            else:
                aread_all = getattr(stream, "_httprs_aread_all", None)
                if aread_all is not None:
                    self._body = await self._aread_whole(aread_all)
                else:
                    self._body = b"".join([part async for part in self.aiter_bytes()])
        return self._body

    async def _aread_whole(self, source):
        _begin_whole_read(self, self.stream, True)
        if callable(source):
            try:
                with _attach_request(self._req):
                    raw = await source()
            except BaseException:
                _count_received(self, self.stream)
                raise
        else:
            raw = source
        self._nbytes = len(raw)
        await self.aclose()
        return _decode_all(self, raw)

    def aiter_bytes(self, chunk_size: int | None = None) -> typing.AsyncIterator[bytes]:
        """Iterate asynchronously over the decoded body."""
        return _LazyAsyncIterator(_aiter_bytes_start, self, chunk_size)

    def aiter_text(self, chunk_size: int | None = None) -> typing.AsyncIterator[str]:
        """Iterate asynchronously over the body decoded to str."""
        return _LazyAsyncIterator(_aiter_text, self, chunk_size)

    def aiter_lines(self) -> typing.AsyncIterator[str]:
        return _LazyAsyncIterator(_aiter_lines, self)

    def aiter_raw(self, chunk_size: int | None = None) -> typing.AsyncIterator[bytes]:
        """Iterate asynchronously over the raw (still encoded) body."""
        return _LazyAsyncIterator(_aiter_raw, self, chunk_size)

    async def aclose(self) -> None:
        """Close the response and release the connection."""
        if not isinstance(self.stream, AsyncByteStream):
            raise RuntimeError(_stream_kind_message(
                "Attempted to call an async close on an sync stream.",
                "Attempted to call an async close on a sync stream.",
            ))
        if not self.is_closed:
            self.is_closed = True
            try:
                with _attach_request(self._req):
                    await self.stream.aclose()
            except BaseException:
                # Cancelled or failed: not closed, so a later aclose() tries again
                # (httpx2 2.17).
                self.is_closed = False
                raise


# Response's async iterators. Module-level async generators behind a
# _LazyAsyncIterator (see httprs._content): Cython's own async generators warn
# when collected unstarted, Python's do not.


def _aiter_bytes_start(self, chunk_size):
    """aiter_bytes()'s iterator, made on its first use: with nothing to decode or
    re-chunk, the stock aiter_raw's own async generator (its chunks are never empty),
    one async generator fewer for each chunk to pass through. An aiter_raw of a
    subclass or patched on goes through _aiter_bytes as before, and so does a response
    whose _get_content_decoder is not the stock one (asked once, there, as httpx asks)."""
    if (
        self._body is None
        and chunk_size is None
        and _stock_method(self, "_get_content_decoder", _STOCK_GET_CONTENT_DECODER)
    ):
        try:
            with _attach_request(self._req):
                plain = _kept_decoder(self, True) is None  # (the stock lookup: checked)
        except Exception:
            # Raised where main raised it, closing the response: when the iterator is
            # iterated (_aiter_bytes looks the decoder up again inside its try).
            return _aiter_bytes(self, chunk_size)
        if plain and getattr(self.aiter_raw, "__func__", None) is _STOCK_AITER_RAW:
            return _aiter_raw(self, None, True)
    return _aiter_bytes(self, chunk_size)


cdef bint _aiter_bytes_reads_stream(self) except -1:
    """Whether aiter_bytes() reads the stream itself (httpx2 2.17) rather than through
    `self.aiter_raw()` (httpx 0.28.1): always while aiter_raw is Response's own (the
    same chunks either way); an overridden or patched aiter_raw is used as httpx uses
    it, except where httprs presents as httpx2."""
    if getattr(self.aiter_raw, "__func__", None) is _STOCK_AITER_RAW:
        return True
    return _presented_as_httpx2()


async def _aiter_bytes(self, chunk_size):
    if self._body is not None:
        content = self._body
        size = len(content) if chunk_size is None else chunk_size
        for i in range(0, len(content), max(size, 1)):
            yield content[i:i + size]
        return
    chunker = _Chunker(chunk_size, b"")
    own = None
    with _attach_request(self._req):
        try:
            decoder = _get_decoder(self)
            # Reading the stream itself, the raw chunks' generator closes the response
            # however the iteration ends (closed here with this one).
            if _aiter_bytes_reads_stream(self):
                raws = own = _aiter_raw(self, None, True)
            else:
                raws = self.aiter_raw()
            if decoder is None:  # re-chunk, or an overridden aiter_raw
                async for raw in raws:
                    for chunk in (<_Chunker>chunker).decode(raw):
                        yield chunk
            else:
                async for raw in raws:
                    for decoded in decoder.decode_iter(raw):
                        for chunk in (<_Chunker>chunker).decode(decoded):
                            yield chunk
                for decoded in decoder.flush_iter():
                    for chunk in (<_Chunker>chunker).decode(decoded):
                        yield chunk
            for chunk in (<_Chunker>chunker).flush():
                yield chunk
        except DecodingError:
            await self.aclose()
            raise
        finally:
            if own is not None:
                await own.aclose()


async def _aiter_text(self, chunk_size):
    decoder = TextDecoder(self.encoding or "utf-8")
    chunker = _Chunker(chunk_size, "")
    with _attach_request(self._req):
        async for data in self.aiter_bytes():
            for chunk in (<_Chunker>chunker).decode(decoder.decode(data)):
                yield chunk
        for chunk in (<_Chunker>chunker).decode(decoder.flush()):
            yield chunk
        for chunk in (<_Chunker>chunker).flush():
            yield chunk


async def _aiter_lines(self):
    decoder = LineDecoder()
    with _attach_request(self._req):
        async for text in self.aiter_text():
            for line in decoder.decode(text):
                yield line
        for line in decoder.flush():
            yield line


async def _aiter_raw(self, chunk_size, bint for_bytes=False):
    """aiter_raw(); `for_bytes`: the chunks aiter_bytes() reads from the stream itself,
    as httpx2 2.17's does: empty chunks skipped, the response closed however the
    iteration ends (an error, a cancellation, aclose())."""
    if self.is_stream_consumed:
        raise StreamConsumed()
    if self.is_closed:
        raise StreamClosed()
    if not isinstance(self.stream, AsyncByteStream):
        raise RuntimeError(_stream_kind_message(
            "Attempted to call an async iterator on an sync stream.",
            "Attempted to call an async iterator on a sync stream.",
        ))
    self.is_stream_consumed = True
    self._nbytes = 0
    chunker = None if chunk_size is None else _Chunker(chunk_size, b"")
    # The client's own bound stream over the core's: its body's chunks, taken from the
    # body (one async generator fewer for each to pass through).
    stream = self.stream
    body = _bound.aiter_body(stream)
    if for_bytes:
        chunks = (stream if body is None else body).__aiter__()
        try:
            with _attach_request(self._req):
                async for raw in chunks:
                    if raw:
                        self._nbytes += len(raw)
                        yield raw
        finally:
            if chunks is not stream and isinstance(chunks, AsyncGenerator):
                await chunks.aclose()
            await self.aclose()
        return
    with _attach_request(self._req):
        async for raw in (self.stream if body is None else body):
            self._nbytes += len(raw)
            if chunker is None:
                if raw:
                    yield raw
            else:
                for chunk in (<_Chunker>chunker).decode(raw):
                    yield chunk
    if chunker is not None:
        for chunk in (<_Chunker>chunker).flush():
            yield chunk
    await self.aclose()


cdef object _transport_response(
    object status_code, list raw_headers, object stream, bytes http_version,
    bytes reason_phrase, object conn,
):
    """Response._from_transport(...) (lent to httprs._core as a C function); `conn`:
    the core's body, whose connection gives further extensions (None: none)."""
    if PyType_Check(Response) and not _class_unchanged(
        Response, &_response_tag, _RESPONSE_STOCK
    ):
        if reason_phrase is None:
            extensions = {"http_version": http_version}
        else:
            extensions = {"http_version": http_version, "reason_phrase": reason_phrase}
        if conn is not None:
            _connection_extensions(conn, extensions)
        return Response(  # by keyword, as httpx's transports call it
            status_code=status_code, headers=raw_headers, stream=stream,
            extensions=extensions,
        )
    r = _object_new(Response)
    r.status_code = status_code
    r.headers = _headers_from_raw(raw_headers)
    # Its extensions dict and history list are made when first asked for: the
    # client's requests mostly never ask.
    r._head = _head_of(http_version, reason_phrase)
    r.stream = stream
    if conn is not None:
        r._conn = conn
    return r


cdef ConnectionExtensions _connection_extensions_fn = NULL


cdef int _connection_extensions(object conn, dict ext) except -1:
    """httprs._core's _connection_extensions (looked up once: _core imports this
    module, so it is lent on first use)."""
    global _connection_extensions_fn
    if _connection_extensions_fn == NULL:
        from httprs._core import _CONNECTION_EXTENSIONS

        _connection_extensions_fn = <ConnectionExtensions>PyCapsule_GetPointer(
            _CONNECTION_EXTENSIONS, NULL
        )
    return _connection_extensions_fn(conn, ext)


_TRANSPORT_RESPONSE = PyCapsule_New(<void*>_transport_response, NULL, NULL)  # for _core


# The last (http_version, reason_phrase) pair _from_transport stored: the next response
# with the same two objects (the transport hands out the same bytes for a repeated
# reason) shares it (immutable), one store and no new tuple per response.
cdef tuple _last_head = (None, None)


cdef tuple _head_of(bytes version, bytes reason):
    global _last_head
    cdef tuple last = _last_head
    if last[0] is version and last[1] is reason:
        return last
    _last_head = (version, reason)
    return _last_head


cdef inline bint _bytes_version(head) except -1:
    """Whether `_head` holds a bytes http_version (set by _from_transport, not None)."""
    return type(head) is tuple and type((<tuple>head)[0]) is bytes


cdef bint _lazy_extensions(self) except -1:
    """Whether http_version / reason_phrase may read _head: the extensions dict is
    not made yet and `extensions` is Response's own property (a subclass's or a patched
    one is read, as httpx reads `self.extensions`)."""
    return (
        self._ext is _LAZY
        and _bytes_version(self._head)
        and type(self) is Response
        and _class_unchanged(Response, &_response_tag, _RESPONSE_STOCK)
    )


cdef object _lazy_value(self, value, str name):
    """`value` (what `extensions` / `history` holds) when the response has one: not
    deleted (_MISSING), and made or to be made (_LAZY on a response _from_transport
    made); else AttributeError, as for an httpx attribute never set."""
    if value is _MISSING or (value is _LAZY and self._head is _MISSING):
        raise AttributeError(_no_attribute(self, name))
    return value


cdef str _no_attribute(self, str name):
    return f"'{type(self).__name__}' object has no attribute '{name}'"


cdef object _made_extensions(self):
    """A stock Response's extensions dict from what _from_transport stored, made on first
    access and kept. No Python code runs between the check and the store: two threads
    asking at once get the same dict."""
    head = self._head
    if head is _MISSING:
        raise AttributeError(_no_attribute(self, "extensions"))
    version, reason = <tuple>head
    if reason is None:
        ext = {"http_version": version}
    else:
        ext = {"http_version": version, "reason_phrase": reason}
    conn = self._conn
    if conn is not None:
        _connection_extensions(conn, ext)
    current = self._ext
    if current is not _LAZY:  # set (or made by another thread) meanwhile
        return current
    self._ext = ext
    return ext


cdef object _made_history(self):
    """A stock Response's empty history list, made on first access and kept (as
    _made_extensions); AttributeError for a response _from_transport did not make."""
    if self._head is _MISSING:
        raise AttributeError(_no_attribute(self, "history"))
    hist = []
    current = self._hist
    if current is not _LAZY:
        return current
    self._hist = hist
    return hist


cdef object _elapsed_of(self):
    """The response's `elapsed` timedelta, or _MISSING. The client records the seconds
    (`_elap_s`, newer than any `_elap`) when the response closes; the timedelta is built
    on first access and kept. No Python code runs between the re-check and the stores:
    a set meanwhile (another thread) is not overwritten."""
    seconds = self._elap_s
    if seconds is None:
        return self._elap
    elapsed = datetime.timedelta(seconds=seconds)
    if self._elap_s is not seconds:  # set (or made by another thread) meanwhile
        return self._elap
    self._elap = elapsed
    self._elap_s = None
    return elapsed


cdef int _set_elapsed(self, value) except -1:
    """`elapsed` / `_elapsed` set: the value, over any seconds recorded before."""
    self._elap = value
    if self._elap_s is not None:
        self._elap_s = None
    return 0


cdef object _stdlib_json_loads = jsonlib.loads
# json.loads(s) without arguments is _default_decoder.decode(s): the decoder built at
# json's import, its C scanner, the class's decode and raw_decode. Replacing any of them
# changes what json.loads does, so the direct decoder runs only while all are the ones seen
# here.
cdef object _stdlib_decoder = jsonlib._default_decoder
cdef object _stdlib_scan_once = jsonlib._default_decoder.scan_once
cdef object _stdlib_decode = jsonlib.JSONDecoder.decode
cdef object _stdlib_raw_decode = jsonlib.JSONDecoder.raw_decode
cdef object _stdlib_detect_encoding = jsonlib.detect_encoding
# The scanner's parse_constant is this dict's __getitem__ (NaN, Infinity, -Infinity).
cdef dict _STDLIB_CONSTANTS = dict(jsonlib.decoder._CONSTANTS)

include "_json_decode.pxi"


cdef bint _json_decoder_unchanged():
    decoder = jsonlib._default_decoder
    return (
        decoder is _stdlib_decoder
        and decoder.scan_once is _stdlib_scan_once
        and type(decoder).decode is _stdlib_decode
        and type(decoder).raw_decode is _stdlib_raw_decode
        # methods patched on the instance win over the class's
        and "decode" not in decoder.__dict__
        and "raw_decode" not in decoder.__dict__
        and jsonlib.detect_encoding is _stdlib_detect_encoding
        and jsonlib.decoder._CONSTANTS == _STDLIB_CONSTANTS
    )


# A document with every kind of value, escape and number form the decoder builds: it is
# used only while it gives what json.loads gives for this one.
_JSON_DECODE_PROBE = (
    b' {"a": [1, -0, 2.5, -0.0, 1e300, 1E-7, 12345678901234567890123, 0.1e1, true, false,'
    b' null, NaN, Infinity, -Infinity], "\\u00e9\\ud83d\\ude00\\ud800x\xc3\xa9\xed\xa0\x80":'
    b' {"k": "v\\n\\"\\\\\\t\\r\\b\\f\\/\\u0001\xe2\x82\xac\xf0\x9f\x98\x80", "": []},'
    b' "a": {"a": 1, "a": 2}}\r\n'
)
cdef bint _json_decode_ok = False
try:
    _json_decode_ok = repr(_json_decode(_JSON_DECODE_PROBE)) == repr(
        jsonlib.loads(_JSON_DECODE_PROBE)
    )
except Exception:
    _json_decode_ok = False
_JSON_DECODE_DIRECT = _json_decode_ok  # for the tests: whether the direct decoder is in use
_JSON_GAVE_UP = _MISSING


def _json_decode_direct(bytes body not None):
    """For the tests: the direct decoder's value for `body`, or _JSON_GAVE_UP where it
    leaves the document to json.loads."""
    return _json_decode(body)


cdef object _json_loads_default(object content):
    """json.loads(content): the direct decoder's value for a bytes body while json is
    the standard library's as imported; json.loads itself for anything else and for
    every document the decoder gives up on (errors included), so results and errors are
    the standard library's."""
    if _json_decode_ok and type(content) is bytes and _json_decoder_unchanged():
        value = _json_decode(<bytes>content)
        if value is not _MISSING:
            return value
    return jsonlib.loads(content)


cdef object _get_decoder(self):
    """The ContentDecoder for Response `self`, or None when nothing to undo."""
    return _decoder_of(self, True)


cdef object _decoder_of(self, bint keep_none):
    """_get_decoder; `keep_none` false: a body without Content-Encoding does not record
    that it has none (a whole read asks once, and never again: the body is then read).
    A `_get_content_decoder` overridden or patched (on the class or the response) is
    asked, and a decoder set on `_decoder` used, through their decode() / flush()."""
    if not _stock_method(self, "_get_content_decoder", _STOCK_GET_CONTENT_DECODER):
        return _as_response_decoder(self._get_content_decoder())
    return _kept_decoder(self, keep_none)


cdef object _kept_decoder(self, bint keep_none):
    """_decoder_of once `_get_content_decoder` is known to be the stock one: what
    `_decoder` holds (made first if unset; a foreign decoder behind `_Foreign`)."""
    decoder = self._decoder
    if decoder is _MISSING:
        return _own_decoder(self, keep_none)
    if decoder is not None and type(decoder) is not ContentDecoder:
        return _as_response_decoder(decoder)
    return decoder


cdef object _own_decoder(self, bint keep_none):
    """The decoder the Content-Encoding asks for, made and kept in `_decoder`
    (unset so far), or None (kept as that only if `keep_none`)."""
    headers = self.headers
    # (The raw pairs, not the lower-cased keys: one attribute read fewer.)
    if type(headers) is Headers and not _raw_has(headers._raw, b"content-encoding"):
        if keep_none:
            self._decoder = None
        return None
    values = headers.get_list("content-encoding")
    decoder = None
    if values:
        with _attach_request(self._req):
            decoder = _response_decoder(values)
    self._decoder = decoder
    return _as_response_decoder(decoder)  # (a registered class's: behind _Foreign)


cdef bytes _decode_all(self, bytes raw):
    decoder = _decoder_of(self, False)
    if decoder is None:
        return raw
    with _attach_request(self._req):
        return decoder.decode_whole(raw)


cdef int _begin_whole_read(self, stream, bint is_async) except -1:
    """What a one-shot read checks and marks first, sync or async: the stream
    (`self.stream`) is unread, open and of the caller's kind; then it counts as
    consumed."""
    if self.is_stream_consumed:
        raise StreamConsumed()
    if self.is_closed:
        raise StreamClosed()
    if is_async and not isinstance(stream, AsyncByteStream):
        raise RuntimeError(_stream_kind_message(
            "Attempted to call an async iterator on an sync stream.",
            "Attempted to call an async iterator on a sync stream.",
        ))
    if not is_async and not isinstance(stream, SyncByteStream):
        raise RuntimeError("Attempted to call a sync iterator on an async stream.")
    self.is_stream_consumed = True  # (_nbytes is 0 until then: set once the body is read)
    return 0


cdef bint _reads_whole(self) except -1:
    """Whether read() may take the body in one piece rather than as httpx's read() does,
    b"".join(self.iter_bytes()): iter_bytes and the iter_raw it steps through are
    Response's own (neither overridden by a subclass, patched on a class, nor set on
    the instance). The stream's own iteration is checked by the caller."""
    return _stock_method(self, "iter_bytes", _STOCK_ITER_BYTES) and _stock_method(
        self, "iter_raw", _STOCK_ITER_RAW
    )


cdef bint _areads_whole(self) except -1:
    """_reads_whole for aread(): aiter_bytes and aiter_raw."""
    return _stock_method(self, "aiter_bytes", _STOCK_AITER_BYTES) and _stock_method(
        self, "aiter_raw", _STOCK_AITER_RAW
    )


cdef bint _aread_ready(self) except -1:
    """What Response.aread() does for a body that is in already (read with the head),
    done without awaiting anything: True when done (`_body` set, the response closed),
    False when nothing was done (aread goes on then). Only where the steps it would
    await are the stock ones: `aiter_bytes`, `aiter_raw` and `aclose` Response's own, the
    stream the client's bound stream over a core stream (_bound.aread_ready)."""
    if self.is_stream_consumed or self.is_closed:
        return False  # (aread raises)
    if not (_areads_whole(self) and _stock_method(self, "aclose", _STOCK_ACLOSE)):
        return False
    stream = self.stream
    if not _bound.aread_ready(stream):
        return False
    # _aread_whole's steps, each as it does them (a RequestError from the read or the
    # close gets the request, as under its `with _attach_request(...)` blocks).
    _begin_whole_read(self, stream, True)
    try:
        try:
            raw = _bound.aread_all_now(stream)
        except BaseException:
            _count_received(self, stream)
            raise
        self._nbytes = len(raw)
        # `await self.aclose()` (Response's own: checked above).
        if not self.is_closed:
            self.is_closed = True
            try:
                _bound.aclose_now(stream)
            except BaseException:
                self.is_closed = False  # (as aclose(): a later one tries again)
                raise
    except RequestError as exc:
        if self._req is not None:
            exc.request = self._req
        raise
    self._body = _decode_all(self, raw)
    return True


cdef object _response_read(object self):
    """Response.read(): the body, read whole the first time."""
    if self._body is None:
        if not _reads_whole(self):
            # httpx's read(): a patched or overridden iter_bytes / iter_raw is used.
            self._body = b"".join(self.iter_bytes())
            return self._body
        stream = self.stream
        if type(stream) is ByteStream and _class_unchanged(
            ByteStream, &_bytestream_iter_tag, _BYTESTREAM_ITER_STOCK
        ):
            self._body = _read_whole(self, stream, stream._stream)
        elif _bound.stock_read(stream):
            self._body = _read_whole(self, stream, None)
        else:
            read_all = getattr(stream, "_httprs_read_all", None)
            if read_all is not None:
                self._body = _read_whole(self, stream, read_all)
            else:
                self._body = b"".join(self.iter_bytes())
    return self._body


cdef object _read_now(object response):
    """`response.read()`, its work done here while Response's own read (not overridden
    nor patched) is the method (a Python function in front of the compiled one,
    httprs._methods). Lent to httprs._client (`_READ_NOW`)."""
    if _stock_method(response, "read", _STOCK_READ):
        return _response_read(response)
    return response.read()


_READ_NOW = PyCapsule_New(<void*>_read_now, NULL, NULL)  # for _client


cdef bint _aread_now(object response) except -1:
    """`await response.aread()` done here when Response's own aread (not overridden nor
    patched) would wait for nothing (_aread_ready); False: nothing was done, await it.
    Lent to httprs._client (`_AREAD_NOW`)."""
    return _stock_method(response, "aread", _STOCK_AREAD) and (
        response._body is not None or _aread_ready(response)
    )


_AREAD_NOW = PyCapsule_New(<void*>_aread_now, NULL, NULL)  # for _client


cdef int _close_response(self, stream) except -1:
    """Response.close() of `self`, whose stream is `stream`."""
    if not isinstance(stream, SyncByteStream):
        raise RuntimeError(_stream_kind_message(
            "Attempted to call an sync close on an async stream.",
            "Attempted to call a sync close on an async stream.",
        ))
    if not self.is_closed:
        self.is_closed = True
        try:
            if _bound.stock_close(stream):
                _bound.close(stream)  # its stock close(), without the method call
            else:
                stream.close()
        except RequestError as exc:
            if self._req is not None:
                exc.request = self._req
            raise
    return 0


cdef void _count_received(self, stream) noexcept:
    """After a whole read of `stream` failed part-way: num_bytes_downloaded counts the
    bytes that came, as httpx's (whose read counts each raw chunk as it arrives), where
    the stream can tell (the client's over the core's; else it stays 0)."""
    try:
        received = stream._httprs_received()
    except Exception:
        return
    if received is not None:
        self._nbytes = received


cdef bytes _read_whole(self, stream, source):
    """One-shot read of `self.stream` (`stream`): `source` is the whole raw body or a
    callable returning it; None for the client's bound stream (its stock_read)."""
    _begin_whole_read(self, stream, False)
    if source is None or callable(source):
        try:
            raw = _bound.read_all(stream) if source is None else source()
        except RequestError as exc:
            _count_received(self, stream)
            if self._req is not None:
                exc.request = self._req
            raise
        except BaseException:
            _count_received(self, stream)
            raise
    else:
        raw = source
    self._nbytes = len(raw)
    # self.close(), called directly while it is Response's own, on the class and not
    # shadowed on the instance (the stream read is `self.stream`: nothing replaces it).
    if type(self) is Response and _stock_method(self, "close", _STOCK_CLOSE):
        _close_response(self, stream)
    else:
        self.close()
    return _decode_all(self, raw)


# The client's bound stream's stock whole read and close (httprs.includes.bound_stream),
# lent by httprs._client at its import; until then no stream is one.
cdef BoundStreamOps _bound


cdef bint _no_bound_stream(object stream) except -1:
    return False


cdef object _no_bound_body(object stream):
    return None


_bound.stock_read = _no_bound_stream
_bound.stock_close = _no_bound_stream
_bound.aread_ready = _no_bound_stream
_bound.aiter_body = _no_bound_body


def _lend_bound_stream(ops):
    """httprs._client: a capsule of its BoundStreamOps (a static struct)."""
    global _bound
    _bound = (<BoundStreamOps*>PyCapsule_GetPointer(ops, NULL))[0]



cdef class _attach_request:
    """Context manager: attach `request` to any RequestError raised inside."""

    cdef object _request

    def __cinit__(self, request):
        self._request = request

    def __enter__(self):
        return None

    def __exit__(self, exc_type, exc, tb):
        if exc is not None and self._request is not None and isinstance(exc, RequestError):
            exc.request = self._request
        return False


# ---------------------------------------------------------------------------
# Cookies


# The longest request path the cookie jar is given (RFC 6265bis's limit on a cookie's
# Path attribute), httpx2 2.17's `MAX_PATH_LENGTH` (importable from here, as there).
from httprs._cookies import MAX_PATH_LENGTH, IndexedCookieJar  # noqa: E402, F401

cdef Py_ssize_t _MAX_COOKIE_PATH = MAX_PATH_LENGTH


def _new_jar(policy):
    """The jar a Cookies makes: httpx2's IndexedCookieJar when httprs presents as httpx2
    (cookies of several domains are then sent least specific domain first), else the
    plain CookieJar of httpx 0.28.1 (in the order they were stored)."""
    if _presented_as_httpx2():
        return IndexedCookieJar(policy)
    return CookieJar(policy)


class Cookies(MutableMapping):
    """HTTP cookies over an http.cookiejar.CookieJar, as a mutable mapping."""

    def __init__(self, cookies: CookieTypes | None = None) -> None:
        if cookies is None or isinstance(cookies, dict):
            self.jar = _new_jar(None)
            if isinstance(cookies, dict):
                for key, value in cookies.items():
                    self.set(key, value)
        elif isinstance(cookies, list):
            self.jar = _new_jar(None)
            for key, value in cookies:
                self.set(key, value)
        elif isinstance(cookies, Cookies):
            # The copy keeps the other jar's policy (httpx2 2.17).
            self.jar = _new_jar(getattr(cookies.jar, "_policy", None))
            for cookie in cookies.jar:
                self.jar.set_cookie(cookie)
        else:
            self.jar = cookies

    def extract_cookies(self, response: Response) -> None:
        """Load cookies from the response's Set-Cookie headers."""
        headers = response.headers
        if "set-cookie" not in headers and "set-cookie2" not in headers:
            # Nothing to load: the jar is not asked (httpx2 2.17; httpx 0.28.1 asked it,
            # and a response without a request then raised).
            return
        request = response.request
        # A request path whose last "/" lies past the longest cookie path kept (RFC
        # 6265bis: 1024 bytes) sets no cookies: the jar would default them to a parent
        # of the cut path, widening what they set or delete (httpx2 2.17).
        if request.url.raw_path.partition(b"?")[0].rfind(b"/") > _MAX_COOKIE_PATH:
            return
        self.jar.extract_cookies(_CookieCompatResponse(response), _CookieCompatRequest(request))

    def set_cookie_header(self, request: Request) -> None:
        """Set the Cookie header on `request` from the matching cookies."""
        self.jar.add_cookie_header(_CookieCompatRequest(request))

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        cookie = Cookie(
            version=0,
            name=name,
            value=value,
            port=None,
            port_specified=False,
            domain=domain,
            domain_specified=bool(domain),
            domain_initial_dot=domain.startswith("."),
            path=path,
            path_specified=bool(path),
            secure=False,
            expires=None,
            discard=True,
            comment=None,
            comment_url=None,
            rest={"HttpOnly": None},
            rfc2109=False,
        )
        self.jar.set_cookie(cookie)

    def get(
        self,
        name: str,
        default: str | None = None,
        domain: str | None = None,
        path: str | None = None,
    ) -> str | None:
        value = None
        for cookie in self.jar:
            if cookie.name == name:
                if domain is None or cookie.domain == domain:
                    if path is None or cookie.path == path:
                        if value is not None:
                            raise CookieConflict(f"Multiple cookies exist with name={name}")
                        value = cookie.value
        if value is None:
            return default
        return value

    def delete(self, name: str, domain: str | None = None, path: str | None = None) -> None:
        if domain is not None and path is not None:
            return self.jar.clear(domain, path, name)
        remove = [
            cookie
            for cookie in self.jar
            if cookie.name == name
            and (domain is None or cookie.domain == domain)
            and (path is None or cookie.path == path)
        ]
        for cookie in remove:
            self.jar.clear(cookie.domain, cookie.path, cookie.name)

    def clear(self, domain: str | None = None, path: str | None = None) -> None:
        args = []
        if domain is not None:
            args.append(domain)
        if path is not None:
            assert domain is not None
            args.append(path)
        self.jar.clear(*args)

    def update(self, cookies: CookieTypes | None = None) -> None:
        cookies = Cookies(cookies)
        for cookie in cookies.jar:
            self.jar.set_cookie(cookie)

    def __setitem__(self, name, value):
        return self.set(name, value)

    def __getitem__(self, name):
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __delitem__(self, name):
        return self.delete(name)

    def __len__(self):
        return len(self.jar)

    def __iter__(self):
        return (cookie.name for cookie in self.jar)

    def __bool__(self):
        for _ in self.jar:
            return True
        return False

    def __repr__(self):
        inner = ", ".join(
            [f"<Cookie {c.name}={c.value} for {c.domain} />" for c in self.jar]
        )
        return f"<Cookies[{inner}]>"


class _CookieCompatRequest(urllib.request.Request):
    """A urllib Request view of our Request for CookieJar; writes headers back."""

    def __init__(self, request):
        # The jar copies the URL's host and path into the cookies it makes, so it is
        # given neither the userinfo nor a path beyond 1024 bytes (cut after a "/"), as
        # in httpx2 2.17; the query is of no use to it.
        url = request.url
        path = url.raw_path.partition(b"?")[0]
        if len(path) > _MAX_COOKIE_PATH:
            path = path[: path.rfind(b"/", 0, _MAX_COOKIE_PATH + 1) + 1]
        scheme = url.scheme
        netloc = url.netloc.decode("ascii")
        target = (f"{scheme}:" if scheme else "") + (f"//{netloc}" if netloc else "")
        urllib.request.Request.__init__(
            self,
            url=target + path.decode("ascii"),
            headers=dict(request.headers),
            method=request.method,
        )
        self.request = request

    def add_unredirected_header(self, key, value):
        urllib.request.Request.add_unredirected_header(self, key, value)
        self.request.headers[key] = value


class _CookieCompatResponse:
    """The minimal urllib response interface CookieJar needs."""

    def __init__(self, response):
        self.response = response

    def info(self):
        info = email.message.Message()
        for key, value in self.response.headers.multi_items():
            info[key] = value
        return info


def _obfuscate_sensitive_headers(items):
    """httpx's private helper: yield (name, value) pairs with Authorization and
    Proxy-Authorization values replaced by "[secure]" (str or bytes, as the value was)."""
    from httprs._utils import to_bytes_or_str, to_str

    for key, value in items:
        if to_str(key.lower()) in SENSITIVE_HEADERS:
            value = to_bytes_or_str("[secure]", match_type_of=value)
        yield key, value


# Python functions in front of the compiled methods (httprs._methods), before any is
# recorded as the stock one below.
python_methods(Request, Response)

# The library's own methods of the classes it makes instances of without calling them
# (checked with _class_unchanged; a patched one makes those instances by the call).
cdef tuple _REQUEST_STOCK = (
    ("__init__", Request.__init__),
    ("_prepare", Request._prepare),
    ("extensions", Request.extensions),
)
cdef tuple _RESPONSE_STOCK = (
    ("__init__", Response.__init__),
    ("extensions", Response.extensions),
    ("history", Response.history),
)
cdef tuple _HEADERS_STOCK = (("__init__", Headers.__init__),)
# ... and those httpx's Headers.update steps through (_update_in_place).
cdef tuple _UPDATE_STOCK = (
    ("__init__", Headers.__init__),
    ("keys", Headers.keys),
    ("__contains__", Headers.__contains__),
    ("pop", Headers.pop),
    ("__getitem__", Headers.__getitem__),
    ("__delitem__", Headers.__delitem__),
    ("encoding", Headers.encoding),
)
cdef tuple _BYTESTREAM_STOCK = (("__init__", ByteStream.__init__),)
# ... and the iteration a whole read of a ByteStream stands in for.
cdef unsigned int _bytestream_iter_tag = 0
cdef tuple _BYTESTREAM_ITER_STOCK = (
    ("__iter__", ByteStream.__iter__), ("__aiter__", ByteStream.__aiter__)
)
# ... and the method a whole read calls directly.
cdef object _STOCK_CLOSE = Response.close
cdef object _STOCK_READ = Response.read  # see _read_now
cdef object _STOCK_AREAD = Response.aread  # see _aread_now
cdef object _STOCK_ACLOSE = Response.aclose  # see _aread_ready
cdef object _STOCK_AITER_RAW = Response.aiter_raw  # see _aiter_bytes_start
cdef object _STOCK_ITER_RAW = Response.iter_raw  # see Response.iter_bytes
cdef object _STOCK_GET_CONTENT_DECODER = Response._get_content_decoder  # see _decoder_of
cdef object _STOCK_ITER_BYTES = Response.iter_bytes  # see _reads_whole
cdef object _STOCK_AITER_BYTES = Response.aiter_bytes
