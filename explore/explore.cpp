#include "explore/explore.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "impl/allocator.h"
#include "model/model.h"
#include "trace/print.h"

namespace cmacheck::explore {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

constexpr const char* kOpClassNames[kOpClasses] = {
    "alloc", "alloc_at", "free", "pin", "pin_longterm", "unpin", "migrate", "cma_alloc", "cma_release",
    "cma_release_raw", "alloc_contig", "free_contig", "touch", "touch_activate", "touch_mlock", "lru_drain",
    "pcp_drain"};

// ---------------------------------------------------------------------------------------
// States and the set of states seen

// A state's canonical identity: impl's hash and the model's (impl/hash.cpp, model/hash.cpp).
struct Key {
  uint64_t impl = 0, model = 0;
  friend bool operator==(const Key&, const Key&) = default;
};

Key key_of(const Session& s) {
  Key k{s.impl().state_hash(), s.model()->state_hash()};
  if (k.impl == 0 && k.model == 0) k.model = 1;  // {0, 0} marks an empty slot
  return k;
}

// Open addressing with linear probing; grows at half full. Lookups are safe from several
// threads while nobody inserts.
class KeySet {
 public:
  KeySet() { slots_.resize(1024); }
  bool contains(const Key& k) const {
    for (size_t i = slot(k);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i] == k) return true;
      if (slots_[i] == Key{}) return false;
    }
  }
  // True when `k` was not there.
  bool insert(const Key& k) {
    if (2 * (size_ + 1) > slots_.size()) grow();
    for (size_t i = slot(k);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i] == k) return false;
      if (slots_[i] == Key{}) {
        slots_[i] = k;
        ++size_;
        return true;
      }
    }
  }
  void clear() {
    if (size_) std::fill(slots_.begin(), slots_.end(), Key{});
    size_ = 0;
  }
  size_t size() const { return size_; }

 private:
  size_t slot(const Key& k) const { return (k.impl ^ (k.model * 0x9e3779b97f4a7c15ull)) & (slots_.size() - 1); }
  void grow() {
    std::vector<Key> old(slots_.size() * 2);
    old.swap(slots_);
    size_ = 0;
    for (const Key& k : old)
      if (!(k == Key{})) insert(k);
  }
  std::vector<Key> slots_;
  size_t size_ = 0;
};

// A state of the search: reached from state `parent` of the level before by operation number
// `op` of that state's alphabet.
struct Node {
  uint32_t parent = 0;
  uint32_t op = 0;
};

// ---------------------------------------------------------------------------------------
// The alphabet: every operation tried from a state

class Alphabet {
 public:
  Alphabet(const World& world, OpClassSet ops, Trace& names);
  // Every operation to try from the state of `s`, in a fixed order: the operations that name
  // no live allocation first, then those of each live allocation in order of first frame.
  // Index k means the same operation (up to handle names) in every state equal to s.
  void enumerate(const Session& s, std::vector<Op>& out) const;

 private:
  HandleId fresh(const Session& s, Family f) const;
  const World& world_;
  OpClassSet ops_;
  std::vector<Op> fixed_;  // binding operations get their handle per state
  std::array<std::vector<HandleId>, kFamilies> pool_;  // handles a binding operation may take
};

// Counts a contiguous request is tried with: every count that fits, and the boundaries just
// past it: 0, one too many, and 2^32 + 1, the smallest count whose low 32 bits are a valid
// request (the width boundary where D3 lived).
std::vector<uint64_t> counts_up_to(uint64_t n) {
  std::vector<uint64_t> v;
  for (uint64_t c = 1; c <= n; ++c) v.push_back(c);
  v.push_back(0);
  v.push_back(n + 1);
  v.push_back((uint64_t{1} << 32) + 1);
  return v;
}

