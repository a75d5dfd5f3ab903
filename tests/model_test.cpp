// The executable model alone, rule by rule: no reference allocator. Where a test needs
// "impl's choice" it builds that Outcome by hand. After every operation the model
// re-derives its free blocks and counts from scratch and checks its own bookkeeping.
#include "model/model.h"

#include <gtest/gtest.h>

#include "check/runner.h"
#include "trace/parse.h"

using namespace cmacheck;
using model::FreeBlock;
using model::Model;

namespace {

struct ModelWorld {
  Trace t;
  std::unique_ptr<Model> m;
  Outcome out;

  explicit ModelWorld(const std::string& header) {
    ParseResult r = parse_trace(header);
    EXPECT_TRUE(r.ok()) << (r.error ? r.error->message : "");
    t = r.trace;
    m = std::make_unique<Model>(t.machine, t.areas);
    self_check();
  }
  HandleId h(const std::string& n) { return t.intern_handle(n); }
  AreaId area(const std::string& n) { return *t.find_area(n); }

  // The model on its own: every free-list choice is the lowest block of the class.
  const Outcome& run(const Op& op) {
    m->apply_alone(op, out);
    self_check();
    return out;
  }
  // In lockstep with a hand-made impl outcome.
  std::optional<Violation> against(const Op& op, const Outcome& impl) {
    auto v = m->apply(op, impl, out);
    self_check();
    return v;
  }
  void self_check() {
    auto e = m->self_check();
    EXPECT_FALSE(e) << *e;
  }

  Op alloc(const std::string& n, Kind k, uint8_t order = 0, std::optional<uint64_t> at = {}) {
    return Alloc{h(n), k, Order{order}, at ? std::optional<Pfn>(Pfn{*at}) : std::nullopt};
  }
  Op cma(const std::string& n, const std::string& a, uint64_t count, uint8_t align = 0) {
    return CmaAlloc{h(n), area(a), PageCount{count}, Order{align}};
  }
  Op release(const std::string& n) { return CmaRelease{h(n)}; }
  Op release_raw(const std::string& a, uint64_t pfn, uint64_t count) {
    return CmaReleaseRaw{area(a), Pfn{pfn}, PageCount{count}};
  }
  Op contig(const std::string& n, uint64_t count) { return AllocContig{h(n), PageCount{count}}; }
  Op free_contig(const std::string& n) { return FreeContig{h(n)}; }
  Op free(const std::string& n) { return Free{h(n)}; }
  Op pin(const std::string& n, bool longterm = false) { return Pin{h(n), longterm}; }
  Op unpin(const std::string& n) { return Unpin{h(n)}; }
  Op migrate(const std::string& n) { return Migrate{h(n)}; }

  uint64_t pfn(const std::string& n) { return raw(m->placement(h(n))->pfn); }
  uint64_t digest(const std::string& n) { return m->placement(h(n))->digest; }
  MigrateType label(uint64_t p) { return m->label(Pfn{p}); }
  Move move(const std::string& n, uint64_t from, uint64_t to) { return Move{h(n), Pfn{from}, Pfn{to}}; }
};

Outcome impl_ok(uint64_t pfn, std::vector<Move> moves = {}) {
  Outcome o;
  o.ok = true;
  o.pfn = Pfn{pfn};
  o.moves = std::move(moves);
  return o;
}

// impl's outcome with the fallback blocks its free lists chose (B4 step 4, in order).
Outcome with_fallbacks(Outcome o, std::vector<uint64_t> heads) {
  for (uint64_t h : heads) o.fallback_heads.push_back(Pfn{h});
  return o;
}

Outcome impl_fail(FailReason r, std::vector<Move> moves = {}) {
  Outcome o;
  o.reason = r;
  o.moves = std::move(moves);
  return o;
}

// 64 frames, pageblocks of 4, max_order 4 (blocks of up to 16 frames).
const std::string kTiny = "machine pages=64 pageblock_order=2 max_order=4\n";

}  // namespace

// ---------------------------------------------------------------------------------------
// Machine and derived free blocks (M2, B1, B2)

TEST(ModelMachine, StartsAllFreeWithCmaPageblocksInAreas) {
  ModelWorld w(kTiny + "area dma base=16 pages=16\n");
  EXPECT_EQ(w.m->free_pages(), 64u);
  EXPECT_EQ(w.m->free_cma_pages(), 16u);
  EXPECT_EQ(w.label(15), MigrateType::movable);
  EXPECT_EQ(w.label(16), MigrateType::cma);
  EXPECT_EQ(w.label(31), MigrateType::cma);
  EXPECT_EQ(w.label(32), MigrateType::movable);
  EXPECT_EQ(w.m->area_stats(w.area("dma")), (AreaStats{0, 16}));
}

TEST(ModelBuddy, FreeBlocksNeverMergeAcrossACmaPageblockAndAreMaximal) {
  ModelWorld w(kTiny + "area dma base=4 pages=4\n");
  const std::vector<FreeBlock> expected = {
      {Pfn{0}, Order{2}},  {Pfn{4}, Order{2}},  {Pfn{8}, Order{3}},
      {Pfn{16}, Order{4}}, {Pfn{32}, Order{4}}, {Pfn{48}, Order{4}},
  };
  EXPECT_EQ(w.m->memory().free_blocks(), expected);
  EXPECT_EQ(w.m->memory().type_of(expected[1]), MigrateType::cma);
  EXPECT_EQ(w.m->memory().type_of(expected[2]), MigrateType::movable);
}

TEST(ModelBuddy, FreeingEverythingRestoresTheDecomposition) {
  ModelWorld w(kTiny + "area dma base=16 pages=16\n");
  const auto before = w.m->memory().free_blocks();
  ASSERT_TRUE(w.run(w.alloc("a", Kind::movable, 1)).ok);
  ASSERT_TRUE(w.run(w.alloc("b", Kind::movable, 0, 37)).ok);
  ASSERT_TRUE(w.run(w.cma("c", "dma", 3)).ok);
  EXPECT_NE(w.m->memory().free_blocks(), before);
  EXPECT_TRUE(w.run(w.free("b")).ok);
  EXPECT_TRUE(w.run(w.release("c")).ok);
  EXPECT_TRUE(w.run(w.free("a")).ok);
  EXPECT_EQ(w.m->memory().free_blocks(), before);
  EXPECT_EQ(w.m->free_pages(), 64u);
}

