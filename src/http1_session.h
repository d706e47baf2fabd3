// HTTP/1.1 as a ProtocolSession: the request writer (framing exactly as
// serialize_request decided) and the llhttp response parser, one exchange at
// a time, sans-IO. It delivers the response into the current Transfer (head,
// body into the consumer's sink or buffer) and keeps the exchange's state;
// the connection owns the socket, timers and the pool's view.
#pragma once

#include <cstdint>
#include <string>

#include "http1.h"
#include "protocol_session.h"

namespace httprs {

class Http1Session final : public ProtocolSession, private ResponseParser::Sink {
 public:
  static constexpr size_t kHighWater = 1 << 20;  // a switched stream: read ahead at most this
  // Body bytes buffered with no sink to take them (the consumer has not asked
  // yet): reading pauses once less than a read's worth (kMinRead) of room is
  // left under this mark (water()); the kernel holds the rest.
  static constexpr size_t kBodyWater = 64 << 10;
  // A read that may end a head takes at most this much (water()): what
  // follows the head in the same read is body bytes the consumer has no
  // buffer for yet.
  static constexpr size_t kHeadRead = 64 << 10;
  // The smallest read read_limit() asks for (the end of a chunked body, a
  // nearly full sink: the framing needs a few bytes more than the room).
  static constexpr size_t kMinRead = 16 << 10;
  static constexpr uint64_t kDrainLimit = 256 * 1024;  // abandoned responses: drain at most this
  // Chunk ends a streamed body holds before reading pauses for the consumer to
  // take them: a body of tiny chunks (1 byte of data in 6 on the wire) is held
  // to this many ends plus a read's, not one per byte of the consumer's buffer.
  static constexpr size_t kMaxChunkEnds = 64 << 10;

  // The request body of the current exchange: fixed (handed over at once),
  // streamed (chunks asked from the consumer until the last), or cut short
  // by a failed write (the response then decides the outcome).
  enum class Upload { kFixed, kStreaming, kStreamEnded, kCutShort };
  // Whether any byte of the current request reached the socket.
  enum class Wire { kNothingSent, kSomeSent };
  // The current response: none yet (a fresh session), awaited, arriving,
  // being read into the void for reuse after its consumer left (kDraining)
  // or past that bound (kDiscarded), complete.
  enum class Response { kNone, kAwaiting, kReceiving, kDraining, kDiscarded, kComplete };
  // Reading: paused while body bytes within kMinRead of kBodyWater wait for
  // the consumer, or while its sink is full (a streamed chunk's: nearly full,
  // see sink_full) and more body may follow.
  enum class Flow { kReading, kPaused };

  explicit Http1Session(SessionListener* listener) : listener_(listener) {}

  // ProtocolSession
  Protocol protocol() const override { return Protocol::kHttp1; }
  int max_exchanges() const override { return 1; }
  int open_exchanges() const override { return cur_ != nullptr ? 1 : 0; }
  // A fresh session takes its first exchange; later ones only after a
  // response that keeps the connection alive.
  bool can_take_exchange() const override {
    return cur_ == nullptr && (response_ == Response::kNone || keep_alive());
  }
  bool submit(Transfer& t, Error& err) override;
  BodyStep send_body(Transfer& t, const char* data, size_t len, bool last, Error& err) override;
  bool take_output(Outgoing& out) override;
  Result receive(const char* data, size_t len, size_t* consumed, Error& err) override;
  Result receive_eof(Error& err) override;

  // The exchange's lifecycle, as the connection drives it:
  // be ready for `t`'s response before any byte of its request goes out (an
  // EOF meanwhile must find a parser waiting for this response, not the last
  // one, and no byte of this request sent).
  void expect(Transfer& t);
  // The exchange left the connection (finished, failed, abandoned).
  void detach() { cur_ = nullptr; }
  void note_sent() { wire_ = Wire::kSomeSent; }
  // A write failed: no more body goes out.
  void cut_short() { upload_ = Upload::kCutShort; }
  // The consumer left mid-response: read the rest into the void.
  void drain() { response_ = Response::kDraining; }
  // The response ended; true when it was being drained (nobody holds it).
  bool finish();
  // Reading may go on (the consumer took its bytes); true when it was paused.
  bool resume();

  // The connection may carry another exchange once this one ends: the
  // server keeps it alive, the request did not ask to close it (RFC 9112 9.6:
  // a client that sent "close" sends no further request there) and no streamed
  // upload is still under way.
  bool keep_alive() const {
    return parser_.keep_alive() && !request_closes_ && upload_ != Upload::kStreaming;
  }
  // The request asked to close the connection: it is never reused, whatever follows.
  bool request_closes() const { return request_closes_; }
  // The exchange failed before any response byte on a reused connection: may
  // its request go out again on a fresh one? (See the definition.)
  bool may_resend(const Transfer& t) const;

  // Where the socket may read next, when that is straight into the
  // consumer's sink: inside a body framed by Content-Length, with room in the
  // sink and nothing buffered before it. `*len` is bounded by the body bytes
  // still due, so such a read holds body bytes only; receive() still parses
  // them (in place, without a copy). Null when the read must go elsewhere.
  char* direct_read_buffer(size_t* len) const;
  // How many bytes (of at most `cap`) the next read of response bytes should
  // take, so that body bytes land in the consumer's buffer rather than pile
  // up beside it: a head read takes water(), a body read the room left in
  // the sink (or under water() without one), never less than kMinRead.
  size_t read_limit(size_t cap) const;

  // What a head read takes and the mark for body bytes with no sink: kHeadRead
  // (= kBodyWater), or kMinRead on a connection whose last response had a
  // body larger than that. Its next one likely has too, and body bytes read
  // with the head are copied twice (into the buffer, then into the
  // consumer's), where the rest is read straight into the consumer's: a
  // smaller head read copies ~100 KB less per response (1 MB bodies). A small
  // response, or the first on a connection, reads up to kHeadRead with its
  // head: most often the whole response in one read.
  size_t water() const { return water_; }
  Upload upload() const { return upload_; }
  Response response() const { return response_; }
  Flow flow() const { return flow_; }
  bool draining() const { return response_ == Response::kDraining; }

 private:
  void on_head(ResponseHead&& head) override;
  void on_body(const char* data, size_t len) override;
  void on_chunk_end() override;
  void deliver_body(Transfer& t, const char* data, size_t len);
  // The consumer's sink holds all it should before the consumer takes it.
  bool sink_full(const Transfer& t) const;
  // out_.owned to append to, after any borrowed bytes and their tail (copied
  // into it first).
  std::string& owned_tail();
  // Body bytes for out_, then `tail` (static storage, or none): borrowed
  // (out_.ext, out_.tail) when nothing is borrowed yet, else copied.
  void append_body(Borrowed body, Borrowed tail);
  void pause() {
    if (flow_ == Flow::kReading) flow_ = Flow::kPaused;
  }

  SessionListener* listener_;
  Transfer* cur_ = nullptr;  // the exchange under way (owned by the connection)
  ResponseParser parser_;
  Outgoing out_;
  Upload upload_ = Upload::kFixed;
  Wire wire_ = Wire::kNothingSent;
  Response response_ = Response::kNone;
  bool request_closes_ = false;  // the exchange's request carries Connection: close
  Flow flow_ = Flow::kReading;
  uint64_t body_remaining_ = 0;  // streamed upload with Content-Length: bytes still due
  size_t water_ = kHeadRead;     // see water()
};

}  // namespace httprs
