// Engine lifecycle under AddressSanitizer (and UBSan): timeouts out of range
// (inf, NaN, 1e300 s) as none, close() with a getaddrinfo still
// running (the loop is handed to a reaper thread), fork() with a pooled
// connection (the child gets a fresh loop, the parent keeps its connection),
// the raw stream of a switched (101) connection: reads, writes, a burst
// past the read-ahead bound, release, and close() under a live stream; and
// Happy Eyeballs: a host with a stalling address first (a listener on
// 127.0.0.2 whose accept queue is full, so SYNs go unanswered) and the live
// server second, every attempt's handle closed at the end (the loop check
// aborts this debug build otherwise).
//
// getaddrinfo() is interposed here: "slow.test" takes kSlowMs, then resolves
// to 127.0.0.1; "race.test" resolves to 127.0.0.2 then 127.0.0.1. A tiny
// keep-alive HTTP server runs in a thread.

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "engine.h"
#include "timeouts.h"

using namespace httprs;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kSlowMs = 1000;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Accepts connections and answers every request on them with "ok"; a request
// for /up gets a 101 with "early" behind it, then everything is echoed.
struct Server {
  int fd = -1;
  int port = 0;

  Server() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd, 16);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    std::thread([this] { accept_loop(); }).detach();
  }

  void accept_loop() {
    for (;;) {
      int c = ::accept(fd, nullptr, nullptr);
      if (c < 0) return;
      std::thread([c] { serve(c); }).detach();
    }
  }

  static void serve(int c) {
    std::string buf;
    char tmp[4096];
    for (;;) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = ::read(c, tmp, sizeof tmp);
        if (n <= 0) {
          ::close(c);
          return;
        }
        buf.append(tmp, static_cast<size_t>(n));
      }
      bool up = buf.compare(0, 8, "GET /up ") == 0;
      buf.erase(0, end + 4);
      if (up) {
        echo_after_switch(c, buf);
        return;
      }
      const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
      if (::write(c, resp, sizeof resp - 1) < 0) {
        ::close(c);
        return;
      }
    }
  }

  static void echo_after_switch(int c, const std::string& already) {
    const char resp[] =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nearly";
    bool ok = ::write(c, resp, sizeof resp - 1) > 0;
    if (ok && !already.empty()) ok = ::write(c, already.data(), already.size()) > 0;
    char tmp[65536];
    while (ok) {
      ssize_t n = ::read(c, tmp, sizeof tmp);
      if (n <= 0) break;
      for (ssize_t off = 0; off < n;) {
        ssize_t w = ::write(c, tmp + off, static_cast<size_t>(n - off));
        if (w <= 0) {
          ok = false;
          break;
        }
        off += w;
      }
    }
    ::close(c);
  }
};

RequestSpec make_spec(const std::string& host, int port) {
  RequestSpec spec;
  spec.pool_key = "http://" + host + ":" + std::to_string(port);
  spec.connect_host = host;
  spec.connect_port = port;
  spec.head = "GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
  spec.connect_timeout = spec.read_timeout = spec.write_timeout = spec.pool_timeout = 5;
  return spec;
}

// One whole exchange; true when "ok" came back.
bool fetch(Engine& e, int port, double timeouts = 5) {
  RequestSpec spec = make_spec("127.0.0.1", port);
  spec.connect_timeout = spec.read_timeout = spec.write_timeout = spec.pool_timeout = timeouts;
  std::shared_ptr<Transfer> t = e.submit(std::move(spec));
  auto t0 = Clock::now();
  while (!e.wait(*t, WaitFor::kComplete, 50))
    if (seconds_since(t0) > 5) break;
  std::string body;
  e.take_body(*t, body);
  bool ok = !t->failed() && t->complete && body == "ok";
  e.release(*t);
  return ok;
}

