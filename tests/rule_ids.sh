#!/bin/bash
# Rule ids (docs/semantics.md): every id cited anywhere in the repository is defined there,
# and every rule defined there is cited by a test or a corpus trace.
#
#   tests/rule_ids.sh SOURCE_DIR [--semantics FILE]   check (exit 0 ok, 1 findings, 2 usage)
#   tests/rule_ids.sh --self-test SOURCE_DIR          show that both checks fire
#
# An id is a capital letter of a rule family and one or two digits ("A4", "I10"), as a
# whole word; the families are the letters of the ids semantics.md defines. Ranges count
# for every id in them: "X1-X5", "A1–A4", "L1..L4". A definition is a line of
# semantics.md that starts with "- **ID" (a rule) or "| ID |" (a table row: invariants,
# historical bugs). A rule needs no citation by a test when its definition line says "not
# modelled", or when it is defined in a "## " section whose heading says "being
# implemented". Tests are tests/ and properties/; corpus traces are corpus/ (its *.trace and
# *.md files, not the fuzz corpora). Citations are searched in every tracked text file
# except the fuzz corpora, crash inputs, SVG pictures and this script (which names ids only
# to test itself). Plain grep/awk/sed: CI is a fresh Debian.
set -euo pipefail
export LC_ALL=C

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

usage() {
  echo "usage: $0 SOURCE_DIR [--semantics FILE] | $0 --self-test SOURCE_DIR" >&2
  exit 2
}

# Files to search, relative to $src, one per line.
list_files() {
  local src=$1
  if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$src" ls-files --cached --others --exclude-standard
  else
    (cd "$src" && find . -path ./build -prune -o -path ./.git -prune -o -type f -print | sed 's|^\./||')
  fi | grep -vE '^corpus/(fuzz_[^/]*|crashes/[^/]+)/|\.svg$|^tests/rule_ids\.sh$' |
    while IFS= read -r f; do [ -f "$src/$f" ] && printf '%s\n' "$f"; done
}

# "ID LINE EXEMPT" for every definition in semantics.md.
definitions() {
  awk '
    function flush() {
      if (id != "") print id, line, (exempt || text ~ /not modelled/) ? 1 : 0
      id = ""
    }
    /^## / { flush(); implementing = ($0 ~ /being implemented/); next }
    /^- \*\*[A-Z][0-9][0-9]*[* ]/ || /^\| [A-Z][0-9][0-9]* \|/ {
      flush()
      match($0, /[A-Z][0-9][0-9]*/)
      id = substr($0, RSTART, RLENGTH); line = NR; text = $0; exempt = implementing
      next
    }
    /^  / && id != "" { text = text " " $0; next }  # a bullet continues
    { flush() }
    END { flush() }' "$1"
}

# "FILE:LINE:ID" for every id cited in the files listed in $3 (paths relative to $1),
# ranges expanded. $2: the family letters.
citations() {
  local src=$1 fam=$2 files=$3
  local single="\\b[$fam][0-9]{1,2}\\b"
  local range="\\b[$fam][0-9]{1,2} ?(-|–|\\.\\.) ?[$fam]?[0-9]{1,2}\\b"
  (cd "$src" && xargs -r -d '\n' grep -IHonE "$single" -- <"$files" || true)
  (cd "$src" && xargs -r -d '\n' grep -IHonE "$range" -- <"$files" || true) |
    awk -F: '{
      text = $0; sub(/^[^:]*:[^:]*:/, "", text)
      letter = substr(text, 1, 1)
      match(text, /^[A-Z][0-9][0-9]*/); from = substr(text, 2, RLENGTH - 1) + 0
      rest = substr(text, RLENGTH + 1)
      match(rest, /[A-Z]?[0-9][0-9]*$/); last = substr(rest, RSTART, RLENGTH)
      if (last ~ /^[A-Z]/) { if (substr(last, 1, 1) != letter) next; last = substr(last, 2) }
      to = last + 0
      if (to <= from || to - from > 40) next
      for (n = from + 1; n < to; n++) print $1 ":" $2 ":" letter n
    }'
}

