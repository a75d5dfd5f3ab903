#include "trace/outcome.h"

#include <cstdio>
#include <string>

namespace cmacheck {

const char* name(FailReason r) {
  switch (r) {
    case FailReason::none: return "none";
    case FailReason::invalid_request: return "invalid-request";
    case FailReason::no_free_block: return "no-free-block";
    case FailReason::pinned: return "pinned";
    case FailReason::not_pinned: return "not-pinned";
    case FailReason::not_movable: return "not-movable";
    case FailReason::no_target: return "no-target";
    case FailReason::no_window: return "no-window";
    case FailReason::busy: return "busy";
    case FailReason::no_memory: return "no-memory";
    case FailReason::not_handed_out: return "not-handed-out";
  }
  return "?";
}

std::string outcome_text(const Outcome& o) {
  std::string s = o.ok ? "ok pfn=" + std::to_string(raw(o.pfn)) : std::string("fail (") + name(o.reason) + ")";
  if (!o.moves.empty()) s += ", moved " + std::to_string(o.moves.size());
  if (o.windows_tried > 1) s += ", " + std::to_string(o.windows_tried) + " windows";
  return s;
}

std::string describe(const Observation& o, const Trace& t) {
  std::string s = o.ok ? "ok" : "fail";
  if (o.ok)
    s += " pfn=" + std::to_string(raw(o.pfn));
  else
    s += std::string(" (") + name(o.reason) + ")";
  s += " free=" + std::to_string(o.free) + " free_cma=" + std::to_string(o.free_cma);
  for (size_t i = 0; i < o.areas.size() && i < t.areas.size(); ++i)
    s += " " + t.areas[i].name + ".used=" + std::to_string(o.areas[i].used) + " " + t.areas[i].name +
         ".maxchunk=" + std::to_string(o.areas[i].maxchunk);
  for (const auto& p : o.live) {
    s += "\n    " + (raw(p.handle) < t.handles.size() ? t.handle_name(p.handle) : "?") + " pfn=" +
         std::to_string(raw(p.pfn)) + " count=" + std::to_string(raw(p.count));
    char buf[32];
    snprintf(buf, sizeof buf, " digest=%016llx", static_cast<unsigned long long>(p.digest));
    s += buf;
  }
  return s;
}

}  // namespace cmacheck
