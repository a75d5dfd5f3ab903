// The canonical hash of the allocator's state, for `cmacheck explore` (docs/explore.md):
// two states that behave alike under every future operation and every check hash equal.
// What is left out is what no operation and no check can tell apart: handle numbers and
// allocation slots (allocations are named by their first frame), the serial numbers of
// rule M5 (a frame's content is hashed relative to its allocation's stamp), the alignment
// a cma allocation asked for (checked once, when it was made: allocations never move), the
// order of the references within a folio batch (E1: a batch is only ever moved or drained
// whole, and E4 takes a freed block out wherever it is), and statistics (moves_total_).
// Everything else is in: the kernel profile, labels, who owns each frame, the free lists
// *in list order* (B6: which block the next request takes depends on it), the bitmaps,
// every CPU's batches as a sorted list of (CPU, batch, block's first frame), and every
// counter (batch_refs and lru_disabled_ among them), so that a counter a fault made drift
// is not hidden, and the pageblocks X5 merged a free block over while another caller held
// them (W7), which I2 exempts. Walking each list (type, order) records which list every free block is on,
// the list_type_ of its head: under linux-6.1 that can differ from its label (B10) and
// decides where the block's pieces go and what step 4 may take. list_type_ of a frame that
// heads no free block is stale and read by nothing, so it is left out.
#include <algorithm>

#include "impl/allocator.h"

namespace cmacheck::impl {

namespace {

// 64-bit multiply-xorshift mixing of a word stream (the finaliser of MurmurHash3 per word).
struct Mix {
  uint64_t h = 0x9e3779b97f4a7c15ull;
  void add(uint64_t v) {
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
  }
};

}  // namespace

uint64_t Allocator::state_hash() const {
  Mix m;
  const uint64_t n = machine_.pages;
  m.add(static_cast<uint64_t>(profile_));
  for (size_t pb = 0; pb < labels_.size(); pb += 8) {  // eight labels a word
    uint64_t word = 0;
    for (size_t i = pb; i < std::min(labels_.size(), pb + 8); ++i) word = word << 8 | static_cast<uint8_t>(labels_[i]);
    m.add(word);
  }
  // Frames in order: free, or the rank of their allocation (in order of first frame) and
  // their content relative to its stamp. Each allocation's facts at its first frame.
  thread_local std::vector<uint32_t> rank_of_slot;
  rank_of_slot.assign(allocs_.size() + 1, 0);
  uint32_t ranks = 0;
  for (uint64_t f = 0; f < n; ++f) {
    const uint32_t slot = owner_[f];
    if (!slot) {
      m.add(0);
      continue;
    }
    const Allocation& r = rec(slot);
    if (!rank_of_slot[slot]) {
      rank_of_slot[slot] = ++ranks;
      m.add(uint64_t{1} << 63 | raw(r.pfn));
      m.add(raw(r.count));
      m.add(static_cast<uint64_t>(r.family) | uint64_t{static_cast<uint8_t>(r.kind)} << 8 |
            uint64_t{r.order.value} << 16 | uint64_t{r.longterm} << 24 | uint64_t{r.off_lru} << 25 |
            uint64_t{raw(r.area)} << 32);
      m.add(uint64_t{r.batch_refs} << 32 | r.pins);
    }
    m.add(uint64_t{rank_of_slot[slot]} << 40 ^ (content_[f] - (r.serial << 32)));
  }
  // The free lists, each in list order (B6), and their counts.
  for (int t = 0; t < kTypes; ++t)
    for (uint8_t o = 0; o <= machine_.max_order; ++o) {
      if (!nr_free_[t][o] && heads_[t][o] == kNil) continue;
      m.add(uint64_t{nr_free_[t][o]} << 32 | uint64_t(t) << 8 | o);
      for (uint32_t f = heads_[t][o]; f != kNil; f = next_[f]) m.add(f);
    }
  for (const Area& a : areas_) {
    m.add(a.set_bits);
    for (uint64_t w : a.bits) m.add(w);
  }
  m.add(free_pages_ << 32 ^ free_cma_pages_);
  m.add(free_isolated_pages_ << 32 ^ isolated_pageblocks_);
  m.add(allocated_pages_);
  // The batches (E1): each reference as (CPU, batch, first frame of its block), sorted: the
  // same multiset of references hashes the same whatever the order they were added in.
  thread_local std::vector<uint64_t> refs;
  refs.clear();
  for (uint8_t c = 0; c < kMaxCpus; ++c)
    for (Batch k : kBatches)
      for (uint32_t slot : cpu_ctx_[c].batches[static_cast<size_t>(k)])
        refs.push_back(uint64_t{c} << 56 | uint64_t{static_cast<uint8_t>(k)} << 48 | raw(rec(slot).pfn));
  std::sort(refs.begin(), refs.end());
  m.add(uint64_t{lru_disabled_} << 32 | refs.size());
  for (uint64_t e : refs) m.add(e);
  // The page lists (Q2), CPU by CPU, oldest first: their order decides later allocations.
  for (uint8_t c = 0; c < kMaxCpus; ++c) {
    m.add(cpu_ctx_[c].pcp.size());
    for (const PcpEntry& e : cpu_ctx_[c].pcp) {
      m.add(pcp_entry(c, e.list, Order{e.order}, Pfn{e.pfn}));
      if (profile_ == Profile::linux_6_1) m.add(static_cast<uint64_t>(e.cached));  // the drain frees it as this type
    }
  }
  // W7's pageblocks (concurrent runs only): I2 lets a free block over them be, so two states
  // that differ in them are checked differently. Sorted: the set, not the order found.
  if (!merged_over_isolated_.empty()) {
    thread_local std::vector<uint64_t> merged;
    merged.assign(merged_over_isolated_.begin(), merged_over_isolated_.end());
    std::sort(merged.begin(), merged.end());
    m.add(merged.size());
    for (uint64_t pb : merged) m.add(pb);
  }
  return m.h;
}

}  // namespace cmacheck::impl