// ---------------------------------------------------------------------------------------
// alloc (B3-B5, B7, K2, L1)

TEST(ModelAlloc, FollowsALegalChoiceOfImpl) {
  ModelWorld w(kTiny);
  // Four free MOVABLE blocks of order 4: any head is legal.
  EXPECT_FALSE(w.against(w.alloc("m", Kind::movable), impl_ok(32)));
  EXPECT_TRUE(w.out.ok);
  EXPECT_EQ(raw(w.out.pfn), 32u);
  EXPECT_EQ(w.pfn("m"), 32u);
}

TEST(ModelAlloc, ABlockThatIsNotTheHeadOfTheRightClassIsK2) {
  ModelWorld w(kTiny + "area dma base=32 pages=32\n");
  // Half the free frames are CMA (not more): step 2, MOVABLE blocks of order 4 (0, 16).
  auto v = w.against(w.alloc("a", Kind::movable), impl_ok(32));  // a CMA block
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "K2");
  v = w.against(w.alloc("b", Kind::movable), impl_ok(4));  // inside a block, not its head
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "K2");
}

TEST(ModelAlloc, MovableRequestsPreferCmaWhenMostFreeMemoryIsCma) {
  // 48 of 64 free frames are CMA: step 1 takes a CMA block before the MOVABLE list.
  ModelWorld w(kTiny + "area dma base=16 pages=48\n");
  auto v = w.against(w.alloc("m", Kind::movable), impl_ok(0));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "K2");
  ModelWorld ok(kTiny + "area dma base=16 pages=48\n");
  EXPECT_FALSE(ok.against(ok.alloc("n", Kind::movable), impl_ok(32)));
  EXPECT_EQ(ok.label(ok.pfn("n")), MigrateType::cma);
  // Unmovable requests never use CMA (B3).
  ASSERT_TRUE(ok.run(ok.alloc("u", Kind::unmovable)).ok);
  EXPECT_EQ(ok.pfn("u"), 0u);
}

TEST(ModelAlloc, FailureWithALegalBlockIsL1) {
  ModelWorld w(kTiny);
  auto v = w.against(w.alloc("m", Kind::unmovable, 2), impl_fail(FailReason::no_free_block));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "L1");
  EXPECT_TRUE(w.out.ok);  // the model went on with its own choice
}

TEST(ModelAlloc, SuccessWithNoLegalBlockIsK2) {
  ModelWorld w("machine pages=16 pageblock_order=2 max_order=2\narea dma base=0 pages=16\n");
  // Only CMA memory: an unmovable request has no legal block (B3).
  auto v = w.against(w.alloc("u", Kind::unmovable), impl_ok(0));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "K2");
  EXPECT_FALSE(w.out.ok);
  EXPECT_EQ(w.out.reason, FailReason::no_free_block);
}

TEST(ModelAlloc, OrderAboveMaxOrderIsAnInvalidRequest) {
  ModelWorld w(kTiny);
  EXPECT_EQ(w.run(w.alloc("m", Kind::movable, 5)).reason, FailReason::invalid_request);
  EXPECT_EQ(w.run(w.alloc("m", Kind::movable, 5, 0)).reason, FailReason::invalid_request);
}

TEST(ModelAlloc, AtTakesExactlyALegalBlock) {
  ModelWorld w(kTiny + "area dma base=16 pages=16\n");
  EXPECT_EQ(w.run(w.alloc("a", Kind::movable, 1, 3)).reason, FailReason::no_free_block);     // misaligned
  EXPECT_EQ(w.run(w.alloc("a", Kind::unmovable, 0, 16)).reason, FailReason::no_free_block);  // CMA (B3)
  EXPECT_EQ(w.run(w.alloc("a", Kind::movable, 1, 64)).reason, FailReason::no_free_block);    // off the machine
  EXPECT_TRUE(w.run(w.alloc("a", Kind::movable, 0, 17)).ok);                                 // movable may use CMA
  EXPECT_EQ(raw(w.out.pfn), 17u);
  EXPECT_EQ(w.run(w.alloc("b", Kind::movable, 1, 16)).reason, FailReason::no_free_block);  // not all free
  EXPECT_TRUE(w.run(w.alloc("b", Kind::movable, 4, 48)).ok);
  EXPECT_EQ(w.m->free_pages(), 64u - 1 - 16);
}

TEST(ModelAlloc, AFallbackOfAPageblockOrMoreClaimsEveryPageblockItCovers) {
  ModelWorld w(kTiny);
  ASSERT_TRUE(w.run(w.alloc("u", Kind::unmovable)).ok);  // step 4 takes a MOVABLE block of order 4
  EXPECT_EQ(w.pfn("u"), 0u);
  for (uint64_t p : {0, 4, 8, 12}) EXPECT_EQ(w.label(p), MigrateType::unmovable) << p;
  EXPECT_EQ(w.label(16), MigrateType::movable);
  EXPECT_TRUE(w.m->memory().has_free_block(MigrateType::unmovable, Order{0}));
}

