"""Stopping within a second on SIGTERM or Ctrl-C, even while a native call holds the main thread.

Python runs a signal handler between two bytecodes of the main thread: a torch forward pass, a
tokenizer call or a BLAS product can keep it waiting for seconds, and only then do the command's
``finally`` blocks remove its temporaries. The ``fastir`` executable therefore also has the signal
written to a pipe (:func:`signal.set_wakeup_fd`, done by the C-level handler at once) and a thread
that reads it (:func:`watch_signals`). If the main thread has not finished its own cleanup by
``grace_s`` after the signal, the thread removes this process's live temporaries (every temporary
entry :mod:`fastir.core.outputs` creates is registered here while it exists), prints the same line
the orderly path prints and ends the process. Finished work (published outputs, embed's work dir
and training checkpoints, which are not temporaries) stays for ``--resume``. The lock files are
released by the kernel with the process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator

_LIVE: set[str] = set()  # temporary entries of this process that exist now
_LOCK = threading.Lock()
EXIT = {signal.SIGTERM: (143, b"error: terminated\n"), signal.SIGINT: (130, b"error: aborted\n")}


@contextlib.contextmanager
def temporary(path: str | os.PathLike) -> Iterator[None]:
    """Register ``path`` (a temporary file or directory) as this process's while the block runs."""
    key = os.fspath(path)
    with _LOCK:
        _LIVE.add(key)
    try:
        yield
    finally:
        with _LOCK:
            _LIVE.discard(key)


def remove_temporaries() -> None:
    """Remove every registered temporary entry (best effort: the process is about to end)."""
    with _LOCK:
        live = list(_LIVE)
    for path in live:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)


def watch_signals(grace_s: float = 0.5) -> Callable[[], None]:
    """Start the watcher (main thread only); returns the function that stops it."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    stopped = threading.Event()

    def watch() -> None:
        while not stopped.is_set():
            try:
                data = os.read(read_end, 1)
            except OSError:
                return
            if not data or data[0] not in EXIT or stopped.wait(grace_s):
                continue  # not ours, or the main thread finished in time
            code, line = EXIT[signal.Signals(data[0])]
            remove_temporaries()
            os.write(2, line)
            os._exit(code)

    thread = threading.Thread(target=watch, name="fastir-stop", daemon=True)
    thread.start()

    def stop() -> None:
        stopped.set()
        signal.set_wakeup_fd(previous)
        os.close(write_end)  # the watcher's read ends
        thread.join(timeout=1.0)
        os.close(read_end)

    return stop
