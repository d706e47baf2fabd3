// Http2Exchanges (HTTP/2 as a ProtocolSession: streams <-> transfers) driven
// by an nghttp2 *server* session in the same program. No sockets, no engine:
// what the connection would do (move bytes, collect ended streams, set the
// time) is done here by hand.
#include <nghttp2/nghttp2.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "check.h"
#include "http2_exchanges.h"

using namespace httprs;

namespace {

struct Listener : SessionListener {
  int progress = 0;
  void on_transfer_progress(Transfer&) override { ++progress; }
};

// A scripted HTTP/2 server: records requests and resets, answers when told.
struct Server {
  struct Req {
    HeaderList headers;
    std::string body;
    bool complete = false;
    bool closed = false;
    uint32_t close_code = 0;
  };
  nghttp2_session* session = nullptr;
  std::map<int32_t, Req> requests;
  std::map<int32_t, std::pair<std::string, size_t>> bodies;  // response body, offset
  std::map<int32_t, uint32_t> resets;                        // RST_STREAM received

  explicit Server(std::vector<nghttp2_settings_entry> settings = {}) {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
    nghttp2_session_server_new(&session, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  }
  ~Server() { nghttp2_session_del(session); }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  static Server& self(void* ud) { return *static_cast<Server*>(ud); }
  static int on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
                       const uint8_t* v, size_t vl, uint8_t, void* ud) {
    self(ud).requests[f->hd.stream_id].headers.emplace_back(
        std::string(reinterpret_cast<const char*>(n), nl),
        std::string(reinterpret_cast<const char*>(v), vl));
    return 0;
  }
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* ud) {
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
      self(ud).requests[f->hd.stream_id].complete = true;
    if (f->hd.type == NGHTTP2_RST_STREAM)
      self(ud).resets[f->hd.stream_id] = f->rst_stream.error_code;
    return 0;
  }
  static int on_data(nghttp2_session*, uint8_t, int32_t id, const uint8_t* d, size_t n, void* ud) {
    self(ud).requests[id].body.append(reinterpret_cast<const char*>(d), n);
    return 0;
  }
  static int on_close(nghttp2_session*, int32_t id, uint32_t code, void* ud) {
    auto& r = self(ud).requests[id];
    r.closed = true;
    r.close_code = code;
    return 0;
  }
  static ssize_t read_body(nghttp2_session*, int32_t id, uint8_t* buf, size_t len, uint32_t* flags,
                           nghttp2_data_source*, void* ud) {
    auto& [body, off] = self(ud).bodies[id];
    size_t n = std::min(len, body.size() - off);
    std::memcpy(buf, body.data() + off, n);
    off += n;
    if (off == body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  void respond(int32_t id, int status, const std::string& body) {
    bodies[id] = {body, 0};
    std::string st = std::to_string(status);
    std::string name = ":status", ctype = "content-type", text = "text/plain";
    nghttp2_nv nva[] = {
        {(uint8_t*)name.data(), (uint8_t*)st.data(), name.size(), st.size(), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t*)ctype.data(), (uint8_t*)text.data(), ctype.size(), text.size(),
         NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider prd;
    prd.read_callback = read_body;
    nghttp2_submit_response(session, id, nva, 2, body.empty() ? nullptr : &prd);
  }
  std::string header(int32_t id, const std::string& name) {
    for (auto& [n, v] : requests[id].headers)
      if (n == name) return v;
    return "<none>";
  }
};

// Move bytes both ways until neither side has anything to say.
void pump(Http2Exchanges& client, Server& server) {
  for (int round = 0; round < 1000; ++round) {
    Outgoing out;
    bool any = client.take_output(out);
    if (any) {
      ssize_t rv = nghttp2_session_mem_recv(server.session, (const uint8_t*)out.owned.data(),
                                            out.owned.size());
      CHECK(rv == (ssize_t)out.owned.size());
    }
    std::string back;
    for (;;) {
      const uint8_t* p = nullptr;
      ssize_t n = nghttp2_session_mem_send(server.session, &p);
      if (n <= 0) break;
      back.append((const char*)p, n);
    }
    if (!back.empty()) {
      size_t used = 0;
      Error err;
      client.receive(back.data(), back.size(), &used, err);
    }
    if (!any && back.empty()) return;
  }
  CHECK(!"pump did not settle");
}

std::shared_ptr<Transfer> request(const std::string& method, const std::string& target,
                                  double read_timeout = -1) {
  auto t = std::make_shared<Transfer>();
  t->spec.method = method;
  t->spec.target = target;
  t->spec.authority = "example.org";
  t->spec.h2_headers = {
      {"Host", "example.org:8080"}, {"Connection", "keep-alive"}, {"X-Custom", "v"}};
  t->spec.read_timeout = read_timeout;
  t->attempts = 1;
  return t;
}

Http2Exchanges::Outcome outcome_of(std::vector<Http2Exchanges::Ended>& ended, const Transfer& t) {
  for (auto& e : ended)
    if (e.transfer.get() == &t) return e.outcome;
  CHECK(!"transfer did not end");
  return Http2Exchanges::Outcome::kFailed;
}

void test_request_response() {
  Listener l;
  Http2Exchanges c(&l);
  Error err;
  CHECK(c.start(err));
  Server s;
  auto t = request("GET", "/a?b=1");
  CHECK(c.submit(*t, err));
  CHECK(t->http2);
  CHECK(c.open_exchanges() == 1);
  pump(c, s);
  CHECK_EQ_STR(s.header(1, ":path"), "/a?b=1");
  CHECK_EQ_STR(s.header(1, ":authority"), "example.org:8080");
  CHECK_EQ_STR(s.header(1, ":scheme"), "http");
  CHECK_EQ_STR(s.header(1, "x-custom"), "v");
  CHECK_EQ_STR(s.header(1, "connection"), "<none>");
  c.note_written();
  CHECK(t->body_sent);
  s.respond(1, 200, "hello");
  pump(c, s);
  CHECK(t->head_ready);
  CHECK(t->head.status == 200);
  CHECK(t->head.http_major == 2);
  CHECK_EQ_STR(t->head.headers.at(0).first, "content-type");
  CHECK_EQ_STR(t->body_buf, "hello");
  CHECK(t->complete);
  CHECK(t->phase == Transfer::Phase::kDone);
  auto ended = c.take_ended();
  CHECK(ended.size() == 1 && outcome_of(ended, *t) == Http2Exchanges::Outcome::kComplete);
  CHECK(c.open_exchanges() == 0);
  CHECK(c.can_take_exchange());
  CHECK(l.progress > 0);
}

// A consumer that does not read holds its stream at about 2 MiB (1 MiB
// buffered + the 1 MiB window); reading opens the window again.
void test_backpressure_until_read() {
  Listener l;
  Http2Exchanges c(&l);
  Error err;
  CHECK(c.start(err));
  Server s;
  auto slow = request("GET", "/big");
  auto other = request("GET", "/small");
  CHECK(c.submit(*slow, err));
  CHECK(c.submit(*other, err));
  pump(c, s);
  s.respond(1, 200, std::string(6u << 20, 'x'));
  s.respond(3, 200, "small");
  pump(c, s);
  CHECK(!slow->complete);
  CHECK(slow->body_buf.size() >= Http2Exchanges::kHighWater);
  CHECK(slow->body_buf.size() <= Http2Exchanges::kHighWater + (1u << 20) + 16384);
  CHECK(other->complete);  // the other stream went on
  CHECK_EQ_STR(other->body_buf, "small");
  size_t total = 0;
  for (int i = 0; i < 100 && !slow->complete; ++i) {
    total += slow->body_buf.size();
    slow->body_buf.clear();
    c.resume(*slow);
    pump(c, s);
  }
  total += slow->body_buf.size();
  CHECK(slow->complete);
  CHECK(total == (6u << 20));
}

void test_cancel_one_stream() {
  Listener l;
  Http2Exchanges c(&l);
  Error err;
  CHECK(c.start(err));
  Server s;
  auto a = request("GET", "/a");
  auto b = request("GET", "/b");
  CHECK(c.submit(*a, err));
  CHECK(c.submit(*b, err));
  pump(c, s);
  c.cancel(*a);
  pump(c, s);
  CHECK(s.resets.count(1) == 1 && s.resets[1] == NGHTTP2_CANCEL);
  CHECK(s.resets.count(3) == 0);
  s.respond(3, 200, "b");
  pump(c, s);
  CHECK(b->complete);
  CHECK(c.open_exchanges() == 0);
}

void test_refused_is_retried_then_fails() {
  Listener l;
  Http2Exchanges c(&l);
  Error err;
  CHECK(c.start(err));
  Server s;
  auto t = request("GET", "/");
  CHECK(c.submit(*t, err));
  pump(c, s);
  nghttp2_submit_rst_stream(s.session, NGHTTP2_FLAG_NONE, 1, NGHTTP2_REFUSED_STREAM);
  pump(c, s);
  auto ended = c.take_ended();
  CHECK(ended.size() == 1 && outcome_of(ended, *t) == Http2Exchanges::Outcome::kRetry);
  CHECK(!t->failed());
  // Out of attempts: the error reaches the consumer.
  auto u = request("GET", "/again");
  u->attempts = Http2Exchanges::kMaxAttempts;
  CHECK(c.submit(*u, err));
  pump(c, s);
  nghttp2_submit_rst_stream(s.session, NGHTTP2_FLAG_NONE, 3, NGHTTP2_REFUSED_STREAM);
  pump(c, s);
  ended = c.take_ended();
  CHECK(ended.size() == 1 && outcome_of(ended, *u) == Http2Exchanges::Outcome::kFailed);
  CHECK(u->failed() && u->error.kind == ErrorKind::kRemoteProtocolError);
  // A streamed body is never sent again (a chunk may have left its iterator).
  auto up = request("POST", "/up");
  up->spec.body_streamed = true;
  up->spec.plan.framing = BodyFraming::kChunked;
  CHECK(c.submit(*up, err));
  pump(c, s);
  nghttp2_submit_rst_stream(s.session, NGHTTP2_FLAG_NONE, 5, NGHTTP2_REFUSED_STREAM);
  pump(c, s);
  ended = c.take_ended();
  CHECK(ended.size() == 1 && outcome_of(ended, *up) == Http2Exchanges::Outcome::kFailed);
  CHECK(up->failed());
}

void test_goaway_retries_streams_above_last() {
  Listener l;
  Http2Exchanges c(&l);
  Error err;
  CHECK(c.start(err));
  Server s;
  auto a = request("GET", "/a");
  auto b = request("GET", "/b");
  CHECK(c.submit(*a, err));
  CHECK(c.submit(*b, err));
  pump(c, s);
  nghttp2_submit_goaway(s.session, NGHTTP2_FLAG_NONE, 1, NGHTTP2_NO_ERROR, nullptr, 0);
  s.respond(1, 200, "a");
  pump(c, s);
  CHECK(c.goaway_received());
  CHECK(!c.can_take_exchange());
  auto ended = c.take_ended();
  CHECK(ended.size() == 2);
  CHECK(outcome_of(ended, *a) == Http2Exchanges::Outcome::kComplete);
  CHECK(outcome_of(ended, *b) == Http2Exchanges::Outcome::kRetry);
  CHECK_EQ_STR(a->body_buf, "a");
}

void test_reset_fails_that_stream_with_its_code() {
  Listener l;
  Http2Exchanges c(&l);
  Error err;
  CHECK(c.start(err));
  Server s;
  auto a = request("GET", "/a");
  auto b = request("GET", "/b");
  CHECK(c.submit(*a, err));
  CHECK(c.submit(*b, err));
  pump(c, s);
  nghttp2_submit_rst_stream(s.session, NGHTTP2_FLAG_NONE, 1, NGHTTP2_INTERNAL_ERROR);
  s.respond(3, 200, "b");
  pump(c, s);
  CHECK(a->failed());
  CHECK(a->error.message.find("INTERNAL_ERROR") != std::string::npos);
  CHECK(b->complete && !b->failed());
}

void test_read_deadline_per_stream() {
  Listener l;
  Http2Exchanges c(&l);
  Error err;
  CHECK(c.start(err));
  Server s;
  c.set_now(1000);
  auto slow = request("GET", "/slow", 0.5);
  auto fast = request("GET", "/fast", 0.5);
  CHECK(c.submit(*slow, err));
  CHECK(c.submit(*fast, err));
  pump(c, s);
  c.note_written();
  CHECK(c.next_deadline() == 1500);
  c.set_now(1400);
  s.respond(3, 200, "fast");
  pump(c, s);  // the fast stream's frames renew its own deadline only
  CHECK(fast->complete);
  CHECK(c.next_deadline() == 1500);
  c.set_now(1500);
  c.expire();
  pump(c, s);
  CHECK(slow->failed() && slow->error.kind == ErrorKind::kReadTimeout);
  CHECK(s.resets.count(1) == 1 && s.resets[1] == NGHTTP2_CANCEL);
  CHECK(c.next_deadline() == 0);
  CHECK(c.open_exchanges() == 0);
}

void test_streamed_body_and_length() {
  Listener l;
  Http2Exchanges c(&l);
  Error err;
  CHECK(c.start(err));
  Server s;
  auto t = request("POST", "/up");
  t->spec.body_streamed = true;
  t->spec.plan.framing = BodyFraming::kContentLength;
  t->spec.plan.content_length = 5;
  t->spec.h2_headers.emplace_back("Content-Length", "5");
  CHECK(c.submit(*t, err));
  CHECK(t->want_body);
  CHECK(c.send_body(*t, "abc", 3, false, err) == ProtocolSession::BodyStep::kQueued);
  CHECK(c.send_body(*t, "de", 2, true, err) == ProtocolSession::BodyStep::kQueued);
  pump(c, s);
  CHECK(s.requests[1].complete);
  CHECK_EQ_STR(s.requests[1].body, "abcde");
  // More than declared: refused before it is sent.
  auto u = request("POST", "/up");
  u->spec.body_streamed = true;
  u->spec.plan.framing = BodyFraming::kContentLength;
  u->spec.plan.content_length = 2;
  CHECK(c.submit(*u, err));
  Error e2;
  CHECK(c.send_body(*u, "abc", 3, true, e2) == ProtocolSession::BodyStep::kFailed);
  CHECK(e2.kind == ErrorKind::kLocalProtocolError);
}

void test_connection_lost() {
  Listener l;
  Http2Exchanges c(&l);
  Error err;
  CHECK(c.start(err));
  Server s;
  auto sent = request("GET", "/a");
  CHECK(c.submit(*sent, err));
  pump(c, s);
  auto unsent = request("GET", "/b");
  CHECK(c.submit(*unsent, err));  // HEADERS not flushed yet
  Error eof;
  CHECK(c.receive_eof(eof) == ProtocolSession::Result::kFailed);
  CHECK_EQ_STR(eof.message, "Server disconnected");
  auto ended = c.take_ended();
  CHECK(ended.size() == 2);
  CHECK(outcome_of(ended, *sent) == Http2Exchanges::Outcome::kFailed);
  CHECK(sent->error.kind == ErrorKind::kRemoteProtocolError);
  CHECK(outcome_of(ended, *unsent) == Http2Exchanges::Outcome::kRetry);
}

void test_max_concurrent_streams() {
  Listener l;
  Http2Exchanges c(&l);
  Error err;
  CHECK(c.start(err));
  Server s({{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 2}});
  pump(c, s);
  CHECK(c.max_exchanges() == 2);
  auto a = request("GET", "/a");
  auto b = request("GET", "/b");
  CHECK(c.submit(*a, err));
  CHECK(c.can_take_exchange());
  CHECK(c.submit(*b, err));
  CHECK(!c.can_take_exchange());
  pump(c, s);
  s.respond(1, 200, "a");
  pump(c, s);
  c.take_ended();
  CHECK(c.can_take_exchange());
}

}  // namespace

int main() {
  test_request_response();
  test_backpressure_until_read();
  test_cancel_one_stream();
  test_refused_is_retried_then_fails();
  test_goaway_retries_streams_above_last();
  test_reset_fails_that_stream_with_its_code();
  test_read_deadline_per_stream();
  test_streamed_body_and_length();
  test_connection_lost();
  test_max_concurrent_streams();
  return check_report("test_http2_exchanges");
}
