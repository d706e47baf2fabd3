// A TLS session run by the embedding layer through ForeignTlsOps
// (ForeignTlsSession, see tls.h).
#include <memory>
#include <string>
#include <utility>

#include "tls.h"

namespace httprs {

namespace {
const std::string kGone = std::string("TLS session unusable: ") + kForeignRefused;
}  // namespace

ForeignTlsSession::ForeignTlsSession(std::shared_ptr<TlsContext> ctx, const std::string& host,
                                     Error& err)
    : ctx_(std::move(ctx)) {
  if (!ctx_ || !ctx_->is_foreign()) {
    err.set(ErrorKind::kConnectError, "TLS session without a context");
    return;
  }
  ops_ = ctx_->foreign_ops_;
  ForeignCall call(ops_);
  if (!call) {
    err.set(ErrorKind::kConnectError, std::string("TLS session not opened: ") + kForeignRefused);
    return;
  }
  s_ = ops_->open(ctx_->foreign_handle_, host.data(), host.size(), &err);
  if (s_ == nullptr && !err) err.set(ErrorKind::kConnectError, "Could not create a TLS session");
}

ForeignTlsSession::~ForeignTlsSession() {
  if (s_ == nullptr) return;
  ForeignCall call(ops_);
  if (call) ops_->close(s_);  // (at exit: left to the process's end)
}

bool ForeignTlsSession::peer_certificate(std::string& der, bool& verified) const {
  if (!done_ || info_.peer_der.empty()) return false;
  der = info_.peer_der;
  verified = info_.verified;
  return true;
}

TlsSession::Status ForeignTlsSession::handshake(Error& err) {
  if (s_ == nullptr) {
    err.set(ErrorKind::kConnectError, "TLS session not initialised");
    return Status::kError;
  }
  ForeignCall call(ops_);
  if (!call) {
    err.set(ErrorKind::kConnectError, kGone);
    return Status::kError;
  }
  auto st = static_cast<Status>(ops_->handshake(s_, &err));
  if (st == Status::kOk && !done_) {
    done_ = true;
    ops_->info(s_, &info_);
  } else if (st == Status::kError || st == Status::kClosed) {
    if (!err) err.set(ErrorKind::kConnectError, "TLS/SSL connection has been closed (EOF)");
    err.kind = ErrorKind::kConnectError;
    failed_ = true;
    st = Status::kError;
  }
  return st;
}

void ForeignTlsSession::feed(const char* data, size_t len) {
  if (s_ == nullptr || len == 0) return;
  ForeignCall call(ops_);
  if (call) ops_->feed(s_, data, len);
}

TlsSession::Status ForeignTlsSession::read(char* buf, size_t cap, size_t* n, Error& err) {
  *n = 0;
  ForeignCall call(ops_);
  if (s_ == nullptr || !call) {
    err.set(ErrorKind::kReadError, s_ == nullptr ? "TLS session not initialised" : kGone);
    return Status::kError;
  }
  auto st = static_cast<Status>(ops_->read(s_, buf, cap, n, &err));
  if (st == Status::kOk && *n == 0) st = Status::kWantRead;
  if (st == Status::kError) {
    if (!err) err.set(ErrorKind::kReadError, "TLS read failed");
    failed_ = true;
  }
  return st;
}

bool ForeignTlsSession::write(const char* data, size_t len, Error& err) {
  ForeignCall call(ops_);
  if (s_ == nullptr || !call) {
    err.set(ErrorKind::kWriteError, s_ == nullptr ? "TLS session not initialised" : kGone);
    return false;
  }
  if (len == 0) return true;
  if (!ops_->write(s_, data, len, &err)) {
    if (!err) err.set(ErrorKind::kWriteError, "TLS write failed");
    failed_ = true;
    return false;
  }
  return true;
}

void ForeignTlsSession::shutdown() {
  if (s_ == nullptr || !done_) return;
  ForeignCall call(ops_);
  if (call) ops_->shutdown(s_);
}

size_t ForeignTlsSession::pending_output() const {
  if (s_ == nullptr) return 0;
  ForeignCall call(ops_);
  return call ? ops_->pending(s_) : 0;
}

size_t ForeignTlsSession::append_output(std::string& dst) {
  if (s_ == nullptr) return 0;
  ForeignCall call(ops_);
  return call ? ops_->take(s_, &dst) : 0;
}

}  // namespace httprs
