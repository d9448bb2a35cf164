"""``initsweep-report``: tables, plots and one HTML page from a sweep's (or a run's) job files.

The report reads only what jobs write (``summary.json``, ``metrics.jsonl``, ``init.json``,
``histograms.jsonl``, ``.hydra/``), never W&B, so it works anywhere. It is the list
:data:`SECTIONS`, run in order; each section is a function ``(study, out, options) -> Section``
(or None when it has nothing to show), so a new section is one module and one entry here.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib

from initsweep.errors import ConfigError
from initsweep.report import (
    compare,
    curves,
    finals,
    init_histograms,
    init_loss,
    mup,
    search,
    signal,
    table,
    trials,
    weights_over_training,
)
from initsweep.report.compare.design import factors
from initsweep.report.html import page
from initsweep.report.jobs import Study, load_study
from initsweep.report.section import Options, Section, note_html

log = logging.getLogger("initsweep")

SECTIONS = [
    table.section,  # every job: varying overrides, metrics mean ± std, loss at init
    compare.section,  # is the difference real? the verdict table first, then the plots
    curves.section,  # train/val curves, mean ± std band over seeds
    init_loss.section,  # loss at step 0: measured per seed vs expected
    init_histograms.section,  # weight histograms at init vs theoretical density
    weights_over_training.section,  # weight histograms at every logged epoch (ridges)
    signal.section,  # pre-activation std by depth, all schemes
    finals.section,  # final metrics: seeds as points
    mup.section,  # μP: the coordinate check over widths, learning-rate transfer across widths
    trials.section,  # a search's trials across seeds: objective vs each searched key, per seed
    search.section,  # the Optuna study's trials and plots, when the sweep is a search
]


@dataclass
class Report:
    index: Path
    study: Study
    sections: list[Section]

    @property
    def text(self) -> str:
        """What the terminal shows: the sections' alerts, then their text (the table)."""
        alerts = [f"! {s.alert}" for s in self.sections if s.alert]
        return "\n".join(alerts + [s.text for s in self.sections if s.text])


def make_report(
    root: str | Path, out: str | Path | None = None, options: Options | None = None
) -> Report:
    """Write the report of the jobs under ``root`` into ``out`` (default ``<root>/report``)."""
    root = Path(root)
    if out is None and (root / "report").is_symlink():
        raise ConfigError(
            f"{root / 'report'} is a symbolic link (to {os.readlink(root / 'report')}); the "
            "report does not write through it: remove it, or choose where with --out"
        )
    out = Path(out) if out is not None else root / "report"
    study = load_study(root)
    if not study.jobs:  # nothing to report: say so, write nothing
        raise ConfigError(
            f"no job under {root}: a job dir holds summary.json, metrics.jsonl or .hydra/ "
            "(give a sweep dir, e.g. outputs/multirun/<date>/<time>, or a run's dir)"
        )
    options = options or Options()
    if options.baseline:  # a wrong --baseline is one line before anything is written
        factors(study.finished, options.baseline)
    out.mkdir(parents=True, exist_ok=True)
    for link in [p for p in out.iterdir() if p.is_symlink()]:  # never overwrite a link's target
        log.warning("removing the symbolic link %s from the report dir", link)
        link.unlink()
    sections = []
    for build in SECTIONS:
        try:
            # labels go through section.plain (a `$` in an override is no mathtext), so
            # matplotlib's own math tick labels (10^0 on a log axis) render
            with matplotlib.rc_context({"text.parse_math": True}):
                section = build(study, out, options)
        except ConfigError:  # the user's mistake (a bad --baseline): one line, exit 2
            raise
        except Exception as e:  # one broken plot must not cost the rest of the report
            name = build.__module__.rsplit(".", 1)[-1]
            log.warning("report section %s failed: %s: %s", name, type(e).__name__, e)
            section = Section(name, note_html(f"This section failed: {type(e).__name__}: {e}"))
        if section is not None:
            sections.append(section)
    return Report(page(study, sections, out), study, sections)


__all__ = ["SECTIONS", "Options", "Report", "Section", "make_report"]
