#include "model/free_memory.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <utility>

#include "trace/refill.h"

namespace cmacheck::model {

namespace {

// B2: at pageblock_order and above, two pageblocks' free frames merge when their labels are
// equal, or when neither is CMA or ISOLATE (MOVABLE, UNMOVABLE and RECLAIMABLE mix freely).
bool mergeable(MigrateType a, MigrateType b) {
  auto fenced = [](MigrateType t) { return t == MigrateType::cma || t == MigrateType::isolate; };
  return a == b || (!fenced(a) && !fenced(b));
}

}  // namespace

FreeMemory::FreeMemory(uint64_t pages, uint8_t pageblock_order, uint8_t max_order, const std::vector<FrameRange>& cma,
                       bool own_lists, Tables recycled)
    : pages_(pages),
      pageblock_order_(pageblock_order),
      max_order_(max_order),
      own_lists_(own_lists),
      labels_(std::move(recycled.labels)),
      lists_(std::move(recycled.lists)),
      allocated_(std::move(recycled.allocated)),
      whole_(std::move(recycled.whole)) {
  const uint8_t B = pageblock_order;
  assert(max_order < 64 && B <= max_order && pages % (uint64_t{1} << B) == 0);
  for (uint8_t k = 0; k <= max_order; ++k)
    order_start_[k + 1] = order_start_[k] + (k >= 63 ? 1 : (pages + (uint64_t{1} << k) - 1) >> k);
  refill(labels_, pages >> B, MigrateType::movable);
  free_by_label_[index(MigrateType::movable)] = free_total_ = pages;
  for (const FrameRange& r : cma) {
    assert(raw(r.first) % (uint64_t{1} << B) == 0 && raw(r.count) % (uint64_t{1} << B) == 0 && raw(r.end()) <= pages);
    static_assert(sizeof(MigrateType) == 1);
    std::memset(&labels_[raw(r.first) >> B], static_cast<int>(MigrateType::cma), raw(r.count) >> B);
    free_by_label_[index(MigrateType::movable)] -= raw(r.count);
    free_by_label_[index(MigrateType::cma)] += raw(r.count);
  }
  // Boot blocks are on their label's list.
  if (own_lists_) {
    refill(lists_, pages, MigrateType::movable);
    for (const FrameRange& r : cma)
      std::memset(&lists_[raw(r.first)], static_cast<int>(MigrateType::cma), raw(r.count));
  } else {
    lists_.clear();
  }
  // Every frame is free, and every pageblock MOVABLE or CMA, kinds that merge only with
  // themselves (B2). So a block is whole iff it lies inside the machine and all its
  // pageblocks carry one label: up to pageblock_order every block (the machine is a whole
  // number of pageblocks); above it all but those that leave the machine or hold a pageblock
  // boundary where the label changes, which can only be at the ends of the CMA ranges.
  // self_check() derives wholeness by the definition.
  refill(allocated_, order_start_[max_order + 1], uint32_t{0});
  refill(whole_, order_start_[max_order + 1], uint8_t{1});
  for (uint8_t k = B + 1; k <= max_order; ++k)
    if (!inside(k, blocks_at(k) - 1)) whole_[order_start_[k + 1] - 1] = 0;
  auto boundary = [&](uint64_t pb) {  // between pageblocks pb - 1 and pb
    if (pb == 0 || pb >= pageblocks() || labels_[pb - 1] == labels_[pb]) return;
    for (uint8_t k = B + 1; k <= max_order; ++k)
      if (pb % (uint64_t{1} << (k - B)) != 0) whole_[order_start_[k] + (pb >> (k - B))] = 0;
  };
  for (const FrameRange& r : cma) {
    boundary(raw(r.first) >> B);
    boundary(raw(r.end()) >> B);
  }
  // With every frame free, the free block at a frame p is the largest whole aligned block
  // that starts there; the next one starts where it ends. self_check() counts the free
  // blocks by the definition, block by block.
  for (uint64_t p = 0; p < pages;) {
    uint8_t k = static_cast<uint8_t>(std::min<int>(std::countr_zero(p), max_order));
    while (!whole(k, p >> k)) --k;
    ++blocks_of_[index(labels_[p >> B])][k];
    p += uint64_t{1} << k;
  }
}

FreeMemory::Tables FreeMemory::release_tables() && {
  return Tables{std::move(labels_), std::move(allocated_), std::move(whole_), std::move(lists_)};
}

FrameRange FreeMemory::pageblock_range(uint64_t pb) const {
  return {Pfn{pb << pageblock_order_}, PageCount{uint64_t{1} << pageblock_order_}};
}

// ---------------------------------------------------------------------------------------
// The definition of a free block (B1, B2)

// Block (k, i) is frames [i << k, (i + 1) << k): no frame allocated, and whole (which
// includes lying inside the machine).
bool FreeMemory::all_free_and_whole(uint8_t k, uint64_t i) const { return level(k).all_free_and_whole(i); }

// ... and not merged further: its parent is not all free and whole, or it is max_order.
bool FreeMemory::free_block_at(uint8_t k, uint64_t i) const {
  return all_free_and_whole(k, i) && (k == max_order_ || !all_free_and_whole(k + 1, i >> 1));
}

// Wholeness (B2) of block (k, i) from its halves' wholeness and head labels. Up to
// pageblock_order a block inside the machine is whole: it lies inside one pageblock, where
// labels never matter.
bool FreeMemory::derive_whole(uint8_t k, uint64_t i) const {
  if (!inside(k, i)) return false;
  if (k <= pageblock_order_) return true;
  const uint64_t lo = 2 * i, hi = 2 * i + 1;
  return whole(k - 1, lo) && whole(k - 1, hi) && mergeable(head_label(k - 1, lo), head_label(k - 1, hi));
}

bool FreeMemory::is_free_block(Pfn head, Order order) const {
  const uint8_t k = order.value;
  if (k > max_order_ || raw(head) % raw(order.pages()) != 0) return false;
  return free_block_at(k, raw(head) >> k);
}

// All free and whole is inherited by both halves, so the free block holding a free frame
// is the largest all-free-and-whole block around it.
std::optional<FreeBlock> FreeMemory::containing_free_block(Pfn p) const {
  if (raw(p) >= pages_ || !is_free(p)) return std::nullopt;
  uint8_t k = max_order_;
  while (!all_free_and_whole(k, raw(p) >> k)) --k;  // stops at 0: a free frame is a free block of order 0
  return FreeBlock{Pfn{(raw(p) >> k) << k}, Order{k}};
}

std::optional<FreeBlock> FreeMemory::lowest_free_block(MigrateType t, Order order) const {
  const uint8_t k = order.value;
  if (k > max_order_ || !has_free_block(t, order)) return std::nullopt;
  for (uint64_t i = 0; i < blocks_at(k); ++i)
    if (free_block_at(k, i) && list_of(k, i) == t) return FreeBlock{Pfn{i << k}, order};
  return std::nullopt;
}

// The free blocks that intersect [lo, hi), ascending: the decomposition walked frame by
// frame, each free block at once, allocated frames by the largest wholly allocated aligned
// block starting at the frame.
template <class Fn>
void FreeMemory::for_each_free_block(uint64_t lo, uint64_t hi, Fn&& fn) const {
  for (uint64_t p = lo; p < hi;) {
    if (const auto b = containing_free_block(Pfn{p})) {
      fn(*b);
      p = raw(b->head) + raw(b->order.pages());
      continue;
    }
    uint8_t k = 0;
    while (k < max_order_ && p % (uint64_t{2} << k) == 0 && allocated_in(k + 1, p >> (k + 1)) == (uint64_t{2} << k))
      ++k;
    p += uint64_t{1} << k;
  }
}

std::vector<FreeBlock> FreeMemory::free_blocks() const {
  std::vector<FreeBlock> out;
  for_each_free_block(0, pages_, [&](const FreeBlock& b) { out.push_back(b); });
  return out;
}

// ---------------------------------------------------------------------------------------
// Changes, and the local re-derivation they need

// Whether block (k, i) is a free block depends on block (k, i) itself and on its parent.
// A change to frames or labels of [lo, hi) can therefore alter the status of the blocks
// that intersect [lo, hi) and of their buddies (whose parent intersects it), and no other.
// A buddy that does not intersect [lo, hi) itself is the buddy of the block around lo or
// around hi - 1. So the free blocks among them are those of the decomposition that
// intersect [lo, hi), and, at each order below max_order, the free ones among those two
// buddies. Such a buddy is a free block when it is all free and whole and its parent, the
// block around lo (or hi - 1) one order up, is not: the blocks around a frame are all free
// and whole exactly up to the order of the free block holding it, if it is free.
// count_affected adds `sign` for each.
void FreeMemory::count_affected(uint64_t lo, uint64_t hi, int sign) {
  auto count = [&](uint8_t k, uint64_t i) {
    uint64_t& n = blocks_of_[index(list_of(k, i))][k];
    n = sign > 0 ? n + 1 : n - 1;
  };
  int order_at_lo = -1, order_at_hi = -1;  // of the free blocks holding lo and hi - 1; -1: none
  for_each_free_block(lo, hi, [&](const FreeBlock& b) {
    const uint8_t k = b.order.value;
    count(k, raw(b.head) >> k);
    if (raw(b.head) <= lo) order_at_lo = k;
    if (raw(b.head) + (uint64_t{1} << k) >= hi) order_at_hi = k;
  });
  Level blocks = level(0);
  for (uint8_t k = 0; k < max_order_; ++k, blocks = blocks.up()) {
    const uint64_t first = lo >> k, last = (hi - 1) >> k;
    if (k >= order_at_lo && first % 2 == 1 && blocks.all_free_and_whole(first - 1)) count(k, first - 1);
    if (k >= order_at_hi && last % 2 == 0 && blocks.all_free_and_whole(last + 1)) count(k, last + 1);
  }
}

template <class Change>
void FreeMemory::change(uint64_t lo, uint64_t hi, Change&& change) {
  count_affected(lo, hi, -1);
  change();
  count_affected(lo, hi, +1);
}

void FreeMemory::set_free(FrameRange r, bool free) {
  if (raw(r.count) == 0) return;
  const uint64_t lo = raw(r.first), hi = raw(r.end());
  assert(hi <= pages_);
  auto add = [free](auto& n, uint64_t v) { free ? n += v : n -= v; };
  auto take = [free](auto& n, uint64_t v) { free ? n -= v : n += v; };
  change(lo, hi, [&] {
    // Block (k, i) has the frames of [lo, hi) it holds allocated, or no longer. Order 0 is
    // the frames, each of which must change state.
    uint32_t* allocated = allocated_.data();  // the blocks of order k, in turn
    for (uint64_t p = lo; p < hi; ++p) {
      assert(allocated[p] == (free ? 1u : 0u) && "a frame freed or allocated twice");
      allocated[p] = free ? 0 : 1;
    }
    allocated += blocks_at(0);
    for (uint8_t k = 1; k <= max_order_; allocated += blocks_at(k), ++k)
      for (uint64_t i = lo >> k; i <= (hi - 1) >> k; ++i)
        take(allocated[i], std::min(hi, (i + 1) << k) - std::max(lo, i << k));
    for (uint64_t pb = lo >> pageblock_order_; pb <= (hi - 1) >> pageblock_order_; ++pb) {
      const FrameRange in_pb = pageblock_range(pb);
      add(free_by_label_[index(labels_[pb])], std::min(hi, raw(in_pb.end())) - std::max(lo, raw(in_pb.first)));
    }
    add(free_total_, hi - lo);
  });
}

void FreeMemory::set_list(FrameRange r, MigrateType t) {
  assert(own_lists_);
  const uint64_t lo = raw(r.first), hi = raw(r.end());
  const auto first = lists_.begin() + static_cast<long>(lo), last = lists_.begin() + static_cast<long>(hi);
  if (std::all_of(first, last, [t](MigrateType x) { return x == t; })) return;
  change(lo, hi, [&] { std::fill(first, last, t); });
}

void FreeMemory::relabel(uint64_t pb, MigrateType t) {
  if (labels_[pb] != t) relabel(pb, std::span<const MigrateType>(&t, 1));
}

void FreeMemory::relabel(uint64_t first_pb, std::span<const MigrateType> labels) {
  if (labels.empty()) return;
  const uint64_t last_pb = first_pb + labels.size() - 1;
  const uint8_t B = pageblock_order_;
  change(first_pb << B, (last_pb + 1) << B, [&] {
    for (uint64_t pb = first_pb; pb <= last_pb; ++pb) {
      const uint64_t free = free_frames_in_pageblock(pb);
      free_by_label_[index(labels_[pb])] -= free;
      free_by_label_[index(labels[pb - first_pb])] += free;
      isolated_pageblocks_ -= labels_[pb] == MigrateType::isolate;
      isolated_pageblocks_ += labels[pb - first_pb] == MigrateType::isolate;
      labels_[pb] = labels[pb - first_pb];
    }
    // Wholeness of the blocks above pageblock_order that hold these pageblocks, bottom up.
    for (uint8_t k = B + 1; k <= max_order_; ++k)
      for (uint64_t i = first_pb >> (k - B); i <= last_pb >> (k - B) && i < blocks_at(k); ++i)
        whole_[order_start_[k] + i] = derive_whole(k, i);
  });
}

// Allocated frames per block, bottom up from the frames (the blocks of order 0).
void FreeMemory::derive_allocated() {
  for (uint8_t k = 1; k <= max_order_; ++k)
    for (uint64_t i = 0; i < blocks_at(k); ++i) {
      const uint64_t lo = 2 * i, hi = 2 * i + 1;
      allocated_in(k, i) = allocated_in(k - 1, lo) + (hi < blocks_at(k - 1) ? allocated_in(k - 1, hi) : 0);
    }
}

// Wholeness, bottom up, and the free counts, from the allocated frames per block and the
// labels.
void FreeMemory::derive_whole_and_counts() {
  for (uint8_t k = 0; k <= max_order_; ++k)
    for (uint64_t i = 0; i < blocks_at(k); ++i) whole_[order_start_[k] + i] = derive_whole(k, i);
  free_by_label_.fill(0);
  free_total_ = 0;
  for (uint64_t pb = 0; pb < pageblocks(); ++pb) {
    const uint64_t free = free_frames_in_pageblock(pb);
    free_by_label_[index(labels_[pb])] += free;
    free_total_ += free;
  }
}

// Everything derived, from the free frames and the labels alone, by the definitions: every
// aligned block is asked whether it is a free block.
void FreeMemory::derive_all() {
  derive_allocated();
  derive_whole_and_counts();
  for (auto& per_type : blocks_of_) std::fill_n(per_type.begin(), max_order_ + 1, 0);  // (orders above are never set)
  for (uint8_t k = 0; k <= max_order_; ++k)
    for (uint64_t i = 0; i < blocks_at(k); ++i)
      if (free_block_at(k, i)) ++blocks_of_[index(list_of(k, i))][k];
}

std::optional<std::string> FreeMemory::self_check() const {
  // The copy re-derived is kept per thread, so that its tables reuse their memory: the
  // checker runs this after every operation of `cmacheck explore`.
  thread_local FreeMemory fresh(1, 0, 0, {}, false);
  fresh = *this;
  fresh.derive_all();
  if (fresh.allocated_ != allocated_) return "allocated-frame counts per block drifted";
  if (fresh.whole_ != whole_) return "wholeness (B2) drifted";
  if (static_cast<uint64_t>(std::count(labels_.begin(), labels_.end(), MigrateType::isolate)) != isolated_pageblocks_)
    return "the count of ISOLATE pageblocks drifted";
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
