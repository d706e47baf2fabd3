# Declarations from src/tls.h: TLS contexts (shared SSL_CTX) for the core.
#
# The Cython side (httprs/_tls.pxi, part of _core) builds a TlsContext once per client (or
# takes the cached default_context, adopts a plain ssl.SSLContext's SSL_CTX,
# or wraps any other ssl.SSLContext as a foreign context run through
# ForeignTlsOps) and hands the shared_ptr to the connection code; sessions are
# created and driven inside C++ only, so TlsSession is not declared here.
# All functions return error values (nullptr + Error), none raises.
from libc.stdint cimport uint64_t
from libcpp cimport bool
from libcpp.memory cimport shared_ptr
from libcpp.string cimport string

from httprs.includes.errors cimport Error


cdef extern from "openssl/ssl.h" nogil:
    ctypedef struct SSL_CTX:
        pass
    ctypedef struct SSL_METHOD:
        pass
    unsigned long OpenSSL_version_num()
    SSL_CTX* SSL_CTX_new(const SSL_METHOD* method)
    int SSL_CTX_get_verify_mode(const SSL_CTX* ctx)
    unsigned long SSL_CTX_get_options(const SSL_CTX* ctx)


cdef extern from "tls.h" namespace "httprs" nogil:
    # The settings of ssl.create_default_context() httprs's own contexts copy (tls.h).
    cdef cppclass TlsPolicy:
        string cipher_list
        string ciphersuites
        int min_version
        int max_version
        uint64_t options
        unsigned long verify_flags
        unsigned int host_flags
        int security_level

    cdef cppclass TlsConfig:
        bool verify
        bool check_hostname
        string ca_file
        string ca_dir
        string cert_file
        string key_file
        string key_password
        string keylog_file
        bool http2
        TlsPolicy policy

    # Callbacks for a foreign context (see tls.h); statuses are ints:
    # 0 ok, 1 want read, 2 closed, 3 error.
    cdef cppclass ForeignTlsInfo:
        string version
        string cipher
        string cipher_version
        int cipher_bits
        string alpn
        string peer_der
        bool verified
        bool session_reused

    const char* kForeignRefused

    cdef struct ForeignTlsOps:
        void* (*open)(void* ctx, const char* host, size_t host_len, Error* err) noexcept
        void (*close)(void* s) noexcept
        int (*handshake)(void* s, Error* err) noexcept
        void (*feed)(void* s, const char* data, size_t len) noexcept
        int (*read)(void* s, char* buf, size_t cap, size_t* n, Error* err) noexcept
        bool (*write)(void* s, const char* data, size_t len, Error* err) noexcept
        void (*shutdown)(void* s) noexcept
        size_t (*pending)(void* s) noexcept
        size_t (*take)(void* s, string* dst) noexcept
        void (*info)(void* s, ForeignTlsInfo* out) noexcept
        void (*release)(void* ctx) noexcept
        bool (*enter)() noexcept nogil
        void (*leave)() noexcept nogil

    cdef cppclass TlsContext:
        @staticmethod
        shared_ptr[TlsContext] create(const TlsConfig& cfg, Error& err)
        # Takes its own reference on ctx (SSL_CTX_up_ref).
        @staticmethod
        shared_ptr[TlsContext] adopt(SSL_CTX* ctx, bool check_hostname)
        # Sessions run through ops; handle is released with ops.release.
        @staticmethod
        shared_ptr[TlsContext] foreign(const ForeignTlsOps* ops, void* handle)
        # Cached per (ca_file, keylog_file) (a ca_dir context is built each call): verify on,
        # hostname check on; keylog_file is "" for none (the caller reads SSLKEYLOGFILE).
        @staticmethod
        shared_ptr[TlsContext] default_context(const string& ca_file, const string& ca_dir,
                                               const string& keylog_file,
                                               const TlsPolicy& policy, Error& err)
        SSL_CTX* ctx()
        bool check_hostname()

    bool is_ip_literal(const string& host)
