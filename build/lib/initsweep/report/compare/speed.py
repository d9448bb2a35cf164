"""Learning-speed metrics per seed, read from a job's ``metrics.jsonl`` records.

A job logs, per seed: a full evaluation of ``train/*`` and ``val/*`` at step 0 (the loss at
init), the mean ``train/loss`` of every ``log_every`` interval, and ``val/*`` at each epoch end
(see ``initsweep/train/loop.py``). From those points, per seed:

==========================  ================================================================
``train/loss@init``         the full training-set loss before any update (step 0)
``train/loss@step{k}``      the interval-mean ``train/loss`` at the first logged step ``≥ k``
``val/loss@epoch1``         the validation loss after the first epoch
``steps_to_target``         the first logged step at which the target metric reaches the target
``epochs_to_target``        the same in epochs (``step / steps per epoch``; fractional)
``train/loss_auc``          area under the ``train/loss``-vs-step curve divided by the steps
                            (trapezoid rule): the mean training loss over the run
``val/<m>_best``            the best epoch-end value of each ``val/*`` metric
``val/<m>_final``           its last value
``diverged``                1 if the seed diverged (non-finite loss or weights), else 0
==========================  ================================================================

A diverged seed keeps what it measured before it diverged (its loss at init, an early loss, a
target reached in time); what needs the whole run (AUC, best, final) is NaN. A target never
reached is NaN in ``steps_to_target`` and counted as "not reached" by the comparisons.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from initsweep.errors import invalid
from initsweep.summary import direction

TARGET_METRIC = "train/loss"  # every task logs it, at every log interval: the finest clock


@dataclass(frozen=True)
class Target:
    """A level of one metric: reached when the metric is at or beyond ``value``.

    "Beyond" follows the metric's direction: ``≤`` for losses and errors, ``≥`` for accuracy
    and AUC (:func:`initsweep.summary.direction`).
    """

    metric: str
    value: float

    @property
    def minimize(self) -> bool:
        return direction(self.metric) == "minimize"

    def reached(self, v: float) -> bool:
        return math.isfinite(v) and (v <= self.value if self.minimize else v >= self.value)

    @property
    def label(self) -> str:
        return f"{self.metric} {'≤' if self.minimize else '≥'} {self.value:.4g}"


def parse_target(spec: str | float | Target | None) -> Target | None:
    """``report.target``: a number (a ``train/loss`` level), ``metric:value`` or ``metric=value``.

    >>> parse_target("val/acc:0.9")
    Target(metric='val/acc', value=0.9)
    """
    if spec is None or isinstance(spec, Target):
        return spec
    if isinstance(spec, (int, float)):
        return Target(TARGET_METRIC, float(spec))
    text = str(spec).strip()
    metric, sep, value = text.replace("=", ":").rpartition(":")
    try:
        level = float(value)
    except ValueError:
        level = math.nan
    if not math.isfinite(level) or (sep and not metric.strip()):
        raise invalid(
            "report.target",
            spec,
            "use a number (a train/loss level) or metric:value, e.g. 0.5 or val/acc:0.9",
        )
    return Target(metric.strip() or TARGET_METRIC, level)


def series(records: list[dict], key: str) -> dict[int, list[tuple[int, int, float]]]:
    """Per seed, the ``(step, epoch, value)`` points that carry ``key``, in step order."""
    out: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
    for r in records:
        if key in r and r[key] is not None:
            out[r["seed"]].append((r["step"], r["epoch"], float(r[key])))
    for points in out.values():
        points.sort(key=lambda p: p[0])
    return dict(out)


def steps_per_epoch(records: list[dict]) -> int | None:
    """The step count of one epoch: the last step logged in epoch 1 (its epoch-end point)."""
    steps = [r["step"] for r in records if r.get("epoch") == 1]
    return max(steps) if steps else None


def last_step(records: list[dict]) -> int:
    return max((r["step"] for r in records), default=0)


def default_first_k(records: list[dict]) -> int:
    """The default ``k`` of ``train/loss@step{k}``: a tenth of the run (at least one step)."""
    return max(1, math.ceil(0.1 * last_step(records)))


def diverged_steps(records: list[dict], summary: dict | None = None) -> dict[int, int | None]:
    """Per seed, the step it diverged at (``None``: it did not), from ``summary.json`` if given.

    Without a summary (a job still running or killed), a seed diverged at its first
    non-finite ``train/loss``: the loop logs that point and then freezes the copy.
    """
    if summary and summary.get("seeds"):
        return {
            s["seed"]: (s.get("diverged_step") if s.get("diverged") else None)
            for s in summary["seeds"]
        }
    out: dict[int, int | None] = {}
    for seed, points in series(records, "train/loss").items():
        bad = [step for step, _, v in points if not math.isfinite(v)]
        out[seed] = min(bad) if bad else None
    return out


def _first_reached(points: list[tuple[int, int, float]], target: Target) -> int | None:
    return next((step for step, _, v in points if target.reached(v)), None)


def speed_metrics(
    records: list[dict],
    *,
    target: Target | None = None,
    first_k: int | None = None,
    summary: dict | None = None,
) -> dict[int, dict[str, float]]:
    """Learning-speed metrics of every seed of one job (see the module docstring).

    :param records: the job's ``metrics.jsonl`` records.
    :param target: the level for ``steps_to_target``; ``None`` leaves it out.
    :param first_k: ``k`` of ``train/loss@step{k}``; ``None``: :func:`default_first_k`.
    :param summary: the job's ``summary.json`` (its ``diverged`` flags win over the records).
    :return: ``{seed: {metric: value}}``; NaN where a value does not exist.
    """
    k = first_k or default_first_k(records)
    per_epoch = steps_per_epoch(records)
    gone = diverged_steps(records, summary)
    train = series(records, "train/loss")
    val_keys = sorted({key for r in records for key in r if key.startswith("val/")})
    vals = {key: series(records, key) for key in val_keys}
    tracked = series(records, target.metric) if target is not None else {}
    seeds = sorted(set(train) | set(gone))
    out = {}
    for seed in seeds:
        stop = gone.get(seed)
        alive = (lambda step: True) if stop is None else (lambda step, s=stop: step < s)  # noqa: E731
        pts = [p for p in train.get(seed, []) if alive(p[0])]
        m: dict[str, float] = {"diverged": float(stop is not None)}
        m["train/loss@init"] = next((v for step, _, v in pts if step == 0), math.nan)
        m[f"train/loss@step{k}"] = next((v for step, _, v in pts if step >= k), math.nan)
        val_loss = [p for p in vals.get("val/loss", {}).get(seed, []) if alive(p[0])]
        m["val/loss@epoch1"] = next((v for _, epoch, v in val_loss if epoch == 1), math.nan)
        if target is not None:
            hit = _first_reached([p for p in tracked.get(seed, []) if alive(p[0])], target)
            m["steps_to_target"] = math.nan if hit is None else float(hit)
            m["epochs_to_target"] = math.nan if hit is None or not per_epoch else hit / per_epoch
        finished = stop is None and len(pts) > 1
        steps = np.array([p[0] for p in pts], dtype=float)
        losses = np.array([p[2] for p in pts], dtype=float)
        m["train/loss_auc"] = (
            float(np.trapezoid(losses, steps) / (steps[-1] - steps[0])) if finished else math.nan
        )
        for key in val_keys:
            vs = [v for step, epoch, v in vals[key].get(seed, []) if epoch >= 1]
            ok = finished and vs and all(math.isfinite(v) for v in vs)
            best = min if direction(key) == "minimize" else max
            m[f"{key}_best"] = best(vs) if ok else math.nan
            m[f"{key}_final"] = vs[-1] if ok else math.nan
        out[seed] = m
    return out
