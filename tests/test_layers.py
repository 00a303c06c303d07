"""The packages form a stack: core -> services -> web/hardware/provisioning -> firmware; home apart.

Every import counts: module level, inside functions and under ``TYPE_CHECKING``, because each is a
dependency a reader has to follow. A lower package importing a higher one, or two packages
(or two of services' sub-packages) importing each other, fails here with the offending lines.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Rank of each product package: a package may import its own modules and packages of lower rank.
RANKS = {
    "core": 0,
    "services": 1,
    "web": 2,
    "hardware": 2,
    "provisioning": 2,
    "firmware": 3,
}
# home is the MSP's own program: it shares only the foundation (and its wire protocol) with the box.
HOME_MAY_IMPORT = {"core", "home"}
# simsite is test tooling (the simulated LAN); the product must never import it.
PRODUCT = (*RANKS, "home")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []  # (line, dotted name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend(
                (node.lineno, f"{node.module}.{alias.name}")
                if _is_package(f"{node.module}.{alias.name}")
                else (node.lineno, node.module)
                for alias in node.names
            )
    return sorted(set(found))


def _is_package(dotted: str) -> bool:
    """True for a module or package of this repo (so ``from core import fsops`` names fsops)."""
    base = ROOT / dotted.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _module_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _unit(module: str) -> str:
    """The layering unit: a top-level package, or a sub-package of services."""
    parts = module.split(".")
    if parts[0] == "services" and len(parts) > 1:
        return f"services.{parts[1]}"
    return parts[0]


def _product_files() -> list[Path]:
    return sorted(p for top in PRODUCT for p in (ROOT / top).rglob("*.py"))


def test_product_packages_exist() -> None:
    # A layout change that renames a package must update this check, not silently pass it.
    missing = [top for top in PRODUCT if not (ROOT / top / "__init__.py").is_file()]
    assert not missing, f"packages missing: {missing}"
    assert len(_product_files()) > 100


def test_no_package_imports_a_higher_one() -> None:
    wrong: list[str] = []
    for path in _product_files():
        here = _module_of(path)
        top = here.split(".")[0]
        for line, target in _imports(path):
            other = target.split(".")[0]
            if other == top or other not in (*RANKS, "home", "simsite", "tests", "bench"):
                continue
            where = f"{path.relative_to(ROOT)}:{line} imports {target}"
            if top == "home":
                if other not in HOME_MAY_IMPORT:
                    wrong.append(f"{where} (home may import only core)")
            elif other not in RANKS or RANKS[other] > RANKS[top]:
                wrong.append(f"{where} ({top} is below {other})")
            elif RANKS[other] == RANKS[top]:
                wrong.append(f"{where} ({top} and {other} are side by side)")
    assert not wrong, "imports against the stack:\n" + "\n".join(wrong)


def test_no_two_packages_import_each_other() -> None:
    edges: dict[str, dict[str, str]] = defaultdict(dict)
    for path in _product_files():
        here = _unit(_module_of(path))
        for line, target in _imports(path):
            if target.split(".")[0] not in PRODUCT:
                continue
            there = _unit(target)
            if there != here:
                edges[here].setdefault(there, f"{path.relative_to(ROOT)}:{line}")
    cycles = sorted(
        f"{a} <-> {b}: {edges[a][b]} and {edges[b][a]}"
        for a in edges
        for b in edges[a]
        if a < b and a in edges.get(b, {})
    )
    assert not cycles, "packages importing each other:\n" + "\n".join(cycles)


def test_modules_inside_home_do_not_import_each_other() -> None:
    # server and remote used to import each other (through function-local imports); a cycle
    # inside the program is as hard to follow as one between packages.
    edges: dict[str, set[str]] = defaultdict(set)
    for path in (ROOT / "home").rglob("*.py"):
        here = _module_of(path)
        for _line, target in _imports(path):
            if target.startswith("home.") and target != here:
                edges[here].add(target)
    cycles = sorted(
        f"{a} <-> {b}" for a in edges for b in edges[a] if a < b and a in edges.get(b, set())
    )
    assert not cycles, "home modules importing each other: " + ", ".join(cycles)


@pytest.mark.parametrize("top", ["bench"])
def test_bench_does_not_import_tests(top: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for path in sorted((ROOT / top).rglob("*.py"))
        for line, target in _imports(path)
        if target.split(".")[0] == "tests"
    ]
    assert not wrong, "bench must use the shared support code, not tests/:\n" + "\n".join(wrong)
