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

namespace httprs {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Append "METHOD target HTTP/1.1\r\n" + headers + "\r\n" to `out`. Rejects
// methods that are not tokens, header names that are not tokens and values
// holding CR, LF or NUL (LocalProtocolError), so nothing can be smuggled.
bool serialize_request_head(std::string& out, std::string_view method, std::string_view target,
                            const HeaderList& headers, Error& err);

// Chunked transfer coding framing for streamed uploads.
void append_chunk_size(std::string& out, size_t n);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

struct ResponseHead {
  int status = 0;
  int http_major = 1;
  int http_minor = 1;
  std::string reason;
  HeaderList headers;
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
  };

  ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Start a new response. `head_request`: the response has no body.
  // `connect_request`: a 2xx ends the message at the head (tunnel).
  void reset(Sink* sink, bool head_request, bool connect_request);

  // Feed bytes. kOk: all consumed, want more. kComplete: the final response
  // ended; `*consumed` bytes were used and the rest are extra. kUpgrade: a
  // CONNECT tunnel is established after `*consumed` bytes. kError: err set.
  Status feed(const char* data, size_t len, size_t* consumed, Error& err);

  // The peer closed the connection. kComplete when that ends a close-delimited
  // body, else kError with httpx's message for the state we were in.
  Status finish(Error& err);

  bool keep_alive() const { return keep_alive_; }
  bool started() const { return started_; }
  bool head_done() const { return head_done_; }
  uint64_t body_bytes() const { return body_bytes_; }

 private:
  static int on_message_begin(llhttp_t* p);
  static int on_status(llhttp_t* p, const char* at, size_t len);
  static int on_header_field(llhttp_t* p, const char* at, size_t len);
  static int on_header_value(llhttp_t* p, const char* at, size_t len);
  static int on_header_value_complete(llhttp_t* p);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, size_t len);
  static int on_message_complete(llhttp_t* p);

  // Bound on the size of a response head (status line and fields). httpcore
  // lets h11 buffer 100 KiB; a little more is accepted here, beyond it the
  // response is rejected.
  static constexpr size_t kMaxHeadSize = 128 * 1024;
  int count_head(size_t len);

  llhttp_t parser_;
  llhttp_settings_t settings_;
  Sink* sink_ = nullptr;
  ResponseHead head_;
  std::string field_;
  std::string value_;
  bool in_value_ = false;
  bool head_request_ = false;
  bool connect_request_ = false;
  bool started_ = false;    // any byte of a response seen
  bool head_done_ = false;  // final (non-1xx) head delivered
  bool complete_ = false;
  bool interim_ = false;  // current message is a 1xx
  bool keep_alive_ = false;
  uint64_t body_bytes_ = 0;
  size_t head_bytes_ = 0;
  std::string user_error_;
};

}  // namespace httprs
