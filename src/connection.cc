#include "connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "connect_tunnel.h"
#include "scratch.h"
#include "socks5.h"
#include "timeouts.h"

namespace httprs {

namespace {

constexpr double kDrainSeconds = 0.5;  // abandoned responses: drain for at most this long

// usable_for_reuse's reads (and take_waiting_bytes')
constexpr size_t kPeekScratch = 64 * 1024;
struct PeekScratch {};
char* peek_scratch() { return thread_scratch<PeekScratch, kPeekScratch>(); }

}  // namespace

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
  // A consumer_connects transfer that is not traced stops at kConnect only.
  return cur_ &&
         (cur_->spec.trace || (step == TraceStep::kConnect && cur_->spec.consumer_connects));
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

void Connection::start_connecting() {
  arm_timer(TimerMode::kConnect);
  socket_.connect(SocketTarget::from(cur_->spec));
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

// ---------------------------------------------------------------- exchanges

void Connection::assign(std::shared_ptr<Transfer> t) {
  if (is_http2()) {
    h2_assign(std::move(t));
    return;
  }
  reuses_++;
  cur_ = std::move(t);
  cur_->conn = this;
  cur_->conn_info = info_;
  state_ = State::kActive;
  h1().expect(*cur_);
  trace_gate(TraceStep::kSend, Stage::kSend);
}

void Connection::start_transfer() {
  Transfer& t = *cur_;
  t.phase = Transfer::Phase::kSending;
  Error err;
  if (!session_->submit(t, err)) {
    fail_transfer(err);
    return;
  }
  flush_session();
  if (!t.spec.body_streamed || state_ == State::kClosing || !cur_) return;
  if (socket_.writes_pending() == 0 && h1().upload() == Http1Session::Upload::kStreaming) {
    t.want_body = true;
    engine_->signal(t);
  }
}

void Connection::send_body_chunk(Transfer& t, const char* data, size_t len, bool last) {
  if (state_ == State::kClosing) return;
  if (is_http2()) {
    h2_send_body(t, data, len, last);
    return;
  }
  if (cur_.get() != &t) return;
  t.want_body = false;
  Error err;
  switch (session_->send_body(t, data, len, last, err)) {
    case ProtocolSession::BodyStep::kIgnored:
      return;
    case ProtocolSession::BodyStep::kFailed:
      health_ = Health::kSpent;
      fail_transfer(err);
      return;
    case ProtocolSession::BodyStep::kNothing:
      on_write_done();
      return;
    case ProtocolSession::BodyStep::kQueued:
      flush_session();
      return;
  }
}

void Connection::flush_session() {
  Outgoing out;
  while (state_ != State::kClosing && session_->take_output(out)) send(std::move(out));
}

void Connection::send(Outgoing&& out) {
  Error err;
  if (!chain_.send(std::move(out.owned), out.ext, out.tail, err)) fail_transfer(err);
}

void Connection::chain_write(std::string&& bytes, Borrowed ext, Borrowed tail) {
  if (state_ == State::kClosing) return;
  Error err;
  if (!socket_.write(std::move(bytes), ext, tail, err)) fail_transfer(err);
}

void Connection::on_socket_sent() {
  if (state_ == State::kActive && is_http1()) h1().note_sent();
}

void Connection::on_socket_write_done() {
  if (state_ == State::kSwitched && cur_) {
    cur_->raw_unsent = static_cast<size_t>(socket_.writes_pending());
    engine_->signal(*cur_);
    return;
  }
  if (state_ == State::kActive) on_write_done();
}

void Connection::on_socket_write_error(int status) {
  if (state_ == State::kSwitched && cur_)
    cur_->raw_unsent = static_cast<size_t>(socket_.writes_pending());
  on_write_error(status);
}

void Connection::on_socket_write_queued() {
  if (state_ == State::kActive && !is_http2()) arm_timer(TimerMode::kWrite);
}

void Connection::on_write_error(int status) {
  health_ = Health::kSpent;
  if (is_http2()) {
    h2_write_failed(status);
    return;
  }
  if (state_ == State::kActive && cur_) {
    // As httpcore does: a server may close the request early and still
    // answer, so a failed write is not reported; the response (or the read
    // error or EOF that follows, which may resend) decides the outcome.
    cur_->body_sent = true;
    h1().cut_short();
    arm_timer(TimerMode::kRead);
    return;
  }
  if (state_ == State::kSwitched) {
    Error err;
    err.set(ErrorKind::kWriteError, errno_message(status));
    end_switched(Transfer::RawState::kFailed, err);
    return;
  }
  fail_transfer(connecting_error(ErrorKind::kWriteError, errno_message(status)));
}

void Connection::on_write_done() {
  if (is_http2()) {
    h2().set_now(engine_->now_ms());
    h2().note_written(socket_.writes_completed());
    h2_arm_timer();
    return;
  }
  // Stopped at a trace gate before sending: what completed was TLS handshake
  // output, not the request.
  if (socket_.writes_pending() > 0 || !cur_ || h1().draining() || gated_ != Stage::kNone) return;
  Transfer& t = *cur_;
  if (h1().upload() == Http1Session::Upload::kStreaming) {
    arm_timer(TimerMode::kNone);
    t.want_body = true;
    engine_->signal(t);
    return;
  }
  if (!t.body_sent) {
    t.body_sent = true;
    if (t.phase == Transfer::Phase::kSending) t.phase = Transfer::Phase::kWaiting;
    if (t.spec.trace) {
      // Traced: the read timeout starts once the consumer's callbacks for
      // the end of the request (and "receive_response_headers.started") ran.
      trace_gate(TraceStep::kSent, Stage::kAwaitResponse);
      return;
    }
  }
  arm_timer(h1().flow() == Http1Session::Flow::kPaused ? TimerMode::kNone : TimerMode::kRead);
}

void Connection::await_response() {
  if (cur_ && !cur_->complete && state_ == State::kActive && is_http1() && !h1().draining())
    arm_timer(h1().flow() == Http1Session::Flow::kPaused ? TimerMode::kNone : TimerMode::kRead);
}

// ---------------------------------------------------------------- reading

void Connection::resume_reading(Transfer& t) {
  if (is_http2() && state_ != State::kClosing) {
    h2().set_now(engine_->now_ms());
    // The WINDOW_UPDATE that opens the stream's window on its first read goes
    // now: the server waits for it, and the consumer may not wait (a chunk
    // taken from the buffer) until it has used what it got. Later ones, if
    // any, with the next flush.
    if (h2().resume(t))
      h2_flush();
    else
      h2_flush_later();
    h2_settle();  // its read deadline runs again: re-arm the timer
    return;
  }
  if (state_ == State::kClosing || !is_http1() || !h1().resume()) return;
  socket_.start_reading();
  if (cur_ && !cur_->complete) arm_timer(TimerMode::kRead);
}

int Connection::direct_wait_fd(const Transfer& t) {
  if (cur_.get() != &t || gated_ != Stage::kNone || flush_wanted_ || !socket_.reading() ||
      socket_.writes_pending() > 0)
    return -1;
  // The origin's TLS handshake for `t` waits for the server's next flight (no
  // other request waits on a connection that may become HTTP/2): the poll
  // that wakes it reads that flight itself, where the loop's round after it
  // was one epoll_wait more per new connection.
  if (state_ == State::kHandshaking)
    return handshaking_ == Stage::kTls && purpose_ == Purpose::kTransfer && !may_http2_
               ? socket_.fd()
               : -1;
  if (state_ != State::kActive || !is_http1() || !t.body_sent || h1().draining() ||
      h1().flow() != Http1Session::Flow::kReading)
    return -1;
  return socket_.fd();
}

SocketStream::ReadNow Connection::read_for_direct_wait(const Transfer& t) {
  if (direct_wait_fd(t) < 0) return SocketStream::ReadNow::kLoop;
  return socket_.read_ready();
}

size_t Connection::body_mark(const Transfer& t, size_t least, size_t most) const {
  if (cur_.get() != &t || state_ != State::kActive || !is_http1() || !chain_.passthrough())
    return 0;
  size_t want = 0;
  if (h1().direct_read_buffer(&want) == nullptr || want < least) return 0;
  return want < most ? want : most;
}

Connection::BodyWait Connection::prepare_body_wait(const Transfer& t, size_t least, size_t most) {
  size_t mark = body_mark(t, least, most);
  if (mark == 0) return BodyWait::kNone;
  if (socket_.bytes_queued() >= static_cast<int>(mark)) return BodyWait::kQueued;
  return socket_.set_read_lowat(static_cast<int>(mark)) ? BodyWait::kMarked : BodyWait::kNone;
}

Connection::BodyWait Connection::mark_chunk_wait(const Transfer& t, size_t least, size_t most) {
  size_t mark = body_mark(t, least, most);
  if (mark == 0) return BodyWait::kNone;
  if (t.sink_use != SinkUse::kWhole && socket_.bytes_queued() >= static_cast<int>(mark))
    return BodyWait::kQueued;
  if (!socket_.set_read_lowat(static_cast<int>(mark))) return BodyWait::kNone;
  chunk_mark_ = ChunkMark::kMarked;
  chunk_mark_bytes_ = mark;
  return BodyWait::kMarked;
}

void Connection::follow_body_mark() {
  if (chunk_mark_ == ChunkMark::kNone || !cur_ || cur_->sink_use != SinkUse::kWhole) return;
  size_t mark = body_mark(*cur_, 1, chunk_mark_bytes_);
  if (mark == 0) {
    clear_chunk_mark();  // the sink is full, or the body is in: any byte is news
    return;
  }
  if (mark == chunk_mark_bytes_) return;
  chunk_mark_bytes_ = mark;
  if (!socket_.set_read_lowat(static_cast<int>(mark))) clear_chunk_mark();
}

void Connection::clear_chunk_mark() {
  if (chunk_mark_ == ChunkMark::kNone) return;
  chunk_mark_ = ChunkMark::kNone;
  // Back to 1: the kernel then reports the socket readable at once when
  // bytes wait under the old mark (tcp_set_rcvlowat wakes its pollers).
  socket_.set_read_lowat(1);
}

void Connection::pause_if_asked() {
  if (!is_http1() || h1().flow() != Http1Session::Flow::kPaused) return;
  // An async consumer's event loop finds the socket readable before the
  // consumer's task runs: a pause libuv is not told of would cost that loop
  // an extra pass (stop on it, remove from epoll on the next), so stop now.
  if (cur_ && cur_->watched)
    socket_.stop_reading();
  else
    socket_.pause_reading();
  arm_timer(TimerMode::kNone);
}

char* Connection::socket_read_buffer(size_t* len) {
  char* buf = engine_->read_buffer(len);
  if (state_ != State::kActive || !is_http1() || chain_.connecting()) return buf;
  // A body of known length goes straight into its consumer's buffer when no
  // layer transforms the bytes: the parser still reads every byte, in place.
  size_t direct_len = 0;
  if (chain_.passthrough())
    if (char* direct = h1().direct_read_buffer(&direct_len)) {
      *len = direct_len;
      return direct;
    }
  // Else at most what the consumer has room for (through TLS: about that
  // much plaintext), so the rest waits in the kernel, not in a buffer here.
  *len = h1().read_limit(*len);
  return buf;
}

char* Connection::chain_read_buffer(size_t* len) {
  // Through TLS: decrypt a body of known length straight into the sink.
  if (state_ != State::kActive || !is_http1()) return nullptr;
  return h1().direct_read_buffer(len);
}

void Connection::on_plaintext(const char* data, size_t len) {
  if (is_http2()) {
    h2_receive(data, len);
    return;
  }
  if (state_ == State::kSwitched) {
    on_switched_data(data, len);
    return;
  }
  if (state_ == State::kHeld) {
    health_ = Health::kSpent;  // bytes after a complete response: not reusable
    socket_.stop_reading();
    return;
  }
  if (state_ == State::kIdle || !cur_) {
    // Bytes nobody asked for: this connection cannot be trusted any more.
    health_ = Health::kSpent;
    close(Error());
    return;
  }
  if (state_ != State::kActive) return;
  size_t used = 0;
  Error err;
  ProtocolSession::Result r = session_->receive(data, len, &used, err);
  if (state_ == State::kClosing) return;
  on_response(r, data, len, used, err);
}

void Connection::on_response(ProtocolSession::Result r, const char* data, size_t len, size_t used,
                             const Error& err) {
  bool was_paused = h1().flow() == Http1Session::Flow::kPaused;
  pause_if_asked();
  switch (r) {
    case ProtocolSession::Result::kDiscard:
      // Past the drain bound, reading on costs more than a new connection.
      close(Error());
      break;
    case ProtocolSession::Result::kMore:
      if (cur_ && cur_->body_sent && !was_paused && !h1().draining()) arm_timer(TimerMode::kRead);
      follow_body_mark();
      break;
    case ProtocolSession::Result::kComplete:
      if (used < len) health_ = Health::kSpent;  // extra bytes after the response
      finish_transfer();
      break;
    case ProtocolSession::Result::kSwitched:
      on_switched(data + used, len - used);
      break;
    case ProtocolSession::Result::kFailed:
      fail_transfer(err);
      break;
  }
}

void Connection::on_switched(const char* rest, size_t len) {
  health_ = Health::kSpent;  // never HTTP/1.1 again: not reusable, whatever happens next
  // Reading resumes when the consumer first takes from the raw stream.
  socket_.stop_reading();
  cur_->raw_in.assign(rest, len);
  finish_transfer();
  if (state_ == State::kHeld) state_ = State::kSwitched;
}

void Connection::on_switched_data(const char* data, size_t len) {
  if (!cur_) return;
  cur_->raw_in.append(data, len);
  // switched_resume reads on
  if (cur_->raw_in.size() >= Http1Session::kHighWater) socket_.stop_reading();
  engine_->signal(*cur_);
}

void Connection::end_switched(Transfer::RawState how, const Error& err) {
  socket_.stop_reading();
  if (!cur_ || cur_->raw_state != Transfer::RawState::kOpen) return;
  if (how == Transfer::RawState::kFailed) cur_->raw_error = err;
  cur_->raw_state = how;
  engine_->signal(*cur_);
}

void Connection::switched_resume() {
  if (state_ != State::kSwitched || !cur_ || cur_->raw_state != Transfer::RawState::kOpen) return;
  if (cur_->raw_in.size() < Http1Session::kHighWater) socket_.start_reading();
}

void Connection::switched_write(const char* data, size_t len) {
  if (state_ != State::kSwitched || !cur_ || cur_->raw_state == Transfer::RawState::kFailed) return;
  Outgoing out;
  out.owned.assign(data, len);
  send(std::move(out));
  if (cur_) cur_->raw_unsent = static_cast<size_t>(socket_.writes_pending());
}

int Connection::switched_fd() { return state_ == State::kSwitched ? socket_.fd() : -1; }

Error Connection::connecting_error(ErrorKind io, const std::string& message) const {
  // While a layer connects (or waits at the gate after its handshake), it
  // says what a failed read or write (`io`) means: a ConnectError, or a
  // CONNECT tunnel's ReadError / WriteError.
  Error err;
  StreamLayer* top = const_cast<StreamChain&>(chain_).top();
  err.set(top ? top->socket_error_kind(io) : ErrorKind::kConnectError, message);
  return err;
}

void Connection::on_eof() {
  health_ = Health::kSpent;
  if (is_http2()) {
    Error err;
    h2().set_now(engine_->now_ms());
    if (h2().open_exchanges() > 0) h2().receive_eof(err);
    close(err);
    return;
  }
  if (state_ == State::kSwitched) {
    end_switched(Transfer::RawState::kEof, Error());
    return;
  }
  if (state_ == State::kHeld) {
    socket_.stop_reading();
    return;
  }
  if (state_ == State::kIdle || !cur_) {
    close(Error());
    return;
  }
  if (state_ == State::kActive) {
    Error err;
    if (session_->receive_eof(err) == ProtocolSession::Result::kComplete) {
      finish_transfer();
      return;
    }
    if (may_resend()) {
      resend();
      return;
    }
    fail_transfer(err);
    return;
  }
  Error err;
  if (StreamLayer* top = chain_.top())
    err = top->eof_while_connecting();
  else
    err.set(ErrorKind::kConnectError, "Server disconnected while connecting.");
  close(err);
}

void Connection::on_read_error(int status) {
  health_ = Health::kSpent;
  if (status == UV_ENOBUFS) {
    // No buffer to read into (Engine::read_buffer, on an exhausted heap):
    // this connection fails with a clear error; the next one tries again.
    // While connecting (the TLS handshake's first read makes the buffer),
    // a failure is the connect's, as any other failed read then would be.
    ErrorKind kind = ErrorKind::kReadError;
    if (state_ == State::kConnecting || state_ == State::kHandshaking)
      kind = connecting_error(kind, std::string()).kind;
    close(scratch_error(kind, Engine::kReadBufferSize));
    return;
  }
  if (is_http2()) {
    Error err;
    if (h2().open_exchanges() > 0) {
      std::string goaway = h2().goaway_note();
      if (goaway.empty()) {
        err.set(ErrorKind::kReadError, errno_message(status));
      } else {
        // The server said it ended the connection for an error; the reset follows.
        err.set(ErrorKind::kRemoteProtocolError,
                "Server disconnected" + goaway + ": " + errno_message(status));
      }
    }
    close(err);
    return;
  }
  if (state_ == State::kSwitched) {
    Error err;
    err.set(ErrorKind::kReadError, errno_message(status));
    end_switched(Transfer::RawState::kFailed, err);
    return;
  }
  if (state_ == State::kHeld) {
    socket_.stop_reading();
    return;
  }
  if (state_ == State::kActive && may_resend()) {
    resend();
    return;
  }
  if (!cur_) {
    close(Error());
    return;
  }
  Error err;
  if (state_ == State::kActive)
    err.set(ErrorKind::kReadError, errno_message(status));
  else
    err = connecting_error(ErrorKind::kReadError, errno_message(status));
  fail_transfer(err);
}

void Connection::chain_read_error(const Error& err) {
  if (cur_)
    fail_transfer(err);
  else
    close(err);  // HTTP/2: the streams end with it
}

bool Connection::may_resend() const {
  // Only on a kept-alive connection: the stale keep-alive race.
  return cur_ && reuses_ > 0 && is_http1() && h1().may_resend(*cur_);
}

void Connection::resend() {
  std::shared_ptr<Transfer> t = detach_transfer();
  close(Error());
  engine_->retry(std::move(t));
}

// ---------------------------------------------------------------- the exchange's end

std::shared_ptr<Transfer> Connection::detach_transfer() {
  clear_chunk_mark();
  if (is_http1()) h1().detach();
  std::shared_ptr<Transfer> t = std::move(cur_);
  cur_.reset();
  if (t) t->conn = nullptr;
  return t;
}

bool Connection::reusable() const {
  return health_ == Health::kSound && is_http1() && h1().keep_alive() &&
         socket_.writes_pending() == 0 && cur_ && cur_->body_sent;
}

void Connection::finish_transfer() {
  Transfer& t = *cur_;
  gated_ = Stage::kNone;  // a response that came before a trace gate was passed
  t.complete = true;
  t.phase = Transfer::Phase::kDone;
  engine_->signal(t);
  arm_timer(TimerMode::kNone);
  clear_chunk_mark();
  state_ = State::kHeld;
  if (h1().finish()) release_held();  // it was being drained: nobody holds it
}

void Connection::set_purpose(Purpose p) {
  if (p == purpose_) return;
  engine_->note_pool_work(p == Purpose::kPool ? 1 : -1);
  purpose_ = p;
}

void Connection::release_held() {
  set_purpose(Purpose::kTransfer);  // a drain, if any, is over
  bool keep = reusable();
  detach_transfer();
  if (!keep) {
    close(Error());
    return;
  }
  state_ = State::kIdle;
  if (h1().resume()) socket_.start_reading();
  engine_->on_connection_released(this);
}

void Connection::fail_transfer(const Error& err) {
  // Do not resume a TLS session that ended in an error.
  if (origin_tls_) origin_tls_->session().mark_failed();
  close(err);
}

void Connection::abandon(Transfer& t) {
  if (is_http2()) {
    h2_abandon(t);
    return;
  }
  if (cur_.get() == &t) abandon();
}

void Connection::abandon() {
  if (gated_ != Stage::kNone) {
    // Stopped at a trace gate: nothing of the next phase is under way.
    gated_ = Stage::kNone;
    detach_transfer();
    close(Error());
    return;
  }
  switch (state_) {
    case State::kHeld:
      release_held();
      return;
    case State::kConnecting:
    case State::kHandshaking:
      // Finish connecting and give the connection to the pool: closing now
      // would only make the next request open another one. The transfer
      // stays, for its settings, but no longer points here.
      if (cur_) cur_->conn = nullptr;
      set_purpose(Purpose::kPool);
      return;
    case State::kActive:
      // The request counts as sent once libuv handed every byte to the
      // kernel, even if the write callback has not run yet.
      if (cur_ && h1().upload() != Http1Session::Upload::kStreaming && !h1().request_closes() &&
          (cur_->body_sent || socket_.write_queue_empty()) &&
          cur_->body_received <= Http1Session::kDrainLimit) {
        cur_->body_sent = true;
        // The request is on the wire: read the rest of the response into the
        // void and reuse the connection, within a bound of bytes and time.
        cur_->conn = nullptr;
        cur_->sink = nullptr;
        cur_->body_buf.clear();
        clear_chunk_mark();
        h1().drain();
        set_purpose(Purpose::kPool);
        if (h1().resume()) socket_.start_reading();
        arm_timer(TimerMode::kDrain);
        return;
      }
      break;
    default:
      break;
  }
  detach_transfer();
  close(Error());
}

bool Connection::draining_for_pool() const {
  return purpose_ == Purpose::kPool && state_ == State::kActive && is_http1() && h1().draining();
}

bool Connection::keepalive_expired(uint64_t now_ms) const {
  if (engine_->limits().expire_at_once()) return true;
  uint64_t expiry_ms = 0;
  return timeout_ms(engine_->limits().keepalive_expiry, &expiry_ms) &&
         now_ms - idle_since_ms > expiry_ms;
}

bool Connection::usable_for_reuse(uint64_t now_ms) {
  if (is_http2()) return h2_usable_for_reuse(now_ms);
  if (state_ != State::kIdle || health_ == Health::kSpent || !has_room()) return false;
  if (keepalive_expired(now_ms)) return false;
  // Drain whatever arrived while nobody ran the loop: an EOF or stray bytes
  // mean the server is done with this connection.
  char* buf = peek_scratch();
  if (buf == nullptr) return false;  // no memory to look with: not reused (closed)
  StreamChain::keep_lent();          // a delivery this runs inside may be reading buf
  for (;;) {
    size_t n = 0;
    switch (socket_.read_now(buf, kPeekScratch, &n)) {
      case SocketStream::Peek::kData:
        chain_.receive(buf, n);
        if (state_ != State::kIdle) return false;
        continue;
      case SocketStream::Peek::kEof:
        on_eof();
        return false;
      case SocketStream::Peek::kWouldBlock:
        return health_ == Health::kSound && state_ == State::kIdle;
      case SocketStream::Peek::kError:
        health_ = Health::kSpent;
        close(Error());
        return false;
    }
  }
}

// ---------------------------------------------------------------- timers

void Connection::arm_timer(TimerMode mode) {
  if (state_ == State::kClosing) return;
  double seconds = -1;
  if (cur_) {
    const RequestSpec& s = cur_->spec;
    switch (mode) {
      case TimerMode::kConnect:
        seconds = s.connect_timeout;
        break;
      case TimerMode::kRead:
        seconds = s.read_timeout;
        break;
      case TimerMode::kWrite:
        seconds = s.write_timeout;
        break;
      case TimerMode::kDrain:
        seconds = kDrainSeconds;
        if (s.read_timeout >= 0 && s.read_timeout < seconds) seconds = s.read_timeout;
        break;
      case TimerMode::kNone:
      case TimerMode::kStreams:
        break;
    }
  }
  if (mode == TimerMode::kConnect && timer_mode_ == TimerMode::kConnect) return;
  uint64_t ms = 0;
  if (mode == TimerMode::kNone || !timeout_ms(seconds, &ms, 1)) {
    if (timer_mode_ != TimerMode::kNone) uv_timer_stop(&timer_);
    timer_mode_ = TimerMode::kNone;
    return;
  }
  timer_mode_ = mode;
  if (mode == TimerMode::kWrite) unsent_at_deadline_ = socket_.unsent_bytes();
  uv_timer_start(&timer_, &Connection::on_timer, ms, 0);
}

// libuv runs the timers that are due before it polls for I/O, so after a
// pause in driving the loop (a consumer busy between two chunks, a process
// not scheduled for a while) a read deadline can be found past while the
// answer already waits in the socket. A plain recv() (httpx) would return those
// bytes, so take them in first: bytes, an EOF or a reset decide the outcome as
// if the loop had read them. Returns false when nothing was waiting.
bool Connection::take_waiting_bytes() {
  bool took = false;
  char* buf = peek_scratch();
  StreamChain::keep_lent();  // a delivery this runs inside may be reading buf
  for (;;) {
    bool h1_reading =
        state_ == State::kActive && is_http1() && h1().flow() != Http1Session::Flow::kPaused;
    if (state_ == State::kClosing || (!is_http2() && !h1_reading)) return took;
    if (socket_.write_in_flight()) {
      // Another thread's write on this socket is out of the engine mutex:
      // what the loop read meanwhile is held back until it is accounted for
      // (SocketStream::end_deferred), and a read now would pass it. Input
      // that arrived counts as taken in: the accounting delivers what is
      // held, the loop what waits in the kernel. The HTTP/2 streams' expiry
      // waits for that (on_socket_deferred_ended).
      if (!socket_.input_arrived_in_flight()) return took;
      deadline_after_flight_ = true;
      return true;
    }
    if (buf == nullptr) {  // no memory to read into: fail as a read would, not as a timeout
      close(scratch_error(ErrorKind::kReadError, kPeekScratch));
      return true;
    }
    size_t n = 0;
    switch (socket_.read_now(buf, kPeekScratch, &n)) {
      case SocketStream::Peek::kData:
        took = true;
        chain_.receive(buf, n);
        pause_if_asked();
        continue;
      case SocketStream::Peek::kEof:
        on_eof();
        return true;
      case SocketStream::Peek::kError: {
        int status = -errno;  // read_now's recv() failed: errno is its error
        on_read_error(status);
        return true;
      }
      case SocketStream::Peek::kWouldBlock:
        return took;
    }
  }
}

void Connection::on_read_deadline() {
  if (take_waiting_bytes()) {
    // Bytes arrived in time: the wait for the next ones starts now, as the
    // read of a fresh recv() would (a partial TLS record re-arms nothing
    // by itself).
    if (timer_mode_ == TimerMode::kNone) await_response();
    return;
  }
  Error err;
  err.set(ErrorKind::kReadTimeout, "timed out");
  health_ = Health::kSpent;
  close(err);
}

bool Connection::write_progressed() {
  // As httpx's sync writes, whose timeout bounds each send: the deadline
  // bounds a wait in which nothing of the request leaves. A peer reading
  // slowly but steadily drains the send queue, and each drained byte starts
  // the wait anew; one that stops reading times the write out.
  return socket_.unsent_bytes() < unsent_at_deadline_;
}

void Connection::on_timer(uv_timer_t* h) {
  auto* c = static_cast<Connection*>(h->data);
  TimerMode mode = c->timer_mode_;
  c->timer_mode_ = TimerMode::kNone;
  Error err;
  switch (mode) {
    case TimerMode::kConnect:
      err.set(ErrorKind::kConnectTimeout, "timed out");
      break;
    case TimerMode::kRead:
      c->on_read_deadline();
      return;
    case TimerMode::kWrite:
      if (c->write_progressed()) {
        c->arm_timer(TimerMode::kWrite);
        return;
      }
      err.set(ErrorKind::kWriteTimeout, "timed out");
      break;
    case TimerMode::kDrain:
      break;  // an abandoned response took too long: just close
    case TimerMode::kStreams:
      // Per-stream deadlines: only those streams fail, after what waits in
      // the socket was taken in (it may complete or advance them), or once
      // a write in flight is accounted for when input is held behind it.
      c->take_waiting_bytes();
      if (!c->deadline_after_flight_) c->h2_on_timer();
      return;
    case TimerMode::kNone:
      return;
  }
  c->health_ = Health::kSpent;
  c->close(err);
}

// ---------------------------------------------------------------- closing

void Connection::close(const Error& err) {
  if (state_ == State::kClosing) return;
  State was = state_;
  state_ = State::kClosing;
  health_ = Health::kSpent;
  Purpose purpose = purpose_;
  set_purpose(Purpose::kTransfer);
  std::vector<Http2Exchanges::Ended> streams_ended;
  if (is_http2()) streams_ended = end_streams(err);
  arm_connect_retry(err, was, purpose);
  fail_on_close(err, was);
  if (origin_tls_ && (was == State::kIdle || was == State::kActive)) {
    std::string bye = chain_.close_top();  // the origin's close_notify
    socket_.write_now(bye);
  }
  if (info_) info_->live = nullptr;
  if (trace_info_) trace_info_->live = nullptr;
  if (fd_lent_) {
    // A duplicate of the descriptor (get_extra_info("socket")) would keep the
    // connection open past our close: the peer sees it end now.
    int fd = socket_.fd();
    if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
  }
  socket_.close();
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Connection::on_timer_close);
  engine_->on_connection_closed(this);
  if (retry_after_close_) engine_->retry_later(std::move(retry_after_close_), retry_delay_ms_);
  for (Http2Exchanges::Ended& e : streams_ended) {
    e.transfer->conn = nullptr;
    if (e.outcome == Http2Exchanges::Outcome::kRetry) engine_->retry(std::move(e.transfer));
  }
}

std::vector<Http2Exchanges::Ended> Connection::end_streams(const Error& err) {
  // Every stream ends; those the server never processed are retried
  // (unless the client itself is closing).
  if (err.kind == ErrorKind::kClosed) {
    h2().fail_all(err);
  } else {
    Error lost = err;
    if (!lost) lost.set(ErrorKind::kReadError, "connection closed");
    h2().lost(lost);
  }
  return h2().take_ended();
}

void Connection::arm_connect_retry(const Error& err, State was, Purpose purpose) {
  bool connect_failure =
      err.kind == ErrorKind::kConnectError || err.kind == ErrorKind::kConnectTimeout;
  if (cur_ && purpose == Purpose::kTransfer && was == State::kConnecting && connect_failure &&
      cur_->connect_retries_done < cur_->spec.connect_retries) {
    // httpcore's connect retries: immediately, then after 0.5 s, 1 s, 2 s, ...
    int n = cur_->connect_retries_done++;
    retry_delay_ms_ = n == 0 ? 0 : static_cast<uint64_t>(500) << (n - 1);
    retry_after_close_ = detach_transfer();
  }
}

void Connection::fail_on_close(const Error& err, State was) {
  std::shared_ptr<Transfer> t = detach_transfer();
  if (!t) return;
  if (err) {
    t->error = err;
  } else if (!t->complete) {
    t->error.set(ErrorKind::kReadError, "connection closed");
  }
  if (!t->complete) {
    t->phase = Transfer::Phase::kFailed;
    engine_->signal(*t);
  } else if (was == State::kSwitched && t->raw_state == Transfer::RawState::kOpen) {
    t->raw_error = t->error;
    t->raw_state = Transfer::RawState::kFailed;
    engine_->signal(*t);
  }
}

void Connection::drop_after_fork(const Error& err) {
  state_ = State::kClosing;
  health_ = Health::kSpent;
  if (info_) info_->live = nullptr;  // the parent's socket: never shut down from here
  if (trace_info_) trace_info_->live = nullptr;
  if (std::shared_ptr<Transfer> t = detach_transfer()) {
    if (!t->complete) {
      t->error = err;  // before the phase, which the consumer reads without the mutex
      t->phase = Transfer::Phase::kFailed;
      engine_->signal(*t);
    }
  }
  retry_after_close_.reset();
  if (is_http2()) {
    h2().fail_all(err);
    for (Http2Exchanges::Ended& e : h2().take_ended()) e.transfer->conn = nullptr;
  }
  socket_.drop_after_fork();
}

void Connection::on_timer_close(uv_handle_t* h) {
  static_cast<Connection*>(h->data)->handle_closed();
}

void Connection::handle_closed() {
  if (--handles_open_ == 0) delete this;
}

}  // namespace httprs
