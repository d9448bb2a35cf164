"""Calibration of the verdicts: null comparisons are "clear" at most at the nominal rate, and a
planted effect is found about as often as the seeds-needed figure promised.

The per-seed values are simulated from the spread of a real job (the final val/loss of 8 seeds
of a small digits MLP): thousands of real jobs would take minutes; the verdict depends on the
values only, and its rules are location-scale invariant, so the simulation tests the same code
on numbers of the real size.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from scipy import stats
from statsmodels.stats.power import TTestIndPower, TTestPower

from initsweep.config import CONF_DIR
from initsweep.job import run
from initsweep.report.compare.effects import POWER, compare_samples, seeds_needed

LEVEL = 0.95


@pytest.fixture(scope="module")
def spread(tmp_path_factory) -> tuple[float, float]:
    """Mean and sample std over seeds of a real job's final val/loss."""
    out = tmp_path_factory.mktemp("job")
    overrides = ["seeds=[0,1,2,3,4,5,6,7]", "trainer.epochs=1", "trainer.progress=false"]
    with initialize_config_dir(config_dir=str(CONF_DIR)):
        cfg = compose("train", overrides=[*overrides, "model.hidden=[32]"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    run(cfg)
    seeds = json.loads((out / "summary.json").read_text())["seeds"]
    values = [s["metrics"]["val/loss"] for s in seeds]
    assert len(set(values)) == 8  # seeds differ: a real spread
    return float(np.mean(values)), float(np.std(values, ddof=1))


def share_clear(draw, n: int, paired: bool, trials: int, rng) -> float:
    """The share of ``trials`` comparisons of ``draw(n)`` samples that come out clear."""
    hits = 0
    for _ in range(trials):
        a, b = draw(n)
        r = compare_samples(a, b, paired=paired, level=LEVEL, rng=rng, n_resamples=499)
        hits += r.clear(r.p_t)  # one comparison: Holm leaves its p-value as it is
    return hits / trials


@pytest.mark.slow
@pytest.mark.parametrize("n", [3, 6])  # the t-interval path and the bootstrap path
def test_null_comparisons_are_clear_at_most_at_the_nominal_rate(spread, n):
    # two arms of the same configuration on disjoint seeds: unpaired, no true difference
    mean, sd = spread
    rng = np.random.default_rng(n)
    trials = 600
    share = share_clear(lambda k: rng.normal(mean, sd, (2, k)), n, False, trials, rng)
    # not significantly above 1 - LEVEL (one-sided exact binomial test at 0.001)
    hits = round(share * trials)
    assert stats.binomtest(hits, trials, 1 - LEVEL, alternative="greater").pvalue > 1e-3, share


@pytest.mark.slow
@pytest.mark.parametrize("paired", [False, True])
def test_a_planted_effect_is_found_at_the_promised_power(spread, paired):
    mean, sd = spread
    d = 1.5  # planted: 1.5 seed-to-seed standard deviations (paired: of the differences)
    n = seeds_needed(d, paired=paired, alpha=1 - LEVEL)
    analysis = TTestPower() if paired else TTestIndPower()
    promised = analysis.power(d, n, 1 - LEVEL)  # at least POWER at the integer n
    assert POWER <= promised < POWER + 0.1
    rng = np.random.default_rng(7)

    def draw(k):
        if paired:  # a shared per-seed effect three times the noise: pairing removes it
            a = mean + 3 * sd * rng.normal(size=k)
            return a, a + d * sd + sd * rng.normal(size=k)
        return rng.normal(mean, sd, k), rng.normal(mean + d * sd, sd, k)

    trials = 400
    share = share_clear(draw, n, paired, trials, rng)
    tolerance = 3 * math.sqrt(promised * (1 - promised) / trials)  # three Monte-Carlo SEs
    assert abs(share - promised) <= tolerance, (n, share, promised)
