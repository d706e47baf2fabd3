// The protocol on top of a connection's byte stream. A session is sans-IO:
// the connection hands it the bytes its layers decrypted (receive), writes
// what it produces (take_output) through the layers, and reports the stream's
// end (receive_eof). Exchanges (one request/response, a Transfer) are
// submitted to it; it writes their progress into the Transfer (head, body,
// completion) and tells the engine through a SessionListener.
//
// Http1Session carries one exchange at a time; an HTTP/2 session carries up
// to the peer's MAX_CONCURRENT_STREAMS. The pool asks can_take_exchange().
#pragma once

#include <cstddef>
#include <string>

#include "borrowed.h"
#include "engine.h"
#include "errors.h"

namespace httprs {

// Bytes a session wants sent: `owned`, then the `ext` bytes, which stay the
// caller's (a request body, alive until its write ends), then the `tail`
// bytes, static storage (the CRLF that closes a borrowed upload chunk, so
// the chunk is whole on the wire at once).
struct Outgoing {
  std::string owned;
  Borrowed ext;
  Borrowed tail;
  bool empty() const { return owned.empty() && ext.len == 0 && tail.len == 0; }
};

// How a session tells the engine that a transfer's consumer-visible state
// moved (head arrived, body bytes, completion): Engine::signal.
class SessionListener {
 public:
  virtual ~SessionListener() = default;
  virtual void on_transfer_progress(Transfer& t) = 0;
};

class ProtocolSession {
 public:
  // What receive() / receive_eof() decided for the connection.
  enum class Result {
    kMore,      // keep reading
    kComplete,  // a response ended (`consumed` tells where; any rest is extra)
    kSwitched,  // the protocol switched (101): the bytes after `consumed` are not ours
    kFailed,    // protocol error, err set: the connection is done
    kDiscard,   // an abandoned response outgrew its drain bound: close quietly
  };

  // Which protocol: the connection picks one after the last handshake (ALPN,
  // or prior knowledge) and holds that session alone.
  enum class Protocol { kHttp1, kHttp2 };

  virtual ~ProtocolSession() = default;

  virtual Protocol protocol() const = 0;

  // Exchanges the connection can carry at once, and how many it carries now.
  virtual int max_exchanges() const = 0;
  virtual int open_exchanges() const = 0;
  // Idle, or below its limit, and the peer allows more (keep-alive, no GOAWAY).
  virtual bool can_take_exchange() const = 0;

  // Start exchange `t`: its request goes to the output. False: err set.
  virtual bool submit(Transfer& t, Error& err) = 0;
  // A streamed request body chunk of `t` (`last` ends the body). HTTP/1.1
  // borrows `data` (Outgoing::ext): the consumer keeps the bytes alive until
  // the transfer wants the next chunk (want_body: every write is done) or is
  // released.
  enum class BodyStep { kQueued, kNothing, kIgnored, kFailed };
  virtual BodyStep send_body(Transfer& t, const char* data, size_t len, bool last, Error& err) = 0;
  // Bytes waiting to go out, moved into `out`; false when there are none.
  virtual bool take_output(Outgoing& out) = 0;

  // Bytes from the stream below.
  virtual Result receive(const char* data, size_t len, size_t* consumed, Error& err) = 0;
  // The stream below ended.
  virtual Result receive_eof(Error& err) = 0;
};

}  // namespace httprs
