#include "properties/support.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "check/runner.h"
#include "trace/parse.h"
#include "impl/allocator.h"
#include "model/model.h"
#include "trace/print.h"

// ASan keeps every distinct allocation stack, and RapidCheck's nested generators make many:
// short stacks and a small quarantine keep a run of thousands of cases near 100 MB instead
// of growing by ~0.2 MB per case. ASAN_OPTIONS set by the user still win.
extern "C" const char* __asan_default_options() { return "malloc_context_size=4:quarantine_size_mb=32"; }

namespace cmacheck::props {

// ---------------------------------------------------------------------------------------
// Choices

uint64_t RcChoices::below(uint64_t bound) {
  if (bound <= 1) return 0;
  return *rc::gen::resize(rc::kNominalSize, rc::gen::inRange<uint64_t>(0, bound));
}

uint64_t RecordingChoices::below(uint64_t bound) {
  const uint64_t v = inner_.below(bound);
  values_.push_back(v);
  return v;
}

uint64_t ReplayThen::below(uint64_t bound) {
  if (pos_ < values_.size()) {
    const uint64_t v = values_[pos_++];
    return bound ? v % bound : 0;
  }
  return then_.below(bound);
}

// ---------------------------------------------------------------------------------------
// Systems

const char* name(Side s) { return s == Side::impl ? "impl" : "model"; }

namespace {

class ImplSystem final : public System {
 public:
  ImplSystem(const Trace& h, impl::FaultSet faults) : a_(h.machine, h.areas, faults) {}
  Side side() const override { return Side::impl; }
  std::unique_ptr<System> clone() const override { return std::make_unique<ImplSystem>(*this); }
  void apply(const Op& op, Outcome& out) override { a_.apply(op, out); }
  uint64_t free_pages() const override { return a_.free_pages(); }
  uint64_t free_cma_pages() const override { return a_.free_cma_pages(); }
  AreaStats area_stats(AreaId a) const override { return a_.area_stats(a); }
  MigrateType label(Pfn p) const override { return a_.label(p); }
  char frame(Pfn p) const override { return role_char(a_.role(p)); }
  uint64_t content(Pfn p) const override { return a_.content(p); }
  std::optional<FrameRange> where(HandleId h) const override {
    const impl::Allocation* r = a_.allocation(h);
    if (!r) return std::nullopt;
    return FrameRange{r->pfn, r->count};
  }
  uint32_t pins(HandleId h) const override {
    const impl::Allocation* r = a_.allocation(h);
    return r ? r->pins : 0;
  }
  bool longterm(HandleId h) const override {
    const impl::Allocation* r = a_.allocation(h);
    return r && r->longterm;
  }
  std::optional<std::vector<uint64_t>> bitmap(AreaId a) const override {
    auto snap = a_.snapshot();
    return snap.bitmaps.at(raw(a));
  }

 private:
  impl::Allocator a_;
};

class ModelSystem final : public System {
 public:
  explicit ModelSystem(const Trace& h) : m_(h.machine, h.areas) {}
  Side side() const override { return Side::model; }
  std::unique_ptr<System> clone() const override { return std::make_unique<ModelSystem>(*this); }
  void apply(const Op& op, Outcome& out) override { m_.apply_alone(op, out); }
  uint64_t free_pages() const override { return m_.free_pages(); }
  uint64_t free_cma_pages() const override { return m_.free_cma_pages(); }
  AreaStats area_stats(AreaId a) const override { return m_.area_stats(a); }
  MigrateType label(Pfn p) const override { return m_.label(p); }
  char frame(Pfn p) const override { return m_.frame_char(p); }
  uint64_t content(Pfn p) const override { return m_.content(p); }
  std::optional<FrameRange> where(HandleId h) const override {
    auto p = m_.placement(h);
    if (!p) return std::nullopt;
    return FrameRange{p->pfn, p->count};
  }
  uint32_t pins(HandleId h) const override { return m_.pins(h); }
  bool longterm(HandleId h) const override { return m_.longterm_pinned(h); }
  std::optional<std::vector<uint64_t>> bitmap(AreaId) const override { return std::nullopt; }

