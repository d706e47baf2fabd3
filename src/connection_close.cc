// A Connection's closing (see connection.h): the close itself (HTTP/2's
// streams ending, httpcore's connect retries, the transfer's failure, the
// origin's close_notify, a lent descriptor shut down), the fork child's drop
// of the parent's connection, and the timer handle's close, the last of the
// connection.
#include <sys/socket.h>

#include "connection.h"

namespace httprs {

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
