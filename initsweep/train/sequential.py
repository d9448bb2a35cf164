"""The copies one after another: plain ``nn.Module``s, one optimizer each.

What every model can do (an LSTM, a module ``vmap`` cannot batch, conv nets on a CPU, where
that is faster). Each copy draws its random numbers from its own stream, the same numbers it
draws in a stack (:class:`~initsweep.train.draws.CopyDraws`), so a copy trained here equals that
copy trained stacked.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

import torch
from torch import Tensor, nn

from initsweep.train.draws import CopyDraws
from initsweep.train.dropout import global_generator, global_rng_as
from initsweep.train.optim import build_optimizer, named_scales, per_copy
from initsweep.train.stack_state import check_state_fits


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
        device = next(models[0].parameters()).device
        device = device if device.type == "cuda" else torch.device("cpu")
        self._rng = [torch.Generator(device=device).manual_seed(s) for s in dropout_seeds]
        self._draws: bool | None = None  # does a training forward draw? known after a step

    def __len__(self) -> int:
        return len(self.models)

    def _copy_draws(self, i: int, stack: ExitStack) -> CopyDraws | None:
        """Copy ``i``'s random stream for its forward, set as the global RNG (which then keeps
        its advance): the ops of :mod:`~initsweep.train.draws` draw from it as they do in a
        stack, any other random op (a fused kernel's own dropout) from it as it is."""
        if self._draws is False:
            return None
        g = self._rng[i]
        stack.enter_context(global_rng_as(g))
        return stack.enter_context(CopyDraws([global_generator(g.device)], False, strict=False))

    def train_step(self, x: Tensor, y: Tensor, per_copy: bool = False) -> Tensor:
        """One update of every active copy; returns the batch losses ``[M]`` (on the device).

        ``x [B, ...]``, ``y [B]`` is every copy's batch; with ``per_copy`` copy i's is ``x[i]``,
        ``y[i]`` (``trainer.data_order=per_seed``).
        """
        losses, seen = [], 0
        for i, (model, opt) in enumerate(zip(self.models, self.optimizers)):
            if not self.active[i]:
                losses.append(torch.full((), float("nan"), device=y.device))
                continue
            model.train()
            xi, yi = (x[i], y[i]) if per_copy else (x, y)
            with ExitStack() as stack:
                draws = self._copy_draws(i, stack)
                loss = self.loss(model(xi), yi)
            seen += draws.seen if draws is not None else 0
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        if self._draws is None and len(losses) > sum(not a for a in self.active):
            self._draws = seen > 0
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
        """All a resumed job needs to go on exactly: weights and buffers, optimizer state, each
        copy's random stream and which copies still train. Tensors and plain containers only, so
        a checkpoint loads with ``torch.load(weights_only=True)``."""
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
