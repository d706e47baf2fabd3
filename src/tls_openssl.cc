// The core's own TLS session (OpenSslSession, see tls.h): OpenSSL over memory
// buffers, through a BIO of its own.
//
// Error texts follow Python's ssl module, because httpx's ConnectError
// carries str(ssl.SSLError): "[LIB: REASON] reason text: verify detail". The
// trailing "(_ssl.c:NNN)" location Python adds is not imitated.
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>

#include "tls.h"
#include "tls_internal.h"
#include "tls_keylog.h"
#include "tls_session_cache.h"

namespace httprs {

using tls_detail::fork_generation;
using tls_detail::last_error_text;
using tls_detail::now_seconds;
using tls_detail::session_cache_index;

namespace {

constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
constexpr unsigned char kAlpnH2[] = {2, 'h', '2'};
constexpr unsigned char kAlpnH2Http11[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// Python's short library names ("SSL", "X509", "PEM", ...) for the common
// libraries; others fall back to OpenSSL's own name.
std::string lib_name(unsigned long code) {
  switch (ERR_GET_LIB(code)) {
    case ERR_LIB_SSL:
      return "SSL";
    case ERR_LIB_X509:
      return "X509";
    case ERR_LIB_X509V3:
      return "X509V3";
    case ERR_LIB_PEM:
      return "PEM";
    case ERR_LIB_EVP:
      return "EVP";
    case ERR_LIB_ASN1:
      return "ASN1";
    case ERR_LIB_BIO:
      return "BIO";
    case ERR_LIB_SYS:
      return "SYS";
    case ERR_LIB_PKCS12:
      return "PKCS12";
    case ERR_LIB_RSA:
      return "RSA";
    case ERR_LIB_EC:
      return "EC";
    default: {
      const char* s = ERR_lib_error_string(code);
      return s != nullptr ? s : "OpenSSL";
    }
  }
}

// "certificate verify failed" -> "CERTIFICATE_VERIFY_FAILED": the mnemonic
// Python prints is the reason text upper-cased with underscores.
std::string reason_mnemonic(const std::string& text) {
  std::string r = text;
  for (char& c : r) {
    if (c == ' ' || c == '-') c = '_';
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return r;
}

// Empties this thread's OpenSSL error queue before a call whose outcome is
// read from it (SSL_get_error looks at it too). ERR_clear_error resets each of
// the queue's 16 slots, about 800 instructions on OpenSSL 3.0, even when the
// queue is empty, as it nearly always is here; looking first costs ~100-200. It
// runs before each handshake step (about 8 times per new connection); reads
// and writes tell their failures without it (OpenSslSession::stopped_for_input).
void clear_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

// Python-style "[LIB: REASON] reason text" for the latest error, plus the
// certificate verification detail when that is what failed.
std::string python_style_error(unsigned long code, const std::string& verify_detail) {
  const char* reason = ERR_reason_error_string(code);
  if (reason == nullptr) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    return buf;
  }
  std::string msg = "[" + lib_name(code) + ": " + reason_mnemonic(reason) + "] " + reason;
  if (!verify_detail.empty()) msg += ": " + verify_detail;
  return msg;
}

std::string strip_brackets(const std::string& host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    return host.substr(1, host.size() - 2);
  return host;
}

// The address part of an IP literal (no brackets, no "%zone"), or "".
std::string ip_address_part(const std::string& host) {
  std::string h = strip_brackets(host);
  size_t zone = h.find('%');
  if (zone != std::string::npos && h.find(':') != std::string::npos) h.resize(zone);
  unsigned char buf[sizeof(struct in6_addr)];
  if (inet_pton(AF_INET, h.c_str(), buf) == 1) return h;
  if (inet_pton(AF_INET6, h.c_str(), buf) == 1) return h;
  return "";
}

// The address `ip` (what ip_address_part returned) as the one the peer's
// certificate must name. In binary: X509_VERIFY_PARAM_set1_ip_asc parses the
// text with sscanf, ~1 us per connection.
bool expect_ip(SSL* ssl, const std::string& ip) {
  unsigned char buf[sizeof(struct in6_addr)];
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (inet_pton(AF_INET, ip.c_str(), buf) == 1)
    return X509_VERIFY_PARAM_set1_ip(param, buf, 4) == 1;
  if (inet_pton(AF_INET6, ip.c_str(), buf) == 1)
    return X509_VERIFY_PARAM_set1_ip(param, buf, 16) == 1;
  return X509_VERIFY_PARAM_set1_ip_asc(param, ip.c_str()) == 1;
}

int owner_index() {  // SSL -> TlsSession, for the new-session callback
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

constexpr char kHex[] = "0123456789abcdef";

// `v` in lower-case hex (no leading zeros) and a comma: what "%llx," prints,
// without snprintf (a fingerprint has about thirty fields per connection).
void add_field(std::string& out, unsigned long long v) {
  char buf[16];
  size_t i = sizeof buf;
  do {
    buf[--i] = kHex[v & 15];
    v >>= 4;
  } while (v != 0);
  out.append(buf + i, sizeof buf - i);
  out += ',';
}

void add_field(std::string& out, const void* p) {
  add_field(out, static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(p)));
}

void add_hex(std::string& out, const unsigned char* data, unsigned int len) {
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[data[i] >> 4];
    out += kHex[data[i] & 15];
  }
  out += ',';
}

enum class Identity {
  kRead,        // every certificate the SSL can present is in the fingerprint
  kUnreadable,  // a digest failed: do not resume (the SSL is unchanged)
  kDisturbed,   // reading them moved the SSL's current certificate: rebuild it
};

// The client identity the SSL may present: a SHA-256 of every certificate
// slot that has a key (TLS 1.3 picks among all of them), by content, so a
// certificate loaded later at the address of a freed one is still another
// identity. The slots are walked on this SSL's own copy of the context's
// certificates, and its current one is selected again afterwards.
Identity add_client_identity(std::string& out, SSL* ssl) {
  X509* current = SSL_get_certificate(ssl);
  int slots = 0;
  bool digests_ok = true;
  for (long op = SSL_CERT_SET_FIRST; SSL_set_current_cert(ssl, op) == 1; op = SSL_CERT_SET_NEXT) {
    ++slots;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    X509* x = SSL_get_certificate(ssl);
    if (x == nullptr || X509_digest(x, EVP_sha256(), md, &len) != 1) {
      digests_ok = false;
    } else {
      add_hex(out, md, len);
    }
  }
  if (slots == 0) {
    out += "nocert,";
    return Identity::kRead;
  }
  // A current slot without a key (a failed load_cert_chain) cannot be selected again.
  if (current == nullptr || SSL_select_current_cert(ssl, current) != 1) return Identity::kDisturbed;
  return digests_ok ? Identity::kRead : Identity::kUnreadable;
}

// Appends to `out` everything on an SSL made from an adopted (Python's) SSL_CTX
// that decides what its handshake verifies or presents, as SSL_new copied it,
// so the fingerprint describes exactly this connection even while Python
// changes the context from another thread: verify mode, callback and depth,
// X509_VERIFY_PARAM flags and host flags (hostname_checks_common_name), the
// hostname check, options, versions, security level, cipher list, the CA store
// (pointer and object count: Python can only add to a store, so a count names
// one state of it), the client certificates. A session is kept and offered
// under its pool key plus this, so a context changed since a session was
// verified never resumes it. Returns the Identity outcome; besides that, a
// context that checks CRLs never resumes: a resumed session skips the
// revocation check, and a CRL can change under the same store (a hash
// directory, a CRL that expired).
Identity adopted_fingerprint(SSL* ssl, bool check_hostname, std::string& out) {
  out += check_hostname ? "|h1," : "|h0,";
  add_field(out, static_cast<unsigned long long>(SSL_get_verify_mode(ssl)));
  add_field(out, reinterpret_cast<const void*>(SSL_get_verify_callback(ssl)));
  add_field(out, static_cast<unsigned long long>(SSL_get_verify_depth(ssl)));
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  unsigned long flags = X509_VERIFY_PARAM_get_flags(param);
  if ((flags & (X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL)) != 0)
    return Identity::kUnreadable;
  add_field(out, static_cast<unsigned long long>(flags));
  add_field(out, static_cast<unsigned long long>(X509_VERIFY_PARAM_get_hostflags(param)));
  add_field(out, static_cast<unsigned long long>(X509_VERIFY_PARAM_get_auth_level(param)));
  add_field(out, static_cast<unsigned long long>(SSL_get_options(ssl)));
  add_field(out, static_cast<unsigned long long>(SSL_get_min_proto_version(ssl)));
  add_field(out, static_cast<unsigned long long>(SSL_get_max_proto_version(ssl)));
  add_field(out, static_cast<unsigned long long>(SSL_get_security_level(ssl)));
  X509_STORE* store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
  add_field(out, store);
  if (store != nullptr) {
    X509_STORE_lock(store);
    int objects = sk_X509_OBJECT_num(X509_STORE_get0_objects(store));
    X509_STORE_unlock(store);
    add_field(out, static_cast<unsigned long long>(objects));
  }
  STACK_OF(SSL_CIPHER)* ciphers = SSL_get_ciphers(ssl);
  for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i)
    add_field(out,
              static_cast<unsigned long long>(SSL_CIPHER_get_id(sk_SSL_CIPHER_value(ciphers, i))));
  return add_client_identity(out, ssl);
}

// Reads the SSL's fingerprint into `fingerprint` (for a non-empty session
// key on an adopted context), or clears `key` (this connection neither
// resumes nor keeps its session). Returns the SSL to use: a fresh one when
// reading the client certificates changed the current one.
SSL* key_adopted_session(SSL* ssl, SSL_CTX* ctx, bool check_hostname, std::string& key,
                         std::string& fingerprint) {
  Identity id = adopted_fingerprint(ssl, check_hostname, fingerprint);
  if (id == Identity::kRead) return ssl;
  key.clear();
  fingerprint.clear();
  if (id != Identity::kDisturbed) return ssl;
  SSL_free(ssl);
  return SSL_new(ctx);
}

// How long after the full handshake that verified it a session may be
// offered (and sessions from resuming it in turn): past this, a full
// handshake checks the certificates again.
constexpr int64_t kMaxVerifiedAge = 3600;

// Narrows `w` to the validity of `cert` (`now` is the current time). False
// when a date cannot be read.
bool narrow_to_certificate(SessionWindow& w, X509* cert, int64_t now) {
  int days = 0, secs = 0;
  if (ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(cert)) != 1) return false;
  w.not_after = std::min(w.not_after, now + int64_t{days} * 86400 + secs);
  if (ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notBefore(cert)) != 1) return false;
  w.not_before = std::max(w.not_before, now + int64_t{days} * 86400 + secs);
  return true;
}

