# cython: language_level=3, annotation_typing=False
"""Client and AsyncClient: configuration merging, redirects, auth flows, hooks, cookies.

The per-request path avoids work httpx repeats on every call: the client's
timeout is turned into its extensions dict once (when it is set), unchanged
default headers are handed to Request without an intermediate copy, empty
cookie jars and params are never merged, the auth generator machinery is
skipped when there is no auth, mounts are scanned only when there are any, and
cookies are extracted only from responses that carry Set-Cookie.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING
from cpython.dict cimport PyDict_Copy, PyDict_GetItemWithError, PyDict_Next, PyDict_Update
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_New
from cpython.ref cimport Py_INCREF, Py_XDECREF, PyObject

from httprs.includes.bound_stream cimport AreadNow, BoundStreamOps, HandleAsync, HandleSync, ReadNow
from httprs.includes.pyobject cimport class_unchanged as _class_unchanged
from httprs.includes.pyobject cimport dict_version as _dict_version
from httprs.includes.pyobject cimport lazy_request_timeout as _lazy_request_timeout
from httprs.includes.pyobject cimport object_new as _object_new
from httprs.includes.pyobject cimport plain_new as _plain_new
from httprs.includes.pyobject cimport share_memo as _share_memo
from httprs.includes.pyobject cimport shared_or_none as _shared_or_none
from httprs.includes.pyobject cimport stock_method as _stock_method
from httprs.includes.pyobject cimport type_tag as _type_tag

import datetime
import enum
import logging
from types import MemberDescriptorType

from httprs._auth import Auth, BasicAuth, FunctionAuth
from httprs._config import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_REDIRECTS,
    DEFAULT_TIMEOUT_CONFIG,
    Proxy,
    Timeout,
)
from httprs._content import ByteStream as _ByteStream
from httprs._content import _LazyAsyncIterator
from httprs._exceptions import InvalidURL, RemoteProtocolError, RequestError, TooManyRedirects
from httprs._models import _AREAD_NOW, _READ_NOW
from httprs._models import _lend_bound_stream as _models_lend_bound_stream
from httprs._models import (
    _RESPONSE_LAZY,
    _RESPONSE_MISSING,
    AsyncByteStream,
    Cookies,
    Headers,
    Request,
    Response,
    SyncByteStream,
)
from httprs._sse import DEFAULT_MAX_EVENT_SIZE_BYTES, aconnect_sse, connect_sse
from httprs._urls import URL, QueryParams, _zone_free
from httprs._utils import URLPattern, get_environment_proxies, sorted_mounts

from httprs import __version__  # defined first thing in httprs/__init__.py
from httprs import _alias
from httprs._methods import python_methods, warn_at_caller_of

# Names httpx's private `httpx._client` module also holds, which code imports from there
# (typed wrappers, starlette, SDKs): the same objects as in httprs._types / _transports.
from typing import Any as _Any, Callable as _Callable

from httprs._config import Limits
from httprs._transports import AsyncBaseTransport, BaseTransport
from httprs._types import (
    AuthTypes,
    CertTypes,
    CookieTypes,
    HeaderTypes,
    ProxyTypes,
    QueryParamTypes,
    RequestContent,
    RequestData,
    RequestExtensions,
    RequestFiles,
    TimeoutTypes,
)

EventHook = _Callable[..., _Any]

__all__ = ["USE_CLIENT_DEFAULT", "AsyncClient", "Client"]

logger = logging.getLogger("httpx")

# httprs's own User-Agent. Presented as httpx or httpx2 (the switch), httprs sends that
# library's (`_alias`).
_NATIVE_USER_AGENT = "python-httprs/" + __version__
USER_AGENT = _NATIVE_USER_AGENT
# The C++ core decodes all four codings natively (src/decode.h). Presented as httpx or
# httpx2 (the switch), httprs asks for what that library would (`_alias`).
_NATIVE_ACCEPT_ENCODING = "gzip, deflate, br, zstd"
ACCEPT_ENCODING = _NATIVE_ACCEPT_ENCODING

class ClientState(enum.Enum):
    """A client's life cycle, httpx's `_client.ClientState` (code reads and sets
    `client._state` with it)."""

    # UNOPENED: not used as a context manager yet, and no request sent.
    UNOPENED = 1
    # OPENED: in its `with` block, or a request was sent.
    OPENED = 2
    # CLOSED: exited or closed; it cannot send nor be opened again.
    CLOSED = 3


cdef object _UNOPENED = ClientState.UNOPENED
cdef object _OPENED = ClientState.OPENED
cdef object _CLOSED = ClientState.CLOSED

cdef int _LOG_INFO = logging.INFO

# The transport classes a client builds, read from this module's globals each time, as
# httpx's Client reads `httpx._client.HTTPTransport`: tests of real libraries patch them
# there (`monkeypatch.setattr("httpx._client.HTTPTransport", factory)`) so that every new
# client sends through a mock.
from httprs._core import _HANDLE_ASYNC, _HANDLE_SYNC, AsyncHTTPTransport, HTTPTransport
from httprs._core import AsyncResponseStream as _CORE_ASYNC_RESPONSE_STREAM
from httprs._core import ResponseStream as _CORE_RESPONSE_STREAM


class UseClientDefault:
    """The "not given" marker for per-request `auth`, `timeout` and `follow_redirects`:
    use the client's setting. (`None` means "explicitly none".)
    """


USE_CLIENT_DEFAULT = UseClientDefault()


cdef object _default_port(object url):
    port = url.port
    if port is not None:
        return port
    scheme = url.scheme
    if scheme == "http":
        return 80
    if scheme == "https":
        return 443
    return None


cdef bint _same_origin_of(object a, object b):
    return a.scheme == b.scheme and a.host == b.host and _default_port(a) == _default_port(b)


cdef bint _is_https_upgrade(object url, object location):
    return (
        url.host == location.host
        and url.scheme == "http"
        and _default_port(url) == 80
        and location.scheme == "https"
        and _default_port(location) == 443
    )


class StreamKindError(TypeError, AssertionError):
    """A transport's response stream the client cannot read: of the other kind (async for
    a sync client, or the reverse), or no byte stream at all (a generator, a list, bytes).
    httpx asserts the kind (an AssertionError, empty); this says what was wrong, and is
    both, so `pytest.raises(AssertionError)` written for httpx still holds."""


cdef int _wrong_stream(stream, str wanted, other_kind, str other_name) except -1:
    """A transport's response stream the client cannot read: httpx asserts its kind."""
    if isinstance(stream, other_kind):
        raise StreamKindError(f"The transport returned a response with {other_name}.")
    raise StreamKindError(
        f"The transport returned a response whose stream is {type(stream).__name__!r}, "
        f"not {wanted}."
    )


# httpx's module-level helpers of the same names (code imports them from httpx._client).
def _port_or_default(url):
    return _default_port(url)


def _same_origin(url, other):
    return _same_origin_of(url, other)


def _is_https_redirect(url, location):
    return _is_https_upgrade(url, location)


cdef object _BYTE_STREAM = _ByteStream  # both a sync and an async stream
cdef unsigned int _core_stream_tag = 0
cdef unsigned int _core_astream_tag = 0


cdef bint _core_stream(object stream, bint is_async) except -1:
    """Whether `stream` is the core's own response stream (sync or async) with its
    stock methods, which only forward to its `_body`: the bound streams then call the
    body directly."""
    if is_async:
        return type(stream) is _CORE_ASYNC_RESPONSE_STREAM and _class_unchanged(
            _CORE_ASYNC_RESPONSE_STREAM, &_core_astream_tag, _CORE_ASYNC_STREAM_STOCK
        )
    return type(stream) is _CORE_RESPONSE_STREAM and _class_unchanged(
        _CORE_RESPONSE_STREAM, &_core_stream_tag, _CORE_STREAM_STOCK
    )


cdef unsigned int _response_elapsed_tag = 0  # _class_unchanged's memo for _ELAPSED_STOCK


cdef extern from *:
    """
    #include <chrono>
    /* time.perf_counter() without the Python call and its float: a monotonic clock in
       seconds (CPython's perf_counter reads the same clock where steady_clock is
       CLOCK_MONOTONIC, as on Linux; only differences of two readings are used). */
    static double httprs_perf_counter(void) {
        return std::chrono::duration<double>(
            std::chrono::steady_clock::now().time_since_epoch()).count();
    }
    """
    double _perf_counter "httprs_perf_counter"() nogil


import time as _time

cdef dict _TIME_DICT = _time.__dict__
cdef object _REAL_PERF_COUNTER = _time.perf_counter
cdef unsigned long long _time_version = 0  # a version of `time`'s dict with the real one


cdef double _clock() except? -1.0:
    """time.perf_counter(), which httpx calls for `elapsed` (looked up on `time` each
    time): the C clock while `time.perf_counter` is the real one, else what replaced it
    (freezegun's clock, a mock). Remembered with the PEP 509 version of `time`'s dict
    (any assignment there renews it); looked up each time where unreadable (3.12+)."""
    global _time_version
    cdef unsigned long long version = _dict_version(_TIME_DICT)
    if version != 0 and version == _time_version:
        return _perf_counter()
    current = _TIME_DICT.get("perf_counter")
    if current is _REAL_PERF_COUNTER:
        if _dict_version(_TIME_DICT) == version:  # (read as it was)
            _time_version = version
        return _perf_counter()
    return _time.perf_counter()


cdef int _record_elapsed(object response, double seconds) except -1:
    """Set `response.elapsed`. A Response's own getter builds the timedelta when it is
    first asked for (most never are): the seconds are newer than any `_elap` set before;
    anything else gets it now."""
    if type(response) is Response and _class_unchanged(
        Response, &_response_elapsed_tag, _ELAPSED_STOCK
    ):
        response._elap_s = seconds
    else:
        response.elapsed = datetime.timedelta(seconds=seconds)
    return 0


# The bound streams the client makes for core streams keep their stream, response and
# start time in slots (not in an attribute dict), and the core streams their `_body`:
# this module reads and writes them at their offsets, a load or a store instead of an
# attribute lookup each, while the class's member descriptors are the ones it was made
# with and its __getattribute__ / __setattr__ are object's (_class_unchanged: a class
# patch over one, e.g. a property or a recording __setattr__, is then used).
_BOUND_SLOT_NAMES = ("_stream", "_response", "_start")


cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member


cdef Py_ssize_t _slot_offset(object cls, str name) except -1:
    """The offset of `cls`'s own slot `name` in its instances."""
    descriptor = cls.__dict__[name]
    if type(descriptor) is not MemberDescriptorType:
        raise ImportError(f"httprs._client: {cls.__name__}.{name} is not a slot")
    return (<PyMemberDescrObject*><PyObject*>descriptor).d_member.offset


cdef inline object _slot_get(object obj, Py_ssize_t offset, str name):
    """obj.<name> for a slot at `offset` of `obj`'s class (an empty one: the
    attribute lookup, which raises its AttributeError)."""
    cdef PyObject* value = (<PyObject**>(<char*><PyObject*>obj + offset))[0]
    if value == NULL:
        return getattr(obj, name)
    return <object>value


cdef inline int _slot_set(object obj, Py_ssize_t offset, object value) except -1:
    """obj.<name> = value for a slot at `offset` (the old value released last)."""
    cdef PyObject** slot = <PyObject**>(<char*><PyObject*>obj + offset)
    cdef PyObject* old = slot[0]
    Py_INCREF(value)
    slot[0] = <PyObject*>value
    Py_XDECREF(old)
    return 0


# The offsets of _BOUND_SLOT_NAMES in the two read-all bound streams, and their memos.
cdef Py_ssize_t _sync_slots[3]
cdef Py_ssize_t _async_slots[3]
cdef unsigned int _sync_slots_tag = 0
cdef unsigned int _async_slots_tag = 0


cdef Py_ssize_t* _bound_slots(object bound) except? NULL:
    """The offsets of `bound`'s slots when it is one of the read-all bound streams whose
    class keeps its slots' descriptors; else NULL (read and write its attributes)."""
    cls = type(bound)
    if cls is _READ_ALL_SYNC:
        if _class_unchanged(cls, &_sync_slots_tag, _READ_ALL_SYNC_SLOTS):
            return _sync_slots
    elif cls is _READ_ALL_ASYNC:
        if _class_unchanged(cls, &_async_slots_tag, _READ_ALL_ASYNC_SLOTS):
            return _async_slots
    return NULL


cdef inline object _bound_stream_of(object bound):
    """bound._stream."""
    cdef Py_ssize_t* slots = _bound_slots(bound)
    return bound._stream if slots == NULL else _slot_get(bound, slots[0], "_stream")


cdef Py_ssize_t _core_body_at = 0  # the core sync stream's `_body` slot
cdef Py_ssize_t _core_abody_at = 0  # and the async one's


class BoundSyncStream(SyncByteStream):
    """Wraps a response stream so that closing it records `response.elapsed`."""

    def __init__(self, stream, response, start):
        self._stream = stream
        self._response = response
        self._start = start

    def __iter__(self):
        for chunk in self._stream:
            yield chunk

    def close(self):
        _bound_close(self)


class _BoundSyncStreamReadAll(BoundSyncStream):
    """BoundSyncStream over a core stream that can hand over the whole body at once.
    Its three attributes are slots, which the client reads and writes directly
    (_bound_slots)."""

    __slots__ = _BOUND_SLOT_NAMES

    def _httprs_read_all(self):
        return _bound_read_all(self)

    def _httprs_received(self):
        """The core body's bytes received so far (Response.read's count after a read
        failed part-way), or None over another stream."""
        stream = _bound_stream_of(self)
        if _core_stream(stream, False):
            return _slot_get(stream, _core_body_at, "_body")._httprs_received()
        return None


cdef int _bound_close(object bound) except -1:
    """BoundSyncStream.close() of `bound` (Response.close calls it directly for a
    _BoundSyncStreamReadAll whose close is the stock one: _bound_stock_close)."""
    _bound_elapsed(bound)
    stream = _bound_stream_of(bound)
    if _core_stream(stream, False):
        # What its stock close() does, one call fewer.
        _slot_get(stream, _core_body_at, "_body").close()
    else:
        stream.close()
    return 0


