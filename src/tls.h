// TLS for the client: SSL_CTX construction (shared, reference counted) and a
// per-connection session over memory BIOs. No I/O happens here: the tcp layer
// feeds ciphertext in and sends out whatever the session produces.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <string>

#include "errors.h"

namespace httprs {

struct TlsConfig {
  bool verify = true;          // verify the peer certificate chain
  bool check_hostname = true;  // verify the certificate matches the host
  std::string ca_file;         // PEM bundle; empty = default store (certifi path given by Python)
  std::string ca_dir;          // hashed directory of CA certs (SSL_CERT_DIR), optional
  std::string cert_file;       // client certificate (PEM), optional
  std::string key_file;        // client key (PEM); empty = inside cert_file
  std::string key_password;    // optional
  bool http2 = false;          // ALPN offer; only http/1.1 is implemented
  std::string keylog_file;     // append TLS secrets here (NSS key log format), optional
};

// Policy, as httpx 0.28.1 gets it from ssl.create_default_context() on
// CPython 3.11 (checked against the ssl module by tests/test_cpp_units.py):
// TLS >= 1.2; options OP_ALL without DONT_INSERT_EMPTY_FRAGMENTS, plus
// NO_SSLv3, NO_COMPRESSION, CIPHER_SERVER_PREFERENCE, ENABLE_MIDDLEBOX_COMPAT;
// CPython's default cipher string; partial wildcards ("f*.example.com") are
// not matched. verify=false turns hostname checking off too (as httpx does).
// When neither ca_file nor ca_dir is given, the OpenSSL default paths are
// used. `http2` is ignored: ALPN offers "http/1.1" only, so servers answer
// with HTTP/1.1.

// An SSL_CTX plus the hostname-check policy that goes with it.
class TlsContext {
 public:
  // Build a context from a config. On failure returns nullptr and sets err
  // (kind kConnectError, message says which file / what failed).
  static std::shared_ptr<TlsContext> create(const TlsConfig& cfg, Error& err);

  // Adopt an SSL_CTX built elsewhere (e.g. the one inside a Python
  // ssl.SSLContext, when it uses the same libssl). Takes its own reference
  // (SSL_CTX_up_ref); hostname checking follows `check_hostname`. Sessions
  // on a context that carries a foreign key log callback (Python's
  // keylog_filename) fail to start with a ConnectError saying so: that
  // callback would dereference Python's per-socket data, which ours lack.
  static std::shared_ptr<TlsContext> adopt(SSL_CTX* ctx, bool check_hostname);

  // The process-wide default context (verify on, certifi bundle at
  // `ca_file`), built once and cached by (ca_file, ca_dir). Like Python's
  // ssl.create_default_context(), it logs TLS secrets to $SSLKEYLOGFILE when
  // that is set (the variable is part of the cache key).
  static std::shared_ptr<TlsContext> default_context(const std::string& ca_file,
                                                     const std::string& ca_dir, Error& err);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* ctx() const { return ctx_; }
  bool check_hostname() const { return check_hostname_; }

 private:
  friend class TlsSession;
  TlsContext(SSL_CTX* ctx, bool check_hostname);
  struct KeyLog;
  struct SessionCache;
  SSL_CTX* ctx_;
  bool check_hostname_;
  std::unique_ptr<KeyLog> keylog_;          // file the keylog callback writes to
  std::unique_ptr<SessionCache> sessions_;  // resumable sessions
  // An adopted SSL_CTX belongs to someone else (Python's ssl module): no
  // callbacks are installed on it; sessions are saved when a session ends.
  bool adopted_ = false;
};

// One TLS connection's state machine, fed and drained through memory BIOs.
class TlsSession {
 public:
  enum class Status { kOk, kWantRead, kClosed, kError };

  // `host` is the name the user asked for: used for SNI (unless it is an IP
  // literal) and for certificate host / IP verification when the context
  // checks hostnames. ALPN offers "http/1.1".
  //
  // `session_key` turns on TLS session resumption: sessions (tickets) the
  // server hands to a connection are kept in the context, under this key, and
  // a later session with the same key on the same context offers one (each
  // ticket is used once). Resuming skips certificate verification, so the key
  // must name everything that identifies the peer: at least "host:port", plus
  // the proxy when tunnelling. Empty (the default) = no resumption. Contexts
  // from adopt() never resume.
  TlsSession(std::shared_ptr<TlsContext> ctx, const std::string& host, Error& err,
             const std::string& session_key = std::string());
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Drive the handshake. kOk = done, kWantRead = feed more ciphertext (and
  // send what pending_output() holds), kError = err set (kConnectError with an
  // OpenSSL-style message such as
  // "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: ...").
  Status handshake(Error& err);
  bool handshake_done() const;

  // Ciphertext received from the network.
  void feed(const char* data, size_t len);

  // Decrypted application data: fills up to cap bytes into buf (as many
  // records as are buffered), *n = bytes. kOk with *n > 0, kWantRead when
  // more ciphertext is needed, kClosed on the peer's close_notify, kError on
  // a TLS failure (err kind kReadError). An end or failure that follows data
  // in the same input is reported by the next call. Reading may queue
  // protocol output (key update replies): check pending_output() after.
  Status read(char* buf, size_t cap, size_t* n, Error& err);

  // Encrypt application data (all of it; memory BIOs never block). Returns
  // false with err (kWriteError) on failure.
  bool write(const char* data, size_t len, Error& err);

  // Send a close_notify (best effort, into the output buffer).
  void shutdown();

  // Ciphertext waiting to go to the network; take_output moves it out.
  size_t pending_output() const;
  std::string take_output();

  // Negotiated ALPN protocol ("" if none).
  std::string alpn() const;

  // Appends the waiting ciphertext to `dst` (saves a copy when the caller
  // already gathers bytes to send); returns the number of bytes appended.
  size_t append_output(std::string& dst);

  // Negotiated protocol version ("TLSv1.3", ...) and cipher name, "" before
  // the handshake: for Response.extensions / debugging.
  std::string version() const;
  std::string cipher() const;

  // True when the handshake resumed an earlier session.
  bool session_reused() const;

  // Forget that this connection is healthy: its sessions will not be
  // resumed. For callers that abandon a connection because of a protocol
  // error above TLS (the TLS layer marks its own failures).
  void mark_failed() { failed_ = true; }

 private:
  friend class TlsContext;
  static int on_new_session(SSL* ssl, SSL_SESSION* session);

  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // network -> SSL (owned by ssl_)
  BIO* out_ = nullptr;  // SSL -> network (owned by ssl_)
  std::shared_ptr<TlsContext> ctx_;
  std::string host_;  // as given, for error messages
  bool host_is_ip_ = false;
  std::string session_key_;
  bool failed_ = false;            // a TLS error happened: do not keep the session resumable
  Status deferred_ = Status::kOk;  // end / failure seen after data, for the next read()
  Error deferred_err_;
};

// True when `host` is an IPv4 or IPv6 literal (brackets and a "%zone" suffix
// allowed). Exposed for tests.
bool is_ip_literal(const std::string& host);

}  // namespace httprs
