// A byte-stream layer: one link in the chain a connection is built from
// (socket -> [proxy TLS] -> [SOCKS5 | CONNECT] -> [origin TLS] -> protocol).
// Each layer is sans-IO: bytes from the layer below are fed in, bytes for the
// layer above come out of recv(); bytes from above go in through send(), bytes
// for the layer below come out of append_output(). The connection moves the
// bytes between neighbours (StreamChain) and the socket (SocketStream) does
// the only I/O. A layer first runs its handshake (connect()), then carries
// the stream; each keeps its own small state enum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "errors.h"

namespace httprs {

class StreamLayer {
 public:
  // kOk: done (connect) / bytes delivered (recv); kWantRead: needs more input
  // from below; kClosed: the peer ended the stream cleanly; kError: err set.
  enum class Status { kOk, kWantRead, kClosed, kError };

  StreamLayer() = default;
  virtual ~StreamLayer() = default;
  StreamLayer(const StreamLayer&) = delete;
  StreamLayer& operator=(const StreamLayer&) = delete;

  // Start or continue the layer's handshake with what was fed so far; its own
  // messages wait in append_output(). kOk once the layer carries the stream.
  virtual Status connect(Error& err) = 0;
  // Bytes from the layer below.
  virtual void feed(const char* data, size_t len) = 0;
  // As feed(), but the layer may read the bytes in place until keep_fed(),
  // which the caller makes before they change: the chain once the level is
  // drained, or StreamChain::keep_lent() at any point while they are lent
  // (a nested read, in the middle of a delivery). keep_fed() copies what is
  // still unread, and reads after it come from that copy; a second call
  // (nothing lent any more) does nothing.
  virtual void lend(const char* data, size_t len) { feed(data, len); }
  virtual void keep_fed() noexcept {}
  // After connect(): bytes for the layer above, up to cap. kOk with *n > 0,
  // kWantRead when nothing is buffered, kClosed / kError at the end. Reading
  // may queue output (TLS key updates): check append_output() after.
  virtual Status recv(char* buf, size_t cap, size_t* n, Error& err) = 0;
  // Bytes from the layer above (all of them: the buffers are in memory).
  virtual bool send(const char* data, size_t len, Error& err) = 0;
  // Moves the bytes waiting for the layer below to the end of `dst`.
  virtual size_t append_output(std::string& dst) = 0;
  // Bytes waiting for the layer below.
  virtual size_t pending_output() const = 0;
  // Bytes received but not yet taken by recv() (curl's "data pending").
  virtual bool data_pending() const = 0;
  // At most how many bytes for the layer above this layer already holds (see
  // TlsSession::held_bound); SIZE_MAX when it cannot tell.
  virtual size_t held_bound() const { return SIZE_MAX; }
  // A clean close of this layer (TLS close_notify), queued as output.
  virtual void close() {}
  // Open and holding nothing: bytes may bypass it both ways (StreamChain
  // skips an established SOCKS5 or CONNECT tunnel instead of copying).
  virtual bool transparent() const { return false; }

  // How the connection reports the peer ending the stream, or a socket
  // error, while this layer's handshake runs.
  virtual Error eof_while_connecting() const = 0;
  // `io` is kReadError or kWriteError: what the failed socket call was.
  virtual ErrorKind socket_error_kind(ErrorKind /*io*/) const { return ErrorKind::kConnectError; }
  // The timeout the handshake waits for the peer under: the connect timeout
  // (TLS, as httpcore's start_tls), or the read timeout, started again for
  // each read (a request answered by the peer).
  enum class Deadline { kConnect, kRead };
  virtual Deadline handshake_deadline() const { return Deadline::kConnect; }
};

// A layer that only speaks during its handshake (SOCKS5, CONNECT): it keeps
// what it received and what it has to send in two buffers and, once open(),
// passes bytes through unchanged.
class HandshakeLayer : public StreamLayer {
 public:
  void feed(const char* data, size_t len) override { in_.append(data, len); }
  Status recv(char* buf, size_t cap, size_t* n, Error& err) override;
  bool send(const char* data, size_t len, Error& err) override;
  size_t append_output(std::string& dst) override;
  size_t pending_output() const override { return out_.size(); }
  bool data_pending() const override { return open() && !in_.empty(); }
  bool transparent() const override { return open() && in_.empty() && out_.empty(); }
  // The handshake is a request and the proxy's answer: a reset reading it is a
  // ReadError (a WriteError sending it), and each wait for an answer runs under
  // the read timeout, as httpx reports a CONNECT and httpcore2 a SOCKS5 proxy.
  ErrorKind socket_error_kind(ErrorKind io) const override { return io; }
  Deadline handshake_deadline() const override { return Deadline::kRead; }

 protected:
  // The handshake is over: bytes now pass through.
  virtual bool open() const = 0;

  std::string in_;   // received bytes not consumed yet
  std::string out_;  // bytes for the layer below
};

}  // namespace httprs
