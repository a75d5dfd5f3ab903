// kfuzz's trace generator: only statements kreplay maps onto the kernel, in one area at a
// geometry the kernel places. It steps the model (check::Session) as it goes, so that a
// release names a live allocation, a hold lands on frames the model has free (a hold the
// model refused would have no `pin` to follow it), and an expectation states the model's
// value. Every choice comes from one SeededChoices: the same seed gives the same trace.
#include <algorithm>

#include "check/runner.h"
#include "kreplay/kfuzz.h"
#include "trace/generate.h"
#include "trace/parse.h"
#include "trace/print.h"

namespace cmacheck::kfuzz {

namespace {

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Log-uniform in [1, max]: small values as often as large ones.
uint64_t small(SeededChoices& in, uint64_t max) {
  if (max <= 1) return 1;
  uint64_t bits = 0;
  while ((uint64_t{1} << bits) < max) ++bits;
  const uint64_t width = in.below(bits + 1);
  const uint64_t lo = width ? uint64_t{1} << (width - 1) : 1;
  const uint64_t hi = std::min(max, uint64_t{1} << width);
  return lo >= hi ? std::min(lo, max) : lo + in.below(hi - lo + 1);
}

class TraceGen {
 public:
  TraceGen(uint64_t seed, const Geometry& g) : in_(seed), g_(g) {}

  Trace run(const GenerateOptions& o) {
    Trace t;
    t.machine.pages = kMachinePages;
    t.machine.pageblock_order = 9;
    t.machine.max_order = 10;
    t.machine.profile = o.profile;
    t.areas.push_back(AreaDecl{"dma", Pfn{g_.base}, PageCount{g_.pages}, 0});
    RunOptions ro;
    ro.full_every = 1u << 30;  // the generator only needs the model's answers; kreplay checks fully
    ro.self_check_every = 0;
    ro.self_check_at_end = false;
    ro.cheap_checks = false;
    Session s(t, ro);
    const size_t n = 1 + in_.below(std::max<size_t>(o.max_statements, 1));
    for (size_t i = 0; i < n && s.status() == RunStatus::ok; ++i) one(s);
    Trace out = s.mutable_trace();
    // Give the statements their line numbers (kreplay reports by line).
    ParseResult p = parse_trace(print_trace(out));
    return p.ok() ? p.trace : out;
  }

 private:
  HandleId fresh(Session& s, char prefix) {
    Trace& t = s.mutable_trace();
    t.handles.push_back(std::string(1, prefix) + std::to_string(++names_));
    return HandleId{static_cast<uint32_t>(t.handles.size() - 1)};
  }

  void one(Session& s) {
    const uint64_t r = in_.below(100);
    const auto& live = s.handles().live_list(Family::cma);
    if (r < 36) return cma_alloc(s);
    if (r < 52) return live.empty() ? cma_alloc(s) : release(s);
    if (r < 62) return release_frames(s);
    if (r < 76) return hold(s);
    if (r < 86) return held_.empty() ? hold(s) : drop(s);
    expect(s);
  }

  void cma_alloc(Session& s) {
    const AreaStats st = s.impl().area_stats(AreaId{0});
    uint64_t count = 0;
    switch (in_.below(10)) {
      case 0: case 1: case 2: case 3: count = small(in_, 16); break;
      case 4: case 5: count = small(in_, g_.pages); break;
      case 6: count = kPageblock * (1 + in_.below(4)) + in_.below(3) - 1; break;  // around pageblocks
      case 7: count = g_.pages - in_.below(3); break;                            // (nearly) the whole area
      case 8: count = st.maxchunk + in_.below(2); break;                         // the largest hole, or one more
      default: count = in_.below(3) == 0 ? 0 : g_.pages + 1 + in_.below(kPageblock); break;  // must fail
    }
    uint8_t align = 0;
    switch (in_.below(10)) {
      case 0: case 1: case 2: case 3: break;
      case 4: case 5: case 6: align = static_cast<uint8_t>(1 + in_.below(4)); break;
      case 7: case 8: align = static_cast<uint8_t>(in_.below(12)); break;
      default: align = static_cast<uint8_t>(9 + in_.below(7)); break;  // around the base's alignment (9..14)
    }
    if (held_in_area(s) && (count >> align) > kMaxBusyRetries) count = std::max<uint64_t>(1, kMaxBusyRetries << align);
    CmaAlloc a;
    a.id = fresh(s, 'a');
    a.area = AreaId{0};
    a.count = PageCount{count};
    a.align = Order{align};
    s.step_op(a);
  }

