#include "http2_session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace httprs {

namespace {

// RFC 9113 8.2.2: meaningless in HTTP/2; dropped as httpx (h2) drops them.
bool is_connection_specific(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade";
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

uint8_t* bytes(std::string_view s) {
  return reinterpret_cast<uint8_t*>(const_cast<char*>(s.data()));
}

nghttp2_nv make_nv(std::string_view name, std::string_view value) {
  nghttp2_nv nv;
  nv.name = bytes(name);
  nv.namelen = name.size();
  nv.value = bytes(value);
  nv.valuelen = value.size();
  // Not copied by nghttp2_submit_request: they live in a SentHead that the
  // stream keeps until its HEADERS is written (or never will be).
  nv.flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
  return nv;
}

template <typename T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const { Free(p); }
};
using CallbacksPtr =
    std::unique_ptr<nghttp2_session_callbacks,
                    Freer<nghttp2_session_callbacks, nghttp2_session_callbacks_del>>;
using OptionPtr = std::unique_ptr<nghttp2_option, Freer<nghttp2_option, nghttp2_option_del>>;

}  // namespace

std::string http2_error_name(uint32_t code) {
  const char* name = nghttp2_http2_strerror(code);
  if (std::strcmp(name, "unknown") != 0) return name;
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%x", static_cast<unsigned>(code));
  return buf;
}

namespace {

// One of the user's headers into the block (lower-cased into `out.lowered`):
// Host names the authority (the first one), connection-specific headers are
// left out (RFC 9113 8.2.2). False with `err` set when it may not be sent.
bool add_user_header(const std::string& name, const std::string& value, size_t value_input,
                     Http2HeaderBlock& out, std::string_view& authority, size_t& authority_input,
                     bool& have_host, Error& err) {
  if (!name.empty() && name[0] == ':') {
    // Pseudo-headers are the session's own: never a user's (RFC 9113 8.3).
    err.set(ErrorKind::kLocalProtocolError, "Invalid HTTP/2 header name: " + name);
    return false;
  }
  size_t at = out.lowered.size();
  for (char c : name) out.lowered.push_back(lower(c));
  std::string_view lname(out.lowered.data() + at, name.size());
  if (lname == "host") {
    if (!have_host) {  // the first Host names the authority
      authority = value;
      authority_input = value_input;
    }
    have_host = true;
    return true;
  }
  if (is_connection_specific(lname)) return true;
  if (lname == "te" && !equals_ignore_case(value, "trailers")) {
    err.set(ErrorKind::kLocalProtocolError, "Invalid value for TE header: " + value);
    return false;
  }
  if (!nghttp2_check_header_name(reinterpret_cast<const uint8_t*>(lname.data()), lname.size())) {
    err.set(ErrorKind::kLocalProtocolError, "Invalid HTTP/2 header name: " + name);
    return false;
  }
  out.fields.emplace_back(lname, value);
  out.inputs.push_back(value_input);
  return true;
}

// Every value of the block, pseudo-headers included, as RFC 9113 allows it.
bool check_header_values(const Http2HeaderBlock& out, Error& err) {
  for (const auto& [name, value] : out.fields) {
    if (!nghttp2_check_header_value_rfc9113(reinterpret_cast<const uint8_t*>(value.data()),
                                            value.size())) {
      err.set(ErrorKind::kLocalProtocolError,
              "Invalid HTTP/2 header value for " + std::string(name));
      return false;
    }
  }
  return true;
}

}  // namespace

bool build_http2_headers(const Http2Request& req, Http2HeaderBlock& out, Error& err) {
  out.fields.clear();
  out.inputs.clear();
  out.lowered.clear();
  if (req.method.empty() || req.path.empty()) {
    err.set(ErrorKind::kLocalProtocolError, "HTTP/2 request needs a method and a path");
    return false;
  }
  static const HeaderList kNone;
  const HeaderList& headers = req.headers ? *req.headers : kNone;
  // Every user name lower-cased into one buffer, sized first: the views
  // into it stay valid.
  size_t total = 0;
  for (const auto& [name, value] : headers) total += name.size();
  out.lowered.reserve(total);
  std::string_view authority = req.authority;
  out.fields.reserve(headers.size() + 4);
  out.inputs.reserve(headers.size() + 4);
  out.fields.emplace_back(":method", req.method);
  out.fields.emplace_back(":authority", std::string_view());  // set below
  out.fields.emplace_back(":scheme", req.scheme);
  out.fields.emplace_back(":path", req.path);
  size_t authority_input = Http2HeaderBlock::kAuthority;
  out.inputs.insert(out.inputs.end(), {Http2HeaderBlock::kMethod, authority_input,
                                       Http2HeaderBlock::kScheme, Http2HeaderBlock::kPath});
  bool have_host = false;
  size_t index = 0;
  for (const auto& [name, value] : headers) {
    const size_t value_input = Http2HeaderBlock::kHeaderValues + 2 * index++;
    if (!add_user_header(name, value, value_input, out, authority, authority_input, have_host, err))
      return false;
  }
  out.fields[1].second = authority;
  out.inputs[1] = authority_input;
  if (!check_header_values(out, err)) return false;
  if (authority.empty()) {
    err.set(ErrorKind::kLocalProtocolError, "HTTP/2 request needs an authority");
    return false;
  }
  return true;
}

