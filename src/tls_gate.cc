// TlsGate (see tls_gate.h): a count of passes inside and a closed flag, under a mutex.
#include "tls_gate.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <new>
#include <thread>

namespace httprs {

namespace {

enum class GateState { kOpen, kClosed };

struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  GateState state = GateState::kOpen;
  std::atomic<int> inside{0};  // written under mu; read without it by tests
  std::atomic<int> pause_ms{0};
};

Gate& gate() {
  static Gate* g = new Gate;  // never destroyed: passes may outlive static destructors
  return *g;
}

}  // namespace

TlsGate::Pass::Pass() {
  Gate& g = gate();
  {
    std::unique_lock<std::mutex> lk(g.mu);
    g.cv.wait(lk, [&g] { return g.state == GateState::kOpen; });
    g.inside.fetch_add(1);
  }
  int ms = g.pause_ms.exchange(0);
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

TlsGate::Pass::~Pass() {
  Gate& g = gate();
  std::lock_guard<std::mutex> lk(g.mu);
  if (g.inside.fetch_sub(1) == 1) g.cv.notify_all();
}

void TlsGate::close() {
  Gate& g = gate();
  std::unique_lock<std::mutex> lk(g.mu);
  g.state = GateState::kClosed;
  g.cv.wait(lk, [&g] { return g.inside.load() == 0; });
}

void TlsGate::open() {
  Gate& g = gate();
  {
    std::lock_guard<std::mutex> lk(g.mu);
    g.state = GateState::kOpen;
  }
  g.cv.notify_all();
}

void TlsGate::reset_in_child() {
  // Only the forking thread exists now; the threads waiting for the gate stayed in
  // the parent, and none was inside (close() waited).
  Gate& g = gate();
  new (&g.mu) std::mutex;
  new (&g.cv) std::condition_variable;
  g.state = GateState::kOpen;
  g.inside.store(0);
}

void TlsGate::pause_next(int ms) { gate().pause_ms.store(ms); }

int TlsGate::inside() { return gate().inside.load(); }

}  // namespace httprs
