// The protocol-session interface (protocol_session.h) with scripted bytes, no
// sockets: the same exchanges driven through ProtocolSession& alone, on an
// Http1Session and on an Http2Exchanges, as the connection drives whichever
// one it chose after ALPN or by prior knowledge. The peer is a script of
// HTTP/1.1 bytes, or an nghttp2 server session in the same program. The
// request spec is the same for both: planned only (no HTTP/1.1 head), as a
// request that may go as HTTP/2 is.
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "check.h"
#include "h2_test_server.h"
#include "http1.h"
#include "http1_session.h"
#include "http2_exchanges.h"
#include "protocol_session.h"

using namespace httprs;
using Result = ProtocolSession::Result;
using BodyStep = ProtocolSession::BodyStep;

namespace {

struct Listener : SessionListener {
  int progress = 0;
  void on_transfer_progress(Transfer&) override { ++progress; }
};

// The other end of the connection.
class Peer {
 public:
  virtual ~Peer() = default;
  // Bytes the session wrote.
  virtual void take(const std::string& bytes) = 0;
  // The answer to request number `n` (0-based, in submission order).
  virtual std::string respond(int n, int status, const std::string& body) = 0;
  // Whether the peer has read request `n` with this path and body, whole.
  virtual bool has_request(int n, const std::string& path, const std::string& body) = 0;
};

class Http1Peer final : public Peer {
 public:
  void take(const std::string& bytes) override { wire_ += bytes; }
  std::string respond(int, int status, const std::string& body) override {
    return "HTTP/1.1 " + std::to_string(status) +
           " OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  bool has_request(int, const std::string& path, const std::string& body) override {
    size_t at = wire_.find("POST " + path + " HTTP/1.1\r\n");
    if (at == std::string::npos) at = wire_.find("GET " + path + " HTTP/1.1\r\n");
    if (at == std::string::npos) return false;
    size_t end = wire_.find("\r\n\r\n", at);
    return end != std::string::npos && wire_.compare(end + 4, body.size(), body) == 0 &&
           wire_.size() == end + 4 + body.size();
  }

 private:
  std::string wire_;
};

class Http2Peer final : public Peer {
 public:
  void take(const std::string& bytes) override { server_.input(bytes); }
  std::string respond(int n, int status, const std::string& body) override {
    server_.respond(2 * n + 1, status, body);
    return server_.output();
  }
  bool has_request(int n, const std::string& path, const std::string& body) override {
    auto it = server_.requests.find(2 * n + 1);
    return it != server_.requests.end() && it->second.complete &&
           server_.header(2 * n + 1, ":path") == path && it->second.body == body;
  }
  // The server's SETTINGS and acks, for the session.
  std::string output() { return server_.output(); }

