#include "connection.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace httprs {

namespace {

constexpr size_t kHighWater = 1 << 20;        // pause reading when this much body is unread
constexpr uint64_t kDrainLimit = 256 * 1024;  // abandoned responses: drain at most this much
constexpr double kDrainSeconds = 0.5;         // ... for at most this long

struct WriteReq {
  uv_write_t req;
  std::string owned;
  Connection* conn;
};

std::string errno_message(int uv_status) {
  // libuv errors are negated errno values on Unix.
  int code = -uv_status;
  return "[Errno " + std::to_string(code) + "] " + std::strerror(code);
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

uint64_t to_ms(double seconds) {
  double ms = seconds * 1000.0;
  if (ms < 1) return 1;
  return static_cast<uint64_t>(ms);
}

thread_local char tls_scratch[64 * 1024];
thread_local char proxy_scratch[64 * 1024];  // the proxy TLS layer's plaintext

}  // namespace

struct Connection::Resolve {
  uv_getaddrinfo_t req;
  Connection* conn;
};

Connection::Connection(Engine* engine, std::shared_ptr<Transfer> t)
    : engine_(engine), key_(t->spec.pool_key), cur_(std::move(t)) {
  uds_ = !cur_->spec.uds_path.empty();
  init_stream();
  uv_timer_init(engine_->loop(), &timer_);
  timer_.data = this;
  handles_open_ = 2;
  cur_->conn = this;
  cur_->phase = Transfer::Phase::kConnecting;
  trace_gate(TraceStep::kConnect, &Connection::start_connecting);
}

void Connection::start_connecting() {
  arm_timer(TimerMode::kConnect);
  resolve();
}

// ---------------------------------------------------------------- tracing

void Connection::trace_step(TraceStep step) {
  if (!cur_ || !cur_->spec.trace) return;
  cur_->trace_steps.push_back(static_cast<int>(step));
  engine_->signal(*cur_);
}

void Connection::trace_gate(TraceStep step, Step next) {
  if (!cur_ || !cur_->spec.trace) {
    (this->*next)();
    return;
  }
  // The consumer's trace callback runs before the phase: its time is not
  // the phase's, so no timer runs while we wait for it.
  arm_timer(TimerMode::kNone);
  gated_ = next;
  trace_step(step);
}

void Connection::pass_trace_gate(Transfer& t) {
  if (gated_ == nullptr || cur_.get() != &t || state_ == State::kClosing) return;
  Step next = gated_;
  gated_ = nullptr;
  // Connecting phases run under the connect timeout, stopped at the gate.
  if (next == &Connection::start_tls || next == &Connection::start_proxy_tls ||
      next == &Connection::start_tunnel || next == &Connection::start_socks)
    arm_timer(TimerMode::kConnect);
  (this->*next)();
}

Connection::~Connection() = default;

void Connection::init_stream() {
  if (uds_)
    uv_pipe_init(engine_->loop(), &sock_.pipe, 0);
  else
    uv_tcp_init(engine_->loop(), &sock_.tcp);
  handle()->data = this;
  tcp_open_ = true;
}

// ---------------------------------------------------------------- connecting

void Connection::resolve() {
  const RequestSpec& spec = cur_->spec;
  if (uds_) {
    state_ = State::kConnecting;
    connect_req_.data = this;
    uv_pipe_connect(&connect_req_, &sock_.pipe, spec.uds_path.c_str(), &Connection::on_connect);
    connect_pending_ = true;
    return;
  }
  std::string host = spec.connect_host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  struct sockaddr_storage ss;
  std::memset(&ss, 0, sizeof ss);
  auto* v4 = reinterpret_cast<struct sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<struct sockaddr_in6*>(&ss);
  if (uv_ip4_addr(host.c_str(), spec.connect_port, v4) == 0) {
    addrs_.push_back(ss);
    keep_local_family();
    state_ = State::kConnecting;
    connect_next();
    return;
  }
  std::memset(&ss, 0, sizeof ss);
  if (uv_ip6_addr(host.c_str(), spec.connect_port, v6) == 0) {
    addrs_.push_back(ss);
    keep_local_family();
    state_ = State::kConnecting;
    connect_next();
    return;
  }
  auto* r = new Resolve;
  r->conn = this;
  r->req.data = r;
  struct addrinfo hints;
  std::memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  std::string port = std::to_string(spec.connect_port);
  int rc = uv_getaddrinfo(engine_->loop(), &r->req, &Connection::on_resolved, host.c_str(),
                          port.c_str(), &hints);
  if (rc < 0) {
    delete r;
    Error err;
    err.set(ErrorKind::kConnectError, gai_message(rc));
    close(err);
    return;
  }
  resolving_ = r;
}

void Connection::on_resolved(uv_getaddrinfo_t* req, int status, struct addrinfo* res) {
  auto* r = static_cast<Resolve*>(req->data);
  Connection* c = r->conn;
  delete r;
  if (c == nullptr) {  // the connection closed while we were resolving
    if (res) uv_freeaddrinfo(res);
    return;
  }
  c->resolving_ = nullptr;
  if (status < 0) {
    Error err;
    err.set(ErrorKind::kConnectError, gai_message(status));
    c->close(err);
    return;
  }
  for (struct addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    struct sockaddr_storage ss;
    std::memset(&ss, 0, sizeof ss);
    std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    c->addrs_.push_back(ss);
  }
  uv_freeaddrinfo(res);
  c->keep_local_family();
  c->state_ = State::kConnecting;
  c->connect_next();
}

void Connection::keep_local_family() {
  // A socket bound to an IPv4 local address can only reach IPv4 peers (and the
  // same for IPv6): "0.0.0.0" is how httpx users ask for IPv4 only.
  const std::string& local = cur_ ? cur_->spec.local_address : std::string();
  if (local.empty()) return;
  int family = local.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  std::vector<struct sockaddr_storage> kept;
  for (const auto& a : addrs_)
    if (a.ss_family == family) kept.push_back(a);
  if (kept.empty() && !addrs_.empty())
    last_connect_error_.set(ErrorKind::kConnectError,
                            "no address of the host has the family of local_address " + local);
  addrs_.swap(kept);
}

void Connection::connect_next() {
  if (addr_index_ >= addrs_.size()) {
    Error err = last_connect_error_;
    if (!err) err.set(ErrorKind::kConnectError, "[Errno -2] Name or service not known");
    close(err);
    return;
  }
  const auto* addr = reinterpret_cast<const struct sockaddr*>(&addrs_[addr_index_++]);
  bool own_socket = cur_ && ((cur_->spec.socket_options && !cur_->spec.socket_options->empty()) ||
                             !cur_->spec.local_address.empty());
  if (own_socket) {
    Error err;
    if (!open_socket_with_options(addr->sa_family, err)) {
      close(err);
      return;
    }
  }
  connect_req_.data = this;
  int rc = uv_tcp_connect(&connect_req_, &sock_.tcp, addr, &Connection::on_connect);
  if (rc < 0) {
    last_connect_error_.set(ErrorKind::kConnectError, errno_message(rc));
    // The handle may be unusable now; retry on a fresh one.
    reconnect_ = true;
    tcp_open_ = false;
    uv_close(handle(), &Connection::on_close);
    return;
  }
  connect_pending_ = true;
}

bool Connection::open_socket_with_options(int family, Error& err) {
  // Our own socket, so the options apply before connect() (buffer sizes,
  // keep-alive, ...); libuv takes it over with uv_tcp_open.
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    err.set(ErrorKind::kConnectError, errno_message(-errno));
    return false;
  }
  if (!apply_socket_options(fd, err) || !bind_local_address(fd, family, err)) {
    ::close(fd);
    return false;
  }
  int rc = uv_tcp_open(&sock_.tcp, fd);
  if (rc < 0) {
    ::close(fd);
    err.set(ErrorKind::kConnectError, errno_message(rc));
    return false;
  }
  return true;
}

