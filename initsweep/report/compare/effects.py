r"""Is the difference real? Two samples of per-seed values: difference, interval, effect, tests.

``a`` is the baseline job's values, ``b`` the other job's; the difference is
:math:`\bar b - \bar a`. Paired samples are the same seeds with the same data order, aligned
index by index. Every random draw comes from the ``rng`` passed in.

Conventions (each one chosen, stated and tested):

- **What can be said** (:attr:`Difference.kind`): with under :data:`MIN_SEEDS` values on a side
  only the means (``few``: a standard deviation from two seeds says next to nothing, a t-test on
  it has one degree of freedom and a rank test cannot reach p < 0.05); with no seed-to-seed
  spread where the test needs it (both samples constant, or paired differences all equal) the
  difference is exact for this data and data order and no test applies (``deterministic``: a
  t-test would divide by zero); otherwise intervals and tests (``tested``).
- **Interval**: the *expanded percentile* bootstrap (Hesterberg 2015, `What Teachers Should
  Know About the Bootstrap`, The American Statistician 69(4)), through
  :func:`scipy.stats.bootstrap` with ``method="percentile"`` at a widened level

  .. math::
      \text{level}' = 2\,\Phi\!\left(f \cdot t_{(1+\text{level})/2,\ \nu}\right) - 1,

  where :math:`f^2` is the ratio of the unbiased to the plug-in variance of the statistic
  (:math:`n/(n-1)` for one sample) and :math:`\nu` its degrees of freedom (``n − 1`` paired,
  Welch–Satterthwaite unpaired). Seeds are few: for a 95% level on normal data with 5 seeds
  per job the plain percentile interval covered 86% and BCa 79–82% (200 draws); the expanded
  one covered 95% unpaired and 91% paired (1000 draws), 94–95% with 8–10 seeds. With fewer
  than :data:`MIN_BOOTSTRAP` seeds a bootstrap has too few distinct resamples (3 paired seeds
  covered 75%), so the interval there is the t-interval of the same test (Welch or paired),
  exact for normal data however few the seeds.
- **Relative difference** of a *positive quantity* (every value ≥ 0 and both means > 0:
  losses, steps, accuracies): :math:`\bar b / \bar a - 1`, with its interval on the log-ratio
  scale, :math:`\ln(\bar b / \bar a)`, so it can never pass −100%. From 5 seeds, the bootstrap
  percentile interval of the log ratio (a percentile interval follows any monotone transform).
  Under 5 seeds, the t-interval of the log response ratio with the delta-method variance of
  Hedges, Gurevitch & Curtis 1999 (`The meta-analysis of response ratios in experimental
  ecology`, Ecology 80(4)), :math:`s_b^2/(n_b \bar b^2) + s_a^2/(n_a \bar a^2)` with
  Welch–Satterthwaite degrees of freedom; paired, the variance of the per-seed linearisation
  :math:`b_i/\bar b - a_i/\bar a` over ``n`` with ``n − 1``. Quantities that can be negative
  (a Gaussian NLL) get no relative difference.
- **Effect size**: Hedges' g (Hedges 1981), the difference over the pooled standard deviation
  of the two samples, times the exact small-sample correction
  :math:`J(\nu) = \Gamma(\nu/2) / (\sqrt{\nu/2}\,\Gamma((\nu-1)/2))`, :math:`\nu = n_a + n_b - 2`.
  The same formula paired or not (with equal seed counts the pooled SD is the average SD of
  Cohen's :math:`d_{av}`, Lakens 2013), so the column always reads "the difference in units of
  the seed-to-seed spread", not of the spread of paired differences.
- **Tests**: Welch's t and Mann–Whitney U unpaired; paired t and the Wilcoxon signed-rank
  test paired (zero differences dropped, scipy's default); all two-sided.
- **Seeds needed**: a standard power analysis, statsmodels' own: the seeds per job at which
  the t-test of the comparison (paired: :class:`~statsmodels.stats.power.TTestPower` on the
  paired differences; unpaired: :class:`~statsmodels.stats.power.TTestIndPower`, equal seeds
  per job) detects the observed effect with :data:`POWER` (80%) at the two-sided level
  ``alpha``. The effect is the observed one, bias-corrected by :math:`J` (Hedges' g unpaired,
  :math:`J(n-1)\,\bar d / s_d` paired): a planning figure, as noisy as the effect it comes from.
- **Holm**: statsmodels' :func:`~statsmodels.stats.multitest.multipletests`
  (``method="holm"``).
"""

