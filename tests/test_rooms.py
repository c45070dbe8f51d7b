"""The rooms of fastir/ and the one direction of their imports (docs/design.md, "Rooms").

Every import of every module counts: top-level, inside functions (the lazy imports that keep
`fastir --help` light) and under ``TYPE_CHECKING``. A module may import its own room and the rooms
below it, never one above, and no chain of imports may come back to where it started.

Tests mirror modules: each ``fastir/<room>/<module>.py`` has ``tests/<room>/test_<module>.py``, but for
the exemptions listed below, each with its reason and the test file that covers it instead.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "fastir"

# Bottom first: each room may import the rooms before it. `fastir` itself (the package's face:
# `import fastir`, `fastir.encode`) stands above them all.
ROOMS = ("kernels", "core", "data", "runs", "encoding", "eval", "compare", "sampling", "train", "experiment", "interop", "cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(target: str, names: list[str]) -> set[str]:
    """The fastir modules that ``from target import names`` (or ``import target``) loads."""
    submodules = {f"{target}.{name}" for name in names if f"{target}.{name}" in MODULES}
    # the package itself counts where a name is taken from it (not only its submodules)
    found = submodules | ({target} if target in MODULES and len(submodules) < max(1, len(names)) else set())
    if not found and target.startswith("fastir"):
        raise AssertionError(f"import of a module that does not exist: {target}")
    return found


def imports(module: str) -> set[str]:
    """Every fastir module that ``module`` imports, anywhere in its source."""
    path = MODULES[module]
    return imports_in(path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py")


def imports_in(source: str, module: str, is_package: bool = False) -> set[str]:
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "fastir":
                    found |= _resolve(alias.name, [])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "fastir":
                found |= _resolve(target, [alias.name for alias in node.names])
    found.discard(module)
    return found


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "fastir"


def level(module: str) -> int:
    return len(ROOMS) if room(module) == "fastir" else ROOMS.index(room(module))


GRAPH = {module: imports(module) for module in MODULES}


def test_every_module_sits_in_a_named_room():
    assert {room(m) for m in MODULES} == {*ROOMS, "fastir"}
    # the top-level modules of the package are its face only: every other module lives in a room
    assert [m for m in MODULES if m.count(".") == 1 and room(m) not in ROOMS] == []


def test_imports_never_point_up():
    upward = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets if level(b) > level(a))
    assert upward == [], "imports against the room order " + " < ".join(ROOMS) + ":\n" + "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circles():
    assert _cycles(GRAPH) == []


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set(), "c": {"b"}}, []),
    ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["a", "b"], ["c", "d"]]),
])
def test_the_circle_finder_finds_circles(graph, expected):
    assert sorted(_cycles(graph)) == expected


def test_lazy_relative_and_type_checking_imports_are_walked():
    source = ("from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    from fastir.train.config import TrainConfig\n"
              "def f():\n    from fastir.eval import score\n    import fastir.core.names\n"
              "    from . import loop\n    from ..compare.stats import holm\n")
    assert imports_in(source, "fastir.train.step") == {
        "fastir.train.config", "fastir.eval.score", "fastir.core.names", "fastir.train.loop", "fastir.compare.stats"}


# ------------------------------------------------------------------------ tests mirror modules

TESTS = REPO / "tests"

# Modules without tests/<room>/test_<module>.py: module -> (why, the test file that covers it instead).
# The command modules' tests have yet to move to tests/cli/test_<verb>.py (they live beside what the
# command drives); the last two modules only declare.
TEST_FILE_EXEMPTIONS = {
    "fastir/compare/report.py": ("the comparison's tables and files are checked through compare",
                                 "tests/compare/test_comparison.py"),
    "fastir/cli/train.py": ("the command's tests live beside the training loop", "tests/train/test_loop.py"),
    "fastir/cli/experiment.py": ("the command's tests live beside the experiment driver",
                                 "tests/experiment/test_driver.py"),
    "fastir/cli/sample.py": ("the command's tests live beside the sampler it audits", "tests/sampling/test_sampler.py"),
    "fastir/sampling/choices.py": ("declarations only: the CLI's choice lists", "tests/sampling/test_strategies.py"),
    "fastir/train/state.py": ("declarations only: the dataclasses open_run and build_trainer return",
                              "tests/train/test_setup.py"),
}


def mirror_test_file(path: Path) -> Path:
    """tests/<room>/test_<module>.py of fastir/<room>/<module>.py."""
    rel = path.relative_to(PACKAGE)
    return TESTS.joinpath(*rel.parts[:-1], f"test_{rel.name}")


def test_every_module_has_its_test_file():
    modules = [p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__init__.py"]
    missing = [str(p.relative_to(REPO)) for p in modules if not mirror_test_file(p).is_file()]
    unexempted = [f"{m} -> {mirror_test_file(REPO / m).relative_to(REPO)}" for m in missing
                  if m not in TEST_FILE_EXEMPTIONS]
    assert unexempted == [], "modules without their test file (docs/design.md: tests mirror modules):\n" + \
        "\n".join(unexempted)
    # an exemption whose module gained its test file is dropped from the list
    assert sorted(set(TEST_FILE_EXEMPTIONS) - set(missing)) == []


def _mentions(text: str, module: Path) -> bool:
    """The test file names the module (dotted or as a path), or, for a CLI verb, runs it (``["verb", ...``)."""
    dotted = module_name(module)
    verb = f'["{module.stem}"' if module.parent.name == "cli" else None
    return (re.search(rf"\b{re.escape(dotted)}\b", text) is not None or str(module.relative_to(PACKAGE)) in text
            or (verb is not None and verb in text))


@pytest.mark.parametrize("module", sorted(TEST_FILE_EXEMPTIONS))
def test_every_exemption_names_an_existing_module_and_a_covering_test_file(module):
    reason, covering = TEST_FILE_EXEMPTIONS[module]
    path, tests = REPO / module, REPO / covering
    assert reason and path.is_file(), f"{module}: no such module"
    assert tests.is_file() and tests.parent.parent == TESTS, f"{module}: {covering} does not exist"
    assert _mentions(tests.read_text(encoding="utf-8"), path), f"{covering} does not mention {module}"


def test_the_mention_check_can_fail():
    score = PACKAGE / "cli" / "score.py"
    assert _mentions('main(["score", run])', score) and _mentions("from fastir.cli.score import X", score)
    assert not _mentions('main(["scores"])', score) and not _mentions("fastir.cli.scores", score)
    assert not _mentions('["score"', PACKAGE / "eval" / "score.py")  # a verb only for a CLI module
