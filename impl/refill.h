// Refilling a table in place, reusing its capacity: the fuzz targets build an allocator for
// thousands of small worlds a second, and allocating (under AddressSanitizer: quarantining,
// poisoning and page-faulting) every table every time cost more than the operations.
// Under AddressSanitizer the capacity beyond the new size is poisoned, so that an index past
// the end is still reported, as it would be on a freshly allocated vector.
#pragma once

#include <cstddef>
#include <vector>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CMACHECK_IMPL_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CMACHECK_IMPL_ASAN 1
#endif
#ifdef CMACHECK_IMPL_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace cmacheck::impl {

template <class T>
void refill(std::vector<T>& v, size_t n, const T& value) {
#ifdef CMACHECK_IMPL_ASAN
  ASAN_UNPOISON_MEMORY_REGION(v.data(), v.capacity() * sizeof(T));
#endif
  v.assign(n, value);
#ifdef CMACHECK_IMPL_ASAN
  ASAN_POISON_MEMORY_REGION(v.data() + n, (v.capacity() - n) * sizeof(T));
#endif
}

}  // namespace cmacheck::impl
