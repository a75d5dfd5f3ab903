#!/bin/bash
# cmacheck kreplay: run one command script on Linux 6.1 or 6.12 under qemu (TCG) and print
# the result lines ("KR ...") on stdout. See kernel/README.md for the language.
#
#   kernel/run.sh SCRIPT|- [--kernel 6.1|6.12] [--cma SIZE[@BASE]] [--mem SIZE] [--timeout SEC]
#                 [--append "KERNEL ARGS"] [--cpu MODEL] [--console FILE] [--no-build]
#
#   --kernel   which build to boot (default: $KERNEL, else 6.1): build/kernel-6.1 or -6.12
#   --fault    boot the kernel built with kernel/faults/NAME.patch (build.sh --fault NAME)
#   --cma      the kernel's cma= argument (default 16M; "none" for no cma= at all).
#              SIZE@BASE places the area at exactly BASE (both kernels treat BASE as fixed);
#              sizes and bases are multiples of 2 MiB (a pageblock).
#   --mem      guest memory, qemu -m syntax (default 256M)
#   --timeout  seconds before the run is killed (default 120)
#   --append   more kernel command-line arguments
#   --cpu      qemu -cpu model (default: qemu's own, qemu64); "max" adds 1 GiB pages,
#              which x86 needs for hugetlb_cma= (an area with order_per_bit 9)
#   --console  keep the guest console log in FILE (default: a temporary file, removed)
#   --no-build do not call kernel/build.sh first
#
# Exit status: 0 the script ran to its end ("KR <n> end ok" seen) and the kernel logged no
# BUG/WARNING/Oops/panic/bad page; 1 usage or build error; 2 the guest did not reach the end
# (boot failure, crash, timeout): a message and the console tail go to stderr; 3 the script
# ran to its end but the kernel logged a BUG/WARNING/Oops/bad page or an OOM kill (lines on
# stderr).
# The run time goes to stderr as "kreplay: run took S s".
set -euo pipefail

K=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$K")
KERNEL=${KERNEL:-6.1}

usage() { sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 1; }
die() { echo "kreplay: error: $*" >&2; exit 1; }

script=""
cma=16M
mem=256M
timeout=120
append=""
cpu=""
console=""
fault=""
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) KERNEL=${2:?}; shift 2 ;;
    --fault) fault=${2:?}; shift 2 ;;
    --cma) cma=${2:?}; shift 2 ;;
    --mem) mem=${2:?}; shift 2 ;;
    --timeout) timeout=${2:?}; shift 2 ;;
    --append) append=${2:?}; shift 2 ;;
    --cpu) cpu=${2:?}; shift 2 ;;
    --console) console=${2:?}; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) usage ;;
    -*) [ "$1" = - ] && { script=-; shift; continue; }; die "unknown option $1" ;;
    *) [ -z "$script" ] || die "more than one script"; script=$1; shift ;;
  esac
done
[ -n "$script" ] || usage
case "$KERNEL" in
  6.1|6.12) ;;
  *) die "--kernel must be 6.1 or 6.12 (got '$KERNEL')" ;;
esac
export KERNEL
OUT=${KREPLAY_BUILD_DIR:-$ROOT/build/kernel-$KERNEL}

if [ $build = 1 ]; then
  "$K/build.sh" -q ${fault:+--fault "$fault"} || die "build failed"
else
  "$K/deps.sh" run || die "missing packages"
fi
BZIMAGE=$OUT/bzImage
[ -z "$fault" ] || BZIMAGE=$OUT/faults/$fault/bzImage
[ -f "$BZIMAGE" ] && [ -f "$OUT/base.cpio.gz" ] || die "no build in $OUT (run kernel/build.sh --kernel $KERNEL${fault:+ --fault $fault})"

tmp=$(mktemp -d /tmp/kreplay.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/root/kreplay"
if [ "$script" = - ]; then cat > "$tmp/root/kreplay/script"
else cp "$script" "$tmp/root/kreplay/script" || die "cannot read $script"; fi
# the per-run part: one more gzip'd cpio appended to the base initramfs
(cd "$tmp/root" && find kreplay | cpio -o -H newc -R 0:0 --quiet | gzip -1 > "$tmp/run.cpio.gz")
cat "$OUT/base.cpio.gz" "$tmp/run.cpio.gz" > "$tmp/initrd.gz"

cmdline="console=ttyS0 panic=-1 quiet"
[ "$cma" = none ] || cmdline="$cmdline cma=$cma"
[ -z "$append" ] || cmdline="$cmdline $append"
log=${console:-$tmp/console.log}
: > "$log"
: > "$tmp/results.log"

t0=$(date +%s.%N)
set +e
timeout -k 5 "$timeout" qemu-system-x86_64 -accel tcg -nodefaults -display none -no-reboot \
  ${cpu:+-cpu "$cpu"} -m "$mem" -kernel "$BZIMAGE" -initrd "$tmp/initrd.gz" -append "$cmdline" \
  -serial "file:$log" -serial "file:$tmp/results.log" < /dev/null > "$tmp/qemu.out" 2>&1
rc=$?
set -e
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')

tr -d '\r' < "$tmp/results.log" | grep -a '^KR ' || true
echo "kreplay: run took $secs s (qemu -m $mem, $cmdline)" >&2

if ! tr -d '\r' < "$tmp/results.log" | grep -aq '^KR [0-9]* end ok'; then
  if [ $rc = 124 ] || [ $rc = 137 ]; then
    echo "kreplay: error: timeout after $timeout s, the guest did not finish" >&2
  else
    echo "kreplay: error: the guest stopped before the end of the script (qemu status $rc)" >&2
  fi
  cat "$tmp/qemu.out" >&2
  tr -d '\r' < "$log" | grep -aE 'BUG:|WARNING:|Oops|Kernel panic|Bad page|kernel BUG' | head -5 | sed 's/^/kreplay: kernel: /' >&2 || true
  echo "kreplay: last console lines:" >&2
  tr -d '\r' < "$log" | tail -40 >&2
  exit 2
fi
if [ "$cma" != none ] && tr -d '\r' < "$tmp/results.log" | grep -aq '^KR 0 boot .* areas=0'; then
  echo "kreplay: warning: the kernel reserved no CMA area for cma=$cma (not 2 MiB-aligned, overlapping the kernel or the initrd, or outside memory)" >&2
fi
bad=$(tr -d '\r' < "$log" | grep -aE 'BUG:|WARNING:|Oops|Kernel panic|Bad page|page dumped because|Out of memory' || true)
if [ -n "$bad" ]; then
  echo "kreplay: the kernel logged problems:" >&2
  echo "$bad" >&2
  exit 3
fi
exit 0
