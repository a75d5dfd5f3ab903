// Every property of the registry (registry.cpp) as a gtest named by its id; budgets come from
// RC_PARAMS (ctest sets a fixed seed and small budgets; `make properties` larger ones). A
// property that passed must have explored what it claims: below one of its floors, the test
// fails. Then the tests of the machinery itself: the table, the JSON result, the generated
// tables of docs/properties.md, the command line (cli.h), and that a floor fires.
//
// main: `properties_test --run ID ...` and the other commands of cli.h, else gtest.
#include <gtest/gtest.h>
#include <gtest/gtest-spi.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "properties/cli.h"
#include "properties/registry.h"
#include "properties/run.h"
#include "trace/parse.h"

namespace cmacheck::props {
namespace {

// One property's test: it passes and reaches its floors.
void check_property(const Property& p, const PropertyOptions& options) {
  const PropertyResult r = run_property(p, options);
  if (!r.passed) {
    ADD_FAILURE() << r.message;
    return;
  }
  std::cout << r.message << "\n";
  if (p.op_table) std::cout << distribution_table(stats_of(p.id));
  if (!p.floors.empty()) std::cout << floors_table(stats_of(p.id), p.floors);
  for (const std::string& f : r.floors_failed) ADD_FAILURE() << p.id << ": the generator stopped exploring: " << f;
}

class PropertyTest final : public ::testing::Test {
 public:
  explicit PropertyTest(const Property& p) : p_(p) {}
  void TestBody() override { check_property(p_, configured_options()); }

