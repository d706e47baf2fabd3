// Connection's reading (see connection.h): resuming a paused read, the direct
// wait on a ready socket, a body's low-water marks, the buffers the socket and
// the layer chain read into (a body's own where it can), the plaintext and the
// response the session makes of it; a switched protocol's raw bytes; what an
// EOF or a read error means in each state, and the resend after a stale
// kept-alive connection's.
#include "connection.h"
#include "scratch.h"

namespace httprs {

void Connection::resume_reading(Transfer& t) {
  if (is_http2() && state_ != State::kClosing) {
    h2().set_now(engine_->now_ms());
    // The WINDOW_UPDATE that opens the stream's window on its first read goes
    // now: the server waits for it, and the consumer may not wait (a chunk
    // taken from the buffer) until it has used what it got. Later ones, if
    // any, with the next flush.
    if (h2().resume(t))
      h2_flush();
    else
      h2_flush_later();
    h2_settle();  // its read deadline runs again: re-arm the timer
    return;
  }
  if (state_ == State::kClosing || !is_http1()) return;
  bool resumed = h1().resume();
  if (resumed) socket_.start_reading();
  // The consumer asks for body bytes (a sink), or took some and works on them:
  // its read deadline starts anew, or stops (arm_timer, consumer_busy), as
  // httpx's read timeout bounds each read call, not the consumer's work.
  bool turned = cur_.get() == &t && t.head_ready && t.body_sent &&
                h1().flow() != Http1Session::Flow::kPaused &&
                (timer_mode_ == TimerMode::kNone || timer_mode_ == TimerMode::kRead);
  if (cur_ && !cur_->complete && (resumed || turned)) arm_timer(TimerMode::kRead);
}

int Connection::direct_wait_fd(const Transfer& t) {
  if (cur_.get() != &t || gated_ != Stage::kNone || flush_wanted_ || !socket_.reading() ||
      socket_.writes_pending() > 0)
    return -1;
  // The origin's TLS handshake for `t` waits for the server's next flight (no
  // other request waits on a connection that may become HTTP/2): the poll
  // that wakes it reads that flight itself, where the loop's round after it
  // was one epoll_wait more per new connection.
  if (state_ == State::kHandshaking)
    return handshaking_ == Stage::kTls && purpose_ == Purpose::kTransfer && !may_http2_
               ? socket_.fd()
               : -1;
  if (state_ != State::kActive || !is_http1() || !t.body_sent || h1().draining() ||
      h1().flow() != Http1Session::Flow::kReading)
    return -1;
  return socket_.fd();
}

SocketStream::ReadNow Connection::read_for_direct_wait(const Transfer& t) {
  if (direct_wait_fd(t) < 0) return SocketStream::ReadNow::kLoop;
  return socket_.read_ready();
}

size_t Connection::body_mark(const Transfer& t, size_t least, size_t most) const {
  if (cur_.get() != &t || state_ != State::kActive || !is_http1()) return 0;
  size_t want = 0;
  if (h1().direct_read_buffer(&want) == nullptr) return 0;
  return wire_mark(want, least, most);
}

size_t Connection::wire_mark(size_t want, size_t least, size_t most) const {
  // Through TLS (or a tunnel's): the socket brings at least what the protocol
  // takes next, less what the layers already hold of it (a record's worth
  // and what they were fed), never more: a mark above it would wait for
  // bytes the server never sends.
  size_t held = chain_.held_bound();
  if (held >= want || want - held < least) return 0;
  want -= held;
  return want < most ? want : most;
}

Connection::BodyWait Connection::prepare_body_wait(const Transfer& t, size_t least, size_t most) {
  size_t mark = body_mark(t, least, most);
  if (mark == 0) return BodyWait::kNone;
  if (socket_.bytes_queued() >= static_cast<int>(mark)) return BodyWait::kQueued;
  return socket_.set_read_lowat(static_cast<int>(mark)) ? BodyWait::kMarked : BodyWait::kNone;
}

Connection::BodyWait Connection::mark_chunk_wait(const Transfer& t, size_t least, size_t most) {
  size_t mark = body_mark(t, least, most);
  if (mark == 0) return BodyWait::kNone;
  if (t.sink_use != SinkUse::kWhole && socket_.bytes_queued() >= static_cast<int>(mark))
    return BodyWait::kQueued;
  if (!socket_.set_read_lowat(static_cast<int>(mark))) return BodyWait::kNone;
  chunk_mark_ = ChunkMark::kMarked;
  chunk_mark_bytes_ = mark;
  return BodyWait::kMarked;
}

bool Connection::mark_h2_wait(const Transfer& t, size_t least, size_t most) {
  if (!is_http2() || state_ != State::kActive || chunk_mark_ != ChunkMark::kNone || flush_wanted_ ||
      socket_.writes_pending() > 0 || socket_.write_deferred() || !socket_.reading())
    return false;
  size_t mark = wire_mark(h2().body_mark(t), least, most);
  if (mark == 0 || !socket_.set_read_lowat(static_cast<int>(mark))) return false;
  chunk_mark_ = ChunkMark::kMarked;
  chunk_mark_bytes_ = mark;
  return true;
}

bool Connection::end_h2_wait() {
  if (chunk_mark_ == ChunkMark::kNone) return false;
  clear_chunk_mark();
  return state_ == State::kActive && socket_.reading() &&
         socket_.read_ready() == SocketStream::ReadNow::kRead;
}

void Connection::follow_body_mark() {
  if (chunk_mark_ == ChunkMark::kNone || !cur_ || cur_->sink_use != SinkUse::kWhole) return;
  size_t mark = body_mark(*cur_, 1, chunk_mark_bytes_);
  if (mark == 0) {
    clear_chunk_mark();  // the sink is full, or the body is in: any byte is news
    return;
  }
  if (mark == chunk_mark_bytes_) return;
  chunk_mark_bytes_ = mark;
  if (!socket_.set_read_lowat(static_cast<int>(mark))) clear_chunk_mark();
}

void Connection::clear_chunk_mark() {
  if (chunk_mark_ == ChunkMark::kNone) return;
  chunk_mark_ = ChunkMark::kNone;
  // Back to 1: the kernel then reports the socket readable at once when
  // bytes wait under the old mark (tcp_set_rcvlowat wakes its pollers).
  socket_.set_read_lowat(1);
}

void Connection::pause_if_asked() {
  if (!is_http1() || h1().flow() != Http1Session::Flow::kPaused) return;
  // An async consumer's event loop finds the socket readable before the
  // consumer's task runs: a pause libuv is not told of would cost that loop
  // an extra pass (stop on it, remove from epoll on the next), so stop now.
  if (cur_ && cur_->watched)
    socket_.stop_reading();
  else
    socket_.pause_reading();
  arm_timer(TimerMode::kNone);
}

char* Connection::socket_read_buffer(size_t* len) {
  char* buf = engine_->read_buffer(len);
  if (state_ != State::kActive || !is_http1() || chain_.connecting()) return buf;
  // A body of known length goes straight into its consumer's buffer when no
  // layer transforms the bytes: the parser still reads every byte, in place.
  size_t direct_len = 0;
  if (chain_.passthrough())
    if (char* direct = h1().direct_read_buffer(&direct_len)) {
      *len = direct_len;
      return direct;
    }
  // Else at most what the consumer has room for (through TLS: about that
  // much plaintext), so the rest waits in the kernel, not in a buffer here.
  *len = h1().read_limit(*len);
  return buf;
}

char* Connection::chain_read_buffer(size_t* len) {
  // Through TLS: decrypt a body of known length straight into the sink.
  if (state_ != State::kActive || !is_http1()) return nullptr;
  return h1().direct_read_buffer(len);
}

void Connection::on_plaintext(const char* data, size_t len) {
  if (is_http2()) {
    h2_receive(data, len);
    return;
  }
  if (state_ == State::kSwitched) {
    on_switched_data(data, len);
    return;
  }
  if (state_ == State::kHeld) {
    health_ = Health::kSpent;  // bytes after a complete response: not reusable
    socket_.stop_reading();
    return;
  }
  if (state_ == State::kIdle || !cur_) {
    // Bytes nobody asked for: this connection cannot be trusted any more.
    health_ = Health::kSpent;
    close(Error());
    return;
  }
  if (state_ != State::kActive) return;
  size_t used = 0;
  Error err;
  ProtocolSession::Result r = session_->receive(data, len, &used, err);
  if (state_ == State::kClosing) return;
  on_response(r, data, len, used, err);
}

void Connection::on_response(ProtocolSession::Result r, const char* data, size_t len, size_t used,
                             const Error& err) {
  bool was_paused = h1().flow() == Http1Session::Flow::kPaused;
  pause_if_asked();
  switch (r) {
    case ProtocolSession::Result::kDiscard:
      // Past the drain bound, reading on costs more than a new connection.
      close(Error());
      break;
    case ProtocolSession::Result::kMore:
      if (cur_ && cur_->body_sent && !was_paused && !h1().draining()) arm_timer(TimerMode::kRead);
      follow_body_mark();
      break;
    case ProtocolSession::Result::kComplete:
      if (used < len) health_ = Health::kSpent;  // extra bytes after the response
      finish_transfer();
      break;
    case ProtocolSession::Result::kSwitched:
      on_switched(data + used, len - used);
      break;
    case ProtocolSession::Result::kFailed:
      fail_transfer(err);
      break;
  }
}

void Connection::on_switched(const char* rest, size_t len) {
  health_ = Health::kSpent;  // never HTTP/1.1 again: not reusable, whatever happens next
  // Reading resumes when the consumer first takes from the raw stream.
  socket_.stop_reading();
  cur_->raw_in.assign(rest, len);
  finish_transfer();
  if (state_ == State::kHeld) state_ = State::kSwitched;
}

void Connection::on_switched_data(const char* data, size_t len) {
  if (!cur_) return;
  cur_->raw_in.append(data, len);
  // switched_resume reads on
  if (cur_->raw_in.size() >= Http1Session::kHighWater) socket_.stop_reading();
  engine_->signal(*cur_);
}

void Connection::end_switched(Transfer::RawState how, const Error& err) {
  socket_.stop_reading();
  if (!cur_ || cur_->raw_state != Transfer::RawState::kOpen) return;
  if (how == Transfer::RawState::kFailed) cur_->raw_error = err;
  cur_->raw_state = how;
  engine_->signal(*cur_);
}

void Connection::fail_switched(ErrorKind kind, int status) {
  Error err;
  err.set(kind, errno_message(status));
  end_switched(Transfer::RawState::kFailed, err);
}

void Connection::switched_resume() {
  if (state_ != State::kSwitched || !cur_ || cur_->raw_state != Transfer::RawState::kOpen) return;
  if (cur_->raw_in.size() < Http1Session::kHighWater) socket_.start_reading();
}

void Connection::switched_write(const char* data, size_t len) {
  if (state_ != State::kSwitched || !cur_ || cur_->raw_state == Transfer::RawState::kFailed) return;
  Outgoing out;
  out.owned.assign(data, len);
  send(std::move(out));
  if (cur_) cur_->raw_unsent = static_cast<size_t>(socket_.writes_pending());
}

int Connection::switched_fd() { return state_ == State::kSwitched ? socket_.fd() : -1; }

Error Connection::connecting_error(ErrorKind io, const std::string& message) const {
  // While a layer connects (or waits at the gate after its handshake), it
  // says what a failed read or write (`io`) means: a ConnectError, or a
  // CONNECT tunnel's ReadError / WriteError.
  Error err;
  StreamLayer* top = const_cast<StreamChain&>(chain_).top();
  err.set(top ? top->socket_error_kind(io) : ErrorKind::kConnectError, message);
  return err;
}

void Connection::on_eof() {
  health_ = Health::kSpent;
  if (is_http2()) {
    Error err;
    h2().set_now(engine_->now_ms());
    if (h2().open_exchanges() > 0) h2().receive_eof(err);
    close(err);
    return;
  }
  if (state_ == State::kSwitched) {
    end_switched(Transfer::RawState::kEof, Error());
    return;
  }
  if (state_ == State::kHeld) {
    socket_.stop_reading();
    return;
  }
  if (state_ == State::kIdle || !cur_) {
    close(Error());
    return;
  }
  if (state_ == State::kActive) {
    Error err;
    if (session_->receive_eof(err) == ProtocolSession::Result::kComplete) {
      finish_transfer();
      return;
    }
    if (may_resend()) {
      resend(err);
      return;
    }
    fail_transfer(err);
    return;
  }
  Error err;
  if (StreamLayer* top = chain_.top())
    err = top->eof_while_connecting();
  else
    err.set(ErrorKind::kConnectError, "Server disconnected while connecting.");
  close(err);
}

void Connection::on_read_error(int status) {
  health_ = Health::kSpent;
  if (status == UV_ENOBUFS) {
    // No buffer to read into (Engine::read_buffer, on an exhausted heap):
    // this connection fails with a clear error; the next one tries again.
    // While connecting (the TLS handshake's first read makes the buffer),
    // a failure is the connect's, as any other failed read then would be.
    ErrorKind kind = ErrorKind::kReadError;
    if (state_ == State::kConnecting || state_ == State::kHandshaking)
      kind = connecting_error(kind, std::string()).kind;
    close(scratch_error(kind, Engine::kReadBufferSize));
    return;
  }
  if (is_http2()) {
    Error err;
    if (h2().open_exchanges() > 0) {
      std::string goaway = h2().goaway_note();
      if (goaway.empty()) {
        err.set(ErrorKind::kReadError, errno_message(status));
      } else {
        // The server said it ended the connection for an error; the reset follows.
        err.set(ErrorKind::kRemoteProtocolError,
                "Server disconnected" + goaway + ": " + errno_message(status));
      }
    }
    close(err);
    return;
  }
  if (state_ == State::kSwitched) {
    fail_switched(ErrorKind::kReadError, status);
    return;
  }
  if (state_ == State::kHeld) {
    socket_.stop_reading();
    return;
  }
  if (state_ == State::kActive && may_resend()) {
    Error why;
    why.set(ErrorKind::kReadError, errno_message(status));
    resend(why);
    return;
  }
  if (!cur_) {
    close(Error());
    return;
  }
  Error err;
  if (state_ == State::kActive)
    err.set(ErrorKind::kReadError, errno_message(status));
  else
    err = connecting_error(ErrorKind::kReadError, errno_message(status));
  fail_transfer(err);
}

void Connection::chain_read_error(const Error& err) {
  if (cur_)
    fail_transfer(err);
  else
    close(err);  // HTTP/2: the streams end with it
}

bool Connection::may_resend() const {
  // Only on a kept-alive connection: the stale keep-alive race.
  return cur_ && reuses_ > 0 && is_http1() && h1().may_resend(*cur_);
}

void Connection::resend(const Error& why) {
  std::shared_ptr<Transfer> t = detach_transfer();
  // Another idle connection of the pool may be as stale as this one (a server
  // that dropped them all): the one resend goes out on a new connection.
  t->resend = Transfer::Resend::kAwaitingConnection;
  t->resent_after = why;
  close(Error());
  engine_->retry(std::move(t));
}

}  // namespace httprs
