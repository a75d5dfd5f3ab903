# cmacheck: every target wraps a CMake preset; `make test` is what CI runs.
# Set-up is part of the targets: missing Debian packages are installed (as root) or named.

DEV_PACKAGES := clang-14 libclang-rt-14-dev llvm-14 cmake ninja-build libgtest-dev libbenchmark-dev librapidcheck-dev libcli11-dev
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 120
TARGET ?= fuzz_lockstep
# The build `make fuzz` searches with. Without sanitizers it finds the zoo's faults about
# 4x faster per CPU-second than under ASan+UBSan (docs/performance.md); the inputs it keeps
# are then re-run under the `fuzz` preset (ASan+UBSan). FUZZ_PRESET=fuzz searches under
# ASan+UBSan itself; CI and ClusterFuzzLite always do.
FUZZ_PRESET ?= fuzz-nosan

.PHONY: all deps test build release fuzz fuzz-build fuzz-recheck-build bench properties coverage zoo sim kernel kernel-check clean

all: build

deps:
	@scripts/deps.sh $(DEV_PACKAGES)

build/%/build.ninja: | deps
	@cmake --preset $* >/dev/null

build: deps build/dev/build.ninja
	@bash -o pipefail -c "cmake --build --preset dev -j $(JOBS) | { grep -v '^\[' || true; }"
	@test -x build/dev/tools/cmacheck

# Configure, build and run every test (unit, corpus replay, fuzz smoke runs, properties).
test: build
	@cd build/dev && ctest -j $(JOBS) --output-on-failure --timeout 600 $(CTEST_ARGS)

release: deps build/release/build.ninja
	@bash -o pipefail -c "cmake --build --preset release -j $(JOBS) | { grep -v '^\[' || true; }"

# The main job: run the lockstep fuzzer on all cores for FUZZ_SECONDS (see README).
fuzz-build: deps build/$(FUZZ_PRESET)/build.ninja
	@bash -o pipefail -c "cmake --build --preset $(FUZZ_PRESET) -j $(JOBS) --target fuzzers | { grep -v '^\[' || true; }"

# TARGET under ASan+UBSan (the fuzz preset), to re-run what a run of FUZZ_PRESET kept.
fuzz-recheck-build: deps build/fuzz/build.ninja
	@bash -o pipefail -c "cmake --build --preset fuzz -j $(JOBS) --target $(TARGET) | { grep -v '^\[' || true; }"

fuzz: fuzz-build fuzz-recheck-build release
	@FUZZ_PRESET=$(FUZZ_PRESET) scripts/fuzz.sh $(TARGET) $(FUZZ_SECONDS) $(JOBS)

bench: release
	@build/release/bench/cmacheck_bench $(BENCH_ARGS)

properties: build
	@scripts/properties.sh

coverage: deps build/coverage/build.ninja
	@scripts/coverage.sh

# The zoo's engines: FUZZ_PRESET's fuzz_lockstep (what `make fuzz` runs), the dev build's
# property tests.
ZOO_FUZZER ?= build/$(FUZZ_PRESET)/fuzz/fuzz_lockstep
zoo: release fuzz-build build
	@build/release/tools/cmacheck zoo --fuzzer $(ZOO_FUZZER) $(ZOO_ARGS)

sim: release
	@build/release/tools/cmacheck sim $(SIM_ARGS)

-include kernel/kernel.mk

clean:
	rm -rf build
