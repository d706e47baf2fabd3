// Streaming content decoding for Content-Encoding: gzip, deflate, br, zstd.
//
// A DecoderChain is built from the response's Content-Encoding values (in
// header order, as sent); it undoes them in reverse order. Unknown codings
// and "identity" are passed through unchanged, as httpx does. More than
// kMaxEncodings codings is a DecodingError.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"

namespace httprs {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Decode `len` bytes and append the output to `out`. Returns false and
  // fills `err` (kind kDecodingError) on corrupt input.
  virtual bool feed(const char* data, size_t len, std::string& out, Error& err) = 0;
  // End of input: append any buffered output. Returns false on a truncated
  // stream where the format can tell (httpx does not fail on truncated gzip;
  // follow httpx's behaviour and document it in decode.cc).
  virtual bool finish(std::string& out, Error& err) = 0;
};

class DecoderChain {
 public:
  static constexpr size_t kMaxEncodings = 5;

  // Parse a comma-separated Content-Encoding value list (case-insensitive,
  // whitespace-tolerant). Returns nullptr and sets `err` on too many codings.
  // Returns a chain with no stages when nothing needs decoding.
  static std::unique_ptr<DecoderChain> create(const std::vector<std::string>& encodings, Error& err);

  bool empty() const { return stages_.empty(); }
  bool feed(const char* data, size_t len, std::string& out, Error& err);
  bool finish(std::string& out, Error& err);

 private:
  std::vector<std::unique_ptr<Decoder>> stages_;  // applied front to back
};

}  // namespace httprs
