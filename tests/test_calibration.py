"""Calibration of the verdicts, on seeds of a real job trained through the CLI (embedded digits).

- One contrast: a null comparison is clear at most at the nominal rate, and a planted effect is
  found about as often as the seeds-needed figure promised (per-seed values simulated from the
  real job's spread: the rules are location-scale invariant, so thousands of draws test the same
  code on numbers of the real size).
- A whole report: A/A studies of two factors (2 × 2 arms of one config on disjoint seeds of the
  real job) call anything clear, across all the report's verdicts, at most at the nominal rate.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats
from statsmodels.stats.power import TTestIndPower, TTestPower

from initsweep.cli import report
from initsweep.files import read_jsonl
from initsweep.report.compare import analyse
from initsweep.report.compare.contrast import POWER, paired, seeds_needed, unpaired
from initsweep.report.jobs import load_study
from initsweep.summary import aggregate
from tests.conftest import run_cli

LEVEL = 0.95
POOL = 80  # seeds of the real job the A/A arms are drawn from


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    """One real job of :data:`POOL` seeds (digits MLP, one epoch), trained through the CLI."""
    out = tmp_path_factory.mktemp("pool")
    seeds = ",".join(map(str, range(POOL)))
    res = run_cli(f"seeds=[{seeds}]", "trainer.epochs=1", "trainer.progress=false",
                  "model.hidden=[32]", f"hydra.run.dir={out}")  # fmt: skip
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="module")
def spread(pool) -> tuple[float, float]:
    """Mean and sample std over seeds of the real job's final val/loss."""
    values = [s["metrics"]["val/loss"] for s in json.loads((pool / "summary.json").read_text())
              ["seeds"]]  # fmt: skip
    assert len(set(values)) == POOL  # seeds differ: a real spread
    return float(np.mean(values)), float(np.std(values, ddof=1))


def share_clear(draw, n: int, pair: bool, trials: int) -> float:
    """The share of ``trials`` contrasts of ``draw(n)`` samples that come out clear."""
    hits = 0
    for _ in range(trials):
        a, b = draw(n)
        c = paired(b - a, a, b) if pair else unpaired([(a, b)])
        hits += c.p() < 1 - LEVEL  # one test: clear when its interval excludes no change
    return hits / trials


@pytest.mark.slow
@pytest.mark.parametrize("n", [3, 6])
def test_null_contrasts_are_clear_at_most_at_the_nominal_rate(spread, n):
    # two arms of the same configuration on disjoint seeds: unpaired, no true difference
    mean, sd = spread
    rng = np.random.default_rng(n)
    trials = 2000
    share = share_clear(lambda k: rng.normal(mean, sd, (2, k)), n, False, trials)
    hits = round(share * trials)  # not significantly above 1 - LEVEL (one-sided, at 0.001)
    assert stats.binomtest(hits, trials, 1 - LEVEL, alternative="greater").pvalue > 1e-3, share


@pytest.mark.slow
@pytest.mark.parametrize("pair", [False, True])
def test_a_planted_effect_is_found_at_the_promised_power(spread, pair):
    mean, sd = spread
    d = 1.5  # planted: 1.5 seed-to-seed standard deviations (paired: of the differences)
    n = seeds_needed(d, paired=pair, alpha=1 - LEVEL)
    analysis = TTestPower() if pair else TTestIndPower()
    promised = analysis.power(d, n, 1 - LEVEL)  # at least POWER at the integer n
    assert POWER <= promised < POWER + 0.1
    rng = np.random.default_rng(7)

    def draw(k):
        if pair:  # a shared per-seed effect three times the noise: pairing removes it
            a = mean + 3 * sd * rng.normal(size=k)
            return a, a + d * sd + sd * rng.normal(size=k)
        return rng.normal(mean, sd, k), rng.normal(mean + d * sd, sd, k)

    trials = 1000
    share = share_clear(draw, n, pair, trials)
    tolerance = 3 * math.sqrt(promised * (1 - promised) / trials)  # three Monte-Carlo SEs
    assert abs(share - promised) <= tolerance, (n, share, promised)


