#include "engine.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#endif
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>

#include "connection.h"
#include "scratch.h"
#include "timeouts.h"

namespace httprs {

// ------------------------------------------------------------------ fork()
//
// A child of fork() inherits every engine: the epoll instance and eventfd
// (shared with the parent: same open files), the pooled sockets, and the
// engine state as the forking thread saw it. The child must never make a
// libuv call on that loop (closing a handle deletes it from the *shared* epoll
// set, which breaks the parent), never read from those sockets (the parent
// reads them), and never write on them (TLS close_notify would end the
// parent's session). So: prepare locks every engine (no thread is then inside
// one, the state is consistent and can be copied); the child gives each
// engine a fresh loop and an empty pool, closing only its own copies of the
// inherited descriptors; the parent just unlocks.

namespace {

struct Registry {
  std::mutex mu;
  std::vector<Engine*> engines;
  // Loops of closed engines still running out a getaddrinfo (see finish_loop),
  // under orphan_mu (taken after any engine's mu_, never before).
  std::mutex orphan_mu;
  std::vector<uv_loop_t*> orphans;
  // Loops of closed engines with nothing left in them, for the next engines
  // to take (a fresh loop costs an epoll instance and an eventfd: ~10 us of
  // system calls, a Client() + close() in a loop paid it every time), at most
  // kSpareLoops, each with the fork generation it was made in; under orphan_mu.
  struct Spare {
    uv_loop_t* loop;
    uint64_t generation;
  };
  std::vector<Spare> spares;
};

constexpr size_t kSpareLoops = 4;

// Never destroyed: a reaper thread may still use it during static destruction.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

std::atomic<uint64_t> g_fork_generation{0};

// Close the child's copies of a loop's own descriptors (epoll, eventfd, the
// signal pipe) with plain close(), as the parent's loop must stay registered.
// Fields of the public uv_loop_t (UV_LOOP_PRIVATE_FIELDS, stable in libuv 1.x).
void close_loop_fds_in_child(uv_loop_t* l) {
  if (l->backend_fd >= 0) ::close(l->backend_fd);
  int afd = l->async_io_watcher.fd;
  if (afd >= 0) ::close(afd);
  if (l->async_wfd >= 0 && l->async_wfd != afd) ::close(l->async_wfd);
  for (int fd : l->signal_pipefd)
    if (fd >= 0) ::close(fd);
}

}  // namespace

// Set on the thread whose fork() os.register_at_fork's `before` hook prepared
// (Engine::fork_prepare_all): its pthread_atfork prepare handler then has
// nothing to take. Thread-local, so a fork() from another thread meanwhile
// still takes (waits for) the locks itself.
thread_local bool t_fork_prepared = false;

struct ForkGuard {
  // Take the registry lock, every engine's mu_ and deferred_mu_, and
  // orphan_mu. An engine mutex that is busy makes it let go of everything and
  // retry: a thread holding that mutex may need the registry lock meanwhile
  // (an engine created or freed by Python code run from a TLS callback).
  static void lock_all() {
    Registry& r = registry();
    for (;;) {
      r.mu.lock();
      size_t n = 0;
      while (n < r.engines.size() && r.engines[n]->mu_.try_lock()) n++;
      if (n == r.engines.size()) break;
      while (n > 0) r.engines[--n]->mu_.unlock();
      r.mu.unlock();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    for (Engine* e : r.engines) e->deferred_mu_.lock();
    r.orphan_mu.lock();
  }
  static void prepare() {
    if (t_fork_prepared) return;  // fork_prepare_all() took the locks already
    lock_all();
  }
  static void parent() {
    t_fork_prepared = false;
    Registry& r = registry();
    r.orphan_mu.unlock();
    for (auto it = r.engines.rbegin(); it != r.engines.rend(); ++it) {
      (*it)->deferred_mu_.unlock();
      (*it)->mu_.unlock();
    }
    r.mu.unlock();
  }
  static void child() {
    // Only this thread exists now; the locks taken in prepare() are remade.
    t_fork_prepared = false;
    Registry& r = registry();
    new (&r.mu) std::mutex;
    new (&r.orphan_mu) std::mutex;
    g_fork_generation.fetch_add(1);
    // Spare loops are the parent's (their epoll sets are shared with it):
    // never hand one to an engine here, not even the ones reset just below.
    for (const Registry::Spare& s : r.spares) close_loop_fds_in_child(s.loop);
    r.spares.clear();
    for (Engine* e : r.engines) e->reset_after_fork();
    // The threads reaping closed engines' loops stayed in the parent.
    for (uv_loop_t* l : r.orphans) close_loop_fds_in_child(l);
    r.orphans.clear();
  }
  static void install() {
    static std::once_flag once;
    std::call_once(once, [] { pthread_atfork(&prepare, &parent, &child); });
  }
  // False when the registry could not grow (an exhausted heap).
  static bool add(Engine* e) {
    install();
    Registry& r = registry();
    std::lock_guard<std::mutex> lk(r.mu);
    try {
      r.engines.push_back(e);
    } catch (const std::bad_alloc&) {
      return false;
    }
    return true;
  }
  static void remove(Engine* e) {
    Registry& r = registry();
    std::lock_guard<std::mutex> lk(r.mu);
    r.engines.erase(std::remove(r.engines.begin(), r.engines.end(), e), r.engines.end());
  }
};

uint64_t Engine::fork_generation() { return g_fork_generation.load(); }

void Engine::fork_prepare_all() {
  if (t_fork_prepared) return;
  ForkGuard::install();
  ForkGuard::lock_all();
  t_fork_prepared = true;
}

void Engine::fork_abandon_all() {
  if (t_fork_prepared) ForkGuard::parent();
}

void Engine::reset_after_fork() {
  new (&mu_) std::mutex;
  new (&deferred_mu_) std::mutex;
  new (&cv_) std::condition_variable;
  sleepers_.clear();  // their threads stayed in the parent
  picked_.clear();
  driving_ = false;  // the driving thread, if any, stayed in the parent
  in_poll_ = false;
  poll_until_ms_ = 0;
  // A consumer operation inside the engine at the fork is the parent's: the
  // wake-up it owed, its due check and its deferred-wake mode stay there too
  // (a child's first ConsumerLock would otherwise send the parent's wake-up,
  // or check for one it never asked).
  defer_wakes_ = false;
  wake_deferred_ = false;
  wake_if_due_ = false;
  defer_writes_ = false;
  deferred_writes_.clear();
  writes_in_flight_ = 0;  // their threads stayed in the parent
  servicing_ = false;
  service_again_ = false;
  for (auto& t : signaled_) t->signaled = false;
  signaled_.clear();
  // Bodies the parent's finalisers let go of: in flight at the fork, so they
  // are failed below anyway; no connection of ours touches their buffers.
  for (auto& t : deferred_) t->released = true;
  deferred_.clear();
  deferred_pending_ = false;
  if (loop_closed()) return;
  Error err;
  err.set(ErrorKind::kReadError,
          "the request was in flight when the process forked; its connection stays with the "
          "parent process");
  // The parent's connections: close our copies of their sockets and forget
  // them (leaked with the old loop; freeing their TLS state could take locks
  // another thread held at fork time).
  for (Connection* c : all_) c->drop_after_fork(err);
  all_.clear();
  flush_wanted_.clear();
  idle_.clear();
  n_conns_ = 0;
  n_idle_ = 0;
  pool_work_ = 0;
  auto fail_all = [&](auto& queue) {
    for (auto& t : queue) {
      t->error = err;
      t->phase = Transfer::Phase::kFailed;
      signal(*t);
    }
  };
  fail_all(waiters_);
  fail_all(delayed_);
  waiters_.clear();
  delayed_.clear();
  close_loop_fds_in_child(loop_);
  loop_ = nullptr;  // the old loop's memory is left alone
  if (!closed_ && init_loop()) return;
  closed_ = true;
  loop_state_ = LoopState::kClosed;
  deferred_open_ = false;
}

namespace {

// A spare loop made in this process, or nullptr. One of another generation
// (cannot happen: the fork child handler empties the list) is never reused.
uv_loop_t* take_spare_loop() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lk(r.orphan_mu);
  uint64_t generation = g_fork_generation.load();
  while (!r.spares.empty()) {
    Registry::Spare s = r.spares.back();
    r.spares.pop_back();
    if (s.generation == generation) return s.loop;
    close_loop_fds_in_child(s.loop);  // the memory is left alone, as after fork
  }
  return nullptr;
}

// Keep a closed engine's emptied loop for the next engine, or free it.
void give_back_loop(uv_loop_t* loop) {
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lk(r.orphan_mu);
    if (r.spares.size() < kSpareLoops) {
      r.spares.push_back({loop, g_fork_generation.load()});
      return;
    }
  }
  uv_loop_close(loop);
  delete loop;
}

}  // namespace