void test_close_with_running_lookup(int port) {
  auto e = std::make_unique<Engine>(PoolLimits());
  std::shared_ptr<Transfer> t = e->submit(make_spec("slow.test", port));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the lookup has started
  auto t0 = Clock::now();
  e->close();
  double took = seconds_since(t0);
  std::printf("close() with a running lookup took %.4f s\n", took);
  CHECK(took < 0.5);
  CHECK(t->failed());
  CHECK(t->error.kind == ErrorKind::kClosed);
  e->release(*t);
  e.reset();
  // The reaper thread gets the late answer, frees the loop and ends; ASan
  // watches every byte of it.
  std::this_thread::sleep_for(std::chrono::milliseconds(kSlowMs + 300));
  // A new engine (and lookup) still works in the same process.
  Engine e2{PoolLimits()};
  CHECK(fetch(e2, port));
}

void test_fork_keeps_parent_pool(int port) {
  Engine e{PoolLimits()};
  CHECK(fetch(e, port));
  CHECK(e.connection_count() == 1);
  CHECK(e.idle_count() == 1);
  pid_t pid = ::fork();
  if (pid == 0) {
    int bad = 0;
    if (e.connection_count() != 0) bad |= 1;  // the parent's connection is not ours
    if (!fetch(e, port)) bad |= 2;
    if (e.connection_count() != 1) bad |= 4;
    e.close();
    ::_exit(bad);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  std::printf("child exit status %d\n", WEXITSTATUS(status));
  CHECK(WEXITSTATUS(status) == 0);
  // The parent reuses its pooled connection: it never left the epoll set.
  CHECK(fetch(e, port));
  CHECK(fetch(e, port));
  CHECK(e.connection_count() == 1);
  e.close();
}

// Reads from the raw stream until `n` bytes came (or 20 s passed).
std::string raw_read(Engine& e, Transfer& t, size_t n) {
  std::string got;
  auto t0 = Clock::now();
  while (got.size() < n && seconds_since(t0) < 20) {
    std::string chunk;
    e.raw_take(t, chunk, n - got.size());
    got += chunk;
    if (chunk.empty()) {
      if (t.raw_state != Transfer::RawState::kOpen) break;
      e.wait(t, WaitFor::kRawData, 50);
    }
  }
  return got;
}

std::shared_ptr<Transfer> switch_up(Engine& e, int port) {
  RequestSpec spec = make_spec("127.0.0.1", port);
  spec.head = "GET /up HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n";
  spec.plan.upgrade = true;
  std::shared_ptr<Transfer> t = e.submit(std::move(spec));
  auto t0 = Clock::now();
  while (!e.wait(*t, WaitFor::kHead, 50))
    if (seconds_since(t0) > 5) break;
  return t;
}

void test_switched_raw_stream(int port) {
  Engine e{PoolLimits()};
  std::shared_ptr<Transfer> t = switch_up(e, port);
  CHECK(t->head_ready && t->head.status == 101 && t->complete);
  // What the connection is, taken once it was established (network_stream).
  CHECK(t->conn_info != nullptr);
  CHECK(t->conn_info->peer().family == SocketAddress::Family::kIpv4);
  CHECK_EQ_STR(t->conn_info->peer().host, "127.0.0.1");
  CHECK(t->conn_info->peer().port == port);
  CHECK(t->conn_info->local().port > 0 && t->conn_info->local().port != port);
  CHECK(t->conn_info->tls.kind == TlsFacts::Kind::kNone);
  CHECK_EQ_STR(raw_read(e, *t, 5), "early");  // came behind the 101 head
  e.raw_write(*t, "ping", 4);
  auto t0 = Clock::now();
  while (!e.wait(*t, WaitFor::kRawSent, 50) && seconds_since(t0) < 5) {
  }
  CHECK_EQ_STR(raw_read(e, *t, 4), "ping");
  // Three times the 1 MiB read-ahead, echoed: reading pauses and resumes.
  std::string burst(3 << 20, 'b');
  for (size_t i = 0; i < burst.size(); i += 997) burst[i] = static_cast<char>('a' + i % 26);
  std::thread writer([&] { e.raw_write(*t, burst.data(), burst.size()); });
  writer.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(raw_read(e, *t, burst.size()) == burst);
  CHECK(e.raw_fd(*t) >= 0);
  CHECK(e.connection_count() == 1);
  CHECK(e.idle_count() == 0);  // never pooled
  e.release(*t);
  CHECK(e.connection_count() == 0);
  CHECK(e.raw_fd(*t) == -1);
  std::string after;
  e.raw_take(*t, after, 10);
  CHECK(after.empty());

  // close() with a switched stream open: it ends as failed (kClosed).
  std::shared_ptr<Transfer> t2 = switch_up(e, port);
  CHECK_EQ_STR(raw_read(e, *t2, 5), "early");
  e.close();
  CHECK(t2->raw_state == Transfer::RawState::kFailed);
  CHECK(t2->raw_error.kind == ErrorKind::kClosed);
  CHECK(e.wait(*t2, WaitFor::kRawData, 50));
  e.raw_write(*t2, "x", 1);  // a no-op once closed
  e.release(*t2);
}

// A listener on 127.0.0.2:port that never accepts, its queue (backlog 0) filled
// by connections of its own: a further SYN to it goes unanswered.
struct StallingListener {
  int fd = -1;
  std::vector<int> fillers;

  explicit StallingListener(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    CHECK(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    CHECK(::listen(fd, 0) == 0);
    for (int i = 0; i < 4; i++) {
      int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);
      fillers.push_back(c);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ~StallingListener() {
    for (int c : fillers) ::close(c);
    ::close(fd);
  }
};

// True when a connect to 127.0.0.2:port is still unanswered after `ms`.
bool connect_stalls(int port, int ms) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
  int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len);
  bool connected = ::getpeername(c, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(c);
  return err == 0 && !connected;
}

// The name resolves to a stalling address first: the live one, tried
// 250 ms later on its own handle, wins long before the 5 s connect timeout;
// the same with the addresses as literals (a Python resolver hook's answers).
void test_happy_eyeballs(int port) {
  StallingListener stall(port);
  CHECK(connect_stalls(port, 300));
  for (int literal = 0; literal < 2; literal++) {
    Engine e{PoolLimits()};
    auto racing_spec = [&] {
      RequestSpec spec = make_spec(literal ? "127.0.0.2" : "race.test", port);
      if (literal) spec.more_addresses = {"127.0.0.1"};
      return spec;
    };
    for (int round = 0; round < 2; round++) {
      auto t0 = Clock::now();
      std::shared_ptr<Transfer> t = e.submit(racing_spec());
      while (!e.wait(*t, WaitFor::kComplete, 50))
        if (seconds_since(t0) > 6) break;
      double took = seconds_since(t0);
      std::string body;
      e.take_body(*t, body);
      std::printf("happy eyeballs (%s, request %d): %.3f s\n", literal ? "literals" : "resolved",
                  round + 1, took);
      CHECK(!t->failed() && t->complete);
      CHECK_EQ_STR(body, "ok");
      // The first request waits 250 ms for the stalled attempt; the second
      // reuses the winner from the pool.
      if (round == 0) CHECK(took >= 0.2 && took < 2.5);
      e.release(*t);
      CHECK(e.connection_count() == 1);
    }
    e.close();  // check_loop_released: the losing attempt's handle is closed too
  }
  // Every address stalls: close() in the middle of the race closes each attempt
  // and the attempt timer.
  Engine e{PoolLimits()};
  RequestSpec spec = make_spec("127.0.0.2", port);
  spec.more_addresses = {"127.0.0.2", "127.0.0.2"};
  std::shared_ptr<Transfer> t = e.submit(std::move(spec));
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // two attempts running
  e.close();
  CHECK(t->failed() && t->error.kind == ErrorKind::kClosed);
  e.release(*t);
  // Every address refused: the race ends at once with the last error.
  Engine e2{PoolLimits()};
  RequestSpec refused = make_spec("127.0.0.2", port + 1 == 65536 ? port - 1 : port + 1);
  refused.more_addresses = {"127.0.0.3"};
  auto t0 = Clock::now();
  std::shared_ptr<Transfer> t2 = e2.submit(std::move(refused));
  while (!e2.wait(*t2, WaitFor::kComplete, 50))
    if (seconds_since(t0) > 6) break;
  CHECK(t2->failed() && t2->error.kind == ErrorKind::kConnectError);
  CHECK(seconds_since(t0) < 1.0);
  e2.release(*t2);
  e2.close();
}

// The debug check run when an engine's loop is freed: it counts a handle until
// its close callback has run, and aborts (this program is built without NDEBUG)
// when one is left.
void test_handle_count_check() {
  uv_loop_t loop;
  CHECK(uv_loop_init(&loop) == 0);
  CHECK(open_handle_count(&loop) == 0);
  uv_timer_t timer;
  uv_timer_init(&loop, &timer);
  uv_async_t async;
  uv_async_init(&loop, &async, nullptr);
  CHECK(open_handle_count(&loop) == 2);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(2);  // the check's report is expected here
    check_loop_released(&loop, "test");
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&async), nullptr);
  CHECK(open_handle_count(&loop) == 2);  // closing, callbacks not run yet
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(open_handle_count(&loop) == 0);
  check_loop_released(&loop, "test");  // returns
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace

extern "C" int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                           struct addrinfo** res) {
  using Fn = int (*)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
  static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "getaddrinfo"));
  if (node != nullptr && std::strcmp(node, "slow.test") == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kSlowMs));
    node = "127.0.0.1";
  }
  if (node != nullptr && std::strcmp(node, "race.test") == 0) {
    // 127.0.0.2 then 127.0.0.1, in this order (two lookups chained).
    struct addrinfo* first = nullptr;
    int rc = real("127.0.0.2", service, hints, &first);
    if (rc != 0) return rc;
    struct addrinfo* second = nullptr;
    rc = real("127.0.0.1", service, hints, &second);
    if (rc != 0) {
      freeaddrinfo(first);
      return rc;
    }
    struct addrinfo* tail = first;
    while (tail->ai_next != nullptr) tail = tail->ai_next;
    tail->ai_next = second;
    *res = first;
    return 0;
  }
  return real(node, service, hints, res);
}

