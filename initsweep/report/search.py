"""The Optuna search of a sweep, when there is one: how its trials ended (how many the pruner
stopped, after which epochs), the trials table and the study's plots.

The search writes them into the sweep dir (``initsweep.search.results``); the report copies them
next to its page so that ``index.html`` keeps working when the report folder is moved.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import yaml

from initsweep.files import STUDY_OUTPUTS
from initsweep.report.jobs import Study
from initsweep.report.section import Options, Section, figure_html

_PLOTS = {
    "history": "objective per trial and best so far",
    "slice": "objective against each searched parameter",
    "importance": "parameter importances",
}


def find_study_outputs(path: str | Path) -> dict[str, Path]:
    """The study files in a sweep dir, by kind (keys of :data:`~initsweep.files.STUDY_OUTPUTS`);
    ``{}`` if there are none, i.e. the sweep is not an Optuna search."""
    found = {kind: Path(path) / name for kind, name in STUDY_OUTPUTS.items()}
    found = {kind: p for kind, p in found.items() if p.is_file()}
    return found if "trials" in found else {}


def section(study: Study, out: Path, options: Options) -> Section | None:
    found = find_study_outputs(study.root)
    if not found:
        return None
    files, parts = [], []
    if "results" in found:
        best = yaml.safe_load(found["results"].read_text()) or {}
        text = f"Optuna best: {best.get('best_params')} -> {best.get('best_value')}"
        parts.append(f"<p>{html.escape(text)}</p>")
    else:
        text = ""
    record = (yaml.safe_load(found["study"].read_text()) if "study" in found else None) or {}
    states = record.get("states") or {}
    counts = ", ".join(
        f"{states[s]} {s.lower()}" for s in ("COMPLETE", "PRUNED", "FAIL") if s in states
    )
    lines = [
        f"{record['n_trials']} trials: {counts}" if "n_trials" in record else "",
        (record.get("pruned") or {}).get(
            "line"
        ),  # how many the pruner stopped, after which epochs
        (record.get("top_trials") or {}).get("line"),  # which best trials cannot be told apart
    ]
    for line in filter(None, lines):
        text = f"{text}\n{line}".strip()
        parts.append(f"<p>{html.escape(line)}</p>")
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
