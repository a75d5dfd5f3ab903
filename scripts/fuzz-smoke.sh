#!/usr/bin/env bash
# A short fixed-seed run of one fuzz target from its seed corpus (ctest label fuzz-smoke).
# New inputs go to WORKDIR, never into the committed corpus.
set -euo pipefail
bin=$1; seeds=$2; work=$3; seconds=${4:-12}
rm -rf "$work"; mkdir -p "$work/corpus" "$work/artifacts"
dict=""
name=$(basename "$bin")
root=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$root/fuzz/$name.dict" ] && dict="-dict=$root/fuzz/$name.dict"
"$bin" -seed=1 -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
  $dict "$work/corpus" "$seeds" 2>"$work/log" || { tail -60 "$work/log"; exit 1; }
grep -E "stat::number_of_executed_units|stat::average_exec_per_sec" "$work/log" || true
