"""Dataset transforms shared by every builder: limit, seeded splits, imbalance, one-vs-rest.

Every classification dataset takes the same keys (``dataset.limit``, ``dataset.val_fraction``,
``dataset.test_fraction``, ``dataset.split_seed``, ``dataset.imbalance.*``,
``dataset.one_vs_rest``) and goes through :func:`finish`, in this order::

    limit → test split → train/val split → imbalance (per split) → one-vs-rest → standardise
    → DataBundle

The test split is held out: the job evaluates it once, at the end, and nothing selects on it.

so the bundle's class prior and target statistics describe the training split *after* the
transforms, which is what the bias rules must see.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from initsweep.data.bundle import DataBundle
from initsweep.errors import ConfigError, invalid


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def limit(x: Tensor, y: Tensor, n: int | None, seed: int, key: str = "dataset.limit"):
    """A seeded random subset of at most ``n`` samples (``None``: all of them)."""
    if n is None or n >= len(x):
        return x, y
    if n < 2:
        raise invalid(key, n, "must be >= 2 (or null for all samples)")
    keep = torch.randperm(len(x), generator=_gen(seed))[:n]
    return x[keep], y[keep]


def split(
    x: Tensor, y: Tensor, val_fraction: float, split_seed: int, key: str = "dataset.val_fraction"
):
    """A seeded random train/val split: ``x_train, y_train, x_val, y_val``."""
    number = isinstance(val_fraction, (int, float)) and not isinstance(val_fraction, bool)
    if not (number and 0.0 < val_fraction < 1.0):
        raise invalid(key, val_fraction, "must be in (0, 1)")
    perm = torch.randperm(len(x), generator=_gen(split_seed))
    n_val = max(1, round(val_fraction * len(x)))
    return x[perm[n_val:]], y[perm[n_val:]], x[perm[:n_val]], y[perm[:n_val]]


def long_tail_counts(counts: Sequence[int], ratio: float) -> list[int]:
    r"""Per-class sample counts of a long-tailed dataset with imbalance ratio :math:`\rho`.

    .. math::
        n_i = \left\lfloor n_{\max} \cdot \rho^{-i/(C-1)} \right\rfloor, \quad i = 0, \dots, C-1

    `Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss` - Cao, K. et al.
    (2019), §4 (their ``get_img_num_per_cls`` floors the count as here). Class 0 keeps the most
    samples, class C−1 the fewest. :math:`n_{\max}` is the smallest class count available, so
    every class can supply its share (CIFAR-10: 5000 per class, so ρ = 100 gives 5000 … 50).
    """
    if not (ratio >= 1 and math.isfinite(ratio)):
        raise invalid("dataset.imbalance.ratio", ratio, "must be a number >= 1 (1 = balanced)")
    c = len(counts)
    n_max = min(counts)
    if c == 1:
        return [n_max]
    return [int(n_max * ratio ** (-i / (c - 1))) for i in range(c)]


def fraction_counts(counts: Sequence[int], fractions: Sequence[float]) -> list[int]:
    """Keep ``round(f_c · n_c)`` samples of class c: explicit per-class fractions."""
    fractions = [float(f) for f in fractions]
    if len(fractions) != len(counts):
        raise invalid(
            "dataset.imbalance.fractions",
            fractions,
            f"give one fraction per class ({len(counts)} classes)",
        )
    if any(not 0.0 <= f <= 1.0 for f in fractions):
        raise invalid("dataset.imbalance.fractions", fractions, "each fraction must be in [0, 1]")
    return [round(f * n) for f, n in zip(fractions, counts)]


def subsample_classes(x: Tensor, y: Tensor, keep: Sequence[int], seed: int):
    """Keep ``keep[c]`` samples of each class c, chosen at random (seeded), in original order."""
    g = _gen(seed)
    idx = []
    for c, k in enumerate(keep):
        members = (y == c).nonzero().flatten()
        idx.append(members[torch.randperm(len(members), generator=g)[:k]])
    kept = torch.cat(idx).sort().values
    return x[kept], y[kept]


def imbalance(
    x: Tensor, y: Tensor, num_classes: int, spec: Mapping | None, seed: int
) -> tuple[Tensor, Tensor]:
    """Subsample classes by ``spec``: ``{fractions: [f_0, …]}`` or ``{ratio: ρ}`` (long tail)."""
    fractions, ratio = (spec or {}).get("fractions"), (spec or {}).get("ratio")
    if fractions is None and ratio is None:
        return x, y
    if fractions is not None and ratio is not None:
        raise invalid("dataset.imbalance", dict(spec), "set either fractions or ratio, not both")
    counts = torch.bincount(y, minlength=num_classes).tolist()
    keep = (
        fraction_counts(counts, fractions)
        if fractions is not None
        else long_tail_counts(counts, float(ratio))
    )
    return subsample_classes(x, y, keep, seed)


def class_index(positive: int | str, class_names: Sequence[str] | None, num_classes: int) -> int:
    """The positive class of ``one_vs_rest`` as an index, given an index or a class name."""
    if isinstance(positive, bool) or not isinstance(positive, (int, str)):
        raise invalid("dataset.one_vs_rest", positive, "give a class index or a class name")
    if isinstance(positive, str):
        names = [str(n) for n in class_names or []]
        if positive in names:
            return names.index(positive)
        if positive.isdigit():
            positive = int(positive)
        else:
            raise invalid("dataset.one_vs_rest", positive, f"use one of {', '.join(names)}")
    if not 0 <= positive < num_classes:
        raise invalid("dataset.one_vs_rest", positive, f"a class index in [0, {num_classes})")
    return positive


def standardize(x_train: Tensor, *others: Tensor | None) -> tuple[Tensor | None, ...]:
    """z-score every feature with the training split's mean and std (val and test use the same
    numbers); a missing split (``None``) stays ``None``."""
    mean, std = x_train.mean(0), x_train.std(0)
    std = torch.where(std > 0, std, torch.ones_like(std))  # a constant feature stays constant
    return tuple(None if x is None else (x - mean) / std for x in (x_train, *others))


def finish(
    name: str,
    task: str,
    x: Tensor,
    y: Tensor,
    *,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    val: tuple[Tensor, Tensor] | None = None,
    val_fraction: float | None = 0.2,
    test: tuple[Tensor, Tensor] | None = None,
    test_fraction: float | None = None,
    split_seed: int = 0,
    limit_n: int | None = None,
    imbalance_spec: Mapping | None = None,
    one_vs_rest: int | str | None = None,
    standardize_x: bool = False,
) -> DataBundle:
    """Apply the transforms in order and return the :class:`DataBundle`.

    ``test`` is a predefined test split (torchvision's test set); without it,
    ``test_fraction`` (``None``: no test split) holds out that share of the pool first, with its
    own seeded draw. ``val`` is a predefined validation split (torchvision's test set when there
    is no test split); without it (or with ``val_fraction`` set) the rest of the pool is split
    at random with ``split_seed``. ``limit_n`` caps each source split (the pool; or train and
    the predefined val or test) before anything else. ``imbalance_spec`` subsamples the training
    split; with ``val: true`` in it (the default) the val and test splits get the same per-class
    treatment, so they measure the same task.
    """
    classification = task in ("multiclass", "binary")
    if classification:
        y = y.long()  # class ids while transforming; binary targets become 0/1 floats at the end
        num_classes = 2 if task == "binary" else num_classes
    active = imbalance_spec_active(imbalance_spec)
    if (active and not classification) or (one_vs_rest is not None and task != "multiclass"):
        key = "dataset.imbalance" if active else "dataset.one_vs_rest"
        value = dict(imbalance_spec) if active else one_vs_rest
        raise invalid(key, value, f"not for {name}: it is a {task} task")

    # --- limit, then the held-out test split, then the train/val split
    x, y = limit(x, y, limit_n, split_seed)
    x_te = y_te = None
    if test is not None:
        x_te, y_te = limit(*test, limit_n, split_seed + 2)
        y_te = y_te.long() if classification else y_te
    elif test_fraction is not None:
        x, y, x_te, y_te = split(x, y, test_fraction, split_seed + 2, "dataset.test_fraction")
    if val is not None and val_fraction is None:
        x_val, y_val = limit(*val, limit_n, split_seed + 1)
        y_val = y_val.long() if classification else y_val
        x_tr, y_tr = x, y
    else:
        x_tr, y_tr, x_val, y_val = split(
            x, y, 0.2 if val_fraction is None else val_fraction, split_seed
        )

    # --- class imbalance: counts from each split's own class counts
    if active:
        x_tr, y_tr = imbalance(x_tr, y_tr, num_classes, imbalance_spec, split_seed)
        if imbalance_spec.get("val", True):
            x_val, y_val = imbalance(x_val, y_val, num_classes, imbalance_spec, split_seed + 1)
            if x_te is not None:
                x_te, y_te = imbalance(x_te, y_te, num_classes, imbalance_spec, split_seed + 2)

    # --- one vs rest: the positive class becomes 1, every other class 0
    if one_vs_rest is not None:
        pos = class_index(one_vs_rest, class_names, num_classes)
        y_tr, y_val = (y_tr == pos).long(), (y_val == pos).long()
        y_te = None if y_te is None else (y_te == pos).long()
        positive = str(class_names[pos]) if class_names else str(pos)
        task, class_names = "binary", [f"not {positive}", positive]
    if task == "binary":
        y_tr, y_val, num_classes = y_tr.float(), y_val.float(), None
        y_te = None if y_te is None else y_te.float()

    if standardize_x:
        x_tr, x_val, x_te = standardize(x_tr, x_val, x_te)
    if len(x_tr) == 0 or len(x_val) == 0 or (x_te is not None and len(x_te) == 0):
        left = f"{len(x_tr)} train / {len(x_val)} val" + (
            "" if x_te is None else f" / {len(x_te)} test"
        )
        raise ConfigError(
            f"dataset {name}: the transforms left {left} samples; "
            "raise dataset.limit or relax dataset.imbalance"
        )
    return DataBundle(
        name,
        task,
        x_tr.contiguous(),
        y_tr,
        x_val.contiguous(),
        y_val,
        num_classes=num_classes,
        class_names=list(class_names) if class_names is not None else None,
        x_test=None if x_te is None else x_te.contiguous(),
        y_test=y_te,
    )


def imbalance_spec_active(spec: Mapping | None) -> bool:
    return bool(spec) and (spec.get("fractions") is not None or spec.get("ratio") is not None)