// The window of a session whose full handshake just verified the SSL's
// chain: the validity of every certificate in the verified chain (the peer's
// own certificate when there is no verified chain), for kMaxVerifiedAge.
SessionWindow verified_window(const SSL* ssl) {
  int64_t now = now_seconds();
  SessionWindow w;
  w.not_before = INT64_MIN;
  w.not_after = now + kMaxVerifiedAge;
  STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl);
  int n = chain == nullptr ? 0 : sk_X509_num(chain);
  bool ok = true;
  for (int i = 0; ok && i < n; ++i) ok = narrow_to_certificate(w, sk_X509_value(chain, i), now);
  if (n == 0) {
    const SSL_SESSION* s = SSL_get_session(ssl);
    X509* peer = s == nullptr ? nullptr : SSL_SESSION_get0_peer(const_cast<SSL_SESSION*>(s));
    ok = peer != nullptr && narrow_to_certificate(w, peer, now);
  }
  return ok ? w : SessionWindow();
}

}  // namespace

int OpenSslSession::on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* owner = static_cast<OpenSslSession*>(SSL_get_ex_data(ssl, owner_index()));
  if (owner == nullptr || !owner->may_keep_sessions()) return 0;
  auto* cache = static_cast<TlsContext::SessionCache*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), session_cache_index()));
  if (cache == nullptr || SSL_SESSION_is_resumable(session) != 1) return 0;
  cache->put(owner->session_key_, std::string(), session, owner->window_for(session));
  return 1;  // we keep the reference OpenSSL gave us
}

