// `cmacheck sim`: success rates of contiguous requests with and without a boot reservation
// (issue 8, docs/success-rates.md). Thin: parses options, calls sim::run, prints.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>

#include "impl/faults.h"
#include "sim/report.h"
#include "sim/sim.h"
#include "tools/commands.h"

using namespace cmacheck;

namespace {

const char* const kSimUsage =
    "usage: cmacheck sim [OPTIONS]\n"
    "\n"
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
    "presets (--preset NAME; later options override it):\n"
    "  default      4 GiB x86-64 (2 MiB pageblocks), 256 MiB area, 80 % in use (peak 100 %),\n"
    "               10 % unmovable, 10 % reclaimable, orders 0-3, pins 0.1 % short / 0.1 % long; 24 trials\n"
    "  phone-2012   512 MiB arm32 phone (4 MiB pageblocks, no THP), 64 MiB camera area, 90 % in\n"
    "               use, 15 % unmovable, 0.2 % of movable blocks under DMA, no long-term pins; 200 trials\n"
    "  server       16 GiB x86-64, 1 GiB area, 90 % in use (page cache), 5 % unmovable, pins\n"
    "               0.1 % short / 0.5 % long (RDMA, VFIO); 8 trials (about 5 s of CPU each)\n"
    "\n"
    "machine:\n"
    "  --memory SIZE          memory, e.g. 4G, 512M (default 4G)\n"
    "  --area SIZE            the boot reservation of the `reservation` configuration (default 256M)\n"
    "  --pageblock-order N    pageblock of 2^N pages (default 9: 2 MiB)\n"
    "  --max-order N          largest buddy block 2^N pages (default 10: 4 MiB)\n"
    "workload (shares are of pages; PCT is a percentage, 0.1 means 0.1 %):\n"
    "  --utilisation PCT      memory in use at the request and at the bottom of each aging cycle (80)\n"
    "  --peak PCT             memory in use at the top of each aging cycle (100: until allocations\n"
    "                         fail, where the kernel would reclaim); equal to --utilisation: churn\n"
    "                         one block at a time\n"
    "  --unmovable PCT        unmovable allocations (slab, page tables, drivers) (10)\n"
    "  --reclaimable PCT      reclaimable slab (dentries, inodes): not movable either (10)\n"
    "  --orders MIX           share of pages by block order, ORDER:SHARE,... (0:60,1:15,2:15,3:10)\n"
    "  --pin-short PCT        movable blocks under a short-term pin (I/O in flight) at the request (0.1)\n"
    "  --pin-long PCT         movable blocks pinned long-term (FOLL_LONGTERM) for life (0.1)\n"
    "  --aging TURNOVERS      churn after the first fill, in multiples of the memory in use (1)\n"
    "  --sizes LIST           request sizes, e.g. 1M,2M,4M,8M (a bare number is MiB)\n"
    "run:\n"
    "  --preset NAME          see above\n"
    "  --config WHICH         both (default), reservation or no-reservation\n"
    "  --trials N             trials per configuration (default: the preset's)\n"
    "  --seed N               (default 1)\n"
    "  --threads N            worker threads (default: all cores)\n"
    "  --full-every N         full invariant tier on trial 0 and every N-th (default 16; 0 = never);\n"
    "                         the cheap tier runs after every operation; a violation exits 1\n"
    "  --csv FILE             also write the figures as CSV\n"
    "  --plot FILE.svg        also write success rate against size as SVG\n"
    "  --progress, --no-progress   force the progress line on stderr on or off (default: if a tty)\n"
    "  --fault NAME           run on a faulty allocator (see `cmacheck faults`): shows that the\n"
    "                         sampled invariant checks catch a broken impl/\n"
    "\n"
    "exit status: 0 done, 1 an impl invariant broke (a bug in impl/, not a result), 2 bad input\n";

int usage_error(const std::string& msg) {
  std::cerr << "cmacheck sim: " << msg << "\n(see `cmacheck sim --help`)\n";
  return 2;
}

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

bool parse_u64(const std::string& s, uint64_t& out) {
  if (s.empty() || s[0] == '-') return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 0);
  if (*end != '\0' || errno) return false;
  out = v;
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

int cmd_sim(int argc, char** argv) {
  // The preset first, so that every other option overrides it wherever it stands.
  const sim::Preset* preset = sim::find_preset("default");
  for (int i = 2; i < argc; ++i)
    if (std::string(argv[i]) == "--preset") {
      if (i + 1 >= argc) return usage_error("--preset needs a NAME");
      preset = sim::find_preset(argv[i + 1]);
      if (!preset) return usage_error(std::string("unknown preset '") + argv[i + 1] + "' (default, phone-2012, server)");
    }
  sim::Workload w = preset->workload;
  sim::Options o;
  o.trials = preset->trials;
  std::string csv_path, plot_path;
  int progress = -1;  // -1: if stderr is a tty

  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) return {};
      return argv[++i];
    };
    auto bad = [&](const std::string& what) { return usage_error("bad value for " + a + ": '" + what + "'"); };
    uint64_t u = 0;
    if (a == "--preset") {
      ++i;
    } else if (a == "--memory") {
      const std::string v = value();
      if (!parse_size(v, 1024.0 * 1024, w.memory_pages)) return bad(v);
    } else if (a == "--area") {
      const std::string v = value();
      if (!parse_size(v, 1024.0 * 1024, w.area_pages)) return bad(v);
    } else if (a == "--pageblock-order" || a == "--max-order") {
      const std::string v = value();
      if (!parse_u64(v, u) || u >= sim::kMaxOrders) return bad(v);
      (a == "--max-order" ? w.max_order : w.pageblock_order) = static_cast<uint8_t>(u);
    } else if (a == "--utilisation" || a == "--utilization" || a == "--peak" || a == "--unmovable" ||
               a == "--reclaimable" || a == "--pin-short" || a == "--pin-long") {
      const std::string v = value();
      double d = 0;
      if (!parse_pct(v, d)) return bad(v);
      if (a == "--peak")
        w.peak = d;
      else if (a == "--unmovable")
        w.unmovable = d;
      else if (a == "--reclaimable")
        w.reclaimable = d;
      else if (a == "--pin-short")
        w.pin_short = d;
      else if (a == "--pin-long")
        w.pin_long = d;
      else
        w.utilisation = d;
    } else if (a == "--orders") {
      std::string err;
      if (!sim::parse_orders(value(), w.orders, err)) return usage_error("--orders: " + err);
    } else if (a == "--aging") {
      const std::string v = value();
      char* end = nullptr;
      w.aging = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0') return bad(v);
    } else if (a == "--sizes") {
      const std::string v = value();
      std::istringstream in(v);
      std::string item;
      w.sizes.clear();
      while (std::getline(in, item, ',')) {
        uint64_t pages = 0;
        if (!parse_size(item, 1024.0 * 1024, pages)) return bad(v);
        w.sizes.push_back(pages);
      }
    } else if (a == "--config") {
      const std::string v = value();
      if (v == "both")
        o.configs = {sim::Config::reservation, sim::Config::no_reservation};
      else if (v == "reservation")
        o.configs = {sim::Config::reservation};
      else if (v == "no-reservation")
        o.configs = {sim::Config::no_reservation};
      else
        return bad(v);
    } else if (a == "--trials") {
      const std::string v = value();
      if (!parse_u64(v, u) || u == 0 || u > 1'000'000) return bad(v);
      o.trials = static_cast<uint32_t>(u);
    } else if (a == "--seed") {
      const std::string v = value();
      if (!parse_u64(v, o.seed)) return bad(v);
    } else if (a == "--threads") {
      const std::string v = value();
      if (!parse_u64(v, u) || u > 1024) return bad(v);
      o.threads = static_cast<unsigned>(u);
    } else if (a == "--full-every") {
      const std::string v = value();
      if (!parse_u64(v, u) || u > UINT32_MAX) return bad(v);
      o.full_every = static_cast<uint32_t>(u);
    } else if (a == "--csv") {
      csv_path = value();
      if (csv_path.empty()) return usage_error("--csv needs a FILE");
    } else if (a == "--plot") {
      plot_path = value();
      if (plot_path.empty()) return usage_error("--plot needs a FILE");
    } else if (a == "--fault") {
      const std::string v = value();
      const auto f = impl::fault_by_name(v);
      if (!f) return usage_error("unknown fault '" + v + "' (see `cmacheck faults`)");
      w.faults.add(*f);
    } else if (a == "--progress") {
      progress = 1;
    } else if (a == "--no-progress") {
      progress = 0;
    } else {
      return usage_error("unknown option '" + a + "'");
    }
  }
  if (const std::string err = w.validate(); !err.empty()) return usage_error(err);

  Progress bar(progress == -1 ? isatty(2) != 0 : progress == 1);
  o.progress = [&bar](uint64_t done, uint64_t total) { bar.update(done, total); };
  sim::Summary s;
  try {
    s = sim::run(w, o);
  } catch (const sim::SimViolation& v) {
    bar.finish();
    std::cerr << "cmacheck sim: VIOLATION: " << v.message << "\n"
              << "cmacheck sim: this is a bug in impl/, not a simulation result; rerun with --full-every 1 "
                 "to find the first operation that breaks it\n";
    return 1;
  }
  bar.finish();
  s.preset = preset->name;
  std::cout << sim::markdown(s) << std::flush;
  std::cerr << "sim: " << s.trials_run << " trials (" << s.options.trials << " per configuration) in "
            << std::round(s.seconds * 10) / 10 << " s on " << s.threads_used << " thread(s): "
            << std::round(static_cast<double>(s.trials_run) / s.seconds * 100) / 100 << " trials/s\n";
  if (!csv_path.empty() && !write_file(csv_path, sim::csv(s))) {
    std::cerr << "cmacheck sim: cannot write " << csv_path << "\n";
    return 2;
  }
  if (!plot_path.empty() && !write_file(plot_path, sim::svg(s))) {
    std::cerr << "cmacheck sim: cannot write " << plot_path << "\n";
    return 2;
  }
  return 0;
}

const cli::CommandRegistration kSim{{"sim", "success rates of 1-8 MiB contiguous requests with and without a CMA area",
                                     kSimUsage, cmd_sim}};

}  // namespace
