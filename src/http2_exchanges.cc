#include "http2_exchanges.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <string_view>

#include "timeouts.h"

namespace httprs {

namespace {

bool is_content_length(std::string_view name) { return name == "content-length"; }

// A decimal Content-Length (nghttp2 has checked the response's against its
// DATA already); false when absent or malformed.
bool parse_length(std::string_view value, uint64_t* out) {
  if (value.empty() || value.size() > 19) return false;
  uint64_t n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = n;
  return true;
}

}  // namespace

Http2Exchanges::Http2Exchanges(SessionListener* listener, Http2Config config)
    : listener_(listener),
      session_(config),
      buffer_most_(kHighWater + config.stream_window),
      first_most_(std::min(config.initial_window, config.stream_window)) {
  session_.set_data_sink(this);
}

bool Http2Exchanges::start(Error& err) { return session_.init(err); }

int Http2Exchanges::max_exchanges() const {
  uint32_t n = session_.max_concurrent_streams();
  return n > static_cast<uint32_t>(INT_MAX) ? INT_MAX : static_cast<int>(n);
}

bool Http2Exchanges::can_take_exchange() const {
  return session_.can_start_stream() && open_exchanges() < max_exchanges();
}

int32_t Http2Exchanges::find(const Transfer& t) const {
  int32_t id = t.stream_id;
  auto it = streams_.find(id);
  return it != streams_.end() && it->second.transfer.get() == &t ? id : -1;
}

bool Http2Exchanges::submit(Transfer& t, Error& err) {
  const RequestSpec& spec = t.spec;
  Http2Request req;
  req.method = spec.method;
  req.scheme = spec.tls ? "https" : "http";
  req.authority = spec.authority;
  req.path = spec.target;
  req.headers = &spec.headers;
  if (spec.body_streamed) {
    req.body = Http2Request::Body::kStreamed;
  } else if (spec.body_len > 0) {
    req.body = Http2Request::Body::kFixed;
    req.fixed = reinterpret_cast<const uint8_t*>(spec.body);
    req.fixed_len = spec.body_len;
  }
  int32_t id = session_.submit(req, err);
  if (id < 0) return false;
  Stream s;
  s.transfer = t.shared_from_this();
  s.streamed = spec.body_streamed;
  if (s.streamed && spec.plan.framing == BodyFraming::kContentLength) {
    s.length_known = true;
    s.remaining = spec.plan.content_length;
  }
  t.http2 = true;
  t.stream_id = id;
  t.phase = Transfer::Phase::kSending;
  arm(s);
  streams_.emplace(id, std::move(s));
  process_events();  // a streamed body is wanted at once
  return true;
}

ProtocolSession::BodyStep Http2Exchanges::send_body(Transfer& t, const char* data, size_t len,
                                                    bool last, Error& err) {
  int32_t id = find(t);
  if (id < 0) return BodyStep::kIgnored;
  Stream& s = streams_.at(id);
  if (s.length_known) {
    // Never more (or, at the end, fewer) bytes than the head declared.
    if (len > s.remaining || (last && len < s.remaining)) {
      err.set(ErrorKind::kLocalProtocolError, len > s.remaining
                                                  ? "Too much data for declared Content-Length"
                                                  : "Too little data for declared Content-Length");
      return BodyStep::kFailed;
    }
    s.remaining -= len;
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(data);
  if (!session_.push_body(id, bytes, len, err)) return BodyStep::kFailed;
  if (last && !session_.end_body(id, err)) return BodyStep::kFailed;
  arm(s);
  process_events();
  return BodyStep::kQueued;
}

bool Http2Exchanges::take_output(Outgoing& out) {
  out = Outgoing();
  if (write_error_) return false;  // the socket takes nothing more
  Error err;
  bool ok = session_.flush(out.owned, err);
  session_.take_progressed(flushed_);
  process_events();  // a failed flush failed every stream
  return ok && !out.owned.empty();
}

ProtocolSession::Result Http2Exchanges::receive(const char* data, size_t len, size_t* consumed,
                                                Error& err) {
  *consumed = len;
  bool ok = session_.feed(reinterpret_cast<const uint8_t*>(data), len, err);
  process_events();
  return ok ? Result::kMore : Result::kFailed;
}

ProtocolSession::Result Http2Exchanges::receive_eof(Error& err) {
  err.set(ErrorKind::kRemoteProtocolError,
          "Server disconnected" + session_.goaway_note() + session_.http1_note());
  lost(err);
  return Result::kFailed;
}

void Http2Exchanges::lost(const Error& err) {
  if (write_error_) {
    // Requests that did not all go out: their own error, not the read side's.
    std::vector<int32_t> unsent;
    for (const auto& [id, s] : streams_)
      if (!s.transfer->body_sent) unsent.push_back(id);
    for (int32_t id : unsent) fail_stream(id, write_error_, session_.unprocessed(id));
  }
  session_.connection_lost(err.kind, err.message);
  process_events();
  fail_all(err);  // anything the session no longer knew about
}

void Http2Exchanges::write_failed(const Error& err) {
  if (!write_error_) write_error_ = err;
}

void Http2Exchanges::fail_all(const Error& err) {
  while (!streams_.empty()) fail_stream(streams_.begin()->first, err, false);
}

void Http2Exchanges::cancel(Transfer& t) {
  int32_t id = find(t);
  if (id < 0) return;
  session_.cancel(id);  // RST_STREAM(CANCEL) unless it already ended
  streams_.erase(id);
  if (streams_.empty()) wake_at_ = 0;
}

bool Http2Exchanges::resume(Transfer& t) {
  int32_t id = find(t);
  if (id < 0) return false;
  Stream& s = streams_.at(id);
  bool opened = s.window == Window::kInitial;
  if (opened) {
    s.window = Window::kOpen;
    session_.open_window(id);
  }
  if (s.unread_credit == 0 || !gives_back(s)) {
    arm(s);  // the consumer asks (its deadline starts anew) or works (none runs)
    return opened;
  }
  session_.consume(id, s.unread_credit);
  s.unread_credit = 0;
  arm(s);
  return opened;
}

void Http2Exchanges::mark_flushed(uint64_t seq) {
  for (int32_t id : flushed_) {
    auto it = streams_.find(id);
    if (it == streams_.end() || it->second.transfer->body_sent) continue;
    if (it->second.write_mark == 0) awaiting_write_.push_back(id);
    it->second.write_mark = seq;
  }
  flushed_.clear();
}

void Http2Exchanges::note_written(uint64_t done) {
  // Only the streams waiting for a write (not every stream in flight).
  std::vector<int32_t> waiting;
  waiting.swap(awaiting_write_);
  for (int32_t id : waiting) {
    auto it = streams_.find(id);
    if (it == streams_.end()) continue;
    Stream& s = it->second;
    Transfer& t = *s.transfer;
    if (t.body_sent || s.write_mark == 0) continue;
    if (s.write_mark > done) {
      awaiting_write_.push_back(id);
      continue;
    }
    s.write_mark = 0;
    if (!session_.request_sent(id)) {
      arm(s);  // its upload moved: the write timeout starts again
      continue;
    }
    t.body_sent = true;
    if (t.phase == Transfer::Phase::kSending) t.phase = Transfer::Phase::kWaiting;
    arm(s);
    if (t.spec.trace) {
      t.trace_steps.push_back(static_cast<int>(TraceStep::kSent));
      listener_->on_transfer_progress(t);
    }
  }
}

void Http2Exchanges::expire() {
  std::vector<int32_t> due;
  for (auto& [id, s] : streams_) {
    if (s.deadline == 0 || s.deadline > now_) continue;
    if (s.transfer->consumer_busy()) {
      s.deadline = 0;  // armed while it waited: its next ask starts one anew (resume)
      continue;
    }
    due.push_back(id);
  }
  wake_at_ = 0;  // found again below, once the due streams are gone
  for (int32_t id : due) {
    auto it = streams_.find(id);
    if (it == streams_.end()) continue;
    Error err;
    err.set(it->second.transfer->body_sent ? ErrorKind::kReadTimeout : ErrorKind::kWriteTimeout,
            "timed out");
    session_.cancel(id);  // the other streams go on
    timed_out_ = true;
    fail_stream(id, err, false);
  }
  wake_at_ = next_deadline();
}

uint64_t Http2Exchanges::next_deadline() const {
  uint64_t earliest = 0;
  for (const auto& [id, s] : streams_)
    if (s.deadline != 0 && (earliest == 0 || s.deadline < earliest)) earliest = s.deadline;
  return earliest;
}

std::vector<Http2Exchanges::Ended> Http2Exchanges::take_ended() {
  std::vector<Ended> out;
  out.swap(ended_);
  return out;
}

// ---------------------------------------------------------------- events

void Http2Exchanges::process_events() {
  // The batch borrows spare_'s memory and gives it back (a nested call, if
  // any, would find spare_ empty and allocate: still correct).
  std::vector<Http2Event> batch;
  batch.swap(spare_);
  session_.take_events(batch);
  for (Http2Event& ev : batch) on_event(ev);
  batch.clear();
  spare_.swap(batch);
}

void Http2Exchanges::on_event(Http2Event& ev) {
  auto it = streams_.find(ev.stream_id);
  if (ev.kind == Http2EventKind::kSettings || ev.kind == Http2EventKind::kGoaway) return;
  if (it == streams_.end()) return;  // cancelled meanwhile
  Stream& s = it->second;
  Transfer& t = *s.transfer;
  switch (ev.kind) {
    case Http2EventKind::kHeaders:
      on_headers(s, ev);
      break;
    case Http2EventKind::kInterim:
      arm(s);  // as httpx's read, which any bytes end
      break;
    case Http2EventKind::kData:
      on_data(s, ev.stream_id, ev);
      break;
    case Http2EventKind::kDataEnd:
      t.mark_chunk_end();  // each frame's data apart when streamed, as h2 gives httpx
      if (t.frame_end_waits()) listener_->on_transfer_progress(t);
      break;
    case Http2EventKind::kEnd:
      t.body_sent = true;
      t.complete = true;
      t.phase = Transfer::Phase::kDone;
      listener_->on_transfer_progress(t);
      end_stream(ev.stream_id, Outcome::kComplete);
      break;
    case Http2EventKind::kReset:
      fail_stream(ev.stream_id, ev.error, ev.retryable);
      break;
    case Http2EventKind::kBodyWanted:
      t.want_body = true;
      s.deadline = 0;  // the consumer's turn: no timeout runs, as for HTTP/1.1
      listener_->on_transfer_progress(t);
      break;
    default:
      break;
  }
}

void Http2Exchanges::on_headers(Stream& s, Http2Event& ev) {
  Transfer& t = *s.transfer;
  ResponseHead head;
  head.status = ev.status;
  head.http_major = 2;
  head.http_minor = 0;
  for (size_t i = 0; i < ev.headers.size(); i++) {
    if (is_content_length(ev.headers.name(i)) &&
        parse_length(ev.headers.value(i), &head.content_length))
      head.has_content_length = true;
  }
  head.headers = std::move(ev.headers);  // as the session received them
  t.head = std::move(head);
  t.head_ready = true;
  arm(s);
  listener_->on_transfer_progress(t);
}

bool Http2Exchanges::take_data(int32_t stream_id, const char* data, size_t len) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return false;
  Transfer& t = *it->second.transfer;
  if (t.sink == nullptr || !t.body_buf.empty() || t.sink_len - t.sink_fill < len) return false;
  std::memcpy(t.sink + t.sink_fill, data, len);
  t.sink_fill += len;
  return true;
}

void Http2Exchanges::on_data(Stream& s, int32_t id, Http2Event& ev) {
  Transfer& t = *s.transfer;
  std::string& data = ev.data;
  const char* p = data.data();
  size_t len = ev.delivered > 0 ? ev.delivered : data.size();
  t.body_received += len;
  if (ev.delivered > 0) {
    // Already in the sink (take_data).
  } else if (t.sink != nullptr) {
    size_t room = t.sink_len - t.sink_fill;
    size_t n = len < room ? len : room;
    std::memcpy(t.sink + t.sink_fill, p, n);
    t.sink_fill += n;
    if (n < len) {
      t.sink_overflow = true;
      t.body_buf.append(p + n, len - n);
    }
  } else if (t.body_buf.empty()) {
    t.body_buf.swap(data);  // the event's bytes, not a copy of them
  } else {
    if (t.body_buf.capacity() - t.body_buf.size() < len && t.head.has_content_length)
      grow_declared(s, len);
    t.body_buf.append(p, len);
  }
  if (gives_back(s)) {
    session_.consume(id, len + s.unread_credit);
    s.unread_credit = 0;
  } else {
    s.unread_credit += len;
  }
  arm(s);
  listener_->on_transfer_progress(t);
}

size_t Http2Exchanges::body_mark(const Transfer& t) const {
  if (streams_.size() != 1) return 0;
  const auto& [id, s] = *streams_.begin();
  if (s.transfer.get() != &t || s.window != Window::kOpen || !t.head_ready || !t.body_sent ||
      !t.head.has_content_length || t.sink == nullptr || t.sink_use != SinkUse::kWhole ||
      !t.body_buf.empty() || t.head.content_length <= t.body_received)
    return 0;
  uint64_t due = t.head.content_length - t.body_received;
  uint64_t room = t.sink_len - t.sink_fill;
  uint64_t half = session_.receivable(id) / 2;
  return static_cast<size_t>(std::min({due, room, half}));
}

bool Http2Exchanges::gives_back(const Stream& s) const {
  const Transfer& t = *s.transfer;
  // Before the consumer's first read, once the request is all out, DATA is
  // held to the initial window: the consumer's buffer comes next. While the
  // request still goes out it is given back (as after that read), so a
  // server that answers as it reads (an echo) never stalls the upload.
  if (s.window == Window::kInitial && t.body_sent) return false;
  // Then the window opens again only as the consumer reads: past the
  // high-water mark of unread bytes the server must wait.
  return t.body_buf.size() < kHighWater;
}

void Http2Exchanges::grow_declared(const Stream& s, size_t len) const {
  // At once to the declared length, up to the most it may hold: grown by
  // doubling, up to 2 MiB before the consumer's sink came, it left the blocks
  // it grew out of free below that sink, the sink took fresh memory above, and
  // so a 10 MB HTTP/2 body kept 16 MB resident (HTTP/1.1's: 10.7). Before the
  // consumer's first read, the initial window's worth (a reserve of the most
  // it may hold later was a block of 2 MiB in the way of the sink's).
  Transfer& t = *s.transfer;
  size_t want = s.window == Window::kOpen ? buffer_most_ : first_most_;
  const size_t need = t.body_buf.size() + len;
  if (need > want) {
    // Past that (the initial window's bytes given back while the request
    // still goes out): double, so a long body is never copied once per frame.
    want = std::max(need, 2 * t.body_buf.capacity());
  }
  if (t.head.content_length < want) want = static_cast<size_t>(t.head.content_length);
  // Exactly that: reserve() on a string would round a request below twice
  // its capacity up to twice it.
  std::string grown;
  grown.reserve(std::max(want, need));
  grown.append(t.body_buf);
  t.body_buf.swap(grown);
}

void Http2Exchanges::end_stream(int32_t id, Outcome outcome) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  ended_.push_back(Ended{std::move(it->second.transfer), outcome});
  streams_.erase(it);
  session_.release(id);
  if (streams_.empty()) wake_at_ = 0;
}

