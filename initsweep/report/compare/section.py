"""The report's "Is the difference real?" section: method, verdict table, sentences, ranking.

:func:`comparison_section` is the one call the report makes. It writes ``comparison.csv`` (the
verdict table's rows, then every per-context estimate, unrounded), ``speed.csv`` (the
learning-speed metrics of every seed of every job) and ``forest.png`` into ``out_dir``, and
returns Markdown and HTML fragments; the terminal shows the Markdown down to the other metrics.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from initsweep.report.compare import design
from initsweep.report.compare.contrast import MIN_SEEDS
from initsweep.report.compare.engine import Analysis, analyse, ranking
from initsweep.report.compare.forest import HEADLINE, forest_plot
from initsweep.report.compare.speed import Target
from initsweep.report.compare.tables import (
    details,
    other_rows,
    primary_rows,
    table,
    write_csv,
    write_speed_csv,
)
from initsweep.report.compare.verdict import describe, level_pct, ranking_line, sentence
from initsweep.report.jobs import Job, varying_keys
from initsweep.report.section import Section
from initsweep.summary import direction

TITLE = "Is the difference real?"


def seeds_statement(jobs: list[Job]) -> str:
    """What the seeds of a job vary, and so for which data order a claim holds."""
    orders = {design.data_order(j) for j in jobs}
    modes = {o[2] for o in orders}
    data_seeds = sorted({str(o[0]) for o in orders})
    which = f"trainer.data_seed={data_seeds[0]}" if len(data_seeds) == 1 else (
        f"trainer.data_seed {', '.join(data_seeds)}, one per job")  # fmt: skip
    shared = (
        "Seeds vary the initial weights and the dropout masks; all seeds of a job share one data "
        f"order ({which}), so each claim holds for that data order."
    )
    own = (
        "Seeds vary the initial weights, the dropout masks and the data order "
        "(trainer.data_order=per_seed), so claims hold across data orders."
    )
    if modes == {"per_seed"}:
        return own
    if "per_seed" in modes:
        return (
            shared.replace(
                "all seeds of a job", "in the jobs with trainer.data_order=shared, all seeds"
            )
            + " "
            + own.replace("Seeds vary", "Elsewhere seeds vary")
        )
    return shared


def order_alert(analysis: Analysis) -> str:
    """The arms that met different batches: a difference there includes the data order."""
    rows = [r for r in analysis.rows if r.order_differs and r.primary and r.interaction is None]
    if not rows:
        return ""
    arms = ", ".join(dict.fromkeys(f"{r.label} vs {r.baseline_label}" for r in rows))
    return (
        f"Arms with different data orders: {arms}. Their seeds do not vary the data order, so a "
        "difference between them includes it; compare them with trainer.data_order=per_seed."
    )


def too_few_seeds(jobs: list[Job], objective: str) -> str:
    """The report's top line when some jobs have too few seeds for a verdict ("" if none)."""
    n = {j.label or j.name: (j.summary.get("aggregate", {}).get(objective) or {}).get("n", 0)
         for j in jobs}  # fmt: skip
    few = {label: k for label, k in n.items() if k < MIN_SEEDS}
    if not few:
        return ""
    seeds = ",".join(map(str, range(MIN_SEEDS)))
    if len(few) == len(n):
        counts = "/".join(map(str, sorted(set(few.values()))))
        return (
            f"Too few seeds for any verdict: every job has {counts} seed(s) with a value of "
            f"{objective}, and a verdict needs at least {MIN_SEEDS} per job "
            f"(rerun with seeds='[{seeds}]' or more)."
        )
    listed = ", ".join(f"{label} ({k})" for label, k in few.items())
    return (
        f"Too few seeds for a verdict (at least {MIN_SEEDS} per job with a value of {objective})"
        f": {listed}. Their comparisons show means only."
    )


def held_out(jobs: list[Job], objective: str) -> str:
    """The best job on the objective and its held-out test value ("" without a test split)."""
    test = objective.replace("val/", "test/", 1)
    scored = [
        j for j in jobs if math.isfinite((j.summary.get("objective") or {}).get("value", math.nan))
    ]
    if not scored or test == objective:
        return ""
    sign = -1 if direction(objective) == "maximize" else 1
    best = min(scored, key=lambda j: sign * j.summary["objective"]["value"])
    agg = best.summary.get("aggregate", {})
    if test not in agg:
        return ""
    v, t = agg[objective], agg[test]
    return (
        f"Best on {objective}: {best.label or best.name} ({v['mean']:.4g} ± {v['std']:.2g}, "
        f"n = {v['n']}); on the held-out test split, never used to choose it: {test} "
        f"{t['mean']:.4g} ± {t['std']:.2g} (n = {t['n']})."
    )


