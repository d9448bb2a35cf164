"""Weight schemes: in-place initializers with torch's signature shape and a per-tensor generator.

Each scheme is ``name_(tensor, <parameters named as the paper names them>, *, generator=None)``.
Where ``torch.nn.init`` is exact we call it; where it is missing or differs from the paper the
docstring says so. ``gain`` defaults are overridden by the apply layer with the model's
activation gain (``init.gain=null``) or the user's value.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from initsweep.errors import ConfigError
from initsweep.init.registry import register_scheme

_FanMode = Literal["fan_in", "fan_out"]


def fans(tensor: Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` with PyTorch's convention for a weight of shape ``(out, in, *k)``."""
    if tensor.dim() < 2:
        raise ConfigError(
            f"a weight scheme needs a tensor of >= 2 dims, got shape {tuple(tensor.shape)}"
        )
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ConfigError(f"init.mode={mode!r} is invalid: use one of fan_in, fan_out")
    fan_in, fan_out = fans(tensor)
    return fan_in if mode == "fan_in" else fan_out


@register_scheme
def zeros_(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Fill with 0: every unit of a layer is identical, so gradients of hidden weights vanish."""
    return torch.nn.init.zeros_(tensor)


@register_scheme
def kaiming_normal_(
    tensor: Tensor,
    gain: float = math.sqrt(2.0),
    mode: _FanMode = "fan_in",
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill with :math:`\mathcal{N}(0, \sigma^2)`, :math:`\sigma = \text{gain} / \sqrt{\text{fan\_mode}}`.

    `Delving deep into rectifiers` - He, K. et al. (2015), Eq. (10) (fan_in) and (14) (fan_out).
    ``gain`` is the nonlinearity's gain (√2 for ReLU), taken from the model when ``init.gain`` is
    null. Same numbers as ``torch.nn.init.kaiming_normal_`` (untruncated).
    """
    std = gain / math.sqrt(fan(tensor, mode))
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


@register_scheme
def pytorch_default_(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""What ``nn.Linear/Conv.reset_parameters`` does: :math:`\mathcal{U}(-1/\sqrt{n_{in}}, 1/\sqrt{n_{in}})`.

    PyTorch writes it as ``kaiming_uniform_(w, a=sqrt(5))``: gain √(1/3), variance 1/(3·fan_in).
    This is *not* He init. Its default bias (``bias.hidden=default``) is the same uniform.
    """
    bound = 1.0 / math.sqrt(fans(tensor)[0])
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)
