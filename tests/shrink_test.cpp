// cmacheck shrink: a long failing trace (>= 200 operations) shrinks to a handful of
// statements that fail the same way (issue 4).
#include <gtest/gtest.h>

#include "check/decode.h"
#include "check/shrink.h"
#include "trace/generate.h"
#include "trace/print.h"

using namespace cmacheck;

namespace {

// A generated trace whose first violation under `fault` comes at statement >= 200.
std::optional<Trace> long_failing_trace(impl::Fault fault, RunOptions& with_fault) {
  with_fault.faults.add(fault);
  for (uint64_t seed = 1; seed < 2000; ++seed) {
    SeededChoices rng(seed);
    auto s = generate_and_run(rng, RunOptions{}, {}, 400);  // a correct run: every op is well formed
    if (s->status() != RunStatus::ok) continue;
    Trace t = s->trace();
    RunResult r = run_trace(t, with_fault);
    if (r.status == RunStatus::violation && r.finding->statement >= 200) {
      t.statements.resize(r.finding->statement + 1);
      return t;
    }
  }
  return std::nullopt;
}

}  // namespace

TEST(Shrink, LongFailingTraceShrinksToAFewStatements) {
  RunOptions opts;
  auto t = long_failing_trace(impl::Fault::count_truncated_32bit, opts);
  ASSERT_TRUE(t) << "no generated trace fails late enough";
  ASSERT_GE(t->statements.size(), 200u);
  const std::string rule = violated_rule(*t, opts);
  ASSERT_FALSE(rule.empty());
  ShrinkResult r = shrink_trace(*t, opts);
  ASSERT_TRUE(r.failed);
  EXPECT_EQ(r.rule, rule);
  EXPECT_LE(r.trace.statements.size(), 10u) << print_trace(r.trace);
  EXPECT_EQ(violated_rule(r.trace, opts), rule);  // the shrunk trace fails the same way
  EXPECT_EQ(violated_rule(r.trace, RunOptions{}), "");  // and only because of the fault
}

TEST(Shrink, PassingTraceIsNotShrunk) {
  SeededChoices rng(3);
  auto s = generate_and_run(rng, RunOptions{}, {}, 50);
  ShrinkResult r = shrink_trace(s->trace(), RunOptions{});
  EXPECT_FALSE(r.failed);
}

// A generated run under claim_always (seed 72 * 1000003 + 11, 300 operations) fails at
// its 253rd statement, an alloc that the wrongly claimed pageblock sends to the wrong
// block (K2). Its state was built by a run of allocations: deleting any one of them moves
// every later placement and loses the failure, so statement-wise ddmin stops at 22
// statements. Writing each placement into the trace (`at=`) lets the shrinker delete the
// allocations that only shaped the free lists: 4 statements. (Until X1/X5 revision 2 the
// seed was 1 * 1000003 + 11, whose run changed with them.)
TEST(Shrink, PlacementsArePinnedSoStateBuildingAllocationsCanGo) {
  RunOptions opts;
  opts.faults.add(impl::Fault::claim_always);
  SeededChoices rng(72 * 1000003 + 11);
  auto s = generate_and_run(rng, opts, {}, 300);
  ASSERT_EQ(s->status(), RunStatus::violation);
  const Trace t = s->trace();
  const std::string rule = violated_rule(t, opts);
  ASSERT_FALSE(rule.empty());
  ShrinkResult r = shrink_trace(t, opts);
  ASSERT_TRUE(r.failed);
  EXPECT_LE(r.trace.statements.size(), 10u) << print_trace(r.trace);
  EXPECT_EQ(violated_rule(r.trace, opts), rule);
  EXPECT_EQ(violated_rule(r.trace, RunOptions{}), "");
}
