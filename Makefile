# mkosi-sandbox: static musl builds, tests, demo and benchmarks.

TARGET  ?= x86_64-unknown-linux-musl
ARM     := aarch64-unknown-linux-musl
BIN     := target/$(TARGET)/release/mkosi-sandbox
ARM_BIN := target/$(ARM)/release/mkosi-sandbox
CARGO   ?= cargo
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)

# Installation directories (GNU conventions; DESTDIR for staged installs).
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
DATADIR     ?= $(PREFIX)/share
MANDIR      ?= $(DATADIR)/man
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
# Release tarballs are dated by SOURCE_DATE_EPOCH, else by the last commit (looked up only when
# needed: on a fresh machine git may arrive with the suite that needs it).
DIST_EPOCH = $(or $(SOURCE_DATE_EPOCH),$(shell git log -1 --format=%ct 2>/dev/null))
# Installs what a suite needs (tests/prereqs.list) or prints one SKIP line, then runs it.
SUITE   := tests/prereqs.sh

.PHONY: all build aarch64 targets check test unit e2e cross-smoke differential fuzz fuzz-short proptest \
	initramfs test-mkosi demo bench bench-mkosi clean initramfs-aarch64 install-test reproducible \
	where-it-runs test-pmbootstrap bench-pmbootstrap \
	install uninstall dist
.PHONY: lib lib-aarch64 test-lib bench-lib install-lib uninstall-lib

all: build

build: targets
	$(CARGO) build --release --target $(TARGET)
	@ls -l $(BIN)

aarch64: targets
	$(CARGO) build --release --target $(ARM)

# Add the musl targets when rustup lacks them (a toolchain without rustup must have them).
targets:
	@command -v rustup >/dev/null || exit 0; for t in $(TARGET) $(ARM); do \
		rustup target list --installed | grep -qx $$t || rustup target add $$t; \
	done

unit:
	$(CARGO) test --lib

# The gate that needs neither root nor network: format, lints (warnings are errors; the unsafe
# lints are in Cargo.toml), documentation, unit tests, and the module layering.
check:
	@$(SUITE) check
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy -p mkosi-sandbox-ffi -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --document-private-items
	$(CARGO) test --lib
	bash tests/layers.sh

# Property tests (src/proptests.rs): parse → plan → prepare in-process over generated argv and
# environments. `make check` runs 100 cases per property from a fixed seed; this runs
# PROPTEST_CASES per property from PROPTEST_RNG_SEED (default: the time, printed), one property at
# a time, bounded in time and memory (each case leaks its inputs: the stages take them 'static).
PROPTEST_CASES ?= 5000
ifndef PROPTEST_RNG_SEED
PROPTEST_RNG_SEED := $(shell date +%s)
endif
proptest:
	$(CARGO) test --lib --no-run
	@echo "proptest: $(PROPTEST_CASES) cases per property, seed $(PROPTEST_RNG_SEED)"
	ulimit -v 4194304 && PROPTEST_CASES=$(PROPTEST_CASES) PROPTEST_RNG_SEED=$(PROPTEST_RNG_SEED) \
		timeout 1200 $(CARGO) test --lib proptests -- --test-threads=1

# End-to-end tests run the static binary for real (root, and nobody via setpriv).
e2e: build
	$(SUITE) e2e -- env MKOSI_SANDBOX=$(abspath $(BIN)) $(CARGO) test --test '*'

# The aarch64 build links and runs (under qemu-user when not on aarch64).
cross-smoke: aarch64
	$(SUITE) cross-smoke -- sh tests/cross-smoke.sh $(ARM_BIN)

# The same command lines under the Python original (fetched from Debian) and this binary.
differential: build
	$(SUITE) differential -- bash tests/differential.sh $(BIN)

# Random command lines under both (tests/fuzz.py); a short fixed-seed run is part of `make test`.
FUZZ_CASES ?= 5000
FUZZ_SEED  ?= $(shell date +%s)
fuzz: build
	$(SUITE) fuzz -- python3 tests/fuzz.py $(BIN) --cases $(FUZZ_CASES) --seed $(FUZZ_SEED)

fuzz-short: build
	$(SUITE) fuzz -- python3 tests/fuzz.py $(BIN) --cases 150 --seed 12

