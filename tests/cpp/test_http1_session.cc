// Unit tests for src/http1_session.cc with scripted bytes, no sockets: the
// request bytes an exchange produces (framing as serialize_request decided),
// the response delivered into the Transfer (split anywhere), 101, the end of
// the stream, streamed uploads held to their Content-Length, pausing above the
// high-water mark, draining an abandoned response, and when a request may be
// resent. Built and run by tests/test_cpp_units.py.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "check.h"
#include "http1_session.h"

using httprs::BodyFraming;
using httprs::BodyKind;
using httprs::Error;
using httprs::ErrorKind;
using httprs::HeaderList;
using httprs::Http1Session;
using httprs::Outgoing;
using httprs::ProtocolSession;
using httprs::SessionListener;
using httprs::Transfer;
using Result = httprs::ProtocolSession::Result;
using BodyStep = httprs::ProtocolSession::BodyStep;

namespace {

struct Listener : SessionListener {
  int signals = 0;
  void on_transfer_progress(Transfer&) override { signals++; }
};

std::shared_ptr<Transfer> make(const char* method, HeaderList headers, BodyKind kind,
                               const std::string* body = nullptr) {
  auto t = std::make_shared<Transfer>();
  headers.insert(headers.begin(), {"Host", "example.org"});
  Error err;
  size_t len = body ? body->size() : 0;
  bool ok =
      httprs::serialize_request(t->spec.head, method, "/", headers, kind, len, &t->spec.plan, err);
  CHECK(ok);
  t->spec.body_streamed = kind == BodyKind::kStreamed;
  if (body) {
    t->spec.body = body->data();
    t->spec.body_len = body->size();
  }
  t->spec.head_request = std::string(method) == "HEAD";
  return t;
}

std::string output(Http1Session& s, Outgoing* last = nullptr) {
  Outgoing out;
  std::string all;
  while (s.take_output(out)) {
    all += out.owned;
    if (out.ext.len > 0) all.append(out.ext.data, out.ext.len);
    if (out.tail.len > 0) all.append(out.tail.data, out.tail.len);
    if (last) *last = out;
  }
  return all;
}

// Feed `bytes` in pieces of `step` bytes; returns the first result that is not kMore.
Result feed(Http1Session& s, const std::string& bytes, size_t step, size_t* consumed_total) {
  *consumed_total = 0;
  for (size_t at = 0; at < bytes.size(); at += step) {
    size_t len = bytes.size() - at < step ? bytes.size() - at : step;
    size_t used = 0;
    Error err;
    Result r = s.receive(bytes.data() + at, len, &used, err);
    *consumed_total = at + used;
    if (r != Result::kMore) return r;
  }
  return Result::kMore;
}

void test_request_bytes() {
  Listener l;
  Http1Session s(&l);
  CHECK(s.max_exchanges() == 1);
  CHECK(s.open_exchanges() == 0);
  auto get = make("GET", {}, BodyKind::kFixed);
  Error err;
  CHECK(s.submit(*get, err));
  CHECK(s.open_exchanges() == 1);
  CHECK(!s.can_take_exchange());
  CHECK_EQ_STR(output(s), "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n");
  // A fixed body is borrowed, not copied, after the head.
  std::string body = "hello";
  auto post = make("POST", {{"Content-Length", "5"}}, BodyKind::kFixed, &body);
  CHECK(s.submit(*post, err));
  Outgoing out;
  CHECK(s.take_output(out));
  CHECK(out.ext.data == body.data() && out.ext.len == 5);
  CHECK(out.owned.find("Content-Length: 5\r\n\r\n") != std::string::npos);
  CHECK(!s.take_output(out));
  // Chunked: the fixed body is framed, and ends with the last chunk.
  auto chunked = make("POST", {{"Transfer-Encoding", "chunked"}}, BodyKind::kFixed, &body);
  CHECK(s.submit(*chunked, err));
  std::string bytes = output(s);
  CHECK(bytes.size() > 20 && bytes.substr(bytes.size() - 15) == "5\r\nhello\r\n0\r\n\r\n");
}

// A request that may have gone as HTTP/2 carries no head (plan_request
// only): the session writes it when it goes as HTTP/1.1, the same bytes, and
// again for a retry.
void test_planned_request() {
  Listener l;
  Http1Session s(&l);
  std::string body = "hello";
  auto full = make("POST", {{"Content-Length", "5"}, {"X-A", "1"}}, BodyKind::kFixed, &body);
  auto planned = std::make_shared<Transfer>();
  planned->spec.method = "POST";
  planned->spec.target = "/";
  planned->spec.headers = {{"Host", "example.org"}, {"Content-Length", "5"}, {"X-A", "1"}};
  Error err;
  CHECK(httprs::plan_request("POST", "/", planned->spec.headers, BodyKind::kFixed, 5,
                             &planned->spec.plan, err));
  CHECK(planned->spec.head.empty());
  planned->spec.body = body.data();
  planned->spec.body_len = body.size();
  CHECK(s.submit(*full, err));
  std::string want = output(s);
  s.detach();
  for (int attempt = 0; attempt < 2; attempt++) {
    CHECK(s.submit(*planned, err));
    CHECK_EQ_STR(output(s), want);
    s.detach();
  }
}

void test_streamed_upload() {
  Listener l;
  Http1Session s(&l);
  Error err;
  auto t = make("PUT", {{"Content-Length", "6"}}, BodyKind::kStreamed);
  s.submit(*t, err);
  output(s);
  CHECK(s.upload() == Http1Session::Upload::kStreaming);
  CHECK(!s.keep_alive());  // an upload under way: never another request
  CHECK(s.send_body(*t, "abc", 3, false, err) == BodyStep::kQueued);
  CHECK_EQ_STR(output(s), "abc");
  CHECK(s.send_body(*t, "", 0, false, err) == BodyStep::kNothing);
  // More than the head declared: refused before a byte of it goes out.
  CHECK(s.send_body(*t, "defg", 4, false, err) == BodyStep::kFailed);
  CHECK(err.kind == ErrorKind::kLocalProtocolError);
  CHECK_EQ_STR(err.message, "Too much data for declared Content-Length");
  CHECK(output(s).empty());
  Error short_err;
  CHECK(s.send_body(*t, "de", 2, true, short_err) == BodyStep::kFailed);
  CHECK_EQ_STR(short_err.message, "Too little data for declared Content-Length");
  CHECK(s.send_body(*t, "def", 3, true, err) == BodyStep::kQueued);
  CHECK(s.upload() == Http1Session::Upload::kStreamEnded);
  CHECK(s.send_body(*t, "x", 1, true, err) == BodyStep::kIgnored);
  // Chunked streaming frames each chunk.
  auto c = make("POST", {{"Transfer-Encoding", "chunked"}}, BodyKind::kStreamed);
  s.submit(*c, err);
  output(s);
  CHECK(s.send_body(*c, "hello", 5, false, err) == BodyStep::kQueued);
  CHECK(s.send_body(*c, "", 0, true, err) == BodyStep::kQueued);
  CHECK_EQ_STR(output(s), "5\r\nhello\r\n0\r\n\r\n");
  // Each chunk's data is borrowed (written from the caller's bytes) and goes
  // out whole: its closing CRLF (static) right after it, in the same write.
  auto g = make("POST", {{"Transfer-Encoding", "chunked"}}, BodyKind::kStreamed);
  s.submit(*g, err);
  output(s);
  std::string one = "hello", two = "world!";
  Outgoing o;
  CHECK(s.send_body(*g, one.data(), one.size(), false, err) == BodyStep::kQueued);
  CHECK(s.take_output(o));
  CHECK_EQ_STR(o.owned, "5\r\n");
  CHECK(o.ext.data == one.data() && o.ext.len == 5);
  CHECK(o.tail.len == 2 && std::string(o.tail.data, o.tail.len) == "\r\n");
  CHECK(s.send_body(*g, "", 0, false, err) == BodyStep::kNothing);
  CHECK(s.send_body(*g, two.data(), two.size(), false, err) == BodyStep::kQueued);
  CHECK(s.take_output(o));
  CHECK_EQ_STR(o.owned, "6\r\n");
  CHECK(o.ext.data == two.data() && o.ext.len == 6);
  CHECK(o.tail.len == 2 && std::string(o.tail.data, o.tail.len) == "\r\n");
  CHECK(s.send_body(*g, "", 0, true, err) == BodyStep::kQueued);
  CHECK_EQ_STR(output(s, &o), "0\r\n\r\n");
  CHECK(o.ext.len == 0 && o.tail.len == 0);
  // Two chunks queued before a write: the first is copied, the second borrowed.
  auto h = make("POST", {{"Transfer-Encoding", "chunked"}}, BodyKind::kStreamed);
  s.submit(*h, err);
  output(s);
  CHECK(s.send_body(*h, one.data(), one.size(), false, err) == BodyStep::kQueued);
  CHECK(s.send_body(*h, two.data(), two.size(), true, err) == BodyStep::kQueued);
  CHECK(s.take_output(o));
  CHECK_EQ_STR(o.owned, "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n");
  CHECK(o.ext.len == 0 && o.tail.len == 0);
  // With Content-Length the chunk is borrowed as it is.
  auto k = make("PUT", {{"Content-Length", "5"}}, BodyKind::kStreamed);
  s.submit(*k, err);
  output(s);
  CHECK(s.send_body(*k, one.data(), one.size(), true, err) == BodyStep::kQueued);
  CHECK(s.take_output(o));
  CHECK(o.owned.empty() && o.ext.data == one.data() && o.ext.len == 5 && o.tail.len == 0);
  // A failed write cuts the upload short: later chunks are ignored.
  auto d = make("POST", {{"Transfer-Encoding", "chunked"}}, BodyKind::kStreamed);
  s.submit(*d, err);
  s.cut_short();
  CHECK(s.send_body(*d, "x", 1, false, err) == BodyStep::kIgnored);
}

void test_response(size_t step) {
  Listener l;
  Http1Session s(&l);
  Error err;
  auto t = make("GET", {}, BodyKind::kFixed);
  s.submit(*t, err);
  std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
  size_t consumed = 0;
  CHECK(feed(s, resp + "EXTRA", step, &consumed) == Result::kComplete);
  CHECK(consumed == resp.size());  // the rest is extra: the connection is not reusable
  CHECK(t->head_ready);
  CHECK(t->head.status == 200);
  CHECK(t->head.headers.size() == 2);
  CHECK_EQ_STR(t->body_buf, "hello");
  CHECK(t->body_received == 5);
  CHECK(l.signals >= 2);
  CHECK(s.response() == Http1Session::Response::kReceiving);
  CHECK(!s.finish());
  CHECK(s.keep_alive());
  s.detach();
  CHECK(s.can_take_exchange());
}

void test_sink() {
  Listener l;
  Http1Session s(&l);
  Error err;
  auto t = make("GET", {}, BodyKind::kFixed);
  s.submit(*t, err);
  char sink[4];
  t->sink = sink;
  t->sink_len = sizeof sink;
  size_t consumed = 0;
  feed(s, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef", 1000, &consumed);
  CHECK(t->sink_fill == 4 && std::string(sink, 4) == "abcd");
  CHECK(t->sink_overflow);
  CHECK_EQ_STR(t->body_buf, "ef");
}

// A chunked body's chunk ends are recorded (as counts of body bytes) while it
// may be streamed: buffered before a sink, or into a streamed chunk's sink; not
// for a body read whole (a kWhole sink).
void test_chunk_ends() {
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string chunks = "3\r\nabc\r\n2\r\nde\r\n";
  for (int how = 0; how < 3; how++) {  // no sink, a kChunk sink, a kWhole sink
    Listener l;
    Http1Session s(&l);
    Error err;
    auto t = make("GET", {}, BodyKind::kFixed);
    s.submit(*t, err);
    char sink[64];
    if (how == 1 || how == 2) {
      t->sink = sink;
      t->sink_len = sizeof sink;
      t->sink_use = how == 1 ? httprs::SinkUse::kChunk : httprs::SinkUse::kWhole;
    }
    size_t consumed = 0;
    CHECK(feed(s, head + chunks + "1\r\nf", 1000, &consumed) == Result::kMore);
    CHECK(feed(s, "\r\n0\r\n\r\n", 1000, &consumed) == Result::kComplete);
    bool streamed = how < 2;
    CHECK((t->chunk_ends == std::vector<uint64_t>{3, 5, 6}) == streamed);
    CHECK(t->chunk_ends.empty() != streamed);
  }
  // Tiny chunks: reading pauses once kMaxChunkEnds ends wait for the consumer.
  Listener l;
  Http1Session s(&l);
  Error err;
  auto t = make("GET", {}, BodyKind::kFixed);
  s.submit(*t, err);
  std::vector<char> sink(1 << 20);
  t->sink = sink.data();
  t->sink_len = sink.size();
  t->sink_use = httprs::SinkUse::kChunk;
  std::string body = head;
  for (size_t i = 0; i + 1 < Http1Session::kMaxChunkEnds; i++) body += "1\r\nx\r\n";
  size_t consumed = 0;
  CHECK(feed(s, body, 1 << 20, &consumed) == Result::kMore);
  CHECK(s.flow() == Http1Session::Flow::kReading);
  CHECK(feed(s, "1\r\ny\r\n", 1000, &consumed) == Result::kMore);
  CHECK(t->chunk_ends.size() == Http1Session::kMaxChunkEnds);
  CHECK(s.flow() == Http1Session::Flow::kPaused);
}

// Reading straight into the sink: offered only inside a Content-Length body,
// bounded by the bytes still due and the room left; the bytes read there are
// parsed in place; a full sink with more body due pauses reading.
void test_direct_read() {
  Listener l;
  Http1Session s(&l);
  Error err;
  auto t = make("GET", {}, BodyKind::kFixed);
  s.submit(*t, err);
  char sink[8];
  t->sink = sink;
  t->sink_len = sizeof sink;
  size_t len = 0;
  CHECK(s.direct_read_buffer(&len) == nullptr);  // awaiting the head
  size_t used = 0;
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nab";
  CHECK(s.receive(head.data(), head.size(), &used, err) == Result::kMore);
  CHECK(t->sink_fill == 2 && std::string(sink, 2) == "ab");
  char* at = s.direct_read_buffer(&len);
  CHECK(at == sink + 2 && len == 6);  // the room left (9 bytes are due)
  std::memcpy(at, "cdefgh", 6);       // as the socket would read them
  CHECK(s.receive(at, 6, &used, err) == Result::kMore);
  CHECK(t->sink_fill == 8 && std::string(sink, 8) == "abcdefgh");
  CHECK(s.flow() == Http1Session::Flow::kPaused);  // full, 3 bytes still due
  CHECK(s.direct_read_buffer(&len) == nullptr);    // no room
  char bigger[16];
  std::memcpy(bigger, sink, 8);
  t->sink = bigger;
  t->sink_len = sizeof bigger;
  CHECK(s.resume());
  at = s.direct_read_buffer(&len);
  CHECK(at == bigger + 8 && len == 3);  // never past the body's end
  std::memcpy(at, "ijk", 3);
  CHECK(s.receive(at, 3, &used, err) == Result::kComplete);
  CHECK(std::string(bigger, 11) == "abcdefghijk" && t->body_buf.empty());
  CHECK(s.direct_read_buffer(&len) == nullptr);  // complete

  // A sink filled exactly by the last body byte: no pause.
  auto exact = make("GET", {}, BodyKind::kFixed);
  s.submit(*exact, err);
  char four[4];
  exact->sink = four;
  exact->sink_len = sizeof four;
  std::string whole = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nwxyz";
  CHECK(s.receive(whole.data(), whole.size(), &used, err) == Result::kComplete);
  CHECK(s.flow() == Http1Session::Flow::kReading);

  // Chunked and close-delimited bodies are never read in place (the framing
  // is interleaved / the end is unknown), but fill a sink all the same.
  for (const char* framing : {"Transfer-Encoding: chunked", "Connection: close"}) {
    auto u = make("GET", {}, BodyKind::kFixed);
    s.submit(*u, err);
    char buf[4];
    u->sink = buf;
    u->sink_len = sizeof buf;
    std::string h = std::string("HTTP/1.1 200 OK\r\n") + framing + "\r\n\r\n";
    CHECK(s.receive(h.data(), h.size(), &used, err) == Result::kMore);
    CHECK(s.direct_read_buffer(&len) == nullptr);
    std::string body = framing[0] == 'T' ? "5\r\nabcde\r\n" : "abcde";
    CHECK(s.receive(body.data(), body.size(), &used, err) == Result::kMore);
    CHECK(std::string(buf, 4) == "abcd" && u->body_buf == "e");
    CHECK(s.flow() == Http1Session::Flow::kPaused);  // full, and more may follow
    CHECK(s.resume());
  }
}

void test_read_limit() {
  using S = Http1Session;
  Listener l;
  Http1Session s(&l);
  Error err;
  size_t used = 0;
  constexpr size_t cap = 256 << 10;
  CHECK(s.read_limit(cap) == cap);  // no exchange: an idle connection's read
  auto t = make("GET", {}, BodyKind::kFixed);
  s.submit(*t, err);
  CHECK(s.read_limit(cap) == S::kHeadRead);  // a head read brings little body with it
  CHECK(s.read_limit(1000) == 1000);
  std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  CHECK(s.receive(head.data(), head.size(), &used, err) == Result::kMore);
  // No sink yet: the room under kBodyWater.
  CHECK(s.read_limit(cap) == S::kBodyWater);
  std::string chunk = "2800\r\n" + std::string(0x2800, 'a') + "\r\n";  // 10 KiB
  CHECK(s.receive(chunk.data(), chunk.size(), &used, err) == Result::kMore);
  CHECK(s.read_limit(cap) == S::kBodyWater - 0x2800);
  for (int i = 0; i < 4; i++)
    CHECK(s.receive(chunk.data(), chunk.size(), &used, err) == Result::kMore);
  CHECK(s.read_limit(cap) == S::kMinRead);  // never less
  // A sink: the room left in it (the framing only makes a read hold less body).
  std::vector<char> sink(100 << 10);
  t->sink = sink.data();
  t->sink_len = sink.size();
  t->sink_fill = 0x2800;
  t->body_buf.clear();
  CHECK(s.read_limit(cap) == sink.size() - 0x2800);
  t->sink_fill = sink.size() - 10;
  CHECK(s.read_limit(cap) == S::kMinRead);
  t->sink = nullptr;
  // Draining (the consumer left): as much as the buffer holds.
  s.drain();
  CHECK(s.read_limit(cap) == cap);
}

// A streamed chunk's sink (SinkUse::kChunk) counts as full once less room than
// a read takes (kMinRead) is left in a chunked or close-delimited body, so the
// next read does not spill past it into body_buf (a small chunk of its own);
// a whole-body sink (kWhole) reads on until it is full; inside a Content-Length
// body reads are exact, so a chunk sink is filled to the last byte there too.
void test_chunk_sink_nearly_full() {
  using S = Http1Session;
  Listener l;
  Error err;
  size_t used = 0;
  std::string piece = "3ff0\r\n" + std::string(0x3ff0, 'c') + "\r\n";  // 16 KiB - 16
  for (httprs::SinkUse use : {httprs::SinkUse::kChunk, httprs::SinkUse::kWhole}) {
    Http1Session s(&l);
    auto t = make("GET", {}, BodyKind::kFixed);
    s.submit(*t, err);
    std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK(s.receive(head.data(), head.size(), &used, err) == Result::kMore);
    std::vector<char> sink(S::kMinRead + 0x3ff0 + 8);  // room for one piece and a bit
    t->sink = sink.data();
    t->sink_len = sink.size();
    t->sink_use = use;
    CHECK(s.receive(piece.data(), piece.size(), &used, err) == Result::kMore);
    CHECK(s.flow() == Http1Session::Flow::kReading);  // kMinRead + 8 bytes of room
    CHECK(s.receive(piece.data(), piece.size(), &used, err) == Result::kMore);
    CHECK(t->sink_fill == 2 * 0x3ff0 && t->body_buf.empty());
    if (use == httprs::SinkUse::kChunk) {
      CHECK(s.flow() == Http1Session::Flow::kPaused);  // 24 bytes of room: take the chunk
    } else {
      CHECK(s.flow() == Http1Session::Flow::kReading);  // reads on into the last bytes
      CHECK(s.read_limit(256 << 10) == S::kMinRead);
    }
    std::string end = "0\r\n\r\n";
    CHECK(s.receive(end.data(), end.size(), &used, err) == Result::kComplete);
  }
  // Content-Length: the read is bounded by the bytes due, so a small room is
  // no reason to stop short of it.
  Http1Session s(&l);
  auto t = make("GET", {}, BodyKind::kFixed);
  s.submit(*t, err);
  char sink[64];
  t->sink = sink;
  t->sink_len = sizeof sink;
  t->sink_use = httprs::SinkUse::kChunk;
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + std::string(10, 'x');
  CHECK(s.receive(head.data(), head.size(), &used, err) == Result::kMore);
  CHECK(s.flow() == Http1Session::Flow::kReading);
  size_t len = 0;
  CHECK(s.direct_read_buffer(&len) == sink + 10 && len == 54);
}

void test_connection_close_and_eof() {
  Listener l;
  Http1Session s(&l);
  Error err;
  auto t = make("GET", {}, BodyKind::kFixed);
  s.submit(*t, err);
  size_t consumed = 0;
  // Close-delimited: the end of the stream ends the body.
  CHECK(feed(s, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nab", 3, &consumed) == Result::kMore);
  CHECK(s.receive_eof(err) == Result::kComplete);
  CHECK(!s.keep_alive());
  CHECK(!s.can_take_exchange());
  // An EOF before any byte of the response.
  auto u = make("GET", {}, BodyKind::kFixed);
  s.submit(*u, err);
  Error eof;
  CHECK(s.receive_eof(eof) == Result::kFailed);
  CHECK(eof.kind == ErrorKind::kRemoteProtocolError);
  CHECK_EQ_STR(eof.message, "Server disconnected without sending a response.");
}

void test_protocol_error() {
  Listener l;
  Http1Session s(&l);
  Error err;
  auto t = make("GET", {}, BodyKind::kFixed);
  s.submit(*t, err);
  size_t used = 0;
  // A repeated Content-Length must repeat the first's bytes (h11).
  std::string bad = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 01\r\n\r\nx";
  CHECK(s.receive(bad.data(), bad.size(), &used, err) == Result::kFailed);
  CHECK(err.kind == ErrorKind::kRemoteProtocolError);
  CHECK_EQ_STR(err.message, "conflicting Content-Length headers");
}

void test_switching_protocols() {
  Listener l;
  Http1Session s(&l);
  Error err;
  auto t = make("GET", {{"Connection", "Upgrade"}, {"Upgrade", "websocket"}}, BodyKind::kFixed);
  CHECK(t->spec.plan.upgrade);
  s.submit(*t, err);
  std::string head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
  std::string all = head + "\x81\x02hi";
  size_t used = 0;
  CHECK(s.receive(all.data(), all.size(), &used, err) == Result::kSwitched);
  CHECK(used == head.size());  // the rest is the new protocol's
  CHECK(t->head.status == 101);
  // Without an Upgrade header a 101 is a protocol error (h11's rule).
  auto u = make("GET", {}, BodyKind::kFixed);
  s.submit(*u, err);
  CHECK(s.receive(head.data(), head.size(), &used, err) == Result::kFailed);
}

// A 2xx to a CONNECT the caller sent ends at its head, the rest the tunnel's bytes;
// any other answer to it is an ordinary response with a body.
void test_connect_tunnel() {
  Listener l;
  Http1Session s(&l);
  Error err;
  auto t = make("CONNECT", {}, BodyKind::kFixed);
  CHECK(t->spec.plan.tunnel && !t->spec.plan.upgrade);
  s.submit(*t, err);
  std::string head = "HTTP/1.1 200 Connection established\r\n\r\n";
  std::string all = head + "\x16\x03\x01";
  size_t used = 0;
  CHECK(s.receive(all.data(), all.size(), &used, err) == Result::kSwitched);
  CHECK(used == head.size());
  CHECK(t->head.status == 200);
  CHECK(httprs::switches_protocols(t->spec.plan, 200));
  CHECK(!httprs::switches_protocols(t->spec.plan, 407));

  Http1Session s2(&l);
  auto u = make("CONNECT", {}, BodyKind::kFixed);
  s2.submit(*u, err);
  std::string refused = "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 2\r\n\r\nno";
  CHECK(s2.receive(refused.data(), refused.size(), &used, err) == Result::kComplete);
  CHECK(u->head.status == 407 && used == refused.size());
  // Nor does a 2xx to any other method switch.
  auto g = make("GET", {}, BodyKind::kFixed);
  CHECK(!g->spec.plan.tunnel && !httprs::switches_protocols(g->spec.plan, 200));
}

void test_pause_above_body_water() {
  Listener l;
  Http1Session s(&l);
  Error err;
  auto t = make("GET", {}, BodyKind::kFixed);
  s.submit(*t, err);
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n";
  size_t used = 0;
  s.receive(head.data(), head.size(), &used, err);
  // Reading goes on while a read's worth (kMinRead) of room is left under the mark.
  std::string chunk(Http1Session::kBodyWater - Http1Session::kMinRead, 'x');
  CHECK(s.receive(chunk.data(), chunk.size(), &used, err) == Result::kMore);
  CHECK(s.flow() == Http1Session::Flow::kReading);
  CHECK(s.read_limit(256 << 10) == Http1Session::kMinRead);
  CHECK(s.receive("y", 1, &used, err) == Result::kMore);
  CHECK(s.flow() == Http1Session::Flow::kPaused);
  t->body_buf.clear();  // the consumer took it
  CHECK(s.resume());
  CHECK(!s.resume());
  CHECK(s.flow() == Http1Session::Flow::kReading);
}

// The head read and the mark for body bytes with no sink follow the last
// response on the connection: after one with a body larger than kBodyWater,
// the next head read takes kMinRead and reading pauses as soon as body bytes
// wait with no sink (the rest is read straight into the consumer's); after a
// small one, kHeadRead again.
void test_water_follows_the_last_body() {
  using S = Http1Session;
  Listener l;
  Http1Session s(&l);
  Error err;
  size_t used = 0;
  constexpr size_t cap = 256 << 10;
  CHECK(s.water() == S::kHeadRead);  // a fresh connection
  auto t = make("GET", {}, BodyKind::kFixed);
  s.submit(*t, err);
  CHECK(s.read_limit(cap) == S::kHeadRead);
  char whole[70000];  // the consumer's sink for the whole body
  t->sink = whole;
  t->sink_len = sizeof whole;
  t->sink_use = httprs::SinkUse::kWhole;
  std::string big = "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + std::string(70000, 'b');
  CHECK(s.receive(big.data(), big.size(), &used, err) == Result::kComplete);
  CHECK(s.water() == S::kMinRead);
  s.finish();
  s.detach();
  auto next = make("GET", {}, BodyKind::kFixed);
  s.submit(*next, err);
  CHECK(s.read_limit(cap) == S::kMinRead);
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
  CHECK(s.receive(head.data(), head.size(), &used, err) == Result::kMore);
  CHECK(s.flow() == S::Flow::kReading);
  CHECK(s.receive("x", 1, &used, err) == Result::kMore);
  CHECK(s.flow() == S::Flow::kPaused);
  CHECK(next->body_buf == "x");
  next->body_buf.clear();
  CHECK(s.resume());
  std::string rest(99, 'y');
  CHECK(s.receive(rest.data(), rest.size(), &used, err) == Result::kComplete);
  CHECK(s.water() == S::kHeadRead);  // a small body: the whole response in one read again
  s.finish();
  s.detach();
  auto third = make("GET", {}, BodyKind::kFixed);
  s.submit(*third, err);
  CHECK(s.read_limit(cap) == S::kHeadRead);
}

void test_draining() {
  Listener l;
  Http1Session s(&l);
  Error err;
  // Within the bound: the response is read into the void, then reusable.
  auto t = make("GET", {}, BodyKind::kFixed);
  s.submit(*t, err);
  s.drain();
  size_t used = 0;
  std::string small = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
  CHECK(s.receive(small.data(), small.size(), &used, err) == Result::kComplete);
  CHECK(!t->head_ready);  // nobody holds it: not delivered
  CHECK(t->body_buf.empty());
  CHECK(s.finish());  // it was draining
  CHECK(s.keep_alive());
  // Past the bound: discard (the connection closes).
  auto u = make("GET", {}, BodyKind::kFixed);
  s.submit(*u, err);
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n";
  s.receive(head.data(), head.size(), &used, err);
  s.drain();
  std::string body(Http1Session::kDrainLimit + 1, 'x');
  CHECK(s.receive(body.data(), body.size(), &used, err) == Result::kDiscard);
}

void test_may_resend() {
  Listener l;
  Http1Session s(&l);
  Error err;
  std::string body = "x";
  auto get = make("GET", {}, BodyKind::kFixed);
  s.submit(*get, err);
  CHECK(s.may_resend(*get));
  s.note_sent();
  CHECK(s.may_resend(*get));  // idempotent: harmless to send twice
  get->attempts = 3;
  CHECK(!s.may_resend(*get));  // but not forever
  auto post = make("POST", {{"Content-Length", "1"}}, BodyKind::kFixed, &body);
  s.submit(*post, err);
  CHECK(s.may_resend(*post));  // nothing reached the socket yet
  s.note_sent();
  CHECK(!s.may_resend(*post));  // the server may have acted on it
  auto put = make("PUT", {{"Content-Length", "1"}}, BodyKind::kStreamed);
  s.submit(*put, err);
  CHECK(!s.may_resend(*put));  // a stream cannot be replayed
  auto late = make("GET", {}, BodyKind::kFixed);
  s.submit(*late, err);
  size_t used = 0;
  s.receive("HTTP/1.1 2", 10, &used, err);
  CHECK(!s.may_resend(*late));  // the response had started
  auto left = make("GET", {}, BodyKind::kFixed);
  s.submit(*left, err);
  s.drain();
  CHECK(!s.may_resend(*left));  // its consumer left
}

}  // namespace

int main() {
  test_request_bytes();
  test_planned_request();
  test_streamed_upload();
  for (size_t step : {1, 7, 1000}) test_response(step);
  test_sink();
  test_chunk_ends();
  test_direct_read();
  test_read_limit();
  test_chunk_sink_nearly_full();
  test_connection_close_and_eof();
  test_protocol_error();
  test_switching_protocols();
  test_connect_tunnel();
  test_pause_above_body_water();
  test_water_follows_the_last_body();
  test_draining();
  test_may_resend();
  return check_report("test_http1_session");
}
