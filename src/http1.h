// HTTP/1.1 framing without I/O: request serialisation and a response parser
// over llhttp (strict mode). Bytes in, events out; the connection layer feeds
// it whatever the socket (or TLS session) produced, split anywhere.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "errors.h"
#include "header_block.h"

namespace httprs {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Append "METHOD target HTTP/1.1\r\n" + headers + "\r\n" to `out`. Rejects
// (LocalProtocolError) what h11 rejects: a method or header name that is not
// a token, a target with anything but visible ASCII, a header value with NUL,
// CR, LF, VT or FF, or with leading or trailing whitespace. Used as is for
// requests without a body (CONNECT); requests go through serialize_request.
bool serialize_request_head(std::string& out, std::string_view method, std::string_view target,
                            const HeaderList& headers, Error& err);

// How the request body is delimited on the wire.
enum class BodyFraming {
  kContentLength,  // exactly `content_length` raw bytes (0 when no header asks for a body)
  kChunked,        // chunked transfer coding, ended by the last chunk
};

// What the caller has as a body: bytes known up front, or a stream of chunks
// of unknown total size. No body at all is a fixed body of 0 bytes.
enum class BodyKind { kFixed, kStreamed };

// What serialize_request decided about a request.
struct RequestPlan {
  BodyFraming framing = BodyFraming::kContentLength;
  uint64_t content_length = 0;  // kContentLength: the exact number of body bytes
  bool idempotent = false;      // RFC 9110 9.2.2: safe to send again on a fresh connection
  bool upgrade = false;         // the request carries an Upgrade header
  bool tunnel = false;          // a CONNECT: a 2xx makes the connection the caller's stream
  bool close = false;  // Connection: close (RFC 9112 9.6: no later request on the connection)
};

// Whether a response with `status` to an HTTP/1.1 request with `plan` makes its
// connection the caller's byte stream: a requested 101 (RFC 9110 15.2.2), or a 2xx
// to a CONNECT (9.3.6). The parser stops at such a head.
inline bool switches_protocols(const RequestPlan& plan, int status) {
  return (status == 101 && plan.upgrade) || (plan.tunnel && status >= 200 && status < 300);
}

// Decide the body framing from the request's own headers, the one place that
// does, then serialise the head (as serialize_request_head). The rules are
// h11's, so the server reads exactly one request:
// - Transfer-Encoding must be a single "chunked" (any case); the body, fixed
//   or streamed, is then chunk-framed and any Content-Length is dropped from
//   the head (RFC 9112 6.2: never both headers; h11 would send both);
// - Content-Length values must be decimal and agree (duplicates collapse into
//   one header); a fixed body must have exactly that many bytes;
// - no framing header: the body must be empty (a streamed body is held to 0
//   bytes as it is sent), since the server would read the bytes as the next
//   request.
// `fixed_len` is the fixed body's size (ignored for a streamed body).
bool serialize_request(std::string& out, std::string_view method, std::string_view target,
                       const HeaderList& headers, BodyKind kind, size_t fixed_len,
                       RequestPlan* plan, Error& err);

// serialize_request's checks and framing decision without writing the head:
// a request that may go as HTTP/2 is checked exactly as an HTTP/1.1 one
// (the same LocalProtocolError), and pays for an HTTP/1.1 head only if it
// goes out as HTTP/1.1 (write_planned_head).
bool plan_request(std::string_view method, std::string_view target, const HeaderList& headers,
                  BodyKind kind, size_t fixed_len, RequestPlan* plan, Error& err);
// Append the head serialize_request would have written for a request
// plan_request accepted (the same bytes; nothing is checked again).
void write_planned_head(std::string& out, std::string_view method, std::string_view target,
                        const HeaderList& headers);

// True when the linked llhttp rejects what only a lenient parser accepts
// (bare LF line endings, Content-Length with Transfer-Encoding, ...), checked
// once by parsing such responses. An llhttp 8 built without
// LLHTTP_STRICT_MODE (as a distribution may ship it) is lenient whatever the
// runtime flags say; the Python module refuses to load on such a build.
bool llhttp_is_strict();

// Chunked transfer coding framing for streamed uploads.
void append_chunk_size(std::string& out, size_t n);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

struct ResponseHead {
  int status = 0;
  int http_major = 1;
  int http_minor = 1;
  std::string reason;
  HeaderBlock headers;
  bool has_content_length = false;
  uint64_t content_length = 0;
};

class ResponseParser {
 public:
  enum class Status { kOk, kComplete, kUpgrade, kError };

  class Sink {
   public:
    virtual ~Sink() = default;
    virtual void on_head(ResponseHead&& head) = 0;
    virtual void on_body(const char* data, size_t len) = 0;
    // A chunk of a chunked body ended (its data delivered through on_body).
    virtual void on_chunk_end() {}
  };

  ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Start a new response. `head_request`: the response has no body.
  // `connect_request`: a 2xx ends the message at the head (tunnel).
  // `upgrade_request`: the request asked for a protocol upgrade, so a
  // 101 Switching Protocols ends the message at its head; without it a 101
  // is a protocol error (as in h11).
  void reset(Sink* sink, bool head_request, bool connect_request, bool upgrade_request = false);

  // Feed bytes. kOk: all consumed, want more. kComplete: the final response
  // ended; `*consumed` bytes were used and the rest are extra. kUpgrade: a
  // CONNECT tunnel is established, or the protocol switched (101), after
  // `*consumed` bytes; the rest belong to the new protocol. kError: err set.
  Status feed(const char* data, size_t len, size_t* consumed, Error& err);

