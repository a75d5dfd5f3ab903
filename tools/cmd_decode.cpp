// `cmacheck decode`: the trace a fuzz input stands for (a trace is printed as parsed).
#include <iostream>
#include <memory>

#include "check/replay.h"
#include "tools/commands.h"
#include "trace/generate.h"
#include "trace/print.h"

namespace cmacheck::cli {
namespace {

struct DecodeArgs {
  std::vector<std::string> paths;
  std::vector<impl::Fault> faults;
  std::optional<Profile> profile;
};

int run(const DecodeArgs& a) {
  std::vector<std::string> files;
  int status = expand_inputs(a.paths, InputKind::traces_and_fuzz_inputs, files, std::cerr) ? kHeld : kBadInput;
  RunOptions run;
  run.faults = fault_set(a.faults);
  run.profile = a.profile;
  for (const std::string& f : files) {
    Trace t;
    if (!load_trace(f, run, t, std::cerr)) {
      status = kBadInput;
      continue;
    }
    std::cout << "# decoded from " << f << " (generator version " << generator_version() << ")\n" << print_trace(t);
  }
  return status;
}

Command add(CLI::App& parent) {
  CLI::App* cmd = parent.add_subcommand("decode", "print the trace a fuzz input stands for");
  auto a = std::make_shared<DecodeArgs>();
  add_input_paths(*cmd, a->paths, "fuzz inputs (a .trace file is printed as parsed)");
  add_profile_option(*cmd, a->profile);
  add_fault_option(*cmd, a->faults)->description(
      "decode as under this injected fault (repeatable): decoding stops at the first finding, as the fuzzer does");
  cmd->footer(std::string(kDirectoryRule) +
              "Each trace is printed after a `# decoded from PATH (generator version N)` line; it replays to the\n"
              "same outcome.\n"
              "exit status: 0 all decoded, 2 an input unreadable or malformed (the others are still printed)");
  return {cmd, [a] { return run(*a); }};
}

const Registration kDecode{add, 20};

}  // namespace
}  // namespace cmacheck::cli
