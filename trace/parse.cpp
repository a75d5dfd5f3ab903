#include "trace/parse.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <unordered_map>

namespace cmacheck {

std::string ParseError::format(std::string_view file) const {
  std::string s(file);
  s += ':';
  s += std::to_string(line);
  s += ": error: ";
  s += message;
  return s;
}

bool is_handle_token(std::string_view s) {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

std::optional<uint64_t> parse_number(std::string_view s, bool allow_size, std::string& why) {
  uint64_t unit_kib = 0;
  if (!s.empty() && (s.back() == 'K' || s.back() == 'M' || s.back() == 'G')) {
    if (!allow_size) {
      why = "a size suffix is not allowed here";
      return std::nullopt;
    }
    unit_kib = s.back() == 'K' ? 1 : s.back() == 'M' ? 1024 : 1024 * 1024;
    s.remove_suffix(1);
  }
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  }
  if (s.empty()) {
    why = "empty number";
    return std::nullopt;
  }
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else {
      why = "not a number";
      return std::nullopt;
    }
    if (v > (std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) {
      why = "number too large";
      return std::nullopt;
    }
    v = v * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
  }
  if (unit_kib) {
    if (v > std::numeric_limits<uint64_t>::max() / unit_kib) {
      why = "size too large";
      return std::nullopt;
    }
    uint64_t kib = v * unit_kib;
    if (kib % 4 != 0) {
      why = "size is not a whole number of 4 KiB pages";
      return std::nullopt;
    }
    v = kib / 4;
  }
  return v;
}

namespace {

struct Failure {
  std::string message;
};

// The `key=value` arguments of one statement, each to be consumed exactly once.
class Args {
 public:
  std::optional<Failure> add(std::string_view tok) {
    auto eq = tok.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return Failure{"expected key=value, got '" + std::string(tok) + "'"};
    std::string key(tok.substr(0, eq));
    if (values_.count(key)) return Failure{"key '" + key + "' is repeated"};
    values_[key] = std::string(tok.substr(eq + 1));
    order_.push_back(key);
    return std::nullopt;
  }
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  std::optional<std::string> take(const std::string& key) {
    auto it = values_.find(key);
    if (it == values_.end()) return std::nullopt;
    std::string v = it->second;
    values_.erase(it);
    return v;
  }
  std::optional<Failure> leftover() const {
    for (const auto& k : order_)
      if (values_.count(k)) return Failure{"unknown key '" + k + "'"};
    return std::nullopt;
  }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> order_;
};

// The usage of an operation's statement, derived from its arguments:
// `cma_release area=NAME pfn=PFN count=N`.
template <class O>
std::string usage() {
  std::string u(O::facts.name);
  auto one = [&](const auto& a) {
    using A = std::remove_cvref_t<decltype(a)>;
    if constexpr (std::is_same_v<A, arg::Handle<O>>) u += " ID";
    if constexpr (std::is_same_v<A, arg::Word<O>>) (u += " [") += a.word, u += ']';
    if constexpr (std::is_same_v<A, arg::KindOf<O>>) (u += ' ') += a.key, u += "=movable|unmovable|reclaimable";
    if constexpr (std::is_same_v<A, arg::AreaOf<O>>) (u += ' ') += a.key, u += "=NAME";
    if constexpr (std::is_same_v<A, arg::Pages<O>>) (u += ' ') += a.key, u += "=N";
    if constexpr (std::is_same_v<A, arg::Frame<O>>) (u += ' ') += a.key, u += "=PFN";
    if constexpr (std::is_same_v<A, arg::MaybeFrame<O>>) (u += " [") += a.key, u += "=PFN]";
    if constexpr (std::is_same_v<A, arg::OrderOf<O>>) (u += " [") += a.key, u += "=K]";
    if constexpr (std::is_same_v<A, arg::BatchOf<O>>) (u += " [") += a.key, u += "=lru|activate|mlock]";
  };
  std::apply([&](const auto&... a) { (one(a), ...); }, O::args);
  return u;
}

// Usages of the other operations spelled like O, for a hint in O's errors.
template <class O>
std::string other_forms() {
  std::string hint;
  for_each_op_type([&](auto t) {
    using P = typename decltype(t)::type;
    if constexpr (!std::is_same_v<P, O>)
      if (P::facts.name == O::facts.name) hint += "; use '" + usage<P>() + "'";
  });
  return hint;
}

class Parser {
 public:
  ParseResult run(std::string_view text) {
    uint32_t line_no = 0;
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t nl = text.find('\n', pos);
      std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
      ++line_no;
      if (auto f = parse_line(line, line_no)) return fail(line_no, f->message);
      if (nl == std::string_view::npos) break;
      pos = nl + 1;
    }
    if (!have_machine_) return fail(1, "missing header: the first statement must be 'machine pages=N ...'");
    if (auto e = check_handles()) return ParseResult{{}, e};
    ParseResult r;
    r.trace = std::move(trace_);
    return r;
  }

