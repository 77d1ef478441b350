GO ?= go
BIN := bin/orchard

# Stamped into `orchard version`, /healthz and the start log; without them the
# binary falls back to the build info the Go toolchain embeds.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
VPKG := github.com/orchardmdm/orchard/internal/version
LDFLAGS := -X $(VPKG).version=$(VERSION) -X $(VPKG).commit=$(COMMIT) -X $(VPKG).date=$(BUILD_DATE)

.PHONY: build run demo test bench gobench fuzz vet fmt clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/orchard

# Runs the server on its embedded defaults: data in ./orchard-data, HTTPS on :8443.
run: build
	./$(BIN) serve

# Orchard with a fake APNs and simulated devices on a temporary data dir.
demo: build
	./$(BIN) demo

# The whole test suite (fuzz targets run their seed corpus); .ci/setup
# installs systemd-analyze for the unit's test and chromium for the browser
# tests (internal/browsertest; they fail without it) when root and missing. The
# PostgreSQL tests start their own throwaway server from Debian's postgresql
# package, which ensure-postgres.sh installs when missing (as root).
test:
	./.ci/setup
	./scripts/ensure-postgres.sh
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# Side-by-side load benchmark against NanoMDM on loopback; writes BENCHMARKS.md.
bench:
	GO=$(GO) ./bench/run.sh

# Go benchmarks of the hot paths.
gobench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
