// Kernel result lines against the model's predictions, statement by statement.
//
// The mapping is the identity on frames: the trace's area `base=B pages=N` is the kernel's
// `cma=N@B`, so a frame the model names is the same frame in the guest. Results are still
// compared as offsets inside the area (kernel pfn - kernel base = model pfn - trace base),
// which is what the semantics fix; the absolute pfns are shown beside them.
#include <algorithm>
#include <optional>
#include <ostream>
#include <sstream>

#include "kreplay/kreplay.h"
#include "trace/print.h"

namespace cmacheck::kreplay {

namespace {

struct KStats {
  uint64_t used = 0, maxchunk = 0, free = 0, free_cma = 0;
  std::vector<uint64_t> set;
};

std::string stats_text(uint64_t used, uint64_t maxchunk, const std::vector<uint64_t>& set) {
  return "used=" + std::to_string(used) + " maxchunk=" + std::to_string(maxchunk) + " set=" + format_runs(set);
}

bool has_crash_lines(const std::string& err) {
  for (const char* k : {"BUG:", "kernel BUG", "Oops", "Kernel panic", "WARNING:", "Bad page", "page dumped because"})
    if (err.find(k) != std::string::npos) return true;
  return false;
}

std::string indent_lines(const std::string& s, const std::string& pre, size_t max_lines = 40) {
  std::istringstream in(s);
  std::string l, out;
  size_t n = 0;
  while (std::getline(in, l) && n++ < max_lines) out += pre + l + "\n";
  return out;
}

class Comparer {
 public:
  Comparer(const Plan& plan, const Predictions& pred, const KernelRun& run, const std::string& name,
           const CompareOptions& o, std::ostream& out)
      : plan_(plan), t_(plan.trace), pred_(pred), run_(run), name_(name), opt_(o), out_(out) {}

  int run() {
    res_ = parse_results(run_.out);
    out_ << "== " << name_ << ": ";
    if (plan_.node)
      out_ << "machine pages=" << t_.machine.pages << " -> node " << kNodeId << " of the guest at frame "
           << plan_.offset << " (trace frame P = guest frame " << plan_.offset << " + P), ";
    if (plan_.has_area) {
      const AreaDecl& area = t_.areas[0];
      out_ << "area " << area.name << " base=" << raw(area.base) << " pages=" << raw(area.pages)
           << " -> cma=" << plan_.cma_arg();
      if (!plan_.node)
        out_ << " (the same pfns " << raw(area.base) << "-" << raw(area.base) + raw(area.pages) - 1 << " in the guest)";
      out_ << ", ";
    }
    out_ << "qemu -m " << plan_.mem_arg() << (plan_.append.empty() ? "" : " " + plan_.append) << "\n";
    if (int s = check_boot(); s >= 0) return s;
    if (int s = check_node(); s >= 0) return s;

    const Prediction* current = &pred_.start;
    for (const Step& st : plan_.steps) {
      if (st.statement != SIZE_MAX) current = &pred_.after[st.statement];
      step(st, *current);
    }
    return finish();
  }

 private:
  // The boot and area lines: the guest must have the trace's geometry and the area at its base.
  int check_boot() {
    if (!res_.boot) {
      out_ << "kreplay: " << name_ << ": the guest produced no boot line (run.sh status " << run_.status << ")\n"
           << indent_lines(run_.err, "    ");
      return has_crash_lines(run_.err) ? kDisagree : kInconclusive;
    }
    const ResultLine& b = *res_.boot;
    const std::string release = b.fields.count("kernel") ? b.fields.at("kernel") : "?";
    out_ << "   kernel: Linux " << release;
    if (release.rfind(plan_.kernel + ".", 0) != 0) {
      out_ << "\nkreplay: " << name_ << ": the guest runs Linux " << release << ", the plan asked for Linux "
           << plan_.kernel << " (build/kernel-" << plan_.kernel << ")\n";
      return kInconclusive;
    }
    if (b.number("pageblock_order") != kKernelPageblockOrder || b.number("max_order") != kKernelMaxOrder) {
      out_ << "\nkreplay: " << name_ << ": the guest reports " << b.rest
           << "; kreplay needs pageblock_order=9 max_order=10 (kernel/cmacheck.config)\n";
      return kInconclusive;
    }
    if (!plan_.has_area) {
      out_ << ", no CMA area\n";
      return -1;
    }
    const uint64_t kbase = raw(plan_.base) + plan_.offset;
    const ResultLine* a = res_.areas.empty() ? nullptr : &res_.areas[0];
    const bool placed = a && a->number("base_pfn") == kbase && a->number("count") == raw(plan_.pages) &&
                        a->number("order_per_bit") == 0 && res_.areas.size() == 1;
    if (!placed) {
      out_ << "\nkreplay: " << name_ << ": error: the kernel did not place the area at cma=" << plan_.cma_arg();
      if (a)
        out_ << " (it reports " << a->rest << ")";
      else
        out_ << " (no area: " << b.rest << ")";
      out_ << ". A base must be a multiple of 2M, not 0, and the range must be free memory: it must avoid the kernel "
              "image (16M to about 27M), the initramfs at the top of memory and firmware memory below 1M. Choose another "
              "base.\n";
      std::istringstream in(run_.console);
      for (std::string l; std::getline(in, l);)
        if (l.find("cma:") != std::string::npos || l.find("CMA") != std::string::npos)
          out_ << "    console: " << l << "\n";
      return kNotCheckable;
    }
    out_ << ", area " << (a->fields.count("name") ? a->fields.at("name") : "?") << " base_pfn=" << kbase
         << " count=" << raw(plan_.pages) << " order_per_bit=0\n";
    return -1;
  }

