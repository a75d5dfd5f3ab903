// Shared machinery of the RapidCheck properties (docs/properties.md):
//
//  - RcChoices: the shared generator's ChoiceSource backed by RapidCheck, so that every
//    decision of trace/generate.h is a RapidCheck pick and shrinks towards 0;
//  - System: the reference allocator (impl/) or the executable model (model/) behind one
//    interface, so that each algebraic and liveness property is checked on both: on impl
//    because that is what we test, on the model because a property must be true of the
//    spec before it may judge impl;
//  - Run: a trace being built and executed on one System, with the handle bookkeeping the
//    generator needs;
//  - State/compare: what an outside observer sees (counts, labels, frames, contents,
//    placements, bitmaps) and the differences a rule allows;
//  - spec helpers computed from the rules alone (bitmap from I5, the first window of A3,
//    free slots for migrations);
//  - counterexamples: a failing case writes its trace, annotated with the property's claim
//    as `=> ok` / `expect` lines, and prints the `cmacheck replay` command;
//  - statistics: counters aggregated over every case of a check, a distribution table and
//    floors, so that a generator that stops exploring fails the test.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck.h>

#include "check/runner.h"
#include "impl/faults.h"
#include "trace/generate.h"
#include "trace/outcome.h"
#include "trace/trace.h"

namespace cmacheck::props {

// ---------------------------------------------------------------------------------------
// Choices

// Every below(bound) is one RapidCheck pick, uniform in [0, bound) whatever the current
// size (the generator's own distributions assume uniform choices), shrinking towards 0.
class RcChoices final : public ChoiceSource {
 public:
  uint64_t below(uint64_t bound) override;
  bool exhausted() const override { return false; }
};

// A log-uniform count in [1, max]: most requests are small, some are the whole area.
uint64_t small_count(ChoiceSource& rc, uint64_t max);
// A number as trace text.
inline std::string num(uint64_t v) { return std::to_string(v); }

// Records the values another source gives, so that a generator's header can be re-created.
class RecordingChoices final : public ChoiceSource {
 public:
  explicit RecordingChoices(ChoiceSource& inner) : inner_(inner) {}
  uint64_t below(uint64_t bound) override;
  bool exhausted() const override { return inner_.exhausted(); }
  const std::vector<uint64_t>& values() const { return values_; }

 private:
  ChoiceSource& inner_;
  std::vector<uint64_t> values_;
};

// Replays recorded values, then asks `then`.
class ReplayThen final : public ChoiceSource {
 public:
  ReplayThen(const std::vector<uint64_t>& values, ChoiceSource& then) : values_(values), then_(then) {}
  uint64_t below(uint64_t bound) override;
  bool exhausted() const override { return false; }

 private:
  const std::vector<uint64_t>& values_;
  size_t pos_ = 0;
  ChoiceSource& then_;
};

// ---------------------------------------------------------------------------------------
// Systems

enum class Side : uint8_t { impl, model };
const char* name(Side s);

// What an outside observer can ask of either side.
class System {
 public:
  virtual ~System() = default;
  virtual Side side() const = 0;
  virtual std::unique_ptr<System> clone() const = 0;
  virtual void apply(const Op& op, Outcome& out) = 0;
  virtual uint64_t free_pages() const = 0;
  virtual uint64_t free_cma_pages() const = 0;
  virtual AreaStats area_stats(AreaId a) const = 0;
  virtual MigrateType label(Pfn p) const = 0;
  // '.' free, 'm' movable, 'u' unmovable, 'r' reclaimable, 'P' pinned block, 'C' cma_alloc,
  // 'X' alloc_contig, 'i' free in an isolated pageblock (never between operations).
  virtual char frame(Pfn p) const = 0;
  virtual uint64_t content(Pfn p) const = 0;
  virtual std::optional<FrameRange> where(HandleId h) const = 0;
  virtual uint32_t pins(HandleId h) const = 0;
  virtual bool longterm(HandleId h) const = 0;
  // The bitmap words of an area, when the side exposes them (impl does; the model's bits
  // are observable only through used/maxchunk and I5).
  virtual std::optional<std::vector<uint64_t>> bitmap(AreaId a) const = 0;
};

std::unique_ptr<System> make_system(Side side, const Trace& header, impl::FaultSet faults);

// ---------------------------------------------------------------------------------------
// A run: a trace built and executed statement by statement on one System.

struct HandleInfo {
  Family family = Family::block;
  Kind kind = Kind::movable;  // blocks
  Order order{};              // blocks
  AreaId area{};              // cma
  PageCount count{};          // cma, contig: requested count
  Order align{};              // cma
};

class Run final : public LiveHandles {
 public:
  Run(const Trace& header, std::unique_ptr<System> sys);
  Run(const Run& other);
  Run& operator=(const Run&) = delete;

