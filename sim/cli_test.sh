#!/usr/bin/env bash
# `cmacheck sim` from the outside: a small run prints the table and writes CSV and SVG,
# bad input exits 2, a broken allocator exits 1 with the rule it broke.
set -u
bin=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
small=(--memory 64M --area 16M --trials 3 --no-progress)

"$bin" sim "${small[@]}" --csv "$tmp/r.csv" --plot "$tmp/r.svg" > "$tmp/out" 2> "$tmp/err"; rc=$?
[ $rc -eq 0 ] || fail "small run: exit $rc: $(cat "$tmp/err")"
grep -q "^| 8 MiB | no reservation | " "$tmp/out" || fail "no table row: $(cat "$tmp/out")"
grep -q "trials/s" "$tmp/err" || fail "no timing on stderr"
[ "$(wc -l < "$tmp/r.csv")" -eq 9 ] || fail "csv has $(wc -l < "$tmp/r.csv") lines, want 9"
grep -q "</svg>" "$tmp/r.svg" || fail "no svg"

# --compare-profiles: both profiles with one seed, the side-by-side table, one CSV, one plot.
"$bin" sim "${small[@]}" --compare-profiles --csv "$tmp/p.csv" --plot "$tmp/p.svg" > "$tmp/out" 2> "$tmp/err"; rc=$?
[ $rc -eq 0 ] || fail "--compare-profiles: exit $rc: $(cat "$tmp/err")"
grep -q "kernel profile linux-6.1:" "$tmp/out" || fail "--compare-profiles: no linux-6.1 table"
grep -q "kernel profile linux-6.12:" "$tmp/out" || fail "--compare-profiles: no linux-6.12 table"
grep -q "^| 8 MiB | no reservation | .* | .* |" "$tmp/out" || fail "--compare-profiles: no side-by-side row"
[ "$(grep -c '^linux-6.1,' "$tmp/p.csv")" -eq 8 ] && [ "$(grep -c '^linux-6.12,' "$tmp/p.csv")" -eq 8 ] ||
  fail "--compare-profiles: csv rows per profile: $(cut -d, -f1 "$tmp/p.csv" | sort | uniq -c | tr '\n' ' ')"
grep -q "(linux-6.12)</text>" "$tmp/p.svg" || fail "--compare-profiles: the plot has no linux-6.12 series"
"$bin" sim "${small[@]}" --compare-profiles --profile linux-6.1 > /dev/null 2>&1 && fail "--compare-profiles with --profile accepted"
"$bin" sim "${small[@]}" --profile linux-6.12 | grep -q "kernel profile linux-6.12:" || fail "--profile linux-6.12 not in the table"

"$bin" sim "${small[@]}" --threads 1 > "$tmp/one" 2>/dev/null
"$bin" sim "${small[@]}" --threads 3 > "$tmp/three" 2>/dev/null
cmp -s "$tmp/one" "$tmp/three" || fail "output depends on --threads"

# --background: a second CPU during the request; the table gains the transient failures.
"$bin" sim "${small[@]}" --background 50 --pcp 32 > "$tmp/out" 2> "$tmp/err"; rc=$?
[ $rc -eq 0 ] || fail "--background: exit $rc: $(cat "$tmp/err")"
grep -q "A second CPU during the request: 50 %" "$tmp/out" || fail "--background: not in the workload line: $(head -3 "$tmp/out")"
grep -q "failed: pinned / no target / unmovable / transient |" "$tmp/out" || fail "--background: no transient column"

for bad in "--utilisation 120" "--memory 3K" "--orders 0:x" "--preset nonsense" "--sizes 1G" "--bogus" "--fault nonsense" "--background 100"; do
  # shellcheck disable=SC2086
  "$bin" sim "${small[@]}" $bad > /dev/null 2> "$tmp/err"; rc=$?
  [ $rc -eq 2 ] || fail "'$bad': exit $rc, want 2"
  grep -q "cmacheck: error: " "$tmp/err" || fail "'$bad': no message"
done

"$bin" sim "${small[@]}" --fault migration_drops_content > /dev/null 2> "$tmp/err"; rc=$?
[ $rc -eq 1 ] || fail "faulty allocator: exit $rc, want 1"
grep -q "VIOLATION.*: .*I8" "$tmp/err" || fail "faulty allocator: $(cat "$tmp/err")"

"$bin" sim --help | grep -q "phone-2012" || fail "--help lists the presets"
"$bin" --help | grep -q "^  sim " || fail "cmacheck --help lists sim"
echo ok
