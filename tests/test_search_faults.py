"""A search survives its storage and its workers (README "Reliability"): each fault reproduced
through the CLI, with the clean outcome: one line, no traceback, no zombie trial left RUNNING."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hydra_plugins.initsweep_optuna._impl import fail, finish, quoted
from initsweep.search import JobTrial
from initsweep.search.pruning import open_trial
from initsweep.search.storage import locate_study
from tests.conftest import REPO, run_cli

TINY = ["dataset.limit=200", "seeds=[0]", "trainer.progress=false", "trainer.log_every=2"]


def cli(tmp: Path, *args: str, sweep: str = "sweep", cwd: Path = REPO, **kw):
    return run_cli(
        *args, *TINY, f"hydra.sweep.dir={tmp / sweep}", f"search.storage={url(tmp)}", cwd=cwd, **kw
    )


def url(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'study.db'}"


def trials(tmp: Path, study_name: str = "default-gain") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study_name, storage=url(tmp)).trials


def start(tmp: Path, *args: str, sweep: str = "sweep") -> subprocess.Popen:
    """A search in the background, as ``cli`` runs one."""
    cmd = [sys.executable, "-m", "initsweep", *args, *TINY]
    cmd += [f"hydra.sweep.dir={tmp / sweep}", f"search.storage={url(tmp)}"]
    log = open(tmp / f"{sweep}.log", "w")
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, "the search ended before its job started"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def ended(proc: subprocess.Popen, tmp: Path, timeout: float = 120) -> int:
    """The search's exit code; one that does not end is killed and its log shown."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"the search did not end in {timeout} s:\n{(tmp / 'sweep.log').read_text()}")


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            found += [child, *children(child)]
    return found


def assert_clean(res) -> None:
    assert "Traceback" not in res.stdout + res.stderr