// Timeouts out of range: infinite, NaN or 1e300 seconds as whole milliseconds
// would be undefined behaviour (this build's UBSan aborts on it). As request
// timeouts, a pool timeout and the keep-alive expiry they are none: the
// request runs, a connection stays reusable, a request waiting for the pool
// waits until a connection frees up.
void test_timeouts_out_of_range(int port) {
  uint64_t ms = 7;
  CHECK(timeout_ms(1.5, &ms) && ms == 1500);
  CHECK(timeout_ms(0, &ms) && ms == 0);
  CHECK(timeout_ms(0.0001, &ms, 1) && ms == 1);
  CHECK(timeout_ms(1e8, &ms) && ms == 100000000000ull);
  const double none[] = {HUGE_VAL, -HUGE_VAL, NAN, -NAN, 1e300, 1e9, -1, -0.5};
  for (double x : none) CHECK(!timeout_ms(x, &ms));
  const double out_of_range[] = {HUGE_VAL, NAN, 1e300};
  for (double x : out_of_range) {
    PoolLimits limits;
    limits.max_connections = 1;
    limits.keepalive_expiry = x;
    Engine e{limits};
    CHECK(fetch(e, port, x));
    CHECK(fetch(e, port, x));
    CHECK(e.connection_count() == 1);  // kept: never expires
    // The one connection switched (101, out of the pool for good): a request
    // with this pool timeout waits for a connection, without timing out.
    std::shared_ptr<Transfer> up = switch_up(e, port);
    CHECK(up->head_ready && up->head.status == 101);
    RequestSpec spec = make_spec("127.0.0.1", port);
    spec.pool_timeout = x;
    std::shared_ptr<Transfer> queued = e.submit(std::move(spec));
    CHECK(!e.wait(*queued, WaitFor::kComplete, 150));
    CHECK(!queued->failed() && queued->phase == Transfer::Phase::kQueued);
    e.release(*up);  // closes the switched connection: room for a new one
    auto t0 = Clock::now();
    while (!e.wait(*queued, WaitFor::kComplete, 50) && seconds_since(t0) < 5) {
    }
    CHECK(queued->complete && !queued->failed());
    e.release(*queued);
  }
}

int main() {
  Server server;
  test_timeouts_out_of_range(server.port);
  test_handle_count_check();
  test_close_with_running_lookup(server.port);
  test_fork_keeps_parent_pool(server.port);
  test_switched_raw_stream(server.port);
  test_happy_eyeballs(server.port);
  return check_report("test_engine_lifecycle");
}
