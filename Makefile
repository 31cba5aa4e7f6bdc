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

.PHONY: run test test-image lint bench clean

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
# Builds a base image with debootstrap and the project's image on it, and runs it: needs dockerd.
test-image: $(DEV_STAMP)
	$(BIN)/python -m pytest -m image tests/e2e/test_deploy_image.py

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
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis

# The writer's C fast path under AddressSanitizer and UndefinedBehaviorSanitizer: the extension
# is built with both into build/asan, tests/writer/asan/sitecustomize.py loads it in place of the
# installed one (in the child interpreters the tests start too), and the writer's tests of the C
# path run with every Python allocation going through ASan (PYTHONMALLOC=malloc), in the short
# mode CI uses. About 70 s on 2 busy cores, against 40 s for the same tests without it; needs
# gcc and its ASan runtime (libasan). The test of `record --stdin`'s peak memory is left out:
# ASan's shadow memory and quarantine inflate any peak; `make test` runs it.
ASAN_DIR := build/asan
ASAN_CFLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
ASAN_ENV = TREK_ASAN_EXTENSION=$(CURDIR)/$(ASAN_DIR)/_fastappend.so PYTHONPATH=$(CURDIR)/$(ASAN_DIR) \
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so)" PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=0 \
	TREK_TEST_SHORT=1

.PHONY: asan
asan: $(DEV_STAMP)
	@rm -rf $(ASAN_DIR) && mkdir -p $(ASAN_DIR)
	$(CC) -shared -fPIC $(ASAN_CFLAGS) -Wall -Wextra -Wno-missing-field-initializers \
		-I"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" \
		writer/_fastappend.c -lcrypto -o $(ASAN_DIR)/_fastappend.so
	@cp tests/writer/asan/sitecustomize.py $(ASAN_DIR)/
	@$(ASAN_ENV) $(BIN)/python -c 'import sys, trek_audit.writer._fastappend as c; \
		sys.exit(0 if c.__file__.endswith("$(ASAN_DIR)/_fastappend.so") else "not the ASan build")'
	$(ASAN_ENV) $(BIN)/python -m pytest -p no:cacheprovider tests/writer -k "not python-path and not kept_in_memory" $(PYTEST_ARGS)
