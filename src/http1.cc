#include "http1.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace httprs {

namespace {

// RFC 9110 token characters, as a table (a lookup per byte of every header
// name a request carries).
struct TokenTable {
  bool tchar[256];
  constexpr TokenTable() : tchar() {
    for (int c = 0; c < 256; c++)
      tchar[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    for (char c : {'!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~'})
      tchar[static_cast<unsigned char>(c)] = true;
  }
};
constexpr TokenTable kTokens;

bool is_tchar(unsigned char c) { return kTokens.tchar[c]; }

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

// h11's field-value: visible bytes (obs-text included) separated by runs of
// SP / HTAB. NUL, CR, LF, VT and FF are never allowed (Python's bytes \s).
bool is_safe_value(std::string_view s) {
  for (unsigned char c : s)
    if (c == '\r' || c == '\n' || c == '\0' || c == '\v' || c == '\f') return false;
  // Field values carry no leading or trailing whitespace (RFC 9110 5.5).
  if (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.back() == ' ' || s.back() == '\t'))
    return false;
  return true;
}

// Python's repr() of a bytes object, as h11 puts it in its messages.
std::string bytes_repr(std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out = "b";
  out += quote;
  for (unsigned char c : s) {
    if (c == static_cast<unsigned char>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

// ASCII only, whatever the process locale (header names are compared with
// ASCII names).
constexpr unsigned char ascii_lower(unsigned char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++)
    if (ascii_lower(static_cast<unsigned char>(a[i])) !=
        ascii_lower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// The value of the first field named `name` (any case) in `fields`; empty if none.
std::string_view first_value(const HeaderBlock& fields, std::string_view name) {
  for (size_t i = 0; i < fields.size(); i++)
    if (iequals(fields.name(i), name)) return fields.value(i);
  return {};
}

// h11's request-target: one or more visible ASCII characters.
bool is_safe_target(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (c <= 0x20 || c >= 0x7f) return false;
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 9110 9.2.2: methods whose effect is the same when sent twice.
bool is_idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

// Whether a Connection header value lists the "close" option (any case).
bool lists_close(std::string_view value) {
  while (true) {
    size_t comma = value.find(',');
    if (iequals(trim_ows(value.substr(0, comma)), "close")) return true;
    if (comma == std::string_view::npos) return false;
    value.remove_prefix(comma + 1);
  }
}

// One Content-Length header value, h11's way: a comma-separated list whose
// members must all be the same run of at most 20 digits. On success `digits`
// is that run and `n` its value.
bool parse_content_length(std::string_view value, std::string_view* digits, uint64_t* n,
                          Error& err) {
  std::string_view first;
  bool have = false;
  while (true) {
    size_t comma = value.find(',');
    std::string_view item = trim_ows(value.substr(0, comma));
    if (have && item != first) {
      err.set(ErrorKind::kLocalProtocolError, "conflicting Content-Length headers");
      return false;
    }
    first = item;
    have = true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  uint64_t v = 0;
  bool ok = !first.empty() && first.size() <= 20;
  for (unsigned char c : first) {
    if (!ok) break;
    if (c < '0' || c > '9' || v > (UINT64_MAX - (c - '0')) / 10) {
      ok = false;
      break;
    }
    v = v * 10 + (c - '0');
  }
  if (!ok) {
    err.set(ErrorKind::kLocalProtocolError, "bad Content-Length");
    return false;
  }
  *digits = first;
  *n = v;
  return true;
}

// The framing headers of a request, validated.
struct FramingHeaders {
  bool chunked = false;
  bool has_length = false;
  std::string_view length_digits;
  uint64_t length = 0;
  bool upgrade = false;
  bool close = false;
};

bool read_framing_headers(const HeaderList& headers, FramingHeaders* out, Error& err) {
  for (const auto& [name, value] : headers) {
    if (iequals(name, "transfer-encoding")) {
      if (out->chunked) {
        err.set(ErrorKind::kLocalProtocolError, "multiple Transfer-Encoding headers");
        return false;
      }
      if (!iequals(value, "chunked")) {
        err.set(ErrorKind::kLocalProtocolError, "Only Transfer-Encoding: chunked is supported");
        return false;
      }
      out->chunked = true;
    } else if (iequals(name, "content-length")) {
      std::string_view digits;
      uint64_t n = 0;
      if (!parse_content_length(value, &digits, &n, err)) return false;
      if (out->has_length && digits != out->length_digits) {
        err.set(ErrorKind::kLocalProtocolError, "conflicting Content-Length headers");
        return false;
      }
      out->has_length = true;
      out->length_digits = digits;
      out->length = n;
    } else if (iequals(name, "upgrade") && !trim_ows(value).empty()) {
      out->upgrade = true;
    } else if (iequals(name, "connection") && lists_close(value)) {
      out->close = true;
    }
  }
  return true;
}

ResponseParser* self(llhttp_t* p) { return static_cast<ResponseParser*>(p->data); }

constexpr char kCrLf[] = "\r\n";

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// The first CR in [p, end) where feed() stops to look: CR LF then SP or HTAB
// (a fold, if it ends a value), CR LF CR (an empty line next: the end of the
// head), or a CR or CR LF cut short by `end` (the next bytes decide).
const char* find_line_break(const char* p, const char* end) {
  while (p < end) {
    p = static_cast<const char*>(std::memchr(p, '\r', static_cast<size_t>(end - p)));
    if (p == nullptr) return nullptr;
    if (end - p == 1 || (p[1] == '\n' && (end - p == 2 || is_wsp(p[2]) || p[2] == '\r'))) return p;
    p++;
  }
  return nullptr;
}

}  // namespace

namespace {

// How write_head treats the framing headers: as given (CONNECT), or as the
// plan says (one normalised Content-Length, or chunked and no Content-Length).
struct HeadRewrite {
  bool active = false;
  bool chunked = false;
  std::string_view length_digits;
};

size_t count_named(const HeaderList& headers, std::string_view name) {
  size_t n = 0;
  for (const auto& header : headers) n += iequals(header.first, name);
  return n;
}

// Check the head as h11 would (method, target, one Host, every name and
// value) and, with `out`, append it. Without `out` nothing is written: an
// HTTP/2 request is checked the same way, and its HTTP/1.1 head is written
// only if it goes out as HTTP/1.1 after all.
bool write_head(std::string* out, std::string_view method, std::string_view target,
                const HeaderList& headers, const HeadRewrite& rw, Error& err) {
  if (!is_token(method)) {
    err.set(ErrorKind::kLocalProtocolError, "Illegal method characters");
    return false;
  }
  if (!is_safe_target(target)) {
    err.set(ErrorKind::kLocalProtocolError, "Illegal target characters");
    return false;
  }
  if (count_named(headers, "host") > 1) {
    // Two Host headers let two hops disagree on the origin (h11 refuses them too).
    err.set(ErrorKind::kLocalProtocolError, "Found multiple Host: headers");
    return false;
  }
  if (out != nullptr) {
    size_t need = method.size() + target.size() + 14;
    for (const auto& [name, value] : headers) need += name.size() + value.size() + 4;
    out->reserve(out->size() + need);
    out->append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  }
  // Host goes first after the request line (RFC 9110 7.2), as h11 writes it.
  bool length_written = false;
  for (int pass = 0; pass < 2; pass++) {
    for (const auto& [name, value] : headers) {
      if (iequals(name, "host") != (pass == 0)) continue;
      if (!is_token(name)) {
        err.set(ErrorKind::kLocalProtocolError, "Illegal header name " + bytes_repr(name));
        return false;
      }
      if (!is_safe_value(value)) {
        err.set(ErrorKind::kLocalProtocolError, "Illegal header value " + bytes_repr(value));
        return false;
      }
      if (out == nullptr) continue;  // checking only
      std::string_view v = value;
      if (rw.active && iequals(name, "content-length")) {
        if (rw.chunked || length_written) continue;
        length_written = true;
        v = rw.length_digits;
      } else if (rw.active && iequals(name, "transfer-encoding")) {
        v = "chunked";
      }
      out->append(name).append(": ").append(v).append("\r\n");
    }
  }
  if (out != nullptr) out->append("\r\n");
  return true;
}

}  // namespace

bool serialize_request_head(std::string& out, std::string_view method, std::string_view target,
                            const HeaderList& headers, Error& err) {
  return write_head(&out, method, target, headers, HeadRewrite(), err);
}

namespace {

constexpr size_t kHeadersReserved = 16;       // response header fields room is made for at once
constexpr size_t kHeadersReservedMax = 128;   // ... at most, after a head with more fields
constexpr size_t kHeaderBytesReserved = 512;  // bytes of their names and values
constexpr size_t kHeaderBytesReservedMax = 16 * 1024;

HeadRewrite planned_rewrite(const FramingHeaders& fh) {
  HeadRewrite rw;
  rw.active = true;
  rw.chunked = fh.chunked;
  rw.length_digits = fh.length_digits;
  return rw;
}

// serialize_request, writing the head into `out` when it is not null.
bool plan_and_write(std::string* out, std::string_view method, std::string_view target,
                    const HeaderList& headers, BodyKind kind, size_t fixed_len, RequestPlan* plan,
                    Error& err) {
  FramingHeaders fh;
  if (!read_framing_headers(headers, &fh, err)) return false;
  RequestPlan p;
  p.idempotent = is_idempotent(method);
  p.upgrade = fh.upgrade;
  p.tunnel = method == "CONNECT";
  p.close = fh.close;
  if (fh.chunked) {
    p.framing = BodyFraming::kChunked;
  } else {
    p.framing = BodyFraming::kContentLength;
    p.content_length = fh.has_length ? fh.length : 0;
    if (kind == BodyKind::kFixed && fixed_len != p.content_length) {
      err.set(ErrorKind::kLocalProtocolError, fixed_len < p.content_length
                                                  ? "Too little data for declared Content-Length"
                                                  : "Too much data for declared Content-Length");
      return false;
    }
  }
  if (!write_head(out, method, target, headers, planned_rewrite(fh), err)) return false;
  *plan = p;
  return true;
}

}  // namespace

bool serialize_request(std::string& out, std::string_view method, std::string_view target,
                       const HeaderList& headers, BodyKind kind, size_t fixed_len,
                       RequestPlan* plan, Error& err) {
  return plan_and_write(&out, method, target, headers, kind, fixed_len, plan, err);
}

bool plan_request(std::string_view method, std::string_view target, const HeaderList& headers,
                  BodyKind kind, size_t fixed_len, RequestPlan* plan, Error& err) {
  return plan_and_write(nullptr, method, target, headers, kind, fixed_len, plan, err);
}

void write_planned_head(std::string& out, std::string_view method, std::string_view target,
                        const HeaderList& headers) {
  FramingHeaders fh;
  Error ignored;  // plan_request accepted these headers: nothing fails here
  read_framing_headers(headers, &fh, ignored);
  write_head(&out, method, target, headers, planned_rewrite(fh), ignored);
}

void append_chunk_size(std::string& out, size_t n) {
  char buf[32];
  int len = std::snprintf(buf, sizeof buf, "%zx\r\n", n);
  out.append(buf, static_cast<size_t>(len));
}

ResponseParser::ResponseParser() {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &ResponseParser::on_message_begin;
  settings_.on_status = &ResponseParser::on_status;
  settings_.on_status_complete = &ResponseParser::on_status_complete;
  settings_.on_header_field = &ResponseParser::on_header_field;
  settings_.on_header_field_complete = &ResponseParser::on_header_field_complete;
  settings_.on_header_value = &ResponseParser::on_header_value;
  settings_.on_header_value_complete = &ResponseParser::on_header_value_complete;
  settings_.on_headers_complete = &ResponseParser::on_headers_complete;
  settings_.on_chunk_header = &ResponseParser::on_chunk_header;
  settings_.on_body = &ResponseParser::on_body;
  settings_.on_chunk_complete = &ResponseParser::on_chunk_complete;
  settings_.on_message_complete = &ResponseParser::on_message_complete;
  init_parser();
}

void ResponseParser::init_parser() {
  llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
  parser_.data = this;
  // Strict whatever the build: every lenient mode this llhttp knows, off.
  llhttp_set_lenient_headers(&parser_, 0);
  llhttp_set_lenient_chunked_length(&parser_, 0);
  llhttp_set_lenient_keep_alive(&parser_, 0);
#if LLHTTP_VERSION_MAJOR >= 8
  llhttp_set_lenient_transfer_encoding(&parser_, 0);
#endif
#if LLHTTP_VERSION_MAJOR >= 9
  llhttp_set_lenient_version(&parser_, 0);
  llhttp_set_lenient_data_after_close(&parser_, 0);
  llhttp_set_lenient_optional_lf_after_cr(&parser_, 0);
  llhttp_set_lenient_optional_crlf_after_chunk(&parser_, 0);
#endif
#if LLHTTP_VERSION_MAJOR > 9 || (LLHTTP_VERSION_MAJOR == 9 && LLHTTP_VERSION_MINOR >= 1)
  llhttp_set_lenient_optional_cr_before_lf(&parser_, 0);
  llhttp_set_lenient_spaces_after_chunk_size(&parser_, 0);
#endif
  parser_.lenient_flags = 0;  // and any flag newer than the setters above
}

void ResponseParser::reset(Sink* sink, bool head_request, bool connect_request,
                           bool upgrade_request) {
  init_parser();
  sink_ = sink;
  head_ = ResponseHead();
  head_request_ = head_request;
  connect_request_ = connect_request;
  upgrade_request_ = upgrade_request;
  switched_ = false;
  started_ = head_done_ = complete_ = interim_ = keep_alive_ = length_body_ = false;
  status_next_ = true;
  body_length_ = 0;
  body_bytes_ = 0;
  head_bytes_ = 0;
  fold_ = Fold::kNone;
  value_open_ = trailers_ = false;
  length_field_ = false;
  last_byte_ = 0;
  user_error_.clear();
}

int ResponseParser::on_message_begin(llhttp_t* p) {
  ResponseParser* s = self(p);
  s->head_ = ResponseHead();
  // One allocation each for a typical head's fields and their bytes, not one per
  // doubling (both are moved out with the head, so each response starts new ones):
  // room for as many as the last head on this connection had (a server repeats its
  // heads).
  s->head_.headers.reserve(
      std::max(kHeadersReserved, std::min(s->last_fields_, kHeadersReservedMax)),
      std::max(kHeaderBytesReserved, std::min(s->last_text_, kHeaderBytesReservedMax)));
  s->head_bytes_ = 0;
  s->value_open_ = s->trailers_ = false;
  s->length_field_ = false;
  return 0;
}

int ResponseParser::on_status(llhttp_t* p, const char* at, size_t len) {
  ResponseParser* s = self(p);
  s->head_.reason.append(at, len);
  return s->count_head(len);
}

int ResponseParser::on_status_complete(llhttp_t* p) {
  ResponseParser* s = self(p);
  // h11's reason-phrase is *(SP / HTAB / any byte but NUL and whitespace):
  // of the bytes llhttp accepts there, NUL, VT and FF are out.
  if (s->head_.reason.find_first_of(std::string_view("\0\v\f", 3)) != std::string::npos) {
    s->user_error_ = "illegal status line: reason phrase " + bytes_repr(s->head_.reason);
    return -1;
  }
  return 0;
}

int ResponseParser::count_head(size_t len) {
  head_bytes_ += len;
  if (head_bytes_ > kMaxHeadSize) {
    user_error_ = "Receive buffer too long";
    return HPE_USER;
  }
  return 0;
}

int ResponseParser::on_header_field(llhttp_t* p, const char* at, size_t len) {
  ResponseParser* s = self(p);
  // Counted first: the head's bytes never pass the bound (nor the block's offsets).
  int rc = s->count_head(len);
  if (rc == 0) s->head_.headers.append_name(at, len);
  return rc;
}

int ResponseParser::on_header_field_complete(llhttp_t* p) {
  ResponseParser* s = self(p);
  s->value_open_ = true;
  // A head's Content-Length is read here, as h11 reads it, not by llhttp: llhttp refuses
  // a list of one value (`2, 2`) and a repeat in another field, both of which RFC 9112
  // 6.3 lets a recipient take as that value. So llhttp parses its value as any other
  // field's (its header state "general"), and on_header_value_complete sets the length.
  if (!s->head_done_ && iequals(s->head_.headers.pending_name(), "content-length")) {
    s->length_field_ = true;
    p->header_state = 0;
  }
  return 0;
}

int ResponseParser::on_header_value(llhttp_t* p, const char* at, size_t len) {
  ResponseParser* s = self(p);
  int rc = s->count_head(len);
  if (rc == 0) s->head_.headers.append_value(at, len);
  return rc;
}

int ResponseParser::on_header_value_complete(llhttp_t* p) {
  ResponseParser* s = self(p);
  s->value_open_ = false;
  s->head_.headers.end_field();
  // A field name is a token (RFC 9110 5.1): at least one character, as h11 requires.
  const HeaderBlock& fields = s->head_.headers;
  if (fields.name(fields.size() - 1).empty()) {
    s->user_error_ = "illegal header line: empty field name, value " +
                     bytes_repr(fields.value(fields.size() - 1));
    return -1;
  }
  if (s->length_field_) {
    s->length_field_ = false;
    return s->take_length(p) ? 0 : -1;
  }
  return 0;
}

bool ResponseParser::take_length(llhttp_t* p) {
  HeaderBlock& fields = head_.headers;
  std::string_view digits;
  uint64_t n = 0;
  Error err;
  if (!parse_content_length(fields.value(fields.size() - 1), &digits, &n, err)) {
    user_error_ = err.message;
    return false;
  }
  if (p->flags & F_CONTENT_LENGTH) {
    // A repeat: the same digits as the first (kept in their normal form), as h11
    // compares them, and the head keeps one field.
    if (digits != first_value(fields, "content-length")) {
      user_error_ = "conflicting Content-Length headers";
      return false;
    }
    fields.drop_last();
    return true;
  }
  // h11 keeps `2` for `2, 2`; a single value is already in that form.
  if (digits.size() != fields.value(fields.size() - 1).size()) fields.set_last_value(digits);
  p->flags |= F_CONTENT_LENGTH;
  p->content_length = n;
  return true;
}

int ResponseParser::on_chunk_header(llhttp_t* p) {
  if (p->content_length != 0) return 0;
  self(p)->trailers_ = true;
  return HPE_PAUSED;
}

int ResponseParser::on_headers_complete(llhttp_t* p) {
  ResponseParser* s = self(p);
  int status = p->status_code;
  if (status >= 100 && status < 200 && status != 101) {
    // Interim response: skip it, the final one follows. A 1xx never has a body
    // (RFC 9110 15.2, as h11): whatever framing headers it carries, the next byte
    // starts the next response, so tell llhttp to skip the body.
    s->interim_ = true;
    return 1;
  }
  s->interim_ = false;
  s->last_fields_ = s->head_.headers.size();
  s->last_text_ = s->head_.headers.text_size();
  if (status < 100 || status > 999) {
    s->user_error_ = "illegal status code " + std::to_string(status);
    return -1;
  }
  if (status == 101 && !s->upgrade_request_) {
    // h11's words for a switch nobody proposed.
    s->user_error_ = "Received server _SWITCH_UPGRADE event without a pending proposal";
    return -1;
  }
  // Like h11 (and in its words, field by field): the only transfer coding is a
  // single "chunked", in any case, which the head keeps lower-cased as h11 does.
  int te_count = 0;
  HeaderBlock& fields = s->head_.headers;
  for (size_t i = 0; i < fields.size(); i++) {
    if (!iequals(fields.name(i), "transfer-encoding")) continue;
    if (++te_count > 1) {
      s->user_error_ = "multiple Transfer-Encoding headers";
      return -1;
    }
    if (!iequals(fields.value(i), "chunked")) {
      s->user_error_ = "Only Transfer-Encoding: chunked is supported";
      return -1;
    }
    fields.lower_value(i);
  }
  s->head_.status = status;
  s->head_.http_major = p->http_major;
  s->head_.http_minor = p->http_minor;
  if (p->flags & F_CONTENT_LENGTH) {
    s->head_.has_content_length = true;
    s->head_.content_length = p->content_length;
  }
  s->head_done_ = true;
  bool tunnel = s->connect_request_ && status >= 200 && status < 300;
  s->switched_ = status == 101 || tunnel;
  s->sink_->on_head(std::move(s->head_));
  if (s->switched_) return 2;
  if (s->head_request_ || status == 204 || status == 304) return 1;
  // The strict parser refuses Content-Length next to Transfer-Encoding.
  s->length_body_ = (p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED);
  s->body_length_ = p->content_length;
  return 0;
}

int ResponseParser::on_body(llhttp_t* p, const char* at, size_t len) {
  ResponseParser* s = self(p);
  s->body_bytes_ += len;
  s->sink_->on_body(at, len);
  return 0;
}

int ResponseParser::on_chunk_complete(llhttp_t* p) {
  self(p)->sink_->on_chunk_end();
  return 0;
}

int ResponseParser::on_message_complete(llhttp_t* p) {
  ResponseParser* s = self(p);
  if (s->interim_) {
    // Paused (execute resumes): the final response's status line must come next.
    s->interim_ = false;
    s->status_next_ = true;
    return HPE_PAUSED;
  }
  s->complete_ = true;
  // As h11: a response below HTTP/1.1 ends its connection, whatever Connection says;
  // from 1.1 up (`HTTP/2.0` in an HTTP/1 status line too, which llhttp takes as 1.0),
  // `Connection: close` or a body read to the end of the stream ends it.
  const bool from_11 = p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1);
  s->keep_alive_ = from_11 && !(p->flags & F_CONNECTION_CLOSE) && llhttp_message_needs_eof(p) == 0;
  return HPE_PAUSED;
}

llhttp_errno_t ResponseParser::execute(const char* at, size_t len, size_t* used) {
  if (status_next_ && len > 0) {
    status_next_ = false;
    if (at[0] == '\r' || at[0] == '\n') {
      // llhttp skips empty lines before a status line (the first, or the final
      // response's after a 1xx); h11 (httpx) refuses them, and so does RFC 9112
      // (only a server may ignore them, before a request line).
      user_error_ = "illegal response: an empty line where the status line belongs";
      parser_.error = HPE_USER;  // as llhttp leaves a parser a callback failed
      *used = 0;
      return HPE_USER;
    }
  }
  llhttp_errno_t rc = llhttp_execute(&parser_, at, len);
  if (rc == HPE_OK) {
    *used = len;
    return rc;
  }
  const char* pos = llhttp_get_error_pos(&parser_);
  *used = pos ? static_cast<size_t>(pos - at) : len;
  if (rc == HPE_PAUSED && trailers_ && !complete_) {
    // on_chunk_header's pause: the trailer section follows.
    llhttp_resume(&parser_);
    return HPE_OK;
  }
  if (rc == HPE_PAUSED && status_next_) {
    // A 1xx ended (on_message_complete's pause): the caller goes on from *used.
    llhttp_resume(&parser_);
    return HPE_OK;
  }
  return rc;
}

llhttp_errno_t ResponseParser::step_fold(const char* data, size_t len, size_t* pos) {
  size_t used = 0;
  const char c = data[*pos];
  switch (fold_) {
    case Fold::kHeldCr:
      if (c == '\n') {
        fold_ = Fold::kHeldCrLf;
        ++*pos;
        return HPE_OK;
      }
      fold_ = Fold::kNone;
      return execute(kCrLf, 1, &used);  // no fold: the CR goes on as it came
    case Fold::kHeldCrLf:
      if (!is_wsp(c)) {
        fold_ = Fold::kNone;
        return execute(kCrLf, 2, &used);  // the value's line ended
      }
      fold_ = Fold::kSkipWsp;
      ++*pos;
      return execute(" ", 1, &used);  // the fold, as one SP
    case Fold::kSkipWsp: {
      size_t n = 0;
      while (*pos + n < len && is_wsp(data[*pos + n])) n++;
      *pos += n;
      if (*pos < len) fold_ = Fold::kNone;
      // Dropped, but part of the head all the same.
      if (count_head(n) == 0) return HPE_OK;
      parser_.error = HPE_USER;  // as llhttp leaves a parser a callback failed
      return HPE_USER;
    }
    case Fold::kNone:
      break;
  }
  return HPE_OK;
}

ResponseParser::Status ResponseParser::feed(const char* data, size_t len, size_t* consumed,
                                            Error& err) {
  *consumed = 0;
  if (len == 0) return Status::kOk;
  started_ = true;
  size_t pos = 0;   // data[0, pos) went to llhttp (or into a fold)
  size_t scan = 0;  // where the next fold may start (>= pos)
  llhttp_errno_t rc = HPE_OK;
  while (pos < len) {
    if (fold_ != Fold::kNone) {
      rc = step_fold(data, len, &pos);
      if (rc != HPE_OK) return stop(rc, pos, consumed, err);
      scan = pos;
      continue;
    }
    const char* cr = in_fields() ? find_line_break(data + scan, data + len) : nullptr;
    size_t end = len;  // llhttp gets data[pos, end)
    bool blank = false;
    if (cr != nullptr) {
      end = static_cast<size_t>(cr - data);
      // An empty line next: to its end, so that a body after a whole head is not scanned.
      blank = len - end >= 3 && cr[2] == '\r';
      if (blank) end = std::min(end + 4, len);
    }
    if (end > pos) {
      size_t used = 0;
      rc = execute(data + pos, end - pos, &used);
      if (rc != HPE_OK) return stop(rc, pos + used, consumed, err);
      bool paused = used < end - pos;  // at the last chunk: the trailers follow
      pos += used;
      if (paused || blank) {
        scan = pos;
        continue;
      }
    }
    if (cr == nullptr) break;
    // llhttp has every byte before the CR: a fold if the CR ends a field's value
    // line (not the empty line after one, which ends the head).
    const char prev = pos > 0 ? data[pos - 1] : last_byte_;
    if (value_open_ && prev != '\n') {
      fold_ = Fold::kHeldCr;
      pos++;
    }
    scan = pos + 1;
  }
  last_byte_ = data[len - 1];
  *consumed = len;
  return Status::kOk;
}

ResponseParser::Status ResponseParser::stop(llhttp_errno_t rc, size_t used, size_t* consumed,
                                            Error& err) {
  if (rc == HPE_PAUSED && complete_ && !switched_) {
    *consumed = used;
    return Status::kComplete;
  }
  if (rc == HPE_PAUSED_UPGRADE || (rc == HPE_PAUSED && complete_ && switched_)) {
    *consumed = used;
    complete_ = true;
    keep_alive_ = !switched_;  // a switched connection never goes back to HTTP/1.1
    return Status::kUpgrade;
  }
  const char* reason = llhttp_get_error_reason(&parser_);
  std::string msg;
  if (!user_error_.empty()) {
    msg = user_error_;
  } else {
    msg = "illegal response";
    if (reason && *reason) msg += std::string(": ") + reason;
  }
  err.set(ErrorKind::kRemoteProtocolError, msg);
  return Status::kError;
}

ResponseParser::Status ResponseParser::finish(Error& err) {
  if (complete_) return Status::kComplete;
  if (!started_ ||
      (!head_done_ && body_bytes_ == 0 && head_.headers.empty() && parser_.status_code == 0)) {
    err.set(ErrorKind::kRemoteProtocolError, "Server disconnected without sending a response.");
    return Status::kError;
  }
  if (head_done_ && llhttp_message_needs_eof(&parser_)) {
    llhttp_errno_t rc = llhttp_finish(&parser_);
    if (rc == HPE_OK || (rc == HPE_PAUSED && complete_)) {
      complete_ = true;
      keep_alive_ = false;
      return Status::kComplete;
    }
  }
  if (head_done_ && head_.has_content_length) {
    err.set(ErrorKind::kRemoteProtocolError,
            "peer closed connection without sending complete message body (received " +
                std::to_string(body_bytes_) + " bytes, expected " +
                std::to_string(head_.content_length) + ")");
    return Status::kError;
  }
  if (head_done_) {
    err.set(ErrorKind::kRemoteProtocolError,
            "peer closed connection without sending complete message body (incomplete chunked "
            "read)");
    return Status::kError;
  }
  err.set(ErrorKind::kRemoteProtocolError, "Server disconnected without sending a response.");
  return Status::kError;
}

namespace {

// Parses one response and says whether llhttp accepted it all.
class ProbeSink : public ResponseParser::Sink {
 public:
  void on_head(ResponseHead&&) override {}
  void on_body(const char*, size_t) override {}
};

bool parser_accepts(std::string_view response) {
  ProbeSink sink;
  ResponseParser parser;
  parser.reset(&sink, false, false);
  size_t used = 0;
  Error err;
  ResponseParser::Status st = parser.feed(response.data(), response.size(), &used, err);
  if (st == ResponseParser::Status::kOk) st = parser.finish(err);
  return st == ResponseParser::Status::kComplete;
}

}  // namespace

bool llhttp_is_strict() {
  static const bool strict = [] {
    // Each of these is accepted only by a lenient llhttp.
    static const char* const kLenientOnly[] = {
        // bare LF line endings
        "HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
        // Content-Length together with Transfer-Encoding
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        "2\r\nok\r\n0\r\n\r\n",
        // a chunk without its CRLF
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n",
        // a control character in a header value
        "HTTP/1.1 200 OK\r\nX: a\x01b\r\nContent-Length: 0\r\n\r\n",
    };
    if (!parser_accepts("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) return false;
    for (const char* r : kLenientOnly)
      if (parser_accepts(r)) return false;
    return true;
  }();
  return strict;
}

}  // namespace httprs
