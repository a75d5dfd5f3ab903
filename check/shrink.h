// Delta debugging of a failing trace: statements first (ddmin), then numbers, until no
// single change keeps the failure. "The same way" means the same violated rule.
#pragma once

#include <functional>
#include <string>

#include "check/runner.h"

namespace cmacheck {

struct ShrinkResult {
  Trace trace;
  std::string rule;       // the rule the shrunk trace violates
  size_t runs = 0;        // traces tried
  bool failed = false;    // the input failed at all
};

// Shrinks `input`, which must fail under `options`. `progress` (optional) is called now
// and then with the current statement count.
ShrinkResult shrink_trace(const Trace& input, const RunOptions& options,
                          const std::function<void(size_t)>& progress = {});

// The rule a trace violates under `options`, or "" when it passes (or is malformed).
std::string violated_rule(const Trace& t, const RunOptions& options);

}  // namespace cmacheck
