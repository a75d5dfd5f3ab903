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

enum class Engine { random, fuzz_empty, fuzz_seeds, properties };
const char* name(Engine e);
std::optional<Engine> engine_by_name(const std::string& s);

struct ZooOptions {
  double seconds = 60;                 // per fault and engine
  std::vector<impl::Fault> faults;     // empty: all
  std::vector<Engine> engines = {Engine::fuzz_empty, Engine::fuzz_seeds, Engine::properties, Engine::random};
  std::string fuzzer;                  // fuzz_lockstep binary; empty: look beside cmacheck
  std::string properties;              // property-test binary; empty: look beside cmacheck
  std::string seed_corpus;             // corpus/fuzz_lockstep
  std::string work_dir = "build/zoo";  // scratch space for the fuzzer
  std::string reproducers;             // write each shrunk counterexample here as FAULT.trace
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

}  // namespace cmacheck::zoo
