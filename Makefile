# storegate. The two commands a new engineer needs are `make demo` and
# `make test`; everything else the build needs is pinned in go.mod (`tool`
# lines) and run with `go tool`.

GO       ?= go
BIN      ?= bin
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.Version=$(VERSION)
FUZZTIME ?= 60s
DIST     ?= dist
# A Debian version: a release (1.2.3 or v1.2.3) as it is; anything else, such
# as a bare commit id from git describe, becomes 0.0.0~git<id>.
DEB_VERSION ?= $(shell echo '$(VERSION)' | sed -E '/^v?[0-9]+\.[0-9]/!s/^/0.0.0~git/; s/^v//')
DEB_ARCH    ?= $(shell $(GO) env GOARCH)

CRASH_KILLS ?= 500
POWER_CUTS ?= 500
POWER_TAGS ?=
BENCHFLAGS ?=

.PHONY: all build test test-pg demo package crashtest powertest bench proto proto-check lint fuzz clean

all: build

## build: the binaries, into ./bin
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

## test: vet and the whole test suite under the race detector
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 9m ./...

## test-pg: `make test` beside a throwaway PostgreSQL (initdb in a temporary
## folder, loopback, SERIALIZABLE by default), so the PostgreSQL tests run too
test-pg:
	scripts/with-postgres $(MAKE) test

## demo: run the gateway end to end on embedded defaults in a temporary folder
demo: build
	$(BIN)/storegate-demo --bin $(BIN)

## package: the Debian package (binaries, systemd unit, udev rule, example
## config, state directory) into $(DIST), built with the pinned nfpm
package: build
	@mkdir -p $(DIST)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	sed 's#$${STOREGATE_BIN}#$(abspath $(BIN))#' packaging/nfpm.yaml > "$$tmp/nfpm.yaml" && \
	STOREGATE_VERSION=$(DEB_VERSION) STOREGATE_ARCH=$(DEB_ARCH) \
	  $(GO) tool nfpm package --config "$$tmp/nfpm.yaml" --packager deb --target $(DIST)/

## crashtest: kill storegated CRASH_KILLS times (default 500) under eight POS
## lanes, take HQ down and up, then check that every approval is in HQ's books
## exactly once and the offline caps held (`make test` runs a 20-kill version)
crashtest: build
	$(BIN)/storegate-crash --bin $(BIN) --kills $(CRASH_KILLS)

## powertest: the power test: storegated and storegate-hq keep their data on
## lazy file systems that drop whatever was never synced; cut the power
## POWER_CUTS times (default 500) under eight POS lanes, HQ down and up, then
## the crash test's checks (`make test` runs a 12-cut version). Needs FUSE:
## /dev/fuse, and root or fusermount3. POWER_TAGS=powertest_nosync (or
## powertest_nodirsync) builds a storegated broken on purpose: it must fail.
powertest:
	$(GO) build -tags '$(POWER_TAGS)' -ldflags "$(LDFLAGS)" -o $(BIN)/powertest/ ./cmd/storegated ./cmd/storegate-hq ./cmd/storegate-crash
	$(BIN)/powertest/storegate-crash --bin $(BIN)/powertest --power-cuts $(POWER_CUTS)

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
	rm -rf $(BIN) $(DIST)
