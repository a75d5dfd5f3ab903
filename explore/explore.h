// `cmacheck explore` (issue 16, docs/explore.md): every sequence of operations up to a depth
// in one small world, impl and model in lockstep, every check after every step. The search
// is breadth-first over states: a state reached again (the same canonical state, impl and
// model, up to handle names and content stamps) is not explored again, and the first
// violation found is one of the shortest.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "check/runner.h"
#include "impl/faults.h"
#include "trace/trace.h"

namespace cmacheck::explore {

// A world: the trace header, operations run before the search starts (its setup, e.g. a
// pinned page), and the bounds that keep its state space finite.
struct World {
  std::string name;
  std::string description;
  Trace trace;            // header and setup operations
  uint32_t max_pins = 2;  // `pin` is not tried on a block that holds this many pins
  // `touch` is not tried on a block the batches hold this many references to (E1: each
  // touch of a small movable block adds one, up to PAGEVEC_SIZE - 1 per batch).
  uint32_t max_touches = 1;
};

// The named small worlds (explore/worlds.cpp), in the order `cmacheck explore --help` lists.
struct NamedWorld {
  const char* name;
  const char* description;
  const char* text;  // the world as a trace: header and setup
  uint32_t max_pins;
};
std::span<const NamedWorld> named_worlds();
// The worlds the zoo's explore engine searches, round-robin by depth.
std::vector<std::string> zoo_worlds();
// The worlds the zoo's explore-concurrent engine searches, each bound in all before the next.
std::vector<std::string> zoo_concurrent_worlds();

// A world by name, or from a trace file (its header and its operations as the setup). On
// failure writes "PATH: error: ..." or "cmacheck: error: ..." to `err`.
bool load_world(const std::string& name_or_path, World& out, std::ostream& err);
// A world from trace text (a named world's, or a test's).
bool world_from_text(const std::string& name, const std::string& text, uint32_t max_pins, World& out,
                     std::ostream& err);

// The operation alphabet, for --ops: each class is a statement of trace/ops.h, with `alloc`
// and `pin` split by whether they carry `at=` and `longterm`, `touch` by its batch, and the
// two forms of cma_release apart.
enum class OpClass : uint8_t {
  alloc, alloc_at, free, pin, pin_longterm, unpin, migrate, cma_alloc, cma_release, cma_release_raw,
  alloc_contig, free_contig, touch, touch_activate, touch_mlock, lru_drain, pcp_drain, count_
};
inline constexpr size_t kOpClasses = static_cast<size_t>(OpClass::count_);
const char* name(OpClass c);
std::optional<OpClass> op_class_by_name(const std::string& s);
using OpClassSet = uint32_t;  // bit c: class c is tried
inline constexpr OpClassSet kAllOps = (OpClassSet{1} << kOpClasses) - 1;
inline constexpr bool has(OpClassSet set, OpClass c) { return (set >> static_cast<unsigned>(c)) & 1u; }
// The operations of the per-CPU batches (E1, E2): touch in each batch, and lru_drain.
static_assert(static_cast<unsigned>(OpClass::lru_drain) == static_cast<unsigned>(OpClass::touch) + 3);
inline constexpr OpClassSet kBatchOps = OpClassSet{0xf} << static_cast<unsigned>(OpClass::touch);

struct Progress {
  unsigned depth = 0;         // the level being expanded into
  uint64_t states = 0;        // distinct states so far (all levels)
  uint64_t sequences = 0;     // steps run so far: one per (state, operation) pair
  double seconds = 0;
};

struct Options {
  unsigned depth = 4;
  OpClassSet ops = kAllOps;
  impl::FaultSet faults;
  unsigned jobs = 1;  // worker threads; results never depend on it
  // false: no deduplication, every sequence is run (to compare with the deduplicating
  // search at small depths: the same first-violation depth, the same states per depth).
  bool dedup = true;
  double seconds = 0;       // stop after this long (0: never); the result is then incomplete
  uint64_t max_states = 0;  // stop after this many states (0: never)
  std::function<void(const Progress&)> progress;  // called about twice a second
};

struct Level {
  unsigned depth = 0;
  uint64_t states = 0;     // new distinct states first reached at this depth
  uint64_t sequences = 0;  // steps run to reach this level (from the states of the last one)
  double seconds = 0;      // time spent on this level
};

struct Counterexample {
  Trace trace;         // the world, its setup and the operations, the last one failing
  unsigned depth = 0;  // operations after the setup
  Finding finding;     // the usual report, from replaying `trace`
};

struct Result {
  std::vector<Level> levels;  // levels[0] is the world after its setup
  uint64_t states = 0, sequences = 0;
  double seconds = 0;
  bool exhausted = false;  // a level before the depth bound found no new state
  bool complete = true;    // false: stopped by --seconds or --max-states
  std::optional<Counterexample> violation;  // the first in breadth-first order
  std::string error;  // the world's own setup failed, or a counterexample did not replay
};

Result explore(const World& world, const Options& options);

// The lockstep options every explore step runs with: every check on every step.
RunOptions run_options(const impl::FaultSet& faults);

// A readable summary: the table of levels, exhausted or not, the violation's trace.
std::string summary(const World& world, const Options& options, const Result& result);

// The counterexample as a file: a comment saying how it was found, then the trace.
std::string counterexample_text(const World& world, const Options& options, const Result& result);

// ---------------------------------------------------------------------------------------
// Concurrent programs under a preemption bound (issue 17, docs/explore.md "Concurrent
// programs"): iterative context bounding (Musuvathi & Qadeer, PLDI'07) over every program
// of a small world with 1..ops_per_cpu operations on each of `cpus` CPUs, each run by the
// concurrent engine (check/concurrent.h) with its ghost checks after every step and
// linearizability at quiescence.

// Every sequence of 1..max_ops operations a CPU may run from the world's state after its
// setup, shortest first: each operation from the alphabet of the state the ones before it
// reach when they run alone. Handles are interned in `names` (the world's trace, plus
// explore's pool of handle names).
std::vector<std::vector<Op>> thread_programs(const World& world, OpClassSet ops, const impl::FaultSet& faults,
                                             unsigned max_ops, Trace& names, std::string& error);

struct InterleavingOptions {
  uint8_t cpus = 2;
  unsigned ops_per_cpu = 1;  // M: each CPU runs 1..M operations
  unsigned preemptions = 1;  // K: schedules with at most K preemptions
  // Checks only the schedules with at least this many (the zoo's deepening across worlds
  // has run the others): their runs still happen, to find the choice points.
  unsigned min_preemptions = 0;
  OpClassSet ops = kAllOps;
  impl::FaultSet faults;
  double seconds = 0;          // stop after this long (0: never); the result is then incomplete
  uint64_t max_programs = 0;   // per bound (0: all)
  bool conflict_points = true;  // ConcurrentOptions::conflict_points (false: every boundary)
  struct Progress {
    unsigned bound = 0;  // the preemption count being enumerated
    uint64_t programs = 0, programs_total = 0, schedules = 0, runs = 0;
    double seconds = 0;
  };
  std::function<void(const Progress&)> progress;  // about twice a second
  // Called for every schedule checked (its preemptions: the bound being enumerated), with
  // the trace as it ran (its switch lines); for tests.
  std::function<void(unsigned preemptions, const Trace& ran)> on_schedule;
};

// The schedules with exactly `preemptions` preemptions of every program (the runs with fewer
// are run again to find the choice points; `runs` counts every run).
struct BoundLevel {
  unsigned preemptions = 0;
  uint64_t programs = 0, schedules = 0, runs = 0, inconclusive = 0;
  uint64_t max_schedules = 0;  // the most of one program
  double seconds = 0;
};

struct InterleavingCounterexample {
  Trace trace;               // the program with the `switch` lines of the failing schedule
  unsigned preemptions = 0;  // no schedule with fewer fails, in any program
  unsigned operations = 0;   // after the setup, all CPUs
  Finding finding;           // the report of replaying `trace`
};

struct InterleavingResult {
  // Per CPU: the other CPUs' programs name none of the setup's handles but in `touch` (a
  // handle belongs to one thread, docs/trace-format.md).
  std::vector<uint64_t> thread_programs;
  uint64_t programs = 0;         // the product of thread_programs
  std::vector<BoundLevel> levels;
  uint64_t schedules = 0, runs = 0, inconclusive = 0;
  double seconds = 0;
  bool complete = true;  // false: stopped by --seconds or --max-programs
  std::optional<InterleavingCounterexample> violation;  // the first: fewest preemptions, then fewest operations
  std::string error;
};

InterleavingResult explore_interleavings(const World& world, const InterleavingOptions& options);
std::string interleavings_summary(const World& world, const InterleavingOptions& options, const InterleavingResult& r);
std::string interleaving_counterexample_text(const World& world, const InterleavingOptions& options,
                                             const InterleavingResult& r);

}  // namespace cmacheck::explore
