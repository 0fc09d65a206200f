# Ogma. `make help` lists the targets. Every target installs what it needs.

# Tool versions.
STATICCHECK    := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOVULNCHECK    := golang.org/x/vuln/cmd/govulncheck@v1.9.0
# Debian packages: ClickHouse server (tests and `make run`), kcat (the
# librdkafka check of the embedded broker), protoc (make proto), strace (the
# broker crash tests place a kill -9 at an exact write with it).
DEBIAN_PACKAGES := clickhouse-server clickhouse-client kcat protobuf-compiler strace chromium

# `make build` and deploy/Dockerfile build the same static binary (a test
# compares the two).
GO_BUILD_FLAGS := -trimpath -ldflags=-s

SHELL       := /bin/bash
GO          ?= go
DATA_DIR    ?= .ogma
# More flags for `make run`, e.g. OGMA_ARGS='--clickhouse-db ogma_2'.
OGMA_ARGS   ?=
# Generated files must not depend on where the checkout is.
PROTOC_FLAGS = -I proto -I proto/third_party/googleapis -I proto/third_party/grpc-gateway -I /usr/include \
	--plugin=protoc-gen-go=$$($(GO) tool -n protoc-gen-go) \
	--plugin=protoc-gen-go-grpc=$$($(GO) tool -n protoc-gen-go-grpc) \
	--plugin=protoc-gen-grpc-gateway=$$($(GO) tool -n protoc-gen-grpc-gateway) \
	--plugin=protoc-gen-openapiv2=$$($(GO) tool -n protoc-gen-openapiv2) \
	--go_out=proto --go_opt=paths=source_relative \
	--go-grpc_out=proto --go-grpc_opt=paths=source_relative \
	--grpc-gateway_out=proto --grpc-gateway_opt=paths=source_relative \
	--openapiv2_out=proto --openapiv2_opt=json_names_for_fields=false,disable_default_errors=true

REKOR_URL   ?= http://127.0.0.1:3000


.PHONY: help deps clickhouse rekor-local rekor-local-stop build run test test-long crash-soak bench bench-all fuzz fuzz-corpus proto check-generated lint update-golden web-deps console

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

deps: ## install the Debian packages that are missing
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo ">> installing$$missing from Debian (usually 30-90 s; once per machine)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

clickhouse: deps ## start ClickHouse (data in $(DATA_DIR)/clickhouse) unless one answers on 127.0.0.1:9000
	@deploy/clickhouse-local.sh $(DATA_DIR)/clickhouse

rekor-local: ## build (once per machine, ~4 min) and start a real local Rekor (state in $(DATA_DIR)/rekor-local) unless one answers on :3000
	@deploy/rekor-local/rekor-local.sh start $(DATA_DIR)/rekor-local

rekor-local-stop: ## stop the local Rekor that rekor-local started
	@deploy/rekor-local/rekor-local.sh stop $(DATA_DIR)/rekor-local

build: ## build bin/ogma
	@if [ -x bin/ogma ]; then echo ">> building bin/ogma"; \
	else echo ">> building bin/ogma (the first build fetches and compiles every dependency: usually 1-3 min; later ones take seconds)"; fi
	@CGO_ENABLED=0 $(GO) build $(GO_BUILD_FLAGS) -o bin/ogma ./cmd/ogma

# When make started, for ogma dev's "healthy … after `make run` began".
RUN_STARTED := $(shell date +%s)

run: clickhouse rekor-local build ## run the whole system on embedded defaults (ogma dev), anchoring in the local Rekor
	@echo ">> ogma dev (Ctrl-C stops it; state stays in $(DATA_DIR)); the first start backfills 90 days of a simulated org"
	@OGMA_RUN_STARTED=$(RUN_STARTED) bin/ogma dev --data-dir $(DATA_DIR) --rekor-url $(REKOR_URL) $(OGMA_ARGS)

test: clickhouse rekor-local check-generated lint web-deps ## lint, then every test with -race (Rekor's against the local stack; the console's in Debian's chromium), the crash harness, then a short fuzz of each target
	@echo ">> go test -race ./..."
	@OGMA_TEST_REKOR_URL=$(REKOR_URL) $(GO) test -race -count=1 -timeout 30m ./...
	@echo ">> go test -run 'TestCrashHarness|TestRolesAsProcessesEqualDev' ./cmd/ogma (kill -9 over 100k records; the roles as processes; without -race, which would make them too slow)"
	@set -o pipefail; $(GO) test -count=1 -timeout 15m -run '^(TestCrashHarness|TestRolesAsProcessesEqualDev)$$' -v ./cmd/ogma | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|(crash|roles)_test.go'
	@$(MAKE) --no-print-directory fuzz

test-long: clickhouse rekor-local ## the tests, with their long runs (OGMA_LONG=1)
	@echo ">> go test -race (long)"
	@OGMA_TEST_REKOR_URL=$(REKOR_URL) OGMA_LONG=1 $(GO) test -race -count=1 -timeout 60m ./...
	@OGMA_LONG=1 $(GO) test -count=1 -timeout 60m -run '^TestCrashHarness$$' -v ./cmd/ogma

