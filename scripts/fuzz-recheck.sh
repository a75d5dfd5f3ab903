#!/usr/bin/env bash
# Re-runs a directory of fuzz inputs once under another build of the same target: `make fuzz`
# searches with a build without sanitizers (faster, docs/performance.md) and re-runs every
# input that run kept under the ASan+UBSan build, so that a memory error or undefined
# behaviour the fast build cannot see is still caught. An input that stops the run is saved
# as CRASH_DIR/crash-<sha1>, like any finding; the exit status is then 1.
# Usage: scripts/fuzz-recheck.sh BIN INPUT_DIR CRASH_DIR LOG [LIBFUZZER_ARG...]
set -uo pipefail
bin=$1; dir=$2; crashes=$3; log=$4; shift 4
n=$(find "$dir" -type f | wc -l)
if "$bin" -runs=0 -artifact_prefix="$crashes/" "$@" "$dir" >"$log" 2>&1; then
  echo "re-checked the $n input(s) the run kept under $bin: clean"
  exit 0
fi
echo "the re-check under $bin stopped on an input (log: $log):"
grep -m4 -E "==[0-9]+== ?ERROR|runtime error|VIOLATION|deadly signal" "$log" | sed 's/^/  /'
exit 1
