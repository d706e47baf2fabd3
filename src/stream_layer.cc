#include "stream_layer.h"

#include <cstring>

namespace httprs {

StreamLayer::Status HandshakeLayer::recv(char* buf, size_t cap, size_t* n, Error& err) {
  (void)err;
  *n = 0;
  if (!open() || in_.empty()) return Status::kWantRead;
  *n = in_.size() < cap ? in_.size() : cap;
  std::memcpy(buf, in_.data(), *n);
  in_.erase(0, *n);
  return Status::kOk;
}

bool HandshakeLayer::send(const char* data, size_t len, Error& err) {
  (void)err;
  out_.append(data, len);
  return true;
}

size_t HandshakeLayer::append_output(std::string& dst) {
  size_t n = out_.size();
  dst += out_;
  out_.clear();
  return n;
}

}  // namespace httprs
