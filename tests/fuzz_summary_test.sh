#!/usr/bin/env bash
# `make fuzz`'s summary counts what its progress lines count. tests/data/fuzz-fork-crash.log
# is a real libFuzzer -fork=2 run (fuzz_lockstep with --fault keep_bits_after_busy, trimmed):
# the parent's last progress line says #343; the crashing job's own log, copied after it,
# ends at #172. The summary once read the latter (13,860 inputs after 65,836 were shown).
set -u
root=$1
. "$root/scripts/fuzz-log.sh"
log=$root/tests/data/fuzz-fork-crash.log
fail() { echo "FAIL: $*"; exit 1; }

read -r execs cov corp < <(fuzz_log_stats "$log")
[ "$execs $cov $corp" = "343 13150 645" ] || fail "stats '$execs $cov $corp', want '343 13150 645'"
# The log still has the trap: its last '#N' line of any kind is the crashing job's.
[ "$(grep -oE '^#[0-9]+' "$log" | tail -1)" = "#172" ] || fail "the canned log no longer has a job log after the last progress line"
# The progress display shows exactly the parent's lines, and the summary repeats the last.
shown=$(grep -E "$FUZZ_PROGRESS_RE" "$log" | tail -1 | grep -oE '^#[0-9]+')
[ "$shown" = "#343" ] || fail "progress shows $shown"
line=$(fuzz_summary fuzz_lockstep 10 2 "$log")
[ "$line" = "summary: fuzz_lockstep, 10s on 2 core(s): 343 inputs (~34/s, ~17/s per core), coverage 13150 edges, corpus 645 inputs" ] ||
  fail "summary: $line"
# A log without progress (the fuzzer did not start) says so instead of failing.
[ "$(fuzz_log_stats /dev/null)" = "0 ? ?" ] || fail "empty log: $(fuzz_log_stats /dev/null)"
echo ok