cdef int _bound_elapsed(object bound) except -1:
    """A bound stream's close (sync or async): record its response's elapsed, once."""
    cdef Py_ssize_t* slots = _bound_slots(bound)
    if slots != NULL:
        response = _slot_get(bound, slots[1], "_response")
        if response is not None:
            _slot_set(bound, slots[1], None)  # (as below)
            start = _slot_get(bound, slots[2], "_start")
            _record_elapsed(response, _clock() - <double>start)
        return 0
    response = bound._response
    if response is not None:
        # Dropping the back-reference breaks the response <-> stream cycle, so a
        # closed response is freed by reference counting, not by the cyclic GC.
        bound._response = None
        _record_elapsed(response, _clock() - <double>bound._start)
    return 0


cdef unsigned int _read_all_iter_tag = 0  # _class_unchanged's memo for _READ_ALL_ITER_STOCK


cdef object _bound_read_all(object bound):
    """_BoundSyncStreamReadAll._httprs_read_all() of `bound` (Response.read calls it
    directly: _bound_stock_read). Its iteration patched or overridden: the chunks it
    gives, joined (httpx's read iterates the bound stream)."""
    cls = type(bound)
    if not (
        _class_unchanged(cls, &_read_all_iter_tag, _READ_ALL_ITER_STOCK)
        if cls is _READ_ALL_SYNC
        else getattr(cls, "__iter__", None) is _BOUND_ITER
    ):
        return b"".join(iter(bound))
    stream = _bound_stream_of(bound)
    if _core_stream(stream, False):
        return _slot_get(stream, _core_body_at, "_body")._httprs_read_all()
    return stream._httprs_read_all()


cdef unsigned int _read_all_aiter_tag = 0  # _class_unchanged's memo for _READ_ALL_AITER_STOCK


cdef bint _bound_aiter_stock(object bound) except -1:
    """Whether an async bound stream's `__aiter__` and `_aiter` are BoundAsyncStream's own
    (not patched on a class nor overridden by a subclass): then its whole body may be read
    at once."""
    cls = type(bound)
    if cls is _READ_ALL_ASYNC:
        return _class_unchanged(cls, &_read_all_aiter_tag, _READ_ALL_AITER_STOCK)
    return (
        getattr(cls, "__aiter__", None) is _BOUND_AITER
        and getattr(cls, "_aiter", None) is _BOUND_AITER_GEN
    )


cdef bint _bound_stock_read(object stream) except -1:
    """Whether `stream` is a _BoundSyncStreamReadAll (the class defined here) whose
    `_httprs_read_all` is the stock one (patched neither on a class nor on the
    instance): then Response.read calls _bound_read_all without the method call."""
    return type(stream) is _READ_ALL_SYNC and _stock_method(
        stream, "_httprs_read_all", _BOUND_READ_ALL
    )


cdef bint _bound_stock_close(object stream) except -1:
    """... and whose `close` is: then Response.close calls _bound_close."""
    return type(stream) is _READ_ALL_SYNC and _stock_method(stream, "close", _BOUND_CLOSE)


cdef bint _bound_aread_ready(object stream) except -1:
    """Whether `stream` is a _BoundAsyncStreamReadAll whose `_httprs_aread_all`, `aclose`
    and iteration are the stock ones (on its class, not shadowed on the instance), over
    a stock core stream whose whole body is in already: then Response.aread takes it
    with _bound_aread_all_now and closes it with _bound_aclose_now, awaiting nothing."""
    if not (
        type(stream) is _READ_ALL_ASYNC
        and _stock_method(stream, "_httprs_aread_all", _BOUND_AREAD_ALL)
        and _stock_method(stream, "aclose", _BOUND_ACLOSE)
        and _bound_aiter_stock(stream)
    ):
        return False
    inner = _bound_stream_of(stream)
    return _core_stream(inner, True) and _slot_get(
        inner, _core_abody_at, "_body"
    )._httprs_complete()


cdef object _bound_aread_all_now(object stream):
    """`await stream._httprs_aread_all()` once _bound_aread_ready(stream) held."""
    return _slot_get(_bound_stream_of(stream), _core_abody_at, "_body")._httprs_read_all_now()


cdef unsigned int _core_aiter_tag = 0  # _class_unchanged's memo for _CORE_AITER_STOCK


cdef object _bound_aiter_body(object stream):
    """The core's async body under `stream` when `stream` is a _BoundAsyncStreamReadAll
    whose iteration is the stock one (BoundAsyncStream's `__aiter__` and `_aiter`,
    neither patched on its class nor shadowed on the instance), over a stock core
    stream whose `__aiter__` is its own too: iterating it only passes that body's
    chunks on, so Response.aiter_raw iterates the body. Else None."""
    if not (
        type(stream) is _READ_ALL_ASYNC
        and _bound_aiter_stock(stream)
        and _stock_method(stream, "_aiter", _BOUND_AITER_GEN)
    ):
        return None
    inner = _bound_stream_of(stream)
    if not (
        _core_stream(inner, True)
        and _class_unchanged(_CORE_ASYNC_RESPONSE_STREAM, &_core_aiter_tag, _CORE_AITER_STOCK)
    ):
        return None
    return _slot_get(inner, _core_abody_at, "_body")


cdef int _bound_aclose_now(object stream) except -1:
    """`await stream.aclose()` once _bound_aread_ready(stream) held (BoundAsyncStream's
    aclose over a core stream: nothing in it waits)."""
    _bound_elapsed(stream)
    _slot_get(_bound_stream_of(stream), _core_abody_at, "_body")._httprs_close_now()
    return 0


cdef BoundStreamOps _bound_ops
_bound_ops.stock_read = _bound_stock_read
_bound_ops.stock_close = _bound_stock_close
_bound_ops.read_all = _bound_read_all
_bound_ops.close = _bound_close
_bound_ops.aread_ready = _bound_aread_ready
_bound_ops.aread_all_now = _bound_aread_all_now
_bound_ops.aclose_now = _bound_aclose_now
_bound_ops.aiter_body = _bound_aiter_body


class BoundAsyncStream(AsyncByteStream):
    """Wraps an async response stream so that closing it records `response.elapsed`."""

    def __init__(self, stream, response, start):
        self._stream = stream
        self._response = response
        self._start = start

    def __aiter__(self):
        return _LazyAsyncIterator(self._aiter)

    async def _aiter(self):
        async for chunk in self._stream:
            yield chunk

    async def aclose(self):
        _bound_elapsed(self)
        stream = _bound_stream_of(self)
        if _core_stream(stream, True):
            await _slot_get(stream, _core_abody_at, "_body").aclose()
        else:
            await stream.aclose()


class _BoundAsyncStreamReadAll(BoundAsyncStream):
    __slots__ = _BOUND_SLOT_NAMES  # (as _BoundSyncStreamReadAll's)

    async def _httprs_aread_all(self):
        if not _bound_aiter_stock(self):
            # Its iteration patched or overridden: what it gives, joined (httpx's aread
            # iterates the bound stream), as _bound_read_all does for the sync one.
            return b"".join([chunk async for chunk in self])
        stream = _bound_stream_of(self)
        if _core_stream(stream, True):
            return await _slot_get(stream, _core_abody_at, "_body")._httprs_aread_all()
        return await stream._httprs_aread_all()

    def _httprs_received(self):
        """As _BoundSyncStreamReadAll's, for aread()."""
        stream = _bound_stream_of(self)
        if _core_stream(stream, True):
            return _slot_get(stream, _core_abody_at, "_body")._httprs_received()
        return None


def _hooks_dict(event_hooks):
    return {
        "request": list(event_hooks.get("request", [])),
        "response": list(event_hooks.get("response", [])),
    }


cdef object _build_auth(object auth):
    """The stock `_build_auth` method's work (the client calls the method, which a
    subclass may override)."""
    if auth is None:
        return None
    if isinstance(auth, tuple):
        return BasicAuth(username=auth[0], password=auth[1])
    if isinstance(auth, Auth):
        return auth
    if callable(auth):
        return FunctionAuth(func=auth)
    raise TypeError(f'Invalid "auth" argument: {auth!r}')


def _redirect_method(request, response):
    """The method for the redirected request (RFC 7231, plus what browsers do)."""
    method = request.method
    status = response.status_code
    if status == 303 and method != "HEAD":
        return "GET"
    # Browsers turn a 302 into a GET; QUERY keeps its method (RFC 10008 section 2.5).
    if status == 302 and method not in ("HEAD", "QUERY"):
        return "GET"
    if status == 301 and method == "POST":
        return "GET"
    return method


def _redirect_url(request, response):
    location = response.headers["Location"]
    try:
        url = URL(location)
    except InvalidURL as exc:
        raise RemoteProtocolError(
            f"Invalid URL in location header: {exc}.", request=request
        ) from None
    # An absolute-form Location without a host ("https:///path") keeps the host.
    if url.scheme and not url.host:
        url = url.copy_with(host=request.url.host)
    if url.is_relative_url:
        url = request.url.join(url)
    # RFC 7231 section 7.1.2: inherit the fragment.
    if request.url.fragment and not url.fragment:
        url = url.copy_with(fragment=request.url.fragment)
    return url


def _redirect_headers(request, url, method):
    headers = Headers(request.headers)
    if not _same_origin_of(url, request.url):
        if not _is_https_upgrade(request.url, url):
            # Never leak credentials to another origin (an http->https upgrade is fine).
            headers.pop("Authorization", None)
        # [harden] proxy credentials belong to the proxy: a user-set header never
        # follows a redirect to another origin (httpx forwards it; urllib3 does not).
        headers.pop("Proxy-Authorization", None)
        headers["Host"] = _zone_free(url.netloc).decode("ascii")
    if method != request.method and method == "GET":
        # The body is dropped, and so are the headers that describe it.
        headers.pop("Content-Length", None)
        headers.pop("Transfer-Encoding", None)
    # The client's cookie jar decides the Cookie header of the new request.
    headers.pop("Cookie", None)
    return headers


# Per-request steps shared by Client and AsyncClient. They are C functions (httprs's
# own steps, not httpx method names anyone overrides), so they cost no method lookup.


cdef object _base_url(object url):
    """A client's base URL: `url` with its path ending in "/"."""
    url = URL(url)
    raw_path = url.raw_path
    if not raw_path.endswith(b"/"):
        url = url.copy_with(raw_path=raw_path + b"/")
    return url


cdef object _client_base_url(object client, object url):
    """What `client` stores for base_url=`url`: URL(url) through its
    `_enforce_trailing_slash` (a subclass may override it, as httpx's)."""
    if not _own_method(client, "_enforce_trailing_slash", _STOCK_ENFORCE_TRAILING_SLASH):
        return client._enforce_trailing_slash(URL(url))
    if type(url) is str and not url:  # the default: a copy of the one empty base
        return URL(_empty_base_url())
    return _base_url(url)


cdef bint _own_method(object client, str name, object stock) except -1:
    """Whether `client`'s method `name` is `stock` (neither overridden by its class nor
    set on the instance)."""
    if getattr(type(client), name, None) is not stock:
        return False
    instance_dict = getattr(client, "__dict__", None)
    return not (type(instance_dict) is dict and name in <dict>instance_dict)


cdef extern from "Python.h":
    object PyObject_GenericGetDict(object obj, void* context)


# A stock Timeout's as_dict() is its four attributes in this order: its own __dict__
# is read (Timeout.__init__ sets them in this order), so a Timeout changed in place
# (`client.timeout.read = 5`) is seen by the next request, as httpx reads it per request.
cdef object _STOCK_TIMEOUT = Timeout
cdef unsigned int _timeout_tag = 0
cdef tuple _TIMEOUT_FIELDS = ("connect", "read", "write", "pool")


# _stock_timeout_snapshot's memo: the last stock Timeout attribute dict found right (its
# address, compared and never dereferenced, and its PEP 509 version: globally unique,
# renewed by any change to it) and a copy of its contents then, with that copy's own
# version. Invalidation: any change to that Timeout's attributes gives its dict a new
# version, which misses, and a new snapshot is made; so does a write into the snapshot
# (never handed to anything that writes, but reachable as a request's `_ext_timeout`).
cdef PyObject* _timeout_attrs = NULL
cdef unsigned long long _timeout_version = 0
cdef dict _timeout_snapshot = None
cdef unsigned long long _snapshot_version = 0


cdef dict _stock_timeout_snapshot(object timeout):
    """A stock Timeout's as_dict() (then equal to Timeout(timeout).as_dict()), read from
    its attribute dict; None for any other Timeout, or while Timeout is patched. The dict
    is a snapshot shared while that Timeout is unchanged: never to be written (copy it,
    or keep it as a client's request keeps its timeout: see Request in _models)."""
    global _timeout_attrs, _timeout_version, _timeout_snapshot, _snapshot_version
    cdef unsigned long long version
    cdef Py_ssize_t pos = 0
    cdef PyObject* key
    cdef PyObject* value
    cdef dict snapshot
    if type(timeout) is _STOCK_TIMEOUT and _class_unchanged(
        _STOCK_TIMEOUT, &_timeout_tag, _TIMEOUT_STOCK
    ):
        attrs = PyObject_GenericGetDict(timeout, NULL)
        if type(attrs) is not dict:
            return None
        version = _dict_version(attrs)
        if (
            version != 0
            and <PyObject*>attrs == _timeout_attrs
            and version == _timeout_version
            and _dict_version(_timeout_snapshot) == _snapshot_version
        ):
            return _timeout_snapshot
        if len(<dict>attrs) == 4:
            for name in _TIMEOUT_FIELDS:
                PyDict_Next(attrs, &pos, &key, &value)
                if <object>key is not name and <object>key != name:
                    break
            else:
                # A combined-table dict (the attribute dict is a split one): copies of it
                # are one block copy.
                snapshot = {}
                PyDict_Update(snapshot, attrs)
                # (Published together: nothing between these stores runs Python code.)
                _timeout_attrs = <PyObject*>attrs
                _timeout_version = version
                _snapshot_version = _dict_version(snapshot)
                _timeout_snapshot = snapshot
                return snapshot
    return None


