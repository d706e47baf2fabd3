// Streaming Content-Encoding decoders.
//
// Behaviour follows httpx 0.28.1 (checked by running it), with streaming made
// independent of where the body is split:
//   gzip     zlib with gzip framing. Only the first member is decoded; bytes
//            after its end (more members, garbage) are ignored, as Python's
//            zlib.decompressobj(16 + MAX_WBITS) does. A truncated stream is
//            not an error (Python's flush() does not complain).
//   deflate  zlib-wrapped deflate, or raw deflate when the first two bytes
//            are not a valid zlib header (httpx retries raw deflate when the
//            first chunk fails; deciding on the header makes this work for any
//            split, including one byte at a time). Truncation is not an error.
//   br       brotli. Data after the end of the stream is an error and a
//            truncated stream is not (httpx with the `brotli` package).
//   zstd     zstd frames, any number of them back to back. Ending inside a
//            frame is "Zstandard data is incomplete", as in httpx.
// Error messages copy the text httpx's DecodingError carries.
#include "decode.h"

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace httprs {
namespace {

std::string lower_trim(const std::string& s, size_t begin, size_t end) {
  while (begin < end && (s[begin] == ' ' || s[begin] == '\t')) ++begin;
  while (end > begin && (s[end - 1] == ' ' || s[end - 1] == '\t')) --end;
  std::string r(s, begin, end - begin);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

// Base for decoders that need an output scratch buffer, allocated on first use.
class ScratchDecoder : public Decoder {
 protected:
  char* scratch() {
    if (!scratch_) scratch_.reset(new char[kChunk]);
    return scratch_.get();
  }

 private:
  std::unique_ptr<char[]> scratch_;
};

// ---------------------------------------------------------------- zlib ----

class ZlibDecoder final : public ScratchDecoder {
 public:
  enum class Format { kGzip, kDeflateAuto };
  explicit ZlibDecoder(Format format) : format_(format) {}
  ~ZlibDecoder() override {
    if (initialised_) inflateEnd(&strm_);
  }

  bool write(const char* data, size_t len, DecodeSink& sink, Error& err) override {
    if (done_ || len == 0) return true;
    if (!initialised_) {
      if (format_ == Format::kDeflateAuto && header_.size() + len < 2) {
        header_.append(data, len);  // need two bytes to tell zlib from raw
        return true;
      }
      if (!start(data, err)) return false;
      if (!header_.empty()) {
        std::string head;
        head.swap(header_);
        if (!inflate_all(head.data(), head.size(), sink, err)) return false;
      }
    }
    return inflate_all(data, len, sink, err);
  }

  bool end(DecodeSink&, Error&) override { return true; }

 private:
  // Choose the window bits and initialise the inflater. `data` is the
  // first input after any buffered header byte.
  bool start(const char* data, Error& err) {
    int wbits = 16 + MAX_WBITS;
    if (format_ == Format::kDeflateAuto) {
      // The caller guarantees two bytes between header_ and data.
      const char* first = header_.empty() ? data : header_.data();
      const char* second = header_.empty() ? data + 1 : data;
      auto b0 = static_cast<unsigned char>(*first);
      auto b1 = static_cast<unsigned char>(*second);
      bool zlib_header = (b0 & 0x0f) == Z_DEFLATED && (b0 >> 4) <= 7 && ((b0 << 8) | b1) % 31 == 0;
      wbits = zlib_header ? MAX_WBITS : -MAX_WBITS;
    }
    strm_ = z_stream{};
    int rc = inflateInit2(&strm_, wbits);
    if (rc != Z_OK) return fail(rc, err);
    initialised_ = true;
    return true;
  }

  bool inflate_all(const char* data, size_t len, DecodeSink& sink, Error& err) {
    char* buf = scratch();
    strm_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
    strm_.avail_in = static_cast<uInt>(len);  // body chunks are far below 4 GiB
    for (;;) {
      strm_.next_out = reinterpret_cast<Bytef*>(buf);
      strm_.avail_out = static_cast<uInt>(kChunk);
      int rc = inflate(&strm_, Z_NO_FLUSH);
      size_t produced = kChunk - strm_.avail_out;
      if (produced > 0 && !sink.put(buf, produced, err)) return false;
      if (rc == Z_STREAM_END) {
        done_ = true;  // the rest is ignored, as Python's decompressobj does
        return true;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) return fail(rc, err);
      if (strm_.avail_in == 0 && strm_.avail_out != 0) return true;
      if (rc == Z_BUF_ERROR && strm_.avail_out != 0) return true;  // no progress possible
    }
  }

  // Python's zlib module message: "Error <code> while decompressing data[: <msg>]".
  bool fail(int rc, Error& err) {
    std::string msg = "Error " + std::to_string(rc) + " while decompressing data";
    const char* detail = strm_.msg;
    if (detail == nullptr) {
      if (rc == Z_BUF_ERROR) detail = "incomplete or truncated stream";
      if (rc == Z_STREAM_ERROR) detail = "inconsistent stream state";
      if (rc == Z_DATA_ERROR) detail = "invalid input data";
    }
    if (detail != nullptr) {
      msg += ": ";
      msg += detail;
    }
    err.set(ErrorKind::kDecodingError, std::move(msg));
    return false;
  }

  Format format_;
  z_stream strm_{};
  bool initialised_ = false;
  bool done_ = false;
  std::string header_;  // deflate: a lone first byte, until the second arrives
};

// -------------------------------------------------------------- brotli ----

class BrotliDecoder final : public ScratchDecoder {
 public:
  BrotliDecoder() : state_(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)) {}
  ~BrotliDecoder() override {
    if (state_ != nullptr) BrotliDecoderDestroyInstance(state_);
  }

  bool write(const char* data, size_t len, DecodeSink& sink, Error& err) override {
    if (len == 0) return true;
    if (state_ == nullptr || done_) return fail(err);  // no memory / data after the end
    char* buf = scratch();
    size_t avail_in = len;
    auto next_in = reinterpret_cast<const uint8_t*>(data);
    for (;;) {
      size_t avail_out = kChunk;
      auto next_out = reinterpret_cast<uint8_t*>(buf);
      BrotliDecoderResult r = BrotliDecoderDecompressStream(state_, &avail_in, &next_in, &avail_out,
                                                            &next_out, nullptr);
      size_t produced = kChunk - avail_out;
      if (produced > 0 && !sink.put(buf, produced, err)) return false;
      switch (r) {
        case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT:
          continue;
        case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT:
          return true;
        case BROTLI_DECODER_RESULT_SUCCESS:
          done_ = true;
          return avail_in == 0 ? true : fail(err);
        default:
          return fail(err);
      }
    }
  }

  // A truncated brotli stream is accepted, as httpx does with `brotli`.
  bool end(DecodeSink&, Error&) override { return true; }

 private:
  static bool fail(Error& err) {
    err.set(ErrorKind::kDecodingError, "brotli: decoder failed");
    return false;
  }

  BrotliDecoderState* state_;
  bool done_ = false;
};

// ---------------------------------------------------------------- zstd ----

class ZstdDecoder final : public ScratchDecoder {
 public:
  ZstdDecoder() : stream_(ZSTD_createDStream()) {
    if (stream_ != nullptr) ZSTD_initDStream(stream_);
  }
  ~ZstdDecoder() override { ZSTD_freeDStream(stream_); }

  bool write(const char* data, size_t len, DecodeSink& sink, Error& err) override {
    if (len == 0) return true;
    if (stream_ == nullptr) {
      err.set(ErrorKind::kDecodingError, "zstd decompressor error: Allocation error");
      return false;
    }
    seen_data_ = true;
    char* buf = scratch();
    ZSTD_inBuffer in{data, len, 0};
    for (;;) {
      ZSTD_outBuffer out{buf, kChunk, 0};
      size_t in_before = in.pos;
      size_t r = ZSTD_decompressStream(stream_, &out, &in);
      if (ZSTD_isError(r)) {
        err.set(ErrorKind::kDecodingError,
                std::string("zstd decompressor error: ") + ZSTD_getErrorName(r));
        return false;
      }
      if (out.pos > 0 && !sink.put(buf, out.pos, err)) return false;
      // r is 0 exactly when a frame has been completed and flushed. A call
      // that made no progress (after a frame end) returns the next frame's
      // header hint instead, which says nothing about this frame.
      if (in.pos != in_before || out.pos > 0) pending_ = r;
      // A completed frame followed by more input starts the next frame.
      if (in.pos == in.size && out.pos < out.size) return true;
    }
  }

  bool end(DecodeSink&, Error& err) override {
    if (seen_data_ && pending_ != 0) {
      err.set(ErrorKind::kDecodingError, "Zstandard data is incomplete");
      return false;
    }
    return true;
  }

 private:
  ZSTD_DStream* stream_;
  size_t pending_ = 0;
  bool seen_data_ = false;
};

// --------------------------------------------------------------- chain ----

class StringSink final : public DecodeSink {
 public:
  explicit StringSink(std::string& out) : out_(out) {}
  bool put(const char* data, size_t len, Error&) override {
    out_.append(data, len);
    return true;
  }

 private:
  std::string& out_;
};

// Receives one stage's output: feeds the next stage, or appends to `out`.
class StageSink final : public DecodeSink {
 public:
  Decoder* next = nullptr;
  DecodeSink* after = nullptr;
  std::string* out = nullptr;
  bool put(const char* data, size_t len, Error& err) override {
    if (next != nullptr) return next->write(data, len, *after, err);
    out->append(data, len);
    return true;
  }
};

using Sinks = std::array<StageSink, DecoderChain::kMaxEncodings>;

// sinks[i] takes stage i's output to stage i + 1, the last one to `out`.
void wire(const std::vector<std::unique_ptr<Decoder>>& stages, Sinks& sinks, std::string& out) {
  size_t n = stages.size();
  for (size_t i = 0; i + 1 < n; ++i) {
    sinks[i].next = stages[i + 1].get();
    sinks[i].after = &sinks[i + 1];
  }
  sinks[n - 1].out = &out;
}

}  // namespace

bool Decoder::feed(const char* data, size_t len, std::string& out, Error& err) {
  StringSink sink(out);
  return write(data, len, sink, err);
}

bool Decoder::finish(std::string& out, Error& err) {
  StringSink sink(out);
  return end(sink, err);
}

std::unique_ptr<Decoder> Decoder::for_coding(const std::string& token) {
  // httpx 0.28.1 decodes exactly these; "x-gzip" and others pass through.
  if (token == "gzip") return std::make_unique<ZlibDecoder>(ZlibDecoder::Format::kGzip);
  if (token == "deflate") return std::make_unique<ZlibDecoder>(ZlibDecoder::Format::kDeflateAuto);
  if (token == "br") return std::make_unique<BrotliDecoder>();
  if (token == "zstd") return std::make_unique<ZstdDecoder>();
  return nullptr;
}

std::unique_ptr<DecoderChain> DecoderChain::create(const std::vector<std::string>& encodings,
                                                   Error& err) {
  auto chain = std::make_unique<DecoderChain>();
  size_t count = 0;
  for (const std::string& value : encodings) {
    size_t start = 0;
    while (start <= value.size()) {
      size_t comma = value.find(',', start);
      if (comma == std::string::npos) comma = value.size();
      std::unique_ptr<Decoder> d = Decoder::for_coding(lower_trim(value, start, comma));
      if (d) {
        if (++count > kMaxEncodings) {
          err.set(ErrorKind::kDecodingError, "Too many content encodings in the chain: more than " +
                                                 std::to_string(kMaxEncodings));
          return nullptr;
        }
        chain->stages_.push_back(std::move(d));
      }
      start = comma + 1;
    }
  }
  // Codings were applied in header order, so they are undone in reverse.
  std::reverse(chain->stages_.begin(), chain->stages_.end());
  return chain;
}

bool DecoderChain::fail(Error& err) {
  if (!failed_) failed_ = err;
  err = failed_;
  return false;
}

bool DecoderChain::feed(const char* data, size_t len, std::string& out, Error& err) {
  if (failed_) return fail(err);
  if (finished_) {
    err.set(ErrorKind::kDecodingError, "content decoder used after the end of the body");
    return fail(err);
  }
  if (stages_.empty()) {
    out.append(data, len);
    return true;
  }
  Sinks sinks;
  wire(stages_, sinks, out);
  if (!stages_[0]->write(data, len, sinks[0], err)) return fail(err);
  return true;
}

bool DecoderChain::finish(std::string& out, Error& err) {
  if (failed_) return fail(err);
  if (finished_) return true;
  finished_ = true;
  if (stages_.empty()) return true;
  Sinks sinks;
  wire(stages_, sinks, out);
  // Ending stage i may still push bytes through the later stages.
  for (size_t i = 0; i < stages_.size(); ++i) {
    if (!stages_[i]->end(sinks[i], err)) return fail(err);
  }
  return true;
}

}  // namespace httprs
