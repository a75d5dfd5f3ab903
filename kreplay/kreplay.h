// cmacheck kreplay: replays a trace on Linux 6.1 or 6.12 under qemu (kernel/run.sh) and
// compares every result with the model's prediction (docs/kernel-crosscheck.md).
//
// Four stages, each a function so that tests can drive them without qemu:
//   make_plan     trace + `#kernel:` directives -> a command script for kernel/krdrive
//                 (kernel/README.md), or the first statement that is not kernel-checkable;
//   predict       the trace through check::Session in lockstep: what the model says after
//                 every statement (impl/ and model/ agree on all of it, or replay fails);
//   run_kernel    one qemu run of the script (kernel/run.sh);
//   compare       kernel result lines against the predictions, statement by statement.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trace/outcome.h"
#include "trace/trace.h"

namespace cmacheck::kreplay {

// Exit statuses of `cmacheck kreplay`.
enum Status : int {
  kAgree = 0,         // every result as the model predicts
  kDisagree = 1,      // a result differs (or the kernel crashed, or the trace's own expectation is wrong)
  kNotCheckable = 2,  // malformed, not kernel-checkable, or the kernel would not place the area
  kInconclusive = 3,  // the kernel run could not be made or did not set up what a directive asked
};

// The guest kernel's fixed geometry (kernel/cmacheck.config; the boot line reports it).
inline constexpr uint8_t kKernelPageblockOrder = 9;
inline constexpr uint8_t kKernelMaxOrder = 10;
inline constexpr uint64_t kMinGuestMiB = 64;  // smallest guest the kernel and initramfs boot in

// The kernels kreplay can boot (kernel/build.sh --kernel V builds build/kernel-V/).
inline constexpr std::string_view kKernels[] = {"6.1", "6.12"};
inline constexpr std::string_view kDefaultKernel = "6.1";
bool known_kernel(std::string_view version);
// The kernel a trace profile names: "linux-6.1" -> "6.1", "linux-6.12" -> "6.12"; "" (a
// profile-neutral trace, which runs on every kernel) -> ""; anything else -> nullopt.
// The one place where a trace's `machine ... profile=` will choose the kernel.
std::optional<std::string> kernel_for_profile(std::string_view profile);

// The node mapping (docs/kernel-crosscheck.md): a trace with alloc_contig, free_contig or
// unmovable/reclaimable blocks runs in the second node of a guest split in two emulated
// NUMA nodes (qemu -m 512M, numa=fake=2U): node 1 is one DMA32 zone from Z to 131040 that
// only the module allocates from, Z = node_zone_start(kernel) (65536 on 6.1.192, 65537 on
// 6.12.118, whose memblock starts at pfn 1). Trace frame P is guest frame offset + P, the
// offset chosen by node_offset(): a pageblock boundary past the kernel's own per-node pages
// that is a candidate of alloc_contig_pages for every count C of the trace, i.e. congruent
// to ALIGN(Z, C) = (Z + C - 1) & ~(C - 1) modulo C (the kernel's power-of-two ALIGN, also
// for C not a power of two). From there on the kernel's candidates are the model's 0, C,
// 2C, ... (rule C1); the node's other frames are fenced off (held) so no other succeeds.
inline constexpr uint64_t kNodeId = 1;
inline constexpr uint64_t kNodeStartPfn = 65536;     // 256 MiB: where node 1 begins
inline constexpr uint64_t kNodeEndPfn = 131040;      // qemu -m 512M: RAM ends 128 KiB below 512 MiB
inline constexpr uint64_t kNodeGuestMiB = 512;
inline constexpr uint64_t kNodeKernelPages = 2048;  // the kernel's per-node pages: 65536-65719 (6.1), 66560-66798 (6.12)
inline constexpr uint64_t kNodeTopPages = 1024;     // the node's top: its memmap and other boot reservations
uint64_t node_zone_start(std::string_view kernel);
// ALIGN(x, a) as the kernel's macro computes it: (x + a - 1) & ~(a - 1).
constexpr uint64_t kernel_align(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

// A `#kernel: VERB [ID] ARGS` line: kernel-only actions with no exact trace statement.
// The trace parser sees a comment, so the file stays a valid trace for `cmacheck replay`.
struct Directive {
  enum class Verb { pressure, pressure_check, pressure_stop, pin, pin_check, unpin, drain };
  Verb verb = Verb::drain;
  uint32_t line = 0;
  std::string id;           // the agent's name (own namespace, not a trace handle)
  uint64_t pages = 0;       // pressure pages=N / pin pages=N
  uint64_t free_pages = 0;  // pressure free=SIZE (in pages)
  uint64_t min_in_cma = 0;  // pressure: at least this many pages must land in the area
  uint64_t min_moved = 0;   // pressure_check: at least this many pages must have moved since the last report
  std::string text;         // the line as written, without "#kernel:"
};

// Why a trace cannot be checked on the kernel (exit status 2).
struct Problem {
  uint32_t line = 0;  // 0: the file as a whole
  std::string message;
};

// What one step of the plan is: a trace statement (or the start), or a directive.
enum class StepKind {
  start,            // the state before the first statement
  cma_alloc,        // cma_alloc ID ...
  cma_release,      // cma_release ID
  cma_release_pfn,  // cma_release area= pfn= count= (the driver's checked form)
  hold,             // alloc ID kind=movable at=PFN, pinned by the next statement
  pin_of_hold,      // that pin: part of the hold
  drop,             // unpin of a held block
  block,            // alloc ID kind=unmovable|reclaimable at=PFN (node mapping): a hold of that type
  block_free,       // free ID of such a block: drop
  buddy,            // alloc ID kind=unmovable|reclaimable [order=K] without at= (node mapping): the node's buddy allocator
  buddy_free,       // free ID of such a block: __free_pages
  contig,           // alloc_contig ID count=C (node mapping): alloc_contig_pages on the node
  free_contig,      // free_contig ID: free_contig_range
  expect,           // expect NAME.used= / NAME.maxchunk= / ID.pfn=
  directive,        // #kernel: ...
};

struct Step {
  StepKind kind = StepKind::start;
  uint32_t line = 0;            // source line (0 for the start)
  size_t statement = SIZE_MAX;  // index into Trace::statements
  size_t directive = SIZE_MAX;  // index into Plan::directives
  std::string command;          // the kernel command ("" when none)
  uint32_t command_line = 0;    // its line in the script (0: none)
  uint32_t stats_line = 0;      // line of the `stats` that follows it (0: none)
  std::vector<uint32_t> relabel_lines;  // node mapping: `relabel` commands that reproduce a claim (set-up)
  uint32_t labels_line = 0;     // node mapping: line of the `labels` that follows it
  uint32_t busy_line = 0;       // node mapping: line of the `busy` that follows it
  uint32_t hold_line = 0;       // pin_of_hold / drop: source line of the hold
};

struct Plan {
  Trace trace;
  std::vector<Directive> directives;
  std::vector<Step> steps;  // in source order; steps[0] is the start
  std::string script;       // the command script for kernel/krdrive
  bool has_area = false;    // the trace declares an area (always, outside the node mapping)
  Pfn base{};               // the area's first frame in the trace
  PageCount pages{};
  bool node = false;        // the node mapping: trace frame P is guest frame offset + P
  uint64_t offset = 0;      // guest frame - trace frame (0 outside the node mapping)
  uint32_t setup_line = 0;  // node mapping: the script line of `node_setup`
  bool scrub = false;       // node mapping: node_setup takes the node's free scraps too (buddy allocations)
  uint64_t zone_start = 0;  // node mapping: the node's zone start the plan expects
  uint64_t mem_mib = 0;         // guest memory
  std::string append;           // extra kernel arguments (numa=fake= for the node mapping)
  std::string kernel;           // the kernel to boot: "6.1" or "6.12"
  std::string cma_arg() const;  // SIZE@BASE for run.sh --cma (guest frames), or "none"
  std::string mem_arg() const;  // for run.sh --mem
};

struct PlanOptions {
  uint64_t mem_mib = 0;  // 0: the trace's machine size rounded up to MiB (at least kMinGuestMiB)
  std::string kernel;    // "6.1" / "6.12"; "": the trace profile's kernel, else kDefaultKernel
  // The profile the model predicts with; default: the booted kernel's. Another one shows a
  // profile difference as the disagreement it is on the other kernel.
  std::optional<Profile> model_profile;
};

struct PlanResult {
  std::optional<Plan> plan;
  std::optional<Problem> problem;
};

// Checks that every statement and directive is kernel-checkable and writes the script.
// `text` is the trace's source (for the directives, which the parser drops as comments).
PlanResult make_plan(const Trace& trace, std::string_view text, const PlanOptions& options = {});

// Parses the `#kernel:` lines of a trace's source.
std::optional<Problem> parse_directives(std::string_view text, std::vector<Directive>& out);

// The model's prediction after one statement (or at the start).
struct Prediction {
  bool ran = false;
  bool ok = false;  // operations
  Pfn pfn{};        // operations that succeeded
  FailReason reason = FailReason::none;
  AreaStats stats;
  std::vector<uint64_t> set_bits;  // bit indices, ascending (rule I5 from the live cma allocations)
  std::string labels;              // one letter per pageblock (U M R C I), from impl/
  uint64_t free = 0;               // free frames of the machine
  uint64_t free_cma = 0;
  std::vector<uint64_t> expect_values;  // expect statements: the value of each item
};

struct Predictions {
  Prediction start;
  std::vector<Prediction> after;  // by statement index
  // When the lockstep run stops (a violation between impl/ and model/, or a malformed
  // statement), predictions stop; the trace does not pass `cmacheck replay`.
  bool complete = true;
  bool malformed = false;
  uint32_t line = 0;
  std::string message;
};

// `full_every`: the lockstep run's full-tier checks every N operations (kreplay: 1, every
// operation; kfuzz, which predicts hundreds of generated traces per boot, spaces them out:
// the cheap tier still runs after every operation and the full tier at the end).
Predictions predict(const Trace& trace, uint32_t full_every = 1);

// Rule K2 for a block the kernel's free lists chose (node mapping, `alloc` without at=):
// whether the model accepts `pfn` as the result of statement `index` (an alloc) from the
// state the trace's statements before it leave. nullopt: legal; else the model's reason.
// The kernel does not say which fallback blocks its lists offered (B4 step 4), so the
// block is legal when the model accepts it with impl's fallback heads, with the kernel's
// block as the last of them (the one taken), or as the only one.
std::optional<std::string> k2_illegal(const Trace& trace, size_t index, Pfn pfn);

// One `KR <line> <verb> <status> [key=value ...]` line of kernel/run.sh's output.
struct ResultLine {
  uint32_t line = 0;
  std::string verb, status;
  std::map<std::string, std::string> fields;
  std::string rest;  // everything after the status (free text for `err`)
  std::string raw;
  std::optional<uint64_t> number(const std::string& key) const;
};

struct KernelResults {
  std::optional<ResultLine> boot;
  std::vector<ResultLine> areas;
  std::map<uint32_t, ResultLine> by_line;  // by script line
  bool ended = false;                      // the `end ok` line was seen
};
KernelResults parse_results(std::string_view text);

// "a-b,c" runs (kernel/README.md): the numbers, in order; nullopt when malformed.
std::optional<std::vector<uint64_t>> parse_runs(std::string_view s);
std::string format_runs(const std::vector<uint64_t>& v);

// One qemu run: run.sh's stdout, stderr, exit status, and the console log.
struct KernelRun {
  std::string out, err, console;
  int status = 0;
};

struct RunKernelOptions {
  std::string kernel_dir;  // the repository's kernel/ (run.sh, build.sh)
  unsigned timeout_s = 120;
  bool build = false;    // run kernel/build.sh first (builds the kernel when missing)
  std::string keep_dir;  // keep script, results, console, stderr here
  std::string fault;     // boot the build with kernel/faults/FAULT.patch (run.sh --fault)
};

// Whether the cached build of `kernel` ("6.1", "6.12") is present and up to date
// (kernel/build.sh --kernel V --check).
bool kernel_built(const std::string& kernel_dir, const std::string& kernel, const std::string& fault = "");
std::string default_kernel_dir();

// Runs the plan's script; returns false (with `error`) when run.sh could not be started.
bool run_kernel(const Plan& plan, const RunKernelOptions& options, KernelRun& run, std::string& error);

struct CompareOptions {
  bool quiet = false;  // print only disagreements, problems and the summary
};

// Compares, prints the side-by-side report, returns the exit status.
int compare(const Plan& plan, const Predictions& predictions, const KernelRun& run, const std::string& name,
            const CompareOptions& options, std::ostream& out);

// The whole command for one file.
struct FileOptions {
  PlanOptions plan;
  RunKernelOptions run;
  CompareOptions compare;
  bool script_only = false;  // print the script and run.sh arguments, run nothing
  std::string results_file;  // use these result lines instead of running qemu
  // Exit kSkip instead of kInconclusive when the kernel is not built, unless the
  // environment says CMACHECK_KERNEL_REQUIRED=1 (`make kernel-check` does).
  bool skip_if_unbuilt = false;
};
inline constexpr int kSkip = 77;  // ctest SKIP_RETURN_CODE
int kreplay_file(const std::string& path, const FileOptions& options, std::ostream& out, std::ostream& err);

}  // namespace cmacheck::kreplay
