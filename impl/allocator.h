// The reference allocator: Linux's structure, per docs/semantics.md (the
// "modern" profile). Frames, pageblocks with migratetypes, per-type per-order free lists
// in the kernel's discipline (freed blocks at the head, allocation from the head), CMA
// areas with bitmaps, alloc_contig_range with isolation and migration, pins.
// Deterministic: the same operations give the same placements on every run.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "impl/faults.h"
#include "trace/outcome.h"
#include "trace/steps.h"
#include "trace/trace.h"

namespace cmacheck::impl {

enum class CheckTier { cheap, full };

// What the allocator knows of one live allocation.
struct Allocation {
  Family family = Family::block;
  Kind kind = Kind::movable;  // blocks only
  Order order{};              // blocks only
  Order align{};              // cma allocations only
  Pfn pfn{};
  PageCount count{};
  uint32_t pins = 0;
  bool longterm = false;  // holds a long-term pin (P2)
  uint32_t batch_refs = 0;  // transient references CPUs' batches hold (E1): an extra page count
  bool off_lru = false;     // taken off the LRU by a migration in flight (X2's lru_isolate step)
  bool freeing = false;     // its free has read the type and not yet taken zone->lock (F2)
  AreaId area{};          // cma allocations only
  uint64_t serial = 0;    // k of rule M5
  HandleId handle{};
  bool live = false;
  // A contiguous allocation exists from its `take` step; cma_alloc hands it out when it
  // returns (R2: a raw release of a range still in flight is not one cma_alloc handed out).
  bool handed_out = true;
};

// One frame's role, for the frame picture of a failure report.
enum class FrameRole : uint8_t { free, movable, unmovable, reclaimable, pinned, cma_allocated, contig_allocated, isolated, on_pcp };

// What the concurrent checker learns at the end of each step (docs/concurrency.md). Its
// ghost state (reservations, isolation owners) is built from these reports, not read from
// impl's tables, so that a step that forgets its effect disagrees with its own report.
struct StepInfo {
  StepLabel label = StepLabel::op;
  AreaId area{};                      // reserve, search, unreserve, clear_bits, free_range: the area
  uint64_t first_bit = 0, nbits = 0;  // (reserve: nbits 0 when no window was found)
  uint64_t first_pb = 0, last_pb = 0;  // isolate, undo: the range's pageblocks
  bool isolated = false;               // isolate: every pageblock was isolated
  std::optional<uint64_t> refused_isolated_pb;  // isolate: the pageblock found ISOLATE already
  std::optional<uint64_t> refused_unmovable_pb;  // isolate: the pageblock has_unmovable_pages refused (X1)
  uint8_t drained_cpu = 0;                      // pcp_drain: the CPU whose lists were drained
  MigrateType type_read = MigrateType::movable;  // read_type: the pageblock type the free read (F2)
  std::optional<uint64_t> busy_on_pcp;           // take: a frame of the range on a page list (X3, W4)
  std::optional<uint64_t> merged_over_isolated;  // undo: X5's buddy path merged a free block over this ISOLATE pageblock (W7)
  std::optional<HandleId> busy_block;  // migrate: the block whose pin, batch reference or free in flight made the range busy
  std::optional<Move> moved;           // migrate: the block moved at this step (X2)
};

// The concurrent engine (check/concurrent.h) installs one; without it (the sequential
// engine) every step runs straight on and cma_mutex is never contended.
class StepHook {
 public:
  virtual ~StepHook() = default;
  virtual void step(const StepInfo& info) = 0;
  // Returns once the calling CPU holds cma_mutex (it may run other CPUs' steps meanwhile).
  virtual void lock_cma_mutex() = 0;
  virtual void unlock_cma_mutex() = 0;
  // Returns once block `h` is back on the LRU (P2: the long-term pin's -EAGAIN loop).
  virtual void wait_for_lru(HandleId h) = 0;
};

inline constexpr uint8_t kMaxCpus = 4;

class Allocator {
 public:
  Allocator(const MachineDecl& machine, const std::vector<AreaDecl>& areas, FaultSet faults = {});

