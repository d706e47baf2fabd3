// libFuzzer target: the request-head serialiser (serialize_request in src/http1.cc).
//
// The input is cut into a method, a target, header names and values and a body
// kind. Properties checked on every input:
// - a CR, LF or NUL anywhere in the method, target or a header name or value is
//   rejected (LocalProtocolError), never written;
// - whatever is accepted, parsed by llhttp in strict request mode followed by the
//   body the plan announces, is exactly one request: every byte consumed, one
//   message complete, no parse error; the same request twice in a row (pipelined)
//   is exactly two. A request line llhttp does not know (a method outside its list,
//   a target it does not accept) is checked the same way with the method and target
//   replaced, since framing depends on the header fields only.
// llhttp's PRI (the HTTP/2 preface) is such a request line too, and so is a method
// llhttp knows from RTSP only (SETUP, PLAY, ...) with an HTTP version: it refuses
// the line (HPE_INVALID_CONSTANT). httpx sends any token method, these included,
// byte for byte as httprs does (tests/test_differential.py); a server built on
// llhttp answers 400, one request refused, never two.
// Known, deliberate difference: a header value may hold control bytes other than
// CR, LF, NUL, VT and FF (h11 and so httpx send them); strict llhttp refuses them
// (HPE_INVALID_HEADER_TOKEN). Such a request is one request or none, never two;
// the strict check then runs with those bytes replaced.
#include <fuzzer/FuzzedDataProvider.h>
#include <llhttp.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "http1.h"

namespace {

using httprs::BodyFraming;
using httprs::BodyKind;
using httprs::Error;
using httprs::HeaderList;
using httprs::RequestPlan;

constexpr size_t kMaxBody = 64 * 1024;

[[noreturn]] void fail(const char* what, const std::string& wire) {
  std::fprintf(stderr, "%s\n--- serialised request (%zu bytes) ---\n", what, wire.size());
  std::fwrite(wire.data(), 1, wire.size(), stderr);
  std::fprintf(stderr, "\n---\n");
  std::abort();
}

bool is_ctl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

bool has_ctl(const HeaderList& headers) {
  for (const auto& [k, v] : headers)
    for (unsigned char c : v)
      if (is_ctl(c)) return true;
  return false;
}

bool has_forbidden(const std::string& s) {
  return s.find_first_of(std::string("\r\n\0", 3)) != std::string::npos;
}

struct Count {
  int messages = 0;
  int heads = 0;
};

int on_complete(llhttp_t* p) {
  static_cast<Count*>(p->data)->messages++;
  return 0;
}
int on_headers(llhttp_t* p) {
  static_cast<Count*>(p->data)->heads++;
  return 0;
}

// Parse `wire` as requests. Returns the llhttp status; *count says how many
// messages completed.
llhttp_errno_t parse(const std::string& wire, Count* count, size_t* consumed) {
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_message_complete = on_complete;
  settings.on_headers_complete = on_headers;
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &settings);
  parser.lenient_flags = 0;
  parser.data = count;
  llhttp_errno_t rc = llhttp_execute(&parser, wire.data(), wire.size());
  const char* pos = llhttp_get_error_pos(&parser);
  *consumed =
      (rc == HPE_OK || pos == nullptr) ? wire.size() : static_cast<size_t>(pos - wire.data());
  return rc;
}

// The method starting `head` is one llhttp knows only from RTSP: followed by
// "HTTP/1.1" it fails the request line with HPE_INVALID_CONSTANT.
bool rtsp_only_method(const std::string& head) {
  static const char* const kHttp[] = {
#define HTTPRS_METHOD_NAME(num, name, string) #string,
      HTTP_METHOD_MAP(HTTPRS_METHOD_NAME)};
  static const char* const kRtsp[] = {RTSP_METHOD_MAP(HTTPRS_METHOD_NAME)};
#undef HTTPRS_METHOD_NAME
  std::string method = head.substr(0, head.find(' '));
  for (const char* m : kHttp)
    if (method == m) return false;
  for (const char* m : kRtsp)
    if (method == m) return true;
  return false;
}

// A request line llhttp refuses by itself (an unknown method or target, an RTSP
// method): checked again under "POST /fuzz" by the caller.
bool line_refused(llhttp_errno_t rc, const std::string& head, bool strict_line) {
  if (strict_line) return false;
  return rc == HPE_INVALID_METHOD || rc == HPE_INVALID_URL ||
         (rc == HPE_INVALID_CONSTANT && rtsp_only_method(head));
}

// The head plus the body its plan announces; false when the body would be too large.
bool with_body(const std::string& head, const RequestPlan& plan, const std::string& chunk,
               std::string* wire) {
  *wire = head;
  if (plan.framing == BodyFraming::kChunked) {
    if (!chunk.empty()) {
      httprs::append_chunk_size(*wire, chunk.size());
      wire->append(chunk).append("\r\n");
    }
    wire->append(httprs::kLastChunk);
    return true;
  }
  if (plan.content_length > kMaxBody) return false;
  wire->append(plan.content_length, 'x');
  return true;
}

