"""Final metrics per job as strip plots: every seed a point, the mean ± 1 std as a bar.

Seeing the seeds, not only their mean, shows whether two schemes really differ or only their
luckiest seeds do. Seeds that diverged have no final value; their count is written in red.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from initsweep.report.aggregate import finals
from initsweep.report.jobs import Study
from initsweep.report.section import (
    Options,
    Section,
    figure_html,
    job_ticks,
    per_job_width,
    save,
)
from initsweep.report.style import design
from initsweep.summary import aggregate


def section(study: Study, out: Path, options: Options) -> Section | None:
    jobs = study.finished
    if not jobs:
        return None
    look = design(study)
    keys = {k for j in jobs for s in j.summary.get("seeds", []) for k in s.get("metrics", {})}
    objective = study.objective
    metrics = [objective] + sorted(k for k in keys if k.startswith("val/") and k != objective)
    metrics = [m for m in metrics if any(finals(j, m)[0] for j in jobs)]
    if not metrics:
        return None
    width = max(4.5, per_job_width([j.label for j in jobs]) * len(jobs) + 1.5)
    stacked = len(jobs) > 8  # many jobs: one metric per row, so the figure stays readable
    grid = (len(metrics), 1) if stacked else (1, len(metrics))
    size = (width, 5 * len(metrics)) if stacked else (width * len(metrics), 5)
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(*grid, squeeze=False).ravel()
    rng = np.random.default_rng(0)  # jitter only
    for ax, metric in zip(axes, metrics):
        for x, job in enumerate(jobs):
            color, marker = look.looks[job.name].color, look.looks[job.name].marker
            values, diverged = finals(job, metric)
            ax.scatter(
                x + rng.uniform(-0.15, 0.15, len(values)), values, color=color, marker=marker, s=26
            )
            mean, std, n = aggregate(values).values()
            if n:
                ax.errorbar(x + 0.3, mean, yerr=std, color="black", marker="_", ms=14, capsize=3)
            if diverged:
                ax.annotate(
                    f"{diverged} diverged",
                    (x, 1.0),
                    xycoords=("data", "axes fraction"),
                    ha="center",
                    va="top",
                    color="tab:red",
                    fontsize=8,
                )
        job_ticks(ax, [j.label for j in jobs])
        ax.set_xlim(-0.6, len(jobs) - 0.4)
        ax.set_title(f"final {metric}" + (" (objective)" if metric == objective else ""))
        ax.set_ylabel(metric)
        ax.set_xlabel("job")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(
        [
            Line2D([], [], marker="o", ls="", color="grey"),
            Line2D([], [], marker="_", ms=14, color="black"),
        ],
        ["one seed", "mean ± 1 std"],
        fontsize="small",
    )
    fig.suptitle("Final metrics per job: one point per seed, mean ± 1 std beside")
    path = save(fig, out / "finals.png")
    caption = (
        "Final value of each metric per seed (points) and the mean ± 1 sample std over seeds "
        "(black bar); diverged seeds have no final value."
    )
    return Section("Final metrics", figure_html(path, out, caption), [path])
