"""Checks on a built dataset, before any model sees it: bad data fails in one line, up front."""

from __future__ import annotations

from torch import Tensor

from initsweep.data.bundle import DataBundle, scored
from initsweep.errors import ConfigError


def _first_bad(t: Tensor) -> int | None:
    """Index of the first sample holding a NaN or an infinity, or None."""
    bad = ~t.reshape(len(t), -1).isfinite().all(1) if t.is_floating_point() else None
    return int(bad.nonzero()[0]) if bad is not None and bad.any() else None


def check_labels(name: str, task: str, y: Tensor, num_classes: int | None = None) -> None:
    """Class targets a loss can use: ids in ``0..C-1`` (multiclass; tokens, besides the
    positions left unscored), 0/1 (binary).

    A binary task given three classes trains with a negative loss; a label outside ``0..C-1``
    fails deep in the loss, or not at all. Both are refused here, naming a sample.
    """
    if task == "regression" or len(y) == 0:
        return
    if y.is_floating_point() and not bool((y == y.round()).all()):
        i = int((y != y.round()).nonzero()[0])
        raise ConfigError(
            f"dataset {name}: the {task} targets hold {float(y[i])} (sample {i}), not a class "
            "id; use dataset.task=regression, or integer class ids"
        )
    if task == "binary":
        values = sorted({int(v) for v in y.unique().tolist()})
        if not set(values) <= {0, 1}:
            raise ConfigError(
                f"dataset.task='binary' is invalid for {name}: its targets take {len(values)} "
                f"values ({', '.join(map(str, values[:6]))}); a binary task needs 0/1 targets: "
                "use dataset.task=multiclass, or dataset.one_vs_rest=<class>"
            )
        return
    if task == "tokens":  # positions that are not scored hold IGNORE_INDEX
        y = scored(y)
    bad = (y < 0) | (y >= num_classes) if num_classes else y < 0
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        where = f"outside 0..{num_classes - 1}" if num_classes else "negative"
        raise ConfigError(
            f"dataset {name}: label {int(y[i])} (sample {i}) is {where}; class ids must run "
            "from 0 to the number of classes - 1"
        )


def check_bundle(bundle: DataBundle, batch_size: int) -> None:
    """Finite features and targets, class ids a loss can use, a target that varies, at least
    one full batch of training."""
    for split in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        data = getattr(bundle, split)
        if not isinstance(data, Tensor):  # no test split; streamed inputs are not read up front
            continue
        i = _first_bad(data)
        if i is not None:
            raise ConfigError(
                f"dataset {bundle.name}: {split} holds NaN or inf (first at sample {i}); "
                "clean or drop those samples"
            )
    for split in ("y_train", "y_val", "y_test"):
        if getattr(bundle, split) is not None:
            check_labels(bundle.name, bundle.task, getattr(bundle, split), bundle.num_classes)
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