@pytest.fixture(scope="module")
def pool_files(pool) -> dict:
    """The pool job's files, read once."""
    read = {name: read_jsonl(pool / name) for name in ("metrics.jsonl", "histograms.jsonl")}
    return {
        **read,
        **{n: json.loads((pool / n).read_text()) for n in ("summary.json", "init.json")},
    }


def write_arm(pool: dict, out: Path, overrides: list[str], seeds: list[int], relabel: bool,
              full: bool) -> None:  # fmt: skip
    """A job dir holding ``seeds`` of the pool job's files (renumbered 0, 1, … when
    ``relabel``: the arms then look paired by seed, as arms of one sweep do); ``full``: with
    its histograms and init diagnostics, for the whole report's every section."""
    new = {s: (i if relabel else s) for i, s in enumerate(seeds)}
    summary = json.loads(json.dumps(pool["summary.json"]))
    summary["seeds"] = [
        {**s, "seed": new[s["seed"]]} for s in summary["seeds"] if s["seed"] in new
    ]
    for key in summary["aggregate"]:
        summary["aggregate"][key] = aggregate([s["metrics"][key] for s in summary["seeds"]])
    summary["objective"]["value"] = summary["aggregate"]["val/loss"]["mean"]
    summary["config"]["seeds"] = sorted(new.values())
    (out / ".hydra").mkdir(parents=True)
    (out / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (out / "summary.json").write_text(json.dumps(summary))
    for name in ("metrics.jsonl", "histograms.jsonl") if full else ("metrics.jsonl",):
        lines = [{**r, "seed": new[r["seed"]]} for r in pool[name] if r["seed"] in new]
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in lines))
    if full:
        init = dict(pool["init.json"])
        init["seeds"] = [{**s, "seed": new[s["seed"]]} for s in init["seeds"] if s["seed"] in new]
        (out / "init.json").write_text(json.dumps(init))


def aa_study(pool: dict, root: Path, rng, n: int, relabel: bool, full: bool = False) -> Path:
    """Four arms of one config (2 × 2: ``+arm`` × ``+copy``), each on its own ``n`` seeds."""
    seeds = rng.permutation(POOL)[: 4 * n].reshape(4, n)
    cells = [("one", "one"), ("one", "two"), ("two", "one"), ("two", "two")]
    for i, ((arm, copy), arm_seeds) in enumerate(zip(cells, seeds)):
        write_arm(pool, root / str(i), [f"+arm={arm}", f"+copy={copy}"],
                  sorted(int(s) for s in arm_seeds), relabel, full)  # fmt: skip
    return root


def clear_in_report(root: Path, out: Path) -> tuple[int, str]:
    """(clear rows of the report's comparison.csv, what it printed), through the CLI."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        report([str(root), "--out", str(out)])
    rows = list(csv.DictReader(open(out / "comparison.csv")))
    return sum(r["clear"] == "True" for r in rows), buf.getvalue()


@pytest.mark.slow
def test_a_whole_report_of_an_aa_study_calls_nothing_clear_above_the_nominal_rate(
    pool_files, tmp_path
):
    rng = np.random.default_rng(2024)
    n, reports, false_clear = 4, 300, 0
    for k in range(reports):
        root = aa_study(pool_files, tmp_path / f"aa{k}", rng, n, relabel=k % 2 == 0, full=k < 2)
        a = analyse(load_study(root).finished)
        assert a.family == 3  # arm, copy and their interaction: the primary question
        false_clear += any(r.clear for r in a.rows)
        if k < 2:  # the whole report through the CLI says what the analysis says
            clear, printed = clear_in_report(root, tmp_path / f"report{k}")
            assert clear == sum(r.clear for r in a.rows)
            assert ("clear:" in printed) == bool(clear) and "Bonferroni" in printed
    rate = false_clear / reports
    ci = stats.binomtest(false_clear, reports, 1 - LEVEL).proportion_ci(0.95)
    print(f"A/A whole reports: {false_clear}/{reports} with a clear verdict = {rate:.3f} "
          f"(95% CI {ci.low:.3f}-{ci.high:.3f}), nominal {1 - LEVEL:.2f}")  # fmt: skip
    # not significantly above the nominal rate (one-sided exact binomial test at 0.01)
    assert stats.binomtest(false_clear, reports, 1 - LEVEL, alternative="greater").pvalue > 0.01
