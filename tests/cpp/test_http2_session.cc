// Http2Session driven by an nghttp2 *server* session in the same program:
// the client's flush() output goes into the server's mem_recv, the server's
// mem_send output into the client's feed(). No sockets.
#include <nghttp2/nghttp2.h>

#include <cstring>
#include <list>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "h2_test_server.h"
#include "http2_session.h"

using namespace httprs;

namespace {

using h2test::Server;

// Move bytes both ways until neither side has anything to say.
void pump(Http2Session& client, Server& server) {
  for (int round = 0; round < 1000; ++round) {
    std::string out;
    Error err;
    CHECK(client.flush(out, err));
    if (!out.empty()) server.input(out);
    std::string back = server.output();
    if (!back.empty()) client.feed((const uint8_t*)back.data(), back.size(), err);
    if (out.empty() && back.empty()) return;
  }
  CHECK(!"pump did not settle");
}

// A request; Http2Request views its strings, so the test keeps them for the run.
Http2Request request(const std::string& method, const std::string& scheme,
                     const std::string& authority, const std::string& path, HeaderList headers) {
  static std::list<std::pair<std::vector<std::string>, HeaderList>> kept;
  kept.emplace_back(std::vector<std::string>{method, scheme, authority, path}, std::move(headers));
  const auto& k = kept.back();
  Http2Request r;
  r.method = k.first[0];
  r.scheme = k.first[1];
  r.authority = k.first[2];
  r.path = k.first[3];
  r.headers = &k.second;
  return r;
}

// A GET of `path` on https://example.org.
Http2Request get(const std::string& path, HeaderList headers = {}) {
  return request("GET", "https", "example.org", path, std::move(headers));
}

struct StreamLog {
  int status = 0;
  HeaderBlock headers;
  std::string body;
  bool ended = false;
  bool reset = false;
  bool retryable = false;
  uint32_t code = 0;
  Error error;
  int body_wanted = 0;
  int interim = 0;                 // informational heads seen
  std::vector<size_t> frame_ends;  // body sizes at each kDataEnd
};

// Apply events to per-stream logs; consume DATA at once unless told not to.
std::map<int32_t, StreamLog> collect(Http2Session& c, std::map<int32_t, StreamLog>& logs,
                                     std::vector<Http2Event>* other = nullptr,
                                     bool consume = true) {
  for (auto& ev : c.take_events()) {
    StreamLog& l = logs[ev.stream_id];
    switch (ev.kind) {
      case Http2EventKind::kHeaders:
        l.status = ev.status;
        l.headers = ev.headers;
        break;
      case Http2EventKind::kData:
        l.body += ev.data;
        if (consume) c.consume(ev.stream_id, ev.data.size());
        break;
      case Http2EventKind::kDataEnd:
        l.frame_ends.push_back(l.body.size());
        break;
      case Http2EventKind::kEnd:
        l.ended = true;
        break;
      case Http2EventKind::kReset:
        l.reset = true;
        l.retryable = ev.retryable;
        l.code = ev.h2_error;
        l.error = ev.error;
        break;
      case Http2EventKind::kBodyWanted:
        ++l.body_wanted;
        break;
      case Http2EventKind::kInterim:
        ++l.interim;
        break;
      default:
        if (other) other->push_back(ev);
        break;
    }
  }
  return logs;
}

void test_request_response() {
  Http2Session c;
  Error err;
  CHECK(c.init(err));
  Server s;
  int32_t id = c.submit(get("/a?b=1", {{"Host", "example.com:8443"},
                                       {"Connection", "keep-alive"},
                                       {"Keep-Alive", "timeout=5"},
                                       {"Transfer-Encoding", "chunked"},
                                       {"Upgrade", "websocket"},
                                       {"Proxy-Connection", "close"},
                                       {"X-Custom", "Value"},
                                       {"TE", "trailers"}}),
                        err);
  CHECK(id == 1);
  pump(c, s);
  // Windows: 64 KiB per stream until its consumer reads, then 1 MiB (sized
  // for throughput); 64 MiB for the connection.
  CHECK(nghttp2_session_get_remote_settings(s.session, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE) ==
        (64u << 10));
  CHECK(nghttp2_session_get_stream_remote_window_size(s.session, id) == (64 << 10));
  c.open_window(id);
  pump(c, s);
  CHECK(nghttp2_session_get_stream_remote_window_size(s.session, id) == (1 << 20));
  c.open_window(id);  // once open, it stays as it is
  pump(c, s);
  CHECK(nghttp2_session_get_stream_remote_window_size(s.session, id) == (1 << 20));
  CHECK(nghttp2_session_get_remote_window_size(s.session) == (64 << 20));
  CHECK(nghttp2_session_get_remote_settings(s.session, NGHTTP2_SETTINGS_ENABLE_PUSH) == 0);
  CHECK(s.requests[1].complete);
  CHECK_EQ_STR(s.header(1, ":method"), "GET");
  CHECK_EQ_STR(s.header(1, ":authority"), "example.com:8443");
  CHECK_EQ_STR(s.header(1, ":scheme"), "https");
  CHECK_EQ_STR(s.header(1, ":path"), "/a?b=1");
  CHECK_EQ_STR(s.header(1, "x-custom"), "Value");
  CHECK_EQ_STR(s.header(1, "te"), "trailers");
  for (const char* gone : {"host", "connection", "keep-alive", "transfer-encoding", "upgrade",
                           "proxy-connection", "Host", "X-Custom"}) {
    CHECK_EQ_STR(s.header(1, gone), "<none>");
  }
  s.respond(1, 200, "hello", {{"content-type", "text/plain"}, {"x-multi", "1"}, {"x-multi", "2"}});
  pump(c, s);
  std::map<int32_t, StreamLog> logs;
  collect(c, logs);
  CHECK(logs[1].status == 200);
  CHECK_EQ_STR(logs[1].body, "hello");
  CHECK(logs[1].frame_ends.empty());  // one DATA frame, which ends the stream: no cut
  CHECK(logs[1].ended);
  CHECK(!logs[1].reset);
  CHECK(logs[1].headers.size() == 3);
  if (logs[1].headers.size() == 3) {
    CHECK_EQ_STR(std::string(logs[1].headers.name(0)), "content-type");
    CHECK_EQ_STR(std::string(logs[1].headers.value(0)), "text/plain");
    CHECK_EQ_STR(std::string(logs[1].headers.name(2)), "x-multi");
    CHECK_EQ_STR(std::string(logs[1].headers.value(2)), "2");
  }
  c.release(1);
  CHECK(c.open_streams() == 0);
  CHECK(c.can_start_stream());
  // No Host header: :authority from the request's authority.
  int32_t id2 = c.submit(get("/"), err);
  CHECK(id2 == 3);
  pump(c, s);
  CHECK_EQ_STR(s.header(3, ":authority"), "example.org");
  // A body of three DATA frames (16 KiB each at most): each frame's end but the last.
  s.respond(3, 200, std::string(40000, 'x'));
  pump(c, s);
  collect(c, logs);
  CHECK(logs[3].body.size() == 40000 && logs[3].ended);
  CHECK((logs[3].frame_ends == std::vector<size_t>{16384, 32768}));
}

void test_header_validation() {
  Http2HeaderBlock out;
  Error err;
  CHECK(!build_http2_headers(get("/", {{"TE", "gzip"}}), out, err));
  CHECK(err.kind == ErrorKind::kLocalProtocolError);
  CHECK(err.message.find("TE") != std::string::npos);
  err.clear();
  CHECK(!build_http2_headers(get("/", {{"bad name", "x"}}), out, err));
  CHECK(err.kind == ErrorKind::kLocalProtocolError);
  err.clear();
  CHECK(!build_http2_headers(get("/", {{"x-a", "line\nbreak"}}), out, err));
  err.clear();
  CHECK(!build_http2_headers(get("/", {{"x-a", " leading"}}), out, err));
  err.clear();
  CHECK(!build_http2_headers(get("/", {{"x-a", std::string("nul\0x", 5)}}), out, err));
  err.clear();
  // A user header named like a pseudo-header never overrides the request's own.
  for (const char* name : {":path", ":authority", ":method", ":scheme", ":status", ":x"}) {
    CHECK(!build_http2_headers(get("/public", {{name, "/admin"}}), out, err));
    CHECK(err.kind == ErrorKind::kLocalProtocolError);
    CHECK(err.message.find(name) != std::string::npos);
    err.clear();
  }
  Http2Request no_method = get("/");
  no_method.method = {};
  CHECK(!build_http2_headers(no_method, out, err));
  err.clear();
  CHECK(build_http2_headers(get("/", {{"Accept", "*/*"}, {"host", "h"}}), out, err));
  CHECK(out.size() == 5);
  if (out.size() == 5) {
    CHECK_EQ_STR(std::string(out.value(1)), "h");
    CHECK_EQ_STR(std::string(out.name(4)), "accept");
  }
  // Built again into the same block: the first request's views are gone.
  CHECK(build_http2_headers(get("/x", {{"X-Long-Header-Name", "v"}, {"HOST", "a:1"}}), out, err));
  CHECK(out.size() == 5);
  if (out.size() == 5) {
    CHECK_EQ_STR(std::string(out.value(1)), "a:1");
    CHECK_EQ_STR(std::string(out.value(3)), "/x");
    CHECK_EQ_STR(std::string(out.name(4)), "x-long-header-name");
  }
  // A failed submit opens no stream and leaves the session usable.
  Http2Session c;
  CHECK(c.init(err));
  CHECK(c.submit(get("/", {{"TE", "deflate"}}), err) == -1);
  CHECK(c.open_streams() == 0);
  err.clear();
  CHECK(c.submit(get("/"), err) == 1);
}

void test_multiplex() {
  Http2Session c;
  Error err;
  CHECK(c.init(err));
  Server s;
  int32_t ids[3];
  for (int i = 0; i < 3; ++i) ids[i] = c.submit(get("/" + std::to_string(i)), err);
  CHECK(ids[0] == 1 && ids[1] == 3 && ids[2] == 5);
  pump(c, s);
  CHECK(c.open_streams() == 3);
  // Answered out of order, bodies larger than one DATA frame.
  s.respond(5, 200, std::string(40000, 'c'));
  s.respond(1, 404, std::string(20000, 'a'));
  s.respond(3, 201, "b");
  pump(c, s);
  std::map<int32_t, StreamLog> logs;
  collect(c, logs);
  CHECK(logs[1].status == 404 && logs[1].body == std::string(20000, 'a') && logs[1].ended);
  CHECK(logs[3].status == 201 && logs[3].body == "b" && logs[3].ended);
  CHECK(logs[5].status == 200 && logs[5].body == std::string(40000, 'c') && logs[5].ended);
  CHECK_EQ_STR(s.header(1, ":path"), "/0");
  CHECK_EQ_STR(s.header(5, ":path"), "/2");
  CHECK(c.open_streams() == 0);
}

void test_goaway() {
  Http2Session c;
  Error err;
  CHECK(c.init(err));
  Server s;
  for (int i = 0; i < 3; ++i) c.submit(get("/"), err);
  pump(c, s);
  // The server processed stream 1 only.
  nghttp2_submit_goaway(s.session, NGHTTP2_FLAG_NONE, 1, NGHTTP2_NO_ERROR, nullptr, 0);
  s.respond(1, 200, "done");
  pump(c, s);
  std::map<int32_t, StreamLog> logs;
  std::vector<Http2Event> other;
  collect(c, logs, &other);
  CHECK(c.goaway_received());
  CHECK(c.goaway_last_stream_id() == 1);
  bool saw_goaway = false;
  for (auto& ev : other) saw_goaway |= ev.kind == Http2EventKind::kGoaway && ev.stream_id == 1;
  CHECK(saw_goaway);
  CHECK(logs[1].ended && logs[1].body == "done" && !logs[1].reset);
  for (int32_t id : {3, 5}) {
    CHECK(logs[id].reset);
    CHECK(logs[id].retryable);
    CHECK(logs[id].error.kind == ErrorKind::kRemoteProtocolError);
    CHECK(logs[id].error.message.find("GOAWAY") != std::string::npos);
    CHECK(logs[id].error.message.find("NO_ERROR") != std::string::npos);
  }
  CHECK(!c.can_start_stream());
  CHECK(c.submit(get("/"), err) == -1);
  CHECK(err.kind == ErrorKind::kRemoteProtocolError);
}

void test_refused_and_reset() {
  Http2Session c;
  Error err;
  CHECK(c.init(err));
  Server s;
  for (int i = 0; i < 3; ++i) c.submit(get("/"), err);
  pump(c, s);
  nghttp2_submit_rst_stream(s.session, NGHTTP2_FLAG_NONE, 1, NGHTTP2_REFUSED_STREAM);
  nghttp2_submit_rst_stream(s.session, NGHTTP2_FLAG_NONE, 3, NGHTTP2_INTERNAL_ERROR);
  s.respond(5, 200, "ok");
  pump(c, s);
  std::map<int32_t, StreamLog> logs;
  collect(c, logs);
  CHECK(logs[1].reset && logs[1].retryable && logs[1].code == NGHTTP2_REFUSED_STREAM);
  CHECK(logs[1].error.message.find("REFUSED_STREAM") != std::string::npos);
  CHECK(logs[3].reset && !logs[3].retryable);
  CHECK(logs[3].error.kind == ErrorKind::kRemoteProtocolError);
  CHECK(logs[3].error.message.find("INTERNAL_ERROR") != std::string::npos);
  CHECK(logs[5].ended && logs[5].body == "ok");
  CHECK(c.can_start_stream());
  // A reset after the head arrived is not retryable, even REFUSED_STREAM.
  int32_t id = c.submit(get("/"), err);
  pump(c, s);
  s.responses[id].body = std::string(100, 'x');
  nghttp2_nv st = {(uint8_t*)":status", (uint8_t*)"200", 7, 3, NGHTTP2_NV_FLAG_NONE};
  nghttp2_submit_headers(s.session, NGHTTP2_FLAG_NONE, id, nullptr, &st, 1, nullptr);
  pump(c, s);
  nghttp2_submit_rst_stream(s.session, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
  pump(c, s);
  collect(c, logs);
  CHECK(logs[id].status == 200 && logs[id].reset && !logs[id].retryable);
}

void test_cancel_one_stream() {
  Http2Session c;
  Error err;
  CHECK(c.init(err));
  Server s;
  int32_t a = c.submit(get("/a"), err);
  int32_t b = c.submit(get("/b"), err);
  pump(c, s);
  s.respond(a, 200, std::string(50000, 'a'));
  s.respond(b, 200, std::string(50000, 'b'));
  c.cancel(a);
  pump(c, s);
  std::map<int32_t, StreamLog> logs;
  collect(c, logs);
  CHECK(s.requests[a].closed && s.requests[a].close_code == NGHTTP2_CANCEL);
  CHECK(!logs[a].ended);
  CHECK(logs[b].ended && logs[b].body == std::string(50000, 'b'));
  CHECK(s.requests[b].close_code == NGHTTP2_NO_ERROR);
  CHECK(!c.goaway_received() && c.can_start_stream());
  int32_t d = c.submit(get("/d"), err);
  pump(c, s);
  s.respond(d, 200, "d");
  pump(c, s);
  collect(c, logs);
  CHECK(logs[d].ended && logs[d].body == "d");
}

void test_windows_and_consume() {
  Http2Config cfg;
  cfg.stream_window = 16384;
  cfg.connection_window = 1 << 20;
  Http2Session c(cfg);
  Error err;
  CHECK(c.init(err));
  Server s;
  int32_t slow = c.submit(get("/slow"), err);
  int32_t fast = c.submit(get("/fast"), err);
  pump(c, s);
  const std::string big(200000, 'z');
  s.respond(slow, 200, big);
  s.respond(fast, 200, big);
  pump(c, s);
  std::map<int32_t, StreamLog> logs;
  // Nothing consumed: each stream gets exactly its window, then waits.
  collect(c, logs, nullptr, false);
  CHECK(logs[slow].body.size() == 16384);
  CHECK(logs[fast].body.size() == 16384);
  pump(c, s);
  collect(c, logs, nullptr, false);
  CHECK(logs[slow].body.size() == 16384);
  // The fast reader consumes: its stream completes while the slow one stays paused.
  for (int i = 0; i < 100 && !logs[fast].ended; ++i) {
    c.consume(fast, 1 << 20);
    pump(c, s);
    std::map<int32_t, StreamLog> more;
    collect(c, more, nullptr, false);
    logs[fast].body += more[fast].body;
    logs[fast].ended = more[fast].ended;
    logs[slow].body += more[slow].body;
  }
  CHECK(logs[fast].ended);
  CHECK(logs[fast].body == big);
  CHECK(logs[slow].body.size() == 16384);
  // Consuming part of the slow stream's bytes lets only that much more come.
  c.consume(slow, 16384);
  pump(c, s);
  std::map<int32_t, StreamLog> more;
  collect(c, more, nullptr, false);
  CHECK(more[slow].body.size() == 16384);
  CHECK(!more[slow].ended);
}

void test_request_bodies() {
  Http2Session c;
  Error err;
  CHECK(c.init(err));
  // A server with a tiny stream window: the upload must wait for WINDOW_UPDATEs.
  Server s({{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1000}});
  pump(c, s);
  std::string fixed(30000, 'f');
  Http2Request post = get("/upload");
  post.method = "POST";
  post.body = Http2Request::Body::kFixed;
  post.fixed = reinterpret_cast<const uint8_t*>(fixed.data());
  post.fixed_len = fixed.size();
  int32_t a = c.submit(post, err);
  Http2Request stream_post = get("/stream");
  stream_post.method = "PUT";
  stream_post.body = Http2Request::Body::kStreamed;
  int32_t b = c.submit(stream_post, err);
  std::map<int32_t, StreamLog> logs;
  collect(c, logs);
  CHECK(logs[b].body_wanted == 1);  // asked for the first chunk at once
  pump(c, s);
  collect(c, logs);
  CHECK(logs[b].body_wanted == 1);  // nothing pushed yet: not asked twice
  std::string expect;
  for (int i = 0; i < 5; ++i) {
    std::string chunk(3000 + i, static_cast<char>('0' + i));
    expect += chunk;
    CHECK(c.push_body(b, reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size(), err));
    pump(c, s);
    collect(c, logs);
    CHECK(logs[b].body_wanted == 2 + i);  // drained: asks for the next one
  }
  CHECK(!s.requests[b].complete);
  CHECK(c.end_body(b, err));
  pump(c, s);
  CHECK(s.requests[a].complete && s.requests[a].body == fixed);
  CHECK(s.requests[b].complete && s.requests[b].body == expect);
  CHECK_EQ_STR(s.header(b, ":method"), "PUT");
  s.respond(a, 200, "");
  s.respond(b, 204, "");
  pump(c, s);
  collect(c, logs);
  CHECK(logs[a].ended && logs[a].status == 200);
  CHECK(logs[b].ended && logs[b].status == 204);
  // An empty fixed body: END_STREAM on the HEADERS frame.
  Http2Request empty = get("/empty");
  empty.method = "POST";
  empty.body = Http2Request::Body::kFixed;
  int32_t e = c.submit(empty, err);
  pump(c, s);
  CHECK(s.requests[e].complete && s.requests[e].body.empty());
}

void test_max_concurrent_settings() {
  Http2Session c;
  Error err;
  CHECK(c.init(err));
  Server s({{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 2}});
  pump(c, s);
  std::map<int32_t, StreamLog> logs;
  std::vector<Http2Event> other;
  collect(c, logs, &other);
  CHECK(c.max_concurrent_streams() == 2);
  CHECK(other.size() == 1 && other[0].kind == Http2EventKind::kSettings);
  CHECK(c.can_start_stream());
  c.submit(get("/1"), err);
  c.submit(get("/2"), err);
  CHECK(!c.can_start_stream());
  pump(c, s);
  nghttp2_settings_entry more = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 5};
  nghttp2_submit_settings(s.session, NGHTTP2_FLAG_NONE, &more, 1);
  pump(c, s);
  other.clear();
  collect(c, logs, &other);
  CHECK(other.size() == 1 && other[0].kind == Http2EventKind::kSettings);
  CHECK(c.max_concurrent_streams() == 5);
  CHECK(c.can_start_stream());
  nghttp2_settings_entry fewer = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1};
  nghttp2_submit_settings(s.session, NGHTTP2_FLAG_NONE, &fewer, 1);
  pump(c, s);
  CHECK(c.max_concurrent_streams() == 1);
  CHECK(!c.can_start_stream());
  // Streams finishing open room again.
  s.respond(1, 200, "");
  s.respond(3, 200, "");
  pump(c, s);
  CHECK(c.open_streams() == 0);
  CHECK(c.can_start_stream());
}