Alphabet::Alphabet(const World& world, OpClassSet ops, Trace& names) : world_(world), ops_(ops) {
  const MachineDecl& m = world.trace.machine;
  const uint64_t n = m.pages;
  // Handle names: a live allocation holds at least a frame, so n + 1 of each family suffice
  // (n live and one more to try).
  const char prefix[kFamilies] = {'m', 'c', 'x'};
  for (size_t f = 0; f < kFamilies; ++f)
    for (uint64_t i = 0; pool_[f].size() <= n; ++i) {
      const std::string name = prefix[f] + std::to_string(i);
      if (std::find(names.handles.begin(), names.handles.end(), name) != names.handles.end()) continue;
      pool_[f].push_back(names.intern_handle(name));
    }
  const Kind kinds[] = {Kind::movable, Kind::unmovable, Kind::reclaimable};
  // alloc: every kind and order, and one order past max_order (M3).
  if (has(ops, OpClass::alloc))
    for (Kind k : kinds)
      for (uint8_t o = 0; o <= m.max_order + 1; ++o) fixed_.push_back(Alloc{{}, k, Order{o}, std::nullopt});
  // alloc at=: every frame the order's alignment allows (B7), and, per order, the first
  // misaligned frame and the first frame past the machine.
  if (has(ops, OpClass::alloc_at))
    for (Kind k : kinds)
      for (uint8_t o = 0; o <= m.max_order; ++o) {
        const uint64_t size = uint64_t{1} << o;
        for (uint64_t p = 0; p + size <= n; p += size) fixed_.push_back(Alloc{{}, k, Order{o}, Pfn{p}});
        if (o > 0) fixed_.push_back(Alloc{{}, k, Order{o}, Pfn{1}});
        fixed_.push_back(Alloc{{}, k, Order{o}, Pfn{n}});
      }
  // cma_alloc: every area, count and alignment up to the first whose 2^align covers the
  // machine; the out-of-bounds counts with align 0.
  const uint8_t max_align = static_cast<uint8_t>(std::bit_width(n - 1));
  for (uint32_t a = 0; a < world.trace.areas.size(); ++a) {
    const uint64_t pages = raw(world.trace.areas[a].pages);
    if (has(ops, OpClass::cma_alloc))
      for (uint64_t c : counts_up_to(pages))
        for (uint8_t al = 0; al <= (c >= 1 && c <= pages ? max_align : 0); ++al)
          fixed_.push_back(CmaAlloc{{}, AreaId{a}, PageCount{c}, Order{al}});
    // R2 with nothing handed out there: the area's first page.
    if (has(ops, OpClass::cma_release_raw))
      fixed_.push_back(CmaReleaseRaw{AreaId{a}, world.trace.areas[a].base, PageCount{1}});
  }
  if (has(ops, OpClass::alloc_contig))
    for (uint64_t c : counts_up_to(n)) fixed_.push_back(AllocContig{{}, PageCount{c}});
  // E2: the (only, sequential) CPU's batches; a no-op, and cheap, while they are empty.
  if (has(ops, OpClass::lru_drain)) fixed_.push_back(LruDrain{});
  // Q4: only in a world with page lists (elsewhere it changes nothing).
  if (has(ops, OpClass::pcp_drain) && world.trace.machine.pcp_high) fixed_.push_back(PcpDrain{});
}

HandleId Alphabet::fresh(const Session& s, Family f) const {
  for (HandleId h : pool_[index(f)])
    if (!s.handles().live(h)) return h;
  return pool_[index(f)].back();  // (cannot happen: fewer allocations than frames)
}

