// The concurrent engine (issue 17, docs/concurrency.md): the trace language's cpus/Tn:/switch,
// one implementation for both engines, exact replay, determinism, and every concurrent check
// shown to fire.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "check/concurrent.h"
#include "model/model.h"
#include "trace/parse.h"
#include "trace/print.h"

using namespace cmacheck;

namespace {

Trace parse(const std::string& text) {
  ParseResult p = parse_trace(text);
  EXPECT_TRUE(p.ok()) << (p.error ? p.error->message : "");
  return p.trace;
}

std::string parse_error(const std::string& text) {
  ParseResult p = parse_trace(text);
  return p.ok() ? "" : p.error->message;
}

std::string read(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// A trace of corpus/concurrent/, run with the default options; it must hold (impl's checks).
ConcurrentResult run_corpus(const std::string& name) {
  const Trace t = parse(read(std::filesystem::path(CMACHECK_SOURCE_DIR) / "corpus/concurrent" / name));
  ConcurrentResult r = run_concurrent(t, {});
  EXPECT_EQ(r.status, RunStatus::ok) << name << ": " << (r.finding ? r.finding->report : "");
  return r;
}

// ... and the model follows it in commit order: neither inconclusive nor audited.
void expect_lockstep(const std::string& name) {
  const ConcurrentResult r = run_corpus(name);
  EXPECT_FALSE(r.inconclusive) << name << ": " << r.inconclusive_reason;
  EXPECT_EQ(r.audits, 0u) << name;
}

const char* kD18 =
    "machine pages=64 pageblock_order=2 max_order=3 profile=linux-6.1 cpus=2\n"
    "area dma base=32 pages=8\n"
    "T0: cma_alloc c1 area=dma count=1\n"
    "T1: cma_alloc c2 area=dma count=1\n"
    "switch T1 after T0.1:reserve\n"
    "switch T0 after T1.1:isolate\n";

}  // namespace

TEST(ConcurrentTrace, PrintsAndParsesBack) {
  const Trace t = parse(kD18);
  EXPECT_EQ(t.machine.cpus, 2);
  ASSERT_EQ(t.switches.size(), 2u);
  EXPECT_EQ(t.statements[1].thread, 1);
  EXPECT_EQ(print_switch(t.switches[1]), "switch T0 after T1.1:isolate");
  const Trace back = parse(print_trace(t));
  EXPECT_EQ(back, t);
}

TEST(ConcurrentTrace, MalformedConcurrencyIsRefusedWithAReason) {
  const std::string head = "machine pages=64 pageblock_order=2 max_order=3 cpus=2\narea dma base=32 pages=8\n";
  EXPECT_NE(parse_error("machine pages=64 pageblock_order=2 max_order=3\nT1: alloc m kind=movable\n").find("cpus=2"),
            std::string::npos);
  EXPECT_NE(parse_error(head + "T2: alloc m kind=movable\n").find("cpus=3"), std::string::npos);
  EXPECT_NE(parse_error(head + "T0: alloc m kind=movable\nT1: free m\n").find("belongs to one thread"), std::string::npos);
  EXPECT_NE(parse_error(head + "T0: alloc m kind=movable\nswitch T1 after T0.2:op\n").find("does not exist"),
            std::string::npos);
  EXPECT_NE(parse_error(head + "T0: alloc m kind=movable\nswitch T1 after T0.1:nap\n").find("unknown step"),
            std::string::npos);
  EXPECT_NE(parse_error(head + "expect free=64\n").find("not supported"), std::string::npos);
  EXPECT_NE(parse_error(head.substr(0, head.find(" cpus")) + " cpus=5\n").find("cpus must be"), std::string::npos);
}

// The must-show of issue 17: the D18 trace passes with cma_mutex and fails W2 without it.
TEST(Concurrent, D18FailsWithoutCmaMutexAndPassesWithIt) {
  const Trace t = parse(kD18);
  ConcurrentOptions o;
  EXPECT_EQ(run_concurrent(t, o).status, RunStatus::ok);
  o.faults.add(impl::Fault::no_cma_mutex);
  const ConcurrentResult r = run_concurrent(t, o);
  ASSERT_EQ(r.status, RunStatus::violation);
  EXPECT_EQ(r.finding->violation.rule, "W2");
}

// A schedule is data: a switch whose step never happens, or that names a CPU that cannot
// run there, is a malformed trace, not a silent other schedule.
TEST(Concurrent, AnInfeasibleScheduleIsMalformed) {
  Trace t = parse(kD18);
  t.switches[1].occurrence = 7;
  const ConcurrentResult r = run_concurrent(t, {});
  EXPECT_EQ(r.status, RunStatus::malformed);
  EXPECT_NE(r.malformed.find("never happened"), std::string::npos);
}

// One implementation serves both engines: every hand-written sequential trace runs through
// the step engine on one CPU with impl and model agreeing after every operation, as it does
// through the sequential engine.
TEST(Concurrent, EveryCorpusTraceRunsTheSameThroughTheStepEngine) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(CMACHECK_SOURCE_DIR) / "corpus/traces")) {
    if (e.path().extension() != ".trace") continue;
    ParseResult p = parse_trace(read(e.path()));
    ASSERT_TRUE(p.ok()) << e.path();
    Trace t = p.trace;
    std::erase_if(t.statements, [](const Statement& s) { return !std::holds_alternative<Op>(s.body); });
    const RunResult seq = run_trace(t, RunOptions{});
    const ConcurrentResult con = run_concurrent(t, {});
    EXPECT_EQ(seq.status, RunStatus::ok) << e.path();
    EXPECT_EQ(con.status, RunStatus::ok) << e.path() << "\n" << (con.finding ? con.finding->report : con.malformed);
    EXPECT_FALSE(con.inconclusive) << e.path();
    EXPECT_EQ(con.ops + con.skipped, t.statements.size()) << e.path();
    ++n;
  }
  EXPECT_GE(n, 20u);
}

