// The TLS layer: a TlsSession (OpenSSL over memory buffers, or a foreign one)
// as a StreamLayer. The same class carries TLS to an https:// proxy and TLS
// to the origin (two instances when both are used).
#pragma once

#include <memory>
#include <string>

#include "stream_layer.h"
#include "tls.h"

namespace httprs {

class TlsStream final : public StreamLayer {
 public:
  enum class State { kHandshaking, kOpen, kClosed };

  // A session from `ctx` for `host` (SNI, certificate name); `session_key`
  // enables resumption (see OpenSslSession). Always returns a layer; on
  // failure err is set (kConnectError) and the layer must not be used.
  static std::unique_ptr<TlsStream> open(std::shared_ptr<TlsContext> ctx, const std::string& host,
                                         const std::string& session_key, Error& err);
  explicit TlsStream(std::unique_ptr<TlsSession> session) : session_(std::move(session)) {}

  Status connect(Error& err) override;
  void feed(const char* data, size_t len) override { session_->feed(data, len); }
  void lend(const char* data, size_t len) override { session_->lend(data, len); }
  void keep_fed() noexcept override { session_->keep_fed(); }
  Status recv(char* buf, size_t cap, size_t* n, Error& err) override;
  bool send(const char* data, size_t len, Error& err) override {
    return session_->write(data, len, err);
  }
  size_t append_output(std::string& dst) override { return session_->append_output(dst); }
  size_t pending_output() const override { return session_->pending_output(); }
  bool data_pending() const override { return false; }  // OpenSSL buffers what it has not read
  size_t held_bound() const override {
    return state_ == State::kOpen ? session_->held_bound() : SIZE_MAX;
  }
  void close() override;
  Error eof_while_connecting() const override;

  State state() const { return state_; }
  TlsSession& session() { return *session_; }

 private:
  std::unique_ptr<TlsSession> session_;
  State state_ = State::kHandshaking;
};

}  // namespace httprs
