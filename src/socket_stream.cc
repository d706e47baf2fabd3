#include "socket_stream.h"

#include <netdb.h>
#include <poll.h>
#include <sys/ioctl.h>
#ifdef __linux__
#include <linux/sockios.h>  // SIOCOUTQ
#endif
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <new>

namespace httprs {

namespace {

// libuv's answer `rc` on taking over `fd` (uv_tcp_open, uv_pipe_open); on a
// refusal the descriptor is closed and `err` says why.
bool taken_over(int rc, int fd, Error& err) {
  if (rc >= 0) return true;
  ::close(fd);
  err.set(ErrorKind::kConnectError, errno_message(rc));
  return false;
}

std::string gai_message(int uv_status) {
  switch (uv_status) {
    case UV_EAI_NONAME:
      return "[Errno -2] Name or service not known";
    case UV_EAI_AGAIN:
      return "[Errno -3] Temporary failure in name resolution";
    case UV_EAI_NODATA:
      return "[Errno -5] No address associated with hostname";
    default:
      return std::string("[Errno ") + std::to_string(uv_status) + "] " + uv_strerror(uv_status);
  }
}

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

// RFC 8305 section 4: the addresses to try, the families alternating from the
// family of the first answer (one address of it, then one of the other, ...),
// each family in the resolver's order: a family that does not work (a broken
// IPv6 route, say) delays the other by one attempt at most, not by all its own.
void interleave_families(std::vector<struct sockaddr_storage>& addrs) {
  if (addrs.size() < 3) return;
  sa_family_t first = addrs.front().ss_family;
  std::vector<struct sockaddr_storage> same, other, out;
  for (const auto& a : addrs) (a.ss_family == first ? same : other).push_back(a);
  out.reserve(addrs.size());
  for (size_t i = 0; i < same.size() || i < other.size(); i++) {
    if (i < same.size()) out.push_back(same[i]);
    if (i < other.size()) out.push_back(other[i]);
  }
  addrs.swap(out);
}

}  // namespace

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

struct SocketStream::Resolve {
  uv_getaddrinfo_t req;
  SocketStream* sock;
};

// One connect attempt of a race, on its own handle. It frees itself in its
// close callback; `sock` is null once the stream no longer waits for it.
struct SocketStream::Attempt {
  uv_tcp_t tcp;  // first: the handle's address is the attempt's (closed())
  uv_connect_t req;
  SocketStream* sock;
  bool reading = false;  // its read started with the connect
  static void closed(uv_handle_t* h) { delete reinterpret_cast<Attempt*>(h); }
};

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

// ---------------------------------------------------------------- connecting

void SocketStream::connect(SocketTarget target) {
  target_ = std::move(target);
  if (uds_) {
    connect_unix();
    return;
  }
  resolve();
}

// A Unix socket connects at once or fails at once (never EINPROGRESS; a full
// listen backlog is EAGAIN, as it was through libuv), so the socket is made
// and connected here, to the path's exact bytes: an abstract name (a leading
// NUL) included, and a path longer than sun_path refused as Python refuses it.
// libuv's uv_pipe_connect takes a C string and cut a long path down to what
// fits: another socket's name.
void SocketStream::connect_unix() {
  state_ = State::kConnecting;
  Error err;
  int fd = -1;
  if (unix_socket_connected(&fd, err) && taken_over(uv_pipe_open(&sock_.pipe, fd), fd, err)) {
    state_ = State::kOpen;
    start_reading();
    owner_->on_socket_connected();
    return;
  }
  fail_connect(err);
}

bool SocketStream::unix_socket_connected(int* fd, Error& err) {
  const std::string& path = target_.uds_path;
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof addr);
  // Python's rules: a path keeps room for its terminating NUL, an abstract name
  // fills sun_path at most.
  size_t end = path[0] == '\0' ? path.size() : path.size() + 1;
  if (end > sizeof addr.sun_path) {
    err.set(ErrorKind::kConnectError, "AF_UNIX path too long");
    return false;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  auto len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + end);
  *fd = socket_with_options(AF_UNIX, err);
  if (*fd < 0) return false;
  int rc;
  do {
    rc = ::connect(*fd, reinterpret_cast<struct sockaddr*>(&addr), len);
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) return true;
  err.set(ErrorKind::kConnectError, errno_message(-errno));
  ::close(*fd);
  *fd = -1;
  return false;
}