from __future__ import annotations

import gc
import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import special, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower

MIN_SEEDS = 3  # fewer seeds with a value on a side: means only, no verdict
MIN_BOOTSTRAP = 5  # fewer seeds (per job, or pairs): the t-interval instead of the bootstrap
POWER = 0.8  # the power "seeds needed" plans for
MAX_SEEDS = 100_000  # "seeds needed" beyond this reads as "no realistic number"

FEW, DETERMINISTIC, TESTED = "few", "deterministic", "tested"


@dataclass
class Difference:
    """Baseline ``a`` against other ``b`` for one metric. What is NaN depends on ``kind``:
    ``few`` has means and differences only; ``deterministic`` has exact differences (its
    interval is the point) and no p-values; ``tested`` has everything."""

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    sd_a: float
    sd_b: float
    diff: float  # mean_b − mean_a
    low: float  # interval of diff
    high: float
    rel: float  # mean_b / mean_a − 1 (positive quantities only, else NaN)
    rel_low: float  # its interval, from the log ratio
    rel_high: float
    g: float  # Hedges' g
    p_t: float  # Welch's t (unpaired) or paired t
    p_rank: float  # Mann–Whitney U (unpaired) or Wilcoxon signed-rank (paired)
    paired: bool
    level: float
    kind: str  # FEW, DETERMINISTIC or TESTED
    interval: str  # "bootstrap", "t", or "" (no interval)
    effect: float  # the standardized effect the power analysis uses (NaN: none)
    seeds_needed: int | None = None  # None: no difference to resolve, or beyond MAX_SEEDS

    @property
    def relative(self) -> bool:
        return math.isfinite(self.rel)

    @property
    def excludes_zero(self) -> bool:
        """The shown interval (the relative one where there is one) excludes no difference."""
        low, high = (self.rel_low, self.rel_high) if self.relative else (self.low, self.high)
        return self.kind == TESTED and (low > 0 or high < 0)

    def clear(self, p_adjusted: float) -> bool:
        """A *clear* difference: the interval excludes zero and the t-test's p-value, adjusted
        for its family (Holm), is below ``1 − level``."""
        return self.excludes_zero and p_adjusted < 1 - self.level


def _mean_diff(b, a, axis=-1):
    return b.mean(axis) - a.mean(axis)


def _log_ratio(b, a, axis=-1):
    return np.log(b.mean(axis)) - np.log(a.mean(axis))


def positive(a: np.ndarray, b: np.ndarray) -> bool:
    """A quantity whose ratio of means means something: no negative value, both means > 0."""
    return bool(a.min() >= 0 and b.min() >= 0 and a.mean() > 0 and b.mean() > 0)


def expanded_level(a: np.ndarray, b: np.ndarray, level: float, paired: bool) -> float:
    """The widened level of the expanded percentile interval (see the module docstring)."""
    if paired:
        n = len(a)
        f2, df = n / (n - 1), n - 1
    else:
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        plug = a.var() / len(a) + b.var() / len(b)
        if plug == 0:
            return level
        f2 = (va + vb) / plug
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    t = stats.t.ppf((1 + level) / 2, df)
    return float(2 * stats.norm.cdf(math.sqrt(f2) * t) - 1)