bool Connection::bind_local_address(int fd, int family, Error& err) {
  const std::string& local = cur_->spec.local_address;
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

bool Connection::apply_socket_options(int fd, Error& err) {
  if (!cur_->spec.socket_options) return true;
  for (const SocketOption& o : *cur_->spec.socket_options) {
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

void Connection::on_connect(uv_connect_t* req, int status) {
  auto* c = static_cast<Connection*>(req->data);
  c->connect_pending_ = false;
  if (c->state_ == State::kClosing) return;
  if (status < 0) {
    c->last_connect_error_.set(ErrorKind::kConnectError, errno_message(status));
    if (c->addr_index_ < c->addrs_.size()) {
      c->reconnect_ = true;
      c->tcp_open_ = false;
      uv_close(c->handle(), &Connection::on_close);
      return;
    }
    c->close(c->last_connect_error_);
    return;
  }
  c->on_tcp_connected();
}

void Connection::on_tcp_connected() {
  if (!uds_) uv_tcp_nodelay(&sock_.tcp, 1);
  start_reading();
  if (!cur_) {
    close(Error());
    return;
  }
  trace_step(TraceStep::kConnected);
  if (cur_->spec.proxy_tls) {
    trace_gate(TraceStep::kProxyTls, &Connection::start_proxy_tls);
    return;
  }
  after_proxy_tls();
}

void Connection::after_proxy_tls() {
  if (!cur_->spec.socks_host.empty()) {
    trace_gate(TraceStep::kSocks, &Connection::start_socks);
  } else if (!cur_->spec.tunnel_authority.empty()) {
    trace_gate(TraceStep::kTunnel, &Connection::start_tunnel);
  } else {
    after_tunnel();
  }
}

void Connection::after_tunnel() {
  if (cur_->spec.tls) {
    trace_gate(TraceStep::kTls, &Connection::start_tls);
  } else {
    on_established();
  }
}

// ---------------------------------------------------------------- SOCKS5 (RFC 1928)

namespace {

// Reply texts and method names worded as httpcore reports them.
std::string socks_reply_text(unsigned char code) {
  switch (code) {
    case 1:
      return "General SOCKS server failure";
    case 2:
      return "Connection not allowed by ruleset";
    case 3:
      return "Network unreachable";
    case 4:
      return "Host unreachable";
    case 5:
      return "Connection refused";
    case 6:
      return "TTL expired";
    case 7:
      return "Command not supported";
    case 8:
      return "Address type not supported";
    default:
      return "Unknown reply " + std::to_string(code);
  }
}

std::string socks_method_name(unsigned char method) {
  switch (method) {
    case 0:
      return "NO AUTHENTICATION REQUIRED";
    case 1:
      return "GSSAPI";
    case 2:
      return "USERNAME/PASSWORD";
    case 0xff:
      return "NO ACCEPTABLE METHODS";
    default:
      return "METHOD " + std::to_string(method);
  }
}

}  // namespace

void Connection::start_socks() {
  state_ = State::kSocks;
  socks_step_ = SocksStep::kMethod;
  socks_buf_.clear();
  // Offer exactly one method: username/password when we have credentials.
  bool auth = !cur_->spec.socks_username.empty();
  std::string hello = {'\x05', '\x01', auth ? '\x02' : '\x00'};
  send_wire(std::move(hello), nullptr, 0);
}

void Connection::on_socks_data(const char* data, size_t len) {
  socks_buf_.append(data, len);
  const RequestSpec& spec = cur_->spec;
  Error err;
  auto fail = [&](const std::string& message) {
    err.set(ErrorKind::kProxyError, message);
    close(err);
  };
  if (socks_step_ == SocksStep::kMethod) {
    if (socks_buf_.size() < 2) return;
    auto version = static_cast<unsigned char>(socks_buf_[0]);
    auto method = static_cast<unsigned char>(socks_buf_[1]);
    socks_buf_.erase(0, 2);
    bool auth = !spec.socks_username.empty();
    if (version != 5) return fail("the SOCKS proxy did not answer with SOCKS version 5");
    unsigned char wanted = auth ? 2 : 0;
    if (method != wanted)
      return fail("Requested " + socks_method_name(wanted) + " from proxy server, but got " +
                  socks_method_name(method) + ".");
    if (auth) {
      if (spec.socks_username.size() > 255 || spec.socks_password.size() > 255)
        return fail("SOCKS username and password must be at most 255 bytes");
      std::string req = {'\x01', static_cast<char>(spec.socks_username.size())};
      req += spec.socks_username;
      req += static_cast<char>(spec.socks_password.size());
      req += spec.socks_password;
      socks_step_ = SocksStep::kAuth;
      send_wire(std::move(req), nullptr, 0);
      return;
    }
    socks_step_ = SocksStep::kReply;
  } else if (socks_step_ == SocksStep::kAuth) {
    if (socks_buf_.size() < 2) return;
    auto status = static_cast<unsigned char>(socks_buf_[1]);
    socks_buf_.erase(0, 2);
    if (status != 0) return fail("Invalid username/password");
    socks_step_ = SocksStep::kReply;
  } else {
    // CONNECT reply: VER REP RSV ATYP BND.ADDR BND.PORT
    if (socks_buf_.size() < 5) return;
    auto rep = static_cast<unsigned char>(socks_buf_[1]);
    if (rep != 0) return fail("Proxy Server could not connect: " + socks_reply_text(rep) + ".");
    auto atyp = static_cast<unsigned char>(socks_buf_[3]);
    size_t addr_len = atyp == 1   ? 4
                      : atyp == 4 ? 16
                      : atyp == 3 ? 1 + static_cast<unsigned char>(socks_buf_[4])
                                  : 0;
    if (addr_len == 0) return fail("the SOCKS proxy sent an invalid address type");
    size_t need = 4 + addr_len + 2;
    if (socks_buf_.size() < need) return;
    if (socks_buf_.size() > need) return fail("the SOCKS proxy sent bytes after its reply");
    socks_buf_.clear();
    trace_step(TraceStep::kSocksDone);
    after_tunnel();
    return;
  }
  // Send the CONNECT request (after the method or the auth step).
  std::string req = {'\x05', '\x01', '\x00'};
  struct in_addr a4;
  struct in6_addr a6;
  std::string host = spec.socks_host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    req += '\x01';
    req.append(reinterpret_cast<const char*>(&a4), 4);
  } else if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    req += '\x04';
    req.append(reinterpret_cast<const char*>(&a6), 16);
  } else {
    if (host.size() > 255) return fail("host name too long for SOCKS5");
    req += '\x03';
    req += static_cast<char>(host.size());
    req += host;
  }
  req += static_cast<char>((spec.socks_port >> 8) & 0xff);
  req += static_cast<char>(spec.socks_port & 0xff);
  send_wire(std::move(req), nullptr, 0);
}

void Connection::start_proxy_tls() {
  Error err;
  proxy_tls_ = TlsSession::open(
      cur_->spec.proxy_tls, cur_->spec.proxy_tls_host, err,
      "proxy|" + cur_->spec.proxy_tls_host + ":" + std::to_string(cur_->spec.connect_port));
  if (err) {
    close(err);
    return;
  }
  state_ = State::kProxyHandshake;
  continue_proxy_handshake();
}

void Connection::continue_proxy_handshake() {
  Error err;
  TlsSession::Status st = proxy_tls_->handshake(err);
  flush_proxy_tls();
  if (state_ == State::kClosing) return;
  if (st == TlsSession::Status::kOk) {
    trace_step(TraceStep::kProxyTlsDone);
    after_proxy_tls();
  } else if (st == TlsSession::Status::kError) {
    err.kind = ErrorKind::kConnectError;
    close(err);
  }
}

void Connection::start_tunnel() {
  const RequestSpec& spec = cur_->spec;
  state_ = State::kTunnel;
  HeaderList headers;
  headers.emplace_back("Host", spec.tunnel_authority);
  for (const auto& h : spec.tunnel_headers) headers.push_back(h);
  std::string head;
  Error err;
  if (!serialize_request_head(head, "CONNECT", spec.tunnel_authority, headers, err)) {
    close(err);
    return;
  }
  parser_.reset(this, false, true);
  tunnel_status_ = 0;
  send_wire(std::move(head), nullptr, 0);
}

void Connection::start_tls() {
  Error err;
  // Resumable per peer: the pool key names origin, port, SNI name and any proxy.
  tls_ = TlsSession::open(cur_->spec.tls, cur_->spec.tls_host, err, cur_->spec.pool_key);
  if (err) {
    close(err);
    return;
  }
  state_ = State::kHandshake;
  continue_handshake();
}

void Connection::continue_handshake() {
  Error err;
  TlsSession::Status st = tls_->handshake(err);
  flush_tls();
  if (state_ == State::kClosing) return;
  if (st == TlsSession::Status::kOk) {
    trace_step(TraceStep::kTlsDone);
    on_established();
  } else if (st == TlsSession::Status::kError) {
    if (err.kind != ErrorKind::kConnectError) err.kind = ErrorKind::kConnectError;
    close(err);
  }
}

void Connection::on_established() {
  state_ = State::kActive;
  arm_timer(TimerMode::kNone);
  if (abandoned_) {
    abandoned_ = false;
    cur_.reset();
  }
  if (!cur_) {
    state_ = State::kIdle;
    engine_->on_connection_released(this);
    return;
  }
  expect_response();
  trace_gate(TraceStep::kSend, &Connection::start_transfer);
}

// ---------------------------------------------------------------- transfers

void Connection::assign(std::shared_ptr<Transfer> t) {
  reused_ = true;
  cur_ = std::move(t);
  cur_->conn = this;
  state_ = State::kActive;
  expect_response();
  trace_gate(TraceStep::kSend, &Connection::start_transfer);
}

void Connection::expect_response() {
  // Before any trace gate: an EOF while the consumer's callback runs must
  // find a parser waiting for this response (not the last one, complete) and
  // no byte of this request sent.
  parser_.reset(this, cur_->spec.head_request, false, cur_->spec.plan.upgrade);
  response_started_ = false;
  request_sent_any_ = false;
}

void Connection::start_transfer() {
  Transfer& t = *cur_;
  t.phase = Transfer::Phase::kSending;
  expect_response();
  // The body goes out exactly as serialize_request framed the head: chunked
  // coding when the head says chunked, else exactly content_length bytes.
  std::string head = t.spec.head;  // kept in the spec for a retry
  bool chunked = t.spec.plan.framing == BodyFraming::kChunked;
  if (t.spec.body_streamed) {
    body_in_flight_ = true;
    body_remaining_ = chunked ? 0 : t.spec.plan.content_length;
    write_out(std::move(head), nullptr, 0);
    if (state_ == State::kClosing || !cur_) return;
    if (writes_pending_ == 0 && body_in_flight_) {
      t.want_body = true;
      engine_->signal(t);
    }
  } else if (chunked) {
    body_in_flight_ = false;
    if (t.spec.body_len > 0) {
      append_chunk_size(head, t.spec.body_len);
      head.append(t.spec.body, t.spec.body_len);
      head.append("\r\n");
    }
    head.append(kLastChunk);
    write_out(std::move(head), nullptr, 0);
  } else {
    // serialize_request checked that body_len is the declared length.
    body_in_flight_ = false;
    write_out(std::move(head), t.spec.body, t.spec.body_len);
  }
}

void Connection::send_body_chunk(const char* data, size_t len, bool last) {
  if (!cur_ || state_ == State::kClosing) return;
  Transfer& t = *cur_;
  t.want_body = false;
  if (!body_in_flight_) return;  // the upload was cut short (a write failed): the response decides
  std::string out;
  if (t.spec.plan.framing == BodyFraming::kChunked) {
    if (len > 0) {
      append_chunk_size(out, len);
      out.append(data, len);
      out.append("\r\n");
    }
    if (last) out.append(kLastChunk);
  } else {
    // Never more (or, at the end, fewer) bytes than the head declared: the
    // server would read the difference as the start of another request.
    if (len > body_remaining_ || (last && len < body_remaining_)) {
      Error err;
      err.set(ErrorKind::kLocalProtocolError, len > body_remaining_
                                                  ? "Too much data for declared Content-Length"
                                                  : "Too little data for declared Content-Length");
      broken_ = true;
      fail_transfer(err);
      return;
    }
    body_remaining_ -= len;
    out.assign(data, len);
  }
  if (last) body_in_flight_ = false;
  if (out.empty()) {
    on_write_done();
    return;
  }
  write_out(std::move(out), nullptr, 0);
}

void Connection::write_out(std::string&& data, const char* ext, size_t ext_len) {
  if (tls_) {
    Error err;
    if ((!data.empty() && !tls_->write(data.data(), data.size(), err)) ||
        (ext_len > 0 && !tls_->write(ext, ext_len, err))) {
      fail_transfer(err);
      return;
    }
    flush_tls();
    return;
  }
  send_wire(std::move(data), ext, ext_len);
}

void Connection::flush_tls() {
  if (tls_ && tls_->pending_output() > 0) send_wire(tls_->take_output(), nullptr, 0);
}

void Connection::flush_proxy_tls() {
  if (proxy_tls_ && proxy_tls_->pending_output() > 0)
    write_raw(proxy_tls_->take_output(), nullptr, 0);
}

void Connection::send_wire(std::string&& data, const char* ext, size_t ext_len) {
  if (!proxy_tls_) {
    write_raw(std::move(data), ext, ext_len);
    return;
  }
  // Everything past the proxy handshake travels inside the proxy's TLS.
  Error err;
  if ((!data.empty() && !proxy_tls_->write(data.data(), data.size(), err)) ||
      (ext_len > 0 && !proxy_tls_->write(ext, ext_len, err))) {
    fail_transfer(err);
    return;
  }
  flush_proxy_tls();
}

// Skip `n` bytes at the front of `bufs`, dropping the buffers they empty.
static void advance_bufs(uv_buf_t* bufs, unsigned* count, size_t n) {
  unsigned first = 0;
  while (first < *count && n >= bufs[first].len) n -= bufs[first++].len;
  if (first < *count) {
    bufs[first].base += n;
    bufs[first].len -= n;
  }
  for (unsigned i = first; i < *count; i++) bufs[i - first] = bufs[i];
  *count -= first;
}

void Connection::write_raw(std::string&& owned, const char* ext, size_t ext_len) {
  if (state_ == State::kClosing) return;
  auto* w = new WriteReq;
  w->owned = std::move(owned);
  w->conn = this;
  w->req.data = w;
  uv_buf_t bufs[2];
  unsigned n = 0;
  if (!w->owned.empty()) bufs[n++] = uv_buf_init(w->owned.data(), w->owned.size());
  if (ext_len > 0) bufs[n++] = uv_buf_init(const_cast<char*>(ext), ext_len);
  if (n == 0) {
    delete w;
    return;
  }
  // Give the kernel what it takes now (libuv would too, inside uv_write), so
  // we know whether any byte of the request left: see may_resend().
  if (writes_pending_ == 0) {
    int rc = uv_try_write(stream(), bufs, n);
    if (rc > 0) {
      if (state_ == State::kActive) request_sent_any_ = true;
      advance_bufs(bufs, &n, static_cast<size_t>(rc));
    } else if (rc < 0 && rc != UV_EAGAIN) {
      delete w;
      on_write_error(rc);
      return;
    }
    if (n == 0) {  // all of it went out
      delete w;
      if (state_ == State::kActive) on_write_done();
      return;
    }
  }
  int rc = uv_write(&w->req, stream(), bufs, n, &Connection::on_write);
  if (rc < 0) {
    delete w;
    Error err;
    err.set(ErrorKind::kWriteError, errno_message(rc));
    fail_transfer(err);
    return;
  }
  writes_pending_++;
  if (state_ == State::kActive) arm_timer(TimerMode::kWrite);
}

void Connection::on_write(uv_write_t* req, int status) {
  auto* w = static_cast<WriteReq*>(req->data);
  Connection* c = w->conn;
  delete w;
  c->writes_pending_--;
  if (status == UV_ECANCELED || c->state_ == State::kClosing) return;
  if (c->state_ == State::kSwitched && c->cur_) {
    c->cur_->raw_unsent = static_cast<size_t>(c->writes_pending_);
    if (status < 0) {
      c->on_write_error(status);
      return;
    }
    c->engine_->signal(*c->cur_);
    return;
  }
  // Whether it ended in an error or not, some of it may have left.
  if (c->state_ == State::kActive) c->request_sent_any_ = true;
  if (status < 0) {
    c->on_write_error(status);
    return;
  }
  if (c->state_ == State::kActive) c->on_write_done();
}

void Connection::on_write_error(int status) {
  broken_ = true;
  if (state_ == State::kActive && cur_) {
    // As httpcore does: a server may close the request early and still
    // answer, so a failed write is not reported; the response (or the read
    // error or EOF that follows, which may resend) decides the outcome.
    cur_->body_sent = true;
    body_in_flight_ = false;
    arm_timer(TimerMode::kRead);
    return;
  }
  Error err;
  if (state_ == State::kSwitched) {
    err.set(ErrorKind::kWriteError, errno_message(status));
    end_switched(Transfer::RawState::kFailed, err);
    return;
  }
  if (state_ == State::kTunnel)
    err.set(ErrorKind::kProxyError, errno_message(status));
  else
    err.set(ErrorKind::kConnectError, errno_message(status));
  fail_transfer(err);
}

void Connection::on_write_done() {
  // Stopped at a trace gate before sending: what completed was TLS handshake
  // output, not the request.
  if (writes_pending_ > 0 || !cur_ || draining_ || gated_ != nullptr) return;
  Transfer& t = *cur_;
  if (body_in_flight_) {
    arm_timer(TimerMode::kNone);
    t.want_body = true;
    engine_->signal(t);
    return;
  }
  if (!t.body_sent) {
    t.body_sent = true;
    if (t.phase == Transfer::Phase::kSending) t.phase = Transfer::Phase::kWaiting;
    if (t.spec.trace) {
      // Traced: the read timeout starts once the consumer's callbacks for
      // the end of the request (and "receive_response_headers.started") ran.
      trace_gate(TraceStep::kSent, &Connection::await_response);
      return;
    }
  }
  arm_timer(paused_ ? TimerMode::kNone : TimerMode::kRead);
}

void Connection::await_response() {
  if (cur_ && !cur_->complete && state_ == State::kActive && !draining_)
    arm_timer(paused_ ? TimerMode::kNone : TimerMode::kRead);
}

// ---------------------------------------------------------------- reading

void Connection::start_reading() {
  if (reading_ || state_ == State::kClosing) return;
  if (uv_read_start(stream(), &Connection::on_alloc, &Connection::on_read) == 0) reading_ = true;
}

void Connection::stop_reading() {
  if (!reading_) return;
  uv_read_stop(stream());
  reading_ = false;
}

void Connection::resume_reading() {
  if (!paused_ || state_ == State::kClosing) return;
  paused_ = false;
  start_reading();
  if (cur_ && !cur_->complete) arm_timer(TimerMode::kRead);
}

void Connection::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(h->data);
  size_t len = 0;
  char* base = c->engine_->read_buffer(&len);
  *buf = uv_buf_init(base, len);
}

