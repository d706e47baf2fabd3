// The engine's side of the consumer operations: what a reader of a response
// (the Cython layer, holding no loop) calls to take bodies, give sinks, read
// raw streams and connection facts, and let transfers go.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "connection.h"
#include "engine.h"

namespace httprs {

// ------------------------------------------------------------------ consumers

namespace {

constexpr size_t kKeptEnds = 4096;  // chunk ends whose room a transfer keeps

// After a take: hand the consumer the chunk ends its bytes reach (every end up
// to the first byte still buffered or in the sink).
void hand_over_ends(Transfer& t) {
  if (t.chunk_ends.empty()) return;
  uint64_t held = t.body_buf.size() + (t.sink != nullptr ? t.sink_fill : 0);
  uint64_t to = t.body_received - held;
  auto reached = t.chunk_ends.back() <= to
                     ? t.chunk_ends.end()
                     : std::upper_bound(t.chunk_ends.begin(), t.chunk_ends.end(), to);
  if (reached == t.chunk_ends.end() && t.ends_taken.empty()) {
    // All reached (the usual case): no copy. The consumer's old (cleared) vector
    // comes back; a large one is freed, so tiny chunks keep no memory once taken.
    t.ends_taken.swap(t.chunk_ends);
    if (t.chunk_ends.capacity() > kKeptEnds) std::vector<uint64_t>().swap(t.chunk_ends);
    return;
  }
  // Added to what an earlier take handed over and the consumer has not cut with
  // yet (a sink's take, then the buffer's, for one chunk); it clears them once used.
  t.ends_taken.insert(t.ends_taken.end(), t.chunk_ends.begin(), reached);
  t.chunk_ends.erase(t.chunk_ends.begin(), reached);
}

}  // namespace

void Engine::push_body(Transfer& t, const char* data, size_t len, bool last) {
  ConsumerLock lk(*this);
  if (loop_closed()) return;
  uv_update_time(loop_);
  if (t.conn) t.conn->send_body_chunk(t, data, len, last);
  wake_driver();
}

void Engine::take_body(Transfer& t, std::string& out) {
  ConsumerLock lk(*this);
  out.clear();
  out.swap(t.body_buf);
  hand_over_ends(t);
  if (t.conn && !loop_closed()) {
    uv_update_time(loop_);
    t.conn->resume_reading(t);
    wake_driver();
  }
}

bool Engine::take_buffered(Transfer& t, std::string& out, size_t max, Wake wake) {
  ConsumerLock lk(*this);
  if (t.body_buf.empty() || max == 0) return false;
  if (t.body_buf.size() <= max) {
    out.clear();
    out.swap(t.body_buf);
  } else {
    out.assign(t.body_buf, 0, max);
    t.body_buf.erase(0, max);
  }
  hand_over_ends(t);
  if (t.conn && !loop_closed()) {
    uv_update_time(loop_);
    t.conn->resume_reading(t);
    if (wake == Wake::kDriver) wake_driver();
  }
  return true;
}

size_t Engine::set_sink(Transfer& t, char* buf, size_t len, size_t fill, SinkUse use, Wake wake) {
  ConsumerLock lk(*this);
  size_t n = std::min(len - fill, t.body_buf.size());
  if (n) std::memcpy(buf + fill, t.body_buf.data(), n);
  if (n == t.body_buf.size())
    std::string().swap(t.body_buf);  // its block is free before the sink fills
  else
    t.body_buf.erase(0, n);
  t.sink = buf;
  t.sink_len = len;
  t.sink_fill = fill + n;
  t.sink_overflow = !t.body_buf.empty();
  t.sink_use = use;
  if (use == SinkUse::kWhole)
    std::vector<uint64_t>().swap(t.chunk_ends);  // read whole: no pieces to cut
  if (t.conn && !loop_closed()) {
    uv_update_time(loop_);
    t.conn->resume_reading(t);
    if (wake == Wake::kDriver) wake_driver();
  }
  return t.sink_fill;
}

size_t Engine::detach_sink(Transfer& t, size_t* extra) {
  std::lock_guard<std::mutex> lk(mu_);
  t.sink = nullptr;
  t.sink_len = 0;
  t.sink_overflow = false;
  t.sink_use = SinkUse::kWhole;
  if (extra) *extra = t.body_buf.size();
  size_t fill = t.sink_fill;
  t.sink_fill = 0;
  hand_over_ends(t);
  return fill;
}

uint64_t Engine::body_received(Transfer& t) {
  std::lock_guard<std::mutex> lk(mu_);
  return t.body_received;
}

int Engine::mark_chunk_wait(Transfer& t) {
  std::lock_guard<std::mutex> lk(mu_);
  if (t.conn == nullptr || loop_closed()) return 0;
  return static_cast<int>(t.conn->mark_chunk_wait(t, kLowatMin, kLowatMax));
}

void Engine::end_chunk_wait(Transfer& t) {
  std::lock_guard<std::mutex> lk(mu_);
  if (t.conn != nullptr) t.conn->clear_chunk_mark();
}

void Engine::expire_chunk_wait(Transfer& t) {
  ConsumerLock lk(*this);  // the read may end the exchange, and the pool start the next
  if (t.conn == nullptr) return;
  t.conn->clear_chunk_mark();
  if (loop_closed()) return;
  uv_update_time(loop_);  // a read that brings bytes restarts the read timer from now
  (void)t.conn->read_for_direct_wait(t);
}

void Engine::raw_take(Transfer& t, std::string& out, size_t max) {
  ConsumerLock lk(*this);
  out.clear();
  size_t n = std::min(max, t.raw_in.size());
  out.assign(t.raw_in, 0, n);
  t.raw_in.erase(0, n);
  if (t.raw_in.empty() && t.conn && !loop_closed()) {
    uv_update_time(loop_);
    t.conn->switched_resume();
    wake_driver();
  }
}

void Engine::raw_write(Transfer& t, const char* data, size_t len) {
  ConsumerLock lk(*this);
  if (loop_closed() || t.conn == nullptr) return;
  uv_update_time(loop_);
  t.conn->switched_write(data, len);
  wake_driver();
}

int Engine::raw_fd(Transfer& t) {
  std::lock_guard<std::mutex> lk(mu_);
  if (loop_closed() || t.conn == nullptr) return -1;
  int fd = t.conn->switched_fd();
  return fd < 0 ? -1 : ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

bool Engine::raw_tls_info(Transfer& t, std::string& version, std::string& cipher,
                          std::string& alpn) {
  std::lock_guard<std::mutex> lk(mu_);
  const TlsSession* tls = t.conn && !loop_closed() ? t.conn->tls_session() : nullptr;
  if (tls == nullptr) return false;
  version = tls->version();
  cipher = tls->cipher();
  alpn = tls->alpn();
  return true;
}

bool Engine::tls_peer_certificate(Transfer& t, std::string& der, bool& verified) {
  std::lock_guard<std::mutex> lk(mu_);
  const TlsSession* tls = t.conn && !loop_closed() ? t.conn->tls_session() : nullptr;
  return tls != nullptr && tls->peer_certificate(der, verified);
}

std::shared_ptr<ConnectionInfo> Engine::trace_addresses(Transfer& t) {
  std::lock_guard<std::mutex> lk(mu_);
  return t.trace_addresses;
}

int Engine::info_fd(ConnectionInfo& info) {
  std::lock_guard<std::mutex> lk(mu_);
  int fd = info.live && !loop_closed() ? info.live->live_fd(true) : -1;
  return fd < 0 ? -1 : ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

bool Engine::info_open(ConnectionInfo& info) {
  std::lock_guard<std::mutex> lk(mu_);
  return info.live && !loop_closed() && info.live->live_fd(false) >= 0;
}

bool Engine::info_readable(ConnectionInfo& info) {
  std::lock_guard<std::mutex> lk(mu_);
  if (info.live == nullptr || loop_closed()) return true;
  int fd = info.live->live_fd(false);
  if (fd < 0) return true;
  struct pollfd p = {fd, POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

void Engine::info_spend(ConnectionInfo& info) {
  ConsumerLock lk(*this);
  if (info.live == nullptr || loop_closed()) return;
  uv_update_time(loop_);
  info.live->spend();
  wake_driver();
}

void Engine::take_trace(Transfer& t, std::vector<int>& out) {
  std::lock_guard<std::mutex> lk(mu_);
  out.insert(out.end(), t.trace_steps.begin() + t.trace_taken, t.trace_steps.end());
  t.trace_taken = t.trace_steps.size();
}

void Engine::trace_resume(Transfer& t) {
  ConsumerLock lk(*this);
  if (loop_closed() || t.conn == nullptr) return;
  uv_update_time(loop_);
  t.conn->pass_trace_gate(t);
  wake_driver();
}

void Engine::connect_resume(Transfer& t, int fd, const Error& err) {
  ConsumerLock lk(*this);
  if (loop_closed() || t.conn == nullptr) {
    if (fd >= 0) ::close(fd);
    return;
  }
  uv_update_time(loop_);
  t.conn->pass_connect_gate(t, fd, err);
  wake_driver();
}

void Engine::resolve_resume(Transfer& t, std::vector<std::string> addresses, const Error& err) {
  ConsumerLock lk(*this);
  if (loop_closed() || t.conn == nullptr) return;
  uv_update_time(loop_);
  t.conn->pass_resolve_gate(t, std::move(addresses), err);
  wake_driver();
}

void Engine::release(Transfer& t) {
  if (t.detached.load(std::memory_order_acquire)) {
    t.released.store(true, std::memory_order_release);  // as try_release
    return;
  }
  ConsumerLock lk(*this);
  release_locked(t);
}

bool Engine::try_release(Transfer& t) {
  if (t.detached.load(std::memory_order_acquire)) {
    // Nothing of the engine's refers to it: release_locked() would only mark
    // it (no connection, queue or watcher; a waiter of another thread on it
    // was satisfied by its end already, and picked by the round that ended it).
    t.released.store(true, std::memory_order_release);
    return true;
  }
  if (!mu_.try_lock()) return false;
  ConsumerLock lk(*this, std::adopt_lock);
  release_locked(t);
  return true;
}

void Engine::release_deferred(std::shared_ptr<Transfer> t) {
  if (t->detached.load(std::memory_order_acquire)) {
    // As try_release: no mutex to take, so a finaliser may do it on the spot
    // (it used to queue it, wake the loop and park the body until a round).
    t->released.store(true, std::memory_order_release);
    return;
  }
  std::lock_guard<std::mutex> lk(deferred_mu_);
  if (!deferred_open_) {
    // Closed: every transfer has failed and no connection reads or writes
    // any more; what the consumer parked for it (a request body, a buffer)
    // may go.
    t->released = true;
    return;
  }
  deferred_.push_back(std::move(t));
  deferred_pending_.store(true, std::memory_order_release);
  // The wakeup handle stays open while deferred_open_ (close() clears it under
  // deferred_mu_ before closing the handle), and uv_async_send is thread-safe.
  uv_async_send(&wakeup_);
}

void Engine::drain_deferred() {
  // Every driving round comes here: it takes deferred_mu_ only when there is
  // something (a ConsumerLock holds it while it wakes the driver, which would
  // otherwise wait for it). A release queued just after this check woke the
  // loop, whose next round takes it.
  if (!deferred_pending_.load(std::memory_order_acquire)) return;
  std::vector<std::shared_ptr<Transfer>> todo;
  {
    std::lock_guard<std::mutex> lk(deferred_mu_);
    todo.swap(deferred_);
    deferred_pending_.store(false, std::memory_order_relaxed);
  }
  for (auto& t : todo) release_locked(*t);
}

void Engine::release_locked(Transfer& t) {
  t.sink = nullptr;
  t.sink_len = 0;
  t.released = true;
  // Wake the consumer's other waiters (another thread, or an awaiting task
  // through the signaled list) before the transfer stops being watched.
  bool watched = t.watched;
  signal(t);
  t.watched = false;
  wake_sleepers(false, picked_);
  if (loop_closed()) return;
  // The driver is woken only when the loop has something to do for this
  // release: its connection, its place in a queue, or (async) the signaled
  // list to hand out. A finished transfer's release (every request, once its
  // body is read) used to wake a polling driver for nothing: an eventfd write,
  // and on the same CPU a preemption by the driver, per HTTP/2 request.
  bool loop_work = watched;
  if (t.conn) {
    t.conn->abandon(t);
    loop_work = true;
  } else {
    for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
      if (it->get() == &t) {
        waiters_.erase(it);
        loop_work = true;
        break;
      }
    }
    for (auto it = delayed_.begin(); it != delayed_.end(); ++it) {
      if (it->get() == &t) {
        delayed_.erase(it);
        loop_work = true;
        break;
      }
    }
  }
  if (loop_work) wake_driver();
}

}  // namespace httprs
