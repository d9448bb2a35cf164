"""Is the difference real? Contrasts against scipy's t-tests, factorial designs, interactions
against statsmodels, one primary question, and the section's table, CSV and plot."""

from __future__ import annotations

import csv
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.anova import AnovaRM
from statsmodels.stats.power import TTestIndPower, TTestPower

from initsweep.errors import ConfigError
from initsweep.report.compare import analyse, comparison_section, section
from initsweep.report.compare.contrast import paired, seeds_needed, unpaired
from initsweep.report.compare.section import seeds_statement
from initsweep.report.compare.verdict import sentence, verdict_cell
from initsweep.report.jobs import Job
from tests.conftest import run_cli
from tests.test_speed import job_records

SEEDS = [0, 1, 2, 3, 4, 5]


def fake_job(overrides, taus, *, data_seed=0, diverge=(), steps=40, per_epoch=10, **extra):
    """A finished job whose seed s trains as ``2.3 · exp(-t / taus[s])`` (known speed);
    ``extra`` goes into its summary (``data``: the split facts, ``config``)."""
    curves = {
        s: [2.3 * math.exp(-t / tau) + 0.05 for t in range(steps + 1)] for s, tau in taus.items()
    }
    for s in diverge:  # blows up at step 15; the loop then stops logging its train loss
        curves[s] = curves[s][:15] + [math.inf] * (steps - 14)
    records = job_records(curves, per_epoch=per_epoch, log_every=5)
    records = [
        r for r in records if not (r["seed"] in diverge and r["step"] > 15 and "val/acc" not in r)
    ]
    seeds = [
        {
            "seed": s,
            "diverged": s in diverge,
            "diverged_step": 15 if s in diverge else None,
            "metrics": {"train/loss": curves[s][-1], "val/loss": curves[s][-1]},
        }
        for s in taus
    ]
    live = [s["metrics"]["val/loss"] for s in seeds if not s["diverged"]] or [math.nan]
    summary = {
        "status": "finished",
        "objective": {"metric": "val/loss", "direction": "minimize", "value": np.mean(live)},
        "seeds": seeds,
        "n_diverged": len(diverge),
        "aggregate": {"val/loss": {"mean": np.mean(live), "std": np.std(live), "n": len(live)}},
        "config": {"trainer": {"data_seed": data_seed, "batch_size": 64}},
    }
    summary.update(extra)
    summary["config"].setdefault("trainer", {"data_seed": data_seed, "batch_size": 64})
    return Job.of(overrides, summary, records)


def taus(base, effect=1.0, spread=0.3, seed=0, seeds=SEEDS):
    """Per-seed time constants: a seed effect shared by every job (the same init draws)."""
    z = np.random.default_rng(seed).normal(size=len(seeds))
    return {s: base * effect * (1 + spread * zi) for s, zi in zip(seeds, z)}


def row(analysis, metric, label=None):
    return next(
        r for r in analysis.rows
        if r.metric == metric and (label is None or r.label == label) and r.interaction is None
    )  # fmt: skip


def test_a_paired_contrast_is_scipys_one_sample_t_on_the_seed_differences():
    rng = np.random.default_rng(1)
    a = rng.normal(2.0, 0.3, 6)
    b = a - 0.2 + rng.normal(0, 0.1, 6)
    c = paired(b - a, a, b)
    ref = stats.ttest_1samp(b - a, 0)
    assert c.p() == pytest.approx(ref.pvalue)
    for level in (0.95, 0.9875):
        assert c.interval(level) == pytest.approx(tuple(ref.confidence_interval(level)))


def test_an_unpaired_contrast_in_one_context_is_welchs_t():
    rng = np.random.default_rng(2)
    a, b = rng.normal(2.0, 0.3, 5), rng.normal(1.7, 0.6, 7)
    c = unpaired([(a, b)])
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert c.p() == pytest.approx(ref.pvalue)
    assert c.interval(0.95) == pytest.approx(tuple(ref.confidence_interval(0.95)))


