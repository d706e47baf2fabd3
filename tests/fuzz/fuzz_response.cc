// libFuzzer target: the HTTP/1.1 response parser (src/http1.cc over llhttp).
//
// Input: one mode byte, then the bytes a server sends. The mode picks the
// request the response answers (HEAD, CONNECT, an Upgrade request). Each input
// is parsed whole, then split in two at every position (every position up to
// 2 KiB, then at 64 spread positions) and fed in three pieces too: each split
// must give the same result as the whole feed (status, consumed bytes, head,
// body, keep-alive, error). Then the connection "closes" (finish) and that
// result must agree as well. ASan/UBSan catch memory errors on the way.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "http1.h"

namespace {

using httprs::Error;
using httprs::HeaderBlock;
using httprs::ResponseHead;
using httprs::ResponseParser;

struct Result : ResponseParser::Sink {
  int heads = 0;
  ResponseHead head;
  std::string body;
  ResponseParser::Status status = ResponseParser::Status::kOk;
  size_t consumed = 0;  // bytes of the input used up to the end of the message
  Error err;
  ResponseParser::Status finish_status = ResponseParser::Status::kOk;
  Error finish_err;
  bool keep_alive = false;

  void on_head(ResponseHead&& h) override {
    heads++;
    head = std::move(h);
  }
  void on_body(const char* data, size_t len) override { body.append(data, len); }
};

struct Mode {
  bool head_request, connect_request, upgrade_request;
};

// Feed `data` in the pieces that end at each of `cuts` (ascending, < len).
void parse(const Mode& mode, const char* data, size_t len, const std::vector<size_t>& cuts,
           Result& r) {
  ResponseParser parser;
  parser.reset(&r, mode.head_request, mode.connect_request, mode.upgrade_request);
  size_t pos = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(len);
  for (size_t end : ends) {
    if (end < pos) continue;
    size_t used = 0;
    r.status = parser.feed(data + pos, end - pos, &used, r.err);
    r.consumed = pos + used;
    if (r.status != ResponseParser::Status::kOk) break;
    pos = end;
  }
  if (r.status == ResponseParser::Status::kOk) {
    r.finish_status = parser.finish(r.finish_err);
  }
  r.keep_alive = parser.keep_alive();
}

[[noreturn]] void mismatch(const char* what, const std::vector<size_t>& cuts) {
  std::fprintf(stderr, "split feeding differs from whole feeding in %s; cuts:", what);
  for (size_t c : cuts) std::fprintf(stderr, " %zu", c);
  std::fprintf(stderr, "\n");
  std::abort();
}

// The same fields, names and values, in the same order.
bool same_fields(const HeaderBlock& a, const HeaderBlock& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++)
    if (a.name(i) != b.name(i) || a.value(i) != b.value(i)) return false;
  return true;
}

void compare(const Result& whole, const Result& split, const std::vector<size_t>& cuts) {
  if (whole.status != split.status) mismatch("status", cuts);
  if (whole.err.kind != split.err.kind || whole.err.message != split.err.message)
    mismatch("error", cuts);
  if (whole.status != ResponseParser::Status::kError && whole.consumed != split.consumed)
    mismatch("consumed", cuts);
  if (whole.heads != split.heads) mismatch("number of heads", cuts);
  const ResponseHead& a = whole.head;
  const ResponseHead& b = split.head;
  if (a.status != b.status || a.http_major != b.http_major || a.http_minor != b.http_minor ||
      a.reason != b.reason || !same_fields(a.headers, b.headers) ||
      a.has_content_length != b.has_content_length || a.content_length != b.content_length)
    mismatch("head", cuts);
  if (whole.status != ResponseParser::Status::kError && whole.body != split.body)
    mismatch("body", cuts);
  if (whole.finish_status != split.finish_status ||
      whole.finish_err.kind != split.finish_err.kind ||
      whole.finish_err.message != split.finish_err.message)
    mismatch("finish", cuts);
  if (whole.status != ResponseParser::Status::kError && whole.keep_alive != split.keep_alive)
    mismatch("keep-alive", cuts);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* raw, size_t size) {
  if (size < 1) return 0;
  const uint8_t m = raw[0];
  Mode mode{(m & 1) != 0, (m & 2) != 0, (m & 4) != 0};
  const char* data = reinterpret_cast<const char*>(raw + 1);
  const size_t len = size - 1;

  Result whole;
  parse(mode, data, len, {}, whole);
  // The parser's own invariants.
  if (whole.status == ResponseParser::Status::kError && !whole.err) std::abort();
  if (whole.status != ResponseParser::Status::kError && whole.err) std::abort();
  if (whole.consumed > len) std::abort();
  if (whole.head.has_content_length && whole.status == ResponseParser::Status::kComplete &&
      !mode.head_request && whole.head.status >= 200 && whole.head.status != 204 &&
      whole.head.status != 304 && !(mode.connect_request && whole.head.status < 300) &&
      whole.body.size() != whole.head.content_length)
    std::abort();  // a complete Content-Length body has exactly that many bytes

  std::vector<size_t> positions;
  if (len <= 2048) {
    for (size_t i = 1; i < len; i++) positions.push_back(i);
  } else {
    for (size_t i = 1; i <= 64; i++) positions.push_back(len * i / 65);
  }
  for (size_t cut : positions) {
    Result split;
    parse(mode, data, len, {cut}, split);
    compare(whole, split, {cut});
  }
  // Three pieces, cut where the input says (bytes 1-2 pick the cuts).
  if (len >= 3) {
    size_t a = 1 + raw[1] % (len - 1);
    size_t b = 1 + raw[2] % (len - 1);
    if (a > b) std::swap(a, b);
    Result three;
    parse(mode, data, len, {a, b}, three);
    compare(whole, three, {a, b});
  }
  // Byte at a time (as h11's tests do), for small inputs.
  if (len <= 512) {
    std::vector<size_t> every;
    for (size_t i = 1; i < len; i++) every.push_back(i);
    Result bytes;
    parse(mode, data, len, every, bytes);
    compare(whole, bytes, {0});
  }
  return 0;
}
