// The HTTP CONNECT layer: asks an HTTP proxy for a tunnel to `authority`
// (with the proxy's headers), reads the proxy's response head, and from a 2xx
// on passes bytes through unchanged. Anything else is a kProxyError.
#pragma once

#include <string>

#include "http1.h"
#include "stream_layer.h"

namespace httprs {

class ConnectTunnel final : public HandshakeLayer, private ResponseParser::Sink {
 public:
  enum class State { kStart, kAwaitingHead, kOpen, kFailed };

  ConnectTunnel(std::string authority, HeaderList headers);

  Status connect(Error& err) override;
  Error eof_while_connecting() const override;

  State state() const { return state_; }
  int status() const { return status_; }

 private:
  bool open() const override { return state_ == State::kOpen; }
  void on_head(ResponseHead&& head) override;
  void on_body(const char*, size_t) override {}
  Status read_response(Error& err);

  std::string authority_;
  HeaderList headers_;
  State state_ = State::kStart;
  ResponseParser parser_;
  int status_ = 0;  // of the proxy's response, once its head arrived
  std::string reason_;
};

}  // namespace httprs
