# cmacheck: every target wraps a CMake preset; `make test` is what CI runs.
# Set-up is part of the targets: missing Debian packages are installed (as root) or named.

DEV_PACKAGES := clang-14 libclang-rt-14-dev llvm-14 cmake ninja-build libgtest-dev libbenchmark-dev librapidcheck-dev libcli11-dev
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 120
TARGET ?= fuzz_lockstep

.PHONY: all deps test build release fuzz fuzz-build bench properties coverage zoo sim kernel kernel-check clean

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
fuzz-build: deps build/fuzz/build.ninja
	@bash -o pipefail -c "cmake --build --preset fuzz -j $(JOBS) | { grep -v '^\[' || true; }"

fuzz: fuzz-build release
	@scripts/fuzz.sh $(TARGET) $(FUZZ_SECONDS) $(JOBS)

bench: release
	@build/release/bench/cmacheck_bench $(BENCH_ARGS)

properties: build
	@scripts/properties.sh

coverage: deps build/coverage/build.ninja
	@scripts/coverage.sh

# The zoo's engines: the fuzz preset's fuzz_lockstep, the dev build's property tests.
zoo: release fuzz-build build
	@build/release/tools/cmacheck zoo $(ZOO_ARGS)

sim: release
	@build/release/tools/cmacheck sim $(SIM_ARGS)

-include kernel/kernel.mk

clean:
	rm -rf build
