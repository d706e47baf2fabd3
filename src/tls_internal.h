// What the TLS files share (tls_context.cc, tls_openssl.cc): the process's fork
// generation, OpenSSL's error text, the SSL_CTX ex_data indices and the clock the
// session windows are read against. Defined in tls_internal.cc.
#pragma once

#include <cstdint>
#include <string>

namespace httprs {
namespace tls_detail {

// How many times this process is a fork() child.
uint64_t fork_generation();

// The latest OpenSSL error's reason text; empties the queue.
std::string last_error_text();

// The SSL_CTX ex_data slots of an own context's TlsContext::KeyLog and
// TlsContext::SessionCache.
int keylog_index();
int session_cache_index();

// Seconds since the epoch (SessionWindow's unit).
int64_t now_seconds();

}  // namespace tls_detail
}  // namespace httprs
