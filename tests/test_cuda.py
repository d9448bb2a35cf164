"""On a GPU (skipped without one): a population under bf16 autocast, the population launcher,
torch.compile, and both benchmarks with --device cuda."""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import pytest
import torch

from initsweep.models import MLP
from initsweep.train.metrics import loss_fn
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
