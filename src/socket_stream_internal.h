// What the SocketStream files share (socket_stream.cc, socket_connect.cc,
// socket_race.cc): the pending getaddrinfo and a race's connect attempt, which
// the stream's handle accessors and its close reach too.
#pragma once

#include <uv.h>

#include "socket_stream.h"

namespace httprs {

struct SocketStream::Resolve {
  uv_getaddrinfo_t req;
  SocketStream* sock;
};

// One connect attempt of a race, on its own handle. It frees itself in its
// close callback; `sock` is null once the stream no longer waits for it.
struct SocketStream::Attempt {
  uv_tcp_t tcp;  // first: the handle's address is the attempt's (closed())
  uv_connect_t req;
  SocketStream* sock;
  bool reading = false;  // its read started with the connect
  static void closed(uv_handle_t* h) { delete reinterpret_cast<Attempt*>(h); }
};

}  // namespace httprs
