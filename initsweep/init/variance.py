r"""The variance-scaling family: :math:`\sigma = g \sqrt{s / n}` with n a fan of the weight.

Glorot (Xavier), He (Kaiming), LeCun, a truncated normal and Keras' general ``VarianceScaling``.
Where ``torch.nn.init`` is exact we call it; the truncated variants are our own because torch's
``trunc_normal_`` takes absolute bounds and a pre-truncation std.
"""

from __future__ import annotations

import math
import typing
from typing import Literal

import torch
from torch import Tensor

from initsweep.errors import ConfigError
from initsweep.init.fans import FanMode, Nonlinearity, activation_gain, check_gain, fan, fans
from initsweep.init.gain import format_gain
from initsweep.init.registry import register_scheme
from initsweep.init.weights import TRUNC_STD_2SIGMA

_VarianceMode = Literal["fan_in", "fan_out", "fan_avg"]
_Distribution = Literal["truncated_normal", "untruncated_normal", "normal", "uniform"]
_DISTRIBUTIONS = typing.get_args(_Distribution)
# who defines the gain init.gain=null means (1 for both; initsweep.init.gain)
GLOROT = "Glorot & Bengio 2010"
LECUN = "LeCun et al. 1998"


def truncated_normal_std_(
    tensor: Tensor, mean: float, std: float, generator: torch.Generator | None
) -> Tensor:
    r"""Normal truncated at ±2σ around ``mean`` whose std *after* truncation is ``std``.

    Keras ``VarianceScaling`` / timm ``variance_scaling_``: σ = std / 0.87962566103423978, then
    ``torch.nn.init.trunc_normal_`` with the absolute bounds mean ± 2σ.
    """
    sigma = std / TRUNC_STD_2SIGMA
    return torch.nn.init.trunc_normal_(
        tensor, mean, sigma, mean - 2 * sigma, mean + 2 * sigma, generator=generator
    )


def _xavier_moments(shape, gain):
    return 0.0, gain * math.sqrt(2.0 / sum(fans(shape)))


@register_scheme(gain_source=GLOROT, moments=_xavier_moments, family="uniform")
def xavier_uniform_(
    tensor: Tensor, gain: float = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Fill with :math:`\mathcal{U}(-a, a)`, :math:`a = g \sqrt{6 / (n_{in} + n_{out})}`.

    `Understanding the difficulty of training deep feedforward neural networks` - Glorot, X. &
    Bengio, Y. (2010), Eq. (16). ``torch.nn.init.xavier_uniform_``. The paper has no gain
    (Keras' ``glorot_uniform`` neither, torch's defaults to 1): ``init.gain=null`` is 1, and
    ``init.gain=act`` scales by the activation's (torch's recipe; √2 on ReLU is He's variance
    only when n_in = n_out).
    """
    check_gain(gain)
    with torch.no_grad():
        return torch.nn.init.xavier_uniform_(tensor, gain=gain, generator=generator)


@register_scheme(gain_source=GLOROT, moments=_xavier_moments, family="normal")
def xavier_normal_(
    tensor: Tensor, gain: float = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Fill with :math:`\mathcal{N}(0, \sigma^2)`, :math:`\sigma = g \sqrt{2 / (n_{in} + n_{out})}`.

    Glorot & Bengio (2010); untruncated, as ``torch.nn.init.xavier_normal_`` (Keras'
    ``glorot_normal`` is truncated: ``variance_scaling`` with ``mode=fan_avg``). Gain 1 unless
    given (``init.gain=act``: the activation's), as :func:`xavier_uniform_`.
    """
    check_gain(gain)
    with torch.no_grad():
        return torch.nn.init.xavier_normal_(tensor, gain=gain, generator=generator)


def kaiming_gain(gain: float | None, nonlinearity: str | None, negative_slope: float) -> float:
    """``gain`` if given, else ``calculate_gain(nonlinearity or 'leaky_relu', slope)``."""
    if gain is not None:
        return gain
    return activation_gain(nonlinearity or "leaky_relu", negative_slope)