 private:
  static ParseResult fail(uint32_t line, std::string msg) {
    ParseResult r;
    r.error = ParseError{line, std::move(msg)};
    return r;
  }

  static std::vector<std::string_view> tokenize(std::string_view line) {
    std::vector<std::string_view> toks;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
      if (i >= line.size()) break;
      size_t j = i;
      while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
      toks.push_back(line.substr(i, j - i));
      i = j;
    }
    return toks;
  }

  std::optional<Failure> parse_line(std::string_view line, uint32_t line_no) {
    // A comment starts at a `#` that begins the line or follows a blank; `isolate#2` in a
    // switch line is a step occurrence, not a comment.
    for (size_t hash = line.find('#'); hash != std::string_view::npos; hash = line.find('#', hash + 1))
      if (hash == 0 || line[hash - 1] == ' ' || line[hash - 1] == '\t') {
        line = line.substr(0, hash);
        break;
      }
    auto toks = tokenize(line);
    if (toks.empty()) return std::nullopt;
    // Split off `=> ok [pfn=P]` / `=> fail`.
    std::optional<Expectation> expectation;
    for (size_t i = 0; i < toks.size(); ++i) {
      if (toks[i] != "=>") continue;
      auto e = parse_expectation({toks.begin() + static_cast<long>(i) + 1, toks.end()});
      if (!e.first) return e.second;
      expectation = *e.first;
      toks.resize(i);
      break;
    }
    if (toks.empty()) return Failure{"'=>' without an operation"};
    // `Tn:` tags the statement with the logical CPU that issues it (concurrent traces).
    uint8_t thread = 0;
    bool tagged = false;
    if (toks[0].size() >= 3 && toks[0].front() == 'T' && toks[0].back() == ':') {
      const std::string_view digits = toks[0].substr(1, toks[0].size() - 2);
      if (digits.size() != 1 || digits[0] < '0' || digits[0] > '9')
        return Failure{"thread tag must be T0: to T3:, got '" + std::string(toks[0]) + "'"};
      thread = static_cast<uint8_t>(digits[0] - '0');
      if (!have_machine_ || thread >= trace_.machine.cpus)
        return Failure{"thread tag '" + std::string(toks[0]) + "' needs cpus=" + std::to_string(thread + 1) +
                       " or more on the machine line"};
      tagged = true;
      toks.erase(toks.begin());
      if (toks.empty()) return Failure{"thread tag without an operation"};
    }
    std::string_view verb = toks[0];
    if (verb == "switch") {
      if (expectation || tagged) return Failure{"'switch' takes no thread tag and no '=>'"};
      if (!have_machine_ || trace_.machine.cpus < 2) return Failure{"'switch' needs cpus=2 or more on the machine line"};
      return parse_switch(toks, line_no);
    }
    if (verb == "machine" || verb == "area") {
      if (expectation) return Failure{"'=>' follows operations only"};
      if (!trace_.statements.empty())
        return Failure{"'" + std::string(verb) + "' must come before the first operation"};
      return verb == "machine" ? parse_machine(toks) : parse_area(toks);
    }
    if (!have_machine_) return Failure{"missing header: the first statement must be 'machine pages=N ...'"};
    Statement st;
    st.line = line_no;
    st.thread = thread;
    if (verb == "expect") {
      if (expectation) return Failure{"'=>' follows operations only"};
      if (trace_.concurrent())
        return Failure{"'expect' is not supported in a concurrent trace (cpus > 1): state is checked at quiescence"};
      auto e = parse_expect(toks);
      if (!e.first) return e.second;
      st.body = std::move(*e.first);
    } else {
      auto op = parse_op(toks);
      if (!op.first) return op.second;
      st.body = std::move(*op.first);
      st.expectation = expectation;
    }
    trace_.statements.push_back(std::move(st));
    return std::nullopt;
  }

