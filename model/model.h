// The executable model: the second, independent statement of docs/semantics.md.
//
// The model keeps only what the rules talk about: which frames are free, each pageblock's
// label, the live allocations and their pins and contents, each CMA area's bitmap. Free
// blocks are derived from free frames and labels (free_memory.h), never kept in lists.
//
// Where the semantics fix the result (K1) the model computes it itself: the window of a
// cma_alloc, the candidate of an alloc_contig, the validity of every free, pin, unpin and
// release, every count, every failure reason. Where the kernel's free lists choose (K2) --
// which free block an alloc takes, where a migrated block lands -- the model takes the
// reference allocator's choice from its Outcome, checks it is legal, and follows it.
//
// Includes nothing from impl/ (scripts/check-independence.sh).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/free_memory.h"
#include "trace/outcome.h"
#include "trace/trace.h"

namespace cmacheck::model {

class Model {
 public:
  // Rule M2: every frame free, pageblocks of CMA areas CMA and all others MOVABLE.
  Model(const MachineDecl& machine, const std::vector<AreaDecl>& areas);

  // The tables whose size is the machine's, handed from one Model to the next so that their
  // memory is reused: the fuzz targets build thousands of small worlds a second.
  struct Tables {
    FreeMemory::Tables memory;
    std::vector<uint32_t> owner;
    std::vector<uint64_t> content;
  };
  // The same as Model(machine, areas); `recycled` lends its memory only.
  Model(const MachineDecl& machine, const std::vector<AreaDecl>& areas, Tables recycled);
  // Gives the tables away; this model is left empty, to be destroyed or assigned to.
  Tables release_tables() &&;

  // Applies one operation in lockstep with the reference allocator. `impl` is impl's outcome
  // for the same operation; its pfn (alloc) and moves (migrate, pin longterm, cma_alloc,
  // alloc_contig) are the free-list choices of rule K2, which the model checks and follows.
  // `mine` receives the model's own outcome: ok, pfn, reason, the moves it followed,
  // windows_tried, busy_pinned, busy_unmovable. Returns the first violation found:
  //   K2  impl's choice is illegal (not a free block of the class B4 requires, a move of a
  //       block the model does not move next, or a success where no legal block exists);
  //   L1  impl failed, or stopped migrating, where the model has a legal block;
  //   K1  a contiguous request whose moves and result both depart from the model's.
  // After a violation the model makes its own choices (the lowest free block of the class)
  // so that its state stays meaningful. The caller compares `mine` with `impl`.
  // Precondition (the caller's): the operation is well formed, handles live and of the
  // right family. A handle the model does not know is reported as K1, not a crash.
  std::optional<Violation> apply(const Op& op, const Outcome& impl, Outcome& mine);

  // Applies one operation with no reference allocator: every free-list choice is the
  // lowest free block of the class B4 requires. For tests and for running the model alone.
  void apply_alone(const Op& op, Outcome& mine);

