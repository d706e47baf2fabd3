# TLS configuration for the transports: verify= / cert= become a C++ TlsContext.
# Included into _core.pyx: the TLS contexts and the connections that use them
# must share one copy of the static core (its ex_data indices, callbacks).
#
# An ``ssl.SSLContext`` passed by the user is honoured as httpx honours it:
#
# * fast path: an exact ``ssl.SSLContext`` on CPython whose ``_ssl`` module is
#   linked to the very OpenSSL httprs uses (proven by symbol identity, see
#   `_same_openssl`) has its SSL_CTX shared with the C++ core. Every change
#   made to that SSL_CTX from Python (verify_mode, load_verify_locations,
#   options, ...) applies to the next connection, and the settings CPython keeps
#   outside the SSL_CTX (check_hostname, keylog_filename, post_handshake_auth,
#   _msg_callback) are read for every request.
# * everything else (subclasses, ``truststore.SSLContext``, another OpenSSL,
#   PyPy, a context that logs keys or wants post-handshake auth) runs TLS
#   through Python's own ``context.wrap_bio()``: an ``SSLObject`` over
#   ``MemoryBIO``s, fed by the C++ connection through ForeignTlsOps callbacks.

cdef extern from "<dlfcn.h>" nogil:
    void* dlopen(const char* filename, int flags)
    void* dlsym(void* handle, const char* symbol)
    int dlclose(void* handle)
    int RTLD_LAZY
    int RTLD_NOLOAD


cdef extern from *:
    """
    #include <atomic>
    #include <chrono>
    #include <thread>
    // Python-run TLS callbacks run with an engine mutex held by this thread, and
    // Python code there may run finalisers (a GC pass, a last reference). Those
    // must not take the mutex: they ask httprs_in_tls_callback() and hand the
    // transfer to Engine::release_deferred instead (see docs/ARCHITECTURE.md).
    static thread_local int httprs_tls_depth = 0;
    static int httprs_cb_enter(void) { httprs_tls_depth++; return 0; }
    static void httprs_cb_leave(int) { httprs_tls_depth--; }
    static int httprs_in_tls_callback(void) { return httprs_tls_depth > 0; }
    /* Whether the callbacks may take the GIL: not once the interpreter is finalizing.
       A daemon thread's wait left in the engine at exit can still receive bytes; its
       PyGILState_Ensure after finalization crashed (a thread state made for no
       interpreter), and during it would end the thread under the engine's lock. */
    static bool httprs_py_usable(void) {
    #if PY_VERSION_HEX >= 0x030D0000
        return Py_IsInitialized() && !Py_IsFinalizing();
    #else
        return Py_IsInitialized() && !_Py_IsFinalizing();
    #endif
    }
    /* The calls past httprs_py_enter(), and the exit barrier (httprs_py_close_calls):
       the finalizing check alone left a window, a thread that passed it just before
       finalization began and took the GIL after (its thread then ended inside the
       engine: abort). Once the exiting thread closes the calls, only it may call in. */
    static std::atomic<int> httprs_py_calls{0};
    static std::atomic<bool> httprs_py_closed{false};
    static std::atomic<unsigned long> httprs_py_exit_thread{0};
    static bool httprs_py_enter(void) {
        httprs_py_calls.fetch_add(1);
        if (httprs_py_usable() && (!httprs_py_closed.load()
                                   || PyThread_get_thread_ident() == httprs_py_exit_thread.load()))
            return true;
        httprs_py_calls.fetch_sub(1);
        return false;
    }
    static void httprs_py_leave(void) { httprs_py_calls.fetch_sub(1); }
    /* After the exit barrier, another thread (a daemon thread: the others were joined)
       whose request a refused call failed: it waits for the interpreter's end as Python
       leaves such threads once finalization begins, where raising would print its error. */
    static bool httprs_py_closed_to_me(void) {
        return httprs_py_closed.load() && PyThread_get_thread_ident() != httprs_py_exit_thread.load();
    }
    static void httprs_py_park(void) {
        for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    /* Run by the exiting thread with the GIL let go: later calls from other threads are
       refused, and those already inside get up to `ms` to end. The calls left inside. */
    static int httprs_py_close_calls(int ms) {
        httprs_py_exit_thread.store(PyThread_get_thread_ident());
        httprs_py_closed.store(true);
        auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (httprs_py_calls.load() > 0 && std::chrono::steady_clock::now() < end)
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        return httprs_py_calls.load();
    }
    /* descr.__get__(obj, type(obj)) without the method call (a getset descriptor's C
       getter, found once). */
    static PyObject *httprs_descr_get(PyObject *descr, PyObject *obj) {
        descrgetfunc get = Py_TYPE(descr)->tp_descr_get;
        if (get == NULL) {
            PyErr_SetString(PyExc_TypeError, "not a descriptor");
            return NULL;
        }
        return get(descr, obj, (PyObject *)Py_TYPE(obj));
    }
    /* Whether `obj`'s instance dict holds anything: bool(obj.__dict__) for a class
       whose __dict__ is the default one, without the attribute lookup; -1 with an
       exception when it has no instance dict. */
    static int httprs_instance_attrs(PyObject *obj) {
        PyObject *d = PyObject_GenericGetDict(obj, NULL);
        if (d == NULL) return -1;
        int n = PyDict_GET_SIZE(d) != 0;
        Py_DECREF(d);
        return n;
    }
    """
    object _descr_get "httprs_descr_get"(object descr, object obj)
    int _instance_attrs "httprs_instance_attrs"(object obj) except -1
    int httprs_cb_enter() nogil
    void httprs_cb_leave(int) nogil
    bint httprs_in_tls_callback() nogil
    cbool httprs_py_enter() noexcept nogil
    void httprs_py_leave() noexcept nogil
    cbool httprs_py_closed_to_me() noexcept nogil
    void httprs_py_park() noexcept nogil
    int httprs_py_close_calls(int ms) noexcept nogil


cdef extern from "openssl/x509_vfy.h" nogil:
    int X509_VERIFY_PARAM_set1_host(void* param, const char* name, size_t namelen)
    const char* X509_verify_cert_error_string(long n)
    long X509_V_OK
    long X509_V_ERR_UNSPECIFIED
    long X509_V_ERR_HOSTNAME_MISMATCH
    long X509_V_ERR_IP_ADDRESS_MISMATCH


# Status values shared with TlsSession::Status (tls.h).
DEF ST_OK = 0
DEF ST_WANT_READ = 1
DEF ST_CLOSED = 2
DEF ST_ERROR = 3


# ------------------------------------------------------------ the fast path check


