// The concurrent engine (docs/concurrency.md): a trace with `cpus=N` runs its threads' operations
// as step programs on logical CPUs, interleaved at step boundaries by a deterministic
// scheduler on one OS thread. The same impl/ code runs as in the sequential engine; impl
// reports the end of each step through impl::StepHook and yields there.
//
// After every step: impl's cheap invariants (not those of quiescence), and the ghost
// invariants I5' (bitmap = live allocations + reservations + releases not yet cleared) and
// I7' (ISOLATE pageblocks = those owned by an isolator in flight), plus W2 (a cma_alloc
// never finds a pageblock isolated by another cma_alloc: cma_mutex). At quiescence: impl's
// full tier. Linearizability: the operations are applied to the model in the order of their
// commit steps, a cma_alloc's searches seeing the bits reserved by others at that instant
// (W1); an operation whose result departs from the model's while another one was in flight
// makes the run inconclusive (interference the model cannot yet state), one that ran alone is
// a violation.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "check/footprint.h"
#include "check/runner.h"
#include "impl/faults.h"
#include "trace/generate.h"
#include "trace/trace.h"

namespace cmacheck {

// How the scheduler chooses at a step boundary (a swarm choice of fuzz inputs).
enum class ScheduleKind : uint8_t {
  walk,     // uniformly among the CPUs that can run
  pct,      // PCT (Burckhardt et al., ASPLOS'10): random priorities, depth-1 change points
  bounded,  // the default schedule, with at most `preemptions` random deviations
};
const char* name(ScheduleKind k);
std::optional<ScheduleKind> schedule_kind_by_name(std::string_view s);

// A prescribed schedule (`cmacheck explore --cpus`, iterative context bounding): at its
// `point`-th choice point (a step boundary where more than one CPU can run), CPU `to` runs.
struct ScheduleChoice {
  uint32_t point = 0;
  uint8_t to = 0;
  friend bool operator==(const ScheduleChoice&, const ScheduleChoice&) = default;
};
// A choice point of a run under a prescribed schedule: the CPUs that could run (bit t: Tt),
// the one the default schedule takes, and whether taking another is a preemption (the
// running CPU is inside an operation and could go on; at an operation's end or at a block
// every choice is free).
struct ChoicePoint {
  uint8_t runnable = 0;
  uint8_t fallback = 0;
  bool preemption = false;
};

struct ConcurrentOptions {
  impl::FaultSet faults;
  std::optional<Profile> profile;
  // Null: the trace's own schedule (its `switch` lines over the default schedule).
  ChoiceSource* choices = nullptr;
  ScheduleKind kind = ScheduleKind::walk;
  uint32_t pct_depth = 2;
  uint32_t preemptions = 2;
  bool lockstep = true;
  bool want_table = false;  // the step table also for a run that passed
  // Choices (from `choices` or `prescribed`) only where the default's next step conflicts
  // with another CPU's (check/footprint.h); false: at every boundary where two CPUs can run.
  bool conflict_points = true;
  // Tests only: the footprint table is told these faults instead of those injected, to show
  // that the check of every step against its declared footprint fires.
  std::optional<FootprintFaults> footprint_faults_told;
  // The shrinker's replay: a switch that names a step that never comes, or a CPU that cannot
  // run there, is passed over instead of making the trace malformed; `ran` says what ran.
  bool lenient_schedule = false;
  // Non-null: the schedule is the default one but for these choices, in order of `point`,
  // and the run reports its choice points (ConcurrentResult::choice_points). The first
  // `setup_ops` operations of T0 (an explore world's setup) run first, alone: no choice point.
  const std::vector<ScheduleChoice>* prescribed = nullptr;
  uint32_t setup_ops = 0;
};

struct ConcurrentResult {
  RunStatus status = RunStatus::ok;
  std::optional<Finding> finding;
  std::string malformed;
  uint32_t malformed_line = 0;
  // The trace as it ran: the input with the `switch` lines of the schedule that ran (replays it).
  Trace ran;
  uint64_t steps = 0, ops = 0, skipped = 0;
  // The model comparison stopped at an operation that met interference the model cannot
  // yet state (docs/concurrency.md, "Inconclusive"); impl's checks went on.
  bool inconclusive = false;
  std::string inconclusive_reason;
  // Segments (operations between two quiescences) whose commit order departed from impl, so
  // that the audit searched their other linearizations; those where it found one (the run
  // went on in lockstep from it).
  uint64_t audits = 0, audited = 0;
  std::vector<std::string> audit_notes;  // per segment the audit linearized: where and how
  std::string table;  // the step table, one column per CPU
  std::vector<ChoicePoint> choice_points;  // under a prescribed schedule: every one met
  // Boundaries where more than one CPU could run: offered as choices, and passed over because
  // the default's next step commuted with every other CPU's (conflict-directed choice points).
  uint64_t choices_offered = 0, choices_commuting = 0;
};

ConcurrentResult run_concurrent(const Trace& trace, const ConcurrentOptions& options);

// A concurrent program for the fuzzer, the zoo and `cmacheck race`: a small world (the
// shared generator's header), a short sequential prefix on T0, then 1-3 operations per CPU
// drawn from an alphabet biased towards the CMA area ("hot windows"). A movable block placed
// in an area is hot: half of the cma_allocs of another CPU cover one with a window from the
// area's base, and its owner then pins it long-term more often, so that the pin meets the
// migration (docs/concurrency.md, "Programs").
Trace generate_concurrent(ChoiceSource& in, uint8_t cpus, std::optional<Profile> profile = {});

}  // namespace cmacheck

