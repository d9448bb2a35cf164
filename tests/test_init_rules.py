"""Per-layer rules, reproducibility of the draws, the symmetry of zeros/ones, and the layer report."""

from __future__ import annotations

import math

import pytest
import torch

from initsweep.diagnostics import effective_rank, layer_report, mean_cosine
from initsweep.errors import ConfigError
from initsweep.init import initialize
from initsweep.init.bias import BiasContext
from initsweep.models import MLP

CTX = BiasContext("multiclass", torch.full((3,), 1 / 3))
LAYER_KEYS = {
    "name",
    "param",
    "shape",
    "scheme",
    "gain_source",
    "weight_mean",
    "weight_std",
    "weight_min",
    "weight_max",
    "theory_mean",
    "theory_family",
    "theory_std",
    "preact_mean",
    "preact_std",
    "dead_frac",
    "saturated_frac",
    "grad_norm",
    "effective_rank",
    "mean_cosine",
}  # the agreed init.json schema


def mlp(activation="relu", **kw):
    return MLP((12,), 3, hidden=(16, 16), activation=activation, **kw)


def init(model, seed=0, **cfg):
    return initialize(model, {"name": "kaiming_normal", **cfg}, {}, CTX, seed)


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_same_seed_gives_identical_models_and_seeds_differ():
    a, b, c = mlp(), mlp(), mlp()
    init(a, seed=1), init(b, seed=1), init(c, seed=2)
    assert all(torch.equal(x, y) for x, y in zip(state(a).values(), state(b).values()))
    assert not torch.equal(a.body[1].weight, c.body[1].weight)


def test_changing_one_layers_rule_leaves_the_other_layers_draws_unchanged():
    plain, ruled = mlp(), mlp()
    init(plain, seed=0)
    init(ruled, seed=0, rules=[{"pattern": "body.3.weight", "scheme": "orthogonal"}])
    # each parameter draws from its own (seed, name) generator: no shifted RNG stream
    assert torch.equal(plain.body[1].weight, ruled.body[1].weight)
    assert torch.equal(plain.out.weight, ruled.out.weight)
    assert not torch.equal(plain.body[3].weight, ruled.body[3].weight)


def test_rules_apply_in_order_and_the_assignment_records_the_numbers():
    rules = [
        {"pattern": "body.*.weight", "scheme": "kaiming_normal", "params": {"mode": "fan_out"}},
        {"pattern": "out.weight", "scheme": "zeros"},
        {"pattern": "body.3.weight", "scheme": "normal", "params": {"std": 0.5, "scale": 2.0}},
    ]
    model = mlp()
    assignment = {a["param"]: a for a in init(model, rules=rules)}
    assert (model.out.weight == 0).all()
    assert assignment["out.weight"] == {
        "param": "out.weight",
        "scheme": "zeros",
        "scale": 1.0,
        "rule": 1,
    }
    # the later rule wins on body.3; its numbers (std 0.5, scale 2 → std 1) are recorded
    assert assignment["body.3.weight"]["scheme"] == "normal"
    assert (
        assignment["body.3.weight"]["std"] == 0.5 and assignment["body.3.weight"]["scale"] == 2.0
    )
    assert float(model.body[3].weight.detach().std()) == pytest.approx(1.0, abs=0.25)
    # rule 0's kaiming gain is He's rectifier gain sqrt 2, resolved to a number, and says why
    assert assignment["body.1.weight"]["gain"] == pytest.approx(math.sqrt(2))
    assert assignment["body.1.weight"]["gain_source"] == "√2 = relu's (He et al. 2015)"
    assert assignment["body.1.weight"]["mode"] == "fan_out"
    assert (
        assignment["out.bias"]["scheme"] == "zeros" and assignment["out.bias"]["bias"] == "output"
    )


def test_kaiming_gain_is_the_rectifiers_unless_nonlinearity_act_or_a_number_says_otherwise():
    def gain_of(activation, **cfg):
        a = init(mlp(activation), **cfg)
        return next((x["gain"], x["gain_source"]) for x in a if x["param"] == "body.1.weight")

    # He et al. 2015 and torch's kaiming_* default (leaky_relu, a = 0): sqrt 2 on any network
    assert gain_of("tanh") == (pytest.approx(math.sqrt(2)), "√2 = relu's (He et al. 2015)")
    assert gain_of("relu", negative_slope=0.2) == (
        pytest.approx(math.sqrt(2 / 1.04)),
        "1.387 = leaky_relu(a=0.2)'s (He et al. 2015)",
    )
    assert gain_of("relu", nonlinearity="tanh") == (
        pytest.approx(5 / 3),
        "5/3 = tanh's (init.nonlinearity)",
    )
    assert gain_of("tanh", gain="act") == (pytest.approx(5 / 3), "5/3 (act: tanh)")
    assert gain_of("relu", gain=0.7) == (0.7, "0.7 (given)")
    assert gain_of("relu", gain=2) == (2.0, "2 (given)")  # Hydra parses init.gain=2 as an int


