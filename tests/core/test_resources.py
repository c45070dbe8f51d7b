"""fastir.core.resources: available memory from /proc/meminfo and the cgroup v2 / v1 limits (read
through a fake file system), the one-line refusal before an allocation, and equal score blocks."""

from __future__ import annotations

import io
import math

import pytest

from fastir.core import resources
from fastir.core.errors import InputError
from fastir.core.resources import GIB, available_memory, require_memory, score_block_rows

MEMINFO = "MemTotal:       16384000 kB\nMemFree:         1000000 kB\nMemAvailable:    8000000 kB\n"
V2 = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current")
V1 = ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")


@pytest.fixture
def files(monkeypatch):
    """The files available_memory reads: path -> text; any other path does not exist."""
    fake: dict[str, str] = {}

    def fake_open(path, *args, **kwargs):
        if path not in fake:
            raise FileNotFoundError(2, "No such file or directory", path)
        return io.StringIO(fake[path])

    monkeypatch.setattr(resources, "open", fake_open, raising=False)
    monkeypatch.setattr(resources.os, "sysconf", lambda name: pytest.fail("sysconf read although a limit was known"))
    return fake


def test_mem_available_alone(files):
    files["/proc/meminfo"] = MEMINFO
    assert available_memory() == 8000000 * 1024


@pytest.mark.parametrize("limits, want", [
    ({V2[0]: "4294967296\n", V2[1]: "1073741824\n"}, 3 << 30),  # cgroup v2 below MemAvailable: limit - usage
    ({V2[0]: "max\n", V2[1]: "1\n"}, 8000000 * 1024),  # no v2 limit, no v1 files
    ({V2[0]: "max\n", V1[0]: "2147483648", V1[1]: "1073741824"}, 1 << 30),  # v2 unlimited, v1 limited
    ({V1[0]: str(1 << 62), V1[1]: "5"}, 8000000 * 1024),  # v1's "unlimited" is a huge number
    ({V2[0]: "1000", V2[1]: "5000"}, 0),  # usage above the limit: nothing left
    ({V2[0]: "100000000000000", V2[1]: "0"}, 8000000 * 1024),  # a limit above MemAvailable
    ({V2[0]: "garbage", V1[0]: "3000", V1[1]: "1000"}, 2000),  # unreadable v2: v1 is used
])
def test_cgroup_limits_cap_mem_available(files, limits, want):
    files["/proc/meminfo"] = MEMINFO
    files.update(limits)
    assert available_memory() == want


def test_cgroup_limit_without_meminfo(files):
    files.update({V2[0]: "4096", V2[1]: "1024"})
    assert available_memory() == 3072


def test_nothing_readable_falls_back_to_sysconf_then_none(files, monkeypatch):
    files["/proc/meminfo"] = "MemTotal: 100 kB\n"  # no MemAvailable line
    pages = {"SC_AVPHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(resources.os, "sysconf", pages.__getitem__)
    assert available_memory() == 4096000

    def unsupported(name):
        raise ValueError(f"unrecognized configuration name {name}")

    monkeypatch.setattr(resources.os, "sysconf", unsupported)
    assert available_memory() is None


def test_require_memory_refuses_with_one_line_naming_the_option(monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: 2 * 1 << 30)
    require_memory(2 * 1 << 30, "--samples", "resamples")  # exactly what is there: fine
    with pytest.raises(InputError) as info:
        require_memory(3 * (1 << 30) + 1, "--samples", "10000 resamples of 12 statistics")
    err = info.value
    assert err.path is None and err.field == "--samples"
    assert str(err) == ("--samples: 10000 resamples of 12 statistics needs 3.0 GiB, only 2.0 GiB of memory "
                        "is available; lower --samples")
    monkeypatch.setattr(resources, "available_memory", lambda: None)  # unknown: nothing is refused
    require_memory(1 << 60, "--k", "anything")


@pytest.mark.parametrize("n_rows, n_cols, block_mb", [
    (1000, 3, 0.01), (1000, 3, 256), (7, 1_000_000, 1), (1, 10, 1e-9), (12345, 77, 0.5), (100, 262144, 1),
])
def test_score_blocks_are_equal_and_within_the_budget(monkeypatch, n_rows, n_cols, block_mb):
    monkeypatch.setattr(resources, "available_memory", lambda: None)
    rows = score_block_rows(n_rows, n_cols, block_mb)
    budget_rows = max(1, int(block_mb * (1 << 20) // (4 * n_cols)))  # the most rows one block may hold
    fewest_blocks = math.ceil(n_rows / min(n_rows, budget_rows))
    assert 1 <= rows <= min(n_rows, budget_rows)
    assert math.ceil(n_rows / rows) == fewest_blocks  # no more blocks than the budget needs ...
    assert rows == math.ceil(n_rows / fewest_blocks)  # ... and as equal as they can be


def test_score_block_is_checked_against_memory(monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: 1000)
    with pytest.raises(InputError, match=r"^--block-mb: a score block of 500 x 1000 float32 needs 0\.0 GiB"):
        score_block_rows(1000, 1000, 2)  # 2 MiB = 524 rows -> two blocks of 500
    monkeypatch.setattr(resources, "available_memory", lambda: 500 * 1000 * 4)
    assert score_block_rows(1000, 1000, 2) == 500
    assert GIB == 2.0 ** 30
