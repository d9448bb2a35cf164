"""A population: M copies of one model that differ only in their initial weights (and dropout).

``SequentialPopulation`` steps the copies one after another; ``VectorizedPopulation``
(train/vectorized.py) steps them all at once as stacked tensors; ``make_population`` picks one
for ``trainer.strategy``. Both keep the :class:`Population` contract.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from initsweep.errors import invalid
from initsweep.train.sequential import SequentialPopulation
from initsweep.train.strategy import vectorize_unsupported
from initsweep.train.vectorized import VectorizedPopulation

log = logging.getLogger("initsweep")
STRATEGIES = ("auto", "vectorized", "sequential")  # trainer.strategy


@runtime_checkable
class Population(Protocol):
    """M copies of one model, trained together on shared batches.

    Who calls what: the training loop (``initsweep.train.loop.fit``) calls :meth:`train_step`
    on every batch, :meth:`predict` to evaluate, :meth:`parameters_finite` and :meth:`freeze`
    to stop a copy that diverged; the step-0 diagnostics and the trackers' histograms read
    copy i as a plain module through :meth:`module` (and its gradients through
    :meth:`gradients`); the checkpoint saves and restores
    :meth:`state_dict` (tensors and plain containers only: it loads with
    ``torch.load(weights_only=True)``). ``strategy`` names the kind (checkpoints load only into
    a population of their own kind and size).
    """

    strategy: str
    n_shards: int  # blocks of copies stepped side by side (CPU); the numbers depend on it

    def __len__(self) -> int: ...

    def train_step(self, x: Tensor, y: Tensor, per_copy: bool = False) -> Tensor:
        """One update of every active copy on the batch ``x [B, ...]`` (with ``per_copy``, on
        its own batch ``x[i]`` of ``x [M, B, ...]``); the losses ``[M]``, on the device."""
        ...

    def predict(self, x: Tensor, batch_size: int = 4096) -> Tensor:
        """Outputs ``[M, N, K]`` of every copy in eval mode (dropout off)."""
        ...

    def parameters_finite(self) -> Tensor:
        """``[M]`` bool: does every parameter of copy i hold only finite values?"""
        ...

    def freeze(self, i: int) -> None:
        """Stop updating copy ``i``: its weights and optimizer state stay as they are now."""
        ...

    def module(self, i: int) -> nn.Module:
        """Copy ``i`` as a plain ``nn.Module`` holding its current weights."""
        ...

    def gradients(self, i: int) -> dict[str, Tensor]:
        """Copy ``i``'s parameter gradients from the last :meth:`train_step`, named as in
        :meth:`module` (empty before the first step). Read only when a tracker asks for them
        (``tracker.gradients``), never on the training path."""
        ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def make_population(
    models: list[nn.Module],
    make_optimizer: Callable[..., torch.optim.Optimizer] | list,
    loss: Callable[[Tensor, Tensor], Tensor],
    dropout_seeds: list[int],
    strategy: str = "auto",
    *,
    amp: bool = False,
    compile: bool = False,
    sample: Tensor | None = None,
    shards: int | None = None,
    scales: list[dict | None] | None = None,
):
    """The population for ``trainer.strategy``: ``auto`` stacks what it can and falls back to
    sequential with one logged reason; ``vectorized`` refuses a model it cannot stack.
    ``sample``: a couple of inputs for a trial forward of a model ``vmap`` would batch;
    ``shards``: the stacked population's blocks (``None``: one per CPU thread); ``scales``:
    each copy's per-parameter multipliers of its optimizer's numbers (μP's learning rates)."""
    if strategy != "sequential":
        device = next(models[0].parameters()).device
        explicit = strategy == "vectorized"
        reason = vectorize_unsupported(models[0], device, explicit, sample, len(models))
        if reason is None:
            if not explicit:
                log.info("trainer.strategy=auto: the %d copies train stacked", len(models))
            return VectorizedPopulation(
                models,
                make_optimizer,
                loss,
                dropout_seeds,
                shards=shards,
                amp=amp,
                compile=compile,
                scales=scales,
            )
        if strategy == "vectorized":
            raise invalid("trainer.strategy", strategy, f"{reason}; use auto or sequential")
        log.info("trainer.strategy=auto: the copies train one after another: %s", reason)
    return SequentialPopulation(models, make_optimizer, loss, dropout_seeds, scales)
