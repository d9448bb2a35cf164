"""Is the difference real? Every level of every factor against its factor's baseline.

One primary question per study: the final value of its ``objective``. Its contrasts (each level
of each factor against the factor's baseline, averaged over the other factors' levels) and the
interactions of the factors form one family, Bonferroni-corrected: each is tested at
:math:`\\alpha/m` with its interval at level :math:`1-\\alpha/m`, so across the whole report an
A/A study calls nothing clear more often than :math:`\\alpha` (``tests/test_calibration.py``).
Every other metric (speed, early loss, loss at init, accuracy) is an *estimate* with its
:math:`1-\\alpha` interval, never a verdict: the whole error budget goes to the primary question.

The design (factors, baselines, cells) is :mod:`~initsweep.report.compare.design`; the numbers
of one contrast :mod:`~initsweep.report.compare.contrast`; the interaction test
:mod:`~initsweep.report.compare.interaction`. An Optuna search moves every searched key at once:
there each trial is a level of one factor, ``trial``, against the best trial (chosen on these
very values, so its lead is optimistic, which the report says).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from initsweep.errors import invalid
from initsweep.report.compare import design
from initsweep.report.compare.contrast import EXACT, TESTED, Contrast
from initsweep.report.compare.design import Factor
from initsweep.report.compare.interaction import Interaction
from initsweep.report.compare.measure import Measures, contrast_of, interaction_of
from initsweep.report.compare.speed import Target, last_step, parse_target
from initsweep.report.jobs import Job, is_search, short, varying_keys
from initsweep.summary import direction

# verdict kinds: what the table's verdict cell says
CLEAR, NOT_CLEAR, ESTIMATE = "clear", "not clear", "estimate"
FEW_SEEDS, CHANCE, ORDER, NONE = "few", "chance", "order", "none"


@dataclass
class Row:
    """One line of the verdict table: a level against its baseline on one metric (averaged over
    the other factors' levels), or (``interaction`` set) two factors' interaction."""

    factor: str
    level: str
    baseline: str
    metric: str
    primary: bool
    relative: bool = False
    contrast: Contrast | None = None
    contexts: list[tuple[str, Contrast]] = field(default_factory=list)  # per context
    interaction: Interaction | None = None
    target: Target | None = None  # steps_to_target's level, where one for every context
    n_seeds: tuple[int, int] = (0, 0)  # seeds run, baseline and level, over the contexts
    n_diverged: tuple[int, int] = (0, 0)
    at_chance: tuple[bool, bool] = (False, False)
    order_differs: bool = False  # the two sides met different batches
    ci_level: float = 0.95
    kind: str = NONE
    search: bool = False  # a search's trial: its level is its label

    @property
    def label(self) -> str:
        if self.search:
            return self.level
        return f"{self.factor}={self.level}" if self.level else self.factor

    @property
    def baseline_label(self) -> str:
        return self.baseline if self.search else f"{self.factor}={self.baseline}"

    @property
    def clear(self) -> bool:
        return self.kind == CLEAR

    def change(self, c: Contrast | None = None, level: float | None = None) -> tuple:
        """(change, low, high) of ``c`` (default: the row's) in the row's units: relative
        (a fraction) for positive metrics, else plain."""
        c = c or self.contrast
        if c is None:
            return math.nan, math.nan, math.nan
        low, high = c.interval(self.ci_level if level is None else level)
        back = math.expm1 if self.relative else float
        return back(c.estimate), back(low), back(high)

    def seeds_needed(self) -> int | None:
        return self.contrast.seeds_needed(1 - self.ci_level) if self.contrast else None


@dataclass
class Analysis:
    factors: list[Factor]
    rows: list[Row]
    objective: str
    alpha: float
    family: int  # primary tests, the Bonferroni m
    first_k: int
    target: Target | None  # the one given; None: each context's baseline job's own
    search: bool = False
    full_grid: bool = False
    measures: Measures | None = None

    @property
    def primary_metric(self) -> str:
        return f"{self.objective}_final"

    @property
    def primary_level(self) -> float:
        return 1 - self.alpha / max(1, self.family)


def better(metric: str) -> str:
    """``lower`` or ``higher``: which way a speed metric improves."""
    if metric.startswith("steps_to") or metric.startswith("epochs_to"):
        return "lower"
    name = metric.split("@")[0].removesuffix("_auc").removesuffix("_best").removesuffix("_final")
    return "lower" if direction(name) == "minimize" else "higher"


def _objective(job: Job) -> float:
    value = ((job.summary or {}).get("objective") or {}).get("value")
    return float(value) if value is not None else math.nan


def best_trial(jobs: list[Job]) -> Job:
    """The trial with the best objective (mean over seeds), by the objective's direction."""
    scored = [j for j in jobs if math.isfinite(_objective(j))]
    if not scored:
        return jobs[0]
    sign = -1 if direction(jobs[0].summary["objective"]["metric"]) == "maximize" else 1
    return min(scored, key=lambda j: sign * _objective(j))


def searched_label(job: Job, keys: list[str]) -> str:
    return ", ".join(f"{k}={short(job.overrides.get(k, '?'))}" for k in keys)


def _design(jobs: list[Job], baseline) -> tuple[list[Factor], dict[str, dict], bool]:
    """The factors, ``{factor: {context: {level: job}}}`` and whether this is a search."""
    if not baseline and is_search(jobs):
        keys = varying_keys(jobs)
        best = best_trial(jobs)
        labels = {id(j): searched_label(j, keys) for j in jobs}
        trial = Factor("trial", tuple(labels.values()), labels[id(best)], "the best trial")
        return [trial], {"trial": {(): {labels[id(j)]: j for j in jobs}}}, True
    factors = design.factors(jobs, baseline)
    return factors, {f.key: design.cells(jobs, f, factors) for f in factors}, False


def analyse(
    jobs: list[Job],
    baseline=None,
    level: float = 0.95,
    target: str | float | Target | None = None,
    *,
    first_k: int | None = None,
) -> Analysis:
    """Every level of every factor against its baseline, metric by metric (module docstring).

    :param baseline: ``key=value`` or a list of them, one per factor (``--baseline``).
    :param target: one level for ``steps_to_target``; ``None``: each context's baseline job's
        worst final ``train/loss``.
    """
    if not 0 < level < 1:
        raise invalid("report.level", level, "use a confidence level between 0 and 1, e.g. 0.95")
    factors, cells, search = _design(jobs, baseline)
    fixed = parse_target(target)
    k = first_k or max(1, math.ceil(0.1 * min(last_step(j.metrics) for j in jobs)))
    objective = next(
        (j.summary["objective"]["metric"] for j in jobs if (j.summary or {}).get("objective")),
        "val/loss",
    )
    measures = Measures(jobs, fixed, k, level)
    primary = f"{objective}_final"
    metrics = [primary] + ([] if search else [m for m in measures.metrics() if m != primary])
    rows = []
    for metric in metrics:
        for f in factors:
            for lev in f.others:
                pairs = [(ctx, by[f.baseline], by[lev]) for ctx, by in cells[f.key].items()
                         if f.baseline in by and lev in by]  # fmt: skip
                if pairs:
                    row = Row(f.key, lev, f.baseline, metric, metric == primary, search=search)
                    contrast_of(row, pairs, measures)
                    rows.append(row)
    grid = not search and len(factors) > 1 and design.full_grid(jobs, factors)
    if grid:
        rows += [
            Row(" × ".join(i.keys), "", "", primary, True, interaction=i,
                relative=measures.relative(primary))
            for i in interaction_of(jobs, factors, primary, measures)
        ]  # fmt: skip
    analysis = Analysis(factors, rows, objective, 1 - level, 0, k, fixed, search, grid, measures)
    judge(analysis)
    return analysis


def judge(analysis: Analysis) -> None:
    """The verdict kind of every row and the family size (see the module docstring)."""
    for r in analysis.rows:
        c, i = r.contrast, r.interaction
        if i is not None:
            r.kind = {TESTED: NOT_CLEAR, EXACT: EXACT}.get(i.kind, FEW_SEEDS)
        elif c is None:
            r.kind = NONE
        elif design.is_order_key(r.factor):
            r.kind = ORDER
        elif c.kind != TESTED:
            r.kind = {EXACT: EXACT}.get(c.kind, FEW_SEEDS)
        elif all(r.at_chance):
            r.kind = CHANCE
        else:
            r.kind = NOT_CLEAR if r.primary else ESTIMATE
    tested = [r for r in analysis.rows if r.kind == NOT_CLEAR]
    analysis.family = len(tested)
    for r in analysis.rows:
        r.ci_level = analysis.primary_level if r.primary else 1 - analysis.alpha
    for r in tested:
        p = r.interaction.p if r.interaction else r.contrast.p()
        if p < analysis.alpha / analysis.family:
            r.kind = CLEAR


def ranking(analysis: Analysis, factor: Factor) -> list[tuple[str, float]]:
    """The levels of ``factor`` from best to worst on the primary metric: (level, change
    against the baseline), the baseline at 0."""
    rows = [r for r in analysis.rows if r.metric == analysis.primary_metric
            and r.factor == factor.key and r.contrast is not None]  # fmt: skip
    scores = [(factor.baseline, 0.0)] + [
        (r.level, r.change()[0]) for r in rows if math.isfinite(r.contrast.estimate)
    ]
    sign = 1 if better(analysis.primary_metric) == "lower" else -1
    return sorted(scores, key=lambda s: sign * s[1])
