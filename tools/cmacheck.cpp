// cmacheck: the command line. Thin: every subcommand calls a library function.
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "check/decode.h"
#include "check/replay.h"
#include "check/shrink.h"
#include "impl/faults.h"
#include "trace/print.h"
#include "tools/commands.h"

using namespace cmacheck;

namespace {

const char* const kUsage =
    "usage: cmacheck COMMAND [OPTIONS] [FILE...]\n"
    "\n"
    "cmacheck checks a reference CMA allocator (impl/) against an executable model of the\n"
    "Linux CMA semantics (model/), operation by operation.\n"
    "\n"
    "commands:\n"
    "  replay FILE...   run traces (or fuzz inputs) on impl and model in lockstep\n"
    "  decode FILE      print the trace a fuzz input stands for\n"
    "  shrink FILE      delta-debug a failing trace to NAME.min.trace\n"
    "  faults           list the injectable impl faults (the bug zoo)\n";

const char* const kUsageTail =
    "  help [COMMAND]   this text, or a command's options\n"
    "\n"
    "exit status: 0 everything held, 1 a violation or failed expectation, 2 bad input\n";

void print_usage(std::ostream& os) {
  os << kUsage;
  for (const auto& c : cli::registry()) {
    std::string line = "  ";
    line += c.name;
    line.resize(19, ' ');
    os << line << c.summary << "\n";
  }
  os << kUsageTail;
}

const cli::Command* find_command(const std::string& name) {
  for (const auto& c : cli::registry())
    if (name == c.name) return &c;
  return nullptr;
}

const char* const kReplayUsage =
    "usage: cmacheck replay [OPTIONS] FILE...\n"
    "  A FILE ending in .trace is a trace; any other file is a fuzz input, decoded first.\n"
    "  -q, --quiet           print only failures\n"
    "  --impl-only           run impl/ alone (no model), checking invariants and expectations\n"
    "  --fault NAME          inject an impl fault (repeatable; see `cmacheck faults`)\n"
    "  --full-every N        full-tier invariant checks every N operations (default 64; 1 = always)\n"
    "  --expect-violation    exit 0 if a violation was found and 1 if not (for fault tests)\n";

int usage_error(const std::string& msg) {
  std::cerr << "cmacheck: " << msg << "\n";
  print_usage(std::cerr);
  return 2;
}

// Options shared by replay, decode and shrink.
struct Common {
  ReplayOptions replay;
  bool expect_violation = false;
  std::vector<std::string> files;
  std::string error;
};

bool parse_common(int argc, char** argv, int first, Common& c) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "-q" || a == "--quiet") {
      c.replay.quiet = true;
    } else if (a == "--impl-only") {
      c.replay.run.lockstep = false;
    } else if (a == "--fault") {
      const char* v = value();
      auto f = v ? impl::fault_by_name(v) : std::nullopt;
      if (!f) {
        c.error = std::string("unknown fault '") + (v ? v : "") + "' (see `cmacheck faults`)";
        return false;
      }
      c.replay.run.faults.add(*f);
    } else if (a == "--full-every") {
      const char* v = value();
      if (!v || std::atoi(v) < 1) {
        c.error = "--full-every needs a positive number";
        return false;
      }
      c.replay.run.full_every = static_cast<uint32_t>(std::atoi(v));
    } else if (a == "--expect-violation") {
      c.expect_violation = true;
    } else if (!a.empty() && a[0] == '-') {
      c.error = "unknown option '" + a + "'";
      return false;
    } else {
      c.files.push_back(a);
    }
  }
  return true;
}

int cmd_replay(int argc, char** argv) {
  Common c;
  if (!parse_common(argc, argv, 2, c)) return usage_error(c.error);
  if (c.files.empty()) return usage_error("replay needs at least one FILE");
  int status = replay_files(c.files, c.replay, std::cout, std::cerr);
  if (c.expect_violation) {
    if (status == 1) return 0;
    if (status == 0) std::cerr << "cmacheck: expected a violation, but everything held\n";
    return status == 0 ? 1 : status;
  }
  return status;
}

int cmd_decode(int argc, char** argv) {
  Common c;
  if (!parse_common(argc, argv, 2, c)) return usage_error(c.error);
  if (c.files.size() != 1) return usage_error("decode takes one FILE");
  Trace t;
  if (!load_trace(c.files[0], c.replay.run.faults, t, std::cerr)) return 2;
  std::cout << "# decoded from " << c.files[0] << "\n" << print_trace(t);
  return 0;
}

int cmd_shrink(int argc, char** argv) {
  Common c;
  if (!parse_common(argc, argv, 2, c)) return usage_error(c.error);
  if (c.files.size() != 1) return usage_error("shrink takes one FILE");
  Trace t;
  if (!load_trace(c.files[0], c.replay.run.faults, t, std::cerr)) return 2;
  ShrinkResult r = shrink_trace(t, c.replay.run, [](size_t n) { std::cerr << "shrink: " << n << " statements\r" << std::flush; });
  std::cerr << "\n";
  if (!r.failed) {
    std::cerr << "cmacheck: " << c.files[0] << " does not fail; nothing to shrink\n";
    return 1;
  }
  std::string out = c.files[0];
  if (out.size() > 6 && out.compare(out.size() - 6, 6, ".trace") == 0) out.resize(out.size() - 6);
  out += ".min.trace";
  std::ofstream f(out);
  f << "# shrunk from " << c.files[0] << " (" << t.statements.size() << " -> " << r.trace.statements.size()
    << " statements, " << r.runs << " runs); violates " << r.rule << "\n"
    << print_trace(r.trace);
  if (!f) {
    std::cerr << "cmacheck: cannot write " << out << "\n";
    return 2;
  }
  std::cout << "wrote " << out << " (" << r.trace.statements.size() << " statements, violates " << r.rule << ")\n";
  std::cout << "reproduce: cmacheck replay";
  for (const auto& fi : impl::all_faults())
    if (c.replay.run.faults.on(fi.fault)) std::cout << " --fault " << fi.name;
  std::cout << " " << out << "\n";
  return 0;
}

int cmd_faults(int, char**) {
  for (const auto& f : impl::all_faults()) {
    std::cout << f.name << "\n  origin:   " << f.origin << "\n  does:     " << f.description
              << "\n  caught by: " << f.caught_by << "\n  reproducer: corpus/zoo/" << f.name << ".trace\n";
  }
  return 0;
}

}  // namespace

namespace cmacheck::cli {
std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}
}  // namespace cmacheck::cli

namespace {
void print_help(const std::string& cmd) {
  if (cmd == "replay" || cmd == "decode" || cmd == "shrink")
    std::cout << kReplayUsage;
  else if (const cli::Command* c = find_command(cmd))
    std::cout << c->usage;
  else
    print_usage(std::cout);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(std::cerr);
    return 2;
  }
  const std::string cmd = argv[1];
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    print_help(argc > 2 ? argv[2] : "");
    return 0;
  }
  for (int i = 2; i < argc; ++i)
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      print_help(cmd);
      return 0;
    }
  if (cmd == "replay") return cmd_replay(argc, argv);
  if (cmd == "decode") return cmd_decode(argc, argv);
  if (cmd == "shrink") return cmd_shrink(argc, argv);
  if (cmd == "faults") return cmd_faults(argc, argv);
  if (const cli::Command* c = find_command(cmd)) return c->run(argc, argv);
  return usage_error("unknown command '" + cmd + "'");
}
