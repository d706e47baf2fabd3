// TLS for the client: SSL_CTX construction (shared, reference counted) and a
// per-connection session over memory buffers. No I/O happens here: the tcp layer
// feeds ciphertext in and sends out whatever the session produces.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "errors.h"

namespace httprs {

// What decides which servers a context reaches and which certificates it accepts: the
// settings httpx's contexts take from ssl.create_default_context() (verify=False:
// ssl.SSLContext(PROTOCOL_TLS_CLIENT)) in the running interpreter, which differ by
// build and version (Debian's python3 offers OpenSSL's default cipher list, CPython
// 3.13 verifies with VERIFY_X509_STRICT and VERIFY_X509_PARTIAL_CHAIN). The Cython
// layer reads them once per process (httprs/_tls.pxi, _policy); each value here is
// applied exactly, replacing what the new SSL_CTX had. The defaults are CPython 3.10-3.12's
// own with its default cipher string (the core's unit tests use them).
struct TlsPolicy {
  std::string cipher_list = kCPythonCipherList;         // TLS 1.2 and below (set_cipher_list)
  std::string ciphersuites = TLS_DEFAULT_CIPHERSUITES;  // TLS 1.3; "" = none
  int min_version = TLS1_2_VERSION;                     // 0: the lowest the library supports
  int max_version = 0;                                  // 0: the highest
  uint64_t options = kCPythonOptions;
  unsigned long verify_flags = X509_V_FLAG_TRUSTED_FIRST;
  unsigned int host_flags = X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS;
  // -1 (unknown): the library's default, but at least 2 (CPython's @SECLEVEL=2).
  int security_level = -1;

  static constexpr const char* kCPythonCipherList =
      "@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM";
  // OP_ALL without DONT_INSERT_EMPTY_FRAGMENTS, NO_SSLv3, NO_COMPRESSION,
  // CIPHER_SERVER_PREFERENCE, ENABLE_MIDDLEBOX_COMPAT.
  static constexpr uint64_t kCPythonOptions =
      (SSL_OP_ALL & ~static_cast<uint64_t>(SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS)) | SSL_OP_NO_SSLv3 |
      SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_ENABLE_MIDDLEBOX_COMPAT;

  bool operator==(const TlsPolicy& o) const;
};

struct TlsConfig {
  bool verify = true;          // verify the peer certificate chain
  bool check_hostname = true;  // verify the certificate matches the host
  std::string ca_file;         // PEM bundle; empty = default store (certifi path given by Python)
  std::string ca_dir;          // hashed directory of CA certs (SSL_CERT_DIR), optional
  std::string cert_file;       // client certificate (PEM), optional
  std::string key_file;        // client key (PEM); empty = inside cert_file
  std::string key_password;    // optional
  std::string keylog_file;     // append TLS secrets here (NSS key log format), optional
  TlsPolicy policy;
};

// verify=false turns hostname checking off too (as httpx does). When neither ca_file
// nor ca_dir is given, the OpenSSL default paths are used. ALPN is each session's
// (TlsSession::offer_http2: "h2" as well when the transport may speak HTTP/2).
// Post-handshake client authentication is never offered (Python's default contexts
// do not either).

class TlsSession;

// What a foreign session tells once its handshake is done (ForeignTlsOps::info).
struct ForeignTlsInfo {
  std::string version;         // "TLSv1.3"; "" when unknown
  std::string cipher;          // the cipher's name
  std::string cipher_version;  // the protocol the cipher belongs to
  int cipher_bits = 0;
  std::string alpn;       // "" when none was selected
  std::string peer_der;   // the peer's certificate (DER); empty when it sent none
  bool verified = false;  // the chain was checked
  bool session_reused = false;
};

// TLS run outside the core, by the embedding layer: the Cython layer uses it
// to run an ssl.SSLContext through Python's own SSLContext.wrap_bio() (an
// SSLObject over MemoryBIOs) whenever sharing its SSL_CTX could skip what the
// context does in Python (subclasses, truststore, another OpenSSL build, ...).
// `ctx` is the handle given to TlsContext::foreign(), `s` one returned by
// open(). Statuses are TlsSession::Status values as ints. The functions run
// on the thread that drives the engine, with the engine mutex held: they must
// not call back into the engine. None may throw.
struct ForeignTlsOps {
  // A new session for `host` (SNI / certificate name), or nullptr with err set.
  void* (*open)(void* ctx, const char* host, size_t host_len, Error* err);
  void (*close)(void* s);
  int (*handshake)(void* s, Error* err);
  void (*feed)(void* s, const char* data, size_t len);
  int (*read)(void* s, char* buf, size_t cap, size_t* n, Error* err);
  bool (*write)(void* s, const char* data, size_t len, Error* err);
  void (*shutdown)(void* s);
  size_t (*pending)(void* s);
  size_t (*take)(void* s, std::string* dst);  // appends the waiting ciphertext to dst
  // What the session negotiated, called once its handshake is done.
  void (*info)(void* s, ForeignTlsInfo* out);
  void (*release)(void* ctx);  // the context handle is no longer used
  // Every call above is bracketed by enter() and leave(). enter() is false once the
  // layer cannot run calls any more (its interpreter exiting, a daemon thread's wait
  // still in the engine): the call is then made to fail, or skipped, and leave() is not
  // called. The bracket lets the layer wait, as it begins to exit, for the calls already
  // past enter(). Both null: always callable.
  bool (*enter)();
  void (*leave)();
};

// What every error of a call enter() refused says (after "TLS session ...: "): the
// embedding layer tells those errors by it.
inline constexpr char kForeignRefused[] = "the interpreter is shutting down";

// One bracketed call into a ForeignTlsOps layer (enter() ... leave()): test it, and
// call in only when it is true.
class ForeignCall {
 public:
  explicit ForeignCall(const ForeignTlsOps* ops)
      : ops_(ops), entered_(ops->enter == nullptr || ops->enter()) {}
  ~ForeignCall() {
    if (entered_ && ops_->leave != nullptr) ops_->leave();
  }
  ForeignCall(const ForeignCall&) = delete;
  ForeignCall& operator=(const ForeignCall&) = delete;
  explicit operator bool() const { return entered_; }

