// From a trace to a command script for kernel/krdrive (kernel/README.md), statement by
// statement, refusing (with the reason) every statement the kernel cannot be made to run.
#include <algorithm>
#include <cctype>
#include <functional>
#include <set>
#include <sstream>
#include <utility>

#include "kreplay/kreplay.h"
#include "trace/parse.h"
#include "trace/print.h"

namespace cmacheck::kreplay {

namespace {

std::string mib_or_kib(uint64_t pages) {
  if (pages % 256 == 0) return std::to_string(pages / 256) + "M";
  return std::to_string(pages * 4) + "K";
}

std::vector<std::string> tokens(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t' && s[j] != '\r') ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

constexpr std::string_view kPrefix = "#kernel:";

}  // namespace

std::string Plan::cma_arg() const {
  if (!has_area) return "none";
  return mib_or_kib(raw(pages)) + "@" + mib_or_kib(raw(base) + offset);
}
std::string Plan::mem_arg() const { return std::to_string(mem_mib) + "M"; }

// Directive syntax (docs/kernel-crosscheck.md):
//   #kernel: pressure [ID] pages=N|free=SIZE [min_in_cma=N]
//   #kernel: pressure_check [ID] [min_moved=N]      #kernel: pressure_stop [ID]
//   #kernel: pin [ID] pages=N longterm in_cma
//   #kernel: pin_check [ID]           #kernel: unpin [ID]
//   #kernel: drain
// ID defaults to the verb's family name (`pressure`, `pin`).
std::optional<Problem> parse_directives(std::string_view text, std::vector<Directive>& out) {
  uint32_t line = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view l = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    size_t first = l.find_first_not_of(" \t");
    if (first == std::string_view::npos || l.substr(first, kPrefix.size()) != kPrefix) {
      if (end == text.size()) break;
      continue;
    }
    std::string_view body = l.substr(first + kPrefix.size());
    std::vector<std::string> tok = tokens(body);
    auto bad = [&](const std::string& why) { return Problem{line, "#kernel: " + why}; };
    if (tok.empty()) return bad("empty directive");
    Directive d;
    d.line = line;
    d.text = std::string(body.substr(body.find_first_not_of(" \t")));
    while (!d.text.empty() && (d.text.back() == '\r' || d.text.back() == ' ')) d.text.pop_back();
    const std::string& verb = tok[0];
    using V = Directive::Verb;
    // Each verb and the family whose ID it names (empty: it takes no ID).
    struct VerbInfo {
      const char* name;
      Directive::Verb verb;
      const char* family;
    };
    static constexpr VerbInfo kVerbs[] = {
        {"pressure", V::pressure, "pressure"}, {"pressure_check", V::pressure_check, "pressure"},
        {"pressure_stop", V::pressure_stop, "pressure"}, {"pin", V::pin, "pin"},
        {"pin_check", V::pin_check, "pin"}, {"unpin", V::unpin, "pin"}, {"drain", V::drain, ""},
    };
    const VerbInfo* info = nullptr;
    std::string known;
    for (const VerbInfo& v : kVerbs) {
      if (verb == v.name) info = &v;
      known += known.empty() ? v.name : std::string(", ") + v.name;
    }
    if (!info) return bad("unknown directive '" + verb + "' (" + known + ")");
    d.verb = info->verb;
    const std::string family = info->family;
    size_t i = 1;
    if (!family.empty()) {
      if (i < tok.size() && tok[i].find('=') == std::string::npos && tok[i] != "longterm" && tok[i] != "in_cma") {
        if (!is_handle_token(tok[i]) || tok[i].size() > 40) return bad("bad name '" + tok[i] + "'");
        d.id = tok[i++];
      } else {
        d.id = family;
      }
    }
    bool longterm = false, in_cma = false, have_pages = false, have_free = false;
    std::set<std::string> seen;
    for (; i < tok.size(); ++i) {
      const std::string& t = tok[i];
      size_t eq = t.find('=');
      std::string key = eq == std::string::npos ? t : t.substr(0, eq);
      if (!seen.insert(key).second) return bad("'" + key + "' given twice");
      if (eq == std::string::npos) {
        if (d.verb == V::pin && t == "longterm")
          longterm = true;
        else if (d.verb == V::pin && t == "in_cma")
          in_cma = true;
        else
          return bad("unexpected '" + t + "'");
        continue;
      }
      std::string why;
      auto v = parse_number(t.substr(eq + 1), /*allow_size=*/true, why);
      if (!v) return bad("bad number in '" + t + "': " + why);
      if ((d.verb == V::pressure || d.verb == V::pin) && key == "pages")
        d.pages = *v, have_pages = true;
      else if (d.verb == V::pressure && key == "free")
        d.free_pages = *v, have_free = true;
      else if (d.verb == V::pressure && key == "min_in_cma")
        d.min_in_cma = *v;
      else if (d.verb == V::pressure_check && key == "min_moved")
        d.min_moved = *v;
      else
        return bad("unknown key '" + key + "' for " + verb);
    }
    if (d.verb == V::pressure && have_pages == have_free) return bad("pressure needs exactly one of pages= and free=");
    if (d.verb == V::pressure && have_free && d.free_pages < 1024)
      return bad("pressure free= must be at least 1024 pages (4M)");
    if ((d.verb == V::pressure && have_pages) || d.verb == V::pin) {
      if (!have_pages || d.pages == 0) return bad(verb + " needs pages=N with N > 0");
    }
    if (d.verb == V::pin && (!longterm || !in_cma))
      return bad(
          "pin must be `pin [ID] pages=N longterm in_cma`: a short-term pin at frames the kernel chooses has no model "
          "counterpart (pin a page at a chosen frame with `alloc ID kind=movable at=PFN` + `pin ID`)");
    out.push_back(std::move(d));
    if (end == text.size()) break;
  }
  return std::nullopt;
}

namespace {

// The profile a trace's machine line declares (`profile=`), if it declares one.
std::optional<Profile> declared_profile(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    const size_t start = line.find_first_not_of(" \t\r");
    if (start == std::string_view::npos) continue;
    if (line.substr(start, 8) != "machine ") return std::nullopt;
    const size_t key = line.find("profile=");
    if (key == std::string_view::npos) return std::nullopt;
    const size_t end = line.find_first_of(" \t\r", key);
    return profile_by_name(line.substr(key + 8, end == std::string_view::npos ? std::string_view::npos : end - key - 8));
  }
  return std::nullopt;
}

class Planner {
 public:
  Planner(const Trace& t, const PlanOptions& o) : t_(t), options_(o) {}