bool is_ip_literal(const std::string& host) { return !ip_address_part(host).empty(); }

OpenSslSession::OpenSslSession(std::shared_ptr<TlsContext> ctx, const std::string& host, Error& err,
                               const std::string& session_key)
    : ctx_(std::move(ctx)),
      host_(host),
      session_key_(session_key),
      fork_generation_(fork_generation()) {
  clear_errors();
  if (!ctx_ || ctx_->ctx() == nullptr) {
    err.set(ErrorKind::kConnectError, "TLS session without a context");
    return;
  }
  if (foreign_keylog(err)) return;
  ssl_ = SSL_new(ctx_->ctx());
  if (ssl_ != nullptr && ctx_->adopted_ && !session_key_.empty())
    ssl_ =
        key_adopted_session(ssl_, ctx_->ctx(), ctx_->check_hostname(), session_key_, fingerprint_);
  BIO_METHOD* method = wire_method();
  BIO* wire = method == nullptr ? nullptr : BIO_new(method);
  if (ssl_ == nullptr || wire == nullptr) {
    err.set(ErrorKind::kConnectError, "Could not create a TLS session: " + last_error_text());
    BIO_free(wire);
    SSL_free(ssl_);
    ssl_ = nullptr;
    return;
  }
  BIO_set_data(wire, this);
  BIO_set_init(wire, 1);
  // Per-connection callbacks an adopted Python context may carry (its
  // _msg_callback, PSK callbacks) read Python's socket object from the SSL:
  // switch them off for our SSL objects (the keylog one is checked above).
  SSL_set_msg_callback(ssl_, nullptr);
  SSL_set_psk_client_callback(ssl_, nullptr);
  // Python's contexts set SSL_MODE_RELEASE_BUFFERS, which frees the record
  // buffers whenever they run empty and allocates them again for the next
  // record: a malloc and free of ~17 KiB for each write and each read, about
  // 1.2k instructions per request on a kept-alive connection. Our SSL keeps
  // its buffers for the connection's life, as those of our own contexts do;
  // only this SSL's mode changes, the SSL_CTX stays as Python set it.
  SSL_clear_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
  // Read ahead: OpenSSL takes what is buffered in one BIO read (up to its record
  // buffer), where it read each record's 5-byte header and then its body
  // separately, two trips through BIO_read and its kernel-TLS checks per record.
  // The bytes are the same; only where they wait changes (OpenSSL's buffer,
  // which SSL_has_pending() sees, instead of ours).
  SSL_set_read_ahead(ssl_, 1);
  SSL_set_bio(ssl_, wire, wire);  // ssl_ owns the BIO from here on, for both directions
  SSL_set_connect_state(ssl_);
  SSL_set_alpn_protos(ssl_, kAlpnHttp11, sizeof kAlpnHttp11);
  if (set_server_name(host, err) && !session_key_.empty() && ctx_->sessions_) offer_saved_session();
  clear_errors();
}

