"""The table a multirun ends with: the finished jobs ranked by their objective, from their files."""

from __future__ import annotations

import json

import yaml

from initsweep.multirun import sweep_table
from initsweep.summary import make_summary
from initsweep.train.loop import CopyState


def _job(path, overrides, finals, metric="val/loss", diverged=(), trainer=None):
    """A job dir as a job leaves it: summary.json (written by the job's own make_summary) and
    Hydra's .hydra/overrides.yaml."""
    copies = [CopyState(seed, final) for seed, final in enumerate(finals)]
    for seed in diverged:
        copies[seed].diverged_step = 3
    t = trainer or {"on_diverge": "ignore", "diverge_penalty": None}
    summary = make_summary(
        copies, metric, t["on_diverge"], t["diverge_penalty"], extra={"config": {"trainer": t}}
    )
    (path / ".hydra").mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps(summary))
    (path / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))


def _rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.splitlines()[3:]]


def test_jobs_are_ranked_best_first_with_mean_std_over_seeds(tmp_path):
    _job(tmp_path / "0", ["init=zeros", "seeds=[0,1]"], [{"val/loss": 2.0}, {"val/loss": 2.2}])
    _job(
        tmp_path / "1", ["init=orthogonal", "seeds=[0,1]"], [{"val/loss": 1.0}, {"val/loss": 1.4}]
    )
    (tmp_path / "2").mkdir()  # a job that failed before its summary: not ranked
    # a diverged seed does not count; a search's bookkeeping overrides are not the arm
    _job(
        tmp_path / "10", ["init=xavier_uniform", "seeds=[0,1]", "search.trial=3"],
        [{"val/loss": 1.5}, {"val/loss": float("nan")}], diverged=[1],
    )  # fmt: skip
    table = sweep_table(tmp_path)
    assert table.splitlines()[0] == (
        "3 jobs ranked by val/loss (lower is better), mean ± std over seeds"
    )
    assert _rows(table) == [
        ["1", "1", "init=orthogonal", "1.2000", "±", "0.2828", "2/2"],
        ["2", "10", "init=xavier_uniform", "1.5000", "1/2"],  # one seed: no spread to show
        ["3", "0", "init=zeros", "2.1000", "±", "0.1414", "2/2"],
    ]


def test_accuracy_ranks_highest_first_and_a_penalized_seed_counts(tmp_path):
    penalize = {"on_diverge": "penalize", "diverge_penalty": 0.0}
    _job(tmp_path / "0", ["lr=0.1"], [{"val/acc": 0.8}, {"val/acc": 0.9}], "val/acc")
    _job(
        tmp_path / "1", ["lr=1.0"], [{"val/acc": 0.95}, {}], "val/acc", diverged=[1],
        trainer=penalize,
    )  # fmt: skip
    rows = _rows(sweep_table(tmp_path))
    assert [r[:3] for r in rows] == [["1", "0", "lr=0.1"], ["2", "1", "lr=1.0"]]
    assert rows[1][3:] == ["0.4750", "±", "0.6718", "2/2"]  # (0.95 + 0) / 2: as the objective


def test_a_sweep_without_a_finished_job_has_no_table(tmp_path):
    (tmp_path / "0").mkdir()
    assert sweep_table(tmp_path) is None
