// The steps of an operation (docs/concurrency.md): each ends a kernel critical section, or
// an unlocked read whose result is used later. Logical CPUs interleave only between steps;
// the trace language names them in `switch` lines (`switch T1 after T0.1:isolate`).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace cmacheck {

enum class StepLabel : uint8_t {
  op,          // the one step of an operation that runs under zone->lock as a whole
  read_type,   // free: the pageblock's type read before zone->lock (F2: free_unref_page_prepare)
  reserve,     // cma_alloc: bitmap search and set under cma->lock (A3, A4)
  search,      // cma_alloc with fault bitmap_set_after_unlock only: the search, lock dropped
  mutex,       // cma_alloc: cma_mutex taken (60a60e32cf91)
  isolate,     // alloc_contig_range: start_isolate_page_range (X1)
  drain,       // alloc_contig_range: lru_cache_disable, every CPU's batches drained (E3)
  pcp_drain,   // alloc_contig_range: one CPU's page lists drained, its pcp lock still held (Q4)
  lru_isolate, // alloc_contig_range: one block taken off the LRU for migration (X2)
  migrate,     // alloc_contig_range: one block migrated, or the attempt that failed (X2)
  lru_wait,    // pin longterm: waits while another CPU has the block off the LRU (P2)
  take,        // alloc_contig_range: test_pages_isolated and isolate_freepages_range (X3, X4)
  undo,        // alloc_contig_range: undo_isolate_page_range (X5)
  unreserve,   // cma_alloc: cma_clear_bitmap after a failed window (A4)
  free_range,  // cma_release: free_contig_range (R1)
  clear_bits,  // cma_release: cma_clear_bitmap (R1)
};
inline constexpr StepLabel kStepLabels[] = {StepLabel::op,      StepLabel::read_type, StepLabel::reserve, StepLabel::search, StepLabel::mutex,
                                            StepLabel::isolate, StepLabel::drain,   StepLabel::pcp_drain, StepLabel::lru_isolate, StepLabel::migrate, StepLabel::lru_wait, StepLabel::take,
                                            StepLabel::undo,    StepLabel::unreserve, StepLabel::free_range,
                                            StepLabel::clear_bits};

constexpr std::string_view name(StepLabel l) {
  switch (l) {
    case StepLabel::op: return "op";
    case StepLabel::read_type: return "read_type";
    case StepLabel::reserve: return "reserve";
    case StepLabel::search: return "search";
    case StepLabel::mutex: return "mutex";
    case StepLabel::isolate: return "isolate";
    case StepLabel::drain: return "drain";
    case StepLabel::pcp_drain: return "pcp_drain";
    case StepLabel::lru_isolate: return "lru_isolate";
    case StepLabel::migrate: return "migrate";
    case StepLabel::lru_wait: return "lru_wait";
    case StepLabel::take: return "take";
    case StepLabel::undo: return "undo";
    case StepLabel::unreserve: return "unreserve";
    case StepLabel::free_range: return "free_range";
    case StepLabel::clear_bits: return "clear_bits";
  }
  return "?";
}

constexpr std::optional<StepLabel> step_label_by_name(std::string_view s) {
  for (StepLabel l : kStepLabels)
    if (name(l) == s) return l;
  return std::nullopt;
}

}  // namespace cmacheck
