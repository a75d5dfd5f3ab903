#!/usr/bin/env bash
# `make fuzz`: run one fuzz target on all cores for a while, from the committed seed
# corpus, showing libFuzzer's progress, then a summary. A crash is kept in
# corpus/crashes/TARGET/ with its decoded and shrunk trace beside it, the command that
# reproduces it is printed, and the exit status is non-zero.
set -uo pipefail
target=${1:-fuzz_lockstep}; seconds=${2:-120}; jobs=${3:-$(nproc)}
root=$(cd "$(dirname "$0")/.." && pwd); cd "$root"
. scripts/fuzz-log.sh
bin=build/fuzz/fuzz/$target
cli=build/release/tools/cmacheck
[ -x "$bin" ] || { echo "no fuzz target $target (known: $(ls build/fuzz/fuzz | grep -v replay | grep ^fuzz_ | tr '\n' ' '))" >&2; exit 2; }
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
echo "fuzzing $target on $jobs core(s) for ${seconds}s from corpus/$target (working corpus $work/corpus)"
[ -n "${CMACHECK_FAULT:-}" ] && echo "injected fault: $CMACHECK_FAULT"
start=$(date +%s)
"$bin" "${args[@]}" "$work/corpus" "corpus/$target" 2>&1 | tee "$log" |
  grep --line-buffered -E "$FUZZ_PROGRESS_RE|INFO: fuzzing|==[0-9]+== ERROR|cmacheck finding|VIOLATION" |
  sed -u -E 's/^(#[0-9]+):? +/  \1 /'
elapsed=$(( $(date +%s) - start ))
new=$(comm -13 <(echo "$before") <(ls "$crashes" 2>/dev/null | sort) | grep -E '^(crash|leak|timeout|oom)-[0-9a-f]+$' || true)
echo
fuzz_summary "$target" "$elapsed" "$jobs" "$log"
if [ -z "$new" ]; then
  echo "no crash found"
  exit 0
fi
status=1
for c in $new; do
  f=$crashes/$c
  echo "CRASH: $f"
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