  PlanResult run(std::string_view text) {
    PlanResult r;
    if (t_.machine.pcp_high) {
      // Q1-Q5: the guest's per-CPU lists keep the kernel's own high and batch marks, and the
      // module cannot read them; it drains them before each read instead (the `busy` command).
      r.problem = Problem{1, "not kernel-checkable: pcp=" + std::to_string(t_.machine.pcp_high) +
                                 ": the guest's per-CPU page lists have the kernel's own limits and cannot be read"};
      return r;
    }
    plan_.node = needs_node();
    plan_.scrub = needs_buddy();
    // The kernel: --kernel, else the one the trace's `profile=` names, else the default. A
    // trace without `profile=` is profile-neutral: it runs on every kernel, and the model
    // predicts it under the profile of the kernel booted.
    if (!options_.kernel.empty() && !known_kernel(options_.kernel)) {
      r.problem = Problem{0, "unknown kernel '" + options_.kernel + "' (6.1 or 6.12)"};
      return r;
    }
    const auto declared = declared_profile(text);
    const std::string profile_kernel = declared ? *kernel_for_profile(name(*declared)) : std::string();
    if (!options_.kernel.empty() && !profile_kernel.empty() && options_.kernel != profile_kernel) {
      r.problem = Problem{0, "the trace's profile is Linux " + profile_kernel + ", not " + options_.kernel};
      return r;
    }
    plan_.kernel = !options_.kernel.empty()    ? options_.kernel
                   : !profile_kernel.empty() ? profile_kernel
                                             : std::string(kDefaultKernel);
    t_.machine.profile = options_.model_profile ? *options_.model_profile
                         : plan_.kernel == "6.12"  ? Profile::linux_6_12
                                                   : Profile::linux_6_1;
    // The model's labels after each statement, for reproducing claims (relabels below).
    if (plan_.node) pred_ = predict(t_);
    if (auto p = check_header()) {
      r.problem = p;
      return r;
    }
    std::vector<Directive> ds;
    if (auto p = parse_directives(text, ds)) {
      r.problem = p;
      return r;
    }
    plan_.trace = t_;
    plan_.directives = std::move(ds);
    plan_.has_area = !t_.areas.empty();
    if (plan_.has_area) {
      plan_.base = t_.areas[0].base;
      plan_.pages = t_.areas[0].pages;
    }
    const uint64_t machine_mib = (t_.machine.pages * 4 + 1023) / 1024;
    uint64_t need_mib = machine_mib;
    if (plan_.node) {
      if (auto p = node_offset()) {
        r.problem = p;
        return r;
      }
      plan_.append = "numa=fake=2U";
      need_mib = kNodeGuestMiB;
    }
    plan_.mem_mib = options_.mem_mib ? options_.mem_mib : std::max(need_mib, kMinGuestMiB);
    if (plan_.mem_mib < need_mib) {
      r.problem = Problem{0, "--mem " + std::to_string(plan_.mem_mib) + "M is smaller than the " +
                                 (plan_.node ? "two nodes the trace's machine needs (" + std::to_string(need_mib) +
                                                   " MiB)"
                                             : "trace's machine (" + std::to_string(t_.machine.pages) +
                                                   " pages = " + std::to_string(machine_mib) + " MiB)")};
      return r;
    }
    emit("# cmacheck kreplay: command script (kernel/README.md)" +
         (plan_.has_area ? ", area " + t_.areas[0].name + " -> reserved" : std::string()) +
         ", cma=" + plan_.cma_arg() + ", qemu -m " + plan_.mem_arg() +
         (plan_.node ? ", trace frame P = guest frame " + std::to_string(plan_.offset) + " + P (node " +
                           std::to_string(kNodeId) + ")"
                     : std::string()));
    Step start;
    start.kind = StepKind::start;
    if (plan_.node)
      plan_.setup_line = emit("node_setup nid=" + std::to_string(kNodeId) + " pfn=" + std::to_string(plan_.offset) +
                              " count=" + std::to_string(t_.machine.pages) + (plan_.scrub ? " scrub=1" : ""));
    after_command(start);
    plan_.steps.push_back(start);

    // Statements and directives in source order.
    size_t si = 0, di = 0;
    const auto& sts = t_.statements;
    const auto& dirs = plan_.directives;
    while (si < sts.size() || di < dirs.size()) {
      const bool take_directive = di < dirs.size() && (si == sts.size() || dirs[di].line < sts[si].line);
      std::optional<Problem> p =
          take_directive ? directive(di++) : statement(si++, di < dirs.size() ? dirs[di].line : 0);
      if (p) {
        r.problem = p;
        return r;
      }
    }
    emit("# end");
    r.plan = std::move(plan_);
    return r;
  }

