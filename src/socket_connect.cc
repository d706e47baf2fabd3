// SocketStream connecting (see socket_stream.h): a Unix socket, an adopted
// descriptor, DNS or IP literals, then one address after another on the
// stream's own handle; and the socket setup every connect uses (options and
// local_address applied before connect()). Several addresses race instead
// (socket_race.cc).
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "socket_stream.h"
#include "socket_stream_internal.h"

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

}  // namespace httprs
