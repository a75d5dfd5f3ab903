#include "sim/sim.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include <setjmp.h>
#include <ucontext.h>

#include "impl/allocator.h"
#include "trace/generate.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CMACHECK_SIM_ASAN_FIBERS 1
#include <sanitizer/common_interface_defs.h>
#endif
#endif

namespace cmacheck::sim {

using impl::Allocator;
using impl::CheckTier;

const char* name(Config c) {
  switch (c) {
    case Config::reservation: return "reservation";
    case Config::no_reservation: return "no reservation";
  }
  return "?";
}

const char* name(Failure f) {
  switch (f) {
    case Failure::none: return "none";
    case Failure::pinned: return "pinned";
    case Failure::no_target: return "no target";
    case Failure::unmovable: return "unmovable";
    case Failure::no_window: return "no window";
    case Failure::transient: return "transient";
  }
  return "?";
}

std::string Workload::validate() const {
  std::ostringstream e;
  const uint64_t pb = uint64_t{1} << pageblock_order;
  if (pageblock_order > max_order || max_order >= kMaxOrders)
    e << "need pageblock_order <= max_order <= " << kMaxOrders - 1;
  else if (memory_pages < 4 * pb || memory_pages % pb != 0 || memory_pages >= (uint64_t{1} << 31))
    e << "memory must be a multiple of the pageblock (" << pb * 4 << " KiB), at least 4 pageblocks and below 8 TiB";
  else if (area_pages == 0 || area_pages % pb != 0 || area_pages >= memory_pages)
    e << "the area must be a non-zero multiple of the pageblock (" << pb * 4 << " KiB) and smaller than memory";
  else if (!(utilisation > 0 && utilisation < 1))
    e << "utilisation must lie strictly between 0 and 1";
  else if (!(peak >= utilisation && peak <= 1))
    e << "the peak must lie between the utilisation and 1";
  else if (!(unmovable >= 0 && reclaimable >= 0 && unmovable + reclaimable <= 1))
    e << "unmovable and reclaimable shares must be >= 0 and sum to at most 1";
  else if (!(pin_short >= 0 && pin_short <= 1 && pin_long >= 0 && pin_long <= 1))
    e << "pin fractions must lie in [0, 1]";
  else if (!(background >= 0 && background < 1))
    e << "background must lie in [0, 1): the request needs some of the steps";
  else if (!(aging >= 0 && aging <= 1000))
    e << "aging must lie in [0, 1000] turnovers";
  else if (sizes.empty())
    e << "need at least one request size";
  else {
    double total = 0;
    for (int k = 0; k < kMaxOrders; ++k) {
      if (orders[k] < 0) e << "order shares must be >= 0";
      if (k > max_order && orders[k] > 0) e << "order " << k << " exceeds max_order " << int{max_order};
      total += orders[k];
    }
    if (e.str().empty() && !(total > 0)) e << "the order mix is empty";
    for (uint64_t s : sizes)
      if (e.str().empty() && (s == 0 || s > area_pages))
        e << "request of " << s << " pages does not fit the area of " << area_pages << " pages";
  }
  return e.str();
}

// ---------------------------------------------------------------------------------------
// Presets

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = [] {
    std::vector<Preset> v;
    Workload d;
    v.push_back({"default", d, 24});

    Workload phone;
    phone.memory_pages = 131'072;  // 512 MiB
    phone.pageblock_order = 10;    // arm32 without hugetlb: pageblock_order = MAX_ORDER - 1
    phone.max_order = 10;
    phone.area_pages = 16'384;  // 64 MiB for camera and video buffers
    phone.utilisation = 0.90;   // Android keeps memory full of cached apps
    phone.peak = 1.0;
    phone.unmovable = 0.15;     // drivers, GPU, ION system heap
    phone.reclaimable = 0.10;
    phone.orders = {0.80, 0.10, 0.05, 0.05};
    phone.pin_short = 0.002;  // buffers under DMA (camera, codec, MMC)
    phone.pin_long = 0.0;     // FOLL_LONGTERM did not exist in 2012
    phone.sizes = {256, 512, 1024, 2048};
    v.push_back({"phone-2012", phone, 200});

    Workload server;
    server.memory_pages = 4'194'304;  // 16 GiB
    server.area_pages = 262'144;      // 1 GiB (e.g. for devices or gigantic pages)
    server.utilisation = 0.90;        // page cache fills memory
    server.unmovable = 0.05;
    server.reclaimable = 0.10;
    server.orders = {0.70, 0.10, 0.10, 0.10};
    server.pin_short = 0.001;  // direct I/O
    server.pin_long = 0.005;   // RDMA, VFIO, io_uring fixed buffers
    v.push_back({"server", server, 8});
    return v;
  }();
  return all;
}

