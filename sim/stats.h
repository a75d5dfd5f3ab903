// Small statistics for the simulator's report.
#pragma once

#include <cstdint>

namespace cmacheck::sim {

struct Interval {
  double estimate = 0;  // k / n
  double low = 0, high = 0;
  friend bool operator==(const Interval&, const Interval&) = default;
};

// The Wilson score interval for k successes in n Bernoulli trials (Wilson 1927). Unlike the
// normal approximation it stays inside [0, 1] and is sensible at 0 and n successes, which is
// where the simulator's answers often lie. z = 1.96 gives 95 %. n = 0 gives [0, 1].
Interval wilson(uint64_t k, uint64_t n, double z = 1.959963984540054);

}  // namespace cmacheck::sim