// B8 (linux-6.1): a fallback block worth claiming sends its pageblock's free blocks to the
// requester's lists whatever B5's count then says about the label, and step 2 is retried.
TEST(ModelAlloc, ASmallFallbackMovesItsPageblocksBlocksAndClaimsOnlyWhenHalfIsFreeOrAlike) {
  ModelWorld w("machine pages=32 pageblock_order=4 max_order=4\n");
  ASSERT_TRUE(w.run(w.alloc("m0", Kind::movable, 3, 0)).ok);
  ASSERT_TRUE(w.run(w.alloc("m1", Kind::movable, 2, 8)).ok);
  ASSERT_TRUE(w.run(w.alloc("m2", Kind::movable, 4, 16)).ok);
  // Pageblock 0: 4 free frames, 12 movable: 4 + 0 alike < 8, the label stays, but its free
  // blocks go to the UNMOVABLE lists.
  ASSERT_TRUE(w.run(w.alloc("u1", Kind::unmovable)).ok);
  EXPECT_EQ(w.pfn("u1"), 12u);
  EXPECT_EQ(w.label(0), MigrateType::movable);
  EXPECT_TRUE(w.m->memory().has_free_block(MigrateType::unmovable, Order{0}));  // 13, a half of 12's block
  // The next unmovable request finds that block at step 2: no fallback, no claim.
  ASSERT_TRUE(w.run(w.free("m0")).ok);
  ASSERT_TRUE(w.run(w.alloc("u2", Kind::unmovable)).ok);
  EXPECT_EQ(w.pfn("u2"), 13u);
  EXPECT_EQ(w.label(0), MigrateType::movable);
}

// B9 (linux-6.12): the claim pass claims when B5's count passes, else the next order down;
// with nothing claimed the smallest fallback block is stolen, labels and lists unchanged.
TEST(ModelAlloc, ASmallFallbackClaimsOrIsStolenUnderLinux612) {
  ModelWorld w("machine pages=32 pageblock_order=4 max_order=4 profile=linux-6.12\n");
  ASSERT_TRUE(w.run(w.alloc("m0", Kind::movable, 3, 0)).ok);
  ASSERT_TRUE(w.run(w.alloc("m1", Kind::movable, 2, 8)).ok);
  ASSERT_TRUE(w.run(w.alloc("m2", Kind::movable, 4, 16)).ok);
  ASSERT_TRUE(w.run(w.alloc("u1", Kind::unmovable)).ok);  // the claim fails (4 + 0 < 8): stolen
  EXPECT_EQ(w.pfn("u1"), 12u);
  EXPECT_EQ(w.label(0), MigrateType::movable);
  EXPECT_FALSE(w.m->memory().has_free_block(MigrateType::unmovable, Order{0}));
  // After freeing m0: 11 free frames + 1 unmovable (alike) >= 8: claimed, then the smallest
  // UNMOVABLE block.
  ASSERT_TRUE(w.run(w.free("m0")).ok);
  ASSERT_TRUE(w.run(w.alloc("u2", Kind::unmovable)).ok);
  EXPECT_EQ(w.pfn("u2"), 13u);
  EXPECT_EQ(w.label(0), MigrateType::unmovable);
  EXPECT_EQ(w.label(16), MigrateType::movable);
}

TEST(ModelAlloc, AtInAnotherTypesBlockClaimsAsAFallbackWould) {
  ModelWorld w("machine pages=32 pageblock_order=4 max_order=4\n");
  ASSERT_TRUE(w.run(w.alloc("u", Kind::unmovable, 0, 16)).ok);  // free block of order 4 = B: claimed
  EXPECT_EQ(w.label(16), MigrateType::unmovable);
  EXPECT_EQ(w.label(0), MigrateType::movable);
}

// ---------------------------------------------------------------------------------------
// free, pin, unpin, migrate (F1, P1-P3, G1)

TEST(ModelBlocks, FailureReasonsOfFreePinUnpinAndMigrate) {
  ModelWorld w(kTiny);
  ASSERT_TRUE(w.run(w.alloc("u", Kind::unmovable)).ok);
  ASSERT_TRUE(w.run(w.alloc("p", Kind::movable)).ok);
  ASSERT_TRUE(w.run(w.pin("u")).ok);
  EXPECT_EQ(w.run(w.migrate("u")).reason, FailReason::not_movable);  // checked before pins
  ASSERT_TRUE(w.run(w.pin("p")).ok);
  EXPECT_EQ(w.run(w.migrate("p")).reason, FailReason::pinned);
  EXPECT_EQ(w.run(w.free("p")).reason, FailReason::pinned);
  EXPECT_TRUE(w.run(w.unpin("p")).ok);
  EXPECT_EQ(raw(w.out.pfn), w.pfn("p"));
  EXPECT_EQ(w.run(w.unpin("p")).reason, FailReason::not_pinned);
  EXPECT_TRUE(w.run(w.free("p")).ok);
  EXPECT_FALSE(w.m->is_live(w.h("p")));
}

TEST(ModelBlocks, MigrationKeepsContents) {
  ModelWorld w(kTiny);
  ASSERT_TRUE(w.run(w.alloc("x", Kind::unmovable)).ok);   // allocation 1
  ASSERT_TRUE(w.run(w.alloc("a", Kind::movable, 1)).ok);  // allocation 2
  const uint64_t from = w.pfn("a"), digest = w.digest("a");
  EXPECT_EQ(w.m->content(Pfn{from + 1}), content_value(2, 1));
  ASSERT_TRUE(w.run(w.migrate("a")).ok);
  ASSERT_EQ(w.out.moves.size(), 1u);
  EXPECT_EQ(w.out.moves[0], w.move("a", from, w.pfn("a")));
  EXPECT_NE(w.pfn("a"), from);
  EXPECT_EQ(raw(w.out.pfn), w.pfn("a"));
  EXPECT_EQ(w.digest("a"), digest);
  EXPECT_EQ(w.m->content(Pfn{w.pfn("a") + 1}), content_value(2, 1));
}

TEST(ModelBlocks, ImplMigrationTargetsAreChecked) {
  ModelWorld w(kTiny);
  ASSERT_TRUE(w.run(w.alloc("a", Kind::movable, 2)).ok);  // at 0; free MOVABLE: 4/2, 8/3, 16/4, ...
  // Smallest MOVABLE block of order >= 2 is order 2 (at 4): a target of order 4 is not it.
  auto v = w.against(w.migrate("a"), impl_ok(16, {w.move("a", 0, 16)}));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "K2");

  ModelWorld ok(kTiny);
  ASSERT_TRUE(ok.run(ok.alloc("a", Kind::movable, 2)).ok);
  EXPECT_FALSE(ok.against(ok.migrate("a"), impl_ok(4, {ok.move("a", 0, 4)})));
  EXPECT_EQ(ok.pfn("a"), 4u);

  ModelWorld wrong_block(kTiny);
  ASSERT_TRUE(wrong_block.run(wrong_block.alloc("a", Kind::movable, 2)).ok);
  ASSERT_TRUE(wrong_block.run(wrong_block.alloc("b", Kind::movable, 2)).ok);
  v = wrong_block.against(wrong_block.migrate("a"), impl_ok(8, {wrong_block.move("b", 4, 8)}));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "K2");
}

