// `cmacheck replay` as a library function, so that the CLI stays thin and tests call it.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "check/runner.h"

namespace cmacheck {

struct ReplayOptions {
  RunOptions run;
  bool quiet = false;
};

// Loads a file as the trace format says: `.trace` is text, anything else a fuzz input to
// decode. On failure returns false and writes "FILE:LINE: error: ..." to `err`.
bool load_trace(const std::string& path, const impl::FaultSet& faults, Trace& out, std::ostream& err);

// Replays each file; exit status 0 (all held), 1 (a violation), 2 (unreadable/malformed).
int replay_files(const std::vector<std::string>& files, const ReplayOptions& options, std::ostream& out,
                 std::ostream& err);

}  // namespace cmacheck
