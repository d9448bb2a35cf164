"""The verdict rules: too few seeds, deterministic arms, log-ratio intervals, chance, baselines,
and a search's trials against its best one."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from initsweep.report.compare import compare_jobs, comparison_section, section
from initsweep.report.compare.chance import chance
from initsweep.report.compare.effects import compare_samples
from initsweep.report.compare.forest import not_drawn
from initsweep.report.compare.verdict import verdict
from initsweep.report.jobs import Study, varying_keys
from initsweep.report.section import Options
from tests.test_compare import fake_job, row, taus

RNG = np.random.default_rng(0)


def test_under_three_seeds_no_verdict_and_the_report_says_so_at_the_top(tmp_path):
    two = {0: 10.0, 1: 11.0}
    jobs = [fake_job(["init=a"], two), fake_job(["init=b"], {0: 6.0, 1: 6.5})]
    comps = compare_jobs(jobs, n_resamples=99)
    for r in comps.rows:
        assert r.result.kind == "few" and math.isnan(r.result.p_t) and math.isnan(r.result.low)
        assert "no verdict, it needs at least 3 seeds" in verdict(r)
    md, page, files = comparison_section(jobs, tmp_path, n_resamples=99)
    lines = [line for line in md.splitlines() if line.startswith("- ")]
    assert lines == [
        "- No verdict for init=b against init=a: 2 seed(s) per job, and a verdict needs at "
        "least 3 (seeds='[0,1,2]')."
    ]
    assert "forest.png" not in {f.name for f in files}  # nothing it could draw
    for j in jobs:
        j.label = j.overrides["init"]
    sec = section(Study(tmp_path, jobs, varying_keys(jobs)), tmp_path / "r", Options())
    assert sec.alert.startswith("Too few seeds for any verdict: every job has 2 seed(s)")


def test_arms_without_spread_are_deterministic_without_a_p_value():
    same = {s: 10.0 for s in range(4)}  # every seed trains the same: no seed-to-seed spread
    jobs = [fake_job(["init=a"], same), fake_job(["init=b"], {s: 7.0 for s in range(4)})]
    r = row(compare_jobs(jobs, n_resamples=99), "val/loss_final")
    assert r.result.kind == "deterministic" and math.isnan(r.p_t_holm)
    assert r.result.low == r.result.diff == r.result.high < 0
    text = verdict(r)
    assert "lower final val/loss than init=a in every seed" in text
    assert "no test applies" in text and "p " not in text and text.endswith("better.")


def test_a_relative_interval_of_a_positive_quantity_never_passes_minus_100_percent():
    # the "steps to reach: -79% (95% CI [-132, -26]%)": 3 seeds, far apart
    a, b = np.array([40.0, 60.0, 80.0]), np.array([5.0, 12.0, 19.0])
    r = compare_samples(a, b, paired=False, rng=RNG)
    assert r.interval == "t" and r.low / a.mean() < -1  # the old, linear interval: -162%
    # Hedges, Gurevitch & Curtis 1999: ln(mb/ma) ± t · sqrt(sa²/(na ma²) + sb²/(nb mb²)),
    # Welch–Satterthwaite degrees of freedom
    va, vb = a.var(ddof=1) / (3 * a.mean() ** 2), b.var(ddof=1) / (3 * b.mean() ** 2)
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    ln = math.log(b.mean() / a.mean())
    assert (r.rel_low, r.rel_high) == pytest.approx((math.expm1(ln - half), math.expm1(ln + half)))
    assert -1 < r.rel_low < r.rel < r.rel_high
    # paired: the variance of b_i/mb - a_i/ma, n - 1 degrees of freedom
    p = compare_samples(a, b + np.array([0.0, 3.0, -1.0]), paired=True, rng=RNG)
    z = (b + [0.0, 3.0, -1.0]) / p.mean_b - a / p.mean_a
    half = stats.t.ppf(0.975, 2) * z.std(ddof=1) / math.sqrt(3)
    ln = math.log(p.mean_b / p.mean_a)
    assert (p.rel_low, p.rel_high) == pytest.approx((math.expm1(ln - half), math.expm1(ln + half)))
    # from 5 seeds the bootstrap of the log ratio: also never below -100%, whatever the spread
    for _ in range(20):
        x, y = RNG.lognormal(3, 1, 6), RNG.lognormal(2, 1.5, 6)
        assert compare_samples(x, y, paired=False, rng=RNG, n_resamples=199).rel_low > -1


def test_a_quantity_that_can_be_negative_gets_no_relative_difference():
    a, b = np.array([-0.2, 0.1, -0.4, 0.3]), np.array([-1.1, -0.8, -0.9, -1.4])  # Gaussian NLLs
    r = compare_samples(a, b, paired=False, rng=RNG)
    assert math.isnan(r.rel) and not r.relative and r.high < 0 and r.excludes_zero


def test_the_chance_bounds_are_the_binomial_and_mann_whitney_ones():
    facts = {"val_class_counts": [60] * 5 + [40] * 5}  # 500 samples, largest share 0.12
    c = chance("val/acc_final", facts, 0.13, 0.95)
    assert c.guess == 0.12 and c.n == 500
    k = stats.binom.ppf(0.95, 500, 0.12)  # a guess is right at most ~Binomial(500, 0.12) times
    assert c.bound == k / 500 and stats.binom.cdf(k, 500, 0.12) >= 0.95 > stats.binom.cdf(
        k - 1, 500, 0.12
    )
    assert c.at and not chance("val/acc_best", facts, 0.2, 0.95).at
    auc = chance("val/auc_final", {"val_class_counts": [90, 10]}, 0.6, 0.95)
    assert auc.bound == pytest.approx(0.5 + 1.6448536 * math.sqrt(101 / (12 * 900)))
    assert chance("val/loss_final", facts, 0.1, 0.95) is None  # a loss has no chance level
    assert chance("val/acc_final", None, 0.1, 0.95) is None  # an old summary: unknown


def test_two_arms_at_chance_are_not_ranked_nor_drawn(tmp_path):
    # val/acc of these fake jobs is about 0.96-0.97, and val is 97% one class: a guess scores that
    data = {"val_class_counts": [970, 30]}
    jobs = [
        fake_job(["init=a"], taus(10), data=data),
        fake_job(["init=b"], taus(10, effect=0.8), data=data),
    ]
    comps = compare_jobs(jobs, n_resamples=99)
    r = row(comps, "val/acc_final")
    assert r.at_chance == (True, True)
    assert "are both at chance" in verdict(r) and "not ranked" in verdict(r)
    assert "better" not in verdict(r) and "worse" not in verdict(r)
    assert "both arms at chance" in not_drawn(comps.rows)
    assert row(comps, "val/loss_final").at_chance == (False, False)


@pytest.mark.parametrize(
    "values, config, chosen, why",
    [
        (["zeros", "keras_default", "ones"], {"report": {"baseline": "init=ones"}}, "ones", "preset"),
        (["zeros", "keras_default", "ones"], {"report": {"baseline": "init=xavier"}}, "keras_default",
         "default scheme; the preset's report.baseline=init=xavier is not among the jobs"),
        (["zeros", "pytorch_default"], {}, "pytorch_default", "default scheme"),
        (["zeros", "ones"], {}, "zeros", "the first value of init"),
    ],
)  # fmt: skip
def test_the_baseline_is_the_presets_then_a_default_scheme_then_the_first(
    values, config, chosen, why
):
    jobs = [fake_job([f"init={v}"], taus(10), config=dict(config)) for v in values]
    b = compare_jobs(jobs, n_resamples=99).baseline
    assert (b.key, b.value) == ("init", chosen) and why in b.why
    # a value matches as a number too: the preset's 0 is the sweep's 0.0
    gates = [fake_job([f"bias.forget_gate={g}"], taus(10)) for g in ("1.0", "0.0")]
    for j in gates:
        j.config["report"] = {"baseline": "bias.forget_gate=0"}
    assert compare_jobs(gates, n_resamples=99).baseline.value == "0.0"


def test_a_search_compares_its_trials_with_the_best_by_their_searched_values(tmp_path):
    gains = {0: ("1.6053958873434", 1.0), 1: ("0.31", 2.0), 2: ("1.2311", 1.03), 3: ("4.4", 1.6)}
    jobs = [
        fake_job(
            [f"init.gain={g}", f"++search.trial={t}", "++search.study_name='s'"], taus(10 * e)
        )
        for t, (g, e) in gains.items()
    ]
    assert varying_keys(jobs) == ["init.gain"]  # search.trial is bookkeeping, not a factor
    comps = compare_jobs(jobs, n_resamples=99)
    assert comps.search and comps.baseline.label == "init.gain=1.605"
    assert {r.metric for r in comps.rows} == {"val/loss_final"}
    assert [r.other for r in comps.rows] == ["init.gain=0.31", "init.gain=1.2311", "init.gain=4.4"]
    assert all(
        r.family_size == 3 and r.baseline == "best trial init.gain=1.605" for r in comps.rows
    )
    md, _, _ = comparison_section(jobs, tmp_path, n_resamples=99)
    assert "against the best one, init.gain=1.605" in md and "optimistic" in md
