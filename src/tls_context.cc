// TLS contexts (see tls.h): an SSL_CTX built from a TlsConfig and its policy,
// adopted (Python's) and foreign contexts, the cached default context; and
// TlsSession::open, which opens the session a context calls for.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "tls.h"
#include "tls_gate.h"
#include "tls_internal.h"
#include "tls_keylog.h"
#include "tls_session_cache.h"

namespace httprs {

using tls_detail::keylog_index;
using tls_detail::last_error_text;
using tls_detail::session_cache_index;

namespace {

bool readable(const std::string& path, std::string& why) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    why = std::strerror(errno);
    return false;
  }
  std::fclose(f);
  return true;
}

// The key password callback: never prompts on a terminal (OpenSSL's default
// would); with no password configured, an encrypted key simply fails to load.
int password_cb(char* buf, int size, int, void* userdata) {
  auto* password = static_cast<const std::string*>(userdata);
  if (password == nullptr || password->empty() || size <= 0) return 0;
  size_t n = password->size() < static_cast<size_t>(size) ? password->size() : size;
  std::memcpy(buf, password->data(), n);
  return static_cast<int>(n);
}

struct CtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxDeleter>;

bool fail(Error& err, std::string msg) {
  err.set(ErrorKind::kConnectError, std::move(msg));
  return false;
}

bool load_trust(SSL_CTX* ctx, const TlsConfig& cfg, Error& err) {
  if (cfg.ca_file.empty() && cfg.ca_dir.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1)
      return fail(err, "Could not load the default CA certificates: " + last_error_text());
    return true;
  }
  std::string why;
  if (!cfg.ca_file.empty() && !readable(cfg.ca_file, why))
    return fail(err, "Could not load CA certificates from '" + cfg.ca_file + "': " + why);
  const char* file = cfg.ca_file.empty() ? nullptr : cfg.ca_file.c_str();
  const char* dir = cfg.ca_dir.empty() ? nullptr : cfg.ca_dir.c_str();
  if (SSL_CTX_load_verify_locations(ctx, file, dir) != 1) {
    std::string what = file != nullptr ? cfg.ca_file : cfg.ca_dir;
    return fail(err, "Could not load CA certificates from '" + what + "': " + last_error_text());
  }
  return true;
}

bool load_client_cert(SSL_CTX* ctx, const TlsConfig& cfg, Error& err) {
  std::string why;
  if (!readable(cfg.cert_file, why))
    return fail(err, "Could not load client certificate from '" + cfg.cert_file + "': " + why);
  if (SSL_CTX_use_certificate_chain_file(ctx, cfg.cert_file.c_str()) != 1)
    return fail(err, "Could not load client certificate from '" + cfg.cert_file +
                         "': " + last_error_text());
  const std::string& key = cfg.key_file.empty() ? cfg.cert_file : cfg.key_file;
  if (!readable(key, why))
    return fail(err, "Could not load client private key from '" + key + "': " + why);
  SSL_CTX_set_default_passwd_cb(ctx, password_cb);
  SSL_CTX_set_default_passwd_cb_userdata(ctx, const_cast<std::string*>(&cfg.key_password));
  int rc = SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM);
  // The password lives in cfg: do not leave a pointer to it behind.
  SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);
  if (rc != 1)
    return fail(err, "Could not load client private key from '" + key + "': " + last_error_text());
  if (SSL_CTX_check_private_key(ctx) != 1)
    return fail(err, "Client private key '" + key + "' does not match the certificate '" +
                         cfg.cert_file + "': " + last_error_text());
  return true;
}