TEST(ModelBlocks, MovesImplReportsWhereNothingMovesAreK2) {
  ModelWorld w(kTiny);
  ASSERT_TRUE(w.run(w.alloc("a", Kind::movable)).ok);
  auto v = w.against(w.free("a"), impl_ok(0, {w.move("a", 0, 8)}));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "K2");
}

TEST(ModelBlocks, MigrationFailingWithALegalTargetIsL1) {
  ModelWorld w(kTiny);
  ASSERT_TRUE(w.run(w.alloc("a", Kind::movable)).ok);
  auto v = w.against(w.migrate("a"), impl_fail(FailReason::no_target));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "L1");
}

TEST(ModelPin, PinsNestAndTheLongTermMarkLastsUntilTheCountIsZero) {
  ModelWorld w(kTiny);
  ASSERT_TRUE(w.run(w.alloc("a", Kind::movable)).ok);
  ASSERT_TRUE(w.run(w.pin("a")).ok);
  ASSERT_TRUE(w.run(w.pin("a", true)).ok);  // not in CMA: just a pin
  EXPECT_TRUE(w.out.moves.empty());
  EXPECT_EQ(w.m->pins(w.h("a")), 2u);
  EXPECT_TRUE(w.m->longterm_pinned(w.h("a")));
  ASSERT_TRUE(w.run(w.unpin("a")).ok);
  EXPECT_TRUE(w.m->longterm_pinned(w.h("a")));
  ASSERT_TRUE(w.run(w.unpin("a")).ok);
  EXPECT_FALSE(w.m->longterm_pinned(w.h("a")));
}

TEST(ModelPin, LongTermPinMigratesOutOfCmaFirst) {
  ModelWorld w(kTiny + "area dma base=16 pages=16\n");
  ASSERT_TRUE(w.run(w.alloc("m", Kind::movable, 1, 16)).ok);
  const uint64_t digest = w.digest("m");
  ASSERT_TRUE(w.run(w.pin("m", true)).ok);
  ASSERT_EQ(w.out.moves.size(), 1u);
  EXPECT_EQ(w.out.moves[0].from, Pfn{16});
  EXPECT_NE(w.label(w.pfn("m")), MigrateType::cma);
  EXPECT_EQ(raw(w.out.pfn), w.pfn("m"));
  EXPECT_EQ(w.digest("m"), digest);
  EXPECT_TRUE(w.m->longterm_pinned(w.h("m")));
  EXPECT_EQ(w.m->pins(w.h("m")), 1u);
}

TEST(ModelPin, LongTermPinTargetInCmaIsK2) {
  ModelWorld w(kTiny + "area dma base=16 pages=16\n");
  ASSERT_TRUE(w.run(w.alloc("m", Kind::movable, 1, 16)).ok);
  auto v = w.against(w.pin("m", true), impl_ok(24, {w.move("m", 16, 24)}));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "K2");

  // The UNMOVABLE target (P2) falls back (B8): a MOVABLE order-4 block, claimed whole; impl's
  // free lists may offer the one at 32 as well as the one at 0.
  ModelWorld ok(kTiny + "area dma base=16 pages=16\n");
  ASSERT_TRUE(ok.run(ok.alloc("m", Kind::movable, 1, 16)).ok);
  EXPECT_FALSE(ok.against(ok.pin("m", true), with_fallbacks(impl_ok(32, {ok.move("m", 16, 32)}), {32})));
  EXPECT_EQ(ok.pfn("m"), 32u);
  EXPECT_EQ(ok.label(32), MigrateType::unmovable);

  ModelWorld stays(kTiny + "area dma base=16 pages=16\n");  // D14: pinned in place
  ASSERT_TRUE(stays.run(stays.alloc("m", Kind::movable, 1, 16)).ok);
  v = stays.against(stays.pin("m", true), impl_ok(16));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "K2");
}

TEST(ModelPin, LongTermPinOfAPinnedOrStuckCmaBlockFailsAndChangesNothing) {
  ModelWorld w("machine pages=32 pageblock_order=2 max_order=3\narea dma base=16 pages=16\n");
  ASSERT_TRUE(w.run(w.alloc("m", Kind::movable, 0, 16)).ok);
  ASSERT_TRUE(w.run(w.pin("m")).ok);
  EXPECT_EQ(w.run(w.pin("m", true)).reason, FailReason::pinned);
  EXPECT_TRUE(w.out.moves.empty());
  EXPECT_EQ(w.m->pins(w.h("m")), 1u);
  ASSERT_TRUE(w.run(w.unpin("m")).ok);
  // Fill every non-CMA frame: no target outside CMA.
  ASSERT_TRUE(w.run(w.alloc("u1", Kind::unmovable, 3, 0)).ok);
  ASSERT_TRUE(w.run(w.alloc("u2", Kind::unmovable, 3, 8)).ok);
  EXPECT_EQ(w.run(w.pin("m", true)).reason, FailReason::no_target);
  EXPECT_EQ(w.pfn("m"), 16u);
  EXPECT_EQ(w.m->pins(w.h("m")), 0u);
}

// ---------------------------------------------------------------------------------------
// cma_alloc (A1-A6) and area counts (M7)

