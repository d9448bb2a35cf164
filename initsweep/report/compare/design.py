"""The design of a study: the factors a sweep varies, each factor's baseline, the cells.

A *factor* is an override key with two or more levels across the finished jobs (``init`` and
``bias`` in ``-m init=a,b,c bias=zeros,prior``), whether or not the jobs form a full grid. Each
factor has a *baseline* level that its other levels are compared with, chosen in this order
(:func:`baselines`; the report says which and why):

1. ``--baseline key=value`` (one per factor, the option may be repeated);
2. the study preset's ``report.baseline`` (a ``key=value``, or a list of them, one per factor);
3. for any factor, a level named ``pytorch_default`` or ``keras_default``, the frameworks' own
   default schemes; for ``bias``, ``zeros``;
4. the factor's first level (in job order).

A level meets its baseline in every *context* (a combination of the other factors' levels) where
both ran, so in an ``init × bias`` grid each ``bias=prior`` job meets the ``bias=zeros`` job of its
own ``init``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from initsweep.errors import invalid
from initsweep.report.jobs import Job, varying_keys

DEFAULT_SCHEMES = ("pytorch_default", "keras_default")  # the frameworks' own: a natural baseline
DEFAULT_LEVELS = {"bias": ("zeros",)}  # per key: the usual choice a rule is measured against
UNSET = "(not set)"  # the level of a job that does not override a factor's key


@dataclass(frozen=True)
class Factor:
    key: str
    levels: tuple[str, ...]  # in job order
    baseline: str
    why: str  # how the baseline was chosen, for the report

    @property
    def others(self) -> list[str]:
        return [v for v in self.levels if v != self.baseline]


def level(job: Job, key: str) -> str:
    return job.overrides.get(key, UNSET)


def same(a: str | None, b: str | None) -> bool:
    """Override values equal as written or as numbers (``1`` and ``1.0``)."""
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def as_specs(named) -> list[str]:
    """``report.baseline`` / ``--baseline`` as a list of ``key=value``: a string, a list of
    strings, or a mapping ``{key: value}``."""
    if named is None:
        return []
    if isinstance(named, str):
        return [named]
    if isinstance(named, dict):
        return [f"{k}={v}" for k, v in named.items()]
    return [str(s) for s in named]


def preset_specs(jobs: list[Job]) -> list[str]:
    """The baselines the jobs' saved config names (``report.baseline``), if they agree."""
    named = {tuple(as_specs((j.config.get("report") or {}).get("baseline"))) for j in jobs}
    return list(next(iter(named))) if len(named) == 1 else []


def _find(spec: str, levels: dict[str, list[str]]) -> tuple[str, str] | None:
    key, sep, value = spec.partition("=")
    key = key.strip().lstrip("+~")
    match = [v for v in levels.get(key, []) if sep and same(v, value.strip())]
    return (key, match[0]) if match else None


def baselines(
    keys: list[str], levels: dict[str, list[str]], given: list[str], preset: list[str]
) -> dict[str, tuple[str, str]]:
    """Per factor key, ``(baseline level, why)`` (see the module docstring)."""
    options = ", ".join(f"{k}={v}" for k in keys for v in levels[k]) or "(none)"
    chosen: dict[str, tuple[str, str]] = {}
    for spec in given:
        found = _find(spec, levels)
        if not found:
            raise invalid("--baseline", spec, f"use one of {options}")
        if found[0] in chosen:
            raise invalid("--baseline", spec, f"{found[0]} has a baseline already; one per factor")
        chosen[found[0]] = (found[1], "--baseline")
    missing = [s for s in preset if not _find(s, levels)]
    note = f"; the preset's report.baseline={', '.join(missing)} is not among the jobs"
    for spec in preset:
        found = _find(spec, levels)
        if found and found[0] not in chosen:
            chosen[found[0]] = (found[1], "named by the preset's report.baseline")
    for key in keys:
        if key in chosen:
            continue
        note_here = note if missing else ""
        scheme = [v for v in levels[key] if v in DEFAULT_SCHEMES]
        usual = [v for v in levels[key] if v in DEFAULT_LEVELS.get(key, ())]
        if scheme:
            chosen[key] = (scheme[0], "the frameworks' default scheme" + note_here)
        elif usual:
            chosen[key] = (usual[0], f"the usual {key}" + note_here)
        else:
            chosen[key] = (levels[key][0], f"the first level of {key}" + note_here)
    return chosen


def factors(jobs: list[Job], given=None) -> list[Factor]:
    """The factors of ``jobs`` (their varying override keys) with their baselines."""
    keys = varying_keys(jobs)
    levels = {k: list(dict.fromkeys(level(j, k) for j in jobs)) for k in keys}
    chosen = baselines(keys, levels, as_specs(given), preset_specs(jobs))
    return [Factor(k, tuple(levels[k]), *chosen[k]) for k in keys]


def context(job: Job, factor: Factor, all_factors: list[Factor]) -> tuple[tuple[str, str], ...]:
    """The job's levels of every factor but ``factor``: where it meets its baseline."""
    return tuple((f.key, level(job, f.key)) for f in all_factors if f.key != factor.key)


def context_label(ctx: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{k}={v}" for k, v in ctx)


def cells(jobs: list[Job], factor: Factor, all_factors: list[Factor]) -> dict[tuple, dict]:
    """``{context: {level: job}}`` (the first job of a duplicated cell)."""
    out: dict[tuple, dict] = {}
    for job in jobs:
        row = out.setdefault(context(job, factor, all_factors), {})
        lev = next((v for v in factor.levels if same(v, level(job, factor.key))), None)
        row.setdefault(lev, job)
    return out


def full_grid(jobs: list[Job], all_factors: list[Factor]) -> bool:
    """Every combination of the factors' levels ran, exactly once."""
    combos = [tuple(level(j, f.key) for f in all_factors) for j in jobs]
    grid = set(itertools.product(*(f.levels for f in all_factors)))
    return len(combos) == len(set(combos)) == len(grid) and set(combos) == grid


# what sets the batches a seed meets: its data order (see initsweep/train/loop.py)
ORDER_KEYS = ("data_seed", "batch_size", "data_order")


def data_order(job: Job) -> tuple:
    """(data_seed, batch_size, data_order) from the job's config; ``data_order`` absent: shared."""
    trainer = (job.config or {}).get("trainer") or {}
    return trainer.get("data_seed"), trainer.get("batch_size"), trainer.get("data_order", "shared")


def is_order_key(key: str) -> bool:
    """A factor that changes only the data order: not a setting a seed's spread can test."""
    return key in ("trainer.data_seed", "trainer.data_order")