bool SocketStream::adopt(int fd, Error& err) {
  int type = 0;
  socklen_t type_len = sizeof type;
  struct sockaddr_storage peer;
  socklen_t peer_len = sizeof peer;
  bool tcp = !uds_ && state_ == State::kIdle &&
             ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) == 0 && type == SOCK_STREAM &&
             ::getpeername(fd, reinterpret_cast<struct sockaddr*>(&peer), &peer_len) == 0 &&
             (peer.ss_family == AF_INET || peer.ss_family == AF_INET6);
  int rc = tcp ? uv_tcp_open(&sock_.tcp, fd) : 0;  // (makes it non-blocking)
  if (!tcp || rc < 0) {
    ::close(fd);
    err.set(ErrorKind::kConnectError,
            tcp ? errno_message(rc) : "the socket connected for the request is not a TCP stream");
    return false;
  }
  state_ = State::kOpen;
  uv_tcp_nodelay(&sock_.tcp, 1);
  start_reading();
  return true;
}

bool SocketStream::add_literal(const std::string& host) {
  struct sockaddr_storage ss;
  std::memset(&ss, 0, sizeof ss);
  if (uv_ip4_addr(host.c_str(), target_.port, reinterpret_cast<struct sockaddr_in*>(&ss)) != 0) {
    std::memset(&ss, 0, sizeof ss);
    if (uv_ip6_addr(host.c_str(), target_.port, reinterpret_cast<struct sockaddr_in6*>(&ss)) != 0)
      return false;
  }
  addrs_.push_back(ss);
  return true;
}

void SocketStream::resolve() {
  std::string host = target_.host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (add_literal(host)) {
    for (const std::string& more : target_.more_addresses) add_literal(more);
    connect_addresses();
    return;
  }
  auto* r = new Resolve;
  r->sock = this;
  r->req.data = r;
  struct addrinfo hints;
  std::memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  std::string port = std::to_string(target_.port);
  int rc = uv_getaddrinfo(loop_, &r->req, &SocketStream::on_resolved, host.c_str(), port.c_str(),
                          &hints);
  if (rc < 0) {
    delete r;
    Error err;
    err.set(ErrorKind::kConnectError, gai_message(rc));
    fail_connect(err);
    return;
  }
  state_ = State::kResolving;
  resolving_ = r;
}

void SocketStream::on_resolved(uv_getaddrinfo_t* req, int status, struct addrinfo* res) {
  auto* r = static_cast<Resolve*>(req->data);
  SocketStream* s = r->sock;
  delete r;
  if (s == nullptr) {  // the socket closed while we were resolving
    if (res) uv_freeaddrinfo(res);
    return;
  }
  s->resolving_ = nullptr;
  if (status < 0) {
    Error err;
    err.set(ErrorKind::kConnectError, gai_message(status));
    s->fail_connect(err);
    return;
  }
  for (struct addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    struct sockaddr_storage ss;
    std::memset(&ss, 0, sizeof ss);
    std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    s->addrs_.push_back(ss);
  }
  uv_freeaddrinfo(res);
  s->connect_addresses();
}

void SocketStream::keep_local_family() {
  // A socket bound to an IPv4 local address can only reach IPv4 peers (and the
  // same for IPv6): "0.0.0.0" is how httpx users ask for IPv4 only.
  const std::string& local = target_.local_address;
  if (local.empty()) return;
  int family = local.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  std::vector<struct sockaddr_storage> kept;
  for (const auto& a : addrs_)
    if (a.ss_family == family) kept.push_back(a);
  if (kept.empty() && !addrs_.empty())
    last_error_.set(ErrorKind::kConnectError,
                    "no address of the host has the family of local_address " + local);
  addrs_.swap(kept);
}

void SocketStream::connect_addresses() {
  keep_local_family();
  interleave_families(addrs_);
  if (addrs_.size() > 1) {
    state_ = State::kRacing;
    race_next();
    return;
  }
  state_ = State::kConnecting;
  connect_next();
}

bool SocketStream::own_socket() const {
  return (target_.options && !target_.options->empty()) || !target_.local_address.empty();
}

void SocketStream::connect_next() {
  if (addr_index_ >= addrs_.size()) {
    Error err = last_error_;
    if (!err) err.set(ErrorKind::kConnectError, "[Errno -2] Name or service not known");
    fail_connect(err);
    return;
  }
  const auto* addr = reinterpret_cast<const struct sockaddr*>(&addrs_[addr_index_++]);
  if (own_socket()) {
    Error err;
    if (!open_socket_with_options(&sock_.tcp, addr->sa_family, err)) {
      fail_connect(err);
      return;
    }
  }
  connect_req_.data = this;
  int rc = 0;
  if (!fault_due(FaultSite::kConnect, &rc))
    rc = uv_tcp_connect(&connect_req_, &sock_.tcp, addr, &SocketStream::on_connect);
  if (rc < 0) {
    last_error_.set(ErrorKind::kConnectError, errno_message(rc));
    reopen();  // the handle may be unusable now
    return;
  }
  read_while_connecting();
}

