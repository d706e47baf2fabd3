# cython: language_level=3, annotation_typing=False
"""Bridge between the httpx-shaped API and the C++ core (src/).

`HTTPTransport` / `AsyncHTTPTransport` turn a Request into a RequestSpec for
the engine, wait for the response head with the GIL released, and hand back a
Response whose stream pulls the body from the engine. C++ errors come back as
(kind, message) and become httpx exception classes here, in one table.
"""

import base64
import errno
import functools
import logging
import math
import operator
import os
import socket
import ssl
import sys
import threading

cimport cython
from cpython.buffer cimport PyObject_CheckBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem, PyDict_Next
from cpython.exc cimport PyErr_CheckSignals
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.module cimport PyImport_GetModuleDict
from cpython.object cimport PyObject, PyTypeObject
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_New
from cpython.pythread cimport PyThread_get_thread_ident
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_REFCNT
from libc.limits cimport INT_MAX
from libc.stdint cimport uint64_t
from libc.string cimport memchr, memcmp, memcpy
from libcpp cimport bool as cbool
from libcpp.memory cimport make_shared, shared_ptr
from libcpp.pair cimport pair
from libcpp.string cimport npos, string
from libcpp.string_view cimport string_view
from libcpp.utility cimport move
from libcpp.vector cimport vector

from httprs._methods import warn_inside
from httprs._transports import AsyncBaseTransport, BaseTransport
from httprs.includes.engine cimport (
    ConsumerGate,
    Engine,
    HttpVersions,
    kMinLibuvVersion,
    libuv_runtime_version,
    libuv_supported,
    PoolLimits,
    RawState,
    RequestSpec,
    SinkUse,
    SocketOption,
    SocketOptionKind,
    SocketOptions,
    TraceStep,
    Transfer,
    WaitFor,
    Wake,
)
from httprs.includes.bound_stream cimport TransportResponse
from httprs.includes.connection_info cimport (
    AddressFamily,
    ConnectionInfo,
    SocketAddress,
    TlsFacts,
    TlsKind,
)
from httprs.includes.errors cimport Error, ErrorKind
from httprs.includes.http1 cimport (
    BodyFraming,
    BodyKind,
    HeaderBlock,
    HeaderList,
    llhttp_is_strict,
    RequestPlan,
    plan_request,
    serialize_request,
    switches_protocols,
    write_planned_head,
)
from httprs.includes.pyobject cimport PyObject_GenericGetDict
from httprs.includes.pyobject cimport dict_version as _dict_version
from httprs.includes.pyobject cimport dict_versions as _dict_versions
from httprs.includes.pyobject cimport lazy_request_timeout as _lazy_request_timeout
from httprs.includes.pyobject cimport object_new as _object_new
from httprs.includes.pyobject cimport type_tag as _type_tag
from httprs.includes.scratch cimport scratch_fail_next
from httprs.includes.tls_gate cimport TlsGate
from httprs.includes.socket_stream cimport FaultSite, fault_arm, fault_calls
from httprs.includes.tls cimport (
    ForeignTlsInfo,
    ForeignTlsOps,
    kForeignRefused,
    OpenSSL_version_num,
    SSL_CTX,
    SSL_CTX_get_options,
    SSL_CTX_get_verify_mode,
    SSL_CTX_new,
    TlsConfig,
    TlsContext,
    TlsPolicy,
)

from httprs import _exceptions as exc
from httprs._config import (
    DEFAULT_LIMITS,
    Proxy,
    _check_verify_path_without_cert,
    _fresh_context,
)
from httprs._content import AsyncByteStream, SyncByteStream, _LazyAsyncIterator
from httprs._models import Headers, Request, Response
from httprs._urls import URL

# How often a blocked wait comes back to check for signals (Ctrl-C).
DEF SLICE_MS = 50


