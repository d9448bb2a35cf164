"""Numbers the report shows, computed from job files: curves over seeds, finals, loss at init.

Spread over seeds is the sample standard deviation (ddof=1, 0 for one seed), as in
``summary.json``; non-finite values (a diverged seed) are left out and counted.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from initsweep.report.jobs import Job
from initsweep.summary import aggregate


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass
class Curve:
    """One metric of one job over steps: mean and std over the seeds logged at each step."""

    steps: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    n: np.ndarray


def curve(job: Job, metric: str) -> Curve | None:
    """``metric`` of ``job`` by step, over seeds; the last record wins where a resumed job
    logged a step twice."""
    by_step: dict[int, dict[int, float]] = {}
    for r in job.metrics:
        value = r.get(metric)
        if _number(value) and "step" in r:
            by_step.setdefault(int(r["step"]), {})[r.get("seed")] = float(value)
    if not by_step:
        return None
    steps = sorted(by_step)
    stats = [tuple(aggregate(list(by_step[s].values())).values()) for s in steps]
    keep = [i for i, (_, _, n) in enumerate(stats) if n > 0]
    if not keep:
        return None
    return Curve(
        np.array([steps[i] for i in keep]),
        np.array([stats[i][0] for i in keep]),
        np.array([stats[i][1] for i in keep]),
        np.array([stats[i][2] for i in keep]),
    )


def metric_names(jobs: list[Job]) -> list[str]:
    """Every metric key logged by any job: train/* first, then val/*, losses first in each."""
    keys = {k for j in jobs for r in j.metrics for k in r if "/" in k}
    return sorted(keys, key=lambda k: (not k.startswith("train/"), not k.endswith("/loss"), k))


def finals(job: Job, metric: str) -> tuple[list[float], int]:
    """Per-seed final values of ``metric`` (seeds that did not diverge) and the diverged count."""
    if not job.summary:
        return [], 0
    values, diverged = [], 0
    for s in job.summary.get("seeds", []):
        if s.get("diverged"):
            diverged += 1
            continue
        v = s.get("metrics", {}).get(metric)
        if _number(v) and math.isfinite(v):
            values.append(float(v))
    return values, diverged


def init_losses(job: Job) -> tuple[list[float], list[float]]:
    """Per-seed (expected, measured) loss at step 0 from ``init.json``."""
    rows = (job.init or {}).get("seeds", [])
    expected = [float(r["expected_loss"]) for r in rows if _number(r.get("expected_loss"))]
    measured = [float(r["measured_loss"]) for r in rows if _number(r.get("measured_loss"))]
    return expected, measured


def init_layers(job: Job) -> dict[int, list[dict]]:
    """``init.json`` per-layer statistics by seed (empty until the init library writes them)."""
    return {r["seed"]: r.get("layers") or [] for r in (job.init or {}).get("seeds", [])}


def scheme_groups(jobs: list[Job], varying: list[str]) -> list[tuple[str, Job]]:
    """One job per distinct (init, model) config, labelled by the init/model overrides that vary.

    Weights at init depend on the scheme and the model, not on the bias rule or the optimizer,
    so the first job of each group stands for it.
    """
    groups: dict[str, tuple[str, Job]] = {}
    for job in jobs:
        key = json.dumps([job.config.get("init"), job.config.get("model")], sort_keys=True)
        if key in groups:
            continue
        parts = [
            f"{k}={job.overrides[k]}"
            for k in varying
            if k in job.overrides and k.split(".")[0] in ("init", "model")
        ]
        name = (job.config.get("init") or {}).get("name", job.label)
        groups[key] = (" ".join(parts) or str(name), job)
    return list(groups.values())
