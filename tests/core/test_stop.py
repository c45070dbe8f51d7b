"""fastir.core.stop: SIGTERM and Ctrl-C stop the ``fastir`` executable within about a second even
while a native call that releases the GIL but checks no signal (a BLAS product, a forward pass)
holds the main thread, and the process's temporaries are removed (issue 31, item 18)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fastir.core import stop

# The child writes an output through fastir.core.outputs, then, with the temporary still open,
# runs one numpy product long enough (~10 s on 2 cores) that Python could run no handler before it ends.
_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np
    import fastir.cli
    import fastir.data.registry
    from fastir.core.outputs import atomic_path

    out, flag = Path(sys.argv[1]), Path(sys.argv[2])

    def stall(*args, **kwargs):  # `fastir data show X` opens its dataset here
        a = np.ones((9000, 9000), np.float32)
        with atomic_path(out) as tmp:
            tmp.write_text("partial")
            flag.write_text("in the product")
            a @ a

    fastir.data.registry.open_dataset = stall
    sys.argv = ["fastir", "data", "show", "anything"]
    sys.exit(fastir.cli.executable())
""")


@pytest.mark.parametrize("signum, code, line", [(signal.SIGTERM, 143, "error: terminated"),
                                                (signal.SIGINT, 130, "error: aborted")])
def test_a_signal_stops_a_stalled_command_within_a_second(tmp_path, signum, code, line):
    out, flag = tmp_path / "out.txt", tmp_path / "flag"
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(out), str(flag)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not flag.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "no flag"
        time.sleep(0.05)
    time.sleep(0.3)  # inside the product
    sent = time.monotonic()
    proc.send_signal(signum)
    assert proc.wait(timeout=60) == code
    elapsed = time.monotonic() - sent
    assert elapsed < stop_bound(), f"stopped {elapsed:.2f} s after the signal"
    assert proc.stderr.read().strip().splitlines()[-1] == line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flag"]  # the temporary is gone, nothing published


def stop_bound() -> float:
    return 0.5 + 1.5  # the grace, and room for a loaded 2-core machine


def test_temporaries_are_registered_only_while_they_exist(tmp_path):
    f, d = tmp_path / "f.tmp", tmp_path / "d.tmp"
    with stop.temporary(f), stop.temporary(d):
        f.write_text("x")
        d.mkdir()
        (d / "inner").write_text("y")
        assert {os.fspath(f), os.fspath(d)} <= stop._LIVE
        stop.remove_temporaries()
        assert not f.exists() and not d.exists()
    assert os.fspath(f) not in stop._LIVE and os.fspath(d) not in stop._LIVE


def test_outputs_register_their_temporaries(tmp_path):
    from fastir.core.outputs import atomic_dir, atomic_path

    with atomic_path(tmp_path / "a.json") as tmp:
        assert os.fspath(tmp) in stop._LIVE
    with atomic_dir(tmp_path / "d") as tmp:
        assert os.fspath(tmp) in stop._LIVE
    assert not any(p.startswith(os.fspath(tmp_path)) for p in stop._LIVE)
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["a.json", "d"]