// `p` on a new SSL_CTX, each value replacing the one SSL_CTX_new gave it.
bool apply_policy(SSL_CTX* c, const TlsPolicy& p, Error& err) {
  if (SSL_CTX_set_min_proto_version(c, p.min_version) != 1 ||
      SSL_CTX_set_max_proto_version(c, p.max_version) != 1)
    return fail(err, "Could not set the TLS versions: " + last_error_text());
  SSL_CTX_clear_options(c, SSL_CTX_get_options(c) & ~p.options);
  SSL_CTX_set_options(c, p.options);
  if (SSL_CTX_set_cipher_list(c, p.cipher_list.c_str()) != 1)
    return fail(err, "Could not set the cipher list: " + last_error_text());
  if (SSL_CTX_set_ciphersuites(c, p.ciphersuites.c_str()) != 1)
    return fail(err, "Could not set the TLS 1.3 cipher suites: " + last_error_text());
  int level = p.security_level;
  if (level < 0) level = std::max(SSL_CTX_get_security_level(c), 2);
  SSL_CTX_set_security_level(c, level);
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(c);
  X509_VERIFY_PARAM_clear_flags(param, X509_VERIFY_PARAM_get_flags(param) & ~p.verify_flags);
  X509_VERIFY_PARAM_set_flags(param, p.verify_flags);
  X509_VERIFY_PARAM_set_hostflags(param, p.host_flags);
  return true;
}

}  // namespace

bool TlsPolicy::operator==(const TlsPolicy& o) const {
  return std::tie(cipher_list, ciphersuites, min_version, max_version, options, verify_flags,
                  host_flags, security_level) ==
         std::tie(o.cipher_list, o.ciphersuites, o.min_version, o.max_version, o.options,
                  o.verify_flags, o.host_flags, o.security_level);
}

std::shared_ptr<TlsContext> TlsContext::create(const TlsConfig& cfg, Error& err) {
  TlsGate::Pass pass;
  return build(cfg, err);
}

std::shared_ptr<TlsContext> TlsContext::build(const TlsConfig& cfg, Error& err) {
  ERR_clear_error();
  CtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    fail(err, "Could not create an SSL context: " + last_error_text());
    return nullptr;
  }
  SSL_CTX* c = ctx.get();
  if (!apply_policy(c, cfg.policy, err)) return nullptr;
  SSL_CTX_set_mode(c, SSL_MODE_AUTO_RETRY);
  SSL_CTX_set_verify(c, cfg.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  if (cfg.verify && !load_trust(c, cfg, err)) return nullptr;
  if (!cfg.cert_file.empty() && !load_client_cert(c, cfg, err)) return nullptr;
  std::unique_ptr<KeyLog> keylog;
  if (!cfg.keylog_file.empty()) {
    keylog.reset(new KeyLog);
    std::lock_guard<std::mutex> guard(KeyLog::lock());
    keylog->file = std::fopen(cfg.keylog_file.c_str(), "a");
    if (keylog->file == nullptr) {
      fail(err,
           "Could not open the key log file '" + cfg.keylog_file + "': " + std::strerror(errno));
      return nullptr;
    }
    if (std::ftell(keylog->file) == 0) {
      std::fputs("# TLS secrets log file, generated by OpenSSL / httprs\n", keylog->file);
      std::fflush(keylog->file);
    }
    SSL_CTX_set_ex_data(c, keylog_index(), keylog.get());
    SSL_CTX_set_keylog_callback(c, KeyLog::callback);
  }
  auto sessions = std::make_unique<SessionCache>();
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(c, OpenSslSession::on_new_session);
  SSL_CTX_set_ex_data(c, session_cache_index(), sessions.get());
  ERR_clear_error();
  std::shared_ptr<TlsContext> result(
      new TlsContext(ctx.release(), cfg.verify && cfg.check_hostname));
  result->keylog_ = std::move(keylog);
  result->sessions_ = std::move(sessions);
  return result;
}

std::shared_ptr<TlsContext> TlsContext::adopt(SSL_CTX* ctx, bool check_hostname) {
  if (ctx == nullptr) return nullptr;
  SSL_CTX_up_ref(ctx);
  std::shared_ptr<TlsContext> result(new TlsContext(ctx, check_hostname));
  // Our own cache, filled by the sessions themselves (harvest_session): the
  // SSL_CTX stays Python's, with no callback or ex_data of ours on it.
  result->sessions_ = std::make_unique<SessionCache>();
  result->adopted_ = true;
  return result;
}

std::shared_ptr<TlsContext> TlsContext::foreign(const ForeignTlsOps* ops, void* handle) {
  if (ops == nullptr) return nullptr;
  std::shared_ptr<TlsContext> result(new TlsContext(nullptr, true));
  result->foreign_ops_ = ops;
  result->foreign_handle_ = handle;
  return result;
}

