// The trace language (../shared/docs/trace-format.md, version 1): the one language of a
// cmacheck run. Fuzz inputs decode into it, properties generate it, replay reads it,
// and every finding is printed in it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "trace/units.h"

namespace cmacheck {

// Handles and areas are interned: operations carry small indices, the Trace keeps names.
enum class HandleId : uint32_t {};
enum class AreaId : uint32_t {};
constexpr uint32_t raw(HandleId h) { return static_cast<uint32_t>(h); }
constexpr uint32_t raw(AreaId a) { return static_cast<uint32_t>(a); }

struct MachineDecl {
  uint64_t pages = 0;
  uint8_t pageblock_order = 9;
  uint8_t max_order = 10;
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

// One struct per statement of the trace format's operation table.
struct Alloc {
  HandleId id{};
  Kind kind = Kind::movable;
  Order order{};
  std::optional<Pfn> at;
  friend bool operator==(const Alloc&, const Alloc&) = default;
};
struct Free {
  HandleId id{};
  friend bool operator==(const Free&, const Free&) = default;
};
struct Pin {
  HandleId id{};
  bool longterm = false;
  friend bool operator==(const Pin&, const Pin&) = default;
};
struct Unpin {
  HandleId id{};
  friend bool operator==(const Unpin&, const Unpin&) = default;
};
struct Migrate {
  HandleId id{};
  friend bool operator==(const Migrate&, const Migrate&) = default;
};
struct CmaAlloc {
  HandleId id{};
  AreaId area{};
  PageCount count{};
  Order align{};
  friend bool operator==(const CmaAlloc&, const CmaAlloc&) = default;
};
struct CmaRelease {
  HandleId id{};
  friend bool operator==(const CmaRelease&, const CmaRelease&) = default;
};
// `cma_release area=NAME pfn=P count=N`: raw arguments, possibly invalid (rule R2).
struct CmaReleaseRaw {
  AreaId area{};
  Pfn pfn{};
  PageCount count{};
  friend bool operator==(const CmaReleaseRaw&, const CmaReleaseRaw&) = default;
};
struct AllocContig {
  HandleId id{};
  PageCount count{};
  friend bool operator==(const AllocContig&, const AllocContig&) = default;
};
struct FreeContig {
  HandleId id{};
  friend bool operator==(const FreeContig&, const FreeContig&) = default;
};

using Op = std::variant<Alloc, Free, Pin, Unpin, Migrate, CmaAlloc, CmaRelease, CmaReleaseRaw,
                        AllocContig, FreeContig>;

// What an `expect` statement can read (rule M7).
enum class ExpectKey : uint8_t { free, free_cma, area_used, area_maxchunk, handle_pfn };
struct ExpectItem {
  ExpectKey key = ExpectKey::free;
  uint32_t subject = 0;  // AreaId for area_*, HandleId for handle_pfn
  uint64_t value = 0;
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
  uint32_t line = 0;                       // source line; not part of equality
  friend bool operator==(const Statement& a, const Statement& b) {
    return a.body == b.body && a.expectation == b.expectation;
  }
};

// Which operation binds a handle (the trace format's handle families).
enum class Family : uint8_t { block, cma, contig };

struct Trace {
  MachineDecl machine;
  std::vector<AreaDecl> areas;
  std::vector<std::string> handles;  // HandleId -> name, in order of first appearance
  std::vector<Statement> statements;

  const std::string& handle_name(HandleId h) const { return handles[raw(h)]; }
  const std::string& area_name(AreaId a) const { return areas[raw(a)].name; }
  HandleId intern_handle(const std::string& name);
  std::optional<AreaId> find_area(const std::string& name) const;

  friend bool operator==(const Trace&, const Trace&) = default;
};

// The handle an operation names, if any, and whether it binds it (allocates).
struct HandleUse {
  HandleId id{};
  bool binds = false;
  Family family = Family::block;
};
std::optional<HandleUse> handle_use(const Op& op);

const char* op_name(const Op& op);

}  // namespace cmacheck
