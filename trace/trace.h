// The trace language (docs/trace-format.md, version 1): the one language of a
// cmacheck run. Fuzz inputs decode into it, properties generate it, replay reads it,
// and every finding is printed in it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "trace/ops.h"
#include "trace/steps.h"
#include "trace/units.h"

namespace cmacheck {

struct MachineDecl {
  uint64_t pages = 0;
  uint8_t pageblock_order = 9;
  uint8_t max_order = 10;
  Profile profile = Profile::linux_6_1;  // a trace without `profile=` is a linux-6.1 trace
  uint8_t cpus = 1;  // logical CPUs (`cpus=N`, 1-4): a trace with more is a concurrent trace
  // Per-CPU page lists (`pcp=HIGH`, rules Q1-Q5): a CPU's lists are flushed to the buddy
  // allocator when a free brings them to HIGH pages or more. 0 (no `pcp=`): no per-CPU lists, every
  // free goes to the buddy allocator, as in every trace written before them.
  uint16_t pcp_high = 0;
  // `pcp_isolation=strict` (W4): the concurrent checker reports a contiguous allocation made
  // busy by a frame parked on a page list after its drain, which the kernel allows (weak).
  bool pcp_strict = false;
  PageCount pageblock_pages() const { return PageCount{uint64_t{1} << pageblock_order}; }
  friend bool operator==(const MachineDecl&, const MachineDecl&) = default;
};

struct AreaDecl {
  std::string name;
  Pfn base{};
  PageCount pages{};
  uint8_t order_per_bit = 0;
  FrameRange range() const { return {base, pages}; }
  friend bool operator==(const AreaDecl&, const AreaDecl&) = default;
};

// What an `expect` statement can read (rule M7), and a pageblock's label (M2), which rules
// B5, X5 and K3 change: `expect label@PFN=movable` names the pageblock holding frame PFN.
// `batched` counts the transient references every CPU's batches hold (rule E1); `free_pcp`
// the pages on every CPU's page lists (Q5).
enum class ExpectKey : uint8_t { free, free_cma, area_used, area_maxchunk, handle_pfn, pageblock_label, batched, free_pcp };
struct ExpectItem {
  ExpectKey key = ExpectKey::free;
  uint32_t subject = 0;  // AreaId for area_*, HandleId for handle_pfn, a frame for pageblock_label
  uint64_t value = 0;    // a MigrateType for pageblock_label
  friend bool operator==(const ExpectItem&, const ExpectItem&) = default;
};
struct Expect {
  std::vector<ExpectItem> items;
  friend bool operator==(const Expect&, const Expect&) = default;
};

// `=> ok [pfn=P]` or `=> fail` after an operation.
struct Expectation {
  bool ok = true;
  std::optional<Pfn> pfn;
  friend bool operator==(const Expectation&, const Expectation&) = default;
};

struct Statement {
  std::variant<Op, Expect> body;
  std::optional<Expectation> expectation;  // only for operations
  uint8_t thread = 0;                      // `Tn:` tag: the logical CPU that issues it
  uint32_t line = 0;                       // source line; not part of equality
  friend bool operator==(const Statement& a, const Statement& b) {
    return a.body == b.body && a.expectation == b.expectation && a.thread == b.thread;
  }
};

// `switch Tx after Ty.k:label[#i]`: after thread y's k-th operation (1-based, in its own
// program order) completes its i-th `label` step, thread x runs next; `switch Tx at start`:
// thread x runs first. Only the choices that differ from the default schedule are written
// (docs/concurrency.md): a trace without them runs its operations in listing order.
struct Switch {
  uint8_t to = 0;
  bool at_start = false;
  uint8_t thread = 0;
  uint32_t op = 0;
  StepLabel label = StepLabel::op;
  uint32_t occurrence = 1;
  uint32_t line = 0;  // not part of equality
  friend bool operator==(const Switch& a, const Switch& b) {
    return a.to == b.to && a.at_start == b.at_start && a.thread == b.thread && a.op == b.op && a.label == b.label &&
           a.occurrence == b.occurrence;
  }
};

struct Trace {
  MachineDecl machine;
  std::vector<AreaDecl> areas;
  std::vector<std::string> handles;  // HandleId -> name, in order of first appearance
  std::vector<Statement> statements;
  std::vector<Switch> switches;  // concurrent traces only (cpus > 1)

  bool concurrent() const { return machine.cpus > 1; }

  const std::string& handle_name(HandleId h) const { return handles[raw(h)]; }
  const std::string& area_name(AreaId a) const { return areas[raw(a)].name; }
  HandleId intern_handle(const std::string& name);
  std::optional<AreaId> find_area(const std::string& name) const;

  friend bool operator==(const Trace&, const Trace&) = default;
};

}  // namespace cmacheck
