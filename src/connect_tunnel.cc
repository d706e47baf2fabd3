#include "connect_tunnel.h"

#include <strings.h>

#include <algorithm>
#include <cstring>

namespace httprs {

ConnectTunnel::ConnectTunnel(std::string authority, HeaderList headers)
    : authority_(std::move(authority)), headers_(std::move(headers)) {}

StreamLayer::Status ConnectTunnel::connect(Error& err) {
  switch (state_) {
    case State::kStart: {
      // httpcore's CONNECT head: Host and Accept: */*, the proxy's headers
      // after them (an Accept among those replaces the default one).
      HeaderList headers;
      headers.emplace_back("Host", authority_);
      if (std::none_of(headers_.begin(), headers_.end(),
                       [](const auto& h) { return strcasecmp(h.first.c_str(), "accept") == 0; }))
        headers.emplace_back("Accept", "*/*");
      for (const auto& h : headers_) headers.push_back(h);
      std::string head;
      if (!serialize_request_head(head, "CONNECT", authority_, headers, err)) {
        state_ = State::kFailed;
        return Status::kError;
      }
      out_ += head;
      parser_.reset(this, false, true);
      state_ = State::kAwaitingHead;
      return read_response(err);
    }
    case State::kAwaitingHead:
      return read_response(err);
    case State::kOpen:
      return Status::kOk;
    case State::kFailed:
      break;
  }
  return Status::kError;
}

StreamLayer::Status ConnectTunnel::read_response(Error& err) {
  if (in_.empty()) return Status::kWantRead;
  size_t used = 0;
  ResponseParser::Status st = parser_.feed(in_.data(), in_.size(), &used, err);
  if (status_ != 0 && (status_ < 200 || status_ >= 300)) {
    state_ = State::kFailed;
    err.set(ErrorKind::kProxyError, std::to_string(status_) + " " + reason_);
    return Status::kError;
  }
  switch (st) {
    case ResponseParser::Status::kOk:
      in_.clear();
      return Status::kWantRead;
    case ResponseParser::Status::kError:
      // A malformed answer is the parser's RemoteProtocolError, as httpx
      // (h11) reports it; only a well-formed non-2xx is a ProxyError.
      state_ = State::kFailed;
      return Status::kError;
    case ResponseParser::Status::kUpgrade:
    case ResponseParser::Status::kComplete:
      break;
  }
  // A 2xx to CONNECT ends at its head: the bytes after it are the tunnel's.
  in_.erase(0, used);
  state_ = State::kOpen;
  return Status::kOk;
}

void ConnectTunnel::on_head(ResponseHead&& head) {
  status_ = head.status;
  reason_ = std::move(head.reason);
}

Error ConnectTunnel::eof_while_connecting() const {
  // The proxy closed before its answer's head was whole: httpx (h11) reports
  // a RemoteProtocolError, whatever part of the head had arrived.
  Error err;
  err.set(ErrorKind::kRemoteProtocolError, "Server disconnected without sending a response.");
  return err;
}

}  // namespace httprs