// The same seed gives the same programs, schedules and finding.
TEST(Concurrent, RaceIsDeterministic) {
  RaceOptions o;
  o.seed = 5;
  o.max_programs = 40;
  o.faults.add(impl::Fault::no_cma_mutex);
  const RaceResult a = race(o), b = race(o);
  EXPECT_EQ(a.runs, b.runs);
  EXPECT_EQ(a.steps, b.steps);
  ASSERT_EQ(a.finding.has_value(), b.finding.has_value());
  if (a.finding) {
    EXPECT_EQ(print_trace(a.finding->ran), print_trace(b.finding->ran));
    EXPECT_EQ(print_trace(a.shrunk), print_trace(b.shrunk));
  }
}

// A finding's trace replays the failure exactly, from its switch lines alone.
TEST(Concurrent, AFindingReplaysFromItsTrace) {
  RaceOptions o;
  o.seed = 1;
  o.max_programs = 200;
  o.faults.add(impl::Fault::no_cma_mutex);
  const RaceResult r = race(o);
  ASSERT_TRUE(r.finding);
  ConcurrentOptions replay;
  replay.faults = o.faults;
  const ConcurrentResult again = run_concurrent(r.finding->ran, replay);
  ASSERT_EQ(again.status, RunStatus::violation);
  EXPECT_EQ(again.finding->violation.rule, r.finding->finding->violation.rule);
  EXPECT_EQ(again.finding->violation.message, r.finding->finding->violation.message);
  const ConcurrentResult shrunk = run_concurrent(r.shrunk, replay);
  ASSERT_EQ(shrunk.status, RunStatus::violation);
  // D18's shape: two cma_allocs on two CPUs, the second isolating while the first still
  // holds its isolation. (Seed 1's program starts with an alloc_contig whose steps the
  // failing schedule names; the shrinker drops it by searching the smaller program's
  // schedules afresh.)
  EXPECT_EQ(r.shrunk.statements.size(), 2u) << print_trace(r.shrunk);
  for (const Statement& st : r.shrunk.statements) EXPECT_TRUE(std::holds_alternative<CmaAlloc>(std::get<Op>(st.body)));
  EXPECT_EQ(r.shrunk.machine.cpus, 2);
  EXPECT_GE(r.shrunk.switches.size(), 1u);
  // (Seed 1's world since generator version 4 needs one switch, `switch T1 after
  // T0.1:isolate`; dropping switches alone left three: the shrinker's single-switch pass.)
  EXPECT_EQ(r.shrunk.switches.size(), 1u) << print_trace(r.shrunk);
}

// Each ghost invariant fires: I5' (a bit left set by a busy window, at the step), I7' (a
// pageblock left isolated, which I12 also forbids at quiescence), W2 (above).
TEST(Concurrent, GhostInvariantsFire) {
  const Trace busy = parse(
      "machine pages=64 pageblock_order=2 max_order=3 cpus=2\n"
      "area dma base=32 pages=8\n"
      "T0: alloc m kind=movable at=32\n"
      "T0: pin m\n"
      "T1: cma_alloc c area=dma count=4\n");
  ConcurrentOptions o;
  EXPECT_EQ(run_concurrent(busy, o).status, RunStatus::ok);
  o.faults.add(impl::Fault::keep_bits_after_busy);
  ConcurrentResult r = run_concurrent(busy, o);
  ASSERT_EQ(r.status, RunStatus::violation);
  EXPECT_EQ(r.finding->violation.rule, "I5'");
  ConcurrentOptions leave;
  leave.faults.add(impl::Fault::leave_isolated_on_failure);
  r = run_concurrent(busy, leave);
  ASSERT_EQ(r.status, RunStatus::violation);
  EXPECT_EQ(r.finding->violation.rule, "I7'");
}

// W1 in the model: a search that a concurrent reservation covered takes the next window.
TEST(Concurrent, ModelSearchSeesTheReservedView) {
  const Trace t = parse("machine pages=64 pageblock_order=2 max_order=3\narea dma base=32 pages=16\n");
  model::Model m(t.machine, t.areas);
  Outcome out;
  m.set_reserved_view({{0, AreaId{0}, 0, 4}});
  m.apply_alone(CmaAlloc{HandleId{0}, AreaId{0}, PageCount{4}, Order{0}}, out);
  ASSERT_TRUE(out.ok);
  EXPECT_EQ(raw(out.pfn), 36u);
  m.apply_alone(CmaAlloc{HandleId{1}, AreaId{0}, PageCount{4}, Order{0}}, out);  // the view was for one operation
  ASSERT_TRUE(out.ok);
  EXPECT_EQ(raw(out.pfn), 32u);
}

