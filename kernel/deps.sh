#!/bin/sh
# cmacheck kreplay: install the Debian packages the kernel build and the qemu runs need.
# Silent and quick when everything is present. Run by build.sh and run.sh.
# Usage: kernel/deps.sh [build|run|src]   (default: build = everything; src: also what a
# build of your own tree needs, `make kernel KERNEL_SRC=DIR`: rsync)
# KERNEL=6.1|6.12 (default 6.1) picks the source package linux-source-$KERNEL.
set -eu
what=${1:-build}
KERNEL=${KERNEL:-6.1}
case "$KERNEL" in
  6.1|6.12) ;;
  *) echo "kernel/deps.sh: KERNEL must be 6.1 or 6.12 (got '$KERNEL')" >&2; exit 1 ;;
esac
PKGS_RUN="qemu-system-x86"
PKGS_BUILD="linux-source-$KERNEL gcc make libc6-dev flex bison bc libelf-dev libssl-dev cpio gzip xz-utils busybox-static $PKGS_RUN"
case "$what" in
  run) pkgs=$PKGS_RUN ;;
  src) pkgs="$PKGS_BUILD rsync" ;;
  *)   pkgs=$PKGS_BUILD ;;
esac
missing=""
for p in $pkgs; do
  # dpkg-query is fast (~10 ms); status must be "install ok installed"
  s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$s" = "install ok installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "kernel/deps.sh: missing Debian packages:$missing" >&2
  echo "kernel/deps.sh: run as root: apt-get install --no-install-recommends$missing" >&2
  exit 1
fi
echo "kernel: installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1; then
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
