"""Comparisons between the jobs of a sweep that differ in one factor, seed by seed.

A *factor* is an override key whose value varies across the jobs (``bias`` in
``-m bias=zeros,prior``). The baseline picks the jobs that every other value of that key is
compared against; the other keys must match, so in an ``init × bias`` grid with
``--baseline bias=zeros`` each ``bias=prior`` job meets the ``bias=zeros`` job of its own
``init``. Which baseline, in this order (:func:`resolve_baseline`; the report says which and
why): ``--baseline key=value``; the one the jobs' preset names (``report.baseline`` in their
saved config); a value named ``pytorch_default`` or ``keras_default``, the frameworks' own
defaults; else the first value of the first varying key.

An Optuna search moves every searched key at once, so no trial differs from another in one key:
there each finished trial, labelled by its searched values, is compared with the best trial on
the objective (the only metric compared; the best was picked on these very values, so its lead
is optimistic, which the report says).

Two jobs are compared *paired* when they ran the same seeds with the same data order (same
``trainer.data_seed`` and ``trainer.batch_size``): seed s of one job met the same batches as
seed s of the other, so the per-seed differences carry less noise. Otherwise unpaired.

Holm's correction runs over the comparisons that share a baseline value and a metric (the
"several schemes against one baseline" family); metrics are separate questions, not corrected
against each other. Diverged seeds and unreached targets are counted in every row; accuracies
and AUCs at chance are flagged (:mod:`~initsweep.report.compare.chance`).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from initsweep.errors import invalid
from initsweep.report.compare.chance import Chance, chance
from initsweep.report.compare.effects import Difference, compare_samples, holm, seeds_needed
from initsweep.report.compare.speed import (
    TARGET_METRIC,
    Target,
    diverged_steps,
    last_step,
    parse_target,
    speed_metrics,
)
from initsweep.report.jobs import Job, is_search, short, varying_keys
from initsweep.summary import direction

DEFAULT_SCHEMES = ("pytorch_default", "keras_default")  # the frameworks' own: a natural baseline


@dataclass
class Row:
    """One metric of one comparison (other job against its baseline job)."""

    metric: str
    factor: str
    baseline: str  # "bias=zeros"
    other: str  # "bias=prior"
    context: str  # the keys held equal, e.g. "init=xavier_uniform" ("" when only one varies)
    target: Target | None  # the level of steps_to_target (None on other metrics)
    result: Difference | None  # None: no seed with a value on a side
    n_seeds: tuple[int, int]  # seeds each job ran
    n_diverged: tuple[int, int]
    n_missing: tuple[int, int]  # live seeds without a value (target not reached)
    n_values: tuple[int, int]  # seeds with a value (before pairing)
    chance: tuple[Chance | None, Chance | None] = (None, None)  # accuracy/AUC: (baseline, other)
    p_t_holm: float = math.nan
    p_rank_holm: float = math.nan
    family_size: int = 1
    verdict: str = ""

    @property
    def alpha(self) -> float:
        """The level a p-value of the row's family must beat (Holm's first step, Bonferroni's)."""
        level = self.result.level if self.result else 0.95
        return (1 - level) / max(1, self.family_size)

    @property
    def at_chance(self) -> tuple[bool, bool]:
        return tuple(bool(c and c.at) for c in self.chance)


@dataclass
class Baseline:
    key: str
    value: str
    why: str  # how it was chosen, for the report

    @property
    def label(self) -> str:
        """``key=value``; a search's best trial: its searched values."""
        return f"{self.key}={self.value}" if self.key else self.value


@dataclass
class Comparisons:
    rows: list[Row]
    baseline: Baseline
    target: Target | None  # the one given; None: each baseline job's own default_target
    first_k: int
    objective: str
    search: bool = False  # trials of an Optuna search, each against the best
    speed: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)  # label → seeds