// The other checks of a concurrent run fire too: an operation's own `=> ok pfn=` expectation,
// and the model at quiescence (D12's fault: impl ignores B4 step 1's CMA preference, K2).
TEST(Concurrent, ExpectationsAndTheModelComparisonFire) {
  const Trace wrong = parse(
      "machine pages=64 pageblock_order=2 max_order=3 cpus=2\n"
      "area dma base=32 pages=8\n"
      "T0: cma_alloc c1 area=dma count=1 => ok pfn=33\n"
      "T1: alloc m kind=movable\n");
  ConcurrentResult r = run_concurrent(wrong, {});
  ASSERT_EQ(r.status, RunStatus::violation);
  EXPECT_EQ(r.finding->violation.rule, "expect");

  const Trace prefer_cma = parse(
      "machine pages=64 pageblock_order=2 max_order=3 cpus=2\n"
      "area dma base=0 pages=48\n"
      "T0: alloc m kind=movable\n"
      "T1: alloc n kind=movable\n");
  EXPECT_EQ(run_concurrent(prefer_cma, {}).status, RunStatus::ok);
  ConcurrentOptions o;
  o.faults.add(impl::Fault::no_cma_preference);
  r = run_concurrent(prefer_cma, o);
  ASSERT_EQ(r.status, RunStatus::violation);
  EXPECT_EQ(r.finding->violation.rule, "K2");
}

namespace {

// F2's race (corpus/faults/free_type_read_unlocked.trace): T0's free reads MOVABLE before
// zone->lock, T1's unmovable fallback claims the pageblock in between.
const char* kFreeVersusSteal =
    "machine pages=8 pageblock_order=2 max_order=2 profile=linux-6.12 cpus=2\n"
    "T0: alloc m1 kind=movable order=0 at=0 => ok pfn=0\n"
    "T0: alloc m2 kind=movable order=2 at=4 => ok pfn=4\n"
    "T0: free m1 => ok\n"
    "T1: alloc u1 kind=unmovable order=0 => ok pfn=1\n"
    "switch T1 after T0.3:read_type\n";

// W4: T0's free reads MOVABLE before T1's isolation and parks the page after T1's drain.
const char* kParkedAfterTheDrain =
    "machine pages=8 pageblock_order=2 max_order=2 profile=linux-6.1 cpus=2 pcp=4 pcp_isolation=strict\n"
    "T0: alloc m1 kind=movable order=0 at=0 => ok pfn=0\n"
    "T0: free m1 => ok\n"
    "T1: alloc_contig c1 count=4\n"
    "switch T1 after T0.2:read_type\n"
    "switch T0 after T1.1:drain\n";

}  // namespace

// F2: linux-6.12 frees as the label under zone->lock, so the v6.9 structure (D22) leaves a
// free block on the old type's list (I2, B11). linux-6.1 is that structure, and legal there
// (U61): impl and the model agree, in lockstep, not merely "inconclusive".
TEST(Concurrent, F2FreeVersusStealIsD22Under612AndLegalUnder61) {
  const Trace t = parse(kFreeVersusSteal);
  ConcurrentOptions o;
  ConcurrentResult r = run_concurrent(t, o);
  EXPECT_EQ(r.status, RunStatus::ok);
  EXPECT_FALSE(r.inconclusive) << r.inconclusive_reason;
  o.faults.add(impl::Fault::free_type_read_unlocked);
  r = run_concurrent(t, o);
  ASSERT_EQ(r.status, RunStatus::violation);
  EXPECT_EQ(r.finding->violation.rule, "I2");
  for (const bool fault : {false, true}) {
    ConcurrentOptions six_one;
    six_one.profile = Profile::linux_6_1;
    if (fault) six_one.faults.add(impl::Fault::free_type_read_unlocked);  // 6.1 is this structure
    r = run_concurrent(t, six_one);
    EXPECT_EQ(r.status, RunStatus::ok) << (r.finding ? r.finding->report : "");
    EXPECT_FALSE(r.inconclusive) << r.inconclusive_reason;
  }
}

// The model's half of F2: told the type a free read, linux-6.1 keeps it when no pageblock is
// ISOLATE (its own list, part of the state), linux-6.12 frees as the label. S8: a block larger
// than a pageblock is freed as its labels in both.
TEST(Concurrent, F2TheModelKeepsTheTypeReadOnlyUnder61) {
  for (const Profile p : {Profile::linux_6_1, Profile::linux_6_12}) {
    Trace t = parse(kFreeVersusSteal);
    t.machine.profile = p;
    t.machine.cpus = 1;
    auto run = [&](std::optional<MigrateType> read) {
      model::Model m(t.machine, t.areas);
      Outcome out;
      for (const Statement& s : t.statements) {
        const Op& op = std::get<Op>(s.body);
        if (std::holds_alternative<Free>(op)) continue;  // the free comes after the steal
        m.apply_alone(op, out);
      }
      m.set_free_type_read(read);
      for (const Statement& s : t.statements)
        if (std::holds_alternative<Free>(std::get<Op>(s.body))) m.apply_alone(std::get<Op>(s.body), out);
      EXPECT_TRUE(out.ok);
      return m.state_hash();
    };
    const uint64_t as_label = run(std::nullopt), as_read = run(MigrateType::movable);
    if (p == Profile::linux_6_1)
      EXPECT_NE(as_label, as_read) << "linux-6.1 frees the block as the type read (U61)";
    else
      EXPECT_EQ(as_label, as_read) << "linux-6.12 reads the label under zone->lock";
  }
}