  std::pair<std::optional<Expectation>, Failure> parse_expectation(std::vector<std::string_view> toks) {
    Expectation e;
    if (toks.empty()) return {std::nullopt, {"'=>' must be followed by 'ok' or 'fail'"}};
    if (toks[0] == "ok")
      e.ok = true;
    else if (toks[0] == "fail")
      e.ok = false;
    else
      return {std::nullopt, {"'=>' must be followed by 'ok' or 'fail', got '" + std::string(toks[0]) + "'"}};
    Args args;
    for (size_t i = 1; i < toks.size(); ++i)
      if (auto f = args.add(toks[i])) return {std::nullopt, *f};
    if (auto v = args.take("pfn")) {
      if (!e.ok) return {std::nullopt, {"'=> fail' takes no pfn="}};
      std::string why;
      auto n = parse_number(*v, true, why);
      if (!n) return {std::nullopt, {"pfn: " + why + ": '" + *v + "'"}};
      e.pfn = Pfn{*n};
    }
    if (auto f = args.leftover()) return {std::nullopt, *f};
    return {e, {}};
  }

  std::optional<Failure> number(Args& args, const std::string& key, bool required, bool size,
                                uint64_t& out) {
    auto v = args.take(key);
    if (!v) {
      if (required) return Failure{"missing key '" + key + "'"};
      return std::nullopt;
    }
    std::string why;
    auto n = parse_number(*v, size, why);
    if (!n) return Failure{key + ": " + why + ": '" + *v + "'"};
    out = *n;
    return std::nullopt;
  }

  std::optional<Failure> order_arg(Args& args, const std::string& key, uint64_t limit, uint8_t& out) {
    uint64_t v = out;
    if (auto f = number(args, key, false, false, v)) return f;
    if (v > limit) return Failure{key + " must be at most " + std::to_string(limit) + ", got " + std::to_string(v)};
    out = static_cast<uint8_t>(v);
    return std::nullopt;
  }

  std::optional<Failure> collect(const std::vector<std::string_view>& toks, size_t from, Args& args) {
    for (size_t i = from; i < toks.size(); ++i)
      if (auto f = args.add(toks[i])) return f;
    return std::nullopt;
  }

