// How a thread waits for its transfer: the loop driven by one waiter at a time
// (leader/follower), direct reads of a ready connection, sleepers woken by
// name. See docs/ARCHITECTURE.md ("Driving the loop").
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
#include <mutex>
#include <thread>

#include "connection.h"
#include "engine.h"
#include "timeouts.h"

namespace httprs {

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
      return t.complete || !t.body_buf.empty() || (t.sink != nullptr && t.sink_fill > 0) ||
             t.frame_end_waits();
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

void Engine::drive_once(std::unique_lock<std::mutex>& lk, int timeout_ms, Wakeups& wake,
                        Transfer* waiter) {
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
    // The waiter's HTTP/2 body: woken once a good part of it is in, not on each
    // frame (as a direct HTTP/1.1 wait, a server on this CPU was preempted mid-
    // write for every 16 KiB record). Not while anything is to be written.
    Connection* marked = nullptr;
    if (!writes && waiter != nullptr && waiter->conn != nullptr && !waiter->h2_unmarked &&
        waiter->conn->mark_h2_wait(*waiter, kLowatMin, kLowatMax)) {
      marked = waiter->conn;
      marked_waits_++;
      if (timeout > kLowatLayeredMs) {
        timeout = kLowatLayeredMs;
        poll_until_ms_ = uv_now(loop_) + static_cast<uint64_t>(timeout);
      }
    }
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
    int ready = -1;
    if (timeout > 0 && all_out) ready = ::poll(&p, 1, timeout);
    lk.lock();
    in_poll_ = false;
    if (loop_closed()) return;
    // Still the waiter's (else its stream's end took the mark off): what came
    // under the mark is read before the loop's timers run.
    if (marked != nullptr && waiter->conn == marked) {
      uv_update_time(loop_);
      // Out of time, yet bytes had come under the mark: the server waits for
      // an answer (a PING's, a SETTINGS ack) or sent what ends the stream
      // early; this response's later polls are not marked.
      if (marked->end_h2_wait() && ready == 0) waiter->h2_unmarked = true;
    }
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
  if (body == BodyWait::kMarked && t.sink_use == SinkUse::kChunk && timeout > kLowatChunkMs)
    timeout = kLowatChunkMs;
  if (body == BodyWait::kMarked && t.conn->layered() && timeout > kLowatLayeredMs)
    timeout = kLowatLayeredMs;
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
  if (first && body == BodyWait::kNone && backend != 0 && read_first(*t.conn) &&
      direct_read_first(t, wake))
    return true;
  DirectPoll polled = direct_poll(lk, self, t, what, fd, body == BodyWait::kQueued,
                                  body == BodyWait::kMarked, timeout, wake);
  if (polled.expired) rounds.low_water = LowWater::kExpired;
  if (loop_closed() || satisfied(t, what)) return true;
  // Woken only by the eventfd without being satisfied: a wake-up meant for an
  // earlier wait, written after it ended. Nothing to run the loop for.
  if (polled.ready > 0 && polled.revents == 0) return true;
  direct_take_in(t, polled, wake);
  return true;
}

bool Engine::direct_read_first(Transfer& t, Wakeups& wake) {
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
  return false;
}

Engine::DirectPoll Engine::direct_poll(std::unique_lock<std::mutex>& lk,
                                       const std::shared_ptr<Sleeper>& self, Transfer& t,
                                       WaitFor what, int fd, bool queued, bool marked, int timeout,
                                       Wakeups& wake) {
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
  DirectPoll out;
  if (queued) {
    out.ready = 1;
    p[0].revents = POLLIN;
  } else if (timeout > 0) {
    at_wait_point(WaitPoint::kDirectPolling);
    out.ready = ::poll(p, 2, timeout);
  }
  if (marked) {
    // The default again before anyone else (the loop, a pooled connection's
    // next head) waits on it. By descriptor, before taking mu_: the socket is
    // this waiter's while its transfer reads, as for the poll, but its
    // SocketStream is not to be touched without mu_.
    (void)SocketStream::set_read_lowat(fd, 1);
    if (out.ready == 0) {
      // Out of time with bytes maybe queued under the mark: read them now,
      // before the loop runs a read timeout that is due over them.
      out.expired = true;
      p[0].revents = POLLIN;
    }
  }
  if (p[1].revents & POLLIN) {
    uint64_t count;
    ssize_t n = ::read(self->efd, &count, sizeof count);
    (void)n;
  }
  out.revents = p[0].revents;
  lk.lock();
  sleepers_.erase(std::find(sleepers_.begin(), sleepers_.end(), self));
  self->mode = SleepMode::kFollower;
  return out;
}

void Engine::direct_take_in(Transfer& t, const DirectPoll& polled, Wakeups& wake) {
  // Only its socket is readable and the loop has nothing else due (no timer,
  // no pending callback or close, no deferred write): read it here, as the
  // loop would, without the loop's epoll_wait and its other phases (nor
  // taking in other threads' responses, which would then need a wake-up).
  if (polled.revents == POLLIN && flush_wanted_.empty() && t.conn != nullptr) {
    uv_update_time(loop_);
    SocketStream::ReadNow got = SocketStream::ReadNow::kLoop;
    if (polled.expired || uv_backend_timeout(loop_) != 0) got = t.conn->read_for_direct_wait(t);
    if (got == SocketStream::ReadNow::kRead ||
        (got == SocketStream::ReadNow::kNothing && !polled.expired)) {
      if (got == SocketStream::ReadNow::kRead) direct_reads_++;  // bytes taken in
      wake_sleepers(false, wake);
      return;
    }
  }
  run_once();
  // What this round did for other waiters: they are told once mu_ is let go.
  wake_sleepers(false, wake);
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
      drive_round(lk, t, what, deadline, direct_rounds > 0, wake);
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
      if (follow(lk, t, what, deadline, seat)) return true;
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

// wait()'s round as the driver: one round of the loop, then the seat handed
// on to one follower if this thread leaves it: its transfer is done, its
// slice is over, or its next round waits directly (`direct_next`).
void Engine::drive_round(std::unique_lock<std::mutex>& lk, Transfer& t, WaitFor what,
                         std::chrono::steady_clock::time_point deadline, bool direct_next,
                         Wakeups& wake) {
  using clock = std::chrono::steady_clock;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
  driving_ = true;
  drive_once(lk, left > 0 ? static_cast<int>(left) : 0, wake, &t);
  driving_ = false;
  // Leaving the driver's seat: the transfer is done, the slice is over, or
  // the next round waits directly. One follower, if any, drives next.
  bool leaving = satisfied(t, what) || loop_closed() || clock::now() >= deadline ||
                 (direct_next && direct_fd(t, what) >= 0);
  wake_sleepers(leaving, wake);
  cv_.notify_all();
}

// wait()'s round as a follower: parked until the driver picks this thread
// (its transfer ready, or to drive next: `seat`) or the slice ends. True when
// the wait is over and mu_ was not taken again (picked as done).
bool Engine::follow(std::unique_lock<std::mutex>& lk, Transfer& t, WaitFor what,
                    std::chrono::steady_clock::time_point deadline, bool& seat) {
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
  return false;
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
