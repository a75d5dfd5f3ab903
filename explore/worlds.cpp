// The named small worlds of `cmacheck explore` and how a world is loaded (docs/explore.md
// says what each is for and what was proven in it).
#include <ostream>

#include "check/replay.h"
#include "explore/explore.h"
#include "trace/parse.h"

namespace cmacheck::explore {

namespace {

// Each world is a trace: its header, and the operations that set it up before the search.
constexpr NamedWorld kWorlds[] = {
    {"tiny", "one frame, one MOVABLE pageblock: exhausted within 2 operations",
     "machine pages=1 pageblock_order=0 max_order=0\n", 1},
    {"pair", "two frames, the second a CMA area: exhausted within 6 operations",
     "machine pages=2 pageblock_order=0 max_order=1\n"
     "area dma base=1 pages=1\n",
     1},
    {"four", "4 frames, two pageblocks of 2, max_order 1, the second pageblock a CMA area: exhausted within 14 operations",
     "machine pages=4 pageblock_order=1 max_order=1\n"
     "area dma base=2 pages=2\n",
     2},
    {"small", "16 frames, pageblocks of 2, max_order 2, an 8-frame area at frame 2 with order_per_bit 1",
     "machine pages=16 pageblock_order=1 max_order=2\n"
     "area dma base=2 pages=8 order_per_bit=1\n",
     2},
    {"quad", "16 frames, pageblocks of 4 (where claiming counts, B5), max_order 3, a 12-frame area at frame 4",
     "machine pages=16 pageblock_order=2 max_order=3\n"
     "area dma base=4 pages=12\n",
     2},
    {"small-pcp", "small with per-CPU page lists of high 2 (rules Q1-Q5): a second small free flushes them",
     "machine pages=16 pageblock_order=1 max_order=2 pcp=2\n"
     "area dma base=2 pages=8 order_per_bit=1\n",
     2},
    {"two-areas", "32 frames, pageblocks of 2, max_order 3, areas at 4 (8 frames) and 16 (8, order_per_bit 1)",
     "machine pages=32 pageblock_order=1 max_order=3\n"
     "area dma base=4 pages=8\n"
     "area cam base=16 pages=8 order_per_bit=1\n",
     2},
    {"pinned", "64 frames, pageblocks of 4, max_order 3, a 32-frame area holding a pinned movable page",
     "machine pages=64 pageblock_order=2 max_order=3\n"
     "area dma base=32 pages=32\n"
     "alloc p kind=movable at=41\n"
     "pin p\n",
     2},
    // For concurrent programs (--cpus): small enough that every program of one operation per
    // CPU runs under every schedule with a preemption or two.
    {"duo", "8 frames, pageblocks of 2, max_order 1, a 4-frame area at frame 4 (for --cpus: two cma_allocs share a pageblock)",
     "machine pages=8 pageblock_order=1 max_order=1\n"
     "area dma base=4 pages=4\n",
     2},
    {"duo-live", "duo with a movable page in the area (frame 6) and a one-page cma allocation (frame 4) to migrate, pin, touch and release",
     "machine pages=8 pageblock_order=1 max_order=1\n"
     "area dma base=4 pages=4\n"
     "alloc m kind=movable at=6\n"
     "cma_alloc c area=dma count=1\n",
     2},
    {"duo-pcp", "duo with page lists of high 4 (pcp=4), a page on CPU 0's list and a movable page in the area (frame 6)",
     "machine pages=8 pageblock_order=1 max_order=1 pcp=4\n"
     "area dma base=4 pages=4\n"
     "alloc a kind=movable\n"
     "alloc m kind=movable at=6\n"
     "free a\n",
     2},
    // F2's race (D22): T0 frees the page at frame 0 while T1's unmovable allocation claims its
    // pageblock, the only one with a free frame. linux-6.12, where D22 is a bug; under
    // --profile linux-6.1 the same schedules are legal (U61).
    {"duo-steal", "8 frames, pageblocks of 2, max_order 1, linux-6.12; movable pages at 0 and 2-7, frame 1 free (for --cpus: a free against the claim of its pageblock)",
     "machine pages=8 pageblock_order=1 max_order=1 profile=linux-6.12\n"
     "alloc m kind=movable at=0\n"
     "alloc a kind=movable order=1 at=2\n"
     "alloc b kind=movable order=1 at=4\n"
     "alloc c kind=movable order=1 at=6\n",
     2},
};

}  // namespace

std::span<const NamedWorld> named_worlds() { return kWorlds; }

std::vector<std::string> zoo_worlds() { return {"small", "quad", "small-pcp"}; }

std::vector<std::string> zoo_concurrent_worlds() { return {"duo", "duo-live", "duo-pcp", "duo-steal"}; }

// explore is for small worlds: its alphabet grows with the frames (every at= frame, every
// count), and so does every state.
constexpr uint64_t kMaxExplorePages = 1024;

bool world_from_text(const std::string& name, const std::string& text, uint32_t max_pins, World& out,
                     std::ostream& err) {
  ParseResult p = parse_trace(text);
  if (!p.ok()) {
    err << p.error->format(name) << "\n";
    return false;
  }
  if (p.trace.concurrent()) {
    err << name << ":1: error: explore's worlds are sequential (a concurrent trace runs with `cmacheck replay`)\n";
    return false;
  }
  if (p.trace.machine.pages > kMaxExplorePages) {
    err << name << ": error: explore runs worlds of at most " << kMaxExplorePages << " frames, this one has "
        << p.trace.machine.pages << "\n";
    return false;
  }
  out.name = name;
  out.trace = std::move(p.trace);
  out.max_pins = max_pins;
  return true;
}

bool load_world(const std::string& name_or_path, World& out, std::ostream& err) {
  for (const NamedWorld& w : kWorlds)
    if (name_or_path == w.name) {
      if (!world_from_text(w.name, w.text, w.max_pins, out, err)) return false;
      out.description = w.description;
      return true;
    }
  std::string bytes, why;
  if (!read_input_file(name_or_path, bytes, why)) {
    std::string names;
    for (const NamedWorld& w : kWorlds) names += std::string(names.empty() ? "" : ", ") + w.name;
    err << name_or_path << ": error: not a named world (" << names << ") and not a trace file: " << why << "\n";
    return false;
  }
  if (!world_from_text(name_or_path, bytes, 2, out, err)) return false;
  out.description = "the header and setup of " + name_or_path;
  return true;
}

}  // namespace cmacheck::explore
