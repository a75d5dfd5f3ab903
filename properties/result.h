// The result of one run of one property (properties/run.h), as a struct and as JSON, so that
// a consumer outside the property binary (the zoo: `properties_test --run ID --result-file
// FILE`) reads fields instead of RapidCheck's printed text. No RapidCheck here: the zoo links
// this alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cmacheck::props {

struct PropertyResult {
  std::string property;             // its id in the registry ("Suite.Name")
  std::vector<std::string> faults;  // injected (impl fault names, or a property-local fault)
  uint64_t seed = 0;
  int max_success = 0;
  int max_size = 0;
  bool passed = false;     // no case failed (within the budget); false when RapidCheck gave up
  bool gave_up = false;    // too many discarded cases (RC_PRE)
  bool timed_out = false;  // the time budget ended the run before max_success cases (passed stays true)
  uint64_t cases = 0;      // cases run, not counting discarded ones; with a failure, the failing one included
  uint64_t shrinks = 0;    // accepted shrinks of the failing case
  double seconds = 0;      // wall time of the run, shrinking included
  std::string rule;        // failed: the rules the failure cites (the lockstep checker's rule for Lockstep)
  std::string failure;     // failed: the property's message for the shrunk case
  std::string counterexample_file;  // failed: the trace written for the shrunk case
  std::string counterexample;       // failed: its text
  std::vector<std::string> floors_failed;  // passed a full budget: the floors it stayed below
  std::string message;     // RapidCheck's result message, for people

  friend bool operator==(const PropertyResult&, const PropertyResult&) = default;
};

// One JSON object, one field per member (strings escaped, no nesting but arrays of strings).
std::string to_json(const PropertyResult& r);
// The inverse of to_json; unknown keys are ignored, a missing `property` or `passed` or a
// syntax error is an error ("offset N: ...").
std::optional<PropertyResult> result_from_json(std::string_view text, std::string& error);

}  // namespace cmacheck::props
