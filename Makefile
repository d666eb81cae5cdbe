# storegate. The two commands a new engineer needs are `make demo` and
# `make test`; everything else the build needs is pinned in go.mod (`tool`
# lines) and run with `go tool`.

GO       ?= go
BIN      ?= bin
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.Version=$(VERSION)
FUZZTIME ?= 60s

BENCHFLAGS ?=

.PHONY: all build test demo bench proto proto-check lint fuzz clean

all: build

## build: the binaries, into ./bin
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

## test: vet and the whole test suite under the race detector
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 9m ./...

## demo: run the gateway end to end on embedded defaults in a temporary folder
demo: build
	$(BIN)/storegate-demo --bin $(BIN)

## bench: storegate against the machine's limits, in one run of a few
## minutes: a table on stdout, the figures in bench-results/bench.json
bench:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/storegated ./cmd/storegate-bench
	$(BIN)/storegate-bench --storegated $(BIN)/storegated --out bench-results/bench.json $(BENCHFLAGS)

## proto: regenerate the committed gRPC code from proto/ with the pinned tools
proto:
	cd proto && $(GO) tool buf lint && $(GO) tool buf generate

## proto-check: fail when the committed generated code is stale
proto-check:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(GO) tool buf lint proto && \
	$(GO) tool buf generate proto --template proto/buf.gen.yaml -o "$$tmp" && \
	diff -r -x '*.proto' "$$tmp/storegate" proto/storegate && \
	echo "generated code is up to date"

## lint: formatting, vet, tidy modules and fresh generated code
lint: proto-check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff

## fuzz: run every Fuzz target for FUZZTIME each (make test runs their seed corpora)
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t ($(FUZZTIME))"; \
	    $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf $(BIN)
