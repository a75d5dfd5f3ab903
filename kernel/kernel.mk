# cmacheck kreplay: make fragment for the top-level Makefile (include kernel/kernel.mk).
#   make kernel        build bzImage, module, agents, base initramfs into build/kernel/ (cached)
#   make kernel-test   build, then run the kernel/experiments scripts and check their results
KREPLAY_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

.PHONY: kernel kernel-test
kernel:
	@bash $(KREPLAY_DIR)/build.sh

kernel-test: kernel
	@bash $(KREPLAY_DIR)/test.sh