void Connection::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(s->data);
  if (c->state_ == State::kClosing) return;
  if (nread > 0) {
    c->on_data(buf->base, static_cast<size_t>(nread));
  } else if (nread == UV_EOF) {
    c->on_eof();
  } else if (nread < 0) {
    c->on_read_error(static_cast<int>(nread));
  }
}

void Connection::on_data(const char* data, size_t len) {
  if (!proxy_tls_) {
    on_tunnel_data(data, len);
    return;
  }
  proxy_tls_->feed(data, len);
  if (state_ == State::kProxyHandshake) {
    continue_proxy_handshake();
    if (state_ == State::kProxyHandshake || state_ == State::kClosing) return;
  }
  drain_tls(*proxy_tls_, proxy_scratch, sizeof proxy_scratch, &Connection::on_tunnel_data,
            &Connection::flush_proxy_tls);
}

void Connection::on_tunnel_data(const char* data, size_t len) {
  if (!tls_) {
    on_plaintext(data, len);
    return;
  }
  tls_->feed(data, len);
  if (state_ == State::kHandshake) {
    continue_handshake();
    if (state_ == State::kHandshake || state_ == State::kClosing) return;
  }
  drain_tls(*tls_, tls_scratch, sizeof tls_scratch, &Connection::on_plaintext,
            &Connection::flush_tls);
}

