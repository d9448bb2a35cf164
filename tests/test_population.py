"""Populations: a copy trained in the stacked population follows the same numbers as alone."""

from __future__ import annotations

import copy
import functools
import json
import logging
import subprocess
import sys

import pytest
import torch
from torch import nn

from initsweep.errors import ConfigError
from initsweep.job import run
from initsweep.models import CNN, MLP, DeepMLP, LSTMNet
from initsweep.train.dropout import DropoutStreams, keep_threshold
from initsweep.train.malloc import keep_freed_memory
from initsweep.train.metrics import loss_fn
from initsweep.train.population import SequentialPopulation, make_population
from initsweep.train.stacked import SharedInputLinear
from initsweep.train.vectorized import VectorizedPopulation
from tests.conftest import REPO, run_cli

CE = loss_fn("cross_entropy")
OPTIMIZERS = {
    "sgd_momentum": functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9),
    "adam": functools.partial(torch.optim.Adam, lr=1e-2),
    "adamw": functools.partial(torch.optim.AdamW, lr=1e-2, weight_decay=0.1),
}


def _copies(model_fn, m: int) -> list[nn.Module]:
    torch.manual_seed(0)  # each copy gets other weights, as from the init library
    return [model_fn().double() for _ in range(m)]


def _data(shape=(12,), n=96):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, *shape, generator=g, dtype=torch.float64), torch.randint(
        0, 4, (n,), generator=g
    )


def _batches(n=96, steps=15, batch=16):
    g = torch.Generator().manual_seed(2)
    return [torch.randperm(n, generator=g)[:batch] for _ in range(steps)]


def _train(pop, x, y, steps=15) -> torch.Tensor:
    return torch.stack([pop.train_step(x[i], y[i]) for i in _batches(len(x), steps)])


def _mlp(p=0.0):
    return lambda: MLP((12,), 4, hidden=(16, 8), dropout=p)


@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("shards", [1, 2])
def test_vectorized_matches_sequential_per_copy(opt, shards):
    models, (x, y) = _copies(_mlp(), 3), _data()
    seq = SequentialPopulation(copy.deepcopy(models), OPTIMIZERS[opt], CE, [0, 1, 2])
    vec = VectorizedPopulation(models, OPTIMIZERS[opt], CE, [0, 1, 2], shards=shards)
    # float64: any real difference (a mask, a gradient, the optimizer state) would show at >1e-6
    torch.testing.assert_close(_train(vec, x, y), _train(seq, x, y), rtol=0, atol=1e-12)
    torch.testing.assert_close(vec.predict(x, 40), seq.predict(x, 40), rtol=0, atol=1e-12)
    for i in range(3):
        for (name, a), b in zip(vec.module(i).named_parameters(), seq.models[i].parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12, msg=name)


def test_shared_input_linear_gradients_float64():
    g = torch.Generator().manual_seed(3)
    x, w, b = (
        torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
        for shape in ((5, 7), (3, 4, 7), (3, 4))
    )
    assert torch.autograd.gradcheck(SharedInputLinear.apply, (x, w, b))
    assert torch.autograd.gradcheck(SharedInputLinear.apply, (x, w, None))