// A request's header block as nghttp2 reads it (NGHTTP2_NV_FLAG_NO_COPY_*):
// the request's inputs as given, its names lower-cased, and the nv array
// pointing into both (the pseudo-header names are literals). Built and
// checked once for a run of equal requests: a request whose inputs (method,
// scheme, authority, path, every header name and value in order, compared
// byte for byte) equal the last one's sends the same block, as
// build_http2_headers would have built it again from the same inputs. Never
// changed while a stream whose HEADERS has not been written holds it.
struct Http2Session::SentHead {
  std::string given;         // the inputs, in Http2HeaderBlock::Input order
  std::vector<size_t> ends;  // where each input ends in `given`
  std::string lowered;       // the header names lower-cased (the block's)
  std::vector<nghttp2_nv> nva;
  bool valid = false;  // filled completely (a failed fill matches nothing)

  std::string_view input(size_t i) const {
    size_t at = i == 0 ? 0 : ends[i - 1];
    return std::string_view(given.data() + at, ends[i] - at);
  }

  bool matches(const Http2Request& req) const {
    const size_t n = req.headers ? req.headers->size() : 0;
    if (!valid || ends.size() != Http2HeaderBlock::kHeaderValues - 1 + 2 * n) return false;
    if (input(Http2HeaderBlock::kMethod) != req.method ||
        input(Http2HeaderBlock::kScheme) != req.scheme ||
        input(Http2HeaderBlock::kAuthority) != req.authority ||
        input(Http2HeaderBlock::kPath) != req.path)
      return false;
    for (size_t i = 0; i < n; i++) {
      const auto& [name, value] = (*req.headers)[i];
      const size_t at = Http2HeaderBlock::kHeaderValues - 1 + 2 * i;
      if (input(at) != name || input(at + 1) != value) return false;
    }
    return true;
  }

  // The block `block` that build_http2_headers made of `req`.
  void fill(const Http2Request& req, const Http2HeaderBlock& block) {
    valid = false;
    given.clear();
    ends.clear();
    auto put = [this](std::string_view s) {
      given.append(s);
      ends.push_back(given.size());
    };
    put(req.method);
    put(req.scheme);
    put(req.authority);
    put(req.path);
    if (req.headers != nullptr) {
      for (const auto& [name, value] : *req.headers) {
        put(name);
        put(value);
      }
    }
    lowered = block.lowered;
    nva.clear();
    for (size_t i = 0; i < block.size(); i++) {
      std::string_view name = block.name(i);
      if (i >= 4)  // a user's name: the same place in this copy of `lowered`
        name = std::string_view(lowered.data() + (name.data() - block.lowered.data()), name.size());
      nva.push_back(make_nv(name, input(block.inputs[i])));
    }
    valid = true;
  }
};

// What the session knows about one request.
struct Http2Session::Stream {
  enum class State {
    kRequested,  // submitted; waiting for the response head
    kHead,       // final response head reported; body flowing
    kEnded,      // kEnd reported
    kFailed,     // kReset reported
  };
  enum class BodyState { kNone, kSending, kDeferred, kDone };

  int32_t id = 0;
  State state = State::kRequested;
  bool headers_sent = false;   // the request HEADERS frame went out
  bool reset_by_peer = false;  // an RST_STREAM came from the server (else nghttp2 reset it)
  int status = 0;              // :status of the header block being received
  HeaderBlock head;            // the header block being received
  size_t head_size = 0;        // its size as SETTINGS_MAX_HEADER_LIST_SIZE counts it

  Http2Request::Body body_kind = Http2Request::Body::kNone;
  BodyState body = BodyState::kNone;
  const uint8_t* fixed = nullptr;
  size_t fixed_len = 0, fixed_off = 0;
  size_t frame_off = 0;           // where the DATA frame read_body() just sized starts
  std::list<std::string> chunks;  // streamed body waiting for the window (no memory when empty)
  size_t chunk_off = 0;
  bool body_ended = false;  // end_body() was called
  bool want_signalled = false;
  bool progressed = false;  // listed in progressed_
  // Its header block, until nghttp2 has written (or dropped) its HEADERS.
  std::shared_ptr<const SentHead> head_block;

