// `cmacheck explore --cpus N --preemptions K` (issue 17, docs/explore.md "Concurrent
// programs"): iterative context bounding (Musuvathi & Qadeer, PLDI'07). Every program of the
// world (1..M operations per CPU, each CPU's from explore's alphabet) runs under every
// schedule with 0 preemptions, then every one with exactly 1, ..., up to K, so the first
// violation has the fewest preemptions any violation needs, and among those the fewest
// operations. The schedules are the concurrent engine's own: a prescribed list of choices
// (check/concurrent.h, ScheduleChoice), each run reporting the choice points it met; a
// depth-first search over those choices enumerates each schedule once.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

#include "check/concurrent.h"
#include "explore/explore.h"
#include "trace/print.h"

namespace cmacheck::explore {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The handle a CPU's `position`-th operation binds, in the program trace: m1_2 is the block
// T1's second operation allocates (unique across CPUs, and apart from the names of `t`: the
// world's and explore's pool).
std::string bound_name(const Trace& t, Family f, uint8_t cpu, size_t position) {
  const char prefix[kFamilies] = {'m', 'c', 'x'};
  std::string name = prefix[index(f)] + std::to_string(cpu) + "_" + std::to_string(position + 1);
  while (std::find(t.handles.begin(), t.handles.end(), name) != t.handles.end()) name += "_";
  return name;
}

HandleId& handle_of(Op& op) {
  return *std::visit(
      [](auto& o) -> HandleId* {
        using O = std::remove_cvref_t<decltype(o)>;
        if constexpr (first_arg_is_handle<O>())
          return &(o.*(std::get<0>(O::args).member));
        else
          return nullptr;
      },
      op);
}

class Search {
 public:
  Search(const World& world, const InterleavingOptions& options) : world_(world), options_(options) {}

  InterleavingResult run() {
    start_ = Clock::now();
    Trace names;
    const auto programs = thread_programs(world_, options_.ops, options_.faults, options_.ops_per_cpu, names, result_.error);
    if (!result_.error.empty()) return result_;
    base_ = names;
    base_.machine.cpus = options_.cpus;
    for (const Statement& st : base_.statements) setup_ops_ += std::holds_alternative<Op>(st.body);
    // Each CPU's programs, with the handles its operations bind renamed for that CPU. A
    // handle belongs to one thread (the trace format's rule, but for `touch`, E1): the
    // setup's handles are T0's, so the other CPUs' programs that name one otherwise go.
    per_cpu_.resize(options_.cpus);
    upto_.resize(options_.cpus);
    result_.thread_programs.assign(options_.cpus, 0);
    result_.programs = 1;
    for (uint8_t c = 0; c < options_.cpus; ++c) {
      for (const auto& p : programs) {
        std::vector<Op> renamed = p;
        std::vector<std::pair<HandleId, HandleId>> map;
        bool own = true;
        for (size_t i = 0; i < renamed.size(); ++i) {
          const auto use = handle_use(renamed[i]);
          if (!use) continue;
          HandleId& h = handle_of(renamed[i]);
          if (use->binds) {
            const HandleId to = base_.intern_handle(bound_name(names, use->family, c, i));
            std::erase_if(map, [&](const auto& m) { return m.first == h; });
            map.emplace_back(h, to);
            h = to;
            continue;
          }
          const auto mine = std::find_if(map.begin(), map.end(), [&](const auto& m) { return m.first == h; });
          if (mine != map.end())
            h = mine->second;
          else if (c != 0 && !std::holds_alternative<Touch>(renamed[i]))
            own = false;
        }
        if (own) per_cpu_[c].push_back(std::move(renamed));
      }
      // Programs of at most m operations per CPU come before those of m + 1.
      for (unsigned m = 1; m <= options_.ops_per_cpu; ++m)
        upto_[c].push_back(static_cast<uint64_t>(
            std::count_if(per_cpu_[c].begin(), per_cpu_[c].end(), [&](const auto& p) { return p.size() <= m; })));
      result_.thread_programs[c] = per_cpu_[c].size();
      result_.programs *= per_cpu_[c].size();
    }

    for (unsigned k = options_.min_preemptions; k <= options_.preemptions && !result_.violation && !stopped_; ++k) {
      const auto level_start = Clock::now();
      level_ = BoundLevel{};
      level_.preemptions = k;
      for_each_program([&](const Trace& program) {
        const uint64_t before = level_.schedules;
        std::vector<ScheduleChoice> prefix;
        dfs(program, k, prefix, 0);
        level_.max_schedules = std::max(level_.max_schedules, level_.schedules - before);
        ++level_.programs;
        if (options_.max_programs && level_.programs >= options_.max_programs) {
          result_.complete = false;  // the next bound starts again from the first program
          return false;
        }
        return !result_.violation && !stopped_;
      });
      level_.seconds = since(level_start);
      result_.levels.push_back(level_);
      result_.schedules += level_.schedules;
      result_.runs += level_.runs;
      result_.inconclusive += level_.inconclusive;
    }
    result_.seconds = since(start_);
    return result_;
  }

