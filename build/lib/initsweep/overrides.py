"""Hydra overrides as data: ``key=value`` strings to a dict, and the keys a sweep varies.

The report labels and compares jobs by the overrides that vary between them, and a tracker
names runs by them: both read them here. No torch, no Hydra.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def parse_overrides(items: Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """Hydra's overrides (``["init=zeros", "+x=1"]``, or a dict) as ``{key: value}``.

    The ``+``, ``++`` and ``~`` prefixes (add, force-add, delete) are dropped: ``+x=1`` sets
    ``x`` as much as ``x=1`` does.
    """
    if isinstance(items, Mapping):
        return {str(k).lstrip("+~"): str(v) for k, v in items.items()}
    out = {}
    for item in items or []:
        key, _, value = str(item).partition("=")
        out[key.lstrip("+~")] = value
    return out


def varying_keys(overrides: Sequence[Mapping[str, str]]) -> list[str]:
    """The keys whose value differs between the given override dicts, in first-seen order."""
    keys = list(dict.fromkeys(k for o in overrides for k in o))
    return [k for k in keys if len({o.get(k) for o in overrides}) > 1]