cdef dict _client_timeout_snapshot(object client, object timeout):
    """The plain client's timeout snapshot (_stock_timeout_snapshot) for a request given
    `timeout` (USE_CLIENT_DEFAULT: the client's stock Timeout), else None."""
    if not isinstance(timeout, UseClientDefault):
        return None
    return _stock_timeout_snapshot(_plain_attr(client, ATTR_TIMEOUT))


# The default client headers' values as bytes, made again when code patches
# USER_AGENT or ACCEPT_ENCODING here (as it may httpx's).
cdef object _encoded_for = None
cdef tuple _encoded_values = None


cdef list _default_header_pairs():
    global _encoded_for, _encoded_values
    user_agent = USER_AGENT
    accept_encoding = ACCEPT_ENCODING
    if _encoded_for is None or (<tuple>_encoded_for)[0] is not user_agent or (
        <tuple>_encoded_for
    )[1] is not accept_encoding:
        _encoded_values = (user_agent.encode("ascii"), accept_encoding.encode("ascii"))
        _encoded_for = (user_agent, accept_encoding)
    return [
        (b"Accept", b"*/*"),
        (b"Accept-Encoding", _encoded_values[1]),
        (b"Connection", b"keep-alive"),
        (b"User-Agent", _encoded_values[0]),
    ]


cdef object _EMPTY_BASE_URL = None


cdef object _empty_base_url():
    """_base_url(""), built once (every Client() without base_url copies it)."""
    global _EMPTY_BASE_URL
    if _EMPTY_BASE_URL is None:
        _EMPTY_BASE_URL = _base_url("")
    return _EMPTY_BASE_URL


# The base URL clients without one share (_client_empty_base_url): a memo of
# shared_or_none / share_memo, or None.
cdef tuple _empty_base_memo = None


cdef object _client_empty_base_url():
    """URL(_empty_base_url()), the base URL of a client given none, shared by such
    clients as the requests to one URL string share theirs (_shared_url): handed out
    while its attribute dict is unchanged (shared_or_none), and only while `URL` is the
    stock class with its own __init__ (else it is called for every client, as httpx
    does)."""
    global _empty_base_memo
    if not (URL is _STOCK_URL and _class_unchanged(_STOCK_URL, &_url_tag, _URL_STOCK)):
        return URL(_empty_base_url())
    url = _shared_or_none(_empty_base_memo, _STOCK_URL)
    if url is None:
        url = URL(_empty_base_url())
        _made_whole(url)
        _empty_base_memo = _share_memo(url, _STOCK_URL)
    return url


cdef inline int _made_whole(object url) except -1:
    """Make what a stock URL makes lazily (its string, netloc and raw_path) now, so
    nothing writes to its attribute dict once it is shared; and the Host pair its
    requests prepend (URL._host_pair), which they then share."""
    if type(url) is _STOCK_URL:
        str(url)
        netloc = url.netloc
        url.raw_path
        if url._host:
            url._host_pair = (b"Host", _zone_free(netloc))
    return 0


cdef bint _has_params(object params) except -1:
    """bool(params), read from a stock QueryParams' dict without the __bool__ call."""
    if type(params) is QueryParams and _class_unchanged(
        QueryParams, &_query_params_tag, _QUERY_PARAMS_STOCK
    ):
        mapping = params._dict
        if type(mapping) is dict:
            return len(<dict>mapping) != 0
    return bool(params)


cdef bint _has_cookies(object cookies) except -1:
    """bool(cookies) without iterating the jar in the common case of an empty jar."""
    store = getattr(getattr(cookies, "jar", None), "_cookies", None)  # http.cookiejar's domain map
    if type(store) is dict and not store:
        return False
    return bool(cookies)


cdef bint _has_set_cookie(list raw) except -1:
    """Whether raw response headers carry Set-Cookie / Set-Cookie2, scanned without
    decoding them (a lazily built Headers then stays undecoded).
    """
    cdef bytes name
    for item in raw:
        name = <bytes?>item[0]
        # Its first byte first ("s" or "S"): "Connection" is as long, and lower() a copy.
        if (
            (len(name) == 10 or len(name) == 11)
            and (<unsigned char>PyBytes_AS_STRING(name)[0] | 0x20) == 0x73
            and name.lower().startswith(b"set-cookie")
        ):
            if len(name) == 10 or name[10] == 0x32:  # "set-cookie" or "set-cookie2"
                return True
    return False


cdef object _timeout_for(object client, object timeout, bint plain, bint wrap):
    """The request's timeout dict, as httpx makes it. The client's own: build_request
    asks its `timeout` (`self.timeout.as_dict()`), _set_timeout (`wrap`) a Timeout made
    of it (`Timeout(self.timeout).as_dict()`: a number works there, and a Timeout
    subclass's as_dict is not asked)."""
    if isinstance(timeout, UseClientDefault):
        if plain:
            timeout = _plain_attr(client, ATTR_TIMEOUT)
            found = _stock_timeout_snapshot(timeout)
            if found is not None and (not wrap or Timeout is _STOCK_TIMEOUT):
                return PyDict_Copy(found)
            if not wrap:
                return timeout.as_dict()
        elif not wrap:
            return client.timeout.as_dict()  # the property: a subclass may override it
        else:
            # httpx reads the property twice here.
            timeout = client.timeout
            if isinstance(timeout, UseClientDefault):
                return client.timeout.as_dict()
            timeout = client.timeout
    return Timeout(timeout).as_dict()


cdef object _resolve_follow(object client, object follow_redirects, bint plain):
    if isinstance(follow_redirects, UseClientDefault):
        return _plain_attr(client, ATTR_FOLLOW_REDIRECTS) if plain else client.follow_redirects
    return follow_redirects


cdef int _check_can_send(object client, bint plain) except -1:
    state = _plain_attr(client, ATTR_STATE) if plain else client._state
    if state is _OPENED:
        return 0  # already (the common case: no attribute write per request)
    if state == _CLOSED:
        raise RuntimeError("Cannot send a request, as the client has been closed.")
    client._state = _OPENED
    return 0


cdef int _check_can_open(object client) except -1:
    state = client._state
    if state == _OPENED:
        raise RuntimeError("Cannot open a client instance more than once.")
    if state == _CLOSED:
        raise RuntimeError("Cannot reopen a client instance, once it has been closed.")
    client._state = _OPENED
    return 0


cdef object _info_logger = None  # the `logger` _info_cache belongs to
cdef object _info_cache = None  # its `_cache` (logging's isEnabledFor memo), or None
cdef object _INFO_KEY = logging.INFO


cdef bint _info_logging() except -1:
    """logger.isEnabledFor(INFO), answered from logging's own memo while it says False
    (logging empties it on any setLevel() or logging.disable(); a `disabled` logger is
    never memoised). `logger` is looked up each time: the switch may replace it."""
    global _info_logger, _info_cache
    current = logger
    if current is not _info_logger:
        _info_logger = current
        cache = getattr(current, "_cache", None) if type(current) is logging.Logger else None
        _info_cache = cache if type(cache) is dict else None
    if _info_cache is not None and (<dict>_info_cache).get(_INFO_KEY) is False:
        return False
    return current.isEnabledFor(_LOG_INFO)


cdef unsigned int _read_all_sync_tag = 0  # _class_unchanged's memos for the two
cdef unsigned int _read_all_async_tag = 0  # bound streams made for core streams


cdef bint _stock_read_all(object bound) except -1:
    """Whether `bound` is one of this module's bound streams for core streams with the
    stock __init__ (remembered with the class's version tag)."""
    if bound is _READ_ALL_SYNC:
        return _class_unchanged(bound, &_read_all_sync_tag, _READ_ALL_SYNC_STOCK)
    if bound is _READ_ALL_ASYNC:
        return _class_unchanged(bound, &_read_all_async_tag, _READ_ALL_ASYNC_STOCK)
    return False


cdef object _bind_stream(object bound, object stream, object response, double start):
    """bound(stream, response=response, start=start), without the Python-level call
    while `bound` has no __new__ of its own and the stock __init__."""
    if not _plain_new(bound) or not (
        _stock_read_all(bound)
        or bound.__init__ is _BOUND_SYNC_INIT
        or bound.__init__ is _BOUND_ASYNC_INIT
    ):
        return bound(stream, response=response, start=start)  # as httpx calls it
    wrapper = _object_new(bound)
    cdef Py_ssize_t* slots = _bound_slots(wrapper)
    if slots != NULL:
        _slot_set(wrapper, slots[0], stream)
        _slot_set(wrapper, slots[1], response)
        _slot_set(wrapper, slots[2], start)
        return wrapper
    wrapper._stream = stream
    wrapper._response = response
    wrapper._start = start
    return wrapper


cdef int _finish_response(
    object client, object request, object response, object stream, double start,
    bint is_async, bint plain,
) except -1:
    """Attach the request, bind the stream (`response.stream`, read by the caller) for
    `elapsed`, take cookies, log. `plain`: the client's `cookies` property is its own."""
    cdef bint stock = type(response) is Response and _class_unchanged(
        Response, &_response_tag, _RESPONSE_STOCK
    )
    if stock:
        response._req = request  # what the stock `request` setter does
    else:
        response.request = request
        stream = response.stream  # read again after the setter ran, as httpx reads it
    if is_async:
        if BoundAsyncStream is _STOCK_BOUND_ASYNC and hasattr(stream, "_httprs_aread_all"):
            bound = _BoundAsyncStreamReadAll
        else:
            bound = BoundAsyncStream
    elif BoundSyncStream is _STOCK_BOUND_SYNC and (
        type(stream) is _CORE_RESPONSE_STREAM or hasattr(stream, "_httprs_read_all")
    ):
        bound = _BoundSyncStreamReadAll
    else:
        bound = BoundSyncStream
    bound_stream = _bind_stream(bound, stream, response, start)
    response.stream = bound_stream
    if (
        type(stream) is not _CORE_RESPONSE_STREAM
        and type(stream) is not _CORE_ASYNC_RESPONSE_STREAM
        and response.is_closed
    ):
        # A response that arrives closed (a transport's Response(content=...)) never
        # closes its stream, so its elapsed is recorded now (httpx2 2.17).
        if (
            bound is _BoundSyncStreamReadAll
            or bound is _BoundAsyncStreamReadAll
            or bound is _STOCK_BOUND_SYNC
            or bound is _STOCK_BOUND_ASYNC
        ):  # a class of the client's own: its close's record (it drops its back-reference)
            _bound_elapsed(bound_stream)
        else:
            _record_elapsed(response, _clock() - start)
    headers = response.headers
    if _has_set_cookie(headers._raw if type(headers) is Headers else headers.raw):
        (_plain_attr(client, ATTR_COOKIES) if plain else client.cookies).extract_cookies(response)
    encoding = _plain_attr(client, ATTR_DEFAULT_ENCODING) if plain else client._default_encoding
    # A stock Response reads the class's "utf-8" until set (httpx sets it in __init__).
    if not (
        stock and type(encoding) is str and encoding == _STOCK_DEFAULT_ENCODING
    ):
        response.default_encoding = encoding
    if _info_logging():
        logger.info(
            'HTTP Request: %s %s "%s %d %s"',
            request.method,
            request.url,
            response.http_version,
            response.status_code,
            response.reason_phrase,
        )
    return 0


# -- the plain path ---------------------------------------------------------------------
#
# httpx's request flow is a chain of methods on the client (request -> build_request ->
# _merge_* -> send -> _set_timeout, _build_request_auth, _send_handling_auth ->
# _send_handling_redirects -> _send_single_request -> _transport_for_url), any of which a
# subclass may override or a test patch (on the class or the instance). When none is,
# the client is "plain" and the steps call each other as C functions instead of looking
# up and calling methods. Whether a class is plain is remembered with its type version
# tag, which CPython clears on any change to the class or a base (a patch, an
# assignment); the instance's own dict is looked at on every request.

# The steps, in the order httpx calls them.
cdef tuple _STEPS = (
    "request", "build_request", "_merge_url", "_merge_headers", "_merge_cookies",
    "_merge_queryparams", "send", "_set_timeout", "_build_request_auth",
    "_send_handling_auth", "_send_handling_redirects", "_send_single_request",
    "_transport_for_url",
)
# The properties httpx's steps read the client's settings through (a subclass may
# override them; they are data descriptors, so an instance cannot).
cdef tuple _STEP_PROPERTIES = ("headers", "cookies", "params", "base_url", "timeout")
cdef tuple _CLASS_NAMES = _STEPS + _STEP_PROPERTIES  # what _class_is_plain compares
cdef tuple _SYNC_STEP_FUNCS = None  # Client's own objects for _CLASS_NAMES
cdef tuple _ASYNC_STEP_FUNCS = None  # AsyncClient's
# One remembered plain class per flavour (programs rarely use more than one).
cdef object _sync_plain_cls = None
cdef unsigned int _sync_plain_tag = 0
cdef object _async_plain_cls = None
cdef unsigned int _async_plain_tag = 0
cdef PyObject* _plain_dict = NULL  # _is_plain's memo of a step-free instance dict
cdef unsigned long long _plain_version = 0


cdef bint _class_is_plain(object cls, tuple funcs) except -1:
    cdef Py_ssize_t i
    for i in range(len(_CLASS_NAMES)):
        if getattr(cls, <str>_CLASS_NAMES[i], None) is not funcs[i]:
            return False
    # The settings _plain_attr reads from the instance dict: no class may make them
    # data descriptors (which would take precedence over the instance's values).
    for klass in cls.__mro__:
        namespace = klass.__dict__
        for name in _PLAIN_ATTRS:
            if name in namespace:
                kind = type(namespace[name])
                if hasattr(kind, "__set__") or hasattr(kind, "__delete__"):
                    return False
    return True