void test_connection_lost_and_errors() {
  Http2Session c;
  Error err;
  CHECK(c.init(err));
  Server s;
  int32_t sent = c.submit(get("/sent"), err);
  pump(c, s);
  int32_t queued = c.submit(get("/queued"), err);  // not flushed yet
  c.connection_lost(ErrorKind::kReadError, "Server disconnected");
  std::map<int32_t, StreamLog> logs;
  collect(c, logs);
  CHECK(logs[sent].reset && !logs[sent].retryable);
  CHECK(logs[sent].error.kind == ErrorKind::kReadError);
  CHECK(logs[queued].reset && logs[queued].retryable);
  CHECK(!c.can_start_stream());
  CHECK(c.finished());

  // A DATA frame on stream 0 is a connection error: the client sends
  // GOAWAY(PROTOCOL_ERROR) and every stream fails, naming the code.
  Http2Session d;
  CHECK(d.init(err));
  Server s2;
  int32_t id = d.submit(get("/"), err);
  pump(d, s2);
  const uint8_t bad[] = {0, 0, 1, 0, 0, 0, 0, 0, 0, 'x'};
  err.clear();
  d.feed(bad, sizeof bad, err);
  std::string out;
  d.flush(out, err);
  logs.clear();
  collect(d, logs);
  CHECK(logs[id].reset);
  CHECK(logs[id].error.kind == ErrorKind::kRemoteProtocolError);
  CHECK(logs[id].error.message.find("PROTOCOL_ERROR") != std::string::npos);
  CHECK(!d.can_start_stream());
}