  // Concurrency (docs/concurrency.md, W1): for the next operation only, a cma_alloc's
  // search number `attempt` (0 first) treats these bits as set: a concurrent caller had
  // reserved them, or a concurrent cma_release had not cleared them yet, when it looked.
  struct ReservedView {
    uint32_t attempt = 0;
    AreaId area{};
    uint64_t first_bit = 0, nbits = 0;
  };
  void set_reserved_view(std::vector<ReservedView> view) { reserved_view_ = std::move(view); }
  // The logical CPU that issues the next operation (touch, lru_drain: E1, E2).
  void set_cpu(uint8_t cpu) { cpu_ = cpu; }
  // Concurrency (E3): alloc_contig_range's lru_cache_disable and lru_cache_enable happen at
  // steps of their own, which the concurrent checker applies in step order; with this set,
  // cma_alloc and alloc_contig leave them to it.
  void set_lru_events_external(bool external) { lru_events_external_ = external; }
  void lru_cache_disable();
  void lru_cache_enable();
  // Q4 with the events external: for the next operation only, per isolation that succeeded
  // (one per candidate range, ascending), the CPUs whose lists its pcp_drain steps drained.
  // An alloc_contig_range whose isolation succeeds drains those of the candidates before it
  // not drained yet and of its own isolation, one entry (two candidates may begin in one
  // pageblock), where the sequential one drains every CPU (any operation that
  // committed in between overlapped it, so its result is inconclusive then).
  struct PcpDrains {
    uint64_t first_pb = 0;  // the candidate's first pageblock
    uint8_t cpus = 0;       // one bit per CPU
  };
  void set_pending_pcp_drains(std::vector<PcpDrains> drains) {
    pending_pcp_drains_ = std::move(drains);
    pcp_drain_attempt_ = 0;
  }
  // Concurrency (Q2): for the next operation only, its frees meet a pcp lock another CPU's
  // drain holds: the trylock fails and they go to the buddy allocator.
  void set_pcp_bypass(bool bypass) { pcp_bypass_ = bypass; }
  // Concurrency (F2): for the next operation only, the pageblock type its `free` read before
  // zone->lock, when another CPU ran between that read and the free.
  void set_free_type_read(std::optional<MigrateType> t) { free_type_read_ = t; }
  // Concurrency (W5): for the next operation only, another operation in flight held an
  // ISOLATE pageblock when it committed, so linux-6.1's frees read the label again
  // (has_isolate_pageblock is true) though no pageblock of the model is ISOLATE.
  void set_isolated_elsewhere(bool b) { isolated_elsewhere_ = b; }
  // Concurrency (W6, X1): for the next operation only, the windows whose isolation was
  // refused at a pageblock, in the order they were tried: the window starting at pageblock
  // first_pb was refused at refused_pb. The checker has checked the obstacle at that step:
  // another operation in flight owned refused_pb (I7'), or it held an unmovable,
  // reclaimable or contiguous allocation or a CMA label (X1); it may be gone by the commit.
  struct Refusal {
    uint64_t first_pb = 0, refused_pb = 0;
  };
  // Concurrency (W6): for the next operation only, the pageblocks other operations held
  // ISOLATE when it committed, as runs of one isolating operation each. Under linux-6.12
  // the model isolates them for the operation (X1's labels and edge splits) and gives them
  // their labels back after it; the isolating operation, applied whole at its own commit,
  // isolates and undoes them itself. (linux-6.1's lists are left alone: not stated yet.)
  struct PageblockRange {
    uint64_t first = 0, last = 0;
  };
  void set_foreign_isolation(std::vector<PageblockRange> r) { foreign_isolation_ = std::move(r); }
  // Concurrency (Q4), events external: one CPU's page lists drained at an alloc_contig_range's
  // `pcp_drain` step, while `isolated` (that operation's range and others') are ISOLATE: the
  // frames go to the buddy allocator as pcp_flush frees them, the labels then as they were.
  void drain_pcp_at_step(uint8_t cpu, std::vector<PageblockRange> isolated);
  // Concurrency (X2 at its step): one block of an alloc_contig_range's range, migrated at the
  // operation's `migrate` step while `isolated` (its range and others') are ISOLATE and the
  // operation runs on `cpu`, before another operation commits and before its own commit.
  // impl's target `move.to` is checked by B4 (K2) and followed. `op` names the operation:
  // its apply (set_operation) starts past the moves so made. Returns a departure: the block
  // is not where impl moved it from, or impl's target is not legal now.
  std::optional<Violation> migrate_at_step(uint32_t op, uint8_t cpu, const Move& move, std::vector<PageblockRange> isolated);
  // Concurrency (W8): for the next operation only, the blocks another CPU held when it
  // looked at them: off the LRU for another caller's migration (a `migrate`), or with their
  // free in flight (a contiguous request's migration). Migrating them fails busy, as a pin
  // makes it. The checker has checked the hold at that step.
  void set_held_blocks(std::vector<HandleId> h) { held_blocks_ = std::move(h); }
  // For the next operation only: its name for migrate_at_step.
  void set_operation(uint32_t op) { operation_ = op; }
  void set_refusals(std::vector<Refusal> r) {
    refusals_ = std::move(r);
    refusal_ = 0;
  }

