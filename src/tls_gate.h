// The gate for OpenSSL work done outside any engine, closed across fork().
#pragma once

namespace httprs {

// Building a TLS context (TlsContext::create, default_context: SSL_CTX_new, loading
// trust, the default-context cache) runs without the GIL and outside any engine, so
// the engines' locks taken for fork() do not stop it. OpenSSL 3 takes process-wide
// locks there (its provider store, the random generator), and a fork() while another
// thread held one left the child's copy held: the child's first context or handshake
// then waited for ever. Such work holds a TlsGate::Pass; fork() closes the gate (after
// the engines' locks, ForkGuard in engine.cc): it waits for the passes held to end and
// keeps new ones waiting until the fork is done. No pass may take an engine's lock.
class TlsGate {
 public:
  class Pass {
   public:
    Pass();
    ~Pass();
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;
  };

  static void close();           // fork(), before: waits for the passes held to end
  static void open();            // fork(), after, in the parent
  static void reset_in_child();  // fork(), after, in the child: open, nothing held
  // Tests: the next pass waits `ms` once inside; how many passes are inside now.
  static void pause_next(int ms);
  static int inside();
};

}  // namespace httprs
