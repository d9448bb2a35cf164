"""LSTM sequence classifier/regressor: the output layer reads the last hidden state."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from initsweep.errors import invalid


class LSTMNet(nn.Module):
    """``nn.LSTM`` (attribute ``lstm``, ``batch_first``) → last step's hidden state → ``out``.

    Inputs: ``[N, T, F]`` sequences. Images ``[N, C, H, W]`` are read row by row (H steps of C·W
    features) and flat vectors ``[N, D]`` as D steps of one feature, so any dataset works.
    PyTorch's gate layout is ``[i, f, g, o]`` in ``lstm.weight_ih_l*``/``bias_ih_l*`` and
    ``bias_hh_l*``; the forget-gate bias rule relies on these names.
    """

    output_layer = "out"
    activation = "tanh"  # the cell's nonlinearity: the gain of init.gain=act

    def __init__(
        self,
        input_shape: Sequence[int],
        out_features: int,
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if hidden_size < 1 or num_layers < 1:
            raise invalid(
                "model.hidden_size/num_layers", (hidden_size, num_layers), "must be >= 1"
            )
        shape = tuple(input_shape)
        if len(shape) == 2:
            features = shape[1]
        elif len(shape) == 3:
            features = shape[0] * shape[2]
        elif len(shape) == 1:
            features = 1
        else:
            raise invalid("model", "lstm", f"cannot read inputs of shape {list(shape)} as steps")
        self.input_shape = shape
        # dropout acts between stacked layers only (PyTorch's LSTM dropout)
        self.lstm = nn.LSTM(
            features,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.out = nn.Linear(hidden_size, out_features)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4:  # [N, C, H, W] -> [N, H, C*W]
            x = x.permute(0, 2, 1, 3).flatten(2)
        elif x.dim() == 2:
            x = x.unsqueeze(-1)
        h, _ = self.lstm(x)
        return self.out(h[:, -1])
