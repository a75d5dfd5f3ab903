#include "trace/generate.h"

#include <algorithm>
#include <string>

namespace cmacheck {

// Bump on every change below that decodes some byte string differently (generate.h).
constexpr uint32_t kGeneratorVersion = 4;  // 2: the profile as a swarm choice; 3: touch, lru_drain; 4: pcp=
uint32_t generator_version() { return kGeneratorVersion; }

uint64_t ByteChoices::below(uint64_t bound) {
  if (bound <= 1) return 0;
  uint64_t v = 0;
  for (uint64_t span = bound - 1; span; span >>= 8) {
    if (pos_ >= bytes_.size()) break;
    v = (v << 8) | bytes_[pos_++];
  }
  return v % bound;
}

uint64_t SeededChoices::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t SeededChoices::below(uint64_t bound) {
  if (budget_ == 0 || bound <= 1) return 0;
  --budget_;
  return next() % bound;
}

const char* name(OpKind k) {
  static const char* const names[] = {"alloc_movable", "alloc_unmovable", "alloc_reclaimable", "alloc_at",
                                      "free",          "pin",             "pin_longterm",      "unpin",
                                      "migrate",       "cma_alloc",       "cma_release",       "cma_release_raw",
                                      "alloc_contig",  "free_contig",     "alloc_in_cma",      "touch",
                                      "lru_drain",     "pcp_drain"};
  return names[static_cast<size_t>(k)];
}

uint64_t Generator::small(uint64_t max) {
  if (max <= 1) return 1;
  // Log-uniform: pick a bit width, then a value of that width.
  uint64_t bits = 0;
  while ((uint64_t{1} << bits) < max) ++bits;
  const uint64_t width = in_.below(bits + 1);
  const uint64_t lo = width ? uint64_t{1} << (width - 1) : 1;
  const uint64_t hi = std::min(max, (uint64_t{1} << width));
  return lo >= hi ? std::min(lo, max) : lo + in_.below(hi - lo + 1);
}

HandleId Generator::fresh(Trace& t, char prefix) {
  std::string n(1, prefix);
  n += std::to_string(++names_);
  t.handles.push_back(n);
  return HandleId{static_cast<uint32_t>(t.handles.size() - 1)};
}

Trace Generator::header() {
  Trace t;
  MachineDecl& m = t.machine;
  const uint8_t pb_span = static_cast<uint8_t>(limits_.max_pageblock_order - limits_.min_pageblock_order + 1);
  m.pageblock_order = static_cast<uint8_t>(limits_.min_pageblock_order + in_.below(pb_span));
  m.max_order = static_cast<uint8_t>(m.pageblock_order + in_.below(4));
  const uint64_t pb = uint64_t{1} << m.pageblock_order;
  uint64_t steps = 0;
  while ((limits_.min_pages << (steps + 1)) <= limits_.max_pages) ++steps;
  uint64_t pages = limits_.min_pages << in_.below(steps + 1);
  pages += pb * in_.below(4);
  pages = std::max(pb, std::min(limits_.max_pages, pages) / pb * pb);
  m.pages = pages;
  const uint64_t npb = pages / pb;
  static const char* const names[] = {"dma", "cam", "gpu"};
  const uint64_t areas = in_.below(limits_.max_areas + 1);
  for (uint64_t i = 0; i < areas; ++i) {
    AreaDecl a;
    a.name = names[i % 3];
    const uint64_t len = 1 + in_.below(std::max<uint64_t>(1, npb / 3));
    const uint64_t at = in_.below(npb);
    if (at + len > npb) continue;
    a.base = Pfn{at * pb};
    a.pages = PageCount{len * pb};
    a.order_per_bit = static_cast<uint8_t>(in_.below(std::min<uint64_t>(limits_.max_order_per_bit, m.pageblock_order) + 1));
    bool overlaps = false;
    for (const auto& o : t.areas) overlaps |= o.range().overlaps(a.range());
    if (!overlaps) t.areas.push_back(std::move(a));
  }
  // Swarm: each kind is off with probability 1/4, else weighted 1..8 (the transient-reference
  // kinds, added in version 3, are drawn last: see below).
  swarm_ = Swarm{};
  const size_t kinds_v2 = static_cast<size_t>(OpKind::touch);
  for (size_t k = 0; k < kinds_v2; ++k) {
    const uint64_t w = in_.below(32);
    swarm_.weight[k] = w < 8 ? 0 : static_cast<uint8_t>(1 + (w & 7));
  }
  if (t.areas.empty())
    for (OpKind k : {OpKind::cma_alloc, OpKind::cma_release, OpKind::cma_release_raw, OpKind::alloc_in_cma})
      swarm_.weight[static_cast<size_t>(k)] = 0;
  if (!swarm_.enabled(OpKind::alloc_movable) && !swarm_.enabled(OpKind::cma_alloc) &&
      !swarm_.enabled(OpKind::alloc_contig))
    swarm_.weight[static_cast<size_t>(OpKind::alloc_movable)] = 4;
  // The kernel profile, after them, so that the world and swarm choices keep their bytes.
  const uint64_t profile_choice = in_.below(2);
  m.profile = limits_.profile ? *limits_.profile : profile_choice ? Profile::linux_6_12 : Profile::linux_6_1;
  // touch and lru_drain (E1, E2): each off with probability 1/2, else weighted 1..4.
  const size_t kinds_v3 = static_cast<size_t>(OpKind::pcp_drain);
  for (size_t k = kinds_v2; k < kinds_v3; ++k) {
    const uint64_t w = in_.below(8);
    swarm_.weight[k] = w < 4 ? 0 : static_cast<uint8_t>(w - 3);
  }
  // Per-CPU page lists (Q1-Q5, version 4): off for half the worlds, else a small or a
  // larger high mark; pcp_drain then as touch above.
  const uint64_t pcp_choice = in_.below(4);
  m.pcp_high = limits_.pcp_high ? *limits_.pcp_high : pcp_choice < 2 ? 0 : pcp_choice == 2 ? 8 : 32;
  if (m.pcp_high) {
    const uint64_t w = in_.below(8);
    swarm_.weight[kinds_v3] = w < 4 ? 0 : static_cast<uint8_t>(w - 3);
  }
  for (uint8_t w : swarm_.weight) swarm_.total += w;
  return t;
}

Op Generator::next(Trace& t, const LiveHandles& live) {
  const MachineDecl& m = t.machine;
  uint64_t r = in_.below(swarm_.total);
  OpKind kind = OpKind::alloc_movable;
  for (size_t k = 0; k < kOpKinds; ++k) {
    if (r < swarm_.weight[k]) {
      kind = static_cast<OpKind>(k);
      break;
    }
    r -= swarm_.weight[k];
  }
  auto pick = [&](Family f) { return live.at(f, in_.below(live.count(f))); };
  auto alloc_order = [&]() {
    // Mostly order 0, sometimes up to max_order, now and then one beyond (it must fail).
    const uint64_t c = in_.below(16);
    if (c < 8) return Order{0};
    if (c < 15) return Order{static_cast<uint8_t>(in_.below(m.max_order + 1))};
    return Order{static_cast<uint8_t>(m.max_order + 1)};
  };
  // A kind that needs a live handle falls back to an allocation when there is none.
  const bool blocks = live.count(Family::block) > 0;
  switch (kind) {
    case OpKind::free:
    case OpKind::pin:
    case OpKind::pin_longterm:
    case OpKind::unpin:
    case OpKind::migrate:
    case OpKind::touch:
      if (!blocks) kind = OpKind::alloc_movable;
      break;
    case OpKind::cma_release:
    case OpKind::cma_release_raw:
      if (!live.count(Family::cma)) kind = t.areas.empty() ? OpKind::alloc_movable : OpKind::cma_alloc;
      break;
    case OpKind::free_contig:
      if (!live.count(Family::contig)) kind = OpKind::alloc_contig;
      break;
    default: break;
  }
  switch (kind) {
    case OpKind::alloc_movable:
    case OpKind::alloc_unmovable:
    case OpKind::alloc_reclaimable: {
      Alloc a;
      a.kind = kind == OpKind::alloc_movable ? Kind::movable : kind == OpKind::alloc_unmovable ? Kind::unmovable : Kind::reclaimable;
      a.order = alloc_order();
      a.id = fresh(t, 'm');
      return a;
    }
    case OpKind::alloc_at: {
      Alloc a;
      a.kind = static_cast<Kind>(in_.below(3));
      a.order = Order{static_cast<uint8_t>(in_.below(std::min<uint64_t>(m.max_order, 4) + 1))};
      a.at = Pfn{(in_.below(m.pages) >> a.order.value) << a.order.value};
      a.id = fresh(t, 'm');
      return a;
    }
    case OpKind::alloc_in_cma: {
      // A movable block placed inside an area (B7), so that cma_alloc windows hold movable
      // pages to migrate and, once pinned, busy windows (A4, X2). Without it movable pages
      // rarely land in CMA unless CMA is most of the free memory.
      Alloc a;
      const AreaDecl& area = t.areas[in_.below(t.areas.size())];
      a.kind = Kind::movable;
      a.order = Order{static_cast<uint8_t>(in_.below(3))};
      a.at = Pfn{((raw(area.base) + in_.below(raw(area.pages))) >> a.order.value) << a.order.value};
      a.id = fresh(t, 'm');
      return a;
    }
    case OpKind::free: return Free{pick(Family::block)};
    case OpKind::pin: return Pin{pick(Family::block), false};
    case OpKind::pin_longterm: return Pin{pick(Family::block), true};
    case OpKind::unpin: return Unpin{pick(Family::block)};
    case OpKind::migrate: return Migrate{pick(Family::block)};
    case OpKind::cma_alloc: {
      CmaAlloc c;
      c.area = AreaId{static_cast<uint32_t>(in_.below(t.areas.size()))};
      const uint64_t area_pages = raw(t.areas[raw(c.area)].pages);
      const uint64_t shape = in_.below(16);
      // Now and then a count that does not fit 32 bits (D3: truncated page counts).
      const uint64_t huge = (uint64_t{1} << 32) + small(area_pages);
      c.count = PageCount{shape == 0   ? area_pages + 1 + in_.below(4)
                          : shape == 1 ? area_pages
                          : shape == 2 ? 0
                          : shape == 3 ? huge
                                       : small(area_pages)};
      const uint64_t a = in_.below(8);
      c.align = Order{static_cast<uint8_t>(a < 4 ? 0 : in_.below(m.pageblock_order + 3))};
      c.id = fresh(t, 'c');
      return c;
    }
    case OpKind::cma_release: return CmaRelease{pick(Family::cma)};
    case OpKind::cma_release_raw: {
      // Valid or invalid raw releases: exact, shifted, too short, too long, in another area.
      const HandleId h = pick(Family::cma);
      FrameRange r = live.cma_range(h);
      CmaReleaseRaw c;
      c.area = AreaId{static_cast<uint32_t>(in_.below(t.areas.size()))};
      for (size_t i = 0; i < t.areas.size(); ++i)
        if (t.areas[i].range().contains(r.first) && in_.below(4) != 0) c.area = AreaId{static_cast<uint32_t>(i)};
      c.pfn = r.first;
      c.count = r.count;
      switch (in_.below(5)) {
        case 0: c.pfn = Pfn{raw(r.first) + 1}; break;
        case 1: c.count = PageCount{raw(r.count) > 1 ? raw(r.count) - 1 : 2}; break;
        case 2: c.count = PageCount{raw(r.count) + 1}; break;
        default: break;
      }
      return c;
    }
    case OpKind::alloc_contig: {
      AllocContig c;
      const uint64_t shape = in_.below(16);
      c.count = PageCount{shape == 0 ? m.pages + 1 : shape == 1 ? 0 : small(std::max<uint64_t>(1, m.pages / 2))};
      c.id = fresh(t, 'x');
      return c;
    }
    case OpKind::free_contig: return FreeContig{pick(Family::contig)};
    case OpKind::touch: {
      const HandleId h = pick(Family::block);
      return Touch{h, kBatches[in_.below(kBatchKinds)]};
    }
    case OpKind::lru_drain: return LruDrain{};
    case OpKind::pcp_drain: return PcpDrain{};
    case OpKind::count_: break;
  }
  Alloc a;
  a.id = fresh(t, 'm');
  return a;
}

}  // namespace cmacheck
