"""A job's summary: per-seed finals, the aggregate over seeds, the objective, and a table."""

from __future__ import annotations

import math
import statistics

from initsweep.train.loop import CopyState
from initsweep.train.metrics import direction


def aggregate(values: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation (ddof=1; 0 for one value) and count of finite values."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return {"mean": statistics.fmean(vals), "std": std, "n": len(vals)}


ON_DIVERGE = ("ignore", "penalize", "fail")  # trainer.on_diverge: diverged seeds in the objective


def objective_value(
    copies: list[CopyState], metric: str, on_diverge: str = "ignore", penalty: float | None = None
) -> float:
    """The job's objective: the mean over seeds of ``metric``, diverged seeds as ``on_diverge`` says.

    ``ignore``: the mean over the seeds that did not diverge; ``penalize``: a diverged seed counts
    as ``penalty``; ``fail``: NaN if any seed diverged. Whatever the policy, a job whose seeds
    *all* diverged returns NaN, which the Optuna sweeper records as a failed trial.
    """
    live = [c.final.get(metric, math.nan) for c in copies if c.diverged_step is None]
    n_diverged = len(copies) - len(live)
    if not live or (n_diverged and on_diverge == "fail"):
        return math.nan
    if on_diverge == "penalize":
        live += [penalty] * n_diverged
    return aggregate(live)["mean"]


def summarize(
    copies: list[CopyState],
    objective: str,
    on_diverge: str = "ignore",
    penalty: float | None = None,
) -> dict:
    """Per-seed finals, their aggregate over the seeds that did not diverge, and the objective."""
    live = [c for c in copies if c.diverged_step is None]
    keys = sorted({k for c in copies for k in c.final})
    agg = {k: aggregate([c.final.get(k, math.nan) for c in live]) for k in keys}
    value = objective_value(copies, objective, on_diverge, penalty)
    return {
        "status": "finished",
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
    }


def format_table(agg: dict[str, dict[str, float]], title: str = "") -> str:
    """A small fixed-width table: metric | mean ± std | n."""
    rows = [(k, f"{v['mean']:.4f} ± {v['std']:.4f}", str(v["n"])) for k, v in agg.items()]
    header = ("metric", "mean ± std", "n")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths))  # noqa: E731
    out = [title] if title else []
    out += [line(header), line(tuple("-" * w for w in widths)), *map(line, rows)]
    return "\n".join(out)
