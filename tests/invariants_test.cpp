// Every invariant check of impl/ fires on a deliberately corrupted state (section 8).
#include <gtest/gtest.h>

#include "impl/allocator.h"
#include "trace/parse.h"

using namespace cmacheck;
using impl::Allocator;
using impl::CheckTier;

// The tests' window into the allocator's private state.
struct Allocator::Corruptor {
  Allocator& a;
  uint32_t slot(HandleId h) { return a.slot_of(h); }
  Allocation& rec(HandleId h) { return a.rec(slot(h)); }
  void lose_free_frame(uint64_t pfn) {
    a.list_del(pfn);
    a.allocated_pages_ += 1;  // keep the counters balanced so the walk must find it
  }
  void split_without_merge(uint64_t head) {
    const uint8_t o = a.free_order_[head];
    const MigrateType list = a.list_type_[head];
    a.list_del(head);
    a.list_add(head, static_cast<uint8_t>(o - 1), list);
    a.list_add(head + (uint64_t{1} << (o - 1)), static_cast<uint8_t>(o - 1), list);
  }
  void set_owner(uint64_t pfn, uint32_t slot) { a.owner_[pfn] = slot; }
  void set_bit(size_t area, uint64_t bit) { a.areas_[area].bits[bit >> 6] |= uint64_t{1} << (bit & 63); }
  void relabel(uint64_t pb, MigrateType t) { a.relabel(pb, t); }
  void flip_content(uint64_t pfn) { a.content_[pfn] ^= 1; }
  void isolate_count() { a.isolated_pageblocks_ = 1; }
  void drift_free_cma() { a.free_cma_pages_ += 1; }
  void touch(HandleId h) { a.touched().push_back(h); }
  void lru_disabled(uint32_t n) { a.lru_disabled_ = n; }
  void off_lru(HandleId h) { rec(h).off_lru = true; }
  void batch_ref(uint8_t cpu, HandleId h, bool count_it) {
    a.cpu_ctx_[cpu].batches[0].push_back(slot(h));
    if (count_it) ++rec(h).batch_refs;
  }
  // A page-list entry that nothing else knows of (count_it: the CPU's and the total counts
  // include it).
  void pcp_entry(uint8_t cpu, uint64_t pfn, MigrateType list, bool count_it) {
    a.cpu_ctx_[cpu].pcp.push_back(PcpEntry{pfn, 0, list, list});
    if (count_it) ++a.cpu_ctx_[cpu].pcp_pages, ++a.pcp_pages_;
  }
  void relist_pcp(uint8_t cpu, size_t i, MigrateType list) { a.cpu_ctx_[cpu].pcp[i].list = list; }
  void set_pcp_high(uint16_t high) { a.machine_.pcp_high = high; }
  void set_label_only(uint64_t pb, MigrateType t) { a.labels_[pb] = t; }  // no list or count follows
  void reshape_pcp(uint8_t cpu, size_t i, uint8_t order) { a.cpu_ctx_[cpu].pcp[i].order = order; }
  void uncount_free(uint64_t n) { a.free_pages_ -= n; }
  void fill_batch(uint8_t cpu, HandleId h, size_t n) {
    for (size_t i = 0; i < n; ++i) batch_ref(cpu, h, true);
  }
};

namespace {

struct Fixture {
  Trace t;
  std::unique_ptr<Allocator> a;
  Outcome out;
  Fixture() {
    t = parse_trace("machine pages=256 pageblock_order=4 max_order=6\narea dma base=64 pages=64\n").trace;
    a = std::make_unique<Allocator>(t.machine, t.areas);
    run(Alloc{t.intern_handle("m"), Kind::movable, Order{2}, Pfn{0}});
    run(Alloc{t.intern_handle("u"), Kind::unmovable, Order{0}, Pfn{128}});
    run(CmaAlloc{t.intern_handle("c"), AreaId{0}, PageCount{8}, Order{0}});
    EXPECT_FALSE(a->check_invariants(CheckTier::full));
  }
  void run(const Op& op) { a->apply(op, out); }
  HandleId h(const char* n) { return t.intern_handle(n); }
  Allocator::Corruptor corrupt() { return Allocator::Corruptor{*a}; }
  std::string fired(CheckTier tier = CheckTier::full) {
    auto v = a->check_invariants(tier);
    return v ? v->rule : "none";
  }
};

}  // namespace

