// Running one property of the registry and getting a structured result (result.h): the gtest
// tests, the bite tests and `properties_test --run` (the zoo) all go through run_property.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "impl/faults.h"
#include "properties/registry.h"
#include "properties/result.h"

namespace cmacheck::props {

struct PropertyOptions {
  uint64_t seed = 0;
  int max_success = 100;
  int max_size = 100;  // keep <= 100: larger sizes trip UBSan in Debian's RapidCheck snapshot
  std::vector<impl::Fault> faults;       // injected into impl
  const LocalFault* local = nullptr;     // a property-local fault of this property, or none
  std::string counterexample_dir;        // empty: corpus/properties (real findings only)
  double seconds = 0;                    // time budget (> 0): stop passing cases after it
  // RapidCheck's configuration (RC_PARAMS: seed, max_success, max_size, reproduce=...,
  // verbose_progress) and its global listener, which prints a `reproduce` string for each
  // failure when the process ends. seed, max_success, max_size and seconds above are ignored.
  bool configured = false;
};

// RC_PARAMS as RapidCheck read it (what ctest and `make properties` set).
PropertyOptions configured_options();

// Runs the property with the options. Its counters (stats_of(p.id)) are those of this run;
// floors_failed is filled when it passed a full budget.
PropertyResult run_property(const Property& p, const PropertyOptions& options);

}  // namespace cmacheck::props