 private:
  const ForeignTlsOps* ops_;
  bool entered_;
};

// A TLS configuration for connections: an SSL_CTX plus the hostname-check
// policy that goes with it, or a foreign implementation (ForeignTlsOps).
class TlsContext {
 public:
  // Build a context from a config. On failure returns nullptr and sets err
  // (kind kConnectError, message says which file / what failed). Waits while a
  // fork() is under way (TlsGate, tls_gate.h), as default_context() does.
  static std::shared_ptr<TlsContext> create(const TlsConfig& cfg, Error& err);

  // Adopt an SSL_CTX built elsewhere: the one inside a Python ssl.SSLContext,
  // only when the Cython layer proved it is an exact ssl.SSLContext on
  // CPython linked to the very OpenSSL httprs uses. Takes its own reference
  // (SSL_CTX_up_ref); hostname checking follows `check_hostname`. Nothing is
  // installed on the SSL_CTX (it stays Python's, and every change made to it
  // in Python applies to the next connection). TLS 1.3 sessions are resumed
  // from a cache of this TlsContext's own (one per transport), each kept under
  // its session key plus a fingerprint of everything the connection's SSL took
  // from the SSL_CTX that decides what a handshake verifies or presents
  // (verify mode and flags, CA store, client certificates by content,
  // versions, ciphers, options; docs/ARCHITECTURE.md lists it all): a context
  // changed since never resumes a session verified under the old settings. A
  // context that checks CRLs never resumes. Sessions
  // on a context that carries a foreign key log callback (Python's
  // keylog_filename) fail to start with a ConnectError saying so: that
  // callback would dereference Python's per-socket data, which ours lack.
  static std::shared_ptr<TlsContext> adopt(SSL_CTX* ctx, bool check_hostname);

  // A context whose sessions run through `ops` (which must outlive it);
  // `handle` is passed to every call and released with ops->release when the
  // context goes. Sessions are never resumed.
  static std::shared_ptr<TlsContext> foreign(const ForeignTlsOps* ops, void* handle);