void test_informational_then_final() {
  Http2Session c;
  Error err;
  CHECK(c.init(err));
  Server s;
  int32_t id = c.submit(get("/"), err);
  pump(c, s);
  nghttp2_nv early[] = {{(uint8_t*)":status", (uint8_t*)"103", 7, 3, NGHTTP2_NV_FLAG_NONE},
                        {(uint8_t*)"link", (uint8_t*)"</a.css>", 4, 8, NGHTTP2_NV_FLAG_NONE}};
  nghttp2_submit_headers(s.session, NGHTTP2_FLAG_NONE, id, nullptr, early, 2, nullptr);
  s.respond(id, 200, "final", {{"x-final", "1"}});
  pump(c, s);
  std::map<int32_t, StreamLog> logs;
  collect(c, logs);
  CHECK(logs[id].status == 200 && logs[id].interim == 1);
  CHECK(logs[id].headers.size() == 1);
  if (logs[id].headers.size() == 1) CHECK_EQ_STR(std::string(logs[id].headers.name(0)), "x-final");
  CHECK(logs[id].ended && logs[id].body == "final");
}

// Empty DATA frames cut nothing: no kDataEnd for them (a flood of them queued one
// event each, 20 MiB per read), and the body's frames are cut as before.
void test_empty_data_frames() {
  Http2Session c;
  Server s;
  Error err;
  CHECK(c.init(err));
  const int32_t id = c.submit(get("/"), err);
  nghttp2_nv head[] = {{(uint8_t*)":status", (uint8_t*)"200", 7, 3, NGHTTP2_NV_FLAG_NONE}};
  pump(c, s);  // the request, then the head alone (no END_STREAM)
  nghttp2_submit_headers(s.session, NGHTTP2_FLAG_NONE, id, nullptr, head, 1, nullptr);
  pump(c, s);
  auto frame = [id](uint8_t flags, const std::string& payload) {
    std::string f = {0,
                     0,
                     static_cast<char>(payload.size()),
                     0 /* DATA */,
                     static_cast<char>(flags),
                     0,
                     0,
                     0,
                     static_cast<char>(id)};
    return f + payload;
  };
  std::string raw;
  for (int i = 0; i < 1000; i++) raw += frame(0, "");
  raw += frame(0, "ab") + frame(0, "") + frame(NGHTTP2_FLAG_END_STREAM, "c");
  CHECK(c.feed(reinterpret_cast<const uint8_t*>(raw.data()), raw.size(), err));
  std::map<int32_t, StreamLog> logs;
  std::vector<Http2Event> other;
  collect(c, logs, &other);
  CHECK(logs[id].status == 200 && logs[id].ended && logs[id].body == "abc");
  CHECK((logs[id].frame_ends == std::vector<size_t>{2}));
}

