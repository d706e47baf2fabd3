# Declarations from src/http1.h: request serialisation and the response head.
from libcpp cimport bool
from libcpp.pair cimport pair
from libcpp.string cimport string
from libcpp.vector cimport vector

from httprs.includes.errors cimport Error


cdef extern from "http1.h" namespace "httprs" nogil:
    ctypedef vector[pair[string, string]] HeaderList

    bool serialize_request_head(string& out, string method, string target,
                                const HeaderList& headers, Error& err)

    cdef cppclass ResponseHead:
        int status
        int http_major
        int http_minor
        string reason
        HeaderList headers
        bool has_content_length
        unsigned long long content_length
