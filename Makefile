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

# The browser tests save screenshots of every page; the folder is printed at the end.
test:
	@shots="$${FLOWD_SCREENSHOTS:-$$(mktemp -d "$${TMPDIR:-/tmp}/flowd-screenshots-XXXXXX")}"; \
	FLOWD_SCREENSHOTS="$$shots" $(GO) test -race -count=1 ./...; code=$$?; \
	echo "UI screenshots from the browser tests: $$shots"; exit $$code

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
