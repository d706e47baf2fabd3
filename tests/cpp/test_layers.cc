// Unit tests for the byte-stream layers with scripted bytes, no sockets:
// SOCKS5 (src/socks5.cc), HTTP CONNECT (src/connect_tunnel.cc) and the
// StreamChain that moves bytes between layers (src/stream_chain.cc). Built
// and run by tests/test_cpp_units.py. Every exchange is also fed one byte at
// a time: a layer must not care where the network splits its input.
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "connect_tunnel.h"
#include "scratch.h"
#include "socks5.h"
#include "stream_chain.h"

using httprs::Borrowed;
using httprs::ConnectTunnel;
using httprs::Error;
using httprs::ErrorKind;
using httprs::Socks5Stream;
using httprs::StreamChain;
using httprs::StreamLayer;
using Status = httprs::StreamLayer::Status;

namespace {

std::string bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s += static_cast<char>(b);
  return s;
}

std::string take(StreamLayer& l) {
  std::string out;
  l.append_output(out);
  return out;
}

// Feed `input` (whole, or one byte at a time) and run connect() after each piece.
Status feed_connect(StreamLayer& l, const std::string& input, bool bytewise, Error& err) {
  Status st = Status::kWantRead;
  if (!bytewise) {
    l.feed(input.data(), input.size());
    return l.connect(err);
  }
  for (char c : input) {
    l.feed(&c, 1);  // once open, the rest is the stream's
    if (st == Status::kWantRead) st = l.connect(err);
  }
  return st;
}

const std::string kReplyV4 = bytes({5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90});

void test_socks_no_auth(bool bytewise) {
  Socks5Stream s("example.org", 443, "", "");
  Error err;
  CHECK(s.connect(err) == Status::kWantRead);
  CHECK_EQ_STR(take(s), bytes({5, 1, 0}));  // one method offered: no authentication
  CHECK(feed_connect(s, bytes({5, 0}), bytewise, err) == Status::kWantRead);
  std::string req = bytes({5, 1, 0, 3, 11}) + "example.org" + bytes({0x01, 0xbb});
  CHECK_EQ_STR(take(s), req);  // the name, for the proxy to resolve
  CHECK(!s.transparent());
  CHECK(feed_connect(s, kReplyV4, bytewise, err) == Status::kOk);
  CHECK(!err);
  CHECK(s.state() == Socks5Stream::State::kOpen);
  CHECK(s.transparent());
  // Open: bytes pass through unchanged, both ways.
  CHECK(s.send("GET", 3, err));
  CHECK_EQ_STR(take(s), "GET");
  s.feed("HTTP", 4);
  CHECK(s.data_pending());
  char buf[8];
  size_t n = 0;
  CHECK(s.recv(buf, sizeof buf, &n, err) == Status::kOk);
  CHECK_EQ_STR(std::string(buf, n), "HTTP");
  CHECK(s.recv(buf, sizeof buf, &n, err) == Status::kWantRead);
}

void test_socks_auth(bool bytewise) {
  Socks5Stream s("10.1.2.3", 80, "user", "pw");
  Error err;
  CHECK(s.connect(err) == Status::kWantRead);
  CHECK_EQ_STR(take(s), bytes({5, 1, 2}));  // username/password offered
  CHECK(feed_connect(s, bytes({5, 2}), bytewise, err) == Status::kWantRead);
  CHECK_EQ_STR(take(s), bytes({1, 4}) + "user" + bytes({2}) + "pw");
  CHECK(s.state() == Socks5Stream::State::kAuth);
  CHECK(feed_connect(s, bytes({1, 0}), bytewise, err) == Status::kWantRead);
  CHECK_EQ_STR(take(s), bytes({5, 1, 0, 1, 10, 1, 2, 3, 0, 80}));  // an IPv4 literal: ATYP 1
  // A domain-name reply (ATYP 3) of any length.
  std::string reply = bytes({5, 0, 0, 3, 4}) + "host" + bytes({0, 80});
  CHECK(feed_connect(s, reply, bytewise, err) == Status::kOk);
}

void test_socks_ipv6_target() {
  Socks5Stream s("[::1]", 8080, "", "");
  Error err;
  s.connect(err);
  take(s);
  s.feed("\x05\x00", 2);
  CHECK(s.connect(err) == Status::kWantRead);
  std::string want = bytes({5, 1, 0, 4}) + std::string(15, '\0') + bytes({1, 0x1f, 0x90});
  CHECK_EQ_STR(take(s), want);
}

