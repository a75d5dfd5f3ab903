// fuzz_lockstep: bytes -> the shared generator -> impl and model in lockstep with every
// invariant. The main target. A finding prints the report and the decoded trace, then
// aborts so that libFuzzer keeps the input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "check/decode.h"
#include "fuzz/fuzz_common.h"
#include "trace/print.h"

using namespace cmacheck;

namespace {
RunOptions g_options;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_options.faults = fuzz::faults_from_env();
  g_options.profile = fuzz::profile_from_env();
  g_options.full_every = 16;
  // The model's self-check costs about as much as a short input: once every 1024 operations
  // it adds under 3 % (docs/performance.md); replay and the properties run it every 64.
  g_options.self_check_every = 1024;
  g_options.self_check_at_end = false;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Trace trace;
  RunResult r = run_bytes(std::span<const uint8_t>(data, size), g_options, &trace);
  if (r.status == RunStatus::ok) return 0;
  std::fprintf(stderr, "\n==== cmacheck finding ====\n%s\n---- decoded trace ----\n%s----\n",
               r.finding ? r.finding->report.c_str() : r.malformed.c_str(), print_trace(trace).c_str());
  std::fflush(stderr);
  std::abort();
}
