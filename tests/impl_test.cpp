// The reference allocator, operation by operation, against the rules of docs/semantics.md.
// Each test builds a small machine and checks one rule; invariants are checked after
// every operation.
#include <gtest/gtest.h>

#include "impl/allocator.h"
#include "trace/parse.h"

using namespace cmacheck;
using impl::Allocator;
using impl::CheckTier;

namespace {

struct World {
  Trace t;
  std::unique_ptr<Allocator> a;
  Outcome out;
  explicit World(const std::string& header, impl::FaultSet faults = {}) {
    ParseResult r = parse_trace(header);
    EXPECT_TRUE(r.ok()) << (r.error ? r.error->message : "");
    t = r.trace;
    a = std::make_unique<Allocator>(t.machine, t.areas, faults);
  }
  HandleId h(const std::string& n) { return t.intern_handle(n); }
  AreaId area(const std::string& n) { return *t.find_area(n); }
  const Outcome& run(const Op& op) {
    a->apply(op, out);
    auto v = a->check_invariants(CheckTier::full);
    EXPECT_FALSE(v) << v->rule << ": " << v->message;
    return out;
  }
  const Outcome& alloc(const std::string& n, Kind k, uint8_t order = 0, std::optional<uint64_t> at = {}) {
    Alloc o{h(n), k, Order{order}, at ? std::optional<Pfn>(Pfn{*at}) : std::nullopt};
    return run(o);
  }
  const Outcome& cma(const std::string& n, const std::string& ar, uint64_t count, uint8_t align = 0) {
    return run(CmaAlloc{h(n), area(ar), PageCount{count}, Order{align}});
  }
  uint64_t pfn(const std::string& n) { return raw(a->allocation(h(n))->pfn); }
};

// 256 frames, pageblocks of 16, max_order 6, an area of 64 frames at 64.
const char* kSmall = "machine pages=256 pageblock_order=4 max_order=6\narea dma base=64 pages=64\n";

}  // namespace

TEST(Machine, StartsAllFreeWithCmaPageblocksInAreas) {
  World w(kSmall);
  EXPECT_EQ(w.a->free_pages(), 256u);
  EXPECT_EQ(w.a->free_cma_pages(), 64u);
  EXPECT_EQ(w.a->label(Pfn{64}), MigrateType::cma);
  EXPECT_EQ(w.a->label(Pfn{63}), MigrateType::movable);
  EXPECT_EQ(w.a->label(Pfn{128}), MigrateType::movable);
}

TEST(Buddy, AllocReturnsAlignedBlocksAndFreeMerges) {
  World w(kSmall);
  EXPECT_TRUE(w.alloc("a", Kind::unmovable, 3).ok);
  EXPECT_EQ(w.pfn("a") % 8, 0u);
  EXPECT_EQ(w.a->free_pages(), 248u);
  EXPECT_TRUE(w.run(Free{w.h("a")}).ok);
  EXPECT_EQ(w.a->free_pages(), 256u);  // full-tier I2 checked maximal merging
}

TEST(Buddy, OrderAboveMaxOrderFails) {
  World w(kSmall);
  EXPECT_FALSE(w.alloc("a", Kind::movable, 7).ok);
  EXPECT_EQ(w.out.reason, FailReason::invalid_request);
}

TEST(Buddy, UnmovableNeverTakesCma) {
  World w("machine pages=64 pageblock_order=4 max_order=4\narea dma base=16 pages=48\n");
  for (int i = 0; i < 16; ++i) EXPECT_TRUE(w.alloc("u" + std::to_string(i), Kind::unmovable).ok);
  EXPECT_FALSE(w.alloc("x", Kind::unmovable).ok);  // B3: the 48 CMA frames are off limits
  EXPECT_EQ(w.out.reason, FailReason::no_free_block);
  EXPECT_TRUE(w.alloc("y", Kind::movable).ok);  // a movable request may use CMA
  EXPECT_EQ(w.a->label(Pfn{w.pfn("y")}), MigrateType::cma);
}

TEST(Buddy, MovablePrefersCmaWhenMoreThanHalfOfFreeIsCma) {
  // B4 step 1: 48 of 64 free frames are CMA, so a movable page comes from CMA.
  World w("machine pages=64 pageblock_order=4 max_order=4\narea dma base=16 pages=48\n");
  EXPECT_TRUE(w.alloc("m", Kind::movable).ok);
  EXPECT_EQ(w.a->label(Pfn{w.pfn("m")}), MigrateType::cma);
}

