"""The report's "Is the difference real?" section: verdicts, comparison table, forest plot.

:func:`comparison_section` is the one call the report makes. It writes ``comparison.csv``
(every number), ``speed.csv`` (the learning-speed metrics of every seed of every job) and
``forest.png`` into ``out_dir``, and returns Markdown and HTML fragments that link
``forest.png`` relative to ``out_dir``.
"""

from __future__ import annotations

import csv
import html
import math
from pathlib import Path

from initsweep.render import render_table
from initsweep.report.compare.effects import MIN_BOOTSTRAP
from initsweep.report.compare.engine import Comparisons, Row, compare_jobs
from initsweep.report.compare.forest import forest_plot
from initsweep.report.compare.speed import Target
from initsweep.report.compare.verdict import describe, fmt, fmt_p, is_clear, seeds_phrase, verdict
from initsweep.report.jobs import Job, varying_keys
from initsweep.report.section import Section

COLUMNS = ("metric", "baseline", "other", "baseline mean ± sd", "other mean ± sd",
           "difference [CI]", "Hedges' g", "p (t)", "p (rank)", "n (baseline vs other)",
           "seeds needed")  # fmt: skip


def _needed(row: Row) -> str:
    r = row.result
    if r is None or r.seeds_needed is None:
        return "—" if r is None or r.diff == 0 else "> 100000"
    have = min(r.n_a, r.n_b)
    return f"{r.seeds_needed} (have {have})" if r.seeds_needed <= have else str(r.seeds_needed)


def cells(row: Row) -> list[str]:
    """The table's cells for one row, formatted for reading."""
    r = row.result
    steps = row.metric.startswith("steps_to")
    other = row.other + (f" [{row.context}]" if row.context else "")
    if r is None:
        return [describe(row.metric, row.target), row.baseline, other] + ["n/a"] * 6 + [
            seeds_phrase(row, other_first=False), "—"]  # fmt: skip
    test_t, test_rank = ("paired t", "Wilcoxon") if r.paired else ("Welch", "Mann-Whitney")
    holm = " Holm" if row.family_size > 1 else ""
    return [
        describe(row.metric, row.target),
        row.baseline,
        other,
        f"{fmt(r.mean_a, steps)} ± {fmt(r.sd_a)}",
        f"{fmt(r.mean_b, steps)} ± {fmt(r.sd_b)}",
        f"{r.diff:+.3g} [{r.low:+.3g}, {r.high:+.3g}]"
        + (" (t)" if r.interval == "t" else "")
        + (" *" if is_clear(row) else ""),
        fmt(r.g),
        f"{fmt_p(row.p_t_holm).removeprefix('= ')} ({test_t}{holm})",
        f"{fmt_p(row.p_rank_holm).removeprefix('= ')} ({test_rank}{holm})",
        seeds_phrase(row, other_first=False),
        _needed(row),
    ]


def table(rows: list[Row], style: str) -> str:
    """The comparison table as Markdown or HTML (:func:`initsweep.render.render_table`)."""
    return render_table(
        COLUMNS, [cells(r) for r in rows], style, table_class="comparison", pad=False
    )


def write_csv(rows: list[Row], path: Path) -> Path:
    """Every number of every row, unrounded, plus its verdict."""
    fields = ["metric", "context", "baseline", "other", "paired", "seeds_baseline", "seeds_other",
              "diverged_baseline", "diverged_other", "not_reached_baseline", "not_reached_other",
              "n_baseline", "n_other", "mean_baseline", "sd_baseline", "mean_other", "sd_other",
              "diff", "ci_low", "ci_high", "rel_diff", "rel_ci_low", "rel_ci_high", "level", "interval",
              "hedges_g", "p_t", "p_t_holm", "p_rank", "p_rank_holm", "family_size",
              "seeds_needed", "clear", "verdict"]  # fmt: skip
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fields)
        w.writeheader()
        for r in rows:
            res = r.result
            w.writerow(
                {
                    "metric": r.metric, "context": r.context, "baseline": r.baseline,
                    "other": r.other, "seeds_baseline": r.n_seeds[0], "seeds_other": r.n_seeds[1],
                    "diverged_baseline": r.n_diverged[0], "diverged_other": r.n_diverged[1],
                    "not_reached_baseline": r.n_missing[0], "not_reached_other": r.n_missing[1],
                    "p_t_holm": r.p_t_holm, "p_rank_holm": r.p_rank_holm,
                    "family_size": r.family_size, "clear": is_clear(r), "verdict": r.verdict,
                    **({} if res is None else {
                        "paired": res.paired, "n_baseline": res.n_a, "n_other": res.n_b,
                        "mean_baseline": res.mean_a, "sd_baseline": res.sd_a,
                        "mean_other": res.mean_b, "sd_other": res.sd_b, "diff": res.diff,
                        "ci_low": res.low, "ci_high": res.high, "rel_diff": res.rel,
                        "rel_ci_low": res.rel_low, "rel_ci_high": res.rel_high,
                        "level": res.level, "interval": res.interval, "hedges_g": res.g, "p_t": res.p_t,
                        "p_rank": res.p_rank, "seeds_needed": res.seeds_needed}),
                }
            )  # fmt: skip
    return path


def write_speed_csv(comps: Comparisons, path: Path) -> Path:
    """One line per (job, seed): the learning-speed metrics the comparisons were made from."""
    keys = list(
        dict.fromkeys(k for seeds in comps.speed.values() for m in seeds.values() for k in m)
    )
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["job", "seed", *keys])
        for job, seeds in comps.speed.items():
            for seed, m in seeds.items():
                w.writerow([job, seed, *(m.get(k, math.nan) for k in keys)])
    return path