def test_an_unpaired_contrast_over_contexts_averages_them_with_satterthwaite_df():
    rng = np.random.default_rng(3)
    pairs = [(rng.normal(0, s, 4), rng.normal(1, s, 5)) for s in (0.5, 2.0)]
    c = unpaired(pairs)
    # the mean of the two differences; its variance the sum of the four over 2²
    parts = [x.var(ddof=1) / len(x) / 4 for pair in pairs for x in pair]
    df = sum(parts) ** 2 / sum(p**2 / (len(x) - 1) for p, x in zip(parts, [*pairs[0], *pairs[1]]))
    assert c.estimate == pytest.approx(np.mean([b.mean() - a.mean() for a, b in pairs]))
    assert c.se == pytest.approx(math.sqrt(sum(parts))) and c.df == pytest.approx(df)
    t = stats.t.ppf(0.975, df) * c.se
    assert c.interval(0.95) == pytest.approx((c.estimate - t, c.estimate + t))


@pytest.mark.parametrize(
    "d, paired_, need",
    [
        (0.5, False, 64),  # Cohen 1988, Table 2.4.1: d = 0.5, two-sided alpha 0.05, power 0.8
        (0.8, False, 26),  # ibid.: d = 0.8
        (0.5, True, 34),  # G*Power, one-sample (paired) t: d_z = 0.5 -> 34 pairs
        (5.0, True, 4),  # at 3 pairs the power is 0.53 at alpha 0.01 (below)
        (1e-4, False, None),  # beyond any realistic number of seeds
    ],
)
def test_seeds_needed_is_the_textbook_power_analysis(d, paired_, need):
    alpha = 0.01 if d == 5.0 else 0.05
    assert seeds_needed(d, paired=paired_, alpha=alpha) == need
    if need:  # 80% power at `need` seeds, not at one fewer (statsmodels' own power function)
        analysis = TTestPower() if paired_ else TTestIndPower()

        def power(n):
            return analysis.power(d, n, alpha / 2, alternative="larger")

        assert power(need) >= 0.8 > power(need - 1)


def grid(bias_effect=(0.8, 0.85, 0.9), seeds=SEEDS):
    """A 3 × 2 grid of init schemes and bias rules; the prior bias speeds training up by
    ``bias_effect[i]`` under scheme i (an interaction when they differ)."""
    speed = {"kaiming_normal": 0.9, "xavier_uniform": 1.0, "pytorch_default": 1.1}
    jobs = []
    for bias in ("zeros", "prior"):
        for i, (init, e) in enumerate(speed.items()):
            e *= bias_effect[i] if bias == "prior" else 1.0
            jobs.append(fake_job([f"init={init}", f"bias={bias}"],
                                 taus(12, effect=e, seed=i, seeds=seeds)))  # fmt: skip
    return jobs


def test_a_grid_answers_both_factors_against_their_default_baselines():
    a = analyse(grid())
    assert [(f.key, f.baseline) for f in a.factors] == [
        ("init", "pytorch_default"),  # the frameworks' default scheme, no --baseline
        ("bias", "zeros"),  # the usual bias
    ]
    primary = [r for r in a.rows if r.primary and r.interaction is None]
    assert [r.label for r in primary] == [
        "init=kaiming_normal", "init=xavier_uniform", "bias=prior"]  # fmt: skip
    prior = row(a, "val/loss_final", "bias=prior")
    assert [label for label, _ in prior.contexts] == [
        "init=kaiming_normal", "init=xavier_uniform", "init=pytorch_default"]  # fmt: skip
    assert prior.relative and prior.contrast.paired and prior.clear and prior.change()[0] < 0
    # paired by seed within each init: the per-seed average of the three log ratios
    per_seed = np.mean([c.estimate for _, c in prior.contexts])
    assert prior.contrast.estimate == pytest.approx(per_seed)
    text = sentence(prior, a)
    assert text.startswith("bias=prior lowers final val/loss by ")
    assert "under each of the 3 levels of init" in text and len(text) < 250


def test_a_factor_is_judged_where_both_arms_have_values_and_a_diverged_arm_is_counted():
    # He's init diverges at both depths; depth is still judged, within fixup
    jobs = [
        fake_job([f"init={init}", f"model.depth={d}"], taus(12, effect=e * (init == "fixup") + 1),
                 diverge=SEEDS if init == "kaiming_normal" else ())
        for init in ("kaiming_normal", "fixup") for d, e in ((32, 0), (100, 0.2))
    ]  # fmt: skip
    a = analyse(jobs, baseline=["init=kaiming_normal"])
    depth, fixup = (
        row(a, "val/loss_final", "model.depth=100"),
        row(a, "val/loss_final", "init=fixup"),
    )
    assert depth.contrast.paired and depth.contrast.n == (6, 6) and depth.change()[0] > 0
    assert fixup.contrast is None and verdict_cell(fixup) == "no values: diverged 12/12 vs 0/12"


