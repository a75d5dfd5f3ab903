#include "properties/result.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <type_traits>
#include <variant>

namespace cmacheck::props {

namespace {

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned>(c));
          out += b;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string list(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + quote(v[i]);
  return out + "]";
}

std::string real(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

// A value of the flat objects to_json writes: a string, a number (its text), a boolean or
// null, or an array of strings.
struct Number {
  std::string text;
};
using Value = std::variant<std::string, Number, bool, std::nullptr_t, std::vector<std::string>>;

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}

  bool object(std::map<std::string, Value>& out) {
    if (!expect('{')) return false;
    skip();
    if (peek() == '}') return ++pos_, end();
    while (true) {
      std::string key;
      Value v;
      if (!string(key) || !expect(':') || !value(v)) return false;
      out[key] = std::move(v);
      skip();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (!expect('}')) return false;
      return end();
    }
  }

  const std::string& error() const { return error_; }

 private:
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r')) ++pos_;
  }
  bool fail(const std::string& what) {
    if (error_.empty()) error_ = "offset " + std::to_string(pos_) + ": " + what;
    return false;
  }
  bool expect(char c) {
    skip();
    if (peek() != c) return fail(std::string("expected '") + c + "'");
    ++pos_;
    return true;
  }
  bool end() {
    skip();
    return pos_ == s_.size() || fail("text after the object");
  }
  bool string(std::string& out) {
    if (!expect('"')) return false;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) break;
      c = s_[pos_++];
      switch (c) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'u': {
          // to_json escapes only control characters this way.
          if (pos_ + 4 > s_.size()) return fail("short \\u escape");
          const std::string hex(s_.substr(pos_, 4));
          char* e = nullptr;
          const long v = std::strtol(hex.c_str(), &e, 16);
          if (*e || v > 0x7f) return fail("unsupported \\u escape");
          out += static_cast<char>(v);
          pos_ += 4;
          break;
        }
        default: out += c;
      }
    }
    if (pos_ >= s_.size()) return fail("unterminated string");
    ++pos_;
    return true;
  }
  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  bool value(Value& out) {
    skip();
    const char c = peek();
    if (c == '"') {
      std::string s;
      if (!string(s)) return false;
      out = std::move(s);
    } else if (c == '[') {
      ++pos_;
      std::vector<std::string> items;
      skip();
      if (peek() == ']') {
        ++pos_;
      } else {
        while (true) {
          std::string s;
          if (!string(s)) return false;
          items.push_back(std::move(s));
          skip();
          if (peek() == ',') {
            ++pos_;
            continue;
          }
          if (!expect(']')) return false;
          break;
        }
      }
      out = std::move(items);
    } else if (literal("true")) {
      out = true;
    } else if (literal("false")) {
      out = false;
    } else if (literal("null")) {
      out = nullptr;
    } else {
      const size_t start = pos_;
      while (pos_ < s_.size() && std::string_view("+-.0123456789eE").find(s_[pos_]) != std::string_view::npos) ++pos_;
      if (pos_ == start) return fail("expected a value");
      out = Number{std::string(s_.substr(start, pos_ - start))};
    }
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace

std::string to_json(const PropertyResult& r) {
  std::string o = "{\n";
  auto field = [&](const char* key, const std::string& value, bool last = false) {
    o += std::string("  \"") + key + "\": " + value + (last ? "\n" : ",\n");
  };
  field("property", quote(r.property));
  field("faults", list(r.faults));
  field("seed", std::to_string(r.seed));
  field("max_success", std::to_string(r.max_success));
  field("max_size", std::to_string(r.max_size));
  field("passed", r.passed ? "true" : "false");
  field("gave_up", r.gave_up ? "true" : "false");
  field("timed_out", r.timed_out ? "true" : "false");
  field("cases", std::to_string(r.cases));
  field("shrinks", std::to_string(r.shrinks));
  field("seconds", real(r.seconds));
  field("rule", quote(r.rule));
  field("failure", quote(r.failure));
  field("counterexample_file", quote(r.counterexample_file));
  field("counterexample", quote(r.counterexample));
  field("floors_failed", list(r.floors_failed));
  field("message", quote(r.message), true);
  return o + "}\n";
}

std::optional<PropertyResult> result_from_json(std::string_view text, std::string& error) {
  std::map<std::string, Value> fields;
  Reader reader(text);
  if (!reader.object(fields)) {
    error = reader.error();
    return std::nullopt;
  }
  PropertyResult r;
  for (const char* required : {"property", "passed"})
    if (!fields.count(required)) {
      error = std::string("no \"") + required + "\" field";
      return std::nullopt;
    }
  for (const auto& field : fields) {
    const std::string& key = field.first;
    const Value& value = field.second;
    auto wrong = [&](const char* type) {
      error = "\"" + key + "\" is not " + type;
      return std::nullopt;
    };
    auto str = [&](std::string& out) {
      if (const auto* s = std::get_if<std::string>(&value)) return out = *s, true;
      return false;
    };
    auto strs = [&](std::vector<std::string>& out) {
      if (const auto* s = std::get_if<std::vector<std::string>>(&value)) return out = *s, true;
      return false;
    };
    auto flag = [&](bool& out) {
      if (const auto* b = std::get_if<bool>(&value)) return out = *b, true;
      return false;
    };
    // Numbers are checked whole: "12x" or an overflow is an error, not a truncation.
    auto number = [&](auto& out) {
      const auto* n = std::get_if<Number>(&value);
      if (!n) return false;
      char* end = nullptr;
      errno = 0;
      using T = std::decay_t<decltype(out)>;
      if constexpr (std::is_same_v<T, double>) {
        out = std::strtod(n->text.c_str(), &end);
      } else {
        if (n->text.empty() || n->text[0] == '-') return false;
        const unsigned long long v = std::strtoull(n->text.c_str(), &end, 10);
        if (v > static_cast<unsigned long long>(std::numeric_limits<T>::max())) return false;
        out = static_cast<T>(v);
      }
      return errno == 0 && end && *end == '\0';
    };
    bool ok = true;
    if (key == "property") ok = str(r.property);
    else if (key == "faults") ok = strs(r.faults);
    else if (key == "seed") ok = number(r.seed);
    else if (key == "max_success") ok = number(r.max_success);
    else if (key == "max_size") ok = number(r.max_size);
    else if (key == "passed") ok = flag(r.passed);
    else if (key == "gave_up") ok = flag(r.gave_up);
    else if (key == "timed_out") ok = flag(r.timed_out);
    else if (key == "cases") ok = number(r.cases);
    else if (key == "shrinks") ok = number(r.shrinks);
    else if (key == "seconds") ok = number(r.seconds);
    else if (key == "rule") ok = str(r.rule);
    else if (key == "failure") ok = str(r.failure);
    else if (key == "counterexample_file") ok = str(r.counterexample_file);
    else if (key == "counterexample") ok = str(r.counterexample);
    else if (key == "floors_failed") ok = strs(r.floors_failed);
    else if (key == "message") ok = str(r.message);
    if (!ok) return wrong("of the expected type");
  }
  return r;
}

}  // namespace cmacheck::props
