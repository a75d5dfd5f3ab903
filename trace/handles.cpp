#include "trace/handles.h"

#include <algorithm>

namespace cmacheck {

void HandleTable::bind(HandleId h, Family f) {
  if (raw(h) >= slots_.size()) slots_.resize(raw(h) + 1);
  Slot& s = slots_[raw(h)];
  s.live = true;
  s.family = f;
  auto& list = lists_[index(f)];
  s.index = static_cast<uint32_t>(list.size());
  list.push_back(h);
}

void HandleTable::unbind(HandleId h) {
  Slot& s = slots_[raw(h)];
  auto& list = lists_[index(s.family)];
  // Swap-remove keeps unbinding O(1); the order of the list stays deterministic.
  const HandleId last = list.back();
  list[s.index] = last;
  slots_[raw(last)].index = s.index;
  list.pop_back();
  s.live = false;
}

void HandleTable::apply(const Op& op, const Outcome& out) {
  if (!out.ok) return;
  const OpFacts& facts = facts_of(op);
  switch (facts.role) {
    case HandleRole::binds: bind(handle_use(op)->id, facts.family); break;
    case HandleRole::uses:
    case HandleRole::none: break;
    case HandleRole::ends: unbind(handle_use(op)->id); break;
    case HandleRole::ends_by_frames:
      if (out.ended && live(*out.ended)) unbind(*out.ended);
      break;
  }
}

const char* HandleTable::refuses(const Op& op) const {
  const auto use = handle_use(op);
  if (!use) return nullptr;
  if (use->binds) return live(use->id) ? "is still live" : nullptr;
  return !live(use->id) || family(use->id) != use->family ? "is not live" : nullptr;
}

std::vector<HandleId> HandleTable::live_of(Family f) const {
  std::vector<HandleId> v = lists_[index(f)];
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace cmacheck
