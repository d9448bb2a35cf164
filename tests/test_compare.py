"""Is the difference real? Intervals, tests, Holm, pairing, divergence, and the report section."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from statsmodels.stats.power import TTestIndPower, TTestPower

from initsweep.errors import ConfigError
from initsweep.report.compare import compare_jobs, comparison_section, section
from initsweep.report.compare.effects import (
    bootstrap_ci,
    compare_samples,
    hedges_g,
    holm,
    seeds_needed,
)
from initsweep.report.compare.verdict import verdict
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
    live = [s["metrics"]["val/loss"] for s in seeds if not s["diverged"]]
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


def taus(base, effect=1.0, spread=0.3, seed=0):
    """Per-seed time constants: a seed effect shared by every job (the same init draws)."""
    z = np.random.default_rng(seed).normal(size=len(SEEDS))
    return {s: base * effect * (1 + spread * zi) for s, zi in zip(SEEDS, z)}


def row(comps, metric, other=None):
    return next(
        r for r in comps.rows if r.metric == metric and (other is None or r.other == other)
    )


@pytest.mark.parametrize("paired, n", [(False, 5), (False, 10), (True, 10)])
def test_intervals_cover_a_known_shift_at_about_their_level(paired, n):
    # 200 draws of a shifted normal: the 95% interval should hold the true shift ~190 times
    # (paired with 5 seeds it holds it ~91% of the time: see initsweep/report/compare/effects.py)
    rng = np.random.default_rng(n)
    level, draws, shift = 0.95, 200, 0.7
    hits = 0
    for _ in range(draws):
        a = rng.normal(0.0, 1.0, n)
        b = (a if paired else rng.normal(0.0, 1.0, n)) + shift + rng.normal(0.0, 0.8, n)
        low, high = bootstrap_ci(a, b, paired=paired, level=level, rng=rng, n_resamples=499)
        hits += low <= shift <= high
    tolerance = 3 * math.sqrt(level * (1 - level) / draws)  # three binomial standard errors
    assert abs(hits / draws - level) <= tolerance, hits


@pytest.mark.parametrize("paired", [False, True])
def test_under_five_seeds_the_t_interval_still_covers_at_its_level(paired):
    # 3 seeds: a bootstrap has too few distinct resamples (~75% paired); the t-interval is exact
    rng = np.random.default_rng(3)
    draws, hits = 200, 0
    for _ in range(draws):
        a = rng.normal(0.0, 1.0, 3)
        b = (a if paired else rng.normal(0.0, 1.0, 3)) + 0.7 + rng.normal(0.0, 0.8, 3)
        res = compare_samples(a, b, paired=paired, rng=rng, n_resamples=99)
        hits += res.low <= 0.7 <= res.high
    assert res.interval == "t"
    assert abs(hits / draws - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / draws), hits


def test_identical_samples_are_deterministic_not_tested():
    a = np.array([2.1, 2.4, 1.9, 2.2, 2.0])
    rng = np.random.default_rng(0)
    same = compare_samples(a, a.copy(), paired=True, rng=rng, n_resamples=999)
    assert same.kind == "deterministic" and (same.low, same.diff, same.high) == (0.0, 0.0, 0.0)
    assert math.isnan(same.p_t) and math.isnan(same.p_rank) and math.isnan(same.g)
    assert same.seeds_needed is None and not same.excludes_zero
    # unpaired, the same values still give an interval around zero and p = 1
    loose = compare_samples(a, a[::-1].copy(), paired=False, rng=rng, n_resamples=999)
    assert loose.kind == "tested" and loose.low < 0 < loose.high
    assert loose.p_t == pytest.approx(1.0)


def test_holm_against_a_hand_computed_example():
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, max(0.04·1, 0.06) = 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # NaNs stay NaN and do not count towards m; adjusted values are capped at 1
    out = holm([0.2, math.nan, 0.6])
    assert out[0] == pytest.approx(0.4) and math.isnan(out[1]) and out[2] == pytest.approx(0.6)
    assert holm([0.7, 0.8]) == [1.0, 1.0]  # 0.7·2 capped at 1; never below an earlier value


def test_hedges_g_with_the_exact_small_sample_correction():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0, 5.0])
    # s_p² = (2·1 + 3·5/3) / 5 = 1.4; J(5) = Γ(2.5) / (√2.5 · Γ(2)) = 0.840750
    assert hedges_g(a, b) == pytest.approx(0.840750 * 1.5 / math.sqrt(1.4), rel=1e-5)


@pytest.mark.parametrize(
    "d, paired, need",
    [
        (0.5, False, 64),  # Cohen 1988, Table 2.4.1: d = 0.5, two-sided alpha 0.05, power 0.8
        (0.8, False, 26),  # ibid.: d = 0.8
        (0.5, True, 34),  # G*Power, one-sample (paired) t: d_z = 0.5 -> 34 pairs
        (5.0, True, 4),  # at 3 pairs the power is 0.53 at alpha 0.01 (below)
        (1e-4, False, None),  # beyond any realistic number of seeds
    ],
)
def test_seeds_needed_is_the_textbook_power_analysis(d, paired, need):
    alpha = 0.01 if d == 5.0 else 0.05
    assert seeds_needed(d, paired=paired, alpha=alpha) == need
    if need:  # 80% power at `need` seeds, not at one fewer (statsmodels' own power function;
        # one tail at alpha/2: the other tail's share is < 1e-6 here, and NaN in scipy at d = 5)
        analysis = TTestPower() if paired else TTestIndPower()

        def power(n):
            return analysis.power(d, n, alpha / 2, alternative="larger")

        assert power(need) >= 0.8 > power(need - 1)


def test_paired_by_seed_when_seeds_and_data_order_match_else_unpaired():
    # a large seed effect shared by both jobs and a small, consistent speed-up
    base, fast = taus(12, spread=0.4), taus(12, effect=0.9, spread=0.4)
    jobs = [fake_job(["bias=zeros"], base), fake_job(["bias=prior"], fast)]
    paired = row(compare_jobs(jobs, n_resamples=999), "train/loss_auc").result
    jobs[1] = fake_job(["bias=prior"], fast, data_seed=1)  # another data order: no pairing
    loose = row(compare_jobs(jobs, n_resamples=999), "train/loss_auc").result
    assert paired.paired and not loose.paired
    assert paired.diff == pytest.approx(loose.diff)
    # pairing removes the seed effect: a narrower interval that excludes zero
    assert paired.high < 0 and paired.high - paired.low < (loose.high - loose.low) / 3
    assert loose.low < 0 < loose.high


def test_identical_jobs_differ_by_exactly_zero():
    jobs = [fake_job(["name=a"], taus(10)), fake_job(["name=b"], taus(10))]
    comps = compare_jobs(jobs, n_resamples=999)
    assert comps.baseline.label == "name=a" and "first value of name" in comps.baseline.why
    assert len(comps.rows) >= 8
    for r in comps.rows:
        assert (r.result.low, r.result.diff, r.result.high) == (0, 0, 0), r.metric
        assert verdict(r).startswith("no difference in") and "deterministic" in verdict(r)


def test_several_schemes_against_one_baseline_are_holm_corrected():
    jobs = [fake_job([f"init={name}"], taus(10, effect=e)) for name, e in
            [("base", 1.0), ("a", 0.95), ("b", 0.7), ("c", 1.02)]]  # fmt: skip
    comps = compare_jobs(jobs, baseline="init=base", n_resamples=999)
    rows = [r for r in comps.rows if r.metric == "train/loss_auc"]
    assert [r.other for r in rows] == ["init=a", "init=b", "init=c"]
    assert all(r.family_size == 3 for r in rows)
    assert [r.p_t_holm for r in rows] == pytest.approx(holm([r.result.p_t for r in rows]))
    assert all(r.p_t_holm >= r.result.p_t for r in rows)


def test_a_clear_speed_up_reads_as_fewer_steps_with_its_interval():
    jobs = [fake_job(["bias=zeros"], taus(12)), fake_job(["bias=prior"], taus(12, effect=0.6))]
    comps = compare_jobs(jobs, n_resamples=999)
    r = row(comps, "steps_to_target")
    # the default target is a level every baseline seed reaches
    assert r.n_values == (6, 6) and r.target.metric == "train/loss"
    text = verdict(r)
    assert (
        text.startswith("bias=prior reaches train/loss ≤")
        and "fewer steps than bias=zeros" in text
    )
    assert "6/6 seeds paired" in text and text.endswith("better.")
    assert -0.55 < r.result.rel < -0.25 and r.result.rel_high < 0


def test_diverged_seeds_are_counted_and_shown():
    jobs = [fake_job(["init=a"], taus(10)), fake_job(["init=b"], taus(10), diverge=(2,))]
    comps = compare_jobs(jobs, n_resamples=999)
    final = row(comps, "val/loss_final")
    assert final.n_diverged == (0, 1) and final.result.n_b == 5
    assert "5/6 seeds paired (diverged: 1 vs 0)" in verdict(final)  # the other job first
    # the loss at init was measured before the divergence: all six seeds count
    assert row(comps, "train/loss@init").result.n_b == 6


def test_a_target_one_job_never_reaches_is_reported_not_dropped():
    jobs = [fake_job(["bias=zeros"], taus(10)), fake_job(["bias=prior"], taus(10, effect=8))]
    r = row(compare_jobs(jobs, n_resamples=999), "steps_to_target")
    assert r.result is None and r.n_missing == (0, 6)
    assert verdict(r).startswith("bias=prior reached train/loss ≤") and "in 0/6 seeds" in verdict(
        r
    )


def test_grid_compares_each_job_with_the_baseline_of_its_own_context():
    jobs = [fake_job([f"init={i}", f"bias={b}"], taus(10, effect=e)) for i, b, e in
            [("x", "zeros", 1.0), ("x", "prior", 0.8), ("y", "zeros", 1.5), ("y", "prior", 1.2)]]  # fmt: skip
    comps = compare_jobs(jobs, baseline="bias=zeros", n_resamples=999)
    auc = [r for r in comps.rows if r.metric == "train/loss_auc"]
    assert [(r.context, r.other) for r in auc] == [
        ("init=x", "bias=prior"),
        ("init=y", "bias=prior"),
    ]
    assert all(r.family_size == 1 for r in auc)  # one comparison per baseline job


@pytest.mark.parametrize("bad", ["bias=ones", "lr=0.1", "bias"])
def test_a_bad_baseline_fails_in_one_line_listing_the_choices(bad):
    jobs = [fake_job(["bias=zeros"], taus(10)), fake_job(["bias=prior"], taus(10))]
    with pytest.raises(ConfigError, match="bias=zeros, bias=prior") as e:
        compare_jobs(jobs, baseline=bad)
    assert str(e.value).startswith("--baseline=") and "\n" not in str(e.value)


def test_section_writes_table_csv_and_forest_plot(tmp_path):
    jobs = [fake_job([f"init={n}"], taus(10, effect=e)) for n, e in [("a", 1), ("b", 0.7), ("c", 1.3)]]  # fmt: skip
    md, page, files = comparison_section(jobs, tmp_path, baseline="init=a", n_resamples=999)
    assert {f.name for f in files} == {"comparison.csv", "speed.csv", "forest.png"}
    rows = list(csv.DictReader(open(tmp_path / "comparison.csv")))
    tables = md.count("\n### ")  # one table per metric, each with a header row
    assert tables == len({r["metric"] for r in rows}) == page.count("<h3>")
    assert len(rows) == md.count("\n| ") - tables == page.count("<tr>") - tables
    assert {r["other"] for r in rows} == {"init=b", "init=c"}
    assert "| other | baseline mean ± sd |" in md and "![forest plot" in md
    assert "init=b reaches train/loss" in md and "fewer steps" in md  # a verdict line
    assert "init=c reaches train/loss" not in md or "more steps" in md
    assert '<table class="comparison">' in page and 'src="forest.png"' in page
    assert len(list(csv.reader(open(tmp_path / "speed.csv")))) == 1 + 3 * len(SEEDS)
    import matplotlib.image

    assert matplotlib.image.imread(tmp_path / "forest.png").shape[1] > 600


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
    assert len(study.finished) == 4
    md, page, files = comparison_section(study.finished, tmp_path / "out", baseline="bias=zeros")
    assert "bias=prior [name=a]" in md and "bias=prior [name=b]" in md
    assert "3/3 seeds paired" in md and (tmp_path / "out" / "forest.png").exists()
    # the same config run twice (name=a vs name=b) trains the same: every difference is 0
    twins = compare_jobs(study.finished, baseline="name=a", n_resamples=999)
    assert twins.rows and all(r.result.diff == 0 == r.result.high for r in twins.rows)
    # the report's section adapter: title, page fragment, files, terminal text with verdicts
    sec = section(study, tmp_path / "out2", Options())
    assert sec.title == "Is the difference real?" and "- " in sec.text and sec.files


def test_jobs_that_differ_in_several_keys_at_once_have_nothing_to_compare(tmp_path):
    # an Optuna search moves gain and scale together: no job differs from another in one key
    jobs = [
        fake_job(["init.gain=1.0", "init.scale=1.0"], taus(10)),
        fake_job(["init.gain=2.0", "init.scale=0.5"], taus(10)),
    ]
    md, page, files = comparison_section(jobs, tmp_path, n_resamples=99)
    assert "nothing to compare" in md and "nothing to compare" in page and files == []