def _same(a: str | None, b: str | None) -> bool:
    """Override values equal as written or as numbers (``1`` and ``1.0``)."""
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def preset_baseline(jobs: list[Job]) -> str | None:
    """``report.baseline`` from the jobs' saved config (the experiment preset's), if any."""
    named = {((j.config.get("report") or {}).get("baseline")) for j in jobs} - {None}
    return next(iter(named)) if len(named) == 1 else None


def resolve_baseline(jobs: list[Job], baseline: str | None) -> Baseline:
    """The baseline ``key=value`` and why it is the one (see the module docstring)."""
    factors = varying_keys(jobs)
    values = {k: list(dict.fromkeys(j.overrides.get(k) for j in jobs)) for k in factors}

    def find(spec: str) -> tuple[str, str] | None:
        key, sep, value = spec.partition("=")
        key = key.lstrip("+~")
        match = [v for v in values.get(key, []) if sep and _same(v, value)]
        return (key, match[0]) if match else None

    options = ", ".join(f"{k}={v}" for k in factors for v in values[k]) or "(none)"
    if baseline is not None:
        found = find(baseline)
        if not found:
            raise invalid("--baseline", baseline, f"use one of {options}")
        return Baseline(*found, "--baseline")
    if not factors:
        raise invalid("--baseline", None, "the jobs do not differ in any override")
    named, note = preset_baseline(jobs), ""
    if named:
        found = find(named)
        if found:
            return Baseline(*found, "named by the preset's report.baseline")
        note = f"; the preset's report.baseline={named} is not among the jobs"
    for key in factors:
        for value in values[key]:
            if value in DEFAULT_SCHEMES:
                return Baseline(key, value, f"the frameworks' default scheme{note}")
    first = factors[0]
    return Baseline(
        first, values[first][0], f"the first value of {first}: no {' or '.join(DEFAULT_SCHEMES)} "
        f"among the jobs and no report.baseline{note}",
    )  # fmt: skip


def best_trial(jobs: list[Job]) -> Job:
    """The trial with the best objective (mean over seeds), by the objective's direction."""
    scored = [j for j in jobs if math.isfinite(_objective(j))]
    if not scored:
        return jobs[0]
    sign = -1 if direction(jobs[0].summary["objective"]["metric"]) == "maximize" else 1
    return min(scored, key=lambda j: sign * _objective(j))


def _objective(job: Job) -> float:
    value = ((job.summary or {}).get("objective") or {}).get("value")
    return float(value) if value is not None else math.nan


def searched_label(job: Job, keys: list[str]) -> str:
    return ", ".join(f"{k}={short(job.overrides.get(k, '?'))}" for k in keys)


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


@dataclass
class Pair:
    """One comparison: the other job against its baseline job, with their labels."""

    base: Job
    other: Job
    base_label: str
    other_label: str
    context: str  # the other varying keys, equal between the two ("" when only one varies)


