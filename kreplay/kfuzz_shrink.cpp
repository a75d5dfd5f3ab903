// Shrinking a disagreement with the kernel as the oracle. Each round builds every candidate
// one step smaller than the current trace -- a handle's whole life removed, a chunk of
// statements removed (halves down to single statements), a number simplified -- keeps those
// that are still well-formed kernel-checkable traces with a model prediction, runs them in
// one boot (in that order, largest removals first), and goes on from the first that still
// disagrees the same way (the same signature). It stops when no candidate does.
#include <algorithm>
#include <chrono>
#include <set>

#include "kreplay/kfuzz.h"
#include "trace/parse.h"
#include "trace/print.h"

namespace cmacheck::kfuzz {

namespace {

std::optional<HandleId> named_handle(const Statement& st) {
  if (const Op* op = std::get_if<Op>(&st.body))
    return std::visit(
        [](const auto& o) -> std::optional<HandleId> {
          if constexpr (requires { o.id; })
            return o.id;
          else
            return std::nullopt;
        },
        *op);
  return std::nullopt;
}

// Renumbers handles and lines; nullopt when the candidate is not a well-formed trace.
std::optional<Trace> normalise(const Trace& t) {
  ParseResult p = parse_trace(print_trace(t));
  if (!p.ok()) return std::nullopt;
  return p.trace;
}

std::vector<Trace> candidates(const Trace& t) {
  std::vector<Trace> out;
  const size_t n = t.statements.size();
  // Expectations first: they pin values that every removal moves.
  {
    Trace c = t;
    std::erase_if(c.statements, [](const Statement& st) { return std::holds_alternative<Expect>(st.body); });
    for (auto& st : c.statements) st.expectation.reset();
    if (c.statements.size() != n) out.push_back(std::move(c));
  }
  // Chunks, largest first (a handle's life follows the chunks of its size).
  std::set<uint32_t> handles;
  for (const Statement& st : t.statements)
    if (auto h = named_handle(st)) handles.insert(raw(*h));
  bool handles_removed = false;
  for (size_t len = std::max<size_t>(n / 2, 1); len >= 1; len /= 2) {
    for (size_t start = 0; start + len <= n; start += len) {
      Trace c = t;
      c.statements.erase(c.statements.begin() + static_cast<ptrdiff_t>(start),
                         c.statements.begin() + static_cast<ptrdiff_t>(start + len));
      out.push_back(std::move(c));
    }
    // Once the chunks are small, a handle's whole life (an allocation and its pin, ...):
    // also when the trace is too short for chunks of more than one statement.
    if (len <= 4 && !handles_removed) {
      handles_removed = true;
      for (uint32_t h : handles) {
        Trace c = t;
        std::erase_if(c.statements, [&](const Statement& st) {
          auto nh = named_handle(st);
          return nh && raw(*nh) == h;
        });
        if (c.statements.size() != n) out.push_back(std::move(c));
      }
    }
    if (len == 1) break;
  }
  // Numbers: counts smaller (halved down to one less), alignments lower, holds one order smaller.
  for (size_t i = 0; i < n; ++i) {
    const Op* op = std::get_if<Op>(&t.statements[i].body);
    if (!op) continue;
    auto with = [&](const Op& changed) {
      Trace c = t;
      c.statements[i].body = changed;
      out.push_back(std::move(c));
    };
    if (const auto* a = std::get_if<CmaAlloc>(op)) {
      const uint64_t count = raw(a->count);
      // count - d for d = count/2, count/4, ..., 1, the largest first: a round takes the
      // largest step that keeps the disagreement, so a count of thousands shrinks in a few
      // rounds (one boot each), not one page a round.
      for (uint64_t d = count / 2; d >= 1; d /= 2) {
        CmaAlloc b = *a;
        b.count = PageCount{count - d};
        with(b);
      }
      if (a->align.value > 0) {
        CmaAlloc b = *a;
        b.align = Order{0};
        with(b);
        b.align = Order{static_cast<uint8_t>(a->align.value - 1)};
        if (a->align.value > 1) with(b);
      }
    } else if (const auto* r = std::get_if<CmaReleaseRaw>(op)) {
      if (raw(r->count) > 1) {
        CmaReleaseRaw b = *r;
        b.count = PageCount{1};
        with(b);
      }
    } else if (const auto* h = std::get_if<Alloc>(op); h && h->order.value > 0 && h->at) {
      Alloc b = *h;
      b.order = Order{0};
      with(b);
    }
  }
  return out;
}

}  // namespace

Trace shrink_on_kernel(const Trace& failing, const Geometry& g, const std::string& sig, const BootOptions& o,
                       ShrinkStats& stats, const std::function<void(size_t)>& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  Trace current = normalise(failing).value_or(failing);
  constexpr size_t kPerBoot = 48;
  for (;;) {
    ++stats.rounds;
    // Valid candidates, in order, without duplicates.
    std::vector<Trace> valid;
    std::set<std::string> seen;
    for (Trace& c : candidates(current)) {
      auto nc = normalise(c);
      if (!nc || nc->statements.empty()) continue;
      const std::string text = print_trace(*nc);
      if (!seen.insert(text).second) continue;
      kreplay::PlanOptions po;
      po.kernel = o.kernel;
      po.mem_mib = kGuestMiB;
      if (!kreplay::make_plan(*nc, text, po).plan) continue;
      if (!kreplay::predict(*nc, kPredictFullEvery).complete) continue;
      valid.push_back(std::move(*nc));
    }
    // A candidate that crashes the kernel or fails its clean-up ends its boot: the ones
    // after it go into the next boot.
    bool progressed = false;
    size_t next = 0;
    while (next < valid.size() && !progressed) {
      std::vector<Trace> batch(valid.begin() + static_cast<ptrdiff_t>(next),
                               valid.begin() + static_cast<ptrdiff_t>(std::min(valid.size(), next + kPerBoot)));
      BootOutcome b = run_boot(g, batch, o);
      ++stats.boots;
      size_t ran = 0;
      for (size_t i = 0; i < batch.size() && !progressed; ++i) {
        if (b.traces[i].verdict == TraceOutcome::Verdict::not_run) break;
        ++ran;
        if (b.traces[i].verdict == TraceOutcome::Verdict::disagree && b.traces[i].signature == sig) {
          current = batch[i];
          progressed = true;
        }
      }
      stats.candidates += ran;
      next += std::max<size_t>(ran, 1);
    }
    if (progress) progress(current.statements.size());
    if (!progressed) break;
  }
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return current;
}

}  // namespace cmacheck::kfuzz
