#include "check/concurrent.h"

#include <setjmp.h>
#include <ucontext.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <chrono>
#include <deque>
#include <memory>
#include <regex>
#include <set>
#include <tuple>
#include <bit>
#include <sstream>
#include <vector>

#include "check/footprint.h"
#include "impl/allocator.h"
#include "model/model.h"
#include "trace/print.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CMACHECK_ASAN_FIBERS 1
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#endif

namespace cmacheck {

const char* name(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::walk: return "walk";
    case ScheduleKind::pct: return "pct";
    case ScheduleKind::bounded: return "bounded";
  }
  return "?";
}

std::optional<ScheduleKind> schedule_kind_by_name(std::string_view s) {
  for (ScheduleKind k : {ScheduleKind::walk, ScheduleKind::pct, ScheduleKind::bounded})
    if (s == name(k)) return k;
  return std::nullopt;
}

namespace {

constexpr size_t kStackSize = 512 * 1024;
constexpr size_t kLabels = std::size(kStepLabels);
constexpr int kNoOwner = -1;

// Fiber stacks, kept per OS thread: a fuzz target runs thousands of concurrent programs a second.
thread_local std::array<std::unique_ptr<char[]>, impl::kMaxCpus> t_stacks;
// Each stack's fiber outlives the run that started it: once its CPU's operations are done it
// parks in its loop (Engine::fiber_loop) and the next run's CPU of that number jumps back in,
// so a run costs no getcontext/setcontext (each a system call for the signal mask). A fiber
// left inside an operation (a run stopped early) is started afresh.
thread_local std::array<jmp_buf, impl::kMaxCpus> t_home;
thread_local std::array<bool, impl::kMaxCpus> t_parked{};
thread_local std::array<void*, impl::kMaxCpus> t_fake_stack{};  // ASan's, while parked
thread_local std::array<ucontext_t, impl::kMaxCpus> t_first_entry;
// impl's and the model's tables, handed from one run to the next on this OS thread (their
// memory only; as check/runner.cpp does for the sequential engine).
struct SpareTables {
  impl::Allocator::Tables impl;
  model::Model::Tables model;
};
thread_local SpareTables t_spare;
constexpr uint64_t kSpareMaxPages = uint64_t{1} << 16;

std::string num(uint64_t v) { return std::to_string(v); }

bool is_contiguous(const Op& op) { return std::holds_alternative<CmaAlloc>(op) || std::holds_alternative<AllocContig>(op); }


Trace with_profile(Trace t, const std::optional<Profile>& profile) {
  if (profile) t.machine.profile = *profile;
  return t;
}

class Engine;
thread_local Engine* t_entry_engine = nullptr;
thread_local uint8_t t_entry_cpu = 0;

// One operation of the history.
struct OpRecord {
  size_t statement = 0;
  uint8_t cpu = 0;
  uint32_t number = 0;  // k of Tn.k
  uint64_t start = 0, end = 0;         // step indices
  uint64_t commit = 0;                 // the step whose effect the model applies (linearization point)
  std::optional<uint64_t> last_take;   // contiguous: the step of its last `take`
  bool skipped = false;                // its handle was not live (its binding failed in this schedule)
  bool interfered = false;             // another operation was in flight during it
  uint32_t searches = 0;               // cma_alloc: `reserve` steps so far
  bool lru_window = false;             // between its `drain` and `take` steps (E3)
  bool pcp_bypassed = false;           // a free met another CPU's pcp lock (Q2)
  std::vector<model::Model::PcpDrains> pcp_drains;  // per isolation that succeeded, the CPUs its pcp_drain steps drained (Q4)
  std::optional<MigrateType> type_read;  // free: the type its read_type step read (F2)
  // At its commit step another operation in flight held an ISOLATE pageblock (W5): linux-6.1's
  // frees then read the label again (has_isolate_pageblock).
  bool isolated_elsewhere = false;
  // W6, X1: its windows whose isolation was refused, the obstacle checked at that step
  // (another operation's isolation, an unmovable page).
  std::vector<model::Model::Refusal> refusals;
  // W6: the pageblocks other operations held ISOLATE at its commit step (a contiguous
  // request's: at its last move, when it moved a block).
  std::vector<model::Model::PageblockRange> foreign_isolation, foreign_isolation_at_take;
  std::vector<model::Model::ReservedView> view;  // W1
  std::optional<std::vector<model::Model::PageblockRange>> isolation_at_last_move;  // others', W6
  std::vector<HandleId> held;  // W8: blocks another CPU held when it looked, the hold checked then
  Outcome out;
};

// A range of bits the ghost expects set, and why.
struct GhostBits {
  enum class Kind : uint8_t { reservation, allocation, releasing } kind;
  int op = -1;  // reservation: the OpRecord; allocation / releasing: the releasing op or -1
  AreaId area{};
  uint64_t first = 0, n = 0;
};

class Engine final : public impl::StepHook {
 public:
  Engine(const Trace& trace, const ConcurrentOptions& options)
      : trace_(with_profile(trace, options.profile)),
        options_(options),
        impl_(trace_.machine, trace_.areas, options.faults, std::move(t_spare.impl)) {
    if (options_.lockstep) {
      model_ = std::make_unique<model::Model>(trace_.machine, trace_.areas, std::move(t_spare.model));
      model_->set_lru_events_external(true);
    }
    impl_.set_step_hook(this);
    footprint_faults_.no_cma_mutex = options.faults.on(impl::Fault::no_cma_mutex);
    footprint_faults_.clear_bits_first = options.faults.on(impl::Fault::release_clears_bits_first);
    if (options.footprint_faults_told) footprint_faults_ = *options.footprint_faults_told;
    threads_.resize(trace_.machine.cpus);
    for (size_t i = 0; i < trace_.statements.size(); ++i)
      if (std::holds_alternative<Op>(trace_.statements[i].body)) threads_[trace_.statements[i].thread].ops.push_back(i);
    for (uint8_t t = 0; t < threads_.size(); ++t) {
      Thread& th = threads_[t];
      th.whole.resize(th.ops.size());
      th.left.assign(th.ops.size() + 1, Footprint{});
      for (size_t i = th.ops.size(); i-- > 0;) {
        th.whole[i] = op_footprint(std::get<Op>(trace_.statements[th.ops[i]].body), t);
        th.left[i] = th.left[i + 1];
        th.left[i] |= th.whole[i];
      }
    }
    const uint64_t pbs = trace_.machine.pages >> trace_.machine.pageblock_order;
    iso_owner_.assign(pbs, kNoOwner);
    if (options_.choices && options_.kind == ScheduleKind::pct) {
      // Distinct random priorities, and depth-1 change points among the first steps.
      std::vector<uint8_t> order(threads_.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<uint8_t>(i);
      for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[options_.choices->below(i)]);
      for (size_t i = 0; i < order.size(); ++i) threads_[order[i]].priority = static_cast<int>(order.size() + i);
      const uint64_t k = 6 * trace_.statements.size() + 4;
      for (uint32_t d = 1; d < options_.pct_depth; ++d) change_points_.push_back(1 + options_.choices->below(k));
    }
  }

  ConcurrentResult run() {
    ConcurrentResult res;
    for (size_t t = 0; t < threads_.size(); ++t) {
      if (!t_stacks[t]) t_stacks[t] = std::make_unique<char[]>(kStackSize);
#ifdef CMACHECK_ASAN_FIBERS
      ASAN_UNPOISON_MEMORY_REGION(t_stacks[t].get(), kStackSize);  // the frames of the last run's fiber
#endif
      Thread& th = threads_[t];
      th.done = th.ops.empty();
    }
    schedule_loop();
    // Drain: after a finding the other CPUs run to the end (default schedule, no checks), so
    // that no fiber is left suspended.
    if (!stopped_ && !malformed_) quiescent_checks(/*final=*/true);
    draining_ = true;
    schedule_loop();  // nothing left, unless a malformed schedule stopped it early
    res.status = malformed_ ? RunStatus::malformed : finding_ ? RunStatus::violation : RunStatus::ok;
    res.finding = finding_;
    res.malformed = malformed_message_;
    res.malformed_line = malformed_line_;
    res.ran = trace_;
    res.ran.switches = recorded_;
    res.steps = step_;
    res.ops = ops_run_;
    res.skipped = skipped_;
    res.inconclusive = inconclusive_;
    res.audits = audits_;
    res.audited = audited_;
    res.audit_notes = audit_notes_;
    res.inconclusive_reason = inconclusive_reason_;
    res.choice_points = std::move(choice_points_);
    res.choices_offered = choice_points_met_;
    res.choices_commuting = skipped_choice_points_;
    if (options_.want_table || res.status != RunStatus::ok) res.table = table();
    return res;
  }

  // After run(): impl's and the model's tables go to the next run on this OS thread.
  void give_back_tables() {
    if (trace_.machine.pages > kSpareMaxPages) return;
    t_spare.impl = std::move(impl_).release_tables();
    if (model_) t_spare.model = std::move(*model_).release_tables();
  }

  // impl::StepHook (runs on a CPU's fiber).
  void step(const impl::StepInfo& info) override {
    event_ = Event{EventKind::step, info};
    yield();
  }
  // mutex_lock(&cma_mutex): a kernel mutex is not recursive, so its owner waits for itself.
  void lock_cma_mutex() override {
    const uint8_t me = running_;
    while (mutex_owner_ != kNoOwner) {
      threads_[me].blocked = true;
      event_ = Event{EventKind::blocked, {}};
      yield();
    }
    mutex_owner_ = me;
  }
  void unlock_cma_mutex() override {
    mutex_owner_ = kNoOwner;
    for (Thread& th : threads_) th.blocked = false;  // each retries
  }
  void wait_for_lru(HandleId h) override {
    Thread& th = threads_[running_];
    while (impl_.off_lru(h)) {
      th.waiting_for = h;
      event_ = Event{EventKind::blocked, {.label = StepLabel::lru_wait}};
      yield();
    }
    th.waiting_for.reset();
  }

 private:
  enum class EventKind : uint8_t { step, blocked, op_end };
  struct Event {
    EventKind kind = EventKind::step;
    impl::StepInfo info;
  };
  struct Thread {
    std::vector<size_t> ops;  // statement indices, program order
    size_t next = 0;          // the next one to start
    bool in_op = false, blocked = false, done = false;
    std::optional<HandleId> waiting_for;  // wait_for_lru: runs again once the block is back
    int record = -1;  // OpRecord in flight
    std::array<uint32_t, kLabels> occurrences{};
    int priority = 0;  // PCT
    // Its last boundary inside the running operation (none before its first step), for the
    // footprint of what it runs next (check/footprint.h).
    std::optional<StepLabel> last;
    bool last_blocked = false, nothing_reserved = false;
    Footprint declared;  // what it declared before it last ran
    std::vector<Footprint> whole;  // whole[i]: what its i-th operation may touch
    std::vector<Footprint> left;   // left[i]: what its operations from the i-th on may touch
    jmp_buf jmp{};  // every resumption but its first (fiber_loop's)
    bool started = false;
  };
  struct Boundary {
    bool at_start = true;
    uint8_t cpu = 0;
    uint32_t op = 0;
    StepLabel label = StepLabel::op;
    uint32_t occurrence = 0;
  };
  // One row of the step table, formatted only when a table is printed.
  struct LogRow {
    enum class Kind : uint8_t { step, blocked, op_end } kind;
    uint64_t step;
    uint8_t cpu;
    size_t record;
    impl::StepInfo info;
  };

