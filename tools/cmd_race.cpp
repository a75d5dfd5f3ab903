// `cmacheck race`: random concurrent programs under random schedules on 2-4 logical CPUs,
// every step checked (docs/concurrency.md). A finding is shrunk and written as a trace whose
// `switch` lines replay the interleaving exactly.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "check/concurrent.h"
#include "tools/commands.h"
#include "trace/print.h"

namespace cmacheck::cli {
namespace {

struct RaceArgs {
  RaceOptions options;
  std::vector<impl::Fault> faults;
  unsigned cpus = 0;  // (RaceOptions::cpus is a uint8_t, which CLI11 would print as a character)
  std::string schedule = "swarm";
  std::string out_dir = "corpus/concurrent";
  std::string inconclusive_dir;
  bool quiet = false;
};

int run(RaceArgs& a) {
  RaceOptions& o = a.options;
  o.faults = fault_set(a.faults);
  o.cpus = static_cast<uint8_t>(a.cpus);
  if (a.schedule != "swarm") o.kind = schedule_kind_by_name(a.schedule);
  if (!a.quiet && isatty(STDERR_FILENO))
    o.progress = [](uint64_t programs, uint64_t runs, double seconds) {
      std::fprintf(stderr, "\r\033[K%llu programs, %llu schedules, %.0f schedules/s",
                   static_cast<unsigned long long>(programs), static_cast<unsigned long long>(runs),
                   seconds > 0 ? static_cast<double>(runs) / seconds : 0.0);
    };
  std::cout << "race: seed " << o.seed << ", " << (o.cpus ? std::to_string(o.cpus) : std::string("2-4"))
            << " CPUs, schedule " << a.schedule << "\n";
  const RaceResult r = race(o);
  if (o.progress) std::fprintf(stderr, "\r\033[K");
  std::printf("race: %llu programs, %llu schedules, %llu steps in %.1f s (%.0f schedules/s); %llu inconclusive\n",
              static_cast<unsigned long long>(r.programs), static_cast<unsigned long long>(r.runs),
              static_cast<unsigned long long>(r.steps), r.seconds, r.seconds > 0 ? static_cast<double>(r.runs) / r.seconds : 0.0,
              static_cast<unsigned long long>(r.inconclusive));
  std::printf("choice points: %llu offered, %llu boundaries passed over (the next steps commuted)\n",
              static_cast<unsigned long long>(r.choices_offered), static_cast<unsigned long long>(r.choices_commuting));
  std::printf("audit: %llu segments departed from the commit order, %llu of them linearized in another order\n",
              static_cast<unsigned long long>(r.audits), static_cast<unsigned long long>(r.audited));
  if (!r.inconclusive_kinds.empty()) {
    std::vector<std::pair<std::string, RaceResult::InconclusiveKind>> kinds(r.inconclusive_kinds.begin(), r.inconclusive_kinds.end());
    std::stable_sort(kinds.begin(), kinds.end(), [](const auto& a, const auto& b) { return a.second.count > b.second.count; });
    std::printf("inconclusive, by kind (count, first program seed/schedule, kind):\n");
    for (size_t i = 0; i < kinds.size(); ++i) {
      const auto& [kind, k] = kinds[i];
      std::printf("  %8llu  %016llx/%u  %s\n", static_cast<unsigned long long>(k.count),
                  static_cast<unsigned long long>(k.program_seed), k.schedule, kind.c_str());
      if (a.inconclusive_dir.empty()) continue;
      std::filesystem::create_directories(a.inconclusive_dir);
      char name[64];
      std::snprintf(name, sizeof name, "inconclusive-%03zu-%016llx-%u.trace", i + 1,
                    static_cast<unsigned long long>(k.program_seed), k.schedule);
      const std::string path = (std::filesystem::path(a.inconclusive_dir) / name).string();
      std::ofstream f(path);
      f << "# inconclusive in cmacheck race --seed " << o.seed << " (" << k.count << " runs of this kind)\n# "
        << k.example << "\n" << print_trace(k.ran);
      if (!f) std::fprintf(stderr, "%s: error: cannot write\n", path.c_str());
    }
    if (!a.inconclusive_dir.empty() && r.first_audited) {
      std::ofstream f(std::filesystem::path(a.inconclusive_dir) / "audited-first.trace");
      f << "# the first run whose commit order departed and the audit linearized\n" << print_trace(*r.first_audited);
    }
    if (!a.inconclusive_dir.empty())
      std::printf("the first run of each kind written to %s (cmacheck replay FILE shows it)\n", a.inconclusive_dir.c_str());
  }
  std::fflush(stdout);
  if (!r.finding) {
    std::cout << "race: no violation\n";
    return kHeld;
  }
  const Trace& shown = o.shrink ? r.shrunk : r.finding->ran;
  std::cout << r.finding->finding->report;
  std::cout << "trace (" << (o.shrink ? "shrunk" : "as it ran") << "):\n" << print_trace(shown);
  if (!a.out_dir.empty()) {
    std::filesystem::create_directories(a.out_dir);
    std::string stem = "found-" + r.finding->finding->violation.rule;
    for (char& c : stem)
      if (c == '\'') c = 'p';
    char seed[32];
    std::snprintf(seed, sizeof seed, "-%016llx", static_cast<unsigned long long>(r.program_seed));
    const std::string path = (std::filesystem::path(a.out_dir) / (stem + seed + ".trace")).string();
    std::ofstream f(path);
    f << "# found by: cmacheck race --seed " << o.seed;
    for (impl::Fault fault : a.faults) f << " --fault " << impl::fault_info(fault).name;
    f << "\n# " << r.finding->finding->violation.rule << ": " << r.finding->finding->violation.message << "\n"
      << print_trace(shown);
    if (!f) {
      std::cerr << path << ": error: cannot write\n";
      return kBadInput;
    }
    std::cout << "written to " << path << "; replay: cmacheck replay";
    for (impl::Fault fault : a.faults) std::cout << " --fault " << impl::fault_info(fault).name;
    std::cout << " " << path << "\n";
  }
  return kViolation;
}

Command add(CLI::App& parent) {
  CLI::App* cmd = parent.add_subcommand(
      "race", "random concurrent programs under random schedules on 2-4 logical CPUs, every step checked");
  auto a = std::make_shared<RaceArgs>();
  add_seed_option(*cmd, a->options.seed);
  cmd->add_option("--seconds", a->options.seconds, "how long to search")
      ->type_name("S")
      ->check(CLI::Validator(CLI::NonNegativeNumber).description(""))
      ->capture_default_str();
  cmd->add_option("--programs", a->options.max_programs, "stop after N programs instead (0: use --seconds)")->type_name("N");
  cmd->add_option("--cpus", a->cpus, "logical CPUs per program (0: each program picks 2-4)")
      ->type_name("N")
      ->check(CLI::IsMember({0, 2, 3, 4}).description(""))
      ->capture_default_str();
  cmd->add_option("--schedules", a->options.schedules, "schedules tried per program")
      ->type_name("N")
      ->check(CLI::Validator(CLI::Range(1u, 100000u)).description(""))
      ->capture_default_str();
  cmd->add_option("--schedule", a->schedule, "scheduler: walk, pct, bounded, or swarm (each run picks one)")
      ->type_name("KIND")
      ->check(CLI::IsMember({"swarm", "walk", "pct", "bounded"}))
      ->capture_default_str();
  add_fault_option(*cmd, a->faults);
  add_profile_option(*cmd, a->options.profile);
  cmd->add_flag_callback("--every-boundary", [a] { a->options.conflict_points = false; },
                         "offer a choice at every boundary where two CPUs can run, not only where their next steps "
                         "conflict (for comparison)");
  cmd->add_flag_callback("--no-shrink", [a] { a->options.shrink = false; }, "write the finding as it ran");
  cmd->add_option("--out", a->out_dir, "write a finding here as found-RULE-SEED.trace (\"\": nowhere)")
      ->type_name("DIR")
      ->check(kOutputDir)
      ->capture_default_str();
  cmd->add_option("--inconclusive-out", a->inconclusive_dir,
                  "write the first inconclusive run of each kind here, as a trace that replays it")
      ->type_name("DIR")
      ->check(kOutputDir);
  cmd->add_flag("-q,--quiet", a->quiet, "no progress line");
  cmd->footer(
      "Each program: a small world, a short sequential prefix on T0, then 1-3 operations per CPU.\n"
      "Each schedule: the scheduler chooses at a step boundary where the default's next step conflicts\n"
      "with another CPU's (docs/concurrency.md, \"Schedulers\"); the trace written keeps only the choices\n"
      "that differ from the default schedule, as `switch` lines.\n"
      "exit status: 0 no violation, 1 a violation (its trace written), 2 bad input");
  return {cmd, [a] { return run(*a); }};
}

const Registration kRace{add, 36};

}  // namespace
}  // namespace cmacheck::cli
