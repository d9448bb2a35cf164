"""Errors that are the user's mistake: the CLI prints them as one line, without a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A config value is invalid. The message names the key, the value and what is allowed."""


def invalid(key: str, value: object, allowed: str) -> ConfigError:
    """Build the one-line message every user-facing check uses: ``key=value: allowed``."""
    return ConfigError(f"{key}={value!r} is invalid: {allowed}")


def unknown_key(key: str, value: object, known: Iterable[str]) -> ConfigError:
    """``key`` is none of the keys its node defines: name the closest one, or list them."""
    parent, _, name = key.rpartition(".")
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {parent}.{close[0]}?" if close else f"its keys: {', '.join(known)}"
    return invalid(key, value, f"{parent} has no key {name!r}; {hint}")


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
