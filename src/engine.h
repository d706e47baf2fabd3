// The engine: one uv loop, its connection pool and the transfers in flight.
//
// Threading: every piece of engine state, and every libuv call, happens under
// `mu_` (one exception, no libuv call: a deferred socket write's kernel call,
// see defer_write()). Whoever needs progress drives the loop: it polls the loop's backend
// fd *without* the lock, then runs uv_run(UV_RUN_NOWAIT) with it. One thread
// drives at a time (leader/follower); the others sleep, each on a futex word
// of its own (Sleeper::parked), and are woken one by one: when their own transfer is
// ready, or (one of them) to take over driving when the driver leaves. A
// sync waiter whose HTTP/1.1 request is out polls its own connection's
// socket instead, and runs the loop itself when it is readable (wait(),
// direct_fd()). The async bridge drives the same way from the event loop's
// thread (backend_fd() + run_nowait()).
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "connection_info.h"
#include "errors.h"
#include "http1.h"
#include "tls.h"

namespace httprs {

// The oldest libuv the engine's driving works with (UV_VERSION_HEX of 1.44.0);
// engine.cc says why. `libuv_supported(uv_version())` is checked at import.
inline constexpr unsigned kMinLibuvVersion = 0x012C00;
bool libuv_supported(unsigned version);
// uv_version() of the libuv loaded at run time (it may differ from the headers').
inline unsigned libuv_runtime_version() { return uv_version(); }

// Handles still registered in `loop`: open ones and closing ones whose close
// callback has not run yet (libuv drops a handle from its loop just before
// calling its close callback). libuv's internal handles are not counted.
size_t open_handle_count(uv_loop_t* loop);
// Debug builds (no NDEBUG, e.g. the ASan build): abort, listing the handles,
// when a loop about to be freed still has any. Release builds: nothing.
void check_loop_released(uv_loop_t* loop, const char* where);

class Connection;
class Engine;
class SocketStream;

struct PoolLimits {
  int max_connections = -1;            // < 0: unlimited
  int max_keepalive_connections = -1;  // < 0: unlimited
  double keepalive_expiry = 5.0;       // seconds; none (never expire): timeouts.h
  // Zero or less: an idle connection has expired at once, even within the
  // millisecond (httpcore: once now > idle since + expiry, which its pool checks
  // as the response is closed), so none is kept. NaN is none, as there.
  bool expire_at_once() const { return keepalive_expiry <= 0; }
};

// A setsockopt() applied to every new socket before it connects, as httpx's
// socket_options=: an int value, a byte string, or (value None) just a length.
struct SocketOption {
  int level = 0;
  int name = 0;
  enum class Kind { kInt, kBytes, kNull } kind = Kind::kInt;
  int int_value = 0;
  std::string bytes_value;
  unsigned null_length = 0;
};
using SocketOptions = std::vector<SocketOption>;

// Milestones of a traced transfer (RequestSpec::trace), reported in order for
// the `trace` request extension. At a gate the connection stops before the
// phase until Engine::trace_resume(), so the consumer's "...started" callback
// runs before the phase does (and not under its timeout), as in httpcore.
enum class TraceStep : int {
  kConnect = 0,    // gate: about to resolve and connect
  kConnected = 1,  // TCP (or Unix socket) connected
  kTls = 2,        // gate: about to start the origin's TLS handshake
  kTlsDone = 3,    // handshake complete
  kSend = 4,       // gate: about to send the request
  kSent = 5,       // gate: the whole request is written; about to await the response
  kProxyTls = 6,   // gate: about to start the TLS handshake with an https:// proxy
  kProxyTlsDone = 7,
  kTunnel = 8,  // gate: about to send CONNECT
  kTunnelDone = 9,
  kSocks = 10,  // gate: about to start the SOCKS5 exchange
  kSocksDone = 11,
  kH2Init = 12,  // the connection preface and SETTINGS went out for this request (HTTP/2)
};

// The HTTP versions a transport may speak (httpx's http1= / http2=): HTTP/2
// is used over TLS when the server picks "h2" by ALPN, and with prior
// knowledge (h2c, or TLS without ALPN) when HTTP/1.1 is not allowed.
enum class HttpVersions { kHttp1, kHttp1Or2, kHttp2 };

// What the consumer does for a transfer's new connections at their kConnect gate.
enum class ConsumerGate {
  kNone,  // nothing: the core resolves and connects on its own (no gate unless traced)
  // It opens them (Python's socket.socket or its connect is guarded, and a guard
  // must decide), each gate waiting for Engine::connect_resume.
  kConnects,
  // It resolves connect_host (Python's socket.getaddrinfo is replaced, and its
  // answers must steer them), each gate waiting for Engine::resolve_resume to hand
  // it the addresses, which the core then races (RFC 8305) as its own.
  kResolves,
};

// Everything the core needs to run one request. Built by the Cython layer.
struct RequestSpec {
  std::string pool_key;      // origin + TLS settings + proxy; equal keys share connections
  std::string connect_host;  // where the TCP connection goes (origin or proxy)
  int connect_port = 0;
  // With connect_host an IP literal: more literals for the same host (a Python
  // resolver hook's further answers, in its order), raced after it (RFC 8305).
  std::vector<std::string> more_addresses;
  std::string tunnel_authority;  // "host:port" to CONNECT through a proxy; empty: no tunnel
  HeaderList tunnel_headers;     // headers for the CONNECT request (Host is added)
  std::string socks_host;        // SOCKS5 proxy: the target to CONNECT to; empty: no SOCKS
  int socks_port = 0;
  std::string socks_username;  // with a username: RFC 1929 username/password auth
  std::string socks_password;
  std::shared_ptr<TlsContext> tls;        // TLS to the origin (after any tunnel); null: plain
  std::string tls_host;                   // SNI / certificate check name
  std::shared_ptr<TlsContext> proxy_tls;  // TLS to an https:// proxy; null: plain
  std::string proxy_tls_host;             // the proxy's name for SNI / checks
  // The serialised HTTP/1.1 request head (serialize_request). Empty when the
  // request may go as HTTP/2: then only plan_request checked it, and the
  // HTTP/1.1 session writes the head (write_planned_head from method, target
  // and headers) if it goes out as HTTP/1.1 after all.
  std::string head;
  RequestPlan plan;            // its framing, idempotency and upgrade, from the same call
  const char* body = nullptr;  // fixed body, owned by the caller until the transfer ends
  size_t body_len = 0;
  bool body_streamed = false;  // the body comes through Engine::push_body
  bool head_request = false;   // response has no body
  // Seconds; < 0 (or NaN, infinite, huge: timeouts.h) means none.
  double connect_timeout = -1, read_timeout = -1, write_timeout = -1, pool_timeout = -1;
  std::shared_ptr<const SocketOptions> socket_options;  // per transport; may be null
  bool uds = false;           // connect to the Unix socket uds_path instead of host:port
  std::string uds_path;       // (its address: a path, an abstract name, even empty)
  std::string local_address;  // bind the socket to this address before connecting
  int connect_retries = 0;    // retry failed TCP connects (DNS / connect), httpcore-style
  bool trace = false;         // record TraceSteps and stop at each gate (trace extension)
  // What the consumer does at this transfer's new connections' kConnect gate
  // (each records TraceStep::kConnect and stops there; at the other gates only
  // when `trace` is set too).
  ConsumerGate consumer_gate = ConsumerGate::kNone;
  HttpVersions versions = HttpVersions::kHttp1;
  // When the request may go as HTTP/2 (`head` is empty): the request itself.
  std::string method;
  std::string target;     // origin-form path and query
  std::string authority;  // host[:port] when the headers carry no Host
  HeaderList headers;     // the request headers, as given

