// The consumer's view of a transfer, under ThreadSanitizer.
//
// The Cython bridge reads a transfer's completion flags (phase, head_ready,
// complete, want_body, released) without the engine mutex, while another
// thread drives the loop and writes them; once it has seen head_ready it reads
// head, once it has seen a failed phase it reads error. This program does the
// same from plain threads against a local server, so a flag that is not an
// atomic (or data written after its flag) is a reported data race. It also
// runs threads that wait on their own sockets (Engine::wait's direct rounds)
// while responses arrive in bursts, and checks that no waiter is left asleep;
// and a request write made without the mutex (a deferred write) while another
// thread runs the loop, or closes the engine.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "engine.h"
#include "h2_test_server.h"
#include "socket_stream.h"

using namespace httprs;

namespace {

// A loopback listener: each accepted connection is served by `handler` on a
// thread of its own, all joined once the listener is shut down.
class Listener {
 public:
  explicit Listener(std::function<void(int)> handler) : handler_(std::move(handler)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~Listener() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    for (std::thread& t : conns_) t.join();
  }
  int port() const { return port_; }

 private:
  void serve() {
    for (;;) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      conns_.emplace_back([this, c] { handler_(c); });
    }
  }
  std::function<void(int)> handler_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::vector<std::thread> conns_;  // joined after the listener is shut down
};

// Reads request heads on `c` and answers each with `response` once `before`
// has run (false: stop answering), until the peer closes.
void answer_each(int c, const std::function<bool()>& before, const std::string& response) {
  std::string buf;
  char tmp[4096];
  for (;;) {
    ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
    if (n <= 0) break;
    buf.append(tmp, static_cast<size_t>(n));
    size_t end;
    bool go_on = true;
    while (go_on && (end = buf.find("\r\n\r\n")) != std::string::npos) {
      buf.erase(0, end + 4);
      go_on = before();
      if (go_on) ::send(c, response.data(), response.size(), MSG_NOSIGNAL);
    }
    if (!go_on) break;
  }
  ::close(c);
}

// Answers every request on a connection with a small keep-alive response,
// after a short pause so the head arrives while the consumer is polling.
class Server {
 public:
  int port() const { return listener_.port(); }

 private:
  static void answer(int c) {
    answer_each(
        c,
        [] {
          ::usleep(2000);
          return true;
        },
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: yes\r\n\r\nhello");
  }
  Listener listener_{&Server::answer};
};

RequestSpec make_spec(int port) {
  RequestSpec spec;
  spec.pool_key = "http://127.0.0.1:" + std::to_string(port);
  spec.connect_host = "127.0.0.1";
  spec.connect_port = port;
  spec.head = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  spec.read_timeout = 5;
  spec.connect_timeout = 5;
  return spec;
}

// One thread drives until the transfer completes; this thread polls the flags
// without the mutex, as the bridge does, and reads what they announce.
void exchange(Engine& engine, int port) {
  std::shared_ptr<Transfer> t = engine.submit(make_spec(port));
  std::thread driver([&] {
    while (!engine.wait(*t, WaitFor::kComplete, 50)) {
    }
  });
  bool saw_head = false;
  while (!t->complete && !t->failed()) {
    if (!saw_head && t->head_ready) {
      saw_head = true;
      CHECK(t->head.status == 200);
    }
    (void)t->want_body;
    (void)t->released;
    std::this_thread::yield();
  }
  driver.join();
  CHECK(!t->failed());
  if (t->failed()) std::fprintf(stderr, "failed: %s\n", t->error.message.c_str());
  CHECK(t->head_ready);
  CHECK(t->head.status == 200);
  std::string body;
  engine.take_body(*t, body);
  CHECK_EQ_STR(body, "hello");
  engine.release(*t);
}

// Another thread holding the engine mutex: from construction (it holds it
// when the constructor returns: the flag is set with the mutex taken) until
// let_go() or destruction. A caller that waits for the mutex meanwhile waits
// until kGiveUpAfter (then the holder lets go, and sets gave_up), so a test
// whose call should not wait fails on what that call returned, not by hanging.
class MutexHeld {
 public:
  explicit MutexHeld(Engine& engine)
      : holder_([this, &engine] {
          engine.hold_mutex_for_testing([this] {
            holding_ = true;
            auto until = std::chrono::steady_clock::now() + kGiveUpAfter;
            while (!done_ && std::chrono::steady_clock::now() < until) std::this_thread::yield();
            gave_up_ = !done_;
          });
        }) {
    while (!holding_) std::this_thread::yield();
  }
  ~MutexHeld() { let_go(); }
  MutexHeld(const MutexHeld&) = delete;
  MutexHeld& operator=(const MutexHeld&) = delete;
  void let_go() {
    done_ = true;
    if (holder_.joinable()) holder_.join();
  }
  bool gave_up() const { return gave_up_; }

