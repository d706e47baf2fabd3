// Bytes a write sends from memory it does not own: a request body the
// transfer keeps alive until the write ends, or static storage.
#pragma once

#include <cstddef>

namespace httprs {

struct Borrowed {
  const char* data = nullptr;
  size_t len = 0;
};

}  // namespace httprs
