"""Forest plot: every comparison's difference with its interval, one panel per metric.

Each point is the ratio of the other job's mean to the baseline's (``1 + relative difference``)
on a log axis, so "half the steps" and "twice the steps" sit equally far from ×1 and a 40-fold
blow-up does not flatten a 10% gain. Green: clearly better, red: clearly worse, grey: no clear
difference (see :mod:`initsweep.report.verdict`); circles are paired by seed, squares unpaired,
a diamond without a bar is a deterministic (exact) ratio.

It shows only what it can draw: a row without a verdict (too few seeds), with both arms at
chance (not ranked) or without a ratio (a quantity that can be negative, a value missing on a
side) is left out, and :func:`not_drawn` says how many and why.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # the Agg canvas: no pyplot state, no display
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, MaxNLocator, NullLocator

from initsweep.report.compare.effects import DETERMINISTIC, FEW, MIN_BOOTSTRAP, MIN_SEEDS
from initsweep.report.compare.engine import Row, better
from initsweep.report.compare.verdict import describe, is_clear

COLORS = {"better": "tab:green", "worse": "tab:red", "unclear": "0.55"}


def _kind(row: Row) -> str:
    if not is_clear(row):
        return "unclear"
    return "better" if (row.result.diff < 0) == (better(row.metric) == "lower") else "worse"


def _ratios(row: Row) -> tuple[float, float, float]:
    r = row.result
    return 1 + r.rel, 1 + r.rel_low, 1 + r.rel_high


def why_not(row: Row) -> str | None:
    """Why a row is not drawn (``None``: it is)."""
    r = row.result
    if r is None or r.kind == FEW:
        return f"under {MIN_SEEDS} seeds with a value"
    if all(row.at_chance):
        return "both arms at chance"
    if not all(math.isfinite(x) and x > 0 for x in _ratios(row)):
        return "no ratio of means (a value that can be negative, or a bound at -100%)"
    return None


def not_drawn(rows: list[Row]) -> str:
    """ "12 rows under 3 seeds with a value; 2 rows both arms at chance" ("" when all drawn)."""
    counts: dict[str, int] = {}
    for r in rows:
        why = why_not(r)
        if why:
            counts[why] = counts.get(why, 0) + 1
    return "; ".join(f"{n} row{'s' * (n > 1)} {why}" for why, n in counts.items())


def _ticks(ax, lo: float, hi: float) -> None:
    """Ticks that include ×1: even steps in a narrow range, 1-2-5 decades in a wide one."""
    if hi / lo < 10:
        nice = MaxNLocator(5).tick_values(lo, hi)
        step = float(nice[1] - nice[0])
        ks = range(math.floor((lo - 1) / step), math.ceil((hi - 1) / step) + 1)
        ticks = [1 + k * step for k in ks if lo <= 1 + k * step <= hi]
        decimals = next(d for d in range(7) if abs(round(step, d) - step) < 1e-9 or d == 6)
        label = lambda v, _: f"×{v:.{decimals}f}"  # noqa: E731
    else:
        ticks = [t for t in LogLocator(subs=(1, 2, 5)).tick_values(lo, hi) if lo <= t <= hi]
        label = lambda v, _: f"×{v:.3g}"  # noqa: E731
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(label))


def _panel(ax, group: list[Row]) -> None:
    """One metric: a row per comparison, the ratio and its interval on a log axis."""
    ys = -np.arange(len(group), dtype=float)
    lo = min([min(_ratios(r)) for r in group] + [1.0])
    hi = max([max(_ratios(r)) for r in group] + [1.0])
    pad = (hi / lo) ** 0.08 if hi > lo else 1.02
    for y, r in zip(ys, group):
        mid, low, high = _ratios(r)
        color = COLORS[_kind(r)]
        if r.result.kind == DETERMINISTIC:
            ax.plot(mid, y, "D", color="black", mfc="white", ms=6)
            continue
        ax.plot([low, high], [y, y], color=color, lw=2)
        ax.plot(mid, y, "o" if r.result.paired else "s", color=color, ms=6)
    ax.axvline(1, color="black", lw=1)
    ax.set_xscale("log")
    ax.set_xlim(lo / pad, hi * pad)
    _ticks(ax, lo / pad, hi * pad)
    ax.set_ylim(ys[-1] - 0.6, 0.6)
    labels = [r.other + (f" [{r.context}]" if r.context else "") for r in group]
    ax.set_yticks(ys, labels, fontsize=8)
    ax.set_title(describe(group[0].metric, group[0].target), fontsize=9, loc="left")
    ax.grid(axis="x", color="0.92")


def forest_plot(rows: list[Row], path: Path, *, baseline: str) -> Path | None:
    """Write the forest plot of the drawable ``rows`` to ``path`` (PNG); ``None`` when none is."""
    shown = [r for r in rows if why_not(r) is None]
    if not shown:
        return None
    metrics = list(dict.fromkeys(r.metric for r in shown))
    groups = [[r for r in shown if r.metric == m] for m in metrics]
    ncols = 1 if len(groups) <= 4 else 2
    nrows = math.ceil(len(groups) / ncols)
    heights = [
        0.9 + 0.3 * max(len(g) for g in groups[i * ncols : (i + 1) * ncols]) for i in range(nrows)
    ]
    fig = Figure(figsize=(7 * ncols + 2, 1.0 + sum(heights)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, height_ratios=heights).ravel()
    for ax, group in zip(axes, groups):
        _panel(ax, group)
    for ax in axes[len(groups) :]:
        ax.set_visible(False)
    level = shown[0].result.level
    axes[-1].set_xlabel(
        f"other ÷ {baseline} (ratio of means, log scale), {level:.0%} CI: bootstrap "
        f"(t under {MIN_BOOTSTRAP} seeds)"
    )
    fig.suptitle(f"Is the difference real? Each job against {baseline}")
    handles = [
        Line2D([], [], color=COLORS["better"], marker="o", lw=2, label="clearly better"),
        Line2D([], [], color=COLORS["worse"], marker="o", lw=2, label="clearly worse"),
        Line2D([], [], color=COLORS["unclear"], marker="o", lw=2, label="no clear difference"),
        Line2D([], [], color="0.3", marker="o", ls="", label="paired by seed"),
        Line2D([], [], color="0.3", marker="s", ls="", label="unpaired"),
        Line2D([], [], color="black", mfc="white", marker="D", ls="", label="deterministic"),
    ]
    fig.legend(handles=handles, fontsize=7, loc="outside right upper")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
