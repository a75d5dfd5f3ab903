// kreplay without qemu: the translation of traces into command scripts, the refusals, the
// result-line parser, and the comparison against canned kernel output.
#include "kreplay/kreplay.h"

#include <gtest/gtest.h>

#include <functional>
#include <sstream>

#include "trace/parse.h"

namespace cmacheck::kreplay {
namespace {

constexpr const char* kHeader =
    "machine pages=65536\n"
    "area dma base=16384 pages=4096\n";

Trace parse(const std::string& text) {
  ParseResult p = parse_trace(text);
  EXPECT_TRUE(p.ok()) << (p.error ? p.error->message : "");
  return p.trace;
}

PlanResult plan_of(const std::string& text) { return make_plan(parse(text), text); }

std::string problem_of(const std::string& text) {
  PlanResult r = plan_of(text);
  EXPECT_FALSE(r.plan.has_value()) << text;
  return r.problem ? r.problem->message : "";
}

// A kernel that answers exactly as the model predicts: the result lines the driver would
// print for the plan's script.
std::string fake_kernel(const Plan& plan, const Predictions& pred) {
  std::ostringstream o;
  o << "KR 0 boot ok kernel=6.1.192 pageblock_order=9 max_order=10 mem_pages=62514 free=59979 free_cma=4096 areas=1\n";
  if (plan.has_area)
    o << "KR 0 area ok name=reserved base_pfn=" << raw(plan.base) + plan.offset << " count=" << raw(plan.pages)
      << " order_per_bit=0\n";
  if (plan.node)
    o << "KR " << plan.setup_line << " node_setup ok nid=1 start_pfn=65536 end_pfn=131040 present=65504 free=65000 "
      << "nodes=2 zones=DMA32:65536-131040 busy=0 runs=- held=" << 65504 - plan.trace.machine.pages << " kernel=0\n";
  const Prediction* cur = &pred.start;
  uint32_t last = 0;
  for (const Step& st : plan.steps) {
    if (st.statement != SIZE_MAX) cur = &pred.after[st.statement];
    if (st.command_line) {
      o << "KR " << st.command_line << " " << st.command.substr(0, st.command.find(' ')) << " ";
      switch (st.kind) {
        case StepKind::cma_alloc:
        case StepKind::contig:
        case StepKind::buddy:
          o << (cur->ok ? "ok pfn=" + std::to_string(raw(cur->pfn) + plan.offset) + " ns=0" : "fail ns=0");
          break;
        case StepKind::hold:
          o << (cur->ok ? "ok mt=cma ns=0" : "fail err=-16 mt=cma ns=0");
          break;
        case StepKind::block:
          o << (cur->ok ? "ok mt=unmovable ns=0" : "fail err=-16 mt=unmovable ns=0");
          break;
        case StepKind::cma_release_pfn:
          o << (cur->ok ? "ok" : "fail reason=notlive");
          break;
        case StepKind::directive:
          o << (plan.directives[st.directive].verb == Directive::Verb::pin
                    ? "ok pages=16 longterm=1 before_in_cma=16 after_in_cma=0 moved=16 before=16400-16415 "
                      "after=2963-2978"
                    : "ok pages=100 in_cma=10 moved=0 bad=0 absent=0");
          break;
        default:
          o << (cur->ok ? "ok" : "fail");
          break;
      }
      o << "\n";
    }
    for (uint32_t l : st.relabel_lines) o << "KR " << l << " relabel ok\n";
    if (st.labels_line) {
      o << "KR " << st.labels_line << " labels ok labels=" << cur->labels << "\n";
      o << "KR " << st.busy_line << " busy ok busy=" << plan.trace.machine.pages - cur->free << " runs=-\n";
      last = std::max(st.busy_line, st.labels_line);
    }
    if (st.stats_line) {
      o << "KR " << st.stats_line << " stats ok area=reserved base_pfn=" << raw(plan.base)
        << " count=" << raw(plan.pages) << " order_per_bit=0 used=" << cur->stats.used
        << " maxchunk=" << cur->stats.maxchunk << " free=50000 free_cma=" << cur->free_cma
        << " bits=" << raw(plan.pages) << " set=" << format_runs(cur->set_bits) << "\n";
      last = std::max(last, st.stats_line);
    }
  }
  o << "KR " << last + 2 << " end ok\n";
  return o.str();
}

struct Checked {
  int status;
  std::string report;
};

Checked check_with(const std::string& text, const std::function<std::string(std::string)>& tamper, int run_status = 0,
                   const std::string& err = "") {
  PlanResult r = plan_of(text);
  EXPECT_TRUE(r.plan.has_value()) << (r.problem ? r.problem->message : "");
  if (!r.plan) return {-1, ""};
  Predictions pred = predict(r.plan->trace);
  EXPECT_TRUE(pred.complete) << pred.message;
  KernelRun run;
  run.out = tamper(fake_kernel(*r.plan, pred));
  run.status = run_status;
  run.err = err;
  std::ostringstream out;
  const int s = compare(*r.plan, pred, run, "t.trace", CompareOptions{}, out);
  return {s, out.str()};
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const size_t p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from << " not in\n" << s;
  if (p != std::string::npos) s.replace(p, from.size(), to);
  return s;
}

const std::string kSequence = std::string(kHeader) +
                              "cma_alloc a area=dma count=1 => ok pfn=16384\n"
                              "cma_alloc b area=dma count=16 align=4 => ok pfn=16400\n"
                              "cma_alloc c area=dma count=3\n"
                              "cma_release b\n"
                              "expect dma.used=4 dma.maxchunk=4092 c.pfn=16385\n"
                              "cma_release area=dma pfn=16384 count=2 => fail\n";

TEST(KreplayPlan, AreaBecomesCmaArgumentAtTheSamePfns) {
  PlanResult r = plan_of(kSequence);
  ASSERT_TRUE(r.plan);
  EXPECT_EQ(r.plan->cma_arg(), "16M@64M");
  EXPECT_EQ(r.plan->mem_arg(), "256M");
  EXPECT_NE(r.plan->script.find("\ncma_alloc t1 count=16 align=4\nstats\n"), std::string::npos) << r.plan->script;
  EXPECT_NE(r.plan->script.find("\ncma_release pfn=16384 count=2\n"), std::string::npos);
  // start + 6 statements; the expect has no command
  ASSERT_EQ(r.plan->steps.size(), 7u);
  EXPECT_EQ(r.plan->steps[5].kind, StepKind::expect);
  EXPECT_EQ(r.plan->steps[5].command_line, 0u);
}

TEST(KreplayPlan, SmallMachinesGetTheSmallestBootableGuest) {
  PlanResult r = plan_of("machine pages=4096\narea dma base=1024 pages=512\ncma_alloc a area=dma count=1\n");
  ASSERT_TRUE(r.plan);
  EXPECT_EQ(r.plan->mem_arg(), "64M");
  EXPECT_EQ(r.plan->cma_arg(), "2M@4M");
}

TEST(KreplayPlan, PinnedPageAtAFrameBecomesAHoldAndItsUnpinADrop) {
  PlanResult r =
      plan_of(std::string(kHeader) +
              "alloc h kind=movable order=1 at=16386\npin h\ncma_alloc a area=dma count=4 align=2\nunpin h\n");
  ASSERT_TRUE(r.plan) << r.problem->message;
  EXPECT_NE(r.plan->script.find("\nhold t0 pfn=16386 count=2\n"), std::string::npos) << r.plan->script;
  EXPECT_NE(r.plan->script.find("\ndrop t0\n"), std::string::npos);
  EXPECT_EQ(r.plan->steps[2].kind, StepKind::pin_of_hold);
}

TEST(KreplayPlan, StatementsWithNoKernelCounterpartAreRefusedByName) {
  const std::string h = kHeader;
  EXPECT_NE(problem_of(h + "alloc m kind=movable\n").find("movable block without at="), std::string::npos);
  const std::string small = "machine pages=4096\narea dma base=2048 pages=1024\n";
  EXPECT_NE(problem_of(small + "alloc u kind=unmovable at=2048\n").find("inside the CMA area"), std::string::npos);
  EXPECT_NE(problem_of(h + "alloc u kind=unmovable at=0\n").find("no frame of node"), std::string::npos);
  EXPECT_NE(problem_of(h + "alloc m kind=movable at=100\n").find("pin m"), std::string::npos);
  EXPECT_NE(problem_of(h + "alloc m kind=movable at=100\npin m\nmigrate m\n").find("migrate"), std::string::npos);
  EXPECT_NE(problem_of(h + "alloc m kind=movable at=100\npin m\nunpin m\nfree m\n").find("free of a block"),
            std::string::npos);
  EXPECT_NE(problem_of(h + "alloc m kind=movable at=100\npin m\npin m\n").find("pins nest"), std::string::npos);
  EXPECT_NE(problem_of(h + "alloc m kind=movable at=100\npin m longterm\n").find("pin m"), std::string::npos);
  EXPECT_NE(problem_of("machine pages=1024\nalloc_contig x count=4\n#kernel: pressure pages=10\n").find("node mapping"),
            std::string::npos);
  EXPECT_NE(problem_of(h + "expect free=1\n").find("free and free_cma"), std::string::npos);
  EXPECT_NE(
      problem_of("machine pages=65536\narea dma base=16896 pages=4096\nalloc m kind=movable order=10 at=16384\npin m\n")
          .find("edge"),
      std::string::npos);
  EXPECT_NE(problem_of("machine pages=65536\narea a base=16384 pages=512\narea b base=20480 pages=512\n")
                .find("more than one area"),
            std::string::npos);
  EXPECT_NE(problem_of("machine pages=65536\narea a base=16384 pages=512 order_per_bit=1\n").find("order_per_bit"),
            std::string::npos);
  EXPECT_NE(problem_of("machine pages=256 pageblock_order=4 max_order=6\narea a base=64 pages=64\n")
                .find("pageblock_order=9"),
            std::string::npos);
  EXPECT_NE(problem_of("machine pages=65536\narea a base=0 pages=512\n").find("pfn 0"), std::string::npos);
  // the line is named
  PlanResult r = plan_of(h + "cma_alloc a area=dma count=1\nalloc m kind=movable\n");
  ASSERT_TRUE(r.problem);
  EXPECT_EQ(r.problem->line, 4u);
}

TEST(KreplayDirectives, AreCommentsToTheTraceParserAndCommandsToTheKernel) {
  const std::string text = std::string(kHeader) +
                           "#kernel: pressure p free=24M min_in_cma=256\n"
                           "cma_alloc all area=dma count=16M => ok pfn=16384\n"
                           "#kernel: pressure_check p\n"
                           "#kernel: pressure_stop p\n"
                           "#kernel: pin pages=16 longterm in_cma\n"
                           "#kernel: pin_check\n"
                           "#kernel: unpin\n";
  PlanResult r = plan_of(text);
  ASSERT_TRUE(r.plan) << r.problem->message;
  ASSERT_EQ(r.plan->directives.size(), 6u);
  EXPECT_EQ(r.plan->directives[0].free_pages, 6144u);
  EXPECT_EQ(r.plan->directives[0].min_in_cma, 256u);
  EXPECT_EQ(r.plan->directives[3].id, "pin");
  EXPECT_NE(r.plan->script.find("\npressure k_p free=6144\n"), std::string::npos) << r.plan->script;
  EXPECT_NE(r.plan->script.find("\npin k_pin pages=16 longterm in_cma\n"), std::string::npos);
  // statements and directives keep their source order
  EXPECT_EQ(r.plan->steps[1].kind, StepKind::directive);
  EXPECT_EQ(r.plan->steps[2].kind, StepKind::cma_alloc);
}

TEST(KreplayDirectives, MistakesAreErrorsWithTheLine) {
  const std::string h = kHeader;
  PlanResult r = plan_of(h + "#kernel: pin x pages=4 in_cma\n");
  ASSERT_TRUE(r.problem);
  EXPECT_EQ(r.problem->line, 3u);
  EXPECT_NE(r.problem->message.find("short-term pin"), std::string::npos);
  EXPECT_NE(problem_of(h + "#kernel: pressure_check p\n").find("no pressure agent"), std::string::npos);
  EXPECT_NE(problem_of(h + "#kernel: frobnicate\n").find("unknown directive"), std::string::npos);
  EXPECT_NE(problem_of(h + "#kernel: pressure p pages=1 free=8M\n").find("exactly one"), std::string::npos);
  // an ordinary comment that mentions the kernel is not a directive
  EXPECT_TRUE(plan_of(h + "# kernel: pressure\n").plan);
}

TEST(KreplayResults, ParsesResultLinesAndRuns) {
  KernelResults r = parse_results(
      "KR 0 boot ok kernel=6.1.192 pageblock_order=9 max_order=10 areas=1\r\n"
      "KR 0 area ok name=reserved base_pfn=16384 count=4096 order_per_bit=0\n"
      "noise\n"
      "KR 3 cma_alloc ok pfn=16400 ns=0 future=1\n"
      "KR 4 cma_release err handle b is not live\n"
      "KR 5 end ok\n");
  ASSERT_TRUE(r.boot);
  EXPECT_EQ(r.boot->number("pageblock_order"), 9u);
  ASSERT_EQ(r.areas.size(), 1u);
  EXPECT_TRUE(r.ended);
  EXPECT_EQ(r.by_line.at(3).number("pfn"), 16400u);
  EXPECT_EQ(r.by_line.at(4).status, "err");
  EXPECT_EQ(r.by_line.at(4).rest, "handle b is not live");
  EXPECT_EQ(parse_runs("0-3,7,9-10"), (std::vector<uint64_t>{0, 1, 2, 3, 7, 9, 10}));
  EXPECT_EQ(parse_runs("2978,2977"), (std::vector<uint64_t>{2978, 2977}));
  EXPECT_EQ(parse_runs("-"), std::vector<uint64_t>{});
  EXPECT_FALSE(parse_runs("3-1"));
  EXPECT_FALSE(parse_runs("x"));
  EXPECT_EQ(format_runs({0, 1, 2, 3, 7, 9, 10}), "0-3,7,9-10");
}

TEST(KreplayCompare, AKernelThatAnswersAsTheModelAgrees) {
  Checked c = check_with(kSequence, [](std::string s) { return s; });
  EXPECT_EQ(c.status, kAgree) << c.report;
  EXPECT_NE(c.report.find("agree"), std::string::npos);
}

TEST(KreplayCompare, ADifferentFrameIsADisagreement) {
  Checked c = check_with(kSequence, [](std::string s) { return replace(s, "ok pfn=16385", "ok pfn=16386"); });
  EXPECT_EQ(c.status, kDisagree) << c.report;
  EXPECT_NE(c.report.find("DISAGREE frame: kernel pfn=16386 (+2), model pfn=16385 (+1)"), std::string::npos)
      << c.report;
  // the expect of c.pfn names the kernel's frame too
  EXPECT_NE(c.report.find("c.pfn: kernel 16386 (+2), model 16385 (+1)"), std::string::npos) << c.report;
}

TEST(KreplayCompare, ADifferentBitmapIsADisagreement) {
  Checked c = check_with(kSequence, [](std::string s) { return replace(s, "set=0-3\n", "set=0-2,5\n"); });
  EXPECT_EQ(c.status, kDisagree) << c.report;
  EXPECT_NE(c.report.find("bitmap: kernel set=0-2,5, model set=0-3"), std::string::npos) << c.report;
}

TEST(KreplayCompare, AWrongExpectationInTheTraceIsADisagreement) {
  std::string text = replace(kSequence, "count=1 => ok pfn=16384", "count=1 => ok pfn=16385");
  PlanResult r = plan_of(text);
  ASSERT_TRUE(r.plan);
  Predictions pred = predict(r.plan->trace);
  KernelRun run;
  run.out = fake_kernel(*r.plan, pred);
  std::ostringstream out;
  EXPECT_EQ(compare(*r.plan, pred, run, "t.trace", {}, out), kDisagree);
  EXPECT_NE(out.str().find("the trace says => ok pfn=16385, the kernel gave pfn=16384 (+0)"), std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("fails `cmacheck replay`"), std::string::npos);
}

TEST(KreplayCompare, AnAllocationTheKernelFailedOrRefusedIsADisagreement) {
  Checked failed = check_with(kSequence, [](std::string s) { return replace(s, "ok pfn=16384 ns=0", "fail ns=0"); });
  EXPECT_EQ(failed.status, kDisagree) << failed.report;
  EXPECT_NE(failed.report.find("DISAGREE result: kernel fail, model ok"), std::string::npos) << failed.report;
  EXPECT_NE(failed.report.find("the trace says => ok pfn=16384, the kernel failed"), std::string::npos) << failed.report;
  Checked refused = check_with(kSequence, [](std::string s) { return replace(s, "ok pfn=16384 ns=0", "err unknown handle"); });
  EXPECT_EQ(refused.status, kDisagree) << refused.report;
  EXPECT_NE(refused.report.find("DISAGREE the driver refused the command: unknown handle"), std::string::npos)
      << refused.report;
  EXPECT_EQ(refused.report.find("kernel fail, model ok"), std::string::npos) << refused.report;
}

TEST(KreplayCompare, ACrashIsADisagreementAndTheRestIsNotReached) {
  Checked c = check_with(
      kSequence, [](std::string s) { return s.substr(0, s.find("KR 7 ")); }, 2,
      "kreplay: kernel: kernel BUG at include/linux/mm.h:780!\n");
  EXPECT_EQ(c.status, kDisagree) << c.report;
  EXPECT_NE(c.report.find("the kernel crashed at this command"), std::string::npos) << c.report;
  EXPECT_NE(c.report.find("not reached"), std::string::npos) << c.report;
}

TEST(KreplayCompare, ATimeoutWithoutACrashIsInconclusive) {
  Checked c = check_with(
      kSequence, [](std::string s) { return s.substr(0, s.find("KR 7 ")); }, 2,
      "kreplay: error: timeout after 120 s\n");
  EXPECT_EQ(c.status, kInconclusive) << c.report;
}

TEST(KreplayCompare, AnAreaTheKernelDidNotPlaceIsNotCheckable) {
  Checked c = check_with(kSequence, [](std::string s) {
    s = replace(s, "areas=1", "areas=0");
    return replace(s, "KR 0 area ok name=reserved base_pfn=16384 count=4096 order_per_bit=0\n", "");
  });
  EXPECT_EQ(c.status, kNotCheckable) << c.report;
  EXPECT_NE(c.report.find("did not place the area at cma=16M@64M"), std::string::npos) << c.report;
}

TEST(KreplayCompare, HeldFramesMakeWindowsBusyOnBothSides) {
  Checked c = check_with(std::string(kHeader) +
                             "alloc h kind=movable at=16386 => ok pfn=16386\npin h\n"
                             "cma_alloc a area=dma count=4 align=2 => ok pfn=16388\n"
                             "unpin h\ncma_alloc b area=dma count=1 => ok pfn=16384\n",
                         [](std::string s) { return s; });
  EXPECT_EQ(c.status, kAgree) << c.report;
  EXPECT_NE(c.report.find("(held since line 3)"), std::string::npos) << c.report;
}

TEST(KreplayCompare, ALongTermPinLeftInTheAreaIsADisagreement) {
  const std::string text = std::string(kHeader) + "#kernel: pin lt pages=16 longterm in_cma\n";
  Checked ok = check_with(text, [](std::string s) { return s; });
  EXPECT_EQ(ok.status, kAgree) << ok.report;
  Checked bad = check_with(text, [](std::string s) {
    return replace(s, "after_in_cma=0 moved=16 before=16400-16415 after=2963-2978",
                   "after_in_cma=1 moved=15 before=16400-16415 after=2963-2977,16415");
  });
  EXPECT_EQ(bad.status, kDisagree) << bad.report;
  EXPECT_NE(bad.report.find("left 1 pages in the area"), std::string::npos) << bad.report;
}

TEST(KreplayCompare, PressureThatNeverReachedTheAreaIsInconclusive) {
  Checked c = check_with(std::string(kHeader) + "#kernel: pressure p pages=100 min_in_cma=50\n",
                         [](std::string s) { return s; });
  EXPECT_EQ(c.status, kInconclusive) << c.report;
  EXPECT_NE(c.report.find("fewer than min_in_cma=50"), std::string::npos) << c.report;
}


TEST(KreplayKernel, AProfileNamesItsKernelAndANeutralTraceRunsOnEvery) {
  EXPECT_EQ(kernel_for_profile(""), "");
  EXPECT_EQ(kernel_for_profile("linux-6.1"), "6.1");
  EXPECT_EQ(kernel_for_profile("linux-6.12"), "6.12");
  EXPECT_FALSE(kernel_for_profile("linux-5.10"));
  EXPECT_FALSE(kernel_for_profile("modern"));
  EXPECT_TRUE(known_kernel("6.12"));
  EXPECT_FALSE(known_kernel("6.1x"));
}

TEST(KreplayKernel, TheDefaultIs61AndTheOptionChoosesAnother) {
  PlanResult d = plan_of(kSequence);
  ASSERT_TRUE(d.plan);
  EXPECT_EQ(d.plan->kernel, "6.1");
  PlanOptions o;
  o.kernel = "6.12";
  PlanResult r = make_plan(parse(kSequence), kSequence, o);
  ASSERT_TRUE(r.plan);
  EXPECT_EQ(r.plan->kernel, "6.12");
  o.kernel = "5.10";
  PlanResult bad = make_plan(parse(kSequence), kSequence, o);
  ASSERT_TRUE(bad.problem);
  EXPECT_NE(bad.problem->message.find("unknown kernel '5.10'"), std::string::npos);
}

TEST(KreplayKernel, AGuestRunningAnotherKernelIsInconclusive) {
  PlanOptions o;
  o.kernel = "6.12";
  PlanResult r = make_plan(parse(kSequence), kSequence, o);
  ASSERT_TRUE(r.plan);
  Predictions pred = predict(r.plan->trace);
  KernelRun run;
  run.out = fake_kernel(*r.plan, pred);  // says kernel=6.1.192
  std::ostringstream out;
  EXPECT_EQ(compare(*r.plan, pred, run, "t.trace", {}, out), kInconclusive);
  EXPECT_NE(out.str().find("the plan asked for Linux 6.12"), std::string::npos) << out.str();
  run.out = replace(run.out, "kernel=6.1.192", "kernel=6.12.118");
  std::ostringstream out2;
  EXPECT_EQ(compare(*r.plan, pred, run, "t.trace", {}, out2), kAgree) << out2.str();
}


const std::string kNodeTrace =
    "machine pages=1024\n"
    "alloc u kind=unmovable order=9 at=0 => ok pfn=0\n"
    "alloc_contig c count=3 => ok pfn=513\n"
    "free_contig c\n"
    "free u\n"
    "expect free=1024\n";

TEST(KreplayNode, AllocContigAndUnmovableBlocksRunInTheSecondNode) {
  PlanResult r = plan_of(kNodeTrace);
  ASSERT_TRUE(r.plan) << r.problem->message;
  EXPECT_TRUE(r.plan->node);
  EXPECT_FALSE(r.plan->has_area);
  EXPECT_EQ(r.plan->offset, 68608u);  // past 65536 + 2048, a multiple of 3 from 65536
  EXPECT_EQ(r.plan->cma_arg(), "none");
  EXPECT_EQ(r.plan->append, "numa=fake=2U");
  EXPECT_EQ(r.plan->mem_arg(), "512M");
  const std::string& sc = r.plan->script;
  EXPECT_NE(sc.find("\nnode_setup nid=1 pfn=68608 count=1024\nbusy pfn=68608 count=1024\nlabels pfn=68608 count=1024\n"),
            std::string::npos)
      << sc;
  EXPECT_NE(sc.find("\nhold t0 pfn=68608 count=512 mt=unmovable\n"), std::string::npos) << sc;
  EXPECT_NE(sc.find("\nalloc_contig t1 count=3 node=1\n"), std::string::npos) << sc;
  EXPECT_NE(sc.find("\nfree_contig t1\n"), std::string::npos) << sc;
  EXPECT_NE(sc.find("\ndrop t0\n"), std::string::npos) << sc;
  EXPECT_EQ(sc.find("stats"), std::string::npos) << sc;  // no area
  // u's claim took the free order-10 block: pageblock 1 is relabelled too (B5)
  EXPECT_NE(sc.find("\nhold t0 pfn=68608 count=512 mt=unmovable\nrelabel pfn=69120 mt=unmovable\n"),
            std::string::npos)
      << sc;
}

TEST(KreplayNode, AnAreaMovesWithTheNode) {
  PlanResult r = plan_of("machine pages=4096\narea cma base=2048 pages=1024\nalloc_contig c count=512\n");
  ASSERT_TRUE(r.plan) << r.problem->message;
  EXPECT_EQ(r.plan->cma_arg(), "4M@272M");  // frame 0 at guest frame 67584: the area at 69632
}

TEST(KreplayNode, TheOffsetIsAMultipleOfEveryCountPastTheKernelsPages) {
  PlanResult a = plan_of("machine pages=2048\nalloc_contig a count=3\nalloc_contig b count=600\n");
  ASSERT_TRUE(a.plan) << a.problem->message;
  EXPECT_EQ(a.plan->offset, kNodeStartPfn + 38400);  // lcm(512, 3, 600)
  EXPECT_NE(problem_of("machine pages=2048\nalloc_contig a count=1000\nalloc_contig b count=999\n").find("no frame of node"),
            std::string::npos);
  EXPECT_NE(problem_of("machine pages=4096\narea c base=2048 pages=1024\nalloc_contig a count=512\n"
                       "cma_alloc x area=c count=1 align=12\n")
                .find("align=12"),
            std::string::npos);
}

TEST(KreplayNode, TheOffsetIsACandidateOfEveryCountFromTheKernelsZoneStart) {
  // 6.12's node 1 starts at 65537: ALIGN(65537, 3) = 65537, ALIGN(65537, 1536) = 66048 (the
  // power-of-two ALIGN of a count that is not one), so 3 and 1536 have no common candidate
  EXPECT_EQ(kernel_align(65537, 3), 65537u);
  EXPECT_EQ(kernel_align(65537, 768), 65792u);
  EXPECT_EQ(kernel_align(65537, 1536), 66048u);
  EXPECT_EQ(kernel_align(65536, 600), 65536u);
  PlanOptions o;
  o.kernel = "6.12";
  const std::string both = "machine pages=2048\nalloc_contig a count=3\nalloc_contig b count=1536\n";
  EXPECT_TRUE(plan_of(both).plan);  // 6.1: 65536 + 3072
  PlanResult r = make_plan(parse(both), both, o);
  ASSERT_TRUE(r.problem);
  EXPECT_NE(r.problem->message.find("zone start 65537 on Linux 6.12"), std::string::npos) << r.problem->message;
  const std::string ok = "machine pages=2048\nalloc_contig a count=3\nalloc_contig b count=1024\n";
  PlanResult r2 = make_plan(parse(ok), ok, o);
  ASSERT_TRUE(r2.plan);
  EXPECT_EQ(r2.plan->offset, 69632u);  // 69632 - 65537 = 3 * 1365; 69632 - 66560 = 3 * 1024
  EXPECT_EQ(r2.plan->zone_start, 65537u);
}

TEST(KreplayNode, AKernelThatAnswersAsTheModelAgrees) {
  Checked c = check_with(kNodeTrace, [](std::string s) { return s; });
  EXPECT_EQ(c.status, kAgree) << c.report;
}

TEST(KreplayNode, ADifferentLabelIsADisagreement) {
  // after the hold of u: the model's pageblock 0 is UNMOVABLE
  Checked c = check_with(kNodeTrace, [](std::string s) { return replace(s, "labels=UU\n", "labels=MU\n"); });
  EXPECT_EQ(c.status, kDisagree) << c.report;
  EXPECT_NE(c.report.find("labels: kernel MU, model UU"), std::string::npos) << c.report;
}

TEST(KreplayNode, ADifferentContigFrameOrFreeCountIsADisagreement) {
  Checked f = check_with(kNodeTrace, [](std::string s) { return replace(s, "ok pfn=69121", "ok pfn=69120"); });
  EXPECT_EQ(f.status, kDisagree) << f.report;
  EXPECT_NE(f.report.find("frame: kernel pfn=512, model pfn=513"), std::string::npos) << f.report;
  Checked n = check_with(kNodeTrace, [](std::string s) { return replace(s, "busy ok busy=0 runs=-\nKR", "busy ok busy=2 runs=65540-65541\nKR"); });
  EXPECT_EQ(n.status, kDisagree) << n.report;
  EXPECT_NE(n.report.find("free: kernel 1022, model 1024"), std::string::npos) << n.report;
}

TEST(KreplayNode, ANodeElsewhereOrAFailedRelabelIsInconclusive) {
  Checked z = check_with(kNodeTrace, [](std::string s) { return replace(s, "start_pfn=65536 end", "start_pfn=65537 end"); });
  EXPECT_EQ(z.status, kInconclusive) << z.report;
  EXPECT_NE(z.report.find("not as the plan expects (zone start 65536"), std::string::npos) << z.report;
  Checked r = check_with(kNodeTrace, [](std::string s) { return replace(s, "relabel ok", "relabel fail err=-16"); });
  EXPECT_EQ(r.status, kInconclusive) << r.report;
  EXPECT_NE(r.report.find("set-up: the relabel of a claimed pageblock"), std::string::npos) << r.report;
}

// Blocks the node's buddy allocator chooses (alloc without at=): node_setup takes the
// node's free scraps first, and the kernel's block is compared with the model's.
const std::string kBuddyTrace =
    "machine pages=2048\n"
    "alloc a kind=unmovable order=10\n"
    "alloc b kind=reclaimable\n"
    "free b\n";

TEST(KreplayBuddy, UnmovableAndReclaimableBlocksWithoutAtComeFromTheNodesBuddyAllocator) {
  PlanResult r = plan_of(kBuddyTrace);
  ASSERT_TRUE(r.plan) << r.problem->message;
  EXPECT_TRUE(r.plan->node);
  EXPECT_TRUE(r.plan->scrub);
  const std::string& sc = r.plan->script;
  EXPECT_NE(sc.find("\nnode_setup nid=1 pfn=67584 count=2048 scrub=1\n"), std::string::npos) << sc;
  EXPECT_NE(sc.find("\nballoc t0 node=1 order=10 mt=unmovable\n"), std::string::npos) << sc;
  EXPECT_NE(sc.find("\nballoc t1 node=1 mt=reclaimable\n"), std::string::npos) << sc;
  EXPECT_NE(sc.find("\nbfree t1\n"), std::string::npos) << sc;
  EXPECT_EQ(sc.find("relabel"), std::string::npos) << sc;  // the kernel claims by itself
  EXPECT_FALSE(plan_of("machine pages=1024\nalloc_contig c count=4\n").plan->scrub);
}

TEST(KreplayBuddy, AKernelThatChoosesTheModelsBlockAgrees) {
  Checked c = check_with(kBuddyTrace, [](std::string s) { return s; });
  EXPECT_EQ(c.status, kAgree) << c.report;
}

TEST(KreplayBuddy, AnotherLegalBlockIsComparedByClassAndEndsThePredictions) {
  // impl takes the lower order-10 block (0); the upper one (1024) is as legal (K2)
  Checked c = check_with(kBuddyTrace, [](std::string s) { return replace(s, "ok pfn=67584 ns=0", "ok pfn=68608 ns=0"); });
  EXPECT_EQ(c.status, kInconclusive) << c.report;
  EXPECT_NE(c.report.find("both legal (K2)"), std::string::npos) << c.report;
  EXPECT_NE(c.report.find("not compared (the kernel's lists chose another legal block before)"), std::string::npos)
      << c.report;
}

TEST(KreplayBuddy, AnIllegalBlockIsADisagreement) {
  // 512 is not the head of a free order-10 block
  Checked c = check_with(kBuddyTrace, [](std::string s) { return replace(s, "ok pfn=67584 ns=0", "ok pfn=68096 ns=0"); });
  EXPECT_EQ(c.status, kDisagree) << c.report;
  EXPECT_NE(c.report.find("frame: kernel pfn=512, model pfn=0; the model rejects the kernel's block (K2"),
            std::string::npos)
      << c.report;
}

TEST(KreplayBuddy, ABlockTheKernelFailedOrRefusedIsADisagreement) {
  Checked failed = check_with(kBuddyTrace, [](std::string s) { return replace(s, "ok pfn=67584 ns=0", "fail ns=0"); });
  EXPECT_EQ(failed.status, kDisagree) << failed.report;
  EXPECT_NE(failed.report.find("DISAGREE result: kernel fail, model ok"), std::string::npos) << failed.report;
  Checked refused = check_with(kBuddyTrace, [](std::string s) { return replace(s, "ok pfn=67584 ns=0", "err unknown handle"); });
  EXPECT_EQ(refused.status, kDisagree) << refused.report;
  EXPECT_NE(refused.report.find("DISAGREE the driver refused the command: unknown handle"), std::string::npos)
      << refused.report;
}

TEST(KreplayBuddy, ABlockOutsideTheMachineIsADisagreement) {
  // a free scrap the scrub missed: the kernel's lists hand it out before the machine's blocks
  Checked below = check_with(kBuddyTrace, [](std::string s) { return replace(s, "ok pfn=67584 ns=0", "ok pfn=65700 ns=0"); });
  EXPECT_EQ(below.status, kDisagree) << below.report;
  EXPECT_NE(below.report.find("lies outside the node mapping"), std::string::npos) << below.report;
  Checked above = check_with(kBuddyTrace, [](std::string s) { return replace(s, "ok pfn=67584 ns=0", "ok pfn=70656 ns=0"); });
  EXPECT_EQ(above.status, kDisagree) << above.report;
  EXPECT_NE(above.report.find("is outside the machine"), std::string::npos) << above.report;
}

TEST(KreplayNode, AKernelPageInTheMachineBeforeTheStartIsInconclusive) {
  Checked c = check_with(kNodeTrace, [](std::string s) { return replace(s, "busy=0 runs=- held", "busy=1 runs=65536 held"); });
  EXPECT_EQ(c.status, kInconclusive) << c.report;
  EXPECT_NE(c.report.find("not quiet"), std::string::npos) << c.report;
}

}  // namespace
}  // namespace cmacheck::kreplay
