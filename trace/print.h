// The canonical printer: its output parses back to an equal Trace (parse(print(t)) == t).
// Header keys are all written out; operation arguments equal to their default are omitted.
#pragma once

#include <string>

#include "trace/trace.h"

namespace cmacheck {

std::string print_trace(const Trace& t);
std::string print_header(const Trace& t);
std::string print_statement(const Trace& t, const Statement& s);
std::string print_op(const Trace& t, const Op& op);
// `switch T1 after T0.1:isolate` (docs/concurrency.md).
std::string print_switch(const Switch& sw);

}  // namespace cmacheck
