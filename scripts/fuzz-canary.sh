#!/usr/bin/env bash
# Canary: with an injected impl fault, fuzz_lockstep must find a crash within a bounded
# number of runs from an empty corpus: proof that the campaign can fail.
set -uo pipefail
bin=$1; fault=$2; work=$3; runs=${4:-200000}
rm -rf "$work"; mkdir -p "$work/corpus"
CMACHECK_FAULT=$fault "$bin" -seed=7 -runs="$runs" -artifact_prefix="$work/" "$work/corpus" >"$work/log" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
  echo "canary NOT found: fault $fault survived $runs runs"; tail -20 "$work/log"; exit 1
fi
if ! grep -q "cmacheck finding" "$work/log"; then
  echo "fuzzer stopped (exit $rc) but not on a cmacheck finding:"; tail -40 "$work/log"; exit 1
fi
grep -m1 -E "^#[0-9]+" "$work/log" >/dev/null
echo "canary found: $(grep -m1 'VIOLATION' "$work/log") after $(grep -oE '^#[0-9]+' "$work/log" | tail -1 | tr -d '#') runs"
