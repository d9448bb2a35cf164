"""What every report section returns, and the figure helpers the plotting sections share.

A section is a function ``(study, out_dir, options) -> Section | None``; the report is the list
:data:`initsweep.report.SECTIONS` run in order, so a new section (a comparison of schemes, say)
is one new module and one entry in that list.

Figures use ``matplotlib.figure.Figure`` directly (the Agg canvas): no pyplot state, no display.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib import colormaps
from matplotlib.figure import Figure

DPI = 110


@dataclass
class Options:
    log_x: bool = False  # curves on a log x-axis (symlog: step 0 stays visible)
    baseline: str | list[str] | None = None  # key=value per factor: the level others meet
    level: float = 0.95  # confidence level of the comparison intervals
    target: str | None = None  # "0.5" or "val/acc:0.9": the level "steps to reach" counts to


@dataclass
class Section:
    """A titled block of the report: an HTML fragment, the files it wrote, and terminal text."""

    title: str
    html: str
    files: list[Path] = field(default_factory=list)
    text: str = ""  # printed to the terminal (the table)
    alert: str = ""  # said at the top of the page and of the terminal output


def plain(text: str) -> str:
    """A label shown as written: a ``$`` in an override is no mathtext (matplotlib's own tick
    labels, ``$10^{0}$``, still are)."""
    return str(text).replace("$", r"\$")


def save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def figure_html(path: Path, out: Path, caption: str) -> str:
    """An ``<img>`` with a relative link (the page opens from disk) and its caption."""
    rel = path.relative_to(out).as_posix()
    return (
        f'<figure><a href="{html.escape(rel)}"><img src="{html.escape(rel)}" '
        f'alt="{html.escape(caption)}"></a><figcaption>{html.escape(caption)}</figcaption></figure>'
    )


def note_html(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def colors(n: int) -> list:
    """``n`` distinguishable colours: tab10 up to 10, tab20 up to 20, then a sampled viridis."""
    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    return [colormaps["viridis"](i / (n - 1)) for i in range(n)]


def job_colors(jobs: list) -> dict[str, tuple]:
    """One colour per job of the study, the same in every plot (keyed by job name)."""
    return {job.name: c for job, c in zip(jobs, colors(len(jobs)))}


def per_job_width(labels: list[str]) -> float:
    """Inches per job on a job axis, so that the longest override line of a label fits."""
    longest = max((len(line) for label in labels for line in label.split(" ")), default=10)
    return max(0.9, 0.075 * longest) if len(labels) <= 6 else 0.6


def job_ticks(ax, labels: list[str]) -> None:
    """Jobs on the x-axis: one override per line, slanted when there are many jobs."""
    ax.set_xticks(range(len(labels)), [plain(label).replace(" ", "\n") for label in labels])
    if len(labels) > 6:
        ax.tick_params(axis="x", labelrotation=30)
        for t in ax.get_xticklabels():
            t.set_horizontalalignment("right")
    ax.tick_params(axis="x", labelsize="small")


def legend_below(fig: Figure, handles: list, labels: list[str]) -> None:
    """One legend for the whole figure, under the axes, in as many columns as fit (``labels``
    already :func:`plain`)."""
    if handles:
        ncol = max(1, min(len(labels), 3 if max(map(len, labels)) > 30 else 4))
        if sum(map(len, labels)) < 110:  # a grid's few levels: one row
            ncol = len(labels)
        fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize="small")
