"""Residual nets that can run without normalisation (``norm=none``), for Fixup, SkipInit and ZerO.

Both declare their branches (:class:`~initsweep.init.residual.ResidualModel`). Without a norm
the layers keep their biases: per-unit biases at 0 take the place of Fixup's scalar biases
(Zhang et al. 2019, Rule 3), a superset of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from initsweep.errors import invalid
from initsweep.init.residual import ResidualBranch
from initsweep.models.mlp import activation_module, check_widths

NORMS = ("none", "batch", "layer")


def _check_norm(norm: str, allowed: tuple[str, ...] = NORMS) -> None:
    if norm not in allowed:
        raise invalid("model.norm", norm, f"use one of {', '.join(allowed)}")


class MLPBlock(nn.Module):
    """``x + g·fc2(act(fc1(norm(x))))``: a pre-norm residual block of two Linear layers."""

    def __init__(self, width: int, hidden: int, activation: str, norm: str, branch_gain: bool):
        super().__init__()
        self.norm = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}.get(norm, nn.Identity)(width)
        self.fc1 = nn.Linear(width, hidden)
        self.act = activation_module(activation)
        self.fc2 = nn.Linear(hidden, width)
        self.gain = nn.Parameter(torch.ones(1)) if branch_gain else None

    def forward(self, x: Tensor) -> Tensor:
        f = self.fc2(self.act(self.fc1(self.norm(x))))
        return x + (f if self.gain is None else self.gain * f)


class ResidualMLP(nn.Module):
    """``flatten → stem → activation → depth × MLPBlock → activation → out``.

    ``depth`` residual blocks of width ``width`` (branch width ``hidden``, by default the
    same); ``norm`` (none | batch | layer) opens each branch; ``branch_gain`` adds a scalar g per
    block (init 1 unless a scheme sets it: SkipInit, ReZero 0; Fixup 1).
    """

    output_layer = "out"

    def __init__(
        self,
        input_shape: Sequence[int],
        out_features: int,
        depth: int = 32,
        width: int = 64,
        hidden: int | None = None,
        activation: str = "relu",
        norm: str = "none",
        branch_gain: bool = False,
    ) -> None:
        super().__init__()
        check_widths("model.depth/width", [depth, width, hidden or width])
        _check_norm(norm)
        self.activation = activation
        self.stem = nn.Linear(math.prod(input_shape), width)
        self.act = activation_module(activation)
        self.blocks = nn.ModuleList(
            MLPBlock(width, hidden or width, activation, norm, branch_gain) for _ in range(depth)
        )
        self.out = nn.Linear(width, out_features)

    def residual_branches(self) -> list[ResidualBranch]:
        return [
            ResidualBranch(
                i,
                (f"blocks.{i}.fc1", f"blocks.{i}.fc2"),
                f"blocks.{i}.gain" if b.gain is not None else None,
            )
            for i, b in enumerate(self.blocks)
        ]

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.stem(x.flatten(1)))
        for block in self.blocks:
            x = block(x)
        return self.out(self.act(x))


class BasicBlock(nn.Module):
    """He et al. (2016)'s basic block, as Fixup's CIFAR code has it:
    ``act(g·conv2(act(conv1(x))) + shortcut(x))`` (with ``norm=batch``, BN after each conv).

    A block that halves the resolution or widens the channels has a parameter-free shortcut:
    subsample by 2, pad the new channels with zeros (He et al.'s option A; Fixup's
    ``AvgPool2d(1, stride)`` + zero channels).
    """

    def __init__(
        self, c_in: int, c_out: int, stride: int, activation: str, norm: str, branch_gain: bool
    ):
        super().__init__()
        bn = norm == "batch"
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=not bn)
        self.bn1 = nn.BatchNorm2d(c_out) if bn else nn.Identity()
        self.act = activation_module(activation)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=not bn)
        self.bn2 = nn.BatchNorm2d(c_out) if bn else nn.Identity()
        self.gain = nn.Parameter(torch.ones(1)) if branch_gain else None
        self.stride, self.pad = stride, c_out - c_in

    def forward(self, x: Tensor) -> Tensor:
        f = self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))
        skip = x[..., :: self.stride, :: self.stride] if self.stride > 1 else x
        if self.pad:
            skip = F.pad(skip, (0, 0, 0, 0, 0, self.pad))
        return self.act(skip + (f if self.gain is None else self.gain * f))


class ResNet(nn.Module):
    """A small CIFAR-style ResNet (He et al. 2016 §4.2): a 3×3 stem, one stage of ``blocks``
    basic blocks per entry of ``channels`` (stride 2 between stages while the map is ≥ 2 px),
    global average pooling, then ``out``. ``norm``: none or batch."""

    output_layer = "out"

    def __init__(
        self,
        input_shape: Sequence[int],
        out_features: int,
        blocks: int = 3,
        channels: Sequence[int] = (16, 32, 64),
        activation: str = "relu",
        norm: str = "none",
        branch_gain: bool = False,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise invalid(
                "model", "resnet", f"needs images [C, H, W], the dataset gives {list(input_shape)}"
            )
        check_widths("model.channels", [*channels, blocks])
        _check_norm(norm, ("none", "batch"))
        self.activation = activation
        c, h, _ = input_shape
        bn = norm == "batch"
        self.stem = nn.Conv2d(c, channels[0], 3, 1, 1, bias=not bn)
        self.stem_norm = nn.BatchNorm2d(channels[0]) if bn else nn.Identity()
        self.act = activation_module(activation)
        layers, c = [], channels[0]
        for s, width in enumerate(channels):
            for i in range(blocks):
                stride = 2 if s > 0 and i == 0 and h >= 2 else 1
                h = h // stride
                layers.append(BasicBlock(c, width, stride, activation, norm, branch_gain))
                c = width
        self.blocks = nn.ModuleList(layers)
        self.out = nn.Linear(c, out_features)

    def residual_branches(self) -> list[ResidualBranch]:
        return [
            ResidualBranch(
                i,
                (f"blocks.{i}.conv1", f"blocks.{i}.conv2"),
                f"blocks.{i}.gain" if b.gain is not None else None,
            )
            for i, b in enumerate(self.blocks)
        ]

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.stem_norm(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        return self.out(x.mean(dim=(-2, -1)))
