// libFuzzer target: a proxy's answer to CONNECT (the response parser in
// tunnel mode, src/http1.cc: ResponseParser::reset(..., connect_request=true)).
//
// Byte 0 says where to split the input; the rest is what the proxy sends. Checked:
// - a tunnel is only ever a 2xx final head, and it ends exactly at the
//   head's empty line: every byte after it belongs to the tunnel (the TLS
//   handshake with the origin), none is eaten or read as HTTP;
// - anything else is an error, a complete non-2xx response, or still waiting;
// - split feeding gives the same outcome as feeding it whole.
// (The SOCKS5 reply is handled inside Connection today; its target comes with the
// byte-stream layers, where it is a separate function.)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "http1.h"

namespace {

using httprs::Error;
using httprs::ResponseHead;
using httprs::ResponseParser;

struct Outcome : ResponseParser::Sink {
  int heads = 0;
  int status = 0;
  std::string body;
  ResponseParser::Status result = ResponseParser::Status::kOk;
  size_t consumed = 0;
  Error err;
  void on_head(ResponseHead&& h) override {
    heads++;
    status = h.status;
  }
  void on_body(const char* d, size_t n) override { body.append(d, n); }
};

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "%s\n", what);
  std::abort();
}

void run(const char* data, size_t len, size_t cut, Outcome& o) {
  ResponseParser p;
  p.reset(&o, false, true);
  size_t used = 0;
  o.result = p.feed(data, cut, &used, o.err);
  o.consumed = used;
  if (o.result == ResponseParser::Status::kOk && cut < len) {
    o.result = p.feed(data + cut, len - cut, &used, o.err);
    o.consumed = cut + used;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* raw, size_t size) {
  if (size < 1) return 0;
  const char* data = reinterpret_cast<const char*>(raw + 1);
  size_t len = size - 1;
  Outcome whole;
  run(data, len, len, whole);
  // Connection opens the tunnel on kUpgrade or kComplete once the status is 2xx
  // (a non-2xx status is a ProxyError whatever the parser says).
  const bool ok_status = whole.status >= 200 && whole.status <= 299;
  if (whole.result == ResponseParser::Status::kUpgrade && !ok_status)
    fail("tunnel opened on a non-2xx answer");
  if (ok_status && whole.result != ResponseParser::Status::kUpgrade &&
      whole.result != ResponseParser::Status::kComplete)
    fail("a 2xx head did not end the answer");
  if (ok_status) {
    // The head ends with its empty line. llhttp 8 (as h11) accepts a bare LF at
    // the end of the status line and as the empty line itself, so the last bytes
    // are LF LF or LF CR LF, never anything else.
    const size_t c = whole.consumed;
    bool at_empty_line =
        c >= 2 && data[c - 1] == '\n' &&
        (data[c - 2] == '\n' || (c >= 3 && data[c - 2] == '\r' && data[c - 3] == '\n'));
    if (!at_empty_line) {
      std::fprintf(stderr, "status %d, result %d, consumed %zu of %zu\n", whole.status,
                   static_cast<int>(whole.result), whole.consumed, len);
      fail("tunnel does not start right after the head");
    }
    if (!whole.body.empty()) fail("tunnel bytes read as a body");
  }
  size_t cut = len ? raw[0] % (len + 1) : 0;
  Outcome split;
  run(data, len, cut, split);
  if (split.result != whole.result || split.status != whole.status ||
      split.err.message != whole.err.message)
    fail("split feeding differs");
  if (whole.result != ResponseParser::Status::kError &&
      (split.consumed != whole.consumed || split.body != whole.body))
    fail("split feeding consumed differently");
  return 0;
}
