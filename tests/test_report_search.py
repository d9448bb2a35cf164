"""``initsweep-report`` on a real Optuna search: trials compared by their searched values, the
objective against the searched key with every seed, the held-out test of the best trials."""

from __future__ import annotations

import csv
import json

import pytest
from matplotlib.image import imread

from initsweep.report import make_report
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def gain_search(tmp_path_factory):
    """A 3-trial gain search, 3 seeds a trial, with a held-out test split."""
    tmp = tmp_path_factory.mktemp("search")
    res = run_cli(
        "-m", "search=gain", "hydra.sweeper.n_trials=3", "trainer.epochs=1",
        "trainer.progress=false", "dataset.limit=400", "dataset.test_fraction=0.2",
        "search.pruner=null", f"search.storage=sqlite:///{tmp / 'study.db'}",
        f"hydra.sweep.dir={tmp / 'sweep'}",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return tmp


@pytest.mark.slow
def test_report_of_a_search_compares_trials_with_the_best_across_seeds(gain_search):
    result = make_report(gain_search / "sweep", gain_search / "report")
    assert result.study.varying == ["init.gain"]  # search.trial is bookkeeping
    sections = {s.title: s for s in result.sections}
    compare = sections["Is the difference real?"]
    assert "nothing to compare" not in compare.text
    assert "each trial against the best one" in compare.text
    rows = list(csv.DictReader(open(gain_search / "report" / "comparison.csv")))
    assert [(r["factor"], r["paired"], r["n_level"]) for r in rows] == [("trial", "True", "3")] * 2
    # the objective against the searched key, every seed of every trial
    trials = sections["Search trials across seeds"]
    png = gain_search / "report" / "search_seeds.png"
    assert png in trials.files and imread(png).shape[1] > 400
    # the best trials with their held-out test value, as the jobs' summaries hold them
    best = min(
        (json.loads(p.read_text()) for p in (gain_search / "sweep").glob("*/summary.json")),
        key=lambda s: s["objective"]["value"],
    )
    test = best["aggregate"]["test/loss"]
    first = trials.text.splitlines()[3]
    assert first.startswith(str(best["search"]["trial"]))
    assert f"{test['mean']:.4g} ± {test['std']:.2g} (3)" in first
    assert "held-out test split, never used to choose it" in compare.text
