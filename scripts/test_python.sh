#!/usr/bin/env bash
# bash scripts/dev.sh test-python VERSION [pytest args...]
#
# The test suite under another CPython: Debian's own interpreter in a chroot of the Debian
# suite that ships it, made once with debootstrap (minbase) and reused. The working tree is
# bind-mounted at its own path, so the chroot builds it like a fresh Debian machine would
# (scripts/dev.sh test: apt packages, a venv of its own, .venv-SUITE-cpXY, and an editable
# build in build/SUITE-cpXY, never the host's: `3.11` would otherwise reconfigure the host's
# build/cp311 for bookworm's interpreter, and a host run with another interpreter
# (PYTHON=python3.9 HTTPRS_VENV=.venv-cp39) shares names with `3.9`'s).
# Needs root (debootstrap, chroot, mount).
#
#   VERSION  suite     CPython   libuv / llhttp / nghttp2 / OpenSSL from the suite
#   3.9      bullseye  3.9       see "bullseye" below
#   3.11     bookworm  3.11
#   3.13     trixie    3.13
#   3.14     sid       3.14
#
# The chroots live in $HTTPRS_CHROOTS (default: the directory beside the repository,
# ../chroots), one per suite, outside any git tree. The mounts (/proc, /sys, /dev,
# /dev/pts, a /dev/shm tmpfs, the tree) are made for the run, kept from propagating to
# the host's (a systemd host's mounts are shared), and undone when it ends, whatever its
# outcome; a lock per chroot keeps two runs apart. To start a chroot afresh, delete it
# only while `grep chroots /proc/mounts` shows nothing of it: during a run (or after one
# killed with SIGKILL) the tree is bind-mounted in it and `rm -rf` deletes the tree too
# (`--one-file-system` does not stop at a bind mount of the same file system).
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
# Physical paths (no symlinks): /proc/self/mountinfo names mount points that way.
CHROOTS="$(realpath -m "${HTTPRS_CHROOTS:-$(dirname "$ROOT")/chroots}")"
CHROOT="$CHROOTS/$SUITE"
ROOT_REAL="$(realpath "$ROOT")"
case "$CHROOT" in
  *[[:space:]\\]*)
    # mountinfo escapes these, and has_mounts compares its paths as they are
    echo "no spaces or backslashes in the chroot's path, please ($CHROOT)" >&2
    exit 2
    ;;
esac
case "$CHROOT/" in
  "$ROOT_REAL"/*)
    echo "HTTPRS_CHROOTS must be outside the repository ($CHROOT)" >&2
    exit 2
    ;;
esac
case "$ROOT_REAL/" in
  "$CHROOT"/*)
    echo "the repository must be outside the chroot ($CHROOT)" >&2
    exit 2
    ;;
esac
PYNAME="python$VERSION"
TAG="cp${VERSION/./}"

# Whether anything is mounted at or below the chroot.
has_mounts() {
  awk -v dir="$CHROOT" '$5 == dir || index($5, dir "/") == 1 { found = 1 }
    END { exit !found }' /proc/self/mountinfo
}

make_chroot() {
  [ -f "$CHROOT/.httprs-ready" ] && return 0
  # A half-made chroot (this script's marker beside it) is made again, but never while
  # something (the tree!) is mounted in it, and never a directory this script did not make.
  local making="$CHROOTS/.$SUITE.making"
  if [ -e "$CHROOT" ] && [ ! -f "$making" ]; then
    echo "$CHROOT exists but is not a chroot test-python made: move it away or set HTTPRS_CHROOTS" >&2
    exit 1
  fi
  if has_mounts; then
    echo "$CHROOT has mounts (an interrupted run?): unmount them first" >&2
    exit 1
  fi
  apt_install debootstrap
  log "debootstrap $SUITE into $CHROOT (minbase; a few minutes)"
  mkdir -p "$CHROOTS"
  touch "$making"
  rm -rf --one-file-system "$CHROOT"
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
  rm -f "$making"
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
  # Nothing mounted below it (the chroot's /dev/pts and /dev/shm) reaches the host's
  # tree through a shared mount (/dev on a systemd host); the host's still come in.
  mount --make-rslave "$target"
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

VENV_NAME=".venv-$SUITE-$TAG"
BUILD_NAME="build/$SUITE-$TAG"
log "running the suite under $SUITE's $PYNAME ($VENV_NAME, $BUILD_NAME)"
# A clean environment: the host's pip settings (local indexes, find-links) name paths
# the chroot does not have.
set +e
# 9>&-: a process the suite leaves behind does not hold the chroot's lock.
chroot "$CHROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DEFAULT_TIMEOUT=180 \
  PYTHON="$PYNAME" HTTPRS_VENV="$ROOT/$VENV_NAME" HTTPRS_BUILD_DIR="$BUILD_NAME" \
  bash "$ROOT/scripts/dev.sh" test "$@" 9>&-
status=$?
set -e
exit $status
