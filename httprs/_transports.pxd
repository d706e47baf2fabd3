# cython: language_level=3
# Transport base classes; httprs._core's HTTPTransport / AsyncHTTPTransport derive from them.


cdef class BaseTransport:
    pass


cdef class AsyncBaseTransport:
    pass
