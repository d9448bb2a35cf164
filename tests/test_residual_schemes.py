"""The residual-era schemes against their papers' formulas and reference code, on the declared
branches of initsweep's residual models; bad input refused in one line."""

from __future__ import annotations

import math

import pytest
import scipy.linalg
import torch
from torch import nn

from initsweep.errors import ConfigError
from initsweep.init import BiasContext, initialize, param_generator
from initsweep.init.deep_transformers import deepnorm_constants, t_fixup_factor
from initsweep.init.registry import list_schemes, needs_branches
from initsweep.init.residual import ResidualBranch
from initsweep.init.zero import hadamard, zero_matrix
from initsweep.models import GPT, MLP, ResidualMLP, ResNet

CTX = BiasContext("multiclass")
RESIDUAL = ["gpt2", "fixup", "skipinit", "rezero", "t_fixup", "deepnorm", "zero"]


def init(model: nn.Module, scheme: str, **params) -> dict[str, dict]:
    return {a["param"]: a for a in initialize(model, {"name": scheme, **params}, {}, CTX, 0)}


def reference(shape, draw) -> torch.Tensor:
    """What ``draw(tensor, generator)`` gives for a parameter ``name`` with the library's generator."""
    return lambda name: draw(torch.empty(shape[name]), param_generator(0, name))


def shapes(model: nn.Module) -> dict:
    return {n: p.shape for n, p in model.named_parameters()}


def test_every_residual_scheme_is_registered_with_its_plan():
    assert set(RESIDUAL) <= set(list_schemes())
    assert [s for s in RESIDUAL if not needs_branches(s)] == ["zero"]  # ZerO also fits plain nets


def test_gpt2_is_nanogpts_init():
    depth = 3
    m = GPT((16,), 20, depth=depth, width=32, heads=2)
    a = init(m, "gpt2")
    for name, p in m.named_parameters():
        if ".ln" in name or name.startswith("ln_f"):  # LayerNorm 1 and 0
            assert torch.equal(p, torch.ones_like(p) if name.endswith("weight") else p * 0)
        elif name.endswith("bias"):
            assert not p.any()
        else:  # nanoGPT: N(0, 0.02) on Linear and Embedding, c_proj at 0.02 / sqrt(2 n_layer)
            std = 0.02 / math.sqrt(2 * depth) if name.endswith("proj.weight") else 0.02
            want = torch.empty_like(p).normal_(0.0, 0.02, generator=param_generator(0, name))
            torch.testing.assert_close(p.detach(), want * std / 0.02, rtol=1e-6, atol=1e-9)
            assert a[name]["scheme"] == "gpt2"


def test_fixup_is_the_reference_codes_init_on_a_resnet():
    m = ResNet((3, 8, 8), 10, blocks=2, channels=(4, 8), branch_gain=True)
    a = init(m, "fixup")
    n_branches = len(m.blocks)  # Fixup's num_layers: one branch per basic block
    for i, block in enumerate(m.blocks):
        w = block.conv1.weight
        # hongyi-zhang/Fixup fixup_resnet_cifar.py: normal(0, sqrt(2 / (out k^2)) * L^-0.5), conv2 0
        std = math.sqrt(2 / (w.shape[0] * math.prod(w.shape[2:]))) * n_branches**-0.5
        want = torch.empty_like(w).normal_(
            0.0, 1.0, generator=param_generator(0, f"blocks.{i}.conv1.weight")
        )
        torch.testing.assert_close(w.detach(), want * std, rtol=1e-5, atol=1e-8)
        assert not block.conv2.weight.any() and block.gain.item() == 1.0
        assert a[f"blocks.{i}.conv1.weight"]["scale"] == pytest.approx(n_branches**-0.5)
    assert not m.out.weight.any() and not m.out.bias.any()  # fc weight and bias 0
    # every branch and the classifier start at 0: the logits are exactly 0, the loss ln C
    assert torch.equal(m(torch.randn(2, 3, 8, 8)), torch.zeros(2, 10))


class Bottlenecks(nn.Module):
    """Branches of m = 3 layers, as Fixup's ImageNet bottleneck blocks."""

    activation, output_layer = "relu", "out"

    def __init__(self, blocks=4, width=16):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Linear(width, width), nn.Linear(width, width), nn.Linear(width, width)
            )
            for _ in range(blocks)
        )
        self.out = nn.Linear(width, 3)

    def residual_branches(self):
        return [
            ResidualBranch(i, (f"blocks.{i}.0", f"blocks.{i}.1", f"blocks.{i}.2"))
            for i in range(4)
        ]

    def forward(self, x):
        for b in self.blocks:
            x = x + b(x)
        return self.out(x)