TEST(Buddy, MovableUsesMovableFirstWhenCmaIsNotTheMajority) {
  World w(kSmall);
  EXPECT_TRUE(w.alloc("m", Kind::movable).ok);
  EXPECT_EQ(w.a->label(Pfn{w.pfn("m")}), MigrateType::movable);
}

TEST(Buddy, FallbackClaimsWholePageblockForLargeBlocks) {
  // B4 step 4 + B5: an unmovable request in an all-MOVABLE machine takes the largest
  // MOVABLE block and relabels every pageblock it covers.
  World w("machine pages=64 pageblock_order=4 max_order=5\n");
  EXPECT_TRUE(w.alloc("u", Kind::unmovable).ok);
  const uint64_t block = w.pfn("u") & ~uint64_t{31};  // the order-5 block it came from
  EXPECT_EQ(w.a->label(Pfn{block}), MigrateType::unmovable);
  EXPECT_EQ(w.a->label(Pfn{block + 16}), MigrateType::unmovable);
  EXPECT_EQ(w.a->label(Pfn{block ^ 32}), MigrateType::movable);
}

TEST(Buddy, MergeNeverCrossesACmaBoundary) {
  // B2: the free CMA pageblock at 16 and the MOVABLE one at 0 stay separate blocks.
  World w("machine pages=32 pageblock_order=4 max_order=5\narea dma base=16 pages=16\n");
  EXPECT_EQ(w.a->free_pages(), 32u);
  EXPECT_TRUE(w.alloc("m", Kind::movable, 4).ok);  // takes one whole pageblock
  EXPECT_TRUE(w.run(Free{w.h("m")}).ok);
}

TEST(BuddyAt, ExactBlockWhenFreeAndLegal) {
  World w(kSmall);
  EXPECT_TRUE(w.alloc("m", Kind::movable, 2, 68).ok);
  EXPECT_EQ(w.pfn("m"), 68u);
  EXPECT_FALSE(w.alloc("n", Kind::movable, 2, 66).ok);  // misaligned
  EXPECT_FALSE(w.alloc("o", Kind::movable, 0, 69).ok);  // taken
  EXPECT_FALSE(w.alloc("u", Kind::unmovable, 0, 80).ok);  // CMA is not for unmovable
  EXPECT_TRUE(w.alloc("r", Kind::reclaimable, 0, 200).ok);
}

TEST(Free, PinnedBlockCannotBeFreed) {
  World w(kSmall);
  w.alloc("m", Kind::movable);
  EXPECT_TRUE(w.run(Pin{w.h("m"), false}).ok);
  EXPECT_FALSE(w.run(Free{w.h("m")}).ok);
  EXPECT_EQ(w.out.reason, FailReason::pinned);
  EXPECT_TRUE(w.run(Unpin{w.h("m")}).ok);
  EXPECT_FALSE(w.run(Unpin{w.h("m")}).ok);
  EXPECT_EQ(w.out.reason, FailReason::not_pinned);
  EXPECT_TRUE(w.run(Free{w.h("m")}).ok);
}

TEST(Pin, PinsNest) {
  World w(kSmall);
  w.alloc("m", Kind::movable);
  w.run(Pin{w.h("m"), false});
  w.run(Pin{w.h("m"), true});
  EXPECT_TRUE(w.run(Unpin{w.h("m")}).ok);
  EXPECT_FALSE(w.run(Free{w.h("m")}).ok);
  EXPECT_TRUE(w.run(Unpin{w.h("m")}).ok);
  EXPECT_TRUE(w.run(Free{w.h("m")}).ok);
}

TEST(Pin, LongtermPinMigratesOutOfCma) {
  World w(kSmall);
  EXPECT_TRUE(w.alloc("m", Kind::movable, 1, 64).ok);
  EXPECT_TRUE(w.run(Pin{w.h("m"), true}).ok);
  EXPECT_EQ(w.out.moves.size(), 1u);
  EXPECT_NE(w.a->label(Pfn{w.pfn("m")}), MigrateType::cma);
  EXPECT_EQ(w.a->content(Pfn{w.pfn("m")}), content_value(1, 0));  // M5: contents moved
}

TEST(Pin, LongtermPinOfShortPinnedCmaPageFails) {
  World w(kSmall);
  w.alloc("m", Kind::movable, 0, 64);
  w.run(Pin{w.h("m"), false});
  EXPECT_FALSE(w.run(Pin{w.h("m"), true}).ok);
  EXPECT_EQ(w.out.reason, FailReason::pinned);
  EXPECT_EQ(w.pfn("m"), 64u);
}