  size_t unconsumed = 0;  // DATA bytes handed out and not yet consume()d
  // The batch (Http2Session::batch_) in which DATA of this stream went into an
  // event's string: later DATA of the batch must too, to stay behind it.
  uint64_t data_queued_in = ~uint64_t{0};

  bool terminal() const { return state == State::kEnded || state == State::kFailed; }
};

void Http2Session::SessionDeleter::operator()(nghttp2_session* s) const { nghttp2_session_del(s); }

// The nghttp2 callbacks: static functions with the session as user data.
struct Http2Session::Callbacks {
  static Http2Session& self(void* user_data) { return *static_cast<Http2Session*>(user_data); }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    if (Stream* s = self(ud).find(frame->hd.stream_id)) {
      s->status = 0;
      s->head.clear();
      // Room for a typical head at once (it becomes the transfer's): grown
      // from nothing, a head of 5 fields took 7 allocations. Trailers are
      // dropped: no room for them.
      if (s->state == Stream::State::kRequested) s->head.reserve(16, 256);
      s->head_size = 0;
    }
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* ud) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Http2Session& h = self(ud);
    Stream* s = h.find(frame->hd.stream_id);
    if (s == nullptr || s->terminal()) return 0;
    // Trailers count against the bound too (an HPACK bomb in them decoded hundreds of
    // megabytes of fields per response), then are dropped.
    s->head_size += namelen + valuelen + 32;
    if (s->head_size > h.config_.max_header_list) {
      h.fail_stream(*s, ErrorKind::kRemoteProtocolError,
                    "HTTP/2 response header block larger than " +
                        std::to_string(h.config_.max_header_list) + " bytes",
                    0, false);
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // nghttp2 resets the stream
    }
    if (s->state != Stream::State::kRequested) return 0;  // trailers: dropped
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      // nghttp2 has checked it is three digits.
      s->status = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
    } else if (!n.empty() && n[0] != ':') {
      s->head.add(n, v);
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    Http2Session& h = self(ud);
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
      case NGHTTP2_DATA:
        h.on_stream_frame(frame->hd.stream_id, frame->hd.type == NGHTTP2_HEADERS,
                          (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0, frame->hd.length == 0);
        break;
      case NGHTTP2_SETTINGS:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) h.on_settings();
        break;
      case NGHTTP2_GOAWAY:
        h.on_goaway(frame->goaway.last_stream_id, frame->goaway.error_code);
        break;
      case NGHTTP2_RST_STREAM:
        if (Stream* s = h.find(frame->hd.stream_id)) s->reset_by_peer = true;
        break;
      default:
        break;
    }
    return 0;
  }

  static int on_data_chunk(nghttp2_session* session, uint8_t, int32_t stream_id,
                           const uint8_t* data, size_t len, void* ud) {
    Http2Session& h = self(ud);
    Stream* s = h.find(stream_id);
    if (s == nullptr || s->terminal()) {
      // Nobody will read it: give the window back at once.
      nghttp2_session_consume(session, stream_id, len);
      return 0;
    }
    // The connection window opens at once: each stream's own window (and
    // the unread bound above it) is what holds a slow reader back, so streams
    // whose readers stopped never starve the others.
    nghttp2_session_consume_connection(session, len);
    s->unconsumed += len;
    Http2Event ev{Http2EventKind::kData, stream_id};
    auto bytes = reinterpret_cast<const char*>(data);
    if (s->data_queued_in != h.batch_ && h.data_sink_ != nullptr &&
        h.data_sink_->take_data(stream_id, bytes, len)) {
      ev.delivered = len;
    } else {
      ev.data.assign(bytes, len);
      s->data_queued_in = h.batch_;
    }
    h.emit(std::move(ev));
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t code, void* ud) {
    Http2Session& h = self(ud);
    h.live_.erase(stream_id);
    if (Stream* s = h.find(stream_id)) h.on_closed(*s, code);
    return 0;
  }

  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    Http2Session& h = self(ud);
    if (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) {
      if (Stream* s = h.find(frame->hd.stream_id)) {
        if (frame->hd.type == NGHTTP2_HEADERS) {
          s->headers_sent = true;
          s->head_block.reset();  // deflated: nghttp2 reads it no more
        }
        if (!s->progressed) {
          s->progressed = true;
          h.progressed_.push_back(s->id);
        }
      }
    } else if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
      // nghttp2 found a connection error in what the server sent.
      std::string_view why(reinterpret_cast<const char*>(frame->goaway.opaque_data),
                           frame->goaway.opaque_data_len);
      h.fail_all(ErrorKind::kRemoteProtocolError, h.connection_error(frame->goaway.error_code, why),
                 true);
    }
    return 0;
  }

  static int on_frame_not_send(nghttp2_session*, const nghttp2_frame* frame, int lib_error,
                               void* ud) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Http2Session& h = self(ud);
    h.live_.erase(frame->hd.stream_id);
    if (Stream* s = h.find(frame->hd.stream_id)) {
      s->head_block.reset();
      // The request never left: another connection may take it.
      h.fail_stream(*s, ErrorKind::kRemoteProtocolError,
                    std::string("HTTP/2 request not sent: ") + nghttp2_strerror(lib_error), 0,
                    true);
    }
    return 0;
  }

  static ssize_t read_body(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                           uint32_t* flags, nghttp2_data_source*, void* ud) {
    Http2Session& h = self(ud);
    Stream* s = h.find(stream_id);
    if (s == nullptr || s->terminal()) return NGHTTP2_ERR_DEFERRED;  // being reset
    if (s->body_kind == Http2Request::Body::kFixed) {
      // Not copied here: send_data() appends these bytes to the output
      // straight from the caller's buffer (one copy, not two).
      (void)buf;
      size_t n = std::min(length, s->fixed_len - s->fixed_off);
      s->frame_off = s->fixed_off;
      if (n > 0) *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
      s->fixed_off += n;
      if (s->fixed_off == s->fixed_len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        s->body = Stream::BodyState::kDone;
      }
      return static_cast<ssize_t>(n);
    }
    return h.read_streamed(*s, buf, length, flags);
  }

  // A fixed body's DATA frame (NGHTTP2_DATA_FLAG_NO_COPY), called by
  // mem_send right after read_body() sized it: the frame header, then the
  // payload from the caller's buffer, into the output flush() is filling.
  static int send_data(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                       size_t length, nghttp2_data_source*, void* ud) {
    Http2Session& h = self(ud);
    Stream* s = h.find(frame->hd.stream_id);
    if (h.flushing_ == nullptr || s == nullptr || s->fixed == nullptr ||
        s->frame_off + length > s->fixed_len)
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // reset that stream
    std::string& out = *h.flushing_;
    size_t pad = frame->data.padlen;
    out.append(reinterpret_cast<const char*>(framehd), 9);
    if (pad > 0) out.push_back(static_cast<char>(pad - 1));
    out.append(reinterpret_cast<const char*>(s->fixed + s->frame_off), length);
    if (pad > 1) out.append(pad - 1, '\0');
    return 0;
  }
};