  // Appends `op` to the trace and executes it.
  const Outcome& step(const Op& op);
  // Sets the expectation of the last operation (its claim, for the counterexample).
  void expect_last(bool ok, std::optional<Pfn> pfn = std::nullopt);
  // Appends an `expect` statement (nothing is checked here: it is the claim, printed).
  void expect(std::vector<ExpectItem> items);
  // The counts of M7 as `expect` items with the given values.
  std::vector<ExpectItem> count_items(uint64_t free, uint64_t free_cma, const std::vector<AreaStats>& areas) const;
  std::vector<ExpectItem> count_items() const;  // the current ones
  // A new handle name, `prefix` followed by a number, never used in this trace.
  HandleId fresh(const std::string& prefix);

  Trace& trace() { return trace_; }
  const Trace& trace() const { return trace_; }
  System& sys() { return *sys_; }
  const System& sys() const { return *sys_; }
  const Outcome& last() const { return last_; }
  const HandleTable& table() const { return table_; }
  const HandleInfo& info(HandleId h) const { return info_.at(raw(h)); }
  std::vector<HandleId> live(Family f) const { return table_.live_of(f); }

  // LiveHandles, for the generator.
  size_t count(Family f) const override { return table_.live_count(f); }
  HandleId at(Family f, size_t i) const override { return table_.live_list(f)[i]; }
  FrameRange cma_range(HandleId h) const override;

 private:
  Trace trace_;
  std::unique_ptr<System> sys_;
  HandleTable table_;
  std::map<uint32_t, HandleInfo> info_;
  Outcome last_;
  uint32_t names_ = 0;
};

// A run being generated: the header and every operation come from RapidCheck picks through
// the shared generator (and steer_op).
struct Generated {
  std::unique_ptr<RcChoices> rc;
  std::unique_ptr<Generator> gen;
  std::unique_ptr<Run> run;
  // The next operation for this run (not yet executed): the shared generator's, or, one
  // time in eight when the world has areas, a statement that steers towards CMA (see
  // steer_op).
  Op next();
};
// A statement that steers towards CMA, or nothing: `alloc kind=movable at=PFN` of a block
// of order 0..2 at free frames inside an area, or `pin` of a movable block in a CMA
// pageblock. The shared generator seldom puts movable blocks in CMA areas (a movable
// request takes CMA only when more than half of the free memory is CMA or MOVABLE is
// exhausted, B4), so without these, busy windows and migrations out of windows are rare.
std::optional<Op> steer_op(Run& run, ChoiceSource& rc, HandleId (*fresh)(Run&));

// Up to `n` movable blocks of order 0..2 placed with `alloc at=` at free frames of area `a`.
void crowd_area(Run& run, ChoiceSource& rc, AreaId a, uint64_t n);

// The worlds every property runs in (a pick): the shared generator's small worlds, three
// in four with 64..256 pages, the rest 64..4096; pageblock_order 2..5, up to 3 areas,
// order_per_bit up to 2.
GeneratorLimits world_limits();

// The world only (header and swarm), drawn with world_limits().
Generated start(Side side);
// A length in [0, max_ops], scaled by RapidCheck's size, so that early cases and shrunk
// cases are short.
size_t pick_length(size_t max_ops);
// The world and pick_length(max_ops) operations.
Generated generate(Side side, size_t max_ops);

// The side a case runs on: impl when a fault is injected, else a pick (shrinking to impl).
Side pick_side();

// ---------------------------------------------------------------------------------------
// Observations and the differences the rules allow

struct LiveView {
  Pfn pfn{};
  PageCount count{};
  uint32_t pins = 0;
  bool longterm = false;
  friend bool operator==(const LiveView&, const LiveView&) = default;
};

struct State {
  uint64_t free = 0, free_cma = 0;
  std::vector<AreaStats> areas;
  std::vector<MigrateType> labels;  // per pageblock
  std::string frames;               // per frame, System::frame
  std::vector<uint64_t> contents;   // per frame
  std::map<uint32_t, LiveView> live;
  std::vector<std::optional<std::vector<uint64_t>>> bitmaps;
};
State capture(const Run& run);

// A pageblock label that B5 may change: only a MOVABLE, UNMOVABLE or RECLAIMABLE pageblock,
// only to `to`, only inside `region` (the max_order-aligned block around the block taken).
struct ClaimAllowance {
  MigrateType to;
  FrameRange region;
};
// The max_order-aligned block containing `p`.
FrameRange max_order_block(const MachineDecl& m, Pfn p);

// The first difference between `after` and `before` with `moves` applied (each move
// relocates a whole allocation, frames and contents, and frees its old frames), labels
// allowed to change as `claims` say, CMA labels never. nullopt when they agree.
std::optional<std::string> compare(const Trace& t, const State& before, const State& after, const std::vector<Move>& moves,
                                   const std::vector<ClaimAllowance>& claims);

// ---------------------------------------------------------------------------------------
// The spec, computed from the rules alone (not asked of either side)

// I5: the bitmap of an area as the live cma allocations of the run imply (one bool per bit).
std::vector<bool> implied_bitmap(const Run& run, AreaId a);
// A2, A3: the first aligned window of clear bits for (count, align), searched from bit 0.
std::optional<FrameRange> first_window(const Trace& t, AreaId a, const std::vector<bool>& bits, PageCount count,
                                       Order align);
// The longest run of clear bits, in pages (M7 maxchunk).
uint64_t implied_maxchunk(const Trace& t, AreaId a, const std::vector<bool>& bits);
// The live movable blocks intersecting `r` (X2 moves each of them whole).
std::vector<HandleId> movable_blocks_in(const Run& run, FrameRange r);
// Free slots of order k outside `excluded` pageblocks: 2^k-aligned ranges, all free, no
// pageblock excluded, whose pageblocks' labels B2 lets merge (all CMA, or none CMA). Each
// is (part of) one free block of order >= k; a migration of a block of order <= k
// consumes at most one of them.
uint64_t free_slots(const Run& run, uint8_t k, const std::vector<bool>& excluded_pageblocks);
// The pageblocks intersecting `r` (those alloc_contig_range isolates, X1).
std::vector<bool> pageblocks_of(const Trace& t, FrameRange r);

// ---------------------------------------------------------------------------------------
// The property being checked, its fault and where counterexamples go

struct Context {
  std::string property;   // "Suite.Name"; empty: the current gtest name
  impl::FaultSet faults;  // injected into impl
  std::vector<std::string> fault_names;  // their names, for the file name and `--fault NAME` of the replay command
  std::string out_dir;      // counterexample directory; empty: corpus/properties
  std::string last_file;    // the last counterexample written
  std::string last_rule;    // the rules the last failure cited
  // Property-local faults, for the two properties no impl fault can reach (round trip and
  // determinism: see docs/properties.md). Empty: the real printer and make_system.
  std::function<std::string(const Trace&)> printer;
  std::function<std::unique_ptr<System>(Side, const Trace&)> factory;
};
Context& context();
// make_system, or the context's factory.
std::unique_ptr<System> new_system(Side side, const Trace& header);

// Sets the context for a scope (run_property in run.h): the property, the impl faults
// injected, where counterexamples go (empty: corpus/properties).
class ContextScope {
 public:
  ContextScope(std::string property, const std::vector<impl::Fault>& faults, std::string out_dir);
  Context& operator*() { return context(); }
  Context* operator->() { return &context(); }
  ~ContextScope();