 private:
  // The node mapping is for what the CMA area alone cannot show: alloc_contig and
  // unmovable/reclaimable blocks at chosen frames.
  bool needs_node() const {
    for (const Statement& st : t_.statements) {
      const Op* op = std::get_if<Op>(&st.body);
      if (!op) continue;
      if (std::holds_alternative<AllocContig>(*op) || std::holds_alternative<FreeContig>(*op)) return true;
      if (const auto* a = std::get_if<Alloc>(op); a && a->kind != Kind::movable) return true;
    }
    return false;
  }

  // Blocks the node's buddy allocator chooses: the node's free scraps must go first.
  bool needs_buddy() const {
    for (const Statement& st : t_.statements)
      if (const Op* op = std::get_if<Op>(&st.body))
        if (const auto* a = std::get_if<Alloc>(op); a && a->kind != Kind::movable && !a->at) return true;
    return false;
  }

  // The node mapping's offset (kreplay.h): the lowest pageblock boundary past the kernel's
  // own pages at which every alloc_contig count of the trace has a candidate.
  std::optional<Problem> node_offset() {
    std::set<uint64_t> counts;
    for (const Statement& st : t_.statements)
      if (const Op* op = std::get_if<Op>(&st.body))
        if (const auto* c = std::get_if<AllocContig>(op); c && raw(c->count) > 0) counts.insert(raw(c->count));
    const uint64_t z = node_zone_start(plan_.kernel);
    const uint64_t pb = uint64_t{1} << kKernelPageblockOrder;
    for (uint64_t t = kNodeStartPfn + kNodeKernelPages; t + t_.machine.pages + kNodeTopPages <= kNodeEndPfn; t += pb) {
      bool all = true;
      for (uint64_t c : counts) {
        const uint64_t first = kernel_align(z, c);
        if (t < first || (t - first) % c != 0) {
          all = false;
          break;
        }
      }
      if (all) {
        plan_.zone_start = z;
        plan_.offset = t;
        return std::nullopt;
      }
    }
    std::string list;
    for (uint64_t c : counts) list += (list.empty() ? "" : ", ") + std::to_string(c);
    return Problem{0, "no frame of node " + std::to_string(kNodeId) + " (zone start " + std::to_string(z) + " on Linux " +
                          plan_.kernel + ") can be the trace's frame 0: it must be a pageblock boundary with room for " +
                          std::to_string(t_.machine.pages) +
                          " frames and a candidate of alloc_contig_pages for every count (" + list +
                          "), i.e. congruent to ALIGN(zone start, C) modulo C; choose counts that agree (powers of "
                          "two always do)"};
  }

