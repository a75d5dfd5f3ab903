#include "model/free_memory.h"

#include <algorithm>
#include <cassert>

namespace cmacheck::model {

namespace {

// B2: at pageblock_order and above, two pageblocks' free frames merge when their labels are
// equal, or when neither is CMA or ISOLATE (MOVABLE, UNMOVABLE and RECLAIMABLE mix freely).
bool mergeable(MigrateType a, MigrateType b) {
  auto fenced = [](MigrateType t) { return t == MigrateType::cma || t == MigrateType::isolate; };
  return a == b || (!fenced(a) && !fenced(b));
}

}  // namespace

FreeMemory::FreeMemory(uint64_t pages, uint8_t pageblock_order, uint8_t max_order)
    : pages_(pages), pageblock_order_(pageblock_order), max_order_(max_order) {
  assert(max_order < 64 && pageblock_order <= max_order);
  labels_.assign(pages >> pageblock_order, MigrateType::movable);
  free_frames_in_.resize(max_order + 1);
  whole_.resize(max_order + 1);
  for (uint8_t k = 0; k <= max_order; ++k) {
    const uint64_t n = k >= 63 ? 1 : (pages + (uint64_t{1} << k) - 1) >> k;
    free_frames_in_[k].assign(n, 0);
    whole_[k].assign(n, 0);
  }
  for (uint64_t p = 0; p < pages; ++p) free_frames_in_[0][p] = 1;
  derive_all();
}

FrameRange FreeMemory::pageblock_range(uint64_t pb) const {
  return {Pfn{pb << pageblock_order_}, PageCount{uint64_t{1} << pageblock_order_}};
}

// ---------------------------------------------------------------------------------------
// The definition of a free block (B1, B2)

// Block (k, i) is frames [i << k, (i + 1) << k): inside the machine, every frame free, whole.
bool FreeMemory::all_free_and_whole(uint8_t k, uint64_t i) const {
  return i < blocks_at(k) && inside(k, i) && free_frames_in_[k][i] == (uint64_t{1} << k) && whole_[k][i];
}

// ... and not merged further: its parent is not all free and whole, or it is max_order.
bool FreeMemory::free_block_at(uint8_t k, uint64_t i) const {
  return all_free_and_whole(k, i) && (k == max_order_ || !all_free_and_whole(k + 1, i >> 1));
}

// Wholeness (B2) of block (k, i) from its halves' wholeness and head labels.
bool FreeMemory::derive_whole(uint8_t k, uint64_t i) const {
  if (!inside(k, i)) return false;
  if (k <= pageblock_order_) return true;  // inside one pageblock: labels never matter
  const uint64_t lo = 2 * i, hi = 2 * i + 1;
  return whole_[k - 1][lo] && whole_[k - 1][hi] && mergeable(head_label(k - 1, lo), head_label(k - 1, hi));
}

bool FreeMemory::is_free_block(Pfn head, Order order) const {
  const uint8_t k = order.value;
  if (k > max_order_ || raw(head) % raw(order.pages()) != 0) return false;
  return free_block_at(k, raw(head) >> k);
}

std::optional<FreeBlock> FreeMemory::containing_free_block(Pfn p) const {
  if (raw(p) >= pages_ || !is_free(p)) return std::nullopt;
  for (uint8_t k = 0; k <= max_order_; ++k)
    if (free_block_at(k, raw(p) >> k)) return FreeBlock{Pfn{(raw(p) >> k) << k}, Order{k}};
  assert(false && "a free frame lies in no free block");
  return std::nullopt;
}

std::optional<FreeBlock> FreeMemory::lowest_free_block(MigrateType t, Order order) const {
  const uint8_t k = order.value;
  if (k > max_order_ || !has_free_block(t, order)) return std::nullopt;
  for (uint64_t i = 0; i < blocks_at(k); ++i)
    if (free_block_at(k, i) && head_label(k, i) == t) return FreeBlock{Pfn{i << k}, order};
  return std::nullopt;
}

std::vector<FreeBlock> FreeMemory::free_blocks() const {
  std::vector<FreeBlock> out;
  for (uint64_t p = 0; p < pages_;) {
    if (auto b = containing_free_block(Pfn{p})) {
      out.push_back(*b);
      p = raw(b->head) + raw(b->order.pages());
    } else {
      ++p;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Changes, and the local re-derivation they need

// Whether block (k, i) is a free block depends on block (k, i) itself and on its parent.
// A change to frames or labels of [lo, hi) can therefore alter the status of the blocks
// that intersect [lo, hi) and of their buddies (whose parent intersects it), and no other.
template <class Fn>
void FreeMemory::for_each_affected(uint64_t lo, uint64_t hi, Fn&& fn) const {
  for (uint8_t k = 0; k <= max_order_; ++k) {
    const uint64_t first = (lo >> k) & ~uint64_t{1};
    const uint64_t last = std::min(((hi - 1) >> k) | 1, blocks_at(k) - 1);
    for (uint64_t i = first; i <= last; ++i) fn(k, i);
  }
}

template <class Change>
void FreeMemory::change(uint64_t lo, uint64_t hi, Change&& change) {
  for_each_affected(lo, hi, [&](uint8_t k, uint64_t i) {
    if (free_block_at(k, i)) --blocks_of_[index(head_label(k, i))][k];
  });
  change();
  for_each_affected(lo, hi, [&](uint8_t k, uint64_t i) {
    if (free_block_at(k, i)) ++blocks_of_[index(head_label(k, i))][k];
  });
}

void FreeMemory::set_free(FrameRange r, bool free) {
  if (raw(r.count) == 0) return;
  const uint64_t lo = raw(r.first), hi = raw(r.end());
  assert(hi <= pages_);
  change(lo, hi, [&] {
    for (uint64_t p = lo; p < hi; ++p) {
      assert(is_free(Pfn{p}) != free && "a frame freed or allocated twice");
      auto step = [free](auto& n) { free ? ++n : --n; };
      for (uint8_t k = 0; k <= max_order_; ++k) step(free_frames_in_[k][p >> k]);
      step(free_by_label_[index(label(Pfn{p}))]);
      step(free_total_);
    }
  });
}

void FreeMemory::relabel(uint64_t pb, MigrateType t) {
  const MigrateType old = labels_[pb];
  if (old == t) return;
  const FrameRange r = pageblock_range(pb);
  change(raw(r.first), raw(r.end()), [&] {
    const uint64_t free = free_frames_in_pageblock(pb);
    free_by_label_[index(old)] -= free;
    free_by_label_[index(t)] += free;
    labels_[pb] = t;
    for (uint8_t k = pageblock_order_ + 1; k <= max_order_; ++k) {
      const uint64_t i = pb >> (k - pageblock_order_);
      if (i < blocks_at(k)) whole_[k][i] = derive_whole(k, i);
    }
  });
}

// Everything derived, from the free frames (free_frames_in_[0]) and the labels alone.
void FreeMemory::derive_all() {
  for (uint8_t k = 1; k <= max_order_; ++k)
    for (uint64_t i = 0; i < blocks_at(k); ++i) {
      const uint64_t lo = 2 * i, hi = 2 * i + 1;
      free_frames_in_[k][i] = free_frames_in_[k - 1][lo] + (hi < blocks_at(k - 1) ? free_frames_in_[k - 1][hi] : 0);
    }
  for (uint8_t k = 0; k <= max_order_; ++k)
    for (uint64_t i = 0; i < blocks_at(k); ++i) whole_[k][i] = derive_whole(k, i);
  for (auto& per_type : blocks_of_) per_type.fill(0);
  for (uint8_t k = 0; k <= max_order_; ++k)
    for (uint64_t i = 0; i < blocks_at(k); ++i)
      if (free_block_at(k, i)) ++blocks_of_[index(head_label(k, i))][k];
  free_by_label_.fill(0);
  free_total_ = 0;
  for (uint64_t p = 0; p < pages_; ++p)
    if (is_free(Pfn{p})) {
      ++free_by_label_[index(label(Pfn{p}))];
      ++free_total_;
    }
}

std::optional<std::string> FreeMemory::self_check() const {
  FreeMemory fresh = *this;
  fresh.derive_all();
  if (fresh.free_frames_in_ != free_frames_in_) return "free-frame counts per block drifted";
  if (fresh.whole_ != whole_) return "wholeness (B2) drifted";
  if (fresh.free_by_label_ != free_by_label_ || fresh.free_total_ != free_total_) return "free counts drifted";
  for (int t = 0; t < kTypes; ++t)
    for (uint8_t k = 0; k <= max_order_; ++k)
      if (fresh.blocks_of_[t][k] != blocks_of_[t][k])
        return std::string("number of free ") + name(static_cast<MigrateType>(t)) + " blocks of order " +
               std::to_string(k) + " drifted: " + std::to_string(blocks_of_[t][k]) + ", from scratch " +
               std::to_string(fresh.blocks_of_[t][k]);
  return std::nullopt;
}

}  // namespace cmacheck::model