  std::optional<Failure> parse_machine(const std::vector<std::string_view>& toks) {
    if (have_machine_) return Failure{"the header declares 'machine' twice"};
    Args args;
    if (auto f = collect(toks, 1, args)) return f;
    MachineDecl m;
    if (auto f = number(args, "pages", true, true, m.pages)) return f;
    if (auto f = order_arg(args, "pageblock_order", kMaxPageblockOrder, m.pageblock_order)) return f;
    if (auto f = order_arg(args, "max_order", kMaxMaxOrder, m.max_order)) return f;
    if (auto v = args.take("cpus")) {
      if (*v != "1" && *v != "2" && *v != "3" && *v != "4") return Failure{"cpus must be 1 to 4, got '" + *v + "'"};
      m.cpus = static_cast<uint8_t>((*v)[0] - '0');
    }
    uint64_t pcp_high = 0;
    if (auto f = number(args, "pcp", false, false, pcp_high)) return f;
    if (pcp_high > kMaxPcpHigh)
      return Failure{"pcp=" + std::to_string(pcp_high) + " exceeds cmacheck's limit of " + std::to_string(kMaxPcpHigh) + " pages"};
    m.pcp_high = static_cast<uint16_t>(pcp_high);
    if (auto v = args.take("pcp_isolation")) {
      if (*v != "weak" && *v != "strict") return Failure{"pcp_isolation must be weak or strict, got '" + *v + "'"};
      if (!m.pcp_high) return Failure{"pcp_isolation needs page lists (pcp=HIGH)"};
      m.pcp_strict = *v == "strict";
    }
    if (auto v = args.take("profile")) {
      std::optional<Profile> p = profile_by_name(*v);
      if (!p) return Failure{"profile must be linux-6.1 or linux-6.12, got '" + *v + "'"};
      m.profile = *p;
    }
    if (auto f = args.leftover()) return f;
    if (m.pages == 0) return Failure{"inconsistent header: pages must be at least one pageblock"};
    if (m.pages > kMaxMachinePages)
      return Failure{"inconsistent header: pages=" + std::to_string(m.pages) + " exceeds cmacheck's limit of " +
                     std::to_string(kMaxMachinePages) + " pages"};
    if (m.pageblock_order > m.max_order)
      return Failure{"inconsistent header: pageblock_order=" + std::to_string(m.pageblock_order) +
                     " exceeds max_order=" + std::to_string(m.max_order)};
    if (m.pages % raw(m.pageblock_pages()) != 0)
      return Failure{"inconsistent header: pages=" + std::to_string(m.pages) +
                     " is not a multiple of the pageblock (" + std::to_string(raw(m.pageblock_pages())) +
                     " pages)"};
    trace_.machine = m;
    have_machine_ = true;
    return std::nullopt;
  }

  std::optional<Failure> parse_area(const std::vector<std::string_view>& toks) {
    if (!have_machine_) return Failure{"missing header: 'machine' must come before 'area'"};
    if (toks.size() < 2 || toks[1].find('=') != std::string_view::npos)
      return Failure{"'area' needs a name: area NAME base=PFN pages=N [order_per_bit=K]"};
    if (!is_handle_token(toks[1])) return Failure{"invalid area name '" + std::string(toks[1]) + "'"};
    AreaDecl a;
    a.name = std::string(toks[1]);
    if (trace_.find_area(a.name)) return Failure{"area '" + a.name + "' is declared twice"};
    Args args;
    if (auto f = collect(toks, 2, args)) return f;
    uint64_t base = 0, pages = 0;
    if (auto f = number(args, "base", true, true, base)) return f;
    if (auto f = number(args, "pages", true, true, pages)) return f;
    if (auto f = order_arg(args, "order_per_bit", 63, a.order_per_bit)) return f;
    if (auto f = args.leftover()) return f;
    const uint64_t pb = raw(trace_.machine.pageblock_pages());
    if (pages == 0) return Failure{"area '" + a.name + "': pages must be at least one pageblock"};
    if (base % pb || pages % pb)
      return Failure{"area '" + a.name + "': base and pages must be multiples of the pageblock (" +
                     std::to_string(pb) + " pages)"};
    if (a.order_per_bit > trace_.machine.pageblock_order)
      return Failure{"area '" + a.name + "': order_per_bit=" + std::to_string(a.order_per_bit) +
                     " exceeds pageblock_order=" + std::to_string(trace_.machine.pageblock_order)};
    if (base >= trace_.machine.pages || pages > trace_.machine.pages - base)
      return Failure{"area '" + a.name + "' leaves the machine (" + std::to_string(trace_.machine.pages) +
                     " pages)"};
    a.base = Pfn{base};
    a.pages = PageCount{pages};
    for (const auto& other : trace_.areas)
      if (other.range().overlaps(a.range()))
        return Failure{"area '" + a.name + "' overlaps area '" + other.name + "'"};
    trace_.areas.push_back(std::move(a));
    return std::nullopt;
  }

  std::optional<Failure> handle_arg(std::string_view tok, HandleId& out) {
    if (tok.find('=') != std::string_view::npos || !is_handle_token(tok))
      return Failure{"expected an allocation handle (a letter, then letters, digits or _), got '" +
                     std::string(tok) + "'"};
    out = trace_.intern_handle(std::string(tok));
    return std::nullopt;
  }

