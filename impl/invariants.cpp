// The invariants of docs/semantics.md section 8, as impl/ checks them on itself. Each check
// names its rule; tests/invariants_test.cpp corrupts the state on purpose to show it fires.
#include <algorithm>
#include <cstring>
#include <string>

#include "impl/allocator.h"

namespace cmacheck::impl {

namespace {

std::string s(uint64_t v) { return std::to_string(v); }

// Bulk tests for the common case, where every check passes: memchr and memcmp are not
// instrumented, so a healthy state costs a few calls instead of a loop per frame (the fuzz
// targets run the full tier at the end of every input). When a bulk test fails, the
// frame-by-frame checks find and name the first violation, exactly as without it.
bool all_zero(const uint32_t* p, uint64_t n) {
  static const uint32_t zeros[1024] = {};
  while (n) {
    const uint64_t m = std::min<uint64_t>(n, 1024);
    if (std::memcmp(p, zeros, m * sizeof(uint32_t)) != 0) return false;
    p += m;
    n -= m;
  }
  return true;
}

#define CMA_INVARIANT(cond, rule, where, msg)            \
  do {                                                   \
    if (!(cond)) return Violation{rule, (msg), (where)}; \
  } while (0)

}  // namespace

FrameRole Allocator::role(Pfn p) const {
  const uint64_t f = raw(p);
  const uint32_t slot = owner_[f];
  if (!slot && pcp_pages_ && on_pcp(f)) return FrameRole::on_pcp;
  if (!slot) return block_type(f) == MigrateType::isolate ? FrameRole::isolated : FrameRole::free;
  const Allocation& r = rec(slot);
  if (r.family == Family::cma) return FrameRole::cma_allocated;
  if (r.family == Family::contig) return FrameRole::contig_allocated;
  if (r.pins) return FrameRole::pinned;
  switch (r.kind) {
    case Kind::movable: return FrameRole::movable;
    case Kind::unmovable: return FrameRole::unmovable;
    case Kind::reclaimable: return FrameRole::reclaimable;
  }
  return FrameRole::movable;
}

void Allocator::observe(const Outcome& last, bool all_live, Observation& obs) const {
  obs.ok = last.ok;
  obs.pfn = last.pfn;
  obs.reason = last.reason;
  obs.windows_tried = last.windows_tried;
  obs.busy_pinned = last.busy_pinned;
  obs.busy_unmovable = last.busy_unmovable;
  obs.free = free_pages_;
  obs.free_cma = free_cma_pages_;
  obs.areas.resize(areas_.size());
  for (size_t i = 0; i < areas_.size(); ++i) obs.areas[i] = area_stats(AreaId{static_cast<uint32_t>(i)});
  obs.live.clear();
  auto place = [&](HandleId h) {
    const uint32_t slot = slot_of(h);
    if (!slot) return;
    const Allocation& r = rec(slot);
    ContentDigest d;
    for (uint64_t i = 0; i < raw(r.count); ++i) d.add(content_[raw(r.pfn) + i]);
    obs.live.push_back(Placement{h, r.pfn, r.count, d.h});
  };
  obs.labels.clear();
  obs.batched = batched();
  obs.batches.clear();
  obs.free_pcp = free_pcp_pages();
  obs.pcp.clear();
  if (all_live) {
    pcp_entries(obs.pcp);
    for (uint32_t h = 0; h < slot_of_handle_.size(); ++h) place(HandleId{h});
    obs.labels = labels_;
    batch_entries(obs.batches);
  } else {
    for (HandleId h : touched()) place(h);
    std::sort(obs.live.begin(), obs.live.end(), [](const Placement& a, const Placement& b) { return a.handle < b.handle; });
    obs.live.erase(std::unique(obs.live.begin(), obs.live.end(), [](const Placement& a, const Placement& b) { return a.handle == b.handle; }), obs.live.end());
  }
}

// I2's list clause for the free block at f of order o (B10, B11): linux-6.12 keeps it on its
// label's list and gives it one label; linux-6.1 lets list and label differ, but never about
// CMA or ISOLATE.
std::optional<Violation> Allocator::check_free_list(uint64_t f, uint8_t o) const {
  const uint8_t B = machine_.pageblock_order;
  const uint64_t size = uint64_t{1} << o;
  const MigrateType label = labels_[f >> B], t = list_type_[f];
  const bool special = label == MigrateType::cma || label == MigrateType::isolate || t == MigrateType::cma ||
                       t == MigrateType::isolate;
  // W7: a block merged over another caller's isolated pageblock, and its pieces, stay on the
  // list they were on; the kernel warns of it under CONFIG_DEBUG_VM (linux-6.12's
  // __add_to_free_list) and nothing moves them.
  const bool merged_over = !merged_over_isolated_.empty() &&
                           std::find(merged_over_isolated_.begin(), merged_over_isolated_.end(), f >> B) != merged_over_isolated_.end();
  if ((profile_ == Profile::linux_6_12 || special) && !merged_over)
    CMA_INVARIANT(label == t, "I2", Pfn{f},
                  "free block at " + s(f) + " sits on the " + name(t) + " list of a " + name(label) + " pageblock");
  if (profile_ == Profile::linux_6_12 && o > B)
    for (uint64_t pb = (f >> B) + 1; pb < (f + size) >> B; ++pb)
      CMA_INVARIANT(labels_[pb] == label ||
                        std::find(merged_over_isolated_.begin(), merged_over_isolated_.end(), pb) != merged_over_isolated_.end(),
                    "I2", Pfn{pb << B},
                    "free block at " + s(f) + " of order " + s(o) + " has pageblocks labelled " + name(label) + " and " +
                        name(labels_[pb]) + " (B13)");
  return std::nullopt;
}

std::optional<Violation> Allocator::check_invariants(CheckTier tier, bool quiescent) const {
  const uint64_t n = machine_.pages;
  const uint8_t B = machine_.pageblock_order;
  // I2 at a step (concurrency, F2): the blocks put on free lists since the last check. The
  // full tier below walks them all; between steps this is the part a stale type could break.
  for (const uint32_t f : step_free_heads_)
    if (free_order_[f] != kNotHead)
      if (auto v = check_free_list(f, free_order_[f])) return v;
  step_free_heads_.clear();
  CMA_INVARIANT(free_pages_ + allocated_pages_ + pcp_pages_ == n, "I1", std::nullopt,
                "free (" + s(free_pages_) + ") + allocated (" + s(allocated_pages_) + ") + on page lists (" +
                    s(pcp_pages_) + ") != " + s(n) + " frames");
  // I14: each CPU's page lists count their pages, stay under `high` (a free that reaches it
  // flushes them), hold small aligned blocks on MOVABLE, UNMOVABLE or RECLAIMABLE lists, a
  // CMA frame only on MOVABLE's (Q2), and at quiescence none of an ISOLATE pageblock (Q4).
  uint64_t pcp_total = 0;
  for (uint8_t c = 0; c < kMaxCpus; ++c) {
    const CpuContext& ctx = cpu_ctx_[c];
    uint64_t pages = 0;
    for (const PcpEntry& e : ctx.pcp) {
      const uint64_t size = uint64_t{1} << e.order;
      pages += size;
      CMA_INVARIANT(pcp_on() && e.order <= 3 && e.pfn % size == 0 && e.pfn + size <= n, "I14", Pfn{e.pfn},
                    "CPU " + s(c) + "'s page list holds a block at " + s(e.pfn) + " of order " + s(e.order));
      CMA_INVARIANT(e.list == MigrateType::movable || e.list == MigrateType::unmovable ||
                        e.list == MigrateType::reclaimable,
                    "I14", Pfn{e.pfn}, "CPU " + s(c) + " has a page list for " + name(e.list));
      const MigrateType label = labels_[e.pfn >> B];
      CMA_INVARIANT(label != MigrateType::cma || e.list == MigrateType::movable, "I14", Pfn{e.pfn},
                    "a CMA frame at " + s(e.pfn) + " sits on CPU " + s(c) + "'s " + name(e.list) + " page list");
      CMA_INVARIANT(!quiescent || label != MigrateType::isolate, "I14", Pfn{e.pfn},
                    "frame " + s(e.pfn) + " of an isolated pageblock is on CPU " + s(c) + "'s page list");
    }
    CMA_INVARIANT(pages == ctx.pcp_pages, "I14", std::nullopt,
                  "CPU " + s(c) + " counts " + s(ctx.pcp_pages) + " pages on its lists, which hold " + s(pages));
    CMA_INVARIANT(pages == 0 || pages < machine_.pcp_high, "I14", std::nullopt,
                  "CPU " + s(c) + "'s page lists hold " + s(pages) + " pages, high is " + s(machine_.pcp_high));
    pcp_total += pages;
  }
  CMA_INVARIANT(pcp_total == pcp_pages_, "I14", std::nullopt,
                "page-list counter " + s(pcp_pages_) + " but the lists hold " + s(pcp_total) + " pages");
  CMA_INVARIANT(!quiescent || (isolated_pageblocks_ == 0 && free_isolated_pages_ == 0), "I7", std::nullopt,
                s(isolated_pageblocks_) + " pageblock(s) still isolated after the operation");
  CMA_INVARIANT(!quiescent || lru_disabled_ == 0, "I12", std::nullopt,
                "lru_cache_disable is still in force (count " + s(lru_disabled_) + ") with no operation in flight");
  // I13: every batch entry is a transient reference of a live movable block of order 0, each
  // block counts its entries, no batch is full, and none holds one under lru_cache_disable.
  uint64_t entries = 0;
  for (uint8_t c = 0; c < kMaxCpus; ++c)
    for (const auto& b : cpu_ctx_[c].batches) {
      entries += b.size();
      CMA_INVARIANT(b.size() < batch_capacity(profile_), "I13", std::nullopt,
                    "CPU " + s(c) + " has a full batch (" + s(b.size()) + " references)");
      CMA_INVARIANT(b.empty() || lru_disabled_ == 0, "I13", std::nullopt,
                    "CPU " + s(c) + " holds batch references under lru_cache_disable");
      for (uint32_t slot : b) {
        const Allocation& r = rec(slot);
        CMA_INVARIANT(r.live && r.family == Family::block && r.kind == Kind::movable && r.order.value == 0, "I13",
                      r.pfn, "CPU " + s(c) + "'s batch holds a reference to something not a live order-0 movable block");
        uint32_t named = 0;
        for (const auto& ctx : cpu_ctx_)
          for (const auto& other : ctx.batches) named += static_cast<uint32_t>(std::count(other.begin(), other.end(), slot));
        CMA_INVARIANT(named == r.batch_refs, "I13", r.pfn,
                      "allocation #" + s(raw(r.handle)) + " counts " + s(r.batch_refs) + " batch references, the batches hold " +
                          s(named));
      }
    }

  // One live allocation: inside the machine, aligned, owning its frames, contents kept.
  auto check_alloc = [&](uint32_t slot) -> std::optional<Violation> {
    const Allocation& r = rec(slot);
    const uint64_t first = raw(r.pfn), cnt = raw(r.count);
    // Named only in a violation's message: no string work while every check passes.
    auto who = [&] { return "allocation #" + s(raw(r.handle)) + " at " + s(first); };
    CMA_INVARIANT(cnt > 0 && first < n && cnt <= n - first, "I4", r.pfn, who() + " leaves the machine");
    if (r.family == Family::block)
      CMA_INVARIANT(first % raw(r.order.pages()) == 0 && cnt == raw(r.order.pages()), "I4", r.pfn,
                    who() + " is not an aligned block of order " + s(r.order.value));
    if (r.family == Family::cma) {
      const Area& a = areas_[raw(r.area)];
      CMA_INVARIANT(a.decl.range().contains(r.pfn) && first + cnt <= raw(a.decl.base) + raw(a.decl.pages), "I4",
                    r.pfn, who() + " lies outside area " + a.decl.name);
      CMA_INVARIANT(first % raw(r.align.pages()) == 0, "I4", r.pfn,
                    who() + " is not a multiple of 2^" + s(r.align.value));
      const uint8_t o = a.decl.order_per_bit;
      const uint64_t b0 = (first - raw(a.decl.base)) >> o, b1 = (first + cnt - 1 - raw(a.decl.base)) >> o;
      for (uint64_t b = b0; b <= b1; ++b)
        CMA_INVARIANT((a.bits[b >> 6] >> (b & 63)) & 1, "I5", r.pfn,
                      "bit " + s(b) + " of area " + a.decl.name + " is clear under live " + who());
    }
    for (uint64_t i = 0; i < cnt; ++i) {
      CMA_INVARIANT(owner_[first + i] == slot, "I3", Pfn{first + i},
                    "frame " + s(first + i) + " of " + who() + " is owned by another allocation or free");
      CMA_INVARIANT(content_[first + i] == content_value(r.serial, i), "I8", Pfn{first + i},
                    "frame " + s(first + i) + " of " + who() + " lost its content");
    }
    CMA_INVARIANT(!quiescent || !r.off_lru, "I12", r.pfn, who() + " is still off the LRU with no operation in flight");
    if (r.family == Family::block && (r.kind != Kind::movable || r.longterm))
      for (uint64_t pb = first >> B; pb <= (first + cnt - 1) >> B; ++pb)
        CMA_INVARIANT(labels_[pb] != MigrateType::cma, "I6", r.pfn,
                      who() + (r.longterm ? " (long-term pinned)" : std::string(" (") + name(r.kind) + ")") +
                          " lies in a CMA pageblock");
    return std::nullopt;
  };

  if (tier == CheckTier::cheap) {
    for (HandleId h : touched())
      if (uint32_t slot = slot_of(h))
        if (auto v = check_alloc(slot)) return v;
    return std::nullopt;
  }

  // Full tier. I1/I2: walk every free list; each free frame is in exactly one free block.
  // Scratch tables kept per thread, so that the full tier allocates nothing once warm (the
  // checker runs it after every operation of `cmacheck explore`).
  thread_local std::vector<uint8_t> seen, want;
  seen.assign(n, 0);
  uint64_t free_total = 0, free_cma = 0;
  for (int t = 0; t < kTypes; ++t)
    for (uint8_t o = 0; o <= machine_.max_order; ++o) {
      uint64_t count = 0;
      uint32_t prev = kNil;
      for (uint32_t f = heads_[t][o]; f != kNil; prev = f, f = next_[f]) {
        ++count;
        CMA_INVARIANT(count <= n, "I2", std::nullopt, "free list cycle");
        const uint64_t size = uint64_t{1} << o;
        CMA_INVARIANT(prev_[f] == prev, "I2", Pfn{f}, "free list links broken at " + s(f));
        CMA_INVARIANT(free_order_[f] == o, "I2", Pfn{f}, "free block at " + s(f) + " on the order-" + s(o) + " list has order " + s(free_order_[f]));
        CMA_INVARIANT(f % size == 0 && f + size <= n, "I2", Pfn{f},
                      "free block at " + s(f) + " of order " + s(o) + " is misaligned or leaves the machine");
        CMA_INVARIANT(static_cast<int>(list_type_[f]) == t, "I2", Pfn{f},
                      "free block at " + s(f) + " sits on the " + name(static_cast<MigrateType>(t)) +
                          " list but records " + name(list_type_[f]));
        if (auto v = check_free_list(f, o)) return v;
        if (std::memchr(&seen[f], 1, size) == nullptr && all_zero(&owner_[f], size)) {
          std::memset(&seen[f], 1, size);  // the bulk test passed: no frame seen or owned
        } else {
          for (uint64_t i = f; i < f + size; ++i) {
            CMA_INVARIANT(!seen[i], "I1", Pfn{i}, "frame " + s(i) + " is in two free blocks");
            CMA_INVARIANT(owner_[i] == 0, "I1", Pfn{i}, "frame " + s(i) + " is both free and allocated");
            seen[i] = 1;
          }
        }
        if (o > B) {
          // I7: no free block crosses a CMA (or isolated) pageblock boundary.
          for (uint64_t pb = (f >> B) + 1; pb < (f + size) >> B; ++pb) {
            const bool a = labels_[f >> B] == MigrateType::cma, b = labels_[pb] == MigrateType::cma;
            CMA_INVARIANT(a == b, "I7", Pfn{pb << B}, "free block at " + s(f) + " of order " + s(o) + " crosses a CMA pageblock boundary");
          }
        }
        // I2 maximal: the buddy is not a free block of the same order that B2 would merge.
        if (o < machine_.max_order) {
          const uint64_t buddy = f ^ size;
          if (buddy + size <= n && free_order_[buddy] == o)
            CMA_INVARIANT(o >= B && !mergeable(f, buddy), "I2", Pfn{f},
                          "free blocks at " + s(f) + " and " + s(buddy) + " of order " + s(o) + " should have merged");
        }
        free_total += size;
        if (labels_[f >> B] == MigrateType::cma) free_cma += size;
      }
      CMA_INVARIANT(count == nr_free_[t][o], "I9", std::nullopt, "free-list count drifted");
    }
  // Q1: a frame on a page list is in no free block and no allocation, and on one list once.
  for (const CpuContext& ctx : cpu_ctx_)
    for (const PcpEntry& e : ctx.pcp)
      for (uint64_t i = e.pfn; i < e.pfn + (uint64_t{1} << e.order); ++i) {
        CMA_INVARIANT(!seen[i], "I1", Pfn{i}, "frame " + s(i) + " is on a page list and free, or on two lists");
        CMA_INVARIANT(owner_[i] == 0, "I1", Pfn{i}, "frame " + s(i) + " is on a page list and allocated");
        seen[i] = 1;
      }
  // Every frame no free block or page list covered is owned (visited in order, as before).
  for (const uint8_t *p = seen.data(), *end = p + n; (p = static_cast<const uint8_t*>(std::memchr(p, 0, end - p)));
       ++p) {
    const uint64_t f = static_cast<uint64_t>(p - seen.data());
    CMA_INVARIANT(owner_[f], "I1", Pfn{f}, "frame " + s(f) + " is neither free, nor on a page list, nor allocated");
  }
  // I9: counters equal their definitions.
  CMA_INVARIANT(free_total == free_pages_, "I9", std::nullopt,
                "free counter " + s(free_pages_) + " but " + s(free_total) + " frames are free");
  CMA_INVARIANT(free_cma == free_cma_pages_, "I9", std::nullopt,
                "free_cma counter " + s(free_cma_pages_) + " but " + s(free_cma) + " CMA frames are free");
  // I3, I4, I6, I8 for every allocation; I1: every owned frame is covered by its owner.
  uint64_t owned = 0, batch_refs = 0;
  for (uint32_t slot = 1; slot <= allocs_.size(); ++slot) {
    if (!rec(slot).live) continue;
    if (auto v = check_alloc(slot)) return v;
    owned += raw(rec(slot).count);
    batch_refs += rec(slot).batch_refs;
  }
  CMA_INVARIANT(owned == allocated_pages_, "I3", std::nullopt, "allocations overlap or frames were lost");
  CMA_INVARIANT(batch_refs == entries, "I13", std::nullopt,
                "live blocks count " + s(batch_refs) + " batch references, the batches hold " + s(entries));
  // K3/M2: CMA labels are exactly the areas' pageblocks; nothing is ISOLATE.
  for (uint64_t pb = 0; pb < labels_.size(); ++pb) {
    bool in_area = false;
    for (const Area& a : areas_)
      if (a.decl.range().contains(Pfn{pb << B})) in_area = true;
    CMA_INVARIANT((labels_[pb] == MigrateType::cma) == in_area, "I7", Pfn{pb << B},
                  "pageblock " + s(pb) + " is " + name(labels_[pb]) + (in_area ? " inside" : " outside") + " a CMA area");
  }
  // I5 and I9 for the bitmaps: bits set exactly under live cma allocations.
  for (size_t ai = 0; ai < areas_.size(); ++ai) {
    const Area& a = areas_[ai];
    const uint8_t o = a.decl.order_per_bit;
    want.assign(a.nbits, 0);
    for (uint32_t slot = 1; slot <= allocs_.size(); ++slot) {
      const Allocation& r = rec(slot);
      if (!r.live || r.family != Family::cma || raw(r.area) != ai) continue;
      const uint64_t off = raw(r.pfn) - raw(a.decl.base);
      for (uint64_t b = off >> o; b <= (off + raw(r.count) - 1) >> o; ++b) want[b] = 1;
    }
    uint64_t set = 0, run = 0, best = 0;
    for (uint64_t b = 0; b < a.nbits; ++b) {
      const bool bit = (a.bits[b >> 6] >> (b & 63)) & 1;
      CMA_INVARIANT(bit == static_cast<bool>(want[b]), "I5", Pfn{raw(a.decl.base) + (b << o)},
                    "bit " + s(b) + " of area " + a.decl.name + (bit ? " is set with no allocation under it" : " is clear under a live allocation"));
      set += bit;
      run = bit ? 0 : run + 1;
      best = std::max(best, run);
    }
    const AreaStats st = area_stats(AreaId{static_cast<uint32_t>(ai)});
    CMA_INVARIANT(st.used == set << o, "I9", std::nullopt,
                  a.decl.name + ".used is " + s(st.used) + ", recomputed " + s(set << o));
    CMA_INVARIANT(st.maxchunk == best << o, "I9", std::nullopt,
                  a.decl.name + ".maxchunk is " + s(st.maxchunk) + ", recomputed " + s(best << o));
  }
  return std::nullopt;
}

Allocator::Snapshot Allocator::snapshot() const {
  Snapshot snap;
  snapshot(snap);
  return snap;
}

void Allocator::snapshot(Snapshot& snap) const {
  snap.labels = labels_;
  snap.bitmaps.resize(areas_.size());
  for (size_t a = 0; a < areas_.size(); ++a) snap.bitmaps[a] = areas_[a].bits;
  snap.live.clear();
  snap.pins.clear();
  for (uint32_t h = 0; h < slot_of_handle_.size(); ++h)
    if (uint32_t slot = slot_of_handle_[h]) {
      snap.live.emplace_back(h, rec(slot).pfn);
      snap.pins.push_back(rec(slot).pins);
    }
  snap.free = free_pages_ + pcp_pages_;  // a drain moves pages from the lists to the buddy allocator
  snap.pcp_flushes = pcp_flushes_;
}

// I10: a failed operation changed nothing except what A6, X2 and X5 allow.
std::optional<Violation> Allocator::check_unchanged(const Snapshot& before, const Outcome& failed) const {
  thread_local Snapshot now;  // reused: no allocation once warm
  snapshot(now);
  // A move that stays made (X2) allocated its target as a movable request, and that
  // allocation may have claimed a non-CMA pageblock for MOVABLE (B5); a failed alloc_contig
  // undoes the pageblocks it isolated to MOVABLE, the caller's type (X5). Nothing else may
  // relabel a pageblock; CMA labels never change (K3).
  // A drain of the page lists (Q4: before a contiguous request, or when B4 found nothing)
  // frees their pages, and under linux-6.12 a merge relabels the buddies it takes in (B13).
  const bool may_become_movable = !failed.moves.empty() || failed.windows_tried > 0;
  const bool drained = now.pcp_flushes != before.pcp_flushes;
  for (size_t pb = 0; pb < now.labels.size(); ++pb) {
    const MigrateType was = before.labels[pb], is = now.labels[pb];
    const bool ordinary = was != MigrateType::cma && was != MigrateType::isolate && is != MigrateType::cma &&
                          is != MigrateType::isolate;
    const bool allowed = (may_become_movable && is == MigrateType::movable && ordinary) || (drained && ordinary);
    CMA_INVARIANT(was == is || allowed, "I10", Pfn{pb << machine_.pageblock_order},
                  "failed operation relabelled pageblock " + s(pb) + " from " + name(was) + " to " + name(is));
  }
  for (size_t a = 0; a < now.bitmaps.size(); ++a)
    CMA_INVARIANT(now.bitmaps[a] == before.bitmaps[a], "I10", areas_[a].decl.base,
                  "failed operation changed the bitmap of area " + areas_[a].decl.name);
  CMA_INVARIANT(now.live.size() == before.live.size() && now.pins == before.pins && now.free == before.free, "I10",
                std::nullopt, "failed operation changed the live allocations, pins or free count");
  for (size_t i = 0; i < now.live.size(); ++i) {
    auto [h, pfn] = before.live[i];
    Pfn expect = pfn;
    for (const Move& m : failed.moves)
      if (raw(m.handle) == h) expect = m.to;
    CMA_INVARIANT(now.live[i].first == h && now.live[i].second == expect, "I10", now.live[i].second,
                  "failed operation moved allocation #" + s(h) + " without reporting it");
  }
  return std::nullopt;
}

}  // namespace cmacheck::impl