bool OpenSslSession::set_server_name(const std::string& host, Error& err) {
  std::string ip = ip_address_part(host);
  host_is_ip_ = !ip.empty();
  if (host_is_ip_) host_ = ip;
  if (ctx_->check_hostname() && host.empty()) {
    err.set(ErrorKind::kConnectError, "check_hostname requires server_hostname");
    return false;
  }
  bool ok = true;
  if (!host_is_ip_ && !host.empty()) ok = SSL_set_tlsext_host_name(ssl_, host.c_str()) == 1;
  if (ok && ctx_->check_hostname()) {
    if (host_is_ip_) {
      ok = expect_ip(ssl_, ip);
    } else {
      ok = SSL_set1_host(ssl_, host.c_str()) == 1;
    }
  }
  if (!ok) err.set(ErrorKind::kConnectError, "Invalid TLS server name '" + host + "'");
  return ok;
}

void OpenSslSession::offer_saved_session() {
  if (!ctx_->adopted_) SSL_set_ex_data(ssl_, owner_index(), this);
  if (SSL_SESSION* saved = ctx_->sessions_->take(session_key_, fingerprint_, taken_window_)) {
    SSL_set_session(ssl_, saved);  // takes its own reference
    // The offered ticket never goes back into the cache (RFC 8446 C.4);
    // a new ticket, or a full handshake, gives the SSL another session.
    harvested_ = saved;
    SSL_SESSION_free(saved);
  }
}

OpenSslSession::~OpenSslSession() {
  // SSL_free marks the session non-resumable (through the SSL_CTX, Python's
  // for an adopted context, on a session other SSLs or the cache may share)
  // unless the connection was shut down, so every SSL is marked as shut down
  // first. A failure instead takes every session kept under its key with it.
  if (ssl_ != nullptr) {
    SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    harvest_session();
  }
  if (failed_ && may_keep_sessions() && ctx_->sessions_) ctx_->sessions_->drop(session_key_);
  SSL_free(ssl_);
}

bool OpenSslSession::may_keep_sessions() const {
  return !session_key_.empty() && ctx_ && fork_generation_ == fork_generation();
}

namespace {

// When a session was made, in seconds since the epoch. OpenSSL 3.3 added the
// time_t form; 3.4 deprecated the long one (not Y2038-safe where long is 32 bits).
int64_t session_time(const SSL_SESSION* s) {
#if OPENSSL_VERSION_NUMBER >= 0x30300000L
  return static_cast<int64_t>(SSL_SESSION_get_time_ex(s));
#else
  return static_cast<int64_t>(SSL_SESSION_get_time(s));
#endif
}

}  // namespace

SessionWindow OpenSslSession::window_for(SSL_SESSION* s) const {
  // A resumed handshake verified nothing: its sessions inherit the window
  // of the one it resumed.
  SessionWindow w = SSL_session_reused(ssl_) == 1 ? taken_window_ : verified_window(ssl_);
  uint64_t hint = SSL_SESSION_get_ticket_lifetime_hint(s);
  if (hint > 0 && hint <= static_cast<uint64_t>(INT64_MAX / 2))
    w.not_after = std::min(w.not_after, session_time(s) + static_cast<int64_t>(hint));
  return w;
}

