#include "properties/registry.h"

#include <cstdio>
#include <regex>
#include <sstream>

#include "properties/properties.h"
#include "trace/print.h"

namespace cmacheck::props {

namespace {

using impl::Fault;

// -- the property-local faults -----------------------------------------------------------

// A printer that drops `align=` from cma_alloc: the text no longer says what was run.
void lossy_printer(Context& c) {
  c.printer = [](const Trace& t) { return std::regex_replace(print_trace(t), std::regex(" align=[0-9]+"), ""); };
}

// A system with state hidden outside the allocator (a counter shared by every instance):
// every other migrate fails, whatever the allocator's state, so two replays of one trace
// differ.
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

void hidden_state(Context& c) {
  c.factory = [](Side side, const Trace& h) -> std::unique_ptr<System> {
    return std::make_unique<LeakySystem>(make_system(side, h, {}));
  };
}

// -- the table ---------------------------------------------------------------------------

std::vector<Property> make_table() {
  std::vector<Property> t;

  // 1. The stateful lockstep test.
  t.push_back({
      "Lockstep.ImplAgreesWithModelAfterEveryOperation",
      "K1, K2, K3, L1, I1-I10, M7",
      "every generated statement runs on impl and the model in lockstep (rc::state) with every check of the "
      "lockstep checker",
      lockstep,
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
      true,
      {Fault::no_cma_preference, Fault::keep_bits_after_busy, Fault::migration_drops_content,
       Fault::aligned_mask_shifts_order, Fault::contig_isolates_cma_edges, Fault::edge_split_counts_free_twice,
       Fault::longterm_pins_after_failed_migration},
      {},
  });

  // 2. Algebraic properties.
  t.push_back({
      "Algebra.AllocThenFreeRestoresState",
      "F1, B2, B5, K3, M5",
      "a successful alloc followed by its free restores every observable but the B5 claims of the alloc",
      alloc_then_free,
      {{"restored", "cases", 0.5, "the alloc succeeds"}},
      false,
      {Fault::merge_cma_with_movable},
      {},
  });
  t.push_back({
      "Algebra.CmaAllocThenReleaseRestores",
      "A4, R1, X2, X5, B5, M5",
      "a successful cma_alloc followed by its cma_release restores the area; only the blocks it migrated moved",
      cma_alloc_then_release,
      {{"cma_alloc.ok", "cases", 0.3, "the cma_alloc succeeds"},
       {"cma_alloc.migrated", "cases", 0.05, "the cma_alloc migrates blocks"}},
      false,
      {Fault::release_one_chunk_short},
      {},
  });
  t.push_back({
      "Algebra.FailedOperationChangesNothing",
      "I10, A6, X2, F1, P2, P3, G1, R2",
      "an operation that fails changes nothing but the moves of a failed contiguous request and their B5 claims",
      failed_operation_changes_nothing,
      {{"failures", "cases", 2.0, "operations fail"},
       {"failures.with_moves", "cases", 0.02, "failed contiguous allocations moved blocks (X2)"},
       {"failures.cma_alloc", "cases", 0.2, "cma_alloc fails"}},
      false,
      {Fault::leave_isolated_on_failure, Fault::keep_bits_after_busy, Fault::merge_isolated},
      {},
  });
  t.push_back({
      "Algebra.ReleasingPagesNotHandedOutChangesNothing",
      "R2",
      "a raw cma_release of frames the area did not hand out as one allocation fails and changes nothing",
      release_not_handed_out_changes_nothing,
      {{"refused.near_live", "cases", 0.3, "the release is a near miss of a live allocation"}},
      false,
      {Fault::count_truncated_32bit},
      {},
  });
  t.push_back({
      "Algebra.ResultsAreAlignedAndContiguous",
      "M3, M4, B1, B7, I4, A1, A2, C1, G1",
      "every result is aligned, contiguous, of the requested size and inside its area",
      results_aligned_and_contiguous,
      {{"checked.cma_alloc", "cases", 0.5, "cma_alloc results are checked"},
       {"checked.alloc_contig", "cases", 0.2, "alloc_contig results are checked"}},
      false,
      {Fault::align_to_area_base, Fault::aligned_offset_to_next},
      {},
  });
  t.push_back({
      "Algebra.NoTwoLiveAllocationsOverlap",
      "I1, I3, M2, X5",
      "after every operation no two live allocations overlap and the allocated frames are exactly theirs",
      no_two_live_allocations_overlap,
      {{"checked.steps", "cases", 10, "steps are checked"}},
      false,
      {Fault::leave_isolated_on_failure},
      {},
  });
  t.push_back({
      "Algebra.ParsePrintRoundTrip",
      "trace format",
      "parse(print(trace)) == trace, and printing is a fixed point",
      parse_print_round_trip,
      {{"checked.statements", "cases", 10, "statements are printed and parsed"},
       {"checked.expect", "cases", 1, "expect statements are printed and parsed"}},
      false,
      {},
      {{"lossy_printer", "a printer that drops `align=`", lossy_printer}},
  });
  t.push_back({
      "Algebra.ReplayIsDeterministic",
      "K1, trace format",
      "the generating run, replays of the trace and of its printed text give the same outcomes and state",
      replay_is_deterministic,
      {{"checked.ops", "cases", 10, "operations are replayed"},
       {"checked.lockstep", "cases", 0.3, "lockstep replays are compared"}},
      false,
      {},
      {{"hidden_state", "a system with hidden state: every other migrate fails", hidden_state}},
  });

  // 3. Liveness.
  t.push_back({
      "Liveness.RetryAfterUnpinSucceeds",
      "L2, A3, A4, X1-X3, P3, I6",
      "after every pin is dropped, cma_alloc succeeds at the first window of clear bits when there is room",
      retry_after_unpin_succeeds,
      {{"retry.room", "cases", 0.3, "the retry has a window and room"},
       {"retry.room_after_pin", "cases", 0.05, "the first attempt was busy on a pin, the retry has room"}},
      false,
      {Fault::keep_bits_after_busy},
      {},
  });
  t.push_back({
      "Liveness.LongtermPinNeverInCma",
      "L4, P2, I6",
      "a long-term pinned block never lies in a CMA area",
      longterm_pin_never_in_cma,
      {{"pin_longterm.migrated", "cases", 0.3, "long-term pins migrate out of CMA"}},
      false,
      {Fault::longterm_stays_in_cma, Fault::longterm_target_in_cma, Fault::longterm_pin_before_migrate},
      {},
  });
  t.push_back({
      "Liveness.FreeWindowIsGranted",
      "L3, A3, A4, C1, C2",
      "an all-free first window of clear bits is granted; alloc_contig succeeds at or before an all-free candidate",
      free_window_is_granted,
      {{"cma.free_window", "cma.cases", 0.2, "the cma_alloc window is all free"},
       {"contig.free_candidate", "contig.cases", 0.2, "an alloc_contig candidate is all free"}},
      false,
      {Fault::isolation_no_edge_split, Fault::contig_stops_at_first_failure},
      {},
  });
  t.push_back({
      "Liveness.CmaAllocUpToMaxchunkSucceeds",
      "L4, A1-A4, M7",
      "with no pin and room outside the area, cma_alloc succeeds for every count up to maxchunk",
      cma_alloc_up_to_maxchunk_succeeds,
      {{"room", "areas", 0.3, "the area has room outside it"},
       {"room.with_movable", "areas", 0.1, "the area holds movable blocks to migrate"}},
      false,
      {Fault::isolation_no_edge_split, Fault::unmovable_in_cma},
      {},
  });
  return t;
}

std::string percent(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v * 100);
  return b;
}

const char* const kBlocks[] = {"bites", "floors"};

std::string begin_marker(std::string_view name) {
  return "<!-- BEGIN generated: " + std::string(name) +
         " (properties_test --write-doc docs/properties.md; edit properties/registry.cpp) -->";
}
std::string end_marker(std::string_view name) { return "<!-- END generated: " + std::string(name) + " -->"; }

}  // namespace

