/* A small single-threaded epoll HTTP/1.1 server for the httprs benchmark.
 *
 * It serves what nginx cannot produce cheaply:
 *   POST /echo               the response body is the request body
 *   POST /upload             the body is read and discarded; the response is its
 *                            length in decimal (lets the client check the upload)
 *   GET  /stats              "accepts N": connections accepted so far
 *   GET  /chunked?size=N&chunk=C
 *                            N bytes sent with Transfer-Encoding: chunked, C bytes
 *                            per chunk
 * Request bodies may use Content-Length or chunked framing; "Expect: 100-continue"
 * is answered; keep-alive is the default and "Connection: close" is honoured.
 *
 * Usage: echo_server PORT   (listens on 127.0.0.1; prints "ready" when listening)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_HEAD 65536
#define MAX_ECHO (64u * 1024u * 1024u)

enum state {
  ST_HEAD,
  ST_BODY_CL,
  ST_CHUNK_SIZE,
  ST_CHUNK_DATA,
  ST_CHUNK_CRLF,
  ST_TRAILER,
  ST_WRITE
};
enum route { R_ECHO, R_UPLOAD, R_CHUNKED, R_STATS, R_NOTFOUND };

typedef struct {
  int fd;
  enum state st;
  enum route route;
  char* in;
  size_t in_len, in_cap;
  size_t body_left; /* Content-Length bytes or current chunk bytes still to read */
  size_t body_total;
  char* body; /* echo buffer */
  size_t body_len, body_cap;
  int close_after;
  int want_out; /* registered for EPOLLOUT */
  /* output: head (owned) + body (owned or shared) */
  char head[512];
  size_t head_len, head_off;
  const char* out;
  size_t out_len, out_off;
  char* out_owned;
  size_t chunk_size, chunked_total;
  char ctype[128]; /* request Content-Type, echoed back by /echo */
} conn_t;

static int g_ep;
static unsigned long long g_accepts; /* connections accepted, served by GET /stats */

/* One cached chunked response body (the benchmark asks for one shape at a time). */
static char* g_chunked_buf;
static size_t g_chunked_len, g_chunked_size, g_chunked_chunk;

static const char* chunked_body(size_t size, size_t chunk, size_t* len) {
  if (g_chunked_buf && g_chunked_size == size && g_chunked_chunk == chunk) {
    *len = g_chunked_len;
    return g_chunked_buf;
  }
  free(g_chunked_buf);
  size_t nchunks = chunk ? (size + chunk - 1) / chunk : 0;
  size_t cap = size + nchunks * 24 + 16;
  char* buf = malloc(cap);
  if (!buf) {
    g_chunked_buf = NULL;
    return NULL;
  }
  size_t pos = 0, left = size;
  while (left > 0) {
    size_t n = left < chunk ? left : chunk;
    pos += (size_t)sprintf(buf + pos, "%zx\r\n", n);
    memset(buf + pos, 'x', n);
    pos += n;
    buf[pos++] = '\r';
    buf[pos++] = '\n';
    left -= n;
  }
  memcpy(buf + pos, "0\r\n\r\n", 5);
  pos += 5;
  g_chunked_buf = buf;
  g_chunked_len = pos;
  g_chunked_size = size;
  g_chunked_chunk = chunk;
  *len = pos;
  return buf;
}

static void set_events(conn_t* c, int out) {
  if (c->want_out == out) return;
  struct epoll_event ev = {.events = out ? EPOLLOUT : EPOLLIN, .data.ptr = c};
  epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
  c->want_out = out;
}

static void conn_free(conn_t* c) {
  epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c->in);
  free(c->body);
  free(c->out_owned);
  free(c);
}

static void reset_request(conn_t* c) {
  c->st = ST_HEAD;
  c->body_left = c->body_total = 0;
  c->body_len = 0;
  c->head_len = c->head_off = 0;
  c->out = NULL;
  c->out_len = c->out_off = 0;
  free(c->out_owned);
  c->out_owned = NULL;
}

static int header_is(const char* line, size_t len, const char* name) {
  size_t n = strlen(name);
  return len > n && strncasecmp(line, name, n) == 0 && line[n] == ':';
}

