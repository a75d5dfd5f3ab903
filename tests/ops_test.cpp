// The operation is the unit (trace/ops.h, docs/design.md "Adding an operation"): what
// forgetting one of the places an operation lives must break. impl/ and model/ are compile
// errors (exhaustive visitors; tests/compile/ shows the mechanism); these are the rest.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "check/decode.h"
#include "trace/parse.h"
#include "trace/print.h"

using namespace cmacheck;

TEST(Ops, TheGeneratorProducesEveryOperation) {
  std::set<size_t> seen;
  for (uint64_t seed = 1; seed <= 400 && seen.size() < kOps; ++seed) {
    SeededChoices choices(seed);
    auto s = generate_and_run(choices, RunOptions{}, {}, 200);
    for (const Statement& st : s->trace().statements)
      if (const Op* op = std::get_if<Op>(&st.body)) seen.insert(op->index());
  }
  for (size_t i = 0; i < kOps; ++i)
    EXPECT_TRUE(seen.count(i)) << "trace/generate.cpp never generates '" << op_usage(i) << "'";
}

TEST(Ops, TheFormatDocumentListsEveryOperation) {
  std::ifstream in(CMACHECK_SOURCE_DIR "/docs/trace-format.md");
  ASSERT_TRUE(in) << "docs/trace-format.md";
  std::stringstream ss;
  ss << in.rdbuf();
  std::string doc = ss.str();
  for (size_t p = 0; (p = doc.find("\\|", p)) != std::string::npos;) doc.erase(p, 1);  // table escapes
  for (size_t i = 0; i < kOps; ++i)
    EXPECT_NE(doc.find("| `" + op_usage(i) + "` |"), std::string::npos)
        << "docs/trace-format.md's operation table has no row `" << op_usage(i) << "`";
}

TEST(Ops, EveryOperationPrintsAndParsesBack) {
  // One statement of each operation, with every optional argument given, in variant order
  // (each family's binding operation comes before the others of its family): the derived
  // parser reads them, and the derived printer writes them back as they were.
  std::string text = "machine pages=1024 pageblock_order=4 max_order=6\narea dma base=256 pages=256\n";
  std::string ops;
  for (size_t i = 0; i < kOps; ++i) {
    std::string u = op_usage(i);
    const std::string handle = std::string(" ") + "mcx"[index(kOpFacts[i].family)];
    for (auto [from, to] : {std::pair<std::string, std::string>{" ID", handle}, {" [longterm]", " longterm"},
                           {"kind=movable|unmovable|reclaimable", "kind=unmovable"}, {"area=NAME", "area=dma"},
                           {"=N", "=8"}, {"[at=PFN]", "at=64"}, {"=PFN", "=256"}, {"[order=K]", "order=2"},
                           {"[align=K]", "align=3"}, {"[batch=lru|activate|mlock]", "batch=mlock"}})
      for (size_t p; (p = u.find(from)) != std::string::npos;) u.replace(p, from.size(), to);
    ops += u + "\n";
  }
  ParseResult r = parse_trace(text + ops);
  ASSERT_TRUE(r.ok()) << r.error->message << "\n" << ops;
  ASSERT_EQ(r.trace.statements.size(), kOps);
  for (size_t i = 0; i < kOps; ++i) EXPECT_EQ(std::get<Op>(r.trace.statements[i].body).index(), i);
  EXPECT_EQ(print_trace(r.trace), "machine pages=1024 pageblock_order=4 max_order=6 profile=linux-6.1\n"
                                  "area dma base=256 pages=256 order_per_bit=0\n" + ops);
}
