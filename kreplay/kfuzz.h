// cmacheck kfuzz: generated traces run on the real kernel by the hundred per boot, every
// result compared with the model, every disagreement shrunk with the kernel as the oracle
// (docs/kernel-crosscheck.md, "kfuzz").
//
//   generate_trace  a random trace restricted to what kreplay maps onto the kernel: one
//                   area at a geometry the kernel places, cma_alloc of any count and
//                   alignment, releases by handle and by frames (valid and invalid), holds
//                   (alloc at= + pin) inside and outside the area and their drops (unpin),
//                   expectations of used/maxchunk. Its own generator (not trace/generate.cpp,
//                   whose decoding is pinned): the same seed gives the same trace.
//   run_boot        many traces in one qemu boot: each trace's kreplay script, then `reset`
//                   (everything given back, the area checked empty); the result lines are
//                   split per trace and compared with the model as kreplay compares them.
//   shrink_on_kernel  delta debugging with the kernel as the oracle, candidates batched
//                   into boots.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "kreplay/kreplay.h"
#include "trace/trace.h"

namespace cmacheck::kfuzz {

// The guest of every kfuzz boot: qemu -m 256M, the trace's machine the same 65536 frames.
inline constexpr uint64_t kGuestMiB = 256;
inline constexpr uint64_t kMachinePages = kGuestMiB * 256;
// Where an area may lie: above the kernel image and its early allocations (16M to about
// 27M) and below the initramfs and the kernel's late pages at the top (measured: nothing of
// the kernel's between 32M and 246M after boot, `busy`). Holds outside the area stay there.
inline constexpr uint64_t kLowPfn = 32 * 256;
inline constexpr uint64_t kHighPfn = 240 * 256;
inline constexpr uint64_t kPageblock = 512;
// The model's prediction of a generated trace: full-tier invariants every 64 operations and
// at the end (kreplay's single traces: every operation). The lockstep comparison of impl/
// and model/ and the cheap tier still run after every operation.
inline constexpr uint32_t kPredictFullEvery = 64;
// A busy window makes cma_alloc retry from j + mask + 1 (rule A4): a window of C pages over
// a held frame costs up to C >> align retries, each an alloc_contig_range of the window
// (isolation, draining) -- seconds of TCG time for a large C. While a hold lies in the area
// the generator keeps C >> align at most this.
inline constexpr uint64_t kMaxBusyRetries = 128;

// One area per boot: `cma=SIZE@BASE` with BASE's alignment exactly 2^align_order frames
// (2 MiB to 64 MiB: order 9 to 14) and SIZE from 4 MiB up, in 2 MiB steps.
struct Geometry {
  uint64_t base = 0;   // first frame
  uint64_t pages = 0;  // frames
  friend bool operator==(const Geometry&, const Geometry&) = default;
};
Geometry random_geometry(uint64_t seed);
std::string describe(const Geometry& g);  // "cma=24M@66M (base 16896, aligned to 2M)"

// A seed for a (boot, trace) pair of a campaign: SplitMix64 of the campaign seed and both
// indices, so a finding names its boot and trace and regenerates alone.
uint64_t derive_seed(uint64_t seed, uint64_t boot, uint64_t trace);

struct GenerateOptions {
  size_t max_statements = 48;  // operations and expects, at least 1
  // The profile of the kernel the traces run on (`machine ... profile=`): the model steps
  // under it while generating, and kreplay refuses a trace whose profile is another kernel's.
  Profile profile = Profile::linux_6_1;
};
// The profile of a kernel kfuzz boots: "6.1" -> linux-6.1, "6.12" -> linux-6.12.
Profile profile_of_kernel(std::string_view kernel);
Trace generate_trace(uint64_t seed, const Geometry& g, const GenerateOptions& o = {});

// Where a boot runs.
struct BootOptions {
  std::string kernel = std::string(kreplay::kDefaultKernel);
  std::string fault;       // kernel/faults/NAME.patch: the patched build (run.sh --fault)
  std::string kernel_dir;  // the repository's kernel/
  unsigned timeout_s = 0;  // 0: 120 s + 1 s per 20 statements
  std::string keep_dir;    // keep the batch script, result lines, console here
};

// What one trace of a boot came to.
struct TraceOutcome {
  enum class Verdict { agree, disagree, not_run, inconclusive, refused };
  Verdict verdict = Verdict::not_run;
  size_t statements = 0;             // statements compared (0 unless the trace ran)
  std::vector<std::string> differences;  // kreplay's DISAGREE lines, without the prefix
  std::string report;                // kreplay's comparison (quiet: differences only)
  std::string signature;             // what differs first: "frame", "bitmap", "used", ..., "crash", "clean-up"
};

struct BootOutcome {
  std::vector<TraceOutcome> traces;
  double seconds = 0;  // wall time of the qemu run
  int run_status = 0;  // run.sh's
  std::string error;   // run.sh could not be started, or the boot failed before any trace
  bool placed = true;  // the kernel placed the area where asked
};

// Runs `traces` (all with area `g`) in one boot, in order. A trace whose clean-up fails,
// or that crashes the kernel, ends the boot: the traces after it are not run.
BootOutcome run_boot(const Geometry& g, const std::vector<Trace>& traces, const BootOptions& o);

// The signature of a comparison: the kind of its first difference (the DISAGREE text up to
// its first ':'), the one "the same way" means when shrinking.
std::string signature_of(const std::vector<std::string>& differences);

struct ShrinkStats {
  size_t boots = 0, candidates = 0, rounds = 0;
  double seconds = 0;
};
// Shrinks `failing` (which disagrees with signature `sig` on the kernel) to a trace that
// still disagrees the same way and from which no single removal or simplification keeps it.
// Candidates of one round run in one boot. `progress(statements)` after each round.
Trace shrink_on_kernel(const Trace& failing, const Geometry& g, const std::string& sig, const BootOptions& o,
                       ShrinkStats& stats, const std::function<void(size_t)>& progress = {});

// The whole command.
struct CampaignOptions {
  double seconds = 60;
  uint64_t seed = 1;
  unsigned jobs = 1;
  size_t statements_per_boot = 800;  // traces are added to a boot until it has this many
  bool keep_going = false;           // go on after a boot with a disagreement
  bool shrink = true;
  size_t shrink_max = 0;             // shrink the first N kinds of difference only (0: every kind)
  std::string found_dir;             // where found-*.trace go ("" : none written)
  BootOptions boot;
  bool progress = false;             // a progress line on stderr (a terminal)
};
struct CampaignResult {
  size_t boots = 0, traces = 0, statements = 0, disagreeing_traces = 0;
  double seconds = 0;             // the campaign (boots) only
  double first_finding_s = -1;    // wall time until the boot that found the first disagreement ended
  std::vector<std::string> found_files;
  int status = 0;                 // 0 nothing found, 1 a disagreement, 3 inconclusive (no boot ran)
};
CampaignResult run_campaign(const CampaignOptions& o, std::ostream& out, std::ostream& err);

}  // namespace cmacheck::kfuzz