@pytest.mark.parametrize(
    "rule, expected",
    [
        (
            {"pattern": "classifier.weight", "scheme": "zeros"},
            "matches no parameter; parameters: body.1.weight",
        ),
        ({"pattern": "out.weight", "scheme": "nope"}, "init.rules[0].scheme='nope'"),
        ({"pattern": "out.weight"}, "a rule is {pattern, scheme"),
        ({"pattern": "out.weight", "scheme": "orthogonal", "params": {"gain": -2.0}}, "gain=-2.0"),
        (
            {"pattern": "out.weight", "scheme": "orthogonal", "params": {"gain": "acr"}},
            "init.rules[0].params.gain='acr' is invalid: must be a finite number > 0, 'act'",
        ),
        (
            {"pattern": "out.weight", "scheme": "zeros", "params": {"gain": 2.0}},
            "scheme 'zeros' takes no gain",
        ),
        ({"pattern": "out.weight", "scheme": "zeros", "params": {"std": 1}}, "takes no parameter"),
    ],
)
def test_bad_rules_fail_with_one_clear_line(rule, expected):
    with pytest.raises(ConfigError) as err:
        init(mlp(), rules=[rule])
    assert expected in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_zeros_init_gives_exactly_zero_weight_gradients(activation):
    # every hidden output is act(0) = 0, so dL/dW = delta * h^T = 0 for every weight matrix:
    # only the output bias can learn (the symmetry argument)
    model = mlp(activation)
    initialize(model, {"name": "zeros"}, {}, CTX, 0)
    x, y = torch.randn(64, 12), torch.randint(0, 3, (64,))
    torch.nn.functional.cross_entropy(model(x), y).backward()
    for name, p in model.named_parameters():
        if p.dim() >= 2:
            assert torch.count_nonzero(p.grad) == 0, name
    assert torch.count_nonzero(model.out.bias.grad) > 0


def test_symmetry_monitor_tells_zeros_ones_and_random_apart():
    assert effective_rank(torch.zeros(8, 5)) == 0.0 and mean_cosine(torch.zeros(8, 5)) is None
    assert effective_rank(torch.ones(8, 5)) == pytest.approx(1.0)
    assert mean_cosine(torch.ones(8, 5)) == pytest.approx(1.0)
    # orthogonal rows: every singular value equal (rank = n) and every pair at cosine 0
    q = torch.linalg.qr(torch.randn(6, 6, dtype=torch.double))[0]
    assert effective_rank(q) == pytest.approx(6.0) and mean_cosine(q) == pytest.approx(
        0.0, abs=1e-12
    )


def test_layer_report_rows_follow_the_init_json_schema():
    model = mlp("tanh", dropout=0.5)
    assignment = initialize(model, {"name": "xavier_normal"}, {}, CTX, 0)
    x, y = torch.randn(256, 12), torch.randint(0, 3, (256,))
    before = state(model)
    rows = layer_report(model, x, y, "cross_entropy", 1.0, assignment)
    assert [r["param"] for r in rows] == ["body.1.weight", "body.4.weight", "out.weight"]
    assert all(set(r) == LAYER_KEYS for r in rows)
    first = rows[0]
    # Glorot's gain 1 on a tanh net too: the row says which gain and why
    assert first["gain_source"] == "1 (Glorot & Bengio 2010)"
    assert first["theory_std"] == pytest.approx(math.sqrt(2 / 28))
    assert first["weight_std"] == pytest.approx(first["theory_std"], rel=0.2)
    # pre-activation of layer 1 = W x with x ~ N(0, I): std = sqrt(12) * weight std
    assert first["preact_std"] == pytest.approx(math.sqrt(12) * first["weight_std"], rel=0.2)
    assert first["saturated_frac"] is not None and first["dead_frac"] is None  # tanh
    assert rows[-1]["saturated_frac"] is None  # no activation after the output layer
    assert all(r["grad_norm"] > 0 for r in rows)
    # diagnostics leave the model as it was: weights, no .grad, training mode
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters()) and model.training


def test_dead_relu_fraction_sees_a_layer_that_never_fires():
    model = mlp("relu")
    rules = [{"pattern": "body.1.bias", "scheme": "constant", "params": {"value": -100.0}}]
    assignment = init(model, rules=rules)
    rows = layer_report(
        model, torch.randn(64, 12), torch.randint(0, 3, (64,)), "cross_entropy", 1.0, assignment
    )
    assert rows[0]["dead_frac"] == 1.0  # every unit of layer 1 is below 0 on every sample
    assert rows[1]["grad_norm"] == 0.0  # ... so nothing flows into layer 2's weights


def test_a_conv_only_default_scheme_works_when_rules_cover_the_dense_layers():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3), torch.nn.Flatten(), torch.nn.Linear(16, 3)
    )
    model.activation, model.output_layer = "relu", "2"
    with pytest.raises(ConfigError, match=r"\(parameter 2.weight\); an init.rules entry"):
        initialize(model, {"name": "delta_orthogonal"}, {}, CTX, 0)
    rules = [{"pattern": "2.weight", "scheme": "xavier_uniform"}]
    assignment = initialize(model, {"name": "delta_orthogonal", "rules": rules}, {}, CTX, 0)
    assert [a["scheme"] for a in assignment if a["param"].endswith("weight")] == [
        "delta_orthogonal",
        "xavier_uniform",
    ]


def test_pretrained_parameters_keep_their_values_and_only_the_head_is_initialised():
    model = mlp()
    model.pretrained_params = frozenset({"body.1.weight", "body.1.bias"})
    loaded = {k: v.clone() for k, v in state(model).items()}
    assignment = {a["param"]: a["scheme"] for a in init(model)}
    after = state(model)
    # the loaded body is untouched; the head got the scheme and the output bias rule
    assert torch.equal(after["body.1.weight"], loaded["body.1.weight"])
    assert torch.equal(after["body.1.bias"], loaded["body.1.bias"])
    assert assignment["body.1.weight"] == "pretrained"
    assert not torch.equal(after["out.weight"], loaded["out.weight"])
    assert torch.count_nonzero(after["out.bias"]) == 0