// Run a SOCKS exchange to a failure; returns the error message.
std::string socks_failure(const std::string& user, const std::vector<std::string>& replies) {
  Socks5Stream s("example.org", 443, user, "pw");
  Error err;
  Status st = s.connect(err);
  for (const std::string& r : replies) {
    if (st == Status::kError) break;
    s.feed(r.data(), r.size());
    st = s.connect(err);
  }
  CHECK(st == Status::kError);
  CHECK(err.kind == ErrorKind::kProxyError);
  CHECK(s.state() == Socks5Stream::State::kFailed);
  return err.message;
}

void test_socks_failures() {
  CHECK_EQ_STR(
      socks_failure("", {bytes({5, 2})}),
      "Requested NO AUTHENTICATION REQUIRED from proxy server, but got USERNAME/PASSWORD.");
  CHECK_EQ_STR(socks_failure("u", {bytes({5, 0xff})}),
               "Requested USERNAME/PASSWORD from proxy server, but got NO ACCEPTABLE METHODS.");
  CHECK_EQ_STR(socks_failure("", {bytes({4, 0})}),
               "the SOCKS proxy did not answer with SOCKS version 5");
  CHECK_EQ_STR(socks_failure("u", {bytes({5, 2}), bytes({1, 1})}), "Invalid username/password");
  CHECK_EQ_STR(socks_failure("", {bytes({5, 0}), bytes({5, 5, 0, 1, 0, 0, 0, 0, 0, 0})}),
               "Proxy Server could not connect: Connection refused.");
  CHECK_EQ_STR(socks_failure("", {bytes({5, 0}), bytes({5, 0, 0, 9, 0})}),
               "the SOCKS proxy sent an invalid address type");
  CHECK_EQ_STR(socks_failure("", {bytes({5, 0}), kReplyV4 + "x"}),
               "the SOCKS proxy sent bytes after its reply");
  Socks5Stream s("h", 1, "", "");
  CHECK(s.eof_while_connecting().kind == ErrorKind::kProxyError);
  CHECK_EQ_STR(s.eof_while_connecting().message, "Server disconnected without sending a response.");
  // A reset while the proxy answers is a ReadError, each answer waited for under
  // the read timeout (httpx2).
  CHECK(s.socket_error_kind(ErrorKind::kReadError) == ErrorKind::kReadError);
  CHECK(s.socket_error_kind(ErrorKind::kWriteError) == ErrorKind::kWriteError);
  CHECK(s.handshake_deadline() == StreamLayer::Deadline::kRead);
}

void test_connect_tunnel(bool bytewise) {
  ConnectTunnel t("example.org:443", {{"Proxy-Authorization", "Basic eDp5"}});
  Error err;
  CHECK(t.connect(err) == Status::kWantRead);
  CHECK_EQ_STR(take(t),
               "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\nAccept: */*\r\n"
               "Proxy-Authorization: Basic eDp5\r\n\r\n");
  // The tunnel's first bytes may come with the proxy's head: they are the
  // tunnel's, not the proxy's.
  std::string reply = "HTTP/1.1 200 Connection established\r\nX: y\r\n\r\n\x16\x03";
  CHECK(feed_connect(t, reply, bytewise, err) == Status::kOk);
  CHECK(t.state() == ConnectTunnel::State::kOpen);
  CHECK(t.status() == 200);
  char buf[16];
  size_t n = 0;
  CHECK(t.recv(buf, sizeof buf, &n, err) == Status::kOk);
  CHECK_EQ_STR(std::string(buf, n), "\x16\x03");
  CHECK(t.transparent());
  CHECK(t.send("abc", 3, err));
  CHECK_EQ_STR(take(t), "abc");
}

std::string tunnel_failure(const std::string& reply, ErrorKind kind) {
  ConnectTunnel t("example.org:443", {});
  Error err;
  t.connect(err);
  take(t);
  t.feed(reply.data(), reply.size());
  CHECK(t.connect(err) == Status::kError);
  CHECK(err.kind == kind);
  CHECK(t.state() == ConnectTunnel::State::kFailed);
  return err.message;
}