TEST(ModelCmaAlloc, FirstFitTakesTheLowestFreeWindow) {
  ModelWorld w(kTiny + "area dma base=16 pages=16\n");
  EXPECT_EQ(raw(w.run(w.cma("a", "dma", 4)).pfn), 16u);
  EXPECT_EQ(raw(w.run(w.cma("b", "dma", 4)).pfn), 20u);
  ASSERT_TRUE(w.run(w.release("a")).ok);
  EXPECT_EQ(raw(w.run(w.cma("c", "dma", 2)).pfn), 16u);
  EXPECT_EQ(raw(w.run(w.cma("d", "dma", 3)).pfn), 24u);  // bits 2-3 are too few
  EXPECT_EQ(w.out.windows_tried, 1u);
}

TEST(ModelCmaAlloc, AlignmentIsPhysicalNotRelativeToTheAreaBase) {
  // D1: base 4 is not 8-aligned; the first 8-aligned frame is 8, not the base.
  ModelWorld w(kTiny + "area dma base=4 pages=32\n");
  EXPECT_EQ(raw(w.run(w.cma("a", "dma", 1, 3)).pfn), 8u);
  EXPECT_EQ(raw(w.run(w.cma("b", "dma", 1, 3)).pfn), 16u);
}

TEST(ModelCmaAlloc, AlignmentUsesTheCorrectedOffset) {
  // D2: base 16, align 2^6. The pre-2017 offset (bits up to the next aligned frame, 48)
  // would give frame 32; the physical rule gives 64. The same with order_per_bit=1.
  ModelWorld w(
      "machine pages=256 pageblock_order=4 max_order=6\narea dma base=16 pages=128\n"
      "area two base=144 pages=112 order_per_bit=1\n");
  EXPECT_EQ(raw(w.run(w.cma("a", "dma", 1, 6)).pfn), 64u);
  EXPECT_EQ(raw(w.run(w.cma("b", "two", 1, 6)).pfn), 192u);
  EXPECT_EQ(raw(w.run(w.cma("c", "two", 2, 1)).pfn), 144u);  // align <= order_per_bit: any bit
}

TEST(ModelCmaAlloc, BusyWindowMovesTheSearchToTheNextAlignedBit) {
  ModelWorld w(kTiny + "area dma base=16 pages=16\n");
  ASSERT_TRUE(w.run(w.alloc("m", Kind::movable, 0, 22)).ok);
  ASSERT_TRUE(w.run(w.pin("m")).ok);
  // align=1: windows at bits 0, 2, 4, 6 all hold the pinned frame 22; bit 8 is clear.
  ASSERT_TRUE(w.run(w.cma("c", "dma", 8, 1)).ok);
  EXPECT_EQ(raw(w.out.pfn), 24u);
  EXPECT_EQ(w.out.windows_tried, 5u);
  EXPECT_EQ(w.out.busy_pinned, 4u);
  EXPECT_TRUE(w.out.moves.empty());
  EXPECT_EQ(w.m->area_stats(w.area("dma")).used, 8u);
}

TEST(ModelCmaAlloc, BusyEverywhereFailsBusyAndLeavesTheBitmapClear) {
  ModelWorld w(kTiny + "area dma base=16 pages=16\n");
  ASSERT_TRUE(w.run(w.alloc("m", Kind::movable, 0, 22)).ok);
  ASSERT_TRUE(w.run(w.pin("m")).ok);
  EXPECT_EQ(w.run(w.cma("c", "dma", 16)).reason, FailReason::busy);
  EXPECT_EQ(w.out.windows_tried, 1u);
  EXPECT_EQ(w.m->area_stats(w.area("dma")), (AreaStats{0, 16}));
  EXPECT_EQ(w.label(16), MigrateType::cma);  // X5
}

TEST(ModelCmaAlloc, MovableBlocksInTheWindowMoveOut) {
  ModelWorld w(kTiny + "area dma base=16 pages=16\n");
  ASSERT_TRUE(w.run(w.alloc("m", Kind::movable, 0, 22)).ok);
  const uint64_t digest = w.digest("m");
  ASSERT_TRUE(w.run(w.cma("c", "dma", 8)).ok);
  EXPECT_EQ(raw(w.out.pfn), 16u);
  ASSERT_EQ(w.out.moves.size(), 1u);
  EXPECT_EQ(w.out.moves[0].from, Pfn{22});
  EXPECT_FALSE(FrameRange({Pfn{16}, PageCount{8}}).contains(Pfn{w.pfn("m")}));
  EXPECT_EQ(w.digest("m"), digest);
}

TEST(ModelCmaAlloc, NoTargetForABlockEndsTheCallWithNoMemory) {
  ModelWorld w("machine pages=16 pageblock_order=2 max_order=2\narea dma base=8 pages=8\n");
  ASSERT_TRUE(w.run(w.alloc("u1", Kind::unmovable, 2, 0)).ok);
  ASSERT_TRUE(w.run(w.alloc("u2", Kind::unmovable, 2, 4)).ok);
  ASSERT_TRUE(w.run(w.alloc("m", Kind::movable, 0, 8)).ok);
  ASSERT_TRUE(w.run(w.alloc("n", Kind::movable, 2, 12)).ok);
  EXPECT_EQ(w.run(w.cma("c", "dma", 4)).reason, FailReason::no_memory);
  EXPECT_EQ(w.out.windows_tried, 1u);
  EXPECT_EQ(w.m->area_stats(w.area("dma")).used, 0u);
  EXPECT_EQ(w.pfn("m"), 8u);
}

TEST(ModelCmaAlloc, InvalidRequestsAndNoWindow) {
  ModelWorld w(kTiny + "area dma base=16 pages=16 order_per_bit=1\n");
  EXPECT_EQ(w.run(w.cma("c", "dma", 0)).reason, FailReason::invalid_request);
  EXPECT_EQ(w.run(w.cma("c", "dma", 17)).reason, FailReason::invalid_request);  // 9 bits of 8
  EXPECT_TRUE(w.run(w.cma("c", "dma", 15)).ok);                                 // 8 bits: the slack frame stays free
  EXPECT_EQ(w.run(w.cma("d", "dma", 1)).reason, FailReason::no_window);
  EXPECT_EQ(w.out.windows_tried, 0u);
}