// W4: the kernel's weak isolation lets a page park on a drained list; pcp_isolation=strict
// reports the busy range it causes (T20), and the header round-trips.
TEST(Concurrent, W4APageParkedAfterTheDrainIsReportedOnlyWhenStrict) {
  const Trace strict = parse(kParkedAfterTheDrain);
  EXPECT_TRUE(strict.machine.pcp_strict);
  EXPECT_EQ(parse(print_trace(strict)).machine, strict.machine);
  ConcurrentResult r = run_concurrent(strict, {});
  ASSERT_EQ(r.status, RunStatus::violation);
  EXPECT_EQ(r.finding->violation.rule, "W4");
  Trace weak = strict;
  weak.machine.pcp_strict = false;
  r = run_concurrent(weak, {});
  EXPECT_EQ(r.status, RunStatus::ok) << (r.finding ? r.finding->report : "");
  // The model drains CPU 0 at the second candidate, as impl did, not at the first.
  EXPECT_FALSE(r.inconclusive) << r.inconclusive_reason;
  EXPECT_NE(parse_error("machine pages=8 pageblock_order=2 max_order=2 pcp_isolation=strict\n").find("needs page lists"),
            std::string::npos);
  EXPECT_NE(parse_error("machine pages=8 pageblock_order=2 max_order=2 pcp=4 pcp_isolation=lax\n").find("weak or strict"),
            std::string::npos);
}

// The shrinker drops whole CPUs (concurrency-design.md section 4.5, "drop threads"): D18 with
// an unrelated CPU listed first comes out on two CPUs, renumbered T0 and T1, its switches with
// them.
TEST(ConcurrentShrink, AnUnrelatedCpuGoesAndTheOthersAreRenumbered) {
  const Trace padded = parse(
      "machine pages=64 pageblock_order=2 max_order=3 profile=linux-6.1 cpus=3\n"
      "area dma base=32 pages=8\n"
      "T0: alloc m kind=movable\n"
      "T1: cma_alloc c1 area=dma count=1\n"
      "T2: cma_alloc c2 area=dma count=1\n"
      "T0: alloc n kind=unmovable\n"
      "T0: free m\n"
      "switch T2 after T1.1:reserve\n"
      "switch T1 after T2.1:isolate\n");
  ConcurrentOptions o;
  o.faults.add(impl::Fault::no_cma_mutex);
  const ConcurrentResult r = run_concurrent(padded, o);
  ASSERT_EQ(r.status, RunStatus::violation);
  ASSERT_EQ(r.finding->violation.rule, "W2");
  const Trace shrunk = shrink_concurrent(padded, o, "W2");
  EXPECT_EQ(shrunk.machine.cpus, 2) << print_trace(shrunk);
  ASSERT_EQ(shrunk.statements.size(), 2u) << print_trace(shrunk);
  EXPECT_EQ(shrunk.statements[0].thread, 0);
  EXPECT_EQ(shrunk.statements[1].thread, 1);
  for (const Switch& sw : shrunk.switches) EXPECT_LT(std::max(sw.to, sw.thread), 2) << print_switch(sw);
  EXPECT_EQ(run_concurrent(shrunk, o).finding->violation.rule, "W2");
}

// A sequential bug stays a sequential trace: keep_bits_after_busy (a busy window's bits left
// set) in a program on three CPUs shrinks to a trace without `cpus=` and `Tn:` tags, the
// cma_alloc moved onto the CPU of the pin it meets, and it fails in the sequential engine.
TEST(ConcurrentShrink, ASequentialFaultComesOutAsASequentialTrace) {
  const Trace padded = parse(
      "machine pages=64 pageblock_order=2 max_order=3 profile=linux-6.1 cpus=3\n"
      "area dma base=32 pages=8\n"
      "T0: alloc m kind=movable at=32\n"
      "T1: alloc x kind=movable\n"
      "T0: pin m\n"
      "T1: free x\n"
      "T2: cma_alloc c area=dma count=4\n");
  ConcurrentOptions o;
  o.faults.add(impl::Fault::keep_bits_after_busy);
  const ConcurrentResult r = run_concurrent(padded, o);
  ASSERT_EQ(r.status, RunStatus::violation);
  const Trace shrunk = shrink_concurrent(padded, o, r.finding->violation.rule);
  EXPECT_EQ(shrunk.machine.cpus, 1);
  EXPECT_TRUE(shrunk.switches.empty());
  const std::string text = print_trace(shrunk);
  EXPECT_EQ(text.find("cpus="), std::string::npos) << text;
  EXPECT_EQ(text.find("T0:"), std::string::npos) << text;
  EXPECT_EQ(shrunk.statements.size(), 3u) << text;
  RunOptions sequential;
  sequential.faults = o.faults;
  EXPECT_EQ(run_trace(shrunk, sequential).status, RunStatus::violation);
  EXPECT_EQ(run_trace(shrunk, RunOptions{}).status, RunStatus::ok);
}