// An adopted context may carry a key log callback from Python's ssl module
// (keylog_filename, set from SSLKEYLOGFILE by ssl.create_default_context()).
// It expects its own socket object behind every SSL and crashes on ours
// (SIGSEGV), so such a context is refused. OpenSSL reads the callback from
// the SSL_CTX each time it derives secrets, i.e. during the handshake: the
// check runs when the session is made and again before each handshake step,
// since Python code (another task, another thread) may set keylog_filename
// on the shared context while a handshake waits for the server. A setter on
// another thread racing the step itself remains possible (microseconds wide;
// the engine runs without the GIL, so nothing orders the two).
bool OpenSslSession::foreign_keylog(Error& err) const {
  SSL_CTX_keylog_cb_func keylog = SSL_CTX_get_keylog_callback(ctx_->ctx());
  if (keylog == nullptr || keylog == TlsContext::KeyLog::callback) return false;
  err.set(ErrorKind::kConnectError,
          ssl_ == nullptr
              ? "This SSL context logs TLS secrets (keylog_filename, e.g. from SSLKEYLOGFILE) "
                "through Python's ssl module, which cannot run on httprs connections: set "
                "keylog_filename = None on it, or pass verify=True / a CA path (httprs then "
                "honours SSLKEYLOGFILE itself)"
              : "keylog_filename was set on this SSL context during the TLS handshake: "
                "Python's ssl module cannot log the secrets of an httprs connection, so this "
                "handshake stops (the next connection made with the context takes Python's "
                "TLS path, which logs them)");
  return true;
}

TlsSession::Status OpenSslSession::handshake(Error& err) {
  if (ssl_ == nullptr) {
    err.set(ErrorKind::kConnectError, "TLS session not initialised");
    return Status::kError;
  }
  if (foreign_keylog(err)) {
    failed_ = true;
    return Status::kError;
  }
  if (wire_failed(ErrorKind::kConnectError, err)) return Status::kError;
  clear_errors();
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1) return Status::kOk;
  if (wire_failed(ErrorKind::kConnectError, err)) return Status::kError;
  int e = SSL_get_error(ssl_, rc);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return Status::kWantRead;
  unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  std::string msg;
  if (e == SSL_ERROR_SSL && code != 0) {
    std::string detail;
    if (ERR_GET_LIB(code) == ERR_LIB_SSL &&
        ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
      long v = SSL_get_verify_result(ssl_);
      if (v == X509_V_ERR_HOSTNAME_MISMATCH) {
        detail = "Hostname mismatch, certificate is not valid for '" + host_ + "'.";
      } else if (v == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        detail = "IP address mismatch, certificate is not valid for '" + host_ + "'.";
      } else {
        detail = X509_verify_cert_error_string(v);
      }
    }
    msg = python_style_error(code, detail);
  } else if (e == SSL_ERROR_ZERO_RETURN) {
    msg = "TLS/SSL connection has been closed (EOF)";
  } else {
    msg = "EOF occurred in violation of protocol";
  }
  err.set(ErrorKind::kConnectError, std::move(msg));
  failed_ = true;
  return Status::kError;
}

bool OpenSslSession::handshake_done() const {
  return ssl_ != nullptr && SSL_is_init_finished(ssl_) == 1;
}

void OpenSslSession::lend(const char* data, size_t len) {
  if (ssl_ == nullptr || len == 0 || wire_ != Wire::kSound) return;
  idle_ = false;
  if (in_pending() != 0) {
    feed(data, len);
    return;
  }
  in_.clear();  // read in place until keep_fed()
  in_pos_ = 0;
  lent_ = data;
  lent_len_ = len;
  lent_pos_ = 0;
}

void OpenSslSession::feed(const char* data, size_t len) {
  if (ssl_ == nullptr || len == 0 || wire_ != Wire::kSound) return;
  idle_ = false;
  keep_fed();
  if (wire_ != Wire::kSound) return;
  hold_input(data, len);
}

