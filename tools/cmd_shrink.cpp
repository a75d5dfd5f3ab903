// `cmacheck shrink`: delta-debug failing traces to NAME.min.trace (check/shrink.h).
#include <fstream>
#include <iostream>
#include <memory>

#include "check/concurrent.h"
#include "check/replay.h"
#include "check/shrink.h"
#include "tools/commands.h"
#include "trace/print.h"

namespace cmacheck::cli {
namespace {

struct ShrinkArgs {
  std::vector<std::string> paths;
  std::vector<impl::Fault> faults;
  RunOptions run;
  bool quiet = false;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Runs the trace once: kViolation when it fails (so there is something to shrink), kHeld
// when it holds, kBadInput (reported) when a statement is malformed where it runs.
ConcurrentOptions concurrent_options(const ShrinkArgs& a) {
  ConcurrentOptions c;
  c.faults = a.run.faults;
  c.profile = a.run.profile;
  c.lockstep = a.run.lockstep;
  return c;
}

int status_of(const std::string& path, const Trace& t, const ShrinkArgs& a) {
  if (t.concurrent()) {
    const ConcurrentResult r = run_concurrent(t, concurrent_options(a));
    if (r.status == RunStatus::malformed) {
      std::cerr << path << ":" << r.malformed_line << ": error: " << r.malformed << "\n";
      return kBadInput;
    }
    return r.status == RunStatus::violation ? kViolation : kHeld;
  }
  const RunResult r = run_trace(t, a.run, nullptr);
  if (r.status == RunStatus::malformed) {
    std::cerr << path << ":" << r.malformed_line << ": error: " << r.malformed << "\n";
    return kBadInput;
  }
  return r.status == RunStatus::violation ? kViolation : kHeld;
}

// Shrinks one failing trace to PATH.min.trace: kHeld when written, kBadInput when the
// output cannot be written.
int shrink_one(const std::string& path, const Trace& t, const ShrinkArgs& a) {
  ShrinkResult r;
  if (t.concurrent()) {  // docs/concurrency.md: switches, CPUs, operations, switches one by one
    const ConcurrentResult first = run_concurrent(t, concurrent_options(a));
    r.failed = first.status == RunStatus::violation;
    if (r.failed) {
      r.rule = first.finding->violation.rule;
      r.trace = shrink_concurrent(t, concurrent_options(a), r.rule);
    }
  } else {
    r = shrink_trace(t, a.run, [&](size_t n) {
      if (!a.quiet) std::cerr << "shrink " << path << ": " << n << " statements\r" << std::flush;
    });
    if (!a.quiet) std::cerr << "\n";
  }
  if (!r.failed) {
    std::cerr << "cmacheck: " << path << " does not fail; nothing to shrink\n";
    return kViolation;
  }
  std::string out = ends_with(path, ".trace") ? path.substr(0, path.size() - 6) : path;
  out += ".min.trace";
  std::ofstream f(out);
  f << "# shrunk from " << path << " (" << t.statements.size() << " -> " << r.trace.statements.size()
    << " statements, " << r.runs << " runs); violates " << r.rule << "\n"
    << print_trace(r.trace);
  if (!f) {
    std::cerr << out << ": error: cannot write\n";
    return kBadInput;
  }
  std::cout << "wrote " << out << " (" << r.trace.statements.size() << " statements, violates " << r.rule << ")\n";
  std::cout << "reproduce: cmacheck replay";
  for (const auto& table : {impl::all_faults(), impl::concurrent_faults()})
    for (const auto& fi : table)
      if (a.run.faults.on(fi.fault)) std::cout << " --fault " << fi.name;
  if (!a.run.lockstep) std::cout << " --impl-only";
  std::cout << " " << out << "\n";
  return kHeld;
}

int run(ShrinkArgs& a) {
  a.run.faults = fault_set(a.faults);
  std::vector<std::string> files;
  const bool listed = expand_inputs(a.paths, InputKind::traces_and_fuzz_inputs, files, std::cerr);
  bool several = files.size() > 1;
  for (const auto& p : a.paths) several |= is_directory_path(p);
  if (!several) {
    if (!listed || files.empty()) return kBadInput;
    Trace t;
    if (!load_trace(files[0], a.run, t, std::cerr)) return kBadInput;
    const int s = status_of(files[0], t, a);
    if (s == kHeld) std::cerr << "cmacheck: " << files[0] << " does not fail; nothing to shrink\n";
    return s == kViolation ? shrink_one(files[0], t, a) : s == kHeld ? kViolation : kBadInput;
  }
  // Several inputs: shrink each one that fails; the ones that hold are not an error.
  size_t shrunk = 0, held = 0, bad = listed ? 0 : 1;
  for (const std::string& f : files) {
    if (ends_with(f, ".min.trace")) continue;  // an earlier shrink's output
    Trace t;
    if (!load_trace(f, a.run, t, std::cerr)) {
      ++bad;
      continue;
    }
    const int s = status_of(f, t, a);
    const int written = s == kViolation ? shrink_one(f, t, a) : s;
    if (s == kHeld || written == kViolation)
      ++held;
    else if (written == kBadInput)
      ++bad;
    else
      ++shrunk;
  }
  std::cout << "shrink: " << shrunk << " shrunk, " << held << " held (skipped), " << bad << " unreadable or malformed\n";
  return bad ? kBadInput : shrunk ? kHeld : kViolation;
}

Command add(CLI::App& parent) {
  CLI::App* cmd = parent.add_subcommand("shrink", "delta-debug a failing trace to NAME.min.trace");
  auto a = std::make_shared<ShrinkArgs>();
  add_input_paths(*cmd, a->paths, "a failing trace or fuzz input (or several, or a DIR)");
  add_fault_option(*cmd, a->faults)->description("shrink the failure under this injected fault (repeatable)");
  add_profile_option(*cmd, a->run.profile);
  cmd->add_flag_callback("--impl-only", [a] { a->run.lockstep = false; }, "run impl/ alone (no model)");
  cmd->add_option("--full-every", a->run.full_every, "full-tier invariant checks every N operations (1 = always)")
      ->type_name("N")
      ->check(CLI::Validator(CLI::Range(1u, UINT32_MAX)).description(""))
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", a->quiet, "no progress line on stderr");
  cmd->footer(
      "Shrinks until no single change keeps the same violated rule; writes NAME.min.trace beside the\n"
      "input (NAME.trace -> NAME.min.trace) and prints the command that reproduces it.\n" +
      std::string(kDirectoryRule) +
      "With a DIR or several inputs, each input that fails is shrunk, inputs that hold are skipped,\n"
      "and *.min.trace files (earlier results) are left alone.\n"
      "exit status: 0 shrunk; 1 the input does not fail (several inputs: none fails);\n"
      "2 an input unreadable or malformed, or the output cannot be written");
  return {cmd, [a] { return run(*a); }};
}

const Registration kShrink{add, 30};

}  // namespace
}  // namespace cmacheck::cli
