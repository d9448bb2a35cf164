"""Do two factors interact? An F-test of their interaction on a full grid of jobs.

- **Paired** (every cell ran the same seeds with the same data order): a repeated-measures
  ANOVA with the seed as the block (subject), statsmodels'
  :class:`~statsmodels.stats.anova.AnovaRM`: the interaction ``A:B`` is tested against the
  ``A:B:seed`` residual, so an effect each seed shares between the cells of one level (the same
  initial weights under two bias rules) cancels, as it does in a paired difference. Seeds
  without a value in every cell are left out (the ANOVA needs a complete block).
- **Unpaired**: an ordinary least-squares model with every pairwise interaction,
  ``y ~ (A + B + …)**2``, and statsmodels' type II :func:`~statsmodels.stats.anova.anova_lm`.

Both read the same values as the level contrasts (:mod:`~initsweep.report.compare.contrast`):
on the log scale for positive metrics, so "no interaction" means the same *relative* change
under every level of the other factor.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass

import pandas as pd
import statsmodels.formula.api as smf
from statsmodels.stats.anova import AnovaRM, anova_lm

from initsweep.report.compare.contrast import EXACT, FEW, MIN_SEEDS, TESTED


@dataclass
class Interaction:
    keys: tuple[str, str]  # the two factors
    kind: str  # TESTED, FEW (under MIN_SEEDS complete seeds / values per cell) or EXACT
    f: float = math.nan
    df_num: float = math.nan
    df_den: float = math.nan
    p: float = math.nan
    method: str = ""

    @property
    def statistic(self) -> str:
        """ "F(2, 6) = 36.0" """
        return f"F({self.df_num:.0f}, {self.df_den:.0f}) = {self.f:.3g}"


def _complete(data: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The seeds with a finite value in every cell."""
    data = data[data["y"].map(math.isfinite)]
    n_cells = data[columns].drop_duplicates().shape[0]
    per_seed = data.groupby("seed")[columns].apply(lambda g: g.drop_duplicates().shape[0])
    keep = per_seed[per_seed == n_cells].index
    return data[data["seed"].isin(keep)]


def interactions(data: pd.DataFrame, keys: list[str], paired: bool) -> list[Interaction]:
    """Every pairwise interaction of ``keys``; ``data`` has one column per key (its level), a
    ``seed`` column and the value ``y``, one row per job and seed of a full grid."""
    cols = [f"f{i}" for i in range(len(keys))]  # formula-safe names for keys like init.gain
    data = data.rename(columns=dict(zip(keys, cols)))
    pairs = list(itertools.combinations(range(len(keys)), 2))
    blank = [Interaction((keys[i], keys[j]), FEW) for i, j in pairs]
    if paired:
        data = _complete(data, cols)
        if data["seed"].nunique() < MIN_SEEDS:
            return blank
        method = "repeated-measures ANOVA, seed as the block (statsmodels AnovaRM)"
    else:
        data = data[data["y"].map(math.isfinite)]
        if (
            data.groupby(cols)
            .size()
            .reindex(
                pd.MultiIndex.from_product([sorted(data[c].unique()) for c in cols]), fill_value=0
            )
            .min()
            < MIN_SEEDS
        ):
            return blank
        method = "OLS with pairwise interactions, type II ANOVA (statsmodels anova_lm)"
    if data["y"].std() == 0 or _residual_free(data, cols):
        return [Interaction(b.keys, EXACT) for b in blank]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' small-sample and divide chatter
        if paired:
            table = AnovaRM(data, "y", "seed", within=cols).fit().anova_table
            rows = {name: (r["F Value"], r["Num DF"], r["Den DF"], r["Pr > F"])
                    for name, r in table.iterrows()}  # fmt: skip
        else:
            terms = " + ".join(f"C({c})" for c in cols)
            fit = smf.ols(f"y ~ ({terms})**2", data=data).fit()
            table = anova_lm(fit, typ=2)
            den = fit.df_resid
            rows = {name.replace("C(", "").replace(")", ""): (r["F"], r["df"], den, r["PR(>F)"])
                    for name, r in table.iterrows()}  # fmt: skip
    out = []
    for (i, j), b in zip(pairs, blank):
        f, dfn, dfd, p = rows[f"{cols[i]}:{cols[j]}"]
        if not math.isfinite(p):
            out.append(Interaction(b.keys, EXACT, method=method))
            continue
        out.append(Interaction(b.keys, TESTED, float(f), float(dfn), float(dfd), float(p), method))
    return out


def _residual_free(data: pd.DataFrame, cols: list[str]) -> bool:
    """Every cell holds one value repeated: nothing varies within a cell, no error to test."""
    return bool((data.groupby(cols)["y"].std(ddof=0).fillna(0) == 0).all())
