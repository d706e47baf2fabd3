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
//
// Decoders are pulled, not pushed: DecoderChain asks the last stage for a
// piece of output, and a stage that needs input pulls a piece (at most
// Decoder::kChunk bytes) from the stage before it. So the work done per call
// is bounded by the output the caller asked for, whatever the compression
// ratio of each stage.
#include "decode.h"

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdint>
#include <cstring>

#include "scratch.h"

namespace httprs {
namespace {

std::string lower_trim(const std::string& s, size_t begin, size_t end) {
  while (begin < end && (s[begin] == ' ' || s[begin] == '\t')) ++begin;
  while (end > begin && (s[end - 1] == ' ' || s[end - 1] == '\t')) --end;
  std::string r(s, begin, end - begin);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

// The last stage's output piece, before it is appended; null when there was
// no memory for it (the decoding fails with no_memory()).
struct DecodeScratch {};
char* scratch() { return thread_scratch<DecodeScratch, Decoder::kChunk>(); }

bool no_memory(Error& err) {
  err = scratch_error(ErrorKind::kDecodingError, Decoder::kChunk);
  return false;
}

// ---------------------------------------------------------------- zlib ----

class ZlibDecoder final : public Decoder {
 public:
  enum class Format { kGzip, kDeflateAuto };
  explicit ZlibDecoder(Format format) : format_(format) {}
  ~ZlibDecoder() override {
    if (initialised_) inflateEnd(&strm_);
  }

  bool step(const char** in, size_t* in_len, char* dst, size_t cap, size_t* produced,
            Error& err) override {
    *produced = 0;
    if (done_) {  // after the end of the stream everything is ignored, as in Python
      *in += *in_len;
      *in_len = 0;
      return true;
    }
    if (!initialised_) {
      if (*in_len == 0) return true;
      if (format_ == Format::kDeflateAuto && header_.empty() && *in_len < 2) {
        header_.assign(*in, 1);  // two bytes tell zlib from raw deflate
        *in += 1;
        *in_len -= 1;
        return true;
      }
      if (!start(*in, err)) return false;
    }
    if (!header_.empty()) {  // the byte held back to choose the format
      size_t used = 0;
      if (!inflate_some(header_.data(), 1, &used, dst, cap, produced, err)) return false;
      if (used == 1) header_.clear();
      if (*produced > 0 || done_ || !header_.empty()) return true;
    }
    size_t used = 0;
    if (!inflate_some(*in, *in_len, &used, dst, cap, produced, err)) return false;
    *in += used;
    *in_len -= used;
    return true;
  }

  // Truncated gzip / deflate streams are not an error (Python's flush()
  // does not complain).
  bool end(Error&) override { return true; }

  // gzip's trailer ends with ISIZE, the input size mod 2^32 (RFC 1952), of the
  // last member; only the first is decoded, so it is exact for one member. No
  // deflate stream expands more than 1032-fold, which bounds what a lying one
  // can claim.
  size_t recorded_size(const char* data, size_t len) const override {
    constexpr size_t kMinMember = 20;  // 10-byte header, empty deflate block, trailer
    constexpr size_t kMaxRatio = 1032;
    if (format_ != Format::kGzip || len < kMinMember) return 0;
    auto b = reinterpret_cast<const unsigned char*>(data);
    if (b[0] != 0x1f || b[1] != 0x8b) return 0;
    const unsigned char* t = b + len - 4;
    size_t isize = size_t{t[0]} | size_t{t[1]} << 8 | size_t{t[2]} << 16 | size_t{t[3]} << 24;
    return std::min(isize, len * kMaxRatio);
  }

 private:
  // Choose the window bits and initialise the inflater. Two bytes are
  // available between header_ and `data`.
  bool start(const char* data, Error& err) {
    int wbits = 16 + MAX_WBITS;
    if (format_ == Format::kDeflateAuto) {
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

  bool inflate_some(const char* src, size_t src_len, size_t* used, char* dst, size_t cap,
                    size_t* produced, Error& err) {
    uInt avail_in = src_len > UINT_MAX ? UINT_MAX : static_cast<uInt>(src_len);
    uInt avail_out = cap > UINT_MAX ? UINT_MAX : static_cast<uInt>(cap);
    strm_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(src));
    strm_.avail_in = avail_in;
    strm_.next_out = reinterpret_cast<Bytef*>(dst);
    strm_.avail_out = avail_out;
    int rc = inflate(&strm_, Z_NO_FLUSH);
    *used = avail_in - strm_.avail_in;
    *produced = avail_out - strm_.avail_out;
    if (rc == Z_STREAM_END) {
      done_ = true;
      return true;
    }
    if (rc == Z_OK || rc == Z_BUF_ERROR) return true;  // Z_BUF_ERROR: no progress possible
    return fail(rc, err);
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

class BrotliDecoder final : public Decoder {
 public:
  BrotliDecoder() : state_(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)) {}
  ~BrotliDecoder() override {
    if (state_ != nullptr) BrotliDecoderDestroyInstance(state_);
  }

  bool step(const char** in, size_t* in_len, char* dst, size_t cap, size_t* produced,
            Error& err) override {
    *produced = 0;
    if (state_ == nullptr) return fail(err);            // out of memory at creation
    if (done_) return *in_len == 0 ? true : fail(err);  // data after the end
    size_t avail_in = *in_len;
    auto next_in = reinterpret_cast<const uint8_t*>(*in);
    size_t avail_out = cap;
    auto next_out = reinterpret_cast<uint8_t*>(dst);
    BrotliDecoderResult r =
        BrotliDecoderDecompressStream(state_, &avail_in, &next_in, &avail_out, &next_out, nullptr);
    *produced = cap - avail_out;
    *in += *in_len - avail_in;
    *in_len = avail_in;
    if (r == BROTLI_DECODER_RESULT_ERROR) return fail(err);
    if (r == BROTLI_DECODER_RESULT_SUCCESS) {
      done_ = true;
      if (avail_in > 0) return fail(err);
    }
    return true;
  }

  // A truncated brotli stream is accepted, as httpx does with `brotli`.
  bool end(Error&) override { return true; }

 private:
  static bool fail(Error& err) {
    err.set(ErrorKind::kDecodingError, "brotli: decoder failed");
    return false;
  }

  BrotliDecoderState* state_;
  bool done_ = false;
};

// ---------------------------------------------------------------- zstd ----

class ZstdDecoder final : public Decoder {
 public:
  ZstdDecoder() : stream_(ZSTD_createDStream()) {
    if (stream_ != nullptr) ZSTD_initDStream(stream_);
  }
  ~ZstdDecoder() override { ZSTD_freeDStream(stream_); }

  bool step(const char** in, size_t* in_len, char* dst, size_t cap, size_t* produced,
            Error& err) override {
    *produced = 0;
    if (stream_ == nullptr) {
      err.set(ErrorKind::kDecodingError, "zstd decompressor error: Allocation error");
      return false;
    }
    if (*in_len > 0) seen_data_ = true;
    ZSTD_inBuffer ib{*in, *in_len, 0};
    ZSTD_outBuffer ob{dst, cap, 0};
    size_t r = ZSTD_decompressStream(stream_, &ob, &ib);
    if (ZSTD_isError(r)) {
      err.set(ErrorKind::kDecodingError,
              std::string("zstd decompressor error: ") + ZSTD_getErrorName(r));
      return false;
    }
    *produced = ob.pos;
    *in += ib.pos;
    *in_len -= ib.pos;
    // r is 0 exactly when a frame has been completed and flushed (a new
    // frame starts with the next input). A call that made no progress
    // returns the next frame's header hint instead: ignore it.
    if (ib.pos > 0 || ob.pos > 0) pending_ = r;
    return true;
  }

  // The content size the first frame's header records (more frames: the
  // output grows past it), or 0 when it does not.
  size_t recorded_size(const char* data, size_t len) const override {
    unsigned long long n = ZSTD_getFrameContentSize(data, len);
    if (n == ZSTD_CONTENTSIZE_UNKNOWN || n == ZSTD_CONTENTSIZE_ERROR) return 0;
    return n > SIZE_MAX ? SIZE_MAX : static_cast<size_t>(n);
  }

  bool end(Error& err) override {
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

}  // namespace

// ------------------------------------------------------------ Decoder ----

bool Decoder::feed(const char* data, size_t len, std::string& out, Error& err) {
  char* buf = scratch();
  if (buf == nullptr) return no_memory(err);
  for (;;) {
    const char* before = data;
    size_t got = 0;
    if (!step(&data, &len, buf, kChunk, &got, err)) return false;
    out.append(buf, got);
    if (got == 0 && data == before) return true;  // needs more input
  }
}

bool Decoder::finish(std::string& out, Error& err) {
  return feed(nullptr, 0, out, err) && end(err);
}

size_t Decoder::recorded_size(const char*, size_t) const { return 0; }

std::unique_ptr<Decoder> Decoder::for_coding(const std::string& token) {
  // httpx 0.28.1 decodes exactly these; "x-gzip" and others pass through.
  if (token == "gzip") return std::make_unique<ZlibDecoder>(ZlibDecoder::Format::kGzip);
  if (token == "deflate") return std::make_unique<ZlibDecoder>(ZlibDecoder::Format::kDeflateAuto);
  if (token == "br") return std::make_unique<BrotliDecoder>();
  if (token == "zstd") return std::make_unique<ZstdDecoder>();
  return nullptr;
}

// ------------------------------------------------------- DecoderChain ----

DecoderChain::DecoderChain() = default;
DecoderChain::~DecoderChain() = default;

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
          // httpx2's words (its MultiDecoder's cap, which this is).
          err.set(
              ErrorKind::kDecodingError,
              "Cannot apply more than " + std::to_string(kMaxEncodings) + " content encodings.");
          return nullptr;
        }
        chain->stages_.push_back(std::move(d));
      }
      start = comma + 1;
    }
  }
  // Codings were applied in header order, so they are undone in reverse.
  std::reverse(chain->stages_.begin(), chain->stages_.end());
  chain->pieces_.resize(chain->stages_.size());
  return chain;
}

bool DecoderChain::fail(Error& err) {
  if (!failed_) failed_ = err;
  err = failed_;
  return false;
}

// Stage 0 reads the held-back input first; feed() makes sure only one of
// held_ and the caller's bytes is non-empty at a time.
bool DecoderChain::take_input(size_t i, const char** in, size_t* in_len) {
  if (i > 0) {
    Piece& p = pieces_[i];
    *in = p.mem.get() + p.begin;
    *in_len = p.end - p.begin;
  } else if (held_pos_ < held_.size()) {
    *in = held_.data() + held_pos_;
    *in_len = held_.size() - held_pos_;
  } else {
    *in = ext_;
    *in_len = ext_len_;
  }
  return *in_len > 0;
}

void DecoderChain::consumed(size_t i, size_t n) {
  if (i > 0) {
    pieces_[i].begin += n;
  } else if (held_pos_ < held_.size()) {
    held_pos_ += n;
    if (held_pos_ == held_.size()) {
      held_.clear();
      held_pos_ = 0;
    }
  } else {
    ext_ += n;
    ext_len_ -= n;
  }
}

// Get up to `cap` bytes of stage i's output into dst, refilling its input
// from stage i - 1 as needed. *produced == 0 means all input is used up.
bool DecoderChain::pull(size_t i, char* dst, size_t cap, size_t* produced, Error& err) {
  *produced = 0;
  for (;;) {
    const char* in = nullptr;
    size_t in_len = 0;
    bool had_input = take_input(i, &in, &in_len);
    const char* before = in;
    if (!stages_[i]->step(&in, &in_len, dst, cap, produced, err)) return false;
    size_t used = static_cast<size_t>(in - before);
    consumed(i, used);
    if (*produced > 0) return true;
    if (used > 0) continue;
    // No progress. Decoders always take input they are given, so this
    // means the stage's input is used up: fetch more from upstream.
    if (i == 0 || had_input) return true;
    Piece& p = pieces_[i];
    if (!p.mem) p.mem.reset(scratch_alloc(Decoder::kChunk));
    if (!p.mem) return no_memory(err);
    size_t refill = 0;
    if (!pull(i - 1, p.mem.get(), Decoder::kChunk, &refill, err)) return false;
    p.begin = 0;
    p.end = refill;
    if (refill == 0) return true;
  }
}

// Input held back by a bounded feed() is decoded first, so new input joins it.
bool DecoderChain::set_input(const char* data, size_t len) {
  if (held_pos_ < held_.size()) {
    if (len > 0) held_.append(data, len);
    ext_ = nullptr;
    ext_len_ = 0;
    return false;
  }
  ext_ = data;
  ext_len_ = len;
  return true;
}

bool DecoderChain::usable(Error& err) {
  if (failed_) return fail(err);
  if (finished_) {
    err.set(ErrorKind::kDecodingError, "content decoder used after the end of the body");
    return fail(err);
  }
  return true;
}

bool DecoderChain::feed(const char* data, size_t len, std::string& out, Error& err) {
  return feed(data, len, out, static_cast<size_t>(-1), err);
}

bool DecoderChain::feed(const char* data, size_t len, std::string& out, size_t max_out,
                        Error& err) {
  if (!usable(err)) return false;
  set_input(data, len);
  size_t budget = max_out;
  bool ok = true;
  if (stages_.empty()) {
    const char* in = nullptr;
    size_t in_len = 0;
    take_input(0, &in, &in_len);
    size_t n = in_len < budget ? in_len : budget;
    if (n > 0) out.append(in, n);
    consumed(0, n);
  } else {
    // Compressed input usually grows several times: make room up front
    // (geometrically, so repeated feeds into one string stay linear).
    size_t guess = out.size() + (len < budget / 4 ? len * 4 : budget);
    if (len > 0 && guess > out.capacity()) out.reserve(std::max(guess, out.capacity() * 2));
    char* buf = scratch();
    if (buf == nullptr) ok = no_memory(err);
    while (ok && budget > 0) {
      size_t got = 0;
      size_t cap = budget < Decoder::kChunk ? budget : Decoder::kChunk;
      if (!pull(stages_.size() - 1, buf, cap, &got, err)) {
        ok = false;
        break;
      }
      if (got == 0) break;
      out.append(buf, got);
      budget -= got;
    }
  }
  if (ok && ext_len_ > 0) held_.append(ext_, ext_len_);  // keep what was not decoded yet
  ext_ = nullptr;
  ext_len_ = 0;
  return ok ? true : fail(err);
}

bool DecoderChain::decode_into(const char** data, size_t* len, char* dst, size_t cap,
                               size_t* produced, Error& err) {
  *produced = 0;
  if (!usable(err)) return false;
  bool borrowed = set_input(*data, *len);
  if (!borrowed) {  // joined the held input
    *data += *len;
    *len = 0;
  }
  bool ok = true;
  if (stages_.empty()) {
    const char* in = nullptr;
    size_t in_len = 0;
    take_input(0, &in, &in_len);
    size_t n = std::min(in_len, cap);
    if (n > 0) std::memcpy(dst, in, n);
    consumed(0, n);
    *produced = n;
  } else {
    while (*produced < cap) {
      size_t got = 0;
      if (!pull(stages_.size() - 1, dst + *produced, cap - *produced, &got, err)) {
        ok = false;
        break;
      }
      if (got == 0) break;
      *produced += got;
    }
  }
  if (borrowed) {  // the caller keeps what was not taken
    *data = ext_;
    *len = ext_len_;
  }
  ext_ = nullptr;
  ext_len_ = 0;
  return ok ? true : fail(err);
}

size_t DecoderChain::size_hint(const char* data, size_t len) const {
  if (stages_.size() != 1 || len == 0) return 0;
  // The body's own claim is believed only as far as what was received makes
  // plausible: beyond that the output grows as it is decoded.
  size_t plausible = len < kMinHintCap / kTrustedRatio ? kMinHintCap : len * kTrustedRatio;
  return std::min({stages_[0]->recorded_size(data, len), plausible, kMaxSizeHint});
}

bool DecoderChain::finish(std::string& out, Error& err) {
  if (failed_) return fail(err);
  if (finished_) return true;
  if (!feed(nullptr, 0, out, err)) return false;  // everything still held
  finished_ = true;
  for (auto& stage : stages_) {
    if (!stage->end(err)) return fail(err);
  }
  return true;
}

}  // namespace httprs
