# Two commands for a fresh clone: `make run` and `make test`.
PYTHON ?= python3
UV_VERSION ?= 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint types schema install serve migrate seed clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

install: $(UV)
	$(UV) sync --frozen --quiet

run: install
	$(BIN)/portal dev

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

test: lint types
	PORTAL_ENV=test $(BIN)/pytest

clean:
	rm -rf $(TOOLS) $(VENV) var .pytest_cache .mypy_cache .ruff_cache