void Connection::drain_tls(TlsSession& tls, char* buf, size_t cap,
                           void (Connection::*deliver)(const char*, size_t),
                           void (Connection::*flush)()) {
  for (;;) {
    size_t n = 0;
    Error err;
    TlsSession::Status st = tls.read(buf, cap, &n, err);
    if (st == TlsSession::Status::kOk) {
      (this->*deliver)(buf, n);
      if (state_ == State::kClosing) return;
      continue;
    }
    (this->*flush)();  // reading may have produced protocol output (key updates)
    if (st == TlsSession::Status::kWantRead) return;
    if (st == TlsSession::Status::kClosed) {
      on_eof();
      return;
    }
    if (cur_)
      fail_transfer(err);
    else
      close(Error());
    return;
  }
}

void Connection::on_plaintext(const char* data, size_t len) {
  if (state_ == State::kSwitched) {
    on_switched_data(data, len);
    return;
  }
  if (state_ == State::kHeld) {
    broken_ = true;  // bytes after a complete response: not reusable
    stop_reading();
    return;
  }
  if (state_ == State::kIdle || !cur_) {
    // Bytes nobody asked for: this connection cannot be trusted any more.
    broken_ = true;
    close(Error());
    return;
  }
  if (state_ == State::kSocks) {
    on_socks_data(data, len);
    return;
  }
  if (state_ == State::kTunnel) {
    size_t used = 0;
    Error err;
    ResponseParser::Status st = parser_.feed(data, len, &used, err);
    if (tunnel_status_ != 0 && (tunnel_status_ < 200 || tunnel_status_ >= 300)) {
      Error perr;
      perr.set(ErrorKind::kProxyError, std::to_string(tunnel_status_) + " " + tunnel_reason_);
      close(perr);
      return;
    }
    if (st == ResponseParser::Status::kError) {
      err.kind = ErrorKind::kProxyError;
      close(err);
      return;
    }
    if (st == ResponseParser::Status::kUpgrade || st == ResponseParser::Status::kComplete) {
      // A 2xx to CONNECT ends at its head: the bytes after it are the tunnel's.
      trace_step(TraceStep::kTunnelDone);
      after_tunnel();
    }
    return;
  }
  if (state_ != State::kActive) return;
  response_started_ = true;
  size_t used = 0;
  Error err;
  ResponseParser::Status st = parser_.feed(data, len, &used, err);
  if (state_ == State::kClosing) return;
  switch (st) {
    case ResponseParser::Status::kOk:
      if (cur_ && cur_->body_sent && !paused_ && !draining_) arm_timer(TimerMode::kRead);
      break;
    case ResponseParser::Status::kComplete:
      if (used < len) broken_ = true;  // extra bytes after the response
      finish_transfer();
      break;
    case ResponseParser::Status::kUpgrade:
      // Only a 101 to a request that asked for it gets here (the parser
      // rejects any other): the connection now speaks another protocol.
      on_switched(data + used, len - used);
      break;
    case ResponseParser::Status::kError:
      fail_transfer(err);
      break;
  }
}

