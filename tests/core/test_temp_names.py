"""fastir.core.temp_names: the names of fastir's temporary and lock entries beside an output, and
the way back from them (and from paths inside them) to the output they stand for."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fastir.core.temp_names import LEFTOVER, base_name, lock_file, output_name, temp_prefix


def test_output_name_maps_temporaries_and_locks_back(tmp_path):
    # (moved from tests/core/test_outputs.py, where the temporaries are created)
    assert output_name(tmp_path / ".d.fastir-lock") == tmp_path / "d"
    assert output_name(tmp_path / "plain") == tmp_path / "plain"
    assert output_name(tmp_path / "..t.fastir-tmp-1-a.fastir-tmp-1-b" / "x.run") == tmp_path / "t" / "x.run"
    assert output_name(tmp_path / f".d.fastir-tmp-{os.getpid()}-x1" / ".p.png.fastir-tmp-1-y") == tmp_path / "d" / "p.png"


@pytest.mark.parametrize("name", [
    "out", "out.json", "a b", ".hidden", "x.fastir-tmp", "fastir-lock", "run.fastir-tmp-12",  # not ours
    ".out.fastir-tmp-abc-x",  # no pid
])
def test_other_names_are_left_as_they_are(name):
    assert output_name(Path("/data") / name / "f") == Path("/data") / name / "f"
    assert base_name(name) == name


def test_temp_prefix_and_lock_file_sit_beside_the_output_and_map_back(tmp_path):
    out = tmp_path / "scores"
    prefix = temp_prefix(out)
    assert prefix == f".scores.fastir-tmp-{os.getpid()}-"
    assert output_name(tmp_path / (prefix + "k3j2")) == out
    assert output_name(tmp_path / (prefix + "k3j2-old")) == out  # the swapped-out old directory
    lock = lock_file(str(out))
    assert lock == tmp_path / ".scores.fastir-lock" and output_name(lock) == out
    assert lock_file("rel") == Path(".rel.fastir-lock")


def test_base_name_sees_through_temporaries_of_temporaries():
    once = f"{temp_prefix('trec')}abc"
    twice = f"{temp_prefix(once)}def"
    assert base_name(once) == base_name(twice) == "trec"
    assert base_name(".trec.fastir-lock") == ".trec.fastir-lock"  # a lock is not a leftover temporary


def test_leftover_names_carry_the_writers_pid():
    m = LEFTOVER.match(".out.json.fastir-tmp-4242-x_9")
    assert m is not None and (m["name"], int(m["pid"])) == ("out.json", 4242)
    assert LEFTOVER.match("out.json.fastir-tmp-4242-x") is None  # not hidden: not ours
    assert LEFTOVER.match(".out.fastir-tmp-4242") is None  # no random part


def test_long_names_are_fitted_not_pushed_over_the_limit():
    # issue 31, item 12: fastir's own names pushed a legal output name over 255 bytes
    from fastir.core.temp_names import NAME_MAX, TMP_RESERVED, fit_name

    assert fit_name("scores", TMP_RESERVED) == "scores"
    long = "é" * 120  # 240 bytes: legal, but not with a temporary's suffix
    fitted = fit_name(long, TMP_RESERVED)
    assert len(fitted.encode()) + TMP_RESERVED <= NAME_MAX and fitted.startswith("é" * 10) and "~" in fitted
    assert fitted == fit_name(long, TMP_RESERVED) != fit_name(long[:-1] + "e", TMP_RESERVED)  # stable, distinct
    assert len(lock_file(Path("/x") / long).name.encode()) <= NAME_MAX
    assert len(temp_prefix(Path("/x") / long).encode()) + 8 + 4 <= NAME_MAX  # mkstemp's random part, '-old'