cdef object _same_openssl_cache = None


cdef bint _same_openssl() except -1:
    """True when Python's _ssl module calls the very OpenSSL functions httprs calls.

    The `_ssl` extension is looked up with RTLD_NOLOAD (never loaded again) and
    asked for SSL_CTX_new and X509_VERIFY_PARAM_set1_host: the addresses must be
    the ones httprs itself is linked to. A statically linked or second copy of
    OpenSSL resolves elsewhere (or not at all), and fails the check.
    """
    global _same_openssl_cache
    cdef void* handle
    cdef bytes path
    if _same_openssl_cache is not None:
        return _same_openssl_cache
    result = False
    if sys.implementation.name == "cpython" and ssl.OPENSSL_VERSION_NUMBER == OpenSSL_version_num():
        import _ssl

        file = getattr(_ssl, "__file__", None)
        if file:
            path = os.fsencode(file)
            handle = dlopen(path, RTLD_LAZY | RTLD_NOLOAD)
        else:  # built into the interpreter
            handle = dlopen(NULL, RTLD_LAZY)
        if handle != NULL:
            result = (
                dlsym(handle, "SSL_CTX_new") == <void*>SSL_CTX_new
                and dlsym(handle, "X509_VERIFY_PARAM_set1_host")
                == <void*>X509_VERIFY_PARAM_set1_host
            )
            dlclose(handle)
    _same_openssl_cache = result
    return result


cdef dict _VERIFY_MODES = {0: ssl.CERT_NONE, 1: ssl.CERT_OPTIONAL, 3: ssl.CERT_REQUIRED}


cdef SSL_CTX* _raw_ctx(object context):
    """The SSL_CTX inside an exact CPython ssl.SSLContext (checked by the caller):
    CPython's PySSLContext keeps it right after the object header. Cross-checked
    against what the context reports, else NULL."""
    cdef SSL_CTX* ctx = (<SSL_CTX**>(<char*><PyObject*>context + sizeof(PyObject)))[0]
    if ctx == NULL:
        return NULL
    if _VERIFY_MODES.get(SSL_CTX_get_verify_mode(ctx) & 3) != context.verify_mode:
        return NULL
    if SSL_CTX_get_options(ctx) != <unsigned long>int(context.options):
        return NULL
    return ctx


def _ssl_entry_points():
    """ssl.SSLContext's wrap_socket, wrap_bio, sslobject_class and sslsocket_class as
    the ssl module defines them, or None when one was already replaced when httprs was
    imported (then the fast path is never taken)."""
    cls = ssl.SSLContext
    found = tuple(cls.__dict__.get(name) for name in _SSL_ENTRY_NAMES)
    wrap_socket, wrap_bio, sslobject_class, sslsocket_class = found
    for name, fn in (("wrap_socket", wrap_socket), ("wrap_bio", wrap_bio)):
        if not _is_the_ssl_modules_own(fn):
            return None
        if getattr(fn, "__module__", None) != "ssl":
            return None
        if getattr(fn, "__qualname__", None) != "SSLContext." + name:
            return None
    if sslobject_class is not ssl.SSLObject or sslsocket_class is not ssl.SSLSocket:
        return None
    for klass in (sslobject_class, sslsocket_class):
        if getattr(klass, "__module__", None) != "ssl":
            return None
    return found


def _is_the_ssl_modules_own(fn):
    """Whether `fn` was defined in the ssl module: its globals are that module's
    namespace. A hook written with functools.wraps has the original's __module__ and
    __qualname__ (and a __wrapped__), so those alone would take it for the original."""
    return getattr(fn, "__globals__", None) is vars(ssl) and not hasattr(fn, "__wrapped__")


cdef tuple _SSL_ENTRY_NAMES = ("wrap_socket", "wrap_bio", "sslobject_class", "sslsocket_class")
# Captured at import; None when they were not the ssl module's own already.
cdef object _SSL_ENTRY_POINTS = _ssl_entry_points()
# The stdlib class those are of, when known.
cdef object _SSL_CONTEXT_CLASS = ssl.SSLContext if _SSL_ENTRY_POINTS is not None else None

# The settings the fast path reads per request (current()) go through the C getters of
# _ssl._SSLContext, called directly: what an attribute read finds as long as
# ssl.SSLContext itself defines none of them but the ssl module's own `_msg_callback`
# property (a wrapper: its getter answers None exactly when the C one does), which
# _ssl_entry_points_untouched() checks along with the entry points.
cdef tuple _SSL_GETTER_NAMES = ("keylog_filename", "post_handshake_auth", "_msg_callback", "check_hostname")


def _ssl_getters():
    """(what ssl.SSLContext's own dict holds under each getter name, the C getters) at
    import, or None when one is not what the ssl module defines."""
    cls = ssl.SSLContext
    base = cls.__mro__[1] if len(cls.__mro__) == 3 else None
    if base is None:
        return None
    own = tuple(cls.__dict__.get(name) for name in _SSL_GETTER_NAMES)
    getters = tuple(base.__dict__.get(name) for name in _SSL_GETTER_NAMES)
    getset = type(type.__dict__["__name__"])
    if any(type(g) is not getset for g in getters):
        return None
    msg_callback = own[2]
    if own[:2] + own[3:] != (None, None, None) or not (
        isinstance(msg_callback, property)
        and getattr(msg_callback.fget, "__module__", None) == "ssl"
    ):
        return None
    return own, getters


cdef object _SSL_GETTERS = _ssl_getters()


# The class ssl.SSLContext was, and its type version tag, when its entry points were last
# found untouched: a class whose tag is still that one has not been changed since (any
# assignment to it or to a base gives it another tag), so the check is not repeated.
cdef object _untouched_class = None
cdef unsigned int _untouched_tag = 0


cdef bint _ssl_entry_points_untouched(object cls) except -1:
    """True while `cls`, a context's class, is ssl.SSLContext with its TLS entry points
    still the ssl module's own. A library may replace one on the class (a certificate
    pinning hook in wrap_bio, say): the fast path would skip it, the Python TLS path runs
    it, so only then is the SSL_CTX shared. Per request the class is the context's own
    (no lookup of ssl.SSLContext): an object given another __class__ since is checked
    again, and is no longer ssl.SSLContext."""
    cdef unsigned int tag = _type_tag(cls)
    if tag != 0 and tag == _untouched_tag and cls is _untouched_class:
        return _sslobject_untouched()
    return _check_ssl_entry_points(cls, tag) and _sslobject_untouched()


