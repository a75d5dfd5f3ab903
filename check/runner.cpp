#include "check/runner.h"

#include <algorithm>
#include <cassert>
#include <ostream>
#include <sstream>

#include "model/model.h"
#include "trace/print.h"

namespace cmacheck {

namespace {

// The tables of the last session that ended on this thread, kept so that the next session
// reuses their memory: a fuzz target runs thousands of short sessions a second. Only the
// tables are kept (so every session frees what else it allocates), and only small ones.
struct SpareTables {
  impl::Allocator::Tables impl;
  model::Model::Tables model;
};
thread_local SpareTables spare;
constexpr uint64_t kSpareMaxPages = uint64_t{1} << 16;

}  // namespace

namespace {
Trace with_profile(Trace t, const std::optional<Profile>& profile) {
  if (profile) t.machine.profile = *profile;
  return t;
}
}  // namespace

Session::Session(const Trace& trace, const RunOptions& options)
    : trace_(with_profile(trace, options.profile)),
      options_(options),
      impl_(std::make_unique<impl::Allocator>(trace_.machine, trace_.areas, options.faults, std::move(spare.impl))) {
  if (options_.lockstep)
    model_ = std::make_unique<model::Model>(trace_.machine, trace_.areas, std::move(spare.model));
}

Session::~Session() {
  if (impl_->machine().pages > kSpareMaxPages) return;  // (trace_ may have been moved out)
  spare.impl = std::move(*impl_).release_tables();
  if (model_) spare.model = std::move(*model_).release_tables();
}

void Session::restore(const Session& other) {
  assert(trace_.machine == other.trace_.machine);  // (the profile is part of the state)
  *impl_ = *other.impl_;
  if (model_ && other.model_) *model_ = *other.model_;
  handles_ = other.handles_;
  ops_run_ = other.ops_run_;
  status_ = other.status_;
  finding_ = other.finding_;
  malformed_ = other.malformed_;
  malformed_line_ = other.malformed_line_;
}

bool Session::step_op(const Op& op) {
  Statement st;
  st.body = op;
  trace_.statements.push_back(std::move(st));
  return step(trace_.statements.size() - 1);
}

bool Session::step(size_t index) {
  if (status_ != RunStatus::ok) return false;
  const Statement& st = trace_.statements[index];
  if (std::holds_alternative<Op>(st.body)) return run_op(st, index);
  return run_expect(st, index);
}

// Handles the operation created or moved, still live: the cheap-tier observation.
void Session::collect_touched(const Op& op, const Outcome& out, std::vector<HandleId>& hs) const {
  hs.clear();
  if (auto use = handle_use(op); use && use->binds && out.ok && handles_.live(use->id)) hs.push_back(use->id);
  for (const Move& m : out.moves)
    if (handles_.live(m.handle)) hs.push_back(m.handle);
  std::sort(hs.begin(), hs.end());
  hs.erase(std::unique(hs.begin(), hs.end()), hs.end());
}

void Session::observe_model(const Outcome& mine, const std::vector<HandleId>& hs, bool all, Observation& obs) const {
  obs.ok = mine.ok;
  obs.pfn = mine.pfn;
  obs.reason = mine.reason;
  obs.windows_tried = mine.windows_tried;
  obs.busy_pinned = mine.busy_pinned;
  obs.busy_unmovable = mine.busy_unmovable;
  obs.free = model_->free_pages();
  obs.free_cma = model_->free_cma_pages();
  obs.areas.resize(trace_.areas.size());
  for (size_t i = 0; i < trace_.areas.size(); ++i) obs.areas[i] = model_->area_stats(AreaId{static_cast<uint32_t>(i)});
  obs.live.clear();
  obs.labels.clear();
  obs.batched = model_->batched();
  obs.batches.clear();
  obs.free_pcp = model_->free_pcp_pages();
  obs.pcp.clear();
  if (all) {
    model_->batch_entries(obs.batches);
    model_->pcp_entries(obs.pcp);
    const model::FreeMemory& memory = model_->memory();
    obs.labels.resize(memory.pageblocks());
    for (uint64_t pb = 0; pb < memory.pageblocks(); ++pb) obs.labels[pb] = memory.pageblock_label(pb);
    for (Family f : {Family::block, Family::cma, Family::contig})
      for (HandleId h : handles_.live_list(f))
        if (auto p = model_->placement(h)) obs.live.push_back(*p);
    std::sort(obs.live.begin(), obs.live.end(), [](const Placement& a, const Placement& b) { return a.handle < b.handle; });
  } else {
    for (HandleId h : hs)
      if (auto p = model_->placement(h)) obs.live.push_back(*p);
  }
}

std::string observation_difference(const Observation& a, const Observation& b, const Trace& t,
                                   std::optional<Pfn>& where) {
  if (a.ok != b.ok) return std::string("result: impl ") + (a.ok ? "ok" : "fail") + ", model " + (b.ok ? "ok" : "fail");
  if (a.pfn != b.pfn) {
    where = a.pfn;
    return "pfn: impl " + std::to_string(raw(a.pfn)) + ", model " + std::to_string(raw(b.pfn));
  }
  if (a.reason != b.reason) return std::string("reason: impl ") + name(a.reason) + ", model " + name(b.reason);
  if (a.windows_tried != b.windows_tried)
    return "windows tried: impl " + std::to_string(a.windows_tried) + ", model " + std::to_string(b.windows_tried);
  if (a.busy_pinned != b.busy_pinned || a.busy_unmovable != b.busy_unmovable)
    return "busy windows (pinned, unmovable): impl " + std::to_string(a.busy_pinned) + ", " +
           std::to_string(a.busy_unmovable) + "; model " + std::to_string(b.busy_pinned) + ", " +
           std::to_string(b.busy_unmovable);
  if (a.free != b.free) return "free: impl " + std::to_string(a.free) + ", model " + std::to_string(b.free);
  if (a.free_cma != b.free_cma)
    return "free_cma: impl " + std::to_string(a.free_cma) + ", model " + std::to_string(b.free_cma);
  for (size_t i = 0; i < a.areas.size() && i < b.areas.size(); ++i) {
    if (a.areas[i].used != b.areas[i].used)
      return t.areas[i].name + ".used: impl " + std::to_string(a.areas[i].used) + ", model " + std::to_string(b.areas[i].used);
    if (a.areas[i].maxchunk != b.areas[i].maxchunk)
      return t.areas[i].name + ".maxchunk: impl " + std::to_string(a.areas[i].maxchunk) + ", model " +
             std::to_string(b.areas[i].maxchunk);
  }
  if (a.batched != b.batched)
    return "batched (E1): impl " + std::to_string(a.batched) + ", model " + std::to_string(b.batched);
  if (a.batches != b.batches) return "the CPUs' batches hold other blocks in impl than in the model (E1)";
  if (a.free_pcp != b.free_pcp)
    return "free_pcp (Q5): impl " + std::to_string(a.free_pcp) + ", model " + std::to_string(b.free_pcp);
  if (a.pcp != b.pcp) return "the CPUs' page lists hold other blocks, or in another order, in impl than in the model (Q2)";
  for (size_t pb = 0; pb < a.labels.size() && pb < b.labels.size(); ++pb)
    if (a.labels[pb] != b.labels[pb]) {
      where = Pfn{pb << t.machine.pageblock_order};
      return "label of pageblock " + std::to_string(pb) + ": impl " + name(a.labels[pb]) + ", model " +
             name(b.labels[pb]);
    }
  if (a.live.size() != b.live.size())
    return "live allocations: impl reports " + std::to_string(a.live.size()) + ", model " + std::to_string(b.live.size());
  for (size_t i = 0; i < a.live.size(); ++i) {
    const Placement &x = a.live[i], &y = b.live[i];
    const std::string hn = raw(x.handle) < t.handles.size() ? t.handle_name(x.handle) : "?";
    if (x.handle != y.handle) return "live allocation " + hn + " is missing on one side";
    if (x.pfn != y.pfn || x.count != y.count) {
      where = x.pfn;
      return hn + " placement: impl pfn=" + std::to_string(raw(x.pfn)) + " count=" + std::to_string(raw(x.count)) +
             ", model pfn=" + std::to_string(raw(y.pfn)) + " count=" + std::to_string(raw(y.count));
    }
    if (x.digest != y.digest) {
      where = x.pfn;
      return hn + " contents differ (digest)";
    }
  }
  return {};
}


bool Session::run_op(const Statement& st, size_t index) {
  const Op& op = std::get<Op>(st.body);
  // The runtime half of "malformed": handles must be live (or free, to allocate).
  if (const char* why = handles_.refuses(op)) {
    status_ = RunStatus::malformed;
    malformed_ = "handle '" + trace_.handle_name(handle_use(op)->id) + "' " + why;
    malformed_line_ = st.line;
    return false;
  }
  const bool full = options_.full_every && (ops_run_ % options_.full_every) == options_.full_every - 1;
  if (full) impl_->snapshot(before_);  // (I10, checked below after a failure)

  impl_->apply(op, impl_out_);
  ++ops_run_;
  handles_.apply(op, impl_out_);

  if (model_) {
    if (auto v = model_->apply(op, impl_out_, model_out_)) {
      collect_touched(op, impl_out_, touched_);
      impl_->observe(impl_out_, false, impl_obs_);
      observe_model(model_out_, touched_, false, model_obs_);
      return fail(*v, index, &impl_obs_, &model_obs_);
    }
    collect_touched(op, impl_out_, touched_);
    impl_->observe(impl_out_, full, impl_obs_);
    if (!full) {
      // impl reports what it touched itself; restrict to the shared view.
      impl_obs_.live.erase(std::remove_if(impl_obs_.live.begin(), impl_obs_.live.end(),
                                          [&](const Placement& p) {
                                            return !std::binary_search(touched_.begin(), touched_.end(), p.handle);
                                          }),
                           impl_obs_.live.end());
    }
    observe_model(model_out_, touched_, full, model_obs_);
    if (!(impl_obs_ == model_obs_)) {
      std::optional<Pfn> where;
      std::string diff = observation_difference(impl_obs_, model_obs_, trace_, where);
      if (!where && impl_out_.ok) where = impl_out_.pfn;
      return fail(Violation{"K1", "impl and model disagree: " + diff, where}, index, &impl_obs_, &model_obs_);
    }
  }
  if (options_.cheap_checks || full) {
    if (auto v = impl_->check_invariants(full ? impl::CheckTier::full : impl::CheckTier::cheap))
      return fail(*v, index);
  }
  if (model_ && options_.self_check_every && ops_run_ % options_.self_check_every == 0)
    if (auto e = model_->self_check()) return fail(Violation{"self-check", "the model's own bookkeeping: " + *e, {}}, index);
  if (full && !impl_out_.ok)
    if (auto v = impl_->check_unchanged(before_, impl_out_)) return fail(*v, index);

  if (options_.check_expectations && st.expectation) {
    const Expectation& e = *st.expectation;
    if (e.ok != impl_out_.ok)
      return fail(Violation{"expect", std::string("expected => ") + (e.ok ? "ok" : "fail") + ", got " + outcome_text(impl_out_),
                            impl_out_.ok ? std::optional<Pfn>(impl_out_.pfn) : std::nullopt},
                  index);
    if (e.pfn && *e.pfn != impl_out_.pfn)
      return fail(Violation{"expect", "expected pfn=" + std::to_string(raw(*e.pfn)) + ", got pfn=" + std::to_string(raw(impl_out_.pfn)),
                            impl_out_.pfn},
                  index);
  }
  return true;
}

bool Session::run_expect(const Statement& st, size_t index) {
  for (const ExpectItem& item : std::get<Expect>(st.body).items) {
    uint64_t got = 0;
    std::string key;
    std::optional<Pfn> where;
    switch (item.key) {
      case ExpectKey::free:
        got = impl_->free_pages();
        key = "free";
        break;
      case ExpectKey::free_cma:
        got = impl_->free_cma_pages();
        key = "free_cma";
        break;
      case ExpectKey::batched:
        got = impl_->batched();
        key = "batched";
        break;
      case ExpectKey::free_pcp:
        got = impl_->free_pcp_pages();
        key = "free_pcp";
        break;
      case ExpectKey::area_used:
        got = impl_->area_stats(AreaId{item.subject}).used;
        key = trace_.areas[item.subject].name + ".used";
        where = trace_.areas[item.subject].base;
        break;
      case ExpectKey::area_maxchunk:
        got = impl_->area_stats(AreaId{item.subject}).maxchunk;
        key = trace_.areas[item.subject].name + ".maxchunk";
        where = trace_.areas[item.subject].base;
        break;
      case ExpectKey::pageblock_label:
        got = static_cast<uint64_t>(impl_->label(Pfn{item.subject}));
        key = "label@" + std::to_string(item.subject);
        where = Pfn{item.subject};
        break;
      case ExpectKey::handle_pfn: {
        const HandleId h{item.subject};
        key = trace_.handles[item.subject] + ".pfn";
        if (!handles_.live(h)) {
          status_ = RunStatus::malformed;
          malformed_ = "handle '" + trace_.handles[item.subject] + "' is not live";
          malformed_line_ = st.line;
          return false;
        }
        got = raw(impl_->allocation(h)->pfn);
        where = Pfn{got};
        break;
      }
    }
    if (options_.check_expectations && got != item.value) {
      auto text = [&](uint64_t v) {
        return item.key == ExpectKey::pageblock_label ? std::string(label_name(static_cast<MigrateType>(v)))
                                                      : std::to_string(v);
      };
      return fail(Violation{"expect", "expected " + key + "=" + text(item.value) + ", got " + text(got), where}, index);
    }
  }
  return true;
}

bool Session::finish() {
  if (status_ != RunStatus::ok) return false;
  if (auto v = impl_->check_invariants(impl::CheckTier::full))
    return fail(*v, trace_.statements.empty() ? 0 : trace_.statements.size() - 1);
  if (model_ && options_.self_check_at_end)
    if (auto e = model_->self_check())
      return fail(Violation{"self-check", "the model's own bookkeeping: " + *e, {}},
                  trace_.statements.empty() ? 0 : trace_.statements.size() - 1);
  if (model_) {
    Outcome none;
    std::vector<HandleId> hs;
    impl_->observe(none, true, impl_obs_);
    observe_model(none, hs, true, model_obs_);
    impl_obs_.ok = model_obs_.ok = false;
    if (!(impl_obs_ == model_obs_)) {
      std::optional<Pfn> where;
      std::string diff = observation_difference(impl_obs_, model_obs_, trace_, where);
      return fail(Violation{"K1", "impl and model disagree at the end: " + diff, where},
                  trace_.statements.empty() ? 0 : trace_.statements.size() - 1, &impl_obs_, &model_obs_);
    }
  }
  return true;
}

bool Session::fail(Violation v, size_t index, const Observation* impl_obs, const Observation* model_obs) {
  status_ = RunStatus::violation;
  std::ostringstream r;
  const Statement* st = index < trace_.statements.size() ? &trace_.statements[index] : nullptr;
  r << "VIOLATION " << v.rule << ": " << v.message << "\n";
  if (st) {
    r << "  statement " << (index + 1);
    if (st->line) r << " (line " << st->line << ")";
    r << ": " << print_statement(trace_, *st) << "\n";
  }
  r << "  impl outcome:  " << outcome_text(impl_out_) << "\n";
  if (model_) r << "  model outcome: " << outcome_text(model_out_) << "\n";
  if (impl_obs) r << "  impl  observes: " << describe(*impl_obs, trace_) << "\n";
  if (model_obs) r << "  model observes: " << describe(*model_obs, trace_) << "\n";
  for (const Move& m : impl_out_.moves)
    r << "  impl moved " << trace_.handle_name(m.handle) << " " << raw(m.from) << " -> " << raw(m.to) << "\n";
  Pfn center = v.where.value_or(impl_out_.ok ? impl_out_.pfn : Pfn{0});
  if (raw(center) >= trace_.machine.pages) center = Pfn{0};
  r << "  frames around " << raw(center) << " (" << picture_legend() << "):\n";
  r << frame_picture_impl(*impl_, center);
  if (model_) r << frame_picture_model(*model_, trace_.machine.pages, trace_.machine.pageblock_order, center);
  finding_ = Finding{std::move(v), index, r.str()};
  return false;
}

RunResult run_trace(const Trace& trace, const RunOptions& options, std::ostream* log) {
  Session s(trace, options);
  RunResult res;
  for (size_t i = 0; i < trace.statements.size(); ++i) {
    const bool ok = s.step(i);
    if (log && s.status() != RunStatus::malformed) {
      const Statement& st = trace.statements[i];
      *log << (st.line ? std::to_string(st.line) : std::to_string(i + 1)) << ": " << print_statement(trace, st);
      if (std::holds_alternative<Op>(st.body)) *log << "  -> " << outcome_text(s.last_outcome());
      *log << (ok ? "" : "  <-- stopped") << "\n";
    }
    if (!ok) break;
  }
  if (s.status() == RunStatus::ok) s.finish();
  res.status = s.status();
  res.finding = s.finding();
  res.malformed = s.malformed_message();
  res.malformed_line = s.malformed_line();
  res.ops = s.ops_run();
  return res;
}

}  // namespace cmacheck