  // The node mapping: node_setup found the node where the plan put it, the machine's frames
  // all free (nothing of the kernel's in them), and fenced off the rest of the node.
  int check_node() {
    if (!plan_.node) return -1;
    const ResultLine* r = result(plan_.setup_line);
    if (!r) {
      out_ << "kreplay: " << name_ << ": no result for node_setup (run.sh status " << run_.status << ")\n"
           << indent_lines(run_.err, "    ");
      return has_crash_lines(run_.err) ? kDisagree : kInconclusive;
    }
    out_ << "   node " << kNodeId << ": " << r->status << " " << r->rest << "\n";
    if (r->status != "ok" || r->number("start_pfn") != plan_.zone_start) {
      out_ << "kreplay: " << name_ << ": the guest's node " << kNodeId << " is not as the plan expects (zone start "
           << plan_.zone_start << ", the machine at frame " << plan_.offset << " on, " << t_.machine.pages
           << " frames): " << r->rest << "\n";
      return kInconclusive;
    }
    if (r->number("busy") != 0u) {
      out_ << "kreplay: " << name_ << ": the kernel uses frames of the trace's machine in node " << kNodeId
           << " before the trace starts (guest frames " << (r->fields.count("runs") ? r->fields.at("runs") : "?")
           << "): the node is not quiet\n";
      return kInconclusive;
    }
    return -1;
  }

  const ResultLine* result(uint32_t script_line) const {
    auto it = res_.by_line.find(script_line);
    return it == res_.by_line.end() ? nullptr : &it->second;
  }

  // The kernel's side of a command that has no result line: crash, or not reached.
  std::string missing(std::vector<std::string>& diffs, std::vector<std::string>& inconcl) {
    if (!stopped_) {
      stopped_ = true;
      if (res_.ended)
        diffs.push_back("the driver printed no result for this command (kreplay/driver mismatch)");
      else if (has_crash_lines(run_.err))
        diffs.push_back("the kernel crashed at this command (run.sh status " + std::to_string(run_.status) +
                        "); see the console lines below");
      else
        inconcl.push_back("the guest stopped before this command (timeout or qemu failure, run.sh status " +
                          std::to_string(run_.status) + ")");
      return "no result (the guest stopped)";
    }
    if (!diffs.empty() || !inconcl.empty()) return "no result";
    inconcl.push_back("not reached");
    return "not reached";
  }

  // A trace frame with its offset inside the area: "16400 (+16)" (without an area: "16400").
  std::string fr(uint64_t pfn) const {
    if (!plan_.has_area) return std::to_string(pfn);
    const int64_t d = static_cast<int64_t>(pfn) - static_cast<int64_t>(raw(plan_.base));
    return std::to_string(pfn) + " (" + (d >= 0 ? "+" : "") + std::to_string(d) + ")";
  }
  // A guest frame as a trace frame (the mapping's offset; 0 outside the node mapping).
  uint64_t trace_pfn(uint64_t guest_pfn) const { return guest_pfn - plan_.offset; }
  std::string off(uint64_t pfn) const { return "pfn=" + fr(pfn); }