const Preset* find_preset(const std::string& n) {
  for (const Preset& p : presets())
    if (n == p.name) return &p;
  return nullptr;
}

// ---------------------------------------------------------------------------------------
// Order mixes

bool parse_orders(const std::string& s, std::array<double, kMaxOrders>& out, std::string& error) {
  std::array<double, kMaxOrders> r{};
  std::istringstream in(s);
  std::string item;
  bool any = false;
  while (std::getline(in, item, ',')) {
    const size_t colon = item.find(':');
    char* end = nullptr;
    if (colon == std::string::npos) {
      error = "order mix item '" + item + "' is not ORDER:SHARE";
      return false;
    }
    const long k = std::strtol(item.c_str(), &end, 10);
    if (end != item.c_str() + colon || k < 0 || k >= kMaxOrders) {
      error = "bad order in '" + item + "' (0.." + std::to_string(kMaxOrders - 1) + ")";
      return false;
    }
    const double v = std::strtod(item.c_str() + colon + 1, &end);
    if (*end != '\0' || !(v >= 0) || colon + 1 == item.size()) {
      error = "bad share in '" + item + "'";
      return false;
    }
    r[static_cast<size_t>(k)] = v;
    any = true;
  }
  if (!any) {
    error = "empty order mix";
    return false;
  }
  out = r;
  return true;
}

std::string format_orders(const std::array<double, kMaxOrders>& orders) {
  double total = 0;
  for (double v : orders) total += v;
  std::ostringstream o;
  bool first = true;
  for (int k = 0; k < kMaxOrders; ++k)
    if (orders[k] > 0) {
      o << (first ? "" : ",") << k << ":" << std::round(1000 * orders[k] / total) / 10;
      first = false;
    }
  return o.str();
}

// ---------------------------------------------------------------------------------------
// One trial

namespace {

uint64_t mix64(uint64_t z) {  // the SplitMix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  double uniform() { return static_cast<double>(s_.next() >> 11) * 0x1.0p-53; }
  uint64_t below(uint64_t n) { return s_.below(n); }

 private:
  SeededChoices s_;
};

struct Context {
  Config config;
  uint64_t seed;
  const char* phase;
};

[[noreturn]] void violation(const Violation& v, const Context& c, const char* tier) {
  std::ostringstream m;
  m << "impl/ broke invariant " << v.rule << " (" << tier << " tier) during the " << c.phase << " of a trial with "
    << name(c.config) << ", trial seed 0x" << std::hex << c.seed << std::dec << ": " << v.message;
  if (v.where) m << " [frame " << raw(*v.where) << "]";
  throw SimViolation{m.str()};
}

void check(const Allocator& a, CheckTier tier, const Context& c) {
  if (auto v = a.check_invariants(tier)) violation(*v, c, tier == CheckTier::full ? "full" : "cheap");
}

// The aging: a machine, its live blocks, and the workload's random choices.
class Ager {
 public:
  Ager(const Workload& w, Config c, uint64_t seed, Allocator& a)
      : w_(w), a_(a), rng_(seed), ctx_{c, seed, "aging"} {
    double total = 0;
    for (int k = 0; k <= w.max_order; ++k) total += w.orders[k] / static_cast<double>(uint64_t{1} << k);
    double acc = 0;
    for (int k = 0; k <= w.max_order; ++k) {
      acc += w.orders[k] / static_cast<double>(uint64_t{1} << k) / total;
      cdf_[k] = acc;
    }
    cdf_[w.max_order] = 1.0;
  }

