# Declarations from src/engine.h: the loop, pool and transfers.
from libc.stdint cimport uint64_t
from libcpp cimport bool
from libcpp.memory cimport shared_ptr
from libcpp.string cimport string
from libcpp.vector cimport vector

from httprs.includes.connection_info cimport ConnectionInfo
from httprs.includes.errors cimport Error, ErrorKind
from httprs.includes.http1 cimport HeaderList, RequestPlan, ResponseHead
from httprs.includes.tls cimport TlsContext


cdef extern from "engine.h" namespace "httprs" nogil:
    const unsigned kMinLibuvVersion
    bool libuv_supported(unsigned version)
    unsigned libuv_runtime_version()

    cdef cppclass PoolLimits:
        int max_connections
        int max_keepalive_connections
        double keepalive_expiry

    cdef enum class SocketOptionKind "httprs::SocketOption::Kind":
        kInt
        kBytes
        kNull

    cdef cppclass SocketOption:
        int level
        int name
        SocketOptionKind kind
        int int_value
        string bytes_value
        unsigned null_length

    ctypedef vector[SocketOption] SocketOptions

    cdef enum class HttpVersions "httprs::HttpVersions":
        kHttp1
        kHttp1Or2
        kHttp2

    cdef enum class ConsumerGate "httprs::ConsumerGate":
        kNone
        kConnects
        kResolves

    cdef cppclass RequestSpec:
        string pool_key
        string connect_host
        int connect_port
        vector[string] more_addresses
        string tunnel_authority
        HeaderList tunnel_headers
        string socks_host
        int socks_port
        string socks_username
        string socks_password
        shared_ptr[TlsContext] tls
        string tls_host
        shared_ptr[TlsContext] proxy_tls
        string proxy_tls_host
        string head
        const char* body
        size_t body_len
        RequestPlan plan
        bool body_streamed
        bool head_request
        double connect_timeout
        double read_timeout
        double write_timeout
        double pool_timeout
        shared_ptr[SocketOptions] socket_options
        bool uds
        string uds_path
        string local_address
        int connect_retries
        bool trace
        ConsumerGate consumer_gate
        HttpVersions versions
        string method
        string target
        string authority
        HeaderList headers

    cdef enum class Phase "httprs::Transfer::Phase":
        kQueued
        kConnecting
        kSending
        kWaiting
        kDone
        kFailed

    cdef enum class RawState "httprs::Transfer::RawState":
        kOpen
        kEof
        kFailed

    cdef cppclass Transfer:
        RequestSpec spec
        Phase phase
        Error error
        ResponseHead head
        bool head_ready
        bool complete
        bool body_sent
        bool want_body
        bool released
        bool http2
        int stream_id
        shared_ptr[ConnectionInfo] conn_info  # read once the head is ready
        string body_buf  # read only once `complete` (the engine is done with it)
        vector[uint64_t] chunk_ends  # read only once released
        vector[uint64_t] ends_taken  # what the consumer's last take handed over
        RawState raw_state
        Error raw_error
        const Error& reported_error()
        bool failed()

    cdef enum class SinkUse "httprs::SinkUse":
        kWhole
        kChunk

    cdef enum class Wake "httprs::Wake":
        kDriver
        kCaller

    cdef enum class WaitFor(int):
        kHead
        kBodyData
        kComplete
        kBodyWanted
        kTraceStep
        kSinkFull
        kRawData
        kRawSent

    # Milestones of a traced transfer (see engine.h).
    cdef enum class TraceStep(int):
        kConnect
        kConnected
        kTls
        kTlsDone
        kSend
        kSent
        kProxyTls
        kProxyTlsDone
        kTunnel
        kTunnelDone
        kSocks
        kSocksDone
        kH2Init

    cdef cppclass Engine:
        # `new Engine` on an exhausted heap: MemoryError, never a C++ exception through
        # Cython's frames (the engine allocates its read buffer on first use, nothrow).
        Engine(const PoolLimits& limits) except +
        shared_ptr[Transfer] submit(RequestSpec spec)
        bool wait(Transfer& t, WaitFor what, int slice_ms)
        void push_body(Transfer& t, const char* data, size_t len, bool last)
        void take_body(Transfer& t, string& out)
        bool take_buffered(Transfer& t, string& out, size_t max, Wake wake)
        size_t set_sink(Transfer& t, char* buf, size_t len, size_t fill, SinkUse use, Wake wake)
        size_t detach_sink(Transfer& t, size_t* extra)
        uint64_t body_received(Transfer& t)
        int mark_chunk_wait(Transfer& t)
        void end_chunk_wait(Transfer& t)
        void expire_chunk_wait(Transfer& t)
        void release(Transfer& t)
        bool try_release(Transfer& t)
        void release_deferred(shared_ptr[Transfer] t)
        void take_trace(Transfer& t, vector[int]& out)
        void trace_resume(Transfer& t)
        void connect_resume(Transfer& t, int fd, const Error& err)
        void resolve_resume(Transfer& t, vector[string] addresses, const Error& err)
        void raw_take(Transfer& t, string& out, size_t max)
        void raw_write(Transfer& t, const char* data, size_t len)
        int raw_fd(Transfer& t)
        bool raw_tls_info(Transfer& t, string& version, string& cipher, string& alpn)
        bool tls_peer_certificate(Transfer& t, string& der, bool& verified)
        shared_ptr[ConnectionInfo] trace_addresses(Transfer& t)
        int info_fd(ConnectionInfo& info)
        bool info_open(ConnectionInfo& info)
        bool info_readable(ConnectionInfo& info)
        void info_spend(ConnectionInfo& info)
        void close()
        int backend_fd()
        int backend_timeout()
        void run_nowait(vector[shared_ptr[Transfer]]& signaled)
        void watch(Transfer& t)
        void drive_externally()
        void wake()
        bool check(Transfer& t, WaitFor what)
        int connection_count()
        int idle_count()
        unsigned long long driver_wakes()
        unsigned long long direct_waits()
        unsigned long long direct_reads()
        unsigned long long marked_waits()
        void hold_mutex_for_testing(int ms)
        @staticmethod
        bool satisfied(const Transfer& t, WaitFor what)
        @staticmethod
        bool ready_now(const Transfer& t, WaitFor what)
        @staticmethod
        unsigned long long fork_generation()
        @staticmethod
        void fork_prepare_all()
        @staticmethod
        void fork_abandon_all()
        @staticmethod
        size_t spare_loop_count()
        @staticmethod
        void prepare_process()
        int start_error()