  void step(const Step& st, const Prediction& p) {
    std::vector<std::string> diffs, inconcl;
    ediffs_.clear();
    std::string ktext, mtext, head;
    const Statement* stmt = st.statement != SIZE_MAX ? &t_.statements[st.statement] : nullptr;
    if (diverged_) {
      // The kernel chose another legal block earlier (K2): the predictions follow impl's.
      ++steps_;
      ++inconclusive_;
      if (!opt_.quiet)
        out_ << std::string(st.line < 10 ? 3 : st.line < 100 ? 2 : st.line < 1000 ? 1 : 0, ' ') << st.line << "  "
             << (stmt ? print_statement(t_, *stmt) : "#kernel: " + plan_.directives[st.directive].text)
             << "\n       not compared (the kernel's lists chose another legal block before)\n";
      return;
    }
    if (stopped_ && !st.command_line) {
      // An expect or a pin with no command of its own, after the guest stopped.
      ++steps_;
      ++inconclusive_;
      if (!opt_.quiet)
        out_ << std::string(st.line < 10     ? 3
                            : st.line < 100  ? 2
                            : st.line < 1000 ? 1
                                             : 0,
                            ' ')
             << st.line << "  " << print_statement(t_, *stmt) << "\n       not reached\n";
      return;
    }
    const ResultLine* r = st.command_line ? result(st.command_line) : nullptr;
    if (st.command_line && !r) ktext = missing(diffs, inconcl);
    const bool have = r != nullptr;
    // A result `err`: the driver refused the command (a handle the kernel never bound).
    auto kerr = [&]() { return "err " + r->rest; };
    // An allocation's result other than ok: `fail` (the model must fail too, and the trace's
    // `=> ...` is checked; `forget`: the handle's kernel frame goes), else refused (`err`).
    auto kernel_fail_or_refused = [&](std::optional<HandleId> forget) {
      if (r->status == "fail") {
        ktext = "fail";
        if (forget) kpfn_.erase(raw(*forget));
        if (p.ok) diffs.push_back("result: kernel fail, model ok");
        check_expectation(stmt, false, 0, p, diffs);
      } else {
        ktext = kerr();
        diffs.push_back("the driver refused the command: " + r->rest);
      }
    };

    switch (st.kind) {
      case StepKind::start:
        head = "(start)";
        ktext = mtext = "-";
        break;
      case StepKind::cma_alloc:
      case StepKind::contig: {
        const HandleId id = st.kind == StepKind::cma_alloc ? std::get<CmaAlloc>(std::get<Op>(stmt->body)).id
                                                           : std::get<AllocContig>(std::get<Op>(stmt->body)).id;
        mtext = p.ok ? "ok " + off(raw(p.pfn)) : std::string("fail (") + name(p.reason) + ")";
        if (have) {
          if (r->status == "ok" && r->number("pfn")) {
            const uint64_t kp = trace_pfn(*r->number("pfn"));
            ktext = "ok " + off(kp);
            kpfn_[raw(id)] = kp;
            if (!p.ok)
              diffs.push_back("result: kernel ok, model fail");
            else if (kp != raw(p.pfn))
              diffs.push_back("frame: kernel " + off(kp) + ", model " + off(raw(p.pfn)));
            check_expectation(stmt, true, kp, p, diffs);
          } else {
            kernel_fail_or_refused(id);
          }
        }
        break;
      }
      case StepKind::buddy: {
        const auto& o = std::get<Alloc>(std::get<Op>(stmt->body));
        mtext = p.ok ? "ok " + off(raw(p.pfn)) + " (" + name(o.kind) + ")" : std::string("fail (") + name(p.reason) + ")";
        if (have) {
          if (r->status == "ok" && r->number("pfn") && *r->number("pfn") >= plan_.offset) {
            const uint64_t kp = trace_pfn(*r->number("pfn"));
            ktext = "ok " + off(kp);
            kpfn_[raw(o.id)] = kp;
            if (!p.ok) {
              diffs.push_back("result: kernel ok, model fail");
            } else if (kp != raw(p.pfn)) {
              // The kernel's lists chose another block: legal (K2) or not?
              if (kp >= t_.machine.pages)
                diffs.push_back("frame: kernel " + off(kp) + " is outside the machine, model " + off(raw(p.pfn)));
              else if (auto why = k2_illegal(t_, st.statement, Pfn{kp}))
                diffs.push_back("frame: kernel " + off(kp) + ", model " + off(raw(p.pfn)) +
                                "; the model rejects the kernel's block (" + *why + "; impl there is the kernel)");
              else {
                inconcl.push_back("the kernel's free lists chose " + off(kp) + ", impl's " + off(raw(p.pfn)) +
                                  ": both legal (K2), but the model follows impl's choice, so the later steps "
                                  "are not compared");
                diverged_ = true;
              }
            }
            check_expectation(stmt, true, kp, p, diffs);
          } else if (r->status == "ok") {
            ktext = "ok " + r->rest;
            diffs.push_back("frame: the kernel's block lies outside the node mapping: " + r->rest);
          } else {
            kernel_fail_or_refused(std::nullopt);
          }
        }
        break;
      }
      case StepKind::cma_release:
      case StepKind::cma_release_pfn:
      case StepKind::drop:
      case StepKind::block_free:
      case StepKind::buddy_free:
      case StepKind::free_contig: {
        const bool is_drop = st.kind == StepKind::drop || st.kind == StepKind::block_free;
        const char* mverb = st.kind == StepKind::drop                                          ? "unpin "
                            : st.kind == StepKind::block_free || st.kind == StepKind::buddy_free ? "free "
                                                                                                 : "";
        mtext = std::string(mverb) + (p.ok ? "ok" : std::string("fail (") + name(p.reason) + ")");
        if (have) {
          ktext = std::string(is_drop ? "drop " : "") + r->status + (r->rest.empty() ? "" : " " + r->rest);
          if (r->status == "err") {
            diffs.push_back("the driver refused the command: " + r->rest);
          } else {
            const bool kok = r->status == "ok";
            if (kok != p.ok)
              diffs.push_back(std::string("result: kernel ") + (kok ? "ok" : "fail") + ", model " +
                              (p.ok ? "ok" : "fail"));
            check_expectation(stmt, kok, 0, p, diffs, false);
            if (kok) forget_released(st, *stmt);
          }
        }
        break;
      }
      case StepKind::hold:
      case StepKind::block: {
        const auto& o = std::get<Alloc>(std::get<Op>(stmt->body));
        const uint64_t at = raw(*o.at);
        mtext = p.ok ? "ok " + off(raw(p.pfn)) +
                           (st.kind == StepKind::hold ? " (a movable page, pinned next)"
                                                      : " (" + std::string(name(o.kind)) + ")")
                     : std::string("fail (") + name(p.reason) + ")";
        if (have) {
          ktext = "hold " + r->status + (r->rest.empty() ? "" : " " + r->rest);
          // ns= is informational
          if (auto ns = ktext.find(" ns="); ns != std::string::npos) ktext.erase(ns, ktext.find(' ', ns + 1) - ns);
          if (r->status == "err") {
            diffs.push_back("the driver refused the command: " + r->rest);
          } else {
            const bool kok = r->status == "ok";
            if (kok) kpfn_[raw(o.id)] = at;
            if (kok != p.ok)
              diffs.push_back(std::string("result: kernel hold ") + (kok ? "ok" : "fail") + ", model alloc " +
                              (p.ok ? "ok" : "fail"));
            else if (kok && raw(p.pfn) != at)
              diffs.push_back("frame: the model's page is at " + off(raw(p.pfn)));
            check_expectation(stmt, kok, at, p, diffs);
          }
        }
        break;
      }
      case StepKind::pin_of_hold:
        ktext = "(held since line " + std::to_string(st.hold_line) + ")";
        mtext = p.ok ? "ok" : std::string("fail (") + name(p.reason) + ")";
        if (!p.ok) diffs.push_back("the model's pin failed; the kernel's frame is held");
        check_expectation(stmt, true, 0, p, diffs, false);
        break;
      case StepKind::expect:
        expect_step(*stmt, p, ktext, mtext, diffs);
        break;
      case StepKind::directive:
        directive_step(plan_.directives[st.directive], r, p, ktext, mtext, diffs, inconcl);
        break;
    }

    // Relabels that reproduce the model's claim (set-up): each must have worked.
    for (uint32_t l : st.relabel_lines) {
      const ResultLine* rl = result(l);
      if (!rl)
        missing(diffs, inconcl);
      else if (rl->status != "ok")
        inconcl.push_back("set-up: the relabel of a claimed pageblock (script line " + std::to_string(l) +
                          ") failed: " + rl->status + " " + rl->rest);
    }
    if (!st.relabel_lines.empty() && !opt_.quiet)
      ktext += " (+" + std::to_string(st.relabel_lines.size()) + " pageblocks relabelled as the model's claim)";

    // The node mapping: the pageblock labels and the frames in use after the command.
    std::string knode, mnode;
    if (st.labels_line && !diverged_) node_state(st, p, knode, mnode, diffs, inconcl);

    // The area's state after the command: used, maxchunk, the bitmap's set bits.
    std::string kstate, mstate;
    if (st.stats_line) {
      mstate = stats_text(p.stats.used, p.stats.maxchunk, p.set_bits);
      const ResultLine* s = result(st.stats_line);
      if (!s) {
        std::string m = missing(diffs, inconcl);
        if (ktext.empty()) ktext = m;
        kstate = "-";
      } else if (s->status != "ok") {
        kstate = s->status + " " + s->rest;
        diffs.push_back("stats: " + s->rest);
      } else {
        KStats k;
        auto set = s->fields.count("set") ? parse_runs(s->fields.at("set")) : std::nullopt;
        k.used = s->number("used").value_or(UINT64_MAX);
        k.maxchunk = s->number("maxchunk").value_or(UINT64_MAX);
        k.free = s->number("free").value_or(0);
        k.free_cma = s->number("free_cma").value_or(0);
        if (set) k.set = *set;
        kstats_ = k;
        have_kstats_ = true;
        kstate = stats_text(k.used, k.maxchunk, k.set);
        if (!set) diffs.push_back("stats: unreadable set= list");
        if (s->number("base_pfn") != raw(plan_.base) || s->number("count") != raw(plan_.pages))
          diffs.push_back("stats: the area is not where the plan put it: " + s->rest);
        if (k.used != p.stats.used)
          diffs.push_back("used: kernel " + std::to_string(k.used) + ", model " + std::to_string(p.stats.used));
        if (k.maxchunk != p.stats.maxchunk)
          diffs.push_back("maxchunk: kernel " + std::to_string(k.maxchunk) + ", model " +
                          std::to_string(p.stats.maxchunk));
        if (set && k.set != p.set_bits)
          diffs.push_back("bitmap: kernel set=" + format_runs(k.set) + ", model set=" + format_runs(p.set_bits));
      }
    }

    ++steps_;
    if (!diffs.empty()) ++disagreements_;
    if (!ediffs_.empty()) ++expectation_diffs_;
    if (!inconcl.empty() && diffs.empty() && ediffs_.empty()) ++inconclusive_;
    if (opt_.quiet && diffs.empty() && ediffs_.empty() && inconcl.empty()) return;
    if (st.kind == StepKind::start)
      head = "start";
    else if (stmt)
      head = print_statement(t_, *stmt);
    else
      head = "#kernel: " + plan_.directives[st.directive].text;
    out_ << std::string(st.line < 10     ? 3
                        : st.line < 100  ? 2
                        : st.line < 1000 ? 1
                                         : 0,
                        ' ')
         << st.line << "  " << head << "\n";
    const size_t w = std::max<size_t>({ktext.size(), mtext.size(), 24});
    auto pad = [&](std::string s) {
      s.resize(w, ' ');
      return s;
    };
    if (!kstate.empty() || !ktext.empty()) {
      out_ << "       kernel  " << (kstate.empty() ? ktext : pad(ktext) + "  " + kstate) << "\n";
      out_ << "       model   " << (mstate.empty() ? mtext : pad(mtext) + "  " + mstate) << "\n";
    }
    if (!knode.empty()) {
      out_ << "       kernel  " << knode << "\n";
      out_ << "       model   " << mnode << "\n";
    }
    for (const auto& d : diffs) out_ << "       DISAGREE " << d << "\n";
    for (const auto& d : ediffs_) out_ << "       DISAGREE (trace) " << d << "\n";
    for (const auto& d : inconcl) out_ << "       INCONCLUSIVE " << d << "\n";
  }