static const char* header_value(const char* line, size_t len, size_t* vlen) {
  const char* p = memchr(line, ':', len);
  p++;
  while (p < line + len && (*p == ' ' || *p == '\t')) p++;
  const char* e = line + len;
  while (e > p && (e[-1] == ' ' || e[-1] == '\t')) e--;
  *vlen = (size_t)(e - p);
  return p;
}

static size_t query_param(const char* path, size_t plen, const char* key, size_t dflt) {
  const char* q = memchr(path, '?', plen);
  if (!q) return dflt;
  size_t klen = strlen(key);
  const char* p = q + 1;
  const char* end = path + plen;
  while (p < end) {
    if ((size_t)(end - p) > klen && strncmp(p, key, klen) == 0 && p[klen] == '=')
      return strtoull(p + klen + 1, NULL, 10);
    const char* amp = memchr(p, '&', (size_t)(end - p));
    if (!amp) break;
    p = amp + 1;
  }
  return dflt;
}

/* Appends echo data (or only counts it for /upload). Returns -1 when too large. */
static int body_data(conn_t* c, const char* p, size_t n) {
  c->body_total += n;
  if (c->route != R_ECHO) return 0;
  if (c->body_len + n > c->body_cap) {
    size_t cap = c->body_cap ? c->body_cap : 65536;
    while (cap < c->body_len + n) cap *= 2;
    if (cap > MAX_ECHO) return -1;
    char* nb = realloc(c->body, cap);
    if (!nb) return -1;
    c->body = nb;
    c->body_cap = cap;
  }
  memcpy(c->body + c->body_len, p, n);
  c->body_len += n;
  return 0;
}

static void start_response(conn_t* c, int status, const char* reason, const char* extra) {
  c->head_len =
      (size_t)snprintf(c->head, sizeof c->head, "HTTP/1.1 %d %s\r\nServer: bench-c\r\n%s%s\r\n",
                       status, reason, extra, c->close_after ? "Connection: close\r\n" : "");
  c->st = ST_WRITE;
}

static void finish_request(conn_t* c) {
  char extra[256];
  if (c->route == R_ECHO) {
    c->out = c->body;
    c->out_len = c->body_len;
    snprintf(extra, sizeof extra, "Content-Type: %s\r\nContent-Length: %zu\r\n",
             c->ctype[0] ? c->ctype : "application/octet-stream", c->body_len);
    start_response(c, 200, "OK", extra);
  } else if (c->route == R_UPLOAD) {
    char* s = malloc(32);
    int n = snprintf(s, 32, "%zu", c->body_total);
    c->out_owned = s;
    c->out = s;
    c->out_len = (size_t)n;
    snprintf(extra, sizeof extra, "Content-Type: text/plain\r\nContent-Length: %d\r\n", n);
    start_response(c, 200, "OK", extra);
  } else if (c->route == R_STATS) {
    char* s = malloc(48);
    int n = snprintf(s, 48, "accepts %llu\n", g_accepts);
    c->out_owned = s;
    c->out = s;
    c->out_len = (size_t)n;
    snprintf(extra, sizeof extra, "Content-Type: text/plain\r\nContent-Length: %d\r\n", n);
    start_response(c, 200, "OK", extra);
  } else if (c->route == R_CHUNKED) {
    size_t len = 0;
    c->out = chunked_body(c->chunked_total, c->chunk_size, &len);
    c->out_len = c->out ? len : 0;
    start_response(c, 200, "OK",
                   "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n");
  } else {
    c->out = "not found\n";
    c->out_len = 10;
    start_response(c, 404, "Not Found", "Content-Type: text/plain\r\nContent-Length: 10\r\n");
  }
}

/* Parses the request head at c->in (head_end bytes including the blank line).
   Returns 0 on success, -1 on a malformed request. */