  // The tables whose size is the machine's, handed from one Allocator to the next so that
  // their memory is reused: the fuzz targets build thousands of small worlds a second.
  struct Tables {
    std::vector<MigrateType> labels, list_type;
    std::vector<uint32_t> owner;
    std::vector<uint8_t> free_order;
    std::vector<uint32_t> next, prev;
    std::vector<uint64_t> content;
  };
  // The same as Allocator(machine, areas, faults); `recycled` lends its memory only.
  Allocator(const MachineDecl& machine, const std::vector<AreaDecl>& areas, FaultSet faults, Tables recycled);
  // Gives the tables away; this allocator is left empty, to be destroyed or assigned to.
  Tables release_tables() &&;

  // Runs one operation; `out` is overwritten. The caller has checked the trace is well
  // formed (handles live and of the right family).
  void apply(const Op& op, Outcome& out);
  // One specialisation per operation, in allocator.cpp; an operation without one does not
  // compile (trace/ops.h, kNotHandled).
  template <class O>
  void execute(const O& op, Outcome& out);

  void alloc(HandleId h, Kind kind, Order order, std::optional<Pfn> at, Outcome& out);
  void free(HandleId h, Outcome& out);
  void pin(HandleId h, bool longterm, Outcome& out);
  void unpin(HandleId h, Outcome& out);
  void migrate(HandleId h, Outcome& out);
  void cma_alloc(HandleId h, AreaId area, PageCount count, Order align, Outcome& out);
  void cma_release(HandleId h, Outcome& out);
  void cma_release_raw(AreaId area, Pfn pfn, PageCount count, Outcome& out);
  void alloc_contig(HandleId h, PageCount count, Outcome& out);
  void free_contig(HandleId h, Outcome& out);
  void touch_block(HandleId h, Batch batch, Outcome& out);
  void lru_drain(Outcome& out);
  void pcp_drain(Outcome& out);

  // Concurrency (docs/concurrency.md): the hook sees every step's end; `cpu` names the
  // logical CPU whose operation runs next (its in-flight state: isolated pageblocks, handles
  // touched). Sequential use never calls either.
  void set_step_hook(StepHook* hook) { hook_ = hook; }
  void set_cpu(uint8_t cpu) { cpu_ = cpu; }
  uint8_t cpu() const { return cpu_; }
  bool area_bit(AreaId a, uint64_t bit) const { return (areas_[raw(a)].bits[bit >> 6] >> (bit & 63)) & 1; }
  uint64_t area_bits(AreaId a) const { return areas_[raw(a)].nbits; }

  // Observation after the last operation: counts, area stats and the placements of the
  // allocations the operation created or moved (all live allocations when `all_live`).
  void observe(const Outcome& last, bool all_live, Observation& obs) const;

  // The invariants of section 8 that the allocator can check on itself. The cheap tier
  // looks at what the last operation touched; the full tier walks every frame.
  // `quiescent` false: between two steps of an operation in flight (docs/concurrency.md),
  // where pageblocks may be isolated; the concurrent checker checks those against its ghost
  // state (I5', I7'), and only the cheap tier applies.
  std::optional<Violation> check_invariants(CheckTier tier, bool quiescent = true) const;
  std::optional<Violation> check_free_list(uint64_t f, uint8_t o) const;

  // I10: take a snapshot before an operation; after a failed one, check nothing changed
  // but the moves A6/X2 allow.
  struct Snapshot {
    std::vector<MigrateType> labels, list_type;
    std::vector<std::vector<uint64_t>> bitmaps;
    std::vector<std::pair<uint32_t, Pfn>> live;  // handle, pfn
    std::vector<uint32_t> pins;
    uint64_t free = 0;  // on the free lists and the page lists
    uint64_t pcp_flushes = 0;
  };
  Snapshot snapshot() const;
  void snapshot(Snapshot& into) const;  // the same, reusing `into`'s memory
  std::optional<Violation> check_unchanged(const Snapshot& before, const Outcome& failed) const;

