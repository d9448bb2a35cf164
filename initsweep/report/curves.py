"""Training and validation curves: per job, the mean over seeds and a ±1 std band.

Seeds share one data order, so their curves are logged at the same steps and the band is the
spread caused by initialization alone. ``--log-x`` puts the steps on a symmetric-log axis
(linear below 1, so step 0, the loss at init, stays visible) to show the first steps. A grid
is drawn by its design (:mod:`initsweep.report.style`: colour one factor, dashes the other);
jobs whose mean curves are identical are drawn nested, the first widest, so each stays visible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from initsweep.report.aggregate import curve, metric_names
from initsweep.report.jobs import Job, Study
from initsweep.report.section import Options, Section, figure_html, legend_below, plain, save
from initsweep.report.style import Design, design


def _diverged(job: Job) -> str:
    """ " (2 of 5 seeds diverged)": their curves end where they diverged ("" if none)."""
    diverged = (job.summary or {}).get("n_diverged") or 0
    return f" ({diverged} of {len(job.seeds)} seeds diverged)" if diverged else ""


def twins(lines: list) -> dict[str, list[str]]:
    """Per job name, the earlier jobs whose mean curve is the same (steps and values)."""
    seen: dict[tuple, list[str]] = {}
    out = {}
    for job, c in lines:
        key = (tuple(c.steps), tuple(np.round(c.mean, 12)))
        out[job.name] = list(seen.get(key, []))
        seen.setdefault(key, []).append(job.label)
    return out


def _panel(ax, metric: str, lines: list, look: Design) -> list[str]:
    """One metric, every job; returns the identical curves found ("a = b"). Losses spanning more
    than a decade get a log y-axis (a bad scheme's loss would flatten the others); there the
    band is cut at half the smallest mean."""
    lines = [(job, c) for job, c in lines if c is not None]
    means = np.concatenate([c.mean for _, c in lines])
    log_y = metric.endswith("loss") and means.min() > 0 and means.max() / means.min() > 10
    floor = means.min() / 2 if log_y else -np.inf
    same = twins(lines)
    groups = {}
    for job, _ in lines:  # how many identical curves follow each one: its extra width
        groups[job.name] = sum(job.label in same[o.name] for o, _ in lines)
    for job, c in lines:
        style = look.looks[job.name]
        marker = "o" if len(c.steps) < 3 else None  # a curve cut short by divergence stays visible
        width = 1.6 + 2.2 * groups[job.name]  # nested: an identical curve drawn later is thinner
        ax.plot(c.steps, c.mean, color=style.color, ls=style.linestyle, lw=width, marker=marker,
                ms=4)  # fmt: skip
        if not same[job.name]:  # one band per distinct curve
            low = np.maximum(c.mean - c.std, floor)
            ax.fill_between(c.steps, low, c.mean + c.std, color=style.color, alpha=0.2, lw=0)
    ax.set_title(plain(metric))
    ax.set_ylabel(metric.split("/", 1)[1] + (" (log scale)" if log_y else ""))
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    return [f"{job.label} = {same[job.name][0]}" for job, _ in lines if same[job.name]]


def section(study: Study, out: Path, options: Options) -> Section | None:
    jobs = [j for j in study.jobs if j.metrics]
    # a metric is a curve once some job logged it at two steps (train/acc exists at step 0 only)
    metrics = [
        m for m in metric_names(jobs) if any((c := curve(j, m)) and len(c.steps) > 1 for j in jobs)
    ]
    if not metrics:
        return None
    look = design(study)
    ncols = min(3, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig = Figure(figsize=(5.2 * ncols, 3.8 * nrows + 0.4 * len(jobs) ** 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    identical: dict[str, list[str]] = {}
    for ax, metric in zip(axes, metrics):
        found = _panel(ax, metric, [(j, curve(j, metric)) for j in jobs], look)
        for pair in found:
            identical.setdefault(pair, []).append(metric)
        ax.set_xlabel("step (symlog)" if options.log_x else "step")
        if options.log_x:
            ax.set_xscale("symlog", linthresh=1)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    n_seeds = max(len(j.seeds) for j in jobs)
    fig.suptitle(f"Training curves: mean over seeds (up to {n_seeds}) with ±1 std band")
    legend_below(fig, *look.handles(jobs, note=_diverged))
    path = save(fig, out / "curves.png")
    caption = (
        "Mean over seeds (line) and ±1 sample std (band) per job; step 0 is the loss at init; "
        "losses spanning more than a decade are drawn on a log axis."
        + ("" if options.log_x else " Rerun with --log-x to zoom on the first steps.")
        + "".join(f" Identical curves, drawn nested: {pair} ({', '.join(m)})."
                  for pair, m in identical.items())
    )  # fmt: skip
    return Section("Training curves", figure_html(path, out, caption), [path])
