"""The shape of the package: a package per stage, every import downhill, no cycles, modules
of readable size. docs/architecture.md explains the layers; this test keeps them true.

Imports are read from the source (ast), function-level imports included, so an import
hidden inside a function to dodge a cycle is still seen.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "monitor"

# Lower numbers are further down. A module may import its own package's modules and any
# package of a lower layer; stages of one layer (ingest, matching) do not import each other.
LAYER_OF_PACKAGE: dict[str, int] = {
    "model": 0,
    "config": 1,
    "ingest": 2,
    "matching": 2,
    "stories": 3,
    "store": 4,
    "delivery": 5,
    "service": 6,
    "cli": 7,
}
MAXIMUM_MODULE_LINES = 700


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


MODULES = _modules()


def _imported_modules(name: str, path: Path) -> set[str]:
    """Every module of ours that `name` imports, wherever the import statement sits."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # `from monitor.ingest import fetch` imports the module monitor.ingest.fetch.
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("monitor"):
                found.add(target)
    return found


IMPORTS = {name: _imported_modules(name, path) for name, path in MODULES.items()}


def _package_of(module: str) -> str | None:
    """The stage a module belongs to; None for the program's entry (monitor, __main__)."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return None
    return parts[1]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_downhill(module: str) -> None:
    own = _package_of(module)
    problems = []
    for target in sorted(IMPORTS[module]):
        other = _package_of(target)
        if own is None or other is None or other == own:
            continue  # monitor/__init__, monitor/__main__, and a package's own modules
        if other not in LAYER_OF_PACKAGE or own not in LAYER_OF_PACKAGE:
            problems.append(f"{module} -> {target}: package not in LAYER_OF_PACKAGE")
        elif LAYER_OF_PACKAGE[other] >= LAYER_OF_PACKAGE[own]:
            problems.append(f"{module} -> {target}: {other} is not below {own}")
    assert problems == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_other_packages_are_used_through_what_they_export(module: str) -> None:
    """A stage imports `monitor.store`, never `monitor.store.deliveries`: what a package
    exports in its __init__ is its interface, the rest may move."""
    own = _package_of(module)
    deep = [
        target
        for target in sorted(IMPORTS[module])
        if own is not None
        and _package_of(target) not in (None, own)
        and target.count(".") > 1
        and _package_of(target) != "model"
    ]
    assert deep == []


def test_there_is_no_import_cycle() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(IMPORTS[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module)
    assert [" -> ".join(cycle) for cycle in cycles] == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_readable(module: str) -> None:
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAXIMUM_MODULE_LINES, f"{module}: {lines} lines"


def test_the_code_cites_only_what_the_repository_holds() -> None:
    citing = [
        str(path.relative_to(PACKAGE_ROOT.parent))
        for path in MODULES.values()
        if "DESIGN.md" in path.read_text(encoding="utf-8")
    ]
    assert citing == []


def test_the_folder_listing_shows_the_pipeline() -> None:
    top_level = {path.name for path in PACKAGE_ROOT.iterdir() if not path.name.startswith("_")}
    top_level.discard("py.typed")
    packages = {name for name in top_level if (PACKAGE_ROOT / name).is_dir()}
    assert packages <= set(LAYER_OF_PACKAGE)
    assert top_level - packages <= {"model.py"}
