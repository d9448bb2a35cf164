"""The jobs table: the overrides that vary, the jobs' ``tags`` (when any has some), final metrics
as mean ± std over seeds (with n where fewer seeds than the job ran have a value), diverged
seeds, and the loss at init expected vs measured. Written as Markdown and CSV, printed too; the
cells keep four significant digits so that the table fits a 1,400 px page.

Metric cells are the ``aggregate`` of each job's ``summary.json`` as written (mean over the seeds
that did not diverge, sample std, n); nothing is recomputed.
"""

from __future__ import annotations

import csv
import html
import math
from pathlib import Path

from initsweep.render import render_table
from initsweep.report.aggregate import init_losses
from initsweep.report.jobs import Study
from initsweep.report.section import Options, Section
from initsweep.summary import aggregate


def _fmt(v: float | None, digits: int = 4) -> str:
    """Four significant digits: a table of many metrics must fit a page."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.{digits}g}"


def metric_columns(study: Study) -> list[str]:
    """The objective first, then every other aggregated metric, sorted."""
    keys = {k for j in study.finished for k in j.summary.get("aggregate", {})}
    objective = study.objective
    return ([objective] if objective in keys else []) + sorted(keys - {objective})


def rows(study: Study) -> list[dict]:
    """One row per job, numbers unformatted (the CSV); ``None`` where a job has no value."""
    out = []
    for job in study.jobs:
        row: dict = {"job": job.name, "label": job.label}
        row.update({k: job.overrides.get(k) for k in study.varying})
        if study.tags:
            row["tags"] = ",".join(job.tags)
        row.update(status=job.status, detail=job.detail, n_seeds=len(job.seeds))
        summary = job.summary or {}
        row["n_diverged"] = summary.get("n_diverged") if job.finished else None
        agg = summary.get("aggregate", {})
        for m in metric_columns(study):
            a = agg.get(m, {})
            row.update(
                {f"{m} mean": a.get("mean"), f"{m} std": a.get("std"), f"{m} n": a.get("n")}
            )
        expected, measured = init_losses(job)
        e = aggregate(expected)["mean"]
        m, s, n = aggregate(measured).values()
        row.update(
            {
                "loss@0 expected": e if expected else None,
                "loss@0 measured mean": m if n else None,
                "loss@0 measured std": s if n else None,
            }
        )
        out.append(row)
    return out


def _display(study: Study, row: dict) -> list[str]:
    """The Markdown/HTML cells of one row."""
    cells = [row["job"], *[row[k] or "" for k in study.varying]]
    cells += [row["tags"]] if study.tags else []
    cells.append(row["status"])
    cells.append(str(row["n_seeds"]))
    cells.append("—" if row["n_diverged"] is None else f"{row['n_diverged']}/{row['n_seeds']}")
    for m in metric_columns(study):
        mean, std, n = row[f"{m} mean"], row[f"{m} std"], row[f"{m} n"]
        missing = mean is None or (isinstance(mean, float) and math.isnan(mean))
        fewer = f" ({n})" if n != row["n_seeds"] else ""  # seeds without a value: say how many
        cells.append("—" if missing else f"{_fmt(mean)} ± {_fmt(std, 2)}{fewer}")
    cells.append(_fmt(row["loss@0 expected"]))
    m, s = row["loss@0 measured mean"], row["loss@0 measured std"]
    cells.append("—" if m is None else f"{_fmt(m)} ± {_fmt(s, 2)}")
    return cells


def header(study: Study) -> list[str]:
    return [
        "job",
        *study.varying,
        *(["tags"] if study.tags else []),
        "status",
        "seeds",
        "diverged",
        *[f"{m} mean ± std" for m in metric_columns(study)],
        "loss at init expected",
        "loss at init measured",
    ]


def render(study: Study, table: list[dict], style: str) -> str:
    """The jobs table as Markdown (readable in a terminal as it is) or HTML."""
    cells = [_display(study, r) for r in table]
    classes = [r["status"] for r in table]
    return render_table(header(study), cells, style, row_classes=classes)


def section(study: Study, out: Path, options: Options) -> Section:
    table = rows(study)
    md, csv_path = out / "table.md", out / "table.csv"
    text = render(study, table, "markdown")
    md.write_text(text + "\n")
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]) if table else ["job"])
        writer.writeheader()
        writer.writerows(table)
    problems = [f"{j.name}: {j.status}, {j.detail}" for j in study.jobs if not j.finished]
    notes = "".join(f"<li>{html.escape(p)}</li>" for p in problems)
    body = f'<div class="wide">{render(study, table, "html")}</div>'  # scrolls, never widens
    body += f'<ul class="problems">{notes}</ul>' if notes else ""
    body += '<p><a href="table.md">table.md</a> · <a href="table.csv">table.csv</a></p>'
    terminal = text + "".join(f"\n  ! {p}" for p in problems)
    return Section("Jobs", body, [md, csv_path], terminal)
