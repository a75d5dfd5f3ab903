#!/usr/bin/env bash
# Bad input never aborts: every subcommand, and every option that takes a path, given a
# directory, a missing file, an empty file, random bytes named .trace, a FIFO, a path
# through a regular file (file.trace/x) and a file it may not read, exits 2 with an
# `...: error: ...` line, or 0/1 where the input is legitimately readable (a directory of
# valid traces, random bytes under a fuzz-input name). Never a signal (exit >= 128, such
# as 134 for an uncaught exception), never a hang, never a sanitizer report.
# Usage: tests/bad_input_test.sh CMACHECK ROOT
set -u
bin=$1; root=$2
tmp=$(mktemp -d); trap 'chmod -R u+rwx "$tmp"; rm -rf "$tmp"' EXIT
failures=0; checks=0

# check WANT CMD...: WANT is an exit status or several ("0|1"). Returns 1 (after saying
# why) on another status, on a signal or timeout, on exit 2 without an error line, or on
# a sanitizer report.
check() {
  local want=$1; shift
  timeout 120 "$@" > "$tmp/out" 2> "$tmp/err" < /dev/null; local rc=$?
  if [ $rc -ge 124 ]; then
    echo "FAIL: exit $rc (a signal, an abort or a timeout): $*"; head -3 "$tmp/err"; return 1
  fi
  if grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$tmp/err"; then
    echo "FAIL: sanitizer report: $*"; head -5 "$tmp/err"; return 1
  fi
  if [[ "|$want|" != *"|$rc|"* ]]; then
    echo "FAIL: exit $rc, want $want: $*"; head -3 "$tmp/err"; return 1
  fi
  if [ $rc -eq 2 ] && ! grep -q ': error: ' "$tmp/err"; then
    echo "FAIL: exit 2 without a '...: error: ...' line: $*"; head -3 "$tmp/err"; return 1
  fi
  return 0
}
run() {
  checks=$((checks + 1))
  local t0=$SECONDS
  check "$@" || failures=$((failures + 1))
  [ $((SECONDS - t0)) -lt 5 ] || echo "slow ($((SECONDS - t0)) s): $*"
}

# The checker itself: an abort (134) and a wrong status are failures; a clean exit 2 is not.
(check 2 sh -c 'kill -ABRT $$') > /dev/null 2>&1 && { echo "FAIL: check accepted exit 134"; exit 1; }
check 2 sh -c 'exit 1' > /dev/null && { echo "FAIL: check accepted exit 1 for 2"; exit 1; }
check 2 sh -c 'echo "x: error: y" >&2; exit 2' || { echo "FAIL: check rejected a clean exit 2"; exit 1; }

