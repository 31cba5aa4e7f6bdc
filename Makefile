# `make run` and `make test` do all the set-up on a fresh machine: a .venv with the project installed.
# `make run` installs what running needs; `make test` adds the test, benchmark and lint tools.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# What the install builds from: a change here reinstalls (and rebuilds the C fast path).
SOURCES := pyproject.toml setup.py writer/_fastappend.c writer/_fastappend.h
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check --no-input
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test lint bench clean

$(RUN_STAMP): $(SOURCES)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing trek-audit into $(VENV) ..."
	@$(PIP) install --upgrade pip > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@$(PIP) install -e . >> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $@

$(DEV_STAMP): $(RUN_STAMP)
	@echo "installing the test, benchmark and lint tools ..."
	@$(PIP) install -e '.[test,bench,dev]' >> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $@

run: $(RUN_STAMP)
	$(BIN)/trek-audit serve --host $(HOST) --port $(PORT)

test: $(DEV_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# mypy sees the package as it installs through a tree of links (see [tool.mypy] in pyproject.toml).
TYPECHECK := build/typecheck/trek_audit
lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)
	@ln -s $(CURDIR)/trek_audit/*.py $(CURDIR)/trek_audit/py.typed $(TYPECHECK)/
	@for part in writer indexer store webui; do ln -s $(CURDIR)/$$part $(TYPECHECK)/$$part; done
	$(BIN)/mypy

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/cli.py
	$(BIN)/python benchmarks/writer.py
	$(BIN)/python benchmarks/indexer.py
	$(BIN)/python benchmarks/webui.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
