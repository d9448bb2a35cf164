"""Your own data from a NumPy ``.npz`` file: arrays ``x`` and ``y`` (the same transforms apply)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from initsweep.data.bundle import TASKS, DataBundle
from initsweep.data.transforms import finish
from initsweep.errors import ConfigError, invalid


def npz(
    path: str,
    task: str = "multiclass",
    val_fraction: float = 0.2,
    test_fraction: float | None = None,
    split_seed: int = 0,
    limit: int | None = None,
    imbalance: Mapping | None = None,
    one_vs_rest: int | str | None = None,
    standardize: bool = False,
) -> DataBundle:
    """Features ``x`` ``[N, ...]`` and targets ``y`` ``[N]`` (class ids 0..C-1, 0/1, or floats)."""
    if task not in TASKS:
        raise invalid("dataset.task", task, f"use one of {', '.join(TASKS)}")
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"dataset.path={path!r}: no such file; give a .npz with arrays x and y")
    with np.load(file) as arrays:
        if not {"x", "y"} <= set(arrays.files):
            raise ConfigError(
                f"dataset.path={path!r} holds {arrays.files}; it needs arrays x and y"
            )
        x = torch.as_tensor(arrays["x"], dtype=torch.float32)
        y = torch.as_tensor(arrays["y"])
    y = y.float() if task == "regression" else y.long()
    classes = int(y.max()) + 1 if task == "multiclass" else None
    return finish(
        file.stem,
        task,
        x,
        y,
        num_classes=classes,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        limit_n=limit,
        imbalance_spec=imbalance,
        one_vs_rest=one_vs_rest,
        standardize_x=standardize,
    )