  std::optional<Problem> check_header() const {
    if (t_.machine.pageblock_order != kKernelPageblockOrder || t_.machine.max_order != kKernelMaxOrder)
      return Problem{0, "machine: the kernel has pageblock_order=9 and max_order=10; this trace has pageblock_order=" +
                            std::to_string(t_.machine.pageblock_order) +
                            " max_order=" + std::to_string(t_.machine.max_order)};
    if (plan_.node) {
      // (the trace format makes the machine a whole number of pageblocks, so the fence
      // past its end starts at a pageblock boundary)
      if (t_.areas.empty()) return std::nullopt;
    }
    if (t_.areas.size() != 1)
      return Problem{0, t_.areas.empty()
                            ? "the trace declares no CMA area; kreplay maps exactly one onto the kernel's cma= area"
                            : "the trace declares " + std::to_string(t_.areas.size()) +
                                  " areas; the kernel's cma= argument makes exactly one (more than one area "
                                  "is not kernel-checkable)"};
    const AreaDecl& a = t_.areas[0];
    if (a.order_per_bit != 0)
      return Problem{0, "area " + a.name + ": order_per_bit=" + std::to_string(a.order_per_bit) +
                            "; a cma= area has order_per_bit 0 (only hugetlb_cma= makes 9, at a base and size of the "
                            "kernel's choosing)"};
    if (raw(a.base) == 0)
      return Problem{0, "area " + a.name +
                            ": base=0 cannot be placed: pfn 0 is not usable RAM in the guest (the kernel refuses "
                            "cma=...@0); choose a base of at least 2M that avoids the kernel image (16M to about 27M)"};
    return std::nullopt;
  }

  uint32_t emit(const std::string& l) {
    plan_.script += l;
    plan_.script += '\n';
    return ++script_lines_;
  }

  std::string th(HandleId h) const { return "t" + std::to_string(raw(h)); }
  static std::string kh(const std::string& id) { return "k_" + id; }

  Problem not_checkable(const Statement& st, const std::string& why) const {
    return Problem{st.line, "not kernel-checkable: `" + print_statement(t_, st) + "`: " + why};
  }

  // The state reads after a command: the area's stats; in the node mapping also the
  // pageblock labels and the frames in use of the trace's machine.
  void after_command(Step& s) {
    if (plan_.has_area) s.stats_line = emit("stats");
    if (plan_.node) {
      const std::string range = " pfn=" + std::to_string(plan_.offset) + " count=" + std::to_string(t_.machine.pages);
      // busy first: it drains the per-CPU lists, whose frees can merge and (6.12) relabel
      s.busy_line = emit("busy" + range);
      s.labels_line = emit("labels" + range);
    }
  }

  std::string guest(uint64_t trace_pfn) const { return std::to_string(trace_pfn + plan_.offset); }

