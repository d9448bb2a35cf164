"""A sweep's arms trained as one population (hydra/launcher=population): each job's files equal
the same job run alone with Hydra's basic launcher, to float tolerance."""

from __future__ import annotations

import functools
import json
import math
import signal
import subprocess
import sys
import time

import pytest
import torch

from initsweep.job import job_spec
from initsweep.job.group import group_jobs, stack_key
from initsweep.train.optim import PerCopyAdam, PerCopySGD, build_stacked_optimizer
from tests.conftest import REPO, run_cli

QUICK = ["trainer.progress=false", "seeds=[0,1]"]


# --- per-copy optimizer numbers, against torch.optim one copy at a time ------------------------

OPTIMIZERS = [
    (torch.optim.SGD, [{"lr": 0.1, "momentum": 0.9}, {"lr": 0.02, "momentum": 0.0}]),
    (torch.optim.SGD, [{"lr": 0.1, "momentum": 0.5, "nesterov": True, "weight_decay": 1e-2},
                       {"lr": 0.3, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0}]),
    (torch.optim.Adam, [{"lr": 1e-3, "weight_decay": 0.0}, {"lr": 3e-2, "weight_decay": 1e-2}]),
    (torch.optim.AdamW, [{"lr": 1e-3, "weight_decay": 1e-2}, {"lr": 1e-2, "weight_decay": 0.1}]),
]  # fmt: skip


@pytest.mark.parametrize("cls, numbers", OPTIMIZERS, ids=["sgd", "nesterov", "adam", "adamw"])
def test_per_copy_numbers_update_each_copy_as_torch_does_alone(cls, numbers):
    g = torch.Generator().manual_seed(0)
    stacked = torch.randn(2, 5, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    alone = [stacked[i].detach().clone().requires_grad_(True) for i in range(2)]
    makers = [functools.partial(cls, **n) for n in numbers]
    opt = build_stacked_optimizer(makers, [stacked])
    assert isinstance(opt, PerCopySGD if cls is torch.optim.SGD else PerCopyAdam)
    refs = [make([p]) for make, p in zip(makers, alone)]
    for _ in range(5):
        grads = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
        stacked.grad = grads.clone()
        opt.step()
        for i, (ref, p) in enumerate(zip(refs, alone)):
            p.grad = grads[i].clone()
            ref.step()
            assert torch.allclose(stacked[i].detach(), p.detach(), rtol=1e-12, atol=1e-12)


def test_copies_with_the_same_numbers_keep_torch_s_own_optimizer():
    p = torch.zeros(3, 2, requires_grad=True)
    make = functools.partial(torch.optim.Adam, lr=1e-3)
    assert isinstance(build_stacked_optimizer([make, make, make], [p]), torch.optim.Adam)
    with pytest.raises(ValueError, match="may differ only in lr, momentum, weight_decay"):
        build_stacked_optimizer([make, functools.partial(torch.optim.Adam, lr=1e-3, eps=1)], [p])


# --- which jobs share a population -------------------------------------------------------------


def test_jobs_group_by_everything_but_init_bias_seeds_and_optimizer_numbers(make_cfg):
    base = ["trainer.epochs=1"]
    specs = [
        job_spec(make_cfg(*base, *extra))
        for extra in (
            ["init=xavier_uniform"],
            ["init=orthogonal", "bias=prior", "seeds=[3]"],
            ["optimizer.lr=0.02", "init.gain=2.0"],
            ["model.hidden=[32]"],  # another architecture
            ["trainer.batch_size=32"],  # another data order
            ["optimizer=adam"],  # another optimizer class
        )
    ]
    assert stack_key(specs[0]) == stack_key(specs[1]) == stack_key(specs[2])
    assert group_jobs(specs) == [[0, 1, 2], [3], [4], [5]]
    assert group_jobs(specs, max_copies=4) == [[0, 1], [2], [3], [4], [5]]  # 3 + 1 seeds, then 3


# --- end to end: the population launcher against Hydra's basic launcher ------------------------


def close(a, b, rtol=1e-4):  # float32 sums in other shard and GEMM shapes: not bit-identical
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], rtol) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y, rtol) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rtol, abs_tol=1e-6)
    return a == b