  // Labels (one letter per pageblock of the machine) and free frames: the kernel's `labels`
  // and `busy` over the machine's frames in the node against impl/'s labels and the
  // model's free count. A movable block whose hold was dropped at unpin stays allocated in
  // the model; its frames are free in the kernel, so they are counted back.
  void node_state(const Step& st, const Prediction& p, std::string& ktext, std::string& mtext,
                  std::vector<std::string>& diffs, std::vector<std::string>& inconcl) {
    const uint64_t mfree = p.free;
    mtext = "labels=" + p.labels + " free=" + std::to_string(mfree);
    const ResultLine* l = result(st.labels_line);
    const ResultLine* b = result(st.busy_line);
    if (!l || !b) {
      ktext = missing(diffs, inconcl);
      return;
    }
    if (l->status != "ok" || b->status != "ok" || !b->number("busy")) {
      ktext = "labels " + l->status + " " + l->rest + "; busy " + b->status + " " + b->rest;
      diffs.push_back("the driver could not read the node: " + ktext);
      return;
    }
    const std::string klabels = l->fields.count("labels") ? l->fields.at("labels") : "?";
    const uint64_t busy = *b->number("busy");
    const uint64_t kfree = t_.machine.pages - busy - dropped_pages_;
    have_kfree_ = true;
    kfree_ = kfree;
    ktext = "labels=" + klabels + " free=" + std::to_string(kfree);
    if (klabels != p.labels) diffs.push_back("labels: kernel " + klabels + ", model " + p.labels);
    if (kfree != mfree)
      diffs.push_back("free: kernel " + std::to_string(kfree) + ", model " + std::to_string(mfree) +
                      " (frames in use in the kernel: " + (b->fields.count("runs") ? b->fields.at("runs") : "?") + ")");
  }

