"""A SLURM job that can never start says so (hydra_plugins/initsweep_slurm): on the localhost
cluster of ``scripts/slurm-local-up.sh``, a request larger than its node ends the sweep in one
line naming the resource and the limit, and the ``local`` config the script writes fits the node,
so ``hydra/launcher=slurm`` runs there without overrides."""

from __future__ import annotations

import subprocess
import time

import pytest
import yaml

from hydra_plugins.initsweep_slurm.pending import Waiting, never_starts
from tests.conftest import REPO, run_cli
from tests.test_slurm import QUICK, UP, cluster  # noqa: F401 (the session's cluster fixture)

LOCAL = REPO / "initsweep" / "conf" / "local" / "default.yaml"


@pytest.mark.parametrize(
    "reason, never",
    [
        ("PartitionConfig", True),  # more CPUs per task than any node of the partition has
        ("PartitionTimeLimit", True),
        ("QOSMaxCpuPerJobLimit", True),
        ("QOSMaxMemoryPerJob", True),
        ("AssocMaxWallDurationPerJobLimit", True),
        ("QOSMinGRES", True),
        ("InvalidAccount", True),
        ("Resources", False),  # the node is busy: it frees up
        ("Priority", False),
        ("QOSMaxCpuPerUserLimit", False),  # the user's other jobs end
        ("AssocGrpCpuLimit", False),
        ("JobArrayTaskLimit", False),
        ("BeginTime", False),
    ],
)
def test_which_pending_reasons_never_resolve(reason, never):
    assert never_starts(Waiting("7_[0-2]", reason)) is never


def node() -> tuple[int, int]:
    """The localhost node's CPUs and memory (MB), as SLURM sees them."""
    cpus, mem = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%c %m"], capture_output=True, text=True
    ).stdout.split()[:2]
    return int(cpus), int(mem)


def errors(res) -> list[str]:
    return [ln for ln in res.stderr.splitlines() if ln.startswith("initsweep: error")]


@pytest.mark.slurm
@pytest.mark.slow
def test_a_job_asking_more_cpus_than_the_node_has_ends_the_sweep_in_one_line(cluster, tmp_path):  # noqa: F811
    cpus, _ = node()
    start = time.monotonic()
    res = run_cli(
        "-m", *QUICK, "hydra/launcher=slurm", f"resources.cpus_per_task={cpus + 2}",
        "init=kaiming_normal,xavier_uniform", f"hydra.sweep.dir={tmp_path}", timeout=300,
    )  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr
    (line,) = errors(res)
    assert "(PartitionConfig)" in line
    assert f"each task asks for {cpus + 2} CPUs (resources.cpus_per_task={cpus + 2})" in line
    assert f"have at most {cpus}" in line
    assert time.monotonic() - start < 120  # SLURM would have kept it pending for ever
    # the array was cancelled: nothing of it stays in the queue
    array = line.rsplit("cancelled job ", 1)[1]
    queued = subprocess.run(["squeue", "-h", "-j", array], capture_output=True, text=True)
    assert queued.stdout.strip() == ""


@pytest.mark.slurm
@pytest.mark.slow
def test_a_search_whose_jobs_never_start_fails_its_trials_and_stops(cluster, tmp_path):  # noqa: F811
    optuna = pytest.importorskip("optuna")
    cpus, _ = node()
    res = run_cli(
        "-m", *QUICK, "hydra/launcher=slurm", f"resources.cpus_per_task={cpus + 2}",
        "search=gain", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2",
        f"search.storage=sqlite:///{tmp_path / 'study.db'}", f"hydra.sweep.dir={tmp_path / 's'}",
        timeout=300,
    )  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr
    (line,) = errors(res)
    assert "(PartitionConfig)" in line
    trials = optuna.load_study(study_name="default-gain", storage=f"sqlite:///{tmp_path}/study.db")
    # the first batch failed, with the reason, and nothing was re-queued or left RUNNING
    states = [t.state for t in trials.trials]
    assert states == [optuna.trial.TrialState.FAIL] * 2
    assert "PartitionConfig" in trials.trials[0].user_attrs["fail_reason"]


@pytest.mark.slurm
@pytest.mark.slow
def test_memory_sbatch_refuses_is_one_line_naming_the_limit(cluster, tmp_path):  # noqa: F811
    _, mem = node()
    gb = mem // 1024 + 4
    res = run_cli(
        "-m", *QUICK, "hydra/launcher=slurm", "resources.cpus_per_task=1",
        f"resources.mem_gb={gb}", "init=kaiming_normal,xavier_uniform",
        f"hydra.sweep.dir={tmp_path}", timeout=120,
    )  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr
    (line,) = errors(res)
    assert f"each task asks for {gb} GB (resources.mem_gb={gb})" in line
    assert f"have at most {mem / 1024:.3g} GB" in line


@pytest.mark.slurm
@pytest.mark.slow
def test_the_local_config_fits_the_node_and_slurm_runs_without_overrides(cluster, tmp_path):  # noqa: F811
    # written by the up script, also when the cluster was already up (it is idempotent)
    res = subprocess.run(["bash", str(UP)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    written = yaml.safe_load(LOCAL.read_text())["resources"]
    cpus, mem = node()
    # one job per core, side by side: together they fit the node's memory
    assert written["cpus_per_task"] == 1 and written["mem_gb"] * 1024 * cpus <= mem
    # the docs' command, as written: no resources on the command line
    res = run_cli(
        "-m", "hydra/launcher=slurm", "init=kaiming_normal,xavier_uniform", *QUICK,
        "trainer.epochs=1", f"hydra.sweep.dir={tmp_path}", timeout=420,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert all((tmp_path / str(n) / "summary.json").exists() for n in (0, 1))
