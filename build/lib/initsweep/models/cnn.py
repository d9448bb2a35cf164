"""A small configurable conv net: ``[conv → (batch norm) → activation → max-pool] × blocks``."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from initsweep.errors import invalid
from initsweep.models.mlp import activation_module, check_widths


class CNN(nn.Module):
    """Conv blocks (``body``), then a flatten and optional hidden Linear layers, then ``out``.

    Each block is ``Conv2d(k×k, same padding) → [BatchNorm2d] → activation → MaxPool2d(2)``;
    the pool is skipped once the feature map is down to 1 pixel, so 8×8 digits and 32×32 CIFAR
    both work. With batch norm the convs have no bias (BN's shift replaces it).
    """

    output_layer = "out"

    def __init__(
        self,
        input_shape: Sequence[int],
        out_features: int,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        batch_norm: bool = False,
        hidden: Sequence[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise invalid(
                "model", "cnn", f"needs images [C, H, W], the dataset gives {list(input_shape)}"
            )
        check_widths("model.channels", channels)
        check_widths("model.hidden", hidden)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise invalid("model.kernel_size", kernel_size, "must be odd and >= 1")
        self.activation = activation
        c, h, w = input_shape
        layers: list[nn.Module] = []
        for width in channels:
            layers.append(
                nn.Conv2d(c, width, kernel_size, padding=kernel_size // 2, bias=not batch_norm)
            )
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(activation_module(activation))
            if min(h, w) >= 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = width
        layers.append(nn.Flatten())
        features = c * h * w
        for units in hidden:
            layers += [nn.Linear(features, units), activation_module(activation)]
            features = units
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(features, out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(x))