 private:
  h2test::Server server_;
};

// A session of one protocol with its peer, as the connection has them once
// established: the HTTP/2 one has sent its preface and read the server's
// SETTINGS (Http2Exchanges::start, the only call outside the interface).
struct Side {
  const char* name;
  int http_major;
  Listener listener;
  std::unique_ptr<ProtocolSession> session;
  std::unique_ptr<Peer> peer;
};

std::unique_ptr<Side> make_side(bool http2) {
  auto side = std::make_unique<Side>();
  if (!http2) {
    side->name = "HTTP/1.1";
    side->http_major = 1;
    side->session = std::make_unique<Http1Session>(&side->listener);
    side->peer = std::make_unique<Http1Peer>();
    return side;
  }
  side->name = "HTTP/2";
  side->http_major = 2;
  auto h2 = std::make_unique<Http2Exchanges>(&side->listener);
  auto peer = std::make_unique<Http2Peer>();
  Error err;
  CHECK(h2->start(err));
  Outgoing out;
  while (h2->take_output(out)) peer->take(out.owned);
  std::string settings = peer->output();
  size_t used = 0;
  CHECK(h2->receive(settings.data(), settings.size(), &used, err) == Result::kMore);
  side->session = std::move(h2);
  side->peer = std::move(peer);
  return side;
}

// A request planned as one that may go as HTTP/2 (plan_request; no head).
// A streamed body (`streamed_len` >= 0) declares that Content-Length.
std::shared_ptr<Transfer> request(const char* method, const std::string& target,
                                  const std::string* body = nullptr, long streamed_len = -1) {
  auto t = std::make_shared<Transfer>();
  t->spec.method = method;
  t->spec.target = target;
  t->spec.authority = "example.org";
  t->spec.headers = {{"Host", "example.org"}, {"Accept", "*/*"}};
  bool streamed = streamed_len >= 0;
  size_t len = body ? body->size() : 0;
  if (body) t->spec.headers.emplace_back("Content-Length", std::to_string(len));
  if (streamed) t->spec.headers.emplace_back("Content-Length", std::to_string(streamed_len));
  Error err;
  CHECK(plan_request(method, target, t->spec.headers,
                     streamed ? BodyKind::kStreamed : BodyKind::kFixed, streamed ? 0 : len,
                     &t->spec.plan, err));
  if (streamed) {
    t->spec.body_streamed = true;
  } else if (body) {
    t->spec.body = body->data();
    t->spec.body_len = body->size();
  }
  t->attempts = 1;
  return t;
}

// Everything the session wants written, to the peer (owned bytes, then the
// borrowed ones, in order).
void flush(Side& side) {
  Outgoing out;
  while (side.session->take_output(out)) {
    std::string bytes = out.owned;
    if (out.ext.len > 0) bytes.append(out.ext.data, out.ext.len);
    side.peer->take(bytes);
  }
}

// Feed `bytes` in pieces of `step`; true once the response of `t` is
// complete (kComplete from an HTTP/1.1 session, the transfer marked complete
// by an HTTP/2 one).
bool feed(Side& side, const Transfer& t, const std::string& bytes, size_t step) {
  bool done = false;
  for (size_t at = 0; at < bytes.size(); at += step) {
    size_t len = std::min(step, bytes.size() - at);
    size_t used = 0;
    Error err;
    Result r = side.session->receive(bytes.data() + at, len, &used, err);
    CHECK(r == Result::kMore || r == Result::kComplete);
    done = done || r == Result::kComplete;
  }
  return done || t.complete;
}

void test_exchange(bool http2, size_t step) {
  auto side = make_side(http2);
  ProtocolSession& s = *side->session;
  CHECK(s.protocol() ==
        (http2 ? ProtocolSession::Protocol::kHttp2 : ProtocolSession::Protocol::kHttp1));
  CHECK(s.open_exchanges() == 0);
  CHECK(s.can_take_exchange());
  CHECK(s.max_exchanges() >= 1);
  auto t = request("GET", "/a?b=1");
  Error err;
  CHECK(s.submit(*t, err));
  CHECK(s.open_exchanges() == 1);
  flush(*side);
  CHECK(side->peer->has_request(0, "/a?b=1", ""));
  std::string answer = side->peer->respond(0, 200, "hello, world");
  CHECK(feed(*side, *t, answer, step));
  CHECK(t->head_ready);
  CHECK(t->head.status == 200);
  CHECK(t->head.http_major == side->http_major);
  CHECK_EQ_STR(t->body_buf, "hello, world");
  CHECK(side->listener.progress > 0);
}

void test_fixed_and_streamed_bodies(bool http2) {
  auto side = make_side(http2);
  ProtocolSession& s = *side->session;
  Error err;
  std::string fixed(40000, 'f');  // more than one HTTP/2 DATA frame
  auto post = request("POST", "/fixed", &fixed);
  CHECK(s.submit(*post, err));
  flush(*side);
  CHECK(side->peer->has_request(0, "/fixed", fixed));
  CHECK(feed(*side, *post, side->peer->respond(0, 201, "ok"), 1000));
  CHECK(post->head.status == 201);
  if (!http2) static_cast<Http1Session&>(s).detach();  // the connection's part
  auto up = request("POST", "/streamed", nullptr, 6);
  CHECK(s.submit(*up, err));
  CHECK(s.send_body(*up, "abc", 3, false, err) == BodyStep::kQueued);
  CHECK(s.send_body(*up, "def", 3, true, err) == BodyStep::kQueued);
  flush(*side);
  CHECK(side->peer->has_request(http2 ? 1 : 0, "/streamed", "abcdef"));
  CHECK(feed(*side, *up, side->peer->respond(http2 ? 1 : 0, 200, "6"), 3));
  CHECK_EQ_STR(up->body_buf, "6");
}

void test_eof_before_the_response(bool http2) {
  auto side = make_side(http2);
  ProtocolSession& s = *side->session;
  auto t = request("GET", "/never");
  Error err;
  CHECK(s.submit(*t, err));
  flush(*side);
  CHECK(s.receive_eof(err) == Result::kFailed);
  CHECK(err.kind == ErrorKind::kRemoteProtocolError);
  CHECK(!t->complete);
}

}  // namespace

int main() {
  for (bool http2 : {false, true}) {
    for (size_t step : {size_t{1}, size_t{7}, size_t{1} << 20}) test_exchange(http2, step);
    test_fixed_and_streamed_bodies(http2);
    test_eof_before_the_response(http2);
  }
  return check_report("test_protocol_session");
}
