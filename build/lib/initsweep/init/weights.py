r"""Weight schemes defined by a fixed distribution or a framework default.

Each scheme is ``name_(tensor, <parameters named as the paper names them>, *, generator=None)``
and fills ``tensor`` in place. ``gain`` multiplies the draw; ``init.gain=null`` keeps the scheme as
written (gain 1, see :mod:`.gain`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from initsweep.errors import ConfigError
from initsweep.init.fans import check_gain, fans
from initsweep.init.registry import register_scheme

# std of N(0, 1) truncated to (-2, 2): Keras VarianceScaling divides sigma by it so that the
# post-truncation std equals the target (also timm ``variance_scaling_``)
TRUNC_STD_2SIGMA = 0.87962566103423978


def _constant_moments(value: float):
    return lambda shape, **_: (value, 0.0)


@register_scheme(moments=_constant_moments(0.0))
def zeros_(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""Fill with :math:`0`.

    Every unit of a layer is identical and every hidden output is 0, so with ReLU or tanh all
    weight gradients are exactly 0 and only the output bias learns (CS231n, "Initializing the
    biases"; the symmetry argument).
    """
    with torch.no_grad():
        return tensor.zero_()


@register_scheme(moments=_constant_moments(1.0))
def ones_(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""Fill with :math:`1`: every unit of a layer computes the same function (rank-1 weights)."""
    with torch.no_grad():
        return tensor.fill_(1.0)


@register_scheme(moments=lambda shape, value: (value, 0.0))
def constant_(
    tensor: Tensor, value: float = 0.1, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Fill with the constant ``value``: as ``ones``, the units stay symmetric."""
    with torch.no_grad():
        return tensor.fill_(value)


@register_scheme(
    gain_source="torch.nn.init.uniform_",
    moments=lambda shape, a, b, gain: (gain * (a + b) / 2, gain * (b - a) / 12**0.5),
    family="uniform",
)
def uniform_(
    tensor: Tensor,
    a: float = 0.0,
    b: float = 1.0,
    gain: float = 1.0,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill with :math:`\text{gain} \cdot \mathcal{U}(a, b)`.

    The default :math:`\mathcal{U}[0, 1)` is ``torch.nn.init.uniform_``'s and the seed studies'
    "uniform": all weights positive, so every first-layer unit sees the same large mean input.
    """
    if not a < b:
        raise ConfigError(f"init.a={a!r}, init.b={b!r} is invalid: need a < b")
    check_gain(gain)
    with torch.no_grad():
        return tensor.uniform_(a, b, generator=generator).mul_(gain)


@register_scheme(
    gain_source="torch.nn.init.normal_",
    moments=lambda shape, mean, std, gain: (gain * mean, gain * std),
    family="normal",
)
def normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    gain: float = 1.0,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill with :math:`\text{gain} \cdot \mathcal{N}(\text{mean}, \text{std}^2)`.

    The default :math:`\mathcal{N}(0, 1)` is ``torch.nn.init.normal_``'s and the seed studies'
    "normal": a first-layer pre-activation std of about :math:`\sqrt{n_{in} E[x^2]}`.
    """
    if not std >= 0:
        raise ConfigError(f"init.std={std!r} is invalid: must be >= 0")
    check_gain(gain)
    with torch.no_grad():
        return tensor.normal_(mean, std, generator=generator).mul_(gain)


@register_scheme(
    gain_source="Glorot & Bengio 2010, Eq. 1",
    moments=lambda shape, gain: (0.0, gain / math.sqrt(3 * fans(shape)[0])),
    family="uniform",
)
def uniform_scaled_(
    tensor: Tensor, gain: float = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Fill with :math:`\mathcal{U}(-g/\sqrt{n_{in}}, g/\sqrt{n_{in}})`, variance :math:`g^2/(3 n_{in})`.

    The "standard initialization" of Glorot & Bengio (2010), Eq. (1), and the seed studies'
    "uniform scaled". With :math:`g = 1` it is exactly PyTorch's default weight
    (:func:`pytorch_default_`).
    """
    check_gain(gain)
    bound = gain / math.sqrt(fans(tensor)[0])
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


@register_scheme(
    gain_source="LeCun et al. 1998",
    moments=lambda shape, gain: (0.0, gain / math.sqrt(fans(shape)[0])),
    family="normal",
)
def normal_scaled_(
    tensor: Tensor, gain: float = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Fill with :math:`\mathcal{N}(0, \sigma^2)`, :math:`\sigma = g/\sqrt{n_{in}}` (untruncated).

    The seed studies write it "N(0, 1/√fan_in)" meaning the *standard deviation* is
    :math:`1/\sqrt{n_{in}}` (variance :math:`1/n_{in}`): LeCun et al. (1998) "Efficient BackProp"
    §4.6 with a Gaussian, i.e. ``kaiming_normal_(w, nonlinearity='linear')``. See
    :func:`~initsweep.init.variance.lecun_normal_` for Keras' truncated variant.
    """
    check_gain(gain)
    with torch.no_grad():
        return tensor.normal_(0.0, gain / math.sqrt(fans(tensor)[0]), generator=generator)


def _pytorch_default_bound(shape, hidden_size: int | None) -> float:
    fan = hidden_size if hidden_size is not None else fans(shape)[0]
    return 1.0 / math.sqrt(fan) if fan > 0 else 0.0


@register_scheme(
    moments=lambda shape, hidden_size=None: (
        0.0,
        _pytorch_default_bound(shape, hidden_size) / math.sqrt(3),
    ),
    family="uniform",
)
def pytorch_default_(
    tensor: Tensor, *, hidden_size: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    r"""What PyTorch's ``reset_parameters`` does: :math:`\mathcal{U}(-1/\sqrt{n_{in}}, 1/\sqrt{n_{in}})`.

    ``nn.Linear/Conv`` write it as ``kaiming_uniform_(w, a=sqrt(5))``: gain √(1/3), variance
    1/(3·fan_in). This is *not* He init: in a ReLU net the signal's second moment shrinks by
    1/6 per layer. ``nn.RNN/LSTM/GRU`` draw every weight from :math:`\mathcal{U}(\pm
    1/\sqrt{H})` with H the hidden size, whatever the weight's fan (``torch/nn/modules/rnn.py``):
    the init library passes ``hidden_size`` for their weights. Its default bias is the same
    uniform: ``bias=pytorch_default`` (hidden and output).
    """
    bound = _pytorch_default_bound(tuple(tensor.shape), hidden_size)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


@register_scheme(moments=lambda shape: (0.0, math.sqrt(2.0 / sum(fans(shape)))), family="uniform")
def keras_default_(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""Keras' ``Dense``/``Conv`` default kernel, ``glorot_uniform``: :math:`\mathcal{U}(\pm\sqrt{6/(n_{in}+n_{out})})`.

    Keras pairs it with ``bias_initializer="zeros"`` (``keras/src/layers/core/dense.py``): use
    ``bias=zeros`` (the default). Fans follow PyTorch's weight layout ``(out, in, *k)``, which
    gives the same numbers as Keras' ``(*k, in, out)``.
    """
    with torch.no_grad():
        return torch.nn.init.xavier_uniform_(tensor, gain=1.0, generator=generator)
