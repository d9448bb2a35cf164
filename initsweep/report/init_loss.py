"""Loss at init per job: what each seed measured at step 0 against what theory expects.

The expected loss is the loss of predicting the output bias for every sample (``init.json``):
ln C for a zero softmax bias, H(prior) for the prior bias, Var(y) for MSE at the mean. A measured
loss far above it means random output weights (or exploding activations) cost loss before any
update: the start of a "hockey stick" curve.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from initsweep.render import render_table
from initsweep.report.aggregate import init_losses
from initsweep.report.jobs import Job, Study
from initsweep.report.section import (
    Options,
    Section,
    figure_html,
    job_ticks,
    per_job_width,
    save,
)
from initsweep.report.style import design


def section(study: Study, out: Path, options: Options) -> Section | None:
    jobs = [j for j in study.jobs if any(init_losses(j))]
    if not jobs:
        return None
    look = design(study)
    width = per_job_width([j.label for j in jobs]) * len(jobs) + 2
    fig = Figure(figsize=(max(6.5, width), 4.6), layout="constrained")
    ax = fig.subplots()
    rng = np.random.default_rng(0)  # jitter only, so points of equal loss stay apart
    for x, job in enumerate(jobs):
        color, marker = look.looks[job.name].color, look.looks[job.name].marker
        expected, measured = init_losses(job)
        ax.scatter(
            x + rng.uniform(-0.12, 0.12, len(measured)),
            measured,
            color=color,
            marker=marker,
            s=28,
            zorder=5,
        )
        for e in set(expected):
            ax.hlines(e, x - 0.32, x + 0.32, color="black", lw=2, zorder=4)  # under the points
    job_ticks(ax, [j.label for j in jobs])
    ax.set_ylabel("loss at step 0 (training set)")
    ax.set_xlabel("job")
    ax.set_title("Loss at init: measured per seed vs expected from the output bias")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(
        [
            Line2D([], [], marker="o", ls="", color="grey"),
            Line2D([], [], color="black", lw=2),
        ],
        ["measured (one point per seed)", "expected (loss of predicting the output bias)"],
        fontsize="small",
        loc="best",
    )
    path = save(fig, out / "loss_at_init.png")
    caption = (
        "Loss at step 0, before any update: one point per seed; the black bar is the loss the "
        "output bias alone would give. Points above the bar: random output weights add loss."
    )
    body, text = figure_html(path, out, caption), ""
    rows = regression_rows(jobs)
    if rows:  # regression: each arm's measured loss against the targets' best constants
        header = ["job", "loss", "bias", "measured", "expected", "Var(y)", "mean|y-median|",
                  "Huber at b*"]  # fmt: skip
        text = render_table(header, rows, align="lll" + "r" * 5)
        body += render_table(header, rows, "html") + (
            '<p class="note">Var(y) is the MSE of predicting the mean, mean |y − median| the '
            "MAE of predicting the median, Huber at b* the Huber loss of its optimum b*: the "
            "loss at init of the mean, median and huber bias rules under their own loss, with "
            "the output weights at 0.</p>"
        )
        text = "Loss at init against the targets' best constants\n" + text
    return Section("Loss at init", body, [path], text=text)


def regression_rows(jobs: list[Job]) -> list[list[str]]:
    """One row per regression job: its loss and bias rule, measured and expected loss at init,
    and the three best-constant losses of its targets (``init.json`` ``targets``)."""
    rows = []
    for job in jobs:
        targets = (job.init or {}).get("targets")
        if not targets:
            continue
        expected, measured = init_losses(job)
        m = np.mean(measured) if measured else float("nan")
        s = np.std(measured, ddof=1) if len(measured) > 1 else 0.0
        bias = ((job.config or {}).get("bias") or {}).get("output", "")
        rows.append(
            [job.label, str(job.init.get("loss", "")), str(bias), f"{m:.4g} ± {s:.2g}",
             f"{np.mean(expected):.4g}" if expected else "—", f"{targets['var']:.4g}",
             f"{targets['mean_abs_dev']:.4g}", f"{targets['huber_at_optimum']:.4g}"]
        )  # fmt: skip
    return rows
