"""Faults of an unlucky user: two writers of one dir, a bad job in a multirun, a full disk, memory
that cannot be allocated, damaged files, signals, typos. Each ends in one line, with a non-zero
exit where it is an error, nothing already written lost and nothing claiming to be finished."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from initsweep.errors import ConfigError
from initsweep.files import LOCK, lock_dir
from initsweep.job import run
from tests.conftest import REPO, run_cli

QUICK = ["trainer.epochs=1", "trainer.progress=false", "dataset.limit=200"]


def _stderr_lines(res) -> list[str]:
    """What the user reads on stderr, without the INFO log lines."""
    return [ln for ln in res.stderr.splitlines() if "[INFO]" not in ln and ln.strip()]


# --- two writers, one job dir -----------------------------------------------------------------


def _slow_job(out: Path) -> subprocess.Popen:
    """A job that writes ``out`` for a while (about two seconds an epoch here)."""
    return subprocess.Popen(
        [sys.executable, "-m", "initsweep", "trainer.epochs=30", "trainer.batch_size=8"]
        + ["model.hidden=[512,512]", "trainer.progress=false", f"hydra.run.dir={out}"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"no {path.name} in time"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_second_writer_is_refused_in_one_line_and_touches_nothing(tmp_path):
    out = tmp_path / "run"
    first = _slow_job(out)
    try:
        _wait_for(out / "metrics.jsonl", first)
        before = {p: p.read_bytes() for p in (out / ".hydra").iterdir()}
        second = run_cli(*QUICK, f"hydra.run.dir={out}")
        assert second.returncode == 2
        assert _stderr_lines(second) == [
            f"initsweep: error: hydra.run.dir='{out}' is being written by another initsweep "
            "process; wait until it ends, or choose another hydra.run.dir / hydra.sweep.dir"
        ]
        # the first writer's files are its own: Hydra's record of its config too
        assert {p: p.read_bytes() for p in (out / ".hydra").iterdir()} == before
        assert first.poll() is None  # and it goes on
    finally:
        first.kill()
        first.wait()
    lock_dir(out).release()  # the lock died with the process (kill -9): the dir is free again


@pytest.mark.slow
def test_a_second_sweep_into_a_running_sweep_dir_is_refused(tmp_path):
    sweep = tmp_path / "sweep"
    first = subprocess.Popen(
        [sys.executable, "-m", "initsweep", "-m", "trainer.epochs=30", "trainer.batch_size=8"]
        + ["model.hidden=[512,512]", "trainer.progress=false", f"hydra.sweep.dir={sweep}"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(sweep / "0" / "metrics.jsonl", first)
        second = run_cli("-m", *QUICK, f"hydra.sweep.dir={sweep}")
        assert second.returncode == 2
        assert _stderr_lines(second)[-1].startswith(
            f"initsweep: error: hydra.sweep.dir='{sweep}' is being written by another"
        )
        assert not (sweep / "1").exists()
    finally:
        first.kill()
        first.wait()


def test_the_job_layer_takes_the_lock_too(make_cfg, tmp_path):
    # the compose API (no CLI callback): the job itself refuses a dir another process writes
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from initsweep.files import lock_dir; "
         f"held = lock_dir({str(tmp_path)!r}); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match="is being written by another initsweep process"):
            run(make_cfg(*QUICK))
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK]
    finally:
        holder.kill()
        holder.wait()
    run(make_cfg(*QUICK))  # free again once the holder is gone
    assert (tmp_path / "summary.json").exists()


# --- one bad job in a multirun ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_bad_job_is_reported_the_others_run_and_the_sweep_exits_2(tmp_path, launcher):
    extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    res = run_cli(
        "-m", *QUICK, "seeds=[0]", "optimizer.lr=0.1,-1,0.2", *extra, f"hydra.sweep.dir={tmp_path}"
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    error = "optimizer.lr=-1 is invalid: must be a number > 0"
    assert f"initsweep: error: job 1: {error}" in _stderr_lines(res)
    assert _stderr_lines(res)[-1] == (
        f"initsweep: error: 1 of the jobs failed (the others ran): job 1: {error}"
    )
    for job in ("0", "2"):  # the jobs before and after the bad one both finished
        assert json.loads((tmp_path / job / "summary.json").read_text())["status"] == "finished"
    status = json.loads((tmp_path / "1" / "status.json").read_text())
    assert status["status"] == "failed" and status["error"] == error
    assert "optimizer.lr=-1" in status["overrides"]
    assert not (tmp_path / "1" / "summary.json").exists()