def headline(comps: Comparisons) -> list[Row]:
    """The rows that get a verdict in the text: how fast (steps to the target, mean loss over the
    run), how early (after epoch 1) and where it ends (the final objective), per comparison."""
    wanted = ["steps_to_target", "train/loss_auc", "val/loss@epoch1", f"{comps.objective}_final"]
    rank = {m: i for i, m in enumerate(wanted)}
    pairs = list(dict.fromkeys((r.context, r.other) for r in comps.rows))  # in job order
    picked = [r for r in comps.rows if r.metric in rank]
    return sorted(picked, key=lambda r: (pairs.index((r.context, r.other)), rank[r.metric]))


def intro(comps: Comparisons, level: float) -> str:
    """What was compared and how, in two sentences."""
    targets = {r.target for r in comps.rows if r.target is not None}
    if comps.target is not None:
        target = f"{comps.target.label} (report.target)"
    else:
        shown = f" ({next(iter(targets)).label})" if len(targets) == 1 else ""
        target = f"the baseline's worst final train/loss{shown}, which every baseline seed reaches"
    return (
        f"Each job against {comps.baseline}, seed by seed. Target: {target}; early loss after "
        f"{comps.first_k} steps. Intervals: {level:.0%} bootstrap (expanded percentile; "
        f"t-interval under {MIN_BOOTSTRAP} seeds); effect "
        "size: Hedges' g; p: t-test and rank test, Holm-corrected within each metric; "
        "* marks a clear difference."
    )


def comparison_section(
    jobs: list[Job],
    out_dir: str | Path,
    baseline: str | None = None,
    level: float = 0.95,
    target: str | float | Target | None = None,
    *,
    first_k: int | None = None,
    n_resamples: int = 9999,
    seed: int = 0,
) -> tuple[str, str, list[Path]]:
    """Compare every job with its baseline; return ``(markdown, html, files written)``.

    The Markdown starts with its own ``## Is the difference real?`` heading; the HTML fragment
    has none (the page puts the section title), and links ``forest.png`` relative to ``out_dir``.

    :param jobs: the jobs as the report reads them (:class:`initsweep.report.jobs.Job`).
    :param out_dir: where ``comparison.csv``, ``speed.csv`` and ``forest.png`` go.
    :param baseline: ``key=value`` (``--baseline``); ``None``: the first value of the first
        override that varies across the jobs.
    :param level: confidence level of the intervals (``1 − level`` is the tests' threshold).
    :param target: ``report.target`` (see :func:`initsweep.report.speed.parse_target`);
        ``None``: each baseline job's worst final ``train/loss``.
    :param first_k: the step of the early loss; ``None``: a tenth of the shortest run.
    :param n_resamples: bootstrap resamples per interval; ``seed`` seeds them.
    """
    out_dir = Path(out_dir)
    title = "Is the difference real?"
    if baseline is None and not varying_keys(jobs):
        text = "The jobs do not differ in any override: nothing to compare."
        return f"## {title}\n\n{text}\n", f"<p>{text}</p>", []
    comps = compare_jobs(
        jobs, baseline, level, target, first_k=first_k, n_resamples=n_resamples, seed=seed
    )
    if not comps.rows:  # e.g. an Optuna search: every job differs in several keys at once
        text = (
            f"No job differs from a {comps.baseline} job in {comps.baseline.split('=')[0]} "
            "alone: nothing to compare (choose another --baseline)."
        )
        return f"## {title}\n\n{html.escape(text)}\n", f"<p>{html.escape(text)}</p>", []
    for r in comps.rows:
        r.verdict = verdict(r)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [write_csv(comps.rows, out_dir / "comparison.csv")]
    files.append(write_speed_csv(comps, out_dir / "speed.csv"))
    plot = forest_plot(comps.rows, out_dir / "forest.png", baseline=comps.baseline)
    files += [plot] if plot else []
    about, verdicts = intro(comps, level), [r.verdict for r in headline(comps)]
    md = [
        f"## {title}",
        about,
        "\n".join(f"- {v}" for v in verdicts),
        table(comps.rows, "markdown"),
    ]
    md += [f"![forest plot: differences with their intervals]({plot.name})"] if plot else []
    page = (
        f"<p>{html.escape(about)}</p><ul>"
        + "".join(f"<li>{html.escape(v)}</li>" for v in verdicts)
        + f"</ul>{table(comps.rows, 'html')}"
        + (f'<img src="{plot.name}" alt="forest plot of the differences">' if plot else "")
    )
    return "\n\n".join(md) + "\n", page, files


def section(study, out: Path, options) -> Section | None:
    """The report's section (``initsweep.report.SECTIONS`` shape): finished jobs only.

    Reads ``options.baseline``, ``options.level`` and ``options.target`` where the report's
    options have them (``--baseline``, ``--level``, ``--target``).
    """
    jobs = study.finished
    if len(jobs) < 2:
        return None
    md, page, files = comparison_section(
        jobs,
        out,
        baseline=getattr(options, "baseline", None),
        level=getattr(options, "level", 0.95),
        target=getattr(options, "target", None),
    )
    skipped = len(study.jobs) - len(jobs)
    if skipped:
        page = f'<p class="note">{skipped} unfinished job(s) left out.</p>' + page
    # the terminal shows the intro and the verdicts; the table is in the page and the CSV
    text = md.split("\n\n| metric")[0].removeprefix("## ")
    return Section("Is the difference real?", page, files, text=text)
