// A context's key log file (TlsContext::KeyLog): tls_context.cc opens it, and
// tls_openssl.cc tells its callback from one Python's ssl module installed.
#pragma once

#include <openssl/ssl.h>

#include <cstdio>
#include <mutex>

#include "tls.h"
#include "tls_internal.h"

namespace httprs {

// An open key log file. Several contexts may log to the same path; each line
// is written with one fputs under a process-wide lock, as CPython does.
struct TlsContext::KeyLog {
  FILE* file = nullptr;
  ~KeyLog() {
    if (file != nullptr) std::fclose(file);
  }
  static std::mutex& lock() {
    static std::mutex mu;
    return mu;
  }
  static void callback(const SSL* ssl, const char* line) {
    auto* self =
        static_cast<KeyLog*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_detail::keylog_index()));
    if (self == nullptr || self->file == nullptr) return;
    std::lock_guard<std::mutex> guard(lock());
    std::fputs(line, self->file);
    std::fputc('\n', self->file);
    std::fflush(self->file);
  }
};

}  // namespace httprs
