// Proof that the properties bite: each property, checked with one injected impl fault,
// fails; its shrunk counterexample is written as a .trace (to the build tree, never to
// corpus/properties/, which holds only real findings) and `cmacheck replay --fault NAME`
// reproduces it (exit status 1). The two properties no impl fault can reach -- the round
// trip of the trace text and the determinism of replay -- are shown to bite on
// property-local faults (a lossy printer, a system with hidden state) instead.
//
// BiteMatrix.DISABLED_AllFaults checks every property against every fault and prints the
// table of docs/properties.md (run it with --gtest_also_run_disabled_tests).
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>

#include <gtest/gtest.h>

#include "properties/properties.h"
#include "properties/support.h"
#include "trace/print.h"

namespace cmacheck::props {
namespace {

struct Property {
  const char* id;
  void (*body)();
};

const Property kProperties[] = {
    {"Lockstep.ImplAgreesWithModelAfterEveryOperation", lockstep},
    {"Algebra.AllocThenFreeRestoresState", alloc_then_free},
    {"Algebra.CmaAllocThenReleaseRestores", cma_alloc_then_release},
    {"Algebra.FailedOperationChangesNothing", failed_operation_changes_nothing},
    {"Algebra.ReleasingPagesNotHandedOutChangesNothing", release_not_handed_out_changes_nothing},
    {"Algebra.ResultsAreAlignedAndContiguous", results_aligned_and_contiguous},
    {"Algebra.NoTwoLiveAllocationsOverlap", no_two_live_allocations_overlap},
    {"Algebra.ParsePrintRoundTrip", parse_print_round_trip},
    {"Algebra.ReplayIsDeterministic", replay_is_deterministic},
    {"Liveness.RetryAfterUnpinSucceeds", retry_after_unpin_succeeds},
    {"Liveness.LongtermPinNeverInCma", longterm_pin_never_in_cma},
    {"Liveness.FreeWindowIsGranted", free_window_is_granted},
    {"Liveness.CmaAllocUpToMaxchunkSucceeds", cma_alloc_up_to_maxchunk_succeeds},
};

const Property& property(const std::string& id) {
  for (const Property& p : kProperties)
    if (id == p.id) return p;
  throw std::runtime_error("no property " + id);
}

std::string bite_dir() { return std::string(CMACHECK_BITE_DIR); }

rc::detail::TestParams bite_params(int max_success) {
  rc::detail::TestParams p;
  p.seed = 0xc3ac4ec4;
  p.maxSuccess = max_success;
  p.maxSize = 100;  // UBSan: keep max_size <= 100 with Debian's RapidCheck
  return p;
}

// `cmacheck replay -q [--fault NAME] FILE`: its exit status.
int replay_status(const std::string& fault, const std::string& file) {
  std::string cmd = std::string(CMACHECK_BIN) + " replay -q";
  if (!fault.empty()) cmd += " --fault " + fault;
  cmd += " '" + file + "' > /dev/null 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct Bite {
  CheckOutcome check;
  std::string file;
  int replay = -1;
};

Bite bite(const Property& p, impl::Fault fault, int max_success) {
  ContextScope scope(p.id, fault, bite_dir());
  std::error_code ec;
  std::filesystem::remove(counterexample_path(), ec);
  Bite b;
  b.check = check_property(std::string(p.id) + " with " + std::string(impl::fault_info(fault).name), p.body,
                           bite_params(max_success));
  if (!b.check.passed && std::filesystem::exists(counterexample_path())) {
    b.file = counterexample_path();
    b.replay = replay_status(std::string(impl::fault_info(fault).name), b.file);
  }
  return b;
}

// One property, one fault: the property fails, writes a trace, and replay reproduces it.
void expect_bites(const std::string& id, impl::Fault fault, int max_success = 300) {
  const Bite b = bite(property(id), fault, max_success);
  const std::string f(impl::fault_info(fault).name);
  EXPECT_FALSE(b.check.passed) << id << " passed with --fault " << f << ":\n" << b.check.message;
  EXPECT_FALSE(b.check.gave_up) << b.check.message;
  ASSERT_FALSE(b.file.empty()) << id << " failed with --fault " << f << " but wrote no counterexample:\n" << b.check.message;
  EXPECT_EQ(b.replay, 1) << "cmacheck replay --fault " << f << " " << b.file << " exits " << b.replay << ", not 1";
  std::cout << id << " with --fault " << f << ": caught after " << b.check.successes << " passing cases\n"
            << "  counterexample " << b.file << "\n  "
            << b.check.message.substr(0, b.check.message.find("\n  counterexample")) << "\n";
}

// -- one test per property and the fault it is shown to catch ---------------------------

TEST(Bite, LockstepCatchesNoCmaPreference) {
  expect_bites("Lockstep.ImplAgreesWithModelAfterEveryOperation", impl::Fault::no_cma_preference);
}
TEST(Bite, LockstepCatchesKeepBitsAfterBusy) {
  expect_bites("Lockstep.ImplAgreesWithModelAfterEveryOperation", impl::Fault::keep_bits_after_busy);
}
TEST(Bite, LockstepCatchesMigrationDropsContent) {
  expect_bites("Lockstep.ImplAgreesWithModelAfterEveryOperation", impl::Fault::migration_drops_content);
}
TEST(Bite, AllocThenFreeCatchesMergeCmaWithMovable) {
  expect_bites("Algebra.AllocThenFreeRestoresState", impl::Fault::merge_cma_with_movable);
}
TEST(Bite, CmaAllocThenReleaseCatchesReleaseOneChunkShort) {
  expect_bites("Algebra.CmaAllocThenReleaseRestores", impl::Fault::release_one_chunk_short);
}
TEST(Bite, FailedOperationCatchesLeaveIsolatedOnFailure) {
  expect_bites("Algebra.FailedOperationChangesNothing", impl::Fault::leave_isolated_on_failure);
}
TEST(Bite, FailedOperationCatchesKeepBitsAfterBusy) {
  expect_bites("Algebra.FailedOperationChangesNothing", impl::Fault::keep_bits_after_busy);
}
TEST(Bite, ReleaseNotHandedOutCatchesCountTruncated32bit) {
  expect_bites("Algebra.ReleasingPagesNotHandedOutChangesNothing", impl::Fault::count_truncated_32bit);
}
TEST(Bite, ResultsAlignedCatchesAlignToAreaBase) {
  expect_bites("Algebra.ResultsAreAlignedAndContiguous", impl::Fault::align_to_area_base);
}
TEST(Bite, ResultsAlignedCatchesAlignedOffsetToNext) {
  expect_bites("Algebra.ResultsAreAlignedAndContiguous", impl::Fault::aligned_offset_to_next);
}
TEST(Bite, FailedOperationCatchesMergeIsolated) {
  expect_bites("Algebra.FailedOperationChangesNothing", impl::Fault::merge_isolated);
}
TEST(Bite, NoOverlapCatchesLeaveIsolatedOnFailure) {
  expect_bites("Algebra.NoTwoLiveAllocationsOverlap", impl::Fault::leave_isolated_on_failure);
}
TEST(Bite, RetryAfterUnpinCatchesKeepBitsAfterBusy) {
  expect_bites("Liveness.RetryAfterUnpinSucceeds", impl::Fault::keep_bits_after_busy);
}
TEST(Bite, LongtermPinCatchesLongtermStaysInCma) {
  expect_bites("Liveness.LongtermPinNeverInCma", impl::Fault::longterm_stays_in_cma);
}
TEST(Bite, LongtermPinCatchesLongtermTargetInCma) {
  expect_bites("Liveness.LongtermPinNeverInCma", impl::Fault::longterm_target_in_cma);
}
TEST(Bite, LongtermPinCatchesLongtermPinBeforeMigrate) {
  expect_bites("Liveness.LongtermPinNeverInCma", impl::Fault::longterm_pin_before_migrate);
}
TEST(Bite, FreeWindowCatchesIsolationNoEdgeSplit) {
  expect_bites("Liveness.FreeWindowIsGranted", impl::Fault::isolation_no_edge_split);
}
TEST(Bite, FreeWindowCatchesContigStopsAtFirstFailure) {
  expect_bites("Liveness.FreeWindowIsGranted", impl::Fault::contig_stops_at_first_failure);
}
TEST(Bite, UpToMaxchunkCatchesIsolationNoEdgeSplit) {
  expect_bites("Liveness.CmaAllocUpToMaxchunkSucceeds", impl::Fault::isolation_no_edge_split);
}
TEST(Bite, UpToMaxchunkCatchesUnmovableInCma) {
  expect_bites("Liveness.CmaAllocUpToMaxchunkSucceeds", impl::Fault::unmovable_in_cma);
}

// -- the two properties no impl fault reaches -------------------------------------------

// A printer that drops `align=` from cma_alloc: the text no longer says what was run.
TEST(Bite, RoundTripCatchesLossyPrinter) {
  ContextScope scope("Algebra.ParsePrintRoundTrip", impl::Fault::none, bite_dir());
  scope->fault_names = "";
  scope->printer = [](const Trace& t) { return std::regex_replace(print_trace(t), std::regex(" align=[0-9]+"), ""); };
  const CheckOutcome c = check_property("round trip with a lossy printer", parse_print_round_trip, bite_params(300));
  EXPECT_FALSE(c.passed) << c.message;
  EXPECT_TRUE(std::filesystem::exists(counterexample_path()));
  std::cout << c.message.substr(0, c.message.find("\n  counterexample")) << "\n";
}

// A system with state hidden outside the allocator (a static counter): every other migrate
// fails, whatever the allocator's state, so two replays of one trace differ.
class LeakySystem final : public System {
 public:
  explicit LeakySystem(std::unique_ptr<System> inner) : inner_(std::move(inner)) {}
  Side side() const override { return inner_->side(); }
  std::unique_ptr<System> clone() const override { return std::make_unique<LeakySystem>(inner_->clone()); }
  void apply(const Op& op, Outcome& out) override {
    static uint64_t calls = 0;
    if (std::holds_alternative<Migrate>(op) && ++calls % 2 == 0) {
      out.clear();
      out.reason = FailReason::no_target;
      return;
    }
    inner_->apply(op, out);
  }
  uint64_t free_pages() const override { return inner_->free_pages(); }
  uint64_t free_cma_pages() const override { return inner_->free_cma_pages(); }
  AreaStats area_stats(AreaId a) const override { return inner_->area_stats(a); }
  MigrateType label(Pfn p) const override { return inner_->label(p); }
  char frame(Pfn p) const override { return inner_->frame(p); }
  uint64_t content(Pfn p) const override { return inner_->content(p); }
  std::optional<FrameRange> where(HandleId h) const override { return inner_->where(h); }
  uint32_t pins(HandleId h) const override { return inner_->pins(h); }
  bool longterm(HandleId h) const override { return inner_->longterm(h); }
  std::optional<std::vector<uint64_t>> bitmap(AreaId a) const override { return inner_->bitmap(a); }

