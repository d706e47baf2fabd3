// A connected socket the consumer made itself and hands to the engine.
//
// While a Python program guards socket.socket.connect (pytest-socket's
// --allow-hosts, pytest-recording's block_network), the Cython layer opens a
// new connection through socket.socket and its connect, as httpcore does, so
// that the guard decides; the connected descriptor comes here. The connection
// that needs a new socket takes it (release); one the engine never uses (an
// idle connection served the request) is closed with the request.
#pragma once

#include <unistd.h>

namespace httprs {

class AdoptedSocket {
 public:
  AdoptedSocket() = default;
  AdoptedSocket(const AdoptedSocket&) = delete;
  AdoptedSocket& operator=(const AdoptedSocket&) = delete;
  AdoptedSocket(AdoptedSocket&& other) noexcept : fd_(other.release()) {}
  AdoptedSocket& operator=(AdoptedSocket&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ~AdoptedSocket() { reset(-1); }

  // Holds `fd` (closing what it held).
  void reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  // The descriptor, now the caller's; -1 when none is held.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

}  // namespace httprs
