r"""Is an accuracy or an AUC at chance? What a guess that ignores the input scores, plus noise.

The noise is that of the finite split the metric was measured on (``summary.json`` records each
split's class counts, :meth:`initsweep.data.DataBundle.summary`), at the report's ``level``:

- **accuracy**: a prediction that ignores the input is right with probability
  :math:`\sum_c q_c \pi_c \le \max_c \pi_c` (:math:`\pi`: the split's class shares, :math:`q`:
  how often it predicts each class; balanced classes give :math:`1/C`), so its count of correct
  answers on :math:`n` samples is at best Binomial(:math:`n`, :math:`\max_c \pi_c`). An
  accuracy is *at chance* when it is at or below that binomial's ``level`` quantile over
  :math:`n`: a guess gets there by luck with probability at least :math:`1 - \text{level}`.
- **AUC**: a score that ignores the label has AUC 0.5, and over :math:`n_+` positives and
  :math:`n_-` negatives its AUC (Mann–Whitney :math:`U / n_+ n_-`) has variance
  :math:`(n_+ + n_- + 1) / (12\,n_+ n_-)` (no ties); at chance when at or below
  :math:`0.5 + z_\text{level}` standard deviations (the normal approximation of :math:`U`).

An arm is at chance when its mean over seeds is. A metric of the best epoch (``_best``) is a
maximum over epochs, so a best at chance is a fortiori at chance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class Chance:
    """A metric's chance level on one split, and one arm's mean against it."""

    guess: float  # what a guess scores: the largest class share (accuracy) or 0.5 (AUC)
    bound: float  # the guess plus the split's noise at the level
    n: int  # samples in the split
    split: str  # "val" or "test"
    value: float  # the arm's mean

    @property
    def at(self) -> bool:
        return self.value <= self.bound

    def describe(self) -> str:
        """ "≤ 0.135: a guess scores 0.11 on 360 val samples, 0.135 by luck at 95%"."""
        return (
            f"≤ {self.bound:.3g}, what a guess that ignores the input scores "
            f"({self.guess:.3g}) plus luck on {self.n} {self.split} samples"
        )


def _split_metric(metric: str) -> tuple[str, str] | None:
    """``val/acc_final`` → ("val", "acc"); ``None`` for metrics without a chance level."""
    base = metric.split("@")[0].removesuffix("_final").removesuffix("_best")
    split, _, name = base.partition("/")
    return (split, name) if split in ("val", "test") and name in ("acc", "auc") else None


def chance(metric: str, facts: dict | None, value: float, level: float) -> Chance | None:
    """The chance level of ``metric`` from the job's split facts; ``None`` where there is none
    (not an accuracy or AUC, or a job written before ``summary.json`` kept its class counts)."""
    which = _split_metric(metric)
    counts = (facts or {}).get(f"{which[0]}_class_counts") if which else None
    if not counts or sum(counts) == 0 or not math.isfinite(value):
        return None
    split, name = which
    n = sum(counts)
    if name == "acc":
        guess = max(counts) / n
        bound = float(stats.binom.ppf(level, n, guess)) / n
    else:
        if len(counts) != 2 or min(counts) == 0:
            return None
        neg, pos = counts
        guess = 0.5
        bound = guess + stats.norm.ppf(level) * math.sqrt((n + 1) / (12 * pos * neg))
    return Chance(guess, bound, n, split, value)
