"""A search across seeds: each trial's per-seed values, and which of the best trials cannot be
told apart.

A trial's job records its objective per seed on the trial it opens, as user attributes
(:func:`seed_attrs`: ``per_seed`` ``{seed: value}``, ``mean``, ``std``, ``n``, ``n_diverged``),
just before its trial ends; the sweeper records only the outcome. The job is the one process that
holds the per-seed values on every launcher, and a trial it prunes is finished by the job itself,
after which Optuna takes no more attributes. (An in-memory study, ``storage=null``, is out of the
jobs' reach: its trials have no per-seed values.)

:func:`compare_top` tests the best trial against each of the next ones on those values: a paired
t-test (:func:`scipy.stats.ttest_rel`) when both trials ran the same seeds, which share the data
order and differ only in the searched values, else Welch's t-test
(:func:`scipy.stats.ttest_ind`, ``equal_var=False``); two-sided, the p-values Holm-adjusted over
the comparisons (:func:`statsmodels.stats.multitest.multipletests`). A trial whose adjusted p is
at least ``alpha`` cannot be told apart from the best: not evidence that they are equal, only that
these seeds do not separate them. Differences that are the same on every seed (no spread) are
reported as such, without a p-value; below :data:`MIN_SEEDS` seeds nothing is tested, as in the
report's verdicts.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from initsweep.summary import aggregate

ALPHA = 0.05
TOP = 5
MIN_SEEDS = 3  # as the report's verdicts: below three seeds a spread is no estimate


def seed_attrs(per_seed: dict[int, float | None], n_diverged: int) -> dict[str, Any]:
    """The user attributes of a trial: its objective per seed (``None``: no value, a seed that
    diverged), their mean, sample std and count, and how many seeds diverged."""
    values = {
        str(s): (v if v is not None and math.isfinite(v) else None) for s, v in per_seed.items()
    }
    agg = aggregate(list(values.values()))
    finite = agg["n"] > 0
    return {
        "per_seed": values,
        "mean": agg["mean"] if finite else None,
        "std": agg["std"] if finite else None,
        "n": agg["n"],
        "n_diverged": n_diverged,
    }


def per_seed(trial) -> dict[str, float]:
    """A trial's finite per-seed values (``{}`` when its job recorded none)."""
    values = trial.user_attrs.get("per_seed") or {}
    return {s: v for s, v in values.items() if v is not None}


def standard_error(trial) -> float | None:
    """std / sqrt(n) of a trial's per-seed values; ``None`` below two seeds."""
    n, std = trial.user_attrs.get("n") or 0, trial.user_attrs.get("std")
    return std / math.sqrt(n) if n >= 2 and std is not None else None


def all_diverged(trial) -> bool:
    """Every seed of the trial's job diverged (its job says so in ``n_diverged``)."""
    attrs = trial.user_attrs
    return bool(attrs.get("per_seed")) and attrs.get("n_diverged") == len(attrs["per_seed"])


@dataclass(frozen=True)
class Comparison:
    """One of the top trials against the best: ``p`` Holm-adjusted (``None``: no test)."""

    number: int
    value: float
    se: float | None
    n: int
    how: str  # paired | welch | identical | no spread | too few seeds | best
    p: float | None
    apart: bool  # told apart from the best


@dataclass(frozen=True)
class TopTrials:
    best: int
    rows: list[Comparison]
    test: str
    line: str  # the sentence the end of a search prints

    def record(self) -> dict[str, Any]:
        """For ``optuna_study.yaml``."""
        return {
            "line": self.line,
            "test": self.test,
            "alpha": ALPHA,
            "trials": [
                {
                    "number": r.number,
                    "value": r.value,
                    "se": r.se,
                    "n": r.n,
                    "how": r.how,
                    "p_holm": r.p,
                    "told_apart": r.apart,
                }
                for r in self.rows
            ],
        }


