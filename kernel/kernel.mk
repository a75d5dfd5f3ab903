# cmacheck kreplay: make fragment for the top-level Makefile (include kernel/kernel.mk).
#   make kernel [KERNEL=6.1|6.12]        build bzImage, module, agents, base initramfs into
#                                        build/kernel-$(KERNEL)/ (cached; default 6.1)
#   make kernel KERNEL_FAULT=NAME        also the kernel with kernel/faults/NAME.patch (kfuzz's
#                                        kernel zoo; incremental from the cached tree)
#   make kernel KERNEL_SRC=DIR           your own kernel tree, into build/kernel-$(KERNEL)-src/
#                                        (then KREPLAY_BUILD_DIR=build/kernel-$(KERNEL)-src
#                                        cmacheck kreplay|kfuzz ...)
#   make kernel-zoo                      the kfuzz kernel-zoo test: on the stock kernel kfuzz
#                                        finds nothing, on busy-resume-past-window
#                                        it finds the bug (ctest -L kernel-zoo)
#   make kernel-test [KERNEL=...]        build, then run the kernel/experiments scripts on it
#   make kernel-check [KERNEL=...]       build what is missing (the dev build of cmacheck, the
#                                        kernels), then replay every corpus/kernel/*.trace on
#                                        each kernel and compare with the model (`ctest -L
#                                        kernel` in build/dev; docs/kernel-crosscheck.md).
#                                        Without KERNEL: both kernels; with it: that one only.
KREPLAY_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
KREPLAY_JOBS ?= $(or $(JOBS),$(shell nproc))
KREPLAY_KERNELS := 6.1 6.12

# The same fault as kreplay/CMakeLists.txt CMACHECK_KERNEL_ZOO_FAULT.
KERNEL_ZOO_FAULT := busy-resume-past-window

.PHONY: kernel kernel-test kernel-check kernel-zoo
kernel:
	@bash $(KREPLAY_DIR)/build.sh --kernel $(or $(KERNEL),6.1) $(if $(KERNEL_FAULT),--fault $(KERNEL_FAULT)) $(if $(KERNEL_SRC),--src $(KERNEL_SRC))

kernel-test: kernel
	@KERNEL=$(or $(KERNEL),6.1) bash $(KREPLAY_DIR)/test.sh

# CMACHECK_KERNEL_REQUIRED=1: a missing kernel build fails the tests instead of skipping them.
kernel-check: build
	@for k in $(or $(KERNEL),$(KREPLAY_KERNELS)); do bash $(KREPLAY_DIR)/build.sh --kernel $$k || exit 1; done
	@cd build/dev && CMACHECK_KERNEL_REQUIRED=1 ctest -L '^kernel$(if $(KERNEL),-$(KERNEL))$$' -j $(KREPLAY_JOBS) --output-on-failure --timeout 600

# kfuzz on Linux 6.1: ~30 s on the stock kernel (must find nothing), then on the kernel with
# kernel/faults/$(KERNEL_ZOO_FAULT).patch (must find it); the fault's build is incremental.
kernel-zoo: build
	@bash $(KREPLAY_DIR)/build.sh --kernel 6.1 --fault $(KERNEL_ZOO_FAULT)
	@cd build/dev && CMACHECK_KERNEL_REQUIRED=1 ctest -L '^kernel-zoo$$' --output-on-failure --timeout 900