void OpenSslSession::hold_input(const char* data, size_t len) noexcept {
  if (in_pos_ > 0) {  // OpenSSL left part of a record: keep it in front
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  try {
    in_.append(data, len);
  } catch (const std::bad_alloc&) {  // the next handshake() / read() reports it
    wire_ = Wire::kOutOfMemory;
    failed_ = true;
  }
}

void OpenSslSession::keep_fed() noexcept {
  if (lent_ == nullptr) return;
  const char* rest = lent_ + lent_pos_;
  size_t n = lent_len_ - lent_pos_;
  lent_ = nullptr;
  lent_len_ = lent_pos_ = 0;
  if (n == 0 || wire_ != Wire::kSound) return;
  // What the chain did not drain (the host stopped reading, a handshake not
  // run on it yet, a failure): OpenSSL took a partial record's start into
  // its own buffer before it asked for more, so a drained level keeps nothing.
  hold_input(rest, n);
}

// True (err set, the session failed) once a buffer of the wire could not grow.
bool OpenSslSession::wire_failed(ErrorKind kind, Error& err) {
  if (wire_ == Wire::kSound) return false;
  ERR_clear_error();
  err.set(kind, "Out of memory buffering TLS records");
  failed_ = true;
  return true;
}

// The SSL's BIO, in place of two memory BIOs: OpenSSL reads the fed
// ciphertext straight from in_ and writes its records straight into out_,
// which append_output() hands over whole when the caller's string is empty
// (a memory BIO's records were copied out, and its whole buffer zeroed at
// each reset); pending bytes are read off the strings, not through BIO_ctrl.
//
// Retry flags: one BIO serves both directions, and SSL_get_error() reads the
// flags of the direction the failed call was in (then the other one's). Only
// a read can ask for a retry: wire_read() clears the flags and sets "retry
// read" when nothing is buffered, as OpenSSL's memory BIO does. A write never
// waits, so wire_write() leaves them alone when it succeeds (clearing there
// could erase the read side's "retry read" before OpenSSL reports it); when
// its buffer cannot grow it clears them, so the failure is no "want read".
BIO_METHOD* OpenSslSession::wire_method() {
  // Built once and kept for the life of the process; a failed attempt (no
  // memory, no free BIO type index) is not kept, the next session tries again.
  static std::atomic<BIO_METHOD*> built{nullptr};
  static std::mutex building;
  BIO_METHOD* method = built.load(std::memory_order_acquire);
  if (method != nullptr) return method;
  std::lock_guard<std::mutex> guard(building);
  method = built.load(std::memory_order_relaxed);
  if (method != nullptr) return method;
  int index = BIO_get_new_index();
  method = index > 0 ? BIO_meth_new(index | BIO_TYPE_SOURCE_SINK, "httprs") : nullptr;
  if (method != nullptr &&
      (BIO_meth_set_read(method, &wire_read) != 1 || BIO_meth_set_write(method, &wire_write) != 1 ||
       BIO_meth_set_ctrl(method, &wire_ctrl) != 1)) {
    BIO_meth_free(method);
    method = nullptr;
  }
  if (method != nullptr) built.store(method, std::memory_order_release);
  return method;
}

int OpenSslSession::wire_read(BIO* b, char* buf, int len) {
  auto* self = static_cast<OpenSslSession*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  size_t avail = self->in_pending();
  if (avail == 0 || len <= 0) {
    BIO_set_retry_read(b);  // nothing yet: "want read", never an EOF
    return -1;
  }
  size_t n = std::min(avail, static_cast<size_t>(len));
  size_t held = self->in_.size() - self->in_pos_;
  if (held == 0) {  // the caller's bytes, in place
    std::memcpy(buf, self->lent_ + self->lent_pos_, n);
    self->lent_pos_ += n;
    return static_cast<int>(n);
  }
  n = std::min(n, held);
  std::memcpy(buf, self->in_.data() + self->in_pos_, n);
  self->in_pos_ += n;
  if (self->in_pos_ == self->in_.size()) {
    self->in_.clear();
    self->in_pos_ = 0;
  }
  return static_cast<int>(n);
}

int OpenSslSession::wire_write(BIO* b, const char* data, int len) {
  auto* self = static_cast<OpenSslSession*>(BIO_get_data(b));
  if (len <= 0) return 0;
  try {  // nothing may be thrown through OpenSSL's frames
    self->out_.append(data, static_cast<size_t>(len));
  } catch (const std::bad_alloc&) {
    self->wire_ = Wire::kOutOfMemory;
    BIO_clear_retry_flags(b);  // a failure, not a retry
    return -1;
  }
  return len;
}

// OpenSSL 3.0 asks about a dozen of these per request, nearly all whether the
// BIO does kernel TLS: only the two that read the buffers look up the session.
long OpenSslSession::wire_ctrl(BIO* b, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_PENDING:  // bytes OpenSSL may still read
      return static_cast<long>(static_cast<OpenSslSession*>(BIO_get_data(b))->in_pending());
    case BIO_CTRL_WPENDING:  // bytes written, not yet sent
      return static_cast<long>(static_cast<OpenSslSession*>(BIO_get_data(b))->out_.size());
    case BIO_CTRL_FLUSH:  // the caller sends out_ itself
      return 1;
    default:  // EOF: never (the socket reports it); no other control applies
      return 0;
  }
}

