# chezlepro.sovereign — build, test and package the collection.
# Every Go step runs from vendor/ with the network forbidden: the collection
# must build where the internet is cut.

SHELL       := /bin/bash
# Go: /usr/local/go when it is as new as go.mod asks, else the pinned
# toolchain tests/setup.sh fetches from the Go module proxy (make setup).
export GO_ROOT := $(shell tests/setup.sh --go-root)
GO             := $(GO_ROOT)/bin/go
export PATH    := $(GO_ROOT)/bin:$(PATH)
# The caller's proxy (go's default when unset), for that one fetch: the
# builds below run with GOPROXY off.
export CHEZLEPRO_GOPROXY := $(or $(GOPROXY),https://proxy.golang.org)
export GOFLAGS     := -mod=vendor
export GOPROXY     := off
export GOTOOLCHAIN := local
export CGO_ENABLED := 0

MODULES   := $(notdir $(patsubst %/main.go,%,$(wildcard modules/*/main.go)))
PLATFORMS := linux_amd64 linux_arm64
# In bin/, not plugins/modules/: ansible-doc and ansible-test would take them for modules.
BINARIES  := $(foreach m,$(MODULES),$(foreach p,$(PLATFORMS),bin/$(m)_$(p)))
GO_SRC    := $(shell find modules internal -name "*.go" -not -name "*_test.go" 2>/dev/null) go.mod go.sum $(wildcard vendor/modules.txt)
VERSION   := $(shell sed -n 's/^version: *//p' galaxy.yml)
TARBALL   := .build/chezlepro-sovereign-$(VERSION).tar.gz
# -buildid= and -trimpath make the bytes depend only on the sources.
LDFLAGS   := -s -w -buildid=

.PHONY: all build sizes faults collection setup setup-selftest check test lint unit fuzz build-check docs-check e2e package-check sanity lab-selftest bench \
        rules-check demo test-vm test-traefik test-rebuild test-arm64 vm-image lab-up lab-down vendor clean help

# make check: the offline part, minutes; make test: all CI runs (tests/run.sh
# counts every suite's checks into one closing line).
CHECK_SUITES := setup-selftest lint unit rules-check fuzz build-check docs-check package-check sanity
TEST_SUITES  := $(CHECK_SUITES) lab-selftest e2e test-traefik test-rebuild test-vm

all: build

help:
	@echo "make build        compile every module for $(PLATFORMS) (offline, from vendor/)"
	@echo "make setup        install what the tests need: missing Debian packages, Go when go.mod's is absent"
	@echo "make test         everything CI runs: make check, the lab's self-test, end-to-end, test-traefik, test-rebuild, test-vm"
	@echo "make check        the fast part: lint, unit tests, alert rules, fuzzing (short), build check, docs, packaging, ansible-test sanity"
	@echo "make rules-check  the monitoring alert rules, checked and unit-tested with promtool"
	@echo "make fuzz         Go fuzz targets of FUZZ_PKGS, FUZZTIME each (FUZZTIME=5m make fuzz for longer)"
	@echo "make bench        benchmarks (bench: lines)"
	@echo "make collection   build the installable tarball under .build/"
	@echo "make faults       binary_stage with its test-only fault hook, in a copy of the collection under .build/faults (e2e)"
	@echo "make demo         boot the lab and run the pipeline on it"
	@echo "make test-vm      create a real VM with libvirt, deploy and flip in it, delete it"
	@echo "make test-traefik Traefik from its source to zero-loss flips through the playbooks, with bench lines"
	@echo "make test-rebuild the offline kit: bundle, restore with no route out, rebuild to the same sha256, flip"
	@echo "make test-arm64   an arm64 lab host (qemu-user): the dispatch e2e and a flip on the arm64 binaries"
	@echo "make vm-image     build (once) the offline Debian 12 base image of the VMs on this machine"
	@echo "make lab-up       boot a 3-host lab for manual use (make lab-down to remove it)"

build: $(BINARIES) bin/SHA256SUMS sizes

setup:
	tests/setup.sh

# tests/setup.sh's decisions, offline (which Go, refusals, what apt is asked).
setup-selftest:
	tests/setup_selftest.sh

# The pinned toolchain, fetched once when /usr/local/go is missing or too old.
$(GO):
	tests/setup.sh go

# One rule per platform: the pattern splits NAME_GOOS_GOARCH.
define platform_rule
bin/%_$(1): $$(GO_SRC) | $$(GO)
	@mkdir -p $$(@D)
	GOOS=$$(word 1,$$(subst _, ,$(1))) GOARCH=$$(word 2,$$(subst _, ,$(1))) \
	  go build -trimpath -buildvcs=false -ldflags '$$(LDFLAGS)' -o $$@ ./modules/$$*
endef
$(foreach p,$(PLATFORMS),$(eval $(call platform_rule,$(p))))

# "SHA256 SIZE MTIME_NS NAME" per binary, packaged with them: the action
# plugin takes a binary's sha256 from here while its size and mtime still
# match, and hashes the binary itself otherwise (module_cache.py).
bin/SHA256SUMS: $(BINARIES)
	@for b in $(BINARIES); do \
	  printf '%s %s %s\n' "$$(sha256sum <$$b | cut -d' ' -f1)" "$$(stat -c '%s %.9Y' $$b | tr -d .)" "$$(basename $$b)" || exit 1; \
	done >$@.tmp && mv $@.tmp $@

# binary_stage with its test-only fault hook (-tags faults), for the e2e
# playbooks marked "# e2e: fault-enabled binaries" (tests/e2e/run.sh): in a
# copy of the collection under .build/faults whose bin/ holds it, for this
# machine's platform (the lab's), beside links to the other shipped binaries.
# The shipped bin/ never holds fault code.
FAULTS_COLLECTION := .build/faults/collections/ansible_collections/chezlepro/sovereign
faults: $(BINARIES) | $(GO)
	@mkdir -p $(FAULTS_COLLECTION)/bin
	@for e in *; do [ "$$e" = bin ] || ln -sfn "$(CURDIR)/$$e" $(FAULTS_COLLECTION)/; done
	@for b in $(filter-out bin/binary_stage_%,$(BINARIES)); do ln -sfn "$(CURDIR)/$$b" $(FAULTS_COLLECTION)/bin/; done
	go build -tags faults -trimpath -buildvcs=false -ldflags '$(LDFLAGS)' \
	  -o $(FAULTS_COLLECTION)/bin/binary_stage_linux_$$(go env GOARCH) ./modules/binary_stage

# From bin/SHA256SUMS, which has just hashed every binary.
sizes: bin/SHA256SUMS
	@while read -r sum size _ name; do printf 'size: %-48s %8d bytes  sha256=%s\n' "bin/$$name" "$$size" "$${sum:0:16}"; done <bin/SHA256SUMS

collection: $(TARBALL)

$(TARBALL): $(BINARIES) bin/SHA256SUMS galaxy.yml meta/runtime.yml $(shell find bin plugins roles playbooks -type f 2>/dev/null)
	@mkdir -p .build
	rm -f $(TARBALL)
	ansible-galaxy collection build --force --output-path .build .
	@ls -l $(TARBALL)

# For CI's 60 minutes, make test leaves out test-traefik's rebuild from an
# empty Go cache (330 s) and flips Traefik 10 times per strategy, not 20
# (TRAEFIK_REBUILD=1 TRAEFIK_FLIPS=20 make test does it all).
test:
	tests/setup.sh
	TRAEFIK_REBUILD=$${TRAEFIK_REBUILD:-0} TRAEFIK_FLIPS=$${TRAEFIK_FLIPS:-10} tests/run.sh $(TEST_SUITES)

check:
	tests/setup.sh check
	tests/run.sh $(CHECK_SUITES)

lint:
	tests/lint.sh

# ansible-test sanity (validate-modules and the rest), offline, from a
# scratch copy under .build/sanity (tests/sanity.sh), of 2.14 and 2.19.
sanity:
	tests/sanity.sh
	tests/sanity.sh --ansible 2.19

# Go native fuzzing: every Fuzz target of each package in FUZZ_PKGS runs for
# FUZZTIME on top of its committed seed corpus (testdata/fuzz/); make test
# keeps it short. A failure writes the input to testdata/fuzz/ to commit.
FUZZ_PKGS := ./modules/binary_stage ./modules/bluegreen_unit ./modules/source_build
FUZZTIME  ?= 5s
fuzz: | $(GO)
	@set -o pipefail; for pkg in $(FUZZ_PKGS); do \
	  for target in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz: $$pkg $$target for $(FUZZTIME)"; \
	    go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg 2>&1 | grep -v '^fuzz: elapsed: [0-9]*s, gathering' || exit 1; \
	  done; \
	done

unit: | $(GO)
	tests/unit.sh

# The monitoring role's alert rules, checked and unit-tested with promtool.
rules-check:
	tests/monitoring/check.sh

build-check: build
	tests/build_check.sh

docs-check: build
	tests/docs_check.sh $(MODULES)

package-check: collection
	tests/package_check.sh $(TARBALL) $(MODULES)

lab-selftest:
	tests/lab/selftest.sh

e2e: build
	tests/e2e/run.sh

bench: build
	tests/bench/run.sh

demo: build
	tests/demo.sh

# One real VM on libvirt (KVM when it works, else TCG): create, deploy
# blue/green inside it with the collection, flip, delete.
test-vm: build
	tests/vm/test-vm.sh

# Traefik's source (from the Go module proxy, once) mirrored, vendored,
# built offline twice (same sha256), deployed blue/green and flipped under
# load, against plain restarts: tests/e2e/traefik/pipeline_traefik.yml.
test-traefik: build
	tests/traefik/test-traefik.sh

# The offline kit end to end: the demo pipeline, bundle.yml, the lab
# destroyed, a fresh lab and a controller with no route out, restore.yml,
# every program rebuilt to the kit's sha256, a flip under load, status.
test-rebuild: build
	tests/rebuild/test-rebuild.sh

# One arm64 lab host (Debian 12 arm64 under qemu-user, through a binfmt_misc
# of its own user namespace): the dispatch e2e and a bluegreen_unit flip on
# the arm64 binaries. Not in make test: see tests/arm64/test-arm64.sh.
test-arm64: build
	tests/arm64/test-arm64.sh

# The VMs' Debian 12 base image (debootstrap from this machine's apt mirror),
# built once under /var/cache/chezlepro-vm/debian12; make test-vm builds it too.
vm-image:
	tests/vm/build-image.sh

lab-up:
	tests/lab/lab.sh up --name manual --hosts 3

lab-down:
	tests/lab/lab.sh down --name manual

# Run online, once, after changing go.mod: refreshes vendor/ for offline builds.
# env -u hands the module proxy setting back to go's own configuration.
vendor:
	env -u GOPROXY GOFLAGS=-mod=mod go mod tidy
	env -u GOPROXY GOFLAGS=-mod=mod go mod vendor

clean:
	rm -rf .build $(BINARIES)
