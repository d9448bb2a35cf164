"""Comparisons between the jobs of a sweep that differ in one factor, seed by seed.

A *factor* is an override key whose value varies across the jobs (``bias`` in
``-m bias=zeros,prior``). The baseline (``--baseline key=value``; by default the first value of
the first varying key) picks the jobs that every other value of that key is compared against;
the other keys must match, so in an ``init × bias`` grid with ``--baseline bias=zeros`` each
``bias=prior`` job meets the ``bias=zeros`` job of its own ``init``.

Two jobs are compared *paired* when they ran the same seeds with the same data order (same
``trainer.data_seed`` and ``trainer.batch_size``): seed s of one job met the same batches as
seed s of the other, so the per-seed differences carry less noise. Otherwise unpaired.

Holm's correction runs over the comparisons that share a baseline value and a metric (the
"several schemes against one baseline" family); metrics are separate questions, not corrected
against each other. Diverged seeds and unreached targets are counted in every row.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from initsweep.errors import invalid
from initsweep.report.compare.effects import Difference, compare_samples, holm
from initsweep.report.compare.speed import (
    TARGET_METRIC,
    Target,
    diverged_steps,
    last_step,
    parse_target,
    speed_metrics,
)
from initsweep.report.jobs import Job, varying_keys
from initsweep.summary import direction


@dataclass
class Row:
    """One metric of one comparison (other job against its baseline job)."""

    metric: str
    factor: str
    baseline: str  # "bias=zeros"
    other: str  # "bias=prior"
    context: str  # the keys held equal, e.g. "init=xavier_uniform" ("" when only one varies)
    target: Target | None  # the level of steps_to_target (None on other metrics)
    result: Difference | None  # None: under 2 usable seeds on a side
    n_seeds: tuple[int, int]  # seeds each job ran
    n_diverged: tuple[int, int]
    n_missing: tuple[int, int]  # live seeds without a value (target not reached)
    n_values: tuple[int, int]  # seeds with a value (before pairing)
    p_t_holm: float = math.nan
    p_rank_holm: float = math.nan
    family_size: int = 1
    verdict: str = ""


@dataclass
class Comparisons:
    rows: list[Row]
    baseline: str
    target: Target | None  # the one given; None: each baseline job's own default_target
    first_k: int
    objective: str
    speed: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)  # label → seeds


def resolve_baseline(jobs: list[Job], baseline: str | None) -> tuple[str, str]:
    """``key=value`` of the baseline; by default the first value of the first varying key."""
    factors = varying_keys(jobs)
    options = [
        f"{k}={v}" for k in factors for v in dict.fromkeys(j.overrides.get(k) for j in jobs)
    ]
    if baseline is None:
        if not factors:
            raise invalid("--baseline", None, "the jobs do not differ in any override")
        return factors[0], jobs[0].overrides.get(factors[0])
    key, sep, value = baseline.partition("=")
    if not sep or f"{key.lstrip('+~')}={value}" not in options:
        raise invalid("--baseline", baseline, f"use one of {', '.join(options) or '(none)'}")
    return key.lstrip("+~"), value


def _trainer(job: Job) -> dict:
    return ((job.summary or {}).get("config") or {}).get("trainer") or {}


def pairable(a: Job, b: Job, seeds_a: list[int], seeds_b: list[int]) -> bool:
    """Same seeds and the same batches in the same order (data seed and batch size)."""
    same_order = all(_trainer(a).get(k) == _trainer(b).get(k) for k in ("data_seed", "batch_size"))
    return sorted(seeds_a) == sorted(seeds_b) and same_order


def compared_metrics(speed: dict[int, dict[str, float]]) -> list[str]:
    """Every speed metric but the divergence flags and the epoch twin of ``steps_to_target``."""
    keys = dict.fromkeys(k for m in speed.values() for k in m)
    return [k for k in keys if k not in ("diverged", "epochs_to_target")]


def default_target(base: Job) -> Target:
    """The baseline job's worst final ``train/loss`` over its live seeds: a level every baseline
    seed reaches by the end, so "steps to reach it" exists for the whole baseline and asks
    "how much sooner does the other job get where the baseline got?"

    (The best job's final mean would leave about half of that job's own seeds short of it.)
    """
    gone = diverged_steps(base.metrics, base.summary)
    last = {}  # the last logged point per seed: the summary's final train/loss
    for r in base.metrics:
        if TARGET_METRIC in r and gone.get(r["seed"]) is None:
            last[r["seed"]] = r[TARGET_METRIC]
    finite = [v for v in last.values() if v is not None and math.isfinite(v)]
    return Target(TARGET_METRIC, max(finite) if finite else math.nan)


def _samples(sa: dict, sb: dict, metric: str, paired: bool) -> tuple[list, list]:
    """Per-seed values with a value on each side (paired: on both sides, seed by seed)."""
    if paired:
        both = [s for s in sorted(sa) if math.isfinite(sa[s][metric] + sb[s][metric])]
        return [sa[s][metric] for s in both], [sb[s][metric] for s in both]
    pick = lambda sp: [sp[s][metric] for s in sorted(sp) if math.isfinite(sp[s][metric])]  # noqa: E731
    return pick(sa), pick(sb)


def _counts(sp: dict, metric: str) -> tuple[int, int]:
    """(diverged seeds, live seeds without a value, e.g. a target not reached)."""
    dead = sum(m["diverged"] > 0 for m in sp.values())
    missing = sum(not m["diverged"] and not math.isfinite(m[metric]) for m in sp.values())
    return dead, missing


def _finite(sp: dict, metric: str) -> int:
    return sum(math.isfinite(m[metric]) for m in sp.values())


def compare_jobs(
    jobs: list[Job],
    baseline: str | None = None,
    level: float = 0.95,
    target: str | float | Target | None = None,
    *,
    first_k: int | None = None,
    n_resamples: int = 9999,
    seed: int = 0,
) -> Comparisons:
    """Every job against its baseline job, metric by metric (see the module docstring).

    :param target: one level for every comparison; ``None``: :func:`default_target` of each
        comparison's baseline job.
    """
    if not 0 < level < 1:
        raise invalid("report.level", level, "use a confidence level between 0 and 1, e.g. 0.95")
    key, value = resolve_baseline(jobs, baseline)
    others = [k for k in varying_keys(jobs) if k != key]
    fixed = parse_target(target)
    # one early-loss step for every job, inside the shortest run
    k = first_k or max(1, math.ceil(0.1 * min(last_step(v.metrics) for v in jobs)))

    def context(v: Job) -> str:  # the other varying keys: equal between baseline and other
        return ", ".join(f"{o}={v.overrides.get(o)}" for o in others)

    def speed(v: Job, t: Target) -> dict[int, dict[str, float]]:
        return speed_metrics(v.metrics, target=t, first_k=k, summary=v.summary)

    base = {context(v): v for v in jobs if v.overrides.get(key) == value}
    pairs = [
        (base[context(v)], v) for v in jobs if v.overrides.get(key) != value and context(v) in base
    ]
    rows, table = [], {}
    for b, v in tqdm(pairs, desc="compare", unit="job", disable=None):
        t = fixed or default_target(b)
        sa, sb = speed(b, t), speed(v, t)
        table[_job_label(b, key, others)], table[_job_label(v, key, others)] = sa, sb
        paired = pairable(b, v, list(sa), list(sb))
        for metric in compared_metrics(sa):
            xa, xb = _samples(sa, sb, metric, paired)
            tag = f"{context(v)}|{v.overrides[key]}|{metric}"  # a row's draws ignore row order
            rng = np.random.default_rng([seed, zlib.crc32(tag.encode())])
            (dead_a, miss_a), (dead_b, miss_b) = _counts(sa, metric), _counts(sb, metric)
            result = compare_samples(
                xa, xb, paired=paired, level=level, rng=rng, n_resamples=n_resamples
            )
            rows.append(
                Row(
                    metric=metric,
                    factor=key,
                    baseline=f"{key}={value}",
                    other=f"{key}={v.overrides[key]}",
                    context=context(v),
                    target=t if metric == "steps_to_target" else None,
                    result=result,
                    n_seeds=(len(sa), len(sb)),
                    n_diverged=(dead_a, dead_b),
                    n_missing=(miss_a, miss_b),
                    n_values=(_finite(sa, metric), _finite(sb, metric)),
                )
            )
    _correct(rows)
    first = next(iter(base.values()), None)
    objective = (
        ((first.summary or {}) if first else {}).get("objective", {}).get("metric", "val/loss")
    )
    return Comparisons(rows, f"{key}={value}", fixed, k, objective, table)


def _job_label(v: Job, key: str, others: list[str]) -> str:
    return ", ".join(f"{o}={v.overrides.get(o)}" for o in [key, *others])


def _correct(rows: list[Row]) -> None:
    """Holm over each family: the rows of one metric against one baseline job."""
    families: dict[tuple[str, str, str], list[Row]] = {}
    for r in rows:
        families.setdefault((r.metric, r.baseline, r.context), []).append(r)
    for fam in families.values():
        got = [r for r in fam if r.result is not None]
        for name in ("p_t", "p_rank"):
            for r, p in zip(got, holm([getattr(r.result, name) for r in got])):
                setattr(r, f"{name}_holm", p)
        for r in fam:
            r.family_size = len(got)


def better(metric: str) -> str:
    """``lower`` or ``higher``: which way a speed metric improves."""
    if metric.startswith("steps_to") or metric.startswith("epochs_to"):
        return "lower"
    name = metric.split("@")[0].removesuffix("_auc").removesuffix("_best").removesuffix("_final")
    return "lower" if direction(name) == "minimize" else "higher"
