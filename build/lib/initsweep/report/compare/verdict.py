"""One plain-language line per comparison row, e.g.

``bias=prior reaches train/loss ≤ 0.253 in 38% fewer steps than bias=zeros (29 vs 46 steps;
95% CI [30, 46]%), 10/10 seeds paired, p = 0.002 (Holm)``.

A difference is called *clear* when its interval (the relative one where there is one) excludes
zero **and** its t-test p-value, Holm-corrected within its family, is below ``1 − level``;
otherwise the line says "no clear difference" and how many seeds per job a power analysis asks
for. Before that, in this order: under :data:`~initsweep.report.compare.effects.MIN_SEEDS` seeds
on a side there is no verdict; two arms both at chance are not ranked; arms without
seed-to-seed spread are reported as deterministic, without a p-value.
"""

from __future__ import annotations

import math

from initsweep.report.compare.effects import DETERMINISTIC, FEW, MIN_BOOTSTRAP, MIN_SEEDS, POWER
from initsweep.report.compare.engine import Row, better
from initsweep.report.compare.speed import Target


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


def fmt(x: float, steps: bool = False) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.0f}" if steps else f"{x:.3g}"


def fmt_p(p: float) -> str:
    return "n/a" if not math.isfinite(p) else ("< 0.001" if p < 0.001 else f"= {p:.3f}")


def seeds_phrase(row: Row, other_first: bool = True, table: bool = False) -> str:
    """ "10/10 seeds paired" or "8/10 vs 10/10 seeds", with diverged and unreached counts.

    Verdicts read "other … vs baseline", so the other job's counts come first; the table,
    whose columns run baseline then other, passes ``other_first=False`` (and ``table=True``:
    its interval column marks a t-interval itself).
    """
    r = row.result
    flip = (lambda p: p[::-1]) if other_first else (lambda p: p)  # noqa: E731
    used, total = flip((r.n_a, r.n_b) if r else row.n_values), flip(row.n_seeds)
    if r and r.paired:
        text = f"{used[0]}/{total[0]} seeds paired"
    else:
        text = f"{used[0]}/{total[0]} vs {used[1]}/{total[1]} seeds"
    notes = []
    for name, pair in (("diverged", row.n_diverged), ("not reached", row.n_missing)):
        if any(pair):
            notes.append(f"{name}: {flip(pair)[0]} vs {flip(pair)[1]}")
    if r and r.interval == "t" and not table:
        notes.append(f"t-interval: under {MIN_BOOTSTRAP} seeds")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def is_clear(row: Row) -> bool:
    return bool(row.result and row.result.clear(row.p_t_holm))


def num(x: float, sign: bool = False) -> str:
    """A percentage or difference to read: two significant digits below 10, whole numbers above."""
    text = f"{x:+.2g}" if sign else f"{x:.2g}"
    return text if abs(x) < 10 else (f"{x:+.0f}" if sign else f"{x:.0f}")


def test_name(row: Row) -> str:
    return "paired t" if row.result.paired else "Welch's t"


def _more_seeds(row: Row) -> str:
    r = row.result
    need, have = r.seeds_needed, min(r.n_a, r.n_b)
    plan = f"{POWER:.0%} power, {test_name(row)} at α = {row.alpha:.2g}" + (
        f" ({1 - r.level:.2g} over {row.family_size} comparisons)" if row.family_size > 1 else ""
    )
    if r.diff == 0:
        return "the two jobs gave the same mean"
    if need is None:
        return f"no realistic number of seeds gives a difference this small {plan}"
    if need <= have:
        return "borderline (the interval and the corrected test disagree): run more seeds"
    return f"about {need} seeds per job would find a difference this size ({plan})"


def _chance_note(row: Row) -> str:
    """ "; init=zeros is at chance (≤ 0.135, …)" for the arms at chance, else ""."""
    names = (row.baseline, row.other)
    notes = [f"{n} is at chance ({c.describe()})" for n, c in zip(names, row.chance) if c and c.at]
    return "".join(f"; {n}" for n in notes)


def _few(row: Row, who: str, what: str, steps: bool) -> str:
    r = row.result
    means = f"{fmt(r.mean_b, steps)} vs {fmt(r.mean_a, steps)}{' steps' if steps else ''}"
    return (
        f"{who} vs {row.baseline}, {what}: {means}, {seeds_phrase(row)}: no verdict, it needs at "
        f"least {MIN_SEEDS} seeds with a value per job{_chance_note(row)}."
    )


