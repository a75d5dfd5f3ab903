// The simulator: its statistics against published values, its determinism, and two sanity
// checks that bracket every answer it gives (a reservation without pins always succeeds; a
// zone whose every pageblock holds an unmovable page never does).
#include <gtest/gtest.h>

#include "sim/report.h"
#include "sim/sim.h"

using namespace cmacheck;
using namespace cmacheck::sim;

namespace {

// A small machine, so that the tests run in seconds under the sanitizers: 64 MiB, 2 MiB
// pageblocks, a 16 MiB area, requests of 1 to 8 MiB.
Workload small() {
  Workload w;
  w.memory_pages = 16'384;
  w.area_pages = 4'096;
  w.aging = 2;
  return w;
}

const Cell& cell(const Summary& s, Config c, uint64_t size) {
  for (const Cell& x : s.cells)
    if (x.config == c && x.size_pages == size) return x;
  ADD_FAILURE() << "no cell " << name(c) << " " << size;
  return s.cells.front();
}

// Newcombe, "Two-sided confidence intervals for the single proportion: comparison of seven
// methods", Statistics in Medicine 17 (1998), table II, method 3 (Wilson score, no
// continuity correction).
TEST(Wilson, MatchesNewcombesPublishedIntervals) {
  struct Case {
    uint64_t k, n;
    double low, high;
  };
  for (const Case& c : {Case{81, 263, 0.2553, 0.3662}, Case{15, 148, 0.0624, 0.1605}, Case{0, 20, 0.0, 0.1611},
                        Case{1, 29, 0.0061, 0.1718}}) {
    const Interval i = wilson(c.k, c.n);
    EXPECT_NEAR(i.low, c.low, 5e-5) << c.k << "/" << c.n;
    EXPECT_NEAR(i.high, c.high, 5e-5) << c.k << "/" << c.n;
    EXPECT_DOUBLE_EQ(i.estimate, static_cast<double>(c.k) / static_cast<double>(c.n));
  }
}

TEST(Wilson, IsExactAtTheEndsAndSymmetric) {
  EXPECT_EQ(wilson(0, 10).low, 0.0);
  EXPECT_EQ(wilson(10, 10).high, 1.0);
  EXPECT_NEAR(wilson(10, 10).low, 1 - wilson(0, 10).high, 1e-12);
  EXPECT_NEAR(wilson(5, 10).low, 0.2366, 5e-5);
  EXPECT_NEAR(wilson(5, 10).high, 0.7634, 5e-5);
  const Interval none = wilson(0, 0);
  EXPECT_EQ(none.low, 0.0);
  EXPECT_EQ(none.high, 1.0);
}

TEST(Sim, TrialSeedsDependOnSeedConfigurationAndTrialOnly) {
  EXPECT_EQ(trial_seed(1, Config::reservation, 3), trial_seed(1, Config::reservation, 3));
  EXPECT_NE(trial_seed(1, Config::reservation, 3), trial_seed(1, Config::no_reservation, 3));
  EXPECT_NE(trial_seed(1, Config::reservation, 3), trial_seed(1, Config::reservation, 4));
  EXPECT_NE(trial_seed(1, Config::reservation, 3), trial_seed(2, Config::reservation, 3));
}

TEST(Sim, ATrialIsAFunctionOfItsSeed) {
  const Workload w = small();
  const Trial a = run_trial(w, Config::no_reservation, 42, true);
  const Trial b = run_trial(w, Config::no_reservation, 42, false);
  EXPECT_EQ(a, b);  // the invariant tier does not change the result
  EXPECT_EQ(a.requests.size(), w.sizes.size());
  const Trial c = run_trial(w, Config::no_reservation, 43, false);
  EXPECT_NE(a.aging, c.aging);
}

static void expect_the_same_results_on_any_thread_count(const Workload& w) {
  Options o;
  o.trials = 6;
  o.seed = 7;
  o.full_every = 3;
  o.threads = 1;
  const Summary one = run(w, o);
  o.threads = 3;
  const Summary three = run(w, o);
  o.threads = 8;
  const Summary eight = run(w, o);
  EXPECT_EQ(one.cells, three.cells);
  EXPECT_EQ(one.cells, eight.cells);
  EXPECT_EQ(one.aging_mean, three.aging_mean);
  EXPECT_EQ(markdown(one), markdown(eight));
  EXPECT_EQ(csv(one), csv(three));
  EXPECT_EQ(svg(one), svg(three));
  o.seed = 8;
  const Summary other = run(w, o);
  EXPECT_NE(other.aging_mean, one.aging_mean);
}

// Also with a second CPU (Workload::background), whose sampled trials check impl's
// invariants between steps.
TEST(Sim, ResultsAreIdenticalForAnyThreadCount) {
  expect_the_same_results_on_any_thread_count(small());
  Workload w = small();
  w.pcp_high = 32;
  w.background = 0.5;
  expect_the_same_results_on_any_thread_count(w);
}

// Rule L4: short of pins, every window of an area can be emptied. The area holds movable
// pages (the aging fills memory to 100 % in every cycle), so requests do migrate.
TEST(Sim, AReservationWithoutPinsAlwaysSucceeds) {
  Workload w = small();
  w.pin_short = w.pin_long = 0;
  w.orders = {1.0};  // order-0 blocks: a migration target exists while one page is free
  Options o;
  o.trials = 12;
  o.configs = {Config::reservation};
  const Summary s = run(w, o);
  uint64_t migrated = 0;
  for (uint64_t size : w.sizes) {
    const Cell& c = cell(s, Config::reservation, size);
    EXPECT_EQ(c.successes, c.trials) << format_size(size);
    migrated += static_cast<uint64_t>(c.migrated_mean);
  }
  EXPECT_GT(migrated, 0u);
}

// Q4: the page lists hold pages at the request (the aging's frees park there), and the
// request drains them before it looks: with no pin every request still succeeds, every trial
// passes the full invariant tier (I1, I14) with lists in use, and the lists change the run.
TEST(Sim, PageListsAtTheRequestNeverFailAReservation) {
  Workload w = small();
  w.pin_short = w.pin_long = 0;
  w.orders = {1.0};
  w.pcp_high = 32;
  Options o;
  o.trials = 12;
  o.full_every = 1;
  o.configs = {Config::reservation};
  const Summary s = run(w, o);
  for (uint64_t size : w.sizes) EXPECT_EQ(cell(s, Config::reservation, size).successes, o.trials) << format_size(size);
  Workload without = w;
  without.pcp_high = 0;
  const Summary plain = run(without, o);
  bool differ = false;  // LIFO reuse places the aging's pages elsewhere: other windows, moves
  for (uint64_t size : w.sizes)
    differ |= !(cell(plain, Config::reservation, size) == cell(s, Config::reservation, size));
  EXPECT_TRUE(differ);
}

TEST(Sim, AReservationWithoutPinsAlwaysSucceedsWithTheDefaultOrderMix) {
  Workload w = small();
  w.pin_short = w.pin_long = 0;
  Options o;
  o.trials = 12;
  o.configs = {Config::reservation};
  const Summary s = run(w, o);
  for (uint64_t size : w.sizes) EXPECT_EQ(cell(s, Config::reservation, size).successes, o.trials) << format_size(size);
}

// Rule X1: an unmovable page makes every alloc_contig range that covers it fail. With only
// unmovable and reclaimable allocations, every pageblock holds one after the aging.
TEST(Sim, NoReservationNeverSucceedsWhenEveryPageblockHoldsAnUnmovablePage) {
  Workload w = small();
  w.unmovable = 0.5;
  w.reclaimable = 0.5;
  Options o;
  o.trials = 6;
  o.configs = {Config::no_reservation};
  const Summary s = run(w, o);
  ASSERT_EQ(s.aging_mean.size(), 1u);
  EXPECT_EQ(s.aging_mean[0].polluted_pageblocks, s.aging_mean[0].pageblocks);
  for (uint64_t size : w.sizes) {
    const Cell& c = cell(s, Config::no_reservation, size);
    EXPECT_EQ(c.successes, 0u) << format_size(size);
    EXPECT_EQ(c.failures[static_cast<size_t>(Failure::unmovable)], c.trials);
    EXPECT_EQ(c.clean_share, 0.0);
    EXPECT_EQ(c.migrated_mean, 0.0);  // X1 refuses before anything moves
    EXPECT_EQ(c.windows_mean, static_cast<double>(w.memory_pages / size));  // every candidate tried (C1)
  }
}

TEST(Sim, PinsInTheAreaAreWhatMakesAReservationFail) {
  Workload w = small();
  w.utilisation = 0.9;
  w.pin_short = 0.2;  // absurdly many, so that every window of the area holds one
  w.pin_long = 0;
  Options o;
  o.trials = 4;
  o.configs = {Config::reservation};
  const Summary s = run(w, o);
  const Cell& c = cell(s, Config::reservation, w.sizes.back());
  EXPECT_LT(c.successes, c.trials);
  EXPECT_EQ(c.failures[static_cast<size_t>(Failure::pinned)], c.trials - c.successes);
}

// A second CPU during the request (Workload::background): in a world where the request has
// one window, no pin and only order-0 pages, nothing but CPU 1 can fail it, and it does now
// and then (a block it pins or frees while the request migrates, a page it parks on its list
// after the drain); the same request made again succeeds, so each failure is transient.
// Without the second CPU every request succeeds.
TEST(Sim, ASecondCpuFailsARequestOnlyForAMoment) {
  Workload w = small();
  w.area_pages = 1'024;
  w.sizes = {1'024};  // one window: a busy one fails the request
  w.pin_short = w.pin_long = 0;
  w.orders = {1.0};
  w.pcp_high = 32;
  Options o;
  o.trials = 40;
  o.configs = {Config::reservation};
  const Summary alone = run(w, o);
  EXPECT_EQ(cell(alone, Config::reservation, 1'024).successes, o.trials);
  w.background = 0.5;
  const Summary two = run(w, o);
  const Cell& c = cell(two, Config::reservation, 1'024);
  EXPECT_LT(c.successes, c.trials);
  EXPECT_EQ(c.failures[static_cast<size_t>(Failure::transient)], c.trials - c.successes);
  EXPECT_NE(markdown(two).find("/ transient"), std::string::npos);
  EXPECT_NE(csv(two).find("failed_transient"), std::string::npos);
}

TEST(Sim, ABrokenAllocatorIsReportedNotMeasured) {
  Workload w = small();
  w.faults.add(impl::Fault::migration_drops_content);  // I8 on the first migration
  Options o;
  o.trials = 2;
  o.full_every = 0;  // the cheap tier alone must catch it
  try {
    run(w, o);
    FAIL() << "no violation";
  } catch (const SimViolation& v) {
    EXPECT_NE(v.message.find("I8"), std::string::npos) << v.message;
    EXPECT_NE(v.message.find("trial seed"), std::string::npos) << v.message;
  }
}

TEST(Workload, PresetsAreValid) {
  ASSERT_NE(find_preset("default"), nullptr);
  ASSERT_NE(find_preset("phone-2012"), nullptr);
  ASSERT_NE(find_preset("server"), nullptr);
  EXPECT_EQ(find_preset("nonsense"), nullptr);
  for (const Preset& p : presets()) EXPECT_EQ(p.workload.validate(), "") << p.name;
  EXPECT_EQ(find_preset("default")->workload.memory_pages, 1'048'576u);
}

TEST(Workload, ValidateNamesWhatIsWrong) {
  Workload w;
  w.utilisation = 1.2;
  EXPECT_NE(w.validate().find("utilisation"), std::string::npos);
  w = Workload{};
  w.area_pages = 100;
  EXPECT_NE(w.validate().find("area"), std::string::npos);
  w = Workload{};
  w.sizes = {w.area_pages * 2};
  EXPECT_NE(w.validate().find("does not fit"), std::string::npos);
  w = Workload{};
  w.unmovable = 0.7;
  w.reclaimable = 0.7;
  EXPECT_NE(w.validate().find("sum"), std::string::npos);
  w = Workload{};
  w.background = 1;  // the request would never get a step
  EXPECT_NE(w.validate().find("background"), std::string::npos);
}

TEST(Workload, OrderMixesParseAndPrint) {
  std::array<double, kMaxOrders> o{};
  std::string err;
  ASSERT_TRUE(parse_orders("0:50,3:25,9:25", o, err)) << err;
  EXPECT_EQ(o[0], 50);
  EXPECT_EQ(o[9], 25);
  EXPECT_EQ(format_orders(o), "0:50,3:25,9:25");
  EXPECT_FALSE(parse_orders("0:50,11:1", o, err));
  EXPECT_FALSE(parse_orders("x", o, err));
  EXPECT_FALSE(parse_orders("0:", o, err));
  EXPECT_EQ(o[0], 50);  // unchanged on failure
}

TEST(Report, SizesReadAsAKernelDeveloperWritesThem) {
  EXPECT_EQ(format_size(256), "1 MiB");
  EXPECT_EQ(format_size(1'048'576), "4 GiB");
  EXPECT_EQ(format_size(128), "512 KiB");
}

TEST(Report, TableCsvAndPlotNameEveryCell) {
  Workload w = small();
  Options o;
  o.trials = 2;
  const Summary s = run(w, o);
  const std::string md = markdown(s);
  EXPECT_NE(md.find("| 8 MiB | no reservation |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 1 MiB | reservation |"), std::string::npos) << md;
  const std::string c = csv(s);
  EXPECT_EQ(std::count(c.begin(), c.end(), '\n'), 1 + 2 * static_cast<long>(w.sizes.size()));
  const std::string g = svg(s);
  EXPECT_EQ(g.rfind("<svg", 0), 0u);
  EXPECT_NE(g.find("</svg>"), std::string::npos);
  EXPECT_EQ(std::count(g.begin(), g.end(), '<') - std::count(g.begin(), g.end(), '>'), 0);
}

}  // namespace
