# The sync driver: HTTPTransport sends, uploads and waits in the calling
# thread, the GIL released around every wait (included into _core.pyx).

cdef object _send_sync(_TransportCore core, object request):
    cdef _Body stream = core.start(request)
    cdef Transfer* t = stream.t.get()
    # (Also for a guarded request's connect gates, _GuardedConnect in _socket_guard.pxi,
    # and a patched getaddrinfo's, _resolve_at_gate in _httpcore_bridge.pxi.)
    cdef _Tracer tracer = (
        _Tracer.create(core, stream)
        if t.spec.trace or t.spec.consumer_gate != ConsumerGate.kNone
        else None
    )
    try:
        if tracer is not None:
            _trace_until(tracer, WaitFor.kBodyWanted if t.spec.body_streamed else WaitFor.kHead)
        if t.spec.body_streamed and not t.failed():
            _upload_sync(stream, request.stream)
        if tracer is not None:
            _trace_until(tracer, WaitFor.kHead)
        _wait(stream.engine, t, WaitFor.kHead)
    except BaseException as error:
        if tracer is not None:
            tracer.failed(error)
        stream._release()
        raise
    if t.failed() and not t.head_ready:
        err = _error_to_exception(t.reported_error(), request)
        if tracer is not None:
            tracer.failed(err)
        stream._release()
        raise err
    if tracer is not None:
        tracer.head_received()
    return _make_response(stream, request, tracer if t.spec.trace else None)


cdef int _upload_sync(_Body stream, object body) except -1:
    cdef Transfer* t = stream.t.get()
    cdef long long sent = 0
    iterator = iter(body)
    while True:
        _wait(stream.engine, t, WaitFor.kBodyWanted)
        if _upload_over(stream, t):
            return 0
        chunk = next(iterator, None)
        sent = _push_upload_chunk(stream, chunk, sent)
        if chunk is None:
            return 0


cdef object _handle_sync(object transport, object request):
    """HTTPTransport.handle_request(request); the client calls it itself while the
    transport's method is the stock one (lent as _HANDLE_SYNC: the method is a Python
    function in front of the compiled one, httprs._methods)."""
    cdef _TransportCore core = transport._core
    if _engine_wanted(core):
        _reopen(core, _for_sync(_new_engine(transport._settings["limits"])))
    elif _turned_green(core.engine):
        _go_green(core, _for_sync(_new_engine(transport._settings["limits"])))
    patch = _find_patch(_SYNC_HOOKS)
    if patch is not None:
        return _send_via_httpcore(transport, patch, request)
    pool = _rewired_pool(transport)
    if pool is not None:
        return _send_via_rewired_pool(transport, pool, request)
    return _send_sync(core, request)


_HANDLE_SYNC = PyCapsule_New(<void*>_handle_sync, NULL, NULL)  # for _client


class HTTPTransport(_CoreTransport, BaseTransport):
    """The default transport: HTTP/1.1 over the C++ core."""

    def _init_driving(self):
        cdef _TransportCore core = self._core
        _for_sync(core.engine)
        _check_sync_context(core.tls_args[0])
        _check_sync_context(core.route.proxy_ssl_context)

    def handle_request(self, request: Request) -> Response:
        return _handle_sync(self, request)

    def close(self) -> None:
        cdef _TransportCore core = self._core
        cdef int open_connections = _open_connections_to_log(core)
        cdef _Engine engine = core.engine  # what is closed, whoever reopens the transport
        core.closed = True
        _forget_head(core)
        engine.close()
        _close_mocked_pools(self)
        _log_closed(open_connections)
        interrupt = engine.green_interrupt
        if interrupt is not None:
            engine.green_interrupt = None
            raise interrupt
