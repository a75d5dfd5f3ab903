// `cmacheck replay` as a library function, so that the CLI stays thin and tests call it.
// Every file the command line reads goes through read_input_file: bad input gives
// "PATH: error: ..." and status 2, never an exception or a signal.
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

// Reads a whole regular file into `bytes`. A path that is missing, a directory, not a
// regular file, or unreadable gives false and `why` ("no such file or directory", "is a
// directory", "Permission denied", ...). Never throws.
bool read_input_file(const std::string& path, std::string& bytes, std::string& why);

// Which files a directory argument stands for.
enum class InputKind {
  traces_and_fuzz_inputs,  // `*.trace` and any other file (a fuzz input): replay, decode, shrink
  traces,                  // `*.trace` only: kreplay
};

// The rule for directories, documented in every command's --help: a directory stands for
// every input under it, recursively, in sorted order, except hidden files and directories
// (".name") and documentation or fuzzer configuration (`*.md`, `*.options`, `*.dict`).
inline constexpr const char* kDirectoryRule =
    "A DIR stands for every *.trace and fuzz input under it, recursively, in sorted order\n"
    "(hidden files and *.md, *.options, *.dict are skipped).\n";

// Expands command-line paths into input files: a path that is not a directory stays as it
// is (reading it reports any problem); a directory becomes its inputs. A directory that
// cannot be walked or holds no input gives "PATH: error: ..." on `err` and false (the
// other paths are still expanded).
bool expand_inputs(const std::vector<std::string>& paths, InputKind kind, std::vector<std::string>& files,
                   std::ostream& err);

// Whether a path names a directory (so that a command can treat directory arguments apart).
bool is_directory_path(const std::string& path);

// Loads a file as the trace format says: `.trace` is text, anything else a fuzz input to
// decode. On failure returns false and writes "FILE:LINE: error: ..." (a parse error) or
// "PATH: error: ..." (an unreadable file) to `err`.
bool load_trace(const std::string& path, const RunOptions& run, Trace& out, std::ostream& err);

// What replay_files counted.
struct ReplayCounts {
  size_t passed = 0, failed = 0, malformed = 0;  // malformed: unreadable or malformed
  size_t inconclusive = 0;  // of the passed: concurrent runs whose model comparison was inconclusive
};

// Replays each file; exit status 0 (all held), 1 (a violation), 2 (unreadable/malformed),
// the worst of all files. A concurrent trace whose model comparison was inconclusive passes
// (0): impl's checks held, and its last line says that the model comparison did not. Several
// files end with a summary line on `out`: "replay: N inputs: P passed, F failed, M malformed",
// with "P passed (I with the model comparison inconclusive)" when there are such runs.
int replay_files(const std::vector<std::string>& files, const ReplayOptions& options, std::ostream& out,
                 std::ostream& err, ReplayCounts* counts = nullptr);

}  // namespace cmacheck
