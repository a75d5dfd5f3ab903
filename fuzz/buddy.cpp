// fuzz_buddy: the buddy allocator alone (alloc, free, merge) against a plain set of free
// frames. Every block handed out must have been free and aligned, every free must give
// the frames back, the counts must agree, and the full invariant walk (I1, I2: blocks
// aligned, maximal, never across a CMA boundary) must hold after every operation.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "fuzz/fuzz_common.h"
#include "impl/allocator.h"
#include "trace/generate.h"

using namespace cmacheck;

namespace {
impl::FaultSet g_faults;
std::optional<Profile> g_profile;
[[noreturn]] void finding(const char* what, uint64_t a, uint64_t b) {
  std::fprintf(stderr, "fuzz_buddy: %s (%llu, %llu)\n", what, static_cast<unsigned long long>(a),
               static_cast<unsigned long long>(b));
  std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_faults = fuzz::faults_from_env();
  g_profile = fuzz::profile_from_env();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteChoices in(std::span<const uint8_t>(data, size));
  GeneratorLimits limits;
  limits.max_pages = 1024;
  limits.profile = g_profile;
  Generator gen(in, limits);
  Trace t = gen.header();
  impl::Allocator a(t.machine, t.areas, g_faults);
  std::vector<uint8_t> free_frame(t.machine.pages, 1);
  uint64_t free_count = t.machine.pages;
  struct Live {
    HandleId h;
    uint64_t pfn, pages;
  };
  std::vector<Live> live;
  Outcome out;
  uint32_t next_handle = 0;
  for (int step = 0; step < 512 && !in.exhausted(); ++step) {
    if (live.empty() || in.below(3) != 0) {
      const Kind kind = static_cast<Kind>(in.below(3));
      const Order order{static_cast<uint8_t>(in.below(t.machine.max_order + 1))};
      std::optional<Pfn> at;
      if (in.below(4) == 0) at = Pfn{(in.below(t.machine.pages) >> order.value) << order.value};
      const HandleId h{next_handle++};
      a.alloc(h, kind, order, at, out);
      if (out.ok) {
        const uint64_t pfn = raw(out.pfn), n = raw(order.pages());
        if (pfn % n || pfn + n > t.machine.pages) finding("misaligned block", pfn, n);
        if (at && raw(*at) != pfn) finding("alloc at= returned another block", raw(*at), pfn);
        for (uint64_t f = pfn; f < pfn + n; ++f) {
          if (!free_frame[f]) finding("allocated a frame that was not free", f, pfn);
          free_frame[f] = 0;
        }
        free_count -= n;
        live.push_back({h, pfn, n});
      } else if (!at) {
        // Legality of a failure is the model's business (fuzz_lockstep); here only the
        // plain case: on an empty machine a movable block no larger than a pageblock
        // always exists.
        if (free_count == t.machine.pages && order.value <= t.machine.pageblock_order && kind == Kind::movable)
          finding("alloc failed on an empty machine", order.value, 0);
      }
    } else {
      const size_t i = in.below(live.size());
      a.free(live[i].h, out);
      if (!out.ok) finding("free failed", live[i].pfn, 0);
      for (uint64_t f = live[i].pfn; f < live[i].pfn + live[i].pages; ++f) free_frame[f] = 1;
      free_count += live[i].pages;
      live[i] = live.back();
      live.pop_back();
    }
    // Pages on the CPUs' page lists (Q5) are free but not counted in free_pages().
    if (a.free_pages() + a.free_pcp_pages() != free_count)
      finding("free count differs from the plain set", a.free_pages() + a.free_pcp_pages(), free_count);
    if (auto v = a.check_invariants(impl::CheckTier::full)) {
      std::fprintf(stderr, "%s: %s\n", v->rule.c_str(), v->message.c_str());
      std::abort();
    }
  }
  return 0;
}