  bool held_in_area(const Session& s) const {
    for (HandleId h : held_)
      if (const impl::Allocation* al = s.impl().allocation(h);
          al && raw(al->pfn) < g_.base + g_.pages && raw(al->pfn) + raw(al->count) > g_.base)
        return true;
    return false;
  }

  void release(Session& s) {
    const auto& live = s.handles().live_list(Family::cma);
    s.step_op(CmaRelease{live[in_.below(live.size())]});
  }

  // cma_release area= pfn= count=: exactly a live allocation (valid), or near one, or
  // anywhere in the area (invalid: rule R2, nothing happens).
  void release_frames(Session& s) {
    const auto& live = s.handles().live_list(Family::cma);
    CmaReleaseRaw r;
    r.area = AreaId{0};
    if (!live.empty() && in_.below(3) != 0) {
      const impl::Allocation* al = s.impl().allocation(live[in_.below(live.size())]);
      uint64_t pfn = raw(al->pfn), count = raw(al->count);
      switch (in_.below(6)) {
        case 0: case 1: case 2: break;
        case 3: pfn += 1; break;
        case 4: count = count > 1 && in_.below(2) ? count - 1 : count + 1; break;
        default: pfn -= 1; break;
      }
      r.pfn = Pfn{pfn};
      r.count = PageCount{count};
    } else {
      r.pfn = Pfn{g_.base + in_.below(g_.pages)};
      r.count = PageCount{small(in_, 64)};
    }
    s.step_op(r);
  }

  // alloc ID kind=movable order=K at=P + pin ID: a held block (kreplay: `hold`), inside the
  // area or within 4 MiB of its edges outside it; only on frames the model has free.
  void hold(Session& s) {
    uint8_t order = 0;
    switch (in_.below(10)) {
      case 0: case 1: case 2: case 3: case 4: case 5: break;
      case 6: case 7: order = static_cast<uint8_t>(1 + in_.below(3)); break;
      case 8: order = static_cast<uint8_t>(in_.below(10)); break;
      default: order = 9; break;
    }
    const uint64_t n = uint64_t{1} << order;
    const uint64_t end = g_.base + g_.pages;
    for (int attempt = 0; attempt < 8; ++attempt) {
      uint64_t lo = g_.base, hi = end;  // the block must lie in [lo, hi)
      if (in_.below(5) == 0) {
        if (in_.below(2) && g_.base - 1024 >= kLowPfn)
          lo = g_.base - 1024, hi = g_.base;
        else if (end + 1024 <= kHighPfn)
          lo = end, hi = end + 1024;
      }
      if (hi - lo < n) continue;
      const uint64_t at = ((lo + in_.below(hi - lo - n + 1)) >> order) << order;
      if (at < lo || at + n > hi) continue;
      // Outside the area a hold is alloc_contig_range of MOVABLE pageblocks: a page held there
      // already makes its whole pageblock busy (X1), which the model's `alloc at=` does not
      // know (kreplay/tests/found-second-hold-in-a-movable-pageblock-6.1.trace). So a hold
      // outside the area needs its whole pageblocks free; inside, its own frames.
      const bool outside = at < g_.base || at >= end;
      const uint64_t from = outside ? at / kPageblock * kPageblock : at;
      const uint64_t to = outside ? std::min<uint64_t>((at + n + kPageblock - 1) / kPageblock * kPageblock, s.impl().machine().pages) : at + n;
      bool free = true;
      for (uint64_t f = from; f < to && free; ++f) free = s.impl().role(Pfn{f}) == impl::FrameRole::free;
      if (!free) continue;
      Alloc a;
      a.id = fresh(s, 'h');
      a.kind = Kind::movable;
      a.order = Order{order};
      a.at = Pfn{at};
      if (!s.step_op(a)) return;
      if (!s.last_outcome().ok) {  // (cannot happen on free frames) no pin can follow: take it back
        s.mutable_trace().statements.pop_back();
        return;
      }
      s.step_op(Pin{a.id, false});
      held_.push_back(a.id);
      return;
    }
    expect(s);
  }