# Debian's kernels under qemu, the whole matrix (x86_64: bullseye's 5.10, bookworm's 6.1, trixie's
# 6.12, sid's; aarch64: bookworm's and sid's), each booted twice: an initramfs (pivot_root()
# fails, MS_MOVE fallback), then a tmpfs root. Booted one per core at a time, the six add under a
# minute to `make test` on a 2-core machine over the two kernels it booted before.
initramfs: build
	$(SUITE) initramfs -- bash tests/initramfs.sh x86_64 $(BIN)

initramfs-aarch64: aarch64
	$(SUITE) initramfs-aarch64 -- bash tests/initramfs.sh aarch64 $(ARM_BIN)

# README's "Where it runs" table from the suites' own rows: every kernel of the matrix and the
# confined environments on the host (root).
WHERE_ROWS := $(abspath target/where-it-runs.tsv)
where-it-runs: build aarch64
	rm -f $(WHERE_ROWS)
	WHERE_IT_RUNS=$(WHERE_ROWS) $(SUITE) initramfs -- bash tests/initramfs.sh x86_64 $(BIN)
	WHERE_IT_RUNS=$(WHERE_ROWS) $(SUITE) initramfs-aarch64 -- bash tests/initramfs.sh aarch64 $(ARM_BIN)
	WHERE_IT_RUNS=$(WHERE_ROWS) MKOSI_SANDBOX=$(abspath $(BIN)) $(CARGO) test --test confined -- --test-threads=1
	sh tools/where-it-runs.sh $(WHERE_ROWS) README.md

# Two clean clones in different directories give the same `make dist` bytes.
reproducible:
	$(SUITE) dist -- bash tests/reproducible.sh

# make install/uninstall into a scratch DESTDIR.
install-test: build
	sh tests/install.sh

test: unit e2e cross-smoke differential fuzz-short initramfs initramfs-aarch64 install-test reproducible

install: build install-lib
	install -D -m 755 $(BIN) $(DESTDIR)$(BINDIR)/mkosi-sandbox
	install -D -m 644 doc/mkosi-sandbox.1 $(DESTDIR)$(MANDIR)/man1/mkosi-sandbox.1
	install -D -m 644 completions/bash/mkosi-sandbox $(DESTDIR)$(BASHCOMPDIR)/mkosi-sandbox

uninstall: uninstall-lib
	rm -f $(DESTDIR)$(BINDIR)/mkosi-sandbox $(DESTDIR)$(MANDIR)/man1/mkosi-sandbox.1 \
		$(DESTDIR)$(BASHCOMPDIR)/mkosi-sandbox

# dist/mkosi-sandbox-VERSION-{x86_64,aarch64}.tar.gz: binary, man page, completion, licence, sums.
dist: build aarch64
	rm -rf dist
	SOURCE_DATE_EPOCH=$(DIST_EPOCH) sh tools/dist.sh $(VERSION) dist x86_64=$(BIN) aarch64=$(ARM_BIN)

# Real clients: mkosi 25.3 and 27.1 (Debian packages) build the same image with their own sandbox
# and through this binary (contrib/mkosi/patch-mkosi); the images must be identical. Network, root.
test-mkosi: build lib
	$(SUITE) test-mkosi -- bash tests/mkosi.sh $(BIN) $(abspath target/lib/python)

# pmbootstrap (branch casey/unshare, ../shared's fixture) stock and entering its sandbox through
# this binary (contrib/pmbootstrap/patch-pmbootstrap), and through the library (make lib), root
# and a user with subordinate ranges.
test-pmbootstrap: build lib
	$(SUITE) test-pmbootstrap -- bash tests/pmbootstrap.sh $(BIN)

# pmbootstrap's start-up, stock (in-process sandbox) against re-run through this binary and the library.
bench-pmbootstrap: build lib
	$(SUITE) test-pmbootstrap -- bash bench/pmbootstrap.sh $(abspath $(BIN))

# A read-only /usr, /dev, /proc, mapped to root: what the sandbox looks like from inside.
demo: build
	$(BIN) --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib \
		--symlink usr/lib64 /lib64 --symlink usr/sbin /sbin --dev /dev --proc /proc \
		--tmpfs /tmp --dir /var/tmp --become-root -- \
		sh -c 'echo "# id"; id; echo "# ls -l /"; ls -l /; echo "# mounts"; cut -d" " -f5,6,9 /proc/self/mountinfo'

