// Properties 2: algebraic laws of the operations. Each runs a generated prefix on one side
// (impl, or the model alone) and states its law on what an outside observer sees. They run
// impl without the lockstep checker on purpose: a property must catch a fault by its own
// claim (bite_test.cpp shows that it does). The counterexample trace carries the claim as
// `=> ok` / `=> fail` and `expect` lines, and `cmacheck replay` adds the lockstep checks.
#include <algorithm>
#include <map>
#include <sstream>

#include "properties/properties.h"
#include "properties/support.h"
#include "trace/parse.h"
#include "trace/print.h"

namespace cmacheck::props {

namespace {

// The counts an `expect` line can check, with the values of `s`.
std::vector<ExpectItem> counts_of(const Run& run, const State& s, bool with_free_cma) {
  std::vector<ExpectItem> items = run.count_items(s.free, s.free_cma, s.areas);
  if (!with_free_cma)
    items.erase(std::remove_if(items.begin(), items.end(), [](const ExpectItem& i) { return i.key == ExpectKey::free_cma; }),
                items.end());
  return items;
}

// The relabels an operation with outcome `out` may make besides its own allocation's:
// B5 claims by the targets of its moves, each taken as a MOVABLE request (G1, X2) or, for
// a long-term pin, an UNMOVABLE one (P2); and X5, which gives every pageblock an
// alloc_contig isolated the caller's type, MOVABLE, also when it fails.
std::vector<ClaimAllowance> move_claims(const Trace& t, const Op& op, const Outcome& out) {
  std::vector<ClaimAllowance> claims;
  const MigrateType target = std::holds_alternative<Pin>(op) ? MigrateType::unmovable : MigrateType::movable;
  for (const Move& m : out.moves) claims.push_back({target, max_order_block(t.machine, m.to)});
  if (std::holds_alternative<AllocContig>(op) && out.windows_tried > 0)
    claims.push_back({MigrateType::movable, FrameRange{Pfn{0}, PageCount{t.machine.pages}}});
  return claims;
}

}  // namespace

// ---------------------------------------------------------------------------------------

void alloc_then_free() {
  Generated g = generate(pick_side(), kPrefixOps);
  Run& run = *g.run;
  RcChoices& rc = *g.rc;
  const MachineDecl& m = run.trace().machine;
  Alloc a;
  a.kind = static_cast<Kind>(rc.below(3));
  a.order = Order{static_cast<uint8_t>(rc.below(2) ? 0 : rc.below(m.max_order + 1))};
  if (rc.below(4) == 0) a.at = Pfn{(rc.below(m.pages) >> a.order.value) << a.order.value};  // B7
  a.id = run.fresh("pa");
  const State before = capture(run);
  run.expect(counts_of(run, before, true));
  const Outcome out = run.step(a);
  RC_TAG(name(run.sys().side()));
  RC_CLASSIFY(!out.ok, "alloc failed (nothing to free)");
  if (!out.ok) return;
  run.expect_last(true, out.pfn);
  run.step(Free{a.id});
  PROP_ASSERT(run, run.last().ok, "free of the block just allocated failed (F1)");
  run.expect_last(true);
  run.expect(counts_of(run, before, true));
  const State after = capture(run);
  const auto d = compare(run.trace(), before, after, {}, {{migratetype_of(a.kind), max_order_block(m, out.pfn)}});
  RC_CLASSIFY(after.labels != before.labels, "alloc claimed a pageblock (B5)");
  if (d) fail(run, "alloc then free did not restore the state: " + *d);
  stats().add("restored");
}

void cma_alloc_then_release() {
  Generated g = generate(pick_side(), kPrefixOps);
  Run& run = *g.run;
  RcChoices& rc = *g.rc;
  RC_PRE(!run.trace().areas.empty());
  CmaAlloc c;
  c.area = AreaId{static_cast<uint32_t>(rc.below(run.trace().areas.size()))};
  c.count = PageCount{small_count(rc, raw(run.trace().areas[raw(c.area)].pages))};
  c.align = Order{static_cast<uint8_t>(rc.below(2) ? 0 : rc.below(run.trace().machine.pageblock_order + 3))};
  crowd_area(run, rc, c.area, rc.below(4));
  c.id = run.fresh("pc");
  const State before = capture(run);
  run.expect(counts_of(run, before, true));
  const Outcome out = run.step(c);
  RC_TAG(name(run.sys().side()));
  RC_CLASSIFY(!out.ok, "cma_alloc failed");
  RC_CLASSIFY(out.ok && !out.moves.empty(), "cma_alloc migrated");
  RC_CLASSIFY(out.ok && out.windows_tried > 1, "cma_alloc succeeded after a busy window");
  stats().add(out.ok ? "cma_alloc.ok" : "cma_alloc.fail");
  if (!out.ok) return;
  if (!out.moves.empty()) stats().add("cma_alloc.migrated");
  run.expect_last(true, out.pfn);
  run.step(CmaRelease{c.id});
  PROP_ASSERT(run, run.last().ok, "cma_release of the allocation just made failed (R1)");
  run.expect_last(true);
  // free_cma is restored only when nothing moved between CMA and non-CMA pageblocks.
  run.expect(counts_of(run, before, out.moves.empty()));
  const State after = capture(run);
  if (auto d = compare(run.trace(), before, after, out.moves, move_claims(run.trace(), c, out)))
    fail(run, "cma_alloc then cma_release did not restore the state: " + *d);
}

void failed_operation_changes_nothing() {
  Generated g = start(pick_side());
  Run& run = *g.run;
  RcChoices& rc = *g.rc;
  const Trace& t = run.trace();
  auto check_step = [&](const Op& op) {
    const State before = capture(run);
    const Outcome out = run.step(op);
    if (out.ok) return;
    stats().add("failures");
    stats().add("failures." + op_kind(op));
    if (!out.moves.empty()) stats().add("failures.with_moves");
    const State after = capture(run);
    if (auto d = compare(t, before, after, out.moves, move_claims(t, op, out))) {
      run.expect_last(false);
      run.expect(counts_of(run, before, out.moves.empty()));
      fail(run, "a failed " + op_kind(op) + " (" + name(out.reason) + ") changed the state: " + *d);
    }
  };
  const size_t n = pick_length(kPrefixOps);
  for (size_t i = 0; i < n; ++i) check_step(g.next());
  // A contiguous request that must migrate and is likely to fail after moving some blocks
  // (X2: blocks already moved stay moved): a crowded area with some of its blocks pinned,
  // and a request for all of it.
  if (!t.areas.empty()) {
    const AreaId a{static_cast<uint32_t>(rc.below(t.areas.size()))};
    crowd_area(run, rc, a, rc.below(6));
    for (HandleId h : run.live(Family::block)) {
      const auto w = run.sys().where(h);
      if (w && t.areas[raw(a)].range().overlaps(*w) && rc.below(3) == 0) check_step(Pin{h, false});
    }
    CmaAlloc c;
    c.area = a;
    c.count = t.areas[raw(a)].pages;
    c.id = run.fresh("pc");
    check_step(c);
  }
  RC_TAG(name(run.sys().side()));
}

void release_not_handed_out_changes_nothing() {
  Generated g = generate(pick_side(), kPrefixOps);
  Run& run = *g.run;
  RcChoices& rc = *g.rc;
  const Trace& t = run.trace();
  RC_PRE(!t.areas.empty());
  // Make sure some allocation was handed out, to release it wrongly.
  if (run.live(Family::cma).empty()) {
    CmaAlloc c;
    c.area = AreaId{static_cast<uint32_t>(rc.below(t.areas.size()))};
    c.count = PageCount{1 + rc.below(8)};
    c.id = run.fresh("pc");
    run.step(c);
  }
  CmaReleaseRaw r;
  r.area = AreaId{static_cast<uint32_t>(rc.below(t.areas.size()))};
  const auto live = run.live(Family::cma);
  const uint64_t shape = rc.below(8);
  std::string what;
  if (live.empty() || shape == 7) {
    r.pfn = Pfn{rc.below(t.machine.pages + 8)};
    r.count = PageCount{small_count(rc, t.machine.pages)};
    what = "arbitrary frames";
  } else {
    const HandleId h = live[rc.below(live.size())];
    const FrameRange w = *run.sys().where(h);
    r.area = run.info(h).area;
    r.pfn = w.first;
    r.count = w.count;
    switch (shape) {
      case 0: r.pfn = Pfn{raw(w.first) + 1}, what = "shifted by one frame"; break;
      case 1: r.count = PageCount{raw(w.count) > 1 ? raw(w.count) - 1 : 2}, what = "one page short"; break;
      case 2: r.count = PageCount{raw(w.count) + 1}, what = "one page long"; break;
      case 3: r.count = PageCount{raw(w.count) + (uint64_t{1} << 32)}, what = "2^32 pages long (D3)"; break;
      case 4:
        if (t.areas.size() < 2) {
          r.count = PageCount{raw(w.count) + (uint64_t{1} << 32)}, what = "2^32 pages long (D3)";
        } else {
          r.area = AreaId{static_cast<uint32_t>((raw(r.area) + 1 + rc.below(t.areas.size() - 1)) % t.areas.size())};
          what = "in another area";
        }
        break;
      case 5: {
        // Released already: release it properly first.
        run.step(CmaRelease{h});
        what = "released already";
        break;
      }
      default:
        if (raw(w.count) > 1) {
          const uint64_t skip = 1 + rc.below(raw(w.count) - 1);
          r.pfn = Pfn{raw(w.first) + skip};
          r.count = PageCount{raw(w.count) - skip};
          what = "the tail of an allocation";
        } else {
          r.count = PageCount{0};
          what = "zero pages";
        }
        break;
    }
  }
  // The arguments must not name exactly one live allocation of that area (that is a valid
  // release, R1).
  for (HandleId h : run.live(Family::cma)) {
    const FrameRange w = *run.sys().where(h);
    const bool valid_release = run.info(h).area == r.area && w.first == r.pfn && w.count == r.count;
    RC_PRE(!valid_release);
  }
  RC_TAG(what);
  if (what != "arbitrary frames") stats().add("refused.near_live");
  const State before = capture(run);
  const Outcome out = run.step(r);
  run.expect_last(false);
  run.expect(counts_of(run, before, true));
  PROP_ASSERT(run, !out.ok, "cma_release of frames the area did not hand out (" + what + ") succeeded (R2)");
  if (auto d = compare(t, before, capture(run), {}, {}))
    fail(run, "a refused cma_release (" + what + ") changed the state: " + *d);
}

void results_aligned_and_contiguous() {
  Generated g = start(pick_side());
  Run& run = *g.run;
  RcChoices& rc = *g.rc;
  const Trace& t = run.trace();
  const size_t n = pick_length(kPrefixOps);
  auto check = [&](const Op& op, const Outcome& out) {
    if (!out.ok) return;
    auto where = [&](HandleId h) { return run.sys().where(h); };
    auto frames_are = [&](FrameRange r, char c) {
      for (uint64_t p = raw(r.first); p < raw(r.end()); ++p)
        if (run.sys().frame(Pfn{p}) != c && !(c == 'm' && run.sys().frame(Pfn{p}) == 'P')) return false;
      return true;
    };
    if (const auto* a = std::get_if<Alloc>(&op)) {
      stats().add("checked.alloc");
      const auto w = where(a->id);
      PROP_ASSERT(run, w && w->first == out.pfn && w->count == a->order.pages(),
                  "alloc " + t.handle_name(a->id) + " reported pfn " + num(raw(out.pfn)) + " but holds another range (M3)");
      PROP_ASSERT(run, raw(out.pfn) % raw(a->order.pages()) == 0 && raw(w->end()) <= t.machine.pages,
                  "alloc " + t.handle_name(a->id) + " of order " + num(a->order.value) + " at pfn " + num(raw(out.pfn)) +
                      " is not an aligned block inside the machine (M3, B1)");
      PROP_ASSERT(run, !a->at || *a->at == out.pfn, "alloc at=" + num(raw(*a->at)) + " returned pfn " + num(raw(out.pfn)) + " (B7)");
      const char c = a->kind == Kind::movable ? 'm' : a->kind == Kind::unmovable ? 'u' : 'r';
      PROP_ASSERT(run, frames_are(*w, c), "the frames of " + t.handle_name(a->id) + " are not all its own (M1)");
    } else if (const auto* c = std::get_if<CmaAlloc>(&op)) {
      stats().add("checked.cma_alloc");
      const AreaDecl& area = t.areas[raw(c->area)];
      const auto w = where(c->id);
      PROP_ASSERT(run, w && w->first == out.pfn && w->count == c->count,
                  "cma_alloc " + t.handle_name(c->id) + " count=" + num(raw(c->count)) + " holds " +
                      (w ? num(raw(w->count)) + " pages at pfn " + num(raw(w->first)) : std::string("nothing")) +
                      " (M4, A4: exactly count frames)");
      PROP_ASSERT(run, area.range().contains(out.pfn) && raw(w->end()) <= raw(area.range().end()),
                  "cma_alloc " + t.handle_name(c->id) + " at pfn " + num(raw(out.pfn)) + " leaves area " + area.name + " (I4)");
      PROP_ASSERT(run, c->align.value >= 64 || raw(out.pfn) % (uint64_t{1} << c->align.value) == 0,
                  "cma_alloc " + t.handle_name(c->id) + " align=" + num(c->align.value) + " returned pfn " +
                      num(raw(out.pfn)) + ", not a multiple of 2^" + num(c->align.value) + " (A2, I4)");
      PROP_ASSERT(run, frames_are(*w, 'C'), "the frames of " + t.handle_name(c->id) + " are not one unbroken range (I4)");
    } else if (const auto* x = std::get_if<AllocContig>(&op)) {
      stats().add("checked.alloc_contig");
      const auto w = where(x->id);
      PROP_ASSERT(run, w && w->first == out.pfn && w->count == x->count,
                  "alloc_contig " + t.handle_name(x->id) + " does not hold exactly count frames at its pfn (M4)");
      PROP_ASSERT(run, raw(out.pfn) % raw(x->count) == 0 && raw(w->end()) <= t.machine.pages,
                  "alloc_contig count=" + num(raw(x->count)) + " returned pfn " + num(raw(out.pfn)) +
                      ", not a multiple of the count inside the machine (C1)");
      PROP_ASSERT(run, frames_are(*w, 'X'), "the frames of " + t.handle_name(x->id) + " are not one unbroken range (I4)");
    }
    // Moved blocks stay aligned blocks (G1, P2, X2), and are where their last move put them
    // (a block may move more than once in one alloc_contig, once per candidate).
    std::map<uint32_t, Pfn> last;
    for (const Move& mv : out.moves) {
      if (!run.table().live(mv.handle)) continue;
      const HandleInfo& i = run.info(mv.handle);
      PROP_ASSERT(run, raw(mv.to) % raw(i.order.pages()) == 0,
                  t.handle_name(mv.handle) + " was moved to pfn " + num(raw(mv.to)) + ", not an aligned block of order " +
                      num(i.order.value) + " (G1)");
      last[raw(mv.handle)] = mv.to;
    }
    for (const auto& [h, to] : last) {
      const auto w = where(HandleId{h});
      PROP_ASSERT(run, w && w->first == to,
                  t.handles[h] + " was last moved to pfn " + num(raw(to)) + " but is not there (G1)");
    }
  };
  for (size_t i = 0; i < n; ++i) {
    const Op op = g.next();
    check(op, run.step(op));
  }
  // One more cma_alloc, sometimes with a count of 2^32 + n pages: that must fail (A1), or
  // hold exactly the pages asked for.
  if (!t.areas.empty()) {
    CmaAlloc c;
    c.area = AreaId{static_cast<uint32_t>(rc.below(t.areas.size()))};
    c.count = PageCount{small_count(rc, raw(t.areas[raw(c.area)].pages)) + (rc.below(4) == 0 ? uint64_t{1} << 32 : 0)};
    c.align = Order{static_cast<uint8_t>(rc.below(t.machine.pageblock_order + 3))};
    c.id = run.fresh("pc");
    const Outcome& out = run.step(c);
    if (out.ok)
      run.expect({{ExpectKey::handle_pfn, raw(c.id), raw(out.pfn)}});
    else
      run.expect_last(false);
    check(c, out);
  }
  RC_TAG(name(run.sys().side()));
}

void no_two_live_allocations_overlap() {
  Generated g = start(pick_side());
  Run& run = *g.run;
  const Trace& t = run.trace();
  const size_t n = pick_length(kPrefixOps);
  for (size_t i = 0; i < n; ++i) {
    run.step(g.next());
    std::vector<std::pair<FrameRange, HandleId>> ranges;
    for (Family f : {Family::block, Family::cma, Family::contig})
      for (HandleId h : run.live(f)) {
        const auto w = run.sys().where(h);
        PROP_ASSERT(run, w.has_value(), t.handle_name(h) + " is live but holds no frames");
        ranges.emplace_back(*w, h);
      }
    std::sort(ranges.begin(), ranges.end(), [](const auto& a, const auto& b) { return raw(a.first.first) < raw(b.first.first); });
    uint64_t covered = 0;
    for (size_t j = 0; j < ranges.size(); ++j) {
      covered += raw(ranges[j].first.count);
      if (j > 0 && ranges[j - 1].first.overlaps(ranges[j].first))
        fail(run, t.handle_name(ranges[j - 1].second) + " [" + num(raw(ranges[j - 1].first.first)) + ", " +
                      num(raw(ranges[j - 1].first.end())) + ") and " + t.handle_name(ranges[j].second) + " [" +
                      num(raw(ranges[j].first.first)) + ", " + num(raw(ranges[j].first.end())) + ") overlap (I3)");
    }
    PROP_ASSERT(run, covered + run.sys().free_pages() == t.machine.pages,
                "live allocations cover " + num(covered) + " frames and " + num(run.sys().free_pages()) + " are free, of " +
                    num(t.machine.pages) + " (I1)");
    uint64_t allocated = 0;
    for (uint64_t p = 0; p < t.machine.pages; ++p) {
      const char c = run.sys().frame(Pfn{p});
      PROP_ASSERT(run, c != 'i', "frame " + num(p) + " is free in an ISOLATE pageblock after the operation (M2, X5)");
      allocated += c != '.';
    }
    PROP_ASSERT(run, allocated == covered,
                num(allocated) + " frames are allocated but live allocations cover " + num(covered) + " (I1)");
    stats().add("checked.steps");
  }
  RC_TAG(name(run.sys().side()));
}

void parse_print_round_trip() {
  Generated g = generate(Side::impl, kPrefixOps);
  Run& run = *g.run;
  RcChoices& rc = *g.rc;
  Trace t = run.trace();
  // Decorate: expectations on some operations, `expect` statements between them, numbers as
  // the printer may meet them (large counts, every key).
  std::vector<Statement> decorated;
  for (const Statement& st : t.statements) {
    Statement s = st;
    if (rc.below(3) == 0) {
      Expectation e;
      e.ok = rc.below(2);
      if (e.ok && rc.below(2)) e.pfn = Pfn{rc.below(t.machine.pages)};
      s.expectation = e;
    }
    decorated.push_back(std::move(s));
    if (rc.below(6) == 0) {
      Expect e;
      const uint64_t items = 1 + rc.below(4);
      for (uint64_t i = 0; i < items; ++i) {
        ExpectItem item;
        item.key = static_cast<ExpectKey>(rc.below(5));
        if ((item.key == ExpectKey::area_used || item.key == ExpectKey::area_maxchunk) && t.areas.empty())
          item.key = ExpectKey::free;
        if (item.key == ExpectKey::handle_pfn && t.handles.empty()) item.key = ExpectKey::free_cma;
        if (item.key == ExpectKey::area_used || item.key == ExpectKey::area_maxchunk)
          item.subject = static_cast<uint32_t>(rc.below(t.areas.size()));
        item.value = rc.below(2) ? rc.below(t.machine.pages + 1) : rc.below(uint64_t{1} << 40);
        if (item.key == ExpectKey::handle_pfn) {
          // Only a handle that appeared before (parse interns handles in order of appearance).
          std::vector<uint32_t> seen;
          for (const Statement& d : decorated)
            if (const Op* op = std::get_if<Op>(&d.body))
              if (auto u = handle_use(*op)) seen.push_back(raw(u->id));
          if (seen.empty()) {
            item.key = ExpectKey::free;
          } else {
            item.subject = seen[rc.below(seen.size())];
          }
        }
        // A key may appear once per `expect` (trace-format.md: repeated keys are malformed).
        const bool repeated = std::any_of(e.items.begin(), e.items.end(), [&](const ExpectItem& x) {
          return x.key == item.key && x.subject == item.subject;
        });
        if (!repeated) e.items.push_back(item);
      }
      Statement s2;
      s2.body = std::move(e);
      decorated.push_back(std::move(s2));
      stats().add("checked.expect");
    }
  }
  t.statements = std::move(decorated);
  const auto printer = context().printer ? context().printer : [](const Trace& x) { return print_trace(x); };
  const std::string text = printer(t);
  ParseResult p = parse_trace(text);
  stats().add("checked.statements", t.statements.size());
  if (!p.ok()) fail(t, Side::impl, "the printed trace does not parse: line " + num(p.error->line) + ": " + p.error->message);
  if (!(p.trace == t)) {
    std::string where = "header";
    for (size_t i = 0; i < std::min(p.trace.statements.size(), t.statements.size()); ++i)
      if (!(p.trace.statements[i] == t.statements[i])) {
        where = "statement " + num(i + 1) + ": printed '" + print_statement(t, t.statements[i]) + "', parsed back as '" +
                print_statement(p.trace, p.trace.statements[i]) + "'";
        break;
      }
    if (where == "header" && p.trace.statements.size() != t.statements.size()) where = "statement count";
    if (where == "header" && p.trace.handles != t.handles) where = "handle names";
    fail(t, Side::impl, "parse(print(trace)) != trace, first difference at the " + where);
  }
  PROP_ASSERT(run, printer(p.trace) == text, "printing the parsed trace gives another text");
}

namespace {

struct Replayed {
  std::vector<Outcome> outcomes;
  State final;
};

// Runs the operations of `t` on a fresh system of `side`.
Replayed replay_on(Side side, const Trace& t) {
  Run r(t, new_system(side, t));
  Replayed out;
  for (const Statement& st : t.statements)
    if (const Op* op = std::get_if<Op>(&st.body)) out.outcomes.push_back(r.step(*op));
  out.final = capture(r);
  return out;
}

std::optional<std::string> first_difference(const std::vector<Outcome>& a, const std::vector<Outcome>& b, const Trace& t) {
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const Outcome &x = a[i], &y = b[i];
    if (x.ok != y.ok || x.pfn != y.pfn || x.reason != y.reason || x.moves != y.moves || x.windows_tried != y.windows_tried)
      return "operation " + num(i + 1) + " (" + print_op(t, std::get<Op>(t.statements[i].body)) + "): " +
             (x.ok ? "ok pfn=" + num(raw(x.pfn)) : std::string("fail ") + name(x.reason)) + " then " +
             (y.ok ? "ok pfn=" + num(raw(y.pfn)) : std::string("fail ") + name(y.reason));
  }
  if (a.size() != b.size()) return std::string("different numbers of operations");
  return std::nullopt;
}

}  // namespace