void Alphabet::enumerate(const Session& s, std::vector<Op>& out) const {
  out.clear();
  const HandleId block = fresh(s, Family::block), cma = fresh(s, Family::cma), contig = fresh(s, Family::contig);
  for (const Op& fixed : fixed_) {
    out.push_back(fixed);
    std::visit(overloaded{[&](Alloc& o) { o.id = block; }, [&](CmaAlloc& o) { o.id = cma; },
                          [&](AllocContig& o) { o.id = contig; }, [](auto&) {}},
               out.back());
  }
  // Live allocations in order of first frame: the same order in every state equal to this
  // one, whatever the handles are called.
  thread_local std::vector<std::pair<uint64_t, HandleId>> live;
  live.clear();
  const impl::Allocator& a = s.impl();
  for (Family f : {Family::block, Family::cma, Family::contig})
    for (HandleId h : s.handles().live_list(f))
      if (const impl::Allocation* r = a.allocation(h)) live.emplace_back(raw(r->pfn), h);
  std::sort(live.begin(), live.end());
  for (auto [pfn, h] : live) {
    const impl::Allocation& r = *a.allocation(h);
    switch (r.family) {
      case Family::block:
        if (has(ops_, OpClass::free)) out.push_back(Free{h});
        if (has(ops_, OpClass::pin) && r.pins < world_.max_pins) out.push_back(Pin{h, false});
        if (has(ops_, OpClass::pin_longterm) && r.pins < world_.max_pins) out.push_back(Pin{h, true});
        if (has(ops_, OpClass::unpin)) out.push_back(Unpin{h});
        if (has(ops_, OpClass::migrate)) out.push_back(Migrate{h});
        // E1: every block, in each batch, while the batches hold fewer than max_touches
        // references to it; an unmovable block's touch fails, a large one's keeps nothing.
        if (r.batch_refs < world_.max_touches) {
          if (has(ops_, OpClass::touch)) out.push_back(Touch{h, Batch::lru});
          if (has(ops_, OpClass::touch_activate)) out.push_back(Touch{h, Batch::activate});
          if (has(ops_, OpClass::touch_mlock)) out.push_back(Touch{h, Batch::mlock});
        }
        break;
      case Family::cma:
        if (has(ops_, OpClass::cma_release)) out.push_back(CmaRelease{h});
        // R2 at the boundary of what was handed out: exactly it, one page more, one page less
        // from the next frame, and exactly it in every other area.
        if (has(ops_, OpClass::cma_release_raw)) {
          out.push_back(CmaReleaseRaw{r.area, r.pfn, r.count});
          out.push_back(CmaReleaseRaw{r.area, r.pfn, r.count + PageCount{1}});
          if (raw(r.count) > 1) out.push_back(CmaReleaseRaw{r.area, Pfn{raw(r.pfn) + 1}, PageCount{raw(r.count) - 1}});
          for (uint32_t other = 0; other < world_.trace.areas.size(); ++other)
            if (AreaId{other} != r.area) out.push_back(CmaReleaseRaw{AreaId{other}, r.pfn, r.count});
        }
        break;
      case Family::contig:
        if (has(ops_, OpClass::free_contig)) out.push_back(FreeContig{h});
        break;
    }
  }
}

// ---------------------------------------------------------------------------------------
// The search

struct Child {
  Key key;
  uint32_t parent;
  uint32_t op;
};

struct Chunk {
  std::vector<Child> children;
  std::optional<std::pair<uint32_t, uint32_t>> violation;  // node, op
  uint64_t sequences = 0;
};

constexpr uint32_t kChunkNodes = 64;

class Search;

// One thread's tools: the states along the path it last rebuilt, and a scratch state.
class Worker {
 public:
  Worker(Search& search);
  void run_level(unsigned level);

 private:
  const Session& state_of(unsigned level, uint32_t node);
  void expand(unsigned level, uint32_t node, Chunk& out);
  Search& search_;
  std::vector<std::unique_ptr<Session>> stack_;  // stack_[d]: the state after path_[0, d)
  std::vector<uint32_t> path_, want_;
  size_t valid_ = 0;  // stack_[0 .. valid_] hold the states of path_'s prefixes
  std::unique_ptr<Session> scratch_;
  std::vector<Op> ops_;
  KeySet seen_in_level_;
};

class Search {
 public:
  Search(const World& world, const Options& options)
      : options_(options), names_(world.trace), run_(run_options(options.faults)),
        alphabet_(world, options.ops, names_) {
    header_ = names_;
    header_.statements.clear();
  }

  Result run();

