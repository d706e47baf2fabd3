// Per-thread scratch buffers, made on a thread's first use of each.
//
// Not `thread_local char buf[N]`: in a module loaded with dlopen() (a Python
// extension), glibc gives a thread its copy of the module's whole TLS block,
// zero-filled, the first time the thread touches any thread_local of the
// module (even a flag). Arrays there made every thread that ever ran a request
// or let go of a response pay their full size in resident memory (344 KiB),
// used or not. A pointer costs 8 bytes there; its buffer is allocated on first
// use, and its pages are touched only as they are written.
#pragma once

#include <cstddef>
#include <memory>

namespace httprs {

// `Tag` tells the uses apart: per tag and thread, `Slots` buffers of N bytes
// each (`slot` < Slots).
template <typename Tag, size_t N, size_t Slots = 1>
char* thread_scratch(size_t slot = 0) {
  thread_local std::unique_ptr<char[]> bufs[Slots];
  std::unique_ptr<char[]>& buf = bufs[slot];
  if (!buf) buf.reset(new char[N]);
  return buf.get();
}

}  // namespace httprs
