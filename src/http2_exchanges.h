// HTTP/2 as a ProtocolSession: the sans-IO Http2Session (nghttp2) carrying
// many exchanges (Transfers) at once, one stream each. It turns the
// session's per-stream events into transfer state (head, body into the
// consumer's sink or buffer, completion, failure), gives the flow-control
// window back only as the consumer takes body bytes, and keeps a deadline
// per stream (write timeout until the request is out, then read timeout).
//
// Streams that end leave the session; the connection collects them with
// take_ended() and tells the engine (a stream the server did not process is
// to be retried on another connection). No sockets, no timers, no engine
// calls: the connection moves bytes and time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "http2_session.h"
#include "protocol_session.h"

namespace httprs {

class Http2Exchanges final : public ProtocolSession, private Http2DataSink {
 public:
  // Body bytes a consumer may leave unread before the stream's window is no
  // longer given back (the same bound as HTTP/1.1's pause).
  static constexpr size_t kHighWater = 1 << 20;
  static constexpr int kMaxAttempts = 5;  // retries of unprocessed streams (GOAWAY, refused)

  // How a stream left: its response complete, failed, or to be sent again on
  // another connection (the server never processed it).
  enum class Outcome { kComplete, kFailed, kRetry };
  struct Ended {
    std::shared_ptr<Transfer> transfer;
    Outcome outcome;
  };

  explicit Http2Exchanges(SessionListener* listener, Http2Config config = {});

  // Queue the connection preface and our SETTINGS. False: err set.
  bool start(Error& err);

  // ProtocolSession
  Protocol protocol() const override { return Protocol::kHttp2; }
  int max_exchanges() const override;
  int open_exchanges() const override { return static_cast<int>(streams_.size()); }
  bool can_take_exchange() const override;
  bool submit(Transfer& t, Error& err) override;
  BodyStep send_body(Transfer& t, const char* data, size_t len, bool last, Error& err) override;
  bool take_output(Outgoing& out) override;
  // Feeds the bytes (all consumed). kFailed: a connection error (every stream
  // has ended); kMore otherwise.
  Result receive(const char* data, size_t len, size_t* consumed, Error& err) override;
  // The server closed the connection: every stream fails (the unprocessed
  // ones are retried). Always kFailed, err says why.
  Result receive_eof(Error& err) override;

  // The time (engine ms) for the deadlines the next calls set or check.
  void set_now(uint64_t now_ms) { now_ = now_ms; }
  // The connection broke (EOF, read error, timeout): every stream ends with
  // `err` (after a failed write, those whose request did not all go out end
  // with that write error), except those the server never processed (never
  // sent, or above a GOAWAY's last stream id), which are retried.
  void lost(const Error& err);
  // A socket write failed: nothing more goes out (take_output() gives
  // nothing), but reading goes on, so a GOAWAY and complete responses already
  // on their way are taken in before lost() ends the rest; as HTTP/1.1 lets
  // the read side decide after a failed write.
  void write_failed(const Error& err);
  bool writable() const { return !write_error_; }
  // The connection closes for good (client closed): every stream fails.
  void fail_all(const Error& err);
  // The consumer left `t` before its response ended: RST_STREAM(CANCEL) for
  // that stream only.
  void cancel(Transfer& t);
  // The consumer reads `t`'s body (takes bytes, hands over its buffer, or
  // wants it all): its window opens wide on the first such call, and opens
  // again as bytes are taken. True when that first call queued the
  // WINDOW_UPDATE: the server waits for it, so it is to go out at once.
  bool resume(Transfer& t);
  // The output take_output() gave went out as the socket's write number
  // `seq` (SocketStream::writes_started()): the streams it moved forward
  // wait for that write.
  void mark_flushed(uint64_t seq);
  // The socket's writes up to number `done` completed: the streams whose
  // output they carried moved (their write timeout starts again), and those
  // whose whole request is out count as sent. A stream that did not move
  // keeps its deadline, whatever the other streams write.
  void note_written(uint64_t done);
  // How many more body bytes of `t` a wait may sleep for: `t` is the only
  // stream, its whole body goes into the consumer's sink (`.content`) and its
  // head declared the length. At most what is still due and half of what the
  // windows let the server send (the reads after the wake-up give the window
  // back before the server runs out of it). 0: wake on any byte.
  size_t body_mark(const Transfer& t) const;
  // Streams past their deadline fail (ReadTimeout / WriteTimeout) and are
  // reset; the others go on.
  void expire();
  // A stream's deadline passed on this connection: it takes no new streams
  // (the server, or the path to it, may be gone; a request would wait out
  // its whole timeout on it again). httpcore gives up on a connection at its
  // first timeout; here the streams still open go on.
  bool timed_out() const { return timed_out_; }
  // When the owner's timer should fire (0: no stream has a deadline): never
  // later than the earliest deadline, maybe earlier (a deadline that moved
  // later is not looked for at each step: with many streams in flight that
  // walk cost more than the rare early wake-up, after which expire() finds
  // the true one).
  uint64_t wake_at() const { return wake_at_; }
  // The earliest deadline of any stream (0: none), walking them all.
  uint64_t next_deadline() const;

