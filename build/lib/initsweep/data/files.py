"""Your own data: a file (``.pt``, ``.npz``, ``.csv``, ``.parquet``) or any ``torch`` Dataset.

Both go through the same transforms as the built-in sets (:func:`~initsweep.data.transforms.finish`:
limit, split, imbalance, one-vs-rest). The task is given (``dataset.task``) or inferred from the
targets: floats that are not all whole numbers are a regression; whole numbers 0/1 a binary
task; whole numbers 0..C-1 (C > 2) a multiclass one. Integer-valued regression targets (counts)
need ``dataset.task=regression``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from initsweep.data.bundle import TASKS, DataBundle
from initsweep.data.checks import check_labels
from initsweep.data.stream import Samples, read_targets
from initsweep.data.transforms import finish
from initsweep.errors import ConfigError, first_line, invalid

SUFFIXES = (".pt", ".npz", ".csv", ".parquet")


def infer_task(y: Tensor, key: str = "dataset.task") -> str:
    """The task the targets describe (see the module docstring)."""
    y = y.double()
    if not torch.equal(y, y.round()):
        return "regression"
    values = y.unique()
    if values.min() < 0:
        raise invalid(key, "auto", "the targets are negative whole numbers: set dataset.task")
    return "binary" if set(values.tolist()) <= {0.0, 1.0} else "multiclass"


def _labels(y: Tensor, task: str, name: str) -> tuple[Tensor, int | None]:
    """Targets in the task's form and the class count (:func:`check_labels` refuses the rest)."""
    check_labels(name, task, y)
    if task == "regression":
        return y.float(), None
    return y.long(), int(y.max()) + 1 if task == "multiclass" else None


def load(
    path: str,
    task: str = "auto",
    features: Sequence[str] | None = None,
    target: str | None = None,
    val_fraction: float = 0.2,
    test_fraction: float | None = None,
    split_seed: int = 0,
    limit: int | None = None,
    imbalance: Mapping | None = None,
    one_vs_rest: int | str | None = None,
    standardize: bool = False,
) -> DataBundle:
    """A data file: ``.npz`` (arrays ``x``, ``y``), ``.pt`` (a dict with ``x`` and ``y``, or a
    pair), ``.csv`` / ``.parquet`` (``target``: the target column; ``features``: the feature
    columns, by default every other column)."""
    file = Path(path)
    if file.suffix not in SUFFIXES:
        raise invalid("dataset.path", path, f"give a {', '.join(SUFFIXES)} file")
    if not file.is_file():
        raise ConfigError(f"dataset.path={path!r}: no such file")
    reader = {".npz": _npz, ".pt": _pt, ".csv": _table, ".parquet": _table}[file.suffix]
    x, y = reader(file, features, target)
    if y.dim() != 1 or len(x) != len(y):
        raise ConfigError(
            f"dataset.path={path!r}: x has shape {list(x.shape)} and y {list(y.shape)}; y must "
            "hold one target per sample of x (shape [N] for N samples)"
        )
    if task != "auto" and task not in TASKS:
        raise invalid("dataset.task", task, f"use auto or one of {', '.join(TASKS)}")
    task = infer_task(y) if task == "auto" else task
    y, classes = _labels(y, task, file.stem)
    return finish(
        file.stem,
        task,
        x.float(),
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


def _numeric(a, what: str, where: str) -> Tensor:
    array = np.asarray(a)
    if array.dtype.kind not in "biuf":
        raise ConfigError(f"{where}: array {what} has dtype {array.dtype}; it must be numeric")
    return torch.as_tensor(array)


def _npz(file: Path, features, target) -> tuple[Tensor, Tensor]:
    """Arrays ``x`` and ``y``; nothing is unpickled (an object array is refused)."""
    where = f"dataset.path={str(file)!r}"
    try:
        with np.load(file, allow_pickle=False) as arrays:
            if not {"x", "y"} <= set(arrays.files):
                raise ConfigError(f"{where} holds {arrays.files}; it needs arrays x and y")
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
            f"{where} cannot be read: {why}; save numeric arrays x and y with numpy.savez"
        ) from None
    except (OSError, EOFError) as e:
        raise ConfigError(f"{where} is not a readable .npz ({e})") from None
    return _numeric(x, "x", where), _numeric(y, "y", where)


