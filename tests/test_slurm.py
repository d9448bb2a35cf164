"""Multiruns through ``hydra/launcher=slurm`` on a real single-node SLURM cluster on localhost.

The cluster comes from ``scripts/slurm-local-up.sh`` (``.ci/run`` starts it; if it is not up and
this is root on Debian, the session fixture starts it and stops it afterwards). Anywhere else
these tests skip with the reason. Jobs are small: one seed, a few epochs of the embedded digits.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from initsweep.files import read_jsonl
from initsweep.train.checkpoint import CHECKPOINT, load_checkpoint
from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

UP, DOWN = REPO / "scripts" / "slurm-local-up.sh", REPO / "scripts" / "slurm-local-down.sh"
# small jobs on the 2-core test node: one core and 1 GB each, so two run side by side
SLURM = [
    "hydra/launcher=slurm",
    "resources.cpus_per_task=1",
    "resources.mem_gb=1",
    "resources.timeout_min=10",
]
# a checkpoint after each epoch (by default: by time): the tests stop jobs after the first
QUICK = ["seeds=[0]", "trainer.progress=false", "trainer.checkpoint_every=1"]


def _node_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    res = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return res.returncode == 0 and res.stdout.split()[:1] in (["idle"], ["mix"], ["alloc"])


def _why_not() -> str | None:
    """Why this machine cannot run a localhost cluster (None: it can)."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "the SLURM tests start a localhost cluster: they need root on Debian"
    if not Path("/etc/debian_version").exists():
        return "the SLURM tests install Debian's slurm packages: they need Debian"
    return None


@pytest.fixture(scope="session")
def cluster():
    """A running localhost cluster; started (and stopped afterwards) only if it was not up."""
    if _node_up():
        yield
        return
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    res = subprocess.run(["bash", str(UP)], capture_output=True, text=True, timeout=600)
    if res.returncode != 0 or not _node_up():
        lines = (res.stderr or res.stdout).strip().splitlines() or ["no output"]
        pytest.skip(f"scripts/slurm-local-up.sh could not start SLURM: {lines[-1]}")
    yield
    subprocess.run(["bash", str(DOWN)], capture_output=True, timeout=120)


def _sweep(sweep_dir: Path, *overrides: str, timeout: int = 420):
    return run_cli(
        "-m", *QUICK, *SLURM, f"hydra.sweep.dir={sweep_dir}", *overrides, timeout=timeout
    )


def _results(sweep_dir: Path) -> dict[int, object]:
    """What each SLURM task handed back to Hydra (submitit's result pickles), by job number."""
    out = {}
    for path in (sweep_dir / ".submitit").glob("*_*/*_result.pkl"):
        outcome, value = pickle.loads(path.read_bytes())
        assert outcome == "success", value
        out[value.hydra_cfg.hydra.job.num] = value.return_value
    return out


def _job_ids(sweep_dir: Path) -> list[str]:
    return sorted({p.name for p in (sweep_dir / ".submitit").iterdir() if p.is_dir()})


def _no_duplicated_steps(records: list[dict]) -> None:
    keys = [(r["seed"], r["step"], tuple(sorted(r))) for r in records]
    assert len(keys) == len(set(keys)), "a point was logged twice"


def test_multirun_runs_each_job_as_a_slurm_task_and_returns_its_objective(cluster, tmp_path):
    inits = ["kaiming_normal", "pytorch_default", "zeros"]
    res = _sweep(tmp_path, f"init={','.join(inits)}", "trainer.epochs=1")
    assert res.returncode == 0, res.stderr
    objectives = _results(tmp_path)
    assert sorted(objectives) == [0, 1, 2]
    for num, init in enumerate(inits):
        job = tmp_path / str(num)
        for name in ("metrics.jsonl", "init.json", "summary.json", CHECKPOINT, ".hydra"):
            assert (job / name).exists(), f"{job}/{name}"
        summary = json.loads((job / "summary.json").read_text())
        assert summary["config"]["init"]["name"] == init
        # the float Hydra got back through SLURM is the job's objective
        assert objectives[num] == summary["objective"]["value"]
    # one array job: every task ran under SLURM and shows in its accounting
    (array,) = {j.split("_")[0] for j in _job_ids(tmp_path)}
    expected = [f"{array}_{i}|COMPLETED" for i in range(3)]
    for _ in range(20):  # slurmdbd records a job about a second after it ends
        states = subprocess.run(
            ["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", array],
            capture_output=True,
            text=True,
        ).stdout.split()
        if sorted(states) == expected:
            break
        time.sleep(0.5)
    assert sorted(states) == expected


