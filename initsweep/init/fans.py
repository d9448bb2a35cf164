"""Fan-in/fan-out and the argument checks every weight scheme shares (torch's conventions)."""

from __future__ import annotations

import math
from typing import Literal

from torch import Tensor

from initsweep.errors import ConfigError

FanMode = Literal["fan_in", "fan_out"]
FAN_MODES = ("fan_in", "fan_out")


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