 private:
  static constexpr std::chrono::seconds kGiveUpAfter{20};
  std::atomic<bool> holding_{false};
  std::atomic<bool> done_{false};
  std::atomic<bool> gave_up_{false};
  std::thread holder_;  // last: started once the flags are made
};

// try_release never waits for the mutex (Cython calls it with the GIL held):
// while another thread holds it, it returns false at once and leaves the
// transfer as it is; once the mutex is free it releases the transfer and the
// finished exchange's connection goes back to the pool.
void try_release_never_waits(int port) {
  PoolLimits limits;
  Engine engine(limits);
  std::shared_ptr<Transfer> t = engine.submit(make_spec(port));
  while (!engine.wait(*t, WaitFor::kComplete, 50)) {
  }
  CHECK(t->complete && !t->failed());
  {
    MutexHeld held(engine);
    CHECK(!engine.try_release(*t));
    CHECK(!t->released);
    held.let_go();
    CHECK(!held.gave_up());  // try_release did not wait for the holder
  }
  CHECK(engine.idle_count() == 0);  // the connection is still the transfer's
  CHECK(engine.try_release(*t));
  CHECK(t->released);
  CHECK(engine.idle_count() == 1);
  engine.close();
}

// Six threads run `exchange` eight times each; every run must return true.
void from_six_threads(const std::function<bool()>& exchange) {
  constexpr int kThreads = 6;
  constexpr int kEach = 8;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([&] {
      for (int j = 0; j < kEach; j++) ok += exchange() ? 1 : 0;
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(ok.load() == kThreads * kEach);
}

// Several threads share the engine, each waiting for its own transfers as the
// sync client does: one drives, the others sleep until the driver hands them
// their ready transfer or the driving (the sleepers list under the mutex).
void concurrent_exchanges(Engine& engine, int port) {
  from_six_threads([&engine, port] {
    std::shared_ptr<Transfer> t = engine.submit(make_spec(port));
    while (!engine.wait(*t, WaitFor::kComplete, 50)) {
    }
    std::string body;
    if (!t->failed()) engine.take_body(*t, body);
    bool ok = !t->failed() && body == "hello";
    engine.release(*t);
    return ok;
  });
}

// Holds every response until `kThreads` requests are waiting (one per
// connection), then answers them all at once, round after round: whichever
// waiter runs the loop first takes in several responses, and must wake the
// others, which wait on their own sockets (Engine::wait's direct rounds).
class BurstServer {
 public:
  static constexpr int kThreads = 6;
  ~BurstServer() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
  }
  int port() const { return listener_.port(); }

 private:
  // Wait until every connection has a request in this round (or stopping).
  bool gather() {
    std::unique_lock<std::mutex> lk(mu_);
    uint64_t round = round_;
    if (++arrived_ == kThreads) {
      arrived_ = 0;
      round_++;
      cv_.notify_all();
      return true;
    }
    cv_.wait(lk, [&] { return round_ != round || stopping_; });
    return !stopping_;
  }
  void answer(int c) {
    answer_each(
        c, [this] { return gather(); }, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nburst");
  }
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t round_ = 0;
  bool stopping_ = false;
  // Last: shut down (its threads joined) first, after the destructor's body
  // released any connection thread waiting in gather().
  Listener listener_{[this](int c) { answer(c); }};
};

// Each thread waits with a 10 s slice: a waiter nobody woke would sit out its
// slice, so a round that takes seconds is a lost wake-up.
void burst_exchanges() {
  BurstServer server;
  Engine engine{PoolLimits()};
  constexpr int kRounds = 40;
  std::atomic<int> ok{0};
  std::atomic<int> slow{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < BurstServer::kThreads; i++) {
    threads.emplace_back([&] {
      for (int j = 0; j < kRounds; j++) {
        std::shared_ptr<Transfer> t = engine.submit(make_spec(server.port()));
        auto start = std::chrono::steady_clock::now();
        bool done = engine.wait(*t, WaitFor::kComplete, 10000);
        if (std::chrono::steady_clock::now() - start > std::chrono::seconds(3)) slow++;
        std::string body;
        if (done && !t->failed()) engine.take_body(*t, body);
        if (body == "burst") ok++;
        engine.release(*t);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(ok.load() == BurstServer::kThreads * kRounds);
  CHECK(slow.load() == 0);
  // Keep-alive connections: after the first round every response was awaited
  // on its own socket (the first round connects, under a driver).
  CHECK(engine.direct_waits() > 0);
  engine.close();
}

// A drain started while another thread waits on its own socket with a long
// slice: the waiter is told to leave its poll, so the loop reads the abandoned
// response (~0.1 s) and the connection returns to the pool, instead of the
// drain waiting for the other thread's response (3 s) and timing out.
void drain_while_a_thread_waits_directly() {
  Listener slow([](int c) {
    int answered = 0;
    answer_each(
        c,
        [&answered] {
          if (answered++ > 0) std::this_thread::sleep_for(std::chrono::seconds(3));
          return true;
        },
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  Listener drained([](int c) {
    answer_each(
        c,
        [c] {
          std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
          head += std::string(10, 'x');
          ::send(c, head.data(), head.size(), MSG_NOSIGNAL);
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          return true;
        },
        std::string(990, 'y'));
  });
  Engine engine{PoolLimits()};
  std::shared_ptr<Transfer> first = engine.submit(make_spec(slow.port()));
  while (!engine.wait(*first, WaitFor::kComplete, 10000)) {
  }
  engine.release(*first);
  std::thread waiter([&] {
    std::shared_ptr<Transfer> t = engine.submit(make_spec(slow.port()));  // reused: direct
    while (!engine.wait(*t, WaitFor::kComplete, 10000)) {
    }
    engine.release(*t);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the waiter is in poll()
  std::shared_ptr<Transfer> abandoned = engine.submit(make_spec(drained.port()));
  while (!engine.wait(*abandoned, WaitFor::kHead, 10000)) {
  }
  engine.release(*abandoned);  // 990 bytes left: the connection drains them
  auto start = std::chrono::steady_clock::now();
  while (engine.idle_count() < 1 &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(2)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(engine.idle_count() >= 1);  // drained and pooled while the waiter still waits
  waiter.join();
  engine.close();
}

// A deferred write in flight (SocketStream::write_deferred_now, made without
// the engine mutex), parked by the test hook right after its kernel call.
struct FlightPark {
  std::mutex mu;
  std::condition_variable cv;
  bool armed = false;
  bool parked = false;
  bool go = false;
};
FlightPark g_park;

void park_in_flight() {
  std::unique_lock<std::mutex> lk(g_park.mu);
  if (!g_park.armed) return;
  g_park.armed = false;
  g_park.parked = true;
  g_park.cv.notify_all();
  g_park.cv.wait(lk, [] { return g_park.go; });
}

void arm_park() {
  std::lock_guard<std::mutex> lk(g_park.mu);
  g_park.armed = true;
  g_park.parked = false;
  g_park.go = false;
}

void await_parked() {
  std::unique_lock<std::mutex> lk(g_park.mu);
  g_park.cv.wait(lk, [] { return g_park.parked; });
}

void release_park() {
  std::lock_guard<std::mutex> lk(g_park.mu);
  g_park.go = true;
  g_park.cv.notify_all();
}

// One whole exchange on `engine` (so a connection to `port` is pooled).
void fetch_ok(Engine& engine, int port) {
  std::shared_ptr<Transfer> t = engine.submit(make_spec(port));
  while (!engine.wait(*t, WaitFor::kComplete, 50)) {
  }
  CHECK(t->complete && !t->failed());
  engine.release(*t);
}

// The request on a pooled connection leaves once submit() has let go of the
// engine mutex. While it is in flight the answer arrives and another thread
// runs the loop: the read is held back, then delivered once the write is
// accounted for, and the exchange ends as if the write had gone out at once
// (the connection back in the pool, reused by the next request).
void answer_read_while_the_write_is_in_flight() {
  Listener quick([](int c) {
    answer_each(
        c, [] { return true; }, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  Listener silent([](int c) {  // reads, never answers
    char buf[4096];
    while (::recv(c, buf, sizeof buf, 0) > 0) {
    }
    ::close(c);
  });
  Engine engine{PoolLimits()};
  fetch_ok(engine, quick.port());
  uint64_t held = SocketStream::reads_held_for_testing();
  arm_park();
  std::shared_ptr<Transfer> t;
  std::thread writer([&] { t = engine.submit(make_spec(quick.port())); });
  await_parked();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the answer is in
  // This thread drives (its own request goes nowhere): the loop reads the
  // parked write's socket.
  std::shared_ptr<Transfer> other = engine.submit(make_spec(silent.port()));
  CHECK(!engine.wait(*other, WaitFor::kHead, 100));
  CHECK(SocketStream::reads_held_for_testing() > held);
  release_park();
  writer.join();
  while (!engine.wait(*t, WaitFor::kComplete, 50)) {
  }
  CHECK(t->complete && !t->failed() && t->head.status == 200);
  std::string body;
  engine.take_body(*t, body);
  CHECK_EQ_STR(body, "ok");
  engine.release(*t);
  CHECK(engine.idle_count() == 1);  // back in the pool
  int connections = engine.connection_count();
  fetch_ok(engine, quick.port());
  CHECK(engine.connection_count() == connections);  // and reused
  engine.release(*other);
  engine.close();
}

// close() from another thread while a deferred write is in flight waits for
// it: the socket closes once the write is accounted for (the descriptor is in
// use until then), the request fails as closed, no handle is left (a debug
// build aborts at close otherwise).
void close_while_the_write_is_in_flight() {
  Listener quick([](int c) {
    answer_each(
        c, [] { return true; }, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  Engine engine{PoolLimits()};
  fetch_ok(engine, quick.port());
  arm_park();
  std::shared_ptr<Transfer> t;
  std::thread writer([&] { t = engine.submit(make_spec(quick.port())); });
  await_parked();
  std::atomic<bool> closed{false};
  std::thread closer([&] {
    engine.close();
    closed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(!closed);  // waits for the write in flight
  release_park();
  writer.join();
  closer.join();
  CHECK(closed);
  CHECK(t->failed() && t->error.kind == ErrorKind::kClosed);
  CHECK(engine.connection_count() == 0);
  engine.release(*t);
}

// h2c with prior knowledge: answers each complete request ("h2"), holding the
// answers back until `hold_until` requests have come.
void serve_h2c(int c, const std::atomic<int>* hold_until) {
  h2test::Server srv;
  std::set<int32_t> answered;
  std::string out = srv.output();
  ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(c, buf, sizeof buf, 0);
    if (n <= 0) break;
    srv.input(std::string(buf, static_cast<size_t>(n)));
    int complete = 0;
    for (auto& [id, r] : srv.requests) complete += r.complete ? 1 : 0;
    if (complete < hold_until->load()) continue;
    for (auto& [id, r] : srv.requests) {
      if (r.complete && answered.insert(id).second) srv.respond(id, 200, "h2");
    }
    out = srv.output();
    if (!out.empty()) ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
  }
  ::close(c);
}

RequestSpec h2c_spec(int port) {
  RequestSpec spec;
  spec.pool_key = "h2c://127.0.0.1:" + std::to_string(port);
  spec.connect_host = "127.0.0.1";
  spec.connect_port = port;
  spec.versions = HttpVersions::kHttp2;
  spec.method = "GET";
  spec.target = "/";
  spec.authority = "127.0.0.1:" + std::to_string(port);
  spec.plan.idempotent = true;
  spec.read_timeout = 10;
  spec.connect_timeout = 5;
  return spec;
}

// An HTTP/2 write made without the mutex (a deferred write) while a loop run
// by another thread reads that socket (here a direct waiter on an HTTP/1.1
// socket of the same engine, whose server closes: it runs the loop for the
// EOF; or the thread driving the loop): the answers it reads are held back
// until the write is accounted for. `driver_flight`: the write is the driver's
// flush before its poll (a streamed body's last DATA frame), which was
// accounted for only after its whole poll, whose readiness the other thread
// had consumed: the driver and a follower whose stream was answered slept until
// the poll's timeout (3 s here). Else it is a submission's own (its HEADERS,
// sent by the submitting thread): the held answers are then delivered by that
// thread, which must wake their waiters and the polling driver.
void held_reads_end_the_drivers_poll(bool driver_flight) {
  std::atomic<int> hold_until{0};
  Listener h2([&hold_until](int c) { serve_h2c(c, &hold_until); });
  std::atomic<int> h1_requests{0};
  Listener h1([&h1_requests](int c) {
    answer_each(
        c,
        [&h1_requests] {
          if (++h1_requests == 1) return true;  // the first: pooled
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          return false;  // then FIN without an answer
        },
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  PoolLimits limits;
  Engine engine(limits);
  auto fetch = [&engine](RequestSpec spec) {
    std::shared_ptr<Transfer> t = engine.submit(std::move(spec));
    while (!engine.wait(*t, WaitFor::kComplete, 50)) {
    }
    CHECK(t->complete && !t->failed());
    engine.release(*t);
  };
  fetch(h2c_spec(h2.port()));   // a pooled HTTP/2 connection
  fetch(make_spec(h1.port()));  // and a pooled HTTP/1.1 one
  // The follower's stream goes out first; its answer comes with the driver's.
  hold_until = 3;
  std::shared_ptr<Transfer> follower = engine.submit(h2c_spec(h2.port()));
  CHECK(!engine.wait(*follower, WaitFor::kComplete, 100));
  using clock = std::chrono::steady_clock;
  clock::time_point driver_done, follower_done;
  uint64_t held = SocketStream::reads_held_for_testing();
  std::shared_ptr<Transfer> driven;
  if (driver_flight) {
    RequestSpec spec = h2c_spec(h2.port());
    spec.body_streamed = true;
    spec.method = "POST";
    driven = engine.submit(std::move(spec));  // its HEADERS go out now
    while (!engine.wait(*driven, WaitFor::kBodyWanted, 50)) {
    }
  }
  arm_park();
  std::thread driver([&] {
    if (driver_flight)
      engine.push_body(*driven, nullptr, 0, true);  // the driver's flush sends it
    else
      driven = engine.submit(h2c_spec(h2.port()));  // parks in its own write
    engine.wait(*driven, WaitFor::kComplete, 3000);
    driver_done = clock::now();
  });
  await_parked();
  std::thread follows([&] {
    engine.wait(*follower, WaitFor::kComplete, 3000);
    follower_done = clock::now();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // both answers are in
  // A POST (not resent): the EOF fails it, and no new connection wakes the driver.
  RequestSpec post = make_spec(h1.port());
  post.head = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
  post.plan.idempotent = false;
  std::shared_ptr<Transfer> direct = engine.submit(std::move(post));
  while (!engine.wait(*direct, WaitFor::kComplete, 50)) {
  }
  CHECK(direct->failed());
  CHECK(SocketStream::reads_held_for_testing() > held);  // the answers were held back
  engine.release(*direct);
  clock::time_point released = clock::now();
  release_park();
  driver.join();
  follows.join();
  CHECK(driven->complete && !driven->failed());
  CHECK(follower->complete && !follower->failed());
  CHECK(driver_done - released < std::chrono::milliseconds(1000));
  CHECK(follower_done - released < std::chrono::milliseconds(1000));
  engine.release(*driven);
  engine.release(*follower);
  engine.close();
}

// An HTTP/2 stream that ended is its consumer's alone (Transfer::detached):
// its release takes no mutex, so a thread holding the mutex (the driver, a
// submission) neither makes it wait nor makes try_release() give up (the
// GIL-holding caller then waited for the mutex without the GIL: a futex wait
// and wake, and a GIL hand-off). Then threads sharing the connection release
// their ended streams that way while others drive and submit (under
// ThreadSanitizer: every field the release touches is an atomic).
void ended_stream_released_without_the_mutex() {
  std::atomic<int> hold_until{0};
  Listener h2([&hold_until](int c) { serve_h2c(c, &hold_until); });
  PoolLimits limits;
  Engine engine(limits);
  std::shared_ptr<Transfer> t = engine.submit(h2c_spec(h2.port()));
  while (!engine.wait(*t, WaitFor::kComplete, 50)) {
  }
  CHECK(t->complete && !t->failed());
  CHECK(t->detached);
  // The control: an HTTP/1.1 exchange's release needs the mutex.
  Server h1;
  std::shared_ptr<Transfer> control = engine.submit(make_spec(h1.port()));
  while (!engine.wait(*control, WaitFor::kComplete, 50)) {
  }
  CHECK(control->complete && !control->failed());
  CHECK(!control->detached);
  {
    MutexHeld held(engine);
    CHECK(!engine.try_release(*control));  // the mutex is held
    CHECK(engine.try_release(*t));
    CHECK(t->released);
    held.let_go();
    CHECK(!held.gave_up());  // neither call waited for the holder
  }
  engine.release(*control);
  from_six_threads([&engine, &h2] {
    std::shared_ptr<Transfer> x = engine.submit(h2c_spec(h2.port()));
    while (!engine.wait(*x, WaitFor::kComplete, 50)) {
    }
    bool ok = x->complete && !x->failed() && x->head.status == 200;
    if (!engine.try_release(*x)) engine.release(*x);
    return ok && x->released;
  });
  // Every stream on the one HTTP/2 connection (the other: the control's, unless
  // its keep-alive ran out meanwhile on a slow run).
  CHECK(engine.connection_count() <= 2);
  engine.close();
}

// A stream's read deadline passes while another thread's write on the same
// HTTP/2 connection is in flight (a deferred write, made without the engine
// mutex) and its answer has arrived: the loop run by this thread meanwhile
// holds back what it reads on that socket until the write is accounted for.
// The deadline must see that input (held, or waiting in the kernel) as a
// recv() would, not fail the stream with ReadTimeout; the streams' deadlines
// are looked at again once the held bytes are delivered.
void deadline_sees_input_held_behind_a_write() {
  std::atomic<int> hold_until{0};
  Listener h2([&hold_until](int c) { serve_h2c(c, &hold_until); });
  Engine engine{PoolLimits()};
  std::shared_ptr<Transfer> first = engine.submit(h2c_spec(h2.port()));
  while (!engine.wait(*first, WaitFor::kComplete, 50)) {
  }
  CHECK(first->complete && !first->failed());
  engine.release(*first);
  hold_until = 3;  // the answers come once the third request (counting the first) is in
  RequestSpec spec = h2c_spec(h2.port());
  spec.read_timeout = 0.2;
  std::shared_ptr<Transfer> timed = engine.submit(std::move(spec));
  CHECK(!engine.wait(*timed, WaitFor::kComplete, 50));  // its request is out, no answer
  arm_park();
  std::shared_ptr<Transfer> other;
  std::thread writer([&] { other = engine.submit(h2c_spec(h2.port())); });
  await_parked();
  // Past the deadline, both answers in: this thread's loop run fires the
  // deadline and reads the socket while the other request's write is parked.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  uint64_t held = SocketStream::reads_held_for_testing();
  CHECK(!engine.wait(*timed, WaitFor::kComplete, 100));
  CHECK(SocketStream::reads_held_for_testing() > held);
  CHECK(!timed->failed());
  release_park();
  writer.join();
  while (!engine.wait(*timed, WaitFor::kComplete, 50)) {
  }
  CHECK(timed->complete && !timed->failed() && timed->head.status == 200);
  if (timed->failed()) std::fprintf(stderr, "  failed: %s\n", timed->error.message.c_str());
  while (!engine.wait(*other, WaitFor::kComplete, 50)) {
  }
  CHECK(other->complete && !other->failed());
  engine.release(*timed);
  engine.release(*other);
  engine.close();
}

// ---- the followers' paths, ordered by the engine's wait hook

// A scripted order of sync waiters: each test thread has a role (a letter;
// '?' for the others); the hook logs the points they pass and parks the
// first thread of some roles to reach a point until the test lets it go.
struct WaitScript {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<char, Engine::WaitPoint>> seen;
  std::string stop_roles;  // park the first of these roles at stop_at (once)
  Engine::WaitPoint stop_at = Engine::WaitPoint::kParking;
  bool stopped = false;
  bool go = false;
};
WaitScript g_script;
thread_local char t_role = 0;

void script_hook(Engine::WaitPoint point) {
  char role = t_role != 0 ? t_role : '?';
  std::unique_lock<std::mutex> lk(g_script.mu);
  g_script.seen.emplace_back(role, point);
  g_script.cv.notify_all();
  if (g_script.stop_roles.find(role) == std::string::npos || g_script.stop_at != point) return;
  g_script.stop_roles.clear();
  g_script.stopped = true;
  g_script.cv.notify_all();
  g_script.cv.wait(lk, [] { return g_script.go; });
  g_script.go = false;
  g_script.stopped = false;
}

void script_reset() {
  std::lock_guard<std::mutex> lk(g_script.mu);
  g_script.seen.clear();
  g_script.stop_roles.clear();
  g_script.stopped = false;
  g_script.go = false;
}

void stop_at(const std::string& roles, Engine::WaitPoint point) {
  std::lock_guard<std::mutex> lk(g_script.mu);
  g_script.stop_roles = roles;
  g_script.stop_at = point;
}

// Blocks until `role` (0: any) has passed `point` `times` times in all.
void await_point(char role, Engine::WaitPoint point, int times = 1) {
  std::unique_lock<std::mutex> lk(g_script.mu);
  g_script.cv.wait(lk, [&] {
    int n = 0;
    for (auto& [r, p] : g_script.seen) n += (role == 0 || r == role) && p == point ? 1 : 0;
    return n >= times;
  });
}

void await_stopped() {
  std::unique_lock<std::mutex> lk(g_script.mu);
  g_script.cv.wait(lk, [] { return g_script.stopped; });
}

void let_go() {
  std::lock_guard<std::mutex> lk(g_script.mu);
  g_script.go = true;
  g_script.cv.notify_all();
}

int times_seen(char role, Engine::WaitPoint point) {
  std::lock_guard<std::mutex> lk(g_script.mu);
  int n = 0;
  for (auto& [r, p] : g_script.seen) n += r == role && p == point ? 1 : 0;
  return n;
}

// h2c with prior knowledge, answering on cue: "/now" at once; any other
// request is held until a request for "/open/<letters>" names its path's
// letter ("/f" by "/open/fg"), which is answered too.
void serve_h2c_on_cue(int c) {
  h2test::Server srv;
  std::set<int32_t> answered;
  std::string opened;
  std::string out = srv.output();
  ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(c, buf, sizeof buf, 0);
    if (n <= 0) break;
    srv.input(std::string(buf, static_cast<size_t>(n)));
    for (auto& [id, r] : srv.requests) {
      std::string path = srv.header(id, ":path");
      if (r.complete && path.rfind("/open/", 0) == 0 && answered.insert(id).second) {
        opened += path.substr(6);
        srv.respond(id, 200, "open");
      }
    }
    for (auto& [id, r] : srv.requests) {
      std::string path = srv.header(id, ":path");
      bool cued = path == "/now" || (path.size() == 2 && opened.find(path[1]) != std::string::npos);
      if (r.complete && cued && answered.insert(id).second) srv.respond(id, 200, "h2");
    }
    out = srv.output();
    if (!out.empty()) ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
  }
  ::close(c);
}

RequestSpec cue_spec(int port, const std::string& path) {
  RequestSpec spec = h2c_spec(port);
  spec.target = path;
  return spec;
}

// The h2c connection opened and idle: one exchange, released, and the
// script cleared for the test's own waits.
void open_idle_h2c(Engine& engine, int port) {
  std::shared_ptr<Transfer> first = engine.submit(cue_spec(port, "/now"));
  while (!engine.wait(*first, WaitFor::kComplete, 50)) {
  }
  CHECK(first->complete && !first->failed());
  engine.release(*first);
  script_reset();
}

// Waits for each transfer to end and releases it.
void finish_all(Engine& engine, std::initializer_list<std::shared_ptr<Transfer>*> transfers) {
  for (auto* t : transfers) {
    while (!engine.wait(**t, WaitFor::kComplete, 50)) {
    }
    engine.release(**t);
  }
}

// Answers each request on `c` with a small keep-alive response, counting the
// sends in `sent`; the third response in two parts (its head cut in two), the
// second once `rest` is set, then no more.
void answer_third_in_two_parts(int c, std::atomic<int>& sent, const std::atomic<bool>& rest) {
  const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  int served = 0;
  answer_each(
      c,
      [&] {
        if (++served != 3) {
          ::send(c, response.data(), response.size(), MSG_NOSIGNAL);
          sent++;
          return true;
        }
        ::send(c, response.data(), 20, MSG_NOSIGNAL);
        sent++;
        while (!rest) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        ::send(c, response.data() + 20, response.size() - 20, MSG_NOSIGNAL);
        sent++;
        return false;
      },
      "");  // (each answer sent above)
}

// A direct wait whose answer is in already reads it without polling its
// socket (Engine::read_first: the poll is saved); one whose answer is not all
// in reads what came in its first round only, and its next round polls for
// the rest (letting go of the mutex) rather than reading on under it. On a
// thread of its own (a role for the hook); its connection is new, so no
// earlier wait of this program moved its read-first record.
void direct_wait_reads_an_answer_in_before_it_polls() {
  using WP = Engine::WaitPoint;
  std::atomic<int> sent{0};
  std::atomic<bool> rest{false};
  std::atomic<bool> third{false};  // the reader's third exchange begins
  Listener h1([&sent, &rest](int c) { answer_third_in_two_parts(c, sent, rest); });
  Engine engine{PoolLimits()};
  // Submits (which writes the request on a pooled connection), waits until
  // the server has made `sends` sends in all (the answer, or its first part,
  // is then in this socket: loopback), then waits for the answer.
  auto exchange = [&engine, &h1, &sent](int sends) {
    std::shared_ptr<Transfer> t = engine.submit(make_spec(h1.port()));
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (sent < sends && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    while (!engine.wait(*t, WaitFor::kComplete, 5000)) {
    }
    CHECK(t->complete && !t->failed() && t->head.status == 200);
    std::string body;
    engine.take_body(*t, body);
    CHECK_EQ_STR(body, "ok");
    engine.release(*t);
  };
  std::thread reader([&] {
    t_role = 'r';
    exchange(0);  // connects (in the wait): a pooled connection for the next ones
    script_reset();
    exchange(2);  // its answer is in when the wait starts
    CHECK(times_seen('r', WP::kDirectReadingFirst) == 1);
    CHECK(times_seen('r', WP::kDirectPolling) == 0);
    script_reset();
    third = true;
    exchange(3);  // the first part of its head is in
    t_role = 0;
  });
  while (!third) std::this_thread::yield();
  await_point('r', WP::kDirectPolling);  // the third exchange's second round
  rest = true;
  reader.join();
  CHECK(times_seen('r', WP::kDirectReadingFirst) == 1);
  CHECK(times_seen('r', WP::kDirectPolling) >= 1);
  engine.close();
  script_reset();
}

// The read-first record is the origin's, not the thread's: a thread whose
// waits on one origin keep finding nothing there (its server answers only
// once the waiter polls) backs off there, also on the origin's next
// connection, and still reads first on another origin whose answers are in.
// Per thread, the first origin's misses made the second one's waits poll
// first too; per connection, a new connection started afresh. On a thread of
// its own.
void read_first_backs_off_per_connection() {
  using WP = Engine::WaitPoint;
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  std::atomic<int> slow_served{0};
  Listener slow([&](int c) {
    answer_each(
        c,
        [&] {
          int n = ++slow_served;
          await_point('b', WP::kDirectPolling, n);
          if (n != 16) return true;
          const std::string last =
              "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
          ::send(c, last.data(), last.size(), MSG_NOSIGNAL);
          return false;  // closes: the next exchange connects again
        },
        ok);
  });
  std::atomic<int> sent{0};
  Listener quick([&](int c) {
    answer_each(
        c,
        [&] {
          ::send(c, ok.data(), ok.size(), MSG_NOSIGNAL);
          sent++;
          return true;
        },
        "");  // (each answer sent above)
  });
  Engine engine{PoolLimits()};
  // Submits; once the server made `sends` sends in all, waits for the answer.
  auto exchange = [&](int port, int sends) {
    std::shared_ptr<Transfer> t = engine.submit(make_spec(port));
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (sent < sends && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    while (!engine.wait(*t, WaitFor::kComplete, 10000)) {
    }
    CHECK(t->complete && !t->failed() && t->head.status == 200);
    engine.release(*t);
  };
  std::thread waiter([&] {
    t_role = 'b';
    exchange(quick.port(), 0);  // connects: a pooled connection for the last one
    script_reset();             // (the slow server counts this thread's polls from here)
    // Two rounds (kReadFirstRound) of waits that find nothing when they read
    // first (a connecting one's may not try: the loop has work then).
    for (int i = 0; i < 16; i++) exchange(slow.port(), 0);
    script_reset();
    slow_served = 0;
    // Backed off there, on its next connection too: they poll first.
    for (int i = 0; i < 3; i++) exchange(slow.port(), 0);
    CHECK(times_seen('b', WP::kDirectReadingFirst) == 0);
    CHECK(times_seen('b', WP::kDirectPolling) == 3);
    script_reset();
    exchange(quick.port(), 2);  // its answer is in: read, no poll
    CHECK(times_seen('b', WP::kDirectReadingFirst) == 1);
    CHECK(times_seen('b', WP::kDirectPolling) == 0);
    t_role = 0;
  });
  waiter.join();
  engine.close();
  script_reset();
}

// The origins' read-first records are swept: once more than kReadFirstKeys
// origins are listed, those no connection is open to are forgotten (a new
// connection there reads first again), while an origin whose connection is
// open keeps what it learnt. Origins A and B (two pool keys on a server that
// answers only once the waiter polls) back off; A's connection then closes,
// B's stays pooled; kReadFirstKeys other origins (one `Connection: close`
// exchange each) fill the list. Without the sweep A's next waits polled
// first; had the sweep forgotten B's record too, B's next connection read
// first. On a thread of its own.
void read_first_records_of_closed_origins_are_swept() {
  using WP = Engine::WaitPoint;
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  const std::string last = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
  std::atomic<int> served{0};
  std::atomic<bool> close_next{false};
  Listener slow([&](int c) {
    answer_each(
        c,
        [&] {
          await_point('s', WP::kDirectPolling, ++served);
          if (!close_next.exchange(false)) return true;
          ::send(c, last.data(), last.size(), MSG_NOSIGNAL);
          return false;
        },
        ok);
  });
  Listener once([&](int c) {
    answer_each(
        c,
        [&] {
          ::send(c, last.data(), last.size(), MSG_NOSIGNAL);
          return false;
        },
        "");
  });
  Engine engine{PoolLimits()};
  auto exchange = [&](int port, const std::string& origin) {
    RequestSpec spec = make_spec(port);
    spec.pool_key += "/" + origin;
    std::shared_ptr<Transfer> t = engine.submit(std::move(spec));
    while (!engine.wait(*t, WaitFor::kComplete, 10000)) {
    }
    CHECK(t->complete && !t->failed() && t->head.status == 200);
    engine.release(*t);
  };
  // Origin `origin` backs off: two rounds (kReadFirstRound) of waits whose
  // reads first find nothing; `close` ends its connection after them.
  auto back_off = [&](const std::string& origin, bool close) {
    script_reset();
    served = 0;
    for (int i = 0; i < 16; i++) {
      close_next = close && i == 15;
      exchange(slow.port(), origin);
    }
    script_reset();
    served = 0;
  };
  std::thread waiter([&] {
    t_role = 's';
    back_off("a", true);
    back_off("b", false);
    exchange(slow.port(), "b");  // backed off: polls first
    CHECK(times_seen('s', WP::kDirectReadingFirst) == 0);
    for (size_t i = 0; i < Engine::kReadFirstKeys; i++) exchange(once.port(), std::to_string(i));
    script_reset();
    served = 0;
    // B's record was kept (its connection is open): its next connection takes
    // it over and polls first too.
    close_next = true;
    exchange(slow.port(), "b");
    exchange(slow.port(), "b");
    exchange(slow.port(), "b");
    CHECK(times_seen('s', WP::kDirectReadingFirst) == 0);
    CHECK(times_seen('s', WP::kDirectPolling) >= 3);
    script_reset();
    served = 0;
    // A starts afresh: its new connection's waits read first (the
    // connecting one may not try: the loop has work then).
    exchange(slow.port(), "a");
    exchange(slow.port(), "a");
    CHECK(times_seen('s', WP::kDirectReadingFirst) >= 1);
    t_role = 0;
  });
  waiter.join();
  engine.close();
  script_reset();
}

// A TLS handshake's direct wait does not read before it polls (the server's
// flight is a round trip away from a server elsewhere): it polls. Here the
// "server" takes the ClientHello and, once the waiter has polled in three
// wait() calls (short slices: each call's first direct round is one that
// could read first, with the loop quiet), closes (the handshake fails). On a
// thread of its own, as above.
void handshake_wait_polls_without_reading_first() {
  using WP = Engine::WaitPoint;
  std::atomic<bool> polled{false};
  Listener tls([&polled](int c) {
    char hello[4096];
    (void)::recv(c, hello, sizeof hello, 0);
    while (!polled) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ::close(c);
  });
  TlsConfig cfg;
  cfg.verify = false;
  Error err;
  std::shared_ptr<TlsContext> ctx = TlsContext::create(cfg, err);
  CHECK(ctx != nullptr);
  Engine engine{PoolLimits()};
  script_reset();
  std::thread waiter([&] {
    t_role = 'h';
    RequestSpec spec = make_spec(tls.port());
    spec.pool_key = "https://127.0.0.1:" + std::to_string(tls.port());
    spec.tls = ctx;
    spec.tls_host = "localhost";
    std::shared_ptr<Transfer> t = engine.submit(std::move(spec));
    while (!engine.wait(*t, WaitFor::kHead, 20)) {
    }
    CHECK(t->failed());
    engine.release(*t);
    t_role = 0;
  });
  await_point('h', WP::kDirectPolling, 3);
  polled = true;
  waiter.join();
  CHECK(times_seen('h', WP::kDirectReadingFirst) == 0);
  engine.close();
  script_reset();
}

// A follower picked to drive next as its slice ends (the driver left while
// it was on its way out) takes the seat or hands it on: here it leaves, and
// the follower behind it drives, reading its own answer. Before, the seat
// stayed empty: nobody read the answers until the other follower's slice
// (10 s here) was over, and its wait came back undone.
void follower_picked_as_its_slice_ends_hands_the_seat_on() {
  using WP = Engine::WaitPoint;
  Listener h2(&serve_h2c_on_cue);
  Engine engine{PoolLimits()};
  open_idle_h2c(engine, h2.port());
  std::shared_ptr<Transfer> d, f, g;
  bool d_done = false, f_done = true, g_done = false;
  std::thread driver([&] {
    t_role = 'd';
    d = engine.submit(cue_spec(h2.port(), "/d"));
    d_done = engine.wait(*d, WaitFor::kComplete, 10000);
  });
  await_point('d', WP::kPolling);
  stop_at("f", WP::kUnparked);
  std::thread follower([&] {
    t_role = 'f';
    f = engine.submit(cue_spec(h2.port(), "/f"));
    f_done = engine.wait(*f, WaitFor::kComplete, 100);  // times out, stopped on its way out
  });
  await_point('f', WP::kParking);
  std::thread other([&] {
    t_role = 'g';
    g = engine.submit(cue_spec(h2.port(), "/g"));
    g_done = engine.wait(*g, WaitFor::kComplete, 10000);
  });
  await_point('g', WP::kParking);
  await_stopped();  // f's slice is over; it is still listed
  // d's answer: d leaves the seat and picks f, the first follower listed.
  std::shared_ptr<Transfer> open_d = engine.submit(cue_spec(h2.port(), "/open/d"));
  driver.join();
  CHECK(d_done && d->complete && !d->failed());
  // Both followers' answers come; nobody drives.
  std::shared_ptr<Transfer> open_fg = engine.submit(cue_spec(h2.port(), "/open/fg"));
  let_go();
  follower.join();
  other.join();
  CHECK(!f_done);  // its slice was over
  CHECK(g_done);   // the seat came to it: it drove and read its answer
  CHECK(g->complete && !g->failed());
  CHECK(times_seen('g', WP::kPolling) >= 1);
  t_role = 't';
  while (!engine.wait(*f, WaitFor::kComplete, 50)) {
  }
  CHECK(f->complete && !f->failed());
  finish_all(engine, {&d, &f, &g, &open_d, &open_fg});
  t_role = 0;
  engine.close();
}

// A follower whose answer the driver read is woken as done and leaves wait()
// by the transfer's atomics, without taking the engine mutex again.
void follower_done_leaves_without_the_mutex() {
  using WP = Engine::WaitPoint;
  Listener h2(&serve_h2c_on_cue);
  Engine engine{PoolLimits()};
  open_idle_h2c(engine, h2.port());
  std::shared_ptr<Transfer> d, f;
  bool f_done = false;
  std::thread driver([&] {
    t_role = 'd';
    d = engine.submit(cue_spec(h2.port(), "/d"));
    while (!engine.wait(*d, WaitFor::kComplete, 10000)) {
    }
  });
  await_point('d', WP::kPolling);
  std::thread follower([&] {
    t_role = 'f';
    f = engine.submit(cue_spec(h2.port(), "/f"));
    f_done = engine.wait(*f, WaitFor::kComplete, 10000);
  });
  await_point('f', WP::kParking);
  std::shared_ptr<Transfer> open_f = engine.submit(cue_spec(h2.port(), "/open/f"));
  follower.join();
  CHECK(f_done && f->complete && !f->failed());
  CHECK(times_seen('f', WP::kUnparked) == 1);
  CHECK(times_seen('f', WP::kRelocked) == 0);  // no mu_ after its park
  std::shared_ptr<Transfer> open_d = engine.submit(cue_spec(h2.port(), "/open/d"));
  driver.join();
  CHECK(d->complete && !d->failed());
  finish_all(engine, {&d, &f, &open_f, &open_d});
  engine.close();
}

// A follower picked by a driver whose notify is late (here: stopped before
// it) leaves as its slice ends; its next wait parks on a new record, which
// the late notify does not touch (it stays parked until its own answer), and
// once that notify is over the record after it is reused.
void sleeper_record_waits_for_a_late_notify() {
  using WP = Engine::WaitPoint;
  Listener h2(&serve_h2c_on_cue);
  Engine engine{PoolLimits()};
  open_idle_h2c(engine, h2.port());
  std::shared_ptr<Transfer> d, f1, f2, f3;
  bool f1_done = false, f2_done = false, f3_done = false;
  uint64_t made_first = 0, made_second = 0, made_third = 0;
  std::thread driver([&] {
    t_role = 'd';
    d = engine.submit(cue_spec(h2.port(), "/d"));
    while (!engine.wait(*d, WaitFor::kComplete, 10000)) {
    }
  });
  await_point('d', WP::kPolling);
  std::thread follower([&] {
    t_role = 'f';
    f1 = engine.submit(cue_spec(h2.port(), "/f"));
    uint64_t before = Engine::sleeper_records_made_for_testing();
    f1_done = engine.wait(*f1, WaitFor::kComplete, 300);  // picked, but its notify is late
    made_first = Engine::sleeper_records_made_for_testing() - before;
    f2 = engine.submit(cue_spec(h2.port(), "/g"));
    before = Engine::sleeper_records_made_for_testing();
    f2_done = engine.wait(*f2, WaitFor::kComplete, 10000);
    made_second = Engine::sleeper_records_made_for_testing() - before;
    await_point(0, WP::kNotified, 2);  // the late notify, then f2's: both over
    f3 = engine.submit(cue_spec(h2.port(), "/h"));
    before = Engine::sleeper_records_made_for_testing();
    f3_done = engine.wait(*f3, WaitFor::kComplete, 10000);
    made_third = Engine::sleeper_records_made_for_testing() - before;
  });
  await_point('f', WP::kParking);
  // Whoever delivers f's answer notifies it: the driver, or the thread
  // whose write was in flight as it was read (held, then delivered by it).
  stop_at("dx", WP::kNotifying);
  std::shared_ptr<Transfer> open_f;
  std::thread cue([&] {
    t_role = 'x';
    open_f = engine.submit(cue_spec(h2.port(), "/open/f"));
  });
  await_stopped();                    // f picked; its notify stopped before it
  await_point('f', WP::kParking, 2);  // f left at its slice's end, and waits again
  let_go();                           // the late notify: the old record's word
  std::shared_ptr<Transfer> open_g = engine.submit(cue_spec(h2.port(), "/open/g"));
  await_point('f', WP::kUnparked, 2);
  CHECK(f2->complete);  // woken for its own answer, not by the late notify
  std::shared_ptr<Transfer> open_h = engine.submit(cue_spec(h2.port(), "/open/h"));
  follower.join();
  CHECK(f1_done && f1->complete && !f1->failed());
  CHECK(f2_done && f2->complete && !f2->failed());
  CHECK(f3_done && f3->complete && !f3->failed());
  CHECK(made_second == 1);  // the first record still had a notify to come
  CHECK(made_third == 0);   // the second had none: reused
  CHECK(made_first <= 1);   // this thread's first record, unless it had one
  cue.join();
  std::shared_ptr<Transfer> open_d = engine.submit(cue_spec(h2.port(), "/open/d"));
  driver.join();
  finish_all(engine, {&d, &f1, &f2, &f3, &open_f, &open_g, &open_h, &open_d});
  engine.close();
}

// A client closed while a thread follows on it: the follower is woken, off
// the engine's list before it is notified, and its next wait (here on
// another engine) works with its record. Before, close() notified each
// follower while still walking the list and took them off afterwards: a
// woken one could list its reused record in the other engine first and
// stay listed in the closed one too (a stale entry; a Transfer read after
// it was freed).
void close_wakes_a_follower_that_then_waits_elsewhere() {
  using WP = Engine::WaitPoint;
  Listener h2(&serve_h2c_on_cue);
  Engine engine{PoolLimits()};
  Engine other{PoolLimits()};
  open_idle_h2c(engine, h2.port());
  std::shared_ptr<Transfer> d, f, g;
  bool g_done = false;
  std::thread driver([&] {
    t_role = 'd';
    d = engine.submit(cue_spec(h2.port(), "/d"));
    while (!engine.wait(*d, WaitFor::kComplete, 10000) && !d->failed()) {
    }
  });
  await_point('d', WP::kPolling);
  std::thread follower([&] {
    t_role = 'f';
    f = engine.submit(cue_spec(h2.port(), "/f"));
    while (!engine.wait(*f, WaitFor::kComplete, 10000) && !f->failed()) {
    }
    g = other.submit(cue_spec(h2.port(), "/now"));
    g_done = other.wait(*g, WaitFor::kComplete, 10000);
  });
  await_point('f', WP::kParking);
  engine.close();
  follower.join();
  driver.join();
  CHECK(f->failed() && d->failed());
  CHECK(g_done && g->complete && !g->failed());
  other.release(*g);
  other.close();
}

}  // namespace

int main() {
  Engine::set_wait_hook_for_testing(&script_hook);
  follower_picked_as_its_slice_ends_hands_the_seat_on();
  follower_done_leaves_without_the_mutex();
  sleeper_record_waits_for_a_late_notify();
  close_wakes_a_follower_that_then_waits_elsewhere();
  direct_wait_reads_an_answer_in_before_it_polls();
  read_first_backs_off_per_connection();
  read_first_records_of_closed_origins_are_swept();
  handshake_wait_polls_without_reading_first();
  SocketStream::set_flight_hook_for_testing(&park_in_flight);
  answer_read_while_the_write_is_in_flight();
  close_while_the_write_is_in_flight();
  held_reads_end_the_drivers_poll(true);
  held_reads_end_the_drivers_poll(false);
  deadline_sees_input_held_behind_a_write();
  ended_stream_released_without_the_mutex();
  burst_exchanges();
  drain_while_a_thread_waits_directly();
  Server server;
  try_release_never_waits(server.port());
  PoolLimits limits;
  Engine engine(limits);
  for (int i = 0; i < 20; i++) exchange(engine, server.port());
  concurrent_exchanges(engine, server.port());
  // A failure read the same way: a port nobody listens on.
  int closed_port;
  {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
    closed_port = ntohs(addr.sin_port);
    ::close(s);
  }
  std::shared_ptr<Transfer> t = engine.submit(make_spec(closed_port));
  std::thread driver([&] {
    while (!engine.wait(*t, WaitFor::kHead, 50)) {
    }
  });
  while (!t->failed() && !t->head_ready) std::this_thread::yield();
  CHECK(t->failed());
  CHECK(t->error.kind == ErrorKind::kConnectError);
  driver.join();
  engine.release(*t);
  engine.close();
  return check_report("test_engine_race");
}
