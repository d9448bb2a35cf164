"""Plots of an Optuna study (matplotlib, PNG): objective history, slices, parameter importances.

Each function takes the study's trials (``FrozenTrial``), draws one figure and saves it. A
completed trial is its mean over seeds with a bar of ± one standard error (from the per-seed
values its job recorded, :mod:`initsweep.search.seeds`); a pruned trial is drawn hollow at its
last reported value, in the history with the epoch it was stopped after beside it. Trials
without a value are drawn along the edge of the worse values (the top for a loss), at their
trial number (history) or searched value (slices), so the region where every seed diverged
stays visible: red triangles for trials whose seeds all diverged, black crosses for failed ones.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a cluster node
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter  # noqa: E402
from optuna.distributions import FloatDistribution, IntDistribution  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402

from initsweep.search.outcomes import count_pruned  # noqa: E402
from initsweep.search.seeds import all_diverged, standard_error  # noqa: E402

EDGE = {  # trials without a value: a marker along the edge of the worse values
    "diverged": {"marker": "^", "color": "C3", "label": "diverged (every seed)"},
    "failed": {"marker": "x", "color": "black", "label": "failed (raised, or no value)"},
}


def kind(t: FrozenTrial) -> str:
    """complete | pruned | diverged | failed | running: how a trial is drawn."""
    if all_diverged(t):
        return "diverged"
    if t.state == TrialState.COMPLETE:
        return "complete"
    if t.state == TrialState.PRUNED:
        return "pruned" if t.value is not None else "failed"
    return "failed" if t.state == TrialState.FAIL else "running"


def _log_y(ax, values: list[float]) -> None:
    """Losses of bad inits span decades: a log axis keeps the good trials readable."""
    if values and min(values) > 0 and max(values) / min(values) > 30:
        ax.set_yscale("log")


def _points(ax, xs: list, trials: list[FrozenTrial], colors, hollow: bool) -> None:
    """Mean ± standard error of each trial at ``xs``."""
    errs = [standard_error(t) or 0.0 for t in trials]
    ax.errorbar(
        xs, [t.value for t in trials], yerr=errs, fmt="none", ecolor="grey", lw=1, zorder=1
    )
    ax.scatter(
        xs,
        [t.value for t in trials],
        c=None if hollow else colors,
        facecolors="none" if hollow else None,
        edgecolors=colors,
        zorder=2,
    )


def _room_for_edge(ax, minimize: bool) -> None:
    """Widen the y axis by a strip on the worse side, where :func:`_edge` draws."""
    lo, hi = ax.get_ylim()
    if ax.get_yscale() == "log":
        pad = (hi / lo) ** 0.12
        ax.set_ylim(lo, hi * pad) if minimize else ax.set_ylim(lo / pad, hi)
    else:
        pad = 0.12 * (hi - lo)
        ax.set_ylim(lo, hi + pad) if minimize else ax.set_ylim(lo - pad, hi)


def _edge(ax, xs: list, what: str, minimize: bool) -> None:
    style = EDGE[what]
    ax.scatter(
        xs,
        [0.96 if minimize else 0.04] * len(xs),
        marker=style["marker"],
        color=style["color"],
        transform=ax.get_xaxis_transform(),
        clip_on=False,
        zorder=3,
    )


def _legend_handles(kinds: set[str], pruned: str = "pruned (last value)") -> list[Line2D]:
    handles = [
        Line2D([], [], marker="o", ls="", color="grey", label="complete (mean ± s.e. over seeds)"),
        Line2D([], [], marker="o", ls="", mfc="none", color="grey", label=pruned),
    ]
    handles += [
        Line2D([], [], marker=s["marker"], ls="", color=s["color"], label=s["label"])
        for k, s in EDGE.items()
        if k in kinds
    ]
    return handles


def plot_history(
    trials: list[FrozenTrial], path: Path, label: str, minimize: bool, title: str
) -> Path:
    """Objective per trial number, by state, with the best value so far."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    by = {k: [t for t in trials if kind(t) == k] for k in ("complete", "pruned", *EDGE)}
    for k, color in (("complete", "C0"), ("pruned", "C1")):
        if by[k]:
            _points(ax, [t.number for t in by[k]], by[k], color, hollow=k == "pruned")
    for t in by["pruned"]:  # the epoch it was stopped after, beside its hollow marker
        ax.annotate(f"{t.last_step}", (t.number, t.value), xytext=(4, 3), fontsize=7,
                    textcoords="offset points", color="C1")  # fmt: skip
    done = sorted([t for t in trials if t.state == TrialState.COMPLETE], key=lambda t: t.number)
    if done:
        best, xs, ys = None, [], []
        for t in done:
            if best is None or (t.value < best if minimize else t.value > best):
                best = t.value
            xs.append(t.number)
            ys.append(best)
        ax.step(xs, ys, where="post", color="C2", label="best so far")
    _log_y(ax, [t.value for t in by["complete"] + by["pruned"]])
    if any(by[k] for k in EDGE):
        _room_for_edge(ax, minimize)
    for k in EDGE:
        if by[k]:
            _edge(ax, [t.number for t in by[k]], k, minimize)
    if trials:  # every trial on the axis, also failed ones after the last value
        ax.set_xlim(-0.5, max(t.number for t in trials) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="trial", ylabel=label, title=title)
    ax.grid(alpha=0.3)
    by_epoch, _ = count_pruned(trials)
    after = ", ".join(f"{e} ×{n}" for e, n in sorted(by_epoch.items(), key=lambda x: x[0] or 0))
    label = f"pruned after epoch (number beside it): {after}" if after else "pruned (last value)"
    handles = _legend_handles({k for k in EDGE if by[k]}, label)
    if done:
        handles.append(Line2D([], [], color="C2", label="best so far"))
    ax.legend(handles=handles, loc="best", fontsize="small")
    return _save(fig, path)


