"""An exception injected at an IO primitive of every writing command: the fault fires, the command
fails as its exception asks (exit 2 and one ``error:`` line for a failure of the environment or
memory, exit 130 for an interrupt, the traceback of a bug) and the output location is as it was:
nothing written, no temporary entry, no lock.

Only what a resumable command continues from may stay: embed's work dir beside OUT (its plan and
encoded parts), train's OUT once a checkpoint is in it, experiment's finished stages; then running
the command again (``--resume``) writes exactly the entries of a clean run. (One more: train
``--overwrite`` into an OUT that was there keeps its ``train.jsonl`` when it fails before the first
checkpoint.)

Each (command, primitive) pair is tested, except the pairs of :data:`NEVER_CALLED`; a test checks
that table against the calls of a clean run. Hypothesis draws which call fails, the exception and
whether an old output (replaced with ``--overwrite``) is there; experiment, the slowest command,
runs one explicit case per primitive instead.
"""

from __future__ import annotations

import builtins
import errno
import fnmatch
import itertools
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fastir.cli import main
from fastir.core import outputs
from fastir.core.temp_names import LOCK_TAG, TMP_TAG
from fastir.encoding.embed import work_dir_for
from tests.cli.conftest import WRITERS, command, one_line_error

FAULTS = {  # where an exception is injected: the IO primitives every writer goes through
    "publish": (outputs, "_publish"),
    "replace": (os, "replace"),
    "mkdir": (os, "mkdir"),  # calls that create a directory (on an existing path mkdir fails with EEXIST first)
    "mkstemp": (tempfile, "mkstemp"),
    "open-for-writing": (builtins, "open"),
    "write_text": (Path, "write_text"),
}
NEVER_CALLED = {  # (command, primitive): the command never calls the primitive
    ("compare", "mkstemp"),
    ("data-export", "open-for-writing"), ("data-export", "write_text"),
    ("data-to-train", "write_text"),
    ("sample", "write_text"),
    ("import", "open-for-writing"),
    ("embed", "open-for-writing"),
    ("train", "mkstemp"),
    ("preference", "mkstemp"), ("preference", "open-for-writing"),
    ("preference-run", "mkstemp"), ("preference-run", "open-for-writing"),
}
EXCEPTIONS = {  # name: (the exception, what main does with it: its exit status, or the exception it lets through)
    "disk full": (lambda: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), 2),
    "permission": (lambda: PermissionError(errno.EACCES, os.strerror(errno.EACCES)), 2),
    "memory": (lambda: MemoryError(), 2),
    "bug": (lambda: RuntimeError("a bug"), RuntimeError),  # keeps its traceback
    "interrupt": (lambda: KeyboardInterrupt(), 130),
}
RESUMABLE = {  # command: (where what it continues from stays, for the output out; an entry it needs there)
    "embed": (work_dir_for, "plan.json"),
    "train": (lambda out: out, "checkpoint-*"),
    "experiment": (lambda out: out, "*"),
}
OLD_ENTRY = {  # command: an entry its output folder holds (the old output it replaces)
    "score": "summary.json", "score-trec": "summary.json", "compare": "compare.json", "data-export": "qrels.arrow",
    "import": "run.json", "embed": "run.json", "preference": "summary.json", "score-run": "summary.json",
    "preference-run": "summary.json",
}
SLOW = ("experiment",)
PAIRS = [(name, fault) for name in WRITERS for fault in FAULTS if (name, fault) not in NEVER_CALLED]


@pytest.fixture(scope="module")
def every_input(inputs, embed_tiny_bert, train_tiny_bert):
    return {**inputs, "embed_model": embed_tiny_bert, "train_model": train_tiny_bert}


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in root.rglob("*")}


def _argv(every_input, name: str, root: Path, existing: bool) -> tuple[list[str], Path]:
    """The command's argv writing under ``root`` and its output; ``existing``: an old output is
    there (a file, or a directory with a file in it) and the argv replaces it (--overwrite)."""
    out = root / "sub" / "out"
    argv = command(name, every_input, out)
    if existing:
        target = Path(argv[argv.index("--out") + 1] if "--out" in argv else argv[3])
        if target.suffix:
            target.parent.mkdir(parents=True)
            target.write_text("old\n")
        else:  # a folder of the kind the command writes: --overwrite replaces nothing else
            target.mkdir(parents=True)
            (target / OLD_ENTRY.get(name, "old.txt")).write_text("old\n")
        argv = [*argv, "--overwrite"]
    return argv, out


def _existing_choices(name: str) -> list[bool]:
    return [False] if name == "experiment" else [False, True]  # experiment has no --overwrite: re-running resumes


def _count_calls(mp, fail_at: tuple[str, int, object] | None = None) -> dict[str, int]:
    """Wrap every primitive of FAULTS to count its calls; ``fail_at`` = (fault, nth, exception
    factory) raises instead of the nth call of that one."""
    calls = dict.fromkeys(FAULTS, 0)
    for fault, (owner, attr) in FAULTS.items():
        real = getattr(owner, attr)

        def wrapper(*args, _fault=fault, _real=real, **kwargs):
            if _fault == "open-for-writing":
                mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
                if not any(c in mode for c in "wax+"):
                    return _real(*args, **kwargs)
            if _fault == "mkdir" and os.path.lexists(args[0] if args else kwargs["path"]):
                return _real(*args, **kwargs)
            calls[_fault] += 1
            if fail_at is not None and fail_at[:2] == (_fault, calls[_fault]):
                raise fail_at[2]()
            return _real(*args, **kwargs)

        mp.setattr(owner, attr, wrapper)
    return calls


