/* The machine limit for one connection: blocking keep-alive GETs over one TCP
 * connection, the body read fully each time, with the same request bytes a minimal
 * HTTP/1.1 client sends. With UPLOAD_BYTES, a POST of that many bytes instead (the
 * head and the body in one blocking writev, as a client holding the body in memory
 * sends it), its response read fully.
 *
 * Usage: pingpong HOST PORT PATH [UPLOAD_BYTES] WARMUP_SECONDS SECONDS
 * Prints one JSON object: requests, wall_s, cpu_user_s, cpu_sys_s, p50_us, p99_us,
 * bytes (body bytes read, or uploaded).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "measure.h"

static char buf[1 << 20];

/* Writes all of the head and then the body (may be empty), in as few writev calls as
 * the kernel allows. 0, or -1 on error. */
static int send_all(int fd, const char* head, size_t head_len, const char* body, size_t body_len) {
  struct iovec iov[2] = {{(void*)head, head_len}, {(void*)body, body_len}};
  struct iovec* v = iov;
  int n = body_len ? 2 : 1;
  while (n > 0) {
    ssize_t w = writev(fd, v, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    while (n > 0 && (size_t)w >= v->iov_len) {
      w -= (ssize_t)v->iov_len;
      v++;
      n--;
    }
    if (n > 0) {
      v->iov_base = (char*)v->iov_base + w;
      v->iov_len -= (size_t)w;
    }
  }
  return 0;
}

/* One request/response. Returns body bytes read, or -1 on error. */
static long round_trip(int fd, const char* req, size_t req_len, const char* upload,
                       size_t upload_len) {
  if (send_all(fd, req, req_len, upload, upload_len) < 0) return -1;
  size_t have = 0;
  char* head_end = NULL;
  while (!head_end) {
    ssize_t r = read(fd, buf + have, sizeof buf - have);
    if (r <= 0) return -1;
    have += (size_t)r;
    head_end = memmem(buf, have, "\r\n\r\n", 4);
  }
  size_t head_len = (size_t)(head_end - buf) + 4;
  long content_length = -1;
  for (char* l = buf; l < head_end;) {
    char* e = memmem(l, (size_t)(head_end + 2 - l), "\r\n", 2);
    if (!e) break;
    if ((size_t)(e - l) > 15 && strncasecmp(l, "content-length:", 15) == 0)
      content_length = strtol(l + 15, NULL, 10);
    l = e + 2;
  }
  if (content_length < 0) return -1; /* nginx always sends a length for these paths */
  size_t body = have - head_len;
  while (body < (size_t)content_length) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r <= 0) return -1;
    body += (size_t)r;
  }
  return content_length;
}

struct conn {
  int fd;
  const char* req;
  size_t req_len;
  const char* body;
  size_t body_len;
};

static long one_request(void* arg) {
  struct conn* c = arg;
  long got = round_trip(c->fd, c->req, c->req_len, c->body, c->body_len);
  return got < 0 || c->body_len == 0 ? got : (long)c->body_len;
}

int main(int argc, char** argv) {
  if (argc != 6 && argc != 7) {
    fprintf(stderr, "usage: %s HOST PORT PATH [UPLOAD_BYTES] WARMUP_S SECONDS\n", argv[0]);
    return 2;
  }
  const char* host = argv[1];
  int port = atoi(argv[2]);
  const char* path = argv[3];
  size_t upload = argc == 7 ? (size_t)strtoull(argv[4], NULL, 10) : 0;
  double warmup = atof(argv[argc - 2]), seconds = atof(argv[argc - 1]);
  char* body = NULL;
  if (upload) {
    body = malloc(upload);
    if (!body) {
      perror("malloc");
      return 1;
    }
    for (size_t i = 0; i < upload; i++) body[i] = (char)('a' + i % 26);
  }

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, host, &addr.sin_addr);
  if (connect(fd, (struct sockaddr*)&addr, sizeof addr) < 0) {
    perror("connect");
    return 1;
  }
  char req[512];
  int req_len;
  if (upload)
    req_len = snprintf(req, sizeof req,
                       "POST %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: */*\r\n"
                       "Content-Length: %zu\r\nConnection: keep-alive\r\n"
                       "User-Agent: bench-c\r\n\r\n",
                       path, host, port, upload);
  else
    req_len = snprintf(req, sizeof req,
                       "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: */*\r\n"
                       "Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
                       "User-Agent: bench-c\r\n\r\n",
                       path, host, port);

  struct conn c = {fd, req, (size_t)req_len, body, upload};
  struct measured m;
  if (warm_up(one_request, &c, warmup) < 0 || measure(one_request, &c, seconds, &m) < 0) return 1;
  print_measured(&m, "");
  close(fd);
  free(body);
  return 0;
}
