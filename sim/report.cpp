#include "sim/report.h"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace cmacheck::sim {

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string pct(double v) { return fmt(v >= 0.9995 || v < 0.0005 ? "%.0f %%" : "%.1f %%", 100 * v); }

std::string share(double v) {  // a workload share, as given: 0.1 % or 80 %
  return fmt(v * 100 == std::round(v * 100) ? "%.0f %%" : "%.2g %%", 100 * v);
}

const Cell* find(const Summary& s, Config c, uint64_t size) {
  for (const Cell& cell : s.cells)
    if (cell.config == c && cell.size_pages == size) return &cell;
  return nullptr;
}

}  // namespace

std::string format_size(uint64_t pages) {
  const uint64_t kib = pages * 4;
  if (kib % (1024 * 1024) == 0) return std::to_string(kib / (1024 * 1024)) + " GiB";
  if (kib % 1024 == 0) return std::to_string(kib / 1024) + " MiB";
  return std::to_string(kib) + " KiB";
}

std::string markdown(const Summary& s) {
  const Workload& w = s.workload;
  std::ostringstream o;
  o << "Workload" << (s.preset.empty() ? "" : " `" + s.preset + "`") << ", kernel profile " << name(w.profile) << ": "
    << format_size(w.memory_pages) << " of memory (pageblock " << format_size(uint64_t{1} << w.pageblock_order) << ", max order "
    << int{w.max_order} << "); the reservation is " << format_size(w.area_pages) << " at the top of memory; aged "
    << fmt("%g", w.aging) << (w.aging == 1 ? " turnover" : " turnovers") << " in cycles from " << share(w.utilisation) << " to " << share(w.peak)
    << " of memory in use; measured at " << share(w.utilisation) << ". Kinds by pages: unmovable "
    << share(w.unmovable) << ", reclaimable " << share(w.reclaimable) << ", movable " << share(w.movable())
    << "; orders by pages " << format_orders(w.orders) << ". Pins: " << share(w.pin_short)
    << " of movable blocks short-term at the request, " << share(w.pin_long) << " long-term for life. "
    << (w.pcp_high ? "Per-CPU page lists, high " + std::to_string(w.pcp_high) + " pages. " : std::string())
    << (w.background > 0 ? "A second CPU during the request: " + share(w.background) +
                               " of its step boundaries run a step of CPU 1's (frees, allocations, short pins). "
                         : std::string())
    << s.options.trials << " trials per configuration, seed " << s.options.seed << ".\n\n";

  o << "| request | configuration | success | 95 % interval | clean windows | windows tried (mean / max) "
       "| pages migrated (mean) | failed: pinned / no target / unmovable"
    << (w.background > 0 ? " / transient" : "") << " |\n"
    << "|---|---|---|---|---|---|---|---|\n";
  for (uint64_t size : w.sizes)
    for (Config c : s.options.configs) {
      const Cell* cell = find(s, c, size);
      if (!cell) continue;
      o << "| " << format_size(size) << " | " << name(c) << " | " << pct(cell->rate.estimate) << " ("
        << cell->successes << "/" << cell->trials << ") | " << pct(cell->rate.low) << " – " << pct(cell->rate.high)
        << " | " << (c == Config::no_reservation ? pct(cell->clean_share) : "–") << " | "
        << fmt("%.1f", cell->windows_mean) << " / " << cell->windows_max << " | " << fmt("%.0f", cell->migrated_mean)
        << " | " << cell->failures[static_cast<size_t>(Failure::pinned)] << " / "
        << cell->failures[static_cast<size_t>(Failure::no_target)] << " / "
        << cell->failures[static_cast<size_t>(Failure::unmovable)]
        << (w.background > 0 ? " / " + std::to_string(cell->failures[static_cast<size_t>(Failure::transient)]) : "")
        << " |\n";
    }
  o << "\n*Clean windows*: the share of the zone's size-aligned windows holding no unmovable, reclaimable or "
       "pinned page: the chance that a request confined to one random window could succeed.\n";
  o << "\nThe aged machine at the request (mean over trials):\n\n";
  for (size_t ci = 0; ci < s.options.configs.size() && ci < s.aging_mean.size(); ++ci) {
    const AgingStats& a = s.aging_mean[ci];
    o << "- " << name(s.options.configs[ci]) << ": " << a.polluted_pageblocks << " of " << a.pageblocks
      << " non-CMA pageblocks hold an unmovable or reclaimable page (" << a.polluted_movable
      << " of them labelled MOVABLE); " << a.pinned_pages << " pages pinned; " << a.alloc_failures
      << " aging allocations found no free block; " << a.long_pin_failures << " long-term pins refused.\n";
  }
  return o.str();
}