# The client settings the plain path reads straight from the instance dict, by index.
cdef enum _PlainAttr:
    ATTR_HEADERS
    ATTR_COOKIES
    ATTR_PARAMS
    ATTR_TIMEOUT
    ATTR_BASE_URL
    ATTR_MOUNTS
    ATTR_TRANSPORT
    ATTR_EVENT_HOOKS
    ATTR_MAX_REDIRECTS
    ATTR_DEFAULT_ENCODING
    ATTR_FOLLOW_REDIRECTS
    ATTR_STATE
    ATTR_AUTH
    ATTR_COUNT


cdef tuple _plain_attr_names():
    """The names of the _PlainAttr indices, in index order (each index named once)."""
    cdef dict index = {
        ATTR_HEADERS: "_headers",
        ATTR_COOKIES: "_cookies",
        ATTR_PARAMS: "_params",
        ATTR_TIMEOUT: "_timeout",
        ATTR_BASE_URL: "_base_url",
        ATTR_MOUNTS: "_mounts",
        ATTR_TRANSPORT: "_transport",
        ATTR_EVENT_HOOKS: "_event_hooks",
        ATTR_MAX_REDIRECTS: "max_redirects",
        ATTR_DEFAULT_ENCODING: "_default_encoding",
        ATTR_FOLLOW_REDIRECTS: "follow_redirects",
        ATTR_STATE: "_state",
        ATTR_AUTH: "_auth",
    }
    names = tuple([index[i] for i in range(<int>ATTR_COUNT)])  # KeyError: one unnamed
    if len(index) != <int>ATTR_COUNT or len(set(names)) != <int>ATTR_COUNT:
        raise ImportError("httprs._client: _PlainAttr names are not one per index")
    return names


cdef tuple _PLAIN_ATTRS = _plain_attr_names()  # _PLAIN_ATTRS[which] names `which`


# _plain_attr's memo: the values of _PLAIN_ATTRS in the last instance dict read (NULL
# for a name it lacks), borrowed: they are valid while that dict is unchanged, which its
# PEP 509 version (globally unique, renewed by any change) tells; the dict holds them.
cdef PyObject* _attrs_dict = NULL  # compared, never dereferenced
cdef unsigned long long _attrs_version = 0
cdef PyObject* _attrs_values[<int>ATTR_COUNT]


cdef object _plain_attr(object client, _PlainAttr which):
    """`client.<name>` for a plain client (_is_plain; `name` is _PLAIN_ATTRS[which]): its
    instance dict's value (no class defines `name` as a data descriptor), else the
    attribute lookup (its AttributeError). A client's dict does not change from request
    to request: while it is the one last read, unchanged, the values come from the memo.
    The memo is filled in a local array and published whole, with nothing between the
    copy and the (dict, version) pair that could run Python code or switch threads (a
    key's __eq__ may run during the lookups: another thread may publish meanwhile); a
    lookup that fails publishes nothing. When a key's __eq__ changed the dict during the
    lookups, nothing is published and the value is looked up again (what was found,
    borrowed, may have been replaced or deleted)."""
    global _attrs_dict, _attrs_version
    cdef Py_ssize_t i
    cdef PyObject* value
    cdef PyObject* found[<int>ATTR_COUNT]
    instance_dict = PyObject_GenericGetDict(client, NULL)
    cdef unsigned long long version = _dict_version(instance_dict)
    if version == 0:  # not an exact dict, or a Python that keeps no readable version
        value = PyDict_GetItemWithError(instance_dict, <str>_PLAIN_ATTRS[<int>which])
    elif <PyObject*>instance_dict == _attrs_dict and version == _attrs_version:
        value = _attrs_values[<int>which]
    else:
        for i in range(<int>ATTR_COUNT):
            # (A lookup that fails raises here: nothing is published.)
            found[i] = PyDict_GetItemWithError(instance_dict, <str>_PLAIN_ATTRS[i])
        if _dict_version(instance_dict) == version:  # (no key's __eq__ changed it)
            for i in range(<int>ATTR_COUNT):
                _attrs_values[i] = found[i]
            _attrs_dict = <PyObject*>instance_dict
            _attrs_version = version
            value = found[<int>which]
        else:  # a key's __eq__ changed it: what was found may be gone, look it up again
            value = PyDict_GetItemWithError(instance_dict, <str>_PLAIN_ATTRS[<int>which])
    if value == NULL:
        return getattr(client, <str>_PLAIN_ATTRS[<int>which])
    return <object>value


cdef bint _is_plain(object client, bint is_async) except -1:
    """Whether none of the request steps is overridden or patched for `client`."""
    global _sync_plain_cls, _sync_plain_tag, _async_plain_cls, _async_plain_tag
    global _plain_dict, _plain_version
    cls = type(client)
    cdef unsigned int tag = _type_tag(cls)
    if is_async:
        known = tag != 0 and cls is _async_plain_cls and tag == _async_plain_tag
    else:
        known = tag != 0 and cls is _sync_plain_cls and tag == _sync_plain_tag
    if not known:
        # The tag is read before the class is looked at: a change after this read gives
        # the class a new tag, so a tag is never remembered for a state it did not see.
        if tag == 0:
            getattr(cls, "request", None)  # a lookup through the class gives it a tag
            tag = _type_tag(cls)
        if not _class_is_plain(cls, _ASYNC_STEP_FUNCS if is_async else _SYNC_STEP_FUNCS):
            return False
        if is_async:
            _async_plain_cls = cls
            _async_plain_tag = tag
        else:
            _sync_plain_cls = cls
            _sync_plain_tag = tag
    instance_dict = _instance_dict(client)
    if type(instance_dict) is not dict:
        return False
    # The last instance dict found without a step, while its contents are unchanged.
    cdef unsigned long long version = _dict_version(instance_dict)
    if version != 0 and <PyObject*>instance_dict == _plain_dict and version == _plain_version:
        return True
    for name in _STEPS:
        if name in <dict>instance_dict:
            return False
    _plain_dict = <PyObject*>instance_dict  # compared, never dereferenced
    _plain_version = version
    return True


cdef object _instance_dict(object obj):
    """obj.__dict__ (the plain attribute dict a client class has), or None."""
    try:
        return PyObject_GenericGetDict(obj, NULL)
    except AttributeError:
        return None


cdef object _build_request(
    object client, object method, object url, object content, object data, object files,
    object json, object params, object headers, object cookies, object timeout,
    object extensions, bint plain,
):
    """build_request(); `plain`: the client's merge steps are its own (_is_plain).
    The steps run in httpx's order, so the same argument's error wins when two are bad."""
    if plain:
        url = _merge_url(client, url, True)
        headers = _merge_headers(client, headers, True)
        cookies = _merge_cookies(client, cookies, True)
        params = _merge_queryparams(client, params, True)
    else:
        url = client._merge_url(url)
        headers = client._merge_headers(headers)
        cookies = client._merge_cookies(cookies)
        params = client._merge_queryparams(params)
    # The request's own extensions dict (Request copies what it is given).
    if extensions is None:
        if plain and Request is _MODELS_REQUEST:
            snapshot = _client_timeout_snapshot(client, timeout)
            if snapshot is not None:  # the dict made on first access (see Request)
                return Request._for_client(
                    method, url, params, headers, cookies, content, data, files, json, None,
                    snapshot,
                )
        extensions = {"timeout": _timeout_for(client, timeout, plain, False)}
    elif "timeout" not in extensions:  # httpx's steps, and so its errors for bad values
        if not isinstance(extensions, dict) and not hasattr(extensions, "keys"):
            raise TypeError(
                "dict() argument after ** must be a mapping, not "
                + type(extensions).__name__
            )
        extensions = dict(**extensions, timeout=_timeout_for(client, timeout, plain, False))
    else:
        extensions = dict(extensions)
    if Request is _MODELS_REQUEST:
        return Request._for_client(
            method, url, params, headers, cookies, content, data, files, json, extensions
        )
    return Request(
        method,
        url,
        content=content,
        data=data,
        files=files,
        json=json,
        params=params,
        headers=headers,
        cookies=cookies,
        extensions=extensions,
    )


cdef object _MODELS_REQUEST = Request  # _build_request: `Request` is not replaced
# Request's own members the lazy timeout is read past (see Request in _models).
cdef tuple _REQUEST_STOCK = (("extensions", Request.extensions),)


# Absolute URL strings -> (parts of the parsed URL, the memo of a shared URL with them:
# shared_or_none / share_memo). Only while `URL` is the stock class with its own __init__ (a
# class patched in here, or a patched URL.__init__, is called for every request, as
# httpx does). A URL's parts never change (it has no setters; its netloc, raw_path and
# string, made on first use, are made before it is shared), so requests to the same URL
# string share one URL object, handed out while its attribute dict is unchanged: its
# PEP 509 version (globally unique, renewed by any set, delete or dict change) is the
# one recorded when it was made. Code that writes to a URL's attributes all the same
# gets it to itself: the next request makes a new shared URL from the parts. Where the
# version is unreadable (Python 3.12+) each request gets a new URL with the parts.
# Bounded like _urls' parse cache.
cdef dict _absolute_urls = {}
cdef unsigned int _url_tag = 0  # _class_unchanged's memo
cdef unsigned int _response_tag = 0  # the same, for _RESPONSE_STOCK
cdef unsigned int _query_params_tag = 0  # and for _QUERY_PARAMS_STOCK
cdef unsigned int _merge_params_tag = 0  # and for _MERGE_PARAMS_STOCK
cdef Py_ssize_t _ABSOLUTE_URLS_MAX = 256
cdef Py_ssize_t _ABSOLUTE_URL_MAX_LEN = 2048
cdef object _STOCK_URL = URL


cdef object _url_from_template(tuple parts):
    """A new stock URL with the parts (and netloc, raw_path) of a parsed one; the parts
    that hold URL's class defaults (no userinfo, port, query, fragment) are not set."""
    url = _object_new(_STOCK_URL)
    url._scheme = parts[0]
    if parts[1]:
        url._userinfo = parts[1]
    url._host = parts[2]
    if parts[3] is not None:
        url._port = parts[3]
    url._path = parts[4]
    if parts[5] is not None:
        url._query = parts[5]
    if parts[6] is not None:
        url._fragment = parts[6]
    url._netloc = parts[7]
    url._raw_path = parts[8]
    return url


cdef int _share_url(str key, tuple parts, object url) except -1:
    """Make `url` (a stock URL of `parts`, netloc and raw_path made) the one handed out
    for `key`: its _absolute_urls entry is (parts, memo), memo as share_memo gives."""
    _made_whole(url)
    if len(_absolute_urls) >= _ABSOLUTE_URLS_MAX:
        _absolute_urls.clear()
    _absolute_urls[key] = (parts, _share_memo(url, _STOCK_URL))
    return 0


cdef object _shared_url(str key, tuple entry):
    """The URL for `key` from its _absolute_urls entry (parts, memo)."""
    memo = entry[1]
    url = _shared_or_none(memo, _STOCK_URL)
    if url is not None:
        return url
    url = _url_from_template(<tuple>entry[0])
    if memo is not None:  # the shared one was written to: this one is shared from now on
        _share_url(key, <tuple>entry[0], url)
    return url


cdef object _merge_url(object client, object url, bint plain):
    """`plain` (_is_plain): the client's properties are its own, read their attributes."""
    if (
        type(url) is str
        and URL is _STOCK_URL
        and _class_unchanged(_STOCK_URL, &_url_tag, _URL_STOCK)
    ):
        entry = _absolute_urls.get(url)
        if entry is not None:
            return _shared_url(<str>url, <tuple>entry)
        merged = URL(url)
        if merged._scheme and merged._host:
            if len(<str>url) <= _ABSOLUTE_URL_MAX_LEN and type(merged) is _STOCK_URL:
                _share_url(
                    <str>url,
                    (
                        merged._scheme, merged._userinfo, merged._host, merged._port,
                        merged._path, merged._query, merged._fragment, merged.netloc,
                        merged.raw_path,
                    ),
                    merged,
                )
            return merged
    else:
        # A URL object is kept (docs/compatibility.md, "Differences that change no result").
        merged = url if isinstance(url, URL) else URL(url)
    # An httprs URL is relative when it lacks a scheme or a host (is_relative_url).
    if (
        not (merged._scheme and merged._host)
        if type(merged) is _STOCK_URL
        else merged.is_relative_url
    ):
        # Always append to the base URL (which ends in "/"): "/path" on
        # "https://host/sub/" gives "https://host/sub/path".
        base = _plain_attr(client, ATTR_BASE_URL) if plain else client.base_url
        return base.copy_with(raw_path=base.raw_path + merged.raw_path.lstrip(b"/"))
    return merged


cdef object _merge_headers(object client, object headers, bint plain):
    client_headers = _plain_attr(client, ATTR_HEADERS) if plain else client.headers
    if headers is None and plain:
        return client_headers  # Request copies it; no need to copy twice.
    merged = Headers(client_headers)
    merged.update(headers)
    return merged


cdef object _merge_cookies(object client, object cookies, bint plain):
    client_cookies = _plain_attr(client, ATTR_COOKIES) if plain else client.cookies
    if cookies or _has_cookies(client_cookies):
        merged = Cookies(client_cookies)
        merged.update(cookies)
        return merged
    return cookies


cdef object _merge_queryparams(object client, object params, bint plain):
    client_params = _plain_attr(client, ATTR_PARAMS) if plain else client.params
    if params:
        if (
            type(client_params) is QueryParams
            and _class_unchanged(QueryParams, &_merge_params_tag, _MERGE_PARAMS_STOCK)
            and not _has_params(client_params)
        ):
            return QueryParams(params)  # what merging into a copy of no params gives
        return QueryParams(client_params).merge(params)
    if _has_params(client_params):
        return QueryParams(client_params).merge(params)
    return params


