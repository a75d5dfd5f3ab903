// `cmacheck explore`: every operation sequence of a small world up to a depth, breadth-first,
// impl and model in lockstep with every check after every step (docs/explore.md).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "explore/explore.h"
#include "tools/commands.h"

namespace cmacheck::cli {
namespace {

struct ExploreArgs {
  std::string world = "tiny";
  explore::Options options;
  std::vector<impl::Fault> faults;
  std::vector<std::string> ops;
  std::optional<uint32_t> max_pins;
  std::optional<uint32_t> max_touches;
  std::optional<Profile> profile;
  std::string out_dir = "corpus/explore";
  bool quiet = false;
  unsigned cpus = 1;
  explore::InterleavingOptions concurrent;  // --cpus N >= 2
};

std::string human(double v) {
  char b[32];
  if (v >= 1e6)
    std::snprintf(b, sizeof b, "%.1fM", v / 1e6);
  else if (v >= 1e4)
    std::snprintf(b, sizeof b, "%.0fk", v / 1e3);
  else
    std::snprintf(b, sizeof b, "%.0f", v);
  return b;
}

// Writes the counterexample as DIR/FAULT.trace (or DIR/STEM.trace without a single fault).
int write_counterexample(const std::string& dir, const impl::FaultSet& faults, const std::string& stem,
                         const std::string& text) {
  std::filesystem::create_directories(dir);
  std::string file = stem;
  size_t n = 0;
  for (auto list : {impl::all_faults(), impl::concurrent_faults()})
    for (const auto& f : list)
      if (faults.on(f.fault)) file = std::string(f.name), ++n;
  if (n != 1) file = stem;
  const std::string path = (std::filesystem::path(dir) / (file + ".trace")).string();
  std::ofstream f(path);
  f << text;
  if (!f) {
    std::cerr << path << ": error: cannot write\n";
    return kBadInput;
  }
  std::cout << "counterexample written to " << path << "\n";
  return kViolation;
}

// --cpus N: every program of 1..M operations per CPU under every schedule with at most K
// preemptions (docs/explore.md, "Concurrent programs").
int run_concurrent_programs(ExploreArgs& a, const explore::World& world) {
  explore::InterleavingOptions& o = a.concurrent;
  o.cpus = static_cast<uint8_t>(a.cpus);
  o.ops = a.options.ops;
  o.faults = a.options.faults;
  o.seconds = a.options.seconds;
  if (!a.quiet && isatty(STDERR_FILENO))
    o.progress = [](const explore::InterleavingOptions::Progress& p) {
      std::cerr << "\r\033[K" << p.bound << " preemption(s): " << human(static_cast<double>(p.programs)) << "/"
                << human(static_cast<double>(p.programs_total)) << " programs, "
                << human(static_cast<double>(p.schedules)) << " schedules, "
                << human(p.seconds > 0 ? static_cast<double>(p.runs) / p.seconds : 0) << " runs/s" << std::flush;
    };
  const explore::InterleavingResult r = explore::explore_interleavings(world, o);
  if (o.progress) std::cerr << "\r\033[K" << std::flush;
  std::cout << explore::interleavings_summary(world, o, r);
  if (!r.error.empty()) return kBadInput;
  if (!r.violation) return kHeld;
  if (a.out_dir.empty()) return kViolation;
  return write_counterexample(a.out_dir, o.faults, std::filesystem::path(world.name).stem().string() + "-cpus" +
                                                       std::to_string(o.cpus) + "-preemptions" +
                                                       std::to_string(r.violation->preemptions),
                              explore::interleaving_counterexample_text(world, o, r));
}

int run(ExploreArgs& a) {
  explore::World world;
  if (!explore::load_world(a.world, world, std::cerr)) return kBadInput;
  if (a.max_pins) world.max_pins = *a.max_pins;
  if (a.max_touches) world.max_touches = *a.max_touches;
  if (a.profile) world.trace.machine.profile = *a.profile;
  explore::Options& o = a.options;
  o.faults = fault_set(a.faults);
  if (!a.ops.empty()) {
    o.ops = 0;
    for (const auto& name : a.ops) o.ops |= explore::OpClassSet{1} << static_cast<unsigned>(*explore::op_class_by_name(name));
  }
  if (a.cpus >= 2) return run_concurrent_programs(a, world);
  if (o.jobs == 0) o.jobs = std::max(1u, std::thread::hardware_concurrency());
  if (!a.quiet && isatty(STDERR_FILENO))
    o.progress = [](const explore::Progress& p) {
      std::cerr << "\r\033[Kdepth " << p.depth << ": " << human(static_cast<double>(p.states)) << " states, "
                << human(static_cast<double>(p.sequences)) << " sequences, "
                << human(p.seconds > 0 ? static_cast<double>(p.states) / p.seconds : 0) << " states/s" << std::flush;
    };
  const explore::Result r = explore::explore(world, o);
  if (o.progress) std::cerr << "\r\033[K" << std::flush;
  std::cout << explore::summary(world, o, r);
  if (!r.error.empty()) return kBadInput;
  if (!r.violation) return kHeld;
  if (a.out_dir.empty()) return kViolation;
  return write_counterexample(a.out_dir, o.faults,
                              std::filesystem::path(world.name).stem().string() + "-depth" + std::to_string(r.violation->depth),
                              explore::counterexample_text(world, o, r));
}

Command add(CLI::App& parent) {
  CLI::App* cmd = parent.add_subcommand(
      "explore", "every operation sequence of a small world up to a depth, breadth-first, with every check");
  auto a = std::make_shared<ExploreArgs>();
  std::string worlds;
  for (const auto& w : explore::named_worlds()) worlds += std::string("  ") + w.name + ": " + w.description + "\n";
  cmd->add_option("--world", a->world, "a named world (below) or a trace file: its header and operations (the setup)")
      ->type_name("NAME|FILE")
      ->capture_default_str();
  cmd->add_option("--depth", a->options.depth, "operations after the setup")
      ->type_name("D")
      ->check(CLI::Validator(CLI::Range(0u, 64u)).description(""))
      ->capture_default_str();
  std::vector<std::string> classes;
  for (size_t c = 0; c < explore::kOpClasses; ++c) classes.push_back(explore::name(static_cast<explore::OpClass>(c)));
  std::string class_list;
  for (const auto& c : classes) class_list += (class_list.empty() ? "" : ", ") + c;
  cmd->add_option("--ops", a->ops, "comma-separated operations to try (default all): " + class_list)
      ->type_name("LIST")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->check(CLI::IsMember(classes).description(""));
  add_fault_option(*cmd, a->faults);
  add_profile_option(*cmd, a->profile)->description(
      "kernel profile: linux-6.1 or linux-6.12 (default: the world's; the named worlds are linux-6.1)");
  add_jobs_option(*cmd, a->options.jobs);
  cmd->add_option("--max-pins", a->max_pins, "pins a block may hold before `pin` is no longer tried (default: the world's)")
      ->type_name("N")
      ->check(CLI::Validator(CLI::Range(1u, 64u)).description(""));
  cmd->add_option("--max-touches", a->max_touches,
                  "batch references a block may hold before `touch` is no longer tried on it (default 1)")
      ->type_name("N")
      ->check(CLI::Validator(CLI::Range(1u, 64u)).description(""));
  cmd->add_option("--seconds", a->options.seconds, "stop after this long (the result is then incomplete)")
      ->type_name("S")
      ->check(CLI::Validator(CLI::NonNegativeNumber).description(""));
  cmd->add_option("--max-states", a->options.max_states, "stop after this many distinct states")->type_name("N");
  cmd->add_flag_callback("--no-dedup", [a] { a->options.dedup = false; },
                         "run every sequence, also those that reach a state already explored (slow; for comparison)");
  cmd->add_option("--out", a->out_dir, "write the first violation's trace here (\"\": nowhere)")
      ->type_name("DIR")
      ->check(kOutputDir)
      ->capture_default_str();
  cmd->add_option("--cpus", a->cpus,
                  "2-4: concurrent programs (1..--ops-per-cpu operations on each CPU) under every schedule with at "
                  "most --preemptions preemptions, instead of sequences (--depth and -j are then unused)")
      ->type_name("N")
      ->check(CLI::Validator(CLI::Range(1u, 4u)).description(""))
      ->capture_default_str();
  cmd->add_option("--ops-per-cpu", a->concurrent.ops_per_cpu, "with --cpus: operations per CPU, at most")
      ->type_name("M")
      ->check(CLI::Validator(CLI::Range(1u, 4u)).description(""))
      ->capture_default_str();
  cmd->add_option("--preemptions", a->concurrent.preemptions,
                  "with --cpus: preemptions per schedule, at most (a switch away from a CPU inside an operation "
                  "that could go on; at an operation's end or a block switching is free)")
      ->type_name("K")
      ->check(CLI::Validator(CLI::Range(0u, 16u)).description(""))
      ->capture_default_str();
  cmd->add_flag_callback("--every-boundary", [a] { a->concurrent.conflict_points = false; },
                         "with --cpus: a choice point at every boundary where two CPUs can run, not only where the "
                         "default's next step conflicts with what another CPU has left (for comparison)");
  cmd->add_option("--max-programs", a->concurrent.max_programs, "with --cpus: stop after this many programs per bound")
      ->type_name("N");
  cmd->add_flag("-q,--quiet", a->quiet, "no progress line");
  cmd->footer("Named worlds:\n" + worlds +
              "Every operation is tried with every parameter the world allows (every kind, order, at= frame,\n"
              "count, alignment, area, batch and live handle) plus the boundary values just outside; `touch`\n"
              "only on a block the batches hold fewer than --max-touches references to. States equal up to\n"
              "handle names and content stamps are explored once, so the first violation is a shortest one.\n"
              "Prints distinct states per depth and whether the state space was exhausted; a violation is\n"
              "written as DIR/FAULT.trace (or DIR/WORLD-depthD.trace) with the usual report.\n"
              "With --cpus N (2-4) it checks concurrent programs instead: every program of 1..M operations\n"
              "on each CPU (each CPU's from the alphabet of the world after its setup and its own earlier\n"
              "operations), under every schedule with 0, then 1, ..., K preemptions (iterative context\n"
              "bounding), with the concurrent engine's checks; a violation is written as a trace with\n"
              "`switch` lines that `cmacheck replay` reproduces.\n"
              "exit status: 0 every sequence held, 1 a violation, 2 bad input");
  return {cmd, [a] { return run(*a); }};
}

const Registration kExplore{add, 35};

}  // namespace
}  // namespace cmacheck::cli