  // Fill to the target, then churn `aging` turnovers of the in-use memory in cycles: allocate
  // up to the peak (page cache filling memory to the watermarks), then free blocks chosen
  // uniformly among the live ones (memoryless lifetimes; reclaim and exits) back to the
  // target. With the peak at the target, each step frees one block and allocates back.
  void age() {
    const double pages = static_cast<double>(w_.memory_pages);
    const uint64_t target = static_cast<uint64_t>(w_.utilisation * pages);
    const uint64_t peak = std::max(target, static_cast<uint64_t>(w_.peak * pages));
    refill(target);
    const double churn = w_.aging * static_cast<double>(target);
    uint64_t churned = 0;
    while (static_cast<double>(churned) < churn && !live_.empty()) {
      if (peak > target) {
        churned += refill(peak);
        while (used_ > target && !live_.empty()) free_one();
      } else {
        free_one();
        churned += refill(target);
      }
    }
  }

  // The moment of the request: a share of the movable blocks is under short-term pins.
  void pin_short_term() {
    for (const Live& l : live_)
      if (l.kind == Kind::movable && !l.longterm && rng_.uniform() < w_.pin_short) {
        a_.pin(l.h, false, out_);
        check(a_, CheckTier::cheap, ctx_);
      }
  }

  AgingStats stats() const {
    AgingStats s;
    s.used_pages = used_;
    s.alloc_failures = alloc_failures_;
    s.long_pin_failures = long_pin_failures_;
    const uint64_t n = w_.memory_pages;
    // Per frame: would this frame stop alloc_contig (X1) or its migration (X2, pins)?
    std::vector<uint8_t> blocks(n, 0);
    for (uint64_t f = 0; f < n; ++f) {
      const impl::FrameRole r = a_.role(Pfn{f});
      const bool fixed = r == impl::FrameRole::unmovable || r == impl::FrameRole::reclaimable;
      s.pinned_pages += r == impl::FrameRole::pinned;
      blocks[f] = fixed ? 2 : (r == impl::FrameRole::pinned || a_.label(Pfn{f}) == MigrateType::cma) ? 1 : 0;
    }
    const uint8_t B = w_.pageblock_order;
    for (uint64_t pb = 0; pb < (n >> B); ++pb) {
      const MigrateType t = a_.label(Pfn{pb << B});
      if (t == MigrateType::cma) continue;
      ++s.pageblocks;
      const auto first = blocks.begin() + static_cast<std::ptrdiff_t>(pb << B);
      if (std::find(first, first + (std::ptrdiff_t{1} << B), 2) != first + (std::ptrdiff_t{1} << B)) {
        ++s.polluted_pageblocks;
        if (t == MigrateType::movable) ++s.polluted_movable;
      }
    }
    for (uint64_t size : w_.sizes) {
      uint64_t clean = 0, total = 0;
      for (uint64_t start = 0; start + size <= n; start += size, ++total) {
        const auto first = blocks.begin() + static_cast<std::ptrdiff_t>(start);
        clean += std::all_of(first, first + static_cast<std::ptrdiff_t>(size), [](uint8_t b) { return b == 0; });
      }
      s.clean_windows.push_back(clean);
      s.windows.push_back(total);
    }
    return s;
  }

  // The movable blocks not pinned long-term: what CPU 1 may free or pin during the request.
  std::vector<HandleId> movable_blocks() const {
    std::vector<HandleId> out;
    for (const Live& l : live_)
      if (l.kind == Kind::movable && !l.longterm) out.push_back(l.h);
    return out;
  }
  // The first handle never used: CPU 1's allocations count on from it.
  uint32_t unused_handles_from() const { return next_handle_ + 1; }

  HandleId fresh() {
    if (!spare_.empty()) {
      const HandleId h = spare_.back();
      spare_.pop_back();
      return h;
    }
    return HandleId{next_handle_++};
  }

 private:
  struct Live {
    HandleId h;
    Kind kind;
    uint8_t order;
    bool longterm;
  };