 private:
  void stop() {
    stopped_ = true;
    result_.complete = false;
  }

  // Every program in order: size class m = 1..M (every CPU at most m operations, one exactly
  // m), then the CPUs' programs in mixed radix, T0's the slowest.
  template <class Fn>
  void for_each_program(Fn&& fn) {
    const uint8_t cpus = options_.cpus;
    std::vector<uint64_t> idx(cpus);
    for (size_t m = 0; m < options_.ops_per_cpu; ++m) {
      bool empty = false;
      for (uint8_t c = 0; c < cpus; ++c) empty = empty || upto_[c][m] == 0;
      if (empty) continue;
      std::fill(idx.begin(), idx.end(), 0);
      while (true) {
        bool new_here = false;
        for (uint8_t c = 0; c < cpus; ++c) new_here = new_here || idx[c] >= (m ? upto_[c][m - 1] : 0);
        if (new_here && !fn(program(idx))) return;
        size_t c = cpus;
        while (c-- > 0) {
          if (++idx[c] < upto_[c][m]) break;
          idx[c] = 0;
          if (c == 0) break;
        }
        if (c == 0 && idx[0] == 0) break;
      }
    }
  }

  // The world's setup on T0, then the CPUs' operations listed round robin.
  Trace program(const std::vector<uint64_t>& idx) {
    Trace t = base_;
    size_t longest = 0;
    for (uint8_t c = 0; c < options_.cpus; ++c) longest = std::max(longest, per_cpu_[c][idx[c]].size());
    for (size_t i = 0; i < longest; ++i)
      for (uint8_t c = 0; c < options_.cpus; ++c)
        if (i < per_cpu_[c][idx[c]].size()) {
          Statement st;
          st.body = per_cpu_[c][idx[c]][i];
          st.thread = c;
          t.statements.push_back(std::move(st));
        }
    return t;
  }

  // The schedules of `program` with exactly `bound` preemptions that extend `prefix` (cost
  // `cost` so far) only at choice points after its last.
  void dfs(const Trace& program, unsigned bound, std::vector<ScheduleChoice>& prefix, unsigned cost) {
    if (stopped_ || result_.violation) return;
    ConcurrentOptions c;
    c.faults = options_.faults;
    c.prescribed = &prefix;
    c.setup_ops = setup_ops_;
    c.conflict_points = options_.conflict_points;
    const ConcurrentResult r = run_concurrent(program, c);
    ++level_.runs;
    if ((level_.runs & 63) == 0) tick();
    if (r.status == RunStatus::malformed) {
      result_.error = "internal error: a prescribed schedule was refused (" + r.malformed + "):\n" + print_trace(r.ran);
      return stop();
    }
    if (cost == bound) {
      if (options_.on_schedule) options_.on_schedule(bound, r.ran);
      ++level_.schedules;
      level_.inconclusive += r.inconclusive;
      if (r.status == RunStatus::violation) return counterexample(r, cost);
    }
    const uint32_t first = prefix.empty() ? 0 : prefix.back().point + 1;
    for (uint32_t p = first; p < r.choice_points.size(); ++p) {
      const ChoicePoint& cp = r.choice_points[p];
      const unsigned next = cost + cp.preemption;
      if (next > bound) continue;
      for (uint8_t to = 0; to < options_.cpus; ++to) {
        if (to == cp.fallback || !((cp.runnable >> to) & 1u)) continue;
        prefix.push_back(ScheduleChoice{p, to});
        dfs(program, bound, prefix, next);
        prefix.pop_back();
        if (stopped_ || result_.violation) return;
      }
    }
  }

  // The schedule that failed, as the trace that ran (its switch lines), replayed as
  // `cmacheck replay` would.
  void counterexample(const ConcurrentResult& r, unsigned preemptions) {
    InterleavingCounterexample cx;
    cx.trace = r.ran;
    cx.preemptions = preemptions;
    for (const Statement& st : cx.trace.statements) cx.operations += std::holds_alternative<Op>(st.body);
    cx.operations -= setup_ops_;
    ConcurrentOptions replay;
    replay.faults = options_.faults;
    const ConcurrentResult again = run_concurrent(cx.trace, replay);
    if (again.status != RunStatus::violation || again.finding->violation.rule != r.finding->violation.rule) {
      result_.error = "internal error: the counterexample does not replay to " + r.finding->violation.rule +
                      " (a bug of the search):\n" + print_trace(cx.trace);
      return stop();
    }
    cx.finding = *again.finding;
    result_.violation = std::move(cx);
  }

  void tick() {
    const double t = since(start_);
    if (options_.seconds > 0 && t > options_.seconds) stop();
    if (options_.progress && t - last_progress_ >= 0.5) {
      last_progress_ = t;
      options_.progress({level_.preemptions, level_.programs, result_.programs, result_.schedules + level_.schedules,
                         result_.runs + level_.runs, t});
    }
  }

