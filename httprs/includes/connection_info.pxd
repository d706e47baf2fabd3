# Declarations from src/connection_info.h: an established connection's
# addresses and TLS facts (the `network_stream` extension).
from libcpp cimport bool
from libcpp.string cimport string


cdef extern from "connection_info.h" namespace "httprs" nogil:
    cdef enum class AddressFamily "httprs::SocketAddress::Family":
        kNone
        kIpv4
        kIpv6
        kUnix

    cdef cppclass SocketAddress:
        AddressFamily family
        string host
        int port
        unsigned flowinfo
        unsigned scope_id

    cdef enum class TlsKind "httprs::TlsFacts::Kind":
        kNone
        kOrigin
        kProxy

    cdef cppclass TlsFacts:
        TlsKind kind
        string version
        string cipher
        string cipher_version
        int cipher_bits
        string alpn
        string server_hostname
        string peer_der
        bool verified
        bool session_reused

    cdef cppclass ConnectionInfo:
        SocketAddress local() const  # decoded when asked (a new value each time)
        SocketAddress peer() const
        TlsFacts tls
        void* owner_object