def method(analysis: Analysis) -> list[str]:
    """The method, named once: how each number is made and what "clear" means."""
    a = analysis
    what = describe(a.primary_metric)
    first = (
        "Method: each level against its factor's baseline, paired by seed within the levels of "
        "the other factors (unpaired where seeds or data order differ), with t-intervals. "
        "Change = level − baseline (+ = higher), in % of the baseline for positive metrics."
    )
    if a.search:
        b = a.factors[0].baseline
        first = (
            f"Method: each trial against the best one, {b}, on the {what}, paired by seed "
            "where they ran the same seeds, with t-intervals; change = trial − best (+ = higher). "
            "The best was chosen on these very values, so its lead is optimistic; a held-out "
            "test split gives the unbiased figure."
        )
    tests = f"{a.family} test{'s' * (a.family != 1)}"
    verdicts = (
        f"Verdicts on {what} only (the objective): {tests}, Bonferroni-corrected to "
        f"{level_pct(1 - a.alpha)} over all (each interval at {level_pct(a.primary_level)}); "
        "clear = the interval excludes no change."
    )
    if not a.family:
        verdicts = f"Verdicts on {what} only (the objective): none could be tested here."
    if not a.search:
        verdicts += f" Other metrics: estimates with {level_pct(1 - a.alpha)} intervals."
    tested = [r.interaction.method for r in a.rows if r.interaction and r.interaction.method]
    if tested:
        verdicts += f" Interactions: {tested[0]}."
    elif len(a.factors) > 1 and not a.full_grid:
        verdicts += " Interactions: not tested (the jobs are not a full grid of the factors)."
    return [first, verdicts]


def baselines_line(analysis: Analysis) -> str:
    if analysis.search:
        return ""
    return (
        "Baselines: "
        + "; ".join(f"{f.key}={f.baseline} ({f.why})" for f in analysis.factors)
        + "."
    )


def comparison_section(
    jobs: list[Job],
    out_dir: str | Path,
    baseline=None,
    level: float = 0.95,
    target: str | float | Target | None = None,
    *,
    first_k: int | None = None,
) -> tuple[str, str, list[Path]]:
    """Compare every level of every factor with its baseline; ``(markdown, html, files)``.

    :param baseline: ``key=value`` or a list of them (``--baseline``, one per factor).
    :param level: the confidence level; ``1 − level`` is the whole report's error budget.
    :param target: ``report.target`` (:func:`~initsweep.report.compare.speed.parse_target`).
    """
    if not baseline and not varying_keys(jobs):
        text = "The jobs do not differ in any override: nothing to compare."
        return f"## {TITLE}\n\n{text}\n", f"<p>{text}</p>", []
    a = analyse(jobs, baseline, level, target, first_k=first_k)
    return render(a, jobs, Path(out_dir))


def render(a: Analysis, jobs: list[Job], out_dir: Path) -> tuple[str, str, list[Path]]:
    """The section's Markdown and HTML, and the files it writes into ``out_dir``."""
    if not a.rows:  # no two jobs differ in one factor alone
        text = "No two jobs differ in one factor alone: nothing to compare."
        return f"## {TITLE}\n\n{text}\n", f"<p>{html.escape(text)}</p>", []
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [write_csv(a, out_dir / "comparison.csv"), write_speed_csv(a, out_dir / "speed.csv")]
    plot = forest_plot(a, out_dir / "forest.png")
    files += [plot] if plot else []
    head = method(a) + [seeds_statement(jobs)] + [baselines_line(a)]
    said = [sentence(r, a) for r in a.rows if r.clear]
    ranks = ranking_line(a, {f.key: ranking(a, f) for f in a.factors})
    tail = [t for t in (ranks, held_out(jobs, a.objective)) if t]
    others, more = other_rows(a), details(a, "markdown", HEADLINE)
    estimates = f"Other metrics: estimates with {level_pct(1 - a.alpha)} intervals, not verdicts"
    contexts = "Each level in each context of the other factors"
    md = [f"## {TITLE}", "\n".join(h for h in head if h), table(primary_rows(a), a, "markdown")]
    md += ["\n".join(f"- {s}" for s in said)] if said else []
    md += tail
    md += [f"### {estimates}\n\n{table(others, a, 'markdown')}"] if others else []
    md += [f"### {contexts}\n\n{more}"] if more else []
    md += ["![forest plot: each change with its interval](forest.png)"] if plot else []
    page = "".join(f"<p>{html.escape(h)}</p>" for h in head if h)
    page += table(primary_rows(a), a, "html")
    page += "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in said) + "</ul>" if said else ""
    page += "".join(f"<p>{html.escape(t)}</p>" for t in tail)
    if plot:
        page += '<img src="forest.png" alt="forest plot: each change with its interval">'
    page += f"<h3>{estimates}</h3>{table(others, a, 'html')}" if others else ""
    if more:
        page += f"<details><summary>{contexts}</summary>{details(a, 'html', HEADLINE)}</details>"
    page += (
        '<p><a href="comparison.csv">comparison.csv</a> · <a href="speed.csv">speed.csv</a></p>'
    )
    return "\n\n".join(md) + "\n", page, files


def section(study, out: Path, options) -> Section | None:
    """The report's section (``initsweep.report.SECTIONS`` shape): finished jobs only."""
    jobs = study.finished
    if len(jobs) < 2:
        return None
    if not options.baseline and not varying_keys(jobs):
        md, page, files = comparison_section(jobs, out)
        alert = ""
    else:
        a = analyse(jobs, options.baseline, options.level, options.target)
        md, page, files = render(a, jobs, out)
        alert = order_alert(a)
    skipped = len(study.jobs) - len(jobs)
    if skipped:
        page = f'<p class="note">{skipped} unfinished job(s) left out.</p>' + page
    # the terminal: down to the ranking; the other metrics are in the page and the CSV
    text = md.split("\n\n### ")[0].split("\n\n![")[0].removeprefix("## ")
    alerts = [too_few_seeds(jobs, study.objective), alert]
    return Section(TITLE, page, files, text=text, alert=" ".join(a for a in alerts if a))
