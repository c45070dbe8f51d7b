"""Command-line options described once, on the fields of a settings dataclass.

A field's ``metadata[CLI]`` (made by :func:`cli`) says how the field appears on the command line:
which commands offer it, its help, choices and parser. Its name (``batch_size`` -> ``--batch-size``),
value type and default are the field's own. :mod:`fastir.cli.options` turns such fields into click
options, so a setting is spelled, typed, defaulted and explained in one place for every command
that takes it. Imports nothing heavy: ``fastir --help`` reads these descriptions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

CLI = "cli"  # the key of a field's metadata holding its CliOption

# The commands whose options come from fastir.train.config.TrainConfig's fields.
TRAIN = "train"
EXPERIMENT = "experiment"
SAMPLE = "sample"


@dataclass(frozen=True)
class CliOption:
    """How one field appears on the command line (the name, type and default are the field's)."""

    verbs: frozenset[str]  # the commands that offer it
    help: str | None = None
    choices: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()  # more spellings, e.g. --eval-run for --eval-data
    path: bool = False  # a file or directory (shown as PATH)
    # the one parser of the option's text (None when the option is not given); raises InputError
    parse: Callable[[str | None], object] | None = None
    # per command, a default and help that differ from the field's, e.g. sample's --steps (one epoch)
    per_verb: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    def default_and_help(self, verb: str, default: object) -> tuple[object, str | None]:
        """The default and help ``verb`` shows (``default``: the field's)."""
        own = self.per_verb.get(verb, {})
        return own.get("default", default), own.get("help", self.help)


def cli(*verbs: str, **kw) -> dict:
    """The metadata of a field offered by ``verbs``: ``field(..., metadata=cli(TRAIN, help=...))``."""
    return {CLI: CliOption(frozenset(verbs), **kw)}


def option_name(field_name: str) -> str:
    """The option a field is spelled as: ``batch_size`` -> ``--batch-size``."""
    return "--" + field_name.replace("_", "-")
