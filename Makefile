# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
# Three workers, whole test files each (module-scoped servers stay shared within a file).
# Three on two cores: much of the suite waits on the servers it starts, and a third
# worker keeps the cores busy meanwhile.
PYTEST_ARGS ?= -n 3 --dist loadfile
VENV := .venv
BIN := $(VENV)/bin
# `make run` installs what the server needs; `make test` and the tools, the development
# lock too. Each has a stamp, so each installs once and again only when its lock changes.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# The lock: every dependency, direct or not, pinned with the hashes of its files.
LOCK := requirements.txt
DEV_LOCK := requirements-dev.txt
# uv installs the locks: several times faster than pip (a fresh clone's first start is
# mostly the install), and as strict, every file checked against its hash. pip installs
# uv itself, from its own lock. uv reads PyPI unless UV_INDEX_URL says otherwise.
INSTALLER_LOCK := requirements-installer.txt
UV := $(BIN)/uv
UV_INSTALL = $(UV) pip install -q --python $(BIN)/python
LATEST := .venv-latest
OLDEST := .venv-oldest
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile -q --generate-hashes --allow-unsafe --strip-extras \
	--all-build-deps --no-emit-index-url --no-emit-find-links
# gql_feed itself, editable, built by the locked setuptools (no build isolation, so nothing
# unlocked is fetched). setuptools' notice that a folder named like the package could shadow
# it (true of every flat-layout project) would otherwise print as a boxed warning each time.
INSTALL_SELF = PYTHONWARNINGS='ignore:Editable installation' \
	$(UV_INSTALL) --no-deps --no-build-isolation -e .

.PHONY: run migrate test test-needs lint typecheck schema docs bench clean lock lock-upgrade \
	test-latest test-oldest mutation

$(UV): $(INSTALLER_LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check --require-hashes -r $(INSTALLER_LOCK)
	@touch $@

# Exactly the locked versions, each file checked against its hash. Nothing is compiled
# ahead (uv's default): the first start compiles the modules it imports, not every
# module of every dependency (where PYTHONDONTWRITEBYTECODE is set, every start does,
# about a second more each).
$(RUN_STAMP): pyproject.toml $(LOCK) $(UV)
	@echo "make run: installing the server's locked dependencies ($(LOCK)) into $(VENV)"
	@$(UV_INSTALL) --require-hashes -r $(LOCK)
	@$(INSTALL_SELF)
	@touch $@

# The development lock holds the server's pins and the tools' (pytest, mypy, ruff,
# playwright, pip-tools…): installing it satisfies `make run` too. Every module is
# compiled ahead, here once: the suite starts about 150 server processes, and
# where PYTHONDONTWRITEBYTECODE is set (as in many containers) each of them would
# otherwise compile everything it imports again, twice the CPU of a start.
$(DEV_STAMP): pyproject.toml $(LOCK) $(DEV_LOCK) $(UV)
	@echo "installing the locked development tools and dependencies ($(DEV_LOCK)) into $(VENV)"
	@$(UV_INSTALL) --compile-bytecode --require-hashes -r $(DEV_LOCK)
	@$(INSTALL_SELF)
	@$(UV) pip check -q --python $(BIN)/python
	@touch $@ $(RUN_STAMP)

# `make run PORT=8001 HOST=0.0.0.0` chooses where to listen (default 127.0.0.1:8000).
run: $(RUN_STAMP)
	@$(BIN)/gql-feed serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

migrate: $(RUN_STAMP)
	@$(BIN)/gql-feed migrate

lint: $(DEV_STAMP)
	$(BIN)/ruff check gql_feed tests bench tools
	$(BIN)/ruff format --check gql_feed tests bench tools
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy gql_feed

# What the suite uses and how long it takes, said before anything is installed.
test-needs:
	@$(PYTHON) tools/test_needs.py

# gql_feed's own modules are compiled too, for the same reason as the dependencies.
test: test-needs lint typecheck
	@$(BIN)/python -m compileall -q gql_feed
	$(BIN)/pytest $(PYTEST_ARGS)

# docs/settings.md and docs/errors.md, from the code (tests/project/test_docs.py fails on drift).
docs: $(RUN_STAMP)
	$(BIN)/python tools/gen_docs.py

# Mutation testing of the core (admission, tokens, cost, response-cache freshness, event
# payload, hub, bus), not part of `make test`: one module at a time against the tests that
# cover it, each in a copy of the tree. `make mutation MODULES="tokens bus"` runs some.
mutation: $(DEV_STAMP)
	$(BIN)/python -m tests.mutation.run $(MODULES)

schema: $(RUN_STAMP)
	$(BIN)/gql-feed schema > schema.graphql

bench: $(DEV_STAMP)
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/fanout.py --proto sse
	$(BIN)/python bench/http_throughput.py

# pip-tools, from the lock, without installing gql_feed: `make lock` must work right
# after pyproject.toml changed, when the old lock no longer satisfies it.
$(BIN)/pip-compile:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --require-hashes -r $(DEV_LOCK)

# After editing pyproject.toml: resolve again, keeping every pin that still fits.
lock: | $(BIN)/pip-compile
	$(PIP_COMPILE) -o $(INSTALLER_LOCK) tools/installer.in
	$(PIP_COMPILE) -o $(LOCK) pyproject.toml
	$(PIP_COMPILE) --extra dev -c $(LOCK) -o $(DEV_LOCK) pyproject.toml

# Every pin to the newest release the ranges allow (then run `make test`).
lock-upgrade: | $(BIN)/pip-compile
	$(PIP_COMPILE) --upgrade -o $(INSTALLER_LOCK) tools/installer.in
	$(PIP_COMPILE) --upgrade -o $(LOCK) pyproject.toml
	$(PIP_COMPILE) --upgrade --extra dev -c $(LOCK) -o $(DEV_LOCK) pyproject.toml

# The newest releases the ranges allow, without the lock, in a venv of their own: an
# upcoming break shows here before a user meets it. Lists what differs from the lock.
test-latest:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install -q --upgrade pip
	$(LATEST)/bin/pip install -q --upgrade --upgrade-strategy eager -e '.[dev]'
	$(LATEST)/bin/python tools/lock_diff.py $(DEV_LOCK)
	$(LATEST)/bin/pytest $(PYTEST_ARGS)

# The lower bounds: every direct dependency at the oldest release pyproject.toml allows
# (uv resolves that way; pip cannot), the rest as new as they may be.
test-oldest:
	rm -rf $(OLDEST)
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/pip install -q uv
	$(OLDEST)/bin/uv pip install -q --python $(OLDEST)/bin/python \
		--resolution lowest-direct -e '.[dev]'
	$(OLDEST)/bin/python tools/lock_diff.py $(DEV_LOCK)
	$(OLDEST)/bin/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(LATEST) $(OLDEST) .pytest_cache .mypy_cache .ruff_cache