void test_error_names() {
  CHECK_EQ_STR(http2_error_name(0), "NO_ERROR");
  CHECK_EQ_STR(http2_error_name(7), "REFUSED_STREAM");
  CHECK_EQ_STR(http2_error_name(8), "CANCEL");
  CHECK_EQ_STR(http2_error_name(0xabc), "0xabc");
}

// The server's bytes for a small exchange (a head, a body split over frames, a
// reset, a GOAWAY), recorded once, and before them its SETTINGS, in `settings`:
// the client sends one stream until it has the server's SETTINGS.
std::string recorded_server_bytes(std::vector<std::string>* client_out, std::string* settings) {
  Http2Session c;
  Error err;
  c.init(err);
  Server s;
  std::string hello;
  c.flush(hello, err);  // the preface and our SETTINGS
  s.input(hello);
  *settings = s.output();
  c.feed((const uint8_t*)settings->data(), settings->size(), err);
  c.submit(get("/a"), err);
  c.submit(get("/b"), err);
  std::string out;
  c.flush(out, err);
  client_out->push_back(hello + out);
  nghttp2_session_mem_recv(s.session, (const uint8_t*)out.data(), out.size());
  s.respond(1, 200, std::string(40000, 'x'), {{"x-a", "1"}});
  nghttp2_submit_rst_stream(s.session, NGHTTP2_FLAG_NONE, 3, NGHTTP2_CANCEL);
  nghttp2_submit_goaway(s.session, NGHTTP2_FLAG_NONE, 1, NGHTTP2_NO_ERROR, nullptr, 0);
  std::string back;
  for (;;) {
    const uint8_t* p = nullptr;
    ssize_t n = nghttp2_session_mem_send(s.session, &p);
    if (n <= 0) break;
    back.append((const char*)p, n);
  }
  return back;
}