  // A block placed with at= takes its frames from a free block of the model's choice; when
  // that free block is larger than a pageblock, the claim relabels every pageblock it
  // covers (B5, as 6.1's steal_suitable_fallback and 6.12's try_to_steal_block do). The
  // hold labels only the pageblocks of its own range, so kreplay relabels the others the
  // model's claim relabelled: set-up (the model's labels by construction), not a check.
  void reproduce_claim(size_t index, uint64_t at, uint64_t n) {
    if (!plan_.node || pred_.after.size() <= index || !pred_.after[index].ran) return;
    const std::string& before = index == 0 ? pred_.start.labels : pred_.after[index - 1].labels;
    const std::string& after = pred_.after[index].labels;
    if (before.size() != after.size()) return;
    const uint64_t pb = uint64_t{1} << kKernelPageblockOrder;
    for (uint64_t i = 0; i < after.size(); ++i) {
      if (before[i] == after[i] || (i * pb < at + n && at < (i + 1) * pb)) continue;
      const char* mt = after[i] == 'U' ? "unmovable" : after[i] == 'R' ? "reclaimable" : after[i] == 'M' ? "movable" : "";
      if (!*mt) continue;
      plan_.steps.back().relabel_lines.push_back(emit("relabel pfn=" + guest(i * pb) + " mt=" + mt));
    }
  }

  void op_step(StepKind kind, const Statement& st, size_t index, const std::string& cmd,
               const std::function<void()>& setup = {}) {
    plan_.steps.emplace_back();
    Step& s = plan_.steps.back();
    s.kind = kind;
    s.line = st.line;
    s.statement = index;
    if (!cmd.empty()) {
      emit("# line " + std::to_string(st.line) + ": " + print_statement(t_, st));
      s.command = cmd;
      s.command_line = emit(cmd);
      if (setup) setup();
      after_command(plan_.steps.back());
    }
  }

  // Where a statement stands: the handlers below need its line, its index and the line of
  // the next directive (a hold's pin must follow it with no directive between).
  struct At {
    const Statement& st;
    size_t index;
    uint32_t next_directive_line;
  };

  std::optional<Problem> statement(size_t index, uint32_t next_directive_line);

  std::optional<Problem> expect(const Expect& e, const At& at) {
    for (const ExpectItem& it : e.items) {
      if (it.key == ExpectKey::free && plan_.node) continue;  // the node's frames are the machine's
      if (it.key == ExpectKey::free || it.key == ExpectKey::free_cma)
        return not_checkable(at.st,
                             "free and free_cma count the whole machine; the kernel's own pages (image, page tables, "
                             "initramfs, agents) and per-CPU lists make the guest's counts differ (use NAME.used, "
                             "NAME.maxchunk, ID.pfn)");
      if (it.key == ExpectKey::pageblock_label)
        return not_checkable(at.st, "pageblock labels are not read from the kernel yet");
      if (it.key == ExpectKey::batched) return not_checkable(at.st, "the guest has no way to read the batches (E1)");
      if (it.key == ExpectKey::free_pcp) return not_checkable(at.st, "the guest has no way to read the per-CPU lists (Q5)");
      if (it.key == ExpectKey::handle_pfn) {
        auto s = state_.find(it.subject);
        if (s != state_.end() && s->second == HState::dropped)
          return not_checkable(at.st, "the kernel gave the held frame of '" + t_.handles[it.subject] +
                                          "' back at its unpin; the model's page stays, with no kernel counterpart");
      }
    }
    Step s;
    s.kind = StepKind::expect;
    s.line = at.st.line;
    s.statement = at.index;
    plan_.steps.push_back(s);
    return std::nullopt;
  }

  // One handler per operation of trace/ops.h (docs/design.md, "Adding an operation"): an
  // operation without its specialisation below stops the build.
  template <class O>
  std::optional<Problem> execute(const O&, const At&);
  std::optional<Problem> block_at(const Alloc& o, const At& at);  // unmovable / reclaimable
  std::optional<Problem> hold_at(const Alloc& o, const At& at);   // movable, pinned next
  std::optional<Problem> buddy(const Alloc& o, const At& at);     // unmovable / reclaimable, no at=

  uint64_t area_end() const { return plan_.has_area ? raw(plan_.base) + raw(plan_.pages) : 0; }