def verdict(row: Row) -> str:
    """The row's one-line verdict (see the module docstring)."""
    r = row.result
    who = row.other + (f" [{row.context}]" if row.context else "")
    what = describe(row.metric, row.target)
    steps = row.metric.startswith("steps_to")
    short = r is None or (r.kind == FEW and min(row.n_seeds) >= MIN_SEEDS)
    if short and steps and row.target:  # seeds ran, but too few reached the target
        got = row.n_values
        dead = row.n_diverged
        return (
            f"{who} reached {row.target.label} in {got[1]}/{row.n_seeds[1]} seeds, "
            f"{row.baseline} in {got[0]}/{row.n_seeds[0]}"
            + (f" (diverged: {dead[1]} vs {dead[0]})" if any(dead) else "")
            + f": too few (under {MIN_SEEDS}) on one side to compare step counts."
        )
    if r is None:
        return (
            f"{who} vs {row.baseline}: no seed with a value to compare {what} "
            f"({seeds_phrase(row)})."
        )
    if r.kind == FEW:
        return _few(row, who, what, steps)
    means = f"{fmt(r.mean_b, steps)} vs {fmt(r.mean_a, steps)}{' steps' if steps else ''}"
    if all(row.at_chance):
        bound = row.chance[0].describe()
        return (
            f"{what}: {who} and {row.baseline} are both at chance ({means}; {bound}): "
            f"not ranked, {seeds_phrase(row)}."
        )
    # relative differences in percent where the quantity is positive, else absolute
    diff, lo, hi = (
        (100 * r.rel, 100 * r.rel_low, 100 * r.rel_high) if r.relative else (r.diff, r.low, r.high)
    )
    unit = "%" if r.relative else ""
    if r.kind == DETERMINISTIC:
        return _deterministic(row, who, what, means, f"{num(abs(diff))}{unit}")
    p = f"p {fmt_p(row.p_t_holm)}" + (" (Holm)" if row.family_size > 1 else "")
    ci = f"{r.level:.0%} CI"
    if not is_clear(row):
        return (
            f"no clear difference in {what}: {who} {num(diff, True)}{unit} vs {row.baseline} "
            f"({means}; {ci} [{num(lo, True)}, {num(hi, True)}]{unit}), {seeds_phrase(row)}, "
            f"{p}; {_more_seeds(row)}{_chance_note(row)}."
        )
    if steps and r.mean_b == 0 and r.sd_b == 0:  # "100% fewer steps" says it badly
        goal = row.target.label if row.target else "the target"
        return (
            f"{who} is already at {goal} at init (step 0); {row.baseline} gets there in "
            f"{fmt(r.mean_a, True)} ± {fmt(r.sd_a)} steps, {seeds_phrase(row)}, {p}: better."
        )
    down = r.diff < 0
    if down:  # "38% fewer", with the interval in the same, positive, frame
        diff, lo, hi = -diff, -hi, -lo
    size = f"{num(diff)}{unit}"
    good = (better(row.metric) == "lower") == down
    return (
        f"{_head(row, who, what, size, down)} than {row.baseline} ({means}; {ci} "
        f"[{num(lo)}, {num(hi)}]{unit}), {seeds_phrase(row)}, {p}: "
        f"{'better' if good else 'worse'}{_chance_note(row)}."
    )


def _head(row: Row, who: str, what: str, size: str, down: bool) -> str:
    """ "X reaches … in 38% fewer steps" or "X has 15% lower …"."""
    if row.metric.startswith("steps_to"):
        goal = row.target.label if row.target else "the target"
        return f"{who} reaches {goal} in {size} {'fewer' if down else 'more'} steps"
    return f"{who} has {size} {'lower' if down else 'higher'} {what}"


def _deterministic(row: Row, who: str, what: str, means: str, size: str) -> str:
    """No seed-to-seed spread: the difference is a fact of this data and data order."""
    r = row.result
    exact = "deterministic: no seed-to-seed spread, so no test applies"
    if r.diff == 0:
        return (
            f"no difference in {what}: {who} and {row.baseline} agree seed by seed ({exact}), "
            f"{seeds_phrase(row)}."
        )
    down = r.diff < 0
    good = (better(row.metric) == "lower") == down
    same = "in every seed" if r.sd_a == 0 and r.sd_b == 0 else "by the same amount in every seed"
    return (
        f"{_head(row, who, what, size, down)} than {row.baseline} {same} ({means}; {exact}: "
        f"exact for this data and data order), {seeds_phrase(row)}: "
        f"{'better' if good else 'worse'}{_chance_note(row)}."
    )
