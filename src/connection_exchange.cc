// Connection's exchanges (see connection.h): a transfer assigned to an
// established connection, its request submitted to the protocol session and
// sent through the layer chain to the socket, a streamed body's chunks, the
// socket's write callbacks (sent, done, failed, queued) and what a finished or
// failed write means for the exchange, up to the read timeout that starts once
// the request is out.
#include "connection.h"

namespace httprs {

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
    fail_switched(ErrorKind::kWriteError, status);
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

}  // namespace httprs
