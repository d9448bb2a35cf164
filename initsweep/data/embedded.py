"""Datasets that ship with scikit-learn: the default path works offline in seconds."""

from __future__ import annotations

import torch
from sklearn import datasets as skd

from initsweep.data.bundle import DataBundle
from initsweep.errors import ConfigError


def split(x: torch.Tensor, y: torch.Tensor, val_fraction: float, split_seed: int):
    """A seeded random train/val split."""
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"dataset.val_fraction={val_fraction!r} is invalid: must be in (0, 1)")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(split_seed))
    n_val = max(1, round(val_fraction * len(x)))
    return x[perm[n_val:]], y[perm[n_val:]], x[perm[:n_val]], y[perm[:n_val]]


def _limit(x, y, limit: int | None, seed: int):
    if limit is None or limit >= len(x):
        return x, y
    if limit < 2:
        raise ConfigError(f"dataset.limit={limit!r} is invalid: must be >= 2 (or null for all)")
    keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:limit]
    return x[keep], y[keep]


def digits(
    flatten: bool = True, val_fraction: float = 0.2, split_seed: int = 0, limit: int | None = None
) -> DataBundle:
    """scikit-learn's 1797 8×8 handwritten digits, pixels scaled to [0, 1], 10 classes."""
    raw = skd.load_digits()
    x = torch.tensor(raw.data, dtype=torch.float32) / 16.0
    if not flatten:
        x = x.reshape(-1, 1, 8, 8)
    y = torch.tensor(raw.target, dtype=torch.long)
    x, y = _limit(x, y, limit, split_seed)
    return DataBundle(
        "digits", "multiclass", *split(x, y, val_fraction, split_seed), num_classes=10
    )
