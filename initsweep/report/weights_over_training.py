"""Weight histograms over training: how each layer's weights move from init, epoch by epoch.

One row per job (the first :data:`MAX_JOBS`), one column per layer (the first, last and evenly
spaced ones between, :func:`~initsweep.report.init_histograms.pick`); each panel is a ridge
plot of that weight's histogram at every logged epoch of the job's first seed
(``histograms.jsonl``), epoch 0 (init) at the bottom, later epochs above it in darker colours.
A scheme whose weights barely move from init stacks the same shape; a layer that grows or
collapses shows it as the ridges widen or narrow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from initsweep.report.init_histograms import pick, rebin
from initsweep.report.jobs import Job, Study
from initsweep.report.section import Options, Section, figure_html, plain, save

MAX_JOBS = 6
MAX_LAYERS = 4
MAX_EPOCHS = 8  # ridges per panel: epoch 0, the last, and evenly spaced ones between


def ridges(job: Job) -> tuple[int | None, dict[str, dict[int, dict]]]:
    """(seed, ``{weight name: {epoch: record}}``) of the job's first seed with histograms."""
    hists = [h for h in job.histograms if h.get("kind") == "weight" and h.get("counts")]
    if not hists:
        return None, {}
    seed = job.seeds[0] if job.seeds and any(h["seed"] == job.seeds[0] for h in hists) else (
        hists[0]["seed"])  # fmt: skip
    out: dict[str, dict[int, dict]] = {}
    for h in hists:
        if h["seed"] == seed:
            out.setdefault(h["name"], {})[int(h.get("epoch", 0))] = h  # a resumed epoch: last
    return seed, out


def _panel(ax, by_epoch: dict[int, dict]) -> None:
    epochs = sorted(by_epoch)
    if len(epochs) > MAX_EPOCHS:
        keep = np.linspace(0, len(epochs) - 1, MAX_EPOCHS).round().astype(int)
        epochs = [epochs[i] for i in sorted(set(keep))]
    shapes = []
    for e in epochs:
        counts, edges = rebin(np.asarray(by_epoch[e]["counts"], float),
                              np.asarray(by_epoch[e]["edges"], float))  # fmt: skip
        shapes.append((counts / (counts.sum() * np.diff(edges)), edges))
    top = max(float(d.max()) for d, _ in shapes) or 1.0
    cmap = colormaps["viridis"]
    for i, (density, edges) in reversed(list(enumerate(shapes))):  # lower ridges in front
        color = cmap(0.85 * (1 - i / max(1, len(epochs) - 1)))
        ax.stairs(i + 1.4 * density / top, edges, baseline=i, fill=True, color=color)
        ax.stairs(i + 1.4 * density / top, edges, baseline=i, color="black", lw=0.5)
    ax.set_yticks(range(len(epochs)), [f"epoch {e}" for e in epochs], fontsize=7)
    ax.set_ylim(-0.2, len(epochs) + 0.9)
    ax.tick_params(axis="x", labelsize=7)


def section(study: Study, out: Path, options: Options) -> Section | None:
    rows = []
    for job in study.jobs:
        seed, by_name = ridges(job)
        if by_name and max(len(v) for v in by_name.values()) > 1:  # more than init alone
            rows.append((job, seed, by_name))
    if not rows:
        return None
    shown = rows[:MAX_JOBS]
    names = list(dict.fromkeys(n for _, _, by_name in shown for n in by_name))
    layers = pick(names, MAX_LAYERS)
    fig = Figure(figsize=(3.2 * len(layers) + 1.2, 2.4 * len(shown) + 0.9), layout="constrained")
    axes = fig.subplots(len(shown), len(layers), squeeze=False)
    for r, (job, seed, by_name) in enumerate(shown):
        for c, name in enumerate(layers):
            ax = axes[r, c]
            if name not in by_name:
                ax.set_visible(False)
                continue
            _panel(ax, by_name[name])
            if r == 0:
                ax.set_title(plain(name), fontsize=8)
            if c == 0:
                ax.set_ylabel(plain(f"{job.label}\n(seed {seed})"), fontsize=8)
            if r == len(shown) - 1:
                ax.set_xlabel("weight value", fontsize=8)
    fig.suptitle("Weight histograms over training: one ridge per logged epoch, init at the bottom")
    path = save(fig, out / "weights_over_training.png")
    caption = (
        "Each layer's weights of the job's first seed at every logged epoch (histograms.jsonl), "
        "as densities stacked from epoch 0 (init, bottom) upwards."
        + (f" The first {MAX_JOBS} of {len(rows)} jobs." if len(rows) > MAX_JOBS else "")
    )
    return Section("Weights over training", figure_html(path, out, caption), [path])
