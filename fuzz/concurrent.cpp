// fuzz_concurrent: bytes -> a concurrent program on 2-4 logical CPUs and its schedule, every
// step checked (docs/concurrency.md). The first choices pick the CPUs and the scheduler (a
// swarm: walk, PCT or bounded preemption), the next build the program, the rest decide at
// each step boundary. A finding prints the report and the trace with its `switch` lines,
// which replays it without the bytes, then aborts so that libFuzzer keeps the input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "check/concurrent.h"
#include "fuzz/fuzz_common.h"
#include "trace/print.h"

using namespace cmacheck;

namespace {
ConcurrentOptions g_options;
std::optional<Profile> g_profile;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_options.faults = fuzz::faults_from_env();
  g_profile = fuzz::profile_from_env();
  g_options.profile = g_profile;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteChoices in(std::span<const uint8_t>(data, size));
  const uint8_t cpus = static_cast<uint8_t>(2 + in.below(3));
  ConcurrentOptions o = g_options;
  o.kind = static_cast<ScheduleKind>(in.below(3));
  o.pct_depth = 1 + static_cast<uint32_t>(in.below(3));
  o.preemptions = 1 + static_cast<uint32_t>(in.below(2));
  const Trace t = generate_concurrent(in, cpus, g_profile);
  o.choices = &in;
  const ConcurrentResult r = run_concurrent(t, o);
  if (r.status == RunStatus::ok) return 0;
  std::fprintf(stderr, "\n==== cmacheck finding ====\n%s\n---- trace (replay: cmacheck replay FILE) ----\n%s----\n",
               r.finding ? r.finding->report.c_str() : r.malformed.c_str(), print_trace(r.ran).c_str());
  std::fflush(stderr);
  std::abort();
}
