"""The verdict table (Markdown, HTML) and ``comparison.csv``: the same rows, one per factor,
level and metric, then each level's per-context estimates in the CSV and the page's details."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from initsweep.render import render_table
from initsweep.report.compare.contrast import EXACT, POWER
from initsweep.report.compare.engine import Analysis, Row
from initsweep.report.compare.verdict import (
    amount,
    bounds,
    change_cell,
    describe,
    interval_cell,
    needed_cell,
    verdict_cell,
)

COLUMNS = ("factor", "level", "metric", "change", "interval", "verdict",
           f"seeds for {POWER:.0%} power")  # fmt: skip


def cells(row: Row, analysis: Analysis) -> list[str]:
    level = "interaction" if row.interaction else f"{row.level} (vs {row.baseline})"
    return [
        row.factor,
        level,
        describe(row.metric, row.target),
        change_cell(row, analysis),
        interval_cell(row),
        verdict_cell(row),
        needed_cell(row),
    ]


def primary_rows(analysis: Analysis) -> list[Row]:
    return [r for r in analysis.rows if r.primary]


def other_rows(analysis: Analysis) -> list[Row]:
    return [r for r in analysis.rows if not r.primary]


def table(rows: list[Row], analysis: Analysis, style: str) -> str:
    body = [cells(r, analysis) for r in rows]
    return render_table(COLUMNS, body, style, table_class="verdicts")


def details(analysis: Analysis, style: str, metrics: tuple[str, ...] = ()) -> str:
    """Each level's change in each context (the levels of the other factors) on the primary
    metric and ``metrics``, with 95 % intervals."""
    header = ("factor", "level", "metric", "context", "change", "interval", "n")
    body = []
    wanted = (analysis.primary_metric, *metrics)
    for r in sorted(analysis.rows, key=lambda r: wanted.index(r.metric) if r.metric in wanted
                    else len(wanted)):  # fmt: skip
        if r.interaction is not None or len(r.contexts) < 2 or r.metric not in wanted:
            continue
        for label, c in r.contexts:
            change, low, high = r.change(c, 1 - analysis.alpha)
            interval = "exact" if c.kind == EXACT else bounds(r, low, high)
            body.append([r.factor, r.level, describe(r.metric, r.target), label,
                         amount(r, change), interval, f"{c.n[0]} vs {c.n[1]}"])  # fmt: skip
    return render_table(header, body, style, table_class="verdicts") if body else ""


FIELDS = ["factor", "level", "baseline", "metric", "context", "primary", "scale", "paired",
          "n_baseline", "n_level", "seeds_baseline", "seeds_level", "diverged_baseline",
          "diverged_level", "mean_baseline", "mean_level", "change", "ci_low", "ci_high",
          "ci_level", "test", "statistic", "df", "df_den", "p", "verdict", "clear",
          "seeds_needed", "at_chance_baseline", "at_chance_level", "data_order_differs",
          "target"]  # fmt: skip


def _contrast_fields(r: Row, c, level: float) -> dict:
    change, low, high = r.change(c, level)
    back = math.exp if r.relative else float
    t = c.estimate / c.se if c.se else math.nan
    return {"paired": c.paired, "n_baseline": c.n[0], "n_level": c.n[1],
            "mean_baseline": back(c.mean_b), "mean_level": back(c.mean_l), "change": change,
            "ci_low": low, "ci_high": high, "ci_level": level, "test": "t", "statistic": t,
            "df": c.df, "p": c.p()}  # fmt: skip


def csv_rows(analysis: Analysis) -> list[dict]:
    """Every table row, then every per-context estimate (``context`` set), unrounded."""
    out = []
    for r in analysis.rows:
        base = {"factor": r.factor, "level": r.level, "baseline": r.baseline, "metric": r.metric,
                "context": "", "primary": r.primary,
                "scale": "relative" if r.relative else "absolute", "verdict": verdict_cell(r),
                "clear": r.clear, "target": r.target.label if r.target else ""}  # fmt: skip
        if r.interaction is not None:
            i = r.interaction
            out.append({**base, "test": "F", "statistic": i.f, "df": i.df_num,
                        "df_den": i.df_den, "p": i.p, "ci_level": r.ci_level})  # fmt: skip
            continue
        base.update(seeds_baseline=r.n_seeds[0], seeds_level=r.n_seeds[1],
                    diverged_baseline=r.n_diverged[0], diverged_level=r.n_diverged[1],
                    at_chance_baseline=r.at_chance[0], at_chance_level=r.at_chance[1],
                    data_order_differs=r.order_differs)  # fmt: skip
        if r.contrast is not None:
            base.update(_contrast_fields(r, r.contrast, r.ci_level))
            base["seeds_needed"] = r.seeds_needed()
        out.append(base)
    for r in analysis.rows:
        for label, c in r.contexts if len(r.contexts) > 1 else []:
            out.append({"factor": r.factor, "level": r.level, "baseline": r.baseline,
                        "metric": r.metric, "context": label, "primary": r.primary,
                        "scale": "relative" if r.relative else "absolute",
                        "verdict": "estimate", "clear": False,
                        **_contrast_fields(r, c, 1 - analysis.alpha)})  # fmt: skip
    return out


def write_csv(analysis: Analysis, path: Path) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(csv_rows(analysis))
    return path


def write_speed_csv(analysis: Analysis, path: Path) -> Path:
    """One line per (job, seed): the learning-speed metrics the comparisons were made from."""
    m = analysis.measures
    jobs = m.jobs
    per_job = {j.name: (j.label or j.name, m.speed(j, analysis.target)) for j in jobs}
    keys = list(dict.fromkeys(k for _, s in per_job.values() for v in s.values() for k in v))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["job", "seed", *keys])
        for label, seeds in per_job.values():
            for seed, v in seeds.items():
                w.writerow([label, seed, *(v.get(k, math.nan) for k in keys)])
    return path
