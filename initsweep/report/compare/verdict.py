"""The words of the comparison: table cells, and one sentence per clear difference.

One sign convention everywhere: a change is the level minus its baseline, ``+`` meaning higher;
for a positive metric in percent of the baseline (``−4.4 %``: 4.4 % lower). A verdict cell says
``clear`` exactly when the row's interval excludes no change.
"""

from __future__ import annotations

import math

from initsweep.report.compare.contrast import MIN_SEEDS
from initsweep.report.compare.engine import (
    CHANCE,
    CLEAR,
    ESTIMATE,
    EXACT,
    FEW_SEEDS,
    NONE,
    NOT_CLEAR,
    ORDER,
    Analysis,
    Row,
    better,
)  # fmt: skip
from initsweep.report.compare.speed import Target

MINUS = "\u2212"


def describe(metric: str, target: Target | None = None) -> str:
    """A metric's name in words: ``train/loss@step5`` → "train/loss after 5 steps"."""
    if metric == "steps_to_target":
        return f"steps to reach {target.label}" if target else "steps to reach the target"
    base, _, at = metric.partition("@")
    if at == "init":
        return f"{base} at init"
    if at.startswith("step"):
        return f"{base} after {at[4:]} steps"
    if at.startswith("epoch"):
        return f"{base} after epoch {at[5:]}"
    if base.endswith("_auc"):
        return f"mean {base.removesuffix('_auc')} over the run"
    for suffix in ("_best", "_final"):
        if base.endswith(suffix):
            return f"{suffix[1:]} {base.removesuffix(suffix)}"
    return base


def num(x: float, sign: bool = True) -> str:
    """Two significant digits below 10, whole numbers from 10; a real minus sign."""
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    text = f"{x:+.2g}" if abs(x) < 10 else f"{x:+.0f}"
    if "e" in text:
        text = f"{x:+.2e}"
    text = text.replace("-", MINUS)
    return text if sign else text.lstrip("+" + MINUS)


def amount(row: Row, x: float, sign: bool = True) -> str:
    """A change in the row's units: ``−4.4 %``, ``+0.031`` or ``−5 steps``."""
    if row.relative:
        return f"{num(100 * x, sign)} %"
    if row.metric.startswith("steps_to"):
        return f"{num(x, sign)} steps"
    return num(x, sign) if abs(x) >= 0.01 or x == 0 else f"{x:+.2g}".replace("-", MINUS)


def bounds(row: Row, low: float, high: float) -> str:
    """An interval in the row's units, the unit once: ``[−7.9, −0.85] %``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "—"
    unit = " %" if row.relative else (" steps" if row.metric.startswith("steps_to") else "")
    scale = 100 if row.relative else 1
    return f"[{num(scale * low)}, {num(scale * high)}]{unit}"


def level_pct(level: float) -> str:
    """``0.9875`` → "98.75 %"."""
    return f"{100 * level:.4g} %"


def direction_word(row: Row, change: float) -> str:
    """ "lower, better" for a drop in a loss."""
    down = change < 0
    good = (better(row.metric) == "lower") == down
    return f"{'lower' if down else 'higher'}, {'better' if good else 'worse'}"


def change_cell(row: Row, analysis: Analysis) -> str:
    if row.interaction is not None:
        main = interaction_main(row, analysis)
        return f"{main.label}: {spread(main)}" if main else "—"
    if row.contrast is None or not math.isfinite(row.contrast.estimate):
        return "—"
    return amount(row, row.change()[0])


def interval_cell(row: Row) -> str:
    i = row.interaction
    if i is not None:
        return f"{i.statistic}, p {fmt_p(i.p)}" if math.isfinite(i.p) else "—"
    if row.kind in (NONE, FEW_SEEDS) or row.contrast is None:
        return "—"
    if row.kind == EXACT:
        return "exact"
    return bounds(row, *row.change()[1:])


def fmt_p(p: float) -> str:
    return "n/a" if not math.isfinite(p) else ("< 0.001" if p < 0.001 else f"= {p:.2g}")


def verdict_cell(row: Row) -> str:
    change = row.change()[0]
    if row.interaction is not None:
        return {CLEAR: "clear: they interact", NOT_CLEAR: "not clear",
                EXACT: "exact: no seed spread"}.get(row.kind, f"under {MIN_SEEDS} seeds")  # fmt: skip
    if row.kind == CLEAR:
        return f"clear: {direction_word(row, change)}"
    if row.kind == EXACT:
        return "identical" if change == 0 else f"exact: {direction_word(row, change)} (no spread)"
    if row.kind == NONE and any(row.n_diverged):
        (db, dl), (nb, nl) = row.n_diverged, row.n_seeds
        return f"no values: diverged {db}/{nb} vs {dl}/{nl}"
    return {
        NOT_CLEAR: "not clear",
        ESTIMATE: "estimate",
        FEW_SEEDS: f"no verdict: under {MIN_SEEDS} seeds",
        CHANCE: "both at chance",
        ORDER: "not tested: data order",
        NONE: "no values",
    }[row.kind]


def needed_cell(row: Row) -> str:
    """Seeds per job for 80 % power at the row's level; "(have n)" when already run."""
    if row.kind not in (CLEAR, NOT_CLEAR, ESTIMATE) or row.interaction is not None:
        return "—"
    need = row.seeds_needed()
    if need is None:
        return "> 100000" if math.isfinite(row.contrast.effect) else "—"
    have = min(row.contrast.n)
    return f"{need} (have {have})" if need <= have else str(need)