  // HTTP/2 may carry this request on this connection: over TLS (ALPN decides),
  // or in clear text with prior knowledge.
  bool may_use_http2() const {
    return versions == HttpVersions::kHttp2 || (versions == HttpVersions::kHttp1Or2 && tls);
  }
};

// How the consumer uses the sink it hands the engine: the whole body (grown
// when full: WaitFor::kSinkFull), or one streamed chunk (taken as soon as it
// holds bytes: WaitFor::kBodyData).
enum class SinkUse { kWhole, kChunk };

// Whether a consumer operation wakes whoever drives the loop (kDriver), or
// leaves that to the caller (kCaller): an async consumer that runs the loop
// itself right after, or else calls Engine::wake() (saves an eventfd write,
// and the event loop pass it causes, per streamed chunk).
enum class Wake { kDriver, kCaller };

// One request/response exchange. Shared between the engine (while it is in
// flight) and the Python object that owns it.
//
// Everything is written under the engine mutex. The consumer (Cython) reads
// the completion flags below without it, so they are atomics: once it has
// seen `head_ready` it may read `head`, once it has seen a failed `phase` it
// may read `error` (both are written before their flag). The sink fields are
// only touched through Engine::set_sink / Engine::detach_sink.
class Transfer : public std::enable_shared_from_this<Transfer> {
 public:
  enum class Phase { kQueued, kConnecting, kSending, kWaiting, kDone, kFailed };

  RequestSpec spec;
  std::atomic<Phase> phase{Phase::kQueued};
  Error error;
  ResponseHead head;
  std::atomic<bool> head_ready{false};
  std::atomic<bool> complete{false};   // the whole response body has been received
  std::atomic<bool> body_sent{false};  // the whole request has been written
  std::atomic<bool> want_body{false};  // streamed upload: the engine wants the next chunk
  std::atomic<bool> released{false};   // the consumer let go (Engine::release)
  std::atomic<bool> detached{false};   // the engine is done with it (on_transfer_detached)
  std::string body_buf;                // received body bytes not yet taken by the consumer
  char* sink = nullptr;                // when set: body bytes go here (allocated by the consumer)
  size_t sink_len = 0;
  size_t sink_fill = 0;
  bool sink_overflow = false;
  SinkUse sink_use = SinkUse::kWhole;
  // An HTTP/2 body's marked poll ran out of time with bytes under its mark (the
  // server waits for an answer, or its stream ended short): no more marks (mu_).
  bool h2_unmarked = false;
  uint64_t body_received = 0;
  // A body that may be streamed: where its transfer units end (an HTTP/1.1
  // chunk, an HTTP/2 DATA frame: mark_chunk_end), as counts of body_received,
  // until a take hands them over. Not recorded into a whole-body sink, and
  // dropped when one is set (the ends of bytes that came with the head, before
  // the consumer chose how to read).
  std::vector<uint64_t> chunk_ends;
  // The chunk ends the consumer's takes (take_body, take_buffered, detach_sink)
  // handed over: those within or at the end of the bytes it took, where it cuts
  // them so that no piece it yields holds bytes of two chunks (or frames), as
  // httpx yields them. A take adds to them; the consumer clears them once it has
  // cut its chunk. Only the consumer touches it.
  std::vector<uint64_t> ends_taken;
  int attempts = 0;
  // The stale keep-alive race (a reused HTTP/1.1 connection closed on the request
  // unanswered, Connection::resend): sent again once, never twice, and first on a
  // connection opened for it (kAwaitingConnection until the pool opens one).
  enum class Resend { kNone, kAwaitingConnection, kOnNewConnection };
  Resend resend = Resend::kNone;
  Error resent_after;  // what ended the first attempt
  int connect_retries_done = 0;
  uint64_t retry_due_ms = 0;
  bool watched = false;   // async: report state changes through run_nowait()
  bool signaled = false;  // async: already in the engine's signaled list
  uint64_t pool_deadline_ms = 0;
  Connection* conn = nullptr;
  // The connection that carries (or carried) it, as established: set before
  // its head is ready, kept after it leaves the connection (`network_stream`).
  std::shared_ptr<ConnectionInfo> conn_info;
  // Carried by an HTTP/2 stream (set before kSend is recorded), and which one
  // (the `stream_id` response extension). Atomic: the consumer reads them
  // without the mutex, and Engine::retry rewrites them for the next attempt.
  std::atomic<bool> http2{false};
  std::atomic<int32_t> stream_id{0};
  std::vector<int> trace_steps;  // TraceSteps recorded (spec.trace), taken by take_trace
  // spec.trace: the socket's addresses as it connected (kConnected), for the
  // trace's streams before the connection is established, and the connection
  // while it is open (`live`: their get_extra_info("socket")); the addresses
  // never change once set (a new connection of a retry sets a new one). Under
  // the mutex.
  std::shared_ptr<ConnectionInfo> trace_addresses;
  size_t trace_taken = 0;  // how many of trace_steps the consumer took