  // `=> ok [pfn=P]` / `=> fail` written in the trace, against the kernel (and the model:
  // a model that differs from it means the trace fails `cmacheck replay` as well).
  void check_expectation(const Statement* stmt, bool kok, uint64_t kpfn, const Prediction& p,
                         std::vector<std::string>& diffs, bool kpfn_valid = true) {
    if (!stmt || !stmt->expectation) return;
    const Expectation& e = *stmt->expectation;
    std::string want = e.ok ? "ok" : "fail";
    if (e.pfn) want += " pfn=" + std::to_string(raw(*e.pfn));
    const bool model_differs = e.ok != p.ok || (e.ok && e.pfn && *e.pfn != p.pfn);
    const std::string also = model_differs ? " (the model differs from it too: the trace fails `cmacheck replay`)" : "";
    (void)diffs;
    if (kok != e.ok)
      ediffs_.push_back("expectation: the trace says => " + want + ", the kernel " + (kok ? "succeeded" : "failed") +
                        also);
    else if (kok && e.pfn && kpfn_valid && kpfn != raw(*e.pfn))
      ediffs_.push_back("expectation: the trace says => " + want + ", the kernel gave " + off(kpfn) + also);
  }

  void forget_released(const Step& st, const Statement& stmt) {
    const Op& op = std::get<Op>(stmt.body);
    if (const auto* o = std::get_if<CmaRelease>(&op)) kpfn_.erase(raw(o->id));
    if (const auto* o = std::get_if<FreeContig>(&op)) kpfn_.erase(raw(o->id));
    if (const auto* o = std::get_if<Free>(&op)) kpfn_.erase(raw(o->id));
    if (const auto* o = std::get_if<Unpin>(&op)) {
      kpfn_.erase(raw(o->id));
      // the model's page stays allocated (a movable page, no longer pinned)
      for (const Step& h : plan_.steps)
        if (h.kind == StepKind::hold && h.line == st.hold_line)
          dropped_pages_ += raw(std::get<Alloc>(std::get<Op>(t_.statements[h.statement].body)).order.pages());
    }
    if (const auto* o = std::get_if<CmaReleaseRaw>(&op))
      for (auto it = kpfn_.begin(); it != kpfn_.end(); ++it)
        if (it->second == raw(o->pfn)) {
          kpfn_.erase(it);
          break;
        }
    (void)st;
  }

