#!/usr/bin/env bash
# `make fuzz`'s re-check (scripts/fuzz-recheck.sh) reports and keeps what the build it runs
# catches. An injected fault stands in for a sanitizer report: seeds that pass re-check
# clean; under CMACHECK_FAULT=maxchunk_counts_bits the seed below stops the run, and the
# re-check exits 1 and leaves crash-<sha1> in the crash directory.
set -u
root=$1; bin=$2; work=$3
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$work"; mkdir -p "$work/in" "$work/crashes"
seeds=$root/corpus/fuzz_lockstep
cp "$seeds/004084b8fafd1d2032913ab6838396a97b7a1ec9" "$seeds/032ddedd5e2ef5d619c8a6c40e0a3377e551f0d9" "$work/in/"

out=$(env -u CMACHECK_FAULT "$root/scripts/fuzz-recheck.sh" "$bin" "$work/in" "$work/crashes" "$work/clean.log") ||
  fail "clean inputs: $out"
grep -q "clean" <<<"$out" || fail "clean inputs: $out"
[ -z "$(ls -A "$work/crashes")" ] || fail "clean inputs left $(ls "$work/crashes")"

out=$(CMACHECK_FAULT=maxchunk_counts_bits "$root/scripts/fuzz-recheck.sh" "$bin" "$work/in" "$work/crashes" "$work/fault.log")
[ $? -eq 1 ] || fail "with the fault the re-check passed: $out"
grep -q "VIOLATION" <<<"$out" || fail "the report does not show the violation: $out"
ls "$work/crashes" | grep -qE '^crash-[0-9a-f]{40}$' || fail "no crash file kept: $(ls "$work/crashes")"
echo ok
