"""Every network stacks: copy i of a population of M equals copy i trained alone.

Same initial weights, same batches, same random streams (dropout, attention dropout, stochastic
depth): float64 within 1e-10 over 3 steps, float32 within rounding; batch norm's running
statistics are each copy's own, in training and in eval mode, and survive a checkpoint.
"""

from __future__ import annotations

import copy
import functools
import json
import logging

import pytest
import torch
from torch import nn

from initsweep.errors import ConfigError
from initsweep.job import run
from initsweep.models import CNN, MLP, LSTMNet, TorchvisionNet, efficientnet_b0, resnet18
from initsweep.train.metrics import loss_fn
from initsweep.train.population import SequentialPopulation, make_population
from initsweep.train.strategy import vmap_problem
from initsweep.train.vectorized import VectorizedPopulation

CE = loss_fn("cross_entropy")
# SGD, not Adam, for the cross-model checks: a bias in front of batch norm has a gradient that is
# zero but for rounding, and Adam scales any such noise up to a step of size lr
SGD = functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9)
ADAM = functools.partial(torch.optim.Adam, lr=1e-2)


class UserNet(nn.Module):
    """A user's model: batch norm, dropout and attention (with its own dropout)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.norm = nn.Linear(6, 8), nn.BatchNorm1d(8)
        self.drop = nn.Dropout(0.3)
        self.attn = nn.MultiheadAttention(8, 2, dropout=0.2, batch_first=True)
        self.out = nn.Linear(8, 4)

    def forward(self, x):
        h = self.drop(self.norm(self.inp(x)).relu())
        tokens = torch.stack([h, h.flip(-1), h * 0.5], dim=1)  # [N, 3, 8]
        h = tokens + self.attn(tokens, tokens, tokens)[0]
        return self.out(h.mean(1))


MODELS = {  # name: (model, input shape); each draws random numbers in training
    "cnn": (lambda: CNN((1, 8, 8), 4, channels=(4, 6), batch_norm=True, dropout=0.3), (1, 8, 8)),
    "lstm": (lambda: LSTMNet((6, 3), 4, hidden_size=8, num_layers=2, dropout=0.3), (6, 3)),
    "user": (UserNet, (6,)),
    "resnet18": (lambda: resnet18((3, 8, 8), 4), (3, 8, 8)),
    "efficientnet_b0": (lambda: efficientnet_b0((3, 8, 8), 4), (3, 8, 8)),  # stochastic depth
}
SLOW = {"resnet18", "efficientnet_b0"}


def _copies(make, m: int, dtype=torch.float64) -> list[nn.Module]:
    torch.manual_seed(0)  # each copy gets other weights, as from the init library
    return [make().to(dtype) for _ in range(m)]


def _data(shape, dtype=torch.float64, n=8):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, *shape, generator=g, dtype=dtype)
    return x, torch.randint(0, 4, (n,), generator=g)


def _population(models, opt, seeds, stacked: bool):
    if stacked:
        return VectorizedPopulation(models, opt, CE, seeds)
    return SequentialPopulation(models, opt, CE, seeds)


def _steps(pop, x, y, steps=3, per_copy=False):
    return torch.stack([pop.train_step(x, y, per_copy) for _ in range(steps)])


def _states(pop, i):
    return {k: v.double() for k, v in pop.module(i).state_dict().items()}


def _assert_copy_alone(name, dtype, opt, atol, rtol=0.0, m=3):
    make, shape = MODELS[name]
    models, (x, y) = _copies(make, m, dtype), _data(shape, dtype)
    stacked = name != "lstm"  # vmap has no rule for nn.LSTM: its population is sequential
    pop = _population(copy.deepcopy(models), opt, [5, 6, 7][:m], stacked)
    losses = _steps(pop, x, y)
    for i in range(m):
        alone = SequentialPopulation([copy.deepcopy(models[i])], opt, CE, [5 + i])
        want = _steps(alone, x, y)
        torch.testing.assert_close(losses[:, i : i + 1], want, rtol=rtol, atol=atol)
        # weights and buffers, and eval mode with each copy's own running statistics; a deep
        # net in eval mode after 3 steps (small running variances) amplifies rounding: relative
        for key, value in _states(alone, 0).items():
            got = _states(pop, i)[key]
            torch.testing.assert_close(got, value, rtol=max(rtol, 1e-9), atol=atol, msg=key)
        got, want = pop.predict(x)[i], alone.predict(x)[0]
        torch.testing.assert_close(got, want, rtol=max(rtol, 1e-7), atol=atol)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in MODELS]
)
def test_a_stacked_copy_equals_the_copy_alone_in_float64(name):
    _assert_copy_alone(name, torch.float64, SGD, atol=1e-10, m=2 if name in SLOW else 3)


@pytest.mark.parametrize("name", ["cnn", "user"])
def test_a_stacked_copy_equals_the_copy_alone_in_float32(name):
    # another stacked shape sums in another order: equal up to float32 rounding
    _assert_copy_alone(name, torch.float32, SGD, atol=1e-5, rtol=1e-4)


def test_a_stacked_copy_equals_the_copy_alone_under_adam():
    _assert_copy_alone("cnn", torch.float64, ADAM, atol=1e-10)


def test_masks_do_not_depend_on_the_other_copies():
    # copy 1 (seed 6) in a stack of 3 and in a stack of 2 with another neighbour: same numbers
    make, shape = MODELS["user"]
    models, (x, y) = _copies(make, 3), _data(shape)
    three = VectorizedPopulation(copy.deepcopy(models), SGD, CE, [5, 6, 7])
    two = VectorizedPopulation(copy.deepcopy(models[1:]), SGD, CE, [6, 9])
    torch.testing.assert_close(
        _steps(three, x, y)[:, 1], _steps(two, x, y)[:, 0], rtol=0, atol=1e-10
    )


def test_mlp_dropout_is_the_same_stacked_by_hand_and_alone():
    # the hand-written MLP stack and a plain module draw the same masks from a copy's stream
    models, (x, y) = _copies(lambda: MLP((6,), 4, hidden=(16, 8), dropout=0.3), 3), _data((6,))
    stacked = VectorizedPopulation(copy.deepcopy(models), ADAM, CE, [5, 6, 7], shards=2)
    alone = SequentialPopulation(models, ADAM, CE, [5, 6, 7])
    torch.testing.assert_close(_steps(stacked, x, y), _steps(alone, x, y), rtol=0, atol=1e-10)


@pytest.mark.parametrize("stacked", [True, False])
@pytest.mark.parametrize("name", ["user", "mlp"])
def test_a_batch_per_copy_trains_each_copy_as_alone(name, stacked):
    # trainer.data_order=per_seed: x [M, B, ...], copy i on its own rows
    make, shape = MODELS.get(name, (lambda: MLP((6,), 4, hidden=(16,), dropout=0.2), (6,)))
    models = _copies(make, 3)
    x, y = _data(shape, n=24)
    xs, ys = x.view(3, 8, *shape), y.view(3, 8)
    pop = _population(copy.deepcopy(models), SGD, [5, 6, 7], stacked)
    losses = _steps(pop, xs, ys, per_copy=True)
    for i in range(3):
        alone = SequentialPopulation([copy.deepcopy(models[i])], SGD, CE, [5 + i])
        torch.testing.assert_close(
            losses[:, i : i + 1], _steps(alone, xs[i], ys[i]), rtol=0, atol=1e-10
        )


def test_a_stacked_batch_norm_population_resumes_with_its_running_statistics(tmp_path):
    make, shape = MODELS["cnn"]
    models, (x, y) = _copies(make, 3), _data(shape)
    straight = VectorizedPopulation(copy.deepcopy(models), ADAM, CE, [0, 1, 2])
    _steps(straight, x, y, 2)
    torch.save(straight.state_dict(), tmp_path / "pop.pt")
    saved = torch.load(tmp_path / "pop.pt", weights_only=True)
    mean = saved["models"][1]["body.1.running_mean"]
    assert mean.abs().sum() > 0 and not torch.equal(
        mean, saved["models"][0]["body.1.running_mean"]
    )
    resumed = VectorizedPopulation(copy.deepcopy(models), ADAM, CE, [0, 1, 2])
    resumed.load_state_dict(saved)
    torch.testing.assert_close(resumed.predict(x), straight.predict(x), rtol=0, atol=0)
    torch.testing.assert_close(_steps(resumed, x, y), _steps(straight, x, y), rtol=0, atol=0)


def test_a_frozen_copy_keeps_its_running_statistics():
    make, shape = MODELS["cnn"]
    pop = VectorizedPopulation(_copies(make, 2), SGD, CE, [0, 1])
    x, y = _data(shape)
    pop.train_step(x, y)
    pop.freeze(1)
    before = _states(pop, 1)
    _steps(pop, x, y)
    after = _states(pop, 1)
    assert all(torch.equal(after[k], v) for k, v in before.items())  # running stats too
    assert not torch.equal(_states(pop, 0)["body.1.running_mean"], before["body.1.running_mean"])


class EmptyNoise(nn.Module):
    """Draws into a fresh ``torch.empty``, which vmap cannot give per-copy numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        return self.fc(x) * torch.empty(4).bernoulli_(0.5)