// The same bytes split anywhere give the same events; mutated bytes never
// crash the session (AddressSanitizer watches) and a failure is an error value.
void test_split_and_mutated_input() {
  std::vector<std::string> client_out;
  std::string settings;
  const std::string bytes = recorded_server_bytes(&client_out, &settings);
  auto run = [&](const std::string& input, size_t step, std::map<int32_t, StreamLog>& logs) {
    Http2Session c;
    Error err;
    c.init(err);
    std::string hello;
    c.flush(hello, err);
    c.feed((const uint8_t*)settings.data(), settings.size(), err);
    c.submit(get("/a"), err);
    c.submit(get("/b"), err);
    std::string out;
    c.flush(out, err);
    bool ok = true;
    for (size_t i = 0; i < input.size() && ok; i += step) {
      Error e;
      ok = c.feed((const uint8_t*)input.data() + i, std::min(step, input.size() - i), e);
      if (!ok) CHECK(e.kind != ErrorKind::kNone && !e.message.empty());
      std::string more;
      c.flush(more, e);
      collect(c, logs);
    }
    c.connection_lost(ErrorKind::kReadError, "gone");
    collect(c, logs);
    return ok;
  };
  std::map<int32_t, StreamLog> whole;
  CHECK(run(bytes, bytes.size(), whole));
  CHECK(whole[1].ended && whole[1].body == std::string(40000, 'x'));
  CHECK(whole[3].reset && whole[3].code == NGHTTP2_CANCEL);
  for (size_t step : {1, 7, 4096}) {
    std::map<int32_t, StreamLog> split;
    CHECK(run(bytes, step, split));
    CHECK(split[1].ended && split[1].body == whole[1].body);
    CHECK(split[3].reset);
  }
  std::mt19937 rng(20261201);
  int failures = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string m = bytes;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) m[rng() % m.size()] = static_cast<char>(rng() & 0xff);
    if (rng() % 4 == 0) m.resize(rng() % m.size());
    std::map<int32_t, StreamLog> logs;
    if (!run(m, 1 + rng() % 600, logs)) ++failures;
    for (auto& [id, l] : logs) {
      // Every stream ends exactly one way.
      if (id != 0) CHECK(!(l.ended && l.reset));
    }
  }
  CHECK(failures > 0);  // the mutations did reach the error paths
}

