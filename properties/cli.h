// The command line of properties_test besides gtest's own: run one property with a
// structured result (the zoo's property engine), list the registry, write or check the
// generated tables of docs/properties.md.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace cmacheck::props {

// Whether the arguments (without argv[0]) are this command line's rather than gtest's.
bool is_cli(const std::vector<std::string>& args);
// Runs it: 0 passed / up to date, 1 a property failed / the doc is out of date, 2 bad input.
int properties_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace cmacheck::props
