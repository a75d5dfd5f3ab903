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
//   The free list the kernel keeps a free block on (its "list type"): under linux-6.12 the
//   label of its first (head) pageblock (B11); under linux-6.1 a list of its own (B10),
//   recorded per frame in `lists_` and set by the model's rules, since the kernel's 6.1
//   lists remember history (which block was freed last into a merge, B12; what step 4 moved,
//   B8).
//
// Nothing here chooses a block; the model asks "is there a free block of type T and order
// k?" (rule B4) and "is this frame the head of such a block?" (rule K2). To answer quickly
// after every operation, the class keeps two derived tables, re-derived locally on each
// change: per aligned block its number of allocated frames and its wholeness, and per
// (type, order) the number of free blocks. self_check() re-derives everything from scratch.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
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
  // The tables whose size is the machine's, handed from one FreeMemory to the next so that
  // their memory is reused (the fuzz targets build thousands of small worlds a second).
  struct Tables {
    std::vector<MigrateType> labels;
    std::vector<uint32_t> allocated;
    std::vector<uint8_t> whole;
    std::vector<MigrateType> lists;
  };

  // All frames free; the pageblocks of the frame ranges `cma` (whole pageblocks, disjoint)
  // are CMA, all others MOVABLE (rule M2: memmap_init, then cma_activate_area for each
  // area). `recycled` lends its memory only.
  // `own_lists`: free blocks keep lists of their own (linux-6.1, B10); else a block's list
  // is its head's label (linux-6.12, B11). Either way every boot block is on its label's list.
  FreeMemory(uint64_t pages, uint8_t pageblock_order, uint8_t max_order, const std::vector<FrameRange>& cma,
             bool own_lists, Tables recycled = {});
  // Gives the tables away; this object is left empty, to be destroyed or assigned to.
  Tables release_tables() &&;

  uint64_t pages() const { return pages_; }
  uint8_t pageblock_order() const { return pageblock_order_; }
  uint8_t max_order() const { return max_order_; }
  uint64_t pageblocks() const { return labels_.size(); }
  uint64_t pageblock_of(Pfn p) const { return raw(p) >> pageblock_order_; }
  FrameRange pageblock_range(uint64_t pb) const;

  // Frames (M1).
  bool is_free(Pfn p) const { return allocated_in(0, raw(p)) == 0; }
  // Flips every frame of `r` to free (or to allocated). Each frame must change state.
  void set_free(FrameRange r, bool free);

  // Pageblock labels (M2).
  MigrateType label(Pfn p) const { return labels_[pageblock_of(p)]; }
  MigrateType pageblock_label(uint64_t pb) const { return labels_[pb]; }
  void relabel(uint64_t pb, MigrateType t);
  // Pageblocks first_pb, first_pb + 1, ... get labels[0], labels[1], ...: the same as one
  // relabel each, in one change.
  void relabel(uint64_t first_pb, std::span<const MigrateType> labels);

  // The derived free blocks (B1, B2).
  bool is_free_block(Pfn head, Order order) const;
  // The list a free block is on (B10, B11).
  MigrateType type_of(const FreeBlock& b) const { return list_of(b.order.value, raw(b.head) >> b.order.value); }
  bool own_lists() const { return own_lists_; }
  // linux-6.1 (B10): the list recorded for frame p; the list of the free block p is in when p
  // is free (its state hash, model/hash.cpp). Only with own_lists().
  MigrateType list_at(Pfn p) const { return lists_[raw(p)]; }
  // linux-6.1 (B10): puts the free block b on t's list (as every rule that sends a block to a
  // list does: a free, a merge, move_freepages_block). Its frames keep the list when it is
  // split.
  void set_list(const FreeBlock& b, MigrateType t) { set_list(FrameRange{b.head, b.order.pages()}, t); }
  // ... or every frame of r, all free (the pieces of a block split at an isolation edge).
  void set_list(FrameRange r, MigrateType t);
  std::optional<FreeBlock> containing_free_block(Pfn p) const;
  bool has_free_block(MigrateType t, Order order) const { return blocks_of_[index(t)][order.value] != 0; }
  std::optional<FreeBlock> lowest_free_block(MigrateType t, Order order) const;
  std::vector<FreeBlock> free_blocks() const;  // all of them, ascending

  // Counts (M7).
  uint64_t free_frames() const { return free_total_; }
  uint64_t free_frames_labelled(MigrateType t) const { return free_by_label_[index(t)]; }
  // Pageblocks labelled ISOLATE (has_isolate_pageblock), kept on relabel.
  uint64_t isolated_pageblocks() const { return isolated_pageblocks_; }
  uint64_t free_frames_in_pageblock(uint64_t pb) const {
    return (uint64_t{1} << pageblock_order_) - allocated_in(pageblock_order_, pb);
  }

  // Re-derives the tables from the free frames and the labels alone; a description of the
  // first difference, or nothing when the incremental tables are right.
  std::optional<std::string> self_check() const;

  // Deliberate corruption of the derived tables, for the tests that show self_check fires.
  struct Corruptor;
  friend struct Corruptor;

 private:
  static constexpr int kTypes = 5;
  static constexpr size_t index(MigrateType t) { return static_cast<size_t>(t); }

  // Block (k, i) is the entry order_start_[k] + i of the tables.
  uint64_t blocks_at(uint8_t k) const { return order_start_[k + 1] - order_start_[k]; }
  // The blocks of one order, for loops over many of them: block i is entry i, i < n. The
  // tables hold the orders one after another, so the next order's blocks start where this
  // order's end (and there are half as many, rounded up).
  struct Level {
    const uint32_t* allocated;
    const uint8_t* whole;
    uint64_t n;
    bool all_free_and_whole(uint64_t i) const { return i < n && allocated[i] == 0 && whole[i]; }
    Level up() const { return {allocated + n, whole + n, (n + 1) / 2}; }
  };
  Level level(uint8_t k) const { return {&allocated_[order_start_[k]], &whole_[order_start_[k]], blocks_at(k)}; }
  uint32_t allocated_in(uint8_t k, uint64_t i) const { return allocated_[order_start_[k] + i]; }
  uint32_t& allocated_in(uint8_t k, uint64_t i) { return allocated_[order_start_[k] + i]; }
  bool whole(uint8_t k, uint64_t i) const { return whole_[order_start_[k] + i]; }
  bool inside(uint8_t k, uint64_t i) const { return ((i + 1) << k) <= pages_; }
  bool all_free_and_whole(uint8_t k, uint64_t i) const;
  bool free_block_at(uint8_t k, uint64_t i) const;
  MigrateType head_label(uint8_t k, uint64_t i) const { return labels_[(i << k) >> pageblock_order_]; }
  MigrateType list_of(uint8_t k, uint64_t i) const { return own_lists_ ? lists_[i << k] : head_label(k, i); }
  bool derive_whole(uint8_t k, uint64_t i) const;
  void count_affected(uint64_t lo, uint64_t hi, int sign);
  template <class Change>
  void change(uint64_t lo, uint64_t hi, Change&& change);
  void derive_allocated();
  void derive_whole_and_counts();
  template <class Fn>
  void for_each_free_block(uint64_t lo, uint64_t hi, Fn&& fn) const;
  void derive_all();

  uint64_t pages_;
  uint8_t pageblock_order_;
  uint8_t max_order_;
  bool own_lists_;
  std::vector<MigrateType> labels_;                           // per pageblock
  uint64_t isolated_pageblocks_ = 0;
  std::vector<MigrateType> lists_;                            // per frame, own_lists_ only (B10)
  std::array<uint64_t, 65> order_start_{};                    // [k]: entry of block (k, 0); [max_order + 1]: end
  std::vector<uint32_t> allocated_;                           // per block: its allocated frames
  std::vector<uint8_t> whole_;                                // per block: it is whole (B2)
  std::array<std::array<uint64_t, 64>, kTypes> blocks_of_{};  // [list type][k]: number of free blocks
  std::array<uint64_t, kTypes> free_by_label_{};              // free frames per pageblock label
  uint64_t free_total_ = 0;
};

}  // namespace cmacheck::model
