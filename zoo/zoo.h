// The bug zoo (issue 7): for each injectable fault, run the search engines against it
// from scratch and measure how fast each finds it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "impl/faults.h"
#include "trace/trace.h"

namespace cmacheck::zoo {

// race, fuzz-concurrent and explore-concurrent run concurrent programs (docs/concurrency.md);
// they are the engines of the concurrent faults (impl::concurrent_faults()).
enum class Engine { random, fuzz_empty, fuzz_seeds, properties, explore, race, fuzz_concurrent, explore_concurrent };
bool is_concurrent(Engine e);
const char* name(Engine e);
std::optional<Engine> engine_by_name(const std::string& s);

struct ZooOptions {
  double seconds = 60;                 // per fault and engine
  std::vector<impl::Fault> faults;     // empty: all
  std::vector<Engine> engines = {Engine::fuzz_empty, Engine::fuzz_seeds, Engine::properties, Engine::random,
                                 Engine::explore};
  // The engines of the concurrent faults (used when `faults` is empty or names one of them).
  std::vector<Engine> concurrent_engines = {Engine::race, Engine::fuzz_concurrent, Engine::explore_concurrent};
  std::string fuzzer;                  // fuzz_lockstep binary; empty: look beside cmacheck
  std::string concurrent_fuzzer;       // fuzz_concurrent binary; empty: look beside cmacheck
  std::string properties;              // property-test binary; empty: look beside cmacheck
  std::string seed_corpus;             // corpus/fuzz_lockstep
  std::string work_dir = "build/zoo";  // scratch space for the fuzzer
  std::string reproducers;             // write each shrunk counterexample here as FAULT.trace
  std::string explore_out;             // write explore's first violation here as FAULT.trace
  unsigned explore_depth = 6;          // explore's depth bound
  unsigned explore_preemptions = 2;    // explore-concurrent's preemption bound
  uint64_t seed = 1;
  std::optional<Profile> profile;      // every engine's traces of this kernel profile; none: mixed
};

struct ZooResult {
  impl::Fault fault = impl::Fault::none;
  Engine engine = Engine::random;
  bool detected = false;
  bool skipped = false;  // engine not available (binary missing)
  double seconds = 0;    // time to detect (or the budget spent)
  uint64_t executions = 0;
  std::string rule;      // rule that fired
  size_t shrunk_statements = 0;
  int depth = -1;        // explore: operations in its first violation (a shortest one)
  std::string world;     // explore: the world it was found in
  int preemptions = -1;  // explore-concurrent: preemptions of its first violation (the fewest)
  std::string note;
};

// Runs every selected engine on every selected fault; `progress` gets a one-line status.
std::vector<ZooResult> run_zoo(const ZooOptions& options, const std::function<void(const std::string&)>& progress);

std::string markdown_table(const std::vector<ZooResult>& results);
std::string csv(const std::vector<ZooResult>& results);
// Faults found within a time, one step line per engine (log time axis up to the budget).
std::string svg(const std::vector<ZooResult>& results, double budget_seconds);

// Plain random traces (SeededChoices through the shared generator) until a finding.
ZooResult run_random(impl::Fault fault, double seconds, uint64_t seed, Trace* counterexample,
                     std::optional<Profile> profile = {});

// cmacheck explore over the zoo's worlds (explore::zoo_worlds()), deepening one level at a
// time across all of them, so that the first finding has the fewest operations of any.
// Its worlds are of `profile` (the zoo's --profile; linux-6.1 when none is given).
ZooResult run_explore(impl::Fault fault, double seconds, unsigned max_depth, Trace* counterexample,
                      std::string* counterexample_text = nullptr, Profile profile = Profile::linux_6_1);

// explore --cpus 2 over the concurrent worlds (explore::zoo_concurrent_worlds()): one
// operation per CPU, every schedule with 0 preemptions in every world, then 1, then 2, so
// that the first finding has the fewest preemptions of any. `profile`: every world's; none:
// each world's own (duo-steal is linux-6.12, the others linux-6.1).
ZooResult run_explore_concurrent(impl::Fault fault, double seconds, unsigned max_preemptions, Trace* counterexample,
                                 std::string* counterexample_text = nullptr, std::optional<Profile> profile = {});

}  // namespace cmacheck::zoo
