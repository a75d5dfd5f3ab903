#include "check/footprint.h"

#include <algorithm>
#include <type_traits>
#include <variant>

namespace cmacheck {

namespace {

constexpr uint8_t kAllCpus = 0xff;
constexpr uint32_t kAllAreas = 0xffffffffu;

uint32_t area_bit(AreaId a) { return 1u << (raw(a) % 32); }

Footprint of_bitmap(uint32_t areas) {
  Footprint f;
  f.bitmaps = areas;
  return f;
}

Footprint of_handle(HandleId h) {
  Footprint f;
  f.handle = h;
  return f;
}

// A CPU's own LRU batches (touch, lru_drain): a full batch drains, dropping the references
// of whatever blocks it held (E2), so the records touched are not known in advance.
Footprint of_own_batches(uint8_t cpu) {
  Footprint f;
  f.batches = static_cast<uint8_t>(1u << cpu);
  f.any_handle = true;
  return f;
}

// The area of the running cma_alloc, or every area (cma_release finds its area in the record).
uint32_t areas_of(const Op& op) {
  if (const auto* c = std::get_if<CmaAlloc>(&op)) return area_bit(c->area);
  if (const auto* r = std::get_if<CmaReleaseRaw>(&op)) return area_bit(r->area);
  return kAllAreas;
}

// The first stretch of an operation: from its start to its first step boundary (or its end).
// Only a free (F1's pin check and F2's unlocked read, `read_type`) and a cma_alloc (its search
// and `reserve` under cma->lock, A3, A4) stop short of the whole operation's footprint.
Footprint first_footprint(const Op& op, uint8_t cpu) {
  if (const auto* f = std::get_if<Free>(&op)) {
    Footprint read = of_handle(f->id);
    read.zone = Footprint::Zone::read;
    return read;
  }
  if (const auto* c = std::get_if<CmaAlloc>(&op)) return of_bitmap(area_bit(c->area));
  return op_footprint(op, cpu);
}

}  // namespace

Footprint op_footprint(const Op& op, uint8_t cpu) {
  return std::visit(
      [&](const auto& o) -> Footprint {
        using O = std::remove_cvref_t<decltype(o)>;
        if constexpr (std::is_same_v<O, Pin>) {
          return o.longterm ? Footprint::shared_state() : of_handle(o.id);
        } else if constexpr (std::is_same_v<O, Unpin>) {
          return of_handle(o.id);
        } else if constexpr (std::is_same_v<O, CmaAlloc>) {
          Footprint f = Footprint::shared_state();
          f.bitmaps = area_bit(o.area);
          f.mutex = true;
          return f;
        } else if constexpr (std::is_same_v<O, CmaRelease> || std::is_same_v<O, CmaReleaseRaw>) {
          Footprint f = Footprint::shared_state();
          f.bitmaps = areas_of(op);
          return f;
        } else if constexpr (std::is_same_v<O, Touch> || std::is_same_v<O, LruDrain>) {
          return of_own_batches(cpu);
        } else {
          return Footprint::shared_state();
        }
      },
      op);
}

bool Footprint::empty() const { return *this == Footprint{}; }

Footprint Footprint::shared_state() {
  Footprint f;
  f.zone = Zone::write;
  f.pcp = kAllCpus;
  f.batches = kAllCpus;
  f.any_handle = true;
  return f;
}

Footprint& Footprint::operator|=(const Footprint& o) {
  zone = std::max(zone, o.zone);
  pcp |= o.pcp;
  batches |= o.batches;
  bitmaps |= o.bitmaps;
  mutex = mutex || o.mutex;
  any_handle = any_handle || o.any_handle;
  if (o.handle) {
    if (!handle) handle = o.handle;
    else if (*handle != *o.handle) any_handle = true;
  }
  return *this;
}

bool Footprint::covers(const Footprint& o) const {
  const bool handles = !(o.any_handle || o.handle) || any_handle || (o.handle && !o.any_handle && handle == o.handle);
  return o.zone <= zone && (o.pcp & ~pcp) == 0 && (o.batches & ~batches) == 0 && (o.bitmaps & ~bitmaps) == 0 &&
         (!o.mutex || mutex) && handles;
}

bool conflict(const Footprint& a, const Footprint& b) {
  using Z = Footprint::Zone;
  if (a.zone != Z::none && b.zone != Z::none && (a.zone == Z::write || b.zone == Z::write)) return true;
  if ((a.pcp & b.pcp) || (a.batches & b.batches) || (a.bitmaps & b.bitmaps) || (a.mutex && b.mutex)) return true;
  const bool a_names = a.any_handle || a.handle, b_names = b.any_handle || b.handle;
  if ((a.any_handle && b_names) || (b.any_handle && a_names)) return true;
  return a.handle && b.handle && *a.handle == *b.handle;
}

Footprint next_footprint(const NextStep& next, const FootprintFaults& faults) {
  const Op& op = *next.op;
  if (!next.last) return first_footprint(op, next.cpu);
  const bool cma_alloc = std::holds_alternative<CmaAlloc>(op);
  if (next.blocked) {
    if (*next.last == StepLabel::mutex) {
      Footprint f;  // it takes cma_mutex when it runs again, nothing else before the `mutex` step
      f.mutex = true;
      return f;
    }
    return Footprint::shared_state();  // lru_wait: the long-term pin looks again (P2)
  }
  switch (*next.last) {
    case StepLabel::reserve:
      if (next.nothing_reserved) return {};  // no window: the call returns
      if (faults.no_cma_mutex) {  // straight to alloc_contig_range (D18), or back to the bitmap
        Footprint f = Footprint::shared_state();
        f.bitmaps = areas_of(op);
        return f;
      }
      {
        Footprint f;
        f.mutex = true;
        return f;
      }
    case StepLabel::search: return of_bitmap(areas_of(op));  // bitmap_set of the stale result
    case StepLabel::unreserve: return of_bitmap(areas_of(op));  // the next window's search, or the end
    case StepLabel::clear_bits: return faults.clear_bits_first ? Footprint::shared_state() : Footprint{};
    case StepLabel::free_range: return faults.clear_bits_first ? Footprint{} : of_bitmap(areas_of(op));
    case StepLabel::read_type:
    case StepLabel::op:
    case StepLabel::lru_wait: return Footprint::shared_state();
    case StepLabel::mutex:
    case StepLabel::isolate:
    case StepLabel::drain:
    case StepLabel::pcp_drain:
    case StepLabel::lru_isolate:
    case StepLabel::migrate:
    case StepLabel::take:
    case StepLabel::undo: {
      // A step of alloc_contig_range; once it returns, cma_alloc drops cma_mutex and clears a
      // failed window's bits (A4).
      Footprint f = Footprint::shared_state();
      if (cma_alloc) {
        f.mutex = true;
        f.bitmaps = areas_of(op);
      }
      return f;
    }
  }
  return Footprint::shared_state();
}

Footprint step_footprint(StepLabel label, AreaId area, const Op& op) {
  switch (label) {
    case StepLabel::reserve:
    case StepLabel::search:
    case StepLabel::clear_bits: return of_bitmap(area_bit(area));
    case StepLabel::unreserve: {
      Footprint f = of_bitmap(area_bit(area));
      f.mutex = true;  // mutex_unlock before cma_clear_bitmap
      return f;
    }
    case StepLabel::mutex: {
      Footprint f;
      f.mutex = true;
      return f;
    }
    case StepLabel::read_type: {
      Footprint f;
      f.zone = Footprint::Zone::read;
      if (const auto* fr = std::get_if<Free>(&op)) f.handle = fr->id;
      else f.any_handle = true;
      return f;
    }
    default: return Footprint::shared_state();
  }
}

}  // namespace cmacheck
