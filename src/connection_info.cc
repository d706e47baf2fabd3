// ConnectionInfo: the addresses and TLS facts of an established connection.
#include "connection_info.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "tls.h"

namespace httprs {

void SocketAddress::set(const struct sockaddr* sa, socklen_t len) {
  char text[INET6_ADDRSTRLEN] = {0};
  family = Family::kNone;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof text) == nullptr) return;
    family = Family::kIpv4;
    host = text;
    port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    if (inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text) == nullptr) return;
    family = Family::kIpv6;
    host = text;
    port = ntohs(in6->sin6_port);
    flowinfo = ntohl(in6->sin6_flowinfo);
    scope_id = in6->sin6_scope_id;
  } else if (sa->sa_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
    const size_t base = offsetof(sockaddr_un, sun_path);
    size_t n = len > static_cast<socklen_t>(base) ? static_cast<size_t>(len) - base : 0;
    n = std::min(n, sizeof un->sun_path);
    // A pathname ends at its NUL; an abstract name (leading NUL) is all `n` bytes.
    if (n > 0 && un->sun_path[0] != '\0') n = strnlen(un->sun_path, n);
    family = Family::kUnix;
    host.assign(un->sun_path, n);
  }
}

SocketAddress RawSocketAddress::decode() const {
  SocketAddress address;
  if (length > 0) address.set(reinterpret_cast<const sockaddr*>(&storage), length);
  return address;
}

void ConnectionInfo::capture_addresses(int fd) {
  if (fd < 0) return;
  socklen_t len = sizeof local_raw.storage;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local_raw.storage), &len) == 0)
    local_raw.length = len;
  len = sizeof peer_raw.storage;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer_raw.storage), &len) == 0)
    peer_raw.length = len;
}

void ConnectionInfo::capture_tls(const TlsSession& session, TlsFacts::Kind kind,
                                 const std::string& host) {
  tls.kind = kind;
  tls.version = session.version();
  tls.cipher = session.cipher();
  tls.cipher_version = session.cipher_version();
  tls.cipher_bits = session.cipher_bits();
  tls.alpn = session.alpn();
  tls.server_hostname = host;
  tls.session_reused = session.session_reused();
  if (!session.peer_certificate(tls.peer_der, tls.verified)) tls.peer_der.clear();
}

}  // namespace httprs
