#include "http1_session.h"

#include <cstring>

namespace httprs {

namespace {
constexpr Borrowed kChunkEnd{"\r\n", 2};  // static: an Outgoing's tail
}  // namespace

void Http1Session::expect(Transfer& t) {
  cur_ = &t;
  parser_.reset(this, t.spec.head_request, t.spec.plan.tunnel, t.spec.plan.upgrade);
  upload_ = Upload::kFixed;
  wire_ = Wire::kNothingSent;
  response_ = Response::kAwaiting;
}

bool Http1Session::submit(Transfer& t, Error& err) {
  (void)err;  // serialize_request (or plan_request) checked the head and its framing
  expect(t);
  request_closes_ = t.spec.plan.close;
  // The body goes out exactly as serialize_request framed the head: chunked
  // coding when the head says chunked, else exactly content_length bytes.
  if (t.spec.head.empty()) {
    // A request that may have gone as HTTP/2: its HTTP/1.1 head is written
    // only now that it goes as HTTP/1.1 (plan_request checked it).
    out_.owned.clear();
    write_planned_head(out_.owned, t.spec.method, t.spec.target, t.spec.headers);
  } else {
    out_.owned = t.spec.head;  // kept in the spec for a retry
  }
  out_.ext = {};
  out_.tail = {};
  bool chunked = t.spec.plan.framing == BodyFraming::kChunked;
  if (t.spec.body_streamed) {
    upload_ = Upload::kStreaming;
    body_remaining_ = chunked ? 0 : t.spec.plan.content_length;
  } else if (chunked) {
    if (t.spec.body_len > 0) {
      append_chunk_size(out_.owned, t.spec.body_len);
      out_.owned.append(t.spec.body, t.spec.body_len);
      out_.owned.append("\r\n");
    }
    out_.owned.append(kLastChunk);
  } else {
    // serialize_request checked that body_len is the declared length.
    out_.ext = {t.spec.body, t.spec.body_len};
  }
  return true;
}

ProtocolSession::BodyStep Http1Session::send_body(Transfer& t, const char* data, size_t len,
                                                  bool last, Error& err) {
  // The upload was cut short (a write failed): the response decides.
  if (upload_ != Upload::kStreaming || cur_ != &t) return BodyStep::kIgnored;
  if (t.spec.plan.framing == BodyFraming::kChunked) {
    // Each chunk goes out whole, its closing CRLF with it (as httpx sends
    // it): a server reading chunk by chunk has it before the body is asked
    // for the next. Its data is borrowed (written from the consumer's bytes)
    // and the CRLF is static, so nothing is copied.
    if (len > 0) {
      append_chunk_size(owned_tail(), len);
      append_body({data, len}, kChunkEnd);
    }
    if (last) owned_tail().append(kLastChunk);
  } else {
    // Never more (or, at the end, fewer) bytes than the head declared: the
    // server would read the difference as the start of another request.
    if (len > body_remaining_ || (last && len < body_remaining_)) {
      err.set(ErrorKind::kLocalProtocolError, len > body_remaining_
                                                  ? "Too much data for declared Content-Length"
                                                  : "Too little data for declared Content-Length");
      return BodyStep::kFailed;
    }
    body_remaining_ -= len;
    if (len > 0) append_body({data, len}, {});
  }
  if (last) upload_ = Upload::kStreamEnded;
  return out_.empty() ? BodyStep::kNothing : BodyStep::kQueued;
}

std::string& Http1Session::owned_tail() {
  if (out_.ext.len > 0 || out_.tail.len > 0) {
    // Owned bytes go after the borrowed ones: copy those (and their tail) first.
    out_.owned.append(out_.ext.data, out_.ext.len).append(out_.tail.data, out_.tail.len);
    out_.ext = {};
    out_.tail = {};
  }
  return out_.owned;
}

void Http1Session::append_body(Borrowed body, Borrowed tail) {
  if (out_.ext.len == 0 && out_.tail.len == 0) {
    out_.ext = body;
    out_.tail = tail;
  } else {
    owned_tail().append(body.data, body.len).append(tail.data, tail.len);
  }
}

bool Http1Session::take_output(Outgoing& out) {
  if (out_.empty()) return false;
  out = std::move(out_);
  out_ = Outgoing();
  return true;
}

ProtocolSession::Result Http1Session::receive(const char* data, size_t len, size_t* consumed,
                                              Error& err) {
  if (response_ == Response::kAwaiting) response_ = Response::kReceiving;
  *consumed = 0;
  ResponseParser::Status st = parser_.feed(data, len, consumed, err);
  if (response_ == Response::kDiscarded) return Result::kDiscard;
  switch (st) {
    case ResponseParser::Status::kOk:
      return Result::kMore;
    case ResponseParser::Status::kComplete:
      if (cur_ != nullptr) water_ = cur_->body_received > kBodyWater ? kMinRead : kHeadRead;
      return Result::kComplete;
    case ResponseParser::Status::kUpgrade:
      // A 101 to a request that asked for it (the parser rejects any other),
      // or a 2xx to a CONNECT: the connection now carries the caller's bytes.
      return Result::kSwitched;
    case ResponseParser::Status::kError:
      break;
  }
  return Result::kFailed;
}

ProtocolSession::Result Http1Session::receive_eof(Error& err) {
  return parser_.finish(err) == ResponseParser::Status::kComplete ? Result::kComplete
                                                                  : Result::kFailed;
}

bool Http1Session::finish() {
  bool was_draining = response_ == Response::kDraining;
  response_ = Response::kComplete;
  return was_draining;
}

bool Http1Session::resume() {
  if (flow_ != Flow::kPaused) return false;
  flow_ = Flow::kReading;
  return true;
}

bool Http1Session::may_resend(const Transfer& t) const {
  // Only a request the server closed the connection on before any byte of
  // its response: the stale keep-alive race (the connection checks that it
  // was reused). And never a request the server may have acted on unless
  // sending it twice is harmless (RFC 9110 9.2.2): a POST whose bytes reached
  // the socket fails instead.
  if (response_ != Response::kAwaiting) return false;
  if (t.resend != Transfer::Resend::kNone || t.attempts >= 3 || t.spec.body_streamed) return false;
  return t.spec.plan.idempotent || wire_ == Wire::kNothingSent;
}

void Http1Session::on_head(ResponseHead&& head) {
  if (cur_ == nullptr || response_ == Response::kDraining || response_ == Response::kDiscarded)
    return;
  cur_->head = std::move(head);
  cur_->head_ready = true;
  listener_->on_transfer_progress(*cur_);
}

void Http1Session::on_body(const char* data, size_t len) {
  if (cur_ == nullptr || response_ == Response::kDiscarded) return;
  Transfer& t = *cur_;
  t.body_received += len;
  if (response_ == Response::kDraining) {
    // Past the bound, reading on costs more than a new connection.
    if (t.body_received > kDrainLimit) response_ = Response::kDiscarded;
    return;
  }
  deliver_body(t, data, len);
  listener_->on_transfer_progress(t);
}

void Http1Session::on_chunk_end() {
  if (cur_ == nullptr || response_ != Response::kReceiving) return;
  cur_->mark_chunk_end();
  if (cur_->chunk_ends.size() >= kMaxChunkEnds) pause();
}

char* Http1Session::direct_read_buffer(size_t* len) const {
  if (cur_ == nullptr || response_ != Response::kReceiving) return nullptr;
  const Transfer& t = *cur_;
  if (t.sink == nullptr || t.sink_fill >= t.sink_len || !t.body_buf.empty()) return nullptr;
  uint64_t left = parser_.length_body_left();
  if (left == 0) return nullptr;
  size_t room = t.sink_len - t.sink_fill;
  *len = left < room ? static_cast<size_t>(left) : room;
  return t.sink + t.sink_fill;
}

size_t Http1Session::read_limit(size_t cap) const {
  if (cur_ == nullptr || (response_ != Response::kAwaiting && response_ != Response::kReceiving))
    return cap;
  size_t want;
  if (!parser_.head_done()) {
    want = water_;
  } else {
    const Transfer& t = *cur_;
    size_t held = t.sink != nullptr ? t.sink_fill : t.body_buf.size();
    size_t room = t.sink != nullptr ? t.sink_len : water_;
    want = room > held ? room - held : 0;
    if (want < kMinRead) want = kMinRead;
  }
  return want < cap ? want : cap;
}

bool Http1Session::sink_full(const Transfer& t) const {
  size_t room = t.sink_len - t.sink_fill;
  if (room == 0) return true;
  // A streamed chunk with less room than a read takes (kMinRead) counts as
  // full: through chunked framing or a short read the room rarely comes out
  // exact, and the read that fills it would spill past it into body_buf, to
  // be handed out as a small chunk of its own. Inside a Content-Length body
  // reads are bounded by the bytes due, so they fit whatever the room.
  return t.sink_use == SinkUse::kChunk && room < kMinRead && parser_.length_body_left() == 0;
}

void Http1Session::deliver_body(Transfer& t, const char* data, size_t len) {
  if (t.sink != nullptr) {
    size_t room = t.sink_len - t.sink_fill;
    size_t n = len < room ? len : room;
    // Read straight into the sink (direct_read_buffer): already in place.
    if (data != t.sink + t.sink_fill) std::memcpy(t.sink + t.sink_fill, data, n);
    t.sink_fill += n;
    if (n < len) {
      t.sink_overflow = true;
      t.body_buf.append(data + n, len - n);
    }
    // Full, with more body to come: wait for the consumer's next (or bigger)
    // sink rather than buffer what follows and copy it again.
    if (parser_.body_may_continue() && sink_full(t)) pause();
    return;
  }
  t.body_buf.append(data, len);
  // Less room under the mark than a read takes: a read now would bring a few
  // bytes more to be copied twice (here, then into the consumer's buffer),
  // which the kernel can as well hold until the consumer's buffer is there.
  // (A head read of water() leaves just under the mark: pausing then saves
  // a read of kMinRead per response with a body larger than that.)
  if (t.body_buf.size() + kMinRead > water_) pause();
}

}  // namespace httprs
