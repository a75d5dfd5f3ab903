// `cmacheck explore`: the canonical state hashes, deduplication against the plain search,
// determinism on any number of threads, shortest counterexamples, exhaustion.
#include "explore/explore.h"

#include <gtest/gtest.h>

#include <array>
#include <set>
#include <sstream>

#include "check/concurrent.h"
#include "impl/allocator.h"
#include "model/model.h"
#include "trace/parse.h"
#include "trace/print.h"

namespace cmacheck::explore {
namespace {

World world(const std::string& text, uint32_t max_pins = 2) {
  World w;
  std::ostringstream err;
  EXPECT_TRUE(world_from_text("test", text, max_pins, w, err)) << err.str();
  return w;
}

World named(const std::string& name) {
  World w;
  std::ostringstream err;
  EXPECT_TRUE(load_world(name, w, err)) << err.str();
  return w;
}

// 8 frames in 4 pageblocks, max order 2, a 4-frame area at frame 2 with order_per_bit 1.
const char* const kEight =
    "machine pages=8 pageblock_order=1 max_order=2\n"
    "area dma base=2 pages=4 order_per_bit=1\n";
// 4 frames in 2 pageblocks, the second a CMA area: small enough for the search without
// deduplication at depth 3.
const char* const kFour =
    "machine pages=4 pageblock_order=1 max_order=1\n"
    "area dma base=2 pages=2\n";

// The state after a trace's operations, as explore sees it: impl's hash and the model's.
struct Hashes {
  uint64_t impl = 0, model = 0;
};
Hashes hashes_after(const std::string& text, impl::FaultSet faults = {}) {
  ParseResult p = parse_trace(text);
  EXPECT_TRUE(p.ok()) << (p.error ? p.error->message : "");
  Session s(p.trace, run_options(faults));
  for (size_t i = 0; i < p.trace.statements.size(); ++i) EXPECT_TRUE(s.step(i)) << text;
  return {s.impl().state_hash(), s.model()->state_hash()};
}

TEST(StateHash, EqualStatesHashEqualWhateverTheHandlesAndStamps) {
  const std::string head = "machine pages=16 pageblock_order=1 max_order=2\narea dma base=8 pages=8\n";
  // The same allocations made in another order, under other names: other serial numbers
  // (M5 stamps), other handle numbers, other allocation slots; the same frames and lists.
  const Hashes a = hashes_after(head + "alloc a kind=unmovable at=0\nalloc b kind=movable at=2\n");
  const Hashes b = hashes_after(head + "alloc zz kind=movable at=2\nalloc y kind=unmovable at=0\n");
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.impl, b.impl);
  // A handle freed and bound again, against a fresh one.
  const Hashes c = hashes_after(head + "alloc a kind=movable at=4\nfree a\nalloc a kind=movable at=2\n");
  const Hashes d = hashes_after(head + "alloc q kind=movable at=2\n");
  EXPECT_EQ(c.model, d.model);
  EXPECT_EQ(c.impl, d.impl);
  // A cma allocation made with another alignment, at the same frame.
  const Hashes e = hashes_after(head + "cma_alloc c area=dma count=2 align=3\n");
  const Hashes f = hashes_after(head + "cma_alloc c area=dma count=2\n");
  EXPECT_EQ(e.model, f.model);
  EXPECT_EQ(e.impl, f.impl);
}

TEST(StateHash, DifferentStatesHashDifferently) {
  const std::string head = "machine pages=16 pageblock_order=1 max_order=2\narea dma base=8 pages=8\n";
  const std::string two = head + "alloc a kind=movable at=4\nalloc b kind=movable at=6\n";
  const Hashes base = hashes_after(two);
  // A pin, a long-term pin, another kind, another frame, a cma allocation: both sides.
  for (const std::string& other :
       {two + "pin a\n", two + "pin a longterm\n", head + "alloc a kind=reclaimable at=4\nalloc b kind=movable at=6\n",
        head + "alloc a kind=movable at=4\nalloc b kind=movable at=7\n", two + "cma_alloc c area=dma count=1\n"}) {
    const Hashes h = hashes_after(other);
    EXPECT_NE(base.impl, h.impl) << other;
    EXPECT_NE(base.model, h.model) << other;
  }
  // The same free blocks in another list order (B6): the next request takes another block,
  // so impl's states differ; the model keeps no lists.
  const std::string four = head + "alloc a kind=movable at=4\nalloc b kind=movable at=5\n"
                                  "alloc c kind=movable at=6\nalloc d kind=movable at=7\n";
  const Hashes ab = hashes_after(four + "free a\nfree c\n");
  const Hashes ba = hashes_after(four + "free c\nfree a\n");
  EXPECT_EQ(ab.model, ba.model);
  EXPECT_NE(ab.impl, ba.impl);
}

// linux-6.1 (B10, B12): a merge changes no label, and the merged block goes on the list of
// the block freed last. Freeing p (UNMOVABLE) and m (MOVABLE) in either order leaves the same
// frames, labels and contents, with [0, 4) on the UNMOVABLE list or on the MOVABLE one: two
// states, which the next unmovable request tells apart (B8 takes a block from its own list
// first). Both hashes must see it.
TEST(StateHash, LinuxSixOneListsAreState) {
  const std::string head =
      "machine pages=8 pageblock_order=1 max_order=2 profile=linux-6.1\n"
      "alloc p kind=unmovable order=1\nalloc big kind=movable order=2\nalloc m kind=movable order=1\n"
      "expect label@0=unmovable label@2=movable\n";
  const Hashes m_last = hashes_after(head + "free p\nfree m\n");
  const Hashes p_last = hashes_after(head + "free m\nfree p\n");
  EXPECT_NE(m_last.model, p_last.model);
  EXPECT_NE(m_last.impl, p_last.impl);
  // ... and the lists are all that differs: the labels are those of the setup.
  for (const char* order : {"free p\nfree m\n", "free m\nfree p\n"}) {
    ParseResult p = parse_trace(head + order + "expect label@0=unmovable label@2=movable\n");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(run_trace(p.trace, run_options({})).status, RunStatus::ok) << order;
  }
  // The first order reached again under other names and stamps hashes as before.
  const std::string renamed =
      "machine pages=8 pageblock_order=1 max_order=2 profile=linux-6.1\n"
      "alloc q kind=unmovable order=1\nalloc b kind=movable order=2\nalloc n kind=movable order=1\n"
      "free q\nfree n\n";
  EXPECT_EQ(hashes_after(renamed).model, m_last.model);
  EXPECT_EQ(hashes_after(renamed).impl, m_last.impl);
}

// E1-E4: the batches are state (a reference in one makes a migration drain first, and D16
// tells the lru batch from the others), named by the block's first frame and sorted, so
// the order of the touches and the handle names do not count.
TEST(StateHash, TheBatchesAreStateInAnyOrderOfTouching) {
  const std::string head = "machine pages=16 pageblock_order=1 max_order=2\narea dma base=8 pages=8\n"
                           "alloc a kind=movable at=8\nalloc b kind=movable at=9\n";
  const Hashes none = hashes_after(head);
  const Hashes lru = hashes_after(head + "touch a\n");
  const Hashes mlock = hashes_after(head + "touch a batch=mlock\n");
  const Hashes activate = hashes_after(head + "touch a batch=activate\n");
  const Hashes other_block = hashes_after(head + "touch b batch=mlock\n");
  const Hashes twice = hashes_after(head + "touch a batch=mlock\ntouch a batch=mlock\n");
  const std::vector<Hashes> all = {none, lru, mlock, activate, other_block, twice};
  for (size_t i = 0; i < all.size(); ++i)
    for (size_t j = i + 1; j < all.size(); ++j) {
      EXPECT_NE(all[i].impl, all[j].impl) << i << " " << j;
      EXPECT_NE(all[i].model, all[j].model) << i << " " << j;
    }
  // The same references added in another order, under other names: one state.
  const Hashes ab = hashes_after(head + "touch a\ntouch b\ntouch a\n");
  const Hashes ba = hashes_after(
      "machine pages=16 pageblock_order=1 max_order=2\narea dma base=8 pages=8\n"
      "alloc y kind=movable at=9\nalloc x kind=movable at=8\ntouch y\ntouch x\ntouch x\n");
  EXPECT_EQ(ab.impl, ba.impl);
  EXPECT_EQ(ab.model, ba.model);
  // Drained (E2), or the block freed and made again (E4): as if never touched.
  const Hashes drained = hashes_after(head + "touch a batch=mlock\ntouch b\nlru_drain\n");
  EXPECT_EQ(drained.impl, none.impl);
  EXPECT_EQ(drained.model, none.model);
  const Hashes refreed = hashes_after(head + "touch a batch=activate\nfree a\nalloc a kind=movable at=8\n");
  EXPECT_EQ(refreed.impl, none.impl);
  EXPECT_EQ(refreed.model, none.model);
}

TEST(StateHash, TheProfileIsState) {
  const std::string ops = "alloc a kind=movable at=4\nalloc b kind=unmovable\n";
  const Hashes six_one = hashes_after("machine pages=16 pageblock_order=1 max_order=2 profile=linux-6.1\n" + ops);
  const Hashes six_twelve = hashes_after("machine pages=16 pageblock_order=1 max_order=2 profile=linux-6.12\n" + ops);
  EXPECT_NE(six_one.impl, six_twelve.impl);
  EXPECT_NE(six_one.model, six_twelve.model);
}

// Without deduplication every sequence is run; with it, each state once. Both must find the
// first violation at the same depth and count the same distinct states at every depth.
TEST(Dedup, FindsWhatThePlainSearchFindsAtTheSameDepth) {
  // Found at depths 2 and 3 (D16's pin_drains_only_off_lru needs a touch: the batches are
  // state), and some this world cannot show (its area is too small); under each kernel
  // profile (linux-6.1's lists are state of their own, B10).
  const std::vector<std::pair<Profile, std::vector<const char*>>> cases = {
      {Profile::linux_6_1,
       {"", "release_one_chunk_short", "migration_drops_content", "keep_bits_after_busy", "busy_resume_past_window",
        "leave_isolated_on_failure", "longterm_stays_in_cma", "pin_drains_only_off_lru"}},
      {Profile::linux_6_12,
       {"", "migration_drops_content", "keep_bits_after_busy", "leave_isolated_on_failure", "pin_drains_only_off_lru"}},
  };
  for (const auto& [profile, faults] : cases)
    for (const char* fault : faults) {
      World w = world(kFour);
      w.trace.machine.profile = profile;
      const std::string what = std::string(name(profile)) + " " + fault;
      Options with, without;
      with.depth = without.depth = 3;
      without.dedup = false;
      if (*fault) with.faults.add(*impl::fault_by_name(fault)), without.faults.add(*impl::fault_by_name(fault));
      const Result a = explore(w, with), b = explore(w, without);
      ASSERT_TRUE(a.error.empty() && b.error.empty()) << a.error << b.error;
      ASSERT_EQ(a.violation.has_value(), b.violation.has_value()) << what;
      if (a.violation) {
        EXPECT_EQ(a.violation->depth, b.violation->depth) << what;
      } else {
        ASSERT_EQ(a.levels.size(), b.levels.size()) << what;
        for (size_t d = 0; d < a.levels.size(); ++d) EXPECT_EQ(a.levels[d].states, b.levels[d].states) << what << d;
        EXPECT_GT(b.sequences, 2 * a.sequences) << "the plain search should run many more sequences";
      }
    }
}

TEST(Explore, SameResultOnAnyNumberOfThreads) {
  struct Case {
    const char* world;
    Profile profile;
    const char* fault;
  };
  for (const Case& c : {Case{kEight, Profile::linux_6_1, ""}, Case{kEight, Profile::linux_6_12, "keep_bits_after_busy"},
                        Case{kFour, Profile::linux_6_12, ""}}) {
    World w = world(c.world);
    w.trace.machine.profile = c.profile;
    const std::string what = std::string(name(c.profile)) + " " + c.fault;
    std::vector<std::string> texts;
    std::vector<std::vector<uint64_t>> states;
    for (unsigned jobs : {1u, 2u, 3u}) {
      Options o;
      o.depth = 3;
      o.jobs = jobs;
      if (*c.fault) o.faults.add(*impl::fault_by_name(c.fault));
      const Result r = explore(w, o);
      ASSERT_TRUE(r.error.empty()) << r.error;
      texts.push_back(r.violation ? print_trace(r.violation->trace) + r.violation->finding.report : "");
      states.emplace_back();
      for (const Level& l : r.levels) states.back().push_back(l.states), states.back().push_back(l.sequences);
    }
    EXPECT_EQ(*c.fault != 0, !texts[0].empty()) << what;
    EXPECT_EQ(texts[0], texts[1]) << what;
    EXPECT_EQ(texts[0], texts[2]) << what;
    EXPECT_EQ(states[0], states[1]) << what;
    EXPECT_EQ(states[0], states[2]) << what;
  }
}

// keep_bits_after_busy needs a busy window: a pinned movable page in the area (an alloc and
// a pin) and a cma_alloc over it, so no sequence shorter than 3 shows it.
TEST(Explore, FindsAFaultAtItsShortestDepth) {
  const World w = world(kEight);
  Options o;
  o.faults.add(impl::Fault::keep_bits_after_busy);
  o.depth = 2;
  EXPECT_FALSE(explore(w, o).violation);
  o.depth = 5;
  const Result r = explore(w, o);
  ASSERT_TRUE(r.violation) << r.error;
  EXPECT_EQ(r.violation->depth, 3u);
  EXPECT_EQ(r.violation->trace.statements.size(), 3u);
  EXPECT_EQ(r.levels.size(), 4u) << "the search stops at the level of the violation";
  // The counterexample is a trace that replays to the same finding, and passes without the fault.
  const ParseResult p = parse_trace(counterexample_text(w, o, r));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(run_trace(p.trace, run_options(o.faults)).status, RunStatus::violation);
  EXPECT_EQ(run_trace(p.trace, run_options({})).status, RunStatus::ok);
}

TEST(Explore, AViolationOfTheWorldItselfHasDepthZero) {
  Options o;
  o.faults.add(impl::Fault::maxchunk_off_by_one);
  const Result r = explore(named("small"), o);
  ASSERT_TRUE(r.violation);
  EXPECT_EQ(r.violation->depth, 0u);
  EXPECT_EQ(r.violation->finding.violation.rule, "I9");
}

TEST(Explore, SmallWorldsAreExhausted) {
  Options o;
  o.depth = 4;
  // With the batches (touch in each batch, at most one reference a block, and lru_drain):
  // tiny's block can be in any of the three batches, or none, pinned or not.
  const Result tiny = explore(named("tiny"), o);
  EXPECT_TRUE(tiny.exhausted);
  EXPECT_FALSE(tiny.violation);
  EXPECT_EQ(tiny.states, 22u);
  o.depth = 10;
  const Result pair = explore(named("pair"), o);
  EXPECT_TRUE(pair.exhausted);
  EXPECT_EQ(pair.states, 340u);
  o.depth = 7;
  const Result short_of_it = explore(named("pair"), o);
  EXPECT_FALSE(short_of_it.exhausted) << "pair needs 8 operations to reach every state";
  EXPECT_TRUE(short_of_it.complete);
  EXPECT_EQ(short_of_it.levels.size(), 8u);
  // Without the batch operations, the counts of before they existed.
  o.ops = kAllOps & ~kBatchOps;
  EXPECT_EQ(explore(named("tiny"), o).states, 13u);
  EXPECT_EQ(explore(named("pair"), o).states, 64u);
}

// D16 (pin_drains_only_off_lru): a long-term pin of a small CMA page drained the batches
// only when the page was in an lru batch, so a reference in the activate or mlock batch
// kept it from leaving CMA. The shortest sequence: alloc in the area, touch (activate or
// mlock), pin longterm. Only the batch operations show it.
TEST(Explore, FindsPinDrainsOnlyOffLruWithATouch) {
  for (Profile profile : {Profile::linux_6_1, Profile::linux_6_12}) {
    World w = world(kFour);
    w.trace.machine.profile = profile;
    Options o;
    o.faults.add(impl::Fault::pin_drains_only_off_lru);
    o.depth = 2;
    EXPECT_FALSE(explore(w, o).violation) << name(profile);
    o.depth = 4;
    const Result r = explore(w, o);
    ASSERT_TRUE(r.violation) << name(profile) << r.error;
    EXPECT_EQ(r.violation->depth, 3u) << name(profile);
    const auto& st = r.violation->trace.statements;
    ASSERT_EQ(st.size(), 3u);
    const Op* second = std::get_if<Op>(&st[1].body);
    const Op* third = std::get_if<Op>(&st[2].body);
    ASSERT_TRUE(second && third);
    const Touch* touch = std::get_if<Touch>(second);
    ASSERT_TRUE(touch) << print_trace(r.violation->trace);
    EXPECT_NE(touch->batch, Batch::lru);
    const Pin* pin = std::get_if<Pin>(third);
    EXPECT_TRUE(pin && pin->longterm) << print_trace(r.violation->trace);
    const ParseResult p = parse_trace(counterexample_text(w, o, r));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(run_trace(p.trace, run_options(o.faults)).status, RunStatus::violation);
    EXPECT_EQ(run_trace(p.trace, run_options({})).status, RunStatus::ok);
    // With the lru batch alone it takes one operation more: another page's reference, which
    // the faulty pin leaves in its batch (K1 on `batched`). Without touch, nothing to find.
    o.ops = kAllOps & ~(OpClassSet{1} << static_cast<unsigned>(OpClass::touch_activate)) &
            ~(OpClassSet{1} << static_cast<unsigned>(OpClass::touch_mlock));
    const Result lru_only = explore(w, o);
    ASSERT_TRUE(lru_only.violation) << name(profile);
    EXPECT_EQ(lru_only.violation->depth, 4u) << name(profile);
    o.ops = kAllOps & ~kBatchOps;
    EXPECT_FALSE(explore(w, o).violation) << name(profile);
  }
}

TEST(Explore, TheAlphabetCanBeRestricted) {
  Options all, allocs;
  all.depth = allocs.depth = 2;
  allocs.ops = OpClassSet{1} << static_cast<unsigned>(OpClass::alloc);
  const World w = world(kEight);
  const Result a = explore(w, all), b = explore(w, allocs);
  EXPECT_LT(b.states, a.states);
  EXPECT_EQ(b.levels[1].sequences, 3u * (w.trace.machine.max_order + 2)) << "every kind and order, one past max_order";
}

TEST(Explore, ASetupRunsFirst) {
  // The world's own operations are its setup; the search starts after them.
  const World w = world(std::string(kEight) + "alloc p kind=movable at=2\npin p\n", 1);
  Options o;
  o.depth = 1;
  o.faults.add(impl::Fault::keep_bits_after_busy);
  const Result r = explore(w, o);
  ASSERT_TRUE(r.violation) << r.error;
  EXPECT_EQ(r.violation->depth, 1u);
  EXPECT_EQ(r.violation->trace.statements.size(), 3u);
}

// Q2 in the world small-pcp: a small block freed into an isolated pageblock must bypass the
// page lists; the fault parks it there and the window is busy (K1), at depth 2.
TEST(Explore, FindsAnIsolatedFreeParkedOnAPageListInSmallPcp) {
  Options o;
  o.faults.add(impl::Fault::isolated_free_parks_on_pcp);
  o.depth = 2;
  const Result r = explore(named("small-pcp"), o);
  ASSERT_TRUE(r.violation) << r.error;
  EXPECT_EQ(r.violation->depth, 2u);
  Options clean;
  clean.depth = 2;
  EXPECT_FALSE(explore(named("small-pcp"), clean).violation);
  EXPECT_FALSE(explore(named("small"), o).violation);  // no page lists there: nothing to find
}

}  // namespace
}  // namespace cmacheck::explore