size_t Engine::spare_loop_count() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lk(r.orphan_mu);
  return r.spares.size();
}

bool Engine::init_loop() {
  uv_loop_t* loop = take_spare_loop();
  if (loop == nullptr) {
    loop = new (std::nothrow) uv_loop_t;
    if (loop == nullptr) return false;
    if (uv_loop_init(loop) != 0) {
      delete loop;
      return false;
    }
  }
  loop_ = loop;
  uv_async_init(loop_, &wakeup_, &Engine::on_wakeup);
  wakeup_.data = this;
  uv_timer_init(loop_, &pool_timer_);
  pool_timer_.data = this;
  return true;
}

Engine::Engine(const PoolLimits& limits) : loop_(nullptr), limits_(limits) {
  if (!init_loop()) {
    closed_ = true;  // every submit fails with kClosed
    loop_state_ = LoopState::kClosed;
    deferred_open_ = false;
  }
  if (!ForkGuard::add(this)) {
    // No memory to list it for fork(): unusable (a fork child would share
    // its loop with the parent); every submit fails.
    close();
    closed_ = true;
  }
}

Engine::~Engine() {
  ForkGuard::remove(this);
  close();
}

char* Engine::read_buffer(size_t* len) {
  // Allocated on the first read, nothrow (a libuv callback asks): on an
  // exhausted heap that read fails with a clear error (Connection's
  // on_read_error) and the next one tries again.
  if (!rbuf_) rbuf_.reset(scratch_alloc(kReadBufferSize));
  *len = rbuf_ ? kReadBufferSize : 0;
  return rbuf_.get();
}

// ------------------------------------------------------------------ requests

std::shared_ptr<Transfer> Engine::submit(RequestSpec&& spec) {
  auto t = std::make_shared<Transfer>();
  t->spec = std::move(spec);
  ConsumerLock lk(*this);
  drain_deferred();  // a pool slot freed by a dropped response is free now
  if (closed_) {
    t->error.set(ErrorKind::kClosed, "the client has been closed");
    t->phase = Transfer::Phase::kFailed;
    return t;
  }
  uv_update_time(loop_);
  acquire(t);
  if (external_driver_) {
    wake_driver();  // the event loop flushes what its turn's submissions queued, in one write
  } else {
    // Sync: what the request has to write (HTTP/2 frames, which a polling
    // driver used to be woken to flush: an eventfd write and read, and a
    // context switch, per request) leaves from this thread once mu_ is let go
    // of; a polling driver is woken only if the loop needs a run before its
    // poll ends (~ConsumerLock decides, once the write is accounted for).
    flush_connections();
    wake_if_due_ = true;
  }
  return t;
}

void Engine::start_pool_wait(Transfer& t) {
  t.attempts++;
  t.phase = Transfer::Phase::kQueued;
  // 0: none. A timeout of 0 ms is due at once (now is never 0: libuv's
  // clock counts from boot).
  uint64_t ms = 0;
  t.pool_deadline_ms = timeout_ms(t.spec.pool_timeout, &ms) ? uv_now(loop_) + ms : 0;
}

void Engine::acquire(std::shared_ptr<Transfer> t) {
  start_pool_wait(*t);
  waiters_.push_back(std::move(t));
  service_waiters();
  if (!waiters_.empty()) arm_pool_timer();
}

void Engine::retry(std::shared_ptr<Transfer> t) {
  // A new wait for a connection: its own pool timeout, counted from now (the
  // first attempt's deadline may have passed while it was in flight).
  t->head_ready = false;
  t->body_sent = false;
  t->want_body = false;
  t->http2 = false;  // the next connection may speak HTTP/1.1
  t->stream_id = 0;
  t->conn_info.reset();  // the next connection's, once it carries it
  start_pool_wait(*t);
  waiters_.push_front(std::move(t));
  service_waiters();
  if (!waiters_.empty()) arm_pool_timer();
}

void Engine::retry_later(std::shared_ptr<Transfer> t, uint64_t delay_ms) {
  if (delay_ms == 0) {
    retry(std::move(t));
    return;
  }
  t->phase = Transfer::Phase::kQueued;
  t->retry_due_ms = uv_now(loop_) + delay_ms;
  delayed_.push_back(std::move(t));
  arm_pool_timer();
}

// idle_ holds, per pool key, the connections with room for another exchange
// (Connection::has_room(): an HTTP/1.1 connection has room only when idle).
// A request that may not use HTTP/2 (an Upgrade, which stays HTTP/1.1) passes
// over the HTTP/2 connections and leaves them listed.
bool Engine::take_idle(const RequestSpec& spec, Connection** out) {
  bool h2_ok = spec.may_use_http2();
  uint64_t now = uv_now(loop_);
  for (;;) {
    auto it = idle_.find(spec.pool_key);
    if (it == idle_.end()) return false;
    std::vector<Connection*>& listed = it->second;
    size_t i = listed.size();
    while (i > 0 && !h2_ok && listed[i - 1]->is_http2()) i--;
    if (i == 0) return false;
    Connection* c = listed[i - 1];
    listed.erase(listed.begin() + static_cast<long>(i - 1));
    n_idle_--;
    if (c->usable_for_reuse(now)) {
      *out = c;
      return true;
    }
    // usable_for_reuse closed it, or it expired / broke: close it now. An
    // HTTP/2 connection still carrying streams only leaves the list (it
    // comes back when it has room again).
    if (c->state() != Connection::State::kClosing && c->open_exchanges() == 0) c->close(Error());
  }
}

void Engine::service_waiters() {
  if (servicing_) {
    service_again_ = true;
    return;
  }
  servicing_ = true;
  do {
    service_again_ = false;
    for (size_t i = 0; i < waiters_.size();) {
      std::shared_ptr<Transfer> t = waiters_[i];
      Connection* c = nullptr;
      if (take_idle(t->spec, &c)) {
        waiters_.erase(waiters_.begin() + static_cast<long>(i));
        renew_pool_waits(t->spec.pool_key);
        c->assign(std::move(t));
        continue;
      }
      if (t->spec.may_use_http2() && negotiating_http2(t->spec.pool_key)) {
        // The origin's first connection may turn out HTTP/2: wait for it
        // rather than open another (as httpcore does with http2 on).
        i++;
        continue;
      }
      bool room = limits_.max_connections < 0 || n_conns_ < limits_.max_connections;
      if (!room && n_idle_ > 0) {
        // Evict an idle connection of another origin to make room (never an
        // HTTP/2 connection that still carries streams).
        Connection* victim = nullptr;
        for (auto& [key, conns] : idle_) {
          for (Connection* x : conns)
            if (x->open_exchanges() == 0) victim = x;
          if (victim) break;
        }
        if (victim) victim->close(Error());
        room = limits_.max_connections < 0 || n_conns_ < limits_.max_connections;
      }
      if (!room) room = close_a_drain();
      if (room) {
        waiters_.erase(waiters_.begin() + static_cast<long>(i));
        auto* conn = new Connection(this, std::move(t));
        if (conn->state() != Connection::State::kClosing) {
          all_.push_back(conn);
          n_conns_++;
        }
        continue;
      }
      i++;
    }
  } while (service_again_);
  servicing_ = false;
}