  void expect_step(const Statement& stmt, const Prediction& p, std::string& ktext, std::string& mtext,
                   std::vector<std::string>& diffs) {
    const auto& items = std::get<Expect>(stmt.body).items;
    for (size_t i = 0; i < items.size(); ++i) {
      const ExpectItem& it = items[i];
      const uint64_t mv = i < p.expect_values.size() ? p.expect_values[i] : 0;
      std::string key;
      std::optional<uint64_t> kv;
      bool frame = false;
      switch (it.key) {
        case ExpectKey::area_used:
          key = t_.areas[it.subject].name + ".used";
          if (have_kstats_) kv = kstats_.used;
          break;
        case ExpectKey::area_maxchunk:
          key = t_.areas[it.subject].name + ".maxchunk";
          if (have_kstats_) kv = kstats_.maxchunk;
          break;
        case ExpectKey::free:
          key = "free";
          if (have_kfree_) kv = kfree_;
          break;
        case ExpectKey::handle_pfn: {
          key = t_.handles[it.subject] + ".pfn";
          frame = true;
          auto k = kpfn_.find(it.subject);
          if (k != kpfn_.end()) kv = k->second;
          break;
        }
        default:
          key = "?";
          break;
      }
      const std::string kstr = kv ? (frame ? fr(*kv) : std::to_string(*kv)) : "-";
      const std::string mstr = frame ? fr(mv) : std::to_string(mv);
      ktext += (ktext.empty() ? "" : " ") + key + "=" + kstr;
      mtext += (mtext.empty() ? "" : " ") + key + "=" + mstr;
      // Frames are trace frames on both sides (the kernel's through the mapping's offset).
      if (!kv)
        diffs.push_back(key + ": the kernel has no value (" + (frame ? "no live allocation" : "no stats") + ")");
      else if (*kv != mv)
        diffs.push_back(key + ": kernel " + kstr + ", model " + mstr);
      if (!kv || *kv != it.value)
        ediffs_.push_back(
            key + ": the trace expects " + (frame ? fr(it.value) : std::to_string(it.value)) + ", the kernel has " +
            kstr + (mv != it.value ? " (the model differs from it too: the trace fails `cmacheck replay`)" : ""));
    }
  }

