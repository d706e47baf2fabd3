// Connection's home (see connection.h): construction; the establishing stages
// and their trace gates (a traced transfer's consumer sees each step before
// the connection goes on); and connecting: the socket's connect, the layers on
// it one handshake after another (an https proxy's TLS, SOCKS5, a CONNECT
// tunnel, the origin's TLS), the established connection's facts and its
// HTTP/1.1 session. Its exchanges are connection_exchange.cc, reading
// connection_read.cc, the exchange's end and the timers connection_end.cc,
// closing connection_close.cc, the HTTP/2 side connection_h2.cc.
#include "connection.h"

#include <unistd.h>

#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "connect_tunnel.h"
#include "socks5.h"

namespace httprs {

Connection::Connection(Engine* engine, std::shared_ptr<Transfer> t)
    : engine_(engine),
      key_(t->spec.pool_key),
      socket_(engine->loop(), this, t->spec.uds),
      chain_(this),
      cur_(std::move(t)) {
  uv_timer_init(engine_->loop(), &timer_);
  timer_.data = this;
  cur_->conn = this;
  cur_->phase = Transfer::Phase::kConnecting;
  may_http2_ = cur_->spec.may_use_http2();
  read_first = engine_->read_first_record(key_);
  trace_gate(TraceStep::kConnect, Stage::kConnect);
}

Connection::~Connection() = default;

// ---------------------------------------------------------------- stages and tracing

bool Connection::reports(TraceStep step) const {
  // A transfer with a consumer gate that is not traced stops at kConnect only.
  return cur_ && (cur_->spec.trace ||
                  (step == TraceStep::kConnect && cur_->spec.consumer_gate != ConsumerGate::kNone));
}

void Connection::trace_step(TraceStep step) {
  if (!reports(step)) return;
  cur_->trace_steps.push_back(static_cast<int>(step));
  engine_->signal(*cur_);
}

void Connection::trace_gate(TraceStep step, Stage next) {
  // A connection its transfer left (abandon: finishing for the pool) has no
  // consumer to pass a gate: it goes straight on.
  if (!reports(step) || purpose_ == Purpose::kPool) {
    run(next);
    return;
  }
  // The consumer's trace callback runs before the phase: its time is not
  // the phase's, so no timer runs while we wait for it.
  arm_timer(TimerMode::kNone);
  gated_ = next;
  trace_step(step);
}

void Connection::pass_trace_gate(Transfer& t) {
  if (gated_ == Stage::kNone || cur_.get() != &t || state_ == State::kClosing) return;
  Stage next = gated_;
  gated_ = Stage::kNone;
  // A layer's handshake arms its own timer (continue_layer); the gate stopped it.
  run(next);
}

void Connection::pass_connect_gate(Transfer& t, int fd, const Error& err) {
  if (gated_ != Stage::kConnect || cur_.get() != &t || state_ != State::kConnecting) {
    if (fd >= 0) ::close(fd);
    return;
  }
  gated_ = Stage::kNone;
  Error failed = err;
  if (fd >= 0 && socket_.adopt(fd, failed)) {
    on_socket_connected();
    return;
  }
  if (!failed) failed.set(ErrorKind::kConnectError, "no connected socket");
  close(failed);  // (a ConnectError: retried as the core's own connects are)
}

void Connection::pass_resolve_gate(Transfer& t, std::vector<std::string> addresses,
                                   const Error& err) {
  if (gated_ != Stage::kConnect || cur_.get() != &t || state_ != State::kConnecting) return;
  gated_ = Stage::kNone;
  if (err || addresses.empty()) {
    Error failed = err;
    if (!failed) failed.set(ErrorKind::kConnectError, "getaddrinfo returns an empty list");
    close(failed);  // (a ConnectError: retried as the core's own connects are)
    return;
  }
  // The spec keeps the name: a retried connect asks the consumer again.
  SocketTarget target = SocketTarget::from(t.spec);
  target.host = std::move(addresses.front());
  target.more_addresses.assign(std::make_move_iterator(addresses.begin() + 1),
                               std::make_move_iterator(addresses.end()));
  connect_to(std::move(target));
}

void Connection::run(Stage stage) {
  switch (stage) {
    case Stage::kConnect:
      start_connecting();
      break;
    case Stage::kProxyTls:
    case Stage::kSocks:
    case Stage::kTunnel:
    case Stage::kTls:
      start_layer(stage);
      break;
    case Stage::kSend:
      start_transfer();
      break;
    case Stage::kAwaitResponse:
      await_response();
      break;
    case Stage::kNone:
      break;
  }
}

// ---------------------------------------------------------------- connecting

void Connection::start_connecting() { connect_to(SocketTarget::from(cur_->spec)); }

void Connection::connect_to(SocketTarget target) {
  arm_timer(TimerMode::kConnect);
  socket_.connect(std::move(target));
}

void Connection::on_socket_connected() {
  if (!cur_) {
    close(Error());
    return;
  }
  if (reports(TraceStep::kConnected)) {
    // The trace's connect_tcp stream answers server_addr / client_addr (and
    // "socket") now, as httpcore's does; info_ waits for the established session.
    if (trace_info_) trace_info_->live = nullptr;  // (one connect per connection)
    trace_info_ = std::make_shared<ConnectionInfo>();
    trace_info_->live = this;
    trace_info_->capture_addresses(socket_.fd());
    cur_->trace_addresses = trace_info_;
  }
  trace_step(TraceStep::kConnected);
  if (cur_->spec.proxy_tls) {
    trace_gate(TraceStep::kProxyTls, Stage::kProxyTls);
    return;
  }
  after_proxy_tls();
}

void Connection::after_proxy_tls() {
  if (!cur_->spec.socks_host.empty()) {
    trace_gate(TraceStep::kSocks, Stage::kSocks);
  } else if (!cur_->spec.tunnel_authority.empty()) {
    trace_gate(TraceStep::kTunnel, Stage::kTunnel);
  } else {
    after_tunnel();
  }
}

void Connection::after_tunnel() {
  if (cur_->spec.tls) {
    trace_gate(TraceStep::kTls, Stage::kTls);
  } else {
    on_established();
  }
}

std::unique_ptr<StreamLayer> Connection::make_layer(Stage stage, Error& err) {
  const RequestSpec& spec = cur_->spec;
  switch (stage) {
    case Stage::kProxyTls: {
      auto tls = TlsStream::open(
          spec.proxy_tls, spec.proxy_tls_host,
          "proxy|" + spec.proxy_tls_host + ":" + std::to_string(spec.connect_port), err);
      proxy_tls_ = tls.get();
      return tls;
    }
    case Stage::kSocks:
      return std::make_unique<Socks5Stream>(spec.socks_host, spec.socks_port, spec.socks_username,
                                            spec.socks_password);
    case Stage::kTunnel:
      return std::make_unique<ConnectTunnel>(spec.tunnel_authority, spec.tunnel_headers);
    case Stage::kTls: {
      // Resumable per peer: the pool key names origin, port, SNI name and any proxy.
      auto tls = TlsStream::open(spec.tls, spec.tls_host, spec.pool_key, err);
      origin_tls_ = tls.get();
      // ALPN: h2 and http/1.1, or only h2 when HTTP/1.1 is not allowed.
      if (!err && spec.may_use_http2())
        tls->session().offer_http2(spec.versions != HttpVersions::kHttp2);
      return tls;
    }
    default:
      return nullptr;
  }
}

void Connection::start_layer(Stage stage) {
  Error err;
  std::unique_ptr<StreamLayer> layer = make_layer(stage, err);
  if (err || !layer || !chain_.push(std::move(layer))) {
    if (stage == Stage::kTls) origin_tls_ = nullptr;
    if (stage == Stage::kProxyTls) proxy_tls_ = nullptr;
    if (!err) err.set(ErrorKind::kConnectError, "too many connection layers");
    close(err);
    return;
  }
  state_ = State::kHandshaking;
  handshaking_ = stage;
  continue_layer();
}

void Connection::continue_layer() {
  Error err;
  StreamLayer::Status st = chain_.connect_top(err);
  if (state_ == State::kClosing) return;
  if (st == StreamLayer::Status::kWantRead) {
    // TLS handshakes share the connect timeout with the TCP connect (a
    // fresh one after a proxy's answer); a proxy's answer is waited for
    // under the read timeout, again after each read that leaves it short.
    StreamLayer* top = chain_.top();
    bool per_read = top && top->handshake_deadline() == StreamLayer::Deadline::kRead;
    arm_timer(per_read ? TimerMode::kRead : TimerMode::kConnect);
    return;
  }
  if (st != StreamLayer::Status::kOk) {
    close(err);
    return;
  }
  switch (handshaking_) {
    case Stage::kProxyTls:
      trace_step(TraceStep::kProxyTlsDone);
      after_proxy_tls();
      break;
    case Stage::kSocks:
      trace_step(TraceStep::kSocksDone);
      after_tunnel();
      break;
    case Stage::kTunnel:
      trace_step(TraceStep::kTunnelDone);
      after_tunnel();
      break;
    case Stage::kTls:
      trace_step(TraceStep::kTlsDone);
      on_established();
      break;
    default:
      break;
  }
  // The handshake's last flight went out with what followed it (the
  // request, the next layer's handshake), or goes now (StreamChain).
  if (state_ != State::kClosing) chain_.flush_held();
}

void Connection::on_established() {
  state_ = State::kActive;
  arm_timer(TimerMode::kNone);
  capture_info();
  if (negotiated_http2()) {
    start_http2();
    return;
  }
  start_http1();
}

void Connection::capture_info() {
  info_ = std::make_shared<ConnectionInfo>();
  info_->live = this;
  info_->capture_addresses(socket_.fd());
  static const std::string kNoHost;
  if (origin_tls_)
    info_->capture_tls(origin_tls_->session(), TlsFacts::Kind::kOrigin,
                       cur_ ? cur_->spec.tls_host : kNoHost);
  else if (proxy_tls_)
    info_->capture_tls(proxy_tls_->session(), TlsFacts::Kind::kProxy,
                       cur_ ? cur_->spec.proxy_tls_host : kNoHost);
}

int Connection::live_fd(bool lend) {
  if (state_ == State::kClosing) return -1;
  int fd = socket_.fd();
  if (fd >= 0 && lend) fd_lent_ = true;
  return fd;
}

void Connection::spend() {
  if (state_ == State::kClosing) return;
  health_ = Health::kSpent;
  if (state_ == State::kIdle) close(Error());
}

void Connection::start_http1() {
  SessionListener* listener = this;
  session_ = std::make_unique<Http1Session>(listener);
  if (may_http2_) {
    // HTTP/1.1 after all: requests held for this connection go their own way.
    may_http2_ = false;
    engine_->on_connection_ready(this);
    if (state_ == State::kClosing) return;
  }
  if (purpose_ == Purpose::kPool) {
    set_purpose(Purpose::kTransfer);
    detach_transfer();
  }
  if (!cur_) {
    state_ = State::kIdle;
    engine_->on_connection_released(this);
    return;
  }
  cur_->conn_info = info_;
  h1().expect(*cur_);
  trace_gate(TraceStep::kSend, Stage::kSend);
}

}  // namespace httprs