Http2Session::Http2Session(Http2Config config) : config_(config) {}

// The nghttp2 session goes first: its queued HEADERS point into the
// streams' header blocks (it frees them without reading them).
Http2Session::~Http2Session() { session_.reset(); }

bool Http2Session::init(Error& err) {
  nghttp2_session_callbacks* raw_cbs = nullptr;
  nghttp2_option* raw_opt = nullptr;
  if (nghttp2_session_callbacks_new(&raw_cbs) != 0 || nghttp2_option_new(&raw_opt) != 0) {
    if (raw_cbs) nghttp2_session_callbacks_del(raw_cbs);
    err.set(ErrorKind::kLocalProtocolError, "HTTP/2: out of memory");
    return false;
  }
  CallbacksPtr cbs(raw_cbs);
  OptionPtr opt(raw_opt);
  nghttp2_session_callbacks_set_on_begin_headers_callback(raw_cbs, Callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(raw_cbs, Callbacks::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(raw_cbs, Callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(raw_cbs, Callbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(raw_cbs, Callbacks::on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(raw_cbs, Callbacks::on_frame_send);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(raw_cbs, Callbacks::on_frame_not_send);
  nghttp2_session_callbacks_set_send_data_callback(raw_cbs, Callbacks::send_data);
  nghttp2_option_set_no_auto_window_update(raw_opt, 1);
  nghttp2_option_set_max_reserved_remote_streams(raw_opt, 0);
  // One stream on the wire until the server's first SETTINGS, as httpcore sends:
  // nghttp2 would send up to 100, and a server allowing fewer (h2, hypercorn) ends
  // the connection for the streams beyond its limit. The pool still hands this
  // connection up to kStreamsBeforeSettings requests meanwhile (max_concurrent_streams):
  // nghttp2 holds their HEADERS and sends them as the server's limit allows, so they
  // wait on this connection (with their own timeouts), as httpcore's do.
  nghttp2_option_set_peer_max_concurrent_streams(raw_opt, 1);

  nghttp2_session* session = nullptr;
  int rv = nghttp2_session_client_new2(&session, raw_cbs, this, raw_opt);
  if (rv != 0) {
    err.set(ErrorKind::kLocalProtocolError, std::string("HTTP/2: ") + nghttp2_strerror(rv));
    return false;
  }
  session_.reset(session);
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
       std::min(config_.initial_window, config_.stream_window)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, config_.max_header_list},
  };
  rv = nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings,
                               sizeof settings / sizeof settings[0]);
  if (rv == 0) {
    rv = nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0,
                                               static_cast<int32_t>(config_.connection_window));
  }
  if (rv != 0) {
    err.set(ErrorKind::kLocalProtocolError, std::string("HTTP/2: ") + nghttp2_strerror(rv));
    session_.reset();
    return false;
  }
  // nghttp2 counts 1 until the first SETTINGS (the option above); the pool, more.
  last_max_concurrent_ = kStreamsBeforeSettings;
  return true;
}

Http2Session::Stream* Http2Session::find(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? nullptr : it->second.get();
}

bool Http2Session::feed(const uint8_t* data, size_t len, Error& err) {
  if (!session_ || dead_) {
    err.set(ErrorKind::kReadError, "HTTP/2 connection is closed");
    return false;
  }
  if (opening_.size() < kOpeningKept)
    opening_.append(reinterpret_cast<const char*>(data),
                    std::min(len, kOpeningKept - opening_.size()));
  ssize_t rv = nghttp2_session_mem_recv(session_.get(), data, len);
  if (rv < 0) {
    std::string msg = std::string("HTTP/2 connection error: ") +
                      nghttp2_strerror(static_cast<int>(rv)) + http1_note();
    err.set(ErrorKind::kRemoteProtocolError, msg);
    fail_all(ErrorKind::kRemoteProtocolError, msg, true);
    return false;
  }
  return true;
}

bool Http2Session::flush(std::string& out, Error& err) {
  if (!session_) return true;
  // send_data() appends a fixed body's DATA frames here, in their place.
  struct Target {
    Http2Session& h;
    Target(Http2Session& s, std::string& o) : h(s) { h.flushing_ = &o; }
    ~Target() { h.flushing_ = nullptr; }
  } target(*this, out);
  for (;;) {
    const uint8_t* chunk = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_.get(), &chunk);
    if (n < 0) {
      std::string msg =
          std::string("HTTP/2 session error: ") + nghttp2_strerror(static_cast<int>(n));
      err.set(ErrorKind::kLocalProtocolError, msg);
      fail_all(ErrorKind::kLocalProtocolError, msg, true);
      return false;
    }
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(chunk), static_cast<size_t>(n));
  }
  // Nothing queued: no frame refers to a released stream's header block.
  if (!orphan_heads_.empty() && nghttp2_session_get_outbound_queue_size(session_.get()) == 0)
    orphan_heads_.clear();
  return true;
}

