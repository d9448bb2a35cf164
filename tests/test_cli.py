"""The command line as a user runs it: a multirun, and bad input that must fail in one line."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli

QUICK = ["trainer.epochs=1", "trainer.progress=false"]


@pytest.mark.slow
def test_multirun_gives_one_job_dir_per_combination(tmp_path):
    res = run_cli(
        "-m",
        "init=kaiming_normal,pytorch_default",
        "bias=zeros,prior",
        *QUICK,
        f"hydra.sweep.dir={tmp_path}",
    )
    assert res.returncode == 0, res.stderr
    summaries = sorted(tmp_path.glob("*/summary.json"))
    assert len(summaries) == 4
    jobs = {
        (s["config"]["init"]["name"], s["config"]["bias"]["name"])
        for s in (json.loads(p.read_text()) for p in summaries)
    }
    assert jobs == {
        (i, b) for i in ("kaiming_normal", "pytorch_default") for b in ("zeros", "prior")
    }


@pytest.mark.parametrize(
    "override, expected",
    [
        ("init=no_such_scheme", "init"),  # unknown group option: Hydra's own message
        ("trainer.epochs=abc", "trainer.epochs"),  # wrong type, caught by the schema at compose
        ("seeds=[]", "seeds"),
        ("optimizer.lr=-0.1", "optimizer.lr"),
        ("trainer.epochs=0", "trainer.epochs"),
        ("init.gain=-1", "init.gain"),
        ("objective=val/auc", "objective"),
    ],
)
def test_bad_input_fails_in_one_clear_line(tmp_path, override, expected):
    res = run_cli(*QUICK, override, f"hydra.run.dir={tmp_path}/run")
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert expected in res.stderr
    # no summary: nothing was claimed as finished
    assert not (tmp_path / "run" / "summary.json").exists()
