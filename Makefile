# `make run` and `make test` do all the set-up on a fresh machine: a .venv with the project installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml setup.py writer/_fastappend.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/trek-audit serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/writer.py
	$(BIN)/python benchmarks/indexer.py
	$(BIN)/python benchmarks/webui.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
