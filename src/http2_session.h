// A sans-IO HTTP/2 client session over nghttp2 (classic mem_recv / mem_send
// API). Bytes read from the connection go in through feed(); frames to write
// come out of flush(); what happened to each stream comes out of
// take_events(), in order. No sockets, no timers, no Python, no exceptions:
// the owner (a connection) moves bytes and turns events into transfer state.
//
// Flow control is manual (NGHTTP2_OPT_NO_AUTO_WINDOW_UPDATE): received DATA
// counts against its stream's window until the owner says it was read
// (consume()), so a slow reader gets backpressure, not unbounded buffering.
// The connection window is given back as DATA arrives: what a stopped reader
// may hold is bounded by its stream window, and however many readers stop,
// the other streams never wait for connection window. A stream starts at a
// small window (what arrives before its consumer first reads it is buffered)
// and its owner opens it wide on that first read (open_window()).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "errors.h"
#include "header_block.h"

struct nghttp2_session;

namespace httprs {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Receive windows: a stream may have 1 MiB unread (the HTTP/1.1 path pauses
// reading at the same bound) once its consumer reads; until then only its
// initial window (64 KiB, about HTTP/1.1's mark for a body nobody asked for
// yet), so a body's bytes that come before its consumer's buffer are few
// (copied once more, and resident beside that buffer: a 10 MiB HTTP/2 body
// took ~1 MiB on top). The connection window (given back on arrival) only
// sets how much may be in flight at once over all streams.
struct Http2Config {
  uint32_t stream_window = 1u << 20;  // a stream's window once its consumer reads (open_window)
  // SETTINGS_INITIAL_WINDOW_SIZE we announce (never more than stream_window)
  uint32_t initial_window = 64u << 10;
  uint32_t connection_window = 64u << 20;  // our connection-level receive window
  // SETTINGS_MAX_HEADER_LIST_SIZE we announce and enforce (RFC 9113 6.5.2
  // size: names + values + 32 per field), h2's default as httpx uses it.
  uint32_t max_header_list = 64u << 10;
};

// What the owner has to send a request: views of the owner's own strings,
// which need to live only through submit() (nghttp2 copies the header block).
struct Http2Request {
  std::string_view method;
  std::string_view scheme;     // "https" or "http"
  std::string_view authority;  // used when the headers carry no Host
  std::string_view path;       // origin-form target ("/a?b"); "*" for OPTIONS *
  // As the user gave them (any case); Host becomes :authority. Null: none.
  const HeaderList* headers = nullptr;
  enum class Body { kNone, kFixed, kStreamed } body = Body::kNone;
  const uint8_t* fixed = nullptr;  // kFixed: owned by the caller until the stream ends
  size_t fixed_len = 0;
};

enum class Http2EventKind {
  kHeaders,     // the final response head of a stream (status, headers)
  kInterim,     // an informational (1xx) head came, and was dropped: the stream moved
  kData,        // response body bytes (consume() them once read)
  kDataEnd,     // a DATA frame's bytes all came (in the kData events before it), not the last
  kEnd,         // the response is complete
  kReset,       // the stream failed: `error`, `h2_error`, `retryable`
  kBodyWanted,  // a streamed request body has room: push_body() / end_body()
  kSettings,    // the peer's SETTINGS changed (max_concurrent_streams() may differ)
  kGoaway,      // the peer sent GOAWAY: no new streams (stream_id = last_stream_id)
};

struct Http2Event {
  Http2Event(Http2EventKind k, int32_t id) : kind(k), stream_id(id) {}

  Http2EventKind kind;
  int32_t stream_id = 0;
  int status = 0;
  HeaderBlock headers;     // kHeaders: lower-case names, as received
  std::string data;        // kData: the bytes, unless the owner's sink took them
  size_t delivered = 0;    // kData: bytes already copied into the owner's sink (data empty)
  uint32_t h2_error = 0;   // HTTP/2 error code (kReset, kGoaway)
  bool retryable = false;  // kReset: the server did not process the request
  Error error;             // kReset: what the caller raises
};

// Where a stream's DATA may be copied as it arrives (the consumer's buffer)
// instead of into its kData event's own string: the body is copied once, as
// HTTP/1.1's is. Called while nghttp2 parses, so it only copies: everything
// else (windows, progress) waits for the kData event, which carries the length.
class Http2DataSink {
 public:
  virtual ~Http2DataSink() = default;
  // Copy all `len` bytes of stream_id's DATA where its consumer reads them,
  // if they fit there now: true when taken.
  virtual bool take_data(int32_t stream_id, const char* data, size_t len) = 0;
};

// The name of an HTTP/2 error code ("PROTOCOL_ERROR", "0xff" when unknown).
std::string http2_error_name(uint32_t code);

// A request's HTTP/2 header block: its fields as views, names into
// `lowered` (the user's names lower-cased), values into the request. Built
// again for each request into the same object, which keeps its memory.
struct Http2HeaderBlock {
  // Where a field's value comes from: the request's method, scheme,
  // authority, path, then each header's name and value in turn (a header's
  // value is kHeaderValues + 2 * its index).
  enum Input : size_t { kMethod, kScheme, kAuthority, kPath, kHeaderValues = 5 };
  std::vector<std::pair<std::string_view, std::string_view>> fields;
  std::vector<size_t> inputs;  // per field, its value's input
  std::string lowered;
  size_t size() const { return fields.size(); }
  std::string_view name(size_t i) const { return fields[i].first; }
  std::string_view value(size_t i) const { return fields[i].second; }
};

// Turn user request headers into an HTTP/2 header block: pseudo-headers
// first, names lower-cased, connection-specific headers (Connection,
// Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade) and Host dropped
// (Host becomes :authority), every name and value checked as nghttp2 requires
// (RFC 9113 8.2.1). A TE other than "trailers", or a user header name
// starting with ':' (a pseudo-header), is a LocalProtocolError. `out` views
// `req`'s strings: valid while they are.
bool build_http2_headers(const Http2Request& req, Http2HeaderBlock& out, Error& err);

class Http2Session {
 public:
  explicit Http2Session(Http2Config config = {});
  ~Http2Session();
  Http2Session(const Http2Session&) = delete;
  Http2Session& operator=(const Http2Session&) = delete;

  // Create the nghttp2 session and queue the connection preface + SETTINGS
  // (+ the connection WINDOW_UPDATE). False with `err` set on failure.
  bool init(Error& err);

  // Bytes read from the connection. False on a connection-level failure
  // (then every open stream has a kReset event and the session is dead).
  bool feed(const uint8_t* data, size_t len, Error& err);
  // Append every frame ready to go to `out`. False on a session failure.
  bool flush(std::string& out, Error& err);
  bool want_write() const;
  // The session is over: both sides are done (GOAWAY exchanged or a fatal
  // error) and the connection can be closed once flushed.
  bool finished() const;

  // Start a request: its stream id (> 0), or -1 with `err` set. The request
  // may be queued by nghttp2 until the peer's MAX_CONCURRENT_STREAMS allows.
  int32_t submit(const Http2Request& req, Error& err);
  // Streamed request body: append a chunk (copied); end it.
  bool push_body(int32_t stream_id, const uint8_t* data, size_t len, Error& err);
  bool end_body(int32_t stream_id, Error& err);
  // The owner read `n` bytes of a stream's DATA: open the windows again.
  void consume(int32_t stream_id, size_t n);
  // How many more DATA bytes of the stream the server may send now, by both
  // windows, counting only the WINDOW_UPDATEs already handed to flush() (0
  // while frames wait to go out, or for a stream not open).
  size_t receivable(int32_t stream_id) const;
  // The stream's consumer reads: its window goes from the initial one to
  // stream_window (a WINDOW_UPDATE for the difference is queued).
  void open_window(int32_t stream_id);
  // Cancel one stream: RST_STREAM(CANCEL); the connection and the other
  // streams go on.
  void cancel(int32_t stream_id);
  // The owner is done with a stream (after kEnd / kReset / cancel): forget it
  // (resetting it if it is still open).
  void release(int32_t stream_id);
  // The connection broke (EOF or a read error): every open stream fails with
  // `kind` / `message`; streams the server never processed are retryable.
  void connection_lost(ErrorKind kind, const std::string& message);

  // DATA goes to `sink` when it takes it (see Http2DataSink), else into events.
  void set_data_sink(Http2DataSink* sink) { data_sink_ = sink; }

  std::vector<Http2Event> take_events();
  // The same into `out` (cleared first), which lends its memory to the
  // events that come next: no allocation per batch.
  void take_events(std::vector<Http2Event>& out);
  // The streams whose HEADERS or DATA went into the output since the last
  // call (their request moved forward).
  // (into `out`, cleared first; its memory goes back to the session)
  void take_progressed(std::vector<int32_t>& out);

  // May a new stream start now? False after GOAWAY (either way), when the
  // stream ids are used up, or when MAX_CONCURRENT_STREAMS streams are open.
  bool can_start_stream() const;
  // The peer's, from its last SETTINGS (kept as each SETTINGS arrives: the
  // pool asks several times per request). Before its first SETTINGS, the streams
  // the pool may hand this connection: nghttp2 sends only one of them until then
  // (init), holding the others' HEADERS.
  uint32_t max_concurrent_streams() const;
  static constexpr uint32_t kStreamsBeforeSettings = 100;
  size_t open_streams() const { return live_.size(); }
  bool goaway_received() const { return goaway_received_; }
  // The whole request of a stream (HEADERS and any body) has been handed to
  // flush(): what is left is the response.
  bool request_sent(int32_t stream_id) const;
  int32_t goaway_last_stream_id() const { return goaway_last_stream_id_; }
  // " after GOAWAY (<error>, last_stream_id <n>)" once the server's GOAWAY named an
  // error, else empty: what a lost connection's message adds (httpx reports the GOAWAY).
  std::string goaway_note() const;
  // "HTTP/2 connection error: <code>", with what the code means here when it says
  // more than the name: a server that answered the preface in HTTP/1.x (prior
  // knowledge to a server without HTTP/2), a window the server overran.
  std::string connection_error(uint32_t code, std::string_view why) const;
  // " (the server answered in HTTP/1.x, not HTTP/2: "<its first line>")" when the
  // first bytes it sent were a status line, else empty.
  std::string http1_note() const;
  // The server did not process the stream: its HEADERS never went out, or a
  // GOAWAY named a lower last stream id.
  bool unprocessed(int32_t stream_id) const;

 private:
  struct Stream;
  struct Callbacks;  // the nghttp2 callbacks, friends of the session
  struct SentHead;   // a request's header block as nghttp2 reads it

  // The header block for `req`: the last one when its inputs are equal, else
  // built (and checked) again. Null with err set when the request is invalid.
  std::shared_ptr<const SentHead> head_for(const Http2Request& req, Error& err);

  Stream* find(int32_t stream_id);
  void on_stream_frame(int32_t stream_id, bool headers, bool end_stream, bool empty);
  void on_settings();
  uint32_t remote_max_concurrent() const;  // nghttp2's record of the peer's SETTINGS
  void on_goaway(int32_t last_stream_id, uint32_t code);
  void on_closed(Stream& s, uint32_t code);
  ssize_t read_streamed(Stream& s, uint8_t* buf, size_t length, uint32_t* flags);
  bool resume_body(Stream& s, Error& err);
  void emit(Http2Event ev) { events_.push_back(std::move(ev)); }
  void fail_stream(Stream& s, ErrorKind kind, std::string message, uint32_t code, bool retryable);
  void fail_all(ErrorKind kind, const std::string& message, bool mark_dead);

  struct SessionDeleter {
    void operator()(nghttp2_session* s) const;
  };

  Http2Config config_;
  std::unique_ptr<nghttp2_session, SessionDeleter> session_;
  std::set<int32_t> live_;  // streams nghttp2 has not closed yet
  std::map<int32_t, std::unique_ptr<Stream>> streams_;
  std::vector<Http2Event> events_;
  uint64_t batch_ = 0;  // take_events() calls so far: which batch events_ holds
  Http2DataSink* data_sink_ = nullptr;
  std::vector<int32_t> progressed_;
  Http2HeaderBlock block_;  // submit()'s scratch, kept for its memory
  // The last request's header block, sent again while requests are equal to
  // it. Rebuilt in place when no stream's HEADERS still waits to read it.
  std::shared_ptr<SentHead> last_head_;
  // Blocks of streams released before their HEADERS went: nghttp2 may still
  // hold the frame (cancelled and never written, or written by a later flush
  // of a dead session, which sends no RST_STREAM), so they are kept until its
  // outbound queue is empty.
  std::vector<std::shared_ptr<const SentHead>> orphan_heads_;
  std::string* flushing_ = nullptr;             // flush()'s output while it runs (for send_data)
  uint32_t last_max_concurrent_ = 0xffffffffu;  // the peer's MAX_CONCURRENT_STREAMS
  bool goaway_received_ = false;
  int32_t goaway_last_stream_id_ = 0x7fffffff;
  uint32_t goaway_error_ = 0;
  bool dead_ = false;
  // The first bytes the server sent (up to kOpeningKept): an HTTP/1.x status line
  // there means the server never spoke HTTP/2 (connection_error).
  static constexpr size_t kOpeningKept = 64;
  std::string opening_;
};

}  // namespace httprs
