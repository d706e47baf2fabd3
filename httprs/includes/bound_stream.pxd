# C functions one module lends another at import, through a capsule, where the
# borrower cannot cimport the lender (no .pxd for these modules).

# What the client's bound response stream lends Response (httprs._client registers it
# with httprs._models at import: _models cannot import _client).

# Whether `stream` is the client's own bound stream over a core stream, whose
# `_httprs_read_all` (`stock_read`) / `close` (`stock_close`) is the stock one, on its
# class and not shadowed on the instance: Response.read / close then call `read_all` /
# `close` below, not the method.
ctypedef bint (*BoundStreamStock)(object stream) except -1
# Its stock `_httprs_read_all()`: the whole raw body.
ctypedef object (*BoundStreamReadAll)(object stream)
# Its stock `close()`.
ctypedef int (*BoundStreamClose)(object stream) except -1

# The async bound stream's, for Response.aread (which then awaits nothing): whether
# `stream` is the client's own async bound stream over a core stream, its
# `_httprs_aread_all`, `aclose` and `__aiter__` the stock ones, whose whole body is in
# already (`aread_ready`); that body, read now (`aread_all_now`); its stock `aclose()`,
# in which nothing waits (`aclose_now`).
# For Response.aiter_raw: the core's async body under `stream` when iterating `stream`
# would only pass that body's chunks on (the client's own async bound stream, its
# iteration stock, over a stock core stream): one async generator fewer per chunk;
# else None (`aiter_body`).
ctypedef struct BoundStreamOps:
    BoundStreamStock stock_read
    BoundStreamStock stock_close
    BoundStreamReadAll read_all
    BoundStreamClose close
    BoundStreamStock aread_ready
    BoundStreamReadAll aread_all_now
    BoundStreamClose aclose_now
    BoundStreamReadAll aiter_body


# httprs._models lends httprs._core the same way (a capsule, `_TRANSPORT_RESPONSE`) the
# body of `Response._from_transport(status_code, raw_headers, stream, http_version,
# reason_phrase)`, which the transports call for every response, with the core's body
# of that response (None: none), whose connection's extensions `_models` adds when it
# makes the extensions dict ...
ctypedef object (*TransportResponse)(object, list, object, bytes, bytes, object)

# ... which httprs._core lends httprs._models (`_CONNECTION_EXTENSIONS`): add to `ext`
# what the connection that carried `body` gives (network_stream, HTTP/2's stream_id).
ctypedef int (*ConnectionExtensions)(object body, dict ext) except -1

# ... and httprs._client (`_AREAD_NOW`) what `await response.aread()` does, done without
# awaiting anything when it would wait for nothing (a body read with its head): True
# when done, False when nothing was done (the caller awaits `aread()` then).
ctypedef bint (*AreadNow)(object response) except -1
# ... and `response.read()` (`_READ_NOW`), done there while Response's read is the stock one.
ctypedef object (*ReadNow)(object response)

# httprs._core lends httprs._client (`_HANDLE_ASYNC`) the steps of
# `AsyncHTTPTransport.handle_async_request(request)` up to the exchange: it returns the
# exchange's coroutine, which the client awaits itself while the method is the stock one.
ctypedef object (*HandleAsync)(object transport, object request)
# ... and (`_HANDLE_SYNC`) `HTTPTransport.handle_request(request)`'s work, which the
# client calls itself while the method is the stock one.
ctypedef object (*HandleSync)(object transport, object request)