void test_header_block_limit() {
  Http2Session c;
  Error err;
  CHECK(c.init(err));
  Server s;
  pump(c, s);
  CHECK(nghttp2_session_get_remote_settings(s.session, NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE) ==
        (64u << 10));
  int32_t big = c.submit(get("/big"), err);
  int32_t ok = c.submit(get("/ok"), err);
  pump(c, s);
  HeaderList many;
  // 100 equal fields: HPACK indexes them, so the block is small on the wire.
  for (int i = 0; i < 100; ++i) many.emplace_back("x-same", std::string(1000, 'v'));
  s.respond(big, 200, "never", many);
  s.respond(ok, 200, "fine", {{"x-small", std::string(1000, 'v')}});
  pump(c, s);
  std::map<int32_t, StreamLog> logs;
  collect(c, logs);
  CHECK(logs[big].reset && !logs[big].retryable && logs[big].status == 0);
  CHECK(logs[big].error.kind == ErrorKind::kRemoteProtocolError);
  CHECK(logs[big].error.message.find("header block larger than 65536") != std::string::npos);
  CHECK(s.requests[big].closed);
  CHECK(logs[ok].ended && logs[ok].body == "fine");
  CHECK(c.can_start_stream());
}

// The header block the server received for stream `id`, as "name: value" lines.
std::string received(Server& s, int32_t id) {
  std::string out;
  for (const auto& [n, v] : s.requests[id].headers) out += n + ": " + v + "\n";
  return out;
}