  // Transient references (E1-E4): how many every CPU's batches hold, and each one as
  // batch_entry() encodes it (sorted).
  uint64_t batched() const;
  void batch_entries(std::vector<uint64_t>& into) const;
  uint32_t lru_disabled() const { return lru_disabled_; }

  // Per-CPU page lists (Q1-Q5): the pages on them, and every entry as pcp_entry() encodes
  // it, CPU by CPU, oldest first.
  uint64_t free_pcp_pages() const { return pcp_total_; }
  // Every free block (B1, B2) and the list it is on as free_block_entry() encodes it (sorted).
  void free_block_entries(std::vector<uint64_t>& into) const;
  void pcp_entries(std::vector<uint64_t>& into) const;

  // Counts (M7).
  uint64_t free_pages() const { return memory_.free_frames(); }
  uint64_t free_cma_pages() const { return memory_.free_frames_labelled(MigrateType::cma); }
  AreaStats area_stats(AreaId a) const;

  // Live allocations.
  bool is_live(HandleId h) const;
  std::optional<Placement> placement(HandleId h) const;  // pfn, count, content digest
  uint32_t pins(HandleId h) const;                       // 0 when not live or not a block
  bool longterm_pinned(HandleId h) const;

  // Frames and pageblocks.
  // '.' free, 'i' free in an isolated pageblock, 'm' movable, 'u' unmovable,
  // 'r' reclaimable, 'P' pinned block, 'C' cma_alloc, 'X' alloc_contig, 'p' on a page list.
  char frame_char(Pfn p) const;
  MigrateType label(Pfn p) const { return memory_.label(p); }
  uint64_t content(Pfn p) const { return content_[raw(p)]; }  // 0 for a free frame
  const FreeMemory& memory() const { return memory_; }
  uint64_t state_hash() const;  // canonical, for `cmacheck explore` (model/hash.cpp)

  // Re-derives everything derived and checks the model's own bookkeeping (frames owned by
  // exactly the live allocations, bitmaps, counts). The checker runs it on its full tier, so
  // that an optimisation of the model's incremental tables is re-derived from the
  // definitions (free_memory.h) every few operations.
  std::optional<std::string> self_check() const;
  FreeMemory& memory_for_tests() { return memory_; }

 private:
  struct Allocation {
    Family family = Family::block;
    Kind kind = Kind::movable;  // blocks
    Order order{};              // blocks
    Pfn pfn{};
    PageCount count{};
    uint32_t pins = 0;      // blocks (P1-P3)
    bool longterm = false;  // a long-term pin taken since pins was last 0 (P2)
    AreaId area{};          // cma_alloc
    FrameRange range() const { return {pfn, count}; }
  };
  struct Area {
    AreaDecl decl;
    std::vector<uint8_t> bits;  // one per chunk of 2^order_per_bit frames (M6)
  };
  // The class of free blocks rule B4 settles on: a free list (type, order), and the step
  // of B4 that found it (only step 4 claims, B5).
  struct FreeClass {
    MigrateType type;
    Order order;
    int step;
  };
  enum class Mode { cma, normal };
  enum class RangeResult { ok, busy_pinned, busy_unmovable, no_memory };
  static constexpr uint32_t kNoOwner = UINT32_MAX;

  std::optional<Violation> run(const Op& op, const Outcome* impl, Outcome& mine);
  std::optional<Violation> finish_run(const Op& op, Outcome& mine);
  // One specialisation per operation, in model.cpp; an operation without one does not
  // compile (trace/ops.h, kNotHandled).
  template <class O>
  void execute(const O& op, Outcome& mine);

  // Operations.
  void alloc(const Alloc& op, Outcome& mine);
  void alloc_at(const Alloc& op, Outcome& mine);
  void free(const Free& op, Outcome& mine);
  void pin(const Pin& op, Outcome& mine);
  void unpin(const Unpin& op, Outcome& mine);
  void migrate(const Migrate& op, Outcome& mine);
  void cma_alloc(const CmaAlloc& op, Outcome& mine);
  void cma_release(HandleId h, Outcome& mine);
  void cma_release_raw(const CmaReleaseRaw& op, Outcome& mine);
  void alloc_contig(const AllocContig& op, Outcome& mine);
  void free_contig(const FreeContig& op, Outcome& mine);
  void touch(const Touch& op, Outcome& mine);
  void lru_drain(Outcome& mine);
  void drain_every_cpu();  // lru_add_drain_all

