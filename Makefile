GO ?= go
BIN := bin/orchard

.PHONY: build run test bench gobench fuzz vet fmt clean

build:
	$(GO) build -o $(BIN) ./cmd/orchard

# Runs the server on its embedded defaults: data in ./orchard-data, HTTPS on :8443.
run: build
	./$(BIN) serve

# The whole test suite (fuzz targets run their seed corpus). The PostgreSQL
# tests start their own throwaway server from Debian's postgresql package,
# which the script installs when missing (as root).
test:
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
