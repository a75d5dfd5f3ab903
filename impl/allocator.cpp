#include "impl/allocator.h"

#include "impl/bitmap.h"
#include "trace/refill.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>

namespace cmacheck::impl {

namespace {

constexpr int type_index(MigrateType t) { return static_cast<int>(t); }

// Fallback order per type (rule B4 step 4, `fallbacks[]` in mm/page_alloc.c).
constexpr std::array<MigrateType, 2> fallbacks(MigrateType t) {
  switch (t) {
    case MigrateType::unmovable: return {MigrateType::reclaimable, MigrateType::movable};
    case MigrateType::reclaimable: return {MigrateType::unmovable, MigrateType::movable};
    default: return {MigrateType::reclaimable, MigrateType::unmovable};
  }
}


}  // namespace

Allocator::Allocator(const MachineDecl& machine, const std::vector<AreaDecl>& areas, FaultSet faults)
    : Allocator(machine, areas, faults, Tables{}) {}

Allocator::Allocator(const MachineDecl& machine, const std::vector<AreaDecl>& areas, FaultSet faults,
                     Tables recycled)
    : machine_(machine),
      faults_(faults),
      profile_(machine.profile),
      labels_(std::move(recycled.labels)),
      list_type_(std::move(recycled.list_type)),
      owner_(std::move(recycled.owner)),
      free_order_(std::move(recycled.free_order)),
      next_(std::move(recycled.next)),
      prev_(std::move(recycled.prev)),
      content_(std::move(recycled.content)) {
  const uint64_t n = machine_.pages;
  const uint64_t pageblocks = n >> machine_.pageblock_order;
  refill(labels_, pageblocks, MigrateType::movable);  // memmap_init leaves pageblocks MOVABLE (M2)
  refill(list_type_, n, MigrateType::movable);
  refill(owner_, n, uint32_t{0});
  refill(free_order_, n, kNotHead);
  refill(next_, n, kNil);
  refill(prev_, n, kNil);
  refill(content_, n, uint64_t{0});
  for (auto& per_type : heads_) per_type.fill(kNil);
  for (auto& per_type : tails_) per_type.fill(kNil);
  for (const auto& decl : areas) {
    Area a;
    a.decl = decl;
    a.nbits = raw(decl.pages) >> decl.order_per_bit;
    a.bits.assign((a.nbits + 63) / 64, 0);
    for (uint64_t pb = raw(decl.base) >> machine_.pageblock_order;
         pb < (raw(decl.base) + raw(decl.pages)) >> machine_.pageblock_order; ++pb)
      labels_[pb] = MigrateType::cma;  // cma_activate_area: init_cma_reserved_pageblock
    areas_.push_back(std::move(a));
  }
  // Everything starts free; free_range merges as far as B2 allows. Boot memory goes to the
  // tail of the lists (__free_pages_core, FPI_TO_TAIL, v5.10), so the lowest block is
  // handed out first on a fresh machine.
  free_range(0, n, true);
}

Allocator::Tables Allocator::release_tables() && {
  return Tables{std::move(labels_), std::move(list_type_), std::move(owner_), std::move(free_order_),
                std::move(next_),   std::move(prev_),         std::move(content_)};
}

// ---------------------------------------------------------------------------------------
// Free lists (B1, B2, B6, B10, B11)

// B6: a freed block goes to the head of its list; boot memory and blocks moved by a
// relabel go to the tail (FPI_TO_TAIL, move_to_free_list). `t` is the list: under
// linux-6.12 always the block's label (B11), under linux-6.1 a list of its own (B10).
// The free counts follow the list, as the kernel's account_freepages does.
void Allocator::list_add(uint64_t pfn, uint8_t order, MigrateType t, bool to_tail) {
  const int ti = type_index(t);
  free_order_[pfn] = order;
  list_type_[pfn] = t;
  const uint32_t p32 = static_cast<uint32_t>(pfn);
  if (hook_) step_free_heads_.push_back(p32);
  if (to_tail) {
    const uint32_t tail = tails_[ti][order];
    prev_[pfn] = tail;
    next_[pfn] = kNil;
    if (tail != kNil)
      next_[tail] = p32;
    else
      heads_[ti][order] = p32;
    tails_[ti][order] = p32;
  } else {
    const uint32_t head = heads_[ti][order];
    next_[pfn] = head;
    prev_[pfn] = kNil;
    if (head != kNil)
      prev_[head] = p32;
    else
      tails_[ti][order] = p32;
    heads_[ti][order] = p32;
  }
  ++nr_free_[ti][order];
  const uint64_t pages = uint64_t{1} << order;
  free_pages_ += pages;
  if (t == MigrateType::cma) free_cma_pages_ += pages;
  if (t == MigrateType::isolate) free_isolated_pages_ += pages;
}

void Allocator::list_del(uint64_t pfn) {
  const MigrateType t = list_type_[pfn];
  const int ti = type_index(t);
  const uint8_t order = free_order_[pfn];
  assert(order != kNotHead);
  const uint32_t n = next_[pfn], p = prev_[pfn];
  if (p != kNil)
    next_[p] = n;
  else
    heads_[ti][order] = n;
  if (n != kNil)
    prev_[n] = p;
  else
    tails_[ti][order] = p;
  free_order_[pfn] = kNotHead;
  --nr_free_[ti][order];
  const uint64_t pages = uint64_t{1} << order;
  free_pages_ -= pages;
  if (t == MigrateType::cma) free_cma_pages_ -= pages;
  if (t == MigrateType::isolate) free_isolated_pages_ -= pages;
}

// move_to_free_list: the free block at pfn goes to the tail of t's list.
void Allocator::move_to_list(uint64_t pfn, MigrateType t) {
  const uint8_t order = free_order_[pfn];
  list_del(pfn);
  list_add(pfn, order, t, true);
}

// B2: at order >= pageblock_order, a freed block of type a merges with a buddy labelled b
// of another type only when neither is CMA or ISOLATE (__free_one_page,
// migratetype_is_mergeable: "avoid merging non-fallbackable pageblocks", v5.18).
bool Allocator::mergeable(MigrateType a, MigrateType b) const {
  if (a == b) return true;
  const bool a_iso = a == MigrateType::isolate, b_iso = b == MigrateType::isolate;
  const bool a_cma = a == MigrateType::cma, b_cma = b == MigrateType::cma;
  if (a_iso || b_iso) {
    // D8/D9: isolated pageblocks used to merge with their neighbours.
    return faults_.on(Fault::merge_isolated) && !a_cma && !b_cma;
  }
  if (a_cma || b_cma) return faults_.on(Fault::merge_cma_with_movable);  // D10
  return true;
}

bool Allocator::mergeable(uint64_t a, uint64_t b) const { return mergeable(block_type(a), block_type(b)); }

// __free_one_page: the block [pfn, pfn + 2^order), freed as type `type`, merges with its
// buddy while the buddy is a free block of the same order that B2 lets it merge with. The
// merged block goes on `type`'s list, whatever lists its buddies were on (B12). Labels stay
// under linux-6.1 (B12); under linux-6.12 a buddy of another label takes `type` (B13,
// change_pageblock_range), so the merged block has one label.
void Allocator::free_block(uint64_t pfn, uint8_t order, MigrateType type, bool to_tail) {
  const uint64_t n = machine_.pages;
  const uint8_t B = machine_.pageblock_order;
  while (order < machine_.max_order) {
    const uint64_t size = uint64_t{1} << order;
    const uint64_t buddy = pfn ^ size;
    if (buddy + size > n || free_order_[buddy] != order) break;
    const MigrateType buddy_label = block_type(buddy);
    if (order >= B && !mergeable(type, buddy_label)) break;
    list_del(buddy);
    if (order >= B && buddy_label != type && profile_ == Profile::linux_6_12)
      for (uint64_t pb = buddy >> B; pb < (buddy + size) >> B; ++pb) relabel(pb, type, false);
    pfn = std::min(pfn, buddy);
    ++order;
  }
  list_add(pfn, order, type, to_tail);
}

// A block its owner frees (free ID; the source of a move): __free_pages -> free_one_page,
// as its first pageblock's label. linux-6.12 frees a block larger than a pageblock one
// pageblock at a time, ascending, each as its own label (split_large_buddy, B13).
// Under linux-6.1 a block that spans pageblocks B2 keeps apart (a movable block larger than
// a pageblock, freed by its move while part of it is isolated) is freed as the pieces that
// do not cross such a boundary, each as its own label (isolate_single_pageblock frees it
// into an isolated pageblock and splits it there, split_free_page; S5).
// `as`: the type the free decided under zone->lock (F2); for a block of at most a pageblock
// only (a larger one is freed as its pageblocks' labels, S8).
void Allocator::free_owned(uint64_t pfn, uint8_t order, std::optional<MigrateType> as) {
  const uint8_t B = machine_.pageblock_order;
  if (as && order <= B) {
    free_block(pfn, order, *as);
    return;
  }
  if (profile_ == Profile::linux_6_12 && order > B) {
    for (uint64_t p = pfn; p < pfn + (uint64_t{1} << order); p += uint64_t{1} << B) free_block(p, B, block_type(p));
    return;
  }
  if (order > B) {
    add_free_split(pfn, order, false);
    return;
  }
  free_block(pfn, order, block_type(pfn));
}

// free_contig_range (R1, C3): page by page, ascending, each as its pageblock's label
// (__free_page, through the page lists when there are any: Q2).
void Allocator::free_pages(uint64_t pfn, uint64_t count) {
  for (uint64_t p = pfn; p < pfn + count; ++p) free_unref(p, 0);
}

// ---------------------------------------------------------------------------------------
// Per-CPU page lists (Q1-Q5)

// PAGE_ALLOC_COSTLY_ORDER: larger blocks never use the lists (pcp_allowed_order).
constexpr uint8_t kPcpMaxOrder = 3;

// Q2 (free_the_page -> free_unref_page): a small block goes to the head of the freeing CPU's
// list for its pageblock's type, CMA riding on MOVABLE's; a block of an ISOLATE pageblock
// goes to the buddy allocator (free_one_page). A free that brings the CPU's lists to `high`
// pages flushes them (free_unref_page_commit -> free_pcppages_bulk).
// F2: `seen` is the type read before any lock (free_unref_page_prepare, __free_pages_ok);
// it decides the list, and the buddy allocator's list is decided under zone->lock
// (type_under_lock).
void Allocator::free_unref(uint64_t pfn, uint8_t order, std::optional<MigrateType> seen) {
  const MigrateType t = seen ? *seen : block_type(pfn);
  const std::optional<MigrateType> locked = seen ? type_under_lock(*seen) : std::nullopt;
  if (!pcp_on() || order > kPcpMaxOrder || (t == MigrateType::isolate && !faults_.on(Fault::isolated_free_parks_on_pcp))) {
    free_owned(pfn, order, locked);
    return;
  }
  const MigrateType list = t == MigrateType::unmovable || t == MigrateType::reclaimable ? t : MigrateType::movable;
  CpuContext& c = cpu_ctx_[cpu_];
  if (c.pcp_lock_holder && *c.pcp_lock_holder != cpu_) {
    // pcp_spin_trylock failed: another CPU drains these lists. The block goes to the buddy
    // allocator as its true type (free_one_page). D21: as the type it rode on the list.
    c.pcp_bypassed = true;
    if (faults_.on(Fault::pcp_bypass_uses_ride_type))
      free_block(pfn, order, list);
    else
      free_owned(pfn, order, locked);
    return;
  }
  c.pcp.push_back(PcpEntry{pfn, order, list, t});
  c.pcp_pages += uint64_t{1} << order;
  pcp_pages_ += uint64_t{1} << order;
  if (c.pcp_pages >= machine_.pcp_high) pcp_flush(cpu_);
}

// F2 under zone->lock (free_one_page, __free_pages_ok): linux-6.12 reads the type again
// (split_large_buddy); linux-6.1 only when some pageblock is ISOLATE or the type read was
// (has_isolate_pageblock, ad53f92eb416). Otherwise the type read before the lock stands, even
// if a steal relabelled the pageblock meanwhile (U61, legal in 6.1; the v6.10 series, D22).
std::optional<MigrateType> Allocator::type_under_lock(MigrateType seen) const {
  if (faults_.on(Fault::free_ignores_isolation)) return seen;  // D8r: before ad53f92eb416
  const bool rereads = profile_ == Profile::linux_6_12 && !faults_.on(Fault::free_type_read_unlocked);
  if (rereads || isolated_pageblocks_ > 0 || seen == MigrateType::isolate) return std::nullopt;
  return seen;
}

// Q4 (free_pcppages_bulk, drain_pages): every entry, oldest first, to the buddy allocator:
// linux-6.12 as its pageblock's label now; linux-6.1 as the type cached when it was freed,
// unless some pageblock is ISOLATE (then the label now; 51bb1a4093cc). The kernel frees
// `batch` pages when a free reaches `high`; here the whole lists go (S2).
void Allocator::pcp_flush(uint8_t cpu) {
  CpuContext& c = cpu_ctx_[cpu];
  ++pcp_flushes_;
  const bool cached = faults_.on(Fault::pcp_flush_uses_cached_type) ||
                      (profile_ == Profile::linux_6_1 && isolated_pageblocks_ == 0);
  for (const PcpEntry& e : c.pcp) free_owned(e.pfn, e.order, cached ? std::optional(e.cached) : std::nullopt);
  pcp_pages_ -= c.pcp_pages;
  c.pcp.clear();
  c.pcp_pages = 0;
}

void Allocator::drain_all_pcp() {  // drain_all_pages
  for (uint8_t cpu = 0; cpu < kMaxCpus; ++cpu)
    if (!cpu_ctx_[cpu].pcp.empty()) pcp_flush(cpu);
}

// Q3 (rmqueue_pcplist): the newest entry of the CPU's list for (t, order). A MOVABLE request
// that may not use CMA skips the lists (rmqueue: the MOVABLE list can hold CMA pages).
std::optional<uint64_t> Allocator::take_pcp(MigrateType t, uint8_t order, bool allow_cma) {
  if (!pcp_on() || order > kPcpMaxOrder || (t == MigrateType::movable && !allow_cma)) return std::nullopt;
  CpuContext& c = cpu_ctx_[cpu_];
  auto matches = [&](const PcpEntry& e) { return e.list == t && e.order == order; };
  std::optional<size_t> at;
  if (faults_.on(Fault::pcp_takes_oldest)) {  // a FIFO list: the oldest entry
    for (size_t i = 0; i < c.pcp.size() && !at; ++i)
      if (matches(c.pcp[i])) at = i;
  } else {
    for (size_t i = c.pcp.size(); i-- > 0 && !at;)
      if (matches(c.pcp[i])) at = i;
  }
  if (!at) return std::nullopt;
  const uint64_t pfn = c.pcp[*at].pfn;
  c.pcp.erase(c.pcp.begin() + static_cast<std::ptrdiff_t>(*at));
  c.pcp_pages -= uint64_t{1} << order;
  pcp_pages_ -= uint64_t{1} << order;
  return pfn;
}

// alloc_pages for a block of `order` of type t: the CPU's page list first (Q3), else the
// buddy allocator (B4; the kernel refills the list with `batch` blocks there, which Q3 leaves
// out). When B4 finds nothing while some CPU's lists hold pages, every CPU's lists are drained
// and B4 runs again (__alloc_pages_direct_reclaim's drain_all_pages).
std::optional<uint64_t> Allocator::alloc_pages(MigrateType t, uint8_t order, bool allow_cma, Outcome& out) {
  if (auto p = take_pcp(t, order, allow_cma)) return p;
  auto got = take_block(t, order, allow_cma, out);
  if (got || pcp_pages_ == 0) return got;
  drain_all_pcp();
  return take_block(t, order, allow_cma, out);
}

// X3 under Q1: a frame on a page list is not free for test_pages_isolated (not PageBuddy).
bool Allocator::pcp_in_range(uint64_t s, uint64_t e) const {
  for (const CpuContext& c : cpu_ctx_)
    for (const PcpEntry& en : c.pcp)
      if (en.pfn < e && en.pfn + (uint64_t{1} << en.order) > s) return true;
  return false;
}

bool Allocator::on_pcp(uint64_t pfn) const { return pcp_in_range(pfn, pfn + 1); }

void Allocator::free_block_entries(std::vector<uint64_t>& into) const {
  for (int t = 0; t < kTypes; ++t)
    for (uint8_t o = 0; o <= machine_.max_order; ++o)
      for (uint32_t f = heads_[t][o]; f != kNil; f = next_[f])
        into.push_back(free_block_entry(static_cast<MigrateType>(t), Order{o}, Pfn{f}));
  std::sort(into.begin(), into.end());
}

void Allocator::pcp_entries(std::vector<uint64_t>& into) const {
  for (uint8_t cpu = 0; cpu < kMaxCpus; ++cpu)
    for (const PcpEntry& e : cpu_ctx_[cpu].pcp) into.push_back(pcp_entry(cpu, e.list, Order{e.order}, Pfn{e.pfn}));
}

// Boot (memmap_init, then __free_pages_core with FPI_TO_TAIL): `count` frames from `pfn`
// as maximal aligned blocks, each on its head's label's list; a block that would cover
// pageblocks B2 keeps apart is freed as its halves.
void Allocator::free_range(uint64_t pfn, uint64_t count, bool to_tail) {
  const uint64_t end = pfn + count;
  while (pfn < end) {
    // The largest order up to max_order that pfn is aligned to and that fits before end.
    const int aligned = std::countr_zero(pfn), fits = std::bit_width(end - pfn) - 1;  // countr_zero(0) = 64
    const uint8_t order = static_cast<uint8_t>(std::min(std::min(aligned, fits), int{machine_.max_order}));
    add_free_split(pfn, order, to_tail);
    pfn += uint64_t{1} << order;
  }
}

void Allocator::add_free_split(uint64_t pfn, uint8_t order, bool to_tail) {
  if (order > machine_.pageblock_order) {
    const uint64_t half = uint64_t{1} << (order - 1);
    // Both halves must themselves be whole, and their heads mergeable.
    auto homogeneous = [&](auto&& self, uint64_t p, uint8_t o) -> bool {
      if (o <= machine_.pageblock_order) return true;
      const uint64_t h = uint64_t{1} << (o - 1);
      return self(self, p, o - 1) && self(self, p + h, o - 1) && mergeable(p, p + h);
    };
    // Pageblocks that all carry one label are mergeable pair by pair (equal labels always
    // are): then the walk above would find the block homogeneous, and is skipped.
    const uint64_t first_pb = pageblock_of(pfn), pageblocks = uint64_t{1} << (order - machine_.pageblock_order);
    const bool one_label = std::memcmp(&labels_[first_pb], &labels_[first_pb + 1], pageblocks - 1) == 0;
    if (!one_label && !homogeneous(homogeneous, pfn, order)) {
      add_free_split(pfn, order - 1, to_tail);
      add_free_split(pfn + half, order - 1, to_tail);
      return;
    }
  }
  free_block(pfn, order, block_type(pfn), to_tail);
}

std::optional<uint64_t> Allocator::containing_free_block(uint64_t pfn, uint8_t& order) const {
  for (uint8_t j = 0; j <= machine_.max_order; ++j) {
    const uint64_t head = pfn & ~((uint64_t{1} << j) - 1);
    if (free_order_[head] == j) {
      order = j;
      return head;
    }
  }
  return std::nullopt;
}

// expand(): the free block (head, have), already off its list, is split until the block
// (want_pfn, want) is left; the other halves go on `halves`' lists: the list the block was
// taken from (B10, B11), or the requester's after a claim.
void Allocator::split_take(uint64_t head, uint8_t have, uint64_t want_pfn, uint8_t want, MigrateType halves) {
  while (have > want) {
    --have;
    const uint64_t half = uint64_t{1} << have;
    if (want_pfn >= head + half) {
      list_add(head, have, halves);
      head += half;
    } else {
      list_add(head + half, have, halves);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Order of attempts (B4) and claiming (B5, B8, B9)

std::optional<Allocator::Found> Allocator::smallest_in(MigrateType t, uint8_t order) const {
  const int ti = type_index(t);
  if (t == MigrateType::cma && faults_.on(Fault::cma_fallback_largest_first)) {
    // D11: before v4.1 CMA was a plain fallback, searched from the largest order down.
    for (int j = machine_.max_order; j >= order; --j)
      if (heads_[ti][j] != kNil) return Found{heads_[ti][j], static_cast<uint8_t>(j), 0};
    return std::nullopt;
  }
  for (uint8_t j = order; j <= machine_.max_order; ++j)
    if (heads_[ti][j] != kNil) return Found{heads_[ti][j], j, 0};
  return std::nullopt;
}

// can_steal_fallback(): a fallback block is worth claiming when it is large (order >= B/2)
// or the request is unmovable or reclaimable.
bool Allocator::worth_claiming(MigrateType t, uint8_t found_order) const {
  return found_order >= machine_.pageblock_order / 2 || t == MigrateType::unmovable ||
         t == MigrateType::reclaimable;
}

// find_suitable_fallback(): the first of t's fallback types with a block of order c.
std::optional<MigrateType> Allocator::fallback_type_at(MigrateType t, uint8_t c) const {
  for (MigrateType f : fallbacks(t))
    if (heads_[type_index(f)][c] != kNil) return f;
  return std::nullopt;
}

// Sets pageblock pb's label. With `move` (move_freepages_block) the free blocks that start
// in it go to the tail of t's lists; linux-6.12 always moves them (B11).
void Allocator::relabel(uint64_t pb, MigrateType t, bool move) {
  if (labels_[pb] == MigrateType::isolate) {
    --isolated_pageblocks_;
    if (!merged_over_isolated_.empty()) std::erase(merged_over_isolated_, pb);
  }
  if (t == MigrateType::isolate) ++isolated_pageblocks_;
  labels_[pb] = t;
  if (!move && profile_ != Profile::linux_6_12) return;
  move_pageblock_lists(pb, t);
}

// move_freepages_block: every free block that starts in pageblock pb goes to the tail of
// t's lists, in ascending order.
void Allocator::move_pageblock_lists(uint64_t pb, MigrateType t) {
  const uint64_t first = pb << machine_.pageblock_order;
  const uint64_t last = first + raw(machine_.pageblock_pages());
  for (uint64_t f = first; f < last;) {
    if (free_order_[f] != kNotHead) {
      const uint8_t o = free_order_[f];
      if (list_type_[f] != t) move_to_list(f, t);
      f += uint64_t{1} << o;
    } else {
      ++f;
    }
  }
}

// B5's count (steal_suitable_fallback, try_to_steal_block): the pageblock of the found
// block is claimed for t when its free frames plus its frames alike t are at least half of
// it. Alike: for a MOVABLE request the frames of movable blocks; for an UNMOVABLE or
// RECLAIMABLE one, in a MOVABLE pageblock, the frames that are not free and not movable.
bool Allocator::claim_count_passes(MigrateType t, uint64_t pb) const {
  if (faults_.on(Fault::claim_always)) return true;
  const uint8_t B = machine_.pageblock_order;
  const uint64_t first = pb << B, size = uint64_t{1} << B;
  uint64_t free = 0, movable = 0;
  for (uint64_t p = first; p < first + size; ++p) {
    const uint32_t s = owner_[p];
    if (!s)
      ++free;
    else if (rec(s).family == Family::block && rec(s).kind == Kind::movable)
      ++movable;
  }
  uint64_t alike = 0;
  if (t == MigrateType::movable)
    alike = movable;
  else if (labels_[pb] == MigrateType::movable)
    alike = size - free - movable;
  return 2 * (free + alike) >= size;
}

// B8 (linux-6.1: __rmqueue_fallback, steal_suitable_fallback, then __rmqueue's retry of
// step 2). The found block: the largest order with a block of a fallback type, the first
// such type, its list head; but a MOVABLE request that would not claim (B5) searches from
// the smallest order instead. Of order >= B: its pageblocks are relabelled t, and it goes to
// t's list. Worth claiming: every free block of its pageblock goes to t's lists, and the
// pageblock is relabelled when B5's count passes. Otherwise it alone goes to t's list.
// Then step 2 again: the smallest block on t's lists, one of those just moved.
std::optional<uint64_t> Allocator::fallback_6_1(MigrateType t, uint8_t k, Outcome& out) {
  const uint8_t B = machine_.pageblock_order;
  std::optional<uint8_t> c;
  if (!faults_.on(Fault::fallback_smallest_first))
    for (int j = machine_.max_order; j >= k && !c; --j)
      if (fallback_type_at(t, static_cast<uint8_t>(j))) c = static_cast<uint8_t>(j);
  bool can_steal = c && worth_claiming(t, *c);
  if (!c || (!can_steal && t == MigrateType::movable && *c > k)) {  // find_smallest
    c.reset();
    for (uint8_t j = k; j <= machine_.max_order && !c; ++j)
      if (fallback_type_at(t, j)) c = j;
    if (!c) return std::nullopt;
    can_steal = worth_claiming(t, *c);
  }
  const MigrateType f = *fallback_type_at(t, *c);
  const uint64_t h = heads_[type_index(f)][*c];
  out.fallback_heads.push_back(Pfn{h});
  if (*c >= B) {
    for (uint64_t pb = h >> B; pb < (h >> B) + (uint64_t{1} << (*c - B)); ++pb) relabel(pb, t, false);
    move_to_list(h, t);
  } else if (!can_steal) {
    move_to_list(h, t);
  } else {
    const uint64_t pb = h >> B;
    const bool claim = claim_count_passes(t, pb);
    move_pageblock_lists(pb, t);
    if (claim) relabel(pb, t, false);
  }
  const auto got = smallest_in(t, k);
  assert(got && "B8: step 2 retried finds a moved block");
  list_del(got->pfn);
  split_take(got->pfn, got->order, got->pfn, k, t);
  return got->pfn;
}

// B9 (linux-6.12.118: __rmqueue_claim, try_to_steal_block, __rmqueue_steal). Claim: from
// max_order down to k, the head of the order-c list of the first fallback type that has one;
// a MOVABLE request stops claiming below B/2. Of order >= B: relabel its pageblocks t and
// take it. Smaller: when B5's count passes, relabel its pageblock t (its free blocks go to
// t's lists) and take the smallest block of t; else try the next order down. Steal, if no
// claim: the smallest order with a fallback block, the first type's head, taken without a
// relabel; its halves stay on that type's lists.
std::optional<uint64_t> Allocator::fallback_6_12(MigrateType t, uint8_t k, Outcome& out) {
  const uint8_t B = machine_.pageblock_order;
  const bool ascending = faults_.on(Fault::fallback_smallest_first);
  for (int i = 0; i <= machine_.max_order - k; ++i) {
    const uint8_t c = static_cast<uint8_t>(ascending ? k + i : machine_.max_order - i);
    const auto f = fallback_type_at(t, c);
    if (!f) continue;
    if (!worth_claiming(t, c)) break;
    const uint64_t h = heads_[type_index(*f)][c];
    out.fallback_heads.push_back(Pfn{h});
    if (c >= B) {
      list_del(h);
      for (uint64_t pb = h >> B; pb < (h >> B) + (uint64_t{1} << (c - B)); ++pb) relabel(pb, t, true);
      split_take(h, c, h, k, t);
      return h;
    }
    if (claim_count_passes(t, h >> B)) {
      relabel(h >> B, t, true);
      const auto got = smallest_in(t, k);
      assert(got && "B9: the claimed pageblock has a block for the request");
      list_del(got->pfn);
      split_take(got->pfn, got->order, got->pfn, k, t);
      return got->pfn;
    }
  }
  for (uint8_t c = k; c <= machine_.max_order; ++c) {
    const auto f = fallback_type_at(t, c);
    if (!f) continue;
    const uint64_t h = heads_[type_index(*f)][c];
    out.fallback_heads.push_back(Pfn{h});
    list_del(h);
    split_take(h, c, h, k, *f);
    return h;
  }
  return std::nullopt;
}

// __rmqueue() as rule B4 states it: steps 1-3 take the smallest block of a list; step 4 is
// the profile's fallback (B8, B9). `allow_cma` is false for the migration target of a
// long-term pin (P2, memalloc_pin_save).
std::optional<uint64_t> Allocator::take_block(MigrateType t, uint8_t order, bool allow_cma, Outcome& out) {
  const bool movable = t == MigrateType::movable;
  auto take = [&](const Found& f, MigrateType list) {
    list_del(f.pfn);
    split_take(f.pfn, f.order, f.pfn, order, list);
    return f.pfn;
  };
  // Step 1 (v5.8): prefer CMA when more than half of the usable free frames are CMA.
  if (movable && allow_cma && !faults_.on(Fault::no_cma_preference) &&
      2 * free_cma_pages_ > free_pages_ - free_isolated_pages_)
    if (auto f = smallest_in(MigrateType::cma, order)) return take(*f, MigrateType::cma);
  if (auto f = smallest_in(t, order)) return take(*f, t);
  if (movable && allow_cma)
    if (auto f = smallest_in(MigrateType::cma, order)) return take(*f, MigrateType::cma);
  auto got = profile_ == Profile::linux_6_12 ? fallback_6_12(t, order, out) : fallback_6_1(t, order, out);
  if (got) return got;
  if (t != MigrateType::movable && faults_.on(Fault::unmovable_in_cma))
    if (auto f = smallest_in(MigrateType::cma, order)) return take(*f, MigrateType::cma);
  return std::nullopt;
}

// B7's claim, for `alloc ... at=PFN` inside the free block (head, have) on another non-CMA
// type's list: what step 4 does with a block it found there. Returns the list the halves of
// the block go to.
MigrateType Allocator::claim_at(MigrateType t, uint64_t head, uint8_t have) {
  const uint8_t B = machine_.pageblock_order;
  const MigrateType list = list_type_[head];
  const uint64_t first_pb = head >> B;
  if (profile_ == Profile::linux_6_12) {  // B9: the claim pass, else a steal
    if (!worth_claiming(t, have)) return list;
    if (have >= B) {
      for (uint64_t pb = first_pb; pb < first_pb + (uint64_t{1} << (have - B)); ++pb) relabel(pb, t, true);
      return t;
    }
    if (!claim_count_passes(t, first_pb)) return list;
    relabel(first_pb, t, true);
    return t;
  }
  // B8: the block ends on t's list whatever happens to the label.
  if (have >= B) {
    for (uint64_t pb = first_pb; pb < first_pb + (uint64_t{1} << (have - B)); ++pb) relabel(pb, t, false);
    move_to_list(head, t);
  } else if (!worth_claiming(t, have)) {
    move_to_list(head, t);
  } else {
    const bool claim = claim_count_passes(t, first_pb);
    move_pageblock_lists(first_pb, t);
    if (claim) relabel(first_pb, t, false);
  }
  return t;
}

// ---------------------------------------------------------------------------------------
// Allocation records

uint32_t Allocator::new_allocation(HandleId h, Family fam, Pfn pfn, PageCount count) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    allocs_.emplace_back();
    slot = static_cast<uint32_t>(allocs_.size());
  }
  Allocation& r = rec(slot);
  r = Allocation{};
  r.family = fam;
  r.pfn = pfn;
  r.count = count;
  r.handle = h;
  r.live = true;
  r.serial = ++alloc_serial_;
  if (raw(h) >= slot_of_handle_.size()) slot_of_handle_.resize(raw(h) + 1, 0);
  slot_of_handle_[raw(h)] = slot;
  touch(h);
  return slot;
}

void Allocator::assign_frames(uint32_t slot) {
  const Allocation& r = rec(slot);
  const uint64_t first = raw(r.pfn), n = raw(r.count);
  for (uint64_t i = 0; i < n; ++i) {
    owner_[first + i] = slot;
    content_[first + i] = content_value(r.serial, i);  // rule M5
  }
  allocated_pages_ += n;
}

void Allocator::drop_allocation(uint32_t slot, std::optional<MigrateType> seen) {
  Allocation& r = rec(slot);
  const uint64_t first = raw(r.pfn), n = raw(r.count);
  for (uint64_t i = 0; i < n; ++i) owner_[first + i] = 0;
  allocated_pages_ -= n;
  r.live = false;
  slot_of_handle_[raw(r.handle)] = 0;
  free_slots_.push_back(slot);
  if (r.family == Family::block)
    free_unref(first, r.order.value, seen);
  else
    free_pages(first, n);
}

bool Allocator::is_live(HandleId h) const { return slot_of(h) != 0; }
bool Allocator::off_lru(HandleId h) const { return slot_of(h) != 0 && rec(slot_of(h)).off_lru; }

const Allocation* Allocator::allocation(HandleId h) const {
  const uint32_t s = slot_of(h);
  return s ? &rec(s) : nullptr;
}

// ---------------------------------------------------------------------------------------
// Operations on blocks (M3, B7, F1, P1-P3, G1)

void Allocator::alloc(HandleId h, Kind kind, Order order, std::optional<Pfn> at, Outcome& out) {
  out.clear();
  touched().clear();
  if (order.value > machine_.max_order) {  // M3: alloc_pages() refuses order > MAX_ORDER
    out.reason = FailReason::invalid_request;
    return;
  }
  const MigrateType t = migratetype_of(kind);
  uint64_t pfn;
  if (at) {
    // B7: exactly the block at PFN, if it is free, aligned and legal for the kind.
    pfn = raw(*at);
    const uint64_t size = raw(order.pages());
    uint8_t have = 0;
    std::optional<uint64_t> head;
    if (pfn % size == 0 && pfn < machine_.pages && size <= machine_.pages - pfn)
      head = containing_free_block(pfn, have);
    if (!head || have < order.value) {
      out.reason = FailReason::no_free_block;
      return;
    }
    const MigrateType list = list_type_[*head];
    const bool cma_ok = kind == Kind::movable || faults_.on(Fault::unmovable_in_cma);
    if (list == MigrateType::isolate || (list == MigrateType::cma && !cma_ok)) {
      out.reason = FailReason::no_free_block;
      return;
    }
    const MigrateType halves = list != t && list != MigrateType::cma ? claim_at(t, *head, have) : list;
    list_del(*head);
    split_take(*head, have, pfn, order.value, halves);
  } else {
    auto got = alloc_pages(t, order.value, true, out);
    if (!got) {
      out.reason = FailReason::no_free_block;
      return;
    }
    pfn = *got;
  }
  const uint32_t slot = new_allocation(h, Family::block, Pfn{pfn}, order.pages());
  rec(slot).kind = kind;
  rec(slot).order = order;
  assign_frames(slot);
  out.ok = true;
  out.pfn = Pfn{pfn};
}

void Allocator::free(HandleId h, Outcome& out) {
  out.clear();
  touched().clear();
  const uint32_t slot = slot_of(h);
  if (rec(slot).pins) {  // F1: a pinned block cannot be freed
    out.reason = FailReason::pinned;
    return;
  }
  out.ok = true;
  out.pfn = rec(slot).pfn;
  // F2: the type is read before any lock (free_unref_page_prepare; __free_pages_ok above order
  // 3). Until the free takes zone->lock the page has no reference left: a migration cannot
  // take it, and test_pages_isolated does not find it free (X2, X3: busy).
  const MigrateType seen = block_type(raw(rec(slot).pfn));
  if (hook_) {
    rec(slot).freeing = true;
    step(StepInfo{.label = StepLabel::read_type, .type_read = seen});
  }
  drop_batch_refs(slot);  // E4: the batches' references go with the block
  drop_allocation(slot, seen);
}

// Moves one block (G1). The target is an allocation of the same order through B4 as a
// request of type `request`: MOVABLE for migration (alloc_migration_target), UNMOVABLE and
// never in CMA for a long-term pin (P2). Contents move with it (M5).
bool Allocator::move_block(uint32_t slot, MigrateType request, bool allow_cma_target, Outcome& out) {
  Allocation& r = rec(slot);
  // E3: a batch's reference is one the migration does not expect (folio_migrate_mapping's
  // refcount check): migrate_pages gives up on the page. Callers drain first.
  if (r.batch_refs) return false;
  auto target = alloc_pages(request, r.order.value, allow_cma_target, out);
  if (!target) return false;
  const uint64_t from = raw(r.pfn), to = *target, n = raw(r.count);
  for (uint64_t i = 0; i < n; ++i) {
    owner_[to + i] = slot;
    content_[to + i] = content_[from + i];
    owner_[from + i] = 0;
  }
  if (faults_.on(Fault::migration_drops_content)) content_[to + n - 1] = 0;
  r.pfn = Pfn{to};
  out.moves.push_back(Move{r.handle, Pfn{from}, Pfn{to}});
  touch(r.handle);
  ++moves_total_;
  free_unref(from, r.order.value);
  return true;
}

void Allocator::pin(HandleId h, bool longterm, Outcome& out) {
  out.clear();
  touched().clear();
  const uint32_t slot = slot_of(h);
  Allocation& r = rec(slot);
  const MigrateType where = block_type(raw(r.pfn));
  if (longterm && (where == MigrateType::cma || where == MigrateType::isolate) && r.off_lru) {
    // P2 (__gup_longterm_locked): another CPU's migration has the page off the LRU, so
    // collect_longterm_unpinnable_pages cannot isolate it and the pin retries (-EAGAIN)
    // until the page is back: migrated, or put back. D15 pinned it where it was.
    if (faults_.on(Fault::pin_ok_if_nothing_collected)) {
      ++r.pins;
      r.longterm = true;
      out.ok = true;
      out.pfn = r.pfn;
      return;
    }
    if (hook_) hook_->wait_for_lru(h);
    return pin(h, longterm, out);  // the retry looks at the page anew
  }
  if (longterm && (where == MigrateType::cma || where == MigrateType::isolate)) {
    // P2 (check_and_migrate_movable_pages): a page in CMA is migrated out before the pin;
    // so is one in a pageblock a concurrent alloc_contig_range isolated
    // (is_longterm_pinnable_page refuses MIGRATE_ISOLATE too).
    if (faults_.on(Fault::longterm_pin_before_migrate)) {
      ++r.pins;  // the pin makes the migration fail; the page stays pinned in CMA
      r.longterm = true;
      out.ok = true;
      out.pfn = r.pfn;
      return;
    }
    // E3 (collect_longterm_unpinnable_pages, 98c6d259319e): a small page whose count is not
    // the expected one drains this CPU's batches, then every CPU's. A pinned small page's
    // count never is (GUP_PIN_COUNTING_BIAS), so both run. D16: before, only a page off the
    // LRU (a pending lru_add) made it drain, and only once, every CPU.
    // (The local drain is part of the drain of every CPU here.)
    if (r.order.value == 0) {
      if (faults_.on(Fault::pin_drains_only_off_lru)) {
        bool pending_lru_add = false;
        for (const CpuContext& ctx : cpu_ctx_)
          for (uint32_t e : ctx.batches[static_cast<size_t>(Batch::lru)]) pending_lru_add = pending_lru_add || e == slot;
        if (pending_lru_add) drain_all_cpus();
      } else {
        drain_all_cpus();
      }
    }
    // D27: before v5.13 a failed migration still pinned the page where it was.
    const bool pin_anyway = faults_.on(Fault::longterm_pins_after_failed_migration);
    if (!faults_.on(Fault::longterm_stays_in_cma)) {
      if (r.pins && !pin_anyway) {
        out.reason = FailReason::pinned;
        return;
      }
      // P2 (migrate_longterm_unpinnable_pages): the target is a GFP_USER allocation under
      // memalloc_pin_save(), an UNMOVABLE request that never takes CMA. D13: the target
      // was a movable request that could land in CMA again.
      const bool d13 = faults_.on(Fault::longterm_target_in_cma);
      if (!r.pins && !move_block(slot, d13 ? MigrateType::movable : MigrateType::unmovable, d13, out) && !pin_anyway) {
        out.reason = FailReason::no_target;
        return;
      }
    }
  }
  ++r.pins;
  if (longterm) r.longterm = true;
  out.ok = true;
  out.pfn = r.pfn;
}

void Allocator::unpin(HandleId h, Outcome& out) {
  out.clear();
  touched().clear();
  Allocation& r = rec(slot_of(h));
  if (!r.pins) {
    out.reason = FailReason::not_pinned;
    return;
  }
  if (--r.pins == 0) r.longterm = false;
  out.ok = true;
  out.pfn = r.pfn;
}

void Allocator::migrate(HandleId h, Outcome& out) {
  out.clear();
  touched().clear();
  // E3 (do_pages_move): move_pages runs under lru_cache_disable, which drains every CPU's
  // batches first, whatever the page turns out to be. (The disable itself lasts only this
  // one step, where no other CPU can add to a batch.)
  drain_all_cpus();
  const uint32_t slot = slot_of(h);
  Allocation& r = rec(slot);
  if (r.kind != Kind::movable) {
    out.reason = FailReason::not_movable;
    return;
  }
  if (r.pins) {
    out.reason = FailReason::pinned;
    return;
  }
  if (r.off_lru) {  // isolate_lru_page fails: another CPU is migrating it (only concurrently)
    out.reason = FailReason::busy;
    return;
  }
  if (!move_block(slot, MigrateType::movable, true, out)) {
    out.reason = FailReason::no_target;
    return;
  }
  out.ok = true;
  out.pfn = rec(slot).pfn;
}

// ---------------------------------------------------------------------------------------
// alloc_contig_range (X1..X5)

// X1 (has_unmovable_pages via set_migratetype_isolate, MIGRATE_MOVABLE caller): a
// pageblock cannot be isolated for alloc_contig when any of its frames is in a CMA
// pageblock or belongs to an unmovable or reclaimable block or a contiguous allocation.
// The whole pageblock counts, also the first and last one of the range
// (isolate_single_pageblock passes the whole block). Movable blocks, pinned or not, pass:
// they are LRU pages here and fail later, in migration (X2).
bool Allocator::pageblock_unmovable(uint64_t pb, bool edge) const {
  // D25: before v6.0 isolate_single_pageblock isolated a CMA edge pageblock for any caller.
  const bool cma_passes = faults_.on(Fault::contig_ignores_cma) || (edge && faults_.on(Fault::contig_isolates_cma_edges));
  if (labels_[pb] == MigrateType::cma && !cma_passes) return true;
  const uint64_t end = (pb + 1) << machine_.pageblock_order;
  for (uint64_t f = pb << machine_.pageblock_order; f < end;) {
    const uint32_t slot = owner_[f];
    if (!slot) {
      ++f;
      continue;
    }
    const Allocation& r = rec(slot);
    if (r.family != Family::block || r.kind != Kind::movable) return true;
    f = raw(r.pfn) + raw(r.count);
  }
  return false;
}

// X1 (start_isolate_page_range): the pageblocks are isolated in the kernel's order, the
// first, the last, then the middle ones ascending; free blocks that cross the isolation
// edge are split at it (v5.19+). A pageblock that is ISOLATE already cannot be isolated
// (set_migratetype_isolate; only a fault or a concurrent caller leaves one), nor, in normal
// mode, one that pageblock_unmovable() refuses; then the pageblocks isolated before it are
// undone to the caller's type (X5) and nothing else changes. Returns whether every pageblock
// was isolated; `isolated()` lists them.
bool Allocator::isolate(uint64_t first_pb, uint64_t last_pb, Mode mode) {
  isolated().clear();
  refused_isolated_pb_.reset();
  refused_unmovable_pb_.reset();
  auto refused = [&](uint64_t pb) {
    if (labels_[pb] == MigrateType::isolate && !faults_.on(Fault::isolate_ignores_isolated)) {
      refused_isolated_pb_ = pb;  // a concurrent isolator owns it (docs/concurrency.md, W2)
      return true;
    }
    if (mode == Mode::normal && pageblock_unmovable(pb, pb == first_pb || pb == last_pb)) {
      refused_unmovable_pb_ = pb;
      return true;
    }
    return false;
  };
  auto in_order = [&](auto&& visit) {
    if (!visit(first_pb)) return false;
    if (last_pb != first_pb && !visit(last_pb)) return false;
    for (uint64_t pb = first_pb + 1; pb < last_pb; ++pb)
      if (!visit(pb)) return false;
    return true;
  };
  const bool all = in_order([&](uint64_t pb) {
    if (refused(pb)) return false;
    isolated().push_back(pb);
    return true;
  });
  if (isolated().empty()) return false;  // the first pageblock refused: nothing changed
  // isolate_single_pageblock splits the free block across the outer edge of the first
  // pageblock, and of the last one when it was isolated.
  const uint8_t B = machine_.pageblock_order;
  const bool last_isolated = std::find(isolated().begin(), isolated().end(), last_pb) != isolated().end();
  const uint64_t lo = first_pb << B, hi = (last_pb + 1) << B;
  auto crossing = [&](uint64_t edge) -> std::optional<std::pair<uint64_t, uint8_t>> {
    if (edge == 0 || edge >= machine_.pages) return std::nullopt;
    uint8_t order = 0;
    auto head = containing_free_block(edge - 1, order);
    if (!head || *head + (uint64_t{1} << order) <= edge) return std::nullopt;
    return std::pair{*head, order};
  };
  if (profile_ == Profile::linux_6_12) {
    // move_freepages_block_isolate -> split_large_buddy: each pageblock is ISOLATE first, then
    // a free block larger than a pageblock that holds it (across the range's edge, or
    // starting in it) is freed one pageblock at a time, each as its own label.
    for (uint64_t pb : isolated()) relabel(pb, MigrateType::isolate);
    auto split_large = [&](uint64_t head, uint8_t order) {
      list_del(head);
      const uint64_t size = uint64_t{1} << order;
      if (faults_.on(Fault::edge_split_counts_free_twice) && (head < lo || head + size > hi)) free_pages_ += size;  // D26
      for (uint64_t p = head; p < head + (uint64_t{1} << order); p += uint64_t{1} << B) free_block(p, B, block_type(p));
    };
    for (uint64_t pb : isolated()) {  // find_large_buddy: the block holding the pageblock's first frame
      uint8_t order = 0;
      const auto head = containing_free_block(pb << B, order);
      if (head && order > B) split_large(*head, order);
    }
  } else {
    // start_isolate_page_range: the first pageblock is isolated and the free block across
    // the range's lower edge split (split_free_page), then the same for the last pageblock
    // and the upper edge (also when it is the first, skip_isolation), then the middle ones.
    // The pieces are the largest aligned blocks on either side of the edge, freed ascending,
    // each as its pageblock's label (__free_one_page): a piece whose first pageblock is not
    // isolated yet may merge again across the upper edge (B2).
    auto split_free_page = [&](uint64_t edge) {
      const auto e = crossing(edge);
      if (!e) return;
      const auto [head, order] = *e;
      const uint64_t end = head + (uint64_t{1} << order);
      list_del(head);
      if (faults_.on(Fault::edge_split_counts_free_twice)) free_pages_ += end - head;  // D26: before v5.19
      for (uint64_t p = head; p < end;) {
        const uint64_t limit = p < edge ? edge : end;
        const uint8_t k = static_cast<uint8_t>(std::min<int>(std::countr_zero(p), std::bit_width(limit - p) - 1));
        free_block(p, k, block_type(p));
        p += uint64_t{1} << k;
      }
    };
    relabel(first_pb, MigrateType::isolate);
    split_free_page(lo);
    if (last_isolated) {
      if (last_pb != first_pb) relabel(last_pb, MigrateType::isolate);
      split_free_page(hi);
    }
    for (uint64_t pb : isolated())
      if (pb != first_pb && pb != last_pb) relabel(pb, MigrateType::isolate);
  }
  if (!all) {
    unisolate(first_pb, last_pb, mode);
    return false;
  }
  return true;
}

// X5 (undo_isolate_page_range -> unset_migratetype_isolate(page, migratetype)): every
// isolated pageblock gets the *caller's* type, CMA for cma_alloc and MOVABLE for
// alloc_contig, whatever it was before, one pageblock at a time, ascending, each under
// zone->lock:
//  - the buddy path: when its first frame heads a free block of order >= B whose buddy is a
//    free block of the same order in a pageblock that is not ISOLATE, the block is taken
//    off, the label set, and the block freed again as the caller's type (__isolate_free_page,
//    __putback_isolated_page), merging as B2 lets it;
//  - otherwise linux-6.12 (move_freepages_block_isolate) frees a free block larger than a
//    pageblock that holds the pageblock's first frame one pageblock at a time, each as its
//    own label (split_large_buddy), and else moves the pageblock's free blocks to the
//    caller's list; linux-6.1 (move_freepages_block) moves the free blocks that start in it,
//    whole, and never splits.
// Sequentially the pageblocks undone are all of one operation's range, and the end state is
// every free frame of the range merged again (B2), also with the halves split at the edges.
// With another caller's isolation next to them (W6) the paths differ: linux-6.12's buddy path
// and linux-6.1's move can leave a free block across that caller's ISOLATE pageblock (W7).
void Allocator::unisolate(uint64_t first_pb, uint64_t last_pb, Mode mode) {
  const uint8_t B = machine_.pageblock_order;
  const MigrateType back = mode == Mode::cma ? MigrateType::cma : MigrateType::movable;
  std::vector<uint64_t>& pbs = isolated();
  std::sort(pbs.begin(), pbs.end());
  last_merged_over_.reset();
  for (uint64_t pb : pbs) {
    if (labels_[pb] != MigrateType::isolate) continue;
    const uint64_t first = pb << B;
    const uint8_t o = free_order_[first];
    if (o != kNotHead && o >= B && o < machine_.max_order) {
      const uint64_t buddy = first ^ (uint64_t{1} << o);
      if (buddy + (uint64_t{1} << o) <= machine_.pages && free_order_[buddy] == o &&
          labels_[buddy >> B] != MigrateType::isolate) {
        list_del(first);
        relabel(pb, back, false);
        free_block(first, o, back);
        // W7: __free_one_page checks only the buddy's label, so the merged block may cover
        // a pageblock another caller still holds ISOLATE.
        uint8_t merged = 0;
        const uint64_t head = *containing_free_block(first, merged);
        for (uint64_t q = head >> B; q < (head + (uint64_t{1} << merged)) >> B; ++q)
          if (labels_[q] == MigrateType::isolate && std::find(merged_over_isolated_.begin(), merged_over_isolated_.end(), q) == merged_over_isolated_.end()) {
            merged_over_isolated_.push_back(q);
            if (!last_merged_over_) last_merged_over_ = q;
          }
        continue;
      }
    }
    if (profile_ == Profile::linux_6_12) {
      uint8_t order = 0;
      const auto head = containing_free_block(first, order);
      if (head && order > B) {
        list_del(*head);
        relabel(pb, back, false);
        for (uint64_t p = *head; p < *head + (uint64_t{1} << order); p += uint64_t{1} << B) free_block(p, B, block_type(p));
        continue;
      }
    }
    relabel(pb, back, true);
  }
  pbs.clear();
  (void)first_pb;
  (void)last_pb;
}

// X4: the frames [s, e), all free, become allocated; the rest of their free blocks stays free.
void Allocator::take_range(uint64_t s, uint64_t e) {
  for (uint64_t f = s; f < e;) {
    uint8_t order = 0;
    auto head = containing_free_block(f, order);
    assert(head);
    list_del(*head);
    auto put = [&](auto&& self, uint64_t p, uint8_t o) -> void {
      const uint64_t end = p + (uint64_t{1} << o);
      if (p >= s && end <= e) return;  // taken
      if (end <= s || p >= e) {
        list_add(p, o, block_type(p));
        return;
      }
      self(self, p, o - 1);
      self(self, p + (uint64_t{1} << (o - 1)), o - 1);
    };
    put(put, *head, order);
    f = *head + (uint64_t{1} << order);
  }
}

Allocator::RangeResult Allocator::alloc_contig_range(uint64_t s, uint64_t e, Mode mode, Outcome& out,
                                                     const Taker& taker) {
  ++out.windows_tried;
  const uint64_t first_pb = pageblock_of(s), last_pb = pageblock_of(e - 1);
  // D19 emulation: remember whether a free block crossed the isolation edge inside [s, e).
  bool edge_block = false;
  if (faults_.on(Fault::isolation_no_edge_split)) {
    const uint8_t B = machine_.pageblock_order;
    const uint64_t lo = first_pb << B, hi = (last_pb + 1) << B;
    for (uint64_t frame : {s, e - 1}) {
      uint8_t order = 0;
      if (auto head = containing_free_block(frame, order)) {
        const uint64_t end = *head + (uint64_t{1} << order);
        if (*head < lo || end > hi) edge_block = true;
      }
    }
  }
  const bool all_isolated = isolate(first_pb, last_pb, mode);  // X1
  step(StepInfo{.label = StepLabel::isolate, .first_pb = first_pb, .last_pb = last_pb, .isolated = all_isolated,
                .refused_isolated_pb = refused_isolated_pb_, .refused_unmovable_pb = refused_unmovable_pb_});
  if (!all_isolated) return RangeResult::busy_unmovable;
  RangeResult result = RangeResult::ok;
  // X7 (linux-6.12: isolate_single_pageblock): a movable block larger than a pageblock
  // across the isolated range's first or last edge fails the isolation; linux-6.1 migrates
  // it, here with X2's moves (S5).
  if (profile_ == Profile::linux_6_12) {
    const uint8_t B = machine_.pageblock_order;
    for (uint64_t edge : {first_pb << B, (last_pb + 1) << B}) {
      if (edge == 0 || edge >= machine_.pages) continue;
      const uint32_t below = owner_[edge - 1], above = owner_[edge];
      if (below && below == above && rec(below).family == Family::block && rec(below).kind == Kind::movable)
        result = RangeResult::busy_unmovable;
    }
  }
  // E3 (__alloc_contig_migrate_range, once isolation succeeded): lru_cache_disable drains
  // every CPU's batches and makes every later add flush at once, until lru_cache_enable.
  // D17: before v5.13 the batches were drained once (migrate_prep) and stayed enabled.
  const bool migrating = result == RangeResult::ok;
  // Q4 (alloc_contig_range: drain_all_pages right after start_isolate_page_range): the page
  // lists' frames go to the buddy allocator, those of the isolated pageblocks onto ISOLATE's
  // list. One step with the LRU drain that follows.
  // __drain_all_pages: each CPU that has pages, under that CPU's pcp lock, which the step
  // boundary finds still held: a free there fails its trylock (D21's window).
  if (migrating && !faults_.on(Fault::contig_skips_pcp_drain))
    for (uint8_t c = 0; c < kMaxCpus; ++c) {
      if (cpu_ctx_[c].pcp.empty()) continue;
      cpu_ctx_[c].pcp_lock_holder = cpu_;
      pcp_flush(c);
      step(StepInfo{.label = StepLabel::pcp_drain, .drained_cpu = c});
      cpu_ctx_[c].pcp_lock_holder.reset();
    }
  const bool disable = migrating && !faults_.on(Fault::drain_once_no_lru_disable);
  if (disable)
    lru_cache_disable();
  else if (migrating)
    drain_all_cpus();
  if (migrating) step(StepLabel::drain);
  // X2: migrate every movable block that intersects [s, e), in ascending frame order.
  for (uint64_t f = s; f < e && result == RangeResult::ok;) {
    const uint32_t slot = owner_[f];
    if (!slot) {
      ++f;
      continue;
    }
    const Allocation& r = rec(slot);
    const uint64_t end = raw(r.pfn) + raw(r.count);
    if (r.family == Family::block && r.kind == Kind::movable) {
      // A pinned page, or one a batch still holds (E3: only without lru_cache_disable), fails
      // migration with -EAGAIN until the retries run out: busy.
      if (r.pins || r.batch_refs || r.freeing) {
        result = RangeResult::busy_pinned;
        step(StepInfo{.label = StepLabel::migrate, .busy_block = r.handle});
        break;
      }
      // isolate_migratepages_range takes the page off the LRU (isolate_lru_page, the LRU lock),
      // then migrate_pages moves it. Between the two, other CPUs see it off the LRU (D15).
      const HandleId h = r.handle;
      const uint64_t serial = r.serial;
      rec(slot).off_lru = true;
      step(StepLabel::lru_isolate);
      if (slot_of(h) != slot || rec(slot).serial != serial) {  // freed meanwhile: nothing to move
        step(StepLabel::migrate);
        f = end;
        continue;
      }
      rec(slot).off_lru = false;
      if (rec(slot).pins || rec(slot).batch_refs || rec(slot).freeing) {  // a reference taken or dropped meanwhile: put back
        result = RangeResult::busy_pinned;
        step(StepInfo{.label = StepLabel::migrate, .busy_block = h});
        break;
      }
      const bool moved = move_block(slot, MigrateType::movable, true, out);
      // Each migrate_pages call takes and drops zone->lock.
      step(StepInfo{.label = StepLabel::migrate, .moved = moved ? std::optional(out.moves.back()) : std::nullopt});
      if (!moved) {
        result = RangeResult::no_memory;
        break;
      }
    }
    f = end;
  }
  // D17b: the error path that forgot lru_cache_enable.
  const bool enable = disable && !(result == RangeResult::no_memory && faults_.on(Fault::lru_enable_missed_on_error));
  if (enable) lru_cache_enable();
  // X3 (test_pages_isolated): every frame of [s, e) must now be free.
  bool on_pcp = false;
  if (result == RangeResult::ok) {
    for (uint64_t f = s; f < e; ++f)
      if (owner_[f]) {
        result = RangeResult::busy_unmovable;
        break;
      }
    if (pcp_pages_ && pcp_in_range(s, e)) {
      result = RangeResult::busy_unmovable;
      on_pcp = true;
    }
    if (edge_block) result = RangeResult::busy_unmovable;
    // X3 starts at the head of the free block holding the range's first frame (outer_start)
    // and wants every pageblock from there ISOLATE (test_pages_isolated). Sequentially that
    // block lies in the isolated range (X1 split the one across its edge); a block merged
    // over another caller's isolated pageblock (W7) begins in a pageblock that is not.
    uint8_t order = 0;
    const auto outer = owner_[s] ? std::nullopt : containing_free_block(s, order);
    if (result == RangeResult::ok && outer)
      for (uint64_t p = *outer; p < e; p += raw(machine_.pageblock_pages()))
        if (labels_[p >> machine_.pageblock_order] != MigrateType::isolate) {
          result = RangeResult::busy_unmovable;
          break;
        }
  }
  if (result == RangeResult::ok) {
    take_range(s, e);
    // The allocation exists from the moment its frames leave the free lists (I1 holds after
    // every step, docs/concurrency.md).
    const uint32_t slot = new_allocation(taker.handle, taker.family, Pfn{s}, PageCount{e - s});
    rec(slot).area = taker.area;
    rec(slot).align = taker.align;
    rec(slot).handed_out = false;
    assign_frames(slot);
  }
  step(StepInfo{.label = StepLabel::take, .busy_on_pcp = on_pcp ? std::optional(s) : std::nullopt});
  // X5: every isolated pageblock gets the caller's type.
  if (result != RangeResult::ok && faults_.on(Fault::leave_isolated_on_failure))
    if (!isolated().empty()) isolated().erase(isolated().begin());  // the first pageblock stays ISOLATE
  unisolate(first_pb, last_pb, mode);
  step(StepInfo{.label = StepLabel::undo, .first_pb = first_pb, .last_pb = last_pb, .merged_over_isolated = last_merged_over_});
  return result;
}

// ---------------------------------------------------------------------------------------
// CMA areas (A1..A6, R1, R2)

void Allocator::set_bits(Area& a, uint64_t first, uint64_t n, bool value) {
  for (uint64_t i = first; i < first + n && i < a.nbits; ++i) {
    const uint64_t bit = uint64_t{1} << (i & 63);
    const bool was = a.bits[i >> 6] & bit;
    if (value && !was) {
      a.bits[i >> 6] |= bit;
      ++a.set_bits;
    } else if (!value && was) {
      a.bits[i >> 6] &= ~bit;
      --a.set_bits;
    }
  }
}

AreaStats Allocator::area_stats(AreaId id) const {
  const Area& a = areas_[raw(id)];
  const uint8_t o = a.decl.order_per_bit;
  AreaStats s;
  s.used = faults_.on(Fault::used_counts_bits) ? a.set_bits : a.set_bits << o;
  uint64_t run = longest_clear_run(a.bits, a.nbits);
  if (faults_.on(Fault::maxchunk_off_by_one) && run) --run;
  s.maxchunk = faults_.on(Fault::maxchunk_counts_bits) ? run : run << o;
  return s;
}

void Allocator::cma_alloc(HandleId h, AreaId area_id, PageCount count_in, Order align, Outcome& out) {
  out.clear();
  touched().clear();
  Area& a = areas_[raw(area_id)];
  uint64_t count = raw(count_in);
  if (faults_.on(Fault::count_truncated_32bit)) count = static_cast<uint32_t>(count);  // D3
  const uint8_t o = a.decl.order_per_bit;
  // A1: count 0, or more chunks than the bitmap has, fails at once.
  const uint64_t nbits = pages_to_bits(count, o);
  if (count == 0 || nbits > a.nbits) {
    out.reason = FailReason::invalid_request;
    return;
  }
  // A2 (cma_bitmap_aligned_mask/offset): alignment of the physical frame.
  const uint64_t base = raw(a.decl.base);
  const Alignment al = cma_alignment(base, o, align.value, faults_.on(Fault::aligned_offset_to_next),
                                     faults_.on(Fault::align_to_area_base), faults_.on(Fault::aligned_mask_shifts_order));
  const uint64_t mask = al.mask;
  uint64_t start = 0;
  bool saw_busy = false;
  while (true) {
    auto j = find_zero_area(a.bits, a.nbits, start, nbits, al);  // A3
    if (!j) {
      step(StepInfo{.label = StepLabel::reserve, .area = area_id});
      out.reason = saw_busy ? FailReason::busy : FailReason::no_window;
      return;
    }
    if (faults_.on(Fault::bitmap_set_after_unlock)) step(StepInfo{.label = StepLabel::search, .area = area_id});  // the stale result is used
    set_bits(a, *j, nbits, true);  // A4
    // The bits are this call's reservation from here on: cma->lock is dropped (cma_alloc).
    step(StepInfo{.label = StepLabel::reserve, .area = area_id, .first_bit = *j, .nbits = nbits});
    const bool mutex = hook_ && !faults_.on(Fault::no_cma_mutex);  // D18 without it
    if (mutex) {
      hook_->lock_cma_mutex();
      step(StepLabel::mutex);
    }
    const uint64_t pfn = base + (*j << o);
    const RangeResult r =
        alloc_contig_range(pfn, pfn + count, Mode::cma, out, Taker{h, Family::cma, area_id, align});
    // cma_mutex is dropped whatever alloc_contig_range returned; with the fault only on success,
    // so a failed window keeps it: the next window's mutex_lock waits for itself, and the
    // last window returns with it held.
    if (mutex && (r == RangeResult::ok || !faults_.on(Fault::cma_mutex_kept_on_failure))) hook_->unlock_cma_mutex();
    if (r == RangeResult::ok) {
      rec(slot_of(h)).handed_out = true;
      out.ok = true;
      out.pfn = Pfn{pfn};
      return;
    }
    if (!(r != RangeResult::no_memory && faults_.on(Fault::keep_bits_after_busy)))
      set_bits(a, *j, nbits, false);
    step(StepInfo{.label = StepLabel::unreserve, .area = area_id, .first_bit = *j, .nbits = nbits});
    if (r == RangeResult::no_memory) {  // -ENOMEM ends the call
      out.reason = FailReason::no_memory;
      return;
    }
    saw_busy = true;
    if (r == RangeResult::busy_pinned) ++out.busy_pinned;
    if (r == RangeResult::busy_unmovable) ++out.busy_unmovable;
    start = faults_.on(Fault::busy_resume_past_window) ? *j + nbits : *j + mask + 1;
  }
}

void Allocator::cma_release(HandleId h, Outcome& out) {
  out.clear();
  touched().clear();
  const uint32_t slot = slot_of(h);
  Allocation& r = rec(slot);
  Area& a = areas_[raw(r.area)];
  const uint8_t o = a.decl.order_per_bit;
  const uint64_t first_bit = (raw(r.pfn) - raw(a.decl.base)) >> o;
  uint64_t nbits = pages_to_bits(raw(r.count), o);
  if (faults_.on(Fault::release_one_chunk_short) && nbits) --nbits;
  out.ok = true;
  out.pfn = r.pfn;
  // R1: pages are freed before the bitmap is cleared (cma_release, since v3.17).
  const AreaId area = r.area;
  const uint64_t all_bits = pages_to_bits(raw(r.count), o);
  const StepInfo freed{.label = StepLabel::free_range, .area = area, .first_bit = first_bit, .nbits = all_bits};
  const StepInfo cleared{.label = StepLabel::clear_bits, .area = area, .first_bit = first_bit, .nbits = all_bits};
  if (faults_.on(Fault::release_clears_bits_first)) {
    set_bits(a, first_bit, nbits, false);
    step(cleared);
    drop_allocation(slot);
    step(freed);
    return;
  }
  drop_allocation(slot);
  step(freed);
  set_bits(a, first_bit, nbits, false);
  step(cleared);
}

void Allocator::cma_release_raw(AreaId area, Pfn pfn, PageCount count_in, Outcome& out) {
  out.clear();
  touched().clear();
  uint64_t count = raw(count_in);
  if (faults_.on(Fault::count_truncated_32bit)) count = static_cast<uint32_t>(count);  // D3
  // R2: only exactly one live allocation of this area, as cma_alloc handed it out.
  const uint64_t p = raw(pfn);
  const uint32_t slot = p < machine_.pages ? owner_[p] : 0;
  if (!slot || rec(slot).family != Family::cma || rec(slot).area != area || rec(slot).pfn != pfn ||
      raw(rec(slot).count) != count || !rec(slot).handed_out) {
    out.reason = FailReason::not_handed_out;
    return;
  }
  const HandleId h = rec(slot).handle;
  cma_release(h, out);
  out.ended = h;
}

// ---------------------------------------------------------------------------------------
// alloc_contig_pages (C1..C3)

void Allocator::alloc_contig(HandleId h, PageCount count_in, Outcome& out) {
  out.clear();
  touched().clear();
  const uint64_t count = raw(count_in);
  if (count == 0) {
    out.reason = FailReason::invalid_request;
    return;
  }
  out.reason = FailReason::no_window;
  for (uint64_t s = 0; count <= machine_.pages && s <= machine_.pages - count; s += count) {
    const RangeResult r = alloc_contig_range(s, s + count, Mode::normal, out, Taker{h, Family::contig});
    if (r == RangeResult::ok) {
      rec(slot_of(h)).handed_out = true;
      out.ok = true;
      out.pfn = Pfn{s};
      out.reason = FailReason::none;
      return;
    }
    out.reason = r == RangeResult::no_memory ? FailReason::no_memory : FailReason::busy;
    if (r == RangeResult::busy_pinned) ++out.busy_pinned;
    if (r == RangeResult::busy_unmovable) ++out.busy_unmovable;
    if (faults_.on(Fault::contig_stops_at_first_failure)) return;
  }
}

void Allocator::free_contig(HandleId h, Outcome& out) {
  out.clear();
  touched().clear();
  const uint32_t slot = slot_of(h);
  out.ok = true;
  out.pfn = rec(slot).pfn;
  drop_allocation(slot);
}

// ---------------------------------------------------------------------------------------
// Transient references: the per-CPU folio batches (E1-E4)

// E1 (folio_add_lru, folio_activate, mlock_folio): the batch takes a reference. It is moved
// at once, dropping it, for a large folio (a block of order > 0: folio_may_be_lru_cached),
// while lru_cache_disable is in force, or when the add fills it (PAGEVEC_SIZE).
void Allocator::touch_block(HandleId h, Batch batch, Outcome& out) {
  out.clear();
  touched().clear();
  const uint32_t slot = slot_of(h);
  Allocation& r = rec(slot);
  if (r.kind != Kind::movable) {  // kernel pages are not on the LRU
    out.reason = FailReason::not_movable;
    return;
  }
  out.ok = true;
  out.pfn = r.pfn;
  if (r.order.value > 0 || lru_disabled_ > 0) return;
  auto& b = cpu_ctx_[cpu_].batches[static_cast<size_t>(batch)];
  b.push_back(slot);
  ++r.batch_refs;
  if (b.size() >= batch_capacity(profile_)) drain_batch(b);
}

// E2 (lru_add_drain): this CPU's batches drop their references.
void Allocator::lru_drain(Outcome& out) {
  out.clear();
  touched().clear();
  drain_cpu(cpu_);
  out.ok = true;
}

// Q4 (drain_all_pages): every CPU's page lists go to the buddy allocator.
void Allocator::pcp_drain(Outcome& out) {
  out.clear();
  touched().clear();
  drain_all_pcp();
  out.ok = true;
}

void Allocator::drain_batch(std::vector<uint32_t>& batch) {
  for (uint32_t slot : batch) --rec(slot).batch_refs;
  batch.clear();
}

void Allocator::drain_cpu(uint8_t cpu) {
  for (auto& b : cpu_ctx_[cpu].batches) drain_batch(b);
}

void Allocator::drain_all_cpus() {  // lru_add_drain_all
  for (uint8_t c = 0; c < kMaxCpus; ++c) drain_cpu(c);
}

// E4: a freed block leaves the batches (the kernel frees such a page when the batch lets
// go of it; the model frees it at once, docs/semantics.md S7).
void Allocator::drop_batch_refs(uint32_t slot) {
  if (!rec(slot).batch_refs) return;
  for (auto& ctx : cpu_ctx_)
    for (auto& b : ctx.batches) std::erase(b, slot);
  rec(slot).batch_refs = 0;
}

void Allocator::lru_cache_disable() {
  ++lru_disabled_;
  drain_all_cpus();
}

void Allocator::lru_cache_enable() { --lru_disabled_; }

uint64_t Allocator::batched() const {
  uint64_t n = 0;
  for (const auto& ctx : cpu_ctx_)
    for (const auto& b : ctx.batches) n += b.size();
  return n;
}

void Allocator::batch_entries(std::vector<uint64_t>& into) const {
  into.clear();
  for (uint8_t c = 0; c < kMaxCpus; ++c)
    for (Batch k : kBatches)
      for (uint32_t slot : cpu_ctx_[c].batches[static_cast<size_t>(k)]) into.push_back(batch_entry(c, k, rec(slot).handle));
  std::sort(into.begin(), into.end());
}

// ---------------------------------------------------------------------------------------
// Dispatch: one handler per operation of trace/ops.h

template <class O>
void Allocator::execute(const O&, Outcome&) {
  static_assert(kNotHandled<O>, "impl/ does not implement this operation: add its Allocator::execute specialisation");
}
template <>
void Allocator::execute(const Alloc& o, Outcome& out) { alloc(o.id, o.kind, o.order, o.at, out); }
template <>
void Allocator::execute(const Free& o, Outcome& out) { free(o.id, out); }
template <>
void Allocator::execute(const Pin& o, Outcome& out) { pin(o.id, o.longterm, out); }
template <>
void Allocator::execute(const Unpin& o, Outcome& out) { unpin(o.id, out); }
template <>
void Allocator::execute(const Migrate& o, Outcome& out) { migrate(o.id, out); }
template <>
void Allocator::execute(const CmaAlloc& o, Outcome& out) { cma_alloc(o.id, o.area, o.count, o.align, out); }
template <>
void Allocator::execute(const CmaRelease& o, Outcome& out) { cma_release(o.id, out); }
template <>
void Allocator::execute(const CmaReleaseRaw& o, Outcome& out) { cma_release_raw(o.area, o.pfn, o.count, out); }
template <>
void Allocator::execute(const AllocContig& o, Outcome& out) { alloc_contig(o.id, o.count, out); }
template <>
void Allocator::execute(const FreeContig& o, Outcome& out) { free_contig(o.id, out); }
template <>
void Allocator::execute(const Touch& o, Outcome& out) { touch_block(o.id, o.batch, out); }
template <>
void Allocator::execute(const LruDrain&, Outcome& out) { lru_drain(out); }
template <>
void Allocator::execute(const PcpDrain&, Outcome& out) { pcp_drain(out); }

void Allocator::apply(const Op& op, Outcome& out) {
  out.clear();
  touched().clear();
  cpu_ctx_[cpu_].pcp_bypassed = false;
  std::visit([&](const auto& o) { execute(o, out); }, op);
}

}  // namespace cmacheck::impl
