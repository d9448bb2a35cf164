"""Datasets that ship with scikit-learn or are generated: every path here works offline.

Each builder takes the shared transform keys (``val_fraction``, ``test_fraction``, ``split_seed``,
``limit``; and for
classification ``imbalance``, ``one_vs_rest``) and returns a :class:`DataBundle` through
:func:`~initsweep.data.transforms.finish`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from initsweep.data.bundle import TASKS, DataBundle
from initsweep.data.transforms import finish, split  # noqa: F401  (split: the old import path)
from initsweep.errors import invalid


def _sklearn_datasets():
    """scikit-learn's loaders, imported when a table is asked for (a second of imports that
    generated data does not need)."""
    from sklearn import datasets

    return datasets


def digits(
    flatten: bool = True,
    val_fraction: float = 0.2,
    test_fraction: float | None = None,
    split_seed: int = 0,
    limit: int | None = None,
    imbalance: Mapping | None = None,
    one_vs_rest: int | str | None = None,
) -> DataBundle:
    """scikit-learn's 1797 8×8 handwritten digits, pixels scaled to [0, 1], 10 classes.

    ``flatten=False`` gives 1×8×8 images for conv nets (and 8 steps of 8 pixels for an LSTM).
    """
    raw = _sklearn_datasets().load_digits()
    x = torch.tensor(raw.data, dtype=torch.float32) / 16.0
    if not flatten:
        x = x.reshape(-1, 1, 8, 8)
    return finish(
        "digits",
        "multiclass",
        x,
        torch.tensor(raw.target),
        num_classes=10,
        class_names=[str(n) for n in raw.target_names],
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        limit_n=limit,
        imbalance_spec=imbalance,
        one_vs_rest=one_vs_rest,
    )


def _tabular(name: str, loader, task: str, **transforms) -> DataBundle:
    """A scikit-learn table, features z-scored with the training split's statistics."""
    raw = loader()
    x = torch.tensor(raw.data, dtype=torch.float32)
    if task == "regression":
        y = torch.tensor(raw.target, dtype=torch.float32)
        return finish(name, task, x, y, standardize_x=True, **transforms)
    names = [str(n) for n in raw.target_names]
    return finish(
        name,
        task,
        x,
        torch.tensor(raw.target),
        num_classes=len(names),
        class_names=names,
        standardize_x=True,
        **transforms,
    )


def breast_cancer(
    val_fraction: float = 0.2,
    test_fraction: float | None = None,
    split_seed: int = 0,
    limit: int | None = None,
    imbalance: Mapping | None = None,
) -> DataBundle:
    """Wisconsin breast cancer: 569 samples, 30 features, binary (1 = benign: 357 of 569)."""
    return _tabular(
        "breast_cancer",
        _sklearn_datasets().load_breast_cancer,
        "binary",
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        limit_n=limit,
        imbalance_spec=imbalance,
    )


def wine(
    val_fraction: float = 0.2,
    test_fraction: float | None = None,
    split_seed: int = 0,
    limit: int | None = None,
    imbalance: Mapping | None = None,
    one_vs_rest: int | str | None = None,
) -> DataBundle:
    """UCI wine: 178 samples, 13 features, 3 cultivars (59 / 71 / 48)."""
    return _tabular(
        "wine",
        _sklearn_datasets().load_wine,
        "multiclass",
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        limit_n=limit,
        imbalance_spec=imbalance,
        one_vs_rest=one_vs_rest,
    )


def iris(
    val_fraction: float = 0.2,
    test_fraction: float | None = None,
    split_seed: int = 0,
    limit: int | None = None,
    imbalance: Mapping | None = None,
    one_vs_rest: int | str | None = None,
) -> DataBundle:
    """Fisher's iris: 150 samples, 4 features, 3 species (50 each)."""
    return _tabular(
        "iris",
        _sklearn_datasets().load_iris,
        "multiclass",
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        limit_n=limit,
        imbalance_spec=imbalance,
        one_vs_rest=one_vs_rest,
    )


def diabetes(
    val_fraction: float = 0.2,
    test_fraction: float | None = None,
    split_seed: int = 0,
    limit: int | None = None,
) -> DataBundle:
    """Diabetes progression: 442 samples, 10 features; the target (25 … 346, mean 152, median
    140.5) is kept in its raw units, so an output bias at zero starts far from it."""
    return _tabular(
        "diabetes",
        _sklearn_datasets().load_diabetes,
        "regression",
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        limit_n=limit,
    )


