"""On a GPU (skipped without one): a population under bf16 autocast, batch-norm nets stacked by
auto with each copy's own random stream, the population launcher, torch.compile, and both
benchmarks with --device cuda."""

from __future__ import annotations

import copy
import functools
import json
import subprocess
import sys

import pytest
import torch

from initsweep.models import MLP, resnet18
from initsweep.train.metrics import loss_fn
from initsweep.train.population import SequentialPopulation, make_population
from initsweep.train.vectorized import VectorizedPopulation
from tests.conftest import REPO, run_cli

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
QUICK = ["trainer.epochs=1", "trainer.progress=false", "trainer.device=cuda"]


def test_a_stacked_population_trains_under_bf16_autocast():
    torch.manual_seed(0)
    models = [MLP((64,), 10, hidden=(128, 128), dropout=0.2).cuda() for _ in range(8)]
    adam = functools.partial(torch.optim.Adam, lr=1e-3)
    pop = VectorizedPopulation(models, adam, loss_fn("cross_entropy"), list(range(8)), amp=True)
    x, y = torch.randn(256, 64, device="cuda"), torch.randint(0, 10, (256,), device="cuda")
    first = pop.train_step(x, y)
    for _ in range(50):
        last = pop.train_step(x, y)
    assert first.device.type == "cuda" and torch.isfinite(last).all()
    assert (last < first).all()  # every copy learns the batch
    assert pop.module(0).out.weight.dtype == torch.float32  # weights stay fp32 under autocast


def test_auto_stacks_a_batch_norm_resnet_on_cuda():
    torch.manual_seed(0)
    models = [resnet18((3, 32, 32), 2).cuda() for _ in range(4)]
    adam = functools.partial(torch.optim.Adam, lr=1e-3)
    x, y = torch.randn(16, 3, 32, 32, device="cuda"), torch.randint(0, 2, (16,), device="cuda")
    pop = make_population(models, adam, loss_fn("cross_entropy"), [0, 1, 2, 3], sample=x[:2])
    assert pop.strategy == "vectorized"  # auto, on CUDA: buffers stack
    assert torch.isfinite(pop.train_step(x, y)).all()
    means = [pop.module(i).net.bn1.running_mean for i in range(4)]
    assert not torch.equal(means[0], means[1])  # each copy's own running statistics


def test_a_stacked_copy_equals_the_copy_alone_on_cuda():
    # float64 on the GPU: each copy's dropout and attention dropout from its CUDA generator
    from tests.test_stack import CE, SGD, UserNet

    torch.manual_seed(0)
    models = [UserNet().double().cuda() for _ in range(3)]
    x = torch.randn(8, 6, dtype=torch.float64, device="cuda")
    y = torch.randint(0, 4, (8,), device="cuda")
    stacked = VectorizedPopulation([copy.deepcopy(m) for m in models], SGD, CE, [5, 6, 7])
    losses = torch.stack([stacked.train_step(x, y) for _ in range(3)])
    for i, model in enumerate(models):
        alone = SequentialPopulation([model], SGD, CE, [5 + i])
        want = torch.stack([alone.train_step(x, y) for _ in range(3)])
        torch.testing.assert_close(losses[:, i : i + 1], want, rtol=0, atol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("extra", [["hydra/launcher=population"], ["trainer.compile=true"]])
def test_the_cli_on_cuda(tmp_path, extra):
    res = run_cli(
        "-m", "init=kaiming_normal,xavier_uniform", *QUICK, *extra, f"hydra.sweep.dir={tmp_path}"
    )
    assert res.returncode == 0, res.stderr[-3000:]
    for path in tmp_path.glob("*/summary.json"):
        assert json.loads(path.read_text())["status"] == "finished"


@pytest.mark.slow
@pytest.mark.parametrize("script", ["bench.py", "bench_study.py"])
def test_the_benchmarks_run_on_cuda(tmp_path, script):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, f"scripts/{script}", "--quick", "--device", "cuda", "--out", out]
    subprocess.run([str(c) for c in cmd], cwd=REPO, check=True, timeout=900)
    assert json.loads(out.read_text())["device"].startswith("cuda")