check() {
  local src=$1 semantics=$2
  [ -r "$semantics" ] || { echo "$semantics: error: cannot read the rules document" >&2; exit 2; }
  local shown=${semantics#"$src"/}
  local tmp=$WORK/check
  mkdir -p "$tmp"
  definitions "$semantics" >"$tmp/defs"
  [ -s "$tmp/defs" ] || { echo "$shown: error: defines no rule id" >&2; exit 2; }
  local fam; fam=$(cut -c1 "$tmp/defs" | sort -u | tr -d '\n')
  local failed=0

  # Each id is defined once.
  awk '{ n[$1]++; line[$1] = line[$1] " " $2 } END { for (id in n) if (n[id] > 1) print id, line[id] }' \
    "$tmp/defs" | sort | while read -r id lines; do
    echo "$shown: rule $id is defined more than once (lines$lines)"
  done >"$tmp/dups"
  if [ -s "$tmp/dups" ]; then cat "$tmp/dups"; failed=1; fi

  list_files "$src" >"$tmp/files"
  citations "$src" "$fam" "$tmp/files" | sort -u >"$tmp/cites"

  # Every cited id is defined.
  awk 'NR == FNR { def[$1] = 1; next }
       { id = $0; sub(/^.*:/, "", id); if (!(id in def)) print }' "$tmp/defs" "$tmp/cites" |
    sort -t: -k1,1 -k2,2n | awk -F: -v doc="$shown" '{ print $1 ":" $2 ": rule " $3 " is not defined in " doc }' \
    >"$tmp/undefined"
  if [ -s "$tmp/undefined" ]; then cat "$tmp/undefined"; failed=1; fi

  # Every rule that can be tested is cited by a test or a corpus trace.
  grep -E '^(tests|properties)/|^corpus/.*\.(trace|md):' "$tmp/cites" | sed 's/^.*://' | sort -u >"$tmp/tested"
  awk 'NR == FNR { tested[$1] = 1; next }
       $3 == 0 && !($1 in tested) { print $2, $1 }' "$tmp/tested" "$tmp/defs" | sort -n |
    while read -r line id; do
      echo "$shown:$line: rule $id is cited by no test (tests/, properties/) or corpus trace (corpus/)"
    done >"$tmp/untested"
  if [ -s "$tmp/untested" ]; then cat "$tmp/untested"; failed=1; fi

  local ndef nexempt nfiles
  ndef=$(wc -l <"$tmp/defs"); nexempt=$(awk '$3 == 1' "$tmp/defs" | wc -l)
  nfiles=$(cut -d: -f1 "$tmp/cites" | sort -u | wc -l)
  if [ "$failed" = 0 ]; then
    echo "rule ids: $ndef defined in $shown ($nexempt not modelled or being implemented), cited in $nfiles files; every citation defined, every testable rule tested"
  fi
  return "$failed"
}

# Runs the check on copies of semantics.md broken on purpose and expects each to be caught.
self_test() {
  local src=$1
  local semantics=$src/docs/semantics.md
  local tmp=$WORK/self-test
  mkdir -p "$tmp"
  local ok=1

  # 1. Remove the definition of a rule that tests cite: its citations must be reported.
  local id line
  read -r id line _ < <(awk '$3 == 0' <(definitions "$semantics") | head -n 1)
  sed "${line}d" "$semantics" >"$tmp/semantics.md"
  if out=$("$0" "$src" --semantics "$tmp/semantics.md" 2>&1); then
    echo "self-test: removing the definition of $id (line $line) was not caught"; ok=0
  elif ! grep -qE "^(tests|corpus|properties)/[^:]*:[0-9]+: rule $id is not defined" <<<"$out"; then
    echo "self-test: removing $id failed, but without naming a test that cites it:"; echo "$out"; ok=0
  else
    echo "self-test: removing the definition of $id is caught, e.g.: $(grep -m1 "rule $id is not defined" <<<"$out")"
  fi

  # 2. Add a rule no test cites: it must be reported with its line.
  cp "$semantics" "$tmp/semantics.md"
  printf '%s\n' '## 99. Self-test' '- **M99** a rule that no test cites.' >>"$tmp/semantics.md"
  local added; added=$(wc -l <"$tmp/semantics.md")
  if out=$("$0" "$src" --semantics "$tmp/semantics.md" 2>&1); then
    echo "self-test: an untested rule M99 was not caught"; ok=0
  elif ! grep -qF "semantics.md:$added: rule M99 is cited by no test" <<<"$out"; then
    echo "self-test: the untested rule M99 failed the check, but not as expected:"; echo "$out"; ok=0
  else
    echo "self-test: an untested rule is caught: $(grep -m1 'rule M99' <<<"$out")"
  fi

  # 3. The same rule marked "not modelled" needs no test.
  sed -i '$ s/$/ (not modelled)/' "$tmp/semantics.md"
  if ! out=$("$0" "$src" --semantics "$tmp/semantics.md" 2>&1); then
    echo "self-test: a rule marked 'not modelled' was still required to have a test:"; echo "$out"; ok=0
  else
    echo "self-test: a rule marked 'not modelled' needs no test"
  fi
  [ "$ok" = 1 ]
}

case "${1:-}" in
  --self-test)
    [ $# = 2 ] || usage
    self_test "$(cd "$2" && pwd)"
    ;;
  ""|-*) usage ;;
  *)
    src=$(cd "$1" && pwd); shift
    semantics=$src/docs/semantics.md
    if [ $# -gt 0 ]; then
      [ $# = 2 ] && [ "$1" = --semantics ] || usage
      semantics=$2
    fi
    check "$src" "$semantics"
    ;;
esac
