#include "socks5.h"

#include <arpa/inet.h>

#include <cstring>

namespace httprs {

namespace {

// Reply texts and method names worded as httpcore reports them.
std::string socks_reply_text(unsigned char code) {
  switch (code) {
    case 1:
      return "General SOCKS server failure";
    case 2:
      return "Connection not allowed by ruleset";
    case 3:
      return "Network unreachable";
    case 4:
      return "Host unreachable";
    case 5:
      return "Connection refused";
    case 6:
      return "TTL expired";
    case 7:
      return "Command not supported";
    case 8:
      return "Address type not supported";
    default:
      return "Unknown reply " + std::to_string(code);
  }
}

std::string socks_method_name(unsigned char method) {
  switch (method) {
    case 0:
      return "NO AUTHENTICATION REQUIRED";
    case 1:
      return "GSSAPI";
    case 2:
      return "USERNAME/PASSWORD";
    case 0xff:
      return "NO ACCEPTABLE METHODS";
    default:
      return "METHOD " + std::to_string(method);
  }
}

unsigned char byte_at(const std::string& s, size_t i) { return static_cast<unsigned char>(s[i]); }

}  // namespace

Socks5Stream::Socks5Stream(std::string host, int port, std::string username, std::string password)
    : host_(std::move(host)),
      port_(port),
      username_(std::move(username)),
      password_(std::move(password)) {}

StreamLayer::Status Socks5Stream::connect(Error& err) {
  if (state_ == State::kStart) {
    // Offer exactly one method: username/password when we have credentials.
    out_ += {'\x05', '\x01', username_.empty() ? '\x00' : '\x02'};
    state_ = State::kMethod;
  }
  for (;;) {
    State before = state_;
    Status st = step(err);
    if (st != Status::kWantRead || state_ == before) return st;
  }
}

StreamLayer::Status Socks5Stream::step(Error& err) {
  switch (state_) {
    case State::kMethod:
      return on_method(err);
    case State::kAuth:
      return on_auth(err);
    case State::kReply:
      return on_reply(err);
    case State::kOpen:
      return Status::kOk;
    case State::kStart:
    case State::kFailed:
      break;
  }
  return Status::kError;
}

StreamLayer::Status Socks5Stream::fail(Error& err, const std::string& message) {
  state_ = State::kFailed;
  err.set(ErrorKind::kProxyError, message);
  return Status::kError;
}

StreamLayer::Status Socks5Stream::on_method(Error& err) {
  if (in_.size() < 2) return Status::kWantRead;
  unsigned char version = byte_at(in_, 0), method = byte_at(in_, 1);
  in_.erase(0, 2);
  bool auth = !username_.empty();
  if (version != 5) return fail(err, "the SOCKS proxy did not answer with SOCKS version 5");
  unsigned char wanted = auth ? 2 : 0;
  if (method != wanted)
    return fail(err, "Requested " + socks_method_name(wanted) + " from proxy server, but got " +
                         socks_method_name(method) + ".");
  if (!auth) {
    if (!send_connect(err)) return Status::kError;
    state_ = State::kReply;
    return Status::kWantRead;
  }
  if (username_.size() > 255 || password_.size() > 255)
    return fail(err, "SOCKS username and password must be at most 255 bytes");
  out_ += '\x01';
  out_ += static_cast<char>(username_.size());
  out_ += username_;
  out_ += static_cast<char>(password_.size());
  out_ += password_;
  state_ = State::kAuth;
  return Status::kWantRead;
}

StreamLayer::Status Socks5Stream::on_auth(Error& err) {
  if (in_.size() < 2) return Status::kWantRead;
  unsigned char version = byte_at(in_, 0), status = byte_at(in_, 1);
  in_.erase(0, 2);
  // RFC 1929: VER 1 and status 0. Anything else is no success (httpx's words for any).
  if (version != 1 || status != 0) return fail(err, "Invalid username/password");
  if (!send_connect(err)) return Status::kError;
  state_ = State::kReply;
  return Status::kWantRead;
}

StreamLayer::Status Socks5Stream::on_reply(Error& err) {
  // VER REP RSV ATYP BND.ADDR BND.PORT
  if (in_.size() < 5) return Status::kWantRead;
  // A reply of another version is no SOCKS 5 tunnel: the request must not follow it.
  if (byte_at(in_, 0) != 5) return fail(err, "Malformed reply from the SOCKS proxy (connect)");
  unsigned char rep = byte_at(in_, 1);
  if (rep != 0) return fail(err, "Proxy Server could not connect: " + socks_reply_text(rep) + ".");
  unsigned char atyp = byte_at(in_, 3);
  size_t addr_len = atyp == 1 ? 4 : atyp == 4 ? 16 : atyp == 3 ? 1 + byte_at(in_, 4) : 0;
  if (addr_len == 0) return fail(err, "the SOCKS proxy sent an invalid address type");
  size_t need = 4 + addr_len + 2;
  if (in_.size() < need) return Status::kWantRead;
  if (in_.size() > need) return fail(err, "the SOCKS proxy sent bytes after its reply");
  in_.clear();
  state_ = State::kOpen;
  return Status::kOk;
}

bool Socks5Stream::send_connect(Error& err) {
  std::string req = {'\x05', '\x01', '\x00'};
  struct in_addr a4;
  struct in6_addr a6;
  std::string host = host_;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    req += '\x01';
    req.append(reinterpret_cast<const char*>(&a4), 4);
  } else if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    req += '\x04';
    req.append(reinterpret_cast<const char*>(&a6), 16);
  } else {
    if (host.size() > 255) {
      fail(err, "host name too long for SOCKS5");
      return false;
    }
    req += '\x03';
    req += static_cast<char>(host.size());
    req += host;
  }
  req += static_cast<char>((port_ >> 8) & 0xff);
  req += static_cast<char>(port_ & 0xff);
  out_ += req;
  return true;
}

Error Socks5Stream::eof_while_connecting() const {
  Error err;
  err.set(ErrorKind::kProxyError, "Server disconnected without sending a response.");
  return err;
}

}  // namespace httprs
