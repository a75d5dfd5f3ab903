#include "check/decode.h"

#include <memory>
#include <utility>

namespace cmacheck {

namespace {

class SessionHandles final : public LiveHandles {
 public:
  explicit SessionHandles(const Session& s) : s_(s) {}
  size_t count(Family f) const override { return s_.handles().live_count(f); }
  HandleId at(Family f, size_t i) const override { return s_.handles().live_list(f)[i]; }
  FrameRange cma_range(HandleId h) const override {
    const impl::Allocation* a = s_.impl().allocation(h);
    return a ? FrameRange{a->pfn, a->count} : FrameRange{};
  }

 private:
  const Session& s_;
};

}  // namespace

std::unique_ptr<Session> generate_and_run(ChoiceSource& choices, const RunOptions& options,
                                          const GeneratorLimits& limits, size_t max_ops) {
  GeneratorLimits l = limits;
  if (options.profile) l.profile = options.profile;
  Generator gen(choices, l);
  auto s = std::make_unique<Session>(gen.header(), options);
  SessionHandles live(*s);
  for (size_t i = 0; i < max_ops && !choices.exhausted(); ++i) {
    Op op = gen.next(s->mutable_trace(), live);
    if (!s->step_op(op)) return s;
  }
  s->finish();
  return s;
}

RunResult run_bytes(std::span<const uint8_t> bytes, const RunOptions& options, Trace* trace_out) {
  ByteChoices choices(bytes);
  std::unique_ptr<Session> s = generate_and_run(choices, options);
  RunResult r;
  r.status = s->status();
  r.finding = s->finding();
  r.malformed = s->malformed_message();
  r.malformed_line = s->malformed_line();
  r.ops = s->ops_run();
  if (trace_out) *trace_out = std::move(s->mutable_trace());  // the session ends here
  return r;
}

Trace decode_bytes(std::span<const uint8_t> bytes, const RunOptions& options) {
  Trace t;
  run_bytes(bytes, options, &t);
  return t;
}

}  // namespace cmacheck