def test_the_interaction_is_statsmodels_repeated_measures_anova_on_the_log_values():
    jobs = grid(bias_effect=(0.6, 0.9, 1.0))  # the prior bias helps kaiming most
    a = analyse(jobs)
    (inter,) = [r for r in a.rows if r.interaction is not None]
    assert inter.factor == "init × bias" and inter.primary
    frame = pd.DataFrame(
        [{"init": j.overrides["init"], "bias": j.overrides["bias"], "seed": s["seed"],
          "y": math.log(s["metrics"]["val/loss"])} for j in jobs for s in j.summary["seeds"]]
    )  # fmt: skip
    ref = AnovaRM(frame, "y", "seed", within=["init", "bias"]).fit().anova_table
    assert inter.interaction.p == pytest.approx(ref.loc["init:bias", "Pr > F"])
    assert inter.interaction.df_num == 2 and inter.interaction.df_den == 10
    assert inter.clear and "interact on final val/loss" in sentence(inter, a)


def test_one_primary_family_bonferroni_and_estimates_elsewhere():
    a = analyse(grid())
    primary = [r for r in a.rows if r.primary]
    assert a.family == len(primary) == 4  # two init levels, one bias level, one interaction
    assert all(r.ci_level == pytest.approx(1 - 0.05 / 4) for r in primary)
    others = [r for r in a.rows if not r.primary]
    assert others and all(r.kind in ("estimate", "exact", "chance") for r in others)
    assert all(r.ci_level == 0.95 and not r.clear for r in others)
    # clear exactly when the shown interval excludes no change, on every primary row
    for r in primary:
        if r.interaction is None:
            _, low, high = r.change()
            assert r.clear == (low > 0 or high < 0), r.label


def test_paired_by_seed_when_seeds_and_data_order_match_else_unpaired():
    base, fast = taus(12, spread=0.4), taus(12, effect=0.9, spread=0.4)
    jobs = [fake_job(["bias=zeros"], base), fake_job(["bias=prior"], fast)]
    tight = row(analyse(jobs), "train/loss_auc")
    jobs[1] = fake_job(["bias=prior"], fast, data_seed=1)  # another data order: no pairing
    loose_analysis = analyse(jobs)
    loose = row(loose_analysis, "train/loss_auc")
    assert tight.contrast.paired and not loose.contrast.paired
    assert tight.contrast.estimate == pytest.approx(loose.contrast.estimate)
    low, high = tight.contrast.interval(0.95)
    l2, h2 = loose.contrast.interval(0.95)
    assert high < 0 and high - low < (h2 - l2) / 3 and l2 < 0 < h2
    assert loose.order_differs


def test_identical_jobs_differ_by_exactly_zero():
    jobs = [fake_job(["name=a"], taus(10)), fake_job(["name=b"], taus(10))]
    a = analyse(jobs)
    assert a.factors[0].baseline == "a" and "first level of name" in a.factors[0].why
    assert len(a.rows) >= 8 and a.family == 0
    for r in a.rows:
        assert r.kind == "exact" and r.contrast.estimate == 0, r.metric


@pytest.mark.parametrize("bad", ["bias=ones", "lr=0.1", "bias"])
def test_a_bad_baseline_fails_in_one_line_listing_the_choices(bad):
    jobs = [fake_job(["bias=zeros"], taus(10)), fake_job(["bias=prior"], taus(10))]
    with pytest.raises(ConfigError, match="bias=zeros, bias=prior") as e:
        analyse(jobs, baseline=bad)
    assert str(e.value).startswith("--baseline=") and "\n" not in str(e.value)


