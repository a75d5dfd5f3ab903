#!/bin/bash
# cmacheck kreplay: build everything the qemu runs need, into build/kernel-$KERNEL/.
#
#   kernel/build.sh [--kernel 6.1|6.12] [-q]   (-q: print nothing when up to date)
#   kernel/build.sh [--kernel V] --check       exit 0 when the build is present and up to date,
#                               1 otherwise; builds and installs nothing (cmacheck kreplay asks
#                               this first)
#   kernel/build.sh [--kernel V] --fault NAME [--check]
#                               also (or only check) the kernel with kernel/faults/NAME.patch
#                               applied (kfuzz's kernel zoo): the patch is applied to the cached
#                               tree, `make bzImage` rebuilds the patched files only, the result
#                               goes to OUT/faults/NAME/bzImage and the patch is reverted; the
#                               module, agents and initramfs are the stock build's
#   kernel/build.sh [--kernel V] --src DIR
#                               a kernel tree of your own (a CMA patch under test): DIR is copied
#                               into OUT/linux (rsync; later builds are incremental), gets the
#                               export lines of kernel/exports.list for V and the same config
#                               fragment; OUT defaults to build/kernel-V-src (KREPLAY_BUILD_DIR)
#
# The kernel is Debian's linux-source-$KERNEL: KERNEL=6.1 (the default) or 6.12, from
# --kernel or the environment. Each kernel has its own output directory and cache keys, so
# building one never invalidates the other.
#
# Steps, each cached by a key (sha256 of its inputs):
#   deps     install missing Debian packages (kernel/deps.sh)
#   tree     extract /usr/src/linux-source-$KERNEL.tar.xz into build/kernel-$KERNEL/linux and
#            append the EXPORT_SYMBOL_GPL lines of kernel/exports.list that apply to $KERNEL
#            (the only change to the tree)
#   kernel   make tinyconfig + kernel/cmacheck.config (merge_config.sh, olddefconfig), check
#            every fragment line is in .config, make bzImage modules
#   module   kernel/module/cmacheck_cma.c -> OUT/module/cmacheck_cma.ko
#   agents   kernel/agents/*.c -> static binaries OUT/agents/{krdrive,krpressure,krpin}
#   initramfs busybox-static + agents + module + kernel/init.sh -> OUT/base.cpio.gz
# OUT is build/kernel-$KERNEL (KREPLAY_BUILD_DIR overrides it).
# Outputs: OUT/bzImage, OUT/base.cpio.gz. Logs: OUT/logs/.
# Build times are appended to OUT/build-times.txt.
set -euo pipefail

quiet=0
check=0
fault=""
src=""
KERNEL=${KERNEL:-6.1}
while [ $# -gt 0 ]; do
  case "$1" in
    -q) quiet=1; shift ;;
    --check) check=1; shift ;;
    --kernel) KERNEL=${2:?--kernel needs 6.1 or 6.12}; shift 2 ;;
    --fault) fault=${2:?--fault needs a NAME of kernel/faults/NAME.patch}; shift 2 ;;
    --src) src=${2:?--src needs a kernel source directory}; shift 2 ;;
    *) echo "kernel: error: unknown argument $1 (kernel/build.sh [--kernel 6.1|6.12] [-q|--check])" >&2; exit 1 ;;
  esac
done
case "$KERNEL" in
  6.1|6.12) ;;
  *) echo "kernel: error: KERNEL must be 6.1 or 6.12 (got '$KERNEL')" >&2; exit 1 ;;
esac
export KERNEL

K=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$K")
if [ -n "$src" ]; then
  [ -f "$src/Makefile" ] && [ -f "$src/mm/cma.c" ] || { echo "kernel: error: --src $src is not a kernel source tree (no Makefile, mm/cma.c)" >&2; exit 1; }
  src=$(cd "$src" && pwd)
  OUT=${KREPLAY_BUILD_DIR:-$ROOT/build/kernel-$KERNEL-src}
else
  OUT=${KREPLAY_BUILD_DIR:-$ROOT/build/kernel-$KERNEL}
fi
PATCH=""
if [ -n "$fault" ]; then
  PATCH=$K/faults/$fault.patch
  [ -f "$PATCH" ] || { echo "kernel: error: no kernel fault $fault (kernel/faults/$fault.patch); there are: $(cd "$K/faults" && ls *.patch 2>/dev/null | sed 's/\.patch$//' | tr '\n' ' ')" >&2; exit 1; }
fi
SRC_PKG=linux-source-$KERNEL
TARBALL=/usr/src/$SRC_PKG.tar.xz
JOBS=$(( $(nproc) + 1 ))

