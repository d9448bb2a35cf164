"""Multilayer perceptron: the default model of the embedded studies."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from initsweep.errors import invalid

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,  # slope 0.01 (nn.LeakyReLU's): init.gain=act takes it
    "linear": nn.Identity,
}


def activation_module(name: str, key: str = "model.activation") -> nn.Module:
    if name not in ACTIVATIONS:
        raise invalid(key, name, f"use one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def check_widths(key: str, widths: Sequence[int]) -> None:
    """Every layer has at least one unit: a width of 0 would give zero-element weights that no
    scheme can fill (PyTorch only warns) and a network whose output is its last bias."""
    if any(not isinstance(w, int) or w < 1 for w in widths):
        raise invalid(key, list(widths), "every width must be an integer >= 1")


class MLP(nn.Module):
    """``flatten → [Linear → activation → Dropout] × len(hidden) → Linear`` (the output layer ``out``).

    ``activation`` tells the init library the gain of ``init.gain=act`` (and which units the
    diagnostics count as dead or saturated); ``output_layer`` names the module whose bias the
    output bias rule sets.
    """

    output_layer = "out"
    width_key = "hidden"  # what init=mup and the coordinate check scale (every entry of the list)

    def __init__(
        self,
        input_shape: Sequence[int],
        out_features: int,
        hidden: Sequence[int] = (64,),
        activation: str = "relu",
        dropout: float = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        check_widths("model.hidden", hidden)
        self.activation = activation
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for h in hidden:
            layers += [nn.Linear(width, h, bias=bias), activation_module(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(width, out_features, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(x))
