#!/usr/bin/env bash
# Build the libFuzzer targets in tests/fuzz (clang, -fsanitize=fuzzer,address,undefined)
# into build/fuzz and run each one.
#   tests/fuzz/run.sh SECONDS [TARGET...]   fuzz each target for SECONDS, starting from its
#                                           committed seed corpus (tests/fuzz/corpus/NAME)
#                                           plus what earlier runs found (build/fuzz/corpus)
#   tests/fuzz/run.sh 0 [TARGET...]         run each target once over its seed corpus
# A crash stops the run (exit status non-zero); its input is written to
# build/fuzz/crashes/NAME/ : add it to the seed corpus with the fix.
# FUZZ_JOBS=N runs N targets at a time (default 1). Called by `scripts/dev.sh fuzz`.
# fuzz_url and fuzz_json are Python targets (Atheris, tests/fuzz/NAME.py) run with
# $FUZZ_PYTHON, an interpreter that can import httprs, httpx and atheris.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
SECONDS_EACH="${1:-60}"
[ $# -gt 0 ] && shift
OUT="$ROOT/build/fuzz"
mkdir -p "$OUT/obj"
CXX="${CXX_FUZZ:-clang++}"
CC="${CC_FUZZ:-clang}"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CFLAGS_COMMON="-g -O1 -fno-omit-frame-pointer $SAN"
LLHTTP_SRC="${LLHTTP_SRC:-/usr/share/llhttp}"
LLHTTP_INCLUDE="${LLHTTP_INCLUDE:-/usr/share/include/llhttp}"

# target name -> project sources it links (besides its own file) and pkg-config packages
declare -A SOURCES=(
  [fuzz_response]="http1.cc"
  [fuzz_proxy_reply]="http1.cc"
  [fuzz_request_head]="http1.cc"
  [fuzz_decoder]="decode.cc"
  [fuzz_proxy_layers]="socks5.cc connect_tunnel.cc stream_layer.cc http1.cc"
)
declare -A PACKAGES=(
  [fuzz_response]=""
  [fuzz_proxy_reply]=""
  [fuzz_request_head]=""
  [fuzz_decoder]="zlib libbrotlienc libbrotlidec libzstd"
  [fuzz_proxy_layers]=""
)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(fuzz_response fuzz_proxy_reply fuzz_proxy_layers fuzz_request_head fuzz_decoder
  fuzz_url fuzz_json)
FUZZ_PYTHON="${FUZZ_PYTHON:-python3}"

obj() {  # compile $1 (C or C++) into build/fuzz/obj when it changed
  local src="$1" out="$OUT/obj/$(basename "$1").o" extra="${2:-}"
  if [ ! -f "$out" ] || [ "$src" -nt "$out" ] || [ "$0" -nt "$out" ]; then
    case "$src" in
      *.c) $CC $CFLAGS_COMMON -fsanitize=fuzzer-no-link -w -DLLHTTP_STRICT_MODE=1 \
             -I"$LLHTTP_INCLUDE" -c "$src" -o "$out" ;;
      *) $CXX -std=c++17 $CFLAGS_COMMON -fsanitize=fuzzer-no-link -Wall -Wextra -Wno-string-concatenation \
           -I"$ROOT/src" -I"$LLHTTP_INCLUDE" $extra -c "$src" -o "$out" ;;
    esac
  fi
  echo "$out"
}

build() {
  local t="$1" objs=()
  for c in api http llhttp; do objs+=("$(obj "$LLHTTP_SRC/$c.c")"); done
  for s in ${SOURCES[$t]}; do objs+=("$(obj "$ROOT/src/$s")"); done
  local cflags="" libs=""
  if [ -n "${PACKAGES[$t]}" ]; then
    cflags="$(pkg-config --cflags ${PACKAGES[$t]})"
    libs="$(pkg-config --libs ${PACKAGES[$t]})"
  fi
  objs+=("$(obj "$ROOT/tests/fuzz/$t.cc" "$cflags")")
  local o fresh=1
  for o in "${objs[@]}"; do [ "$o" -nt "$OUT/$t" ] && fresh=0; done
  [ -x "$OUT/$t" ] && [ $fresh = 1 ] && return 0
  $CXX $CFLAGS_COMMON -fsanitize=fuzzer "${objs[@]}" -o "$OUT/$t" $libs
}

run() {
  local t="$1" seeds="$ROOT/tests/fuzz/corpus/$1" work="$OUT/corpus/$1"
  mkdir -p "$work" "$OUT/crashes/$t"
  local exe=("$OUT/$t")
  [ -f "$ROOT/tests/fuzz/$t.py" ] && exe=("$FUZZ_PYTHON" "$ROOT/tests/fuzz/$t.py")
  local opts=(-artifact_prefix="$OUT/crashes/$t/" -max_len=8192 -timeout=20 -rss_limit_mb=2048
              -print_final_stats=1)
  [ -f "$ROOT/tests/fuzz/$t.dict" ] && opts+=(-dict="$ROOT/tests/fuzz/$t.dict")
  if [ "$SECONDS_EACH" = 0 ]; then
    "${exe[@]}" "${opts[@]}" -runs=0 "$seeds" > "$OUT/$t.log" 2>&1 \
      || { cat "$OUT/$t.log"; return 1; }
    echo "$t: $(ls "$seeds" | wc -l) seed inputs ran clean"
  else
    "${exe[@]}" "${opts[@]}" -max_total_time="$SECONDS_EACH" "$work" "$seeds" \
      > "$OUT/$t.log" 2>&1 || { tail -60 "$OUT/$t.log"; return 1; }
    grep -E "^#[0-9]+.*(DONE|pulse)" "$OUT/$t.log" | tail -1 | sed "s/^/$t: /"
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$OUT/$t.log" | sed "s/^/$t: /"
  fi
}

for t in "${TARGETS[@]}"; do [ -f "$ROOT/tests/fuzz/$t.py" ] || build "$t"; done
# Each target's exit status goes to a file: `wait PID` after `jobs` has reported
# the job done can fail with "not a child of this shell" and fail a clean run.
jobs_max="${FUZZ_JOBS:-1}"
for t in "${TARGETS[@]}"; do
  rm -f "$OUT/$t.status"
  (
    rc=0
    run "$t" || rc=$?
    echo "$rc" > "$OUT/$t.status"
  ) &
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do sleep 1; done
done
wait
status=0
for t in "${TARGETS[@]}"; do
  [ "$(cat "$OUT/$t.status" 2>/dev/null)" = 0 ] || { echo "$t: failed" >&2; status=1; }
done
exit $status
