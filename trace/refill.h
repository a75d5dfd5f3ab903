// Refilling a table in place, reusing its memory. The fuzz targets build an allocator and
// a model for thousands of small worlds a second, and allocating (under AddressSanitizer:
// quarantining, poisoning and page-faulting) and filling every table element by element
// (every element instrumented) cost more than the operations. The fill is one memset, so
// the value must repeat one byte (0, 1, all ones). Under AddressSanitizer the capacity
// beyond the new size is poisoned, so that an index past the end is still reported, as on a
// fresh vector. impl/ and model/ both use it: a memory utility, not a statement of the
// semantics, so it lives with the shared types.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CMACHECK_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CMACHECK_ASAN 1
#endif
#ifdef CMACHECK_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace cmacheck {

template <class T>
void refill(std::vector<T>& v, size_t n, const T& value) {
  static_assert(std::is_trivially_copyable_v<T>);
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  for (size_t i = 1; i < sizeof(T); ++i) assert(bytes[i] == bytes[0] && "refill: the value must repeat one byte");
#ifdef CMACHECK_ASAN
  ASAN_UNPOISON_MEMORY_REGION(v.data(), v.capacity() * sizeof(T));
#endif
  // Shrinking keeps the memory. Growing copies from a block of zeros (one memmove per
  // block) rather than resize(), which would initialise element by element.
  static const T zeros[1024] = {};
  if (n < v.size()) v.resize(n);
  while (v.size() < n) v.insert(v.end(), zeros, zeros + std::min<size_t>(1024, n - v.size()));
  if (n) std::memset(v.data(), bytes[0], n * sizeof(T));
#ifdef CMACHECK_ASAN
  ASAN_POISON_MEMORY_REGION(v.data() + n, (v.capacity() - n) * sizeof(T));
#endif
}

}  // namespace cmacheck
