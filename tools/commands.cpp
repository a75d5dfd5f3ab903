#include "tools/commands.h"

#include "trace/parse.h"

#include <unistd.h>

#include <filesystem>
#include <iostream>

namespace cmacheck::cli {

namespace fs = std::filesystem;

std::vector<Registered>& registry() {
  static std::vector<Registered> commands;
  return commands;
}

Registration::Registration(AddCommand add, int rank) { registry().push_back({add, rank}); }

int usage_error(const std::string& message) {
  std::cerr << "cmacheck: error: " << message << "\n";
  return kBadInput;
}

CLI::Option* add_fault_option(CLI::App& cmd, std::vector<impl::Fault>& faults, bool allow_none) {
  const CLI::Validator known(
      [allow_none](std::string& name) -> std::string {
        const auto f = impl::fault_by_name(name);
        if (!f || (!allow_none && *f == impl::Fault::none))
          return "unknown fault '" + name + "' (see `cmacheck faults`)";
        return "";
      },
      "", "FAULT");
  return cmd
      .add_option_function<std::vector<std::string>>(
          "--fault",
          [&faults](const std::vector<std::string>& names) {
            for (const auto& n : names) faults.push_back(*impl::fault_by_name(n));
          },
          "inject an impl fault (repeatable; see `cmacheck faults`)")
      ->type_name("NAME")
      ->allow_extra_args(false)
      ->check(known);
}

impl::FaultSet fault_set(const std::vector<impl::Fault>& faults) {
  impl::FaultSet s;
  for (impl::Fault f : faults) s.add(f);
  return s;
}

CLI::Option* add_profile_option(CLI::App& cmd, std::optional<Profile>& profile) {
  return cmd
      .add_option_function<std::string>(
          "--profile", [&profile](const std::string& v) { profile = profile_by_name(v); },
          "kernel profile: linux-6.1 or linux-6.12 (replaces a trace's own profile=)")
      ->type_name("PROFILE")
      ->check(CLI::IsMember({name(Profile::linux_6_1), name(Profile::linux_6_12)}));
}

CLI::Option* add_seed_option(CLI::App& cmd, uint64_t& seed) {
  return cmd.add_option("--seed", seed, "seed (decimal or 0x hex); the same seed gives the same output")
      ->type_name("N")
      ->capture_default_str();
}

CLI::Option* add_jobs_option(CLI::App& cmd, unsigned& jobs, const std::string& long_name) {
  return cmd.add_option("-j," + long_name, jobs, "worker threads (0: all cores); results do not depend on it")
      ->type_name("N")
      ->check(CLI::Validator(CLI::Range(0u, 1024u)).description(""));
}

const CLI::Validator kOutputFile(
    [](std::string& path) -> std::string {
      std::error_code ec;
      if (fs::is_directory(path, ec)) return "is a directory: " + path;
      const fs::path parent = fs::path(path).parent_path();
      if (!parent.empty() && !fs::is_directory(parent, ec)) return "no such directory: " + parent.string();
      return "";
    },
    "", "OUTPUT_FILE");

const CLI::Validator kOutputDir(
    [](std::string& path) -> std::string {
      // The directory is created with its parents: the nearest existing one must be a directory.
      std::error_code ec;
      for (fs::path p = path; !p.empty(); p = p.parent_path()) {
        if (fs::exists(p, ec)) return fs::is_directory(p, ec) ? "" : "not a directory: " + p.string();
        if (ec && ec != std::errc::no_such_file_or_directory) return ec.message() + ": " + p.string();
        if (p == p.parent_path()) break;
      }
      return "";
    },
    "", "OUTPUT_DIR");

const CLI::Validator kExecutable(
    [](std::string& path) -> std::string {
      std::error_code ec;
      if (!fs::exists(path, ec)) return "no such file: " + path;
      if (!fs::is_regular_file(path, ec)) return "not a regular file: " + path;
      if (access(path.c_str(), X_OK) != 0) return "not executable: " + path;
      return "";
    },
    "", "EXECUTABLE");

CLI::Option* add_input_paths(CLI::App& cmd, std::vector<std::string>& paths, const std::string& what) {
  return cmd.add_option("FILE", paths, what)->type_name("")->required();
}

}  // namespace cmacheck::cli