cdef bint _check_ssl_entry_points(object cls, unsigned int tag) except -1:
    """The look at the class behind _ssl_entry_points_untouched, remembered under `tag`
    (read before it: a change after that read gives the class another tag). A function
    of its own: its generator expression makes Cython allocate a closure scope on every
    call, which the per-request check above no longer pays."""
    global _untouched_class, _untouched_tag
    cdef tuple originals
    if _SSL_ENTRY_POINTS is None or cls is not ssl.SSLContext:
        return False
    originals = <tuple>_SSL_ENTRY_POINTS
    d = cls.__dict__
    untouched = (
        d.get("wrap_bio") is originals[1]
        and d.get("wrap_socket") is originals[0]
        and d.get("sslobject_class") is originals[2]
        and d.get("sslsocket_class") is originals[3]
        and _SSL_GETTERS is not None
        and all(
            d.get(name) is own
            for name, own in zip(_SSL_GETTER_NAMES, (<tuple>_SSL_GETTERS)[0])
        )
    )
    if untouched:
        _untouched_class = cls
        _untouched_tag = tag
    return untouched


cdef bint _shareable(object context) except -1:
    return (
        type(context) is ssl.SSLContext
        and _same_openssl()
        and _ssl_entry_points_untouched(type(context))
        # A server-side context (a common mistake): Python's own wrap_bio refuses it
        # with the error httpx's users get, where OpenSSL's was cryptic.
        and context.protocol != ssl.PROTOCOL_TLS_SERVER
    )


# ------------------------------------------------------------ Python TLS sessions


@cython.final
cdef class _PySession:
    """One connection's TLS run by Python: context.wrap_bio() over MemoryBIOs."""

    cdef object obj  # the SSLObject (or whatever the context's wrap_bio returned)
    cdef object incoming
    cdef object outgoing
    cdef int deferred  # end / failure seen after data, reported by the next read
    cdef bytes deferred_msg


# An exception a signal handler raised inside a TLS callback (ssl's SSLObject calls
# PyErr_CheckSignals in its read, write and handshake): KeyboardInterrupt, a handler's
# SystemExit (gunicorn's worker abort) or its own exception (Celery's soft time limit).
# The callback cannot raise it into C++: the session fails, and the main thread's wait
# (_wait, _wait_until, the only thread signal handlers run in) raises it, as httpx's
# request would have. None: none is pending.
cdef object _tls_interrupt = None
cdef unsigned long _main_thread = 0  # threading.main_thread().ident, once known
# True while the main thread is inside a sync wait's eng.wait (_wait, _wait_until, the
# first slice in start()): the only place a kept exception is raised right after. A TLS
# callback run by the main thread elsewhere (an async driver's round, close()) keeps
# nothing: it would be raised by a later, unrelated sync request.
cdef bint _main_sync_waiting = False


cdef inline bint _in_main_thread() except -1:
    """A C comparison of thread idents (every sync wait asks: no int object made)."""
    global _main_thread
    if _main_thread == 0:
        import threading

        _main_thread = threading.main_thread().ident
    return PyThread_get_thread_ident() == _main_thread


cdef inline bint _sync_wait_begins() except -1:
    """Before a sync wait's eng.wait: note it when the waiting thread is the main one."""
    global _main_sync_waiting
    _main_sync_waiting = _in_main_thread()
    return 0


cdef bint _kept_interrupt(object error) except -1:
    """Keep `error` for the main thread's wait if a signal handler may have raised it:
    not an OSError (ssl's own failures are), in the main thread, inside a sync wait."""
    global _tls_interrupt
    if isinstance(error, OSError) or not _main_sync_waiting or not _in_main_thread():
        return False
    _tls_interrupt = error
    return True


cdef int _raise_tls_interrupt() except -1:
    """In a wait: raise what a TLS callback of this (the main) thread kept."""
    global _tls_interrupt
    if _tls_interrupt is not None and _in_main_thread():
        error, _tls_interrupt = _tls_interrupt, None
        raise error
    return 0


cdef void _set_error(Error* err, ErrorKind kind, object error) noexcept:
    try:
        _kept_interrupt(error)
        message = str(error)
        if not message:
            message = type(error).__name__
        err.set(kind, message.encode("utf-8", "replace"))
    except BaseException:
        err.set(kind, b"TLS error")


cdef void* _py_open(void* handle, const char* host, size_t host_len, Error* err) noexcept with gil:
    cdef _PySession s
    cdef int cb = httprs_cb_enter()
    try:
        context, alpn = <object>handle
        server_hostname = host[:host_len].decode("ascii", "replace") if host_len else None
        # As httpcore does before every connection: offer HTTP/1.1 (and h2 when the
        # transport has http2=True; h2 alone with http1=False).
        context.set_alpn_protocols(alpn)
        s = _PySession.__new__(_PySession)
        s.incoming = ssl.MemoryBIO()
        s.outgoing = ssl.MemoryBIO()
        s.obj = context.wrap_bio(
            s.incoming, s.outgoing, server_side=False, server_hostname=server_hostname
        )
        Py_INCREF(s)
        return <void*>s
    except BaseException as error:
        _set_error(err, ErrorKind.kConnectError, error)
        return NULL
    finally:
        httprs_cb_leave(cb)


cdef void _py_close(void* p) noexcept with gil:
    cdef int cb = httprs_cb_enter()
    Py_DECREF(<object>p)  # may run finalisers
    httprs_cb_leave(cb)


cdef int _py_handshake(void* p, Error* err) noexcept with gil:
    cdef _PySession s = <_PySession>p
    cdef int cb = httprs_cb_enter()
    try:
        s.obj.do_handshake()
        return ST_OK
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return ST_WANT_READ
    except BaseException as error:
        _set_error(err, ErrorKind.kConnectError, error)
        return ST_ERROR
    finally:
        httprs_cb_leave(cb)


cdef void _py_feed(void* p, const char* data, size_t n) noexcept with gil:
    cdef _PySession s = <_PySession>p
    cdef int cb = httprs_cb_enter()
    try:
        s.incoming.write(PyBytes_FromStringAndSize(data, <Py_ssize_t>n))
    except BaseException:
        pass  # MemoryBIO.write only fails without memory; the next read reports it
    finally:
        httprs_cb_leave(cb)


