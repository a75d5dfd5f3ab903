// Subcommands beyond replay/decode/shrink/faults register themselves here: each lives in
// its own tools/cmd_*.cpp with a static CommandRegistration, so that adding a command
// never touches the dispatcher.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace cmacheck::cli {

struct Command {
  const char* name;
  const char* summary;  // one line for `cmacheck --help`
  const char* usage;    // full text for `cmacheck COMMAND --help`
  int (*run)(int argc, char** argv);  // argv[1] is the command name
};

std::vector<Command>& registry();

struct CommandRegistration {
  explicit CommandRegistration(Command c) { registry().push_back(c); }
};

}  // namespace cmacheck::cli
