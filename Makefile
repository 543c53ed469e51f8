# Two commands for a fresh clone: `make run` and `make test`.
PYTHON ?= python3
UV_VERSION ?= 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# The port `make run` serves on: `make run PORT=8100`.
PORT ?= 8000

.PHONY: run test lint types schema install serve migrate seed clean playground bench web

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

install: $(UV)
	$(UV) sync --frozen --quiet

# Card payments go through a local test-mode stand-in for Stripe unless Stripe keys are set.
run: install web
	$(BIN)/portal dev --port $(PORT) --stripe-standin

serve: install
	$(BIN)/portal serve

migrate: install
	$(BIN)/portal migrate

seed: install
	$(BIN)/portal seed

schema: install
	$(BIN)/portal schema

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: install
	$(BIN)/mypy app tests

# The suite on every core: each worker has databases, a Stripe stand-in and ports of its own.
# `--dist loadgroup` keeps each xdist_group's tests on one worker, where they share state a
# worker cannot own alone (the Redis counter of 127.0.0.1); the rest go wherever one is free.
# The browser tests (tests/test_web_app.py) need the built app and Debian's Chromium; without
# Chromium they are skipped with a line saying so, and in CI they fail.
TEST_WORKERS ?= auto

test: lint types web
	tools/web-build.sh test
	@test -x "$${PORTAL_CHROMIUM:-/usr/bin/chromium}" || echo "Chromium is missing: the browser tests will not run (apt-get install -y chromium)"
	PORTAL_ENV=test $(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup

clean:
	rm -rf $(TOOLS) $(VENV) var .pytest_cache .mypy_cache .ruff_cache web/node_modules web/dist

# The portal web app, built into web/dist when it is missing or older than what it is built from.
WEB_SOURCES := $(shell find web/src -path web/src/generated -prune -o -type f -print 2>/dev/null) \
	web/index.html web/package.json web/package-lock.json web/vite.config.ts web/codegen.ts \
	web/tsconfig.json web/scripts/operations.mjs frontend-contract/portal.graphql \
	$(wildcard frontend-contract/operations/*.graphql)

web/dist/index.html: $(WEB_SOURCES) | $(UV)
	tools/web-build.sh
	@touch $@

web: web/dist/index.html

# GraphiQL's browser build for the playgrounds, from tools/playground's lock file. Its output
# under app/static/playground is committed, so `make run` needs no npm and no network.
playground:
	cd tools/playground && npm ci --no-audit --no-fund --loglevel=error && node build.mjs

# Side by side with PostGraphile v5 on a database of its own (bench/README.md): about ten
# minutes; BENCH_SCALE=large seeds 1,000 tenants and 1,000,000 invoices first.
POSTGRAPHILE := bench/postgraphile

$(POSTGRAPHILE)/node_modules/.package-lock.json: $(POSTGRAPHILE)/package.json $(POSTGRAPHILE)/package-lock.json
	@command -v npm >/dev/null || { echo "make bench needs npm (any version) to install PostGraphile and Node 22"; exit 1; }
	cd $(POSTGRAPHILE) && npm ci --no-audit --no-fund --loglevel=error

bench: install $(POSTGRAPHILE)/node_modules/.package-lock.json
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }; \
	  else echo "make bench needs wrk: sudo apt-get install -y wrk"; exit 1; fi; }
	$(BIN)/python bench/run.py