def _test(best: dict[str, float], other: dict[str, float]) -> tuple[str, float | None]:
    """``(how, two-sided p)`` of ``other`` against ``best``; p is ``None`` where no test applies:
    ``identical`` values, ``no spread`` (the same nonzero difference on every seed: told apart
    without a test) or ``too few seeds``."""
    from scipy import stats

    if set(best) == set(other) and len(best) >= MIN_SEEDS:
        diffs = [other[s] - best[s] for s in best]
        if max(diffs) == min(diffs):
            return "identical" if diffs[0] == 0 else "no spread", None
        test = lambda: stats.ttest_rel([other[s] for s in best], [best[s] for s in best])  # noqa: E731
        how = "paired"
    elif len(best) >= MIN_SEEDS and len(other) >= MIN_SEEDS:
        a, b = list(other.values()), list(best.values())
        if max(a) == min(a) and max(b) == min(b):
            return "identical" if a[0] == b[0] else "no spread", None
        test = lambda: stats.ttest_ind(a, b, equal_var=False)  # noqa: E731
        how = "welch"
    else:
        return "too few seeds", None
    with warnings.catch_warnings():  # near-constant samples: scipy warns of precision loss
        warnings.simplefilter("ignore", RuntimeWarning)
        return how, float(test().pvalue)


def compare_top(trials: Sequence, minimize: bool, top: int = TOP) -> TopTrials | None:
    """The best ``top`` completed trials with per-seed values, each tested against the best;
    ``None`` with fewer than two such trials."""
    from optuna.trial import TrialState

    done = [t for t in trials if t.state == TrialState.COMPLETE and per_seed(t)]
    done = sorted(done, key=lambda t: t.value, reverse=not minimize)[:top]
    if len(done) < 2:
        return None
    from statsmodels.stats.multitest import multipletests  # ~0.5 s: only when there is a test

    best = per_seed(done[0])
    tests = [_test(best, per_seed(t)) for t in done[1:]]
    tested = [i for i, (_, p) in enumerate(tests) if p is not None]
    adjusted = [p for _, p in tests]
    if tested:
        holm = multipletests([tests[i][1] for i in tested], alpha=ALPHA, method="holm")[1]
        for i, p in zip(tested, holm):
            adjusted[i] = float(p)
    rows = [_row(done[0], "best", None, False)]
    for t, (how, _), p in zip(done[1:], tests, adjusted):
        apart = p < ALPHA if p is not None else how == "no spread"
        rows.append(_row(t, how, p, apart))
    hows = {r.how for r in rows} & {"paired", "welch"}
    test = {
        frozenset({"paired"}): "paired t-test",
        frozenset({"welch"}): "Welch's t-test",
    }.get(frozenset(hows), "paired or Welch's t-test")
    return TopTrials(done[0].number, rows, test, _line(done, rows, test))


def _row(t, how: str, p: float | None, apart: bool) -> Comparison:
    return Comparison(t.number, float(t.value), standard_error(t), len(per_seed(t)), how, p, apart)


def _line(done: list, rows: list[Comparison], test: str) -> str:
    ns = sorted({r.n for r in rows})
    seeds = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
    seeds += " seed" if ns == [1] else " seeds"
    if all(r.how in ("best", "too few seeds") for r in rows):
        return (
            f"at {seeds} per trial the top trials cannot be told apart across seeds (a test "
            f"needs {MIN_SEEDS} or more: seeds='[0,1,2,3,4]')"
        )
    how = f"{test}, Holm-adjusted, α = {ALPHA}"
    together = [t for t, r in zip(done, rows) if not r.apart]
    if len(together) == 1:
        return f"the best trial (#{done[0].number}) differs from the next {len(rows) - 1} at {seeds} ({how})"
    numbers = ", ".join(f"#{t.number}" for t in together)
    return (
        f"{_span(together)} (trials {numbers}): cannot be told apart from the best "
        f"(#{done[0].number}) at {seeds} ({how})"
    )


def _span(trials: list) -> str:
    """``init.gain 1.41–1.60``: the range of each searched value over ``trials``."""
    parts = []
    for name in sorted({p for t in trials for p in t.params}):
        values = [t.params[name] for t in trials if name in t.params]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            lo, hi = min(values), max(values)
            parts.append(f"{name} {lo:.3g}" + (f"–{hi:.3g}" if hi != lo else ""))
        else:
            parts.append(f"{name} ∈ {{{', '.join(sorted({str(v) for v in values}))}}}")
    return ", ".join(parts)