// Fills as much of buf as the buffered records allow (one SSL_read returns
// at most one record, 16 KiB), so callers see fewer, larger pieces. When the
// stream ends or fails after some data, the data is returned now and the
// end / failure on the next call.
TlsSession::Status OpenSslSession::read(char* buf, size_t cap, size_t* n, Error& err) {
  *n = 0;
  if (ssl_ == nullptr) {
    err.set(ErrorKind::kReadError, "TLS session not initialised");
    return Status::kError;
  }
  if (deferred_ != Status::kOk) {
    Status st = deferred_;
    deferred_ = Status::kOk;
    if (st == Status::kError) err = deferred_err_;
    return st;
  }
  if (wire_failed(ErrorKind::kReadError, err)) return Status::kError;
  // Nothing fed since a read found OpenSSL with nothing left to read: the
  // chain's call that ends each delivery (it reads until "want read") costs no
  // second look into OpenSSL's buffers.
  if (idle_ && !failed_) return Status::kWantRead;
  size_t total = 0;
  while (total < cap) {
    if (nothing_to_read()) {  // SSL_read_ex would only say "want read"
      idle_ = true;
      if (total == 0) return Status::kWantRead;
      break;
    }
    bool failed_before = failed_;
    size_t got = 0;
    int rc = SSL_read_ex(ssl_, buf + total, cap - total, &got);
    if (rc == 1) {
      total += got;
      continue;
    }
    Status st;
    Error e;
    if (wire_failed(ErrorKind::kReadError, e)) {  // a reply OpenSSL wrote (a key update)
      st = Status::kError;
    } else if (stopped_for_input()) {
      st = Status::kWantRead;
    } else if (closed_cleanly()) {
      ERR_clear_error();  // only someone else's errors can be queued: none came from here
      st = Status::kClosed;
    } else {
      unsigned long last = failed_before ? 0 : ERR_peek_last_error();  // as in write()
      ERR_clear_error();
      e.set(ErrorKind::kReadError, last != 0
                                       ? python_style_error(last, "")
                                       : std::string("EOF occurred in violation of protocol"));
      failed_ = true;
      st = Status::kError;
    }
    if (total == 0) {
      if (st == Status::kError) err = std::move(e);
      return st;
    }
    if (st != Status::kWantRead) {  // report it after the data
      deferred_ = st;
      deferred_err_ = std::move(e);
    }
    break;
  }
  *n = total;
  harvest_session();
  return Status::kOk;
}

// Why an SSL_read_ex failed, told without the thread's error queue. Emptying
// the queue before the call, for SSL_get_error() to read it after, cost ~200
// instructions per response (the queue is nearly always empty; looking is what
// costs); a stale error someone else left there must still not turn a record
// still arriving or a close_notify into a failure, so neither looks at it:
// - Stopped for input: OpenSSL marks the SSL "reading" before each BIO read and
//   back to "nothing" once it has the bytes; our BIO never reports an EOF, and
//   a failure after that sends a fatal alert through the (never blocking) write
//   side, which leaves the SSL "nothing" too.
// - A clean close_notify: the peer's shutdown was received and the handshake
//   state is still "finished"; a fatal alert received, or any fatal error,
//   puts the state machine into its error state (not finished).
bool OpenSslSession::stopped_for_input() const { return SSL_want_read(ssl_) != 0; }