  std::optional<Problem> directive(size_t index) {
    const Directive& d = plan_.directives[index];
    using V = Directive::Verb;
    auto bad = [&](const std::string& why) { return Problem{d.line, "#kernel: " + d.text + ": " + why}; };
    if (plan_.node && d.verb != V::drain)
      return bad("agents are not available in the node mapping (alloc_contig, unmovable or reclaimable blocks): "
                 "their pages would spill into the node the trace's machine lives in");
    std::string cmd;
    switch (d.verb) {
      case V::pressure:
      case V::pin: {
        const std::string fam = d.verb == V::pressure ? "pressure" : "pin";
        if (agents_.count(d.id)) return bad("'" + d.id + "' is still running");
        agents_[d.id] = fam;
        if (d.verb == V::pressure)
          cmd = "pressure " + kh(d.id) +
                (d.pages ? " pages=" + std::to_string(d.pages) : " free=" + std::to_string(d.free_pages));
        else
          cmd = "pin " + kh(d.id) + " pages=" + std::to_string(d.pages) + " longterm in_cma";
        break;
      }
      case V::pressure_check:
      case V::pressure_stop:
      case V::pin_check:
      case V::unpin: {
        const bool pressure = d.verb == V::pressure_check || d.verb == V::pressure_stop;
        auto a = agents_.find(d.id);
        if (a == agents_.end() || a->second != (pressure ? "pressure" : "pin"))
          return bad("no " + std::string(pressure ? "pressure" : "pin") + " agent '" + d.id + "' is running");
        const char* verb = d.verb == V::pressure_check  ? "pressure_check"
                           : d.verb == V::pressure_stop ? "pressure_stop"
                           : d.verb == V::pin_check     ? "pin_check"
                                                        : "unpin";
        cmd = std::string(verb) + " " + kh(d.id);
        if (d.verb == V::pressure_stop || d.verb == V::unpin) agents_.erase(a);
        break;
      }
      case V::drain:
        cmd = "drain";
        break;
    }
    Step s;
    s.kind = StepKind::directive;
    s.line = d.line;
    s.directive = index;
    emit("# line " + std::to_string(d.line) + ": #kernel: " + d.text);
    s.command = cmd;
    s.command_line = emit(cmd);
    after_command(s);
    plan_.steps.push_back(s);
    return std::nullopt;
  }

