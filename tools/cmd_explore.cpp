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
  if (!a.out_dir.empty()) {
    std::filesystem::create_directories(a.out_dir);
    std::string file = world.name;
    size_t faults = 0;
    for (const auto& f : impl::all_faults())
      if (o.faults.on(f.fault)) file = std::string(f.name), ++faults;
    if (faults != 1) file = std::filesystem::path(world.name).stem().string() + "-depth" + std::to_string(r.violation->depth);
    const std::string path = (std::filesystem::path(a.out_dir) / (file + ".trace")).string();
    std::ofstream f(path);
    f << explore::counterexample_text(world, o, r);
    if (!f) {
      std::cerr << path << ": error: cannot write\n";
      return kBadInput;
    }
    std::cout << "counterexample written to " << path << "\n";
  }
  return kViolation;
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
  cmd->add_flag("-q,--quiet", a->quiet, "no progress line");
  cmd->footer("Named worlds:\n" + worlds +
              "Every operation is tried with every parameter the world allows (every kind, order, at= frame,\n"
              "count, alignment, area, batch and live handle) plus the boundary values just outside; `touch`\n"
              "only on a block the batches hold fewer than --max-touches references to. States equal up to\n"
              "handle names and content stamps are explored once, so the first violation is a shortest one.\n"
              "Prints distinct states per depth and whether the state space was exhausted; a violation is\n"
              "written as DIR/FAULT.trace (or DIR/WORLD-depthD.trace) with the usual report.\n"
              "exit status: 0 every sequence held, 1 a violation, 2 bad input");
  return {cmd, [a] { return run(*a); }};
}

const Registration kExplore{add, 35};

}  // namespace
}  // namespace cmacheck::cli