// The same through `cmacheck race`: a sequential fault found in programs on three CPUs.
TEST(ConcurrentShrink, RaceReportsASequentialFaultAsASequentialTrace) {
  // Seed 3's first finding needs no interleaving. (Seed 1's, since conflict-directed choice
  // points, does: a free in flight makes the window busy, so it stays a two-CPU trace.)
  RaceOptions o;
  o.seed = 3;
  o.cpus = 3;
  o.max_programs = 300;
  o.faults.add(impl::Fault::keep_bits_after_busy);
  const RaceResult r = race(o);
  ASSERT_TRUE(r.finding);
  EXPECT_EQ(r.shrunk.machine.cpus, 1) << print_trace(r.shrunk);
  EXPECT_EQ(print_trace(r.shrunk).find("cpus="), std::string::npos) << print_trace(r.shrunk);
}

// The checks no other fault fires (issue 17's closing note, item 3). cma_mutex_kept_on_failure
// (cma_alloc unlocks cma_mutex only on success): I12's "cma_mutex free at quiescence" after a
// call whose only window failed with -ENOMEM (m has no target outside the window); the
// deadlock report when the next window of the same call locks it again, and when another
// CPU's cma_alloc waits for it (corpus/faults/cma_mutex_kept_on_failure.trace).
TEST(Concurrent, ACmaMutexLeftHeldFailsI12OrDeadlocks) {
  const Trace nomem = parse(
      "machine pages=32 pageblock_order=3 max_order=3\n"
      "area dma base=8 pages=24\n"
      "alloc u kind=unmovable order=3 at=0\n"
      "alloc m kind=movable at=8\n"
      "cma_alloc c area=dma count=24 => fail\n");
  ConcurrentOptions o;
  EXPECT_EQ(run_concurrent(nomem, o).status, RunStatus::ok);
  o.faults.add(impl::Fault::cma_mutex_kept_on_failure);
  ConcurrentResult r = run_concurrent(nomem, o);
  ASSERT_EQ(r.status, RunStatus::violation);
  EXPECT_EQ(r.finding->violation.rule, "I12");

  const Trace busy_then_next = parse(
      "machine pages=64 pageblock_order=2 max_order=3\n"
      "area dma base=32 pages=8\n"
      "alloc m kind=movable at=32\n"
      "pin m\n"
      "cma_alloc c area=dma count=4\n");
  EXPECT_EQ(run_concurrent(busy_then_next, {}).status, RunStatus::ok);
  r = run_concurrent(busy_then_next, o);
  ASSERT_EQ(r.status, RunStatus::violation);
  EXPECT_EQ(r.finding->violation.rule, "deadlock");
  EXPECT_NE(r.finding->violation.message.find("which it holds itself"), std::string::npos) << r.finding->violation.message;

  const Trace two = parse(read(std::filesystem::path(CMACHECK_SOURCE_DIR) / "corpus/faults/cma_mutex_kept_on_failure.trace"));
  EXPECT_EQ(run_concurrent(two, {}).status, RunStatus::ok);
  r = run_concurrent(two, o);
  ASSERT_EQ(r.status, RunStatus::violation);
  EXPECT_EQ(r.finding->violation.rule, "deadlock");
  EXPECT_NE(r.finding->violation.message.find("held by T0, whose operation returned"), std::string::npos)
      << r.finding->violation.message;
}

// isolate_ignores_isolated (set_migratetype_isolate does not refuse an ISOLATE pageblock):
// two alloc_contig calls, which take no cma_mutex, isolate the same pageblock: I7' (two owners).
TEST(Concurrent, TwoOwnersOfOneIsolatedPageblockFailI7) {
  const Trace t = parse(read(std::filesystem::path(CMACHECK_SOURCE_DIR) / "corpus/faults/isolate_ignores_isolated.trace"));
  const ConcurrentResult clean = run_concurrent(t, {});
  EXPECT_EQ(clean.status, RunStatus::ok);
  EXPECT_FALSE(clean.inconclusive);
  ConcurrentOptions o;
  o.faults.add(impl::Fault::isolate_ignores_isolated);
  const ConcurrentResult r = run_concurrent(t, o);
  ASSERT_EQ(r.status, RunStatus::violation);
  EXPECT_EQ(r.finding->violation.rule, "I7'");
  EXPECT_NE(r.finding->violation.message.find("and again by"), std::string::npos) << r.finding->violation.message;
}

// W5: a free that commits while another CPU holds an ISOLATE pageblock reads the label again
// under linux-6.1; the model, which applies the isolating operation later, is told so. Without
// the hint the model keeps the type read and the next allocation departs from it (a false K2).
TEST(Concurrent, W5AFreeDuringAnotherCpusIsolationRereadsTheLabel) {
  const ConcurrentResult r = run_corpus("W5-free-rereads-the-label-while-another-cpu-isolates.trace");
  EXPECT_FALSE(r.inconclusive) << r.inconclusive_reason;
}

