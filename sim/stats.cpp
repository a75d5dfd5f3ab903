#include "sim/stats.h"

#include <algorithm>
#include <cmath>

namespace cmacheck::sim {

Interval wilson(uint64_t k, uint64_t n, double z) {
  if (n == 0) return {0, 0, 1};
  const double nn = static_cast<double>(n);
  const double p = static_cast<double>(k) / nn;
  const double z2 = z * z;
  const double denom = 1 + z2 / nn;
  const double centre = (p + z2 / (2 * nn)) / denom;
  const double half = z * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / denom;
  // At k = 0 and k = n the bound is exactly 0 or 1; rounding must not move it.
  const double low = k == 0 ? 0.0 : std::max(0.0, centre - half);
  const double high = k == n ? 1.0 : std::min(1.0, centre + half);
  return {p, low, high};
}

}  // namespace cmacheck::sim
