/* The TLS library's limit for a new HTTPS connection per request: what OpenSSL itself
 * costs, without any client around it. Each operation connects (blocking TCP,
 * TCP_NODELAY), makes a TLS handshake that offers the previous connection's session
 * ticket (a resumed TLS 1.3 handshake after the first), verifies as Python's
 * ssl.create_default_context() does (peer certificate against CAFILE, host name or IP
 * address checked, TLS 1.2 at least), sends a GET with "Connection: close", reads to the
 * end, sends close_notify and closes. It links the same libssl / libcrypto as Python's
 * ssl module and httprs, so httprs's https_new_conn cost divided by this one is what
 * httprs adds to the library's handshake.
 *
 * Usage: tls_floor HOST PORT PATH CAFILE WARMUP_SECONDS SECONDS
 * Prints one JSON object: requests, wall_s, cpu_user_s, cpu_sys_s, p50_us, p99_us,
 * bytes (response bytes read), resumed (handshakes that resumed a session).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "measure.h"

/* The newest session ticket the server gave; offered (once) by the next connection. */
static SSL_SESSION* kept;

static int keep_session(SSL* ssl, SSL_SESSION* session) {
  (void)ssl;
  if (kept) SSL_SESSION_free(kept);
  kept = session;
  return 1; /* the callback owns it now */
}

static struct {
  struct sockaddr_in addr;
  const char* host;
  int host_is_ip;
  char req[512];
  int req_len;
  long resumed;
} target;

static char buf[1 << 16];

static int tcp_connect(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  while (connect(fd, (struct sockaddr*)&target.addr, sizeof target.addr) < 0) {
    if (errno == EINTR) continue;
    close(fd);
    return -1;
  }
  return fd;
}

/* Names the peer must prove, as Python's ssl module sets them: an IP literal is
 * checked as an address and sent without SNI, a name as a host name with SNI. */
static int set_peer_name(SSL* ssl) {
  if (target.host_is_ip) return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), target.host);
  return SSL_set_tlsext_host_name(ssl, target.host) == 1 && SSL_set1_host(ssl, target.host) == 1;
}

/* One connection, one request. Returns the bytes read (head and body), or -1. */
static long exchange(void* arg) {
  SSL_CTX* ctx = arg;
  int fd = tcp_connect();
  if (fd < 0) return -1;
  long got = -1;
  SSL* ssl = SSL_new(ctx);
  if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || !set_peer_name(ssl)) goto out;
  if (kept) {
    SSL_set_session(ssl, kept);
    SSL_SESSION_free(kept); /* a ticket is offered once (RFC 8446 C.4) */
    kept = NULL;
  }
  if (SSL_connect(ssl) != 1) goto out;
  if (SSL_write(ssl, target.req, target.req_len) != target.req_len) goto out;
  got = 0;
  int r;
  while ((r = SSL_read(ssl, buf, sizeof buf)) > 0) got += r;
  if (SSL_get_error(ssl, r) != SSL_ERROR_ZERO_RETURN && got == 0) got = -1;
  target.resumed += SSL_session_reused(ssl);
  SSL_shutdown(ssl);
out:
  if (got < 0) ERR_print_errors_fp(stderr);
  SSL_free(ssl);
  close(fd);
  return got;
}

static SSL_CTX* make_context(const char* cafile) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) return NULL;
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, keep_session);
  return ctx;
}

int main(int argc, char** argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: %s HOST PORT PATH CAFILE WARMUP_S SECONDS\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN); /* close_notify to a server that has closed: an error, not a kill */
  target.host = argv[1];
  int port = atoi(argv[2]);
  double warmup = atof(argv[5]), seconds = atof(argv[6]);
  target.addr.sin_family = AF_INET;
  target.addr.sin_port = htons((uint16_t)port);
  target.host_is_ip = inet_pton(AF_INET, target.host, &target.addr.sin_addr) == 1;
  if (!target.host_is_ip) {
    fprintf(stderr, "HOST must be an IPv4 address (the benchmark's servers are on 127.0.0.1)\n");
    return 2;
  }
  target.req_len = snprintf(target.req, sizeof target.req,
                            "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: */*\r\n"
                            "Accept-Encoding: gzip, deflate\r\nConnection: close\r\n"
                            "User-Agent: bench-c\r\n\r\n",
                            argv[3], target.host, port);
  SSL_CTX* ctx = make_context(argv[4]);
  if (ctx == NULL) {
    ERR_print_errors_fp(stderr);
    return 1;
  }

  struct measured m;
  if (warm_up(exchange, ctx, warmup) < 0) return 1;
  target.resumed = 0;
  if (measure(exchange, ctx, seconds, &m) < 0) return 1;
  char extra[64];
  snprintf(extra, sizeof extra, ", \"resumed\": %ld", target.resumed);
  print_measured(&m, extra);
  if (kept) SSL_SESSION_free(kept);
  SSL_CTX_free(ctx);
  return 0;
}
