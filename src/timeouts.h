// Timeouts: the consumer's seconds (a double) as the whole milliseconds the
// engine's timers and deadlines count (libuv's clock, uint64_t).
#pragma once

#include <cstdint>

namespace httprs {

// From this many seconds up (~31 years) a timeout is none: the same bound as
// the Cython layer's (_spec.pxi, _TIMEOUT_NONE_FROM), which maps larger ones
// to -1 before they get here. Far below 2^64 ms, so a deadline counted from
// libuv's clock cannot wrap.
inline constexpr double kNoTimeoutFromSeconds = 1e9;

// `seconds` in whole milliseconds (rounded down), at least `min_ms`: true,
// with `*ms` set, for a timeout; false for none: negative (the consumer's
// "none"), NaN, infinite, or kNoTimeoutFromSeconds and more. Converting
// those to an integer as they are would be undefined behaviour.
inline bool timeout_ms(double seconds, uint64_t* ms, uint64_t min_ms = 0) {
  if (!(seconds >= 0 && seconds < kNoTimeoutFromSeconds)) return false;  // NaN too
  auto whole = static_cast<uint64_t>(seconds * 1000.0);
  *ms = whole < min_ms ? min_ms : whole;
  return true;
}

}  // namespace httprs