bool Http2Session::want_write() const {
  return session_ && nghttp2_session_want_write(session_.get()) != 0;
}

bool Http2Session::finished() const {
  if (!session_ || dead_) return true;
  return nghttp2_session_want_read(session_.get()) == 0 &&
         nghttp2_session_want_write(session_.get()) == 0;
}

int32_t Http2Session::submit(const Http2Request& req, Error& err) {
  if (!session_ || dead_ || goaway_received_) {
    err.set(ErrorKind::kRemoteProtocolError, "HTTP/2 connection takes no new streams");
    return -1;
  }
  std::shared_ptr<const SentHead> head = head_for(req, err);
  if (head == nullptr) return -1;

  auto stream = std::make_unique<Stream>();
  stream->body_kind = req.body;
  nghttp2_data_provider provider{};
  provider.read_callback = Callbacks::read_body;
  const nghttp2_data_provider* prd = nullptr;
  if (req.body == Http2Request::Body::kStreamed ||
      (req.body == Http2Request::Body::kFixed && req.fixed_len > 0)) {
    prd = &provider;
    stream->body = Stream::BodyState::kSending;
    stream->fixed = req.fixed;
    stream->fixed_len = req.fixed_len;
  }
  int32_t id = nghttp2_submit_request(session_.get(), nullptr, head->nva.data(), head->nva.size(),
                                      prd, nullptr);
  if (id < 0) {
    err.set(id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? ErrorKind::kRemoteProtocolError
                                                      : ErrorKind::kLocalProtocolError,
            std::string("HTTP/2: ") + nghttp2_strerror(id));
    return -1;
  }
  stream->id = id;
  stream->head_block = std::move(head);
  bool streamed = req.body == Http2Request::Body::kStreamed;
  if (streamed) stream->want_signalled = true;
  streams_[id] = std::move(stream);
  live_.insert(id);
  if (streamed) emit(Http2Event{Http2EventKind::kBodyWanted, id});
  return id;
}

