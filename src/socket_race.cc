// SocketStream's Happy Eyeballs race (RFC 8305, see socket_stream.h): each
// address's attempt on its own handle, the next one after kAttemptDelayMs
// without an answer or at once when one fails; the first to connect wins.
#include <sys/socket.h>

#include <algorithm>

#include "socket_stream.h"
#include "socket_stream_internal.h"

namespace httprs {

// Start the next address's attempt (going on to the one after when an address
// fails at once), and time the one after that. With nothing left to start and
// nothing connecting, the race is lost: the last error is the connect error.
void SocketStream::race_next() {
  while (addr_index_ < addrs_.size()) {
    const auto* addr = reinterpret_cast<const struct sockaddr*>(&addrs_[addr_index_++]);
    if (start_attempt(addr)) {
      if (addr_index_ < addrs_.size()) arm_attempt_timer();
      return;
    }
  }
  close_attempt_timer();
  if (attempts_.empty()) {
    Error err = last_error_;
    if (!err) err.set(ErrorKind::kConnectError, "[Errno -2] Name or service not known");
    fail_connect(err);
  }
}

bool SocketStream::start_attempt(const struct sockaddr* addr) {
  auto* a = new Attempt;
  a->sock = this;
  uv_tcp_init(loop_, &a->tcp);
  // The handle's callbacks find the stream: its read starts with the connect
  // (see read_while_connecting), and libuv reports the connect first, by
  // which time a loser is closed and the winner is the stream's.
  a->tcp.data = this;
  a->req.data = a;
  Error err;
  if (own_socket() && !open_socket_with_options(&a->tcp, addr->sa_family, err)) {
    last_error_ = err;
    a->sock = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&a->tcp), &Attempt::closed);
    return false;
  }
  int rc = 0;
  if (!fault_due(FaultSite::kConnect, &rc))
    rc = uv_tcp_connect(&a->req, &a->tcp, addr, &SocketStream::on_attempt_connect);
  if (rc == 0)
    a->reading = uv_read_start(reinterpret_cast<uv_stream_t*>(&a->tcp), &SocketStream::on_alloc,
                               &SocketStream::on_read) == 0;
  if (rc < 0) {
    last_error_.set(ErrorKind::kConnectError, errno_message(rc));
    a->sock = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&a->tcp), &Attempt::closed);
    return false;
  }
  attempts_.push_back(a);
  return true;
}

void SocketStream::on_attempt_connect(uv_connect_t* req, int status) {
  auto* a = static_cast<Attempt*>(req->data);
  SocketStream* s = a->sock;
  if (s == nullptr || s->state_ != State::kRacing) return;  // dropped (UV_ECANCELED)
  if (status < 0)
    s->attempt_failed(a, status);
  else
    s->attempt_won(a);
}

void SocketStream::attempt_failed(Attempt* a, int status) {
  last_error_.set(ErrorKind::kConnectError, errno_message(status));
  drop_attempt(a);
  // A refused or unreachable address hands over at once (RFC 8305 section 5).
  race_next();
}

void SocketStream::attempt_won(Attempt* a) {
  // The winner's handle becomes the stream's (its socket, already in epoll
  // and read from the connect on, stays as it is); the stream's own handle,
  // never opened in a race, closes. Moving the socket into that handle
  // instead cost a dup(), an ioctl, a close() and two epoll_ctl per
  // connection. on_close reports the stream closed once both handles are.
  attempts_.erase(std::remove(attempts_.begin(), attempts_.end(), a), attempts_.end());
  drop_all_attempts();
  close_attempt_timer();
  won_ = a;
  reading_ = uv_reading_ = a->reading;
  spare_closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&sock_), &SocketStream::on_close);
  state_ = State::kOpen;
  uv_tcp_nodelay(tcp(), 1);
  start_reading();
  owner_->on_socket_connected();
}

void SocketStream::drop_attempt(Attempt* a) {
  attempts_.erase(std::remove(attempts_.begin(), attempts_.end(), a), attempts_.end());
  a->sock = nullptr;
  // A connect still pending calls back first, with UV_ECANCELED.
  uv_close(reinterpret_cast<uv_handle_t*>(&a->tcp), &Attempt::closed);
}

void SocketStream::drop_all_attempts() {
  while (!attempts_.empty()) drop_attempt(attempts_.back());
}

void SocketStream::arm_attempt_timer() {
  if (attempt_timer_ == nullptr) {
    attempt_timer_ = new uv_timer_t;
    uv_timer_init(loop_, attempt_timer_);
    attempt_timer_->data = this;
  }
  uv_timer_start(attempt_timer_, &SocketStream::on_attempt_timer, kAttemptDelayMs, 0);
}

void SocketStream::on_attempt_timer(uv_timer_t* t) {
  auto* s = static_cast<SocketStream*>(t->data);
  if (s->state_ == State::kRacing) s->race_next();
}

void SocketStream::close_attempt_timer() {
  if (attempt_timer_ == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(attempt_timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  attempt_timer_ = nullptr;
}

}  // namespace httprs