void Engine::renew_pool_waits(const std::string& key) {
  // As httpcore: a connection that comes free is offered to every request
  // queued for its origin, and those that lose the race wait again with a
  // whole pool timeout. So the timeout bounds a wait in which the pool makes
  // no progress, not the time spent in the queue: a long queue over a small
  // pool (a gather of many requests) is served, as by httpx.
  uint64_t now = uv_now(loop_);
  for (auto& w : waiters_) {
    uint64_t ms = 0;
    if (w->pool_deadline_ms && w->spec.pool_key == key && timeout_ms(w->spec.pool_timeout, &ms))
      w->pool_deadline_ms = now + ms;
  }
}

bool Engine::close_a_drain() {
  // A connection reading an abandoned response into the void holds a slot
  // only to be reused afterwards: a waiting request takes the slot instead
  // (httpcore closes such a connection at once, so its slot is free).
  for (Connection* c : all_) {
    if (c->draining_for_pool()) {
      c->close(Error());
      return limits_.max_connections < 0 || n_conns_ < limits_.max_connections;
    }
  }
  return false;
}

bool Engine::negotiating_http2(const std::string& key) const {
  for (Connection* c : all_)
    if (c->may_become_http2() && c->key() == key) return true;
  return false;
}

void Engine::on_transfer_detached(Transfer& t) {
  // Async (an event loop drives, a watched transfer): its release also ends
  // the watching, under mu_; left as it is.
  if (!external_driver_ && !t.watched && (t.complete || t.failed()))
    t.detached.store(true, std::memory_order_release);
}

void Engine::on_connection_ready(Connection*) {
  if (!closed_) service_waiters();
}

void Engine::on_connection_released(Connection* c) {
  if (closed_ || (limits_.expire_at_once() && c->open_exchanges() == 0)) {
    // Expired as it goes idle: closed now, as httpcore's pool closes it when
    // the response is (on_connection_closed serves the waiters).
    c->close(Error());
    return;
  }
  // An HTTP/2 connection is offered again each time it has room: list it once.
  std::vector<Connection*>& listed = idle_[c->key()];
  if (std::find(listed.begin(), listed.end(), c) == listed.end()) {
    if (c->open_exchanges() == 0 && !c->is_http2()) c->idle_since_ms = uv_now(loop_);
    listed.push_back(c);
    n_idle_++;
  }
  service_waiters();
  if (limits_.max_keepalive_connections >= 0) {
    while (idle_connections() > limits_.max_keepalive_connections) {
      // Close the longest-idle connection (carrying no exchange).
      Connection* oldest = nullptr;
      for (auto& [key, conns] : idle_)
        for (Connection* x : conns)
          if (x->open_exchanges() == 0 && (!oldest || x->idle_since_ms < oldest->idle_since_ms))
            oldest = x;
      if (!oldest) break;
      oldest->close(Error());
    }
  }
}

void Engine::want_flush(Connection* c) { flush_wanted_.push_back(c); }

bool Engine::defer_write(SocketStream* s) {
  if (!defer_writes_ || loop_closed()) return false;
  deferred_writes_.push_back(s);
  return true;
}

std::vector<SocketStream*> Engine::take_deferred_writes() {
  // A list kept from an earlier batch, so that a request allocates none.
  std::vector<SocketStream*> batch;
  if (!spare_batches_.empty()) {
    batch.swap(spare_batches_.back());
    spare_batches_.pop_back();
  }
  for (SocketStream* s : deferred_writes_)
    if (s->begin_deferred()) batch.push_back(s);  // else closed since: its write was dropped
  deferred_writes_.clear();
  writes_in_flight_ += static_cast<int>(batch.size());
  return batch;
}

bool Engine::end_deferred_writes(std::vector<SocketStream*>&& batch) {
  bool any = !batch.empty();
  bool replayed = false;
  writes_in_flight_ -= static_cast<int>(batch.size());
  // Nothing frees a socket while its write is in flight (its close waits).
  for (SocketStream* s : batch) replayed = s->end_deferred() || replayed;
  batch.clear();
  if (spare_batches_.size() < 4) spare_batches_.push_back(std::move(batch));
  if (any && writes_in_flight_ == 0) cv_.notify_all();  // close() may wait for them
  return replayed;
}

bool Engine::loop_due_before_poll_ends() {
  if (!in_poll_ || loop_closed()) return false;  // nobody polls: the next waiter runs the loop
  if (!flush_wanted_.empty()) return true;
  uv_update_time(loop_);
  // 0: a watcher was queued (a connect, a read or write started), a handle is
  // closing or a callback is pending; else the next timer, maybe one this
  // operation armed (a short timeout).
  int due = uv_backend_timeout(loop_);
  return due == 0 || (due > 0 && uv_now(loop_) + static_cast<uint64_t>(due) < poll_until_ms_);
}

void Engine::send_deferred_writes() {
  for (int round = 1; !deferred_writes_.empty(); round++) {
    std::vector<SocketStream*> batch = take_deferred_writes();
    if (batch.empty()) {
      spare_batches_.push_back(std::move(batch));
      return;
    }
    // Other consumers may take mu_ meanwhile: the wake-up owed stays ours.
    bool owed = wake_deferred_;
    wake_deferred_ = false;
    defer_wakes_ = false;
    mu_.unlock();
    for (SocketStream* s : batch) s->write_deferred_now();
    mu_.lock();
    defer_wakes_ = true;
    wake_deferred_ = wake_deferred_ || owed;
    // What a polling driver's loop read meanwhile was held back and is
    // delivered now: wake the waiters it answers, as its round would have,
    // and the driver, whose own answer it may be (its poll saw the bytes
    // already, when its loop run read them).
    if (end_deferred_writes(std::move(batch))) {
      wake_sleepers(false, picked_);
      wake_driver();
    }
    if (flush_wanted_.empty()) continue;
    if (external_driver_ || round >= kFlushRounds) {
      // HTTP/2 frames held behind these writes (Connection::h2_flush), left
      // to whoever drives, woken for them: an event loop flushes them in its
      // next run (every consumer operation wakes it after its writes anyway;
      // this does not depend on that); a polling driver once this consumer's
      // rounds are spent (under load, other threads' streams start faster
      // than one writer sends them: the consumer that flushed them all could
      // go on for ever before its own wait).
      wake_driver();
    } else {
      // Else in one write now, with the streams started meanwhile.
      defer_writes_ = true;
      flush_connections();
      defer_writes_ = false;
    }
  }
}

void Engine::flush_connections() {
  // A flush may close a connection (on_connection_closed takes it off the
  // list) or ask again: take the list as it is now.
  while (!flush_wanted_.empty()) {
    Connection* c = flush_wanted_.back();
    flush_wanted_.pop_back();
    c->flush_wanted();
  }
}

