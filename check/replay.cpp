#include "check/replay.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <span>

#include "check/concurrent.h"
#include "check/decode.h"
#include "trace/parse.h"
#include "trace/print.h"

namespace cmacheck {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "Permission denied" -> "permission denied", as in the rest of our messages.
std::string reason(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

// Files under a directory that are not inputs: documentation, libFuzzer's per-target
// configuration, and hidden files (editor and VCS droppings).
bool is_input_name(const fs::path& p, InputKind kind) {
  const std::string name = p.filename().string();
  if (name.empty() || name[0] == '.') return false;
  if (ends_with(name, ".trace")) return true;
  if (kind == InputKind::traces) return false;
  return !ends_with(name, ".md") && !ends_with(name, ".options") && !ends_with(name, ".dict");
}

// Appends the inputs under `dir`; false with `why` when the walk fails part-way.
bool walk(const fs::path& dir, InputKind kind, std::vector<std::string>& found, std::string& why) {
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    const std::string name = p.filename().string();
    std::error_code tec;
    if (it->is_directory(tec)) {
      if (!name.empty() && name[0] == '.') it.disable_recursion_pending();
      continue;
    }
    if (is_input_name(p, kind)) found.push_back(p.string());
  }
  if (ec) {
    why = reason(ec.message());
    return false;
  }
  return true;
}

}  // namespace

bool read_input_file(const std::string& path, std::string& bytes, std::string& why) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    why = ec && ec != std::errc::no_such_file_or_directory ? reason(ec.message()) : "no such file or directory";
    return false;
  }
  if (fs::is_directory(st)) {
    why = "is a directory";
    return false;
  }
  // std::ifstream "opens" a directory or a FIFO on Linux and fails (or blocks) only when read.
  if (!fs::is_regular_file(st)) {
    why = "not a regular file";
    return false;
  }
  try {
    errno = 0;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      why = errno ? reason(std::strerror(errno)) : "cannot open";
      return false;
    }
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) {
      why = "read error";
      return false;
    }
  } catch (const std::exception& e) {  // libstdc++'s filebuf throws on a read error
    why = reason(e.what());
    return false;
  }
  return true;
}

bool is_directory_path(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

bool expand_inputs(const std::vector<std::string>& paths, InputKind kind, std::vector<std::string>& files,
                   std::ostream& err) {
  bool ok = true;
  for (const std::string& path : paths) {
    if (!is_directory_path(path)) {
      files.push_back(path);
      continue;
    }
    std::vector<std::string> found;
    std::string why;
    if (!walk(path, kind, found, why)) {
      err << path << ": error: cannot list the directory: " << why << "\n";
      ok = false;
      continue;
    }
    if (found.empty()) {
      err << path << ": error: no " << (kind == InputKind::traces ? "*.trace file" : "trace or fuzz input")
          << " under this directory\n";
      ok = false;
      continue;
    }
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return ok;
}

bool load_trace(const std::string& path, const RunOptions& run, Trace& out, std::ostream& err) {
  std::string bytes, why;
  if (!read_input_file(path, bytes, why)) {
    err << path << ": error: " << why << "\n";
    return false;
  }
  if (ends_with(path, ".trace")) {
    ParseResult p = parse_trace(bytes);
    if (!p.ok()) {
      err << p.error->format(path) << "\n";
      return false;
    }
    out = std::move(p.trace);
    if (run.profile) out.machine.profile = *run.profile;
    return true;
  }
  // A fuzz input: every byte string decodes to a valid trace (trace-format.md).
  out = decode_bytes(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), run);
  return true;
}

int replay_files(const std::vector<std::string>& files, const ReplayOptions& options, std::ostream& out,
                 std::ostream& err, ReplayCounts* counts) {
  ReplayCounts n;
  for (const std::string& path : files) {
    Trace t;
    if (!load_trace(path, options.run, t, err)) {
      ++n.malformed;
      continue;
    }
    if (!options.quiet) out << "== " << path << "\n";
    RunResult r;
    bool inconclusive = false;
    if (t.concurrent()) {  // docs/concurrency.md: the concurrent engine, the trace's own schedule
      ConcurrentOptions c;
      c.faults = options.run.faults;
      c.profile = options.run.profile;
      c.lockstep = options.run.lockstep;
      c.want_table = !options.quiet;
      const ConcurrentResult cr = run_concurrent(t, c);
      r.status = cr.status;
      r.finding = cr.finding;
      r.malformed = cr.malformed;
      r.malformed_line = cr.malformed_line;
      r.ops = cr.ops;
      if (!options.quiet && cr.status == RunStatus::ok) out << cr.table;
      if (!options.quiet)
        for (const std::string& note : cr.audit_notes) out << path << ": audit: the commit order departed: " << note << "\n";
      inconclusive = cr.inconclusive;
      if (cr.inconclusive && !options.quiet) out << path << ": model comparison inconclusive: " << cr.inconclusive_reason << "\n";
    } else {
      r = run_trace(t, options.run, options.quiet ? nullptr : &out);
    }
    if (r.status == RunStatus::malformed) {
      err << path << ":" << r.malformed_line << ": error: " << r.malformed << "\n";
      ++n.malformed;
    } else if (r.status == RunStatus::violation) {
      out << path << ": " << r.finding->report;
      ++n.failed;
    } else {
      // An inconclusive run passed impl's checks only: the model comparison stopped where the
      // concurrent engine met interference it cannot state yet (docs/concurrency.md).
      ++n.passed;
      n.inconclusive += inconclusive;
      if (!options.quiet)
        out << path << ": ok (" << r.ops << " operations"
            << (!options.run.lockstep ? ", impl only"
                : inconclusive      ? ", impl's checks held; model comparison inconclusive"
                                    : ", impl and model in lockstep")
            << ")\n";
    }
  }
  if (files.size() > 1) {
    out << "replay: " << files.size() << " inputs: " << n.passed << " passed";
    if (n.inconclusive) out << " (" << n.inconclusive << " with the model comparison inconclusive)";
    out << ", " << n.failed << " failed, " << n.malformed << " malformed\n";
  }
  if (counts) *counts = n;
  return n.malformed ? 2 : n.failed ? 1 : 0;
}

}  // namespace cmacheck
