// The tiny check harness shared by the C++ unit test programs: failures are
// counted and reported, the program's exit code says whether any failed.
#pragma once

#include <atomic>
#include <cstdio>
#include <string>

// Atomic: a test's server thread may check too (h2_test_server.h).
inline std::atomic<int> g_failures{0};
inline std::atomic<int> g_checks{0};

#define CHECK(cond)                                                                 \
  do {                                                                              \
    ++g_checks;                                                                     \
    if (!(cond)) {                                                                  \
      ++g_failures;                                                                 \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                               \
  } while (0)

#define CHECK_EQ_STR(a, b)                                                                       \
  do {                                                                                           \
    ++g_checks;                                                                                  \
    std::string a_ = (a), b_ = (b);                                                              \
    if (a_ != b_) {                                                                              \
      ++g_failures;                                                                              \
      std::fprintf(stderr,                                                                       \
                   "%s:%d: %s != %s\n  left (%zu bytes): %.200s\n  right (%zu bytes): %.200s\n", \
                   __FILE__, __LINE__, #a, #b, a_.size(), a_.c_str(), b_.size(), b_.c_str());    \
    }                                                                                            \
  } while (0)

// Print the totals; the exit code for main().
inline int check_report(const char* program) {
  std::printf("%s: %d checks, %d failures\n", program, g_checks.load(), g_failures.load());
  return g_failures == 0 ? 0 : 1;
}
