// Fuzz inputs as traces: the generator, driven by the input's bytes, emits operations one
// at a time while a Session runs them, so that each operation names only live handles.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "check/runner.h"
#include "trace/generate.h"

namespace cmacheck {

inline constexpr size_t kMaxDecodedOps = 4096;

// Generates and runs a trace from `choices`. The Session holds the trace (with every
// operation run so far) and the result; the run stops at the first finding.
std::unique_ptr<Session> generate_and_run(ChoiceSource& choices, const RunOptions& options,
                                          const GeneratorLimits& limits = {}, size_t max_ops = kMaxDecodedOps);

// Decodes fuzz bytes into the trace they stand for (the trace replays to the same outcome).
Trace decode_bytes(std::span<const uint8_t> bytes, const RunOptions& options);

// Runs fuzz bytes in lockstep; the result of the run.
RunResult run_bytes(std::span<const uint8_t> bytes, const RunOptions& options, Trace* trace_out = nullptr);

}  // namespace cmacheck
