"""How a job looks in every plot of the report: the design of the study, drawn.

A study of one factor (or a search) gives each job its own colour. A grid of two or more factors
colours by the factor with the most levels and gives the other factors' levels a line style (and
a marker, in strip plots), so ``init × bias`` reads as "colour is the scheme, dashes the bias
rule". Past :data:`STYLES` combinations of the other factors, back to a colour per job.
"""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.lines import Line2D

from initsweep.report.jobs import Job, Study, is_search
from initsweep.report.section import colors, plain

STYLES = ["-", (0, (5, 2)), (0, (1, 1.5)), (0, (6, 2, 1, 2))]  # solid, dashed, dotted, dash-dot
MARKERS = ["o", "s", "^", "D"]
GREY = (0.25, 0.25, 0.25, 1.0)  # the style entries of a legend: no factor's colour


@dataclass(frozen=True)
class Look:
    color: tuple
    linestyle: object = "-"
    marker: str = "o"


@dataclass
class Design:
    """Per job name its :class:`Look`; the legend entries that explain the looks."""

    looks: dict[str, Look]
    color_key: str = ""  # "" : one colour per job
    style_keys: tuple[str, ...] = ()
    legend: list[tuple[Look, str]] | None = None  # a grid's levels: colours, then styles

    def handles(self, jobs: list[Job], note=lambda job: "", markers=False) -> tuple[list, list]:
        """Legend handles and labels: the factors' levels for a grid, else one per job;
        ``note(job)`` adds a job's own line (its diverged seeds)."""
        if self.color_key:
            pairs = [(Line2D([], [], color=look.color, ls=look.linestyle, lw=1.8,
                             marker=look.marker if markers and look.color == GREY else None),
                      label) for look, label in self.legend]  # fmt: skip
            pairs += [(Line2D([], [], color="none"), plain(f"{j.label}{note(j)}"))
                      for j in jobs if note(j)]  # fmt: skip
        else:
            pairs = [(Line2D([], [], color=self.looks[j.name].color, lw=1.6),
                      plain(f"{j.label}{note(j)}")) for j in jobs]  # fmt: skip
        return [h for h, _ in pairs], [t for _, t in pairs]


def _levels(jobs: list[Job], key: str) -> list[str]:
    return list(dict.fromkeys(j.overrides.get(key, "") for j in jobs))


def design(study: Study) -> Design:
    """The looks of ``study``'s jobs (see the module docstring)."""
    jobs, keys = study.jobs, study.varying
    per_job = Design({j.name: Look(c) for j, c in zip(jobs, colors(len(jobs)))})
    if len(keys) < 2 or is_search(jobs):
        return per_job
    color_key = max(keys, key=lambda k: len(_levels(jobs, k)))
    rest = tuple(k for k in keys if k != color_key)
    combos = list(dict.fromkeys(tuple(j.overrides.get(k, "") for k in rest) for j in jobs))
    if len(combos) > len(STYLES):
        return per_job
    levels = _levels(jobs, color_key)
    palette = dict(zip(levels, colors(len(levels))))
    looks = {
        j.name: Look(
            palette[j.overrides.get(color_key, "")],
            STYLES[combos.index(tuple(j.overrides.get(k, "") for k in rest))],
            MARKERS[combos.index(tuple(j.overrides.get(k, "") for k in rest))],
        )
        for j in jobs
    }
    legend = [(Look(palette[v]), plain(f"{color_key}={v}")) for v in levels]
    for combo, ls, mk in zip(combos, STYLES, MARKERS):
        name = " ".join(f"{k}={v}" for k, v in zip(rest, combo))
        legend.append((Look(GREY, ls, mk), plain(name)))
    return Design(looks, color_key, rest, legend)
