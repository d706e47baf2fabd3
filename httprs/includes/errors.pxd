# Declarations from src/errors.h: the core's error values.
from libcpp.string cimport string


cdef extern from "errors.h" namespace "httprs" nogil:
    cdef enum class ErrorKind(int):
        kNone
        kConnectError
        kConnectTimeout
        kReadError
        kReadTimeout
        kWriteError
        kWriteTimeout
        kPoolTimeout
        kRemoteProtocolError
        kLocalProtocolError
        kProxyError
        kUnsupportedProtocol
        kDecodingError
        kClosed

    cdef cppclass Error:
        ErrorKind kind
        string message
        bint operator bool()
        void set(ErrorKind k, string msg)
        void clear()
