"""The ``fastir`` command line. It only parses arguments and calls the library.

Sub-commands live one per module and are imported lazily, so ``fastir --help`` and
``fastir data show`` never import torch or numba.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings

# OpenBLAS worker threads busy-wait after every matrix product (~0.1 s by default) and steal the
# cores the Numba ranking kernel needs right after each score block (measured: kernel time halves).
# Must be set before numpy loads OpenBLAS; a user's own setting wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")

import click

from fastir.core import __version__
from fastir.core.errors import FastirError, FastirWarning, from_environment

EXIT_TERMINATED = 143  # 128 + SIGTERM
EXIT_INTERRUPTED = 130  # 128 + SIGINT

EPILOG = """\b
Exit status: 0 success; 2 bad input or a failure of the environment (permission
denied, disk full, out of memory, a truncated model file), reported on stderr as
one line `error: <file>: <field>: <message>` with nothing half-written left behind;
130 interrupted (Ctrl-C); 143 terminated (SIGTERM). A second command writing an
output that another one is writing fails at once (field `lock`, naming its pid)."""

# name -> "module:attribute"; each module defines one click command or group.
SUBCOMMANDS = {
    "data": "fastir.cli.data:data",
    "embed": "fastir.cli.embed:embed",
    "score": "fastir.cli.score:score",
    "preference": "fastir.cli.preference:preference",
    "preference-run": "fastir.cli.preference_run:preference_run",
    "score-run": "fastir.cli.score_run:score_run",
    "sample": "fastir.cli.sample:sample",
    "train": "fastir.cli.train:train",
    "experiment": "fastir.cli.experiment:experiment",
    "compare": "fastir.cli.compare:compare",
    "import": "fastir.cli.import_:import_",
    "models": "fastir.cli.models:models",
    "export": "fastir.cli.export:export",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx, name):
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.version_option(__version__, prog_name="fastir")
def cli():
    """fastir: exact, fast evaluation and training of multilingual dense retrievers."""


class Terminated(SystemExit):
    """SIGTERM, raised in the main thread so that every ``finally`` (temporary outputs) runs."""


def _on_sigterm(signum, frame):
    raise Terminated(EXIT_TERMINATED)


def main(argv: list[str] | None = None, own_process: bool = False) -> int:
    """Entry point: one-line errors and exit code 2 for every bad input or environment failure.

    ``own_process``: this process exists only to run the command (see :func:`executable`).
    """
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", FastirWarning)
            warnings.showwarning = _show_warning
            return _run(argv, own_process)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


_python_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """fastir's own warnings as one line ``warning: <message>`` on stderr; any other as Python shows it."""
    if issubclass(category, FastirWarning):
        echo(f"warning: {message}", err=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


def echo(message: str = "", err: bool = False, nl: bool = True) -> None:
    """``click.echo`` of text that may hold data (model names, ids, paths from files): control
    characters are shown as escapes, so a crafted run.json cannot drive the terminal."""
    from fastir.core.names import printable

    click.echo(printable(message if isinstance(message, str) else str(message)), err=err, nl=nl)


def executable() -> int:
    """The ``fastir`` executable (``[project.scripts]``): :func:`main` in a process of its own.

    Only here may a command take process-wide shortcuts (:func:`owns_process`, see
    :func:`fastir.kernels.lazy.preload`); :func:`main` called inside another Python process (a
    test, a notebook) takes none. And interpreter exit would run the cyclic collector over every
    object still alive, most of them what the imports of Numba, torch or transformers created
    (about 10^5 in ``fastir score``: 0.2 s of the 2.5 s the user waits for, measured with perf).
    They die with the process anyway, so they are frozen out of the collector (:func:`gc.freeze`)
    once the command has returned; ``finally`` handlers and ``atexit`` functions still run.

    A command stopped by SIGTERM or Ctrl-C has run every cleanup (temporaries removed, locks
    released) by the time :func:`main` returns; the interpreter's own teardown after a torch model
    then took another 2-3 s (measured: 0.05 s from the signal to ``atexit``, 2.5 s to the process's
    end), so that process ends at once (:func:`os._exit`, after ``atexit`` and flushing).
    """
    import atexit
    import gc
    import threading

    from fastir.core.stop import watch_signals

    stop_watching = watch_signals() if threading.current_thread() is threading.main_thread() else None
    try:
        code = main(own_process=True)
    finally:
        if stop_watching is not None:
            stop_watching()
        gc.freeze()
    if code in (EXIT_TERMINATED, EXIT_INTERRUPTED):
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def owns_process() -> bool:
    """Whether the running command is the whole process (:func:`executable`), not a call inside another one."""
    return bool((click.get_current_context().obj or {}).get("own_process"))


def _run(argv: list[str] | None, own_process: bool) -> int:
    try:
        cli.main(args=argv, prog_name="fastir", standalone_mode=False, obj={"own_process": own_process})
    except FastirError as exc:
        echo(f"error: {exc.one_line()}", err=True)
        return exc.exit_code
    except Terminated:
        click.echo("error: terminated", err=True)
        return EXIT_TERMINATED
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        # Usage errors (unknown option, bad value) are bad input too: exit 2, one line.
        msg = exc.format_message().replace("\n", " ")
        echo(f"error: {msg}", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # OSError, MemoryError, a corrupt model file: see from_environment
        error = from_environment(exc)
        if error is None:
            raise  # a bug: keep the traceback
        echo(f"error: {error.one_line()}", err=True)
        return error.exit_code
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(executable())
