"""Multilayer perceptron: the default model of the embedded studies."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "linear": nn.Identity,
}


def activation_module(name: str, key: str = "model.activation") -> nn.Module:
    from initsweep.errors import ConfigError

    if name not in ACTIVATIONS:
        raise ConfigError(f"{key}={name!r} is invalid: use one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Module):
    """``flatten → [Linear → activation → Dropout] × len(hidden) → Linear`` (the output layer ``out``).

    ``activation`` tells the init library the default gain; ``output_layer`` names the module
    whose bias the output bias rule sets.
    """

    output_layer = "out"

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