  // A fiber's life: run CPU `cpu`'s operations for the engine that entered it, park, and run
  // them again for the next engine that jumps back in (t_home).
  static void fiber_loop() {
    const uint8_t cpu = t_entry_cpu;
    t_fake_stack[cpu] = nullptr;  // a fresh fiber
    for (;;) {
      Engine* e = t_entry_engine;
#ifdef CMACHECK_ASAN_FIBERS
      __sanitizer_finish_switch_fiber(t_fake_stack[cpu], &e->main_bottom_, &e->main_size_);
#endif
      e->thread_main(cpu);
      t_parked[cpu] = true;
#ifdef CMACHECK_ASAN_FIBERS
      __sanitizer_start_switch_fiber(&t_fake_stack[cpu], e->main_bottom_, e->main_size_);
#endif
      if (!_setjmp(t_home[cpu])) _longjmp(e->main_jmp_, 1);
    }
  }

  // The first entry into CPU `cpu`'s stack on this OS thread, or after a run left its fiber
  // inside an operation: a fresh context (the abandoned frames are overwritten).
  static void start_fiber(uint8_t cpu) {
    ucontext_t& ctx = t_first_entry[cpu];
    getcontext(&ctx);
    ctx.uc_stack.ss_sp = t_stacks[cpu].get();
    ctx.uc_stack.ss_size = kStackSize;
    ctx.uc_link = nullptr;
    makecontext(&ctx, &Engine::fiber_loop, 0);
    setcontext(&ctx);
  }

  void thread_main(uint8_t cpu) {
    Thread& th = threads_[cpu];
    while (true) {
      OpRecord& rec = records_[static_cast<size_t>(th.record)];
      const Statement& st = trace_.statements[rec.statement];
      const Op& op = std::get<Op>(st.body);
      if (runnable_op(op)) {
        impl_.apply(op, rec.out);
        ++ops_run_;
      } else {
        rec.skipped = true;
        rec.out.clear();
        ++skipped_;
      }
      ++th.next;
      event_ = Event{EventKind::op_end, {}};
      if (th.next == th.ops.size()) {
        th.done = true;
        return;
      }
      yield();
    }
  }

  // An operation on a handle its thread failed to bind in this schedule is skipped (a
  // binding of a handle still live too): the trace is well formed in every schedule.
  bool runnable_op(const Op& op) const {
    const auto use = handle_use(op);
    if (!use) return true;
    return use->binds ? !impl_.is_live(use->id) : impl_.is_live(use->id) && impl_.allocation(use->id)->family == use->family;
  }

  void yield() {
    Thread& th = threads_[running_];
#ifdef CMACHECK_ASAN_FIBERS
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, main_bottom_, main_size_);
#endif
    // A fiber's first entry is makecontext's; every later switch is _setjmp/_longjmp, which
    // (unlike swapcontext) saves no signal mask: no system call per step.
    if (!_setjmp(th.jmp)) _longjmp(main_jmp_, 1);
#ifdef CMACHECK_ASAN_FIBERS
    __sanitizer_finish_switch_fiber(fake, &main_bottom_, &main_size_);
#endif
  }

