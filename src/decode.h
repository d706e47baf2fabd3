// Streaming content decoding for Content-Encoding: gzip, deflate, br, zstd.
//
// A DecoderChain is built from the response's Content-Encoding values (in
// header order, as sent); it undoes them in reverse order. Unknown codings
// and "identity" are passed through unchanged, as httpx does. More than
// kMaxEncodings codings is a DecodingError.
//
// Memory: the stages are pulled in pieces of at most Decoder::kChunk bytes,
// so a chain holds at most one piece per stage between calls. feed() and
// finish() append everything their input decodes to (as httpx does); the
// bounded forms feed(..., max_out, ...) / drain() append at most max_out
// bytes per call and keep the rest of the input inside the chain, so even a
// stacked compression bomb costs no more memory than the caller allows.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"

namespace httprs {

class Decoder {
 public:
  static constexpr size_t kChunk = 64 * 1024;  // piece size between stages

  virtual ~Decoder() = default;
  // Decode `len` bytes and append the output to `out`. Returns false and
  // fills `err` (kind kDecodingError) on corrupt input.
  virtual bool feed(const char* data, size_t len, std::string& out, Error& err);
  // End of input: append any buffered output. Returns false on a truncated
  // stream where the format can tell (httpx does not fail on truncated gzip;
  // follow httpx's behaviour and document it in decode.cc).
  virtual bool finish(std::string& out, Error& err);

  // One bounded step: decode from [*in, *in + *in_len) into dst (at most cap
  // bytes, cap > 0), advancing *in / *in_len past the input consumed and
  // setting *produced. Output held back inside the decoder comes out on
  // later calls, even with no input. A call that neither consumes nor
  // produces means the decoder needs more input.
  virtual bool step(const char** in, size_t* in_len, char* dst, size_t cap, size_t* produced,
                    Error& err) = 0;
  // End of input (after steps have drained all output): false + err when
  // the format says the stream was cut short and httpx would complain.
  virtual bool end(Error& err) = 0;

  // The decoded size of the whole input `data` as the format records it, or
  // 0 when it does not (see DecoderChain::size_hint).
  virtual size_t recorded_size(const char* data, size_t len) const;

  // A decoder for one (trimmed, lower-case) Content-Encoding token, or
  // nullptr for "identity" and for codings httpx does not decode.
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

  DecoderChain();
  ~DecoderChain();
  DecoderChain(const DecoderChain&) = delete;
  DecoderChain& operator=(const DecoderChain&) = delete;

  bool empty() const { return stages_.empty(); }
  // Decode one piece of the body and append all of its output to `out`.
  // With no stages the bytes are appended unchanged. After a failure every
  // later call fails with the same error.
  bool feed(const char* data, size_t len, std::string& out, Error& err);
  // Bounded form: append at most `max_out` bytes (max_out > 0); input not yet
  // decoded stays in the chain (copied). Call drain() until it appends
  // nothing to get the rest.
  bool feed(const char* data, size_t len, std::string& out, size_t max_out, Error& err);
  bool drain(std::string& out, size_t max_out, Error& err) {
    return feed(nullptr, 0, out, max_out, err);
  }
  // End of body: decode everything still held, then check each stage for
  // truncation, in order. Only the first call has effect.
  bool finish(std::string& out, Error& err);

  // Whole-body decoding into the caller's memory (no intermediate buffer):
  // decode from [*data, *data + *len) into dst, at most cap bytes, advancing
  // *data / *len past the input taken and setting *produced. The chain does
  // not copy the input: the caller keeps it and passes the rest again. A call
  // that leaves room in dst (*produced < cap) has taken all the input and
  // written all it decodes to; then finish() checks the end.
  bool decode_into(const char** data, size_t* len, char* dst, size_t cap, size_t* produced,
                   Error& err);
  // What a whole body `data` says its decoded size is (gzip's ISIZE for a
  // single gzip coding, zstd's frame content sizes), to size the output, or 0
  // when it does not say. Bounded by kMaxSizeHint and by kTrustedRatio times
  // the input (at least kMinHintCap): the input may lie, and the first buffer
  // follows what was received, not the claim alone.
  size_t size_hint(const char* data, size_t len) const;
  static constexpr size_t kMaxSizeHint = size_t{64} << 20;
  static constexpr size_t kMinHintCap = size_t{1} << 20;
  static constexpr size_t kTrustedRatio = 32;

 private:
  struct Piece {  // one stage's input waiting to be decoded: mem[begin, end)
    std::unique_ptr<char[]> mem;
    size_t begin = 0, end = 0;
  };
  bool fail(Error& err);
  bool usable(Error& err);
  bool set_input(const char* data, size_t len);
  bool pull(size_t i, char* dst, size_t cap, size_t* produced, Error& err);
  bool take_input(size_t i, const char** in, size_t* in_len);
  void consumed(size_t i, size_t n);

  std::vector<std::unique_ptr<Decoder>> stages_;  // applied front to back
  std::vector<Piece> pieces_;                     // pieces_[i]: input of stage i (i >= 1)
  std::string held_;                              // caller input not yet decoded (stage 0)
  size_t held_pos_ = 0;
  const char* ext_ = nullptr;  // caller input of the current feed() call
  size_t ext_len_ = 0;
  Error failed_;  // sticky error after a failure
  bool finished_ = false;
};

}  // namespace httprs
