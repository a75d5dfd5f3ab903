// `cmacheck sim`: success rates of contiguous requests with and without a boot reservation
// (issue 8, docs/success-rates.md). Thin: parses options, calls sim::run, prints.
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <memory>
#include <sstream>
#include <string>

#include "impl/faults.h"
#include "sim/report.h"
#include "sim/sim.h"
#include "tools/commands.h"

using namespace cmacheck;

namespace {

// "4G", "512M", "64K", "1.5G"; a bare number is `unit` bytes. Returns pages of 4 KiB.
bool parse_size(const std::string& s, double unit, uint64_t& pages) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !(v > 0)) return false;
  double mult = unit;
  const std::string suffix(end);
  if (suffix == "K" || suffix == "KiB" || suffix == "k")
    mult = 1024;
  else if (suffix == "M" || suffix == "MiB")
    mult = 1024.0 * 1024;
  else if (suffix == "G" || suffix == "GiB")
    mult = 1024.0 * 1024 * 1024;
  else if (suffix == "T" || suffix == "TiB")
    mult = 1024.0 * 1024 * 1024 * 1024;
  else if (!suffix.empty())
    return false;
  const double bytes = v * mult;
  if (bytes < 4096 || std::fmod(bytes, 4096) != 0 || bytes > 0x1p52) return false;
  pages = static_cast<uint64_t>(bytes / 4096);
  return true;
}

bool parse_pct(const std::string& s, double& out) {
  char* end = nullptr;
  std::string t = s;
  if (!t.empty() && t.back() == '%') t.pop_back();
  const double v = std::strtod(t.c_str(), &end);
  if (end == t.c_str() || *end != '\0' || !(v >= 0 && v <= 100)) return false;
  out = v / 100;
  return true;
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  return static_cast<bool>(f);
}

// One overwritten stderr line; redrawn only when the shown percentage changes.
class Progress {
 public:
  explicit Progress(bool on) : on_(on), start_(std::chrono::steady_clock::now()) {}
  void update(uint64_t done, uint64_t total) {
    if (!on_) return;
    const int p = static_cast<int>(100 * done / std::max<uint64_t>(total, 1));
    std::lock_guard<std::mutex> g(lock_);
    if (p == shown_) return;
    shown_ = p;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::string bar(static_cast<size_t>(p / 4), '#');
    bar.resize(25, '.');
    std::fprintf(stderr, "\rsim [%s] %3d %%  %llu/%llu trials  %.0f s ", bar.c_str(), p,
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(total), s);
    std::fflush(stderr);
  }
  void finish() {
    if (on_ && shown_ >= 0) std::fprintf(stderr, "\r%*s\r", 70, "");
  }

 private:
  bool on_;
  std::chrono::steady_clock::time_point start_;
  std::mutex lock_;
  int shown_ = -1;
};

// What the command line gave; each option overrides the preset only when given, wherever
// it stands relative to --preset.
struct SimArgs {
  std::string preset = "default";
  std::string memory, area, orders, sizes, config = "both";
  unsigned pageblock_order = 0, max_order = 0;
  std::string utilisation, peak, unmovable, reclaimable, pin_short, pin_long, background;
  double aging = 0;
  unsigned pcp = 0;
  uint32_t trials = 0;
  std::vector<impl::Fault> faults;
  std::optional<Profile> profile;
  bool compare_profiles = false;
  sim::Options run;
  std::string csv_path, plot_path;
  bool progress = false;
  std::map<std::string, CLI::Option*> opt;  // by long name, to ask whether it was given
  bool given(const std::string& name) const { return opt.at(name)->count() > 0; }
};

uint64_t pages_of(const std::string& size) {
  uint64_t pages = 0;
  parse_size(size, 1024.0 * 1024, pages);  // checked when parsed
  return pages;
}

double fraction_of(const std::string& pct) {
  double d = 0;
  parse_pct(pct, d);  // checked when parsed
  return d;
}

std::vector<uint64_t> sizes_of(const std::string& list) {
  std::vector<uint64_t> out;
  std::istringstream in(list);
  for (std::string item; std::getline(in, item, ',');) out.push_back(pages_of(item));
  return out;
}

