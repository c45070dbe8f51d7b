"""TrainConfig checks, the recorded settings, and the resume-settings comparison."""

from __future__ import annotations

import dataclasses
import os

import pytest

from fastir.core.errors import InputError
from fastir.train.config import RESUME_KEYS, TrainConfig, check_resume_settings, default_warmup, settings, validate


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"data": ["t.arrow"], "model": "m", "out": "o", **kw})


@pytest.mark.parametrize("kw,field", [
    ({"data": []}, "--data"), ({"strategy": "y-y"}, "--strategy"), ({"alpha": 1.5}, "--alpha"),
    ({"batch_size": 1}, "--batch-size"), ({"steps": 0}, "--steps"), ({"lr": 0}, "--lr"),
    ({"temperature": -1}, "--temperature"), ({"weight_decay": -0.1}, "--weight-decay"),
    ({"max_grad_norm": -1}, "--max-grad-norm"), ({"save_steps": -1}, "--save-steps"),
    ({"eval_every": -1}, "--eval-every"), ({"precision": "fp8"}, "--precision"),
    ({"warmup_steps": 2000}, "--warmup-steps"), ({"eval_every": 5}, "--eval-every"),
    ({"resume": True, "overwrite": True}, "--resume"), ({"alpha_mode": "even"}, "--alpha-mode"),
])
def test_validate_names_the_option(kw, field):
    with pytest.raises(InputError) as err:
        validate(_cfg(**kw))
    assert err.value.field == field


def test_every_registered_strategy_validates():
    from fastir.sampling.strategies import REGISTRY

    for name in REGISTRY:
        validate(_cfg(strategy=name))


def test_settings_resolve_defaults_and_drop_transient_flags():
    cfg = _cfg(steps=250, resume=True, progress=False)
    s = settings(cfg, pooling="mean", max_length=128, precision="fp32")
    assert default_warmup(cfg) == 25 == s["warmup_steps"] and default_warmup(_cfg(warmup_steps=3)) == 3
    assert (s["pooling"], s["max_length"], s["precision"]) == ("mean", 128, "fp32")
    assert s["data"] == [os.path.abspath("t.arrow")]
    assert not {"resume", "overwrite", "progress"} & set(s)
    assert set(RESUME_KEYS) <= set(s) <= {f.name for f in dataclasses.fields(TrainConfig)}


def test_resume_settings_must_match(tmp_path):
    current = settings(_cfg(), pooling="cls", max_length=64, precision="fp32")
    check_resume_settings(tmp_path, {"settings": dict(current, device="cuda", save_steps=9)}, current)  # not numbers
    with pytest.raises(InputError, match="checkpoint has 0.5, this command 0.25") as err:
        check_resume_settings(tmp_path, {"settings": current}, dict(current, alpha=0.25))
    assert err.value.field == "settings.alpha" and str(err.value.path) == str(tmp_path / "fastir-train.json")


def test_alpha_mode_must_match_and_older_checkpoints_mean_random(tmp_path):
    current = settings(_cfg(), pooling="cls", max_length=64, precision="fp32")
    assert current["alpha_mode"] == "random"
    older = {k: v for k, v in current.items() if k != "alpha_mode"}  # written before alpha modes existed
    check_resume_settings(tmp_path, {"settings": older}, current)
    with pytest.raises(InputError, match="checkpoint has 'random', this command 'exact'") as err:
        check_resume_settings(tmp_path, {"settings": older}, dict(current, alpha_mode="exact"))
    assert err.value.field == "settings.alpha_mode"