  // A requested 101 Switching Protocols: the connection is this transfer's raw
  // byte stream (the `network_stream` extension) until it is released.
  // kOpen: bytes may still come; kEof: the peer ended its side (raw_in may
  // still hold bytes); kFailed: a read or write failed (raw_error says how).
  enum class RawState { kOpen, kEof, kFailed };
  std::string raw_in;  // bytes of the new protocol read but not taken yet
  std::atomic<RawState> raw_state{RawState::kOpen};
  Error raw_error;        // written before raw_state becomes kFailed
  size_t raw_unsent = 0;  // writes handed to the socket but not completed

  // The error the caller gets: for a resend that never reached a server (its connect
  // or its wait for the pool failed), what ended the first attempt, as httpx (which
  // does not resend) reports it; a ConnectError would read as "never sent".
  const Error& reported_error() const {
    bool unsent = error.kind == ErrorKind::kConnectError ||
                  error.kind == ErrorKind::kConnectTimeout || error.kind == ErrorKind::kPoolTimeout;
    return resend != Resend::kNone && unsent ? resent_after : error;
  }
  bool failed() const { return phase == Phase::kFailed; }
  // A transfer unit of the body ended with the bytes received so far: recorded
  // where the consumer may stream the body (one read whole has no pieces to cut).
  void mark_chunk_end() {
    bool whole = sink != nullptr && sink_use == SinkUse::kWhole;
    if (whole || (!chunk_ends.empty() && chunk_ends.back() == body_received)) return;
    chunk_ends.push_back(body_received);
  }
  // The head is in and the consumer works on what it took, not waiting for body
  // bytes (no sink): no read deadline runs, as httpx's read timeout bounds a read
  // call, and the consumer's next ask (a sink) starts one anew.
  // (Not once every declared byte is in but the end is not, HTTP/2's END_STREAM:
  // a consumer waiting for it has no room to give, and must see the deadline.)
  bool consumer_busy() const {
    bool all_in = head.has_content_length && body_received >= head.content_length;
    return head_ready && body_sent && !complete && sink == nullptr && !all_in;
  }
  // An HTTP/2 DATA frame ended after the consumer took all its bytes (its padding
  // came later): the consumer holds them back until the frame ends, so the end
  // alone is worth a take (WaitFor::kBodyData), which hands it over.
  bool frame_end_waits() const {
    if (!http2 || chunk_ends.empty()) return false;
    uint64_t unread = body_buf.size() + (sink != nullptr ? sink_fill : 0);
    return chunk_ends.front() <= body_received - unread;
  }
};

enum class WaitFor : int {
  kHead = 0,        // response head (or failure)
  kBodyData = 1,    // some body bytes buffered (or in the sink), or complete
  kComplete = 2,    // whole body received (into the sink or the buffer)
  kBodyWanted = 3,  // streamed upload wants a chunk, or the head arrived
  kTraceStep = 4,   // a TraceStep not taken yet, or kBodyWanted holds
  kSinkFull = 5,    // the sink is full (the consumer must grow it), or complete
  kRawData = 6,     // switched stream: bytes to take, or its end (EOF or failure)
  kRawSent = 7      // switched stream: every write completed, or it failed
};
// Every WaitFor also holds once the transfer failed or was released.

class Engine {
 public:
  explicit Engine(const PoolLimits& limits);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Start a request. Never blocks. Failures (closed engine) land in the transfer.
  std::shared_ptr<Transfer> submit(RequestSpec&& spec);

  // Block (drive or wait) until `what` holds for `t`, the transfer failed, or
  // `slice_ms` passed (so the caller can check for signals). True when done.
  bool wait(Transfer& t, WaitFor what, int slice_ms);
  static bool satisfied(const Transfer& t, WaitFor what);
  // satisfied() where it reads only atomics (kHead, kComplete), so without
  // the mutex: true when `what` holds already, false when it does not or
  // cannot be told this way. A wait that is over costs no lock (and, from
  // Cython, no GIL release).
  static bool ready_now(const Transfer& t, WaitFor what);
  // satisfied(), read under the mutex (the consumer's view of the buffers).
  bool check(Transfer& t, WaitFor what);

  // Every consumer operation below wakes whoever drives the loop: a thread in
  // wait(), or the event loop watching backend_fd() (see drive_externally()).

