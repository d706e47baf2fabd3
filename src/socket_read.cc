// SocketStream reading (see socket_stream.h): libuv's read callbacks (a read
// held back while a deferred write is in flight), delivery to the owner (fault
// injection, an exhausted heap), direct reads of a ready socket (read_ready,
// read_now), the receive low-water mark, what the kernel holds or would say.
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <new>

#include "socket_stream.h"

namespace httprs {

namespace {
std::atomic<uint64_t> g_reads_held{0};
}  // namespace

uint64_t SocketStream::reads_held_for_testing() { return g_reads_held.load(); }

void SocketStream::start_reading() {
  if (reading_ || state_ != State::kOpen) return;
  if (uv_reading_) {  // a pause libuv never saw
    reading_ = true;
    return;
  }
  if (uv_read_start(stream(), &SocketStream::on_alloc, &SocketStream::on_read) == 0)
    reading_ = uv_reading_ = true;
}

void SocketStream::stop_reading() {
  reading_ = false;
  if (!uv_reading_) return;
  uv_read_stop(stream());
  uv_reading_ = false;
}

void SocketStream::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* s = static_cast<SocketStream*>(h->data);
  if (!s->reading_) {  // paused: no buffer, so libuv reads nothing (on_read stops it)
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  // libuv reads again after a read that filled its buffer. When that read
  // ended the response (a body of known length is read exactly to its end),
  // the next one would only find the socket empty: decline it (one system
  // call per response). Bytes that do come wake the loop's poll as usual,
  // whose read is not declined; the pool reads before reusing anyway.
  if (s->filled_ && s->owner_->socket_read_done()) {
    s->filled_ = false;
    s->declined_ = true;
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  size_t len = 0;
  char* base = s->owner_->socket_read_buffer(&len);
  *buf = uv_buf_init(base, len);
}

void SocketStream::on_read(uv_stream_t* st, ssize_t nread, const uv_buf_t* buf) {
  auto* s = static_cast<SocketStream*>(st->data);
  if (nread == UV_ENOBUFS && s->declined_) {  // on_alloc declined a read: nothing happened
    s->declined_ = false;
    return;
  }
  if (nread == UV_ENOBUFS && !s->reading_) {  // readable while paused: stop libuv now
    s->stop_reading();
    return;
  }
  s->filled_ = nread > 0 && static_cast<size_t>(nread) == buf->len;
  if (s->state_ != State::kOpen) return;
  if (s->in_flight_) {
    // A deferred write is out of the mutex: what answers it waits until the
    // write is accounted for (end_deferred), as when it went out at once.
    if (nread > 0 && s->held_status_ == 0) {
      // Growing the hold may fail (an exhausted heap): no exception through
      // libuv's frames; the read fails as the kernel's would, after the
      // bytes held before it.
      try {
        s->held_in_.append(buf->base, static_cast<size_t>(nread));
      } catch (const std::bad_alloc&) {
        s->held_status_ = UV_ENOMEM;
      }
    } else if (nread < 0 && s->held_status_ == 0) {
      s->held_status_ = nread;
    }
    g_reads_held.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  s->deliver(nread, buf->base);
}

void SocketStream::deliver(ssize_t nread, const char* base) {
  int injected = 0;
  if (nread > 0 && fault_due(FaultSite::kRead, &injected)) nread = injected;
  // What the owner does with a read may grow a buffer (a body of unknown
  // length, HTTP/2's events and headers): on an exhausted heap that throws,
  // and the exception must not unwind through libuv's frames (nor, for a
  // direct wait's read, Cython's). The read fails instead, as the kernel's
  // would; if even that cannot be done, reading stops (the transfer ends at
  // its read timeout, or when its consumer lets go).
  try {
    hand_over(nread, base);
  } catch (const std::bad_alloc&) {
    try {
      if (state_ == State::kOpen) owner_->on_socket_read_error(UV_ENOMEM);
    } catch (const std::bad_alloc&) {
      if (state_ == State::kOpen) stop_reading();
    }
  }
}

void SocketStream::hand_over(ssize_t nread, const char* base) {
  if (nread > 0) {
    owner_->on_socket_data(base, static_cast<size_t>(nread));
  } else if (nread == UV_EOF) {
    int err = pending_error();
    if (err != 0)
      owner_->on_socket_read_error(err);
    else
      owner_->on_socket_eof();
  } else if (nread < 0) {
    owner_->on_socket_read_error(static_cast<int>(nread));
  }
}

// libuv's own read of a readable stream, done by the thread that polled the
// socket: the owner's buffer, recv() until it comes back short (at most
// kReadsPerCall full ones, as libuv), each read delivered as on_read would.
// An EOF stays readable, so it is left to the loop, whose read sees it too
// (and stops reading, as libuv does). A read error is consumed by recv():
// it is delivered here, and reading stops, as after libuv's.
SocketStream::ReadNow SocketStream::read_ready() {
  constexpr int kReadsPerCall = 32;
  int sock = fd();
  if (sock < 0 || !reading_ || state_ != State::kOpen || in_flight_) return ReadNow::kLoop;
  filled_ = false;  // what libuv's last read did no longer tells what comes next
  ReadNow result = ReadNow::kNothing;
  for (int i = 0; i < kReadsPerCall; i++) {
    size_t len = 0;
    char* base = owner_->socket_read_buffer(&len);
    if (base == nullptr || len == 0) {  // no buffer (see Owner::socket_read_buffer)
      deliver(UV_ENOBUFS, nullptr);
      if (reading_ && state_ == State::kOpen) stop_reading();
      return ReadNow::kRead;
    }
    ssize_t got;
    do {
      got = ::recv(sock, base, len, MSG_DONTWAIT);
    } while (got < 0 && errno == EINTR);
    if (got == 0) return ReadNow::kLoop;
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return result;
      deliver(-errno, base);  // libuv statuses are negated errnos on Unix
      if (reading_ && state_ == State::kOpen) stop_reading();
      return ReadNow::kRead;
    }
    result = ReadNow::kRead;
    deliver(got, base);
    // A read that ended the response is not followed by one that would find
    // the socket empty (as on_alloc declines libuv's).
    if (state_ != State::kOpen || !reading_ || static_cast<size_t>(got) < len ||
        owner_->socket_read_done())
      break;
  }
  return result;
}

bool SocketStream::set_read_lowat(int bytes) { return set_read_lowat(fd(), bytes); }

bool SocketStream::set_read_lowat(int fd, int bytes) {
  return fd >= 0 && ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof bytes) == 0;
}

int SocketStream::bytes_queued() {
  int sock = fd();
  int n = 0;
  return sock >= 0 && ::ioctl(sock, FIONREAD, &n) == 0 ? n : -1;
}

SocketStream::Peek SocketStream::read_now(char* buf, size_t cap, size_t* n) {
  *n = 0;
  uv_os_fd_t fd;
  if (state_ != State::kOpen || uv_fileno(handle(), &fd) != 0) return Peek::kError;
  if (in_flight_) return Peek::kWouldBlock;  // end_deferred delivers what comes
  for (;;) {
    ssize_t got = ::recv(fd, buf, cap, MSG_DONTWAIT);
    if (got > 0) {
      *n = static_cast<size_t>(got);
      return Peek::kData;
    }
    if (got == 0) return Peek::kEof;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Peek::kWouldBlock;
    if (errno != EINTR) return Peek::kError;
  }
}

// libuv reports UV_EOF without calling read() again when epoll says POLLHUP
// after a short read; an RST queued behind the data then goes unread, and a
// reset mid-body would look like a clean close. Ask the kernel what the next
// recv() would return (MSG_PEEK): the pending error (ECONNRESET) if there is
// one, as a plain recv() loop such as httpx's reports it; 0 for an EOF.
int SocketStream::pending_error() {
  int sock = fd();
  if (sock < 0) return 0;
  char byte;
  for (;;) {
    ssize_t got = ::recv(sock, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (got >= 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -errno;  // libuv statuses are negated errnos on Unix
  }
}

}  // namespace httprs
