// Many traces in one boot. The batch script is
//
//   quiet                      result lines on ttyS1 only
//   trace n=0                  a marker in the kernel log (which trace a BUG belongs to)
//   <trace 0's kreplay script, `stats` as `stats delta`>
//   reset                      everything given back; the area must be empty again
//   trace n=1
//   ...
//
// and the result lines are cut back into one kreplay run per trace (its lines renumbered
// from 1, the bitmap rebuilt from the deltas), which kreplay's comparison reads as if the
// trace had had a boot of its own.
#include <chrono>
#include <sstream>

#include "kreplay/kfuzz.h"
#include "trace/print.h"

namespace cmacheck::kfuzz {

namespace {

using kreplay::KernelResults;
using kreplay::ResultLine;

bool has_crash_lines(const std::string& err) {
  for (const char* k : {"BUG:", "kernel BUG", "Oops", "Kernel panic", "WARNING:", "Bad page", "page dumped because"})
    if (err.find(k) != std::string::npos) return true;
  return false;
}

// The trace of a boot that was running when the kernel logged its first problem: the last
// `cmacheck kfuzz: trace K` marker before it in the console log.
std::optional<size_t> trace_of_console_problem(const std::string& console) {
  std::istringstream in(console);
  std::optional<size_t> current;
  for (std::string l; std::getline(in, l);) {
    if (auto p = l.find("cmacheck kfuzz: trace "); p != std::string::npos) {
      current = std::stoul(l.substr(p + 22));
      continue;
    }
    if (has_crash_lines(l)) return current;
  }
  return std::nullopt;
}

struct Planned {
  std::optional<kreplay::Plan> plan;
  kreplay::Predictions pred;
  std::string problem;
  uint32_t marker = 0, reset = 0;      // batch script lines
  std::vector<uint32_t> batch_line;    // by plan script line (1-based; [0] unused)
  // Holds outside the area: (the hold's batch line, the `busy` just before it). The kernel's
  // own pages can land next to the area as a boot goes on; a hold on them fails where the
  // model's empty machine succeeds, which says nothing about CMA: inconclusive.
  std::vector<std::pair<uint32_t, uint32_t>> outside_holds;
};

}  // namespace

std::string signature_of(const std::vector<std::string>& differences) {
  if (differences.empty()) return "";
  const std::string& d = differences.front();
  if (d.rfind("the kernel crashed", 0) == 0) return "crash";
  const size_t colon = d.find(':');
  return colon == std::string::npos ? d : d.substr(0, colon);
}

BootOutcome run_boot(const Geometry& g, const std::vector<Trace>& traces, const BootOptions& o) {
  BootOutcome out;
  out.traces.resize(traces.size());
  std::vector<Planned> planned(traces.size());
  std::string script = "quiet\n";
  uint32_t line = 1;
  size_t statements = 0;
  const kreplay::Plan* any_plan = nullptr;
  for (size_t i = 0; i < traces.size(); ++i) {
    Planned& p = planned[i];
    kreplay::PlanOptions po;
    po.kernel = o.kernel;
    po.mem_mib = kGuestMiB;
    kreplay::PlanResult pr = kreplay::make_plan(traces[i], print_trace(traces[i]), po);
    if (!pr.plan) {
      p.problem = "not kernel-checkable: line " + std::to_string(pr.problem->line) + ": " + pr.problem->message;
      continue;
    }
    p.pred = kreplay::predict(pr.plan->trace, kPredictFullEvery);
    if (!p.pred.complete) {
      p.problem = "the model has no prediction (the trace fails `cmacheck replay`): " + p.pred.message;
      continue;
    }
    p.plan = std::move(pr.plan);
    any_plan = &*p.plan;
    script += "trace n=" + std::to_string(i) + "\n";
    p.marker = ++line;
    p.batch_line.push_back(0);
    std::istringstream in(p.plan->script);
    for (std::string l; std::getline(in, l);) {
      if (l.rfind("hold ", 0) == 0) {
        const size_t at = l.find(" pfn="), c = l.find(" count=");
        const uint64_t pfn = std::stoull(l.substr(at + 5));
        const uint64_t n = c == std::string::npos ? 1 : std::stoull(l.substr(c + 7));
        if (pfn + n <= g.base || pfn >= g.base + g.pages) {
          script += "busy pfn=" + std::to_string(pfn) + " count=" + std::to_string(n) + "\n";
          p.outside_holds.emplace_back(line + 2, line + 1);
          ++line;
        }
      }
      script += (l == "stats" ? "stats delta" : l) + "\n";
      p.batch_line.push_back(++line);
    }
    script += "reset\n";
    p.reset = ++line;
    statements += p.plan->trace.statements.size();
  }
  for (size_t i = 0; i < traces.size(); ++i)
    if (!planned[i].plan) {
      out.traces[i].verdict = TraceOutcome::Verdict::refused;
      out.traces[i].report = planned[i].problem;
    }
  if (!any_plan) return out;

  // One qemu run of the whole batch.
  kreplay::Plan batch = *any_plan;
  batch.script = script;
  kreplay::RunKernelOptions ro;
  ro.kernel_dir = o.kernel_dir.empty() ? kreplay::default_kernel_dir() : o.kernel_dir;
  ro.timeout_s = o.timeout_s ? o.timeout_s : static_cast<unsigned>(120 + statements / 20);
  ro.keep_dir = o.keep_dir;
  ro.fault = o.fault;
  kreplay::KernelRun run;
  std::string error;
  const auto t0 = std::chrono::steady_clock::now();
  if (!kreplay::run_kernel(batch, ro, run, error)) {
    out.error = error;
    return out;
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out.run_status = run.status;
  const KernelResults res = kreplay::parse_results(run.out);
  if (!res.boot) {
    out.error = "the guest produced no boot line (run.sh status " + std::to_string(run.status) + "): " + run.err;
    return out;
  }
  if (res.areas.size() != 1 || res.areas[0].number("base_pfn") != g.base || res.areas[0].number("count") != g.pages) {
    out.placed = false;
    out.error = "the kernel did not place the area at " + describe(g) + ": " + res.boot->raw;
    return out;
  }
  const std::optional<size_t> problem_trace = run.status == 3 ? trace_of_console_problem(run.console) : std::nullopt;
  std::string head = res.boot->raw + "\n";
  for (const ResultLine& a : res.areas) head += a.raw + "\n";

  // The bitmap, rebuilt from the deltas as the boot goes (clear at the start and after a reset).
  std::vector<bool> bits(g.pages, false);
  bool ended = false;  // a trace stopped the boot: the later ones did not run
  for (size_t i = 0; i < traces.size(); ++i) {
    Planned& p = planned[i];
    TraceOutcome& t = out.traces[i];
    if (!p.plan || ended) continue;
    if (!res.by_line.count(p.marker)) {  // the guest stopped before this trace
      ended = true;
      continue;
    }
    kreplay::KernelRun tr;
    tr.out = head;
    for (uint32_t l = 1; l < p.batch_line.size(); ++l) {
      auto it = res.by_line.find(p.batch_line[l]);
      if (it == res.by_line.end()) continue;
      ResultLine r = it->second;
      std::string rest = r.rest;
      if (r.verb == "stats" && r.status == "ok" && r.fields.count("flip")) {
        auto flips = kreplay::parse_runs(r.fields.at("flip"));
        if (flips)
          for (uint64_t b : *flips)
            if (b < bits.size()) bits[b] = !bits[b];
        std::vector<uint64_t> set;
        for (uint64_t b = 0; b < bits.size(); ++b)
          if (bits[b]) set.push_back(b);
        const size_t f = rest.find("flip=");
        rest = rest.substr(0, f) + "set=" + (flips ? kreplay::format_runs(set) : "?") +
               rest.substr(rest.find(' ', f) == std::string::npos ? rest.size() : rest.find(' ', f));
      }
      tr.out += "KR " + std::to_string(l) + " " + r.verb + " " + r.status + (rest.empty() ? "" : " " + rest) +
                "\n";
    }
    const auto reset = res.by_line.find(p.reset);
    const bool completed = reset != res.by_line.end();
    if (completed) tr.out += "KR " + std::to_string(p.batch_line.size()) + " end ok\n";
    if (completed && reset->second.status == "ok") std::fill(bits.begin(), bits.end(), false);
    // The run's status as this trace alone would have had it.
    if (!completed) {
      tr.status = 2;  // the guest stopped in this trace
      tr.err = run.err;
      ended = true;
    } else if (problem_trace && *problem_trace == i) {
      tr.status = 3;  // a BUG/WARNING logged while this trace ran
      tr.err = run.err;
    }
    std::ostringstream report;
    kreplay::CompareOptions co;
    co.quiet = true;
    int s = kreplay::compare(*p.plan, p.pred, tr, "trace " + std::to_string(i), co, report);
    t.report = report.str();
    std::istringstream rin(t.report);
    for (std::string l; std::getline(rin, l);) {
      const auto d = l.find("DISAGREE ");
      if (d != std::string::npos && l.find("DISAGREE (trace)") == std::string::npos) t.differences.push_back(l.substr(d + 9));
    }
    if (completed && reset->second.status != "ok") {
      t.differences.push_back("clean-up: after releasing everything the area is not empty: " + reset->second.rest);
      t.report += "   reset " + reset->second.status + " " + reset->second.rest + "\n";
      ended = true;
    }
    if (s == kreplay::kDisagree && t.differences.empty())
      t.differences.push_back(has_crash_lines(tr.err) ? "the kernel crashed or logged a BUG/WARNING" : "expectation: the kernel differs from the trace's expectation");
    for (const auto& [hold, busy] : p.outside_holds) {
      auto h = res.by_line.find(hold), b = res.by_line.find(busy);
      if (h != res.by_line.end() && h->second.status == "fail" && b != res.by_line.end() &&
          b->second.number("busy").value_or(0) > 0) {
        t.differences.clear();
        t.report += "   inconclusive: the kernel's own pages lay at the frames of an outside hold (" + b->second.rest +
                    ")\n";
        s = kreplay::kInconclusive;
      }
    }
    t.signature = signature_of(t.differences);
    t.verdict = !t.differences.empty()          ? TraceOutcome::Verdict::disagree
                : s == kreplay::kInconclusive   ? TraceOutcome::Verdict::inconclusive
                : s == kreplay::kAgree          ? TraceOutcome::Verdict::agree
                                                : TraceOutcome::Verdict::inconclusive;
    if (t.verdict == TraceOutcome::Verdict::agree) t.statements = p.plan->trace.statements.size();
    if (t.verdict == TraceOutcome::Verdict::disagree) t.statements = p.plan->trace.statements.size();
  }
  return out;
}

}  // namespace cmacheck::kfuzz