TEST(Migrate, MovesContentsAndFreesOldFrames) {
  World w(kSmall);
  w.alloc("m", Kind::movable, 2);
  const uint64_t before = w.pfn("m");
  EXPECT_TRUE(w.run(Migrate{w.h("m")}).ok);
  EXPECT_NE(w.pfn("m"), before);
  EXPECT_EQ(w.a->content(Pfn{w.pfn("m") + 3}), content_value(1, 3));
  EXPECT_EQ(w.a->free_pages(), 252u);
}

TEST(Migrate, RefusesUnmovablePinnedAndFull) {
  World w("machine pages=16 pageblock_order=2 max_order=2\n");
  w.alloc("u", Kind::unmovable);
  EXPECT_FALSE(w.run(Migrate{w.h("u")}).ok);
  EXPECT_EQ(w.out.reason, FailReason::not_movable);
  w.alloc("m", Kind::movable, 2);
  w.run(Pin{w.h("m"), false});
  EXPECT_FALSE(w.run(Migrate{w.h("m")}).ok);
  EXPECT_EQ(w.out.reason, FailReason::pinned);
  w.run(Unpin{w.h("m")});
  w.alloc("m2", Kind::movable, 2);
  w.alloc("m3", Kind::movable, 2);
  EXPECT_FALSE(w.run(Migrate{w.h("m")}).ok);  // no free order-2 block left
  EXPECT_EQ(w.out.reason, FailReason::no_target);
}

TEST(CmaAlloc, LowestWindowFirst) {
  World w(kSmall);
  EXPECT_TRUE(w.cma("c1", "dma", 3).ok);
  EXPECT_EQ(w.pfn("c1"), 64u);
  EXPECT_TRUE(w.cma("c2", "dma", 5).ok);
  EXPECT_EQ(w.pfn("c2"), 67u);
  EXPECT_EQ(w.a->area_stats(w.area("dma")).used, 8u);
  EXPECT_EQ(w.a->area_stats(w.area("dma")).maxchunk, 56u);
}

TEST(CmaAlloc, AlignmentIsPhysical) {
  // A2: base 80 is not a multiple of 32; align=5 must give a physical multiple of 32.
  World w("machine pages=256 pageblock_order=4 max_order=6\narea dma base=80 pages=96\n");
  EXPECT_TRUE(w.cma("c", "dma", 1, 5).ok);
  EXPECT_EQ(w.pfn("c"), 96u);
}

TEST(CmaAlloc, AlignmentDoesNotUseTheNextBoundaryOffset) {
  // D2 scenario: base 48 (a multiple of 16, not 32 or 64); align=6 (64). The first
  // physical multiple of 64 in [48, 240) is 64; the pre-2017 formula (offset measured up
  // to the next boundary, 16 bits) picks bit 48, frame 96.
  World w("machine pages=256 pageblock_order=4 max_order=6\narea dma base=48 pages=192\n");
  EXPECT_TRUE(w.cma("c", "dma", 1, 6).ok);
  EXPECT_EQ(w.pfn("c"), 64u);
  World bug("machine pages=256 pageblock_order=4 max_order=6\narea dma base=48 pages=192\n",
            impl::FaultSet(impl::Fault::aligned_offset_to_next));
  bug.a->apply(CmaAlloc{bug.h("c"), bug.area("dma"), PageCount{1}, Order{6}}, bug.out);
  EXPECT_EQ(raw(bug.out.pfn), 96u);
  auto v = bug.a->check_invariants(CheckTier::full);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "I4");
}

TEST(CmaAlloc, CountZeroOrTooLargeFails) {
  World w(kSmall);
  EXPECT_FALSE(w.cma("c", "dma", 0).ok);
  EXPECT_EQ(w.out.reason, FailReason::invalid_request);
  EXPECT_FALSE(w.cma("c", "dma", 65).ok);
  EXPECT_EQ(w.out.reason, FailReason::invalid_request);
  EXPECT_TRUE(w.cma("c", "dma", 64).ok);
  EXPECT_FALSE(w.cma("d", "dma", 1).ok);
  EXPECT_EQ(w.out.reason, FailReason::no_window);
}

TEST(CmaAlloc, MigratesMovablePagesOut) {
  World w(kSmall);
  w.alloc("m", Kind::movable, 0, 70);
  EXPECT_TRUE(w.cma("c", "dma", 16).ok);
  EXPECT_EQ(w.pfn("c"), 64u);
  ASSERT_EQ(w.out.moves.size(), 1u);
  EXPECT_TRUE(w.pfn("m") < 64 || w.pfn("m") >= 80);  // moved out of the isolated pageblock
  EXPECT_EQ(w.a->content(Pfn{w.pfn("m")}), content_value(1, 0));
}