def test_optuna_search_runs_its_trials_as_slurm_jobs(cluster, tmp_path):
    optuna = pytest.importorskip("optuna")
    db = tmp_path / "study.db"
    res = _sweep(
        tmp_path,
        "search=gain",
        f"search.storage=sqlite:///{db}",
        "search.study_name=slurm",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=2",
        "trainer.epochs=1",
    )
    assert res.returncode == 0, res.stderr
    study = optuna.load_study(study_name="slurm", storage=f"sqlite:///{db}")
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == 2
    # each trial's value is what its SLURM job returned, with the gain Optuna asked for
    finished = {}
    for path in tmp_path.glob("*/summary.json"):
        s = json.loads(path.read_text())
        finished[s["config"]["init"]["gain"]] = s["objective"]["value"]
    assert {t.params["init.gain"]: t.value for t in trials} == finished


def test_a_failing_job_fails_the_sweep_with_its_error(cluster, tmp_path):
    start = time.monotonic()
    res = _sweep(tmp_path, "optimizer.lr=0.1,-1.0", "trainer.epochs=1", timeout=300)
    assert res.returncode != 0
    assert "optimizer.lr" in res.stderr + res.stdout  # the job's one-line error reaches the user
    assert (tmp_path / "0" / "summary.json").exists()  # the good job still finished
    assert not (tmp_path / "1" / "summary.json").exists()
    assert time.monotonic() - start < 240  # reported, not hung


# a job that would run for hours: 100000 epochs of 90 steps, no histograms
LONG = ["trainer.epochs=100000", "trainer.batch_size=16", "tracker.histogram_every=0"]