void test_connect_failures() {
  CHECK_EQ_STR(tunnel_failure("HTTP/1.1 407 Proxy Authentication Required\r\n"
                              "Content-Length: 0\r\n\r\n",
                              ErrorKind::kProxyError),
               "407 Proxy Authentication Required");
  // A refusal is reported at its head, before any body arrives.
  CHECK_EQ_STR(tunnel_failure("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 100\r\n\r\n",
                              ErrorKind::kProxyError),
               "502 Bad Gateway");
  // A malformed answer is a RemoteProtocolError, as httpx (h11) reports it.
  tunnel_failure("SSH-2.0-OpenSSH\r\n\r\n", ErrorKind::kRemoteProtocolError);
  tunnel_failure("HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", ErrorKind::kRemoteProtocolError);
  // A header the CONNECT request cannot carry fails before anything is sent.
  ConnectTunnel bad("example.org:443", {{"X-Bad", "a\r\nb"}});
  Error err;
  CHECK(bad.connect(err) == Status::kError);
  CHECK(err.kind == ErrorKind::kLocalProtocolError);
  CHECK(take(bad).empty());
  CHECK(bad.eof_while_connecting().kind == ErrorKind::kRemoteProtocolError);
  CHECK_EQ_STR(bad.eof_while_connecting().message,
               "Server disconnected without sending a response.");
  // A reset reading the answer is a ReadError (sending the request: a WriteError).
  CHECK(bad.socket_error_kind(ErrorKind::kReadError) == ErrorKind::kReadError);
  CHECK(bad.socket_error_kind(ErrorKind::kWriteError) == ErrorKind::kWriteError);
  CHECK(bad.handshake_deadline() == StreamLayer::Deadline::kRead);
}

// A scripted layer with no handshake that XORs bytes both ways, standing in
// for TLS below a SOCKS layer: the chain must encode what goes down and
// decode what comes up, in order, through every layer.
// What both scripted layers below share: their input and output buffers, and
// "BYE" as the words of a clean close.
class ScriptedLayer : public StreamLayer {
 public:
  size_t append_output(std::string& dst) override {
    size_t n = out_.size();
    dst += out_;
    out_.clear();
    return n;
  }
  size_t pending_output() const override { return out_.size(); }
  bool data_pending() const override { return !in_.empty(); }
  void close() override { out_ += "BYE"; }
  Error eof_while_connecting() const override { return Error(); }

 protected:
  std::string in_, out_;
};

class XorLayer final : public ScriptedLayer {
 public:
  Status connect(Error&) override { return handshake_done_ ? Status::kOk : Status::kWantRead; }
  void feed(const char* data, size_t len) override {
    for (size_t i = 0; i < len; i++) in_ += static_cast<char>(data[i] ^ 0x5a);
  }
  Status recv(char* buf, size_t cap, size_t* n, Error& err) override {
    (void)err;
    if (in_.empty()) {
      *n = 0;
      return closed_ ? Status::kClosed : Status::kWantRead;
    }
    *n = in_.size() < cap ? in_.size() : cap;
    in_.copy(buf, *n);
    in_.erase(0, *n);
    return Status::kOk;
  }
  bool send(const char* data, size_t len, Error& err) override {
    if (fail_send_) {
      err.set(ErrorKind::kWriteError, "xor failed");
      return false;
    }
    for (size_t i = 0; i < len; i++) out_ += static_cast<char>(data[i] ^ 0x5a);
    return true;
  }

  bool closed_ = false;
  bool fail_send_ = false;
  bool handshake_done_ = true;  // false: connect() waits for ever (a handshake under way)
};

std::string xored(const std::string& s) {
  std::string out;
  for (char c : s) out += static_cast<char>(c ^ 0x5a);
  return out;
}

struct Host : StreamChain::Host {
  StreamChain* chain = nullptr;
  std::string wire, data;
  std::vector<std::string> ext_writes;
  int connect_inputs = 0, eofs = 0, send_errors = 0;
  Status last = Status::kWantRead;
  void chain_write(std::string&& bytes, Borrowed ext, Borrowed tail) override {
    wire += bytes;
    if (ext.len > 0) ext_writes.emplace_back(ext.data, ext.len);
    if (tail.len > 0) ext_writes.emplace_back(tail.data, tail.len);
  }
  void chain_data(const char* d, size_t len) override { data.append(d, len); }
  void chain_connect_input() override {
    connect_inputs++;
    Error err;
    last = chain->connect_top(err);
  }
  void chain_eof() override { eofs++; }
  void chain_read_error(const Error&) override {}
  void chain_send_error(const Error&) override { send_errors++; }
  bool chain_stopped() const override { return false; }
};

