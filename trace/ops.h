// The operations of the trace language, one struct per statement (docs/trace-format.md).
//
// An operation is the unit of the language: its struct states every fact the rest of
// cmacheck needs about it, and nothing else repeats them.
//   - `facts`: the statement's verb, the handle family it binds or takes (the trace
//     format's handle families), and what it does to that handle;
//   - `args`: its arguments in printed order, each with its key and the member it fills;
//     the parser and the canonical printer are derived from them (trace/parse.cpp,
//     trace/print.cpp), and so are op_name, handle_use and HandleTable::apply.
// impl/ and model/ dispatch on `Op` with exhaustive visitors, so an operation one of them
// forgets does not compile. docs/design.md, "Adding an operation", has the recipe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <variant>

#include "trace/units.h"

namespace cmacheck {

// Handles and areas are interned: operations carry small indices, the Trace keeps names.
enum class HandleId : uint32_t {};
enum class AreaId : uint32_t {};
constexpr uint32_t raw(HandleId h) { return static_cast<uint32_t>(h); }
constexpr uint32_t raw(AreaId a) { return static_cast<uint32_t>(a); }

// Which operation binds a handle (the trace format's handle families).
enum class Family : uint8_t { block, cma, contig };
inline constexpr size_t kFamilies = 3;
constexpr size_t index(Family f) { return static_cast<size_t>(f); }

// What an operation does to the handle of its family.
enum class HandleRole : uint8_t {
  binds,           // a success binds the named handle (it must not be live)
  uses,            // names a live handle and leaves it live
  ends,            // names a live handle; a success ends it
  ends_by_frames,  // names no handle; a success ends the one whose frames it names (R2)
  none,            // names no handle and touches none (`lru_drain`)
};

struct OpFacts {
  std::string_view name;  // the statement's verb
  Family family;
  HandleRole role;
  // Whether the statement names a handle (its first argument).
  constexpr bool names_handle() const { return role != HandleRole::ends_by_frames && role != HandleRole::none; }
};

// Argument descriptors: what `args` is made of. Each names the member it fills.
namespace arg {
template <class O>
struct Handle {  // positional, first: `VERB ID`
  HandleId O::*member;
};
template <class O>
struct Word {  // an optional bare word after the handle: `pin ID longterm`
  std::string_view word;
  bool O::*member;
};
template <class O>
struct KindOf {  // required `key=movable|unmovable|reclaimable`
  std::string_view key;
  Kind O::*member;
};
template <class O>
struct AreaOf {  // required `key=NAME` of a declared area
  std::string_view key;
  AreaId O::*member;
};
template <class O>
struct Pages {  // required page count; sizes (K, M, G) allowed
  std::string_view key;
  PageCount O::*member;
};
template <class O>
struct Frame {  // required frame number; sizes allowed
  std::string_view key;
  Pfn O::*member;
};
template <class O>
struct MaybeFrame {  // optional frame number; absent when not given
  std::string_view key;
  std::optional<Pfn> O::*member;
};
template <class O>
struct BatchOf {  // optional `key=lru|activate|mlock`; lru when not given
  std::string_view key;
  Batch O::*member;
};
template <class O>
struct OrderOf {  // optional order (a plain number below 64); 0 when not given
  std::string_view key;
  Order O::*member;
};
template <class O> Handle(HandleId O::*) -> Handle<O>;
template <class O> Word(std::string_view, bool O::*) -> Word<O>;
template <class O> KindOf(std::string_view, Kind O::*) -> KindOf<O>;
template <class O> AreaOf(std::string_view, AreaId O::*) -> AreaOf<O>;
template <class O> Pages(std::string_view, PageCount O::*) -> Pages<O>;
template <class O> Frame(std::string_view, Pfn O::*) -> Frame<O>;
template <class O> MaybeFrame(std::string_view, std::optional<Pfn> O::*) -> MaybeFrame<O>;
template <class O> OrderOf(std::string_view, Order O::*) -> OrderOf<O>;
template <class O> BatchOf(std::string_view, Batch O::*) -> BatchOf<O>;
}  // namespace arg

// `alloc ID kind=K [order=N] [at=PFN]` (alloc_pages; B7 for at=).
struct Alloc {
  HandleId id{};
  Kind kind = Kind::movable;
  Order order{};
  std::optional<Pfn> at;
  static constexpr OpFacts facts{"alloc", Family::block, HandleRole::binds};
  static constexpr auto args = std::tuple{arg::Handle{&Alloc::id}, arg::KindOf{"kind", &Alloc::kind},
                                          arg::OrderOf{"order", &Alloc::order}, arg::MaybeFrame{"at", &Alloc::at}};
  friend bool operator==(const Alloc&, const Alloc&) = default;
};
// `free ID` (__free_pages).
struct Free {
  HandleId id{};
  static constexpr OpFacts facts{"free", Family::block, HandleRole::ends};
  static constexpr auto args = std::tuple{arg::Handle{&Free::id}};
  friend bool operator==(const Free&, const Free&) = default;
};
// `pin ID [longterm]` (get_user_pages; pin_user_pages with FOLL_LONGTERM).
struct Pin {
  HandleId id{};
  bool longterm = false;
  static constexpr OpFacts facts{"pin", Family::block, HandleRole::uses};
  static constexpr auto args = std::tuple{arg::Handle{&Pin::id}, arg::Word{"longterm", &Pin::longterm}};
  friend bool operator==(const Pin&, const Pin&) = default;
};
// `unpin ID` (unpin_user_page).
struct Unpin {
  HandleId id{};
  static constexpr OpFacts facts{"unpin", Family::block, HandleRole::uses};
  static constexpr auto args = std::tuple{arg::Handle{&Unpin::id}};
  friend bool operator==(const Unpin&, const Unpin&) = default;
};
// `migrate ID` (migrate_pages).
struct Migrate {
  HandleId id{};
  static constexpr OpFacts facts{"migrate", Family::block, HandleRole::uses};
  static constexpr auto args = std::tuple{arg::Handle{&Migrate::id}};
  friend bool operator==(const Migrate&, const Migrate&) = default;
};
// `cma_alloc ID area=NAME count=N [align=A]` (cma_alloc).
struct CmaAlloc {
  HandleId id{};
  AreaId area{};
  PageCount count{};
  Order align{};
  static constexpr OpFacts facts{"cma_alloc", Family::cma, HandleRole::binds};
  static constexpr auto args = std::tuple{arg::Handle{&CmaAlloc::id}, arg::AreaOf{"area", &CmaAlloc::area},
                                          arg::Pages{"count", &CmaAlloc::count}, arg::OrderOf{"align", &CmaAlloc::align}};
  friend bool operator==(const CmaAlloc&, const CmaAlloc&) = default;
};
// `cma_release ID` (cma_release of the whole allocation, R1).
struct CmaRelease {
  HandleId id{};
  static constexpr OpFacts facts{"cma_release", Family::cma, HandleRole::ends};
  static constexpr auto args = std::tuple{arg::Handle{&CmaRelease::id}};
  friend bool operator==(const CmaRelease&, const CmaRelease&) = default;
};
// `cma_release area=NAME pfn=P count=N`: raw arguments, possibly invalid (rule R2).
struct CmaReleaseRaw {
  AreaId area{};
  Pfn pfn{};
  PageCount count{};
  static constexpr OpFacts facts{"cma_release", Family::cma, HandleRole::ends_by_frames};
  static constexpr auto args = std::tuple{arg::AreaOf{"area", &CmaReleaseRaw::area}, arg::Frame{"pfn", &CmaReleaseRaw::pfn},
                                          arg::Pages{"count", &CmaReleaseRaw::count}};
  friend bool operator==(const CmaReleaseRaw&, const CmaReleaseRaw&) = default;
};
// `alloc_contig ID count=N` (alloc_contig_pages).
struct AllocContig {
  HandleId id{};
  PageCount count{};
  static constexpr OpFacts facts{"alloc_contig", Family::contig, HandleRole::binds};
  static constexpr auto args = std::tuple{arg::Handle{&AllocContig::id}, arg::Pages{"count", &AllocContig::count}};
  friend bool operator==(const AllocContig&, const AllocContig&) = default;
};
// `free_contig ID` (free_contig_range).
struct FreeContig {
  HandleId id{};
  static constexpr OpFacts facts{"free_contig", Family::contig, HandleRole::ends};
  static constexpr auto args = std::tuple{arg::Handle{&FreeContig::id}};
  friend bool operator==(const FreeContig&, const FreeContig&) = default;
};

// `touch ID [batch=lru|activate|mlock]`: the issuing CPU's folio batch takes a transient
// reference to the block (folio_add_lru, folio_activate, mlock_folio; rule E1).
struct Touch {
  HandleId id{};
  Batch batch = Batch::lru;
  static constexpr OpFacts facts{"touch", Family::block, HandleRole::uses};
  static constexpr auto args = std::tuple{arg::Handle{&Touch::id}, arg::BatchOf{"batch", &Touch::batch}};
  friend bool operator==(const Touch&, const Touch&) = default;
};
// `lru_drain`: the issuing CPU's batches drop their references (lru_add_drain, E2).
struct LruDrain {
  static constexpr OpFacts facts{"lru_drain", Family::block, HandleRole::none};
  static constexpr auto args = std::tuple{};
  friend bool operator==(const LruDrain&, const LruDrain&) = default;
};

// `pcp_drain`: every CPU's page lists go to the buddy allocator (drain_all_pages, Q4).
struct PcpDrain {
  static constexpr OpFacts facts{"pcp_drain", Family::block, HandleRole::none};
  static constexpr auto args = std::tuple{};
  friend bool operator==(const PcpDrain&, const PcpDrain&) = default;
};

using Op = std::variant<Alloc, Free, Pin, Unpin, Migrate, CmaAlloc, CmaRelease, CmaReleaseRaw, AllocContig, FreeContig,
                        Touch, LruDrain, PcpDrain>;
inline constexpr size_t kOps = std::variant_size_v<Op>;

// Calls fn(std::type_identity<O>{}) for every operation type O, in variant order.
template <class Fn>
constexpr void for_each_op_type(Fn&& fn) {
  [&]<size_t... I>(std::index_sequence<I...>) {
    (fn(std::type_identity<std::variant_alternative_t<I, Op>>{}), ...);
  }(std::make_index_sequence<kOps>{});
}

// The facts of every operation, by variant index.
inline constexpr std::array<OpFacts, kOps> kOpFacts = [] {
  std::array<OpFacts, kOps> facts{};
  size_t i = 0;
  for_each_op_type([&](auto t) { facts[i++] = decltype(t)::type::facts; });
  return facts;
}();

constexpr const OpFacts& facts_of(const Op& op) { return kOpFacts[op.index()]; }
// (Every name is a string literal, so data() is null-terminated.)
constexpr const char* op_name(const Op& op) { return facts_of(op).name.data(); }

// The verb of the operation that binds handles of family f ("alloc", "cma_alloc", ...).
constexpr std::string_view binding_op(Family f) {
  for (const OpFacts& facts : kOpFacts)
    if (facts.family == f && facts.role == HandleRole::binds) return facts.name;
  return "?";
}

// The facts are consistent: an operation that names a handle has it as its first argument,
// and every family has exactly one binding operation.
template <class O>
constexpr bool first_arg_is_handle() {
  if constexpr (std::tuple_size_v<std::remove_cvref_t<decltype(O::args)>> == 0) {
    return false;
  } else {
    using First = std::remove_cvref_t<decltype(std::get<0>(O::args))>;
    return std::is_same_v<First, arg::Handle<O>>;
  }
}
static_assert([] {
  bool ok = true;
  for_each_op_type([&](auto t) {
    using O = typename decltype(t)::type;
    ok = ok && O::facts.names_handle() == first_arg_is_handle<O>();
  });
  for (size_t f = 0; f < kFamilies; ++f) {
    size_t binders = 0;
    for (const OpFacts& facts : kOpFacts) binders += index(facts.family) == f && facts.role == HandleRole::binds;
    ok = ok && binders == 1;
  }
  return ok;
}());

// The handle an operation names, if any, and whether it binds it.
struct HandleUse {
  HandleId id{};
  bool binds = false;
  Family family = Family::block;
  HandleRole role = HandleRole::uses;
};
constexpr std::optional<HandleUse> handle_use(const Op& op) {
  return std::visit(
      [](const auto& o) -> std::optional<HandleUse> {
        using O = std::remove_cvref_t<decltype(o)>;
        if constexpr (first_arg_is_handle<O>()) {
          constexpr OpFacts f = O::facts;
          return HandleUse{o.*(std::get<0>(O::args).member), f.role == HandleRole::binds, f.family, f.role};
        } else {
          return std::nullopt;
        }
      },
      op);
}

// For the primary template of a per-operation handler (`template <class O> void
// handle(const O&)`, specialised once per operation): instantiated only for an operation
// that has no specialisation, where it stops the build with a message that names the gap.
template <class O>
inline constexpr bool kNotHandled = false;

// A visitor built from lambdas, one per operation. With no generic lambda among them,
// std::visit does not compile until every operation has its case.
template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

}  // namespace cmacheck