crash-soak: clickhouse ## the crash harness ten times in a row (about 15 minutes)
	@OGMA_CRASH_RUNS=10 $(GO) test -count=1 -timeout 40m -run '^TestCrashHarness$$' -v ./cmd/ogma | grep -E '^(=== RUN|\s*--- |ok|FAIL|PASS)|crash_test.go'

bench: clickhouse ## the benchmarks: one table of each figure beside its limit, measured in the same run
	@echo ">> go test -bench (several minutes; the raw output goes to stderr, the table to stdout)"
	@set -o pipefail; { \
		$(GO) test -run '^$$' -bench '^(BenchmarkProcessor|BenchmarkRestore)$$' -benchtime 5x ./pipeline/process && \
		$(GO) test -run '^$$' -bench '^BenchmarkEndToEnd$$' -benchtime 3x ./sinks/clickhouse && \
		$(GO) test -run '^$$' -bench '^(BenchmarkUsageQuery|BenchmarkConsoleScreens)$$' -benchtime 50x ./api && \
		$(GO) test -run '^$$' -bench '^BenchmarkBackfillToQueryable$$' -benchtime 1x -timeout 20m ./cmd/ogma && \
		$(GO) test -run '^$$' -bench '^BenchmarkProcess5MKeys$$' -benchtime 1x -timeout 30m ./pipeline/process && \
		$(GO) test -run '^$$' -bench '^BenchmarkVerify$$' -benchtime 5x ./sinks/rekor && \
		$(GO) test -run '^$$' -bench '^BenchmarkVerifyMillion$$' -benchtime 1x -timeout 20m ./cmd/ogma; \
	} | $(GO) run ./internal/benchtable

bench-all: clickhouse ## every benchmark, as go test prints them
	@$(GO) test -run '^$$' -bench . -benchmem ./...

# Fuzzing is bounded by counts, never by time: go1.26's fuzz coordinator
# can fail a target with a bare "context deadline exceeded" when -fuzztime's
# deadline races a worker still busy (go.dev/issue/75804, fixed in Go 1.27) —
# typically minimizing a new input, which for FuzzTransform takes seconds.
FUZZTIME         ?= 20000x
FUZZMINIMIZETIME ?= 2000x

fuzz: ## run each fuzz target for FUZZTIME executions (default 20000x)
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo ">> fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg || exit 1; \
		done; \
	done

fuzz-corpus: ## grow each fuzz target's committed corpus (testdata/fuzz): FUZZTIME executions, then the new inputs of up to 4 KB
	@for pkg in $$($(GO) list ./...); do \
		dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo ">> fuzz-corpus $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg >/dev/null || exit 1; \
			mkdir -p $$dir/testdata/fuzz/$$f; \
			find $$($(GO) env GOCACHE)/fuzz/$$pkg/$$f -type f -size -4k 2>/dev/null | head -40 | xargs -r cp -t $$dir/testdata/fuzz/$$f; \
		done; \
	done

proto: deps ## regenerate the Go, gateway and OpenAPI code of proto/ (offline)
	@echo ">> protoc proto/ogma/v1"
	@protoc $(PROTOC_FLAGS) proto/ogma/v1/*.proto
	@# The API serves the OpenAPI document from a copy it embeds.
	@cp proto/ogma/v1/ogma.swagger.json api/openapi.json

check-generated: proto console ## fail when the generated code or the built console differ from their sources
	@echo ">> checking generated code"
	@git diff --exit-code -- proto api/openapi.json api/console/dist || (echo "generated code is stale: run make proto and commit" >&2; exit 1)

web-deps: ## the console's npm packages (Vite, uPlot; axe-core for the browser tests), as package-lock.json pins them
	@echo ">> npm ci (web/)"
	@cd web && npm ci --no-audit --no-fund --loglevel=error

console: web-deps ## build the console (web/) into api/console/dist, which the binary embeds; the build is committed
	@echo ">> vite build (web/ → api/console/dist)"
	@cd web && npx vite build --logLevel warn

lint: ## gofmt, go vet, staticcheck, govulncheck (when its database is reachable)
	@echo ">> gofmt"
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	@echo ">> go vet"
	@$(GO) vet ./...
	@echo ">> staticcheck"
	@$(GO) run $(STATICCHECK) ./...
	@echo ">> govulncheck"
	@if curl -sf -m 5 -o /dev/null https://vuln.go.dev/index/modules.json.gz; then \
		$(GO) run $(GOVULNCHECK) ./...; \
	else \
		echo "   skipped: the Go vulnerability database (https://vuln.go.dev) cannot be reached from this machine"; \
	fi

update-golden: ## rewrite the golden files under testdata/ (review the diff)
	@OGMA_UPDATE_GOLDEN=1 $(GO) test -count=1 ./...
