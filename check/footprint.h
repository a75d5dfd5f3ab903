// Footprints of steps, for conflict-directed choice points (docs/concurrency.md,
// "Schedulers"): a scheduler offers a choice at a step boundary only when the step the
// default schedule runs next conflicts with something another CPU has still to run. Two
// steps that touch disjoint kernel state (cma->lock of one area and zone->lock, say) give
// the same result in either order; when the default's next step commutes with every step
// the other CPUs have left, any schedule that runs some of theirs first is equivalent to one
// that runs it first (a persistent set of one, Godefroid), so a choice there only spends
// the schedule's budget (PCT's k, bounded preemptions, explore's choice points).
//
// (Comparing only the CPUs' *next* steps, as the design proposed, loses schedules: a
// long-term pin and a cma_alloc's first step (the bitmap) commute, so the pin would always
// run first, and D15, the pin meeting the migration, needs the cma_alloc's later steps
// before it. explore --cpus 2 lost D15 and D21 at every bound that way.)
//
// A footprint is declared before its step runs, from the operation and the thread's last
// event; the engine checks after every step that the step that ran was inside the
// footprint it declared (rule "footprint"), so a table that forgets a transition fails
// every test that meets it instead of silently hiding schedules.
#pragma once

#include <cstdint>
#include <optional>

#include "trace/steps.h"
#include "trace/trace.h"

namespace cmacheck {

struct Footprint {
  enum class Zone : uint8_t { none, read, write };
  Zone zone = Zone::none;   // zone->lock state: free lists, pageblock labels, counters
  uint8_t pcp = 0;          // CPUs whose page lists or pcp lock (Q2-Q4), bit per CPU
  uint8_t batches = 0;      // CPUs whose LRU batches, and lru_disable_count (E1-E3)
  uint32_t bitmaps = 0;     // areas whose bitmap and cma->lock (A3, A4, R1), bit per area mod 32
  bool mutex = false;       // cma_mutex
  bool any_handle = false;  // an allocation record, not known in advance
  std::optional<HandleId> handle;  // the one allocation record touched

  bool empty() const;
  // What a step of alloc_contig_range or a zone->lock operation may touch: everything but
  // the bitmaps and cma_mutex.
  static Footprint shared_state();
  Footprint& operator|=(const Footprint& o);
  bool covers(const Footprint& o) const;  // every resource of `o` is in this one
  friend bool operator==(const Footprint&, const Footprint&) = default;
};

// Read/write or write/write on one resource (handles and allocation records count as writes).
bool conflict(const Footprint& a, const Footprint& b);

// What a thread touches when it runs next, up to its next step boundary. `last` is the label of
// its last boundary inside the running operation (none: the operation has not started);
// `blocked` says that boundary was a wait (for cma_mutex or the LRU), not a step;
// `nothing_reserved` that its last `reserve` found no window. `cma_mutex` is false when the
// build runs without it (fault no_cma_mutex, D18); `clear_bits_first` under the fault of that
// name. Conservative: a union over every way the code can go on.
struct NextStep {
  const Op* op = nullptr;
  uint8_t cpu = 0;
  std::optional<StepLabel> last;
  bool blocked = false;
  bool nothing_reserved = false;
};
struct FootprintFaults {
  bool no_cma_mutex = false;
  bool clear_bits_first = false;
};
Footprint next_footprint(const NextStep& next, const FootprintFaults& faults);

// Everything an operation may touch, over all its steps.
Footprint op_footprint(const Op& op, uint8_t cpu);

// What the step that ended with `label` touched (the part of the code before the boundary that
// the label names): the engine checks it against the footprint declared before it ran.
Footprint step_footprint(StepLabel label, AreaId area, const Op& op);

}  // namespace cmacheck
