// What one operation did, as an outside observer sees it. impl/ and model/ both speak
// these types so that the lockstep checker compares observations, not internals.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trace/trace.h"

namespace cmacheck {

// Why an operation failed. Every value is a deterministic function of the state before
// the operation (rule K1), so the model predicts it exactly.
enum class FailReason : uint8_t {
  none,
  invalid_request,  // count 0, count beyond the bitmap (A1), order beyond max_order (M3)
  no_free_block,    // alloc: no legal free block (B4), including at=PFN not free or not legal (B7)
  pinned,           // free/migrate/pin longterm of a pinned block (F1, G1, P2)
  not_pinned,       // unpin with no pin (P3)
  not_movable,      // migrate of an unmovable or reclaimable block (G1)
  no_target,        // migrate / pin longterm: no free block to move to (G1, P2)
  no_window,        // cma_alloc: no aligned free window in the bitmap (A3)
  busy,             // cma_alloc / alloc_contig: every window tried was busy (A4, X1-X3)
  no_memory,        // cma_alloc / alloc_contig: a block had no migration target (X2, A4)
  not_handed_out,   // cma_release of pages the area did not hand out as one allocation (R2)
};
const char* name(FailReason r);

// One block moved by an operation (G1, P2, X2): contents travel with it (M5).
struct Move {
  HandleId handle{};
  Pfn from{};
  Pfn to{};
  friend bool operator==(const Move&, const Move&) = default;
};

struct Outcome {
  bool ok = false;
  Pfn pfn{};  // first frame of the allocation made or moved; 0 when not applicable
  FailReason reason = FailReason::none;
  std::vector<Move> moves;     // every block moved, in the order moved (kept on failure: X2)
  // The allocation a success ended without the statement naming it: a raw cma_release (R2).
  std::optional<HandleId> ended;
  // Every fallback block impl's free lists chose (B4 step 4: the list head B8 found, each
  // head B9 tried to claim, the block B9 stole), in order: the model checks each is of the
  // class the rules require and follows it (K2).
  std::vector<Pfn> fallback_heads;
  uint32_t windows_tried = 0;  // cma_alloc / alloc_contig candidate ranges tried
  // Why each failed candidate window failed (busy / no_memory), for the simulator's report.
  uint32_t busy_pinned = 0, busy_unmovable = 0;
  void clear() {
    ok = false;
    pfn = Pfn{0};
    reason = FailReason::none;
    moves.clear();
    ended.reset();
    fallback_heads.clear();
    windows_tried = 0;
    busy_pinned = busy_unmovable = 0;
  }
};

struct AreaStats {
  uint64_t used = 0;      // pages under set bits (debugfs `used`)
  uint64_t maxchunk = 0;  // pages in the longest run of clear bits (debugfs `maxchunk`)
  friend bool operator==(const AreaStats&, const AreaStats&) = default;
};

// Where one live allocation is and what it holds.
struct Placement {
  HandleId handle{};
  Pfn pfn{};
  PageCount count{};
  uint64_t digest = 0;  // content_digest() of its frames' values, in order
  friend bool operator==(const Placement&, const Placement&) = default;
};

// The observable state after an operation. `live` holds the allocations the operation
// created or moved (the cheap tier) or every live allocation (the full tier), sorted by
// handle; `labels` is filled on the full tier.
struct Observation {
  bool ok = false;
  Pfn pfn{};
  FailReason reason = FailReason::none;
  // What each contiguous request met (K1: the model predicts these exactly; the simulator's
  // failure table is built from them).
  uint32_t windows_tried = 0, busy_pinned = 0, busy_unmovable = 0;
  uint64_t free = 0;
  uint64_t free_cma = 0;
  std::vector<AreaStats> areas;
  std::vector<Placement> live;
  std::vector<MigrateType> labels;  // every pageblock's label: the full tier only, else empty
  uint64_t batched = 0;             // transient references in every CPU's batches (E1)
  // The full tier only: every batch entry, as batch_entry() encodes it, sorted.
  std::vector<uint64_t> batches;
  uint64_t free_pcp = 0;  // pages on every CPU's page lists (Q5)
  // The full tier only: every page-list entry as pcp_entry() encodes it, CPU by CPU, each
  // CPU's entries from the oldest to the newest (Q2, Q3 depend on that order).
  std::vector<uint64_t> pcp;
  friend bool operator==(const Observation&, const Observation&) = default;
};

// One entry of a CPU's page lists, for Observation::pcp: CPU, list, order, first frame.
constexpr uint64_t pcp_entry(uint8_t cpu, MigrateType list, Order order, Pfn pfn) {
  return (uint64_t{cpu} << 60) | (uint64_t(static_cast<uint8_t>(list)) << 56) | (uint64_t{order.value} << 48) | raw(pfn);
}

// One free block on the buddy allocator's lists: first frame, order, the list it is on (B10).
constexpr uint64_t free_block_entry(MigrateType list, Order order, Pfn head) {
  return (raw(head) << 12) | (uint64_t{order.value} << 4) | uint64_t(static_cast<uint8_t>(list));
}

// One transient reference, for Observation::batches: CPU, batch, handle.
constexpr uint64_t batch_entry(uint8_t cpu, Batch b, HandleId h) {
  return (uint64_t{cpu} << 40) | (uint64_t(static_cast<uint8_t>(b)) << 32) | raw(h);
}

// Content value of frame i of the k-th successful allocating operation (rule M5).
constexpr uint64_t content_value(uint64_t k, uint64_t i) { return (k << 32) | i; }

// Digest of a sequence of frame contents; both sides fold their values through this.
struct ContentDigest {
  uint64_t h = 0xcbf29ce484222325ull;
  void add(uint64_t v) {
    h ^= v;
    h *= 0x100000001b3ull;
    h ^= h >> 29;
  }
};

std::string describe(const Observation& o, const Trace& t);
// `ok pfn=P, moved N, W windows` or `fail (reason)`, for reports and logs.
std::string outcome_text(const Outcome& o);

}  // namespace cmacheck

namespace cmacheck {

// A broken rule: an invariant (I1..I10), a model check (K1, K2, K3, L1..L4) or an
// expectation of the trace. `where` points the frame picture at the trouble.
struct Violation {
  std::string rule;
  std::string message;
  std::optional<Pfn> where;
};

}  // namespace cmacheck
