#include "stream_chain.h"

#include "scratch.h"

namespace httprs {

namespace {

// Borrowed bytes up to this much are copied into a layer's one send (send_below).
constexpr size_t kJoinBelow = 16 * 1024;

// Plaintext out of each layer, one buffer per level: a layer's bytes are
// still being delivered upwards while the layer above reads its own.
constexpr size_t kScratch = 64 * 1024;
struct LevelScratch {};
char* scratch(size_t level) {
  return thread_scratch<LevelScratch, kScratch, StreamChain::kMaxLayers>(level);
}

// This thread's deliveries in progress whose layer may be reading its input
// in place (innermost first): a nested read has them keep what they have not
// read before a buffer they may be reading is written again. A pointer, not
// a buffer (scratch.h says why that matters for a thread_local).
struct Lending {
  StreamLayer* layer;
  Lending* outer;
};
thread_local Lending* t_lending = nullptr;

}  // namespace

void StreamChain::keep_lent() noexcept {
  for (Lending* l = t_lending; l != nullptr; l = l->outer) l->layer->keep_fed();
}

void StreamChain::receive(const char* data, size_t len) {
  // Nested in another delivery (a host callback read a socket): the outer
  // layers' unread bytes may sit in a chain scratch this one writes.
  if (t_lending != nullptr) keep_lent();
  deliver(0, data, len);
}

bool StreamChain::push(std::unique_ptr<StreamLayer> layer) {
  if (layers_.size() >= kMaxLayers) return false;
  layers_.push_back(std::move(layer));
  return true;
}

StreamLayer::Status StreamChain::connect_top(Error& err) {
  size_t level = layers_.size() - 1;
  StreamLayer::Status st = layers_[level]->connect(err);
  if (st == StreamLayer::Status::kOk && layers_[level]->pending_output() > 0) {
    held_ = true;  // sent with the next bytes through the chain, or by flush_held()
  } else {
    Error send_err;
    if (!flush(level, send_err)) {
      host_->chain_send_error(send_err);
      return st;
    }
  }
  if (st == StreamLayer::Status::kOk && open_ == level) open_ = level + 1;
  return st;
}

void StreamChain::flush_held() {
  if (!held_) return;
  held_ = false;
  for (size_t level = layers_.size(); level-- > 0;) {
    if (layers_[level]->pending_output() == 0) continue;
    Error err;
    if (!flush(level, err)) {
      host_->chain_send_error(err);
      return;
    }
  }
}

bool StreamChain::transparent(size_t level) const { return layers_[level]->transparent(); }

bool StreamChain::topmost(size_t level) const {
  for (size_t i = level + 1; i < layers_.size(); i++)
    if (!transparent(i)) return false;
  return true;
}

bool StreamChain::passthrough() const {
  if (connecting()) return false;
  for (size_t i = 0; i < layers_.size(); i++)
    if (!transparent(i)) return false;
  return true;
}

size_t StreamChain::held_bound() const {
  if (connecting()) return SIZE_MAX;
  size_t sum = 0;
  for (size_t i = 0; i < layers_.size(); i++) {
    if (transparent(i)) continue;
    size_t held = layers_[i]->held_bound();
    if (held > SIZE_MAX - sum) return SIZE_MAX;
    sum += held;
  }
  return sum;
}

void StreamChain::deliver(size_t level, const char* data, size_t len) {
  if (level == layers_.size()) {
    host_->chain_data(data, len);
    return;
  }
  if (transparent(level)) {
    deliver(level + 1, data, len);
    return;
  }
  StreamLayer& layer = *layers_[level];
  layer.lend(data, len);  // read in place until keep_fed()
  // keep_fed() on every way out, a host callback's bad_alloc included: the
  // lent bytes belong to the caller's buffer, which may be reused after.
  // Listed meanwhile, for a nested read (keep_lent()).
  // The list head's address is taken once: each access to a thread_local of a
  // shared library is a call (__tls_get_addr), repeated after every call made
  // in between.
  struct KeepFed {
    Lending** head;
    Lending link;
    KeepFed(StreamLayer& l, Lending** h) : head(h), link{&l, *h} { *head = &link; }
    ~KeepFed() {
      *head = link.outer;
      link.layer->keep_fed();
    }
    KeepFed(const KeepFed&) = delete;
    KeepFed& operator=(const KeepFed&) = delete;
  } keep{layer, &t_lending};
  if (level == open_) {  // the top layer, still connecting
    host_->chain_connect_input();
    if (host_->chain_stopped() || level >= open_) return;
  }
  drain(level);
}

void StreamChain::drain(size_t level) {
  StreamLayer& layer = *layers_[level];
  bool top = topmost(level);
  char* own = nullptr;  // this level's scratch, looked up once per drain
  for (;;) {
    size_t n = 0;
    size_t cap = kScratch;
    char* buf = top ? host_->chain_read_buffer(&cap) : nullptr;
    if (buf == nullptr) {
      if (own == nullptr) own = scratch(level);
      buf = own;
      cap = kScratch;
      if (buf == nullptr) {  // no memory for it: fail as a failed read would
        ErrorKind kind = connecting() ? layers_.back()->socket_error_kind(ErrorKind::kReadError)
                                      : ErrorKind::kReadError;
        host_->chain_read_error(scratch_error(kind, kScratch));
        return;
      }
    }
    Error err;
    StreamLayer::Status st = layer.recv(buf, cap, &n, err);
    if (st == StreamLayer::Status::kOk) {
      deliver(level + 1, buf, n);
      if (host_->chain_stopped()) return;
      continue;
    }
    Error send_err;  // reading may have produced protocol output (key updates)
    if (!flush(level, send_err)) {
      host_->chain_send_error(send_err);
      return;
    }
    if (st == StreamLayer::Status::kWantRead) return;
    if (st == StreamLayer::Status::kClosed)
      host_->chain_eof();
    else
      host_->chain_read_error(err);
    return;
  }
}

bool StreamChain::flush(size_t level, Error& err) {
  std::string out;
  if (layers_[level]->append_output(out) == 0) return true;
  return send_below(level, std::move(out), {}, {}, err);
}

bool StreamChain::send(std::string&& bytes, Borrowed ext, Borrowed tail, Error& err) {
  return send_below(layers_.size(), std::move(bytes), ext, tail, err);
}

bool StreamChain::send_below(size_t level, std::string&& bytes, Borrowed ext, Borrowed tail,
                             Error& err) {
  for (size_t i = level; i-- > 0;) {
    if (transparent(i)) continue;
    StreamLayer& layer = *layers_[i];
    if (ext.len + tail.len > 0 && ext.len + tail.len <= kJoinBelow) {
      // A layer makes a record of each send: a small chunk and its CRLF go
      // in one, copied (a TLS record holds 16 KiB; the copy is cheap beside
      // the encryption), a large one as its own records.
      if (ext.len > 0) bytes.append(ext.data, ext.len);
      if (tail.len > 0) bytes.append(tail.data, tail.len);
      ext = {};
      tail = {};
    }
    if ((!bytes.empty() && !layer.send(bytes.data(), bytes.size(), err)) ||
        (ext.len > 0 && !layer.send(ext.data, ext.len, err)) ||
        (tail.len > 0 && !layer.send(tail.data, tail.len, err)))
      return false;
    bytes.clear();
    ext = {};
    tail = {};
    layer.append_output(bytes);
  }
  if (!bytes.empty() || ext.len > 0 || tail.len > 0)
    host_->chain_write(std::move(bytes), ext, tail);
  return true;
}

std::string StreamChain::close_top() {
  std::string out;
  if (layers_.empty()) return out;
  size_t level = layers_.size() - 1;
  layers_[level]->close();
  layers_[level]->append_output(out);
  Error ignored;
  for (size_t i = level; !out.empty() && i-- > 0;) {
    if (transparent(i)) continue;
    if (!layers_[i]->send(out.data(), out.size(), ignored)) return std::string();
    out.clear();
    layers_[i]->append_output(out);
  }
  return out;
}

}  // namespace httprs
