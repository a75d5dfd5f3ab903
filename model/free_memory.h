// The model's picture of free memory (rules M1, M2, B1, B2): which frames are free, the
// migratetype of every pageblock, and the buddy decomposition those two determine.
//
// The kernel keeps free lists; the model keeps none. Its free blocks are *derived* from the
// free frames and the labels, as the canonical decomposition rule B2 implies:
//
//   An aligned block of order k (k <= max_order, inside the machine) is a free block iff
//   - all its 2^k frames are free,
//   - it is *whole*: for k <= pageblock_order always; for k > pageblock_order its two halves
//     are whole and their head pageblocks are mergeable (the same label, or neither CMA nor
//     ISOLATE: __free_one_page, "avoid merging non-fallbackable pageblocks", v5.18), and
//   - its parent block of order k + 1 is not itself all free and whole (or k = max_order, or
//     the parent leaves the machine): the buddy allocator merges as far as it may.
//   A free block's migratetype, the free list the kernel would keep it on, is the label of
//   its first (head) pageblock.
//
// Nothing here chooses a block; the model asks "is there a free block of type T and order
// k?" (rule B4) and "is this frame the head of such a block?" (rule K2). To answer quickly
// after every operation, the class keeps two derived tables, re-derived locally on each
// change: per aligned block its number of free frames and its wholeness, and per
// (type, order) the number of free blocks. self_check() re-derives everything from scratch.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trace/units.h"

namespace cmacheck::model {

struct FreeBlock {
  Pfn head{};
  Order order{};
  friend bool operator==(const FreeBlock&, const FreeBlock&) = default;
};

class FreeMemory {
 public:
  // All frames free; pageblock pb labelled labels[pb] (rule M2: memmap_init leaves every
  // pageblock MOVABLE, cma_activate_area makes an area's pageblocks CMA).
  // `recycled`, when given, lends its tables' capacity (none of its state).
  FreeMemory(uint64_t pages, uint8_t pageblock_order, uint8_t max_order, std::vector<MigrateType> labels,
             FreeMemory* recycled = nullptr);

  uint64_t pages() const { return pages_; }
  uint8_t pageblock_order() const { return pageblock_order_; }
  uint8_t max_order() const { return max_order_; }
  uint64_t pageblocks() const { return labels_.size(); }
  uint64_t pageblock_of(Pfn p) const { return raw(p) >> pageblock_order_; }
  FrameRange pageblock_range(uint64_t pb) const;

  // Frames (M1).
  bool is_free(Pfn p) const { return free_frames_in_[0][raw(p)] != 0; }
  // Flips every frame of `r` to free (or to allocated). Each frame must change state.
  void set_free(FrameRange r, bool free);

  // Pageblock labels (M2).
  MigrateType label(Pfn p) const { return labels_[pageblock_of(p)]; }
  MigrateType pageblock_label(uint64_t pb) const { return labels_[pb]; }
  void relabel(uint64_t pb, MigrateType t);

  // The derived free blocks (B1, B2).
  bool is_free_block(Pfn head, Order order) const;
  MigrateType type_of(const FreeBlock& b) const { return label(b.head); }
  std::optional<FreeBlock> containing_free_block(Pfn p) const;
  bool has_free_block(MigrateType t, Order order) const { return blocks_of_[index(t)][order.value] != 0; }
  std::optional<FreeBlock> lowest_free_block(MigrateType t, Order order) const;
  std::vector<FreeBlock> free_blocks() const;  // all of them, ascending

  // Counts (M7).
  uint64_t free_frames() const { return free_total_; }
  uint64_t free_frames_labelled(MigrateType t) const { return free_by_label_[index(t)]; }
  uint64_t free_frames_in_pageblock(uint64_t pb) const { return free_frames_in_[pageblock_order_][pb]; }

  // Re-derives the tables from the free frames and the labels alone; a description of the
  // first difference, or nothing when the incremental tables are right.
  std::optional<std::string> self_check() const;

 private:
  static constexpr int kTypes = 5;
  static constexpr size_t index(MigrateType t) { return static_cast<size_t>(t); }

  uint64_t blocks_at(uint8_t k) const { return free_frames_in_[k].size(); }
  bool inside(uint8_t k, uint64_t i) const { return ((i + 1) << k) <= pages_; }
  bool all_free_and_whole(uint8_t k, uint64_t i) const;
  bool free_block_at(uint8_t k, uint64_t i) const;
  MigrateType head_label(uint8_t k, uint64_t i) const { return labels_[(i << k) >> pageblock_order_]; }
  bool whole(uint8_t k, uint64_t i) const { return k <= pageblock_order_ ? inside(k, i) : bool(whole_[k][i]); }
  bool derive_whole(uint8_t k, uint64_t i) const;
  void count_affected(uint64_t lo, uint64_t hi, uint8_t from, int sign);
  template <class Change>
  void change(uint64_t lo, uint64_t hi, uint8_t from, Change&& change);
  template <class Fn>
  void for_each_free_block_inside(uint64_t pb, Fn&& fn) const;
  void derive_free_frames();
  void derive_whole_and_counts();
  void count_blocks(const std::vector<FreeBlock>& blocks);
  void derive_all();

  uint64_t pages_;
  uint8_t pageblock_order_;
  uint8_t max_order_;
  std::vector<MigrateType> labels_;                           // per pageblock
  std::vector<std::vector<uint32_t>> free_frames_in_;         // [k][i]: free frames of block (k, i)
  std::vector<std::vector<uint8_t>> whole_;                   // [k][i]: block (k, i) is whole (B2), k > B only
  std::array<std::array<uint64_t, 64>, kTypes> blocks_of_{};  // [type][k]: number of free blocks
  std::array<uint64_t, kTypes> free_by_label_{};              // free frames per pageblock label
  uint64_t free_total_ = 0;
};

}  // namespace cmacheck::model