// One serialised request, with its body: exactly one message; twice: two.
void check_framing(const std::string& head, const RequestPlan& plan, const std::string& chunk,
                   bool strict_line, bool ctl_in_values) {
  // llhttp reads a PRI request as the start of the HTTP/2 connection preface
  // and waits for "SM\r\n\r\n" after its head: never a complete request, so
  // never two. Like any request line llhttp treats apart, it is checked again
  // under "POST /fuzz".
  if (!strict_line && head.compare(0, 4, "PRI ") == 0) return;
  std::string wire;
  if (!with_body(head, plan, chunk, &wire)) {
    // Only the head: it must parse without error and leave the body pending,
    // with the same allowances as a whole request (a request line llhttp does
    // not know is checked again with it replaced; control bytes in values).
    Count c;
    size_t used = 0;
    llhttp_errno_t rc = parse(head, &c, &used);
    if (line_refused(rc, head, strict_line)) return;
    if (ctl_in_values && rc == HPE_INVALID_HEADER_TOKEN && c.messages == 0) return;
    if (rc == HPE_PAUSED_UPGRADE) {
      if (c.heads != 1) fail("upgrade request is not one head", head);
      return;
    }
    if (rc != HPE_OK || c.heads != 1 || c.messages != 0) fail("head of a large request", head);
    return;
  }
  Count one;
  size_t used = 0;
  llhttp_errno_t rc = parse(wire, &one, &used);
  if (line_refused(rc, head, strict_line)) return;
  if (ctl_in_values && rc == HPE_INVALID_HEADER_TOKEN && one.messages == 0) return;
  if (rc == HPE_PAUSED_UPGRADE) {
    // Upgrade / CONNECT: llhttp stops after the head; what follows is another
    // protocol. Still exactly one request head.
    if (one.heads != 1) fail("upgrade request is not one head", wire);
    return;
  }
  if (rc != HPE_OK) fail(llhttp_errno_name(rc), wire);
  if (one.messages != 1 || used != wire.size()) fail("not exactly one request", wire);
  Count two;
  rc = parse(wire + wire, &two, &used);
  if (rc != HPE_OK || two.messages != 2) fail("pipelined twice is not two requests", wire + wire);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::string method = in.ConsumeRandomLengthString(16);
  std::string target = in.ConsumeRandomLengthString(64);
  HeaderList headers;
  size_t n = in.ConsumeIntegralInRange<size_t>(0, 8);
  for (size_t i = 0; i < n; i++) {
    std::string name = in.ConsumeRandomLengthString(24);
    std::string value = in.ConsumeRandomLengthString(48);
    headers.emplace_back(std::move(name), std::move(value));
  }
  bool streamed = in.ConsumeBool();
  size_t fixed_len = in.ConsumeIntegralInRange<size_t>(0, 100);
  std::string chunk = in.ConsumeRemainingBytesAsString();

  bool forbidden = has_forbidden(method) || has_forbidden(target);
  for (const auto& [k, v] : headers) forbidden = forbidden || has_forbidden(k) || has_forbidden(v);

  std::string out;
  RequestPlan plan;
  Error err;
  bool ok = httprs::serialize_request(out, method, target, headers,
                                      streamed ? BodyKind::kStreamed : BodyKind::kFixed, fixed_len,
                                      &plan, err);
  if (!ok) {
    if (err.kind != httprs::ErrorKind::kLocalProtocolError || err.message.empty()) std::abort();
    return 0;
  }
  if (forbidden) fail("CR, LF or NUL accepted", out);
  if (!streamed && plan.framing == BodyFraming::kContentLength && plan.content_length != fixed_len)
    fail("fixed body length differs from the announced Content-Length", out);
  if (out.size() < 4 || out.compare(out.size() - 4, 4, "\r\n\r\n") != 0)
    fail("head does not end with an empty line", out);
  if (out.find("\r\n\r\n") != out.size() - 4) fail("empty line inside the head", out);
  check_framing(out, plan, chunk, false, has_ctl(headers));
  for (auto& [k, v] : headers)
    for (char& c : v)
      if (is_ctl(static_cast<unsigned char>(c))) c = '?';

  // The same header fields under a request line llhttp knows.
  std::string plain;
  RequestPlan plain_plan;
  Error plain_err;
  if (!httprs::serialize_request(plain, "POST", "/fuzz", headers,
                                 streamed ? BodyKind::kStreamed : BodyKind::kFixed, fixed_len,
                                 &plain_plan, plain_err))
    fail("headers accepted with one request line and refused with another", out);
  check_framing(plain, plain_plan, chunk, true, false);
  return 0;
}
