"""LSUV (Mishkin & Matas 2016): orthonormal pre-init, then unit output variance layer by layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from initsweep.errors import ConfigError
from initsweep.init import initialize, param_generator
from initsweep.init.bias import BiasContext
from initsweep.models import MLP

CTX = BiasContext("multiclass", torch.full((4,), 0.25))


class TinyCNN(nn.Module):
    activation, output_layer = "relu", "out"

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.out = nn.Linear(16 * 8 * 8, 4)

    def forward(self, x):
        h = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.out(h.flatten(1))


def _calibration_batch(x: torch.Tensor, seed: int, size: int) -> torch.Tensor:
    """The batch initialize() draws: the first ``size`` of a (seed, 'lsuv.batch') permutation."""
    return x[torch.randperm(len(x), generator=param_generator(seed, "lsuv.batch"))[:size]]


def _wx_variances(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Var(W x) of every Linear/Conv layer's output (bias removed) on ``x``."""
    out = {}

    def hook(name):
        def f(module, inputs, output):
            b = module.bias.view(1, -1, *[1] * (output.dim() - 2))
            out[name] = float((output - b).double().var(unbiased=False))

        return f

    hs = [
        m.register_forward_hook(hook(n))
        for n, m in model.named_modules()
        if isinstance(m, (nn.Linear, nn.Conv2d))
    ]
    with torch.no_grad():
        model.eval()
        model(x)
    for h in hs:
        h.remove()
    return out


@pytest.mark.parametrize(
    "make_model, x",
    [
        (
            lambda: MLP((20,), 4, hidden=(64, 64, 64), activation="tanh"),
            torch.rand(600, 20) * 3 + 1,
        ),
        (TinyCNN, torch.rand(300, 1, 8, 8)),
    ],
)
def test_every_layer_has_unit_output_variance_on_the_calibration_batch(make_model, x):
    model = make_model()
    assignment = initialize(
        model,
        {"name": "lsuv", "tol_var": 0.1, "batch_size": 128},
        {"hidden": "default"},
        CTX,
        7,
        x,
    )
    variances = _wx_variances(model, _calibration_batch(x, 7, 128))
    assert len(variances) >= 3
    for name, var in variances.items():  # the post-condition of Algorithm 1
        assert abs(var - 1.0) < 0.1, (name, var)
    recorded = {a["param"]: a for a in assignment}
    for name in variances:
        entry = recorded[f"{name}.weight"]
        assert entry["lsuv_var"] == pytest.approx(variances[name], rel=1e-4)
        assert 0 <= entry["lsuv_trials"] <= 10
    # not vacuous: the orthonormal pre-init was off unit variance and had to be rescaled
    assert any(abs(recorded[f"{n}.weight"]["lsuv_var_before"] - 1) > 0.5 for n in variances)


def test_lsuv_starts_from_an_orthonormal_matrix():
    model = MLP((32,), 4, hidden=(16,))
    x = torch.zeros(10, 32)  # all-zero inputs: Var = 0, nothing can be rescaled
    initialize(model, {"name": "lsuv"}, {}, CTX, 0, x)
    w = model.body[1].weight.detach().double()  # 16 x 32: orthonormal rows
    assert torch.allclose(w @ w.T, torch.eye(16, dtype=torch.double), atol=1e-5)


def test_a_rule_keeps_its_layer_out_of_the_rescaling_and_biases_are_untouched():
    model = MLP((20,), 4, hidden=(32, 32))
    x = torch.randn(400, 20) * 5
    rules = [{"pattern": "out.weight", "scheme": "zeros"}]
    bias = {"hidden": "constant", "hidden_value": 0.3}
    initialize(model, {"name": "lsuv", "rules": rules}, bias, CTX, 0, x)
    assert (model.out.weight == 0).all()  # a zero layer is not rescaled (and no division by 0)
    assert (model.body[1].bias == 0.3).all() and (model.body[3].bias == 0.3).all()


def test_lsuv_needs_training_data():
    with pytest.raises(ConfigError, match="lsuv"):
        initialize(MLP((20,), 4), {"name": "lsuv"}, {}, CTX, 0)


@pytest.mark.parametrize("params", [{"tol_var": 0.0}, {"t_max": 0}, {"batch_size": 1}])
def test_bad_lsuv_settings_fail_clearly(params):
    with pytest.raises(ConfigError, match="init."):
        initialize(MLP((20,), 4), {"name": "lsuv", **params}, {}, CTX, 0, torch.randn(50, 20))
