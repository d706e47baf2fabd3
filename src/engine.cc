#include "engine.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <thread>

#include "connection.h"
#include "scratch.h"
#include "timeouts.h"
#include "tls_gate.h"

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
    TlsGate::close();  // last: a pass never takes the locks above
  }
  static void prepare() {
    if (t_fork_prepared) return;  // fork_prepare_all() took the locks already
    lock_all();
  }
  static void parent() {
    t_fork_prepared = false;
    TlsGate::open();
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
    TlsGate::reset_in_child();
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

void Engine::prepare_process() {
  // libuv's first uv_loop_init in a process makes the pipe its signal handling
  // locks with, and calls abort() when it cannot: a first client made in a process
  // out of descriptors (EMFILE) would kill it. Done here, once, at import.
  uv_loop_t loop;
  if (uv_loop_init(&loop) == 0) uv_loop_close(&loop);
}

bool Engine::init_loop() {
  uv_loop_t* loop = take_spare_loop();
  if (loop == nullptr) {
    loop = new (std::nothrow) uv_loop_t;
    start_error_ = loop == nullptr ? UV_ENOMEM : uv_loop_init(loop);
    if (start_error_ != 0) {
      delete loop;
      return false;
    }
  }
  // A new loop's first async handle makes its eventfd: that can fail too (EMFILE).
  start_error_ = uv_async_init(loop, &wakeup_, &Engine::on_wakeup);
  if (start_error_ != 0) {
    uv_loop_close(loop);  // (no handle on it yet)
    delete loop;
    return false;
  }
  loop_ = loop;
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
    if (start_error_ != 0) {
      t->error.set(ErrorKind::kConnectError,
                   errno_message(start_error_) + " (no event loop for the client's connections)");
    } else {
      t->error.set(ErrorKind::kClosed, "the client has been closed");
    }
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
      bool fresh_only = t->resend == Transfer::Resend::kAwaitingConnection;
      if (!fresh_only && take_idle(t->spec, &c)) {
        waiters_.erase(waiters_.begin() + static_cast<long>(i));
        renew_pool_waits(t->spec.pool_key);
        c->assign(std::move(t));
        continue;
      }
      if (!fresh_only && t->spec.may_use_http2() && negotiating_http2(t->spec.pool_key)) {
        // The origin's first connection may turn out HTTP/2: wait for it
        // rather than open another (as httpcore does with http2 on).
        i++;
        continue;
      }
      bool room = limits_.max_connections < 0 || n_conns_ < limits_.max_connections;
      if (!room && n_idle_ > 0) {
        // Evict an idle connection to make room: of another origin (this one's
        // would have been taken), or of this one for a resend that needs a new
        // connection; never an HTTP/2 connection that still carries streams.
        Connection* victim = nullptr;
        for (auto& [key, conns] : idle_) {
          for (Connection* x : conns)
            if (x->open_exchanges() == 0) victim = x;
          if (victim) break;
        }
        if (victim) victim->close(Error());
        room = limits_.max_connections < 0 || n_conns_ < limits_.max_connections;
      }
      if (!room) room = close_a_spare(t->spec.pool_key);
      if (room) {
        waiters_.erase(waiters_.begin() + static_cast<long>(i));
        if (fresh_only) t->resend = Transfer::Resend::kOnNewConnection;
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

bool Engine::close_a_spare(const std::string& key) {
  // A connection that holds a slot only to be reused afterwards: reading an
  // abandoned response into the void, or still connecting for a request that
  // was cancelled. A request waiting for a slot takes it instead (httpcore
  // closes the one and stops the other at once, so its slot is free); a connect
  // to the waiter's own origin goes on, as it will serve the waiter.
  for (Connection* c : all_) {
    if (c->draining_for_pool() || (c->connecting_for_pool() && c->key() != key)) {
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

uint64_t Engine::marked_waits() {
  std::lock_guard<std::mutex> lk(mu_);
  return marked_waits_;
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

}  // namespace httprs