  // unpin of a held block (kreplay: `drop`). The model's page stays, movable; the generator
  // never holds its frames again (they are not free in the model).
  void drop(Session& s) {
    const size_t i = in_.below(held_.size());
    const HandleId h = held_[i];
    held_.erase(held_.begin() + static_cast<ptrdiff_t>(i));
    s.step_op(Unpin{h});
  }

  void expect(Session& s) {
    const AreaStats st = s.impl().area_stats(AreaId{0});
    Statement e;
    Expect ex;
    const uint64_t which = in_.below(3);
    if (which != 1) ex.items.push_back({ExpectKey::area_used, 0, st.used});
    if (which != 0) ex.items.push_back({ExpectKey::area_maxchunk, 0, st.maxchunk});
    e.body = ex;
    s.mutable_trace().statements.push_back(e);
    s.step(s.mutable_trace().statements.size() - 1);
  }

  SeededChoices in_;
  Geometry g_;
  std::vector<HandleId> held_;
  uint32_t names_ = 0;
};

}  // namespace

uint64_t derive_seed(uint64_t seed, uint64_t boot, uint64_t trace) {
  return splitmix(splitmix(splitmix(seed) ^ boot) ^ (trace * 0x9e3779b97f4a7c15ULL + 1));
}

Geometry random_geometry(uint64_t seed) {
  SeededChoices in(splitmix(seed ^ 0x6b667a7a67656f6dULL));
  // Size: 4 MiB and up in 2 MiB steps, small areas more often (log-uniform up to 64 MiB).
  const uint64_t size_mib = 4 + 2 * (small(in, 31) - 1);
  const uint64_t pages = size_mib * 256;
  // Base: exactly aligned to 2^a frames, a in 9..14 (2 MiB .. 64 MiB): an odd multiple of 2^a.
  for (;;) {
    const unsigned a = 9 + static_cast<unsigned>(in.below(6));
    const uint64_t unit = uint64_t{1} << a;
    std::vector<uint64_t> bases;
    for (uint64_t m = 1; m * unit + pages <= kHighPfn; m += 2)
      if (m * unit >= kLowPfn) bases.push_back(m * unit);
    if (bases.empty()) continue;
    return Geometry{bases[in.below(bases.size())], pages};
  }
}

std::string describe(const Geometry& g) {
  unsigned a = 0;
  while (a < 40 && (g.base >> a & 1) == 0) ++a;
  auto mib = [](uint64_t pages) {
    return pages % 256 == 0 ? std::to_string(pages / 256) + "M" : std::to_string(pages * 4) + "K";
  };
  return "cma=" + mib(g.pages) + "@" + mib(g.base) + " (frames " + std::to_string(g.base) + "-" +
         std::to_string(g.base + g.pages - 1) + ", base aligned to " + mib(uint64_t{1} << a) + ")";
}

Profile profile_of_kernel(std::string_view kernel) {
  for (Profile p : kProfiles)
    if (kreplay::kernel_for_profile(name(p)) == std::string(kernel)) return p;
  return Profile::linux_6_1;
}

Trace generate_trace(uint64_t seed, const Geometry& g, const GenerateOptions& o) { return TraceGen(seed, g).run(o); }

}  // namespace cmacheck::kfuzz
