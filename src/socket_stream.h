// The bottom layer of a connection: one libuv stream, TCP (DNS, then the
// addresses, with socket options and a local address applied before connect())
// or a Unix domain socket. It does the only I/O of a connection; what it reads
// and how its writes end go to its Owner.
//
// One address connects on the stream's own handle. Several race (RFC 8305,
// "Happy Eyeballs"): each attempt has its own handle, the next one starts when
// the previous fails or after kAttemptDelayMs without an answer, the first to
// connect wins (its handle becomes the stream's, the stream's own unused one
// is closed) and the others are closed. An address that drops SYNs so costs
// 250 ms, not the connect timeout.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "borrowed.h"
#include "engine.h"
#include "errors.h"

namespace httprs {

// Where a socket goes, copied from the RequestSpec that opens the connection.
struct SocketTarget {
  std::string host;  // name or IP literal (IPv6 may be bracketed)
  int port = 0;
  std::string uds_path;                     // a Unix socket's address (SocketStream(uds))
  std::string local_address;                // bind to this before connecting
  std::vector<std::string> more_addresses;  // IP literals raced after `host` (a literal too)
  std::shared_ptr<const SocketOptions> options;
  static SocketTarget from(const RequestSpec& spec);
};

class SocketStream {
 public:
  // kReopening: a connect attempt failed; the handle is closing so that the
  // next address gets a fresh one. kRacing: several addresses are being tried,
  // each on its own handle (Attempt); the stream's handle waits for the winner.
  enum class State {
    kIdle,
    kResolving,
    kConnecting,
    kReopening,
    kRacing,
    kOpen,
    kClosing,
    kClosed
  };
  // Outcome of read_now().
  enum class Peek { kData, kEof, kWouldBlock, kError };

  class Owner {
   public:
    virtual ~Owner() = default;
    // Where the next read goes; null (or no room) when no buffer could be
    // allocated: that read then fails with UV_ENOBUFS (on_socket_read_error).
    virtual char* socket_read_buffer(size_t* len) = 0;
    // The exchange on this stream is complete and no read is due: bytes now
    // could only be stray ones or an EOF, which the pool's check before reuse
    // (a non-blocking read) finds. Then a read that filled its buffer is not
    // followed by another that would find the socket empty (see on_alloc).
    virtual bool socket_read_done() const { return false; }
    virtual void on_socket_connected() = 0;
    // DNS failed, or every address did: err is the ConnectError to report.
    virtual void on_socket_connect_failed(const Error& err) = 0;
    virtual void on_socket_data(const char* data, size_t len) = 0;
    virtual void on_socket_eof() = 0;
    virtual void on_socket_read_error(int status) = 0;
    virtual void on_socket_sent() = 0;        // some bytes reached the kernel
    virtual void on_socket_write_done() = 0;  // a write finished (see writes_pending())
    // A write went to libuv's queue. It may arm timers but must not write: it
    // runs while a deferred write's followers are queued (settle_flight), and a
    // write from here would go out ahead of the rest of them.
    virtual void on_socket_write_queued() = 0;
    virtual void on_socket_write_error(int status) = 0;  // after sent / queued
    virtual void on_socket_closed() = 0;                 // the handle is closed
    // A write that finds nothing queued may leave for the kernel once the
    // engine mutex is let go of (Engine::defer_write): true when it does.
    virtual bool defer_socket_write(SocketStream* s) = 0;
    // The deferred write is accounted for (end_deferred), the socket open.
    virtual void on_socket_deferred_ended() {}
  };

  // RFC 8305's recommended "Connection Attempt Delay".
  static constexpr uint64_t kAttemptDelayMs = 250;

  SocketStream(uv_loop_t* loop, Owner* owner, bool uds);
  ~SocketStream();
  SocketStream(const SocketStream&) = delete;
  SocketStream& operator=(const SocketStream&) = delete;