  Kind draw_kind() {
    const double u = rng_.uniform();
    if (u < w_.unmovable) return Kind::unmovable;
    if (u < w_.unmovable + w_.reclaimable) return Kind::reclaimable;
    return Kind::movable;
  }
  uint8_t draw_order() {
    const double u = rng_.uniform();
    uint8_t k = 0;
    while (k < w_.max_order && u >= cdf_[k]) ++k;
    return k;
  }

  // Returns the pages asked for; failures are counted, not retried (no reclaim here).
  uint64_t alloc_one() {
    const Kind kind = draw_kind();
    const uint8_t order = draw_order();
    const HandleId h = fresh();
    a_.alloc(h, kind, Order{order}, std::nullopt, out_);
    check(a_, CheckTier::cheap, ctx_);
    const uint64_t pages = uint64_t{1} << order;
    if (!out_.ok) {
      ++alloc_failures_;
      spare_.push_back(h);
      return pages;
    }
    used_ += pages;
    bool longterm = false;
    if (kind == Kind::movable && w_.pin_long > 0 && rng_.uniform() < w_.pin_long) {
      a_.pin(h, true, out_);  // P2: migrated out of CMA first
      check(a_, CheckTier::cheap, ctx_);
      longterm = out_.ok;
      if (!out_.ok) ++long_pin_failures_;
    }
    live_.push_back({h, kind, order, longterm});
    return pages;
  }

  uint64_t free_one() {
    const size_t i = rng_.below(live_.size());
    const Live l = live_[i];
    live_[i] = live_.back();
    live_.pop_back();
    if (l.longterm) {
      a_.unpin(l.h, out_);
      check(a_, CheckTier::cheap, ctx_);
    }
    a_.free(l.h, out_);
    check(a_, CheckTier::cheap, ctx_);
    const uint64_t pages = uint64_t{1} << l.order;
    used_ -= pages;
    spare_.push_back(l.h);
    return pages;
  }

  // Allocates up to `target` pages in use; returns the pages asked for.
  uint64_t refill(uint64_t target) {
    // A run of failures means no block of the drawn orders is left (e.g. unmovable
    // requests when only CMA is free): stop short of the target rather than spin.
    int failures_in_a_row = 0;
    uint64_t asked = 0;
    while (used_ < target && failures_in_a_row < 64) {
      const uint64_t before = alloc_failures_;
      asked += alloc_one();
      failures_in_a_row = alloc_failures_ == before ? 0 : failures_in_a_row + 1;
    }
    return asked;
  }

  const Workload& w_;
  Allocator& a_;
  Rng rng_;
  Context ctx_;
  Outcome out_;
  std::array<double, kMaxOrders> cdf_{};
  std::vector<Live> live_;
  std::vector<HandleId> spare_;
  uint32_t next_handle_ = 0;
  uint64_t used_ = 0, alloc_failures_ = 0, long_pin_failures_ = 0;
};

// A second CPU during the request (Workload::background). The request runs on CPU 0 and
// CPU 1 goes on with the machine's life, each on a fiber of its own; they are interleaved at
// impl's step boundaries (impl::StepHook, the concurrent engine's cut: docs/concurrency.md),
// so CPU 1 can free a block between its type read and its commit (F2) while the request
// isolates and drains, as on a real device. CPU 1's operations: free a movable block (page
// cache evicted), allocate an order-0 movable block (page cache filled), pin a movable block
// short-term and drop the pin at its next operation (I/O). It never takes cma_mutex and
// never pins long-term, so neither CPU waits for the other. Deterministic for its seed.
class SecondCpu final : public impl::StepHook {
 public:
  SecondCpu(Allocator& a, double rate, uint64_t seed, std::vector<HandleId> movable, uint32_t first_free_handle,
            Context ctx, bool check_between_steps)
      : a_(a),
        rate_(rate),
        rng_(seed),
        movable_(std::move(movable)),
        next_handle_(first_free_handle),
        ctx_(ctx),
        check_between_steps_(check_between_steps) {}

  // Runs `request` on CPU 0 with CPU 1 interleaved, until the request returned and CPU 1 is
  // between operations.
  template <class Request>
  void run(Request&& request) {
    request_ = [&] { request(); };
    a_.set_step_hook(this);
    start(0, &SecondCpu::request_main);
    start(1, &SecondCpu::background_main);
    while (!request_done_ || cpu1_in_op_) resume(!request_done_ && rng_.uniform() >= rate_ ? 0 : 1);
    stop_ = true;
    resume(1);  // CPU 1 sees stop_ at its next operation and returns
    a_.set_step_hook(nullptr);
    a_.set_cpu(0);
  }