std::span<const Property> properties() {
  static const std::vector<Property> table = make_table();
  return table;
}

const Property* find_property(std::string_view id) {
  for (const Property& p : properties())
    if (p.id == id) return &p;
  return nullptr;
}

const LocalFault* find_local_fault(const Property& p, std::string_view name) {
  for (const LocalFault& f : p.catches_local)
    if (f.name == name) return &f;
  return nullptr;
}

std::string doc_block(std::string_view name) {
  std::ostringstream o;
  if (name == "bites") {
    o << "| property | faults it must catch (one bite test each) |\n|---|---|\n";
    for (const Property& p : properties()) {
      o << "| `" << p.id << "` | ";
      std::string sep;
      for (Fault f : p.catches) o << sep << impl::fault_info(f).name, sep = ", ";
      for (const LocalFault& f : p.catches_local) o << sep << "(property-local) " << f.name << ": " << f.description, sep = ", ";
      o << " |\n";
    }
  } else if (name == "floors") {
    o << "| property | floors (counters summed over all cases) |\n|---|---|\n";
    for (const Property& p : properties()) {
      o << "| `" << p.id << "` | ";
      std::string sep;
      for (const Floor& f : p.floors) {
        o << sep << f.why << ": `" << f.num << "` >= ";
        if (f.min < 1) {
          o << percent(f.min) << " % of `" << f.den << "`";
        } else {
          char b[32];
          std::snprintf(b, sizeof b, "%g", f.min);
          o << b << " per `" << f.den << "`";
        }
        sep = "; ";
      }
      o << " |\n";
    }
  }
  return o.str();
}

bool update_doc(const std::string& text, std::string& out, std::string& error) {
  out = text;
  for (const char* name : kBlocks) {
    const std::string begin = begin_marker(name), end = end_marker(name);
    const size_t b = out.find(begin);
    const size_t e = out.find(end);
    if (b == std::string::npos || e == std::string::npos || e < b + begin.size() + 1 || out[b + begin.size()] != '\n') {
      error = "no block between a line '" + begin + "' and a line '" + end + "'";
      return false;
    }
    const size_t from = b + begin.size() + 1;  // after the marker's line
    out.replace(from, e - from, doc_block(name));
  }
  return true;
}

}  // namespace cmacheck::props
