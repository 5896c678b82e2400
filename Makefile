# opkit build, test and lint targets. `make test` is what CI runs.
GO ?= go
STATICCHECK_VERSION ?= v0.8.2
TEST_TIMEOUT ?= 25m
BIN ?= bin/opkit

.PHONY: build test test-main test-compat lint bench fmt bench-da bench-interop bench-collector bench-node bench-derive bench-batcher soak

build:
	$(GO) build -o $(BIN) ./cmd/opkit

# The whole suite: the main module with the race detector, then the compat module that
# runs opkit against the OP Stack's own components.
test: test-main test-compat

test-main:
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...

# Each module under compat/ pins the OP Stack release (and op-geth) it tests against.
COMPAT_MODULES = $(patsubst %/go.mod,%,$(shell find compat -name go.mod 2>/dev/null | sort))

test-compat:
	@set -e; for m in $(COMPAT_MODULES); do echo "== $$m"; (cd $$m && $(GO) test -timeout $(TEST_TIMEOUT) ./...); done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	@set -e; for m in $(COMPAT_MODULES); do (cd $$m && $(GO) vet ./... && $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...); done

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# opkit da-server against op-alt-da's reference da-server, side by side, driven by the
# stock op-alt-da client (docs/altda.md, Benchmarks).
bench-da:
	cd compat && $(GO) test -run '^$$' -bench BenchmarkDAServers -benchtime 1x -timeout 30m ./altda/

# Event -> promotion latency: opkit's supervisor side by side with op-supervisor's syncnode path.
bench-interop:
	cd compat/interop && $(GO) test -run '^$$' -bench 'BenchmarkInteropDevnet|BenchmarkPromotionLatency' -benchtime 1x -timeout 15m .

# Collector: collection rate at 150 txs a block, store vs archive bytes, debug_dbGet
# latency against the execution client's own (docs/collector.md, Benchmarks).
bench-collector:
	$(GO) test -run '^$$' -bench BenchmarkCollector -benchtime 1x -timeout 20m ./collector/

# Block-building latency on op-geth: forkchoice with attributes -> getPayload -> newPayload ->
# forkchoice, 500 blocks, empty and with 100 transactions (docs/node.md, Benchmarks).
bench-node:
	$(GO) test -run '^$$' -bench BlockBuilding -benchtime 1x -count 3 ./rollup/engine

# Derivation catch-up: an opkit verifier and op-node v1.16.13, each in its own process on a
# fresh op-geth, over one dev L1 holding 2,000 L2 blocks of 50 transactions in blobs;
# alternating, 2 rounds each (docs/BENCHMARKS.md, Derivation).
bench-derive:
	cd compat && $(GO) test -v -run '^$$' -bench BenchmarkDerive -benchtime 1x -timeout 90m ./bench/

# Batch submission: opkit batcher and op-batcher v1.16.13, each in its own process, posting
# the same 2,000-block L2 chain in blobs to a fresh dev L1 per run; alternating, 2 runs
# each (docs/BENCHMARKS.md, Batcher).
bench-batcher:
	cd compat && $(GO) test -v -run '^$$' -bench BenchmarkBatcher -benchtime 1x -timeout 120m ./bench/

# A 30-minute soak of the whole devnet at 100 transactions per L2 block: memory, disk and
# safe lag sampled every 30 s into docs/soak.csv and docs/soak.svg (docs/BENCHMARKS.md).
# Not part of `make test`. OPKIT_SOAK_DURATION, OPKIT_SOAK_EVERY and OPKIT_SOAK_LOAD
# change its length, sampling period and load.
soak:
	$(GO) test -tags soak -run TestSoak -v -timeout 60m ./devnet/