def _check_runtime(unsigned uv_version, bint llhttp_strict):
    """Refuse to run on a libuv or llhttp the core cannot be correct with.

    libuv: at least 1.44 (src/engine_wait.cc says why); the shared library loaded
    at run time may be older than the headers the module was built with.
    llhttp: it must reject what only a lenient parser accepts (bare LF line
    endings, Content-Length with Transfer-Encoding, ...); an llhttp 8 built
    without LLHTTP_STRICT_MODE is lenient whatever its runtime flags say.
    """
    if not libuv_supported(uv_version):
        raise ImportError(
            "httprs needs libuv >= %d.%d (found %d.%d.%d): its event loop driving relies on "
            "uv_backend_timeout() returning 0 while watchers are queued (libuv 1.44)"
            % (
                kMinLibuvVersion >> 16, (kMinLibuvVersion >> 8) & 0xFF,
                uv_version >> 16, (uv_version >> 8) & 0xFF, uv_version & 0xFF,
            )
        )  # fmt: skip
    if not llhttp_strict:
        raise ImportError(
            "httprs was built against a lenient llhttp (an llhttp 8 without "
            "LLHTTP_STRICT_MODE): responses it must reject would be accepted; rebuild "
            "with llhttp >= 9 or with the bundled sources (meson option llhttp_src)"
        )


_check_runtime(libuv_runtime_version(), llhttp_is_strict())
Engine.prepare_process()  # (libuv's one-time set-up, while descriptors are to be had)

cdef dict _FAULT_SITES = {
    "connect": FaultSite.kConnect,
    "write": FaultSite.kWrite,
    "read": FaultSite.kRead,
}
# errno names a failed call reports, as libuv statuses (negated errnos).
cdef dict _FAULT_STATUSES = {
    "ECONNREFUSED": -errno.ECONNREFUSED,
    "ECONNRESET": -errno.ECONNRESET,
    "EPIPE": -errno.EPIPE,
}


def _fault_arm(str site, int k, str status="ECONNRESET"):
    """Tests (tests/test_torture.py): make the k-th connect, write or read from now on,
    in any engine of the process, fail with `status`; k = 0 disarms and only counts."""
    if k < 0:
        raise ValueError("k must be >= 0")
    fault_arm(<FaultSite>_FAULT_SITES[site], k, <int>_FAULT_STATUSES[status])


def _scratch_fail(int n):
    """Tests (tests/test_torture.py): the next `n` allocations of a per-thread read or
    decoding buffer (src/scratch.h) fail as on an exhausted heap; 0 disarms. Returns
    how many of those armed before had not fired."""
    if n < 0:
        raise ValueError("n must be >= 0")
    return scratch_fail_next(n)


def _tls_gate_pause(int ms):
    """Tests (tests/test_fork.py): the next TLS context built (src/tls_gate.h) waits `ms`
    inside the gate fork() closes."""
    TlsGate.pause_next(ms)


def _tls_gate_inside():
    """Tests: how many threads are building a TLS context inside the fork gate now."""
    return TlsGate.inside()


def _spare_loop_count():
    """Tests: emptied event loops of closed clients kept for new clients (at most 4)."""
    return Engine.spare_loop_count()


def _fault_calls(str site):
    """Tests: the calls at `site` since it was last armed."""
    return fault_calls(<FaultSite>_FAULT_SITES[site])

cdef dict _ERROR_CLASSES = {
    <int>ErrorKind.kConnectError: exc.ConnectError,
    <int>ErrorKind.kConnectTimeout: exc.ConnectTimeout,
    <int>ErrorKind.kReadError: exc.ReadError,
    <int>ErrorKind.kReadTimeout: exc.ReadTimeout,
    <int>ErrorKind.kWriteError: exc.WriteError,
    <int>ErrorKind.kWriteTimeout: exc.WriteTimeout,
    <int>ErrorKind.kPoolTimeout: exc.PoolTimeout,
    <int>ErrorKind.kRemoteProtocolError: exc.RemoteProtocolError,
    <int>ErrorKind.kLocalProtocolError: exc.LocalProtocolError,
    <int>ErrorKind.kProxyError: exc.ProxyError,
    <int>ErrorKind.kUnsupportedProtocol: exc.UnsupportedProtocol,
    <int>ErrorKind.kDecodingError: exc.DecodingError,
    <int>ErrorKind.kClosed: exc.ReadError,
}