cdef int _py_read(void* p, char* buf, size_t cap, size_t* n, Error* err) noexcept with gil:
    cdef _PySession s = <_PySession>p
    cdef size_t total = 0
    cdef size_t got
    cdef int st = ST_WANT_READ
    cdef int cb
    n[0] = 0
    if s.deferred != ST_OK:
        st = s.deferred
        s.deferred = ST_OK
        if st == ST_ERROR:
            err.set(ErrorKind.kReadError, s.deferred_msg)
        return st
    cb = httprs_cb_enter()
    message = None
    try:
        while total < cap:
            data = s.obj.read(cap - total)
            got = len(data)
            if got == 0:  # the peer's close_notify
                st = ST_CLOSED
                break
            memcpy(buf + total, PyBytes_AS_STRING(data), got)
            total += got
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
        st = ST_WANT_READ
    except ssl.SSLZeroReturnError:
        st = ST_CLOSED
    except BaseException as error:
        st = ST_ERROR
        message = str(error) or type(error).__name__
        try:
            _kept_interrupt(error)
        except BaseException:
            pass
    finally:
        httprs_cb_leave(cb)
    if total == 0:
        if st == ST_ERROR:
            err.set(ErrorKind.kReadError, message.encode("utf-8", "replace"))
        return st
    if st != ST_WANT_READ:
        s.deferred = st
        if st == ST_ERROR:
            s.deferred_msg = message.encode("utf-8", "replace")
    n[0] = total
    return ST_OK


cdef cbool _py_write(void* p, const char* data, size_t n, Error* err) noexcept with gil:
    cdef _PySession s = <_PySession>p
    cdef int cb = httprs_cb_enter()
    try:
        view = memoryview(PyBytes_FromStringAndSize(data, <Py_ssize_t>n))
        while len(view) > 0:
            view = view[s.obj.write(view):]
        return True
    except BaseException as error:
        _set_error(err, ErrorKind.kWriteError, error)
        return False
    finally:
        httprs_cb_leave(cb)


cdef void _py_shutdown(void* p) noexcept with gil:
    cdef _PySession s = <_PySession>p
    cdef int cb = httprs_cb_enter()
    try:
        s.obj.unwrap()
    except BaseException as error:
        # close_notify is queued; the peer's reply is not awaited
        try:
            _kept_interrupt(error)
        except BaseException:
            pass
    finally:
        httprs_cb_leave(cb)


cdef size_t _py_pending(void* p) noexcept with gil:
    cdef _PySession s = <_PySession>p
    cdef int cb = httprs_cb_enter()
    try:
        return s.outgoing.pending
    except BaseException:
        return 0
    finally:
        httprs_cb_leave(cb)


cdef size_t _py_take(void* p, string* dst) noexcept with gil:
    cdef _PySession s = <_PySession>p
    cdef bytes data
    cdef int cb = httprs_cb_enter()
    try:
        data = s.outgoing.read()
    except BaseException:
        return 0
    finally:
        httprs_cb_leave(cb)
    dst.append(PyBytes_AS_STRING(data), len(data))
    return len(data)


cdef void _py_info(void* p, ForeignTlsInfo* out) noexcept with gil:
    """What the SSLObject negotiated, for the `network_stream` extension's ssl_object:
    each fact it cannot tell stays unknown."""
    cdef _PySession s = <_PySession>p
    cdef int cb = httprs_cb_enter()
    try:
        obj = s.obj
        v = obj.version()
        if v:
            out.version = v.encode()
        c = obj.cipher()
        if c:
            out.cipher = c[0].encode()
            out.cipher_version = (c[1] or "").encode()
            out.cipher_bits = c[2] or 0
        a = obj.selected_alpn_protocol()
        if a:
            out.alpn = a.encode()
        der = obj.getpeercert(True)
        if der:
            out.peer_der = der
            out.verified = obj.context.verify_mode != 0  # ssl.CERT_NONE
        out.session_reused = bool(obj.session_reused)
    except BaseException:
        pass
    finally:
        httprs_cb_leave(cb)


cdef void _py_release(void* handle) noexcept with gil:
    cdef int cb = httprs_cb_enter()
    Py_DECREF(<object>handle)  # may run finalisers
    httprs_cb_leave(cb)


cdef ForeignTlsOps _PY_OPS
_PY_OPS.open = _py_open
_PY_OPS.close = _py_close
_PY_OPS.handshake = _py_handshake
_PY_OPS.feed = _py_feed
_PY_OPS.read = _py_read
_PY_OPS.write = _py_write
_PY_OPS.shutdown = _py_shutdown
_PY_OPS.pending = _py_pending
_PY_OPS.take = _py_take
_PY_OPS.info = _py_info
_PY_OPS.release = _py_release
_PY_OPS.enter = httprs_py_enter
_PY_OPS.leave = httprs_py_leave


def _close_python_tls_calls():
    """At exit, the last atexit handler (registered at start-up by httprs-install.pth,
    before any other): other threads' Python-run TLS calls are refused from here on,
    and the exit waits (the GIL let go, at most 2 s) for those under way. Finalization
    follows with no Python code in between. Nothing when the interpreter is not
    exiting (atexit._run_exitfuncs() called by hand)."""
    if not getattr(threading, "_SHUTTING_DOWN", True):
        return
    with nogil:
        httprs_py_close_calls(2000)


cdef shared_ptr[TlsContext] _foreign_context(object context, list alpn):
    handle = (context, alpn if alpn is not None else ["http/1.1"])
    Py_INCREF(handle)  # released by the TlsContext (ops.release)
    return TlsContext.foreign(&_PY_OPS, <void*>handle)


# ------------------------------------------------------------ contexts


