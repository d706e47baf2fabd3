// Per-thread scratch buffers, made on a thread's first use of each.
//
// Not `thread_local char buf[N]`: in a module loaded with dlopen() (a Python
// extension), glibc gives a thread its copy of the module's whole TLS block,
// zero-filled, the first time the thread touches any thread_local of the
// module (even a flag). Arrays there made every thread that ever ran a request
// or let go of a response pay their full size in resident memory (344 KiB),
// used or not. A pointer costs 8 bytes there; its buffer is allocated on first
// use, and its pages are touched only as they are written.
//
// Nor a thread_local smart pointer: its destructor runs at thread exit from
// glibc's TLS destructors, after Python's join() was told the thread is done,
// and ThreadSanitizer then reports the next thread, which reuses that dynamic
// TLS block, freeing it as a race (glibc's hand-over is invisible to it). The
// buffers hang off a pthread key instead, freed by the key's destructor (as
// the engine's sleeper records, engine_wait.cc).
//
// The allocation may fail (an exhausted heap). It runs inside libuv callbacks
// and calls from Cython, where an exception would cross C frames, so it is
// nothrow: the caller gets null, fails what needed the buffer with a clear
// error (scratch_error), and the next call tries again.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <new>
#include <string>

#include "errors.h"

namespace httprs {

// Tests: the next `n` scratch allocations, in any thread, fail as they would
// on an exhausted heap (httprs._core._scratch_fail). Read only when a thread
// allocates a buffer, never on the hot path. One per extension module: each
// links its own copy of the core (httprs._decoders' is not armed by _core's).
inline std::atomic<int> scratch_failures{0};
// Arms `n` failures; returns how many armed ones had not fired yet.
inline int scratch_fail_next(int n) { return scratch_failures.exchange(n); }

inline char* scratch_alloc(size_t n) {
  int left = scratch_failures.load(std::memory_order_relaxed);
  while (left > 0)
    if (scratch_failures.compare_exchange_weak(left, left - 1, std::memory_order_relaxed))
      return nullptr;
  return new (std::nothrow) char[n];
}

// The error of a failed scratch allocation of `n` bytes, as `kind`.
inline Error scratch_error(ErrorKind kind, size_t n) {
  Error err;
  err.set(kind, "Out of memory: could not allocate a " + std::to_string(n / 1024) + " KiB buffer.");
  return err;
}

// `Tag` tells the uses apart: per tag and thread, `Slots` buffers of N bytes
// each (`slot` < Slots). Null when the allocation failed.
template <typename Tag, size_t N, size_t Slots = 1>
char* thread_scratch(size_t slot = 0) {
  struct Buffers {
    std::unique_ptr<char[]> bufs[Slots];
  };
  static pthread_key_t key;
  static bool made = false;
  static std::once_flag once;
  std::call_once(once, [] {
    made = pthread_key_create(&key, [](void* p) { delete static_cast<Buffers*>(p); }) == 0;
  });
  Buffers* mine = nullptr;
  if (made) {
    mine = static_cast<Buffers*>(pthread_getspecific(key));
    if (mine == nullptr) {
      mine = new (std::nothrow) Buffers;
      if (mine != nullptr && pthread_setspecific(key, mine) != 0) {
        delete mine;
        mine = nullptr;
      }
    }
  }
  if (mine == nullptr) {
    // No key (PTHREAD_KEYS_MAX reached) or no memory for the record: the
    // thread_local way.
    thread_local Buffers fallback;
    mine = &fallback;
  }
  std::unique_ptr<char[]>& buf = mine->bufs[slot];
  if (!buf) buf.reset(scratch_alloc(N));
  return buf.get();
}

}  // namespace httprs
