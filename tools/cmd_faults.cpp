// `cmacheck faults`: the injectable impl faults (the bug zoo, impl/faults.h).
#include <iostream>

#include "tools/commands.h"

namespace cmacheck::cli {
namespace {

int run() {
  for (const auto& f : impl::all_faults()) {
    std::cout << f.name << "\n  origin:   " << f.origin << "\n  does:     " << f.description
              << "\n  caught by: " << f.caught_by << "\n  reproducer: corpus/zoo/" << f.name << ".trace\n";
  }
  std::cout << "\nConcurrent faults (docs/concurrency.md; engines race and fuzz-concurrent):\n";
  for (const auto& f : impl::concurrent_faults()) {
    std::cout << f.name << "\n  origin:   " << f.origin << "\n  does:     " << f.description
              << "\n  caught by: " << f.caught_by << "\n  reproducer: corpus/faults/" << f.name << ".trace\n";
  }
  return kHeld;
}

Command add(CLI::App& parent) {
  CLI::App* cmd = parent.add_subcommand("faults", "list the injectable impl faults (the bug zoo)");
  cmd->footer("Each fault: its name (for --fault), the kernel change it re-creates, what it does, the rule\n"
              "expected to catch it and its reproducer.");
  return {cmd, run};
}

const Registration kFaults{add, 40};

}  // namespace
}  // namespace cmacheck::cli
