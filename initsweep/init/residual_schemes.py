r"""Schemes by a layer's role in a residual branch: GPT-2, Fixup, SkipInit, ReZero.

Each is a draw for every weight (the function) plus a plan (``residual=``) that the init library
runs after it on the branches the model declares (:class:`~initsweep.init.residual.ResidualModel`):
what the branch's last layer, its other layers and its scalar gain become.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from initsweep.errors import ConfigError
from initsweep.init.fans import FanMode, fan
from initsweep.init.registry import register_scheme
from initsweep.init.residual import Placement, branches, gains, weight
from initsweep.init.weights import _pytorch_default_bound

HE = math.sqrt(2.0)  # He et al. 2015's ReLU gain, which Fixup's and SkipInit's ResNets use


def _gpt2_plan(model, facts, params) -> list[Placement]:
    found = branches(model, "gpt2")
    n = len(found)
    why = f"last layer of a residual branch: x 1/sqrt({n}), {n} residual layers (GPT-2)"
    return [Placement(weight(b.layers[-1]), "gpt2", params, n**-0.5, why) for b in found]


@register_scheme(moments=lambda shape, std: (0.0, std), family="normal", residual=_gpt2_plan)
def gpt2_(
    tensor: Tensor, std: float = 0.02, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""GPT-2: :math:`\mathcal{N}(0, 0.02^2)` for every weight, and each residual branch's last
    layer :math:`\mathcal{N}(0, (0.02/\sqrt{N})^2)`, N the number of residual branches.

    `Language Models are Unsupervised Multitask Learners` - Radford, A. et al. (2019), §2.3: the
    weights of the residual layers are scaled at init by :math:`1/\sqrt{N}`, N the number of
    residual layers. As karpathy/nanoGPT ``model.py`` does it: N(0, 0.02) on every Linear and
    Embedding weight, then each ``c_proj.weight`` (the attention's and the MLP's output
    projections, the last layer of each branch) at :math:`0.02/\sqrt{2 n_{layer}}`: two branches
    per block, so N = 2·depth. Biases 0 (``bias=zeros``), LayerNorm 1 and 0, as there.
    """
    if not std > 0:
        raise ConfigError(f"init.std={std!r} is invalid: must be > 0")
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def _fixup_plan(model, facts, params) -> list[Placement]:
    found = branches(model, "fixup")
    out = facts.output_layer
    if out is None or isinstance(model.get_submodule(out), nn.Embedding):
        what = (
            "the model names no output layer" if out is None else f"{out!r} is the tied embedding"
        )
        raise ConfigError(
            f"init.name='fixup' zeroes the classification layer, and {what}; declare "
            "model.output_layer (a GPT: model.tied=false)"
        )
    n = len(found)
    plan = [Placement(weight(out), "zeros", {}, 1.0, "classification layer: 0 (Fixup Rule 1)")]
    for b in found:
        m = len(b.layers)
        rule1 = "last layer of a residual branch: 0 (Fixup Rule 1)"
        plan.append(Placement(weight(b.layers[-1]), "zeros", {}, 1.0, rule1))
        for layer in b.layers[:-1]:  # m >= 2: the others, scaled by L^(-1/(2m-2))
            why = f"x L^(-1/(2m-2)) = {n}^(-1/{2 * m - 2}), L = {n} branches of m = {m} (Rule 2)"
            plan.append(Placement(weight(layer), "fixup", params, n ** (-1 / (2 * m - 2)), why))
    multipliers = [b for b in found if b.gain is not None]
    if multipliers:
        plan += gains(multipliers, "fixup", model, 1.0, "branch multiplier: 1 (Fixup Rule 3)")
    return plan


@register_scheme(
    moments=lambda shape, mode: (0.0, HE / math.sqrt(fan(shape, mode))),
    family="normal",
    residual=_fixup_plan,
)
def fixup_(
    tensor: Tensor, mode: FanMode = "fan_out", *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Fixup: He-normal weights, each residual branch's last layer and the classifier at 0, the
    branch's other layers scaled by :math:`L^{-1/(2m-2)}`.

    `Fixup Initialization: Residual Learning Without Normalization` - Zhang, H., Dauphin, Y. N.
    & Ma, T. (2019), §3: (1) the classification layer and the last layer of each residual branch
    are 0; (2) every other layer has a standard init, :math:`\mathcal{N}(0, 2/n)`, and the
    layers inside a branch are scaled by :math:`L^{-1/(2m-2)}`, L the number of branches and m
    the layers per branch; (3) a scalar multiplier (1) per branch and scalar biases (0). As
    hongyi-zhang/Fixup ``fixup_resnet_cifar.py`` draws it: n is the fan-out
    (``std = sqrt(2 / (out·k²))``, ``init.mode=fan_in`` for the fan-in). The multiplier is the
    branch's declared gain; initsweep's residual nets keep per-unit biases at 0
    (``bias=zeros``), a superset of Rule 3's scalar biases.
    """
    with torch.no_grad():
        return tensor.normal_(0.0, HE / math.sqrt(fan(tensor, mode)), generator=generator)


def _gain_plan(scheme: str, paper: str):
    def plan(model, facts, params) -> list[Placement]:
        found = branches(model, scheme)
        alpha = params["alpha"]
        return gains(found, scheme, model, alpha, f"branch gain: {alpha:g} ({paper})")

    return plan


@register_scheme(
    moments=lambda shape, alpha, mode: (0.0, HE / math.sqrt(fan(shape, mode))),
    family="normal",
    residual=_gain_plan("skipinit", "SkipInit, De & Smith 2020"),
)
def skipinit_(
    tensor: Tensor,
    alpha: float = 0.0,
    mode: FanMode = "fan_in",
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""SkipInit: a scalar gain :math:`\alpha = 0` on every residual branch, He-normal weights.

    `Batch Normalization Biases Residual Blocks Towards the Identity Function in Deep Networks` -
    De, S. & Smith, S. L. (2020): without batch norm, each block :math:`x + \alpha f(x)` starts
    as the identity when the learnable :math:`\alpha` is initialised at 0 (``init.alpha``), as
    batch norm makes it implicitly; the weights keep He et al.'s :math:`\mathcal{N}(0, 2/n_{in})`.
    The model needs a gain per branch (``model.branch_gain=true``).
    """
    with torch.no_grad():
        return tensor.normal_(0.0, HE / math.sqrt(fan(tensor, mode)), generator=generator)


@register_scheme(
    moments=lambda shape, alpha: (0.0, _pytorch_default_bound(shape, None) / math.sqrt(3)),
    family="uniform",
    residual=_gain_plan("rezero", "ReZero, Bachlechner et al. 2020"),
)
def rezero_(
    tensor: Tensor, alpha: float = 0.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""ReZero: a residual weight :math:`\alpha = 0` per block, PyTorch's default weights.

    `ReZero is All You Need: Fast Convergence at Large Depth` - Bachlechner, T. et al. (2020):
    :math:`x_{i+1} = x_i + \alpha_i F(x_i)` with no LayerNorm and :math:`\alpha_i` initialised
    at 0. majumderb/rezero ``rztx.py`` keeps the layers' own PyTorch init, here
    :math:`\mathcal{U}(\pm 1/\sqrt{n_{in}})` (``nn.Linear``'s; its ``nn.MultiheadAttention``
    draws q, k, v Xavier-uniform), and shares one ``resweight`` between a layer's attention and
    MLP branches, as :class:`~initsweep.models.GPT` does with ``model.branch_gain=true``.
    """
    bound = _pytorch_default_bound(tuple(tensor.shape), None)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)
