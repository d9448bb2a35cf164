"""Enum-like config values: a typo fails at compose time with Hydra's list of valid values.

A :class:`Choice` is a ``str`` as much as an ``Enum``: it compares, hashes, formats and dumps to
JSON as its value, so code that takes the plain string works unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


class Choice(str, Enum):
    """An ``Enum`` whose members are their own string values (``Strategy.auto == "auto"``)."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


def make_choice(name: str, values: Iterable[str], module: str) -> type[Choice]:
    """A :class:`Choice` named ``name`` with these values, defined as ``module.name``.

    The caller binds it to that name in ``module``, so a pickled config (joblib and submitit
    send configs to their workers) finds the class by reference.
    """
    return Choice(name, [(v, v) for v in values], module=module, qualname=name)