void test_chain() {
  Host host;
  StreamChain chain(&host);
  host.chain = &chain;
  auto xor_layer = std::make_unique<XorLayer>();
  XorLayer* x = xor_layer.get();
  CHECK(chain.push(std::move(xor_layer)));
  Error err;
  CHECK(chain.connect_top(err) == Status::kOk);
  CHECK(!chain.connecting());
  CHECK(chain.push(std::make_unique<Socks5Stream>("h", 80, "", "")));
  CHECK(chain.connecting());
  CHECK(chain.connect_top(err) == Status::kWantRead);
  CHECK_EQ_STR(host.wire, xored(bytes({5, 1, 0})));  // the SOCKS hello, through the XOR layer
  host.wire.clear();
  std::string in = xored(bytes({5, 0}));
  chain.receive(in.data(), in.size());
  CHECK(host.connect_inputs == 1);
  CHECK_EQ_STR(host.wire, xored(bytes({5, 1, 0, 3, 1, 'h', 0, 80})));
  host.wire.clear();
  in = xored(kReplyV4);
  chain.receive(in.data(), in.size());
  CHECK(host.last == Status::kOk);
  CHECK(!chain.connecting());
  CHECK(host.data.empty());
  // Open: the session's bytes go down through both layers (SOCKS now
  // passes them untouched, without a copy) and borrowed bytes stay last.
  CHECK(chain.send("GET / ", {}, {}, err));
  std::string body = "body";
  CHECK(chain.send(std::string(), {body.data(), body.size()}, {"\r\n", 2}, err));
  CHECK_EQ_STR(host.wire, xored("GET / body\r\n"));
  in = xored("HTTP/1.1 200 OK\r\n");
  chain.receive(in.data(), in.size());
  CHECK_EQ_STR(host.data, "HTTP/1.1 200 OK\r\n");
  // The top layer's close goes down through the layers below it.
  CHECK_EQ_STR(chain.close_top(), "");  // SOCKS has nothing to say
  // A layer that fails to take bytes fails the send.
  x->fail_send_ = true;
  CHECK(!chain.send("x", {}, {}, err));
  CHECK(err.kind == ErrorKind::kWriteError);
  // A clean end below reaches the host as an EOF.
  x->fail_send_ = false;
  x->closed_ = true;
  chain.receive("", 0);
  CHECK(host.eofs == 1);
}

// No memory for the chain's read buffer (allocated per thread on first use):
// the read fails with a clear ReadError, nothing reaches the session, and the
// next read allocates it and works. Run on a fresh thread, whose buffers are
// not allocated yet.
struct FailingHost : Host {
  std::vector<Error> read_errors;
  void chain_read_error(const Error& e) override { read_errors.push_back(e); }
};

// `chain` (on `host`) with one open XorLayer.
void open_xor_chain(FailingHost& host, StreamChain& chain) {
  host.chain = &chain;
  CHECK(chain.push(std::make_unique<XorLayer>()));
  Error err;
  CHECK(chain.connect_top(err) == Status::kOk);
}

void test_chain_read_without_memory() {
  std::thread([] {
    FailingHost host;
    StreamChain chain(&host);
    open_xor_chain(host, chain);
    httprs::scratch_failures.store(1);
    std::string in = xored("HTTP/1.1 200 OK\r\n");
    chain.receive(in.data(), in.size());
    CHECK(httprs::scratch_failures.load() == 0);
    CHECK(host.read_errors.size() == 1);
    CHECK(host.read_errors.size() == 1 && host.read_errors[0].kind == ErrorKind::kReadError);
    CHECK_EQ_STR(host.read_errors.empty() ? "" : host.read_errors[0].message,
                 "Out of memory: could not allocate a 64 KiB buffer.");
    CHECK(host.data.empty());
    chain.receive("", 0);  // the layer still holds the bytes: they come now
    CHECK(host.read_errors.size() == 1);
    CHECK_EQ_STR(host.data, "HTTP/1.1 200 OK\r\n");
  }).join();
  // While a layer above runs its handshake (TLS through a proxy's tunnel),
  // the failed read is what that layer says one is: a ConnectError here.
  std::thread([] {
    FailingHost host;
    StreamChain chain(&host);
    open_xor_chain(host, chain);
    Error err;
    auto above = std::make_unique<XorLayer>();
    above->handshake_done_ = false;
    CHECK(chain.push(std::move(above)));
    CHECK(chain.connect_top(err) == Status::kWantRead);
    httprs::scratch_failures.store(1);
    std::string in = xored("hello");
    chain.receive(in.data(), in.size());
    CHECK(host.read_errors.size() == 1 && host.read_errors[0].kind == ErrorKind::kConnectError);
  }).join();
}

