// The trace format's malformed cases, one test each, and the printer's round trip.
#include <gtest/gtest.h>

#include "trace/parse.h"
#include "trace/print.h"

using namespace cmacheck;

namespace {

void expect_error(const std::string& text, uint32_t line, const std::string& fragment) {
  ParseResult r = parse_trace(text);
  ASSERT_FALSE(r.ok()) << "parsed but should not:\n" << text;
  EXPECT_EQ(r.error->line, line) << r.error->message;
  EXPECT_NE(r.error->message.find(fragment), std::string::npos) << "message: " << r.error->message;
}

const std::string kHead = "machine pages=1024 pageblock_order=4 max_order=6\narea dma base=256 pages=256\n";

}  // namespace

TEST(Parse, FullExampleParses) {
  ParseResult r = parse_trace(kHead +
                              "# comment\n\n"
                              "alloc m1 kind=movable order=2   # trailing comment\n"
                              "cma_alloc c area=dma count=16 align=4 => ok pfn=256\n"
                              "cma_alloc d area=dma count=4096 => fail\n"
                              "pin m1 longterm\n"
                              "unpin m1\n"
                              "migrate m1\n"
                              "free m1 => ok\n"
                              "cma_release c\n"
                              "cma_release area=dma pfn=0x100 count=8K\n"
                              "alloc_contig x count=1M\n"
                              "free_contig x\n"
                              "expect free=1024 free_cma=256 dma.used=0 dma.maxchunk=256\n");
  ASSERT_TRUE(r.ok()) << r.error->format("t");
  EXPECT_EQ(r.trace.machine.pages, 1024u);
  EXPECT_EQ(r.trace.statements.size(), 12u);
  const auto& raw_release = std::get<CmaReleaseRaw>(std::get<Op>(r.trace.statements[8].body));
  EXPECT_EQ(raw(raw_release.pfn), 256u);
  EXPECT_EQ(raw(raw_release.count), 2u);  // 8K = two 4 KiB pages
  EXPECT_EQ(raw(std::get<AllocContig>(std::get<Op>(r.trace.statements[9].body)).count), 256u);
  EXPECT_EQ(r.trace.statements[1].line, 6u);
}

