#include "tls_stream.h"

namespace httprs {

std::unique_ptr<TlsStream> TlsStream::open(std::shared_ptr<TlsContext> ctx, const std::string& host,
                                           const std::string& session_key, Error& err) {
  return std::make_unique<TlsStream>(TlsSession::open(std::move(ctx), host, err, session_key));
}

StreamLayer::Status TlsStream::connect(Error& err) {
  if (state_ != State::kHandshaking) return state_ == State::kOpen ? Status::kOk : Status::kError;
  switch (session_->handshake(err)) {
    case TlsSession::Status::kOk:
      state_ = State::kOpen;
      return Status::kOk;
    case TlsSession::Status::kWantRead:
      return Status::kWantRead;
    case TlsSession::Status::kClosed:
    case TlsSession::Status::kError:
      break;
  }
  err.kind = ErrorKind::kConnectError;  // a failed handshake is a connect failure
  state_ = State::kClosed;
  return Status::kError;
}

StreamLayer::Status TlsStream::recv(char* buf, size_t cap, size_t* n, Error& err) {
  *n = 0;
  switch (session_->read(buf, cap, n, err)) {
    case TlsSession::Status::kOk:
      return Status::kOk;
    case TlsSession::Status::kWantRead:
      return Status::kWantRead;
    case TlsSession::Status::kClosed:
      return Status::kClosed;
    case TlsSession::Status::kError:
      break;
  }
  return Status::kError;
}

void TlsStream::close() {
  if (state_ != State::kOpen) return;  // close_notify only on an established session
  session_->shutdown();
  state_ = State::kClosed;
}

Error TlsStream::eof_while_connecting() const {
  Error err;
  err.set(ErrorKind::kConnectError,
          "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol");
  return err;
}

}  // namespace httprs
