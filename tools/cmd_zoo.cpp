// `cmacheck zoo`: the historical CMA bugs as injected faults, each hunted from scratch by
// the lockstep fuzzer, the stateful property test and plain random traces.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "tools/commands.h"
#include "zoo/zoo.h"

namespace cmacheck::cli {
namespace {

const char* const kUsage =
    "usage: cmacheck zoo [OPTIONS]\n"
    "  For each injectable fault (see `cmacheck faults`), run each search engine from\n"
    "  scratch and report whether and how fast it finds the fault.\n"
    "  --seconds S        budget per fault and engine (default 60)\n"
    "  --fault NAME       only this fault (repeatable)\n"
    "  --engines LIST     comma-separated: fuzz-empty, fuzz-seeds, properties, random (default all)\n"
    "  --fuzzer PATH      the fuzz_lockstep binary (default build/fuzz/fuzz/fuzz_lockstep)\n"
    "  --properties PATH  the property-test binary (default build/dev/properties/properties_test)\n"
    "  --seed N           engine seed (default 1)\n"
    "  --csv FILE         also write the table as CSV\n"
    "  --plot FILE.svg    plot faults found against time to detect, one line per engine\n"
    "  --reproducers DIR  write each fault's smallest shrunk counterexample as DIR/FAULT.trace\n"
    "  Prints a Markdown table: fault, origin, engine, detected, time to detect, executions,\n"
    "  rule that fired, size of the shrunk counterexample. Exit 1 if a fault was not found.\n";

int run(int argc, char** argv) {
  zoo::ZooOptions o;
  o.seed_corpus = "corpus/fuzz_lockstep";
  std::string csv_path, plot_path;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "cmacheck zoo: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--seconds") {
      o.seconds = std::atof(value().c_str());
      if (!(o.seconds > 0)) {
        std::cerr << "cmacheck zoo: --seconds must be positive\n";
        return 2;
      }
    } else if (a == "--fault") {
      auto f = impl::fault_by_name(value());
      if (!f || *f == impl::Fault::none) {
        std::cerr << "cmacheck zoo: unknown fault (see `cmacheck faults`)\n";
        return 2;
      }
      o.faults.push_back(*f);
    } else if (a == "--engines") {
      o.engines.clear();
      std::string list = value();
      size_t pos = 0;
      while (pos <= list.size()) {
        size_t c = list.find(',', pos);
        auto e = zoo::engine_by_name(list.substr(pos, c == std::string::npos ? std::string::npos : c - pos));
        if (!e) {
          std::cerr << "cmacheck zoo: unknown engine in '" << list << "'\n";
          return 2;
        }
        o.engines.push_back(*e);
        if (c == std::string::npos) break;
        pos = c + 1;
      }
    } else if (a == "--fuzzer") {
      o.fuzzer = value();
    } else if (a == "--properties") {
      o.properties = value();
    } else if (a == "--seed") {
      o.seed = std::strtoull(value().c_str(), nullptr, 10);
    } else if (a == "--csv") {
      csv_path = value();
    } else if (a == "--plot") {
      plot_path = value();
    } else if (a == "--reproducers") {
      o.reproducers = value();
    } else {
      std::cerr << "cmacheck zoo: unknown option '" << a << "'\n" << kUsage;
      return 2;
    }
  }
  auto results = zoo::run_zoo(o, [](const std::string& s) { std::cerr << "\r\033[K" << s << std::flush; });
  std::cerr << "\r\033[K";
  std::cout << zoo::markdown_table(results);
  if (!csv_path.empty()) std::ofstream(csv_path) << zoo::csv(results);
  if (!plot_path.empty()) std::ofstream(plot_path) << zoo::svg(results, o.seconds);
  bool all = true;
  for (const auto& r : results) all &= r.detected || r.skipped;
  return all ? 0 : 1;
}

CommandRegistration reg({"zoo", "hunt every injected historical bug with every engine; time to detect", kUsage, run});

}  // namespace
}  // namespace cmacheck::cli
