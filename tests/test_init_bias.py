"""Bias rules: with the output weights at zero, the loss at init equals its closed form to 1e-5."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar

from initsweep.data import DataBundle, embedded
from initsweep.diagnostics import expected_loss
from initsweep.diagnostics.loss_at_init import target_summary
from initsweep.errors import ConfigError
from initsweep.init import initialize, list_bias_rules
from initsweep.init.bias import BiasContext, binary_entropy, entropy, huber_optimum
from initsweep.models import MLP
from initsweep.train.metrics import loss_fn

ZERO_OUT = [{"pattern": "out.weight", "scheme": "zeros"}]
N = 2000


def _data(task: str):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 6, generator=g)
    if task == "multiclass":  # imbalanced: prior far from uniform
        y = torch.multinomial(torch.tensor([0.6, 0.25, 0.1, 0.05]), N, True, generator=g)
    elif task == "binary":
        y = (torch.rand(N, generator=g) < 0.1).double()
    else:  # skewed targets: mean, median and the Huber optimum all differ
        y = torch.randn(N, generator=g, dtype=torch.double).exp()
    num_classes = 4 if task == "multiclass" else None
    return DataBundle("toy", task, x, y, x, y, num_classes)


def _loss_at_init(task, loss, rule, out=None, delta=1.0, **bias):
    bundle = _data(task)
    model = MLP((6,), out or bundle.num_outputs, hidden=(16,))
    ctx = BiasContext(bundle.task, bundle.class_prior, bundle.y_train, loss, huber_delta=delta)
    initialize(
        model, {"name": "xavier_uniform", "rules": ZERO_OUT}, {"output": rule, **bias}, ctx, 0
    )
    with torch.no_grad():
        measured = float(loss_fn(loss, delta)(model(bundle.x_train).double(), bundle.y_train))
    return measured, model, bundle


def _huber(r: torch.Tensor, delta: float) -> torch.Tensor:
    return torch.where(r.abs() <= delta, 0.5 * r**2, delta * (r.abs() - 0.5 * delta))


@pytest.mark.parametrize(
    "task, loss, rule, closed_form",
    [
        ("multiclass", "cross_entropy", "zeros", lambda y, b: math.log(4)),
        ("multiclass", "cross_entropy", "prior", lambda y, b: entropy(b.class_prior)),
        ("binary", "bce", "zeros", lambda y, b: math.log(2)),
        ("binary", "bce", "prior", lambda y, b: binary_entropy(float(y.mean()))),
        ("regression", "mse", "mean", lambda y, b: float(y.var(unbiased=False))),
        ("regression", "mae", "median", lambda y, b: float((y - y.median()).abs().mean())),
        (
            "regression",
            "huber",
            "huber",  # the optimum found independently by scipy's bounded minimiser
            lambda y, b: (
                minimize_scalar(
                    lambda c: float(_huber(y - c, 1.0).mean()),
                    bounds=(0, 5),
                    method="bounded",
                    options={"xatol": 1e-10},
                ).fun
            ),
        ),
    ],
)
def test_loss_at_init_equals_the_closed_form(task, loss, rule, closed_form):
    measured, model, bundle = _loss_at_init(task, loss, rule)
    expected = closed_form(bundle.y_train.double(), bundle)
    assert measured == pytest.approx(expected, abs=1e-5)
    # the diagnostics' expected loss (the loss of the constant prediction = output bias) agrees
    assert expected_loss(model, bundle, loss, 1.0) == pytest.approx(expected, abs=1e-5)


def test_median_rule_is_the_conventional_median_on_diabetes():
    # 354 training targets: torch's median() is the lower middle value, 139.0; numpy's the mean
    # of the two middle values, 139.5: the median the rule, the data summary and a report agree on
    bundle = embedded.diabetes()
    y = bundle.y_train.double()
    assert len(y) % 2 == 0 and float(y.median()) == 139.0
    model = MLP((10,), 1, hidden=(8,))
    ctx = BiasContext("regression", targets=bundle.y_train)
    initialize(model, {"name": "xavier_uniform", "rules": ZERO_OUT}, {"output": "median"}, ctx, 0)
    assert model.out.bias.item() == 139.5 == float(np.median(y.numpy()))
    assert bundle.target_stats["median"] == 139.5
    assert target_summary(bundle.y_train, 1.0)["median"] == 139.5  # init.json's "targets"


def test_constant_rule_predicts_the_constant():
    measured, _, bundle = _loss_at_init("regression", "mse", "constant", value=0.5)
    assert measured == pytest.approx(float(((bundle.y_train - 0.5) ** 2).mean()), abs=1e-5)


def test_gaussian_head_starts_at_half_log_variance_plus_half():
    bundle = _data("regression")
    model = MLP((6,), 2, hidden=(16,))
    ctx = BiasContext("regression", None, bundle.y_train, "gaussian_nll")
    initialize(
        model, {"name": "xavier_uniform", "rules": ZERO_OUT}, {"output": "gaussian"}, ctx, 0
    )
    with torch.no_grad():
        mu, log_var = model(bundle.x_train).double().unbind(-1)
    nll = torch.nn.GaussianNLLLoss(full=False)(mu, bundle.y_train, log_var.exp())
    y = bundle.y_train.double()
    assert float(nll) == pytest.approx(
        0.5 * (math.log(float(y.var(unbiased=False))) + 1), abs=1e-5
    )


@pytest.mark.parametrize("delta", [1e-4, 0.1, 1.0, 100.0])
def test_huber_optimum_is_the_root_and_goes_from_median_to_mean(delta):
    y = _data("regression").y_train
    b = huber_optimum(y, delta)
    assert abs(float((y - b).clamp(-delta, delta).sum())) < 1e-8 * len(y)
    if delta == 100.0:  # no residual is clipped: the optimum is the mean
        assert b == pytest.approx(float(y.mean()), abs=1e-12)
    if delta == 1e-4:  # everything is clipped: the optimum is a median
        assert b == pytest.approx(float(y.median()), abs=1e-3)


def test_hidden_rules_zero_constant_and_pytorch_default():
    model = MLP((6,), 3, hidden=(16, 16))
    ctx = BiasContext("multiclass", torch.full((3,), 1 / 3))
    initialize(
        model, {"name": "xavier_uniform"}, {"hidden": "constant", "hidden_value": 0.1}, ctx, 0
    )
    assert (model.body[1].bias == 0.1).all() and (model.out.bias == 0).all()
    bias = {"hidden": "default", "output": "pytorch_default"}
    initialize(model, {"name": "pytorch_default"}, bias, ctx, 0)
    for layer in (model.body[1], model.body[3], model.out):
        bound = layer.weight.shape[1] ** -0.5
        assert layer.bias.abs().max() <= bound and layer.bias.abs().max() > 0.5 * bound


class TinyLSTM(torch.nn.Module):
    """The shape of the project's LSTM model: ``lstm`` (gates i, f, g, o) then ``out``."""

    activation, output_layer = "tanh", "out"

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(4, hidden, num_layers=2, batch_first=True)
        self.out = torch.nn.Linear(hidden, 3)

    def forward(self, x):
        return self.out(self.lstm(x)[0][:, -1])