// The audit: the commit order departs (an alloc_contig gives up a window for a block whose
// free is in flight (W8), and the free commits before the alloc_contig: in commit order the
// model frees the block first and takes that window); another linearization, the alloc_contig
// first, matches impl's outcomes and state, and the run goes on in lockstep from it. Without
// the audit the run is inconclusive.
TEST(Concurrent, TheAuditLinearizesASegmentInAnotherOrder) {
  const ConcurrentResult r = run_corpus("audit-a-window-given-up-for-a-free-that-commits-first.trace");
  EXPECT_FALSE(r.inconclusive) << r.inconclusive_reason;
  EXPECT_EQ(r.audits, 1u);
  EXPECT_EQ(r.audited, 1u);
  ASSERT_EQ(r.audit_notes.size(), 1u);
  const std::string& note = r.audit_notes[0];
  EXPECT_NE(note.find("T1.2 alloc_contig x2 count=5: K1 impl ok pfn=5, 2 windows, model ok pfn=0"), std::string::npos)
      << note;
  EXPECT_NE(note.find("linearized the 3 operations as T1.2 alloc_contig x2 count=5, T0.2 free m1"), std::string::npos)
      << note;
}

// W8: a block another CPU holds when an operation looks at it (its free in flight, or off
// the LRU for another caller's migration), the hold checked in impl at that step, is told to
// the model: the window, or the migrate, is busy in commit order. All three runs were
// inconclusive (or needed the audit) before.
TEST(Concurrent, W8ABlockAnotherCpuHoldsMakesTheMigrationBusy) {
  for (const char* name : {"W8-a-cma-alloc-meets-a-free-in-flight.trace", "W8-a-window-given-up-for-a-block-being-freed.trace",
                           "W8-a-migrate-finds-its-block-off-the-lru.trace"})
    expect_lockstep(name);
}

// Q4: two candidates of one alloc_contig begin in the same pageblock; the model takes one
// isolation's pcp drains per candidate, not every drain of the candidates up to that
// pageblock at the first of them.
TEST(Concurrent, Q4TwoCandidatesInOnePageblockDrainInTurn) {
  expect_lockstep("Q4-two-candidates-begin-in-one-pageblock.trace");
}

// X2 at its step: a block an alloc_contig migrates reaches the model at its migrate step when
// another operation commits before the alloc_contig. A pin after the migration returns the
// new frame, and a move's target depends on the isolations in force at the migrate step, not
// at the commit. Both runs were inconclusive (or needed the audit) when the model applied
// every move at the mover's commit.
TEST(Concurrent, X2MovesReachTheModelAtTheirMigrateSteps) {
  for (const char* name : {"X2-a-pin-after-another-cpus-migration-of-its-block.trace",
                           "X2-a-move-target-chosen-during-another-cpus-isolation.trace",
                           "X2-a-move-under-an-isolation-undone-before-the-commit.trace",
                           "X2-a-move-before-another-callers-isolation.trace"})
    expect_lockstep(name);
}

// W6 at a commit: an allocation fails on a frame whose pageblock a cma_alloc still in flight
// holds ISOLATE; told the isolations in force, the model fails it too, in commit order.
TEST(Concurrent, W6AnAllocationMeetsACmaAllocStillInFlight) {
  expect_lockstep("W6-cma-alloc-in-flight-holds-the-frame.trace");
}

// P2 in the model: a long-term pin of a block in a MOVABLE pageblock another caller holds
// ISOLATE migrates it out first, as impl does; the model tested for CMA only (inconclusive).
TEST(Concurrent, P2TheModelMigratesALongtermPinOutOfAnIsolatedPageblock) {
  expect_lockstep("P2-a-longterm-pin-in-another-callers-isolated-pageblock.trace");
}

// The audit does not explain away what no order explains: a free that commits between two
// windows of one cma_alloc (the first given up for the block being freed, the second finding
// its frame free) stays inconclusive, with the audit's verdict in the reason.
TEST(Concurrent, TheAuditFindsNoOrderForAFreeBetweenTwoWindows) {
  const ConcurrentResult r = run_corpus("inconclusive-a-free-commits-between-two-windows.trace");
  EXPECT_TRUE(r.inconclusive);
  EXPECT_EQ(r.audits, 1u);
  EXPECT_EQ(r.audited, 0u);
  EXPECT_NE(r.inconclusive_reason.find("audit: no linearization of the 3 operations"), std::string::npos)
      << r.inconclusive_reason;
}

// W6 for an operation that frees: a cma_release frees a frame into a pageblock another
// caller holds ISOLATE; told that isolation at its commit, the model frees the frame to the
// buddy allocator, not to a page list, as impl (free_unref_page). Inconclusive before.
TEST(Concurrent, W6AReleaseFreesIntoAnotherCallersIsolatedPageblock) {
  expect_lockstep("W6-a-release-frees-into-another-callers-isolated-pageblock.trace");
}

// The state comparison after overlapping operations looks at the list of every free block
// under linux-6.1 (B10), where lists and labels may differ: here every outcome, label and
// count agrees and only the list of the block at 8 does not.
TEST(Concurrent, TheStateComparisonSeesAFreeBlockOnAnotherList) {
  const ConcurrentResult r = run_corpus("inconclusive-free-block-on-another-list.trace");
  EXPECT_TRUE(r.inconclusive);
  EXPECT_NE(r.inconclusive_reason.find("the free blocks differ: impl has order 3 at pfn 8 on unmovable's list, the model "
                                       "order 3 at pfn 8 on movable's list"),
            std::string::npos)
      << r.inconclusive_reason;
}

