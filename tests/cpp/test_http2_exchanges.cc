// Http2Exchanges (HTTP/2 as a ProtocolSession: streams <-> transfers) driven
// by an nghttp2 *server* session in the same program. No sockets, no engine:
// what the connection would do (move bytes, collect ended streams, set the
// time) is done here by hand.
#include <nghttp2/nghttp2.h>

#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "check.h"
#include "h2_test_server.h"
#include "http2_exchanges.h"

using namespace httprs;

namespace {

struct Listener : SessionListener {
  int progress = 0;
  void on_transfer_progress(Transfer&) override { ++progress; }
};

using h2test::Server;

std::shared_ptr<Transfer> request(const std::string& method, const std::string& target,
                                  double read_timeout = -1);

// What a connection would be around the session under test: the listener,
// the server at the other end, the socket's write numbers and the clock.
struct Fixture {
  Listener l;
  Http2Exchanges c;
  Server s;
  uint64_t writes = 0;  // write numbers handed out (SocketStream::writes_started())

  explicit Fixture(std::vector<nghttp2_settings_entry> settings = {}, Http2Config config = {})
      : c(&l, config), s(std::move(settings)) {
    Error err;
    CHECK(c.start(err));
  }
  // The client's output as one socket write (not completed yet): into the
  // server. False when it had nothing to say.
  bool send() {
    Outgoing out;
    if (!c.take_output(out)) return false;
    c.mark_flushed(++writes);
    s.input(out.owned);
    return true;
  }
  // The socket's writes up to number `upto` (0: all) completed.
  void written(uint64_t upto = 0) { c.note_written(upto ? upto : writes); }
  // The server's output into the client. False when it had nothing to say.
  bool answer() {
    std::string back = s.output();
    if (back.empty()) return false;
    size_t used = 0;
    Error err;
    c.receive(back.data(), back.size(), &used, err);
    return true;
  }
  // Move bytes both ways until neither side has anything to say; each write
  // completes at once unless `complete` is false.
  void pump(bool complete = true) {
    for (int round = 0; round < 1000; ++round) {
      bool any = send();
      if (any && complete) written();
      if (!answer() && !any) return;
    }
    CHECK(!"pump did not settle");
  }
  // A GET for each target, submitted (checked), then pumped.
  std::vector<std::shared_ptr<Transfer>> get(const std::vector<std::string>& targets) {
    std::vector<std::shared_ptr<Transfer>> ts;
    Error err;
    for (auto& target : targets) {
      ts.push_back(request("GET", target));
      CHECK(c.submit(*ts.back(), err));
    }
    pump();
    return ts;
  }
  // At now = 1000: a POST of `body` (kept by the caller) with a 0.5 s write
  // timeout, submitted (checked), its HEADERS and first window's worth of
  // body written (write 1, completed): its write deadline is 1500.
  std::shared_ptr<Transfer> upload(const std::string& body) {
    Error err;
    c.set_now(1000);
    auto up = request("POST", "/up", 5);
    up->spec.write_timeout = 0.5;
    up->spec.body = body.data();
    up->spec.body_len = body.size();
    CHECK(c.submit(*up, err));
    CHECK(send());
    written(1);
    CHECK(!up->body_sent);
    CHECK(c.next_deadline() == 1500);
    return up;
  }
};

std::shared_ptr<Transfer> request(const std::string& method, const std::string& target,
                                  double read_timeout) {
  auto t = std::make_shared<Transfer>();
  t->spec.method = method;
  t->spec.target = target;
  t->spec.authority = "example.org";
  t->spec.headers = {{"Host", "example.org:8080"}, {"Connection", "keep-alive"}, {"X-Custom", "v"}};
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
  Fixture f;
  Error err;
  auto t = request("GET", "/a?b=1");
  CHECK(f.c.submit(*t, err));
  CHECK(t->http2);
  CHECK(t->stream_id == 1);
  CHECK(f.c.open_exchanges() == 1);
  f.pump(false);
  CHECK_EQ_STR(f.s.header(1, ":path"), "/a?b=1");
  CHECK_EQ_STR(f.s.header(1, ":authority"), "example.org:8080");
  CHECK_EQ_STR(f.s.header(1, ":scheme"), "http");
  CHECK_EQ_STR(f.s.header(1, "x-custom"), "v");
  CHECK_EQ_STR(f.s.header(1, "connection"), "<none>");
  CHECK(!t->body_sent);  // handed to the socket, not written yet
  f.written();
  CHECK(t->body_sent);
  f.s.respond(1, 200, "hello", {{"content-type", "text/plain"}});
  f.pump();
  CHECK(t->head_ready);
  CHECK(t->head.status == 200);
  CHECK(t->head.http_major == 2);
  CHECK(!t->head.headers.empty());
  if (!t->head.headers.empty()) CHECK_EQ_STR(std::string(t->head.headers.name(0)), "content-type");
  CHECK_EQ_STR(t->body_buf, "hello");
  CHECK(t->complete);
  CHECK(t->phase == Transfer::Phase::kDone);
  auto ended = f.c.take_ended();
  CHECK(ended.size() == 1 && outcome_of(ended, *t) == Http2Exchanges::Outcome::kComplete);
  CHECK(f.c.open_exchanges() == 0);
  CHECK(f.c.can_take_exchange());
  CHECK(f.l.progress > 0);
}

// A consumer that has not read yet holds its stream at its initial window
// (64 KiB). Its first read opens the window wide (the WINDOW_UPDATE is to go
// out at once: resume() says so, that time only); a consumer that then stops
// holds its stream at about 2 MiB (1 MiB buffered + the 1 MiB window);
// reading opens the window again.
void test_backpressure_until_read() {
  Fixture f;
  auto ts = f.get({"/big", "/small"});
  auto &slow = ts[0], &other = ts[1];
  f.s.respond(1, 200, std::string(6u << 20, 'x'));
  f.s.respond(3, 200, "small");
  f.pump();
  CHECK(!slow->complete);
  CHECK(slow->body_buf.size() == (64u << 10));
  CHECK(other->complete);
  CHECK(f.c.resume(*slow));   // the first read: the window opens
  CHECK(!f.c.resume(*slow));  // and stays open
  f.pump();
  constexpr size_t most = Http2Exchanges::kHighWater + (1u << 20);
  CHECK(slow->body_buf.size() >= Http2Exchanges::kHighWater);
  CHECK(slow->body_buf.size() <= most);
  CHECK(slow->body_buf.capacity() <= most);
  CHECK(other->complete);  // the other stream went on
  CHECK_EQ_STR(other->body_buf, "small");
  size_t total = 0;
  for (int i = 0; i < 100 && !slow->complete; ++i) {
    total += slow->body_buf.size();
    slow->body_buf.clear();
    f.c.resume(*slow);
    f.pump();
  }
  total += slow->body_buf.size();
  CHECK(slow->complete);
  CHECK(total == (6u << 20));
}

void test_cancel_one_stream() {
  Fixture f;
  auto ts = f.get({"/a", "/b"});
  f.c.cancel(*ts[0]);
  f.pump();
  CHECK(f.s.resets.count(1) == 1 && f.s.resets[1] == NGHTTP2_CANCEL);
  CHECK(f.s.resets.count(3) == 0);
  f.s.respond(3, 200, "b");
  f.pump();
  CHECK(ts[1]->complete);
  CHECK(f.c.open_exchanges() == 0);
}

void test_refused_is_retried_then_fails() {
  Fixture f;
  Error err;
  auto t = f.get({"/"})[0];
  nghttp2_submit_rst_stream(f.s.session, NGHTTP2_FLAG_NONE, 1, NGHTTP2_REFUSED_STREAM);
  f.pump();
  auto ended = f.c.take_ended();
  CHECK(ended.size() == 1 && outcome_of(ended, *t) == Http2Exchanges::Outcome::kRetry);
  CHECK(!t->failed());
  // Out of attempts: the error reaches the consumer.
  auto u = request("GET", "/again");
  u->attempts = Http2Exchanges::kMaxAttempts;
  CHECK(f.c.submit(*u, err));
  f.pump();
  nghttp2_submit_rst_stream(f.s.session, NGHTTP2_FLAG_NONE, 3, NGHTTP2_REFUSED_STREAM);
  f.pump();
  ended = f.c.take_ended();
  CHECK(ended.size() == 1 && outcome_of(ended, *u) == Http2Exchanges::Outcome::kFailed);
  CHECK(u->failed() && u->error.kind == ErrorKind::kRemoteProtocolError);
  // A streamed body is never sent again (a chunk may have left its iterator).
  auto up = request("POST", "/up");
  up->spec.body_streamed = true;
  up->spec.plan.framing = BodyFraming::kChunked;
  CHECK(f.c.submit(*up, err));
  f.pump();
  nghttp2_submit_rst_stream(f.s.session, NGHTTP2_FLAG_NONE, 5, NGHTTP2_REFUSED_STREAM);
  f.pump();
  ended = f.c.take_ended();
  CHECK(ended.size() == 1 && outcome_of(ended, *up) == Http2Exchanges::Outcome::kFailed);
  CHECK(up->failed());
}

void test_goaway_retries_streams_above_last() {
  Fixture f;
  auto ts = f.get({"/a", "/b"});
  nghttp2_submit_goaway(f.s.session, NGHTTP2_FLAG_NONE, 1, NGHTTP2_NO_ERROR, nullptr, 0);
  f.s.respond(1, 200, "a");
  f.pump();
  CHECK(f.c.goaway_received());
  CHECK(!f.c.can_take_exchange());
  auto ended = f.c.take_ended();
  CHECK(ended.size() == 2);
  CHECK(outcome_of(ended, *ts[0]) == Http2Exchanges::Outcome::kComplete);
  CHECK(outcome_of(ended, *ts[1]) == Http2Exchanges::Outcome::kRetry);
  CHECK_EQ_STR(ts[0]->body_buf, "a");
}

void test_reset_fails_that_stream_with_its_code() {
  Fixture f;
  auto ts = f.get({"/a", "/b"});
  nghttp2_submit_rst_stream(f.s.session, NGHTTP2_FLAG_NONE, 1, NGHTTP2_INTERNAL_ERROR);
  f.s.respond(3, 200, "b");
  f.pump();
  CHECK(ts[0]->failed());
  CHECK(ts[0]->error.message.find("INTERNAL_ERROR") != std::string::npos);
  CHECK(ts[1]->complete && !ts[1]->failed());
}

void test_read_deadline_per_stream() {
  Fixture f;
  Error err;
  f.c.set_now(1000);
  auto slow = request("GET", "/slow", 0.5);
  auto fast = request("GET", "/fast", 0.5);
  CHECK(f.c.submit(*slow, err));
  CHECK(f.c.submit(*fast, err));
  f.pump();
  CHECK(f.c.next_deadline() == 1500);
  f.c.set_now(1400);
  f.s.respond(3, 200, "fast");
  f.pump();  // the fast stream's frames renew its own deadline only
  CHECK(fast->complete);
  CHECK(f.c.next_deadline() == 1500);
  f.c.set_now(1500);
  f.c.expire();
  f.pump();
  CHECK(slow->failed() && slow->error.kind == ErrorKind::kReadTimeout);
  CHECK(f.s.resets.count(1) == 1 && f.s.resets[1] == NGHTTP2_CANCEL);
  CHECK(f.c.next_deadline() == 0);
  CHECK(f.c.open_exchanges() == 0);
}

// Timeouts out of range (infinite, NaN, 1e300 s: converting them to whole
// milliseconds as they are is undefined behaviour, which this build's UBSan
// aborts on) are no timeout: such a stream sets no deadline, its neighbour
// with a real one does. A timeout of 1e6 s is a deadline that far.
void test_deadlines_out_of_range() {
  const double none[] = {HUGE_VAL, -HUGE_VAL, NAN, 1e300, 1e9, -1};
  for (double seconds : none) {
    for (bool sent : {false, true}) {
      Fixture f;
      Error err;
      f.c.set_now(1000);
      auto t = request("GET", "/t", sent ? seconds : 5);
      t->spec.write_timeout = sent ? 5 : seconds;
      CHECK(f.c.submit(*t, err));
      if (sent) {
        f.pump();  // the request is out: the read timeout runs
        CHECK(t->body_sent);
      } else {
        CHECK(f.send());  // the write is not complete: the write timeout runs
        CHECK(!t->body_sent);
      }
      CHECK(f.c.next_deadline() == 0);
      auto other = request("GET", "/other", 0.25);
      CHECK(f.c.submit(*other, err));
      f.pump();
      CHECK(f.c.next_deadline() == 1250);
    }
  }
  Fixture f;
  Error err;
  f.c.set_now(1000);
  auto far = request("GET", "/far", 1e6);
  CHECK(f.c.submit(*far, err));
  f.pump();
  CHECK(f.c.next_deadline() == 1000 + 1000000000ull);
}

// Write deadlines are per stream: a request counts as sent once the socket
// write carrying its end completed, whatever else is still being written; a
// stream whose upload stopped moving (no window) times out while others write.
void test_write_deadline_per_stream() {
  Fixture f;  // the server's windows: 64 KiB
  Error err;
  std::string body(300000, 'x');
  auto up = f.upload(body);  // write 1: its HEADERS and first 64 KiB
  CHECK(f.answer());         // the server's SETTINGS: more streams may go now
  auto get = request("GET", "/get", 5);
  get->spec.write_timeout = 0.5;
  CHECK(f.c.submit(*get, err));
  CHECK(f.send());
  f.written(2);
  CHECK(get->body_sent && !up->body_sent);
  CHECK(f.c.next_deadline() == 1500);  // the upload's write deadline
  f.c.set_now(1400);
  // The server reads but gives no window back; other requests come and go,
  // and their writes complete: the stalled upload's deadline does not move.
  for (int i = 0; i < 3; ++i) {
    auto more = request("GET", "/more", 5);
    CHECK(f.c.submit(*more, err));
    CHECK(f.send());
    f.written();
    CHECK(more->body_sent);
  }
  CHECK(f.c.next_deadline() == 1500);
  f.c.set_now(1500);
  f.c.expire();
  CHECK(up->failed() && up->error.kind == ErrorKind::kWriteTimeout);
  CHECK(!get->failed());
}

// An upload answered before it is all out keeps its write timeout: the
// response's bytes that came meanwhile are given back (a server that answers
// as it reads must not stall the upload), and bytes held unread are the
// consumer's turn (no deadline) only once the request is all out. Exempting
// them stalled such an upload with no timeout.
void test_upload_answered_early_keeps_its_write_timeout() {
  Fixture f;
  std::string body(300000, 'x');
  auto up = f.upload(body);  // write 1: HEADERS and the first 64 KiB; deadline 1500
  f.s.respond(1, 200, std::string(200000, 'r'));
  CHECK(f.answer());  // its head and first DATA (the server's WINDOW_UPDATEs too)
  CHECK(up->head_ready && !up->body_sent);
  CHECK(up->body_buf.size() == (64u << 10));
  CHECK(f.c.next_deadline() == 1500);  // nothing more goes out: the upload stalls
  f.c.set_now(1500);
  f.c.expire();
  CHECK(up->failed() && up->error.kind == ErrorKind::kWriteTimeout);
}

// The same with more response than the stream buffers unread (its window
// then held, not given back): bytes held for the consumer exempt a stream from
// its deadline only once its request is all out; an upload still stalls into
// its write timeout.
void test_upload_answered_past_the_high_water_keeps_its_write_timeout() {
  Fixture f;
  std::string body(300000, 'x');
  auto up = f.upload(body);  // write 1: HEADERS and the first 64 KiB; deadline 1500
  f.s.respond(1, 200, std::string(3u << 20, 'r'));
  for (int round = 0; round < 1000; ++round) {
    bool any = f.send();  // never completed: the upload makes no progress
    if (!f.answer() && !any) break;
  }
  CHECK(up->head_ready && !up->body_sent);
  CHECK(up->body_buf.size() >= Http2Exchanges::kHighWater);
  CHECK(f.c.next_deadline() == 1500);
  f.c.set_now(1500);
  f.c.expire();
  CHECK(up->failed() && up->error.kind == ErrorKind::kWriteTimeout);
}

// An upload still moving keeps its stream alive: each of its writes that
// completes starts its write timeout again; a request behind it counts as
// sent as soon as its own write completed.
void test_write_progress_renews_only_that_stream() {
  Fixture f;
  Error err;
  std::string body(300000, 'x');
  auto up = f.upload(body);  // write 1: HEADERS and the first 64 KiB
  f.c.set_now(1300);
  CHECK(f.answer());  // the server's WINDOW_UPDATEs
  CHECK(f.send());    // write 2: more of the body
  auto get = request("GET", "/get", 5);
  CHECK(f.c.submit(*get, err));
  CHECK(f.send());  // write 3: the GET
  f.c.set_now(1400);
  f.written(2);
  CHECK(f.c.next_deadline() == 1900);  // renewed by its own progress
  CHECK(!get->body_sent);              // its write is still pending
  f.written(3);
  CHECK(get->body_sent && !up->body_sent);
  f.pump();
  CHECK(up->body_sent);
  CHECK(f.s.requests[1].body == body);
}

// A failed write stops the output, not the input: a response and a GOAWAY
// already sent are read, then the end of the connection fails the rest,
// each with the right error.
void test_write_failure_reads_on() {
  Fixture f;
  Error err;
  auto ts = f.get({"/a", "/b"});       // both written
  auto unsent = request("GET", "/c");  // handed over, its write failed
  CHECK(f.c.submit(*unsent, err));
  CHECK(f.send());
  Error werr;
  werr.set(ErrorKind::kWriteError, "Broken pipe");
  f.c.write_failed(werr);
  Outgoing out;
  CHECK(!f.c.take_output(out));
  f.s.respond(1, 200, "a");
  f.pump();
  CHECK(ts[0]->complete && !ts[0]->failed());
  Error eof;
  f.c.receive_eof(eof);
  auto ended = f.c.take_ended();
  CHECK(outcome_of(ended, *ts[0]) == Http2Exchanges::Outcome::kComplete);
  CHECK(outcome_of(ended, *ts[1]) == Http2Exchanges::Outcome::kFailed);
  CHECK(ts[1]->error.kind == ErrorKind::kRemoteProtocolError);  // the read side's
  CHECK(outcome_of(ended, *unsent) == Http2Exchanges::Outcome::kFailed);
  CHECK(unsent->error.kind == ErrorKind::kWriteError);
  // With a GOAWAY read first, what the server did not process is retried.
  Fixture g;
  auto us = g.get({"/a", "/b"});
  g.c.write_failed(werr);
  nghttp2_submit_goaway(g.s.session, NGHTTP2_FLAG_NONE, 1, NGHTTP2_NO_ERROR, nullptr, 0);
  g.s.respond(1, 200, "a");
  g.pump();
  g.c.receive_eof(eof);
  ended = g.c.take_ended();
  CHECK(outcome_of(ended, *us[0]) == Http2Exchanges::Outcome::kComplete);
  CHECK(outcome_of(ended, *us[1]) == Http2Exchanges::Outcome::kRetry);
}

// Readers that stopped hold their streams at their own windows, never the
// connection's: with a connection window of 4 MiB, four stopped readers
// (1 MiB unread each beyond the buffered megabyte) used to take all of it and
// stall every other stream.
void test_stopped_readers_never_starve_others() {
  Http2Config config;
  config.connection_window = 4u << 20;
  Fixture f({}, config);
  auto ts = f.get({"/1", "/2", "/3", "/4", "/5"});
  for (int32_t id = 1; id <= 7; id += 2) f.s.respond(id, 200, std::string(3u << 20, 'x'));
  f.pump();
  f.s.respond(9, 200, std::string(3u << 20, 'y'));
  size_t got = 0;
  for (int i = 0; i < 100 && !ts[4]->complete; ++i) {
    f.pump();
    got += ts[4]->body_buf.size();
    ts[4]->body_buf.clear();
    f.c.resume(*ts[4]);
  }
  CHECK(ts[4]->complete);
  CHECK(got == (3u << 20));
  for (int i = 0; i < 4; ++i) CHECK(!ts[i]->complete);  // still held at their windows
}

void test_streamed_body_and_length() {
  Fixture f;
  Error err;
  auto t = request("POST", "/up");
  t->spec.body_streamed = true;
  t->spec.plan.framing = BodyFraming::kContentLength;
  t->spec.plan.content_length = 5;
  t->spec.headers.emplace_back("Content-Length", "5");
  CHECK(f.c.submit(*t, err));
  CHECK(t->want_body);
  CHECK(f.c.send_body(*t, "abc", 3, false, err) == ProtocolSession::BodyStep::kQueued);
  CHECK(f.c.send_body(*t, "de", 2, true, err) == ProtocolSession::BodyStep::kQueued);
  f.pump();
  CHECK(f.s.requests[1].complete);
  CHECK_EQ_STR(f.s.requests[1].body, "abcde");
  // More than declared: refused before it is sent.
  auto u = request("POST", "/up");
  u->spec.body_streamed = true;
  u->spec.plan.framing = BodyFraming::kContentLength;
  u->spec.plan.content_length = 2;
  CHECK(f.c.submit(*u, err));
  Error e2;
  CHECK(f.c.send_body(*u, "abc", 3, true, e2) == ProtocolSession::BodyStep::kFailed);
  CHECK(e2.kind == ErrorKind::kLocalProtocolError);
}

void test_connection_lost() {
  Fixture f;
  Error err;
  auto sent = f.get({"/a"})[0];
  auto unsent = request("GET", "/b");
  CHECK(f.c.submit(*unsent, err));  // HEADERS not flushed yet
  Error eof;
  CHECK(f.c.receive_eof(eof) == ProtocolSession::Result::kFailed);
  CHECK_EQ_STR(eof.message, "Server disconnected");
  auto ended = f.c.take_ended();
  CHECK(ended.size() == 2);
  CHECK(outcome_of(ended, *sent) == Http2Exchanges::Outcome::kFailed);
  CHECK(sent->error.kind == ErrorKind::kRemoteProtocolError);
  CHECK(outcome_of(ended, *unsent) == Http2Exchanges::Outcome::kRetry);
}

void test_max_concurrent_streams() {
  Fixture f({{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 2}});
  Error err;
  f.pump();
  CHECK(f.c.max_exchanges() == 2);
  auto a = request("GET", "/a");
  auto b = request("GET", "/b");
  CHECK(f.c.submit(*a, err));
  CHECK(f.c.can_take_exchange());
  CHECK(f.c.submit(*b, err));
  CHECK(!f.c.can_take_exchange());
  f.pump();
  f.s.respond(1, 200, "a");
  f.pump();
  f.c.take_ended();
  CHECK(f.c.can_take_exchange());
}

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

// What Engine::set_sink does: the consumer's buffer from `fill` on, with
// whatever was buffered moved into it first.
void attach(Transfer& t, std::string& buf, size_t fill) {
  size_t n = std::min(buf.size() - fill, t.body_buf.size());
  std::memcpy(&buf[fill], t.body_buf.data(), n);
  t.body_buf.erase(0, n);
  t.sink = &buf[0];
  t.sink_len = buf.size();
  t.sink_fill = fill + n;
  t.sink_overflow = !t.body_buf.empty();
}

// DATA goes straight into the consumer's sink while it fits there, in order
// with whatever went through the buffer first.
// With no sink, the buffer of a body of declared length grows at once to
// the most it may hold: before the consumer's first read, its initial window
// (or the length); after, that length or the most the stream may hold unread,
// exactly: doubling left a chain of freed blocks below the body's sink (16 MB
// resident for a 10 MB body).
void test_buffer_grows_once() {
  Fixture f;
  auto ts = f.get({"/small", "/big", "/tiny"});
  std::string small = pattern(100000), big = pattern(3u << 20), tiny = pattern(40000);
  f.s.respond(1, 200, small, {{"content-length", std::to_string(small.size())}});
  f.s.respond(3, 200, big, {{"content-length", std::to_string(big.size())}});
  f.s.respond(5, 200, tiny, {{"content-length", std::to_string(tiny.size())}});
  f.pump();
  CHECK(ts[2]->complete && ts[2]->body_buf == tiny);
  CHECK(ts[2]->body_buf.capacity() == tiny.size());
  for (int i = 0; i < 2; ++i) {
    CHECK(!ts[i]->complete && ts[i]->body_buf.size() == (64u << 10));
    CHECK(ts[i]->body_buf.capacity() == (64u << 10));
    CHECK(f.c.resume(*ts[i]));
  }
  f.pump();
  CHECK(ts[0]->complete && ts[0]->body_buf == small);
  CHECK(ts[0]->body_buf.capacity() == small.size());
  CHECK(!ts[1]->complete && ts[1]->body_buf.size() >= Http2Exchanges::kHighWater);
  CHECK(ts[1]->body_buf.capacity() == Http2Exchanges::kHighWater + (1u << 20));
  std::string got;
  for (int i = 0; i < 100 && !ts[1]->complete; ++i) {
    got += ts[1]->body_buf;
    ts[1]->body_buf.clear();
    f.c.resume(*ts[1]);
    f.pump();
  }
  got += ts[1]->body_buf;
  CHECK(ts[1]->complete && got == big);
}

// An upload answered early with a long body of declared length: its bytes
// are given back while the request goes out, so they pass the initial
// window's buffer; it then grows by doubling, not by one frame at a time.
void test_buffer_doubles_past_the_initial_window() {
  Fixture f;
  std::string body(3000000, 'x');  // the upload reads it in place
  auto up = f.upload(body);
  std::string resp = pattern(900000);
  f.s.respond(1, 200, resp, {{"content-length", std::to_string(resp.size())}});
  int moves = 0;
  const char* at = nullptr;
  for (int round = 0; round < 2000; ++round) {
    bool any = f.send();
    if (any) f.written();
    bool answered = f.answer();
    if (!up->body_buf.empty() && up->body_buf.data() != at) {
      moves += at != nullptr;
      at = up->body_buf.data();
    }
    if (!answered && !any) break;
  }
  CHECK(up->body_buf == resp);
  CHECK(up->body_buf.capacity() == resp.size());
  CHECK(moves <= 5);  // 64 KiB -> 128 -> 256 -> 512 KiB -> the declared length
}

void test_data_into_sink() {
  {  // the whole body into one sink, frames of every size
    Fixture f;
    auto t = f.get({"/whole"})[0];
    std::string body = pattern(3 * 16384 + 100), sink(body.size(), '\0');
    attach(*t, sink, 0);
    f.s.respond(1, 200, body);
    f.pump();
    CHECK(t->complete);
    CHECK(t->sink_fill == body.size() && !t->sink_overflow && t->body_buf.empty());
    CHECK(sink == body);
    CHECK(t->body_received == body.size());
  }
  {  // a frame that does not fit goes through the buffer, and so does all that
     // follows it in the same read, even what would fit: nothing overtakes it
    Fixture f;
    auto t = f.get({"/split"})[0];
    std::string body = pattern(16384 + 100), sink(10000, '\0');
    attach(*t, sink, 0);
    f.s.respond(1, 200, body);
    f.pump();
    CHECK(t->complete);
    CHECK(t->sink_fill == sink.size() && t->sink_overflow);
    CHECK(sink == body.substr(0, sink.size()));
    CHECK(t->body_buf == body.substr(sink.size()));
  }
  {  // bytes buffered before the sink came, then the rest straight into it
    Fixture f;
    auto t = f.get({"/late"})[0];
    std::string body = pattern((3u << 20) + 5);
    f.s.respond(1, 200, body);
    f.pump();  // stops at the high-water mark: nobody reads
    CHECK(!t->complete && !t->body_buf.empty());
    std::string sink(body.size(), '\0');
    attach(*t, sink, 0);
    f.c.resume(*t);
    f.pump();
    CHECK(t->complete);
    CHECK(t->sink_fill == body.size() && t->body_buf.empty());
    CHECK(sink == body);
  }
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
  test_write_deadline_per_stream();
  test_deadlines_out_of_range();
  test_write_progress_renews_only_that_stream();
  test_upload_answered_early_keeps_its_write_timeout();
  test_upload_answered_past_the_high_water_keeps_its_write_timeout();
  test_write_failure_reads_on();
  test_stopped_readers_never_starve_others();
  test_streamed_body_and_length();
  test_connection_lost();
  test_max_concurrent_streams();
  test_data_into_sink();
  test_buffer_grows_once();
  test_buffer_doubles_past_the_initial_window();
  return check_report("test_http2_exchanges");
}