namespace {

// What a CA file is, as far as one stat() tells: a store replaced (another inode),
// rewritten (size, times) or gone reads as another store, so a client made after it
// changed trusts what it says now, as a context httpx builds does.
struct StoreStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  timespec mtime{};
  timespec ctime{};

  static StoreStamp of(const std::string& path) {
    StoreStamp stamp;
    struct stat st {};
    if (path.empty() || ::stat(path.c_str(), &st) != 0) return stamp;
    stamp.dev = st.st_dev;
    stamp.ino = st.st_ino;
    stamp.size = st.st_size;
    stamp.mtime = st.st_mtim;
    stamp.ctime = st.st_ctim;
    return stamp;
  }

  bool operator==(const StoreStamp& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && same(mtime, o.mtime) &&
           same(ctime, o.ctime);
  }

 private:
  static bool same(const timespec& a, const timespec& b) {
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
  }
};

struct DefaultEntry {
  TlsPolicy policy;
  StoreStamp file;
  std::shared_ptr<TlsContext> ctx;
};

// Entries kept before those no client holds any more are dropped.
constexpr size_t kDefaultContextsKept = 8;

}  // namespace

std::shared_ptr<TlsContext> TlsContext::default_context(const std::string& ca_file,
                                                        const std::string& ca_dir,
                                                        const std::string& keylog_file,
                                                        const TlsPolicy& policy, Error& err) {
  TlsGate::Pass pass;  // also keeps the cache's lock from being held across a fork()
  TlsConfig cfg;
  cfg.ca_file = ca_file;
  cfg.ca_dir = ca_dir;
  cfg.keylog_file = keylog_file;
  cfg.policy = policy;
  // A directory's certificates are read as verifications need them and then kept in
  // the context, and a file replaced in it under its hashed name changes nothing a
  // stat() of the directory shows: each client gets a context of its own, which reads
  // what the directory holds then, as httpx's does.
  if (!ca_dir.empty()) return build(cfg, err);
  using Key = std::pair<std::string, std::string>;  // (ca_file, SSLKEYLOGFILE)
  static std::mutex mu;
  static auto* cache = new std::map<Key, DefaultEntry>();  // never destroyed
  Key key(ca_file, cfg.keylog_file);
  // The policy is the process's own, the same on every call: it is kept with the
  // context rather than in the key (which would copy its strings on each lookup).
  StoreStamp file = StoreStamp::of(ca_file);
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache->find(key);
  if (it != cache->end() && it->second.policy == policy && it->second.file == file)
    return it->second.ctx;
  std::shared_ptr<TlsContext> ctx = build(cfg, err);
  if (!ctx) return ctx;  // failures are not cached
  (*cache)[key] = DefaultEntry{policy, file, ctx};
  if (cache->size() > kDefaultContextsKept) {
    for (auto e = cache->begin(); e != cache->end();) {
      bool unheld = e->second.ctx.use_count() == 1 && e->first != key;
      e = unheld ? cache->erase(e) : std::next(e);
    }
  }
  return ctx;
}

TlsContext::TlsContext(SSL_CTX* ctx, bool check_hostname)
    : ctx_(ctx), check_hostname_(check_hostname) {}

TlsContext::~TlsContext() {
  // The SSL_CTX may outlive us (someone else holding a reference): leave no
  // pointers to what we are about to free.
  if (keylog_) SSL_CTX_set_ex_data(ctx_, keylog_index(), nullptr);
  if (sessions_ && !adopted_) SSL_CTX_set_ex_data(ctx_, session_cache_index(), nullptr);
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  if (foreign_ops_ != nullptr) {
    ForeignCall call(foreign_ops_);
    if (call) foreign_ops_->release(foreign_handle_);  // (at exit: left to the process's end)
  }
}

std::unique_ptr<TlsSession> TlsSession::open(std::shared_ptr<TlsContext> ctx,
                                             const std::string& host, Error& err,
                                             const std::string& session_key) {
  if (ctx && ctx->is_foreign())
    return std::make_unique<ForeignTlsSession>(std::move(ctx), host, err);
  return std::make_unique<OpenSslSession>(std::move(ctx), host, err, session_key);
}

}  // namespace httprs