  // Directives: no model counterpart for the pages themselves (the kernel places them);
  // what the rules say about them is checked.
  void directive_step(const Directive& d, const ResultLine* r, const Prediction& p, std::string& ktext,
                      std::string& mtext, std::vector<std::string>& diffs, std::vector<std::string>& inconcl) {
    using V = Directive::Verb;
    const uint64_t base = raw(plan_.base), end = base + raw(plan_.pages);
    const uint64_t clear_frames = raw(plan_.pages) - p.stats.used;  // frames not under set bits
    if (r) {
      std::string rest = r->rest;
      if (auto a = rest.find(" before="); a != std::string::npos) rest.erase(a);  // pfn lists: summarised below
      ktext = r->status + (rest.empty() ? "" : " " + rest);
    }
    switch (d.verb) {
      case V::pressure:
        mtext = "(no counterpart: movable pages the kernel places; at most " + std::to_string(clear_frames) +
                " can be in the area)";
        break;
      case V::pressure_check:
        mtext = "M5: bad=0 absent=0; in_cma <= " + std::to_string(clear_frames);
        break;
      case V::pin:
        mtext = "P2: after_in_cma=0, every pinned page outside " + std::to_string(base) + "-" + std::to_string(end - 1);
        break;
      case V::pin_check:
        mtext = "I6: in_cma=0";
        break;
      default:
        mtext = "(no counterpart)";
        break;
    }
    if (!r) return;
    if (r->status != "ok") {
      if (r->status == "err")
        diffs.push_back("the driver refused the command: " + r->rest);
      else
        inconcl.push_back("the kernel could not set this up: " + r->rest);
      return;
    }
    auto num = [&](const char* k) { return r->number(k); };
    auto field = [&](const char* k) { return r->fields.count(k) ? r->fields.at(k) : std::string("?"); };
    auto outside = [&](const std::string& key, uint64_t& inside) {
      inside = 0;
      auto it = r->fields.find(key);
      if (it == r->fields.end()) return false;
      auto v = parse_runs(it->second);
      if (!v) return false;
      for (uint64_t f : *v)
        if (f >= base && f < end) ++inside;
      return true;
    };
    switch (d.verb) {
      case V::pressure:
        if (d.min_in_cma && num("in_cma").value_or(0) < d.min_in_cma)
          inconcl.push_back(
              "only " + std::to_string(num("in_cma").value_or(0)) + " pressure pages landed in the area, " +
              "fewer than min_in_cma=" + std::to_string(d.min_in_cma) + ": the trace does not test what it says");
        if (num("in_cma").value_or(0) > clear_frames)
          diffs.push_back("more pressure pages in the area than frames free of cma allocations");
        break;
      case V::pressure_check:
        if (d.min_moved && num("moved").value_or(0) < d.min_moved)
          inconcl.push_back("only " + field("moved") + " pressure pages moved, fewer than min_moved=" +
                            std::to_string(d.min_moved) + ": the trace does not test what it says");
        if (num("bad") != 0u) diffs.push_back("M5: bad=" + field("bad") + ": pressure pages changed content");
        if (num("absent") != 0u) diffs.push_back("absent=" + field("absent") + ": pressure pages are gone");
        if (num("in_cma").value_or(0) > clear_frames)
          diffs.push_back("pressure pages in frames the model says cma_alloc took: in_cma=" + field("in_cma") + " > " +
                          std::to_string(clear_frames));
        break;
      case V::pin: {
        uint64_t inside = 0;
        if (num("before_in_cma") != d.pages)
          inconcl.push_back("only " + std::to_string(num("before_in_cma").value_or(0)) +
                            " of the pages were in the area before pinning");
        if (num("after_in_cma") != 0u || !outside("after", inside) || inside)
          diffs.push_back("P2/I6: a long-term pin left " +
                          std::to_string(std::max(inside, num("after_in_cma").value_or(0))) + " pages in the area");
        if (r->fields.count("after")) ktext += " after=" + r->fields.at("after");
        break;
      }
      case V::pin_check: {
        uint64_t inside = 0;
        if (num("in_cma") != 0u || !outside("pfns", inside) || inside)
          diffs.push_back("I6: long-term pinned pages in the area: " + r->rest);
        break;
      }
      default:
        break;
    }
  }