void Connection::on_switched(const char* rest, size_t len) {
  broken_ = true;  // never HTTP/1.1 again: not reusable, whatever happens next
  // Reading resumes when the consumer first takes from the raw stream.
  stop_reading();
  cur_->raw_in.assign(rest, len);
  finish_transfer();
  if (state_ == State::kHeld) state_ = State::kSwitched;
}

void Connection::on_switched_data(const char* data, size_t len) {
  if (!cur_) return;
  cur_->raw_in.append(data, len);
  if (cur_->raw_in.size() >= kHighWater) stop_reading();  // switched_resume reads on
  engine_->signal(*cur_);
}

void Connection::end_switched(Transfer::RawState how, const Error& err) {
  stop_reading();
  if (!cur_ || cur_->raw_state != Transfer::RawState::kOpen) return;
  if (how == Transfer::RawState::kFailed) cur_->raw_error = err;
  cur_->raw_state = how;
  engine_->signal(*cur_);
}

void Connection::switched_resume() {
  if (state_ != State::kSwitched || !cur_ || cur_->raw_state != Transfer::RawState::kOpen) return;
  if (cur_->raw_in.size() < kHighWater) start_reading();
}

void Connection::switched_write(const char* data, size_t len) {
  if (state_ != State::kSwitched || !cur_ || cur_->raw_state == Transfer::RawState::kFailed) return;
  write_out(std::string(data, len), nullptr, 0);
  if (cur_) cur_->raw_unsent = static_cast<size_t>(writes_pending_);
}

