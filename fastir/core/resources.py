"""Sizes checked before allocation: a request that cannot fit in memory fails with one line
naming the option to lower, instead of a MemoryError (or the OOM killer) minutes later."""

from __future__ import annotations

import os

from fastir.core.errors import InputError

GIB = float(1 << 30)


def available_memory() -> int | None:
    """Bytes this process can still allocate: MemAvailable, capped by a cgroup v2/v1 limit; None if unknown."""
    limits = []
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError):
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file, encoding="ascii") as fh:
                raw = fh.read().strip()
            if raw == "max" or int(raw) >= 1 << 60:
                continue
            with open(usage_file, encoding="ascii") as fh:
                limits.append(max(0, int(raw) - int(fh.read().strip())))
            break
        except (OSError, ValueError):
            continue
    if not limits and hasattr(os, "sysconf"):
        try:
            limits.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError):
            pass
    return min(limits) if limits else None


def require_memory(nbytes: int, field: str, what: str) -> None:
    """Raise ``InputError(None, field, ...)`` when ``nbytes`` for ``what`` exceed the available memory."""
    free = available_memory()
    if free is not None and nbytes > free:
        raise InputError(None, field, f"{what} needs {nbytes / GIB:.1f} GiB, only {free / GIB:.1f} GiB of memory "
                                      f"is available; lower {field}")


def score_block_rows(n_rows: int, n_cols: int, block_mb: float) -> int:
    """Rows per float32 score block of ``n_cols`` columns within ``block_mb`` MiB, made equal across
    the blocks (the same number of products, a smaller buffer to fault in), checked against memory."""
    rows = int(max(1, min(n_rows, float(block_mb) * (1 << 20) // max(1, n_cols * 4))))
    n_blocks = -(-n_rows // rows)
    rows = -(-n_rows // n_blocks)
    require_memory(rows * n_cols * 4, "--block-mb", f"a score block of {rows} x {n_cols} float32")
    return rows
