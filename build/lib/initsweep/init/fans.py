"""Fans, gains and the argument checks every weight scheme shares (torch's conventions)."""

from __future__ import annotations

import math
import typing
from typing import Literal

import torch
from torch import Tensor

from initsweep.errors import ConfigError

FanMode = Literal["fan_in", "fan_out"]
FAN_MODES = typing.get_args(FanMode)
# torch.nn.init.calculate_gain's names, plus activations it has no entry for
Nonlinearity = Literal[
    "linear", "identity", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu", "gelu", "silu",
]  # fmt: skip
# calculate_gain has no entry for these; the second-moment gains 1/sqrt(E[phi(z)^2]), z ~ N(0, 1)
_EXTRA_GAINS = {"gelu": 1.534, "silu": 1.677, "linear": 1.0, "identity": 1.0}


def activation_gain(activation: str, negative_slope: float = 0.0) -> float:
    """``torch.nn.init.calculate_gain`` for the model's activation (second-moment convention)."""
    if activation in _EXTRA_GAINS:
        return _EXTRA_GAINS[activation]
    try:
        return torch.nn.init.calculate_gain(activation, negative_slope)
    except ValueError:
        raise ConfigError(
            f"activation {activation!r} has no known gain: set init.gain explicitly"
        ) from None


def fans(shape: Tensor | tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` with PyTorch's convention for a weight of shape ``(out, in, *k)``.

    ``fan_in = in · prod(k)``, ``fan_out = out · prod(k)`` (``torch.nn.init``'s
    ``_calculate_fan_in_and_fan_out``; for grouped convs ``in`` is already ``in/groups``).
    """
    shape = tuple(shape.shape) if isinstance(shape, Tensor) else tuple(shape)
    if len(shape) < 2:
        raise ConfigError(f"a weight scheme needs a tensor of >= 2 dims, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def fan(shape: Tensor | tuple[int, ...], mode: str, modes: tuple[str, ...] = FAN_MODES) -> float:
    """The fan named by ``mode``: ``fan_in``, ``fan_out`` or (where allowed) ``fan_avg``."""
    if mode not in modes:
        raise ConfigError(f"init.mode={mode!r} is invalid: use one of {', '.join(modes)}")
    fan_in, fan_out = fans(shape)
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]


def check_gain(gain: float, key: str = "init.gain") -> None:
    """Gains are finite and > 0 (a negative gain only flips signs and is always a typo)."""
    if not (gain > 0 and math.isfinite(gain)):
        raise ConfigError(f"{key}={gain!r} is invalid: must be a finite number > 0")


def check_shape(ok: bool, scheme: str, shape: tuple[int, ...], need: str) -> None:
    """A scheme that cannot apply to a shape says which shape it needs."""
    if not ok:
        raise ConfigError(f"init scheme {scheme!r} cannot fill shape {tuple(shape)}: {need}")
