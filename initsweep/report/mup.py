r"""μP's two published checks (Yang et al. 2022, TP V), from a sweep's job files, with verdicts.

**Coordinate check** (jobs with ``coord_check.json``, ``initsweep-probe coord_check=on``): the
figure draws each layer type's output RMS against width, one line per step, one column per job;
the verdicts ask of the output logits at the last step whether their log RMS grows with log
width. Each job's per-seed slopes are compared with 0 (no growth), and each job with the
baseline's, by the report's own statistics (:func:`~initsweep.report.compare.contrast.paired`,
paired by seed): *grows* is a clear difference from 0; *flat* is an interval
inside ±:data:`FLAT` (a factor of at most :math:`2^{0.2} = 1.15` per doubling of width).

**Transfer** (a sweep over ``optimizer.lr`` and the model's width, :mod:`.mup_transfer`).
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from initsweep.diagnostics.coord_check import TYPES, type_means
from initsweep.render import render_table
from initsweep.report.compare.contrast import TESTED, Contrast, paired
from initsweep.report.compare.design import factors, level
from initsweep.report.section import Section, figure_html, note_html, save

COORD_CHECK = "coord_check.json"
FLAT = 0.2  # |slope of log RMS in log width| below this, with its interval: flat in width


def _load(job) -> dict | None:
    path = Path(job.path) / COORD_CHECK
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _panel(ax, data: dict, kind: str) -> None:
    means = type_means(data["rows"])
    steps = data["steps"]
    cmap = colormaps["viridis"]
    for step in range(steps + 1):
        color = cmap(step / max(1, steps))
        widths = data["widths"]
        per_seed = {}
        for (t, _seed, w, st), v in means.items():
            if t == kind and st == step:
                per_seed.setdefault(w, []).append(v)
        ys = [statistics.fmean(per_seed[w]) for w in widths if w in per_seed]
        ax.plot([w for w in widths if w in per_seed], ys, "-o", color=color, ms=3,
                label=f"step {step}")  # fmt: skip
        for w, vs in per_seed.items():
            ax.scatter([w] * len(vs), vs, color=color, s=6, alpha=0.35)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    # plain tick labels: the report draws with mathtext off (labels are overrides)
    ax.set_xticks(data["widths"], [str(w) for w in data["widths"]])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel("width")


def coord_figure(found: list[tuple], path: Path) -> Path:
    kinds = [k for k in TYPES if any(r["type"] == k for _, d in found for r in d["rows"])]
    fig = Figure(figsize=(3.4 * len(found), 2.6 * len(kinds)))
    axes = fig.subplots(len(kinds), len(found), squeeze=False)
    for col, (job, data) in enumerate(found):
        for row, kind in enumerate(kinds):
            ax = axes[row][col]
            _panel(ax, data, kind)
            ax.set_title(f"{job.label}\n{kind} layers" if row == 0 else f"{kind} layers",
                         fontsize=9)  # fmt: skip
            if col == 0:
                ax.set_ylabel("RMS of the outputs")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return save(fig, path)


def logit_slopes(data: dict) -> dict[int, float]:
    """Seed → the output logits' slope of log RMS in log width at the last step."""
    last = data["slopes"].get("output", {}).get(str(data["steps"]), {})
    return {int(s): v for s, v in last.items()}


def _interval(c: Contrast, level: float) -> str:
    low, high = c.interval(level)
    return f"[{low:+.2f}, {high:+.2f}]" if math.isfinite(low) else "(no interval)"


def _p(c: Contrast) -> str:
    return f"p = {c.p():.3g}" if c.p() >= 0.001 else "p < 0.001"


def slope_verdict(label: str, slopes: dict[int, float], step: int, level: float) -> str:
    """One line: does the job's logit RMS grow with width (a clear slope > 0), stay flat (its
    interval inside ±FLAT), or neither? The slopes against 0, paired: a one-sample t-test."""
    values = np.array([slopes[s] for s in sorted(slopes)])
    c = paired(values, np.zeros(len(values)), values)
    head = (f"{label}: output-logit RMS ∝ width^{c.estimate:+.2f} {_interval(c, level)} at step "
            f"{step} ({c.n[0]} seeds")  # fmt: skip
    if c.kind != TESTED:
        return f"{head}): too few seeds or no spread for a verdict"
    low, high = c.interval(level)
    if low > 0:
        return f"{head}, {_p(c)}): grows with width"
    if -FLAT < low and high < FLAT:
        return f"{head}): flat in width (interval inside ±{FLAT})"
    return f"{head}, {_p(c)}): neither clearly growing nor flat within ±{FLAT}"


def baseline_pairs(jobs: list, baseline) -> list[tuple]:
    """``(job, its baseline job)`` for a sweep of one factor (``init=pytorch_default,mup``):
    the factor's baseline level as the report picks it; none for other designs."""
    found = factors(jobs, baseline)
    if len(found) != 1:
        return []
    f = found[0]
    base = next(j for j in jobs if level(j, f.key) == f.baseline)
    return [(j, base) for j in jobs if j is not base]


def coord_section(study, out: Path, options) -> Section | None:
    found = [(j, d) for j in study.jobs if (d := _load(j)) is not None]
    if not found:
        return None
    png = coord_figure(found, out / "coord_check.png")
    level = options.level
    lines = [slope_verdict(j.label, logit_slopes(d), d["steps"], level) for j, d in found]
    by_job = {j.name: logit_slopes(d) for j, d in found}
    rows = []
    for job, base in baseline_pairs([j for j, _ in found], options.baseline):
        a, b = by_job[base.name], by_job[job.name]
        seeds = sorted(set(a) & set(b))
        x, y = np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])
        c = paired(y - x, x, y)
        clear = c.kind == TESTED and c.p() < 1 - level
        rows.append([job.label, base.label, f"{c.mean_l:+.2f}", f"{c.mean_b:+.2f}",
                     f"{c.estimate:+.2f} {_interval(c, level)}",
                     f"{c.p():.3g}" if c.kind == TESTED else "-",
                     "clear" if clear else "no clear difference"])  # fmt: skip
    header = ["job", "baseline", "slope", "baseline slope", "difference [CI]", "p (t)", "verdict"]
    text = "\n".join(["Coordinate check (TP V): logit growth with width", *lines])
    if rows:
        text += "\n" + render_table(header, rows)
    html = (
        "".join(f"<p>{line}</p>" for line in lines)
        + (render_table(header, rows, "html") if rows else "")
        + figure_html(
            png,
            out,
            "each layer type's output RMS against width, one line per step "
            "(mean over seeds; dots: seeds)",
        )  # fmt: skip
        + note_html(
            f"Slopes of log RMS in log width, per seed, at the last step; intervals at "
            f"{level:.0%}; flat: inside ±{FLAT}."
        )  # fmt: skip
    )
    return Section("Coordinate check (μP)", html, [png], text=text)


def section(study, out: Path, options) -> Section | None:
    """The coordinate check where the jobs wrote one, else μP transfer where the sweep is one."""
    from initsweep.report.mup_transfer import transfer_section

    return coord_section(study, out, options) or transfer_section(study, out, options)
