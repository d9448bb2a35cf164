"""Errors that are the user's mistake: the CLI prints them as one line, without a traceback."""

from __future__ import annotations

import difflib
import re
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
    where = f"{parent}." if parent else ""
    hint = f"did you mean {where}{close[0]}?" if close else f"its keys: {', '.join(known)}"
    return invalid(key, value, f"{parent or 'the config'} has no key {name!r}; {hint}")


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


# what OmegaConf's first line says → what is allowed (OmegaConf's own words otherwise)
_REASONS = (
    (re.compile(r"could not be converted to Integer"), lambda m: "must be an integer"),
    (re.compile(r"could not be converted to Float"), lambda m: "must be a number"),
    (re.compile(r"is not a valid bool"), lambda m: "must be true or false"),
    (re.compile(r"expected one of \[(.*)\]"), lambda m: f"use one of {m.group(1)}"),
    (re.compile(r"is not Optional"), lambda m: "must not be null"),
    (re.compile(r"is not a (ListConfig|DictConfig)"), lambda m: f"must be a {m.group(1)[:4]}"),
)


def compose_error(e: BaseException) -> ConfigError | None:
    """Hydra's compose error for a value a schema refuses (a wrong type, a value outside an
    enum, a key the schema lacks) or a group option that does not exist, as the one line every
    check uses (``trainer.epochs='two' is invalid: must be an integer``); ``None`` for any other
    error. Read from the exception's fields (OmegaConf's ``full_key``, ``value``, ``msg``;
    Hydra's ``missing_cfg_file``, ``options``), so no Hydra import is needed here."""
    missing, options = getattr(e, "missing_cfg_file", None), getattr(e, "options", None)
    if missing and options:
        group, _, name = str(missing).rpartition("/")
        return invalid(group, name, f"use one of {', '.join(options)}")
    cause = e.__cause__
    key, msg = getattr(cause, "full_key", None), getattr(cause, "msg", None)
    if not key or not msg:
        return None
    first = str(msg).splitlines()[0]
    unknown = re.match(r"Key '(\w+)' not in '\w+'(?:\. Did you mean: '(\w+)'\?)?", first)
    if unknown:
        parent, _, name = str(key).rpartition(".")
        hint = f"; did you mean {parent}.{unknown.group(2)}?" if unknown.group(2) else ""
        return ConfigError(f"{key} is invalid: {parent or 'the config'} has no key {name!r}{hint}")
    for pattern, reason in _REASONS:
        found = pattern.search(first)
        if found:
            return invalid(str(key), getattr(cause, "value", None), reason(found))
    return invalid(str(key), getattr(cause, "value", None), first)