  std::optional<Failure> area_arg(Args& args, const std::string& key, AreaId& out) {
    auto v = args.take(key);
    if (!v) return Failure{"missing key '" + key + "'"};
    auto a = trace_.find_area(*v);
    if (!a) return Failure{"area '" + *v + "' was not declared"};
    out = *a;
    return std::nullopt;
  }

  using OpParse = std::pair<std::optional<Op>, Failure>;
  static OpParse bad(Failure f) { return {std::nullopt, std::move(f)}; }

  // The statement `toks` as an operation: the operations with that verb (cma_release has a
  // handle form and a raw form) are told apart by whether the first argument is a handle.
  OpParse parse_op(const std::vector<std::string_view>& toks) {
    const bool handle_first = toks.size() >= 2 && toks[1].find('=') == std::string_view::npos;
    std::optional<OpParse> result;
    size_t candidates = 0;
    for_each_op_type([&](auto t) {
      using O = typename decltype(t)::type;
      if (O::facts.name != toks[0]) return;
      ++candidates;
      if (!result || O::facts.names_handle() == handle_first) result = parse_as<O>(toks);
    });
    if (!candidates) return bad(Failure{"unknown statement '" + std::string(toks[0]) + "'"});
    return std::move(*result);
  }

  // An operation of type O from its tokens, argument by argument as O::args describes
  // them: positional arguments (the handle, a bare word) first, then key=value pairs, each
  // key at most once.
  template <class O>
  OpParse parse_as(const std::vector<std::string_view>& toks) {
    O op{};
    const std::string verb(O::facts.name);
    size_t pos = 1;
    std::string form = verb;  // what was read so far, for messages: `pin ID longterm`
    std::optional<Failure> failure;
    size_t keyed = 0;
    auto positional = [&](const auto& a) {
      using A = std::remove_cvref_t<decltype(a)>;
      if (failure) return;
      if constexpr (std::is_same_v<A, arg::Handle<O>>) {
        if (pos >= toks.size()) {
          failure = Failure{"'" + verb + "' needs an allocation handle"};
          return;
        }
        HandleId id{};
        if ((failure = handle_arg(toks[pos], id))) return;
        op.*a.member = id;
        ++pos;
        form += " ID";
      } else if constexpr (std::is_same_v<A, arg::Word<O>>) {
        if (pos >= toks.size() || toks[pos].find('=') != std::string_view::npos) return;
        if (toks[pos] != a.word) {
          failure = Failure{"'" + form + "' takes only the word '" + std::string(a.word) + "', got '" +
                            std::string(toks[pos]) + "'"};
          return;
        }
        op.*a.member = true;
        ++pos;
        (form += ' ') += a.word;
      } else {
        ++keyed;
      }
    };
    std::apply([&](const auto&... a) { (positional(a), ...); }, O::args);
    if (failure) return bad(*failure);
    if (keyed == 0) {
      if (pos < toks.size())
        return bad(Failure{"'" + form + "' takes no " + (form == verb + " ID" ? "" : "other ") + "arguments, got '" +
                           std::string(toks[pos]) + "'" + other_forms<O>()});
      return {Op{op}, {}};
    }
    Args args;
    if (auto f = collect(toks, pos, args)) return bad(*f);
    auto keyed_arg = [&](const auto& a) {
      using A = std::remove_cvref_t<decltype(a)>;
      if (failure) return;
      if constexpr (std::is_same_v<A, arg::KindOf<O>>) {
        const std::string key(a.key);
        auto v = args.take(key);
        if (!v) {
          failure = Failure{"missing key '" + key + "'"};
          return;
        }
        for (Kind k : {Kind::movable, Kind::unmovable, Kind::reclaimable})
          if (*v == name(k)) {
            op.*a.member = k;
            return;
          }
        failure = Failure{key + " must be movable, unmovable or reclaimable, got '" + *v + "'"};
      } else if constexpr (std::is_same_v<A, arg::AreaOf<O>>) {
        failure = area_arg(args, std::string(a.key), op.*a.member);
      } else if constexpr (std::is_same_v<A, arg::Pages<O>>) {
        uint64_t v = 0;
        if (!(failure = number(args, std::string(a.key), true, true, v))) op.*a.member = PageCount{v};
      } else if constexpr (std::is_same_v<A, arg::Frame<O>>) {
        uint64_t v = 0;
        if (!(failure = number(args, std::string(a.key), true, true, v))) op.*a.member = Pfn{v};
      } else if constexpr (std::is_same_v<A, arg::MaybeFrame<O>>) {
        if (!args.has(std::string(a.key))) return;
        uint64_t v = 0;
        if (!(failure = number(args, std::string(a.key), true, true, v))) op.*a.member = Pfn{v};
      } else if constexpr (std::is_same_v<A, arg::OrderOf<O>>) {
        failure = order_arg(args, std::string(a.key), 63, (op.*a.member).value);
      } else if constexpr (std::is_same_v<A, arg::BatchOf<O>>) {
        const std::string key(a.key);
        auto v = args.take(key);
        if (!v) return;
        for (Batch b : kBatches)
          if (*v == name(b)) {
            op.*a.member = b;
            return;
          }
        failure = Failure{key + " must be lru, activate or mlock, got '" + *v + "'"};
      }
    };
    std::apply([&](const auto&... a) { (keyed_arg(a), ...); }, O::args);
    if (failure) return bad(*failure);
    if (auto f = args.leftover()) return bad(*f);
    return {Op{op}, {}};
  }