  void resume(uint8_t cpu) {
    running_ = cpu;
    impl_.set_cpu(cpu);
    t_entry_engine = this;
    t_entry_cpu = cpu;
#ifdef CMACHECK_ASAN_FIBERS
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, t_stacks[cpu].get(), kStackSize);
#endif
    Thread& th = threads_[cpu];
    if (!_setjmp(main_jmp_)) {
      if (!th.started) {
        th.started = true;
        if (t_parked[cpu]) {
          t_parked[cpu] = false;
          _longjmp(t_home[cpu], 1);
        }
        start_fiber(cpu);
      }
      _longjmp(th.jmp, 1);
    }
#ifdef CMACHECK_ASAN_FIBERS
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  }

  bool can_run(uint8_t t) const {
    const Thread& th = threads_[t];
    if (th.done) return false;
    if (th.in_op && th.waiting_for && impl_.off_lru(*th.waiting_for)) return false;
    return th.in_op ? !th.blocked : th.next < th.ops.size();
  }

  // The default schedule (docs/concurrency.md): the current CPU runs on until its operation
  // ends or blocks; then the most recently preempted CPU resumes; else the next operation in
  // listing order starts.
  std::optional<uint8_t> default_choice(const Boundary& b) const {
    if (!b.at_start) {
      const Thread& c = threads_[b.cpu];
      if (c.in_op && can_run(b.cpu)) return b.cpu;
    }
    for (auto it = preempted_.rbegin(); it != preempted_.rend(); ++it)
      if (can_run(*it) && threads_[*it].in_op) return *it;
    size_t best = SIZE_MAX;
    std::optional<uint8_t> who;
    for (uint8_t t = 0; t < threads_.size(); ++t) {
      const Thread& th = threads_[t];
      if (th.in_op || th.done || th.next >= th.ops.size()) continue;
      if (th.ops[th.next] < best) {
        best = th.ops[th.next];
        who = t;
      }
    }
    if (who) return who;
    for (uint8_t t = 0; t < threads_.size(); ++t)
      if (can_run(t)) return t;
    return std::nullopt;
  }

  uint8_t choose(const Boundary& b, uint8_t fallback) {
    std::array<uint8_t, impl::kMaxCpus> opts{};
    size_t n = 0;
    for (uint8_t t = 0; t < threads_.size(); ++t)
      if (can_run(t)) opts[n++] = t;
    if (draining_ || n <= 1) return fallback;
    if (options_.choices && options_.kind == ScheduleKind::pct && !b.at_start &&
        std::find(change_points_.begin(), change_points_.end(), step_) != change_points_.end())
      threads_[b.cpu].priority = -static_cast<int>(step_);  // a PCT change point: below every other
    // Conflict-directed choice points: when the step the default schedule runs next commutes
    // with every other CPU's next step, every choice here gives the same state (a replay's
    // switches are followed wherever they are).
    if ((options_.prescribed || options_.choices) && options_.conflict_points && !conflicting(fallback)) {
      ++skipped_choice_points_;
      return fallback;
    }
    ++choice_points_met_;
    if (options_.prescribed) return prescribed_choice(b, fallback, opts, n);
    if (!options_.choices) {  // replay: the trace's switches
      for (size_t i = 0; i < trace_.switches.size(); ++i) {
        const Switch& sw = trace_.switches[i];
        const bool match = sw.at_start ? b.at_start
                                       : !b.at_start && sw.thread == b.cpu && sw.op == b.op && sw.label == b.label &&
                                             sw.occurrence == b.occurrence;
        if (!match || used_[i]) continue;
        used_[i] = true;
        if (!can_run(sw.to)) {
          if (options_.lenient_schedule) return fallback;
          malformed(sw.line, "schedule: " + print_switch(sw) + ": T" + num(sw.to) + " cannot run there");
          return fallback;
        }
        return sw.to;
      }
      return fallback;
    }
    ChoiceSource& in = *options_.choices;
    switch (options_.kind) {
      case ScheduleKind::walk: return opts[in.below(n)];
      case ScheduleKind::bounded:
        if (preemptions_ < options_.preemptions && in.below(4) == 0) {
          const uint8_t pick = opts[in.below(n)];
          if (pick != fallback) ++preemptions_;
          return pick;
        }
        return fallback;
      case ScheduleKind::pct: {
        uint8_t best = opts[0];
        for (size_t i = 1; i < n; ++i)
          if (threads_[opts[i]].priority > threads_[best].priority) best = opts[i];
        return best;
      }
    }
    return fallback;
  }

  const Op& op_of(const OpRecord& rec) const { return std::get<Op>(trace_.statements[rec.statement].body); }

  // What CPU `t` touches when it runs next (check/footprint.h).
  Footprint next_footprint(uint8_t t) const {
    const Thread& th = threads_[t];
    NextStep next;
    next.cpu = t;
    if (th.in_op) {
      next.op = &op_of(records_[static_cast<size_t>(th.record)]);
      next.last = th.last;
      next.blocked = th.last_blocked;
      next.nothing_reserved = th.nothing_reserved;
    } else {
      next.op = &std::get<Op>(trace_.statements[th.ops[th.next]].body);
    }
    return cmacheck::next_footprint(next, footprint_faults_);
  }

  // Whether the default's next step conflicts with anything another CPU has left to run (its
  // running operation and its later ones, whether it can run now or waits).
  bool conflicting(uint8_t fallback) const {
    const Footprint mine = next_footprint(fallback);
    for (uint8_t t = 0; t < threads_.size(); ++t) {
      const Thread& th = threads_[t];
      if (t != fallback && !th.done && conflict(mine, th.left[th.next])) return true;
    }
    return false;
  }

  // The step that ran must lie inside the footprint its CPU declared before it ran: a footprint
  // table that forgets a transition would hide schedules without a word.
  void check_footprint(uint8_t cpu, const OpRecord& rec, const Footprint& ran) {
    const Thread& th = threads_[cpu];
    if (th.declared.covers(ran) && th.whole[th.next].covers(ran)) return;
    stop(Violation{"footprint", op_text(rec) + " ran a step outside the footprint it declared (check/footprint.cpp; " +
                                    (threads_[cpu].last ? std::string(name(*threads_[cpu].last)) : std::string("its start")) +
                                    " was its last boundary)",
                   {}});
  }

  // Iterative context bounding (explore's --cpus): every boundary where more than one CPU
  // can run is a numbered choice point; the prescribed choices name some, the default
  // schedule takes the others. T0's setup operations run before any choice point.
  uint8_t prescribed_choice(const Boundary& b, uint8_t fallback, const std::array<uint8_t, impl::kMaxCpus>& opts, size_t n) {
    if (threads_[0].next < options_.setup_ops) return fallback;  // T0's setup, listed first, runs alone
    ChoicePoint cp;
    for (size_t i = 0; i < n; ++i) cp.runnable |= static_cast<uint8_t>(1u << opts[i]);
    cp.fallback = fallback;
    cp.preemption = !b.at_start && threads_[b.cpu].in_op && fallback == b.cpu;
    const auto point = static_cast<uint32_t>(choice_points_.size());
    choice_points_.push_back(cp);
    const std::vector<ScheduleChoice>& p = *options_.prescribed;
    if (next_prescribed_ < p.size() && p[next_prescribed_].point == point) {
      const uint8_t to = p[next_prescribed_++].to;
      if (to < threads_.size() && ((cp.runnable >> to) & 1u)) return to;
      malformed(0, "schedule: prescribed choice " + num(point) + ": T" + num(to) + " cannot run there");
    }
    return fallback;
  }

  void schedule_loop() {
    Boundary b = last_;
    while (draining_ || !malformed_) {
      const auto def = default_choice(b);
      if (!def) break;
      const uint8_t pick = choose(b, *def);
      if (malformed_ && !draining_) break;
      if (pick != *def && !draining_) {
        Switch sw;
        sw.to = pick;
        sw.at_start = b.at_start;
        if (!b.at_start) {
          sw.thread = b.cpu;
          sw.op = b.op;
          sw.label = b.label;
          sw.occurrence = b.occurrence;
        }
        recorded_.push_back(sw);
      }
      if (!b.at_start && pick != b.cpu && threads_[b.cpu].in_op && can_run(b.cpu)) preempted_.push_back(b.cpu);
      std::erase(preempted_, pick);
      Thread& th = threads_[pick];
      if (!th.in_op) start_op(pick);
      th.declared = next_footprint(pick);
      resume(pick);
      b = after_event(pick);
      last_ = b;
    }
    if (!malformed_ && !draining_ && !stopped_) {
      for (const Thread& th : threads_)
        if (!th.done) {
          stop(Violation{"deadlock", "no CPU can run, but T" + num(&th - threads_.data()) + " has not finished" + wait_text(th), {}});
          break;
        }
      if (!options_.choices && !options_.lenient_schedule)
        for (size_t i = 0; i < trace_.switches.size(); ++i)
          if (!used_[i]) {
            malformed(trace_.switches[i].line, "schedule: " + print_switch(trace_.switches[i]) + ": that step never happened");
            break;
          }
    }
  }

  void start_op(uint8_t cpu) {
    Thread& th = threads_[cpu];
    th.in_op = true;
    th.occurrences.fill(0);
    th.last.reset();
    th.last_blocked = false;
    th.nothing_reserved = false;
    OpRecord rec;
    rec.statement = th.ops[th.next];
    rec.cpu = cpu;
    rec.number = static_cast<uint32_t>(th.next + 1);
    rec.start = step_;
    for (const Thread& other : threads_)
      if (&other != &th && other.in_op) {
        rec.interfered = true;
        records_[static_cast<size_t>(other.record)].interfered = true;
      }
    th.record = static_cast<int>(records_.size());
    records_.push_back(std::move(rec));
  }

  Boundary after_event(uint8_t cpu) {
    Thread& th = threads_[cpu];
    OpRecord& rec = records_[static_cast<size_t>(th.record)];
    Boundary b;
    b.at_start = false;
    b.cpu = cpu;
    b.op = rec.number;
    ++step_;
    switch (event_.kind) {
      case EventKind::step:
        b.label = event_.info.label;
        b.occurrence = ++th.occurrences[static_cast<size_t>(b.label)];
        if (!draining_) check_footprint(cpu, rec, step_footprint(b.label, event_.info.area, op_of(rec)));
        th.last = b.label;
        th.last_blocked = false;
        th.nothing_reserved = b.label == StepLabel::reserve && event_.info.nbits == 0;
        if (!draining_) on_step(cpu, rec, event_.info);
        break;
      case EventKind::blocked: {
        // Waiting for cma_mutex, or (lru_wait) for a block another CPU has off the LRU.
        const StepLabel label = event_.info.label == StepLabel::lru_wait ? StepLabel::lru_wait : StepLabel::mutex;
        b.label = label;
        b.occurrence = ++th.occurrences[static_cast<size_t>(label)];
        if (!draining_) {
          Footprint waited;
          if (label == StepLabel::mutex) waited.mutex = true;
          else waited = Footprint::shared_state();
          check_footprint(cpu, rec, waited);
        }
        th.last = label;
        th.last_blocked = true;
        log(LogRow::Kind::blocked, cpu, event_.info);
        break;
      }
      case EventKind::op_end:
        b.label = StepLabel::op;
        b.occurrence = 1;
        th.in_op = false;
        if (!draining_) on_op_end(cpu, rec);
        break;
    }
    return b;
  }

  // ---- checks ---------------------------------------------------------------------------

  std::string op_text(const OpRecord& rec) const {
    return "T" + num(rec.cpu) + "." + num(rec.number) + " " + print_op(trace_, std::get<Op>(trace_.statements[rec.statement].body));
  }

  // What a CPU that cannot run waits for, for the deadlock report.
  std::string wait_text(const Thread& th) const {
    if (th.record < 0) return "";
    const std::string me = op_text(records_[th.record]);
    if (th.waiting_for) return ": " + me + " waits for " + trace_.handle_name(*th.waiting_for) + " to come back to the LRU";
    if (!th.blocked) return "";
    if (mutex_owner_ == kNoOwner) return ": " + me + " waits for cma_mutex";
    const Thread& owner = threads_[mutex_owner_];
    if (&owner == &th) return ": " + me + " waits for cma_mutex, which it holds itself";
    return ": " + me + " waits for cma_mutex, held by T" + num(mutex_owner_) +
           (owner.in_op && owner.record >= 0 ? " (" + op_text(records_[owner.record]) + ")"
                                             : ", whose operation returned without unlocking it");
  }

  void log(LogRow::Kind kind, uint8_t cpu, const impl::StepInfo& info) {
    log_.push_back(LogRow{kind, step_, cpu, static_cast<size_t>(threads_[cpu].record), info});
  }

  std::string row_text(const LogRow& row) const {
    const OpRecord& rec = records_[row.record];
    const impl::StepInfo& info = row.info;
    switch (row.kind) {
      case LogRow::Kind::blocked:
        return info.label == StepLabel::lru_wait ? "waits: its block is off the LRU" : "waits for cma_mutex";
      case LogRow::Kind::op_end:
        return op_text(rec) + (rec.skipped ? "  skipped (its handle is not live in this schedule)"
                                           : "  -> " + outcome_text(rec.out) +
                                                 (rec.pcp_bypassed ? " (pcp trylock failed: to the buddy allocator)" : ""));
      case LogRow::Kind::step: break;
    }
    std::string text(name(info.label));
    switch (info.label) {
      case StepLabel::reserve:
        return text + (info.nbits ? " bits " + num(info.first_bit) + ".." + num(info.first_bit + info.nbits - 1) : ": no window");
      case StepLabel::unreserve: return text + " bits " + num(info.first_bit) + ".." + num(info.first_bit + info.nbits - 1);
      case StepLabel::pcp_drain: return text + " cpu" + num(info.drained_cpu) + " (its pcp lock held)";
      case StepLabel::read_type: return text + " " + std::string(name(info.type_read)) + " (before zone->lock)";
      case StepLabel::isolate:
        text += " pageblocks " + num(info.first_pb) + ".." + num(info.last_pb);
        if (!info.isolated) text += ": refused";
        if (info.refused_isolated_pb) text += " (pageblock " + num(*info.refused_isolated_pb) + " is ISOLATE)";
        return text;
      case StepLabel::migrate:
        if (info.moved)
          return text + " " + trace_.handle_name(info.moved->handle) + ": " + num(raw(info.moved->from)) + " -> " +
                 num(raw(info.moved->to));
        if (info.busy_block) return text + ": " + trace_.handle_name(*info.busy_block) + " busy";
        return text;
      case StepLabel::undo:
        if (info.merged_over_isolated)
          text += ": the free block re-merged over pageblock " + num(*info.merged_over_isolated) +
                  ", which another operation holds ISOLATE (W7)";
        return text;
      default: return text;
    }
  }

  void on_step(uint8_t cpu, OpRecord& rec, const impl::StepInfo& info) {
    const int me = threads_[cpu].record;
    log(LogRow::Kind::step, cpu, info);
    switch (info.label) {
      case StepLabel::reserve: {
        // W1: what the search saw set by others (reservations, allocations, releases not yet
        // cleared), for the model's search of this attempt. An allocation counts too: a
        // cma_release that commits (free_range) before this operation's commit clears its
        // bits in the model first.
        for (const GhostBits& g : ghost_bits_)
          if (g.op != me && g.area == info.area) rec.view.push_back({rec.searches, g.area, g.first, g.n});
        ++rec.searches;
        if (info.nbits) ghost_bits_.push_back({GhostBits::Kind::reservation, me, info.area, info.first_bit, info.nbits});
        check_bits(info.area);
        break;
      }
      case StepLabel::unreserve:
        drop_bits(GhostBits::Kind::reservation, me, info.area, info.first_bit);
        check_bits(info.area);
        break;
      case StepLabel::free_range:
        rec.commit = step_;
        rec.isolated_elsewhere = isolated_by_others(me);
        rec.foreign_isolation = isolation_of_others(me);  // W6: frames freed into them stay off the page lists
        for (GhostBits& g : ghost_bits_)
          if (g.kind == GhostBits::Kind::allocation && g.area == info.area && g.first == info.first_bit) {
            g.kind = GhostBits::Kind::releasing;
            g.op = me;
          }
        check_bits(info.area);
        break;
      case StepLabel::clear_bits:
        drop_bits(GhostBits::Kind::releasing, me, info.area, info.first_bit);
        check_bits(info.area);
        break;
      case StepLabel::isolate:
        if (info.isolated) {
          rec.pcp_drains.push_back({info.first_pb, 0});  // this candidate's drains (Q4)
          for (uint64_t pb = info.first_pb; pb <= info.last_pb; ++pb) {
            if (iso_owner_[pb] != kNoOwner)
              return stop(Violation{"I7'", "pageblock " + num(pb) + " was isolated by " + op_text(records_[iso_owner_[pb]]) +
                                               " and again by " + op_text(rec),
                                    Pfn{pb << trace_.machine.pageblock_order}});
            iso_owner_[pb] = me;
            ++iso_owned_;
          }
        } else {
          if (info.refused_isolated_pb) {
            const uint64_t pb = *info.refused_isolated_pb;
            const int owner = iso_owner_[pb];
            const Pfn where{pb << trace_.machine.pageblock_order};
            if (owner == kNoOwner)
              return stop(Violation{"I7'", "pageblock " + num(pb) + " is ISOLATE, but no operation in flight isolated it",
                                    where});
            // The obstacle, checked: another operation's isolation, present at this step (W6).
            if (owner != me) rec.refusals.push_back({info.first_pb, pb});
            const Op& mine = std::get<Op>(trace_.statements[rec.statement].body);
            const Op& theirs = std::get<Op>(trace_.statements[records_[owner].statement].body);
            if (std::holds_alternative<CmaAlloc>(mine) && std::holds_alternative<CmaAlloc>(theirs))
              return stop(Violation{"W2", op_text(rec) + " found pageblock " + num(pb) + " isolated by " +
                                              op_text(records_[owner]) +
                                              ": cma_mutex serialises cma_alloc's alloc_contig_range (60a60e32cf91), "
                                              "so one cma_alloc never meets another's isolation (D18)",
                                    where});
          }
          // X1's refusal, its obstacle checked at this step: an unmovable, reclaimable or
          // contiguous allocation in the pageblock, or a CMA label (has_unmovable_pages). The
          // model refuses the same window though the obstacle may be gone at the commit (an
          // unmovable block freed in between); a refusal with no such obstacle gets no hint,
          // and the model's own X1 judges it.
          if (info.refused_unmovable_pb && obstacle_to_isolation(*info.refused_unmovable_pb))
            rec.refusals.push_back({info.first_pb, *info.refused_unmovable_pb});
        }
        break;
      case StepLabel::undo:
        for (uint64_t pb = info.first_pb; pb <= info.last_pb; ++pb)
          if (iso_owner_[pb] == me) {
            iso_owner_[pb] = kNoOwner;
            --iso_owned_;
          }
        break;
      case StepLabel::drain:
        // E3: lru_cache_disable, applied to the model at this step (set_lru_events_external).
        rec.lru_window = true;
        ++lru_windows_;
        model_events_.push_back({step_, ModelEvent::Kind::lru_disable});
        break;
      case StepLabel::pcp_drain:
        // Q4: the model drains that CPU's lists inside the operation, at the candidate whose
        // drain it was; and, when another operation commits between this step and this
        // operation's commit, at this step too, before that one (a model event, with the
        // pageblocks isolated now, this operation's and others', ISOLATE).
        if (rec.pcp_drains.empty()) rec.pcp_drains.push_back({});
        rec.pcp_drains.back().cpus |= static_cast<uint8_t>(1u << info.drained_cpu);
        model_events_.push_back({step_, ModelEvent::Kind::pcp_drain, info.drained_cpu, isolation_of_others(kNoOwner), me});
        break;
      case StepLabel::read_type:  // F2: the model frees the block as the profile decides from it
        rec.type_read = info.type_read;
        break;
      case StepLabel::take:
        // W4 under pcp_isolation=strict: a frame parked on a page list after the drain (its
        // free read the type before the isolation, F2) made the range busy. The kernel allows
        // it; memory offlining drains again for it (T20, 9683182612214).
        if (trace_.machine.pcp_strict && info.busy_on_pcp)
          return stop(Violation{"W4",
                                op_text(rec) + ": a frame of its range sits on a page list after the drain, so "
                                               "test_pages_isolated finds the range busy (weak isolation: the kernel "
                                               "allows it; pcp_isolation=strict does not)",
                                Pfn{*info.busy_on_pcp}});
        rec.last_take = step_;
        rec.foreign_isolation_at_take = isolation_of_others(me);
        if (rec.lru_window) {  // lru_cache_enable ran just before the take
          rec.lru_window = false;
          --lru_windows_;
          model_events_.push_back({step_, ModelEvent::Kind::lru_enable});
        }
        break;
      case StepLabel::migrate:
        // W8: the range was busy for a block whose free is in flight (F2's read done, its
        // zone->lock not yet taken), checked here in impl's record; the model, which applies
        // that free after this operation when it commits later, is told the block was held.
        if (info.busy_block)
          if (const impl::Allocation* a = impl_.allocation(*info.busy_block); a && a->freeing)
            rec.held.push_back(*info.busy_block);
        // X2 at its step: each block migrated here reaches the model at this step when
        // another operation commits before this one (a model event, with the pageblocks
        // isolated now, this operation's and others', ISOLATE); otherwise this operation
        // moves it at its commit, as the sequential model does.
        if (info.moved) {
          rec.isolation_at_last_move = isolation_of_others(me);
          model_events_.push_back({step_, ModelEvent::Kind::move, cpu, isolation_of_others(kNoOwner), me, *info.moved});
        }
        break;
      case StepLabel::op:
      case StepLabel::search:
      case StepLabel::mutex:
      case StepLabel::lru_isolate:
      case StepLabel::lru_wait:
        break;
    }
    if (stopped_) return;
    check_isolation();
    if (stopped_) return;
    // I12': lru_cache_disable is in force exactly while an operation is between its drain and
    // its take (E3).
    if (impl_.lru_disabled() != lru_windows_)
      return stop(Violation{"I12'", "lru_cache_disable count is " + num(impl_.lru_disabled()) + " but " +
                                        num(lru_windows_) + " operation(s) are between their drain and take steps",
                            std::nullopt});
    if (auto v = impl_.check_invariants(impl::CheckTier::cheap, /*quiescent=*/false)) stop(*v);
  }

  void on_op_end(uint8_t cpu, OpRecord& rec) {
    const int me = threads_[cpu].record;
    rec.end = step_;
    rec.pcp_bypassed = impl_.pcp_bypassed(cpu);
    const Op& op = std::get<Op>(trace_.statements[rec.statement].body);
    if (rec.commit == 0) {
      const bool at_take = rec.out.ok && is_contiguous(op) && rec.last_take;
      rec.commit = at_take ? *rec.last_take : step_;
      rec.isolated_elsewhere = at_take ? !rec.foreign_isolation_at_take.empty() : isolated_by_others(me);
      // W6 matters to the operations that take free blocks (an allocation, a move's target)
      // and to those that free frames (a frame freed into an ISOLATE pageblock goes to the
      // buddy allocator, not to a page list: free_unref_page).
      if (meets_isolation(op)) rec.foreign_isolation = at_take ? rec.foreign_isolation_at_take : isolation_of_others(me);
      // A contiguous request's moves are what others' isolation decides for it, and the ones
      // it applies at its commit are its last (those before another commit went as model
      // events): the isolation in force at its last move's step, not at its take.
      if (rec.isolation_at_last_move) rec.foreign_isolation = std::move(*rec.isolation_at_last_move);
    }
    // W8: a `migrate` that failed busy because another caller's migration had its block off
    // the LRU (isolate_lru_page fails); checked here, the step it looked.
    if (const auto* mg = std::get_if<Migrate>(&op); mg && !rec.out.ok && rec.out.reason == FailReason::busy &&
                                                     impl_.off_lru(mg->id))
      rec.held.push_back(mg->id);
    log(LogRow::Kind::op_end, cpu, {});
    if (const auto* ca = std::get_if<CmaAlloc>(&op); ca && rec.out.ok) {
      for (GhostBits& g : ghost_bits_)
        if (g.kind == GhostBits::Kind::reservation && g.op == me) {
          g.kind = GhostBits::Kind::allocation;
          g.op = -1;
        }
    }
    // A reservation left at the end of the operation is a leak (I5').
    for (const GhostBits& g : ghost_bits_)
      if (g.op == me && (g.kind == GhostBits::Kind::reservation || g.kind == GhostBits::Kind::releasing))
        return stop(Violation{"I5'", op_text(rec) + " ended holding bits " + num(g.first) + ".." + num(g.first + g.n - 1),
                              std::nullopt});
    // The statement's own `=> ok` / `=> fail` expectation.
    const Statement& st = trace_.statements[rec.statement];
    if (st.expectation && !rec.skipped) {
      const Expectation& e = *st.expectation;
      if (e.ok != rec.out.ok || (e.ok && e.pfn && *e.pfn != rec.out.pfn))
        return stop(Violation{"expect", op_text(rec) + " gave " + outcome_text(rec.out) + ", the trace expects " +
                                            (e.ok ? "ok" : "fail") + (e.pfn ? " pfn=" + num(raw(*e.pfn)) : ""),
                              std::nullopt});
    }
    if (auto v = impl_.check_invariants(impl::CheckTier::cheap, /*quiescent=*/false)) return stop(*v);
    bool quiet = true;
    for (const Thread& th : threads_) quiet = quiet && !th.in_op;
    if (quiet) quiescent_checks();
  }

  // Whether pageblock `pb` holds what makes normal-mode isolation refuse it (X1), read from
  // impl's frames as they are now (not from impl's own test of it).
  bool obstacle_to_isolation(uint64_t pb) const {
    const uint8_t B = trace_.machine.pageblock_order;
    if (impl_.label(Pfn{pb << B}) == MigrateType::cma) return true;
    for (uint64_t f = pb << B; f < (pb + 1) << B; ++f) {
      const impl::FrameRole r = impl_.role(Pfn{f});
      if (r == impl::FrameRole::unmovable || r == impl::FrameRole::reclaimable || r == impl::FrameRole::cma_allocated ||
          r == impl::FrameRole::contig_allocated)
        return true;
    }
    return false;
  }

  // The pageblocks other operations in flight own (I7'), as maximal runs of one owner.
  std::vector<model::Model::PageblockRange> isolation_of_others(int me) const {
    std::vector<model::Model::PageblockRange> out;
    if (iso_owned_ == 0) return out;
    for (uint64_t pb = 0; pb < iso_owner_.size(); ++pb) {
      const int owner = iso_owner_[pb];
      if (owner == kNoOwner || owner == me) continue;
      if (!out.empty() && out.back().last + 1 == pb && iso_owner_[pb - 1] == owner)
        out.back().last = pb;
      else
        out.push_back({pb, pb});
    }
    return out;
  }

  static bool meets_isolation(const Op& op) {
    return std::holds_alternative<Alloc>(op) || std::holds_alternative<Migrate>(op) || std::holds_alternative<Pin>(op) ||
           is_contiguous(op) || std::holds_alternative<Free>(op) || std::holds_alternative<FreeContig>(op) ||
           std::holds_alternative<CmaReleaseRaw>(op);
  }

  bool isolated_by_others(int me) const {
    if (iso_owned_ == 0) return false;
    for (int owner : iso_owner_)
      if (owner != kNoOwner && owner != me) return true;
    return false;
  }

  void drop_bits(GhostBits::Kind kind, int op, AreaId area, uint64_t first) {
    for (auto it = ghost_bits_.begin(); it != ghost_bits_.end(); ++it)
      if (it->kind == kind && it->op == op && it->area == area && it->first == first) {
        ghost_bits_.erase(it);
        return;
      }
  }

  // I5': each bit is set exactly when a live allocation, a reservation in flight or a
  // release not yet cleared covers it.
  void check_bits(AreaId area) {
    if (stopped_) return;
    const uint64_t n = impl_.area_bits(area);
    want_.assign(n, 0);
    for (const GhostBits& g : ghost_bits_)
      if (g.area == area)
        for (uint64_t b = g.first; b < g.first + g.n && b < n; ++b) ++want_[b];
    const AreaDecl& a = trace_.areas[raw(area)];
    for (uint64_t b = 0; b < n; ++b) {
      if (want_[b] > 1)
        return stop(Violation{"I5'", "bit " + num(b) + " of area " + a.name + " is reserved twice", a.base + PageCount{b << a.order_per_bit}});
      if (impl_.area_bit(area, b) != (want_[b] == 1))
        return stop(Violation{"I5'",
                              "bit " + num(b) + " of area " + a.name +
                                  (want_[b] ? " is clear under a live allocation or a reservation in flight"
                                            : " is set with no allocation, reservation or release under it"),
                              a.base + PageCount{b << a.order_per_bit}});
    }
  }

  // I7': a pageblock is ISOLATE exactly while an operation in flight owns it.
  void check_isolation() {
    const uint8_t B = trace_.machine.pageblock_order;
    for (uint64_t pb = 0; pb < iso_owner_.size(); ++pb) {
      const bool isolated = impl_.label(Pfn{pb << B}) == MigrateType::isolate;
      if (isolated != (iso_owner_[pb] != kNoOwner))
        return stop(Violation{"I7'",
                              "pageblock " + num(pb) +
                                  (isolated ? " is ISOLATE, but no operation in flight isolated it"
                                            : " lost its isolation while " + op_text(records_[iso_owner_[pb]]) + " owns it"),
                              Pfn{pb << B}});
    }
  }

  // At quiescence: impl's full tier, then the model, in commit order, up to here.
  // `final`: the end of the run; between, the full tier and the state comparison run at
  // every 16th quiescence (the sequential engine's full_every).
  //
  // When an operation of the segment (the operations since the last quiescence) overlapped
  // another and the commit order fails (an outcome or, at the end, the state), the audit
  // searches the segment's other linearizations (below) before calling the run inconclusive.
  void quiescent_checks(bool final = false) {
    if (stopped_) return;
    const bool full = final || ++quiescences_ % 16 == 0;
    if (auto v = impl_.check_invariants(full ? impl::CheckTier::full : impl::CheckTier::cheap)) return stop(*v);
    if (mutex_owner_ != kNoOwner) return stop(Violation{"I12", "cma_mutex is held with no operation in flight", {}});
    if (!model_ || inconclusive_) return;
    std::vector<size_t> order;
    for (size_t i = applied_; i < records_.size(); ++i)
      if (!records_[i].skipped) order.push_back(i);
    applied_ = records_.size();
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return records_[a].commit < records_[b].commit; });
    bool interfered = false;
    for (size_t i : order) interfered = interfered || records_[i].interfered;
    // The audit's starting point, copied into one kept for the purpose (its tables' memory
    // is reused from segment to segment).
    if (interfered) {
      if (segment_start_)
        *segment_start_ = *model_;
      else
        segment_start_.emplace(*model_);
    }
    Outcome mine;
    // The lru_cache_disable/enable steps (E3) go to the model in step order among the commits.
    size_t event = 0;
    bool interfered_so_far = false;
    for (size_t i : order) {
      OpRecord& rec = records_[i];
      std::optional<Violation> v;
      event = apply_model_events(*model_, event, rec.commit, static_cast<int>(i), &v);
      interfered_so_far = interfered_so_far || rec.interfered;
      if (!v) v = apply_to_model(*model_, rec, mine, static_cast<uint32_t>(i));
      if (!v) continue;
      // A departure: an operation that ran alone after only operations that ran alone is a
      // violation; after overlapping ones, the commit order was one linearization among others.
      if (!interfered_so_far) {
        failing_record_ = static_cast<int>(i);
        return stop(Violation{v->rule, op_text(rec) + ": " + v->message, v->where});
      }
      return audit(order, *segment_start_, op_text(rec) + ": " + v->rule + " " + v->message);
    }
    apply_model_events(*model_, event, UINT64_MAX, -1);
    model_events_.clear();
    if (!full && !interfered) return;
    if (auto d = state_difference(*model_)) {
      if (!interfered) return stop(Violation{"K1", "at quiescence " + d->text, d->where});
      return audit(order, *segment_start_, "at quiescence after overlapping operations " + d->text);
    }
  }

  // Applies one operation to `m` with the hints its steps recorded (W1 views, Q2 bypass, Q4
  // drains, F2 type read, W5), and compares its outcome with impl's.
  std::optional<Violation> apply_to_model(model::Model& m, const OpRecord& rec, Outcome& mine, uint32_t index) const {
    const Op& op = std::get<Op>(trace_.statements[rec.statement].body);
    m.set_operation(index);
    m.set_reserved_view(rec.view);
    m.set_cpu(rec.cpu);
    m.set_pcp_bypass(rec.pcp_bypassed);
    m.set_pending_pcp_drains(rec.pcp_drains);
    m.set_free_type_read(rec.type_read);
    m.set_isolated_elsewhere(rec.isolated_elsewhere);
    m.set_refusals(rec.refusals);
    m.set_foreign_isolation(rec.foreign_isolation);
    m.set_held_blocks(rec.held);
    auto v = m.apply(op, rec.out, mine);
    m.set_pcp_bypass(false);
    m.set_free_type_read(std::nullopt);
    m.set_isolated_elsewhere(false);
    m.set_refusals({});
    m.set_foreign_isolation({});
    const bool differ = rec.out.ok != mine.ok || (rec.out.ok && rec.out.pfn != mine.pfn) || rec.out.reason != mine.reason;
    if (!v && differ)
      v = Violation{"K1", "impl " + outcome_text(rec.out) + ", model " + outcome_text(mine), rec.out.ok ? std::optional(rec.out.pfn) : std::nullopt};
    return v;
  }

  // The model events (E3, Q4) of steps up to `step`, from `from` on, before operation `next`
  // (-1: none, the segment's end); returns where it stopped. A pcp drain is applied only
  // before another operation: its owner drains inside itself (Q4, per candidate), and a
  // drain its owner's own commit follows at once changes nothing another one could see.
  // A move (X2 at its step) likewise; one the model finds illegal there is a departure,
  // returned in `departure` (the events stop after it).
  size_t apply_model_events(model::Model& m, size_t from, uint64_t step, int next,
                            std::optional<Violation>* departure = nullptr) const {
    for (; from < model_events_.size() && model_events_[from].step <= step; ++from) {
      const ModelEvent& e = model_events_[from];
      switch (e.kind) {
        case ModelEvent::Kind::lru_disable: m.lru_cache_disable(); break;
        case ModelEvent::Kind::lru_enable: m.lru_cache_enable(); break;
        case ModelEvent::Kind::pcp_drain:
          if (next >= 0 && e.owner != next) m.drain_pcp_at_step(e.cpu, e.isolated);
          break;
        case ModelEvent::Kind::move:
          if (next >= 0 && e.owner != next)
            if (auto v = m.migrate_at_step(static_cast<uint32_t>(e.owner), e.cpu, e.move, e.isolated)) {
              if (departure)
                *departure = Violation{v->rule, op_text(records_[e.owner]) + " at step " + num(e.step) + ": " + v->message,
                                       v->where};
              return from + 1;
            }
          break;
      }
    }
    return from;
  }

  // The audit (Wing & Gong's search with Lowe's memo of (operations done, state)): a
  // depth-first search over the orders of the segment's operations that keep real-time
  // order (an operation that ended before another began comes first), each applied to a copy
  // of the model with its own hints, for one in which every outcome is impl's and the state
  // at the end is impl's. Found: the model goes on from that state, and the run stays in
  // lockstep. Not found within kAuditBudget applications, or no such order: inconclusive,
  // with the commit order's departure and what the audit tried.
  static constexpr uint64_t kAuditBudget = 4096;
  void audit(const std::vector<size_t>& order, const model::Model& start, const std::string& commit_order_departure) {
    ++audits_;
    Audit a{.order = order};
    a.must_follow.assign(order.size(), 0);
    if (order.size() <= 64) {
      for (size_t x = 0; x < order.size(); ++x)
        for (size_t y = 0; y < order.size(); ++y)
          if (records_[order[y]].end < records_[order[x]].start) a.must_follow[x] |= uint64_t{1} << y;
      audit_search(a, start, 0, 0, a.path);
    }
    model_events_.clear();
    if (a.witness) {
      ++audited_;
      model_ = std::make_unique<model::Model>(std::move(*a.witness));
      std::string as;
      for (size_t i : a.path) as += (as.empty() ? "" : ", ") + op_text(records_[i]);
      audit_notes_.push_back(commit_order_departure + "; the audit linearized the " + num(order.size()) +
                             " operations as " + as + " (" + num(a.applications) + " applications)");
      return;
    }
    inconclusive_ = true;
    inconclusive_reason_ = commit_order_departure + "; audit: " +
                           (order.size() > 64 ? std::string("more than 64 operations, not searched")
                            : a.exhausted      ? "no linearization in " + num(kAuditBudget) + " applications"
                                               : "no linearization of the " + num(order.size()) + " operations");
  }

  struct Audit {
    const std::vector<size_t>& order;  // by commit step: the commit order is tried first
    std::vector<uint64_t> must_follow;  // per operation, those that ended before it began
    uint64_t applications = 0;
    bool exhausted = false;
    std::optional<model::Model> witness;
    std::vector<size_t> path;  // the witness's order
    std::set<std::tuple<uint64_t, uint64_t, size_t>> seen;  // (done, state hash, model events applied)
  };

  bool audit_search(Audit& a, const model::Model& m, uint64_t done, size_t event, std::vector<size_t>& path) {
    const size_t n = a.order.size();
    if (std::popcount(done) == static_cast<int>(n)) {
      model::Model end = m;
      apply_model_events(end, event, UINT64_MAX, -1);
      if (state_difference(end)) return false;
      a.witness = std::move(end);
      return true;
    }
    if (!a.seen.insert({done, m.state_hash(), event}).second) return false;
    for (size_t x = 0; x < n; ++x) {
      if (done >> x & 1 || (a.must_follow[x] & ~done)) continue;
      if (++a.applications > kAuditBudget) {
        a.exhausted = true;
        return false;
      }
      const OpRecord& rec = records_[a.order[x]];
      model::Model next = m;
      std::optional<Violation> departure;
      const size_t e = apply_model_events(next, event, rec.commit, static_cast<int>(a.order[x]), &departure);
      Outcome mine;
      if (departure || apply_to_model(next, rec, mine, static_cast<uint32_t>(a.order[x]))) continue;
      path.push_back(a.order[x]);
      if (audit_search(a, next, done | uint64_t{1} << x, e, path)) return true;
      path.pop_back();
      if (a.exhausted) return false;
    }
    return false;
  }

  struct StateDifference {
    std::string text;
    std::optional<Pfn> where;
  };
  // How the model's state departs from impl's at quiescence, if it does.
  std::optional<StateDifference> state_difference(const model::Model& m) {
    auto differ = [](std::string what, std::optional<Pfn> where = std::nullopt) {
      return std::optional(StateDifference{std::move(what), where});
    };
    if (impl_.free_pages() != m.free_pages())
      return differ("impl has " + num(impl_.free_pages()) + " free frames, the model " + num(m.free_pages()));
    if (impl_.free_cma_pages() != m.free_cma_pages())
      return differ("impl has " + num(impl_.free_cma_pages()) + " free CMA frames, the model " + num(m.free_cma_pages()));
    for (uint32_t a = 0; a < trace_.areas.size(); ++a)
      if (!(impl_.area_stats(AreaId{a}) == m.area_stats(AreaId{a})))
        return differ("area " + trace_.areas[a].name + "'s used/maxchunk differ");
    for (uint32_t h = 0; h < trace_.handles.size(); ++h) {
      const HandleId id{h};
      if (impl_.is_live(id) != m.is_live(id))
        return differ(trace_.handles[h] + " is " + (impl_.is_live(id) ? "live in impl only" : "live in the model only"));
      if (!impl_.is_live(id)) continue;
      const impl::Allocation* r = impl_.allocation(id);
      ContentDigest d;
      for (uint64_t i = 0; i < raw(r->count); ++i) d.add(impl_.content(r->pfn + PageCount{i}));
      const auto p = m.placement(id);
      if (!p || p->pfn != r->pfn || p->digest != d.h)
        return differ(trace_.handles[h] + " is at pfn " + num(raw(r->pfn)) + " in impl, " +
                          (p ? num(raw(p->pfn)) : std::string("nowhere")) + " in the model (or its contents differ)",
                      r->pfn);
    }
    impl_entries_.clear();
    model_entries_.clear();
    impl_.batch_entries(impl_entries_);
    m.batch_entries(model_entries_);
    if (impl_entries_ != model_entries_)
      return differ("the CPUs' batches hold " + num(impl_entries_.size()) + " references in impl, " +
                    num(model_entries_.size()) + " in the model, or other blocks (E1)");
    // The lists: which list each free block is on (B10, F2) and every CPU's page lists (Q2).
    // A difference here would otherwise show only at the next operation that takes from them,
    // as a violation of an operation that ran alone.
    impl_entries_.clear();
    model_entries_.clear();
    impl_.pcp_entries(impl_entries_);
    m.pcp_entries(model_entries_);
    if (impl_entries_ != model_entries_) return differ("the CPUs' page lists hold other entries in impl than in the model (Q2)");
    // (linux-6.12 keeps every free block on its label's list, B11; the labels are compared
    // below. Only linux-6.1's lists can differ from the labels, B10.)
    if (trace_.machine.profile != Profile::linux_6_12) {
      impl_entries_.clear();
      model_entries_.clear();
      impl_.free_block_entries(impl_entries_);
      m.free_block_entries(model_entries_);
      if (impl_entries_ != model_entries_) {
        size_t i = 0;
        while (i < impl_entries_.size() && i < model_entries_.size() && impl_entries_[i] == model_entries_[i]) ++i;
        auto text = [](const std::vector<uint64_t>& v, size_t i) {
          if (i >= v.size()) return std::string("nothing");
          return "order " + num(v[i] >> 4 & 0xff) + " at pfn " + num(v[i] >> 12) + " on " +
                 label_name(static_cast<MigrateType>(v[i] & 0xf)) + "'s list";
        };
        return differ("the free blocks differ: impl has " + text(impl_entries_, i) + ", the model " + text(model_entries_, i),
                      Pfn{(i < impl_entries_.size() ? impl_entries_[i] : model_entries_[i]) >> 12});
      }
    }
    const uint8_t B = trace_.machine.pageblock_order;
    for (uint64_t pb = 0; pb < iso_owner_.size(); ++pb)
      if (impl_.label(Pfn{pb << B}) != m.label(Pfn{pb << B}))
        return differ("pageblock " + num(pb) + " is " + label_name(impl_.label(Pfn{pb << B})) + " in impl, " +
                          label_name(m.label(Pfn{pb << B})) + " in the model",
                      Pfn{pb << B});
    return std::nullopt;
  }

  void stop(Violation v) {
    if (stopped_) return;
    stopped_ = true;
    draining_ = true;  // the rest runs the default schedule, unchecked
    std::ostringstream r;
    r << "VIOLATION " << v.rule << ": " << v.message << "\n";
    r << "  schedule: " << (recorded_.empty() && trace_.switches.empty() ? "the default one" : "see the switch lines") << "\n";
    r << table();
    Pfn center = v.where.value_or(Pfn{0});
    if (raw(center) >= trace_.machine.pages) center = Pfn{0};
    r << "  impl frames around " << raw(center) << " (" << picture_legend() << "):\n";
    r << frame_picture_impl(impl_, center);
    size_t index = 0;
    if (failing_record_ >= 0) index = records_[static_cast<size_t>(failing_record_)].statement;
    else if (threads_[running_].record >= 0) index = records_[static_cast<size_t>(threads_[running_].record)].statement;
    finding_ = Finding{std::move(v), index, r.str()};
  }

  void malformed(uint32_t line, std::string message) {
    if (malformed_) return;
    malformed_ = true;
    malformed_line_ = line;
    malformed_message_ = std::move(message);
  }

  // One column per CPU (the Lincheck layout).
  std::string table() const {
    constexpr size_t kWidth = 44;
    std::string out = "  step";
    for (size_t t = 0; t < threads_.size(); ++t) {
      std::string head = " T" + num(t) + " (cpu" + num(t) + ")";
      head.resize(kWidth, ' ');
      out += " " + head;
    }
    out += "\n";
    for (const LogRow& row : log_) {
      std::string line = num(row.step);
      line.insert(0, line.size() < 6 ? 6 - line.size() : 0, ' ');
      for (size_t t = 0; t < threads_.size(); ++t) {
        std::string cell = t == row.cpu ? " " + row_text(row) : std::string();
        if (t + 1 < threads_.size()) cell.resize(std::max(kWidth, cell.size()), ' ');
        line += " " + cell;
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n";
    }
    return out;
  }

  Trace trace_;
  ConcurrentOptions options_;
  impl::Allocator impl_;
  std::unique_ptr<model::Model> model_;
  std::vector<Thread> threads_;
  std::deque<OpRecord> records_;  // stable: a CPU's fiber holds its record across steps
  std::vector<GhostBits> ghost_bits_;
  // What steps of an operation do to the model before its commit, applied in step order
  // among the commits: E3's lru_cache_disable/enable, Q4's drain of one CPU's lists.
  // X2's migration of one block, at its `migrate` step.
  struct ModelEvent {
    enum class Kind : uint8_t { lru_disable, lru_enable, pcp_drain, move } kind = Kind::lru_disable;
    uint64_t step = 0;
    uint8_t cpu = 0;  // pcp_drain: the CPU drained; move: the migrating CPU
    std::vector<model::Model::PageblockRange> isolated;  // pcp_drain, move: in force at the step
    int owner = -1;   // pcp_drain, move: the operation whose step it was
    Move move{};      // move
    ModelEvent(uint64_t step, Kind kind, uint8_t cpu = 0, std::vector<model::Model::PageblockRange> isolated = {},
               int owner = -1, Move move = {})
        : kind(kind), step(step), cpu(cpu), isolated(std::move(isolated)), owner(owner), move(move) {}
  };
  std::vector<ModelEvent> model_events_;  // not yet applied to the model
  uint32_t lru_windows_ = 0;          // operations between their drain and take steps
  std::vector<int> iso_owner_;
  uint64_t iso_owned_ = 0;  // pageblocks iso_owner_ gives an owner
  std::optional<model::Model> segment_start_;
  std::vector<uint32_t> want_;
  std::vector<uint64_t> impl_entries_, model_entries_;
  std::vector<uint8_t> preempted_;
  FootprintFaults footprint_faults_;
  uint64_t choice_points_met_ = 0, skipped_choice_points_ = 0;
  std::vector<Switch> recorded_;
  std::vector<ChoicePoint> choice_points_;
  size_t next_prescribed_ = 0;
  std::vector<bool> used_ = std::vector<bool>(trace_.switches.size(), false);
  std::vector<uint64_t> change_points_;
  std::vector<LogRow> log_;
  Boundary last_;
  Event event_;
  jmp_buf main_jmp_{};
#ifdef CMACHECK_ASAN_FIBERS
  const void* main_bottom_ = nullptr;  // the scheduler's stack, for ASan's fiber switches
  size_t main_size_ = 0;
#endif
  uint8_t running_ = 0;
  int mutex_owner_ = kNoOwner;
  uint32_t preemptions_ = 0;
  uint64_t step_ = 0, ops_run_ = 0, skipped_ = 0;
  size_t applied_ = 0;
  uint64_t quiescences_ = 0;
  uint64_t audits_ = 0, audited_ = 0;  // segments the audit searched; those it linearized
  std::vector<std::string> audit_notes_;
  int failing_record_ = -1;
  bool stopped_ = false, draining_ = false, malformed_ = false, inconclusive_ = false;
  std::optional<Finding> finding_;
  std::string malformed_message_, inconclusive_reason_;
  uint32_t malformed_line_ = 0;
};

}  // namespace

