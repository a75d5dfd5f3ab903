// The model's side: the trace through check::Session in lockstep (impl/ and model/, every
// invariant, full tier after every operation). The Session compares both sides' observations
// after every operation -- results, counts, area stats and every live placement -- so the
// values read here are the model's as much as impl's: had they differed, the run would
// stop with a finding (and `cmacheck replay` would fail).
#include <algorithm>

#include "check/runner.h"
#include "kreplay/kreplay.h"
#include "model/model.h"

namespace cmacheck::kreplay {

namespace {

void observe(const Session& s, Prediction& p) {
  const impl::Allocator& a = s.impl();
  const MachineDecl& m = s.trace().machine;
  p.ran = true;
  p.free = a.free_pages();
  p.free_cma = a.free_cma_pages();
  // The labels come from impl/: the lockstep Session does not compare labels with the
  // model's (its observations are results, counts, stats and placements).
  p.labels.clear();
  for (uint64_t f = 0; f < m.pages; f += raw(m.pageblock_pages())) p.labels += label_letter(a.label(Pfn{f}));
  p.set_bits.clear();
  if (s.trace().areas.empty()) return;
  const AreaDecl& area = s.trace().areas[0];
  p.stats = a.area_stats(AreaId{0});
  // Rule I5: a bit is set exactly when its chunk overlaps a live cma_alloc allocation.
  const uint64_t o = area.order_per_bit;
  for (HandleId h : s.handles().live_list(Family::cma)) {
    const impl::Allocation* al = a.allocation(h);
    if (!al || al->area != AreaId{0}) continue;
    const uint64_t first = (raw(al->pfn) - raw(area.base)) >> o;
    const uint64_t last = (raw(al->pfn) + raw(al->count) - 1 - raw(area.base)) >> o;
    for (uint64_t j = first; j <= last; ++j) p.set_bits.push_back(j);
  }
  std::sort(p.set_bits.begin(), p.set_bits.end());
  p.set_bits.erase(std::unique(p.set_bits.begin(), p.set_bits.end()), p.set_bits.end());
}

}  // namespace

Predictions predict(const Trace& trace, uint32_t full_every) {
  RunOptions ro;
  ro.check_expectations = false;  // kreplay reports the trace's own expectations itself
  ro.full_every = full_every;
  if (full_every > 1) ro.self_check_every = 0;  // (and at the end)
  Session s(trace, ro);
  Predictions out;
  out.after.resize(trace.statements.size());
  observe(s, out.start);
  for (size_t i = 0; i < trace.statements.size(); ++i) {
    if (!s.step(i)) {
      out.complete = false;
      if (s.status() == RunStatus::malformed) {
        out.malformed = true;
        out.line = s.malformed_line();
        out.message = s.malformed_message();
      } else {
        out.line = trace.statements[i].line;
        out.message = s.finding() ? s.finding()->report : "the lockstep run stopped";
      }
      return out;
    }
    Prediction& p = out.after[i];
    observe(s, p);
    const Statement& st = trace.statements[i];
    if (std::holds_alternative<Op>(st.body)) {
      p.ok = s.last_outcome().ok;
      p.pfn = s.last_outcome().pfn;
      p.reason = s.last_outcome().reason;
    } else {
      for (const ExpectItem& it : std::get<Expect>(st.body).items) {
        uint64_t v = 0;
        switch (it.key) {
          case ExpectKey::free:
            v = s.impl().free_pages();
            break;
          case ExpectKey::free_cma:
            v = s.impl().free_cma_pages();
            break;
          case ExpectKey::area_used:
            v = p.stats.used;
            break;
          case ExpectKey::area_maxchunk:
            v = p.stats.maxchunk;
            break;
          case ExpectKey::handle_pfn:
            v = raw(s.impl().allocation(HandleId{it.subject})->pfn);
            break;
          case ExpectKey::pageblock_label:
            v = static_cast<uint64_t>(s.impl().label(Pfn{it.subject}));
            break;
          case ExpectKey::batched:
            v = s.impl().batched();
            break;
          case ExpectKey::free_pcp:
            v = s.impl().free_pcp_pages();
            break;
        }
        p.expect_values.push_back(v);
      }
    }
  }
  if (!s.finish()) {
    out.complete = false;
    out.line = trace.statements.empty() ? 0 : trace.statements.back().line;
    out.message = s.finding() ? s.finding()->report : "the final check failed";
  }
  return out;
}

std::optional<std::string> k2_illegal(const Trace& trace, size_t index, Pfn pfn) {
  RunOptions ro;
  ro.check_expectations = false;
  Session before(trace, ro);
  for (size_t i = 0; i < index; ++i)
    if (!before.step(i)) return "the lockstep run stopped before this statement";
  // impl's outcome of the statement: its fallback heads, its result
  Session with_impl(trace, ro);
  with_impl.restore(before);
  if (!with_impl.step(index)) return "the lockstep run stopped at this statement";
  const Op& op = std::get<Op>(trace.statements[index].body);
  std::string why;
  // impl's heads; impl's heads with the last (the block taken) the kernel's; the kernel's alone
  for (int attempt = 0; attempt < 3; ++attempt) {
    Session s(trace, ro);
    s.restore(before);
    Outcome kernel = with_impl.last_outcome();
    kernel.ok = true;
    kernel.reason = FailReason::none;
    kernel.pfn = pfn;
    if (attempt > 0) {
      if (kernel.fallback_heads.empty()) break;
      if (attempt == 1)
        kernel.fallback_heads.back() = pfn;
      else
        kernel.fallback_heads.assign(1, pfn);
    }
    Outcome mine;
    auto v = s.model_for_tests()->apply(op, kernel, mine);
    if (!v) return std::nullopt;
    if (why.empty()) why = v->rule + ": " + v->message;
  }
  return why;
}

}  // namespace cmacheck::kreplay