  // The process-wide default context (verify on, certifi bundle at `ca_file`),
  // cached by ca_file; a different `policy`, or a file changed since (another inode,
  // size or time), builds it again, and entries no client holds are dropped past a
  // few. A `ca_dir` context is built for each call. It logs TLS secrets to
  // `keylog_file` when not empty (part of the cache key): the embedding layer passes
  // $SSLKEYLOGFILE where Python's ssl.create_default_context() would use it.
  static std::shared_ptr<TlsContext> default_context(const std::string& ca_file,
                                                     const std::string& ca_dir,
                                                     const std::string& keylog_file,
                                                     const TlsPolicy& policy, Error& err);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* ctx() const { return ctx_; }  // nullptr for a foreign context
  bool check_hostname() const { return check_hostname_; }
  bool is_foreign() const { return foreign_ops_ != nullptr; }

 private:
  friend class OpenSslSession;
  friend class ForeignTlsSession;
  TlsContext(SSL_CTX* ctx, bool check_hostname);
  static std::shared_ptr<TlsContext> build(const TlsConfig& cfg, Error& err);  // create()'s work
  struct KeyLog;
  struct SessionCache;
  SSL_CTX* ctx_;
  bool check_hostname_;
  bool adopted_ = false;  // the SSL_CTX is Python's (adopt()): sessions harvest themselves
  std::unique_ptr<KeyLog> keylog_;          // file the keylog callback writes to
  std::unique_ptr<SessionCache> sessions_;  // resumable sessions (create() and adopt())
  const ForeignTlsOps* foreign_ops_ = nullptr;
  void* foreign_handle_ = nullptr;
};

// When a kept TLS session may still be offered, in seconds since the epoch:
// resuming skips certificate verification, so a session is offered only
// while every certificate of the chain its full handshake verified is valid
// (the latest notBefore to the earliest notAfter), for at most an hour after
// that verification, and within the ticket's lifetime hint. The default
// window is empty.
struct SessionWindow {
  int64_t not_before = 0;
  int64_t not_after = 0;  // exclusive
  bool contains(int64_t now) const { return not_before <= now && now < not_after; }
};

// One TLS connection's state machine, fed and drained through memory buffers:
// OpenSslSession (the core's own) or ForeignTlsSession (ForeignTlsOps).
class TlsSession {
 public:
  enum class Status { kOk = 0, kWantRead = 1, kClosed = 2, kError = 3 };

  // The session `ctx` calls for. `host` is the name the user asked for (or
  // the request's sni_hostname): used for SNI (unless it is an IP literal)
  // and for certificate host / IP verification when the context checks
  // hostnames. ALPN offers "http/1.1". `session_key`: see OpenSslSession.
  // Always returns a session; on failure err is set and every call fails.
  static std::unique_ptr<TlsSession> open(std::shared_ptr<TlsContext> ctx, const std::string& host,
                                          Error& err,
                                          const std::string& session_key = std::string());

