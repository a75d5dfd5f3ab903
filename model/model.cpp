#include "model/model.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cstring>
#include <utility>
#include <variant>

#include "trace/refill.h"

namespace cmacheck::model {

namespace {

// Rule B4 step 4: the fallback types of each request type, in the order they are tried
// (`fallbacks[]` in mm/page_alloc.c). CMA and ISOLATE are never fallbacks.
std::array<MigrateType, 2> fallbacks(MigrateType t) {
  switch (t) {
    case MigrateType::unmovable: return {MigrateType::reclaimable, MigrateType::movable};
    case MigrateType::reclaimable: return {MigrateType::unmovable, MigrateType::movable};
    default: return {MigrateType::reclaimable, MigrateType::unmovable};
  }
}

// Rule A1: a request of `count` pages takes ceil(count / 2^order_per_bit) bits.
uint64_t bits_for(uint64_t count, uint8_t order_per_bit) {
  const uint64_t chunk = uint64_t{1} << order_per_bit;
  return count / chunk + (count % chunk != 0);
}

std::string num(uint64_t v) { return std::to_string(v); }
std::string num(Pfn p) { return std::to_string(raw(p)); }
std::string handle(HandleId h) { return "handle #" + std::to_string(raw(h)); }

}  // namespace

// Rule M2 (memmap_init, cma_activate_area -> init_cma_reserved_pageblock): the pageblocks
// of every CMA area are CMA, every other pageblock is MOVABLE.
static std::vector<FrameRange> cma_ranges(const std::vector<AreaDecl>& areas) {
  std::vector<FrameRange> ranges;
  for (const AreaDecl& decl : areas) ranges.push_back(decl.range());
  return ranges;
}

// Rule M2: all frames free, pageblocks labelled as above; every bitmap clear (M6).
Model::Model(const MachineDecl& machine, const std::vector<AreaDecl>& areas) : Model(machine, areas, Tables{}) {}

Model::Model(const MachineDecl& machine, const std::vector<AreaDecl>& areas, Tables recycled)
    : machine_(machine),
      memory_(machine.pages, machine.pageblock_order, machine.max_order, cma_ranges(areas),
              machine.profile == Profile::linux_6_1, std::move(recycled.memory)),
      owner_(std::move(recycled.owner)),
      content_(std::move(recycled.content)) {
  refill(owner_, machine.pages, kNoOwner);
  refill(content_, machine.pages, uint64_t{0});
  for (const AreaDecl& decl : areas) {
    Area a;
    a.decl = decl;
    a.bits.assign(raw(decl.pages) >> decl.order_per_bit, 0);  // M6
    areas_.push_back(std::move(a));
  }
}

Model::Tables Model::release_tables() && {
  return Tables{std::move(memory_).release_tables(), std::move(owner_), std::move(content_)};
}

// ---------------------------------------------------------------------------------------
// One operation

// Dispatch: one handler per operation of trace/ops.h.
template <class O>
void Model::execute(const O&, Outcome&) {
  static_assert(kNotHandled<O>, "model/ does not implement this operation: add its Model::execute specialisation");
}
template <>
void Model::execute(const Alloc& o, Outcome& mine) { alloc(o, mine); }
template <>
void Model::execute(const Free& o, Outcome& mine) { free(o, mine); }
template <>
void Model::execute(const Pin& o, Outcome& mine) { pin(o, mine); }
template <>
void Model::execute(const Unpin& o, Outcome& mine) { unpin(o, mine); }
template <>
void Model::execute(const Migrate& o, Outcome& mine) { migrate(o, mine); }
template <>
void Model::execute(const CmaAlloc& o, Outcome& mine) { cma_alloc(o, mine); }
template <>
void Model::execute(const CmaRelease& o, Outcome& mine) {
  if (handle_ok(o.id, false, Family::cma)) cma_release(o.id, mine);
}
template <>
void Model::execute(const CmaReleaseRaw& o, Outcome& mine) { cma_release_raw(o, mine); }
template <>
void Model::execute(const AllocContig& o, Outcome& mine) { alloc_contig(o, mine); }
template <>
void Model::execute(const FreeContig& o, Outcome& mine) { free_contig(o, mine); }
template <>
void Model::execute(const Touch& o, Outcome& mine) { touch(o, mine); }
template <>
void Model::execute(const LruDrain&, Outcome& mine) { lru_drain(mine); }
template <>
void Model::execute(const PcpDrain&, Outcome& mine) {
  drain_all_pcp();  // Q4
  mine.ok = true;
}

std::optional<Violation> Model::apply(const Op& op, const Outcome& impl, Outcome& mine) { return run(op, &impl, mine); }

void Model::apply_alone(const Op& op, Outcome& mine) { run(op, nullptr, mine); }

std::optional<Violation> Model::run(const Op& op, const Outcome* impl, Outcome& mine) {
  mine.clear();
  impl_ = impl;
  impl_moves_used_ = 0;
  impl_fallbacks_used_ = 0;
  violation_.reset();
  // X2 at its step: the moves migrate_at_step made for this operation are behind it.
  if (operation_) {
    for (auto it = moved_at_steps_.begin(); it != moved_at_steps_.end(); ++it)
      if (it->first == *operation_) {
        impl_moves_used_ = it->second;
        moved_at_steps_.erase(it);
        break;
      }
    operation_.reset();
  }
  // W6: other operations' isolations in force at this operation's commit.
  under_isolation(std::move(foreign_isolation_), [&] { std::visit([&](const auto& o) { execute(o, mine); }, op); });
  reserved_view_.clear();  // a view is for one operation
  held_blocks_.clear();
  return finish_run(op, mine);
}

template <class Fn>
void Model::under_isolation(std::vector<PageblockRange> isolated, Fn&& fn) {
  foreign_isolation_ = std::move(isolated);
  const std::vector<std::pair<uint64_t, MigrateType>> labels = isolate_foreign();
  fn();
  give_back_foreign(labels);
  foreign_isolation_.clear();
}

void Model::drain_pcp_at_step(uint8_t cpu, std::vector<PageblockRange> isolated) {
  under_isolation(std::move(isolated), [&] {
    if (!pcp_[cpu].empty()) pcp_flush(cpu);
  });
}

std::optional<Violation> Model::migrate_at_step(uint32_t op, uint8_t cpu, const Move& move,
                                                std::vector<PageblockRange> isolated) {
  const Allocation* a = live(move.handle);
  if (!a || a->pfn != move.from)
    return Violation{"K2",
                     "impl moved " + handle(move.handle) + " from pfn " + num(move.from) + " at its migrate step, where " +
                         (a ? "the model has it at pfn " + num(a->pfn) : std::string("the model has no such block")),
                     move.from};
  uint32_t* made = nullptr;
  for (auto& [o, n] : moved_at_steps_)
    if (o == op) made = &n;
  if (!made) made = &moved_at_steps_.emplace_back(op, 0).second;
  Outcome impl;
  impl.ok = true;
  impl.moves.push_back(move);
  Outcome mine;
  impl_ = &impl;
  impl_moves_used_ = 0;
  violation_.reset();
  const uint8_t caller_cpu = cpu_;
  cpu_ = cpu;
  under_isolation(std::move(isolated), [&] {
    if (!move_block(move.handle, MigrateType::movable, true, mine))
      violate("K2", "impl moved " + handle(move.handle) + " to pfn " + num(move.to) + " at its migrate step, where B4 finds no target",
              move.to);
  });
  cpu_ = caller_cpu;
  impl_ = nullptr;
  ++*made;
  return std::exchange(violation_, std::nullopt);
}

std::vector<std::pair<uint64_t, MigrateType>> Model::isolate_foreign() {
  std::vector<std::pair<uint64_t, MigrateType>> foreign_labels;
  for (const PageblockRange& r : foreign_isolation_) {
    const uint8_t B = machine_.pageblock_order;
    std::optional<FreeBlock> across_hi;
    if (memory_.own_lists()) {
      across_hi = split_edges_linux_6_1(r.first, r.last, true);
    } else {
      split_outside(r.first << B, true);
      split_outside((r.last + 1) << B, false);
    }
    for (uint64_t pb = r.first; pb <= r.last; ++pb) {
      foreign_labels.emplace_back(pb, memory_.pageblock_label(pb));
      memory_.relabel(pb, MigrateType::isolate);
      if (memory_.own_lists()) move_pageblock_lists(pb, MigrateType::isolate);
    }
    if (across_hi) memory_.set_list(*across_hi, MigrateType::isolate);
  }
  return foreign_labels;
}

void Model::give_back_foreign(const std::vector<std::pair<uint64_t, MigrateType>>& labels) {
  for (const auto& [pb, label] : labels) {
    memory_.relabel(pb, label);
    if (memory_.own_lists()) move_pageblock_lists(pb, label);
  }
}

// The checks after an operation: impl's moves all met (K2), a contiguous result explained (L1).
std::optional<Violation> Model::finish_run(const Op& op, Outcome& mine) {
  // K2: every block impl moved must be a block the model moved, in the same order.
  if (consulting() && impl_moves_used_ < impl_->moves.size()) {
    const Move& m = impl_->moves[impl_moves_used_];
    violate("K2",
            "impl moved " + handle(m.handle) + " from pfn " + num(m.from) + " to " + num(m.to) +
                ", but the model moves no further block in this operation",
            m.from);
  }
  if (consulting() && impl_fallbacks_used_ < impl_->fallback_heads.size())
    violate("K2",
            "impl took a fallback block at pfn " + num(impl_->fallback_heads[impl_fallbacks_used_]) +
                " where the model's B4 takes none",
            impl_->fallback_heads[impl_fallbacks_used_]);
  // L1 for cma_alloc and alloc_contig: the model predicts the result exactly (K1), so a
  // failure of impl where the model succeeds is a false failure: the window or candidate
  // the model took had no obstacle. Moves that departed from the model's on the way usually
  // mean impl took another window or candidate (K1); say so rather than name the move.
  auto contiguous = [&] { return std::holds_alternative<CmaAlloc>(op) || std::holds_alternative<AllocContig>(op); };
  if (impl_ && (impl_->ok != mine.ok || impl_->pfn != mine.pfn || impl_->reason != mine.reason) && contiguous()) {
    auto result = [](const Outcome& o) {
      return o.ok ? "ok pfn=" + num(o.pfn) : std::string("fail (") + name(o.reason) + ")";
    };
    std::string message = "impl " + result(*impl_) + ", model " + result(mine);
    if (!impl_->ok && mine.ok) message += ": the model's range has no obstacle (X1-X3)";
    if (violation_) message += "; first departure: " + violation_->message;
    if (!impl_->ok && mine.ok)
      violation_ = Violation{"L1", message, mine.pfn};
    else if (violation_)
      violation_ = Violation{"K1", message, violation_->where};
    // else: a plain disagreement of results, which the caller reports (K1)
  }
  impl_ = nullptr;
  return std::exchange(violation_, std::nullopt);
}

void Model::violate(const char* rule, std::string message, std::optional<Pfn> where) {
  if (!violation_) violation_ = Violation{rule, std::move(message), where};
}

const Move* Model::next_impl_move() const {
  return impl_moves_used_ < impl_->moves.size() ? &impl_->moves[impl_moves_used_] : nullptr;
}

// The caller guarantees well-formed operations; if impl and the model have drifted apart
// so that a handle is live on one side only, say so instead of crashing.
bool Model::handle_ok(HandleId h, bool binds, Family family) {
  const Allocation* a = live(h);
  if (binds && a) violate("K1", handle(h) + " is already live in the model", a->pfn);
  if (!binds && (!a || a->family != family))
    violate("K1", handle(h) + " is not live (of this family) in the model", {});
  return binds ? !a : a && a->family == family;
}

// ---------------------------------------------------------------------------------------
// Allocation records (M1, M4, M5)

Model::Allocation* Model::live(HandleId h) {
  return raw(h) < allocs_.size() && allocs_[raw(h)] ? &*allocs_[raw(h)] : nullptr;
}

const Model::Allocation* Model::live(HandleId h) const {
  return raw(h) < allocs_.size() && allocs_[raw(h)] ? &*allocs_[raw(h)] : nullptr;
}

bool Model::is_live(HandleId h) const { return live(h) != nullptr; }

// Rule M5: the k-th successful allocating operation (alloc, cma_alloc, alloc_contig)
// writes content_value(k, i) into its i-th frame. `taken`: the frames are off the free
// memory already (X4, inside contig_range).
Model::Allocation& Model::create(HandleId h, Family family, FrameRange r, bool taken) {
  if (raw(h) >= allocs_.size()) allocs_.resize(raw(h) + 1);
  Allocation& a = allocs_[raw(h)].emplace();
  a.family = family;
  a.pfn = r.first;
  a.count = r.count;
  if (!taken) memory_.set_free(r, false);
  ++serial_;
  for (uint64_t i = 0; i < raw(r.count); ++i) {
    owner_[raw(r.first) + i] = raw(h);
    content_[raw(r.first) + i] = content_value(serial_, i);
  }
  return a;
}

// Rules F1, R1, C3: the frames become free; merging (B2) follows from the derived blocks,
// lists and labels from B10-B13: a block as its owner frees it, a contiguous range page by
// page.
void Model::destroy(HandleId h) {
  const Allocation& a = *live(h);
  const FrameRange r = a.range();
  for (uint64_t p = raw(r.first); p < raw(r.end()); ++p) {
    owner_[p] = kNoOwner;
    content_[p] = 0;
  }
  if (a.family == Family::block)
    release(r.first, a.order, free_type_read_);
  else if (pcp_on())  // free_contig_range: __free_page by page, through the lists (Q2)
    for (uint64_t p = raw(r.first); p < raw(r.end()); ++p) release(Pfn{p}, Order{0});
  else
    free_contig_pages(r);
  allocs_[raw(h)].reset();
}

// Rule Q2 (free_unref_page): with page lists, a block of order <= 3 whose pageblock is not
// ISOLATE goes to the freeing CPU's list of its pageblock's type (CMA on MOVABLE's); the
// free that brings the CPU's lists to `high` pages flushes them (Q4). Any other block goes
// to the buddy allocator.
//
// Rule F2: the type is read before any lock (`seen`, when another CPU ran between the read and
// the free; else it is the label now). It decides list or buddy allocator. The buddy allocator
// frees the block as the label under zone->lock, except that linux-6.1 keeps the type read
// when no pageblock is ISOLATE and the type read is not (free_one_page; U61).
void Model::release(Pfn head, Order order, std::optional<MigrateType> seen) {
  const MigrateType read = seen.value_or(memory_.label(head));
  const bool keeps_read = seen && profile() == Profile::linux_6_1 && read != MigrateType::isolate && !any_isolated();
  const std::optional<MigrateType> as = keeps_read ? seen : std::nullopt;
  if (!pcp_on() || order.value > 3 || read == MigrateType::isolate || pcp_bypass_) return free_block(head, order, as);
  const MigrateType list =
      read == MigrateType::unmovable || read == MigrateType::reclaimable ? read : MigrateType::movable;
  pcp_[cpu_].push_back(PcpEntry{head, order, list, read});
  pcp_pages_[cpu_] += raw(order.pages());
  pcp_total_ += raw(order.pages());
  if (pcp_pages_[cpu_] >= machine_.pcp_high) pcp_flush(cpu_);
}

// Rule Q4 (drain_pages): the CPU's entries, oldest first, go to the buddy allocator as a
// block its owner frees, under its pageblock's label now.
// linux-6.1 frees it as the type read when it was freed, unless some pageblock is ISOLATE
// (free_pcppages_bulk: get_pcppage_migratetype, isolated_pageblocks).
void Model::pcp_flush(uint8_t cpu) {
  const bool cached = profile() == Profile::linux_6_1 && !any_isolated();
  for (const PcpEntry& e : pcp_[cpu]) free_block(e.head, e.order, cached ? std::optional(e.read) : std::nullopt);
  pcp_total_ -= pcp_pages_[cpu];
  pcp_[cpu].clear();
  pcp_pages_[cpu] = 0;
}

bool Model::any_isolated() const { return isolated_elsewhere_ || memory_.isolated_pageblocks() > 0; }

void Model::drain_all_pcp() {  // drain_all_pages
  for (uint8_t c = 0; c < kCpus; ++c)
    if (!pcp_[c].empty()) pcp_flush(c);
}

// Rule Q3 (rmqueue_pcplist): the newest entry of the CPU's list for (t, k); a MOVABLE request
// that may not use CMA skips the lists.
std::optional<Pfn> Model::take_pcp(MigrateType t, Order k, bool allow_cma) {
  if (!pcp_on() || k.value > 3 || (t == MigrateType::movable && !allow_cma)) return std::nullopt;
  auto& entries = pcp_[cpu_];
  for (size_t i = entries.size(); i-- > 0;)
    if (entries[i].list == t && entries[i].order == k) {
      const Pfn head = entries[i].head;
      entries.erase(entries.begin() + static_cast<std::ptrdiff_t>(i));
      pcp_pages_[cpu_] -= raw(k.pages());
      pcp_total_ -= raw(k.pages());
      return head;
    }
  return std::nullopt;
}

bool Model::pcp_in(FrameRange r) const {
  for (const auto& entries : pcp_)
    for (const PcpEntry& e : entries)
      if (FrameRange{e.head, e.order.pages()}.overlaps(r)) return true;
  return false;
}

void Model::free_block_entries(std::vector<uint64_t>& into) const {
  for (const FreeBlock& b : memory_.free_blocks()) into.push_back(free_block_entry(memory_.type_of(b), b.order, b.head));
  std::sort(into.begin(), into.end());
}

void Model::pcp_entries(std::vector<uint64_t>& into) const {
  for (uint8_t c = 0; c < kCpus; ++c)
    for (const PcpEntry& e : pcp_[c]) into.push_back(pcp_entry(c, e.list, e.order, e.head));
}

// A block its owner frees (free ID; a move's source: __free_pages -> free_one_page).
// linux-6.12 frees a block larger than a pageblock a pageblock at a time, ascending
// (split_large_buddy, B13).
// Under linux-6.1 a block that spans pageblocks B2 keeps apart (a movable block larger than
// a pageblock, freed by its move while part of it is isolated) ends as the free blocks its
// frames then form, each as the label of its first freed frame (split_free_page, S5).
// `as`: the type F2 decided, for a block of at most a pageblock (S8: a larger one is freed as
// its pageblocks' labels).
void Model::free_block(Pfn head, Order order, std::optional<MigrateType> as) {
  const uint8_t B = machine_.pageblock_order;
  const FrameRange r{head, order.pages()};
  if (as && order.value <= B) return free_piece(r, as);
  if (order.value > B && profile() == Profile::linux_6_12) {
    for (uint64_t p = raw(head); p < raw(r.end()); p += uint64_t{1} << B) free_piece({Pfn{p}, PageCount{uint64_t{1} << B}});
    return;
  }
  bool fenced = false;
  if (order.value > B) {
    auto fence = [](MigrateType t) { return t == MigrateType::cma || t == MigrateType::isolate; };
    const uint64_t first_pb = memory_.pageblock_of(head);
    const MigrateType l = memory_.pageblock_label(first_pb);
    for (uint64_t pb = first_pb + 1; pb < first_pb + (uint64_t{1} << (order.value - B)); ++pb) {
      const MigrateType m = memory_.pageblock_label(pb);
      fenced |= m != l && (fence(m) || fence(l));
    }
  }
  if (!fenced) return free_piece(r);
  memory_.set_free(r, true);
  for (uint64_t p = raw(r.first); p < raw(r.end());) {
    const FreeBlock b = *memory_.containing_free_block(Pfn{p});
    settle_merged(b, memory_.label(Pfn{std::max(raw(b.head), raw(r.first))}));
    p = raw(b.head) + raw(b.order.pages());
  }
}

// One piece freed as the label L of its first pageblock: its frames become free and merge
// (B2). Under linux-6.1 the free block that now holds them goes on L's list, whatever lists
// the blocks it merged with were on (B12). Under linux-6.12 every pageblock of that block
// takes L (B13: the buddies it merged with were relabelled L).
void Model::free_piece(FrameRange r, std::optional<MigrateType> as) {
  const MigrateType l = as.value_or(memory_.label(r.first));
  memory_.set_free(r, true);
  settle_merged(*memory_.containing_free_block(r.first), l);
}

// The free block b was made by a merge with a block freed as type l (B12, B13).
void Model::settle_merged(const FreeBlock& b, MigrateType l) {
  if (memory_.own_lists()) {
    memory_.set_list(b, l);
    return;
  }
  relabel_pageblocks_of(b, l);
}

void Model::relabel_pageblocks_of(const FreeBlock& b, MigrateType l) {
  const uint8_t B = machine_.pageblock_order;
  if (b.order.value <= B) return;  // inside one pageblock, which is l already
  const uint64_t first_pb = memory_.pageblock_of(b.head);
  for (uint64_t pb = first_pb; pb < first_pb + (uint64_t{1} << (b.order.value - B)); ++pb)
    if (memory_.pageblock_label(pb) != l) memory_.relabel(pb, l);
}

// free_contig_range (R1, C3): page by page, ascending, each as its pageblock's label. When
// every pageblock of the range has one label L, every free block the range ends in was made
// last by one of its pages, so freeing the range at once and settling those blocks as L ends
// the same.
void Model::free_contig_pages(FrameRange r) {
  const uint64_t first_pb = memory_.pageblock_of(r.first), last_pb = memory_.pageblock_of(Pfn{raw(r.end()) - 1});
  const MigrateType l = memory_.pageblock_label(first_pb);
  bool one_label = true;
  for (uint64_t pb = first_pb + 1; pb <= last_pb && one_label; ++pb) one_label = memory_.pageblock_label(pb) == l;
  if (!one_label) {
    for (uint64_t p = raw(r.first); p < raw(r.end()); ++p) free_piece({Pfn{p}, PageCount{1}});
    return;
  }
  memory_.set_free(r, true);
  for (uint64_t p = raw(r.first); p < raw(r.end());) {
    const FreeBlock b = *memory_.containing_free_block(Pfn{p});
    settle_merged(b, l);
    p = raw(b.head) + raw(b.order.pages());
  }
}

std::optional<Placement> Model::placement(HandleId h) const {
  const Allocation* a = live(h);
  if (!a) return std::nullopt;
  ContentDigest d;
  for (uint64_t p = raw(a->pfn); p < raw(a->range().end()); ++p) d.add(content_[p]);
  return Placement{h, a->pfn, a->count, d.h};
}

uint32_t Model::pins(HandleId h) const {
  const Allocation* a = live(h);
  return a ? a->pins : 0;
}

bool Model::longterm_pinned(HandleId h) const {
  const Allocation* a = live(h);
  return a && a->longterm;
}

char Model::frame_char(Pfn p) const {
  if (owner_[raw(p)] == kNoOwner) {
    if (!memory_.is_free(p)) return 'p';  // on a CPU's page list (Q1)
    return memory_.label(p) == MigrateType::isolate ? 'i' : '.';
  }
  const Allocation& a = *live(HandleId{owner_[raw(p)]});
  if (a.family == Family::cma) return 'C';
  if (a.family == Family::contig) return 'X';
  if (a.pins) return 'P';
  switch (a.kind) {
    case Kind::movable: return 'm';
    case Kind::unmovable: return 'u';
    case Kind::reclaimable: return 'r';
  }
  return '?';
}

// ---------------------------------------------------------------------------------------
// The buddy allocator: who may use what (B3), order of attempts (B4), claiming (B5, B8, B9)

// can_steal_fallback(): a fallback is worth claiming when the block found is large
// (order >= pageblock_order / 2) or the request is unmovable or reclaimable.
bool Model::worth_claiming(MigrateType t, Order found) const {
  return found.value >= machine_.pageblock_order / 2 || t == MigrateType::unmovable || t == MigrateType::reclaimable;
}

// The smallest order >= k with a free block on list `type`: the class B4 steps 1-3 take
// from (__rmqueue_smallest).
std::optional<Model::FreeClass> Model::smallest_class(MigrateType type, Order k, int step) const {
  for (uint8_t j = k.value; j <= machine_.max_order; ++j)
    if (memory_.has_free_block(type, Order{j})) return FreeClass{type, Order{j}, step};
  return std::nullopt;
}

// find_suitable_fallback(): the first of T's fallback types (`fallbacks[]`) with a free
// block of order c.
std::optional<MigrateType> Model::fallback_type_at(MigrateType t, Order c) const {
  for (MigrateType f : fallbacks(t))
    if (memory_.has_free_block(f, c)) return f;
  return std::nullopt;
}

// Whether a request finds any block (B4 fails only when no step finds one): steps 1-3, or a
// block of a fallback type of order >= k for step 4 (both profiles take one then).
bool Model::any_block(MigrateType t, Order k, bool allow_cma) const {
  if (smallest_class(t, k, 2)) return true;
  if (t == MigrateType::movable && allow_cma && smallest_class(MigrateType::cma, k, 3)) return true;
  for (uint8_t j = k.value; j <= machine_.max_order; ++j)
    if (fallback_type_at(t, Order{j})) return true;
  return false;
}

// Rule K2: a choice of the kernel's free lists is legal when it is the head of a free block
// of exactly the class the rules settled on.
bool Model::in_class(Pfn head, const FreeClass& c) const {
  return raw(head) < machine_.pages && memory_.is_free_block(head, c.order) &&
         memory_.type_of(FreeBlock{head, c.order}) == c.type;
}

std::string Model::describe(const FreeClass& c) {
  return std::string("free blocks of order ") + num(c.order.value) + " on the " + name(c.type) + " list (the class B4 step " +
         num(c.step) + " requires)";
}

// The model's own choice, when it has no reference allocator to follow.
FreeBlock Model::lowest_in(const FreeClass& c) const {
  const auto b = memory_.lowest_free_block(c.type, c.order);
  assert(b && "B4 found a class with no block");
  return *b;
}

// impl's choice `proposed` for a block of class c, checked (K2) and followed; the lowest
// block of c without impl, or when impl's choice is not legal.
FreeBlock Model::choose(const FreeClass& c, std::optional<Pfn> proposed, const std::string& what) {
  if (consulting() && proposed) {
    if (in_class(*proposed, c)) return FreeBlock{*proposed, c.order};
    violate("K2", "impl " + what + " pfn " + num(*proposed) + ", which is not the head of one of the " + describe(c),
            *proposed);
  }
  return lowest_in(c);
}

// The head of the fallback list impl's free lists offered next (Outcome::fallback_heads),
// checked to be of class c (K2).
FreeBlock Model::fallback_head(const FreeClass& c) {
  if (consulting()) {
    if (impl_fallbacks_used_ >= impl_->fallback_heads.size()) {
      violate("K2", "impl reports no fallback block where B4 step 4 takes one of the " + describe(c), {});
    } else {
      const Pfn h = impl_->fallback_heads[impl_fallbacks_used_++];
      if (in_class(h, c)) return FreeBlock{h, c.order};
      violate("K2", "impl's fallback block at pfn " + num(h) + " is not the head of one of the " + describe(c), h);
    }
  }
  return lowest_in(c);
}

// Step 4 takes exactly the block it found: impl's block must be it.
FreeBlock Model::take_found(const FreeBlock& found, std::optional<Pfn> proposed, const std::string& what) {
  if (consulting() && proposed && *proposed != found.head)
    violate("K2",
            "impl " + what + " pfn " + num(*proposed) + ", but B4 step 4 takes the block it found at pfn " + num(found.head),
            *proposed);
  return found;
}

// B5's count (steal_suitable_fallback, try_to_steal_block), for a request of type T: the
// pageblock is claimed when its free frames plus its frames "alike" T are at least half of
// it. Alike: for a MOVABLE request the frames of movable blocks; for an UNMOVABLE or
// RECLAIMABLE request in a MOVABLE pageblock the allocated frames that are not movable
// blocks; otherwise none.
bool Model::claim_count_passes(MigrateType t, uint64_t pb) const {
  const FrameRange pageblock = memory_.pageblock_range(pb);
  uint64_t free = 0, movable = 0;
  for (uint64_t p = raw(pageblock.first); p < raw(pageblock.end()); ++p) {
    if (owner_[p] == kNoOwner) {
      ++free;
      continue;
    }
    const Allocation& a = *live(HandleId{owner_[p]});
    if (a.family == Family::block && a.kind == Kind::movable) ++movable;
  }
  uint64_t alike = 0;
  if (t == MigrateType::movable)
    alike = movable;
  else if (memory_.pageblock_label(pb) == MigrateType::movable)
    alike = raw(pageblock.count) - free - movable;
  return 2 * (free + alike) >= raw(pageblock.count);
}

// CMA and ISOLATE pageblocks are never fallbacks, so never claimed (K3).
void Model::relabel_for_claim(uint64_t pb, MigrateType t) {
  assert(memory_.pageblock_label(pb) != MigrateType::cma && memory_.pageblock_label(pb) != MigrateType::isolate);
  memory_.relabel(pb, t);
}

// Calls fn(b) for every free block b that holds a frame of pageblock pb, ascending (a block
// that starts before pb too).
template <class Fn>
void Model::for_each_free_block_in(uint64_t pb, Fn&& fn) {
  const FrameRange pageblock = memory_.pageblock_range(pb);
  for (uint64_t p = raw(pageblock.first); p < raw(pageblock.end());) {
    const auto b = memory_.containing_free_block(Pfn{p});
    if (!b) {
      ++p;
      continue;
    }
    fn(*b);
    p = raw(b->head) + raw(b->order.pages());
  }
}

// move_freepages_block (linux-6.1, B10): every free block that starts in pageblock pb goes
// on t's list.
void Model::move_pageblock_lists(uint64_t pb, MigrateType t) {
  const Pfn first = memory_.pageblock_range(pb).first;
  for_each_free_block_in(pb, [&](const FreeBlock& b) {
    if (raw(b.head) >= raw(first)) memory_.set_list(b, t);
  });
}

// Rule B4 (__rmqueue in mm/page_alloc.c) for a request of order k and type T: the block it
// takes (the request keeps its lowest 2^k frames, expand()), after step 4's relabels and
// list moves. Free frames in ISOLATE pageblocks are on no list B4 searches (B3).
//   1. T movable and more than half of the usable free frames are CMA (v5.8): CMA, smallest.
//   2. T's own list, smallest order first.
//   3. T movable: CMA, smallest.
//   4. Fallback: the profile's (B8, B9).
// `allow_cma` is false for the target of a long-term pin (P2, memalloc_pin_save), which
// skips steps 1 and 3. `proposed`: impl's block, followed where legal (K2); `what` names it
// in a violation ("allocated at", "moved h to").
std::optional<FreeBlock> Model::rmqueue(MigrateType t, Order k, bool allow_cma, std::optional<Pfn> proposed,
                                        const std::string& what) {
  const bool movable = t == MigrateType::movable;
  // (A block moved whole to ISOLATE's list left both counts, its frames past the range too:
  // set_migratetype_isolate subtracts what move_freepages_block moved, from NR_FREE_CMA_PAGES
  // as well when the pageblock was CMA.)
  const uint64_t free_cma = memory_.free_frames_labelled(MigrateType::cma) - isolate_listed_past_range_cma_;
  const uint64_t usable =
      memory_.free_frames() - memory_.free_frames_labelled(MigrateType::isolate) - isolate_listed_past_range_;
  if (movable && allow_cma && 2 * free_cma > usable)
    if (auto c = smallest_class(MigrateType::cma, k, 1)) return choose(*c, proposed, what);
  if (auto c = smallest_class(t, k, 2)) return choose(*c, proposed, what);
  if (movable && allow_cma)
    if (auto c = smallest_class(MigrateType::cma, k, 3)) return choose(*c, proposed, what);
  return profile() == Profile::linux_6_12 ? fallback_6_12(t, k, proposed, what) : fallback_6_1(t, k, proposed, what);
}

// Rule B8 (linux-6.1: __rmqueue_fallback, steal_suitable_fallback; then __rmqueue retries
// step 2). The block found: at the largest order c with a block of a fallback type, the
// first such type's list; a MOVABLE request that would not claim there (c < B/2) looks from
// the smallest order instead. Of order >= B: its pageblocks are relabelled T and it goes on
// T's list. Worth claiming: every free block of its pageblock goes on T's list, and the
// pageblock is relabelled T when B5's count passes. Otherwise it alone goes on T's list.
// Then step 2 again: the smallest block on T's list, which is one of those just moved.
std::optional<FreeBlock> Model::fallback_6_1(MigrateType t, Order k, std::optional<Pfn> proposed,
                                             const std::string& what) {
  const uint8_t B = machine_.pageblock_order;
  std::optional<uint8_t> c;
  for (int j = machine_.max_order; j >= k.value && !c; --j)
    if (fallback_type_at(t, Order{static_cast<uint8_t>(j)})) c = static_cast<uint8_t>(j);
  if (!c) return std::nullopt;
  bool can_steal = worth_claiming(t, Order{*c});
  if (!can_steal && t == MigrateType::movable && *c > k.value) {  // find_smallest
    for (uint8_t j = k.value; j <= *c; ++j)
      if (fallback_type_at(t, Order{j})) {
        c = j;
        break;
      }
    can_steal = worth_claiming(t, Order{*c});
  }
  const Order found_order{*c};
  const FreeBlock h = fallback_head(FreeClass{*fallback_type_at(t, found_order), found_order, 4});
  const uint64_t pb = memory_.pageblock_of(h.head);
  if (found_order.value >= B) {
    for (uint64_t q = pb; q < pb + (uint64_t{1} << (found_order.value - B)); ++q) relabel_for_claim(q, t);
    memory_.set_list(h, t);
  } else if (!can_steal) {
    memory_.set_list(h, t);
  } else {
    const bool claim = claim_count_passes(t, pb);
    move_pageblock_lists(pb, t);
    if (claim) relabel_for_claim(pb, t);
  }
  const auto again = smallest_class(t, k, 4);
  assert(again && "B8: step 2 retried finds a moved block");
  return choose(*again, proposed, what);
}

// Rule B9 (linux-6.12.118: __rmqueue_claim, try_to_steal_block, __rmqueue_steal). Claim:
// for c from max_order down to k, the head of the order-c list of the first fallback type
// that has one; a MOVABLE request stops claiming below B/2. Of order >= B: its pageblocks
// are relabelled T and the request takes it. Smaller: if B5's count passes, its pageblock is
// relabelled T (its free blocks with it, B11) and the request takes the smallest block of
// T; else the next order down. Steal, if nothing was claimed: the smallest order >= k with a
// fallback block, the first type's list head, taken without a relabel.
std::optional<FreeBlock> Model::fallback_6_12(MigrateType t, Order k, std::optional<Pfn> proposed,
                                              const std::string& what) {
  const uint8_t B = machine_.pageblock_order;
  for (int j = machine_.max_order; j >= k.value; --j) {
    const Order c{static_cast<uint8_t>(j)};
    const auto f = fallback_type_at(t, c);
    if (!f) continue;
    if (!worth_claiming(t, c)) break;
    const FreeBlock h = fallback_head(FreeClass{*f, c, 4});
    const uint64_t pb = memory_.pageblock_of(h.head);
    if (c.value >= B) {
      for (uint64_t q = pb; q < pb + (uint64_t{1} << (c.value - B)); ++q) relabel_for_claim(q, t);
      return take_found(h, proposed, what);
    }
    if (claim_count_passes(t, pb)) {
      relabel_for_claim(pb, t);
      const auto again = smallest_class(t, k, 4);
      assert(again && "B9: the claimed pageblock has a block for the request");
      return choose(*again, proposed, what);
    }
  }
  for (uint8_t j = k.value; j <= machine_.max_order; ++j) {
    const auto f = fallback_type_at(t, Order{j});
    if (!f) continue;
    return take_found(fallback_head(FreeClass{*f, Order{j}, 4}), proposed, what);
  }
  return std::nullopt;
}

// Rule B7's claim, for `alloc ... at=PFN` inside the free block f on another non-CMA
// type's list: what step 4 does with a block it found there (B8 under linux-6.1; B9's claim
// pass, else a steal, under linux-6.12).
void Model::claim_at(MigrateType t, const FreeBlock& f) {
  const uint8_t B = machine_.pageblock_order;
  const uint64_t pb = memory_.pageblock_of(f.head);
  if (profile() == Profile::linux_6_12) {
    if (!worth_claiming(t, f.order)) return;
    if (f.order.value >= B) {
      for (uint64_t q = pb; q < pb + (uint64_t{1} << (f.order.value - B)); ++q) relabel_for_claim(q, t);
      return;
    }
    if (claim_count_passes(t, pb)) relabel_for_claim(pb, t);
    return;
  }
  if (f.order.value >= B) {
    for (uint64_t q = pb; q < pb + (uint64_t{1} << (f.order.value - B)); ++q) relabel_for_claim(q, t);
    memory_.set_list(f, t);
  } else if (!worth_claiming(t, f.order)) {
    memory_.set_list(f, t);
  } else {
    const bool claim = claim_count_passes(t, pb);
    move_pageblock_lists(pb, t);
    if (claim) relabel_for_claim(pb, t);
  }
}

// ---------------------------------------------------------------------------------------
// Operations on blocks (M3, B7, F1, P1-P3, G1)

// Rules M3, B3-B5, K2 (alloc_pages -> get_page_from_freelist -> rmqueue): B4 names the
// free list; impl's free lists pick the block on it, which the model checks and follows.
// The request fails only when no step of B4 finds a block.
void Model::alloc(const Alloc& op, Outcome& mine) {
  if (!handle_ok(op.id, true, Family::block)) return;
  if (op.order.value > machine_.max_order) {  // alloc_pages refuses order > MAX_ORDER
    mine.reason = FailReason::invalid_request;
    return;
  }
  if (op.at) return alloc_at(op, mine);
  const MigrateType t = migratetype_of(op.kind);
  if (const auto p = take_pcp(t, op.order, true)) {  // Q3: the CPU's list first
    if (consulting() && (!impl_->ok || impl_->pfn != *p))
      violate("K2",
              "impl " + (impl_->ok ? "allocated at pfn " + num(impl_->pfn) : std::string("failed")) +
                  "; Q3 takes the newest entry of CPU " + num(cpu_) + "'s " + name(t) + " order-" +
                  num(op.order.value) + " page list, at pfn " + num(*p),
              impl_->ok ? impl_->pfn : *p);
    Allocation& a = create(op.id, Family::block, {*p, op.order.pages()}, true);
    a.kind = op.kind;
    a.order = op.order;
    mine.ok = true;
    mine.pfn = *p;
    return;
  }
  // Q3: when B4 finds nothing, every CPU's lists are drained and B4 runs again
  // (__alloc_pages_direct_reclaim: drain_all_pages).
  if (pcp_total_ && !any_block(t, op.order, true)) drain_all_pcp();
  if (!any_block(t, op.order, true)) {
    mine.reason = FailReason::no_free_block;
    if (consulting() && impl_->ok)
      violate("K2",
              "impl allocated a " + std::string(name(op.kind)) + " order-" + num(op.order.value) + " block at pfn " +
                  num(impl_->pfn) + ", but no free block is legal for it (B3, B4)",
              impl_->pfn);
    return;
  }
  if (consulting() && !impl_->ok)
    violate("L1", std::string("impl failed (") + name(impl_->reason) + ") although B4 finds a block", {});
  const std::optional<Pfn> proposed = consulting() && impl_->ok ? std::optional<Pfn>(impl_->pfn) : std::nullopt;
  const FreeBlock found = *rmqueue(t, op.order, true, proposed, "allocated at");
  Allocation& a = create(op.id, Family::block, {found.head, op.order.pages()});
  a.kind = op.kind;
  a.order = op.order;
  mine.ok = true;
  mine.pfn = found.head;
}

// Rule B7 (`alloc ... at=PFN`, hand-written traces): exactly the block [PFN, PFN + 2^k),
// which must be aligned, inside the machine and inside one free block F whose list the kind
// may use (B3: never ISOLATE; CMA only for movable). When F is on another non-CMA list the
// request claims as step 4 would have with F (claim_at). The rest of F stays free.
void Model::alloc_at(const Alloc& op, Outcome& mine) {
  const uint64_t pfn = raw(*op.at), size = raw(op.order.pages()), n = machine_.pages;
  const MigrateType t = migratetype_of(op.kind);
  mine.reason = FailReason::no_free_block;
  if (pfn % size != 0 || pfn >= n || size > n - pfn) return;
  const auto f = memory_.containing_free_block(*op.at);
  if (!f || f->order < op.order) return;
  const MigrateType ft = memory_.type_of(*f);
  if (ft == MigrateType::isolate || (ft == MigrateType::cma && op.kind != Kind::movable)) return;
  if (ft != t && ft != MigrateType::cma) claim_at(t, *f);
  Allocation& a = create(op.id, Family::block, {*op.at, op.order.pages()});
  a.kind = op.kind;
  a.order = op.order;
  mine.ok = true;
  mine.reason = FailReason::none;
  mine.pfn = *op.at;
}

// Rule F1 (__free_pages): a pinned block cannot be freed; otherwise its frames become free.
void Model::free(const Free& op, Outcome& mine) {
  if (!handle_ok(op.id, false, Family::block)) return;
  const Allocation& a = *live(op.id);
  if (a.pins) {
    mine.reason = FailReason::pinned;
    return;
  }
  mine.ok = true;
  mine.pfn = a.pfn;
  // E4: the batches' references go with the block (S7: the kernel frees the page when the
  // last batch lets go of it).
  for (auto& cpu : batches_)
    for (auto& batch : cpu) std::erase(batch, op.id);
  destroy(op.id);
}

// Rules P1, P2 (get_user_pages; pin_user_pages(FOLL_LONGTERM) ->
// check_and_migrate_movable_pages): a short-term pin just counts. A long-term pin of a block
// in a CMA pageblock first migrates it to a target outside CMA; a block already pinned cannot
// move, and with no target the pin fails. Pins nest in one count.
void Model::pin(const Pin& op, Outcome& mine) {
  if (!handle_ok(op.id, false, Family::block)) return;
  // P2: is_longterm_pinnable_page refuses MIGRATE_CMA and MIGRATE_ISOLATE alike; a pageblock
  // is ISOLATE here only under another operation's isolation (W6, concurrent runs).
  const MigrateType where = memory_.label(live(op.id)->pfn);
  if (op.longterm && (where == MigrateType::cma || where == MigrateType::isolate)) {
    // E3 (collect_longterm_unpinnable_pages, 98c6d259319e): a page of order 0 that must move
    // drains this CPU's batches and then every CPU's (a pinned small page's count is never
    // the expected one).
    if (live(op.id)->order.value == 0) drain_every_cpu();
    if (live(op.id)->pins) {
      mine.reason = FailReason::pinned;
      return;
    }
    if (!move_block(op.id, MigrateType::unmovable, false, mine)) {
      mine.reason = FailReason::no_target;
      if (consulting() && impl_->ok)
        violate("K2",
                "impl pinned " + handle(op.id) + " long-term, but no free block outside CMA is a legal target (P2, B4)",
                impl_->pfn);
      return;
    }
  }
  Allocation& a = *live(op.id);
  ++a.pins;
  if (op.longterm) a.longterm = true;
  mine.ok = true;
  mine.pfn = a.pfn;
}

// Rule P3 (unpin_user_page): drops one pin; with none, fails. The block stops being
// long-term pinned when its count returns to 0.
void Model::unpin(const Unpin& op, Outcome& mine) {
  if (!handle_ok(op.id, false, Family::block)) return;
  Allocation& a = *live(op.id);
  if (!a.pins) {
    mine.reason = FailReason::not_pinned;
    return;
  }
  if (--a.pins == 0) a.longterm = false;
  mine.ok = true;
  mine.pfn = a.pfn;
}

// Rule G1 (migrate_pages): a movable, unpinned block moves; the checks come in this order.
void Model::migrate(const Migrate& op, Outcome& mine) {
  if (!handle_ok(op.id, false, Family::block)) return;
  drain_every_cpu();  // E3: move_pages runs under lru_cache_disable (do_pages_move)
  const Allocation& a = *live(op.id);
  if (a.kind != Kind::movable) {
    mine.reason = FailReason::not_movable;
    return;
  }
  if (a.pins) {
    mine.reason = FailReason::pinned;
    return;
  }
  if (held(op.id)) {  // W8: isolate_lru_page fails, another caller's migration has it
    mine.reason = FailReason::busy;
    return;
  }
  if (!move_block(op.id, MigrateType::movable, true, mine)) {
    mine.reason = FailReason::no_target;
    if (consulting() && impl_->ok)
      violate("K2",
              "impl migrated " + handle(op.id) + " to pfn " + num(impl_->pfn) +
                  ", but no free block is a legal target (B4)",
              impl_->pfn);
    return;
  }
  mine.ok = true;
  mine.pfn = live(op.id)->pfn;
}

// Rules G1, X2, P2, K2 (migrate_pages): the target is the block a request of type
// `request` and the block's order gets from B4, claiming as B5 says: MOVABLE for migration
// (alloc_migration_target); for a long-term pin UNMOVABLE and never in CMA (P2:
// migrate_longterm_unpinnable_pages allocates it with GFP_USER under memalloc_pin_save()).
// Never in an ISOLATE pageblock, never overlapping the block itself (its frames are not
// free). impl's next reported move names the target: it must move this block from where it
// is to a block of the class B4 requires. Contents travel with the block (M5); the old
// frames become free (B2).
bool Model::move_block(HandleId h, MigrateType request, bool allow_cma_target, Outcome& mine) {
  const Allocation& a = *live(h);
  // Q3: the target comes from this CPU's page list first; else B4, after a drain when B4
  // finds nothing while the lists hold pages.
  const std::optional<Pfn> listed = take_pcp(request, a.order, allow_cma_target);
  if (!listed && pcp_total_ && !any_block(request, a.order, allow_cma_target)) drain_all_pcp();
  if (!listed && !any_block(request, a.order, allow_cma_target)) return false;  // a move impl reports anyway is caught later
  const Move* proposed = consulting() ? next_impl_move() : nullptr;
  std::optional<Pfn> to;
  if (consulting()) {
    if (!proposed)
      violate(impl_->ok ? "K2" : "L1",
              "impl did not move " + handle(h) + " from pfn " + num(a.pfn) + (impl_->ok ? "" : " and failed") +
                  ", although B4 finds a target",
              a.pfn);
    else if (proposed->handle != h || proposed->from != a.pfn)
      violate("K2",
              "impl moved " + handle(proposed->handle) + " from pfn " + num(proposed->from) + "; the model moves " +
                  handle(h) + " from pfn " + num(a.pfn) + " next",
              proposed->from);
    else {
      to = proposed->to;
      ++impl_moves_used_;
    }
  }
  const Order order = a.order;
  if (listed && to && *to != *listed)
    violate("K2",
            "impl moved " + handle(h) + " to pfn " + num(*to) + "; Q3 takes the newest entry of CPU " + num(cpu_) +
                "'s " + name(request) + " order-" + num(order.value) + " page list, at pfn " + num(*listed),
            *to);
  const FreeBlock target =
      listed ? FreeBlock{*listed, order} : *rmqueue(request, order, allow_cma_target, to, "moved " + handle(h) + " to");
  Allocation& moving = *live(h);
  const Pfn from = moving.pfn;
  const uint64_t n = raw(moving.count);
  if (!listed) memory_.set_free({target.head, moving.count}, false);
  for (uint64_t i = 0; i < n; ++i) {
    owner_[raw(target.head) + i] = raw(h);
    content_[raw(target.head) + i] = content_[raw(from) + i];
  }
  for (uint64_t i = 0; i < n; ++i) {
    owner_[raw(from) + i] = kNoOwner;
    content_[raw(from) + i] = 0;
  }
  release(from, order);
  moving.pfn = target.head;
  mine.moves.push_back(Move{h, from, target.head});
  return true;
}

// ---------------------------------------------------------------------------------------
// alloc_contig_range (X1-X5)

// Rule X1 in normal mode (has_unmovable_pages, called for the whole pageblock by
// isolate_single_pageblock): a pageblock cannot be isolated when it is CMA or any of its
// frames belongs to an unmovable or reclaimable block or a contiguous allocation.
bool Model::pageblock_unmovable(uint64_t pb) const {
  if (memory_.pageblock_label(pb) == MigrateType::cma) return true;
  const FrameRange block = memory_.pageblock_range(pb);
  for (uint64_t f = raw(block.first); f < raw(block.end()); ++f) {
    if (owner_[f] == kNoOwner) continue;
    const Allocation& a = *live(HandleId{owner_[f]});
    if (a.family != Family::block || a.kind != Kind::movable) return true;
  }
  return false;
}

// Rules X1-X5 (alloc_contig_range in mm/page_alloc.c) on the range r = [s, e):
//   X1 every pageblock intersecting [s, e) is isolated, the first, the last, then the middle
//      ones ascending (start_isolate_page_range). Normal mode only: a pageblock that
//      pageblock_unmovable() refuses makes the range busy, and the pageblocks isolated
//      before it are undone (X5).
//   X2 every movable block intersecting [s, e), in ascending order of first frame, moves
//      whole (a block straddling an edge too): a pinned one makes the range busy, one with
//      no target ends it with no memory. Moves made stay made.
//   X3 (test_pages_isolated) a frame of [s, e) still allocated: busy.
//   X5 (undo_isolate_page_range) every isolated pageblock gets the caller's type: CMA in
//      CMA mode (it was CMA), MOVABLE in normal mode, whatever it was; free frames merge by
//      themselves.
// X4, taking [s, e), is the caller's, on success.
Model::RangeResult Model::contig_range(FrameRange r, Mode mode, Outcome& mine, bool take) {
  ++mine.windows_tried;
  const uint8_t B = machine_.pageblock_order;
  const uint64_t s = raw(r.first), e = raw(r.end());
  const uint64_t first_pb = memory_.pageblock_of(r.first), last_pb = memory_.pageblock_of(Pfn{e - 1});
  const MigrateType caller = mode == Mode::cma ? MigrateType::cma : MigrateType::movable;
  // X1 in normal mode: the first pageblock refused in isolation order (first, last, then
  // the middle ones ascending); the pageblocks before it were isolated, the others not.
  // W6 (concurrency): a pageblock another operation held ISOLATE when this window was
  // isolated refuses it too (set_isolated_elsewhere's sibling, set_refusals).
  std::optional<uint64_t> foreign;
  if (refusal_ < refusals_.size() && refusals_[refusal_].first_pb == first_pb)
    foreign = refusals_[refusal_++].refused_pb;
  auto refuses = [&](uint64_t pb) { return pb == foreign || (mode == Mode::normal && pageblock_unmovable(pb)); };
  std::optional<uint64_t> refused;
  if (refuses(first_pb))
    refused = first_pb;
  else if (last_pb != first_pb && refuses(last_pb))
    refused = last_pb;
  for (uint64_t pb = first_pb + 1; !refused && pb < last_pb; ++pb)
    if (refuses(pb)) refused = pb;
  if (refused == first_pb) return RangeResult::busy_unmovable;  // nothing isolated, nothing changed
  auto isolated = [&](uint64_t pb) {
    if (!refused) return true;
    if (*refused == last_pb) return pb == first_pb;
    return pb == first_pb || pb == last_pb || pb < *refused;
  };
  // Isolating the first and the last pageblock splits a free block across the range's outer
  // edges (a CMA window's are CMA on both sides: nothing to change there).
  std::optional<FreeBlock> across_hi;  // linux-6.1: pieces that merged back across the upper edge
  if (memory_.own_lists()) {
    across_hi = split_edges_linux_6_1(first_pb, last_pb, isolated(last_pb));
  } else if (mode == Mode::normal) {
    split_outside(first_pb << B, true);
    if (isolated(last_pb)) split_outside((last_pb + 1) << B, false);
  }
  if (refused) {
    undo_isolation(first_pb, last_pb, isolated, caller, across_hi);
    return RangeResult::busy_unmovable;
  }
  RangeResult result = RangeResult::ok;
  // X7 (linux-6.12: isolate_single_pageblock): a movable block larger than a pageblock across
  // the isolated range's first or last edge fails the isolation. (linux-6.1 migrates it,
  // here with X2's moves, S5.)
  if (profile() == Profile::linux_6_12)
    for (uint64_t edge : {first_pb << B, (last_pb + 1) << B}) {
      if (edge == 0 || edge >= machine_.pages || owner_[edge - 1] == kNoOwner || owner_[edge - 1] != owner_[edge])
        continue;
      const Allocation& a = *live(HandleId{owner_[edge]});
      if (a.family == Family::block && a.kind == Kind::movable) result = RangeResult::busy_unmovable;
    }
  // E3 (__alloc_contig_migrate_range): once isolation succeeded, lru_cache_disable drains
  // every CPU's batches; no batch reference is then in the way of X2. Under the concurrent
  // checker the disable and enable are steps of their own (set_lru_events_external).
  if (result == RangeResult::ok && !lru_events_external_) drain_every_cpu();
  std::vector<HandleId> intersecting;  // ascending by first frame
  for (uint64_t f = s; f < e;) {
    if (owner_[f] == kNoOwner) {
      ++f;
      continue;
    }
    const HandleId h{owner_[f]};
    intersecting.push_back(h);
    f = raw(live(h)->range().end());
  }
  // Isolation matters to the moves of X2, whose targets must lie outside the isolated
  // pageblocks (B3), and to what the undo leaves (X5). With no movable block in the range
  // the ISOLATE labels would change nothing, so the model skips them.
  const bool moves = result == RangeResult::ok && std::any_of(intersecting.begin(), intersecting.end(), [&](HandleId h) {
                       return live(h)->family == Family::block && live(h)->kind == Kind::movable;
                     });
  // Q4: the drain frees the lists' frames into the isolated pageblocks as ISOLATE, which
  // keeps them from merging across the range's edges (B2), so then the labels matter too.
  uint8_t draining = 0;
  if (result == RangeResult::ok && !lru_events_external_) draining = 0xf;
  // Those of the candidates before this one, and of this one: one isolation (two candidates
  // can begin in the same pageblock).
  if (result == RangeResult::ok && lru_events_external_) {
    auto& d = pending_pcp_drains_;
    for (; pcp_drain_attempt_ < d.size() && d[pcp_drain_attempt_].first_pb < first_pb; ++pcp_drain_attempt_)
      draining |= d[pcp_drain_attempt_].cpus;
    if (pcp_drain_attempt_ < d.size() && d[pcp_drain_attempt_].first_pb == first_pb) draining |= d[pcp_drain_attempt_++].cpus;
  }
  bool drains = false;
  for (uint8_t c = 0; c < kCpus; ++c) drains |= (draining >> c & 1) && !pcp_[c].empty();
  if (moves || drains) {
    scratch_labels_.assign(last_pb - first_pb + 1, MigrateType::isolate);
    memory_.relabel(first_pb, scratch_labels_);
    if (memory_.own_lists())
      for (uint64_t pb = first_pb; pb <= last_pb; ++pb) move_pageblock_lists(pb, MigrateType::isolate);
    // move_freepages_block moves a whole block, also its frames past the range.
    if (across_hi) {
      memory_.set_list(*across_hi, MigrateType::isolate);
      // The kernel's free count leaves out what is on ISOLATE's lists (B4 step 1).
      isolate_listed_past_range_ = raw(across_hi->head) + raw(across_hi->order.pages()) - ((last_pb + 1) << B);
      if (memory_.label(Pfn{(last_pb + 1) << B}) == MigrateType::cma) isolate_listed_past_range_cma_ = isolate_listed_past_range_;
    }
  }
  // Q4 (drain_all_pages after start_isolate_page_range): every CPU's lists go to the buddy
  // allocator, the isolated pageblocks' frames onto ISOLATE's lists.
  for (uint8_t c = 0; c < kCpus; ++c)
    if ((draining >> c & 1) && !pcp_[c].empty()) pcp_flush(c);
  for (HandleId h : intersecting) {
    if (result != RangeResult::ok) break;
    const Allocation& a = *live(h);
    if (a.family != Family::block || a.kind != Kind::movable) continue;  // left to X3
    if (a.pins || held(h)) {  // W8: a free in flight holds it too (test_pages_isolated finds it not free)
      result = RangeResult::busy_pinned;
      break;
    }
    if (!move_block(h, MigrateType::movable, true, mine)) {
      result = RangeResult::no_memory;
      break;
    }
  }
  isolate_listed_past_range_ = 0;
  isolate_listed_past_range_cma_ = 0;
  if (result == RangeResult::ok)
    for (uint64_t f = s; f < e; ++f)
      if (owner_[f] != kNoOwner) {
        result = RangeResult::busy_unmovable;
        break;
      }
  // X3 with Q1: a frame on a page list is not free (test_pages_isolated wants PageBuddy).
  if (result == RangeResult::ok && pcp_total_ && pcp_in(r)) result = RangeResult::busy_unmovable;
  if (result == RangeResult::ok && take) {
    memory_.set_free(r, false);  // X4, while still isolated
    // The frames of the block taken past the range's end are freed page by page
    // (free_contig_range of [end, outer_end)): past the upper edge, as their labels.
    if (across_hi) {
      const uint64_t end = raw(across_hi->head) + raw(across_hi->order.pages());
      for (uint64_t p = (last_pb + 1) << B; p < end; p += uint64_t{1} << B)
        memory_.set_list(FrameRange{Pfn{p}, PageCount{uint64_t{1} << B}}, memory_.label(Pfn{p}));
    }
  }
  // (linux-6.1 split the edges in both modes: the pieces it listed ISOLATE go back too.)
  if (mode == Mode::normal || moves || drains || memory_.own_lists()) undo_isolation(first_pb, last_pb, isolated, caller, across_hi);
  return result;
}

// Isolating the pageblock at `edge` splits the free block across it (isolate_single_pageblock).
// The pieces on the outer side are the largest aligned blocks there. linux-6.1
// (split_free_page): each goes on its own label's list (B10). linux-6.12
// (move_freepages_block_isolate -> split_large_buddy): the outer pageblocks are freed one at
// a time, ascending, and merge again, so each piece takes the label of its last pageblock
// (B13).
void Model::split_outside(uint64_t edge, bool outer_below) {
  if (edge == 0 || edge >= machine_.pages) return;
  const auto b = memory_.containing_free_block(Pfn{edge - 1});
  if (!b || raw(b->head) + raw(b->order.pages()) <= edge) return;  // no free block across the edge
  const uint8_t B = machine_.pageblock_order;
  const uint64_t lo = outer_below ? raw(b->head) : edge, hi = outer_below ? edge : raw(b->head) + raw(b->order.pages());
  for (uint64_t p = lo; p < hi;) {
    uint8_t k = static_cast<uint8_t>(std::min<int>(std::countr_zero(p), std::bit_width(hi - p) - 1));
    const FrameRange piece{Pfn{p}, PageCount{uint64_t{1} << k}};
    if (memory_.own_lists()) {
      memory_.set_list(piece, memory_.label(piece.first));
    } else {
      const MigrateType last = memory_.label(Pfn{raw(piece.end()) - 1});
      for (uint64_t pb = p >> B; pb < raw(piece.end()) >> B; ++pb)
        if (memory_.pageblock_label(pb) != last) memory_.relabel(pb, last);
    }
    p = raw(piece.end());
  }
}

// linux-6.1 (start_isolate_page_range -> isolate_single_pageblock -> split_free_page, B10):
// the first pageblock is isolated and the free block across the range's lower edge split,
// then the last pageblock (if it was isolated) and the block across the upper edge, then the
// middle pageblocks. The pieces are the largest aligned blocks on either side of the edge,
// freed ascending, each as its first pageblock's type at that moment (ISOLATE for the first
// and last pageblock) and merging as B2 lets it (__free_one_page): a piece whose first
// pageblock is a middle one merges again with the pieces past the upper edge. Each block so
// made goes on the list of the piece freed last into it. Returns the block that crosses the
// upper edge after that, if any: it spans pageblocks B2 keeps apart once the middle ones are
// isolated, which the derived blocks cannot show, so its list is set as a whole.
std::optional<FreeBlock> Model::split_edges_linux_6_1(uint64_t first_pb, uint64_t last_pb, bool last_isolated) {
  const uint8_t B = machine_.pageblock_order;
  const uint64_t lo = first_pb << B, hi = (last_pb + 1) << B;
  auto fenced = [](MigrateType t) { return t == MigrateType::cma || t == MigrateType::isolate; };
  std::optional<FreeBlock> across_hi;
  auto split = [&](uint64_t edge, bool last_done) {
    if (edge == 0 || edge >= machine_.pages) return;
    auto b = memory_.containing_free_block(Pfn{edge - 1});
    if (!b || raw(b->head) + raw(b->order.pages()) <= edge) return;
    uint64_t head = raw(b->head), end = head + raw(b->order.pages());
    if (edge == hi && head < lo) {  // the lower edge's split made the block across this one
      for (uint64_t p = lo; p < end;) {
        const uint64_t size = uint64_t{1} << std::min<int>(std::countr_zero(p), std::bit_width(end - p) - 1);
        if (p + size > edge - 1) {
          head = p;
          end = p + size;
          break;
        }
        p += size;
      }
      if (end <= edge) return;
    }
    auto type_at = [&](uint64_t p) {
      const uint64_t pb = p >> B;
      return pb == first_pb || (last_done && pb == last_pb) ? MigrateType::isolate : memory_.pageblock_label(pb);
    };
    struct Piece {
      uint64_t head;
      uint8_t order;
      MigrateType list;
    };
    std::vector<Piece> made;
    for (uint64_t p = head; p < end;) {
      const uint64_t limit = p < edge ? edge : end;
      Piece piece{p, static_cast<uint8_t>(std::min<int>(std::countr_zero(p), std::bit_width(limit - p) - 1)), type_at(p)};
      p += uint64_t{1} << piece.order;
      while (piece.order < machine_.max_order) {
        const uint64_t buddy = piece.head ^ (uint64_t{1} << piece.order);
        auto it = std::find_if(made.begin(), made.end(), [&](const Piece& m) { return m.head == buddy && m.order == piece.order; });
        if (it == made.end()) break;
        const MigrateType other = type_at(buddy);
        if (piece.order >= B && piece.list != other && (fenced(piece.list) || fenced(other))) break;
        made.erase(it);
        piece.head = std::min(piece.head, buddy);
        ++piece.order;
      }
      made.push_back(piece);
    }
    for (const Piece& m : made) {
      const FreeBlock block{Pfn{m.head}, Order{m.order}};
      memory_.set_list(block, m.list);
      if (edge == hi && m.head < hi && m.head + (uint64_t{1} << m.order) > hi) across_hi = block;
    }
  };
  split(lo, false);
  if (last_isolated) split(hi, true);
  return across_hi;
}

// X5 (undo_isolate_page_range -> unset_migratetype_isolate(page, migratetype)): every
// isolated pageblock gets the caller's type, whatever it was, and its free frames merge again
// (B2). linux-6.1 (B10): the free blocks that start in an isolated pageblock go on the
// caller's list (move_freepages_block), and so does a block re-merged across a split edge
// (__putback_isolated_page). linux-6.12 (B13): the kernel split every free block larger than
// a pageblock that held an isolated pageblock, so every free block that now holds frames of
// one was re-merged as the caller's type: all its pageblocks take that label.
template <class Isolated>
void Model::undo_isolation(uint64_t first_pb, uint64_t last_pb, Isolated&& isolated, MigrateType caller,
                           const std::optional<FreeBlock>& across_hi) {
  const uint8_t B = machine_.pageblock_order;
  for (uint64_t pb = first_pb; pb <= last_pb; ++pb)
    if (isolated(pb) && memory_.pageblock_label(pb) != caller) memory_.relabel(pb, caller);
  for (uint64_t pb = first_pb; pb <= last_pb; ++pb) {
    if (!isolated(pb)) continue;
    if (memory_.own_lists())
      move_pageblock_lists(pb, caller);
    else
      for_each_free_block_in(pb, [&](const FreeBlock& b) { relabel_pageblocks_of(b, caller); });
  }
  if (!memory_.own_lists()) return;
  for (uint64_t edge : {first_pb << B, (last_pb + 1) << B}) {
    const uint64_t inner_pb = edge == first_pb << B ? first_pb : last_pb;
    if (!isolated(inner_pb) || edge == 0 || edge >= machine_.pages) continue;
    const auto b = memory_.containing_free_block(Pfn{edge - 1});
    if (!b || raw(b->head) + raw(b->order.pages()) <= edge) continue;
    // The block the upper edge's split merged back, headed in a middle pageblock the failed
    // isolation never reached: nothing moves it (B10).
    if (b == across_hi && !isolated(memory_.pageblock_of(b->head))) continue;
    memory_.set_list(*b, caller);
  }
}

// ---------------------------------------------------------------------------------------
// CMA areas (A1-A6, R1, R2)

// Rule A2 (cma_bitmap_aligned_mask/offset, as fixed in 2017): alignment is physical. Bit j
// is a candidate when its first frame base + (j << order_per_bit) is a multiple of 2^align;
// with align <= order_per_bit every bit is.
bool Model::aligned(const Area& a, uint64_t j, Order align) const {
  if (align.value <= a.decl.order_per_bit) return true;
  return (raw(a.decl.base) + (j << a.decl.order_per_bit)) % raw(align.pages()) == 0;
}

// Rule A3 (bitmap_find_next_zero_area_off): the lowest aligned j >= start with bits
// [j, j + nbits) clear and j + nbits within the bitmap. (Skipping past a set bit i is safe:
// every aligned j' <= i whose window reaches i contains it.)
std::optional<uint64_t> Model::find_window(const Area& a, uint64_t start, uint64_t nbits, Order align) const {
  const uint64_t len = a.bits.size();
  const uint8_t o = a.decl.order_per_bit;
  uint64_t j = start;
  while (j < len) {
    if (align.value > o) {  // round the frame of bit j up to the next multiple of 2^align
      const uint64_t frame = raw(a.decl.base) + (j << o), size = raw(align.pages());
      const uint64_t up = frame % size == 0 ? frame : frame - frame % size + size;
      j = (up - raw(a.decl.base)) >> o;
    }
    assert(j >= len || aligned(a, j, align));
    if (j >= len || nbits > len - j) return std::nullopt;
    uint64_t i = j;
    while (i < j + nbits && !a.bits[i]) ++i;
    if (i == j + nbits) return j;
    j = i + 1;
  }
  return std::nullopt;
}

// W1 (docs/concurrency.md): cma_alloc searches under cma->lock and keeps no lock while it
// migrates, so a search also skips the bits a concurrent caller had reserved, or a
// concurrent cma_release had not cleared yet, at that instant. The view names them, per
// search of the operation; with no view (sequential runs) this is find_window.
std::optional<uint64_t> Model::search_with_view(Area& a, AreaId area, uint32_t attempt, uint64_t start,
                                                uint64_t nbits, Order align) {
  std::vector<uint64_t>& lent = scratch_view_bits_;
  lent.clear();
  for (const ReservedView& v : reserved_view_)
    if (v.attempt == attempt && v.area == area)
      for (uint64_t b = v.first_bit; b < v.first_bit + v.nbits && b < a.bits.size(); ++b)
        if (!a.bits[b]) {
          a.bits[b] = 1;
          lent.push_back(b);
        }
  const auto j = find_window(a, start, nbits, align);
  for (uint64_t b : lent) a.bits[b] = 0;
  return j;
}

void Model::set_bits(Area& a, uint64_t first, uint64_t n, bool value) {
  for (uint64_t i = first; i < first + n; ++i) a.bits[i] = value;
}

// Rule M7 (debugfs `used` and `maxchunk`: cma_used_get, cma_maxchunk_get): pages, not bits;
// each bit stands for 2^order_per_bit pages (D5 and D6 were this unit mix-up).
// The bitmap is taken run by run: a run of clear bits, then a run of set bits, and so on
// (memchr finds where each ends).
AreaStats Model::area_stats(AreaId id) const {
  const Area& a = areas_[raw(id)];
  const uint8_t* const end = a.bits.data() + a.bits.size();
  auto find = [&](const uint8_t* from, uint8_t bit) {
    const void* at = std::memchr(from, bit, static_cast<size_t>(end - from));
    return at ? static_cast<const uint8_t*>(at) : end;
  };
  uint64_t set = 0, longest = 0;
  for (const uint8_t* p = a.bits.data(); p != end;) {
    const uint8_t* clear_end = find(p, 1);
    longest = std::max<uint64_t>(longest, static_cast<uint64_t>(clear_end - p));
    p = clear_end == end ? end : find(clear_end, 0);
    set += static_cast<uint64_t>(p - clear_end);
  }
  return AreaStats{set << a.decl.order_per_bit, longest << a.decl.order_per_bit};
}

// Rules A1-A6 (cma_alloc in mm/cma.c):
//   A1 count 0, or more chunks than the bitmap has: invalid request.
//   A3 search the lowest free aligned window from bit `start` (initially 0);
//   A4 set its bits and run alloc_contig_range in CMA mode on exactly `count` frames from
//      its first frame. Success ends the call. Busy: clear the bits and search again from
//      j + mask + 1 (the next aligned bit; mask = 2^(align - order_per_bit) - 1, or 0), so
//      lower bits are never revisited. No memory: clear the bits and fail the call.
//   No (further) window: busy if a window was tried, else no window.
//   A5 the unused frames of the last chunk stay free in the buddy allocator.
void Model::cma_alloc(const CmaAlloc& op, Outcome& mine) {
  if (!handle_ok(op.id, true, Family::cma)) return;
  Area& a = areas_[raw(op.area)];
  const uint8_t o = a.decl.order_per_bit;
  const uint64_t count = raw(op.count), nbits = bits_for(count, o);
  if (count == 0 || nbits > a.bits.size()) {
    mine.reason = FailReason::invalid_request;
    return;
  }
  const uint64_t next_aligned_step = op.align.value > o ? uint64_t{1} << (op.align.value - o) : 1;  // mask + 1
  uint64_t start = 0;
  bool tried = false;
  uint32_t attempt = 0;
  while (const auto j = search_with_view(a, op.area, attempt++, start, nbits, op.align)) {
    set_bits(a, *j, nbits, true);
    const FrameRange window{a.decl.base + PageCount{*j << o}, op.count};
    const RangeResult result = contig_range(window, Mode::cma, mine, true);
    if (result == RangeResult::ok) {
      create(op.id, Family::cma, window, true).area = op.area;
      mine.ok = true;
      mine.pfn = window.first;
      return;
    }
    set_bits(a, *j, nbits, false);
    if (result == RangeResult::no_memory) {
      mine.reason = FailReason::no_memory;
      return;
    }
    tried = true;
    ++(result == RangeResult::busy_pinned ? mine.busy_pinned : mine.busy_unmovable);
    start = *j + next_aligned_step;
  }
  mine.reason = tried ? FailReason::busy : FailReason::no_window;
}

// Rule R1 (cma_release in mm/cma.c): the frames are freed first, then the allocation's bits
// [(pfn - base) >> order_per_bit, + ceil(count / 2^order_per_bit)) are cleared.
void Model::cma_release(HandleId h, Outcome& mine) {
  const Allocation& a = *live(h);
  Area& area = areas_[raw(a.area)];
  const uint8_t o = area.decl.order_per_bit;
  const uint64_t first_bit = raw(a.pfn - area.decl.base) >> o;
  const uint64_t nbits = bits_for(raw(a.count), o);
  mine.ok = true;
  mine.pfn = a.pfn;
  destroy(h);
  set_bits(area, first_bit, nbits, false);
}

// Rule R2: a raw release succeeds only for exactly one live cma_alloc allocation of that
// area, with that first frame and count; anything else changes nothing. (cmacheck is
// stricter than the kernel here, which checks only that the pfn lies in the area.)
void Model::cma_release_raw(const CmaReleaseRaw& op, Outcome& mine) {
  const uint64_t p = raw(op.pfn);
  if (p < machine_.pages && owner_[p] != kNoOwner) {
    const HandleId h{owner_[p]};
    const Allocation& a = *live(h);
    if (a.family == Family::cma && a.area == op.area && a.pfn == op.pfn && a.count == op.count) {
      cma_release(h, mine);
      mine.ended = h;
      return;
    }
  }
  mine.reason = FailReason::not_handed_out;
}

// ---------------------------------------------------------------------------------------
// alloc_contig_pages (C1-C3)

// Rules C1, C2 (alloc_contig_pages in mm/page_alloc.c): candidates [s, s + count) for
// s = 0, count, 2 count, ... while inside the machine, each tried with alloc_contig_range in
// normal mode; the first success is the result. Failure: invalid request for count 0, no
// window when no candidate fits, else the reason of the last candidate tried.
void Model::alloc_contig(const AllocContig& op, Outcome& mine) {
  if (!handle_ok(op.id, true, Family::contig)) return;
  const uint64_t count = raw(op.count), n = machine_.pages;
  if (count == 0) {
    mine.reason = FailReason::invalid_request;
    return;
  }
  mine.reason = FailReason::no_window;
  for (uint64_t s = 0; count <= n && s <= n - count; s += count) {
    const FrameRange candidate{Pfn{s}, op.count};
    const RangeResult result = contig_range(candidate, Mode::normal, mine, true);
    if (result == RangeResult::ok) {
      create(op.id, Family::contig, candidate, true);
      mine.ok = true;
      mine.pfn = candidate.first;
      mine.reason = FailReason::none;
      return;
    }
    mine.reason = result == RangeResult::no_memory ? FailReason::no_memory : FailReason::busy;
    if (result == RangeResult::busy_pinned) ++mine.busy_pinned;
    if (result == RangeResult::busy_unmovable) ++mine.busy_unmovable;
  }
}

// Rule C3 (free_contig_range): the frames become free.
void Model::free_contig(const FreeContig& op, Outcome& mine) {
  if (!handle_ok(op.id, false, Family::contig)) return;
  mine.ok = true;
  mine.pfn = live(op.id)->pfn;
  destroy(op.id);
}

// ---------------------------------------------------------------------------------------
// The model checking itself (for tests)

std::optional<std::string> Model::self_check() const {
  if (auto m = memory_.self_check()) return m;
  // Q1: a frame on a page list is neither free nor owned, and on one list once.
  thread_local std::vector<uint8_t> listed;
  listed.assign(machine_.pages, 0);
  uint64_t listed_pages = 0;
  for (uint8_t c = 0; c < kCpus; ++c) {
    uint64_t pages = 0;
    for (const PcpEntry& e : pcp_[c]) {
      pages += raw(e.order.pages());
      for (uint64_t p = raw(e.head); p < raw(e.head) + raw(e.order.pages()); ++p) {
        if (p >= machine_.pages || listed[p]) return "frame " + num(p) + " is on two page lists, or outside (Q1)";
        listed[p] = 1;
      }
    }
    if (pages != pcp_pages_[c]) return "CPU " + num(c) + "'s page-list count drifted (Q5)";
    if (pages && pages >= machine_.pcp_high) return "CPU " + num(c) + "'s page lists reached high unflushed (Q2)";
    listed_pages += pages;
  }
  if (listed_pages != pcp_total_) return "the page-list total drifted (Q5)";
  for (uint64_t p = 0; p < machine_.pages; ++p) {
    const bool owned = owner_[p] != kNoOwner;
    if (listed[p] && (owned || memory_.is_free(Pfn{p}))) return "frame " + num(p) + " is on a page list and free or owned (Q1)";
    if (!listed[p] && owned == memory_.is_free(Pfn{p})) return "frame " + num(p) + " is both free and owned, or neither (I1)";
    if (owned && !live(HandleId{owner_[p]})) return "frame " + num(p) + " is owned by a dead handle";
    if (owned && !live(HandleId{owner_[p]})->range().contains(Pfn{p}))
      return "frame " + num(p) + " is owned by an allocation that does not cover it";
  }
  for (uint64_t pb = 0; pb < memory_.pageblocks(); ++pb)
    if (memory_.pageblock_label(pb) == MigrateType::isolate) return "pageblock " + num(pb) + " is left ISOLATE (X5)";
  for (uint32_t h = 0; h < allocs_.size(); ++h) {
    const Allocation* a = live(HandleId{h});
    if (!a) continue;
    for (uint64_t p = raw(a->pfn); p < raw(a->range().end()); ++p)
      if (owner_[p] != h) return handle(HandleId{h}) + " does not own its frame " + num(p);
  }
  for (size_t i = 0; i < areas_.size(); ++i) {  // I5
    const Area& area = areas_[i];
    const uint8_t o = area.decl.order_per_bit;
    for (uint64_t j = 0; j < area.bits.size(); ++j) {
      const FrameRange chunk{area.decl.base + PageCount{j << o}, PageCount{uint64_t{1} << o}};
      bool owned = false;
      for (uint64_t p = raw(chunk.first); p < raw(chunk.end()) && !owned; ++p)
        owned = owner_[p] != kNoOwner && live(HandleId{owner_[p]})->family == Family::cma &&
                live(HandleId{owner_[p]})->area == AreaId{static_cast<uint32_t>(i)};
      if (owned != bool(area.bits[j])) return "bit " + num(j) + " of area " + area.decl.name + " disagrees with I5";
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------
// Transient references (E1-E4)

// E1 (folio_add_lru, folio_activate, mlock_folio): a movable block gets a reference in the
// issuing CPU's batch; kernel pages are not on the LRU. The batch lets go at once of a block
// of order > 0 (a large folio), of every add while lru_cache_disable is in force, and of all
// it holds when an add fills it (PAGEVEC_SIZE: 15 in linux-6.1, 31 in linux-6.12).
void Model::touch(const Touch& op, Outcome& mine) {
  if (!handle_ok(op.id, false, Family::block)) return;
  const Allocation& a = *live(op.id);
  if (a.kind != Kind::movable) {
    mine.reason = FailReason::not_movable;
    return;
  }
  mine.ok = true;
  mine.pfn = a.pfn;
  if (a.order.value > 0 || lru_disabled_ > 0) return;
  auto& batch = batches_[cpu_][static_cast<size_t>(op.batch)];
  batch.push_back(op.id);
  if (batch.size() == batch_capacity(profile())) batch.clear();
}

// E2 (lru_add_drain): the issuing CPU's batches let go.
void Model::lru_drain(Outcome& mine) {
  for (auto& batch : batches_[cpu_]) batch.clear();
  mine.ok = true;
}

void Model::drain_every_cpu() {
  for (auto& cpu : batches_)
    for (auto& batch : cpu) batch.clear();
}

void Model::lru_cache_disable() {
  ++lru_disabled_;
  drain_every_cpu();
}

void Model::lru_cache_enable() {
  if (lru_disabled_) --lru_disabled_;
}

uint64_t Model::batched() const {
  uint64_t n = 0;
  for (const auto& cpu : batches_)
    for (const auto& batch : cpu) n += batch.size();
  return n;
}

void Model::batch_entries(std::vector<uint64_t>& into) const {
  into.clear();
  for (uint8_t c = 0; c < kCpus; ++c)
    for (Batch b : kBatches)
      for (HandleId h : batches_[c][static_cast<size_t>(b)]) into.push_back(batch_entry(c, b, h));
  std::sort(into.begin(), into.end());
}

}  // namespace cmacheck::model