int run(SimArgs& a) {
  const sim::Preset* preset = sim::find_preset(a.preset);
  sim::Workload w = preset->workload;
  sim::Options o = a.run;
  o.trials = a.given("--trials") ? a.trials : preset->trials;
  if (a.given("--memory")) w.memory_pages = pages_of(a.memory);
  if (a.given("--area")) w.area_pages = pages_of(a.area);
  if (a.given("--pageblock-order")) w.pageblock_order = static_cast<uint8_t>(a.pageblock_order);
  if (a.given("--max-order")) w.max_order = static_cast<uint8_t>(a.max_order);
  if (a.given("--utilisation")) w.utilisation = fraction_of(a.utilisation);
  if (a.given("--peak")) w.peak = fraction_of(a.peak);
  if (a.given("--unmovable")) w.unmovable = fraction_of(a.unmovable);
  if (a.given("--reclaimable")) w.reclaimable = fraction_of(a.reclaimable);
  if (a.given("--pin-short")) w.pin_short = fraction_of(a.pin_short);
  if (a.given("--pin-long")) w.pin_long = fraction_of(a.pin_long);
  if (a.given("--aging")) w.aging = a.aging;
  if (a.given("--pcp")) w.pcp_high = static_cast<uint16_t>(a.pcp);
  if (a.given("--background")) w.background = fraction_of(a.background);
  if (a.given("--sizes")) w.sizes = sizes_of(a.sizes);
  if (a.given("--orders")) {
    std::string err;
    sim::parse_orders(a.orders, w.orders, err);  // checked when parsed
  }
  for (impl::Fault f : a.faults) w.faults.add(f);
  if (a.profile) w.profile = *a.profile;
  if (a.config == "reservation")
    o.configs = {sim::Config::reservation};
  else if (a.config == "no-reservation")
    o.configs = {sim::Config::no_reservation};
  else
    o.configs = {sim::Config::reservation, sim::Config::no_reservation};
  if (const std::string err = w.validate(); !err.empty()) return cli::usage_error(err);

  Progress bar(a.given("--progress") ? a.progress : isatty(2) != 0);
  o.progress = [&bar](uint64_t done, uint64_t total) { bar.update(done, total); };
  // --compare-profiles: the same workload and seed under every profile, one after the other.
  std::vector<Profile> profiles{w.profile};
  if (a.compare_profiles) profiles = {Profile::linux_6_1, Profile::linux_6_12};
  std::vector<sim::Summary> runs;
  std::string csv;
  for (Profile p : profiles) {
    w.profile = p;
    sim::Summary s;
    try {
      s = sim::run(w, o);
    } catch (const sim::SimViolation& v) {
      bar.finish();
      std::cerr << "cmacheck sim: VIOLATION (" << name(p) << "): " << v.message << "\n"
                << "cmacheck sim: this is a bug in impl/, not a simulation result; rerun with --full-every 1 "
                   "to find the first operation that breaks it\n";
      return cli::kViolation;
    }
    bar.finish();
    s.preset = preset->name;
    std::cout << sim::markdown(s) << "\n" << std::flush;
    std::cerr << "sim: " << name(p) << ": " << s.trials_run << " trials (" << s.options.trials
              << " per configuration) in " << std::round(s.seconds * 10) / 10 << " s on " << s.threads_used
              << " thread(s): " << std::round(static_cast<double>(s.trials_run) / s.seconds * 100) / 100
              << " trials/s\n";
    const std::string table = sim::csv(s);
    // One CSV for every profile: the header once, then each run's rows.
    csv += runs.empty() ? table : table.substr(table.find('\n') + 1);
    runs.push_back(std::move(s));
  }
  if (runs.size() > 1) std::cout << "## " << name(runs[0].workload.profile) << " against " << name(runs[1].workload.profile) << "\n\n" << sim::markdown_profiles(runs) << std::flush;
  if (!a.csv_path.empty() && !write_file(a.csv_path, csv)) {
    std::cerr << a.csv_path << ": error: cannot write\n";
    return cli::kBadInput;
  }
  if (!a.plot_path.empty() && !write_file(a.plot_path, sim::svg(runs))) {
    std::cerr << a.plot_path << ": error: cannot write\n";
    return cli::kBadInput;
  }
  return cli::kHeld;
}

// Checks of option values, with the parsers that run() uses.
CLI::Validator check(std::function<bool(const std::string&)> ok, const std::string& what) {
  return CLI::Validator(
      [ok, what](std::string& v) -> std::string { return ok(v) ? "" : "bad value '" + v + "': " + what; }, "");
}