std::string csv(const Summary& s) {
  std::ostringstream o;
  o << "profile,configuration,size_pages,size,trials,successes,rate,low,high,clean_share,windows_mean,windows_max,"
       "migrated_mean,migrated_mean_ok,failed_pinned,failed_no_target,failed_unmovable,failed_no_window,failed_transient\n";
  for (const Cell& c : s.cells) {
    o << name(s.workload.profile) << "," << name(c.config) << "," << c.size_pages << "," << format_size(c.size_pages) << "," << c.trials << ","
      << c.successes << "," << fmt("%.6f", c.rate.estimate) << "," << fmt("%.6f", c.rate.low) << ","
      << fmt("%.6f", c.rate.high) << ",";
    if (c.config == Config::no_reservation) o << fmt("%.6f", c.clean_share);
    o << "," << fmt("%.3f", c.windows_mean) << "," << c.windows_max << "," << fmt("%.1f", c.migrated_mean) << ","
      << fmt("%.1f", c.migrated_mean_ok) << "," << c.failures[static_cast<size_t>(Failure::pinned)] << ","
      << c.failures[static_cast<size_t>(Failure::no_target)] << ","
      << c.failures[static_cast<size_t>(Failure::unmovable)] << ","
      << c.failures[static_cast<size_t>(Failure::no_window)] << ","
      << c.failures[static_cast<size_t>(Failure::transient)] << "\n";
  }
  return o.str();
}

std::string svg(const Summary& s) { return svg(std::vector<Summary>{s}); }

std::string markdown_profiles(const std::vector<Summary>& runs) {
  const Summary& s = runs.front();
  const Workload& w = s.workload;
  std::ostringstream o;
  o << "| request | configuration |";
  for (const Summary& r : runs) o << " success " << name(r.workload.profile) << " |";
  o << " clean windows |";
  for (const Summary& r : runs) o << " windows tried " << name(r.workload.profile) << " |";
  for (const Summary& r : runs) o << " pages migrated " << name(r.workload.profile) << " |";
  o << "\n|---|---|";
  for (size_t k = 0; k < 3 * runs.size() + 1; ++k) o << "---|";
  o << "\n";
  for (uint64_t size : w.sizes)
    for (Config c : s.options.configs) {
      if (!find(s, c, size)) continue;
      o << "| " << format_size(size) << " | " << name(c) << " |";
      for (const Summary& r : runs) {
        const Cell* cell = find(r, c, size);
        o << " " << pct(cell->rate.estimate) << " (" << cell->successes << "/" << cell->trials << ") |";
      }
      o << " ";
      for (size_t k = 0; k < runs.size(); ++k) {
        const Cell* cell = find(runs[k], c, size);
        o << (k ? " / " : "") << (c == Config::no_reservation ? pct(cell->clean_share) : "–");
      }
      o << " |";
      for (const Summary& r : runs) o << " " << fmt("%.1f", find(r, c, size)->windows_mean) << " |";
      for (const Summary& r : runs) o << " " << fmt("%.0f", find(r, c, size)->migrated_mean) << " |";
      o << "\n";
    }
  o << "\nThe aged machines (mean over trials):\n\n";
  for (const Summary& r : runs)
    for (size_t ci = 0; ci < r.options.configs.size() && ci < r.aging_mean.size(); ++ci) {
      const AgingStats& a = r.aging_mean[ci];
      o << "- " << name(r.workload.profile) << ", " << name(r.options.configs[ci]) << ": " << a.polluted_pageblocks
        << " of " << a.pageblocks << " non-CMA pageblocks hold an unmovable or reclaimable page ("
        << a.polluted_movable << " of them labelled MOVABLE); " << a.alloc_failures
        << " aging allocations found no free block.\n";
    }
  return o.str();
}

