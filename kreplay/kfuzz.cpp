// `cmacheck kfuzz`: boots until the time is up, each with a random area and as many
// generated traces as make `statements_per_boot`; -j N runs N qemu instances at once.
// Boot b's area and traces depend only on (seed, b), so the same seed gives the same
// traces on any -j; findings are reported in boot order.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <ostream>
#include <sstream>
#include <thread>

#include "kreplay/kfuzz.h"
#include "trace/print.h"

namespace cmacheck::kfuzz {

namespace {

using Clock = std::chrono::steady_clock;

struct BootRecord {
  Geometry geometry;
  std::vector<Trace> traces;
  BootOutcome outcome;
  double ended_s = 0;  // since the campaign's start
};

std::string slug(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else if (!out.empty() && out.back() != '-')
      out += '-';
    if (out.size() >= 24) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "difference" : out;
}

std::string fixed(double v, int digits) {
  char b[64];
  std::snprintf(b, sizeof(b), "%.*f", digits, v);
  return b;
}

}  // namespace

CampaignResult run_campaign(const CampaignOptions& o, std::ostream& out, std::ostream& err) {
  CampaignResult result;
  const std::string kernel_dir = o.boot.kernel_dir.empty() ? kreplay::default_kernel_dir() : o.boot.kernel_dir;
  BootOptions bo = o.boot;
  bo.kernel_dir = kernel_dir;
  const std::string what = "Linux " + bo.kernel + (bo.fault.empty() ? "" : " with kernel/faults/" + bo.fault + ".patch");
  if (!kreplay::kernel_built(kernel_dir, bo.kernel, bo.fault)) {
    err << "kfuzz: the " << what << " build is missing or out of date: run `make kernel KERNEL=" << bo.kernel
        << (bo.fault.empty() ? "" : " KERNEL_FAULT=" + bo.fault) << "`\n";
    result.status = 3;
    return result;
  }
  out << "kfuzz: " << what << ", seed " << o.seed << ", " << o.seconds << " s, -j " << o.jobs << ", about "
      << o.statements_per_boot << " statements per boot\n";

  const auto start = Clock::now();
  auto since = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  std::atomic<uint64_t> next_boot{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<uint64_t, BootRecord> records;
  size_t done_boots = 0, done_traces = 0, done_statements = 0, disagreeing = 0;

  auto worker = [&] {
    while (!stop.load() && since() < o.seconds) {
      const uint64_t b = next_boot.fetch_add(1);
      BootRecord rec;
      rec.geometry = random_geometry(derive_seed(o.seed, b, ~uint64_t{0}));
      size_t planned = 0;
      GenerateOptions gen;
      gen.profile = profile_of_kernel(bo.kernel);
      for (uint64_t i = 0; planned < o.statements_per_boot; ++i) {
        rec.traces.push_back(generate_trace(derive_seed(o.seed, b, i), rec.geometry, gen));
        planned += rec.traces.back().statements.size();
      }
      BootOptions mine = bo;
      if (!bo.keep_dir.empty()) mine.keep_dir = bo.keep_dir + "/boot-" + std::to_string(b);
      rec.outcome = run_boot(rec.geometry, rec.traces, mine);
      rec.ended_s = since();
      std::lock_guard<std::mutex> lock(mu);
      bool found = false;
      for (const TraceOutcome& t : rec.outcome.traces) {
        if (t.verdict == TraceOutcome::Verdict::agree || t.verdict == TraceOutcome::Verdict::disagree) {
          ++done_traces;
          done_statements += t.statements;
        }
        if (t.verdict == TraceOutcome::Verdict::disagree || t.verdict == TraceOutcome::Verdict::refused) {
          found = true;
          ++disagreeing;
        }
      }
      ++done_boots;
      if (!rec.outcome.error.empty()) found = true;
      if (found && !o.keep_going) stop = true;
      if (o.progress) {
        const double s = since();
        err << "\rkfuzz: " << fixed(s, 0) << " s  boots " << done_boots << "  traces " << done_traces
            << "  statements " << done_statements << " (" << fixed(s > 0 ? done_statements / s : 0, 0)
            << "/s)  disagreements " << disagreeing << "   " << std::flush;
      }
      records.emplace(b, std::move(rec));
    }
  };
  std::vector<std::thread> threads;
  for (unsigned j = 0; j < std::max(1u, o.jobs); ++j) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  result.seconds = since();
  if (o.progress) err << "\n";

  // The report, in boot order.
  std::map<std::string, std::pair<uint64_t, size_t>> first_by_signature;  // signature -> (boot, trace)
  size_t inconclusive = 0, refused = 0, not_run = 0, failed_boots = 0;
  for (auto& [b, rec] : records) {
    ++result.boots;
    if (!rec.outcome.error.empty()) {
      ++failed_boots;
      out << "kfuzz: boot " << b << " (" << describe(rec.geometry) << "): " << rec.outcome.error << "\n";
    }
    for (size_t i = 0; i < rec.outcome.traces.size(); ++i) {
      const TraceOutcome& t = rec.outcome.traces[i];
      switch (t.verdict) {
        case TraceOutcome::Verdict::agree:
          ++result.traces;
          result.statements += t.statements;
          break;
        case TraceOutcome::Verdict::disagree:
          ++result.traces;
          result.statements += t.statements;
          ++result.disagreeing_traces;
          if (result.first_finding_s < 0) result.first_finding_s = rec.ended_s;
          if (!first_by_signature.count(t.signature)) {
            first_by_signature[t.signature] = {b, i};
            out << "kfuzz: boot " << b << " trace " << i << " (" << describe(rec.geometry)
                << ") DISAGREES: " << t.differences.front() << "\n";
          }
          break;
        case TraceOutcome::Verdict::refused:
          ++refused;
          out << "kfuzz: boot " << b << " trace " << i << ": the generator made a trace kreplay refuses: " << t.report
              << "\n";
          break;
        case TraceOutcome::Verdict::inconclusive:
          if (!inconclusive++) {
            std::string why;
            std::istringstream in(t.report);
            for (std::string l; std::getline(in, l);)
              if (l.find("INCONCLUSIVE") != std::string::npos || l.find("inconclusive") != std::string::npos) why += l + "\n";
            out << "kfuzz: boot " << b << " trace " << i << " is inconclusive (the first of them):\n" << why;
          }
          break;
        case TraceOutcome::Verdict::not_run:
          ++not_run;
          break;
      }
    }
  }
  const double rate = result.seconds > 0 ? result.statements / result.seconds : 0;
  out << "kfuzz: " << fixed(result.seconds, 1) << " s, " << result.boots << " boots, " << result.traces
      << " traces, " << result.statements << " statements compared with the model, " << fixed(rate, 1)
      << " statements/s (" << fixed(rate / std::max(1u, o.jobs), 1) << " per qemu instance), "
      << result.disagreeing_traces << " disagreeing traces";
  if (inconclusive) out << ", " << inconclusive << " inconclusive";
  if (not_run) out << ", " << not_run << " not run (after a crash or a failed clean-up)";
  out << "\n";
  if (result.first_finding_s >= 0)
    out << "kfuzz: first disagreement found after " << fixed(result.first_finding_s, 1) << " s\n";

  // Shrink the first disagreement of each signature, with the kernel as the oracle, in the
  // order they were found.
  std::vector<std::pair<std::string, std::pair<uint64_t, size_t>>> findings(first_by_signature.begin(),
                                                                          first_by_signature.end());
  std::sort(findings.begin(), findings.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  if (o.shrink_max && findings.size() > o.shrink_max) {
    out << "kfuzz: " << findings.size() << " kinds of difference; shrinking the first " << o.shrink_max
        << " (--shrink-max)\n";
    findings.resize(o.shrink_max);
  }
  out << std::flush;
  for (const auto& [sig, where] : findings) {
    const BootRecord& rec = records.at(where.first);
    const Trace& original = rec.traces[where.second];
    const TraceOutcome& t = rec.outcome.traces[where.second];
    Trace shrunk = original;
    ShrinkStats st;
    if (o.shrink) {
      if (o.progress) err << "kfuzz: shrinking the '" << sig << "' disagreement (" << original.statements.size()
                          << " statements) on the kernel ...\n";
      shrunk = shrink_on_kernel(original, rec.geometry, sig, bo, st, [&](size_t n) {
        if (o.progress) err << "\rkfuzz: shrinking: " << n << " statements   " << std::flush;
      });
      if (o.progress) err << "\n";
    }
    // The shrunk trace's own differences (its boot was the last that kept it): run it once more alone.
    BootOutcome alone = run_boot(rec.geometry, {shrunk}, bo);
    const TraceOutcome& a = alone.traces.front();
    std::string header = "# kfuzz finding (" + what + "): seed " + std::to_string(o.seed) + ", boot " +
                         std::to_string(where.first) + ", trace " + std::to_string(where.second) + ", " +
                         describe(rec.geometry) + "\n";
    header += "# what differs (" + sig + "), kernel against the model:\n";
    for (const std::string& d : (a.differences.empty() ? t.differences : a.differences)) header += "#   " + d + "\n";
    if (o.shrink)
      header += "# shrunk on the kernel from " + std::to_string(original.statements.size()) + " to " +
                std::to_string(shrunk.statements.size()) + " statements (" + std::to_string(st.rounds) + " rounds, " +
                std::to_string(st.candidates) + " candidates in " + std::to_string(st.boots) + " boots, " +
                fixed(st.seconds, 0) + " s)\n";
    header += "# reproduce: cmacheck kreplay --kernel " + bo.kernel +
              (bo.fault.empty() ? "" : " --kernel-fault " + bo.fault) + " THIS_FILE\n";
    out << "kfuzz: '" << sig << "': " << original.statements.size() << " statements shrunk to "
        << shrunk.statements.size() << (o.shrink ? " in " + fixed(st.seconds, 0) + " s (" + std::to_string(st.boots) + " boots)" : "")
        << (a.verdict == TraceOutcome::Verdict::disagree ? "" : " (alone it does not disagree: flaky)") << "\n";
    const std::string text = header + print_trace(shrunk);
    out << text;
    if (!o.found_dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(o.found_dir, ec);
      const std::string path = o.found_dir + "/found-" + slug(sig) + "-" + bo.kernel +
                               (bo.fault.empty() ? "" : "-" + bo.fault) + "-s" + std::to_string(o.seed) + "-b" +
                               std::to_string(where.first) + "-t" + std::to_string(where.second) + ".trace";
      std::ofstream f(path);
      f << text;
      if (f) {
        result.found_files.push_back(path);
        out << "kfuzz: written " << path << "\n";
      } else {
        err << "kfuzz: cannot write " << path << "\n";
      }
    }
  }
  if (result.disagreeing_traces || refused)
    result.status = 1;
  else if (result.traces == 0 || (failed_boots && failed_boots == result.boots))
    result.status = 3;
  return result;
}

}  // namespace cmacheck::kfuzz