  // Streamed upload: queue the next chunk (copied); `last` ends the body.
  void push_body(Transfer& t, const char* data, size_t len, bool last);
  // Move buffered body bytes out (resumes reading if it was paused).
  void take_body(Transfer& t, std::string& out);
  // Streaming: move out up to `max` buffered body bytes, if there are any
  // (then reading resumes; `wake` says whether the driver is woken); false,
  // and nothing done, when none are. Bytes that came before a sink was
  // attached (with the head) so become a chunk with one copy, not two.
  bool take_buffered(Transfer& t, std::string& out, size_t max, Wake wake);
  // Direct body bytes into `buf` (`len` bytes, of which the first `fill` are
  // already body): copies what is buffered first. Returns the new fill. The
  // sink can be replaced by a bigger one: detach_sink(), grow, set_sink().
  size_t set_sink(Transfer& t, char* buf, size_t len, size_t fill, SinkUse use = SinkUse::kWhole,
                  Wake wake = Wake::kDriver);
  // Stop writing into the sink; returns how many bytes it holds. `extra` (if
  // not null) is set to the number of body bytes buffered beyond it.
  size_t detach_sink(Transfer& t, size_t* extra);
  // Body bytes received so far (as framed, before any decoding), read under the
  // mutex: what a read that failed part-way had got.
  uint64_t body_received(Transfer& t);
  // An event loop's wait for a streamed chunk (asyncio, `_AsyncDriver.wait`) or
  // a whole body (`_AsyncDriver._wait_body_marked`): when the sink's next read
  // goes straight into it, the transfer's socket reads readable only once
  // that much is here (up to kLowatMax: the direct sync wait's receive
  // low-water mark), so the loop is not woken, and the server on this CPU not
  // preempted, on every segment. 0 (kNone): not marked; 1 (kQueued): that
  // much is in already (a whole body's wait gets kMarked all the same: its
  // socket reads readable at once, and the mark holds for the bytes after);
  // 2 (kMarked): marked, until end_chunk_wait() (or the exchange's end). The
  // caller calls expire_chunk_wait() after at most kLowatChunkMs for a chunk,
  // every 50 ms for a whole body (the sync wait's poll slice), which clears
  // the mark and reads what came under it, as the sync wait does after its
  // poll: a kernel before 4.18 does not wake the loop when the mark is
  // cleared. A whole body's mark comes down with its reads to what is still
  // due (Connection::follow_body_mark).
  int mark_chunk_wait(Transfer& t);
  void end_chunk_wait(Transfer& t);
  void expire_chunk_wait(Transfer& t);
  // The consumer is done with the transfer: a connection still attached is
  // closed (the response was not fully read); queued transfers are dropped.
  // Anyone waiting on `t` returns (released counts as done).
  void release(Transfer& t);
  // release() when mu_ is free, without waiting for it: false, and nothing
  // done, when another thread holds it. Never blocks, so Cython may call it
  // with the GIL held (a GIL released for each response's release is taken by
  // a waiting thread: one more hand-off per request with threads). A detached
  // transfer (an HTTP/2 stream that ended) is released without mu_: true.
  bool try_release(Transfer& t);
  // release() for finalisers: never takes mu_ (Python code, and so a GC pass
  // that frees a body, can run on a thread that holds mu_: the TLS callbacks).
  // Queues `t` under deferred_mu_ and wakes the loop; whoever next holds mu_
  // (drive_once, run_nowait, submit, close) releases it; once closed, it is
  // marked released at once, and so is a detached transfer (an ended HTTP/2
  // stream of a sync engine: nothing of the engine's refers to it, as in
  // try_release), with no queue and no wake-up. Until `t->released` shows, the
  // engine may still read the request body and write into the sink, so the
  // consumer keeps both alive until then (_body.pxi parks them).
  void release_deferred(std::shared_ptr<Transfer> t);
  // The direct waits' reads before their poll (read_first), learnt per
  // origin (pool key), under mu_: waits left that poll first; the reads tried
  // in this round, and how many found nothing. An origin's connections share
  // it, and a new one takes over what closed ones learnt (a server that
  // answers `Connection: close` gets a connection per request).
  struct ReadFirst {
    uint8_t skip = 0;
    uint8_t tries = 0;
    uint8_t misses = 0;
  };
  // Origin `key`'s record (under mu_), which a connection takes when made.
  // Kept while a connection holds it; the others are forgotten once more
  // than kReadFirstKeys origins are listed.
  static constexpr size_t kReadFirstKeys = 64;
  std::shared_ptr<ReadFirst> read_first_record(const std::string& key);
  // Switched (101) transfers: the raw stream. raw_take moves up to `max`
  // buffered bytes into `out` and, when it leaves the buffer empty, reads on.
  // raw_write queues a copy of `data` (through TLS when the connection has
  // it); completion shows as WaitFor::kRawSent. raw_fd: a duplicate of
  // the socket's descriptor (as info_fd), or -1 once the connection is gone. Timeouts are the
  // consumer's (it waits in slices); none of these block.
  void raw_take(Transfer& t, std::string& out, size_t max);
  void raw_write(Transfer& t, const char* data, size_t len);
  int raw_fd(Transfer& t);
  // The TLS session under a switched stream: false when it has none.
  bool raw_tls_info(Transfer& t, std::string& version, std::string& cipher, std::string& alpn);
  // The peer certificate (DER) of the TLS session `t` runs on, and whether it
  // was verified: false when there is none. For ssl_object.getpeercert() on a
  // switched stream and on the trace extension's start_tls event.
  bool tls_peer_certificate(Transfer& t, std::string& der, bool& verified);
  // The addresses `t`'s connection had when it connected, with the connection
  // while it is open (traced transfers; null before that).
  std::shared_ptr<ConnectionInfo> trace_addresses(Transfer& t);
  // An established connection's live socket, from its ConnectionInfo (the
  // caller holds a reference to it). info_fd: a duplicate of its descriptor
  // (close-on-exec, the caller's to close), made under the mutex so that it is
  // this connection's, or -1 once the connection closed (or the dup failed);
  // the connection then shuts its socket down before closing it, so that the
  // duplicate does not keep it open.
  // info_readable: whether a read would not block (bytes or EOF waiting), true
  // once it closed. info_spend: never reuse the connection; closed at once when
  // it carries no exchange, else when its last one ends.
  int info_fd(ConnectionInfo& info);
  bool info_open(ConnectionInfo& info);  // the connection has not closed yet
  bool info_readable(ConnectionInfo& info);
  void info_spend(ConnectionInfo& info);
  // Traced transfers: append the TraceSteps not taken yet to `out`.
  void take_trace(Transfer& t, std::vector<int>& out);
  // Traced transfers: let the connection stopped at a gate go on.
  void trace_resume(Transfer& t);
  // ConsumerGate::kConnects transfers, stopped at the kConnect gate: go on over `fd`,
  // a TCP socket the consumer connected (taken over; closed when the gate is
  // no longer there), or, with fd < 0, fail the connect with `err` (a
  // ConnectError or ConnectTimeout: retried as the core's own connects are).
  void connect_resume(Transfer& t, int fd, const Error& err);
  // ConsumerGate::kResolves transfers, stopped at the kConnect gate: connect to
  // `addresses` (IP literals, in the resolver's order), or, with err set or
  // none, fail the connect (a ConnectError: retried as the core's own).
  void resolve_resume(Transfer& t, std::vector<std::string> addresses, const Error& err);
  // Close every connection (in-flight transfers fail with kClosed), then the
  // loop itself, releasing every descriptor. Idempotent. Never waits for
  // resolver (getaddrinfo) requests still running in libuv's thread pool: the
  // loop is then handed to a short-lived thread that runs it until they end.
  void close();