ConcurrentResult run_concurrent(const Trace& trace, const ConcurrentOptions& options) {
  auto engine = std::make_unique<Engine>(trace, options);
  ConcurrentResult r = engine->run();
  engine->give_back_tables();
  return r;
}

// ---------------------------------------------------------------------------------------
// The concurrent program generator

namespace {

// A movable block placed inside a CMA area: a `cma_alloc` on another CPU whose window covers
// it migrates it, and its owner's long-term pin then races with that migration (P2, W table;
// D15 lives between the `lru_isolate` and `migrate` steps).
struct HotBlock {
  HandleId id{};
  uint32_t area = 0;
  uint64_t offset = 0;    // from the area's base
  bool targeted = false;  // another CPU's cma_alloc was drawn to cover it
};

// A movable page placed outside the areas, whose pageblock another CPU's unmovable allocation
// may claim while its owner frees it (F2: D22, U61).
struct ColdBlock {
  HandleId id{};
  uint64_t pfn = 0;
  bool claimed = false;  // another CPU was drawn to allocate its buddy frame as unmovable
  bool freed = false;
};

struct ThreadPlan {
  std::vector<HandleId> blocks, cmas, contigs;
  std::vector<HotBlock> hot;
  std::vector<ColdBlock> cold;
};

}  // namespace