  const World& world_;
  const InterleavingOptions& options_;
  InterleavingResult result_;
  Trace base_;  // the world (cpus = N) with every handle name interned
  uint32_t setup_ops_ = 0;
  std::vector<std::vector<std::vector<Op>>> per_cpu_;
  std::vector<std::vector<uint64_t>> upto_;  // upto_[c][m - 1]: CPU c's programs of at most m operations
  BoundLevel level_;
  bool stopped_ = false;
  double last_progress_ = 0;
  Clock::time_point start_;
};

std::string fixed(double v, int digits) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

std::string command(const World& world, const InterleavingOptions& o) {
  std::string c = "cmacheck explore --world " + world.name + " --profile " + name(world.trace.machine.profile) +
                  " --cpus " + std::to_string(o.cpus) + " --ops-per-cpu " + std::to_string(o.ops_per_cpu) +
                  " --preemptions " + std::to_string(o.preemptions);
  if (o.ops != kAllOps) {
    std::string s;
    for (size_t k = 0; k < kOpClasses; ++k)
      if (has(o.ops, static_cast<OpClass>(k))) s += std::string(s.empty() ? "" : ",") + name(static_cast<OpClass>(k));
    c += " --ops " + s;
  }
  if (world.max_touches != World{}.max_touches) c += " --max-touches " + std::to_string(world.max_touches);
  for (auto list : {impl::all_faults(), impl::concurrent_faults()})
    for (const auto& f : list)
      if (o.faults.on(f.fault)) c += " --fault " + std::string(f.name);
  return c;
}

}  // namespace

InterleavingResult explore_interleavings(const World& world, const InterleavingOptions& options) {
  Search s(world, options);
  return s.run();
}

std::string interleavings_summary(const World& world, const InterleavingOptions& o, const InterleavingResult& r) {
  std::ostringstream out;
  out << "world " << world.name << " (" << name(world.trace.machine.profile) << "): " << world.description << "\n";
  out << command(world, o) << "\n";
  out << "programs per CPU (1-" << o.ops_per_cpu << " operations):";
  for (size_t c = 0; c < r.thread_programs.size(); ++c) out << " T" << c << " " << r.thread_programs[c];
  out << "; " << r.programs << " concurrent programs\n\n";
  out << "| preemptions | programs | schedules | runs | most of one program | inconclusive | seconds |\n"
         "|---|---|---|---|---|---|---|\n";
  for (const BoundLevel& l : r.levels)
    out << "| " << l.preemptions << " | " << l.programs << " | " << l.schedules << " | " << l.runs << " | "
        << l.max_schedules << " | " << l.inconclusive << " | " << fixed(l.seconds, 2) << " |\n";
  out << "\n"
      << r.schedules << " schedules, " << r.runs << " runs in " << fixed(r.seconds, 2) << " s ("
      << fixed(r.seconds > 0 ? static_cast<double>(r.runs) / r.seconds : 0, 0) << " runs/s)\n";
  if (!r.error.empty()) {
    out << "error: " << r.error << "\n";
    return out.str();
  }
  if (r.violation) {
    const InterleavingCounterexample& cx = *r.violation;
    out << "VIOLATION with " << cx.preemptions << " preemption(s), " << cx.operations << " operation(s) ("
        << cx.finding.violation.rule << "): no schedule with fewer preemptions of any program breaks a rule\n"
        << print_trace(cx.trace) << cx.finding.report;
  } else if (!r.complete) {
    out << "incomplete (--seconds or --max-programs): only the schedules counted above were checked, and held\n";
  } else {
    out << "held: every schedule with at most " << o.preemptions << " preemption(s) of every program satisfies every check";
    if (r.inconclusive)
      out << " (" << r.inconclusive << " inconclusive: the model comparison stopped at overlapping operations it cannot "
          << "state yet, impl's checks went on)";
    out << "\n";
  }
  return out.str();
}

std::string interleaving_counterexample_text(const World& world, const InterleavingOptions& o,
                                             const InterleavingResult& r) {
  std::ostringstream out;
  const InterleavingCounterexample& cx = *r.violation;
  out << "# Found by " << command(world, o) << "\n"
      << "# The first violation with the fewest preemptions (" << cx.preemptions << "), " << cx.operations
      << " operation(s) after the world's setup. Caught by " << cx.finding.violation.rule << ": "
      << cx.finding.violation.message << "\n";
  if (o.faults.any()) {
    out << "# Replay: cmacheck replay";
    for (auto list : {impl::all_faults(), impl::concurrent_faults()})
      for (const auto& f : list)
        if (o.faults.on(f.fault)) out << " --fault " << f.name;
    out << " FILE\n";
  }
  out << print_trace(cx.trace);
  return out.str();
}

}  // namespace cmacheck::explore