const char* const kFooter =
    "Ages a simulated machine (the reference allocator, impl/) and measures how often one\n"
    "contiguous request succeeds, with a CMA area reserved at boot (cma_alloc) and without one\n"
    "(alloc_contig over the whole zone). Each trial: fill memory to the utilisation, then churn\n"
    "in cycles that allocate up to the peak and free blocks chosen at random back down to the\n"
    "utilisation; pin a share of the movable blocks; then, on a copy of the aged machine per\n"
    "size, make one request and release it. Trials are independent: trial i of configuration c\n"
    "uses a PRNG seeded from (seed, c, i) only, so results do not depend on --threads.\n"
    "Prints a Markdown table on stdout; timing and progress go to stderr.\n"
    "See docs/success-rates.md for the method and the answer.\n"
    "\n"
    "presets (--preset NAME; every other option overrides it, wherever it stands):\n"
    "  default      4 GiB x86-64 (2 MiB pageblocks), 256 MiB area, 80 % in use (peak 100 %),\n"
    "               10 % unmovable, 10 % reclaimable, orders 0-3, pins 0.1 % short / 0.1 % long; 24 trials\n"
    "  phone-2012   512 MiB arm32 phone (4 MiB pageblocks, no THP), 64 MiB camera area, 90 % in\n"
    "               use, 15 % unmovable, 0.2 % of movable blocks under DMA, no long-term pins; 200 trials\n"
    "  server       16 GiB x86-64, 1 GiB area, 90 % in use (page cache), 5 % unmovable, pins\n"
    "               0.1 % short / 0.5 % long (RDMA, VFIO); 8 trials (about 5 s of CPU each)\n"
    "SIZE: 4G, 512M, 64K (a bare number is MiB). PCT: a percentage, 0.1 means 0.1 %.\n"
    "\n"
    "exit status: 0 done, 1 an impl invariant broke (a bug in impl/, not a result), 2 bad input";