Trace generate_concurrent(ChoiceSource& in, uint8_t cpus, std::optional<Profile> profile) {
  GeneratorLimits limits;
  limits.profile = profile;
  limits.max_pages = 512;
  limits.min_pageblock_order = 1;
  limits.max_pageblock_order = 3;
  Generator g(in, limits);
  Trace t = g.header();
  t.machine.cpus = cpus;
  t.statements.clear();
  const uint64_t pb_pages = raw(t.machine.pageblock_pages());
  uint32_t names = 0;
  auto fresh = [&](char prefix) { return t.intern_handle(std::string(1, prefix) + std::to_string(++names)); };
  std::vector<ThreadPlan> plans(cpus);
  auto add = [&](uint8_t thread, Op op) {
    Statement st;
    st.body = std::move(op);
    st.thread = thread;
    t.statements.push_back(std::move(st));
  };
  auto pick = [&](const std::vector<HandleId>& v) { return v[in.below(v.size())]; };
  auto area = [&] { return AreaId{static_cast<uint32_t>(in.below(t.areas.size()))}; };
  // A frame inside an area, to put movable blocks where cma_alloc must migrate them.
  struct InArea {
    uint32_t area;
    uint64_t offset;
  };
  auto frame_in_area = [&]() -> std::optional<InArea> {
    if (t.areas.empty()) return std::nullopt;
    const auto a = static_cast<uint32_t>(in.below(t.areas.size()));
    return InArea{a, in.below(raw(t.areas[a].pages))};
  };
  auto pfn_of = [&](const InArea& f) { return t.areas[f.area].base + PageCount{f.offset}; };
  // The movable block placed at `f`, remembered as hot.
  auto alloc_at = [&](uint8_t th, Kind kind, std::optional<InArea> f) {
    ThreadPlan& p = plans[th];
    const HandleId h = fresh('m');
    p.blocks.push_back(h);
    if (f && kind == Kind::movable) p.hot.push_back(HotBlock{h, f->area, f->offset});
    add(th, Alloc{h, kind, Order{0}, f ? std::optional(pfn_of(*f)) : std::nullopt});
  };
  auto one_op = [&](uint8_t th) {
    ThreadPlan& p = plans[th];
    // The owner of a hot block another CPU's cma_alloc covers pins it long-term, often: the
    // pin and the migration race (P2; D15).
    std::vector<const HotBlock*> targeted;
    for (const HotBlock& b : p.hot)
      if (b.targeted) targeted.push_back(&b);
    if (!targeted.empty() && in.below(3) == 0) return add(th, Pin{targeted[in.below(targeted.size())]->id, true});
    // The owner of a cold block whose pageblock another CPU claims frees it, often: the free's
    // type read and the claim race (F2; D22, U61).
    for (ColdBlock& b : p.cold)
      if (b.claimed && !b.freed && in.below(2)) {
        b.freed = true;
        return add(th, Free{b.id});
      }
    for (int tries = 0; tries < 4; ++tries) {
      switch (in.below(12)) {
        case 0:
        case 1:
        case 2:
          if (t.areas.empty()) break;
          {
            const HandleId h = fresh('c');
            p.cmas.push_back(h);
            // Half the time, when another CPU has a hot block: a window from the area's base
            // that covers it, so that this cma_alloc migrates it.
            std::vector<HotBlock*> others;
            for (uint8_t o = 0; o < cpus; ++o)
              if (o != th)
                for (HotBlock& b : plans[o].hot) others.push_back(&b);
            if (!others.empty() && in.below(2)) {
              HotBlock& b = *others[in.below(others.size())];
              b.targeted = true;
              const uint64_t count = std::min<uint64_t>(raw(t.areas[b.area].pages), b.offset + 1 + in.below(pb_pages));
              return add(th, CmaAlloc{h, AreaId{b.area}, PageCount{count}, Order{0}});
            }
            const uint64_t count = 1 + in.below(std::min<uint64_t>(2 * pb_pages, 16));
            return add(th, CmaAlloc{h, area(), PageCount{count}, Order{static_cast<uint8_t>(in.below(3))}});
          }
        case 3:
          if (p.cmas.empty()) break;
          return add(th, CmaRelease{pick(p.cmas)});
        case 4: {
          // Half the time, when another CPU has a cold block: an unmovable (or reclaimable)
          // page at its buddy frame, which claims the pageblock (B5, B7).
          std::vector<ColdBlock*> cold;
          for (uint8_t o = 0; o < cpus; ++o)
            if (o != th)
              for (ColdBlock& b : plans[o].cold)
                if (!b.claimed) cold.push_back(&b);
          if (!cold.empty() && in.below(2)) {
            ColdBlock& b = *cold[in.below(cold.size())];
            b.claimed = true;
            const HandleId h = fresh('u');
            p.blocks.push_back(h);
            return add(th, Alloc{h, in.below(3) ? Kind::unmovable : Kind::reclaimable, Order{0}, Pfn{b.pfn ^ 1}});
          }
          if (in.below(3) == 0) {
            const uint64_t f = in.below(t.machine.pages);
            bool in_area = false;
            for (const AreaDecl& a : t.areas) in_area = in_area || (f >= raw(a.base) && f < raw(a.base) + raw(a.pages));
            if (!in_area) {
              const HandleId h = fresh('m');
              p.blocks.push_back(h);
              p.cold.push_back(ColdBlock{h, f});
              return add(th, Alloc{h, Kind::movable, Order{0}, Pfn{f}});
            }
          }
          std::optional<InArea> at;
          if (in.below(2)) at = frame_in_area();
          return alloc_at(th, in.below(4) ? Kind::movable : Kind::unmovable, at);
        }
        case 5:
          if (p.blocks.empty()) break;
          return add(th, in.below(2) ? Op{Free{pick(p.blocks)}} : Op{Migrate{pick(p.blocks)}});
        case 6:
          if (p.blocks.empty()) break;
          return add(th, in.below(2) ? Op{Pin{pick(p.blocks), in.below(3) == 0}} : Op{Unpin{pick(p.blocks)}});
        case 7: {
          const HandleId h = fresh('x');
          p.contigs.push_back(h);
          return add(th, AllocContig{h, PageCount{1 + in.below(pb_pages)}});
        }
        case 8:
          if (p.contigs.empty()) break;
          return add(th, FreeContig{pick(p.contigs)});
        case 9:
          if (t.areas.empty()) break;
          {
            const AreaDecl& a = t.areas[in.below(t.areas.size())];
            return add(th, CmaReleaseRaw{*t.find_area(a.name), a.base + PageCount{in.below(raw(a.pages))},
                                          PageCount{1 + in.below(4)}});
          }
        case 10: {  // E1: any CPU's batch may hold any thread's page
          std::vector<HandleId> any;
          for (const ThreadPlan& other : plans) any.insert(any.end(), other.blocks.begin(), other.blocks.end());
          if (any.empty()) break;
          return add(th, Touch{pick(any), kBatches[in.below(kBatchKinds)]});
        }
        case 11:
          return add(th, LruDrain{});
      }
    }
    alloc_at(th, Kind::movable, frame_in_area());
  };
  // A sequential prefix on T0, then the threads' programs, listed round robin.
  for (uint64_t i = in.below(4); i > 0; --i) one_op(0);
  std::vector<uint64_t> lengths(cpus);
  for (auto& n : lengths) n = 1 + in.below(3);
  for (uint64_t round = 0; round < 3; ++round)
    for (uint8_t th = 0; th < cpus; ++th)
      if (round < lengths[th]) one_op(th);
  return t;
}

}  // namespace cmacheck