TEST(Invariants, HoldOnAHealthyState) {
  Fixture f;
  EXPECT_EQ(f.fired(), "none");
}

TEST(Invariants, I1FiresOnALostFrame) {
  Fixture f;
  f.corrupt().lose_free_frame(4);  // frames 4..7 are a free order-2 block beside m
  EXPECT_EQ(f.fired(), "I1");
}

TEST(Invariants, I1CheapTierFiresWhenCountersDoNotAddUp) {
  Fixture f;
  f.corrupt().lose_free_frame(4);
  EXPECT_EQ(f.fired(CheckTier::cheap), "I1");
}

TEST(Invariants, I2FiresOnUnmergedBuddies) {
  Fixture f;
  f.corrupt().split_without_merge(4);
  EXPECT_EQ(f.fired(), "I2");
}

TEST(Invariants, I3FiresOnOverlap) {
  Fixture f;
  auto c = f.corrupt();
  c.set_owner(1, c.slot(f.h("u")));  // frame 1 of m now claims to be u's
  EXPECT_EQ(f.fired(), "I3");
}

TEST(Invariants, I4FiresOnAMisalignedBlock) {
  Fixture f;
  auto c = f.corrupt();
  c.rec(f.h("m")).pfn = Pfn{1};
  c.touch(f.h("m"));
  EXPECT_EQ(f.fired(CheckTier::cheap), "I4");
}

TEST(Invariants, I5FiresOnABitWithNoAllocation) {
  Fixture f;
  f.corrupt().set_bit(0, 40);
  EXPECT_EQ(f.fired(), "I5");
}

TEST(Invariants, I6FiresOnUnmovableInCma) {
  Fixture f;
  f.corrupt().relabel(128 >> 4, MigrateType::cma);  // u's pageblock
  EXPECT_EQ(f.fired(), "I6");
}

TEST(Invariants, I7FiresOnAnIsolatedPageblockBetweenOperations) {
  Fixture f;
  f.corrupt().isolate_count();
  EXPECT_EQ(f.fired(CheckTier::cheap), "I7");
}

TEST(Invariants, I7FiresOnAPageblockRelabelledOutOfItsArea) {
  Fixture f;
  f.corrupt().relabel(240 >> 4, MigrateType::cma);  // the tail of the free block 192..255
  EXPECT_EQ(f.fired(), "I7");
}

TEST(Invariants, I8FiresOnLostContent) {
  Fixture f;
  auto c = f.corrupt();
  c.flip_content(2);
  c.touch(f.h("m"));
  EXPECT_EQ(f.fired(CheckTier::cheap), "I8");
}

TEST(Invariants, I12FiresOnLruCacheDisableLeftInForce) {
  Fixture f;
  f.corrupt().lru_disabled(1);
  EXPECT_EQ(f.fired(CheckTier::cheap), "I12");
}

TEST(Invariants, I12FiresOnABlockLeftOffTheLruBetweenOperations) {
  Fixture f;
  f.corrupt().off_lru(f.h("m"));  // as if a migration in flight had taken it (X2's lru_isolate)
  EXPECT_FALSE(f.a->check_invariants(CheckTier::full, /*quiescent=*/false));
  EXPECT_EQ(f.fired(), "I12");
}