  void connect(SocketTarget target);
  // Take over `fd`, a TCP socket someone else connected (the consumer, through
  // Python's socket while a guard decides), as if connect() had just succeeded.
  // False with err set (and fd closed) when it is not a connected TCP socket.
  bool adopt(int fd, Error& err);
  // Queue `owned`, then `ext` and `tail` (not copied: they must live until
  // the write ends). False with err set when libuv refuses the write.
  bool write(std::string&& owned, Borrowed ext, Borrowed tail, Error& err);
  // A deferred write (Owner::defer_socket_write) is made in three steps, so
  // that the kernel call, which wakes the peer (and on the same CPU lets it
  // preempt the caller), is not made with the engine mutex held. Until
  // end_deferred() the stream acts as if the write were queued: later writes
  // queue behind it, the loop's reads are held back, a close waits for it.
  // With the mutex: true when a write waits; it is now in flight.
  bool begin_deferred();
  // Without the mutex (only the in-flight write and the descriptor are
  // touched): the kernel call. True when all of it went out.
  bool write_deferred_now();
  // With the mutex again: what write() does after its kernel call, then the
  // writes behind it, the reads held back, a close asked for meanwhile. True
  // when held reads (bytes, an EOF or an error) were delivered.
  bool end_deferred();
  // Tests: `hook` runs in every deferred write right after its kernel call
  // (without the engine mutex); nullptr: none. And how many reads of the
  // loop were held back while a deferred write was in flight.
  static void set_flight_hook_for_testing(void (*hook)());
  static uint64_t reads_held_for_testing();
  // Best effort, never queued (a TLS close_notify on the way out).
  void write_now(std::string& data);
  // Non-blocking read of what arrived while nobody ran the loop.
  Peek read_now(char* buf, size_t cap, size_t* n);
  // Outcome of read_ready(): bytes were read and delivered (or a read error
  // was), nothing was there, or the loop must read (an EOF, not reading).
  enum class ReadNow { kRead, kNothing, kLoop };
  // While reading: read what the kernel holds now and deliver it to the owner
  // exactly as the loop's read callback would (Engine::wait, for a thread
  // that polled this socket itself, without running the whole loop).
  ReadNow read_ready();
  // The kernel's receive low-water mark (SO_RCVLOWAT): poll() finds the socket
  // readable once `bytes` are queued (or at an EOF, an error, a receive window
  // about to close); a non-blocking recv() still returns what is there. Set
  // around a direct waiter's poll only (Engine::direct_once), 1 (the default)
  // again before anyone else waits on the socket. By descriptor: for a
  // caller that may not touch the SocketStream (without the engine mutex).
  bool set_read_lowat(int bytes);
  static bool set_read_lowat(int fd, int bytes);
  // Bytes the kernel holds for reading now (FIONREAD), or -1.
  int bytes_queued();
  // The error (a negative libuv status) the next recv() would return, or 0.
  int pending_error();
  void start_reading();
  void stop_reading();
  // Stop taking bytes until start_reading(), telling libuv only if its loop
  // finds the socket readable meanwhile (on_alloc then declines, and on_read
  // stops libuv's read). A consumer that resumes first (the usual case: it
  // hands over its buffer right after the head) costs libuv nothing, where a
  // stop and a start cost two epoll_ctl calls and a loop run (the watcher
  // change leaves the loop due), and left the socket to the loop's reads
  // instead of a direct wait's.
  void pause_reading() { reading_ = false; }
  // Close the handle; the owner hears on_socket_closed() once it is.
  void close();
  // fork() child: close only our copy of the descriptor, no libuv call.
  void drop_after_fork();

  State state() const { return state_; }
  // The descriptor while the socket is open, else -1.
  int fd();
  int writes_pending() const { return writes_pending_; }
  // A deferred write waits for its kernel call or is in flight: a write now
  // would queue behind it.
  bool write_deferred() const { return deferred_ != nullptr; }
  // A deferred write is out of the engine mutex (begin_deferred until
  // end_deferred): the loop's reads are held back meanwhile.
  bool write_in_flight() const { return in_flight_; }
  // While a deferred write is in flight: input arrived, either held back
  // (bytes, an EOF or an error the loop read) or waiting in the kernel
  // (seen by a poll, left there for the loop). A read deadline then finds what a
  // recv() would have returned, which end_deferred and the loop deliver.
  bool input_arrived_in_flight();
  // Writes are numbered from 1 as write() takes them (one number per call
  // with bytes) and complete in that order: writes_completed() is the number
  // of the last one that went out whole.
  uint64_t writes_started() const { return writes_started_; }
  uint64_t writes_completed() const { return writes_completed_; }
  bool write_queue_empty() { return deferred_ == nullptr && stream()->write_queue_size == 0; }
  // Bytes written but not yet on their way: queued in libuv and, where the
  // system tells (Linux SIOCOUTQ), in the kernel's send queue unacknowledged.
  // A decrease is progress of a write the peer is reading.
  size_t unsent_bytes();
  // Bytes are taken from this socket (start_reading(), or a connect on the
  // stream's own handle, and no stop_reading() or pause_reading() since).
  bool reading() const { return reading_; }

 private:
  struct Resolve;
  struct WriteReq;
  struct Attempt;