// X1's refusal with its obstacle checked at the isolate step: the model refuses the same
// window though the unmovable block is freed before the commit (inconclusive without it).
TEST(Concurrent, X1ARefusalHoldsThoughTheUnmovableBlockIsFreedBeforeCommit) {
  const ConcurrentResult r = run_corpus("X1-a-refusal-holds-though-the-unmovable-block-is-freed-before-commit.trace");
  EXPECT_FALSE(r.inconclusive) << r.inconclusive_reason;
}

// Q4: a pcp_drain step reaches the model at its step when another operation commits before
// the drain's owner (a model event): T0.4's allocation after T1.2's drain of CPU 3 runs in
// lockstep (inconclusive when the model drained only inside T1.2, at its commit). The W4 test
// above has the other case: no one in between, the drain stays with its candidate.
TEST(Concurrent, Q4APcpDrainStepReachesTheModelBeforeAnotherCpusAllocation) {
  expect_lockstep("Q4-a-pcp-drain-step-before-another-cpus-allocation.trace");
}

// W7: undoing one caller's pageblock merges a free block over the neighbouring pageblock
// another caller holds ISOLATE (X5's buddy path, as both kernels do); I2 lets the block be,
// the undo step names it, and the other caller's check then fails from outer_start (X3), so
// it takes its next window (the trace's `=> ok pfn=4`). Under linux-6.12 impl first merged
// the whole range's blocks itself, and I2 reported B13.
TEST(Concurrent, W7AnUndoMergesOverAnotherCallersIsolation) {
  const Trace t = parse(read(std::filesystem::path(CMACHECK_SOURCE_DIR) /
                             "corpus/concurrent/W7-undo-merges-over-another-callers-isolation.trace"));
  for (const Profile p : {Profile::linux_6_12, Profile::linux_6_1}) {
    ConcurrentOptions o;
    o.profile = p;
    o.want_table = true;
    const ConcurrentResult r = run_concurrent(t, o);
    EXPECT_EQ(r.status, RunStatus::ok) << (r.finding ? r.finding->report : "");
    EXPECT_NE(r.table.find("re-merged over pageblock 1, which another operation holds ISOLATE (W7)"), std::string::npos)
        << r.table;
  }
  // An allocation from the merged block leaves its pieces in the isolated pageblock on the
  // MOVABLE list (expand); I2 lets them be, and the other caller takes them (ok pfn=4).
  const Trace pieces = parse(read(std::filesystem::path(CMACHECK_SOURCE_DIR) /
                                  "corpus/concurrent/W7-pieces-of-the-merged-block-stay-on-the-movable-list.trace"));
  ConcurrentOptions o;
  o.want_table = true;
  const ConcurrentResult r = run_concurrent(pieces, o);
  EXPECT_EQ(r.status, RunStatus::ok) << (r.finding ? r.finding->report : "");
  EXPECT_NE(r.table.find("(W7)"), std::string::npos) << r.table;
  EXPECT_NE(r.table.find("T2.1 alloc_contig x3 count=4  -> ok pfn=4"), std::string::npos) << r.table;
}

// W6: an allocation while another CPU holds a pageblock ISOLATE cannot take its frames; the
// model, told the isolations in force at the allocation's commit, isolates them for it, and
// the run is in lockstep (without it, no order of the two operations matches impl).
TEST(Concurrent, W6AnAllocationDuringAnotherCpusIsolationRunsInLockstep) {
  const Trace t = parse(read(std::filesystem::path(CMACHECK_SOURCE_DIR) /
                             "corpus/concurrent/W6-allocation-during-another-cpus-isolation.trace"));
  for (const Profile p : {Profile::linux_6_12, Profile::linux_6_1}) {
    ConcurrentOptions o;
    o.profile = p;
    const ConcurrentResult r = run_concurrent(t, o);
    EXPECT_EQ(r.status, RunStatus::ok) << (r.finding ? r.finding->report : "");
    EXPECT_FALSE(r.inconclusive) << r.inconclusive_reason;
  }
}

