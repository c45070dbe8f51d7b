"""Parsing shared by the sub-commands' options."""

from __future__ import annotations


def split_list(value: str | None) -> list[str] | None:
    """``"en, de,,es"`` -> ``["en", "de", "es"]``; None stays None (option not given)."""
    if value is None:
        return None
    return [x.strip() for x in value.split(",") if x.strip()]
