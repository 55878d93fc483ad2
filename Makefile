# Every target works on a fresh clone: Node >= 24 is found or fetched (scripts/node-bin.sh),
# dependencies are installed from the lockfile, then the target does its job.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_BIN := $(shell ./scripts/node-bin.sh)
export PATH := $(NODE_BIN):$(CURDIR)/node_modules/.bin:$(PATH)

# `make test TEST_FILES='test/config/*.test.ts'` runs only those files (each in its batch).
TEST_FILES ?=

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

# Every batch of scripts/test-batches.ts runs even when one fails; one summary at the end.
test: typecheck lint
	TEST_FILES="$(TEST_FILES)" node scripts/test-batches.ts

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
	@# The wrk driver's Debian package; without it the wrk rows say why they are missing.
	@scripts/ci-packages.sh wrk || true
	node bench/main.ts
