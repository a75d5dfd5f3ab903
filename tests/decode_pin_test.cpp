// The meaning of fuzz bytes, pinned (docs/fuzzing.md): a few inputs and the traces they
// decode into with the current generator version. A change to the generator that
// re-maps inputs fails here; then bump kGeneratorVersion (trace/generate.cpp) and re-record
// the pins with `cmacheck decode`. Committed crash artefacts are their decoded .trace files,
// which say the version they were decoded with, so they keep their meaning.
#include <gtest/gtest.h>

#include <string>

#include "check/decode.h"
#include "trace/print.h"

using namespace cmacheck;

namespace {

struct PinnedInput {
  const char* what;
  uint32_t version;
  std::string bytes;
  const char* trace;
};

const PinnedInput kPins[] = {
    {"bytes 0, 1, ..., 47", 4,
     std::string("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x20\x21\x22\x23\x24\x25\x26\x27\x28\x29\x2a\x2b\x2c\x2d\x2e\x2f", 48),
     R"(machine pages=268 pageblock_order=2 max_order=3 profile=linux-6.1 pcp=32
alloc_contig x1 count=1
lru_drain
lru_drain
lru_drain
alloc m2 kind=reclaimable order=1 at=162
pin m2
pin m2 longterm
pin m2 longterm
pin m2 longterm
pin m2 longterm
unpin m2
unpin m2
unpin m2
unpin m2
unpin m2
migrate m2
migrate m2
)"},
    {"the pattern ff 80 40 20 10 08 04 02 01 00, seven times", 4,
     std::string("\xff\x80\x40\x20\x10\x08\x04\x02\x01\x00\xff\x80\x40\x20\x10\x08\x04\x02\x01\x00\xff\x80\x40\x20\x10\x08\x04\x02\x01\x00\xff\x80\x40\x20\x10\x08\x04\x02\x01\x00\xff\x80\x40\x20\x10\x08\x04\x02\x01\x00\xff\x80\x40\x20\x10\x08\x04\x02\x01\x00\xff\x80\x40\x20\x10\x08\x04\x02\x01\x00", 70),
     R"(machine pages=128 pageblock_order=5 max_order=5 profile=linux-6.12
alloc m1 kind=movable order=4
pin m1
pin m1
alloc m2 kind=movable order=6
pin m1
pin m1
pin m1
pin m1
pin m1
pin m1
pin m1
pin m1
alloc m3 kind=movable order=6
pin m1
pin m1
pin m1
pin m1
pin m1
pin m1
pin m1
pin m1
alloc m4 kind=movable order=6
pin m1
pin m1
pin m1
pin m1
pin m1
pin m1
pin m1
pin m1
alloc m5 kind=movable order=6
pin m1
pin m1
pin m1
pin m1
pin m1
pin m1
pin m1
pin m1
alloc m6 kind=movable
)"},
    {"sha256 of the bytes 0, 1 and 2, one after another", 4,
     std::string("\x6e\x34\x0b\x9c\xff\xb3\x7a\x98\x9c\xa5\x44\xe6\xbb\x78\x0a\x2c\x78\x90\x1d\x3f\xb3\x37\x38\x76\x85\x11\xa3\x06\x17\xaf\xa0\x1d\x4b\xf5\x12\x2f\x34\x45\x54\xc5\x3b\xde\x2e\xbb\x8c\xd2\xb7\xe3\xd1\x60\x0a\xd6\x31\xc3\x85\xa5\xd7\xcc\xe2\x3c\x77\x85\x45\x9a\xdb\xc1\xb4\xc9\x00\xff\xe4\x8d\x57\x5b\x5d\xa5\xc6\x38\x04\x01\x25\xf6\x5d\xb0\xfe\x3e\x24\x49\x4b\x76\xea\x98\x64\x57\xd9\x86", 96),
     R"(machine pages=1024 pageblock_order=4 max_order=4 profile=linux-6.12
area cam base=448 pages=96 order_per_bit=0
area gpu base=608 pages=96 order_per_bit=1
alloc m1 kind=movable
pin m1 longterm
touch m1 batch=activate
pin m1 longterm
migrate m1
cma_alloc c2 area=gpu count=11 align=3
alloc m3 kind=reclaimable
free m1
touch m3 batch=activate
pin m3
alloc m4 kind=movable
alloc m5 kind=reclaimable order=3 at=408
pin m3
unpin m3
alloc m6 kind=movable order=5
pin m3 longterm
migrate m5
cma_release c2
pin m4
alloc m7 kind=reclaimable
alloc m8 kind=unmovable
cma_alloc c9 area=gpu count=97
pin m7 longterm
migrate m4
touch m5 batch=activate
migrate m1
)"},
};

}  // namespace

TEST(GeneratorVersion, PinnedInputsDecodeAsRecorded) {
  for (const PinnedInput& pin : kPins) {
    SCOPED_TRACE(pin.what);
    ASSERT_EQ(pin.version, generator_version())
        << "the pins were recorded with generator version " << pin.version << ": re-record them with `cmacheck decode`";
    const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(pin.bytes.data()), pin.bytes.size());
    EXPECT_EQ(print_trace(decode_bytes(bytes, RunOptions{})), pin.trace)
        << "generator version " << generator_version()
        << " decodes this input differently now: bump kGeneratorVersion (trace/generate.cpp) and re-record the pins";
  }
}
