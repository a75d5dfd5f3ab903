// The lockstep checker: runs a trace on impl/ and model/ side by side, compares their
// observations after every operation, checks impl's invariants (cheap tier every
// operation, full tier every `full_every`), and the trace's own expectations.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "impl/allocator.h"
#include "impl/faults.h"
#include "trace/handles.h"
#include "trace/outcome.h"
#include "trace/trace.h"

namespace cmacheck::model {
class Model;
}

namespace cmacheck {

struct RunOptions {
  bool lockstep = true;          // false: impl only (`replay --impl-only`)
  impl::FaultSet faults;         // injected impl faults
  uint32_t full_every = 64;      // full-tier checks every N operations (and at the end)
  // The model's from-scratch self-check (Model::self_check): every N operations (0: never
  // during the run) and at the end. It re-derives every table of the model, about as costly
  // as a short run; the fuzz target spaces it out (docs/performance.md).
  uint32_t self_check_every = 64;
  bool self_check_at_end = true;
  bool cheap_checks = true;      // cheap-tier invariants after every operation
  bool check_expectations = true;
  // Runs every trace under this kernel profile instead of its own `profile=` (and makes
  // generated traces, fuzz inputs among them, that profile's).
  std::optional<Profile> profile;
};

enum class RunStatus { ok, violation, malformed };

// What stopped a run, with everything a failure report needs.
struct Finding {
  Violation violation;
  size_t statement = 0;  // index into Trace::statements
  std::string report;    // the readable report: rule, statement, observations, picture
};

// What the lockstep check compares after every operation (K1): the first difference of
// impl's observation from the model's, in words, or "" when they agree; `where` points the
// frame picture at it.
std::string observation_difference(const Observation& impl, const Observation& model, const Trace& t,
                                   std::optional<Pfn>& where);

// One run of one trace, statement by statement.
class Session {
 public:
  Session(const Trace& trace, const RunOptions& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Executes statement `index` of the trace. Returns false when the run must stop: a
  // finding (status violation) or a malformed statement (status malformed).
  bool step(size_t index);
  // Executes an operation that is not (yet) in the trace, as the generator does: it is
  // appended to the trace first.
  bool step_op(const Op& op);
  // Final full-tier check.
  bool finish();
  // Makes this session's state (allocator, model, live handles, operations run) a copy of
  // `other`'s, which runs the same header (its kernel profile too: the state's meaning is the
  // profile's) with the same options, and clears any finding:
  // `cmacheck explore` tries each operation from a saved state. Reuses this session's memory.
  void restore(const Session& other);

  RunStatus status() const { return status_; }
  const std::optional<Finding>& finding() const { return finding_; }
  const std::string& malformed_message() const { return malformed_; }
  uint32_t malformed_line() const { return malformed_line_; }
  const Outcome& last_outcome() const { return impl_out_; }
  const HandleTable& handles() const { return handles_; }
  const impl::Allocator& impl() const { return *impl_; }
  model::Model* model_for_tests() { return model_.get(); }
  const model::Model* model() const { return model_.get(); }
  const Trace& trace() const { return trace_; }
  Trace& mutable_trace() { return trace_; }
  uint64_t ops_run() const { return ops_run_; }

 private:
  bool run_op(const Statement& st, size_t index);
  bool run_expect(const Statement& st, size_t index);
  bool fail(Violation v, size_t index, const Observation* impl_obs = nullptr, const Observation* model_obs = nullptr);
  void collect_touched(const Op& op, const Outcome& out, std::vector<HandleId>& hs) const;
  void observe_model(const Outcome& mine, const std::vector<HandleId>& hs, bool all, Observation& obs) const;

  Trace trace_;
  RunOptions options_;
  std::unique_ptr<impl::Allocator> impl_;
  std::unique_ptr<model::Model> model_;
  HandleTable handles_;
  Outcome impl_out_, model_out_;
  Observation impl_obs_, model_obs_;
  std::vector<HandleId> touched_;
  impl::Allocator::Snapshot before_;  // the state before a full-tier operation (I10)
  RunStatus status_ = RunStatus::ok;
  std::optional<Finding> finding_;
  std::string malformed_;
  uint32_t malformed_line_ = 0;
  uint64_t ops_run_ = 0;
};

struct RunResult {
  RunStatus status = RunStatus::ok;
  std::optional<Finding> finding;
  std::string malformed;  // message when malformed
  uint32_t malformed_line = 0;
  uint64_t ops = 0;
};

// Runs a whole trace. With `log`, prints each statement and its outcome.
RunResult run_trace(const Trace& trace, const RunOptions& options, std::ostream* log = nullptr);

// A picture of the frames around `center`, one character per frame (see check/picture.cpp).
std::string frame_picture_impl(const impl::Allocator& a, Pfn center, uint64_t radius = 64);
std::string frame_picture_model(const model::Model& m, uint64_t machine_pages, uint8_t pageblock_order, Pfn center,
                                uint64_t radius = 64);
std::string picture_legend();
// The picture's character for a frame of impl/ (the model has its own frame_char).
char role_char(impl::FrameRole r);

}  // namespace cmacheck