void replay_is_deterministic() {
  const Side side = pick_side();
  Generated g = generate(side, kPrefixOps);
  Run& run = *g.run;
  const Trace& t = run.trace();
  std::vector<Outcome> first;
  {
    // The generation-time outcomes, replayed from the recorded trace on a fresh system.
    Replayed a = replay_on(side, t);
    first = std::move(a.outcomes);
    const State now = capture(run);
    if (auto d = compare(t, now, a.final, {}, {}))
      fail(run, "a replay of the generated trace ends in another state than the run that generated it: " + *d);
  }
  const Replayed b = replay_on(side, t);
  if (auto d = first_difference(first, b.outcomes, t)) fail(run, "two replays of one trace differ at " + *d);
  ParseResult p = parse_trace(print_trace(t));
  PROP_ASSERT(run, p.ok(), "the printed trace does not parse");
  const Replayed c = replay_on(side, p.trace);
  if (auto d = first_difference(first, c.outcomes, t)) fail(run, "the printed and re-parsed trace replays differently at " + *d);
  if (side == Side::impl) {
    // And through the lockstep checker, which `cmacheck replay` uses: twice the same result.
    RunOptions o;
    o.faults = context().faults;
    const RunResult r1 = run_trace(p.trace, o), r2 = run_trace(p.trace, o);
    PROP_ASSERT(run, r1.status == r2.status && r1.ops == r2.ops &&
                         (!r1.finding || (r2.finding && r1.finding->report == r2.finding->report)),
                "two lockstep replays of one trace give different results");
    stats().add("checked.lockstep");
  }
  stats().add("checked.ops", first.size());
  RC_TAG(name(side));
}

}  // namespace cmacheck::props
