"""A population: M copies of one model that differ only in their initial weights (and dropout).

``SequentialPopulation`` steps the copies one after another; ``VectorizedPopulation``
(train/vectorized.py) steps them all at once as stacked tensors; ``make_population`` picks one
for ``trainer.strategy``. Every strategy offers the same calls:
``train_step`` (one update of every active copy on one shared batch), ``predict`` (outputs of
every copy, eval mode), ``parameters_finite``, ``freeze`` (stop updating a diverged copy) and
``module(i)`` (copy i as a plain ``nn.Module``, for diagnostics and histograms).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from initsweep.errors import invalid
from initsweep.train.checkpoint import check_state_fits
from initsweep.train.optim import build_optimizer
from initsweep.train.stacked import mlp_unsupported
from initsweep.train.vectorized import VectorizedPopulation

log = logging.getLogger("initsweep")


class SequentialPopulation:
    """The copies as plain ``nn.Module``s with one optimizer each."""

    strategy = "sequential"

    def __init__(
        self,
        models: list[nn.Module],
        make_optimizer: Callable[..., torch.optim.Optimizer],
        loss: Callable[[Tensor, Tensor], Tensor],
        dropout_seeds: list[int],
    ) -> None:
        self.models = models
        self.optimizers = [build_optimizer(make_optimizer, m.parameters()) for m in models]
        self.loss = loss
        self.active = [True] * len(models)
        # each copy draws its dropout masks from its own stream, saved between steps
        self._has_dropout = any(
            (isinstance(m, nn.Dropout) and m.p > 0)
            or (isinstance(m, nn.RNNBase) and m.dropout > 0)
            for model in models
            for m in model.modules()
        )
        self._device = next(models[0].parameters()).device
        self._rng = [self._fresh_rng_state(s) for s in dropout_seeds]

    def __len__(self) -> int:
        return len(self.models)

    def _fresh_rng_state(self, seed: int) -> Tensor:
        if self._device.type == "cuda":
            g = torch.Generator(device=self._device).manual_seed(seed)
        else:
            g = torch.Generator().manual_seed(seed)
        return g.get_state()

    @contextmanager
    def _copy_rng(self, i: int) -> Iterator[None]:
        """Run with copy ``i``'s dropout stream as the global one, then restore the global."""
        if not self._has_dropout:
            yield
            return
        cuda = self._device.type == "cuda"
        with torch.random.fork_rng(devices=[self._device] if cuda else [], device_type="cuda"):
            set_state = torch.cuda.set_rng_state if cuda else torch.set_rng_state
            get_state = torch.cuda.get_rng_state if cuda else torch.get_rng_state
            set_state(self._rng[i])
            yield
            self._rng[i] = get_state()

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
            "rng": [s.clone() for s in self._rng],
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
        self._rng = [s.cpu().clone() for s in state["rng"]]  # RNG states are CPU byte tensors
        self.active = list(state["active"])


def vectorize_unsupported(model: nn.Module, device: torch.device, explicit: bool) -> str | None:
    """Why the copies of ``model`` are not trained as one stack (``None``: they are).

    The MLP family has a hand-written stack. Any other model without buffers can go through
    ``torch.func.vmap``: ``auto`` uses that on CUDA only, because on the 2-core CPU batching
    conv copies measured about 2x slower than training them one at a time (scripts/bench.py,
    perf-prototype.md). Buffers (batch-norm running stats) are per-copy state the stack does
    not carry.
    """
    if any(True for _ in model.buffers()):
        return f"{type(model).__name__} has buffers (e.g. batch-norm running stats)"
    rnn = next((m for m in model.modules() if isinstance(m, nn.RNNBase)), None)
    if rnn is not None:  # torch.func.vmap has no batching rule for aten::lstm/gru/rnn
        return f"{type(model).__name__} holds an nn.{type(rnn).__name__}, which vmap cannot batch"
    if mlp_unsupported(model) is None or explicit or device.type == "cuda":
        return None
    return f"on a CPU, {type(model).__name__} copies train faster one at a time than batched"


def make_population(
    models: list[nn.Module],
    make_optimizer: Callable[..., torch.optim.Optimizer],
    loss: Callable[[Tensor, Tensor], Tensor],
    dropout_seeds: list[int],
    strategy: str = "auto",
    *,
    amp: bool = False,
    compile: bool = False,
):
    """The population for ``trainer.strategy``: ``auto`` stacks what it can and falls back to
    sequential with one logged reason; ``vectorized`` refuses a model it cannot stack."""
    if strategy != "sequential":
        device = next(models[0].parameters()).device
        reason = vectorize_unsupported(models[0], device, explicit=strategy == "vectorized")
        if reason is None:
            return VectorizedPopulation(
                models, make_optimizer, loss, dropout_seeds, amp=amp, compile=compile
            )
        if strategy == "vectorized":
            raise invalid("trainer.strategy", strategy, f"{reason}; use auto or sequential")
        log.info("trainer.strategy=auto: the copies train one after another: %s", reason)
    return SequentialPopulation(models, make_optimizer, loss, dropout_seeds)
