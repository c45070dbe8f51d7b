"""Parsing shared by the sub-commands' options."""

from __future__ import annotations

from fastir.eval.cells import split_list

__all__ = ["split_list"]
