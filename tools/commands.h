// The command line's shared parts. Each subcommand lives in its own tools/cmd_*.cpp and
// registers itself with one function that adds its CLI11 subcommand:
//
//   cli::Command add_replay(CLI::App& parent) {
//     CLI::App* cmd = parent.add_subcommand("replay", "run traces ...");
//     auto o = std::make_shared<ReplayArgs>();       // the options' storage, owned by the run
//     cli::add_fault_option(*cmd, o->faults);          // options shared by several commands
//     cmd->add_option("--full-every", o->full_every, "...")->check(CLI::Range(1u, 1u << 30));
//     return {cmd, [o] { return run(*o); }};           // the exit status
//   }
//   const cli::Registration kReplay{add_replay, 10};  // 10: its place in `cmacheck --help`
//
// Options that several commands take (--fault, --seed, -j) are spelled, checked and
// described once, below; a new shared option (--profile) belongs here too.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "impl/faults.h"
#include "trace/units.h"

namespace cmacheck::cli {

// Exit statuses of every command.
inline constexpr int kHeld = 0;       // everything held (or the command did its job)
inline constexpr int kViolation = 1;  // a violation or failed expectation
inline constexpr int kBadInput = 2;   // bad input: `PATH: error: ...` or `cmacheck: error: ...`

// A subcommand as registered: its CLI11 app and what runs once its options are parsed.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

using AddCommand = Command (*)(CLI::App& parent);

// A static registration in a tools/cmd_*.cpp; `rank` orders `cmacheck --help`.
struct Registration {
  Registration(AddCommand add, int rank);
};

struct Registered {
  AddCommand add;
  int rank;
};
std::vector<Registered>& registry();

// "cmacheck: error: MESSAGE" on stderr; returns kBadInput. For bad input found after
// parsing (options that contradict each other).
int usage_error(const std::string& message);

// --fault NAME, repeatable: an injected impl fault (impl/faults.h). `allow_none` accepts
// the name `none` (no fault), which replay has always accepted.
CLI::Option* add_fault_option(CLI::App& cmd, std::vector<impl::Fault>& faults, bool allow_none = true);
impl::FaultSet fault_set(const std::vector<impl::Fault>& faults);

// --profile linux-6.1|linux-6.12: the kernel whose rules apply (docs/semantics.md, "Kernel
// profiles"); for a trace it replaces the trace's own `profile=`, for generated traces
// (fuzz inputs, the zoo, the simulator) it fixes what would otherwise be a swarm choice.
CLI::Option* add_profile_option(CLI::App& cmd, std::optional<Profile>& profile);

// --seed N: a 64-bit seed (decimal or 0x hex); the same seed gives the same output.
CLI::Option* add_seed_option(CLI::App& cmd, uint64_t& seed);

// -j N (with a long name: --jobs, or --threads where that is the command's old spelling):
// worker threads; 0 = all cores. Results never depend on it.
CLI::Option* add_jobs_option(CLI::App& cmd, unsigned& jobs, const std::string& long_name = "--jobs");

// Paths a command writes: a file whose directory exists and which is not a directory; a
// directory that may be created (not an existing non-directory).
extern const CLI::Validator kOutputFile;
extern const CLI::Validator kOutputDir;
// A program a command runs: an executable regular file.
extern const CLI::Validator kExecutable;

// "FILE... (a DIR stands for ...)" positional input paths.
CLI::Option* add_input_paths(CLI::App& cmd, std::vector<std::string>& paths, const std::string& what);

}  // namespace cmacheck::cli