  // Queries.
  const MachineDecl& machine() const { return machine_; }
  uint64_t free_pages() const { return free_pages_; }
  uint64_t free_cma_pages() const { return free_cma_pages_; }
  AreaStats area_stats(AreaId a) const;
  bool is_live(HandleId h) const;
  bool off_lru(HandleId h) const;  // another operation's migration has the block off the LRU
  const Allocation* allocation(HandleId h) const;
  MigrateType label(Pfn p) const { return labels_[raw(p) >> machine_.pageblock_order]; }
  FrameRole role(Pfn p) const;
  uint64_t content(Pfn p) const { return content_[raw(p)]; }
  uint64_t moves_total() const { return moves_total_; }
  // Transient references (E1-E4): how many every CPU's batches hold, each entry encoded by
  // batch_entry() (sorted), and the lru_cache_disable count (0 at quiescence, I12).
  uint64_t batched() const;
  void batch_entries(std::vector<uint64_t>& into) const;
  uint32_t lru_disabled() const { return lru_disabled_; }
  // Per-CPU page lists (Q1-Q5): the pages on them, and every entry as pcp_entry() encodes
  // it, CPU by CPU, oldest first.
  uint64_t free_pcp_pages() const { return pcp_pages_; }
  void pcp_entries(std::vector<uint64_t>& into) const;
  // Every free block on the buddy allocator's lists as free_block_entry() encodes it (sorted).
  void free_block_entries(std::vector<uint64_t>& into) const;
  bool on_pcp(uint64_t pfn) const;  // the frame is part of an entry of some CPU's lists
  // The last operation on `cpu` freed a block to the buddy allocator because another CPU
  // held its pcp lock (free_unref_page's trylock failed: a remote drain, Q2).
  bool pcp_bypassed(uint8_t cpu) const { return cpu_ctx_[cpu].pcp_bypassed; }
  uint64_t state_hash() const;  // canonical, for `cmacheck explore` (impl/hash.cpp)

  // Deliberate corruption, for the tests that show each invariant check fires.
  struct Corruptor;
  friend struct Corruptor;

 private:
  static constexpr uint32_t kNil = UINT32_MAX;
  static constexpr uint8_t kNotHead = 0xff;
  static constexpr int kTypes = 5;

  struct Area {
    AreaDecl decl;
    std::vector<uint64_t> bits;
    uint64_t nbits = 0;
    uint64_t set_bits = 0;
  };
  enum class Mode { cma, normal };
  enum class RangeResult { ok, busy_pinned, busy_unmovable, no_memory };

  // Free lists (rules B1, B2, B6).
  uint64_t pageblock_of(uint64_t pfn) const { return pfn >> machine_.pageblock_order; }
  MigrateType block_type(uint64_t pfn) const { return labels_[pageblock_of(pfn)]; }
  void list_add(uint64_t pfn, uint8_t order, MigrateType list, bool to_tail = false);
  void list_del(uint64_t pfn);
  void move_to_list(uint64_t pfn, MigrateType list);
  bool mergeable(MigrateType freed, MigrateType buddy) const;
  bool mergeable(uint64_t a, uint64_t b) const;  // by the labels of the blocks at a and b
  void free_block(uint64_t pfn, uint8_t order, MigrateType type, bool to_tail = false);
  void free_owned(uint64_t pfn, uint8_t order, std::optional<MigrateType> as = {});
  void free_pages(uint64_t pfn, uint64_t count);
  void free_range(uint64_t pfn, uint64_t count, bool to_tail = false);
  void add_free_split(uint64_t pfn, uint8_t order, bool to_tail);
  std::optional<uint64_t> containing_free_block(uint64_t pfn, uint8_t& order) const;
  void split_take(uint64_t head, uint8_t have, uint64_t want_pfn, uint8_t want, MigrateType halves);