TEST(ModelCmaAlloc, OrderPerBitLeavesTheLastChunksSlackFree) {
  ModelWorld w(kTiny + "area dma base=16 pages=16 order_per_bit=2\n");
  ASSERT_TRUE(w.run(w.cma("a", "dma", 5)).ok);  // two chunks of 4
  EXPECT_EQ(w.m->area_stats(w.area("dma")), (AreaStats{8, 8}));
  EXPECT_EQ(w.m->free_cma_pages(), 11u);  // frames 21-23 stay free (A5)
  EXPECT_TRUE(w.m->memory().is_free(Pfn{21}));
  EXPECT_EQ(raw(w.run(w.cma("b", "dma", 1)).pfn), 24u);  // not the slack
  EXPECT_EQ(w.m->free_pages(), 64u - 6);
  ASSERT_TRUE(w.run(w.release("a")).ok);
  EXPECT_EQ(w.m->area_stats(w.area("dma")), (AreaStats{4, 8}));
}

TEST(ModelCmaAlloc, UsedAndMaxchunkCountPagesNotBits) {
  ModelWorld w(kTiny + "area dma base=16 pages=16 order_per_bit=1\n");
  EXPECT_EQ(w.m->area_stats(w.area("dma")), (AreaStats{0, 16}));
  ASSERT_TRUE(w.run(w.cma("a", "dma", 3)).ok);  // bits 0-1
  EXPECT_EQ(w.m->area_stats(w.area("dma")), (AreaStats{4, 12}));
  ASSERT_TRUE(w.run(w.cma("b", "dma", 2)).ok);  // bit 2
  EXPECT_EQ(w.m->area_stats(w.area("dma")), (AreaStats{6, 10}));
  ASSERT_TRUE(w.run(w.release("a")).ok);
  EXPECT_EQ(w.m->area_stats(w.area("dma")), (AreaStats{2, 10}));
}

TEST(ModelCmaAlloc, ImplFailingAFreeWindowIsL1) {
  ModelWorld w(kTiny + "area dma base=16 pages=16\n");
  auto v = w.against(w.cma("c", "dma", 4), impl_fail(FailReason::busy));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "L1");
  EXPECT_TRUE(w.out.ok);
  EXPECT_EQ(raw(w.out.pfn), 16u);
}

TEST(ModelCmaAlloc, ImplStoppingWithNoMemoryWhileATargetExistsIsL1) {
  ModelWorld w(kTiny + "area dma base=16 pages=16\n");
  ASSERT_TRUE(w.run(w.alloc("m", Kind::movable, 0, 16)).ok);
  auto v = w.against(w.cma("c", "dma", 4), impl_fail(FailReason::no_memory));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "L1");
}

TEST(ModelCmaAlloc, ImplMovesAreFollowedInOrder) {
  ModelWorld w(kTiny + "area dma base=16 pages=16\n");
  ASSERT_TRUE(w.run(w.alloc("a", Kind::movable, 0, 16)).ok);
  ASSERT_TRUE(w.run(w.alloc("b", Kind::movable, 0, 18)).ok);
  // Both move out of [16, 20); any MOVABLE block of order 4 will do as the first target.
  EXPECT_FALSE(w.against(w.cma("c", "dma", 4), impl_ok(16, {w.move("a", 16, 48), w.move("b", 18, 49)})));
  EXPECT_EQ(w.pfn("a"), 48u);
  EXPECT_EQ(w.pfn("b"), 49u);
  ModelWorld swapped(kTiny + "area dma base=16 pages=16\n");
  ASSERT_TRUE(swapped.run(swapped.alloc("a", Kind::movable, 0, 16)).ok);
  ASSERT_TRUE(swapped.run(swapped.alloc("b", Kind::movable, 0, 18)).ok);
  auto v =
      swapped.against(swapped.cma("c", "dma", 4), impl_ok(16, {swapped.move("b", 18, 48), swapped.move("a", 16, 49)}));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "K2");  // X2: ascending frame order
}

// ---------------------------------------------------------------------------------------
// cma_release (R1, R2)

TEST(ModelCmaRelease, OnlyExactlyOneHandedOutAllocationCanBeReleased) {
  ModelWorld w(kTiny + "area dma base=16 pages=16\narea cam base=32 pages=16\n");
  ASSERT_TRUE(w.run(w.cma("a", "dma", 4)).ok);
  ASSERT_TRUE(w.run(w.cma("b", "cam", 4)).ok);
  ASSERT_TRUE(w.run(w.alloc("m", Kind::movable, 0, 24)).ok);
  EXPECT_EQ(w.run(w.release_raw("dma", 16, 3)).reason, FailReason::not_handed_out);   // part
  EXPECT_EQ(w.run(w.release_raw("dma", 17, 3)).reason, FailReason::not_handed_out);   // part
  EXPECT_EQ(w.run(w.release_raw("cam", 16, 4)).reason, FailReason::not_handed_out);   // other area's
  EXPECT_EQ(w.run(w.release_raw("dma", 20, 4)).reason, FailReason::not_handed_out);   // never handed out
  EXPECT_EQ(w.run(w.release_raw("dma", 24, 1)).reason, FailReason::not_handed_out);   // a movable block
  EXPECT_EQ(w.run(w.release_raw("dma", 999, 1)).reason, FailReason::not_handed_out);  // off the machine
  EXPECT_EQ(w.m->area_stats(w.area("dma")).used, 4u);
  EXPECT_TRUE(w.run(w.release_raw("dma", 16, 4)).ok);
  EXPECT_EQ(raw(w.out.pfn), 16u);
  EXPECT_FALSE(w.m->is_live(w.h("a")));
  EXPECT_EQ(w.m->area_stats(w.area("dma")).used, 0u);
  EXPECT_EQ(w.run(w.release_raw("dma", 16, 4)).reason, FailReason::not_handed_out);  // double release
  EXPECT_TRUE(w.run(w.release("b")).ok);
  EXPECT_EQ(raw(w.out.pfn), 32u);
  EXPECT_EQ(w.m->free_pages(), 63u);
}

