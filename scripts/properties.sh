#!/usr/bin/env bash
# `make properties`: every RapidCheck property of docs/properties.md with a generous budget,
# then the proof that each one bites (an injected fault makes it fail, and its counterexample
# replays). Honours RC_PARAMS (seed, max_success, ...): keys you set win; the defaults below
# fill the rest. Without a seed RapidCheck picks a new one each run and prints it.
#
#   make properties                                   # default budget
#   RC_PARAMS="seed=42 max_success=5000" make properties
#   scripts/properties.sh --gtest_filter='Liveness.*' # gtest options pass through
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/build/dev/properties"
for bin in properties_test properties_bite_test; do
  [ -x "$dir/$bin" ] || { echo "properties.sh: $dir/$bin is missing; build the dev preset first (make build)" >&2; exit 2; }
done

params="${RC_PARAMS:-}"
[[ " $params" == *" max_success="* ]] || params="$params max_success=${PROPERTIES_MAX_SUCCESS:-5000}"
# Debian's RapidCheck snapshot trips UBSan above max_size 100.
[[ " $params" == *" max_size="* ]] || params="$params max_size=100"
export RC_PARAMS="${params# }"
echo "== properties (RC_PARAMS=\"$RC_PARAMS\")"
start=$SECONDS
status=0
"$dir/properties_test" "$@" || status=$?
echo "== properties: $((SECONDS - start)) s"

if [ $# -eq 0 ]; then
  echo "== proof they bite (fixed seed; counterexamples in $dir/bite/)"
  start=$SECONDS
  "$dir/properties_bite_test" || status=$?
  echo "== proof they bite: $((SECONDS - start)) s"
fi
new=$(find "$root/corpus/properties" -name '*.trace' -newer "$dir/properties_test" 2>/dev/null || true)
if [ -n "$new" ]; then
  echo "== new counterexamples (replay each with build/dev/tools/cmacheck replay FILE):"
  echo "$new"
fi
exit $status