TEST(Invariants, I13HoldsForATouchedBlockAndFiresOnACountThatDisagrees) {
  Fixture f;
  f.run(Alloc{f.h("p"), Kind::movable, Order{0}, Pfn{8}});
  f.run(Touch{f.h("p"), Batch::mlock});
  EXPECT_EQ(f.a->batched(), 1u);
  EXPECT_EQ(f.fired(), "none");
  f.corrupt().batch_ref(1, f.h("p"), false);  // a reference the block does not count
  EXPECT_EQ(f.fired(CheckTier::cheap), "I13");
}

TEST(Invariants, I13FiresOnAReferenceToALargeFolio) {
  Fixture f;
  f.corrupt().batch_ref(0, f.h("m"), true);  // m is of order 2: never kept in a batch (E1)
  EXPECT_EQ(f.fired(CheckTier::cheap), "I13");
}

TEST(Invariants, I13FiresOnAFullBatchAndOnReferencesUnderLruCacheDisable) {
  Fixture f;
  f.run(Alloc{f.h("p"), Kind::movable, Order{0}, Pfn{8}});
  f.corrupt().fill_batch(2, f.h("p"), batch_capacity(Profile::linux_6_1));
  EXPECT_EQ(f.fired(CheckTier::cheap), "I13");
  Fixture g;
  g.run(Alloc{g.h("p"), Kind::movable, Order{0}, Pfn{8}});
  g.run(Touch{g.h("p"), Batch::lru});
  g.corrupt().lru_disabled(1);
  EXPECT_EQ(g.fired(CheckTier::cheap), "I12");
  auto v = g.a->check_invariants(CheckTier::cheap, /*quiescent=*/false);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "I13");
}

namespace {

// Q1-Q5: a machine with page lists (high 8), a CMA frame and a movable one parked on CPU 0's.
struct PcpFixture {
  Trace t = parse_trace("machine pages=64 pageblock_order=3 max_order=3 pcp=8\narea dma base=32 pages=32\n").trace;
  Allocator a{t.machine, t.areas};
  Outcome out;
  PcpFixture() {
    a.apply(Alloc{t.intern_handle("x"), Kind::movable, Order{0}, Pfn{40}}, out);
    a.apply(Alloc{t.intern_handle("y"), Kind::movable, Order{0}, Pfn{1}}, out);
    a.apply(Free{t.intern_handle("x")}, out);
    a.apply(Free{t.intern_handle("y")}, out);
    EXPECT_EQ(a.free_pcp_pages(), 2u);
    EXPECT_FALSE(a.check_invariants(CheckTier::full));
  }
  std::string fired(CheckTier tier = CheckTier::full) {
    auto v = a.check_invariants(tier);
    return v ? v->rule : "none";
  }
};

}  // namespace

TEST(Invariants, I14FiresOnAPageListCountThatDrifted) {
  PcpFixture f;
  Allocator::Corruptor{f.a}.pcp_entry(1, 8, MigrateType::movable, false);  // CPU 1 does not count it
  EXPECT_EQ(f.fired(CheckTier::cheap), "I14");
}

TEST(Invariants, I14FiresOnACmaFrameOffTheMovableList) {
  PcpFixture f;
  Allocator::Corruptor{f.a}.relist_pcp(0, 0, MigrateType::unmovable);  // x's frame 40 is CMA (Q2)
  EXPECT_EQ(f.fired(CheckTier::cheap), "I14");
}

TEST(Invariants, I14FiresOnAListOfATypeWithoutOne) {
  PcpFixture f;
  Allocator::Corruptor{f.a}.relist_pcp(0, 1, MigrateType::isolate);  // y's frame 1: no ISOLATE list (Q2)
  EXPECT_EQ(f.fired(CheckTier::cheap), "I14");
}

TEST(Invariants, I14FiresOnAnIsolatedFrameOnAListBetweenOperations) {
  PcpFixture f;
  Allocator::Corruptor{f.a}.set_label_only(0, MigrateType::isolate);  // y's frame 1 sits in pageblock 0
  EXPECT_FALSE(f.a.check_invariants(CheckTier::cheap, /*quiescent=*/false));  // in flight: allowed
  EXPECT_EQ(f.fired(CheckTier::cheap), "I14");
}