 private:
  model::Model m_;
};

}  // namespace

std::unique_ptr<System> make_system(Side side, const Trace& header, impl::FaultSet faults) {
  if (side == Side::impl) return std::make_unique<ImplSystem>(header, faults);
  return std::make_unique<ModelSystem>(header);
}

// ---------------------------------------------------------------------------------------
// Run

Run::Run(const Trace& header, std::unique_ptr<System> sys) : trace_(header), sys_(std::move(sys)) {
  trace_.statements.clear();
}

Run::Run(const Run& o)
    : trace_(o.trace_), sys_(o.sys_->clone()), table_(o.table_), info_(o.info_), last_(o.last_), names_(o.names_) {}

const Outcome& Run::step(const Op& op) {
  Statement st;
  st.body = op;
  trace_.statements.push_back(std::move(st));
  sys_->apply(op, last_);
  table_.apply(op, last_);
  if (!last_.ok) return last_;
  if (auto use = handle_use(op); use && use->binds) {
    HandleInfo i;
    i.family = use->family;
    std::visit(overloaded{
                   [&](const Alloc& o) {
                     i.kind = o.kind;
                     i.order = o.order;
                   },
                   [&](const CmaAlloc& o) {
                     i.area = o.area;
                     i.count = o.count;
                     i.align = o.align;
                   },
                   [&](const AllocContig& o) { i.count = o.count; },
                   [](const auto&) {},
               },
               op);
    info_[raw(use->id)] = i;
  }
  return last_;
}

void Run::expect_last(bool ok, std::optional<Pfn> pfn) {
  Expectation e;
  e.ok = ok;
  e.pfn = pfn;
  trace_.statements.back().expectation = e;
}

void Run::expect(std::vector<ExpectItem> items) {
  Statement st;
  st.body = Expect{std::move(items)};
  trace_.statements.push_back(std::move(st));
}

std::vector<ExpectItem> Run::count_items(uint64_t free, uint64_t free_cma, const std::vector<AreaStats>& areas) const {
  std::vector<ExpectItem> items{{ExpectKey::free, 0, free}, {ExpectKey::free_cma, 0, free_cma}};
  for (uint32_t i = 0; i < areas.size(); ++i) {
    items.push_back({ExpectKey::area_used, i, areas[i].used});
    items.push_back({ExpectKey::area_maxchunk, i, areas[i].maxchunk});
  }
  return items;
}

std::vector<ExpectItem> Run::count_items() const {
  std::vector<AreaStats> areas;
  for (uint32_t i = 0; i < trace_.areas.size(); ++i) areas.push_back(sys_->area_stats(AreaId{i}));
  return count_items(sys_->free_pages(), sys_->free_cma_pages(), areas);
}

HandleId Run::fresh(const std::string& prefix) {
  while (true) {
    const std::string n = prefix + std::to_string(++names_);
    if (std::find(trace_.handles.begin(), trace_.handles.end(), n) == trace_.handles.end()) return trace_.intern_handle(n);
  }
}

FrameRange Run::cma_range(HandleId h) const { return sys_->where(h).value_or(FrameRange{}); }

std::unique_ptr<System> new_system(Side side, const Trace& header) {
  if (context().factory) return context().factory(side, header);
  return make_system(side, header, context().faults);
}

namespace {

std::optional<Alloc> alloc_in_area(Run& run, ChoiceSource& rc, AreaId a) {
  const Trace& t = run.trace();
  const AreaDecl& area = t.areas[raw(a)];
  const uint8_t order = static_cast<uint8_t>(rc.below(std::min<uint64_t>(t.machine.max_order, 2) + 1));
  const uint64_t size = uint64_t{1} << order;
  std::vector<uint64_t> spots;
  for (uint64_t p = raw(area.base); p + size <= raw(area.range().end()); p += size) {
    bool free = true;
    for (uint64_t q = p; q < p + size && free; ++q) free = run.sys().frame(Pfn{q}) == '.';
    if (free) spots.push_back(p);
  }
  if (spots.empty()) return std::nullopt;
  Alloc al;
  al.kind = Kind::movable;
  al.order = Order{order};
  al.at = Pfn{spots[rc.below(spots.size())]};
  return al;
}

}  // namespace

void crowd_area(Run& run, ChoiceSource& rc, AreaId a, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i)
    if (auto al = alloc_in_area(run, rc, a)) {
      al->id = run.fresh("ps");
      run.step(*al);
    }
}

