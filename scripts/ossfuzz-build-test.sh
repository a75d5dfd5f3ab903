#!/usr/bin/env bash
# Runs .clusterfuzzlite/build.sh locally with the variables OSS-Fuzz sets, then checks
# what lands in $OUT: each target, its seed corpus zip, dict and options, and that each
# target runs its seed corpus.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/cmacheck-ossfuzz-test}
rm -rf "$work"; mkdir -p "$work/out" "$work/work" "$work/src"
ln -s "$root" "$work/src/cmacheck"
flags="-O1 -fno-omit-frame-pointer -gline-tables-only -fsanitize=address -fsanitize-address-use-after-scope -fsanitize=fuzzer-no-link"
env SRC="$work/src" OUT="$work/out" WORK="$work/work" CC=clang-14 CXX=clang++-14 \
  CFLAGS="$flags" CXXFLAGS="$flags" LIB_FUZZING_ENGINE="-fsanitize=fuzzer" \
  bash "$root/.clusterfuzzlite/build.sh" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
for t in fuzz_lockstep fuzz_trace_parser fuzz_bitmap fuzz_buddy fuzz_concurrent; do
  for f in "$t" "${t}_seed_corpus.zip" "$t.options"; do
    [ -s "$work/out/$f" ] || { echo "missing \$OUT/$f"; exit 1; }
  done
  mkdir -p "$work/seeds/$t"
  (cd "$work/seeds/$t" && cmake -E tar xf "$work/out/${t}_seed_corpus.zip")
  n=$(ls "$work/seeds/$t" | wc -l)
  [ "$n" -gt 0 ] || { echo "empty seed corpus for $t"; exit 1; }
  "$work/out/$t" -runs=0 "$work/seeds/$t" >"$work/$t.log" 2>&1 || { tail -20 "$work/$t.log"; exit 1; }
  echo "$t: built, $n seeds, runs its corpus"
done
[ -s "$work/out/fuzz_trace_parser.dict" ] || { echo "missing fuzz_trace_parser.dict"; exit 1; }