TEST(Invariants, I14FiresOnAnEntryLargerThanTheListsTake) {
  PcpFixture f;
  Allocator::Corruptor{f.a}.reshape_pcp(0, 1, 4);  // order 4 > PAGE_ALLOC_COSTLY_ORDER
  EXPECT_EQ(f.fired(CheckTier::cheap), "I14");
}

TEST(Invariants, I14FiresOnListsThatReachedHighUnflushed) {
  PcpFixture f;
  Allocator::Corruptor{f.a}.set_pcp_high(2);  // the two parked pages now reach high (Q2)
  EXPECT_EQ(f.fired(CheckTier::cheap), "I14");
}

TEST(Invariants, I1FiresOnAFrameFreeAndOnAPageList) {
  PcpFixture f;
  Allocator::Corruptor c{f.a};
  c.pcp_entry(0, 16, MigrateType::movable, true);  // frame 16 is still in a free block
  c.uncount_free(1);                                // counters balanced: only the walk can see it
  const auto v = f.a.check_invariants(CheckTier::full);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "I1");
  EXPECT_NE(v->message.find("page list"), std::string::npos) << v->message;
}

TEST(Invariants, I9FiresOnACounterThatDrifted) {
  Fixture f;
  f.corrupt().drift_free_cma();
  EXPECT_EQ(f.fired(), "I9");
}

TEST(Invariants, I10FiresWhenAFailedOperationChangedSomething) {
  Fixture f;
  auto before = f.a->snapshot();
  f.run(Free{f.h("m")});  // succeeds, but pretend it failed: the state changed
  Outcome failed;
  auto v = f.a->check_unchanged(before, failed);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "I10");
}

TEST(Invariants, I10AllowsTheMovesAFailedWindowReports) {
  // A6/X2: a failed cma_alloc may leave movable pages moved; that is not a violation.
  Trace t = parse_trace("machine pages=256 pageblock_order=4 max_order=6\narea dma base=64 pages=64\n").trace;
  Allocator a(t.machine, t.areas);
  Outcome out;
  a.apply(Alloc{t.intern_handle("m"), Kind::movable, Order{0}, Pfn{64}}, out);
  a.apply(Alloc{t.intern_handle("p"), Kind::movable, Order{0}, Pfn{127}}, out);
  a.apply(Pin{t.intern_handle("p"), false}, out);
  auto before = a.snapshot();
  a.apply(CmaAlloc{t.intern_handle("c"), AreaId{0}, PageCount{64}, Order{0}}, out);
  ASSERT_FALSE(out.ok);
  ASSERT_EQ(out.moves.size(), 1u);
  EXPECT_FALSE(a.check_unchanged(before, out));
}

TEST(Invariants, I10AllowsAFailedAllocContigToUndoPageblocksToMovableOnly) {
  // X5 (revision 2): a failed alloc_contig gives every pageblock it isolated the caller's
  // type, MOVABLE. Any other relabel by a failed operation is a violation.
  Fixture f;
  Outcome contig_failed;
  contig_failed.windows_tried = 3;
  auto before = f.a->snapshot();  // pageblock 8 (frames 128..143) is UNMOVABLE: u claimed it
  f.corrupt().relabel(8, MigrateType::reclaimable);
  auto v = f.a->check_unchanged(before, contig_failed);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "I10");  // RECLAIMABLE is not the caller's type
  f.corrupt().relabel(8, MigrateType::movable);
  EXPECT_FALSE(f.a->check_unchanged(before, contig_failed));
  Outcome unpin_failed;  // no window tried, no move: no relabel allowed
  v = f.a->check_unchanged(before, unpin_failed);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "I10");
}
