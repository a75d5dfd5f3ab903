// CMA area bitmaps (rules M6, A2, A3): the window search and the alignment arithmetic,
// apart from the allocator so that fuzz_bitmap can test them against a naive search.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

namespace cmacheck::impl {

// cma_bitmap_aligned_mask() and cma_bitmap_aligned_offset() (A2): a bit j is a candidate
// when (j + offset) & mask == 0, i.e. when base + (j << order_per_bit) is a multiple of
// 2^align. `to_next_boundary` is the pre-2017 offset (bug D2).
struct Alignment {
  uint64_t mask = 0;
  uint64_t offset = 0;
};
// `mask_shifts_order` is the pre-v3.18 mask, 2^(align >> order_per_bit) - 1 (bug D24).
Alignment cma_alignment(uint64_t base_pfn, uint8_t order_per_bit, uint8_t align, bool to_next_boundary = false,
                        bool ignore_base = false, bool mask_shifts_order = false);

// bitmap_find_next_zero_area_off() (A3): the lowest aligned j >= start with bits
// [j, j + nbits) clear and j + nbits <= len; nullopt when there is none.
std::optional<uint64_t> find_zero_area(std::span<const uint64_t> words, uint64_t len, uint64_t start, uint64_t nbits,
                                       const Alignment& al);

// The longest run of clear bits in [0, len) (debugfs maxchunk, in bits).
uint64_t longest_clear_run(std::span<const uint64_t> words, uint64_t len);

// Number of bits for `count` pages: ceil(count / 2^order_per_bit) (cma_bitmap_pages_to_bits).
constexpr uint64_t pages_to_bits(uint64_t count, uint8_t order_per_bit) {
  return (count >> order_per_bit) + ((count & ((uint64_t{1} << order_per_bit) - 1)) != 0);
}

}  // namespace cmacheck::impl
