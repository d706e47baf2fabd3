# Declarations from src/http1.h: request serialisation and the response head.
from libcpp cimport bool
from libcpp.pair cimport pair
from libcpp.string cimport string
from libcpp.string_view cimport string_view
from libcpp.vector cimport vector

from httprs.includes.errors cimport Error


cdef extern from "http1.h" namespace "httprs" nogil:
    ctypedef vector[pair[string, string]] HeaderList

    bool serialize_request_head(string& out, string method, string target,
                                const HeaderList& headers, Error& err)

    cdef enum class BodyFraming "httprs::BodyFraming":
        kContentLength
        kChunked

    cdef enum class BodyKind "httprs::BodyKind":
        kFixed
        kStreamed

    cdef cppclass RequestPlan:
        BodyFraming framing
        unsigned long long content_length
        bool idempotent
        bool upgrade
        bool tunnel

    bool serialize_request(string& out, string method, string target,
                           const HeaderList& headers, BodyKind kind, size_t fixed_len,
                           RequestPlan* plan, Error& err)

    bool plan_request(string method, string target, const HeaderList& headers, BodyKind kind,
                      size_t fixed_len, RequestPlan* plan, Error& err)
    void write_planned_head(string& out, string method, string target, const HeaderList& headers)

    bool llhttp_is_strict()
    bool switches_protocols(const RequestPlan& plan, int status)

    cdef cppclass HeaderBlock:
        size_t size()
        bool empty()
        string_view name(size_t i)
        string_view value(size_t i)

    cdef cppclass ResponseHead:
        int status
        int http_major
        int http_minor
        string reason
        HeaderBlock headers
        bool has_content_length
        unsigned long long content_length
