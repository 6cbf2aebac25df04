# flowd — see README.md. Every target works on a fresh machine with Go and gcc (for cgo).
GO      ?= go
BIN     := bin/flowd
DB      ?= data/flowd.db
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: build run test lint bench clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/flowd

# Serves flows/ on 127.0.0.1:5678 with a demo OAuth2 token endpoint, so the token flow works
# at once: curl -s -X POST http://127.0.0.1:5678/webhook/token-refresh
run: build
	$(BIN) serve --addr 127.0.0.1:5678 --db $(DB) --flows flows --demo

test:
	$(GO) test -race -count=1 ./...

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
