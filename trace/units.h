// Units in the types: frame numbers, page counts, bitmap bits and orders never mix
// silently. Several historical CMA bugs were unit mix-ups (bits vs pages, D5/D6 of
// docs/semantics.md), so the compiler keeps them apart.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>

namespace cmacheck {

enum class Pfn : uint64_t {};        // a page frame number
enum class PageCount : uint64_t {};  // a number of 4 KiB pages
enum class BitIndex : uint64_t {};   // a bit of a CMA area's bitmap

constexpr uint64_t raw(Pfn p) { return static_cast<uint64_t>(p); }
constexpr uint64_t raw(PageCount c) { return static_cast<uint64_t>(c); }
constexpr uint64_t raw(BitIndex b) { return static_cast<uint64_t>(b); }

constexpr Pfn operator+(Pfn p, PageCount c) { return Pfn{raw(p) + raw(c)}; }
constexpr PageCount operator-(Pfn end, Pfn start) { return PageCount{raw(end) - raw(start)}; }
constexpr PageCount operator+(PageCount a, PageCount b) { return PageCount{raw(a) + raw(b)}; }

// A buddy order: a block of order k is 2^k pages, aligned to 2^k.
struct Order {
  uint8_t value = 0;
  constexpr PageCount pages() const { return PageCount{uint64_t{1} << value}; }
  friend constexpr auto operator<=>(const Order&, const Order&) = default;
};

// [first, first + count)
struct FrameRange {
  Pfn first{};
  PageCount count{};
  constexpr Pfn end() const { return first + count; }
  constexpr bool contains(Pfn p) const { return raw(p) >= raw(first) && raw(p) < raw(end()); }
  constexpr bool overlaps(const FrameRange& o) const {
    return raw(first) < raw(o.end()) && raw(o.first) < raw(end());
  }
  friend constexpr bool operator==(const FrameRange&, const FrameRange&) = default;
};

// The kernel whose rules a trace follows (docs/semantics.md, "Kernel profiles"): the
// `profile=` key of the machine line. Where the two differ, impl/ and model/ say so at the
// point of difference, citing the profile's rule.
enum class Profile : uint8_t { linux_6_1, linux_6_12 };
inline constexpr Profile kProfiles[] = {Profile::linux_6_1, Profile::linux_6_12};

constexpr const char* name(Profile p) {
  switch (p) {
    case Profile::linux_6_1: return "linux-6.1";
    case Profile::linux_6_12: return "linux-6.12";
  }
  return "?";
}

// The per-CPU folio batches a `touch` puts a transient reference in (rules E1-E4):
// lru_add (folio_add_lru: a new page, not on the LRU until the batch is moved),
// activate (folio_activate) and mlock (mlock_folio).
enum class Batch : uint8_t { lru, activate, mlock };
inline constexpr Batch kBatches[] = {Batch::lru, Batch::activate, Batch::mlock};
inline constexpr size_t kBatchKinds = 3;

constexpr const char* name(Batch b) {
  switch (b) {
    case Batch::lru: return "lru";
    case Batch::activate: return "activate";
    case Batch::mlock: return "mlock";
  }
  return "?";
}

// E1: a batch is moved (its references dropped) when an add fills it: PAGEVEC_SIZE is 15 in
// linux-6.1 and 31 in linux-6.12 (include/linux/pagevec.h).
constexpr size_t batch_capacity(Profile p) { return p == Profile::linux_6_1 ? 15 : 31; }

// The allocation kinds of `alloc`, each with its migratetype (rule M3).
enum class Kind : uint8_t { movable, unmovable, reclaimable };

// Pageblock migratetypes (rule M2).
enum class MigrateType : uint8_t { unmovable, movable, reclaimable, cma, isolate };

constexpr const char* name(Kind k) {
  switch (k) {
    case Kind::movable: return "movable";
    case Kind::unmovable: return "unmovable";
    case Kind::reclaimable: return "reclaimable";
  }
  return "?";
}

constexpr const char* name(MigrateType t) {
  switch (t) {
    case MigrateType::unmovable: return "UNMOVABLE";
    case MigrateType::movable: return "MOVABLE";
    case MigrateType::reclaimable: return "RECLAIMABLE";
    case MigrateType::cma: return "CMA";
    case MigrateType::isolate: return "ISOLATE";
  }
  return "?";
}

// The trace format's spelling of a pageblock label (`expect label@PFN=movable`).
constexpr const char* label_name(MigrateType t) {
  switch (t) {
    case MigrateType::unmovable: return "unmovable";
    case MigrateType::movable: return "movable";
    case MigrateType::reclaimable: return "reclaimable";
    case MigrateType::cma: return "cma";
    case MigrateType::isolate: return "isolate";
  }
  return "?";
}

// One letter per pageblock label, as the failure pictures and the kernel module's `labels`
// print them.
constexpr char label_letter(MigrateType t) {
  switch (t) {
    case MigrateType::unmovable: return 'U';
    case MigrateType::movable: return 'M';
    case MigrateType::reclaimable: return 'R';
    case MigrateType::cma: return 'C';
    case MigrateType::isolate: return 'I';
  }
  return '?';
}

constexpr MigrateType migratetype_of(Kind k) {
  switch (k) {
    case Kind::movable: return MigrateType::movable;
    case Kind::unmovable: return MigrateType::unmovable;
    case Kind::reclaimable: return MigrateType::reclaimable;
  }
  return MigrateType::movable;
}

}  // namespace cmacheck
