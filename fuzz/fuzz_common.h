// Shared by the fuzz targets: faults from the environment (CMACHECK_FAULT=NAME[,NAME]),
// so that the canary and the zoo run the same binaries with an injected fault.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "impl/faults.h"
#include "trace/parse.h"

namespace cmacheck::fuzz {

inline impl::FaultSet faults_from_env() {
  impl::FaultSet set;
  const char* env = std::getenv("CMACHECK_FAULT");
  if (!env || !*env) return set;
  std::string s(env);
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    std::string name = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (auto f = impl::fault_by_name(name))
      set.add(*f);
    else {
      std::fprintf(stderr, "CMACHECK_FAULT: unknown fault '%s'\n", name.c_str());
      std::exit(2);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return set;
}

// CMACHECK_PROFILE=linux-6.1|linux-6.12: every input decodes to a trace of that kernel
// profile (without it each input picks its own).
inline std::optional<Profile> profile_from_env() {
  const char* env = std::getenv("CMACHECK_PROFILE");
  if (!env || !*env) return std::nullopt;
  auto p = profile_by_name(env);
  if (!p) {
    std::fprintf(stderr, "CMACHECK_PROFILE: unknown profile '%s' (linux-6.1 or linux-6.12)\n", env);
    std::exit(2);
  }
  return p;
}

}  // namespace cmacheck::fuzz
