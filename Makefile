# opkit build, test and lint targets. `make test` is what CI runs.
GO ?= go
STATICCHECK_VERSION ?= v0.8.2
TEST_TIMEOUT ?= 25m
BIN ?= bin/opkit

.PHONY: build test test-main test-compat lint bench fmt

build:
	$(GO) build -o $(BIN) ./cmd/opkit

# The whole suite: the main module with the race detector, then the compat module that
# runs opkit against the OP Stack's own components.
test: test-main test-compat

test-main:
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...

test-compat:
	@if [ -f compat/go.mod ]; then cd compat && $(GO) test -timeout $(TEST_TIMEOUT) ./...; fi

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	@if [ -f compat/go.mod ]; then cd compat && $(GO) vet ./... && $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...; fi

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

fmt:
	gofmt -w $$(git ls-files '*.go')