  void init_handle();
  void resolve();
  bool add_literal(const std::string& host);
  void keep_local_family();
  void connect_addresses();
  void connect_next();
  void reopen();  // close the handle to try the next address on a fresh one
  // uv_read_start together with the connect (see socket_connect.cc).
  void read_while_connecting();
  // Happy Eyeballs (several addresses): start attempts, settle the race.
  void race_next();
  bool start_attempt(const struct sockaddr* addr);
  void attempt_failed(Attempt* a, int status);
  void attempt_won(Attempt* a);
  void drop_attempt(Attempt* a);  // stop waiting for it and close its handle
  void drop_all_attempts();
  void arm_attempt_timer();
  void close_attempt_timer();
  bool own_socket() const;
  // A non-blocking socket of `family` with the target's options set (and, but
  // for AF_UNIX, bound to its local_address), ready for connect(); -1 with
  // `err` set on failure.
  int socket_with_options(int family, Error& err);
  bool open_socket_with_options(uv_tcp_t* tcp, int family, Error& err);
  void connect_unix();
  bool unix_socket_connected(int* fd, Error& err);
  bool apply_socket_options(int fd, Error& err);
  bool bind_local_address(int fd, int family, Error& err);
  void fail_connect(const Error& err);
  void break_for_fault();  // an injected write failure (fault_due)
  bool handle_open() const;
  // The handle the stream uses: its own, or the race's winner's.
  uv_tcp_t* tcp();
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(handle()); }
  uv_handle_t* handle();

  // What on_read does with one read's result (fault injection included).
  void deliver(ssize_t nread, const char* base);
  void hand_over(ssize_t nread, const char* base);  // deliver()'s calls of the owner
  // uv_write() `w` (its remaining `bufs`); false with err set when refused.
  bool queue_write(WriteReq* w, uv_buf_t* bufs, unsigned n, Error& err);
  void settle_flight(WriteReq* w, std::vector<WriteReq*>& behind);
  void drop_deferred();  // a close before the deferred write left: it never will
  static void on_resolved(uv_getaddrinfo_t* req, int status, struct addrinfo* res);
  static void on_connect(uv_connect_t* req, int status);
  static void on_attempt_connect(uv_connect_t* req, int status);
  static void on_attempt_timer(uv_timer_t* t);
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_close(uv_handle_t* h);

  uv_loop_t* loop_;
  Owner* owner_;
  bool uds_;
  State state_ = State::kIdle;
  union Handle {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } sock_;
  SocketTarget target_;
  std::vector<struct sockaddr_storage> addrs_;
  size_t addr_index_ = 0;
  Error last_error_;
  Resolve* resolving_ = nullptr;         // pending getaddrinfo; it outlives us if we close first
  std::vector<Attempt*> attempts_;       // kRacing: the attempts still connecting
  uv_timer_t* attempt_timer_ = nullptr;  // kRacing: starts the next attempt; freed on close
  Attempt* won_ = nullptr;               // the race's winner: its handle is the stream's
  bool spare_closing_ = false;           // sock_, unused once a race is won, is closing
  uv_connect_t connect_req_;
  int writes_pending_ = 0;
  uint64_t writes_started_ = 0;
  uint64_t writes_completed_ = 0;
  bool reading_ = false;
  bool uv_reading_ = false;  // libuv's read is started (a pause may not have stopped it)
  // libuv's last read filled its buffer (so libuv reads again at once), and
  // on_alloc declined that read (on_read then ignores the UV_ENOBUFS).
  bool filled_ = false;
  bool declined_ = false;
  // The deferred write (begin_deferred), the writes queued behind it, and
  // what the loop read while it was in flight (bytes, then an EOF or error).
  WriteReq* deferred_ = nullptr;
  bool in_flight_ = false;
  bool close_after_flight_ = false;
  int flight_fd_ = -1;
  std::vector<WriteReq*> behind_;
  std::string held_in_;
  ssize_t held_status_ = 0;
};

// "[Errno N] strerror" for a libuv status, as Python words OSError.
std::string errno_message(int uv_status);

// Fault injection for the torture tests (tests/test_torture.py, catalog row
// M08): once armed, the k-th call at a site, counted process-wide, fails as
// the kernel's call would (a refused connect, a write or a read that ends in
// a reset). Disarmed, a site costs one relaxed atomic load.
enum class FaultSite { kConnect = 0, kWrite = 1, kRead = 2 };
// k >= 1 arms the site (its count restarts at 0); k = 0 disarms it and only
// counts. `status` is the negative libuv status the failed call returns.
void fault_arm(FaultSite site, int k, int status);
// Calls at the site since it was last armed.
int fault_calls(FaultSite site);
// Counts one call; true (with *status set) when this is the armed k-th one.
bool fault_due(FaultSite site, int* status);

}  // namespace httprs
