# berth — one command runs the daemon (make run), one runs every test (make test).
SHELL := /bin/bash
NODE ?= node
CONFIG ?= /etc/berth/config.toml
CNI_CONF_DIR ?= /etc/cni/net.d

.PHONY: all deps build typecheck lint check-imports generate check-generated test-rules test test-unit test-e2e chaos run bench clean

all: build

deps:
	@bash hack/install-deps.sh

build: deps
	npx tsc -p tsconfig.json

# tsc both checks and emits: strict type errors stop the build (noEmitOnError).
typecheck: build

lint: deps
	npx eslint .

check-imports:
	$(NODE) hack/check-imports.mjs

generate: deps
	bash hack/generate.sh

check-generated: deps
	bash hack/check-generated.sh
	bash hack/check-generated.test.sh

# Prometheus rules: syntax (promtool check rules) and alert unit tests on synthetic series (promtool test rules).
test-rules: deps
	promtool check rules deploy/prometheus-rules.yaml
	cd deploy/tests && promtool test rules *.test.yaml

test-unit: build
	$(NODE) --test --test-concurrency=1 dist/pkg dist/cmd dist/hack

test-e2e: build
	$(NODE) --test --test-concurrency=1 dist/test-e2e

# The order is the contract: typecheck, lint, import cycles, generated code, unit, e2e;
# the Prometheus rule checks run after the generated-code check.
test: deps
	$(MAKE) --no-print-directory typecheck
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory check-imports
	$(MAKE) --no-print-directory check-generated
	$(MAKE) --no-print-directory test-rules
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-e2e

# The reliability harness, long form (root; loopback only; bounded in count and time):
# kill -9 under load, registry faults, hostile CRI input, kubelet retries. The short
# form runs in test-e2e (test-e2e/chaos.test.ts).
CHAOS_KILLS ?= 30
CHAOS_FUZZ ?= 1000
CHAOS_RETRIES ?= 5
CHAOS_FAULTS ?= all
CHAOS_BUDGET_MIN ?= 30
CHAOS_SEED ?=
chaos: build
	$(NODE) dist/hack/chaos/main.js --kills $(CHAOS_KILLS) --fuzz $(CHAOS_FUZZ) --retries $(CHAOS_RETRIES) --faults $(CHAOS_FAULTS) --budget-min $(CHAOS_BUDGET_MIN) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED),)

# Issue 9's benchmarks side by side with containerd in one run (needs BERTH_BENCH_DEPS=1
# bash hack/install-deps.sh once; about 25 minutes; run it on an otherwise idle machine).
bench: build
	$(NODE) dist/hack/bench/goals.js

# Installs what is missing, builds, writes a default CNI network if there is none,
# and runs berthd in the foreground on /run/berth/berth.sock.
run: build
	@bash hack/cni/default-conflist.sh $(CNI_CONF_DIR)
	exec $(NODE) dist/cmd/berthd/main.js $(if $(wildcard $(CONFIG)),--config $(CONFIG),)

clean:
	rm -rf dist
