"""The Python API: initsweep.initialize / expected_loss_at_init in a training loop of your own."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initsweep
from initsweep.errors import ConfigError
from initsweep.init.bias import best_constant_losses

Y = torch.distributions.LogNormal(0.0, 1.0).sample((2000,))  # right-skewed, like arrival times


def regressor() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 1))


ZERO_HEAD = [{"pattern": "2.weight", "scheme": "zeros"}]  # the prediction is then the bias


@pytest.mark.parametrize(
    "bias, loss, expected",
    [
        ("mean", "mse", lambda y: float(y.double().var(correction=0))),
        ("median", "mae", lambda y: float((y - y.median()).abs().double().mean())),
        ("huber", "huber", lambda y: best_constant_losses(y)["huber"]),
    ],
)
def test_the_output_bias_rule_makes_the_loss_at_init_its_closed_form(bias, loss, expected):
    model, x = regressor(), torch.randn(16, 4)
    initsweep.initialize(model, "kaiming_normal", bias, targets=Y, loss=loss, x=x, rules=ZERO_HEAD)
    assert initsweep.expected_loss_at_init(model, Y, loss, x=x) == pytest.approx(expected(Y))
    # measured on the data: the same number (the output weights are 0)
    losses = {"mse": F.mse_loss, "mae": F.l1_loss, "huber": F.huber_loss}
    measured = losses[loss](model(torch.randn(len(Y), 4))[:, 0], Y).item()
    assert measured == pytest.approx(expected(Y), rel=1e-5)


def test_initialize_seeds_each_parameter_and_reports_the_assignment():
    a = initsweep.initialize(regressor(), "xavier_uniform", gain=1.0, seed=3, x=torch.randn(2, 4))
    b = initsweep.initialize(regressor(), "xavier_uniform", gain=1.0, seed=3, x=torch.randn(2, 4))
    assert [e["param"] for e in a] == ["0.weight", "2.weight", "0.bias", "2.bias"]
    assert a == b and a[0]["scheme"] == "xavier_uniform" and a[0]["gain"] == 1.0
    m1, m2 = regressor(), regressor()
    initsweep.initialize(m1, "orthogonal", seed=0, x=torch.randn(2, 4))
    initsweep.initialize(m2, "orthogonal", seed=1, x=torch.randn(2, 4))
    assert not torch.equal(m1[0].weight, m2[0].weight)  # another seed, another draw


def test_classification_targets_give_the_prior_bias():
    y = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    model = nn.Sequential(nn.Linear(4, 3))
    initsweep.initialize(model, "zeros", "prior", targets=y, output_layer="0")
    prior = torch.tensor([0.6, 0.3, 0.1])
    assert torch.allclose(model[0].bias, prior.log(), atol=1e-6)
    entropy = -(prior * prior.log()).sum().item()
    assert initsweep.expected_loss_at_init(model, y, output_layer="0") == pytest.approx(entropy)


def test_a_data_rule_without_an_output_layer_says_how_to_name_it():
    with pytest.raises(ConfigError, match="needs the model's output layer"):
        initsweep.initialize(regressor(), bias="mean", targets=Y)  # no x, nothing to find it on


def test_import_initsweep_stays_light():
    code = "import sys, initsweep; assert 'torch' not in sys.modules; initsweep.initialize"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert math.isfinite(initsweep.expected_loss_at_init(regressor(), Y, "mse", output_layer="2"))