@pytest.mark.parametrize("bias", [True, False])
def test_shared_input_linear_float32_matches_each_copy_alone(bias):
    # float32 on the CPU runs oneDNN's kernel: it must give each copy's nn.functional.linear
    g = torch.Generator().manual_seed(4)
    x = torch.randn(128, 784, generator=g)
    w = torch.randn(6, 256, 784, generator=g).mul_(0.05).requires_grad_(True)
    b = torch.randn(6, 256, generator=g).requires_grad_(True) if bias else None
    grad = torch.randn(6, 128, 256, generator=g)
    y = SharedInputLinear.apply(x, w, b)
    y.backward(grad)
    for i in range(6):
        wi = w[i].detach().requires_grad_(True)
        bi = b[i].detach().requires_grad_(True) if bias else None
        yi = nn.functional.linear(x, wi, bi)
        yi.backward(grad[i])
        torch.testing.assert_close(y[i], yi, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(w.grad[i], wi.grad, rtol=1e-5, atol=1e-4)
        if bias:
            torch.testing.assert_close(b.grad[i], bi.grad, rtol=1e-5, atol=1e-4)


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_keep_freed_memory_applies_on_glibc():
    assert keep_freed_memory() is True and keep_freed_memory() is True  # idempotent


class ExplicitDropout(nn.Module):
    """Dropout whose multipliers are given: the masks a stacked copy drew, replayed alone."""

    def __init__(self, masks: list[torch.Tensor]) -> None:
        super().__init__()
        self.masks = masks

    def forward(self, h):
        return h * self.masks.pop(0) if self.training else h


def test_dropout_copy_matches_the_copy_alone_with_the_same_masks():
    models, (x, y) = _copies(_mlp(0.3), 3), _data()
    vec = VectorizedPopulation(copy.deepcopy(models), OPTIMIZERS["adam"], CE, [5, 6, 7])
    losses = _train(vec, x, y)
    # replay copy 1 alone: its masks come only from its own stream (seed 6), in forward order
    stream, masks = DropoutStreams([6], torch.device("cpu")), []
    for _ in range(15):
        masks += [stream.mask(0.3, (16, w), torch.float64)[0] for w in (16, 8)]
    alone = models[1]
    alone.body[3] = ExplicitDropout(masks)
    alone.body[6] = ExplicitDropout(masks)
    seq = SequentialPopulation([alone], OPTIMIZERS["adam"], CE, [0])
    torch.testing.assert_close(losses[:, 1:2], _train(seq, x, y), rtol=0, atol=1e-12)
    assert not masks  # every mask was used, in the same order


def test_dropout_masks_differ_across_copies_and_keep_one_minus_p():
    streams = DropoutStreams([0, 1, 2], torch.device("cpu"))
    masks = streams.mask(0.2, (256, 128), torch.float32)
    assert masks.shape == (3, 256, 128)
    assert set(masks.unique().tolist()) == {0.0, 1.25}  # inverted dropout: kept units * 1/(1-p)
    keep = (masks > 0).double().mean(dim=(1, 2))
    # 32768 draws per copy: the keep rate is 0.8 within 5 standard errors (0.0022 each)
    assert torch.all((keep - 0.8).abs() < 0.011)
    assert not torch.equal(masks[0], masks[1]) and not torch.equal(masks[1], masks[2])
    assert (keep_threshold(0.2) + 32768) / 65536 == pytest.approx(0.8, abs=1 / 65536)


def test_identical_copies_part_only_through_dropout():
    # the same initial weights in all copies: with dropout they diverge, without they do not
    base, (x, y) = _mlp(0.2)().double(), _data()
    vec = VectorizedPopulation(
        [copy.deepcopy(base) for _ in range(3)], OPTIMIZERS["adam"], CE, [0, 1, 2]
    )
    losses = _train(vec, x, y, steps=3)
    assert len(set(losses[0].tolist())) == 3
    base.body[3].p = base.body[6].p = 0.0
    vec = VectorizedPopulation(
        [copy.deepcopy(base) for _ in range(3)], OPTIMIZERS["adam"], CE, [0, 1, 2]
    )
    losses = _train(vec, x, y, steps=3)
    assert torch.all(losses == losses[:, :1])


@pytest.mark.parametrize("shards", [1, 2])
def test_frozen_copy_is_masked_and_the_others_are_unaffected(shards):
    models, (x, y) = _copies(_mlp(0.2), 3), _data()
    with torch.no_grad():
        models[1].out.weight[0, 0] = float("nan")  # copy 1 diverges at its first step
    vec = VectorizedPopulation(
        copy.deepcopy(models), OPTIMIZERS["adam"], CE, [0, 1, 2], shards=shards
    )
    first = vec.train_step(*_data())
    assert torch.isnan(first[1]) and torch.isfinite(first[[0, 2]]).all()
    assert vec.parameters_finite().tolist() == [True, False, True]
    vec.freeze(1)  # what the loop does when it sees the NaN
    frozen = vec.state_dict()
    losses = _train(vec, x, y)
    # the frozen copy reports NaN and its weights and optimizer state no longer change
    assert torch.isnan(losses[:, 1]).all()
    after = vec.state_dict()
    for name, w in frozen["models"][1].items():
        torch.testing.assert_close(after["models"][1][name], w, equal_nan=True)
    for name, state in after["optimizers"]["state"].items():
        for key, v in state.items():
            if v.dim() > 0:
                torch.testing.assert_close(
                    v[1], frozen["optimizers"]["state"][name][key][1], equal_nan=True
                )
    # the others match a population that never held copy 1
    alone = VectorizedPopulation(
        [copy.deepcopy(models[0]), copy.deepcopy(models[2])],
        OPTIMIZERS["adam"],
        CE,
        [0, 2],
        shards=shards,
    )
    alone.train_step(*_data())
    torch.testing.assert_close(losses[:, [0, 2]], _train(alone, x, y), rtol=0, atol=1e-12)


@pytest.mark.parametrize("saved, loaded", [(2, 1), (1, 2)])
def test_state_dict_resumes_exactly_with_another_shard_count(saved, loaded):
    models, (x, y) = _copies(_mlp(0.2), 4), _data()
    straight = VectorizedPopulation(copy.deepcopy(models), OPTIMIZERS["adam"], CE, [0, 1, 2, 3])
    _train(straight, x, y, steps=5)
    want = _train(straight, x, y, steps=5)

    first = VectorizedPopulation(
        copy.deepcopy(models), OPTIMIZERS["adam"], CE, [0, 1, 2, 3], shards=saved
    )
    _train(first, x, y, steps=5)
    first.freeze(3)
    resumed = VectorizedPopulation(
        copy.deepcopy(models), OPTIMIZERS["adam"], CE, [0, 1, 2, 3], shards=loaded
    )
    resumed.load_state_dict(first.state_dict())
    got = _train(resumed, x, y, steps=5)
    assert resumed.active == [True, True, True, False]
    torch.testing.assert_close(got[:, :3], want[:, :3], rtol=0, atol=1e-12)


def test_module_is_a_plain_copy_with_the_current_weights():
    models, (x, y) = _copies(lambda: DeepMLP((12,), 4, depth=3, width=8), 2), _data()
    vec = VectorizedPopulation(models, OPTIMIZERS["sgd_momentum"], CE, [0, 1])
    _train(vec, x, y, steps=3)
    m = vec.module(1)
    assert type(m) is DeepMLP
    torch.testing.assert_close(m.eval()(x), vec.predict(x)[1], rtol=0, atol=1e-12)


def test_cnn_vectorizes_through_vmap_when_asked():
    models = _copies(lambda: CNN((1, 8, 8), 4, channels=(4, 6)), 2)
    x, y = _data((1, 8, 8))
    pop = make_population(copy.deepcopy(models), OPTIMIZERS["adam"], CE, [0, 1], "vectorized")
    seq = SequentialPopulation(models, OPTIMIZERS["adam"], CE, [0, 1])
    assert pop.strategy == "vectorized"
    torch.testing.assert_close(_train(pop, x, y, 5), _train(seq, x, y, 5), rtol=0, atol=1e-12)


def test_models_that_cannot_be_stacked_fall_back_to_sequential(caplog):
    # batch norm stacks now (tests/test_stack.py); vmap has no rule for nn.LSTM
    models, reason = _copies(lambda: LSTMNet((6, 3), 4, hidden_size=8), 2), "LSTM"
    with caplog.at_level(logging.INFO, logger="initsweep"):
        pop = make_population(models, OPTIMIZERS["sgd_momentum"], CE, [0, 1], "auto")
    assert pop.strategy == "sequential"
    assert reason in caplog.text and "one after another" in caplog.text
    # asked for explicitly, it is a config error of one line naming the key
    with pytest.raises(ConfigError, match=r"^trainer.strategy='vectorized' is invalid: .*"):
        make_population(models, OPTIMIZERS["sgd_momentum"], CE, [0, 1], "vectorized")


def test_auto_keeps_cnn_sequential_on_cpu_and_stacks_mlps():
    cnn = _copies(lambda: CNN((1, 8, 8), 4, channels=(4,)), 2)
    assert make_population(cnn, OPTIMIZERS["adam"], CE, [0, 1]).strategy == "sequential"
    assert make_population(_copies(_mlp(), 2), OPTIMIZERS["adam"], CE, [0, 1]).strategy == (
        "vectorized"
    )


@pytest.mark.slow
def test_jobs_use_the_stacked_population_by_default(make_cfg, tmp_path):
    run(make_cfg("trainer.epochs=1", "seeds=[0,1]"))
    assert json.loads((tmp_path / "summary.json").read_text())["strategy"] == "vectorized"


@pytest.mark.slow
def test_cli_vectorized_matches_sequential_end_to_end(make_cfg, tmp_path):
    done = run_cli(
        "trainer.strategy=vectorized",
        "trainer.epochs=2",
        "trainer.progress=false",
        f"hydra.run.dir={tmp_path / 'vectorized'}",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "vectorized" / "summary.json").read_text())
    assert summary["strategy"] == "vectorized"
    assert not any(s["diverged"] for s in summary["seeds"])
    sequential = run(make_cfg("trainer.strategy=sequential", output_dir=tmp_path / "sequential"))
    # float32 on the same batches from the same initial weights: equal up to rounding
    assert summary["objective"]["value"] == pytest.approx(sequential, rel=1e-4)


