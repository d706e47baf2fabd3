// Unit tests for SocketStream (src/socket_*.cc) on a libuv loop with a
// listener of its own on 127.0.0.1. The Happy Eyeballs race: the winning
// attempt's handle becomes the stream's, the stream's own unused handle
// closes, and the stream reports itself closed exactly once, after both
// handles are, whichever closes first. A deferred write's end: the writes
// queued behind it. Built with AddressSanitizer by tests/test_cpp_units.py (a
// use of a freed handle or a leaked attempt fails the run); uv_loop_close()
// failing means a handle was left open.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "check.h"
#include "socket_stream.h"

using httprs::Error;
using httprs::SocketStream;
using httprs::SocketTarget;

namespace {

// A listener that sends "hello" to whoever connects, then closes that socket.
struct Server {
  uv_tcp_t listener;
  int port = 0;
  int accepted = 0;
};

void on_server_write(uv_write_t* req, int) {
  uv_close(reinterpret_cast<uv_handle_t*>(req->handle),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  delete req;
}

void on_connection(uv_stream_t* listener, int status) {
  if (status < 0) return;
  auto* srv = static_cast<Server*>(listener->data);
  auto* peer = new uv_tcp_t;
  uv_tcp_init(listener->loop, peer);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(peer)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(peer),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return;
  }
  srv->accepted++;
  static char hello[] = "hello";
  uv_buf_t buf = uv_buf_init(hello, 5);
  uv_write(new uv_write_t, reinterpret_cast<uv_stream_t*>(peer), &buf, 1, &on_server_write);
}

void start_server(uv_loop_t* loop, Server* srv) {
  uv_tcp_init(loop, &srv->listener);
  srv->listener.data = srv;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_bind(&srv->listener, reinterpret_cast<const struct sockaddr*>(&addr), 0);
  uv_listen(reinterpret_cast<uv_stream_t*>(&srv->listener), 16, &on_connection);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(&srv->listener, reinterpret_cast<struct sockaddr*>(&ss), &len);
  srv->port = ntohs(reinterpret_cast<struct sockaddr_in*>(&ss)->sin_port);
}

int open_fds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (readdir(d) != nullptr) n++;
  closedir(d);
  return n;
}

// When the owner closes the stream: inside on_socket_connected (the same loop
// iteration as the race is won, so the winner's handle finishes closing before
// the stream's own one), or once the server's bytes arrived (a later one).
enum class CloseAt { kConnected, kData };

class Owner : public SocketStream::Owner {
 public:
  Owner(uv_loop_t* loop, CloseAt at) : sock(loop, this, false), close_at(at) {}
  char* socket_read_buffer(size_t* len) override {
    *len = sizeof buf;
    return buf;
  }
  void on_socket_connected() override {
    connected++;
    fd_when_connected = sock.fd();
    if (close_at == CloseAt::kConnected) sock.close();
  }
  void on_socket_connect_failed(const Error& err) override {
    failed++;
    error = err.message;
  }
  void on_socket_data(const char* data, size_t len) override {
    received.append(data, len);
    if (close_at == CloseAt::kData && received == "hello") sock.close();
  }
  void on_socket_eof() override {}
  void on_socket_read_error(int) override {}
  void on_socket_sent() override {}
  void on_socket_write_done() override {}
  void on_socket_write_queued() override {}
  void on_socket_write_error(int) override {}
  bool defer_socket_write(SocketStream*) override { return false; }  // writes go out at once
  void on_socket_closed() override {
    closed++;
    state_when_closed = sock.state();
  }

  SocketStream sock;
  CloseAt close_at;
  char buf[256];
  int connected = 0, failed = 0, closed = 0, fd_when_connected = -1;
  SocketStream::State state_when_closed = SocketStream::State::kIdle;
  std::string received, error;
};

