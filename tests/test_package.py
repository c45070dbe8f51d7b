"""Packaging: light import, the kernels mapping, the CLI entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
# A venv made inside the checkout (as the README's commands make .venv) is not the repo's own code.
SITE = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}


def _repo_paths(paths) -> list[str]:
    """The paths of ``paths`` that lie in this checkout, outside the running interpreter's site-packages."""
    found = []
    for path in filter(None, paths):
        resolved = Path(path).resolve()
        if resolved.is_relative_to(REPO) and not any(resolved.is_relative_to(s) for s in SITE):
            found.append(path)
    return found


def _importable_inside(folder: Path) -> bool:
    """Whether a namespace portion ``folder`` contributes a module: a .py file or an identifier-named subfolder."""
    return any(p.suffix == ".py" or (p.is_dir() and p.name.isidentifier()) for p in folder.iterdir())


def _python(code: str, cwd) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_import_is_light(tmp_path):
    out = _python(
        "import sys, time, json; t = time.perf_counter(); import fastir, fastir.cli, fastir.data.lareqa; "
        "dt = time.perf_counter() - t; "
        "print(json.dumps([dt, [m for m in ('torch', 'transformers', 'numba') if m in sys.modules]]))",
        tmp_path,
    )
    seconds, heavy = json.loads(out)
    assert heavy == []
    assert seconds < 0.5


def test_cli_help_imports_no_array_library(tmp_path):
    # `fastir --help` imports every sub-command module for its one-line help: they stay light.
    out = _python(
        "import sys, json\nfrom fastir.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(json.dumps([m for m in ('numpy', 'pyarrow', 'torch', 'numba') if m in sys.modules]))",
        tmp_path,
    )
    assert json.loads(out.splitlines()[-1]) == []


def _repo_top_level_names() -> list[str]:
    """Names that ``import NAME`` could find in the repo root: folders and .py files named as identifiers."""
    return sorted(p.stem for p in REPO.iterdir()
                  if not p.name.startswith(".") and (p.is_dir() or p.suffix == ".py") and p.stem.isidentifier())


def test_repo_root_first_on_sys_path_shadows_no_installed_distribution():
    # `python` run in the repo root, a notebook beside the code and pytest (pythonpath ".") put the
    # root first on sys.path; a top-level kernels/__init__.py there once broke every transformers model.
    provided = packages_distributions()
    names = [n for n in _repo_top_level_names() if n in provided and n != "fastir"]
    out = _python(
        "import importlib.util, json, sys\n"
        f"assert sys.path[0] in ('', {str(REPO)!r})\n"
        f"names = {names!r}\n"
        "specs = {n: importlib.util.find_spec(n) for n in names}\n"
        "print(json.dumps({n: [s.origin, list(s.submodule_search_locations or [])] for n, s in specs.items()}))",
        REPO,
    )
    for name, (origin, locations) in json.loads(out).items():
        # ours as the module itself, or as a namespace portion that adds modules to theirs (ir_datasets
        # installs a top-level `examples` namespace; examples/ here holds no Python, so it adds none)
        mine = _repo_paths([origin]) + [p for p in _repo_paths(locations) if _importable_inside(Path(p))]
        assert not mine, f"`import {name}` from the repo root finds this repo's {mine}, not {provided[name]}"


def test_transformers_model_code_imports_from_the_repo_root():
    out = _python(
        "import importlib.util, json, transformers.activations, transformers.integrations.hub_kernels\n"
        "from transformers.utils.import_utils import is_kernels_available\n"
        "spec = importlib.util.find_spec('kernels')\n"
        "print(json.dumps([spec and spec.origin, is_kernels_available()]))",
        REPO,
    )
    origin, available = json.loads(out)
    if "kernels" in packages_distributions():  # transformers >= 5.25 requires it
        assert origin and not _repo_paths([origin]) and available
    else:
        assert origin is None and not available


@pytest.mark.slow
def test_wheel_install_scores_a_run(tmp_path, make_run):
    # A regular (non-editable) install: build the wheel, install it into a scratch venv that sees
    # the dependencies of this one (a .pth line, so this venv's editable finder is not loaded).
    # built from a copy of the sources: setuptools builds in the tree (build/), and a build/lib left
    # by an earlier layout would slip stale modules into the wheel
    source, wheels, venv = tmp_path / "source", tmp_path / "wheels", tmp_path / "venv"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis")
    top = {".git", ".venv", "build", "dist", "runs"}  # the checkout's own, not the sources
    shutil.copytree(REPO, source, ignore=lambda d, names: skip(d, names) | (top & set(names) if d == str(REPO) else set()))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(source)], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = wheels.glob("fastir-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    run = make_run(tmp_path, q_emb=[[1, 0], [0, 1]], q_langs=["de", "en"], c_emb=[[1, 0], [0, 1], [-1, -1]],
                   c_langs=["de", "en", "en"], qrels=[(0, 0), (0, 1), (1, 0), (1, 1)])
    code = ("import json, sys, fastir.kernels.ranking as ranking\n"
            "from fastir.cli import main\n"
            "code = main(['score', sys.argv[1], '--pairs', 'all', '--out', sys.argv[2]])\n"
            "print(json.dumps([ranking.__file__, code]))")
    done = subprocess.run([python, "-c", code, str(run), str(tmp_path / "scores")], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    kernel_file, code = json.loads(out.splitlines()[-1])
    assert code == 0, done.stderr
    assert Path(kernel_file).resolve().is_relative_to(site.resolve())
    summary = json.loads((tmp_path / "scores" / "summary.json").read_text())
    # each query ranks its two golds (one per language) first and second in the pool of three
    assert [summary["summary"][s]["map"] for s in ("mono", "cross", "multi")] == [1.0, 1.0, 1.0]
    assert summary["summary"]["multi"]["recall@1"] == 0.5


def test_cli_help_and_version(tmp_path):
    out = subprocess.run(["fastir", "--help"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    for name in ("data", "embed", "score", "sample", "train", "compare"):
        assert name in out
    out = subprocess.run(["fastir", "--version"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "fastir" in out


def test_cli_usage_error_exit_2(tmp_path):
    res = subprocess.run(["fastir", "data", "show"], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.startswith("error: ") and res.stderr.count("\n") == 1


def test_console_script_is_the_process_entry_point():
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "fastir"]
    assert script.value == "fastir.cli:executable"  # main() in a process of its own (see its docstring)
