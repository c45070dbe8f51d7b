"""fastir.core.options: a setting's command-line description, kept on its dataclass field.

The click options generated from such fields, for every verb, are tested in tests/cli/test_options.py.
"""

from __future__ import annotations

import dataclasses

import pytest

from fastir.core.options import CLI, EXPERIMENT, SAMPLE, TRAIN, CliOption, cli, option_name


def test_a_field_carries_its_option_once():
    @dataclasses.dataclass
    class Settings:
        batch_size: int = dataclasses.field(default=32, metadata=cli(TRAIN, SAMPLE, help="Pairs per batch."))
        steps: int = dataclasses.field(default=1000, metadata=cli(
            TRAIN, SAMPLE, per_verb={SAMPLE: {"default": None, "help": "Batches (default: one epoch)."}}))

    size, steps = dataclasses.fields(Settings)
    option = size.metadata[CLI]
    assert isinstance(option, CliOption) and option.verbs == frozenset({TRAIN, SAMPLE}) and EXPERIMENT not in option.verbs
    assert option.default_and_help(TRAIN, size.default) == (32, "Pairs per batch.")
    assert steps.metadata[CLI].default_and_help(TRAIN, steps.default) == (1000, None)
    assert steps.metadata[CLI].default_and_help(SAMPLE, steps.default) == (None, "Batches (default: one epoch).")
    with pytest.raises(dataclasses.FrozenInstanceError):
        option.help = "changed"


@pytest.mark.parametrize("name, option", [("batch_size", "--batch-size"), ("lr", "--lr"),
                                          ("eval_max_length", "--eval-max-length")])
def test_option_names_follow_the_field_names(name, option):
    assert option_name(name) == option