def plan(jobs: list[Job], baseline: str | None) -> tuple[Baseline, list[Pair], bool]:
    """The baseline, the pairs to compare and whether the jobs are search trials."""
    if baseline is None and is_search(jobs):
        keys = varying_keys(jobs)
        best = best_trial(jobs)
        chosen = Baseline("", searched_label(best, keys), "the best trial on the objective")
        label = f"best trial {chosen.value}"
        pairs = [Pair(best, v, label, searched_label(v, keys), "") for v in jobs if v is not best]
        return chosen, pairs, True
    chosen = resolve_baseline(jobs, baseline)
    others = [k for k in varying_keys(jobs) if k != chosen.key]

    def context(v: Job) -> str:  # the other varying keys: equal between baseline and other
        return ", ".join(f"{o}={v.overrides.get(o)}" for o in others)

    def is_base(v: Job) -> bool:
        return _same(v.overrides.get(chosen.key), chosen.value)

    base = {context(v): v for v in jobs if is_base(v)}
    pairs = [
        Pair(base[context(v)], v, chosen.label, f"{chosen.key}={v.overrides[chosen.key]}", ctx)
        for v in jobs
        if not is_base(v) and (ctx := context(v)) in base
    ]
    return chosen, pairs, False


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
    chosen, pairs, search = plan(jobs, baseline)
    fixed = parse_target(target)
    # one early-loss step for every job, inside the shortest run
    k = first_k or max(1, math.ceil(0.1 * min(last_step(v.metrics) for v in jobs)))
    objective = next(
        (p.base.summary["objective"]["metric"] for p in pairs if p.base.summary), "val/loss"
    )

    def speed(v: Job, t: Target) -> dict[int, dict[str, float]]:
        return speed_metrics(v.metrics, target=t, first_k=k, summary=v.summary)

    def label(name: str, context: str) -> str:
        return f"{name}, {context}" if context else name

    rows, table = [], {}
    for pair in tqdm(pairs, desc="compare", unit="job", disable=None):
        b, v = pair.base, pair.other
        t = fixed or default_target(b)
        sa, sb = speed(b, t), speed(v, t)
        table[label(pair.base_label, pair.context)] = sa
        table[label(pair.other_label, pair.context)] = sb
        paired = pairable(b, v, list(sa), list(sb))
        metrics = [f"{objective}_final"] if search else compared_metrics(sa)
        for metric in metrics:
            xa, xb = _samples(sa, sb, metric, paired)
            tag = f"{pair.context}|{pair.other_label}|{metric}"  # a row's draws ignore row order
            rng = np.random.default_rng([seed, zlib.crc32(tag.encode())])
            (dead_a, miss_a), (dead_b, miss_b) = _counts(sa, metric), _counts(sb, metric)
            result = compare_samples(
                xa, xb, paired=paired, level=level, rng=rng, n_resamples=n_resamples
            )
            odds = (None, None)
            if result is not None:
                odds = (
                    chance(metric, (b.summary or {}).get("data"), result.mean_a, level),
                    chance(metric, (v.summary or {}).get("data"), result.mean_b, level),
                )
            rows.append(
                Row(
                    metric=metric,
                    factor=chosen.key,
                    baseline=pair.base_label,
                    other=pair.other_label,
                    context=pair.context,
                    target=t if metric == "steps_to_target" else None,
                    result=result,
                    n_seeds=(len(sa), len(sb)),
                    n_diverged=(dead_a, dead_b),
                    n_missing=(miss_a, miss_b),
                    n_values=(_finite(sa, metric), _finite(sb, metric)),
                    chance=odds,
                )
            )
    _correct(rows)
    return Comparisons(rows, chosen, fixed, k, objective, search, table)


def _correct(rows: list[Row]) -> None:
    """Holm over each family: the rows of one metric against one baseline job; seeds needed
    re-planned at the family's level (Holm's first step asks ``alpha / m`` of the smallest p)."""
    families: dict[tuple[str, str, str], list[Row]] = {}
    for r in rows:
        families.setdefault((r.metric, r.baseline, r.context), []).append(r)
    for fam in families.values():
        got = [r for r in fam if r.result is not None and math.isfinite(r.result.p_t)]
        for name in ("p_t", "p_rank"):
            for r, p in zip(got, holm([getattr(r.result, name) for r in got])):
                setattr(r, f"{name}_holm", p)
        for r in fam:
            r.family_size = max(1, len(got))
        for r in got:
            if r.family_size > 1:
                r.result.seeds_needed = seeds_needed(
                    r.result.effect, paired=r.result.paired, alpha=r.alpha
                )


def better(metric: str) -> str:
    """``lower`` or ``higher``: which way a speed metric improves."""
    if metric.startswith("steps_to") or metric.startswith("epochs_to"):
        return "lower"
    name = metric.split("@")[0].removesuffix("_auc").removesuffix("_best").removesuffix("_final")
    return "lower" if direction(name) == "minimize" else "higher"
