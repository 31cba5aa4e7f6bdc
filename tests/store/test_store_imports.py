"""The read side of audit.db imports alone: no indexer, watchdog or appender in a panel worker."""

from __future__ import annotations

import subprocess
import sys

# Imports the package and then every module in it, in a fresh interpreter, and lists what
# ended up loaded.
_LOADED_BY_THE_STORE = """
import importlib, pkgutil, sys
import trek_audit.store
for module in pkgutil.iter_modules(trek_audit.store.__path__):
    importlib.import_module("trek_audit.store." + module.name)
print("\\n".join(sorted(sys.modules)))
"""


def _modules_loaded_by_the_store() -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _LOADED_BY_THE_STORE], capture_output=True, text=True, check=True
    )
    return done.stdout.split()


def test_importing_every_store_module_loads_neither_the_indexer_nor_watchdog_nor_the_writer() -> (
    None
):
    loaded = _modules_loaded_by_the_store()
    assert {"trek_audit.store.query", "trek_audit.store.status"} <= set(loaded)
    unwanted = [
        name
        for name in loaded
        if name.split(".")[0] == "watchdog"
        or name.startswith(("trek_audit.indexer", "trek_audit.writer"))
    ]
    assert unwanted == []
