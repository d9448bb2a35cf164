"""Plots of an Optuna study (matplotlib, PNG): objective history, slices, parameter importances.

Each function takes the study's trials (``FrozenTrial``), draws one figure and saves it. Pruned
trials are drawn at their last reported value (hollow markers); failed trials have no value and
are marked along the bottom of the history plot.
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


def _valued(trials: list[FrozenTrial], state: TrialState) -> list[FrozenTrial]:
    return [t for t in trials if t.state == state and t.value is not None]


def _log_y(ax, values: list[float]) -> None:
    """Losses of bad inits span decades: a log axis keeps the good trials readable."""
    if values and min(values) > 0 and max(values) / min(values) > 30:
        ax.set_yscale("log")


def plot_history(
    trials: list[FrozenTrial], path: Path, label: str, minimize: bool, title: str
) -> Path:
    """Objective per trial number, by state, with the best value so far."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    done, pruned = _valued(trials, TrialState.COMPLETE), _valued(trials, TrialState.PRUNED)
    failed = [t.number for t in trials if t.state == TrialState.FAIL]
    ax.scatter([t.number for t in done], [t.value for t in done], color="C0", label="complete")
    if pruned:
        ax.scatter(
            [t.number for t in pruned],
            [t.value for t in pruned],
            facecolors="none",
            edgecolors="C1",
            label="pruned (last reported value)",
        )
    if done:
        best, xs, ys = None, [], []
        for t in sorted(done, key=lambda t: t.number):
            if best is None or (t.value < best if minimize else t.value > best):
                best = t.value
            xs.append(t.number)
            ys.append(best)
        ax.step(xs, ys, where="post", color="C2", label="best so far")
    if failed:  # no value to plot: a red tick along the bottom edge
        ax.scatter(
            failed,
            [0.02] * len(failed),
            marker="v",
            color="C3",
            transform=ax.get_xaxis_transform(),
            label="failed (diverged or raised)",
        )
    _log_y(ax, [t.value for t in done + pruned])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="trial", ylabel=label, title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return _save(fig, path)


def plot_slices(trials: list[FrozenTrial], path: Path, label: str, title: str) -> Path:
    """Objective against each parameter (one panel each), coloured by trial number."""
    names = sorted({p for t in trials for p in t.params})
    fig, axes = plt.subplots(
        1, len(names), figsize=(4.5 * len(names) + 1, 4.2), squeeze=False, sharey=True
    )
    shown = [t for t in trials if t.value is not None and t.state != TrialState.FAIL]
    numbers = [t.number for t in shown] or [0]
    norm = plt.Normalize(min(numbers), max(numbers))
    for ax, name in zip(axes[0], names):
        for state, face in ((TrialState.COMPLETE, None), (TrialState.PRUNED, "none")):
            ts = [t for t in shown if t.state == state and name in t.params]
            if ts:
                colors = plt.cm.viridis(norm([t.number for t in ts]))
                ax.scatter(
                    [t.params[name] for t in ts],
                    [t.value for t in ts],
                    c=None if face else colors,
                    facecolors=face,
                    edgecolors=colors,
                )
        dist = next((t.distributions[name] for t in shown if name in t.distributions), None)
        if isinstance(dist, (FloatDistribution, IntDistribution)):
            # the whole search interval, so the plot shows where the sampler did not look
            ax.set_xlim(dist.low / 1.15 if dist.log else dist.low, dist.high * 1.15)
            if dist.log:
                ax.set_xscale("log")
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set(xlabel=name, title=f"objective vs {name}")
        ax.grid(alpha=0.3)
    handles = [
        Line2D([], [], marker="o", ls="", color="grey", label="complete"),
        Line2D([], [], marker="o", ls="", mfc="none", color="grey", label="pruned (last value)"),
    ]
    axes[0][0].legend(handles=handles, loc="best", fontsize="small")
    axes[0][0].set_ylabel(label)
    _log_y(axes[0][0], [t.value for t in shown])
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