def job_files(job):
    metrics = [json.loads(line) for line in (job / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((job / "summary.json").read_text())
    return metrics, {k: summary[k] for k in ("status", "objective", "seeds", "n_diverged")}


def assert_same_jobs(alone, together, n):
    jobs = sorted(p.parent for p in alone.glob("*/summary.json"))
    assert len(jobs) == n
    for job in jobs:
        (ma, sa), (mb, sb) = job_files(job), job_files(together / job.name)
        assert close(ma, mb), job.name
        assert close(sa, sb), job.name
        for f in ("init.json", "histograms.jsonl", ".hydra/overrides.yaml"):
            assert (together / job.name / f).exists()


SWEEPS = {
    "schemes": ["experiment=fashion_mnist_schemes_twin", "trainer.epochs=1"],
    "bias": ["-m", "dataset=wine", "bias=zeros,prior", "init=xavier_uniform,kaiming_normal"],
    # identity x 1.5 on a deep linear net explodes: that arm freezes, the others go on
    "diverging": [
        "model=deep_mlp",
        "model.depth=8",
        "model.width=64",
        "init=identity",
        "init.scale=0.5,1.0,1.6",
        "optimizer.lr=0.05",
        "+init.rules=[{pattern: out.weight, scheme: xavier_normal}]",
    ],  # fmt: skip
    # the test split's one look at the end, per job
    "heldout": ["dataset=wine", "dataset.test_fraction=0.2", "init=xavier_uniform,orthogonal"],
    # batch norm stacks: both arms' copies in one vmapped population, each with its own stats
    "batchnorm": [
        "model=cnn",
        "model.batch_norm=true",
        "model.channels=[4,8]",
        "model.dropout=0.2",
        "dataset.flatten=false",
        "dataset.limit=300",
        "init=xavier_uniform,kaiming_normal",
        "trainer.strategy=vectorized",
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("sweep", SWEEPS)
def test_a_population_sweep_writes_what_each_job_writes_alone(tmp_path, sweep):
    args = [a for a in SWEEPS[sweep] if a != "-m"]
    for launcher in ("basic", "population"):
        res = run_cli(
            "-m", *args, *QUICK, "trainer.epochs=2", f"hydra/launcher={launcher}",
            f"hydra.sweep.dir={tmp_path / launcher}",
        )  # fmt: skip
        assert res.returncode == 0, res.stderr[-3000:]
    n = {"schemes": 6, "bias": 4, "diverging": 3, "heldout": 2, "batchnorm": 2}[sweep]
    assert_same_jobs(tmp_path / "basic", tmp_path / "population", n)
    assert (tmp_path / "population" / ".population").is_dir()
    if sweep == "diverging":  # the exploding arm froze, as it does alone
        last = json.loads((tmp_path / "population" / "2" / "summary.json").read_text())
        assert last["n_diverged"] == 2
    if sweep == "batchnorm":
        summary = json.loads((tmp_path / "population" / "1" / "summary.json").read_text())
        assert summary["strategy"] == "vectorized"
    if sweep == "heldout":
        records = job_files(tmp_path / "population" / "0")[0]
        assert [r["epoch"] for r in records if "test/loss" in r] == [2, 2]  # one per seed


@pytest.mark.slow
def test_a_search_batch_trains_its_trials_together_and_returns_their_objectives(tmp_path):
    storage = {}
    for launcher in ("basic", "population"):
        db = tmp_path / f"{launcher}.db"
        res = run_cli(
            "-m", "search=lr_gain", *QUICK, "trainer.epochs=2", "search.pruner=null",
            "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=4", f"search.storage=sqlite:///{db}",
            f"hydra/launcher={launcher}", f"hydra.sweep.dir={tmp_path / launcher}",
        )  # fmt: skip
        assert res.returncode == 0, res.stderr[-3000:]
        storage[launcher] = db
    import optuna

    values = {
        k: [(t.params, t.value) for t in optuna.load_study(study_name="default-lr_gain",
                                                            storage=f"sqlite:///{db}").trials]
        for k, db in storage.items()
    }  # fmt: skip
    # the same sampled lr x gain per trial; each trial's objective from its own copies
    assert [p for p, _ in values["basic"]] == [p for p, _ in values["population"]]
    assert close([v for _, v in values["basic"]], [v for _, v in values["population"]])
    assert_same_jobs(tmp_path / "basic", tmp_path / "population", 4)


@pytest.mark.slow
def test_a_killed_group_resumes_and_finished_jobs_return_their_objective(tmp_path):
    cmd = [
        sys.executable, "-m", "initsweep", "-m", "experiment=fashion_mnist_schemes_twin",
        *QUICK, "trainer.epochs=4", "hydra/launcher=population",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", "trainer.checkpoint_every=1",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not list((tmp_path / "sweep" / ".population").glob("*/checkpoint.pt")):
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list((tmp_path / "sweep").glob("*/summary.json"))
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=600)
    run_cli(
        "-m", "experiment=fashion_mnist_schemes_twin", *QUICK, "trainer.epochs=4",
        f"hydra.sweep.dir={tmp_path / 'alone'}",
    )  # fmt: skip
    assert_same_jobs(tmp_path / "alone", tmp_path / "sweep", 6)
    # a re-run of the finished sweep trains nothing and returns the stored objectives
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and out.count("finished earlier") == 6
    assert "as one" not in out  # no population was trained


def test_a_job_whose_init_fails_fails_alone_and_its_group_trains(make_cfg, tmp_path):
    from initsweep.errors import ConfigError
    from initsweep.job import run_jobs

    specs = [
        job_spec(make_cfg(*QUICK, "trainer.epochs=1", f"init={init}", output_dir=tmp_path / init))
        for init in ("kaiming_normal", "delta_orthogonal", "orthogonal")  # delta: convs only
    ]
    assert group_jobs(specs) == [[0, 1, 2]]
    good, bad, other = run_jobs(specs)
    assert isinstance(bad, ConfigError) and "needs a conv weight" in str(bad)
    assert math.isfinite(good) and math.isfinite(other)
    assert not (tmp_path / "delta_orthogonal" / "summary.json").exists()
    for init, value in (("kaiming_normal", good), ("orthogonal", other)):
        summary = json.loads((tmp_path / init / "summary.json").read_text())
        assert summary["objective"]["value"] == value and len(summary["seeds"]) == 2


def test_the_group_tracker_keeps_the_tracker_contract_and_each_job_s_files_apart(tmp_path):
    from initsweep.job.group import GroupTracker, PopulationSlice
    from initsweep.track import FilesTracker, Trackers
    from initsweep.track.base import Tracker

    class Pop:  # two jobs' copies: seeds 0, 1 of job 0; seed 5 of job 1
        strategy = "sequential"

    dirs = [tmp_path / "a", tmp_path / "b"]
    jobs = [Trackers([FilesTracker(d)]) for d in dirs]
    tracker = GroupTracker(jobs, [PopulationSlice(Pop(), 0, 2), PopulationSlice(Pop(), 2, 3)])
    assert isinstance(tracker, Tracker)
    # what belongs to copies is split by copy
    tracker.log_init({"loss": "mse", "seeds": [{"seed": 0}, {"seed": 1}, {"seed": 5}]})
    # what belongs to a job names it: records and summaries carry their job, not written
    tracker.log_metrics([{"seed": 0, "step": 1, "job": 0}, {"seed": 5, "step": 1, "job": 1}])
    tracker.closed.add(1)  # job 1 stopped (pruned): no more records but the held-out look
    tracker.log_metrics([{"seed": 5, "step": 2, "job": 1, "val/loss": 1.0}])
    tracker.log_metrics([{"seed": 5, "step": 2, "job": 1, "test/loss": 1.5}])
    tracker.log_summary({"objective": {"value": 2.0}, "job": 1})
    tracker.finish()
    read = lambda d, f: json.loads((d / f).read_text())  # noqa: E731
    assert [s["seed"] for s in read(dirs[0], "init.json")["seeds"]] == [0, 1]
    assert [s["seed"] for s in read(dirs[1], "init.json")["seeds"]] == [5]
    lines = [(d / "metrics.jsonl").read_text().splitlines() for d in dirs]
    assert [json.loads(x) for x in lines[0]] == [{"seed": 0, "step": 1}]
    assert [json.loads(x) for x in lines[1]] == [
        {"seed": 5, "step": 1}, {"seed": 5, "step": 2, "test/loss": 1.5}
    ]  # fmt: skip
    assert read(dirs[1], "summary.json") == {"objective": {"value": 2.0}}
    assert not (dirs[0] / "summary.json").exists()
