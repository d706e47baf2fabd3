// The layers of one connection, bottom (next to the socket) to top (next to
// the protocol session), and the moving of bytes between them: what the
// socket read goes up through each layer, what the top layer connects with or
// the session sends goes down through each, and out to the socket. Layers are
// pushed as the connection establishes them (proxy TLS, SOCKS5 or CONNECT,
// origin TLS); the top one runs its handshake (connect()) until it is open.
// A layer that is open and holds nothing (an established SOCKS5 or CONNECT
// tunnel) is skipped, so bytes are not copied through it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "borrowed.h"
#include "stream_layer.h"

namespace httprs {

class StreamChain {
 public:
  // The connection, for the ends of the chain.
  class Host {
   public:
    virtual ~Host() = default;
    // Bytes for the socket: `bytes`, then `ext` (caller-owned), then `tail`.
    virtual void chain_write(std::string&& bytes, Borrowed ext, Borrowed tail) = 0;
    // Bytes out of the top layer.
    virtual void chain_data(const char* data, size_t len) = 0;
    // Where the top layer may put its next bytes instead of the chain's own
    // buffer (the consumer's, read in place: chain_data then gets a pointer
    // into it), at most `*len`; null for the chain's buffer.
    virtual char* chain_read_buffer(size_t* len) {
      (void)len;
      return nullptr;
    }
    // The top layer, still connecting, was fed: call connect_top().
    virtual void chain_connect_input() = 0;
    // A layer's peer ended its stream cleanly (TLS close_notify).
    virtual void chain_eof() = 0;
    // A layer failed while reading / while sending (err set).
    virtual void chain_read_error(const Error& err) = 0;
    virtual void chain_send_error(const Error& err) = 0;
    // The connection closed: stop moving bytes.
    virtual bool chain_stopped() const = 0;
  };

  static constexpr size_t kMaxLayers = 4;

  explicit StreamChain(Host* host) : host_(host) {}

  // Add a layer on top; it connects next (connect_top()). False when full.
  bool push(std::unique_ptr<StreamLayer> layer);
  // Run the top layer's handshake with what it was fed and send its output.
  // The last flight of a handshake that this call completes (a TLS client
  // Finished) is held back in its layer: it goes out in one write with the
  // first bytes sent through the chain (the request: one segment instead of
  // two), or with flush_held(), which the host calls once it has sent what
  // it had to send after the handshake.
  StreamLayer::Status connect_top(Error& err);
  // Send what a completed handshake held back, if it is still waiting.
  void flush_held();
  // True while the top layer's handshake runs.
  bool connecting() const { return open_ < layers_.size(); }
  StreamLayer* top() { return layers_.empty() ? nullptr : layers_.back().get(); }
  // Socket bytes reach the session unchanged: every layer is open and
  // transparent (or there is none).
  bool passthrough() const;
  // At most how many bytes for the host the layers already hold between them
  // (0 when passthrough()): what arrives on the socket for N more host bytes
  // is at least N minus this. SIZE_MAX when a layer cannot tell.
  size_t held_bound() const;
  size_t size() const { return layers_.size(); }

  // Bytes the socket read. A layer may read them in place (StreamLayer::lend)
  // until this returns: the buffer must not change meanwhile. A host callback
  // may read a socket and call receive() again (any chain's, nested): it
  // calls keep_lent() before it reads into a buffer an outer delivery may be
  // reading (a shared scratch), and a nested receive() calls it itself before
  // the chain writes its own scratch buffers.
  void receive(const char* data, size_t len);
  // Every layer of this thread's deliveries in progress copies what it has
  // not read of its lent input (StreamLayer::keep_fed): their buffers may be
  // written from now on. Cheap when none is in progress.
  static void keep_lent() noexcept;
  // Bytes from the session, down through every layer to the socket. False
  // (err set) when a layer fails to take them.
  // `ext` and `tail` are not copied when no layer transforms the bytes.
  bool send(std::string&& bytes, Borrowed ext, Borrowed tail, Error& err);
  // Close the top layer cleanly (TLS close_notify) and return the bytes that
  // says, encoded by the layers below, for a last write; "" on any failure.
  std::string close_top();

 private:
  void deliver(size_t level, const char* data, size_t len);
  void drain(size_t level);
  // Send layer `level`'s output down; false (err set) on a failure below.
  bool flush(size_t level, Error& err);
  bool send_below(size_t level, std::string&& bytes, Borrowed ext, Borrowed tail, Error& err);
  bool transparent(size_t level) const;
  // Every layer above `level` is transparent: its output goes straight up.
  bool topmost(size_t level) const;

  Host* host_;
  std::vector<std::unique_ptr<StreamLayer>> layers_;
  size_t open_ = 0;    // layers whose handshake is done (the bottom ones)
  bool held_ = false;  // a completed handshake's last flight may wait in a layer
};

}  // namespace httprs
