// Unit tests for src/decode.cc, built and run by tests/test_cpp_units.py.
// Data is produced with the real encoders (zlib, brotlienc, zstd) and decoded
// through DecoderChain with many different split points.
#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "decode.h"
#include "scratch.h"

using httprs::Decoder;
using httprs::DecoderChain;
using httprs::Error;
using httprs::ErrorKind;

// ------------------------------------------------------------- encoders ----

static std::string zlib_encode(const std::string& in, int wbits) {
  z_stream s{};
  if (deflateInit2(&s, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  std::string out(deflateBound(&s, in.size()) + 64, '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  s.avail_in = static_cast<uInt>(in.size());
  s.next_out = reinterpret_cast<Bytef*>(&out[0]);
  s.avail_out = static_cast<uInt>(out.size());
  if (deflate(&s, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}
static std::string gzip_encode(const std::string& in) { return zlib_encode(in, 31); }
static std::string zlibw_encode(const std::string& in) { return zlib_encode(in, 15); }
static std::string raw_encode(const std::string& in) { return zlib_encode(in, -15); }

static std::string br_encode(const std::string& in) {
  size_t n = BrotliEncoderMaxCompressedSize(in.size());
  if (n == 0) n = in.size() + 1024;
  std::string out(n, '\0');
  if (!BrotliEncoderCompress(5, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, in.size(),
                             reinterpret_cast<const uint8_t*>(in.data()), &n,
                             reinterpret_cast<uint8_t*>(&out[0])))
    std::abort();
  out.resize(n);
  return out;
}

static std::string zstd_encode(const std::string& in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress(&out[0], out.size(), in.data(), in.size(), 3);
  if (ZSTD_isError(n)) std::abort();
  out.resize(n);
  return out;
}

// ------------------------------------------------------------- helpers ----

struct Result {
  bool ok = true;
  std::string out;
  Error err;
};

static std::unique_ptr<DecoderChain> make(const std::vector<std::string>& enc) {
  Error err;
  auto chain = DecoderChain::create(enc, err);
  if (!chain) std::fprintf(stderr, "create failed: %s\n", err.message.c_str());
  return chain;
}

// Decode `data` fed in pieces whose sizes come from `sizes` (cycled).
static Result decode(const std::vector<std::string>& enc, const std::string& data,
                     const std::vector<size_t>& sizes) {
  Result r;
  auto chain = make(enc);
  if (!chain) {
    r.ok = false;
    return r;
  }
  size_t pos = 0, k = 0;
  while (pos < data.size()) {
    size_t n = sizes.empty() ? data.size() : sizes[k++ % sizes.size()];
    if (n > data.size() - pos) n = data.size() - pos;
    if (!chain->feed(data.data() + pos, n, r.out, r.err)) {
      r.ok = false;
      return r;
    }
    pos += n;
  }
  r.ok = chain->finish(r.out, r.err);
  return r;
}

static Result decode_whole(const std::vector<std::string>& enc, const std::string& data) {
  return decode(enc, data, {});
}

static std::string sample(size_t n, unsigned seed) {
  // Text-like, compressible but not trivially so.
  static const char* words[] = {"alpha ", "beta ", "gamma ", "delta ",      "epsilon\n",
                                "zeta, ", "eta; ", "theta ", "{\"k\": 1} ", "\x00\x01\xff "};
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < n) {
    unsigned w = rng() % 10;
    s.append(words[w], w == 9 ? 4 : std::strlen(words[w]));
    if (rng() % 7 == 0) s.push_back(static_cast<char>(rng() & 0xff));
  }
  s.resize(n);
  return s;
}

// Every two-piece split, and one byte at a time.
static void check_all_splits(const std::vector<std::string>& enc, const std::string& encoded,
                             const std::string& expect, const char* label) {
  int bad = 0;
  for (size_t cut = 0; cut <= encoded.size(); ++cut) {
    Result r;
    auto chain = make(enc);
    bool ok = chain && chain->feed(encoded.data(), cut, r.out, r.err) &&
              chain->feed(encoded.data() + cut, encoded.size() - cut, r.out, r.err) &&
              chain->finish(r.out, r.err);
    if (!ok || r.out != expect) {
      if (bad++ < 3)
        std::fprintf(stderr, "%s: split at %zu failed: %s\n", label, cut, r.err.message.c_str());
    }
  }
  CHECK(bad == 0);
  Result one = decode(enc, encoded, {1});
  if (!one.ok) std::fprintf(stderr, "%s: byte-at-a-time: %s\n", label, one.err.message.c_str());
  CHECK(one.ok);
  CHECK_EQ_STR(one.out, expect);
}

// ---------------------------------------------------------------- tests ----

static void test_round_trips() {
  std::string big = sample(300000, 1);
  struct Case {
    const char* name;
    std::string (*enc)(const std::string&);
  } cases[] = {{"gzip", gzip_encode}, {"deflate", zlibw_encode}, {"deflate", raw_encode},
               {"br", br_encode},     {"zstd", zstd_encode},     {"GZip", gzip_encode},
               {" BR\t", br_encode},  {"ZSTD ", zstd_encode}};
  for (const Case& c : cases) {
    std::string e = c.enc(big);
    Result whole = decode_whole({c.name}, e);
    CHECK(whole.ok);
    CHECK_EQ_STR(whole.out, big);
    Result odd = decode({c.name}, e, {1, 7, 4096, 3, 100000, 2});
    CHECK(odd.ok);
    CHECK_EQ_STR(odd.out, big);
    std::string small = sample(97, 2);
    check_all_splits({c.name}, c.enc(small), small, c.name);
    // Empty body, encoded.
    Result empty = decode_whole({c.name}, c.enc(""));
    CHECK(empty.ok);
    CHECK(empty.out.empty());
  }
}

static void test_empty_input() {
  // No bytes at all: nothing to decode, no error (httpx returns b"").
  for (const char* name : {"gzip", "deflate", "br", "zstd"}) {
    Result r = decode_whole({name}, "");
    CHECK(r.ok);
    CHECK(r.out.empty());
  }
}

static void test_stacked() {
  std::string plain = sample(50000, 3);
  // "gzip, br": gzip was applied first, then br. Undo br, then gzip.
  std::string e = br_encode(gzip_encode(plain));
  Result r = decode_whole({"gzip, br"}, e);
  CHECK(r.ok);
  CHECK_EQ_STR(r.out, plain);
  // The same given as separate header values.
  r = decode({"gzip", "br"}, e, {13});
  CHECK(r.ok);
  CHECK_EQ_STR(r.out, plain);
  std::string e3 = gzip_encode(zstd_encode(raw_encode(plain)));
  r = decode({"deflate,zstd", " gzip"}, e3, {5, 900});
  CHECK(r.ok);
  CHECK_EQ_STR(r.out, plain);
  std::string small = sample(60, 4);
  check_all_splits({"deflate", "gzip"}, gzip_encode(zlibw_encode(small)), small, "deflate,gzip");
  // identity and unknown codings in between are skipped.
  r = decode_whole({"gzip, identity, x-custom, br"}, e);
  CHECK(r.ok);
  CHECK_EQ_STR(r.out, plain);
}

static void test_passthrough() {
  Error err;
  for (const char* v : {"", "identity", "IDENTITY", "x-gzip", "compress", "foo, bar", " , ,"}) {
    auto chain = DecoderChain::create({v}, err);
    CHECK(chain != nullptr);
    CHECK(chain && chain->empty());
  }
  auto none = DecoderChain::create({}, err);
  CHECK(none && none->empty());
  std::string raw = "\x1f\x8bnot really gzip";
  Result r = decode({"x-gzip"}, raw, {3});
  CHECK(r.ok);
  CHECK_EQ_STR(r.out, raw);
  auto gz = DecoderChain::create({"gzip"}, err);
  CHECK(gz && !gz->empty());
}

static void test_too_many() {
  Error err;
  auto five = DecoderChain::create({"gzip, gzip, gzip", "gzip", "gzip"}, err);
  CHECK(five != nullptr);
  CHECK(!err);
  auto six = DecoderChain::create({"gzip, gzip, gzip", "gzip", "gzip, br"}, err);
  CHECK(six == nullptr);
  CHECK(err.kind == ErrorKind::kDecodingError);
  CHECK(err.message == "Cannot apply more than 5 content encodings.");
  // identity and unknown codings do not count.
  Error err2;
  auto mixed =
      DecoderChain::create({"identity, gzip, foo, gzip, gzip, identity, gzip, gzip, bar"}, err2);
  CHECK(mixed != nullptr);
  // Five real stages decode a five-times-gzipped body.
  std::string plain = sample(2000, 5);
  std::string e = plain;
  for (int i = 0; i < 5; ++i) e = gzip_encode(e);
  Result r = decode({"gzip,gzip,gzip,gzip,gzip"}, e, {1});
  CHECK(r.ok);
  CHECK_EQ_STR(r.out, plain);
}

static void expect_error(const std::vector<std::string>& enc, const std::string& data,
                         const std::string& message) {
  Result r = decode_whole(enc, data);
  CHECK(!r.ok);
  CHECK(r.err.kind == ErrorKind::kDecodingError);
  CHECK_EQ_STR(r.err.message, message);
  // Byte-at-a-time reaches the same error.
  Result r1 = decode(enc, data, {1});
  CHECK(!r1.ok);
  CHECK_EQ_STR(r1.err.message, message);
}

static void test_corrupt() {
  // Messages as httpx 0.28.1 reports them (DecodingError's text).
  expect_error({"gzip"}, "notgzipdata",
               "Error -3 while decompressing data: incorrect header check");
  expect_error({"deflate"}, "\xff\xff\xff\xff",
               "Error -3 while decompressing data: invalid block type");
  expect_error({"br"}, "garbagegarbage", "brotli: decoder failed");
  expect_error({"zstd"}, "garbagegarbage", "zstd decompressor error: Unknown frame descriptor");
  // A bad gzip trailer (length check).
  std::string gz = gzip_encode("hello hello hello");
  std::string bad = gz.substr(0, gz.size() - 4) + std::string("\x01\x02\x03\x04", 4);
  expect_error({"gzip"}, bad, "Error -3 while decompressing data: incorrect length check");
  // Data after the end of a brotli stream is an error.
  std::string br = br_encode("hello");
  expect_error({"br"}, br + "xx", "brotli: decoder failed");
  expect_error({"br"}, br + br, "brotli: decoder failed");
  // zstd: garbage after a valid frame.
  expect_error({"zstd"}, zstd_encode("hello") + "xxxxxxxxxxxxx",
               "zstd decompressor error: Unknown frame descriptor");

  // The error is sticky: later feeds and finish keep failing.
  Error err;
  auto chain = DecoderChain::create({"gzip"}, err);
  std::string out;
  CHECK(!chain->feed("notgzip", 7, out, err));
  Error err2;
  std::string ok_gz = gzip_encode("x");
  CHECK(!chain->feed(ok_gz.data(), ok_gz.size(), out, err2));
  CHECK_EQ_STR(err2.message, err.message);
  Error err3;
  CHECK(!chain->finish(out, err3));
  CHECK(err3.kind == ErrorKind::kDecodingError);
}

static void test_truncated() {
  std::string plain = sample(5000, 6);
  // gzip / deflate / br: truncated streams give what was decoded, no error (httpx).
  for (auto enc : {std::make_pair("gzip", gzip_encode), std::make_pair("deflate", zlibw_encode),
                   std::make_pair("deflate", raw_encode), std::make_pair("br", br_encode)}) {
    std::string e = enc.second(plain);
    Result r = decode_whole({enc.first}, e.substr(0, e.size() / 2));
    CHECK(r.ok);
    CHECK(r.out.size() < plain.size());
    CHECK(plain.compare(0, r.out.size(), r.out) == 0);
  }
  // zstd: ending inside a frame is an error at finish.
  std::string z = zstd_encode(plain);
  Result r = decode({"zstd"}, z.substr(0, z.size() - 2), {100});
  CHECK(!r.ok);
  CHECK_EQ_STR(r.err.message, "Zstandard data is incomplete");
  // ... also right after a complete frame plus the start of another.
  r = decode_whole({"zstd"}, z + z.substr(0, 3));
  CHECK(!r.ok);
  CHECK_EQ_STR(r.err.message, "Zstandard data is incomplete");
  // deflate with a single byte only.
  r = decode_whole({"deflate"}, "x");
  CHECK(r.ok);
  CHECK(r.out.empty());
}

static void test_multi_member() {
  // gzip: only the first member is decoded; the rest is ignored (Python zlib, wbits 31).
  std::string a = gzip_encode("hello"), b = gzip_encode("world");
  Result r = decode_whole({"gzip"}, a + b);
  CHECK(r.ok);
  CHECK_EQ_STR(r.out, "hello");
  r = decode({"gzip"}, a + "trailing garbage", {1});
  CHECK(r.ok);
  CHECK_EQ_STR(r.out, "hello");
  // deflate: trailing bytes after the stream end are ignored too.
  r = decode_whole({"deflate"}, zlibw_encode("hi") + "junk");
  CHECK(r.ok);
  CHECK_EQ_STR(r.out, "hi");
  // zstd: any number of frames, split anywhere.
  std::string z = zstd_encode("hello ") + zstd_encode("") + zstd_encode("world");
  check_all_splits({"zstd"}, z, "hello world", "zstd frames");
}

struct Case {
  std::vector<std::string> enc;
  std::string data;
};

// The end of a chain whose output has all come out already: finish() adds nothing.
static void finish_drained(DecoderChain& chain, Result& r) {
  std::string tail;
  r.ok = chain.finish(tail, r.err);
  CHECK(tail.empty());
}

// Decode with the bounded API: every feed/drain call appends at most
// `limits[k]` bytes; checks the bound and returns everything decoded.
static Result decode_bounded(const std::vector<std::string>& enc, const std::string& data,
                             const std::vector<size_t>& sizes, const std::vector<size_t>& limits) {
  Result r;
  auto chain = make(enc);
  if (!chain) {
    r.ok = false;
    return r;
  }
  size_t pos = 0, k = 0, calls = 0;
  auto bounded = [&](const char* p, size_t n) {
    size_t limit = limits[calls++ % limits.size()];
    size_t before = r.out.size();
    bool ok = chain->feed(p, n, r.out, limit, r.err);
    if (r.out.size() - before > limit) {
      std::fprintf(stderr, "bounded call appended %zu > %zu\n", r.out.size() - before, limit);
      ++g_failures;
    }
    return ok ? r.out.size() - before : static_cast<size_t>(-1);
  };
  while (pos < data.size()) {
    size_t n = std::min(sizes[k++ % sizes.size()], data.size() - pos);
    if (bounded(data.data() + pos, n) == static_cast<size_t>(-1)) {
      r.ok = false;
      return r;
    }
    pos += n;
    // Sometimes drain a little before the next piece, sometimes not at all.
    if (k % 3 == 0 && bounded(nullptr, 0) == static_cast<size_t>(-1)) {
      r.ok = false;
      return r;
    }
  }
  for (;;) {  // drain until nothing comes out
    size_t got = bounded(nullptr, 0);
    if (got == static_cast<size_t>(-1)) {
      r.ok = false;
      return r;
    }
    if (got == 0) break;
  }
  finish_drained(*chain, r);  // everything came out through drain()
  return r;
}

static void test_bounded() {
  std::string plain = sample(200000, 7);
  Case cases[] = {
      {{"gzip"}, gzip_encode(plain)},
      {{"deflate"}, raw_encode(plain)},
      {{"br"}, br_encode(plain)},
      {{"zstd"}, zstd_encode(plain) + zstd_encode(plain.substr(0, 1000))},
      {{"gzip, br"}, br_encode(gzip_encode(plain))},
      {{"deflate", "zstd", "gzip"}, gzip_encode(zstd_encode(zlibw_encode(plain)))},
      {{"identity"}, plain},
  };
  for (const Case& c : cases) {
    Result whole = decode_whole(c.enc, c.data);
    CHECK(whole.ok);
    Result b = decode_bounded(c.enc, c.data, {1, 5000, 3, 100000}, {1, 7, 4096, 100000, 65536});
    CHECK(b.ok);
    CHECK_EQ_STR(b.out, whole.out);
    Result b2 = decode_bounded(c.enc, c.data, {c.data.size()}, {1000});
    CHECK(b2.ok);
    CHECK_EQ_STR(b2.out, whole.out);
  }
  // Errors still surface through the bounded calls, and stick.
  Result bad = decode_bounded({"gzip"}, "notgzipdata", {3}, {10});
  CHECK(!bad.ok);
  CHECK_EQ_STR(bad.err.message, "Error -3 while decompressing data: incorrect header check");
  // Passthrough respects the bound too.
  Error err;
  auto id = DecoderChain::create({"identity"}, err);
  std::string out;
  CHECK(id->feed("abcdef", 6, out, 2, err));
  CHECK_EQ_STR(out, "ab");
  CHECK(id->drain(out, 3, err));
  CHECK_EQ_STR(out, "abcde");
  CHECK(id->feed("gh", 2, out, 1, err));
  CHECK_EQ_STR(out, "abcdef");
  CHECK(id->finish(out, err));
  CHECK_EQ_STR(out, "abcdefgh");
  CHECK(!id->feed("x", 1, out, err));  // after finish
}

// A sink-free way to see a stacked bomb stays bounded: 256 MiB of zeros,
// gzipped twice, is a few hundred bytes; one feed() of all of it with a
// 1 MiB limit must return at most 1 MiB, and draining must produce the whole
// 256 MiB in 1 MiB steps.
static void test_stacked_bomb() {
  const size_t n = 256u << 20;
  std::string e;
  {
    std::string zeros(n, '\0');
    e = gzip_encode(gzip_encode(zeros));
  }
  CHECK(e.size() < 1u << 20);
  Error err;
  auto chain = DecoderChain::create({"gzip, gzip"}, err);
  std::string out;
  const size_t limit = 1u << 20;
  CHECK(chain->feed(e.data(), e.size(), out, limit, err));
  size_t total = out.size();
  CHECK(total <= limit);
  size_t steps = 0;
  for (;;) {
    out.clear();
    CHECK(chain->drain(out, limit, err));
    CHECK(out.size() <= limit);
    CHECK(out.find_first_not_of('\0') == std::string::npos);
    total += out.size();
    if (out.empty()) break;
    ++steps;
  }
  CHECK(chain->finish(out, err));
  CHECK(total == n);
  CHECK(steps >= n / limit - 1);

  // Single stage: each unbounded feed returns only what its input decodes to.
  std::string zeros(64u << 20, '\0');
  std::string g = gzip_encode(zeros);
  auto single = DecoderChain::create({"gzip"}, err);
  size_t sum = 0, largest = 0;
  for (size_t pos = 0; pos < g.size(); pos += 1024) {
    out.clear();
    CHECK(single->feed(g.data() + pos, std::min<size_t>(1024, g.size() - pos), out, err));
    sum += out.size();
    largest = std::max(largest, out.size());
  }
  CHECK(single->finish(out, err));
  CHECK(sum == zeros.size());
  CHECK(largest < zeros.size() / 4);
}

// The single-decoder API (Decoder::feed / finish) used on its own.
static void test_single_decoder() {
  std::string plain = sample(100000, 8);
  auto d = Decoder::for_coding("zstd");
  CHECK(d != nullptr);
  std::string z = zstd_encode(plain), out;
  Error err;
  CHECK(d->feed(z.data(), 10, out, err));
  CHECK(d->feed(z.data() + 10, z.size() - 10, out, err));
  CHECK(d->finish(out, err));
  CHECK_EQ_STR(out, plain);
  CHECK(Decoder::for_coding("identity") == nullptr);
  CHECK(Decoder::for_coding("x-gzip") == nullptr);
}

// decode_into: the whole body into the caller's buffer, in rooms of every size
// from one byte up, the input passed again from where the chain left it.
static Result decode_into_rooms(const std::vector<std::string>& enc, const std::string& data,
                                size_t room) {
  Result r;
  auto chain = make(enc);
  if (!chain) {
    r.ok = false;
    return r;
  }
  const char* in = data.data();
  size_t in_len = data.size();
  std::vector<char> buf(room);
  for (;;) {
    size_t got = 0;
    if (!chain->decode_into(&in, &in_len, buf.data(), room, &got, r.err)) {
      r.ok = false;
      return r;
    }
    r.out.append(buf.data(), got);
    if (got < room) break;  // room left: all input taken and decoded
  }
  CHECK(in_len == 0);
  finish_drained(*chain, r);
  return r;
}

static void test_decode_into() {
  std::string plain = sample(150000, 11);
  Case cases[] = {
      {{"gzip"}, gzip_encode(plain)},
      {{"deflate"}, zlibw_encode(plain)},
      {{"deflate"}, raw_encode(plain)},
      {{"br"}, br_encode(plain)},
      {{"zstd"}, zstd_encode(plain)},
      {{"deflate", "gzip"}, gzip_encode(zlibw_encode(plain))},
      {{"identity"}, plain},
      {{"gzip"}, gzip_encode(plain) + gzip_encode("second member")},
  };
  for (const Case& c : cases) {
    for (size_t room :
         {size_t{1}, size_t{7}, size_t{4096}, plain.size(), plain.size() + 1, plain.size() * 3}) {
      Result r = decode_into_rooms(c.enc, c.data, room);
      CHECK(r.ok);
      CHECK(r.out == plain);
    }
  }
  // Errors as feed() reports them, and sticky.
  Result r = decode_into_rooms({"gzip"}, "xxxxxxxx", 64);
  CHECK(!r.ok);
  CHECK_EQ_STR(r.err.message, "Error -3 while decompressing data: incorrect header check");
  std::string z = zstd_encode(plain);
  r = decode_into_rooms({"zstd"}, z.substr(0, z.size() - 3), 1 << 20);
  CHECK(!r.ok);
  CHECK_EQ_STR(r.err.message, "Zstandard data is incomplete");
  // Input held back by a bounded feed() is decoded first, then the new input.
  auto chain = make({"gzip"});
  std::string gz = gzip_encode(plain), out;
  Error err;
  CHECK(chain->feed(gz.data(), gz.size() / 2, out, 1000, err));
  CHECK(out.size() == 1000);
  const char* in = gz.data() + gz.size() / 2;
  size_t in_len = gz.size() - gz.size() / 2;
  std::vector<char> buf(plain.size());
  size_t got = 0;
  CHECK(chain->decode_into(&in, &in_len, buf.data(), buf.size(), &got, err));
  CHECK(in_len == 0);
  CHECK(got == plain.size() - 1000);
  CHECK(out + std::string(buf.data(), got) == plain);
}

static void test_size_hint() {
  std::string plain = sample(100000, 12);
  std::string gz = gzip_encode(plain);
  CHECK(make({"gzip"})->size_hint(gz.data(), gz.size()) == plain.size());
  std::string z = zstd_encode(plain);
  CHECK(make({"zstd"})->size_hint(z.data(), z.size()) == plain.size());
  // A zstd frame that does not record its size, formats that never do, chains of
  // two codings, and input that is not what it claims: no hint.
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
  std::string z2(ZSTD_compressBound(plain.size()), '\0');
  size_t n = ZSTD_compress2(cctx, &z2[0], z2.size(), plain.data(), plain.size());
  ZSTD_freeCCtx(cctx);
  CHECK(!ZSTD_isError(n));
  z2.resize(n);
  CHECK(make({"zstd"})->size_hint(z2.data(), z2.size()) == 0);
  std::string br = br_encode(plain), zl = zlibw_encode(plain);
  CHECK(make({"br"})->size_hint(br.data(), br.size()) == 0);
  CHECK(make({"deflate"})->size_hint(zl.data(), zl.size()) == 0);
  std::string gz2 = gzip_encode(zlibw_encode(plain));
  CHECK(make({"deflate", "gzip"})->size_hint(gz2.data(), gz2.size()) == 0);
  CHECK(make({"gzip"})->size_hint("not gzip, but long enough", 25) == 0);
  CHECK(make({"gzip"})->size_hint(gz.data(), 0) == 0);
  // A claim is believed up to kTrustedRatio times the input (at least
  // kMinHintCap), whatever the body says: a lying ISIZE, a zstd frame header
  // claiming more than its few bytes make plausible, a true but huge ratio.
  constexpr size_t kMin = DecoderChain::kMinHintCap, kRatio = DecoderChain::kTrustedRatio;
  std::string liar = gz;
  for (size_t i = liar.size() - 4; i < liar.size(); ++i) liar[i] = '\xff';
  CHECK(make({"gzip"})->size_hint(liar.data(), liar.size()) ==
        std::max(kMin, liar.size() * kRatio));
  std::string big_liar = liar + std::string(100000, 'x');
  for (size_t i = big_liar.size() - 4; i < big_liar.size(); ++i) big_liar[i] = '\xff';
  CHECK(make({"gzip"})->size_hint(big_liar.data(), big_liar.size()) ==
        std::max(kMin, big_liar.size() * kRatio));
  std::string zeros = zstd_encode(std::string(size_t{48} << 20, '\0'));
  CHECK(zeros.size() * kRatio < kMin);
  CHECK(make({"zstd"})->size_hint(zeros.data(), zeros.size()) == kMin);
  CHECK(make({"zstd"})->size_hint(zeros.data(), 18) == kMin);
}

// No memory for a decoding buffer (the per-thread output piece, or a stacked
// chain's piece between two stages): a DecodingError that says so, never a
// crash; the chain stays failed, and the next chain decodes. On fresh threads,
// whose buffers are not allocated yet.
static void test_no_memory() {
  const std::string kMessage = "Out of memory: could not allocate a 64 KiB buffer.";
  std::string plain = sample(100000, 13);
  std::string gz = gzip_encode(plain), z = zstd_encode(plain);
  std::thread([&] {
    auto chain = make({"gzip"});
    std::string out;
    Error err;
    httprs::scratch_failures.store(1);
    CHECK(!chain->feed(gz.data(), gz.size(), out, err));
    CHECK(err.kind == ErrorKind::kDecodingError);
    CHECK_EQ_STR(err.message, kMessage);
    CHECK(out.empty());
    Error again;
    CHECK(!chain->feed(gz.data(), gz.size(), out, again));  // failed for good
    CHECK(again.kind == ErrorKind::kDecodingError);
    auto fresh = make({"gzip"});
    Error ok;
    CHECK(fresh->feed(gz.data(), gz.size(), out, ok) && fresh->finish(out, ok));
    CHECK(out == plain);
  }).join();
  std::thread([&] {
    auto d = Decoder::for_coding("zstd");
    std::string out;
    Error err;
    httprs::scratch_failures.store(1);
    CHECK(!d->feed(z.data(), z.size(), out, err));
    CHECK(err.kind == ErrorKind::kDecodingError);
    CHECK_EQ_STR(err.message, kMessage);
  }).join();
  // decode_into writes into the caller's buffer; a stacked chain needs one of
  // its own between the stages.
  std::string stacked = gzip_encode(zlibw_encode(plain));
  auto chain = make({"deflate", "gzip"});
  std::string dst(plain.size(), '\0');
  const char* in = stacked.data();
  size_t in_len = stacked.size(), got = 0;
  Error err;
  httprs::scratch_failures.store(1);
  CHECK(!chain->decode_into(&in, &in_len, &dst[0], dst.size(), &got, err));
  CHECK(err.kind == ErrorKind::kDecodingError);
  CHECK_EQ_STR(err.message, kMessage);
  CHECK(httprs::scratch_failures.load() == 0);
}

int main() {
  test_no_memory();
  test_round_trips();
  test_empty_input();
  test_stacked();
  test_passthrough();
  test_too_many();
  test_corrupt();
  test_truncated();
  test_multi_member();
  test_bounded();
  test_stacked_bomb();
  test_single_decoder();
  test_decode_into();
  test_size_hint();
  return check_report("test_decode");
}
