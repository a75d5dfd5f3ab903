// The properties of docs/properties.md as one table, registered once (registry.cpp) and
// read by every consumer: properties_test registers one gtest per entry, bite_test one test
// per entry and fault it must catch, `properties_test --run ID` runs one entry for the zoo
// (run.h, result.h), and `properties_test --write-doc` writes the tables of
// docs/properties.md that list ids, floors and faults (`--check-doc` fails when they are
// out of date).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "impl/faults.h"
#include "properties/support.h"

namespace cmacheck::props {

// A fault local to the property, for the properties no impl fault can reach (the round trip
// of the trace text, the determinism of replay): it changes the Context (a printer, a
// system factory) instead of impl. `cmacheck replay` cannot reproduce it.
struct LocalFault {
  std::string name;
  std::string description;
  void (*inject)(Context&);
};

struct Property {
  std::string id;      // "Suite.Name": the gtest and ctest name, the counterexample file, the docs
  std::string rules;   // the rules it states (docs/semantics.md ids)
  std::string claim;   // one sentence; docs/properties.md states it in full
  void (*body)();      // the RapidCheck property (properties.h)
  // What a passing run must have explored (counters summed over all its cases), and whether
  // to print the per-operation table after a run.
  std::vector<Floor> floors;
  bool op_table = false;
  // The faults it must catch: each is a bite test (bite_test.cpp), and a fault listed here
  // that the property does not catch fails that test.
  std::vector<impl::Fault> catches;
  std::vector<LocalFault> catches_local;

  std::string suite() const { return id.substr(0, id.find('.')); }
  std::string name() const { return id.substr(id.find('.') + 1); }
};

// Every property, in the order of docs/properties.md.
std::span<const Property> properties();
const Property* find_property(std::string_view id);
const LocalFault* find_local_fault(const Property& p, std::string_view name);

// -- docs/properties.md ------------------------------------------------------------------

// The generated blocks of the doc, each between
//   <!-- BEGIN generated: NAME (properties_test --write-doc; edit properties/registry.cpp) -->
//   <!-- END generated: NAME -->
// NAME is "bites" (each property and the faults it must catch) or "floors".
std::string doc_block(std::string_view name);
// `text` with every generated block rewritten from the table; false and `error` when a block's
// markers are missing or out of order.
bool update_doc(const std::string& text, std::string& out, std::string& error);

}  // namespace cmacheck::props
