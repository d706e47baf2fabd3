# cython: language_level=3
"""Content-Encoding decoding (gzip, deflate, br, zstd) over the C++ DecoderChain."""

from libcpp.memory cimport unique_ptr
from libcpp.string cimport string
from libcpp.vector cimport vector

from httprs.includes.decode cimport DecoderChain
from httprs.includes.errors cimport Error

from httprs._exceptions import DecodingError

__all__ = ["ContentDecoder"]


cdef class ContentDecoder:
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
        tail = self.flush()
        if tail:
            yield tail

    def flush(self):
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