def test_fixup_scales_by_l_to_the_minus_one_over_2m_minus_2():
    m = Bottlenecks()
    a = init(m, "fixup", mode="fan_in")
    # fixup_resnet_imagenet.py: conv1, conv2 * num_layers ** (-0.25), conv3 0 (m = 3)
    for i in range(4):
        for j in (0, 1):
            assert a[f"blocks.{i}.{j}.weight"]["scale"] == pytest.approx(4**-0.25)
        assert not m.blocks[i][2].weight.any()


@pytest.mark.parametrize("scheme", ["skipinit", "rezero"])
def test_skipinit_and_rezero_start_every_block_as_the_identity(scheme):
    m = ResidualMLP((16,), 4, depth=5, width=8, branch_gain=True)
    init(m, scheme)
    assert all(b.gain.item() == 0.0 for b in m.blocks)
    x = torch.randn(3, 16)
    torch.testing.assert_close(m(x), m.out(m.act(m.act(m.stem(x)))))
    g = init(ResidualMLP((16,), 4, depth=2, width=8, branch_gain=True), scheme, alpha=0.25)
    assert g["blocks.1.gain"]["value"] == 0.25


def test_rezero_weights_are_pytorchs_default_and_skipinits_are_he():
    m = ResidualMLP((16,), 4, depth=2, width=8, branch_gain=True)
    init(m, "rezero")
    want = torch.empty(8, 8)
    torch.nn.init.kaiming_uniform_(
        want, a=math.sqrt(5), generator=param_generator(0, "blocks.0.fc1.weight")
    )
    torch.testing.assert_close(m.blocks[0].fc1.weight.detach(), want)
    init(m, "skipinit")
    torch.nn.init.kaiming_normal_(want, generator=param_generator(0, "blocks.0.fc1.weight"))
    torch.testing.assert_close(m.blocks[0].fc1.weight.detach(), want)


def test_a_gain_scheme_on_a_model_without_gains_is_refused_in_one_line():
    with pytest.raises(ConfigError) as err:
        init(ResidualMLP((16,), 4, depth=2, width=8), "skipinit")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("init.name='skipinit' needs a scalar gain")
    assert "model.branch_gain=true" in msg


@pytest.mark.parametrize("scheme", [s for s in RESIDUAL if needs_branches(s)])
def test_a_residual_scheme_on_a_plain_mlp_says_what_is_missing(scheme):
    with pytest.raises(ConfigError) as err:
        init(MLP((4,), 2), scheme)
    msg = str(err.value)
    assert "\n" not in msg and "declares none" in msg and "residual_branches()" in msg


def test_fixup_refuses_to_zero_a_tied_embedding():
    with pytest.raises(ConfigError, match="'wte' is the tied embedding.*model.tied=false"):
        init(GPT((8,), 10, depth=1, width=8, heads=1), "fixup")


@pytest.mark.parametrize(
    "architecture, part, n, m, alpha, beta",
    [  # DeepNet, Fig. 2
        ("decoder_only", "decoder", 24, None, 48**0.25, 192**-0.25),
        ("encoder_only", "encoder", 6, None, 12**0.25, 48**-0.25),
        (
            "encoder_decoder",
            "encoder",
            6,
            12,
            0.81 * (6**4 * 12) ** 0.0625,
            0.87 * (6**4 * 12) ** -0.0625,
        ),
        ("encoder_decoder", "decoder", 12, 6, 36**0.25, 144**-0.25),
    ],
)
def test_deepnorm_constants_are_the_papers(architecture, part, n, m, alpha, beta):
    assert deepnorm_constants(architecture, part, n, m) == pytest.approx((alpha, beta), rel=1e-12)


def test_deepnorm_sets_alpha_and_draws_xavier_normal_with_gain_beta():
    depth = 4
    m = GPT((8,), 12, depth=depth, width=16, heads=2, norm="post")
    a = init(m, "deepnorm")
    alpha, beta = (2 * depth) ** 0.25, (8 * depth) ** -0.25
    assert all(b.skip_scale == alpha for b in m.blocks)
    assert a["blocks.0.skip_scale"]["skip_scale"] == alpha
    shape = shapes(m)
    xavier = reference(shape, lambda t, g: nn.init.xavier_normal_(t, generator=g))
    for name in shape:  # the paper's deepnorm_init: gain β on ffn, v_proj, out_proj; 1 on q, k
        if name.endswith("weight") and name.startswith("blocks") and ".ln" not in name:
            gain = 1.0 if name.split(".")[-2] in ("q", "k") else beta
            torch.testing.assert_close(
                m.get_parameter(name).detach(), xavier(name) * gain, rtol=1e-5, atol=1e-8
            )
    # the forward uses alpha: x <- LN(alpha x + f(x))
    x = torch.randn(1, 3, 16)
    b = m.blocks[0]
    torch.testing.assert_close(b._residual(x, b.attn, b.ln1), b.ln1(alpha * x + b.attn(x)))