namespace cmacheck::explore {
namespace {

// ---- Concurrent programs under a preemption bound (--cpus, docs/explore.md) -------------

OpClassSet only(std::initializer_list<OpClass> classes) {
  OpClassSet s = 0;
  for (OpClass c : classes) s |= OpClassSet{1} << static_cast<unsigned>(c);
  return s;
}

TEST(Interleavings, FindCmaMutexMissingWithOnePreemptionNotWithNone) {
  const World w = named("duo");
  InterleavingOptions o;
  o.ops = only({OpClass::cma_alloc});
  o.faults.add(impl::Fault::no_cma_mutex);
  o.preemptions = 0;
  const InterleavingResult none = explore_interleavings(w, o);
  ASSERT_TRUE(none.error.empty()) << none.error;
  EXPECT_FALSE(none.violation) << "D18 needs one cma_alloc preempted inside its isolation";
  EXPECT_TRUE(none.complete);
  o.preemptions = 1;
  const InterleavingResult r = explore_interleavings(w, o);
  ASSERT_TRUE(r.violation) << r.error;
  EXPECT_EQ(r.violation->preemptions, 1u);
  EXPECT_EQ(r.violation->operations, 2u);
  EXPECT_EQ(r.violation->finding.violation.rule, "W2");
  // The counterexample is an ordinary concurrent trace: its switch lines replay the schedule.
  const ParseResult p = parse_trace(interleaving_counterexample_text(w, o, r));
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p.trace.switches.empty());
  ConcurrentOptions replay;
  replay.faults = o.faults;
  const ConcurrentResult again = run_concurrent(p.trace, replay);
  ASSERT_EQ(again.status, RunStatus::violation);
  EXPECT_EQ(again.finding->violation.rule, "W2");
  EXPECT_EQ(run_concurrent(p.trace, ConcurrentOptions{}).status, RunStatus::ok);
}

TEST(Interleavings, TheCorrectBuildHoldsInDuoLiveWithinOnePreemption) {
  // A movable page in the area to migrate, pin long-term, touch and free, a cma allocation to
  // release, and every cma_alloc: the shapes of D15, D17, D18 and the bitmap faults.
  InterleavingOptions o;
  o.ops = only({OpClass::cma_alloc, OpClass::cma_release, OpClass::pin_longterm, OpClass::touch, OpClass::free});
  o.preemptions = 1;
  const InterleavingResult r = explore_interleavings(named("duo-live"), o);
  ASSERT_TRUE(r.error.empty()) << r.error;
  ASSERT_FALSE(r.violation) << r.violation->finding.report;
  EXPECT_TRUE(r.complete);
  ASSERT_EQ(r.levels.size(), 2u);
  // Fixed by the alphabet and the engine's step boundaries: a change in either shows here.
  EXPECT_EQ(r.thread_programs, (std::vector<uint64_t>{23, 20})) << "T1 names m only in touch";
  EXPECT_EQ(r.programs, 460u);
  // Either CPU first, but where the first CPU's first step commutes with all the other has
  // left (a cma_alloc's search under cma->lock, the other CPU never touching the bitmap):
  // 920 and 2,167 with a choice at every boundary (2,147 before free's read_type step, F2).
  EXPECT_EQ(r.levels[0].schedules, 901u);
  EXPECT_EQ(r.levels[1].schedules, 1648u);
  EXPECT_EQ(r.levels[1].max_schedules, 16u);
}

TEST(Interleavings, EachScheduleIsRunOnceAndAtOneBound) {
  // Two cma_allocs of one page in duo (the D18 pair, correct build): every schedule checked,
  // written as its switch lines, is a different one, at whichever bound it was checked.
  InterleavingOptions o;
  o.ops = only({OpClass::cma_alloc});
  o.preemptions = 3;
  o.max_programs = 1;  // the first program: T0 and T1 each cma_alloc count=1
  std::set<std::string> seen;
  std::array<unsigned, 4> per_bound{};
  o.on_schedule = [&](unsigned k, const Trace& ran) {
    ++per_bound[k];
    std::string text;
    for (const Switch& sw : ran.switches) text += print_switch(sw) + "\n";
    EXPECT_TRUE(seen.insert(text).second) << "schedule checked twice:\n" << text;
    // A schedule with k preemptions has at least k switch lines (and one more at most, the
    // free one at the start or at an operation's end).
    EXPECT_GE(ran.switches.size(), k) << text;
  };
  const InterleavingResult r = explore_interleavings(named("duo"), o);
  ASSERT_TRUE(r.error.empty()) << r.error;
  ASSERT_FALSE(r.violation) << r.violation->finding.report;
  ASSERT_EQ(r.levels.size(), 4u);
  for (unsigned k = 0; k < 4; ++k) EXPECT_EQ(per_bound[k], r.levels[k].schedules);
  EXPECT_EQ(per_bound[0], 2u) << "either CPU first, each cma_alloc to its end";
  // Fixed by cma_alloc's steps (reserve, mutex, isolate, drain, take, undo): 66 schedules.
  EXPECT_EQ(per_bound, (std::array<unsigned, 4>{2, 12, 22, 30}));
}

// The fewest preemptions a fault needs, found exactly there: the search with one fewer holds.
void expect_needs(const char* world, impl::Fault fault, OpClassSet ops, unsigned preemptions, const char* rule) {
  InterleavingOptions o;
  o.ops = ops;
  o.faults.add(fault);
  o.preemptions = preemptions;
  const InterleavingResult r = explore_interleavings(named(world), o);
  ASSERT_TRUE(r.violation) << impl::fault_info(fault).name << ": " << r.error;
  EXPECT_EQ(r.violation->preemptions, preemptions) << impl::fault_info(fault).name;
  EXPECT_EQ(r.violation->finding.violation.rule, rule) << impl::fault_info(fault).name;
  EXPECT_EQ(r.levels.size(), preemptions + 1) << "no schedule with fewer preemptions fails";
  // What is written parses (a handle belongs to one thread) and replays to the violation.
  const ParseResult p = parse_trace(interleaving_counterexample_text(named(world), o, r));
  ASSERT_TRUE(p.ok()) << p.error->message << "\n" << interleaving_counterexample_text(named(world), o, r);
  ConcurrentOptions replay;
  replay.faults = o.faults;
  const ConcurrentResult again = run_concurrent(p.trace, replay);
  EXPECT_EQ(again.status, RunStatus::violation) << again.malformed;
}

TEST(Interleavings, FindEachConcurrentFaultWithTheFewestPreemptions) {
  const OpClassSet contiguous = only({OpClass::cma_alloc, OpClass::cma_release});
  expect_needs("duo", impl::Fault::bitmap_set_after_unlock, contiguous, 1, "I5'");
  expect_needs("duo-live", impl::Fault::release_clears_bits_first, contiguous, 0, "I5'");
  expect_needs("duo-live", impl::Fault::drain_once_no_lru_disable, contiguous, 0, "I12'");
  // D15: T1's cma_alloc takes m off the LRU, then T0 pins it long-term.
  expect_needs("duo-live", impl::Fault::pin_ok_if_nothing_collected,
               only({OpClass::cma_alloc, OpClass::pin_longterm}), 1, "I6");
  // D21: T0 frees m while T1's cma_alloc holds CPU 0's pcp lock (its pcp_drain step).
  expect_needs("duo-pcp", impl::Fault::pcp_bypass_uses_ride_type, only({OpClass::cma_alloc, OpClass::free}), 1, "I2");
}

}  // namespace
}  // namespace cmacheck::explore