cdef object _build_request_auth(object client, object request, object auth, bint plain):
    """The Auth for `request`, or None when none applies (the plain path then skips the
    auth flow; the method returns Auth() instead)."""
    if isinstance(auth, UseClientDefault):
        auth = _plain_attr(client, ATTR_AUTH) if plain else client._auth
    else:
        auth = client._build_auth(auth)  # as httpx: a subclass may override it
    if auth is not None:
        return auth
    url = request.url
    # A stock URL's userinfo is empty exactly when its `_userinfo` is.
    if url._userinfo if type(url) is _STOCK_URL else url.userinfo:
        username = url.username
        password = url.password
        if username or password:
            return BasicAuth(username=username, password=password)
    return None


cdef unsigned int _request_tag = 0  # _lazy_request_timeout's memo


cdef int _set_timeout(object client, object request, bint plain) except -1:
    if _lazy_request_timeout(request, _MODELS_REQUEST, &_request_tag, _REQUEST_STOCK) is not None:
        return 0  # a client's request with its timeout snapshot (its dict not made yet)
    extensions = request.extensions
    if "timeout" not in extensions:
        extensions = dict(extensions)
        extensions["timeout"] = _timeout_for(client, USE_CLIENT_DEFAULT, plain, True)
        request.extensions = extensions
    return 0


cdef object _transport_for_url(object client, object url, bint plain):
    mounts = _plain_attr(client, ATTR_MOUNTS) if plain else client._mounts
    if mounts:
        for pattern, transport in mounts.items():
            if pattern.matches(url):
                if transport is not None:
                    return transport
                break
    return _plain_attr(client, ATTR_TRANSPORT) if plain else client._transport


cdef int _init_base(
    object client, object auth, object params, object headers, object cookies,
    object timeout, object follow_redirects, object max_redirects, object event_hooks,
    object base_url, object trust_env, object default_encoding, bint stock,
) except -1:
    """BaseClient.__init__'s work (Client and AsyncClient call it directly when
    `super().__init__` would reach the stock BaseClient.__init__: _construction_is_stock,
    then `stock`: the methods and the headers setter it uses are the stock ones, their
    work done here)."""
    # As httpx: the base URL and the timeout are stored, not set through their
    # properties (headers is: httpx calls its setter too).
    if not stock:
        client._base_url = _client_base_url(client, base_url)
        client._auth = client._build_auth(auth)
    elif type(base_url) is str and not base_url:
        client._base_url = _client_empty_base_url()
        client._auth = _build_auth(auth)
    else:
        client._base_url = _base_url(base_url)
        client._auth = _build_auth(auth)
    client._params = QueryParams(params)
    if stock:
        client._headers = _client_headers(headers)
    else:
        client.headers = headers
    client._cookies = Cookies(cookies)
    client._timeout = Timeout(timeout)
    client.follow_redirects = follow_redirects
    client.max_redirects = max_redirects
    client._event_hooks = (
        {"request": [], "response": []} if event_hooks is None else _hooks_dict(event_hooks)
    )
    client._trust_env = trust_env
    client._default_encoding = default_encoding
    client._state = _UNOPENED
    return 0


# The last client classes whose construction was found stock (_construction_is_stock),
# with their version tags then: Client's and AsyncClient's (or their subclasses').
cdef object _stock_init_cls = None
cdef unsigned int _stock_init_tag = 0
cdef object _stock_init_cls_async = None
cdef unsigned int _stock_init_tag_async = 0


cdef object _client_headers(object headers):
    """What the stock `headers` setter stores for `headers`."""
    # The defaults as the raw byte pairs Headers({bytes: bytes}) would hold.
    client_headers = Headers._from_raw(_default_header_pairs())
    if headers is not None:
        client_headers.update(headers)
    return client_headers


cdef bint _construction_is_stock(object client, bint is_async) except -1:
    """Whether Client.__init__ (AsyncClient's) may do the work of its steps itself:
    `super().__init__` reaches the stock BaseClient.__init__ (the class after Client in
    the client's MRO is BaseClient, whose __init__ nobody replaced) and the class's
    _init_transport, _init_mounts, _get_proxy_map, _enforce_trailing_slash, _build_auth,
    `headers` property and __setattr__ (object's) are the stock ones. Remembered for
    the class with its version tag (renewed by any change to it or to a base). Not when
    the instance already holds attributes (a subclass's __init__ may set a step on it
    before calling ours): then every step is looked up on the instance, as httpx does."""
    global _stock_init_cls, _stock_init_tag, _stock_init_cls_async, _stock_init_tag_async
    if getattr(client, "__dict__", None):
        return False
    cls = type(client)
    cdef unsigned int tag = _type_tag(cls)
    if tag != 0 and (
        (cls is _stock_init_cls_async and tag == _stock_init_tag_async)
        if is_async
        else (cls is _stock_init_cls and tag == _stock_init_tag)
    ):
        return True
    if tag == 0:
        getattr(cls, "__init__", None)  # a lookup through the class gives it a tag
        tag = _type_tag(cls)
    # The tag is read before the class is looked at (see _is_plain).
    own = AsyncClient if is_async else Client
    mro = cls.__mro__
    if type(mro) is not tuple:
        return False
    cdef tuple classes = <tuple>mro
    cdef Py_ssize_t i
    for i in range(len(classes) - 1):
        if classes[i] is own:
            break
    else:
        return False
    if not (
        classes[i + 1] is BaseClient
        and BaseClient.__dict__.get("__init__") is _STOCK_BASE_INIT
        and getattr(cls, "_init_transport", None)
        is (_STOCK_ASYNC_INIT_TRANSPORT if is_async else _STOCK_INIT_TRANSPORT)
        and getattr(cls, "_init_mounts", None) is _STOCK_INIT_MOUNTS
        and getattr(cls, "_get_proxy_map", None) is _STOCK_GET_PROXY_MAP
        and getattr(cls, "_enforce_trailing_slash", None) is _STOCK_ENFORCE_TRAILING_SLASH
        and getattr(cls, "_build_auth", None) is _STOCK_BUILD_AUTH
        and getattr(cls, "headers", None) is _STOCK_HEADERS
        # A class's own __setattr__ sees every assignment as httpx makes them (the
        # stock path stores `_headers` where httpx assigns `headers`).
        and getattr(cls, "__setattr__", None) is _OBJECT_SETATTR
    ):
        return False
    if tag != 0:
        if is_async:
            _stock_init_cls_async = cls
            _stock_init_tag_async = tag
        else:
            _stock_init_cls = cls
            _stock_init_tag = tag
    return True


cdef int _init_client(
    object client, bint is_async, object transport_cls, object auth, object params,
    object headers, object cookies, object verify, object cert, object trust_env,
    object http1, object http2, object proxy, object mounts, object timeout,
    object follow_redirects, object limits, object max_redirects, object event_hooks,
    object base_url, object transport, object default_encoding,
) except -1:
    """Client.__init__ (AsyncClient's when `is_async`): BaseClient's settings (its
    __init__'s work done here for a stock construction, else `super().__init__`), then
    the transport and mounts."""
    cdef bint stock = _construction_is_stock(client, is_async)
    if stock:
        _init_base(
            client, auth, params, headers, cookies, timeout, follow_redirects,
            max_redirects, event_hooks, base_url, trust_env, default_encoding, True,
        )
    else:
        super(AsyncClient if is_async else Client, client).__init__(
            auth=auth,
            params=params,
            headers=headers,
            cookies=cookies,
            timeout=timeout,
            follow_redirects=follow_redirects,
            max_redirects=max_redirects,
            event_hooks=event_hooks,
            base_url=base_url,
            trust_env=trust_env,
            default_encoding=default_encoding,
        )
    _init_transports(
        client, stock, transport_cls, verify, cert, trust_env, http1, http2, limits, proxy,
        mounts, transport,
    )
    return 0


cdef int _init_transports(
    object client, bint stock, object transport_cls, object verify, object cert,
    object trust_env, object http1, object http2, object limits, object proxy,
    object mounts, object transport,
) except -1:
    """The transport and mounts of Client.__init__ / AsyncClient.__init__, as httpx's:
    `_init_transport()` then `_init_mounts()`, called as methods unless the
    construction is `stock` (_construction_is_stock): then their work is done here (no
    keyword dictionary unpacked into the call, no method lookups). `transport_cls` is
    the module's HTTPTransport / AsyncHTTPTransport as it is now (tests replace it)."""
    transport_kwargs = {
        "verify": verify,
        "cert": cert,
        "trust_env": trust_env,
        "http1": http1,
        "http2": http2,
        "limits": limits,
    }
    if not stock:
        client._transport = client._init_transport(transport=transport, **transport_kwargs)
        client._init_mounts(proxy, mounts, transport, transport_kwargs)
        return 0
    if transport is not None:
        client._transport = transport
    else:
        client._transport = transport_cls(
            verify=verify, cert=cert, trust_env=trust_env, http1=http1, http2=http2,
            limits=limits,
        )
    _set_mounts(
        client,
        _proxy_map(proxy, client._trust_env and transport is None),
        mounts,
        transport_kwargs,
    )
    return 0


cdef object _proxy_map(object proxy, bint allow_env_proxies):
    """The stock `_get_proxy_map`'s work."""
    if proxy is not None:
        return {"all://": Proxy(url=proxy) if isinstance(proxy, (str, URL)) else proxy}
    if not allow_env_proxies:
        return {}
    return {
        key: None if url is None else Proxy(url=url)
        for key, url in get_environment_proxies().items()
    }


cdef int _set_mounts(
    object client, object proxy_map, object mounts, object transport_kwargs
) except -1:
    """The stock `_init_mounts`'s work once it has the proxy map."""
    if not proxy_map and mounts is None:
        client._mounts = {}
        return 0
    result = {}
    for key, value in proxy_map.items():
        if value is None:
            result[URLPattern(key)] = None
        else:
            result[URLPattern(key)] = client._init_proxy_transport(value, **transport_kwargs)
    if mounts is not None:
        for key, value in mounts.items():
            result[URLPattern(key)] = value
    client._mounts = sorted_mounts(result)
    return 0


# Response.close / aclose as compiled: python_methods puts a Python function in front of
# each, and its bytecode is a step where a signal handler's exception could land after
# a stream's exit let go of its response and before the response closed.
cdef object _FRONT_CLOSE = Response.close
cdef object _COMPILED_CLOSE = getattr(_FRONT_CLOSE, "__wrapped__", _FRONT_CLOSE)
cdef object _FRONT_ACLOSE = Response.aclose
cdef object _COMPILED_ACLOSE = getattr(_FRONT_ACLOSE, "__wrapped__", _FRONT_ACLOSE)


cdef class _StreamArgs:
    """A `stream()` call's arguments, kept until its context manager is entered (the
    request is built and sent then, as by httpx's generator-based manager)."""

    cdef object client, method, url, content, data, files, json, params, headers, cookies
    cdef object auth, follow_redirects, timeout, extensions
    cdef object response  # the response given to the block, until its exit closes it
    cdef bint entered

    def __init__(
        self, client, method, url, content, data, files, json, params, headers, cookies,
        auth, follow_redirects, timeout, extensions,
    ):
        self.client = client
        self.method, self.url, self.content, self.data = method, url, content, data
        self.files, self.json, self.params, self.headers = files, json, params, headers
        self.cookies, self.auth, self.follow_redirects = cookies, auth, follow_redirects
        self.timeout, self.extensions = timeout, extensions

    cdef object request(self, bint is_async):
        """The request, built as the client's own request() builds it."""
        if self.entered:
            raise RuntimeError("A stream() context manager can be entered only once.")
        self.entered = True
        if _is_plain(self.client, is_async):
            # build_request and send are the client's own: their steps as C calls, as
            # request() makes them.
            return _build_request(
                self.client, self.method, self.url, self.content, self.data, self.files,
                self.json, self.params, self.headers, self.cookies, self.timeout,
                self.extensions, True,
            )
        return _build_request_via_method(
            self.client, self.method, self.url, self.content, self.data, self.files,
            self.json, self.params, self.headers, self.cookies, self.timeout,
            self.extensions,
        )


@cython.final
cdef class _StreamContext(_StreamArgs):
    """What `Client.stream()` returns. Its `__enter__` sends the request and hands the
    response to the `with` statement without running Python code in between, so a
    signal handler's exception (KeyboardInterrupt, a SIGALRM timeout) cannot fall between
    the two: with a generator-based manager (contextlib's, as httpx's) a response caught
    there stays open in the suspended generator, its connection and pool slot taken, for
    as long as the exception is kept (a test runner's report, a list of errors)."""

    def __enter__(self):
        request = self.request(False)
        if _is_plain(self.client, False):
            self.response = _sync_send(
                self.client, request, True, self.auth, self.follow_redirects, True
            )
        else:
            self.response = self.client.send(
                request=request, auth=self.auth, follow_redirects=self.follow_redirects,
                stream=True,
            )
        return self.response

    def __exit__(self, exc_type, exc, tb):
        response = self.response
        self.response = None
        if response is None:
            pass
        elif type(response).close is _FRONT_CLOSE:
            _COMPILED_CLOSE(response)
        else:
            response.close()
        return False


@cython.final
cdef class _AsyncStreamContext(_StreamArgs):
    """What `AsyncClient.stream()` returns (as `_StreamContext`, for `async with`)."""

    async def __aenter__(self):
        request = self.request(True)
        if _is_plain(self.client, True):
            self.response = await _async_send(
                self.client, request, True, self.auth, self.follow_redirects, True
            )
        else:
            self.response = await self.client.send(
                request=request, auth=self.auth, follow_redirects=self.follow_redirects,
                stream=True,
            )
        return self.response

    async def __aexit__(self, exc_type, exc, tb):
        response = self.response
        self.response = None
        if response is None:
            pass
        elif type(response).aclose is _FRONT_ACLOSE:
            await _COMPILED_ACLOSE(response)
        else:
            await response.aclose()
        return False