  // Async embedding.
  int backend_fd() const;
  int backend_timeout();  // ms until libuv wants to run again; -1: no timers
  void run_nowait(std::vector<std::shared_ptr<Transfer>>& signaled);
  void watch(Transfer& t);
  // An event loop drives this engine through backend_fd(): from now on every
  // consumer operation wakes it (uv_async_send makes the backend fd readable),
  // not only a thread blocked in wait()'s poll().
  void drive_externally();
  // Wake whoever drives the loop (after an operation called with Wake::kCaller
  // when the caller does not run the loop itself after all).
  void wake();

  // How many times this process is a fork() child of a process that had
  // engines (bumped in the child). The async bridge compares it to know that
  // the event loop it was attached to belongs to the parent.
  static uint64_t fork_generation();
  // fork() from Python: os.register_at_fork(before=) calls this without the
  // GIL, so a thread holding mu_ and waiting for the GIL (a TLS callback) can
  // finish first. It takes every engine's locks for this thread's coming
  // fork; the pthread_atfork prepare handler then skips, and the parent/child
  // handlers release/remake them as usual. fork_abandon_all (after_in_parent)
  // unlocks if no fork ran after all (the parent handler did not run).
  static void fork_prepare_all();
  static void fork_abandon_all();
  // Tests: the emptied loops of closed engines kept for new engines (engine.cc).
  static size_t spare_loop_count();
  // libuv's one-time set-up, done at import (engine.cc says why).
  static void prepare_process();
  // Not 0: the engine could not make its loop (a libuv status, UV_EMFILE when the
  // process was out of descriptors): every request fails with a ConnectError saying
  // so, and the transport makes a new engine for its next one.
  int start_error() const { return start_error_; }

  // Stats for tests and benchmarks.
  int connection_count();
  int idle_count();
  // How many times the driver was woken (uv_async_send) for a consumer operation.
  uint64_t driver_wakes();
  // How many rounds of wait() a thread spent waiting on its own socket
  // (direct_fd): each counted once, whether it polled, read first without a
  // poll (Engine::read_first), or read first, found nothing and polled.
  uint64_t direct_waits();
  // How many of those rounds took bytes from their socket without the loop.
  uint64_t direct_reads();
  // How many driver polls waited for an HTTP/2 body with its socket marked.
  uint64_t marked_waits();
  // Tests: hold the engine mutex for `ms` (proves callers do not hold the GIL
  // while they wait for it).
  void hold_mutex_for_testing(int ms);
  // Tests: hold the engine mutex while `held` runs on this thread (it knows
  // the mutex is held: no sleep stands in for that).
  void hold_mutex_for_testing(const std::function<void()>& held);
  // Tests: a hook told where sync waiters are (set before any thread waits;
  // none by default): a driver about to poll without mu_ (kPolling), a
  // follower about to park (kParking), back from its park (kUnparked),
  // holding mu_ again after it (kRelocked), a waker about to notify a
  // sleeper it picked (kNotifying) and done with it (kNotified), and a direct
  // waiter about to poll its own socket without mu_ (kDirectPolling) or to
  // read it before it polls, holding mu_ (kDirectReadingFirst: a hook that
  // stops there stops the whole engine).
  enum class WaitPoint {
    kPolling,
    kParking,
    kUnparked,
    kRelocked,
    kNotifying,
    kNotified,
    kDirectPolling,
    kDirectReadingFirst
  };
  static void set_wait_hook_for_testing(void (*hook)(WaitPoint));
  // Tests: sleeper records made so far (each thread reuses its own).
  static uint64_t sleeper_records_made_for_testing();

  // ---- internal, used by Connection (called with mu_ held) ----
  uv_loop_t* loop() { return loop_; }
  const PoolLimits& limits() const { return limits_; }
  void on_connection_closed(Connection* c);
  // `c` has room for another exchange (idle, or an HTTP/2 connection below
  // its stream limit): list it for its key, once, and serve the waiters.
  void on_connection_released(Connection* c);
  // `t` ended (completed or failed, not to be retried) and no connection or
  // queue holds it any more: an HTTP/2 stream's end. In a sync engine it is
  // then marked detached (under mu_, after everything else the engine wrote
  // to it: it writes to it no more), so that its release takes no mutex:
  // with threads sharing one HTTP/2 connection, the mutex is held (by the
  // driver, by a submission) when a response is released as often as not,
  // and waiting for it cost a futex wait and wake, and the GIL, per release.
  void on_transfer_detached(Transfer& t);
  // `c` finished establishing as HTTP/1.1 although it might have been HTTP/2:
  // requests held for it (negotiating_http2) may go on.
  void on_connection_ready(Connection* c);
  void signal(Transfer& t);
  // `c` has output to write once the consumers' calls of this turn are in
  // (HTTP/2: every stream started meanwhile goes out in one write): the
  // engine calls c->flush_wanted() before it next polls or runs the loop.
  void want_flush(Connection* c);
  // A connection starts (+1) or stops (-1) working for the pool with no
  // waiter behind it: establishing after its transfer left, or draining an
  // abandoned response. While any does, sync waiters do not wait on their own
  // sockets (direct_fd): someone must drive the loop for it.
  void note_pool_work(int delta);
  // Close a connection draining an abandoned response, if any, for a waiter
  // that finds no room in the pool; true when there is room now.
  bool close_a_spare(const std::string& key);
  // A connection of `key`'s origin came free for a waiter: the others queued
  // for that origin wait again from now (httpcore's pool timeout).
  void renew_pool_waits(const std::string& key);
  // SocketStream::write asks: inside a consumer operation (ConsumerLock) or a
  // driver's flush before it polls, a write to a socket with nothing queued
  // leaves for the kernel once mu_ is let go of (true: `s` is listed). The
  // server it wakes, on the caller's CPU, preempts the caller at that call;
  // made with mu_ held, every other thread needing mu_ then waited too
  // (16 threads on one client: ~0.3-0.5 futex waits per request).
  bool defer_write(SocketStream* s);
  void retry(std::shared_ptr<Transfer> t);
  // Queue `t` again after `delay_ms` (connect retries with backoff).
  void retry_later(std::shared_ptr<Transfer> t, uint64_t delay_ms);
  // The connections' shared read buffer; null (and *len 0) when it could
  // not be allocated (an exhausted heap). 1 MiB: reads of a body through it
  // (chunked, close-delimited) that large let the kernel's receive-buffer
  // autotuning open the window (docs/ARCHITECTURE.md, streaming); its pages
  // are resident only once a read wrote them.
  char* read_buffer(size_t* len);
  static constexpr size_t kReadBufferSize = 1024 * 1024;
  uint64_t now_ms() { return uv_now(loop_); }

