#include "check/shrink.h"

#include <algorithm>

#include "trace/parse.h"
#include "trace/print.h"

namespace cmacheck {

std::string violated_rule(const Trace& t, const RunOptions& options) {
  // A candidate must still be a well-formed trace: the printer and parser decide.
  ParseResult p = parse_trace(print_trace(t));
  if (!p.ok()) return "";
  RunResult r = run_trace(p.trace, options);
  if (r.status != RunStatus::violation || !r.finding) return "";
  return r.finding->violation.rule;
}

namespace {

// Removes area `gone` from the header and renumbers the areas after it in every statement;
// false (and `t` half changed) when a statement names it.
bool remove_area(Trace& t, AreaId gone) {
  bool named = false;
  auto renumber_area = [&](AreaId& a) {
    if (a == gone) named = true;
    if (raw(a) > raw(gone)) a = AreaId{raw(a) - 1};
  };
  for (Statement& st : t.statements) {
    if (Op* op = std::get_if<Op>(&st.body)) {
      if (auto* c = std::get_if<CmaAlloc>(op)) renumber_area(c->area);
      if (auto* r = std::get_if<CmaReleaseRaw>(op)) renumber_area(r->area);
    } else {
      for (ExpectItem& item : std::get<Expect>(st.body).items)
        if (item.key == ExpectKey::area_used || item.key == ExpectKey::area_maxchunk) {
          AreaId a{item.subject};
          renumber_area(a);
          item.subject = raw(a);
        }
    }
  }
  t.areas.erase(t.areas.begin() + raw(gone));
  return !named;
}


// Rebuilds the handle table so that only handles still named remain, in order of use.
Trace renumber(const Trace& t) {
  ParseResult p = parse_trace(print_trace(t));
  return p.ok() ? p.trace : t;
}

struct Shrinker {
  const RunOptions& options;
  std::string rule;
  size_t runs = 0;

  bool still_fails(const Trace& t) {
    ++runs;
    return violated_rule(t, options) == rule;
  }

  // Expectations pin results that any deletion may move (a pfn, a count): with them in
  // place ddmin could not delete anything before them. Unless the finding is about an
  // expectation, drop them all first.
  bool drop_expectations(Trace& t) {
    if (rule == "expect") return false;
    Trace cand = t;
    std::erase_if(cand.statements, [](const Statement& st) { return std::holds_alternative<Expect>(st.body); });
    for (auto& st : cand.statements) st.expectation.reset();
    if (cand == t || !still_fails(cand)) return false;
    t = std::move(cand);
    return true;
  }

  // A handle's whole life at once (alloc, pin, unpin, migrate, free and the `expect`s that
  // read its pfn): statement-wise ddmin cannot remove a binding while a later statement
  // names the handle, and removing the later ones first rarely keeps the failure.
  bool drop_handles(Trace& t) {
    bool any = false;
    for (size_t h = t.handles.size(); h-- > 0;) {
      const HandleId id{static_cast<uint32_t>(h)};
      Trace cand = t;
      std::erase_if(cand.statements, [&](Statement& st) {
        if (const auto* op = std::get_if<Op>(&st.body)) {
          const auto use = handle_use(*op);
          return use && use->id == id;
        }
        auto& items = std::get<Expect>(st.body).items;
        std::erase_if(items, [&](const ExpectItem& it) { return it.key == ExpectKey::handle_pfn && it.subject == raw(id); });
        return items.empty();
      });
      if (cand.statements.size() == t.statements.size() || !still_fails(cand)) continue;
      t = std::move(cand);
      any = true;
    }
    return any;
  }

  // Placements depend on everything allocated before: deleting one allocation moves the
  // next ones, and the failure goes with them. Writing each allocation's frame into the
  // trace (`at=`, where the failing run put it) makes the statements independent, so ddmin
  // can remove the ones that only shaped the free lists; simplify_values later tries to
  // take each `at=` out again.
  bool pin_placements(Trace& t) {
    Trace cand = t;
    {
      Session run(t, options);
      for (size_t i = 0; i < t.statements.size(); ++i) {
        if (!run.step(i)) break;
        auto* op = std::get_if<Op>(&cand.statements[i].body);
        auto* a = op ? std::get_if<Alloc>(op) : nullptr;
        if (a && !a->at && run.last_outcome().ok) a->at = run.last_outcome().pfn;
      }
    }
    if (cand == t || !still_fails(cand)) return false;
    t = std::move(cand);
    return true;
  }

  // ddmin over the statements.
  bool drop_statements(Trace& t) {
    bool any = false;
    size_t chunk = std::max<size_t>(1, t.statements.size() / 2);
    while (true) {
      bool removed = false;
      for (size_t start = 0; start < t.statements.size();) {
        Trace cand = t;
        const size_t end = std::min(cand.statements.size(), start + chunk);
        cand.statements.erase(cand.statements.begin() + static_cast<long>(start),
                              cand.statements.begin() + static_cast<long>(end));
        if (still_fails(cand)) {
          t = std::move(cand);
          removed = any = true;
        } else {
          start += chunk;
        }
      }
      if (chunk == 1 && !removed) break;
      if (!removed) chunk = std::max<size_t>(1, chunk / 2);
    }
    return any;
  }

