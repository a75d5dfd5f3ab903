#include "check/replay.h"

#include <ostream>

#include "trace/parse.h"
#include "trace/print.h"

namespace cmacheck {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

// Fuzz inputs are decoded by the generator (trace/generate.h); declared here to keep the
// dependency in one place.
bool decode_fuzz_file(const std::string& path, const impl::FaultSet& faults, Trace& out, std::string& error);

bool load_trace(const std::string& path, const impl::FaultSet& faults, Trace& out, std::ostream& err) {
  if (ends_with(path, ".trace")) {
    ParseResult p = parse_trace_file(path);
    if (!p.ok()) {
      err << p.error->format(path) << "\n";
      return false;
    }
    out = std::move(p.trace);
    return true;
  }
  std::string error;
  if (!decode_fuzz_file(path, faults, out, error)) {
    err << path << ":0: error: " << error << "\n";
    return false;
  }
  return true;
}

int replay_files(const std::vector<std::string>& files, const ReplayOptions& options, std::ostream& out,
                 std::ostream& err) {
  int status = 0;
  for (const std::string& path : files) {
    Trace t;
    if (!load_trace(path, options.run.faults, t, err)) {
      status = 2;
      continue;
    }
    if (!options.quiet) out << "== " << path << "\n";
    RunResult r = run_trace(t, options.run, options.quiet ? nullptr : &out);
    if (r.status == RunStatus::malformed) {
      err << path << ":" << r.malformed_line << ": error: " << r.malformed << "\n";
      status = 2;
    } else if (r.status == RunStatus::violation) {
      out << path << ": " << r.finding->report;
      if (status == 0) status = 1;
    } else if (!options.quiet) {
      out << path << ": ok (" << r.ops << " operations" << (options.run.lockstep ? ", impl and model in lockstep" : ", impl only")
          << ")\n";
    }
  }
  return status;
}

}  // namespace cmacheck
