#include "model/free_memory.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "model/refill.h"

namespace cmacheck::model {

namespace {

// B2: at pageblock_order and above, two pageblocks' free frames merge when their labels are
// equal, or when neither is CMA or ISOLATE (MOVABLE, UNMOVABLE and RECLAIMABLE mix freely).
bool mergeable(MigrateType a, MigrateType b) {
  auto fenced = [](MigrateType t) { return t == MigrateType::cma || t == MigrateType::isolate; };
  return a == b || (!fenced(a) && !fenced(b));
}

}  // namespace

FreeMemory::FreeMemory(uint64_t pages, uint8_t pageblock_order, uint8_t max_order, std::vector<MigrateType> labels,
                       FreeMemory* recycled)
    : pages_(pages), pageblock_order_(pageblock_order), max_order_(max_order), labels_(std::move(labels)) {
  assert(max_order < 64 && pageblock_order <= max_order);
  assert(labels_.size() == pages >> pageblock_order && pages % (uint64_t{1} << pageblock_order) == 0);
  if (recycled) {
    free_frames_in_ = std::move(recycled->free_frames_in_);
    whole_ = std::move(recycled->whole_);
  }
  free_frames_in_.resize(max_order + 1);
  whole_.resize(max_order + 1);
  for (uint8_t k = 0; k <= max_order; ++k) {
    const uint64_t n = k >= 63 ? 1 : (pages + (uint64_t{1} << k) - 1) >> k;
    // Every frame is free: block (k, i) holds as many free frames as it has inside the machine.
    refill(free_frames_in_[k], n, static_cast<uint32_t>(uint64_t{1} << k));
    free_frames_in_[k].back() = static_cast<uint32_t>(pages - ((n - 1) << k));
    refill(whole_[k], k > pageblock_order ? n : 0, uint8_t{0});
  }
  derive_whole_and_counts();
  // The free blocks of a machine with every frame free are few (pageblocks / 2^(max_order -
  // pageblock_order), plus splits at CMA boundaries): count them by walking the
  // decomposition. self_check() counts by the definition, block by block.
  count_blocks(free_blocks());
}

FrameRange FreeMemory::pageblock_range(uint64_t pb) const {
  return {Pfn{pb << pageblock_order_}, PageCount{uint64_t{1} << pageblock_order_}};
}

// ---------------------------------------------------------------------------------------
// The definition of a free block (B1, B2)

// Block (k, i) is frames [i << k, (i + 1) << k): every frame free (so inside the machine: a
// block that leaves it has fewer than 2^k frames), and whole.
bool FreeMemory::all_free_and_whole(uint8_t k, uint64_t i) const {
  const std::vector<uint32_t>& free = free_frames_in_[k];
  return i < free.size() && free[i] == (uint64_t{1} << k) && (k <= pageblock_order_ || whole_[k][i]);
}

// ... and not merged further: its parent is not all free and whole, or it is max_order.
bool FreeMemory::free_block_at(uint8_t k, uint64_t i) const {
  return all_free_and_whole(k, i) && (k == max_order_ || !all_free_and_whole(k + 1, i >> 1));
}

// Wholeness (B2) of block (k, i), k > pageblock_order, from its halves' wholeness and head
// labels. (Up to pageblock_order a block inside the machine is whole: it lies inside one
// pageblock, where labels never matter.)
bool FreeMemory::derive_whole(uint8_t k, uint64_t i) const {
  assert(k > pageblock_order_);
  if (!inside(k, i)) return false;
  const uint64_t lo = 2 * i, hi = 2 * i + 1;
  return whole(k - 1, lo) && whole(k - 1, hi) && mergeable(head_label(k - 1, lo), head_label(k - 1, hi));
}

bool FreeMemory::is_free_block(Pfn head, Order order) const {
  const uint8_t k = order.value;
  if (k > max_order_ || raw(head) % raw(order.pages()) != 0) return false;
  return free_block_at(k, raw(head) >> k);
}

// All free and whole is inherited by both halves, so the free block holding a free frame
// is the largest all-free-and-whole block around it: grow while the parent is one too.
std::optional<FreeBlock> FreeMemory::containing_free_block(Pfn p) const {
  if (raw(p) >= pages_ || !is_free(p)) return std::nullopt;
  uint8_t k = 0;
  while (k < max_order_ && all_free_and_whole(k + 1, raw(p) >> (k + 1))) ++k;
  assert(free_block_at(k, raw(p) >> k));
  return FreeBlock{Pfn{(raw(p) >> k) << k}, Order{k}};
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
// count_affected adds `sign` for each of those that is a free block, from order `from` up.
// Buddies share their parent: when it is all free and whole neither of them is a free block.
void FreeMemory::count_affected(uint64_t lo, uint64_t hi, uint8_t from, int sign) {
  for (uint8_t k = from; k <= max_order_; ++k) {
    const uint64_t n = blocks_at(k);
    for (uint64_t parent = lo >> (k + 1); parent <= (hi - 1) >> (k + 1); ++parent) {
      if (k < max_order_ && all_free_and_whole(k + 1, parent)) continue;
      for (uint64_t i = 2 * parent; i <= 2 * parent + 1 && i < n; ++i)
        if (all_free_and_whole(k, i)) {
          uint64_t& count = blocks_of_[index(head_label(k, i))][k];
          count = sign > 0 ? count + 1 : count - 1;
        }
    }
  }
}

template <class Change>
void FreeMemory::change(uint64_t lo, uint64_t hi, uint8_t from, Change&& change) {
  count_affected(lo, hi, from, -1);
  change();
  count_affected(lo, hi, from, +1);
}

void FreeMemory::set_free(FrameRange r, bool free) {
  if (raw(r.count) == 0) return;
  const uint64_t lo = raw(r.first), hi = raw(r.end());
  assert(hi <= pages_);
  auto add = [free](auto& n, uint64_t v) { free ? n += v : n -= v; };
  change(lo, hi, 0, [&] {
    for (uint64_t p = lo; p < hi; ++p) assert(is_free(Pfn{p}) != free && "a frame freed or allocated twice");
    // Block (k, i) gains or loses the frames of [lo, hi) it holds.
    for (uint8_t k = 0; k <= max_order_; ++k)
      for (uint64_t i = lo >> k; i <= (hi - 1) >> k; ++i)
        add(free_frames_in_[k][i], std::min(hi, (i + 1) << k) - std::max(lo, i << k));
    for (uint64_t pb = lo >> pageblock_order_; pb <= (hi - 1) >> pageblock_order_; ++pb) {
      const FrameRange in_pb = pageblock_range(pb);
      add(free_by_label_[index(labels_[pb])], std::min(hi, raw(in_pb.end())) - std::max(lo, raw(in_pb.first)));
    }
    add(free_total_, hi - lo);
  });
}

// The free blocks of order below pageblock_order inside pageblock pb: the maximal all-free
// aligned blocks inside it (up to pageblock_order every block is whole), unless the whole
// pageblock is free and so part of a free block of order pageblock_order or more.
template <class Fn>
void FreeMemory::for_each_free_block_inside(uint64_t pb, Fn&& fn) const {
  auto visit = [&](auto&& self, uint8_t k, uint64_t i) -> void {
    const uint64_t free = free_frames_in_[k][i];
    if (free == 0) return;
    if (free == (uint64_t{1} << k)) return fn(k, i);
    self(self, k - 1, 2 * i);
    self(self, k - 1, 2 * i + 1);
  };
  const uint8_t B = pageblock_order_;
  if (B > 0 && free_frames_in_[B][pb] != (uint64_t{1} << B)) {
    visit(visit, B - 1, 2 * pb);
    visit(visit, B - 1, 2 * pb + 1);
  }
}

// A label decides only blocks of pageblock_order and above (wholeness and merging, B2);
// the free blocks below it inside the pageblock stay as they are, on the new label's lists.
void FreeMemory::relabel(uint64_t pb, MigrateType t) {
  const MigrateType old = labels_[pb];
  if (old == t) return;
  for_each_free_block_inside(pb, [&](uint8_t k, uint64_t) {
    --blocks_of_[index(old)][k];
    ++blocks_of_[index(t)][k];
  });
  const FrameRange r = pageblock_range(pb);
  change(raw(r.first), raw(r.end()), pageblock_order_, [&] {
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

// Free frames per block, bottom up from the free frames (free_frames_in_[0]).
void FreeMemory::derive_free_frames() {
  for (uint8_t k = 1; k <= max_order_; ++k)
    for (uint64_t i = 0; i < blocks_at(k); ++i) {
      const uint64_t lo = 2 * i, hi = 2 * i + 1;
      free_frames_in_[k][i] = free_frames_in_[k - 1][lo] + (hi < blocks_at(k - 1) ? free_frames_in_[k - 1][hi] : 0);
    }
}

// Wholeness and the free counts, from the free frames per block and the labels.
void FreeMemory::derive_whole_and_counts() {
  for (uint8_t k = pageblock_order_ + 1; k <= max_order_; ++k)
    for (uint64_t i = 0; i < blocks_at(k); ++i) whole_[k][i] = derive_whole(k, i);
  free_by_label_.fill(0);
  free_total_ = 0;
  for (uint64_t pb = 0; pb < pageblocks(); ++pb) {
    free_by_label_[index(labels_[pb])] += free_frames_in_pageblock(pb);
    free_total_ += free_frames_in_pageblock(pb);
  }
}

void FreeMemory::count_blocks(const std::vector<FreeBlock>& blocks) {
  for (auto& per_type : blocks_of_) per_type.fill(0);
  for (const FreeBlock& b : blocks) ++blocks_of_[index(type_of(b))][b.order.value];
}

// Everything derived, from the free frames and the labels alone, by the definitions: every
// aligned block is asked whether it is a free block.
void FreeMemory::derive_all() {
  derive_free_frames();
  derive_whole_and_counts();
  for (auto& per_type : blocks_of_) per_type.fill(0);
  for (uint8_t k = 0; k <= max_order_; ++k)
    for (uint64_t i = 0; i < blocks_at(k); ++i)
      if (free_block_at(k, i)) ++blocks_of_[index(head_label(k, i))][k];
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