cdef class _TlsContext:
    """A transport's TLS configuration: the TlsContext to give each new request."""

    cdef shared_ptr[TlsContext] ctx  # built from verify=/cert= (or the adopted fast path)
    cdef object py_ctx  # the ssl.SSLContext the user passed, or None
    cdef bint fast  # py_ctx's SSL_CTX may be shared (see _shareable)
    cdef bint adopted_check_hostname  # check_hostname the adopted ctx was wrapped with
    cdef shared_ptr[TlsContext] foreign  # py_ctx run through Python's wrap_bio
    cdef list alpn  # what a Python-path py_ctx offers by ALPN (None: http/1.1)
    cdef tuple settings  # an own context's (verify, cert, trust_env)
    cdef object made_class  # what ssl.SSLContext named when httpx would build it
    cdef _TlsContext as_httpx  # httpx's context, while made_class's TLS is hooked

    cdef shared_ptr[TlsContext] current(self) except *:
        context = self.py_ctx
        if context is None:
            if _runs_tls_as_ssl_does(self.made_class):
                return self.ctx
            return self._as_httpx_builds()
        # The class first (a pinning hook on it, or another __class__ given to the
        # object: then its __dict__ may not be the default one), then the instance
        # (e.g. a per-instance sslobject_class or wrap_bio).
        if (
            self.fast
            and _ssl_entry_points_untouched(type(context))
            and not _instance_attrs(context)
        ):
            # keylog_filename, post_handshake_auth, _msg_callback, check_hostname
            getters = <tuple>(<tuple>_SSL_GETTERS)[1]
            if (
                _descr_get(getters[0], context)
                or _descr_get(getters[1], context)
                or _descr_get(getters[2], context) is not None
            ):
                return self._python_path()
            check_hostname = <bint>_descr_get(getters[3], context)
            if self.ctx.get() == NULL or check_hostname != self.adopted_check_hostname:
                self.ctx = TlsContext.adopt(_raw_ctx(context), check_hostname)
                self.adopted_check_hostname = check_hostname
            if self.ctx.get() != NULL:
                return self.ctx
        return self._python_path()

    cdef shared_ptr[TlsContext] _python_path(self) except *:
        if self.foreign.get() == NULL:
            self.foreign = _foreign_context(self.py_ctx, self.alpn)
        return self.foreign

    cdef shared_ptr[TlsContext] _as_httpx_builds(self) except *:
        """An own context whose class was given TLS hooks since (_runs_tls_as_ssl_does):
        the context httpx builds from the same arguments, adopted as a passed one is
        (so run through the hooks), made at its first use; its failure, or no real
        context, is a ConnectError: nothing looser is used instead."""
        if self.as_httpx is None:
            verify, cert, trust_env = self.settings
            try:
                context = _httpx_context(verify, cert, trust_env)
            except Exception as error:
                message = f"Could not make Python's default SSL context: {error!r}"
                raise exc.ConnectError(message) from error
            if context is None:
                raise exc.ConnectError(
                    f"Could not make Python's default SSL context: {ssl.SSLContext!r} made none"
                )
            self.as_httpx = _adopt_python(context, self.alpn)
        return self.as_httpx.current()


# The class last looked at by _runs_tls_as_ssl_does, its type version tag then, and
# the answers: its wrap_bio side is the ssl module's own; only its wrap_socket side
# (wrap_socket, sslsocket_class) is not.
cdef object _looked_at_class = None
cdef unsigned int _looked_at_tag = 0
cdef bint _looked_at_answer = True
cdef bint _looked_at_socket_hooked = False
# The ssl module's own (wrap_bio, SSLObject): None until first needed, () if unknown.
cdef object _stock_bio = None


cdef bint _runs_tls_as_ssl_does(object cls) except -1:
    """Whether httprs's own contexts (verify=True, False or a path; cert=) may stand in
    for httpx's, a context of `cls` (what ssl.SSLContext named when the client was
    made): while `cls` has the ssl module's own wrap_bio and sslobject_class, and
    ssl.SSLObject its own methods (_sslobject_untouched). A hook there runs in httpx's
    connections (sanic's tests forge the SNI name by replacing ssl.SSLContext.wrap_bio;
    truststore's inject_into_ssl() puts a class in its place whose wrap_bio checks the
    certificate against the system's store), so then the request runs through httpx's
    context. gevent's class replaces wrap_socket only: no change. Per request two
    type-tag comparisons while nothing changed."""
    global _looked_at_class, _looked_at_tag, _looked_at_answer, _looked_at_socket_hooked
    cdef unsigned int tag = _type_tag(cls)
    if tag != 0 and tag == _looked_at_tag and cls is _looked_at_class:
        return _looked_at_answer and _sslobject_untouched()
    stock = _stock_bio_entry()
    if tag == 0:
        getattr(cls, "wrap_bio", None)  # a lookup through the class gives it a tag
        tag = _type_tag(cls)
    _looked_at_answer = (
        len(stock) == 2
        and getattr(cls, "wrap_bio", None) is stock[0]
        and getattr(cls, "sslobject_class", None) is stock[1]
    )
    # The stdlib class itself with its wrap_socket side replaced (a swapped-in class
    # such as gevent's replaces wrap_socket for its own I/O, not to check anything).
    _looked_at_socket_hooked = (
        _looked_at_answer
        and cls is _SSL_CONTEXT_CLASS
        and (
            cls.__dict__.get("wrap_socket") is not (<tuple>_SSL_ENTRY_POINTS)[0]
            or cls.__dict__.get("sslsocket_class") is not (<tuple>_SSL_ENTRY_POINTS)[3]
        )
    )
    _looked_at_class = cls
    _looked_at_tag = tag
    return _looked_at_answer and _sslobject_untouched()


cdef int _refuse_socket_only_hooks(object cls) except -1:
    """A sync request on an own context of `cls`: httpx's sync Client calls wrap_socket,
    which httprs cannot (it runs TLS over memory BIOs, through wrap_bio, as httpx's
    AsyncClient does). A hook put on ssl.SSLContext's wrap_socket side alone (a pin
    check) is refused rather than skipped, as for a context passed in
    (_check_sync_context)."""
    _runs_tls_as_ssl_does(cls)
    if _looked_at_socket_hooked and cls is _looked_at_class:
        raise NotImplementedError(
            "ssl.SSLContext.wrap_socket (or sslsocket_class) was replaced and wrap_bio() "
            "was not: httprs runs TLS over memory BIOs through wrap_bio() (as httpx's "
            "AsyncClient does), so a sync Client cannot run that hook; replace wrap_bio() "
            "(or sslobject_class) as well"
        )
    return 0


def _sslobject_is_the_ssl_modules_own():
    """Whether ssl.SSLObject's methods were all defined in the ssl module when httprs
    was imported (sslkeylog, say, replaces do_handshake: then no context takes the fast
    path, and the hook runs)."""
    for value in vars(ssl.SSLObject).values():
        function = getattr(value, "__func__", value)  # (a classmethod's function)
        if callable(function) and hasattr(function, "__globals__"):
            if not _is_the_ssl_modules_own(function):
                return False
    return True


# ssl.SSLObject, what its __dict__ held when httprs was imported (None when one of its
# methods was not the ssl module's own already), and its type tag when last found
# holding that.
cdef object _SSL_OBJECT = ssl.SSLObject
cdef object _SSL_OBJECT_DICT = (
    dict(ssl.SSLObject.__dict__) if _sslobject_is_the_ssl_modules_own() else None
)
cdef unsigned int _sslobject_tag = 0