  void step(const impl::StepInfo&) override { yield(); }
  void lock_cma_mutex() override {}    // only CPU 0 takes it
  void unlock_cma_mutex() override {}
  void wait_for_lru(HandleId h) override {  // P2's wait (no long-term pin is made during a request)
    while (a_.off_lru(h)) yield();
  }

 private:
  static constexpr size_t kStackSize = 256 * 1024;
  static inline thread_local SecondCpu* t_self = nullptr;

  static void request_main() {
    SecondCpu* self = t_self;
    self->entered();
    self->request_();
    self->request_done_ = true;
    self->leave();
  }
  static void background_main() {
    SecondCpu* self = t_self;
    self->entered();
    self->background();
    self->leave();
  }
  // A fiber's end: back to the scheduler for good (never returns).
  [[noreturn]] void leave() {
#ifdef CMACHECK_SIM_ASAN_FIBERS
    __sanitizer_start_switch_fiber(nullptr, main_bottom_, main_size_);
#endif
    _longjmp(main_jmp_, 1);
  }

  void background() {
    std::optional<HandleId> pinned;  // dropped at the next operation
    while (!stop_) {
      cpu1_in_op_ = true;
      if (pinned) {
        a_.unpin(*pinned, out_);
        pinned.reset();
      } else if (const double u = rng_.uniform(); u < 1.0 / 3 && !movable_.empty()) {
        const size_t i = rng_.below(movable_.size());
        const HandleId h = movable_[i];
        movable_[i] = movable_.back();
        movable_.pop_back();
        if (a_.is_live(h)) a_.free(h, out_);  // fails, changing nothing, when pinned
      } else if (u < 2.0 / 3) {
        const HandleId h{next_handle_++};
        a_.alloc(h, Kind::movable, Order{0}, std::nullopt, out_);
        if (out_.ok) movable_.push_back(h);
      } else if (!movable_.empty()) {
        const HandleId h = movable_[rng_.below(movable_.size())];
        if (a_.is_live(h)) {
          a_.pin(h, false, out_);
          if (out_.ok) pinned = h;
        }
      }
      cpu1_in_op_ = false;
      yield();
    }
    if (pinned) a_.unpin(*pinned, out_);
  }

  void start(int cpu, void (*fn)()) {
    if (!stacks_[cpu]) stacks_[cpu] = std::make_unique<char[]>(kStackSize);
    getcontext(&ctx_of_[cpu]);
    ctx_of_[cpu].uc_stack.ss_sp = stacks_[cpu].get();
    ctx_of_[cpu].uc_stack.ss_size = kStackSize;
    ctx_of_[cpu].uc_link = nullptr;  // a fiber ends with leave()
    makecontext(&ctx_of_[cpu], fn, 0);
    started_[cpu] = false;
  }

  // The first entry into a fiber is setcontext's; every later switch is _setjmp/_longjmp
  // (as the concurrent engine's fibers: no signal mask saved, which ASan handles too).
  void resume(int cpu) {
    running_ = cpu;
    a_.set_cpu(static_cast<uint8_t>(cpu));
    t_self = this;
#ifdef CMACHECK_SIM_ASAN_FIBERS
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, stacks_[cpu].get(), kStackSize);
#endif
    if (!_setjmp(main_jmp_)) {
      if (!started_[cpu]) {
        started_[cpu] = true;
        setcontext(&ctx_of_[cpu]);
      }
      _longjmp(fiber_jmp_[cpu], 1);
    }
#ifdef CMACHECK_SIM_ASAN_FIBERS
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    // On the sampled trials, impl's invariants between steps every 64th boundary, those of
    // quiescence aside (the concurrent engine checks every one, in small worlds).
    if (check_between_steps_ && ++boundaries_ % 64 == 0)
      if (auto v = a_.check_invariants(CheckTier::cheap, /*quiescent=*/false)) violation(*v, ctx_, "cheap, between steps");
  }