def _pt(file: Path, features, target) -> tuple[Tensor, Tensor]:
    where = f"dataset.path={str(file)!r}"
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # anything but tensors and plain containers is refused
        raise ConfigError(f"{where}: not a file of tensors ({first_line(e)})") from None
    if isinstance(obj, Mapping) and {"x", "y"} <= set(obj):
        x, y = obj["x"], obj["y"]
    elif isinstance(obj, (tuple, list)) and len(obj) == 2:
        x, y = obj
    else:
        raise ConfigError(f"{where}: give a dict with tensors x and y, or a pair (x, y)")
    return _numeric(x, "x", where), _numeric(y, "y", where)


def _table(file: Path, features, target) -> tuple[Tensor, Tensor]:
    import pandas as pd  # only data files need it

    where = f"dataset.path={str(file)!r}"
    frame = pd.read_csv(file) if file.suffix == ".csv" else pd.read_parquet(file)
    columns = [str(c) for c in frame.columns]
    if target is None:
        raise ConfigError(f"{where}: name the target column: dataset.target, one of {columns}")
    features = list(features) if features is not None else [c for c in columns if c != target]
    missing = [c for c in [target, *features] if c not in columns]
    if missing:
        raise ConfigError(f"{where} has no column {missing}; its columns: {', '.join(columns)}")
    for column in [*features, target]:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values):
            raise ConfigError(
                f"{where}: column {column!r} has dtype {values.dtype}; give numbers (encode it)"
            )
        if values.isna().any():
            row = int(values.isna().to_numpy().argmax())
            raise ConfigError(
                f"{where}: column {column!r} has a missing value (NaN) at row {row}; "
                "fill or drop those rows"
            )
    x = torch.as_tensor(frame[features].to_numpy(dtype=np.float32).copy())
    return x, torch.as_tensor(frame[target].to_numpy().copy())


def torch_dataset(
    train: Dataset,
    val: Dataset | None = None,
    task: str = "auto",
    stream: str | bool = "auto",
    memory_gb: float = 2.0,
    num_workers: int = 0,
    val_fraction: float | None = 0.2,
    split_seed: int = 0,
    limit: int | None = None,
    imbalance: Mapping | None = None,
    one_vs_rest: int | str | None = None,
) -> DataBundle:
    """Any ``torch.utils.data.Dataset`` whose items are ``(x, y)`` (``dataset.train._target_``).

    ``val`` is a second Dataset for validation; without it ``val_fraction`` of the training
    set is split off. ``stream``: ``true`` reads the inputs batch by batch through a
    ``DataLoader`` (``num_workers`` processes) in the shared, seeded batch order, never as one
    tensor; ``false`` reads them into memory once; ``auto`` streams when the inputs would take
    more than ``memory_gb``. The targets are read in one pass either way: the bias rules and
    the loss at init need their statistics.
    """
    if task != "auto" and task not in TASKS:
        raise invalid("dataset.task", task, f"use auto or one of {', '.join(TASKS)}")
    if stream not in ("auto", True, False):
        raise invalid("dataset.stream", stream, "use auto, true or false")
    sets = {"train": train, **({"val": val} if val is not None else {})}
    inputs, targets = {}, {}
    for split, data in sets.items():
        targets[split] = read_targets(data, num_workers)
        inputs[split] = Samples(data, num_workers=num_workers)
    if stream == "auto":
        size = sum(len(s) * np.prod(s.input_shape) * 4 for s in inputs.values())
        stream = size > memory_gb * 2**30
    if not stream:  # one pass into memory: then it trains like any in-memory set
        inputs = {k: s.to("cpu") for k, s in inputs.items()}
    name = type(train).__name__
    task = infer_task(targets["train"]) if task == "auto" else task
    y, classes = _labels(targets["train"], task, name)
    val_pair = None
    if "val" in sets:
        y_val, _ = _labels(targets["val"], task, f"{name} (val)")
        val_pair, val_fraction = (inputs["val"], y_val), None
    return finish(
        name,
        task,
        inputs["train"],
        y,
        num_classes=classes,
        val=val_pair,
        val_fraction=val_fraction,
        split_seed=split_seed,
        limit_n=limit,
        imbalance_spec=imbalance,
        one_vs_rest=one_vs_rest,
    )