class BaseClient:
    """Configuration and request building shared by Client and AsyncClient."""

    def __init__(
        self,
        *,
        auth=None,
        params=None,
        headers=None,
        cookies=None,
        timeout=DEFAULT_TIMEOUT_CONFIG,
        follow_redirects=False,
        max_redirects=DEFAULT_MAX_REDIRECTS,
        event_hooks=None,
        base_url="",
        trust_env=True,
        default_encoding="utf-8",
    ):
        _init_base(
            self, auth, params, headers, cookies, timeout, follow_redirects, max_redirects,
            event_hooks, base_url, trust_env, default_encoding, False,
        )

    # -- configuration properties -----------------------------------------------------

    @property
    def is_closed(self) -> bool:
        """Whether the client has been closed."""
        return self._state == _CLOSED

    @property
    def trust_env(self) -> bool:
        return self._trust_env

    @property
    def timeout(self) -> Timeout:
        return self._timeout

    @timeout.setter
    def timeout(self, timeout: TimeoutTypes) -> None:
        self._timeout = Timeout(timeout)

    @property
    def event_hooks(self) -> dict[str, list[EventHook]]:
        return self._event_hooks

    @event_hooks.setter
    def event_hooks(self, event_hooks: dict[str, list[EventHook]]) -> None:
        self._event_hooks = _hooks_dict(event_hooks)

    @property
    def auth(self) -> Auth | None:
        """The client's default authentication, used when a request gives none."""
        return self._auth

    @auth.setter
    def auth(self, auth: AuthTypes) -> None:
        self._auth = self._build_auth(auth)

    @property
    def base_url(self) -> URL:
        """Base URL that relative request URLs are merged onto."""
        return self._base_url

    @base_url.setter
    def base_url(self, url: URL | str) -> None:
        self._base_url = _client_base_url(self, url)

    @property
    def headers(self) -> Headers:
        """Headers sent with every request."""
        return self._headers

    @headers.setter
    def headers(self, headers: HeaderTypes) -> None:
        self._headers = _client_headers(headers)

    @property
    def cookies(self) -> Cookies:
        """The client's cookie jar: sent with requests, updated from responses."""
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: CookieTypes) -> None:
        self._cookies = Cookies(cookies)

    @property
    def params(self) -> QueryParams:
        """Query parameters added to every request URL."""
        return self._params

    @params.setter
    def params(self, params: QueryParamTypes) -> None:
        self._params = QueryParams(params)

    def _enforce_trailing_slash(self, url):
        if url.raw_path.endswith(b"/"):
            return url
        return url.copy_with(raw_path=url.raw_path + b"/")

    def _build_auth(self, auth):
        return _build_auth(auth)

    # -- building requests ------------------------------------------------------------

    def build_request(
        self,
        method: str,
        url: URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Request:
        """Build a Request, merging url/params/headers/cookies with the client's."""
        return _build_request(
            self, method, url, content, data, files, json, params, headers, cookies, timeout,
            extensions, False,
        )

    # The merge steps read the client's settings through its properties, as httpx's do
    # (a subclass may override them); the plain path reads the attributes behind them.

    def _merge_url(self, url):
        return _merge_url(self, url, False)

    def _merge_headers(self, headers=None):
        if headers is None and _alias.primary() == "httpx2":
            # httpx2 2.17 gives the client's own Headers (the request copies them);
            # httpx 0.28.1 a copy, which the other names keep.
            return self.headers
        return _merge_headers(self, headers, False)

    def _merge_cookies(self, cookies=None):
        return _merge_cookies(self, cookies, False)

    def _merge_queryparams(self, params=None):
        return _merge_queryparams(self, params, False)

    def _build_request_auth(self, request, auth=USE_CLIENT_DEFAULT):
        """The Auth to run for `request`: `Auth()` (which adds nothing) when no
        authentication applies, as httpx's."""
        auth = _build_request_auth(self, request, auth, False)
        return Auth() if auth is None else auth

    def _build_redirect_request(self, request, response):
        """The request that follows the redirect `response` to `request`."""
        method = self._redirect_method(request, response)
        url = self._redirect_url(request, response)
        return Request(
            method=method,
            url=url,
            headers=self._redirect_headers(request, url, method),
            cookies=Cookies(self.cookies),
            stream=self._redirect_stream(request, method),
            extensions=request.extensions,
        )

    # The redirect steps are methods (as in httpx) so subclasses can adjust one of them.

    def _redirect_method(self, request, response):
        return _redirect_method(request, response)

    def _redirect_url(self, request, response):
        return _redirect_url(request, response)

    def _redirect_headers(self, request, url, method):
        return _redirect_headers(request, url, method)

    def _redirect_stream(self, request, method):
        if method != request.method and method == "GET":
            return None  # the body is dropped along with the method change
        return request.stream

    def _set_timeout(self, request):
        _set_timeout(self, request, False)

    def _get_proxy_map(self, proxy, allow_env_proxies):
        """{URL pattern: Proxy, or None for no proxy}: the proxy given, else (when
        `allow_env_proxies`) the environment's. httpx's private helper, which some
        libraries call; __init__ asks it as httpx's does, so an override is seen."""
        return _proxy_map(proxy, allow_env_proxies)

    def _init_mounts(self, proxy, mounts, transport, transport_kwargs):
        _set_mounts(
            self,
            self._get_proxy_map(proxy, self._trust_env and transport is None),
            mounts,
            transport_kwargs,
        )

    def _transport_for_url(self, url):
        """The transport that handles `url`: the most specific matching mount, else default."""
        return _transport_for_url(self, url, False)


cdef int _warn_request_cookies() except -1:
    # At the line that called request() itself, as httpx's stacklevel=2 there; inside
    # httprs when get(), post(), ... called it.
    warn_at_caller_of(
        "request",
        "Setting per-request cookies=<...> is being deprecated, because the expected "
        "behaviour on cookie persistence is ambiguous. Set cookies directly on the "
        "client instance instead.",
        DeprecationWarning,
        "_client",
    )
    return 0


# Client's request steps as C functions; `plain` (see _is_plain): call the next step
# directly, else through the client's method, which a subclass or patch may replace.


cdef object _sync_request(
    object client, object method, object url, object content, object data, object files,
    object json, object params, object headers, object cookies, object auth,
    object follow_redirects, object timeout, object extensions, bint plain,
):
    if cookies is not None:
        _warn_request_cookies()
    if plain:
        request = _build_request(
            client, method, url, content, data, files, json, params, headers, cookies,
            timeout, extensions, True,
        )
        return _sync_send(client, request, False, auth, follow_redirects, True)
    request = _build_request_via_method(
        client, method, url, content, data, files, json, params, headers, cookies, timeout,
        extensions,
    )
    return client.send(request, auth=auth, follow_redirects=follow_redirects)


cdef object _build_request_via_method(
    object client, object method, object url, object content, object data, object files,
    object json, object params, object headers, object cookies, object timeout,
    object extensions,
):
    return client.build_request(
        method=method,
        url=url,
        content=content,
        data=data,
        files=files,
        json=json,
        params=params,
        headers=headers,
        cookies=cookies,
        timeout=timeout,
        extensions=extensions,
    )


cdef object _request_via_method(
    object client, object method, object url, object content, object data, object files,
    object json, object params, object headers, object cookies, object auth,
    object follow_redirects, object timeout, object extensions, bint with_body,
):
    """client.request(...) (a coroutine for an AsyncClient), with the arguments httpx's
    get(), post(), ... pass: no body arguments from get() and the like."""
    if not with_body:
        return client.request(
            method,
            url,
            params=params,
            headers=headers,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            extensions=extensions,
        )
    return client.request(
        method,
        url,
        content=content,
        data=data,
        files=files,
        json=json,
        params=params,
        headers=headers,
        cookies=cookies,
        auth=auth,
        follow_redirects=follow_redirects,
        timeout=timeout,
        extensions=extensions,
    )


cdef object _sync_call(
    object client, object method, object url, object content, object data, object files,
    object json, object params, object headers, object cookies, object auth,
    object follow_redirects, object timeout, object extensions, bint with_body,
):
    """get(), post(), ...: call request(), or go straight on when the client is plain."""
    if _is_plain(client, False):
        return _sync_request(
            client, method, url, content, data, files, json, params, headers, cookies, auth,
            follow_redirects, timeout, extensions, True,
        )
    return _request_via_method(
        client, method, url, content, data, files, json, params, headers, cookies, auth,
        follow_redirects, timeout, extensions, with_body,
    )


# `response.read()` (its work done directly while Response's read is the stock one):
# httprs._models's _read_now.
cdef ReadNow _read_now = <ReadNow>PyCapsule_GetPointer(_READ_NOW, NULL)


cdef object _sync_send(
    object client, object request, bint stream, object auth, object follow_redirects,
    bint plain,
):
    _check_can_send(client, plain)
    follow_redirects = _resolve_follow(client, follow_redirects, plain)
    if plain:
        _set_timeout(client, request, True)
        auth = _build_request_auth(client, request, auth, True)
        if auth is None:
            response = _sync_send_handling_redirects(
                client, request, follow_redirects, _NO_HISTORY, True
            )
        else:
            response = _sync_send_handling_auth(client, request, auth, follow_redirects, [], True)
    else:
        # httpx's chain: _send_handling_auth runs for every request (with Auth(), which
        # does nothing, when none applies), so an override of it sees them all.
        client._set_timeout(request)
        auth = client._build_request_auth(request, auth)
        response = client._send_handling_auth(
            request,
            auth=Auth() if auth is None else auth,
            follow_redirects=follow_redirects,
            history=[],
        )
    if not stream:
        try:
            _read_now(response)
        except BaseException:
            response.close()
            raise
    return response


cdef object _sync_send_handling_auth(
    object client, object request, object auth, object follow_redirects, list history,
    bint plain,
):
    flow = auth.sync_auth_flow(request)
    try:
        request = next(flow)
        while True:
            if plain:
                response = _sync_send_handling_redirects(
                    client, request, follow_redirects, history, True
                )
            else:
                response = client._send_handling_redirects(
                    request, follow_redirects=follow_redirects, history=history
                )
            try:
                try:
                    next_request = flow.send(response)
                except StopIteration:
                    return response
                response.history = list(history)
                _read_now(response)
                request = next_request
                history.append(response)
            except BaseException:
                response.close()
                raise
    finally:
        flow.close()


cdef tuple _REDIRECT_STATUSES = (301, 302, 303, 307, 308)  # the property's codes
cdef frozenset _REDIRECT_STATUS_SET = frozenset(_REDIRECT_STATUSES)  # ... for an exact int


cdef bint _has_redirect_location(object response) except -1:
    """response.has_redirect_location; for a Response whose property is the stock one,
    its status is looked at first without the property call (a Location header matters
    only on a redirect status)."""
    if type(response) is not Response or not _class_unchanged(
        Response, &_response_tag, _RESPONSE_STOCK
    ):
        return response.has_redirect_location
    code = response.status_code
    # An int's hash lookup, not five comparisons (the same answer for an exact int).
    if code not in (_REDIRECT_STATUS_SET if type(code) is int else _REDIRECT_STATUSES):
        return False
    return response.has_redirect_location


# The history the plain path's _*_send_handling_redirects start from: only read (its
# redirects make new lists), never appended to nor handed to a caller.
cdef list _NO_HISTORY = []
cdef object _LAZY = _RESPONSE_LAZY  # (httprs._models: a stock Response's lazy history)
cdef object _MISSING = _RESPONSE_MISSING  # (... its _head when not made by _from_transport)


cdef object _next_request(
    object client, object request, object response, object follow_redirects, list history
):
    """After the response hooks: set `response.history`; the redirect to follow, or None
    when `response` is the one to return."""
    if (
        history
        or not (
            type(response) is Response
            and _class_unchanged(Response, &_response_tag, _RESPONSE_STOCK)
        )
        or response._hist is not _LAZY
        # made without __init__ (and not by _from_transport): it has none to make
        or response._head is _MISSING
    ):
        response.history = list(history)
    # else: a transport response's history not made yet: a new empty list when asked for
    if not _has_redirect_location(response):
        return None
    if not follow_redirects:
        # Not following: an invalid Location fails the send as in httpx 0.28.1; presented
        # as httpx2, it leaves next_request unset and returns the response (httpx2).
        try:
            response.next_request = client._build_redirect_request(request, response)
        except RemoteProtocolError:
            if _alias.primary() != "httpx2":
                raise
        return None
    return client._build_redirect_request(request, response)


cdef inline object _hooks(object client, bint plain):
    """client._event_hooks, read where httpx reads it (a hook may replace it)."""
    return _plain_attr(client, ATTR_EVENT_HOOKS) if plain else client._event_hooks


cdef object _sync_send_handling_redirects(
    object client, object request, object follow_redirects, list history, bint plain
):
    while True:
        if len(history) > (
            _plain_attr(client, ATTR_MAX_REDIRECTS) if plain else client.max_redirects
        ):
            raise TooManyRedirects("Exceeded maximum allowed redirects.", request=request)
        for hook in _hooks(client, plain)["request"]:
            hook(request)
        if plain:
            response = _sync_send_single_request(client, request, True)
        else:
            response = client._send_single_request(request)
        try:
            for hook in _hooks(client, plain)["response"]:
                hook(response)
            next_request = _next_request(client, request, response, follow_redirects, history)
            if next_request is None:
                return response
            request = next_request
            history = history + [response]
            _read_now(response)
        except BaseException:
            response.close()
            raise


# HTTPTransport.handle_request's work, called directly while the method is the stock one.
cdef HandleSync _handle_sync = <HandleSync>PyCapsule_GetPointer(_HANDLE_SYNC, NULL)
cdef object _STOCK_HANDLE_SYNC = HTTPTransport.handle_request


cdef object _sync_send_single_request(object client, object request, bint plain):
    cdef double start
    url = request.url
    transport = _transport_for_url(client, url, True) if plain else client._transport_for_url(url)
    start = _clock()
    body = request.stream
    if type(body) is not _BYTE_STREAM and not isinstance(body, SyncByteStream):
        raise RuntimeError("Attempted to send an async request with a sync Client instance.")
    try:
        if _stock_method(transport, "handle_request", _STOCK_HANDLE_SYNC):
            response = _handle_sync(transport, request)  # (the method's own work)
        else:
            response = transport.handle_request(request)
    except RequestError as exc:
        exc.request = request
        raise
    stream = response.stream
    if type(stream) is not _CORE_RESPONSE_STREAM and not isinstance(stream, SyncByteStream):
        _wrong_stream(stream, "a SyncByteStream", AsyncByteStream, "an async byte stream")
    try:
        _finish_response(client, request, response, stream, start, False, plain)
    except BaseException:  # (cookies and logging run Python code: a signal's exception)
        response.close()
        raise
    return response


class Client(BaseClient):
    """A synchronous HTTP client with connection pooling, redirects, cookie persistence,
    authentication and event hooks. It can be shared between threads.
    """

    def __init__(
        self,
        *,
        auth: AuthTypes | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        verify: ssl.SSLContext | str | bool = True,
        cert: CertTypes | None = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        proxy: ProxyTypes | None = None,
        mounts: None | typing.Mapping[str, BaseTransport | None] = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT_CONFIG,
        follow_redirects: bool = False,
        limits: Limits = DEFAULT_LIMITS,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        event_hooks: None | typing.Mapping[str, list[EventHook]] = None,
        base_url: URL | str = "",
        transport: BaseTransport | None = None,
        default_encoding: str | typing.Callable[[bytes], str] = "utf-8",
    ) -> None:
        _init_client(
            self, False, HTTPTransport, auth, params, headers, cookies, verify, cert, trust_env,
            http1, http2, proxy, mounts, timeout, follow_redirects, limits, max_redirects,
            event_hooks, base_url, transport, default_encoding,
        )

    def _init_transport(
        self,
        verify=True,
        cert=None,
        trust_env=True,
        http1=True,
        http2=False,
        limits=DEFAULT_LIMITS,
        transport=None,
    ):
        if transport is not None:
            return transport
        return HTTPTransport(
            verify=verify, cert=cert, trust_env=trust_env, http1=http1, http2=http2, limits=limits
        )

    def _init_proxy_transport(
        self,
        proxy,
        verify=True,
        cert=None,
        trust_env=True,
        http1=True,
        http2=False,
        limits=DEFAULT_LIMITS,
    ):
        return HTTPTransport(
            verify=verify,
            cert=cert,
            trust_env=trust_env,
            http1=http1,
            http2=http2,
            limits=limits,
            proxy=proxy,
        )

    def request(
        self,
        method: str,
        url: URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Build and send a request (`build_request()` then `send()`)."""
        return _sync_request(
            self, method, url, content, data, files, json, params, headers, cookies, auth,
            follow_redirects, timeout, extensions, _is_plain(self, False),
        )

    def stream(
        self,
        method: str,
        url: URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> typing.Iterator[Response]:
        """Send a request on entering the `with` block and give its response with the
        body unread; close it on exit."""
        # (Annotated as httpx's generator is, for introspection; the stub says what it returns.)
        return _StreamContext(
            self, method, url, content, data, files, json, params, headers, cookies, auth,
            follow_redirects, timeout, extensions,
        )

    def send(
        self,
        request: Request,
        *,
        stream: bool = False,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> Response:
        """Send a Request as-is (handling auth and redirects); read the body unless `stream`."""
        return _sync_send(self, request, stream, auth, follow_redirects, _is_plain(self, False))

    def _send_handling_auth(self, request, auth, follow_redirects, history):
        return _sync_send_handling_auth(self, request, auth, follow_redirects, history, False)

    def _send_handling_redirects(self, request, follow_redirects, history):
        return _sync_send_handling_redirects(self, request, follow_redirects, history, False)

    def _send_single_request(self, request):
        return _sync_send_single_request(self, request, False)

    def get(
        self,
        url: URL | str,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Send a `GET` request."""
        return _sync_call(
            self, "GET", url, None, None, None, None, params, headers,
            cookies, auth, follow_redirects, timeout, extensions, False,
        )

    def options(
        self,
        url: URL | str,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Send an `OPTIONS` request."""
        return _sync_call(
            self, "OPTIONS", url, None, None, None, None, params, headers,
            cookies, auth, follow_redirects, timeout, extensions, False,
        )

    def head(
        self,
        url: URL | str,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Send a `HEAD` request."""
        return _sync_call(
            self, "HEAD", url, None, None, None, None, params, headers,
            cookies, auth, follow_redirects, timeout, extensions, False,
        )

    def post(
        self,
        url: URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Send a `POST` request."""
        return _sync_call(
            self, "POST", url, content, data, files, json, params, headers,
            cookies, auth, follow_redirects, timeout, extensions, True,
        )

    def put(
        self,
        url: URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Send a `PUT` request."""
        return _sync_call(
            self, "PUT", url, content, data, files, json, params, headers,
            cookies, auth, follow_redirects, timeout, extensions, True,
        )

    def patch(
        self,
        url: URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Send a `PATCH` request."""
        return _sync_call(
            self, "PATCH", url, content, data, files, json, params, headers,
            cookies, auth, follow_redirects, timeout, extensions, True,
        )

    def delete(
        self,
        url: URL | str,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Send a `DELETE` request."""
        return _sync_call(
            self, "DELETE", url, None, None, None, None, params, headers,
            cookies, auth, follow_redirects, timeout, extensions, False,
        )

    def query(
        self,
        url: URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Send a `QUERY` request (a safe, idempotent request with a body: RFC 10008)."""
        return _sync_call(
            self, "QUERY", url, content, data, files, json, params, headers,
            cookies, auth, follow_redirects, timeout, extensions, True,
        )

    def sse(
        self,
        url: URL | str,
        *,
        method: str = "GET",
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
        max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE_BYTES,
    ) -> Generator[EventSource]:
        """Connect to a server-sent events endpoint: a context manager yielding an
        `EventSource`, whose iteration yields `ServerSentEvent`s (httpx2's API).
        `Accept: text/event-stream` and `Cache-Control: no-store` are sent unless
        `headers` overrides them; `max_event_size` bounds one event's buffered bytes."""
        return connect_sse(
            self,
            method,
            url,
            max_event_size=max_event_size,
            content=content,
            data=data,
            files=files,
            json=json,
            params=params,
            headers=headers,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            extensions=extensions,
        )

    def websocket(
        self,
        url: URL | str,
        *,
        max_message_size_bytes: int = 65_536,
        queue_size: int = 512,
        keepalive_ping_interval_seconds: float | None = 20.0,
        keepalive_ping_timeout_seconds: float | None = 20.0,
        subprotocols: list[str] | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Generator[WebSocketSession]:
        """Open a WebSocket session with this client's configuration: a context manager
        yielding a `httprs.websockets.WebSocketSession` (httpx2's API; needs `wsproto`)."""
        try:
            from httprs.websockets import connect_ws
        except ImportError as e:  # wsproto missing
            raise ImportError(
                "WebSocket support requires the `wsproto` package. "
                "Install it with `pip install httprs[ws]`."
            ) from e
        return connect_ws(
            str(url),
            self,
            max_message_size_bytes=max_message_size_bytes,
            queue_size=queue_size,
            keepalive_ping_interval_seconds=keepalive_ping_interval_seconds,
            keepalive_ping_timeout_seconds=keepalive_ping_timeout_seconds,
            subprotocols=subprotocols,
            params=params,
            headers=headers,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            extensions=extensions,
        )

    def close(self) -> None:
        """Close the transport and every mounted transport."""
        if self._state != _CLOSED:
            self._state = _CLOSED
            self._transport.close()
            for transport in self._mounts.values():
                if transport is not None:
                    transport.close()

    def __enter__(self):
        _check_can_open(self)
        self._transport.__enter__()
        for transport in self._mounts.values():
            if transport is not None:
                transport.__enter__()
        return self

    def __exit__(self, exc_type=None, exc_value=None, traceback=None):
        self._state = _CLOSED
        self._transport.__exit__(exc_type, exc_value, traceback)
        for transport in self._mounts.values():
            if transport is not None:
                transport.__exit__(exc_type, exc_value, traceback)


# `await response.aread()` without the await where it would wait for nothing (a body read
# with its head): httprs._models's _aread_now.
cdef AreadNow _aread_now = <AreadNow>PyCapsule_GetPointer(_AREAD_NOW, NULL)
# AsyncHTTPTransport.handle_async_request's coroutine's steps (httprs._core).
cdef HandleAsync _handle_async = <HandleAsync>PyCapsule_GetPointer(_HANDLE_ASYNC, NULL)
cdef object _STOCK_HANDLE_ASYNC = AsyncHTTPTransport.handle_async_request


cdef object _async_call(
    object client, object method, object url, object content, object data, object files,
    object json, object params, object headers, object cookies, object auth,
    object follow_redirects, object timeout, object extensions, bint with_body,
):
    """_sync_call's twin: what the caller (an AsyncClient method, itself a coroutine)
    awaits. A function, not a coroutine of its own: its steps wait for nothing."""
    if _is_plain(client, True):
        return _async_request(
            client, method, url, content, data, files, json, params, headers, cookies, auth,
            follow_redirects, timeout, extensions, True,
        )
    return _request_via_method(
        client, method, url, content, data, files, json, params, headers, cookies, auth,
        follow_redirects, timeout, extensions, with_body,
    )


cdef object _async_request(
    object client, object method, object url, object content, object data, object files,
    object json, object params, object headers, object cookies, object auth,
    object follow_redirects, object timeout, object extensions, bint plain,
):
    """AsyncClient.request's steps up to the send, whose coroutine it returns (as
    _async_call)."""
    if cookies is not None:
        _warn_request_cookies()
    if plain:
        request = _build_request(
            client, method, url, content, data, files, json, params, headers, cookies,
            timeout, extensions, True,
        )
        return _async_send(client, request, False, auth, follow_redirects, True)
    request = _build_request_via_method(
        client, method, url, content, data, files, json, params, headers, cookies, timeout,
        extensions,
    )
    return client.send(request, auth=auth, follow_redirects=follow_redirects)


async def _async_send(
    object client, object request, bint stream, object auth, object follow_redirects,
    bint plain,
):
    _check_can_send(client, plain)
    follow_redirects = _resolve_follow(client, follow_redirects, plain)
    if plain:
        _set_timeout(client, request, True)
        auth = _build_request_auth(client, request, auth, True)
        if auth is None:
            response = await _async_send_handling_redirects(
                client, request, follow_redirects, _NO_HISTORY, True
            )
        else:
            response = await _async_send_handling_auth(
                client, request, auth, follow_redirects, [], True
            )
    else:
        client._set_timeout(request)  # httpx's chain, as in _sync_send
        auth = client._build_request_auth(request, auth)
        response = await client._send_handling_auth(
            request,
            auth=Auth() if auth is None else auth,
            follow_redirects=follow_redirects,
            history=[],
        )
    if not stream:
        try:
            if not _aread_now(response):
                await response.aread()
        except BaseException:
            await response.aclose()
            raise
    return response


async def _async_send_handling_auth(
    object client, object request, object auth, object follow_redirects, list history,
    bint plain,
):
    flow = auth.async_auth_flow(request)
    try:
        request = await flow.__anext__()
        while True:
            if plain:
                response = await _async_send_handling_redirects(
                    client, request, follow_redirects, history, True
                )
            else:
                response = await client._send_handling_redirects(
                    request, follow_redirects=follow_redirects, history=history
                )
            try:
                try:
                    next_request = await flow.asend(response)
                except StopAsyncIteration:
                    return response
                response.history = list(history)
                if not _aread_now(response):
                    await response.aread()
                request = next_request
                history.append(response)
            except BaseException:
                await response.aclose()
                raise
    finally:
        await flow.aclose()


async def _async_send_handling_redirects(
    object client, object request, object follow_redirects, list history, bint plain
):
    while True:
        if len(history) > (
            _plain_attr(client, ATTR_MAX_REDIRECTS) if plain else client.max_redirects
        ):
            raise TooManyRedirects("Exceeded maximum allowed redirects.", request=request)
        for hook in _hooks(client, plain)["request"]:
            await hook(request)
        if plain:
            response = await _async_send_single_request(client, request, True)
        else:
            response = await client._send_single_request(request)
        try:
            for hook in _hooks(client, plain)["response"]:
                await hook(response)
            next_request = _next_request(client, request, response, follow_redirects, history)
            if next_request is None:
                return response
            request = next_request
            history = history + [response]
            if not _aread_now(response):
                await response.aread()
        except BaseException:
            await response.aclose()
            raise


async def _async_send_single_request(object client, object request, bint plain):
    cdef double start
    url = request.url
    transport = _transport_for_url(client, url, True) if plain else client._transport_for_url(url)
    start = _clock()
    body = request.stream
    if type(body) is not _BYTE_STREAM and not isinstance(body, AsyncByteStream):
        from httprs._alias import worded

        raise RuntimeError(worded(
            "Attempted to send an sync request with an AsyncClient instance.",
            "Attempted to send a sync request with an AsyncClient instance.",
        ))
    try:
        if _stock_method(transport, "handle_async_request", _STOCK_HANDLE_ASYNC):
            # What the stock method awaits, awaited here: one coroutine fewer.
            response = await _handle_async(transport, request)
        else:
            response = await transport.handle_async_request(request)
    except RequestError as exc:
        exc.request = request
        raise
    stream = response.stream
    if type(stream) is not _CORE_ASYNC_RESPONSE_STREAM and not isinstance(stream, AsyncByteStream):
        _wrong_stream(stream, "an AsyncByteStream", SyncByteStream, "a sync byte stream")
    try:
        _finish_response(client, request, response, stream, start, True, plain)
    except BaseException:  # (as in the sync twin)
        await response.aclose()
        raise
    return response


class AsyncClient(BaseClient):
    """An asynchronous HTTP client (asyncio or trio) with connection pooling, redirects,
    cookie persistence, authentication and event hooks. It can be shared between tasks.
    """

    def __init__(
        self,
        *,
        auth: AuthTypes | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        verify: ssl.SSLContext | str | bool = True,
        cert: CertTypes | None = None,
        http1: bool = True,
        http2: bool = False,
        proxy: ProxyTypes | None = None,
        mounts: None | typing.Mapping[str, AsyncBaseTransport | None] = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT_CONFIG,
        follow_redirects: bool = False,
        limits: Limits = DEFAULT_LIMITS,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        event_hooks: None | typing.Mapping[str, list[EventHook]] = None,
        base_url: URL | str = "",
        transport: AsyncBaseTransport | None = None,
        trust_env: bool = True,
        default_encoding: str | typing.Callable[[bytes], str] = "utf-8",
    ) -> None:
        _init_client(
            self, True, AsyncHTTPTransport, auth, params, headers, cookies, verify, cert, trust_env,
            http1, http2, proxy, mounts, timeout, follow_redirects, limits, max_redirects,
            event_hooks, base_url, transport, default_encoding,
        )

    def _init_transport(
        self,
        verify=True,
        cert=None,
        trust_env=True,
        http1=True,
        http2=False,
        limits=DEFAULT_LIMITS,
        transport=None,
    ):
        if transport is not None:
            return transport
        return AsyncHTTPTransport(
            verify=verify, cert=cert, trust_env=trust_env, http1=http1, http2=http2, limits=limits
        )

    def _init_proxy_transport(
        self,
        proxy,
        verify=True,
        cert=None,
        trust_env=True,
        http1=True,
        http2=False,
        limits=DEFAULT_LIMITS,
    ):
        return AsyncHTTPTransport(
            verify=verify,
            cert=cert,
            trust_env=trust_env,
            http1=http1,
            http2=http2,
            limits=limits,
            proxy=proxy,
        )

    async def request(
        self,
        method: str,
        url: URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Build and send a request (`build_request()` then `send()`)."""
        return await _async_request(
            self, method, url, content, data, files, json, params, headers, cookies, auth,
            follow_redirects, timeout, extensions, _is_plain(self, True),
        )

    def stream(
        self,
        method: str,
        url: URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> typing.AsyncIterator[Response]:
        """Send a request on entering the `async with` block and give its response with
        the body unread; close it on exit."""
        # (Annotated as httpx's generator is, for introspection; the stub says what it returns.)
        return _AsyncStreamContext(
            self, method, url, content, data, files, json, params, headers, cookies, auth,
            follow_redirects, timeout, extensions,
        )

    async def send(
        self,
        request: Request,
        *,
        stream: bool = False,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> Response:
        """Send a Request as-is (handling auth and redirects); read the body unless `stream`."""
        return await _async_send(
            self, request, stream, auth, follow_redirects, _is_plain(self, True)
        )

    async def _send_handling_auth(self, request, auth, follow_redirects, history):
        return await _async_send_handling_auth(
            self, request, auth, follow_redirects, history, False
        )

    async def _send_handling_redirects(self, request, follow_redirects, history):
        return await _async_send_handling_redirects(
            self, request, follow_redirects, history, False
        )

    async def _send_single_request(self, request):
        return await _async_send_single_request(self, request, False)

    async def get(
        self,
        url: URL | str,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Send a `GET` request."""
        return await _async_call(
            self, "GET", url, None, None, None, None, params, headers,
            cookies, auth, follow_redirects, timeout, extensions, False,
        )

    async def options(
        self,
        url: URL | str,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Send an `OPTIONS` request."""
        return await _async_call(
            self, "OPTIONS", url, None, None, None, None, params, headers,
            cookies, auth, follow_redirects, timeout, extensions, False,
        )

    async def head(
        self,
        url: URL | str,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Send a `HEAD` request."""
        return await _async_call(
            self, "HEAD", url, None, None, None, None, params, headers,
            cookies, auth, follow_redirects, timeout, extensions, False,
        )

    async def post(
        self,
        url: URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Send a `POST` request."""
        return await _async_call(
            self, "POST", url, content, data, files, json, params, headers,
            cookies, auth, follow_redirects, timeout, extensions, True,
        )

    async def put(
        self,
        url: URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Send a `PUT` request."""
        return await _async_call(
            self, "PUT", url, content, data, files, json, params, headers,
            cookies, auth, follow_redirects, timeout, extensions, True,
        )

    async def patch(
        self,
        url: URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Send a `PATCH` request."""
        return await _async_call(
            self, "PATCH", url, content, data, files, json, params, headers,
            cookies, auth, follow_redirects, timeout, extensions, True,
        )

    async def delete(
        self,
        url: URL | str,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Send a `DELETE` request."""
        return await _async_call(
            self, "DELETE", url, None, None, None, None, params, headers,
            cookies, auth, follow_redirects, timeout, extensions, False,
        )

    async def query(
        self,
        url: URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        """Send a `QUERY` request (a safe, idempotent request with a body: RFC 10008)."""
        return await _async_call(
            self, "QUERY", url, content, data, files, json, params, headers,
            cookies, auth, follow_redirects, timeout, extensions, True,
        )

    def sse(
        self,
        url: URL | str,
        *,
        method: str = "GET",
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
        max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE_BYTES,
    ) -> AsyncGenerator[EventSource]:
        """Connect to a server-sent events endpoint: a context manager yielding an
        `EventSource`, whose iteration yields `ServerSentEvent`s (httpx2's API).
        `Accept: text/event-stream` and `Cache-Control: no-store` are sent unless
        `headers` overrides them; `max_event_size` bounds one event's buffered bytes."""
        return aconnect_sse(
            self,
            method,
            url,
            max_event_size=max_event_size,
            content=content,
            data=data,
            files=files,
            json=json,
            params=params,
            headers=headers,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            extensions=extensions,
        )

    def websocket(
        self,
        url: URL | str,
        *,
        max_message_size_bytes: int = 65_536,
        queue_size: int = 512,
        keepalive_ping_interval_seconds: float | None = 20.0,
        keepalive_ping_timeout_seconds: float | None = 20.0,
        subprotocols: list[str] | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> AsyncGenerator[AsyncWebSocketSession]:
        """Open a WebSocket session with this client's configuration: a context manager
        yielding a `httprs.websockets.AsyncWebSocketSession` (httpx2's API; needs `wsproto`)."""
        try:
            from httprs.websockets import aconnect_ws
        except ImportError as e:  # wsproto missing
            raise ImportError(
                "WebSocket support requires the `wsproto` package. "
                "Install it with `pip install httprs[ws]`."
            ) from e
        return aconnect_ws(
            str(url),
            self,
            max_message_size_bytes=max_message_size_bytes,
            queue_size=queue_size,
            keepalive_ping_interval_seconds=keepalive_ping_interval_seconds,
            keepalive_ping_timeout_seconds=keepalive_ping_timeout_seconds,
            subprotocols=subprotocols,
            params=params,
            headers=headers,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        """Close the transport and every mounted transport."""
        if self._state != _CLOSED:
            self._state = _CLOSED
            await self._transport.aclose()
            for transport in self._mounts.values():
                if transport is not None:
                    await transport.aclose()

    async def __aenter__(self):
        _check_can_open(self)
        await self._transport.__aenter__()
        for transport in self._mounts.values():
            if transport is not None:
                await transport.__aenter__()
        return self

    async def __aexit__(self, exc_type=None, exc_value=None, traceback=None):
        self._state = _CLOSED
        await self._transport.__aexit__(exc_type, exc_value, traceback)
        for transport in self._mounts.values():
            if transport is not None:
                await transport.__aexit__(exc_type, exc_value, traceback)


# Python functions in front of the compiled methods (httprs._methods), before any is
# recorded as the stock one below.
python_methods(BaseClient, Client, AsyncClient)
_SYNC_STEP_FUNCS = tuple(getattr(Client, name) for name in _CLASS_NAMES)
cdef object _STOCK_ENFORCE_TRAILING_SLASH = BaseClient._enforce_trailing_slash
cdef object _OBJECT_SETATTR = object.__setattr__
cdef object _STOCK_BASE_INIT = BaseClient.__dict__["__init__"]
cdef object _STOCK_BUILD_AUTH = BaseClient._build_auth
cdef object _STOCK_HEADERS = BaseClient.__dict__["headers"]
cdef object _STOCK_INIT_MOUNTS = BaseClient._init_mounts
cdef object _STOCK_GET_PROXY_MAP = BaseClient._get_proxy_map
cdef object _STOCK_INIT_TRANSPORT = Client._init_transport
cdef object _STOCK_ASYNC_INIT_TRANSPORT = AsyncClient._init_transport
cdef tuple _QUERY_PARAMS_STOCK = (("__bool__", QueryParams.__bool__), ("__len__", QueryParams.__len__))
# ... and what merging into a copy of empty client params steps through.
cdef tuple _MERGE_PARAMS_STOCK = _QUERY_PARAMS_STOCK + (
    ("__init__", QueryParams.__init__),
    ("merge", QueryParams.merge),
)
cdef tuple _RESPONSE_STOCK = (
    ("has_redirect_location", Response.has_redirect_location),
    ("history", Response.history),
    ("request", Response.request),
    ("default_encoding", Response.default_encoding),
)
cdef str _STOCK_DEFAULT_ENCODING = Response.default_encoding
cdef tuple _CORE_STREAM_STOCK = (
    ("_httprs_read_all", _CORE_RESPONSE_STREAM._httprs_read_all),
    ("close", _CORE_RESPONSE_STREAM.close),
    ("_body", _CORE_RESPONSE_STREAM.__dict__["_body"]),  # (read at its offset)
    ("__getattribute__", object.__getattribute__),  # (which that read stands in for)
)
cdef tuple _CORE_ASYNC_STREAM_STOCK = (
    ("_httprs_aread_all", _CORE_ASYNC_RESPONSE_STREAM._httprs_aread_all),
    ("aclose", _CORE_ASYNC_RESPONSE_STREAM.aclose),
    ("_body", _CORE_ASYNC_RESPONSE_STREAM.__dict__["_body"]),
    ("__getattribute__", object.__getattribute__),
)
cdef tuple _CORE_AITER_STOCK = (("__aiter__", _CORE_ASYNC_RESPONSE_STREAM.__aiter__),)
_core_body_at = _slot_offset(_CORE_RESPONSE_STREAM, "_body")
_core_abody_at = _slot_offset(_CORE_ASYNC_RESPONSE_STREAM, "_body")
# What _class_unchanged compares (the methods behind the fast paths).
cdef tuple _URL_STOCK = (("__init__", URL.__init__),)
cdef tuple _TIMEOUT_STOCK = (
    ("as_dict", Timeout.as_dict), ("__init__", Timeout.__init__),
    ("connect", None), ("read", None), ("write", None), ("pool", None),
)
_ASYNC_STEP_FUNCS = tuple(getattr(AsyncClient, name) for name in _CLASS_NAMES)
_BOUND_SYNC_INIT = BoundSyncStream.__init__
_BOUND_ASYNC_INIT = BoundAsyncStream.__init__
# The classes as defined here: while `BoundSyncStream` / `BoundAsyncStream` is not
# replaced in this module, a core stream gets the subclass that reads the whole body at
# once; a replaced one wraps every response, as httpx's `_client.BoundSyncStream` does.
cdef object _STOCK_BOUND_SYNC = BoundSyncStream
cdef object _STOCK_BOUND_ASYNC = BoundAsyncStream
cdef object _READ_ALL_SYNC = _BoundSyncStreamReadAll
cdef object _READ_ALL_ASYNC = _BoundAsyncStreamReadAll
cdef tuple _READ_ALL_SYNC_STOCK = (("__init__", _BOUND_SYNC_INIT),)
# The slots' descriptors, and the attribute access a patch could route them through.
cdef tuple _SLOT_ACCESS_STOCK = (
    ("__getattribute__", object.__getattribute__), ("__setattr__", object.__setattr__)
)
cdef tuple _READ_ALL_SYNC_SLOTS = tuple(
    [(name, _BoundSyncStreamReadAll.__dict__[name]) for name in _BOUND_SLOT_NAMES]
) + _SLOT_ACCESS_STOCK
cdef tuple _READ_ALL_ASYNC_SLOTS = tuple(
    [(name, _BoundAsyncStreamReadAll.__dict__[name]) for name in _BOUND_SLOT_NAMES]
) + _SLOT_ACCESS_STOCK
for _i, _name in enumerate(_BOUND_SLOT_NAMES):
    _sync_slots[_i] = _slot_offset(_BoundSyncStreamReadAll, _name)
    _async_slots[_i] = _slot_offset(_BoundAsyncStreamReadAll, _name)
del _i, _name
cdef tuple _ELAPSED_STOCK = (("elapsed", Response.elapsed),)  # (a patched one is set)
cdef object _BOUND_READ_ALL = _BoundSyncStreamReadAll._httprs_read_all
cdef object _BOUND_ITER = BoundSyncStream.__iter__
cdef tuple _READ_ALL_ITER_STOCK = (("__iter__", _BOUND_ITER),)
cdef object _BOUND_AITER = BoundAsyncStream.__aiter__
cdef object _BOUND_AITER_GEN = BoundAsyncStream._aiter
cdef tuple _READ_ALL_AITER_STOCK = (("__aiter__", _BOUND_AITER), ("_aiter", _BOUND_AITER_GEN))
cdef object _BOUND_CLOSE = BoundSyncStream.close
cdef object _BOUND_AREAD_ALL = _BoundAsyncStreamReadAll._httprs_aread_all
cdef object _BOUND_ACLOSE = BoundAsyncStream.aclose
# Response.read / close of a response bound here call _bound_read_all / _bound_close.
_models_lend_bound_stream(PyCapsule_New(<void*>&_bound_ops, NULL, NULL))
cdef tuple _READ_ALL_ASYNC_STOCK = (("__init__", _BOUND_ASYNC_INIT),)
