// fuzz_bitmap: the CMA bitmap window search (A2, A3) and maxchunk against a naive,
// obviously right search over the bits: the lowest j >= start whose frame
// base + (j << order_per_bit) is a multiple of 2^align and whose nbits bits are clear.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <vector>

#include "impl/bitmap.h"
#include "trace/generate.h"

using namespace cmacheck;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteChoices in(std::span<const uint8_t>(data, size));
  const uint64_t len = 1 + in.below(700);
  const uint8_t o = static_cast<uint8_t>(in.below(4));
  const uint64_t base = (in.below(1 << 16)) << o;  // an area base is a multiple of its chunk
  const uint8_t align = static_cast<uint8_t>(in.below(14));
  const uint64_t nbits = 1 + in.below(len + 2);
  const uint64_t start = in.below(len + 1);
  std::vector<uint64_t> words((len + 63) / 64, 0);
  std::vector<bool> bits(len, false);
  const uint64_t density = in.below(9);  // 0: empty ... 8: mostly set
  for (uint64_t i = 0; i < len; ++i) {
    const bool set = in.below(8) < density;
    bits[i] = set;
    if (set) words[i >> 6] |= uint64_t{1} << (i & 63);
  }
  const auto al = impl::cma_alignment(base, o, align);
  const std::optional<uint64_t> got = impl::find_zero_area(words, len, start, nbits, al);

  std::optional<uint64_t> want;
  for (uint64_t j = start; j + nbits <= len && !want; ++j) {
    if (align > o && ((base + (j << o)) & ((uint64_t{1} << align) - 1)) != 0) continue;
    bool clear = true;
    for (uint64_t k = j; k < j + nbits && clear; ++k) clear = !bits[k];
    if (clear) want = j;
  }
  if (got != want) {
    std::fprintf(stderr, "window search: got %lld, want %lld (len=%llu o=%u base=%llu align=%u nbits=%llu start=%llu)\n",
                 got ? static_cast<long long>(*got) : -1LL, want ? static_cast<long long>(*want) : -1LL,
                 static_cast<unsigned long long>(len), o, static_cast<unsigned long long>(base), align,
                 static_cast<unsigned long long>(nbits), static_cast<unsigned long long>(start));
    std::abort();
  }
  uint64_t best = 0, run = 0;
  for (uint64_t i = 0; i < len; ++i) {
    run = bits[i] ? 0 : run + 1;
    if (run > best) best = run;
  }
  if (impl::longest_clear_run(words, len) != best) {
    std::fprintf(stderr, "maxchunk: got %llu, want %llu\n",
                 static_cast<unsigned long long>(impl::longest_clear_run(words, len)),
                 static_cast<unsigned long long>(best));
    std::abort();
  }
  return 0;
}