def test_a_model_that_cannot_stack_says_why_in_one_line(caplog):
    models, (x, _) = _copies(EmptyNoise, 2), _data((6,))
    with pytest.raises(ConfigError, match=r"^trainer.strategy='vectorized' is invalid: ") as e:
        make_population(models, SGD, CE, [0, 1], "vectorized", sample=x[:2])
    assert "vmap cannot batch EmptyNoise" in str(e.value) and "\n" not in str(e.value)
    with caplog.at_level(logging.INFO, logger="initsweep"):
        pop = make_population(models, SGD, CE, [0, 1], "auto", sample=x[:2])
    assert pop.strategy == "sequential" and "one after another" in caplog.text


def test_auto_on_a_cpu_follows_the_measured_table(caplog):
    make, shape = MODELS["cnn"]
    with caplog.at_level(logging.INFO, logger="initsweep"):
        pop = make_population(_copies(make, 4), SGD, CE, [0, 1, 2, 3], "auto")
    assert pop.strategy == "sequential"
    assert "cnn copies train faster one at a time than stacked (make bench" in caplog.text
    with caplog.at_level(logging.INFO, logger="initsweep"):
        pop = make_population(_copies(lambda: MLP((6,), 4), 2), SGD, CE, [0, 1], "auto")
    assert pop.strategy == "vectorized" and "the 2 copies train stacked" in caplog.text


@pytest.mark.slow
@pytest.mark.parametrize("model", ["resnet18", "efficientnet_b0"])
def test_torchvision_nets_train_stacked_in_a_job(make_cfg, tmp_path, model):
    run(
        make_cfg(
            f"model={model}", "dataset=digits", "dataset.flatten=false", "dataset.limit=48",
            "trainer.strategy=vectorized", "trainer.epochs=1", "trainer.batch_size=16",
            "seeds=[0,1]", "tracker.histogram_every=0",
        )
    )  # fmt: skip
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["strategy"] == "vectorized" and summary["status"] == "finished"


@pytest.mark.parametrize("arch", ["resnet18", "efficientnet_b0", "efficientnet_b1"])
def test_torchvision_nets_pass_the_trial_step_that_auto_runs_on_cuda(arch):
    # what decides auto on CUDA: a training step of two copies through vmap (buffers, draws)
    model = TorchvisionNet((3, 8, 8), 2, arch=arch)
    assert vmap_problem(model, torch.randn(2, 3, 8, 8)) is None