  std::vector<Ended> take_ended();
  bool goaway_received() const { return session_.goaway_received(); }
  std::string goaway_note() const { return session_.goaway_note(); }
  // Nothing more can happen on this connection (GOAWAY exchanged, or dead).
  bool finished() const { return session_.finished(); }

 private:
  // A stream's receive window: the initial one until its consumer first
  // reads (what comes before is held to it), then stream_window.
  enum class Window { kInitial, kOpen };

  struct Stream {
    std::shared_ptr<Transfer> transfer;
    Window window = Window::kInitial;
    bool streamed = false;   // the body comes through send_body
    uint64_t remaining = 0;  // streamed with Content-Length: bytes still due
    bool length_known = false;
    size_t unread_credit = 0;  // DATA bytes delivered but not given back yet
    uint64_t deadline = 0;     // engine ms; 0: none
    uint64_t write_mark = 0;   // socket write carrying its latest output; 0: none
  };

  void on_event(Http2Event& ev);
  void on_headers(Stream& s, Http2Event& ev);
  void on_data(Stream& s, int32_t id, Http2Event& ev);  // may take ev.data
  // Http2DataSink: DATA straight into the consumer's sink when it all fits
  // there and nothing is buffered ahead of it.
  bool take_data(int32_t stream_id, const char* data, size_t len) override;
  // Room for `len` more bytes in the buffer of a stream with no sink whose
  // head declared a length.
  void grow_declared(const Stream& s, size_t len) const;
  // Whether DATA that just came is given back to the server at once (else
  // held as unread credit until the consumer takes bytes).
  bool gives_back(const Stream& s) const;
  void end_stream(int32_t id, Outcome outcome);
  void fail_stream(int32_t id, const Error& err, bool retryable);
  void process_events();
  void arm(Stream& s);
  int32_t find(const Transfer& t) const;

  SessionListener* listener_;
  Http2Session session_;
  std::map<int32_t, Stream> streams_;
  std::vector<Ended> ended_;
  std::vector<Http2Event> spare_;        // process_events()' batch memory
  std::vector<int32_t> flushed_;         // streams moved by the last take_output()
  std::vector<int32_t> awaiting_write_;  // streams with a write_mark, for note_written
  Error write_error_;                    // set once a socket write failed
  // The most a stream's buffer holds: kHighWater, then what its window lets in;
  // before its first read, its initial window.
  size_t buffer_most_;
  size_t first_most_;
  uint64_t now_ = 0;
  bool timed_out_ = false;  // see timed_out()
  uint64_t wake_at_ = 0;    // see wake_at()
};

}  // namespace httprs