// ---------------------------------------------------------------------------------------
// alloc_contig (C1-C3, X1-X5)

TEST(ModelAllocContig, CandidatesStepByCountAndNeverTakeCma) {
  ModelWorld w(kTiny + "area dma base=0 pages=16\n");
  ASSERT_TRUE(w.run(w.alloc("u", Kind::unmovable, 0, 20)).ok);
  ASSERT_TRUE(w.run(w.contig("x", 8)).ok);  // 0 and 8 are CMA, 16 holds u
  EXPECT_EQ(raw(w.out.pfn), 24u);
  EXPECT_EQ(w.out.windows_tried, 4u);
  EXPECT_EQ(w.out.busy_unmovable, 3u);
  EXPECT_EQ(w.m->frame_char(Pfn{24}), 'X');
  EXPECT_TRUE(w.run(w.free_contig("x")).ok);
  EXPECT_EQ(raw(w.out.pfn), 24u);
  EXPECT_EQ(w.m->free_pages(), 63u);
}

TEST(ModelAllocContig, FailureReasons) {
  ModelWorld w(kTiny + "area dma base=0 pages=64\n");
  EXPECT_EQ(w.run(w.contig("x", 0)).reason, FailReason::invalid_request);
  EXPECT_EQ(w.run(w.contig("x", 65)).reason, FailReason::no_window);
  EXPECT_EQ(w.run(w.contig("x", 16)).reason, FailReason::busy);  // every candidate is CMA
  EXPECT_EQ(w.out.windows_tried, 4u);
}

TEST(ModelAllocContig, ABlockStraddlingTheRangeEdgeMovesWhole) {
  ModelWorld w(kTiny);
  ASSERT_TRUE(w.run(w.alloc("m", Kind::movable, 2, 0)).ok);
  ASSERT_TRUE(w.run(w.contig("x", 2)).ok);
  EXPECT_EQ(raw(w.out.pfn), 0u);
  ASSERT_EQ(w.out.moves.size(), 1u);
  EXPECT_EQ(w.out.moves[0].from, Pfn{0});
  EXPECT_GE(w.pfn("m"), 4u);  // outside the isolated pageblock
  EXPECT_TRUE(w.m->memory().is_free(Pfn{2}));
}

TEST(ModelAllocContig, APinnedBlockMakesTheCandidateBusyAndTheNextOneIsTried) {
  ModelWorld w(kTiny);
  ASSERT_TRUE(w.run(w.alloc("m", Kind::movable, 0, 1)).ok);
  ASSERT_TRUE(w.run(w.pin("m")).ok);
  ASSERT_TRUE(w.run(w.contig("x", 4)).ok);
  EXPECT_EQ(raw(w.out.pfn), 4u);
  EXPECT_EQ(w.out.busy_pinned, 1u);
  EXPECT_EQ(w.pfn("m"), 1u);
}

TEST(ModelAllocContig, ImplFailingAFreeCandidateIsL1) {
  ModelWorld w(kTiny);
  auto v = w.against(w.contig("x", 4), impl_fail(FailReason::busy));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "L1");
}

// ---------------------------------------------------------------------------------------
// The model's bookkeeping stays consistent over a long mixed run

TEST(ModelSelfCheck, StaysConsistentOverAMixedRun) {
  ModelWorld w(
      "machine pages=256 pageblock_order=3 max_order=5\narea dma base=64 pages=64 order_per_bit=1\n"
      "area cam base=192 pages=32\n");
  uint64_t s = 12345;
  auto next = [&](uint64_t bound) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return (s >> 33) % bound;
  };
  std::vector<std::string> blocks, cmas, contigs;
  for (int i = 0; i < 1500; ++i) {
    const std::string n = "h" + std::to_string(i);
    switch (next(9)) {
      case 0:
      case 1:
        if (w.run(w.alloc(n, static_cast<Kind>(next(3)), static_cast<uint8_t>(next(4)))).ok) blocks.push_back(n);
        break;
      case 2:
        if (!blocks.empty()) {
          const size_t k = next(blocks.size());
          if (w.run(w.free(blocks[k])).ok) blocks.erase(blocks.begin() + k);
        }
        break;
      case 3:
        if (!blocks.empty()) w.run(w.pin(blocks[next(blocks.size())], next(2)));
        break;
      case 4:
        if (!blocks.empty()) w.run(w.unpin(blocks[next(blocks.size())]));
        break;
      case 5:
        if (!blocks.empty()) w.run(w.migrate(blocks[next(blocks.size())]));
        break;
      case 6:
        if (w.run(w.cma(n, next(2) ? "dma" : "cam", 1 + next(20), static_cast<uint8_t>(next(4)))).ok)
          cmas.push_back(n);
        else if (!cmas.empty()) {
          w.run(w.release(cmas.back()));
          cmas.pop_back();
        }
        break;
      case 7:
        if (w.run(w.contig(n, 1 + next(24))).ok) contigs.push_back(n);
        break;
      case 8:
        if (!contigs.empty()) {
          w.run(w.free_contig(contigs.back()));
          contigs.pop_back();
        }
        break;
    }
    if (::testing::Test::HasFailure()) break;
  }
  for (uint64_t pb = 0; pb < 32; ++pb) {
    const MigrateType t = w.m->memory().pageblock_label(pb);
    const bool in_area = (pb >= 8 && pb < 16) || (pb >= 24 && pb < 28);
    EXPECT_EQ(t == MigrateType::cma, in_area) << pb;  // K3: CMA labels never change
  }
}

// The tests' window into the model's derived tables.
struct model::FreeMemory::Corruptor {
  FreeMemory& m;
  void miscount(MigrateType t, uint8_t order) { ++m.blocks_of_[index(t)][order]; }
};

TEST(ModelSelfCheck, FiresOnADriftedFreeBlockCount) {
  ModelWorld w("machine pages=64 pageblock_order=2 max_order=3\n");
  model::FreeMemory::Corruptor{w.m->memory_for_tests()}.miscount(MigrateType::movable, 1);
  auto e = w.m->self_check();
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("drifted"), std::string::npos) << *e;
}

