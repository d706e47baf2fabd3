// libFuzzer target: the proxy handshake layers (src/socks5.cc, src/connect_tunnel.cc)
// fed what a proxy sends, whole and one byte at a time.
//
// Byte 0 picks the layer: SOCKS5 without or with username/password, or HTTP
// CONNECT; the rest is the proxy's bytes. Checked on every input:
// - the layer's first message is the one RFC 1928 / RFC 9110 prescribe;
// - the handshake ends open, failed with a message, or still waiting; the
//   error is a ProxyError, or for CONNECT a RemoteProtocolError when the
//   answer is malformed (as httpx's h11 reports it); never any other kind;
// - fed one byte at a time the outcome and message are the same, except that
//   a SOCKS5 reply followed by extra bytes in the same read is refused whole
//   (the proxy may not speak first in the tunnel) while a byte-wise feed opens
//   at the reply's end; every byte fed after opening comes out of recv()
//   unchanged (the tunnel is transparent).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "connect_tunnel.h"
#include "socks5.h"

namespace {

using httprs::ConnectTunnel;
using httprs::Error;
using httprs::ErrorKind;
using httprs::Socks5Stream;
using httprs::StreamLayer;
using Status = StreamLayer::Status;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "%s\n", what);
  std::abort();
}

std::unique_ptr<StreamLayer> make(int mode) {
  if (mode == 0) return std::make_unique<Socks5Stream>("example.org", 443, "", "");
  if (mode == 1) return std::make_unique<Socks5Stream>("127.0.0.1", 80, "user", "pass");
  // The tunnel adds Host and Accept itself; the proxy's own headers come after them.
  return std::make_unique<ConnectTunnel>("example.org:443",
                                         httprs::HeaderList{{"Proxy-Authorization", "Basic dTpw"}});
}

struct Run {
  Status status = Status::kWantRead;
  Error err;
  std::string passed;  // what recv() gave after the layer opened
  size_t fed_after_open = 0;
  std::string after_open;  // the bytes fed once open
};

void drain(StreamLayer& l, Run& r) {
  char buf[512];
  for (;;) {
    size_t n = 0;
    Error e;
    Status st = l.recv(buf, sizeof buf, &n, e);
    if (st != Status::kOk || n == 0) break;
    r.passed.append(buf, n);
  }
}

void run(int mode, const std::string& input, bool bytewise, Run& r) {
  std::unique_ptr<StreamLayer> l = make(mode);
  r.status = l->connect(r.err);
  std::string first;
  l->append_output(first);
  if (mode == 0 && first != std::string("\x05\x01\x00", 3)) fail("SOCKS5 greeting");
  if (mode == 1 && first != std::string("\x05\x01\x02", 3)) fail("SOCKS5 greeting with auth");
  if (mode == 2 && first !=
                       "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n"
                       "Accept: */*\r\nProxy-Authorization: Basic dTpw\r\n\r\n")
    fail("CONNECT request head");
  size_t step = bytewise ? 1 : input.size();
  for (size_t pos = 0; pos < input.size(); pos += step) {
    size_t n = std::min(step, input.size() - pos);
    l->feed(input.data() + pos, n);
    if (r.status == Status::kOk) {
      r.after_open.append(input, pos, n);
      drain(*l, r);
      continue;
    }
    if (r.status != Status::kWantRead) break;
    r.status = l->connect(r.err);
    std::string out;
    l->append_output(out);  // the SOCKS5 CONNECT / auth request
    if (r.status == Status::kOk) drain(*l, r);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  int mode = data[0] % 3;
  std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  Run whole, bytes;
  run(mode, input, false, whole);
  run(mode, input, true, bytes);
  for (const Run* r : {&whole, &bytes}) {
    bool kind_ok = r->err.kind == ErrorKind::kProxyError ||
                   (mode == 2 && r->err.kind == ErrorKind::kRemoteProtocolError);
    if (r->status == Status::kError && (!kind_ok || r->err.message.empty()))
      fail("handshake error is not a ProxyError (or CONNECT's RemoteProtocolError) with a message");
    if (r->status == Status::kClosed) fail("handshake reported a clean close");
  }
  if (bytes.status == Status::kOk && bytes.passed != bytes.after_open)
    fail("the open tunnel changed the bytes passing through");
  bool early_data = mode < 2 && whole.status == Status::kError && bytes.status == Status::kOk &&
                    whole.err.message == "the SOCKS proxy sent bytes after its reply";
  if (!early_data) {
    if (whole.status != bytes.status) fail("byte-wise feeding ends differently");
    if (whole.err.message != bytes.err.message) fail("byte-wise feeding fails differently");
    if (whole.status == Status::kOk && whole.passed != bytes.passed)
      fail("byte-wise feeding passes other bytes");
  }
  return 0;
}