def spread(row: Row) -> str:
    """ "−0.96 % to −7.5 %": the range of a level's change over the contexts."""
    changes = [row.change(c)[0] for _, c in row.contexts if math.isfinite(c.estimate)]
    if not changes:
        return "—"
    lo, hi = min(changes), max(changes)
    return amount(row, lo) if lo == hi else f"{amount(row, lo)} to {amount(row, hi)}"


def _under(row: Row, others: list[str]) -> str:
    """ "under each of the 3 levels of init: −0.96 % to −7.5 %" (the per-context estimates)."""
    n = len(row.contexts)
    if n < 2:
        return ""
    what = f"levels of {others[0]}" if len(others) == 1 else f"combinations of {', '.join(others)}"
    changes = [row.change(c)[0] for _, c in row.contexts]
    same = sum(1 for c in changes if math.copysign(1, c) == math.copysign(1, row.change()[0]))
    share = f"each of the {n}" if same == n else f"{same} of the {n}"
    return f", under {share} {what}: {spread(row)}"


def sentence(row: Row, analysis: Analysis) -> str:
    """One sentence for a clear row."""
    what = describe(row.metric, row.target)
    if row.interaction is not None:
        a, b = row.interaction.keys
        detail = interaction_detail(row, analysis)
        return (
            f"{a} and {b} interact on {what} ({row.interaction.statistic}, "
            f"p {fmt_p(row.interaction.p)}){detail}."
        )
    change, low, high = row.change()
    verb = "lowers" if change < 0 else "raises"
    others = [f.key for f in analysis.factors if f.key != row.factor]
    return (
        f"{row.label} {verb} {what} by {amount(row, abs(change), sign=False)} against "
        f"{row.baseline_label} ({level_pct(row.ci_level)} interval "
        f"{bounds(row, low, high)}){_under(row, others)}."
    )


def interaction_main(row: Row, analysis: Analysis) -> Row | None:
    """The level row an interaction is told by: the first level of the factor of the two with
    fewer levels (bias=prior in init × bias), whose change varies over the other's levels."""
    levels = {f.key: f for f in analysis.factors}
    key = min(row.interaction.keys, key=lambda k: len(levels[k].others))
    return next((r for r in analysis.rows if r.factor == key and r.metric == row.metric
                 and r.interaction is None and len(r.contexts) > 1), None)  # fmt: skip


def interaction_detail(row: Row, analysis: Analysis) -> str:
    """ ": bias=prior changes it by −0.96 % (init=kaiming_normal) to −7.5 % (init=…)"."""
    main = interaction_main(row, analysis)
    if main is None:
        return ""
    ranked = sorted(
        ((main.change(c)[0], label) for label, c in main.contexts if math.isfinite(c.estimate)),
        key=lambda t: t[0],
    )
    if len(ranked) < 2:
        return ""
    (lo, lo_at), (hi, hi_at) = ranked[0], ranked[-1]
    return (
        f": {main.label} changes it by {amount(main, lo)} ({lo_at}) to {amount(main, hi)} "
        f"({hi_at})"
    )


def ranking_line(analysis: Analysis, ranks: dict[str, list[tuple[str, float]]]) -> str:
    """ "Ranking on final val/loss (lower is better): init: kaiming_normal −15 %, …"."""
    primary = [r for r in analysis.rows if r.metric == analysis.primary_metric and r.contrast]
    if not primary or analysis.search:
        return ""
    row = primary[0]
    parts = []
    for f in analysis.factors:
        levels = ranks.get(f.key) or []
        shown = [v if v == f.baseline and c == 0 else f"{v} {amount(row, c)}" for v, c in levels]
        shown = [s + " (baseline)" if s == f.baseline else s for s in shown]
        parts.append(f"{f.key}: {', '.join(shown)}")
    what = describe(analysis.primary_metric)
    return (
        f"Ranking on {what} ({better(analysis.primary_metric)} is better, change against "
        f"the baseline): " + "; ".join(parts) + "."
    )
