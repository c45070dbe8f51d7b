"""Parsing shared by the sub-commands' options, and the options generated from a settings dataclass.

:func:`config_options` turns the fields of a dataclass whose metadata describes their command-line
option (:mod:`fastir.core.options`) into click options: ``fastir train``, ``fastir experiment`` and
``fastir sample`` take their training options from :class:`fastir.train.config.TrainConfig` this way,
so each option's spelling, type, default, choices, help and parser are written once.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable

import click

from fastir.core.options import CLI, CliOption, option_name
from fastir.eval.cells import split_list

__all__ = ["split_list", "config_options", "offered_fields", "field_option", "Int", "Float"]


class Int(click.IntRange):
    """An integer option in ASCII digits (click's own INT takes ``٣`` as 3 and ``1_0`` as 10), within
    ``min``..``max`` (default: int64, so no value overflows the arrays it reaches)."""

    def __init__(self, min: int | None = None, max: int | None = None, **kw):
        from fastir.core.numbers import INT64

        super().__init__(INT64[0] if min is None else min, INT64[1] if max is None else max, **kw)
        self._asked = (min, max)  # the bounds help shows (not int64's own)
        self.name = "integer" if min is None and max is None else "integer range"

    def _describe_range(self) -> str:
        lo, hi = self._asked
        if lo is None and hi is None:
            return ""
        if hi is None:
            return f"x>={lo}"
        return f"x<={hi}" if lo is None else f"{lo}<=x<={hi}"

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            from fastir.core.numbers import parse_int

            value = parse_int(value, param.opts[0] if param else None)
        return super().convert(value, param, ctx)


class Float(click.FloatRange):
    """A finite decimal option in ASCII (no ``inf``, ``nan``, ``1_0`` or other scripts' digits)."""

    def __init__(self, min: float | None = None, max: float | None = None, **kw):
        super().__init__(min, max, **kw)
        self.name = "float" if min is None and max is None else "float range"

    def _describe_range(self) -> str:
        return "" if self.min is None and self.max is None else super()._describe_range()

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            from fastir.core.numbers import parse_float

            value = parse_float(value, param.opts[0] if param else None)
        return super().convert(value, param, ctx)


def offered_fields(config: type, verb: str) -> list[dataclasses.Field]:
    """The fields of ``config`` that ``verb`` offers as options, in field order."""
    return [f for f in dataclasses.fields(config) if CLI in f.metadata and verb in f.metadata[CLI].verbs]


def config_options(config: type, verb: str) -> Callable:
    """A decorator adding to a click command one option per field of ``config`` that ``verb`` offers,
    in field order; each option's value is the field's keyword argument."""
    hints = typing.get_type_hints(config)
    options = [field_option(f, hints[f.name], verb) for f in offered_fields(config, verb)]

    def decorate(command):
        for option in reversed(options):  # click lists options in the order their decorators run, last first
            command = option(command)
        return command

    return decorate


def field_option(f: dataclasses.Field, annotation, verb: str) -> Callable:
    """The click option of field ``f`` (type ``annotation``) in command ``verb``."""
    spec: CliOption = f.metadata[CLI]
    required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    default, help_text = spec.default_and_help(verb, None if required else f.default)
    name = option_name(f.name)
    kind = _value_type(annotation)
    kw: dict = {"help": help_text, "default": default}
    if kind is bool:
        # on by default: --x/--no-x; off by default: a plain flag
        decls = [f"{name}/--no-{name[2:]}"] if default else [name]
        kw["is_flag"] = True
    else:
        decls = [name, *spec.aliases]
        kw.update(required=required, type=_click_type(spec, kind))
    if spec.parse is not None:
        kw["callback"] = lambda ctx, param, value: spec.parse(value)
    elif kind is list:  # repeated: --data A --data B
        kw.update(multiple=True, callback=lambda ctx, param, value: list(value))
    # shown where it says something: not for a missing default, an empty text or an unset flag
    kw["show_default"] = default is not None and default != "" and default is not False
    return click.option(*decls, f.name, **kw)


def _value_type(annotation) -> type:
    """``int | None`` -> int, ``list[str]`` -> list, ``dict[str, float] | None`` -> dict."""
    if isinstance(annotation, types.UnionType):
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    return typing.get_origin(annotation) or annotation


def _click_type(spec: CliOption, kind: type):
    """The click type of the option's text: its choices, a path, a number, or text (what ``parse`` reads)."""
    if spec.choices is not None:
        return click.Choice(spec.choices)
    if spec.path:
        return click.Path()
    if kind is int:
        return Int()
    if kind is float:
        return Float()
    if kind is str:
        return kind
    if spec.parse is not None or kind is list:
        return str
    raise TypeError(f"a field of type {kind.__name__} needs a parse function to be an option")