def plot_slices(
    trials: list[FrozenTrial], path: Path, label: str, minimize: bool, title: str
) -> Path:
    """Objective against each parameter (one panel each), coloured by trial number."""
    names = sorted({p for t in trials for p in t.params})
    fig, axes = plt.subplots(
        1, len(names), figsize=(4.5 * len(names) + 1, 4.2), squeeze=False, sharey=True
    )
    numbers = [t.number for t in trials] or [0]
    norm = plt.Normalize(min(numbers), max(numbers))
    kinds = {t.number: kind(t) for t in trials}
    for ax, name in zip(axes[0], names):
        having = [t for t in trials if name in t.params]
        for k in ("complete", "pruned"):
            ts = [t for t in having if kinds[t.number] == k]
            if ts:
                colors = plt.cm.viridis(norm([t.number for t in ts]))
                _points(ax, [t.params[name] for t in ts], ts, colors, hollow=k == "pruned")
        dist = next((t.distributions[name] for t in having), None)
        if isinstance(dist, (FloatDistribution, IntDistribution)):
            # the whole search interval, so the plot shows where the sampler did not look
            ax.set_xlim(dist.low / 1.15 if dist.log else dist.low, dist.high * 1.15)
            if dist.log:
                ax.set_xscale("log")
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set(xlabel=name, title=f"objective vs {name}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(handles=_legend_handles(set(kinds.values())), loc="best", fontsize="small")
    axes[0][0].set_ylabel(label)
    _log_y(axes[0][0], [t.value for t in trials if kinds[t.number] in ("complete", "pruned")])
    if set(kinds.values()) & set(EDGE):
        _room_for_edge(axes[0][0], minimize)  # the panels share it
    for ax, name in zip(axes[0], names):
        for k in EDGE:
            xs = [t.params[name] for t in trials if name in t.params and kinds[t.number] == k]
            if xs:
                _edge(ax, xs, k, minimize)
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=axes[0].tolist())
    bar.set_label("trial")
    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    fig.suptitle(title, y=1.03)
    return _save(fig, path)


def plot_importances(importances: dict[str, float], path: Path, title: str) -> Path:
    """Horizontal bars: each parameter's share of the objective's variance."""
    names = sorted(importances, key=importances.get)
    fig, ax = plt.subplots(figsize=(6.5, 1.2 + 0.6 * len(names)))
    ax.barh(names, [importances[n] for n in names], color="C0", label="fANOVA importance")
    for y, n in enumerate(names):
        ax.text(importances[n], y, f" {importances[n]:.2f}", va="center")
    ax.set(xlabel="importance (share of objective variance)", xlim=(0, 1.1), title=title)
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