 private:
  const Property& p_;
};

const bool kRegistered = [] {
  for (const Property& p : properties())
    ::testing::RegisterTest(p.suite().c_str(), p.name().c_str(), nullptr, nullptr, __FILE__, __LINE__,
                            [&p]() -> ::testing::Test* { return new PropertyTest(p); });
  return true;
}();

// -- the table --------------------------------------------------------------------------

TEST(Registry, EveryEntryIsCompleteAndItsIdUnique) {
  std::set<std::string> ids;
  for (const Property& p : properties()) {
    EXPECT_TRUE(ids.insert(p.id).second) << "two properties are called " << p.id;
    EXPECT_EQ(std::count(p.id.begin(), p.id.end(), '.'), 1) << p.id << " is not Suite.Name";
    EXPECT_FALSE(p.suite().empty() || p.name().empty()) << p.id;
    EXPECT_NE(p.body, nullptr) << p.id;
    EXPECT_FALSE(p.rules.empty()) << p.id;
    EXPECT_FALSE(p.claim.empty()) << p.id;
    EXPECT_FALSE(p.floors.empty()) << p.id << " has no floor: nothing shows that it explores what it claims";
    EXPECT_FALSE(p.catches.empty() && p.catches_local.empty()) << p.id << " must catch some fault";
    std::set<impl::Fault> faults(p.catches.begin(), p.catches.end());
    EXPECT_EQ(faults.size(), p.catches.size()) << p.id << " lists a fault twice";
    EXPECT_FALSE(faults.count(impl::Fault::none)) << p.id;
    for (const LocalFault& f : p.catches_local) EXPECT_NE(f.inject, nullptr) << p.id << " " << f.name;
    EXPECT_EQ(find_property(p.id), &p);
  }
  EXPECT_EQ(find_property("Algebra.NoSuchProperty"), nullptr);
}

// -- the structured result --------------------------------------------------------------

TEST(Result, JsonRoundTrip) {
  PropertyResult r;
  r.property = "Algebra.ResultsAreAlignedAndContiguous";
  r.faults = {"align_to_area_base", "keep_bits_after_busy"};
  r.seed = UINT64_MAX;
  r.max_success = 300;
  r.max_size = 100;
  r.cases = 7;
  r.shrinks = 12;
  r.seconds = 0.1 + 0.2;
  r.rule = "A2, I4";
  r.failure = "cma_alloc pc1 align=3 returned pfn 12, \"not\" a multiple\tof 2^3 \\ (A2, I4)\n";
  r.counterexample_file = "/tmp/x.trace";
  r.counterexample = "machine pages=64\ncma_alloc pc1 area=a count=1 align=3 => ok pfn=8\n";
  r.floors_failed = {"checked.cma_alloc / cases = 0 / 1"};
  r.message = std::string("Falsifiable after 7 tests and 12 shrinks\x01");
  std::string error;
  const auto back = result_from_json(to_json(r), error);
  ASSERT_TRUE(back.has_value()) << error;
  EXPECT_EQ(*back, r);
}

TEST(Result, MalformedJsonIsAnError) {
  std::string error;
  for (const char* bad : {"", "{", R"({"property": "x"})", R"({"property": "x", "passed": tru})",
                          R"({"property": "x", "passed": true, "cases": -1})", R"({"property": "x", "passed": true} x)",
                          R"({"property": 3, "passed": true})"}) {
    error.clear();
    EXPECT_FALSE(result_from_json(bad, error).has_value()) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

// -- docs/properties.md -----------------------------------------------------------------

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

const std::string kDoc = std::string(CMACHECK_SOURCE_DIR) + "/docs/properties.md";

TEST(Doc, EveryIdAndFaultIsInTheGeneratedTables) {
  const std::string bites = doc_block("bites"), floors = doc_block("floors");
  for (const Property& p : properties()) {
    EXPECT_NE(bites.find("`" + p.id + "`"), std::string::npos) << p.id;
    EXPECT_NE(floors.find("`" + p.id + "`"), std::string::npos) << p.id;
    for (impl::Fault f : p.catches) EXPECT_NE(bites.find(impl::fault_info(f).name), std::string::npos);
    for (const Floor& f : p.floors) EXPECT_NE(floors.find("`" + f.num + "`"), std::string::npos);
  }
}

// The check ctest properties.doc_tables_are_current runs fires: a doc whose table lacks a
// fault of the registry is reported (exit 1, FILE:LINE), and a doc without the markers is
// bad input (exit 2). The stale copy is written to the build tree.
TEST(Doc, CheckDocReportsAStaleTableAndMissingMarkers) {
  const std::string doc = read(kDoc);
  const Property& p = properties().front();
  const std::string fault(impl::fault_info(p.catches.front()).name);
  const std::string row = "| `" + p.id + "` | " + fault;
  const size_t at = doc.find(row);
  ASSERT_NE(at, std::string::npos) << "docs/properties.md lacks the row " << row;
  std::string stale = doc;
  stale.replace(at, row.size(), "| `" + p.id + "` | ");
  const std::string dir = std::string(CMACHECK_RUN_DIR);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/stale-properties.md";
  std::ofstream(path, std::ios::binary) << stale;
  std::ostringstream out, err;
  EXPECT_EQ(properties_cli({"--check-doc", path}, out, err), 1);
  EXPECT_NE(err.str().find(path + ":"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("out of date"), std::string::npos) << err.str();
  std::ofstream(path, std::ios::binary) << "# no markers\n";
  EXPECT_EQ(properties_cli({"--check-doc", path}, out, err), 2);
  std::ofstream(path, std::ios::binary) << doc;
  EXPECT_EQ(properties_cli({"--check-doc", path}, out, err), 0) << err.str();
}

// -- the command line -------------------------------------------------------------------

TEST(Cli, BadInputIsAnErrorWithExitStatus2) {
  const std::vector<std::vector<std::string>> bad = {
      {"--run"},
      {"--run", "Algebra.NoSuchProperty"},
      {"--run", "Algebra.ParsePrintRoundTrip", "--fault", "no_such_fault"},
      {"--run", "Algebra.ParsePrintRoundTrip", "--local-fault", "hidden_state"},
      {"--run", "Algebra.ParsePrintRoundTrip", "--seed", "12x"},
      {"--run", "Algebra.ParsePrintRoundTrip", "--max-success", "0"},
      {"--run", "Algebra.ParsePrintRoundTrip", "--max-size", "101"},
      {"--run", "Algebra.ParsePrintRoundTrip", "--seconds", "-1"},
      {"--run", "Algebra.ParsePrintRoundTrip", "--seed"},
      {"--run", "Algebra.ParsePrintRoundTrip", "--result-file", "/no/such/dir/r.json"},
      {"--run", "Algebra.ParsePrintRoundTrip", "--frobnicate", "1"},
      {"--list", "x"},
      {"--check-doc", "/no/such/file.md"},
  };
  for (const auto& args : bad) {
    std::ostringstream out, err;
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(properties_cli(args, out, err), 2) << joined;
    EXPECT_NE(err.str().find("error: "), std::string::npos) << joined << ": " << err.str();
  }
}

// What the zoo does: a run with an impl fault writes a result file with the counterexample,
// which parses and names the rule the lockstep checker reported.
TEST(Cli, RunWithAFaultWritesTheResultFile) {
  const std::string dir = std::string(CMACHECK_RUN_DIR) + "/cli-test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string file = dir + "/result.json";
  std::ostringstream out, err;
  ASSERT_EQ(properties_cli({"--run", "Lockstep.ImplAgreesWithModelAfterEveryOperation", "--fault", "maxchunk_off_by_one",
                            "--seed", "1", "--max-success", "100", "--counterexample-dir", dir, "--result-file", file},
                           out, err),
            1)
      << out.str() << err.str();
  std::string error;
  const auto r = result_from_json(read(file), error);
  ASSERT_TRUE(r.has_value()) << error;
  EXPECT_EQ(r->property, "Lockstep.ImplAgreesWithModelAfterEveryOperation");
  EXPECT_EQ(r->faults, std::vector<std::string>{"maxchunk_off_by_one"});
  EXPECT_FALSE(r->passed);
  EXPECT_GE(r->cases, 1u);
  EXPECT_EQ(r->seed, 1u);
  EXPECT_FALSE(r->rule.empty());
  EXPECT_EQ(r->counterexample, read(r->counterexample_file));
  EXPECT_TRUE(parse_trace(r->counterexample).ok()) << r->counterexample;
  // RapidCheck's own message counts the same cases.
  EXPECT_NE(r->message.find("Falsifiable after " + std::to_string(r->cases) + " tests"), std::string::npos) << r->message;
}

// A time budget ends a passing run early: it passes, says so, and counts its cases.
TEST(Cli, TimeBudgetEndsAPassingRun) {
  std::ostringstream out, err;
  ASSERT_EQ(properties_cli({"--run", "Algebra.ParsePrintRoundTrip", "--seed", "3", "--max-success", "1000000",
                            "--seconds", "0.3", "--json"},
                           out, err),
            0)
      << err.str();
  std::string error;
  const auto r = result_from_json(out.str(), error);
  ASSERT_TRUE(r.has_value()) << error;
  EXPECT_TRUE(r->passed);
  EXPECT_TRUE(r->timed_out);
  EXPECT_GT(r->cases, 0u);
  EXPECT_LT(r->cases, 1000000u);
}

// -- floors fire ------------------------------------------------------------------------

// One case of size 0 runs no operation: NoTwoLiveAllocationsOverlap is below its floor of
// checked steps per case, and its test fails with "stopped exploring".
const PropertyOptions kOneEmptyCase = [] {
  PropertyOptions o;
  o.seed = 1;
  o.max_success = 1;
  o.max_size = 0;
  return o;
}();

TEST(Floors, APropertyBelowAFloorFailsItsTest) {
  const Property& p = *find_property("Algebra.NoTwoLiveAllocationsOverlap");
  const PropertyResult r = run_property(p, kOneEmptyCase);
  EXPECT_TRUE(r.passed) << r.message;
  EXPECT_FALSE(r.floors_failed.empty());
  EXPECT_NONFATAL_FAILURE(check_property(*find_property("Algebra.NoTwoLiveAllocationsOverlap"), kOneEmptyCase),
                          "the generator stopped exploring: checked.steps / cases");
}

}  // namespace
}  // namespace cmacheck::props

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (cmacheck::props::is_cli(args)) return cmacheck::props::properties_cli(args, std::cout, std::cerr);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
