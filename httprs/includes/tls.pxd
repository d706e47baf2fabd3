# Declarations from src/tls.h: TLS contexts (shared SSL_CTX) for the core.
#
# The Cython side builds a TlsContext once per client (or takes the cached
# default_context) and hands the shared_ptr to the connection code; sessions
# are created and driven inside C++ only, so TlsSession is not declared here.
# All functions return error values (nullptr + Error), none raises.
from libcpp cimport bool
from libcpp.memory cimport shared_ptr
from libcpp.string cimport string

from httprs.includes.errors cimport Error


cdef extern from "openssl/ssl.h" nogil:
    ctypedef struct SSL_CTX:
        pass
    unsigned long OpenSSL_version_num()


cdef extern from "tls.h" namespace "httprs" nogil:
    cdef cppclass TlsConfig:
        bool verify
        bool check_hostname
        string ca_file
        string ca_dir
        string cert_file
        string key_file
        string key_password
        bool http2

    cdef cppclass TlsContext:
        @staticmethod
        shared_ptr[TlsContext] create(const TlsConfig& cfg, Error& err)
        # Takes its own reference on ctx (SSL_CTX_up_ref).
        @staticmethod
        shared_ptr[TlsContext] adopt(SSL_CTX* ctx, bool check_hostname)
        # Cached per (ca_file, ca_dir): verify on, hostname check on.
        @staticmethod
        shared_ptr[TlsContext] default_context(const string& ca_file, const string& ca_dir,
                                               Error& err)
        SSL_CTX* ctx()
        bool check_hostname()

    bool is_ip_literal(const string& host)
