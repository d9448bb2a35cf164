r"""μP, the Maximal Update Parametrization: widths relative to a base width.

`Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer` - Yang,
G., Hu, E. J., Babuschkin, I., Sidor, S., Liu, X., Farhi, D., Ryder, N., Pachocki, J., Chen, W.
& Gao, J. (2022), arXiv 2203.03466; the reference implementation is Microsoft's ``mup`` package.

**Widths.** Every parameter against the same model at ``init.base_width``
(:mod:`initsweep.init.widths`, ``mup.set_base_shapes``): hidden, input, readout, vector-like.
Which constructor key sets the width is the model's declaration (``model.width_key``, or a
``width_key`` class attribute).

**Init** (TP V Table 3, :math:`m_{in}` the fan-in multiplier): every tensor gets the std the
base scheme gives it *at its base shape* (so at the base width μP is the base scheme, draw for
draw), then hidden weights :math:`\times m_{in}^{-1/2}` (variance :math:`\propto 1/n_{in}`) and
the readout :math:`\times \alpha/m_{in}` (variance :math:`\propto 1/n_{in}^2`); input weights,
embeddings and all biases keep their base std (variance :math:`\Theta(1)` in width). This is
``mup.init``'s rule for each of torch's initializers. The biases that PyTorch's default rule
draws at :math:`\pm 1/\sqrt{n_{in}}` are redrawn likewise at their base fan (``mup``'s
``rescale_linear_bias``).

**Readout.** ``mup.MuReadout`` computes :math:`W'(\alpha x / m_{in})` with :math:`W'` of constant
std. initsweep folds that multiplier into the weight, :math:`W = \alpha W'/m_{in}` (Table 3 rather
than Table 8 of the paper): the network computes the same function and, with the learning rates
of :mod:`initsweep.init.mup_lr`, takes the same steps, while the model's forward stays its own.
So a readout weight's std here is ``mup``'s effective one, :math:`\alpha\,\mathrm{std}(W')/m_{in}`.
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import Tensor

from initsweep.errors import ConfigError, invalid
from initsweep.init.registry import (
    get_scheme,
    register_scheme,
    scheme_params,
    theoretical_moments,
    with_defaults,
)
from initsweep.init.widths import MuParam

# bias rules that draw U(±1/√fan_in) (bias.output / bias.hidden): μP draws them at the base fan
FAN_SCALED_BIASES = ("pytorch_default", "default")


@torch.no_grad()
def rescale_biases(params: dict[str, Tensor], widths: dict[str, MuParam], assignment) -> None:
    r"""Biases drawn by a fan-scaled rule, multiplied by :math:`\sqrt{m_{in}}` of their layer:
    their base std, :math:`\Theta(1)` in width (``mup``'s ``rescale_linear_bias``)."""
    for name, entry in assignment.items():
        if not entry.get("bias") or entry.get("scheme") not in FAN_SCALED_BIASES:
            continue
        head, _, leaf = name.rpartition(".")
        weight = widths.get(f"{head}.{leaf.replace('bias', 'weight')}".lstrip("."))
        # a layer's bias has its weight's fan-in; a recurrent bias (fan H) its own width
        recurrent = entry["bias"] == "recurrent" or weight is None
        mult = widths[name].mult(0) if recurrent else weight.mult(1)
        params[name].mul_(math.sqrt(mult))
        entry["mup_scale"] = math.sqrt(mult)


def _std(scheme: str, shape: tuple[int, ...], params: dict) -> float:
    moments = theoretical_moments(scheme, shape, params)
    if moments is None:
        raise ConfigError(
            f"init.base={scheme!r} has no std formula: μP draws the base scheme at its base "
            "shape, so it takes a scheme with one (pytorch_default, kaiming_*, xavier_*, normal …)"
        )
    return moments[1]


def init_factor(mu: MuParam, base: str, params: dict, output_mult: float = 1.0) -> float:
    """What the base scheme's draw at the tensor's own shape is multiplied by (module doc)."""
    if mu.role == "fixed":
        return 1.0
    own, at_base = _std(base, mu.shape, params), _std(base, mu.base_shape, params)
    mean = theoretical_moments(base, mu.shape, params)[0]
    if mean != 0 and own != at_base:
        raise ConfigError(
            f"init.base={base!r} draws with mean {mean}: μP rescales only zero-mean draws"
        )
    factor = at_base / own if own > 0 else 1.0
    if mu.role == "hidden":
        factor /= math.sqrt(mu.mult(1))
    elif mu.role == "output":
        factor *= output_mult / mu.mult(1)
    return factor


def _moments(
    shape, base_width, base, base_params, output_mult, mu=None, groups=1, hidden_size=None
):
    params = _base_kwargs(base, base_params, groups, hidden_size)
    std = _std(base, shape, params)
    return 0.0, std * (1.0 if mu is None else init_factor(mu, base, params, output_mult))


def _base_kwargs(base: str, base_params: dict | None, groups: int, hidden_size) -> dict:
    if base == "mup":
        raise invalid("init.base", base, "the base is the scheme μP rescales, not mup itself")
    get_scheme(base, "init.base")
    given = dict(base_params or {})
    unknown = set(given) - set(scheme_params(base))
    if unknown:
        raise invalid("init.base_params", given, f"{base} takes {sorted(scheme_params(base))}")
    context = {"groups": groups, "hidden_size": hidden_size}
    return {**with_defaults(base, given), **{k: v for k, v in context.items() if v is not None}}


def check_settings(init: dict) -> None:
    """``init=mup``'s own keys, before anything is drawn: the base scheme, its parameters (it
    must state a std) and the output multiplier."""
    base, output_mult = init.get("base", "pytorch_default"), init.get("output_mult", 1.0)
    params = _base_kwargs(base, init.get("base_params"), 1, None)
    _std(base, (2, 2), params)
    if not (isinstance(output_mult, (int, float)) and output_mult > 0):
        raise invalid("init.output_mult", output_mult, "must be a number > 0")


@register_scheme(moments=_moments)
def mup_(
    tensor: Tensor,
    base_width: int = 64,
    base: str = "pytorch_default",
    base_params: dict | None = None,
    output_mult: float = 1.0,
    *,
    mu: MuParam | None = None,
    groups: int = 1,
    hidden_size: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""μP (Yang et al. 2022, Table 3): ``base`` drawn as at ``base_width``, rescaled with width.

    .. math::
        \sigma_{\text{hidden}} = \sigma_{\text{base}}(n^0)\, m_{in}^{-1/2}, \quad
        \sigma_{\text{readout}} = \alpha\, \sigma_{\text{base}}(n^0) / m_{in}, \quad
        \sigma_{\text{input}} = \sigma_{\text{bias}} = \sigma_{\text{base}}(n^0),

    with :math:`n^0` the parameter's base shape, :math:`m_{in} = n_{in}/n^0_{in}` and
    :math:`\alpha` = ``output_mult``. ``mu`` (the parameter against its base shape) comes from
    the model (:func:`width_facts`; :func:`~initsweep.init.apply.initialize` refuses a model
    without one); a tensor alone is at its base shape: the base scheme. The learning rates are
    :mod:`initsweep.init.mup_lr`'s.
    """
    check_settings({"base": base, "base_params": base_params, "output_mult": output_mult})
    params = _base_kwargs(base, base_params, groups, hidden_size)
    call = {k: v for k, v in params.items() if k not in ("groups", "hidden_size")}
    scheme = get_scheme(base)
    takes = inspect.signature(scheme).parameters
    context = {k: params[k] for k in ("groups", "hidden_size") if k in params and k in takes}
    scheme(tensor, **call, **context, generator=generator)
    if mu is None:
        return tensor
    with torch.no_grad():
        return tensor.mul_(init_factor(mu, base, params, output_mult))