int Connection::switched_fd() {
  uv_os_fd_t fd = -1;
  if (state_ != State::kSwitched || !tcp_open_ || uv_fileno(handle(), &fd) != 0) return -1;
  return fd;
}

void Connection::on_head(ResponseHead&& head) {
  if (state_ == State::kTunnel) {
    tunnel_status_ = head.status;
    tunnel_reason_ = head.reason;
    return;
  }
  if (!cur_ || draining_) return;
  cur_->head = std::move(head);
  cur_->head_ready = true;
  engine_->signal(*cur_);
}

void Connection::on_body(const char* data, size_t len) {
  if (!cur_) return;
  Transfer& t = *cur_;
  t.body_received += len;
  if (draining_) {
    // Past the bound, reading on costs more than a new connection: close now.
    if (t.body_received > kDrainLimit) close(Error());
    return;
  }
  if (t.sink != nullptr) {
    size_t room = t.sink_len - t.sink_fill;
    size_t n = len < room ? len : room;
    std::memcpy(t.sink + t.sink_fill, data, n);
    t.sink_fill += n;
    if (n < len) {
      t.sink_overflow = true;
      t.body_buf.append(data + n, len - n);
    }
  } else {
    t.body_buf.append(data, len);
    if (t.body_buf.size() >= kHighWater && !paused_ && !t.read_all) {
      paused_ = true;
      stop_reading();
      arm_timer(TimerMode::kNone);
    }
  }
  engine_->signal(t);
}