def bootstrap_ci(
    a: np.ndarray,
    b: np.ndarray,
    *,
    paired: bool,
    level: float,
    rng: np.random.Generator,
    n_resamples: int = 9999,
    log_ratio: bool = False,
) -> tuple[float, float]:
    """Expanded percentile bootstrap interval of ``mean(b) − mean(a)`` (or of
    ``ln(mean(b) / mean(a))``); samples with no spread have the point as interval."""
    statistic = _log_ratio if log_ratio else _mean_diff
    if _spread(a, b, paired) == 0:  # every resample gives the same statistic
        point = float(statistic(b, a))
        return point, point
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample's mean may be 0: log 0
        res = stats.bootstrap(
            (b, a),
            statistic,
            paired=paired,
            vectorized=True,
            n_resamples=n_resamples,
            confidence_level=expanded_level(a, b, level, paired),
            method="percentile",
            rng=rng,
        )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def t_ci(a: np.ndarray, b: np.ndarray, *, paired: bool, level: float) -> tuple[float, float]:
    """The t-interval of ``mean(b) − mean(a)``: paired t, or Welch's (scipy's own)."""
    test = stats.ttest_rel(b, a) if paired else stats.ttest_ind(b, a, equal_var=False)
    ci = test.confidence_interval(level)
    return float(ci.low), float(ci.high)


def log_ratio_t_ci(
    a: np.ndarray, b: np.ndarray, *, paired: bool, level: float
) -> tuple[float, float]:
    """The t-interval of ``ln(mean(b) / mean(a))`` with the delta-method variance (Hedges,
    Gurevitch & Curtis 1999; paired: the per-seed linearisation; see the module docstring)."""
    ma, mb = a.mean(), b.mean()
    point = math.log(mb / ma)
    if paired:
        z = b / mb - a / ma
        se, df = z.std(ddof=1) / math.sqrt(len(z)), len(z) - 1
    else:
        va, vb = a.var(ddof=1) / (len(a) * ma**2), b.var(ddof=1) / (len(b) * mb**2)
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se else 1
    half = stats.t.ppf((1 + level) / 2, df) * se
    return point - half, point + half


