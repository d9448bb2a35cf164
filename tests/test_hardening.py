"""The reliability matrix (README "Reliability"): bad input, divergence, interruption, determinism,
safe configs, concurrency. Each row is one behaviour a long study depends on."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from initsweep.errors import ConfigError
from initsweep.files import read_jsonl
from initsweep.job import run
from tests.conftest import REPO, run_cli

QUICK = ["trainer.epochs=1", "trainer.progress=false"]

# --- bad input: one clear line naming the key and the value, before any work -----------------

BAD_CONFIG = [
    # (overrides, words the one-line message must contain)
    (["init.gain=-1"], ["init.gain", "-1"]),
    (["init.scale=-0.5"], ["init.scale", "-0.5"]),
    (["init.scale=0"], ["init.scale", "0"]),
    (["model.dropout=1.0"], ["model.dropout", "1.0"]),
    (["init=sparse", "init.k=1000"], ["k", "1000"]),
    (["dataset.imbalance.fractions=[1.5,1,1,1,1,1,1,1,1,1]"], ["dataset.imbalance.fractions"]),
    (["dataset.imbalance.ratio=0.5"], ["dataset.imbalance.ratio", "0.5"]),
    (["optimizer.lr=0"], ["optimizer.lr", "0"]),
    (["optimizer.lr=-0.1"], ["optimizer.lr", "-0.1"]),
    (["trainer.epochs=0"], ["trainer.epochs", "0"]),
    (["seeds=[]"], ["seeds", "[]"]),
    (["seeds=[1,1]"], ["seeds", "[1, 1]"]),
    (["+init.rules=[{pattern: nothing.*, scheme: zeros}]"], ["init.rules[0].pattern", "nothing"]),
    (["init=delta_orthogonal"], ["delta_orthogonal", "body.1.weight"]),
    (["model.hidden=[16,0]"], ["model.hidden", "[16, 0]", ">= 1"]),
    (["init=pytorch_default", "init.gain=2"], ["init.gain", "2", "takes no gain"]),
    (["trainer.device=tpu"], ["trainer.device", "tpu"]),
    (["objective=val/auc"], ["objective", "val/auc"]),
    (["dataset.val_fraction=1.5"], ["dataset.val_fraction", "1.5"]),
    (["dataset.limit=1"], ["dataset.limit", "1"]),
    (["trainer.batch_size=5000"], ["trainer.batch_size", "5000"]),
    (["trainer.log_every=0"], ["trainer.log_every", "0"]),
    (["tags=baseline"], ["tags", "baseline", "a list"]),
    # a class left with no samples: the prior bias would be log 0. Decision: an error, no floor
    (
        ["bias=prior", "dataset.imbalance.fractions=[0,1,1,1,1,1,1,1,1,1]"],
        ["prior", "no training"],
    ),
]


@pytest.mark.parametrize("overrides, words", BAD_CONFIG, ids=[" ".join(o) for o, _ in BAD_CONFIG])
def test_bad_config_value_is_one_line_naming_key_and_value(make_cfg, tmp_path, overrides, words):
    with pytest.raises(ConfigError) as err:
        run(make_cfg(*QUICK, *overrides))
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message
    # nothing was claimed finished
    assert not (tmp_path / "summary.json").exists()


@pytest.mark.parametrize(
    "override, key",
    [
        ("init=no_such_scheme", "init"),  # unknown group option
        ("trainer.epochs=abc", "trainer.epochs"),  # wrong type, caught by the schema
        ("init.gian=1.0", "gian"),  # a typo'd key
        ("init.gain=acr", "init.gain"),  # a number, act or null
        ("trainer.batch_size=1.5", "trainer.batch_size"),
    ],
)
def test_bad_override_fails_when_the_config_is_composed(make_cfg, override, key):
    with pytest.raises((HydraException, OmegaConfBaseException)) as err:
        make_cfg(override)
    assert key in str(err.value)


@pytest.mark.parametrize(
    "overrides, valid",
    [
        (["trainer.strategy=warp"], "auto, vectorized, sequential"),
        (["trainer.on_diverge=panic"], "ignore, penalize, fail"),
        (["trainer.loss=l3"], "auto, cross_entropy, bce, mse"),
        (["init.mode=fan_ot"], "fan_in, fan_out"),
        (["init.nonlinearity=relux"], "relu, leaky_relu"),
        (["init=variance_scaling", "init.distribution=gauss"], "truncated_normal"),
        (["tracker=wandb", "tracker.wandb.mode=offlin"], "offline, online, disabled"),
        # the bias rules' values come from the bias registry
        (["bias.hidden=zeroes"], "constant, default, zeros"),
        (["bias.output=priorr"], "mean, median, prior"),
    ],
)
def test_a_typo_in_an_enum_like_key_fails_at_compose_time_listing_the_values(
    make_cfg, overrides, valid
):
    # the schemas type these keys as enums: Hydra refuses the value before any job starts
    with pytest.raises((HydraException, OmegaConfBaseException)) as err:
        make_cfg(*overrides)
    key, value = overrides[-1].split("=")
    assert f"{key}={value}" in str(err.value)
    assert "expected one of" in str(err.value.__cause__) and valid in str(err.value.__cause__)


def _npz(tmp_path: Path, x, y, name="data.npz") -> str:
    path = tmp_path / name
    np.savez(path, x=np.asarray(x, dtype=np.float32), y=np.asarray(y))
    return str(path)


def _regression_data(n=60, d=4):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d))
    return x, x @ rng.normal(size=d)


@pytest.mark.parametrize(
    "spoil, words",
    [
        (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x), y), ["NaN"]),
        (lambda x, y: (x, np.where(np.arange(y.size) == 3, np.inf, y)), ["inf"]),
        (lambda x, y: (x, np.full_like(y, 2.5)), ["constant", "2.5"]),
    ],
    ids=["nan-features", "inf-targets", "constant-target"],
)
def test_bad_data_is_refused_before_training(make_cfg, tmp_path, spoil, words):
    x, y = spoil(*_regression_data())
    cfg = make_cfg(
        *QUICK,
        "dataset=npz",
        f"dataset.path={_npz(tmp_path, x, y)}",
        "dataset.task=regression",
        "trainer.batch_size=8",
    )
    with pytest.raises(ConfigError) as err:
        run(cfg)
    assert "dataset data" in str(err.value)
    for word in words:
        assert word in str(err.value)


def test_dataset_smaller_than_one_batch_is_refused(make_cfg):
    with pytest.raises(ConfigError, match=r"trainer.batch_size=64 .* only 4[0-9] samples"):
        run(make_cfg(*QUICK, "dataset.limit=60"))


def test_missing_npz_file_names_the_path(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="dataset.path=.*nope.npz.*no such file"):
        run(make_cfg(*QUICK, "dataset=npz", f"dataset.path={tmp_path / 'nope.npz'}"))


def test_missing_torchvision_files_offline_say_where_they_were_expected(make_cfg, tmp_path):
    cfg = make_cfg(
        *QUICK,
        "dataset=fashion_mnist",
        "dataset.download=false",
        f"paths.data_dir={tmp_path / 'data'}",
    )
    with pytest.raises(ConfigError) as err:
        run(cfg)
    assert str(tmp_path / "data") in str(err.value)


@pytest.mark.slow
def test_unwritable_output_dir_fails_in_one_line_and_writes_nothing(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    res = run_cli(*QUICK, f"hydra.run.dir={blocker}/run")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"initsweep: error: hydra.run.dir='{blocker}/run' is not writable ({blocker} is a file)"
    ]
    assert blocker.read_text() == "keep me"


def test_report_on_a_missing_dir_is_one_line(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            "from initsweep.cli import report; report()",
            str(tmp_path / "missing"),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2
    assert (
        res.stderr.strip() == f"initsweep-report: error: {tmp_path / 'missing'} is not a directory"
    )


def test_report_marks_damaged_jobs_and_keeps_going(make_cfg, tmp_path):
    from initsweep.report import make_report

    for name in ("good", "torn", "corrupt"):
        run(make_cfg(*QUICK, "seeds=[0,1]", output_dir=tmp_path / "sweep" / name))
    with open(tmp_path / "sweep" / "torn" / "metrics.jsonl", "a") as f:
        f.write('{"seed": 0, "step": 99, "tra')  # a writer killed mid-line
    (tmp_path / "sweep" / "torn" / "summary.json").unlink()
    (tmp_path / "sweep" / "corrupt" / "summary.json").write_text('{"status": "fin')
    result = make_report(tmp_path / "sweep")
    status = {j.name: j.status for j in result.study.jobs}
    assert status == {"corrupt": "corrupt", "good": "finished", "torn": "incomplete"}
    assert result.index.exists()


@pytest.mark.slow
def test_a_bad_job_in_a_multirun_leaves_the_finished_jobs_files_alone(tmp_path):
    res = run_cli("-m", *QUICK, "optimizer.lr=0.1,-1", f"hydra.sweep.dir={tmp_path}")
    assert res.returncode == 2
    assert "optimizer.lr=-1" in res.stderr and "Traceback" not in res.stderr
    summary = json.loads((tmp_path / "0" / "summary.json").read_text())
    assert summary["status"] == "finished" and math.isfinite(summary["objective"]["value"])
    assert not (tmp_path / "1" / "summary.json").exists()


# --- divergence -------------------------------------------------------------------------------

EXPLODE = [
    "experiment=deep_linear_explode_twin",
    "init=identity",
    "init.scale=1.5",
    "trainer.epochs=1",
    "trainer.progress=false",
    "seeds=[0,1]",
]


def test_exploding_scheme_flags_each_copy_with_its_step_and_the_job_stops(make_cfg, tmp_path):
    objective = run(make_cfg(*EXPLODE, "trainer.epochs=3"))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "diverged"  # stopped once every seed had: not "finished"
    assert summary["n_diverged"] == 2
    assert all(s["diverged"] and s["diverged_step"] >= 1 for s in summary["seeds"])
    epochs = {r["epoch"] for r in read_jsonl(tmp_path / "metrics.jsonl")}
    assert epochs == {0, 1}  # the epoch both diverged in, of three
    assert math.isnan(objective)  # every seed diverged: a NaN objective


@pytest.mark.parametrize(
    "policy, value", [("ignore", math.nan), ("fail", math.nan), ("penalize", 1000)]
)
def test_a_job_whose_seeds_all_diverge_has_no_value_unless_penalized(make_cfg, policy, value):
    # a search records a NaN trial as pruned (tests/test_search.py); partial divergence follows
    # the policy (tests/test_search.py::test_on_diverge_*)
    got = run(make_cfg(*EXPLODE, f"trainer.on_diverge={policy}", "trainer.diverge_penalty=1000"))
    assert got == value or (math.isnan(got) and math.isnan(value))


@pytest.mark.slow
def test_diverged_copies_print_one_line_each(tmp_path):
    res = run_cli(*EXPLODE, f"hydra.run.dir={tmp_path}")
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in (res.stdout + res.stderr).splitlines() if "diverged at step" in ln]
    assert len(lines) == 2  # one per copy: no flood of warnings


# --- interruption -----------------------------------------------------------------------------


def _job_args(out: Path) -> list[str]:
    # about two seconds an epoch: long enough to be stopped mid-run, short enough to finish
    return [
        "trainer.epochs=6",
        "trainer.batch_size=8",
        "model.hidden=[512,512]",
        "trainer.progress=false",
        "trainer.checkpoint_every=1",  # after each epoch, not by time: stopped after the first
        f"hydra.run.dir={out}",
    ]


def _wait_for_checkpoint(out: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (out / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_the_job_cleanly_and_a_rerun_resumes(tmp_path, signum):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "initsweep", *_job_args(out)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a suite started in the background (`pytest &`) ignores SIGINT, and
        # a child inherits that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    _wait_for_checkpoint(out, proc)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, stderr[-3000:]
    assert "Traceback" not in stderr and "interrupted by" in stderr
    # the metrics written so far are whole lines, the job says it was interrupted, no summary
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert all(json.loads(line) for line in lines)
    assert json.loads((out / "status.json").read_text()) == {"status": "interrupted"}
    assert not (out / "summary.json").exists()
    # the same command resumes from the last checkpoint and finishes; each point logged once
    res = run_cli(*_job_args(out))
    assert res.returncode == 0, res.stderr
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"
    assert not (out / "status.json").exists()
    points = [(r["seed"], r["step"], tuple(sorted(r))) for r in read_jsonl(out / "metrics.jsonl")]
    assert len(points) == len(set(points))
    assert max(r["epoch"] for r in read_jsonl(out / "metrics.jsonl")) == 6


# --- determinism ------------------------------------------------------------------------------


def _comparable(summary: dict) -> dict:
    summary = dict(summary)
    summary["config"] = {k: v for k, v in summary["config"].items() if k != "paths"}
    return summary


def test_same_config_twice_gives_identical_summaries(make_cfg, tmp_path):
    args = ("model.dropout=0.2", "optimizer=adam", "trainer.deterministic=true")
    run(make_cfg(*args, output_dir=tmp_path / "a"))
    run(make_cfg(*args, output_dir=tmp_path / "b"))
    a, b = (json.loads((tmp_path / d / "summary.json").read_text()) for d in "ab")
    assert _comparable(a) == _comparable(b)
    assert read_jsonl(tmp_path / "a" / "metrics.jsonl") == read_jsonl(
        tmp_path / "b" / "metrics.jsonl"
    )


# --- safe configs and files -------------------------------------------------------------------


@pytest.mark.slow
def test_a_config_cannot_run_arbitrary_code(tmp_path):
    marker = tmp_path / "pwned"
    res = run_cli(
        *QUICK,
        "dataset._target_=os.system",
        f"+dataset.command='touch {marker}'",
        f"hydra.run.dir={tmp_path}/run",
    )
    assert res.returncode == 2
    assert "os.system" in res.stderr and "Traceback" not in res.stderr
    assert not marker.exists()


def test_checkpoints_load_as_weights_only(make_cfg, tmp_path):
    import torch

    run(make_cfg(*QUICK))
    torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # no pickled code inside


@pytest.mark.slow
def test_no_secret_reaches_configs_logs_or_reports(tmp_path):
    secret = "fake-secret-0123456789abcdef0123456789abcdef"
    env = {**os.environ, "WANDB_API_KEY": secret, "WANDB_MODE": "offline"}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "initsweep",
            *QUICK,
            "tracker=wandb",
            "seeds=[0]",
            f"hydra.run.dir={tmp_path}/run",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from initsweep.cli import report; report()",
            str(tmp_path / "run"),
        ],
        check=True,
        capture_output=True,
    )
    leaked = [
        p
        for p in (tmp_path / "run").rglob("*")
        if p.is_file() and secret.encode() in p.read_bytes()
    ]
    assert leaked == []
    assert secret not in res.stdout + res.stderr


# --- concurrency ------------------------------------------------------------------------------


@pytest.mark.slow
def test_four_joblib_jobs_of_one_study_lose_no_trial(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    res = run_cli(
        "-m",
        "search=gain",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=4",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=4",
        "search.pruner=null",
        f"search.storage={storage}",
        "search.study_name=concurrent",
        *QUICK,
        "dataset.limit=300",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    assert res.returncode == 0, res.stderr
    trials = optuna.load_study(study_name="concurrent", storage=storage).trials
    assert len(trials) == 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


@pytest.mark.slow
def test_two_sweeps_started_together_get_distinct_dirs(tmp_path):
    cmd = [sys.executable, "-m", "initsweep", "-m", *QUICK, "dataset.limit=200", "seeds=[0]"]
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    sweeps = list((tmp_path / "outputs" / "multirun").glob("*/*"))
    assert len(sweeps) == 2
    assert all((s / "0" / "summary.json").exists() for s in sweeps)
