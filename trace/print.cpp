#include "trace/print.h"

#include <string>

namespace cmacheck {

namespace {

std::string num(uint64_t v) { return std::to_string(v); }

struct OpPrinter {
  const Trace& t;
  std::string h(HandleId id) const { return t.handle_name(id); }
  std::string operator()(const Alloc& o) const {
    std::string s = "alloc " + h(o.id) + " kind=" + name(o.kind);
    if (o.order.value) s += " order=" + num(o.order.value);
    if (o.at) s += " at=" + num(raw(*o.at));
    return s;
  }
  std::string operator()(const Free& o) const { return "free " + h(o.id); }
  std::string operator()(const Pin& o) const { return "pin " + h(o.id) + (o.longterm ? " longterm" : ""); }
  std::string operator()(const Unpin& o) const { return "unpin " + h(o.id); }
  std::string operator()(const Migrate& o) const { return "migrate " + h(o.id); }
  std::string operator()(const CmaAlloc& o) const {
    std::string s = "cma_alloc " + h(o.id) + " area=" + t.area_name(o.area) + " count=" + num(raw(o.count));
    if (o.align.value) s += " align=" + num(o.align.value);
    return s;
  }
  std::string operator()(const CmaRelease& o) const { return "cma_release " + h(o.id); }
  std::string operator()(const CmaReleaseRaw& o) const {
    return "cma_release area=" + t.area_name(o.area) + " pfn=" + num(raw(o.pfn)) + " count=" + num(raw(o.count));
  }
  std::string operator()(const AllocContig& o) const {
    return "alloc_contig " + h(o.id) + " count=" + num(raw(o.count));
  }
  std::string operator()(const FreeContig& o) const { return "free_contig " + h(o.id); }
};

}  // namespace

std::string print_op(const Trace& t, const Op& op) { return std::visit(OpPrinter{t}, op); }

std::string print_statement(const Trace& t, const Statement& s) {
  std::string out;
  if (const auto* op = std::get_if<Op>(&s.body)) {
    out = print_op(t, *op);
    if (s.expectation) {
      out += s.expectation->ok ? " => ok" : " => fail";
      if (s.expectation->pfn) out += " pfn=" + num(raw(*s.expectation->pfn));
    }
    return out;
  }
  out = "expect";
  for (const auto& item : std::get<Expect>(s.body).items) {
    out += ' ';
    switch (item.key) {
      case ExpectKey::free: out += "free"; break;
      case ExpectKey::free_cma: out += "free_cma"; break;
      case ExpectKey::area_used: out += t.areas[item.subject].name + ".used"; break;
      case ExpectKey::area_maxchunk: out += t.areas[item.subject].name + ".maxchunk"; break;
      case ExpectKey::handle_pfn: out += t.handles[item.subject] + ".pfn"; break;
    }
    out += '=' + num(item.value);
  }
  return out;
}

std::string print_header(const Trace& t) {
  std::string out = "machine pages=" + num(t.machine.pages) + " pageblock_order=" + num(t.machine.pageblock_order) +
                    " max_order=" + num(t.machine.max_order) + "\n";
  for (const auto& a : t.areas)
    out += "area " + a.name + " base=" + num(raw(a.base)) + " pages=" + num(raw(a.pages)) +
           " order_per_bit=" + num(a.order_per_bit) + "\n";
  return out;
}

std::string print_trace(const Trace& t) {
  std::string out = print_header(t);
  for (const auto& s : t.statements) out += print_statement(t, s) + "\n";
  return out;
}

}  // namespace cmacheck
