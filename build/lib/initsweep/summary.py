"""A job's summary: per-seed finals, the aggregate over seeds, the objective, and a table.

No torch here: the report reads ``summary.json`` with the same :func:`aggregate` and
:func:`direction` the job wrote it with. ``copies`` are the loop's per-seed states (``seed``,
``final`` metrics, ``diverged_step``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from initsweep.render import render_table

ON_DIVERGE = ("ignore", "penalize", "fail")  # trainer.on_diverge: diverged seeds in the objective


def direction(metric: str) -> str:
    """Losses and errors are minimised; accuracy, AUC and the like are maximised."""
    name = metric.rsplit("/", 1)[-1]
    return (
        "minimize"
        if name in ("loss", "mse", "mae", "nll") or name.endswith("loss")
        else "maximize"
    )


def aggregate(values: Sequence[float | None]) -> dict[str, float]:
    """Mean, sample standard deviation (ddof=1; 0 for one value) and count of finite values."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return {"mean": statistics.fmean(vals), "std": std, "n": len(vals)}


def objective_per_seed(
    copies: Sequence[Any], metric: str, on_diverge: str = "ignore", penalty: float | None = None
) -> dict[int, float | None]:
    """Each seed's part in the objective: its final ``metric``; a diverged seed counts as
    ``penalty`` under ``on_diverge=penalize`` and is ``None`` (no value) otherwise."""
    return {
        c.seed: c.final.get(metric, math.nan)
        if c.diverged_step is None
        else (penalty if on_diverge == "penalize" else None)
        for c in copies
    }


def objective_value(
    copies: Sequence[Any], metric: str, on_diverge: str = "ignore", penalty: float | None = None
) -> float:
    """The job's objective: the mean over seeds of ``metric``, diverged seeds as ``on_diverge`` says.

    ``ignore``: the mean over the seeds that did not diverge (NaN when all did); ``penalize``: a
    diverged seed counts as ``penalty``, also when every seed diverged; ``fail``: NaN if any seed
    diverged. The Optuna sweeper records a NaN trial as diverged (``initsweep.search.pruning``).
    """
    if on_diverge == "fail" and any(c.diverged_step is not None for c in copies):
        return math.nan
    values = objective_per_seed(copies, metric, on_diverge, penalty).values()
    return aggregate([v for v in values if v is not None])["mean"]


def make_summary(
    copies: Sequence[Any],
    objective: str,
    on_diverge: str = "ignore",
    penalty: float | None = None,
    *,
    extra: dict | None = None,
    search: dict | None = None,
) -> dict:
    """``summary.json``: per-seed finals, their aggregate over the seeds that did not diverge,
    the objective, then ``extra`` (the job's name, strategy, config) and the search trial's
    record (``search``; a ``pruned_epoch`` there makes the status ``pruned``). A job whose seeds
    all diverged stopped there: its status is ``diverged``, not ``finished``."""
    live = [c for c in copies if c.diverged_step is None]
    keys = sorted({k for c in copies for k in c.final})
    agg = {k: aggregate([c.final.get(k, math.nan) for c in live]) for k in keys}
    value = objective_value(copies, objective, on_diverge, penalty)
    summary = {
        "status": "finished" if live else "diverged",
        "objective": {"metric": objective, "direction": direction(objective), "value": value},
        "seeds": [
            {
                "seed": c.seed,
                "diverged": c.diverged_step is not None,
                "diverged_step": c.diverged_step,
                "metrics": c.final,
            }
            for c in copies
        ],
        "n_diverged": len(copies) - len(live),
        "aggregate": agg,
        **(extra or {}),
    }
    if search is not None:
        summary["search"] = search
        if search.get("pruned_epoch") is not None:
            summary["status"] = "pruned"
    return summary


def from_json(summary: dict) -> dict:
    """``summary.json`` as read back, with NaN again where it holds ``null`` for a number that
    was not finite (JSON has none): the objective's value, the aggregate, each seed's metrics."""

    def nan(v: Any) -> Any:
        return math.nan if v is None else v

    s = dict(summary)
    if isinstance(s.get("objective"), dict):
        s["objective"] = {**s["objective"], "value": nan(s["objective"].get("value"))}
    if isinstance(s.get("aggregate"), dict):
        s["aggregate"] = {
            k: {**v, "mean": nan(v.get("mean")), "std": nan(v.get("std"))}
            for k, v in s["aggregate"].items()
            if isinstance(v, dict)
        }
    if isinstance(s.get("seeds"), list):
        s["seeds"] = [
            {**seed, "metrics": {k: nan(v) for k, v in (seed.get("metrics") or {}).items()}}
            for seed in s["seeds"]
            if isinstance(seed, dict)
        ]
    return s


def format_table(agg: dict[str, dict[str, float]], title: str = "") -> str:
    """A small fixed-width table: metric | mean ± std | n."""
    rows = [(k, f"{v['mean']:.4f} ± {v['std']:.4f}", str(v["n"])) for k, v in agg.items()]
    return render_table(("metric", "mean ± std", "n"), rows, title=title)