void Engine::on_connection_closed(Connection* c) {
  flush_wanted_.erase(std::remove(flush_wanted_.begin(), flush_wanted_.end(), c),
                      flush_wanted_.end());
  auto it = idle_.find(c->key());
  if (it != idle_.end()) {
    auto& v = it->second;
    auto pos = std::find(v.begin(), v.end(), c);
    if (pos != v.end()) {
      v.erase(pos);
      n_idle_--;
    }
    if (v.empty()) idle_.erase(it);
  }
  auto pos = std::find(all_.begin(), all_.end(), c);
  if (pos != all_.end()) {
    all_.erase(pos);
    n_conns_--;
  }
  if (!closed_) service_waiters();
}

void Engine::signal(Transfer& t) {
  if (t.watched && !t.signaled) {
    // The list first: if it cannot grow (an exhausted heap), the transfer
    // stays unsignalled, so the failure that follows signals it again
    // instead of finding the flag set and leaving its task waiting.
    signaled_.push_back(t.shared_from_this());
    t.signaled = true;
  }
}

void Engine::watch(Transfer& t) {
  std::lock_guard<std::mutex> lk(mu_);
  t.watched = true;
}

void Engine::drive_externally() {
  std::lock_guard<std::mutex> lk(mu_);
  external_driver_ = true;
}

void Engine::wake() {
  ConsumerLock lk(*this);
  wake_driver();
}

void Engine::wake_driver() {
  // A thread in poll() or an event loop watching the backend fd: make the fd
  // readable. uv_async_send coalesces, so a burst of operations costs one wake.
  if (!loop_closed() && (in_poll_ || external_driver_)) {
    driver_wakes_++;
    if (defer_wakes_) {
      wake_deferred_ = true;  // ~ConsumerLock sends it, once mu_ is let go of
      return;
    }
    uv_async_send(&wakeup_);
  }
}

// The driver polls on this CPU as often as not: woken while the waker still
// holds mu_, it would run at once only to wait for mu_ (two more context
// switches, and the waker's preemption, per operation).
Engine::ConsumerLock::ConsumerLock(Engine& e) : e_(e) {
  e_.mu_.lock();
  e_.defer_wakes_ = true;
  e_.defer_writes_ = true;
}

Engine::ConsumerLock::ConsumerLock(Engine& e, std::adopt_lock_t) : e_(e) { e_.defer_wakes_ = true; }

Engine::ConsumerLock::~ConsumerLock() {
  e_.defer_writes_ = false;
  // Our check stays ours while our writes go out: a consumer taking mu_
  // meanwhile must not clear it and check before those writes are accounted
  // for (an unsent tail or a timer they arm is what may make the loop due).
  bool check_due = e_.wake_if_due_;
  e_.wake_if_due_ = false;
  if (!e_.deferred_writes_.empty()) e_.send_deferred_writes();
  if (check_due || e_.wake_if_due_) {
    e_.wake_if_due_ = false;
    if (e_.loop_due_before_poll_ends()) e_.wake_driver();
  }
  bool wake = e_.wake_deferred_;
  e_.wake_deferred_ = false;
  e_.defer_wakes_ = false;
  Wakeups picked;
  picked.swap(e_.picked_);
  e_.mu_.unlock();
  notify(picked);
  if (!wake) return;
  // close() stops the wakeup handle only after clearing deferred_open_ under
  // deferred_mu_, so the handle is open while this holds it.
  std::lock_guard<std::mutex> lk(e_.deferred_mu_);
  if (e_.deferred_open_) uv_async_send(&e_.wakeup_);
}

// ------------------------------------------------------------------ pool timer

void Engine::arm_pool_timer() {
  uint64_t earliest = 0;
  for (auto& t : waiters_)
    if (t->pool_deadline_ms && (!earliest || t->pool_deadline_ms < earliest))
      earliest = t->pool_deadline_ms;
  for (auto& t : delayed_)
    if (!earliest || t->retry_due_ms < earliest) earliest = t->retry_due_ms;
  if (!earliest) {
    uv_timer_stop(&pool_timer_);
    return;
  }
  uint64_t now = uv_now(loop_);
  uv_timer_start(&pool_timer_, &Engine::on_pool_timer, earliest > now ? earliest - now : 0, 0);
}

void Engine::on_pool_timer(uv_timer_t* h) {
  auto* e = static_cast<Engine*>(h->data);
  uint64_t now = uv_now(e->loop_);
  std::vector<std::shared_ptr<Transfer>> due;
  for (size_t i = 0; i < e->delayed_.size();) {
    if (e->delayed_[i]->retry_due_ms <= now) {
      due.push_back(std::move(e->delayed_[i]));
      e->delayed_.erase(e->delayed_.begin() + static_cast<long>(i));
      continue;
    }
    i++;
  }
  for (auto& t : due) e->retry(std::move(t));
  for (size_t i = 0; i < e->waiters_.size();) {
    auto& t = e->waiters_[i];
    if (t->pool_deadline_ms && t->pool_deadline_ms <= now) {
      std::shared_ptr<Transfer> x = t;
      e->waiters_.erase(e->waiters_.begin() + static_cast<long>(i));
      x->error.set(ErrorKind::kPoolTimeout, "timed out");
      x->phase = Transfer::Phase::kFailed;
      e->signal(*x);
      continue;
    }
    i++;
  }
  e->arm_pool_timer();
}

void Engine::on_wakeup(uv_async_t*) {}

// ------------------------------------------------------------------ consumers

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
  return fill;
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

void Engine::want_all(Transfer& t) {
  ConsumerLock lk(*this);
  t.read_all = true;
  if (t.conn && !loop_closed()) {
    uv_update_time(loop_);
    t.conn->resume_reading(t);
    wake_driver();
  }
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

void Engine::close() {
  std::unique_lock<std::mutex> lk(mu_);
  if (loop_closed()) return;
  if (loop_state_ == LoopState::kClosing) {
    // Another thread is closing (waiting below, the mutex let go of): wait for
    // it to finish, rather than closing the engine's handles a second time.
    cv_.wait(lk, [this] { return loop_closed(); });
    return;
  }
  loop_state_ = LoopState::kClosing;
  drain_deferred();
  closed_ = true;
  std::vector<Connection*> conns = all_;
  Error err;
  err.set(ErrorKind::kClosed, "the client has been closed");
  for (Connection* c : conns) c->close(err);
  // A socket whose deferred write is in flight closes once it is accounted.
  while (writes_in_flight_ > 0) {
    uv_async_send(&wakeup_);  // a driver may poll after its writes
    cv_.wait(lk);
  }
  for (auto& t : waiters_) {
    t->error = err;
    t->phase = Transfer::Phase::kFailed;
    signal(*t);
  }
  waiters_.clear();
  for (auto& t : delayed_) {
    t->error = err;
    t->phase = Transfer::Phase::kFailed;
    signal(*t);
  }
  delayed_.clear();
  // Let a thread that is driving the loop finish its round first.
  while (driving_) {
    uv_async_send(&wakeup_);
    cv_.wait(lk);
  }
  // Release every descriptor now (sockets, epoll, eventfd), not at GC time:
  // close the engine's own handles and let all close callbacks run. From now
  // on release_deferred() drops what it is given (the loop is going away).
  {
    std::lock_guard<std::mutex> dlk(deferred_mu_);
    deferred_open_ = false;
  }
  drain_deferred();
  uv_close(reinterpret_cast<uv_handle_t*>(&wakeup_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&pool_timer_), nullptr);
  finish_loop();
  loop_state_ = LoopState::kClosed;
  // Picked followers leave sleepers_ before any is notified (wake_sleepers).
  wake_sleepers(false, picked_);
  notify(picked_);
  cv_.notify_all();
}

size_t open_handle_count(uv_loop_t* loop) {
  size_t n = 0;
  uv_walk(
      loop, [](uv_handle_t*, void* arg) { ++*static_cast<size_t*>(arg); }, &n);
  return n;
}

void check_loop_released(uv_loop_t* loop, const char* where) {
#ifndef NDEBUG
  size_t n = open_handle_count(loop);
  if (n == 0) return;
  std::fprintf(stderr, "httprs: %s: %zu libuv handle(s) left in a closed engine's loop:\n", where,
               n);
  uv_print_all_handles(loop, stderr);
  std::abort();
#else
  (void)loop;
  (void)where;
#endif
}

namespace {

// Runs a closed engine's loop until its last thread-pool request (a
// getaddrinfo that cannot be cancelled once started) has called back, then
// frees it. Nothing in the loop refers to the engine any more.
void reap_loop(uv_loop_t* loop) {
  while (uv_run(loop, UV_RUN_DEFAULT) != 0) {
  }
  check_loop_released(loop, "reap_loop");
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lk(r.orphan_mu);
    r.orphans.erase(std::remove(r.orphans.begin(), r.orphans.end(), loop), r.orphans.end());
  }
  uv_loop_close(loop);
  delete loop;
}

}  // namespace

