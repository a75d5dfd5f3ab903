#include "impl/bitmap.h"

#include <algorithm>

namespace cmacheck::impl {

Alignment cma_alignment(uint64_t base, uint8_t o, uint8_t align, bool to_next_boundary, bool ignore_base,
                        bool mask_shifts_order) {
  Alignment al;
  if (mask_shifts_order) al.mask = (uint64_t{1} << (align >> o)) - 1;  // D24: before v3.18
  if (align <= o) return al;  // chunks are already aligned enough
  if (!mask_shifts_order) al.mask = (uint64_t{1} << (align - o)) - 1;
  const uint64_t amask = (uint64_t{1} << align) - 1;
  if (ignore_base)
    al.offset = 0;  // D1: before v3.19 bitmap indices were aligned
  else if (to_next_boundary)
    al.offset = (((amask + 1) - (base & amask)) & amask) >> o;  // D2: before the 2017 fix
  else
    al.offset = (base & amask) >> o;
  return al;
}

namespace {

uint64_t next_zero(std::span<const uint64_t> w, uint64_t len, uint64_t i) {
  while (i < len) {
    const uint64_t x = ~w[i >> 6] >> (i & 63);
    if (x) return std::min(len, i + static_cast<uint64_t>(__builtin_ctzll(x)));
    i = (i | 63) + 1;
  }
  return len;
}

uint64_t next_set(std::span<const uint64_t> w, uint64_t i, uint64_t end) {
  while (i < end) {
    const uint64_t x = w[i >> 6] >> (i & 63);
    if (x) return std::min(end, i + static_cast<uint64_t>(__builtin_ctzll(x)));
    i = (i | 63) + 1;
  }
  return end;
}

}  // namespace

std::optional<uint64_t> find_zero_area(std::span<const uint64_t> w, uint64_t len, uint64_t start, uint64_t nbits,
                                       const Alignment& al) {
  using u128 = unsigned __int128;
  if (nbits == 0 || nbits > len) return std::nullopt;
  while (start < len) {
    const uint64_t z = next_zero(w, len, start);
    if (z >= len) return std::nullopt;
    // __ALIGN_MASK(index + align_offset, align_mask) - align_offset
    const u128 up = (static_cast<u128>(z) + al.offset + al.mask) & ~static_cast<u128>(al.mask);
    if (up < al.offset) return std::nullopt;
    const u128 j = up - al.offset;
    if (j + nbits > len) return std::nullopt;
    const uint64_t jj = static_cast<uint64_t>(j);
    const uint64_t i = next_set(w, jj, jj + nbits);
    if (i < jj + nbits) {
      start = i + 1;
      continue;
    }
    return jj;
  }
  return std::nullopt;
}

uint64_t longest_clear_run(std::span<const uint64_t> w, uint64_t len) {
  uint64_t best = 0, run = 0;
  for (uint64_t i = 0; i < len;) {
    const uint64_t word = w[i >> 6] >> (i & 63);
    const uint64_t valid = std::min<uint64_t>(64 - (i & 63), len - i);
    const uint64_t zeros = word ? static_cast<uint64_t>(__builtin_ctzll(word)) : 64;
    if (zeros >= valid) {  // the rest of this word is clear
      run += valid;
      i += valid;
      continue;
    }
    best = std::max(best, run + zeros);
    run = 0;
    const uint64_t rest = ~(word >> zeros);  // the set bits from here on, inverted
    const uint64_t ones = rest ? static_cast<uint64_t>(__builtin_ctzll(rest)) : 64;
    i += zeros + std::min(ones, valid - zeros);
  }
  return std::max(best, run);
}

}  // namespace cmacheck::impl
