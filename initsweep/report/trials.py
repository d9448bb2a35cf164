"""A search's trials across seeds: the objective against each searched key, one point per seed.

A trial's value in the study is the mean over its seeds; this section reads every seed's final
objective from the trials' ``summary.json`` files, so the spread shows next to the mean: each
trial is its seeds (points) and the mean ± standard error (bar), the best trial is marked, and
the top trials are listed with their held-out ``test/*`` value where the jobs have a test split
(never used to choose them). Finished trials only: a pruned trial stopped at an earlier epoch.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from pathlib import Path

from matplotlib.figure import Figure

from initsweep.render import render_table
from initsweep.report.aggregate import finals
from initsweep.report.jobs import Job, Study, is_search, short
from initsweep.report.section import Options, Section, figure_html, save
from initsweep.search.outcomes import after_epochs
from initsweep.summary import aggregate, direction

TOP = 10  # trials in the table
PRUNED = "pruned"  # a summary's status when the pruner stopped its job (initsweep/summary.py)


def _x(job: Job, key: str) -> float:
    try:
        return float(job.overrides.get(key, "nan"))
    except ValueError:  # a categorical choice(...) key: not drawn on a number axis
        return math.nan


def _mean_se(values: list[float]) -> tuple[float, float]:
    agg = aggregate(values)
    return agg["mean"], agg["std"] / math.sqrt(agg["n"]) if agg["n"] > 1 else math.nan


def ranked(jobs: list[Job], objective: str) -> list[Job]:
    """Trials from best to worst by their mean objective over seeds."""
    sign = -1 if direction(objective) == "maximize" else 1
    scored = [(j, _mean_se(finals(j, objective)[0])[0]) for j in jobs]
    return [j for j, m in sorted(scored, key=lambda t: sign * t[1]) if math.isfinite(m)]


def plot(jobs: list[Job], keys: list[str], objective: str, path: Path) -> Path | None:
    """One panel per numeric searched key: seeds as points, mean ± SE, the best trial in red."""
    keys = [k for k in keys if any(math.isfinite(_x(j, k)) for j in jobs)]
    order = ranked(jobs, objective)
    if not keys or not order:
        return None
    fig = Figure(figsize=(5.5 * len(keys), 4.2), layout="constrained")
    axes = fig.subplots(1, len(keys), squeeze=False).ravel()
    for ax, key in zip(axes, keys):
        xs = [_x(j, key) for j in jobs]
        log = min(xs) > 0 and max(xs) / min(xs) >= 5
        for job, x in zip(jobs, xs):
            values = finals(job, objective)[0]
            color = "tab:red" if job is order[0] else "tab:blue"
            ax.scatter([x] * len(values), values, s=12, color=color, alpha=0.45, lw=0)
            mean, se = _mean_se(values)
            ax.errorbar(x, mean, yerr=0 if math.isnan(se) else se, color=color, marker="o",
                        ms=5, capsize=3, lw=1.2)  # fmt: skip
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(key + (" (log scale)" if log else ""))
        ax.set_ylabel(f"final {objective}")
        ax.grid(alpha=0.3)
    fig.suptitle(f"Search trials: final {objective} per seed (points), mean ± SE (bars)")
    return save(fig, path)


def top_table(jobs: list[Job], keys: list[str], objective: str, style: str) -> str:
    """The best trials: searched values, objective mean ± sd (n) and SE, and the test split."""
    test = objective.replace("val/", "test/", 1)
    has_test = test != objective and any(finals(j, test)[0] for j in jobs)
    header = ["trial", *keys, f"{objective} mean ± sd (n)", "standard error"]
    header += [f"{test} mean ± sd (n), held out"] if has_test else []
    rows = []
    for job in ranked(jobs, objective)[:TOP]:
        agg = aggregate(finals(job, objective)[0])
        _, se = _mean_se(finals(job, objective)[0])
        row = [
            job.overrides.get("search.trial", job.name),
            *[short(job.overrides.get(k, "")) for k in keys],
        ]
        row += [f"{agg['mean']:.4g} ± {agg['std']:.2g} ({agg['n']})", f"{se:.2g}"]
        if has_test:
            t = aggregate(finals(job, test)[0])
            row.append(f"{t['mean']:.4g} ± {t['std']:.2g} ({t['n']})" if t["n"] else "—")
        rows.append(row)
    return render_table(header, rows, style)


def left_out(jobs: list[Job]) -> str:
    """`` Left out: 7 pruned trials (after epoch 2 (5 trials) or 12 (2)), 1 unfinished.``"""
    pruned = [j for j in jobs if j.status == PRUNED]
    epochs = Counter(((j.summary or {}).get("search") or {}).get("pruned_epoch") for j in pruned)
    unfinished = sum(not j.finished and j.status != PRUNED for j in jobs)
    n = f"{len(pruned)} pruned trial{'s' if len(pruned) > 1 else ''}"
    parts = [f"{n} ({after_epochs(epochs)})"] if pruned else []
    parts += [f"{unfinished} unfinished"] if unfinished else []
    return f" Left out: {', '.join(parts)}." if parts else ""


def section(study: Study, out: Path, options: Options) -> Section | None:
    jobs = study.finished
    if len(jobs) < 2 or not is_search(jobs) or not study.varying:
        return None
    objective, keys = study.objective, study.varying
    path = plot(jobs, keys, objective, out / "search_seeds.png")
    caption = (
        f"Each finished trial's final {objective} per seed (points) and their mean ± standard "
        "error (bar); the best trial in red." + left_out(study.jobs)
    )
    title = f"Best {min(TOP, len(jobs))} of {len(jobs)} finished trials by mean {objective}"
    body = f"<p>{html.escape(title)}</p>" + top_table(jobs, keys, objective, "html")
    if path:
        body += figure_html(path, out, caption)
    text = f"{title}:\n" + top_table(jobs, keys, objective, "text")
    return Section("Search trials across seeds", body, [path] if path else [], text=text)