cdef bint _sslobject_untouched() except -1:
    """Whether ssl.SSLObject's methods are the ones it had when httprs was imported: a
    pin check put on SSLObject.do_handshake (or getpeercert) runs in httpx's connections
    (wrap_bio makes an SSLObject), so while one is there no context takes the fast path."""
    global _sslobject_tag
    cdef unsigned int tag = _type_tag(_SSL_OBJECT)
    if tag != 0 and tag == _sslobject_tag:
        return True
    if tag == 0:
        getattr(_SSL_OBJECT, "do_handshake", None)  # gives the class a tag
        tag = _type_tag(_SSL_OBJECT)
    if _SSL_OBJECT_DICT is None or dict(_SSL_OBJECT.__dict__) != _SSL_OBJECT_DICT:
        return False
    _sslobject_tag = tag
    return True


cdef tuple _stock_bio_entry():
    """The ssl module's own wrap_bio and SSLObject, () when they were replaced before
    httprs could see them (then every request runs through httpx's context)."""
    global _stock_bio
    if _stock_bio is None:
        if _SSL_ENTRY_POINTS is not None:
            _stock_bio = (_SSL_ENTRY_POINTS[1], _SSL_ENTRY_POINTS[2])
        else:
            wrap_bio = _stdlib_context_class().__dict__.get("wrap_bio")
            sslobject = ssl.SSLObject
            _stock_bio = ()
            if (
                _is_the_ssl_modules_own(wrap_bio)
                and getattr(wrap_bio, "__module__", None) == "ssl"
                and getattr(wrap_bio, "__qualname__", None) == "SSLContext.wrap_bio"
                and getattr(sslobject, "__module__", None) == "ssl"
            ):
                _stock_bio = (wrap_bio, sslobject)
    return <tuple>_stock_bio


cdef object _httpx_context(object verify, object cert, bint trust_env):
    """The ssl.SSLContext httpx's create_ssl_context builds for these arguments, with
    the certificate loaded for verify=<path> too (httpx 0.28.1 drops it there; httprs
    presents a certificate it was given, docs/compatibility.md, TLS); None when the
    class in ssl.SSLContext's place makes no real context (mocket's stand-in). Built
    here rather than through create_ssl_context: its deprecation warnings (given by the
    transport already) would need warnings.catch_warnings(), which is not thread-safe
    (concurrent clients left the process's filters changed); verify=None is True, and a
    certificate may be a path-like, as _build_tls takes them."""
    if verify is None:
        verify = True
    if not (
        verify is True or verify is False or isinstance(verify, (str, bytes, os.PathLike))
    ):
        raise TypeError(f"Invalid verify argument: {verify!r}")
    context = _fresh_context(verify, trust_env, os.fsdecode(_default_ca_path()))
    if not isinstance(context, _ssl_c_context()):
        return None
    if cert:
        if isinstance(cert, (str, bytes, os.PathLike)):
            context.load_cert_chain(cert)
        else:
            context.load_cert_chain(*cert)
    return context


cdef object _context_of_a_hooked_class(object verify, object cert, bint trust_env):
    """At a client's construction: when the class ssl.SSLContext names has TLS hooks
    (truststore's inject_into_ssl() ran), the context httpx builds there, of that class,
    to adopt in place of httprs's own (else None); its errors are raised as httpx's."""
    if _is_ssl_context(verify) or _runs_tls_as_ssl_does(ssl.SSLContext):
        return None
    if verify is not True and verify is not False and verify is not None:
        if not isinstance(verify, (str, bytes, os.PathLike)) or not os.fspath(verify):
            return None  # (an error of _build_tls's; "" is the interpreter's default)
    return _httpx_context(verify, cert, trust_env)


# ------------------------------------------------------------ the interpreter's policy


cdef extern from "openssl/x509v3.h" nogil:
    unsigned int X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS
    unsigned int X509_CHECK_FLAG_NEVER_CHECK_SUBJECT


cdef extern from "openssl/ssl.h" nogil:
    int TLS1_2_VERSION


@cython.final
cdef class _Policy:
    """A TlsPolicy (src/tls.h), held for the life of the process."""

    cdef TlsPolicy p


# httpx's context settings for [verify off, verify on], each one tuple
# (ssl.create_default_context, ssl.SSLContext, _Policy) read and replaced as a whole, so a
# thread never pairs one identity with another's policy.
cdef tuple _policy_plain = None
cdef tuple _policy_verifying = None

# A CA directory that is only a name: OpenSSL looks hash directories up lazily, so the
# probe neither reads it nor loads the system store (~50 ms), and needs no ssl.__file__.
cdef str _PROBE_CAPATH = "/nonexistent/httprs-policy-probe"


cdef inline _Policy _policy(bint verifying):
    """The TLS settings httprs's own contexts take from the running interpreter: those
    of the context httpx would build (httpx._config.create_ssl_context), which depend on
    how Python was built (Debian's python3 offers OpenSSL's default cipher list) and on
    its version (3.13 verifies with VERIFY_X509_STRICT and VERIFY_X509_PARTIAL_CHAIN).
    Read again whenever ssl.create_default_context or ssl.SSLContext is another object
    than at the last read (a monkeypatch, a wrapper, truststore's class swap, or their
    undoing); otherwise a lookup and two identity checks."""
    global _policy_plain, _policy_verifying
    factory = ssl.create_default_context
    context_class = ssl.SSLContext
    cdef tuple cached = _policy_verifying if verifying else _policy_plain
    if cached is not None and cached[0] is factory and cached[1] is context_class:
        return <_Policy>cached[2]
    cdef _Policy policy = _probe_policy(verifying, factory, context_class)
    if verifying:
        _policy_verifying = (factory, context_class, policy)
    else:
        _policy_plain = (factory, context_class, policy)
    return policy


cdef _Policy _probe_policy(bint verifying, object factory, object context_class):
    """Build the context httpx would and read it; any failure (an SSLKEYLOGFILE that
    cannot be opened, a replacement factory that refuses capath=) is a ConnectError and
    nothing is cached, so no looser policy is ever used instead."""
    try:
        if verifying:
            context = factory(capath=_PROBE_CAPATH)
        else:
            context = context_class(ssl.PROTOCOL_TLS_CLIENT)
        return _read_policy(context)
    except Exception as error:
        raise exc.ConnectError(f"Could not make Python's default SSL context: {error!r}") from error