  // Rules B4, B5: the order of attempts and claiming.
  struct Found {
    uint64_t pfn;
    uint8_t order;
    int step;
  };
  std::optional<Found> smallest_in(MigrateType t, uint8_t order) const;
  bool worth_claiming(MigrateType t, uint8_t found_order) const;
  std::optional<MigrateType> fallback_type_at(MigrateType t, uint8_t order) const;
  bool claim_count_passes(MigrateType t, uint64_t pageblock) const;
  void relabel(uint64_t pageblock, MigrateType t, bool move = true);
  void move_pageblock_lists(uint64_t pageblock, MigrateType t);
  std::optional<uint64_t> fallback_6_1(MigrateType t, uint8_t order, Outcome& out);
  std::optional<uint64_t> fallback_6_12(MigrateType t, uint8_t order, Outcome& out);
  std::optional<uint64_t> take_block(MigrateType t, uint8_t order, bool allow_cma, Outcome& out);
  MigrateType claim_at(MigrateType t, uint64_t head, uint8_t have);

  // Allocation records.
  uint32_t new_allocation(HandleId h, Family fam, Pfn pfn, PageCount count);
  void drop_allocation(uint32_t slot, std::optional<MigrateType> seen = {});
  void assign_frames(uint32_t slot);
  uint32_t slot_of(HandleId h) const { return raw(h) < slot_of_handle_.size() ? slot_of_handle_[raw(h)] : 0; }
  Allocation& rec(uint32_t slot) { return allocs_[slot - 1]; }
  const Allocation& rec(uint32_t slot) const { return allocs_[slot - 1]; }

  // Migration (G1, P2, X2).
  bool move_block(uint32_t slot, MigrateType request, bool allow_cma_target, Outcome& out);

  // alloc_contig_range (X1..X5).
  // Who gets the range when it is taken (the allocation is created at the `take` step).
  struct Taker {
    HandleId handle{};
    Family family = Family::contig;
    AreaId area{};
    Order align{};
  };
  RangeResult alloc_contig_range(uint64_t s, uint64_t e, Mode mode, Outcome& out, const Taker& taker);
  bool pageblock_unmovable(uint64_t pb, bool edge = false) const;
  bool isolate(uint64_t first_pb, uint64_t last_pb, Mode mode);
  void unisolate(uint64_t first_pb, uint64_t last_pb, Mode mode);
  void take_range(uint64_t s, uint64_t e);