  // Per-CPU page lists (Q2-Q4).
  struct PcpEntry {
    Pfn head{};
    Order order{};
    MigrateType list = MigrateType::movable;
    MigrateType read = MigrateType::movable;  // the type read when it was freed (linux-6.1's cache, Q4)
  };
  bool pcp_on() const { return machine_.pcp_high != 0; }
  void release(Pfn head, Order order, std::optional<MigrateType> seen = {});  // a block its owner frees: Q2, else free_block
  bool any_isolated() const;  // has_isolate_pageblock
  void pcp_flush(uint8_t cpu);
  void drain_all_pcp();
  // W6's temporary isolation: `isolated` ISOLATE while fn runs, their labels given back after.
  template <class Fn>
  void under_isolation(std::vector<PageblockRange> isolated, Fn&& fn);
  // Installs foreign_isolation_, returning the labels to give back.
  std::vector<std::pair<uint64_t, MigrateType>> isolate_foreign();
  void give_back_foreign(const std::vector<std::pair<uint64_t, MigrateType>>& labels);
  std::optional<Pfn> take_pcp(MigrateType t, Order k, bool allow_cma);
  bool pcp_in(FrameRange r) const;

  // The buddy allocator (B3-B5, B7-B13) and migration (G1).
  Profile profile() const { return machine_.profile; }
  bool worth_claiming(MigrateType t, Order found) const;
  std::optional<FreeClass> smallest_class(MigrateType type, Order k, int step) const;
  std::optional<MigrateType> fallback_type_at(MigrateType t, Order c) const;
  bool any_block(MigrateType t, Order k, bool allow_cma) const;
  bool in_class(Pfn head, const FreeClass& c) const;
  FreeBlock lowest_in(const FreeClass& c) const;
  static std::string describe(const FreeClass& c);
  FreeBlock choose(const FreeClass& c, std::optional<Pfn> proposed, const std::string& what);
  FreeBlock fallback_head(const FreeClass& c);
  FreeBlock take_found(const FreeBlock& found, std::optional<Pfn> proposed, const std::string& what);
  bool claim_count_passes(MigrateType t, uint64_t pb) const;
  void relabel_for_claim(uint64_t pb, MigrateType t);
  void move_pageblock_lists(uint64_t pb, MigrateType t);
  template <class Fn>
  void for_each_free_block_in(uint64_t pb, Fn&& fn);
  std::optional<FreeBlock> rmqueue(MigrateType t, Order k, bool allow_cma, std::optional<Pfn> proposed,
                                   const std::string& what);
  std::optional<FreeBlock> fallback_6_1(MigrateType t, Order k, std::optional<Pfn> proposed, const std::string& what);
  std::optional<FreeBlock> fallback_6_12(MigrateType t, Order k, std::optional<Pfn> proposed, const std::string& what);
  void claim_at(MigrateType t, const FreeBlock& found);
  bool move_block(HandleId h, MigrateType request, bool allow_cma_target, Outcome& mine);

  // Freeing (F1, R1, C3, B10-B13).
  void free_block(Pfn head, Order order, std::optional<MigrateType> as = {});
  void free_piece(FrameRange r, std::optional<MigrateType> as = {});
  void free_contig_pages(FrameRange r);
  void settle_merged(const FreeBlock& b, MigrateType l);
  void relabel_pageblocks_of(const FreeBlock& b, MigrateType l);

