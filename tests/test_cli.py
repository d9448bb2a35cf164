"""The command line as a user runs it: a multirun, and bad input that must fail in one line."""

from __future__ import annotations

import json
import sys

import pytest

from initsweep import cli
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


WRONG_TYPE = [
    (["optimizer.lr=fast"], ["optimizer.lr='fast' is invalid: must be a number"]),
    (["trainer.epochs=two"], ["trainer.epochs='two' is invalid: must be an integer"]),
    (
        ["-m", "optimizer.lr=fast,-1"],
        [
            "job 0: optimizer.lr='fast' is invalid: must be a number",
            "job 1: optimizer.lr=-1 is invalid: must be a number > 0",
            "2 of the jobs failed (the others ran): job 0: optimizer.lr='fast' is invalid: must "
            "be a number; job 1: optimizer.lr=-1 is invalid: must be a number > 0",
        ],
    ),
    # Hydra composes every job of a batch before the first runs: the sweep stops there
    (["-m", "trainer.epochs=1,two"], ["trainer.epochs='two' is invalid: must be an integer"]),
]


@pytest.mark.parametrize("args, lines", WRONG_TYPE, ids=[" ".join(a) for a, _ in WRONG_TYPE])
def test_a_value_of_the_wrong_type_is_one_line_and_exit_2(
    tmp_path, monkeypatch, capsys, args, lines
):
    # in process, as the console script runs it (Hydra's app, then initsweep's error boundary)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")  # the app sets it: restored after the test
    monkeypatch.setattr(cli.OutputDirCheck, "sweep_dir", None)
    dirs = [f"hydra.run.dir={tmp_path}/run", f"hydra.sweep.dir={tmp_path}/sweep"]
    monkeypatch.setattr(sys, "argv", ["initsweep-train", *QUICK, *dirs, *args])
    with pytest.raises(SystemExit) as exited:
        cli._app(cli._train)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    said = [line for line in err.splitlines() if line.startswith("initsweep: error: ")]
    assert said == [f"initsweep: error: {line}" for line in lines]
    assert not list(tmp_path.glob("**/summary.json"))