def test_section_writes_the_verdict_table_csv_and_forest_plot(tmp_path):
    md, page, files = comparison_section(grid(), tmp_path)
    assert {f.name for f in files} == {"comparison.csv", "speed.csv", "forest.png"}
    rows = list(csv.DictReader((tmp_path / "comparison.csv").read_text().splitlines()))
    table = [r for r in rows if not r["context"]]
    # the CSV holds the verdict table's rows: the primary table's and the other metrics'
    verdicts, others = md.split("### Each level in each context")[0].split("### Other metrics")
    lines = [line for part in (verdicts, others) for line in part.splitlines()[1:]
             if line.startswith("| ") and not line.startswith("| factor")]  # fmt: skip
    assert len(table) == len(lines)
    primary = [r for r in table if r["primary"] == "True"]
    assert {(r["factor"], r["level"]) for r in primary} == {
        ("init", "kaiming_normal"), ("init", "xavier_uniform"), ("bias", "prior"),
        ("init × bias", "")}  # fmt: skip
    for r in primary[:3]:  # the verdict follows from the interval, in the CSV too
        assert (r["clear"] == "True") == (float(r["ci_low"]) > 0 or float(r["ci_high"]) < 0)
    assert md.index("| factor") < md.index("Ranking on final val/loss")
    assert "Bonferroni" in md.split("\n\n")[1] and '<table class="verdicts">' in page
    import matplotlib.image

    assert matplotlib.image.imread(tmp_path / "forest.png").shape[1] > 600


def test_a_job_with_an_empty_metrics_file_does_not_fail_the_section(tmp_path):
    jobs = [fake_job(["init=a"], taus(10)), fake_job(["init=b"], taus(10, effect=0.7))]
    jobs[1].metrics = []  # finished, but its metrics.jsonl is gone
    md, _, _ = comparison_section(jobs, tmp_path)
    a = analyse(jobs)
    assert row(a, "val/loss_final").contrast.n == (6, 6)  # the summary's values stand
    assert row(a, "val/acc_best").contrast is None and "final val/loss" in md


def test_a_data_order_factor_is_flagged_and_not_tested(tmp_path):
    jobs = [fake_job(["trainer.data_seed=0"], taus(10), data_seed=0),
            fake_job(["trainer.data_seed=1"], taus(10, effect=0.7), data_seed=1)]  # fmt: skip
    for j in jobs:
        j.label = j.name
    a = analyse(jobs)
    r = row(a, "val/loss_final")
    assert r.kind == "order" and not r.clear and a.family == 0 and r.order_differs
    from initsweep.report.compare.section import order_alert

    assert "different data orders: trainer.data_seed=1" in order_alert(a)


def test_the_report_says_what_the_seeds_vary_and_for_which_data_order():
    jobs = [fake_job(["init=a"], taus(10)), fake_job(["init=b"], taus(10))]
    shared = seeds_statement(jobs)
    assert shared.startswith("Seeds vary the initial weights and the dropout masks")
    assert "share one data order (trainer.data_seed=0)" in shared
    for j in jobs:  # trainer.data_order=per_seed: every copy its own data order
        j.config["trainer"]["data_order"] = "per_seed"
    assert "(trainer.data_order=per_seed), so claims hold across data orders" in seeds_statement(
        jobs
    )


def test_jobs_that_differ_in_several_keys_at_once_have_nothing_to_compare(tmp_path):
    jobs = [
        fake_job(["init.gain=1.0", "init.scale=1.0"], taus(10)),
        fake_job(["init.gain=2.0", "init.scale=0.5"], taus(10)),
    ]
    md, page, files = comparison_section(jobs, tmp_path)
    assert "nothing to compare" in md and "nothing to compare" in page and files == []


@pytest.mark.slow
def test_section_renders_from_a_real_sweep(tmp_path):
    from initsweep.report.jobs import load_study
    from initsweep.report.section import Options

    res = run_cli(
        "-m", "bias=zeros,prior", "name=a,b", "trainer.epochs=2", "trainer.progress=false",
        "dataset.limit=600", "seeds=[0,1,2]", f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    study = load_study(tmp_path / "sweep")
    a = analyse(study.finished)
    # bias against zeros, name against its first level; every name=b job trains as name=a
    assert [(f.key, f.baseline) for f in a.factors] == [("bias", "zeros"), ("name", "a")]
    twins = [r for r in a.rows if r.factor == "name"]
    assert twins and all(r.kind == "exact" and r.contrast.estimate == 0 for r in twins)
    sec = section(study, tmp_path / "out", Options())
    assert sec.title == "Is the difference real?" and "| bias" in sec.text and sec.files
    assert "all seeds of a job share one data order (trainer.data_seed=0)" in sec.text
