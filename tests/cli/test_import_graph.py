"""The package's components import one way: writer -> (trek.log) -> indexer -> store -> webui.

Read from the source with ast, imports inside functions included, so a deferred import that
goes the wrong way still counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Where each part of the trek_audit package lives in the tree.
PARTS = {"writer": "writer", "indexer": "indexer", "store": "store", "webui": "webui"}
CORE = {"settings", "layout", "options"}

# What each part may import of the others (besides the core modules, which all may use).
ALLOWED = {
    "core": set(),
    "writer": set(),
    "store": {"writer"},  # the line format, to key log files as the indexer does
    "indexer": {"writer", "store"},
    "webui": {"writer", "store"},
}


def part_of(module: str) -> str | None:
    """``trek_audit.store.query`` -> ``store``; core modules -> ``core``."""
    pieces = module.split(".")
    if pieces[0] != "trek_audit" or len(pieces) < 2:
        return None
    if pieces[1] in PARTS:
        return pieces[1]
    if pieces[1] in CORE:
        return "core"
    return None


def imports_of(path: Path, package: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                found.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.add(node.module)
    return found


def module_files() -> dict[str, tuple[str, Path]]:
    """Every module of the package: its part, and its source file."""
    files: dict[str, tuple[str, Path]] = {}
    for name in CORE:
        files[f"trek_audit.{name}"] = ("core", ROOT / "trek_audit" / f"{name}.py")
    for part, folder in PARTS.items():
        for path in (ROOT / folder).glob("*.py"):
            files[f"trek_audit.{part}.{path.stem}"] = (part, path)
    return files


def wrong_imports(files: dict[str, tuple[str, Path]]) -> list[str]:
    wrong = []
    for module, (part, path) in sorted(files.items()):
        package = f"trek_audit.{part}" if part != "core" else "trek_audit"
        for target in imports_of(path, package):
            target_part = part_of(target)
            if target_part in (None, "core", part):
                continue
            if target_part not in ALLOWED[part]:
                wrong.append(f"{module} imports {target}")
    return wrong


def test_every_part_imports_only_the_parts_before_it() -> None:
    assert wrong_imports(module_files()) == []


def test_the_core_modules_import_no_component() -> None:
    for name in CORE:
        path = ROOT / "trek_audit" / f"{name}.py"
        parts = {part_of(t) for t in imports_of(path, "trek_audit")} - {None, "core"}
        assert parts == set(), name


def test_the_check_catches_a_backwards_import_even_inside_a_function(tmp_path: Path) -> None:
    source = tmp_path / "follower.py"
    source.write_text("def f():\n    from ..webui.state import get_db\n", encoding="utf-8")
    files = {"trek_audit.indexer.follower": ("indexer", source)}
    assert wrong_imports(files) == ["trek_audit.indexer.follower imports trek_audit.webui.state"]
