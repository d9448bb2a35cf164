"""Deep plain network (depth × width) for signal-propagation studies."""

from __future__ import annotations

from collections.abc import Sequence

from initsweep.errors import invalid
from initsweep.models.mlp import MLP


class DeepMLP(MLP):
    """An :class:`MLP` with ``depth`` hidden layers of ``width`` units each (``depth + 1`` Linear
    layers in all, the last one ``out``).

    ``activation="linear"`` gives a deep linear network (Saxe et al. 2014): the product of the
    weight matrices alone decides whether the signal explodes or vanishes with depth. Same
    ``body``/``out`` layout as the MLP, so everything that handles an MLP handles this one.
    """

    width_key = "width"

    def __init__(
        self,
        input_shape: Sequence[int],
        out_features: int,
        depth: int = 10,
        width: int = 64,
        activation: str = "linear",
        dropout: float = 0.0,
        bias: bool = True,
    ) -> None:
        if depth < 1:
            raise invalid("model.depth", depth, "must be >= 1 hidden layer")
        if width < 1:
            raise invalid("model.width", width, "must be >= 1")
        super().__init__(input_shape, out_features, [width] * depth, activation, dropout, bias)
        self.depth, self.width = depth, width
