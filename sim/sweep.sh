#!/usr/bin/env bash
# Regenerates the figures of docs/success-rates.md: one default run (table, CSV, SVG) and the
# sensitivity sweep (one knob at a time, the others at their defaults). Deterministic for a
# given binary: every run uses seed 1. Takes about 15 minutes on two idle cores.
#   sim/sweep.sh [BIN] [OUTDIR]     (defaults: build/release/tools/cmacheck, build/sweep)
set -euo pipefail
bin=${1:-build/release/tools/cmacheck}
out=${2:-build/sweep}
trials=${SWEEP_TRIALS:-12}
mkdir -p "$out"

run() {  # NAME ARGS...: one point of the sweep
  local name=$1
  shift
  if [ ! -s "$out/$name.csv" ]; then
    "$bin" sim --no-progress --trials "$trials" --csv "$out/$name.csv" "$@" > "$out/$name.md" 2> "$out/$name.err"
    echo "$name: $(tail -1 "$out/$name.err")"
  fi
}

# The default run of the doc: default trial count, table, CSV and plot.
if [ ! -s "$out/default.csv" ]; then
  /usr/bin/time -f "%e s wall, %U s user" "$bin" sim --no-progress --csv "$out/default.csv" --plot "$out/default.svg" \
    > "$out/default.md" 2> "$out/default.err"
  cat "$out/default.err"
fi

for u in 50 65 90 95; do run "util-$u" --utilisation "$u"; done
run util-80 --utilisation 80
for m in 2 5 20 30; do run "unmovable-$m" --unmovable "$m"; done
for p in 0 0.5 1 5; do run "pins-$p" --pin-short "$p" --pin-long "$p"; done
for a in 0.5 2 4 8; do run "aging-$a" --aging "$a" --config no-reservation; done
run peak-99.7 --peak 99.7
run phone-2012 --preset phone-2012 --trials 200

# One Markdown table: a row per point, success rates per size and configuration.
python3 - "$out" <<'EOF'
import csv, glob, os, sys
out = sys.argv[1]
def key(name):
    knob, _, v = name.partition("-")
    order = ["util", "unmovable", "pins", "aging", "peak", "phone"]
    return (order.index(knob) if knob in order else 99, float(v) if v.replace(".", "").isdigit() else 0)
names = sorted((os.path.basename(p)[:-4] for p in glob.glob(f"{out}/*.csv") if not p.endswith("default.csv")), key=key)
print("| point | reservation 1 / 2 / 4 / 8 MiB | no reservation 1 / 2 / 4 / 8 MiB | clean windows 1 / 2 / 4 / 8 MiB | windows tried, 8 MiB (res / no res) |")
print("|---|---|---|---|---|")
for n in names:
    rows = list(csv.DictReader(open(f"{out}/{n}.csv")))
    def col(cfg, field, fmt):
        vals = [fmt(r) for r in rows if r["configuration"] == cfg]
        return " / ".join(vals) if vals else "–"
    rate = lambda r: f"{100 * float(r['rate']):.0f}"
    clean = lambda r: f"{100 * float(r['clean_share']):.1f}"
    last = lambda cfg: next((f"{float(r['windows_mean']):.0f}" for r in reversed(rows) if r["configuration"] == cfg), "–")
    print(f"| {n} | {col('reservation', 'rate', rate)} | {col('no reservation', 'rate', rate)} | "
          f"{col('no reservation', 'clean_share', clean)} | {last('reservation')} / {last('no reservation')} |")
EOF
