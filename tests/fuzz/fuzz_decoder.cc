// libFuzzer target: the Content-Encoding decoder chain (src/decode.cc).
//
// Byte 0 picks the mode and byte 1 the codings (up to 6: one past the cap of
// DecoderChain::kMaxEncodings), byte 2 the piece size; the rest is the body.
// - Raw mode: the body is fed as is (random bytes into gzip / deflate / br / zstd).
//   Decoding in pieces with the bounded feed/drain (a small output cap) must give
//   the same bytes and the same verdict as the unbounded feed of the whole body,
//   and the bounded form never appends more than its cap per call. Output is
//   capped at 8 MiB so a compression bomb in the input cannot exhaust memory.
// - Round-trip mode: the body is compressed with the chosen codings in header
//   order (nested, as a server stacking Content-Encodings would) and decoded in
//   pieces; the result must be the body exactly, and finish() must succeed.
// More codings than the cap must be refused by create() with a DecodingError.
#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "decode.h"

namespace {

using httprs::DecoderChain;
using httprs::Error;

const char* const kCodings[] = {"gzip", "deflate", "br", "zstd", "identity", "x-unknown"};

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "%s\n", what);
  std::abort();
}

std::string zlib_compress(const std::string& in, int window_bits) {
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) fail("zlib");
  std::string out(deflateBound(&z, in.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) fail("zlib deflate");
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string encode(const std::string& coding, const std::string& in, bool raw_deflate) {
  if (coding == "gzip") return zlib_compress(in, 15 + 16);
  if (coding == "deflate") return zlib_compress(in, raw_deflate ? -15 : 15);
  if (coding == "br") {
    size_t n = BrotliEncoderMaxCompressedSize(in.size());
    if (n == 0) n = in.size() + 1024;
    std::string out(n, '\0');
    if (!BrotliEncoderCompress(5, 22, BROTLI_MODE_GENERIC, in.size(),
                               reinterpret_cast<const uint8_t*>(in.data()), &n,
                               reinterpret_cast<uint8_t*>(out.data())))
      fail("brotli");
    out.resize(n);
    return out;
  }
  if (coding == "zstd") {
    std::string out(ZSTD_compressBound(in.size()), '\0');
    size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
    if (ZSTD_isError(n)) fail("zstd");
    out.resize(n);
    return out;
  }
  return in;  // identity and unknown codings pass through
}

constexpr size_t kOutCap = 8u << 20;

// Bounded decoding in pieces; false when the output cap was reached.
bool decode_bounded(DecoderChain& chain, const std::string& body, size_t piece, size_t max_out,
                    std::string* out, bool* ok, Error& err) {
  *ok = true;
  auto step = [&](const char* p, size_t n) {
    size_t before = out->size();
    if (!chain.feed(p, n, *out, max_out, err)) return false;
    if (out->size() - before > max_out) fail("bounded feed appended more than max_out");
    while (true) {
      before = out->size();
      if (!chain.drain(*out, max_out, err)) return false;
      if (out->size() - before > max_out) fail("drain appended more than max_out");
      if (out->size() == before || out->size() > kOutCap) break;
    }
    return true;
  };
  for (size_t pos = 0; pos < body.size(); pos += piece) {
    if (!step(body.data() + pos, std::min(piece, body.size() - pos))) {
      *ok = false;
      return true;
    }
    if (out->size() > kOutCap) return false;
  }
  if (!chain.finish(*out, err)) *ok = false;
  return out->size() <= kOutCap;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const bool roundtrip = (data[0] & 1) != 0;
  const bool raw_deflate = (data[0] & 2) != 0;
  const bool one_header = (data[0] & 4) != 0;  // "gzip, br" in one value, else one per value
  const size_t piece = 1 + data[2] % 64 * (data[0] & 8 ? 97 : 1);
  size_t n_codings = data[1] % 7;
  std::vector<std::string> names;
  unsigned sel = data[1] / 7;
  for (size_t i = 0; i < n_codings; i++) {
    names.push_back(kCodings[(sel + i * 5 + (data[0] >> 4)) % 6]);
    sel = sel * 3 + 1;
  }
  size_t counted = 0;
  for (const auto& n : names) counted += (n == "identity" || n == "x-unknown") ? 0 : 1;
  std::vector<std::string> header;
  if (one_header && !names.empty()) {
    std::string v;
    for (size_t i = 0; i < names.size(); i++) v += (i ? ", " : "") + names[i];
    header.push_back(v);
  } else {
    header = names;
  }
  std::string body(reinterpret_cast<const char*>(data + 3), size - 3);

  Error err;
  std::unique_ptr<DecoderChain> chain = DecoderChain::create(header, err);
  if (counted > DecoderChain::kMaxEncodings) {
    if (chain || err.kind != httprs::ErrorKind::kDecodingError) fail("cap not enforced");
    return 0;
  }
  if (!chain) fail("chain refused under the cap");

  if (roundtrip) {
    std::string wire = body;
    for (const auto& n : names) wire = encode(n, wire, raw_deflate);
    std::string out;
    bool ok = false;
    if (!decode_bounded(*chain, wire, piece, 4096, &out, &ok, err)) fail("round trip too large");
    if (!ok) {
      std::fprintf(stderr, "error: %s\n", err.message.c_str());
      fail("round trip failed to decode");
    }
    if (out != body) fail("round trip gave different bytes");
    return 0;
  }

  std::string bounded;
  bool ok_bounded = false;
  Error err_bounded;
  if (!decode_bounded(*chain, body, piece, 1 + data[2] % 8 * 1000, &bounded, &ok_bounded,
                      err_bounded))
    return 0;  // a bomb: only the bounded form may decode it
  if (ok_bounded == static_cast<bool>(err_bounded)) fail("verdict and error disagree");
  if (!ok_bounded && err_bounded.kind != httprs::ErrorKind::kDecodingError)
    fail("decoder error is not a DecodingError");

  // The unbounded form, whole body at once.
  Error err2;
  std::unique_ptr<DecoderChain> chain2 = DecoderChain::create(header, err2);
  std::string whole;
  bool ok_whole =
      chain2->feed(body.data(), body.size(), whole, err2) && chain2->finish(whole, err2);
  if (ok_whole != ok_bounded) fail("bounded and unbounded decoding disagree on success");
  if (ok_whole && whole != bounded) fail("bounded and unbounded decoding gave different bytes");
  if (!ok_whole && counted == 1 && err2.message != err_bounded.message) {
    // One stage: the same failure whatever the piece size (the message names what
    // broke). With stacked stages, which stage trips first depends on how far each
    // was pulled; both forms still fail with a DecodingError.
    std::fprintf(stderr, "whole: %s\npieces: %s\n", err2.message.c_str(),
                 err_bounded.message.c_str());
    fail("bounded and unbounded decoding fail differently");
  }
  return 0;
}
