#!/usr/bin/env bash
# `make coverage`: source-based coverage (llvm-cov) of impl/ and model/ from replaying the
# corpus alone (ctest label corpus: rule traces, fuzz seed corpora, crashes), then from
# the whole test suite. Writes an HTML report and prints a one-line summary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd); cd "$root"
b=build/coverage
cmake --build --preset coverage -j "$(nproc)" | grep -v '^\[' || true
objects=()
for o in $b/tools/cmacheck $b/fuzz/fuzz_lockstep_replay $b/fuzz/fuzz_trace_parser_replay \
         $b/fuzz/fuzz_bitmap_replay $b/fuzz/fuzz_buddy_replay $b/tests/unit_tests; do
  [ -x "$o" ] && objects+=("-object=$o")
done
run() {  # $1: name, rest: ctest arguments
  local name=$1; shift
  rm -rf "$b/prof-$name"; mkdir -p "$b/prof-$name"
  (cd $b && LLVM_PROFILE_FILE="$PWD/prof-$name/%p-%m.profraw" ctest -j "$(nproc)" "$@" >/dev/null) || true
  llvm-profdata-14 merge -sparse "$b/prof-$name"/*.profraw -o "$b/$name.profdata"
  for dir in impl model; do
    llvm-cov-14 report "${objects[@]:1}" "${objects[0]#-object=}" -instr-profile="$b/$name.profdata" \
      "$root/$dir" 2>/dev/null | awk -v d="$dir" -v n="$name" '/^TOTAL/ {
        printf "%-6s %-8s lines %s  branches %s  functions %s\n", d, n, $10, $13, $7 }'
  done
}
echo "coverage (llvm-cov, lines / branches / functions):"
run corpus -L "corpus|faults|zoo"
run all -E "fuzz_smoke|fuzz_canary|ossfuzz|properties"
llvm-cov-14 show "${objects[@]:1}" "${objects[0]#-object=}" -instr-profile="$b/corpus.profdata" \
  -format=html -output-dir="$b/html" "$root/impl" "$root/model" "$root/trace" "$root/check" >/dev/null
echo "HTML report (corpus alone): $b/html/index.html"