std::optional<Op> steer_op(Run& run, ChoiceSource& rc, HandleId (*fresh)(Run&)) {
  const Trace& t = run.trace();
  if (t.areas.empty()) return std::nullopt;
  if (rc.below(2) == 0) {
    auto al = alloc_in_area(run, rc, AreaId{static_cast<uint32_t>(rc.below(t.areas.size()))});
    if (!al) return std::nullopt;
    al->id = fresh(run);
    return *al;
  }
  std::vector<HandleId> in_cma;
  for (HandleId h : run.live(Family::block)) {
    const auto w = run.sys().where(h);
    if (run.info(h).kind == Kind::movable && w && run.sys().label(w->first) == MigrateType::cma) in_cma.push_back(h);
  }
  if (in_cma.empty()) return std::nullopt;
  return Pin{in_cma[rc.below(in_cma.size())], false};
}

Op Generated::next() {
  if (!run->trace().areas.empty() && rc->below(8) == 0)
    if (auto op = steer_op(*run, *rc, [](Run& r) { return r.fresh("ps"); })) return *op;
  return gen->next(run->trace(), *run);
}

GeneratorLimits world_limits() {
  // Small worlds fill up in a short run and their CMA areas are a large share of memory;
  // the rest span the generator's whole range (multi-word bitmaps, large blocks). Each
  // world's kernel profile is a swarm choice, unless CMACHECK_PROFILE fixes it.
  GeneratorLimits l;
  static const std::optional<Profile> fixed = [] {
    const char* env = std::getenv("CMACHECK_PROFILE");
    return env && *env ? profile_by_name(env) : std::nullopt;
  }();
  l.profile = fixed;
  // The algebraic and liveness laws are stated for the buddy allocator alone ("alloc then
  // free restores the state", "room" counts free frames): with page lists (Q1-Q5) they hold
  // only after a drain. Their worlds have none; the lockstep property's have.
  l.pcp_high = 0;
  if (*rc::gen::resize(rc::kNominalSize, rc::gen::inRange(0, 4)) != 0) l.max_pages = 256;
  return l;
}

Generated start(Side side) {
  const GeneratorLimits limits = world_limits();
  stats().add("cases");
  stats().add(std::string("side.") + name(side));
  Generated g;
  g.rc = std::make_unique<RcChoices>();
  g.gen = std::make_unique<Generator>(*g.rc, limits);
  const Trace header = g.gen->header();
  g.run = std::make_unique<Run>(header, new_system(side, header));
  return g;
}

size_t pick_length(size_t max_ops) { return *rc::gen::inRange<size_t>(0, max_ops + 1); }

Generated generate(Side side, size_t max_ops) {
  Generated g = start(side);
  const size_t n = pick_length(max_ops);
  for (size_t i = 0; i < n; ++i) g.run->step(g.next());
  return g;
}

Side pick_side() {
  if (context().faults.any()) return Side::impl;
  const int s = *rc::gen::resize(rc::kNominalSize, rc::gen::inRange(0, 2));
  return s == 0 ? Side::impl : Side::model;
}

// ---------------------------------------------------------------------------------------
// Observations