 private:
  void acquire(std::shared_ptr<Transfer> t);
  // Count an attempt and start its pool timeout (acquire and retry).
  void start_pool_wait(Transfer& t);
  bool take_idle(const RequestSpec& spec, Connection** out);
  // A connection for `key` is still establishing and may become HTTP/2.
  bool negotiating_http2(const std::string& key) const;
  void service_waiters();
  // Listed connections carrying nothing (max_keepalive_connections counts these).
  int idle_connections() const;
  void arm_pool_timer();
  static void on_pool_timer(uv_timer_t* h);
  static void on_wakeup(uv_async_t* h);
  // A thread sleeping in wait() while another one drives the loop, or on its
  // own socket (Sleeper below).
  struct Sleeper;
  // How a sleeper waits: parked on its own word while another thread
  // drives (kFollower), or in poll() on its own socket and eventfd (kDirect).
  enum class SleepMode { kFollower, kDirect };
  // Why a sleeper was picked, and the value its word (Sleeper::parked) gets
  // (0 while it waits): its wait is over (kDone), or the driver left and it
  // is to drive next (kDrive), which it must pass on if it does not.
  enum class Pick : uint32_t { kDone = 1, kDrive = 2 };
  // A sleeper to wake once mu_ is let go of, and how it waits: read under
  // mu_ when it was picked (its thread may have moved on since).
  struct Wakeup {
    std::shared_ptr<Sleeper> sleeper;
    SleepMode mode;
    Pick pick;
  };
  using Wakeups = std::vector<Wakeup>;
  // One round of driving. `wake`: sleepers picked by the last round, notified
  // (and cleared) once mu_ is let go of for the poll. `waiter`: the driving
  // thread's own transfer, whose HTTP/2 body the poll may wait for marked
  // (Connection::mark_h2_wait).
  void drive_once(std::unique_lock<std::mutex>& lk, int timeout_ms, Wakeups& wake,
                  Transfer* waiter = nullptr);
  // wait()'s rounds as the driver and as a follower (engine_wait.cc).
  void drive_round(std::unique_lock<std::mutex>& lk, Transfer& t, WaitFor what,
                   std::chrono::steady_clock::time_point deadline, bool direct_next, Wakeups& wake);
  bool follow(std::unique_lock<std::mutex>& lk, Transfer& t, WaitFor what,
              std::chrono::steady_clock::time_point deadline, bool& seat);
  // Whether a direct wait's poll may wait for a body's next bytes at once (a
  // low-water mark on the socket, below): kArmed until such a poll runs out
  // of time; kExpired from then on, for the rest of the caller's wait (that
  // round reads what came at once, before the loop runs a timer due over it).
  enum class LowWater { kArmed, kExpired };
  // A wait() call's state across its direct rounds (direct_once).
  struct DirectRounds {
    LowWater low_water = LowWater::kArmed;
    // The next direct round may read its socket before it polls: the call's
    // first (after its TLS handshake's, if any) only. A later round polls (at
    // once when more bytes are in), so each round after a read that did not
    // end the wait lets go of mu_ and notifies the sleepers it picked.
    bool read_first = true;
  };
  // One round of a direct wait (SleepMode::kDirect) on socket `fd` for
  // `t`: poll it (and the sleeper's eventfd) without mu_, then run the loop
  // once unless `t` is satisfied meanwhile. False when no eventfd could be
  // made (the caller waits the other way). `rounds`: the caller's wait's
  // state, as its first round finds it (DirectRounds{}).
  bool direct_once(std::unique_lock<std::mutex>& lk, Transfer& t, WaitFor what, int fd,
                   int timeout_ms, Wakeups& wake, DirectRounds& rounds);
  // direct_once's read before its poll (read_first): true when it took bytes in.
  bool direct_read_first(Transfer& t, Wakeups& wake);
  // What a direct round's poll found: poll()'s answer, the socket's revents
  // (POLLIN as well when the body was queued already, or a marked poll ran out
  // of time: `expired`, what came under the mark is read now).
  struct DirectPoll {
    int ready = 0;
    short revents = 0;
    bool expired = false;
  };
  // The poll of a direct round: listed as a direct sleeper, without mu_ (taken
  // again before it returns), on the socket and the sleeper's eventfd; none
  // when the body's bytes are `queued` already. `marked`: the socket has a
  // low-water mark (Connection::BodyWait::kMarked), set back here.
  DirectPoll direct_poll(std::unique_lock<std::mutex>& lk, const std::shared_ptr<Sleeper>& self,
                         Transfer& t, WaitFor what, int fd, bool queued, bool marked, int timeout,
                         Wakeups& wake);
  // After a poll that left `t` unsatisfied: read its socket here when that is
  // all the loop has to do, else run the loop once.
  void direct_take_in(Transfer& t, const DirectPoll& polled, Wakeups& wake);
  // A direct wait for body bytes read straight into the sink sleeps until what
  // the sink takes next has arrived, up to kLowatMax bytes, when that is at
  // least kLowatMin (SO_RCVLOWAT): not on every segment of a sender whose
  // writes the wake-ups interrupt. A streamed chunk's wait does so for at most
  // kLowatChunkMs, then takes what came. 2 MiB, a streamed chunk's most
  // (_body.pxi STREAM_SINK): its read then takes what is queued, and the
  // kernel's receive buffer can grow.
  static constexpr size_t kLowatMin = 64 << 10;
  static constexpr size_t kLowatMax = 2 << 20;
  static constexpr int kLowatChunkMs = 1;
  // A whole body's marked poll under TLS, or an HTTP/2 one, ends after at most
  // this: what the server sends that is not body (a close_notify or an alert, a
  // renegotiation, a PING or SETTINGS it waits to have answered, a stream's
  // early end or reset) comes under the mark and wakes no one. Over plain TCP
  // the end of the stream (FIN, RST) wakes the poll at once.
  static constexpr int kLowatLayeredMs = 10;
  // A direct wait reads its socket before it polls, in its first direct
  // round (the answer is usually in: a poll saved per request), unless three
  // quarters or more of its origin's last kReadFirstRound such reads found
  // nothing: then its next kReadFirstSkip waits poll first, and the round
  // after tries again (a server that answers later, on another CPU or host:
  // kReadFirstRound recv() wasted in kReadFirstRound + kReadFirstSkip waits,
  // 1/8 per request). Not a TLS handshake's wait: the server's flight is a
  // round trip away unless the server runs on this CPU.
  static constexpr uint8_t kReadFirstRound = 8;
  static constexpr uint8_t kReadFirstSkip = 56;
  // Whether this direct wait on `c` reads before it polls; counts the skips down.
  static bool read_first(Connection& c);
  // What that read found: bytes (true) or nothing (false).
  static void read_first_found(Connection& c, bool bytes);
  // The socket `t`'s waiter may poll directly for `what`, or -1.
  int direct_fd(Transfer& t, WaitFor what);
  // Run the loop once without blocking (mu_ held), with the flushes around it.
  void run_once();
  void fail(Transfer& t, ErrorKind kind, const std::string& message);
  void finish_loop();
  // fork(): pthread_atfork handlers (engine.cc) lock every live engine before
  // the fork and unlock it after; in the child, reset_after_fork() gives the
  // engine a fresh loop and an empty pool without touching the parent's.
  friend struct ForkGuard;
  void reset_after_fork();
  bool init_loop();    // a new loop with the engine's own handles; false: none (start_error_)
  void wake_driver();  // with mu_ held (under a ConsumerLock: made once it is let go of)
  // With mu_ held: a driver polls and the loop needs a run before its poll
  // ends (poll_until_ms_): a watcher queued, a handle closing, a flush wanted,
  // or a timer due sooner. Else a wake-up would only cost it a round.
  bool loop_due_before_poll_ends();
  // mu_, held by a consumer operation (submit, release, set_sink, ...): the
  // wake-up of the driver it asks for (wake_driver) is made after mu_ is
  // unlocked.
  class ConsumerLock {
   public:
    explicit ConsumerLock(Engine& e);
    // mu_ taken already with try_lock by a caller that may hold the GIL and so
    // must never wait for mu_: its socket writes are made under mu_, not
    // deferred (a deferred write locks mu_ again after its kernel call).
    ConsumerLock(Engine& e, std::adopt_lock_t);
    ~ConsumerLock();
    ConsumerLock(const ConsumerLock&) = delete;
    ConsumerLock& operator=(const ConsumerLock&) = delete;

