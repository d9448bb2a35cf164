"""A population: M copies of one model that differ only in their initial weights (and dropout).

``SequentialPopulation`` steps the copies one after another; ``VectorizedPopulation``
(train/vectorized.py) steps them all at once as stacked tensors; ``make_population`` picks one
for ``trainer.strategy``. Both keep the :class:`Population` contract.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from initsweep.errors import first_line, invalid
from initsweep.train.checkpoint import check_state_fits
from initsweep.train.dropout import global_rng_as
from initsweep.train.functional import VmapStack
from initsweep.train.optim import build_optimizer, named_scales, per_copy
from initsweep.train.stacked import mlp_unsupported
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

    def train_step(self, x: Tensor, y: Tensor) -> Tensor:
        """One update of every active copy on the batch; the losses ``[M]``, on the device."""
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


class SequentialPopulation:
    """The copies as plain ``nn.Module``s with one optimizer each (``make_optimizer``: one
    partial for all, or one per copy; ``scales``: each copy's per-parameter multipliers of its
    optimizer's numbers, by parameter name, :data:`~initsweep.train.optim.Scales`)."""

    strategy = "sequential"
    n_shards = 1

    def __init__(
        self,
        models: list[nn.Module],
        make_optimizer: Callable[..., torch.optim.Optimizer],
        loss: Callable[[Tensor, Tensor], Tensor],
        dropout_seeds: list[int],
        scales: list[dict | None] | None = None,
    ) -> None:
        self.models = models
        scales = scales or [None] * len(models)
        self.optimizers = [
            build_optimizer(make, m.parameters(), named_scales(m.named_parameters(), sc))
            for make, m, sc in zip(per_copy(make_optimizer, len(models)), models, scales)
        ]
        self.loss = loss
        self.active = [True] * len(models)
        # each copy draws its dropout masks from its own stream, saved between steps
        self._has_dropout = any(
            (isinstance(m, nn.Dropout) and m.p > 0)
            or (isinstance(m, nn.RNNBase) and m.dropout > 0)
            for model in models
            for m in model.modules()
        )
        device = next(models[0].parameters()).device
        device = device if device.type == "cuda" else torch.device("cpu")
        self._rng = [torch.Generator(device=device).manual_seed(s) for s in dropout_seeds]

    def __len__(self) -> int:
        return len(self.models)

    def _copy_rng(self, i: int):
        """Copy ``i``'s dropout stream as the global RNG while it steps (``nn.Dropout`` draws
        from the global one)."""
        return global_rng_as(self._rng[i]) if self._has_dropout else nullcontext()

    def train_step(self, x: Tensor, y: Tensor) -> Tensor:
        """One update of every active copy; returns the batch losses ``[M]`` (on the device)."""
        losses = []
        for i, (model, opt) in enumerate(zip(self.models, self.optimizers)):
            if not self.active[i]:
                losses.append(torch.full((), float("nan"), device=x.device))
                continue
            model.train()
            with self._copy_rng(i):
                loss = self.loss(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        return torch.stack(losses)

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 4096) -> Tensor:
        """Outputs ``[M, N, K]`` of every copy in eval mode (dropout off)."""
        outs = []
        for model in self.models:
            model.eval()
            outs.append(
                torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
            )
        return torch.stack(outs)

    def parameters_finite(self) -> Tensor:
        """``[M]`` bool: does every parameter of copy i hold only finite values?"""
        return torch.stack(
            [torch.stack([p.isfinite().all() for p in m.parameters()]).all() for m in self.models]
        )

    def module(self, i: int) -> nn.Module:
        """Copy ``i`` as a plain ``nn.Module`` (for diagnostics, histograms, checkpoints)."""
        return self.models[i]

    def gradients(self, i: int) -> dict[str, Tensor]:
        return {n: p.grad for n, p in self.models[i].named_parameters() if p.grad is not None}

    def freeze(self, i: int) -> None:
        """Stop updating copy ``i`` (it diverged); the others go on."""
        self.active[i] = False

    def state_dict(self) -> dict:
        """All a resumed job needs to go on exactly: weights, optimizer state, each copy's dropout
        RNG state and which copies still train. Tensors and plain containers only, so a checkpoint
        loads with ``torch.load(weights_only=True)``."""
        return {
            "strategy": self.strategy,
            "models": [m.state_dict() for m in self.models],
            "optimizers": [o.state_dict() for o in self.optimizers],
            "rng": [g.get_state() for g in self._rng],
            "active": list(self.active),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (from any device) into this population of the same shape."""
        check_state_fits(state, self)
        for model, opt, m, o in zip(
            self.models, self.optimizers, state["models"], state["optimizers"]
        ):
            model.load_state_dict(m)
            opt.load_state_dict(o)  # moves the optimizer state to the parameters' device
        for g, s in zip(self._rng, state["rng"]):
            g.set_state(s.cpu())  # RNG states are CPU byte tensors
        self.active = list(state["active"])


def vectorize_unsupported(
    model: nn.Module, device: torch.device, explicit: bool, sample: Tensor | None = None
) -> str | None:
    """Why the copies of ``model`` are not trained as one stack (``None``: they are).

    The MLP family has a hand-written stack. Any other model without buffers can go through
    ``torch.func.vmap``: ``auto`` uses that on CUDA only, because on a CPU batching conv copies
    measured slower than training them one at a time (``make bench``, the README's table).
    Buffers (batch-norm running stats) are per-copy state the stack does not carry.
    """
    if any(True for _ in model.buffers()):
        return f"{type(model).__name__} has buffers (e.g. batch-norm running stats)"
    rnn = next((m for m in model.modules() if isinstance(m, nn.RNNBase)), None)
    if rnn is not None:  # torch.func.vmap has no batching rule for aten::lstm/gru/rnn
        return f"{type(model).__name__} holds an nn.{type(rnn).__name__}, which vmap cannot batch"
    if mlp_unsupported(model) is None:
        return None
    if not explicit and device.type != "cuda":
        return f"on a CPU, {type(model).__name__} copies train faster one at a time than batched"
    return None if sample is None else _vmap_problem(model, sample)


def _vmap_problem(model: nn.Module, sample: Tensor) -> str | None:
    """Why ``torch.func.vmap`` cannot batch copies of ``model`` (a trial forward), or None."""
    try:
        VmapStack([model, model]).forward(sample[:2])
    except Exception as e:  # vmap has no batching rule for some op of the model
        return f"vmap cannot batch {type(model).__name__} ({type(e).__name__}: {first_line(e)})"
    return None


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
        reason = vectorize_unsupported(models[0], device, explicit, sample)
        if reason is None:
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