namespace cmacheck {

// Shrinks a concurrent trace that fails with `rule`: first without any switch line, then
// whole CPUs (all the operations of one dropped, or moved to another CPU when no switch names
// them), one operation at a time (the switches that name it go, the later ones of its thread
// are renumbered), one switch at a time, and a single switch in place of several. The CPUs
// left are renumbered densely and `cpus=` lowered; one CPU without switches comes out as a
// sequential trace when the sequential engine fails on it too (a sequential bug stays a
// sequential trace). Every candidate is replayed with its own schedule.
Trace shrink_concurrent(const Trace& failing, const ConcurrentOptions& options, const std::string& rule);

// Random concurrent programs under random schedules (`cmacheck race`, the zoo's race engine).
struct RaceOptions {
  uint64_t seed = 1;
  double seconds = 10;
  uint64_t max_programs = 0;  // 0: until `seconds`
  uint8_t cpus = 0;           // 0: each program picks 2-4
  uint32_t schedules = 8;     // schedules tried per program
  std::optional<ScheduleKind> kind;  // none: each schedule picks one (a swarm over schedulers)
  impl::FaultSet faults;
  std::optional<Profile> profile;
  bool shrink = true;
  bool conflict_points = true;  // ConcurrentOptions::conflict_points
  std::function<void(uint64_t programs, uint64_t runs, double seconds)> progress;
};
struct RaceResult {
  uint64_t programs = 0, runs = 0, steps = 0, ops = 0, inconclusive = 0;
  uint64_t audits = 0, audited = 0;  // summed over the runs (ConcurrentResult)
  uint64_t choices_offered = 0, choices_commuting = 0;  // summed over the runs (ConcurrentResult)
  std::optional<Trace> first_audited;  // the first run the audit linearized, as it ran
  // The inconclusive runs by kind (the reason with its numbers and the operation's arguments
  // left out), each with its count and the first program seed and schedule that showed it.
  struct InconclusiveKind {
    uint64_t count = 0, program_seed = 0;
    uint32_t schedule = 0;
    std::string example;
    Trace ran;  // that run's trace with its schedule (replays the inconclusive run)
  };
  std::map<std::string, InconclusiveKind> inconclusive_kinds;
  double seconds = 0;
  std::optional<ConcurrentResult> finding;  // its `ran` trace replays the failure
  Trace shrunk;                             // the finding, shrunk (when RaceOptions::shrink)
  uint64_t program_seed = 0;                // the program's seed (`--seed` of a rerun finds it first)
};
RaceResult race(const RaceOptions& options);

}  // namespace cmacheck
