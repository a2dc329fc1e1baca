# pcnode — `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
BUF   := $(GO) tool buf
PKGS  := ./...
# go-nvml's C headers mark functions deprecated; building needs cgo (NVML is
# loaded with dlopen at run time, so no driver is needed to build or test).
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: help build generate check lint vet fmt test test-unit bench deps-check tidy-check clean

help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build pcnoded and pcnode-cli into bin/
	$(GO) build -ldflags "-X github.com/pcnode/pcnode/daemon.Version=$(VERSION)" -o bin/ ./cmd/...

generate: ## regenerate Go stubs from proto/ with the tool versions pinned in go.mod
	$(BUF) format -w
	$(BUF) generate

lint: ## buf lint + buf format check
	$(BUF) lint
	@out=$$($(BUF) format -d); if [ -n "$$out" ]; then echo "$$out"; echo "buf format: run make generate"; exit 1; fi

fmt: ## fail if gofmt would change anything
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet: ## go vet
	$(GO) vet $(PKGS)

deps-check: ## enforce the one-way dependency rules of DESIGN.md
	@./deploy/dev/deps-check.sh

tidy-check: ## fail if go.mod/go.sum are not tidy
	@$(GO) mod tidy -diff >/dev/null || { $(GO) mod tidy -diff; echo "run go mod tidy"; exit 1; }

check: lint fmt vet deps-check tidy-check ## every static gate CI runs; fails if regenerating changes anything
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	  cp -r proto $$tmp/before; $(BUF) generate; \
	  if ! diff -r $$tmp/before proto >/dev/null; then diff -r $$tmp/before proto | head -40; echo "generated code is stale: run make generate and commit"; exit 1; fi

test-unit: ## unit tests only (plain Go, no root, no containerd)
	$(GO) test -race $(PKGS)

test: ## the full suite: installs containerd+runc if missing, starts a private containerd, runs every test with -race and the fuzz targets briefly (env: FUZZTIME=5s GOTEST_TIMEOUT=15m GOTEST_FLAGS= GOTEST_PKGS=)
	./deploy/dev/test.sh

bench: ## benchmarks, once each, against a private containerd (needs root): prints pcnoded's submit→exit next to ctr run --rm and their ratio
	./deploy/dev/test.sh bench

clean: ## remove build outputs
	rm -rf bin .tmp