  virtual ~TlsSession() = default;
  TlsSession() = default;
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Drive the handshake. kOk = done, kWantRead = feed more ciphertext (and
  // send what pending_output() holds), kError = err set (kConnectError with a
  // Python-style message such as
  // "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: ...").
  virtual Status handshake(Error& err) = 0;
  virtual bool handshake_done() const = 0;

  // Ciphertext received from the network.
  virtual void feed(const char* data, size_t len) = 0;
  // See StreamLayer::lend / keep_fed: lent bytes may be read in place until then.
  virtual void lend(const char* data, size_t len) { feed(data, len); }
  virtual void keep_fed() noexcept {}

  // Decrypted application data: fills up to cap bytes into buf (as many
  // records as are buffered), *n = bytes. kOk with *n > 0, kWantRead when
  // more ciphertext is needed, kClosed on the peer's close_notify, kError on
  // a TLS failure (err kind kReadError). An end or failure that follows data
  // in the same input is reported by the next call. Reading may queue
  // protocol output (key update replies): check pending_output() after.
  virtual Status read(char* buf, size_t cap, size_t* n, Error& err) = 0;

  // Encrypt application data (all of it; memory buffers never block).
  // Returns false with err (kWriteError) on failure.
  virtual bool write(const char* data, size_t len, Error& err) = 0;

  // Send a close_notify (best effort, into the output buffer).
  virtual void shutdown() = 0;

  // At most how many plaintext bytes this session already holds that read()
  // has not returned (decrypted, or in ciphertext it was fed, a partial record
  // included): a wait for N more plaintext bytes needs at least N minus this
  // on the wire. SIZE_MAX when it cannot tell.
  virtual size_t held_bound() const { return SIZE_MAX; }

  // Ciphertext waiting to go to the network; take_output moves it out.
  virtual size_t pending_output() const = 0;
  std::string take_output() {
    std::string s;
    append_output(s);
    return s;
  }
  // Appends the waiting ciphertext to `dst` (saves a copy when the caller
  // already gathers bytes to send); returns the number of bytes appended.
  virtual size_t append_output(std::string& dst) = 0;

  // Offer "h2" before "http/1.1" by ALPN (HTTP/2 when the server picks it;
  // alpn() tells), or "h2" alone when `http11_too` is false. Call before the
  // first handshake() step. A foreign session offers what its Python
  // context offers (the transport sets it as httpcore does).
  virtual void offer_http2(bool http11_too) { (void)http11_too; }

  // Negotiated ALPN protocol, protocol version ("TLSv1.3", ...) and cipher
  // name; "" before the handshake. For Response.extensions / debugging.
  virtual std::string alpn() const = 0;
  virtual std::string version() const = 0;
  virtual std::string cipher() const = 0;

  // True when the handshake resumed an earlier session.
  virtual bool session_reused() const { return false; }
  // The negotiated cipher's protocol ("TLSv1.3", "TLSv1/SSLv3", as OpenSSL
  // names it) and secret bits: "" and 0 when unknown.
  virtual std::string cipher_version() const { return ""; }
  virtual int cipher_bits() const { return 0; }

  // The peer's certificate (DER) once the handshake is done: false when there
  // is none. `verified`: the chain was checked (Python's getpeercert() decodes
  // only a checked certificate). A foreign session reports none.
  virtual bool peer_certificate(std::string& der, bool& verified) const {
    (void)der;
    (void)verified;
    return false;
  }

  // Forget that this connection is healthy: its sessions will not be
  // resumed. For callers that abandon a connection because of a protocol
  // error above TLS (the TLS layer marks its own failures).
  void mark_failed() { failed_ = true; }

 protected:
  bool failed_ = false;  // a TLS error happened: do not keep the session resumable
};

// The core's own session: OpenSSL over memory buffers (a BIO of its own).
class OpenSslSession final : public TlsSession {
 public:
  // `session_key` turns on TLS session resumption (contexts from create()
  // only): sessions (tickets) the server hands to a connection are kept in
  // the context, under this key, and a later session with the same key on
  // the same context offers one (each ticket is used once). Resuming skips
  // certificate verification, so the key must name everything that
  // identifies the peer and how it was checked: "scheme://host:port", the
  // SNI name when it differs, the proxy when tunnelling (Connection uses the
  // pool key). Empty (the default) = no resumption. On contexts from adopt()
  // the key also carries the SSL_CTX's verification fingerprint (see adopt()).
  OpenSslSession(std::shared_ptr<TlsContext> ctx, const std::string& host, Error& err,
                 const std::string& session_key = std::string());
  ~OpenSslSession() override;

  Status handshake(Error& err) override;
  bool handshake_done() const override;
  void feed(const char* data, size_t len) override;
  void lend(const char* data, size_t len) override;
  void keep_fed() noexcept override;
  Status read(char* buf, size_t cap, size_t* n, Error& err) override;
  bool write(const char* data, size_t len, Error& err) override;
  void shutdown() override;
  size_t held_bound() const override;
  size_t pending_output() const override;
  size_t append_output(std::string& dst) override;
  void offer_http2(bool http11_too) override;
  std::string alpn() const override;
  std::string version() const override;
  std::string cipher() const override;
  std::string cipher_version() const override;
  int cipher_bits() const override;
  bool session_reused() const override;
  bool peer_certificate(std::string& der, bool& verified) const override;
  SSL* native() const { return ssl_; }  // for tests and diagnostics; owned by the session

