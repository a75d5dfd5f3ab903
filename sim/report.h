// The simulator's report: a Markdown table for people, CSV for tools, SVG for the doc.
// Every function is a pure function of the Summary, so the same seed gives the same bytes
// whatever the thread count; timing goes to stderr, never into these.
#pragma once

#include <string>
#include <vector>

#include "sim/sim.h"

namespace cmacheck::sim {

std::string format_size(uint64_t pages);  // "1 MiB", "512 KiB", "4 GiB"

// The workload in one paragraph, then the table, then what the aging left behind.
std::string markdown(const Summary& s);

// One row per (configuration, size): every figure of the table, unrounded.
std::string csv(const Summary& s);

// Success rate against request size (log scale), one line per configuration with 95 %
// interval bars, and the share of clean windows without a reservation as a dashed line.
std::string svg(const Summary& s);

// The same workload run under several kernel profiles (`cmacheck sim --compare-profiles`):
// one row per (size, configuration) with each profile's success, clean windows, windows
// tried and pages migrated side by side; and one plot with a line style per profile.
std::string markdown_profiles(const std::vector<Summary>& runs);
std::string svg(const std::vector<Summary>& runs);

}  // namespace cmacheck::sim
