#include "impl/faults.h"

#include <array>

namespace cmacheck::impl {

namespace {

constexpr std::array<FaultInfo, static_cast<size_t>(Fault::count_) - 1 - kConcurrentFaults> kFaults{{
    {Fault::align_to_area_base, "align_to_area_base",
     "D1: \"mm: cma: align to physical address, not CMA region position\" (fixed v3.19)",
     "cma_alloc aligns bitmap indices instead of physical frames: an area whose base is not "
     "aligned to 2^align hands out misaligned buffers.",
     "I4, K1"},
    {Fault::aligned_offset_to_next, "aligned_offset_to_next",
     "D2: \"cma: fix calculation of aligned offset\" (fixed 2017, ~v4.13)",
     "the aligned offset is measured from the base up to the next aligned frame instead of "
     "down to the previous one; wrong when 2^align exceeds twice the base's alignment.",
     "I4, K1"},
    {Fault::count_truncated_32bit, "count_truncated_32bit",
     "D3: \"mm: cma: fix incorrect type conversion for size during dma allocation\" (~v4.0); "
     "\"mm: use proper type for cma_[alloc|release]\" (v5.13)",
     "page counts of cma_alloc and cma_release pass through 32 bits: a request of 2^32 + n "
     "pages is served as n pages.",
     "K1"},
    {Fault::maxchunk_counts_bits, "maxchunk_counts_bits",
     "D5: \"mm/cma_debug.c: fix the break condition in cma_maxchunk_get()\" (fixed v5.2)",
     "maxchunk mixes bits and pages: it reports the longest clear run in bits, not pages, "
     "when order_per_bit > 0.",
     "I9, K1"},
    {Fault::used_counts_bits, "used_counts_bits",
     "D6 class: \"mm/cma.c: fix the bitmap status to show failed allocation reason\" (fixed v5.2)",
     "`used` counts set bits instead of pages when order_per_bit > 0.", "I9, K1"},
    {Fault::merge_isolated, "merge_isolated",
     "D8/D9: \"mm/page_alloc: restrict max order of merging on isolated pageblock\" (v3.18), "
     "\"prevent merging between isolated and other pageblocks\" (v4.6)",
     "a block freed at order >= pageblock_order merges with a buddy in an isolated pageblock "
     "(or vice versa), so free pages leak between isolated and normal lists.",
     "I2, I7, I9"},
    {Fault::merge_cma_with_movable, "merge_cma_with_movable",
     "D10: \"mm: page_alloc: avoid merging non-fallbackable pageblocks with others\" (v5.18)",
     "a free CMA block merges with a free non-CMA buddy: a free block crosses the area's "
     "boundary and CMA frames reach unmovable requests.",
     "I7, I6"},
    {Fault::cma_fallback_largest_first, "cma_fallback_largest_first",
     "D11: \"mm/cma: change fallback behaviour for CMA freepage\" (v4.1)",
     "CMA pageblocks are searched largest block first, like a fallback: large CMA blocks are "
     "split for small movable requests.",
     "K2 (B4)"},
    {Fault::no_cma_preference, "no_cma_preference",
     "D12: \"mm,page_alloc,cma: conditionally prefer cma pageblocks for movable allocations\" (v5.8)",
     "movable requests never prefer CMA, even when more than half of free memory is CMA.",
     "K2 (B4 step 1)"},
    {Fault::aligned_mask_shifts_order, "aligned_mask_shifts_order",
     "D24: \"mm/cma: fix cma bitmap aligned mask computing\" (v3.18)",
     "the bitmap alignment mask is 2^(align >> order_per_bit) - 1 instead of "
     "2^(align - order_per_bit) - 1: with order_per_bit > 0 buffers are misaligned.",
     "I4, K1"},
    {Fault::contig_isolates_cma_edges, "contig_isolates_cma_edges",
     "D25: \"mm: fix isolate_single_pageblock() isolation behavior\" (v6.0)",
     "alloc_contig (normal mode) isolates a CMA first or last pageblock of its range; when a "
     "later pageblock is refused, or the call goes on, the undo labels it MOVABLE: CMA "
     "pageblocks leak to general use.",
     "I7, K1"},
    {Fault::edge_split_counts_free_twice, "edge_split_counts_free_twice",
     "D26: \"mm: split free page with proper free memory accounting\" (v5.19)",
     "splitting the free block across an isolation edge frees its pieces without taking the "
     "block off the free count first: its frames count as free twice.",
     "I1, I9"},
    {Fault::longterm_pins_after_failed_migration, "longterm_pins_after_failed_migration",
     "D27: \"mm/gup: return an error on migration failure\" (v5.13)",
     "when a long-term pin cannot migrate its page out of CMA (no target, or pinned already), "
     "the page is pinned where it is instead of the pin failing.",
     "I6, L4"},
    {Fault::longterm_target_in_cma, "longterm_target_in_cma",
     "D13: \"mm/page_alloc: fix memalloc_nocma_{save/restore} APIs\" (v5.9)",
     "the migration target of a long-term pin may itself lie in CMA.", "I6, L4"},
    {Fault::longterm_stays_in_cma, "longterm_stays_in_cma",
     "D14: \"mm: update get_user_pages_longterm to migrate pages allocated from CMA region\" (v5.1)",
     "a long-term pin of a page in CMA pins it where it is.", "I6, L4"},
    {Fault::isolation_no_edge_split, "isolation_no_edge_split",
     "D19: \"mm: make alloc_contig_range work at pageblock granularity\" (v5.19) and its fixes",
     "isolation does not split a free block of order > pageblock_order that crosses the "
     "isolation edge; its frames are not seen as isolated and the window is busy.",
     "L1, L3"},
    {Fault::unmovable_in_cma, "unmovable_in_cma",
     "D7/D21 class: \"cma: fix watermark checking\" (v3.7); \"fix CMA and HIGHATOMIC landing on "
     "the wrong buddy list\" (v6.6)",
     "unmovable and reclaimable requests may take free CMA frames as a last resort.", "I6, K2"},
    {Fault::keep_bits_after_busy, "keep_bits_after_busy", "plausible",
     "cma_alloc does not clear the window's bits after alloc_contig_range reports busy.", "I5, K1"},
    {Fault::busy_resume_past_window, "busy_resume_past_window", "plausible",
     "after a busy window the search resumes past the whole window (bitmap_no + nbits) instead "
     "of at bitmap_no + mask + 1, skipping free windows that overlap the busy one. (Resuming at "
     "bitmap_no + 1 would be no fault: the aligned search rounds it up to bitmap_no + mask + 1.)",
     "K1"},
    {Fault::release_one_chunk_short, "release_one_chunk_short", "plausible",
     "cma_release clears one bitmap chunk too few.", "I5, I9"},
    {Fault::maxchunk_off_by_one, "maxchunk_off_by_one", "plausible",
     "maxchunk reports one chunk less than the longest clear run.", "I9, K1"},
    {Fault::migration_drops_content, "migration_drops_content", "plausible",
     "migration moves a block but not its last page's content.", "I8"},
    {Fault::longterm_pin_before_migrate, "longterm_pin_before_migrate", "plausible",
     "a long-term pin takes the pin first; the migration out of CMA then fails on the pin and "
     "the page stays pinned in CMA.",
     "I6, L4"},
    {Fault::contig_stops_at_first_failure, "contig_stops_at_first_failure", "plausible",
     "alloc_contig gives up at the first busy candidate instead of trying the next one.",
     "K1, L1"},
    {Fault::leave_isolated_on_failure, "leave_isolated_on_failure", "plausible",
     "a failed alloc_contig_range leaves its first pageblock isolated.", "I7, I10"},
    {Fault::contig_ignores_cma, "contig_ignores_cma", "plausible",
     "alloc_contig does not refuse ranges in CMA pageblocks (has_unmovable_pages misses "
     "the CMA check).",
     "K1"},
    {Fault::claim_always, "claim_always", "plausible",
     "a fallback always claims the whole pageblock, whatever its contents.", "K3"},
    {Fault::fallback_smallest_first, "fallback_smallest_first", "plausible",
     "fallback takes the smallest block of the other types instead of the largest.", "K2 (B4)"},
    {Fault::pin_drains_only_off_lru, "pin_drains_only_off_lru",
     "D16: \"mm/gup: check ref_count instead of lru before migration\" (98c6d259319e, v6.17; "
     "in 6.1.192 and 6.12.118)",
     "a long-term pin drains the CPUs' batches only when the page is off the LRU (a pending "
     "lru_add): a reference held by an activate or mlock batch stays, the migration out of CMA "
     "fails and the pin fails although a target exists.",
     "K1 (P2, E3)"},
    {Fault::lru_enable_missed_on_error, "lru_enable_missed_on_error",
     "D17b: the missing lru_cache_enable on an error path after \"mm: disable LRU pagevec during "
     "the migration temporarily\" (d479960e44f2, v5.13; fixed v5.14)",
     "alloc_contig_range does not re-enable the LRU batches when a migration finds no target: "
     "lru_disabled stays raised and every later batch add flushes at once.",
     "I12"},
    {Fault::isolated_free_parks_on_pcp, "isolated_free_parks_on_pcp",
     "plausible: free_unref_page without its is_migrate_isolate() test (the class of Vinayak Menon's "
     "2014 leak of isolated pages through the per-CPU lists)",
     "a small block freed into an ISOLATE pageblock parks on the freeing CPU's page list: the "
     "source of a move inside alloc_contig_range's range is not free for test_pages_isolated "
     "and the window is busy although the model takes it.",
     "K1 (Q2, X3)"},
    {Fault::contig_skips_pcp_drain, "contig_skips_pcp_drain",
     "plausible: alloc_contig_range without its drain_all_pages() after "
     "start_isolate_page_range (T20-class: pages left on a per-CPU list after isolation)",
     "alloc_contig_range does not drain the CPUs' page lists: a free page parked on a list "
     "inside the range is not free for test_pages_isolated and the window is busy.",
     "K1 (Q4, X3)"},
    {Fault::pcp_takes_oldest, "pcp_takes_oldest", "plausible: a FIFO where the kernel's list is LIFO",
     "an allocation takes the oldest entry of the CPU's page list instead of the newest "
     "(rmqueue_pcplist takes list_first_entry, and a free adds at the head).",
     "K2 (Q3)"},
}};

constexpr std::array<FaultInfo, kConcurrentFaults> kConcurrent{{
    {Fault::no_cma_mutex, "no_cma_mutex",
     "D18: \"mm/cma.c: remove redundant cma_mutex lock\" (a4efc174b382, v5.11); reverted by "
     "60a60e32cf91 (2022)",
     "cma_alloc runs alloc_contig_range without cma_mutex: two callers whose windows share a "
     "pageblock isolate each other's range, and one fails busy although the area has room.",
     "W2"},
    {Fault::bitmap_set_after_unlock, "bitmap_set_after_unlock", "plausible",
     "cma_alloc drops cma->lock between the bitmap search and setting the bits: two callers "
     "find the same window and both take it.",
     "I5'"},
    {Fault::release_clears_bits_first, "release_clears_bits_first",
     "plausible: the 2012 order of cma_release (clear, then free, both under cma_mutex) without "
     "the 2012 locking; v3.17 frees first",
     "cma_release clears the bits before it frees the frames: a concurrent cma_alloc may reserve "
     "a window whose frames are still allocated.",
     "I5'"},
    {Fault::drain_once_no_lru_disable, "drain_once_no_lru_disable",
     "D17: \"mm: disable LRU pagevec during the migration temporarily\" (d479960e44f2, v5.13) "
     "fixed it; before, migrate_prep() drained once",
     "alloc_contig_range drains the CPUs' batches once and does not disable them: a page another "
     "CPU adds to its batch after the drain keeps a reference, its migration fails and the window "
     "is busy.",
     "I12', K1"},
    {Fault::pin_ok_if_nothing_collected, "pin_ok_if_nothing_collected",
     "D15: \"mm: gup: fix infinite loop within __get_longterm_locked\" (1aaf8c122918, v6.14), "
     "reverted by 517f496e1e61 (v6.16)",
     "a long-term pin of a CMA page that another CPU has taken off the LRU (to migrate it) "
     "collects nothing and pins the page where it is: a long-term pin in CMA, and the other "
     "CPU's migration fails on the pin.",
     "I6"},
    {Fault::pcp_bypass_uses_ride_type, "pcp_bypass_uses_ride_type",
     "D21: \"mm: page_alloc: fix CMA and HIGHATOMIC landing on the wrong buddy list\" "
     "(7b086755fb8c, v6.6), fixing 4b23a68f9536 (v6.0: pcp lists under a spinlock, trylock on free)",
     "a free whose pcp trylock fails (another CPU's drain holds the lock) sends a CMA block to "
     "the buddy allocator's MOVABLE list, the type it rides on the page list: the frame can be "
     "lost from the CMA region.",
     "I2"},
    {Fault::free_type_read_unlocked, "free_type_read_unlocked",
     "D22: \"mm: page_alloc: close migratetype race between freeing and stealing\" (55612e80e722, "
     "v6.10, the freelist migratetype hygiene series); linux-6.1 is this structure (U61)",
     "under linux-6.12, a free keeps the pageblock type it read before zone->lock unless some "
     "pageblock is isolated: when another CPU's fallback claims the pageblock in between, the "
     "block goes to the old type's list (legal in linux-6.1, whose lists may differ from labels).",
     "I2"},
    {Fault::free_ignores_isolation, "free_ignores_isolation",
     "D8r: \"mm/page_alloc: fix incorrect isolation behavior by rechecking migratetype\" "
     "(ad53f92eb416, v3.18; Joonsoo Kim, 2014)",
     "a free keeps the pageblock type it read before zone->lock even when pageblocks are isolated: "
     "a page freed while another CPU isolates its pageblock goes to a normal list of an ISOLATE "
     "pageblock (allocatable during the isolation), or to ISOLATE's list after the undo.",
     "I2"},
    {Fault::pcp_flush_uses_cached_type, "pcp_flush_uses_cached_type",
     "D8r: \"mm/page_alloc: add freepage on isolate pageblock to correct buddy list\" "
     "(51bb1a4093cc, v3.18; Joonsoo Kim, 2014)",
     "a page-list drain frees every entry as the type cached when it was freed, even while "
     "pageblocks are isolated: alloc_contig_range's own drain puts a page of its isolated range "
     "on a normal list, where another CPU can allocate it.",
     "I2"},
    {Fault::cma_mutex_kept_on_failure, "cma_mutex_kept_on_failure",
     "plausible: D17b's class (the error path of the window loop skips a clean-up of the "
     "success path, there lru_cache_enable), here mutex_unlock",
     "cma_alloc unlocks cma_mutex only when alloc_contig_range succeeded: after a failed window "
     "the next window's mutex_lock waits for itself, and a call whose last window failed "
     "returns with cma_mutex held, so the next cma_alloc on any CPU waits forever.",
     "I12 (cma_mutex held at quiescence), deadlock"},
    {Fault::isolate_ignores_isolated, "isolate_ignores_isolated",
     "plausible: set_migratetype_isolate without its is_migrate_isolate_page() refusal",
     "start_isolate_page_range isolates a pageblock that another caller has isolated already "
     "instead of failing -EBUSY: two alloc_contig calls (which take no cma_mutex) both own the "
     "range, and the first undo ends the other's isolation.",
     "I7'"},
}};

constexpr FaultInfo kNone{Fault::none, "none", "", "the correct allocator", ""};

}  // namespace

std::span<const FaultInfo> all_faults() { return kFaults; }
std::span<const FaultInfo> concurrent_faults() { return kConcurrent; }
bool is_concurrent(Fault f) {
  for (const auto& c : kConcurrent)
    if (c.fault == f) return true;
  return false;
}

const FaultInfo& fault_info(Fault f) {
  for (const auto& table : {std::span<const FaultInfo>(kFaults), std::span<const FaultInfo>(kConcurrent)})
    for (const auto& i : table)
      if (i.fault == f) return i;
  return kNone;
}

std::optional<Fault> fault_by_name(std::string_view name) {
  if (name == "none") return Fault::none;
  for (const auto& table : {std::span<const FaultInfo>(kFaults), std::span<const FaultInfo>(kConcurrent)})
    for (const auto& i : table)
      if (i.name == name) return i.fault;
  return std::nullopt;
}

}  // namespace cmacheck::impl
