"""The inputs of a dataset too large for memory: read batch by batch, in the shared order.

:class:`Samples` stands where an in-memory job has its ``x`` tensor: it has a length and a shape,
it is indexed by an index tensor into another ``Samples`` (a view, as a tensor's fancy index
would be a copy: nothing is read), and :meth:`Samples.batches` reads it through a
``DataLoader`` in the order of its indices. So the transforms (limit, split, imbalance) and the
training loop's shared, seeded batch order work on it unchanged: every copy sees the same batch,
the same batches as the same data in memory would give. The targets are always in memory (one
number per sample; :func:`read_targets` reads them in one pass).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data._utils.collate import default_collate

from initsweep.errors import ConfigError, first_line


def _inputs(items: list) -> Tensor:
    """Collate the ``x`` of a batch of ``(x, y)`` items."""
    return default_collate([item[0] for item in items]).float()


class _Order(Sampler[list[int]]):
    """Batches of ``indices`` in order; the DataLoader's workers stay up across epochs."""

    def __init__(self, indices: Tensor, batch_size: int) -> None:
        self.indices, self.batch_size = indices.tolist(), batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        for j in range(0, len(self.indices), self.batch_size):
            yield self.indices[j : j + self.batch_size]


class Samples:
    """The ``x`` of some items of a ``(x, y)`` dataset, read when needed (see the module doc)."""

    device = torch.device("cpu")  # where an index into it lives

    def __init__(
        self,
        dataset: Dataset,
        indices: Tensor | None = None,
        *,
        input_shape: tuple[int, ...] | None = None,
        num_workers: int = 0,
    ) -> None:
        self.dataset, self.num_workers = dataset, num_workers
        self.indices = torch.arange(len(dataset)) if indices is None else indices.long().cpu()
        if input_shape is None:
            input_shape = tuple(_inputs([dataset[int(self.indices[0])]]).shape[1:])
        self.input_shape = input_shape

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), *self.input_shape))

    def __getitem__(self, index) -> Samples:
        picked = self.indices[index.cpu() if isinstance(index, Tensor) else index]
        return Samples(
            self.dataset,
            picked.reshape(-1),
            input_shape=self.input_shape,
            num_workers=self.num_workers,
        )

    def contiguous(self) -> Samples:
        return self

    def batches(self, batch_size: int, device: torch.device | str) -> Iterator[Tensor]:
        """The inputs in index order, ``batch_size`` at a time, on ``device``."""
        device = torch.device(device)
        loader = DataLoader(
            self.dataset,
            batch_sampler=_Order(self.indices, batch_size),
            collate_fn=_inputs,
            num_workers=self.num_workers,
            pin_memory=device.type == "cuda",
        )
        for x in loader:
            yield x.to(device, non_blocking=True)

    def to(self, device: torch.device | str) -> Tensor:
        """Every input read into one tensor on ``device`` (for small views: a calibration batch)."""
        return torch.cat(list(self.batches(1024, device)))


def read_targets(dataset: Dataset, num_workers: int = 0) -> Tensor:
    """Every item's target in one pass (``dataset.targets`` when it has them, as torchvision's
    datasets do); checks that items are ``(x, y)`` with a numeric ``y``."""
    check_item(dataset)
    known = getattr(dataset, "targets", None)
    if known is not None and len(known) == len(dataset):
        return torch.as_tensor(known)
    loader = DataLoader(
        dataset,
        batch_size=1024,
        collate_fn=lambda items: default_collate([item[1] for item in items]),
        num_workers=num_workers,
    )
    return torch.cat([torch.as_tensor(y).reshape(-1) for y in loader])


def check_item(dataset: Dataset) -> None:
    """One line when the dataset is empty or its items are not ``(x, y)`` pairs of numbers."""
    name = type(dataset).__name__
    if len(dataset) == 0:
        raise ConfigError(f"dataset {name} is empty")
    try:
        item = dataset[0]
    except Exception as e:
        raise ConfigError(f"dataset {name}: reading item 0 failed ({first_line(e)})") from None
    if not (isinstance(item, (tuple, list)) and len(item) == 2):
        raise ConfigError(
            f"dataset {name}: an item is {type(item).__name__}"
            f"{f' of {len(item)}' if isinstance(item, (tuple, list)) else ''}; "
            "initsweep needs (x, y) pairs: an input tensor and a target"
        )
    try:
        x, y = (torch.as_tensor(v) for v in item)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ConfigError(f"dataset {name}: item 0 is not numbers ({first_line(e)})") from None
    if x.dtype == torch.bool or x.is_complex() or y.numel() != 1:
        raise ConfigError(
            f"dataset {name}: item 0 is x {x.dtype} {list(x.shape)}, y {list(y.shape)}; "
            "initsweep needs a real-valued input tensor and one target (a class id or a number)"
        )