def test_deepnorm_without_a_skip_and_encoder_decoder_without_the_other_depth_are_refused():
    with pytest.raises(ConfigError, match="declares no skip"):
        init(ResidualMLP((16,), 4, depth=2, width=8), "deepnorm")
    with pytest.raises(ConfigError, match=r"^init.other_layers=None is invalid"):
        init(
            GPT((8,), 12, depth=2, width=16, heads=2, norm="post"),
            "deepnorm",
            architecture="encoder_decoder",
        )


@pytest.mark.parametrize(
    "part, factor",
    [("decoder", lambda n: (9 * n) ** -0.25), ("encoder", lambda n: 0.67 * n**-0.25)],
)
def test_t_fixup_is_the_reference_codes_init(part, factor):
    depth, width = 3, 16
    m = GPT((8,), 12, depth=depth, width=width, heads=2, norm="none", tied=False)
    init(m, "t_fixup", part=part)
    c = factor(depth)
    assert t_fixup_factor(part, depth) == pytest.approx(c)
    shape = shapes(m)
    xavier = reference(shape, lambda t, g: nn.init.xavier_uniform_(t, generator=g))
    normal = reference(shape, lambda t, g: t.normal_(0.0, width**-0.5, generator=g))

    def close(name, want):
        torch.testing.assert_close(m.get_parameter(name).detach(), want, rtol=1e-5, atol=1e-8)

    for i in range(depth):
        at = f"blocks.{i}"
        # layer6ai-labs/T-Fixup transformer_layer.py: fc1, fc2, out_proj x c; v (gain 1/sqrt2) x c sqrt2
        for name in ("mlp.fc", "mlp.proj", "attn.proj", "attn.v"):
            close(f"{at}.{name}.weight", xavier(f"{at}.{name}.weight") * c)
        for name in ("attn.q", "attn.k"):  # fairseq multihead_attention: gain 1/sqrt(2)
            close(f"{at}.{name}.weight", xavier(f"{at}.{name}.weight") / math.sqrt(2))
    # embeddings N(0, d^-1/2) (transformer.py Embedding), the token one x (9N)^(-1/4); the head too
    close("wte.weight", normal("wte.weight") * (9 * depth) ** -0.25)
    close("wpe.weight", normal("wpe.weight"))
    close("head.weight", normal("head.weight"))


def test_hadamard_and_zero_matrix_are_the_reference_constructions():
    for p in (1, 2, 8, 64):
        torch.testing.assert_close(
            hadamard(p), torch.tensor(scipy.linalg.hadamard(p), dtype=torch.float32)
        )
    # the authors' ZerO_Init_on_matrix (example_mnist.ipynb)
    for m, n in ((10, 784), (784, 784), (784, 1024), (1024, 10), (100, 7)):
        if m <= n:
            want = torch.eye(m, n)
        else:
            clog = math.ceil(math.log2(m))
            p = 2**clog
            want = (
                torch.eye(m, p)
                @ (torch.tensor(scipy.linalg.hadamard(p)).float() / 2 ** (clog / 2))
                @ torch.eye(p, n)
            )
        torch.testing.assert_close(zero_matrix(m, n), want)


def test_zero_is_deterministic_and_starts_residual_blocks_as_the_identity():
    a, b = (
        ResNet((1, 8, 8), 10, blocks=1, channels=(4, 8)),
        ResNet((1, 8, 8), 10, blocks=1, channels=(4, 8)),
    )
    initialize(a, {"name": "zero"}, {}, CTX, 0)
    initialize(b, {"name": "zero"}, {}, CTX, 7)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # any seed
    conv = a.blocks[1].conv1.weight  # 4 -> 8 channels: the Hadamard case, on the centre tap
    torch.testing.assert_close(conv[:, :, 1, 1], zero_matrix(8, 4))
    assert not conv[:, :, 0].any() and not a.blocks[1].conv2.weight.any()
    # every weight holds at most two distinct values up to sign (zeros, ones, +-1/sqrt(p))
    for w in (p for p in a.parameters() if p.dim() >= 2):
        assert len(torch.unique(w.abs())) <= 2


def test_zero_on_a_plain_mlp_is_algorithm_one_alone():
    m = MLP((784,), 10, hidden=(784, 1024))
    init(m, "zero")
    torch.testing.assert_close(m.body[1].weight, torch.eye(784))
    torch.testing.assert_close(m.body[3].weight, zero_matrix(1024, 784))
    torch.testing.assert_close(m.out.weight, torch.eye(10, 1024))
