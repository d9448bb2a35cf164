"""Checks on a built dataset, before any model sees it: bad data fails in one line, up front."""

from __future__ import annotations

from torch import Tensor

from initsweep.data.bundle import DataBundle
from initsweep.errors import ConfigError


def _first_bad(t: Tensor) -> int | None:
    """Index of the first sample holding a NaN or an infinity, or None."""
    bad = ~t.reshape(len(t), -1).isfinite().all(1) if t.is_floating_point() else None
    return int(bad.nonzero()[0]) if bad is not None and bad.any() else None


def check_bundle(bundle: DataBundle, batch_size: int) -> None:
    """Finite features and targets, a target that varies, at least one full batch of training."""
    for split in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        data = getattr(bundle, split)
        if not isinstance(data, Tensor):  # no test split
            continue
        i = _first_bad(data)
        if i is not None:
            raise ConfigError(
                f"dataset {bundle.name}: {split} holds NaN or inf (first at sample {i}); "
                "clean or drop those samples"
            )
    if bundle.task == "regression" and bool((bundle.y_train == bundle.y_train[0]).all()):
        raise ConfigError(
            f"dataset {bundle.name}: the regression target is constant "
            f"(y = {float(bundle.y_train[0])} for all {len(bundle.y_train)} training samples); "
            "there is nothing to learn and its variance, the loss at init, is 0"
        )
    if batch_size > len(bundle.x_train):
        raise ConfigError(
            f"trainer.batch_size={batch_size} is invalid: the training split of {bundle.name} "
            f"has only {len(bundle.x_train)} samples; lower it or raise dataset.limit"
        )
