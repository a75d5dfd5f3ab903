#!/usr/bin/env bash
# Installs the Debian packages a make target needs, quickly and silently when they are
# all present. Usage: scripts/deps.sh PACKAGE...
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "cmacheck needs these Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/cmacheck-apt.log 2>&1; then
  apt-get update -q >>/tmp/cmacheck-apt.log 2>&1 || true
  apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/cmacheck-apt.log 2>&1 || {
    echo "apt-get failed; see /tmp/cmacheck-apt.log" >&2
    exit 1
  }
fi