std::shared_ptr<const Http2Session::SentHead> Http2Session::head_for(const Http2Request& req,
                                                                     Error& err) {
  if (last_head_ != nullptr && last_head_->matches(req)) return last_head_;
  if (!build_http2_headers(req, block_, err)) return nullptr;
  // In place, unless a stream's HEADERS still waits to be written from it.
  if (last_head_ == nullptr || last_head_.use_count() > 1)
    last_head_ = std::make_shared<SentHead>();
  last_head_->fill(req, block_);
  return last_head_;
}

ssize_t Http2Session::read_streamed(Stream& s, uint8_t* buf, size_t length, uint32_t* flags) {
  size_t n = 0;
  while (n < length && !s.chunks.empty()) {
    std::string& front = s.chunks.front();
    size_t take = std::min(length - n, front.size() - s.chunk_off);
    std::memcpy(buf + n, front.data() + s.chunk_off, take);
    n += take;
    s.chunk_off += take;
    if (s.chunk_off == front.size()) {
      s.chunks.pop_front();
      s.chunk_off = 0;
    }
  }
  if (s.chunks.empty()) {
    if (s.body_ended) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      s.body = Stream::BodyState::kDone;
      return static_cast<ssize_t>(n);
    }
    if (!s.want_signalled) {
      s.want_signalled = true;
      emit(Http2Event{Http2EventKind::kBodyWanted, s.id});
    }
    if (n == 0) {
      s.body = Stream::BodyState::kDeferred;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

bool Http2Session::resume_body(Stream& s, Error& err) {
  if (s.body != Stream::BodyState::kDeferred) return true;
  s.body = Stream::BodyState::kSending;
  int rv = nghttp2_session_resume_data(session_.get(), s.id);
  if (rv != 0 && rv != NGHTTP2_ERR_INVALID_ARGUMENT) {  // the stream may be closing
    err.set(ErrorKind::kLocalProtocolError, std::string("HTTP/2: ") + nghttp2_strerror(rv));
    return false;
  }
  return true;
}

bool Http2Session::push_body(int32_t stream_id, const uint8_t* data, size_t len, Error& err) {
  Stream* s = find(stream_id);
  if (s == nullptr || s->body_kind != Http2Request::Body::kStreamed || s->body_ended) {
    err.set(ErrorKind::kLocalProtocolError, "HTTP/2: no streamed body to add to");
    return false;
  }
  if (s->terminal()) return true;  // the stream failed: the bytes have nowhere to go
  if (len > 0) s->chunks.emplace_back(reinterpret_cast<const char*>(data), len);
  s->want_signalled = false;
  return resume_body(*s, err);
}

bool Http2Session::end_body(int32_t stream_id, Error& err) {
  Stream* s = find(stream_id);
  if (s == nullptr || s->body_kind != Http2Request::Body::kStreamed) {
    err.set(ErrorKind::kLocalProtocolError, "HTTP/2: no streamed body to end");
    return false;
  }
  s->body_ended = true;
  if (s->terminal()) return true;
  return resume_body(*s, err);
}

void Http2Session::consume(int32_t stream_id, size_t n) {
  Stream* s = find(stream_id);
  if (s == nullptr || !session_) return;
  n = std::min(n, s->unconsumed);
  if (n == 0) return;
  s->unconsumed -= n;
  nghttp2_session_consume_stream(session_.get(), stream_id, n);
}

size_t Http2Session::receivable(int32_t stream_id) const {
  if (!session_ || dead_ || live_.count(stream_id) == 0 || want_write()) return 0;
  int32_t stream = nghttp2_session_get_stream_local_window_size(session_.get(), stream_id);
  int32_t connection = nghttp2_session_get_local_window_size(session_.get());
  int32_t least = std::min(stream, connection);
  return least > 0 ? static_cast<size_t>(least) : 0;
}

void Http2Session::open_window(int32_t stream_id) {
  if (!session_ || dead_ || live_.count(stream_id) == 0 ||
      config_.stream_window <= config_.initial_window)
    return;
  // nghttp2 raises its own bound for the stream and queues the WINDOW_UPDATE;
  // bytes received and not yet consume()d stay owed, as before. Should it
  // fail (no memory for the frame), the stream goes on at its initial window.
  (void)nghttp2_session_set_local_window_size(session_.get(), NGHTTP2_FLAG_NONE, stream_id,
                                              static_cast<int32_t>(config_.stream_window));
}

void Http2Session::cancel(int32_t stream_id) {
  Stream* s = find(stream_id);
  if (s == nullptr) return;
  if (session_ && !dead_ && live_.count(stream_id) != 0) {
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
  }
  release(stream_id);
}

void Http2Session::release(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  if (session_ && !dead_ && live_.count(stream_id) != 0) {
    // Released while the stream is open on either side: the response is still
    // coming (nobody will read it), or it ended before the request body was
    // all sent (RFC 9113 8.1). Either way the stream must close, or it keeps
    // a MAX_CONCURRENT_STREAMS slot for good.
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
  }
  // nghttp2 may still hold its HEADERS: cancelled before it was written, or,
  // on a dead session (no RST_STREAM above), written by a later flush().
  if (it->second->head_block != nullptr) orphan_heads_.push_back(std::move(it->second->head_block));
  // Its unread bytes were given back to the connection window on arrival;
  // the stream's own window dies with it.
  streams_.erase(it);
}

std::string Http2Session::goaway_note() const {
  if (!goaway_received_ || goaway_error_ == NGHTTP2_NO_ERROR) return std::string();
  return " after GOAWAY (" + http2_error_name(goaway_error_) + ", last_stream_id " +
         std::to_string(goaway_last_stream_id_) + ")";
}

namespace {

// What FLOW_CONTROL_ERROR means from a client (RFC 9113 6.9, 6.9.1).
constexpr char kFlowBroken[] = "DATA beyond the window, or a window past 2^31-1";

// The server's first line, printable (anything else as '?'), for a message.
std::string first_line(const std::string& opening) {
  std::string line = opening.substr(0, opening.find_first_of("\r\n"));
  for (char& c : line)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  return line;
}

}  // namespace

std::string Http2Session::http1_note() const {
  // A server's first frame is its SETTINGS; "HTTP/1." there is a status line.
  if (opening_.compare(0, 7, "HTTP/1.") != 0) return std::string();
  return " (the server answered in HTTP/1.x, not HTTP/2: \"" + first_line(opening_) + "\")";
}

std::string Http2Session::connection_error(uint32_t code, std::string_view why) const {
  std::string msg = "HTTP/2 connection error: " + http2_error_name(code);
  std::string note = http1_note();
  if (!note.empty()) return msg + note;
  if (code == NGHTTP2_FLOW_CONTROL_ERROR)
    return msg + " (the server broke the connection's flow control: " + kFlowBroken + ")";
  // nghttp2's reason, which its GOAWAY carries as debug data ("SETTINGS expected"):
  // printable ASCII only, and not at length.
  bool printable =
      !why.empty() && why.size() <= 200 &&
      std::all_of(why.begin(), why.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  return printable ? msg + " (" + std::string(why) + ")" : msg;
}

void Http2Session::connection_lost(ErrorKind kind, const std::string& message) {
  fail_all(kind, message, true);
}

void Http2Session::take_progressed(std::vector<int32_t>& out) {
  out.clear();
  out.swap(progressed_);  // progressed_ keeps out's memory for the next ones
  for (int32_t id : out)
    if (Stream* s = find(id)) s->progressed = false;
}

std::vector<Http2Event> Http2Session::take_events() {
  std::vector<Http2Event> out;
  take_events(out);
  return out;
}

void Http2Session::take_events(std::vector<Http2Event>& out) {
  out.clear();
  out.swap(events_);
  ++batch_;
}

bool Http2Session::request_sent(int32_t stream_id) const {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return false;
  const Stream& s = *it->second;
  return s.headers_sent &&
         (s.body == Stream::BodyState::kNone || s.body == Stream::BodyState::kDone);
}

bool Http2Session::unprocessed(int32_t stream_id) const {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return true;
  const Stream& s = *it->second;
  // A stream the server answered was processed, whatever a GOAWAY says later.
  if (s.state != Stream::State::kRequested) return false;
  return !s.headers_sent || (goaway_received_ && stream_id > goaway_last_stream_id_);
}

uint32_t Http2Session::max_concurrent_streams() const {
  return session_ ? last_max_concurrent_ : 0;
}

uint32_t Http2Session::remote_max_concurrent() const {
  return nghttp2_session_get_remote_settings(session_.get(),
                                             NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

bool Http2Session::can_start_stream() const {
  if (!session_ || dead_ || goaway_received_) return false;
  if (nghttp2_session_want_read(session_.get()) == 0) return false;  // we sent GOAWAY
  if (nghttp2_session_get_next_stream_id(session_.get()) > 0x7fffffffu) return false;
  return live_.size() < max_concurrent_streams();
}

void Http2Session::on_stream_frame(int32_t stream_id, bool headers, bool end_stream, bool empty) {
  Stream* s = find(stream_id);
  if (s == nullptr || s->terminal()) return;
  if (headers && s->state == Stream::State::kRequested) {
    if (s->status >= 100 && s->status < 200) {
      // An informational head (100 Continue, 103 Early Hints): not the response,
      // but a sign of life, as it is over HTTP/1.1 (the read deadline starts anew).
      s->head.clear();
      s->status = 0;
      emit(Http2Event{Http2EventKind::kInterim, stream_id});
      return;
    }
    Http2Event ev{Http2EventKind::kHeaders, stream_id};
    ev.status = s->status;
    ev.headers = std::move(s->head);
    s->head.clear();
    s->state = Stream::State::kHead;
    emit(std::move(ev));
  }
  // (The last frame's end is the body's: nothing to cut there; an empty frame cuts
  // nothing either, and a flood of them queued an event each: 20 MiB per read.)
  if (!headers && !end_stream && !empty && s->state == Stream::State::kHead)
    emit(Http2Event{Http2EventKind::kDataEnd, stream_id});
  if (end_stream && s->state == Stream::State::kHead) {
    s->state = Stream::State::kEnded;
    emit(Http2Event{Http2EventKind::kEnd, stream_id});
  }
}

void Http2Session::on_settings() {
  uint32_t now = remote_max_concurrent();  // nghttp2 applied the SETTINGS first
  if (now == last_max_concurrent_) return;
  last_max_concurrent_ = now;
  emit(Http2Event{Http2EventKind::kSettings, 0});
}

void Http2Session::on_goaway(int32_t last_stream_id, uint32_t code) {
  goaway_received_ = true;
  goaway_last_stream_id_ = last_stream_id;
  goaway_error_ = code;
  Http2Event ev{Http2EventKind::kGoaway, last_stream_id};
  ev.h2_error = code;
  emit(std::move(ev));
  // nghttp2 closes the streams above last_stream_id (on_closed) after this.
}

void Http2Session::on_closed(Stream& s, uint32_t code) {
  if (s.terminal()) return;
  char id[64];
  std::snprintf(id, sizeof id, "%d", s.id);
  if (goaway_received_ && s.id > goaway_last_stream_id_) {
    char last[64];
    std::snprintf(last, sizeof last, "%d", goaway_last_stream_id_);
    // Retried elsewhere only if no response came: one that did was processed
    // (the server contradicts itself), and it may already be in use.
    bool answered = s.state != Stream::State::kRequested;
    fail_stream(s, ErrorKind::kRemoteProtocolError,
                "Server sent GOAWAY (" + http2_error_name(goaway_error_) + ", last_stream_id " +
                    last + "): stream " + id + (answered ? " was cut short" : " was not processed"),
                code, !answered);
    return;
  }
  if (code == NGHTTP2_NO_ERROR && s.state == Stream::State::kHead) {
    // RST_STREAM(NO_ERROR) without END_STREAM: the response was cut short.
    fail_stream(s, ErrorKind::kRemoteProtocolError,
                std::string("HTTP/2 stream ") + id + " closed before the response ended", code,
                false);
    return;
  }
  bool unprocessed = code == NGHTTP2_REFUSED_STREAM && s.state == Stream::State::kRequested;
  // nghttp2 resets a stream itself when what the server sent on it breaks the
  // protocol (a malformed response head: an upper-case or connection-specific
  // field, a bad pseudo-header, a Content-Length the DATA contradicts, ...).
  std::string why = " was reset by the server: ";
  if (!s.reset_by_peer && code == NGHTTP2_FLOW_CONTROL_ERROR)
    why = std::string(" was reset by the client, the server having broken its flow control (") +
          kFlowBroken + "): ";
  else if (!s.reset_by_peer)
    why = " was reset by the client, the server's response on it being malformed: ";
  fail_stream(s, ErrorKind::kRemoteProtocolError,
              std::string("HTTP/2 stream ") + id + why + http2_error_name(code), code, unprocessed);
}

void Http2Session::fail_stream(Stream& s, ErrorKind kind, std::string message, uint32_t code,
                               bool retryable) {
  if (s.terminal()) return;
  s.state = Stream::State::kFailed;
  Http2Event ev{Http2EventKind::kReset, s.id};
  ev.h2_error = code;
  ev.retryable = retryable;
  ev.error.set(kind, std::move(message));
  emit(std::move(ev));
}

void Http2Session::fail_all(ErrorKind kind, const std::string& message, bool mark_dead) {
  if (mark_dead) dead_ = true;
  for (auto& [id, s] : streams_) fail_stream(*s, kind, message, 0, unprocessed(id));
}

}  // namespace httprs
