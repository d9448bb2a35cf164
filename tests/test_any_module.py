"""Any nn.Module: grouped and depthwise convs, a transposed conv, an LSTM, attention (PyTorch's
and a fused qkv Linear), an embedding and a norm layer, under every weight scheme."""

from __future__ import annotations

import dataclasses
import functools
import math

import pytest
import torch
from torch import nn

from initsweep.errors import ConfigError
from initsweep.init import BiasContext, initialize, list_schemes, model_facts
from initsweep.init.model import find_output_layer
from initsweep.init.registry import needs_branches
from initsweep.init.sites import sites
from initsweep.init.widths import width_facts

CTX = BiasContext("regression", targets=torch.linspace(1.0, 5.0, 64))


class KitchenSink(nn.Module):
    """A regressor of sequences ``[N, 1, 16]``: every layer type the init library must handle."""

    width_key = "width"  # init=mup builds it at its base width

    def __init__(self, out_features: int = 1, width: int = 8) -> None:
        super().__init__()
        w = width
        self.stem = nn.Conv1d(1, w, 3, padding=1)
        self.grouped = nn.Conv1d(w, w, 3, padding=1, groups=4)
        self.depthwise = nn.Conv1d(w, w, 3, padding=1, groups=w)
        self.up = nn.ConvTranspose1d(w, w, 3, padding=1)
        self.tokens = nn.Embedding(20, w)
        self.attn = nn.MultiheadAttention(w, 2, batch_first=True)
        self.qkv = nn.Linear(w, 3 * w)  # timm's fused q, k, v projection
        self.lstm = nn.LSTM(w, w, batch_first=True)
        self.norm = nn.LayerNorm(w)
        self.head = nn.Linear(w, out_features)
        self.scale = math.sqrt(w)

    def forward(self, x):
        h = self.up(self.depthwise(self.grouped(self.stem(x).relu()).relu()).relu())
        h = h.transpose(1, 2) + self.tokens((x[:, 0] * 4).long().clamp(0, 19))  # [N, T, 8]
        h = h + self.attn(h, h, h, need_weights=False)[0]
        q, k, v = self.qkv(h).chunk(3, -1)
        h = h + torch.softmax(q @ k.transpose(1, 2) / self.scale, -1) @ v
        h = self.norm(self.lstm(h)[0][:, -1])
        return self.head(h)


def x_batch(n: int = 32) -> torch.Tensor:
    return torch.rand(n, 1, 16, generator=torch.Generator().manual_seed(0))


def init(model: nn.Module, scheme: str, **init) -> dict[str, dict]:
    x = x_batch()
    facts = None
    if scheme == "mup":  # every layer type against the model at its base width (4)
        make = functools.partial(KitchenSink, width=model.norm.normalized_shape[0])
        facts = model_facts(model, {"output_layer": "head"}, x[:2])
        facts = dataclasses.replace(facts, widths=width_facts(make, "width", 4, "head"))
        init = {"base_width": 4, **init}
    out = initialize(model, {"name": scheme, **init}, {"output": "mean"}, CTX, 0, x, facts=facts)
    return {a["param"]: a for a in out}


# conv-only schemes take the convs; every other weight keeps the default scheme
CONV_ONLY = {"delta_orthogonal"}
SMALL_FAN = {"sparse": {"k": 2}}  # Martens' 15 inputs exceed a depthwise conv's fan-in of 3


# schemes by a layer's role in a residual branch need a model that declares its branches
@pytest.mark.parametrize("scheme", [s for s in list_schemes() if not needs_branches(s)])
def test_every_scheme_initialises_every_layer_type(scheme):
    torch.manual_seed(0)
    model = KitchenSink()
    if scheme in CONV_ONLY:
        rules = [{"module": "_ConvNd", "scheme": scheme}]
        assignment = init(model, "xavier_uniform", rules=rules)
    else:
        assignment = init(model, scheme, **SMALL_FAN.get(scheme, {}))
    for name, site in sites(model).items():
        p = dict(model.named_parameters())[name]
        assert torch.isfinite(p).all(), name
        if site.kind == "weight":  # every weight got the scheme (a conv-only one: every conv)
            conv = isinstance(site.module, nn.modules.conv._ConvNd)
            expect = scheme if scheme not in CONV_ONLY or conv else "xavier_uniform"
            assert assignment[name]["scheme"] == expect, name
    # normalisation layers keep scale 1 and shift 0; the output bias follows its rule
    assert torch.equal(model.norm.weight, torch.ones(8))
    assert torch.equal(model.norm.bias, torch.zeros(8))
    assert model.head.bias.item() == pytest.approx(3.0)  # mean of linspace(1, 5)
    assert torch.isfinite(model(x_batch(4))).all()


