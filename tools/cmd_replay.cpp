// `cmacheck replay`: run traces and fuzz inputs on impl and model in lockstep.
#include <iostream>
#include <memory>

#include "check/replay.h"
#include "tools/commands.h"

namespace cmacheck::cli {
namespace {

struct ReplayArgs {
  std::vector<std::string> paths;
  std::vector<impl::Fault> faults;
  ReplayOptions replay;
  bool expect_violation = false;
};

int run(ReplayArgs& a) {
  a.replay.run.faults = fault_set(a.faults);
  std::vector<std::string> files;
  const bool listed = expand_inputs(a.paths, InputKind::traces_and_fuzz_inputs, files, std::cerr);
  int status = replay_files(files, a.replay, std::cout, std::cerr);
  if (!listed) status = kBadInput;
  if (a.expect_violation) {
    if (status == kViolation) return kHeld;
    if (status == kHeld) std::cerr << "cmacheck: expected a violation, but everything held\n";
    return status == kHeld ? kViolation : status;
  }
  return status;
}

Command add(CLI::App& parent) {
  CLI::App* cmd = parent.add_subcommand("replay", "run traces (or fuzz inputs) on impl and model in lockstep");
  auto a = std::make_shared<ReplayArgs>();
  add_input_paths(*cmd, a->paths,
                  "a FILE ending in .trace is a trace; any other file is a fuzz input, decoded first");
  cmd->add_flag("-q,--quiet", a->replay.quiet, "print only failures (and, for several inputs, the summary)");
  cmd->add_flag_callback("--impl-only", [a] { a->replay.run.lockstep = false; },
                         "run impl/ alone (no model), checking invariants and expectations");
  add_fault_option(*cmd, a->faults);
  add_profile_option(*cmd, a->replay.run.profile);
  cmd->add_option("--full-every", a->replay.run.full_every, "full-tier invariant checks every N operations (1 = always)")
      ->type_name("N")
      ->check(CLI::Validator(CLI::Range(1u, UINT32_MAX)).description(""))
      ->capture_default_str();
  cmd->add_flag("--expect-violation", a->expect_violation, "exit 0 if a violation was found and 1 if not (fault tests)");
  cmd->footer(std::string(kDirectoryRule) +
              "Several inputs end with a summary: N passed, M failed, K malformed.\n"
              "exit status: the worst of all inputs: 0 everything held (a concurrent trace whose model comparison\n"
              "was inconclusive: impl's checks held, and its last line says so), 1 a violation or failed expectation,\n"
              "2 an input unreadable or malformed (`PATH: error: ...`, `FILE:LINE: error: ...`)");
  return {cmd, [a] { return run(*a); }};
}

const Registration kReplay{add, 10};

}  // namespace
}  // namespace cmacheck::cli