  void yield() {
#ifdef CMACHECK_SIM_ASAN_FIBERS
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, main_bottom_, main_size_);
#endif
    if (!_setjmp(fiber_jmp_[running_])) _longjmp(main_jmp_, 1);
#ifdef CMACHECK_SIM_ASAN_FIBERS
    __sanitizer_finish_switch_fiber(fake, &main_bottom_, &main_size_);
#endif
  }

  // A fiber's first instructions.
  void entered() {
#ifdef CMACHECK_SIM_ASAN_FIBERS
    __sanitizer_finish_switch_fiber(nullptr, &main_bottom_, &main_size_);
#endif
  }

  Allocator& a_;
  double rate_;
  Rng rng_;
  std::vector<HandleId> movable_;
  uint32_t next_handle_;
  Context ctx_;
  bool check_between_steps_;
  uint64_t boundaries_ = 0;
  Outcome out_;
  std::function<void()> request_;
  jmp_buf main_jmp_{};
  std::array<jmp_buf, 2> fiber_jmp_{};
  std::array<ucontext_t, 2> ctx_of_{};
  std::array<bool, 2> started_{};
  std::array<std::unique_ptr<char[]>, 2> stacks_;
  int running_ = 0;
  bool request_done_ = false, cpu1_in_op_ = false, stop_ = false;
#ifdef CMACHECK_SIM_ASAN_FIBERS
  const void* main_bottom_ = nullptr;
  size_t main_size_ = 0;
#endif
};

// What CPU 1 starts from during a request: the aging's movable blocks and fresh handles.
struct Background {
  double rate = 0;
  std::vector<HandleId> movable;
  uint32_t first_free_handle = 0;
  uint64_t seed = 0;
};

uint8_t ceil_log2(uint64_t n) { return static_cast<uint8_t>(n <= 1 ? 0 : 64 - std::countl_zero(n - 1)); }

Request measure(Allocator& a, const Workload& w, Config c, uint64_t size, HandleId h, bool full_checks,
                Context ctx, const Background& background) {
  Outcome out;
  // I10 on the sampled trials: a failed request changes nothing but the moves X2 allows.
  // (Not with a second CPU: its own operations change the machine meanwhile.)
  std::optional<Allocator::Snapshot> before;
  if (full_checks && background.rate == 0) before = a.snapshot();
  auto request = [&] {
    if (c == Config::reservation) {
      // dma_alloc_contiguous(): align = min(get_order(size), CONFIG_CMA_ALIGNMENT).
      const uint8_t align = std::min(ceil_log2(size), w.cma_align_cap);
      a.cma_alloc(h, AreaId{0}, PageCount{size}, Order{align}, out);
    } else {
      a.alloc_contig(h, PageCount{size}, out);
    }
  };
  ctx.phase = "measured request";
  if (background.rate > 0)
    SecondCpu(a, background.rate, background.seed, background.movable, background.first_free_handle, ctx, full_checks)
        .run(request);
  else
    request();
  check(a, CheckTier::cheap, ctx);
  // A failure with a second CPU: the same request once more, CPU 1 between operations. If it
  // succeeds, what failed the first was CPU 1's for a moment (Failure::transient).
  bool transient = false;
  const Outcome first = out;
  if (!out.ok && background.rate > 0) {
    request();
    check(a, CheckTier::cheap, ctx);
    transient = out.ok;
  }
  if (full_checks) {
    check(a, CheckTier::full, ctx);
    if (!out.ok && before)
      if (auto v = a.check_unchanged(*before, out)) violation(*v, ctx, "I10");
  }
  Request r;
  r.ok = first.ok;
  r.windows = first.windows_tried;
  for (const Move& m : first.moves)
    if (const impl::Allocation* moved = a.allocation(m.handle)) r.migrated_pages += raw(moved->count);  // (CPU 1 may have freed it)
  if (!first.ok) {
    // cma_alloc stops at the first window without a migration target (A4); otherwise every
    // window tried had one obstacle, and the most hopeful one names the failure (Failure).
    const uint32_t no_target_windows = first.windows_tried - first.busy_pinned - first.busy_unmovable;
    if (transient)
      r.why = Failure::transient;
    else if (first.windows_tried == 0)
      r.why = Failure::no_window;
    else if (c == Config::reservation && first.reason == FailReason::no_memory)
      r.why = Failure::no_target;
    else if (first.busy_pinned > 0)
      r.why = Failure::pinned;
    else if (no_target_windows > 0)
      r.why = Failure::no_target;
    else
      r.why = Failure::unmovable;
    if (!transient) return r;  // (a transient failure's retry holds the range: released below)
  }
  // The release.
  if (c == Config::reservation)
    a.cma_release(h, out);
  else
    a.free_contig(h, out);
  ctx.phase = "release";
  check(a, CheckTier::cheap, ctx);
  if (full_checks) check(a, CheckTier::full, ctx);
  if (!out.ok) throw SimViolation{std::string("release of the measured request failed with ") + name(c)};
  return r;
}

}  // namespace

