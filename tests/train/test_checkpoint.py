"""Trainer state of a checkpoint: weights_only-loadable files, exact RNG round trip, refusal of pickles."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from fastir.core.errors import InputError
from fastir.train.checkpoint import STATE_DIR, load_trainer_state, write_trainer_state
from fastir.train.resume import rng_state, set_rng_state


def _trainer_state(ckpt, rng_states):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    model(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    scheduler.step()
    scaler = torch.amp.GradScaler("cpu", enabled=True)
    write_trainer_state(ckpt / STATE_DIR, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                        rng_states=rng_states)
    return optimizer, scheduler, scaler


def _draws():
    return random.random(), random.gauss(0, 1), np.random.random(), np.random.normal(), torch.rand(3).tolist()


def test_state_loads_with_weights_only_and_restores_rng_exactly(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.gauss(0, 1)  # a cached gaussian in both generators: part of the state
    np.random.normal()
    state = rng_state()
    expected = _draws()
    optimizer, scheduler, scaler = _trainer_state(tmp_path, [state, state])
    for name in ("optimizer", "scheduler", "scaler", "rng"):
        torch.load(tmp_path / STATE_DIR / f"{name}.pt", weights_only=True)  # no pickled object inside

    loaded = load_trainer_state(tmp_path)
    assert len(loaded["rng"]) == 2
    _draws()  # move every generator on
    set_rng_state(loaded["rng"][1])
    assert _draws() == expected
    assert loaded["scheduler"] == scheduler.state_dict() and loaded["scaler"] == scaler.state_dict()
    a, b = optimizer.state_dict()["state"], loaded["optimizer"]["state"]
    assert all(torch.equal(a[k]["exp_avg"], b[k]["exp_avg"]) for k in a)


class _Payload:
    """What a hostile checkpoint would hold: unpickling it runs code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("content", ["payload", "numpy"])
def test_pickled_objects_are_refused_with_one_line(tmp_path, content):
    _trainer_state(tmp_path, [rng_state()])
    marker = tmp_path / "pwned"
    rng = tmp_path / STATE_DIR / "rng.pt"
    if content == "payload":
        torch.save({"format": "fastir-rng/1", "ranks": [_Payload(marker)]}, rng)
    else:  # the format of fastir before this check: numpy's state pickled as an ndarray
        torch.save([{"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}], rng)
    with pytest.raises(InputError) as err:
        load_trainer_state(tmp_path)
    msg = err.value.one_line()
    assert msg.startswith(f"{rng}: format: refused: not a file of tensors and plain containers"), msg
    assert not marker.exists()


@pytest.mark.parametrize("mutate,field", [
    (lambda r: r["ranks"][0]["numpy"].update(keys=torch.zeros(5, dtype=torch.int64)), "ranks[0]"),
    (lambda r: r["ranks"][0]["python"].update(state=torch.full((625,), -1, dtype=torch.int64)), "ranks[0]"),
    (lambda r: r["ranks"][0].pop("torch"), "ranks[0]"),
    (lambda r: r.update(format="other"), "format"),
])
def test_malformed_rng_state_names_the_entry(tmp_path, mutate, field):
    _trainer_state(tmp_path, [rng_state()])
    file = tmp_path / STATE_DIR / "rng.pt"
    rng = torch.load(file, weights_only=True)
    mutate(rng)
    torch.save(rng, file)
    with pytest.raises(InputError) as err:
        load_trainer_state(tmp_path)
    assert err.value.one_line().startswith(f"{file}: {field}: "), err.value


def test_a_full_disk_while_saving_a_checkpoint_is_a_disk_error(train_tiny_bert, train_table_arrow, tmp_path,
                                                               monkeypatch, capsys):
    # issue 31, item 15: reported as "the model file is truncated or corrupt"
    from safetensors import SafetensorError
    from transformers import PreTrainedModel

    from fastir.cli import main

    def full(self, *args, **kwargs):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: '
                              '"No space left on device" })')

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", full)
    out = tmp_path / "run"
    code = main(["train", "--data", train_table_arrow, "--model", train_tiny_bert, "--out", str(out), "--steps", "2",
                 "--batch-size", "4", "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: {out / 'checkpoint-000002'}: disk: No space left on device [ENOSPC]")
    assert not out.exists()  # failed before its first checkpoint: the output location is as it was
