"""The Optuna search of a sweep, when there is one: the trials table and the study's plots.

The search writes them into the sweep dir (``initsweep.search.results``); the report copies them
next to its page so that ``index.html`` keeps working when the report folder is moved.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

from omegaconf import OmegaConf

from initsweep.report.jobs import Study
from initsweep.report.section import Options, Section, figure_html
from initsweep.search.results import find_study_outputs

_PLOTS = {
    "history": "objective per trial and best so far",
    "slice": "objective against each searched parameter",
    "importance": "parameter importances",
}


def section(study: Study, out: Path, options: Options) -> Section | None:
    found = find_study_outputs(study.root)
    if not found:
        return None
    files, parts = [], []
    if "results" in found:
        best = OmegaConf.to_container(OmegaConf.load(found["results"]))
        text = f"Optuna best: {best.get('best_params')} -> {best.get('best_value')}"
        parts.append(f"<p>{html.escape(text)}</p>")
    else:
        text = ""
    for kind in ("trials", *_PLOTS):
        if kind not in found:
            continue
        copy = out / found[kind].name
        if found[kind].resolve() != copy.resolve():
            shutil.copyfile(found[kind], copy)
        files.append(copy)
        if kind == "trials":
            parts.append(f'<p><a href="{copy.name}">all trials (CSV)</a></p>')
        else:
            parts.append(figure_html(copy, out, _PLOTS[kind]))
    return Section("Optuna search", "\n".join(parts), files, text=text)
