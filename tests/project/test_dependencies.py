"""Every package the code imports is declared in pyproject.toml, with a compatible range.

An import that works only because another package happens to pull its distribution in
breaks the day that package stops doing so; this test makes such an import fail at once.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

ROOT = REPO
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def normal(name: str) -> str:
    """A distribution's name in its normal form (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    found = NAME.match(requirement)
    assert found, requirement
    return normal(found.group())


RUNTIME = [str(r) for r in PYPROJECT["project"]["dependencies"]]
DEV = [str(r) for r in PYPROJECT["project"]["optional-dependencies"]["dev"]]


def imported_modules(folder: Path) -> dict[str, set[str]]:
    """Top-level names of the absolute imports under `folder`, each with its files."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.partition(".")[0], set()).add(
                    str(path.relative_to(folder.parent))
                )
    return found


def third_party(folder: Path, local: set[str]) -> dict[str, set[str]]:
    return {
        module: files
        for module, files in imported_modules(folder).items()
        if module not in sys.stdlib_module_names and module not in local
    }


def undeclared(modules: dict[str, set[str]], declared: set[str]) -> list[str]:
    distributions = packages_distributions()
    problems = []
    for module, files in sorted(modules.items()):
        providers = {normal(name) for name in distributions.get(module, [])}
        if not providers:
            problems.append(f"{module} (imported by {sorted(files)}) is not installed")
        elif not providers & declared:
            problems.append(
                f"{module} (imported by {sorted(files)}) comes from {sorted(providers)}, "
                "which pyproject.toml does not declare"
            )
    return problems


def test_the_package_imports_only_its_declared_dependencies() -> None:
    modules = third_party(ROOT / "gql_feed", {"gql_feed"})
    assert {"graphql", "strawberry", "redis", "cross_web"} <= modules.keys()  # the walk works
    assert undeclared(modules, {requirement_name(r) for r in RUNTIME}) == []


@pytest.mark.parametrize("folder", ["tests", "bench", "tools"])
def test_tests_and_benchmarks_import_only_declared_dependencies(folder: str) -> None:
    local = {"gql_feed", "tests", "tools", *(path.stem for path in (ROOT / folder).glob("*.py"))}
    assert imported_modules(ROOT / folder), f"no imports found under {folder}/"
    modules = third_party(ROOT / folder, local)
    declared = {requirement_name(r) for r in RUNTIME + DEV}
    assert undeclared(modules, declared) == []


def test_an_undeclared_import_is_caught(tmp_path: Path) -> None:
    (tmp_path / "module.py").write_text("import graphql\nfrom jwt import encode\n")
    problems = undeclared(third_party(tmp_path, set()), {"pyjwt"})
    assert len(problems) == 1
    assert problems[0].startswith("graphql ")
    assert "graphql-core" in problems[0]


@pytest.mark.parametrize("requirement", RUNTIME + DEV)
def test_every_dependency_has_a_compatible_range(requirement: str) -> None:
    """A lower bound the code needs, and an upper one before the next breaking release."""
    assert ">=" in requirement, requirement
    assert re.search(r",\s*<", requirement), requirement
