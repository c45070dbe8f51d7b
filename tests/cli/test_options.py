"""The options generated from TrainConfig's fields: every field in every command that offers it, with
the field's spelling, default, choices and help, and one ``--lang-weights`` parser everywhere."""

from __future__ import annotations

import dataclasses
import inspect

import click
import pytest

from fastir.cli import cli, main
from fastir.core.options import CLI, EXPERIMENT, SAMPLE, TRAIN, option_name
from fastir.train.config import TrainConfig
from tests.sampling.test_lang_weights import REFUSED

FIELDS = dataclasses.fields(TrainConfig)
VERBS = (TRAIN, EXPERIMENT, SAMPLE)
# the arguments each command requires before any option is read
REQUIRED = {TRAIN: ["--data", "t.arrow", "--model", "m", "--out", "o"],
            EXPERIMENT: ["--data", "t.arrow", "--model", "m", "--out", "o"], SAMPLE: ["t.arrow"]}


def command(verb: str) -> click.Command:
    return cli.get_command(None, verb)


def parsed(verb: str, *args: str) -> dict:
    """The values ``fastir VERB ARGS`` hands to its function (every option parsed, nothing run)."""
    return command(verb).make_context(verb, [*REQUIRED[verb], *args]).params


def offers(f: dataclasses.Field, verb: str) -> bool:
    return verb in f.metadata[CLI].verbs


def test_every_field_is_a_train_option_and_the_others_offer_the_rest_by_rule():
    from fastir.experiment.driver import PER_RUN
    from fastir.sampling.sampler import BatchSampler

    assert all(CLI in f.metadata and offers(f, TRAIN) for f in FIELDS)
    # the experiment offers every training setting it does not set per run; --seed is the default of --seeds
    assert {f.name for f in FIELDS if not offers(f, EXPERIMENT)} == set(PER_RUN) - {"seed"}
    # sample offers the sampler's settings, and --steps (here: batches to draw)
    sampler_settings = set(inspect.signature(BatchSampler).parameters) & {f.name for f in FIELDS}
    assert {f.name for f in FIELDS if offers(f, SAMPLE)} == sampler_settings | {"steps"}


@pytest.mark.parametrize("verb", VERBS)
def test_each_offered_field_is_its_option(verb):
    params = {p.name: p for p in command(verb).params}
    for f in FIELDS:
        if not offers(f, verb):
            continue
        spec, p = f.metadata[CLI], params[f.name]
        default, help_text = spec.default_and_help(verb, None if f.default is dataclasses.MISSING else f.default)
        name = option_name(f.name)
        assert p.opts == [name, *spec.aliases], f.name
        assert p.secondary_opts == ([f"--no-{name[2:]}"] if default is True else []), f.name
        assert p.help == help_text and p.default == default, f.name
        assert tuple(getattr(p.type, "choices", ())) == (spec.choices or ()), f.name
        assert p.is_flag == (f.type == "bool"), f.name


@pytest.mark.parametrize("verb", VERBS)
def test_defaults_given_nothing_are_the_fields(verb):
    values = parsed(verb)
    for f in FIELDS:
        if offers(f, verb) and f.default is not dataclasses.MISSING:
            assert values[f.name] == f.metadata[CLI].default_and_help(verb, f.default)[0], f.name
    if verb == TRAIN:  # every option given nothing: the dataclass's own defaults
        assert TrainConfig(**values) == TrainConfig(data=["t.arrow"], model="m", out="o")
    # the two defaults of their own: no --seed (the experiment then trains from 0 unless --seeds), and
    # one epoch of batches
    if verb == EXPERIMENT:
        assert values["seed"] is None and values["steps"] == 1000
    if verb == SAMPLE:
        assert values["steps"] is None and values["seed"] == 0


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("text, expected", [("en=2, de=1", {"en": 2.0, "de": 1.0}), ("", None)])
def test_lang_weights_parse_the_same_in_every_command(verb, text, expected):
    assert parsed(verb, "--lang-weights", text)["lang_weights"] == expected


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("text, message", REFUSED[:1] + REFUSED[3:4] + REFUSED[8:])
def test_lang_weights_error_line_is_the_same_in_every_command(verb, text, message, tmp_path, capsys):
    out = tmp_path / "out"
    args = [*REQUIRED[verb][:-1], str(out)] if verb != SAMPLE else [*REQUIRED[verb], "--out", str(out)]
    assert main([verb, *args, "--lang-weights", text]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: --lang-weights: {message}\n" and captured.out == ""
    assert not out.exists() and list(tmp_path.iterdir()) == []