  // Simpler values: smaller counts, orders, alignments; no at=; no expectations.
  bool simplify_values(Trace& t) {
    bool any = false;
    auto attempt = [&](Trace cand) {
      if (!(cand == t) && still_fails(cand)) {
        t = std::move(cand);
        any = true;
        return true;
      }
      return false;
    };
    for (size_t i = 0; i < t.statements.size(); ++i) {
      if (t.statements[i].expectation && rule != "expect") {
        Trace c = t;
        c.statements[i].expectation.reset();
        attempt(std::move(c));
      }
      auto* op = std::get_if<Op>(&t.statements[i].body);
      if (!op) continue;
      auto try_op = [&](Op replacement) {
        Trace c = t;
        std::get<Op>(c.statements[i].body) = replacement;
        return attempt(std::move(c));
      };
      if (auto* a = std::get_if<Alloc>(op)) {
        Alloc x = *a;
        if (x.at) {
          Alloc y = x;
          y.at.reset();
          if (try_op(y)) continue;
        }
        while (x.order.value > 0) {
          Alloc y = x;
          y.order.value = static_cast<uint8_t>(x.order.value - 1);
          if (y.at && raw(*y.at) % raw(y.order.pages())) break;
          if (!try_op(y)) break;
          x = y;
        }
        if (x.kind != Kind::movable) {
          Alloc y = x;
          y.kind = Kind::movable;
          try_op(y);
        }
      } else if (auto* c = std::get_if<CmaAlloc>(op)) {
        CmaAlloc x = *c;
        while (x.align.value > 0) {
          CmaAlloc y = x;
          y.align.value = 0;
          if (try_op(y)) break;
          y.align.value = static_cast<uint8_t>(x.align.value - 1);
          if (!try_op(y)) break;
          x = y;
        }
        while (raw(x.count) > 1) {
          CmaAlloc y = x;
          y.count = PageCount{raw(x.count) / 2};
          if (!try_op(y)) {
            y.count = PageCount{raw(x.count) - 1};
            if (!try_op(y)) break;
          }
          x = y;
        }
      } else if (auto* c = std::get_if<AllocContig>(op)) {
        AllocContig x = *c;
        while (raw(x.count) > 1) {
          AllocContig y = x;
          y.count = PageCount{raw(x.count) / 2};
          if (!try_op(y)) {
            y.count = PageCount{raw(x.count) - 1};
            if (!try_op(y)) break;
          }
          x = y;
        }
      } else if (auto* p = std::get_if<Pin>(op)) {
        if (p->longterm) {
          Pin y = *p;
          y.longterm = false;
          try_op(y);
        }
      }
    }
    // Header: fewer areas (an area no statement names), smaller machine.
    for (size_t a = t.areas.size(); a-- > 0;) {
      Trace c = t;
      if (remove_area(c, AreaId{static_cast<uint32_t>(a)})) attempt(std::move(c));
    }
    while (true) {
      Trace c = t;
      const uint64_t pb = raw(c.machine.pageblock_pages());
      uint64_t need = pb;
      for (const auto& a : c.areas) need = std::max(need, raw(a.base) + raw(a.pages));
      const uint64_t half = std::max(need, (c.machine.pages / 2) / pb * pb);
      if (half >= c.machine.pages) break;
      c.machine.pages = half;
      if (!attempt(std::move(c))) break;
    }
    return any;
  }
};

}  // namespace

ShrinkResult shrink_trace(const Trace& input, const RunOptions& options, const std::function<void(size_t)>& progress) {
  ShrinkResult res;
  Shrinker s{options, violated_rule(input, options)};
  res.rule = s.rule;
  res.trace = input;
  if (s.rule.empty()) return res;
  res.failed = true;
  Trace t = input;
  // Statements after the failing one never matter.
  if (auto r = run_trace(t, options); r.finding && r.finding->statement + 1 < t.statements.size())
    t.statements.resize(r.finding->statement + 1);
  for (int round = 0; round < 8; ++round) {
    if (progress) progress(t.statements.size());
    bool changed = round == 0 && s.drop_expectations(t);
    changed |= s.drop_handles(t);
    changed |= s.drop_statements(t);
    if (round == 0 && s.pin_placements(t)) changed = true;  // the next round deletes what it freed
    changed |= s.simplify_values(t);
    if (!changed) break;
  }
  res.trace = renumber(t);
  for (auto& st : res.trace.statements) st.line = 0;
  res.runs = s.runs;
  return res;
}

}  // namespace cmacheck