def _effective(model, layer=0):
    lstm = model.lstm
    return getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")


@pytest.mark.parametrize("forget", [0.0, 1.0, 2.0])
@pytest.mark.parametrize("hidden", ["zeros", "constant", "default"])
def test_lstm_forget_bias_counts_bias_ih_and_bias_hh_once(forget, hidden):
    model, h = TinyLSTM(), 8
    bias = {"hidden": hidden, "hidden_value": 0.1, "forget_gate": forget}
    initialize(model, {"name": "xavier_uniform"}, bias, BiasContext("multiclass"), 0)
    for layer in (0, 1):
        eff = _effective(model, layer).detach()
        # PyTorch adds both vectors: the effective forget bias is the configured value, not twice it
        assert torch.allclose(eff[h : 2 * h], torch.full((h,), forget))
        if hidden == "constant":  # the other gates: the hidden constant, also counted once
            assert torch.allclose(eff[:h], torch.full((h,), 0.1))


def test_orthogonal_recurrent_weights_by_rule():
    model = TinyLSTM(hidden=8)
    rules = [
        {"pattern": "*weight_hh*", "scheme": "orthogonal", "params": {"blocks": 4, "gain": 1.0}}
    ]
    initialize(model, {"name": "xavier_uniform", "rules": rules}, {}, BiasContext("multiclass"), 0)
    for w in (model.lstm.weight_hh_l0, model.lstm.weight_hh_l1):
        for gate in w.detach().double().chunk(4, 0):
            assert torch.allclose(gate.T @ gate, torch.eye(8, dtype=torch.double), atol=1e-5)


@pytest.mark.parametrize(
    "task, rule, bias, out, expected",
    [
        ("regression", "prior", {}, None, "needs a classification task"),
        ("multiclass", "mean", {}, None, "needs a regression task"),
        ("regression", "gaussian", {}, None, "needs a 2-unit output layer"),
        ("multiclass", "no_such_rule", {}, None, "choose one of"),
        ("multiclass", "zeros", {"forget_gate": 1.0}, None, "the model has no LSTM"),
        ("multiclass", "zeros", {"hidden": "ones"}, None, "bias.hidden='ones'"),
    ],
)
def test_bad_bias_config_fails_with_one_clear_line(task, rule, bias, out, expected):
    with pytest.raises(ConfigError) as err:
        _loss_at_init(task, "mse" if task == "regression" else "cross_entropy", rule, out, **bias)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_every_bias_option_composes_and_names_a_registered_rule(make_cfg):
    from initsweep.config import CONF_DIR

    for path in sorted((CONF_DIR / "bias").glob("*.yaml")):
        cfg = make_cfg(f"bias={path.stem}")
        assert cfg.bias.name == path.stem
        assert cfg.bias.output in list_bias_rules()


def test_gaussian_head_trains_end_to_end_from_its_loss_at_init(make_cfg, tmp_path):
    import json

    from initsweep.data.embedded import diabetes
    from initsweep.job import run

    cfg = make_cfg(
        "dataset=diabetes",
        "bias=gaussian",
        "trainer.loss=gaussian_nll",
        "optimizer=adam",
        "+init.rules=[{pattern: out.weight, scheme: zeros}]",
        "trainer.epochs=3",
    )
    run(cfg)
    init = json.loads((tmp_path / "init.json").read_text())
    var = float(diabetes().y_train.double().var(correction=0))
    # with zero output weights the 2-unit head predicts N(mean(y), Var(y)) for every input
    for seed in init["seeds"]:
        assert seed["measured_loss"] == pytest.approx(0.5 * (math.log(var) + 1), abs=1e-5)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["aggregate"]["val/loss"]["mean"] < 0.5 * (math.log(var) + 1)
    assert {"val/mse", "val/mae"} <= set(summary["aggregate"])
