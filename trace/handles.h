// Which handles are live, and of which family: the runtime half of "malformed" (a handle
// must be live to be used, free to be bound) and what the generator picks from. One table
// for every consumer: the checker, the properties, the zoo.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "trace/ops.h"
#include "trace/outcome.h"

namespace cmacheck {

class HandleTable {
 public:
  bool live(HandleId h) const { return raw(h) < slots_.size() && slots_[raw(h)].live; }
  Family family(HandleId h) const { return slots_[raw(h)].family; }
  void bind(HandleId h, Family f);
  void unbind(HandleId h);
  // What operation `op`, with outcome `out`, did to the handles (from the operation's facts,
  // trace/ops.h): a success binds, ends or leaves the handle it names; a raw cma_release
  // ends the one `out.ended` names. A failure changes nothing.
  void apply(const Op& op, const Outcome& out);
  // Why `op` cannot run now, if it cannot: it binds a handle still live, or uses one that is
  // not live (or of another family). nullptr when it can.
  const char* refuses(const Op& op) const;
  // Handles live now, of one family: in handle order, or in the table's own (deterministic)
  // order.
  std::vector<HandleId> live_of(Family f) const;
  size_t live_count(Family f) const { return lists_[index(f)].size(); }
  const std::vector<HandleId>& live_list(Family f) const { return lists_[index(f)]; }

 private:
  struct Slot {
    bool live = false;
    Family family = Family::block;
    uint32_t index = 0;  // position in lists_[family]
  };
  std::vector<Slot> slots_;
  std::array<std::vector<HandleId>, kFamilies> lists_;
};

}  // namespace cmacheck