def _j(df: float) -> float:
    """Hedges' exact small-sample correction J(df)."""
    return math.exp(special.gammaln(df / 2) - special.gammaln((df - 1) / 2)) / math.sqrt(df / 2)


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    r"""Hedges' g of ``b`` against ``a``: :math:`J(\nu)\,(\bar b - \bar a)/s_p`, exact :math:`J`."""
    df = len(a) + len(b) - 2
    sp2 = ((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / df
    d = b.mean() - a.mean()
    if sp2 == 0:
        return 0.0 if d == 0 else math.copysign(math.inf, d)
    return float(_j(df) * d / math.sqrt(sp2))


def power_effect(a: np.ndarray, b: np.ndarray, paired: bool) -> float:
    """The bias-corrected standardized effect the power analysis plans with (see above)."""
    if not paired:
        return hedges_g(a, b)
    d = b - a
    sd = d.std(ddof=1)
    return float(_j(len(d) - 1) * d.mean() / sd) if sd > 0 else math.nan


def tests(a: np.ndarray, b: np.ndarray, paired: bool) -> tuple[float, float]:
    """Two-sided p-values: (Welch's t, Mann–Whitney U) or (paired t, Wilcoxon signed-rank).

    Only for samples with spread (:data:`TESTED`): without it a t-test divides by zero.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if paired:
            p_t = stats.ttest_rel(b, a).pvalue
            d = b - a
            p_rank = stats.wilcoxon(d).pvalue if np.any(d != 0) else 1.0
        else:
            p_t = stats.ttest_ind(b, a, equal_var=False).pvalue
            p_rank = stats.mannwhitneyu(b, a, alternative="two-sided").pvalue
    return float(p_t), float(p_rank)


def seeds_needed(effect: float, *, paired: bool, alpha: float, power: float = POWER) -> int | None:
    """Seeds per job (pairs when paired) at which the comparison's two-sided t-test detects a
    standardized ``effect`` with ``power`` at level ``alpha`` (statsmodels' power analysis);
    at least :data:`MIN_SEEDS`, ``None`` without an effect or beyond :data:`MAX_SEEDS`."""
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


def holm(pvalues: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (Holm 1979, statsmodels' ``multipletests``); NaNs stay
    NaN and do not count towards the number of tests."""
    idx = [i for i, p in enumerate(pvalues) if math.isfinite(p)]
    out = [math.nan] * len(pvalues)
    if idx:
        # its Holm branch calls gc.collect(), 0.3-0.6 s per family in a process holding many
        # objects; frozen objects are skipped by the collector (and unfrozen right after)
        gc.freeze()
        try:
            adjusted = multipletests([pvalues[i] for i in idx], method="holm")[1]
        finally:
            gc.unfreeze()
        for i, p in zip(idx, adjusted):
            out[i] = float(p)
    return out


def _spread(a: np.ndarray, b: np.ndarray, paired: bool) -> float:
    """The seed-to-seed spread the test works with: of the differences paired, else of each."""
    return float(np.ptp(b - a) if paired else max(np.ptp(a), np.ptp(b)))


def _sd(x: np.ndarray) -> float:
    if len(x) < 2:
        return math.nan
    return 0.0 if np.ptp(x) == 0 else float(x.std(ddof=1))  # equal values: exactly 0


def compare_samples(
    a,
    b,
    *,
    paired: bool,
    level: float = 0.95,
    rng: np.random.Generator,
    n_resamples: int = 9999,
) -> Difference | None:
    """Everything the comparison table shows for one metric; ``None`` with no value on a side.

    ``seeds_needed`` is planned at ``alpha = 1 − level``; the engine re-plans it for a family of
    comparisons (Holm).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired and len(a) != len(b):
        raise ValueError(f"paired samples need equal lengths, got {len(a)} and {len(b)}")
    if min(len(a), len(b)) == 0:
        return None
    diff = float(b.mean() - a.mean())
    rel = float(b.mean() / a.mean() - 1) if positive(a, b) else math.nan
    nan = math.nan
    out = Difference(
        n_a=len(a), n_b=len(b), mean_a=float(a.mean()), mean_b=float(b.mean()), sd_a=_sd(a),
        sd_b=_sd(b), diff=diff, low=nan, high=nan, rel=rel, rel_low=nan, rel_high=nan, g=nan,
        p_t=nan, p_rank=nan, paired=paired, level=level, kind=FEW, interval="", effect=nan,
    )  # fmt: skip
    if min(len(a), len(b)) < MIN_SEEDS:
        return out
    if _spread(a, b, paired) == 0:
        out.kind, out.low, out.high = DETERMINISTIC, diff, diff
        out.rel_low = out.rel_high = rel
        return out
    out.kind, out.g, out.effect = TESTED, hedges_g(a, b), power_effect(a, b, paired)
    out.p_t, out.p_rank = tests(a, b, paired)
    out.seeds_needed = seeds_needed(out.effect, paired=paired, alpha=1 - level)
    if min(len(a), len(b)) < MIN_BOOTSTRAP:
        out.interval = "t"
        out.low, out.high = t_ci(a, b, paired=paired, level=level)
        log_low, log_high = (
            log_ratio_t_ci(a, b, paired=paired, level=level) if out.relative else (nan, nan)
        )
    else:
        out.interval = "bootstrap"
        boot = dict(paired=paired, level=level, rng=rng, n_resamples=n_resamples)
        out.low, out.high = bootstrap_ci(a, b, **boot)
        log_low, log_high = (
            bootstrap_ci(a, b, **boot, log_ratio=True) if out.relative else (nan, nan)
        )
    out.rel_low, out.rel_high = math.expm1(log_low), math.expm1(log_high)
    return out