TEST(CmaAlloc, BusyWindowMovesSearchPastTheAlignmentMask) {
  // A4: a pinned page in the first aligned window; the search resumes at j + mask + 1.
  World w(kSmall);
  w.alloc("m", Kind::movable, 0, 65);
  w.run(Pin{w.h("m"), false});
  EXPECT_TRUE(w.cma("c", "dma", 4, 3).ok);
  EXPECT_EQ(w.pfn("c"), 72u);
  EXPECT_EQ(w.out.windows_tried, 2u);
  EXPECT_EQ(w.pfn("m"), 65u);
}

TEST(CmaAlloc, SlackWithOrderPerBitStaysFree) {
  // A5: order_per_bit=2, count=5 takes two chunks (8 frames) but only 5 frames.
  World w("machine pages=256 pageblock_order=4 max_order=6\narea dma base=64 pages=64 order_per_bit=2\n");
  EXPECT_TRUE(w.cma("c", "dma", 5).ok);
  EXPECT_EQ(w.a->area_stats(w.area("dma")).used, 8u);
  EXPECT_EQ(w.a->free_cma_pages(), 59u);
  EXPECT_TRUE(w.cma("d", "dma", 1).ok);
  EXPECT_EQ(w.pfn("d"), 72u);
}

TEST(CmaRelease, PagesTheAreaDidNotHandOutChangeNothing) {
  World w(kSmall);
  w.cma("c", "dma", 8);
  EXPECT_FALSE(w.run(CmaReleaseRaw{w.area("dma"), Pfn{64}, PageCount{4}}).ok);
  EXPECT_FALSE(w.run(CmaReleaseRaw{w.area("dma"), Pfn{65}, PageCount{8}}).ok);
  EXPECT_FALSE(w.run(CmaReleaseRaw{w.area("dma"), Pfn{200}, PageCount{8}}).ok);
  EXPECT_EQ(w.out.reason, FailReason::not_handed_out);
  EXPECT_EQ(w.a->area_stats(w.area("dma")).used, 8u);
  EXPECT_TRUE(w.run(CmaReleaseRaw{w.area("dma"), Pfn{64}, PageCount{8}}).ok);
  EXPECT_EQ(w.a->area_stats(w.area("dma")).used, 0u);
  EXPECT_EQ(w.a->free_cma_pages(), 64u);
}

TEST(AllocContig, CandidatesStepByCountAndSkipCma) {
  World w(kSmall);
  w.alloc("u", Kind::unmovable, 0, 0);
  EXPECT_TRUE(w.run(AllocContig{w.h("x"), PageCount{32}}).ok);
  EXPECT_EQ(w.pfn("x"), 32u);  // 0 holds an unmovable page; 64..127 is CMA
  EXPECT_TRUE(w.run(AllocContig{w.h("y"), PageCount{32}}).ok);
  EXPECT_EQ(w.pfn("y"), 128u);
  EXPECT_TRUE(w.run(FreeContig{w.h("x")}).ok);
}

TEST(AllocContig, NonPowerOfTwoCountsUseMultiplesOfCount) {
  World w(kSmall);
  w.alloc("u", Kind::unmovable, 0, 5);
  EXPECT_TRUE(w.run(AllocContig{w.h("x"), PageCount{3}}).ok);
  // X1 (revision 2): the unmovable page at 5 blocks every candidate touching pageblock 0,
  // 15..17 included; 18 is the first multiple of 3 in a clean pageblock.
  EXPECT_EQ(w.pfn("x"), 18u);
  EXPECT_TRUE(w.run(AllocContig{w.h("y"), PageCount{3}}).ok);
  EXPECT_EQ(w.pfn("y"), 33u);  // x, a contiguous allocation, now blocks pageblock 1 too
}

TEST(Faults, AlignToAreaBaseMisaligns) {
  World w("machine pages=256 pageblock_order=4 max_order=6\narea dma base=80 pages=96\n",
          impl::FaultSet(impl::Fault::align_to_area_base));
  w.a->apply(CmaAlloc{w.h("c"), w.area("dma"), PageCount{1}, Order{5}}, w.out);
  EXPECT_EQ(raw(w.out.pfn), 80u);
  auto v = w.a->check_invariants(CheckTier::full);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "I4");
}

TEST(Faults, EveryFaultHasANameAndOrigin) {
  EXPECT_GE(impl::all_faults().size(), 16u);
  for (const auto& f : impl::all_faults()) {
    EXPECT_FALSE(f.name.empty());
    EXPECT_FALSE(f.origin.empty());
    EXPECT_EQ(impl::fault_by_name(f.name), f.fault);
  }
}
