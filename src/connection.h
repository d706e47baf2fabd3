// One client connection: a TCP (or Unix socket) stream, an optional TLS session and the HTTP/1.1
// parser, carrying one transfer at a time. Owned by the engine; freed only
// after libuv has closed both of its handles.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "engine.h"
#include "http1.h"
#include "tls.h"

namespace httprs {

class Connection final : public ResponseParser::Sink {
 public:
  // kHeld: the response is complete but its consumer has not released it yet;
  // the connection stays checked out of the pool until then, as in httpx.
  // kSwitched: a requested 101 Switching Protocols arrived; the connection
  // belongs to that response for good (never pooled) and closes when it is
  // released. It is then the transfer's raw byte stream (`network_stream`):
  // bytes read (the first ones came with the 101 head) go to Transfer::raw_in,
  // switched_write() sends through the TLS session if any.
  enum class State {
    kResolving,
    kConnecting,
    kProxyHandshake,
    kSocks,
    kTunnel,
    kHandshake,
    kActive,
    kHeld,
    kSwitched,
    kIdle,
    kClosing
  };

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
  // Streamed upload chunk for the current transfer.
  void send_body_chunk(const char* data, size_t len, bool last);
  // The consumer took buffered body bytes: read again if we had paused.
  void resume_reading();
  // Traced transfer `t` (the current one) may pass the gate it stopped at.
  void pass_trace_gate(Transfer& t);
  // kSwitched: read on (the consumer took the buffered bytes); write raw bytes;
  // the socket's descriptor (-1 if none).
  void switched_resume();
  void switched_write(const char* data, size_t len);
  int switched_fd();

  // True when an idle connection has seen no EOF, no stray bytes and no expiry.
  bool usable_for_reuse(uint64_t now_ms);

  const std::string& key() const { return key_; }
  State state() const { return state_; }
  uint64_t idle_since_ms = 0;

  // ResponseParser::Sink
  void on_head(ResponseHead&& head) override;
  void on_body(const char* data, size_t len) override;

 private:
  enum class TimerMode { kNone, kConnect, kRead, kWrite, kDrain };

  using Step = void (Connection::*)();
  // Traced transfers: record `step`; at a gate, stop until pass_trace_gate.
  void trace_step(TraceStep step);
  void trace_gate(TraceStep step, Step next);
  void start_connecting();
  void await_response();
  void resolve();
  void connect_next();
  bool open_socket_with_options(int family, Error& err);
  bool apply_socket_options(int fd, Error& err);
  bool bind_local_address(int fd, int family, Error& err);
  void keep_local_family();
  void on_tcp_connected();
  void after_proxy_tls();
  void start_socks();
  void on_socks_data(const char* data, size_t len);
  void after_tunnel();
  void start_proxy_tls();
  void continue_proxy_handshake();
  void send_wire(std::string&& data, const char* ext, size_t ext_len);
  void on_tunnel_data(const char* data, size_t len);
  void start_tunnel();
  void start_tls();
  void continue_handshake();
  void on_established();
  void expect_response();
  void start_transfer();
  void write_raw(std::string&& owned, const char* ext, size_t ext_len);
  void write_out(std::string&& data, const char* ext, size_t ext_len);
  void flush_tls();
  void flush_proxy_tls();
  // Read everything `tls` can decrypt into `buf`, hand it to `deliver`, send
  // protocol output with `flush`, and act on the session's end state.
  void drain_tls(TlsSession& tls, char* buf, size_t cap,
                 void (Connection::*deliver)(const char*, size_t), void (Connection::*flush)());
  void on_data(const char* data, size_t len);
  void on_plaintext(const char* data, size_t len);
  void on_eof();
  void on_switched(const char* rest, size_t len);
  void on_switched_data(const char* data, size_t len);
  // kSwitched: the stream ended (EOF) or failed; a no-op once it has.
  void end_switched(Transfer::RawState how, const Error& err);
  void on_read_error(int status);
  void on_write_done();
  void on_write_error(int status);
  // The transfer failed before any response byte: may it go out again on a
  // fresh connection? resend() does that.
  bool may_resend() const;
  void resend();
  void finish_transfer();
  void release_held();
  void fail_transfer(const Error& err);
  void arm_timer(TimerMode mode);
  void update_timer();
  void start_reading();
  void stop_reading();
  bool reusable() const;

  static void on_resolved(uv_getaddrinfo_t* req, int status, struct addrinfo* res);
  static void on_connect(uv_connect_t* req, int status);
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_timer(uv_timer_t* h);
  static void on_close(uv_handle_t* h);

  friend class Engine;

  Engine* engine_;
  std::string key_;
  State state_ = State::kResolving;
  // The transport stream: TCP, or a Unix domain socket when the spec has a
  // uds_path. Both are uv_stream_t underneath.
  union Stream {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } sock_;
  bool uds_ = false;
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&sock_); }
  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(&sock_); }
  void init_stream();
  uv_timer_t timer_;
  bool tcp_open_ = false;
  int handles_open_ = 0;
  TimerMode timer_mode_ = TimerMode::kNone;
  std::shared_ptr<Transfer> cur_;
  std::unique_ptr<TlsSession> tls_;
  std::unique_ptr<TlsSession> proxy_tls_;  // TLS to an https:// proxy, under tls_
  ResponseParser parser_;
  std::vector<struct sockaddr_storage> addrs_;
  size_t addr_index_ = 0;
  Error last_connect_error_;
  struct Resolve;
  Resolve* resolving_ = nullptr;  // pending getaddrinfo; it outlives us if we close first
  uv_connect_t connect_req_;
  bool connect_pending_ = false;
  int writes_pending_ = 0;
  bool reading_ = false;
  bool paused_ = false;
  bool broken_ = false;  // not reusable: EOF, stray bytes, errors, Connection: close
  bool reused_ = false;
  bool response_started_ = false;
  bool abandoned_ = false;  // the transfer left while we were connecting
  bool draining_ = false;   // the transfer left mid-response: discard the rest
  bool reconnect_ = false;
  std::shared_ptr<Transfer> retry_after_close_;  // a connect retry to queue once closed
  uint64_t retry_delay_ms_ = 0;                  // tcp_ is closing to retry the next address
  int tunnel_status_ = 0;                        // status of the proxy's CONNECT response
  std::string tunnel_reason_;
  enum class SocksStep { kMethod, kAuth, kReply } socks_step_ = SocksStep::kMethod;
  std::string socks_buf_;          // SOCKS5 reply bytes received so far
  bool body_in_flight_ = false;    // streamed upload in progress
  uint64_t body_remaining_ = 0;    // streamed upload with Content-Length: bytes still due
  bool request_sent_any_ = false;  // some byte of the current request reached the socket
  std::string tls_plain_;          // scratch for decrypted bytes
  Step gated_ = nullptr;           // what runs once the current trace gate is passed
};

}  // namespace httprs
