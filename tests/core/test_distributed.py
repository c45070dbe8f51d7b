"""The torchrun helper outside torchrun: a single process, every collective a no-op.
(Two gloo ranks: tests/train/test_loop.py::test_torchrun_two_gloo_ranks_match_one_process.)"""

from __future__ import annotations

import pytest

from fastir.core.distributed import Distributed
from fastir.core.errors import InputError


def test_single_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    d = Distributed.from_env(collective_device="cuda")
    assert (d.rank, d.world_size, d.owns_group) == (0, 1, False)
    assert d.device("auto") == "auto" and d.device("cpu") == "cpu"
    d.barrier()
    assert d.gather_objects({"a": 1}) == [{"a": 1}]
    ran = []
    d.run_on_rank0(lambda: ran.append(1))
    assert ran == [1]
    with pytest.raises(InputError, match="boom"):
        d.run_on_rank0(lambda: (_ for _ in ()).throw(InputError(None, "x", "boom")))
    d.close()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert Distributed.from_env() == Distributed()
