// The frame picture of a failure report: one character per frame, 64 to a row, with the
// pageblock labels underneath, so that a kernel developer sees the state in one look.
#include <algorithm>
#include <cstdio>
#include <string>

#include "check/runner.h"
#include "model/model.h"

namespace cmacheck {

namespace {

template <typename FrameChar, typename Label>
std::string picture(const char* who, uint64_t pages, uint8_t pb_order, Pfn center, uint64_t radius, FrameChar fc,
                    Label label) {
  const uint64_t c = raw(center);
  uint64_t lo = c > radius ? c - radius : 0;
  lo &= ~uint64_t{63};
  const uint64_t hi = std::min(pages, (c + radius + 64) & ~uint64_t{63});
  std::string out;
  char buf[64];
  for (uint64_t row = lo; row < hi; row += 64) {
    std::snprintf(buf, sizeof buf, "  %-5s %8llu |", who, static_cast<unsigned long long>(row));
    out += buf;
    std::string labels;
    for (uint64_t f = row; f < std::min(hi, row + 64); ++f) {
      out += fc(Pfn{f});
      labels += ((f & ((uint64_t{1} << pb_order) - 1)) == 0) ? label(Pfn{f}) : ' ';
    }
    out += "|\n";
    out += "                 |" + labels + "|  pageblock labels\n";
  }
  return out;
}

}  // namespace

char role_char(impl::FrameRole r) {
  switch (r) {
    case impl::FrameRole::free: return '.';
    case impl::FrameRole::movable: return 'm';
    case impl::FrameRole::unmovable: return 'u';
    case impl::FrameRole::reclaimable: return 'r';
    case impl::FrameRole::pinned: return 'P';
    case impl::FrameRole::cma_allocated: return 'C';
    case impl::FrameRole::contig_allocated: return 'X';
    case impl::FrameRole::isolated: return 'i';
    case impl::FrameRole::on_pcp: return 'p';
  }
  return '?';
}

std::string picture_legend() {
  return ". free  m movable  u unmovable  r reclaimable  P pinned  C cma_alloc  X alloc_contig  i isolated  p on a page list; "
         "labels M U R C I";
}

std::string frame_picture_impl(const impl::Allocator& a, Pfn center, uint64_t radius) {
  return picture(
      "impl", a.machine().pages, a.machine().pageblock_order, center, radius,
      [&](Pfn p) { return role_char(a.role(p)); }, [&](Pfn p) { return label_letter(a.label(p)); });
}

std::string frame_picture_model(const model::Model& m, uint64_t pages, uint8_t pb_order, Pfn center, uint64_t radius) {
  return picture(
      "model", pages, pb_order, center, radius, [&](Pfn p) { return m.frame_char(p); },
      [&](Pfn p) { return label_letter(m.label(p)); });
}

}  // namespace cmacheck
