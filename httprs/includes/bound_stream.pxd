# What the client's bound response stream lends Response (httprs._client registers it
# with httprs._models at import, through a capsule: _models cannot import _client).

# Whether `stream` is the client's own bound stream over a core stream, with its stock
# whole read and close (Response.read / close then call the two below, not the methods).
ctypedef bint (*BoundStreamStock)(object stream) except -1
# Its stock `_httprs_read_all()`: the whole raw body.
ctypedef object (*BoundStreamReadAll)(object stream)
# Its stock `close()`.
ctypedef int (*BoundStreamClose)(object stream) except -1

ctypedef struct BoundStreamOps:
    BoundStreamStock stock
    BoundStreamReadAll read_all
    BoundStreamClose close
