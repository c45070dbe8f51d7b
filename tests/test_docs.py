"""The README stays short, and what README.md and docs/ name exists: linked pages and their
headings, repository paths, test functions, and fastir modules with the names they define."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = ("data", "embed", "score", "compare", "sampler", "train", "benchmarks", "design")
MAX_README_LINES = 250

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
REPO_PATH = re.compile(r"^((?:fastir|kernels|bench|tests|data_specs)/[\w./-]*?)(?:::(\w+))?$")
DOTTED = re.compile(r"\bfastir(?:\.\w+)+")
FROM_IMPORT = re.compile(r"^\s*from\s+(fastir(?:\.\w+)*)\s+import\s+([\w, ]+)", re.M)


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, re.M)}


def prose(page: Path) -> str:
    """The page without its fenced code blocks (examples there need not name real files)."""
    return re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_every_area_has_a_page_and_the_readme_links_each():
    readme = README.read_text(encoding="utf-8")
    linked = {target.split("#")[0] for target in LINK.findall(readme)}
    for name in PAGES:
        assert (DOCS / f"{name}.md").is_file(), f"docs/{name}.md is missing"
    for page in DOCS.glob("*.md"):
        assert f"docs/{page.name}" in linked, f"README.md does not link docs/{page.name}"


def test_main_command_and_bench_table_markers_are_in_place():
    readme = README.read_text(encoding="utf-8")
    for marker in ("<!-- main-command:start -->", "<!-- main-command:end -->"):
        assert readme.count(marker) == 1, marker
    bench = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    start, end = bench.find("\n<!-- bench-table:start -->\n"), bench.find("\n<!-- bench-table:end -->")
    assert 0 <= start < end, "docs/benchmarks.md: bench-table markers missing or out of order"
    assert "| Case | fastir | Peer |" in bench[start:end], "docs/benchmarks.md: no rendered bench table"


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: p.name)
def test_relative_links_and_anchors_resolve(page):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{page.name}: link to missing {target}"
        if anchor:
            assert dest.suffix == ".md", f"{page.name}: anchor into a non-Markdown file: {target}"
            assert anchor in anchors(dest), f"{page.name}: no heading '#{anchor}' in {dest.name}"


def _module_file(parts: list[str]) -> Path | None:
    """The source file of the module ``fastir.<parts>``, or None when that is not a module."""
    if parts and parts[0] == "data_specs":  # installed as fastir.data_specs
        base = REPO / parts[0] / Path(*parts[1:])
    else:
        base = REPO / "fastir" / Path(*parts)
    if parts and base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _defines(source: str, name: str) -> bool:
    return re.search(rf"\b(?:def|class)\s+{name}\b|^\s*{name}\s*[:=]|import\s[^\n]*\b{name}\b|[\"']{name}[\"']",
                     source, re.M) is not None


# Dotted names that are not modules: the entry-point group third-party encoder backends register in.
ENTRY_POINT_GROUPS = {"fastir.encoders": REPO / "fastir" / "encoding" / "backends.py"}


def check_dotted(name: str) -> str | None:
    """None if fastir.a.b[.attr[.attr]] names a module and (optionally) something it defines,
    or is an entry-point group that the code really reads."""
    if name in ENTRY_POINT_GROUPS:
        source = ENTRY_POINT_GROUPS[name].read_text(encoding="utf-8")
        return None if re.search(rf"ENTRY_POINT_GROUP = [\"']{re.escape(name)}[\"']", source) else (
            f"{name}: {ENTRY_POINT_GROUPS[name].relative_to(REPO)} does not read this entry-point group")
    parts = name.split(".")[1:]
    module = _module_file([])
    i = 0
    while i < len(parts):
        found = _module_file(parts[: i + 1])
        if found is None:
            break
        module, i = found, i + 1
    if i == len(parts):
        return None
    if not _defines(module.read_text(encoding="utf-8"), parts[i]):
        return f"{name}: {module.relative_to(REPO)} defines no {parts[i]}"
    return None


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: p.name)
def test_named_paths_modules_and_tests_exist(page):
    problems = []
    text = page.read_text(encoding="utf-8")
    for span in CODE_SPAN.findall(prose(page)):
        for word in span.split():
            m = REPO_PATH.match(word.rstrip(",.;:)"))
            if m and not any(ch in m.group(1) for ch in "*<{"):
                path = REPO / m.group(1)
                if not path.exists():
                    problems.append(f"missing path {m.group(1)}")
                elif m.group(2) and not re.search(rf"^\s*def {m.group(2)}\b", path.read_text(encoding="utf-8"), re.M):
                    problems.append(f"{m.group(1)} has no {m.group(2)}")
        for dotted in DOTTED.findall(span):
            if (err := check_dotted(dotted)) is not None:
                problems.append(err)
    for module, names in FROM_IMPORT.findall(text):
        for name in (n.strip() for n in names.split(",")):
            if name and (err := check_dotted(f"{module}.{name}")) is not None:
                problems.append(err)
    assert not problems, f"{page.name}: " + "; ".join(problems)


def test_metric_definitions_live_only_in_docs_score():
    # AP's defining formula is written once, in docs/score.md; every other text points there.
    defining = re.compile(r"AP\(q\)\s*=")
    holders = [p for p in [*markdown_files(), *REPO.glob("fastir/**/*.py")]
               if defining.search(p.read_text(encoding="utf-8"))]
    assert [p.relative_to(REPO).as_posix() for p in holders] == ["docs/score.md"]
