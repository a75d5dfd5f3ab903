# cmacheck kreplay: make fragment for the top-level Makefile (include kernel/kernel.mk).
#   make kernel        build bzImage, module, agents, base initramfs into build/kernel/ (cached)
#   make kernel-test   build, then run the kernel/experiments scripts and check their results
#   make kernel-check  build what is missing (the dev build of cmacheck, the kernel), then
#                      replay every corpus/kernel/*.trace on the kernel and compare with the
#                      model (`ctest -L kernel` in build/dev; docs/kernel-crosscheck.md)
KREPLAY_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
KREPLAY_JOBS ?= $(or $(JOBS),$(shell nproc))

.PHONY: kernel kernel-test kernel-check
kernel:
	@bash $(KREPLAY_DIR)/build.sh

kernel-test: kernel
	@bash $(KREPLAY_DIR)/test.sh

# CMACHECK_KERNEL_REQUIRED=1: a missing kernel build fails the tests instead of skipping them.
kernel-check: build kernel
	@cd build/dev && CMACHECK_KERNEL_REQUIRED=1 ctest -L kernel -j $(KREPLAY_JOBS) --output-on-failure --timeout 600