TEST(Parse, DefaultsFollowTheFormat) {
  ParseResult r = parse_trace("machine pages=2048\narea a base=0 pages=512\nalloc m kind=unmovable\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.trace.machine.pageblock_order, 9);
  EXPECT_EQ(r.trace.machine.max_order, 10);
  EXPECT_EQ(r.trace.areas[0].order_per_bit, 0);
  EXPECT_EQ(std::get<Alloc>(std::get<Op>(r.trace.statements[0].body)).order.value, 0);
}

TEST(Parse, SizesConvertToPages) {
  ParseResult r = parse_trace("machine pages=4M pageblock_order=2 max_order=3\nalloc_contig x count=8M\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.trace.machine.pages, 1024u);
  EXPECT_EQ(raw(std::get<AllocContig>(std::get<Op>(r.trace.statements[0].body)).count), 2048u);
}

TEST(ParseMalformed, UnknownStatement) { expect_error(kHead + "allocate m kind=movable\n", 3, "unknown statement"); }
TEST(ParseMalformed, MissingKey) { expect_error(kHead + "alloc m\n", 3, "missing key 'kind'"); }
TEST(ParseMalformed, MissingCount) { expect_error(kHead + "cma_alloc c area=dma\n", 3, "missing key 'count'"); }
TEST(ParseMalformed, UnknownKey) { expect_error(kHead + "alloc m kind=movable colour=red\n", 3, "unknown key 'colour'"); }
TEST(ParseMalformed, RepeatedKey) { expect_error(kHead + "alloc m kind=movable kind=unmovable\n", 3, "repeated"); }
TEST(ParseMalformed, RepeatedExpectKey) { expect_error(kHead + "expect free=1 free=2\n", 3, "repeated"); }
TEST(ParseMalformed, InvalidNumber) { expect_error(kHead + "alloc_contig x count=12q\n", 3, "not a number"); }
TEST(ParseMalformed, NumberTooLarge) {
  expect_error(kHead + "alloc_contig x count=99999999999999999999999\n", 3, "too large");
}
TEST(ParseMalformed, SizeNotWholePages) { expect_error(kHead + "alloc_contig x count=6K\n", 3, "whole number of 4 KiB pages"); }
TEST(ParseMalformed, SizeSuffixOnOrder) { expect_error(kHead + "alloc m kind=movable order=2M\n", 3, "suffix"); }
TEST(ParseMalformed, InvalidKind) { expect_error(kHead + "alloc m kind=sticky\n", 3, "kind must be"); }
TEST(ParseMalformed, InvalidHandle) { expect_error(kHead + "alloc 9m kind=movable\n", 3, "allocation handle"); }
TEST(ParseMalformed, HeaderMissing) { expect_error("alloc m kind=movable\n", 1, "missing header"); }
TEST(ParseMalformed, EmptyFileHasNoHeader) { expect_error("# nothing\n", 1, "missing header"); }
TEST(ParseMalformed, HeaderTwice) { expect_error(kHead + "machine pages=64\n", 3, "twice"); }
TEST(ParseMalformed, HeaderAfterOperation) {
  expect_error(kHead + "alloc m kind=movable\narea b base=512 pages=16\n", 4, "before the first operation");
}
TEST(ParseMalformed, PageblockOrderAboveMaxOrder) {
  expect_error("machine pages=1024 pageblock_order=5 max_order=4\n", 1, "exceeds max_order");
}
TEST(ParseMalformed, PagesNotMultipleOfPageblock) { expect_error("machine pages=100 pageblock_order=4\n", 1, "not a multiple"); }
TEST(ParseMalformed, MachineTooLarge) { expect_error("machine pages=0x100000000000\n", 1, "limit"); }
TEST(ParseMalformed, AreaOverlaps) {
  expect_error(kHead + "area cam base=384 pages=256\n", 3, "overlaps area 'dma'");
}
TEST(ParseMalformed, AreaLeavesMachine) { expect_error("machine pages=1024 pageblock_order=4\narea a base=1008 pages=32\n", 2, "leaves the machine"); }
TEST(ParseMalformed, AreaNotPageblockAligned) {
  expect_error("machine pages=1024 pageblock_order=4\narea a base=8 pages=16\n", 2, "multiples of the pageblock");
}
TEST(ParseMalformed, AreaOrderPerBitAbovePageblockOrder) {
  expect_error("machine pages=1024 pageblock_order=4\narea a base=0 pages=16 order_per_bit=5\n", 2, "order_per_bit");
}
TEST(ParseMalformed, AreaDeclaredTwice) { expect_error(kHead + "area dma base=0 pages=16\n", 3, "declared twice"); }
TEST(ParseMalformed, UndeclaredArea) { expect_error(kHead + "cma_alloc c area=gpu count=1\n", 3, "not declared"); }
TEST(ParseMalformed, UndeclaredAreaInExpect) { expect_error(kHead + "expect gpu.used=0\n", 3, "not declared"); }
TEST(ParseMalformed, HandleNeverBound) { expect_error(kHead + "free m\n", 3, "not bound"); }
TEST(ParseMalformed, HandleOfAnotherFamily) {
  expect_error(kHead + "cma_alloc c area=dma count=1\nfree c\n", 4, "bound by cma_alloc");
}
TEST(ParseMalformed, CmaReleaseOfAllocHandle) {
  expect_error(kHead + "alloc m kind=movable\ncma_release m\n", 4, "bound by alloc");
}
TEST(ParseMalformed, FreeContigOfCmaHandle) {
  expect_error(kHead + "cma_alloc c area=dma count=1\nfree_contig c\n", 4, "bound by cma_alloc");
}
TEST(ParseMalformed, BadExpectation) { expect_error(kHead + "alloc m kind=movable => maybe\n", 3, "'ok' or 'fail'"); }
TEST(ParseMalformed, PfnOnFailExpectation) { expect_error(kHead + "alloc m kind=movable => fail pfn=3\n", 3, "no pfn"); }
TEST(ParseMalformed, PinWithUnknownWord) { expect_error(kHead + "alloc m kind=movable\npin m forever\n", 4, "longterm"); }
TEST(ParseMalformed, ReleaseWithHandleAndArgs) {
  expect_error(kHead + "cma_alloc c area=dma count=1\ncma_release c area=dma\n", 4, "takes no arguments");
}
TEST(ParseMalformed, ExpectUnknownKey) { expect_error(kHead + "expect dma.size=3\n", 3, "unknown key"); }

TEST(ParseMalformed, ErrorFormatNamesFileAndLine) {
  ParseResult r = parse_trace(kHead + "bogus\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->format("x.trace"), "x.trace:3: error: unknown statement 'bogus'");
}

TEST(Print, RoundTripIsIdentity) {
  ParseResult r = parse_trace(kHead +
                              "alloc m1 kind=reclaimable order=3 at=64 => ok pfn=64\n"
                              "cma_alloc c area=dma count=16 align=4 => ok\n"
                              "pin m1 longterm\n"
                              "cma_release area=dma pfn=300 count=2 => fail\n"
                              "expect free=3 m1.pfn=64 dma.maxchunk=0x10\n");
  ASSERT_TRUE(r.ok());
  std::string printed = print_trace(r.trace);
  ParseResult again = parse_trace(printed);
  ASSERT_TRUE(again.ok()) << printed;
  EXPECT_EQ(again.trace, r.trace) << printed;
  EXPECT_EQ(print_trace(again.trace), printed);  // canonical: printing is a fixed point
}

// A switch names the i-th occurrence of a step as `LABEL#i`: the `#` inside the word is not a
// comment (fuzz_concurrent found a schedule whose `isolate#2` replayed as `isolate`), while
// a `#` after a blank still is.
TEST(Parse, StepOccurrenceIsNotAComment) {
  const ParseResult r = parse_trace(
      "machine pages=64 pageblock_order=2 max_order=3 cpus=2   # two CPUs\n"
      "area dma base=32 pages=8\n"
      "T0: cma_alloc c1 area=dma count=1 #comment\n"
      "T1: cma_alloc c2 area=dma count=1\n"
      "switch T1 after T0.1:reserve#2 # the second search\n");
  ASSERT_TRUE(r.ok()) << r.error->message;
  ASSERT_EQ(r.trace.switches.size(), 1u);
  EXPECT_EQ(r.trace.switches[0].label, StepLabel::reserve);
  EXPECT_EQ(r.trace.switches[0].occurrence, 2u);
  EXPECT_EQ(r.trace.statements.size(), 2u);
}
