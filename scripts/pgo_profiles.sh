#!/usr/bin/env bash
# Make the profiles of the profile-guided build for the interpreter given (default: the
# python3 on PATH), outside any development environment: the wheel workflow's
# before-build step (cibuildwheel, Linux: pyproject.toml [tool.cibuildwheel.linux]) runs
# it once per CPython version, and the wheel is then compiled with -Dpgo=use.
#
#   bash scripts/pgo_profiles.sh [PYTHON] [MESON SETUP ARGS...]
#
# 1. a scratch virtual environment with the build tools and trustme (the training's
#    certificates);
# 2. an instrumented httprs installed into it (-Dpgo=generate, build dir build/pgo-train:
#    two levels below the source root, as every build that uses the profiles is, so GCC
#    finds each function's source under the same path);
# 3. scripts/pgo_train.py, which starts nginx and the C echo server (scripts/bench/
#    servers.py: nginx must be installed, and a C compiler) and writes the profiles to
#    build/pgo-profiles, the directory -Dpgo=use reads; what was there is replaced.
# Any failure stops it: a wheel compiled without its profiles is not the one measured.
# The build tools come from PyPI unless PIP_CONSTRAINT pins them: the build that uses the
# profiles must run the same Cython (dev.sh pins them to .venv-pgo's; cibuildwheel's
# isolated build fetches the newest, as this does, minutes apart).
# `bash scripts/dev.sh pgo` does the same for the development machine's .venv-pgo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${1:-python3}"
[ $# -gt 0 ] && shift
WORK="$(mktemp -d "${TMPDIR:-/tmp}/httprs-pgo-XXXXXX")"
PROFILES="$ROOT/build/pgo-profiles"
trap 'rm -rf "$WORK"' EXIT

log() { printf '[pgo] %s\n' "$*" >&2; }

log "scratch environment in $WORK"
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q --disable-pip-version-check "pip>=23.1"
"$VPY" -m pip install -q --disable-pip-version-check "meson-python>=0.15" "meson>=1.2" \
  ninja "Cython>=3.0" certifi idna sniffio trustme

log "instrumented build (-Dpgo=generate)"
rm -rf "$PROFILES" "$ROOT/build/pgo-train"
setup_args=("-Csetup-args=-Dpgo=generate" "-Csetup-args=-Dpgo_dir=$PROFILES")
for a in "$@"; do setup_args+=("-Csetup-args=$a"); done
PATH="$WORK/venv/bin:$PATH" "$VPY" -m pip install -q --disable-pip-version-check \
  --no-build-isolation "-Cbuild-dir=$ROOT/build/pgo-train" "${setup_args[@]}" "$ROOT"

log "training run (scripts/pgo_train.py)"
(cd "$WORK" && "$VPY" "$ROOT/scripts/pgo_train.py")
if [ -z "$(find "$PROFILES" -name '*.gcda' -print -quit 2>/dev/null)" ]; then
  log "the training run wrote no profiles to $PROFILES"
  exit 1
fi
log "profiles in $PROFILES: $(find "$PROFILES" -name '*.gcda' | wc -l) files"