// ---------------------------------------------------------------------------------------
// Shrinking and the race loop

namespace cmacheck {

namespace {

bool fails_with(const Trace& t, const ConcurrentOptions& options, const std::string& rule) {
  ConcurrentOptions replay = options;
  replay.choices = nullptr;
  const ConcurrentResult r = run_concurrent(t, replay);
  return r.status == RunStatus::violation && r.finding->violation.rule == rule;
}

// A schedule under which `t` fails the same way, searched with the scheduler swarm from
// fixed seeds (deterministic): the trace with the switches of the first one found.
std::optional<Trace> fails_under_some_schedule(const Trace& t, const ConcurrentOptions& options, const std::string& rule) {
  constexpr uint64_t kSchedules = 48;
  for (uint64_t k = 0; k < kSchedules; ++k) {
    SeededChoices choices(0x5eed0000 + k);
    ConcurrentOptions search = options;
    search.choices = &choices;
    search.kind = k % 3 == 0 ? ScheduleKind::walk : k % 3 == 1 ? ScheduleKind::bounded : ScheduleKind::pct;
    search.preemptions = 2;
    search.pct_depth = 2;
    const ConcurrentResult r = run_concurrent(t, search);
    if (r.status == RunStatus::violation && r.finding->violation.rule == rule && fails_with(r.ran, options, rule))
      return r.ran;
  }
  return std::nullopt;
}

// The candidate replayed with its switches taken as hints (lenient): when it fails the same
// way, the schedule that actually ran, written as the switches it needed, replaces it. A
// dropped switch can so take with it the later ones that no longer happen.
std::optional<Trace> fails_leniently(const Trace& t, const ConcurrentOptions& options, const std::string& rule) {
  ConcurrentOptions replay = options;
  replay.choices = nullptr;
  replay.lenient_schedule = true;
  const ConcurrentResult r = run_concurrent(t, replay);
  if (r.status != RunStatus::violation || r.finding->violation.rule != rule) return std::nullopt;
  if (!fails_with(r.ran, options, rule)) return std::nullopt;  // what ran must replay strictly
  return r.ran;
}

// The trace without statement `index` (an operation): switches naming it go, the later
// operations of its thread move up by one.
Trace without_statement(const Trace& t, size_t index) {
  Trace out = t;
  const uint8_t thread = t.statements[index].thread;
  uint32_t number = 0;
  for (size_t i = 0; i <= index; ++i)
    if (t.statements[i].thread == thread && std::holds_alternative<Op>(t.statements[i].body)) ++number;
  out.statements.erase(out.statements.begin() + static_cast<long>(index));
  std::vector<Switch> kept;
  for (Switch sw : t.switches) {
    if (!sw.at_start && sw.thread == thread) {
      if (sw.op == number) continue;
      if (sw.op > number) --sw.op;
    }
    kept.push_back(sw);
  }
  out.switches = std::move(kept);
  return out;
}

// The same removal, but a CPU switched to only to run the removed operation is skipped: the
// switch into it takes the target of the switch out of it (`switch T2 after T0.1:reserve`,
// `switch T3 after T2.1:op` become `switch T3 after T0.1:reserve`). Switches are written in
// the order they happened, so the switch into the operation is the last one before the
// first switch out of it that targets its CPU.
std::optional<Trace> without_statement_chained(const Trace& t, size_t index) {
  const uint8_t thread = t.statements[index].thread;
  uint32_t number = 0;
  for (size_t i = 0; i <= index; ++i)
    if (t.statements[i].thread == thread && std::holds_alternative<Op>(t.statements[i].body)) ++number;
  std::vector<Switch> sw = t.switches;
  for (size_t out = 0; out < sw.size(); ++out) {
    if (sw[out].at_start || sw[out].thread != thread || sw[out].op != number) continue;
    for (size_t in = out; in-- > 0;)
      if (sw[in].to == thread) {
        sw[in].to = sw[out].to;
        sw.erase(sw.begin() + static_cast<long>(out));
        Trace candidate = t;
        candidate.switches = std::move(sw);
        return without_statement(candidate, index);
      }
    return std::nullopt;
  }
  return std::nullopt;
}

// Whether a switch names CPU `cpu`: as the CPU that runs next, or as the CPU whose step it follows.
bool names(const Switch& sw, uint8_t cpu) { return sw.to == cpu || (!sw.at_start && sw.thread == cpu); }

// The trace without any operation of CPU `cpu`, and without the switches that name it. Its
// handles go with it (a handle belongs to one CPU).
Trace without_cpu(const Trace& t, uint8_t cpu) {
  Trace out = t;
  std::erase_if(out.statements, [&](const Statement& st) { return st.thread == cpu; });
  std::erase_if(out.switches, [&](const Switch& sw) { return names(sw, cpu); });
  return out;
}

// CPU `from`'s operations issued by CPU `to` instead, in listing order: `to`'s program becomes
// the two programs merged as listed, and the switches naming `to`'s operations are renumbered.
// None when a switch names `from` (its steps would have no CPU to follow).
std::optional<Trace> merged_into(const Trace& t, uint8_t from, uint8_t to) {
  if (std::any_of(t.switches.begin(), t.switches.end(), [&](const Switch& sw) { return names(sw, from); }))
    return std::nullopt;
  Trace out = t;
  std::vector<uint32_t> renumbered{0};  // old operation number of `to` (1-based) -> new
  uint32_t merged = 0;
  for (Statement& st : out.statements) {
    if (st.thread != from && st.thread != to) continue;
    if (std::holds_alternative<Op>(st.body)) ++merged;
    if (st.thread == to && std::holds_alternative<Op>(st.body)) renumbered.push_back(merged);
    st.thread = to;
  }
  for (Switch& sw : out.switches)
    if (!sw.at_start && sw.thread == to) sw.op = renumbered.at(sw.op);
  return out;
}

// The CPUs that issue operations renumbered densely in order of first use, and `cpus=` lowered
// to their number, at least `min_cpus`. One CPU without switches is a sequential trace (no
// `cpus=`, no `Tn:`); switches need `cpus=2` at least.
Trace compacted(const Trace& t, uint8_t min_cpus) {
  std::array<int, impl::kMaxCpus> renumber;
  renumber.fill(-1);
  int next = 0;
  auto number = [&](uint8_t cpu) {
    if (renumber[cpu] < 0) renumber[cpu] = next++;
    return static_cast<uint8_t>(renumber[cpu]);
  };
  Trace out = t;
  for (Statement& st : out.statements) st.thread = number(st.thread);
  for (Switch& sw : out.switches) {  // (a switch naming an idle CPU makes the candidate malformed)
    sw.to = number(sw.to);
    if (!sw.at_start) sw.thread = number(sw.thread);
  }
  out.machine.cpus = static_cast<uint8_t>(std::max({next, int{min_cpus}, out.switches.empty() ? 1 : 2}));
  return out;
}

// Fewer CPUs (concurrency-design.md section 4.5, "drop threads"): all the operations of one
// CPU dropped at once, else moved to another CPU when no switch names them; then the CPUs
// left renumbered and `cpus=` lowered. One CPU without switches becomes a sequential trace (a
// sequential bug stays a sequential trace), accepted only when the sequential engine, which
// `cmacheck replay` runs it with, fails too; else it keeps `cpus=2`.
bool fewer_cpus(Trace& best, const ConcurrentOptions& options, const std::string& rule) {
  auto has_ops = [&](uint8_t cpu) {
    return std::any_of(best.statements.begin(), best.statements.end(), [&](const Statement& st) { return st.thread == cpu; });
  };
  auto take = [&](const Trace& candidate) {
    if (fails_with(candidate, options, rule)) {
      best = candidate;
      return true;
    }
    if (auto ran = fails_leniently(candidate, options, rule)) {
      best = std::move(*ran);
      return true;
    }
    return false;
  };
  bool progress = false;
  for (bool again = true; again;) {
    again = false;
    for (uint8_t cpu = best.machine.cpus; cpu-- > 0 && !again;) {
      if (!has_ops(cpu)) continue;
      again = take(without_cpu(best, cpu));
      for (uint8_t to = 0; to < best.machine.cpus && !again; ++to)
        if (to != cpu && has_ops(to))
          if (auto merged = merged_into(best, cpu, to)) again = take(*merged);
    }
    progress = progress || again;
  }
  for (uint8_t min_cpus : {1, 2}) {
    const Trace compact = compacted(best, min_cpus);
    if (compact.machine.cpus >= best.machine.cpus && compact == best) break;
    if (!fails_with(compact, options, rule)) continue;
    if (!compact.concurrent()) {
      RunOptions sequential;
      sequential.faults = options.faults;
      sequential.profile = options.profile;
      sequential.lockstep = options.lockstep;
      if (run_trace(compact, sequential).status != RunStatus::violation) continue;
    }
    best = compact;
    return true;
  }
  return progress;
}

// The seed of stream b of seed a: the (b+1)-th SplitMix64 output of a.
uint64_t mix(uint64_t a, uint64_t b) {
  SeededChoices s(a + 0x9e3779b97f4a7c15ull * b);
  return s.next();
}

}  // namespace

Trace shrink_concurrent(const Trace& failing, const ConcurrentOptions& options, const std::string& rule) {
  Trace best = failing;
  {
    Trace sequential = best;
    sequential.switches.clear();
    if (fails_with(sequential, options, rule)) best = std::move(sequential);
  }
  for (bool progress = true; progress;) {
    progress = fewer_cpus(best, options, rule);
    for (size_t i = best.statements.size(); i-- > 0;) {
      Trace candidate = without_statement(best, i);
      if (fails_with(candidate, options, rule)) {
        best = std::move(candidate);
        progress = true;
        continue;
      }
      if (auto chained = without_statement_chained(best, i); chained && fails_with(*chained, options, rule)) {
        best = std::move(*chained);
        progress = true;
      }
    }
    for (size_t i = best.switches.size(); i-- > 0;) {
      if (i >= best.switches.size()) continue;
      Trace candidate = best;
      candidate.switches.erase(candidate.switches.begin() + static_cast<long>(i));
      if (fails_with(candidate, options, rule)) {
        best = std::move(candidate);
        progress = true;
      } else if (auto ran = fails_leniently(candidate, options, rule); ran && ran->switches.size() < best.switches.size()) {
        best = std::move(*ran);
        progress = true;
      }
    }
    // An operation dropped with its schedule taken as hints (the switches naming the
    // thread's later operations shift, and some no longer happen), else with a schedule
    // searched afresh: the switches that made the bigger program fail may name the dropped
    // operation's steps, while the smaller program fails under another schedule.
    for (size_t i = best.statements.size(); i-- > 0;) {
      if (i >= best.statements.size()) continue;
      const Trace smaller = without_statement(best, i);
      if (auto ran = fails_leniently(smaller, options, rule)) {
        best = std::move(*ran);
        progress = true;
      } else if (auto found = fails_under_some_schedule(smaller, options, rule)) {
        best = std::move(*found);
        progress = true;
      }
    }
  }
  // One switch instead of several: the shrinker above only drops switches, so a schedule
  // that needs one preemption at another step keeps the detour it was found with. Every
  // single switch (each CPU's each operation and step label, occurrences 1-3, to each other
  // CPU, or one at the start) is tried; a switch naming a step that never comes makes the
  // candidate malformed, which fails_with rejects at once.
  if (best.switches.size() > 1) {
    std::array<uint32_t, impl::kMaxCpus> ops{};
    for (const Statement& st : best.statements)
      if (std::holds_alternative<Op>(st.body)) ++ops[st.thread];
    std::vector<Switch> singles;
    for (uint8_t to = 0; to < best.machine.cpus; ++to) singles.push_back(Switch{.to = to, .at_start = true});
    for (uint8_t from = 0; from < best.machine.cpus; ++from)
      for (uint32_t op = 1; op <= ops[from]; ++op)
        for (StepLabel label : kStepLabels)
          for (uint32_t occurrence = 1; occurrence <= 3; ++occurrence)
            for (uint8_t to = 0; to < best.machine.cpus; ++to)
              if (to != from && ops[to])
                singles.push_back(Switch{.to = to, .thread = from, .op = op, .label = label, .occurrence = occurrence});
    for (const Switch& sw : singles) {
      Trace candidate = best;
      candidate.switches = {sw};
      if (fails_with(candidate, options, rule)) {
        best = std::move(candidate);
        break;
      }
    }
  }
  // The single switch may have freed a CPU that a switch named.
  fewer_cpus(best, options, rule);
  return best;
}

// An inconclusive reason without what varies between runs: "T1.2 cma_alloc a 4 -> h3: K1
// impl busy, model ok at 17" becomes "cma_alloc: K1 impl busy, model ok at #".
std::string inconclusive_kind(const std::string& reason) {
  std::string r = reason;
  static const std::regex op(R"(^T\d+\.\d+ (\w+)[^:]*:)");
  std::smatch m;
  if (std::regex_search(r, m, op)) r = m[1].str() + ":" + m.suffix().str();
  static const std::regex number(R"(\b\d+\b)");
  return std::regex_replace(r, number, "#");
}

RaceResult race(const RaceOptions& o) {
  RaceResult res;
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  double last_progress = 0;
  for (uint64_t p = 0; o.max_programs == 0 || p < o.max_programs; ++p) {
    if (o.max_programs == 0 && elapsed() >= o.seconds) break;
    const uint64_t program_seed = mix(o.seed, p);
    SeededChoices program(program_seed);
    const uint8_t cpus = o.cpus ? o.cpus : static_cast<uint8_t>(2 + program.below(3));
    const Trace t = generate_concurrent(program, cpus, o.profile);
    ++res.programs;
    for (uint32_t s = 0; s < o.schedules; ++s) {
      SeededChoices schedule(mix(program_seed, s + 1));
      ConcurrentOptions c;
      c.faults = o.faults;
      c.profile = o.profile;
      c.choices = &schedule;
      c.kind = o.kind ? *o.kind : static_cast<ScheduleKind>(schedule.below(3));
      c.pct_depth = 1 + static_cast<uint32_t>(schedule.below(3));
      c.preemptions = 1 + static_cast<uint32_t>(schedule.below(2));
      c.conflict_points = o.conflict_points;
      ConcurrentResult r = run_concurrent(t, c);
      ++res.runs;
      res.steps += r.steps;
      res.choices_offered += r.choices_offered;
      res.choices_commuting += r.choices_commuting;
      res.ops += r.ops;
      res.inconclusive += r.inconclusive;
      res.audits += r.audits;
      res.audited += r.audited;
      if (r.audited && !res.first_audited) res.first_audited = r.ran;
      if (r.inconclusive) {
        RaceResult::InconclusiveKind& k = res.inconclusive_kinds[inconclusive_kind(r.inconclusive_reason)];
        if (k.count++ == 0) {
          k.program_seed = program_seed;
          k.schedule = s;
          k.example = r.inconclusive_reason;
          k.ran = r.ran;
        }
      }
      if (r.status == RunStatus::violation) {
        res.program_seed = program_seed;
        res.seconds = elapsed();
        if (o.shrink) {
          ConcurrentOptions replay = c;
          replay.choices = nullptr;
          res.shrunk = shrink_concurrent(r.ran, replay, r.finding->violation.rule);
        }
        res.finding = std::move(r);
        return res;
      }
    }
    if (o.progress && elapsed() - last_progress >= 1) {
      last_progress = elapsed();
      o.progress(res.programs, res.runs, last_progress);
    }
  }
  res.seconds = elapsed();
  return res;
}

}  // namespace cmacheck
