// Properties 3: liveness (docs/semantics.md section 8, L2-L4), with their preconditions
// computed from the rules alone so that each is true of the spec (checked on the model too).
//
// "Enough free memory outside it" (L2, L4) is stated in slots: with I the pageblocks the
// window touches (isolated by X1), M the movable blocks intersecting the window and k the
// largest order among them, a *slot* is a 2^k-aligned range of free frames outside I whose
// pageblocks B2 lets merge. Every migration of X2 takes a free block of order >= its own
// (B4 never fails while one exists outside I: a movable request may use every non-ISOLATE
// type), and takes it from at most one slot, so |slots| >= |M| is enough. A count of free
// frames is not: see docs/properties.md for the counterexamples.
#include <algorithm>
#include <set>

#include "properties/properties.h"
#include "properties/support.h"

namespace cmacheck::props {

namespace {

// P3: drops every pin of every live block.
void drop_all_pins(Run& run) {
  for (HandleId h : run.live(Family::block))
    while (run.sys().pins(h) > 0) {
      run.step(Unpin{h});
      PROP_ASSERT(run, run.last().ok, "unpin of a pinned block failed (P3)");
    }
}

// Short-term pins on some movable blocks in CMA pageblocks: the obstacles L2 is about.
void pin_some_in_cma(Run& run, RcChoices& rc) {
  for (HandleId h : run.live(Family::block)) {
    if (run.info(h).kind != Kind::movable) continue;
    const auto w = run.sys().where(h);
    if (w && run.sys().label(w->first) == MigrateType::cma && rc.below(2)) run.step(Pin{h, false});
  }
}

// Slots for the movable blocks intersecting `window` outside the pageblocks `excluded`.
struct Room {
  size_t blocks = 0;
  uint8_t order = 0;
  uint64_t slots = 0;
  bool enough() const { return slots >= blocks; }
};
Room room_for(const Run& run, FrameRange window, const std::vector<bool>& excluded) {
  Room r;
  const auto blocks = movable_blocks_in(run, window);
  r.blocks = blocks.size();
  for (HandleId h : blocks) r.order = std::max(r.order, run.info(h).order.value);
  r.slots = blocks.empty() ? 0 : free_slots(run, r.order, excluded);
  return r;
}

// X7 (linux-6.12: isolate_single_pageblock): a movable block larger than a pageblock that
// crosses the first or last edge of the window's pageblocks makes the window busy, pin or no
// pin.
bool movable_block_across_edge(const Run& run, FrameRange window) {
  const Trace& t = run.trace();
  if (t.machine.profile != Profile::linux_6_12) return false;
  const uint8_t B = t.machine.pageblock_order;
  const uint64_t lo = raw(window.first) >> B << B, hi = ((raw(window.end()) - 1) >> B << B) + (uint64_t{1} << B);
  for (HandleId h : movable_blocks_in(run, window))
    if (const auto w = run.sys().where(h); w && (raw(w->first) < lo || raw(w->end()) > hi)) return true;
  return false;
}

}  // namespace

void retry_after_unpin_succeeds() {
  Generated g = generate(pick_side(), kPrefixOps);
  Run& run = *g.run;
  RcChoices& rc = *g.rc;
  const Trace& t = run.trace();
  RC_PRE(!t.areas.empty());
  CmaAlloc c;
  c.area = AreaId{static_cast<uint32_t>(rc.below(t.areas.size()))};
  crowd_area(run, rc, c.area, rc.below(4));
  if (rc.below(4) != 0) pin_some_in_cma(run, rc);
  c.count = PageCount{small_count(rc, raw(t.areas[raw(c.area)].pages))};
  c.align = Order{static_cast<uint8_t>(rc.below(2) ? 0 : rc.below(t.machine.pageblock_order + 3))};
  c.id = run.fresh("pc");
  const Outcome first = run.step(c);
  stats().add(first.ok ? "first.ok" : "first.fail");
  if (!first.ok && first.busy_pinned > 0) stats().add("first.busy_pinned");
  if (first.ok) {
    run.step(CmaRelease{c.id});
    PROP_ASSERT(run, run.last().ok, "cma_release of the allocation just made failed (R1)");
  }
  drop_all_pins(run);
  // The retry: the same request, after every pin is gone.
  const std::vector<bool> bits = implied_bitmap(run, c.area);
  const auto window = first_window(t, c.area, bits, c.count, c.align);
  CmaAlloc retry = c;
  retry.id = run.fresh("pc");
  Room room;
  if (window) room = room_for(run, *window, pageblocks_of(t, *window));
  const Outcome out = run.step(retry);
  RC_TAG(name(run.sys().side()));
  RC_CLASSIFY(!first.ok && first.busy_pinned > 0, "first attempt busy on a pin");
  RC_CLASSIFY(window && room.enough(), "retry has a window and room");
  if (!window) {
    run.expect_last(false);
    PROP_ASSERT(run, !out.ok, "cma_alloc succeeded at pfn " + num(raw(out.pfn)) + " although no aligned window of clear bits exists (A3)");
    return;
  }
  stats().add("retry.window");
  if (movable_block_across_edge(run, *window)) {
    stats().add("retry.x7");
    return;
  }
  if (room.enough()) {
    stats().add("retry.room");
    if (!first.ok) stats().add("retry.room_after_failure");
    if (!first.ok && first.busy_pinned > 0) stats().add("retry.room_after_pin");
    run.expect_last(true, window->first);
    PROP_ASSERT(run, out.ok && out.pfn == window->first,
                "with no pin and " + num(room.slots) + " free order-" + num(room.order) + " slots outside the window for its " +
                    num(room.blocks) + " movable blocks, cma_alloc " +
                    (out.ok ? "took pfn " + num(raw(out.pfn)) : std::string("failed (") + name(out.reason) + ")") +
                    " instead of the first aligned window of clear bits at pfn " + num(raw(window->first)) + " (L2, A3, A4)");
  } else {
    // Without room the first window ends the call with -ENOMEM or succeeds: never busy.
    PROP_ASSERT(run, (out.ok && out.pfn == window->first) || (!out.ok && out.reason == FailReason::no_memory),
                "with no pin, cma_alloc " +
                    (out.ok ? "took pfn " + num(raw(out.pfn)) : std::string("failed (") + name(out.reason) + ")") +
                    "; the first window at pfn " + num(raw(window->first)) +
                    " can only succeed or run out of memory (X1-X3, A4)");
  }
}

void longterm_pin_never_in_cma() {
  Generated g = start(pick_side());
  Run& run = *g.run;
  RcChoices& rc = *g.rc;
  const Trace& t = run.trace();
  const uint8_t B = t.machine.pageblock_order;
  auto in_cma = [&](FrameRange w) {
    for (uint64_t pb = raw(w.first) >> B; pb <= (raw(w.end()) - 1) >> B; ++pb)
      if (run.sys().label(Pfn{pb << B}) == MigrateType::cma) return true;
    for (const AreaDecl& a : t.areas)
      if (a.range().overlaps(w)) return true;
    return false;
  };
  const size_t n = pick_length(kPrefixOps);
  for (size_t i = 0; i < n; ++i) {
    Op op = g.next();
    // One operation in three is a long-term pin, of a block in CMA when there is one.
    const auto blocks = run.live(Family::block);
    if (!blocks.empty() && rc.below(3) == 0) {
      std::vector<HandleId> in;
      for (HandleId h : blocks)
        if (in_cma(*run.sys().where(h))) in.push_back(h);
      const auto& pool = in.empty() || rc.below(4) == 0 ? blocks : in;
      op = Pin{pool[rc.below(pool.size())], true};
    }
    const Outcome& out = run.step(op);
    if (const Pin* p = std::get_if<Pin>(&op); p && p->longterm) {
      stats().add("pin_longterm");
      if (out.ok) stats().add("pin_longterm.ok");
      if (!out.moves.empty()) stats().add("pin_longterm.migrated");
    }
    for (HandleId h : run.live(Family::block)) {
      if (!run.sys().longterm(h)) continue;
      const FrameRange w = *run.sys().where(h);
      PROP_ASSERT(run, !in_cma(w),
                  t.handle_name(h) + " is pinned long-term at pfn " + num(raw(w.first)) + ", inside a CMA area (L4, P2, I6)");
    }
  }
  RC_TAG(name(run.sys().side()));
}

void free_window_is_granted() {
  Generated g = generate(pick_side(), kPrefixOps);
  Run& run = *g.run;
  RcChoices& rc = *g.rc;
  const Trace& t = run.trace();
  const uint8_t B = t.machine.pageblock_order;
  auto all_free = [&](FrameRange r) {
    for (uint64_t p = raw(r.first); p < raw(r.end()); ++p)
      if (run.sys().frame(Pfn{p}) != '.') return false;
    return true;
  };
  RC_TAG(name(run.sys().side()));
  if (!t.areas.empty() && rc.below(2)) {
    // L3 for cma_alloc: the first aligned window of clear bits, all of it free frames.
    CmaAlloc c;
    c.area = AreaId{static_cast<uint32_t>(rc.below(t.areas.size()))};
    c.count = PageCount{small_count(rc, raw(t.areas[raw(c.area)].pages))};
    c.align = Order{static_cast<uint8_t>(rc.below(2) ? 0 : rc.below(B + 3))};
    c.id = run.fresh("pc");
    const auto window = first_window(t, c.area, implied_bitmap(run, c.area), c.count, c.align);
    const bool free = window && all_free(*window);
    stats().add("cma.cases");
    RC_CLASSIFY(free, "cma_alloc window all free");
    const Outcome out = run.step(c);
    if (!free) return;
    stats().add("cma.free_window");
    run.expect_last(true, window->first);
    PROP_ASSERT(run, out.ok && out.pfn == window->first,
                "the first aligned window of clear bits, [" + num(raw(window->first)) + ", " + num(raw(window->end())) +
                    "), is all free frames, but cma_alloc " +
                    (out.ok ? "took pfn " + num(raw(out.pfn)) : std::string("failed (") + name(out.reason) + ")") + " (L3)");
    return;
  }
  // L3 for alloc_contig: candidates are the multiples of the count (C1); the first one that is
  // all free frames and whose pageblocks are clean, none CMA and none holding an unmovable or
  // reclaimable block or a contiguous allocation anywhere (X1 checks whole pageblocks),
  // cannot fail, so the result is at or before it.
  AllocContig x;
  x.count = PageCount{small_count(rc, std::max<uint64_t>(1, t.machine.pages / 2))};
  x.id = run.fresh("px");
  std::optional<uint64_t> first_free;
  for (uint64_t s = 0; s + raw(x.count) <= t.machine.pages && !first_free; s += raw(x.count)) {
    const FrameRange r{Pfn{s}, x.count};
    bool blocked = false;
    for (uint64_t pb = s >> B; pb <= (s + raw(x.count) - 1) >> B && !blocked; ++pb) {
      blocked = run.sys().label(Pfn{pb << B}) == MigrateType::cma;
      for (uint64_t p = pb << B; p < (pb + 1) << B && !blocked; ++p) {
        const char c = run.sys().frame(Pfn{p});
        // 'P' (pinned) may be an unmovable block: counting it as an obstacle only moves the
        // claimed candidate later, which keeps the claim true.
        blocked = c == 'u' || c == 'r' || c == 'C' || c == 'X' || c == 'P';
      }
    }
    if (!blocked && all_free(r)) first_free = s;
  }
  stats().add("contig.cases");
  RC_CLASSIFY(first_free.has_value(), "alloc_contig candidate all free");
  const Outcome out = run.step(x);
  if (!first_free) return;
  stats().add("contig.free_candidate");
  if (out.ok && raw(out.pfn) < *first_free) stats().add("contig.earlier");
  run.expect_last(true);
  PROP_ASSERT(run, out.ok && raw(out.pfn) <= *first_free,
              "the candidate [" + num(*first_free) + ", " + num(*first_free + raw(x.count)) +
                  ") is all free frames in clean pageblocks, but alloc_contig " +
                  (out.ok ? "took pfn " + num(raw(out.pfn)) : std::string("failed (") + name(out.reason) + ")") + " (L3, C1)");
}

void cma_alloc_up_to_maxchunk_succeeds() {
  Generated g = generate(pick_side(), kPrefixOps);
  Run& run = *g.run;
  RcChoices& rc = *g.rc;
  const Trace& t = run.trace();
  RC_PRE(!t.areas.empty());
  drop_all_pins(run);
  const AreaId a{static_cast<uint32_t>(rc.below(t.areas.size()))};
  const AreaDecl& area = t.areas[raw(a)];
  crowd_area(run, rc, a, rc.below(4));
  const uint64_t maxchunk = run.sys().area_stats(a).maxchunk;
  const Room room = room_for(run, area.range(), pageblocks_of(t, area.range()));
  RC_TAG(name(run.sys().side()));
  RC_CLASSIFY(maxchunk == raw(area.pages), "whole area free of allocations");
  RC_CLASSIFY(room.enough(), "room outside the area");
  stats().add("areas");
  if (maxchunk == 0 || !room.enough()) return;
  stats().add("room");
  if (room.blocks > 0) stats().add("room.with_movable");
  std::set<uint64_t> counts{1, maxchunk, maxchunk > 1 ? maxchunk - 1 : 1};
  for (int i = 0; i < 4; ++i) counts.insert(1 + rc.below(maxchunk));
  for (uint64_t count : counts) {
    Run trial(run);
    CmaAlloc c;
    c.area = a;
    c.count = PageCount{count};
    c.id = trial.fresh("pc");
    const Outcome& out = trial.step(c);
    stats().add("trials");
    if (!out.ok) {
      trial.expect_last(true);
      fail(trial, "no pin, maxchunk=" + num(maxchunk) + ", " + num(room.slots) + " free order-" + num(room.order) +
                      " slots outside area " + area.name + " for its " + num(room.blocks) + " movable blocks, yet cma_alloc count=" +
                      num(count) + " failed (" + name(out.reason) + ") (L4)");
    }
  }
}

}  // namespace cmacheck::props