  // alloc_contig_range (X1-X7) and the CMA bitmap (A2, A3).
  bool pageblock_unmovable(uint64_t pb) const;
  RangeResult contig_range(FrameRange r, Mode mode, Outcome& mine, bool take);
  void split_outside(uint64_t edge, bool outer_below);
  std::optional<FreeBlock> split_edges_linux_6_1(uint64_t first_pb, uint64_t last_pb, bool last_isolated);
  template <class Isolated>
  void undo_isolation(uint64_t first_pb, uint64_t last_pb, Isolated&& isolated, MigrateType caller,
                      const std::optional<FreeBlock>& across_hi = std::nullopt);
  bool aligned(const Area& a, uint64_t j, Order align) const;
  std::optional<uint64_t> find_window(const Area& a, uint64_t start, uint64_t nbits, Order align) const;
  void set_bits(Area& a, uint64_t first, uint64_t n, bool value);
  std::optional<uint64_t> search_with_view(Area& a, AreaId area, uint32_t attempt, uint64_t start, uint64_t nbits,
                                           Order align);

  // Allocation records and frames.
  Allocation* live(HandleId h);
  const Allocation* live(HandleId h) const;
  Allocation& create(HandleId h, Family family, FrameRange r, bool taken = false);
  void destroy(HandleId h);
  void own(HandleId h, FrameRange r);
  void disown(FrameRange r);

  // The reference allocator's choices for the operation being applied (nullptr: none).
  bool consulting() const { return impl_ && !violation_; }
  const Move* next_impl_move() const;
  void violate(const char* rule, std::string message, std::optional<Pfn> where);
  bool handle_ok(HandleId h, bool binds, Family family);

  MachineDecl machine_;
  FreeMemory memory_;
  std::vector<Area> areas_;
  std::vector<std::optional<Allocation>> allocs_;  // by HandleId
  std::vector<uint32_t> owner_;                    // per frame: HandleId, or kNoOwner
  std::vector<uint64_t> content_;                  // per frame (M5)
  uint64_t serial_ = 0;                            // successful allocating operations (M5)

  // linux-6.1, while alloc_contig moves blocks: free frames past the range that are on
  // ISOLATE's lists (split_edges_linux_6_1's block across the upper edge).
  uint64_t isolate_listed_past_range_ = 0;
  uint64_t isolate_listed_past_range_cma_ = 0;  // the same, when those frames are CMA's
  std::vector<MigrateType> scratch_labels_;  // contig_range's, kept to spare an allocation per window
  std::vector<ReservedView> reserved_view_;
  // E1: per CPU, per batch, the blocks it holds a reference to (a block once per reference).
  static constexpr uint8_t kCpus = 4;
  std::array<std::array<std::vector<HandleId>, kBatchKinds>, kCpus> batches_{};
  uint32_t lru_disabled_ = 0;
  // Q2: per CPU, its page lists' entries, oldest first (one sequence for all its lists: an
  // entry's list is part of it), and the pages they hold.
  std::array<std::vector<PcpEntry>, kCpus> pcp_{};
  std::array<uint64_t, kCpus> pcp_pages_{};
  uint64_t pcp_total_ = 0;
  bool pcp_bypass_ = false;
  std::optional<MigrateType> free_type_read_;
  bool isolated_elsewhere_ = false;
  std::vector<Refusal> refusals_;  // set_refusals
  std::vector<PageblockRange> foreign_isolation_;  // set_foreign_isolation
  size_t refusal_ = 0;                    // the windows that used theirs
  std::vector<PcpDrains> pending_pcp_drains_;  // set_pending_pcp_drains
  size_t pcp_drain_attempt_ = 0;             // the isolations that used theirs
  uint8_t cpu_ = 0;
  // migrate_at_step: per operation in flight, the moves of impl's it made (a prefix).
  std::vector<std::pair<uint32_t, uint32_t>> moved_at_steps_;
  std::optional<uint32_t> operation_;  // set_operation
  std::vector<HandleId> held_blocks_;  // set_held_blocks
  bool held(HandleId h) const { return std::find(held_blocks_.begin(), held_blocks_.end(), h) != held_blocks_.end(); }
  bool lru_events_external_ = false;
  std::vector<uint64_t> scratch_view_bits_;
  const Outcome* impl_ = nullptr;
  size_t impl_moves_used_ = 0;
  size_t impl_fallbacks_used_ = 0;
  std::optional<Violation> violation_;
};

}  // namespace cmacheck::model
