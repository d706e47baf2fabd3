#!/usr/bin/env bash
# bash scripts/dev.sh test-python VERSION [pytest args...]
#
# The test suite under another CPython: Debian's own interpreter in a chroot of the Debian
# suite that ships it, made once with debootstrap (minbase) and reused. The working tree is
# bind-mounted at its own path, so the chroot builds it like a fresh Debian machine would
# (scripts/dev.sh test: apt packages, a venv of its own, .venv-cpXY, and an editable build
# in build/cpXY next to the host's build/cp311). Needs root (debootstrap, chroot, mount).
#
#   VERSION  suite     CPython   libuv / llhttp / nghttp2 / OpenSSL from the suite
#   3.9      bullseye  3.9       see "bullseye" below
#   3.11     bookworm  3.11
#   3.13     trixie    3.13
#   3.14     sid       3.14
#
# The chroots live in $HTTPRS_CHROOTS (default: the directory beside the repository,
# ../chroots), one per suite, outside any git tree; `rm -rf` one to start afresh. The
# mounts (/proc, /sys, /dev, /dev/pts, a /dev/shm tmpfs, the tree) are made for the run
# and undone when it ends, whatever its outcome; a lock per chroot keeps two runs apart.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=dev.sh
source "$ROOT/scripts/dev.sh"

usage() {
  echo "usage: bash scripts/dev.sh test-python {3.9|3.11|3.13|3.14} [pytest args...]" >&2
  exit 2
}
[ $# -ge 1 ] || usage
VERSION="$1"
shift
case "$VERSION" in
  3.9) SUITE=bullseye ;;
  3.11) SUITE=bookworm ;;
  3.13) SUITE=trixie ;;
  3.14) SUITE=sid ;;
  *) usage ;;
esac
if [ "$(id -u)" != 0 ]; then
  echo "test-python needs root (debootstrap, chroot, mount)" >&2
  exit 2
fi

MIRROR="${HTTPRS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CHROOTS="${HTTPRS_CHROOTS:-$(dirname "$ROOT")/chroots}"
CHROOT="$CHROOTS/$SUITE"
case "$CHROOT/" in
  "$ROOT"/*)
    echo "HTTPRS_CHROOTS must be outside the repository ($CHROOT)" >&2
    exit 2
    ;;
esac
PYNAME="python$VERSION"
TAG="cp${VERSION/./}"

make_chroot() {
  [ -f "$CHROOT/.httprs-ready" ] && return 0
  apt_install debootstrap
  log "debootstrap $SUITE into $CHROOT (minbase; a few minutes)"
  # A half-made chroot is made again; never while something (the tree!) is mounted in it.
  if grep -q " $CHROOT/" /proc/mounts; then
    echo "$CHROOT has mounts (an interrupted run?): unmount them first" >&2
    exit 1
  fi
  rm -rf --one-file-system "$CHROOT"
  mkdir -p "$CHROOTS"
  debootstrap --variant=minbase --include=ca-certificates,"$PYNAME" "$SUITE" "$CHROOT" "$MIRROR"
  # The host's resolver, and the certificate authorities added on it (a proxy's, for
  # pip's downloads), which the chroot's own ca-certificates then takes in.
  cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$CHROOT/usr/local/share/ca-certificates/"
    chroot "$CHROOT" update-ca-certificates >/dev/null
  fi
  # A mirror that serves a snapshot (or a clock ahead of it) has sid's Release expired
  # (sid's carries a Valid-Until); its packages are still the ones to test against.
  echo 'Acquire::Check-Valid-Until "false";' >"$CHROOT/etc/apt/apt.conf.d/99httprs-no-valid-until"
  touch "$CHROOT/.httprs-ready"
}

MOUNTED=()
mount_at() {
  # mount_at TARGET MOUNT-ARGS...: mount (unless an interrupted run left it mounted);
  # unmounted at the end either way
  local target="$CHROOT$1"
  shift
  mkdir -p "$target"
  mountpoint -q "$target" || mount "$@" "$target"
  MOUNTED=("$target" "${MOUNTED[@]}")
}
unmount_all() {
  local m
  for m in "${MOUNTED[@]}"; do umount "$m" || umount -l "$m" || true; done
  MOUNTED=()
}

mkdir -p "$CHROOTS"
exec 9>"$CHROOTS/$SUITE.lock"
flock 9
make_chroot
trap unmount_all EXIT
mount_at /proc -t proc proc
mount_at /sys -o bind,ro /sys
mount_at /dev --bind /dev
mount_at /dev/pts --bind /dev/pts
mount_at /dev/shm -t tmpfs tmpfs
mount_at "$ROOT" --bind "$ROOT"

log "running the suite under $SUITE's $PYNAME ($TAG, .venv-$TAG, build/$TAG)"
# A clean environment: the host's pip settings (local indexes, find-links) name paths
# the chroot does not have.
set +e
chroot "$CHROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DEFAULT_TIMEOUT=180 \
  PYTHON="$PYNAME" HTTPRS_VENV="$ROOT/.venv-$TAG" \
  bash "$ROOT/scripts/dev.sh" test "$@"
status=$?
set -e
exit $status