bench: build
	bash bench/run.sh $(abspath $(BIN))

# Those mkosi builds, interleaved: stock, stock without the package copy, through this binary.
bench-mkosi: build
	bash bench/mkosi.sh $(abspath $(BIN))

# The library (ffi/: the binary's stages applied to the calling process, a C ABI) for the host's
# glibc, its header, and the pure-Python module over it. target/lib/python on PYTHONPATH makes
# `import mkosi_sandbox` work (the .so is beside the module); lib-aarch64 cross-builds it.
LIB_TARGET ?= x86_64-unknown-linux-gnu
LIB_ARM    := aarch64-unknown-linux-gnu
LIB_SO     := target/$(LIB_TARGET)/release/libmkosi_sandbox_ffi.so
LIB_ARM_SO := target/$(LIB_ARM)/release/libmkosi_sandbox_ffi.so
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PYTHON     ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || command -v python3)
PYTHONDIR  ?= $(shell $(PYTHON) tools/pythondir.py $(PREFIX) 2>/dev/null)
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER ?= aarch64-linux-gnu-gcc

lib:
	@command -v rustup >/dev/null && { rustup target list --installed | grep -qx $(LIB_TARGET) || rustup target add $(LIB_TARGET); } || true
	$(CARGO) build --release -p mkosi-sandbox-ffi --target $(LIB_TARGET)
	rm -rf target/lib/python target/lib/include
	mkdir -p target/lib/python/mkosi_sandbox target/lib/include
	cp $(LIB_SO) target/lib/libmkosi-sandbox.so
	cp ffi/include/mkosi-sandbox.h target/lib/include/
	cp ffi/python/mkosi_sandbox/__init__.py target/lib/python/mkosi_sandbox/
	cp $(LIB_SO) target/lib/python/mkosi_sandbox/libmkosi-sandbox.so
	@ls -l target/lib/libmkosi-sandbox.so

lib-aarch64:
	$(SUITE) lib-aarch64 -- sh -c '$(CARGO) build --release -p mkosi-sandbox-ffi --target $(LIB_ARM) && \
		mkdir -p target/lib/aarch64 && cp $(LIB_ARM_SO) target/lib/aarch64/libmkosi-sandbox.so'

# Python children enter() the differential cases and are compared with the binary running the
# same probe (root and nobody); errors, refusals, signals, leaks; the aarch64 build under qemu.
test-lib: build lib lib-aarch64
	$(SUITE) test-lib -- $(PYTHON) tests/inprocess.py $(abspath $(BIN)) $(abspath target/lib)

# mkosi's two paths and pmbootstrap-style entry, per start (bench/inprocess.py).
bench-lib: build lib
	$(PYTHON) bench/inprocess.py $(abspath $(BIN)) $(abspath target/lib)

# The module finds the library through a link beside it.
install-lib: lib
	@test -n "$(PYTHONDIR)" || { echo "install: no python3 to ask where modules go: set PYTHONDIR"; exit 1; }
	install -D -m 644 target/lib/libmkosi-sandbox.so $(DESTDIR)$(LIBDIR)/libmkosi-sandbox.so
	install -D -m 644 ffi/include/mkosi-sandbox.h $(DESTDIR)$(INCLUDEDIR)/mkosi-sandbox.h
	install -D -m 644 ffi/python/mkosi_sandbox/__init__.py $(DESTDIR)$(PYTHONDIR)/mkosi_sandbox/__init__.py
	ln -sf $(LIBDIR)/libmkosi-sandbox.so $(DESTDIR)$(PYTHONDIR)/mkosi_sandbox/libmkosi-sandbox.so

uninstall-lib:
	rm -f $(DESTDIR)$(LIBDIR)/libmkosi-sandbox.so $(DESTDIR)$(INCLUDEDIR)/mkosi-sandbox.h \
		$(DESTDIR)$(PYTHONDIR)/mkosi_sandbox/__init__.py $(DESTDIR)$(PYTHONDIR)/mkosi_sandbox/libmkosi-sandbox.so
	-rmdir $(DESTDIR)$(PYTHONDIR)/mkosi_sandbox 2>/dev/null

clean:
	$(CARGO) clean
