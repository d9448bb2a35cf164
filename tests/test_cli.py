"""The command line as a user runs it: a multirun, bad input that must fail in one line, and
the apps' own ``--help``. In process (the ``app`` fixture of ``tests/conftest.py``)."""

from __future__ import annotations

import json
import sys

import pytest

from initsweep import cli

QUICK = ["trainer.epochs=1", "trainer.progress=false"]


@pytest.mark.slow
def test_multirun_gives_one_job_dir_per_combination(app, tmp_path):
    res = app(
        "initsweep-train",
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
def test_bad_input_fails_in_one_clear_line(app, tmp_path, override, expected):
    res = app("initsweep-train", *QUICK, override, f"hydra.run.dir={tmp_path}/run")
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert expected in res.stderr
    # no summary: nothing was claimed as finished
    assert not (tmp_path / "run" / "summary.json").exists()


@pytest.mark.parametrize("name", ["initsweep-train", "initsweep-probe"])
def test_help_is_the_apps_own(app, name):
    res = app(name, "--help")
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert text.startswith(f"{name}: ")  # what the app does comes first, not Hydra's stock line
    assert "powered by Hydra" not in text
    # the groups a user picks, with their options; the internal schema groups are not options
    assert "\n  init: constant, deepnorm, delta_orthogonal," in text
    assert "hydra/launcher: " in text and "population" in text
    assert "schema" not in text
    examples = text.split("== Examples ==\n")[1].split("\n\n")[0].splitlines()
    assert len(examples) == 3 and all(e.startswith(name) for e in examples)
    assert "outputs/multirun/<date>/<time>/<job>/" in text  # where outputs go


def test_help_lists_the_options_of_your_own_config_dir(app, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "my_net.yaml").write_text("_target_: my_project.MyNet\n")
    res = app("initsweep-train", "--config-dir", str(tmp_path), "--help")
    assert res.returncode == 0, res.stderr
    assert "my_net" in next(line for line in res.stdout.splitlines() if "  model:" in line)


def test_example_copies_a_project_and_refuses_a_used_dir(app, tmp_path):
    res = app("initsweep-example", "arrival_time", str(tmp_path / "proj"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "proj" / "conf" / "experiment" / "arrival_bias.yaml").is_file()
    assert (tmp_path / "proj" / "arrival_time" / "model.py").is_file()
    assert "initsweep-train --config-dir conf -m experiment=arrival_bias" in res.stdout
    again = app("initsweep-example", "arrival_time", str(tmp_path / "proj"))
    assert again.returncode == 2 and "not an empty directory" in again.stderr
    unknown = app("initsweep-example", "nope", str(tmp_path / "other"))
    assert unknown.returncode == 2 and "arrival_time" in unknown.stderr
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("name", ["initsweep-train", "initsweep-probe"])
def test_the_help_examples_compose(app, name, tmp_path):
    from tests.docs_blocks import commands, compose

    text = app(name, "--help").stdout
    examples = text.split("== Examples ==\n")[1].split("\n\n")[0]
    for argv in commands(examples):  # every job of each example composes, as in the docs
        compose(argv[0], argv[1:], tmp_path, {})


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