  std::pair<std::optional<Expect>, Failure> parse_expect(const std::vector<std::string_view>& toks) {
    Expect e;
    std::vector<std::string> seen;
    if (toks.size() < 2) return {std::nullopt, {"'expect' needs at least one KEY=VALUE"}};
    for (size_t i = 1; i < toks.size(); ++i) {
      auto tok = toks[i];
      auto eq = tok.find('=');
      if (eq == std::string_view::npos || eq == 0)
        return {std::nullopt, {"expected KEY=VALUE, got '" + std::string(tok) + "'"}};
      std::string key(tok.substr(0, eq));
      for (const auto& s : seen)
        if (s == key) return {std::nullopt, {"key '" + key + "' is repeated"}};
      seen.push_back(key);
      ExpectItem item;
      if (key == "free") {
        item.key = ExpectKey::free;
      } else if (key == "free_cma") {
        item.key = ExpectKey::free_cma;
      } else if (key == "batched") {
        item.key = ExpectKey::batched;
      } else if (key == "free_pcp") {
        item.key = ExpectKey::free_pcp;
      } else if (key.rfind("label@", 0) == 0) {
        std::string why;
        auto pfn = parse_number(key.substr(6), true, why);
        if (!pfn) return {std::nullopt, {key + ": " + why}};
        if (*pfn >= trace_.machine.pages)
          return {std::nullopt, {key + ": frame " + std::to_string(*pfn) + " is outside the machine"}};
        const std::string_view v = tok.substr(eq + 1);
        std::optional<MigrateType> type;
        for (MigrateType t : {MigrateType::unmovable, MigrateType::movable, MigrateType::reclaimable,
                              MigrateType::cma, MigrateType::isolate})
          if (v == label_name(t)) type = t;
        if (!type)
          return {std::nullopt,
                  {key + ": a label is movable, unmovable, reclaimable, cma or isolate, got '" + std::string(v) + "'"}};
        item.key = ExpectKey::pageblock_label;
        item.subject = static_cast<uint32_t>(*pfn);
        item.value = static_cast<uint64_t>(*type);
        e.items.push_back(item);
        continue;
      } else {
        auto dot = key.rfind('.');
        if (dot == std::string::npos) return {std::nullopt, {"unknown key '" + key + "'"}};
        std::string subject = key.substr(0, dot), field = key.substr(dot + 1);
        if (field == "used" || field == "maxchunk") {
          auto a = trace_.find_area(subject);
          if (!a) return {std::nullopt, {"area '" + subject + "' was not declared"}};
          item.key = field == "used" ? ExpectKey::area_used : ExpectKey::area_maxchunk;
          item.subject = raw(*a);
        } else if (field == "pfn") {
          if (!is_handle_token(subject)) return {std::nullopt, {"invalid handle '" + subject + "'"}};
          item.key = ExpectKey::handle_pfn;
          item.subject = raw(trace_.intern_handle(subject));
        } else {
          return {std::nullopt, {"unknown key '" + key + "'"}};
        }
      }
      std::string why;
      auto v = parse_number(tok.substr(eq + 1), true, why);
      if (!v) return {std::nullopt, {key + ": " + why + ": '" + std::string(tok.substr(eq + 1)) + "'"}};
      item.value = *v;
      e.items.push_back(item);
    }
    return {e, {}};
  }