cdef _Policy _read_policy(object context):
    """`context`'s ciphers, versions, options, security level and verification flags as
    plain data (Python 3.9 has no security_level: TlsPolicy's -1, the library's default
    but at least CPython's 2)."""
    cdef _Policy policy = _Policy.__new__(_Policy)
    tls12 = []
    tls13 = []
    for cipher in context.get_ciphers():
        (tls13 if cipher["protocol"] == "TLSv1.3" else tls12).append(cipher["name"])
    policy.p.cipher_list = ":".join(tls12).encode("ascii")
    policy.p.ciphersuites = ":".join(tls13).encode("ascii")
    # Never below TLS 1.2, CPython's own minimum from 3.10 on (Debian's python3 leaves
    # MINIMUM_SUPPORTED, where OpenSSL 3's security levels 1+ refuse older versions anyway).
    # TLSVersion.MAXIMUM_SUPPORTED (-1): OpenSSL's 0, no bound.
    policy.p.min_version = max(int(context.minimum_version), TLS1_2_VERSION)
    policy.p.max_version = max(int(context.maximum_version), 0)
    policy.p.options = int(context.options)
    policy.p.verify_flags = int(context.verify_flags)
    policy.p.host_flags = X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS
    if not context.hostname_checks_common_name:
        policy.p.host_flags |= X509_CHECK_FLAG_NEVER_CHECK_SUBJECT
    policy.p.security_level = getattr(context, "security_level", -1)
    return policy


def _forget_tls_policy():
    """For tests: read the interpreter's TLS settings again for the next client."""
    global _policy_plain, _policy_verifying
    _policy_plain = _policy_verifying = None


def _own_policy(verifying=True):
    """For tests: the policy httprs's own contexts use, as a dict."""
    cdef _Policy policy = _policy(verifying)
    return {
        "cipher_list": policy.p.cipher_list.decode(),
        "ciphersuites": policy.p.ciphersuites.decode(),
        "min_version": policy.p.min_version,
        "max_version": policy.p.max_version,
        "options": policy.p.options,
        "verify_flags": policy.p.verify_flags,
        "host_flags": policy.p.host_flags,
        "security_level": policy.p.security_level,
    }


cdef bytes _certifi_path = None


cdef bytes _default_ca_path():
    """certifi's bundle (httpx's default trust), as the file system's bytes."""
    global _certifi_path
    if _certifi_path is None:
        import certifi

        _certifi_path = os.fsencode(certifi.where())
    return _certifi_path


cdef object _Environ = os._Environ
cdef object _interpreter_environ = os.environ
cdef bint _posix = os.name == "posix"
cdef object _ENVIRON_GETITEM = os._Environ.__getitem__
cdef object _MAPPING_GET = os._Environ.get
cdef unsigned int _environ_tag = 0  # os._Environ's version tag when last found stock


cdef bint _plain_environ(object env) except -1:
    """Whether `env` is the interpreter's own os.environ, its get() and __getitem__ the
    stock ones (none patched on it or on its class): then a variable is what its bytes
    dict holds, decoded."""
    global _environ_tag
    if not _posix or env is not _interpreter_environ or type(env) is not _Environ:
        return False
    own = PyObject_GenericGetDict(env, NULL)
    if "get" in own or "__getitem__" in own or type(own.get("_data")) is not dict:
        return False
    cdef unsigned int tag = _type_tag(_Environ)
    if tag == 0 or tag != _environ_tag:
        if _Environ.__getitem__ is not _ENVIRON_GETITEM or _Environ.get is not _MAPPING_GET:
            return False
        _environ_tag = _type_tag(_Environ)
    return True


cdef bytes _cert_variable(bytes raw_name, str name):
    """os.environ.get(name) as the file system's bytes (None when unset). On POSIX,
    os.environ's own dict holds each variable as those bytes, and its get() decodes what
    it finds there: read straight from that dict while os.environ is the interpreter's,
    unpatched (a Client() read two variables through Python's Mapping.get, encoding and
    decoding)."""
    env = os.environ
    if _plain_environ(env):
        value = (<dict>env._data).get(raw_name)
        if value is None or type(value) is bytes:
            return value
    value = env.get(name)
    return None if value is None else os.fsencode(value)


cdef _TlsContext _adopt_python(object context, list alpn=None):
    cdef _TlsContext holder = _TlsContext()
    holder.py_ctx = context
    holder.alpn = alpn
    holder.fast = _shareable(context) and _raw_ctx(context) != NULL
    holder.current()
    return holder


cdef bint _is_ssl_context(object obj) except -1:
    """Whether `obj` is a context to adopt: a real one (of the C class every
    ssl.SSLContext derives from, whatever class `ssl.SSLContext` names now: truststore's
    inject_into_ssl() and mocket replace it), or an instance of what it names now (a
    replacement's own contexts run through their own wrap_bio, as httpx uses them)."""
    if obj is None or type(obj) is bool:  # the usual verify= values, answered first
        return False
    return isinstance(obj, _ssl_c_context()) or isinstance(obj, ssl.SSLContext)


cdef object _c_context_class = None


cdef object _ssl_c_context():
    global _c_context_class
    if _c_context_class is None:
        import _ssl

        _c_context_class = _ssl._SSLContext
    return _c_context_class


cdef object _stdlib_context_class():
    """The ssl module's own SSLContext class, whatever `ssl.SSLContext` names now."""
    for cls in _ssl_c_context().__subclasses__():
        if cls.__module__ == "ssl" and cls.__name__ == "SSLContext":
            return cls
    return ssl.SSLContext


cdef bytes _tls_path(object path):
    """A TLS file's (or directory's) path as the core takes it. An embedded NUL is the
    ValueError the ssl module raises in httpx: the core's C string would end there and
    name another file."""
    cdef bytes raw = os.fsencode(path)
    if b"\0" in raw:
        raise ValueError("embedded null byte")
    return raw


cdef str _keylog_file():
    """Where httpx's contexts (ssl.create_default_context()) log TLS secrets: the
    SSLKEYLOGFILE variable, never under `python -E` / `-I`."""
    if sys.flags.ignore_environment:
        return ""
    return os.environ.get("SSLKEYLOGFILE") or ""