bool OpenSslSession::closed_cleanly() const {
  return (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0 && SSL_is_init_finished(ssl_) == 1;
}

// True when an SSL_read_ex could only report "want read": the handshake is
// done, no close_notify or failure was seen, nothing waits in the network
// BIO and OpenSSL holds no record bytes (processed or not). A close_notify or
// a record that arrives lands in the BIO first (and, read ahead, in OpenSSL's
// buffer, which SSL_has_pending() sees), so it is never missed; the
// check saves the SSL_read_ex that ends each read() (about 2 per response).
bool OpenSslSession::nothing_to_read() const {
  return !failed_ && SSL_is_init_finished(ssl_) == 1 &&
         (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) == 0 && in_pending() == 0 &&
         SSL_has_pending(ssl_) == 0;
}

// Adopted contexts have no new-session callback: the session keeps the one it
// holds once the peer's first data arrived (TLS 1.3 tickets come before it),
// and again when it ends if a newer ticket came meanwhile.
void OpenSslSession::harvest_session() {
  if (ssl_ == nullptr || failed_ || !ctx_->adopted_ || !ctx_->sessions_ ||
      SSL_get_session(ssl_) == harvested_ || !may_keep_sessions() || !handshake_done())
    return;  // (the SSL's session unchanged since it was kept: no lock, no reference taken)
  SSL_SESSION* s = SSL_get1_session(ssl_);
  if (s == nullptr) return;
  // TLS 1.3 only: its resumption runs a fresh key exchange under the
  // context's current groups and ciphers, where a TLS 1.2 one reuses the old
  // master secret (and its group, which the fingerprint cannot read).
  if (s == harvested_ || SSL_SESSION_is_resumable(s) != 1 ||
      SSL_SESSION_get_protocol_version(s) != TLS1_3_VERSION) {
    SSL_SESSION_free(s);
    return;
  }
  harvested_ = s;  // compared only: the cache owns the reference
  ctx_->sessions_->put(session_key_, fingerprint_, s, window_for(s));
}

bool OpenSslSession::write(const char* data, size_t len, Error& err) {
  if (ssl_ == nullptr) {
    err.set(ErrorKind::kWriteError, "TLS session not initialised");
    return false;
  }
  while (len > 0) {
    // The error queue is not emptied first (see stopped_for_input): a write
    // into memory either succeeds or fails, and the queue only picks the
    // message, this call's error being the last one queued. A session that
    // failed before fails again without queueing anything: then the queue
    // holds only someone else's errors, and is not read.
    bool failed_before = failed_;
    size_t written = 0;
    int rc = SSL_write_ex(ssl_, data, len, &written);
    if (rc != 1) {
      if (wire_failed(ErrorKind::kWriteError, err)) return false;
      int e = stopped_for_input() ? SSL_ERROR_WANT_READ : SSL_get_error(ssl_, rc);
      unsigned long code = failed_before ? 0 : ERR_peek_last_error();
      ERR_clear_error();
      std::string msg;
      if (e == SSL_ERROR_WANT_READ) {
        msg = "TLS write before the handshake completed";
      } else if (e == SSL_ERROR_ZERO_RETURN) {
        msg = "TLS/SSL connection has been closed (EOF)";
      } else if (code != 0) {
        msg = python_style_error(code, "");
      } else {
        msg = "TLS write failed";
      }
      err.set(ErrorKind::kWriteError, std::move(msg));
      failed_ = true;
      return false;
    }
    data += written;
    len -= written;
  }
  return true;
}

void OpenSslSession::shutdown() {
  if (ssl_ == nullptr || !handshake_done()) return;
  clear_errors();
  SSL_shutdown(ssl_);  // queues close_notify in out_; the reply is not awaited
  clear_errors();
}

size_t OpenSslSession::held_bound() const {
  if (failed_ || wire_ != Wire::kSound || deferred_ != Status::kOk ||
      SSL_is_init_finished(ssl_) != 1 || SSL_get_current_compression(ssl_) != nullptr)
    return SIZE_MAX;
  // Read ahead, OpenSSL's record buffer holds up to one record of the largest
  // size (with its processed part, SSL_pending()); twice that for margin. No
  // compression: a record's plaintext is never longer than its ciphertext.
  return in_pending() + 2 * static_cast<size_t>(SSL3_RT_MAX_PACKET_SIZE);
}

size_t OpenSslSession::pending_output() const { return out_.size(); }

size_t OpenSslSession::append_output(std::string& dst) {
  size_t n = out_.size();
  if (n == 0) return 0;
  if (dst.empty()) {
    dst.swap(out_);  // the records move, uncopied
  } else {
    dst.append(out_);
  }
  out_.clear();
  return n;
}

void OpenSslSession::offer_http2(bool http11_too) {
  if (ssl_ == nullptr) return;
  if (http11_too)
    SSL_set_alpn_protos(ssl_, kAlpnH2Http11, sizeof kAlpnH2Http11);
  else
    SSL_set_alpn_protos(ssl_, kAlpnH2, sizeof kAlpnH2);
}

std::string OpenSslSession::alpn() const {
  if (ssl_ == nullptr) return "";
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(ssl_, &p, &n);
  return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), n);
}

std::string OpenSslSession::version() const {
  if (ssl_ == nullptr || !handshake_done()) return "";
  return SSL_get_version(ssl_);
}

bool OpenSslSession::session_reused() const {
  return ssl_ != nullptr && SSL_session_reused(ssl_) == 1;
}

std::string OpenSslSession::cipher() const {
  if (ssl_ == nullptr) return "";
  const char* name = SSL_get_cipher_name(ssl_);
  return name == nullptr || std::strcmp(name, "(NONE)") == 0 ? "" : name;
}

std::string OpenSslSession::cipher_version() const {
  const SSL_CIPHER* c = ssl_ == nullptr ? nullptr : SSL_get_current_cipher(ssl_);
  const char* v = c == nullptr ? nullptr : SSL_CIPHER_get_version(c);
  return v == nullptr ? "" : v;
}

int OpenSslSession::cipher_bits() const {
  const SSL_CIPHER* c = ssl_ == nullptr ? nullptr : SSL_get_current_cipher(ssl_);
  return c == nullptr ? 0 : SSL_CIPHER_get_bits(c, nullptr);
}

bool OpenSslSession::peer_certificate(std::string& der, bool& verified) const {
  if (ssl_ == nullptr || !handshake_done()) return false;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(ssl_), X509_free);
#else
  std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get_peer_certificate(ssl_), X509_free);
#endif
  if (!cert) return false;
  const int len = i2d_X509(cert.get(), nullptr);
  if (len <= 0) return false;
  der.assign(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(&der[0]);
  if (i2d_X509(cert.get(), &p) != len) return false;
  verified = (SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) != 0;
  return true;
}

}  // namespace httprs
