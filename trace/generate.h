// One generator of operation sequences, shared by fuzzing, properties and replay. Every
// decision is drawn from a ChoiceSource, so fuzz bytes, RapidCheck and a seeded PRNG all
// drive the same code, and mutations or shrinking act on meaningful decisions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "trace/trace.h"

namespace cmacheck {

// The version of the generator: what a fuzz input's bytes mean (kGeneratorVersion in
// generate.cpp, beside the code it versions). A change to the generator that decodes some
// byte string differently (a new operation, a new choice, another order of choices) bumps
// it; tests/decode_pin_test.cpp pins the decoding of a few inputs and fails until it is
// bumped and the pins re-recorded. Committed fuzz inputs keep working as seeds whatever the
// version; the regression artefact of a finding is its decoded `.trace`, which names the
// version it was decoded with (docs/fuzzing.md).
uint32_t generator_version();

struct ChoiceSource {
  virtual ~ChoiceSource() = default;
  virtual uint64_t below(uint64_t bound) = 0;  // uniform in [0, bound); 0 when exhausted
  virtual bool exhausted() const = 0;
};

// libFuzzer bytes as choices: each choice takes as many bytes as its bound needs; when the
// bytes run out every choice is 0 and the trace ends cleanly. Every byte string decodes.
class ByteChoices final : public ChoiceSource {
 public:
  explicit ByteChoices(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  uint64_t below(uint64_t bound) override;
  bool exhausted() const override { return pos_ >= bytes_.size(); }

 private:
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
};

// A seeded PRNG (SplitMix64), for plain random traces, the zoo and the simulator.
class SeededChoices final : public ChoiceSource {
 public:
  explicit SeededChoices(uint64_t seed, uint64_t budget = UINT64_MAX) : state_(seed), budget_(budget) {}
  uint64_t below(uint64_t bound) override;
  bool exhausted() const override { return budget_ == 0; }
  uint64_t next();

 private:
  uint64_t state_;
  uint64_t budget_;
};

// The operation kinds a swarm can weight.
enum class OpKind : uint8_t {
  alloc_movable, alloc_unmovable, alloc_reclaimable, alloc_at, free, pin, pin_longterm, unpin,
  migrate, cma_alloc, cma_release, cma_release_raw, alloc_contig, free_contig, alloc_in_cma, touch, lru_drain, pcp_drain, count_
};
inline constexpr size_t kOpKinds = static_cast<size_t>(OpKind::count_);
const char* name(OpKind k);

// Swarm testing (Groce et al.): each input picks a random subset and weighting of the
// operation kinds, so inputs that omit `free` or `pin` reach states the full mix never does.
struct Swarm {
  std::array<uint8_t, kOpKinds> weight{};
  uint32_t total = 0;
  bool enabled(OpKind k) const { return weight[static_cast<size_t>(k)] != 0; }
};

// What the generator needs to know about the run: which handles are live.
struct LiveHandles {
  virtual ~LiveHandles() = default;
  virtual size_t count(Family f) const = 0;
  virtual HandleId at(Family f, size_t i) const = 0;
  // Pfn and count of a live cma allocation, to build valid and invalid raw releases.
  virtual FrameRange cma_range(HandleId h) const = 0;
};

struct GeneratorLimits {
  // The kernel profile of every generated trace; without one each trace picks its own, as a
  // swarm choice (linux-6.1 or linux-6.12).
  std::optional<Profile> profile;
  // The page lists' high mark (pcp=, Q1-Q5) of every generated trace, 0 for none; without
  // one each trace draws its own (version 4). The draw is made either way, so that a byte
  // string decodes to the same operations.
  std::optional<uint16_t> pcp_high;
  uint64_t min_pages = 64, max_pages = 4096;
  uint8_t min_pageblock_order = 2, max_pageblock_order = 5;
  uint8_t max_areas = 3;
  uint8_t max_order_per_bit = 2;
};

class Generator {
 public:
  Generator(ChoiceSource& in, GeneratorLimits limits = {}) : in_(in), limits_(limits) {}
  // The first choices: a small world (header) and the swarm.
  Trace header();
  const Swarm& swarm() const { return swarm_; }
  // The next operation, choosing only among live handles so that the trace is never
  // malformed. Fresh handle names are interned into `t`.
  Op next(Trace& t, const LiveHandles& live);

 private:
  uint64_t small(uint64_t max);  // biased towards small values, in [1, max]
  HandleId fresh(Trace& t, char prefix);
  ChoiceSource& in_;
  GeneratorLimits limits_;
  Swarm swarm_;
  uint32_t names_ = 0;
};

}  // namespace cmacheck