// Reading starts with the connect: libuv registers the socket with epoll for
// both (one EPOLL_CTL_ADD), reports the connect first (its read callback only
// runs once the connect callback has), and leaves the socket registered for
// reading when the connect ends (one EPOLL_CTL_MOD). Started after the
// connect, the read watcher was a new registration of a socket epoll still
// held (EPOLL_CTL_ADD failing with EEXIST, then EPOLL_CTL_MOD): one system
// call more per connection. A failed connect stops it again (on_connect).
void SocketStream::read_while_connecting() {
  if (!reading_ && uv_read_start(stream(), &SocketStream::on_alloc, &SocketStream::on_read) == 0)
    reading_ = uv_reading_ = true;
}

void SocketStream::reopen() {
  state_ = State::kReopening;
  uv_close(handle(), &SocketStream::on_close);
}

void SocketStream::fail_connect(const Error& err) { owner_->on_socket_connect_failed(err); }

// ---------------------------------------------------------------- racing

// Start the next address's attempt (going on to the one after when an address
// fails at once), and time the one after that. With nothing left to start and
// nothing connecting, the race is lost: the last error is the connect error.
void SocketStream::race_next() {
  while (addr_index_ < addrs_.size()) {
    const auto* addr = reinterpret_cast<const struct sockaddr*>(&addrs_[addr_index_++]);
    if (start_attempt(addr)) {
      if (addr_index_ < addrs_.size()) arm_attempt_timer();
      return;
    }
  }
  close_attempt_timer();
  if (attempts_.empty()) {
    Error err = last_error_;
    if (!err) err.set(ErrorKind::kConnectError, "[Errno -2] Name or service not known");
    fail_connect(err);
  }
}

bool SocketStream::start_attempt(const struct sockaddr* addr) {
  auto* a = new Attempt;
  a->sock = this;
  uv_tcp_init(loop_, &a->tcp);
  // The handle's callbacks find the stream: its read starts with the connect
  // (see read_while_connecting), and libuv reports the connect first, by
  // which time a loser is closed and the winner is the stream's.
  a->tcp.data = this;
  a->req.data = a;
  Error err;
  if (own_socket() && !open_socket_with_options(&a->tcp, addr->sa_family, err)) {
    last_error_ = err;
    a->sock = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&a->tcp), &Attempt::closed);
    return false;
  }
  int rc = 0;
  if (!fault_due(FaultSite::kConnect, &rc))
    rc = uv_tcp_connect(&a->req, &a->tcp, addr, &SocketStream::on_attempt_connect);
  if (rc == 0)
    a->reading = uv_read_start(reinterpret_cast<uv_stream_t*>(&a->tcp), &SocketStream::on_alloc,
                               &SocketStream::on_read) == 0;
  if (rc < 0) {
    last_error_.set(ErrorKind::kConnectError, errno_message(rc));
    a->sock = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&a->tcp), &Attempt::closed);
    return false;
  }
  attempts_.push_back(a);
  return true;
}

void SocketStream::on_attempt_connect(uv_connect_t* req, int status) {
  auto* a = static_cast<Attempt*>(req->data);
  SocketStream* s = a->sock;
  if (s == nullptr || s->state_ != State::kRacing) return;  // dropped (UV_ECANCELED)
  if (status < 0)
    s->attempt_failed(a, status);
  else
    s->attempt_won(a);
}

void SocketStream::attempt_failed(Attempt* a, int status) {
  last_error_.set(ErrorKind::kConnectError, errno_message(status));
  drop_attempt(a);
  // A refused or unreachable address hands over at once (RFC 8305 section 5).
  race_next();
}

void SocketStream::attempt_won(Attempt* a) {
  // The winner's handle becomes the stream's (its socket, already in epoll
  // and read from the connect on, stays as it is); the stream's own handle,
  // never opened in a race, closes. Moving the socket into that handle
  // instead cost a dup(), an ioctl, a close() and two epoll_ctl per
  // connection. on_close reports the stream closed once both handles are.
  attempts_.erase(std::remove(attempts_.begin(), attempts_.end(), a), attempts_.end());
  drop_all_attempts();
  close_attempt_timer();
  won_ = a;
  reading_ = uv_reading_ = a->reading;
  spare_closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&sock_), &SocketStream::on_close);
  state_ = State::kOpen;
  uv_tcp_nodelay(tcp(), 1);
  start_reading();
  owner_->on_socket_connected();
}

void SocketStream::drop_attempt(Attempt* a) {
  attempts_.erase(std::remove(attempts_.begin(), attempts_.end(), a), attempts_.end());
  a->sock = nullptr;
  // A connect still pending calls back first, with UV_ECANCELED.
  uv_close(reinterpret_cast<uv_handle_t*>(&a->tcp), &Attempt::closed);
}