# The inputs.
mkdir "$tmp/dir-empty" "$tmp/dir-good" "$tmp/dir-bad" "$tmp/dir-kernel" "$tmp/dir-fault"
perl -e 'srand(1); print map { chr(int(rand(256))) } 1..512' > "$tmp/random.trace"
cp "$tmp/random.trace" "$tmp/random-input"  # the same bytes as a fuzz input: valid
: > "$tmp/empty.trace"
: > "$tmp/empty-input"
cp "$root/corpus/traces/A3-lowest-window-first.trace" "$tmp/noread.trace"
chmod 000 "$tmp/noread.trace"
printf 'machine pages=64 pageblock_order=2\n' > "$tmp/file.trace"  # file.trace/x goes through it
mkfifo "$tmp/fifo.trace"
good=$(ls "$root"/corpus/traces/*.trace | head -3)
cp $good "$tmp/dir-good/"
mkdir "$tmp/dir-good/sub" "$tmp/dir-good/.git"
cp "$root/corpus/traces/A1-invalid-counts.trace" "$tmp/dir-good/sub/"
echo "not an input" > "$tmp/dir-good/README.md"
echo "[libfuzzer]" > "$tmp/dir-good/x.options"
echo '"kw"' > "$tmp/dir-good/x.dict"
echo "junk" > "$tmp/dir-good/.hidden.trace"
echo "junk" > "$tmp/dir-good/.git/HEAD"
cp $good "$tmp/dir-bad/"; cp "$tmp/random.trace" "$tmp/dir-bad/"
cp $(ls "$root"/corpus/kernel/*.trace | head -2) "$tmp/dir-kernel/"
cp "$root/corpus/zoo/claim_always.trace" "$root/corpus/traces/A1-invalid-counts.trace" "$tmp/dir-fault/"
kernel_trace=$(ls "$root"/corpus/kernel/*.trace | head -1)

bad_paths=("$tmp/dir-empty" "$tmp/dir-bad" "$tmp/missing.trace" "$tmp/empty.trace" "$tmp/random.trace"
           "$tmp/file.trace/x" "$tmp/fifo.trace")

# Every command that reads input files.
for p in "${bad_paths[@]}"; do
  run 2 "$bin" replay "$p"
  run 2 "$bin" replay -q --impl-only "$p"
  run 2 "$bin" decode "$p"
  run 2 "$bin" shrink "$p"
  run 2 "$bin" kreplay --script "$p"
  run 2 "$bin" replay "$root/corpus/traces/A1-invalid-counts.trace" "$p"  # a bad one among good ones
done
run 2 "$bin" kreplay --script "$tmp/dir-good"  # traces, but not kernel-checkable
# kreplay --results: kernel output to compare with; a readable file without any is inconclusive (3).
for p in "$tmp/dir-empty" "$tmp/missing.trace" "$tmp/file.trace/x" "$tmp/fifo.trace"; do
  run 2 "$bin" kreplay --results "$p" "$kernel_trace"
done
run 3 "$bin" kreplay --results "$tmp/empty.trace" "$kernel_trace"
run 3 "$bin" kreplay --results "$tmp/random.trace" "$kernel_trace"
# Commands and options that take a program or a directory to read.
for p in "${bad_paths[@]}" "$tmp/noread.trace"; do
  run 2 "$bin" zoo --engines fuzz-empty --seconds 1 --fault claim_always --fuzzer "$p"
  run 2 "$bin" zoo --engines properties --seconds 1 --fault claim_always --properties "$p"
done
for p in "$tmp/missing" "$tmp/empty.trace" "$tmp/file.trace/x"; do
  run 2 "$bin" kreplay --kernel-dir "$p" --script "$kernel_trace"
done
# Paths written to: a directory, a path through a file, a missing directory.
for p in "$tmp/dir-empty" "$tmp/file.trace/x" "$tmp/missing/out.csv"; do
  run 2 "$bin" zoo --engines random --seconds 1 --fault claim_always --csv "$p"
  run 2 "$bin" zoo --engines random --seconds 1 --fault claim_always --plot "$p"
  run 2 "$bin" sim --memory 64M --area 16M --trials 1 --no-progress --csv "$p"
  run 2 "$bin" sim --memory 64M --area 16M --trials 1 --no-progress --plot "$p"
done
for p in "$tmp/empty.trace" "$tmp/file.trace/x"; do
  run 2 "$bin" zoo --engines random --seconds 1 --fault claim_always --reproducers "$p"
  run 2 "$bin" kreplay --keep "$p" --results "$tmp/empty-input" "$kernel_trace"
done
# Commands that take no path.
run 2 "$bin" faults "$tmp/dir-good"
run 2 "$bin" help "$tmp/dir-good"
run 2 "$bin" "$tmp/dir-good"

# A file it may not read. Root reads through mode 000, so there drop to nobody when that
# user can run the binary (and say so when it cannot).
noread=("$bin")
if [ "$(id -u)" -eq 0 ]; then
  chmod 755 "$tmp"
  if command -v setpriv > /dev/null &&
     setpriv --reuid=65534 --regid=65534 --clear-groups "$bin" faults > /dev/null 2>&1; then
    noread=(setpriv --reuid=65534 --regid=65534 --clear-groups "$bin")
  else
    noread=()
    echo "skipped: unreadable file (running as root, and user nobody cannot run $bin)"
  fi
fi
if [ ${#noread[@]} -gt 0 ]; then
  for c in replay decode shrink "kreplay --script"; do
    # shellcheck disable=SC2086
    run 2 "${noread[@]}" $c "$tmp/noread.trace"
    grep -q "noread.trace: error: permission denied" "$tmp/err" || { echo "FAIL: $c: no permission message"; failures=$((failures + 1)); }
  done
  run 2 "${noread[@]}" kreplay --results "$tmp/noread.trace" "$kernel_trace"
fi

# Readable inputs are not errors.
run 0 "$bin" replay -q "$tmp/dir-good"
grep -q "^replay: 4 inputs: 4 passed, 0 failed, 0 malformed$" "$tmp/out" ||
  { echo "FAIL: replay of a directory: want 4 inputs (README.md, *.options, *.dict, hidden skipped): $(cat "$tmp/out")"; failures=$((failures + 1)); }
run 0 "$bin" decode "$tmp/dir-good"
[ "$(grep -c '^# decoded from ' "$tmp/out")" -eq 4 ] || { echo "FAIL: decode of a directory: want 4 traces"; failures=$((failures + 1)); }
run 1 "$bin" shrink -q "$tmp/dir-good"                                 # nothing in it fails
run 1 "$bin" replay -q --fault claim_always "$tmp/dir-fault"           # one input fails
run 0 "$bin" kreplay --script "$tmp/dir-kernel"
[ "$(grep -c '^# .*: kernel/run.sh SCRIPT' "$tmp/out")" -eq 2 ] || { echo "FAIL: kreplay --script of a directory: want 2 scripts"; failures=$((failures + 1)); }
run 2 "$bin" replay -q "$tmp/dir-bad"
grep -q "^replay: 4 inputs: 3 passed, 0 failed, 1 malformed$" "$tmp/out" ||
  { echo "FAIL: replay of a directory with a bad input: $(cat "$tmp/out")"; failures=$((failures + 1)); }
for p in "$tmp/random-input" "$tmp/empty-input"; do
  run 0 "$bin" replay -q "$p"   # every byte string is a valid fuzz input
  run 0 "$bin" decode "$p"
  run 1 "$bin" shrink -q "$p"   # it holds: nothing to shrink
done

echo "$checks checks, $failures failed"
[ $failures -eq 0 ] && [ $checks -gt 100 ]