 private:
  friend class Worker;
  bool should_stop() const { return stop_.load(std::memory_order_relaxed); }
  void path_to(unsigned level, uint32_t node, std::vector<uint32_t>& path) const {
    path.resize(level);
    for (unsigned d = level; d > 0; --d) {
      const Node& n = levels_[d][node];
      path[d - 1] = n.op;
      node = n.parent;
    }
  }
  // Runs one operation from `from` in `to`; pops the statement the session appended.
  static bool step(Session& to, const Op& op) {
    const bool ok = to.step_op(op);
    to.mutable_trace().statements.pop_back();
    return ok;
  }
  void counterexample(unsigned level, uint32_t node, uint32_t op, Result& result);

  const Options& options_;
  Trace names_;   // the world with explore's handle names interned
  Trace header_;  // the same without the setup: what the workers' sessions run
  RunOptions run_;
  Alphabet alphabet_;
  std::unique_ptr<Session> root_;
  std::vector<std::vector<Node>> levels_;
  KeySet seen_;
  // The level being expanded.
  std::vector<Chunk> chunks_;
  std::atomic<uint64_t> next_chunk_{0}, first_bad_chunk_{UINT64_MAX};
  std::atomic<uint64_t> sequences_{0}, level_candidates_{0};
  std::atomic<bool> stop_{false};
  Clock::time_point start_;
};

Worker::Worker(Search& s) : search_(s) {
  for (size_t d = 0; d <= s.options_.depth; ++d) {
    stack_.push_back(std::make_unique<Session>(s.header_, s.run_));
    stack_.back()->restore(*s.root_);
  }
  scratch_ = std::make_unique<Session>(s.header_, s.run_);
}

// The state of a node, rebuilt from the states along the last path rebuilt: consecutive
// nodes share most of their path, so this costs about one step per node.
const Session& Worker::state_of(unsigned level, uint32_t node) {
  search_.path_to(level, node, want_);
  size_t common = 0;
  while (common < want_.size() && common < path_.size() && common < valid_ && want_[common] == path_[common]) ++common;
  path_ = want_;
  for (size_t d = common; d < level; ++d) {
    search_.alphabet_.enumerate(*stack_[d], ops_);
    stack_[d + 1]->restore(*stack_[d]);
    Search::step(*stack_[d + 1], ops_[path_[d]]);
  }
  valid_ = level;
  return *stack_[level];
}

void Worker::expand(unsigned level, uint32_t node, Chunk& out) {
  const Session& from = state_of(level, node);
  const Key from_key = key_of(from);
  search_.alphabet_.enumerate(from, ops_);
  bool dirty = true;
  for (uint32_t k = 0; k < ops_.size(); ++k) {
    if (dirty) scratch_->restore(from);
    ++out.sequences;
    if (!Search::step(*scratch_, ops_[k])) {
      out.violation = {node, k};  // (a malformed step cannot happen: every handle is live)
      return;
    }
    const Key key = key_of(*scratch_);
    // A step that left the state as it was (a failure, mostly) needs no restore: the scratch
    // state is the node's state up to what no operation or check can tell apart.
    dirty = !(key == from_key);
    if (search_.options_.dedup && (!dirty || search_.seen_.contains(key) || !seen_in_level_.insert(key))) continue;
    out.children.push_back(Child{key, node, k});
  }
}

void Worker::run_level(unsigned level) {
  seen_in_level_.clear();
  const uint64_t nodes = search_.levels_[level].size();
  const uint64_t chunks = search_.chunks_.size();
  for (;;) {
    const uint64_t c = search_.next_chunk_.fetch_add(1);
    if (c >= chunks || c > search_.first_bad_chunk_.load() || search_.should_stop()) return;
    Chunk& chunk = search_.chunks_[c];
    for (uint64_t i = c * kChunkNodes; i < std::min(nodes, (c + 1) * kChunkNodes); ++i) {
      const size_t before = chunk.children.size();
      const uint64_t seqs = chunk.sequences;
      expand(level, static_cast<uint32_t>(i), chunk);
      search_.sequences_.fetch_add(chunk.sequences - seqs, std::memory_order_relaxed);
      search_.level_candidates_.fetch_add(chunk.children.size() - before, std::memory_order_relaxed);
      if (chunk.violation) {
        uint64_t bad = search_.first_bad_chunk_.load();
        while (c < bad && !search_.first_bad_chunk_.compare_exchange_weak(bad, c)) {
        }
        return;
      }
    }
  }
}