void SocketStream::drop_all_attempts() {
  while (!attempts_.empty()) drop_attempt(attempts_.back());
}

void SocketStream::arm_attempt_timer() {
  if (attempt_timer_ == nullptr) {
    attempt_timer_ = new uv_timer_t;
    uv_timer_init(loop_, attempt_timer_);
    attempt_timer_->data = this;
  }
  uv_timer_start(attempt_timer_, &SocketStream::on_attempt_timer, kAttemptDelayMs, 0);
}

void SocketStream::on_attempt_timer(uv_timer_t* t) {
  auto* s = static_cast<SocketStream*>(t->data);
  if (s->state_ == State::kRacing) s->race_next();
}

void SocketStream::close_attempt_timer() {
  if (attempt_timer_ == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(attempt_timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  attempt_timer_ = nullptr;
}

// ---------------------------------------------------------------- socket setup

int SocketStream::socket_with_options(int family, Error& err) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    err.set(ErrorKind::kConnectError, errno_message(-errno));
    return -1;
  }
  // local_address does not apply to a Unix socket (httpcore ignores it there too).
  bool bind = family != AF_UNIX;
  if (!apply_socket_options(fd, err) || (bind && !bind_local_address(fd, family, err))) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SocketStream::open_socket_with_options(uv_tcp_t* tcp, int family, Error& err) {
  // Our own socket, so the options apply before connect() (buffer sizes,
  // keep-alive, ...); libuv takes it over with uv_tcp_open.
  int fd = socket_with_options(family, err);
  return fd >= 0 && taken_over(uv_tcp_open(tcp, fd), fd, err);
}

bool SocketStream::bind_local_address(int fd, int family, Error& err) {
  const std::string& local = target_.local_address;
  if (local.empty()) return true;
  struct sockaddr_storage ss;
  std::memset(&ss, 0, sizeof ss);
  int rc = family == AF_INET6
               ? uv_ip6_addr(local.c_str(), 0, reinterpret_cast<struct sockaddr_in6*>(&ss))
               : uv_ip4_addr(local.c_str(), 0, reinterpret_cast<struct sockaddr_in*>(&ss));
  socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (rc != 0 || ::bind(fd, reinterpret_cast<struct sockaddr*>(&ss), len) != 0) {
    err.set(ErrorKind::kConnectError,
            rc != 0 ? "invalid local_address " + local : errno_message(-errno));
    return false;
  }
  return true;
}

bool SocketStream::apply_socket_options(int fd, Error& err) {
  if (!target_.options) return true;
  for (const SocketOption& o : *target_.options) {
    int rc = 0;
    switch (o.kind) {
      case SocketOption::Kind::kInt:
        rc = ::setsockopt(fd, o.level, o.name, &o.int_value, sizeof o.int_value);
        break;
      case SocketOption::Kind::kBytes:
        rc = ::setsockopt(fd, o.level, o.name, o.bytes_value.data(),
                          static_cast<socklen_t>(o.bytes_value.size()));
        break;
      case SocketOption::Kind::kNull:
        rc = ::setsockopt(fd, o.level, o.name, nullptr, o.null_length);
        break;
    }
    if (rc != 0) {
      err.set(ErrorKind::kConnectError, errno_message(-errno));
      return false;
    }
  }
  return true;
}

void SocketStream::on_connect(uv_connect_t* req, int status) {
  auto* s = static_cast<SocketStream*>(req->data);
  if (s->state_ != State::kConnecting) return;  // closed meanwhile
  if (status < 0) {
    s->stop_reading();  // nothing to read on a socket that did not connect
    s->last_error_.set(ErrorKind::kConnectError, errno_message(status));
    if (s->addr_index_ < s->addrs_.size()) {
      s->reopen();
      return;
    }
    s->fail_connect(s->last_error_);
    return;
  }
  s->state_ = State::kOpen;
  uv_tcp_nodelay(&s->sock_.tcp, 1);  // (a Unix socket connects in connect_unix)
  s->start_reading();
  s->owner_->on_socket_connected();
}

// ---------------------------------------------------------------- writing

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
std::atomic<uint64_t> g_reads_held{0};
}  // namespace

void SocketStream::set_flight_hook_for_testing(void (*hook)()) { g_flight_hook = hook; }

uint64_t SocketStream::reads_held_for_testing() { return g_reads_held.load(); }

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

// ---------------------------------------------------------------- reading

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

void SocketStream::break_for_fault() {
  // A write the kernel fails with a reset or EPIPE leaves a dead connection:
  // later reads see its end too, not a server still waiting for the request.
  int sock = fd();
  if (sock >= 0) ::shutdown(sock, SHUT_RDWR);
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
