// The HTTP/2 side of Connection: once the last layer is up and the
// connection speaks HTTP/2 (ALPN "h2", or prior knowledge), an
// Http2Exchanges carries every exchange as a stream. The establishing
// stages, the layers and the socket stay connection.cc's.
#include "connection.h"
#include "scratch.h"

namespace httprs {

bool Connection::negotiated_http2() const {
  if (!may_http2_ || !cur_) return false;
  const RequestSpec& spec = cur_->spec;
  if (!spec.tls) return spec.versions == HttpVersions::kHttp2;  // h2c, prior knowledge
  std::string alpn = origin_tls_ ? origin_tls_->session().alpn() : std::string();
  if (alpn == "h2") return true;
  // http1=False: HTTP/2 whatever the server said (it was offered h2 alone),
  // never HTTP/1.1; as httpcore does.
  return spec.versions == HttpVersions::kHttp2;
}

void Connection::start_http2() {
  may_http2_ = false;
  SessionListener* listener = this;
  auto h2 = std::make_unique<Http2Exchanges>(listener);
  Error err;
  bool started = h2->start(err);
  session_ = std::move(h2);
  if (!started) {
    close(err);
    return;
  }
  socket_.start_reading();  // always: flow control is HTTP/2's own
  std::shared_ptr<Transfer> first = detach_transfer();
  if (purpose_ == Purpose::kPool) {
    set_purpose(Purpose::kTransfer);  // its transfer left while we connected
    first.reset();
  }
  state_ = State::kIdle;
  idle_since_ms = engine_->now_ms();
  if (first) {
    // httpcore's http2.send_connection_init: the preface goes out with it.
    if (first->spec.trace) first->trace_steps.push_back(static_cast<int>(TraceStep::kH2Init));
    h2_assign(std::move(first));
    return;
  }
  h2_flush();  // the connection preface and our SETTINGS
  h2_settle();
}

void Connection::h2_assign(std::shared_ptr<Transfer> t) {
  clear_chunk_mark();  // a wait marked for another stream's body: this one's answer wakes it
  if (state_ == State::kClosing || !session_->can_take_exchange()) {
    // GOAWAY or the stream limit came first: another connection takes it.
    t->conn = nullptr;
    engine_->retry(std::move(t));
    return;
  }
  reuses_++;
  h2().set_now(engine_->now_ms());
  state_ = State::kActive;
  t->conn = this;
  t->conn_info = info_;
  if (t->spec.trace) {
    t->http2 = true;
    t->trace_steps.push_back(static_cast<int>(TraceStep::kSend));
  }
  Error err;
  if (!session_->submit(*t, err)) {
    // A request nghttp2 refuses (an invalid header): that request only.
    t->conn = nullptr;
    t->error = err;
    t->phase = Transfer::Phase::kFailed;
    engine_->signal(*t);
  } else {
    engine_->signal(*t);
  }
  h2_flush_later();
  h2_settle();
}

void Connection::h2_send_body(Transfer& t, const char* data, size_t len, bool last) {
  t.want_body = false;
  h2().set_now(engine_->now_ms());
  Error err;
  if (h2().send_body(t, data, len, last, err) == ProtocolSession::BodyStep::kFailed) {
    // That stream fails (reset); the connection and the others go on.
    h2().cancel(t);
    t.conn = nullptr;
    t.error = err;
    t.phase = Transfer::Phase::kFailed;
    engine_->signal(t);
  }
  h2_flush_later();
  h2_settle();
}

void Connection::h2_abandon(Transfer& t) {
  h2().set_now(engine_->now_ms());
  h2().cancel(t);  // RST_STREAM(CANCEL) for this stream only
  t.conn = nullptr;
  h2_flush();
  h2_settle();
}

void Connection::h2_flush_later() {
  if (flush_wanted_) return;
  flush_wanted_ = true;
  engine_->want_flush(this);
}

void Connection::flush_wanted() {
  flush_wanted_ = false;
  if (!is_http2() || state_ == State::kClosing) return;
  h2().set_now(engine_->now_ms());
  h2_flush();
  h2_settle();  // a failed flush may have ended streams
}

void Connection::h2_flush() {
  if (socket_.write_deferred()) {
    // A deferred write waits or is in flight (another thread's frames, made
    // without the engine mutex): what the session has now would queue behind
    // it write by write, each through uv_write and a loop run for its
    // completion. It is taken whole once that write is accounted for, with
    // the frames of the streams started meanwhile (on_socket_deferred_ended;
    // its writer flushes, Engine::send_deferred_writes / drive_once).
    h2_flush_held_ = true;
    return;
  }
  Outgoing out;
  bool sent = false;
  while (state_ != State::kClosing && h2().take_output(out)) {
    send(std::move(out));
    h2().mark_flushed(socket_.writes_started());
    sent = true;
  }
  // Writes the kernel took whole at once completed inside send().
  if (sent && state_ != State::kClosing) h2().note_written(socket_.writes_completed());
}

void Connection::on_socket_deferred_ended() {
  if (deadline_after_flight_) {
    // A read deadline found input held behind the write (take_waiting_bytes):
    // it is delivered now; the HTTP/2 streams' deadlines are looked at again
    // in the loop's next run, after what the kernel still holds is read.
    deadline_after_flight_ = false;
    if (is_http2() && state_ != State::kClosing) {
      timer_mode_ = TimerMode::kNone;  // re-armed whatever it was set to
      uv_timer_stop(&timer_);
      h2_arm_timer();
    }
  }
  if (!h2_flush_held_) return;
  h2_flush_held_ = false;
  if (is_http2() && state_ != State::kClosing) h2_flush_later();
}

void Connection::h2_write_failed(int status) {
  if (!h2().writable() || state_ == State::kClosing) return;  // each queued write fails
  Error err;
  err.set(ErrorKind::kWriteError, errno_message(status));
  h2().set_now(engine_->now_ms());
  h2().write_failed(err);
  socket_.start_reading();
  h2_settle();
}

void Connection::h2_receive(const char* data, size_t len) {
  if (state_ == State::kClosing) return;
  h2().set_now(engine_->now_ms());
  size_t used = 0;
  Error err;
  ProtocolSession::Result r = session_->receive(data, len, &used, err);
  h2_flush();  // SETTINGS and PING acks, WINDOW_UPDATEs, our GOAWAY on an error
  if (r == ProtocolSession::Result::kFailed) {
    health_ = Health::kSpent;
    close(err);
    return;
  }
  h2_settle();
  if (state_ == State::kIdle && h2().open_exchanges() == 0 &&
      keepalive_expired(engine_->now_ms())) {
    // Idle past keepalive_expiry and the server still sends: the pool will not
    // hand it out again (h2_usable_for_reuse), and an event loop that watches
    // the engine would read it for as long as the server goes on.
    health_ = Health::kSpent;
    close(Error());
  }
}

void Connection::h2_settle() {
  if (state_ == State::kClosing) return;
  std::vector<Http2Exchanges::Ended> ended = h2().take_ended();
  if (!ended.empty()) clear_chunk_mark();  // the marked stream's wait may be over
  std::vector<std::shared_ptr<Transfer>> retries;
  for (Http2Exchanges::Ended& e : ended) {
    e.transfer->conn = nullptr;
    if (e.outcome == Http2Exchanges::Outcome::kRetry)
      retries.push_back(std::move(e.transfer));
    else
      engine_->on_transfer_detached(*e.transfer);
  }
  bool carrying = h2().open_exchanges() > 0;
  if (!carrying && (health_ == Health::kSpent || h2().goaway_received() || h2().finished())) {
    // It takes no new streams and has none left: done.
    health_ = Health::kSpent;
    close(Error());
  } else {
    if (!carrying && state_ == State::kActive) {
      state_ = State::kIdle;
      idle_since_ms = engine_->now_ms();
    }
    h2_arm_timer();
    if (has_room()) engine_->on_connection_released(this);
  }
  // After the room was offered: a refused stream may go on this connection.
  for (auto& t : retries) engine_->retry(std::move(t));
}

void Connection::h2_arm_timer() {
  if (state_ == State::kClosing) return;
  uint64_t due = h2().wake_at();
  if (due == 0) {
    if (timer_mode_ != TimerMode::kNone) uv_timer_stop(&timer_);
    timer_mode_ = TimerMode::kNone;
    return;
  }
  if (timer_mode_ == TimerMode::kStreams && due == timer_due_) return;  // set already
  uint64_t now = engine_->now_ms();
  timer_mode_ = TimerMode::kStreams;
  timer_due_ = due;
  uv_timer_start(&timer_, &Connection::on_timer, due > now ? due - now : 0, 0);
}

void Connection::h2_on_timer() {
  if (state_ == State::kClosing) return;
  h2().set_now(engine_->now_ms());
  h2().expire();
  if (h2().timed_out()) health_ = Health::kSpent;  // no new streams; closes once its streams end
  h2_flush();
  h2_settle();
}

bool Connection::h2_usable_for_reuse(uint64_t now_ms) {
  if (state_ == State::kClosing || health_ == Health::kSpent) return false;
  if (h2().open_exchanges() == 0) {
    if (keepalive_expired(now_ms)) return false;
    // Take in what arrived while nobody ran the loop (SETTINGS, PING,
    // GOAWAY, or the end of the connection).
    constexpr size_t kScratch = 16 * 1024;
    struct ReuseScratch {};
    char* scratch = thread_scratch<ReuseScratch, kScratch>();
    if (scratch == nullptr) return false;  // no memory to look with: not reused
    StreamChain::keep_lent();              // a delivery this runs inside may be reading it
    for (int reads = 0;; reads++) {
      if (reads == kWaitingReads) return false;  // an idle peer that never stops writing
      size_t n = 0;
      SocketStream::Peek p = socket_.read_now(scratch, kScratch, &n);
      if (p == SocketStream::Peek::kData) {
        chain_.receive(scratch, n);
        if (state_ == State::kClosing) return false;
        continue;
      }
      if (p == SocketStream::Peek::kEof) {
        on_eof();
        return false;
      }
      if (p == SocketStream::Peek::kError) {
        health_ = Health::kSpent;
        close(Error());
        return false;
      }
      break;
    }
  }
  return state_ != State::kClosing && h2().can_take_exchange();
}

}  // namespace httprs