def _stop_after_first_checkpoint(sweep: Path, job: int, stop, *overrides: str):
    """Launch a sweep; once job ``job`` has checkpointed an epoch, ``stop(task id)`` it; wait for
    the launcher. Returns (launcher's return code, its stderr, seconds it took after the stop)."""
    cmd = [sys.executable, "-m", "initsweep", "-m", *QUICK, *SLURM, f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen(
        [*cmd, *overrides], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 300
        while not (sweep / str(job) / CHECKPOINT).exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, f"job {job} wrote no checkpoint in 300 s"
            time.sleep(0.1)
        tasks = _job_ids(sweep)  # "<array>_<task>", or "<job>" for a sweep of one job
        task = next(j for j in tasks if j.endswith(f"_{job}") or tasks == [j] and "_" not in j)
        stop(task)
        stopped_at = time.monotonic()
        _, err = proc.communicate(timeout=240)
        return proc.returncode, err, time.monotonic() - stopped_at
    finally:
        _cleanup(sweep, proc)


def _cleanup(sweep: Path, proc: subprocess.Popen) -> None:
    """Leave no job behind: cancel the sweep's SLURM jobs, stop its launcher."""
    if (sweep / ".submitit").exists():
        for array in {j.split("_")[0] for j in _job_ids(sweep)}:
            subprocess.run(["scancel", array])
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=60)


def _scancel(task: str) -> None:
    subprocess.run(["scancel", task], check=True)


def _kill_task(task: str) -> None:
    """``kill -9`` the task's Python process, as the OOM killer or a crash would (no SIGTERM,
    no KillWait): ``scontrol listpids`` gives the pids of the job's step 0 on this node."""
    job_id = subprocess.run(
        ["squeue", "-h", "-j", task, "-o", "%A"], capture_output=True, text=True
    ).stdout.strip()
    pids = subprocess.run(["scontrol", "listpids", job_id], capture_output=True, text=True)
    for line in pids.stdout.splitlines()[1:]:
        pid, _, step, *_ = line.split()
        if step == "0":
            os.kill(int(pid), signal.SIGKILL)


def test_scancel_of_a_running_job_makes_the_launcher_raise(cluster, tmp_path):
    # submitit ignores SIGTERM, so SLURM kills the task KillWait (5 s) after the cancel
    rc, err, waited = _stop_after_first_checkpoint(tmp_path, 0, _scancel, *LONG)
    assert rc != 0
    assert "CANCELLED" in err
    # submitit learns of the cancel from SLURM's accounting: it raises, it does not hang
    assert waited < 120


def test_a_killed_job_resumes_from_its_checkpoint_when_the_sweep_is_run_again(cluster, tmp_path):
    # job 1 is killed outright (as by the OOM killer or a node crash) after its first epoch
    args = ["init=pytorch_default,kaiming_normal", "trainer.epochs=20", "trainer.batch_size=16"]
    rc, _, _ = _stop_after_first_checkpoint(tmp_path, 1, _kill_task, *args)
    assert rc != 0
    epoch = load_checkpoint(tmp_path / "1")["epoch"]
    assert 1 <= epoch < 20 and not (tmp_path / "1" / "summary.json").exists()
    metrics_0 = (tmp_path / "0" / "metrics.jsonl").read_bytes()

    res = _sweep(tmp_path, *args)  # the same command, the same sweep dir
    assert res.returncode == 0, res.stderr
    log = (tmp_path / "1" / "train.log").read_text()
    assert f"resuming {tmp_path / '1'} from epoch {epoch} " in log
    assert (tmp_path / "0" / "metrics.jsonl").read_bytes() == metrics_0  # finished: not rerun
    metrics = read_jsonl(tmp_path / "1" / "metrics.jsonl")
    _no_duplicated_steps(metrics)
    assert [r["epoch"] for r in metrics if "val/loss" in r] == list(range(21))  # 0: at init
    assert load_checkpoint(tmp_path / "1")["epoch"] == 20


def test_a_job_at_its_time_limit_is_requeued_and_continues(cluster, tmp_path):
    """``--time=2 --signal=USR2@30``. SLURM may signal up to 60 s early (measured here: 9 s after
    the start with ``--time=1 --signal=USR2@30``, before Python had installed submitit's handler),
    so the signal comes 30-90 s after the start: after the first checkpoint, before the kill.
    submitit requeues the job, which resumes from its checkpoint. The job is long (it would need
    many requeues), so once the resumed job has written a newer checkpoint the test cancels it."""
    args = [*SLURM, "resources.timeout_min=2", "hydra.launcher.signal_delay_s=30"]
    cmd = [sys.executable, "-m", "initsweep", "-m", *QUICK, *args, *LONG]
    proc = subprocess.Popen(
        [*cmd, f"hydra.sweep.dir={tmp_path}"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    job, log = tmp_path / "0", ""
    try:
        deadline = time.monotonic() + 300
        while "resuming" not in log or load_checkpoint(job)["epoch"] <= resumed_from(log):
            assert time.monotonic() < deadline, f"no requeue and resume in 300 s:\n{log}"
            assert proc.poll() is None
            time.sleep(0.5)
            log = (job / "train.log").read_text() if (job / "train.log").exists() else ""
            if "Requeued job" in log and "resuming" not in log:
                _start_now(_job_ids(tmp_path))
    finally:
        _cleanup(tmp_path, proc)
    # the time limit's signal (not a cancel or a preemption) requeued it, and it went on
    assert "this job is timed-out" in log and "Requeued job" in log
    assert resumed_from(log) >= 1
    _no_duplicated_steps(read_jsonl(job / "metrics.jsonl"))


def _start_now(job_ids: list[str]) -> None:
    """SLURM holds a requeued batch job for about two minutes (Reason=BeginTime); start it now.

    Only the wait is skipped: the job still goes back to the queue and starts from its script."""
    for job_id in {j.split("_")[0] for j in job_ids}:
        state = subprocess.run(
            ["squeue", "-h", "-j", job_id, "-o", "%T %r"], capture_output=True, text=True
        ).stdout.split()
        if state == ["PENDING", "BeginTime"]:
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"])


def resumed_from(log: str) -> int:
    return int(re.findall(r"from epoch (\d+)", log)[-1])


def test_the_population_launcher_runs_each_group_as_one_slurm_task(cluster, tmp_path):
    inits = ["kaiming_normal", "xavier_uniform", "orthogonal"]
    res = run_cli(
        "-m", *QUICK, *SLURM, "hydra/launcher=population_slurm", f"hydra.sweep.dir={tmp_path}",
        f"init={','.join(inits)}", "trainer.epochs=1", timeout=420,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    # three jobs that share an architecture: one group, one SLURM job, which returns each
    # job's objective and log lines; each job's train.log gets its own
    (result,) = (tmp_path / ".submitit").glob("*/*_result.pkl")
    outcome, ret = pickle.loads(result.read_bytes())
    assert outcome == "success" and len(_job_ids(tmp_path)) == 1
    values, records = ret.return_value
    for num, init in enumerate(inits):
        summary = json.loads((tmp_path / str(num) / "summary.json").read_text())
        assert summary["config"]["init"]["name"] == init
        assert values[num] == summary["objective"]["value"]
        log = (tmp_path / str(num) / "train.log").read_text()
        assert [r.getMessage() for r in records[num]][-1] in log
        assert "training 3 jobs as one" in log and f"({tmp_path / str(num)})" in log
    assert (tmp_path / ".population" / "task-0" / ".hydra").is_dir()
