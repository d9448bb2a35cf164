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
from initsweep.report.compare.effects import FEW, MIN_BOOTSTRAP, MIN_SEEDS, POWER
from initsweep.report.compare.engine import Comparisons, Row, compare_jobs
from initsweep.report.compare.forest import forest_plot, not_drawn
from initsweep.report.compare.speed import Target
from initsweep.report.compare.verdict import describe, fmt, fmt_p, is_clear, seeds_phrase, verdict
from initsweep.report.jobs import Job, varying_keys
from initsweep.report.section import Section
from initsweep.summary import direction

# one table per metric, one row per compared job; the baseline is in the table's heading
COLUMNS = ("other", "baseline mean ± sd", "other mean ± sd", "difference [CI]",
           "relative [CI]", "Hedges' g", "p (t)", "p (rank)", "n (baseline vs other)",
           f"seeds for {POWER:.0%} power")  # fmt: skip


def _needed(row: Row) -> str:
    r = row.result
    if r is None or r.kind == FEW:
        return f"≥ {MIN_SEEDS} for any verdict"
    if r.seeds_needed is None:
        return "—" if not math.isfinite(r.effect) or r.diff == 0 else "> 100000"
    have = min(r.n_a, r.n_b)
    return f"{r.seeds_needed} (have {have})" if r.seeds_needed <= have else str(r.seeds_needed)


def _pct(x: float) -> str:
    """A relative difference in percent: three significant digits, whole numbers from 100%."""
    return f"{100 * x:+.0f}" if abs(x) >= 1 else f"{100 * x:+.3g}"


def _interval(low: float, high: float, pct: bool = False) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return ""
    if pct:
        return f" [{_pct(low)}, {_pct(high)}]%"
    return f" [{low:+.3g}, {high:+.3g}]"


def cells(row: Row) -> list[str]:
    """The table's cells for one row, formatted for reading."""
    r = row.result
    steps = row.metric.startswith("steps_to")
    other = row.other + (f" [{row.context}]" if row.context else "")
    if r is None:
        return [other] + ["n/a"] * 7 + [seeds_phrase(row, other_first=False), _needed(row)]
    chance = [" (at chance)" if at else "" for at in row.at_chance]
    test_t, test_rank = ("paired t", "Wilcoxon") if r.paired else ("Welch", "Mann-Whitney")
    holm = " Holm" if row.family_size > 1 else ""
    tag = {"t": " (t)", "bootstrap": "", "": ""}[r.interval] + (" *" if is_clear(row) else "")
    p_t, p_rank = (
        (f"{fmt_p(row.p_t_holm).removeprefix('= ')} ({test_t}{holm})",
         f"{fmt_p(row.p_rank_holm).removeprefix('= ')} ({test_rank}{holm})")
        if math.isfinite(r.p_t) else (r.kind, r.kind)
    )  # fmt: skip
    return [
        other,
        f"{fmt(r.mean_a, steps)} ± {fmt(r.sd_a)}{chance[0]}",
        f"{fmt(r.mean_b, steps)} ± {fmt(r.sd_b)}{chance[1]}",
        f"{r.diff:+.3g}{_interval(r.low, r.high)}{'' if r.relative else tag}",
        f"{_pct(r.rel)}%{_interval(r.rel_low, r.rel_high, True)}{tag}" if r.relative else "—",
        fmt(r.g),
        p_t,
        p_rank,
        seeds_phrase(row, other_first=False, table=True),
        _needed(row),
    ]


def by_metric(rows: list[Row]) -> dict[str, list[Row]]:
    return {m: [r for r in rows if r.metric == m] for m in dict.fromkeys(r.metric for r in rows)}


def heading(group: list[Row]) -> str:
    """ "final val/acc, each against init=keras_default"."""
    base = dict.fromkeys(r.baseline for r in group)
    return f"{describe(group[0].metric, group[0].target)}, each against {', '.join(base)}"


def table(rows: list[Row], style: str) -> str:
    """The comparison tables, one per metric, as Markdown or HTML (each fits a page: ten
    columns whose cells may wrap)."""
    parts = []
    for group in by_metric(rows).values():
        body = render_table(
            COLUMNS, [cells(r) for r in group], style, table_class="comparison", pad=False
        )
        if style == "html":
            parts.append(f"<h3>{html.escape(heading(group))}</h3>{body}")
        else:
            parts.append(f"### {heading(group)}\n\n{body}")
    return "\n\n".join(parts)


