// `cmacheck kreplay`: replay traces on Linux 6.1 or 6.12 under qemu and compare with the model
// (kreplay/kreplay.h, docs/kernel-crosscheck.md).
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "check/replay.h"
#include "kreplay/kreplay.h"
#include "trace/parse.h"
#include "tools/commands.h"

namespace cmacheck::cli {
namespace {

struct KreplayArgs {
  kreplay::FileOptions file;
  std::vector<std::string> paths;
  std::string mem;
  bool expect_disagreement = false;
};

int run(KreplayArgs& a) {
  using namespace cmacheck::kreplay;
  FileOptions& o = a.file;
  if (!a.mem.empty()) o.plan.mem_mib = std::strtoull(a.mem.c_str(), nullptr, 10);  // checked when parsed
  std::vector<std::string> files;
  const bool listed = expand_inputs(a.paths, InputKind::traces, files, std::cerr);
  if (files.size() > 1 && (!o.results_file.empty() || !o.run.keep_dir.empty()))
    return usage_error("kreplay: --results and --keep take one FILE");
  int status = listed ? kAgree : kNotCheckable;
  for (const std::string& f : files) {
    const int s = kreplay_file(f, o, std::cout, std::cerr);
    if (s == kSkip && files.size() == 1 && listed) return kSkip;
    // Several files: malformed over disagreement over inconclusive, as replay ranks them.
    auto rank = [](int x) { return x == kNotCheckable ? 3 : x == kDisagree ? 2 : x == kInconclusive ? 1 : 0; };
    if (s != kSkip && rank(s) > rank(status)) status = s;
  }
  if (a.expect_disagreement) {
    if (status == kDisagree) return 0;
    if (status == kAgree) std::cerr << "cmacheck kreplay: expected a disagreement, but the kernel agreed\n";
    return status == kAgree ? 1 : status;
  }
  return status;
}

Command add(CLI::App& parent) {
  CLI::App* cmd =
      parent.add_subcommand("kreplay", "replay traces on Linux 6.1 or 6.12 under qemu and compare with the model");
  auto a = std::make_shared<KreplayArgs>();
  a->file.run.kernel_dir = kreplay::default_kernel_dir();
  if (const char* k = std::getenv("CMACHECK_KERNEL"); k && *k) a->file.plan.kernel = k;
  add_input_paths(*cmd, a->paths, "traces (a DIR stands for every *.trace under it, recursively, sorted)");
  cmd->add_flag("-q,--quiet", a->file.compare.quiet, "print only disagreements and the summary");
  const CLI::Validator mib(
      [](std::string& v) -> std::string {
        char* end = nullptr;
        const unsigned long long m = std::strtoull(v.c_str(), &end, 10);
        return end != v.c_str() && m > 0 && (*end == '\0' || std::string(end) == "M") ? "" : "needs a size in MiB";
      },
      "");
  cmd->add_option("--mem", a->mem, "guest memory in MiB (`256` or `256M`; default: the machine, at least 64M)")
      ->type_name("SIZE")
      ->check(mib);
  cmd->add_option("--kernel", a->file.plan.kernel,
                  "the kernel to boot (default: $CMACHECK_KERNEL, else the trace's profile, else 6.1); "
                  "`make kernel KERNEL=V` builds it")
      ->type_name("6.1|6.12")
      ->check(CLI::IsMember({"6.1", "6.12"}));
  cmd->add_option_function<std::string>(
         "--model-profile", [a](const std::string& v) { a->file.plan.model_profile = profile_by_name(v); },
         "predict with this profile instead of the booted kernel's (linux-6.1 or linux-6.12): a "
         "profile difference then shows as a disagreement")
      ->type_name("PROFILE")
      ->check(CLI::IsMember({name(Profile::linux_6_1), name(Profile::linux_6_12)}));
  cmd->add_option("--kernel-fault", a->file.run.fault,
                  "boot the kernel with kernel/faults/NAME.patch applied (`make kernel KERNEL_FAULT=NAME` builds it)")
      ->type_name("NAME");
  cmd->add_option("--timeout", a->file.run.timeout_s, "kill the guest after SEC seconds")
      ->type_name("SEC")
      ->check(CLI::Validator(CLI::Range(1u, 86400u)).description(""))
      ->capture_default_str();
  cmd->add_flag("--build", a->file.run.build, "build the kernel first if missing (kernel/build.sh; minutes)");
  cmd->add_option("--kernel-dir", a->file.run.kernel_dir, "kernel/ of the repository (default: this source tree's)")
      ->type_name("DIR")
      ->check(CLI::ExistingDirectory);
  cmd->add_flag("--script", a->file.script_only, "print the command script and run.sh arguments; run nothing");
  cmd->add_option("--results", a->file.results_file, "compare with these result lines instead of running qemu")
      ->type_name("FILE")
      ->check(CLI::ExistingFile);
  cmd->add_option("--keep", a->file.run.keep_dir, "keep the script, result lines, console and stderr in DIR")
      ->type_name("DIR")
      ->check(kOutputDir);
  cmd->add_flag("--expect-disagreement", a->expect_disagreement, "exit 0 if the kernel disagrees, 1 if it agrees (tests)");
  cmd->add_flag("--skip-if-unbuilt", a->file.skip_if_unbuilt,
                "exit 77 when the kernel is not built (unless CMACHECK_KERNEL_REQUIRED=1)");
  cmd->footer(
      "Runs each trace on Linux 6.1 or 6.12 under qemu (kernel/run.sh, one boot per trace) and on the model,\n"
      "and compares every result: frames inside the area, success/failure, used, maxchunk and the bitmap.\n"
      "The trace's one area `base=B pages=N` becomes the kernel's cma=N@B (the same pfns);\n"
      "`#kernel:` comment lines drive kernel-only agents (docs/kernel-crosscheck.md).\n"
      "exit status: 0 agree, 1 disagree, 2 unreadable, malformed or not kernel-checkable (names the\n"
      "statement), 3 inconclusive (no kernel build, qemu failed, a directive's set-up not reached);\n"
      "several traces: the worst (2 over 1 over 3)");
  return {cmd, [a] { return run(*a); }};
}

const Registration kKreplay{add, 70};

}  // namespace
}  // namespace cmacheck::cli
