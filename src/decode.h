// Streaming content decoding for Content-Encoding: gzip, deflate, br, zstd.
//
// A DecoderChain is built from the response's Content-Encoding values (in
// header order, as sent); it undoes them in reverse order. Unknown codings
// and "identity" are passed through unchanged, as httpx does. More than
// kMaxEncodings codings is a DecodingError.
//
// Memory: every stage decodes into a fixed scratch buffer (kChunk bytes) and
// hands each filled piece straight to the next stage, so a chain never holds
// more than one piece per stage; only the final output appended to `out` grows
// with the decoded size of the bytes given to one feed() call.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"

namespace httprs {

// Receives decoded bytes, piece by piece. Returns false (with err set) to stop.
class DecodeSink {
 public:
  virtual ~DecodeSink() = default;
  virtual bool put(const char* data, size_t len, Error& err) = 0;
};

class Decoder {
 public:
  static constexpr size_t kChunk = 64 * 1024;  // scratch output piece size

  virtual ~Decoder() = default;
  // Decode `len` bytes and append the output to `out`. Returns false and
  // fills `err` (kind kDecodingError) on corrupt input.
  virtual bool feed(const char* data, size_t len, std::string& out, Error& err);
  // End of input: append any buffered output. Returns false on a truncated
  // stream where the format can tell (httpx does not fail on truncated gzip;
  // follow httpx's behaviour and document it in decode.cc).
  virtual bool finish(std::string& out, Error& err);

  // Streaming forms of feed/finish: output goes to `sink` in pieces of at
  // most kChunk bytes. The sink's failure is returned as is.
  virtual bool write(const char* data, size_t len, DecodeSink& sink, Error& err) = 0;
  virtual bool end(DecodeSink& sink, Error& err) = 0;

  // A decoder for one (trimmed, any case) Content-Encoding token, or nullptr
  // for "identity" and for codings httpx does not decode.
  static std::unique_ptr<Decoder> for_coding(const std::string& token);
};

class DecoderChain {
 public:
  static constexpr size_t kMaxEncodings = 5;

  // Parse a comma-separated Content-Encoding value list (case-insensitive,
  // whitespace-tolerant). Each element may be one header value holding
  // several comma-separated codings, or a single coding: both are split on
  // ',' and trimmed. Returns nullptr and sets `err` (kDecodingError) when more
  // than kMaxEncodings codings need decoding ("identity" and unknown codings
  // do not count: they are passed through). Returns a chain with no stages
  // when nothing needs decoding.
  static std::unique_ptr<DecoderChain> create(const std::vector<std::string>& encodings,
                                              Error& err);

  bool empty() const { return stages_.empty(); }
  // Decode one piece of the body and append the result to `out`. With no
  // stages the bytes are appended unchanged. After a failure every later call
  // fails with the same error.
  bool feed(const char* data, size_t len, std::string& out, Error& err);
  // End of body: flush every stage, in order. Only the first call has effect.
  bool finish(std::string& out, Error& err);

 private:
  bool fail(Error& err);
  std::vector<std::unique_ptr<Decoder>> stages_;  // applied front to back
  Error failed_;                                  // sticky error after a failure
  bool finished_ = false;
};

}  // namespace httprs
