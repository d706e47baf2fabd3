// A scripted HTTP/2 *server* for the C++ unit tests of the client side
// (test_http2_session.cc, test_http2_exchanges.cc): an nghttp2 server session
// in the same program that records what it receives (headers, body, end,
// close, RST_STREAM) and answers when told. No sockets: the tests move the
// bytes (input() / output()).
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "check.h"
#include "http2_session.h"

namespace h2test {

using httprs::HeaderList;

struct Server {
  struct Req {
    HeaderList headers;
    std::string body;
    bool complete = false;
    bool closed = false;
    uint32_t close_code = 0;
  };
  struct Resp {
    std::string body;
    size_t off = 0;
  };

  nghttp2_session* session = nullptr;
  std::map<int32_t, Req> requests;
  std::map<int32_t, Resp> responses;
  std::map<int32_t, uint32_t> resets;  // RST_STREAM received, by stream

  explicit Server(std::vector<nghttp2_settings_entry> settings = {}) {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    // Let it send header blocks past the client's limit (the limit tests).
    nghttp2_option_set_max_send_header_block_length(opt, 1 << 20);
    nghttp2_session_server_new2(&session, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  }
  ~Server() { nghttp2_session_del(session); }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Bytes from the client: all of them must be taken.
  void input(const std::string& bytes) {
    ssize_t rv = nghttp2_session_mem_recv(session, (const uint8_t*)bytes.data(), bytes.size());
    CHECK(rv == (ssize_t)bytes.size());
  }
  // Everything the server has to send now.
  std::string output() {
    std::string back;
    for (;;) {
      const uint8_t* p = nullptr;
      ssize_t n = nghttp2_session_mem_send(session, &p);
      if (n <= 0) break;
      back.append((const char*)p, n);
    }
    return back;
  }

  void respond(int32_t id, int status, const std::string& body, HeaderList extra = {}) {
    responses[id].body = body;
    std::string st = std::to_string(status);
    HeaderList hl = {{":status", st}};
    for (auto& h : extra) hl.push_back(h);
    std::vector<nghttp2_nv> nva;
    for (auto& [n, v] : hl) {
      nva.push_back(
          {(uint8_t*)n.data(), (uint8_t*)v.data(), n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    nghttp2_data_provider prd;
    prd.read_callback = read_body;
    nghttp2_submit_response(session, id, nva.data(), nva.size(), body.empty() ? nullptr : &prd);
  }

  std::string header(int32_t id, const std::string& name) {
    for (auto& [n, v] : requests[id].headers) {
      if (n == name) return v;
    }
    return "<none>";
  }

 private:
  static Server& self(void* ud) { return *static_cast<Server*>(ud); }
  static int on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
                       const uint8_t* v, size_t vl, uint8_t, void* ud) {
    self(ud).requests[f->hd.stream_id].headers.emplace_back(
        std::string(reinterpret_cast<const char*>(n), nl),
        std::string(reinterpret_cast<const char*>(v), vl));
    return 0;
  }
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* ud) {
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
      self(ud).requests[f->hd.stream_id].complete = true;
    if (f->hd.type == NGHTTP2_RST_STREAM)
      self(ud).resets[f->hd.stream_id] = f->rst_stream.error_code;
    return 0;
  }
  static int on_data(nghttp2_session*, uint8_t, int32_t id, const uint8_t* d, size_t n, void* ud) {
    self(ud).requests[id].body.append(reinterpret_cast<const char*>(d), n);
    return 0;
  }
  static int on_close(nghttp2_session*, int32_t id, uint32_t code, void* ud) {
    auto& r = self(ud).requests[id];
    r.closed = true;
    r.close_code = code;
    return 0;
  }
  static ssize_t read_body(nghttp2_session*, int32_t id, uint8_t* buf, size_t len, uint32_t* flags,
                           nghttp2_data_source*, void* ud) {
    Resp& r = self(ud).responses[id];
    size_t n = std::min(len, r.body.size() - r.off);
    std::memcpy(buf, r.body.data() + r.off, n);
    r.off += n;
    if (r.off == r.body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
};

}  // namespace h2test
