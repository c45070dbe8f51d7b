"""Packaging: light import, the kernels mapping, the CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys


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


def test_kernels_installed_under_fastir_only(tmp_path):
    out = _python(
        "import importlib.util, fastir.kernels; "
        "from transformers.utils.import_utils import is_kernels_available; "
        "print(importlib.util.find_spec('kernels') is None, is_kernels_available())",
        tmp_path,
    )
    assert out.split() == ["True", "False"]


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