// Called by close() with mu_ held, every handle closing: run the close
// callbacks and the cancellations (closed sockets, cancelled connects and
// writes, getaddrinfo requests still queued) without ever blocking. What is
// still alive after that is a resolver request running in the thread pool;
// the loop (its memory and its two descriptors) then lives on in a detached
// thread until that request ends, so close() returns at once (a slow DNS
// server used to block it, and any thread waiting for the mutex, for seconds).
void Engine::finish_loop() {
  uv_loop_t* loop = loop_;
  for (int i = 0; i < 16 && uv_loop_alive(loop); i++) uv_run(loop, UV_RUN_NOWAIT);
  // Every handle of the engine and its connections was closed above; in the
  // rounds just run each close callback ran (a connection frees itself in its
  // last one), so none is left, even when a lookup keeps the loop alive.
  check_loop_released(loop, "Engine::close");
  if (!uv_loop_alive(loop)) {
    loop_ = nullptr;
    give_back_loop(loop);
    return;
  }
  loop_ = nullptr;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> olk(r.orphan_mu);
    r.orphans.push_back(loop);
  }
  try {
    std::thread(reap_loop, loop).detach();
  } catch (...) {
    // No thread: leak the loop rather than block or free memory that the
    // resolver thread will still write to.
  }
}

int Engine::connection_count() {
  std::lock_guard<std::mutex> lk(mu_);
  return n_conns_;
}

int Engine::idle_count() {
  std::lock_guard<std::mutex> lk(mu_);
  return idle_connections();
}

uint64_t Engine::driver_wakes() {
  std::lock_guard<std::mutex> lk(mu_);
  return driver_wakes_;
}

uint64_t Engine::direct_waits() {
  std::lock_guard<std::mutex> lk(mu_);
  return direct_waits_;
}

uint64_t Engine::direct_reads() {
  std::lock_guard<std::mutex> lk(mu_);
  return direct_reads_;
}

int Engine::idle_connections() const {
  // idle_ also lists HTTP/2 connections that carry streams and have room for
  // more: busy, not idle.
  int n = 0;
  for (const auto& [key, conns] : idle_)
    for (const Connection* c : conns)
      if (c->open_exchanges() == 0) n++;
  return n;
}