  // Text-level handle check: a handle must be bound by an earlier statement, and by one of
  // the family that the using statement takes. (Whether that binding succeeded, and so
  // whether the handle is live, is decided when the statement runs.)
  // `switch Tx after Ty.k:label[#i]` or `switch Tx at start`.
  std::optional<Failure> parse_switch(const std::vector<std::string_view>& toks, uint32_t line_no) {
    const char* usage = "expected 'switch Tx after Ty.K:LABEL[#I]' or 'switch Tx at start'";
    auto thread_of = [&](std::string_view t) -> std::optional<uint8_t> {
      if (t.size() != 2 || t[0] != 'T' || t[1] < '0' || t[1] > '9') return std::nullopt;
      const uint8_t n = static_cast<uint8_t>(t[1] - '0');
      if (n >= trace_.machine.cpus) return std::nullopt;
      return n;
    };
    if (toks.size() != 4) return Failure{usage};
    Switch sw;
    sw.line = line_no;
    const auto to = thread_of(toks[1]);
    if (!to) return Failure{"'" + std::string(toks[1]) + "' is not a thread of this machine (T0 to T" +
                            std::to_string(trace_.machine.cpus - 1) + ")"};
    sw.to = *to;
    if (toks[2] == "at" && toks[3] == "start") {
      sw.at_start = true;
      trace_.switches.push_back(sw);
      return std::nullopt;
    }
    if (toks[2] != "after") return Failure{usage};
    std::string_view where = toks[3];
    const size_t dot = where.find('.'), colon = where.find(':');
    if (dot == std::string_view::npos || colon == std::string_view::npos || colon < dot) return Failure{usage};
    const auto from = thread_of(where.substr(0, dot));
    if (!from) return Failure{"'" + std::string(where.substr(0, dot)) + "' is not a thread of this machine"};
    sw.thread = *from;
    std::string why;
    const auto k = parse_number(where.substr(dot + 1, colon - dot - 1), false, why);
    if (!k || *k == 0 || *k > UINT32_MAX) return Failure{"operation number must be 1 or more in '" + std::string(where) + "'"};
    sw.op = static_cast<uint32_t>(*k);
    std::string_view label = where.substr(colon + 1);
    if (const size_t hash = label.find('#'); hash != std::string_view::npos) {
      const auto i = parse_number(label.substr(hash + 1), false, why);
      if (!i || *i == 0 || *i > UINT32_MAX) return Failure{"step occurrence must be 1 or more in '" + std::string(where) + "'"};
      sw.occurrence = static_cast<uint32_t>(*i);
      label = label.substr(0, hash);
    }
    const auto l = step_label_by_name(label);
    if (!l) return Failure{"unknown step '" + std::string(label) + "' (docs/concurrency.md lists the steps)"};
    sw.label = *l;
    trace_.switches.push_back(sw);
    return std::nullopt;
  }