// `first` is tried first, then 127.0.0.1 (where the server listens): with
// first = 127.0.0.1 the first attempt wins; with 127.0.0.3 (nothing listens
// there) it is refused and the second attempt wins.
void race(const char* first, CloseAt at) {
  int fds_before = open_fds();
  uv_loop_t loop;
  uv_loop_init(&loop);
  Server srv;
  start_server(&loop, &srv);
  {
    auto owner = std::make_unique<Owner>(&loop, at);
    SocketTarget target;
    target.host = first;
    target.port = srv.port;
    target.more_addresses = {"127.0.0.1"};
    owner->sock.connect(target);
    CHECK(owner->sock.state() == SocketStream::State::kRacing);
    while (owner->closed == 0 && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
    CHECK(owner->connected == 1);
    CHECK(owner->failed == 0);
    CHECK(owner->fd_when_connected >= 0);
    CHECK(owner->closed == 1);
    CHECK(owner->state_when_closed == SocketStream::State::kClosed);
    CHECK(owner->sock.fd() == -1);
    if (at == CloseAt::kData) CHECK_EQ_STR(owner->received, "hello");
    // Nothing of the stream is left for the loop to call back into.
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(owner->closed == 1);
  }
  if (at == CloseAt::kData) CHECK(srv.accepted == 1);
  uv_close(reinterpret_cast<uv_handle_t*>(&srv.listener), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
  CHECK(open_fds() == fds_before);  // no descriptor of the race left open
}

// An owner whose first write is deferred (as Engine::defer_write makes it),
// recording how many writes were pending whenever one finished.
class FlightOwner : public SocketStream::Owner {
 public:
  explicit FlightOwner(uv_loop_t* loop) : sock(loop, this, false) {}
  char* socket_read_buffer(size_t* len) override {
    *len = sizeof buf;
    return buf;
  }
  void on_socket_connected() override {}
  void on_socket_connect_failed(const Error&) override {}
  void on_socket_data(const char*, size_t) override {}
  void on_socket_eof() override {}
  void on_socket_read_error(int) override {}
  void on_socket_sent() override {}
  void on_socket_write_done() override { pending_when_done.push_back(sock.writes_pending()); }
  void on_socket_write_queued() override {}
  void on_socket_write_error(int) override { errors++; }
  bool defer_socket_write(SocketStream*) override { return defer; }
  void on_socket_closed() override { closed++; }

  SocketStream sock;
  bool defer = true;
  char buf[256];
  int errors = 0, closed = 0;
  std::vector<int> pending_when_done;
};

// A connected pair of TCP sockets on 127.0.0.1 (blocking), or false.
bool tcp_pair(int* client, int* server) {
  int lst = ::socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bool ok = lst >= 0 && ::bind(lst, reinterpret_cast<struct sockaddr*>(&addr), len) == 0 &&
            ::listen(lst, 1) == 0 &&
            ::getsockname(lst, reinterpret_cast<struct sockaddr*>(&addr), &len) == 0;
  *client = ok ? ::socket(AF_INET, SOCK_STREAM, 0) : -1;
  ok = ok && *client >= 0 &&
       ::connect(*client, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) == 0;
  *server = ok ? ::accept(lst, nullptr, nullptr) : -1;
  if (lst >= 0) ::close(lst);
  return ok && *server >= 0;
}

// The deferred write went out whole while another was queued behind it: the
// one behind is handed to libuv before the owner hears that the first is
// done, so that the owner never sees nothing pending (for HTTP/1.1: the
// request sent, the next chunk of an upload wanted) with bytes still unsent;
// and the bytes reach the peer in the order they were written.
void deferred_write_ends_with_the_writes_behind_it_queued() {
  int client = -1, server = -1;
  CHECK(tcp_pair(&client, &server));
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    auto owner = std::make_unique<FlightOwner>(&loop);
    Error err;
    CHECK(owner->sock.adopt(client, err));
    CHECK(owner->sock.write("first,", {}, {}, err));
    CHECK(owner->sock.writes_pending() == 1);  // deferred
    CHECK(owner->sock.begin_deferred());
    CHECK(owner->sock.write("second", {}, {}, err));  // behind the one in flight
    CHECK(owner->sock.writes_pending() == 2);
    CHECK(owner->sock.write_deferred_now());
    owner->sock.end_deferred();
    CHECK(owner->pending_when_done.size() == 1);
    if (!owner->pending_when_done.empty()) CHECK(owner->pending_when_done[0] == 1);
    while (owner->sock.writes_pending() > 0 && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
    CHECK(owner->pending_when_done.size() == 2);
    if (owner->pending_when_done.size() == 2) CHECK(owner->pending_when_done[1] == 0);
    CHECK(owner->errors == 0);
    std::string got(12, '\0');
    size_t have = 0;
    while (have < got.size()) {
      ssize_t n = ::recv(server, &got[have], got.size() - have, 0);
      if (n <= 0) break;
      have += static_cast<size_t>(n);
    }
    CHECK_EQ_STR(got, "first,second");
    owner->sock.close();
    while (owner->closed == 0 && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
    CHECK(owner->closed == 1);
  }
  ::close(server);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace

int main() {
  // libuv's first loop opens descriptors it keeps for the process (its signal
  // lock's pipe): open them before the races count descriptors.
  uv_loop_t warm;
  uv_loop_init(&warm);
  uv_loop_close(&warm);
  for (const char* first : {"127.0.0.1", "127.0.0.3"}) {
    race(first, CloseAt::kConnected);
    race(first, CloseAt::kData);
  }
  deferred_write_ends_with_the_writes_behind_it_queued();
  return check_report("test_socket_stream");
}
