# mirsubnet build and test targets. `make test` is what CI runs (.ci/run).
GO        ?= go
PKGS      := ./...
# Packages run under the race detector. The simulator is single-goroutine by
# design and runs without it (the race detector would only slow it down).
RACE_PKGS  = $(shell $(GO) list ./... | grep -v '/consensus/sim')
SIM_PKGS   = ./consensus/sim/...
FUZZTIME  ?= 30s
SEEDS     ?= 100000
BIN       := bin/mirsubnet

.PHONY: all build test test-race test-sim test-bugs lint fmt vet fuzz bench clean run sample sim-deep itest-long

all: build

build:
	$(GO) build -o $(BIN) ./cmd/mirsubnet

## test: the default test run (README, CI): vet, race tests, simulator, planted bugs.
test: vet test-race test-sim test-bugs

test-race:
	$(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)

test-sim:
	$(GO) test -count=1 -timeout 20m $(SIM_PKGS)

## test-bugs: the simulator must catch every deliberately planted protocol bug.
test-bugs:
	$(GO) test -tags mirbugs -count=1 -timeout 20m -run 'TestPlantedBugs' ./consensus/sim/isssim

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || (echo "gofmt needed:"; gofmt -l .; exit 1)
	$(GO) vet ./...
	$(GO) vet -tags mirbugs ./...

lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0 ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## fuzz: run every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for fn in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== fuzz $$pkg $$fn ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

## sim-deep: the long simulator run (SEEDS random seeds).
sim-deep:
	$(GO) test -count=1 -timeout 0 -run 'TestRandomSeeds|TestTwins' ./consensus/sim/isssim -seeds=$(SEEDS)

## run: a local subnet of 4 validator processes with a light load, until Ctrl-C.
run: build
	$(BIN) testnet --nodes 4

## sample: the sample protocol in one process, its event logs, and a replay of them.
sample: build
	rm -rf run/eventlog
	$(BIN) sample --nodes 4 --broadcasts 100 --eventlog run/eventlog
	$(BIN) mircat replay --modules rbc run/eventlog

clean:
	rm -rf bin
	$(GO) clean -testcache