cdef _TlsContext _build_tls(object verify, object cert, bint trust_env):
    cdef _TlsContext holder = _TlsContext()
    cdef TlsConfig cfg
    cdef Error err
    cdef string ca_file, ca_dir, keylog
    cdef _Policy policy
    holder.settings = (verify, cert, trust_env)
    holder.made_class = ssl.SSLContext
    # The files the context is built from, checked for existence only when OpenSSL
    # refuses them (no Python stat where all is well: a coroutine that makes an
    # AsyncClient then does no blocking call an event-loop watchdog would flag).
    named = []
    if _is_ssl_context(verify):
        if cert:
            # httpx loads a deprecated cert= into the given context.
            if isinstance(cert, (str, os.PathLike)):
                verify.load_cert_chain(cert)
            else:
                verify.load_cert_chain(*cert)
        return _adopt_python(verify)
    if verify is True or verify is None:
        env_file = _cert_variable(b"SSL_CERT_FILE", "SSL_CERT_FILE") if trust_env else None
        env_dir = _cert_variable(b"SSL_CERT_DIR", "SSL_CERT_DIR") if trust_env else None
        # As httpx: SSL_CERT_FILE, else SSL_CERT_DIR, else certifi's bundle; a file
        # named there that is missing is an error, never a quiet fall-back.
        if env_file:
            cfg.ca_file = env_file
        elif env_dir:
            cfg.ca_dir = env_dir
        else:
            cfg.ca_file = _default_ca_path()
        # What httpx's context for the same arguments is built from, as read now (a
        # later _as_httpx_builds trusts the same store, not what the variables say then).
        holder.settings = (env_file or env_dir or True, cert, False)
        if cert is None:
            ca_file = cfg.ca_file
            ca_dir = cfg.ca_dir
            keylog = os.fsencode(_keylog_file())
            policy = _policy(True)
            with nogil:
                holder.ctx = TlsContext.default_context(ca_file, ca_dir, keylog, policy.p, err)
            if err.kind != ErrorKind.kNone:
                raise _setup_error(err, [os.fsdecode(env_file)] if env_file else [])
            return holder
        if env_file:
            named.append(os.fsdecode(env_file))
    elif verify is False:
        cfg.verify = False
        cfg.check_hostname = False
    elif isinstance(verify, (str, bytes, os.PathLike)):
        path = os.fspath(verify)
        if isinstance(verify, str) and not path:
            # httpx: ssl.create_default_context(cafile="") loads no file, so the
            # interpreter's default trust store (the system's); the same context here.
            return _build_tls(ssl.create_default_context(), cert, trust_env)
        if os.path.isdir(path):
            cfg.ca_dir = _tls_path(path)
        else:
            named.append(path)
            cfg.ca_file = _tls_path(path)
    else:
        raise TypeError(f"Invalid verify argument: {verify!r}")
    if cert is not None:
        if isinstance(cert, (str, os.PathLike)):
            named.append(cert)
            cfg.cert_file = _tls_path(cert)
        else:
            # httpx calls load_cert_chain(*cert): (certfile[, keyfile[, password]]) in any
            # sequence, the password as str, bytes or a callable returning one (called
            # here, where Python calls it only for an encrypted key).
            parts = tuple(cert) if isinstance(cert, (tuple, list)) else ()
            if not 1 <= len(parts) <= 3:
                raise TypeError(f"Invalid cert argument: {cert!r}")
            certfile = parts[0]
            keyfile = parts[1] if len(parts) > 1 else None
            password = parts[2] if len(parts) > 2 else None
            named.append(certfile)
            cfg.cert_file = _tls_path(certfile)
            if keyfile is not None:
                named.append(keyfile)
                cfg.key_file = _tls_path(keyfile)
            if callable(password):
                password = password()
            if password is not None:
                cfg.key_password = password.encode() if isinstance(password, str) else password
    cfg.policy = _policy(cfg.verify).p
    if cfg.verify:  # httpx's verifying contexts come from ssl.create_default_context()
        cfg.keylog_file = os.fsencode(_keylog_file())
    with nogil:
        holder.ctx = TlsContext.create(cfg, err)
    if err.kind != ErrorKind.kNone:
        raise _setup_error(err, named)
    return holder


cdef object _httpcore_default_context():
    """httpcore's default_ssl_context(), which httpx's https:// proxies without a
    Proxy(ssl_context=) use: the interpreter's default store (OpenSSL's default paths,
    which SSL_CERT_FILE / SSL_CERT_DIR name whatever trust_env says) and certifi's
    bundle. httprs checked such a proxy against certifi's bundle alone, so a proxy
    whose CA is in the system's store only was refused."""
    context = ssl.create_default_context()
    context.load_verify_locations(os.fsdecode(_default_ca_path()))
    return context


cdef _TlsContext _request_tls(object verify, object cert, bint trust_env):
    """_build_tls for a context first needed by a request (the default one, a proxy's):
    its failure is that request's ConnectError, as a failed handshake would be."""
    try:
        return _build_tls(verify, cert, trust_env)
    except OSError as error:  # ssl.SSLError, FileNotFoundError
        raise exc.ConnectError(str(error)) from error


cdef object _setup_error(const Error& err, list named):
    """A context that could not be built: the FileNotFoundError (IsADirectoryError)
    httpx's context raises at Client() for the first of the `named` files (a CA bundle,
    a client certificate or key) that does not exist (is a directory), else (OpenSSL
    refused what they hold) ssl.SSLError, as the ssl module raises in httpx's
    create_ssl_context (not a RequestError: no request is under way)."""
    message = err.message.decode("utf-8", "replace")
    for path in named:
        if not os.path.exists(path):
            return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), os.fspath(path))
        if os.path.isdir(path):
            return IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if f"'{os.fsdecode(path)}'" in message:
            break  # OpenSSL refused what this one holds: the files after it were not read
    return ssl.SSLError(ssl.SSL_ERROR_SSL, message)


def _uses_python_tls(context):
    """For tests and debugging: True when `context` runs through Python's wrap_bio."""
    return not (_shareable(context) and _raw_ctx(context) != NULL)


def _check_sync_context(context):
    """A sync transport runs TLS through wrap_bio, as httpx's async one does; httpx's
    sync transport calls wrap_socket instead. A subclass that customises only
    wrap_socket (a pin check there, say) could not be honoured: refuse it rather
    than skip what it does."""
    if not _is_ssl_context(context):
        return
    cls = type(context)
    # Compared with the ssl module's own entry points, so that a wrap_socket hook
    # installed on ssl.SSLContext itself is not skipped either (nor one on a context of
    # the stdlib class made before another class was put in ssl.SSLContext's place).
    if _SSL_ENTRY_POINTS is not None:
        wrap_socket, wrap_bio, sslobject_class, _ = _SSL_ENTRY_POINTS
    else:
        stdlib = _stdlib_context_class()
        wrap_socket, wrap_bio = stdlib.wrap_socket, stdlib.wrap_bio
        sslobject_class = ssl.SSLObject
    if (
        getattr(cls, "wrap_socket", None) is not wrap_socket
        and getattr(cls, "wrap_bio", None) is wrap_bio
        and getattr(context, "sslobject_class", None) is sslobject_class
    ):
        raise NotImplementedError(
            f"{cls.__module__}.{cls.__qualname__} overrides wrap_socket() but not wrap_bio(): "
            "httprs runs TLS over memory BIOs through wrap_bio() (as httpx's AsyncClient "
            "does), so override wrap_bio() (or sslobject_class) as well"
        )