cli::Command add(CLI::App& parent) {
  CLI::App* cmd =
      parent.add_subcommand("sim", "success rates of 1-8 MiB contiguous requests with and without a CMA area");
  auto a = std::make_shared<SimArgs>();
  auto& opt = a->opt;
  const auto size_ok = check([](const std::string& v) { uint64_t p; return parse_size(v, 1024.0 * 1024, p); },
                             "a size such as 4G, 512M or 64K, a multiple of 4 KiB");
  const auto pct_ok = check([](const std::string& v) { double d; return parse_pct(v, d); }, "a percentage 0-100");
  const auto sizes_ok = check(
      [](const std::string& list) {
        std::istringstream in(list);
        size_t n = 0;
        for (std::string item; std::getline(in, item, ','); ++n)
          if (uint64_t p; !parse_size(item, 1024.0 * 1024, p)) return false;
        return n > 0;
      },
      "a list of sizes such as 1M,2M,4M,8M");
  const CLI::Validator orders_ok(
      [](std::string& v) -> std::string {
        std::array<double, sim::kMaxOrders> orders{};
        std::string err;
        return sim::parse_orders(v, orders, err) ? "" : err;
      },
      "");
  std::vector<std::string> preset_names;
  for (const auto& p : sim::presets()) preset_names.push_back(p.name);
  const CLI::Validator order_range = CLI::Validator(CLI::Range(0u, unsigned{sim::kMaxOrders} - 1)).description("");

  cmd->add_option("--preset", a->preset, "default, phone-2012 or server (see below)")
      ->type_name("NAME")
      ->check(CLI::IsMember(preset_names));
  // machine
  opt["--memory"] = cmd->add_option("--memory", a->memory, "memory (default 4G)")->type_name("SIZE")->check(size_ok);
  opt["--area"] = cmd->add_option("--area", a->area, "the boot reservation of the `reservation` configuration (256M)")
                      ->type_name("SIZE")
                      ->check(size_ok);
  opt["--pageblock-order"] = cmd->add_option("--pageblock-order", a->pageblock_order, "pageblock of 2^N pages (9: 2 MiB)")
                                 ->type_name("N")
                                 ->check(order_range);
  opt["--max-order"] = cmd->add_option("--max-order", a->max_order, "largest buddy block 2^N pages (10: 4 MiB)")
                           ->type_name("N")
                           ->check(order_range);
  // workload
  opt["--utilisation"] =
      cmd->add_option("--utilisation,--utilization", a->utilisation,
                      "memory in use at the request and at the bottom of each aging cycle (80)")
          ->type_name("PCT")
          ->check(pct_ok);
  opt["--peak"] = cmd->add_option("--peak", a->peak,
                                  "memory in use at the top of each aging cycle (100: until allocations fail,\n"
                                  "where the kernel would reclaim); equal to --utilisation: churn one block at a time")
                      ->type_name("PCT")
                      ->check(pct_ok);
  opt["--unmovable"] = cmd->add_option("--unmovable", a->unmovable, "unmovable allocations (slab, page tables, drivers) (10)")
                           ->type_name("PCT")
                           ->check(pct_ok);
  opt["--reclaimable"] =
      cmd->add_option("--reclaimable", a->reclaimable, "reclaimable slab (dentries, inodes): not movable either (10)")
          ->type_name("PCT")
          ->check(pct_ok);
  opt["--orders"] = cmd->add_option("--orders", a->orders, "share of pages by block order, ORDER:SHARE,... (0:60,1:15,2:15,3:10)")
                        ->type_name("MIX")
                        ->check(orders_ok);
  opt["--pin-short"] =
      cmd->add_option("--pin-short", a->pin_short, "movable blocks under a short-term pin (I/O in flight) at the request (0.1)")
          ->type_name("PCT")
          ->check(pct_ok);
  opt["--pin-long"] = cmd->add_option("--pin-long", a->pin_long, "movable blocks pinned long-term (FOLL_LONGTERM) for life (0.1)")
                          ->type_name("PCT")
                          ->check(pct_ok);
  opt["--pcp"] = cmd->add_option("--pcp", a->pcp, "per-CPU page lists of high mark N pages (rules Q1-Q5; 0: none, default)")
                     ->type_name("N")
                     ->check(CLI::Range(0, 4096));
  opt["--background"] =
      cmd->add_option("--background", a->background,
                      "a second CPU during the request: the share of the request's step boundaries at which\n"
                      "CPU 1 runs a step of its own (frees, allocations, short pins; 0 none, default)")
          ->type_name("PCT")
          ->check(pct_ok);
  opt["--aging"] = cmd->add_option("--aging", a->aging, "churn after the first fill, in multiples of the memory in use (1)")
                       ->type_name("TURNOVERS");
  opt["--sizes"] = cmd->add_option("--sizes", a->sizes, "request sizes, e.g. 1M,2M,4M,8M (a bare number is MiB)")
                       ->type_name("LIST")
                       ->check(sizes_ok);
  // run
  cmd->add_option("--config", a->config, "both (default), reservation or no-reservation")
      ->type_name("WHICH")
      ->check(CLI::IsMember({"both", "reservation", "no-reservation"}));
  opt["--trials"] = cmd->add_option("--trials", a->trials, "trials per configuration (default: the preset's)")
                        ->type_name("N")
                        ->check(CLI::Validator(CLI::Range(1u, 1'000'000u)).description(""));
  cli::add_seed_option(*cmd, a->run.seed);
  cli::add_jobs_option(*cmd, a->run.threads, "--threads");
  cmd->add_option("--full-every", a->run.full_every,
                  "full invariant tier on trial 0 and every N-th (0 = never); the cheap tier\n"
                  "runs after every operation; a violation exits 1")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--csv", a->csv_path, "also write the figures as CSV")->type_name("FILE")->check(cli::kOutputFile);
  cmd->add_option("--plot", a->plot_path, "also write success rate against size as SVG")
      ->type_name("FILE.svg")
      ->check(cli::kOutputFile);
  opt["--progress"] = cmd->add_flag("--progress,!--no-progress", a->progress,
                                    "force the progress line on stderr on or off (default: if a tty)");
  cli::add_profile_option(*cmd, a->profile);
  cmd->add_flag("--compare-profiles", a->compare_profiles,
                "run the workload under linux-6.1 and linux-6.12 with the same seed: both tables, a "
                "side-by-side table, one CSV and one plot")
      ->excludes("--profile");
  cli::add_fault_option(*cmd, a->faults)
      ->description("run on a faulty allocator (repeatable): shows that the sampled invariant\n"
                   "checks catch a broken impl/");
  cmd->footer(kFooter);
  return {cmd, [a] { return run(*a); }};
}

const cli::Registration kSim{add, 50};

}  // namespace