 private:
  Context saved_;
};

// The counterexample path of the current property.
std::string counterexample_path();
// The command that replays it.
std::string replay_command(const std::string& path);

// Writes the run's trace as the counterexample of the current property and fails the case
// with `what`, the file and the replay command. The last failing case of a check is the
// shrunk one, so the file left behind is the shrunk counterexample. `rule` is the rule
// violated (context().last_rule); without it, the rule ids `what` cites at its end, as in
// "... (L2, A3, A4)".
[[noreturn]] void fail(const Trace& t, Side side, const std::string& what, const std::string& rule);
[[noreturn]] inline void fail(const Trace& t, Side side, const std::string& what) { fail(t, side, what, {}); }
// The rule ids cited in parentheses at the end of a message ("... (M4, A4: exactly count
// frames)" -> "M4, A4"), or "".
std::string cited_rules(const std::string& message);
[[noreturn]] inline void fail(const Run& run, const std::string& what) { fail(run.trace(), run.sys().side(), what); }
#define PROP_ASSERT(run, cond, what)              \
  do {                                            \
    if (!(cond)) ::cmacheck::props::fail(run, what); \
  } while (0)

// ---------------------------------------------------------------------------------------
// Statistics: counters over every case of one check

// Counters of the property being checked (one set per property, so that one process can
// run every property).
class Stats {
 public:
  void add(const std::string& key, uint64_t n = 1) { counts_[key] += n; }
  uint64_t get(const std::string& key) const {
    auto it = counts_.find(key);
    return it == counts_.end() ? 0 : it->second;
  }
  void clear() { counts_.clear(); }
  const std::map<std::string, uint64_t>& counts() const { return counts_; }

 private:
  std::map<std::string, uint64_t> counts_;
};
Stats& stats();                       // the current property's
Stats& stats_of(const std::string& property);
std::string current_property();       // context().property, or the running gtest

// Per operation kind (as the generator names them, plus `expect`): calls, ok, and each
// failure reason; cma_alloc and alloc_contig also busy windows and migrations.
void record_op(const Trace& t, const Op& op, const Outcome& out);
std::string op_kind(const Op& op);
std::string distribution_table(const Stats& s);

// A floor: stats(num) / stats(den) must be at least `min`; a description when it is not.
struct Floor {
  std::string num, den;
  double min;
  std::string why;
};
std::vector<std::string> failed_floors(const Stats& s, const std::vector<Floor>& floors);
std::string floors_table(const Stats& s, const std::vector<Floor>& floors);

}  // namespace cmacheck::props
