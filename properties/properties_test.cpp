// Every property of docs/properties.md as a named RapidCheck property. Budgets come from
// RC_PARAMS (ctest sets a fixed seed and small budgets; `make properties` larger ones).
// Floors: after the run, each property that passed must have explored what it claims
// (FloorsEnvironment in support.cpp), and the tables of what was generated are printed.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "properties/properties.h"
#include "properties/support.h"

namespace cmacheck::props {
namespace {

// -- 1. The stateful lockstep test ------------------------------------------------------

const bool kLockstepFloors = register_floors(
    "Lockstep.ImplAgreesWithModelAfterEveryOperation",
    {
        {"cma_alloc.busy_window", "cma_alloc.calls", 0.05, "cma_alloc meets busy windows (A4)"},
        {"cma_alloc.migrated", "cma_alloc.calls", 0.05, "cma_alloc migrates movable blocks (X2)"},
        {"cma_alloc.ok", "cma_alloc.calls", 0.10, "cma_alloc succeeds"},
        {"cma_alloc.fail", "cma_alloc.calls", 0.10, "cma_alloc fails"},
        {"alloc_contig.ok", "alloc_contig.calls", 0.05, "alloc_contig succeeds"},
        {"alloc_contig.fail", "alloc_contig.calls", 0.05, "alloc_contig fails"},
        {"migrate.ok", "migrate.calls", 0.10, "migrate moves blocks (G1)"},
        {"pin_longterm.migrated", "pin_longterm.calls", 0.02, "long-term pins migrate out of CMA (P2)"},
        {"cma_release_raw.fail", "cma_release_raw.calls", 0.2, "raw releases are refused (R2)"},
        {"cma_release_raw.ok", "cma_release_raw.calls", 0.2, "raw releases are accepted (R2)"},
        {"free.fail.pinned", "free.calls", 0.01, "frees of pinned blocks are refused (F1)"},
        {"expect.calls", "ops", 0.05, "expect statements are checked"},
    },
    true);

RC_GTEST_PROP(Lockstep, ImplAgreesWithModelAfterEveryOperation, ()) { lockstep(); }

// -- 2. Algebraic properties --------------------------------------------------------------

const bool kAlgebraFloors = [] {
  register_floors("Algebra.AllocThenFreeRestoresState", {{"restored", "cases", 0.5, "the alloc succeeds"}}, false);
  register_floors("Algebra.CmaAllocThenReleaseRestores",
                  {{"cma_alloc.ok", "cases", 0.3, "the cma_alloc succeeds"},
                   {"cma_alloc.migrated", "cases", 0.05, "the cma_alloc migrates blocks"}},
                  false);
  register_floors("Algebra.FailedOperationChangesNothing",
                  {{"failures", "cases", 2.0, "operations fail"},
                   {"failures.with_moves", "cases", 0.02, "failed contiguous allocations moved blocks (X2)"},
                   {"failures.cma_alloc", "cases", 0.2, "cma_alloc fails"}},
                  false);
  register_floors("Algebra.ResultsAreAlignedAndContiguous",
                  {{"checked.cma_alloc", "cases", 0.5, "cma_alloc results are checked"},
                   {"checked.alloc_contig", "cases", 0.2, "alloc_contig results are checked"}},
                  false);
  register_floors("Algebra.NoTwoLiveAllocationsOverlap", {{"checked.steps", "cases", 10, "steps are checked"}}, false);
  return true;
}();

RC_GTEST_PROP(Algebra, AllocThenFreeRestoresState, ()) { alloc_then_free(); }
RC_GTEST_PROP(Algebra, CmaAllocThenReleaseRestores, ()) { cma_alloc_then_release(); }
RC_GTEST_PROP(Algebra, FailedOperationChangesNothing, ()) { failed_operation_changes_nothing(); }
RC_GTEST_PROP(Algebra, ReleasingPagesNotHandedOutChangesNothing, ()) { release_not_handed_out_changes_nothing(); }
RC_GTEST_PROP(Algebra, ResultsAreAlignedAndContiguous, ()) { results_aligned_and_contiguous(); }
RC_GTEST_PROP(Algebra, NoTwoLiveAllocationsOverlap, ()) { no_two_live_allocations_overlap(); }
RC_GTEST_PROP(Algebra, ParsePrintRoundTrip, ()) { parse_print_round_trip(); }
RC_GTEST_PROP(Algebra, ReplayIsDeterministic, ()) { replay_is_deterministic(); }

// -- 3. Liveness --------------------------------------------------------------------------

const bool kLivenessFloors = [] {
  register_floors("Liveness.RetryAfterUnpinSucceeds",
                  {{"retry.room", "cases", 0.3, "the retry has a window and room"},
                   {"retry.room_after_pin", "cases", 0.05, "the first attempt was busy on a pin, the retry has room"}},
                  false);
  register_floors("Liveness.LongtermPinNeverInCma",
                  {{"pin_longterm.migrated", "cases", 0.3, "long-term pins migrate out of CMA"}}, false);
  register_floors("Liveness.FreeWindowIsGranted",
                  {{"cma.free_window", "cma.cases", 0.2, "the cma_alloc window is all free"},
                   {"contig.free_candidate", "contig.cases", 0.2, "an alloc_contig candidate is all free"}},
                  false);
  register_floors("Liveness.CmaAllocUpToMaxchunkSucceeds",
                  {{"room", "areas", 0.3, "the area has room outside it"},
                   {"room.with_movable", "areas", 0.1, "the area holds movable blocks to migrate"}},
                  false);
  return true;
}();

RC_GTEST_PROP(Liveness, RetryAfterUnpinSucceeds, ()) { retry_after_unpin_succeeds(); }
RC_GTEST_PROP(Liveness, LongtermPinNeverInCma, ()) { longterm_pin_never_in_cma(); }
RC_GTEST_PROP(Liveness, FreeWindowIsGranted, ()) { free_window_is_granted(); }
RC_GTEST_PROP(Liveness, CmaAllocUpToMaxchunkSucceeds, ()) { cma_alloc_up_to_maxchunk_succeeds(); }

}  // namespace
}  // namespace cmacheck::props