  // A concurrent trace: each handle belongs to one thread (but for `touch`), and every switch names an
  // operation its thread has.
  std::optional<ParseError> check_threads() {
    if (!trace_.concurrent()) return std::nullopt;
    std::unordered_map<uint32_t, uint8_t> owner;
    std::vector<uint32_t> ops_of(trace_.machine.cpus, 0);
    for (const auto& st : trace_.statements) {
      const auto* op = std::get_if<Op>(&st.body);
      if (!op) continue;
      ++ops_of[st.thread];
      auto use = handle_use(*op);
      // Any CPU's batch may take a reference to any page (E1): a `touch` may name another
      // thread's block; where the schedule runs it before the block exists, it is skipped.
      if (!use || std::holds_alternative<Touch>(*op)) continue;
      auto [it, fresh] = owner.emplace(raw(use->id), st.thread);
      if (!fresh && it->second != st.thread)
        return ParseError{st.line, "handle '" + trace_.handle_name(use->id) + "' is used by T" +
                                       std::to_string(it->second) + " and T" + std::to_string(st.thread) +
                                       ": in a concurrent trace a handle belongs to one thread"};
    }
    for (const auto& sw : trace_.switches)
      if (!sw.at_start && sw.op > ops_of[sw.thread])
        return ParseError{sw.line, "T" + std::to_string(sw.thread) + " has " + std::to_string(ops_of[sw.thread]) +
                                       " operations, so T" + std::to_string(sw.thread) + "." + std::to_string(sw.op) +
                                       " does not exist"};
    return std::nullopt;
  }

  std::optional<ParseError> check_handles() {
    if (auto e = check_threads()) return e;
    std::unordered_map<uint32_t, Family> bound;
    auto family_op = [](Family f) { return std::string(binding_op(f)); };
    for (const auto& st : trace_.statements) {
      if (const auto* op = std::get_if<Op>(&st.body)) {
        auto use = handle_use(*op);
        if (!use) continue;
        const auto& hname = trace_.handle_name(use->id);
        if (use->binds) {
          bound[raw(use->id)] = use->family;
          continue;
        }
        auto it = bound.find(raw(use->id));
        if (it == bound.end())
          return ParseError{st.line, "handle '" + hname + "' is not bound by any earlier statement"};
        if (it->second != use->family)
          return ParseError{st.line, std::string("'") + op_name(*op) + "' takes a handle bound by " +
                                         family_op(use->family) + ", but '" + hname + "' is bound by " +
                                         family_op(it->second)};
      } else {
        for (const auto& item : std::get<Expect>(st.body).items)
          if (item.key == ExpectKey::handle_pfn && !bound.count(item.subject))
            return ParseError{st.line, "handle '" + trace_.handles[item.subject] +
                                           "' is not bound by any earlier statement"};
      }
    }
    return std::nullopt;
  }

  Trace trace_;
  bool have_machine_ = false;
};

}  // namespace

HandleId Trace::intern_handle(const std::string& name) {
  for (size_t i = 0; i < handles.size(); ++i)
    if (handles[i] == name) return HandleId{static_cast<uint32_t>(i)};
  handles.push_back(name);
  return HandleId{static_cast<uint32_t>(handles.size() - 1)};
}

std::optional<AreaId> Trace::find_area(const std::string& name) const {
  for (size_t i = 0; i < areas.size(); ++i)
    if (areas[i].name == name) return AreaId{static_cast<uint32_t>(i)};
  return std::nullopt;
}

ParseResult parse_trace(std::string_view text) { return Parser{}.run(text); }

std::optional<Profile> profile_by_name(std::string_view name) {
  for (Profile p : kProfiles)
    if (name == cmacheck::name(p)) return p;
  return std::nullopt;
}

std::string op_usage(size_t op_index) {
  std::string u;
  size_t i = 0;
  for_each_op_type([&](auto t) {
    if (i++ == op_index) u = usage<typename decltype(t)::type>();
  });
  return u;
}

ParseResult parse_trace_file(const std::string& path) {
  // std::ifstream opens a directory on Linux and throws when it is read: check first.
  ParseResult bad;
  bad.error = ParseError{0, "cannot read file"};
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return bad;
  try {
    std::ifstream in(path, std::ios::binary);
    if (!in) return bad;
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse_trace(ss.str());
  } catch (const std::exception&) {
    return bad;
  }
}

}  // namespace cmacheck
