"""Loads the writer's C fast path from the sanitizer build that ``make asan`` makes.

``make asan`` puts this directory on PYTHONPATH, so every interpreter the writer's tests start
(the test run and the child processes it runs) imports ``trek_audit.writer._fastappend`` from
the file TREK_ASAN_EXTENSION names instead of the installed build. Without it, nothing changes.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

_MODULE = "trek_audit.writer._fastappend"
_EXTENSION = os.environ.get("TREK_ASAN_EXTENSION")


class _SanitizedBuild(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _MODULE or not _EXTENSION:
            return None
        return importlib.util.spec_from_file_location(fullname, _EXTENSION)


sys.meta_path.insert(0, _SanitizedBuild())