uint64_t trial_seed(uint64_t seed, Config c, uint32_t trial) {
  return mix64(mix64(mix64(seed) ^ (static_cast<uint64_t>(c) + 1) * 0x9e3779b97f4a7c15ull) ^
               (static_cast<uint64_t>(trial) + 1) * 0xd1b54a32d192ed03ull);
}

// One worker's machines, kept from trial to trial: copy-assigning an Allocator reuses its
// vectors, so a trial costs no fresh memory (a 4 GiB machine is some 25 MB of frame
// arrays, and page faults on them were a tenth of the run time). A copy of the pristine
// machine is the same state as a freshly constructed one.
struct Workspace {
  std::array<std::optional<Allocator>, 2> fresh;  // per configuration
  std::optional<Allocator> aged, copy;
};

namespace {

Allocator& assign(std::optional<Allocator>& slot, const Allocator& from) {
  if (slot)
    *slot = from;
  else
    slot.emplace(from);
  return *slot;
}

Trial run_trial_in(const Workload& w, Config c, uint64_t seed, bool full_checks, Workspace& ws) {
  auto& fresh = ws.fresh[static_cast<size_t>(c)];
  if (!fresh) {
    const MachineDecl m{w.memory_pages, w.pageblock_order, w.max_order, w.profile,
                        static_cast<uint8_t>(w.background > 0 ? 2 : 1), w.pcp_high};
    std::vector<AreaDecl> areas;
    if (c == Config::reservation)  // memblock allocates top-down: the area ends at the top of memory
      areas.push_back(AreaDecl{"cma", Pfn{w.memory_pages - w.area_pages}, PageCount{w.area_pages}, 0});
    fresh.emplace(m, areas, w.faults);
  }
  Allocator& aged = assign(ws.aged, *fresh);
  Ager ager(w, c, seed, aged);
  ager.age();
  ager.pin_short_term();
  Context ctx{c, seed, "aging"};
  if (full_checks) check(aged, CheckTier::full, ctx);
  Trial t;
  t.aging = ager.stats();
  const HandleId h = ager.fresh();
  Background background;
  if (w.background > 0) {
    background.rate = w.background;
    background.movable = ager.movable_blocks();
    background.first_free_handle = std::max<uint32_t>(ager.unused_handles_from(), raw(h) + 1);
  }
  for (size_t i = 0; i < w.sizes.size(); ++i) {
    // Each size on its own copy of the aged machine; the last may use the aged one itself.
    Allocator& a = i + 1 == w.sizes.size() ? aged : assign(ws.copy, aged);
    background.seed = mix64(seed ^ (i + 1) * 0x2545f4914f6cdd1dull);
    t.requests.push_back(measure(a, w, c, w.sizes[i], h, full_checks, ctx, background));
  }
  return t;
}

}  // namespace

Trial run_trial(const Workload& w, Config c, uint64_t seed, bool full_checks) {
  Workspace ws;
  return run_trial_in(w, c, seed, full_checks, ws);
}

// ---------------------------------------------------------------------------------------
// The run

