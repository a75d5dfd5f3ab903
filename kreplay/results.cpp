// Result lines of kernel/run.sh (kernel/README.md, "Result lines"):
//   KR <line> <verb> <status> [key=value ...]
// Unknown keys are kept and ignored by the comparison (later versions may add keys).
#include <cctype>

#include "kreplay/kreplay.h"

namespace cmacheck::kreplay {

namespace {

std::optional<uint64_t> to_u64(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

}  // namespace

std::optional<uint64_t> ResultLine::number(const std::string& key) const {
  auto it = fields.find(key);
  if (it == fields.end()) return std::nullopt;
  return to_u64(it->second);
}

std::optional<std::vector<uint64_t>> parse_runs(std::string_view s) {
  std::vector<uint64_t> v;
  if (s == "-") return v;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string_view::npos) comma = s.size();
    std::string_view item = s.substr(pos, comma - pos);
    size_t dash = item.find('-');
    if (dash == std::string_view::npos) {
      auto a = to_u64(item);
      if (!a) return std::nullopt;
      v.push_back(*a);
    } else {
      auto a = to_u64(item.substr(0, dash)), b = to_u64(item.substr(dash + 1));
      if (!a || !b || *b < *a || *b - *a > (uint64_t{1} << 26)) return std::nullopt;
      for (uint64_t x = *a; x <= *b; ++x) v.push_back(x);
    }
    pos = comma + 1;
    if (comma == s.size()) break;
  }
  return v;
}

std::string format_runs(const std::vector<uint64_t>& v) {
  if (v.empty()) return "-";
  std::string s;
  for (size_t i = 0; i < v.size();) {
    size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    if (i) s += ',';
    s += std::to_string(v[i]);
    if (j > i) s += "-" + std::to_string(v[j]);
    i = j + 1;
  }
  return s;
}

KernelResults parse_results(std::string_view text) {
  KernelResults r;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view l = text.substr(pos, end - pos);
    pos = end + 1;
    while (!l.empty() && (l.back() == '\r' || l.back() == ' ')) l.remove_suffix(1);
    if (l.substr(0, 3) != "KR ") continue;
    ResultLine rl;
    rl.raw = std::string(l);
    std::vector<std::string_view> tok;
    size_t i = 0;
    while (i < l.size() && tok.size() < 4) {
      while (i < l.size() && l[i] == ' ') ++i;
      size_t j = i;
      while (j < l.size() && l[j] != ' ') ++j;
      if (j > i) tok.push_back(l.substr(i, j - i));
      i = j;
    }
    if (tok.size() < 4) continue;
    auto line = to_u64(tok[1]);
    if (!line) continue;
    rl.line = static_cast<uint32_t>(*line);
    rl.verb = std::string(tok[2]);
    rl.status = std::string(tok[3]);
    while (i < l.size() && l[i] == ' ') ++i;
    rl.rest = std::string(l.substr(i));
    if (rl.status != "err") {
      size_t p = i;
      while (p < l.size()) {
        size_t q = l.find(' ', p);
        if (q == std::string_view::npos) q = l.size();
        std::string_view kv = l.substr(p, q - p);
        size_t eq = kv.find('=');
        if (eq != std::string_view::npos) rl.fields[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
        p = q + 1;
      }
    }
    if (rl.line == 0 && rl.verb == "boot")
      r.boot = rl;
    else if (rl.line == 0 && rl.verb == "area")
      r.areas.push_back(rl);
    else if (rl.verb == "end")
      r.ended = true;
    else
      r.by_line[rl.line] = rl;
  }
  return r;
}

}  // namespace cmacheck::kreplay