// Conflict-directed choice points (check/footprint.h): which steps commute.
TEST(Footprint, StepsOnDisjointStateCommuteAndTheRestConflict) {
  const Footprint shared = Footprint::shared_state();
  const Footprint dma = step_footprint(StepLabel::reserve, AreaId{0}, Op{CmaAlloc{}});
  const Footprint cam = step_footprint(StepLabel::reserve, AreaId{1}, Op{CmaAlloc{}});
  EXPECT_FALSE(conflict(dma, shared));  // cma->lock and zone->lock
  EXPECT_FALSE(conflict(dma, cam));     // two areas' bitmaps
  EXPECT_TRUE(conflict(dma, dma));
  const Footprint read_a = step_footprint(StepLabel::read_type, {}, Op{Free{HandleId{1}}});
  const Footprint read_b = step_footprint(StepLabel::read_type, {}, Op{Free{HandleId{2}}});
  EXPECT_FALSE(conflict(read_a, read_b));  // two unlocked reads of pageblock labels
  EXPECT_TRUE(conflict(read_a, shared));   // a read and zone->lock's writes
  NextStep pin{.op = nullptr};
  const Op pin_a = Pin{HandleId{1}, false}, pin_b = Pin{HandleId{2}, false}, pin_a_long = Pin{HandleId{1}, true};
  pin.op = &pin_a;
  const Footprint short_a = next_footprint(pin, {});
  pin.op = &pin_b;
  const Footprint short_b = next_footprint(pin, {});
  pin.op = &pin_a_long;
  EXPECT_FALSE(conflict(short_a, short_b));  // two blocks' pin counts
  EXPECT_TRUE(conflict(short_a, read_a));    // the same block's
  EXPECT_TRUE(conflict(short_a, shared));    // a migration may move it
  EXPECT_EQ(next_footprint(pin, {}), shared);  // a long-term pin may migrate (P2)
  // What the table declares covers what the steps run.
  const Op alloc = CmaAlloc{HandleId{3}, AreaId{1}, PageCount{1}, Order{}};
  NextStep cma{.op = &alloc};
  EXPECT_TRUE(next_footprint(cma, {}).covers(cam));
  cma.last = StepLabel::reserve;
  const Footprint mutex = step_footprint(StepLabel::mutex, {}, alloc);
  EXPECT_TRUE(next_footprint(cma, {}).covers(mutex));
  EXPECT_FALSE(next_footprint(cma, {}).covers(shared));
  EXPECT_TRUE(next_footprint(cma, {.no_cma_mutex = true}).covers(shared));  // D18: straight to isolation
  cma.nothing_reserved = true;
  EXPECT_TRUE(next_footprint(cma, {}).empty());
}

// The engine checks every step against the footprint its CPU declared: told the build has
// cma_mutex while it runs without (D18's fault), the table declares `mutex` after `reserve`
// and the isolation that runs instead is reported.
TEST(Footprint, AStepOutsideItsDeclaredFootprintIsReported) {
  const Trace t = parse(kD18);
  ConcurrentOptions o;
  o.faults.add(impl::Fault::no_cma_mutex);
  o.footprint_faults_told = FootprintFaults{};
  const ConcurrentResult r = run_concurrent(t, o);
  ASSERT_EQ(r.status, RunStatus::violation);
  EXPECT_EQ(r.finding->violation.rule, "footprint");
  EXPECT_NE(r.finding->violation.message.find("reserve was its last boundary"), std::string::npos) << r.finding->violation.message;
}

// A random schedule passes over the boundaries where the default's next step commutes with
// all the other CPUs have left, and still finds D18; every schedule it runs is one the trace
// replays. (explore_test's FindEachConcurrentFaultWithTheFewestPreemptions fails when only the
// next steps are compared: D15 and D21 are then lost at every bound.)
TEST(Footprint, ChoicePointsOnlyWhereTheNextStepConflictsWithWhatOthersHaveLeft) {
  RaceOptions o;
  o.seed = 3;
  o.max_programs = 200;
  o.shrink = false;
  const RaceResult conflict_directed = race(o);
  EXPECT_GT(conflict_directed.choices_commuting, 0u);
  EXPECT_FALSE(conflict_directed.finding.has_value());
  o.conflict_points = false;
  const RaceResult every = race(o);
  EXPECT_EQ(every.choices_commuting, 0u);
  EXPECT_GT(every.choices_offered, conflict_directed.choices_offered);
  o.conflict_points = true;
  o.faults.add(impl::Fault::no_cma_mutex);
  const RaceResult d18 = race(o);
  ASSERT_TRUE(d18.finding.has_value());
  ConcurrentOptions replay;
  replay.faults = o.faults;
  const ConcurrentResult again = run_concurrent(d18.finding->ran, replay);
  ASSERT_EQ(again.status, RunStatus::violation);
  EXPECT_EQ(again.finding->violation.rule, "W2");
}

// W1: a search sees the bits of a live allocation whose release commits before the search's
// operation does. T1's cma_alloc searches while c1 holds bits 0-1 and takes 2-3 (pfn 34);
// T0 then releases c1 (commit at free_range), before T1's take. The model, applying the
// release first, must still see c1's bits in T1's search: in lockstep with no audit (before
// the view held live allocations, the commit order departed and the audit reordered).
TEST(Concurrent, W1ASearchSeesTheBitsOfAnAllocationReleasedBeforeItsCommit) {
  const Trace t = parse(
      "machine pages=64 pageblock_order=2 max_order=3 profile=linux-6.1 cpus=2\n"
      "area dma base=32 pages=8\n"
      "T0: cma_alloc c1 area=dma count=2 => ok pfn=32\n"
      "T1: cma_alloc c2 area=dma count=2 => ok pfn=34\n"
      "T0: cma_release c1 => ok\n"
      "switch T0 after T1.1:reserve\n");
  const ConcurrentResult r = run_concurrent(t, {});
  EXPECT_EQ(r.status, RunStatus::ok) << (r.finding ? r.finding->report : r.malformed);
  EXPECT_FALSE(r.inconclusive) << r.inconclusive_reason;
  EXPECT_EQ(r.audits, 0u);
}