Summary run(const Workload& w, const Options& o) {
  const auto start = std::chrono::steady_clock::now();
  Summary s;
  s.workload = w;
  s.options = o;
  const uint32_t trials = o.trials;
  const size_t nc = o.configs.size();
  const uint64_t total = static_cast<uint64_t>(trials) * nc;
  unsigned threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  threads = static_cast<unsigned>(std::min<uint64_t>(threads, std::max<uint64_t>(total, 1)));
  s.threads_used = threads;

  // results[task] with task = trial * nc + configuration: trials of all configurations
  // interleave, so an interrupted or slow run has progressed evenly.
  std::vector<Trial> results(total);
  std::atomic<uint64_t> next{0}, done{0};
  std::atomic<bool> stop{false};
  std::mutex error_lock;
  std::optional<std::string> error;
  auto worker = [&] {
    Workspace ws;
    while (!stop.load(std::memory_order_relaxed)) {
      const uint64_t task = next.fetch_add(1);
      if (task >= total) return;
      const Config c = o.configs[task % nc];
      const uint32_t trial = static_cast<uint32_t>(task / nc);
      const bool full = o.full_every != 0 && trial % o.full_every == 0;
      try {
        results[task] = run_trial_in(w, c, trial_seed(o.seed, c, trial), full, ws);
      } catch (const SimViolation& v) {
        std::lock_guard<std::mutex> g(error_lock);
        if (!error) error = "trial " + std::to_string(trial) + ": " + v.message;
        stop = true;
        return;
      }
      const uint64_t d = done.fetch_add(1) + 1;
      if (o.progress) o.progress(d, total);
    }
  };
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) throw SimViolation{*error};

  // Aggregate in a fixed order, so that the figures do not depend on the thread count.
  for (size_t ci = 0; ci < nc; ++ci) {
    AgingStats sum;
    for (uint32_t t = 0; t < trials; ++t) {
      const AgingStats& a = results[t * nc + ci].aging;
      sum.used_pages += a.used_pages;
      sum.alloc_failures += a.alloc_failures;
      sum.long_pin_failures += a.long_pin_failures;
      sum.pinned_pages += a.pinned_pages;
      sum.polluted_pageblocks += a.polluted_pageblocks;
      sum.polluted_movable += a.polluted_movable;
      sum.pageblocks += a.pageblocks;
    }
    if (trials) {
      auto avg = [&](uint64_t& v) { v = (v + trials / 2) / trials; };
      avg(sum.used_pages), avg(sum.alloc_failures), avg(sum.long_pin_failures), avg(sum.pinned_pages);
      avg(sum.polluted_pageblocks), avg(sum.polluted_movable), avg(sum.pageblocks);
    }
    s.aging_mean.push_back(sum);
    for (size_t si = 0; si < w.sizes.size(); ++si) {
      Cell cell;
      cell.config = o.configs[ci];
      cell.size_pages = w.sizes[si];
      uint64_t migrated = 0, migrated_ok = 0, windows = 0;
      for (uint32_t t = 0; t < trials; ++t) {
        const Request& r = results[t * nc + ci].requests[si];
        ++cell.trials;
        cell.successes += r.ok;
        migrated += r.migrated_pages;
        if (r.ok) migrated_ok += r.migrated_pages;
        windows += r.windows;
        cell.windows_max = std::max<uint64_t>(cell.windows_max, r.windows);
        ++cell.failures[static_cast<size_t>(r.why)];
      }
      double clean = 0;
      for (uint32_t t = 0; t < trials; ++t) {
        const AgingStats& a = results[t * nc + ci].aging;
        clean += static_cast<double>(a.clean_windows[si]) / static_cast<double>(std::max<uint64_t>(a.windows[si], 1));
      }
      cell.clean_share = trials ? clean / trials : 0;
      cell.rate = wilson(cell.successes, cell.trials);
      if (cell.trials) {
        cell.migrated_mean = static_cast<double>(migrated) / static_cast<double>(cell.trials);
        cell.windows_mean = static_cast<double>(windows) / static_cast<double>(cell.trials);
      }
      if (cell.successes) cell.migrated_mean_ok = static_cast<double>(migrated_ok) / static_cast<double>(cell.successes);
      s.cells.push_back(cell);
    }
  }
  s.trials_run = total;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s;
}

}  // namespace cmacheck::sim

