#include "model/model.h"

#include <algorithm>
#include <array>
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
      memory_(machine.pages, machine.pageblock_order, machine.max_order, cma_ranges(areas), std::move(recycled.memory)),
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

std::optional<Violation> Model::apply(const Op& op, const Outcome& impl, Outcome& mine) { return run(op, &impl, mine); }

void Model::apply_alone(const Op& op, Outcome& mine) { run(op, nullptr, mine); }

std::optional<Violation> Model::run(const Op& op, const Outcome* impl, Outcome& mine) {
  mine.clear();
  impl_ = impl;
  impl_moves_used_ = 0;
  violation_.reset();
  // One case per operation and no generic one: an operation the model does not handle does
  // not compile (trace/ops.h).
  std::visit(overloaded{
                 [&](const Alloc& o) { alloc(o, mine); },
                 [&](const Free& o) { free(o, mine); },
                 [&](const Pin& o) { pin(o, mine); },
                 [&](const Unpin& o) { unpin(o, mine); },
                 [&](const Migrate& o) { migrate(o, mine); },
                 [&](const CmaAlloc& o) { cma_alloc(o, mine); },
                 [&](const CmaRelease& o) {
                   if (handle_ok(o.id, false, Family::cma)) cma_release(o.id, mine);
                 },
                 [&](const CmaReleaseRaw& o) { cma_release_raw(o, mine); },
                 [&](const AllocContig& o) { alloc_contig(o, mine); },
                 [&](const FreeContig& o) { free_contig(o, mine); },
             },
             op);
  // K2: every block impl moved must be a block the model moved, in the same order.
  if (consulting() && impl_moves_used_ < impl_->moves.size()) {
    const Move& m = impl_->moves[impl_moves_used_];
    violate("K2",
            "impl moved " + handle(m.handle) + " from pfn " + num(m.from) + " to " + num(m.to) +
                ", but the model moves no further block in this operation",
            m.from);
  }
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
// writes content_value(k, i) into its i-th frame.
Model::Allocation& Model::create(HandleId h, Family family, FrameRange r) {
  if (raw(h) >= allocs_.size()) allocs_.resize(raw(h) + 1);
  Allocation& a = allocs_[raw(h)].emplace();
  a.family = family;
  a.pfn = r.first;
  a.count = r.count;
  memory_.set_free(r, false);
  ++serial_;
  for (uint64_t i = 0; i < raw(r.count); ++i) {
    owner_[raw(r.first) + i] = raw(h);
    content_[raw(r.first) + i] = content_value(serial_, i);
  }
  return a;
}

// Rules F1, R1, C3: the frames become free; merging (B2) follows from the derived blocks.
void Model::destroy(HandleId h) {
  const FrameRange r = live(h)->range();
  for (uint64_t p = raw(r.first); p < raw(r.end()); ++p) {
    owner_[p] = kNoOwner;
    content_[p] = 0;
  }
  memory_.set_free(r, true);
  allocs_[raw(h)].reset();
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
  if (owner_[raw(p)] == kNoOwner) return memory_.label(p) == MigrateType::isolate ? 'i' : '.';
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
// The buddy allocator: who may use what (B3), order of attempts (B4), claiming (B5)

// can_steal_fallback(): a fallback is worth claiming when the block found is large
// (order >= pageblock_order / 2) or the request is unmovable or reclaimable.
bool Model::worth_claiming(MigrateType t, Order found) const {
  return found.value >= machine_.pageblock_order / 2 || t == MigrateType::unmovable || t == MigrateType::reclaimable;
}

// Rule B4 (__rmqueue, __rmqueue_smallest, __rmqueue_cma_fallback, __rmqueue_fallback in
// mm/page_alloc.c): which free list, (type, order), a request of order k and type T takes
// its block from. Free frames in ISOLATE pageblocks are on no list B4 searches (B3).
//   1. T movable and more than half of the usable free frames are CMA (v5.8): CMA, smallest.
//   2. T's own list, smallest order first.
//   3. T movable: CMA, smallest.
//   4. Fallback: the other non-CMA types, largest order first; a movable request that would
//      not claim (B5) takes the smallest fallback block instead, to spare large blocks.
// `allow_cma` is false for the target of a long-term pin (P2, memalloc_pin_save), which
// skips steps 1 and 3.
std::optional<Model::FreeClass> Model::b4_class(MigrateType t, Order k, bool allow_cma) const {
  const uint8_t max = machine_.max_order;
  const bool movable = t == MigrateType::movable;
  auto smallest = [&](MigrateType type) -> std::optional<Order> {
    for (uint8_t j = k.value; j <= max; ++j)
      if (memory_.has_free_block(type, Order{j})) return Order{j};
    return std::nullopt;
  };
  const uint64_t free_cma = memory_.free_frames_labelled(MigrateType::cma);
  const uint64_t usable = memory_.free_frames() - memory_.free_frames_labelled(MigrateType::isolate);
  if (movable && allow_cma && 2 * free_cma > usable)
    if (auto j = smallest(MigrateType::cma)) return FreeClass{MigrateType::cma, *j, 1};
  if (auto j = smallest(t)) return FreeClass{t, *j, 2};
  if (movable && allow_cma)
    if (auto j = smallest(MigrateType::cma)) return FreeClass{MigrateType::cma, *j, 3};
  std::optional<FreeClass> largest;
  for (int j = max; j >= k.value && !largest; --j)
    for (MigrateType f : fallbacks(t))
      if (memory_.has_free_block(f, Order{static_cast<uint8_t>(j)})) {
        largest = FreeClass{f, Order{static_cast<uint8_t>(j)}, 4};
        break;
      }
  if (largest && movable && !worth_claiming(t, largest->order) && largest->order > k) {
    for (uint8_t j = k.value; j <= max; ++j)
      for (MigrateType f : fallbacks(t))
        if (memory_.has_free_block(f, Order{j})) return FreeClass{f, Order{j}, 4};
  }
  return largest;
}

// Rule K2: a choice of the kernel's free lists is legal when it is the head of a free block
// of exactly the class B4 settled on. (The block found is split by expand(), which keeps
// the lowest 2^k frames: the allocation starts at the head.)
bool Model::in_class(Pfn head, const FreeClass& c) const {
  return raw(head) < machine_.pages && memory_.is_free_block(head, c.order) && memory_.label(head) == c.type;
}

std::string Model::describe(const FreeClass& c) {
  return std::string("free ") + name(c.type) + " blocks of order " + num(c.order.value) + " (the class B4 step " +
         num(c.step) + " requires)";
}

// The model's own choice, when it has no reference allocator to follow.
FreeBlock Model::lowest_in(const FreeClass& c) const {
  const auto b = memory_.lowest_free_block(c.type, c.order);
  assert(b && "B4 found a class with no block");
  return *b;
}

// Rule B5 (can_steal_fallback, steal_suitable_fallback in mm/page_alloc.c), for a request
// of type T that falls back (B4 step 4, or B7 at a block of another non-CMA type): a found
// block of order >= pageblock_order relabels every pageblock it covers to T. A smaller one,
// if worth claiming, relabels its pageblock when the pageblock's free frames plus its
// frames "alike" T are at least half of it, counted before the block is taken. Alike: for a
// movable request, frames of movable blocks; for an unmovable or reclaimable request in a
// MOVABLE pageblock, the allocated frames that are not movable blocks; otherwise none.
// CMA and ISOLATE pageblocks are never fallbacks, so never claimed (K3).
void Model::claim(MigrateType t, const FreeBlock& found) {
  const uint8_t B = machine_.pageblock_order;
  const uint64_t first_pb = memory_.pageblock_of(found.head);
  auto relabel = [&](uint64_t pb) {
    assert(memory_.pageblock_label(pb) != MigrateType::cma && memory_.pageblock_label(pb) != MigrateType::isolate);
    memory_.relabel(pb, t);
  };
  if (found.order.value >= B) {
    for (uint64_t pb = first_pb; pb < first_pb + (uint64_t{1} << (found.order.value - B)); ++pb) relabel(pb);
    return;
  }
  if (!worth_claiming(t, found.order)) return;
  const FrameRange pageblock = memory_.pageblock_range(first_pb);
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
  else if (memory_.pageblock_label(first_pb) == MigrateType::movable)
    alike = raw(pageblock.count) - free - movable;
  if (2 * (free + alike) >= raw(pageblock.count)) relabel(first_pb);
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
  const auto c = b4_class(t, op.order, true);
  if (!c) {
    mine.reason = FailReason::no_free_block;
    if (consulting() && impl_->ok)
      violate("K2",
              "impl allocated a " + std::string(name(op.kind)) + " order-" + num(op.order.value) + " block at pfn " +
                  num(impl_->pfn) + ", but no free block is legal for it (B3, B4)",
              impl_->pfn);
    return;
  }
  std::optional<FreeBlock> chosen;
  if (consulting()) {
    if (!impl_->ok)
      violate("L1", std::string("impl failed (") + name(impl_->reason) + ") although there are " + describe(*c),
              lowest_in(*c).head);
    else if (!in_class(impl_->pfn, *c))
      violate("K2",
              "impl allocated at pfn " + num(impl_->pfn) + ", which is not the head of one of the " + describe(*c),
              impl_->pfn);
    else
      chosen = FreeBlock{impl_->pfn, c->order};
  }
  const FreeBlock found = chosen ? *chosen : lowest_in(*c);
  if (c->step == 4) claim(t, found);  // B5 happens before the block is split
  Allocation& a = create(op.id, Family::block, {found.head, op.order.pages()});
  a.kind = op.kind;
  a.order = op.order;
  mine.ok = true;
  mine.pfn = found.head;
}

// Rule B7 (`alloc ... at=PFN`, hand-written traces): exactly the block [PFN, PFN + 2^k),
// which must be aligned, inside the machine and inside one free block F whose type the kind
// may use (B3: never ISOLATE; CMA only for movable). When F is on another non-CMA list the
// request claims as if step 4 had found F (B5). The rest of F stays free.
void Model::alloc_at(const Alloc& op, Outcome& mine) {
  const uint64_t pfn = raw(*op.at), size = raw(op.order.pages()), n = machine_.pages;
  const MigrateType t = migratetype_of(op.kind);
  mine.reason = FailReason::no_free_block;
  if (pfn % size != 0 || pfn >= n || size > n - pfn) return;
  const auto f = memory_.containing_free_block(*op.at);
  if (!f || f->order < op.order) return;
  const MigrateType ft = memory_.type_of(*f);
  if (ft == MigrateType::isolate || (ft == MigrateType::cma && op.kind != Kind::movable)) return;
  if (ft != t && ft != MigrateType::cma) claim(t, *f);
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
  destroy(op.id);
}

// Rules P1, P2 (get_user_pages; pin_user_pages(FOLL_LONGTERM) ->
// check_and_migrate_movable_pages): a short-term pin just counts. A long-term pin of a block
// in a CMA pageblock first migrates it to a target outside CMA; a block already pinned cannot
// move, and with no target the pin fails. Pins nest in one count.
void Model::pin(const Pin& op, Outcome& mine) {
  if (!handle_ok(op.id, false, Family::block)) return;
  if (op.longterm && memory_.label(live(op.id)->pfn) == MigrateType::cma) {
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
  const Allocation& a = *live(op.id);
  if (a.kind != Kind::movable) {
    mine.reason = FailReason::not_movable;
    return;
  }
  if (a.pins) {
    mine.reason = FailReason::pinned;
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
  const Move* proposed = consulting() ? next_impl_move() : nullptr;
  const auto c = b4_class(request, a.order, allow_cma_target);
  if (!c) return false;  // a move impl reports anyway is caught by the caller or by run()
  std::optional<FreeBlock> chosen;
  if (consulting()) {
    if (!proposed)
      violate(impl_->ok ? "K2" : "L1",
              "impl did not move " + handle(h) + " from pfn " + num(a.pfn) + (impl_->ok ? "" : " and failed") +
                  ", although there are " + describe(*c),
              a.pfn);
    else if (proposed->handle != h || proposed->from != a.pfn)
      violate("K2",
              "impl moved " + handle(proposed->handle) + " from pfn " + num(proposed->from) + "; the model moves " +
                  handle(h) + " from pfn " + num(a.pfn) + " next",
              proposed->from);
    else if (!in_class(proposed->to, *c))
      violate("K2",
              "impl moved " + handle(h) + " to pfn " + num(proposed->to) + ", which is not the head of one of the " +
                  describe(*c),
              proposed->to);
    else {
      chosen = FreeBlock{proposed->to, c->order};
      ++impl_moves_used_;
    }
  }
  const FreeBlock target = chosen ? *chosen : lowest_in(*c);
  if (c->step == 4) claim(request, target);
  Allocation& moving = *live(h);
  const Pfn from = moving.pfn;
  const uint64_t n = raw(moving.count);
  memory_.set_free({target.head, moving.count}, false);
  for (uint64_t i = 0; i < n; ++i) {
    owner_[raw(target.head) + i] = raw(h);
    content_[raw(target.head) + i] = content_[raw(from) + i];
  }
  for (uint64_t i = 0; i < n; ++i) {
    owner_[raw(from) + i] = kNoOwner;
    content_[raw(from) + i] = 0;
  }
  memory_.set_free({from, moving.count}, true);
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

// Pageblocks first_pb, first_pb + 1, ... get `labels` (one change over the range, skipped
// when nothing would change and nothing was relabelled since).
void Model::relabel_if_changed(uint64_t first_pb, const std::vector<MigrateType>& labels, bool changed) {
  for (size_t i = 0; i < labels.size() && !changed; ++i) changed = memory_.pageblock_label(first_pb + i) != labels[i];
  if (changed) memory_.relabel(first_pb, labels);
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
Model::RangeResult Model::contig_range(FrameRange r, Mode mode, Outcome& mine) {
  ++mine.windows_tried;
  const uint64_t s = raw(r.first), e = raw(r.end());
  const uint64_t first_pb = memory_.pageblock_of(r.first), last_pb = memory_.pageblock_of(Pfn{e - 1});
  const uint64_t pageblocks = last_pb - first_pb + 1;
  // The labels the isolated pageblocks end with (X5); the others keep theirs.
  std::vector<MigrateType> after(pageblocks);
  for (uint64_t i = 0; i < pageblocks; ++i) after[i] = memory_.pageblock_label(first_pb + i);
  const MigrateType caller = mode == Mode::cma ? MigrateType::cma : MigrateType::movable;
  if (mode == Mode::normal) {
    std::vector<uint64_t> order{first_pb};
    if (last_pb != first_pb) order.push_back(last_pb);
    for (uint64_t pb = first_pb + 1; pb < last_pb; ++pb) order.push_back(pb);
    for (uint64_t pb : order) {
      if (pageblock_unmovable(pb)) {
        relabel_if_changed(first_pb, after, false);
        return RangeResult::busy_unmovable;
      }
      after[pb - first_pb] = caller;
    }
  }
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
  // Isolation matters only to the moves of X2, whose targets must lie outside the isolated
  // pageblocks (B3). With no movable block in the range, the ISOLATE labels would change
  // nothing (the free frames merge back by themselves), so the model skips them.
  const bool moves = std::any_of(intersecting.begin(), intersecting.end(), [&](HandleId h) {
    return live(h)->family == Family::block && live(h)->kind == Kind::movable;
  });
  if (moves) memory_.relabel(first_pb, std::vector<MigrateType>(pageblocks, MigrateType::isolate));
  RangeResult result = RangeResult::ok;
  for (HandleId h : intersecting) {
    const Allocation& a = *live(h);
    if (a.family != Family::block || a.kind != Kind::movable) continue;  // left to X3
    if (a.pins) {
      result = RangeResult::busy_pinned;
      break;
    }
    if (!move_block(h, MigrateType::movable, true, mine)) {
      result = RangeResult::no_memory;
      break;
    }
  }
  if (result == RangeResult::ok)
    for (uint64_t f = s; f < e; ++f)
      if (owner_[f] != kNoOwner) {
        result = RangeResult::busy_unmovable;
        break;
      }
  std::fill(after.begin(), after.end(), caller);
  relabel_if_changed(first_pb, after, moves);
  return result;
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
  while (const auto j = find_window(a, start, nbits, op.align)) {
    set_bits(a, *j, nbits, true);
    const FrameRange window{a.decl.base + PageCount{*j << o}, op.count};
    const RangeResult result = contig_range(window, Mode::cma, mine);
    if (result == RangeResult::ok) {
      create(op.id, Family::cma, window).area = op.area;
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
    const RangeResult result = contig_range(candidate, Mode::normal, mine);
    if (result == RangeResult::ok) {
      create(op.id, Family::contig, candidate);
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
  for (uint64_t p = 0; p < machine_.pages; ++p) {
    const bool owned = owner_[p] != kNoOwner;
    if (owned == memory_.is_free(Pfn{p})) return "frame " + num(p) + " is both free and owned, or neither (I1)";
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

}  // namespace cmacheck::model
