// Errors are values inside the core: a kind and a message. The Cython
// boundary maps each kind to the httpx exception class of the same name.
#pragma once

#include <string>
#include <utility>

namespace httprs {

enum class ErrorKind : int {
  kNone = 0,
  kConnectError,
  kConnectTimeout,
  kReadError,
  kReadTimeout,
  kWriteError,
  kWriteTimeout,
  kPoolTimeout,
  kRemoteProtocolError,
  kLocalProtocolError,
  kProxyError,
  kUnsupportedProtocol,
  kDecodingError,
  kClosed,  // the client was closed while the request was in flight
};

struct Error {
  ErrorKind kind = ErrorKind::kNone;
  std::string message;

  explicit operator bool() const { return kind != ErrorKind::kNone; }
  void set(ErrorKind k, std::string msg) {
    kind = k;
    message = std::move(msg);
  }
  void clear() {
    kind = ErrorKind::kNone;
    message.clear();
  }
};

}  // namespace httprs
