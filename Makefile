# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
# Two workers, whole test files each (module-scoped servers stay shared within a file).
PYTEST_ARGS ?= -n 2 --dist loadfile
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run migrate test lint typecheck schema bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# `make run PORT=8001 HOST=0.0.0.0` chooses where to listen (default 127.0.0.1:8000).
run: $(STAMP)
	$(BIN)/gql-feed serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

migrate: $(STAMP)
	$(BIN)/gql-feed migrate

lint: $(STAMP)
	$(BIN)/ruff check gql_feed tests bench
	$(BIN)/ruff format --check gql_feed tests bench

typecheck: $(STAMP)
	$(BIN)/mypy gql_feed

test: lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

schema: $(STAMP)
	$(BIN)/gql-feed schema > schema.graphql

bench: $(STAMP)
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/fanout.py --proto sse
	$(BIN)/python bench/http_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
