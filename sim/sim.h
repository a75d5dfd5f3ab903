// The success-rate simulator (issue 8): how often does a contiguous request of 1, 2, 4 or
// 8 MiB succeed on an aged machine, with a CMA area reserved at boot (`cma_alloc`) and
// without one (`alloc_contig` on the whole zone)? The question a reviewer asked of the
// CMA patches in 2012 (docs/semantics.md section 9). Runs the reference allocator (impl/)
// only; docs/success-rates.md states the method and the answer.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "impl/faults.h"
#include "sim/stats.h"
#include "trace/units.h"

namespace cmacheck::sim {

inline constexpr int kMaxOrders = 11;  // orders 0..10 (MAX_PAGE_ORDER 10)

// The workload of every trial. Shares are of *pages*: kind and order are drawn
// independently for each allocation, and every allocation has the same lifetime law, so a
// share of the pages allocated is also the expected share of the pages in use.
struct Workload {
  uint64_t memory_pages = 1'048'576;  // 4 GiB of 4 KiB pages
  uint8_t pageblock_order = 9;        // 2 MiB pageblocks (x86-64)
  uint8_t max_order = 10;             // largest buddy block 4 MiB (MAX_PAGE_ORDER)
  uint64_t area_pages = 65'536;       // the boot reservation: 256 MiB, at the top of memory
  double utilisation = 0.80;          // share of memory in use at the request (the trough of the aging)
  double peak = 1.0;                  // share in use at the top of each aging cycle (1: until allocations fail)
  double unmovable = 0.10;            // kernel allocations that can never move (slab, page tables)
  double reclaimable = 0.10;          // reclaimable slab (dentries, inodes): not movable either
  // Share of pages in blocks of order k (index k); need not sum to 1, it is normalised.
  std::array<double, kMaxOrders> orders{0.60, 0.15, 0.15, 0.10};
  double pin_short = 0.001;  // share of movable blocks pinned (get_user_pages, I/O in flight) at the request
  double pin_long = 0.001;   // share of movable blocks pinned long-term (FOLL_LONGTERM) for their life
  double aging = 1.0;       // churn after the first fill, in turnovers of the in-use memory
  // Per-CPU page lists (rules Q1-Q5) of the machine's one CPU: 0 none; else their high mark
  // in pages. Frees of the aging park there; the request drains them (Q4).
  uint16_t pcp_high = 0;
  // A second CPU during the request (docs/success-rates.md, "A second CPU"): the chance, at
  // each step boundary of the request, that CPU 1 runs a step of its own instead: page
  // cache going on (a movable page freed, one allocated) and short-term pins taken and
  // dropped (I/O). 0: the request runs alone, as before.
  double background = 0;
  std::vector<uint64_t> sizes{256, 512, 1024, 2048};  // request sizes in pages
  uint8_t cma_align_cap = 8;  // CONFIG_CMA_ALIGNMENT: dma_alloc_contiguous caps align at order 8
  impl::FaultSet faults;      // run on a faulty allocator, to show that violations are caught
  Profile profile = Profile::linux_6_1;  // whose buddy allocator (docs/semantics.md, "Kernel profiles")