def write_csv(rows: list[Row], path: Path) -> Path:
    """Every number of every row, unrounded, plus its verdict."""
    fields = ["metric", "context", "baseline", "other", "paired", "seeds_baseline", "seeds_other",
              "diverged_baseline", "diverged_other", "not_reached_baseline", "not_reached_other",
              "n_baseline", "n_other", "mean_baseline", "sd_baseline", "mean_other", "sd_other",
              "kind", "diff", "ci_low", "ci_high", "rel_diff", "rel_ci_low", "rel_ci_high", "level",
              "interval", "hedges_g", "power_effect", "p_t", "p_t_holm", "p_rank", "p_rank_holm",
              "family_size", "seeds_needed", "at_chance_baseline", "at_chance_other",
              "chance_bound", "clear", "verdict"]  # fmt: skip
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
                    "at_chance_baseline": r.at_chance[0], "at_chance_other": r.at_chance[1],
                    "chance_bound": next((c.bound for c in r.chance if c), None),
                    **({} if res is None else {
                        "paired": res.paired, "n_baseline": res.n_a, "n_other": res.n_b,
                        "mean_baseline": res.mean_a, "sd_baseline": res.sd_a,
                        "mean_other": res.mean_b, "sd_other": res.sd_b, "diff": res.diff,
                        "kind": res.kind, "power_effect": res.effect,
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


def verdict_lines(rows: list[Row]) -> list[str]:
    """The verdicts, with every comparison that has too few seeds said once, in one line."""
    few = [r for r in rows if min(r.n_seeds) < MIN_SEEDS]
    lines = [r.verdict for r in rows if min(r.n_seeds) >= MIN_SEEDS]
    if few:
        who = list(dict.fromkeys(r.other + (f" [{r.context}]" if r.context else "") for r in few))
        base = ", ".join(dict.fromkeys(r.baseline for r in few))
        counts = sorted({n for r in few for n in r.n_seeds})
        seeds = ",".join(map(str, range(MIN_SEEDS)))
        lines.insert(
            0,
            f"No verdict for {', '.join(who)} against {base}: {'/'.join(map(str, counts))} "
            f"seed(s) per job, and a verdict needs at least {MIN_SEEDS} "
            f"(seeds='[{seeds}]').",
        )
    return lines


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


def intro(comps: Comparisons, level: float) -> str:
    """What was compared and how, in a few sentences."""
    targets = {r.target for r in comps.rows if r.target is not None}
    if comps.target is not None:
        target = f"{comps.target.label} (report.target)"
    else:
        shown = f" ({next(iter(targets)).label})" if len(targets) == 1 else ""
        target = f"the baseline's worst final train/loss{shown}, which every baseline seed reaches"
    how = (
        f"Intervals: {level:.0%} bootstrap (expanded percentile; t-interval under "
        f"{MIN_BOOTSTRAP} seeds), relative ones on the log-ratio scale; effect size: Hedges' g; "
        "p: t-test and rank test, Holm-corrected within each metric; seeds for "
        f"{POWER:.0%} power: statsmodels' t-test power analysis; * marks a clear difference."
    )
    b = comps.baseline
    if comps.search:
        return (
            f"Each trial of the search against the best one, {b.label}, seed by seed, on the "
            f"final {comps.objective}. The best was chosen on these very values, so its lead "
            "is optimistic; a held-out test split gives the unbiased figure. " + how
        )
    return (
        f"Each job against {b.label} ({b.why}), seed by seed. Target: {target}; early loss "
        f"after {comps.first_k} steps. " + how
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
    :param baseline: ``key=value`` (``--baseline``); ``None``: the preset's ``report.baseline``,
        a default scheme or the first value (:func:`~initsweep.report.compare.engine.resolve_baseline`).
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
    if not comps.rows:  # every job differs from the baseline's in more than its key
        text = (
            f"No job differs from a {comps.baseline.label} job in {comps.baseline.key} "
            "alone: nothing to compare (choose another --baseline)."
        )
        return f"## {title}\n\n{html.escape(text)}\n", f"<p>{html.escape(text)}</p>", []
    for r in comps.rows:
        r.verdict = verdict(r)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [write_csv(comps.rows, out_dir / "comparison.csv")]
    files.append(write_speed_csv(comps, out_dir / "speed.csv"))
    plot = forest_plot(comps.rows, out_dir / "forest.png", baseline=comps.baseline.label)
    files += [plot] if plot else []
    about, verdicts = intro(comps, level), verdict_lines(headline(comps))
    best = held_out(jobs, comps.objective)
    left_out = not_drawn(comps.rows)
    note = f"Not in the forest plot: {left_out}." if left_out else ""
    md = [f"## {title}", about, "\n".join(f"- {v}" for v in verdicts)]
    md += [best] if best else []
    md += [table(comps.rows, "markdown")]
    md += [f"![forest plot: differences with their intervals]({plot.name})"] if plot else []
    md += [note] if note else []
    page = (
        f"<p>{html.escape(about)}</p><ul>"
        + "".join(f"<li>{html.escape(v)}</li>" for v in verdicts)
        + "</ul>"
        + (f"<p>{html.escape(best)}</p>" if best else "")
        + table(comps.rows, "html")
        + (f'<img src="{plot.name}" alt="forest plot of the differences">' if plot else "")
        + (f'<p class="note">{html.escape(note)}</p>' if note else "")
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
    # the terminal shows the intro and the verdicts; the tables are in the page and the CSV
    text = md.split("\n\n### ")[0].removeprefix("## ")
    alert = too_few_seeds(jobs, study.objective)
    return Section("Is the difference real?", page, files, text=text, alert=alert)
