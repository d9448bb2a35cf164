"""W&B tracking, read back from W&B's own offline run files with ``wandb leet inspect --json``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

import initsweep.job as job
import initsweep.job.task as task
from initsweep.config import CONF_DIR
from initsweep.errors import ConfigError
from initsweep.files import read_jsonl
from initsweep.track.wandb import WandbTracker, job_type, run_id, study_group
from tests.conftest import run_cli

WANDB = str(Path(sys.executable).parent / "wandb")
TINY = ["seeds=[0,1]", "trainer.epochs=2", "model.hidden=[16]"]


def inspect(run_dir: Path) -> list[dict]:
    """Every record of one offline run, as W&B's own reader prints them."""
    res = subprocess.run(
        [WANDB, "leet", "inspect", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def of_type(records: list[dict], kind: str) -> list[dict]:
    return [r[kind] for r in records if r["type"] == kind]


def runs_by_seed(job_dir: Path) -> dict[int, list[dict]]:
    runs = {}
    for d in sorted((job_dir / "wandb").glob("offline-run-*")):
        records = inspect(d)
        runs[of_type(records, "run")[0]["config"]["update"]["seed"]] = records
    return runs


def final_summary(records: list[dict]) -> dict:
    out: dict = {}
    for s in of_type(records, "summary"):
        out.update(s["update"])
    return out


@pytest.fixture(scope="module")
def wandb_job(tmp_path_factory):
    """One finished job with tracker=wandb (two seeds, two epochs) and its runs, read back."""
    out = tmp_path_factory.mktemp("wandb_job")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("WANDB_MODE", raising=False)  # the default must be offline by itself
        with initialize_config_dir(config_dir=str(CONF_DIR)):
            cfg = compose(
                "train",
                overrides=[
                    "tracker=wandb",
                    "tracker.tags=[test]",
                    "trainer.progress=false",
                    *TINY,
                ],
            )
        with open_dict(cfg):
            cfg.paths.output_dir = str(out)
        job.run(cfg)
    return out, runs_by_seed(out)


@pytest.mark.slow
def test_one_offline_run_per_seed_named_grouped_and_configured(wandb_job):
    job_dir, runs = wandb_job
    # one run per seed, offline, inside the job's output dir
    assert sorted(runs) == [0, 1]
    for seed, records in runs.items():
        run = of_type(records, "run")[0]
        assert run["display_name"] == f"kaiming_normal-zeros-s{seed}"
        assert run["project"] == "initsweep"
        assert run["run_group"] == "default"  # a single run: the study's name
        assert run["job_type"] == "defaults"  # no HydraConfig under the compose API
        assert run["tags"] == ["test"]
        assert run["run_id"] == run_id(job_dir, seed)  # stable: a resumed job continues it
        config = run["config"]["update"]
        assert config["init"]["name"] == "kaiming_normal" and config["model"]["hidden"] == [16]
        # the run ended cleanly
        assert of_type(records, "exit")[0]["exit_code"] == 0


@pytest.mark.slow
def test_history_holds_every_metrics_jsonl_scalar_at_its_step(wandb_job):
    job_dir, runs = wandb_job
    metrics = read_jsonl(job_dir / "metrics.jsonl")
    for seed, records in runs.items():
        history = {h["item"]["_step"]: h["item"] for h in of_type(records, "history")}
        for r in (r for r in metrics if r["seed"] == seed):
            row = history[r["step"]]
            for key, value in r.items():
                if key not in ("seed", "step"):
                    assert row[key] == pytest.approx(value), (seed, r["step"], key)


@pytest.mark.slow
def test_histograms_at_init_and_every_epoch_and_step0_diagnostics(wandb_job):
    job_dir, runs = wandb_job
    init = json.loads((job_dir / "init.json").read_text())
    val_steps = sorted(
        {r["step"] for r in read_jsonl(job_dir / "metrics.jsonl") if "val/loss" in r}
    )
    for seed, records in runs.items():
        history = {h["item"]["_step"]: h["item"] for h in of_type(records, "history")}
        hist_steps = sorted(s for s, row in history.items() if "weights/out.weight._type" in row)
        # step 0 and the end of each of the 2 epochs (histogram_every=1)
        assert hist_steps == val_steps and len(hist_steps) == 3
        row = history[0]
        for key in ("weights/body.1.weight", "weights/out.bias", "activations/body.1"):
            assert row[f"{key}._type"] == "histogram"
            assert sum(row[f"{key}.values"]) > 0
        # the weight histogram counts every entry of the 16 x 64 matrix
        assert sum(row["weights/body.1.weight.values"]) == 16 * 64
        # step-0 diagnostics: expected vs measured loss, per-layer std
        expected = next(s for s in init["seeds"] if s["seed"] == seed)
        assert row["init/expected_loss"] == pytest.approx(expected["expected_loss"])
        assert row["init/measured_loss"] == pytest.approx(expected["measured_loss"])
        assert row["weight_std/body.1.weight"] > 0


@pytest.mark.slow
def test_summary_holds_finals_divergence_and_objective(wandb_job):
    job_dir, runs = wandb_job
    summary = json.loads((job_dir / "summary.json").read_text())
    for entry in summary["seeds"]:
        run_summary = final_summary(runs[entry["seed"]])
        assert run_summary["diverged"] is False
        assert run_summary["val/loss"] == pytest.approx(entry["metrics"]["val/loss"])
        assert run_summary["objective"]["value"] == pytest.approx(summary["objective"]["value"])


@pytest.mark.slow
def test_runs_finish_with_exit_code_1_when_the_job_fails(make_cfg, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("training blew up")

    monkeypatch.setattr(task, "fit", boom)  # a failure after the runs have started
    with pytest.raises(RuntimeError, match="blew up"):
        job.run(make_cfg("tracker=wandb", "tracker.mode=offline", *TINY))
    runs = runs_by_seed(tmp_path)
    assert sorted(runs) == [0, 1]
    for records in runs.values():
        # the run was closed (not left dangling) and marked failed
        assert of_type(records, "exit")[0]["exit_code"] == 1
        assert "init/expected_loss" in of_type(records, "history")[0]["item"]
    assert not (tmp_path / "summary.json").exists()


def test_mode_comes_from_wandb_mode_unless_set(make_cfg, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert make_cfg("tracker=wandb").tracker.mode == "disabled"
    assert make_cfg("tracker=wandb", "tracker.mode=offline").tracker.mode == "offline"
    monkeypatch.delenv("WANDB_MODE")
    assert make_cfg("tracker=wandb").tracker.mode == "offline"


def test_disabled_mode_writes_no_run(tmp_path):
    t = WandbTracker(tmp_path, [0], config={}, names=["x-s0"], mode="disabled")
    t.log_metrics([{"seed": 0, "step": 0, "epoch": 0, "train/loss": 1.0}])
    t.finish()
    assert not list(tmp_path.glob("wandb/offline-run-*"))


def test_unknown_mode_is_one_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"tracker.mode='sometimes'.*offline, online, disabled"):
        WandbTracker(tmp_path, [0], config={}, names=["x-s0"], mode="sometimes")


def test_job_type_drops_the_seeds_and_group_names_the_sweep():
    assert job_type(["init=xavier_uniform", "seeds=[0,1,2]", "bias=prior"]) == (
        "init=xavier_uniform,bias=prior"
    )
    assert job_type(["+seed=3"]) == "defaults"
    # W&B's 64-character limit; long ones keep a hash so that they stay distinct
    long_a, long_b = job_type([f"init.rules={'x' * 200}a"]), job_type([f"init.rules={'x' * 200}b"])
    assert len(long_a) == len(long_b) == 64 and long_a != long_b
    assert study_group("demo", None) == "demo"
    assert study_group("demo", "/r/outputs/multirun/2026-11-22/12-00-00") == (
        "demo:2026-11-22/12-00-00"
    )


@pytest.mark.slow
def test_multirun_job_types_are_the_overrides_without_seeds(tmp_path):
    res = run_cli(
        "-m",
        "tracker=wandb",
        "init=kaiming_normal,pytorch_default",
        "seeds=[0]",
        "trainer.epochs=1",
        f"hydra.sweep.dir={tmp_path}/sweep",
    )
    assert res.returncode == 0, res.stderr
    job_types, groups = set(), set()
    for job_dir in sorted((tmp_path / "sweep").glob("[0-9]")):
        (records,) = runs_by_seed(job_dir).values()
        run = of_type(records, "run")[0]
        job_types.add(run["job_type"])
        groups.add(run["run_group"])
    assert job_types == {
        f"tracker=wandb,init={i},trainer.epochs=1" for i in ("kaiming_normal", "pytorch_default")
    }
    assert groups == {f"default:{tmp_path.name}/sweep"}  # both jobs in one study
