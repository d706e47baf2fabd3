// The helpers the TLS files share (see tls_internal.h).
#include "tls_internal.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <ctime>
#include <string>

namespace httprs {
namespace tls_detail {
namespace {

// How many times this process is a fork() child. Counted here rather than
// read from the engine (which counts the same) so that the TLS layer stands
// alone; registered at load time, so it counts before any engine's handler
// runs in a child.
std::atomic<uint64_t> g_fork_generation{0};
void count_fork_child() { g_fork_generation.fetch_add(1); }
[[maybe_unused]] const int g_fork_counter = pthread_atfork(nullptr, nullptr, &count_fork_child);

}  // namespace

uint64_t fork_generation() { return g_fork_generation.load(); }

// The text of the most recent OpenSSL error on this thread, without the
// "[LIB: REASON]" prefix; clears the queue.
std::string last_error_text() {
  unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(code);
  if (reason != nullptr) return reason;
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

int keylog_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int session_cache_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int64_t now_seconds() { return static_cast<int64_t>(std::time(nullptr)); }

}  // namespace tls_detail
}  // namespace httprs