State capture(const Run& run) {
  const System& s = run.sys();
  const Trace& t = run.trace();
  const uint8_t B = t.machine.pageblock_order;
  State st;
  st.free = s.free_pages();
  st.free_cma = s.free_cma_pages();
  for (uint32_t a = 0; a < t.areas.size(); ++a) {
    st.areas.push_back(s.area_stats(AreaId{a}));
    st.bitmaps.push_back(s.bitmap(AreaId{a}));
  }
  for (uint64_t pb = 0; pb < (t.machine.pages >> B); ++pb) st.labels.push_back(s.label(Pfn{pb << B}));
  st.frames.resize(t.machine.pages);
  st.contents.resize(t.machine.pages);
  for (uint64_t p = 0; p < t.machine.pages; ++p) {
    st.frames[p] = s.frame(Pfn{p});
    st.contents[p] = st.frames[p] == '.' || st.frames[p] == 'i' ? 0 : s.content(Pfn{p});
  }
  for (Family f : {Family::block, Family::cma, Family::contig})
    for (HandleId h : run.live(f)) {
      const auto w = s.where(h);
      if (!w) continue;
      st.live[raw(h)] = LiveView{w->first, w->count, s.pins(h), s.longterm(h)};
    }
  return st;
}

FrameRange max_order_block(const MachineDecl& m, Pfn p) {
  const uint64_t size = uint64_t{1} << m.max_order;
  return FrameRange{Pfn{raw(p) / size * size}, PageCount{size}};
}

uint64_t small_count(ChoiceSource& rc, uint64_t max) {
  if (max <= 1) return 1;
  uint64_t bits = 0;
  while ((uint64_t{1} << bits) < max) ++bits;
  const uint64_t width = rc.below(bits + 1);
  const uint64_t lo = width ? uint64_t{1} << (width - 1) : 1;
  const uint64_t hi = std::min(max, uint64_t{1} << width);
  return lo >= hi ? std::min(lo, max) : lo + rc.below(hi - lo + 1);
}

