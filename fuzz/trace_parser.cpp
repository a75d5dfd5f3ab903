// fuzz_trace_parser: arbitrary text -> parse. Must never crash; what parses must print and
// re-parse to the same trace, and printing must be a fixed point (canonical form).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "trace/parse.h"
#include "trace/print.h"

using namespace cmacheck;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ParseResult r = parse_trace(text);
  if (!r.ok()) {
    if (r.error->message.empty() || r.error->line == 0) {
      std::fprintf(stderr, "parse error without a message or line\n");
      std::abort();
    }
    return 0;
  }
  const std::string printed = print_trace(r.trace);
  ParseResult again = parse_trace(printed);
  if (!again.ok() || !(again.trace == r.trace) || print_trace(again.trace) != printed) {
    std::fprintf(stderr, "round trip failed:\n%s\n%s\n", printed.c_str(),
                 again.ok() ? "(parsed to a different trace)" : again.error->message.c_str());
    std::abort();
  }
  return 0;
}