  enum class HState { cma, held, dropped, block, contig, buddy };
  Trace t_;  // its profile set to the kernel's
  PlanOptions options_;
  Plan plan_;
  uint32_t script_lines_ = 0;
  std::map<uint32_t, HState> state_;        // by HandleId
  std::map<uint32_t, uint32_t> hold_line_;  // by HandleId
  std::map<std::string, std::string> agents_;
  Predictions pred_;  // node mapping only
  std::optional<HandleId> pending_pin_;   // the hold just planned, whose pin must come next
  std::optional<HandleId> awaiting_pin_;  // the statement being planned may be that pin
};

template <class O>
std::optional<Problem> Planner::execute(const O&, const At&) {
  static_assert(kNotHandled<O>, "kreplay does not plan this operation: add its Planner::execute specialisation "
                                "(map it onto the kernel or refuse it with the reason)");
  return std::nullopt;
}

template <>
std::optional<Problem> Planner::execute(const Alloc& o, const At& at) {
  return o.kind == Kind::movable ? hold_at(o, at) : block_at(o, at);
}

// An unmovable or reclaimable block at a chosen frame: alloc_contig_range of exactly that
// block with the block's type as the caller's type, so its pageblocks come back labelled so
// (X5), as the claim of B5 labels them; the frames are in use and unmovable for every later
// isolation (X1).
std::optional<Problem> Planner::block_at(const Alloc& o, const At& at) {
  const Statement& st = at.st;
  if (!o.at) return buddy(o, at);
  const uint64_t pfn = raw(*o.at), n = raw(o.order.pages());
  if (pfn % n != 0 || pfn + n > t_.machine.pages)
    return not_checkable(st, "at= must be a block of 2^order frames inside the machine (rule B7)");
  if (plan_.has_area && pfn < area_end() && pfn + n > raw(plan_.base))
    return not_checkable(st, "an unmovable or reclaimable block inside the CMA area is not a legal placement (B3)");
  op_step(StepKind::block, st, at.index,
          "hold " + th(o.id) + " pfn=" + guest(pfn) + (n > 1 ? " count=" + std::to_string(n) : "") +
              " mt=" + name(o.kind),
          [&] { reproduce_claim(at.index, pfn, n); });
  state_[raw(o.id)] = HState::block;
  return std::nullopt;
}

// An unmovable or reclaimable block without at=: the node's own buddy allocator chooses it
// (alloc_pages_node with __GFP_THISNODE; node_setup took every free frame of the node
// outside the machine first), as B4-B6 say. The kernel's block is compared with the model
// exactly, and by legal class (K2) where the free lists choose among several.
std::optional<Problem> Planner::buddy(const Alloc& o, const At& at) {
  op_step(StepKind::buddy, at.st, at.index,
          "balloc " + th(o.id) + " node=" + std::to_string(kNodeId) +
              (o.order.value ? " order=" + std::to_string(o.order.value) : "") + " mt=" + name(o.kind));
  state_[raw(o.id)] = HState::buddy;
  return std::nullopt;
}

// A movable page at a chosen frame maps onto a hold, and only when its pin follows at once.
std::optional<Problem> Planner::hold_at(const Alloc& o, const At& at) {
  const Statement& st = at.st;
  if (!o.at)
    return not_checkable(st,
                         "a movable block without at=: the module's pages are not LRU pages, so a movable block it "
                         "allocated would be unmovable for isolation and `alike` for claims (B5), which the "
                         "model's movable block is not; use `alloc ID kind=movable at=PFN` + `pin ID` (a held "
                         "frame) or `#kernel: pressure` (unmovable and reclaimable blocks without at= are mapped)");
  const uint64_t pfn = raw(*o.at), n = raw(o.order.pages());
  const uint64_t base = raw(plan_.base), end = area_end();
  if (pfn % n != 0 || pfn + n > t_.machine.pages)
    return not_checkable(st, "at= must be a block of 2^order frames inside the machine (rule B7) to map onto a hold");
  if (plan_.has_area && pfn < end && pfn + n > base && (pfn < base || pfn + n > end))
    return not_checkable(st, "the block crosses the area's edge; a hold is inside the area or outside it");
  const Statement* next = at.index + 1 < t_.statements.size() ? &t_.statements[at.index + 1] : nullptr;
  const Op* next_op = next ? std::get_if<Op>(&next->body) : nullptr;
  const Pin* pin = next_op ? std::get_if<Pin>(next_op) : nullptr;
  const bool pinned_next = pin && pin->id == o.id && !pin->longterm &&
                           (at.next_directive_line == 0 || at.next_directive_line > next->line);
  if (!pinned_next)
    return not_checkable(st,
                         "a movable page at a chosen frame maps onto the kernel only as a held frame, i.e. pinned: "
                         "follow it at once with `pin " +
                             t_.handle_name(o.id) +
                             "` (an unpinned page would be migrated away, which the kernel's hold is not)");
  op_step(StepKind::hold, st, at.index,
          "hold " + th(o.id) + " pfn=" + guest(pfn) + (n > 1 ? " count=" + std::to_string(n) : ""),
          [&] { reproduce_claim(at.index, pfn, n); });
  state_[raw(o.id)] = HState::held;
  hold_line_[raw(o.id)] = st.line;
  pending_pin_ = o.id;
  return std::nullopt;
}

template <>
std::optional<Problem> Planner::execute(const Pin& o, const At& at) {
  if (awaiting_pin_ == o.id && !o.longterm) {
    op_step(StepKind::pin_of_hold, at.st, at.index, "");
    plan_.steps.back().hold_line = hold_line_[raw(o.id)];
    return std::nullopt;
  }
  return not_checkable(
      at.st, o.longterm ? "user space cannot put a page at a chosen frame before pinning it; pin pages the "
                          "kernel chooses with `#kernel: pin ID pages=N longterm in_cma`"
                        : "only the pin right after `alloc ID kind=movable at=PFN` maps onto the kernel (the "
                          "hold); pins nest in the model, a hold does not");
}

template <>
std::optional<Problem> Planner::execute(const Unpin& o, const At& at) {
  auto s = state_.find(raw(o.id));
  if (s == state_.end() || s->second != HState::held)
    return not_checkable(at.st, "only the unpin of a held frame (alloc at= + pin) maps onto the kernel (drop)");
  s->second = HState::dropped;
  op_step(StepKind::drop, at.st, at.index, "drop " + th(o.id));
  plan_.steps.back().hold_line = hold_line_[raw(o.id)];
  return std::nullopt;
}

template <>
std::optional<Problem> Planner::execute(const Free& o, const At& at) {
  auto s = state_.find(raw(o.id));
  if (s != state_.end() && s->second == HState::buddy) {
    state_.erase(s);
    op_step(StepKind::buddy_free, at.st, at.index, "bfree " + th(o.id));
    return std::nullopt;
  }
  if (s == state_.end() || s->second != HState::block)
    return not_checkable(at.st,
                         "free of a block: blocks map onto held frames, which the kernel gives back at unpin; the "
                         "model's block stays allocated until free, with no kernel counterpart");
  state_.erase(s);
  op_step(StepKind::block_free, at.st, at.index, "drop " + th(o.id));
  return std::nullopt;
}

template <>
std::optional<Problem> Planner::execute(const Migrate&, const At& at) {
  return not_checkable(at.st, "migrate: user space cannot migrate a chosen page to a target the model can follow");
}

template <>
std::optional<Problem> Planner::execute(const Touch&, const At& at) {
  return not_checkable(at.st, "touch: the guest has one agent CPU and no way to read the batches (E1)");
}

template <>
std::optional<Problem> Planner::execute(const LruDrain&, const At& at) {
  return not_checkable(at.st, "lru_drain: the guest has no way to read the batches (E2)");
}

template <>
std::optional<Problem> Planner::execute(const PcpDrain&, const At& at) {
  return not_checkable(at.st, "pcp_drain: the guest's per-CPU lists are not part of the trace's machine (Q4)");
}

// Rule C1 on the node: candidates ALIGN(zone start, C) + k*C; node_offset() made the trace's
// frame 0 one of them.
template <>
std::optional<Problem> Planner::execute(const AllocContig& o, const At& at) {
  op_step(StepKind::contig, at.st, at.index,
          "alloc_contig " + th(o.id) + " count=" + std::to_string(raw(o.count)) + " node=" + std::to_string(kNodeId));
  state_[raw(o.id)] = HState::contig;
  return std::nullopt;
}

template <>
std::optional<Problem> Planner::execute(const FreeContig& o, const At& at) {
  op_step(StepKind::free_contig, at.st, at.index, "free_contig " + th(o.id));
  state_.erase(raw(o.id));
  return std::nullopt;
}

template <>
std::optional<Problem> Planner::execute(const CmaAlloc& o, const At& at) {
  // align= is physical (A2): the mapping's offset must keep it.
  if (plan_.offset % (uint64_t{1} << std::min<uint64_t>(o.align.value, 63)) != 0)
    return not_checkable(at.st, "align=" + std::to_string(o.align.value) +
                                    ": in the node mapping trace frame P is guest frame " +
                                    std::to_string(plan_.offset) + " + P, which keeps alignments up to the offset's only");
  op_step(StepKind::cma_alloc, at.st, at.index,
          "cma_alloc " + th(o.id) + " count=" + std::to_string(raw(o.count)) + " align=" + std::to_string(o.align.value));
  state_[raw(o.id)] = HState::cma;
  return std::nullopt;
}

template <>
std::optional<Problem> Planner::execute(const CmaRelease& o, const At& at) {
  op_step(StepKind::cma_release, at.st, at.index, "cma_release " + th(o.id));
  state_.erase(raw(o.id));
  return std::nullopt;
}

// The trace's frames are the guest's frames (the identity mapping), so P is passed as is; the
// driver's checked form calls the kernel only for exactly one live allocation (R2).
template <>
std::optional<Problem> Planner::execute(const CmaReleaseRaw& o, const At& at) {
  op_step(StepKind::cma_release_pfn, at.st, at.index,
          "cma_release pfn=" + guest(raw(o.pfn)) + " count=" + std::to_string(raw(o.count)));
  return std::nullopt;
}

// After the handlers: the dispatch instantiates each one.
std::optional<Problem> Planner::statement(size_t index, uint32_t next_directive_line) {
  const Statement& st = t_.statements[index];
  // A hold's pin is the statement right after it: any other statement ends the wait.
  awaiting_pin_ = std::exchange(pending_pin_, std::nullopt);
  if (const auto* e = std::get_if<Expect>(&st.body)) return expect(*e, At{st, index, next_directive_line});
  return std::visit([&](const auto& o) { return execute(o, At{st, index, next_directive_line}); },
                    std::get<Op>(st.body));
}

}  // namespace

PlanResult make_plan(const Trace& trace, std::string_view text, const PlanOptions& options) {
  return Planner(trace, options).run(text);
}

}  // namespace cmacheck::kreplay