std::optional<std::string> compare(const Trace& t, const State& before, const State& after, const std::vector<Move>& moves,
                                   const std::vector<ClaimAllowance>& claims) {
  const uint8_t B = t.machine.pageblock_order;
  std::string frames = before.frames;
  std::vector<uint64_t> contents = before.contents;
  std::map<uint32_t, LiveView> live = before.live;
  for (const Move& m : moves) {
    auto it = live.find(raw(m.handle));
    const std::string hn = raw(m.handle) < t.handles.size() ? t.handle_name(m.handle) : "?";
    if (it == live.end() || it->second.pfn != m.from)
      return "a move of " + hn + " from pfn " + num(raw(m.from)) + " matches no live allocation";
    const uint64_t n = raw(it->second.count), from = raw(m.from), to = raw(m.to);
    const std::string chars = frames.substr(from, n);
    const std::vector<uint64_t> values(contents.begin() + from, contents.begin() + from + n);
    for (uint64_t i = 0; i < n; ++i) {
      frames[from + i] = '.';
      contents[from + i] = 0;
    }
    for (uint64_t i = 0; i < n; ++i) {
      frames[to + i] = chars[i];
      contents[to + i] = values[i];
    }
    it->second.pfn = m.to;
  }
  for (size_t pb = 0; pb < before.labels.size(); ++pb) {
    const MigrateType was = before.labels[pb], now = after.labels[pb];
    if (was == now) continue;
    auto claimable = [](MigrateType x) { return x != MigrateType::cma && x != MigrateType::isolate; };
    bool allowed = false;
    for (const ClaimAllowance& c : claims)
      allowed |= claimable(was) && claimable(now) && now == c.to && c.region.contains(Pfn{pb << B});
    if (!allowed)
      return "pageblock " + num(pb) + " (frames " + num(pb << B) + "..) was relabelled from " + name(was) + " to " + name(now) +
             (claimable(was) && claimable(now) ? ", which no B5 claim of this operation allows" : " (K3)");
  }
  for (size_t p = 0; p < frames.size(); ++p)
    if (frames[p] != after.frames[p])
      return "frame " + num(p) + " is '" + std::string(1, after.frames[p]) + "', expected '" + std::string(1, frames[p]) + "'";
  for (size_t p = 0; p < contents.size(); ++p)
    if (contents[p] != after.contents[p])
      return "frame " + num(p) + " holds content " + num(after.contents[p]) + ", expected " + num(contents[p]) + " (M5)";
  for (const auto& [h, v] : live) {
    auto it = after.live.find(h);
    const std::string hn = h < t.handles.size() ? t.handles[h] : "?";
    if (it == after.live.end()) return hn + " is no longer live";
    if (!(it->second == v))
      return hn + " is at pfn " + num(raw(it->second.pfn)) + " count " + num(raw(it->second.count)) + " pins " +
             num(it->second.pins) + (it->second.longterm ? " longterm" : "") + ", expected pfn " + num(raw(v.pfn)) +
             " count " + num(raw(v.count)) + " pins " + num(v.pins) + (v.longterm ? " longterm" : "");
  }
  for (const auto& [h, v] : after.live)
    if (!live.count(h)) return (h < t.handles.size() ? t.handles[h] : "?") + " became live";
  if (after.free != before.free) return "free is " + num(after.free) + ", expected " + num(before.free);
  // free_cma changes by the free frames that moves took from or gave to CMA pageblocks
  // (whose labels never change, K3).
  int64_t delta = 0;
  for (size_t p = 0; p < frames.size(); ++p)
    if (after.labels[p >> B] == MigrateType::cma) delta += (frames[p] == '.') - (before.frames[p] == '.');
  const uint64_t free_cma = before.free_cma + static_cast<uint64_t>(delta);
  if (after.free_cma != free_cma) return "free_cma is " + num(after.free_cma) + ", expected " + num(free_cma);
  for (size_t a = 0; a < before.areas.size(); ++a) {
    const std::string an = t.areas[a].name;
    if (after.areas[a].used != before.areas[a].used)
      return an + ".used is " + num(after.areas[a].used) + ", expected " + num(before.areas[a].used);
    if (after.areas[a].maxchunk != before.areas[a].maxchunk)
      return an + ".maxchunk is " + num(after.areas[a].maxchunk) + ", expected " + num(before.areas[a].maxchunk);
    if (before.bitmaps[a] && after.bitmaps[a] && *before.bitmaps[a] != *after.bitmaps[a])
      return "the bitmap of area " + an + " changed";
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------
// The spec, from the rules alone

std::vector<bool> implied_bitmap(const Run& run, AreaId a) {
  const AreaDecl& d = run.trace().areas[raw(a)];
  const uint8_t o = d.order_per_bit;
  std::vector<bool> bits(raw(d.pages) >> o, false);
  for (HandleId h : run.live(Family::cma)) {
    if (run.info(h).area != a) continue;
    const auto w = run.sys().where(h);
    if (!w) continue;
    const uint64_t off = raw(w->first) - raw(d.base);
    for (uint64_t b = off >> o; b <= (off + raw(w->count) - 1) >> o && b < bits.size(); ++b) bits[b] = true;
  }
  return bits;
}

std::optional<FrameRange> first_window(const Trace& t, AreaId a, const std::vector<bool>& bits, PageCount count,
                                       Order align) {
  const AreaDecl& d = t.areas[raw(a)];
  const uint8_t o = d.order_per_bit;
  const uint64_t c = raw(count), chunk = uint64_t{1} << o;
  if (c == 0) return std::nullopt;
  const uint64_t nbits = c / chunk + (c % chunk != 0);
  const uint64_t len = bits.size();
  if (nbits > len) return std::nullopt;
  std::vector<uint64_t> set(len + 1, 0);  // prefix sums of set bits
  for (uint64_t j = 0; j < len; ++j) set[j + 1] = set[j] + bits[j];
  for (uint64_t j = 0; j + nbits <= len; ++j) {
    // A2: alignment of the physical frame (with align <= order_per_bit every bit is aligned).
    const uint64_t frame = raw(d.base) + (j << o);
    const bool aligned = align.value <= o || (align.value < 64 ? frame % (uint64_t{1} << align.value) == 0 : frame == 0);
    if (aligned && set[j + nbits] == set[j]) return FrameRange{Pfn{frame}, count};
  }
  return std::nullopt;
}

uint64_t implied_maxchunk(const Trace& t, AreaId a, const std::vector<bool>& bits) {
  uint64_t run = 0, best = 0;
  for (bool b : bits) {
    run = b ? 0 : run + 1;
    best = std::max(best, run);
  }
  return best << t.areas[raw(a)].order_per_bit;
}

std::vector<HandleId> movable_blocks_in(const Run& run, FrameRange r) {
  std::vector<HandleId> out;
  for (HandleId h : run.live(Family::block)) {
    if (run.info(h).kind != Kind::movable) continue;
    const auto w = run.sys().where(h);
    if (w && w->overlaps(r)) out.push_back(h);
  }
  return out;
}

uint64_t free_slots(const Run& run, uint8_t k, const std::vector<bool>& excluded) {
  const Trace& t = run.trace();
  const uint8_t B = t.machine.pageblock_order;
  const uint64_t size = uint64_t{1} << k, n = t.machine.pages;
  uint64_t slots = 0;
  for (uint64_t s = 0; s + size <= n; s += size) {
    bool ok = true, cma = false, other = false;
    for (uint64_t pb = s >> B; pb <= (s + size - 1) >> B && ok; ++pb) {
      const MigrateType l = run.sys().label(Pfn{pb << B});
      ok = !excluded[pb] && l != MigrateType::isolate;
      (l == MigrateType::cma ? cma : other) = true;
    }
    for (uint64_t p = s; p < s + size && ok; ++p) ok = run.sys().frame(Pfn{p}) == '.';
    if (ok && !(cma && other)) ++slots;
  }
  return slots;
}

std::vector<bool> pageblocks_of(const Trace& t, FrameRange r) {
  const uint8_t B = t.machine.pageblock_order;
  std::vector<bool> v(t.machine.pages >> B, false);
  if (raw(r.count) == 0) return v;
  for (uint64_t pb = raw(r.first) >> B; pb <= (raw(r.end()) - 1) >> B && pb < v.size(); ++pb) v[pb] = true;
  return v;
}

// ---------------------------------------------------------------------------------------
// Context and counterexamples

Context& context() {
  static Context c;
  return c;
}

ContextScope::ContextScope(std::string property, const std::vector<impl::Fault>& faults, std::string out_dir)
    : saved_(context()) {
  Context& c = context();
  c = Context{};
  c.property = std::move(property);
  for (impl::Fault f : faults) {
    if (f == impl::Fault::none) continue;
    c.faults.add(f);
    c.fault_names.emplace_back(impl::fault_info(f).name);
  }
  c.out_dir = std::move(out_dir);
}

ContextScope::~ContextScope() { context() = saved_; }

std::string current_property() {
  if (!context().property.empty()) return context().property;
  const auto* ti = ::testing::UnitTest::GetInstance()->current_test_info();
  return ti ? std::string(ti->test_suite_name()) + "." + ti->name() : std::string("property");
}

namespace {

// Paths inside the repository are printed relative to its root.
std::string relative(const std::string& path) {
  const std::string root = std::string(CMACHECK_SOURCE_DIR) + "/";
  return path.compare(0, root.size(), root) == 0 ? path.substr(root.size()) : path;
}

// "--fault a --fault b" for the replay command, "a+b" for the file name.
std::string fault_args(const std::string& prefix, const std::string& separator) {
  std::string out;
  for (const std::string& f : context().fault_names) out += (out.empty() ? prefix : separator) + f;
  return out;
}

}  // namespace

std::string counterexample_path() {
  const std::string dir = context().out_dir.empty() ? std::string(CMACHECK_SOURCE_DIR) + "/corpus/properties" : context().out_dir;
  return dir + "/" + current_property() + fault_args(".", "+") + ".trace";
}

std::string replay_command(const std::string& path) {
  return relative(CMACHECK_BIN) + " replay" + fault_args(" --fault ", " --fault ") + " " + relative(path);
}

std::string cited_rules(const std::string& message) {
  // The last "(...)" closing the message, if it starts with a rule id (a capital letter and
  // a digit); an explanation after a colon is dropped.
  size_t end = message.find_last_not_of(" \n");
  if (end == std::string::npos || message[end] != ')') return "";
  const size_t open = message.rfind('(', end);
  if (open == std::string::npos || open + 2 >= end) return "";
  const std::string inside = message.substr(open + 1, end - open - 1);
  if (!std::isupper(static_cast<unsigned char>(inside[0])) || !std::isdigit(static_cast<unsigned char>(inside[1]))) return "";
  return inside.substr(0, inside.find(':'));
}

void fail(const Trace& t, Side side, const std::string& what, const std::string& rule) {
  const std::string path = counterexample_path();
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::ostringstream text;
  text << "# Counterexample of the property " << current_property() << " (docs/properties.md), shrunk by RapidCheck,\n"
       << "# found on " << name(side) << fault_args(" with --fault ", " --fault ") << ".\n";
  std::istringstream lines(what);
  for (std::string line; std::getline(lines, line);) text << "# " << line << "\n";
  text << "# reproduce (from the repository root): " << replay_command(path) << "\n" << print_trace(t);
  std::ofstream f(path);
  f << text.str();
  context().last_file = path;
  context().last_rule = rule.empty() ? cited_rules(what) : rule;
  std::string message = what + "\n  counterexample: " + relative(path) + "\n  reproduce: " + replay_command(path);
  if (side == Side::model)
    message += "\n  (found on the model alone: the property as stated is false of the spec, or the model is wrong)";
  throw rc::detail::CaseResult(rc::detail::CaseResult::Type::Failure, message);
}

// ---------------------------------------------------------------------------------------
// Statistics

Stats& stats_of(const std::string& property) {
  static std::map<std::string, Stats> all;
  return all[property];
}

Stats& stats() { return stats_of(current_property()); }

std::string op_kind(const Op& op) {
  return std::visit(overloaded{
                        [](const Alloc& o) -> std::string {
                          if (o.at) return "alloc_at";
                          return std::string("alloc_") + name(o.kind);
                        },
                        [](const Free&) -> std::string { return "free"; },
                        [](const Pin& o) -> std::string { return o.longterm ? "pin_longterm" : "pin"; },
                        [](const Unpin&) -> std::string { return "unpin"; },
                        [](const Migrate&) -> std::string { return "migrate"; },
                        [](const CmaAlloc&) -> std::string { return "cma_alloc"; },
                        [](const CmaRelease&) -> std::string { return "cma_release"; },
                        [](const CmaReleaseRaw&) -> std::string { return "cma_release_raw"; },
                        [](const AllocContig&) -> std::string { return "alloc_contig"; },
                        [](const FreeContig&) -> std::string { return "free_contig"; },
                        [](const Touch& o) -> std::string { return std::string("touch_") + name(o.batch); },
                        [](const LruDrain&) -> std::string { return "lru_drain"; },
                        [](const PcpDrain&) -> std::string { return "pcp_drain"; },
                    },
                    op);
}

void record_op(const Trace&, const Op& op, const Outcome& out) {
  Stats& s = stats();
  const std::string k = op_kind(op);
  s.add("ops");
  s.add(k + ".calls");
  s.add(out.ok ? k + ".ok" : k + ".fail." + name(out.reason));
  if (!out.ok) s.add(k + ".fail");
  if (!out.moves.empty()) {
    s.add(k + ".migrated");
    s.add(k + ".moves", out.moves.size());
    s.add("moves", out.moves.size());
  }
  if (std::holds_alternative<CmaAlloc>(op) || std::holds_alternative<AllocContig>(op)) {
    if (out.busy_pinned + out.busy_unmovable > 0) s.add(k + ".busy_window");
    if (out.busy_pinned > 0) s.add(k + ".busy_pinned");
    if (out.busy_unmovable > 0) s.add(k + ".busy_unmovable");
    if (out.windows_tried > 1) s.add(k + ".multi_window");
    if (out.ok && out.windows_tried > 1) s.add(k + ".ok_after_busy");
  }
}

namespace {
std::string pct(uint64_t a, uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%5.1f%%", b ? 100.0 * static_cast<double>(a) / static_cast<double>(b) : 0.0);
  return buf;
}
std::string pad(std::string s, size_t n) {
  if (s.size() < n) s.resize(n, ' ');
  return s;
}
std::string lpad(const std::string& s, size_t n) { return s.size() >= n ? s : std::string(n - s.size(), ' ') + s; }
}  // namespace

std::string distribution_table(const Stats& s) {
  static const char* const kinds[] = {"alloc_movable", "alloc_unmovable", "alloc_reclaimable", "alloc_at", "free",
                                      "pin",           "pin_longterm",    "unpin",             "migrate",  "cma_alloc",
                                      "cma_release",   "cma_release_raw", "alloc_contig",      "free_contig", "expect"};
  const uint64_t ops = s.get("ops");
  std::ostringstream out;
  out << "distribution over " << ops << " operations (" << s.get("cases") << " cases):\n";
  out << "  " << pad("operation", 18) << lpad("calls", 8) << lpad("share", 8) << lpad("ok", 8)
      << "  failures by reason (share of calls); other events\n";
  for (const char* k : kinds) {
    const std::string key = k;
    const uint64_t calls = s.get(key + ".calls");
    if (!calls) {
      out << "  " << pad(key, 18) << lpad("0", 8) << "   (never generated)\n";
      continue;
    }
    out << "  " << pad(key, 18) << lpad(std::to_string(calls), 8) << lpad(pct(calls, ops), 8)
        << lpad(pct(s.get(key + ".ok"), calls), 8) << "  ";
    std::string sep;
    const std::string prefix = key + ".fail.";
    for (const auto& [name, n] : s.counts())
      if (name.compare(0, prefix.size(), prefix) == 0) {
        out << sep << name.substr(prefix.size()) << " " << pct(n, calls);
        sep = ", ";
      }
    for (const char* e : {"busy_window", "busy_pinned", "busy_unmovable", "multi_window", "ok_after_busy", "migrated"}) {
      const uint64_t n = s.get(key + "." + e);
      if (n) {
        out << sep << e << " " << pct(n, calls);
        sep = ", ";
      }
    }
    out << "\n";
  }
  out << "  moves (blocks migrated): " << s.get("moves") << "\n";
  return out.str();
}

std::vector<std::string> failed_floors(const Stats& s, const std::vector<Floor>& floors) {
  std::vector<std::string> out;
  for (const Floor& f : floors) {
    const uint64_t n = s.get(f.num), d = s.get(f.den);
    const double r = d ? static_cast<double>(n) / static_cast<double>(d) : 0.0;
    if (r < f.min)
      out.push_back(f.num + " / " + f.den + " = " + std::to_string(n) + " / " + std::to_string(d) + " is below the floor " +
                    pct(static_cast<uint64_t>(f.min * 1000), 1000) + " (" + f.why + ")");
  }
  return out;
}

std::string floors_table(const Stats& s, const std::vector<Floor>& floors) {
  std::ostringstream out;
  out << "floors (observed >= required):\n";
  for (const Floor& f : floors) {
    const uint64_t n = s.get(f.num), d = s.get(f.den);
    out << "  " << pad(f.num + " / " + f.den, 48) << pct(n, d) << " >= " << pct(static_cast<uint64_t>(f.min * 1000), 1000)
        << "  " << f.why << "\n";
  }
  return out.str();
}

}  // namespace cmacheck::props
