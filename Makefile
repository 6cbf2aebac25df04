# flowd — see README.md. Every target works on a fresh machine with Go and gcc (for cgo).
GO      ?= go
BIN     := bin/flowd
DB      ?= data/flowd.db
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: build run test lint bench clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/flowd

# Runs the shipped token flow once against a throw-away local OAuth2 token endpoint and prints
# the run record; run it twice to see the stored token reused.
run: build
	$(BIN) run flows/token-refresh.json --db $(DB) --demo

test:
	$(GO) test -race -count=1 ./...

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
