#include "http1.h"

#include <cctype>
#include <cstdio>

namespace httprs {

namespace {

// RFC 9110 token characters.
bool is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

bool is_safe_value(std::string_view s) {
  for (unsigned char c : s)
    if (c == '\r' || c == '\n' || c == '\0') return false;
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

bool is_chunked_last(std::string_view value) {
  // The last coding in a Transfer-Encoding list.
  size_t comma = value.rfind(',');
  std::string_view last = comma == std::string_view::npos ? value : value.substr(comma + 1);
  while (!last.empty() && (last.front() == ' ' || last.front() == '\t')) last.remove_prefix(1);
  while (!last.empty() && (last.back() == ' ' || last.back() == '\t')) last.remove_suffix(1);
  if (last.size() != 7) return false;
  const char* want = "chunked";
  for (size_t i = 0; i < 7; i++)
    if (std::tolower(static_cast<unsigned char>(last[i])) != want[i]) return false;
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

bool is_safe_target(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (c <= 0x20 || c == 0x7f) return false;
  return true;
}

ResponseParser* self(llhttp_t* p) { return static_cast<ResponseParser*>(p->data); }

}  // namespace

bool serialize_request_head(std::string& out, std::string_view method, std::string_view target,
                            const HeaderList& headers, Error& err) {
  if (!is_token(method)) {
    err.set(ErrorKind::kLocalProtocolError, "Illegal method characters");
    return false;
  }
  if (!is_safe_target(target)) {
    err.set(ErrorKind::kLocalProtocolError, "Illegal target characters");
    return false;
  }
  size_t need = method.size() + target.size() + 14;
  for (const auto& [name, value] : headers) need += name.size() + value.size() + 4;
  out.reserve(out.size() + need);
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  // Host goes first after the request line (RFC 9110 7.2), as h11 writes it.
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
      out.append(name).append(": ").append(value).append("\r\n");
    }
  }
  out.append("\r\n");
  return true;
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
  settings_.on_header_field = &ResponseParser::on_header_field;
  settings_.on_header_value = &ResponseParser::on_header_value;
  settings_.on_header_value_complete = &ResponseParser::on_header_value_complete;
  settings_.on_headers_complete = &ResponseParser::on_headers_complete;
  settings_.on_body = &ResponseParser::on_body;
  settings_.on_message_complete = &ResponseParser::on_message_complete;
  llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
  parser_.data = this;
}

void ResponseParser::reset(Sink* sink, bool head_request, bool connect_request) {
  llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
  parser_.data = this;
  sink_ = sink;
  head_ = ResponseHead();
  field_.clear();
  value_.clear();
  in_value_ = false;
  head_request_ = head_request;
  connect_request_ = connect_request;
  started_ = head_done_ = complete_ = interim_ = keep_alive_ = false;
  body_bytes_ = 0;
  head_bytes_ = 0;
  user_error_.clear();
}

int ResponseParser::on_message_begin(llhttp_t* p) {
  ResponseParser* s = self(p);
  s->head_ = ResponseHead();
  s->field_.clear();
  s->value_.clear();
  s->in_value_ = false;
  s->head_bytes_ = 0;
  return 0;
}

int ResponseParser::on_status(llhttp_t* p, const char* at, size_t len) {
  ResponseParser* s = self(p);
  s->head_.reason.append(at, len);
  return s->count_head(len);
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
  if (s->in_value_) {
    s->in_value_ = false;
    s->field_.clear();
  }
  s->field_.append(at, len);
  return s->count_head(len);
}

int ResponseParser::on_header_value(llhttp_t* p, const char* at, size_t len) {
  ResponseParser* s = self(p);
  s->in_value_ = true;
  s->value_.append(at, len);
  return s->count_head(len);
}

int ResponseParser::on_header_value_complete(llhttp_t* p) {
  ResponseParser* s = self(p);
  // Trailing whitespace is not part of the value (RFC 9110 5.5).
  while (!s->value_.empty() && (s->value_.back() == ' ' || s->value_.back() == '\t'))
    s->value_.pop_back();
  s->head_.headers.emplace_back(std::move(s->field_), std::move(s->value_));
  s->field_.clear();
  s->value_.clear();
  s->in_value_ = false;
  return 0;
}

int ResponseParser::on_headers_complete(llhttp_t* p) {
  ResponseParser* s = self(p);
  int status = p->status_code;
  if (status >= 100 && status < 200 && status != 101) {
    // Interim response: skip it, the final one follows.
    s->interim_ = true;
    return 0;
  }
  s->interim_ = false;
  for (const auto& [name, value] : s->head_.headers) {
    if (iequals(name, "transfer-encoding") && !is_chunked_last(value)) {
      s->user_error_ = "Unsupported Transfer-Encoding " + bytes_repr(value);
      return -1;
    }
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
  s->sink_->on_head(std::move(s->head_));
  if (tunnel) return 2;
  if (s->head_request_ || status == 204 || status == 304) return 1;
  return 0;
}

int ResponseParser::on_body(llhttp_t* p, const char* at, size_t len) {
  ResponseParser* s = self(p);
  s->body_bytes_ += len;
  s->sink_->on_body(at, len);
  return 0;
}

int ResponseParser::on_message_complete(llhttp_t* p) {
  ResponseParser* s = self(p);
  if (s->interim_) {
    s->interim_ = false;
    return 0;
  }
  s->complete_ = true;
  s->keep_alive_ = llhttp_should_keep_alive(p) != 0;
  return HPE_PAUSED;
}

ResponseParser::Status ResponseParser::feed(const char* data, size_t len, size_t* consumed,
                                            Error& err) {
  *consumed = 0;
  if (len == 0) return Status::kOk;
  started_ = true;
  llhttp_errno_t rc = llhttp_execute(&parser_, data, len);
  if (rc == HPE_OK) {
    *consumed = len;
    return Status::kOk;
  }
  const char* pos = llhttp_get_error_pos(&parser_);
  size_t used = pos ? static_cast<size_t>(pos - data) : len;
  if (rc == HPE_PAUSED && complete_) {
    *consumed = used;
    return Status::kComplete;
  }
  if (rc == HPE_PAUSED_UPGRADE) {
    *consumed = used;
    keep_alive_ = true;
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
            "peer closed connection without sending complete message body: received " +
                std::to_string(body_bytes_) + " bytes, expected " +
                std::to_string(head_.content_length));
    return Status::kError;
  }
  if (head_done_) {
    err.set(ErrorKind::kRemoteProtocolError,
            "peer closed connection without sending complete message body: incomplete chunked "
            "read");
    return Status::kError;
  }
  err.set(ErrorKind::kRemoteProtocolError, "Server disconnected without sending a response.");
  return Status::kError;
}

}  // namespace httprs
