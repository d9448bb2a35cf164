"""Checkpoint and resume without SLURM: a job killed with SIGKILL and started again in the same
output dir continues from its last epoch and ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from initsweep.errors import ConfigError
from initsweep.files import read_jsonl
from initsweep.job import run
from initsweep.models import MLP
from initsweep.train.checkpoint import CHECKPOINT, load_checkpoint, truncate_logs
from initsweep.train.metrics import loss_fn
from initsweep.train.population import make_population
from tests.conftest import REPO, run_cli

# dropout and Adam: the checkpoint must carry the dropout RNG states and the optimizer moments
JOB = [
    "seeds=[0,1]",
    "trainer.epochs=4",
    "trainer.progress=false",
    "model.dropout=0.2",
    "optimizer=adam",
    "optimizer.lr=0.003",
    "trainer.checkpoint_every=1",  # after each epoch (by default: by time), to kill after one
]


def _population(init_seed: int, strategy: str):
    torch.manual_seed(init_seed)  # test only: two populations with different weights
    models = [MLP((8,), 3, hidden=(16,), dropout=0.5) for _ in range(2)]
    return make_population(
        models,
        functools.partial(torch.optim.Adam, lr=0.01),
        loss_fn("cross_entropy"),
        dropout_seeds=[11, 12],
        strategy=strategy,
    )


@pytest.mark.parametrize("strategy", ["sequential", "vectorized"])
def test_population_state_round_trips_through_a_weights_only_file(tmp_path, strategy):
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    a = _population(0, strategy)
    for _ in range(3):
        a.train_step(x, y)
    a.freeze(1)
    torch.save(a.state_dict(), tmp_path / "pop.pt")
    b = _population(1, strategy)
    b.load_state_dict(torch.load(tmp_path / "pop.pt", weights_only=True))
    # the restored copy takes the very same next steps: weights, Adam moments, dropout masks
    for _ in range(3):
        torch.testing.assert_close(
            a.train_step(x, y), b.train_step(x, y), rtol=0, atol=0, equal_nan=True
        )
    assert b.active == [True, False]


def test_truncate_logs_keeps_each_point_once_and_drops_a_torn_line(tmp_path):
    lines = [json.dumps({"seed": 0, "step": s, "train/loss": 1.0 / (s + 1)}) for s in range(8)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"seed": 0, "st')
    truncate_logs(tmp_path, 5)
    assert [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [0, 1, 2, 3, 4, 5]
    # a fresh start over a killed job's files (no checkpoint) logs everything again
    truncate_logs(tmp_path, -1)
    assert (tmp_path / "metrics.jsonl").read_text() == ""


def test_finished_job_returns_its_stored_objective(make_cfg, tmp_path):
    first = run(make_cfg("trainer.epochs=1", "seeds=[0]"))
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    # a re-run sweep skips the finished job: same objective, not one file touched
    assert run(make_cfg("trainer.epochs=1", "seeds=[0]")) == first
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == files
    # a different config never silently reuses the finished job's numbers
    with pytest.raises(ConfigError, match="optimizer.lr=0.5 .*lr=0.1"):
        run(make_cfg("trainer.epochs=1", "seeds=[0]", "optimizer.lr=0.5"))


def _start(out, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "initsweep", *JOB, *extra, f"hydra.run.dir={out}"]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.Popen(
        args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _no_duplicates(records: list[dict]) -> None:
    seen = [(r["seed"], r["step"], tuple(sorted(r))) for r in records]
    assert len(seen) == len(set(seen))


@pytest.mark.slow
def test_killed_job_resumes_from_its_checkpoint_and_matches_an_uninterrupted_run(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = _start(whole)  # runs alongside, on its own
    job = _start(killed)
    # --- kill -9 as soon as the first epoch's checkpoint is on disk
    deadline = time.monotonic() + 240
    while not (killed / CHECKPOINT).exists():
        assert job.poll() is None, job.stdout.read().decode()
        assert time.monotonic() < deadline, "no checkpoint after 240 s"
        time.sleep(0.02)
    os.kill(job.pid, signal.SIGKILL)
    job.wait()
    assert not (killed / "summary.json").exists()  # it really died mid-training
    epoch = load_checkpoint(killed)["epoch"]
    assert 1 <= epoch < 4
    with open(killed / "metrics.jsonl", "a") as f:  # as if it died halfway through a line
        f.write('{"seed": 1, "step": 99999, "val/lo')

    res = run_cli(*JOB, f"hydra.run.dir={killed}")
    assert res.returncode == 0, res.stderr
    assert f"from epoch {epoch} " in (killed / "train.log").read_text()
    assert reference.wait(timeout=240) == 0, reference.stdout.read().decode()

    # each point once, none half-written, and the very same points as the uninterrupted run
    metrics = read_jsonl(killed / "metrics.jsonl")
    _no_duplicates(metrics)
    assert metrics == read_jsonl(whole / "metrics.jsonl")
    a = json.loads((whole / "summary.json").read_text())
    b = json.loads((killed / "summary.json").read_text())
    # CPU, same seeds: the per-seed finals are equal exactly, not approximately
    assert b["seeds"] == a["seeds"]
    assert b["aggregate"] == a["aggregate"] and b["objective"] == a["objective"]
