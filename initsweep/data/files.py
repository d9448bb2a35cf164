"""Your own data from a NumPy ``.npz`` file: arrays ``x`` and ``y`` (the same transforms apply)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from initsweep.data.bundle import TASKS, DataBundle
from initsweep.data.checks import check_labels
from initsweep.data.transforms import finish
from initsweep.errors import ConfigError, invalid


def npz(
    path: str,
    task: str = "multiclass",
    val_fraction: float = 0.2,
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
    x, y = _arrays(path, file)
    check_labels(file.stem, task, y)
    y = y.float() if task == "regression" else y.long()
    classes = int(y.max()) + 1 if task == "multiclass" else None
    return finish(
        file.stem,
        task,
        x,
        y,
        num_classes=classes,
        val_fraction=val_fraction,
        split_seed=split_seed,
        limit_n=limit,
        imbalance_spec=imbalance,
        one_vs_rest=one_vs_rest,
        standardize_x=standardize,
    )


def _arrays(path: str, file: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` and ``y`` of the file: numeric, one target per sample. Nothing is unpickled."""
    try:
        with np.load(file, allow_pickle=False) as arrays:
            if not {"x", "y"} <= set(arrays.files):
                raise ConfigError(
                    f"dataset.path={path!r} holds {arrays.files}; it needs arrays x and y"
                )
            x, y = arrays["x"], arrays["y"]
    except ConfigError:
        raise
    except ValueError as e:  # an object array (it would need unpickling), or not an .npz
        why = (
            "an array holds Python objects (dtype=object), which would need unpickling"
            if "Object arrays" in str(e)
            else "it is not an .npz file"
        )
        raise ConfigError(
            f"dataset.path={path!r} cannot be read: {why}; save numeric arrays x and y with "
            "numpy.savez"
        ) from None
    except (OSError, EOFError) as e:
        raise ConfigError(f"dataset.path={path!r} is not a readable .npz ({e})") from None
    for name, a in (("x", x), ("y", y)):
        if a.dtype.kind not in "biuf":
            raise ConfigError(
                f"dataset.path={path!r}: array {name} has dtype {a.dtype}; it must be numeric"
            )
    if y.ndim != 1 or len(x) != len(y):
        raise ConfigError(
            f"dataset.path={path!r}: x has shape {list(x.shape)} and y {list(y.shape)}; y must "
            "hold one target per sample of x (shape [N] for N samples)"
        )
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