  // The peer closed the connection. kComplete when that ends a close-delimited
  // body, else kError with httpx's message for the state we were in.
  Status finish(Error& err);

  bool keep_alive() const { return keep_alive_; }
  bool started() const { return started_; }
  bool head_done() const { return head_done_; }
  uint64_t body_bytes() const { return body_bytes_; }
  // Inside a body framed by Content-Length: the bytes of it still due (so a
  // read of at most that many holds nothing but body). 0 anywhere else: in
  // the head, a chunked or close-delimited body, no body, complete.
  uint64_t length_body_left() const {
    return length_body_ && !complete_ ? body_length_ - body_bytes_ : 0;
  }
  // More body bytes may follow those delivered so far.
  bool body_may_continue() const {
    return !complete_ && !(length_body_ && body_bytes_ >= body_length_);
  }

 private:
  static int on_message_begin(llhttp_t* p);
  static int on_status(llhttp_t* p, const char* at, size_t len);
  // Refuses a reason phrase with NUL, VT or FF, which strict llhttp lets
  // through and h11 rejects ("illegal status line").
  static int on_status_complete(llhttp_t* p);
  static int on_header_field(llhttp_t* p, const char* at, size_t len);
  static int on_header_field_complete(llhttp_t* p);
  static int on_header_value(llhttp_t* p, const char* at, size_t len);
  static int on_header_value_complete(llhttp_t* p);
  static int on_headers_complete(llhttp_t* p);
  // The last chunk's header pauses the parser: the trailer section follows,
  // where feed() looks for folds again.
  static int on_chunk_header(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, size_t len);
  static int on_chunk_complete(llhttp_t* p);
  static int on_message_complete(llhttp_t* p);

  // Bound on the size of a response head (status line and fields). httpcore
  // lets h11 buffer 100 KiB; a little more is accepted here, beyond it the
  // response is rejected.
  static constexpr size_t kMaxHeadSize = 128 * 1024;
  int count_head(size_t len);
  // The head's Content-Length field just parsed, h11's way (a list of one value, or a
  // repeat of the first field's): sets llhttp's length, or user_error_ and false.
  bool take_length(llhttp_t* p);
  // llhttp_init, then every lenient flag explicitly off.
  void init_parser();

  // Obsolete line folding (RFC 9112 5.2): a field value continued on a line
  // that starts with SP or HTAB. A user agent replaces each fold (CRLF and the
  // whitespace run after it) with one SP, as h11 does; llhttp 9 rejects folds
  // unless lenient and llhttp 8 keeps their whitespace, so feed() hands llhttp
  // one SP in place of each fold and llhttp never sees one. Only inside a
  // field's value (a head's or a trailer section's): never in a status line
  // or a body. A fold may be split anywhere across feed() calls.
  enum class Fold {
    kNone,      // not in a fold
    kHeldCr,    // the last byte was a CR ending a value: an LF and SP/HTAB next make a fold
    kHeldCrLf,  // ... CR LF ending a value: an SP or HTAB next makes a fold
    kSkipWsp,   // a fold went to llhttp as SP: dropping the rest of its whitespace run
  };
  // Whether feed() looks for folds: in a head (interim ones too) or a trailer
  // section. A body is handed to llhttp as it is.
  bool in_fields() const { return !head_done_ || trailers_; }
  // Bytes to llhttp. llhttp's result, with `*used` bytes of `at` parsed. The
  // pause at the last chunk's header is resumed here: HPE_OK with *used < len.
  llhttp_errno_t execute(const char* at, size_t len, size_t* used);
  // Advance a fold from feed() at data[*pos]. HPE_OK or llhttp's (or the head
  // bound's) error.
  llhttp_errno_t step_fold(const char* data, size_t len, size_t* pos);
  // feed()'s result for llhttp's `rc` (not HPE_OK) with `used` bytes of the input consumed.
  Status stop(llhttp_errno_t rc, size_t used, size_t* consumed, Error& err);

  llhttp_t parser_;
  llhttp_settings_t settings_;
  Sink* sink_ = nullptr;
  ResponseHead head_;
  bool head_request_ = false;
  bool connect_request_ = false;
  bool upgrade_request_ = false;
  bool switched_ = false;   // a requested 101, or a 2xx to CONNECT: the rest is not HTTP
  bool started_ = false;    // any byte of a response seen
  bool head_done_ = false;  // final (non-1xx) head delivered
  bool complete_ = false;
  bool interim_ = false;     // current message is a 1xx
  bool status_next_ = true;  // a status line starts at the next byte (first, or after a 1xx)
  bool keep_alive_ = false;
  bool length_body_ = false;  // the final response's body is framed by Content-Length
  uint64_t body_length_ = 0;  // ... of this many bytes
  uint64_t body_bytes_ = 0;
  size_t head_bytes_ = 0;
  Fold fold_ = Fold::kNone;
  bool value_open_ = false;    // llhttp is inside a field's value (its name and colon seen)
  bool trailers_ = false;      // in a chunked body's trailer section
  char last_byte_ = 0;         // the last byte of the previous feed()
  size_t last_fields_ = 0;     // fields of the last final head (room is made for as many)
  size_t last_text_ = 0;       // ... and bytes of their names and values
  bool length_field_ = false;  // the field being parsed is a Content-Length (take_length)
  std::string user_error_;
};

}  // namespace httprs