// The session sends a request equal to the last one with the block it built
// for it (checked and lower-cased once); a request that differs in any input
// (method, scheme, authority, path, a header's name or value, one header more
// or fewer, a Host) gets its own, and an invalid one is refused even right
// after an equal-but-valid one. Blocks of streams whose HEADERS has not gone
// yet are never rebuilt under them.
void test_header_block_reuse() {
  Http2Session c;
  Error err;
  CHECK(c.init(err));
  Server s;
  pump(c, s);
  const HeaderList base = {{"Accept", "*/*"}, {"X-V", "abcd"}};
  struct Case {
    Http2Request req;
    std::string want;  // what the server receives; "" when refused
  };
  auto with = [&](HeaderList h) { return h; };
  std::vector<Case> cases = {
      {request("GET", "https", "example.org", "/p", base),
       ":method: GET\n:authority: example.org\n:scheme: https\n:path: /p\naccept: */*\n"
       "x-v: abcd\n"},
      {request("GET", "https", "example.org", "/p", base),  // equal: the same block
       ":method: GET\n:authority: example.org\n:scheme: https\n:path: /p\naccept: */*\n"
       "x-v: abcd\n"},
      {request("GET", "https", "example.org", "/p", with({{"X-V", "abcd"}, {"Accept", "*/*"}})),
       ":method: GET\n:authority: example.org\n:scheme: https\n:path: /p\nx-v: abcd\n"
       "accept: */*\n"},  // the same headers in another order
      {request("GET", "https", "example.org", "/p", base),
       ":method: GET\n:authority: example.org\n:scheme: https\n:path: /p\naccept: */*\n"
       "x-v: abcd\n"},
      {request("GET", "https", "example.org", "/p", with({{"Accept", "*/*"}, {"X-V", "ABCD"}})),
       ":method: GET\n:authority: example.org\n:scheme: https\n:path: /p\naccept: */*\n"
       "x-v: ABCD\n"},  // a value differing only in case
      {request("GET", "https", "example.org", "/p", with({{"Accept", "*/*"}, {"X-V", "abce"}})),
       ":method: GET\n:authority: example.org\n:scheme: https\n:path: /p\naccept: */*\n"
       "x-v: abce\n"},
      {request("GET", "https", "example.org", "/p", with({{"Accept", "*/*"}, {"X-W", "abce"}})),
       ":method: GET\n:authority: example.org\n:scheme: https\n:path: /p\naccept: */*\n"
       "x-w: abce\n"},
      {request("GET", "https", "example.org", "/q", base),
       ":method: GET\n:authority: example.org\n:scheme: https\n:path: /q\naccept: */*\n"
       "x-v: abcd\n"},
      {request("DELETE", "https", "example.org", "/q", base),
       ":method: DELETE\n:authority: example.org\n:scheme: https\n:path: /q\naccept: */*\n"
       "x-v: abcd\n"},
      {request("DELETE", "http", "example.org", "/q", base),
       ":method: DELETE\n:authority: example.org\n:scheme: http\n:path: /q\naccept: */*\n"
       "x-v: abcd\n"},
      {request("DELETE", "http", "example.net", "/q", base),
       ":method: DELETE\n:authority: example.net\n:scheme: http\n:path: /q\naccept: */*\n"
       "x-v: abcd\n"},
      {request("GET", "http", "example.net", "/q",
               with({{"Accept", "*/*"}, {"X-V", "abcd"}, {"Host", "h.example"}})),
       ":method: GET\n:authority: h.example\n:scheme: http\n:path: /q\naccept: */*\n"
       "x-v: abcd\n"},
      {request("GET", "http", "example.net", "/q",
               with({{"Accept", "*/*"}, {"X-V", "abcd"}, {"Host", "i.example"}})),
       ":method: GET\n:authority: i.example\n:scheme: http\n:path: /q\naccept: */*\n"
       "x-v: abcd\n"},
      {request("GET", "http", "example.net", "/q", with({{"Accept", "*/*"}})),
       ":method: GET\n:authority: example.net\n:scheme: http\n:path: /q\naccept: */*\n"},
      {request("GET", "http", "example.net", "/q", with({{"Accept", "*/*"}, {"TE", "trailers"}})),
       ":method: GET\n:authority: example.net\n:scheme: http\n:path: /q\naccept: */*\n"
       "te: trailers\n"},
      {request("GET", "http", "example.net", "/q", with({{"Accept", "*/*"}, {"TE", "gzip"}})), ""},
      {request("GET", "http", "example.net", "/q", with({{"Accept", "*/*"}, {"TE", "trailers"}})),
       ":method: GET\n:authority: example.net\n:scheme: http\n:path: /q\naccept: */*\n"
       "te: trailers\n"},
      {request("GET", "http", "example.net", "/q", with({{"Accept", "*/\n*"}, {"TE", "trailers"}})),
       ""},
  };
  // One at a time (each block written before the next request), then all
  // submitted before one flush.
  for (int batch = 0; batch < 2; ++batch) {
    std::vector<int32_t> ids;
    for (Case& k : cases) {
      Error e;
      int32_t id = c.submit(k.req, e);
      CHECK((id > 0) == !k.want.empty());
      if (k.want.empty()) CHECK(e.kind == ErrorKind::kLocalProtocolError);
      ids.push_back(id);
      if (batch == 0) pump(c, s);
    }
    pump(c, s);
    for (size_t i = 0; i < cases.size(); ++i) {
      if (ids[i] <= 0) continue;
      CHECK_EQ_STR(received(s, ids[i]), cases[i].want);
      s.respond(ids[i], 204, "");
    }
    pump(c, s);
    for (int32_t id : ids)
      if (id > 0) c.release(id);
  }
  // Released before its HEADERS went: the block outlives the stream (nghttp2
  // drops the frame), and the next request is sent whole.
  int32_t gone = c.submit(cases[0].req, err);
  c.release(gone);
  int32_t next = c.submit(cases[4].req, err);
  pump(c, s);
  CHECK_EQ_STR(received(s, next), cases[4].want);
  CHECK(c.can_start_stream());
}

// A stream released after the connection was lost sends no RST_STREAM, so
// nghttp2 still writes its queued HEADERS on the next flush (as h2_receive
// does after a failed feed): the header block must outlive the stream.
void test_released_head_outlives_stream() {
  Http2Session c;
  Error err;
  CHECK(c.init(err));
  Server s;
  pump(c, s);
  const std::string big(200, 'a');
  int32_t a = c.submit(get("/a", {{"X-A", big}}), err);
  int32_t b = c.submit(get("/b", {{"X-B", "b"}}), err);  // a new block: a's is held
  CHECK(a > 0 && b > 0);
  c.connection_lost(ErrorKind::kReadError, "lost");
  c.release(a);
  c.take_events();  // a's block is now held by nobody but nghttp2's queue
  std::string out;
  c.flush(out, err);
  // Its HEADERS went out from the kept block (were it freed, ASan would
  // report a use after free here).
  s.input(out);
  CHECK(received(s, a).find("x-a: " + big + "\n") != std::string::npos);
}

