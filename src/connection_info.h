// What one established connection is, for the `network_stream` response
// extension: its socket's addresses and the facts of its TLS session, taken
// once when the connection is established (Connection::on_established) and
// never changed after, so a response reads them without a lock, also after
// the connection closed. Every transfer the connection carries holds it
// (Transfer::conn_info).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace httprs {

class Connection;
class TlsSession;

// One end of the socket, decoded. kNone: unknown (getsockname/getpeername failed).
struct SocketAddress {
  enum class Family { kNone, kIpv4, kIpv6, kUnix };
  Family family = Family::kNone;
  std::string host;  // the IP address as text; kUnix: the path (may be empty)
  int port = 0;
  uint32_t flowinfo = 0;  // kIpv6 only
  uint32_t scope_id = 0;  // kIpv6 only

  // From a sockaddr the kernel filled in (`len` bytes of it).
  void set(const struct sockaddr* sa, socklen_t len);
};

// One end of the socket as the kernel gave it: decoded (to text) only when a
// program asks for it, which most never do, so a new connection pays for the
// system call alone. Never changed once captured, so decoding needs no lock.
struct RawSocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;  // 0: unknown

  SocketAddress decode() const;
};

// The TLS session on top (the origin's; else an https:// proxy's).
struct TlsFacts {
  enum class Kind { kNone, kOrigin, kProxy };
  Kind kind = Kind::kNone;
  std::string version;         // "TLSv1.3"
  std::string cipher;          // "TLS_AES_256_GCM_SHA384"
  std::string cipher_version;  // the protocol the cipher belongs to ("TLSv1.3", "TLSv1/SSLv3")
  int cipher_bits = 0;         // secret bits; 0 when unknown
  std::string alpn;            // "" when none was selected
  std::string server_hostname;
  std::string peer_der;   // the peer's certificate, DER; empty when it sent none
  bool verified = false;  // the certificate chain was checked
  bool session_reused = false;
};

struct ConnectionInfo {
  RawSocketAddress local_raw;
  RawSocketAddress peer_raw;
  TlsFacts tls;
  // The connection while it is open; null once it closes (or in a fork()
  // child). Read and written under the engine's mutex only.
  Connection* live = nullptr;
  // The embedding layer's one object for this connection (a borrowed pointer
  // it sets and clears itself, under its own lock: the GIL for Python).
  void* owner_object = nullptr;

  // Both addresses of socket `fd` (no-op for fd < 0).
  void capture_addresses(int fd);
  SocketAddress local() const { return local_raw.decode(); }
  SocketAddress peer() const { return peer_raw.decode(); }
  // The facts of `session`, whose handshake is done.
  void capture_tls(const TlsSession& session, TlsFacts::Kind kind, const std::string& host);
};

}  // namespace httprs