std::string svg(const std::vector<Summary>& runs) {
  const Summary& s = runs.front();
  const Workload& w = s.workload;
  const double right = runs.size() > 1 ? 300 : 230, left = 70, top = 50, bottom = 60, W = left + 460 + right, H = 440;
  const double pw = W - left - right, ph = H - top - bottom;
  // x: log2 of the size, the smallest and largest sizes at the ends (a little margin).
  double lo = 1e300, hi = -1e300;
  for (uint64_t size : w.sizes) {
    lo = std::min(lo, std::log2(static_cast<double>(size)));
    hi = std::max(hi, std::log2(static_cast<double>(size)));
  }
  if (hi - lo < 1) hi = lo + 1;
  const double margin = 0.25 * (hi - lo) / std::max<size_t>(w.sizes.size() - 1, 1);
  auto X = [&](uint64_t size) {
    return left + pw * (std::log2(static_cast<double>(size)) - lo + margin) / (hi - lo + 2 * margin);
  };
  auto Y = [&](double rate) { return top + ph * (1 - rate); };

  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W
    << " " << H << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"" << left + pw / 2 << "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">Contiguous requests on "
    << format_size(w.memory_pages) << ", aged to " << share(w.utilisation) << " in use, ";
  for (size_t k = 0; k < runs.size(); ++k) o << (k ? " vs " : "") << name(runs[k].workload.profile);
  o << " (" << s.options.trials << " trials each)</text>\n";
  // Grid and axes.
  for (int i = 0; i <= 10; ++i) {
    const double y = Y(i / 10.0);
    o << "<line x1=\"" << left << "\" y1=\"" << y << "\" x2=\"" << left + pw << "\" y2=\"" << y
      << "\" stroke=\"" << (i % 5 == 0 ? "#bbb" : "#e5e5e5") << "\"/>\n";
    if (i % 2 == 0)
      o << "<text x=\"" << left - 8 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">" << i * 10 << " %</text>\n";
  }
  for (uint64_t size : w.sizes) {
    const double x = X(size);
    o << "<line x1=\"" << x << "\" y1=\"" << top << "\" x2=\"" << x << "\" y2=\"" << top + ph
      << "\" stroke=\"#e5e5e5\"/>\n";
    o << "<text x=\"" << x << "\" y=\"" << top + ph + 18 << "\" text-anchor=\"middle\">" << format_size(size)
      << "</text>\n";
  }
  o << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"#333\"/>\n";
  o << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 18 << "\" text-anchor=\"middle\">request size</text>\n";
  o << "<text transform=\"translate(18 " << top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">success rate</text>\n";

  struct Series {
    const char* label;
    const char* colour;
    Config config;
    bool clean;    // the clean-window share instead of the success rate
    double dodge;  // pixels left or right, so that equal rates do not hide each other
  };
  const Series series[] = {
      {"reservation: cma_alloc", "#1f77b4", Config::reservation, false, -5},
      {"no reservation: alloc_contig", "#d62728", Config::no_reservation, false, 5},
      {"no reservation: one window", "#d62728", Config::no_reservation, true, 5},
  };
  double legend_y = top + 10;
  for (size_t k = 0; k < runs.size(); ++k) {
    const Summary& run = runs[k];
    // A second profile: thinner dotted lines, square markers, nudged further aside.
    const bool alt = k > 0;
    const double nudge = alt ? 4 : 0;
    for (const Series& se : series) {
      bool present = false;
      for (Config c : run.options.configs) present |= c == se.config;
      if (!present) continue;
      const char* dash = se.clean ? (alt ? "2 3" : "6 4") : (alt ? "1 3" : nullptr);
      std::ostringstream path;
      for (uint64_t size : w.sizes) {
        const Cell* c = find(run, se.config, size);
        if (!c) continue;
        const double x = X(size) + se.dodge + (se.dodge < 0 ? -nudge : nudge), y = Y(se.clean ? c->clean_share : c->rate.estimate);
        path << (path.tellp() == 0 ? "M" : " L") << fmt("%.1f", x) << " " << fmt("%.1f", y);
        if (se.clean) {
          o << "<rect x=\"" << x - 3.5 << "\" y=\"" << y - 3.5 << "\" width=\"7\" height=\"7\" fill=\"white\" stroke=\""
            << se.colour << "\"/>\n";
          continue;
        }
        const double y0 = Y(c->rate.low), y1 = Y(c->rate.high);
        o << "<g stroke=\"" << se.colour << "\"><line x1=\"" << x << "\" y1=\"" << y0 << "\" x2=\"" << x << "\" y2=\""
          << y1 << "\"/><line x1=\"" << x - 5 << "\" y1=\"" << y0 << "\" x2=\"" << x + 5 << "\" y2=\"" << y0
          << "\"/><line x1=\"" << x - 5 << "\" y1=\"" << y1 << "\" x2=\"" << x + 5 << "\" y2=\"" << y1 << "\"/></g>\n";
        if (alt)
          o << "<rect x=\"" << x - 4 << "\" y=\"" << y - 4 << "\" width=\"8\" height=\"8\" fill=\"" << se.colour << "\"/>\n";
        else
          o << "<circle cx=\"" << x << "\" cy=\"" << y << "\" r=\"4\" fill=\"" << se.colour << "\"/>\n";
      }
      o << "<path d=\"" << path.str() << "\" fill=\"none\" stroke=\"" << se.colour << "\" stroke-width=\"2\""
        << (dash ? std::string(" stroke-dasharray=\"") + dash + "\"" : "") << "/>\n";
      const double lx = left + pw + 14;
      o << "<line x1=\"" << lx << "\" y1=\"" << legend_y << "\" x2=\"" << lx + 24 << "\" y2=\"" << legend_y
        << "\" stroke=\"" << se.colour << "\" stroke-width=\"2\""
        << (dash ? std::string(" stroke-dasharray=\"") + dash + "\"" : "") << "/>\n";
      o << "<text x=\"" << lx + 30 << "\" y=\"" << legend_y + 4 << "\" font-size=\"11\">" << se.label;
      if (runs.size() > 1) o << " (" << name(run.workload.profile) << ")";
      o << "</text>\n";
      legend_y += 20;
    }
  }
  o << "<text x=\"" << left + pw + 14 << "\" y=\"" << legend_y + 10 << "\" font-size=\"10\" fill=\"#555\">bars: 95 % "
       "Wilson interval</text>\n";
  o << "</svg>\n";
  return o.str();
}

}  // namespace cmacheck::sim
