// SocketStream writing (see socket_stream.h): the kernel first, then libuv's
// queue; the deferred write made without the engine mutex (begin_deferred,
// write_deferred_now, end_deferred) and the writes queued behind it; an
// injected write failure; the bytes not yet on their way.
#include <poll.h>
#include <sys/ioctl.h>
#ifdef __linux__
#include <linux/sockios.h>  // SIOCOUTQ
#endif
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <string>
#include <vector>

#include "socket_stream.h"

namespace httprs {

namespace {

// Skip `n` bytes at the front of `bufs`, dropping the buffers they empty.
void advance_bufs(uv_buf_t* bufs, unsigned* count, size_t n) {
  unsigned first = 0;
  while (first < *count && n >= bufs[first].len) n -= bufs[first++].len;
  if (first < *count) {
    bufs[first].base += n;
    bufs[first].len -= n;
  }
  for (unsigned i = first; i < *count; i++) bufs[i - first] = bufs[i];
  *count -= first;
}

}  // namespace

struct SocketStream::WriteReq {
  uv_write_t req;
  std::string owned;
  SocketStream* sock;
  uint64_t seq = 0;  // its number (writes_started())
  // A deferred write, or one behind it: its buffers, and the kernel's answer
  // (bytes written, or a negative libuv status).
  uv_buf_t bufs[3];
  unsigned nbufs = 0;
  ssize_t rc = 0;
};

bool SocketStream::write(std::string&& owned, Borrowed ext, Borrowed tail, Error& err) {
  if (state_ != State::kOpen) return true;
  auto* w = new WriteReq;
  w->owned = std::move(owned);
  w->sock = this;
  w->req.data = w;
  uv_buf_t* bufs = w->bufs;
  unsigned n = 0;
  if (!w->owned.empty()) bufs[n++] = uv_buf_init(w->owned.data(), w->owned.size());
  if (ext.len > 0) bufs[n++] = uv_buf_init(const_cast<char*>(ext.data), ext.len);
  if (tail.len > 0) bufs[n++] = uv_buf_init(const_cast<char*>(tail.data), tail.len);
  if (n == 0) {
    delete w;
    return true;
  }
  w->nbufs = n;
  w->seq = ++writes_started_;
  if (deferred_ != nullptr) {  // queued once the deferred write is out
    behind_.push_back(w);
    writes_pending_++;
    return true;
  }
  if (writes_pending_ == 0 && owner_->defer_socket_write(this)) {
    deferred_ = w;
    writes_pending_++;
    return true;
  }
  // Give the kernel what it takes now (libuv would too, inside uv_write), so
  // the owner knows whether any byte left (a request may be resent if none).
  if (writes_pending_ == 0) {
    int rc = 0;
    if (fault_due(FaultSite::kWrite, &rc))
      break_for_fault();
    else
      rc = uv_try_write(stream(), bufs, n);
    if (rc > 0) {
      owner_->on_socket_sent();
      advance_bufs(bufs, &n, static_cast<size_t>(rc));
    } else if (rc < 0 && rc != UV_EAGAIN) {
      delete w;
      owner_->on_socket_write_error(rc);
      return true;
    }
    if (n == 0) {  // all of it went out
      writes_completed_ = w->seq;
      delete w;
      owner_->on_socket_write_done();
      return true;
    }
  }
  return queue_write(w, bufs, n, err);
}

bool SocketStream::queue_write(WriteReq* w, uv_buf_t* bufs, unsigned n, Error& err) {
  int rc = uv_write(&w->req, stream(), bufs, n, &SocketStream::on_write);
  if (rc < 0) {
    delete w;
    err.set(ErrorKind::kWriteError, errno_message(rc));
    return false;
  }
  writes_pending_++;
  owner_->on_socket_write_queued();
  return true;
}

namespace {
std::atomic<void (*)()> g_flight_hook{nullptr};
}  // namespace

void SocketStream::set_flight_hook_for_testing(void (*hook)()) { g_flight_hook = hook; }

bool SocketStream::begin_deferred() {
  if (deferred_ == nullptr || in_flight_) return false;
  flight_fd_ = fd();
  if (flight_fd_ < 0) {
    drop_deferred();
    return false;
  }
  in_flight_ = true;
  return true;
}

bool SocketStream::write_deferred_now() {
  WriteReq* w = deferred_;
  int injected = 0;
  if (fault_due(FaultSite::kWrite, &injected)) {
    ::shutdown(flight_fd_, SHUT_RDWR);  // as break_for_fault(), on the descriptor alone
    w->rc = injected;
    return false;
  }
  struct msghdr msg {};
  msg.msg_iov = reinterpret_cast<struct iovec*>(w->bufs);  // uv_buf_t is an iovec on Unix
  msg.msg_iovlen = w->nbufs;
  ssize_t got;
  do {
    got = ::sendmsg(flight_fd_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (got < 0 && errno == EINTR);
  if (got < 0) w->rc = (errno == EAGAIN || errno == EWOULDBLOCK) ? UV_EAGAIN : -errno;
  if (void (*hook)() = g_flight_hook.load(std::memory_order_relaxed)) hook();
  if (got < 0) return false;
  w->rc = got;
  size_t total = 0;
  for (unsigned i = 0; i < w->nbufs; i++) total += w->bufs[i].len;
  return static_cast<size_t>(got) == total;
}

// The deferred write `w` came back from its kernel call: as write() after
// one. The writes queued behind it go to libuv before the owner hears how it
// ended: it never sees "nothing pending" (the request sent, the next chunk
// wanted) while they wait.
void SocketStream::settle_flight(WriteReq* w, std::vector<WriteReq*>& behind) {
  if (w->rc > 0) {
    owner_->on_socket_sent();
    advance_bufs(w->bufs, &w->nbufs, static_cast<size_t>(w->rc));
  }
  Error err;
  int failed = 0;
  bool done = false;
  if (w->rc < 0 && w->rc != UV_EAGAIN) {
    failed = static_cast<int>(w->rc);
    delete w;
  } else if (w->nbufs == 0) {
    writes_completed_ = w->seq;
    delete w;
    done = true;
  } else if (state_ != State::kOpen) {
    delete w;
  } else if (!queue_write(w, w->bufs, w->nbufs, err)) {
    failed = UV_EPIPE;
  }
  for (WriteReq* b : behind) {
    if (failed != 0 || state_ != State::kOpen) {
      delete b;
    } else if (!queue_write(b, b->bufs, b->nbufs, err)) {
      failed = UV_EPIPE;
    }
  }
  if (failed != 0)
    owner_->on_socket_write_error(failed);
  else if (done)
    owner_->on_socket_write_done();
}

bool SocketStream::end_deferred() {
  WriteReq* w = deferred_;
  deferred_ = nullptr;
  in_flight_ = false;
  std::vector<WriteReq*> behind;
  behind.swap(behind_);
  writes_pending_ -= 1 + static_cast<int>(behind.size());
  if (close_after_flight_) {
    close_after_flight_ = false;
    delete w;
    for (WriteReq* b : behind) delete b;
    held_in_.clear();
    uv_close(handle(), &SocketStream::on_close);
    return false;
  }
  settle_flight(w, behind);
  // What the loop read meanwhile, as it would have delivered it.
  std::string in;
  in.swap(held_in_);
  ssize_t status = held_status_;
  held_status_ = 0;
  bool replayed = false;
  if (!in.empty() && state_ == State::kOpen) {
    deliver(static_cast<ssize_t>(in.size()), in.data());
    replayed = true;
  }
  if (status != 0 && state_ == State::kOpen) {
    deliver(status, nullptr);
    replayed = true;
  }
  if (state_ == State::kOpen) owner_->on_socket_deferred_ended();
  return replayed;
}

bool SocketStream::input_arrived_in_flight() {
  if (!in_flight_) return false;
  if (!held_in_.empty() || held_status_ != 0) return true;
  // poll, not a peeking recv: on Linux a recv takes a pending socket error
  // (ECONNRESET) off the socket, and the loop's read would then see a plain
  // EOF instead of the reset.
  pollfd p{flight_fd_, POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&p, 1, 0);
  } while (ready < 0 && errno == EINTR);
  return ready > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

void SocketStream::drop_deferred() {
  if (deferred_ == nullptr || in_flight_) return;
  writes_pending_ -= 1 + static_cast<int>(behind_.size());
  delete deferred_;
  deferred_ = nullptr;
  for (WriteReq* b : behind_) delete b;
  behind_.clear();
}

void SocketStream::on_write(uv_write_t* req, int status) {
  auto* w = static_cast<WriteReq*>(req->data);
  SocketStream* s = w->sock;
  uint64_t seq = w->seq;
  delete w;
  s->writes_pending_--;
  if (status == UV_ECANCELED || s->state_ != State::kOpen) return;
  int injected = 0;
  if (status == 0 && fault_due(FaultSite::kWrite, &injected)) {
    s->break_for_fault();
    status = injected;
  }
  if (status >= 0) s->writes_completed_ = seq;
  // Whether it ended in an error or not, some of it may have left.
  s->owner_->on_socket_sent();
  if (status < 0) {
    s->owner_->on_socket_write_error(status);
    return;
  }
  s->owner_->on_socket_write_done();
}

void SocketStream::write_now(std::string& data) {
  // Never ahead of a deferred write (a TLS record behind it would be cut).
  if (!handle_open() || data.empty() || deferred_ != nullptr) return;
  uv_buf_t b = uv_buf_init(data.data(), data.size());
  uv_try_write(stream(), &b, 1);
}

void SocketStream::break_for_fault() {
  // A write the kernel fails with a reset or EPIPE leaves a dead connection:
  // later reads see its end too, not a server still waiting for the request.
  int sock = fd();
  if (sock >= 0) ::shutdown(sock, SHUT_RDWR);
}

size_t SocketStream::unsent_bytes() {
  if (!handle_open()) return 0;
  size_t queued = stream()->write_queue_size;
#ifdef SIOCOUTQ
  int kernel = 0;
  int sock = fd();
  if (sock >= 0 && ioctl(sock, SIOCOUTQ, &kernel) == 0 && kernel > 0)
    queued += static_cast<size_t>(kernel);
#endif
  return queued;
}

}  // namespace httprs
