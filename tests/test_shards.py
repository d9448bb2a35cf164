"""Reproducible across launchers: the CPU shard layout is recorded, can be fixed in config, and a
resumed job keeps the layout it was written with, whatever thread count its launcher gives it.

Float32 kernels round differently for different shapes, so a population split into two blocks
gives other numbers than one block; the default layout follows the thread count, which the
basic launcher (all cores) and joblib (one thread per job) set differently.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
import torch

from initsweep.job import run
from initsweep.train.checkpoint import Checkpoint
from tests.conftest import run_cli

# checkpoints after each epoch (by default: by time), so a run stopped after epoch 1 resumes
QUICK = [
    "trainer.epochs=2",
    "trainer.progress=false",
    "dataset.limit=300",
    "trainer.checkpoint_every=1",
]


@contextmanager
def threads(n: int):
    """What a launcher decides for its jobs: the torch thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _files(path):
    return json.loads((path / "summary.json").read_text()), (path / "metrics.jsonl").read_text()


def test_the_layout_is_recorded_and_follows_the_thread_count_by_default(make_cfg, tmp_path):
    for n in (1, 2):
        with threads(n):
            run(make_cfg(*QUICK, output_dir=tmp_path / str(n)))
        summary, _ = _files(tmp_path / str(n))
        assert summary["layout"] == {"shards": n, "threads": n}


def test_fixed_shards_give_the_same_numbers_whatever_the_thread_count(make_cfg, tmp_path):
    for n in (1, 2):
        with threads(n):
            run(make_cfg(*QUICK, "trainer.shards=2", output_dir=tmp_path / str(n)))
    (one, metrics_one), (two, metrics_two) = _files(tmp_path / "1"), _files(tmp_path / "2")
    assert one["layout"] == {"shards": 2, "threads": 1} and two["layout"]["shards"] == 2
    assert metrics_one == metrics_two
    assert one["aggregate"] == two["aggregate"]


def test_a_resumed_job_keeps_its_recorded_layout(make_cfg, tmp_path, monkeypatch):
    with threads(2):
        run(make_cfg(*QUICK, output_dir=tmp_path / "whole"))  # never interrupted

    save = Checkpoint.on_epoch_end

    def killed_after_epoch_1(self, epoch, *args):
        save(self, epoch, *args)
        if epoch == 1:
            raise KeyboardInterrupt  # as a preempted job stops right after its checkpoint

    monkeypatch.setattr(Checkpoint, "on_epoch_end", killed_after_epoch_1)
    with threads(2), pytest.raises(KeyboardInterrupt):
        run(make_cfg(*QUICK, output_dir=tmp_path / "resumed"))
    monkeypatch.setattr(Checkpoint, "on_epoch_end", save)
    with threads(1):  # resumed by a launcher that gives one thread: still two shards
        run(make_cfg(*QUICK, output_dir=tmp_path / "resumed"))
    (whole, metrics_whole), (resumed, metrics_resumed) = (
        _files(tmp_path / "whole"),
        _files(tmp_path / "resumed"),
    )
    assert resumed["layout"] == {"shards": 2, "threads": 1}
    assert metrics_resumed == metrics_whole
    assert resumed["aggregate"] == whole["aggregate"]


def test_shards_must_be_positive(make_cfg):
    from initsweep.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^trainer.shards=0 is invalid: must be >= 1, or null"):
        run(make_cfg(*QUICK, "trainer.shards=0"))


@pytest.mark.slow
def test_the_basic_and_joblib_launchers_agree_once_shards_are_fixed(tmp_path):
    common = [*QUICK, "trainer.shards=2"]
    basic = run_cli(*common, f"hydra.run.dir={tmp_path / 'basic'}")
    joblib = run_cli(
        "-m",
        *common,
        "name=a,b",  # two jobs, so joblib runs them in its workers (one thread each)
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={tmp_path / 'joblib'}",
    )
    assert basic.returncode == 0 and joblib.returncode == 0, basic.stderr + joblib.stderr
    (_, metrics_basic), (job, metrics_joblib) = (
        _files(tmp_path / "basic"),
        _files(tmp_path / "joblib" / "0"),
    )
    assert job["layout"] == {"shards": 2, "threads": 1}
    assert metrics_basic == metrics_joblib
