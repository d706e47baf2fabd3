// The SOCKS5 layer (RFC 1928, with RFC 1929 username/password when given):
// asks the proxy for a stream to host:port (the name is sent for the proxy to
// resolve, as httpcore does), then passes bytes through unchanged. Errors are
// kProxyError worded as httpcore words them.
#pragma once

#include <string>

#include "stream_layer.h"

namespace httprs {

class Socks5Stream final : public HandshakeLayer {
 public:
  enum class State { kStart, kMethod, kAuth, kReply, kOpen, kFailed };

  Socks5Stream(std::string host, int port, std::string username, std::string password);

  Status connect(Error& err) override;
  Error eof_while_connecting() const override;

  State state() const { return state_; }

 private:
  bool open() const override { return state_ == State::kOpen; }
  Status step(Error& err);
  Status on_method(Error& err);
  Status on_auth(Error& err);
  Status on_reply(Error& err);
  // Queue the CONNECT request; false (err set) when the host cannot be sent.
  bool send_connect(Error& err);
  Status fail(Error& err, const std::string& message);

  std::string host_;
  int port_;
  std::string username_;
  std::string password_;
  State state_ = State::kStart;
};

}  // namespace httprs
