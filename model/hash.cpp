// The canonical hash of the model's state, for `cmacheck explore` (docs/explore.md): two
// states that behave alike under every future operation and every check hash equal. The
// model keeps what the rules talk about: the kernel profile, labels, which frames each
// allocation holds and with which content, pins, bitmaps, every CPU's batches (E1) as a
// sorted list of (CPU, batch, block's first frame) with the lru_cache_disable count, and
// under linux-6.1 the list each free frame is on (B10: a free block's list can differ from
// its label; its pieces keep it when it is split). Left out: handle numbers (allocations
// are named by their first frame), the order of the references within a batch (a batch is
// only ever moved or drained whole, and E4 takes a freed block out wherever it is), the
// lists recorded for allocated frames (stale: freeing a frame sets its list, B12), the
// serial numbers of rule M5 (a frame's content is hashed relative to its allocation's
// first frame's stamp), and the derived free-block tables, which self_check() re-derives
// from the frames and labels.
#include <algorithm>

#include "model/model.h"

namespace cmacheck::model {

namespace {

// 64-bit multiply-xorshift mixing of a word stream (the finaliser of MurmurHash3 per word).
struct Mix {
  uint64_t h = 0x243f6a8885a308d3ull;
  void add(uint64_t v) {
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
  }
};

}  // namespace

uint64_t Model::state_hash() const {
  Mix m;
  m.add(static_cast<uint64_t>(machine_.profile));
  for (uint64_t pb = 0; pb < memory_.pageblocks(); pb += 8) {  // eight labels a word
    uint64_t word = 0;
    for (uint64_t i = pb; i < std::min(memory_.pageblocks(), pb + 8); ++i)
      word = word << 8 | static_cast<uint8_t>(memory_.pageblock_label(i));
    m.add(word);
  }
  // Frames in order: free, or the rank of their allocation (in order of first frame) and
  // their content relative to the stamp of the allocation's first frame.
  uint32_t ranks = 0;
  uint32_t last_owner = kNoOwner, last_rank = 0;
  uint64_t stamp = 0;
  for (uint64_t p = 0; p < machine_.pages; ++p) {
    const uint32_t h = owner_[p];
    if (h == kNoOwner) {  // free: its list under linux-6.1 (B10), else 0
      m.add(memory_.own_lists() ? 1 + static_cast<uint64_t>(memory_.list_at(Pfn{p})) : 0);
      continue;
    }
    if (h != last_owner) {  // allocations are contiguous: a new owner is a new allocation
      const Allocation* a = live(HandleId{h});
      last_owner = h;
      last_rank = ++ranks;
      if (a) {
        stamp = content_[raw(a->pfn)] >> 32 << 32;
        m.add(uint64_t{1} << 63 | raw(a->pfn));
        m.add(raw(a->count));
        m.add(static_cast<uint64_t>(a->family) | uint64_t{static_cast<uint8_t>(a->kind)} << 8 |
              uint64_t{a->order.value} << 16 | uint64_t{a->longterm} << 24 | uint64_t{raw(a->area)} << 32);
        m.add(a->pins);
      }
    }
    m.add(uint64_t{last_rank} << 40 ^ (content_[p] - stamp));
  }
  for (const Area& a : areas_) {
    uint64_t word = 0;
    for (size_t j = 0; j < a.bits.size(); ++j) {
      word = word << 1 | a.bits[j];
      if (j % 64 == 63) m.add(word), word = 0;
    }
    m.add(word);
    m.add(a.bits.size());
  }
  // The batches (E1): each reference named by its block's first frame, sorted.
  thread_local std::vector<uint64_t> refs;
  refs.clear();
  for (uint8_t c = 0; c < kCpus; ++c)
    for (Batch b : kBatches)
      for (HandleId h : batches_[c][static_cast<size_t>(b)]) {
        const Allocation* a = live(h);
        refs.push_back(uint64_t{c} << 56 | uint64_t{static_cast<uint8_t>(b)} << 48 | (a ? raw(a->pfn) : 0xffffffffffffull));
      }
  std::sort(refs.begin(), refs.end());
  m.add(uint64_t{lru_disabled_} << 32 | refs.size());
  for (uint64_t e : refs) m.add(e);
  // The page lists (Q2), CPU by CPU, oldest first: their order decides later allocations.
  for (uint8_t c = 0; c < kCpus; ++c) {
    m.add(pcp_[c].size());
    for (const PcpEntry& e : pcp_[c]) {
      m.add(pcp_entry(c, e.list, e.order, e.head));
      if (profile() == Profile::linux_6_1) m.add(static_cast<uint64_t>(e.read));  // Q4 frees it as this type
    }
  }
  return m.h;
}

}  // namespace cmacheck::model
