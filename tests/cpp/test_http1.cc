// Unit tests for src/http1.cc, built and run by tests/test_cpp_units.py:
// request framing (serialize_request), header validation, 101 handling and
// the parser's strictness. Run with --strict=1 against an llhttp built in
// strict mode and with --strict=0 against a lenient build (LLHTTP_STRICT_MODE
// off, as a distribution's libllhttp 8 may be): llhttp_is_strict() must tell
// them apart, since the Python module refuses to load on a lenient one.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "http1.h"

using httprs::BodyFraming;
using httprs::BodyKind;
using httprs::Error;
using httprs::ErrorKind;
using httprs::HeaderList;
using httprs::RequestPlan;
using httprs::ResponseHead;
using httprs::ResponseParser;

namespace {

struct Serialized {
  bool ok = false;
  std::string head;
  RequestPlan plan;
  Error err;
};

Serialized serialize(const char* method, const HeaderList& headers, BodyKind kind, size_t len) {
  Serialized s;
  s.ok = httprs::serialize_request(s.head, method, "/", headers, kind, len, &s.plan, s.err);
  return s;
}

bool has_line(const std::string& head, const std::string& line) {
  return head.find("\r\n" + line + "\r\n") != std::string::npos;
}

size_t count(const std::string& head, const std::string& what) {
  size_t n = 0;
  for (size_t pos = head.find(what); pos != std::string::npos; pos = head.find(what, pos + 1)) n++;
  return n;
}

void test_framing() {
  // The smuggling reproduction: a proxy copied TE: chunked and set the
  // Content-Length of the de-chunked body. Chunked wins, Content-Length goes.
  std::string smuggle = "0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n";
  HeaderList h = {{"Host", "example.org"},
                  {"Transfer-Encoding", "chunked"},
                  {"Content-Length", std::to_string(smuggle.size())}};
  Serialized s = serialize("POST", h, BodyKind::kFixed, smuggle.size());
  CHECK(s.ok);
  CHECK(s.plan.framing == BodyFraming::kChunked);
  CHECK(has_line(s.head, "Transfer-Encoding: chunked"));
  CHECK(count(s.head, "Content-Length") == 0);
  CHECK(!s.plan.idempotent);

  // Case-insensitive "Chunked" is normalised, as h11 does.
  s = serialize("POST", {{"Host", "a"}, {"transfer-encoding", "Chunked"}}, BodyKind::kFixed, 3);
  CHECK(s.ok && s.plan.framing == BodyFraming::kChunked);
  CHECK(has_line(s.head, "transfer-encoding: chunked"));

  // Streamed with chunked.
  s = serialize("POST", {{"Host", "a"}, {"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}},
                BodyKind::kStreamed, 0);
  CHECK(s.ok && s.plan.framing == BodyFraming::kChunked);
  CHECK(count(s.head, "Content-Length") == 0);

  // Content-Length: exact size required for a fixed body.
  s = serialize("PUT", {{"Host", "a"}, {"Content-Length", "3"}}, BodyKind::kFixed, 3);
  CHECK(s.ok && s.plan.framing == BodyFraming::kContentLength && s.plan.content_length == 3);
  CHECK(s.plan.idempotent);
  s = serialize("PUT", {{"Host", "a"}, {"Content-Length", "3"}}, BodyKind::kFixed, 4);
  CHECK(!s.ok && s.err.kind == ErrorKind::kLocalProtocolError);
  CHECK_EQ_STR(s.err.message, "Too much data for declared Content-Length");
  s = serialize("PUT", {{"Host", "a"}, {"Content-Length", "3"}}, BodyKind::kFixed, 2);
  CHECK_EQ_STR(s.err.message, "Too little data for declared Content-Length");

  // No framing header: a body would be read as the next request.
  s = serialize("POST", {{"Host", "a"}}, BodyKind::kFixed, 3);
  CHECK(!s.ok && s.err.kind == ErrorKind::kLocalProtocolError);
  CHECK_EQ_STR(s.err.message, "Too much data for declared Content-Length");
  s = serialize("POST", {{"Host", "a"}}, BodyKind::kFixed, 0);
  CHECK(s.ok && s.plan.framing == BodyFraming::kContentLength && s.plan.content_length == 0);
  s = serialize("POST", {{"Host", "a"}}, BodyKind::kStreamed, 0);
  CHECK(s.ok && s.plan.framing == BodyFraming::kContentLength && s.plan.content_length == 0);

  // Duplicate Content-Length values collapse into one header; conflicts fail.
  s = serialize("POST", {{"Host", "a"}, {"Content-Length", "3"}, {"Content-Length", "3, 3"}},
                BodyKind::kFixed, 3);
  CHECK(s.ok);
  CHECK(count(s.head, "Content-Length") == 1 && has_line(s.head, "Content-Length: 3"));
  s = serialize("POST", {{"Host", "a"}, {"Content-Length", "3"}, {"Content-Length", "4"}},
                BodyKind::kFixed, 3);
  CHECK_EQ_STR(s.err.message, "conflicting Content-Length headers");
  s = serialize("POST", {{"Host", "a"}, {"Content-Length", "3, 4"}}, BodyKind::kFixed, 3);
  CHECK_EQ_STR(s.err.message, "conflicting Content-Length headers");
  for (const char* bad :
       {"+3", "-1", "0x3", "3.0", "", "123456789012345678901", "99999999999999999999"}) {
    s = serialize("POST", {{"Host", "a"}, {"Content-Length", bad}}, BodyKind::kFixed, 3);
    CHECK(!s.ok);
    CHECK_EQ_STR(s.err.message, "bad Content-Length");
  }

  // Transfer-Encoding other than a single "chunked".
  s = serialize("POST", {{"Host", "a"}, {"Transfer-Encoding", "gzip, chunked"}}, BodyKind::kFixed,
                3);
  CHECK_EQ_STR(s.err.message, "Only Transfer-Encoding: chunked is supported");
  s = serialize("POST",
                {{"Host", "a"}, {"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}},
                BodyKind::kFixed, 3);
  CHECK_EQ_STR(s.err.message, "multiple Transfer-Encoding headers");

  // Idempotency and upgrade.
  for (const char* m : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}) {
    s = serialize(m, {{"Host", "a"}}, BodyKind::kFixed, 0);
    CHECK(s.ok && s.plan.idempotent);
  }
  for (const char* m : {"POST", "PATCH", "CONNECT", "get"}) {
    s = serialize(m, {{"Host", "a"}}, BodyKind::kFixed, 0);
    CHECK(s.ok && !s.plan.idempotent);
  }
  s = serialize("GET", {{"Host", "a"}, {"Upgrade", "websocket"}}, BodyKind::kFixed, 0);
  CHECK(s.ok && s.plan.upgrade);
  s = serialize("GET", {{"Host", "a"}}, BodyKind::kFixed, 0);
  CHECK(s.ok && !s.plan.upgrade);
}

void test_header_values() {
  // What h11 rejects in a value: NUL, CR, LF, VT, FF, surrounding whitespace.
  for (const char* bad : {"a\vb", "a\fb", "a\rb", "a\nb", " a", "a\t", "\v"}) {
    Serialized s = serialize("GET", {{"Host", "a"}, {"X", bad}}, BodyKind::kFixed, 0);
    CHECK(!s.ok && s.err.kind == ErrorKind::kLocalProtocolError);
    CHECK(s.err.message.rfind("Illegal header value b", 0) == 0);
  }
  Serialized s =
      serialize("GET", {{"Host", "a"}, {"X", std::string("a\0b", 3)}}, BodyKind::kFixed, 0);
  CHECK(!s.ok);
  s = serialize("GET", {{"Host", "a"}, {"X", "a\vb"}}, BodyKind::kFixed, 0);
  CHECK_EQ_STR(s.err.message, "Illegal header value b'a\\x0bb'");
  // ... and what it lets through: other controls, DEL, obs-text, inner SP/HT.
  for (const char* good : {"a\x01"
                           "b",
                           "a\x7f"
                           "b",
                           "a\xff"
                           "b",
                           "a \t b", ""}) {
    s = serialize("GET", {{"Host", "a"}, {"X", good}}, BodyKind::kFixed, 0);
    CHECK(s.ok);
  }
  for (const char* bad : {"a b", "a:b", "", "a\vb"}) {
    s = serialize("GET", {{"Host", "a"}, {bad, "v"}}, BodyKind::kFixed, 0);
    CHECK(!s.ok && s.err.message.rfind("Illegal header name b", 0) == 0);
  }
  // Targets: visible ASCII only.
  std::string head;
  RequestPlan plan;
  Error err;
  CHECK(!httprs::serialize_request(head, "GET", "/\xe9", {{"Host", "a"}}, BodyKind::kFixed, 0,
                                   &plan, err));
  CHECK_EQ_STR(err.message, "Illegal target characters");
}

class Collect : public ResponseParser::Sink {
 public:
  void on_head(ResponseHead&& head) override { heads.push_back(std::move(head)); }
  void on_body(const char* data, size_t len) override { body.append(data, len); }
  void on_chunk_end() override {
    if (chunk_ends.empty() || chunk_ends.back() != body.size()) chunk_ends.push_back(body.size());
  }
  std::vector<ResponseHead> heads;
  std::string body;
  std::vector<size_t> chunk_ends;  // body sizes at each chunk's end (repeats dropped)
};

ResponseParser::Status feed_all(ResponseParser& p, const std::string& data, size_t* used,
                                Error& err) {
  ResponseParser::Status st = p.feed(data.data(), data.size(), used, err);
  if (st == ResponseParser::Status::kOk) st = p.finish(err);
  return st;
}

void test_switching_protocols() {
  const std::string switched =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  const std::string bare = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
  for (const std::string& head : {switched, bare}) {
    // Unsolicited: a protocol error, before anything reaches the sink.
    Collect sink;
    ResponseParser p;
    p.reset(&sink, false, false, false);
    size_t used = 0;
    Error err;
    std::string data = head + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    CHECK(p.feed(data.data(), data.size(), &used, err) == ResponseParser::Status::kError);
    CHECK(err.kind == ErrorKind::kRemoteProtocolError);
    CHECK_EQ_STR(err.message, "Received server _SWITCH_UPGRADE event without a pending proposal");
    CHECK(sink.heads.empty());

    // Requested: the head is delivered, the rest is the new protocol's.
    Collect sink2;
    ResponseParser p2;
    p2.reset(&sink2, false, false, true);
    std::string data2 = head + "\x81\x05hello";
    err.clear();
    CHECK(p2.feed(data2.data(), data2.size(), &used, err) == ResponseParser::Status::kUpgrade);
    CHECK(used == head.size());
    CHECK(sink2.heads.size() == 1 && sink2.heads[0].status == 101);
    CHECK(sink2.body.empty());
    CHECK(!p2.keep_alive());
  }
  // 100 Continue stays an interim response either way.
  Collect sink;
  ResponseParser p;
  p.reset(&sink, false, false, false);
  size_t used = 0;
  Error err;
  std::string data = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  CHECK(feed_all(p, data, &used, err) == ResponseParser::Status::kComplete);
  CHECK(sink.heads.size() == 1 && sink.heads[0].status == 200 && sink.body == "ok");
}

// Feeds `data` `step` bytes at a time (all of it at once for step 0), as a socket may
// deliver it, until a status other than kOk.
ResponseParser::Status feed_steps(ResponseParser& p, const std::string& data, size_t step,
                                  Error& err) {
  ResponseParser::Status st = ResponseParser::Status::kOk;
  size_t n = step == 0 ? data.size() : step;
  for (size_t at = 0; at < data.size() && st == ResponseParser::Status::kOk; at += n) {
    size_t used = 0;
    st = p.feed(data.data() + at, std::min(n, data.size() - at), &used, err);
  }
  return st;
}

// Empty lines where a status line belongs, before the first response or after a 1xx:
// refused as h11 refuses them (llhttp skips them), whole or a byte at a time; 1xx
// responses followed by a status line at once still parse.
// Every chunk's end reaches the sink after its data, however the bytes are split
// (extensions and trailers included), and a body of known length has none.
void test_chunk_ends() {
  const std::string chunked =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2;ext=1\r\nde\r\n4\r\nfghi\r\n0\r\nTrailer: t\r\n\r\n";
  for (size_t step : {chunked.size(), size_t{1}, size_t{7}}) {
    Collect sink;
    ResponseParser p;
    p.reset(&sink, false, false, false);
    Error err;
    ResponseParser::Status st = ResponseParser::Status::kOk;
    for (size_t at = 0; at < chunked.size() && st == ResponseParser::Status::kOk;) {
      size_t used = 0;
      size_t n = std::min(step, chunked.size() - at);
      st = p.feed(chunked.data() + at, n, &used, err);
      at += n;
    }
    CHECK(st == ResponseParser::Status::kComplete);
    CHECK_EQ_STR(sink.body, "abcdefghi");
    CHECK((sink.chunk_ends == std::vector<size_t>{3, 5, 9}));
  }
  Collect sink;
  ResponseParser p;
  p.reset(&sink, false, false, false);
  size_t used = 0;
  Error err;
  std::string known = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  CHECK(feed_all(p, known, &used, err) == ResponseParser::Status::kComplete);
  CHECK(sink.chunk_ends.empty());
}

void test_empty_line_before_status() {
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  const std::string bad[] = {"\r\n" + ok, "\n" + ok, "HTTP/1.1 100 Continue\r\n\r\n\r\n" + ok,
                             "HTTP/1.1 103 Early\r\nLink: a\r\n\r\n\n" + ok};
  const std::string good[] = {
      ok, "HTTP/1.1 100 Continue\r\n\r\n" + ok,
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: a\r\n\r\n" + ok};
  for (size_t step : {size_t{0}, size_t{1}}) {
    auto parse = [step](const std::string& data, Collect& sink, Error& err) {
      ResponseParser p;
      p.reset(&sink, false, false, false);
      return feed_steps(p, data, step, err);
    };
    for (const std::string& data : bad) {
      Collect sink;
      Error err;
      CHECK(parse(data, sink, err) == ResponseParser::Status::kError);
      CHECK(err.kind == ErrorKind::kRemoteProtocolError);
      CHECK(sink.heads.empty());
    }
    for (const std::string& data : good) {
      Collect sink;
      Error err;
      CHECK(parse(data, sink, err) == ResponseParser::Status::kComplete);
      CHECK(sink.heads.size() == 1 && sink.heads[0].status == 200 && sink.body == "ok");
    }
  }
}

void test_strictness(bool expect_strict) {
  CHECK(httprs::llhttp_is_strict() == expect_strict);
  if (!expect_strict) return;
  const char* lenient_only[] = {
      "HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\nX: y\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2\r\nok\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\x01"
      "b\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n2\r\nok\r\n0\r\n\r\n",
  };
  for (const char* r : lenient_only) {
    Collect sink;
    ResponseParser p;
    p.reset(&sink, false, false);
    size_t used = 0;
    Error err;
    ResponseParser::Status st = feed_all(p, r, &used, err);
    if (st != ResponseParser::Status::kError) std::fprintf(stderr, "accepted: %s\n", r);
    CHECK(st == ResponseParser::Status::kError);
    CHECK(err.kind == ErrorKind::kRemoteProtocolError);
  }
}

// What a response gave: the final head's status and the value of its field X-A
// (or "-" without one), the body and the bytes used (0 on an error); the error's
// message.
struct Outcome {
  ResponseParser::Status status = ResponseParser::Status::kOk;
  int code = 0;
  std::string x_a = "-";
  std::string body;
  size_t used = 0;
  std::string error;

  bool operator==(const Outcome& o) const {
    return status == o.status && code == o.code && x_a == o.x_a && body == o.body &&
           used == o.used && error == o.error;
  }
};

// Parse `data` fed in pieces of `piece` bytes (0: whole), then the connection closes.
Outcome parse_in_pieces(const std::string& data, size_t piece, bool connect) {
  Collect sink;
  ResponseParser p;
  p.reset(&sink, false, connect);
  Outcome o;
  Error err;
  size_t pos = 0;
  if (piece == 0) piece = data.size();
  while (pos < data.size() && o.status == ResponseParser::Status::kOk) {
    size_t n = std::min(piece, data.size() - pos);
    size_t used = 0;
    o.status = p.feed(data.data() + pos, n, &used, err);
    o.used = pos + used;
    pos += n;
  }
  if (o.status == ResponseParser::Status::kOk) o.status = p.finish(err);
  if (o.status == ResponseParser::Status::kError) o.used = 0;
  o.error = err.message;
  o.body = sink.body;
  if (!sink.heads.empty()) {
    const ResponseHead& h = sink.heads.back();
    o.code = h.status;
    for (size_t i = 0; i < h.headers.size(); i++)
      if (h.headers.name(i) == "X-A") o.x_a = std::string(h.headers.value(i));
  }
  return o;
}

// Obsolete line folding in responses (RFC 9112 5.2): each fold (CRLF and its
// run of SP/HTAB) inside a field value is one SP, as h11 reads it, whatever
// llhttp's version (9 rejects folds, 8 keeps their whitespace); nowhere else.
// Each response gives the same outcome whole, one byte at a time and in pieces
// of 2 and 3 bytes. The expected values are h11 0.16's.
void test_obs_fold() {
  using S = ResponseParser::Status;
  const std::string ok = "Content-Length: 2\r\n\r\nok";
  const std::string chunked = "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n";
  struct Case {
    std::string data;
    bool connect;
    S status;
    const char* x_a;
    const char* body;
  };
  const std::vector<Case> cases = {
      {"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n" + ok, false, S::kComplete, "a b", "ok"},
      {"HTTP/1.1 200 OK\r\nX-A: a\r\n \t  b\r\n" + ok, false, S::kComplete, "a b", "ok"},
      {"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\tc\r\n" + ok, false, S::kComplete, "a b c", "ok"},
      // The first line's trailing whitespace stays, the fold is one SP.
      {"HTTP/1.1 200 OK\r\nX-A: a  \r\n b\r\n" + ok, false, S::kComplete, "a   b", "ok"},
      // Whitespace-only continuation lines.
      {"HTTP/1.1 200 OK\r\nX-A: a\r\n  \r\n" + ok, false, S::kComplete, "a", "ok"},
      {"HTTP/1.1 200 OK\r\nX-A: a\r\n  \r\n b\r\n" + ok, false, S::kComplete, "a  b", "ok"},
      {"HTTP/1.1 200 OK\r\nX-A:\r\n b\r\n" + ok, false, S::kComplete, "b", "ok"},
      {"HTTP/1.1 200 OK\r\nX-A:\r\n \r\n" + ok, false, S::kComplete, "", "ok"},
      // Fields llhttp reads itself.
      {"HTTP/1.1 200 OK\r\nContent-Length:\r\n 2\r\n\r\nok", false, S::kComplete, "-", "ok"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", false,
       S::kComplete, "-", "ok"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n 3\r\n\r\nok", false, S::kError, "-", ""},
      // A continuation line with nothing to continue (h11: "continuation line at start
      // of headers").
      {"HTTP/1.1 200 OK\r\n b\r\n" + ok, false, S::kError, "-", ""},
      {"HTTP/1.1 103 Early\r\n b\r\n\r\nHTTP/1.1 200 OK\r\n" + ok, false, S::kError, "-", ""},
      {"HTTP/1.1 200 OK\r\n" + chunked + "0\r\n b\r\n\r\n", false, S::kError, "-", "ok"},
      // Trailers, an interim head, a CONNECT reply (the tunnel's bytes untouched).
      {"HTTP/1.1 200 OK\r\n" + chunked + "0\r\nX-T: a\r\n b\r\n\r\n", false, S::kComplete, "-",
       "ok"},
      {"HTTP/1.1 103 Early\r\nX-A: a\r\n b\r\n\r\nHTTP/1.1 200 OK\r\n" + ok, false, S::kComplete,
       "-", "ok"},
      {"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n\r\n x", true, S::kUpgrade, "a b", ""},
      // Bodies are never touched, nor the end of a head.
      {"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nx\r\n yz", false, S::kComplete, "-",
       "x\r\n yz"},
      {"HTTP/1.1 200 OK\r\nX-A: a\r\n\r\n b", false, S::kComplete, "a", " b"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nx\r\n yz\r\n0\r\n\r\n", false,
       S::kComplete, "-", "x\r\n yz"},
  };
  for (const Case& c : cases) {
    Outcome whole = parse_in_pieces(c.data, 0, c.connect);
    if (whole.status != c.status || whole.x_a != c.x_a || whole.body != c.body)
      std::fprintf(stderr, "obs-fold case %s: status %d, x-a '%s', error '%s'\n", c.data.c_str(),
                   static_cast<int>(whole.status), whole.x_a.c_str(), whole.error.c_str());
    CHECK(whole.status == c.status);
    CHECK_EQ_STR(whole.x_a, c.x_a);
    CHECK_EQ_STR(whole.body, c.body);
    if (c.connect) CHECK(whole.used == c.data.size() - 4);
    for (size_t piece : {1, 2, 3}) CHECK(parse_in_pieces(c.data, piece, c.connect) == whole);
  }
  // The dropped whitespace counts towards the head's bound.
  std::string endless = "HTTP/1.1 200 OK\r\nX-A: a\r\n" + std::string(200 * 1024, ' ');
  Outcome o = parse_in_pieces(endless, 0, false);
  CHECK(o.status == S::kError);
  CHECK_EQ_STR(o.error, "Receive buffer too long");
  CHECK(parse_in_pieces(endless, 4096, false) == o);
}

}  // namespace

// Every byte as a one-byte header name and as a method: accepted exactly
// when it is an RFC 9110 tchar; and header names compared without regard to
// ASCII case only (the framing headers in any case, a name differing by a
// non-ASCII byte never taken for one).
void test_token_bytes() {
  const std::string tchars =
      "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (int c = 0; c < 256; c++) {
    std::string one(1, static_cast<char>(c));
    bool want = tchars.find(static_cast<char>(c)) != std::string::npos && c != 0;
    std::string head;
    RequestPlan plan;
    Error err;
    bool as_name =
        httprs::serialize_request(head, "GET", "/", {{one, "v"}}, BodyKind::kFixed, 0, &plan, err);
    bool as_method = httprs::plan_request(one, "/", {}, BodyKind::kFixed, 0, &plan, err);
    if (as_name != want || as_method != want) std::fprintf(stderr, "byte 0x%02x\n", c);
    CHECK(as_name == want);
    CHECK(as_method == want);
  }
  Serialized s = serialize("POST", {{"cOnTeNt-LeNgTh", "3"}}, BodyKind::kFixed, 3);
  CHECK(s.ok && s.plan.content_length == 3);
  s = serialize("POST", {{"TRANSFER-ENCODING", "chunked"}}, BodyKind::kStreamed, 0);
  CHECK(s.ok && s.plan.framing == BodyFraming::kChunked);
  // "Content-Length" with a Latin-1 capital A-grave where an 'n' was: not the header.
  s = serialize("POST", {{"Content-Le\xc0gth", "3"}}, BodyKind::kFixed, 0);
  CHECK(!s.ok);  // not a token: refused as a name, never read as a length
}

// plan_request checks and plans exactly as serialize_request does, writing
// nothing; write_planned_head then writes the same bytes (an HTTP/2 request
// pays for an HTTP/1.1 head only if it goes out as HTTP/1.1).
void test_plan_without_head() {
  struct Case {
    const char* method;
    const char* target;
    HeaderList headers;
    BodyKind kind;
    size_t len;
  };
  const std::vector<Case> cases = {
      {"GET", "/", {{"Host", "example.org"}, {"Accept", "*/*"}}, BodyKind::kFixed, 0},
      {"POST", "/up?x=1", {{"Host", "h"}, {"Content-Length", "007"}}, BodyKind::kFixed, 7},
      {"POST", "/", {{"Content-Length", "5"}, {"Content-Length", "5"}}, BodyKind::kFixed, 5},
      {"PUT",
       "/",
       {{"Transfer-Encoding", "chunked"}, {"Content-Length", "3"}},
       BodyKind::kFixed,
       3},
      {"PUT", "/", {{"transfer-encoding", "Chunked"}}, BodyKind::kStreamed, 0},
      {"GET", "/", {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}}, BodyKind::kFixed, 0},
      // Refused by both, with the same message.
      {"GET", "/", {{"Bad Name", "v"}}, BodyKind::kFixed, 0},
      {"GET", "/", {{"X", " padded"}}, BodyKind::kFixed, 0},
      {"GET", "/", {{"Host", "a"}, {"Host", "b"}}, BodyKind::kFixed, 0},
      {"G ET", "/", {}, BodyKind::kFixed, 0},
      {"GET", "/a b", {}, BodyKind::kFixed, 0},
      {"POST", "/", {{"Content-Length", "4"}}, BodyKind::kFixed, 5},
      {"POST", "/", {{"Transfer-Encoding", "gzip"}}, BodyKind::kFixed, 0},
  };
  for (const Case& c : cases) {
    std::string head;
    RequestPlan full;
    Error full_err;
    bool full_ok = httprs::serialize_request(head, c.method, c.target, c.headers, c.kind, c.len,
                                             &full, full_err);
    RequestPlan planned;
    Error plan_err;
    bool plan_ok =
        httprs::plan_request(c.method, c.target, c.headers, c.kind, c.len, &planned, plan_err);
    CHECK(plan_ok == full_ok);
    CHECK(plan_err.kind == full_err.kind);
    CHECK_EQ_STR(plan_err.message, full_err.message);
    if (!full_ok) continue;
    CHECK(planned.framing == full.framing && planned.content_length == full.content_length);
    CHECK(planned.idempotent == full.idempotent && planned.upgrade == full.upgrade);
    std::string later = "kept:";  // appended to, as the session's output is
    httprs::write_planned_head(later, c.method, c.target, c.headers);
    CHECK_EQ_STR(later, "kept:" + head);
  }
}

int main(int argc, char** argv) {
  int strict = -1;
  for (int i = 1; i < argc; i++)
    if (std::strncmp(argv[i], "--strict=", 9) == 0) strict = argv[i][9] == '1';
  if (strict < 0) {
    std::fprintf(stderr, "usage: test_http1 --strict=0|1\n");
    return 2;
  }
  test_strictness(strict == 1);
  if (strict == 1) {
    test_framing();
    test_header_values();
    test_switching_protocols();
    test_empty_line_before_status();
    test_chunk_ends();
    test_obs_fold();
    test_plan_without_head();
    test_token_bytes();
  }
  return check_report("test_http1");
}
