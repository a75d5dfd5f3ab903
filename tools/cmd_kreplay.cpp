// `cmacheck kreplay`: replay traces on Linux 6.1 or 6.12 under qemu and compare with the model
// (kreplay/kreplay.h, docs/kernel-crosscheck.md).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "kreplay/kreplay.h"
#include "tools/commands.h"

namespace {

const char* const kUsage =
    "usage: cmacheck kreplay [OPTIONS] FILE.trace...\n"
    "  Runs each trace on Linux 6.1 or 6.12 under qemu (kernel/run.sh) and on the model, and compares\n"
    "  every result: frames inside the area, success/failure, used, maxchunk and the bitmap.\n"
    "  The trace's one area `base=B pages=N` becomes the kernel's cma=N@B (the same pfns);\n"
    "  `#kernel:` comment lines drive kernel-only agents (docs/kernel-crosscheck.md).\n"
    "  -q, --quiet              print only disagreements and the summary\n"
    "  --kernel 6.1|6.12        the kernel to boot (default: $CMACHECK_KERNEL, else the trace's profile,\n"
    "                           else 6.1); `make kernel KERNEL=V` builds it\n"
    "  --mem SIZE               guest memory in MiB (`256` or `256M`; default: the machine, at least 64M)\n"
    "  --timeout SEC            kill the guest after SEC seconds (default 120)\n"
    "  --build                  build the kernel first if missing (kernel/build.sh; minutes)\n"
    "  --kernel-dir DIR         kernel/ of the repository (default: this source tree's)\n"
    "  --script                 print the command script and run.sh arguments; run nothing\n"
    "  --results FILE           compare with these result lines instead of running qemu\n"
    "  --keep DIR               keep the script, result lines, console and stderr in DIR\n"
    "  --expect-disagreement    exit 0 if the kernel disagrees, 1 if it agrees (for tests)\n"
    "  --skip-if-unbuilt        exit 77 when the kernel is not built (unless CMACHECK_KERNEL_REQUIRED=1)\n"
    "exit status: 0 agree, 1 disagree, 2 malformed or not kernel-checkable (names the statement),\n"
    "             3 inconclusive (no kernel build, qemu failed, a directive's set-up not reached)\n";

int usage_error(const std::string& msg) {
  std::cerr << "cmacheck kreplay: " << msg << "\n" << kUsage;
  return 2;
}

int run(int argc, char** argv) {
  using namespace cmacheck::kreplay;
  FileOptions o;
  o.run.kernel_dir = default_kernel_dir();
  if (const char* k = std::getenv("CMACHECK_KERNEL"); k && *k) o.plan.kernel = k;
  bool expect_disagreement = false;
  std::vector<std::string> files;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "-q" || a == "--quiet") {
      o.compare.quiet = true;
    } else if (a == "--mem") {
      const char* v = value();
      char* end = nullptr;
      const unsigned long long m = v ? std::strtoull(v, &end, 10) : 0;
      if (!v || m == 0 || (*end && std::strcmp(end, "M") != 0)) return usage_error("--mem needs a size in MiB");
      o.plan.mem_mib = m;
    } else if (a == "--kernel") {
      const char* v = value();
      if (!v || !known_kernel(v)) return usage_error("--kernel needs 6.1 or 6.12");
      o.plan.kernel = v;
    } else if (a == "--timeout") {
      const char* v = value();
      if (!v || std::atoi(v) < 1) return usage_error("--timeout needs a positive number of seconds");
      o.run.timeout_s = static_cast<unsigned>(std::atoi(v));
    } else if (a == "--build") {
      o.run.build = true;
    } else if (a == "--kernel-dir") {
      const char* v = value();
      if (!v) return usage_error("--kernel-dir needs a directory");
      o.run.kernel_dir = v;
    } else if (a == "--script") {
      o.script_only = true;
    } else if (a == "--results") {
      const char* v = value();
      if (!v) return usage_error("--results needs a file");
      o.results_file = v;
    } else if (a == "--keep") {
      const char* v = value();
      if (!v) return usage_error("--keep needs a directory");
      o.run.keep_dir = v;
    } else if (a == "--expect-disagreement") {
      expect_disagreement = true;
    } else if (a == "--skip-if-unbuilt") {
      o.skip_if_unbuilt = true;
    } else if (!a.empty() && a[0] == '-') {
      return usage_error("unknown option '" + a + "'");
    } else {
      files.push_back(a);
    }
  }
  if (files.empty()) return usage_error("kreplay needs at least one FILE");
  if (files.size() > 1 && (!o.results_file.empty() || !o.run.keep_dir.empty()))
    return usage_error("--results and --keep take one FILE");
  int status = kAgree;
  for (const std::string& f : files) {
    const int s = kreplay_file(f, o, std::cout, std::cerr);
    if (s == kSkip && files.size() == 1) return kSkip;
    // Several files: malformed over disagreement over inconclusive, as replay ranks them.
    auto rank = [](int x) { return x == kNotCheckable ? 3 : x == kDisagree ? 2 : x == kInconclusive ? 1 : 0; };
    if (s != kSkip && rank(s) > rank(status)) status = s;
  }
  if (expect_disagreement) {
    if (status == kDisagree) return 0;
    if (status == kAgree) std::cerr << "cmacheck kreplay: expected a disagreement, but the kernel agreed\n";
    return status == kAgree ? 1 : status;
  }
  return status;
}

const cmacheck::cli::CommandRegistration kRegistration{
    {"kreplay", "replay traces on Linux 6.1 or 6.12 under qemu and compare with the model", kUsage, run}};

}  // namespace
