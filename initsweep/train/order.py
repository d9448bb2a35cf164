"""The order in which the copies see the training samples: one shared, or one per seed.

``trainer.data_order=shared`` (the default): every copy sees the same batches in the same order,
a permutation seeded from ``(trainer.data_seed, epoch)``, so the spread across seeds holds no
data-order variance: seeds differ in their initial weights and dropout masks only.
``per_seed``: each copy shuffles with its own generator, seeded from ``(seed, data_seed,
epoch)``, and a step feeds copy i its own batch (``[M, B, ...]``): a copy's order depends on its
own seed only, so it is the order that seed gets trained alone.

Either order depends only on seeds and the epoch, so a resumed job reproduces an uninterrupted
one exactly (``initsweep/train/checkpoint.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from initsweep.data import DataBundle
from initsweep.init import param_generator

DATA_ORDERS = ("shared", "per_seed")  # trainer.data_order


def batch_order(n: int, data_seed: int, epoch: int) -> Tensor:
    """The shared sample order of one epoch: a permutation seeded from (data_seed, epoch)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(data_seed * 100_003 + epoch))


def seed_order(n: int, data_seed: int, seed: int, epoch: int) -> Tensor:
    """Copy ``seed``'s own sample order of one epoch (``per_seed``): a permutation from a
    generator seeded by a stable hash of (seed, data_seed, epoch)."""
    return torch.randperm(n, generator=param_generator(seed, f"data_order/{data_seed}/{epoch}"))


def epoch_orders(
    n: int, data_order: str, data_seed: int, seeds: Sequence[int], epoch: int
) -> Tensor:
    """The epoch's order: ``[n]`` shared by every copy, or ``[M, n]``, one row per copy."""
    if data_order == "shared":
        return batch_order(n, data_seed, epoch)
    return torch.stack([seed_order(n, data_seed, s, epoch) for s in seeds])


def epoch_batches(bundle: DataBundle, order: Tensor, batch_size: int) -> Iterator[tuple]:
    """The epoch's training batches ``(x, y)`` in ``order``, on the targets' device.

    A shared order ``[n]`` gives batches ``x [B, ...]``, ``y [B]``; orders per copy ``[M, n]``
    give ``x [M, B, ...]``, ``y [M, B]``, copy i's rows from its own order.
    """
    if order.dim() == 2:
        yield from _own_batches(bundle, order, batch_size)
        return
    y_epoch = bundle.y_train[order]
    if bundle.streamed:  # read through a DataLoader, each batch moved to the device
        xs = bundle.x_train[order].batches(batch_size, bundle.y_train.device)
        for j, x in enumerate(xs):
            yield x, y_epoch[j * batch_size : (j + 1) * batch_size]
        return
    # one gather per epoch, so every batch is a contiguous view (a per-step gather cost
    # 10-25 % of a stacked MLP step on the CPU); the batches are the same either way
    x_epoch = bundle.x_train[order]
    for j in range(math.ceil(len(order) / batch_size)):
        batch = slice(j * batch_size, (j + 1) * batch_size)
        yield x_epoch[batch], y_epoch[batch]


def _own_batches(bundle: DataBundle, orders: Tensor, batch_size: int) -> Iterator[tuple]:
    """Batches of every copy's own order, gathered step by step (an epoch's gather would hold
    M copies of the training set)."""
    m, n = orders.shape
    steps = [orders[:, j : j + batch_size] for j in range(0, n, batch_size)]
    if not bundle.streamed:
        for idx in steps:
            yield bundle.x_train[idx], bundle.y_train[idx]
        return
    # one read of M x B samples per step: step j's copies side by side, in copy order
    flat = torch.cat([idx.reshape(-1) for idx in steps])
    xs = bundle.x_train[flat].batches(m * batch_size, bundle.y_train.device)
    for idx, x in zip(steps, xs):
        yield x.view(m, idx.shape[1], *x.shape[1:]), bundle.y_train[idx]