// HEADERS frames in `wire`, the client's output (after its connection preface).
int headers_frames(const std::string& wire) {
  static const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  size_t at = wire.compare(0, kPreface.size(), kPreface) == 0 ? kPreface.size() : 0;
  int n = 0;
  while (at + 9 <= wire.size()) {
    const auto* h = reinterpret_cast<const uint8_t*>(wire.data() + at);
    size_t len = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
    if (h[3] == NGHTTP2_HEADERS) n++;
    at += 9 + len;
  }
  return n;
}

// Before the server's first SETTINGS one stream goes out (as httpcore sends), the
// others' HEADERS held by nghttp2 while the pool may hand the connection more; the
// server's SETTINGS lets them go.
void test_one_stream_before_settings() {
  Http2Session c;
  Error err;
  CHECK(c.init(err));
  std::vector<int32_t> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(c.submit(get("/" + std::to_string(i)), err));
  CHECK(ids.back() > 0);
  CHECK(c.can_start_stream());
  std::string out;
  CHECK(c.flush(out, err));
  CHECK(headers_frames(out) == 1);
  Server s;
  s.input(out);
  pump(c, s);
  for (int32_t id : ids) CHECK(received(s, id).find(":path: /") != std::string::npos);
}

// The peer's MAX_CONCURRENT_STREAMS as the pool sees it: 100 before any
// SETTINGS (nghttp2 sends one of them meanwhile: test_one_stream_before_settings), unlimited once a
// SETTINGS without it arrives, each later value as it arrives (with streams open), kept across
// GOAWAY.
void test_max_concurrent_as_settings_arrive() {
  Http2Session c;
  Error err;
  CHECK(c.init(err));
  CHECK(c.max_concurrent_streams() == 100);
  std::vector<int32_t> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(c.submit(get("/" + std::to_string(i)), err));
  CHECK(ids.back() > 0);
  CHECK(!c.can_start_stream());  // 100 open, no SETTINGS yet
  Server s;                      // a SETTINGS with no entries
  pump(c, s);
  std::map<int32_t, StreamLog> logs;
  std::vector<Http2Event> other;
  collect(c, logs, &other);
  CHECK(c.max_concurrent_streams() == 0xffffffffu);
  CHECK(other.size() == 1 && other[0].kind == Http2EventKind::kSettings);
  CHECK(c.can_start_stream());
  // A later SETTINGS with the limit, while the streams are open.
  nghttp2_settings_entry three = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 3};
  nghttp2_submit_settings(s.session, NGHTTP2_FLAG_NONE, &three, 1);
  pump(c, s);
  CHECK(c.max_concurrent_streams() == 3);
  CHECK(!c.can_start_stream());
  // A SETTINGS without it changes nothing and says nothing.
  nghttp2_settings_entry window = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20};
  nghttp2_submit_settings(s.session, NGHTTP2_FLAG_NONE, &window, 1);
  pump(c, s);
  other.clear();
  collect(c, logs, &other);
  CHECK(other.size() == 1 && other[0].kind == Http2EventKind::kSettings);  // the one for 3
  CHECK(c.max_concurrent_streams() == 3);
  for (size_t i = 0; i < 98; ++i) s.respond(ids[i], 204, "");
  pump(c, s);
  collect(c, logs);
  for (size_t i = 0; i < 98; ++i) c.release(ids[i]);
  CHECK(c.open_streams() == 2);
  CHECK(c.can_start_stream());
  int32_t third = c.submit(get("/third"), err);
  CHECK(third > 0 && !c.can_start_stream());
  // Raised again in the same read as a response.
  nghttp2_settings_entry four = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 4};
  nghttp2_submit_settings(s.session, NGHTTP2_FLAG_NONE, &four, 1);
  s.respond(ids[98], 204, "");
  pump(c, s);
  CHECK(c.max_concurrent_streams() == 4);
  CHECK(c.can_start_stream());
  // GOAWAY: no new stream, whatever the limit says.
  nghttp2_submit_goaway(s.session, NGHTTP2_FLAG_NONE, third, NGHTTP2_NO_ERROR, nullptr, 0);
  pump(c, s);
  CHECK(c.goaway_received());
  CHECK(c.max_concurrent_streams() == 4);
  CHECK(!c.can_start_stream());
}

}  // namespace

int main() {
  test_request_response();
  test_header_validation();
  test_header_block_reuse();
  test_released_head_outlives_stream();
  test_max_concurrent_as_settings_arrive();
  test_one_stream_before_settings();
  test_multiplex();
  test_goaway();
  test_refused_and_reset();
  test_cancel_one_stream();
  test_windows_and_consume();
  test_request_bodies();
  test_max_concurrent_settings();
  test_connection_lost_and_errors();
  test_informational_then_final();
  test_empty_data_frames();
  test_error_names();
  test_header_block_limit();
  test_split_and_mutated_input();
  return check_report("test_http2_session");
}