   private:
    Engine& e_;
  };
  void release_locked(Transfer& t);
  void drain_deferred();  // with mu_ held: release what release_deferred queued

  // Shared, so that the driver can notify a sleeper after letting go of mu_
  // (a sleeper notified under mu_ wakes only to wait for mu_: two more futex
  // calls and context switches per hand-over) while the sleeper, woken by its
  // deadline meanwhile, may already have left wait().
  //
  // A sleeper waits in one of two ways (SleepMode). kFollower: parked on
  // `parked`, while another thread drives the loop. kDirect: in poll() on its own
  // connection's socket and on `efd` (an eventfd, made on first use), with no
  // driver involved (Engine::wait says when): whoever else satisfies its wait
  // writes to `efd`.
  //
  // A follower parks on its own word (`parked`, a futex on Linux), not on a
  // condition variable of mu_: woken, it leaves wait() without mu_ when its
  // transfer's atomics say it is done (Engine::ready_now). Through a
  // condition variable it had to take mu_ again, and glibc's waking wait
  // takes a mutex as contended, so its next unlock was one more futex call
  // (HTTP/2, 16 threads: a third of the futex calls), besides the wait for
  // mu_ while other woken followers held it. The picker takes a follower off
  // sleepers_ (wake_sleepers), so a woken one need not. A follower picked to
  // drive next (Pick::kDrive) takes mu_ however it finds its transfer, and
  // hands the seat on if it does not drive (nobody else would: the others
  // sat out their slices).
  struct Sleeper {
    const Transfer* transfer = nullptr;
    WaitFor what = WaitFor::kHead;
    SleepMode mode = SleepMode::kFollower;
    bool woken = false;       // picked (under mu_)
    bool drive_next = false;  // picked with Pick::kDrive (under mu_)
    int efd = -1;             // set once, under mu_, before its first direct wait
    // kFollower: 0 while parked, the Pick once notified (written without mu_).
    std::atomic<uint32_t> parked{0};
    // Wakeups listed for it (under mu_) whose notify() has not finished: the
    // thread reuses the record for its next wait only at 0, read with acquire
    // against notify()'s release, so a late notify of an earlier wait can
    // never land on the next one's word.
    std::atomic<uint32_t> pending{0};
#ifndef __linux__
    std::mutex park_mu;  // no futex: the word is waited for on these
    std::condition_variable park_cv;
#endif
    Sleeper() = default;
    Sleeper(const Sleeper&) = delete;
    Sleeper& operator=(const Sleeper&) = delete;
    ~Sleeper();
    // Wake it as it waits (`how`: its mode when it was picked), with or
    // without mu_ held.
    void notify(SleepMode how, Pick pick);
    // kFollower, without mu_: wait until notified or `deadline`; the Pick it
    // was notified with, or 0 at the deadline.
    uint32_t park_until(std::chrono::steady_clock::time_point deadline);
  };
  // With mu_ held: mark `s` picked and list it in `wake` (notified once mu_
  // is let go of). The list grows first: if it cannot, nothing is marked.
  static void list_wakeup(Wakeups& wake, const std::shared_ptr<Sleeper>& s, Pick pick);
  // This thread's sleeper record (reused while no waker holds it).
  static std::shared_ptr<Sleeper> sleeper_record();
  // With mu_ held: picks the sleepers whose wait is over and, when
  // `hand_off` (the driver is leaving), one other sleeper to drive next.
  // They are only marked woken and listed in `later`; the caller notifies
  // them (notify()) after this returns, never before the picked followers
  // are off sleepers_: a notified follower may leave wait() and reuse its
  // record in another engine at once.
  void wake_sleepers(bool hand_off, Wakeups& later);
  static void notify(Wakeups& wake);
  // Moves picked_ into `wake` (mu_ held), for the caller to notify once it
  // has let go of mu_.
  void take_picked(Wakeups& wake);
  void flush_connections();  // what want_flush() asked for
  // The listed deferred writes that still wait, now in flight (writes_in_flight_).
  std::vector<SocketStream*> take_deferred_writes();
  // Their kernel calls, made without mu_ (held on entry and on return), then
  // their accounting (SocketStream::end_deferred); again while more were listed.
  void send_deferred_writes();
  // With mu_ held again after the kernel calls of `batch`. True when reads
  // held back meanwhile were delivered (SocketStream::end_deferred).
  bool end_deferred_writes(std::vector<SocketStream*>&& batch);