say() { echo "kernel $KERNEL: $*" >&2; }
die() { echo "kernel $KERNEL: error: $*" >&2; exit 1; }

# The lines of exports.list for this kernel: "FILE SYMBOL" (every kernel) or
# "FILE SYMBOL K1,K2" (only those kernels).
exports_for_kernel() {
  grep -v '^[[:space:]]*#' "$K/exports.list" | while read -r file sym only; do
    [ -n "$file" ] || continue
    if [ -n "$only" ] && ! printf ',%s,' "$only" | grep -qF ",$KERNEL,"; then continue; fi
    echo "$file $sym"
  done
}

if [ $check = 0 ]; then
  "$K/deps.sh" "$([ -n "$src" ] && echo src || echo build)" || die "missing packages"
  mkdir -p "$OUT/logs"
  # one build at a time per output directory
  exec 9>"$OUT/.lock"
  flock 9
fi

hash_files() { cat "$@" | sha256sum | cut -c1-16; }
hash_str() { printf '%s' "$*" | sha256sum | cut -c1-16; }
stamp_ok() { [ -f "$OUT/$1.key" ] && [ "$(cat "$OUT/$1.key")" = "$2" ]; }
stamp_set() { echo "$2" > "$OUT/$1.key"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
record() { echo "$(date -u +%FT%TZ) $1 $2s" >> "$OUT/build-times.txt"; }

if [ $check = 1 ]; then
  src_ver=$(dpkg-query -W -f='${Version}' "$SRC_PKG" 2>/dev/null) || exit 1
else
  src_ver=$(dpkg-query -W -f='${Version}' "$SRC_PKG")
fi
busybox_ver=$(dpkg-query -W -f='${Version}' busybox-static)
gcc_ver=$(gcc -dumpfullversion)
key_tree=$(hash_str "$KERNEL $src_ver $(exports_for_kernel | sha256sum | cut -c1-16)")
# A tree of your own: its content is the user's, rebuilt (incrementally) on every call.
[ -z "$src" ] || key_tree=$(hash_str "src $src $(date +%s%N)")
key_kernel=$(hash_str "$key_tree $(hash_files "$K/cmacheck.config")")
key_module=$(hash_str "$key_kernel $(hash_files "$K/module/cmacheck_cma.c" "$K/module/Kbuild")")
key_agents=$(hash_str "$gcc_ver $(hash_files "$K"/agents/*.c "$K"/agents/*.h)")
key_all=$(hash_str "$key_module $key_agents $busybox_ver $(hash_files "$K/init.sh")")

# A patched build of the cached tree (kfuzz's kernel zoo): OUT/faults/NAME/bzImage.
key_fault=""
[ -z "$PATCH" ] || key_fault=$(hash_str "$key_kernel $(hash_files "$PATCH")")
fault_ok() { [ -z "$PATCH" ] || { stamp_ok "faults/$fault/bzImage" "$key_fault" && [ -f "$OUT/faults/$fault/bzImage" ]; }; }

# A patch left applied by an interrupted fault build is reverted before anything else.
revert_leftover() {
  if [ -f "$OUT/faults/.applied.patch" ]; then
    say "reverting a kernel fault left applied ($(cat "$OUT/faults/.applied"))"
    patch -R -p1 -s -d "$OUT/linux" < "$OUT/faults/.applied.patch" || die "cannot revert $OUT/faults/.applied.patch: extract the tree again (rm $OUT/tree.key)"
    rm -f "$OUT/faults/.applied.patch" "$OUT/faults/.applied"
  fi
}

build_fault() {
  fault_ok && return 0
  local t log=$OUT/logs/fault-$fault.log
  t=$(now)
  mkdir -p "$OUT/faults/$fault"
  patch -p1 --dry-run -s -d "$OUT/linux" < "$PATCH" > "$log" 2>&1 || { cat "$log" >&2; die "kernel/faults/$fault.patch does not apply to Linux $KERNEL"; }
  cp "$PATCH" "$OUT/faults/.applied.patch"
  echo "$fault" > "$OUT/faults/.applied"
  patch -p1 -s -d "$OUT/linux" < "$PATCH"
  say "building the kernel with kernel/faults/$fault.patch (incremental) ..."
  if ! make -C "$OUT/linux" -j"$JOBS" bzImage >> "$log" 2>&1; then
    revert_leftover
    tail -30 "$log" >&2
    die "the kernel with $fault failed to build, see $log"
  fi
  cp "$OUT/linux/arch/x86/boot/bzImage" "$OUT/faults/$fault/bzImage"
  revert_leftover
  stamp_set "faults/$fault/bzImage" "$key_fault"
  say "kernel with $fault built in $(elapsed "$t") s ($OUT/faults/$fault/bzImage)"
  record "fault-$fault" "$(elapsed "$t")"
}

if stamp_ok all "$key_all" && [ -f "$OUT/bzImage" ] && [ -f "$OUT/base.cpio.gz" ] && fault_ok && { [ $check = 1 ] || [ ! -f "$OUT/faults/.applied" ]; }; then
  [ $quiet = 1 ] || [ $check = 1 ] || say "up to date ($OUT${fault:+, fault $fault})"
  exit 0
fi
# a build of your own tree: present is up to date (its content is checked at `make kernel KERNEL_SRC=`)
if [ $check = 1 ] && [ -f "$OUT/source" ] && [ -f "$OUT/bzImage" ] && [ -f "$OUT/base.cpio.gz" ] && [ -z "$PATCH" ]; then
  exit 0
fi
[ $check = 0 ] || exit 1
revert_leftover
if stamp_ok all "$key_all" && [ -f "$OUT/bzImage" ] && [ -f "$OUT/base.cpio.gz" ]; then
  build_fault
  exit 0
fi
T_ALL=$(now)

# ---- tree ----
TREE=$OUT/linux
if [ -n "$src" ]; then
  # your tree: copied (rsync keeps the times of unchanged files, so make rebuilds what changed).
  # No `rsync --delete`: it deleted every file the build generates (scripts/basic/fixdep,
  # tools/objtool/objtool, ...), and a new objtool makes every object out of date. A file
  # that left your tree since the last copy is deleted from the copy by name instead.
  t=$(now)
  command -v rsync >/dev/null || die "--src needs rsync (apt-get install rsync)"
  say "copying $src into $TREE ..."
  mkdir -p "$TREE"
  (cd "$src" && find . -path ./.git -prune -o \( -type f -o -type l \) ! -name '*.o' ! -name '*.cmd' ! -name .config \
    ! -name '*.ko' -print | LC_ALL=C sort) > "$OUT/source-files.new"
  if [ -f "$OUT/source-files" ]; then
    LC_ALL=C comm -23 "$OUT/source-files" "$OUT/source-files.new" | (cd "$TREE" && xargs -r -d '\n' rm -f --)
  fi
  rsync -a --exclude=.git --exclude='*.o' --exclude='*.cmd' --exclude=.config --exclude='*.ko' "$src/" "$TREE/"
  mv "$OUT/source-files.new" "$OUT/source-files"
  exports_for_kernel | while read -r file sym; do
    [ -f "$TREE/$file" ] || die "exports.list: no file $file in $src"
    grep -qE "^EXPORT_SYMBOL(_GPL)?\($sym\);" "$TREE/$file" && continue
    grep -qE "^[a-z].*[^a-zA-Z0-9_]$sym *(\(|;| =|\[)" "$TREE/$file" || die "exports.list: $sym not defined in $file of $src"
    printf 'EXPORT_SYMBOL_GPL(%s);\n' "$sym" >> "$TREE/$file"
  done
  echo "$src" > "$OUT/source"
  rm -f "$OUT/all.key"
  stamp_set tree "$key_tree"
  record tree "$(elapsed "$t")"
elif ! stamp_ok tree "$key_tree" || [ ! -f "$TREE/Makefile" ]; then
  t=$(now)
  say "extracting $SRC_PKG $src_ver ..."
  rm -rf "$TREE" "$OUT"/kernel.key "$OUT"/module.key "$OUT"/faults
  mkdir -p "$TREE"
  tar -xJf "$TARBALL" -C "$TREE" --strip-components=1
  # the export-only change: append EXPORT_SYMBOL_GPL(SYMBOL); to FILE
  exports_for_kernel | while read -r file sym; do
    [ -f "$TREE/$file" ] || die "exports.list: no file $file in the tree"
    # the symbol must be defined there (a function or variable definition, not a mention)
    grep -qE "^[a-z].*[^a-zA-Z0-9_]$sym *(\(|;| =|\[)" "$TREE/$file" || die "exports.list: $sym not defined in $file"
    printf 'EXPORT_SYMBOL_GPL(%s);\n' "$sym" >> "$TREE/$file"
  done
  stamp_set tree "$key_tree"
  say "extracted and patched in $(elapsed "$t") s"
  record tree "$(elapsed "$t")"
fi

# ---- kernel ----
if ! stamp_ok kernel "$key_kernel" || [ ! -f "$OUT/bzImage" ]; then
  t=$(now)
  log=$OUT/logs/kernel.log
  # A tree of your own that was configured with this fragment before: olddefconfig only.
  # tinyconfig would switch every option off and on again, and Kbuild would rebuild
  # every file that depends on one (about 15 minutes instead of 1-2 on 2 cores).
  key_config=$(hash_files "$K/cmacheck.config")
  if [ -n "$src" ] && [ -f "$TREE/.config" ] && stamp_ok config "$key_config"; then
    say "configuring (olddefconfig, the tree was configured before) ..."
    (cd "$TREE" && make olddefconfig) > "$OUT/logs/config.log" 2>&1 || die "configuration failed, see $OUT/logs/config.log"
  else
    say "configuring (tinyconfig + cmacheck.config) ..."
    (
      cd "$TREE"
      make tinyconfig
      ./scripts/kconfig/merge_config.sh -m .config "$K/cmacheck.config"
      make olddefconfig
    ) > "$OUT/logs/config.log" 2>&1 || die "configuration failed, see $OUT/logs/config.log"
  fi
  missing=$(grep -v '^[[:space:]]*$' "$K/cmacheck.config" | grep -v '^#' | while read -r l; do
    grep -qx "$l" "$TREE/.config" || echo "$l"; done)
  [ -z "$missing" ] || die "options not set in the final .config: $missing"
  # "# CONFIG_X is not set" lines of the fragment must hold too (X unset)
  grep '^# CONFIG_.* is not set' "$K/cmacheck.config" | sed 's/^# \(CONFIG_[A-Z0-9_]*\) .*/\1/' | while read -r o; do
    ! grep -q "^$o=" "$TREE/.config" || die "$o must not be set"; done
  say "building bzImage and modules with $JOBS jobs (log: $log) ..."
  make -C "$TREE" -j"$JOBS" bzImage modules > "$log" 2>&1 || { tail -30 "$log" >&2; die "kernel build failed, see $log"; }
  cp "$TREE/arch/x86/boot/bzImage" "$OUT/bzImage"
  cp "$TREE/.config" "$OUT/config"
  stamp_set config "$key_config"
  stamp_set kernel "$key_kernel"
  say "bzImage ($(stat -c %s "$OUT/bzImage") bytes) built in $(elapsed "$t") s"
  record kernel "$(elapsed "$t")"
fi

# ---- module ----
if ! stamp_ok module "$key_module" || [ ! -f "$OUT/module/cmacheck_cma.ko" ]; then
  t=$(now)
  rm -rf "$OUT/module"
  mkdir -p "$OUT/module"
  cp "$K/module/cmacheck_cma.c" "$K/module/Kbuild" "$OUT/module/"
  make -C "$TREE" M="$OUT/module" modules > "$OUT/logs/module.log" 2>&1 || { cat "$OUT/logs/module.log" >&2; die "module build failed"; }
  if grep -q 'warning:' "$OUT/logs/module.log"; then grep 'warning:' "$OUT/logs/module.log" >&2; fi
  stamp_set module "$key_module"
  say "module built in $(elapsed "$t") s"
  record module "$(elapsed "$t")"
fi

# ---- agents ----
if ! stamp_ok agents "$key_agents" || [ ! -x "$OUT/agents/krdrive" ]; then
  t=$(now)
  mkdir -p "$OUT/agents"
  for a in krdrive krpressure krpin; do
    gcc -static -O2 -Wall -Wextra -Wno-unused-parameter -Wno-format-truncation \
      -o "$OUT/agents/$a" "$K/agents/$a.c" || die "agent $a failed to build"
  done
  stamp_set agents "$key_agents"
  say "agents built in $(elapsed "$t") s"
  record agents "$(elapsed "$t")"
fi

# ---- base initramfs ----
t=$(now)
R=$OUT/initroot
rm -rf "$R"
mkdir -p "$R/bin" "$R/lib" "$R/kreplay"
cp /bin/busybox "$R/bin/busybox"
cp "$OUT"/agents/krdrive "$OUT"/agents/krpressure "$OUT"/agents/krpin "$R/bin/"
cp "$OUT/module/cmacheck_cma.ko" "$R/lib/"
cp "$K/init.sh" "$R/init"
chmod 755 "$R/init"
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9 > "$OUT/base.cpio.gz.tmp")
mv "$OUT/base.cpio.gz.tmp" "$OUT/base.cpio.gz"
stamp_set all "$key_all"
say "initramfs ($(stat -c %s "$OUT/base.cpio.gz") bytes) packed in $(elapsed "$t") s"
say "build done in $(elapsed "$T_ALL") s"
record all "$(elapsed "$T_ALL")"
[ -z "$PATCH" ] || build_fault
