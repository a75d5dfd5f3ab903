// Throughput of the reference allocator and of the lockstep checker. Figures go into the
// README with the machine they came from; no timed unit tests.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "check/concurrent.h"
#include "check/decode.h"
#include "check/runner.h"
#include "impl/allocator.h"
#include "trace/generate.h"

using namespace cmacheck;

namespace {

MachineDecl machine(uint64_t pages, uint8_t pb = 9, uint8_t max = 10) { return MachineDecl{pages, pb, max}; }

// Order-0 alloc + free pairs on a 1 GiB machine, with a background of live pages.
void BM_Order0AllocFree(benchmark::State& state) {
  const bool cheap = state.range(0) != 0;
  impl::Allocator a(machine(262144), {});
  Outcome out;
  for (uint32_t i = 0; i < 1000; ++i) a.alloc(HandleId{i}, Kind::movable, Order{0}, std::nullopt, out);
  const HandleId h{5000};
  for (auto _ : state) {
    a.alloc(h, Kind::movable, Order{0}, std::nullopt, out);
    if (cheap) benchmark::DoNotOptimize(a.check_invariants(impl::CheckTier::cheap));
    a.free(h, out);
    if (cheap) benchmark::DoNotOptimize(a.check_invariants(impl::CheckTier::cheap));
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(cheap ? "alloc+free pairs, cheap checks after each" : "alloc+free pairs, no checks");
}
BENCHMARK(BM_Order0AllocFree)->Arg(0)->Arg(1);

// A movable churn: random orders 0-3, random frees, 64k live slots on a 1 GiB machine.
void BM_MovableChurn(benchmark::State& state) {
  impl::Allocator a(machine(262144), {AreaDecl{"cma", Pfn{196608}, PageCount{65536}, 0}});
  SeededChoices rng(42);
  Outcome out;
  std::vector<bool> live(65536, false);
  for (auto _ : state) {
    const uint32_t slot = static_cast<uint32_t>(rng.below(live.size()));
    if (live[slot]) {
      a.free(HandleId{slot}, out);
      live[slot] = false;
    } else {
      a.alloc(HandleId{slot}, Kind::movable, Order{static_cast<uint8_t>(rng.below(4))}, std::nullopt, out);
      live[slot] = out.ok;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MovableChurn);

// cma_alloc + cma_release of 1/2/4/8 MiB on a 1 GiB machine with a 256 MiB area whose
// pageblocks hold movable pages (fragmented), so every request migrates.
void BM_CmaAllocRelease(benchmark::State& state) {
  const uint64_t mib = static_cast<uint64_t>(state.range(0));
  const uint64_t count = mib * 256;
  impl::Allocator a(machine(262144), {AreaDecl{"cma", Pfn{0}, PageCount{65536}, 0}});
  Outcome out;
  // every 16th frame of the area holds a movable page
  for (uint32_t i = 0; i < 4096; ++i) a.alloc(HandleId{i}, Kind::movable, Order{0}, Pfn{uint64_t{i} * 16}, out);
  uint64_t moved = 0;
  for (auto _ : state) {
    a.cma_alloc(HandleId{9000}, AreaId{0}, PageCount{count}, Order{0}, out);
    if (!out.ok) state.SkipWithError("cma_alloc failed");
    moved += out.moves.size();
    a.cma_release(HandleId{9000}, out);
    // Put the moved pages back where they were, so that every request migrates.
    state.PauseTiming();
    for (uint32_t i = 0; i < count / 16; ++i) {
      a.free(HandleId{i}, out);
      a.alloc(HandleId{i}, Kind::movable, Order{0}, Pfn{uint64_t{i} * 16}, out);
    }
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["pages_moved_per_op"] =
      benchmark::Counter(static_cast<double>(moved) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_CmaAllocRelease)->Arg(1)->Arg(2)->Arg(4)->Arg(8)->Unit(benchmark::kMicrosecond);

// Lockstep replay: generated operations on small worlds (256-4096 pages), impl and model
// side by side, cheap invariants after every operation, full checks every N.
void BM_Lockstep(benchmark::State& state) {
  RunOptions opts;
  opts.full_every = static_cast<uint32_t>(state.range(0));
  uint64_t ops = 0, seed = 1;
  GeneratorLimits limits;
  limits.min_pages = 256;
  for (auto _ : state) {
    SeededChoices rng(seed++, 4000);
    auto s = generate_and_run(rng, opts, limits, 1000);
    ops += s->ops_run();
    if (s->status() != RunStatus::ok) state.SkipWithError("finding in a correct build");
  }
  state.counters["ops_per_s"] = benchmark::Counter(static_cast<double>(ops), benchmark::Counter::kIsRate);
  state.counters["ops_per_trace"] = benchmark::Counter(static_cast<double>(ops) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_Lockstep)->Arg(16)->Arg(64)->Arg(256)->Unit(benchmark::kMillisecond);

// What one fuzz_lockstep execution costs without sanitizers: short random inputs as
// libFuzzer grows them (64 bytes each).
void BM_FuzzExec(benchmark::State& state) {
  RunOptions opts;
  opts.full_every = 16;
  SeededChoices rng(7);
  std::vector<uint8_t> bytes(static_cast<size_t>(state.range(0)));
  uint64_t ops = 0;
  for (auto _ : state) {
    for (auto& b : bytes) b = static_cast<uint8_t>(rng.next());
    ops += run_bytes(bytes, opts).ops;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["ops_per_exec"] = benchmark::Counter(static_cast<double>(ops) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_FuzzExec)->Arg(64)->Arg(512);

// Issue 17's cost goal: one concurrent program (2-4 CPUs, a random walk schedule) against the
// same operations run sequentially (cpus=1, listing order, the sequential engine). Both with
// the model; the concurrent one also checks the ghost invariants after every step.
std::vector<Trace> concurrent_programs() {
  std::vector<Trace> programs;
  for (uint64_t seed = 1; programs.size() < 64; ++seed) {
    SeededChoices in(seed);
    programs.push_back(generate_concurrent(in, static_cast<uint8_t>(2 + seed % 3)));
  }
  return programs;
}

void BM_ConcurrentProgram(benchmark::State& state) {
  const std::vector<Trace> programs = concurrent_programs();
  uint64_t ops = 0, i = 0;
  for (auto _ : state) {
    const Trace& t = programs[i % programs.size()];
    SeededChoices schedule(++i);
    ConcurrentOptions o;
    o.choices = &schedule;
    o.kind = ScheduleKind::walk;
    ops += run_concurrent(t, o).ops;
  }
  state.counters["ops_per_s"] = benchmark::Counter(static_cast<double>(ops), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ConcurrentProgram);

void BM_SameProgramSequential(benchmark::State& state) {
  std::vector<Trace> programs = concurrent_programs();
  for (Trace& t : programs) {
    t.machine.cpus = 1;
    for (Statement& st : t.statements) st.thread = 0;
  }
  uint64_t ops = 0, i = 0;
  for (auto _ : state) ops += run_trace(programs[i++ % programs.size()], RunOptions{}).ops;
  state.counters["ops_per_s"] = benchmark::Counter(static_cast<double>(ops), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SameProgramSequential);

}  // namespace

BENCHMARK_MAIN();