void Search::counterexample(unsigned level, uint32_t node, uint32_t op, Result& result) {
  Counterexample cx;
  cx.trace = names_;
  cx.depth = level + 1;
  std::vector<uint32_t> path;
  path_to(level, node, path);
  path.push_back(op);
  Session s(header_, run_);
  s.restore(*root_);
  std::vector<Op> ops;
  for (uint32_t k : path) {
    alphabet_.enumerate(s, ops);
    Statement st;
    st.body = ops[k];
    cx.trace.statements.push_back(st);
    step(s, ops[k]);
  }
  const RunResult replay = run_trace(cx.trace, run_);
  if (replay.status != RunStatus::violation || !replay.finding) {
    result.error = "internal error: the counterexample found at depth " + std::to_string(cx.depth) +
                   " does not replay to a violation (a bug of the search):\n" + print_trace(cx.trace);
    return;
  }
  cx.finding = *replay.finding;
  result.violation = std::move(cx);
}

Result Search::run() {
  Result result;
  start_ = Clock::now();
  // The world and its setup, then the checks of the end of a run (full tier, the model's
  // self-check, every live allocation compared): a violation there has depth 0.
  root_ = std::make_unique<Session>(names_, run_);
  for (size_t i = 0; i < names_.statements.size(); ++i)
    if (!root_->step(i)) break;
  if (root_->status() == RunStatus::malformed) {
    result.error = "the world's setup is malformed at statement " + std::to_string(root_->malformed_line()) + ": " +
                   root_->malformed_message();
    return result;
  }
  if (root_->status() == RunStatus::ok) root_->finish();
  if (root_->status() == RunStatus::violation) {
    Counterexample cx;
    cx.trace = names_;
    cx.finding = *root_->finding();
    result.violation = std::move(cx);
    result.levels.push_back(Level{0, 1, 0, since(start_)});
    result.states = 1;
    result.seconds = since(start_);
    return result;
  }
  // finish() left the root's status ok; its trace's statements are not needed any more.
  root_->mutable_trace().statements.clear();
  levels_.push_back({Node{}});
  seen_.insert(key_of(*root_));
  result.levels.push_back(Level{0, 1, 0, since(start_)});
  result.states = 1;

  const unsigned jobs = std::max(1u, options_.jobs);
  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned j = 0; j < jobs; ++j) workers.push_back(std::make_unique<Worker>(*this));

  for (unsigned level = 0; level < options_.depth; ++level) {
    const auto level_start = Clock::now();
    const uint64_t nodes = levels_[level].size();
    chunks_.assign((nodes + kChunkNodes - 1) / kChunkNodes, Chunk{});
    next_chunk_ = 0;
    first_bad_chunk_ = UINT64_MAX;
    level_candidates_ = 0;
    std::atomic<unsigned> running{jobs};
    std::mutex mu;
    std::condition_variable done;
    std::vector<std::thread> threads;
    for (unsigned j = 0; j < jobs; ++j)
      threads.emplace_back([&, j] {
        workers[j]->run_level(level);
        std::lock_guard<std::mutex> lock(mu);
        if (--running == 0) done.notify_all();
      });
    {
      std::unique_lock<std::mutex> lock(mu);
      auto last = Clock::now();
      while (!done.wait_for(lock, std::chrono::milliseconds(50), [&] { return running == 0; })) {
        const double t = since(start_);
        if ((options_.seconds > 0 && t > options_.seconds) ||
            (options_.max_states && result.states + level_candidates_.load() > options_.max_states))
          stop_ = true;
        if (options_.progress && since(last) >= 0.5) {
          last = Clock::now();
          options_.progress(Progress{level + 1, result.states + level_candidates_.load(), sequences_.load(), t});
        }
      }
    }
    for (auto& t : threads) t.join();

    // Merge in chunk order: the first path to each state is the one kept, on any -j.
    Level stats{level + 1, 0, 0, 0};
    std::vector<Node> next;
    const uint64_t bad = first_bad_chunk_.load();
    for (uint64_t c = 0; c < chunks_.size() && c <= bad; ++c) {
      Chunk& chunk = chunks_[c];
      stats.sequences += chunk.sequences;
      for (const Child& child : chunk.children) {
        const bool fresh = seen_.insert(child.key);
        stats.states += fresh;
        if (fresh || !options_.dedup) next.push_back(Node{child.parent, child.op});
      }
      std::vector<Child>().swap(chunk.children);
    }
    stats.seconds = since(level_start);
    result.states += stats.states;
    result.sequences += stats.sequences;
    result.levels.push_back(stats);
    if (bad != UINT64_MAX) {
      const auto [node, op] = *chunks_[bad].violation;
      counterexample(level, node, op, result);
      break;
    }
    if (stop_) {
      result.complete = false;
      break;
    }
    if (stats.states == 0 && options_.dedup) {
      result.exhausted = true;
      break;
    }
    levels_.push_back(std::move(next));
  }
  result.seconds = since(start_);
  return result;
}

}  // namespace