static int parse_head(conn_t* c, size_t head_end) {
  char* p = c->in;
  char* line_end = memmem(p, head_end, "\r\n", 2);
  if (!line_end) return -1;
  char* sp1 = memchr(p, ' ', (size_t)(line_end - p));
  if (!sp1) return -1;
  char* path = sp1 + 1;
  char* sp2 = memchr(path, ' ', (size_t)(line_end - path));
  if (!sp2) return -1;
  size_t plen = (size_t)(sp2 - path);
  int http10 = (size_t)(line_end - sp2) >= 9 && strncmp(sp2 + 1, "HTTP/1.0", 8) == 0;

  if (plen >= 5 && strncmp(path, "/echo", 5) == 0)
    c->route = R_ECHO;
  else if (plen >= 7 && strncmp(path, "/upload", 7) == 0)
    c->route = R_UPLOAD;
  else if (plen == 6 && strncmp(path, "/stats", 6) == 0)
    c->route = R_STATS;
  else if (plen >= 8 && strncmp(path, "/chunked", 8) == 0) {
    c->route = R_CHUNKED;
    c->chunked_total = query_param(path, plen, "size", 10u * 1024u * 1024u);
    c->chunk_size = query_param(path, plen, "chunk", 16384);
    if (c->chunk_size == 0) c->chunk_size = 16384;
  } else
    c->route = R_NOTFOUND;

  size_t content_length = 0;
  int chunked = 0, expect = 0;
  c->close_after = http10;
  c->ctype[0] = 0;
  char* l = line_end + 2;
  char* end = c->in + head_end - 2;
  while (l < end) {
    char* le = memmem(l, (size_t)(end - l) + 2, "\r\n", 2);
    if (!le) return -1;
    size_t len = (size_t)(le - l);
    size_t vlen;
    if (header_is(l, len, "content-length")) {
      const char* v = header_value(l, len, &vlen);
      content_length = strtoull(v, NULL, 10);
    } else if (header_is(l, len, "transfer-encoding")) {
      const char* v = header_value(l, len, &vlen);
      if (vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0) chunked = 1;
    } else if (header_is(l, len, "connection")) {
      const char* v = header_value(l, len, &vlen);
      if (vlen == 5 && strncasecmp(v, "close", 5) == 0) c->close_after = 1;
      if (vlen == 10 && strncasecmp(v, "keep-alive", 10) == 0) c->close_after = 0;
    } else if (header_is(l, len, "content-type")) {
      const char* v = header_value(l, len, &vlen);
      if (vlen < sizeof c->ctype) {
        memcpy(c->ctype, v, vlen);
        c->ctype[vlen] = 0;
      }
    } else if (header_is(l, len, "expect")) {
      const char* v = header_value(l, len, &vlen);
      if (vlen == 12 && strncasecmp(v, "100-continue", 12) == 0) expect = 1;
    }
    l = le + 2;
  }
  if (expect) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    ssize_t w = write(c->fd, cont, sizeof cont - 1);
    (void)w; /* a 25-byte write to a fresh socket buffer does not block */
  }
  if (chunked) {
    c->st = ST_CHUNK_SIZE;
  } else if (content_length > 0) {
    c->st = ST_BODY_CL;
    c->body_left = content_length;
  } else {
    finish_request(c);
  }
  return 0;
}

/* Consumes as much of c->in as the current state allows. Returns -1 to drop. */
static int process_input(conn_t* c) {
  size_t pos = 0;
  int rc = 0;
  while (c->st != ST_WRITE) {
    char* p = c->in + pos;
    size_t avail = c->in_len - pos;
    if (c->st == ST_HEAD) {
      char* e = memmem(p, avail, "\r\n\r\n", 4);
      if (!e) {
        if (avail > MAX_HEAD) rc = -1;
        break;
      }
      size_t head_end = (size_t)(e - p) + 4;
      /* parse_head works on c->in: move the head to the front first */
      if (pos) {
        memmove(c->in, p, avail);
        c->in_len = avail;
        pos = 0;
      }
      if (parse_head(c, head_end) < 0) {
        rc = -1;
        break;
      }
      pos += head_end;
    } else if (c->st == ST_BODY_CL) {
      if (!avail) break;
      size_t n = avail < c->body_left ? avail : c->body_left;
      if (body_data(c, p, n) < 0) {
        rc = -1;
        break;
      }
      pos += n;
      c->body_left -= n;
      if (!c->body_left) finish_request(c);
    } else if (c->st == ST_CHUNK_SIZE) {
      char* e = memmem(p, avail, "\r\n", 2);
      if (!e) {
        if (avail > 1024) rc = -1;
        break;
      }
      c->body_left = strtoull(p, NULL, 16);
      pos += (size_t)(e - p) + 2;
      c->st = c->body_left ? ST_CHUNK_DATA : ST_TRAILER;
    } else if (c->st == ST_CHUNK_DATA) {
      if (!avail) break;
      size_t n = avail < c->body_left ? avail : c->body_left;
      if (body_data(c, p, n) < 0) {
        rc = -1;
        break;
      }
      pos += n;
      c->body_left -= n;
      if (!c->body_left) c->st = ST_CHUNK_CRLF;
    } else if (c->st == ST_CHUNK_CRLF) {
      if (avail < 2) break;
      pos += 2;
      c->st = ST_CHUNK_SIZE;
    } else if (c->st == ST_TRAILER) {
      char* e = memmem(p, avail, "\r\n", 2);
      if (!e) break;
      pos += (size_t)(e - p) + 2;
      if (e == p) finish_request(c); /* empty line ends the trailers */
    }
  }
  if (pos) {
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
  }
  return rc;
}