  int finish() {
    bool crash = false, oom = false;
    if (run_.status == 2 || run_.status == 3) {
      crash = has_crash_lines(run_.err);
      oom = run_.err.find("Out of memory") != std::string::npos;
      if (crash || oom || run_.status == 2)
        out_ << "   run.sh (status " << run_.status << "):\n" << indent_lines(run_.err, "    ");
      if (crash && !stopped_) ++disagreements_;  // a BUG/WARNING where the model predicts a clean run
      if (!crash && oom) ++inconclusive_;        // an agent OOM-killed: pressure too deep for the guest
    } else if (run_.status != 0) {
      out_ << "   run.sh (status " << run_.status << "):\n" << indent_lines(run_.err, "    ");
      ++inconclusive_;
    }
    std::string took;
    if (auto p = run_.err.find("run took "); p != std::string::npos)
      took = ", kernel run " + run_.err.substr(p + 9, run_.err.find(" s", p + 9) - p - 9) + " s";
    out_ << "kreplay " << name_ << ": ";
    int status = kAgree;
    if (disagreements_ || expectation_diffs_) {
      if (disagreements_)
        out_ << "the kernel DISAGREES with the model at " << disagreements_ << " of " << steps_ << " steps";
      if (disagreements_ && expectation_diffs_) out_ << "; ";
      if (expectation_diffs_)
        out_ << "the kernel DISAGREES with the trace's own expectations at " << expectation_diffs_ << " steps";
      out_ << took;
      if (crash) out_ << " (the kernel logged a BUG/WARNING)";
      status = kDisagree;
    } else if (inconclusive_) {
      out_ << "INCONCLUSIVE: " << inconclusive_ << " steps could not be checked on the kernel";
      status = kInconclusive;
    } else {
      out_ << "agree (" << steps_ - 1 << " steps: every result"
           << (plan_.has_area ? ", used, maxchunk and bitmap" : "") << (plan_.node ? ", label and free count" : "")
           << " as the model predicts" << took << ")";
    }
    out_ << "\n";
    return status;
  }

  const Plan& plan_;
  const Trace& t_;
  const Predictions& pred_;
  const KernelRun& run_;
  std::string name_;
  CompareOptions opt_;
  std::ostream& out_;
  KernelResults res_;
  std::map<uint32_t, uint64_t> kpfn_;  // trace frame of each live kernel allocation / hold, by HandleId
  uint64_t dropped_pages_ = 0;         // frames of holds dropped at unpin (still allocated in the model)
  uint64_t kfree_ = 0;                 // node mapping: the machine's free frames in the kernel, last read
  bool have_kfree_ = false;
  KStats kstats_;
  bool have_kstats_ = false;
  bool stopped_ = false;
  bool diverged_ = false;  // the kernel's free lists chose another legal block (K2): nothing later is predicted
  std::vector<std::string> ediffs_;  // this step's differences from the trace's own expectations
  size_t steps_ = 0, disagreements_ = 0, expectation_diffs_ = 0, inconclusive_ = 0;
};

}  // namespace

int compare(const Plan& plan, const Predictions& predictions, const KernelRun& run, const std::string& name,
            const CompareOptions& options, std::ostream& out) {
  return Comparer(plan, predictions, run, name, options, out).run();
}

}  // namespace cmacheck::kreplay
