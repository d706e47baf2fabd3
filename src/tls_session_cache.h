// A context's resumable TLS sessions (TlsContext::SessionCache): tls_context.cc
// makes it, OpenSslSession (tls_openssl.cc) keeps and takes sessions.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <list>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

#include "tls.h"
#include "tls_internal.h"

namespace httprs {

// Resumable client sessions by key, each with the window in which it may be
// offered (SessionWindow). Each key keeps its few most recent tickets; each
// is handed out once (RFC 8446 C.4: a client should not reuse a ticket).
// Bounded: the least recently used key goes beyond kMaxKeys, and sessions
// out of their window are freed when met (a sweep of every key runs at most
// once a minute, on put). On adopted contexts each key also records the
// fingerprint its sessions were verified under: a session kept under another
// fingerprint replaces them all, and a take under another one frees them.
// After fork() the first use in the child frees every inherited session, so
// parent and child never present the same tickets. Callers hold their
// engine's lock, which fork() takes, so the mutex is free at a fork.
struct TlsContext::SessionCache {
  static constexpr size_t kPerKey = 4;
  static constexpr size_t kMaxKeys = 256;
  static constexpr int64_t kSweepEvery = 60;

  struct Kept {
    SSL_SESSION* session;
    SessionWindow window;
  };
  struct Slot {
    std::string fingerprint;
    std::deque<Kept> sessions;  // oldest first
    std::list<std::string>::iterator lru;
  };

  std::mutex mu;
  std::unordered_map<std::string, Slot> map;
  std::list<std::string> lru;  // keys, most recently used first
  uint64_t generation = tls_detail::fork_generation();
  int64_t last_sweep = 0;

  ~SessionCache() { clear(); }

  // Takes ownership of one reference to `s`. Throws nothing (it runs in
  // OpenSSL's new-session callback): when memory runs out the session is
  // freed instead of kept, and the cache stays consistent.
  void put(const std::string& key, const std::string& fingerprint, SSL_SESSION* s,
           SessionWindow window) {
    std::lock_guard<std::mutex> guard(mu);
    try {
      keep(key, fingerprint, s, window);
    } catch (const std::bad_alloc&) {
      SSL_SESSION_free(s);
    }
  }
  // put()'s work. On std::bad_alloc `s` is not kept (the caller frees it).
  void keep(const std::string& key, const std::string& fingerprint, SSL_SESSION* s,
            SessionWindow window) {
    enter_generation();
    int64_t now = tls_detail::now_seconds();
    if (now - last_sweep >= kSweepEvery) sweep(now);
    if (!window.contains(now)) {
      SSL_SESSION_free(s);
      return;
    }
    auto it = map.find(key);
    if (it == map.end()) {
      if (map.size() >= kMaxKeys) erase(map.find(lru.back()));
      it = map.emplace(key, Slot()).first;
      try {
        lru.push_front(key);
      } catch (...) {
        map.erase(it);
        throw;
      }
      it->second.lru = lru.begin();
    } else {
      lru.splice(lru.begin(), lru, it->second.lru);
    }
    Slot& slot = it->second;
    if (slot.fingerprint != fingerprint) {
      free_sessions(slot);
      slot.fingerprint = fingerprint;
    }
    slot.sessions.push_back(Kept{s, window});
    if (slot.sessions.size() > kPerKey) {
      SSL_SESSION_free(slot.sessions.front().session);
      slot.sessions.pop_front();
    }
  }
  // Forget every session kept for `key`.
  void drop(const std::string& key) {
    std::lock_guard<std::mutex> guard(mu);
    enter_generation();
    auto it = map.find(key);
    if (it != map.end()) erase(it);
  }
  // The newest session for `key` and `fingerprint` that is still resumable
  // and within its window (the caller owns the reference; its window goes to
  // `window`), or nullptr. Sessions of failed connections are skipped.
  SSL_SESSION* take(const std::string& key, const std::string& fingerprint, SessionWindow& window) {
    std::lock_guard<std::mutex> guard(mu);
    enter_generation();
    auto it = map.find(key);
    if (it == map.end()) return nullptr;
    Slot& slot = it->second;
    int64_t now = tls_detail::now_seconds();
    SSL_SESSION* found = nullptr;
    while (found == nullptr && slot.fingerprint == fingerprint && !slot.sessions.empty()) {
      Kept k = slot.sessions.back();
      slot.sessions.pop_back();
      if (SSL_SESSION_is_resumable(k.session) == 1 && k.window.contains(now)) {
        found = k.session;
        window = k.window;
      } else {
        SSL_SESSION_free(k.session);
      }
    }
    if (found == nullptr || slot.sessions.empty()) erase(it);
    return found;
  }

 private:
  static void free_sessions(Slot& slot) {
    for (Kept& k : slot.sessions) SSL_SESSION_free(k.session);
    slot.sessions.clear();
  }
  void erase(std::unordered_map<std::string, Slot>::iterator it) {
    free_sessions(it->second);
    lru.erase(it->second.lru);
    map.erase(it);
  }
  void clear() {
    for (auto& entry : map) free_sessions(entry.second);
    map.clear();
    lru.clear();
  }
  // A fork() child starts empty: the tickets stay the parent's.
  void enter_generation() {
    uint64_t now = tls_detail::fork_generation();
    if (now == generation) return;
    clear();
    generation = now;
  }
  void sweep(int64_t now) {
    last_sweep = now;
    for (auto it = map.begin(); it != map.end();) {
      auto next = std::next(it);
      std::deque<Kept>& q = it->second.sessions;
      for (auto k = q.begin(); k != q.end();) {
        if (k->window.contains(now)) {
          ++k;
        } else {
          SSL_SESSION_free(k->session);
          k = q.erase(k);
        }
      }
      if (q.empty()) erase(it);
      it = next;
    }
  }
};

}  // namespace httprs