/* Writes pending output. Returns 1 when done, 0 when blocked, -1 on error. */
static int flush_output(conn_t* c) {
  while (c->head_off < c->head_len || c->out_off < c->out_len) {
    struct iovec iov[2];
    int n = 0;
    if (c->head_off < c->head_len) {
      iov[n].iov_base = c->head + c->head_off;
      iov[n++].iov_len = c->head_len - c->head_off;
    }
    if (c->out_off < c->out_len) {
      iov[n].iov_base = (void*)(c->out + c->out_off);
      iov[n++].iov_len = c->out_len - c->out_off;
    }
    ssize_t w = writev(c->fd, iov, n);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      if (errno == EINTR) continue;
      return -1;
    }
    size_t left = (size_t)w;
    size_t h = c->head_len - c->head_off;
    if (left >= h) {
      c->head_off = c->head_len;
      left -= h;
    } else {
      c->head_off += left;
      left = 0;
    }
    c->out_off += left;
  }
  return 1;
}

/* Drives one connection as far as it can go. Returns -1 to close it. */
static int drive(conn_t* c) {
  for (;;) {
    if (c->st == ST_WRITE) {
      int r = flush_output(c);
      if (r < 0) return -1;
      if (r == 0) {
        set_events(c, 1);
        return 0;
      }
      if (c->close_after) return -1;
      reset_request(c);
      set_events(c, 0);
      if (c->in_len) {
        if (process_input(c) < 0) return -1;
        if (c->st == ST_WRITE) continue;
      }
    }
    /* read */
    if (c->in_cap - c->in_len < 65536) {
      size_t cap = c->in_cap ? c->in_cap * 2 : 131072;
      char* nb = realloc(c->in, cap);
      if (!nb) return -1;
      c->in = nb;
      c->in_cap = cap;
    }
    ssize_t r = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (r == 0) return -1;
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      if (errno == EINTR) continue;
      return -1;
    }
    c->in_len += (size_t)r;
    if (process_input(c) < 0) return -1;
    /* keep the input buffer small while streaming a large body */
    if (c->in_cap > (1u << 20) && c->in_len < 65536 && c->st != ST_HEAD) {
      char* nb = realloc(c->in, 131072);
      if (nb) {
        c->in = nb;
        c->in_cap = 131072;
      }
    }
  }
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int port = atoi(argv[1]);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(ls, (struct sockaddr*)&addr, sizeof addr) < 0 || listen(ls, 1024) < 0) {
    perror("bind/listen");
    return 1;
  }
  g_ep = epoll_create1(0);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(g_ep, EPOLL_CTL_ADD, ls, &lev);
  printf("ready\n");
  fflush(stdout);

  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(g_ep, evs, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      conn_t* c = evs[i].data.ptr;
      if (!c) {
        for (;;) {
          int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
          if (fd < 0) break;
          g_accepts++;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          conn_t* nc = calloc(1, sizeof *nc);
          nc->fd = fd;
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
          epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      if (drive(c) < 0) conn_free(c);
    }
  }
}
