// SocketStream's home (see socket_stream.h): construction, the handle in use
// (the stream's own or a race's winner's), closing, the fork child's drop; and
// what every part uses: the fault injection, errno_message. Connecting is
// socket_connect.cc, the Happy Eyeballs race socket_race.cc, writing
// socket_write.cc, reading socket_read.cc.
#include "socket_stream.h"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>

#include "socket_stream_internal.h"

namespace httprs {

namespace {

struct FaultPoint {
  std::atomic<int> fail_at{0};  // 0: disarmed
  std::atomic<int> calls{0};
  std::atomic<int> status{0};
};
FaultPoint fault_points[3];
std::atomic<bool> faults_counting{false};  // set once any site was armed

}  // namespace

void fault_arm(FaultSite site, int k, int status) {
  FaultPoint& p = fault_points[static_cast<int>(site)];
  p.fail_at.store(0, std::memory_order_relaxed);
  p.calls.store(0, std::memory_order_relaxed);
  p.status.store(status, std::memory_order_relaxed);
  p.fail_at.store(k, std::memory_order_relaxed);
  faults_counting.store(true, std::memory_order_release);
}

int fault_calls(FaultSite site) {
  return fault_points[static_cast<int>(site)].calls.load(std::memory_order_relaxed);
}

bool fault_due(FaultSite site, int* status) {
  if (!faults_counting.load(std::memory_order_relaxed)) return false;
  FaultPoint& p = fault_points[static_cast<int>(site)];
  int n = p.calls.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n != p.fail_at.load(std::memory_order_relaxed)) return false;
  *status = p.status.load(std::memory_order_relaxed);
  return true;
}

std::string errno_message(int uv_status) {
  // libuv errors are negated errno values on Unix.
  int code = -uv_status;
  return "[Errno " + std::to_string(code) + "] " + std::strerror(code);
}

SocketTarget SocketTarget::from(const RequestSpec& spec) {
  SocketTarget t;
  t.host = spec.connect_host;
  t.port = spec.connect_port;
  t.uds_path = spec.uds_path;
  t.local_address = spec.local_address;
  t.more_addresses = spec.more_addresses;
  t.options = spec.socket_options;
  return t;
}

SocketStream::SocketStream(uv_loop_t* loop, Owner* owner, bool uds)
    : loop_(loop), owner_(owner), uds_(uds) {
  init_handle();
}

SocketStream::~SocketStream() { drop_deferred(); }

void SocketStream::init_handle() {
  if (uds_)
    uv_pipe_init(loop_, &sock_.pipe, 0);
  else
    uv_tcp_init(loop_, &sock_.tcp);
  handle()->data = this;
}

uv_tcp_t* SocketStream::tcp() { return won_ != nullptr ? &won_->tcp : &sock_.tcp; }

uv_handle_t* SocketStream::handle() {
  return won_ != nullptr ? reinterpret_cast<uv_handle_t*>(&won_->tcp)
                         : reinterpret_cast<uv_handle_t*>(&sock_);
}

bool SocketStream::handle_open() const {
  return state_ == State::kIdle || state_ == State::kResolving || state_ == State::kConnecting ||
         state_ == State::kRacing || state_ == State::kOpen;
}

int SocketStream::fd() {
  uv_os_fd_t fd = -1;
  if (!handle_open() || uv_fileno(handle(), &fd) != 0) return -1;
  return fd;
}

// ---------------------------------------------------------------- closing

void SocketStream::close() {
  if (resolving_) {
    resolving_->sock = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(&resolving_->req));
    resolving_ = nullptr;
  }
  drop_all_attempts();
  close_attempt_timer();
  bool open = handle_open();
  State was = state_;
  state_ = State::kClosing;
  if (!open) {
    if (was == State::kClosed) state_ = State::kClosed;
    return;  // kReopening: the handle is closing already; on_close reports it
  }
  stop_reading();
  if (in_flight_) {
    close_after_flight_ = true;  // end_deferred closes it: the descriptor is in use
    return;
  }
  drop_deferred();
  uv_close(handle(), &SocketStream::on_close);
}

void SocketStream::drop_after_fork() {
  if (resolving_) {  // its getaddrinfo ran in the parent's thread pool: it never calls back
    resolving_->sock = nullptr;
    resolving_ = nullptr;
  }
  uv_os_fd_t fd = -1;
  if (handle_open() && uv_fileno(handle(), &fd) == 0 && fd >= 0) ::close(fd);
  // A race's attempts: their descriptors too (their memory is left with the old
  // loop, as a race's winner's is).
  for (Attempt* a : attempts_) {
    a->sock = nullptr;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(&a->tcp), &fd) == 0 && fd >= 0) ::close(fd);
  }
  attempts_.clear();
  attempt_timer_ = nullptr;
  in_flight_ = false;  // its thread stayed in the parent
  close_after_flight_ = false;
  state_ = State::kClosed;
}

void SocketStream::on_close(uv_handle_t* h) {
  auto* s = static_cast<SocketStream*>(h->data);
  if (s->spare_closing_ && h == reinterpret_cast<uv_handle_t*>(&s->sock_)) {
    // The stream's own handle, left unused by a race's winner: the stream is
    // closed once this one and the winner's are (either may close first).
    s->spare_closing_ = false;
    if (s->state_ == State::kClosed) s->owner_->on_socket_closed();
    return;
  }
  if (s->state_ == State::kReopening) {
    // A failed connect attempt: try the next address on a fresh handle.
    s->init_handle();
    s->state_ = State::kConnecting;
    s->connect_next();
    return;
  }
  s->state_ = State::kClosed;
  if (s->won_ != nullptr) {  // the race's winner's handle: libuv is done with it
    delete s->won_;
    s->won_ = nullptr;
  }
  if (!s->spare_closing_) s->owner_->on_socket_closed();
}

}  // namespace httprs
