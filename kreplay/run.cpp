// Running the plan on the kernel (kernel/run.sh) and the whole `cmacheck kreplay FILE`.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include "check/replay.h"
#include "kreplay/kreplay.h"
#include "trace/parse.h"

#ifndef CMACHECK_SOURCE_DIR
#define CMACHECK_SOURCE_DIR "."
#endif

namespace cmacheck::kreplay {

namespace {

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

bool read_file(const std::string& path, std::string& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return true;
}

int shell(const std::string& cmd) {
  const int s = std::system(cmd.c_str());
  if (s == -1) return -1;
  return WIFEXITED(s) ? WEXITSTATUS(s) : 128 + (WIFSIGNALED(s) ? WTERMSIG(s) : 0);
}

}  // namespace

std::string default_kernel_dir() {
  if (const char* d = std::getenv("CMACHECK_KERNEL_DIR"); d && *d) return d;
  return std::string(CMACHECK_SOURCE_DIR) + "/kernel";
}

bool known_kernel(std::string_view version) {
  for (std::string_view k : kKernels)
    if (k == version) return true;
  return false;
}

std::optional<std::string> kernel_for_profile(std::string_view profile) {
  if (profile.empty()) return std::string();
  constexpr std::string_view kLinux = "linux-";
  if (profile.substr(0, kLinux.size()) == kLinux && known_kernel(profile.substr(kLinux.size())))
    return std::string(profile.substr(kLinux.size()));
  return std::nullopt;
}

uint64_t node_zone_start(std::string_view kernel) {
  // Measured (`node nid=1` with numa=fake=2U on -m 512M): 6.12 leaves pfn 0 out of memblock,
  // so numa=fake's uniform split ends node 0 one frame later.
  return kernel == "6.12" ? kNodeStartPfn + 1 : kNodeStartPfn;
}

bool kernel_built(const std::string& kernel_dir, const std::string& kernel, const std::string& fault) {
  return shell("bash " + shell_quote(kernel_dir + "/build.sh") + " --kernel " + shell_quote(kernel) +
               (fault.empty() ? std::string() : " --fault " + shell_quote(fault)) + " --check >/dev/null 2>&1") == 0;
}

bool run_kernel(const Plan& plan, const RunKernelOptions& o, KernelRun& run, std::string& error) {
  namespace fs = std::filesystem;
  std::string dir;
  if (!o.keep_dir.empty()) {
    std::error_code ec;
    fs::create_directories(o.keep_dir, ec);
    dir = o.keep_dir;
  } else {
    char tmpl[] = "/tmp/kreplay-XXXXXX";
    if (!mkdtemp(tmpl)) {
      error = "cannot create a temporary directory";
      return false;
    }
    dir = tmpl;
  }
  const std::string script = dir + "/script.kr";
  {
    std::ofstream f(script);
    f << plan.script;
    if (!f) {
      error = "cannot write " + script;
      return false;
    }
  }
  const std::string fault = o.fault.empty() ? std::string() : " --fault " + shell_quote(o.fault);
  if (o.build && shell("bash " + shell_quote(o.kernel_dir + "/build.sh") + " --kernel " + shell_quote(plan.kernel) +
                       fault + " -q >&2") != 0) {
    error = "kernel/build.sh --kernel " + plan.kernel + fault + " failed";
    return false;
  }
  const std::string cmd = "bash " + shell_quote(o.kernel_dir + "/run.sh") + " " + shell_quote(script) +
                          " --kernel " + shell_quote(plan.kernel) + fault + " --no-build --cma " + plan.cma_arg() + " --mem " + plan.mem_arg() +
                          (plan.append.empty() ? std::string() : " --append " + shell_quote(plan.append)) + " --timeout " +
                          std::to_string(o.timeout_s) + " --console " + shell_quote(dir + "/console.log") + " > " +
                          shell_quote(dir + "/results.txt") + " 2> " + shell_quote(dir + "/stderr.txt");
  run.status = shell(cmd);
  if (run.status < 0) {
    error = "cannot run kernel/run.sh";
    return false;
  }
  read_file(dir + "/results.txt", run.out);
  read_file(dir + "/stderr.txt", run.err);
  read_file(dir + "/console.log", run.console);
  if (o.keep_dir.empty()) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  return true;
}

int kreplay_file(const std::string& path, const FileOptions& o, std::ostream& out, std::ostream& err) {
  std::string text, why;
  if (!read_input_file(path, text, why)) {
    err << path << ": error: " << why << "\n";
    return kNotCheckable;
  }
  ParseResult parsed = parse_trace(text);
  if (!parsed.ok()) {
    err << parsed.error->format(path) << "\n";
    return kNotCheckable;
  }
  if (parsed.trace.concurrent()) {
    err << path << ":1: error: kreplay runs sequential traces; a concurrent trace (cpus > 1) runs with "
        << "`cmacheck replay` (docs/concurrency.md)\n";
    return kNotCheckable;
  }
  PlanResult pr = make_plan(parsed.trace, text, o.plan);
  if (!pr.plan) {
    err << path << ":" << pr.problem->line << ": error: " << pr.problem->message << "\n";
    return kNotCheckable;
  }
  const Plan& plan = *pr.plan;
  if (o.script_only) {
    out << "# " << path << ": kernel/run.sh SCRIPT --kernel " << plan.kernel << " --cma " << plan.cma_arg()
        << " --mem " << plan.mem_arg() << (plan.append.empty() ? "" : " --append '" + plan.append + "'") << "\n"
        << plan.script;
    return kAgree;
  }
  Predictions pred = predict(plan.trace);
  if (!pred.complete) {
    if (pred.malformed) {
      err << path << ":" << pred.line << ": error: " << pred.message << "\n";
      return kNotCheckable;
    }
    out << path << ": the trace fails `cmacheck replay` (impl/ and model/ disagree, or an invariant broke), so the "
        << "model has no prediction to compare with the kernel:\n"
        << pred.message;
    return kDisagree;
  }
  KernelRun run;
  if (!o.results_file.empty()) {
    std::string why;
    if (!read_input_file(o.results_file, run.out, why)) {
      err << o.results_file << ": error: " << why << "\n";
      return kNotCheckable;
    }
  } else {
    if (!o.run.build && !kernel_built(o.run.kernel_dir, plan.kernel, o.run.fault)) {
      const char* req = std::getenv("CMACHECK_KERNEL_REQUIRED");
      const bool skip = o.skip_if_unbuilt && !(req && std::string(req) == "1");
      err << "kreplay: the Linux " << plan.kernel << " build is missing or out of date (" << o.run.kernel_dir
          << "/build.sh --kernel " << plan.kernel << " --check): run `make kernel KERNEL=" << plan.kernel
          << "` (or pass --build)" << (skip ? "; skipped" : "") << "\n";
      return skip ? kSkip : kInconclusive;
    }
    std::string error;
    if (!run_kernel(plan, o.run, run, error)) {
      err << "kreplay: " << error << "\n";
      return kInconclusive;
    }
  }
  return compare(plan, pred, run, path, o.compare, out);
}

}  // namespace cmacheck::kreplay
