"""DataBundle: what a job trains on, plus the statistics the bias rules need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from initsweep.data.stream import Samples

TASKS = ("multiclass", "binary", "regression", "tokens")
# a per-token target that is not scored (task tokens): F.cross_entropy's ignore_index
IGNORE_INDEX = -100


def scored(y: Tensor) -> Tensor:
    """The class ids of ``y`` that count: all of them, or a token task's without IGNORE_INDEX."""
    y = y.reshape(-1)
    return y[y != IGNORE_INDEX]


@dataclass
class DataBundle:
    """Train/val inputs and targets, and task facts. Targets: class indices (multiclass), 0/1
    floats (binary) or floats (regression), all of shape ``[N]``; or (tokens) one class id per
    position ``[N, T]``, :data:`IGNORE_INDEX` where a position is not scored (the copy task's
    question half); always in memory. Inputs are
    one tensor ``[N, ...]``, or :class:`~initsweep.data.stream.Samples` read batch by batch
    when the data does not fit in memory."""

    name: str
    task: str
    x_train: Tensor | Samples
    y_train: Tensor
    x_val: Tensor | Samples
    y_val: Tensor
    num_classes: int | None = None  # multiclass; tokens: the vocabulary
    class_names: list[str] | None = None  # for reports; binary: [negative, positive]
    x_test: Tensor | Samples | None = (
        None  # the held-out split (dataset.test_fraction): evaluated once
    )
    y_test: Tensor | None = None

    def __post_init__(self) -> None:
        assert self.task in TASKS, self.task

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_outputs(self) -> int:
        """Units of the output layer: C for softmax, 1 for a sigmoid or a regression head."""
        return self.num_classes if self.task in ("multiclass", "tokens") else 1

    @property
    def class_prior(self) -> Tensor | None:
        """Class frequencies of the training split ([C]; tokens: of the scored tokens), or the
        positive rate ([1]) for binary."""
        if self.task in ("multiclass", "tokens"):
            counts = torch.bincount(scored(self.y_train.long()), minlength=self.num_classes)
            return counts.double() / counts.sum()
        if self.task == "binary":
            return self.y_train.double().mean().reshape(1)
        return None

    @property
    def target_stats(self) -> dict[str, float] | None:
        """Regression targets of the training split: mean (MSE optimum), median (MAE optimum),
        population variance (MSE at the mean) and std. ``None`` for classification."""
        if self.task != "regression":
            return None
        y = self.y_train.double()
        return {
            "mean": float(y.mean()),
            # numpy's median (the midpoint of the two middle values for an even count), as the
            # median bias rule: torch's median() is the lower one
            "median": float(np.median(y.cpu().numpy())),
            "var": float(y.var(correction=0)),
            "std": float(y.std(correction=0)),
        }

    @property
    def streamed(self) -> bool:
        """Are the inputs read batch by batch (not one tensor in memory)?"""
        return not isinstance(self.x_train, Tensor)

    def summary(self) -> dict:
        """What the report needs to judge a metric without the data: split sizes and, for
        classification, the class counts of val and test (chance accuracy and AUC)."""
        out: dict = {"task": self.task, "num_classes": self.num_classes}
        for split in ("train", "val", "test"):
            y = getattr(self, f"y_{split}")
            out[f"n_{split}"] = None if y is None else len(y)
            if split != "train" and y is not None and self.task != "regression":
                out[f"{split}_class_counts"] = torch.bincount(
                    scored(y.long()), minlength=self.num_classes or 2
                ).tolist()
        return out

    def to(self, device: torch.device | str) -> DataBundle:
        """The same bundle with every tensor on ``device`` (in-memory data lives on the device;
        streamed inputs stay where they are read from, their batches move)."""
        fields = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
        moved = {
            k: v.to(device) if isinstance(v, Tensor) else v
            for k, v in ((k, getattr(self, k)) for k in fields)
        }
        return DataBundle(
            self.name,
            self.task,
            num_classes=self.num_classes,
            class_names=self.class_names,
            **moved,
        )