TEST(ModelSelfCheck, TheCheckerRunsItEveryFewOperations) {
  ParseResult r = parse_trace("machine pages=64 pageblock_order=2 max_order=3\nalloc m kind=movable\nalloc n kind=movable\n");
  ASSERT_TRUE(r.ok());
  RunOptions options;
  options.self_check_every = 2;  // the self-check runs after the second operation
  Session s(r.trace, options);
  ASSERT_TRUE(s.step(0));
  model::FreeMemory::Corruptor{s.model_for_tests()->memory_for_tests()}.miscount(MigrateType::movable, 1);
  EXPECT_FALSE(s.step(1));
  ASSERT_TRUE(s.finding());
  EXPECT_EQ(s.finding()->violation.rule, "self-check");
}

// Q1: the model's self-check sees a frame that is on a page list and free at once.
TEST(ModelPcp, SelfCheckFiresOnAListedFrameThatIsFree) {
  ModelWorld w("machine pages=64 pageblock_order=3 max_order=3 pcp=8\n");
  w.run(w.alloc("a", Kind::movable));
  w.run(Free{w.h("a")});
  EXPECT_EQ(w.m->free_pcp_pages(), 1u);
  EXPECT_EQ(w.m->frame_char(Pfn{0}), 'p');
  w.m->memory_for_tests().set_free(FrameRange{Pfn{0}, PageCount{1}}, true);  // lost from the list's view
  const auto e = w.m->self_check();
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("Q1"), std::string::npos) << *e;
}

// Q3: the model checks impl's pick against the newest entry of the list.
TEST(ModelPcp, AnAllocationNotTakingTheNewestEntryIsK2) {
  ModelWorld w("machine pages=64 pageblock_order=3 max_order=3 pcp=8\n");
  w.run(w.alloc("a", Kind::movable));
  w.run(w.alloc("b", Kind::movable));
  w.run(Free{w.h("a")});
  w.run(Free{w.h("b")});
  Outcome impl;
  impl.ok = true;
  impl.pfn = Pfn{0};  // a's frame: the oldest
  const auto v = w.against(w.alloc("c", Kind::movable), impl);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "K2");
  EXPECT_NE(v->message.find("Q3"), std::string::npos) << v->message;
}

// X2 at its step (concurrency): a move made at an alloc_contig's migrate step, with the
// range isolated, is checked by B4 (K2) and followed; the operation's apply later starts past
// it. A target inside the isolated pageblock, or a block not where impl moved it from, is a
// departure.
TEST(ModelMigrateAtStep, AMoveAtItsStepIsCheckedAndTheOperationSkipsIt) {
  const std::string machine = "machine pages=32 pageblock_order=2 max_order=2 profile=linux-6.12\n";
  const std::vector<Model::PageblockRange> range{{0, 0}};
  {
    ModelWorld w(machine);
    w.run(w.alloc("a", Kind::movable));  // frame 0
    auto v = w.m->migrate_at_step(7, 0, Move{w.h("a"), Pfn{2}, Pfn{4}}, range);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->rule, "K2");
    EXPECT_NE(v->message.find("the model has it at pfn 0"), std::string::npos) << v->message;
    v = w.m->migrate_at_step(7, 0, Move{w.h("a"), Pfn{0}, Pfn{1}}, range);  // into the isolated pageblock
    ASSERT_TRUE(v);
    EXPECT_EQ(v->rule, "K2");
    w.self_check();
  }
  ModelWorld w(machine);
  w.run(w.alloc("a", Kind::movable));
  EXPECT_FALSE(w.m->migrate_at_step(7, 0, Move{w.h("a"), Pfn{0}, Pfn{4}}, range));
  w.self_check();
  EXPECT_EQ(raw(w.m->placement(w.h("a"))->pfn), 4u);
  EXPECT_EQ(w.m->label(Pfn{0}), MigrateType::movable);  // the isolation was the step's only
  Outcome impl;
  impl.ok = true;
  impl.pfn = Pfn{0};
  impl.moves.push_back(Move{w.h("a"), Pfn{0}, Pfn{4}});
  Model copy = *w.m;  // the same state, not told which operation it applies
  w.m->set_operation(7);
  const auto told = w.against(w.contig("x", 4), impl);
  EXPECT_FALSE(told) << told->rule << " " << told->message;
  EXPECT_TRUE(w.out.ok);
  EXPECT_EQ(raw(w.out.pfn), 0u);
  Outcome mine;
  const auto v = copy.apply(AllocContig{w.h("y"), PageCount{4}}, impl, mine);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "K2");  // impl's move is taken as one more, which the model does not make
}

// K1's comparison after every operation fires on each of the per-CPU state it compares: the
// batches (E1) and the page lists (Q2, Q5), which no injected fault reaches before an
// invariant does (docs/concurrency.md). Two observations equal but for one field.
TEST(LockstepComparison, FiresOnTheBatchesAndThePageLists) {
  const Trace t = parse_trace("machine pages=64 pageblock_order=3 max_order=3 pcp=8\n").trace;
  Observation impl, model;
  impl.ok = model.ok = true;
  std::optional<Pfn> where;
  EXPECT_EQ(observation_difference(impl, model, t, where), "");
  auto differs = [&](auto&& change) {
    Observation m = model;
    change(m);
    return observation_difference(impl, m, t, where);
  };
  EXPECT_NE(differs([](Observation& o) { o.batched = 1; }).find("batched (E1)"), std::string::npos);
  EXPECT_NE(differs([](Observation& o) { o.batches = {batch_entry(1, Batch::mlock, HandleId{3})}; }).find("(E1)"),
            std::string::npos);
  EXPECT_NE(differs([](Observation& o) { o.free_pcp = 2; }).find("free_pcp (Q5)"), std::string::npos);
  EXPECT_NE(differs([](Observation& o) { o.pcp = {pcp_entry(0, MigrateType::movable, Order{0}, Pfn{5})}; }).find("(Q2)"),
            std::string::npos);
}
