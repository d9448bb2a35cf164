r"""One contrast of a level against its baseline: estimate, t-interval, p-value, seeds needed.

Every number of the comparison comes from one procedure, so a verdict and its interval always
agree: a t statistic :math:`t = \hat\delta / \mathrm{se}` with :math:`\nu` degrees of freedom
gives both the two-sided p-value and the interval :math:`\hat\delta \pm t_{1-\alpha/2,\nu}\,
\mathrm{se}`; the interval at level :math:`1-\alpha` excludes 0 exactly when :math:`p < \alpha`.

- **Scale.** A metric that is positive in every job (losses, accuracies, steps > 0) is compared
  on the log scale, so a change reads in percent of the baseline (:math:`e^{\hat\delta} - 1`, the
  ratio of geometric means) and its interval can never pass −100%; anything else (a Gaussian NLL,
  a step count that can be 0) as a plain difference.
- **Paired** (the same seeds and data order in every cell): per seed :math:`s`, the difference
  level − baseline within each context (levels of the other factors), averaged over the
  contexts: :math:`D_s`; :math:`\hat\delta = \bar D`, :math:`\mathrm{se} = s_D/\sqrt n`,
  :math:`\nu = n - 1` (the one-sample t-test of scipy's ``ttest_1samp``). Any correlation
  between the contexts of one seed is inside :math:`D_s`, so nothing about it is assumed.
- **Unpaired**: the average over :math:`C` contexts of the differences of means,
  :math:`\mathrm{se}^2 = \sum_c (s^2_{l,c}/n_{l,c} + s^2_{b,c}/n_{b,c}) / C^2`, with
  Welch–Satterthwaite degrees of freedom (Welch's test, scipy's ``ttest_ind(equal_var=False)``,
  when :math:`C = 1`).
- **Seeds needed**: statsmodels' power analysis of the same t-test (paired:
  :class:`~statsmodels.stats.power.TTestPower` on :math:`D`; unpaired:
  :class:`~statsmodels.stats.power.TTestIndPower`) for :data:`POWER` at the row's level, with the
  observed standardized effect (paired: Hedges' exact :math:`J(n-1)\,\bar D/s_D`): a planning
  figure, as noisy as the effect it comes from.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import special, stats
from statsmodels.stats.power import TTestIndPower, TTestPower

MIN_SEEDS = 3  # fewer seeds with a value on a side: means only, no verdict
POWER = 0.8  # the power "seeds needed" plans for
MAX_SEEDS = 100_000  # "seeds needed" beyond this reads as "no realistic number"

FEW, EXACT, TESTED = "few", "exact", "tested"


@dataclass
class Contrast:
    """Level against baseline on the analysis scale (log or plain). ``kind``: ``tested``, or
    ``few`` (under :data:`MIN_SEEDS` seeds on a side: estimate only) or ``exact`` (no
    seed-to-seed spread: the difference is a fact of this data order, no test applies)."""

    paired: bool
    n: tuple[int, int]  # seeds with a value (baseline, level); paired: equal
    estimate: float
    se: float
    df: float
    kind: str
    mean_b: float  # the baseline's and the level's means on the analysis scale
    mean_l: float
    effect: float  # the standardized effect the power analysis plans with (NaN: none)
    groups: int = 1  # contexts averaged over

    def p(self) -> float:
        if self.kind != TESTED:
            return math.nan
        return float(2 * stats.t.sf(abs(self.estimate) / self.se, self.df))

    def interval(self, level: float) -> tuple[float, float]:
        if self.kind == EXACT:
            return self.estimate, self.estimate
        if self.kind != TESTED:
            return math.nan, math.nan
        half = float(stats.t.ppf((1 + level) / 2, self.df)) * self.se
        return self.estimate - half, self.estimate + half

    def seeds_needed(self, alpha: float) -> int | None:
        """Seeds per job for :data:`POWER` at ``alpha`` (see the module docstring)."""
        if self.kind != TESTED:
            return None
        need = seeds_needed(self.effect, paired=self.paired, alpha=alpha)
        if need is None or self.paired:
            return need
        return max(MIN_SEEDS, math.ceil(need / self.groups))  # each job gives one per context


def _j(df: float) -> float:
    """Hedges' exact small-sample correction J(df)."""
    return math.exp(special.gammaln(df / 2) - special.gammaln((df - 1) / 2)) / math.sqrt(df / 2)


