# Every target works on a fresh clone: Node >= 24 is found or fetched (scripts/node-bin.sh),
# dependencies are installed from the lockfile, then the target does its job.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_BIN := $(shell ./scripts/node-bin.sh)
export PATH := $(NODE_BIN):$(CURDIR)/node_modules/.bin:$(PATH)

TEST_FILES ?= test/*/*.test.ts

.PHONY: help deps typecheck lint fmt docs test soak run demo image bench

help:
	@echo "make demo   the broker in front of a Forgejo emulator with two users, on loopback"
	@echo "make run    start the broker (settings from the environment: see README)"
	@echo "make test   typecheck + lint + all tests"
	@echo "make soak   20 MCP sessions against the real broker for SOAK_SECONDS (default 600), then a leak check"
	@echo "make lint   biome lint and format check"
	@echo "make fmt    apply biome's formatting and safe fixes"
	@echo "make docs   regenerate the README settings table"
	@echo "make image  build the container image with docker or podman (see docs/deploy.md)"
	@echo "make bench  measure speed, memory and scale (BENCH_QUICK=1: ~1-minute smoke run); writes docs/performance.md"

node_modules/.deps-stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: node_modules/.deps-stamp

typecheck: deps
	tsc --noEmit -p .

lint: deps
	biome check .

fmt: deps
	biome check --write .

docs: deps
	node scripts/settings-table.ts --write

# Line coverage of the authorization server (src/oauth) is measured on its own tests and gated at
# 80%. Those run separately because with coverage on, Node hands every child process
# NODE_V8_COVERAGE, which the tests of exact child environments (supervisor, pool) must not see.
COVERAGE := --experimental-test-coverage --test-coverage-include='src/oauth/**' --test-coverage-lines=80
NODE_TEST := node --test --test-concurrency=2 --test-timeout=300000

# The real-server batch (test/real: the broker on a real Gitea built by scripts/real-deps.sh) runs
# last, one file at a time (each starts its own Gitea); without Go it reports NOT RUN and why.
test: typecheck lint
	$(NODE_TEST) $(filter-out test/oauth/% test/real/%,$(wildcard $(TEST_FILES)))
	$(NODE_TEST) $(COVERAGE) 'test/oauth/*.test.ts'
	NODE_TEST='$(NODE_TEST)' ./scripts/real-suite.sh

# Not part of `make test` (which runs a 60-second version: test/soak/soak.test.ts).
soak: deps
	node scripts/soak.ts

run: deps
	node src/main/main.ts

demo: deps
	node scripts/demo.ts

image:
	./deploy/image.sh

bench: deps
	node bench/main.ts
