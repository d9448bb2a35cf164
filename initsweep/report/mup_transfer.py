r"""μP transfer (Yang et al. 2022, TP V Fig. 1): is the best learning rate the same at every width?

A sweep over ``optimizer.lr`` × a model width key (``model.width``, ``model.hidden``, …) × any
other key (the parametrization: ``init=pytorch_default,mup``). Per parametrization and width the
best learning rate is the one with the lowest mean objective over seeds (final ``val/loss``). The
verdict takes ``lr*``, the best at the smallest width, as the baseline of the widest width's
jobs and compares every other learning rate with it there by the report's own comparison
(:func:`~initsweep.report.compare.contrast.paired`: the per-seed change of the final objective,
on the log scale where it is positive; Holm's correction over the widest width's learning
rates, statsmodels' ``multipletests``): ``lr*`` *transfers* when no learning rate more than one
grid step away is clearly better; it *moves* when one is.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator
from statsmodels.stats.multitest import multipletests

from initsweep.report.compare.contrast import TESTED, Contrast, paired
from initsweep.report.section import Section, colors, figure_html, note_html, save

LR = "optimizer.lr"


def _number(v: str) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def width_key(jobs, varying: list[str]) -> str | None:
    """The varying ``model.*`` key whose values are whole numbers (or lists of them)."""
    for key in varying:
        if key.startswith("model.") and all(_width(j.overrides.get(key)) for j in jobs):
            return key
    return None


def _width(value: str | None) -> int | None:
    head = str(value).strip("[]").split(",")[0]
    return int(head) if head.strip().isdigit() else None


def objective_per_seed(job, objective: str) -> dict[int, float]:
    seeds = (job.summary or {}).get("seeds", [])
    out = {s["seed"]: s["metrics"].get(objective) for s in seeds if not s.get("diverged")}
    return {s: v for s, v in out.items() if v is not None and math.isfinite(v)}


def transfer_section(study, out: Path, options) -> Section | None:
    jobs = [j for j in study.finished if j.overrides.get(LR) is not None]
    key = width_key(jobs, study.varying) if LR in study.varying else None
    if key is None or len({_width(j.overrides[key]) for j in jobs}) < 2:
        return None
    arms_keys = [k for k in study.varying if k not in (LR, key)]
    objective = study.objective

    def arm(j) -> str:
        return " ".join(f"{k}={j.overrides.get(k)}" for k in arms_keys) or "all"

    grid = sorted({float(j.overrides[LR]) for j in jobs})
    table: dict[str, dict[int, dict[float, object]]] = {}
    for j in jobs:
        table.setdefault(arm(j), {}).setdefault(_width(j.overrides[key]), {})[
            float(j.overrides[LR])
        ] = j
    lines, rows = [], []
    for name, by_width in table.items():
        widths = sorted(by_width)
        best = {w: _best(by_width[w], objective) for w in widths}
        small, wide = widths[0], widths[-1]
        lines.append(_verdict(name, by_width[wide], best, small, wide, grid, options, objective))
        rows += [(name, w, best[w]) for w in widths]
    png = _figure(table, grid, objective, out / "mup_transfer.png", key)
    text = "\n".join(["μP transfer (TP V): the best learning rate across widths", *lines])
    html = (
        "".join(f"<p>{line}</p>" for line in lines)
        + figure_html(
            png,
            out,
            f"final {objective} against the learning rate, one line per "
            f"{key} (mean over seeds; dots: seeds; star: the best)",
        )  # fmt: skip
        + note_html(
            f"A grid step is one step of the {LR} grid ({', '.join(f'{g:g}' for g in grid)})."
        )
    )
    return Section("μP transfer across widths", html, [png], text=text)


def _best(by_lr: dict[float, object], objective: str) -> float:
    means = {lr: statistics.fmean(v.values()) for lr, j in by_lr.items()
             if (v := objective_per_seed(j, objective))}  # fmt: skip
    return min(means, key=means.get)


def clearly_better(by_lr: dict[float, object], star: float, objective: str, level: float):
    """The learning rates whose jobs clearly beat ``star``'s on the final objective (lower),
    paired by seed, Holm-corrected over the learning rates tested."""
    base = objective_per_seed(by_lr[star], objective)
    tested: list[tuple[float, Contrast]] = []
    for lr, job in by_lr.items():
        other = objective_per_seed(job, objective)
        seeds = sorted(set(base) & set(other))
        if lr == star or not seeds:
            continue
        a, b = np.array([base[s] for s in seeds]), np.array([other[s] for s in seeds])
        if (a > 0).all() and (b > 0).all():  # a loss: its change in percent (log scale)
            a, b = np.log(a), np.log(b)
        c = paired(b - a, a, b)
        if c.kind == TESTED:
            tested.append((lr, c))
    if not tested:
        return []
    reject = multipletests([c.p() for _, c in tested], alpha=1 - level, method="holm")[0]
    return [lr for (lr, c), clear in zip(tested, reject) if clear and c.estimate < 0]


def _verdict(name, by_lr, best, small, wide, grid, options, objective) -> str:
    star = best[small]
    step = {lr: i for i, lr in enumerate(grid)}
    better = clearly_better(by_lr, star, objective, options.level)
    far = [lr for lr in better if abs(step[lr] - step[star]) > 1]
    shift = step[best[wide]] - step[star]
    head = (f"{name}: best {LR} {star:g} at {small}, {best[wide]:g} at {wide} "
            f"({shift:+d} grid steps)")  # fmt: skip
    if far:
        lrs = ", ".join(f"{lr:g}" for lr in sorted(far))
        verb = "is" if len(far) == 1 else "are"
        return f"{head}; at {wide}, {lrs} {verb} clearly better than {star:g}: the optimum moves"
    if abs(shift) <= 1:
        return f"{head}; at {wide}, no {LR} beyond one grid step is clearly better: it transfers"
    return f"{head}; no clear evidence either way at {wide} (more seeds would tell)"


def _figure(table, grid, objective, path: Path, key: str) -> Path:
    fig = Figure(figsize=(3.8 * len(table), 3.0))
    axes = fig.subplots(1, len(table), squeeze=False)[0]
    for ax, (name, by_width) in zip(axes, table.items()):
        for color, w in zip(colors(len(by_width)), sorted(by_width)):
            lrs = sorted(
                lr for lr in by_width[w] if objective_per_seed(by_width[w][lr], objective)
            )
            per = [list(objective_per_seed(by_width[w][lr], objective).values()) for lr in lrs]
            means = [statistics.fmean(v) for v in per]
            ax.plot(lrs, means, "-o", color=color, ms=3, label=f"{key.split('.')[-1]} {w}")
            for lr, v in zip(lrs, per):
                ax.scatter([lr] * len(v), v, color=color, s=6, alpha=0.35)
            i = min(range(len(means)), key=means.__getitem__)
            ax.scatter([lrs[i]], [means[i]], marker="*", s=120, color=color, zorder=3)
        ax.set_xscale("log")
        ax.set_xticks(grid, [f"{g:g}" for g in grid], rotation=30)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(LR)
        ax.set_ylabel(f"final {objective}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path)
