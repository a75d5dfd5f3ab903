// `cmacheck zoo`: the historical CMA bugs as injected faults, each hunted from scratch by
// the lockstep fuzzer, the stateful property test and plain random traces.
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "tools/commands.h"
#include "zoo/zoo.h"

namespace cmacheck::cli {
namespace {

struct ZooArgs {
  zoo::ZooOptions zoo;
  std::vector<std::string> engines;
  std::string csv_path, plot_path;
};

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  if (!f) std::cerr << path << ": error: cannot write\n";
  return static_cast<bool>(f);
}

int run(ZooArgs& a) {
  zoo::ZooOptions& o = a.zoo;
  if (!a.engines.empty()) {
    // The sequential faults get the sequential engines named, the concurrent faults the
    // concurrent ones (race, fuzz-concurrent).
    o.engines.clear();
    o.concurrent_engines.clear();
    for (const auto& e : a.engines) {
      const zoo::Engine engine = *zoo::engine_by_name(e);
      const bool concurrent = zoo::is_concurrent(engine);
      (concurrent ? o.concurrent_engines : o.engines).push_back(engine);
    }
  }
  auto results = zoo::run_zoo(o, [](const std::string& s) { std::cerr << "\r\033[K" << s << std::flush; });
  std::cerr << "\r\033[K";
  std::cout << zoo::markdown_table(results);
  if (!a.csv_path.empty() && !write_file(a.csv_path, zoo::csv(results))) return kBadInput;
  if (!a.plot_path.empty() && !write_file(a.plot_path, zoo::svg(results, o.seconds))) return kBadInput;
  bool all = true;
  for (const auto& r : results) all &= r.detected || r.skipped;
  return all ? kHeld : kViolation;
}

Command add(CLI::App& parent) {
  CLI::App* cmd = parent.add_subcommand("zoo", "hunt every injected historical bug with every engine; time to detect");
  auto a = std::make_shared<ZooArgs>();
  a->zoo.seed_corpus = "corpus/fuzz_lockstep";
  cmd->add_option("--seconds", a->zoo.seconds, "budget per fault and engine")
      ->type_name("S")
      ->check(CLI::Validator(CLI::PositiveNumber).description(""))
      ->capture_default_str();
  add_fault_option(*cmd, a->zoo.faults, /*allow_none=*/false)->description("only this fault (repeatable)");
  add_profile_option(*cmd, a->zoo.profile);
  cmd->add_option("--engines", a->engines,
                  "comma-separated: fuzz-empty, fuzz-seeds, properties, random, explore for the sequential faults;\n"
                  "race, fuzz-concurrent, explore-concurrent for the concurrent ones (default all)")
      ->type_name("LIST")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->check(CLI::IsMember({"fuzz-empty", "fuzz-seeds", "properties", "random", "explore", "race", "fuzz-concurrent", "explore-concurrent"}).description(""));
  cmd->add_option("--fuzzer", a->zoo.fuzzer, "the fuzz_lockstep binary (default: the first built of build/fuzz-nosan, build/fuzz, build/dev)")
      ->type_name("PATH")
      ->check(kExecutable);
  cmd->add_option("--properties", a->zoo.properties,
                  "the property-test binary (default build/dev/properties/properties_test)")
      ->type_name("PATH")
      ->check(kExecutable);
  add_seed_option(*cmd, a->zoo.seed)->description("engine seed");
  cmd->add_option("--csv", a->csv_path, "also write the table as CSV")->type_name("FILE")->check(kOutputFile);
  cmd->add_option("--plot", a->plot_path, "plot faults found against time to detect, one line per engine")
      ->type_name("FILE.svg")
      ->check(kOutputFile);
  cmd->add_option("--explore-out", a->zoo.explore_out,
                  "write explore's first violation of each fault (a shortest one) as DIR/FAULT.trace")
      ->type_name("DIR")
      ->check(kOutputDir);
  cmd->add_option("--explore-depth", a->zoo.explore_depth, "explore's depth bound")
      ->type_name("D")
      ->check(CLI::Validator(CLI::Range(0u, 64u)).description(""))
      ->capture_default_str();
  cmd->add_option("--explore-preemptions", a->zoo.explore_preemptions, "explore-concurrent's preemption bound")
      ->type_name("K")
      ->check(CLI::Validator(CLI::Range(0u, 16u)).description(""))
      ->capture_default_str();
  cmd->add_option("--reproducers", a->zoo.reproducers, "write each fault's smallest shrunk counterexample as DIR/FAULT.trace")
      ->type_name("DIR")
      ->check(kOutputDir);
  cmd->footer(
      "For each injectable fault (see `cmacheck faults`), run each search engine from scratch and\n"
      "report whether and how fast it finds the fault. Prints a Markdown table: fault, origin, engine,\n"
      "detected, time to detect, executions, rule that fired, size of the shrunk counterexample, and for\n"
      "explore the depth (operations) of its first violation and the world it was found in.\n"
      "exit status: 0 every fault found, 1 a fault was not found, 2 bad input");
  return {cmd, [a] { return run(*a); }};
}

const Registration kZoo{add, 60};

}  // namespace
}  // namespace cmacheck::cli