def test_structure_schemes_keep_gates_qkv_and_groups():
    model = KitchenSink()
    init(model, "orthogonal", gain=1.0)
    eye = torch.eye(8, dtype=torch.double)
    # each LSTM gate's recurrent matrix, and each of q, k, v, is orthogonal on its own
    for w in (model.lstm.weight_hh_l0, model.attn.in_proj_weight, model.qkv.weight):
        for block in w.detach().double().chunk(w.shape[0] // 8, 0):
            assert torch.allclose(block @ block.T, eye, atol=1e-5)
    # a depthwise identity maps every channel to itself: the conv preserves its input
    init(model, "identity")
    x = torch.randn(2, 8, 16)
    conv = model.depthwise
    assert torch.allclose(conv(x) - conv.bias.view(1, -1, 1), x, atol=1e-6)
    grouped = model.grouped
    assert torch.allclose(grouped(x) - grouped.bias.view(1, -1, 1), x, atol=1e-6)


def test_delta_orthogonal_preserves_the_norm_of_a_grouped_conv():
    conv = nn.Conv1d(8, 16, 3, padding=1, groups=4, bias=False)
    model = nn.Sequential(conv, nn.Flatten(), nn.Linear(16 * 5, 1))
    initialize(
        model,
        {"name": "xavier_uniform", "rules": [{"module": "Conv1d", "scheme": "delta_orthogonal"}]},
        {},
        CTX,
        0,
        torch.randn(4, 8, 5),
    )
    x = torch.randn(3, 8, 5)
    # Xiao et al.: with g = 1 a delta-orthogonal conv is an isometry per position (per group)
    assert torch.allclose(conv(x).norm(dim=1), x.norm(dim=1), rtol=1e-4)


def test_pytorch_default_draws_recurrent_weights_from_the_hidden_size():
    model = KitchenSink()
    a = init(model, "pytorch_default")
    # torch/nn/modules/rnn.py: every LSTM weight U(+-1/sqrt(H)), whatever its fan-in
    bound = 1 / math.sqrt(8)
    for w in (model.lstm.weight_ih_l0, model.lstm.weight_hh_l0):
        assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    assert a["lstm.weight_ih_l0"]["hidden_size"] == 8
    # a plain Linear keeps U(+-1/sqrt(fan_in))
    assert model.head.weight.abs().max() <= 1 / math.sqrt(8)


def test_rules_match_by_module_type():
    model = KitchenSink()
    rules = [{"module": "Conv1d", "scheme": "zeros"}, {"module": "Embedding", "scheme": "ones"}]
    a = init(model, "kaiming_normal", rules=rules)
    for m in (model.stem, model.grouped, model.depthwise):
        assert not m.weight.any()
    assert a["up.weight"]["scheme"] == "kaiming_normal"  # ConvTranspose1d is not a Conv1d
    assert torch.equal(model.tokens.weight, torch.ones(20, 8))
    with pytest.raises(ConfigError, match="module='Conv3d' matches no parameter"):
        init(KitchenSink(), "kaiming_normal", rules=[{"module": "Conv3d", "scheme": "zeros"}])


def test_the_output_layer_is_found_declared_or_asked_for():
    model = KitchenSink()
    assert find_output_layer(model, x_batch(2)) == "head"
    assert model_facts(model, {"output_layer": "head"}).output_layer == "head"

    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 1), nn.Linear(4, 1)

        def forward(self, x):
            return self.a(x) + self.b(x)  # which bias sets the output? ambiguous

    with pytest.raises(ConfigError, match="model.output_layer is needed") as err:
        find_output_layer(TwoHeads(), torch.randn(2, 4))
    assert "a, b" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="model.output_layer='nope' is not a layer"):
        model_facts(model, {"output_layer": "nope"})


def test_a_scheme_that_cannot_fill_a_user_parameter_names_it():
    with pytest.raises(ConfigError) as err:
        init(KitchenSink(), "sparse")  # k = 15 > the stem conv's fan-in of 1 x 3
    msg = str(err.value)
    assert "init.k=15" in msg and "stem.weight" in msg and "\n" not in msg


def test_activation_comes_from_a_declaration_else_gain_one(caplog):
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 1)

        def forward(self, x):
            return self.fc(x)

    assert model_facts(Plain(), {"activation": "relu"}).activation == "relu"
    with caplog.at_level("INFO", logger="initsweep"):
        assert model_facts(Plain()).activation == "linear"
    assert "declares no activation" in caplog.text
    holder = Plain()
    holder.activation = nn.Tanh()  # a model that holds its activation module
    assert model_facts(holder).activation == "tanh"
