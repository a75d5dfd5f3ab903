// The commands that arrive with later work (zoo, sim, kreplay) register here, so that the
// dispatcher in cmacheck.cpp stays one table.
#pragma once

#include <iosfwd>
#include <string>

#define COMMANDS_USAGE ""

// Runs `cmd` if it is one of these commands; false if unknown.
inline bool run_command(const std::string&, int, char**, int&) { return false; }
inline bool run_command_help(const std::string&, std::ostream&) { return false; }
