"""The per-seed values a comparison reads, and the contrasts and interactions made from them.

A metric's final value (``val/loss_final``) is the job's ``summary.json`` per-seed value where
it holds one (the objective the job returned), else the last epoch-end value of
``metrics.jsonl``; every other metric is a learning-speed metric of
:mod:`~initsweep.report.compare.speed`. Diverged seeds and unreached targets have no value and
are counted, never dropped silently.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from initsweep.report.compare import contrast, design
from initsweep.report.compare.chance import chance
from initsweep.report.compare.interaction import Interaction, interactions
from initsweep.report.compare.speed import TARGET_METRIC, Target, diverged_steps, speed_metrics
from initsweep.report.jobs import Job

STEPS = "steps_to_target"


def default_target(base: Job) -> Target:
    """The baseline job's worst final ``train/loss`` over its live seeds: a level every baseline
    seed reaches by the end, so "steps to reach it" exists for the whole baseline and asks
    "how much sooner does the other job get where the baseline got?"
    """
    gone = diverged_steps(base.metrics, base.summary)
    last = {}  # the last logged point per seed: the summary's final train/loss
    for r in base.metrics:
        if TARGET_METRIC in r and gone.get(r["seed"]) is None:
            last[r["seed"]] = r[TARGET_METRIC]
    finite = [v for v in last.values() if v is not None and math.isfinite(v)]
    return Target(TARGET_METRIC, max(finite) if finite else math.nan)


class Measures:
    """Per-seed values of every job, computed once (learning speed per job and target)."""

    def __init__(self, jobs: list[Job], target: Target | None, first_k: int, level: float):
        self.jobs, self.fixed, self.first_k, self.level = jobs, target, first_k, level
        self._speed: dict[tuple[int, Target | None], dict] = {}

    def speed(self, job: Job, target: Target | None = None) -> dict[int, dict[str, float]]:
        key = (id(job), target)  # in-memory jobs may share a name
        if key not in self._speed:
            self._speed[key] = speed_metrics(
                job.metrics, target=target, first_k=self.first_k, summary=job.summary
            )
        return self._speed[key]

    def target_for(self, base: Job) -> Target:
        return self.fixed or default_target(base)

    def metrics(self) -> list[str]:
        """Every compared metric: the speed metrics but the divergence flags and the epoch twin
        of ``steps_to_target``, and ``steps_to_target`` itself."""
        keys = {}
        for job in self.jobs:
            for m in self.speed(job).values():
                keys.update(dict.fromkeys(m))
        keys = [k for k in keys if k not in ("diverged", "epochs_to_target")]
        at = next((i for i, k in enumerate(keys) if k == "train/loss_auc"), len(keys))
        return keys[:at] + [STEPS] + keys[at:]

    def values(self, job: Job, metric: str, target: Target | None = None) -> dict[int, float]:
        """``{seed: value}`` (NaN: diverged, or no value) of every seed the job ran."""
        seeds = (job.summary or {}).get("seeds") or []
        name = metric.removesuffix("_final")
        if metric.endswith("_final") and any(name in (s.get("metrics") or {}) for s in seeds):
            return {s["seed"]: _number((s.get("metrics") or {}).get(name)) if not s.get("diverged")
                    else math.nan for s in seeds}  # fmt: skip
        speed = self.speed(job, target if metric == STEPS else None)
        out = {s: _number(m.get(metric)) for s, m in speed.items()}
        for s in seeds:  # a seed with no record at all (an emptied metrics.jsonl)
            out.setdefault(s["seed"], math.nan)
        return out

    def relative(self, metric: str) -> bool:
        """Compared on the log scale: positive in every seed of every job (steps, which can be
        0 at init, never)."""
        if metric == STEPS:
            return False
        vals = [v for j in self.jobs for v in self.values(j, metric).values() if math.isfinite(v)]
        return bool(vals) and min(vals) > 0

    def diverged(self, job: Job) -> int:
        return sum(1 for s in (job.summary or {}).get("seeds") or [] if s.get("diverged"))

    def at_chance(self, job: Job, metric: str) -> bool:
        vals = [v for v in self.values(job, metric).values() if math.isfinite(v)]
        c = chance(metric, (job.summary or {}).get("data"), float(np.mean(vals)) if vals
                   else math.nan, self.level)  # fmt: skip
        return bool(c and c.at)


def _number(v) -> float:
    return float(v) if isinstance(v, (int, float)) and v is not None else math.nan


def pairable(a: Job, b: Job, seeds_a, seeds_b) -> bool:
    """Same seeds and the same batches in the same order (data seed, batch size, data order)."""
    return sorted(seeds_a) == sorted(seeds_b) and design.data_order(a) == design.data_order(b)


def contrast_of(row, pairs: list[tuple[tuple, Job, Job]], measures: Measures) -> None:
    """Fill ``row`` (an :class:`~initsweep.report.compare.engine.Row`) from its contexts'
    ``(context, baseline job, level job)``: paired by seed where every context allows it."""
    metric = row.metric
    row.relative = relative = measures.relative(metric)
    t = np.log if relative else np.asarray
    sides, targets, paired_all, seed_sets = [], set(), True, set()
    for ctx, b, lev in pairs:
        target = measures.target_for(b) if metric == STEPS else None
        targets.add(target)
        vb, vl = measures.values(b, metric, target), measures.values(lev, metric, target)
        paired_all &= pairable(b, lev, list(vb), list(vl))
        row.order_differs |= design.data_order(b) != design.data_order(lev)
        seed_sets.add(tuple(sorted(vb)))
        sides.append((design.context_label(ctx), vb, vl))
    row.target = next(iter(targets)) if len(targets) == 1 else None
    row.n_seeds = tuple(sum(len(s[i]) for s in sides) for i in (1, 2))
    row.n_diverged = tuple(sum(measures.diverged(p[i]) for p in pairs) for i in (1, 2))
    row.at_chance = tuple(all(measures.at_chance(p[i], metric) for p in pairs) for i in (1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        for label, vb, vl in sides:
            if paired_all:
                a, b = _by_seed([(label, vb, vl)], list(vb), t)
                row.contexts.append((label, contrast.paired(b[:, 0] - a[:, 0], a, b)))
            else:
                row.contexts.append((label, contrast.unpaired([(_finite(vb, t), _finite(vl, t))])))
        # the contexts where both arms have a value (an arm whose every seed diverged has none)
        live = [side for side in sides if _finite(side[1], t).size and _finite(side[2], t).size]
        if paired_all and len(seed_sets) == 1 and live:  # D_s: the seed's change over contexts
            a, b = _by_seed(live, list(seed_sets.pop()), t)
            d = (b - a).mean(axis=1)
            row.contrast = contrast.paired(d, a.mean(axis=1), b.mean(axis=1), len(live))
        else:
            pairs_ = [(_finite(vb, t), _finite(vl, t)) for _, vb, vl in live or sides]
            row.contrast = contrast.unpaired(pairs_)
    if not any(c.n[0] and c.n[1] for _, c in row.contexts):
        row.contrast = None


def _by_seed(sides: list, seeds: list[int], t) -> tuple[np.ndarray, np.ndarray]:
    """(baseline, level) values as seeds × contexts, the seeds with a value in every cell."""
    keep = [s for s in seeds if all(math.isfinite(v[s]) for _, vb, vl in sides for v in (vb, vl))]
    shape = (len(keep), len(sides))
    a = np.array([[vb[s] for _, vb, _ in sides] for s in keep], dtype=float).reshape(shape)
    b = np.array([[vl[s] for _, _, vl in sides] for s in keep], dtype=float).reshape(shape)
    return t(a), t(b)


def _finite(values: dict[int, float], t) -> np.ndarray:
    return t(np.array([v for v in values.values() if math.isfinite(v)], dtype=float))


def interaction_of(
    jobs: list[Job], factors: list[design.Factor], metric: str, measures: Measures
) -> list[Interaction]:
    """The pairwise interactions of ``factors`` on ``metric`` over a full grid of ``jobs``."""
    keys = [f.key for f in factors]
    rel = measures.relative(metric)
    records, seeds, orders = [], set(), set()
    for job in jobs:
        vals = measures.values(job, metric)
        seeds.add(tuple(sorted(vals)))
        orders.add(design.data_order(job))
        for seed, v in vals.items():
            y = (math.log(v) if v > 0 else math.nan) if rel and math.isfinite(v) else v
            records.append({**{k: design.level(job, k) for k in keys}, "seed": seed, "y": y})
    paired = len(seeds) == 1 and len(orders) == 1
    return interactions(pd.DataFrame(records), keys, paired)
