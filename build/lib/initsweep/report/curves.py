"""Training and validation curves: per job, the mean over seeds and a ±1 std band.

Seeds share one data order, so their curves are logged at the same steps and the band is the
spread caused by initialization alone. ``--log-x`` puts the steps on a symmetric-log axis
(linear below 1, so step 0, the loss at init, stays visible) to show the first steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from initsweep.report.aggregate import curve, metric_names
from initsweep.report.jobs import Job, Study
from initsweep.report.section import Options, Section, figure_html, job_colors, legend_below, save


def legend_label(job: Job) -> str:
    """The job's label, with its diverged seeds (their curves end where they diverged)."""
    diverged = (job.summary or {}).get("n_diverged") or 0
    return job.label + (f" ({diverged} of {len(job.seeds)} seeds diverged)" if diverged else "")


def _panel(ax, metric: str, lines: list, handles: dict) -> None:
    """One metric, every job. Losses spanning more than a decade get a log y-axis (a bad scheme's
    loss would flatten the others); there the band is cut at half the smallest mean."""
    lines = [(job, c, color) for job, c, color in lines if c is not None]
    means = np.concatenate([c.mean for _, c, _ in lines])
    log_y = metric.endswith("loss") and means.min() > 0 and means.max() / means.min() > 10
    floor = means.min() / 2 if log_y else -np.inf
    for job, c, color in lines:
        marker = "o" if len(c.steps) < 3 else None  # a curve cut short by divergence stays visible
        (line,) = ax.plot(c.steps, c.mean, color=color, lw=1.6, marker=marker, ms=4)
        low = np.maximum(c.mean - c.std, floor)
        ax.fill_between(c.steps, low, c.mean + c.std, color=color, alpha=0.2, lw=0)
        handles.setdefault(legend_label(job), line)
    ax.set_title(metric)
    ax.set_ylabel(metric.split("/", 1)[1] + (" (log scale)" if log_y else ""))
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)


def section(study: Study, out: Path, options: Options) -> Section | None:
    jobs = [j for j in study.jobs if j.metrics]
    # a metric is a curve once some job logged it at two steps (train/acc exists at step 0 only)
    metrics = [
        m for m in metric_names(jobs) if any((c := curve(j, m)) and len(c.steps) > 1 for j in jobs)
    ]
    if not metrics:
        return None
    palette = job_colors(study.jobs)
    ncols = min(3, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig = Figure(figsize=(5.2 * ncols, 3.8 * nrows + 0.4 * len(jobs) ** 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    handles: dict = {}
    for ax, metric in zip(axes, metrics):
        _panel(ax, metric, [(j, curve(j, metric), palette[j.name]) for j in jobs], handles)
        ax.set_xlabel("step (symlog)" if options.log_x else "step")
        if options.log_x:
            ax.set_xscale("symlog", linthresh=1)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    n_seeds = max(len(j.seeds) for j in jobs)
    fig.suptitle(f"Training curves: mean over seeds (up to {n_seeds}) with ±1 std band")
    legend_below(fig, list(handles.values()), list(handles))
    path = save(fig, out / "curves.png")
    caption = (
        "Mean over seeds (line) and ±1 sample std (band) per job; step 0 is the loss at init; "
        "losses spanning more than a decade are drawn on a log axis."
        + ("" if options.log_x else " Rerun with --log-x to zoom on the first steps.")
    )
    return Section("Training curves", figure_html(path, out, caption), [path])
