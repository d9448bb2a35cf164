"""Convolutions, self-attention and dense layers: the regressor of the first seed post."""

from __future__ import annotations

from torch import Tensor, nn


class ArrivalNet(nn.Module):
    """``[N, 1, T]`` traces → conv (a depthwise second conv) → self-attention → dense → minutes.

    A plain ``nn.Module`` that knows nothing of initsweep: its yaml declares the activation
    (the gain of ``init.gain=act``); initsweep finds the output layer (``head``).
    """

    def __init__(self, channels: int = 16, heads: int = 2, hidden: int = 32) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(1, channels, 5, padding=2),
            nn.ReLU(),
            nn.Conv1d(channels, channels, 5, padding=2, groups=channels),  # depthwise
            nn.ReLU(),
        )
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.norm = nn.LayerNorm(channels)
        self.dense = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv(x).transpose(1, 2)  # [N, T, C]
        h = self.norm(h + self.attn(h, h, h, need_weights=False)[0])
        return self.head(self.dense(h.mean(1)))