void Engine::hold_mutex_for_testing(int ms) {
  std::lock_guard<std::mutex> lk(mu_);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

void Engine::hold_mutex_for_testing(const std::function<void()>& held) {
  std::lock_guard<std::mutex> lk(mu_);
  held();
}

namespace {

std::atomic<void (*)(Engine::WaitPoint)> g_wait_hook{nullptr};
std::atomic<uint64_t> g_sleeper_records{0};

inline void at_wait_point(Engine::WaitPoint point) {
  if (auto hook = g_wait_hook.load(std::memory_order_relaxed)) hook(point);
}

}  // namespace

void Engine::set_wait_hook_for_testing(void (*hook)(WaitPoint)) { g_wait_hook.store(hook); }

uint64_t Engine::sleeper_records_made_for_testing() { return g_sleeper_records.load(); }

// ------------------------------------------------------------------ driving

bool Engine::satisfied(const Transfer& t, WaitFor what) {
  if (t.phase == Transfer::Phase::kFailed || t.released) return true;
  switch (what) {
    case WaitFor::kHead:
      return t.head_ready;
    case WaitFor::kBodyData:
      return t.complete || !t.body_buf.empty() || (t.sink != nullptr && t.sink_fill > 0);
    case WaitFor::kComplete:
      return t.complete;
    case WaitFor::kBodyWanted:
      // An early head ends an HTTP/1.1 upload; an HTTP/2 stream's body goes on.
      return t.want_body || (t.head_ready && !t.http2) || t.complete;
    case WaitFor::kTraceStep:
      return t.trace_steps.size() > t.trace_taken || t.head_ready || t.complete || t.want_body;
    case WaitFor::kSinkFull:
      return t.complete || (t.sink != nullptr && t.sink_fill >= t.sink_len);
    case WaitFor::kRawData:
      return !t.raw_in.empty() || t.raw_state != Transfer::RawState::kOpen || t.conn == nullptr;
    case WaitFor::kRawSent:
      return t.raw_unsent == 0 || t.raw_state == Transfer::RawState::kFailed || t.conn == nullptr;
  }
  return true;
}

bool Engine::ready_now(const Transfer& t, WaitFor what) {
  return (what == WaitFor::kHead || what == WaitFor::kComplete) && satisfied(t, what);
}

bool Engine::check(Transfer& t, WaitFor what) {
  std::lock_guard<std::mutex> lk(mu_);
  return satisfied(t, what);
}

// Why libuv >= 1.44 (kMinLibuvVersion, required by meson.build and checked
// when httprs._core is imported): drive_once() and the async bridge poll the
// backend fd themselves for uv_backend_timeout() ms and then run the loop
// with UV_RUN_NOWAIT. libuv adds a watcher started by uv_read_start,
// uv_tcp_connect, ... to the epoll set only inside its next poll; until then
// the watcher is queued, and polling the backend fd would wait for an event
// the kernel was never asked to report. So this design needs
// uv_backend_timeout() to return 0 while watchers are queued, which libuv
// does since 1.44 (PR #3466); before, it returned the next timer's delay and
// a request could sit until its timeout.
static_assert(kMinLibuvVersion == ((1 << 16) | (44 << 8)), "libuv 1.44");

bool libuv_supported(unsigned version) { return version >= kMinLibuvVersion; }

void Engine::run_once() {
  drain_deferred();
  flush_connections();
  uv_run(loop_, UV_RUN_NOWAIT);
  flush_connections();  // streams the callbacks started (retries, a new connection's first)
}

void Engine::drive_once(std::unique_lock<std::mutex>& lk, int timeout_ms, Wakeups& wake) {
  if (loop_closed()) return;
  drain_deferred();
  // What the consumers' calls asked for (HTTP/2 frames) leaves once mu_ is
  // let go of for the poll (defer_write).
  defer_writes_ = true;
  flush_connections();
  defer_writes_ = false;
  std::vector<SocketStream*> batch = take_deferred_writes();
  uv_update_time(loop_);
  int backend = uv_backend_timeout(loop_);
  int timeout = timeout_ms;
  if (backend >= 0 && backend < timeout) timeout = backend;
  if (timeout > 0 || !batch.empty()) {
    poll_until_ms_ = uv_now(loop_) + static_cast<uint64_t>(timeout);
    bool writes = !batch.empty();
    if (!writes) end_deferred_writes(std::move(batch));  // empty: the list is kept for reuse
    struct pollfd p;
    p.fd = uv_backend_fd(loop_);
    p.events = POLLIN;
    p.revents = 0;
    in_poll_ = true;
    take_picked(wake);
    lk.unlock();
    notify(wake);
    bool all_out = true;
    if (writes) {
      for (SocketStream* s : batch) all_out = s->write_deferred_now() && all_out;
      // Accounted for before the poll, not after it: while they are in
      // flight, a loop run by another thread (a direct waiter's) holds back
      // what it reads on these sockets, and the readiness it consumed would
      // not end this poll; the waiters those bytes answer (HTTP/2 streams of
      // other threads) would sleep until it timed out. What the kernel did
      // not take is queued then, and the loop runs at once to write it.
      lk.lock();
      bool replayed = end_deferred_writes(std::move(batch));
      if (loop_closed()) {
        in_poll_ = false;
        return;
      }
      // Held bytes delivered (run the loop, wake their waiters), or HTTP/2
      // frames held behind these writes (flush them): no poll.
      if (replayed || !flush_wanted_.empty()) timeout = 0;
      // The poll starts only now: when it ends, and whether a timer armed
      // meanwhile (a consumer's, whose check for a wake-up read the old end)
      // comes first, is decided again.
      uv_update_time(loop_);
      backend = uv_backend_timeout(loop_);
      if (backend >= 0 && backend < timeout) timeout = backend;
      poll_until_ms_ = uv_now(loop_) + static_cast<uint64_t>(timeout > 0 ? timeout : 0);
      lk.unlock();
    }
    at_wait_point(WaitPoint::kPolling);
    if (timeout > 0 && all_out) ::poll(&p, 1, timeout);
    lk.lock();
    in_poll_ = false;
    if (loop_closed()) return;
  } else {
    end_deferred_writes(std::move(batch));  // empty: the list is kept for reuse
  }
  run_once();
}

// A sync waiter whose HTTP/1.1 request is out and whose connection's socket is
// read by libuv waits on that socket itself (as a blocking client would) rather
// than as a follower of whoever drives: the kernel then wakes the thread whose
// response arrived, and it runs the loop for it. As a follower, every response
// cost two more hand-offs: the driver woken by epoll, and it waking the owner
// (16 threads on one client: ~3.3 context switches per request instead of
// ~1). Anything else (connecting, TLS handshakes, uploads, writes the kernel
// has not taken, paused reads, HTTP/2 streams sharing one socket, trace gates)
// needs the loop's other events and waits the leader/follower way; so does
// every waiter while a connection works for the pool with nobody waiting on
// it (note_pool_work): a waiter polling only its own socket would leave it
// unread (an abandoned response's server blocked on a full socket buffer).
void Engine::note_pool_work(int delta) {
  pool_work_ += delta;
  if (delta <= 0 || pool_work_ != 1) return;
  // Waiters polling only their own sockets would leave the new work unread
  // until their polls end: wake them (once mu_ is let go of: picked_), and
  // their next round drives or follows.
  for (const auto& s : sleepers_)
    if (s->mode == SleepMode::kDirect && !s->woken) list_wakeup(picked_, s, Pick::kDone);
}

int Engine::direct_fd(Transfer& t, WaitFor what) {
  switch (what) {
    case WaitFor::kHead:
    case WaitFor::kBodyData:
    case WaitFor::kComplete:
    case WaitFor::kSinkFull:
      break;
    default:
      return -1;
  }
#ifndef __linux__
  return -1;  // no eventfd: every waiter waits the leader/follower way
#endif
  if (t.conn == nullptr || !flush_wanted_.empty() || pool_work_ > 0) return -1;
  return t.conn->direct_wait_fd(t);
}

Engine::Sleeper::~Sleeper() {
  if (efd >= 0) ::close(efd);
}

void Engine::Sleeper::notify(SleepMode how, Pick pick) {
  if (how == SleepMode::kDirect) {
    uint64_t one = 1;
    ssize_t n = ::write(efd, &one, sizeof one);
    (void)n;  // EAGAIN only at a counter of 2^64-2: it is readable anyway
    return;
  }
#ifdef __linux__
  parked.store(static_cast<uint32_t>(pick), std::memory_order_release);
  ::syscall(SYS_futex, &parked, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
#else
  std::lock_guard<std::mutex> lk(park_mu);
  parked.store(static_cast<uint32_t>(pick), std::memory_order_release);
  park_cv.notify_one();
#endif
}

uint32_t Engine::Sleeper::park_until(std::chrono::steady_clock::time_point deadline) {
#ifdef __linux__
  using clock = std::chrono::steady_clock;
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "a futex word");
  uint32_t word;
  while ((word = parked.load(std::memory_order_acquire)) == 0) {
    auto left = deadline - clock::now();
    if (left <= clock::duration::zero()) return 0;
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    struct timespec ts;
    ts.tv_sec = static_cast<time_t>(ns / 1000000000);
    ts.tv_nsec = static_cast<long>(ns % 1000000000);
    // Returns at once when the word is 1 already (EAGAIN), else when woken,
    // interrupted or timed out: the loop looks again. Any other failure (a
    // seccomp filter's ENOSYS or EPERM) would return at once every time:
    // sleep a little instead of spinning until the deadline.
    if (::syscall(SYS_futex, &parked, FUTEX_WAIT_PRIVATE, 0, &ts, nullptr, 0) != 0 &&
        errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT)
      std::this_thread::sleep_for(std::min<clock::duration>(left, std::chrono::milliseconds(1)));
  }
  return word;
#else
  std::unique_lock<std::mutex> lk(park_mu);
  park_cv.wait_until(lk, deadline, [this] { return parked.load(std::memory_order_acquire) != 0; });
  return parked.load(std::memory_order_acquire);
#endif
}

std::shared_ptr<Engine::ReadFirst> Engine::read_first_record(const std::string& key) {
  std::shared_ptr<ReadFirst>& r = read_first_by_key_[key];
  if (r) return r;
  r = std::make_shared<ReadFirst>();
  if (read_first_by_key_.size() > read_first_sweep_at_) {
    // Forget the origins no connection is open to (only the list holds their
    // records), this one's aside; sweep again once the list has doubled.
    for (auto it = read_first_by_key_.begin(); it != read_first_by_key_.end();) {
      bool unused = it->second.use_count() == 1 && it->first != key;
      it = unused ? read_first_by_key_.erase(it) : std::next(it);
    }
    read_first_sweep_at_ = std::max(kReadFirstKeys, 2 * read_first_by_key_.size());
  }
  return r;
}

bool Engine::read_first(Connection& c) {
  ReadFirst& r = *c.read_first;
  if (r.skip == 0) return true;
  r.skip--;
  return false;
}

void Engine::read_first_found(Connection& c, bool bytes) {
  // Counted over rounds, not in a row: where the answer usually is in, a miss
  // comes now and then (a poll that blocks changes who runs when), and the
  // reads that follow find it again.
  ReadFirst& r = *c.read_first;
  r.tries++;
  if (!bytes) r.misses++;
  if (r.tries < kReadFirstRound) return;
  if (r.misses * 4 >= kReadFirstRound * 3) r.skip = kReadFirstSkip;
  r.tries = 0;
  r.misses = 0;
}

bool Engine::direct_once(std::unique_lock<std::mutex>& lk, Transfer& t, WaitFor what, int fd,
                         int timeout_ms, Wakeups& wake, DirectRounds& rounds) {
  std::shared_ptr<Sleeper> self = sleeper_record();
#ifdef __linux__
  if (self->efd < 0) {
    self->efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->efd < 0) return false;
  }
#else
  return false;  // no eventfd: every waiter waits the leader/follower way
#endif
  drain_deferred();
  // A deferred release may have started a drain or queued a write: then the
  // loop has work besides this socket, and this round drives or follows.
  if (direct_fd(t, what) != fd) return false;
  uv_update_time(loop_);  // the loop may not have run for a while: its timers' delays from now
  int backend = uv_backend_timeout(loop_);
  int timeout = timeout_ms;
  if (backend >= 0 && backend < timeout) timeout = backend;
  // Body bytes read straight into the sink: wake once what the sink takes next
  // is here (up to kLowatMax), not on each segment. With the server on this
  // CPU each wake-up preempted it mid-write (nginx's sendfile hands the socket
  // 64 KiB at a time), and the TCP work of every round (its window update,
  // the next segments' receipt) was then done, and counted, here: a 1 MB
  // stream in 16 rounds cost ~5x one in 2. All of it queued already (the usual
  // case once the server is quicker than the consumer): read, no poll. A
  // streamed chunk waits for it at most kLowatChunkMs, then gets what came;
  // `.content` waits for the whole body anyway.
  using BodyWait = Connection::BodyWait;
  BodyWait body = rounds.low_water == LowWater::kArmed
                      ? t.conn->prepare_body_wait(t, kLowatMin, kLowatMax)
                      : BodyWait::kNone;
  bool marked = body == BodyWait::kMarked;
  if (marked && t.sink_use == SinkUse::kChunk && timeout > kLowatChunkMs) timeout = kLowatChunkMs;
  direct_waits_++;
  // Only the call's first round reads first: one whose read did not end the
  // wait is followed by rounds that poll (and so let go of mu_ and notify
  // what they picked), not by reads under mu_ for as long as bytes come. Not
  // the TLS handshake's rounds (Connection::direct_wait_fd): the server's
  // flight comes a round trip after the client's from a server elsewhere;
  // they poll, and leave the read first to the response's round.
  bool handshake = t.conn->state() == Connection::State::kHandshaking;
  bool first = rounds.read_first && !handshake;
  if (!handshake) rounds.read_first = false;
  if (first && body == BodyWait::kNone && backend != 0 && read_first(*t.conn)) {
    // The answer is usually in already: the server, woken on this CPU by the
    // request's write, preempted the writer there and answered before it got
    // here. Read it as the poll's round would, without the poll (and without
    // letting go of mu_ and taking it again).
    at_wait_point(WaitPoint::kDirectReadingFirst);
    // The read may end the exchange (t.conn cleared, the connection pooled or
    // closing); the object lives on until its handles close in a loop run.
    Connection* conn = t.conn;
    SocketStream::ReadNow got = conn->read_for_direct_wait(t);
    if (got == SocketStream::ReadNow::kRead) {
      read_first_found(*conn, true);
      direct_reads_++;
      wake_sleepers(false, wake);
      return true;
    }
    // Nothing yet (or an end, left to the loop): poll, as without the read.
    if (got == SocketStream::ReadNow::kNothing) read_first_found(*conn, false);
  }
  self->transfer = &t;
  self->what = what;
  self->mode = SleepMode::kDirect;
  self->woken = false;
  self->drive_next = false;
  sleepers_.push_back(self);
  struct pollfd p[2];
  p[0].fd = fd;
  p[0].events = POLLIN;
  p[0].revents = 0;
  p[1].fd = self->efd;
  p[1].events = POLLIN;
  p[1].revents = 0;
  take_picked(wake);
  lk.unlock();
  notify(wake);
  int ready = 0;
  if (body == BodyWait::kQueued) {
    ready = 1;
    p[0].revents = POLLIN;
  } else if (timeout > 0) {
    at_wait_point(WaitPoint::kDirectPolling);
    ready = ::poll(p, 2, timeout);
  }
  bool expired = false;  // this round's marked poll ran out of time
  if (marked) {
    // The default again before anyone else (the loop, a pooled connection's
    // next head) waits on it. By descriptor, before taking mu_: the socket is
    // this waiter's while its transfer reads, as for the poll, but its
    // SocketStream is not to be touched without mu_.
    (void)SocketStream::set_read_lowat(fd, 1);
    if (ready == 0) {
      // Out of time with bytes maybe queued under the mark: read them now,
      // before the loop runs a read timeout that is due over them.
      rounds.low_water = LowWater::kExpired;
      expired = true;
      p[0].revents = POLLIN;
    }
  }
  if (p[1].revents & POLLIN) {
    uint64_t count;
    ssize_t n = ::read(self->efd, &count, sizeof count);
    (void)n;
  }
  lk.lock();
  sleepers_.erase(std::find(sleepers_.begin(), sleepers_.end(), self));
  self->mode = SleepMode::kFollower;
  if (loop_closed() || satisfied(t, what)) return true;
  // Woken only by the eventfd without being satisfied: a wake-up meant for an
  // earlier wait, written after it ended. Nothing to run the loop for.
  if (ready > 0 && p[0].revents == 0) return true;
  // Only its socket is readable and the loop has nothing else due (no timer,
  // no pending callback or close, no deferred write): read it here, as the
  // loop would, without the loop's epoll_wait and its other phases (nor
  // taking in other threads' responses, which would then need a wake-up).
  if (p[0].revents == POLLIN && flush_wanted_.empty() && t.conn != nullptr) {
    uv_update_time(loop_);
    SocketStream::ReadNow got = SocketStream::ReadNow::kLoop;
    if (expired || uv_backend_timeout(loop_) != 0) got = t.conn->read_for_direct_wait(t);
    if (got == SocketStream::ReadNow::kRead ||
        (got == SocketStream::ReadNow::kNothing && !expired)) {
      if (got == SocketStream::ReadNow::kRead) direct_reads_++;  // bytes taken in
      wake_sleepers(false, wake);
      return true;
    }
  }
  run_once();
  // What this round did for other waiters: they are told once mu_ is let go.
  wake_sleepers(false, wake);
  return true;
}