@pytest.fixture(scope="module")
def clean_run(every_input):
    """``clean_run(name, existing)``: (calls of each primitive, entries written) of the command run
    without a fault, after one run that warms its caches (Numba's kernels compile and save once)."""
    runs: dict[tuple[str, bool], tuple[dict[str, int], set[str]]] = {}
    warm: set[str] = set()

    def run(name: str, existing: bool, count: bool):
        with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
            argv, _ = _argv(every_input, name, Path(tmp), existing)
            calls = _count_calls(mp) if count else {}
            assert main(argv) == 0, argv
            mp.undo()
            return dict(calls), set(_snapshot(Path(tmp)))

    def get(name: str, existing: bool):
        if name not in warm:
            run(name, existing, count=False)
            warm.add(name)
        if (name, existing) not in runs:
            runs[name, existing] = run(name, existing, count=True)
        return runs[name, existing]

    return get


@pytest.mark.parametrize("name", WRITERS)
def test_the_never_called_table_is_exact(name, clean_run):
    """A primitive is in the table for a command iff no clean run of it calls the primitive, with or
    without an old output (a file output whose directory exists calls no mkdir)."""
    calls = {existing: clean_run(name, existing)[0] for existing in _existing_choices(name)}
    never = {f for f in FAULTS if not any(c[f] for c in calls.values())}
    assert never == {f for n, f in NEVER_CALLED if n == name}, calls


def _fail_once(every_input, clean_run, capsys, name, fault, nth, exc, existing) -> bool:
    """Run ``name`` with the nth call of ``fault`` raising ``exc`` and check all of the module
    docstring; returns whether the failure left something that the rerun resumed."""
    make_exc, outcome = EXCEPTIONS[exc]
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        root = Path(tmp)
        argv, out = _argv(every_input, name, root, existing)
        before = _snapshot(root)
        capsys.readouterr()
        calls = _count_calls(mp, (fault, nth, make_exc))
        if isinstance(outcome, type):
            with pytest.raises(outcome, match="a bug"):
                main(argv)
        else:
            code = main(argv)
            assert code == outcome, (code, capsys.readouterr().err)
            one_line_error(capsys.readouterr().err)
        mp.undo()
        assert calls[fault] >= nth  # the fault fired
        after = _snapshot(root)
        assert not [p for p in after if TMP_TAG in p or p.endswith(LOCK_TAG)], sorted(after)
        assert {p: after.get(p, "gone") for p in before} == before  # an old output survives the failure
        left = sorted(set(after) - set(before))
        if not left:
            return False
        assert name in RESUMABLE, left
        where, needed = RESUMABLE[name]
        keep = where(out).relative_to(root)
        assert all(keep == Path(p) or Path(p) in keep.parents or keep in Path(p).parents for p in left), left
        inside = [str(Path(p).relative_to(keep)) for p in left if keep in Path(p).parents]
        if name == "train" and existing and not fnmatch.filter(inside, needed):
            # train --overwrite into an OUT that was there (the old run already cleared from it) keeps
            # the log of a run that failed before its first checkpoint
            assert inside == ["train.jsonl"], left
        else:
            assert fnmatch.filter(inside, needed), left
        again = argv if name == "experiment" or "--overwrite" in argv else [*argv, "--resume"]
        assert main(again) == 0, capsys.readouterr().err
        assert set(_snapshot(root)) == clean_run(name, existing)[1]  # resumed: exactly a clean run's entries
        return True


@pytest.mark.parametrize("name, fault", [p for p in PAIRS if p[0] not in SLOW])
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_fault_fires_and_leaves_the_output_location_as_it_was(every_input, clean_run, capsys, name, fault, data):
    existing = data.draw(st.sampled_from([e for e in _existing_choices(name) if clean_run(name, e)[0][fault]]),
                         label="existing")
    nth = data.draw(st.integers(1, clean_run(name, existing)[0][fault]), label="nth call")
    exc = data.draw(st.sampled_from(sorted(EXCEPTIONS)), label="exception")
    left = _fail_once(every_input, clean_run, capsys, name, fault, nth, exc, existing)
    event("left what a rerun resumed" if left else "left nothing")


# experiment: one case per primitive, its middle call, the exceptions in turn
SLOW_CASES = [(name, fault, exc) for name in SLOW for (fault, exc) in zip(
    [f for n, f in PAIRS if n == name], itertools.cycle(sorted(EXCEPTIONS)))]


@pytest.mark.slow
@pytest.mark.parametrize("name, fault, exc", SLOW_CASES)
def test_a_fault_fires_and_leaves_only_what_a_rerun_resumes(every_input, clean_run, capsys, name, fault, exc):
    nth = (clean_run(name, False)[0][fault] + 1) // 2
    _fail_once(every_input, clean_run, capsys, name, fault, nth, exc, existing=False)


def test_every_exception_is_tried_on_the_slow_commands():
    for name in SLOW:
        assert {exc for n, _, exc in SLOW_CASES if n == name} == set(EXCEPTIONS)