def paired(diffs: np.ndarray, base: np.ndarray, other: np.ndarray, groups: int = 1) -> Contrast:
    """From the per-seed differences ``diffs`` (:math:`D_s`) and the per-seed means of each
    side (for the display of means)."""
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    out = Contrast(True, (n, n), float(d.mean()) if n else math.nan, math.nan, n - 1.0, FEW,
                   float(np.mean(base)) if n else math.nan,
                   float(np.mean(other)) if n else math.nan, math.nan, groups)  # fmt: skip
    if n < MIN_SEEDS:
        return out
    if np.ptp(d) == 0:
        out.kind, out.se = EXACT, 0.0
        return out
    sd = float(d.std(ddof=1))
    out.kind, out.se = TESTED, sd / math.sqrt(n)
    out.effect = _j(n - 1) * out.estimate / sd
    return out


def unpaired(pairs: list[tuple[np.ndarray, np.ndarray]]) -> Contrast:
    """From ``(baseline values, level values)`` per context, averaged over the contexts."""
    pairs = [(np.asarray(a, dtype=float), np.asarray(b, dtype=float)) for a, b in pairs]
    c = len(pairs)
    n = (min(len(a) for a, _ in pairs), min(len(b) for _, b in pairs))
    diffs = [b.mean() - a.mean() if len(a) and len(b) else math.nan for a, b in pairs]
    out = Contrast(False, n, float(np.mean(diffs)), math.nan, math.nan, FEW,
                   float(np.mean([a.mean() for a, _ in pairs if len(a)] or [math.nan])),
                   float(np.mean([b.mean() for _, b in pairs if len(b)] or [math.nan])),
                   math.nan, c)  # fmt: skip
    if min(n) < MIN_SEEDS:
        return out
    samples = [x for pair in pairs for x in pair]
    parts = [x.var(ddof=1) / len(x) / c**2 for x in samples]
    if sum(parts) == 0:
        out.kind, out.se, out.df = EXACT, 0.0, math.inf
        return out
    out.kind, out.se = TESTED, math.sqrt(sum(parts))
    out.df = sum(parts) ** 2 / sum(p**2 / (len(x) - 1) for p, x in zip(parts, samples))
    pooled = math.sqrt(np.mean([x.var(ddof=1) for x in samples]))
    out.effect = out.estimate / pooled if pooled > 0 else math.nan
    return out


def seeds_needed(effect: float, *, paired: bool, alpha: float, power: float = POWER) -> int | None:
    """Seeds per job (pairs when paired) at which a two-sided t-test detects a standardized
    ``effect`` with ``power`` at level ``alpha`` (statsmodels' power analysis); at least
    :data:`MIN_SEEDS`, ``None`` without an effect or beyond :data:`MAX_SEEDS`."""
    if not math.isfinite(effect) or effect == 0:
        return None
    analysis, d = (TTestPower() if paired else TTestIndPower()), abs(effect)
    if _power(analysis, d, MIN_SEEDS, alpha) >= power:
        return MIN_SEEDS
    if _power(analysis, d, MAX_SEEDS, alpha) < power:
        return None
    n = _solve(analysis, d, alpha, power, "two-sided")
    if not math.isfinite(n):
        n = _solve(analysis, d, alpha / 2, power, "larger")
    return math.ceil(n) if math.isfinite(n) else None


def _power(analysis, d: float, n: int, alpha: float) -> float:
    """Two-sided power; where scipy's noncentral t returns NaN for the far tail on the wrong
    side (large effects, few seeds), the one-tailed power at ``alpha / 2``, which leaves out
    only that tail's probability (below 1e-6 there)."""
    p = float(analysis.power(d, n, alpha))
    return p if math.isfinite(p) else float(analysis.power(d, n, alpha / 2, alternative="larger"))


def _solve(analysis, d: float, alpha: float, power: float, alternative: str) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' convergence chatter
        return float(analysis.solve_power(d, power=power, alpha=alpha, alternative=alternative))
