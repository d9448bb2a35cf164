"""TensorBoard tracking, read back with TensorBoard's own ``EventAccumulator``."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import (
    HISTOGRAMS,
    SCALARS,
    EventAccumulator,
)

from initsweep.files import read_jsonl
from initsweep.track.base import TrackedJob
from initsweep.track.naming import RunLayout
from initsweep.track.tensorboard import TensorBoardTracker
from tests.conftest import run_cli
from tests.test_wandb import of_type, runs_by_seed

SCHEMES = ("zeros", "ones", "uniform", "uniform_scaled", "normal_scaled", "keras_default")


def events(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir), size_guidance={HISTOGRAMS: 0, SCALARS: 0})
    acc.Reload()
    return acc


@pytest.mark.slow
def test_wandb_and_tensorboard_at_once_with_weight_histograms_at_init_and_each_epoch(tmp_path):
    # the third "done when": both trackers from one list of tracker options
    sweep = tmp_path / "sweep"
    res = run_cli(
        "-m",
        "experiment=fashion_mnist_schemes_twin",
        "tracker=[wandb,tensorboard]",
        "dataset.limit=300",
        "trainer.progress=false",
        f"hydra.sweep.dir={sweep}",
    )
    assert res.returncode == 0, res.stderr
    job_dirs = sorted(sweep.glob("[0-9]"))
    assert len(job_dirs) == len(SCHEMES)
    for job_dir in job_dirs:
        metrics = read_jsonl(job_dir / "metrics.jsonl")
        val_steps = sorted({r["step"] for r in metrics if "val/loss" in r})
        assert len(val_steps) == 3  # step 0 and the end of each of the twin's 2 epochs
        hists = {
            (h["seed"], h["step"], h["name"]): h
            for h in read_jsonl(job_dir / "histograms.jsonl")
            if h["kind"] == "weight"
        }
        # the W&B runs are there too, one per seed, finished
        wandb_runs = runs_by_seed(job_dir)
        assert sorted(wandb_runs) == [0, 1]
        for records in wandb_runs.values():
            assert of_type(records, "exit")[0]["exit_code"] == 0
        # one TensorBoard run per seed, named as the W&B run: tensorboard --logdir <sweep>
        # lists them as <job>/tensorboard/init=<scheme>,s<seed>
        runs = sorted(p.name for p in (job_dir / "tensorboard").iterdir())
        (scheme,) = {name.split(",")[0].removeprefix("init=") for name in runs}
        assert scheme in SCHEMES and runs == [f"init={scheme},s0", f"init={scheme},s1"]
        for seed in (0, 1):
            acc = events(job_dir / "tensorboard" / f"init={scheme},s{seed}")
            for layer in ("body.1.weight", "out.weight"):
                tb = acc.Histograms(f"weights/{layer}")
                assert [e.step for e in tb] == val_steps  # at init and after each epoch
                for e in tb:  # the same bins and counts as histograms.jsonl
                    h = hists[seed, e.step, layer]
                    assert list(e.histogram_value.bucket) == h["counts"]
                    assert list(e.histogram_value.bucket_limit) == pytest.approx(h["edges"][1:])
                    assert e.histogram_value.num == h["shape"][0] * h["shape"][1]
            assert "activations/body.1" in acc.Tags()["histograms"]
            mine = [
                (r["step"], r["val/acc"]) for r in metrics if r["seed"] == seed and "val/acc" in r
            ]
            tb_acc = [(e.step, e.value) for e in acc.Scalars("val/acc")]
            assert tb_acc == [(s, pytest.approx(v)) for s, v in mine]
            assert acc.Scalars("init/expected_loss")[0].step == 0


def test_a_resumed_run_shows_each_step_once(tmp_path):
    def log(first_step: int, value: float) -> None:
        job = TrackedJob(tmp_path, (0,), RunLayout("s", "a", "g", "run"), first_step=first_step)
        t = TensorBoardTracker(job)
        t.log_metrics(
            [
                {"seed": 0, "step": s, "epoch": 0, "train/loss": value}
                for s in range(first_step, 10)
            ]
        )
        t.finish()

    log(0, 1.0)  # a run killed after step 9, whose checkpoint was at step 4
    log(5, 2.0)  # the resumed run logs again from step 5
    points = [
        (e.step, e.value)
        for e in events(tmp_path / "tensorboard" / "run,s0").Scalars("train/loss")
    ]
    assert points == [(s, 1.0) for s in range(5)] + [(s, 2.0) for s in range(5, 10)]
