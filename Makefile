# pcnode — `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
BUF   := $(GO) tool buf
PKGS  := ./...
# go-nvml's C headers mark functions deprecated; building needs cgo (NVML is
# loaded with dlopen at run time, so no driver is needed to build or test).
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The Python venv (pinned client/python/requirements-dev.txt); prints its path.
PYENV := ./deploy/dev/pyenv.sh
PYSRC := client/python/src

# pygen writes the generated Python side into $(1) (a src directory): the
# pcnode/v1 stubs from proto/ with the grpcio-tools pinned in the venv, and
# pcnode/kaapana/schema/ as a byte copy of daemon/spec/schema/*.json.
define pygen
	venv=$$($(PYENV)) && py=$$venv/bin/python && \
	wk=$$($$py -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))') && \
	rm -rf $(1)/pcnode/v1 && mkdir -p $(1)/pcnode/v1 $(1)/pcnode/kaapana/schema && \
	$$py -m grpc_tools.protoc -I proto -I "$$wk" --python_out=$(1) --grpc_python_out=$(1) --pyi_out=$(1) proto/pcnode/v1/*.proto && \
	printf '"""Generated gRPC stubs of pcnode.v1 (make generate; do not edit)."""\n' >$(1)/pcnode/v1/__init__.py && \
	rm -f $(1)/pcnode/kaapana/schema/*.json && cp daemon/spec/schema/*.json $(1)/pcnode/kaapana/schema/
endef

.PHONY: help build generate generate-python check check-python lint vet fmt test test-unit bench deps-check tidy-check clean

help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build pcnoded, pcnode-logd, pcnode-cli and pcnode-schema into bin/
	$(GO) build -ldflags "-X github.com/pcnode/pcnode/daemon.Version=$(VERSION)" -o bin/ ./cmd/pcnoded
	@# The others need no C: static, they start without the dynamic loader
	@# and libc (a pcnode-cli process costs 20 % less CPU).
	CGO_ENABLED=0 $(GO) build -ldflags "-X github.com/pcnode/pcnode/daemon.Version=$(VERSION)" -o bin/ ./cmd/pcnode-logd ./cmd/pcnode-cli ./cmd/pcnode-schema

generate: ## regenerate Go and Python stubs from proto/ (tools pinned in go.mod and requirements-dev.txt) and the Python schema copy
	$(BUF) format -w
	$(BUF) generate
	@$(MAKE) --no-print-directory generate-python

generate-python: ## only the Python side of generate: client/python/src/pcnode/v1 and pcnode/kaapana/schema
	@$(call pygen,$(PYSRC))

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

check: lint fmt vet deps-check tidy-check check-python ## every static gate CI runs; fails if regenerating changes anything
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	  cp -r proto $$tmp/before; $(BUF) generate; \
	  if ! diff -r $$tmp/before proto >/dev/null; then diff -r $$tmp/before proto | head -40; echo "generated code is stale: run make generate and commit"; exit 1; fi

check-python: ## Python gates: generated stubs and schema copy up to date, ruff check, mypy (in the venv of deploy/dev/pyenv.sh)
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	  $(call pygen,$$tmp) || exit 1; \
	  for d in pcnode/v1 pcnode/kaapana/schema; do \
	    if ! diff -r -x __pycache__ $$tmp/$$d $(PYSRC)/$$d >/dev/null 2>&1; then \
	      diff -r -x __pycache__ $$tmp/$$d $(PYSRC)/$$d | head -40; echo "$(PYSRC)/$$d is stale: run make generate and commit"; exit 1; fi; \
	  done
	@venv=$$($(PYENV)) && cd client/python && "$$venv/bin/ruff" check . && "$$venv/bin/ruff" format --check . && "$$venv/bin/mypy"

test-unit: ## unit tests only (plain Go, no root, no containerd)
	$(GO) test -race $(PKGS)

test: ## the full suite: installs containerd+runc if missing, starts a private containerd, runs every test with -race and the fuzz targets briefly (env: FUZZTIME=5s GOTEST_TIMEOUT=15m GOTEST_FLAGS= GOTEST_PKGS=)
	./deploy/dev/test.sh

bench: ## benchmarks, once each, against a private containerd (needs root): prints pcnoded's submit→exit next to ctr run --rm and their ratio
	./deploy/dev/test.sh bench

clean: ## remove build outputs (and the Python venv in .tmp/venv)
	rm -rf bin .tmp
