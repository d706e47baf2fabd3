# Declarations from src/decode.h: streaming Content-Encoding decoding.
#
# DecoderChain.create takes the Content-Encoding header values in header
# order; each value may hold several comma-separated codings (they are split
# and trimmed in C++). It returns an empty unique_ptr and sets err
# (kDecodingError) when more than kMaxEncodings codings need decoding.
from libcpp cimport bool
from libcpp.memory cimport unique_ptr
from libcpp.string cimport string
from libcpp.vector cimport vector

from httprs.includes.errors cimport Error


cdef extern from "decode.h" namespace "httprs" nogil:
    const size_t kMaxEncodings "httprs::DecoderChain::kMaxEncodings"

    cdef cppclass DecoderChain:
        @staticmethod
        unique_ptr[DecoderChain] create(const vector[string]& encodings, Error& err)
        bool empty()
        # Append the decoded form of data[:len] to out; false + err on corrupt data.
        bool feed(const char* data, size_t len, string& out, Error& err)
        # Bounded: append at most max_out bytes; the rest of the input stays in
        # the chain. Call drain() until it appends nothing, then finish().
        bool feed(const char* data, size_t len, string& out, size_t max_out, Error& err)
        bool drain(string& out, size_t max_out, Error& err)
        # End of body; false + err when the format can tell it was truncated.
        bool finish(string& out, Error& err)
        # Whole body into dst[:cap]: advances data/len past the input taken; room
        # left in dst means all the input is taken and decoded (then finish()).
        bool decode_into(const char** data, size_t* len, char* dst, size_t cap,
                         size_t* produced, Error& err)
        # The decoded size the whole body records (gzip ISIZE, zstd), bounded; 0: none.
        size_t size_hint(const char* data, size_t len)