namespace {

// This thread's sleeper record and the fork generation it was made in. Held
// through a pthread key, not a C++ thread_local: a thread_local with a
// destructor is read at thread exit, after Python's join() was told the
// thread is done, and ThreadSanitizer then reports the next thread, reusing
// the stack, freeing that (dynamic TLS) memory as a race.
struct SleeperSlot {
  std::shared_ptr<void> record;
  uint64_t generation = 0;
};

// The key, or nullptr when none could be made (PTHREAD_KEYS_MAX reached):
// every wait then gets a fresh record.
const pthread_key_t* sleeper_key() {
  static pthread_key_t key;
  static bool made = false;
  static std::once_flag once;
  std::call_once(once, [] {
    made = pthread_key_create(&key, [](void* p) { delete static_cast<SleeperSlot*>(p); }) == 0;
  });
  return made ? &key : nullptr;
}

}  // namespace

std::shared_ptr<Engine::Sleeper> Engine::sleeper_record() {
  const pthread_key_t* key = sleeper_key();
  if (key == nullptr) return std::make_shared<Sleeper>();
  auto* slot = static_cast<SleeperSlot*>(pthread_getspecific(*key));
  if (slot == nullptr) {
    slot = new SleeperSlot;
    if (pthread_setspecific(*key, slot) != 0) {
      delete slot;
      return std::make_shared<Sleeper>();
    }
  }
  // A waker has yet to notify it (an earlier wait's wake-up, which would set
  // the next wait's word: Sleeper::pending; the waker's shared_ptr keeps the
  // old record alive for it). Made before a fork(): its eventfd is shared
  // with the parent's thread.
  uint64_t generation = fork_generation();
  auto* record = static_cast<Sleeper*>(slot->record.get());
  if (record == nullptr || record->pending.load(std::memory_order_acquire) != 0 ||
      slot->generation != generation) {
    slot->record = std::make_shared<Sleeper>();
    slot->generation = generation;
    g_sleeper_records.fetch_add(1, std::memory_order_relaxed);
  }
  return std::static_pointer_cast<Sleeper>(slot->record);
}

