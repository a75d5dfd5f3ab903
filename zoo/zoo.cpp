#include "zoo/zoo.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "check/concurrent.h"
#include "check/decode.h"
#include "check/replay.h"
#include "check/shrink.h"
#include "explore/explore.h"
#include "properties/result.h"
#include "trace/parse.h"
#include "trace/print.h"

namespace cmacheck::zoo {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const char* name(Engine e) {
  switch (e) {
    case Engine::random: return "random";
    case Engine::fuzz_empty: return "fuzz-empty";
    case Engine::fuzz_seeds: return "fuzz-seeds";
    case Engine::properties: return "properties";
    case Engine::explore: return "explore";
    case Engine::race: return "race";
    case Engine::fuzz_concurrent: return "fuzz-concurrent";
    case Engine::explore_concurrent: return "explore-concurrent";
  }
  return "?";
}

std::optional<Engine> engine_by_name(const std::string& s) {
  for (Engine e : {Engine::random, Engine::fuzz_empty, Engine::fuzz_seeds, Engine::properties, Engine::explore,
                   Engine::race, Engine::fuzz_concurrent, Engine::explore_concurrent})
    if (s == name(e)) return e;
  return std::nullopt;
}

bool is_concurrent(Engine e) {
  return e == Engine::race || e == Engine::fuzz_concurrent || e == Engine::explore_concurrent;
}

namespace {

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

RunOptions options_for(impl::Fault fault, std::optional<Profile> profile) {
  RunOptions o;
  o.faults.add(fault);
  o.profile = profile;
  o.full_every = 16;
  return o;
}

// Shrinks a counterexample and records its size; writes it when asked.
void finish(ZooResult& r, const Trace& t, const ZooOptions& options) {
  ShrinkResult s = shrink_trace(t, options_for(r.fault, options.profile));
  if (!s.failed) {
    r.note = "counterexample did not replay";
    return;
  }
  r.rule = s.rule;
  r.shrunk_statements = s.trace.statements.size();
  if (!options.reproducers.empty()) {
    fs::create_directories(options.reproducers);
    const auto& info = impl::fault_info(r.fault);
    const fs::path out = fs::path(options.reproducers) / (std::string(info.name) + ".trace");
    // Keep the smallest reproducer found by any engine.
    if (fs::exists(out)) {
      std::ifstream in(out);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      size_t ops = 0;
      std::istringstream ls(text);
      for (std::string line; std::getline(ls, line);)
        if (!line.empty() && line[0] != '#' && line.rfind("machine", 0) != 0 && line.rfind("area", 0) != 0) ++ops;
      if (ops <= r.shrunk_statements) return;
    }
    std::ofstream f(out);
    f << "# " << info.name << ": " << info.origin << "\n# " << info.description << "\n# Expected to be caught by "
      << info.caught_by << "; caught by " << s.rule << ". Found by the " << name(r.engine)
      << " engine, shrunk by cmacheck shrink.\n# Fails with --fault " << info.name << ", passes without.\n"
      << print_trace(s.trace);
  }
}

std::string locate(const std::string& given, const char* const* candidates) {
  if (!given.empty()) return fs::exists(given) ? given : "";
  for (const char* const* c = candidates; *c; ++c)
    if (fs::exists(*c)) return *c;
  return "";
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The engines that run as programs read the profile from CMACHECK_PROFILE.
std::string profile_env(const ZooOptions& options) {
  return options.profile ? "CMACHECK_PROFILE=" + std::string(name(*options.profile)) + " " : "";
}

ZooResult run_fuzzer(impl::Fault fault, Engine engine, const ZooOptions& options, const std::string& fuzzer) {
  ZooResult r;
  r.fault = fault;
  r.engine = engine;
  const auto& info = impl::fault_info(fault);
  const fs::path work = fs::path(options.work_dir) / (std::string(info.name) + "-" + name(engine));
  fs::remove_all(work);
  fs::create_directories(work / "corpus");
  std::string cmd = profile_env(options) + "CMACHECK_FAULT=" + std::string(info.name) + " " + fuzzer + " -seed=" + std::to_string(options.seed) +
                    " -max_total_time=" + std::to_string(static_cast<int>(options.seconds)) +
                    " -print_final_stats=1 -artifact_prefix=" + (work / "").string() + " " + (work / "corpus").string();
  if (engine == Engine::fuzz_seeds) cmd += " " + options.seed_corpus;
  // fuzz_concurrent starts from its own seeds (random programs of 16-200 bytes), as
  // `make fuzz` users run it: libFuzzer's first inputs are too short to hold two CPUs' work.
  if (engine == Engine::fuzz_concurrent) cmd += " " + (fs::path(options.seed_corpus).parent_path() / "fuzz_concurrent").string();
  cmd += " > " + (work / "log").string() + " 2>&1";
  const auto t0 = Clock::now();
  const int rc = std::system(cmd.c_str());
  r.seconds = since(t0);
  const std::string log = slurp(work / "log");
  std::smatch m;
  if (std::regex_search(log, m, std::regex("stat::number_of_executed_units: *([0-9]+)")))
    r.executions = std::stoull(m[1]);
  fs::path crash;
  for (const auto& e : fs::directory_iterator(work))
    if (e.path().filename().string().rfind("crash-", 0) == 0) crash = e.path();
  if (rc == 0 || crash.empty()) {
    r.seconds = options.seconds;
    if (rc != 0 && crash.empty()) r.note = "fuzzer exited without a finding (see " + (work / "log").string() + ")";
    return r;
  }
  r.detected = true;
  if (engine == Engine::fuzz_concurrent) {  // its finding prints the trace with its schedule
    if (std::regex_search(log, m, std::regex("VIOLATION ([^:]+):"))) r.rule = m[1];
    return r;
  }
  std::string err;
  Trace t;
  std::ostringstream errs;
  if (load_trace(crash.string(), options_for(fault, options.profile), t, errs)) finish(r, t, options);
  return r;
}

ZooResult run_race(impl::Fault fault, const ZooOptions& options) {
  RaceOptions o;
  o.seed = options.seed;
  o.seconds = options.seconds;
  o.faults.add(fault);
  o.profile = options.profile;
  const RaceResult res = race(o);
  ZooResult r;
  r.fault = fault;
  r.engine = Engine::race;
  r.executions = res.runs;
  r.seconds = res.finding ? res.seconds : options.seconds;
  r.detected = res.finding.has_value();
  if (r.detected) {
    r.rule = res.finding->finding->violation.rule;
    r.shrunk_statements = res.shrunk.statements.size();
    if (!options.reproducers.empty()) {
      fs::create_directories(options.reproducers);
      std::ofstream(fs::path(options.reproducers) / (std::string(impl::fault_info(fault).name) + ".trace"))
          << print_trace(res.shrunk);
    }
  }
  return r;
}

// The property the zoo runs (properties/registry.cpp): the stateful model-vs-impl test.
constexpr const char* kZooProperty = "Lockstep.ImplAgreesWithModelAfterEveryOperation";

ZooResult run_properties(impl::Fault fault, const ZooOptions& options, const std::string& binary) {
  ZooResult r;
  r.fault = fault;
  r.engine = Engine::properties;
  const auto& info = impl::fault_info(fault);
  const fs::path work = fs::path(options.work_dir) / (std::string(info.name) + "-properties");
  fs::remove_all(work);
  fs::create_directories(work);
  // The property with the fault injected; its result (passed, cases, the shrunk
  // counterexample) comes back as JSON (properties/result.h). Its own budget ends a run that
  // finds nothing a second before `timeout` would, so that even then the cases are counted.
  const fs::path result_file = work / "result.json";
  const int seconds = static_cast<int>(options.seconds);
  std::string cmd = profile_env(options) + "timeout " + std::to_string(seconds) + " " + binary + " --run " + kZooProperty + " --fault " +
                    std::string(info.name) + " --seed " + std::to_string(options.seed) +
                    " --max-success 1000000 --max-size 100 --seconds " + std::to_string(std::max(0.5, options.seconds - 1)) +
                    " --counterexample-dir " + work.string() + " --result-file " + result_file.string() + " > " +
                    (work / "log").string() + " 2>&1";
  const auto t0 = Clock::now();
  const int rc = std::system(cmd.c_str());
  r.seconds = since(t0);
  std::optional<props::PropertyResult> result;
  if (fs::exists(result_file)) {
    std::string error;
    result = props::result_from_json(slurp(result_file), error);
    if (!result) r.note = result_file.string() + ": " + error;
  } else if (rc != 0 && WEXITSTATUS(rc) != 124) {
    r.note = "property binary failed without a result (see " + (work / "log").string() + ")";
  }
  if (result) r.executions = result->cases;
  if (!result || result->passed || result->gave_up) {
    r.seconds = options.seconds;
    return r;
  }
  r.detected = true;
  ParseResult t = parse_trace(result->counterexample);
  if (t.ok())
    finish(r, t.trace, options);
  else
    r.note = "counterexample " + result->counterexample_file + " does not parse";
  return r;
}

}  // namespace

ZooResult run_random(impl::Fault fault, double seconds, uint64_t seed, Trace* counterexample,
                     std::optional<Profile> profile) {
  ZooResult r;
  r.fault = fault;
  r.engine = Engine::random;
  const RunOptions opts = options_for(fault, profile);
  const auto t0 = Clock::now();
  for (uint64_t i = 0;; ++i) {
    if ((i & 15) == 0 && since(t0) > seconds) break;
    SeededChoices rng(seed * 1000003 + i);
    auto s = generate_and_run(rng, opts, {}, 300);
    ++r.executions;
    if (s->status() == RunStatus::violation) {
      r.detected = true;
      r.seconds = since(t0);
      r.rule = s->finding()->violation.rule;
      if (counterexample) *counterexample = s->trace();
      return r;
    }
  }
  r.seconds = seconds;
  return r;
}

// The named worlds, each in `profile` when one is given (else its own); false, with the
// reason in r.note, when one does not load.
bool load_worlds(const std::vector<std::string>& names, std::optional<Profile> profile, std::vector<explore::World>& worlds,
                 ZooResult& r) {
  for (const std::string& name : names) {
    std::ostringstream err;
    worlds.emplace_back();
    if (!explore::load_world(name, worlds.back(), err)) {
      r.note = err.str();
      return false;
    }
    if (profile) worlds.back().trace.machine.profile = *profile;
  }
  return true;
}

// What one bounded search of one world came to.
enum class SearchEnd { found, complete, cut_short, error };

// Iterative deepening across the worlds: each level (a depth, a preemption bound) in every
// world before the next level. Each search starts over; the levels before the last cost a
// small fraction of it. `search(level, world, seconds_left)` fills r when it finds something
// (or fails) and says how it ended.
template <class Search>
void deepen_across_worlds(ZooResult& r, const std::vector<explore::World>& worlds, unsigned max_level, double seconds,
                          const std::string& not_found, Search&& search) {
  const auto t0 = Clock::now();
  for (unsigned level = 0; level <= max_level; ++level)
    for (const explore::World& w : worlds) {
      const double left = seconds - since(t0);
      if (left <= 0) {
        r.seconds = seconds;
        return;
      }
      switch (search(level, w, left)) {
        case SearchEnd::found:
          r.detected = true;
          r.seconds = since(t0);
          r.world = w.name;
          return;
        case SearchEnd::error: return;
        case SearchEnd::cut_short: r.seconds = seconds; return;
        case SearchEnd::complete: break;
      }
    }
  r.seconds = since(t0);
  r.note = not_found;
}

// How one bounded search (explore's or explore --cpus') ended: its error or its violation's
// rule into r, `found` telling the rest of the violation to r.
template <class SearchResult, class Found>
SearchEnd search_end(ZooResult& r, const SearchResult& res, Found&& found) {
  if (!res.error.empty()) {
    r.note = res.error;
    return SearchEnd::error;
  }
  if (res.violation) {
    r.rule = res.violation->finding.violation.rule;
    found();
    return SearchEnd::found;
  }
  return res.complete ? SearchEnd::complete : SearchEnd::cut_short;
}

ZooResult run_explore(impl::Fault fault, double seconds, unsigned max_depth, Trace* counterexample,
                      std::string* counterexample_text, Profile profile) {
  ZooResult r;
  r.fault = fault;
  r.engine = Engine::explore;
  std::vector<explore::World> worlds;
  if (!load_worlds(explore::zoo_worlds(), profile, worlds, r)) return r;
  deepen_across_worlds(r, worlds, max_depth, seconds, "not found at depth <= " + std::to_string(max_depth),
                       [&](unsigned depth, const explore::World& w, double left) {
                         explore::Options o;
                         o.depth = depth;
                         o.faults.add(fault);
                         o.seconds = left;
                         const explore::Result res = explore::explore(w, o);
                         r.executions += res.sequences;
                         return search_end(r, res, [&] {
                           r.depth = static_cast<int>(res.violation->depth);
                           if (counterexample) *counterexample = res.violation->trace;
                           if (counterexample_text) *counterexample_text = explore::counterexample_text(w, o, res);
                         });
                       });
  return r;
}

ZooResult run_explore_concurrent(impl::Fault fault, double seconds, unsigned max_preemptions, Trace* counterexample,
                                 std::string* counterexample_text, std::optional<Profile> profile) {
  ZooResult r;
  r.fault = fault;
  r.engine = Engine::explore_concurrent;
  std::vector<explore::World> worlds;
  if (!load_worlds(explore::zoo_concurrent_worlds(), profile, worlds, r)) return r;
  deepen_across_worlds(r, worlds, max_preemptions, seconds,
                       "not found with <= " + std::to_string(max_preemptions) + " preemptions",
                       [&](unsigned k, const explore::World& w, double left) {
                         explore::InterleavingOptions o;
                         o.cpus = 2;
                         o.ops_per_cpu = 1;
                         o.preemptions = k;
                         o.min_preemptions = k;
                         o.faults.add(fault);
                         o.seconds = left;
                         const explore::InterleavingResult res = explore::explore_interleavings(w, o);
                         r.executions += res.runs;
                         return search_end(r, res, [&] {
                           r.depth = static_cast<int>(res.violation->operations);
                           r.preemptions = static_cast<int>(res.violation->preemptions);
                           r.shrunk_statements = res.violation->trace.statements.size();
                           if (counterexample) *counterexample = res.violation->trace;
                           if (counterexample_text) *counterexample_text = explore::interleaving_counterexample_text(w, o, res);
                         });
                       });
  return r;
}

std::vector<ZooResult> run_zoo(const ZooOptions& options, const std::function<void(const std::string&)>& progress) {
  // What `make fuzz` runs first (its default FUZZ_PRESET, docs/performance.md), then the ASan builds.
  static const char* const fuzzers[] = {"build/fuzz-nosan/fuzz/fuzz_lockstep", "build/fuzz/fuzz/fuzz_lockstep",
                                        "build/dev/fuzz/fuzz_lockstep", nullptr};
  static const char* const props[] = {"build/dev/properties/properties_test", "build/release/properties/properties_test",
                                      nullptr};
  static const char* const concurrent_fuzzers[] = {"build/fuzz-nosan/fuzz/fuzz_concurrent", "build/fuzz/fuzz/fuzz_concurrent",
                                                   "build/dev/fuzz/fuzz_concurrent",
                                                   nullptr};
  const std::string fuzzer = locate(options.fuzzer, fuzzers);
  const std::string concurrent_fuzzer = locate(options.concurrent_fuzzer, concurrent_fuzzers);
  const std::string properties = locate(options.properties, props);
  std::vector<impl::Fault> faults = options.faults;
  if (faults.empty()) {
    for (const auto& f : impl::all_faults()) faults.push_back(f.fault);
    for (const auto& f : impl::concurrent_faults()) faults.push_back(f.fault);
  }
  auto engines_of = [&](impl::Fault f) -> const std::vector<Engine>& {
    return impl::is_concurrent(f) ? options.concurrent_engines : options.engines;
  };
  std::vector<ZooResult> results;
  size_t done = 0, total = 0;
  for (impl::Fault fault : faults) total += engines_of(fault).size();
  for (impl::Fault fault : faults) {
    for (Engine e : engines_of(fault)) {
      if (progress)
        progress("[" + std::to_string(done + 1) + "/" + std::to_string(total) + "] " +
                 std::string(impl::fault_info(fault).name) + " with " + name(e) + " ...");
      ZooResult r;
      if (e == Engine::race) {
        r = run_race(fault, options);
      } else if (e == Engine::fuzz_concurrent) {
        if (concurrent_fuzzer.empty()) {
          r.fault = fault;
          r.engine = e;
          r.skipped = true;
          r.note = "fuzz_concurrent not built (make fuzz-build)";
        } else {
          r = run_fuzzer(fault, e, options, concurrent_fuzzer);
        }
      } else if (e == Engine::explore_concurrent) {
        Trace t;
        std::string text;
        r = run_explore_concurrent(fault, options.seconds, options.explore_preemptions, &t, &text, options.profile);
        if (r.detected && !options.explore_out.empty()) {
          fs::create_directories(options.explore_out);
          std::ofstream(fs::path(options.explore_out) / (std::string(impl::fault_info(fault).name) + ".trace")) << text;
        }
      } else if (impl::is_concurrent(fault)) {
        r.fault = fault;
        r.engine = e;
        r.skipped = true;
        r.note = "a sequential engine cannot show a concurrent fault";
      } else if (e == Engine::random) {
        Trace t;
        r = run_random(fault, options.seconds, options.seed, &t, options.profile);
        if (r.detected) finish(r, t, options);
      } else if (e == Engine::explore) {
        Trace t;
        std::string text;
        r = run_explore(fault, options.seconds, options.explore_depth, &t, &text,
                        options.profile.value_or(Profile::linux_6_1));
        if (r.detected && !options.explore_out.empty()) {
          fs::create_directories(options.explore_out);
          std::ofstream(fs::path(options.explore_out) / (std::string(impl::fault_info(fault).name) + ".trace")) << text;
        }
        if (r.detected) finish(r, t, options);
      } else if (e == Engine::properties) {
        if (properties.empty()) {
          r.fault = fault;
          r.engine = e;
          r.skipped = true;
          r.note = "property-test binary not built";
        } else {
          r = run_properties(fault, options, properties);
        }
      } else {
        if (fuzzer.empty()) {
          r.fault = fault;
          r.engine = e;
          r.skipped = true;
          r.note = "fuzz_lockstep not built (make fuzz-build)";
        } else {
          r = run_fuzzer(fault, e, options, fuzzer);
        }
      }
      results.push_back(r);
      ++done;
    }
  }
  return results;
}

namespace {
std::string fmt_seconds(const ZooResult& r) {
  char b[32];
  std::snprintf(b, sizeof b, r.detected ? "%.2f" : ">%.0f", r.seconds);
  return b;
}
}  // namespace

std::string markdown_table(const std::vector<ZooResult>& results) {
  std::ostringstream o;
  o << "| fault | origin | engine | detected | time to detect (s) | executions | rule | shrunk statements | explore depth |\n"
    << "|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : results) {
    const auto& info = impl::fault_info(r.fault);
    std::string origin(info.origin);
    if (auto colon = origin.find(':'); colon != std::string::npos && origin.rfind("D", 0) == 0) origin.resize(colon);
    o << "| " << info.name << " | " << origin << " | " << name(r.engine) << " | "
      << (r.skipped ? "skipped" : r.detected ? "yes" : "no") << " | " << (r.skipped ? "-" : fmt_seconds(r)) << " | "
      << r.executions << " | " << (r.rule.empty() ? "-" : r.rule) << " | "
      << (r.detected && r.note.empty() ? std::to_string(r.shrunk_statements) : "-") << " | "
      << (r.depth >= 0 ? std::to_string(r.depth) + " (" + r.world +
                             (r.preemptions >= 0 ? ", " + std::to_string(r.preemptions) + (r.preemptions == 1 ? " preemption" : " preemptions") : "") + ")"
                       : "-")
      << " |"
      << (r.note.empty() ? "" : " " + r.note) << "\n";
  }
  return o.str();
}

std::string csv(const std::vector<ZooResult>& results) {
  std::ostringstream o;
  o << "fault,engine,detected,seconds,executions,rule,shrunk_statements,depth,world\n";
  for (const auto& r : results)
    o << impl::fault_info(r.fault).name << "," << name(r.engine) << ","
      << (r.skipped ? "skipped" : r.detected ? "yes" : "no") << "," << r.seconds << "," << r.executions << "," << r.rule
      << "," << r.shrunk_statements << "," << r.depth << "," << r.world << "\n";
  return o.str();
}

std::string svg(const std::vector<ZooResult>& results, double budget_seconds) {
  // Faults found within t seconds, per engine: a step line over a log time axis from 10 ms
  // (detections faster than that sit on the left edge) to the budget.
  const double W = 760, H = 440, left = 60, right = 170, top = 50, bottom = 60;
  const double pw = W - left - right, ph = H - top - bottom;
  const double t_lo = 0.01, t_hi = std::max(budget_seconds, 0.1);
  std::vector<Engine> engines;
  std::vector<impl::Fault> faults;
  for (const auto& r : results) {
    if (std::find(engines.begin(), engines.end(), r.engine) == engines.end()) engines.push_back(r.engine);
    if (std::find(faults.begin(), faults.end(), r.fault) == faults.end()) faults.push_back(r.fault);
  }
  const double n = std::max<double>(1, static_cast<double>(faults.size()));
  auto X = [&](double t) {
    t = std::clamp(t, t_lo, t_hi);
    return left + pw * (std::log10(t) - std::log10(t_lo)) / (std::log10(t_hi) - std::log10(t_lo));
  };
  auto Y = [&](double found) { return top + ph * (1 - found / n); };
  auto num = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", v);
    return std::string(b);
  };
  auto label = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return std::string(b);
  };
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W
    << " " << H << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << left + pw / 2 << "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">Bug zoo: faults found "
    << "within a time (" << faults.size() << " faults, budget " << budget_seconds << " s per engine)</text>\n";
  for (double t = t_lo; t <= t_hi * 1.0001; t *= 10) {
    o << "<line x1=\"" << num(X(t)) << "\" y1=\"" << top << "\" x2=\"" << num(X(t)) << "\" y2=\"" << top + ph
      << "\" stroke=\"#e5e5e5\"/>\n<text x=\"" << num(X(t)) << "\" y=\"" << top + ph + 18
      << "\" text-anchor=\"middle\">" << label(t) << " s</text>\n";
  }
  const double step = std::max(1.0, std::ceil(n / 4));
  for (double k = 0; k <= n; k += step) {
    const double y = Y(k);
    o << "<line x1=\"" << left << "\" y1=\"" << num(y) << "\" x2=\"" << left + pw << "\" y2=\"" << num(y)
      << "\" stroke=\"#e5e5e5\"/>\n<text x=\"" << left - 8 << "\" y=\"" << num(y + 4) << "\" text-anchor=\"end\">"
      << label(k) << "</text>\n";
  }
  o << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"#333\"/>\n<text x=\"" << left + pw / 2 << "\" y=\"" << H - 18
    << "\" text-anchor=\"middle\">time to detect (wall clock, log scale)</text>\n<text transform=\"translate(18 "
    << top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">faults found</text>\n";
  const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"};
  double legend_y = top + 10;
  for (size_t e = 0; e < engines.size(); ++e) {
    std::vector<double> times;
    for (const auto& r : results)
      if (r.engine == engines[e] && r.detected) times.push_back(r.seconds);
    std::sort(times.begin(), times.end());
    std::ostringstream path;
    path << "M" << num(X(t_lo)) << " " << num(Y(0));
    for (size_t i = 0; i < times.size(); ++i)
      path << " H" << num(X(times[i])) << " V" << num(Y(static_cast<double>(i + 1)));
    path << " H" << num(X(t_hi));
    const char* colour = colours[e % 5];
    o << "<path d=\"" << path.str() << "\" fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\"/>\n";
    const double lx = left + pw + 14;
    o << "<line x1=\"" << lx << "\" y1=\"" << legend_y << "\" x2=\"" << lx + 24 << "\" y2=\"" << legend_y
      << "\" stroke=\"" << colour << "\" stroke-width=\"2\"/>\n<text x=\"" << lx + 30 << "\" y=\"" << legend_y + 4
      << "\" font-size=\"11\">" << name(engines[e]) << " (" << times.size() << "/" << faults.size() << ")</text>\n";
    legend_y += 20;
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace cmacheck::zoo