const char* name(OpClass c) { return kOpClassNames[static_cast<size_t>(c)]; }

std::optional<OpClass> op_class_by_name(const std::string& s) {
  for (size_t c = 0; c < kOpClasses; ++c)
    if (s == kOpClassNames[c]) return static_cast<OpClass>(c);
  return std::nullopt;
}

RunOptions run_options(const impl::FaultSet& faults) {
  RunOptions o;
  o.faults = faults;
  o.full_every = 1;
  o.self_check_every = 1;
  return o;
}

std::vector<std::vector<Op>> thread_programs(const World& world, OpClassSet ops, const impl::FaultSet& faults,
                                             unsigned max_ops, Trace& names, std::string& error) {
  names = world.trace;
  const Alphabet alphabet(world, ops, names);
  const RunOptions run = run_options(faults);
  Trace header = names;
  header.statements.clear();
  Session root(names, run);
  for (size_t i = 0; i < names.statements.size(); ++i)
    if (!root.step(i)) break;
  if (root.status() != RunStatus::ok) {
    error = root.status() == RunStatus::malformed ? "the world's setup is malformed: " + root.malformed_message()
                                                  : "the world's setup breaks " + root.finding()->violation.rule;
    return {};
  }
  root.mutable_trace().statements.clear();
  std::vector<std::vector<Op>> out;
  // Depth first, once per length, so that the shorter programs come first.
  std::vector<std::unique_ptr<Session>> stack;
  for (unsigned d = 0; d <= max_ops; ++d) stack.push_back(std::make_unique<Session>(header, run));
  stack[0]->restore(root);
  std::vector<Op> prefix;
  auto extend = [&](auto& self, unsigned depth, unsigned length) -> void {
    std::vector<Op> next;
    alphabet.enumerate(*stack[depth], next);
    for (const Op& op : next) {
      prefix.push_back(op);
      if (depth + 1 == length) {
        out.push_back(prefix);
      } else {
        stack[depth + 1]->restore(*stack[depth]);
        // An operation that breaks a rule alone ends its programs there.
        Session& s = *stack[depth + 1];
        const bool ok = s.step_op(op);
        s.mutable_trace().statements.pop_back();
        if (ok) self(self, depth + 1, length);
      }
      prefix.pop_back();
    }
  };
  for (unsigned length = 1; length <= max_ops; ++length) extend(extend, 0, length);
  return out;
}

Result explore(const World& world, const Options& options) {
  Search search(world, options);
  return search.run();
}

}  // namespace cmacheck::explore