void Engine::take_picked(Wakeups& wake) {
  if (picked_.empty()) return;
  wake.insert(wake.end(), picked_.begin(), picked_.end());
  picked_.clear();
}

void Engine::notify(Wakeups& wake) {
  for (Wakeup& w : wake) {
    at_wait_point(WaitPoint::kNotifying);
    w.sleeper->notify(w.mode, w.pick);
    // Its last touch of the record (the shared_ptr keeps the memory): the
    // thread may reuse it for its next wait from now on.
    w.sleeper->pending.fetch_sub(1, std::memory_order_release);
    at_wait_point(WaitPoint::kNotified);
  }
  wake.clear();
}

void Engine::list_wakeup(Wakeups& wake, const std::shared_ptr<Sleeper>& s, Pick pick) {
  wake.push_back({s, s->mode, pick});
  s->pending.fetch_add(1, std::memory_order_relaxed);  // read by its thread under mu_
  s->woken = true;
  s->drive_next = pick == Pick::kDrive;
}

void Engine::wake_sleepers(bool hand_off, Wakeups& later) {
  Sleeper* successor = nullptr;
  bool followers_picked = false;
  auto pick = [&later, &followers_picked](const std::shared_ptr<Sleeper>& s, Pick why) {
    list_wakeup(later, s, why);
    followers_picked = followers_picked || s->mode == SleepMode::kFollower;
  };
  for (const auto& s : sleepers_) {
    if (s->woken) continue;
    if (loop_closed() || satisfied(*s->transfer, s->what)) {
      pick(s, Pick::kDone);
    } else if (successor == nullptr && s->mode == SleepMode::kFollower) {
      successor = s.get();
    }
  }
  if (hand_off && successor != nullptr) {
    for (const auto& s : sleepers_)
      if (s.get() == successor) pick(s, Pick::kDrive);
  }
  // A picked follower is off the list from now on: woken, it may leave
  // wait() without mu_ (a direct sleeper takes itself off, after its poll).
  if (followers_picked) {
    sleepers_.erase(std::remove_if(sleepers_.begin(), sleepers_.end(),
                                   [](const std::shared_ptr<Sleeper>& s) {
                                     return s->woken && s->mode == SleepMode::kFollower;
                                   }),
                    sleepers_.end());
  }
}

// Leader/follower: the caller drives the loop when nobody does; otherwise it
// sleeps until the driver wakes it (its transfer is ready, or it is to drive
// next) or its slice ends. Each round wakes only those threads, not every
// follower: with 16 threads on one client a round used to wake all 15. The
// driver notifies them once it has let go of mu_ (for its next poll, or on
// its way out), so they do not wake up only to wait for it. A waiter whose
// response is all it waits for waits on its own socket (direct_fd) instead.
bool Engine::wait(Transfer& t, WaitFor what, int slice_ms) {
  using clock = std::chrono::steady_clock;
  if (ready_now(t, what)) return true;
  std::unique_lock<std::mutex> lk(mu_);
  if (satisfied(t, what)) return true;
  auto deadline = clock::now() + std::chrono::milliseconds(slice_ms);
  // Rounded up: the last fraction of a millisecond is waited for in poll(),
  // not spun through in rounds that may not sleep (a 0 ms timeout).
  auto remaining_ms = [&deadline] {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
  };
  Wakeups wake;
  bool done = false;
  // Direct rounds left in this call: a bound against spinning on a socket
  // that stays readable while nothing reads it (never seen; each round
  // otherwise takes in what woke it), after which the call drives instead.
  int direct_rounds = 256;
  DirectRounds rounds;  // see direct_once
  // Picked to drive next (Pick::kDrive) and not driving: the seat is this
  // thread's, to take or to hand on before it waits otherwise or leaves.
  bool seat = false;
  for (;;) {
    if (loop_closed()) {
      done = true;  // everything in flight has failed with kClosed
      break;
    }
    int fd = direct_rounds > 0 ? direct_fd(t, what) : -1;
    if (seat && fd >= 0) {
      wake_sleepers(true, wake);
      seat = false;
    }
    bool direct = fd >= 0 && direct_once(lk, t, what, fd, remaining_ms(), wake, rounds);
    // Refused (no eventfd, or the loop got other work): drive or follow for
    // the rest of this call, so `leaving` below does not hand the driver's
    // seat on every round to a thread that will not take it.
    if (fd >= 0 && !direct) direct_rounds = 0;
    if (direct) {
      direct_rounds--;
    } else if (!driving_) {
      seat = false;
      driving_ = true;
      drive_once(lk, remaining_ms(), wake);
      driving_ = false;
      // Leaving the driver's seat: the transfer is done, the slice is over, or
      // the next round waits directly. One follower, if any, drives next.
      bool leaving = satisfied(t, what) || loop_closed() || clock::now() >= deadline ||
                     (direct_rounds > 0 && direct_fd(t, what) >= 0);
      wake_sleepers(leaving, wake);
      cv_.notify_all();
    } else if (!wake.empty() || !picked_.empty()) {
      // A direct round picked other waiters: tell them before sleeping as a
      // follower, which may last until this thread's slice ends.
      take_picked(wake);
      lk.unlock();
      notify(wake);
      lk.lock();
      continue;
    } else {
      seat = false;  // another thread drives
      std::shared_ptr<Sleeper> self = sleeper_record();
      self->transfer = &t;
      self->what = what;
      self->mode = SleepMode::kFollower;
      self->woken = false;
      self->drive_next = false;
      self->parked.store(0, std::memory_order_relaxed);
      sleepers_.push_back(self);
      lk.unlock();
      at_wait_point(WaitPoint::kParking);
      uint32_t got = self->park_until(deadline);
      at_wait_point(WaitPoint::kUnparked);
      // Picked (so off the list) because its wait is over, and done by the
      // atomics: no mu_ to take. Picked to drive, it takes mu_ in any case.
      if (got == static_cast<uint32_t>(Pick::kDone) && ready_now(t, what)) return true;
      lk.lock();
      at_wait_point(WaitPoint::kRelocked);
      if (!self->woken) {  // not picked: still listed
        sleepers_.erase(std::find(sleepers_.begin(), sleepers_.end(), self));
      } else {
        seat = self->drive_next;  // picked to drive (maybe as its slice ended)
      }
    }
    if (satisfied(t, what)) {
      done = true;
      break;
    }
    if (clock::now() >= deadline) break;
  }
  // Leaving with the seat untaken (its transfer done meanwhile, or its slice
  // over): hand it on, as the driver that picked this thread did.
  if (seat && !driving_) wake_sleepers(true, wake);
  take_picked(wake);
  lk.unlock();
  notify(wake);
  return done;
}

int Engine::backend_fd() const { return loop_closed() ? -1 : uv_backend_fd(loop_); }

int Engine::backend_timeout() {
  std::lock_guard<std::mutex> lk(mu_);
  if (loop_closed()) return -1;
  uv_update_time(loop_);
  return uv_backend_timeout(loop_);
}

void Engine::run_nowait(std::vector<std::shared_ptr<Transfer>>& signaled) {
  Wakeups wake;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!loop_closed()) run_once();
    for (auto& t : signaled_) t->signaled = false;
    signaled.swap(signaled_);
    signaled_.clear();
    take_picked(wake);
  }
  notify(wake);
}

}  // namespace httprs
