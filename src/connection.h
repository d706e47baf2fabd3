// One client connection: a SocketStream at the bottom, the StreamChain of
// layers it was built with (proxy TLS, SOCKS5 or CONNECT, origin TLS), and
// one ProtocolSession on top, chosen once the last layer is up: an
// Http1Session carrying one exchange (Transfer) at a time, or (when ALPN
// picked "h2", or with prior knowledge) an Http2Exchanges carrying many, one
// stream each (connection_h2.cc). The connection runs the establishing
// stages (with the trace gates between them), the timer, and the exchange's
// life in the pool: reuse, draining an abandoned response, resending a
// request a stale connection lost. Owned by the engine; freed only after
// libuv has closed both of its handles.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "engine.h"
#include "http1_session.h"
#include "http2_exchanges.h"
#include "socket_stream.h"
#include "stream_chain.h"
#include "tls_stream.h"

namespace httprs {

class Connection final : private SocketStream::Owner,
                         private StreamChain::Host,
                         private SessionListener {
 public:
  // kConnecting: DNS and the socket's connect; kHandshaking: a layer's
  // handshake (or the trace gate after one). kHeld: the response is complete
  // but its consumer has not released it yet; the connection stays checked
  // out of the pool until then, as in httpx. kSwitched: a requested 101
  // Switching Protocols arrived; the connection belongs to that response for
  // good (never pooled) and closes when it is released. It is then the
  // transfer's raw byte stream (`network_stream`): bytes out of the chain
  // (the first ones came with the 101 head) go to Transfer::raw_in,
  // switched_write() sends down the chain (through TLS if any).
  enum class State { kConnecting, kHandshaking, kActive, kHeld, kSwitched, kIdle, kClosing };

  // Start connecting for `t` (which becomes the current transfer).
  Connection(Engine* engine, std::shared_ptr<Transfer> t);
  ~Connection() override;

  // Run `t` on this established, idle connection.
  void assign(std::shared_ptr<Transfer> t);
  // Close: the current transfer (if any) fails with `err` unless err is empty.
  void close(const Error& err);
  // In a fork() child: forget this connection, which the parent still uses.
  // Closes only the child's copy of the socket (no libuv call: the handles are
  // registered in the epoll set the child shares with the parent; no TLS
  // close_notify) and fails the current transfer with `err`. The object is
  // then leaked with the parent's loop, never touched again.
  void drop_after_fork(const Error& err);
  // Called by the engine when the consumer is done with the current transfer:
  // a complete response gives the connection back to the pool, anything else
  // closes it.
  void abandon();
  // The consumer is done with `t` (HTTP/2: that stream only).
  void abandon(Transfer& t);
  // Streamed upload chunk for transfer `t`.
  void send_body_chunk(Transfer& t, const char* data, size_t len, bool last);
  // The consumer took buffered body bytes of `t`: read again if we had paused.
  void resume_reading(Transfer& t);
  // Traced transfer `t` (the current one) may pass the gate it stopped at.
  void pass_trace_gate(Transfer& t);
  // The kConnect gate of a ConsumerGate::kConnects transfer: go on over the
  // consumer's connected socket `fd`, or fail the connect with `err` (fd < 0).
  void pass_connect_gate(Transfer& t, int fd, const Error& err);
  // The kConnect gate of a ConsumerGate::kResolves transfer: connect to `addresses`, or
  // fail the connect with `err` (or for want of any address).
  void pass_resolve_gate(Transfer& t, std::vector<std::string> addresses, const Error& err);
  // kSwitched: read on (the consumer took the buffered bytes); write raw bytes;
  // the socket's descriptor (-1 if none).
  void switched_resume();
  void switched_write(const char* data, size_t len);
  int switched_fd();
  // The engine's turn for the output want_flush() deferred: write it.
  void flush_wanted();
  // The socket a sync waiter on `t` may poll itself instead of the loop's
  // backend (Engine::wait): only while the whole HTTP/1.1 request of `t` is
  // out and libuv reads that socket for its response, or while the origin's
  // TLS handshake for `t` waits for the server, so that its readability is
  // the only event `t` waits for (timers aside). Else -1.
  int direct_wait_fd(const Transfer& t);
  // That waiter found the socket readable: read it now, as the loop would
  // (SocketStream::read_ready); kLoop when `t` no longer waits that way.
  SocketStream::ReadNow read_for_direct_wait(const Transfer& t);
  // That waiter's next read lands straight in the body's sink (a body of known
  // length, no layer transforming it) and takes at least `least` bytes:
  // kQueued when what it takes (up to `most`) is in the kernel already (read
  // it, no poll), kMarked when the socket now wakes a poll only once it is (a
  // receive low-water mark: SocketStream::set_read_lowat, which the waiter
  // sets back to 1 after its poll). Else kNone (Engine::direct_once).
  enum class BodyWait { kNone, kQueued, kMarked };
  BodyWait prepare_body_wait(const Transfer& t, size_t least, size_t most);
  // The same for an event loop's wait for a streamed chunk or a whole body
  // (Engine::mark_chunk_wait): the mark stays until clear_chunk_mark(), which
  // the exchange's end (finish, drain, detach) also calls, so the loop's next
  // read on this socket (a pooled connection's next head, a drain) is not held
  // back by it. A whole body's wait is marked even when that much is queued
  // (the socket reads readable at once; the mark holds for what follows), and
  // spans many reads: after each, the mark comes down to what the sink still
  // takes when that is less (follow_body_mark), so the body's last bytes wake
  // the loop.
  BodyWait mark_chunk_wait(const Transfer& t, size_t least, size_t most);
  void clear_chunk_mark();
  // The driver's poll for an HTTP/2 body (Engine::drive_once): the socket
  // reads readable once what the body's stream is sure to bring next is in
  // (Http2Exchanges::body_mark, less what the TLS layer may hold), when that
  // is at least `least`; true when marked. end_h2_wait() takes the mark off
  // and reads what came under it, before the loop runs a stream's read
  // deadline over those bytes. A stream started or ended meanwhile takes it
  // off too (h2_assign, h2_settle).
  bool mark_h2_wait(const Transfer& t, size_t least, size_t most);
  bool end_h2_wait();  // true: it read bytes that came under the mark
  void follow_body_mark();
  // Bytes pass through a layer that changes them (TLS) on their way to the
  // protocol: what ends the stream there comes as data.
  bool layered() const { return !chain_.passthrough(); }
  // The socket's descriptor while it is open (-1 after). With `lend` the
  // caller may keep a duplicate: closing then shuts the socket down first
  // (see Engine::info_fd).
  int live_fd(bool lend);
  // Never reuse this connection (Engine::info_spend).
  void spend();
  // The TLS session on top: the origin's, else an https:// proxy's (null when
  // there is none). A trace reads it at the step after each handshake, while
  // the connection waits at the next gate.
  const TlsSession* tls_session() const {
    if (origin_tls_) return &origin_tls_->session();
    return proxy_tls_ ? &proxy_tls_->session() : nullptr;
  }

  // True when an idle connection has seen no EOF, no stray bytes and no expiry.
  bool usable_for_reuse(uint64_t now_ms);
  // The pool hands out exchanges: a connection carries up to max_exchanges()
  // at once (HTTP/1.1: one; an HTTP/2 session as many as the server allows)
  // and has room for another while its session can take one. Until it is
  // established (no session yet) it carries no exchange the pool counts.
  int max_exchanges() const { return session_ ? session_->max_exchanges() : 1; }
  int open_exchanges() const { return session_ ? session_->open_exchanges() : 0; }
  bool has_room() const {
    return session_ && state_ != State::kClosing && health_ == Health::kSound &&
           session_->can_take_exchange();
  }
  // Still establishing a connection that may carry HTTP/2: a request to the
  // same origin waits for it rather than opening another.
  bool may_become_http2() const {
    return may_http2_ && (state_ == State::kConnecting || state_ == State::kHandshaking);
  }
  // Reading the rest of a response its transfer abandoned, for the pool only
  // (nobody waits for those bytes): closing it loses nothing.
  bool draining_for_pool() const;
  // Still connecting (TCP, proxy, TLS) for a transfer that was cancelled
  // meanwhile, for the pool only.
  bool connecting_for_pool() const {
    return purpose_ == Purpose::kPool &&
           (state_ == State::kConnecting || state_ == State::kHandshaking);
  }
  bool is_http2() const {
    return session_ && session_->protocol() == ProtocolSession::Protocol::kHttp2;
  }

  const std::string& key() const { return key_; }
  State state() const { return state_; }
  uint64_t idle_since_ms = 0;
  // Its origin's read-first record (Engine::read_first_record), under the
  // engine mutex.
  std::shared_ptr<Engine::ReadFirst> read_first;

 private:
  enum class TimerMode { kNone, kConnect, kRead, kWrite, kDrain, kStreams };
  // What runs next: the stages of establishing a connection and of an
  // exchange, each possibly behind a trace gate.
  enum class Stage { kNone, kConnect, kProxyTls, kSocks, kTunnel, kTls, kSend, kAwaitResponse };
  // Who the connection works for: its transfer (or nobody: idle), or the
  // pool once that transfer left, while it finishes establishing or drains
  // the abandoned response (Engine::note_pool_work counts these).
  enum class Purpose { kTransfer, kPool };
  // kSpent: never reusable (EOF, stray bytes, errors, a timeout, switched).
  enum class Health { kSound, kSpent };

  // close()'s steps: every HTTP/2 stream ended (those to retry returned), the
  // transfer kept for a connect retry (httpcore's retries=), or failed.
  std::vector<Http2Exchanges::Ended> end_streams(const Error& err);
  void arm_connect_retry(const Error& err, State was, Purpose purpose);
  void fail_on_close(const Error& err, State was);

  // Traced transfers: record `step`; at a gate, stop until pass_trace_gate.
  bool reports(TraceStep step) const;
  void trace_step(TraceStep step);
  void trace_gate(TraceStep step, Stage next);
  void run(Stage stage);
  void start_connecting();
  void connect_to(SocketTarget target);
  void after_proxy_tls();
  void after_tunnel();
  void start_layer(Stage stage);
  std::unique_ptr<StreamLayer> make_layer(Stage stage, Error& err);
  void continue_layer();
  void on_established();
  void capture_info();  // info_, for the transfers it will carry
  void start_transfer();
  void await_response();
  void send(Outgoing&& out);
  void flush_session();
  void on_plaintext(const char* data, size_t len);
  void on_response(ProtocolSession::Result r, const char* data, size_t len, size_t used,
                   const Error& err);
  void on_switched(const char* rest, size_t len);
  void on_switched_data(const char* data, size_t len);
  // kSwitched: the stream ended (EOF) or failed; a no-op once it has.
  void end_switched(Transfer::RawState how, const Error& err);
  // kSwitched: a read or write of the stream failed with `status`.
  void fail_switched(ErrorKind kind, int status);
  void on_eof();
  void on_read_error(int status);
  void on_write_error(int status);
  void on_write_done();
  Error connecting_error(ErrorKind io, const std::string& message) const;
  void pause_if_asked();
  // The transfer failed before any response byte: may it go out again on a
  // fresh connection? resend() does that.
  bool may_resend() const;
  void resend(const Error& why);
  void finish_transfer();
  void release_held();
  void fail_transfer(const Error& err);
  // The current transfer leaves the connection (its `conn` is cleared).
  std::shared_ptr<Transfer> detach_transfer();
  void arm_timer(TimerMode mode);
  // A read deadline passed: take in what waits in the socket (true if
  // anything did: bytes, an EOF, an error), else fail with ReadTimeout.
  bool take_waiting_bytes();
  // The most reads a look at the socket outside the loop's read callback makes
  // (take_waiting_bytes, the reuse checks): a peer that never stops writing must
  // not hold the engine, and every request it serves, in one of them.
  static constexpr int kWaitingReads = 32;
  void on_read_deadline();
  // The write timer ran out: did the send queue drain since it was armed?
  // (Then it waits again, else WriteTimeout.)
  bool write_progressed();
  bool next_write_slice();
  bool consumer_busy() const;  // HTTP/1.1: Transfer::consumer_busy, not draining
  bool reusable() const;
  void handle_closed();

  // SocketStream::Owner
  char* socket_read_buffer(size_t* len) override;
  // HTTP/1.1 with its response complete (held or idle): nothing is due.
  bool socket_read_done() const override {
    return (state_ == State::kHeld || state_ == State::kIdle) && is_http1();
  }
  void on_socket_connected() override;
  void on_socket_connect_failed(const Error& err) override { close(err); }
  void on_socket_data(const char* data, size_t len) override { chain_.receive(data, len); }
  void on_socket_eof() override { on_eof(); }
  void on_socket_read_error(int status) override { on_read_error(status); }
  void on_socket_sent() override;
  void on_socket_write_done() override;
  void on_socket_write_queued() override;
  void on_socket_write_error(int status) override;
  void on_socket_closed() override { handle_closed(); }
  bool defer_socket_write(SocketStream* s) override { return engine_->defer_write(s); }
  void on_socket_deferred_ended() override;

  // StreamChain::Host
  void chain_write(std::string&& bytes, Borrowed ext, Borrowed tail) override;
  void chain_data(const char* data, size_t len) override { on_plaintext(data, len); }
  char* chain_read_buffer(size_t* len) override;
  void chain_connect_input() override { continue_layer(); }
  void chain_eof() override { on_eof(); }
  void chain_read_error(const Error& err) override;
  void chain_send_error(const Error& err) override { fail_transfer(err); }
  bool chain_stopped() const override { return state_ == State::kClosing; }

  // SessionListener
  void on_transfer_progress(Transfer& t) override { engine_->signal(t); }

  // The mark a wait for `t`'s body would set: what its sink takes next, up to
  // `most`; 0 when that read does not go straight into the sink (not plain
  // HTTP/1.1, no sink, nothing due) or would take less than `least`.
  size_t body_mark(const Transfer& t, size_t least, size_t most) const;
  // What the socket must bring for `want` more bytes above the layers, given
  // what they hold, capped at `most`; 0 when that is less than `least`.
  size_t wire_mark(size_t want, size_t least, size_t most) const;

  // The session as the protocol it speaks, for what only that protocol
  // does (HTTP/1.1's exchange lifecycle, HTTP/2's streams): h1() only while
  // the session is an Http1Session, h2() only while is_http2().
  bool is_http1() const {
    return session_ && session_->protocol() == ProtocolSession::Protocol::kHttp1;
  }
  Http1Session& h1() { return static_cast<Http1Session&>(*session_); }
  const Http1Session& h1() const { return static_cast<const Http1Session&>(*session_); }
  Http2Exchanges& h2() { return static_cast<Http2Exchanges&>(*session_); }
  // HTTP/1.1 after the last handshake: its session, then the first exchange.
  void start_http1();
  // purpose_ = p, counted by the engine (note_pool_work).
  void set_purpose(Purpose p);

  // HTTP/2 (connection_h2.cc).
  // After the last handshake: should this connection speak HTTP/2?
  bool negotiated_http2() const;
  void start_http2();
  void h2_assign(std::shared_ptr<Transfer> t);
  void h2_flush();
  // h2_flush() once the consumers' calls of this turn are in: one write for
  // every stream they started, not one each.
  void h2_flush_later();
  // Hand the ended streams to the engine, offer the connection to the pool
  // when it has room, close it when it can carry nothing more.
  void h2_settle();
  void h2_receive(const char* data, size_t len);
  // A socket write failed: write nothing more, read on (see
  // Http2Exchanges::write_failed); closed once no stream is left.
  void h2_write_failed(int status);
  void h2_abandon(Transfer& t);
  void h2_send_body(Transfer& t, const char* data, size_t len, bool last);
  void h2_arm_timer();
  void h2_on_timer();
  bool h2_usable_for_reuse(uint64_t now_ms);
  // Idle for longer than the pool's keepalive_expiry (never when it is none).
  bool keepalive_expired(uint64_t now_ms) const;

  static void on_timer(uv_timer_t* h);
  static void on_timer_close(uv_handle_t* h);

  friend class Engine;

  Engine* engine_;
  std::string key_;
  State state_ = State::kConnecting;
  // Whether the socket carries a chunk wait's receive low-water mark (mark_chunk_wait).
  enum class ChunkMark { kNone, kMarked };
  ChunkMark chunk_mark_ = ChunkMark::kNone;
  size_t chunk_mark_bytes_ = 0;  // the mark while kMarked
  Purpose purpose_ = Purpose::kTransfer;
  Health health_ = Health::kSound;
  SocketStream socket_;
  StreamChain chain_;
  // The protocol on top, chosen once the last layer is up (ALPN, or prior
  // knowledge): an Http1Session or an Http2Exchanges. Null until then.
  std::unique_ptr<ProtocolSession> session_;
  bool flush_wanted_ = false;   // listed by Engine::want_flush
  bool h2_flush_held_ = false;  // h2_flush() waits for the deferred write (see there)
  // A read deadline found input held behind a write in flight: decided again
  // once it is accounted for (take_waiting_bytes, on_socket_deferred_ended).
  bool deadline_after_flight_ = false;
  bool may_http2_ = false;           // HTTP/2 possible (its spec allows it)
  TlsStream* origin_tls_ = nullptr;  // in chain_, once TLS to the origin started
  TlsStream* proxy_tls_ = nullptr;   // in chain_, once TLS to an https:// proxy started
  // Once established: what it is (addresses, TLS), shared with its transfers.
  std::shared_ptr<ConnectionInfo> info_;
  // A traced transfer's view of it from the connect on (its trace_addresses).
  std::shared_ptr<ConnectionInfo> trace_info_;
  bool fd_lent_ = false;              // live_fd(true) handed out the descriptor
  Stage handshaking_ = Stage::kNone;  // the layer whose handshake runs (kHandshaking)
  Stage gated_ = Stage::kNone;        // what runs once the current trace gate is passed
  uv_timer_t timer_;
  TimerMode timer_mode_ = TimerMode::kNone;
  size_t unsent_at_deadline_ = 0;  // unsent bytes when the write timer was armed
  static constexpr uint64_t kWriteSlices = 8;
  uint64_t write_slice_ms_ = 0;  // kWrite: the deadline's slices (next_write_slice)
  int write_slices_left_ = 0;
  uint64_t timer_due_ = 0;  // kStreams: the engine time it fires at
  int handles_open_ = 2;    // the socket and the timer
  std::shared_ptr<Transfer> cur_;
  int reuses_ = 0;                               // exchanges assigned after the first
  std::shared_ptr<Transfer> retry_after_close_;  // a connect retry to queue once closed
  uint64_t retry_delay_ms_ = 0;
};

}  // namespace httprs