 private:
  friend class TlsContext;
  static int on_new_session(SSL* ssl, SSL_SESSION* session);
  // The SSL_CTX carries Python's key log callback (set err, true): see tls_openssl.cc.
  bool foreign_keylog(Error& err) const;
  void harvest_session();
  // Keep ciphertext for OpenSSL after what it has not read yet (compacted
  // first); out of memory, the wire fails (the next handshake() / read()).
  void hold_input(const char* data, size_t len) noexcept;
  // The constructor's steps: SNI and the name or address the certificate must
  // match (false with `err` set), then the cache's session for this key offered.
  bool set_server_name(const std::string& host, Error& err);
  void offer_saved_session();
  bool nothing_to_read() const;
  // Why SSL_read_ex / SSL_write_ex failed, without the error queue (tls_openssl.cc).
  bool stopped_for_input() const;
  bool closed_cleanly() const;
  // Whether this connection may still give sessions to its context's cache:
  // it has a key, and the process did not fork since it was made (the
  // parent's connections must not donate its tickets to the child).
  bool may_keep_sessions() const;
  // The window in which `s`, a session this connection got, may be offered.
  SessionWindow window_for(SSL_SESSION* s) const;

  // The SSL's network side (its BIO, owned by ssl_, reads and writes these):
  // ciphertext fed and not yet read by OpenSSL (from in_pos_ on), and
  // ciphertext OpenSSL wrote that append_output() has not taken yet.
  static BIO_METHOD* wire_method();  // built once per process
  static int wire_read(BIO* b, char* buf, int len);
  static int wire_write(BIO* b, const char* data, int len);
  static long wire_ctrl(BIO* b, int cmd, long num, void* ptr);
  size_t in_pending() const { return in_.size() - in_pos_ + (lent_len_ - lent_pos_); }
  bool wire_failed(ErrorKind kind, Error& err);

  // kOutOfMemory: in_ or out_ could not grow (std::bad_alloc, caught before
  // it reached OpenSSL's frames or the caller); every later call fails.
  enum class Wire { kSound, kOutOfMemory };

  SSL* ssl_ = nullptr;
  Wire wire_ = Wire::kSound;
  std::string in_;
  size_t in_pos_ = 0;
  // The caller's bytes lent while in_ held nothing, read in place until
  // keep_fed() (each socket read was copied into in_ first: 256 KiB resident
  // and a copy of every ciphertext byte). Never both: bytes lent while in_
  // holds some are appended to it (feed()), behind them.
  const char* lent_ = nullptr;
  size_t lent_len_ = 0;
  size_t lent_pos_ = 0;
  std::string out_;
  std::shared_ptr<TlsContext> ctx_;
  std::string host_;  // as given, for error messages
  bool host_is_ip_ = false;
  std::string session_key_;
  std::string fingerprint_;                 // adopted contexts: the SSL's verification fingerprint
  uint64_t fork_generation_ = 0;            // fork generation when it was made (tls_internal.cc)
  SessionWindow taken_window_;              // of the session offered, carried over when it resumes
  const SSL_SESSION* harvested_ = nullptr;  // offered, or last given to an adopted context's cache
  Status deferred_ = Status::kOk;           // end / failure seen after data, for the next read()
  bool idle_ = false;  // read() found nothing to read and nothing was fed since
  Error deferred_err_;
};

// A session run by the embedding layer through ForeignTlsOps.
class ForeignTlsSession final : public TlsSession {
 public:
  ForeignTlsSession(std::shared_ptr<TlsContext> ctx, const std::string& host, Error& err);
  ~ForeignTlsSession() override;

  Status handshake(Error& err) override;
  bool handshake_done() const override { return done_; }
  void feed(const char* data, size_t len) override;
  Status read(char* buf, size_t cap, size_t* n, Error& err) override;
  bool write(const char* data, size_t len, Error& err) override;
  void shutdown() override;
  size_t pending_output() const override;
  size_t append_output(std::string& dst) override;
  std::string alpn() const override { return info_.alpn; }
  std::string version() const override { return info_.version; }
  std::string cipher() const override { return info_.cipher; }
  std::string cipher_version() const override { return info_.cipher_version; }
  int cipher_bits() const override { return info_.cipher_bits; }
  bool session_reused() const override { return info_.session_reused; }
  bool peer_certificate(std::string& der, bool& verified) const override;

 private:
  std::shared_ptr<TlsContext> ctx_;
  const ForeignTlsOps* ops_ = nullptr;
  void* s_ = nullptr;  // the foreign session, nullptr when it could not be opened
  bool done_ = false;
  ForeignTlsInfo info_;  // read once the handshake is done
};

// True when `host` is an IPv4 or IPv6 literal (brackets and a "%zone" suffix
// allowed). Exposed for tests.
bool is_ip_literal(const std::string& host);

}  // namespace httprs
