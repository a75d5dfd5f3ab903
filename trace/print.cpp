#include "trace/print.h"

#include <string>
#include <tuple>

namespace cmacheck {

namespace {

std::string num(uint64_t v) { return std::to_string(v); }

// One argument, as the canonical form writes it: defaults (order 0, no at=, no word) are
// omitted, numbers are decimal.
template <class O>
struct ArgPrinter {
  const Trace& t;
  const O& o;
  std::string& out;
  void operator()(const arg::Handle<O>& a) const { out += ' ' + t.handle_name(o.*a.member); }
  void operator()(const arg::Word<O>& a) const {
    if (o.*a.member) (out += ' ') += a.word;
  }
  void operator()(const arg::KindOf<O>& a) const { key(a.key) += name(o.*a.member); }
  void operator()(const arg::AreaOf<O>& a) const { key(a.key) += t.area_name(o.*a.member); }
  void operator()(const arg::Pages<O>& a) const { key(a.key) += num(raw(o.*a.member)); }
  void operator()(const arg::Frame<O>& a) const { key(a.key) += num(raw(o.*a.member)); }
  void operator()(const arg::MaybeFrame<O>& a) const {
    if (o.*a.member) key(a.key) += num(raw(*(o.*a.member)));
  }
  void operator()(const arg::OrderOf<O>& a) const {
    if ((o.*a.member).value) key(a.key) += num((o.*a.member).value);
  }
  void operator()(const arg::BatchOf<O>& a) const {
    if (o.*a.member != Batch::lru) key(a.key) += name(o.*a.member);
  }
  std::string& key(std::string_view k) const { return ((out += ' ') += k) += '='; }
};

}  // namespace

std::string print_op(const Trace& t, const Op& op) {
  return std::visit(
      [&](const auto& o) {
        using O = std::remove_cvref_t<decltype(o)>;
        std::string out(O::facts.name);
        std::apply([&](const auto&... a) { (ArgPrinter<O>{t, o, out}(a), ...); }, O::args);
        return out;
      },
      op);
}

std::string print_statement(const Trace& t, const Statement& s) {
  std::string out;
  if (t.concurrent()) out = "T" + num(s.thread) + ": ";
  if (const auto* op = std::get_if<Op>(&s.body)) {
    out += print_op(t, *op);
    if (s.expectation) {
      out += s.expectation->ok ? " => ok" : " => fail";
      if (s.expectation->pfn) out += " pfn=" + num(raw(*s.expectation->pfn));
    }
    return out;
  }
  out += "expect";
  for (const auto& item : std::get<Expect>(s.body).items) {
    out += ' ';
    switch (item.key) {
      case ExpectKey::free: out += "free"; break;
      case ExpectKey::free_cma: out += "free_cma"; break;
      case ExpectKey::batched: out += "batched"; break;
      case ExpectKey::free_pcp: out += "free_pcp"; break;
      case ExpectKey::area_used: out += t.areas[item.subject].name + ".used"; break;
      case ExpectKey::area_maxchunk: out += t.areas[item.subject].name + ".maxchunk"; break;
      case ExpectKey::handle_pfn: out += t.handles[item.subject] + ".pfn"; break;
      case ExpectKey::pageblock_label:
        out += "label@" + num(item.subject) + '=' + label_name(static_cast<MigrateType>(item.value));
        continue;
    }
    out += '=' + num(item.value);
  }
  return out;
}

std::string print_header(const Trace& t) {
  std::string out = "machine pages=" + num(t.machine.pages) + " pageblock_order=" + num(t.machine.pageblock_order) +
                    " max_order=" + num(t.machine.max_order) + " profile=" + name(t.machine.profile) +
                    (t.concurrent() ? " cpus=" + num(t.machine.cpus) : std::string()) +
                    (t.machine.pcp_high ? " pcp=" + num(t.machine.pcp_high) : std::string()) +
                    (t.machine.pcp_strict ? " pcp_isolation=strict" : "") + "\n";
  for (const auto& a : t.areas)
    out += "area " + a.name + " base=" + num(raw(a.base)) + " pages=" + num(raw(a.pages)) +
           " order_per_bit=" + num(a.order_per_bit) + "\n";
  return out;
}

std::string print_trace(const Trace& t) {
  std::string out = print_header(t);
  for (const auto& s : t.statements) out += print_statement(t, s) + "\n";
  for (const auto& sw : t.switches) out += print_switch(sw) + "\n";
  return out;
}

std::string print_switch(const Switch& sw) {
  std::string out = "switch T" + num(sw.to);
  if (sw.at_start) return out + " at start";
  out += " after T" + num(sw.thread) + "." + num(sw.op) + ":" + std::string(name(sw.label));
  if (sw.occurrence != 1) out += "#" + num(sw.occurrence);
  return out;
}

}  // namespace cmacheck