# --- the storage -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_study_locked_by_another_writer_is_waited_for(tmp_path):
    optuna.create_study(study_name="default-gain", storage=url(tmp_path))
    lock = sqlite3.connect(tmp_path / "study.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # another process writing, for longer than SQLite's 5 s
    proc = start(tmp_path, "-m", "search=gain", "hydra.sweeper.n_trials=1", "trainer.epochs=1")
    time.sleep(7)
    assert proc.poll() is None  # still waiting, not crashed
    lock.execute("COMMIT")
    lock.close()
    assert ended(proc, tmp_path, timeout=300) == 0, (tmp_path / "sweep.log").read_text()
    assert [t.state for t in trials(tmp_path)] == [TrialState.COMPLETE]


@pytest.mark.slow
def test_a_lock_held_past_the_timeout_is_one_line(tmp_path):
    optuna.create_study(study_name="default-gain", storage=url(tmp_path))
    lock = sqlite3.connect(tmp_path / "study.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        res = run_cli(
            "-m", "search=gain", *TINY, f"hydra.sweep.dir={tmp_path / 'sweep'}",
            f"search.storage='{url(tmp_path)}?timeout=1'",
        )  # fmt: skip
    finally:
        lock.execute("COMMIT")
        lock.close()
    assert res.returncode == 1
    assert_clean(res)
    (line,) = [ln for ln in res.stderr.splitlines() if ln.startswith("initsweep: error")]
    assert "database is locked" in line and "run the same command again" in line
    assert trials(tmp_path) == []  # nothing half-done


def test_report_and_tell_are_guarded(tmp_path, caplog):
    study = optuna.create_study(study_name="s", storage=url(tmp_path))
    trial = study.ask()
    study.tell(trial, state=TrialState.FAIL)  # e.g. failed as stale by another search
    job = JobTrial(open_trial(url(tmp_path), "s", trial.number, optuna.pruners.MedianPruner()))
    with caplog.at_level(logging.WARNING):
        assert job.report(0.5, 1) is False  # no exception: the job trains on
        job.record({"n": 1})
        assert job.prune() is False
    warned = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "cannot report" in warned[0]  # one warning, then silence
    finish(study, trial, values=[1.0])  # the sweeper's tell, also on a finished trial
    fail(study, trial, "late")
    assert study.trials[0].state == TrialState.FAIL and study.trials[0].user_attrs == {}


def test_an_interrupt_during_a_commit_waits_for_it_and_leaves_the_study_unlocked(tmp_path):
    """SIGINT at the job's commit: a KeyboardInterrupt raised there left the SQLite lock held,
    and the sweeper of the same process waited on it for ever to fail the trial (CI hung)."""
    from sqlalchemy import event

    study = optuna.create_study(study_name="s", storage=url(tmp_path))
    trial = study.ask()
    job = JobTrial(open_trial(url(tmp_path), "s", trial.number, optuna.pruners.MedianPruner()))
    engine = job.trial.study._storage._backend.engine
    sent = []

    @event.listens_for(engine, "commit")
    def interrupt(conn) -> None:
        if not sent:
            sent.append(signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    # as in a terminal (a background job of a non-interactive shell starts with SIGINT ignored)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            job.record({"n": 1})
    finally:
        signal.signal(signal.SIGINT, before)
    free = sqlite3.connect(tmp_path / "study.db", timeout=1)
    free.execute("BEGIN IMMEDIATE")  # raises "database is locked" if a lock was left held
    free.execute("ROLLBACK")
    assert trials(tmp_path, "s")[0].user_attrs == {"n": 1}  # the commit went through
    fail(study, trial, "interrupted")
    assert trials(tmp_path, "s")[0].state == TrialState.FAIL


# --- the workers -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_killed_joblib_worker_costs_its_batch_one_rerun_not_the_search(tmp_path):
    """kill -9 of one joblib worker: joblib raises TerminatedWorkerError for the whole batch.
    The batch's trials are failed and re-queued, without counting towards max_failure_rate (at
    its default 0.25 of 4 trials, two failures stopped the search with exit 1)."""
    proc = start(
        tmp_path,
        "-m",
        "search=gain",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=4",
        "trainer.epochs=100",
        "search.pruner=null",
    )
    for job in ("0", "1"):
        wait_for(tmp_path / "sweep" / job / "metrics.jsonl", proc)
    workers = [
        p for p in children(proc.pid) if b"popen_loky" in Path(f"/proc/{p}/cmdline").read_bytes()
    ]
    os.kill(workers[0], signal.SIGKILL)  # one of the two workers, each training a trial
    assert ended(proc, tmp_path, timeout=600) == 0, (tmp_path / "sweep.log").read_text()
    log = (tmp_path / "sweep.log").read_text()
    assert "Traceback" not in log and "re-queued [0, 1]; the search goes on" in log
    found = trials(tmp_path)
    assert not [t for t in found if t.state == TrialState.RUNNING]  # no zombie
    lost = [t for t in found if t.state == TrialState.FAIL]
    assert [t.number for t in lost] == [0, 1]  # the killed worker's trial and its batch mate
    assert all("TerminatedWorkerError" in t.user_attrs["fail_reason"] for t in lost)
    # each lost trial ran again with its own values, as a trial of its own, without the lost
    # run's attributes; the search still told n_trials trials
    retried = {
        t.system_attrs["failed_trial"]: t for t in found if "failed_trial" in t.system_attrs
    }
    for t in lost:
        assert retried[t.number].params == t.params
        assert retried[t.number].state == TrialState.COMPLETE
        assert "fail_reason" not in retried[t.number].user_attrs
    assert sum(t.state == TrialState.COMPLETE for t in found) == 4


@pytest.mark.slow
def test_a_killed_search_leaves_no_trial_running_for_the_next_one(tmp_path):
    proc = start(tmp_path, "-m", "search=gain", "trainer.epochs=300", "search.pruner=null")
    wait_for(tmp_path / "sweep" / "0" / "metrics.jsonl", proc)
    proc.send_signal(signal.SIGKILL)  # the whole search: no chance to tell anything
    proc.wait()
    assert [t.state for t in trials(tmp_path)] == [TrialState.RUNNING]
    time.sleep(2)  # older than the next search's grace period
    res = cli(
        tmp_path, "-m", "search=gain", "hydra.sweeper.n_trials=1", "hydra.sweeper.grace_period=1",
        "trainer.epochs=1", sweep="again",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert_clean(res)
    stale, rerun = trials(tmp_path)
    assert stale.state == TrialState.FAIL and rerun.state == TrialState.COMPLETE
    assert rerun.params == stale.params and rerun.system_attrs["failed_trial"] == 0


@pytest.mark.slow
def test_an_interrupted_search_fails_and_requeues_its_running_trial(tmp_path):
    proc = start(tmp_path, "-m", "search=gain", "trainer.epochs=300", "search.pruner=null")
    wait_for(tmp_path / "sweep" / "0" / "metrics.jsonl", proc)
    proc.send_signal(signal.SIGTERM)  # a scheduler's stop, or Ctrl-C
    code = ended(proc, tmp_path)
    log = (tmp_path / "sweep.log").read_text()  # what a failure shows (CI failed here once)
    assert code == 128 + signal.SIGTERM, log
    states = [(t.number, t.state.name) for t in trials(tmp_path)]
    assert len(states) == 2, (states, log)
    interrupted, queued = trials(tmp_path)
    assert interrupted.state == TrialState.FAIL, (states, log)  # not left RUNNING
    assert "interrupted" in interrupted.user_attrs["fail_reason"]
    assert queued.state == TrialState.WAITING and queued.params == interrupted.params


# --- the jobs' values and names --------------------------------------------------------------


@pytest.mark.slow
def test_a_value_the_job_rejects_is_a_failed_trial_and_the_search_goes_on(tmp_path):
    res = cli(
        tmp_path, "-m", "search=optuna", "init=sparse", "init.k=choice(2, 4, 8, 100)",
        "hydra/sweeper/sampler=grid", "trainer.epochs=1",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert_clean(res)
    by_k = {t.params["init.k"]: t for t in trials(tmp_path, "default")}
    assert by_k[100].state == TrialState.FAIL  # k above the fan-in (64): not RUNNING, not exit 2
    assert by_k[100].user_attrs["fail_reason"].startswith("ConfigError: init.k=100 is invalid")
    assert {by_k[k].state for k in (2, 4, 8)} == {TrialState.COMPLETE}


@pytest.mark.slow
def test_a_study_name_with_a_quote_and_zero_trials(tmp_path):
    res = cli(tmp_path, "-m", "search=gain", 'name="it\'s"', "hydra.sweeper.n_trials=1")
    assert res.returncode == 0, res.stderr
    (trial,) = trials(tmp_path, "it's-gain")
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["n"] == 1  # the job opened it
    # n_trials=0 runs nothing and shows the study again (it ended in a traceback)
    res = cli(tmp_path, "-m", "search=gain", 'name="it\'s"', "hydra.sweeper.n_trials=0", sweep="0")
    assert res.returncode == 0, res.stderr
    assert_clean(res)
    assert "1 trials: 1 complete" in res.stdout and (tmp_path / "0" / "optuna_trials.csv").exists()


@pytest.mark.parametrize("value", ["it's-gain", "a\\'b", "x\\", "${name}", "a, b=(c)", "plain"])
def test_values_are_quoted_for_the_override_grammar(value):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    parsed = OverridesParser.create().parse_override(f"++k={quoted(value)}").value()
    assert OmegaConf.create({"k": parsed}).k == value


# --- where the study lives ---------------------------------------------------------------------


@pytest.mark.slow
def test_the_study_is_fixed_at_start_and_a_rerun_elsewhere_continues_it(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "sub").mkdir(parents=True)
    b.mkdir()
    args = ["-m", "search=gain", "hydra.sweeper.n_trials=1", "trainer.epochs=1", *TINY]
    first = run_cli(*args, f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=a)
    assert first.returncode == 0, first.stderr
    db = a / "outputs" / "optuna" / "default-gain.db"
    assert f"in sqlite:///{db} (relative to {a})" in first.stdout  # printed at start
    # the same command from elsewhere, into the same sweep dir: the same study
    again = run_cli(*args, f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=b)
    assert again.returncode == 0, again.stderr
    assert f"in sqlite:///{db} (recorded in" in again.stdout
    assert not (b / "outputs").exists()
    study = optuna.load_study(study_name="default-gain", storage=f"sqlite:///{db}")
    assert [t.number for t in study.trials] == [0, 1]
    # a new sweep dir below the first directory: a new study, and where the old one is
    sub = run_cli(*args, f"hydra.sweep.dir={tmp_path / 'other'}", cwd=a / "sub")
    assert sub.returncode == 0, sub.stderr
    assert f"one of this name exists in {db}" in sub.stdout + sub.stderr


def test_locate_study_prefers_the_sweep_dirs_record(tmp_path):
    record = tmp_path / "optuna_study.yaml"
    given = "sqlite:///outputs/optuna/s.db"
    assert (
        locate_study(given, "s", tmp_path, record)[0]
        == f"sqlite:///{tmp_path}/outputs/optuna/s.db"
    )
    record.write_text(
        f"study_name: s\nstorage: sqlite:////elsewhere/s.db\nstorage_given: {given}\n"
    )
    assert locate_study(given, "s", tmp_path, record)[0] == "sqlite:////elsewhere/s.db"
    # another study, or a storage given otherwise: the command wins
    assert locate_study(given, "t", tmp_path, record)[0].startswith(f"sqlite:///{tmp_path}")
    assert locate_study("sqlite:////x/s.db", "s", tmp_path, record)[0] == "sqlite:////x/s.db"
