// Proof that the properties bite: for every property of the registry (registry.cpp) and every
// fault it must catch, one test (Bite.ID/FAULT) runs the property with that fault injected
// (fixed seed, up to 300 cases) and fails unless the property fails, writes its shrunk
// counterexample (to the build tree, never to corpus/properties/, which holds only real
// findings) and, for an impl fault, `cmacheck replay --fault NAME` reproduces it (exit 1;
// checked with replay_files, the call that command makes).
// Property-local faults (a lossy printer, a system with hidden state) reach the two
// properties no impl fault can; replay cannot reproduce those.
//
// BiteSelfTest shows the check fires on an entry that cannot hold. BiteMatrix.DISABLED_AllFaults
// runs every property against every fault and prints the matrix of docs/properties.md (run
// it with --gtest_also_run_disabled_tests).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <sstream>

#include <gtest/gtest.h>
#include <gtest/gtest-spi.h>

#include "check/replay.h"
#include "properties/registry.h"
#include "properties/run.h"

namespace cmacheck::props {
namespace {

PropertyOptions bite_options(int max_success) {
  PropertyOptions o;
  o.seed = 0xc3ac4ec4;
  o.max_success = max_success;
  o.max_size = 100;  // UBSan: keep max_size <= 100 with Debian's RapidCheck
  o.counterexample_dir = CMACHECK_BITE_DIR;
  return o;
}

// The exit status of `cmacheck replay -q --fault NAME FILE`, from the library call that
// command makes (replay_files), in this process: a process per bite test costs more than
// the replay.
int replay_status(impl::Fault fault, const std::string& file) {
  ReplayOptions o;
  o.quiet = true;
  o.run.faults.add(fault);
  std::ostringstream out, err;
  return replay_files({file}, o, out, err);
}

// Runs `p` with one fault (an impl fault, or `local`); what is wrong with the bite, if
// anything. When the property passed, that is the one thing reported.
std::vector<std::string> bite_problems(const Property& p, impl::Fault fault, const LocalFault* local, int max_success,
                                       PropertyResult& r) {
  PropertyOptions o = bite_options(max_success);
  if (local)
    o.local = local;
  else
    o.faults = {fault};
  const std::string name = local ? local->name : std::string(impl::fault_info(fault).name);
  r = run_property(p, o);
  if (r.passed)
    return {p.id + " passed " + std::to_string(r.cases) + " cases with fault " + name +
            ", which properties/registry.cpp says it must catch"};
  std::vector<std::string> problems;
  if (r.gave_up) problems.push_back(p.id + " gave up with fault " + name + ": " + r.failure);
  if (r.counterexample_file.empty() || !std::filesystem::exists(r.counterexample_file)) {
    problems.push_back(p.id + " failed with fault " + name + " but wrote no counterexample:\n" + r.message);
  } else if (!local) {
    const int replay = replay_status(fault, r.counterexample_file);
    if (replay != 1)
      problems.push_back("cmacheck replay --fault " + name + " " + r.counterexample_file + " exits " +
                         std::to_string(replay) + ", not 1");
  }
  return problems;
}

void check_bite(const Property& p, impl::Fault fault, const LocalFault* local, int max_success) {
  PropertyResult r;
  const std::vector<std::string> problems = bite_problems(p, fault, local, max_success, r);
  for (const std::string& m : problems) ADD_FAILURE() << m;
  if (problems.empty())
    std::cout << p.id << " with fault " << r.faults.front() << ": caught after " << r.cases - 1 << " passing cases ("
              << r.rule << ")\n  counterexample " << r.counterexample_file << "\n  "
              << r.failure.substr(0, r.failure.find("\n  counterexample")) << "\n";
}

class BiteTest final : public ::testing::Test {
 public:
  BiteTest(const Property& p, impl::Fault fault, const LocalFault* local) : p_(p), fault_(fault), local_(local) {}
  void TestBody() override { check_bite(p_, fault_, local_, 300); }

 private:
  const Property& p_;
  impl::Fault fault_;
  const LocalFault* local_;
};

const bool kRegistered = [] {
  for (const Property& p : properties()) {
    auto add = [&](const std::string& fault_name, impl::Fault fault, const LocalFault* local) {
      ::testing::RegisterTest("Bite", (p.id + "/" + fault_name).c_str(), nullptr, nullptr, __FILE__, __LINE__,
                              [&p, fault, local]() -> ::testing::Test* { return new BiteTest(p, fault, local); });
    };
    for (impl::Fault f : p.catches) add(std::string(impl::fault_info(f).name), f, nullptr);
    for (const LocalFault& f : p.catches_local) add(f.name, impl::Fault::none, &f);
  }
  return true;
}();

// A deliberately broken entry: no impl fault reaches the round trip of the trace text, so a
// table saying ParsePrintRoundTrip must catch keep_bits_after_busy fails its bite test.
TEST(BiteSelfTest, AFaultThePropertyDoesNotCatchFailsTheBiteTest) {
  EXPECT_NONFATAL_FAILURE(
      check_bite(*find_property("Algebra.ParsePrintRoundTrip"), impl::Fault::keep_bits_after_busy, nullptr, 50),
      "Algebra.ParsePrintRoundTrip passed 50 cases with fault keep_bits_after_busy");
}

// -- the whole matrix (slow; for docs/properties.md) ------------------------------------

TEST(BiteMatrix, DISABLED_AllFaults) {
  std::cout << "property x fault: each fault caught (its replay exit status when not 1) [seconds], * when the\n"
               "registry lists it; faults the registry lists but that were not caught are named after 'MISSED'\n";
  for (const Property& p : properties()) {
    std::cout << p.id << ":";
    std::string missed;
    for (const impl::FaultInfo& f : impl::all_faults()) {
      const auto t0 = std::chrono::steady_clock::now();
      PropertyResult r;
      const auto problems = bite_problems(p, f.fault, nullptr, 200, r);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const bool listed = std::find(p.catches.begin(), p.catches.end(), f.fault) != p.catches.end();
      if (!r.passed) {
        std::cout << " " << f.name << (listed ? "*" : "") << (problems.empty() ? "" : "(" + problems.front() + ")") << "["
                  << static_cast<int>(s) << "s]";
      } else if (listed) {
        missed += " " + std::string(f.name);
      }
      std::cout << std::flush;
    }
    std::cout << (missed.empty() ? "" : "  MISSED:" + missed) << "\n";
  }
}

}  // namespace
}  // namespace cmacheck::props