void Connection::on_eof() {
  broken_ = true;
  if (state_ == State::kSwitched) {
    end_switched(Transfer::RawState::kEof, Error());
    return;
  }
  if (state_ == State::kHeld) {
    stop_reading();
    return;
  }
  if (state_ == State::kIdle || !cur_) {
    close(Error());
    return;
  }
  if (state_ == State::kActive) {
    Error err;
    ResponseParser::Status st = parser_.finish(err);
    if (st == ResponseParser::Status::kComplete) {
      finish_transfer();
      return;
    }
    if (may_resend()) {
      resend();
      return;
    }
    fail_transfer(err);
    return;
  }
  Error err;
  if (state_ == State::kTunnel || state_ == State::kSocks)
    err.set(ErrorKind::kProxyError, "Server disconnected without sending a response.");
  else if (state_ == State::kHandshake || state_ == State::kProxyHandshake)
    err.set(ErrorKind::kConnectError,
            "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol");
  else
    err.set(ErrorKind::kConnectError, "Server disconnected while connecting.");
  close(err);
}

void Connection::on_read_error(int status) {
  broken_ = true;
  if (state_ == State::kSwitched) {
    Error err;
    err.set(ErrorKind::kReadError, errno_message(status));
    end_switched(Transfer::RawState::kFailed, err);
    return;
  }
  if (state_ == State::kHeld) {
    stop_reading();
    return;
  }
  if (state_ == State::kActive && may_resend()) {
    resend();
    return;
  }
  Error err;
  ErrorKind kind = state_ == State::kActive ? ErrorKind::kReadError : ErrorKind::kConnectError;
  if (state_ == State::kTunnel) kind = ErrorKind::kProxyError;
  err.set(kind, errno_message(status));
  if (cur_)
    fail_transfer(err);
  else
    close(Error());
}

bool Connection::may_resend() const {
  // Only a request on a kept-alive connection that the server closed before
  // any byte of its response: the stale keep-alive race. And never a request
  // the server may have acted on unless sending it twice is harmless (RFC
  // 9110 9.2.2): a POST whose bytes reached the socket fails instead.
  if (!cur_ || !reused_ || draining_ || response_started_) return false;
  if (cur_->attempts >= 3 || cur_->spec.body_streamed) return false;
  return cur_->spec.plan.idempotent || !request_sent_any_;
}

void Connection::resend() {
  std::shared_ptr<Transfer> t = std::move(cur_);
  t->conn = nullptr;
  close(Error());
  engine_->retry(std::move(t));
}

bool Connection::reusable() const {
  return !broken_ && parser_.keep_alive() && !body_in_flight_ && writes_pending_ == 0 && cur_ &&
         cur_->body_sent;
}

void Connection::finish_transfer() {
  Transfer& t = *cur_;
  gated_ = nullptr;  // a response that came before a trace gate was passed
  t.complete = true;
  t.phase = Transfer::Phase::kDone;
  engine_->signal(t);
  arm_timer(TimerMode::kNone);
  state_ = State::kHeld;
  if (draining_) {
    draining_ = false;
    release_held();
  }
}

void Connection::release_held() {
  bool keep = reusable();
  if (cur_) {
    cur_->conn = nullptr;
    cur_.reset();
  }
  if (!keep) {
    close(Error());
    return;
  }
  state_ = State::kIdle;
  if (paused_) {
    paused_ = false;
    start_reading();
  }
  engine_->on_connection_released(this);
}

void Connection::fail_transfer(const Error& err) {
  if (tls_) tls_->mark_failed();  // do not resume a session that ended in an error
  close(err);
}

void Connection::abandon() {
  if (gated_ != nullptr) {
    // Stopped at a trace gate: nothing of the next phase is under way.
    gated_ = nullptr;
    if (cur_) cur_->conn = nullptr;
    cur_.reset();
    close(Error());
    return;
  }
  switch (state_) {
    case State::kHeld:
      release_held();
      return;
    case State::kResolving:
    case State::kConnecting:
    case State::kProxyHandshake:
    case State::kSocks:
    case State::kTunnel:
    case State::kHandshake:
      // Finish connecting and give the connection to the pool: closing now
      // would only make the next request open another one.
      if (cur_) cur_->conn = nullptr;
      abandoned_ = true;
      return;
    case State::kActive:
      // The request counts as sent once libuv handed every byte to the
      // kernel, even if the write callback has not run yet.
      if (cur_ && !body_in_flight_ && (cur_->body_sent || stream()->write_queue_size == 0) &&
          cur_->body_received <= kDrainLimit) {
        cur_->body_sent = true;
        // The request is on the wire: read the rest of the response into the
        // void and reuse the connection, within a bound of bytes and time.
        cur_->conn = nullptr;
        cur_->sink = nullptr;
        cur_->body_buf.clear();
        draining_ = true;
        if (paused_) {
          paused_ = false;
          start_reading();
        }
        arm_timer(TimerMode::kDrain);
        return;
      }
      break;
    default:
      break;
  }
  if (cur_) {
    cur_->conn = nullptr;
    cur_.reset();
  }
  close(Error());
}