// A host that offers its own buffer for the top layer's output (the
// consumer's sink): the layer reads into it and the host is handed a pointer
// into it, never more than it offered; null leaves the chain's buffer.
struct DirectHost : Host {
  char sink[8] = {};
  size_t offered = 0;  // bytes of room offered at the next read (0: none)
  int asked = 0;
  std::vector<const char*> at;
  char* chain_read_buffer(size_t* len) override {
    asked++;
    if (offered == 0) return nullptr;
    *len = offered;
    offered = 0;
    return sink;
  }
  void chain_data(const char* d, size_t len) override {
    at.push_back(d);
    data.append(d, len);
  }
};

void test_chain_reads_into_host_buffer() {
  DirectHost host;
  StreamChain chain(&host);
  host.chain = &chain;
  CHECK(chain.push(std::make_unique<XorLayer>()));
  Error err;
  CHECK(chain.connect_top(err) == Status::kOk);
  host.offered = 5;
  std::string in = xored("abcdefgh");
  chain.receive(in.data(), in.size());
  // Five bytes decoded in place, the rest into the chain's buffer.
  CHECK(host.at.size() == 2 && host.at[0] == host.sink);
  CHECK(host.at[1] != host.sink);
  CHECK_EQ_STR(std::string(host.sink, 5), "abcde");
  CHECK_EQ_STR(host.data, "abcdefgh");
  // A layer above that is not transparent (a SOCKS handshake under way): the
  // bytes below it are its own, the host is not asked.
  CHECK(chain.push(std::make_unique<Socks5Stream>("h", 80, "", "")));
  CHECK(chain.connect_top(err) == Status::kWantRead);
  host.asked = 0;
  host.offered = 5;
  in = xored(bytes({5, 0}));
  chain.receive(in.data(), in.size());
  CHECK(host.asked == 0);
}

void test_chain_borrowed_bytes_without_layers() {
  // No layer (plain http): the session's borrowed body and its tail reach
  // the socket as they are, never copied.
  Host host;
  StreamChain chain(&host);
  Error err;
  std::string body(100000, 'b');
  static const char kTail[] = "\r\n";
  CHECK(chain.send("HEAD", {body.data(), body.size()}, {kTail, 2}, err));
  CHECK_EQ_STR(host.wire, "HEAD");
  CHECK(host.ext_writes.size() == 2 && host.ext_writes[0] == body && host.ext_writes[1] == "\r\n");
  chain.receive("abc", 3);
  CHECK_EQ_STR(host.data, "abc");
}

// A layer whose handshake ends with a last flight of its own, as a TLS
// client's Finished: "HELLO" out, then "DONE" in completes it with "FIN" out
// (or "ALERT" out and a failure for anything else).
class FlightLayer final : public ScriptedLayer {
 public:
  Status connect(Error& err) override {
    if (open_) return Status::kOk;
    if (in_.empty()) {
      if (!hello_sent_) out_ += "HELLO";
      hello_sent_ = true;
      return Status::kWantRead;
    }
    if (in_ != "DONE") {
      out_ += "ALERT";
      err.set(ErrorKind::kConnectError, "bad flight");
      return Status::kError;
    }
    in_.clear();
    out_ += "FIN";
    open_ = true;
    return Status::kOk;
  }
  void feed(const char* data, size_t len) override { in_.append(data, len); }
  Status recv(char* buf, size_t cap, size_t* n, Error&) override {
    *n = in_.size() < cap ? in_.size() : cap;
    in_.copy(buf, *n);
    in_.erase(0, *n);
    return *n > 0 ? Status::kOk : Status::kWantRead;
  }
  bool send(const char* data, size_t len, Error&) override {
    out_.append(data, len);
    return true;
  }