void Http2Exchanges::fail_stream(int32_t id, const Error& err, bool retryable) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  Stream& s = it->second;
  Transfer& t = *s.transfer;
  // Only a request the server never processed (and never answered) goes out
  // again, and never a streamed body: the consumer may have taken a chunk
  // from its iterator already (as HTTP/1.1, which does not resend those
  // either).
  if (retryable && t.attempts < kMaxAttempts && !s.streamed && !t.released && !t.head_ready) {
    end_stream(id, Outcome::kRetry);
    return;
  }
  if (!t.complete) {
    t.error = err;
    t.phase = Transfer::Phase::kFailed;
    listener_->on_transfer_progress(t);
  }
  end_stream(id, Outcome::kFailed);
}

void Http2Exchanges::arm(Stream& s) {
  const Transfer& t = *s.transfer;
  s.deadline = 0;
  // The consumer's turn: a body chunk wanted, or body bytes held unread for
  // it once the request is all out. While the request still goes out, its
  // write timeout runs whatever came back (an upload must not stall for ever
  // because response bytes wait unread).
  if (t.complete || t.want_body || (s.unread_credit > 0 && t.body_sent) || t.consumer_busy())
    return;
  uint64_t ms = 0;
  if (!timeout_ms(t.body_sent ? t.spec.read_timeout : t.spec.write_timeout, &ms, 1)) return;
  s.deadline = now_ + ms;
  if (wake_at_ == 0 || s.deadline < wake_at_) wake_at_ = s.deadline;
}

}  // namespace httprs
