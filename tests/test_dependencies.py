"""pyproject's runtime dependencies each have a real use in fastir/, every third-party import
there is declared (as a dependency or, for a lazily imported option, in an extra), and test and bench
tools live in extras."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _dist_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def runtime_dependencies() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_dist_name(r) for r in project["dependencies"]}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):  # imports inside functions count: heavy libraries are imported lazily
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> the files of fastir/ that import it (stdlib and fastir left out)."""
    found: dict[str, set[str]] = {}
    for path in REPO.glob("fastir/**/*.py"):
        for module in _imported_modules(path):
            if module not in sys.stdlib_module_names and module not in ("fastir", "__future__"):
                found.setdefault(module, set()).add(path.relative_to(REPO).as_posix())
    return found


def test_every_runtime_dependency_is_imported_by_the_package():
    dists = packages_distributions()
    imported = {d.lower().replace("_", "-") for m in third_party_imports() for d in dists.get(m, [m])}
    unused = runtime_dependencies() - imported
    assert not unused, f"runtime dependencies that fastir/ never imports (move them to an extra): {sorted(unused)}"


def test_every_third_party_import_of_the_package_is_declared():
    # A runtime dependency, or an optional one (an extra) that the package imports lazily.
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = runtime_dependencies() | {_dist_name(r) for reqs in project["optional-dependencies"].values()
                                         for r in reqs}
    dists = packages_distributions()
    undeclared = {m: sorted(files) for m, files in third_party_imports().items()
                  if not {d.lower().replace("_", "-") for d in dists.get(m, [m])} & declared}
    assert not undeclared, f"imported by the package but declared nowhere in pyproject.toml: {undeclared}"


def test_test_and_bench_tools_are_extras_not_runtime():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = {name: {_dist_name(r) for r in reqs} for name, reqs in project["optional-dependencies"].items()}
    # pytest's addopts (--benchmark-disable, -n 2) and the bench fixtures
    assert {"pytest-benchmark", "pytest-xdist", "threadpoolctl"} <= extras["test"]
    assert {"faiss-cpu", "ranx"} <= extras["bench"]  # peers of bench/test_bench_score.py and compare
    assert not {"faiss-cpu", "threadpoolctl", "pytest-benchmark", "pytest"} & runtime_dependencies()
    assert "torch==2.13.0" in project["dependencies"]
