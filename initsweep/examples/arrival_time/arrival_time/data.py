"""Generated sensor traces and the arrival time they predict (right-skewed, in minutes)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class ArrivalTimes(Dataset):
    """``n`` traces ``[1, length]``: a pulse whose onset and width set a lognormal arrival time.

    Each item is ``(trace, minutes)``. The target is right-skewed (its mean lies above its
    median), so the mean, median and Huber-optimal output biases differ, and so do the losses
    they start from.
    """

    def __init__(self, n: int = 2000, length: int = 32, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        onset = torch.rand(n, generator=g) * (length - 8)
        width = 1.0 + 3.0 * torch.rand(n, generator=g)
        t = torch.arange(length, dtype=torch.float32)
        pulse = torch.exp(-(((t - onset[:, None]) / width[:, None]) ** 2))
        noise = 0.1 * torch.randn(n, length, generator=g)
        self.traces = (pulse + noise)[:, None, :]
        log_minutes = 1.0 + 0.08 * onset + 0.25 * width + 0.35 * torch.randn(n, generator=g)
        self.minutes = log_minutes.exp()

    def __len__(self) -> int:
        return len(self.traces)

    def __getitem__(self, i: int):
        return self.traces[i], self.minutes[i]
