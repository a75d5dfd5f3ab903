#include "properties/cli.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "properties/registry.h"
#include "properties/run.h"

namespace cmacheck::props {

namespace {

const char kUsage[] =
    "usage: properties_test [GTEST OPTIONS]   every property as a gtest; RC_PARAMS sets seed and budget\n"
    "       properties_test --list            the registered properties, their rules and the faults they must catch\n"
    "       properties_test --run ID [OPTIONS]\n"
    "           --fault NAME               inject an impl fault (repeatable; `cmacheck faults` lists them)\n"
    "           --local-fault NAME         inject a property-local fault of ID (see --list)\n"
    "           --seed N --max-success N --max-size N   RapidCheck's parameters (default: RC_PARAMS's)\n"
    "           --seconds S                stop passing cases after S seconds (the run still passes)\n"
    "           --counterexample-dir DIR   where a failing case writes its trace (default build/dev/properties/runs)\n"
    "           --json                     print the result as JSON instead of text\n"
    "           --result-file FILE         also write the result as JSON to FILE\n"
    "         exit status: 0 passed, 1 failed or gave up, 2 bad input\n"
    "       properties_test --write-doc FILE  rewrite the generated tables of FILE (docs/properties.md)\n"
    "       properties_test --check-doc FILE  exit 1 when they are out of date\n";

int usage_error(std::ostream& err, const std::string& what) {
  err << "properties_test: error: " << what << "\n" << kUsage;
  return 2;
}

bool read_file(const std::string& path, std::string& text) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

bool parse_number(const std::string& s, uint64_t max, uint64_t& out) {
  if (s.empty() || s[0] < '0' || s[0] > '9') return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno || *end || v > max) return false;
  out = v;
  return true;
}

int list(std::ostream& out) {
  for (const Property& p : properties()) {
    out << p.id << "\n  rules: " << p.rules << "\n  claim: " << p.claim << "\n  must catch:";
    for (impl::Fault f : p.catches) out << " " << impl::fault_info(f).name;
    for (const LocalFault& f : p.catches_local) out << " " << f.name << " (local: " << f.description << ")";
    out << "\n";
  }
  return 0;
}

int doc(const std::string& path, bool write, std::ostream& out, std::ostream& err) {
  std::string text, updated, error;
  if (!read_file(path, text)) {
    err << path << ": error: cannot read it\n";
    return 2;
  }
  if (!update_doc(text, updated, error)) {
    err << path << ": error: " << error << "\n";
    return 2;
  }
  if (write) {
    if (updated != text) std::ofstream(path, std::ios::binary) << updated;
    out << path << ": " << (updated == text ? "up to date" : "tables rewritten from properties/registry.cpp") << "\n";
    return 0;
  }
  if (updated == text) return 0;
  size_t line = 1;
  for (size_t i = 0; i < std::min(text.size(), updated.size()) && text[i] == updated[i]; ++i) line += text[i] == '\n';
  err << path << ":" << line << ": error: the tables generated from properties/registry.cpp are out of date; run "
      << "build/dev/properties/properties_test --write-doc " << path << "\n";
  return 1;
}

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const Property* p = find_property(args[1]);
  if (!p) {
    std::string ids;
    for (const Property& q : properties()) ids += "\n  " + q.id;
    return usage_error(err, "no property '" + args[1] + "'; the properties are:" + ids);
  }
  PropertyOptions o;
  o.counterexample_dir = CMACHECK_RUN_DIR;
  bool seed = false, max_success = false, max_size = false;  // given on the command line
  bool json = false;
  std::string result_file;
  for (size_t i = 2; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--json") {
      json = true;
      continue;
    }
    if (i + 1 >= args.size()) return usage_error(err, a + " needs a value");
    const std::string& v = args[++i];
    uint64_t n = 0;
    if (a == "--fault") {
      const auto f = impl::fault_by_name(v);
      if (!f) return usage_error(err, "unknown fault '" + v + "' (see `cmacheck faults`)");
      o.faults.push_back(*f);
    } else if (a == "--local-fault") {
      o.local = find_local_fault(*p, v);
      if (!o.local) return usage_error(err, p->id + " has no local fault '" + v + "' (see --list)");
    } else if (a == "--seed") {
      if (!parse_number(v, UINT64_MAX, n)) return usage_error(err, "--seed needs a number, not '" + v + "'");
      o.seed = n;
      seed = true;
    } else if (a == "--max-success") {
      if (!parse_number(v, INT32_MAX, n) || n == 0) return usage_error(err, "--max-success needs a positive number, not '" + v + "'");
      o.max_success = static_cast<int>(n);
      max_success = true;
    } else if (a == "--max-size") {
      if (!parse_number(v, 100, n)) return usage_error(err, "--max-size needs a number up to 100, not '" + v + "'");
      o.max_size = static_cast<int>(n);
      max_size = true;
    } else if (a == "--seconds") {
      char* end = nullptr;
      const double s = std::strtod(v.c_str(), &end);
      if (v.empty() || *end || !(s > 0)) return usage_error(err, "--seconds needs a positive number, not '" + v + "'");
      o.seconds = s;
    } else if (a == "--counterexample-dir") {
      o.counterexample_dir = v;
    } else if (a == "--result-file") {
      result_file = v;
    } else {
      return usage_error(err, "unknown option '" + a + "'");
    }
  }
  if (!seed || !max_success || !max_size) {
    // The rest from RC_PARAMS (reading it prints RapidCheck's configuration, and a new seed
    // when RC_PARAMS sets none).
    const PropertyOptions c = configured_options();
    if (!seed) o.seed = c.seed;
    if (!max_success) o.max_success = c.max_success;
    if (!max_size) o.max_size = std::min(c.max_size, 100);
  }
  if (!result_file.empty()) {
    // Fail before the run, not after it, when the file's directory is missing.
    const std::filesystem::path dir = std::filesystem::path(result_file).parent_path();
    if (!dir.empty() && !std::filesystem::is_directory(dir))
      return usage_error(err, "--result-file " + result_file + ": no directory " + dir.string());
  }
  const PropertyResult r = run_property(*p, o);
  const std::string text = to_json(r);
  if (!result_file.empty()) {
    std::ofstream f(result_file, std::ios::binary | std::ios::trunc);
    if (!(f << text).flush()) {
      err << result_file << ": error: cannot write the result\n";
      return 2;
    }
  }
  if (json) {
    out << text;
  } else {
    // RapidCheck's first line ("Falsifiable after N tests and M shrinks"), then the property's
    // own message; the values RapidCheck drew are in the JSON's "message".
    out << r.property << " (seed " << r.seed << ", " << r.cases << " cases, " << r.seconds
        << " s): " << r.message.substr(0, r.message.find('\n')) << "\n";
    if (!r.failure.empty()) out << r.failure << "\n";
    for (const std::string& f : r.floors_failed) out << "below a floor: " << f << "\n";
  }
  return r.passed ? 0 : 1;
}

}  // namespace

bool is_cli(const std::vector<std::string>& args) {
  if (args.empty()) return false;
  for (const char* a : {"--list", "--run", "--write-doc", "--check-doc", "--help", "-h"})
    if (args[0] == a) return true;
  return false;
}

int properties_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const std::string& cmd = args.at(0);
  if (cmd == "--help" || cmd == "-h") return out << kUsage, 0;
  if (cmd == "--list") return args.size() == 1 ? list(out) : usage_error(err, "--list takes no argument");
  if (args.size() < 2) return usage_error(err, cmd + " needs an argument");
  if (cmd == "--run") return run(args, out, err);
  if (args.size() > 2) return usage_error(err, cmd + " takes one file");
  return doc(args[1], cmd == "--write-doc", out, err);
}

}  // namespace cmacheck::props