def _he_gain(nonlinearity: str | None, negative_slope: float, **_) -> tuple[float, str]:
    r"""He's default gain and why: ``init.nonlinearity``'s if given, else the rectifier's
    :math:`\sqrt{2/(1+a^2)}` (He et al. 2015; torch's default ``leaky_relu`` with ``a``)."""
    gain = kaiming_gain(None, nonlinearity, negative_slope)
    if nonlinearity:
        return gain, f"{format_gain(gain)} = {nonlinearity}'s (init.nonlinearity)"
    rectifier = f"leaky_relu(a={negative_slope:g})" if negative_slope else "relu"
    return gain, f"{format_gain(gain)} = {rectifier}'s (He et al. 2015)"


def _kaiming_moments(shape, gain, mode, nonlinearity, negative_slope):
    return 0.0, kaiming_gain(gain, nonlinearity, negative_slope) / math.sqrt(fan(shape, mode))


@register_scheme(gain_source=_he_gain, moments=_kaiming_moments, family="uniform")
def kaiming_uniform_(
    tensor: Tensor,
    gain: float | None = None,
    mode: FanMode = "fan_in",
    nonlinearity: Nonlinearity | None = None,
    negative_slope: float = 0.0,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill with :math:`\mathcal{U}(-b, b)`, :math:`b = g\sqrt{3 / n_{mode}}` (std :math:`g/\sqrt{n_{mode}}`).

    `Delving deep into rectifiers` - He, K. et al. (2015). The gain is ``gain`` if set, else
    ``calculate_gain(nonlinearity, negative_slope)`` with torch's default ``leaky_relu``: the
    paper's rectifier gain :math:`\sqrt{2/(1+a^2)}`, √2 for a = 0, whatever the model's
    activation (``init.gain=act`` takes that one). Same numbers as
    ``torch.nn.init.kaiming_uniform_(a=negative_slope)``.
    """
    gain = kaiming_gain(gain, nonlinearity, negative_slope)
    check_gain(gain)
    bound = math.sqrt(3.0) * gain / math.sqrt(fan(tensor, mode))  # uniform: std·√3
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


@register_scheme(gain_source=_he_gain, moments=_kaiming_moments, family="normal")
def kaiming_normal_(
    tensor: Tensor,
    gain: float | None = None,
    mode: FanMode = "fan_in",
    nonlinearity: Nonlinearity | None = None,
    negative_slope: float = 0.0,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill with :math:`\mathcal{N}(0, \sigma^2)`, :math:`\sigma = g / \sqrt{n_{mode}}`.

    `Delving deep into rectifiers` - He, K. et al. (2015), Eq. (10) (``fan_in``, forward signal)
    and Eq. (14) (``fan_out``, backward signal); :math:`g = \sqrt{2/(1+a^2)}` for a leaky ReLU of
    slope a, the default gain as in :func:`kaiming_uniform_`. Untruncated, as
    ``torch.nn.init.kaiming_normal_`` (Keras' ``he_normal`` is truncated).
    """
    gain = kaiming_gain(gain, nonlinearity, negative_slope)
    check_gain(gain)
    with torch.no_grad():
        return tensor.normal_(0.0, gain / math.sqrt(fan(tensor, mode)), generator=generator)


def _lecun_moments(shape, gain):
    return 0.0, gain / math.sqrt(fans(shape)[0])


@register_scheme(gain_source=LECUN, moments=_lecun_moments, family="uniform")
def lecun_uniform_(
    tensor: Tensor, gain: float = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Fill with :math:`\mathcal{U}(-\sqrt{3/n_{in}}, \sqrt{3/n_{in}})` (std :math:`1/\sqrt{n_{in}}`).

    `Efficient BackProp` - LeCun, Y. et al. (1998), §4.6; Keras ``lecun_uniform``.
    """
    check_gain(gain)
    bound = gain * math.sqrt(3.0 / fans(tensor)[0])
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


@register_scheme(gain_source=LECUN, moments=_lecun_moments, family="truncated")
def lecun_normal_(
    tensor: Tensor, gain: float = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Truncated normal (±2σ) with std :math:`1/\sqrt{n_{in}}` *after* truncation.

    LeCun et al. (1998) §4.6; Klambauer et al. (2017) for SELU nets. Keras ``lecun_normal`` and
    timm ``lecun_normal_`` convention (σ / 0.8796 before truncating); the untruncated Gaussian is
    :func:`~initsweep.init.weights.normal_scaled_`.
    """
    check_gain(gain)
    with torch.no_grad():
        return truncated_normal_std_(tensor, 0.0, gain / math.sqrt(fans(tensor)[0]), generator)


StdConvention = Literal["after_truncation", "before_truncation"]


def _truncated_moments(shape, mean, std, gain, std_is):
    # before truncation: the std after the ±2σ cut is σ · 0.8796 (Keras TruncatedNormal)
    after = std * (TRUNC_STD_2SIGMA if std_is == "before_truncation" else 1.0)
    return gain * mean, gain * after


@register_scheme(
    gain_source="Keras TruncatedNormal", moments=_truncated_moments, family="truncated"
)
def truncated_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 0.05,
    gain: float = 1.0,
    std_is: StdConvention = "after_truncation",
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Normal around ``mean`` cut at ±2σ; ``gain · std`` is the std *after* truncation by default.

    ``std_is=after_truncation`` (initsweep's default): σ = std / 0.8796, so the entries' std is
    ``std`` — Keras ``VarianceScaling``'s correction (also timm ``variance_scaling_``), what
    ``lecun_normal`` and ``variance_scaling`` use. ``std_is=before_truncation``: σ = std, Keras'
    own ``TruncatedNormal(stddev=0.05)``, whose entries' std is 0.05 · 0.8796 = 0.044 (torch's
    ``trunc_normal_(std=...)`` also means the std before its cut, at absolute bounds ±2). The
    default std 0.05 is Keras'.
    """
    if not std > 0:
        raise ConfigError(f"init.std={std!r} is invalid: must be > 0")
    check_gain(gain)
    if std_is == "before_truncation":
        std = std * TRUNC_STD_2SIGMA  # the same cut at ±2σ, σ = std
    with torch.no_grad():
        return truncated_normal_std_(tensor, gain * mean, gain * std, generator)


def _vs_family(distribution, **_) -> str:
    # Keras maps "normal" to the truncated normal
    return {"uniform": "uniform", "untruncated_normal": "normal"}.get(distribution, "truncated")


def _vs_moments(shape, variance_scale, mode, distribution, gain):
    return 0.0, gain * math.sqrt(variance_scale / fan(shape, mode, typing.get_args(_VarianceMode)))


@register_scheme(gain_source="Keras VarianceScaling", moments=_vs_moments, family=_vs_family)
def variance_scaling_(
    tensor: Tensor,
    variance_scale: float = 1.0,
    mode: _VarianceMode = "fan_in",
    distribution: _Distribution = "truncated_normal",
    gain: float = 1.0,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Keras ``VarianceScaling(scale, mode, distribution)``: std :math:`g\sqrt{s / n}`.

    n is ``fan_in``, ``fan_out`` or ``fan_avg`` = (fan_in + fan_out)/2; ``uniform`` draws
    :math:`\mathcal{U}(\pm\sqrt{3 s / n})`; ``truncated_normal`` (and ``normal``, which Keras maps to
    it) cuts at ±2σ with σ corrected by 0.8796 so the std after truncation is the target;
    ``untruncated_normal`` is a plain Gaussian. Keras' ``scale`` is called ``variance_scale`` here
    because ``init.scale`` is every scheme's std multiplier. ``variance_scale=2`` is He,
    ``mode=fan_avg`` Glorot, 1 with ``fan_in`` LeCun (``keras/src/initializers``).
    """
    if not variance_scale > 0:
        raise ConfigError(f"init.variance_scale={variance_scale!r} is invalid: must be > 0")
    if distribution not in _DISTRIBUTIONS:
        raise ConfigError(
            f"init.distribution={distribution!r} is invalid: use one of {', '.join(_DISTRIBUTIONS)}"
        )
    check_gain(gain)
    std = gain * math.sqrt(variance_scale / fan(tensor, mode, typing.get_args(_VarianceMode)))
    with torch.no_grad():
        if distribution == "uniform":
            return tensor.uniform_(-math.sqrt(3) * std, math.sqrt(3) * std, generator=generator)
        if distribution == "untruncated_normal":
            return tensor.normal_(0.0, std, generator=generator)
        return truncated_normal_std_(tensor, 0.0, std, generator)
