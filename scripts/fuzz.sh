#!/usr/bin/env bash
# `make fuzz`: run one fuzz target on all cores for a while, from the committed seed
# corpus, showing libFuzzer's progress, then a summary. The search runs the build of
# FUZZ_PRESET (default fuzz-nosan: no sanitizers, the fastest at finding the zoo's faults,
# docs/performance.md); every input it kept is then re-run once under the fuzz preset
# (ASan+UBSan). A crash is kept in corpus/crashes/TARGET/ with its decoded and shrunk trace
# beside it, the command that reproduces it is printed, and the exit status is non-zero.
set -uo pipefail
target=${1:-fuzz_lockstep}; seconds=${2:-120}; jobs=${3:-$(nproc)}
root=$(cd "$(dirname "$0")/.." && pwd); cd "$root"
. scripts/fuzz-log.sh
preset=${FUZZ_PRESET:-fuzz-nosan}
bin=build/$preset/fuzz/$target
recheck_bin=build/fuzz/fuzz/$target
cli=build/release/tools/cmacheck
[ -x "$bin" ] || { echo "no fuzz target $bin (make fuzz-build FUZZ_PRESET=$preset; targets: $(ls build/$preset/fuzz 2>/dev/null | grep -v replay | grep ^fuzz_ | tr '\n' ' '))" >&2; exit 2; }
work=build/fuzz-work/$target; crashes=corpus/crashes/$target
mkdir -p "$work/corpus" "$crashes"
log=$work/log; : > "$log"
args=(-fork="$jobs" -max_total_time="$seconds" -artifact_prefix="$crashes/" -print_final_stats=1)
[ -f "fuzz/$target.dict" ] && args+=(-dict="fuzz/$target.dict")
if [ -f "fuzz/$target.options" ]; then
  while IFS='= ' read -r k v; do
    [[ "$k" =~ ^[a-z_]+$ ]] && [ -n "$v" ] && args+=(-"$k"="$v")
  done < <(grep -v '^\[' "fuzz/$target.options")
fi
before=$(ls "$crashes" 2>/dev/null | sort)
echo "fuzzing $target ($bin) on $jobs core(s) for ${seconds}s from corpus/$target (working corpus $work/corpus)"
[ -n "${CMACHECK_FAULT:-}" ] && echo "injected fault: $CMACHECK_FAULT"
start=$(date +%s)
touch "$work/started"
# Earlier findings' bytes are seeds too (their meaning may have moved with the generator
# version; their decoded .trace files are what ctest replays).
seeds=("corpus/$target")
[ -n "$(ls -A "$crashes" 2>/dev/null | grep -vE '\.(trace|md)$')" ] && seeds+=("$crashes")
"$bin" "${args[@]}" "$work/corpus" "${seeds[@]}" 2>&1 | tee "$log" |
  grep --line-buffered -E "$FUZZ_PROGRESS_RE|INFO: fuzzing|==[0-9]+== ERROR|cmacheck finding|VIOLATION" |
  sed -u -E 's/^(#[0-9]+):? +/  \1 /'
elapsed=$(( $(date +%s) - start ))
echo
fuzz_summary "$target" "$elapsed" "$jobs" "$log"
# The inputs this run kept, once under ASan+UBSan (scripts/fuzz-recheck.sh).
searched=$(ls "$crashes" 2>/dev/null | sort)
if [ "$bin" != "$recheck_bin" ]; then
  rm -rf "$work/recheck"; mkdir -p "$work/recheck"
  find "$work/corpus" -type f -newer "$work/started" -exec cp {} "$work/recheck/" \;
  if [ -z "$(ls -A "$work/recheck")" ]; then
    echo "no new inputs to re-check under ASan+UBSan"
  elif [ -x "$recheck_bin" ]; then
    recheck_args=(); for a in "${args[@]}"; do [[ "$a" =~ ^-(fork|max_total_time|artifact_prefix|print_final_stats)= ]] || recheck_args+=("$a"); done
    scripts/fuzz-recheck.sh "$recheck_bin" "$work/recheck" "$crashes" "$work/recheck.log" "${recheck_args[@]}"
  else
    echo "not re-checked under ASan+UBSan: $recheck_bin is not built (make fuzz-recheck-build)"
  fi
fi
new=$(comm -13 <(echo "$before") <(ls "$crashes" 2>/dev/null | sort) | grep -E '^(crash|leak|timeout|oom)-[0-9a-f]+$' || true)
if [ -z "$new" ]; then
  echo "no crash found"
  exit 0
fi
status=1
for c in $new; do
  f=$crashes/$c
  echo "CRASH: $f"
  if ! grep -qx "$c" <<<"$searched"; then
    # Found by the re-check alone: a sanitizer report, which only that build reproduces.
    echo "  found by the ASan+UBSan re-check; log: $work/recheck.log"
    echo "  reproduce:     $recheck_bin $f"
    continue
  fi
  if [ "$target" = fuzz_lockstep ] && [ -x "$cli" ]; then
    fault_args=(); for x in ${CMACHECK_FAULT//,/ }; do fault_args+=(--fault "$x"); done
    "$cli" decode "${fault_args[@]}" "$f" > "$f.trace"
    "$cli" shrink "${fault_args[@]}" "$f.trace" >/dev/null 2>&1 || true
    echo "  decoded trace: $f.trace"
    [ -f "$f.min.trace" ] && echo "  shrunk trace:  $f.min.trace ($(grep -cvE '^(#|machine|area)' "$f.min.trace") operations)"
    echo "  reproduce:     $cli replay ${fault_args[*]} $f"
  else
    echo "  reproduce:     build/dev/fuzz/${target}_replay $f"
  fi
done
exit $status
