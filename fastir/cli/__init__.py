"""The ``fastir`` command line. It only parses arguments and calls the library.

Sub-commands live one per module and are imported lazily, so ``fastir --help`` and
``fastir data show`` never import torch or numba.
"""

from __future__ import annotations

import importlib
import os
import sys

# OpenBLAS worker threads busy-wait after every matrix product (~0.1 s by default) and steal the
# cores the Numba ranking kernel needs right after each score block (measured: kernel time halves).
# Must be set before numpy loads OpenBLAS; a user's own setting wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")

import click

from fastir import __version__
from fastir.errors import FastirError, from_environment

EXIT_TERMINATED = 143  # 128 + SIGTERM

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
    "sample": "fastir.cli.sample:sample",
    "train": "fastir.cli.train:train",
    "experiment": "fastir.cli.experiment:experiment",
    "compare": "fastir.cli.compare:compare",
    "import": "fastir.cli.import_:import_",
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


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors and exit code 2 for every bad input or environment failure."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _run(argv)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="fastir", standalone_mode=False)
    except FastirError as exc:
        click.echo(f"error: {exc.one_line()}", err=True)
        return exc.exit_code
    except Terminated:
        click.echo("error: terminated", err=True)
        return EXIT_TERMINATED
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        return 130
    except click.ClickException as exc:
        # Usage errors (unknown option, bad value) are bad input too: exit 2, one line.
        msg = exc.format_message().replace("\n", " ")
        click.echo(f"error: {msg}", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # OSError, MemoryError, a corrupt model file: see from_environment
        error = from_environment(exc)
        if error is None:
            raise  # a bug: keep the traceback
        click.echo(f"error: {error.one_line()}", err=True)
        return error.exit_code
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