cdef dict _VERIFY_CODES = {}


cdef tuple _verify_failure(str message):
    """(verify_message, verify_code) of an SSLCertVerificationError, as Python's ssl sets
    them, from the message of a failed verification (OpenSSL's X509 error text, or
    Python's hostname / IP address mismatch wording)."""
    text = message.partition("certificate verify failed: ")[2]
    if text.endswith(")") and " (_ssl.c:" in text:
        text = text[: text.rindex(" (_ssl.c:")]
    if text.startswith("Hostname mismatch,"):
        return text, X509_V_ERR_HOSTNAME_MISMATCH
    if text.startswith("IP address mismatch,"):
        return text, X509_V_ERR_IP_ADDRESS_MISMATCH
    if not _VERIFY_CODES:
        for code in range(X509_V_OK, 128):  # OpenSSL's codes; the lowest for a text
            _VERIFY_CODES.setdefault(X509_verify_cert_error_string(code).decode(), code)
    return text, _VERIFY_CODES.get(text, X509_V_ERR_UNSPECIFIED)


cdef object _error_to_exception(const Error& err, object request):
    if httprs_py_closed_to_me() and err.message.find(kForeignRefused, 0) != npos:
        with nogil:  # a daemon thread's request refused at exit (_tls.pxi)
            httprs_py_park()
    cls = _ERROR_CLASSES.get(<int>err.kind, exc.TransportError)
    message = err.message.decode("utf-8", "replace")
    error = cls(message, request=request)
    if err.kind == ErrorKind.kConnectError and "[SSL: CERTIFICATE_VERIFY_FAILED]" in message:
        # httpx's ConnectError is caused by the ssl module's SSLCertVerificationError,
        # and code walks the chain for it (openai's TLS hostname tests do).
        cause = ssl.SSLCertVerificationError(1, message)
        cause.library, cause.reason = "SSL", "CERTIFICATE_VERIFY_FAILED"
        cause.verify_message, cause.verify_code = _verify_failure(message)
        error.__cause__ = cause
    elif message.startswith("[Errno "):
        # A system call's failure: httpx's exception is caused (through httpcore's) by
        # the OSError the socket raised, and code walks the chain for it (a
        # ConnectionRefusedError, its errno); a name lookup's (negative EAI_* codes) by
        # a socket.gaierror.
        number, _, text = message[7:].partition("] ")
        if number.isdigit():
            error.__cause__ = OSError(int(number), text)
        elif number[:1] == "-" and number[1:].isdigit():
            error.__cause__ = socket.gaierror(int(number), text)
    elif (
        err.kind == ErrorKind.kConnectTimeout
        or err.kind == ErrorKind.kReadTimeout
        or err.kind == ErrorKind.kWriteTimeout
    ):
        # httpx's connect, read and write timeouts are caused (through httpcore's) by
        # the socket's TimeoutError; a pool timeout has no socket under it.
        error.__cause__ = TimeoutError(message)
    elif message.startswith("[") and "] " in message:
        # OpenSSL's failure in Python's words ("[SSL: REASON] text"): httpx's chain ends
        # in the ssl module's SSLError, whose library and reason code reads.
        library, _, reason = message[1 : message.index("] ")].partition(": ")
        if library.isalnum() and library.isupper() and reason.replace("_", "").isalnum():
            cause = ssl.SSLError(1, message)
            cause.library, cause.reason = library, reason
            error.__cause__ = cause
    return error


# One extension module, one file per concern: the parts call each other
# through C-level (cdef) functions and classes, which stay direct calls only
# within one module.

include "_engine.pxi"
include "_green.pxi"
include "_tls.pxi"
include "_spec.pxi"
include "_body.pxi"
include "_transport.pxi"
include "_sync.pxi"
include "_async.pxi"
include "_netstream.pxi"
include "_starttls.pxi"
include "_trace.pxi"
include "_httpcore_bridge.pxi"
include "_socket_guard.pxi"

# Python functions in front of the compiled methods (httprs._methods).
from httprs._methods import python_methods

python_methods(_CoreTransport, HTTPTransport, AsyncHTTPTransport)
