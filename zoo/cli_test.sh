#!/usr/bin/env bash
# `cmacheck zoo` end to end with the cheapest engine: plain random traces must find every
# fault of the zoo (exit 0), the CSV has one row per fault, all detected, and the plot
# says so too. A fault that became undetectable, or a broken table or plot, fails here.
set -euo pipefail
cli=$1; work=$2
rm -rf "$work"; mkdir -p "$work"
"$cli" zoo --engines random --seconds 20 --csv "$work/zoo.csv" --plot "$work/zoo.svg" > "$work/zoo.md" 2> /dev/null
# (the sequential faults: the concurrent ones, listed after them, have engines of their own)
faults=$("$cli" faults | sed '/^Concurrent faults/q' | grep -cE '^[a-z0-9_]+$' || true)
rows=$(tail -n +2 "$work/zoo.csv" | wc -l)
found=$(tail -n +2 "$work/zoo.csv" | awk -F, '$3 == "yes"' | wc -l)
echo "faults listed: $faults, rows: $rows, found: $found"
[ "$rows" -ge 16 ] && [ "$found" -eq "$rows" ] || { cat "$work/zoo.md"; exit 1; }
[ "$faults" -eq "$rows" ] || { echo "cmacheck faults lists $faults, the zoo ran $rows"; exit 1; }
grep -q "<svg" "$work/zoo.svg" && grep -q "random ($rows/$rows)" "$work/zoo.svg" || { echo "plot does not show $rows/$rows"; exit 1; }
grep -q "^| fault | origin | engine | detected" "$work/zoo.md"