  // CMA bitmaps (A2, A3).
  void set_bits(Area& a, uint64_t first, uint64_t n, bool value);
  void touch(HandleId h) { touched().push_back(h); }
  void step(const StepInfo& info) {
    if (hook_) hook_->step(info);
  }
  void step(StepLabel label) {
    if (hook_) hook_->step(StepInfo{.label = label});
  }
  // Per-CPU page lists (Q2-Q4).
  struct PcpEntry {
    uint64_t pfn;
    uint8_t order;
    MigrateType list;    // MOVABLE, UNMOVABLE or RECLAIMABLE: CMA rides on MOVABLE (Q2)
    MigrateType cached;  // the type read when it was freed (linux-6.1's set_pcppage_migratetype, Q4)
  };
  bool pcp_on() const { return machine_.pcp_high != 0; }
  // `seen`: the type the free read before zone->lock (F2); without it the read and the
  // lock are one step.
  void free_unref(uint64_t pfn, uint8_t order, std::optional<MigrateType> seen = {});
  std::optional<MigrateType> type_under_lock(MigrateType seen) const;
  void pcp_flush(uint8_t cpu);
  void drain_all_pcp();
  std::optional<uint64_t> take_pcp(MigrateType t, uint8_t order, bool allow_cma);
  std::optional<uint64_t> alloc_pages(MigrateType t, uint8_t order, bool allow_cma, Outcome& out);
  bool pcp_in_range(uint64_t s, uint64_t e) const;
  // The state of the operation running on the current CPU.
  struct CpuContext {
    std::vector<HandleId> touched;   // handles the operation created or moved
    std::vector<uint64_t> isolated;  // pageblocks isolated by its running alloc_contig_range
    // The CPU's folio batches (E1): one slot per transient reference, in order of adding.
    std::array<std::vector<uint32_t>, kBatchKinds> batches;
    // The CPU's page lists (Q2): every entry, oldest first, and the pages they hold.
    std::vector<PcpEntry> pcp;
    uint64_t pcp_pages = 0;
    std::optional<uint8_t> pcp_lock_holder;  // another CPU draining these lists (Q4)
    bool pcp_bypassed = false;               // the running operation's free met that lock
  };
  // Transient references (E1-E4).
  void drain_batch(std::vector<uint32_t>& batch);
  void drain_cpu(uint8_t cpu);
  void drain_all_cpus();
  void drop_batch_refs(uint32_t slot);
  void lru_cache_disable();
  void lru_cache_enable();
  std::vector<HandleId>& touched() { return cpu_ctx_[cpu_].touched; }
  const std::vector<HandleId>& touched() const { return cpu_ctx_[cpu_].touched; }
  std::vector<uint64_t>& isolated() { return cpu_ctx_[cpu_].isolated; }

  MachineDecl machine_;
  FaultSet faults_;
  std::vector<Area> areas_;
  Profile profile_;
  std::vector<MigrateType> labels_;
  std::vector<MigrateType> list_type_;     // the list of the free block a frame heads (B10, B11)
  std::vector<uint32_t> owner_;            // allocation slot per frame, 0 when free
  std::vector<uint8_t> free_order_;        // order when the frame heads a free block
  std::vector<uint32_t> next_, prev_;      // free-list links of block heads
  std::vector<uint64_t> content_;          // rule M5
  std::array<std::array<uint32_t, 32>, kTypes> heads_{};
  std::array<std::array<uint32_t, 32>, kTypes> tails_{};
  std::array<std::array<uint32_t, 32>, kTypes> nr_free_{};
  std::vector<Allocation> allocs_;
  std::vector<uint32_t> free_slots_;
  std::vector<uint32_t> slot_of_handle_;
  std::array<CpuContext, kMaxCpus> cpu_ctx_;
  uint8_t cpu_ = 0;
  StepHook* hook_ = nullptr;
  // Concurrency: the free blocks put on a list since the last invariant check, which checks
  // their lists (I2) and forgets them.
  mutable std::vector<uint32_t> step_free_heads_;
  std::optional<uint64_t> refused_isolated_pb_;  // isolate(): the pageblock found ISOLATE already
  std::optional<uint64_t> refused_unmovable_pb_;  // isolate(): the pageblock found unmovable (X1)
  uint64_t free_pages_ = 0, free_cma_pages_ = 0, free_isolated_pages_ = 0;
  uint64_t isolated_pageblocks_ = 0;
  // W7: the ISOLATE pageblocks (of another caller) that X5's buddy path merged a free block
  // over, while they stay ISOLATE; I2's B13 clause lets a free block cover these.
  std::vector<uint64_t> merged_over_isolated_;
  std::optional<uint64_t> last_merged_over_;  // the last unisolate's first such pageblock, for its undo step
  uint64_t allocated_pages_ = 0;
  uint64_t alloc_serial_ = 0;
  uint64_t moves_total_ = 0;
  uint32_t lru_disabled_ = 0;  // lru_cache_disable() calls not yet undone (E1, I12)
  uint64_t pcp_pages_ = 0;     // pages on every CPU's page lists (Q5)
  uint64_t pcp_flushes_ = 0;   // page lists flushed so far (I10: a drain may relabel, B13)
};

}  // namespace cmacheck::impl