  std::mutex mu_;
  std::condition_variable cv_;  // signals the end of a driving round (close())
  std::vector<std::shared_ptr<Sleeper>> sleepers_;
  // Sleepers picked (marked woken) by code with no Wakeups of its own
  // (note_pool_work, release_locked): notified by whoever next lets go of
  // mu_ (ConsumerLock, the waits before they poll or return, run_nowait,
  // close), so that no eventfd write or notify happens under mu_.
  Wakeups picked_;
  bool driving_ = false;
  bool servicing_ = false;
  bool service_again_ = false;
  bool in_poll_ = false;
  bool defer_wakes_ = false;      // a ConsumerLock holds mu_
  bool wake_deferred_ = false;    // and wake_driver() asked it for a wake-up
  bool wake_if_due_ = false;      // and it wakes the driver if loop_due_before_poll_ends()
  uint64_t poll_until_ms_ = 0;    // loop time at which the driver's poll() ends
  bool external_driver_ = false;  // an event loop watches backend_fd()
  bool defer_writes_ = false;     // defer_write() may defer (see there)
  std::vector<SocketStream*> deferred_writes_;
  int writes_in_flight_ = 0;  // deferred writes out of mu_: close() waits for them
  std::vector<std::vector<SocketStream*>> spare_batches_;  // emptied batches, reused
  uint64_t driver_wakes_ = 0;
  uint64_t direct_waits_ = 0;
  uint64_t direct_reads_ = 0;
  uint64_t marked_waits_ = 0;
  int pool_work_ = 0;  // note_pool_work()
  bool closed_ = false;
  // Why the engine has no loop (a libuv status, UV_EMFILE when the process is out of
  // descriptors); 0 while it has one, and after a close.
  int start_error_ = 0;
  // kClosing: a close() is under way (in another thread, maybe: a second one waits
  // for it); kClosed: close() ran, or the loop never came up: no libuv calls any more.
  enum class LoopState { kRunning, kClosing, kClosed };
  LoopState loop_state_ = LoopState::kRunning;
  bool loop_closed() const { return loop_state_ == LoopState::kClosed; }
  // Heap-allocated: a loop whose getaddrinfo requests are still running when
  // the engine closes outlives the engine (see close()).
  uv_loop_t* loop_;
  uv_async_t wakeup_;
  uv_timer_t pool_timer_;
  PoolLimits limits_;
  int n_conns_ = 0;
  int n_idle_ = 0;  // connections listed in idle_ (with room; HTTP/2 ones may be busy)
  std::unordered_map<std::string, std::vector<Connection*>> idle_;
  std::vector<Connection*> all_;
  std::deque<std::shared_ptr<Transfer>> waiters_;
  std::vector<std::shared_ptr<Transfer>> delayed_;  // connect retries waiting out a backoff
  std::vector<std::shared_ptr<Transfer>> signaled_;
  std::vector<Connection*> flush_wanted_;  // want_flush(), each once
  std::unique_ptr<char[]> rbuf_;           // read_buffer(): allocated on first use
  std::unordered_map<std::string, std::shared_ptr<ReadFirst>> read_first_by_key_;
  size_t read_first_sweep_at_ = kReadFirstKeys;  // the list's size that sweeps it
  // release_deferred's queue: deferred_mu_ is a leaf lock (taken after mu_,
  // never held while waiting for anything else). deferred_open_ is false once
  // close() closed the wakeup handle.
  std::mutex deferred_mu_;
  bool deferred_open_ = true;
  std::vector<std::shared_ptr<Transfer>> deferred_;
  std::atomic<bool> deferred_pending_{false};  // deferred_ may hold some (drain_deferred)
  // Rounds of send_deferred_writes() one consumer makes: its own writes,
  // then once the HTTP/2 frames held behind them; the rest is the driver's.
  static constexpr int kFlushRounds = 2;
};

}  // namespace httprs
