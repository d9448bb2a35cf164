"""The verdict rules: too few seeds, no spread, the log scale, chance, baselines per factor, and
a search's trials against its best one."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from initsweep.report.compare import analyse, comparison_section, section
from initsweep.report.compare.chance import chance
from initsweep.report.compare.verdict import verdict_cell
from initsweep.report.jobs import Study, varying_keys
from initsweep.report.section import Options
from tests.test_compare import fake_job, row, taus


def test_under_three_seeds_no_verdict_and_the_report_says_so_at_the_top(tmp_path):
    two = {0: 10.0, 1: 11.0}
    jobs = [fake_job(["init=a"], two), fake_job(["init=b"], {0: 6.0, 1: 6.5})]
    a = analyse(jobs)
    assert a.family == 0
    for r in a.rows:
        assert r.kind == "few" and math.isnan(r.contrast.p()) and not r.clear
        assert verdict_cell(r) == "no verdict: under 3 seeds"
    md, _, files = comparison_section(jobs, tmp_path)
    assert "| no verdict: under 3 seeds" in md and "forest.png" not in {f.name for f in files}
    for j in jobs:
        j.label = j.overrides["init"]
    sec = section(Study(tmp_path, jobs, varying_keys(jobs)), tmp_path / "r", Options())
    assert sec.alert.startswith("Too few seeds for any verdict: every job has 2 seed(s)")


def test_arms_without_spread_are_exact_without_a_p_value():
    same = {s: 10.0 for s in range(4)}  # every seed trains the same: no seed-to-seed spread
    jobs = [fake_job(["init=a"], same), fake_job(["init=b"], {s: 7.0 for s in range(4)})]
    r = row(analyse(jobs), "val/loss_final")
    assert r.kind == "exact" and math.isnan(r.contrast.p()) and not r.clear
    change, low, high = r.change()
    assert low == change == high < 0
    assert verdict_cell(r) == "exact: lower, better (no spread)"


def test_a_relative_change_is_a_t_interval_of_the_log_ratio_and_never_passes_minus_100():
    # three seeds far apart: a linear interval would reach -162%
    a, b = [40.0, 60.0, 80.0], [5.0, 12.0, 19.0]
    jobs = [fake_job(["init=a"], dict(enumerate(a))), fake_job(["init=b"], dict(enumerate(b)))]
    for job, values in zip(jobs, (a, b)):  # the final objective of each seed, as written
        for s, v in zip(job.summary["seeds"], values):
            s["metrics"]["val/loss"] = v
    r = row(analyse(jobs), "val/loss_final")
    assert r.relative and r.contrast.paired
    d = np.log(b) - np.log(a)  # paired by seed: the one-sample t of the log ratios
    ref = stats.ttest_1samp(d, 0).confidence_interval(r.ci_level)
    assert r.change()[1:] == pytest.approx((math.expm1(ref.low), math.expm1(ref.high)))
    assert -1 < r.change()[1] < r.change()[0] < r.change()[2]


def test_a_quantity_that_can_be_negative_is_compared_as_a_plain_difference():
    jobs = [fake_job(["init=a"], taus(10)), fake_job(["init=b"], taus(10))]
    nll = ([-0.2, 0.1, -0.4, 0.3, -0.1, 0.0], [-1.1, -0.8, -0.9, -1.4, -1.0, -1.2])
    for job, values in zip(jobs, nll):  # Gaussian NLLs
        for s, v in zip(job.summary["seeds"], values):
            s["metrics"]["val/loss"] = v
    r = row(analyse(jobs), "val/loss_final")
    assert not r.relative
    assert r.change()[0] == pytest.approx(np.mean(nll[1]) - np.mean(nll[0]))
    assert r.change()[2] < 0 and r.clear


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


def test_two_arms_at_chance_are_not_ranked():
    # val/acc of these fake jobs is about 0.96-0.97, and val is 97% one class: a guess scores that
    data = {"val_class_counts": [970, 30]}
    jobs = [
        fake_job(["init=a"], taus(10), data=data),
        fake_job(["init=b"], taus(10, effect=0.8), data=data),
    ]
    a = analyse(jobs)
    r = row(a, "val/acc_final")
    assert r.at_chance == (True, True) and r.kind == "chance"
    assert verdict_cell(r) == "both at chance"
    assert row(a, "val/loss_final").at_chance == (False, False)


@pytest.mark.parametrize(
    "values, config, chosen, why",
    [
        (["zeros", "keras_default", "ones"], {"report": {"baseline": "init=ones"}}, "ones", "preset"),
        (["zeros", "keras_default", "ones"], {"report": {"baseline": "init=xavier"}}, "keras_default",
         "default scheme; the preset's report.baseline=init=xavier is not among the jobs"),
        (["zeros", "pytorch_default"], {}, "pytorch_default", "default scheme"),
        (["zeros", "ones"], {}, "zeros", "the first level of init"),
    ],
)  # fmt: skip
def test_the_baseline_is_the_presets_then_a_default_scheme_then_the_first(
    values, config, chosen, why
):
    jobs = [fake_job([f"init={v}"], taus(10), config=dict(config)) for v in values]
    (f,) = analyse(jobs).factors
    assert (f.key, f.baseline) == ("init", chosen) and why in f.why
    # a value matches as a number too: the preset's 0 is the sweep's 0.0
    gates = [fake_job([f"bias.forget_gate={g}"], taus(10)) for g in ("1.0", "0.0")]
    for j in gates:
        j.config["report"] = {"baseline": "bias.forget_gate=0"}
    assert analyse(gates).factors[0].baseline == "0.0"


def test_every_factor_has_its_own_baseline_from_the_option_or_the_preset():
    cells = [("he", "prior"), ("he", "zeros"), ("glorot", "prior"), ("glorot", "zeros")]
    jobs = [fake_job([f"init={i}", f"bias={b}"], taus(10)) for i, b in cells]
    got = {f.key: (f.baseline, f.why) for f in analyse(jobs).factors}
    assert got == {"init": ("he", "the first level of init"), "bias": ("zeros", "the usual bias")}
    both = analyse(jobs, baseline=["init=glorot", "bias=prior"]).factors
    assert [(f.key, f.baseline, f.why) for f in both] == [
        ("init", "glorot", "--baseline"), ("bias", "prior", "--baseline")]  # fmt: skip
    for j in jobs:  # a preset may name one per factor, as a list
        j.config["report"] = {"baseline": ["init=glorot"]}
    assert [f.baseline for f in analyse(jobs).factors] == ["glorot", "zeros"]


def test_a_search_compares_its_trials_with_the_best_by_their_searched_values(tmp_path):
    gains = {0: ("1.6053958873434", 1.0), 1: ("0.31", 2.0), 2: ("1.2311", 1.03), 3: ("4.4", 1.6)}
    jobs = [
        fake_job(
            [f"init.gain={g}", f"++search.trial={t}", "++search.study_name='s'"], taus(10 * e)
        )
        for t, (g, e) in gains.items()
    ]
    assert varying_keys(jobs) == ["init.gain"]  # search.trial is bookkeeping, not a factor
    a = analyse(jobs)
    assert a.search and a.factors[0].baseline == "init.gain=1.605"
    assert {r.metric for r in a.rows} == {"val/loss_final"}
    assert [r.level for r in a.rows] == ["init.gain=0.31", "init.gain=1.2311", "init.gain=4.4"]
    assert a.family == 3 and all(r.ci_level == pytest.approx(1 - 0.05 / 3) for r in a.rows)
    md, _, _ = comparison_section(jobs, tmp_path)
    assert "each trial against the best one, init.gain=1.605" in md and "optimistic" in md
