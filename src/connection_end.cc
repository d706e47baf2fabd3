// The end of a Connection's exchange (see connection.h): detaching the
// transfer, finishing, holding and releasing, failing, abandoning (draining an
// abandoned response for the pool), the keep-alive expiry and the checks
// before reuse; and the timers: the connect, read, write and drain deadlines,
// the bytes that wait in the socket when a read deadline is found past, and
// HTTP/2's stream deadlines.
#include <algorithm>
#include <cerrno>

#include "connection.h"
#include "scratch.h"
#include "timeouts.h"

namespace httprs {

namespace {

constexpr double kDrainSeconds = 0.5;  // abandoned responses: drain for at most this long

// usable_for_reuse's reads (and take_waiting_bytes')
constexpr size_t kPeekScratch = 64 * 1024;
struct PeekScratch {};
char* peek_scratch() { return thread_scratch<PeekScratch, kPeekScratch>(); }

}  // namespace

// ---------------------------------------------------------------- the exchange's end

std::shared_ptr<Transfer> Connection::detach_transfer() {
  clear_chunk_mark();
  if (is_http1()) h1().detach();
  std::shared_ptr<Transfer> t = std::move(cur_);
  cur_.reset();
  if (t) t->conn = nullptr;
  return t;
}

bool Connection::reusable() const {
  return health_ == Health::kSound && is_http1() && h1().keep_alive() &&
         socket_.writes_pending() == 0 && cur_ && cur_->body_sent;
}

void Connection::finish_transfer() {
  Transfer& t = *cur_;
  gated_ = Stage::kNone;  // a response that came before a trace gate was passed
  t.complete = true;
  t.phase = Transfer::Phase::kDone;
  engine_->signal(t);
  arm_timer(TimerMode::kNone);
  clear_chunk_mark();
  state_ = State::kHeld;
  if (h1().finish()) release_held();  // it was being drained: nobody holds it
}

void Connection::set_purpose(Purpose p) {
  if (p == purpose_) return;
  engine_->note_pool_work(p == Purpose::kPool ? 1 : -1);
  purpose_ = p;
}

void Connection::release_held() {
  set_purpose(Purpose::kTransfer);  // a drain, if any, is over
  bool keep = reusable();
  detach_transfer();
  if (!keep) {
    close(Error());
    return;
  }
  state_ = State::kIdle;
  if (h1().resume()) socket_.start_reading();
  engine_->on_connection_released(this);
}

void Connection::fail_transfer(const Error& err) {
  // Do not resume a TLS session that ended in an error.
  if (origin_tls_) origin_tls_->session().mark_failed();
  close(err);
}

void Connection::abandon(Transfer& t) {
  if (is_http2()) {
    h2_abandon(t);
    return;
  }
  if (cur_.get() == &t) abandon();
}

void Connection::abandon() {
  if (gated_ != Stage::kNone) {
    // Stopped at a trace gate: nothing of the next phase is under way.
    gated_ = Stage::kNone;
    detach_transfer();
    close(Error());
    return;
  }
  switch (state_) {
    case State::kHeld:
      release_held();
      return;
    case State::kConnecting:
    case State::kHandshaking:
      // Finish connecting and give the connection to the pool: closing now
      // would only make the next request open another one. The transfer
      // stays, for its settings, but no longer points here.
      if (cur_) cur_->conn = nullptr;
      set_purpose(Purpose::kPool);
      return;
    case State::kActive:
      // The request counts as sent once libuv handed every byte to the
      // kernel, even if the write callback has not run yet.
      if (cur_ && h1().upload() != Http1Session::Upload::kStreaming && !h1().request_closes() &&
          (cur_->body_sent || socket_.write_queue_empty()) &&
          cur_->body_received <= Http1Session::kDrainLimit) {
        cur_->body_sent = true;
        // The request is on the wire: read the rest of the response into the
        // void and reuse the connection, within a bound of bytes and time.
        cur_->conn = nullptr;
        cur_->sink = nullptr;
        cur_->body_buf.clear();
        std::vector<uint64_t>().swap(cur_->chunk_ends);
        clear_chunk_mark();
        h1().drain();
        set_purpose(Purpose::kPool);
        if (h1().resume()) socket_.start_reading();
        arm_timer(TimerMode::kDrain);
        return;
      }
      break;
    default:
      break;
  }
  detach_transfer();
  close(Error());
}

bool Connection::draining_for_pool() const {
  return purpose_ == Purpose::kPool && state_ == State::kActive && is_http1() && h1().draining();
}

bool Connection::keepalive_expired(uint64_t now_ms) const {
  if (engine_->limits().expire_at_once()) return true;
  uint64_t expiry_ms = 0;
  return timeout_ms(engine_->limits().keepalive_expiry, &expiry_ms) &&
         now_ms - idle_since_ms > expiry_ms;
}

bool Connection::usable_for_reuse(uint64_t now_ms) {
  if (is_http2()) return h2_usable_for_reuse(now_ms);
  if (state_ != State::kIdle || health_ == Health::kSpent || !has_room()) return false;
  if (keepalive_expired(now_ms)) return false;
  // Drain whatever arrived while nobody ran the loop: an EOF or stray bytes
  // mean the server is done with this connection.
  char* buf = peek_scratch();
  if (buf == nullptr) return false;  // no memory to look with: not reused (closed)
  StreamChain::keep_lent();          // a delivery this runs inside may be reading buf
  for (int reads = 1;; reads++) {
    size_t n = 0;
    switch (socket_.read_now(buf, kPeekScratch, &n)) {
      case SocketStream::Peek::kData:
        chain_.receive(buf, n);
        if (state_ != State::kIdle || reads == kWaitingReads) return false;
        continue;
      case SocketStream::Peek::kEof:
        on_eof();
        return false;
      case SocketStream::Peek::kWouldBlock:
        return health_ == Health::kSound && state_ == State::kIdle;
      case SocketStream::Peek::kError:
        health_ = Health::kSpent;
        close(Error());
        return false;
    }
  }
}

// ---------------------------------------------------------------- timers

void Connection::arm_timer(TimerMode mode) {
  if (state_ == State::kClosing) return;
  if (mode == TimerMode::kRead && consumer_busy()) mode = TimerMode::kNone;
  double seconds = -1;
  if (cur_) {
    const RequestSpec& s = cur_->spec;
    switch (mode) {
      case TimerMode::kConnect:
        seconds = s.connect_timeout;
        break;
      case TimerMode::kRead:
        seconds = s.read_timeout;
        break;
      case TimerMode::kWrite:
        seconds = s.write_timeout;
        break;
      case TimerMode::kDrain:
        seconds = kDrainSeconds;
        if (s.read_timeout >= 0 && s.read_timeout < seconds) seconds = s.read_timeout;
        break;
      case TimerMode::kNone:
      case TimerMode::kStreams:
        break;
    }
  }
  if (mode == TimerMode::kConnect && timer_mode_ == TimerMode::kConnect) return;
  uint64_t ms = 0;
  if (mode == TimerMode::kNone || !timeout_ms(seconds, &ms, 1)) {
    if (timer_mode_ != TimerMode::kNone) uv_timer_stop(&timer_);
    timer_mode_ = TimerMode::kNone;
    return;
  }
  timer_mode_ = mode;
  if (mode == TimerMode::kWrite) {
    unsent_at_deadline_ = socket_.unsent_bytes();
    write_slice_ms_ = std::max<uint64_t>(1, (ms + kWriteSlices - 1) / kWriteSlices);
    write_slices_left_ = static_cast<int>((ms + write_slice_ms_ - 1) / write_slice_ms_);
    ms = write_slice_ms_;
  }
  uv_timer_start(&timer_, &Connection::on_timer, ms, 0);
}

// The write deadline runs in kWriteSlices slices, each checking for progress:
// a byte that left in any slice starts the deadline anew, so it fires between
// the timeout and 1 + 1/kWriteSlices times it after the last byte left, as
// httpx's (whose timeout bounds a send call), not up to twice the timeout after.
bool Connection::next_write_slice() {
  if (write_slices_left_ <= 1) return false;
  write_slices_left_--;
  timer_mode_ = TimerMode::kWrite;
  uv_timer_start(&timer_, &Connection::on_timer, write_slice_ms_, 0);
  return true;
}

// libuv runs the timers that are due before it polls for I/O, so after a
// pause in driving the loop (a consumer busy between two chunks, a process
// not scheduled for a while) a read deadline can be found past while the
// answer already waits in the socket. A plain recv() (httpx) would return those
// bytes, so take them in first: bytes, an EOF or a reset decide the outcome as
// if the loop had read them. Returns false when nothing was waiting. At most
// kWaitingReads reads: a peer that never stops writing frames that move nothing
// on (HTTP/2 PRIORITY, unknown types, empty DATA) held the engine here, and every
// other request of the client with it, for as long as it wrote.
bool Connection::take_waiting_bytes() {
  bool took = false;
  int reads = 0;
  char* buf = peek_scratch();
  StreamChain::keep_lent();  // a delivery this runs inside may be reading buf
  for (;;) {
    bool h1_reading =
        state_ == State::kActive && is_http1() && h1().flow() != Http1Session::Flow::kPaused;
    if (state_ == State::kClosing || (!is_http2() && !h1_reading)) return took;
    if (socket_.write_in_flight()) {
      // Another thread's write on this socket is out of the engine mutex:
      // what the loop read meanwhile is held back until it is accounted for
      // (SocketStream::end_deferred), and a read now would pass it. Input
      // that arrived counts as taken in: the accounting delivers what is
      // held, the loop what waits in the kernel. The HTTP/2 streams' expiry
      // waits for that (on_socket_deferred_ended).
      if (!socket_.input_arrived_in_flight()) return took;
      deadline_after_flight_ = true;
      return true;
    }
    if (buf == nullptr) {  // no memory to read into: fail as a read would, not as a timeout
      close(scratch_error(ErrorKind::kReadError, kPeekScratch));
      return true;
    }
    size_t n = 0;
    switch (socket_.read_now(buf, kPeekScratch, &n)) {
      case SocketStream::Peek::kData:
        took = true;
        chain_.receive(buf, n);
        pause_if_asked();
        if (++reads == kWaitingReads) return took;
        continue;
      case SocketStream::Peek::kEof:
        on_eof();
        return true;
      case SocketStream::Peek::kError: {
        int status = -errno;  // read_now's recv() failed: errno is its error
        on_read_error(status);
        return true;
      }
      case SocketStream::Peek::kWouldBlock:
        return took;
    }
  }
}

bool Connection::consumer_busy() const {
  return state_ == State::kActive && is_http1() && cur_ && cur_->consumer_busy() &&
         !h1().draining();
}

void Connection::on_read_deadline() {
  // Armed while the consumer waited; it has taken a chunk since and works on
  // it: its next ask starts the deadline anew (resume_reading).
  if (consumer_busy()) return;
  if (take_waiting_bytes()) {
    // Bytes arrived in time: the wait for the next ones starts now, as the
    // read of a fresh recv() would (a partial TLS record re-arms nothing
    // by itself).
    if (timer_mode_ == TimerMode::kNone) await_response();
    return;
  }
  Error err;
  err.set(ErrorKind::kReadTimeout, "timed out");
  health_ = Health::kSpent;
  close(err);
}

bool Connection::write_progressed() {
  // As httpx's sync writes, whose timeout bounds each send: the deadline
  // bounds a wait in which nothing of the request leaves. A peer reading
  // slowly but steadily drains the send queue, and each drained byte starts
  // the wait anew; one that stops reading times the write out.
  return socket_.unsent_bytes() < unsent_at_deadline_;
}

void Connection::on_timer(uv_timer_t* h) {
  auto* c = static_cast<Connection*>(h->data);
  TimerMode mode = c->timer_mode_;
  c->timer_mode_ = TimerMode::kNone;
  Error err;
  switch (mode) {
    case TimerMode::kConnect:
      err.set(ErrorKind::kConnectTimeout, "timed out");
      break;
    case TimerMode::kRead:
      c->on_read_deadline();
      return;
    case TimerMode::kWrite:
      if (c->write_progressed()) {
        c->arm_timer(TimerMode::kWrite);
        return;
      }
      if (c->next_write_slice()) return;
      err.set(ErrorKind::kWriteTimeout, "timed out");
      break;
    case TimerMode::kDrain:
      break;  // an abandoned response took too long: just close
    case TimerMode::kStreams:
      // Per-stream deadlines: only those streams fail, after what waits in
      // the socket was taken in (it may complete or advance them), or once
      // a write in flight is accounted for when input is held behind it.
      c->take_waiting_bytes();
      if (!c->deadline_after_flight_) c->h2_on_timer();
      return;
    case TimerMode::kNone:
      return;
  }
  c->health_ = Health::kSpent;
  c->close(err);
}

}  // namespace httprs
