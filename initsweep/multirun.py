"""The table a multirun ends with: every finished job's objective, ranked, from its files.

Each job (an arm of the sweep) is one row: the overrides that tell it from the others, its
objective as mean ± std over its seeds, and how many seeds count (a diverged one does not, unless
penalized). It reads only ``summary.json`` and ``.hydra/overrides.yaml``, as ``initsweep-report``
does (which compares the arms with their intervals), and imports neither torch nor the report.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import yaml

from initsweep.files import SUMMARY
from initsweep.overrides import parse_overrides, varying_keys
from initsweep.render import render_table
from initsweep.summary import aggregate


def _read(job: Path) -> tuple[dict, dict] | None:
    """A finished job's summary and overrides; ``None`` for any other dir."""
    try:
        summary = json.loads((job / SUMMARY).read_text())
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) or []
        summary["objective"]["metric"]
    except (OSError, ValueError, TypeError, KeyError, yaml.YAMLError):
        return None
    return summary, parse_overrides(overrides)


def sweep_table(sweep_dir: str | Path) -> str | None:
    """The ranked table of the finished jobs under ``sweep_dir`` (``None`` when there is none):
    best first in the objective's direction, a job without a value last."""
    root = Path(sweep_dir)
    dirs = sorted((p.parent for p in root.rglob(SUMMARY)), key=_natural)
    jobs = [(d, *read) for d in dirs if (read := _read(d)) is not None]
    if not jobs:
        return None
    # a search's trial number and study are bookkeeping; what it samples is the arm
    varying = [k for k in varying_keys([o for *_, o in jobs]) if not k.startswith("search.")]
    objective = jobs[0][1]["objective"]
    sign = -1.0 if objective.get("direction") == "maximize" else 1.0

    def rank(job: tuple) -> float:
        value = job[1]["objective"].get("value")
        finite = isinstance(value, (int, float)) and math.isfinite(value)
        return sign * value if finite else math.inf

    rows = []
    for n, (path, summary, overrides) in enumerate(sorted(jobs, key=rank), start=1):
        values = per_seed(summary)
        counted = sum(v is not None and math.isfinite(v) for v in values)
        arm = " ".join(f"{k}={_short(overrides[k])}" for k in varying if k in overrides)
        cells = (arm or summary.get("name", ""), _mean_std(aggregate(values)))
        rows.append((str(n), str(path.relative_to(root)), *cells, f"{counted}/{len(values)}"))
    metric, better = objective["metric"], "higher" if sign < 0 else "lower"
    title = f"{len(rows)} jobs ranked by {metric} ({better} is better), mean ± std over seeds"
    header = ("rank", "job", "arm", metric, "seeds")
    return render_table(header, rows, align="rrlrr", title=title)


def per_seed(summary: dict) -> list[float | None]:
    """Each seed's part in the job's objective (``initsweep.summary.objective_per_seed``, read
    back): its final value; a diverged seed the penalty under ``on_diverge=penalize``, else
    none."""
    metric = summary["objective"]["metric"]
    trainer = (summary.get("config") or {}).get("trainer") or {}
    penalty = trainer.get("diverge_penalty") if trainer.get("on_diverge") == "penalize" else None
    return [
        penalty if s.get("diverged") else (s.get("metrics") or {}).get(metric)
        for s in summary.get("seeds", [])
    ]


def _mean_std(stats: dict) -> str:
    """``mean ± std``; one seed has no spread to show, none no value."""
    if stats["n"] < 2:
        return f"{stats['mean']:.4f}" if stats["n"] else "-"
    return f"{stats['mean']:.4f} ± {stats['std']:.4f}"


def _natural(path: Path) -> list:
    """Job dirs 0, 1, 2, ..., 10 rather than 0, 1, 10, 2."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def _short(value: str) -> str:
    """A sampled float (``1.6053958873434``) to 4 significant digits, the rest as typed (the
    report labels arms the same way)."""
    try:
        return f"{float(value):.4g}" if len(value) > 8 else value
    except ValueError:
        return value
