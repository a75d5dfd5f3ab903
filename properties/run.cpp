#include "properties/run.h"

#include <chrono>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <rapidcheck.h>

namespace cmacheck::props {

namespace {

using Clock = std::chrono::steady_clock;

// Thrown by the listener, between two cases, when the time budget is spent. RapidCheck calls
// its listener outside the property's own exception handling, so this ends checkProperty.
struct BudgetSpent {};

// Counts passing cases and ends the search when the budget is spent (never once a case
// failed: shrinking runs to the end). Silent: the failures of a run with a fault are
// expected, and RapidCheck's global listener would print a `reproduce` line for each.
class Listener final : public rc::detail::TestListener {
 public:
  explicit Listener(double seconds) : seconds_(seconds) {}

  void onTestCaseFinished(const rc::detail::CaseDescription& d) override {
    if (d.result.type == rc::detail::CaseResult::Type::Success) ++passed;
    if (d.result.type == rc::detail::CaseResult::Type::Failure) failing = true;
    if (seconds_ > 0 && !failing && std::chrono::duration<double>(Clock::now() - start_).count() >= seconds_)
      throw BudgetSpent{};
  }
  void onShrinkTried(const rc::detail::CaseDescription&, bool) override {}
  void onTestFinished(const rc::detail::TestMetadata&, const rc::detail::TestResult&) override {}

  uint64_t passed = 0;
  bool failing = false;

 private:
  double seconds_;
  Clock::time_point start_ = Clock::now();
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

PropertyOptions configured_options() {
  const rc::detail::TestParams& p = rc::detail::configuration().testParams;
  PropertyOptions o;
  o.configured = true;
  o.seed = p.seed;
  o.max_success = p.maxSuccess;
  o.max_size = p.maxSize;
  return o;
}

PropertyResult run_property(const Property& p, const PropertyOptions& options) {
  ContextScope scope(p.id, options.faults, options.counterexample_dir);
  if (options.local) options.local->inject(*scope);
  stats_of(p.id).clear();

  rc::detail::TestParams params;
  if (options.configured) {
    params = rc::detail::configuration().testParams;
  } else {
    params.seed = options.seed;
    params.maxSuccess = options.max_success;
    params.maxSize = options.max_size;
  }
  PropertyResult r;
  r.property = p.id;
  r.faults = scope->fault_names;
  if (options.local) r.faults.push_back(options.local->name);
  r.seed = params.seed;
  r.max_success = params.maxSuccess;
  r.max_size = params.maxSize;

  rc::detail::TestMetadata md;
  md.id = p.id;
  md.description = p.id;
  static const std::unordered_map<std::string, rc::detail::Reproduce> kNoReproduce;
  Listener listener(options.seconds);
  const auto property = rc::detail::toProperty([body = p.body] { body(); });
  const auto t0 = Clock::now();
  try {
    // Configured: as RC_GTEST_PROP does (RapidCheck's parameters, reproduce map and global
    // listener, which prints a `reproduce` string per failure at exit).
    const rc::detail::TestResult result = options.configured
                                              ? rc::detail::checkProperty(property, md)
                                              : rc::detail::checkProperty(property, md, params, listener, kNoReproduce);
    std::ostringstream message;
    rc::detail::printResultMessage(result, message);
    r.message = message.str();
    if (result.template is<rc::detail::SuccessResult>()) {
      r.passed = true;
      r.cases = static_cast<uint64_t>(result.template get<rc::detail::SuccessResult>().numSuccess);
    } else if (result.template is<rc::detail::FailureResult>()) {
      const auto& f = result.template get<rc::detail::FailureResult>();
      r.cases = static_cast<uint64_t>(f.numSuccess) + 1;
      r.shrinks = f.reproduce.shrinkPath.size();
      r.failure = f.description;
    } else if (result.template is<rc::detail::GaveUpResult>()) {
      const auto& g = result.template get<rc::detail::GaveUpResult>();
      r.gave_up = true;
      r.cases = static_cast<uint64_t>(g.numSuccess);
      r.failure = g.description;
    } else {
      r.failure = result.template get<rc::detail::Error>().description;
    }
  } catch (const BudgetSpent&) {
    r.passed = true;
    r.timed_out = true;
    r.cases = listener.passed;
    r.message = "OK, passed " + std::to_string(r.cases) + " tests before the time budget of " +
                std::to_string(options.seconds) + " s was spent";
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  if (!r.passed && !scope->last_file.empty()) {
    r.counterexample_file = scope->last_file;
    r.counterexample = slurp(scope->last_file);
    r.rule = scope->last_rule.empty() ? p.rules : scope->last_rule;
  }
  if (r.passed && !r.timed_out) r.floors_failed = failed_floors(stats_of(p.id), p.floors);
  return r;
}

}  // namespace cmacheck::props
