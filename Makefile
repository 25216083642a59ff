# SPDX-License-Identifier: MIT
# The user's interface to the libio tree. See README.md.
#
#   make            build everything (library, tools, tests, benchmarks)
#   make check      install dependencies, build, run every test suite
#   make demo       show the stack working, in the test VM
#   make bench      benchmarks natively and in the test VM; BUILD/bench/report.md
#   make deps       install build and test dependencies (Debian 12/13, as root)
#   make check-upgrade  upgrades in the test VM: ours (0.1.0 to now), a kernel's
#                   (6.1 to 6.12), Debian 12 to 13 (opt-in, not in check)
#   make check-kernel-debug  iocard.ko under a KASAN/lockdep/UBSAN kernel built
#                   from Debian's source (opt-in, not in check; ~1 h the first time)
#
# Every target works as the first command on a fresh machine: each installs
# what is missing first (debian/deps.sh --if-missing is quick when nothing is).
#   make deb        build the Debian packages into $(DEB_DIR) and lintian them
#   make update-abi rewrite libio1's ABI record (debian/libio1.abi.xz) from the
#                   build: only with a soname bump (debian/abi-check)

BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
CTEST_ARGS ?=
DEB_DIR    ?= $(BUILD)/deb

.PHONY: all deps deps-if-missing configure check check-native check-asan check-vm check-kernel-debug check-upgrade \
	demo bench deb update-abi clean

all: deps-if-missing configure
	cmake --build $(BUILD) -j $(JOBS)

deps:
	debian/deps.sh

deps-if-missing:
	@debian/deps.sh --if-missing

configure: $(BUILD)/build.ninja
$(BUILD)/build.ninja: | deps-if-missing
	cmake -S . -B $(BUILD) -G Ninja -DLIBIO_WERROR=ON $(CMAKE_ARGS)

$(BUILD_ASAN)/build.ninja:
	cmake -S . -B $(BUILD_ASAN) -G Ninja -DLIBIO_WERROR=ON -DLIBIO_SANITIZE=ON \
		-DLIBIO_VM_TESTS=OFF -DLIBIO_KMOD=OFF -DCMAKE_BUILD_TYPE=Debug $(CMAKE_ARGS)

# Every suite runs even when an earlier one failed; the status is the worst.
check: deps
	@echo "== the build, then the one under ASan+UBSan [$$(date +%T)]"
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory $(BUILD_ASAN)/build.ninja
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	@rc=0; \
	echo "== native suites under ASan+UBSan (labels unit, native) [$$(date +%T)]"; \
	ctest --test-dir $(BUILD_ASAN) -L 'unit|native' --output-on-failure -j $(JOBS) $(CTEST_ARGS) || rc=1; \
	echo "== every suite (labels unit, native, vm, deb; upgrade is make check-upgrade) [$$(date +%T)]"; \
	ctest --test-dir $(BUILD) -LE upgrade --output-on-failure -j $(JOBS) $(CTEST_ARGS) || rc=1; \
	echo "== test VM runs (logs in $(BUILD)/tests/vm/logs) [$$(date +%T)]"; \
	for f in $(BUILD)/tests/vm/logs/*/summary.log; do \
		[ -e "$$f" ] && sed "s|^|  $$(basename $$(dirname $$f)): |" "$$f"; \
	done; \
	exit $$rc

check-vm: all
	ctest --test-dir $(BUILD) -L vm -LE upgrade --output-on-failure $(CTEST_ARGS)

# The upgrade tests (tests/vm/upgrade-test; their times are in README.md).
check-upgrade: deps-if-missing configure
	ctest --test-dir $(BUILD) -L upgrade --output-on-failure $(CTEST_ARGS)

# The debug kernel (built once, cached in ~/.cache/libio), iocard.ko for it
# in $(BUILD_DEBUG), smoke + sysfs fuzzer in one boot, the PCI suite + fuzzer
# in a second (tests/vm/check-kernel-debug).
BUILD_DEBUG   ?= build-debug
DEBUG_KERNELS ?= 6.12-debug
check-kernel-debug: deps
	@$(MAKE) --no-print-directory all
	DEBUG_KERNELS="$(DEBUG_KERNELS)" tests/vm/check-kernel-debug $(BUILD) $(BUILD_DEBUG)

# Only what the demo boots: iotool, iogate and iocard.ko for its kernels.
DEMO_KERNELS ?= 6.12
demo: deps-if-missing configure
	cmake --build $(BUILD) -j $(JOBS) --target iotool iogate $(addprefix kmod-,$(DEMO_KERNELS))
	DEMO_KERNELS="$(DEMO_KERNELS)" tests/vm/demo $(BUILD)

# dpkg-buildpackage -us -uc -b on a copy of the tree; .debs and lintian's verdict in $(DEB_DIR).
deb: deps-if-missing
	DEB_BUILD_OPTIONS="parallel=$(JOBS) $(DEB_BUILD_OPTIONS)" debian/build-debs $(DEB_DIR)

bench: all
	bench/run $(BUILD)

update-abi: all
	debian/abi-check update $$(readlink -f $(BUILD)/libio/libio.so) libio/include

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
