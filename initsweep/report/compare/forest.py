"""Forest plot: each level's change against its baseline with the row's interval, one panel per
metric (the primary metric first, then the headline estimates).

A relative change is drawn as the ratio level ÷ baseline on a log axis labelled in percent, so
"half" and "twice" sit equally far from no change; a plain difference on a linear axis. On the
primary metric, green is clearly better, red clearly worse, grey not clear; the other metrics
are estimates, drawn in blue. Small open circles are the same change in each context (the levels
of the other factors), so an interaction shows as their spread.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # the Agg canvas: no pyplot state, no display
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, MaxNLocator, NullLocator

from initsweep.report.compare.contrast import EXACT, TESTED
from initsweep.report.compare.engine import CLEAR, Analysis, Row, better
from initsweep.report.compare.verdict import describe, level_pct
from initsweep.report.section import plain

COLORS = {"better": "tab:green", "worse": "tab:red", "unclear": "0.55", "estimate": "tab:blue"}
HEADLINE = ("steps_to_target", "train/loss_auc", "val/loss@epoch1", "train/loss@init")


def _color(row: Row) -> str:
    if not row.primary:
        return COLORS["estimate"]
    if row.kind != CLEAR:
        return COLORS["unclear"]
    return COLORS[
        "better" if (row.change()[0] < 0) == (better(row.metric) == "lower") else "worse"
    ]


def drawn(row: Row) -> bool:
    return row.interaction is None and row.contrast is not None and row.contrast.kind in (
        TESTED, EXACT)  # fmt: skip


def _ticks(ax, lo: float, hi: float) -> None:
    """Ratio ticks that include ×1 (no change), labelled as a change in percent."""
    if hi / lo < 10:
        nice = MaxNLocator(5).tick_values(lo, hi)
        step = float(nice[1] - nice[0])
        ks = range(math.floor((lo - 1) / step), math.ceil((hi - 1) / step) + 1)
        ticks = [1 + k * step for k in ks if lo <= 1 + k * step <= hi]
    else:
        ticks = [t for t in LogLocator(subs=(1, 2, 5)).tick_values(lo, hi) if lo <= t <= hi]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())

    def label(v, _):
        return "0 %" if abs(v - 1) < 1e-9 else f"{100 * (v - 1):+.3g} %".replace("-", "\u2212")

    ax.xaxis.set_major_formatter(FuncFormatter(label))


def _panel(ax, rows: list[Row], analysis: Analysis) -> None:
    ys = -np.arange(len(rows), dtype=float)
    rel = rows[0].relative
    shift = 1.0 if rel else 0.0  # ratios around 1, differences around 0
    spans = []
    for y, r in zip(ys, rows):
        mid, low, high = r.change()
        ctx = [r.change(c)[0] for _, c in r.contexts if len(r.contexts) > 1]
        spans += [v for v in (mid, low, high, *ctx) if math.isfinite(v)]
        color = _color(r)
        if math.isfinite(low) and low != high:
            ax.plot([low + shift, high + shift], [y, y], color=color, lw=2)
        ax.plot(mid + shift, y, "o" if r.contrast.paired else "s", color=color, ms=6, zorder=3)
        if ctx:
            ax.plot(np.array(ctx) + shift, [y - 0.22] * len(ctx), "o", mfc="none",
                    color=color, ms=4, lw=0)  # fmt: skip
    ax.axvline(shift, color="black", lw=1)
    lo, hi = min(spans + [0.0]) + shift, max(spans + [0.0]) + shift
    if rel:
        lo, hi = max(lo, 1e-3), max(hi, 1e-3)
        pad = (hi / lo) ** 0.08 if hi > lo else 1.02
        ax.set_xscale("log")
        ax.set_xlim(lo / pad, hi * pad)
        _ticks(ax, lo / pad, hi * pad)
    else:
        pad = 0.08 * (hi - lo) or 1.0
        ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(ys[-1] - 0.6, 0.6)
    ax.set_yticks(ys, [plain(f"{r.label} (vs {r.baseline})") for r in rows], fontsize=8)
    r = rows[0]
    level = level_pct(r.ci_level)
    kind = "verdict" if r.primary else "estimate"
    ax.set_title(plain(f"{describe(r.metric, r.target)}: {kind}, {level} intervals"),
                 fontsize=9, loc="left")  # fmt: skip
    ax.grid(axis="x", color="0.92")


def forest_plot(analysis: Analysis, path: Path) -> Path | None:
    """Write the forest plot of ``analysis`` to ``path`` (PNG); ``None`` when nothing is drawn."""
    wanted = [analysis.primary_metric, *HEADLINE]
    groups = [[r for r in analysis.rows if r.metric == m and drawn(r)] for m in wanted]
    groups = [g for g in groups if g]
    if not groups:
        return None
    heights = [0.9 + 0.4 * len(g) for g in groups]
    fig = Figure(figsize=(9, 1.2 + sum(heights)), layout="constrained")
    axes = fig.subplots(len(groups), 1, squeeze=False, height_ratios=heights).ravel()
    for ax, group in zip(axes, groups):
        _panel(ax, group, analysis)
        unit = "change, % (log-ratio scale)" if group[0].relative else "change (level − baseline)"
        ax.set_xlabel(unit, fontsize=8)
    fig.suptitle("Is the difference real? Each level against its factor's baseline")
    handles = [
        Line2D([], [], color=COLORS["better"], marker="o", lw=2, label="clearly better"),
        Line2D([], [], color=COLORS["worse"], marker="o", lw=2, label="clearly worse"),
        Line2D([], [], color=COLORS["unclear"], marker="o", lw=2, label="not clear"),
        Line2D([], [], color=COLORS["estimate"], marker="o", lw=2, label="estimate (no verdict)"),
        Line2D([], [], color="0.3", marker="o", mfc="none", ls="", label="in one context"),
        Line2D([], [], color="0.3", marker="s", ls="", label="unpaired"),
    ]
    fig.legend(handles=handles, fontsize=7, loc="outside right upper")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
