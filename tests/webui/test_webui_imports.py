"""How the panel's modules import each other: one way, with no cycle, blueprints never the factory.

Read from the source with ast, imports inside functions included, so that a cycle hidden by a
deferred import still counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import trek_audit.webui

PACKAGE = "trek_audit.webui"
SOURCE = Path(trek_audit.webui.__file__).parent


def module_names() -> set[str]:
    return {path.stem for path in SOURCE.glob("*.py")}


def imported_siblings(tree: ast.Module, module: str, siblings: set[str]) -> set[str]:
    """The modules of the package that ``module`` imports, however it spells the import."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level <= 1, f"{module} imports from outside the package with .."
            base = PACKAGE if node.level else (node.module or "")
            if node.level and node.module:
                base = f"{PACKAGE}.{node.module}"
            if base == PACKAGE:
                # ``from . import state`` names a module; ``from . import create_app`` a name
                # that the package's __init__ exports.
                names = [
                    f"{PACKAGE}.{alias.name}" if alias.name in siblings else PACKAGE
                    for alias in node.names
                ]
            else:
                names = [base]
        else:
            continue
        for name in names:
            if name == PACKAGE:
                found.add("__init__")
            elif name.startswith(PACKAGE + "."):
                found.add(name[len(PACKAGE) + 1 :].split(".")[0])
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    siblings = module_names()
    return {
        module: imported_siblings(
            ast.parse((SOURCE / f"{module}.py").read_text(encoding="utf-8")), module, siblings
        )
        for module in sorted(siblings)
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph as the list of modules along it, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return path[path.index(module) :] + [module]
        if module in done:
            return None
        path.append(module)
        for target in sorted(graph.get(module, ())):
            cycle = visit(target)
            if cycle:
                return cycle
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module)
        if cycle:
            return cycle
    return None


def test_the_graph_is_read_from_every_module_of_the_panel() -> None:
    graph = import_graph()
    assert {"app", "state", "audit", "accounts_page", "accounts", "throttle", "sessions"} <= set(
        graph
    )
    assert "state" in graph["audit"]
    assert {"accounts_page", "api", "audit", "auth", "state"} <= graph["app"]


def test_no_module_of_the_panel_imports_itself_back() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_a_cycle_is_found_when_there_is_one() -> None:
    graph = {"app": {"audit"}, "audit": {"state"}, "state": {"app"}, "chart": set()}
    assert find_cycle(graph) == ["app", "audit", "state", "app"]
    assert find_cycle({"app": {"audit"}, "audit": {"state"}, "state": set()}) is None


def test_blueprints_reach_the_shared_state_and_never_the_app_factory() -> None:
    graph = import_graph()
    blueprints = [
        module
        for module in graph
        if "Blueprint(" in (SOURCE / f"{module}.py").read_text(encoding="utf-8")
    ]
    assert sorted(blueprints) == [
        "accounts_page",
        "api",
        "audit",
        "auth",
        "events",
        "health",
        "tokens_page",
    ]
    for module in blueprints:
        assert "app" not in graph[module] and "__init__" not in graph[module], module
        assert "state" in graph[module], module


def test_the_shared_state_imports_no_blueprint_and_not_the_factory() -> None:
    graph = import_graph()
    reachable: set[str] = set()
    todo = ["state"]
    while todo:
        for target in graph[todo.pop()] - reachable:
            reachable.add(target)
            todo.append(target)
    assert not reachable & {
        "app",
        "__init__",
        "accounts_page",
        "api",
        "audit",
        "auth",
        "events",
        "tokens_page",
    }, reachable