def synthetic(
    task: str = "multiclass",
    samples: int = 2000,
    features: int = 20,
    classes: int = 10,
    teacher: str = "linear",
    teacher_hidden: int = 64,
    noise: float = 0.1,
    noise_dist: str = "normal",
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float | None = None,
    split_seed: int = 0,
    limit: int | None = None,
    imbalance: Mapping | None = None,
    one_vs_rest: int | str | None = None,
) -> DataBundle:
    r"""Gaussian inputs :math:`x \sim \mathcal{N}(0, I_d)` labelled by a random teacher.

    The teacher is linear, :math:`f(x) = W x` with :math:`W_{ij} \sim \mathcal{N}(0, 1/d)`, or a
    one-hidden-layer tanh MLP of width ``teacher_hidden`` (same scaling per layer), so every
    output has unit variance. Targets: multiclass :math:`\arg\max_k (f_k(x) + \epsilon_k)`;
    binary :math:`[f_1(x) + \epsilon > 0]`; regression :math:`f_1(x) + \epsilon`, with
    :math:`\epsilon` = ``noise`` times a standard normal, or (``noise_dist=lognormal``) times a
    LogNormal(0, 1) draw: a right-skewed target whose mean, median and Huber optimum differ.
    Everything is drawn from ``seed``.
    """
    if task not in TASKS:
        raise invalid("dataset.task", task, f"use one of {', '.join(TASKS)}")
    if teacher not in ("linear", "mlp"):
        raise invalid("dataset.teacher", teacher, "use linear or mlp")
    if noise_dist not in ("normal", "lognormal"):
        raise invalid("dataset.noise_dist", noise_dist, "use normal or lognormal")
    for key, value, low in (
        ("samples", samples, 4),
        ("features", features, 1),
        ("classes", classes, 2),
    ):
        if value < low:
            raise invalid(f"dataset.{key}", value, f"must be >= {low}")
    if not noise >= 0:
        raise invalid("dataset.noise", noise, "must be >= 0")
    g = torch.Generator().manual_seed(seed)
    k = classes if task == "multiclass" else 1
    x = torch.randn(samples, features, generator=g)
    if teacher == "linear":
        f = x @ (torch.randn(features, k, generator=g) / features**0.5)
    else:
        w1 = torch.randn(features, teacher_hidden, generator=g) / features**0.5
        w2 = torch.randn(teacher_hidden, k, generator=g) / teacher_hidden**0.5
        f = torch.tanh(x @ w1) @ w2
    eps = torch.randn(samples, k, generator=g)
    if noise_dist == "lognormal":
        eps = eps.exp()
    f = f + noise * eps
    y = {"multiclass": f.argmax(1), "binary": (f[:, 0] > 0).long(), "regression": f[:, 0]}[task]
    return finish(
        "synthetic",
        task,
        x,
        y,
        num_classes=classes if task == "multiclass" else None,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        limit_n=limit,
        imbalance_spec=imbalance,
        one_vs_rest=one_vs_rest,
    )


def adding(
    length: int = 50,
    samples: int = 2000,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float | None = None,
    split_seed: int = 0,
    limit: int | None = None,
) -> DataBundle:
    r"""The adding problem: a regression over sequences that needs a memory of ``length`` steps.

    Each sample is ``[length, 2]``: a value :math:`u_t \sim \mathcal{U}[0, 1]` and a marker that
    is 1 at exactly two steps, one in the first half and one in the second half; the target is
    the sum of the two marked values. `Long Short-Term Memory` - Hochreiter & Schmidhuber (1997),
    experiment 4, in the form of `Unitary Evolution Recurrent Neural Networks` - Arjovsky, Shah &
    Bengio (2016). Predicting the constant 1 gives MSE 1/6 (the variance of a sum of two
    uniforms): the baseline a model must beat to show it remembers.
    """
    if length < 2:
        raise invalid("dataset.length", length, "must be >= 2")
    if samples < 4:
        raise invalid("dataset.samples", samples, "must be >= 4")
    g = torch.Generator().manual_seed(seed)
    values = torch.rand(samples, length, generator=g)
    half = length // 2
    first = torch.randint(0, half, (samples,), generator=g)
    second = torch.randint(half, length, (samples,), generator=g)
    markers = torch.zeros(samples, length)
    rows = torch.arange(samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], dim=-1)
    y = values[rows, first] + values[rows, second]
    return finish(
        "adding",
        "regression",
        x,
        y,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        limit_n=limit,
    )
