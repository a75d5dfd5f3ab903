# cmacheck kreplay: make fragment for the top-level Makefile (include kernel/kernel.mk).
#   make kernel [KERNEL=6.1|6.12]        build bzImage, module, agents, base initramfs into
#                                        build/kernel-$(KERNEL)/ (cached; default 6.1)
#   make kernel-test [KERNEL=...]        build, then run the kernel/experiments scripts on it
#   make kernel-check [KERNEL=...]       build what is missing (the dev build of cmacheck, the
#                                        kernels), then replay every corpus/kernel/*.trace on
#                                        each kernel and compare with the model (`ctest -L
#                                        kernel` in build/dev; docs/kernel-crosscheck.md).
#                                        Without KERNEL: both kernels; with it: that one only.
KREPLAY_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
KREPLAY_JOBS ?= $(or $(JOBS),$(shell nproc))
KREPLAY_KERNELS := 6.1 6.12

.PHONY: kernel kernel-test kernel-check
kernel:
	@bash $(KREPLAY_DIR)/build.sh --kernel $(or $(KERNEL),6.1)

kernel-test: kernel
	@KERNEL=$(or $(KERNEL),6.1) bash $(KREPLAY_DIR)/test.sh

# CMACHECK_KERNEL_REQUIRED=1: a missing kernel build fails the tests instead of skipping them.
kernel-check: build
	@for k in $(or $(KERNEL),$(KREPLAY_KERNELS)); do bash $(KREPLAY_DIR)/build.sh --kernel $$k || exit 1; done
	@cd build/dev && CMACHECK_KERNEL_REQUIRED=1 ctest -L '^kernel$(if $(KERNEL),-$(KERNEL))$$' -j $(KREPLAY_JOBS) --output-on-failure --timeout 600