  double movable() const { return 1.0 - unmovable - reclaimable; }
  // Empty when the workload is usable; otherwise what is wrong, for the command line.
  std::string validate() const;
};

// A named workload a kernel developer recognises (`--preset`).
struct Preset {
  const char* name;  // the usage text of `cmacheck sim` describes each
  Workload workload;
  uint32_t trials;  // default trial count, budgeted for well under a minute on two idle cores
};
const std::vector<Preset>& presets();
const Preset* find_preset(const std::string& name);

// The two ways of asking for a contiguous range.
enum class Config : uint8_t { reservation, no_reservation };
inline constexpr std::array<Config, 2> kConfigs{Config::reservation, Config::no_reservation};
const char* name(Config c);

// Why a measured request failed. cma_alloc gives up at the first window whose blocks find no
// migration target (A4): no_target. Otherwise every window tried had its own obstacle and
// the most hopeful one names the failure: a window stopped only by a pin would have
// succeeded once the pin was dropped (L2); one that found no migration target might after
// reclaim; one holding an unmovable page never will (X1, X3). no_window: nothing to try.
// transient (with a second CPU only): the request failed, and the same request made again
// once CPU 1 is between operations succeeds: what held it was another CPU's for a moment (a
// page being freed, parked on a page list after the drain, pinned for I/O).
enum class Failure : uint8_t { none, pinned, no_target, unmovable, no_window, transient };
const char* name(Failure f);

// One measured request.
struct Request {
  bool ok = false;
  Failure why = Failure::none;
  uint64_t migrated_pages = 0;  // pages of the movable blocks moved (X2), on success or not
  uint32_t windows = 0;         // candidate windows tried (A4, C1)
  friend bool operator==(const Request&, const Request&) = default;
};

// What the aging left behind, measured just before the request.
struct AgingStats {
  uint64_t used_pages = 0;
  uint64_t alloc_failures = 0;      // aging allocations that found no free block (no reclaim here)
  uint64_t long_pin_failures = 0;   // long-term pins refused (no target outside CMA, P2)
  uint64_t pinned_pages = 0;        // pinned at the request, short- and long-term
  uint64_t polluted_pageblocks = 0;  // non-CMA pageblocks holding an unmovable/reclaimable page
  uint64_t polluted_movable = 0;     // ... of them labelled MOVABLE: scattered by fallback (B4/B5)
  uint64_t pageblocks = 0;           // non-CMA pageblocks
  // Per request size: the size-aligned windows of the zone that alloc_contig could take at
  // once short of migration targets (no unmovable, reclaimable, pinned or CMA frame).
  std::vector<uint64_t> clean_windows, windows;
  friend bool operator==(const AgingStats&, const AgingStats&) = default;
};

struct Trial {
  AgingStats aging;
  std::vector<Request> requests;  // one per Workload::sizes entry
  friend bool operator==(const Trial&, const Trial&) = default;
};

// Per-trial PRNG seed: a function of (seed, configuration, trial index) only, so results do not
// depend on the number of threads or the order trials run in. The aged machine of a trial is
// shared by its request sizes (each measured on its own copy), so sizes are compared on the
// same machines.
uint64_t trial_seed(uint64_t seed, Config c, uint32_t trial);

// An invariant of impl/ broke during the simulation: a bug in impl/, never a result.
struct SimViolation {
  std::string message;
};

// One independent trial: age a fresh machine, then for each size copy it, make the request,
// check, release. With `full_checks` the full invariant tier runs after the aging and after
// each request and release (the cheap tier runs after every operation always). Throws
// SimViolation on a broken invariant.
Trial run_trial(const Workload& w, Config c, uint64_t seed, bool full_checks);

struct Options {
  uint32_t trials = 0;     // per configuration
  uint64_t seed = 1;
  unsigned threads = 0;    // 0 = all cores
  uint32_t full_every = 16;  // full invariant tier on trial 0 and every N-th
  std::vector<Config> configs{kConfigs.begin(), kConfigs.end()};
  // Called from worker threads after each finished trial (done, total); must be cheap.
  std::function<void(uint64_t, uint64_t)> progress;
};

// The statistics of one (configuration, size) cell.
struct Cell {
  Config config = Config::reservation;
  uint64_t size_pages = 0;
  uint64_t trials = 0, successes = 0;
  Interval rate;  // 95 % Wilson interval of the success rate
  double migrated_mean = 0;        // pages migrated per request
  double migrated_mean_ok = 0;     // ... per successful request
  double windows_mean = 0;         // windows tried per request
  uint64_t windows_max = 0;
  double clean_share = 0;          // mean share of clean windows of this size (AgingStats)
  std::array<uint64_t, 6> failures{};  // indexed by Failure
  friend bool operator==(const Cell&, const Cell&) = default;
};

struct Summary {
  Workload workload;
  std::string preset;
  Options options;
  unsigned threads_used = 0;
  std::vector<Cell> cells;             // configuration-major, then size
  std::vector<AgingStats> aging_mean;  // per configuration, averaged over trials (rounded)
  double seconds = 0;
  uint64_t trials_run = 0;  // agings (configurations x trials)
};

// Runs every (configuration, trial) in parallel and aggregates in trial order. Throws
// SimViolation on the first broken invariant.
Summary run(const Workload& w, const Options& o);

// Parses an order mix "0:60,1:15,2:15,3:10" (order:share); false on malformed input.
bool parse_orders(const std::string& s, std::array<double, kMaxOrders>& out, std::string& error);
std::string format_orders(const std::array<double, kMaxOrders>& orders);

}  // namespace cmacheck::sim