@pytest.mark.slow
def test_bench_quick_writes_every_variant(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    got = {(r["model"], r["m"], r["variant"]) for r in result["rows"]}
    tv = ("resnet18", "efficientnet_b0")  # sequential (b) against stacked (c) only
    assert got == {(m, n, v) for m in ("mlp", "cnn") for n in (1, 2) for v in "abc"} | {
        ("mlp", n, "g") for n in (1, 2)
    } | {(m, n, v) for m in tv for n in (1, 2) for v in "bc"}
    assert all(r["samples_per_s"] > 0 and r["peak_fraction"] > 0 for r in result["rows"])
    assert result["peak_flops"] > 0 and "| mlp | 2 | (c)" in done.stdout
    assert "ceiling mlp M=2: (c) runs at" in done.stdout
    # the stacked-against-sequential table and what auto picks on this CPU for each row
    stack = {(r["model"], r["m"]): r for r in result["stack"]}
    assert set(stack) == {(m, n) for m in ("cnn", *tv) for n in (1, 2)}
    assert all(r["auto"] == "sequential" and r["speedup"] > 0 for r in stack.values())
    assert "| resnet18 | 2 |" in done.stdout and "auto picks" in done.stdout


@pytest.mark.parametrize(
    "model, shape, shards",
    [
        (_mlp(), (12,), 1),
        (_mlp(), (12,), 2),
        (lambda: CNN((1, 8, 8), 4, channels=(4,)), (1, 8, 8), 1),
    ],
)
def test_gradients_of_a_stacked_copy_are_its_own(model, shape, shards):
    # what tracker.gradients histograms: copy i's slice of the stacked .grad, as if alone
    models, (x, y) = _copies(model, 3), _data(shape)
    seq = SequentialPopulation(copy.deepcopy(models), OPTIMIZERS["adam"], CE, [0, 1, 2])
    vec = VectorizedPopulation(models, OPTIMIZERS["adam"], CE, [0, 1, 2], shards=shards)
    assert vec.gradients(0) == {} and seq.gradients(0) == {}  # nothing before the first step
    _train(vec, x, y, 2), _train(seq, x, y, 2)
    for i in range(3):
        names = [n for n, _ in seq.models[i].named_parameters()]
        assert list(vec.gradients(i)) == list(seq.gradients(i)) == names
        for name, g in vec.gradients(i).items():
            torch.testing.assert_close(g, seq.gradients(i)[name], rtol=0, atol=1e-12, msg=name)