 private:
  bool hello_sent_ = false;
  bool open_ = false;
};

// Counts the socket writes, to see what went out together, and does what a
// connection does once a handshake completes (Connection::continue_layer):
// what comes next (`then`), then flush_held().
struct CountingHost : Host {
  std::vector<std::string> writes;
  std::function<void()> then;
  void chain_write(std::string&& bytes, Borrowed ext, Borrowed tail) override {
    writes.push_back(bytes +
                     std::string(ext.data == nullptr ? "" : std::string(ext.data, ext.len)) +
                     std::string(tail.data == nullptr ? "" : std::string(tail.data, tail.len)));
    Host::chain_write(std::move(bytes), ext, tail);
  }
  void chain_connect_input() override {
    Host::chain_connect_input();
    if (last != Status::kOk) return;
    if (then) then();
    chain->flush_held();
  }
};

std::unique_ptr<StreamChain> flight_chain(CountingHost& host) {
  auto chain = std::make_unique<StreamChain>(&host);
  host.chain = chain.get();
  CHECK(chain->push(std::make_unique<FlightLayer>()));
  Error err;
  CHECK(chain->connect_top(err) == Status::kWantRead);
  CHECK(host.writes.size() == 1 && host.writes[0] == "HELLO");
  return chain;
}

void test_chain_holds_last_flight() {
  // The handshake's last flight goes out with the first bytes sent after it:
  // one write.
  {
    CountingHost host;
    auto chain = flight_chain(host);
    std::string body = "body";
    host.then = [&] {
      Error err;
      CHECK(host.writes.size() == 1);  // FIN held
      CHECK(chain->send("GET ", {body.data(), body.size()}, {}, err));
    };
    chain->receive("DONE", 4);
    CHECK(host.last == Status::kOk);
    CHECK(!chain->connecting());
    CHECK(host.writes.size() == 2 && host.writes[1] == "FINGET body");
    chain->receive("reply", 5);
    CHECK_EQ_STR(host.data, "reply");
    CHECK(host.writes.size() == 2);
  }
  // Nothing follows: flush_held() sends it alone, once.
  {
    CountingHost host;
    auto chain = flight_chain(host);
    chain->receive("DONE", 4);
    CHECK(host.writes.size() == 2 && host.writes[1] == "FIN");
    chain->flush_held();
    CHECK(host.writes.size() == 2);
  }
  // A close right after the handshake says both, in order.
  {
    CountingHost host;
    auto chain = flight_chain(host);
    host.then = [&] { CHECK_EQ_STR(chain->close_top(), "FINBYE"); };
    chain->receive("DONE", 4);
    CHECK(host.writes.size() == 1);
  }
  // Below another layer (TLS to a proxy, then CONNECT): the held flight goes
  // out with the next layer's first bytes.
  {
    CountingHost host;
    auto chain = flight_chain(host);
    host.then = [&] {
      Error err;
      CHECK(chain->push(std::make_unique<ConnectTunnel>("h:443", httprs::HeaderList())));
      CHECK(chain->connect_top(err) == Status::kWantRead);
    };
    chain->receive("DONE", 4);
    CHECK(host.writes.size() == 2);
    CHECK_EQ_STR(host.writes[1].substr(0, 27), std::string("FINCONNECT h:443 HTTP/1.1\r\n"));
  }
  // A failed handshake's last words (an alert) are not held.
  {
    CountingHost host;
    auto chain = flight_chain(host);
    chain->receive("NOPE", 4);
    CHECK(host.last == Status::kError);
    CHECK(host.writes.size() == 2 && host.writes[1] == "ALERT");
  }
}

}  // namespace

int main() {
  for (bool bytewise : {false, true}) {
    test_socks_no_auth(bytewise);
    test_socks_auth(bytewise);
    test_connect_tunnel(bytewise);
  }
  test_socks_ipv6_target();
  test_socks_failures();
  test_connect_failures();
  test_chain_reads_into_host_buffer();
  test_chain();
  test_chain_read_without_memory();
  test_chain_borrowed_bytes_without_layers();
  test_chain_holds_last_flight();
  return check_report("test_layers");
}
