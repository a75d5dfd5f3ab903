// Injected faults: deliberate departures of impl/ from the semantics, selectable at run
// time, so that one binary fuzzes the correct allocator and the bug zoo. Each fault is
// data: a name, the kernel change it re-creates (or "plausible"), what it does, and the
// rule expected to catch it. One switch at the point of the fault, never an #ifdef.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace cmacheck::impl {

enum class Fault : uint8_t {
  none,
  align_to_area_base,          // D1
  aligned_offset_to_next,      // D2
  count_truncated_32bit,       // D3
  maxchunk_counts_bits,        // D5
  used_counts_bits,            // D6-class
  merge_isolated,              // D8/D9
  merge_cma_with_movable,      // D10
  cma_fallback_largest_first,  // D11
  no_cma_preference,           // D12
  longterm_target_in_cma,      // D13
  longterm_stays_in_cma,       // D14
  isolation_no_edge_split,     // D19
  unmovable_in_cma,            // D7/D21-class
  keep_bits_after_busy,        // plausible
  busy_resume_past_window,     // plausible
  release_one_chunk_short,     // plausible
  maxchunk_off_by_one,         // plausible
  migration_drops_content,     // plausible
  longterm_pin_before_migrate, // plausible
  contig_stops_at_first_failure,  // plausible
  leave_isolated_on_failure,   // plausible
  contig_ignores_cma,          // plausible
  claim_always,                // plausible
  fallback_smallest_first,     // plausible
  aligned_mask_shifts_order,   // D24
  contig_isolates_cma_edges,   // D25
  edge_split_counts_free_twice,  // D26
  longterm_pins_after_failed_migration,  // D27
  pin_drains_only_off_lru,     // D16
  lru_enable_missed_on_error,  // D17b
  isolated_free_parks_on_pcp,  // plausible (the 2014 pcp isolation leak's class)
  contig_skips_pcp_drain,      // plausible (T20-class)
  pcp_takes_oldest,            // plausible
  // Concurrent faults: they show only when logical CPUs interleave (docs/concurrency.md).
  no_cma_mutex,                // D18
  bitmap_set_after_unlock,     // plausible
  release_clears_bits_first,   // plausible (the 2012 order without the 2012 locking)
  drain_once_no_lru_disable,   // D17
  pin_ok_if_nothing_collected, // D15
  pcp_bypass_uses_ride_type,   // D21
  free_type_read_unlocked,     // D22
  free_ignores_isolation,      // D8r (ad53f92eb416)
  pcp_flush_uses_cached_type,  // D8r (51bb1a4093cc)
  cma_mutex_kept_on_failure,   // plausible (D17b's class: an error path that skips the unlock)
  isolate_ignores_isolated,    // plausible
  count_,                      // number of faults (not a fault)
};

struct FaultInfo {
  Fault fault;
  std::string_view name;
  std::string_view origin;       // kernel fix subject and version, or "plausible"
  std::string_view description;  // what the faulty allocator does
  std::string_view caught_by;    // rule expected to catch it
};

std::span<const FaultInfo> all_faults();  // every sequential fault (not `none`)
// The faults that need concurrent callers: the sequential engines cannot show them.
std::span<const FaultInfo> concurrent_faults();
bool is_concurrent(Fault f);
inline constexpr size_t kConcurrentFaults = 11;
const FaultInfo& fault_info(Fault f);
std::optional<Fault> fault_by_name(std::string_view name);

class FaultSet {
 public:
  FaultSet() = default;
  explicit FaultSet(Fault f) { add(f); }
  void add(Fault f) {
    if (f != Fault::none) bits_ |= uint64_t{1} << static_cast<unsigned>(f);
  }
  bool on(Fault f) const { return (bits_ >> static_cast<unsigned>(f)) & 1u; }
  bool any() const { return bits_ != 0; }

 private:
  uint64_t bits_ = 0;
};

}  // namespace cmacheck::impl
