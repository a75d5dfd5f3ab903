# Reading libFuzzer's -fork output; sourced by scripts/fuzz.sh and tests/fuzz_summary_test.sh.
#
# In fork mode the parent prints one progress line per finished job, counting the
# executions of every job so far:
#   #65836: cov: 13150 ft: 11362 corp: 645 exec/s 57 oom/timeout/crash: 0/0/0 time: 9s job: 2 ...
# After a crash it also copies the crashing job's own log, whose lines
#   #13860<TAB>NEW    cov: 2287 ft: 9530 corp: 121/5337b ...
# count that one job from its start. The progress shown and the summary both read the
# parent's lines only, so that the summary's count is the last count the user saw.
FUZZ_PROGRESS_RE='^#[0-9]+: cov: '

# fuzz_log_stats LOG: "EXECUTIONS COVERAGE CORPUS" of the last progress line ("0 ? ?" if none).
fuzz_log_stats() {
  local last execs cov corp
  last=$(grep -E "$FUZZ_PROGRESS_RE" "$1" | tail -1)
  execs=$(echo "$last" | grep -oE '^#[0-9]+' | tr -d '#')
  cov=$(echo "$last" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+')
  corp=$(echo "$last" | grep -oE 'corp: [0-9]+' | grep -oE '[0-9]+')
  echo "${execs:-0} ${cov:-?} ${corp:-?}"
}

# fuzz_summary TARGET SECONDS JOBS LOG: the summary line of `make fuzz`.
fuzz_summary() {
  local target=$1 elapsed=$2 jobs=$3 execs cov corp rate
  read -r execs cov corp < <(fuzz_log_stats "$4")
  rate=$(( elapsed > 0 ? execs / elapsed : execs ))
  echo "summary: $target, ${elapsed}s on $jobs core(s): $execs inputs (~$rate/s, ~$(( rate / jobs ))/s per core), coverage $cov edges, corpus $corp inputs"
}
