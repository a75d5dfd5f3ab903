// What `cmacheck explore` prints and writes.
#include <cstdio>
#include <sstream>

#include "explore/explore.h"
#include "trace/print.h"

namespace cmacheck::explore {

namespace {

std::string fixed(double v, int digits) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

std::string ops_text(OpClassSet ops) {
  if (ops == kAllOps) return "all";
  std::string s;
  for (size_t c = 0; c < kOpClasses; ++c)
    if (has(ops, static_cast<OpClass>(c))) s += std::string(s.empty() ? "" : ",") + name(static_cast<OpClass>(c));
  return s;
}

std::string faults_text(const impl::FaultSet& faults) {
  std::string s;
  for (const auto& f : impl::all_faults())
    if (faults.on(f.fault)) s += std::string(s.empty() ? "" : ",") + std::string(f.name);
  return s;
}

// The command line that repeats the search.
std::string command(const World& world, const Options& options) {
  std::string c = "cmacheck explore --world " + world.name + " --profile " + name(world.trace.machine.profile) +
                  " --depth " + std::to_string(options.depth);
  if (options.ops != kAllOps) c += " --ops " + ops_text(options.ops);
  if (world.max_touches != World{}.max_touches) c += " --max-touches " + std::to_string(world.max_touches);
  for (const auto& f : impl::all_faults())
    if (options.faults.on(f.fault)) c += " --fault " + std::string(f.name);
  return c;
}

}  // namespace

std::string summary(const World& world, const Options& options, const Result& r) {
  std::ostringstream o;
  o << "world " << world.name << " (" << name(world.trace.machine.profile) << "): " << world.description << "\n";
  o << "depth " << options.depth << ", operations " << ops_text(options.ops);
  if (options.faults.any()) o << ", fault " << faults_text(options.faults);
  if (!options.dedup) o << ", no deduplication";
  o << "\n\n| depth | new states | states | sequences | seconds |\n|---|---|---|---|---|\n";
  uint64_t states = 0;
  for (const Level& l : r.levels) {
    states += l.states;
    o << "| " << l.depth << " | " << l.states << " | " << states << " | " << l.sequences << " | " << fixed(l.seconds, 2)
      << " |\n";
  }
  o << "\n";
  const double rate = r.seconds > 0 ? static_cast<double>(r.states) / r.seconds : 0;
  o << r.states << " distinct states, " << r.sequences << " sequences in " << fixed(r.seconds, 2) << " s ("
    << fixed(rate, 0) << " states/s, " << fixed(r.seconds > 0 ? static_cast<double>(r.sequences) / r.seconds : 0, 0)
    << " sequences/s)\n";
  if (!r.error.empty()) {
    o << "error: " << r.error << "\n";
    return o.str();
  }
  if (r.violation) {
    o << "VIOLATION at depth " << r.violation->depth << " (" << r.violation->finding.violation.rule
      << "): no shorter sequence in this world breaks a rule\n"
      << print_trace(r.violation->trace) << r.violation->finding.report;
  } else if (!r.complete) {
    o << "stopped at depth " << r.levels.back().depth << " (budget): sequences of up to " << r.levels.back().depth - 1
      << " operations were all checked\n";
  } else if (r.exhausted) {
    o << "exhausted: every state of the world is reached within " << r.levels.size() - 2
      << " operations; every sequence of any length satisfies every check\n";
  } else {
    o << "not exhausted: every sequence of at most " << options.depth
      << " operations satisfies every check; longer ones reach new states\n";
  }
  return o.str();
}

std::string counterexample_text(const World& world, const Options& options, const Result& r) {
  std::ostringstream o;
  const Counterexample& cx = *r.violation;
  o << "# Found by " << command(world, options) << "\n"
    << "# The first violation in breadth-first order, " << cx.depth << " operation(s) after the world's setup:\n"
    << "# no shorter sequence in this world breaks a rule. Caught by " << cx.finding.violation.rule << ": "
    << cx.finding.violation.message << "\n";
  if (options.faults.any()) {
    o << "# Replay: cmacheck replay --full-every 1";
    for (const auto& f : impl::all_faults())
      if (options.faults.on(f.fault)) o << " --fault " << f.name;
    o << " FILE\n";
  }
  o << print_trace(cx.trace);
  return o.str();
}

}  // namespace cmacheck::explore