bool Connection::usable_for_reuse(uint64_t now_ms) {
  if (state_ != State::kIdle || broken_) return false;
  double expiry = engine_->limits().keepalive_expiry;
  if (expiry >= 0 && now_ms - idle_since_ms > static_cast<uint64_t>(expiry * 1000.0)) return false;
  // Drain whatever arrived while nobody ran the loop: an EOF or stray bytes
  // mean the server is done with this connection.
  uv_os_fd_t fd;
  if (uv_fileno(handle(), &fd) != 0) return false;
  for (;;) {
    ssize_t n = ::recv(fd, tls_scratch, sizeof tls_scratch, MSG_DONTWAIT);
    if (n > 0) {
      on_data(tls_scratch, static_cast<size_t>(n));
      if (state_ != State::kIdle) return false;
      continue;
    }
    if (n == 0) {
      on_eof();
      return false;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return !broken_ && state_ == State::kIdle;
    if (errno == EINTR) continue;
    broken_ = true;
    close(Error());
    return false;
  }
}

// ---------------------------------------------------------------- timers

void Connection::arm_timer(TimerMode mode) {
  if (state_ == State::kClosing) return;
  double seconds = -1;
  if (cur_) {
    const RequestSpec& s = cur_->spec;
    switch (mode) {
      case TimerMode::kConnect:
        seconds = s.connect_timeout;
        break;
      case TimerMode::kRead:
        seconds = s.read_timeout;
        break;
      case TimerMode::kWrite:
        seconds = s.write_timeout;
        break;
      case TimerMode::kDrain:
        seconds = kDrainSeconds;
        if (s.read_timeout >= 0 && s.read_timeout < seconds) seconds = s.read_timeout;
        break;
      case TimerMode::kNone:
        break;
    }
  }
  if (mode == TimerMode::kConnect && timer_mode_ == TimerMode::kConnect) return;
  if (seconds < 0 || mode == TimerMode::kNone) {
    if (timer_mode_ != TimerMode::kNone) uv_timer_stop(&timer_);
    timer_mode_ = TimerMode::kNone;
    return;
  }
  timer_mode_ = mode;
  uv_timer_start(&timer_, &Connection::on_timer, to_ms(seconds), 0);
}

void Connection::on_timer(uv_timer_t* h) {
  auto* c = static_cast<Connection*>(h->data);
  TimerMode mode = c->timer_mode_;
  c->timer_mode_ = TimerMode::kNone;
  Error err;
  switch (mode) {
    case TimerMode::kConnect:
      err.set(ErrorKind::kConnectTimeout, "timed out");
      break;
    case TimerMode::kRead:
      err.set(ErrorKind::kReadTimeout, "timed out");
      break;
    case TimerMode::kWrite:
      err.set(ErrorKind::kWriteTimeout, "timed out");
      break;
    case TimerMode::kDrain:
      break;  // an abandoned response took too long: just close
    case TimerMode::kNone:
      return;
  }
  c->broken_ = true;
  c->close(err);
}

// ---------------------------------------------------------------- closing

void Connection::close(const Error& err) {
  if (state_ == State::kClosing) return;
  State was = state_;
  state_ = State::kClosing;
  broken_ = true;
  bool connecting = was == State::kResolving || was == State::kConnecting;
  bool connect_failure =
      err.kind == ErrorKind::kConnectError || err.kind == ErrorKind::kConnectTimeout;
  if (cur_ && !abandoned_ && connecting && connect_failure &&
      cur_->connect_retries_done < cur_->spec.connect_retries) {
    // httpcore's connect retries: immediately, then after 0.5 s, 1 s, 2 s, ...
    int n = cur_->connect_retries_done++;
    uint64_t delay_ms = n == 0 ? 0 : static_cast<uint64_t>(500) << (n - 1);
    std::shared_ptr<Transfer> t = std::move(cur_);
    t->conn = nullptr;
    retry_after_close_ = std::move(t);
    retry_delay_ms_ = delay_ms;
  }
  if (cur_) {
    std::shared_ptr<Transfer> t = std::move(cur_);
    t->conn = nullptr;
    if (err) {
      t->error = err;
    } else if (!t->complete) {
      t->error.set(ErrorKind::kReadError, "connection closed");
    }
    if (!t->complete) {
      t->phase = Transfer::Phase::kFailed;
      engine_->signal(*t);
    } else if (was == State::kSwitched && t->raw_state == Transfer::RawState::kOpen) {
      t->raw_error = t->error;
      t->raw_state = Transfer::RawState::kFailed;
      engine_->signal(*t);
    }
  }
  if (resolving_) {
    resolving_->conn = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(&resolving_->req));
    resolving_ = nullptr;
  }
  if (tls_ && (was == State::kIdle || was == State::kActive)) {
    tls_->shutdown();
    if (tls_->pending_output() > 0 && tcp_open_) {
      std::string out = tls_->take_output();
      Error ignored;
      if (proxy_tls_ && proxy_tls_->write(out.data(), out.size(), ignored))
        out = proxy_tls_->take_output();
      uv_buf_t b = uv_buf_init(out.data(), out.size());
      uv_try_write(stream(), &b, 1);
    }
  }
  stop_reading();
  if (tcp_open_) {
    tcp_open_ = false;
    uv_close(handle(), &Connection::on_close);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Connection::on_close);
  engine_->on_connection_closed(this);
  if (retry_after_close_) engine_->retry_later(std::move(retry_after_close_), retry_delay_ms_);
}

void Connection::drop_after_fork(const Error& err) {
  state_ = State::kClosing;
  broken_ = true;
  if (cur_) {
    std::shared_ptr<Transfer> t = std::move(cur_);
    t->conn = nullptr;
    if (!t->complete) {
      t->error = err;  // before the phase, which the consumer reads without the mutex
      t->phase = Transfer::Phase::kFailed;
      engine_->signal(*t);
    }
  }
  retry_after_close_.reset();
  if (resolving_) {  // its getaddrinfo ran in the parent's thread pool: it never calls back
    resolving_->conn = nullptr;
    resolving_ = nullptr;
  }
  uv_os_fd_t fd = -1;
  if (tcp_open_ && uv_fileno(handle(), &fd) == 0 && fd >= 0) ::close(fd);
  tcp_open_ = false;
}

void Connection::on_close(uv_handle_t* h) {
  auto* c = static_cast<Connection*>(h->data);
  if (h == c->handle() && c->reconnect_) {
    // A failed connect attempt: try the next address on a fresh handle.
    c->reconnect_ = false;
    if (c->state_ != State::kClosing) {
      c->init_stream();
      c->connect_next();
      return;
    }
  }
  if (--c->handles_open_ == 0) delete c;
}

}  // namespace httprs
