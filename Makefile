# flowd — see README.md. Every target works on a fresh machine with Go and gcc (for cgo).
GO      ?= go
BIN     := bin/flowd
DB      ?= data/flowd.db
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: build run test fuzz lint bench clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/flowd

# Serves flows/ on 127.0.0.1:5678 with a demo OAuth2 token endpoint, so the token flow works
# at once: curl -s -X POST http://127.0.0.1:5678/webhook/token-refresh
run: build
	$(BIN) serve --addr 127.0.0.1:5678 --db $(DB) --flows flows --demo

# The browser tests save screenshots of every page; the folder is printed at the end. The
# fuzz targets' seed corpora run as tests there; then each target fuzzes for FUZZTIME. The
# PostgreSQL tests start a throw-away server from the installed binaries (initdb on PATH,
# /usr/lib/postgresql/*/bin, or FLOWD_PG_BIN); without them they skip, unless CI is set.
test:
	@shots="$${FLOWD_SCREENSHOTS:-$$(mktemp -d "$${TMPDIR:-/tmp}/flowd-screenshots-XXXXXX")}"; \
	FLOWD_SCREENSHOTS="$$shots" $(GO) test -race -count=1 ./...; code=$$?; \
	echo "UI screenshots from the browser tests: $$shots"; exit $$code
	$(MAKE) fuzz

# Runs every Fuzz target of the packages with a fuzz_test.go, one after another, FUZZTIME each
# (go test -fuzz takes one target at a time). Longer hunts: make fuzz FUZZTIME=3m. A failing
# input is saved under the package's testdata/fuzz/<Target>/; commit it with the fix.
FUZZTIME ?= 4s
FUZZ_PKGS := $(patsubst %/fuzz_test.go,./%,$(wildcard */fuzz_test.go))

fuzz:
	@set -e; for pkg in $(FUZZ_PKGS); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$target for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Go benchmarks, then the end-to-end load test (cmd/flowd-bench, about 4 minutes on 2 cores;
# run it on an otherwise idle machine). Results, and a CPU profile of flowd at concurrency 64,
# go to $(BENCH_OUT). BENCH_FLAGS=-quick makes a smoke run of the load test.
BENCH_OUT   ?= bin/bench
BENCH_FLAGS ?=
bench:
	@mkdir -p $(BENCH_OUT)
	$(GO) test -run '^$$' -bench . -benchmem ./... 2>&1 | tee $(BENCH_OUT)/go-bench.txt; ! grep -q '^FAIL' $(BENCH_OUT)/go-bench.txt
	$(GO) run ./cmd/flowd-bench -out $(BENCH_OUT)/e2e.md -cpuprofile $(BENCH_OUT)/flowd-c64.pprof $(BENCH_FLAGS)

clean:
	rm -rf bin
