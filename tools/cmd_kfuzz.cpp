// `cmacheck kfuzz`: generated traces on the real kernel, hundreds per qemu boot, every
// result compared with the model, every disagreement shrunk on the kernel and written as a
// kernel trace (kreplay/kfuzz.h, docs/kernel-crosscheck.md).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "kreplay/kfuzz.h"
#include "tools/commands.h"

namespace cmacheck::cli {
namespace {

struct KfuzzArgs {
  kfuzz::CampaignOptions campaign;
  std::string found_dir;
  bool no_found = false;
  bool skip_if_unbuilt = false;
  bool expect_disagreement = false;
  int progress = -1;  // -1: when stderr is a terminal
};

// The fault names kernel/faults/*.patch (for the error message and --help).
bool known_fault(const std::string& kernel_dir, const std::string& name) {
  std::error_code ec;
  return std::filesystem::is_regular_file(kernel_dir + "/faults/" + name + ".patch", ec);
}

int run(KfuzzArgs& a) {
  kfuzz::CampaignOptions& o = a.campaign;
  if (o.boot.kernel_dir.empty()) o.boot.kernel_dir = kreplay::default_kernel_dir();
  if (!o.boot.fault.empty() && !known_fault(o.boot.kernel_dir, o.boot.fault))
    return usage_error("kfuzz: no kernel fault '" + o.boot.fault + "' (" + o.boot.kernel_dir + "/faults/NAME.patch)");
  if (o.jobs == 0) o.jobs = std::max(1u, std::thread::hardware_concurrency());
  o.progress = a.progress < 0 ? isatty(2) != 0 : a.progress != 0;
  // Findings on the stock kernel are kernel traces of the corpus (corpus/kernel/found-*.trace);
  // on a kernel fault they are the fault's evidence, not the corpus's.
  if (!a.no_found)
    o.found_dir = !a.found_dir.empty()     ? a.found_dir
                  : o.boot.fault.empty() ? (std::filesystem::path(o.boot.kernel_dir).parent_path() / "corpus" / "kernel").string()
                                         : "kfuzz-found/" + o.boot.fault;
  if (a.skip_if_unbuilt && !kreplay::kernel_built(o.boot.kernel_dir, o.boot.kernel, o.boot.fault)) {
    const char* req = std::getenv("CMACHECK_KERNEL_REQUIRED");
    if (!(req && std::string(req) == "1")) {
      std::cerr << "kfuzz: Linux " << o.boot.kernel << (o.boot.fault.empty() ? "" : " with " + o.boot.fault)
                << " is not built; skipped\n";
      return kreplay::kSkip;
    }
  }
  const kfuzz::CampaignResult r = kfuzz::run_campaign(o, std::cout, std::cerr);
  if (a.expect_disagreement && r.status != 3) {
    // The kernel-zoo test: a kernel fault must be found within the time given.
    std::cout << (r.status == 1 ? "kfuzz: found, as expected\n" : "kfuzz: FAILED: the kernel fault was not found\n");
    return r.status == 1 ? 0 : 1;
  }
  return r.status;
}

Command add(CLI::App& parent) {
  CLI::App* cmd = parent.add_subcommand(
      "kfuzz", "fuzz the real kernel's CMA against the model: generated traces on Linux under qemu, hundreds per boot");
  auto a = std::make_shared<KfuzzArgs>();
  if (const char* k = std::getenv("CMACHECK_KERNEL"); k && *k) a->campaign.boot.kernel = k;
  cmd->add_option("--seconds", a->campaign.seconds, "start no boot after SEC seconds")
      ->type_name("SEC")
      ->check(CLI::Range(1.0, 7 * 86400.0))
      ->capture_default_str();
  add_seed_option(*cmd, a->campaign.seed);
  cmd->add_option("-j,--jobs", a->campaign.jobs, "qemu instances at once (0: one per core); the traces do not depend on it")
      ->type_name("N")
      ->check(CLI::Range(0u, 64u))
      ->capture_default_str();
  cmd->add_option("--kernel,--profile", a->campaign.boot.kernel,
                  "the kernel to boot (default: $CMACHECK_KERNEL, else 6.1); `make kernel KERNEL=V` builds it")
      ->type_name("6.1|6.12")
      ->transform(CLI::Transformer({{"linux-6.1", "6.1"}, {"linux-6.12", "6.12"}}))
      ->check(CLI::IsMember({"6.1", "6.12"}));
  cmd->add_option("--kernel-fault", a->campaign.boot.fault,
                  "boot the kernel with kernel/faults/NAME.patch applied (`make kernel KERNEL_FAULT=NAME` builds it)")
      ->type_name("NAME");
  cmd->add_option("--statements-per-boot", a->campaign.statements_per_boot, "traces are added to a boot until it has N statements")
      ->type_name("N")
      ->check(CLI::Range(size_t{1}, size_t{100000}))
      ->capture_default_str();
  cmd->add_flag("--keep-going", a->campaign.keep_going, "go on after a boot with a disagreement (default: stop there)");
  cmd->add_flag("!--no-shrink", a->campaign.shrink, "report disagreements as found, without shrinking them");
  cmd->add_option("--shrink-max", a->campaign.shrink_max,
                  "shrink the first N kinds of difference found (the first difference's kind: frame, bitmap, ...); "
                  "0: every kind")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--found-dir", a->found_dir,
                  "write found-*.trace here (default: corpus/kernel/ on the stock kernel, kfuzz-found/NAME/ with "
                  "--kernel-fault)")
      ->type_name("DIR")
      ->check(kOutputDir);
  cmd->add_flag("--no-found", a->no_found, "write no found-*.trace (print them only)");
  cmd->add_option("--keep", a->campaign.boot.keep_dir, "keep each boot's script, result lines and console in DIR/boot-N")
      ->type_name("DIR")
      ->check(kOutputDir);
  cmd->add_option("--kernel-dir", a->campaign.boot.kernel_dir, "kernel/ of the repository (default: this source tree's)")
      ->type_name("DIR")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--progress", a->progress, "a progress line on stderr: 1 or 0 (default: when stderr is a terminal)")
      ->type_name("0|1")
      ->check(CLI::Range(0, 1));
  cmd->add_flag("--expect-disagreement", a->expect_disagreement,
                "exit 0 when a disagreement is found, 1 when none is (the kernel-zoo test)");
  cmd->add_flag("--skip-if-unbuilt", a->skip_if_unbuilt,
                "exit 77 when the kernel is not built (unless CMACHECK_KERNEL_REQUIRED=1)");
  cmd->footer(
      "Each boot places one CMA area at a random geometry (base aligned to 2M..64M, size 4M..64M) and runs\n"
      "generated traces on it one after the other; between two traces everything is given back and the area\n"
      "checked empty. Every statement is compared with the model as `cmacheck kreplay` compares it. A\n"
      "disagreement is shrunk with the kernel as the oracle and written as found-*.trace.\n"
      "exit status: 0 nothing found, 1 a disagreement, 2 bad usage, 3 no kernel build or no boot ran");
  return {cmd, [a] { return run(*a); }};
}

const Registration kKfuzz{add, 75};

}  // namespace
}  // namespace cmacheck::cli
