// Parser of the trace format (trace-format.md). Every malformed case the format lists
// gives `FILE:LINE: error: ...`; nothing is executed before the whole text parsed.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "trace/trace.h"

namespace cmacheck {

struct ParseError {
  uint32_t line = 0;
  std::string message;
  // "FILE:LINE: error: MESSAGE", the form compilers use, so editors can jump to it.
  std::string format(std::string_view file) const;
};

struct ParseResult {
  Trace trace;
  std::optional<ParseError> error;
  bool ok() const { return !error; }
};

// Largest machine cmacheck accepts (2^26 pages = 256 GiB); larger headers are malformed
// rather than an out-of-memory crash.
inline constexpr uint64_t kMaxMachinePages = uint64_t{1} << 26;
inline constexpr uint8_t kMaxPageblockOrder = 20;
inline constexpr uint8_t kMaxMaxOrder = 26;
// Largest per-CPU list limit (`pcp=`): a few times the kernel's default high mark.
inline constexpr uint64_t kMaxPcpHigh = 4096;

ParseResult parse_trace(std::string_view text);

// `linux-6.1` or `linux-6.12` (the `profile=` key; also `--profile` of the command line).
std::optional<Profile> profile_by_name(std::string_view name);

// The statement of operation `op_index` (its index in Op) as docs/trace-format.md writes it,
// derived from its arguments: `cma_alloc ID area=NAME count=N [align=K]`.
std::string op_usage(size_t op_index);

// The trace format's lexical pieces, for tools that read trace-like text (kreplay's plan):
// a name is a letter then letters, digits or '_'; a number is decimal or 0x hex, and with
// `allow_size` a K/M/G suffix makes a size converted to 4 KiB pages. On error `why` says why.
bool is_handle_token(std::string_view s);
std::optional<uint64_t> parse_number(std::string_view s, bool allow_size, std::string& why);

// Reads a file; a file that cannot be read is reported as line 0.
ParseResult parse_trace_file(const std::string& path);

}  // namespace cmacheck