 private:
  std::unique_ptr<System> inner_;
};

TEST(Bite, DeterminismCatchesHiddenState) {
  ContextScope scope("Algebra.ReplayIsDeterministic", impl::Fault::none, bite_dir());
  scope->factory = [](Side side, const Trace& h) -> std::unique_ptr<System> {
    return std::make_unique<LeakySystem>(make_system(side, h, {}));
  };
  const CheckOutcome c = check_property("determinism with hidden state", replay_is_deterministic, bite_params(300));
  EXPECT_FALSE(c.passed) << c.message;
  EXPECT_TRUE(std::filesystem::exists(counterexample_path()));
  std::cout << c.message.substr(0, c.message.find("\n  counterexample")) << "\n";
}

// -- the whole matrix (slow; for docs/properties.md) ------------------------------------

TEST(BiteMatrix, DISABLED_AllFaults) {
  std::cout << "property x fault: X caught and replay reproduces (exit 1), x caught but replay exits otherwise, . passed\n";
  for (const Property& p : kProperties) {
    std::cout << p.id << ":";
    for (const impl::FaultInfo& f : impl::all_faults()) {
      const auto t0 = std::chrono::steady_clock::now();
      const Bite b = bite(p, f.fault, 200);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!b.check.passed) std::cout << " " << f.name << (b.replay == 1 ? "" : "(replay " + std::to_string(b.replay) + ")") << "[" << static_cast<int>(s) << "s]";
      std::cout << std::flush;
    }
    std::cout << "\n";
  }
}

}  // namespace
}  // namespace cmacheck::props
